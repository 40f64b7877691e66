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
 *   Beside them (README, "Event types" and "Fields beside the stored
 *   ones"): `id`, the spool's identity and the
 *   seq ("IDENTITY-SEQ": the same event has the same id after any
 *   restart, and two spools never share one); `time`, time_ms as RFC 3339
 *   UTC with milliseconds; `message_id`, the number of the stored message
 *   of injected mail (null for campaign mail, which is rendered per
 *   recipient and stored nowhere: its delivery names it); `campaign_name`
 *   and `account_name` through the engine's cache (event_names.c; null
 *   for id 0 or a name that cannot be read); for a complaint
 *   `feedback_type` (ARF's Feedback-Type, "abuse"); for an incident
 *   `change` (opened, escalated, resumed, resolved: its text's first
 *   word).  Without the engine's
 *   cache (e NULL: a tool, a unit test) id and the names are null.
 *
 *   Written by hand: event_json_line() writes the line straight into
 *   the caller's buffer rather than building and dumping jansson's tree
 *   (the stream's hot path: every consumer hands on every event as this
 *   line); event_json() stays the reference, and test_event_json checks
 *   that the line is jansson's compact dump of it byte for byte.
 *
 * DIAGNOSTICS
 *   event_json_line() returns 0 when the line does not fit in the room
 *   given; event_json() NULL when jansson is out of memory.  The caller
 *   keeps the event for later (it stays in the spool).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "decimal.h"
#include "engine.h"
#include "event_json.h"
#include "event_names.h"

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

/* s into out, invalid UTF-8 bytes as U+FFFD (event_json.h).  Runs of
 * ASCII (nearly every byte of an address or a reply) are copied at once. */
const char *event_utf8_clean(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p && o + 4 < cap) {
        if (*p < 0x80) {
            const unsigned char *q = p;
            size_t lim = cap - 4 - o;
            while (*q && *q < 0x80 && (size_t)(q - p) < lim)
                q++;
            memcpy(out + o, p, (size_t)(q - p));
            o += (size_t)(q - p);
            p = q;
            continue;
        }
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

/* v in decimal at out (event_json.h). */
size_t event_put_dec(char *out, long long v)
{
    if (v >= 0)
        return decimal_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + decimal_u64(out + 1, 0ull - (unsigned long long)v);
}

/* v as exactly width digits at out (0 <= v < 10^width). */
static void put_fixed(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* RFC 3339 UTC time of ms (event_json.h).  Events come in bursts of
 * the same second: the calendar of the last second is kept per thread. */
size_t event_time_rfc3339(int64_t ms, char *out, size_t cap)
{
    static _Thread_local int64_t last_s = INT64_MIN;
    static _Thread_local char last[20];   /* "YYYY-MM-DDTHH:MM:SS" */
    int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - s * 1000);
    if (cap < 25) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    if (s != last_s) {
        struct tm tm;
        time_t t = (time_t)s;
        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 ||
            tm.tm_year + 1900 < 0) {
            out[0] = 0;
            return 0;
        }
        put_fixed(last, (unsigned)(tm.tm_year + 1900), 4);
        last[4] = '-';
        put_fixed(last + 5, (unsigned)tm.tm_mon + 1, 2);
        last[7] = '-';
        put_fixed(last + 8, (unsigned)tm.tm_mday, 2);
        last[10] = 'T';
        put_fixed(last + 11, (unsigned)tm.tm_hour, 2);
        last[13] = ':';
        put_fixed(last + 14, (unsigned)tm.tm_min, 2);
        last[16] = ':';
        put_fixed(last + 17, (unsigned)tm.tm_sec, 2);
        last_s = s;
    }
    memcpy(out, last, 19);
    out[19] = '.';
    put_fixed(out + 20, (unsigned)frac, 3);
    out[23] = 'Z';
    out[24] = 0;
    return 24;
}

/* The stable id of event seq of spool (event_json.h). */
size_t event_id(const char *spool, uint64_t seq, char *out, size_t cap)
{
    size_t sl = strlen(spool);
    char num[DECIMAL_U64_MAX];
    size_t nl = decimal_u64(num, seq);
    if (sl + 1 + nl + 1 > cap) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    memcpy(out, spool, sl);
    out[sl] = '-';
    memcpy(out + sl + 1, num, nl);
    out[sl + 1 + nl] = 0;
    return sl + 1 + nl;
}

/* ------------------------------------------------------- the fields */

static const char *const field_names[EVF_COUNT] = {
    [EVF_SEQ] = "seq", [EVF_TYPE] = "type", [EVF_DELIVERY] = "delivery",
    [EVF_CAMPAIGN] = "campaign", [EVF_ACCOUNT] = "account",
    [EVF_RCPT] = "rcpt", [EVF_DOMAIN] = "domain", [EVF_MX] = "mx",
    [EVF_CODE] = "code", [EVF_ENHANCED] = "enhanced",
    [EVF_CATEGORY] = "category", [EVF_TEXT] = "text",
    [EVF_ATTEMPTS] = "attempts", [EVF_TIME_MS] = "time_ms", [EVF_ID] = "id",
    [EVF_TIME] = "time", [EVF_MESSAGE_ID] = "message_id",
    [EVF_CAMPAIGN_NAME] = "campaign_name",
    [EVF_ACCOUNT_NAME] = "account_name",
    [EVF_FEEDBACK_TYPE] = "feedback_type", [EVF_CHANGE] = "change",
};

/* The field's name (event_json.h). */
const char *event_field_name(int field)
{
    return field >= 0 && field < EVF_COUNT ? field_names[field] : NULL;
}

/* The field of a name (event_json.h). */
int event_field_find(const char *name)
{
    for (int i = 0; i < EVF_COUNT; i++)
        if (!strcmp(field_names[i], name))
            return i;
    return -1;
}

static void set_num(struct event_fields *f, int i, long long v)
{
    f->kind[i] = EVK_NUM;
    f->num[i] = v;
}

/* A string, or null when empty. */
static void set_str(struct event_fields *f, int i, const char *s)
{
    f->kind[i] = s[0] ? EVK_STR : EVK_NULL;
    f->str[i] = s;
}

/* The event's fields (event_json.h). */
void event_fields(struct engine *e, const struct queue_event *ev,
                  struct event_fields *f)
{
    char raw[128];
    struct event_names *names = e ? e->evnames : NULL;
    f->id[0] = f->cname[0] = f->aname[0] = 0;
    event_utf8_clean(ev->rcpt, f->rcpt, sizeof f->rcpt);
    event_utf8_clean(ev->text, f->text, sizeof f->text);
    event_utf8_clean(ev->mx, f->mx, sizeof f->mx);
    event_utf8_clean(ev->enhanced, f->enh, sizeof f->enh);
    event_time_rfc3339(ev->time_ms, f->when, sizeof f->when);
    if (names) {
        event_id(event_names_spool(names), ev->seq, f->id, sizeof f->id);
        event_utf8_clean(event_names_campaign(names, ev->campaign, raw,
                                              sizeof raw), f->cname,
                         sizeof f->cname);
        event_utf8_clean(event_names_account(names, ev->account, raw,
                                             sizeof raw), f->aname,
                         sizeof f->aname);
    }
    const char *at = strrchr(f->rcpt, '@');
    set_num(f, EVF_SEQ, (long long)ev->seq);
    f->kind[EVF_TYPE] = EVK_STR;
    f->str[EVF_TYPE] = queue_event_name(ev->type);
    set_num(f, EVF_DELIVERY, (long long)ev->delivery);
    set_num(f, EVF_CAMPAIGN, (long long)ev->campaign);
    set_num(f, EVF_ACCOUNT, (long long)ev->account);
    /* the stored strings are strings even when empty */
    f->kind[EVF_RCPT] = f->kind[EVF_DOMAIN] = f->kind[EVF_MX] = EVK_STR;
    f->kind[EVF_ENHANCED] = f->kind[EVF_CATEGORY] = f->kind[EVF_TEXT] =
        EVK_STR;
    f->str[EVF_RCPT] = f->rcpt;
    f->str[EVF_DOMAIN] = at ? at + 1 : "";
    f->str[EVF_MX] = f->mx;
    set_num(f, EVF_CODE, (long long)ev->code);
    f->str[EVF_ENHANCED] = f->enh;
    f->str[EVF_CATEGORY] = queue_category_name(ev->category);
    f->str[EVF_TEXT] = f->text;
    set_num(f, EVF_ATTEMPTS, (long long)ev->attempt);
    set_num(f, EVF_TIME_MS, (long long)ev->time_ms);
    set_str(f, EVF_ID, f->id);
    set_str(f, EVF_TIME, f->when);
    if (ev->message)
        set_num(f, EVF_MESSAGE_ID, (long long)ev->message);
    else
        f->kind[EVF_MESSAGE_ID] = EVK_NULL;
    set_str(f, EVF_CAMPAIGN_NAME, f->cname);
    set_str(f, EVF_ACCOUNT_NAME, f->aname);
    f->kind[EVF_FEEDBACK_TYPE] = EVK_ABSENT;
    if (ev->type == QUEUE_EV_COMPLAINT) {
        f->kind[EVF_FEEDBACK_TYPE] = EVK_STR;
        f->str[EVF_FEEDBACK_TYPE] = f->text;
    }
    f->kind[EVF_CHANGE] = EVK_ABSENT;
    if (ev->type == QUEUE_EV_INCIDENT) {
        /* "opened ...", "escalated ...", "resumed ...", "resolved ..." */
        size_t n = strcspn(f->text, " ");
        if (n >= sizeof f->change)
            n = 0;
        memcpy(f->change, f->text, n);
        f->change[n] = 0;
        set_str(f, EVF_CHANGE, f->change);
    }
}

/* The event as an object (event_json.h). */
json_t *event_json(struct engine *e, const struct queue_event *ev)
{
    struct event_fields f;
    event_fields(e, ev, &f);
    json_t *j = json_object();
    for (int i = 0; j && i < EVF_COUNT; i++) {
        json_t *v = f.kind[i] == EVK_ABSENT ? NULL
                    : f.kind[i] == EVK_NULL ? json_null()
                    : f.kind[i] == EVK_NUM ? json_integer(f.num[i])
                    : json_string(f.str[i]);
        if (f.kind[i] != EVK_ABSENT &&
            (!v || json_object_set_new(j, field_names[i], v))) {
            json_decref(j);
            j = NULL;
        }
    }
    return j;
}

/* ------------------------------------------------- the line, directly */

/* A line being written into a caller's buffer; over once it did not fit. */
struct jw {
    char *p;
    size_t room, n;
    bool over;
};

/* Bytes as they are. */
static void jw_raw(struct jw *w, const char *s, size_t len)
{
    if (w->over || len > w->room - w->n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, s, len);
    w->n += len;
}

/* A decimal integer. */
static void jw_int(struct jw *w, long long v)
{
    char tmp[24];
    jw_raw(w, tmp, event_put_dec(tmp, v));
}

/* A JSON string of s (valid UTF-8: event_utf8_clean), escaped as jansson
 * escapes it (quote, backslash, control characters). */
static void jw_str(struct jw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    jw_raw(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jw_raw(w, run, (size_t)(s - run));
        char esc[6] = { '\\', 0 };
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        jw_raw(w, esc, n);
        run = s + 1;
    }
    jw_raw(w, run, (size_t)(s - run));
    jw_raw(w, "\"", 1);
}

/* ,"key": */
static void jw_key(struct jw *w, const char *key, bool first)
{
    /* the names are ours, plain ASCII letters and '_': nothing to escape */
    jw_raw(w, first ? "\"" : ",\"", first ? 1 : 2);
    jw_raw(w, key, strlen(key));
    jw_raw(w, "\":", 2);
}

/* The event as one line (event_json.h): the bytes json_dumpb() makes of
 * event_json()'s object with JSON_COMPACT, written straight into buf.
 * Every consumer hands on each event as this line, so it is the event
 * stream's hot path: building jansson's tree (an allocation per field, a
 * UTF-8 check per string, a hash insert per key) and then walking it cost
 * several times the writing itself.  test_event_json checks that both
 * give the same bytes for every type. */
size_t event_json_line(struct engine *e, const struct queue_event *ev,
                       char *buf, size_t room)
{
    struct event_fields f;
    if (!room)
        return 0;
    event_fields(e, ev, &f);
    struct jw w = { .p = buf, .room = room - 1 };
    bool first = true;
    jw_raw(&w, "{", 1);
    for (int i = 0; i < EVF_COUNT; i++) {
        if (f.kind[i] == EVK_ABSENT)
            continue;
        jw_key(&w, field_names[i], first);
        first = false;
        if (f.kind[i] == EVK_NULL)
            jw_raw(&w, "null", 4);
        else if (f.kind[i] == EVK_NUM)
            jw_int(&w, f.num[i]);
        else
            jw_str(&w, f.str[i]);
    }
    jw_raw(&w, "}", 1);
    if (w.over)
        return 0;
    buf[w.n] = '\n';   /* room - 1 kept for it */
    return w.n + 1;
}
