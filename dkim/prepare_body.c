/*
 * prepare_body.c - the MIME structure and the bodies of dkim_prepare():
 * reading an entity's header, walking multiparts and message/rfc822
 * parts, and writing each leaf body copied, re-encoded as
 * quoted-printable (the tree's one encoder, dkim_qp_put(), dkim/encode.c)
 * or mended in its own encoding.
 *
 * DESCRIPTION
 *   Content-Type (type, subtype, boundary=) and Content-Transfer-Encoding
 *   are read from each entity's header; a multipart is split at its
 *   boundary lines, each part handled as an entity, up to
 *   DKIM_PREP_MAX_DEPTH levels.  What cannot be parsed is an opaque leaf:
 *   malformed MIME never fails (dkim_prepare.h lists the rules).
 *
 * DIAGNOSTICS
 *   None of its own: a buffer failure sticks in the buffer (prepare_int.h)
 *   and dkim_prepare() returns it.
 */
#include "dkim_encode.h"
#include "prepare_int.h"

static const char hexd[] = "0123456789ABCDEF";

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
        i = param_end(v, n, i);
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
        if (!prep_is_field_line(p, le) && !is_wsp(*p))
            break;
        p = next;
    }
    x->he = p;
    x->bs = x->has_sep ? next : p;
    for (f = x->hs; f < x->he; f = fe) {
        fe = prep_field_end(f, x->he);
        if (!(nn = prep_field_name(f, fe)))
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

/* Walk a multipart body: preamble, each part through prep_do_entity(), the
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
            prep_do_entity(pp, start, end, depth + 1, 0, x->digest);
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
    prep_do_entity(pp, start, x->e, depth + 1, 0, x->digest);
}

/* What a leaf body needs: a body in 7bit/8bit/binary (or none said) with
 * a line over 998 octets, or with 8-bit octets under DKIM_PREP_7BIT, is
 * re-encoded as quoted-printable; a quoted-printable or base64 body in
 * the same state is mended in its own encoding; a body in another
 * encoding has only its long lines cut.  (A multipart or message entity
 * beyond DKIM_PREP_MAX_DEPTH is only cut too: see prep_do_entity().) */
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
        fe = prep_field_end(f, x->he);
        nn = prep_field_name(f, fe);
        if (qp && ieq(f, nn, "content-transfer-encoding"))
            buf_str(&pp->out, cte_qp);
        else
            prep_put_field(pp, f, fe);
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
void prep_do_entity(struct prep *pp, const char *s, const char *e,
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
        prep_do_entity(pp, x.bs, e, depth + 1, 1, 0);
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
