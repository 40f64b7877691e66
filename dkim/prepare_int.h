/*
 * prepare_int.h - what the dkim_prepare() files share inside dkim/:
 * prepare.c (the entry and the fast path), prepare_hdr.c (header fields:
 * folding and RFC 2047/2231 re-encoding) and prepare_body.c (MIME
 * structure, bodies and entities).
 *
 * DESCRIPTION
 *   The caps, the growing buffer with its sticky error, one call's state
 *   (struct prep), one MIME entity as read from its header (struct ent),
 *   and the small octet and line helpers, static inline so each file's
 *   loops keep them inlined.  Nothing here allocates but buf_room().
 */
#ifndef SLUICE_DKIM_PREPARE_INT_H
#define SLUICE_DKIM_PREPARE_INT_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- buffers ---------------------------------------------------------- */

/* Make room for more bytes and a NUL; 0, or -1 with b->err set. */
static inline int buf_room(struct buf *b, size_t more)
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
static inline void buf_put(struct buf *b, const void *s, size_t n)
{
    if (n == 0 || buf_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Insert n bytes at offset off. */
static inline void buf_insert(struct buf *b, size_t off, const char *s, size_t n)
{
    if (buf_room(b, n))
        return;
    memmove(b->p + off + n, b->p + off, b->len - off);
    memcpy(b->p + off, s, n);
    b->len += n;
}

/* ---- small helpers ---------------------------------------------------- */

static inline int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static inline int is_high(char c)
{
    return (unsigned char)c >= 0x80;
}

/* Whether n bytes at s equal the lower-case literal lit, ignoring case. */
static inline int ieq(const char *s, size_t n, const char *lit)
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
static inline int any_high(const char *s, size_t n)
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
static inline size_t utf8_seq(const char *s, size_t n)
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
static inline int utf8_valid(const char *s, size_t n)
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
static inline const char *line_end(const char *p, const char *e, const char **next)
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
static inline int has_long_line(const char *p, const char *e)
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

/* RFC 2045 token character. */
static inline int is_token_char(char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* From v[i], the index of the next ';' of a parameter list that is
 * outside quoted strings and (nested) comments, or n.  A backslash quotes
 * the next octet in both (RFC 5322 quoted-pair). */
static inline size_t param_end(const char *v, size_t n, size_t i)
{
    size_t depth;

    while (i < n && v[i] != ';') {
        if (v[i] == '"') {
            for (i++; i < n && v[i] != '"'; i++)
                i += v[i] == '\\' && i + 1 < n;
            i += i < n;
        } else if (v[i] == '(') {
            for (depth = 1, i++; i < n && depth > 0; i++) {
                if (v[i] == '\\' && i + 1 < n)
                    i++;
                else
                    depth += v[i] == '(' ? 1 : v[i] == ')' ? -1 : 0;
            }
        } else {
            i++;
        }
    }
    return i;
}

/* ---- across the files ------------------------------------------------- */

/* Write one header field [f, fe) to pp->out: RFC 2047/2231-encoded when
 * DKIM_PREP_7BIT and it holds 8-bit octets, else as it is but folded
 * where a line is over 998 octets (prepare_hdr.c). */
void prep_put_field(struct prep *pp, const char *f, const char *fe);

/* Length of the name of the field at f (0 for an orphan continuation). */
size_t prep_field_name(const char *f, const char *fe);

/* End of the field at f: past the CRLF of its last continuation line. */
const char *prep_field_end(const char *f, const char *e);

/* Whether the line [p, le) opens a header field (prepare.c). */
int prep_is_field_line(const char *p, const char *le);

/* Write the entity [s, e) at depth to pp->out: header, then body as a
 * multipart, a message or a leaf (prepare_body.c). */
void prep_do_entity(struct prep *pp, const char *s, const char *e,
                    int depth, int is_msg, int in_digest);

#endif
