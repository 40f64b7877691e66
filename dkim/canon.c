/*
 * canon.c - message splitting and relaxed canonicalization (RFC 6376 3.4).
 *
 * DESCRIPTION
 *   canon_split() indexes the header fields of a CRLF message in place.
 *   canon_header_relaxed() and canon_body_relaxed() stream the relaxed
 *   forms into an EVP digest through a small stack buffer, so signing never
 *   copies the message.
 *
 * DIAGNOSTICS
 *   DKIM_E_MSG for a bare LF or a header line that is neither a field nor a
 *   continuation, DKIM_E_TOOBIG for too many fields, DKIM_E_CRYPTO when the
 *   digest update fails.
 */
#include <string.h>

#include "dkim_int.h"
#include "dkim_sign.h"

#define OUTBUF 4096

/* Small output buffer that drains into the digest when full. */
struct out {
    EVP_MD_CTX *md;
    size_t len;
    int failed;
    unsigned char buf[OUTBUF];
};

/* Send what is buffered to the digest. */
static void out_flush(struct out *o)
{
    if (o->len > 0 && !o->failed && EVP_DigestUpdate(o->md, o->buf, o->len) != 1)
        o->failed = 1;
    o->len = 0;
}

/* Append one byte. */
static void out_byte(struct out *o, unsigned char c)
{
    if (o->len == OUTBUF)
        out_flush(o);
    o->buf[o->len++] = c;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

int canon_split(const char *msg, size_t len, struct dkim_hfield *fields,
                size_t max, size_t *nfields, size_t *body_off)
{
    size_t pos = 0, n = 0;

    for (size_t i = 0; i < len; i++)
        if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
            return DKIM_E_MSG;
    while (pos < len) {
        if (len - pos >= 2 && msg[pos] == '\r' && msg[pos + 1] == '\n') {
            pos += 2;                           /* the empty line */
            break;
        }
        if (is_wsp(msg[pos]))
            return DKIM_E_MSG;                  /* continuation with no field */
        size_t start = pos, end = pos, colon = 0;
        int have_colon = 0;
        /* A field runs until a CRLF not followed by WSP. */
        for (;;) {
            const char *cr = memchr(msg + end, '\r', len - end);
            if (cr == NULL) {
                end = len;
                pos = len;
                break;
            }
            end = (size_t)(cr - msg);
            if (end + 1 < len && msg[end + 1] == '\n') {
                if (end + 2 < len && is_wsp(msg[end + 2])) {
                    end += 2;
                    continue;
                }
                pos = end + 2;
                break;
            }
            end++;                              /* bare CR inside a field */
        }
        for (size_t i = start; i < end; i++)
            if (msg[i] == ':') {
                colon = i;
                have_colon = 1;
                break;
            }
        if (!have_colon || colon == start)
            return DKIM_E_MSG;
        if (n == max)
            return DKIM_E_TOOBIG;
        size_t name_len = colon - start;
        while (name_len > 0 && is_wsp(msg[start + name_len - 1]))
            name_len--;
        fields[n].field = msg + start;
        fields[n].field_len = end - start;
        fields[n].name_len = name_len;
        n++;
    }
    *nfields = n;
    *body_off = pos;
    return 0;
}

int canon_header_relaxed(EVP_MD_CTX *md, const char *field, size_t len,
                         int with_crlf)
{
    struct out o = { .md = md };
    size_t i = 0;
    const char *colon = memchr(field, ':', len);
    size_t name_end = colon ? (size_t)(colon - field) : len;
    size_t name_len = name_end;

    while (name_len > 0 && is_wsp(field[name_len - 1]))
        name_len--;
    for (i = 0; i < name_len; i++) {
        char c = field[i];
        out_byte(&o, (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    out_byte(&o, ':');
    /* Value: unfold, WSP runs to one SP, trim both ends. */
    int pending_sp = 0, started = 0;
    for (i = name_end + 1; i < len; i++) {
        char c = field[i];
        if (c == '\r' && i + 1 < len && field[i + 1] == '\n') {
            i++;
            continue;
        }
        if (is_wsp(c)) {
            pending_sp = started;
            continue;
        }
        if (pending_sp)
            out_byte(&o, ' ');
        pending_sp = 0;
        started = 1;
        out_byte(&o, (unsigned char)c);
    }
    if (with_crlf) {
        out_byte(&o, '\r');
        out_byte(&o, '\n');
    }
    out_flush(&o);
    return o.failed ? DKIM_E_CRYPTO : 0;
}

int canon_body_relaxed(EVP_MD_CTX *md, const char *body, size_t len)
{
    struct out o = { .md = md };
    size_t pos = 0, blank = 0;

    while (pos < len) {
        const char *eol = NULL;
        size_t scan = pos, end;
        /* Find the next CRLF; a bare CR is an ordinary character. */
        while (scan < len) {
            const char *cr = memchr(body + scan, '\r', len - scan);
            if (cr == NULL)
                break;
            if ((size_t)(cr - body) + 1 < len && cr[1] == '\n') {
                eol = cr;
                break;
            }
            scan = (size_t)(cr - body) + 1;
        }
        end = eol ? (size_t)(eol - body) : len;
        int pending_sp = 0, any = 0;
        for (size_t i = pos; i < end; i++) {
            char c = body[i];
            if (is_wsp(c)) {
                pending_sp = 1;
                continue;
            }
            if (!any) {
                /* Blank lines before this one were not at the end. */
                for (; blank > 0; blank--) {
                    out_byte(&o, '\r');
                    out_byte(&o, '\n');
                }
            }
            if (pending_sp)
                out_byte(&o, ' ');
            pending_sp = 0;
            any = 1;
            out_byte(&o, (unsigned char)c);
        }
        if (any) {
            out_byte(&o, '\r');
            out_byte(&o, '\n');
        } else {
            blank++;
        }
        pos = eol ? end + 2 : len;
    }
    /* Trailing blank lines are dropped; an empty body hashes as nothing. */
    out_flush(&o);
    return o.failed ? DKIM_E_CRYPTO : 0;
}
