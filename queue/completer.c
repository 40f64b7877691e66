/*
 * completer.c - completions handed from the writer thread to a libuv loop.
 *
 * DESCRIPTION
 *   The writer links finished operations into the completer's list under a
 *   mutex and calls uv_async_send(); the loop's async callback takes the
 *   whole list and runs each callback on the loop thread.  uv_async_send()
 *   coalesces wake-ups, so a burst of completions costs one loop wake-up.
 *
 * OWNERSHIP
 *   The completer frees each operation after its callback.  It is freed in
 *   the async handle's close callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "queue_int.h"
#include "queue_uv.h"

struct queue_completer {
    uv_async_t async;
    pthread_mutex_t mu;
    struct queue_op *head, *tail;
};

/* Loop thread: run every completion that has arrived. */
static void on_async(uv_async_t *h)
{
    struct queue_completer *c = h->data;
    pthread_mutex_lock(&c->mu);
    struct queue_op *op = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (op) {
        struct queue_op *next = op->next;
        if (op->cb)
            op->cb(op->arg, op->status, op->first_id, op->msg_id);
        queue_op_free(op);
        op = next;
    }
}

int queue_completer_new(uv_loop_t *loop, struct queue_completer **out)
{
    struct queue_completer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = uv_async_init(loop, &c->async, on_async);
    if (rc) {
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->async.data = c;
    *out = c;
    return 0;
}

static void on_close(uv_handle_t *h)
{
    struct queue_completer *c = h->data;
    pthread_mutex_lock(&c->mu); /* a push may still be leaving */
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void queue_completer_close(struct queue_completer *c)
{
    if (!c)
        return;
    on_async(&c->async); /* anything that arrived since the last wake-up */
    uv_close((uv_handle_t *)&c->async, on_close);
}

/* Writer thread: queue op for the loop and wake it. */
void completer_push(struct queue_completer *c, struct queue_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    /* wake the loop before unlocking: once the loop can see op, its last
     * callback may close and free the completer */
    uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}
