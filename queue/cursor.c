/*
 * cursor.c - named consumer cursors over the spool's event log.
 *
 * DESCRIPTION
 *   The events table is the one source of truth for outcomes; whatever
 *   passes them on (sluiced's JSON-lines file today; webhooks and the
 *   accounting file later) is a consumer that reads the events after its
 *   cursor, hands them on, and then moves its cursor.  A cursor is the seq
 *   of the last event the consumer has handed on, kept in the meta database
 *   under "cursor." NAME (u64, big-endian), so it outlives the process: a
 *   consumer killed at any moment resumes after the last seq it saved, and
 *   sees again at most what it handed on after that save (its receiver
 *   dedupes by seq).
 *
 *   A cursor moves through the writer like every other change: the
 *   asynchronous form for a running engine (one small meta write that
 *   joins the current commit group, no fsync of its own under load), the
 *   synchronous form for a stop.  A consumer never moves its cursor past
 *   the spool's last event: it only saves seqs it has read.
 *
 * DIAGNOSTICS
 *   -EINVAL for a name that is not 1..QUEUE_MAX_CURSOR_NAME bytes of
 *   a-z, 0-9, '.', '_', '-' (starting with a letter or digit); -EROFS on
 *   a read-only open; QUEUE_ENOTFOUND from queue_cursor_get() for a cursor
 *   never saved; QUEUE_ECORRUPT for a stored value that is not 8 bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define CURSOR_PREFIX "cursor."

/* What a save carries to the writer: the op's arena (freed with it). */
struct cursor_save {
    uint64_t seq;
    char key[sizeof CURSOR_PREFIX + QUEUE_MAX_CURSOR_NAME];
};

/* The meta key of a checked name into key. */
static int cursor_key(const char *name, char *key)
{
    if (!admin_name_ok(name, QUEUE_MAX_CURSOR_NAME, false)) {
        queue_set_detail("cursor name must be 1..%d bytes of a-z, 0-9, "
                         "'.', '_', '-'", QUEUE_MAX_CURSOR_NAME);
        return -EINVAL;
    }
    size_t n = strlen(name);
    memcpy(key, CURSOR_PREFIX, sizeof CURSOR_PREFIX - 1);
    memcpy(key + sizeof CURSOR_PREFIX - 1, name, n + 1);
    return 0;
}

/* Writer thread: store the cursor (idempotent: a retried group runs it
 * again). */
static int cursor_apply(struct admin_tx *t, void *arg)
{
    const struct cursor_save *s = arg;
    int rc = qmeta_put_u64(t->q, t->txn, s->key, s->seq);
    return rc ? admin_mdb(t, rc) : 0;
}

/* A save op for name and seq, not yet submitted. */
static int cursor_op(struct queue *q, const char *name, uint64_t seq,
                     struct queue_op **out)
{
    struct cursor_save s = { .seq = seq };
    int err = cursor_key(name, s.key);
    if (!err)
        err = admin_writable(q);
    if (err)
        return err;
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op || !(op->arena = malloc(sizeof s))) {
        free(op);
        return -ENOMEM;
    }
    memcpy(op->arena, &s, sizeof s);
    op->arena_len = sizeof s;
    op->kind = OP_ADMIN;
    op->weight = 1;
    op->admin_fn = cursor_apply;
    op->admin_arg = op->arena;
    *out = op;
    return 0;
}

int queue_submit_cursor(struct queue *q, const char *name, uint64_t seq,
                        struct queue_completer *cmp, queue_done_cb cb,
                        void *arg)
{
    struct queue_op *op;
    int err = cursor_op(q, name, seq, &op);
    return err ? err : queue_op_submit(q, op, cmp, cb, arg);
}

int queue_cursor_put(struct queue *q, const char *name, uint64_t seq)
{
    struct queue_op *op;
    int err = cursor_op(q, name, seq, &op);
    return err ? err : sync_submit_wait(q, op);
}

int queue_cursor_get(struct queue *q, const char *name, uint64_t *seq)
{
    char key[sizeof CURSOR_PREFIX + QUEUE_MAX_CURSOR_NAME];
    MDB_txn *txn;
    *seq = 0;
    int err = cursor_key(name, key);
    if (err || (err = queue_read_begin(q, &txn)))
        return err;
    MDB_val k = { strlen(key), key }, v;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    if (rc)
        err = queue_err_mdb(rc);
    else if (v.mv_size != 8)
        err = QUEUE_ECORRUPT;
    else
        *seq = be64_get(v.mv_data);
    queue_read_end(q, txn);
    return err;
}

int queue_events_last(struct queue *q, uint64_t *seq)
{
    MDB_txn *txn;
    uint64_t next;
    *seq = 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = qmeta_get_u64(q, txn, "next_event", &next);
    queue_read_end(q, txn);
    if (!err && next > 1)
        *seq = next - 1;
    return err;
}
