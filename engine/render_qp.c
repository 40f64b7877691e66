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
 *   is what makes the MIME boundary safe without a search.  render.c
 *   calls in here per piece as its one pass reaches it (see the shape
 *   there).
 *
 * DIAGNOSTICS
 *   -ENOMEM, or RENDER_E_TOOBIG when a buffer would pass its max.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render_int.h"

int render_buf_reserve(struct rbuf *b, size_t more)
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

int render_buf_put(struct rbuf *b, const void *s, size_t n)
{
    if (n == 0)
        return 0;
    int rc = render_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

int render_buf_puts(struct rbuf *b, const char *s)
{
    return render_buf_put(b, s, strlen(s));
}

int render_buf_putu(struct rbuf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return render_buf_put(b, tmp + i, sizeof(tmp) - i);
}

/* The renderer's encoding: NUL dropped, and no line opens with '-' or
 * "From " (dkim_encode.h), so an mbox hop cannot break the signature. */
#define RENDER_QP_FLAGS (DKIM_QP_GUARD | DKIM_QP_DROP_NUL)

int render_qp_put(struct rbuf *b, struct render_qp *q, const char *s,
                  size_t n)
{
    q->e.flags = RENDER_QP_FLAGS;
    while (n) {
        size_t k = n < DKIM_QP_CHUNK ? n : DKIM_QP_CHUNK;
        if (DKIM_QP_ROOM(k) > b->cap - b->len) {
            int rc = render_buf_reserve(b, DKIM_QP_ROOM(k));
            if (rc)
                return rc;
        }
        b->len = dkim_qp_put(&q->e, b->p, b->len, s, k);
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
    if (!q->e.ws)
        return 0;
    int rc = render_buf_reserve(b, DKIM_QP_END_ROOM);
    if (rc)
        return rc;
    b->len = dkim_qp_end(&q->e, b->p, b->len);
    return 0;
}
