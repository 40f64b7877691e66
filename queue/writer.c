/*
 * writer.c - the one thread that owns every write transaction of a spool.
 *
 * DESCRIPTION
 *   Callers link operations into a pending list; the writer takes a group
 *   (up to group_ops items, or whatever arrived within group_ms of the
 *   oldest), applies the group in one LMDB transaction and commits it: one
 *   fsync per group.  A message someone is waiting on (a client of the
 *   listener or of the inject API) ends the window at once: its group is
 *   whatever arrived while the writer was busy, so acceptance costs one
 *   commit of latency, not group_ms.  Then each operation's completion
 *   runs, on the writer thread or handed to a libuv loop through its
 *   completer.
 *
 *   When a group's transaction fails as a whole the writer finds the right
 *   answer for each operation: on MDB_MAP_FULL it grows the map and tries
 *   again; at the ceiling, or on any other transaction failure (disk full,
 *   I/O error), it runs each operation of the group in a transaction of its
 *   own, so only the operations that cannot be written fail, and nothing of
 *   a failed operation is ever half-written.  An op that alone finds the
 *   spool full answers for the ops no smaller than it, so a full disk costs
 *   a couple of failed transactions per group, not one per op; the writer
 *   never retries by itself (the engine holds its outcomes and submits
 *   them again with backoff).
 *
 *   In no-sync mode the writer calls mdb_env_sync() once a second, which
 *   bounds the loss window after an operating-system crash to about a second
 *   of commits (a process crash loses nothing: commits are in the page
 *   cache).
 *
 * DIAGNOSTICS
 *   queue_submit_*() return QUEUE_ESHUTDOWN once queue_close() has begun.
 *   Completion callbacks on the writer thread must not wait for the writer
 *   (queue_flush(), the synchronous forms): that would deadlock.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Absolute CLOCK_MONOTONIC timespec for a monotonic ms deadline. */
static struct timespec abs_ts(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    return ts;
}

/* Apply ops (a NULL-terminated list) in one transaction.  Sets each op's
 * status for per-op failures; returns 0 on commit or the txn failure, with
 * *mdb_rc the raw LMDB code. */
/* Keep data.mdb at least as long as the pages the meta counts.  LMDB does
 * not write pages that a transaction allocated and freed again, so the
 * file can end before the last page number; the open-time check against
 * truncated files (spool.c) would then refuse a healthy spool.  The hole
 * costs no disk. */
static void cover_pages(struct queue *q)
{
    MDB_envinfo ei;
    MDB_stat es;
    struct stat st;
    int fd;
    if (mdb_env_info(q->env, &ei) || mdb_env_stat(q->env, &es) ||
        mdb_env_get_fd(q->env, &fd) || fstat(fd, &st))
        return;
    off_t need = (off_t)(ei.me_last_pgno + 1) * (off_t)es.ms_psize;
    if (st.st_size < need && ftruncate(fd, need))
        return; /* a later commit tries again */
}

static int run_txn(struct queue *q, struct queue_op *ops, int *mdb_rc)
{
    struct wctx w = { .q = q };
    int err, rc = 0;

    *mdb_rc = 0;
    if ((err = spool_write_begin(q, &w.txn)))
        return err;
    w.now = spool_now(q);
    /* event times follow the same clock as the rows they describe */
    w.now_ms = q->opt.clock ? w.now * 1000 : (int64_t)queue_now_ms();
    if ((err = qmeta_get_u64(q, w.txn, "next_delivery", &w.next_delivery)) ||
        (err = qmeta_get_u64(q, w.txn, "next_message", &w.next_message)) ||
        (err = qmeta_get_u64(q, w.txn, "next_event", &w.next_event)))
        goto abort;
    uint64_t d0 = w.next_delivery, m0 = w.next_message, e0 = w.next_event;

    for (struct queue_op *op = ops; op; op = op->next) {
        op->status = 0;
        op->first_id = op->msg_id = 0;
        switch (op->kind) {
        case OP_MESSAGE: err = queue_op_apply_message(&w, op); break;
        case OP_CAMPAIGN: err = queue_op_apply_campaign(&w, op); break;
        case OP_OUTCOMES: err = queue_op_apply_outcomes(&w, op); break;
        case OP_CONTROL: err = queue_op_apply_control(&w, op); break;
        case OP_ADMIN: err = queue_op_apply_admin(&w, op); break;
        case OP_FEEDBACK: err = queue_op_apply_feedback(&w, op); break;
        case OP_NOTE: err = queue_op_apply_note(&w, op); break;
        case OP_QUEUED: err = queue_op_apply_queued(&w, op); break;
        default: err = 0; break;
        }
        if (err)
            goto abort;
    }
    if ((err = counters_flush(&w)))
        goto abort;
    if (q->series_skip)
        series_reset(q);   /* a full spool: the group without its series */
    else if ((err = series_flush(&w)))
        goto abort;
    if ((w.next_delivery != d0 &&
         (rc = qmeta_put_u64(q, w.txn, "next_delivery", w.next_delivery))) ||
        (w.next_message != m0 &&
         (rc = qmeta_put_u64(q, w.txn, "next_message", w.next_message))) ||
        (w.next_event != e0 &&
         (rc = qmeta_put_u64(q, w.txn, "next_event", w.next_event)))) {
        q->last_mdb_rc = rc;
        err = queue_err_mdb(rc);
        goto abort;
    }
    for (int i = 0; i < DB_COUNT; i++)
        if (w.cur[i])
            mdb_cursor_close(w.cur[i]);
    counters_free(&w);
    rc = mdb_txn_commit(w.txn);
    *mdb_rc = rc;
    if (!rc)
        cover_pages(q);
    return queue_err_mdb(rc);
abort:
    for (int i = 0; i < DB_COUNT; i++)
        if (w.cur[i])
            mdb_cursor_close(w.cur[i]);
    counters_free(&w);
    series_reset(q);
    mdb_txn_abort(w.txn);
    *mdb_rc = q->last_mdb_rc;
    return err;
}

/* About how many bytes op writes: what decides whether it fits. */
static size_t op_bytes(const struct queue_op *op)
{
    return op->arena_len + op->n * 64;
}

/* Whether a group only records outcomes or notes (nothing enqueued). */
static bool group_drains(const struct queue_op *ops)
{
    for (; ops; ops = ops->next)
        if (ops->kind != OP_OUTCOMES && ops->kind != OP_NOTE &&
            ops->kind != OP_FEEDBACK)
            return false;
    return true;
}

/* Commit ops as one group, growing the map or splitting as needed.  Split
 * after a failure, each op runs alone so only the failing ones fail; but
 * once an op alone found the spool unwritable (full, I/O error), the ops
 * no smaller than it get the same answer without a transaction of their
 * own: on a full disk a group costs two failed transactions, not one per
 * op. */
static void commit_group(struct queue *q, struct queue_op *ops)
{
    for (;;) {
        int mdb_rc;
        q->last_mdb_rc = 0;
        int err = run_txn(q, ops, &mdb_rc);
        if (err == 0)
            return;
        if (mdb_rc == MDB_MAP_FULL && spool_grow(q) == 0)
            continue;
        /* at the ceiling, outcomes (which free the spool) come before the
         * time series: try the group once more without them (series.c) */
        if (mdb_rc == MDB_MAP_FULL && !q->series_skip && group_drains(ops)) {
            q->series_skip = true;
            err = run_txn(q, ops, &mdb_rc);
            q->series_skip = false;
            if (err == 0) {
                q->series_skipped++;
                return;
            }
        }
        err = queue_err_commit(q, err);
        if (ops->next) {
            size_t failed_at = SIZE_MAX; /* smallest op found unwritable */
            int failed_err = 0;
            struct queue_op *op = ops;
            while (op) {
                struct queue_op *next = op->next;
                op->next = NULL;
                if (op_bytes(op) >= failed_at) {
                    op->status = failed_err;
                    op->first_id = op->msg_id = 0;
                } else {
                    commit_group(q, op);
                    if (queue_err_unwritable(op->status)) {
                        failed_at = op_bytes(op);
                        failed_err = op->status;
                    }
                }
                op->next = next;
                op = next;
            }
            return;
        }
        ops->status = err;
        return;
    }
}

/* Hand each finished op to its completer or run its callback here. */
static void complete_group(struct queue *q, struct queue_op *ops)
{
    while (ops) {
        struct queue_op *next = ops->next;
        ops->next = NULL;
        if (ops->kind == OP_OUTCOMES)
            claim_release_op(q, ops);
        if (ops->cmp) {
            completer_push(ops->cmp, ops);
        } else {
            if (ops->cb)
                ops->cb(ops->arg, ops->status, ops->first_id, ops->msg_id);
            queue_op_free(ops);
        }
        ops = next;
    }
}

/* A message's submitter (the SMTP listener's DATA, the inject API,
 * `sluice inject`) holds a client until its commit: it does not wait out
 * the group window, and neither does what is pending at a queue_hurry().
 * What arrives during one commit shares the next. */
static unsigned op_urgent(const struct queue_op *op)
{
    return op->kind == OP_MESSAGE;
}

static void *writer_main(void *arg)
{
    struct queue *q = arg;
    bool nosync = q->opt.flags & QUEUE_OPEN_NOSYNC;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping) {
            if (nosync) {
                struct timespec ts = abs_ts(mono_ms() + 1000);
                pthread_cond_timedwait(&q->cond_work, &q->mu, &ts);
            } else {
                pthread_cond_wait(&q->cond_work, &q->mu);
            }
            if (nosync && mono_ms() - q->last_sync_ms >= 1000) {
                pthread_mutex_unlock(&q->mu);
                mdb_env_sync(q->env, 1);
                pthread_mutex_lock(&q->mu);
                q->last_sync_ms = mono_ms();
            }
        }
        if (!q->head)
            break;
        uint64_t deadline = q->first_arrival_ms + q->opt.group_ms;
        while (q->pending < q->opt.group_ops && !q->stopping &&
               !q->flushing && !q->urgent && !q->hurry) {
            if (mono_ms() >= deadline)
                break;
            struct timespec ts = abs_ts(deadline);
            pthread_cond_timedwait(&q->cond_work, &q->mu, &ts);
        }
        /* take a group of up to group_ops items (at least one op) */
        struct queue_op *group = q->head, *last = q->head;
        unsigned weight = last->weight, urgent = op_urgent(last);
        while (last->next && weight + last->next->weight <= q->opt.group_ops) {
            last = last->next;
            weight += last->weight;
            urgent += op_urgent(last);
        }
        q->urgent -= urgent;
        q->hurry = false;
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->pending -= weight;
        q->inflight = weight;
        q->first_arrival_ms = mono_ms();
        pthread_cond_broadcast(&q->cond_space);
        pthread_mutex_unlock(&q->mu);

        uint64_t t0 = qstats_now_us();
        commit_group(q, group);
        uint64_t took_us = qstats_now_us() - t0;
        unsigned nops = 0;
        for (struct queue_op *op = group; op; op = op->next)
            nops++;
        complete_group(q, group);

        if (q->opt.trim_ms && mono_ms() - q->last_trim_ms >= q->opt.trim_ms) {
            q->last_trim_ms = mono_ms();
            queue_trim_map(q);
        }
        pthread_mutex_lock(&q->mu);
        q->commits++;
        q->ops_committed += nops;
        qstats_commit(q, took_us);
        q->inflight = 0;
        if (nosync && mono_ms() - q->last_sync_ms >= 1000) {
            pthread_mutex_unlock(&q->mu);
            mdb_env_sync(q->env, 1);
            pthread_mutex_lock(&q->mu);
            q->last_sync_ms = mono_ms();
        }
        if (!q->head)
            pthread_cond_broadcast(&q->cond_idle);
    }
    pthread_cond_broadcast(&q->cond_idle);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int writer_start(struct queue *q)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&q->cond_work);
    pthread_cond_init(&q->cond_work, &ca);
    pthread_condattr_destroy(&ca);
    q->last_sync_ms = mono_ms();
    int rc = pthread_create(&q->writer, NULL, writer_main, q);
    if (rc)
        return -rc;
    q->writer_running = true;
    return 0;
}

void writer_stop(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cond_work);
    pthread_cond_broadcast(&q->cond_space);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->writer, NULL);
    q->writer_running = false;
}

int writer_submit(struct queue *q, struct queue_op *op)
{
    if (!q->writer_running)
        return q->readonly ? -EROFS : QUEUE_ESHUTDOWN;
    bool on_writer = pthread_equal(pthread_self(), q->writer);
    pthread_mutex_lock(&q->mu);
    while (!q->stopping && !on_writer && q->pending > 0 &&
           q->pending + op->weight > q->opt.max_pending)
        pthread_cond_wait(&q->cond_space, &q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return QUEUE_ESHUTDOWN;
    }
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else {
        q->head = op;
        q->first_arrival_ms = mono_ms();
    }
    q->tail = op;
    bool wake = q->pending == 0 || q->pending + op->weight >= q->opt.group_ops;
    if (op_urgent(op) && !q->urgent++)
        wake = true;
    q->pending += op->weight;
    if (wake)
        pthread_cond_signal(&q->cond_work);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void queue_hurry(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->head && !q->hurry) {
        q->hurry = true;
        pthread_cond_signal(&q->cond_work);
    }
    pthread_mutex_unlock(&q->mu);
}

int queue_flush(struct queue *q)
{
    if (!q->writer_running)
        return 0;
    pthread_mutex_lock(&q->mu);
    /* end the writer's group window: commit what is there now */
    q->flushing++;
    pthread_cond_broadcast(&q->cond_work);
    while (q->head || q->inflight)
        pthread_cond_wait(&q->cond_idle, &q->mu);
    q->flushing--;
    pthread_mutex_unlock(&q->mu);
    return 0;
}
