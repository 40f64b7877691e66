/*
 * outcome.c - recording what happened to a delivery.
 *
 * DESCRIPTION
 *   Each outcome changes the delivery's state, moves or removes its ready
 *   entry, appends one event and updates the counters, all in the writer's
 *   transaction, so the state change and its event commit together.
 *
 *   delivered, bounced, expired, suppressed, cancelled: terminal; the ready
 *     entry goes, and for an injected message the last terminal recipient
 *     frees the stored message.  suppressed and cancelled end a delivery
 *     the engine did not send (no attempt counted) and have counters of
 *     their own, apart from expired.
 *   deferred: the next attempt follows the retry schedule (or retry_at),
 *     never later than the delivery's maximum age; a deferral at or past
 *     the maximum age becomes the terminal "expired" event instead.
 *   none: a postponement without an attempt or event (retry_at required).
 *
 *   For a delivery with an account, the outcome also counts its usage per
 *   UTC day (sent, delivered, bounced: queue_admin.h says which count).
 *   The event's append counts it in the time series (series.c), told by
 *   a series_hint what the event lacks: the delivery's first due time,
 *   whether this outcome was an attempt, the engine's site.
 *
 *   For a delivery with an account, hard bounces suppress the address
 *   (an entry added by that account), quota bounces count towards a
 *   soft-bounce streak and blocks are counted: hygiene.c, in the same
 *   transaction.
 *
 *   feedback.c records a bounce reported later by mail through
 *   qoutcome_apply() too, so it is held to the same rules.
 *
 *   A delivery already terminal gets no second terminal event: its outcome
 *   fails with QUEUE_ESTATE.  That is how "exactly one terminal event" is
 *   held even when an engine repeats itself after a crash.
 *
 * DIAGNOSTICS
 *   The op's status is 0 when every outcome applied, else the code of the
 *   first that did not (QUEUE_ENOTFOUND, QUEUE_ESTATE, -EINVAL); the others
 *   still apply.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

int qoutcome_op_new(struct queue_op **out, const struct queue_outcome *o,
                    size_t n)
{
    size_t alen = 0;
    *out = NULL;
    if (!n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (o[i].type < QUEUE_EV_NONE || o[i].type > QUEUE_EV_CANCELLED ||
            !o[i].delivery ||
            (o[i].type == QUEUE_EV_NONE && o[i].retry_at <= 0))
            return -EINVAL;
        alen += (o[i].enhanced ? strnlen(o[i].enhanced, QUEUE_MAX_ENHANCED) : 0) +
                (o[i].mx ? strnlen(o[i].mx, QUEUE_MAX_MX) : 0) +
                (o[i].text ? strnlen(o[i].text, QUEUE_MAX_REPLY) : 0) +
                (o[i].site ? strnlen(o[i].site, QUEUE_MAX_MX) : 0);
    }
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->kind = OP_OUTCOMES;
    op->n = n;
    op->weight = (unsigned)(n < 1u << 30 ? n : 1u << 30);
    if (!(op->outcomes = calloc(n, sizeof *op->outcomes)) ||
        !(op->arena = malloc(alen ? alen : 1))) {
        queue_op_free(op);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct op_outcome *d = &op->outcomes[i];
        d->delivery = o[i].delivery;
        d->retry_at = o[i].retry_at;
        d->code = o[i].code;
        d->type = (uint8_t)o[i].type;
        d->category = o[i].category;
#define COPY_STR(field, cap)                                                 \
        do {                                                                 \
            size_t l = o[i].field ? strnlen(o[i].field, cap) : 0;            \
            d->field##_off = (uint32_t)op->arena_len;                        \
            d->field##_len = (uint16_t)l;                                    \
            if (l)                                                           \
                memcpy(op->arena + op->arena_len, o[i].field, l);            \
            op->arena_len += l;                                              \
        } while (0)
        COPY_STR(enhanced, QUEUE_MAX_ENHANCED);
        COPY_STR(mx, QUEUE_MAX_MX);
        COPY_STR(text, QUEUE_MAX_REPLY);
        COPY_STR(site, QUEUE_MAX_MX);
#undef COPY_STR
    }
    *out = op;
    return 0;
}

int queue_submit_outcomes(struct queue *q, const struct queue_outcome *o,
                          size_t n, struct queue_completer *cmp,
                          queue_done_cb cb, void *arg)
{
    struct queue_op *op;
    int err = qoutcome_op_new(&op, o, n);
    if (err)
        return err;
    return queue_op_submit(q, op, cmp, cb, arg);
}

/* Copy an arena string into a NUL-terminated field. */
static void take_str(char *dst, const char *arena, uint32_t off, uint16_t len)
{
    memcpy(dst, arena + off, len);
    dst[len] = 0;
}

/* Drop one reference to a stored message; the last one deletes it. */
static int message_unref(struct wctx *w, uint64_t msg)
{
    unsigned char key[8], val[4];
    MDB_val k = { 8, key }, v;
    be64_put(key, msg);
    int rc = mdb_get(w->txn, w->q->dbi[DB_MSGREFS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return wctx_fail(w, rc);
    if (v.mv_size != 4)
        return QUEUE_ECORRUPT;
    const unsigned char *p = v.mv_data;
    uint32_t refs = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                    (uint32_t)p[2] << 8 | p[3];
    if (refs <= 1) {
        if ((rc = mdb_del(w->txn, w->q->dbi[DB_MSGREFS], &k, NULL)) ||
            ((rc = mdb_del(w->txn, w->q->dbi[DB_MESSAGES], &k, NULL)) &&
             rc != MDB_NOTFOUND))
            return wctx_fail(w, rc);
        return 0;
    }
    be32_put(val, refs - 1);
    MDB_val nv = { 4, val };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_MSGREFS], &k, &nv, 0)))
        return wctx_fail(w, rc);
    return 0;
}

/* The counter a given event type increments. */
static enum counter_field field_of(int type)
{
    switch (type) {
    case QUEUE_EV_DELIVERED: return CF_DELIVERED;
    case QUEUE_EV_BOUNCED: return CF_BOUNCED;
    case QUEUE_EV_EXPIRED: return CF_EXPIRED;
    case QUEUE_EV_SUPPRESSED: return CF_SUPPRESSED;
    case QUEUE_EV_CANCELLED: return CF_CANCELLED;
    default: return CF_DEFERRED;
    }
}

int qoutcome_apply(struct wctx *w, const struct queue_op *op,
                   const struct op_outcome *o, struct hygiene_via *via,
                   int *status)
{
    unsigned char key[8], rkey[16];
    struct queue_delivery d;
    MDB_val k = { 8, key }, v;
    int rc, err;

    be64_put(key, o->delivery);
    rc = mdb_get(w->txn, w->q->dbi[DB_DELIVERIES], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *status = QUEUE_ENOTFOUND;
        return 0;
    }
    if (rc)
        return wctx_fail(w, rc);
    if ((err = qdelivery_decode(&v, o->delivery, &d))) {
        *status = err;
        return 0;
    }
    if (QUEUE_STATE_TERMINAL(d.state)) {
        *status = QUEUE_ESTATE;
        return 0;
    }

    int type = o->type;
    uint16_t d_attempts0 = d.attempts;
    int64_t next = w->now, deadline = d.created + w->q->opt.max_age;
    /* an admin bounce (queued.c) ends a delivery without an attempt */
    if (type == QUEUE_EV_DEFERRED || type == QUEUE_EV_DELIVERED ||
        (type == QUEUE_EV_BOUNCED && o->category != QUEUE_CAT_ADMIN))
        d.attempts++;
    if (type == QUEUE_EV_DEFERRED) {
        if (w->now >= deadline) {
            type = QUEUE_EV_EXPIRED;
        } else {
            next = o->retry_at > 0 ? o->retry_at
                                   : w->now + queue_retry_delay(w->q, d.attempts);
            if (next > deadline)
                next = deadline;
        }
    } else if (type == QUEUE_EV_NONE) {
        next = o->retry_at;
        /* parking a campaign resumed meanwhile: due now instead */
        if (d.campaign && next == queue_park_time(d.campaign) &&
            !qpark_still_wanted(w->q, w->txn, d.campaign))
            next = w->now;
        /* parking mail of an account enabled meanwhile: due now too */
        if (d.account && next == queue_account_park_time(d.account) &&
            !qaccount_held(w->q, w->txn, d.account))
            next = w->now;
    }

    /* move or drop the ready entry */
    be64_put(rkey, (uint64_t)d.next_attempt);
    be64_put(rkey + 8, d.id);
    MDB_val rk = { 16, rkey }, rv = { 0, NULL };
    rc = mdb_del(w->txn, w->q->dbi[DB_READY], &rk, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    bool terminal = QUEUE_EV_TERMINAL(type);
    if (!terminal) {
        be64_put(rkey, (uint64_t)next);
        if ((rc = mdb_put(w->txn, w->q->dbi[DB_READY], &rk, &rv, 0)))
            return wctx_fail(w, rc);
    }
    d.next_attempt = next;

    if (type != QUEUE_EV_NONE) {
        struct queue_event ev = {
            .delivery = d.id, .campaign = d.campaign, .account = d.account,
            .type = (uint8_t)type, .category = o->category, .code = o->code,
            .attempt = d.attempts, .prev = d.last_event,
        };
        take_str(ev.enhanced, op->arena, o->enhanced_off, o->enhanced_len);
        take_str(ev.mx, op->arena, o->mx_off, o->mx_len);
        take_str(ev.text, op->arena, o->text_off, o->text_len);
        memcpy(ev.rcpt, d.rcpt, sizeof ev.rcpt);
        struct series_hint hint = {
            .delivery = d.id, .created = d.created, .ref = d.ref,
            .attempt = d.attempts > d_attempts0,
            .site = o->site_len ? op->arena + o->site_off : NULL,
            .site_len = o->site_len,
        };
        w->series_hint = &hint;
        err = qevent_append(w, &ev);
        w->series_hint = NULL;
        if (err)
            return err;
        d.last_event = ev.seq;
        if (terminal)
            d.state = (uint8_t)type;
        const char *dom = qrcpt_domain(d.rcpt);
        size_t dl = strlen(dom);
        if ((err = counters_add(w, d.account, d.campaign, dom, dl,
                                field_of(type), 1)))
            return err;
        if (terminal &&
            (err = counters_add(w, d.account, d.campaign, dom, dl, CF_QUEUED,
                                -1)))
            return err;
        /* usage (queue_admin.h): "sent" as README defines it, once per
         * recipient: delivered + bounced, the same count as every report */
        if (d.account) {
            unsigned dlv = type == QUEUE_EV_DELIVERED;
            unsigned bnc = type == QUEUE_EV_BOUNCED;
            unsigned sent = dlv | bnc;
            if (sent &&
                (err = qusage_add(w, d.account, (uint32_t)(w->now / 86400),
                                  sent, dlv, bnc)))
                return err;
            /* list hygiene commits with the outcome (hygiene.c) */
            if ((err = hygiene_outcome(w, d.account, d.rcpt, type,
                                       o->category, via)))
                return err;
        }
    }

    unsigned char rec[DELIVERY_FIXED + QUEUE_MAX_RCPT];
    MDB_val nv = { qdelivery_encode(rec, &d), rec };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_DELIVERIES], &k, &nv, 0)))
        return wctx_fail(w, rc);
    if (terminal && d.campaign == 0 && (err = message_unref(w, d.ref)))
        return err;
    return 0;
}

int queue_op_apply_outcomes(struct wctx *w, struct queue_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        int status = 0;
        int err = qoutcome_apply(w, op, &op->outcomes[i], NULL, &status);
        if (err)
            return err;
        if (status && !op->status)
            op->status = status;
    }
    return 0;
}
