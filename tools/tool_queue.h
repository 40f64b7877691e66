/*
 * tool_queue.h - what the files of `sluice queue` share (cmd_queue.c,
 * cmd_queue_act.c).
 */
#ifndef SLUICE_TOOL_QUEUE_H
#define SLUICE_TOOL_QUEUE_H

#include <stdbool.h>

#include "queue_queued.h"
#include "tool.h"

/* Which site sluiced's live view (status.json, status_view.c) puts each
 * domain it has seen in: sorted pairs pointing into the view's JSON. */
struct site_of;
struct tool_site_map {
    struct site_of *v;
    size_t n;
};
/* Build m from v (free m->v); 0 or -ENOMEM. */
int tool_queue_site_map(const struct status_view *v,
                        struct tool_site_map *m);
/* The site m puts domain in, else domain itself (a destination of its
 * own). */
const char *tool_queue_site_of(const struct tool_site_map *m,
                               const char *domain);

/* Whether a pause of kind and name holds now (the view keeps only those
 * that do). */
bool tool_queue_paused(const struct status_view *v, int kind,
                       const char *name);

/* Open the spool for writing, identify the caller, look up acct (NULL:
 * none; it then scopes sel) and check act on it, else on the master.
 * 0 with *q open, or the exit code with nothing open. */
int tool_queue_begin(struct tool_ctx *ctx, const char *prog, int act,
                     const char *acct, const char *object, struct queue **q,
                     struct queue_select *sel);

/* `sluice queue retry` and `sluice queue bounce` (cmd_queue_act.c). */
int tool_queue_retry(struct tool_ctx *ctx, int argc, char **argv);
int tool_queue_bounce(struct tool_ctx *ctx, int argc, char **argv);

#endif
