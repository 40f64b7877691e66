/*
 * records.c - byte layouts of delivery and event records, and recipient
 * checks.
 *
 * DESCRIPTION
 *   Event records are packed little-endian at fixed offsets followed by
 *   their strings.  Delivery records (one per queued recipient, the
 *   spool's largest table with the ready index) are packed as varints
 *   since schema 7: about 29 bytes plus the address for a campaign
 *   recipient, against 50 in format 1, which is still read (and written
 *   for the rare delivery format 2 cannot hold).
 *   Decoding checks every length against the record size and the caps in
 *   queue.h; a record that does not fit is reported as QUEUE_ECORRUPT rather
 *   than read past its end.
 *
 *   delivery: u8 format 2, u8 state, u16 attempts, i64 next_attempt,
 *             u48 last_event (what an outcome changes, fixed width),
 *             then varints (LEB128): account, campaign, ref, zigzag
 *             created, rcpt_len; rcpt
 *   delivery format 1: u8 format, u8 state, u16 attempts, u32 account,
 *             u64 campaign, u64 ref, i64 created, i64 next_attempt,
 *             u64 last_event, u16 rcpt_len, rcpt
 *   event:    u8 format, u8 type, u8 category, u8 enhanced_len, u16 code,
 *             u16 attempt, i64 time_ms, u64 delivery, u64 campaign,
 *             u64 prev, u32 account, u8 mx_len, u8 pad, u16 rcpt_len,
 *             u16 text_len, enhanced, mx, rcpt, text
 */
#include <errno.h>
#include <string.h>

#include "queue_int.h"

#define FORMAT 1                 /* event records */
#define DELIVERY_FMT_V1 1        /* fixed offsets: read, never written */
#define DELIVERY_FMT 2           /* varints (schema 7) */

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

unsigned char *qvar_put(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

bool qvar_get(const unsigned char **p, const unsigned char *end,
              uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        if (shift == 63 && c > 1)
            return false;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Signed as unsigned, small magnitudes small (zigzag). */
static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzz(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Format 1: fixed offsets, for the deliveries format 2 cannot hold. */
static size_t delivery_encode_v1(unsigned char *buf,
                                 const struct queue_delivery *d, size_t len)
{
    buf[0] = DELIVERY_FMT_V1;
    buf[1] = d->state;
    put16(buf + 2, d->attempts);
    put32(buf + 4, d->account);
    put64(buf + 8, d->campaign);
    put64(buf + 16, d->ref);
    put64(buf + 24, (uint64_t)d->created);
    put64(buf + 32, (uint64_t)d->next_attempt);
    put64(buf + 40, d->last_event);
    put16(buf + 48, (uint16_t)len);
    memcpy(buf + DELIVERY_FIXED, d->rcpt, len);
    return DELIVERY_FIXED + len;
}

/* Encode d into buf (DELIVERY_REC_MAX bytes); returns size.  Format 2
 * keeps what an outcome changes at fixed width (next_attempt whole: a
 * parked delivery's is far in the future), so a record never grows when
 * its delivery moves on and a full spool can still record outcomes; a
 * delivery whose last event's seq needs more than 48 bits is written in
 * format 1. */
size_t qdelivery_encode(unsigned char *buf, const struct queue_delivery *d)
{
    size_t len = strnlen(d->rcpt, QUEUE_MAX_RCPT);
    if (d->last_event >> 48)
        return delivery_encode_v1(buf, d, len);
    unsigned char *p = buf;
    *p++ = DELIVERY_FMT;
    *p++ = d->state;
    put16(p, d->attempts);
    put64(p + 2, (uint64_t)d->next_attempt);
    put32(p + 10, (uint32_t)d->last_event);
    put16(p + 14, (uint16_t)(d->last_event >> 32));
    p += 16;
    p = qvar_put(p, d->account);
    p = qvar_put(p, d->campaign);
    p = qvar_put(p, d->ref);
    p = qvar_put(p, zz(d->created));
    p = qvar_put(p, len);
    memcpy(p, d->rcpt, len);
    return (size_t)(p - buf) + len;
}

/* Format 1 (written before schema 7): fixed offsets. */
static int delivery_decode_v1(const MDB_val *v, struct queue_delivery *d)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < DELIVERY_FIXED)
        return QUEUE_ECORRUPT;
    size_t len = get16(p + 48);
    if (len > QUEUE_MAX_RCPT || DELIVERY_FIXED + len != v->mv_size)
        return QUEUE_ECORRUPT;
    d->state = p[1];
    d->attempts = get16(p + 2);
    d->account = get32(p + 4);
    d->campaign = get64(p + 8);
    d->ref = get64(p + 16);
    d->created = (int64_t)get64(p + 24);
    d->next_attempt = (int64_t)get64(p + 32);
    d->last_event = get64(p + 40);
    memcpy(d->rcpt, p + DELIVERY_FIXED, len);
    d->rcpt[len] = 0;
    return 0;
}

int qdelivery_decode(const MDB_val *v, uint64_t id, struct queue_delivery *d)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    uint64_t account, created, len;
    if (v->mv_size < 2)
        return QUEUE_ECORRUPT;
    d->id = id;
    if (p[0] == DELIVERY_FMT_V1)
        return delivery_decode_v1(v, d);
    if (p[0] != DELIVERY_FMT || v->mv_size < 18)
        return QUEUE_ECORRUPT;
    d->state = p[1];
    d->attempts = get16(p + 2);
    d->next_attempt = (int64_t)get64(p + 4);
    d->last_event = get32(p + 12) | (uint64_t)get16(p + 16) << 32;
    p += 18;
    if (!qvar_get(&p, end, &account) || account > UINT32_MAX ||
        !qvar_get(&p, end, &d->campaign) || !qvar_get(&p, end, &d->ref) ||
        !qvar_get(&p, end, &created) || !qvar_get(&p, end, &len) ||
        len > QUEUE_MAX_RCPT || (uint64_t)(end - p) != len)
        return QUEUE_ECORRUPT;
    d->account = (uint32_t)account;
    d->created = unzz(created);
    memcpy(d->rcpt, p, len);
    d->rcpt[len] = 0;
    return 0;
}

/* Encode e into buf of cap bytes; returns the size (0 if it cannot fit). */
size_t qevent_encode(unsigned char *buf, size_t cap,
                     const struct queue_event *e)
{
    size_t el = strnlen(e->enhanced, QUEUE_MAX_ENHANCED);
    size_t ml = strnlen(e->mx, QUEUE_MAX_MX);
    size_t rl = strnlen(e->rcpt, QUEUE_MAX_RCPT);
    size_t tl = strnlen(e->text, QUEUE_MAX_REPLY);
    size_t n = EVENT_FIXED + el + ml + rl + tl;
    if (n > cap)
        return 0;
    buf[0] = FORMAT;
    buf[1] = e->type;
    buf[2] = e->category;
    buf[3] = (unsigned char)el;
    put16(buf + 4, e->code);
    put16(buf + 6, e->attempt);
    put64(buf + 8, (uint64_t)e->time_ms);
    put64(buf + 16, e->delivery);
    put64(buf + 24, e->campaign);
    put64(buf + 32, e->prev);
    put32(buf + 40, e->account);
    buf[44] = (unsigned char)ml;
    buf[45] = 0;
    put16(buf + 46, (uint16_t)rl);
    put16(buf + 48, (uint16_t)tl);
    unsigned char *s = buf + EVENT_FIXED;
    memcpy(s, e->enhanced, el);
    memcpy(s + el, e->mx, ml);
    memcpy(s + el + ml, e->rcpt, rl);
    memcpy(s + el + ml + rl, e->text, tl);
    return n;
}

int qevent_decode(const MDB_val *v, uint64_t seq, struct queue_event *e)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < EVENT_FIXED || p[0] != FORMAT)
        return QUEUE_ECORRUPT;
    size_t el = p[3], ml = p[44], rl = get16(p + 46), tl = get16(p + 48);
    if (el > QUEUE_MAX_ENHANCED || rl > QUEUE_MAX_RCPT ||
        tl > QUEUE_MAX_REPLY || EVENT_FIXED + el + ml + rl + tl != v->mv_size)
        return QUEUE_ECORRUPT;
    e->seq = seq;
    e->type = p[1];
    e->category = p[2];
    e->code = get16(p + 4);
    e->attempt = get16(p + 6);
    e->time_ms = (int64_t)get64(p + 8);
    e->delivery = get64(p + 16);
    e->campaign = get64(p + 24);
    e->prev = get64(p + 32);
    e->account = get32(p + 40);
    e->message = 0;   /* not stored: the readers fill it (queue.h) */
    const unsigned char *s = p + EVENT_FIXED;
    memcpy(e->enhanced, s, el);
    e->enhanced[el] = 0;
    memcpy(e->mx, s + el, ml);
    e->mx[ml] = 0;
    memcpy(e->rcpt, s + el + ml, rl);
    e->rcpt[rl] = 0;
    memcpy(e->text, s + el + ml + rl, tl);
    e->text[tl] = 0;
    return 0;
}

/* The domain part of a checked recipient (after its last '@'). */
const char *qrcpt_domain(const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');
    return at ? at + 1 : rcpt + strlen(rcpt);
}

/* Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static bool utf8_ok(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s, n, min, cp;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; cp = c & 0x07; }
        else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

int queue_check_rcpt(const char *addr)
{
    if (!addr)
        return -EINVAL;
    size_t n = strnlen(addr, QUEUE_MAX_RCPT + 1);
    if (n == 0 || n > QUEUE_MAX_RCPT)
        return -EINVAL;
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || (size_t)(at - addr) > 64)
        return -EINVAL;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
            return -EINVAL;
    if (!utf8_ok((const unsigned char *)addr))
        return -EINVAL;   /* 8-bit must be UTF-8 (RFC 6531) */
    const char *dom = at + 1;
    size_t dl = strlen(dom);
    if (dl == 0 || dl > 255 || dom[0] == '.' || dom[dl - 1] == '.' ||
        strstr(dom, ".."))
        return -EINVAL;
    for (const unsigned char *p = (const unsigned char *)dom; *p; p++)
        if (!(*p >= 0x80 || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '[' || *p == ']' || *p == ':'))
            return -EINVAL;
    return 0;
}

const char *queue_event_name(int type)
{
    switch (type) {
    case QUEUE_EV_DELIVERED: return "delivered";
    case QUEUE_EV_DEFERRED: return "deferred";
    case QUEUE_EV_BOUNCED: return "bounced";
    case QUEUE_EV_EXPIRED: return "expired";
    case QUEUE_EV_SUPPRESSED: return "suppressed";
    case QUEUE_EV_CANCELLED: return "cancelled";
    case QUEUE_EV_COMPLAINT: return "complaint";
    case QUEUE_EV_UNSUBSCRIBED: return "unsubscribed";
    case QUEUE_EV_RECEPTION: return "reception";
    case QUEUE_EV_INCIDENT: return "incident";
    case QUEUE_EV_OPENED: return "open";
    case QUEUE_EV_CLICKED: return "click";
    default: return "unknown";
    }
}

const char *queue_state_name(int state)
{
    switch (state) {
    case QUEUE_ST_QUEUED: return "queued";
    case QUEUE_ST_DELIVERED: return "delivered";
    case QUEUE_ST_BOUNCED: return "bounced";
    case QUEUE_ST_EXPIRED: return "expired";
    case QUEUE_ST_SUPPRESSED: return "suppressed";
    case QUEUE_ST_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

const char *queue_category_name(int cat)
{
    static const char *const names[QUEUE_CAT_COUNT] = {
        "", "bad-mailbox", "bad-domain", "inactive-mailbox", "quota-issues",
        "no-answer-from-host", "routing-errors", "policy-related",
        "spam-related", "content-related", "protocol-errors",
        "message-expired", "other", "admin",
    };
    return cat >= 0 && cat < QUEUE_CAT_COUNT ? names[cat] : "other";
}
