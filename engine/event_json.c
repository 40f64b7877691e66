/*
 * event_json.c - one spool event as a JSON object: the shape every
 * consumer of the event stream hands on (the event log's lines, webhook
 * batches, accounting fields).
 *
 * DESCRIPTION
 *   The event's fields come from the spool as stored; text fields (reply,
 *   MX name, recipient) may hold any byte, so each byte that starts no
 *   valid UTF-8 sequence becomes U+FFFD before it goes into a JSON string.
 *
 * DIAGNOSTICS
 *   event_json_line() returns 0 when the line does not fit in the room
 *   given or jansson is out of memory; the caller keeps the event for
 *   later (it stays in the spool).
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "event_json.h"

#define REPLACEMENT "\xEF\xBF\xBD"

/* Length of the valid UTF-8 sequence at p (NUL-terminated), 0 if none. */
static size_t utf8_seq(const unsigned char *p)
{
    uint32_t cp;
    size_t n;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) { n = 2; cp = p[0] & 0x1f; }
    else if ((p[0] & 0xf0) == 0xe0) { n = 3; cp = p[0] & 0x0f; }
    else if (p[0] >= 0xf0 && p[0] <= 0xf4) { n = 4; cp = p[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* s into out, invalid UTF-8 bytes as U+FFFD (event_json.h). */
const char *event_utf8_clean(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p && o + 4 < cap) {
        size_t n = utf8_seq(p);
        if (n) {
            memcpy(out + o, p, n);
            p += n;
        } else {
            memcpy(out + o, REPLACEMENT, n = 3);
            p++;
        }
        o += n;
    }
    out[o] = 0;
    return out;
}

/* The event as an object (event_json.h). */
json_t *event_json(struct engine *e, const struct queue_event *ev)
{
    (void)e;
    char rcpt[3 * QUEUE_MAX_RCPT + 4], mx[3 * QUEUE_MAX_MX + 4];
    char enh[3 * QUEUE_MAX_ENHANCED + 4], text[3 * QUEUE_MAX_REPLY + 4];
    event_utf8_clean(ev->rcpt, rcpt, sizeof rcpt);
    const char *at = strrchr(rcpt, '@');
    json_t *j = json_pack(
        "{s:I,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:i,s:I}",
        "seq", (json_int_t)ev->seq,
        "type", queue_event_name(ev->type),
        "delivery", (json_int_t)ev->delivery,
        "campaign", (json_int_t)ev->campaign,
        "account", (json_int_t)ev->account,
        "rcpt", rcpt,
        "domain", at ? at + 1 : "",
        "mx", event_utf8_clean(ev->mx, mx, sizeof mx),
        "code", (int)ev->code,
        "enhanced", event_utf8_clean(ev->enhanced, enh, sizeof enh),
        "category", queue_category_name(ev->category),
        "text", event_utf8_clean(ev->text, text, sizeof text),
        "attempts", (int)ev->attempt,
        "time_ms", (json_int_t)ev->time_ms);
    return j;
}

/* The event as one line (event_json.h). */
size_t event_json_line(struct engine *e, const struct queue_event *ev,
                       char *buf, size_t room)
{
    json_t *j = event_json(e, ev);
    if (!j)
        return 0;
    size_t n = json_dumpb(j, buf, room, JSON_COMPACT);
    json_decref(j);
    if (n == 0 || n + 1 > room)
        return 0;
    buf[n] = '\n';
    return n + 1;
}
