/*
 * stats.c - figures about a running spool for monitoring: the writer's
 * commit latency and the depth of the ready index.
 *
 * DESCRIPTION
 *   The writer times each commit group (two clock reads per group, not
 *   per operation: apply, commit and fsync together) and counts it into
 *   a fixed histogram under the writer's mutex; queue_commit_stats()
 *   copies it under the same mutex.
 *
 *   queue_ready_depth() splits the ready index (time, delivery) into what
 *   is due now, what waits for a later time (retries, schedules, account
 *   caps) and what is parked (paused campaigns, held accounts).  The
 *   index's entry count comes from LMDB's statistics at no cost; only the
 *   due part is walked from the front and the parked part from the back,
 *   each up to a cap, and the waiting part is the rest.  A walk that hit
 *   its cap says so (the count is then a lower bound).
 *
 * DIAGNOSTICS
 *   queue_ready_depth() returns 0 or a negative code (a read transaction
 *   that cannot begin, a damaged key: QUEUE_ECORRUPT).
 */
#include <string.h>
#include <time.h>

#include "queue_int.h"

const uint32_t queue_commit_bounds_us[QUEUE_COMMIT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000, 5000000, 10000000,
};

uint64_t qstats_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void qstats_commit(struct queue *q, uint64_t us)
{
    struct queue_commit_stats *s = &q->commit_stats;
    unsigned b = 0;
    while (b < QUEUE_COMMIT_BUCKETS && us > queue_commit_bounds_us[b])
        b++;
    s->bucket[b]++;
    s->count++;
    s->sum_us += us;
}

int queue_commit_stats(struct queue *q, struct queue_commit_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->commit_stats;
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* The time of a ready key (big-endian u64 first), or -1 for a bad key. */
static int64_t key_time(const MDB_val *k)
{
    if (k->mv_size != 16)
        return -1;
    const unsigned char *p = k->mv_data;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | p[i];
    return (int64_t)t;
}

int queue_ready_depth(struct queue *q, int64_t now, uint64_t cap,
                      struct queue_depth *d)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_stat st;
    MDB_val k, v;
    int err, rc;
    int64_t park = queue_park_time(0);

    memset(d, 0, sizeof *d);
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if (q->absent[DB_READY])
        goto done;
    if ((rc = mdb_stat(txn, q->dbi[DB_READY], &st)) ||
        (rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur))) {
        err = queue_err_mdb(rc);
        goto done;
    }
    /* due now: from the front */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int64_t t = key_time(&k);
        if (t < 0) {
            err = QUEUE_ECORRUPT;
            goto done;
        }
        if (t > now)
            break;
        if (d->ready == cap) {
            d->capped = 1;
            break;
        }
        d->ready++;
    }
    /* parked: from the back */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        int64_t t = key_time(&k);
        if (t < 0) {
            err = QUEUE_ECORRUPT;
            goto done;
        }
        if (t < park || t <= now)
            break;
        if (d->parked == cap) {
            d->capped = 1;
            break;
        }
        d->parked++;
    }
    d->entries = st.ms_entries;
    if (d->entries >= d->ready + d->parked)
        d->waiting = d->entries - d->ready - d->parked;
done:
    if (cur)
        mdb_cursor_close(cur);
    queue_read_end(q, txn);
    return err;
}
