/*
 * spool_identity.c - the spool's identity: 16 random bytes that, with an
 * event's seq, name the event for good ("IDENTITY-SEQ", the `id` of the
 * event stream), so a receiver fed by several spools dedupes by it.
 *
 * DESCRIPTION
 *   Made from getrandom(2) the first time anyone asks on a writable open,
 *   inside the writer's transaction that finds it missing (so two
 *   processes never make two), and kept in the meta database under
 *   "spool_id".  It never changes after that; a salvage copies meta, so
 *   the salvaged spool keeps it (and its events keep their ids).
 *
 * DIAGNOSTICS
 *   -ENOENT on a read-only open of a spool that has none yet,
 *   QUEUE_ECORRUPT for a stored value of the wrong size, -errno when
 *   getrandom fails.
 */
#include <errno.h>
#include <string.h>

#include "admin_int.h"

#define ID_KEY "spool_id"
#define ID_BYTES 16

/* The stored identity in txn into out; QUEUE_ENOTFOUND if none. */
static int id_read(struct queue *q, MDB_txn *txn, unsigned char *out)
{
    MDB_val k = { sizeof ID_KEY - 1, ID_KEY }, v;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != ID_BYTES)
        return QUEUE_ECORRUPT;
    memcpy(out, v.mv_data, ID_BYTES);
    return 0;
}

/* Make the identity unless another process did meanwhile. */
static int id_make(struct admin_tx *t, void *arg)
{
    unsigned char *out = arg;
    int err = id_read(t->q, t->txn, out);
    if (err != QUEUE_ENOTFOUND)
        return err;
    if ((err = queue_random_bytes(out, ID_BYTES)))
        return admin_fail(t, err, "getrandom: %s", strerror(-err));
    MDB_val k = { sizeof ID_KEY - 1, ID_KEY }, v = { ID_BYTES, out };
    int rc = mdb_put(t->txn, t->q->dbi[DB_META], &k, &v, 0);
    return rc ? admin_mdb(t, rc) : 0;
}

/* The identity as hex, made on the first ask of a writable open. */
int queue_spool_identity(struct queue *q, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char id[ID_BYTES];
    MDB_txn *txn;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = id_read(q, txn, id);
    queue_read_end(q, txn);
    if (err == QUEUE_ENOTFOUND)
        err = q->readonly ? -ENOENT : admin_run(q, id_make, id);
    if (err)
        return err;
    for (int i = 0; i < ID_BYTES; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[32] = 0;
    return 0;
}
