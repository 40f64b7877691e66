/*
 * prepare.c - make a message safe to DKIM-sign and to send unchanged.
 *
 * DESCRIPTION
 *   dkim_prepare() first checks (prep_clean(): a memchr walk over the
 *   lines, then a word-at-a-time 8-bit scan) whether the message needs
 *   anything; for the usual message it does not, nothing is allocated and
 *   the caller keeps its buffer.  Otherwise the message is copied with CRLF line
 *   ends and then written out entity by entity (prep_do_entity()): header fields
 *   are copied, folded when over 998 octets, or re-encoded (RFC 2047 words,
 *   RFC 2231 parameters) under DKIM_PREP_7BIT; multipart bodies are split
 *   by boundary and each part handled the same way; message/rfc822 bodies
 *   are handled as messages; leaf bodies are copied or re-encoded.
 *   dkim_prepare.h lists the rules; the comments below say how each is done.
 *
 * THREADS AND STACK
 *   No mutable static state.  Recursion is bounded by DKIM_PREP_MAX_DEPTH;
 *   the deepest stack use is about 16 KB (an address list's token table
 *   and a Content-Type value are the big frames).
 *
 * DIAGNOSTICS
 *   -ENOMEM, DKIM_E_TOOBIG when the input or the output passes its cap,
 *   DKIM_E_ARG for NULL pointers.  Malformed MIME never fails: what cannot
 *   be parsed is handled as an opaque leaf.
 */
#include "prepare_int.h"

/* ---- the fast path ---------------------------------------------------- */

/* Whether the line [p, le) opens a header field: a name of printable
 * ASCII then ':' (RFC 5322 3.6.8), short enough that "name:" fits in
 * 998 octets (a longer one could never be made legal). */
int prep_is_field_line(const char *p, const char *le)
{
    const char *q = p;

    while (q < le && *q > 32 && *q < 127 && *q != ':')
        q++;
    return q > p && q < le && *q == ':' && q - p < LINE_MAX_OCT;
}

/* 1 when msg has only CRLF line ends, ends in CRLF (or is empty), has
 * no line over 998 octets, and its header is fields and continuations up
 * to an empty line or the end: one memchr walk over the lines, a second
 * memchr inside each line for a stray CR.  *high tells about 8-bit. */
static int prep_clean(const char *msg, size_t len, int *high)
{
    const char *p = msg, *e = msg + len, *lf;
    int in_header = 1;

    if (len > 0 && msg[len - 1] != '\n')
        return 0;
    while (p < e) {
        lf = memchr(p, '\n', (size_t)(e - p));
        if (lf == p || lf[-1] != '\r' || lf - p > LINE_MAX_OCT + 1 ||
            memchr(p, '\r', (size_t)(lf - 1 - p)))
            return 0;
        if (in_header) {
            if (lf - 1 == p)
                in_header = 0;
            else if (!is_wsp(*p) && !prep_is_field_line(p, lf - 1))
                return 0;
        }
        p = lf + 1;
    }
    *high = any_high(msg, len);
    return 1;
}

/* Copy msg into b with every lone CR or LF made CRLF and a CRLF at the
 * end of a last line that lacks one. */
static void normalize(const char *msg, size_t len, struct buf *b)
{
    size_t i = 0, j;

    if (buf_room(b, len + len / 16 + 2))
        return;
    while (i < len) {
        for (j = i; j < len && msg[j] != '\r' && msg[j] != '\n'; j++)
            ;
        buf_put(b, msg + i, j - i);
        if (j == len)
            break;
        buf_put(b, "\r\n", 2);
        i = j + (msg[j] == '\r' && j + 1 < len && msg[j + 1] == '\n' ? 2 : 1);
    }
    if (len > 0 && msg[len - 1] != '\n' && msg[len - 1] != '\r')
        buf_put(b, "\r\n", 2);
}

/* ---- entry ------------------------------------------------------------ */

/* The zero-copy check, else the rewrite; see dkim_prepare.h. */
int dkim_prepare(const char *msg, size_t len, unsigned flags, char **out,
                 size_t *outlen, unsigned *info)
{
    struct prep pp;
    struct buf norm = {0};
    int high = 0, err;

    if (!out || !outlen || (!msg && len > 0))
        return DKIM_E_ARG;
    *out = NULL;
    *outlen = 0;
    if (info)
        *info = 0;
    if (len > DKIM_PREP_MAX_INPUT)
        return DKIM_E_TOOBIG;
    if (prep_clean(msg, len, &high) &&
        (!high || !(flags & DKIM_PREP_7BIT))) {
        *outlen = len;
        if (info)
            *info = high ? DKIM_PREP_8BIT : 0;
        return 0;
    }

    memset(&pp, 0, sizeof(pp));
    pp.flags = flags;
    normalize(msg, len, &norm);
    if (!norm.err && !buf_room(&pp.out, norm.len + norm.len / 8 + 1024))
        prep_do_entity(&pp, norm.p, norm.p + norm.len, 0, 1, 0);
    err = norm.err ? norm.err : pp.out.err ? pp.out.err
        : pp.tmp.err ? pp.tmp.err : pp.val.err ? pp.val.err : pp.txt.err;
    free(norm.p);
    free(pp.tmp.p);
    free(pp.val.p);
    free(pp.txt.p);
    if (err) {
        free(pp.out.p);
        return err;
    }
    if (any_high(pp.out.p, pp.out.len))
        pp.info |= DKIM_PREP_8BIT;
    if (pp.out.len == len && memcmp(pp.out.p, msg, len) == 0) {
        free(pp.out.p);
        *outlen = len;
        if (info)
            *info = pp.info & DKIM_PREP_8BIT;
        return 0;
    }
    pp.out.p[pp.out.len] = '\0';
    *out = pp.out.p;
    *outlen = pp.out.len;
    if (info)
        *info = pp.info | DKIM_PREP_CHANGED;
    return 0;
}
