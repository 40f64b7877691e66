/*
 * queue_uv.h - deliver queue completions into a libuv loop.
 *
 * DESCRIPTION
 *   A completer owns a uv_async_t on one loop.  Operations submitted with a
 *   completer have their callbacks run on that loop's thread, after the group
 *   commit that holds them; the writer thread only links them into the
 *   completer's list and wakes the loop.
 *
 * OWNERSHIP
 *   queue_completer_new() allocates; queue_completer_close() closes the async
 *   handle and frees the completer in its close callback.  Close it only
 *   after every operation submitted with it has completed (queue_flush() and
 *   one more turn of the loop, or the last callback seen).
 */
#ifndef SLUICE_QUEUE_UV_H
#define SLUICE_QUEUE_UV_H

#include <uv.h>

#include "queue.h"

int queue_completer_new(uv_loop_t *loop, struct queue_completer **out);
void queue_completer_close(struct queue_completer *c);

#endif
