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

/* The fields of an event, in the order of its JSON line: the one list
 * the line, the object and the accounting columns come from. */
enum event_field {
    EVF_SEQ, EVF_TYPE, EVF_DELIVERY, EVF_CAMPAIGN, EVF_ACCOUNT, EVF_RCPT,
    EVF_DOMAIN, EVF_MX, EVF_CODE, EVF_ENHANCED, EVF_CATEGORY, EVF_TEXT,
    EVF_ATTEMPTS, EVF_TIME_MS, EVF_ID, EVF_TIME, EVF_MESSAGE_ID,
    EVF_CAMPAIGN_NAME, EVF_ACCOUNT_NAME, EVF_FEEDBACK_TYPE, EVF_CHANGE,
    EVF_COUNT
};

/* What one field holds for one event. */
enum event_kind { EVK_ABSENT, EVK_NULL, EVK_NUM, EVK_STR };

/* One event's fields, worked out once (event_fields()); strings point
 * into the buffers here (valid UTF-8: event_utf8_clean()). */
struct event_fields {
    unsigned char kind[EVF_COUNT];   /* enum event_kind */
    long long num[EVF_COUNT];        /* EVK_NUM */
    const char *str[EVF_COUNT];      /* EVK_STR */
    char rcpt[3 * QUEUE_MAX_RCPT + 4], mx[3 * QUEUE_MAX_MX + 4];
    char enh[3 * QUEUE_MAX_ENHANCED + 4], text[3 * QUEUE_MAX_REPLY + 4];
    char id[64], when[32];           /* EVENT_ID_MAX, EVENT_TIME_MAX */
    char cname[3 * 128 + 4], aname[3 * 128 + 4];
    char change[16];                 /* an incident's: its text's first word */
};

/* Fill f with ev's fields (names and id through e's cache; e NULL: none,
 * they are null). */
void event_fields(struct engine *e, const struct queue_event *ev,
                  struct event_fields *f);

/* v in decimal at out, which has room for 21 bytes (a sign and 20
 * digits); its length (no NUL written).  The stream writes many numbers
 * per event: this is snprintf's "%lld" without its cost. */
size_t event_put_dec(char *out, long long v);

/* A field's name in the JSON line, and a name's field (-1: none). */
const char *event_field_name(int field);
int event_field_find(const char *name);

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
