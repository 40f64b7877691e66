/*
 * claim.c - handing due deliveries to the engine.
 *
 * DESCRIPTION
 *   A claim reads the ready index in due order and leases each delivery in
 *   this process's memory (lease.c).  Nothing is written: a delivery stays
 *   in the ready index until its outcome commits, so when the process dies
 *   its claims vanish with it and the deliveries are due again for the next
 *   process.  The claim lock (QUEUE_OPEN_CLAIM) keeps a second process from
 *   claiming the same deliveries.
 *
 *   A claim resumes from where the previous one stopped, so leased entries
 *   at the head of the index are not read again and again; once a second,
 *   or after a release, it starts over from the beginning to pick up
 *   anything that became due behind the resume point.
 *
 *   A delivery of a cancelled campaign is handed out marked cancelled: the
 *   cancel moved its campaign's later mail to now in the transaction that
 *   set the control, so the claim sees both or neither and the engine
 *   never takes such mail for sendable before it has read the controls.
 *
 *   Ordering with the writer: the writer drops a lease only after the
 *   outcome's transaction committed, and a claim takes its read snapshot
 *   while holding the claim mutex, so a delivery can never be claimed from
 *   a snapshot older than its outcome once its lease is gone.  An outcome
 *   that could not be written because the spool is full (or otherwise
 *   unwritable) keeps its lease: the engine holds the outcome and submits
 *   it again, and the delivery, perhaps already accepted by its receiver,
 *   is not handed out a second time meanwhile.
 *
 * DIAGNOSTICS
 *   -EPERM when the spool was not opened with QUEUE_OPEN_CLAIM; -ENOMEM
 *   when the lease table cannot grow; QUEUE_ECORRUPT when a page of the
 *   ready index or of a delivery it names cannot be read (what was claimed
 *   before it is still returned).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "queue_int.h"

/* Monotonic milliseconds. */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int queue_claim(struct queue *q, int64_t now, struct queue_claim *out,
                size_t max)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char start[16];
    MDB_val k, v;
    int rc, err = 0;
    size_t n = 0;
    uint64_t last_campaign = 0;
    bool last_cancelled = false;

    if (q->claim_fd < 0)
        return -EPERM;
    if (max == 0)
        return 0;
    pthread_mutex_lock(&q->claim_mu);
    if ((err = queue_read_begin(q, &txn))) {
        pthread_mutex_unlock(&q->claim_mu);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur))) {
        err = queue_err_mdb(rc);
        goto out;
    }
    uint64_t t = mono_ms();
    if (q->scan_id && t - q->scan_reset_ms < 1000) {
        be64_put(start, (uint64_t)q->scan_due);
        be64_put(start + 8, q->scan_id);
        k.mv_size = 16;
        k.mv_data = start;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        q->scan_reset_ms = t;
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; rc == 0 && n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16) {
            err = QUEUE_ECORRUPT;
            break;
        }
        int64_t due = (int64_t)be64_get(k.mv_data);
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        if (due > now)
            break;
        q->scan_due = due;
        q->scan_id = id;
        if (lease_has(&q->leases, id))
            continue;
        unsigned char key[8];
        struct queue_delivery d;
        MDB_val dk = { 8, key }, dv;
        be64_put(key, id);
        int grc = mdb_get(txn, q->dbi[DB_DELIVERIES], &dk, &dv);
        if (grc && grc != MDB_NOTFOUND) {
            /* a page LMDB cannot read: the transaction is unusable now,
             * so stop here and say why (not EINVAL on the next step) */
            err = queue_err_mdb(grc);
            break;
        }
        if (grc || qdelivery_decode(&dv, id, &d) ||
            QUEUE_STATE_TERMINAL(d.state))
            continue; /* stale index entry: the writer will not see it */
        if ((err = lease_add(&q->leases, id)))
            break;
        struct queue_claim *c = &out[n++];
        c->id = id;
        c->campaign = d.campaign;
        c->ref = d.ref;
        c->account = d.account;
        c->attempts = d.attempts;
        c->created = d.created;
        c->due = due;
        memcpy(c->rcpt, d.rcpt, sizeof c->rcpt);
        c->domain_off = (uint16_t)(qrcpt_domain(c->rcpt) - c->rcpt);
        /* a cancel moves its campaign's later mail to now in the same
         * transaction as its control: seen together here, so none of it
         * is handed out as sendable (one lookup per run of a campaign) */
        if (d.campaign && d.campaign != last_campaign) {
            last_campaign = d.campaign;
            last_cancelled = qcampaign_cancelled(q, txn, d.campaign);
        }
        c->cancelled = d.campaign && last_cancelled;
    }
    if (rc && rc != MDB_NOTFOUND && !err)
        err = queue_err_mdb(rc);
    mdb_cursor_close(cur);
out:
    queue_read_end(q, txn);
    pthread_mutex_unlock(&q->claim_mu);
    if (err && n == 0)
        return err;
    return (int)n;
}

void queue_release(struct queue *q, uint64_t id)
{
    pthread_mutex_lock(&q->claim_mu);
    lease_del(&q->leases, id);
    q->scan_id = 0; /* the released entry may lie behind the resume point */
    pthread_mutex_unlock(&q->claim_mu);
}

size_t queue_claimed(struct queue *q)
{
    pthread_mutex_lock(&q->claim_mu);
    size_t n = q->leases.count;
    pthread_mutex_unlock(&q->claim_mu);
    return n;
}

/* Drop the leases of an outcome op once its transaction has ended, unless
 * the spool could not take it (the caller submits it again). */
void claim_release_op(struct queue *q, const struct queue_op *op)
{
    if (q->claim_fd < 0 || queue_err_unwritable(op->status))
        return;
    pthread_mutex_lock(&q->claim_mu);
    for (size_t i = 0; i < op->n; i++)
        lease_del(&q->leases, op->outcomes[i].delivery);
    pthread_mutex_unlock(&q->claim_mu);
}
