/*
 * series_read.c - reading the time series (queue_series.h): bucket scans,
 * the latency histogram's bins and percentiles, pruning on demand.
 *
 * DESCRIPTION
 *   queue_series_scan() walks one granularity's buckets from the first
 *   key of the `from` hour/day to the last of `to` in one read
 *   transaction.  The histogram is hand-written: fixed log-scale bins
 *   (two per doubling from 100 ms), percentiles by walking the cumulative
 *   counts to the bin that holds the rank and reporting its middle.
 *
 * DIAGNOSTICS
 *   Scans: QUEUE_ECORRUPT for a bucket that does not decode, else LMDB
 *   failures.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "queue_int.h"
#include "admin_int.h"
#include "queue_series.h"

int queue_series_bin(int64_t ms)
{
    if (ms < 100)
        return 0;
    /* bin i >= 1 covers [100 * 2^((i-1)/2), 100 * 2^(i/2)) */
    int b = 1 + (int)floor(2.0 * log2((double)ms / 100.0));
    /* guard the rounding at exact bin edges */
    while (b > 1 && (double)ms < 100.0 * pow(2.0, (b - 1) / 2.0))
        b--;
    while (b < QUEUE_SERIES_HIST - 1 && (double)ms >= 100.0 * pow(2.0, b / 2.0))
        b++;
    return b < QUEUE_SERIES_HIST ? b : QUEUE_SERIES_HIST - 1;
}

int64_t queue_series_bin_ms(int bin)
{
    if (bin <= 0)
        return 50;
    if (bin >= QUEUE_SERIES_HIST - 1)
        return (int64_t)llround(100.0 * pow(2.0, (QUEUE_SERIES_HIST - 2) / 2.0));
    /* geometric middle of [100*2^((b-1)/2), 100*2^(b/2)) */
    return (int64_t)llround(100.0 * pow(2.0, (2.0 * bin - 1.0) / 4.0));
}

int64_t queue_series_percentile(const uint64_t hist[QUEUE_SERIES_HIST],
                                double pct)
{
    uint64_t total = 0;
    for (int i = 0; i < QUEUE_SERIES_HIST; i++)
        total += hist[i];
    if (!total)
        return -1;
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    /* the rank of the pct-th delivery, 1-based (nearest-rank method) */
    uint64_t rank = (uint64_t)ceil(pct / 100.0 * (double)total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < QUEUE_SERIES_HIST; i++) {
        seen += hist[i];
        if (seen >= rank)
            return queue_series_bin_ms(i);
    }
    return queue_series_bin_ms(QUEUE_SERIES_HIST - 1);
}

/* Decode one bucket key and value into r; false if the key is not one. */
static bool row_decode(const MDB_val *k, const MDB_val *v,
                       struct queue_series_row *r)
{
    const unsigned char *p = k->mv_data;
    size_t idlen = k->mv_size > 6 ? k->mv_size - 6 : 0;
    if (k->mv_size < 6)
        return false;
    r->gran = p[0];
    uint32_t b = be32_get(p + 1);
    r->start = (int64_t)b * (r->gran == QUEUE_SERIES_HOUR ? 3600 : 86400);
    r->dim = p[5];
    r->id = 0;
    r->account = 0;
    r->name[0] = 0;
    switch (r->dim) {
    case QUEUE_SERIES_TOTAL:
        if (idlen)
            return false;
        break;
    case QUEUE_SERIES_ACCOUNT:
        if (idlen != 4)
            return false;
        r->id = r->account = be32_get(p + 6);
        break;
    case QUEUE_SERIES_CAMPAIGN:
        if (idlen != 12)
            return false;
        r->account = be32_get(p + 6);
        r->id = be64_get(p + 10);
        break;
    case QUEUE_SERIES_SITE:
    case QUEUE_SERIES_DOMAIN:
        if (idlen < 4 || idlen - 4 >= sizeof r->name)
            return false;
        r->id = r->account = be32_get(p + 6);
        memcpy(r->name, p + 10, idlen - 4);
        r->name[idlen - 4] = 0;
        break;
    default:
        return false;
    }
    return qseries_decode(v->mv_data, v->mv_size, r->c) == 0;
}

long queue_series_scan(struct queue *q, int gran, int64_t from, int64_t to,
                       int dim,
                       int (*cb)(void *arg, const struct queue_series_row *r),
                       void *arg)
{
    if ((gran != QUEUE_SERIES_HOUR && gran != QUEUE_SERIES_DAY) || from > to ||
        from < 0)
        return -EINVAL;
    int64_t unit = gran == QUEUE_SERIES_HOUR ? 3600 : 86400;
    int64_t b0 = from / unit, b1 = to / unit;
    if (b1 > UINT32_MAX)
        b1 = UINT32_MAX;
    if (q->absent[DB_SERIES])
        return 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    int rc = mdb_cursor_open(txn, q->dbi[DB_SERIES], &cur);
    if (rc) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    unsigned char start[5] = { (unsigned char)gran };
    be32_put(start + 1, (uint32_t)b0);
    MDB_val k = { 5, start }, v;
    long n = 0;
    struct queue_series_row r;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *p = k.mv_data;
        if (k.mv_size < 5 || p[0] != gran || be32_get(p + 1) > b1)
            break;
        if (!row_decode(&k, &v, &r)) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (dim && r.dim != dim)
            continue;
        n++;
        if (cb(arg, &r))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

struct prune_arg {
    int64_t now;
    size_t max;
    long n;
};

static int do_prune(struct admin_tx *t, void *arg)
{
    struct prune_arg *a = arg;
    a->n = series_prune_txn(t->q, t->txn, a->now, a->max);
    return a->n < 0 ? admin_mdb(t, (int)-a->n) : 0;
}

long queue_series_prune(struct queue *q, int64_t now, size_t max)
{
    struct prune_arg a = { .now = now, .max = max };
    int err = admin_run(q, do_prune, &a);
    return err ? err : a.n;
}
