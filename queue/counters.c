/*
 * counters.c - transactional counters per campaign, account and domain.
 *
 * DESCRIPTION
 *   While a write transaction runs, counter changes gather in a small hash
 *   table of deltas; counters_flush() applies each key once at the end, in
 *   the same transaction, so counters always agree with the rows and events
 *   they count.  A group of 4,096 outcomes to 1,000 domains costs about
 *   1,000 counter writes, not 16,000.
 *
 *   Keys: 't' (total), 'a' u32 account, 'c' u64 campaign, 'd' domain.
 *   Values: the CF_COUNT counts of enum counter_field as u64 in host byte
 *   order.  Schema 5 added suppressed and cancelled at the end: a record
 *   written before holds six counts and reads with those two as 0
 *   (qcounts_load); the next change to its key writes it whole.
 *
 *   Usage per account and day (queue_admin.h) gathers in the same table
 *   under 'u' u32 account . u32 day, with sent in the CF_ENQUEUED slot, and
 *   is flushed to the "usage" database: one write per (account, day) per
 *   transaction.
 *
 * DIAGNOSTICS
 *   -ENOMEM when the delta table cannot grow (the txn is then aborted).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_int.h"
#include "queue_int.h"

#define KEY_MAX 256

struct counter_delta {
    unsigned char key[KEY_MAX];
    uint16_t klen;
    uint64_t hash;
    int64_t d[CF_COUNT];
};

uint64_t qkey_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    return h;
}

int qkey_index_grow(size_t **index, size_t *cap, size_t first_cap,
                    const void *base, size_t n, size_t stride,
                    size_t hash_off)
{
    size_t ncap = *cap ? *cap * 2 : first_cap;
    size_t *idx = calloc(ncap, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, (const char *)base + i * stride + hash_off, sizeof h);
        size_t j = (size_t)h & (ncap - 1);
        while (idx[j])
            j = (j + 1) & (ncap - 1);
        idx[j] = i + 1;
    }
    free(*index);
    *index = idx;
    *cap = ncap;
    return 0;
}

/* Grow the index (and rehash) so it stays under half full. */
static int grow_index(struct wctx *w)
{
    return qkey_index_grow(&w->index, &w->capindex, 256, w->deltas,
                           w->ndeltas, sizeof *w->deltas,
                           offsetof(struct counter_delta, hash));
}

/* Find or add the delta for one key. */
static struct counter_delta *delta_for(struct wctx *w, const unsigned char *key,
                                       size_t klen)
{
    if ((w->ndeltas + 1) * 2 > w->capindex && grow_index(w))
        return NULL;
    uint64_t h = qkey_hash(key, klen);
    size_t j = (size_t)h & (w->capindex - 1);
    while (w->index[j]) {
        struct counter_delta *cd = &w->deltas[w->index[j] - 1];
        if (cd->hash == h && cd->klen == klen && !memcmp(cd->key, key, klen))
            return cd;
        j = (j + 1) & (w->capindex - 1);
    }
    if (w->ndeltas == w->capdeltas) {
        size_t ncap = w->capdeltas ? w->capdeltas * 2 : 64;
        struct counter_delta *n = realloc(w->deltas, ncap * sizeof *n);
        if (!n)
            return NULL;
        w->deltas = n;
        w->capdeltas = ncap;
    }
    struct counter_delta *cd = &w->deltas[w->ndeltas++];
    memset(cd, 0, sizeof *cd);
    memcpy(cd->key, key, klen);
    cd->klen = (uint16_t)klen;
    cd->hash = h;
    w->index[j] = w->ndeltas;
    return cd;
}

int counters_add(struct wctx *w, uint32_t account, uint64_t campaign,
                 const char *domain, size_t dlen, enum counter_field f,
                 int64_t by)
{
    unsigned char key[KEY_MAX];
    struct counter_delta *cd;

    key[0] = 't';
    if (!(cd = delta_for(w, key, 1)))
        return -ENOMEM;
    cd->d[f] += by;
    key[0] = 'a';
    be32_put(key + 1, account);
    if (!(cd = delta_for(w, key, 5)))
        return -ENOMEM;
    cd->d[f] += by;
    if (campaign) {
        key[0] = 'c';
        be64_put(key + 1, campaign);
        if (!(cd = delta_for(w, key, 9)))
            return -ENOMEM;
        cd->d[f] += by;
    }
    if (dlen > KEY_MAX - 1)
        dlen = KEY_MAX - 1;
    key[0] = 'd';
    memcpy(key + 1, domain, dlen);
    if (!(cd = delta_for(w, key, dlen + 1)))
        return -ENOMEM;
    cd->d[f] += by;
    return 0;
}

int qusage_add(struct wctx *w, uint32_t account, uint32_t day,
               unsigned sent, unsigned delivered, unsigned bounced)
{
    unsigned char key[9] = { 'u' };
    be32_put(key + 1, account);
    be32_put(key + 5, day);
    struct counter_delta *cd = delta_for(w, key, sizeof key);
    if (!cd)
        return -ENOMEM;
    cd->d[CF_ENQUEUED] += sent;
    cd->d[CF_DELIVERED] += delivered;
    cd->d[CF_BOUNCED] += bounced;
    return 0;
}

int qblocks_add(struct wctx *w, uint32_t account, uint32_t day,
                unsigned policy, unsigned spam)
{
    unsigned char key[9] = { 'b' };
    be32_put(key + 1, account);
    be32_put(key + 5, day);
    struct counter_delta *cd = delta_for(w, key, sizeof key);
    if (!cd)
        return -ENOMEM;
    cd->d[0] += policy;
    cd->d[1] += spam;
    return 0;
}

/* Add a usage delta to its (account, day) record in the usage database. */
static int usage_flush_one(struct wctx *w, const struct counter_delta *cd)
{
    const enum counter_field f[3] = { CF_ENQUEUED, CF_DELIVERED, CF_BOUNCED };
    unsigned char val[24] = { 0 };
    MDB_val k = { 8, (void *)(cd->key + 1) }, v;
    int rc = mdb_get(w->txn, w->q->dbi[DB_USAGE], &k, &v);
    if (rc == 0 && v.mv_size == sizeof val)
        memcpy(val, v.mv_data, sizeof val);
    else if (rc && rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    for (int i = 0; i < 3; i++) {
        uint64_t n = 0;
        for (int b = 7; b >= 0; b--)
            n = n << 8 | val[8 * i + b];
        n += (uint64_t)cd->d[f[i]];
        for (int b = 0; b < 8; b++)
            val[8 * i + b] = (unsigned char)(n >> (8 * b));
    }
    MDB_val nv = { sizeof val, val };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_USAGE], &k, &nv, 0)))
        return wctx_fail(w, rc);
    return 0;
}

int counters_flush(struct wctx *w)
{
    for (size_t i = 0; i < w->ndeltas; i++) {
        struct counter_delta *cd = &w->deltas[i];
        uint64_t c[CF_COUNT] = { 0 };
        if (cd->key[0] == 'u') {
            int err = usage_flush_one(w, cd);
            if (err)
                return err;
            continue;
        }
        MDB_val k = { cd->klen, cd->key }, v;
        int rc = mdb_get(w->txn, w->q->dbi[DB_COUNTERS], &k, &v);
        if (rc == 0)
            (void)qcounts_load(&v, c);  /* a damaged value restarts at 0 */
        else if (rc != MDB_NOTFOUND)
            return wctx_fail(w, rc);
        for (int f = 0; f < CF_COUNT; f++) {
            int64_t n = (int64_t)c[f] + cd->d[f];
            c[f] = n < 0 ? 0 : (uint64_t)n;
        }
        MDB_val nv = { sizeof c, c };
        if ((rc = mdb_put(w->txn, w->q->dbi[DB_COUNTERS], &k, &nv, 0)))
            return wctx_fail(w, rc);
        /* the campaign's last queued recipients ended here: its finish
         * time (campaign_end.c) */
        int err;
        if (cd->key[0] == 'c' && cd->klen == 9 && cd->d[CF_QUEUED] < 0 &&
            c[CF_QUEUED] == 0 &&
            (err = qcampaign_queue_emptied(w, be64_get(cd->key + 1))))
            return err;
    }
    counters_reset(w);
    return 0;
}

void counters_reset(struct wctx *w)
{
    w->ndeltas = 0;
    if (w->index)
        memset(w->index, 0, w->capindex * sizeof *w->index);
}

void counters_free(struct wctx *w)
{
    free(w->deltas);
    free(w->index);
    w->deltas = NULL;
    w->index = NULL;
    w->ndeltas = w->capdeltas = w->capindex = 0;
}

/* A counter record of either size into c (queue_int.h). */
int qcounts_load(const MDB_val *v, uint64_t c[CF_COUNT])
{
    memset(c, 0, CF_COUNT * sizeof *c);
    if (v->mv_size != CF_COUNT * sizeof *c &&
        v->mv_size != CF_COUNT_V4 * sizeof *c)
        return QUEUE_ECORRUPT;
    memcpy(c, v->mv_data, v->mv_size);
    return 0;
}

/* Decode a counters value into c. */
static void counts_from(const MDB_val *v, struct queue_counts *c)
{
    uint64_t a[CF_COUNT];
    (void)qcounts_load(v, a);
    c->queued = a[CF_QUEUED];
    c->enqueued = a[CF_ENQUEUED];
    c->delivered = a[CF_DELIVERED];
    c->deferred = a[CF_DEFERRED];
    c->bounced = a[CF_BOUNCED];
    c->expired = a[CF_EXPIRED];
    c->suppressed = a[CF_SUPPRESSED];
    c->cancelled = a[CF_CANCELLED];
}

/* Read the counters stored under one key (zeros if none). */
static int counts_get(struct queue *q, const unsigned char *key, size_t klen,
                      struct queue_counts *c)
{
    MDB_txn *txn;
    MDB_val k = { klen, (void *)key }, v;
    int err;
    memset(c, 0, sizeof *c);
    if ((err = queue_read_begin(q, &txn)))
        return err;
    int rc = mdb_get(txn, q->dbi[DB_COUNTERS], &k, &v);
    if (rc == 0)
        counts_from(&v, c);
    queue_read_end(q, txn);
    return rc == MDB_NOTFOUND ? 0 : queue_err_mdb(rc);
}

int queue_counts_campaign(struct queue *q, uint64_t campaign,
                          struct queue_counts *c)
{
    unsigned char key[9] = { 'c' };
    be64_put(key + 1, campaign);
    return counts_get(q, key, sizeof key, c);
}

int queue_counts_account(struct queue *q, uint32_t account,
                         struct queue_counts *c)
{
    unsigned char key[5] = { 'a' };
    be32_put(key + 1, account);
    return counts_get(q, key, sizeof key, c);
}

int queue_counts_domain(struct queue *q, const char *domain,
                        struct queue_counts *c)
{
    unsigned char key[KEY_MAX] = { 'd' };
    size_t n = strlen(domain);
    if (n > KEY_MAX - 1)
        return -EINVAL;
    memcpy(key + 1, domain, n);
    return counts_get(q, key, n + 1, c);
}

int queue_counts_total(struct queue *q, struct queue_counts *c)
{
    unsigned char key[1] = { 't' };
    return counts_get(q, key, 1, c);
}

long queue_domains(struct queue *q,
                   int (*cb)(void *arg, const char *domain,
                             const struct queue_counts *c),
                   void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = { 1, "d" }, v;
    long n = 0;
    int err, rc;

    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_COUNTERS], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *kp = k.mv_data;
        if (k.mv_size < 2 || kp[0] != 'd')
            break;
        if (k.mv_size > KEY_MAX) {  /* no key of ours: a damaged page */
            rc = MDB_CORRUPTED;
            break;
        }
        char dom[KEY_MAX];
        memcpy(dom, kp + 1, k.mv_size - 1);
        dom[k.mv_size - 1] = 0;
        struct queue_counts c;
        counts_from(&v, &c);
        n++;
        if (cb(arg, dom, &c))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
