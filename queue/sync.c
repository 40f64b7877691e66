/*
 * sync.c - synchronous forms of the queue's write operations.
 *
 * DESCRIPTION
 *   Submit one operation and wait on a condition variable until its group
 *   has committed.  For tools and tests; the engine uses the asynchronous
 *   forms with a completer.  Must not be called from a completion callback
 *   running on the writer thread.  Pause and resume (control.c) and the
 *   admin changes (admin_tx.c) exist only in this form: they are rare and
 *   an admin waits for them.
 */
#include <pthread.h>

#include "queue_int.h"

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    int status;
    uint64_t first_id, msg_id;
};

static void waiter_init(struct waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->done = false;
    w->status = 0;
    w->first_id = w->msg_id = 0;
}

/* Completion: record the result and wake the waiting thread. */
static void waiter_done(void *arg, int status, uint64_t first_id,
                        uint64_t msg_id)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->first_id = first_id;
    w->msg_id = msg_id;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Wait for the completion if submission succeeded; returns the status. */
static int waiter_wait(struct waiter *w, int submitted)
{
    if (submitted == 0) {
        pthread_mutex_lock(&w->mu);
        while (!w->done)
            pthread_cond_wait(&w->cond, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    return submitted ? submitted : w->status;
}

int queue_enqueue_message(struct queue *q, uint32_t account, const char *from,
                          const char *const *rcpts, size_t nrcpt,
                          const void *msg, size_t len, uint64_t *first_id,
                          uint64_t *msg_id)
{
    struct waiter w;
    waiter_init(&w);
    int err = waiter_wait(&w, queue_submit_message(q, account, from, rcpts,
                                                   nrcpt, msg, len, NULL,
                                                   waiter_done, &w));
    if (first_id)
        *first_id = err ? 0 : w.first_id;
    if (msg_id)
        *msg_id = err ? 0 : w.msg_id;
    return err;
}

int queue_enqueue_campaign(struct queue *q, uint32_t account,
                           uint64_t campaign,
                           const struct queue_campaign_rcpt *rcpts, size_t n,
                           uint64_t *first_id)
{
    struct waiter w;
    waiter_init(&w);
    int err = waiter_wait(&w, queue_submit_campaign(q, account, campaign,
                                                    rcpts, n, NULL,
                                                    waiter_done, &w));
    if (first_id)
        *first_id = err ? 0 : w.first_id;
    return err;
}

int queue_record_outcomes(struct queue *q, const struct queue_outcome *o,
                          size_t n)
{
    struct waiter w;
    waiter_init(&w);
    return waiter_wait(&w, queue_submit_outcomes(q, o, n, NULL, waiter_done,
                                                 &w));
}

int queue_pause(struct queue *q, int kind, const char *name,
                const char *reason, const char *who)
{
    struct waiter w;
    waiter_init(&w);
    return waiter_wait(&w, control_submit(q, kind, name, reason, who, true,
                                          0, waiter_done, &w));
}

int queue_pause_until(struct queue *q, int kind, const char *name,
                      const char *reason, const char *who, int64_t until)
{
    struct waiter w;
    waiter_init(&w);
    return waiter_wait(&w, control_submit(q, kind, name, reason, who, true,
                                          until, waiter_done, &w));
}

int queue_resume(struct queue *q, int kind, const char *name)
{
    struct waiter w;
    waiter_init(&w);
    return waiter_wait(&w, control_submit(q, kind, name, NULL, NULL, false,
                                          0, waiter_done, &w));
}

/* Submit an op built elsewhere (admin_tx.c) and wait for its commit. */
int sync_submit_wait(struct queue *q, struct queue_op *op)
{
    struct waiter w;
    waiter_init(&w);
    return waiter_wait(&w, queue_op_submit(q, op, NULL, waiter_done, &w));
}
