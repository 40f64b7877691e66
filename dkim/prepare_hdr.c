/*
 * prepare_hdr.c - the header fields of dkim_prepare(): lines over 998
 * octets folded, and under DKIM_PREP_7BIT 8-bit values re-encoded.
 *
 * DESCRIPTION
 *   A field whose lines all fit and that needs no encoding is copied.  A
 *   line over 998 octets is folded before white space, else after ',' or
 *   ';' or between '>' and '<' (dkim_prepare.h says the rules).  Under
 *   DKIM_PREP_7BIT unstructured text becomes RFC 2047 encoded words
 *   (written by the tree's one encoded-word writer, dkim_ew_put(),
 *   dkim/encode.c), address fields get only their phrases and comments
 *   encoded, and Content-Type/Disposition parameters RFC 2231 sections.
 *
 * DIAGNOSTICS
 *   None of its own: a buffer failure sticks in the buffer (prepare_int.h)
 *   and dkim_prepare() returns it.
 */
#include <stdio.h>

#include "dkim_encode.h"
#include "prepare_int.h"

static const char hexd[] = "0123456789ABCDEF";

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
    size_t i = 0, s0, a, z, eq;
    int did = 0, semi, first = 1;

    while (i < n) {
        for (s0 = i; i < n && is_wsp(v[i]); i++)
            ;
        a = i;
        i = param_end(v, n, i);
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
size_t prep_field_name(const char *f, const char *fe)
{
    const char *c = is_wsp(*f) ? NULL : memchr(f, ':', (size_t)(fe - f));

    return c ? (size_t)(c - f) : 0;
}

/* End of the field at f: past the CRLF of its last continuation line. */
const char *prep_field_end(const char *f, const char *e)
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
void prep_put_field(struct prep *pp, const char *f, const char *fe)
{
    size_t nn = prep_field_name(f, fe);
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
