/*
 * admin_usage.c - reading usage per account and day, and the roll-up to
 * the master.
 *
 * DESCRIPTION
 *   The "usage" database holds u32 account . u32 day (big-endian, so one
 *   account's days are adjacent and in order) -> u64 sent, u64 delivered,
 *   u64 bounced (little-endian).  The writer adds to it in the outcome
 *   transaction (outcome.c, counters.c); this file only reads.  The master
 *   is billed for its own usage plus its sub-accounts': the roll-up sums
 *   them at read time, so nothing is counted twice on disk.
 *
 * DIAGNOSTICS
 *   QUEUE_ECORRUPT for a value of the wrong size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

uint32_t queue_day_of(int64_t t)
{
    return t < 0 ? 0 : (uint32_t)(t / 86400);
}

/* Decode a usage value. */
int qusage_decode(const MDB_val *v, struct queue_usage *u)
{
    const unsigned char *p = v->mv_data;
    uint64_t n[3];
    if (v->mv_size != 24)
        return QUEUE_ECORRUPT;
    for (int i = 0; i < 3; i++) {
        n[i] = 0;
        for (int b = 7; b >= 0; b--)
            n[i] = n[i] << 8 | p[8 * i + b];
    }
    u->sent = n[0];
    u->delivered = n[1];
    u->bounced = n[2];
    return 0;
}

/* Add account's usage of day to u, inside txn. */
static int usage_add_from(struct queue *q, MDB_txn *txn, uint32_t account,
                          uint32_t day, struct queue_usage *u)
{
    unsigned char key[8];
    struct queue_usage one;
    be32_put(key, account);
    be32_put(key + 4, day);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get(txn, q->dbi[DB_USAGE], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    int err = qusage_decode(&v, &one);
    if (err)
        return err;
    u->sent += one.sent;
    u->delivered += one.delivered;
    u->bounced += one.bounced;
    return 0;
}

int queue_usage_get(struct queue *q, uint32_t account, uint32_t day,
                    struct queue_usage *u)
{
    MDB_txn *txn;
    memset(u, 0, sizeof *u);
    if (admin_absent(q))
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = usage_add_from(q, txn, account, day, u);
    queue_read_end(q, txn);
    return err;
}

/* Sum the usage of the master's sub-accounts on day into u. */
static int usage_add_subs(struct queue *q, MDB_txn *txn, uint32_t master,
                          uint32_t day, struct queue_usage *u)
{
    MDB_cursor *cur;
    MDB_val k = { 1, "i" }, v;
    int rc, err = 0;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_ACCOUNTS], &cur)))
        return queue_err_mdb(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data, *vp = v.mv_data;
        if (k.mv_size != 5 || kp[0] != 'i')
            break;
        /* the parent is the u32 after the format byte (admin_int.h) */
        if (v.mv_size < 5) {
            err = QUEUE_ECORRUPT;
            break;
        }
        uint32_t parent = (uint32_t)vp[1] | (uint32_t)vp[2] << 8 |
                          (uint32_t)vp[3] << 16 | (uint32_t)vp[4] << 24;
        if (parent == master &&
            (err = usage_add_from(q, txn, be32_get(kp + 1), day, u)))
            break;
    }
    mdb_cursor_close(cur);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : 0;
}

int queue_usage_rollup(struct queue *q, uint32_t account, uint32_t day,
                       struct queue_usage *u)
{
    MDB_txn *txn;
    uint32_t master;
    memset(u, 0, sizeof *u);
    if (admin_absent(q))
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    if (!(err = usage_add_from(q, txn, account, day, u)) &&
        !(err = qaccount_master_id(q, txn, &master)) && master == account &&
        account)
        err = usage_add_subs(q, txn, master, day, u);
    queue_read_end(q, txn);
    return err;
}

long queue_usage_days(struct queue *q, uint32_t account, uint32_t from,
                      uint32_t to,
                      int (*cb)(void *arg, uint32_t day,
                                const struct queue_usage *u),
                      void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char key[8];
    struct queue_usage u;
    long n = 0;
    int err = 0, rc;

    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_USAGE], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    be32_put(key, account);
    be32_put(key + 4, from);
    MDB_val k = { 8, key }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || be32_get(k.mv_data) != account)
            break;
        uint32_t day = be32_get((const unsigned char *)k.mv_data + 4);
        if (day > to)
            break;
        if ((err = qusage_decode(&v, &u)))
            break;
        n++;
        if (cb(arg, day, &u))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
