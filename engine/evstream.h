/*
 * evstream.h - the spool's events read once for all their consumers
 * (evstream.c): a bounded window of decoded events, with each event's
 * JSON line made once, that the event log, the accounting files and the
 * webhooks take their slices from, each after its own cursor.
 *
 * OWNERSHIP
 *   The window is the engine's (e->evstream), made at the first read and
 *   freed by evstream_stop().  An event passed to a callback, and its
 *   line, are valid only during the call.
 */
#ifndef SLUICE_EVSTREAM_H
#define SLUICE_EVSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct engine;
struct evstream;

/* One event as the consumers see it: decoded, and its JSON line once a
 * consumer asked for it (evstream_line()). */
struct evstream_event {
    struct queue_event ev;
    char *line;          /* the window's buffer for the line, or NULL */
    size_t line_len;     /* 0: not made yet */
    size_t line_cap;
};

/* Call cb for each event with seq >= from, in order, up to max events
 * (0: no limit), as queue_events_from() does, from the window: a read
 * of the spool only for events after its end (kept for the consumers
 * that ask next) or before its start.  cb returns non-zero to stop.  The
 * number of events passed to cb, or a negative code. */
long evstream_from(struct engine *e, uint64_t from, size_t max,
                   int (*cb)(void *arg, struct evstream_event *x),
                   void *arg);

/* The event's JSON line (event_json_line(), its newline included), made
 * at the first ask and kept with the event: the log and each webhook
 * hand on the same bytes.  NULL (*len 0) when it cannot be made.  Valid
 * during the callback, until the next evstream_line() call. */
const char *evstream_line(struct engine *e, struct evstream_event *x,
                          size_t *len);

/* Outcomes committed: the next ask at the window's end reads the spool
 * even when the last read found nothing more. */
void evstream_committed(struct engine *e);

/* Free the window (after the last consumer closed; NULL e->evstream is
 * fine). */
void evstream_stop(struct engine *e);

#endif
