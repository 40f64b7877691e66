/*
 * event_json.h - one spool event as JSON (event_json.c), shared by the
 * event log, webhooks and accounting files.
 */
#ifndef SLUICE_EVENT_JSON_H
#define SLUICE_EVENT_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "queue.h"

struct engine;

/* One event as a JSON object (a new reference, NULL when out of memory):
 * the one place that decides an event's fields and their names; the log
 * line, a webhook batch entry and an accounting row all come from it. */
json_t *event_json(struct engine *e, const struct queue_event *ev);
/* (e may be NULL: then id, campaign_name and account_name are null.  A
 * name not in the cache is read from the spool, which is allowed inside
 * a queue_events_from() callback.) */

/* One event as a compact JSON line with its newline into buf; its length,
 * or 0 when it does not fit in room (or cannot be built: out of memory).
 * Fields are capped in the spool, so a line stays under 16 KiB. */
size_t event_json_line(struct engine *e, const struct queue_event *ev,
                       char *buf, size_t room);

/* ms since the epoch as RFC 3339 UTC with milliseconds,
 * "2026-12-07T14:05:09.042Z", into out; its length, or 0 (out "") when it
 * does not fit or the year is outside 0000..9999. */
#define EVENT_TIME_MAX 32
size_t event_time_rfc3339(int64_t ms, char *out, size_t cap);

/* An event's stable id, "SPOOL-SEQ" (SPOOL: queue_spool_identity()),
 * into out; its length, or 0 (out "") when it does not fit. */
#define EVENT_ID_MAX 64
size_t event_id(const char *spool, uint64_t seq, char *out, size_t cap);

/* s into out (cap >= 3 * strlen(s) + 1 keeps all of it) with each byte
 * that starts no valid UTF-8 sequence replaced by U+FFFD: a reply text
 * may hold any byte, or a character cut at the spool's cap, and JSON
 * strings are UTF-8.  Returns out. */
const char *event_utf8_clean(const char *s, char *out, size_t cap);

#endif
