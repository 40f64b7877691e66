/*
 * feedback.c - bounces and complaints reported later by mail, recorded
 * the way sluiced's outcomes are.
 *
 * DESCRIPTION
 *   queue_record_feedback() (queue_campaign.h) is one OP_FEEDBACK
 *   operation of the writer, so what a DSN or an ARF report causes
 *   commits in one transaction: a bounce goes through qoutcome_apply(),
 *   the code that records sluiced's outcomes, with list hygiene
 *   (hygiene.c) in the same transaction; a late bounce (the delivery is
 *   terminal already: the spool keeps one terminal event) and a complaint
 *   only suppress, through hygiene_suppress(), which makes the entries
 *   sluiced makes.  A complaint also appends its informational
 *   "complaint" event (text: the report's feedback type) in the same
 *   transaction (note.c: no state or counter changes).  The suppression's source names the path ("dsn",
 *   "arf"); reason and "added by" are sluiced's.
 *
 * DIAGNOSTICS
 *   The op's status is QUEUE_ENOTFOUND for an unknown delivery or
 *   QUEUE_ECORRUPT for one that does not decode (nothing written); a
 *   write failure fails the whole op (the writer retries the group or
 *   runs the op alone), so an event never commits without its
 *   suppression or the other way round.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_campaign.h"
#include "queue_int.h"

/* Read delivery id in w's txn into d; 0, or a per-op failure in *status,
 * or a txn failure. */
static int delivery_read(struct wctx *w, uint64_t id,
                         struct queue_delivery *d, int *status)
{
    unsigned char key[8];
    MDB_val k = { 8, key }, v;
    be64_put(key, id);
    int rc = mdb_get(w->txn, w->q->dbi[DB_DELIVERIES], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *status = QUEUE_ENOTFOUND;
        return 0;
    }
    if (rc)
        return wctx_fail(w, rc);
    *status = qdelivery_decode(&v, id, d);
    return 0;
}

int queue_op_apply_feedback(struct wctx *w, struct queue_op *op)
{
    struct queue_feedback_result *r = op->fb_result;
    const struct op_outcome *o = &op->outcomes[0];
    struct hygiene_via via = {
        .source = op->fb_kind == QUEUE_FEEDBACK_BOUNCE ? "dsn" : "arf",
    };
    struct queue_delivery d;
    int status = 0, err;
    r->recorded = false;    /* a group retried runs the op again */
    r->suppressed = QUEUE_FEEDBACK_NOT_SUPPRESSED;
    if (op->fb_kind == QUEUE_FEEDBACK_BOUNCE) {
        if ((err = qoutcome_apply(w, op, o, &via, &status)))
            return err;
        if (!status) {
            r->recorded = true;
            r->suppressed = via.suppressed;
            return 0;
        }
        if (status != QUEUE_ESTATE) {
            op->status = status;
            return 0;
        }
        /* a late bounce: no second terminal event, a hard one suppresses */
        if (!hygiene_hard(o->category))
            return 0;
    }
    if ((err = delivery_read(w, o->delivery, &d, &status)))
        return err;
    if (status) {
        op->status = status;
        return 0;
    }
    int cat = op->fb_kind == QUEUE_FEEDBACK_BOUNCE ? o->category
                                                   : QUEUE_CAT_NONE;
    if ((err = hygiene_suppress(w, d.account, d.rcpt, cat, &via)))
        return err;
    r->suppressed = via.suppressed;
    if (op->fb_kind == QUEUE_FEEDBACK_COMPLAINT) {
        struct queue_event ev = {
            .type = QUEUE_EV_COMPLAINT, .delivery = d.id,
            .campaign = d.campaign, .account = d.account,
        };
        memcpy(ev.rcpt, d.rcpt, sizeof ev.rcpt);
        memcpy(ev.text, op->arena + o->text_off, o->text_len);
        struct series_hint hint = { .delivery = d.id, .ref = d.ref };
        w->series_hint = &hint;
        err = qevent_append(w, &ev);
        w->series_hint = NULL;
        if (err)
            return err;
    }
    return 0;
}

int queue_record_feedback(struct queue *q, const struct queue_feedback *f,
                          struct queue_feedback_result *r)
{
    struct queue_feedback_result mine;
    struct queue_op *op;
    if (q->readonly)
        return -EROFS;
    if (f->kind != QUEUE_FEEDBACK_BOUNCE &&
        f->kind != QUEUE_FEEDBACK_COMPLAINT)
        return -EINVAL;
    if (f->kind == QUEUE_FEEDBACK_BOUNCE &&
        (f->category <= QUEUE_CAT_NONE || f->category >= QUEUE_CAT_COUNT))
        return -EINVAL;
    struct queue_outcome o = {
        .delivery = f->delivery, .type = QUEUE_EV_BOUNCED, .code = f->code,
        .category = f->kind == QUEUE_FEEDBACK_BOUNCE ? f->category : 0,
        .enhanced = f->enhanced, .mx = f->mx, .text = f->text,
    };
    int err = qoutcome_op_new(&op, &o, 1);
    if (err)
        return err;
    op->kind = OP_FEEDBACK;
    op->fb_kind = f->kind;
    op->fb_result = r ? r : &mine;
    return sync_submit_wait(q, op);
}
