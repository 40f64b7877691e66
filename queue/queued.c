/*
 * queued.c - the admin's operations on queued mail (queue_queued.h):
 * walk the queued deliveries, make deferred mail due now, bounce queued
 * mail administratively.
 *
 * DESCRIPTION
 *   Every queued delivery has one entry in the ready index (due . id), so
 *   a walk of the index with a lookup of each row sees the whole queue in
 *   one snapshot.  The two writes are OP_QUEUED operations: the writer
 *   runs one batch of the walk inside its group's transaction and says
 *   where it stopped; the caller submits the next batch from there until
 *   the index is done.  A batch touches at most QUEUED_BATCH_ROWS rows and
 *   reads at most QUEUED_BATCH_SCAN index entries, so neither a large
 *   queue nor a large selection makes one huge transaction.  A batch that
 *   runs again (the group retried after map growth) starts from the same
 *   place and resets its results.
 *
 *   retry: a selected delivery tried at least once, due later than now
 *   and not parked, moves to now (its row and its index entry together,
 *   as a resume does: park.c).  The engine claims it on its next claim.
 *   bounce: a selected queued delivery gets the outcome "bounced",
 *   category admin, through qoutcome_apply(): the same counters, usage
 *   and event as any bounce, one terminal event (a delivery the engine
 *   holds claimed keeps that one: its own outcome later fails with
 *   QUEUE_ESTATE), and list hygiene skips the category.
 *
 * DIAGNOSTICS
 *   QUEUE_ECORRUPT for an index key of the wrong size; LMDB failures as
 *   queue codes; -EINVAL for a bad reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"
#include "queue_queued.h"

#define QUEUED_BATCH_ROWS 2000
#define QUEUED_BATCH_SCAN 100000

bool queue_due_parked(int64_t due)
{
    return due >= queue_park_time(0);
}

bool queue_select_match(const struct queue_select *s,
                        const struct queue_queued *d)
{
    if (s->by_account && d->account != s->account)
        return false;
    if (s->campaign && d->campaign != s->campaign)
        return false;
    if (!s->ndomains)
        return true;
    for (size_t i = 0; i < s->ndomains; i++)
        if (!strcmp(s->domains[i], d->domain))
            return true;
    return false;
}

/* The public view of a decoded row. */
static void view_of(const struct queue_delivery *r, int64_t due,
                    struct queue_queued *d)
{
    *d = (struct queue_queued){
        .id = r->id, .campaign = r->campaign, .account = r->account,
        .attempts = r->attempts, .created = r->created, .due = due,
        .last_event = r->last_event, .rcpt = r->rcpt,
        .domain = qrcpt_domain(r->rcpt),
    };
}

long queue_queued_walk(struct queue *q,
                       int (*cb)(void *arg, const struct queue_queued *d),
                       void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    long n = 0;
    int err, rc;
    struct queue_delivery *r = malloc(sizeof *r);

    if (!r)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(r);
        return err;
    }
    if (q->absent[DB_READY]) {
        queue_read_end(q, txn);
        free(r);
        return 0;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur))) {
        queue_read_end(q, txn);
        free(r);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16) {
            err = QUEUE_ECORRUPT;
            break;
        }
        int64_t due = (int64_t)be64_get(k.mv_data);
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        unsigned char key[8];
        MDB_val dk = { 8, key }, dv;
        be64_put(key, id);
        int grc = mdb_get(txn, q->dbi[DB_DELIVERIES], &dk, &dv);
        if (grc && grc != MDB_NOTFOUND) {
            err = queue_err_mdb(grc);
            break;
        }
        if (grc || qdelivery_decode(&dv, id, r) ||
            QUEUE_STATE_TERMINAL(r->state))
            continue;   /* a stale index entry */
        struct queue_queued d;
        view_of(r, due, &d);
        n++;
        if (cb(arg, &d))
            break;
    }
    if (rc && rc != MDB_NOTFOUND && !err)
        err = queue_err_mdb(rc);
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(r);
    return err ? err : n;
}

int queue_deliveries_ended(struct queue *q, const uint64_t *ids, size_t n,
                           unsigned char *ended)
{
    MDB_txn *txn;
    struct queue_delivery r;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        unsigned char key[8];
        MDB_val k = { 8, key }, v;
        be64_put(key, ids[i]);
        int rc = mdb_get(txn, q->dbi[DB_DELIVERIES], &k, &v);
        if (rc && rc != MDB_NOTFOUND) {
            err = queue_err_mdb(rc);
            break;
        }
        ended[i] = !rc && !qdelivery_decode(&v, ids[i], &r) &&
                   QUEUE_STATE_TERMINAL(r.state);
    }
    queue_read_end(q, txn);
    return err;
}

/* One batch of a retry or bounce, the caller's (it waits for the op). */
struct qsel_job {
    const struct queue_select *sel;
    bool bounce;
    struct queue_op text;        /* bounce: arena "5.0.0" then the text */
    struct op_outcome o;         /* bounce: the outcome, delivery unset */
    int64_t from_due;            /* where this batch starts */
    uint64_t from_id;
    /* results of the batch */
    uint64_t done;
    bool more;
    int64_t next_due;
    uint64_t next_id;
};

/* Apply one batch in w's txn: 0, or a txn failure. */
int queue_op_apply_queued(struct wctx *w, struct queue_op *op)
{
    struct qsel_job *j = op->admin_arg;
    int64_t park = queue_park_time(0);
    unsigned char key[16];
    MDB_cursor *cur;
    MDB_val k = { 16, key }, v;
    unsigned scanned = 0;
    int rc, err = 0;

    j->done = 0;
    j->more = false;
    int64_t start = j->from_due;
    if (!j->bounce && start <= w->now)
        start = w->now + 1;   /* what is due now needs no retry */
    if ((rc = mdb_cursor_open(w->txn, w->q->dbi[DB_READY], &cur)))
        return wctx_fail(w, rc);
    be64_put(key, (uint64_t)start);
    be64_put(key + 8, start == j->from_due ? j->from_id : 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;) {
        if (k.mv_size != 16) {
            err = QUEUE_ECORRUPT;
            break;
        }
        int64_t due = (int64_t)be64_get(k.mv_data);
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        if (!j->bounce && due >= park)
            break;   /* parked mail is not deferred */
        if (scanned >= QUEUED_BATCH_SCAN || j->done >= QUEUED_BATCH_ROWS) {
            j->more = true;
            j->next_due = due;
            j->next_id = id;
            break;
        }
        scanned++;
        struct queue_delivery r;
        unsigned char dkey[8];
        MDB_val dk = { 8, dkey }, dv;
        be64_put(dkey, id);
        int grc = mdb_get(w->txn, w->q->dbi[DB_DELIVERIES], &dk, &dv);
        if (grc && grc != MDB_NOTFOUND) {
            rc = grc;
            break;
        }
        struct queue_queued d;
        bool take = !grc && !qdelivery_decode(&dv, id, &r) &&
                    !QUEUE_STATE_TERMINAL(r.state) && r.next_attempt == due;
        if (take) {
            view_of(&r, due, &d);
            take = queue_select_match(j->sel, &d) &&
                   (j->bounce || r.attempts > 0);
        }
        if (!take) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (j->bounce) {
            int status = 0;
            struct op_outcome o = j->o;
            o.delivery = id;
            if ((err = qoutcome_apply(w, &j->text, &o, NULL, &status)))
                break;
            if (!status)
                j->done++;
        } else {
            if ((rc = mdb_cursor_del(cur, 0)) ||
                (rc = qpark_move_to_now(w->q, w->txn, w->now, id, &r)))
                break;
            j->done++;
        }
        /* the entry is gone or moved before the scan: go on after it */
        be64_put(key, (uint64_t)due);
        be64_put(key + 8, id + 1);
        k = (MDB_val){ 16, key };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (err)
        return err;
    if (rc && rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    /* a running engine drops the bounced mail it holds claimed but has
     * not begun to send when it sees the controls change (controls.c) */
    uint64_t gen;
    if (j->bounce && j->done &&
        ((err = qmeta_get_u64(w->q, w->txn, "controls_gen", &gen)) ||
         (err = qmeta_put_u64(w->q, w->txn, "controls_gen", gen + 1))))
        return err > 0 ? wctx_fail(w, err) : err;
    return 0;
}

/* Run the job batch after batch through the writer; *done sums them. */
static int run_job(struct queue *q, struct qsel_job *j, uint64_t *done)
{
    *done = 0;
    if (q->readonly)
        return -EROFS;
    j->from_due = 0;
    j->from_id = 0;
    for (;;) {
        struct queue_op *op = calloc(1, sizeof *op);
        if (!op)
            return -ENOMEM;
        op->kind = OP_QUEUED;
        op->weight = QUEUED_BATCH_ROWS;
        op->admin_arg = j;
        int err = sync_submit_wait(q, op);
        if (err)
            return err;
        *done += j->done;
        if (!j->more)
            return 0;
        j->from_due = j->next_due;
        j->from_id = j->next_id;
    }
}

int queue_retry_now(struct queue *q, const struct queue_select *s,
                    uint64_t *moved)
{
    struct qsel_job j = { .sel = s };
    return run_job(q, &j, moved);
}

int queue_bounce_admin(struct queue *q, const struct queue_select *s,
                       const char *reason, uint64_t *bounced)
{
    char buf[5 + 32 + QUEUE_MAX_ADMIN_REASON];
    size_t rlen = reason ? strnlen(reason, QUEUE_MAX_ADMIN_REASON + 1) : 0;
    *bounced = 0;
    if (!rlen || rlen > QUEUE_MAX_ADMIN_REASON) {
        queue_set_detail("the reason must be 1..%d bytes",
                         QUEUE_MAX_ADMIN_REASON);
        return -EINVAL;
    }
    for (size_t i = 0; i < rlen; i++)
        if ((unsigned char)reason[i] < ' ' || reason[i] == 0x7f) {
            queue_set_detail("control characters in the reason");
            return -EINVAL;
        }
    int n = snprintf(buf, sizeof buf, "5.0.0administrative bounce: %s",
                     reason);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -EINVAL;
    struct qsel_job j = {
        .sel = s, .bounce = true,
        .text = { .arena = buf, .arena_len = (size_t)n },
        .o = { .type = QUEUE_EV_BOUNCED, .category = QUEUE_CAT_ADMIN,
               .enhanced_off = 0, .enhanced_len = 5, .text_off = 5,
               .text_len = (uint16_t)(n - 5) },
    };
    return run_job(q, &j, bounced);
}
