/*
 * encode.c - the one quoted-printable encoder and the RFC 2047 encoded
 * word writer (dkim_encode.h), for the preparation before signing and for
 * the campaign renderer.
 *
 * DESCRIPTION
 *   dkim_qp_put() is the renderer's streaming encoder, made the tree's one
 *   encoder: a fast path copies runs of plain octets eight at a time (exact
 *   per-octet tests on one 64-bit word), the slow path handles breaks,
 *   blanks and =XX.  A blank is written as itself and rewritten as =20 or
 *   =09 when a break follows it, so no lookahead is needed.  The line-start
 *   guard (DKIM_QP_GUARD) is checked only where an output line starts.
 *
 * DIAGNOSTICS
 *   None: the caller gives the room the header asks for.
 */
#include <stdint.h>
#include <string.h>

#include "dkim_encode.h"

static const char hexd[] = "0123456789ABCDEF";
static const char b64d[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* How many of the 8 octets at p, from the first, are printable ASCII or
 * SP (0x20..0x7E) but '=': exact per-octet tests (no borrow between
 * octets) on one 64-bit word, then a count of trailing ones. */
static inline unsigned plain_run(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones << 7,
                   low7 = ~highs;
    uint64_t x, y, z;
    memcpy(&x, p, 8);
    y = x ^ (ones * '=');
    z = x ^ (ones * 0x7F);
    uint64_t ge20 = (x & low7) + ones * 0x60;       /* bit 7: low7 >= 0x20 */
    uint64_t neq = ((y & low7) + low7) | y;         /* bit 7: octet != '=' */
    uint64_t ndel = ((z & low7) + low7) | z;        /* bit 7: octet != 0x7F */
    uint64_t ok = ge20 & neq & ndel & ~x & highs;
    uint64_t bad = ~ok & highs;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return bad ? (unsigned)__builtin_ctzll(bad) >> 3 : 8;
#else
    return bad ? (unsigned)__builtin_clzll(bad) >> 3 : 8;
#endif
}

/* Write octet c as =XX at o, soft-breaking first if it would not fit. */
static char *put_enc(char *o, unsigned *col, unsigned char c)
{
    if (*col + 3 > DKIM_QP_LINE) {
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

/* Under the guard, whether octet s[i] may not open an output line: a '-',
 * or the F of "From " (or of what may still become it at the piece's
 * end). */
static int guarded(const char *s, size_t i, size_t k)
{
    if (s[i] == '-')
        return 1;
    if (s[i] != 'F')
        return 0;
    size_t m = k - i < 5 ? k - i : 5;
    return !memcmp(s + i, "From ", m);
}

size_t dkim_qp_put(struct dkim_qp *q, char *buf, size_t len, const char *s,
                   size_t k)
{
    char *o = buf + len;
    unsigned col = q->col;
    unsigned char ws = q->ws, cr = q->cr;
    const int guard = (q->flags & DKIM_QP_GUARD) != 0;
    const int dropnul = (q->flags & DKIM_QP_DROP_NUL) != 0;

    for (size_t i = 0; i < k; i++) {
        /* fast path: runs of plain octets, 8 looked at a time; the
         * common whole-word case advances by a constant so the CPU can
         * run ahead of the bit arithmetic.  A line start under the guard
         * goes the slow way for its first octet. */
        if (i + 8 <= k && !(guard && col == 0)) {
            size_t i0 = i;
            while (i + 8 <= k && col + 8 <= DKIM_QP_LINE &&
                   plain_run(s + i) == 8) {
                memcpy(o, s + i, 8);
                o += 8;
                col += 8;
                i += 8;
            }
            if (i + 8 <= k) {
                unsigned p = plain_run(s + i);
                if (p > DKIM_QP_LINE - col)
                    p = DKIM_QP_LINE - col;
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
        if ((c > 32 && c < 127 && c != '=') || c == ' ' || c == '\t') {
            if (col >= DKIM_QP_LINE) {
                memcpy(o, "=\r\n", 3);
                o += 3;
                col = 0;
            }
            if (guard && col == 0 && guarded(s, i, k)) {
                o = put_enc(o, &col, c);
                ws = 0;
            } else {
                *o++ = (char)c;
                col++;
                ws = c == ' ' || c == '\t' ? c : 0;
            }
            cr = 0;
        } else if (c == '\r') {
            o = put_break(o, &col, &ws);
            cr = 1;
        } else if (c == '\n') {
            if (!cr)
                o = put_break(o, &col, &ws);
            cr = 0;
        } else if (c != 0 || !dropnul) {
            o = put_enc(o, &col, c);
            ws = cr = 0;
        }
    }
    q->col = col;
    q->ws = ws;
    q->cr = cr;
    return (size_t)(o - buf);
}

size_t dkim_qp_end(struct dkim_qp *q, char *buf, size_t len)
{
    if (!q->ws)
        return len;
    char *o = buf + len - 1;
    q->col--;
    o = put_enc(o, &q->col, q->ws);
    q->ws = 0;
    return (size_t)(o - buf);
}

/* ------------------------------------------------------ encoded words */

/* Whether c is written as itself in a Q word (RFC 2047 5 rule 3). */
static int q_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
           c == '-' || c == '/';
}

size_t dkim_ew_qcost(unsigned char c)
{
    return q_plain(c) || c == ' ' ? 1 : 3;
}

size_t dkim_ew_textlen(const unsigned char *s, size_t n, int b)
{
    if (b)
        return (n + 2) / 3 * 4;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += dkim_ew_qcost(s[i]);
    return len;
}

int dkim_ew_use_b(const unsigned char *s, size_t n)
{
    return dkim_ew_textlen(s, n, 0) > dkim_ew_textlen(s, n, 1) * 5 / 4;
}

size_t dkim_ew_put(char *o, const char *charset, int b,
                   const unsigned char *s, size_t n)
{
    char *start = o;
    size_t cl = strlen(charset);
    *o++ = '=';
    *o++ = '?';
    memcpy(o, charset, cl);
    o += cl;
    memcpy(o, b ? "?B?" : "?Q?", 3);
    o += 3;
    if (b) {
        for (size_t i = 0; i < n; i += 3) {
            size_t m = n - i < 3 ? n - i : 3;
            unsigned v = (unsigned)s[i] << 16 |
                         (m > 1 ? (unsigned)s[i + 1] << 8 : 0) |
                         (m > 2 ? s[i + 2] : 0);
            *o++ = b64d[v >> 18 & 63];
            *o++ = b64d[v >> 12 & 63];
            *o++ = m > 1 ? b64d[v >> 6 & 63] : '=';
            *o++ = m > 2 ? b64d[v & 63] : '=';
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (q_plain(s[i])) {
                *o++ = (char)s[i];
            } else if (s[i] == ' ') {
                *o++ = '_';
            } else {
                *o++ = '=';
                *o++ = hexd[s[i] >> 4];
                *o++ = hexd[s[i] & 15];
            }
        }
    }
    *o++ = '?';
    *o++ = '=';
    return (size_t)(o - start);
}
