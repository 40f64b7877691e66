/*
 * prepare.c - make a message safe to DKIM-sign and to send unchanged.
 *
 * DESCRIPTION
 *   dkim_prepare() first checks (prep_clean(): a memchr walk over the
 *   lines, then a word-at-a-time 8-bit scan) whether the message needs
 *   anything; for the usual message it does not, nothing is allocated and
 *   the caller keeps its buffer.  Otherwise the message is copied with CRLF line
 *   ends and then written out entity by entity (do_entity()): header fields
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
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_encode.h"
#include "dkim_prepare.h"
#include "dkim_sign.h"

#define LINE_MAX_OCT  998      /* RFC 5322 2.1.1, CRLF not counted */
#define QP_LINE       76       /* RFC 2045 6.7 rule 5 */
#define B64_LINE      76       /* RFC 2045 6.8 */
#define EW_MAX        75       /* RFC 2047 2: one encoded word */
#define HDR_FOLD      76       /* lines of re-encoded fields (RFC 2047 2) */
#define PARAM_MAX     70       /* one RFC 2231 parameter section */
#define BOUNDARY_MAX  200      /* RFC 2046 allows 70; be lenient */
#define CT_VALUE_MAX  4096     /* unfolded Content-Type octets parsed */
#define ADDR_TOK_MAX  256      /* tokens in one address of a list */
#define OUT_MAX       ((size_t)DKIM_PREP_MAX_INPUT * 2)

/* A growing buffer with a cap; the first failure sticks in err. */
struct buf {
    char *p;
    size_t len, cap;
    int err;
};

/* One call's state. */
struct prep {
    struct buf out;
    struct buf tmp;       /* a header field being re-encoded */
    struct buf val;       /* its unfolded value */
    struct buf txt;       /* a display name being collected */
    unsigned flags;
    unsigned info;
    unsigned cte_added;   /* Content-Transfer-Encoding fields written */
};

/* What a leaf body gets. */
enum act { ACT_COPY, ACT_QP, ACT_QP_WRAP, ACT_B64_WRAP, ACT_HARD_WRAP };

enum cte { CTE_IDENT, CTE_QP, CTE_B64, CTE_OTHER };

/* One MIME entity (a message or a body part) as read from its headers. */
struct ent {
    const char *hs, *he;  /* header fields, each line with its CRLF */
    const char *bs, *e;   /* body */
    int has_sep;          /* an empty line separates the two */
    int has_ct, has_cte, has_mimever;
    int multipart, digest, rfc822;
    enum cte cte;
    size_t blen;
    char boundary[BOUNDARY_MAX + 1];
};

static const char hexd[] = "0123456789ABCDEF";

/* ---- buffers ---------------------------------------------------------- */

/* Make room for more bytes and a NUL; 0, or -1 with b->err set. */
static int buf_room(struct buf *b, size_t more)
{
    size_t need, cap;
    char *p;

    if (b->err)
        return -1;
    if (more > OUT_MAX - b->len) {
        b->err = DKIM_E_TOOBIG;
        return -1;
    }
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > OUT_MAX / 2 ? OUT_MAX + 1 : cap * 2;
    if (!(p = realloc(b->p, cap))) {
        b->err = -ENOMEM;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Append n bytes. */
static void buf_put(struct buf *b, const void *s, size_t n)
{
    if (n == 0 || buf_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Insert n bytes at offset off. */
static void buf_insert(struct buf *b, size_t off, const char *s, size_t n)
{
    if (buf_room(b, n))
        return;
    memmove(b->p + off + n, b->p + off, b->len - off);
    memcpy(b->p + off, s, n);
    b->len += n;
}

/* ---- small helpers ---------------------------------------------------- */

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static int is_high(char c)
{
    return (unsigned char)c >= 0x80;
}

/* Whether n bytes at s equal the lower-case literal lit, ignoring case. */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    if (strlen(lit) != n)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

/* Whether any of n bytes has its top bit set; eight bytes at a time. */
static int any_high(const char *s, size_t n)
{
    uint64_t acc = 0, w[4];
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        memcpy(w, s + i, 32);
        acc |= w[0] | w[1] | w[2] | w[3];
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(w, s + i, 8);
        acc |= w[0];
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) != 0;
}

/* Octets in the UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t k, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4;
    else
        return 0;
    if (k > n)
        return 0;
    for (i = 1; i < k; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            return 0;
    return k;
}

/* Whether s[0..n) is well-formed UTF-8 (lead and continuation shape). */
static int utf8_valid(const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        if (!(k = utf8_seq(s + i, n - i)))
            return 0;
        i += k;
    }
    return 1;
}

/* End of the line at p in a CRLF text (its CR, or e for a last line
 * without CRLF); *next gets the start of the following line. */
static const char *line_end(const char *p, const char *e, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(e - p));

    if (!lf) {
        *next = e;
        return e;
    }
    *next = lf + 1;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

/* Whether [p, e) holds a line over 998 octets. */
static int has_long_line(const char *p, const char *e)
{
    const char *next, *le;

    while (p < e) {
        le = line_end(p, e, &next);
        if (le - p > LINE_MAX_OCT)
            return 1;
        p = next;
    }
    return 0;
}

/* ---- the fast path ---------------------------------------------------- */

/* Whether the line [p, le) opens a header field: a name of printable
 * ASCII then ':' (RFC 5322 3.6.8), short enough that "name:" fits in
 * 998 octets (a longer one could never be made legal). */
static int is_field_line(const char *p, const char *le)
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
            else if (!is_wsp(*p) && !is_field_line(p, lf - 1))
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

/* ---- folding and writing header fields -------------------------------- */

/* Where a line [ls, le) that is too long may be cut so that the part
 * before holds at most lim octets, never before min (past the colon).  Prefers the last white space that
 * starts a run followed by text (the fold of RFC 5322 3.2.2, *ins = 0);
 * else the last point outside quotes after ',' or ';' or between '>' and
 * '<', or a hard cut at lim that does not split a UTF-8 sequence (*ins =
 * 1: the caller inserts CRLF SP there, which adds one space to the
 * unfolded value). */
static const char *fold_point(const char *ls, const char *le, size_t lim,
                              const char *min, int *ins)
{
    const char *c, *best = NULL, *text = NULL;
    int inq = 0;

    for (c = ls; c < ls + lim; c++) {
        if (!is_wsp(*c) && !text)
            text = c;
        if (c > ls && c >= min && text && text < c && is_wsp(*c) &&
            c + 1 < le && !is_wsp(c[1]))
            best = c;
    }
    if (best) {
        *ins = 0;
        return best;
    }
    *ins = 1;
    for (c = ls; c < ls + lim; c++) {
        if (*c == '"')
            inq = !inq;
        else if (*c == '\\' && inq)
            c++;
        else if (!inq && c + 1 < ls + lim && c >= min &&
                 (*c == ',' || *c == ';' || (*c == '>' && c[1] == '<')))
            best = c + 1;
    }
    if (best)
        return best;
    c = ls + lim;
    while (c > ls + lim - 3 && ((unsigned char)*c & 0xc0) == 0x80)
        c--;
    return c;
}

/* Write the field [f, fe) to b, folding each line over 998 octets. */
static void put_folded(struct buf *b, const char *f, const char *fe)
{
    const char *p = f, *next, *le, *cut, *min;
    size_t extra;
    int ins;

    min = is_wsp(*f) ? f : memchr(f, ':', (size_t)(fe - f));
    while (p < fe) {
        le = line_end(p, fe, &next);
        extra = 0;
        while ((size_t)(le - p) + extra > LINE_MAX_OCT) {
            cut = fold_point(p, le, LINE_MAX_OCT - extra, min ? min + 1 : p,
                             &ins);
            buf_put(b, p, (size_t)(cut - p));
            buf_put(b, ins ? "\r\n " : "\r\n", ins ? 3 : 2);
            extra = (size_t)ins;
            p = cut;
        }
        buf_put(b, p, (size_t)(next - p));
        p = next;
    }
}

/* Copy the field [f, fe) into b with every run of white space over 64
 * octets made one space: such a run cannot be folded (a fold line may not
 * be white space only), and relaxed canonicalization (RFC 6376 3.4.2)
 * reads it as one space anyway. */
static void squeeze(struct buf *b, const char *f, const char *fe)
{
    const char *p = f, *q;

    b->len = 0;
    while (p < fe) {
        for (q = p; q < fe && !is_wsp(*q); q++)
            ;
        buf_put(b, p, (size_t)(q - p));
        for (p = q; p < fe && is_wsp(*p); p++)
            ;
        if (p - q > 64)
            buf_put(b, " ", 1);
        else
            buf_put(b, q, (size_t)(p - q));
    }
}

/* Write the field [f, fe) to out: folded where a line is over 998 octets,
 * after squeeze() if needed (into scratch). */
static void put_field_raw(struct buf *out, struct buf *scratch, const char *f,
                          const char *fe)
{
    if (!has_long_line(f, fe)) {
        buf_put(out, f, (size_t)(fe - f));
        return;
    }
    squeeze(scratch, f, fe);
    if (!scratch->err)
        put_folded(out, scratch->p, scratch->p + scratch->len);
}

/* A writer of one re-encoded field: col is the length of its last line. */
struct hw {
    struct buf *b;
    size_t col;
};

/* Write white space ws then token tok, folding before the white space
 * when the line would pass HDR_FOLD.  Without white space, no fold. */
static void hw_tok(struct hw *w, const char *ws, size_t wsn, const char *tok,
                   size_t tn)
{
    if (wsn > 0 && w->col + wsn + tn > HDR_FOLD) {
        buf_put(w->b, "\r\n", 2);
        w->col = 0;
    }
    buf_put(w->b, ws, wsn);
    buf_put(w->b, tok, tn);
    w->col += wsn + tn;
}

/* Write text t[0..n) as RFC 2047 encoded words after white space ws (one
 * space when none): UTF-8 (or unknown-8bit when the octets are not UTF-8),
 * Q or B whichever is shorter, each word at most 75 characters and never
 * splitting a UTF-8 sequence, the first sized to fit the current line.
 * pre and post go around the run (for a comment). */
static void hw_encoded(struct hw *w, const char *ws, size_t wsn, const char *t,
                       size_t n, const char *pre, const char *post)
{
    const unsigned char *u8 = (const unsigned char *)t;
    const char *cs = utf8_valid(t, n) ? "UTF-8" : "unknown-8bit";
    size_t over = 7 + strlen(cs), i, k, u, room, max, wl, cost;
    size_t extra;
    char word[EW_MAX + 8];
    int q = !dkim_ew_use_b(u8, n), first = 1;

    if (wsn == 0) {
        ws = " ";
        wsn = 1;
    }
    i = 0;
    while (i < n) {
        room = HDR_FOLD > w->col + wsn ? HDR_FOLD - w->col - wsn : 0;
        max = room >= over + 12 && room < EW_MAX ? room : EW_MAX;
        extra = (first ? strlen(pre) : 0) + strlen(post);
        over = 7 + strlen(cs) + extra;    /* pre and post share the budget */
        wl = 0;
        if (first) {
            memcpy(word, pre, strlen(pre));
            wl = strlen(pre);
        }
        k = i;    /* octets [i, k) go in this word */
        cost = 0;
        while (k < n) {
            if (!(u = utf8_seq(t + k, n - k)))
                u = 1;
            if (q) {
                size_t c2 = dkim_ew_textlen(u8 + k, u, 0);
                if (over + cost + c2 > max && k > i)
                    break;
                cost += c2;
            } else {
                if (over + (k + u - i + 2) / 3 * 4 > max && k > i)
                    break;
            }
            k += u;
        }
        wl += dkim_ew_put(word + wl, cs, !q, u8 + i, k - i);
        i = k;
        if (i >= n) {
            memcpy(word + wl, post, strlen(post));
            wl += strlen(post);
        }
        hw_tok(w, first ? ws : " ", first ? wsn : 1, word, wl);
        first = 0;
    }
}

/* Whether word s[0..n) has the shape of an encoded word ("=?...?="). */
static int word_is_ew(const char *s, size_t n)
{
    return n >= 8 && s[0] == '=' && s[1] == '?' && s[n - 2] == '?' &&
           s[n - 1] == '=';
}

/* Unstructured text (Subject and the like): each run of words holding
 * 8-bit octets, with the white space inside the run, becomes encoded
 * words; other words stay as they are, and so does the white space around
 * a run (RFC 2047 6.2 drops only white space between encoded words).  An
 * encoded word already there stays one; the white space between it and a
 * run goes inside the run so that it is not dropped.  1 if anything was
 * encoded. */
static int enc_text(struct hw *w, const char *v, size_t n)
{
    size_t i = 0, a, b, r0, r1, j, k;
    int prev_ew = 0, space = 0;

    if (!any_high(v, n))
        return 0;
    while (i < n) {
        for (a = i; i < n && is_wsp(v[i]); i++)
            ;
        for (b = i; i < n && !is_wsp(v[i]); i++)
            ;
        if (i == b) {             /* trailing white space */
            buf_put(w->b, v + a, b - a);
            break;
        }
        if (!any_high(v + b, i - b)) {
            hw_tok(w, space ? " " : v + a, space ? 1 : b - a, v + b, i - b);
            prev_ew = word_is_ew(v + b, i - b);
            space = 0;
            continue;
        }
        r0 = prev_ew ? a : b;
        r1 = i;
        for (;;) {                /* extend the run over 8-bit words */
            for (j = r1; j < n && is_wsp(v[j]); j++)
                ;
            for (k = j; k < n && !is_wsp(v[k]); k++)
                ;
            if (k == j || !any_high(v + j, k - j))
                break;
            r1 = k;
        }
        if (k > j && word_is_ew(v + j, k - j)) {
            r1 = j;               /* keep the white space before it */
            space = 1;
        }
        hw_encoded(w, prev_ew ? " " : v + a, prev_ew ? 1 : b - a, v + r0,
                   r1 - r0, "", "");
        i = r1;
        prev_ew = 0;
    }
    return 1;
}

enum { T_WS, T_ATOM, T_QUOTED, T_COMMENT, T_ANGLE, T_SPECIAL };

/* One lexical token of an address list. */
struct tok {
    int t;
    size_t off, len;
};

/* The token at v[i] (i < n) of an address list; returns its end. */
static size_t addr_token(const char *v, size_t n, size_t i, int *t)
{
    size_t j = i + 1;
    int depth = 1;
    char c = v[i];

    if (is_wsp(c)) {
        while (j < n && is_wsp(v[j]))
            j++;
        *t = T_WS;
    } else if (c == '"') {
        while (j < n && v[j] != '"')
            j += v[j] == '\\' && j + 1 < n ? 2 : 1;
        j += j < n;
        *t = T_QUOTED;
    } else if (c == '(') {
        for (; j < n && depth > 0; j++) {
            if (v[j] == '\\' && j + 1 < n)
                j++;
            else
                depth += v[j] == '(' ? 1 : v[j] == ')' ? -1 : 0;
        }
        *t = T_COMMENT;
    } else if (c == '<') {
        while (j < n && v[j] != '>')
            j++;
        j += j < n;
        *t = T_ANGLE;
    } else if (c && strchr(",:;@>)", c)) {
        *t = T_SPECIAL;
    } else {
        while (j < n && !is_wsp(v[j]) && !memchr("\",:;@<>()", v[j], 9))
            j++;
        *t = T_ATOM;
    }
    return j;
}

/* A comment token: its text 2047-encoded when it holds 8-bit octets and
 * no nesting or quoting (else copied).  1 if encoded. */
static int hw_comment(struct hw *w, const char *ws, size_t wsn, const char *c,
                      size_t n)
{
    if (n >= 2 && c[n - 1] == ')' && any_high(c, n) &&
        !memchr(c + 1, '(', n - 2) && !memchr(c + 1, ')', n - 2) &&
        !memchr(c + 1, '\\', n - 2)) {
        hw_encoded(w, ws, wsn, c + 1, n - 2, "(", ")");
        return 1;
    }
    hw_tok(w, ws, wsn, c, n);
    return 0;
}

/* One address of a list (tk[0..nt), ending with its ',' ';' or ':'): a
 * display-name phrase (words before '<', or a group name before ':')
 * holding 8-bit octets becomes encoded words of its text (quotes and
 * escapes removed, white space one space); comments holding 8-bit octets
 * are encoded; the addr-spec is never touched.  1 if anything encoded. */
static int addr_one(struct prep *pp, struct hw *w, const char *v,
                    const struct tok *tk, size_t nt)
{
    size_t k, pend = SIZE_MAX, end = 0, p0 = SIZE_MAX, p1 = 0, m;
    int high = 0, did = 0, space = 0;
    const struct tok *t;

    for (k = 0; k < nt && tk[k].t != T_ANGLE; k++)
        ;
    if (k < nt)
        end = k;
    else if (nt > 0 && tk[nt - 1].t == T_SPECIAL && v[tk[nt - 1].off] == ':')
        end = nt - 1;
    for (k = 0; k < end; k++) {
        if (tk[k].t == T_ATOM || tk[k].t == T_QUOTED) {
            p0 = p0 == SIZE_MAX ? k : p0;
            p1 = k;
            high |= any_high(v + tk[k].off, tk[k].len);
        } else if (tk[k].t == T_SPECIAL) {
            high = 0;
            break;
        }
    }
    for (k = 0; k < nt; k++) {
        t = &tk[k];
        if (t->t == T_WS) {
            pend = k;
            continue;
        }
        if (high && k == p0) {
            pp->txt.len = 0;
            for (m = p0; m <= p1; m++) {
                const char *s = v + tk[m].off;
                size_t i, sn = tk[m].len;
                if (tk[m].t == T_WS && pp->txt.len > 0)
                    buf_put(&pp->txt, " ", 1);
                if (tk[m].t == T_ATOM)
                    buf_put(&pp->txt, s, sn);
                if (tk[m].t != T_QUOTED)
                    continue;
                for (i = 1; i < sn && !(s[i] == '"' && i == sn - 1); i++) {
                    i += s[i] == '\\' && i + 1 < sn;
                    buf_put(&pp->txt, s + i, 1);
                }
            }
            hw_encoded(w, pend == SIZE_MAX ? "" : v + tk[pend].off,
                       pend == SIZE_MAX ? 0 : tk[pend].len, pp->txt.p,
                       pp->txt.len, "", "");
            for (m = p0; m <= p1; m++)
                if (tk[m].t == T_COMMENT)
                    hw_comment(w, " ", 1, v + tk[m].off, tk[m].len);
            pend = SIZE_MAX;
            k = p1;
            did = space = 1;
            continue;
        }
        if (t->t == T_COMMENT) {
            did |= hw_comment(w, pend == SIZE_MAX ? "" : v + tk[pend].off,
                              pend == SIZE_MAX ? 0 : tk[pend].len,
                              v + t->off, t->len);
        } else if (pend != SIZE_MAX) {
            hw_tok(w, v + tk[pend].off, tk[pend].len, v + t->off, t->len);
        } else {
            hw_tok(w, " ", space && t->t == T_ANGLE, v + t->off, t->len);
        }
        pend = SIZE_MAX;
        space = 0;
    }
    if (pend != SIZE_MAX)
        buf_put(w->b, v + tk[pend].off, tk[pend].len);
    return did;
}

/* An address list (From, To, ...): each address through addr_one().
 * 1 if anything was encoded, -1 when an address has too many tokens. */
static int enc_address(struct prep *pp, struct hw *w, const char *v, size_t n)
{
    struct tok tk[ADDR_TOK_MAX];
    size_t i = 0, nt, j;
    int did = 0, t;

    while (i < n) {
        nt = 0;
        while (i < n) {
            if (nt == ADDR_TOK_MAX)
                return -1;
            j = addr_token(v, n, i, &t);
            tk[nt].t = t;
            tk[nt].off = i;
            tk[nt++].len = j - i;
            i = j;
            if (t == T_SPECIAL && strchr(",;:", v[j - 1]))
                break;
        }
        did |= addr_one(pp, w, v, tk, nt);
    }
    return did;
}

/* Whether c may stand unencoded in an RFC 2231 value (attribute-char). */
static int attr_char(char c)
{
    return c > 32 && c < 127 && !strchr("*'%()<>@,;:\\\"/[]?=", c);
}

/* An 8-bit parameter value as RFC 2231 sections: attr*=utf-8''%XX..., or
 * attr*0*=, attr*1*=, ... when one section would pass PARAM_MAX. */
static void put_2231(struct hw *w, const char *ws, size_t wsn,
                     const char *attr, size_t an, const char *val, size_t vn,
                     int semi)
{
    const char *cs = utf8_valid(val, vn) ? "utf-8''" : "unknown-8bit''";
    char sec[PARAM_MAX + 64];
    size_t i = 0, total = 0, sl, nsec = 0;
    int split;

    for (i = 0; i < vn; i++)
        total += attr_char(val[i]) ? 1 : 3;
    split = an + 2 + strlen(cs) + total > PARAM_MAX;
    i = 0;
    do {
        sl = 0;
        memcpy(sec, attr, an);
        sl = an;
        if (split)
            sl += (size_t)snprintf(sec + sl, sizeof(sec) - sl, "*%zu", nsec);
        memcpy(sec + sl, "*=", 2);
        sl += 2;
        if (nsec == 0) {
            memcpy(sec + sl, cs, strlen(cs));
            sl += strlen(cs);
        }
        while (i < vn && sl + 3 + (size_t)semi <= PARAM_MAX + 16 &&
               (sl < PARAM_MAX || !split)) {
            if (attr_char(val[i])) {
                sec[sl++] = val[i];
            } else {
                sec[sl++] = '%';
                sec[sl++] = hexd[(unsigned char)val[i] >> 4];
                sec[sl++] = hexd[(unsigned char)val[i] & 15];
            }
            i++;
        }
        if (semi || i < vn)
            sec[sl++] = ';';
        hw_tok(w, nsec == 0 ? ws : " ", nsec == 0 ? wsn : 1, sec, sl);
        nsec++;
    } while (i < vn);
}

/* RFC 2045 token character. */
static int is_token_char(char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* Whether s[0..n) is a non-empty RFC 2045 token. */
static int is_token(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!is_token_char(s[i]))
            return 0;
    return n > 0;
}

/* Whether v[0..n) is one whole quoted string, or one run without white
 * space or quotes: a value that can be re-encoded without loss. */
static int whole_value(const char *v, size_t n)
{
    size_t i;

    if (n >= 2 && v[0] == '"') {
        for (i = 1; i < n - 1; i++) {
            if (v[i] == '"')
                return 0;
            i += v[i] == '\\';
        }
        return i == n - 1 && v[i] == '"';
    }
    for (i = 0; i < n; i++)
        if (is_wsp(v[i]) || v[i] == '"' || v[i] == '(')
            return 0;
    return n > 0;
}

/* Content-Type and Content-Disposition: a parameter whose value holds
 * 8-bit octets becomes RFC 2231 form (never boundary, which is structure,
 * nor a value with stray octets around it); the rest is copied, one token
 * per parameter.  1 if anything was encoded. */
static int enc_params(struct prep *pp, struct hw *w, const char *v, size_t n)
{
    size_t i = 0, s0, a, z, eq, depth;
    int did = 0, semi, first = 1;

    while (i < n) {
        for (s0 = i; i < n && is_wsp(v[i]); i++)
            ;
        a = i;
        while (i < n && v[i] != ';') {
            if (v[i] == '"') {
                for (i++; i < n && v[i] != '"'; i++)
                    i += v[i] == '\\' && i + 1 < n;
                i += i < n;
            } else if (v[i] == '(') {
                for (depth = 1, i++; i < n && depth > 0; i++)
                    depth += v[i] == '(' ? 1 : v[i] == ')' ? -1 : 0;
            } else {
                i++;
            }
        }
        for (z = i; z > a && is_wsp(v[z - 1]); z--)
            ;
        semi = i < n;
        i += (size_t)semi;
        for (eq = a; eq < z && v[eq] != '='; eq++)
            ;
        if (!first && eq < z && any_high(v + eq, z - eq)) {
            size_t an = eq, vs = eq + 1, ve = z;
            while (an > a && is_wsp(v[an - 1]))
                an--;
            while (vs < ve && is_wsp(v[vs]))
                vs++;
            if (is_token(v + a, an - a) && an - a <= 40 &&
                !memchr(v + a, '*', an - a) && !ieq(v + a, an - a, "boundary") &&
                whole_value(v + vs, ve - vs)) {
                pp->txt.len = 0;
                if (vs < ve && v[vs] == '"') {
                    for (vs++; vs < ve && v[vs] != '"'; vs++) {
                        vs += v[vs] == '\\' && vs + 1 < ve;
                        buf_put(&pp->txt, v + vs, 1);
                    }
                } else {
                    buf_put(&pp->txt, v + vs, ve - vs);
                }
                put_2231(w, s0 == a ? " " : v + s0, s0 == a ? 1 : a - s0,
                         v + a, an - a, pp->txt.p, pp->txt.len, semi);
                did = 1;
                continue;
            }
        }
        first = 0;
        if (z > a || semi) {
            hw_tok(w, s0 == a ? " " : v + s0, s0 == a ? 1 : a - s0, v + a,
                   z - a);
            if (semi)
                hw_tok(w, "", 0, ";", 1);
        }
    }
    return did;
}

/* How a field's value is re-encoded under DKIM_PREP_7BIT. */
enum { HK_RAW, HK_TEXT, HK_ADDR, HK_PARAM };

/* The kind of field named name[0..n). */
static int header_kind(const char *name, size_t n)
{
    static const char *const addr[] = {
        "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from",
        "resent-sender", "resent-reply-to", "resent-to", "resent-cc",
        "resent-bcc", "disposition-notification-to", "return-receipt-to",
        "mail-followup-to", "mail-reply-to", NULL};
    static const char *const raw[] = {
        "date", "message-id", "in-reply-to", "references", "received",
        "return-path", "content-transfer-encoding", "content-id",
        "content-location", "content-md5", "mime-version", "dkim-signature",
        "domainkey-signature", "authentication-results", "received-spf",
        "resent-date", "resent-message-id", "content-language", NULL};
    size_t i;

    for (i = 0; addr[i]; i++)
        if (ieq(name, n, addr[i]))
            return HK_ADDR;
    for (i = 0; raw[i]; i++)
        if (ieq(name, n, raw[i]))
            return HK_RAW;
    if (ieq(name, n, "content-type") || ieq(name, n, "content-disposition"))
        return HK_PARAM;
    if ((n > 4 && ieq(name, 4, "arc-")) || (n > 5 && ieq(name, 5, "list-")))
        return HK_RAW;
    return HK_TEXT;
}

/* Copy [s, e) into b without its CR and LF octets (unfolding). */
static void unfold(struct buf *b, const char *s, const char *e)
{
    const char *p = s, *q;

    b->len = 0;
    while (p < e) {
        for (q = p; q < e && *q != '\r' && *q != '\n'; q++)
            ;
        buf_put(b, p, (size_t)(q - p));
        for (p = q; p < e && (*p == '\r' || *p == '\n'); p++)
            ;
    }
}

/* Length of the name of the field at f (0 for an orphan continuation). */
static size_t field_name(const char *f, const char *fe)
{
    const char *c = is_wsp(*f) ? NULL : memchr(f, ':', (size_t)(fe - f));

    return c ? (size_t)(c - f) : 0;
}

/* End of the field at f: past the CRLF of its last continuation line. */
static const char *field_end(const char *f, const char *e)
{
    const char *next;

    line_end(f, e, &next);
    while (next < e && is_wsp(*next))
        line_end(next, e, &next);
    return next;
}

/* Write one header field: RFC 2047/2231-encoded when DKIM_PREP_7BIT and
 * it holds 8-bit octets (unless of a raw kind, or nothing encodable),
 * folded where over 998 octets, else as it is. */
static void put_field(struct prep *pp, const char *f, const char *fe)
{
    size_t nn = field_name(f, fe);
    struct hw w = {&pp->tmp, nn + 1};
    const char *ve = fe;
    int kind, did = 0;

    if ((pp->flags & DKIM_PREP_7BIT) && nn > 0 &&
        (kind = header_kind(f, nn)) != HK_RAW &&
        any_high(f, (size_t)(fe - f))) {
        if (ve - f >= 2 && ve[-1] == '\n')
            ve -= 2;
        unfold(&pp->val, f + nn + 1, ve);
        pp->tmp.len = 0;
        buf_put(&pp->tmp, f, nn + 1);
        if (!pp->val.err)
            did = kind == HK_ADDR ? enc_address(pp, &w, pp->val.p, pp->val.len)
                : kind == HK_PARAM ? enc_params(pp, &w, pp->val.p, pp->val.len)
                : enc_text(&w, pp->val.p, pp->val.len);
        buf_put(&pp->tmp, "\r\n", 2);
        if (did > 0 && !pp->tmp.err) {
            pp->info |= DKIM_PREP_REENCODED;
            put_field_raw(&pp->out, &pp->val, pp->tmp.p,
                          pp->tmp.p + pp->tmp.len);
            return;
        }
    }
    put_field_raw(&pp->out, &pp->val, f, fe);
}

/* ---- reading an entity's header --------------------------------------- */


/* Skip white space and (nested) comments from v[i]. */
static size_t skip_cfws(const char *v, size_t n, size_t i)
{
    size_t depth;

    for (;;) {
        while (i < n && (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n'))
            i++;
        if (i >= n || v[i] != '(')
            return i;
        for (depth = 1, i++; i < n && depth > 0; i++) {
            if (v[i] == '\\' && i + 1 < n)
                i++;
            else
                depth += v[i] == '(' ? 1 : v[i] == ')' ? -1 : 0;
        }
    }
}

/* Read type, subtype and boundary= from a Content-Type value. */
static void parse_ct(struct ent *x, const char *v, size_t n)
{
    size_t i, t0, t1, s0, s1, a0, a1;

    i = skip_cfws(v, n, 0);
    for (t0 = i; i < n && is_token_char(v[i]); i++)
        ;
    t1 = i;
    i = skip_cfws(v, n, i);
    s0 = s1 = i;
    if (i < n && v[i] == '/') {
        i = skip_cfws(v, n, i + 1);
        for (s0 = i; i < n && is_token_char(v[i]); i++)
            ;
        s1 = i;
    }
    x->multipart = ieq(v + t0, t1 - t0, "multipart");
    x->digest = x->multipart && ieq(v + s0, s1 - s0, "digest");
    x->rfc822 = ieq(v + t0, t1 - t0, "message") &&
                ieq(v + s0, s1 - s0, "rfc822");
    while (i < n) {
        while (i < n && v[i] != ';') {
            if (v[i] == '"') {
                for (i++; i < n && v[i] != '"'; i++)
                    i += v[i] == '\\' && i + 1 < n;
                i += i < n;
            } else if (v[i] == '(') {
                i = skip_cfws(v, n, i);
            } else {
                i++;
            }
        }
        if (i >= n)
            break;
        i = skip_cfws(v, n, i + 1);
        for (a0 = i; i < n && is_token_char(v[i]); i++)
            ;
        a1 = i;
        i = skip_cfws(v, n, i);
        if (i >= n || v[i] != '=')
            continue;
        i = skip_cfws(v, n, i + 1);
        if (!ieq(v + a0, a1 - a0, "boundary") || x->blen > 0)
            continue;
        if (i < n && v[i] == '"') {
            for (i++; i < n && v[i] != '"'; i++) {
                i += v[i] == '\\' && i + 1 < n;
                if (x->blen == BOUNDARY_MAX)
                    break;
                x->boundary[x->blen++] = v[i];
            }
        } else {
            for (; i < n && is_token_char(v[i]) && x->blen < BOUNDARY_MAX; i++)
                x->boundary[x->blen++] = v[i];
        }
        if (x->blen == BOUNDARY_MAX)   /* too long to be real: no boundary */
            x->blen = 0;
    }
}

/* Kind of Content-Transfer-Encoding value v[0..n). */
static enum cte parse_cte(const char *v, size_t n)
{
    size_t i = skip_cfws(v, n, 0), j;

    for (j = i; j < n && is_token_char(v[j]); j++)
        ;
    if (j == i || ieq(v + i, j - i, "7bit") || ieq(v + i, j - i, "8bit") ||
        ieq(v + i, j - i, "binary"))
        return CTE_IDENT;
    if (ieq(v + i, j - i, "quoted-printable"))
        return CTE_QP;
    if (ieq(v + i, j - i, "base64"))
        return CTE_B64;
    return CTE_OTHER;
}

/* Split [s, e) into header fields and body and read the MIME fields.  The
 * header ends at an empty line, or at the first line that is neither a
 * field nor a continuation (then the body starts there, as Python's and
 * most readers' parsers do). */
static void ent_read(struct ent *x, const char *s, const char *e)
{
    const char *p = s, *next = e, *le, *f, *fe;
    char v[CT_VALUE_MAX];
    size_t nn, vn;

    memset(x, 0, sizeof(*x));
    x->hs = s;
    x->e = e;
    while (p < e) {
        le = line_end(p, e, &next);
        if (le == p) {
            x->has_sep = 1;
            break;
        }
        if (!is_field_line(p, le) && !is_wsp(*p))
            break;
        p = next;
    }
    x->he = p;
    x->bs = x->has_sep ? next : p;
    for (f = x->hs; f < x->he; f = fe) {
        fe = field_end(f, x->he);
        if (!(nn = field_name(f, fe)))
            continue;
        for (vn = 0, p = f + nn + 1; p < fe && vn < sizeof(v); p++)
            if (*p != '\r' && *p != '\n')
                v[vn++] = *p;
        if (ieq(f, nn, "content-type") && !x->has_ct) {
            x->has_ct = 1;
            parse_ct(x, v, vn);
        } else if (ieq(f, nn, "content-transfer-encoding") && !x->has_cte) {
            x->has_cte = 1;
            x->cte = parse_cte(v, vn);
        } else if (ieq(f, nn, "mime-version")) {
            x->has_mimever = 1;
        }
    }
}

/* ---- bodies ----------------------------------------------------------- */

/* Append "=XX" for octet c at o; returns 3. */
static size_t qp_hex(char *o, char c)
{
    o[0] = '=';
    o[1] = hexd[(unsigned char)c >> 4];
    o[2] = hexd[(unsigned char)c & 15];
    return 3;
}

/* Quoted-printable encoding of [s, e) with the tree's one encoder
 * (dkim_qp_put(), dkim_encode.h): printable ASCII but '=' stays, white
 * space stays unless last on a line, all else is =XX; each CRLF stays a
 * hard break; soft breaks keep lines at 76.  With its guard, no output
 * line starts with "From " (its F is =46, so no mbox hop alters it) or
 * with '-' (=2D, so no line can be taken for a boundary: RFC 2045 6.7
 * note 8's concern). */
static void qp_encode(struct buf *b, const char *s, const char *e)
{
    struct dkim_qp q = { .flags = DKIM_QP_GUARD };

    while (s < e) {
        size_t k = (size_t)(e - s);
        if (k > DKIM_QP_CHUNK)
            k = DKIM_QP_CHUNK;
        if (buf_room(b, DKIM_QP_ROOM(k)))
            return;
        b->len = dkim_qp_put(&q, b->p, b->len, s, k);
        s += k;
    }
    if (!buf_room(b, DKIM_QP_END_ROOM))
        b->len = dkim_qp_end(&q, b->p, b->len);
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
           (c >= 'a' && c <= 'f');
}

/* Mend a quoted-printable body without decoding it: lines over 76 get
 * soft breaks (never inside an =XX, and a '-' after one becomes =2D, as
 * in qp_encode()), and when sevenbit 8-bit octets become =XX.  Decoders
 * give the same octets as before. */
static void qp_rewrap(struct buf *b, const char *s, const char *e,
                      int sevenbit)
{
    const char *p = s, *next, *le, *q;
    char line[QP_LINE + 8], tok[3];
    size_t col, un, tn;

    while (p < e) {
        le = line_end(p, e, &next);
        if (le - p <= QP_LINE && !(sevenbit && any_high(p, (size_t)(le - p)))) {
            buf_put(b, p, (size_t)(next - p));
            p = next;
            continue;
        }
        col = 0;
        for (q = p; q < le; q += un) {
            if (*q == '=' && le - q >= 3 && is_hex(q[1]) && is_hex(q[2])) {
                memcpy(tok, q, 3);
                un = tn = 3;
            } else if (sevenbit && is_high(*q)) {
                tn = qp_hex(tok, *q);
                un = 1;
            } else {
                tok[0] = *q;
                un = tn = 1;
            }
            if (col + tn > (q + un == le ? QP_LINE : QP_LINE - 1)) {
                line[col++] = '=';
                buf_put(b, line, col);
                buf_put(b, "\r\n", 2);
                col = 0;
                if (*q == '-')          /* never let a line open with '-' */
                    tn = qp_hex(tok, *q);
            }
            memcpy(line + col, tok, tn);
            col += tn;
        }
        buf_put(b, line, col);
        buf_put(b, le, (size_t)(next - le));
        p = next;
    }
}

/* Re-wrap a base64 body at 76 characters, keeping only alphabet and '='
 * octets (which is all a decoder reads); ends in CRLF if it did. */
static void b64_rewrap(struct buf *b, const char *s, const char *e)
{
    char line[B64_LINE];
    size_t col = 0;
    const char *q;

    for (q = s; q < e; q++) {
        if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
              (*q >= '0' && *q <= '9') || *q == '+' || *q == '/' || *q == '='))
            continue;
        if (col == B64_LINE) {
            buf_put(b, line, col);
            buf_put(b, "\r\n", 2);
            col = 0;
        }
        line[col++] = *q;
    }
    buf_put(b, line, col);
    if (col > 0 && e - s >= 2 && e[-1] == '\n')
        buf_put(b, "\r\n", 2);
}

/* Text no encoding can be set for (preamble, epilogue, a body in an
 * unknown transfer encoding): lines over 998 octets are cut (CRLF
 * inserted, if it can be, not before a '-' that could start a boundary
 * line), and when sanitize 8-bit octets become '?'. */
static void put_opaque(struct buf *b, const char *s, const char *e,
                       int sanitize)
{
    const char *p = s, *next, *le, *q, *cut;

    sanitize = sanitize && any_high(s, (size_t)(e - s));
    if (!sanitize && !has_long_line(s, e)) {
        buf_put(b, s, (size_t)(e - s));
        return;
    }
    while (p < e) {
        le = line_end(p, e, &next);
        while (le - p > LINE_MAX_OCT) {
            for (cut = p + LINE_MAX_OCT; cut > p + LINE_MAX_OCT - 16 &&
                 *cut == '-'; cut--)
                ;
            if (p[0] == '-' && p[1] == '-' && is_wsp(cut[-1]))
                cut = p + 2;      /* "--b" + padding would be a boundary */
            for (q = p; q < cut; q++)
                buf_put(b, sanitize && is_high(*q) ? "?" : q, 1);
            buf_put(b, "\r\n", 2);
            p = cut;
        }
        for (q = p; q < next; q++)
            buf_put(b, sanitize && is_high(*q) ? "?" : q, 1);
        p = next;
    }
}

/* ---- entities --------------------------------------------------------- */

static void do_entity(struct prep *pp, const char *s, const char *e,
                      int depth, int is_msg, int in_digest);

/* Whether the line [p, le) is a boundary line: 1 for --b, 2 for --b--
 * (RFC 2046 5.1.1, trailing white space allowed), else 0. */
static int delim_kind(const char *p, const char *le, const struct ent *x)
{
    const char *q;
    int kind = 1;

    if ((size_t)(le - p) < x->blen + 2 || p[0] != '-' || p[1] != '-' ||
        memcmp(p + 2, x->boundary, x->blen))
        return 0;
    q = p + 2 + x->blen;
    if (le - q >= 2 && q[0] == '-' && q[1] == '-') {
        q += 2;
        kind = 2;
    }
    while (q < le && is_wsp(*q))
        q++;
    return q == le ? kind : 0;
}

/* Whether the first boundary line of x's body opens a part. */
static int has_parts(const struct ent *x)
{
    const char *p = x->bs, *next, *le;
    int k;

    if (x->blen == 0)
        return 0;
    for (; p < x->e; p = next) {
        le = line_end(p, x->e, &next);
        if ((k = delim_kind(p, le, x)))
            return k == 1;
    }
    return 0;
}

/* Walk a multipart body: preamble, each part through do_entity(), the
 * boundary lines as they are, the epilogue.  Without a closing boundary
 * the last part runs to the end. */
static void do_multipart(struct prep *pp, const struct ent *x, int depth)
{
    const char *p = x->bs, *next, *le, *start = x->bs, *end;
    int k, in_part = 0, sanitize = (pp->flags & DKIM_PREP_7BIT) != 0;

    for (; p < x->e; p = next) {
        le = line_end(p, x->e, &next);
        if (!(k = delim_kind(p, le, x)))
            continue;
        end = p - start >= 2 && p[-1] == '\n' ? p - 2 : p;
        if (in_part)
            do_entity(pp, start, end, depth + 1, 0, x->digest);
        else
            put_opaque(&pp->out, start, end, sanitize);
        buf_put(&pp->out, end, (size_t)(p - end));
        if (le - p > LINE_MAX_OCT)   /* absurd transport padding: drop it */
            buf_put(&pp->out, p, x->blen + (k == 2 ? 4 : 2));
        else
            buf_put(&pp->out, p, (size_t)(le - p));
        buf_put(&pp->out, le, (size_t)(next - le));
        start = next;
        in_part = 1;
        if (k == 2) {
            put_opaque(&pp->out, next, x->e, sanitize);
            return;
        }
    }
    do_entity(pp, start, x->e, depth + 1, 0, x->digest);
}

/* What a leaf body needs: a body in 7bit/8bit/binary (or none said) with
 * a line over 998 octets, or with 8-bit octets under DKIM_PREP_7BIT, is
 * re-encoded as quoted-printable; a quoted-printable or base64 body in
 * the same state is mended in its own encoding; a body in another
 * encoding has only its long lines cut.  (A multipart or message entity
 * beyond DKIM_PREP_MAX_DEPTH is only cut too: see do_entity().) */
static enum act leaf_act(const struct prep *pp, const struct ent *x, int *high)
{
    size_t n = (size_t)(x->e - x->bs);
    int longl = has_long_line(x->bs, x->e), bad;

    *high = any_high(x->bs, n);
    bad = longl || (*high && (pp->flags & DKIM_PREP_7BIT));
    if (!bad)
        return ACT_COPY;
    switch (x->cte) {
    case CTE_IDENT:
        return ACT_QP;
    case CTE_QP:
        return ACT_QP_WRAP;
    case CTE_B64:
        return ACT_B64_WRAP;
    default:
        return longl ? ACT_HARD_WRAP : ACT_COPY;
    }
}

/* Write the header fields of x; with qp, the Content-Transfer-Encoding
 * is set to quoted-printable (replaced or added) and, when the body has
 * 8-bit octets and no Content-Type, a text/plain one naming utf-8 (or
 * unknown-8bit when the octets are not UTF-8) is added. */
static void put_header(struct prep *pp, const struct ent *x, int qp, int high)
{
    static const char cte_qp[] = "Content-Transfer-Encoding: quoted-printable\r\n";
    const char *f, *fe;
    size_t nn;

    for (f = x->hs; f < x->he; f = fe) {
        fe = field_end(f, x->he);
        nn = field_name(f, fe);
        if (qp && ieq(f, nn, "content-transfer-encoding"))
            buf_str(&pp->out, cte_qp);
        else
            put_field(pp, f, fe);
    }
    if (!qp)
        return;
    pp->cte_added++;
    if (!x->has_cte)
        buf_str(&pp->out, cte_qp);
    if (!x->has_ct && high)
        buf_str(&pp->out, utf8_valid(x->bs, (size_t)(x->e - x->bs))
                              ? "Content-Type: text/plain; charset=utf-8\r\n"
                              : "Content-Type: text/plain; charset=unknown-8bit\r\n");
}

/* Handle one entity [s, e) at depth: header, then body as a multipart, an
 * enclosed message, or a leaf.  A multipart whose boundary is missing or
 * never opens a part is a leaf (so it may be re-encoded, and Python's
 * parser, which then reads it as one, decodes it to the same octets); a
 * multipart or message below DKIM_PREP_MAX_DEPTH is well-formed but not
 * walked, so it gets no transfer encoding (RFC 2045 6.4): its long lines
 * are cut and its 8-bit octets stay (DKIM_PREP_8BIT).  A message
 * (is_msg) without MIME-Version gets one when a transfer encoding was set
 * inside it.  A header that ends at a line that is no field gets the
 * empty line every reader assumes there (dkim_sign() refuses a message
 * without it, and fields added below must not join the header above). */
static void do_entity(struct prep *pp, const char *s, const char *e,
                      int depth, int is_msg, int in_digest)
{
    struct ent x;
    enum act act = ACT_COPY;
    unsigned mark = pp->cte_added;
    size_t hdr_end;
    int high = 0, multi, message;

    ent_read(&x, s, e);
    multi = depth < DKIM_PREP_MAX_DEPTH && x.multipart && has_parts(&x);
    message = depth < DKIM_PREP_MAX_DEPTH && !multi &&
              (x.rfc822 || (!x.has_ct && in_digest));
    if (!multi && !message)
        act = leaf_act(pp, &x, &high);
    if (depth >= DKIM_PREP_MAX_DEPTH && (x.multipart || x.rfc822) &&
        act != ACT_COPY)          /* RFC 2045 6.4: no encoding for these */
        act = ACT_HARD_WRAP;
    put_header(pp, &x, act == ACT_QP, high);
    hdr_end = pp->out.len;
    if (x.has_sep || x.bs < e)
        buf_put(&pp->out, "\r\n", 2);   /* a missing one goes in */
    if (act != ACT_COPY && act != ACT_HARD_WRAP)
        pp->info |= DKIM_PREP_REENCODED;
    if (multi)
        do_multipart(pp, &x, depth);
    else if (message)
        do_entity(pp, x.bs, e, depth + 1, 1, 0);
    else if (act == ACT_QP)
        qp_encode(&pp->out, x.bs, e);
    else if (act == ACT_QP_WRAP)
        qp_rewrap(&pp->out, x.bs, e, (pp->flags & DKIM_PREP_7BIT) != 0);
    else if (act == ACT_B64_WRAP)
        b64_rewrap(&pp->out, x.bs, e);
    else if (act == ACT_HARD_WRAP)
        put_opaque(&pp->out, x.bs, e, 0);
    else
        buf_put(&pp->out, x.bs, (size_t)(e - x.bs));
    if (is_msg && !x.has_mimever && pp->cte_added > mark)
        buf_insert(&pp->out, hdr_end, "MIME-Version: 1.0\r\n", 19);
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
        do_entity(&pp, norm.p, norm.p + norm.len, 0, 1, 0);
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
