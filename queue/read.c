/*
 * read.c - read APIs: one delivery, a stored message, the event log and
 * one delivery's history; the meta records under one key prefix.
 *
 * DESCRIPTION
 *   Each call runs in its own read transaction under the map lock; records
 *   are decoded into caller-owned structs, and message bytes are shown to a
 *   callback while the transaction is open (they live in the map).  History
 *   follows the per-delivery chain of events (each event names the previous
 *   one), so it needs no second index.
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND for unknown ids, QUEUE_ECORRUPT for records that do
 *   not decode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* Look up and decode one delivery inside txn. */
static int get_delivery(struct queue *q, MDB_txn *txn, uint64_t id,
                        struct queue_delivery *d)
{
    unsigned char key[8];
    MDB_val k = { 8, key }, v;
    be64_put(key, id);
    int rc = mdb_get(txn, q->dbi[DB_DELIVERIES], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    return qdelivery_decode(&v, id, d);
}

/* ev->message from its delivery row in txn: injected mail only (a
 * campaign's delivery names a contact, not a message). */
static void event_message(struct queue *q, MDB_txn *txn,
                          struct queue_event *ev)
{
    struct queue_delivery d;
    ev->message = 0;
    if (!ev->campaign && ev->delivery &&
        !get_delivery(q, txn, ev->delivery, &d) && !d.campaign)
        ev->message = d.ref;
}

int queue_get_delivery(struct queue *q, uint64_t id, struct queue_delivery *d)
{
    MDB_txn *txn;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = get_delivery(q, txn, id, d);
    queue_read_end(q, txn);
    return err;
}

int queue_get_message(struct queue *q, uint64_t msg_id,
                      void (*cb)(void *arg, const char *from,
                                 const void *msg, size_t len),
                      void *arg)
{
    MDB_txn *txn;
    unsigned char key[8];
    MDB_val k = { 8, key }, v;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    be64_put(key, msg_id);
    int rc = mdb_get(txn, q->dbi[DB_MESSAGES], &k, &v);
    if (rc) {
        err = queue_err_mdb(rc);
    } else if (v.mv_size < 2) {
        err = QUEUE_ECORRUPT;
    } else {
        const unsigned char *p = v.mv_data;
        size_t fl = (size_t)p[0] << 8 | p[1];
        char from[QUEUE_MAX_RCPT + 1];
        if (fl > QUEUE_MAX_RCPT || 2 + fl > v.mv_size) {
            err = QUEUE_ECORRUPT;
        } else {
            memcpy(from, p + 2, fl);
            from[fl] = 0;
            cb(arg, from, p + 2 + fl, v.mv_size - 2 - fl);
        }
    }
    queue_read_end(q, txn);
    return err;
}

long queue_events_from(struct queue *q, uint64_t from, size_t max,
                       int (*cb)(void *arg, const struct queue_event *ev),
                       void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char key[8];
    MDB_val k = { 8, key }, v;
    long n = 0;
    int err, rc;
    struct queue_event *ev = malloc(sizeof *ev);

    if (!ev)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(ev);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_EVENTS], &cur))) {
        queue_read_end(q, txn);
        free(ev);
        return queue_err_mdb(rc);
    }
    be64_put(key, from);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || qevent_decode(&v, be64_get(k.mv_data), ev)) {
            err = QUEUE_ECORRUPT;
            break;
        }
        event_message(q, txn, ev);
        n++;
        if (cb(arg, ev) || (max && (size_t)n >= max))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(ev);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

long queue_history(struct queue *q, uint64_t delivery,
                   int (*cb)(void *arg, const struct queue_event *ev),
                   void *arg)
{
    MDB_txn *txn;
    struct queue_delivery d;
    long n = 0;
    int err;
    struct queue_event *ev = malloc(sizeof *ev);

    if (!ev)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(ev);
        return err;
    }
    if ((err = get_delivery(q, txn, delivery, &d)))
        goto out;
    for (uint64_t seq = d.last_event; seq; seq = ev->prev) {
        unsigned char key[8];
        MDB_val k = { 8, key }, v;
        be64_put(key, seq);
        int rc = mdb_get(txn, q->dbi[DB_EVENTS], &k, &v);
        if (rc == MDB_NOTFOUND)
            break; /* older events trimmed */
        if (rc) {
            err = queue_err_mdb(rc);
            break;
        }
        if ((err = qevent_decode(&v, seq, ev)))
            break;
        if (ev->delivery != delivery || ev->prev >= seq) {
            err = QUEUE_ECORRUPT;
            break;
        }
        ev->message = d.campaign ? 0 : d.ref;
        n++;
        if (cb(arg, ev))
            break;
    }
out:
    queue_read_end(q, txn);
    free(ev);
    return err ? err : n;
}

int qmeta_prefix_walk(struct queue *q, const char *prefix, size_t plen,
                      int (*cb)(void *arg, const MDB_val *k,
                                const MDB_val *v),
                      void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int err, rc;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_META], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    MDB_val k = { plen, (void *)prefix }, v;
    err = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc && !err;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
            break;
        err = cb(arg, &k, &v);
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err < 0 ? err : 0;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : 0;
}
