/*
 * msg_check.c - the rules a raw message meets before it is queued, and
 * the Date: and Message-ID: fields added when missing (queue_msg.h).
 *
 * DESCRIPTION
 *   One pass over the header section finds its fields and its end; one
 *   memchr finds a NUL anywhere.  Line ends are those of the wire form
 *   (LF, CRLF, lone CR), so what is checked here is what the receiver
 *   will parse.  The added fields go at the end of the header, before the
 *   empty line, with the line end of the message's first line.
 *
 * DIAGNOSTICS
 *   -EBADMSG with a one-line reason naming the rule and, for a header
 *   line, its number and start (control and 8-bit octets shown as '?');
 *   -EINVAL, -ENOMEM, -EIO, QUEUE_ETOOBIG as queue_msg.h says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "queue.h"
#include "queue_msg.h"

#define SNIPPET 40

/* The end of the line starting at p (first CR or LF, or end) and the
 * start of the next one. */
static const char *line_end(const char *p, const char *end,
                            const char **next)
{
    const char *q = p;
    while (q < end && *q != '\r' && *q != '\n')
        q++;
    *next = q < end ? q + 1 + (*q == '\r' && q + 1 < end && q[1] == '\n')
                    : end;
    return q;
}

/* The start of a line for a message: printable ASCII, the rest '?'. */
static void snippet(char *buf, size_t cap, const char *p, const char *e)
{
    size_t n = 0;
    for (; p < e && n + 1 < cap && n < SNIPPET; p++)
        buf[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
    buf[n] = 0;
}

/* The length of a field name at line[0..n) followed by optional white
 * space and ':', or 0 when the line is no header field. */
static size_t field_name(const char *line, size_t n)
{
    size_t k = 0;
    while (k < n && line[k] > 0x20 && line[k] < 0x7f && line[k] != ':')
        k++;
    size_t name = k;
    while (k < n && (line[k] == ' ' || line[k] == '\t'))
        k++;
    return name && k < n && line[k] == ':' ? name : 0;
}

static bool name_is(const char *line, size_t name, const char *want)
{
    return name == strlen(want) && !strncasecmp(line, want, name);
}

int queue_message_check(const void *msg, size_t len,
                        struct queue_msg_facts *facts, char *why,
                        size_t whylen)
{
    const char *m = msg, *end = m + len, *p = m, *nul;
    struct queue_msg_facts f = { 0 };
    unsigned nfrom = 0, lineno = 0;
    bool from_addr = false, in_from = false;
    char snip[SNIPPET + 1];

    if (!len) {
        snprintf(why, whylen, "the message is empty");
        return -EBADMSG;
    }
    if ((nul = memchr(m, 0, len))) {
        snprintf(why, whylen, "the message holds a NUL byte (at offset "
                 "%zu): NUL bytes are refused", (size_t)(nul - m));
        return -EBADMSG;
    }
    while (p < end) {
        const char *next, *e = line_end(p, end, &next);
        size_t n = (size_t)(e - p);
        lineno++;
        if (n == 0)
            break;   /* the empty line: the body follows */
        if ((size_t)(next - m) > QUEUE_MSG_MAX_HEADER) {
            snprintf(why, whylen, "no end of the header within %u KiB",
                     QUEUE_MSG_MAX_HEADER / 1024);
            return -EBADMSG;
        }
        for (const char *c = p; c < e && !f.header_8bit; c++)
            f.header_8bit = (unsigned char)*c >= 0x80;
        if (*p == ' ' || *p == '\t') {
            if (lineno == 1) {
                snippet(snip, sizeof snip, p, e);
                snprintf(why, whylen, "header line 1 starts with white "
                         "space: '%s'", snip);
                return -EBADMSG;
            }
            from_addr |= in_from && memchr(p, '@', n);
        } else {
            size_t name = field_name(p, n);
            if (!name) {
                snippet(snip, sizeof snip, p, e);
                snprintf(why, whylen, "header line %u is not a header "
                         "field ('%s', no name and colon): is the empty "
                         "line between header and body missing?", lineno,
                         snip);
                return -EBADMSG;
            }
            in_from = name_is(p, name, "From");
            if (in_from) {
                nfrom++;
                from_addr |= memchr(p + name, '@', n - name) != NULL;
            }
            f.has_date |= name_is(p, name, "Date");
            f.has_message_id |= name_is(p, name, "Message-ID");
        }
        if (lineno == 1)
            f.crlf = e < end && *e == '\r' && e + 1 < end && e[1] == '\n';
        f.header_end = (size_t)(next - m);
        p = next;
    }
    if (nfrom != 1 || !from_addr) {
        if (!nfrom)
            snprintf(why, whylen, "the message has no From: header");
        else if (nfrom > 1)
            snprintf(why, whylen, "the message has %u From: headers; one is "
                     "allowed", nfrom);
        else
            snprintf(why, whylen, "the From: header holds no address");
        return -EBADMSG;
    }
    if (facts)
        *facts = f;
    return 0;
}

bool queue_message_host_ok(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (!n || n > 253 || h[0] == '.' || h[n - 1] == '.' || strstr(h, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
              (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.'))
            return false;
    return true;
}

/* "Date: Thu, 05 Nov 2026 13:04:05 +0100" for now in the local zone,
 * without line end; 0 or -EINVAL. */
static int date_field(char *buf, size_t cap, int64_t now)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
                                     "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
                                        "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec" };
    time_t t = (time_t)now;
    struct tm tm;
    if (!localtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 ||
        tm.tm_mon < 0 || tm.tm_mon > 11)
        return -EINVAL;
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, cap, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
             days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
    return 0;
}

/* "Message-ID: <32 hex digits@host>" without line end; 0 or -EIO. */
static int msgid_field(char *buf, size_t cap, const char *host)
{
    unsigned char r[16];
    char hex[2 * sizeof r + 1];
    if (RAND_bytes(r, (int)sizeof r) != 1)
        return -EIO;
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    snprintf(buf, cap, "Message-ID: <%s@%s>", hex, host);
    return 0;
}

int queue_message_cleanup(const void *msg, size_t len, const char *idhost,
                          int64_t now, char **out, size_t *outlen,
                          char *why, size_t whylen)
{
    struct queue_msg_facts f;
    char date[64] = "", mid[320] = "";
    int rc;

    *out = NULL;
    *outlen = len;
    if ((rc = queue_message_check(msg, len, &f, why, whylen)))
        return rc;
    if (f.has_date && f.has_message_id)
        return 0;
    if (!f.has_message_id && !queue_message_host_ok(idhost)) {
        snprintf(why, whylen, "'%.80s' is no host name for a Message-ID",
                 idhost ? idhost : "");
        return -EINVAL;
    }
    if (!f.has_date && date_field(date, sizeof date, now)) {
        snprintf(why, whylen, "the local time cannot be read");
        return -EINVAL;
    }
    if (!f.has_message_id && (rc = msgid_field(mid, sizeof mid, idhost))) {
        snprintf(why, whylen, "no random bytes for a Message-ID");
        return rc;
    }
    const char *m = msg, *eol = f.crlf ? "\r\n" : "\n";
    size_t el = strlen(eol), at = f.header_end;
    /* a header that ends the message without a line end gets one */
    bool open = at > 0 && m[at - 1] != '\n' && m[at - 1] != '\r';
    size_t add = (open ? el : 0) + (date[0] ? strlen(date) + el : 0) +
                 (mid[0] ? strlen(mid) + el : 0);
    if (len + add > QUEUE_MAX_MESSAGE) {
        snprintf(why, whylen, "the message with Date: and Message-ID: "
                 "added is larger than %u MiB", QUEUE_MAX_MESSAGE >> 20);
        return QUEUE_ETOOBIG;
    }
    char *o = malloc(len + add + 1);
    if (!o)
        return -ENOMEM;
    size_t n = at;
    memcpy(o, m, at);
    if (open) {
        memcpy(o + n, eol, el);
        n += el;
    }
    const char *fields[2] = { date, mid };
    for (int i = 0; i < 2; i++) {
        size_t fl = strlen(fields[i]);
        if (!fl)
            continue;
        memcpy(o + n, fields[i], fl);
        memcpy(o + n + fl, eol, el);
        n += fl + el;
    }
    memcpy(o + n, m + at, len - at);
    n += len - at;
    o[n] = 0;
    *out = o;
    *outlen = n;
    return 0;
}
