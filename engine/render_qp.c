/*
 * render_qp.c - the renderer's output buffer and its quoted-printable
 * body encoder.
 *
 * DESCRIPTION
 *   struct rbuf grows by doubling up to its max.  render_qp_put() encodes body
 *   text straight into it (RFC 2045 6.7): printable ASCII but '=' is kept,
 *   everything else is =XX, a blank before a line break or at the end is
 *   encoded, CR, LF and CRLF become one CRLF line break, NUL is dropped,
 *   and a soft break "=" CRLF keeps every line at 76 characters or less.
 *   Since '=' itself is always encoded, an '=' in the output is followed
 *   by two hex digits or a line end: the sequence "=_" never occurs, which
 *   is what makes the MIME boundary safe without a search.
 *
 * DIAGNOSTICS
 *   -ENOMEM, or RENDER_E_TOOBIG when a buffer would pass its max.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

#define QP_LINE 75          /* characters before the soft break's '=' */
#define QP_CHUNK 4096       /* input bytes encoded per reservation */

int rbuf_reserve(struct rbuf *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    if (more > b->max - b->len)
        return RENDER_E_TOOBIG;
    size_t want = b->len + more;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap < want)
        cap = want;
    char *p = realloc(b->p, cap + 1);   /* +1: room for a final NUL */
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int rbuf_put(struct rbuf *b, const void *s, size_t n)
{
    if (n == 0)
        return 0;
    int rc = rbuf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

int rbuf_puts(struct rbuf *b, const char *s)
{
    return rbuf_put(b, s, strlen(s));
}

int rbuf_putu(struct rbuf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return rbuf_put(b, tmp + i, sizeof(tmp) - i);
}

static const char hexd[] = "0123456789ABCDEF";

/* How many of the 8 bytes at p, from the first, are printable ASCII or
 * SP (0x20..0x7E) but '=': exact per-byte tests (no borrow between bytes)
 * on one 64-bit word, then a count of trailing ones (little-endian). */
static inline unsigned plain_run(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones << 7,
                   low7 = ~highs;
    uint64_t x, y, z;
    memcpy(&x, p, 8);
    y = x ^ (ones * '=');
    z = x ^ (ones * 0x7F);
    uint64_t ge20 = (x & low7) + ones * 0x60;       /* bit 7: low7 >= 0x20 */
    uint64_t neq = ((y & low7) + low7) | y;         /* bit 7: byte != '=' */
    uint64_t ndel = ((z & low7) + low7) | z;        /* bit 7: byte != 0x7F */
    uint64_t ok = ge20 & neq & ndel & ~x & highs;
    uint64_t bad = ~ok & highs;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return bad ? (unsigned)__builtin_ctzll(bad) >> 3 : 8;
#else
    return bad ? (unsigned)__builtin_clzll(bad) >> 3 : 8;
#endif
}

/* Write byte c as =XX at o, soft-breaking first if it would not fit. */
static char *put_enc(char *o, unsigned *col, unsigned char c)
{
    if (*col + 3 > QP_LINE) {
        memcpy(o, "=\r\n", 3);
        o += 3;
        *col = 0;
    }
    o[0] = '=';
    o[1] = hexd[c >> 4];
    o[2] = hexd[c & 15];
    *col += 3;
    return o + 3;
}

/* A line ends: re-encode a literal blank just before it, then CRLF. */
static char *put_break(char *o, unsigned *col, unsigned char *ws)
{
    if (*ws) {
        o--;
        (*col)--;
        o = put_enc(o, col, *ws);
        *ws = 0;
    }
    memcpy(o, "\r\n", 2);
    *col = 0;
    return o + 2;
}

int render_qp_put(struct rbuf *b, struct render_qp *q, const char *s, size_t n)
{
    while (n) {
        size_t k = n < QP_CHUNK ? n : QP_CHUNK;
        /* worst case: every byte =XX and a soft break per 25 of them
         * (3.36 per byte), plus the 8-byte over-copy of the fast path */
        if (k * 4 + 16 > b->cap - b->len) {
            int rc = rbuf_reserve(b, k * 4 + 16);
            if (rc)
                return rc;
        }
        char *o = b->p + b->len;
        unsigned col = q->col;
        unsigned char ws = q->ws, cr = q->cr;
        for (size_t i = 0; i < k; i++) {
            /* fast path: runs of plain bytes, 8 looked at a time; the
             * common whole-word case advances by a constant so the CPU
             * can run ahead of the bit arithmetic */
            if (i + 8 <= k) {
                size_t i0 = i;
                while (i + 8 <= k && col + 8 <= QP_LINE &&
                       plain_run(s + i) == 8) {
                    memcpy(o, s + i, 8);
                    o += 8;
                    col += 8;
                    i += 8;
                }
                if (i + 8 <= k) {
                    unsigned p = plain_run(s + i);
                    if (p > QP_LINE - col)
                        p = QP_LINE - col;
                    memcpy(o, s + i, 8);    /* reserved room covers 8 */
                    o += p;
                    col += p;
                    i += p;
                }
                if (i > i0) {
                    ws = s[i - 1] == ' ' ? ' ' : 0;
                    cr = 0;
                }
            }
            if (i == k)
                break;
            unsigned char c = (unsigned char)s[i];
            if (c > 32 && c < 127 && c != '=') {
                if (col >= QP_LINE) {
                    memcpy(o, "=\r\n", 3);
                    o += 3;
                    col = 0;
                }
                *o++ = (char)c;
                col++;
                ws = cr = 0;
            } else if (c == ' ' || c == '\t') {
                if (col >= QP_LINE) {
                    memcpy(o, "=\r\n", 3);
                    o += 3;
                    col = 0;
                }
                *o++ = (char)c;
                col++;
                ws = c;
                cr = 0;
            } else if (c == '\r') {
                o = put_break(o, &col, &ws);
                cr = 1;
            } else if (c == '\n') {
                if (!cr)
                    o = put_break(o, &col, &ws);
                cr = 0;
            } else if (c != 0) {
                o = put_enc(o, &col, c);
                ws = cr = 0;
            }
        }
        b->len = (size_t)(o - b->p);
        q->col = col;
        q->ws = ws;
        q->cr = cr;
        s += k;
        n -= k;
    }
    return 0;
}

int render_qp_put_html(struct rbuf *b, struct render_qp *q, const char *s,
                       size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ent;
        switch (s[i]) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&#39;"; break;
        default: continue;
        }
        int rc = render_qp_put(b, q, s + run, i - run);
        if (rc == 0)
            rc = render_qp_put(b, q, ent, strlen(ent));
        if (rc)
            return rc;
        run = i + 1;
    }
    return render_qp_put(b, q, s + run, n - run);
}

int render_qp_end(struct rbuf *b, struct render_qp *q)
{
    if (!q->ws)
        return 0;
    int rc = rbuf_reserve(b, 8);
    if (rc)
        return rc;
    char *o = b->p + b->len - 1;
    q->col--;
    o = put_enc(o, &q->col, q->ws);
    q->ws = 0;
    b->len = (size_t)(o - b->p);
    return 0;
}
