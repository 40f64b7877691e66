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

    for (const char *nl = msg; (nl = memchr(nl, '\n', len - (size_t)(nl - msg)));
         nl++)
        if (nl == msg || nl[-1] != '\r')
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

/* Input bytes that hash as they are: a run of the body handed to the
 * digest without copying, kept in order with the copied bytes of struct
 * out (each flushes the other before it grows). */
struct run {
    const char *p;
    size_t len;
};

static void run_flush(struct out *o, struct run *r)
{
    if (r->len && !o->failed && EVP_DigestUpdate(o->md, r->p, r->len) != 1)
        o->failed = 1;
    r->len = 0;
}

/* Hash p[0..n) as is, after everything emitted before. */
static void emit_direct(struct out *o, struct run *r, const char *p, size_t n)
{
    if (r->len && r->p + r->len == p) {
        r->len += n;
        return;
    }
    run_flush(o, r);
    out_flush(o);
    r->p = p;
    r->len = n;
}

/* True when a line is already in relaxed form: no tab, no two spaces in
 * a row, no space at its end. */
static int line_is_relaxed(const char *p, size_t n)
{
    if (n && p[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\t' || (p[i] == ' ' && i + 1 < n && p[i + 1] == ' '))
            return 0;
    return 1;
}

int canon_body_relaxed(EVP_MD_CTX *md, const char *body, size_t len)
{
    struct out o = { .md = md };
    struct run r = { 0 };
    size_t pos = 0, blank = 0, blank_at = 0;
    int blank_direct = 1;   /* the blank lines so far are bare CRLFs */

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
        if (line_is_relaxed(body + pos, end - pos)) {
            if (end == pos) {           /* an empty line: maybe trailing */
                if (!blank)
                    blank_at = pos, blank_direct = 1;
                blank++;
            } else {
                if (blank && blank_direct)
                    emit_direct(&o, &r, body + blank_at, 2 * blank);
                else
                    for (; blank > 0; blank--) {
                        run_flush(&o, &r);
                        out_byte(&o, '\r');
                        out_byte(&o, '\n');
                    }
                blank = 0;
                if (eol) {
                    emit_direct(&o, &r, body + pos, end - pos + 2);
                } else {
                    emit_direct(&o, &r, body + pos, end - pos);
                    run_flush(&o, &r);
                    out_byte(&o, '\r');
                    out_byte(&o, '\n');
                }
            }
            pos = eol ? end + 2 : len;
            continue;
        }
        run_flush(&o, &r);
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
            if (!blank)
                blank_at = pos;
            blank++;
            blank_direct = 0;
        }
        pos = eol ? end + 2 : len;
    }
    /* Trailing blank lines are dropped; an empty body hashes as nothing. */
    run_flush(&o, &r);
    out_flush(&o);
    return o.failed ? DKIM_E_CRYPTO : 0;
}
