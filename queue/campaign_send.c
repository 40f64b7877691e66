/*
 * campaign_send.c - sending a campaign: the resumable enqueue of its
 * recipients, and the states that follow from time and counters.
 *
 * DESCRIPTION
 *   A send runs in three steps.  queue_campaign_send_begin() moves a draft
 *   to sending (or scheduled) and tells where to start; the caller then
 *   submits batches, each of which queues its recipients and moves the
 *   campaign's cursor (the last contact id handled) from `after` to `last`
 *   in the same transaction (qcampaign_send_step(), called by the writer
 *   from queue_op_apply_campaign()); queue_campaign_send_end() marks the send
 *   complete.  A send that stops half way (killed, spool full) leaves a
 *   cursor that the next send continues from, and a batch whose `after`
 *   is not the cursor fails, so two sends at once never queue a contact
 *   twice and a cancel stops the enqueue at the next batch.
 *
 *   queue_campaign_send_all() is the enqueue between begin and end: it
 *   reads the list in contact-id order, SEND_CHUNK contacts per read
 *   transaction, skips invalid addresses and those on the owner's
 *   suppression list, and submits each chunk as one batch without
 *   waiting (the writer commits one while the next is read), then waits
 *   for them all.
 *
 *   Recipients of a campaign whose schedule is ahead are queued due at the
 *   schedule (ops.c), so the engine leaves them alone until then.
 *
 *   queue_campaign_settle() persists what follows without anyone acting:
 *   scheduled -> sending when the schedule has come, and sending or paused
 *   -> done once the send is complete and the campaign's counters count
 *   every recipient terminal.  The counters are written in the same
 *   transactions as the outcomes, so "done" can never run ahead of the
 *   mail, whether or not the engine restarted in between.
 *
 * DIAGNOSTICS
 *   QUEUE_ESTATE when the state or the cursor does not allow the step
 *   (queue_last_detail() says why, for the synchronous calls),
 *   QUEUE_ENOTFOUND for an unknown campaign.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_int.h"

/* Whether a campaign in state s has a send under way (or paused). */
static bool send_state(int s)
{
    return s == QUEUE_CAMPAIGN_SCHEDULED || s == QUEUE_CAMPAIGN_SENDING ||
           s == QUEUE_CAMPAIGN_PAUSED;
}

/* ------------------------------------------------------------- begin */

struct begin_arg {
    uint64_t id;
    const struct queue_actor *by;
    uint64_t cursor;
    struct queue_campaign c;
};

/* Start a send (draft -> sending or scheduled) or find where an
 * interrupted one stopped; audited either way. */
static int do_begin(struct admin_tx *t, void *arg)
{
    struct begin_arg *ba = arg;
    struct queue_campaign *c = &ba->c;
    int64_t now = t->now_ms / 1000;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], when[48] = "";
    const char *result = "started";
    int err, rc;

    if ((err = qcampaign_load(t->q, t->txn, ba->id, c, false)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no campaign %llu",
                         (unsigned long long)ba->id) : err;
    if (c->state == QUEUE_CAMPAIGN_DRAFT) {
        bool later = c->schedule > now;
        if ((err = qcampaign_enter(t, c, later ? QUEUE_CAMPAIGN_SCHEDULED
                                              : QUEUE_CAMPAIGN_SENDING,
                                  now)))
            return err;
        if ((rc = qcampaign_status_put(t->q, t->txn, c)))
            return admin_mdb(t, rc);
        if (later)
            snprintf(when, sizeof when, ", due at %lld",
                     (long long)c->schedule);
    } else if (send_state(c->state) && !c->send_complete) {
        result = "resumed";
        snprintf(when, sizeof when, ", after contact %llu",
                 (unsigned long long)c->send_cursor);
    } else {
        return admin_fail(t, QUEUE_ESTATE, "campaign %llu is %s%s: it "
                          "cannot be sent again", (unsigned long long)c->id,
                          queue_campaign_state_name(c->state),
                          send_state(c->state) ? " and every recipient is "
                                                 "queued" : "");
    }
    if (snprintf(obj, sizeof obj, "campaign %llu (%s) to list %llu%s",
                 (unsigned long long)c->id, c->name,
                 (unsigned long long)c->list, when) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;
    if ((err = admin_audit_put(t, ba->by, c->account, "campaign send", obj,
                               result)))
        return err;
    ba->cursor = c->send_cursor;
    return 0;
}

int queue_campaign_send_begin(struct queue *q, uint64_t id,
                              const struct queue_actor *by,
                              uint64_t *cursor)
{
    struct begin_arg *ba = calloc(1, sizeof *ba);
    if (!ba)
        return -ENOMEM;
    ba->id = id;
    ba->by = by;
    int err = admin_run(q, do_begin, ba);
    if (!err && cursor)
        *cursor = ba->cursor;
    free(ba);
    return err;
}

/* ------------------------------------------------------------ batches */

int queue_campaign_submit_batch(struct queue *q, uint64_t campaign,
                                uint64_t after, uint64_t last,
                                const struct queue_campaign_rcpt *rcpts,
                                size_t n, uint64_t suppressed,
                                struct queue_completer *cmp,
                                queue_done_cb cb, void *arg)
{
    struct queue_op *op;
    if (last < after) {
        queue_set_detail("a send batch cannot move the cursor back");
        return -EINVAL;
    }
    if (q->absent[DB_CAMPAIGNS] || q->readonly)
        return -EROFS;
    int err = qcampaign_op_new(&op, 0, campaign, rcpts, n, true);
    if (err)
        return err;
    op->send = true;
    op->send_after = after;
    op->send_last = last;
    op->send_suppressed = suppressed;
    return queue_op_submit(q, op, cmp, cb, arg);
}

int qcampaign_send_step(struct wctx *w, struct queue_op *op)
{
    struct queue_campaign c;
    int err = qcampaign_load(w->q, w->txn, op->campaign, &c, false);
    if (err == QUEUE_ENOTFOUND || err == QUEUE_ECORRUPT) {
        op->status = err;
        return 0;
    }
    if (err)
        return err;
    if (!send_state(c.state) || c.send_complete ||
        c.send_cursor != op->send_after) {
        op->status = QUEUE_ESTATE;   /* cancelled, done, or another send */
        return 0;
    }
    c.send_cursor = op->send_last;
    c.recipients += op->n;
    c.suppressed_at_send += op->send_suppressed;
    int rc = qcampaign_status_put(w->q, w->txn, &c);
    if (rc)
        return wctx_fail(w, rc);
    op->account = c.account;
    op->due = c.schedule > w->now ? c.schedule : 0;
    /* the time series count them with the batch (series.c) */
    return series_suppressed_at_send(w, c.account, c.id, op->send_suppressed);
}

/* ------------------------------------------------------- the enqueue */

#define SEND_CHUNK 10000
#define SEND_ARENA ((size_t)SEND_CHUNK * (QUEUE_MAX_RCPT + 1))

/* One chunk of contacts read from the list. */
struct send_chunk {
    size_t n;
    uint64_t last;                       /* id of the last contact read */
    uint64_t ids[SEND_CHUNK];
    uint32_t off[SEND_CHUNK];            /* address in arena */
    char *arena;
    size_t alen;
    struct queue_campaign_rcpt rcpts[SEND_CHUNK];
};

/* queue_contacts() callback: copy the contact's id and address. */
static int send_collect(void *arg, const struct queue_contact *c)
{
    struct send_chunk *ch = arg;
    size_t len = strnlen(c->email, QUEUE_MAX_RCPT + 1);
    ch->last = c->id;
    if (len > QUEUE_MAX_RCPT)
        len = 0;   /* kept as an empty, invalid address: skipped */
    ch->ids[ch->n] = c->id;
    ch->off[ch->n] = (uint32_t)ch->alen;
    memcpy(ch->arena + ch->alen, c->email, len);
    ch->arena[ch->alen + len] = 0;
    ch->alen += len + 1;
    ch->n++;
    return ch->n >= SEND_CHUNK;
}

/* Completion of one batch (writer thread): keep the first failure. */
static void send_batch_done(void *arg, int status, uint64_t first,
                            uint64_t msg)
{
    int *first_err = arg, none = 0;
    (void)first;
    (void)msg;
    if (status)
        __atomic_compare_exchange_n(first_err, &none, status, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Drop the contacts of ch that are invalid or on owner's list, filling
 * ch->rcpts; *n gets how many are left.  0 or a queue error. */
static int send_filter(struct queue *q, uint32_t owner,
                       struct send_chunk *ch, struct queue_send_run *run,
                       size_t *n, uint64_t *supp)
{
    *n = 0;
    *supp = 0;
    for (size_t i = 0; i < ch->n; i++) {
        const char *addr = ch->arena + ch->off[i];
        bool yes = false;
        if (queue_check_rcpt(addr)) {
            run->invalid++;
            continue;
        }
        int err = queue_suppressed(q, owner, addr, &yes);
        if (err)
            return err;
        if (yes) {
            (*supp)++;
            continue;
        }
        ch->rcpts[*n].contact = ch->ids[i];
        ch->rcpts[*n].rcpt = addr;
        (*n)++;
    }
    return 0;
}

int queue_campaign_send_all(struct queue *q, uint64_t campaign,
                            uint64_t list, uint32_t owner,
                            struct queue_send_run *run)
{
    struct send_chunk *ch = calloc(1, sizeof *ch);
    int err = 0, batch_err = 0;
    if (!ch || !(ch->arena = malloc(SEND_ARENA))) {
        free(ch);
        return -ENOMEM;
    }
    for (;;) {
        ch->n = ch->alen = 0;
        long got = queue_contacts(q, list, run->cursor, SEND_CHUNK,
                                  send_collect, ch);
        if (got < 0) {
            err = (int)got;
            break;
        }
        if (ch->n == 0)
            break;
        size_t n;
        uint64_t supp;
        if ((err = send_filter(q, owner, ch, run, &n, &supp)))
            break;
        err = queue_campaign_submit_batch(q, campaign, run->cursor,
                                          ch->last, ch->rcpts, n, supp, NULL,
                                          send_batch_done, &batch_err);
        if (err)
            break;
        run->contacts += ch->n;
        run->queued += n;
        run->suppressed += supp;
        run->cursor = ch->last;
        if (__atomic_load_n(&batch_err, __ATOMIC_SEQ_CST) ||
            ch->n < SEND_CHUNK)
            break;
    }
    free(ch->arena);
    free(ch);
    int ferr = queue_flush(q);   /* every batch done: batch_err is final */
    if (!err)
        err = __atomic_load_n(&batch_err, __ATOMIC_SEQ_CST);
    return err ? err : ferr;
}

/* ---------------------------------------------------------------- end */

struct end_arg {
    uint64_t id, last;
    const struct queue_actor *by;
    struct queue_campaign c;
};

/* Mark a send complete if its cursor is still ours; audited. */
static int do_end(struct admin_tx *t, void *arg)
{
    struct end_arg *ea = arg;
    struct queue_campaign *c = &ea->c;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int err, rc;

    if ((err = qcampaign_load(t->q, t->txn, ea->id, c, false)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no campaign %llu",
                         (unsigned long long)ea->id) : err;
    if (!send_state(c->state) || c->send_complete)
        return admin_fail(t, QUEUE_ESTATE, "campaign %llu is %s: no send to "
                          "end", (unsigned long long)c->id,
                          queue_campaign_state_name(c->state));
    if (c->send_cursor != ea->last)
        return admin_fail(t, QUEUE_ESTATE, "campaign %llu: another send "
                          "moved on to contact %llu", (unsigned long long)c->id,
                          (unsigned long long)c->send_cursor);
    c->send_complete = true;
    if (c->recipients == 0 &&
        (err = qcampaign_enter(t, c, QUEUE_CAMPAIGN_DONE, t->now_ms / 1000)))
        return err;
    if ((rc = qcampaign_status_put(t->q, t->txn, c)))
        return admin_mdb(t, rc);
    if (snprintf(obj, sizeof obj, "campaign %llu (%s): %llu queued, %llu "
                 "suppressed", (unsigned long long)c->id, c->name,
                 (unsigned long long)c->recipients,
                 (unsigned long long)c->suppressed_at_send) >=
        (int)sizeof obj)
        obj[sizeof obj - 1] = 0;
    return admin_audit_put(t, ea->by, c->account, "campaign send", obj, "ok");
}

int queue_campaign_send_end(struct queue *q, uint64_t id, uint64_t last,
                            const struct queue_actor *by)
{
    struct end_arg *ea = calloc(1, sizeof *ea);
    if (!ea)
        return -ENOMEM;
    ea->id = id;
    ea->last = last;
    ea->by = by;
    int err = admin_run(q, do_end, ea);
    free(ea);
    return err;
}

/* ------------------------------------------------------------- settle */

int qcampaign_counts_txn(struct queue *q, MDB_txn *txn, uint64_t id,
                         struct queue_counts *k)
{
    unsigned char key[9] = { 'c' };
    uint64_t a[CF_COUNT] = { 0 };
    be64_put(key + 1, id);
    MDB_val kv = { sizeof key, key }, v;
    memset(k, 0, sizeof *k);
    int rc = mdb_get(txn, q->dbi[DB_COUNTERS], &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    if (qcounts_load(&v, a))
        return QUEUE_ECORRUPT;
    k->queued = a[CF_QUEUED];
    k->enqueued = a[CF_ENQUEUED];
    k->delivered = a[CF_DELIVERED];
    k->deferred = a[CF_DEFERRED];
    k->bounced = a[CF_BOUNCED];
    k->expired = a[CF_EXPIRED];
    k->suppressed = a[CF_SUPPRESSED];
    k->cancelled = a[CF_CANCELLED];
    return 0;
}

int qcampaign_derived_state(const struct queue_campaign *c,
                            const struct queue_counts *k, int64_t now)
{
    int s = c->state;
    if (s == QUEUE_CAMPAIGN_SCHEDULED && c->schedule <= now)
        s = QUEUE_CAMPAIGN_SENDING;
    if ((s == QUEUE_CAMPAIGN_SENDING || s == QUEUE_CAMPAIGN_PAUSED) &&
        c->send_complete && k->queued == 0 &&
        k->delivered + k->bounced + k->expired + k->suppressed +
        k->cancelled >= c->recipients)
        s = QUEUE_CAMPAIGN_DONE;
    return s;
}

struct settle_arg {
    uint64_t id;
    int state;
    struct queue_campaign c;
};

/* Store the derived state, checked again inside the change. */
static int do_settle(struct admin_tx *t, void *arg)
{
    struct settle_arg *sa = arg;
    struct queue_campaign *c = &sa->c;
    struct queue_counts k;
    int64_t now = t->now_ms / 1000;
    int err, rc;

    if ((err = qcampaign_load(t->q, t->txn, sa->id, c, false)) ||
        (err = qcampaign_counts_txn(t->q, t->txn, sa->id, &k)))
        return err;
    int to = qcampaign_derived_state(c, &k, now);
    sa->state = c->state;
    if (to == c->state)
        return 0;
    if (c->state == QUEUE_CAMPAIGN_SCHEDULED &&
        (err = qcampaign_enter(t, c, QUEUE_CAMPAIGN_SENDING, c->schedule)))
        return err;
    if (to == QUEUE_CAMPAIGN_DONE &&
        (err = qcampaign_enter(t, c, QUEUE_CAMPAIGN_DONE, now)))
        return err;
    if ((rc = qcampaign_status_put(t->q, t->txn, c)))
        return admin_mdb(t, rc);
    sa->state = c->state;
    return 0;
}

int queue_campaign_settle(struct queue *q, uint64_t id, int *state)
{
    struct settle_arg *sa = calloc(1, sizeof *sa);
    MDB_txn *txn;
    struct queue_counts k;
    int err;

    if (!sa)
        return -ENOMEM;
    /* read first: most calls change nothing and need no write */
    if ((err = queue_read_begin(q, &txn)))
        goto out;
    err = qcampaign_load(q, txn, id, &sa->c, false);
    if (!err)
        err = qcampaign_counts_txn(q, txn, id, &k);
    queue_read_end(q, txn);
    if (err)
        goto out;
    sa->state = qcampaign_derived_state(&sa->c, &k, spool_now(q));
    if (sa->state != sa->c.state && !q->readonly) {
        sa->id = id;
        err = admin_run(q, do_settle, sa);
    }
out:
    if (!err && state)
        *state = sa->state;
    free(sa);
    return err;
}
