/*
 * token_secret.c - the spool's secret for unsubscribe and VERP tokens and
 * the MACs of campaign Message-IDs.
 *
 * DESCRIPTION
 *   32 random bytes from getrandom(2), made the first time anyone asks and
 *   kept in the meta database under "token_secret".  The tools (preview,
 *   test) and the engine (every campaign message) render with it, and the
 *   bounce and unsubscribe handlers check tokens and Message-IDs with it
 *   (a report that fails the check is treated as forged), so it must never
 *   change: it is written once, inside the writer's transaction that first
 *   finds it missing, and only read after that.
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND on a read-only open of a spool that has none yet,
 *   QUEUE_ECORRUPT for a stored value of the wrong size, -errno when
 *   getrandom fails.
 */
#include <errno.h>
#include <string.h>

#include "admin_int.h"
#include "queue_campaign.h"

#define SECRET_KEY "token_secret"

/* The stored secret in txn into out; QUEUE_ENOTFOUND if none. */
static int secret_read(struct queue *q, MDB_txn *txn, unsigned char *out)
{
    MDB_val k = { sizeof SECRET_KEY - 1, SECRET_KEY }, v;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != QUEUE_TOKEN_SECRET)
        return QUEUE_ECORRUPT;
    memcpy(out, v.mv_data, QUEUE_TOKEN_SECRET);
    return 0;
}

/* Make the secret unless another process did meanwhile. */
static int do_make(struct admin_tx *t, void *arg)
{
    unsigned char *out = arg;
    int err = secret_read(t->q, t->txn, out);
    if (err != QUEUE_ENOTFOUND)
        return err;   /* there already (another process made it), or bad */
    if ((err = queue_random_bytes(out, QUEUE_TOKEN_SECRET)))
        return admin_fail(t, err, "getrandom: %s", strerror(-err));
    MDB_val k = { sizeof SECRET_KEY - 1, SECRET_KEY },
            v = { QUEUE_TOKEN_SECRET, out };
    int rc = mdb_put(t->txn, t->q->dbi[DB_META], &k, &v, 0);
    return rc ? admin_mdb(t, rc) : 0;
}

int queue_token_secret(struct queue *q, unsigned char out[QUEUE_TOKEN_SECRET])
{
    MDB_txn *txn;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = secret_read(q, txn, out);
    queue_read_end(q, txn);
    if (err != QUEUE_ENOTFOUND || q->readonly)
        return err;
    return admin_run(q, do_make, out);
}
