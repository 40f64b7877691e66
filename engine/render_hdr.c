/*
 * render_hdr.c - header fields: addresses, cleaned text, RFC 2047 encoded
 * words with folding, and the Date.
 *
 * DESCRIPTION
 *   Every header value the renderer writes from template or contact text
 *   first goes through render_hdr_clean(): no CR, LF or other control
 *   survives it, so no value can end a header line or start a new one.
 *   render_hdr_text() then writes it as plain words when it is printable
 *   ASCII (and, in a display name, free of specials), else as UTF-8
 *   encoded words written by the tree's one RFC 2047 writer (dkim_ew_*(),
 *   dkim/encode.c: Q unless B is clearly shorter), each at most 75
 *   characters and on its own folded line so no line passes 78
 *   characters.  Addresses are checked to be plain ASCII addr-specs: a
 *   dot-atom local part and LDH labels.  render.c calls in here per
 *   piece as its one pass reaches it (see the shape there).
 *
 * DIAGNOSTICS
 *   RENDER_E_ARG for a malformed address, -ENOMEM and RENDER_E_TOOBIG
 *   from the output buffer.
 */
#include <errno.h>
#include <string.h>

#include "render_int.h"

#define LINE_SOFT 78        /* folding target for header lines */
#define EW_MAX 75           /* characters of one encoded word */
#define EW_OVERHEAD 12      /* "=?utf-8?q?" and "?=" */

/* ---- addresses ---- */

/* Is c allowed in a dot-atom (RFC 5322 atext)? */
static int atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int render_hdr_domain_ok(const char *d, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t lab = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (lab == 0 || d[i - 1] == '-')
                return 0;
            lab = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || (c == '-' && lab > 0)) {
            if (++lab > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return lab > 0 && d[n - 1] != '-';
}

int render_hdr_addr_ok(const char *a, size_t n)
{
    if (n > 254)
        return 0;
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (a[i] == '@')
            at = a + i;
    if (at == NULL)
        return 0;
    size_t ln = (size_t)(at - a);
    if (ln == 0 || ln > 64 || a[0] == '.' || a[ln - 1] == '.')
        return 0;
    for (size_t i = 0; i < ln; i++) {
        if (a[i] == '.' ? a[i + 1] == '.' : !atext((unsigned char)a[i]))
            return 0;
    }
    return render_hdr_domain_ok(at + 1, n - ln - 1);
}

/* Trim blanks around s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

int render_hdr_addr_parse(const char *s, char *name, size_t namecap, char *addr,
                   size_t addrcap)
{
    size_t n = strlen(s);
    const char *a = trim(s, &n), *nm = a;
    size_t an = n, nn = 0;
    if (n && a[n - 1] == '>') {
        const char *lt = memrchr(a, '<', n);
        if (lt == NULL)
            return RENDER_E_ARG;
        nn = (size_t)(lt - a);
        nm = trim(a, &nn);
        an = (size_t)(a + n - 1 - (lt + 1));
        a = lt + 1;
    }
    if (!render_hdr_addr_ok(a, an) || an >= addrcap)
        return RENDER_E_ARG;
    memcpy(addr, a, an);
    addr[an] = '\0';
    /* the display name, unquoted; controls are refused */
    size_t o = 0;
    int quoted = nn >= 2 && nm[0] == '"' && nm[nn - 1] == '"';
    for (size_t i = quoted; i < nn - (size_t)quoted; i++) {
        unsigned char c = (unsigned char)nm[i];
        if (quoted && c == '\\' && i + 1 < nn - 1)
            c = (unsigned char)nm[++i];
        if (c < 0x20 || c == 0x7f)     /* an escaped one too */
            return RENDER_E_ARG;
        if (o + 1 >= namecap)
            return RENDER_E_ARG;
        name[o++] = (char)c;
    }
    name[o] = '\0';
    return 0;
}

/* ---- text cleaning ---- */

/* Length of the valid UTF-8 sequence at s[0..n) and its code point, or 0
 * if it is not valid (bad lead, truncated, overlong, surrogate, range). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0], v, len, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2; v = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; v = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (unsigned i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void render_hdr_clean(struct render_hclean *h, const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    while (i < n && !h->full) {
        unsigned cp;
        size_t k = utf8_seq(s + i, n - i, &cp);
        const char *put = in + i;
        size_t w = k;
        if (k == 0) {
            put = "\xEF\xBF\xBD";   /* U+FFFD for a byte that is not UTF-8 */
            k = 1;
            w = 3;
            cp = 0xFFFD;
        }
        i += k;
        if (cp == 0)
            continue;
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
            cp == 0x2028 || cp == 0x2029 || cp == ' ') {
            h->blank = h->len > 0;
            continue;
        }
        if (h->len + (size_t)h->blank + w > h->cap) {
            h->full = 1;
            break;
        }
        if (h->blank)
            h->out[h->len++] = ' ';
        h->blank = 0;
        memcpy(h->out + h->len, put, w);
        h->len += w;
    }
}

/* ---- encoded words and folding ---- */

/* Length of the UTF-8 character that starts with lead byte c. */
static size_t char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Write s as encoded words, one per line, starting at column *col. */
static int put_encoded(struct rbuf *b, size_t *col, const unsigned char *s,
                       size_t n)
{
    int bq = dkim_ew_use_b(s, n);
    /* worst case per word: 4 B chars per 3 bytes or 3 Q chars per byte */
    int rc = render_buf_reserve(b, n * 3 + (n / 10 + 2) * (EW_OVERHEAD + 3));
    if (rc)
        return rc;
    char *o = b->p + b->len;
    size_t i = 0;
    int first = 1;
    while (i < n) {
        size_t room = first && *col + 1 + EW_MAX > LINE_SOFT
                          ? LINE_SOFT - *col - 1 - EW_OVERHEAD
                          : EW_MAX - EW_OVERHEAD;
        size_t j = i, used = 0;
        while (j < n) {
            size_t k = char_len(s[j]), cost = 0;
            if (k > n - j)
                k = n - j;
            if (bq)
                cost = (j + k - i + 2) / 3 * 4 - used;
            else
                cost = dkim_ew_textlen(s + j, k, 0);
            if (used + cost > room && j > i)
                break;
            used += cost;
            j += k;
        }
        if (first) {
            *o++ = ' ';
            (*col)++;
        } else {
            memcpy(o, "\r\n ", 3);
            o += 3;
            *col = 1;
        }
        char *w = o;
        o += dkim_ew_put(o, "utf-8", bq, s + i, j - i);
        *col += (size_t)(o - w);
        first = 0;
        i = j;
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* Is c a special that forces quoting in a display name? */
static int special(unsigned char c)
{
    return c && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

int render_hdr_text(struct rbuf *b, size_t *col, const char *s, size_t n,
             int phrase)
{
    const unsigned char *u = (const unsigned char *)s;
    int plain = 1, specials = 0;
    size_t word = 0, first_word = 0;
    int in_first = 1;
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x20 || u[i] > 0x7E ||
            (u[i] == '=' && i + 1 < n && u[i + 1] == '?')) {
            plain = 0;
            break;
        }
        if (phrase && special(u[i]))
            specials = 1;
        if (u[i] == ' ') {
            if (in_first)
                first_word = word;
            in_first = 0;
            word = 0;
        } else if (++word > LINE_SOFT - 1) {
            plain = 0;
        }
    }
    if (in_first)
        first_word = word;
    if (plain && *col + 1 + first_word > LINE_SOFT)
        plain = 0;
    if (plain && specials) {
        /* a short quoted string, else encoded words */
        size_t q = 2;
        for (size_t i = 0; i < n; i++)
            q += (s[i] == '"' || s[i] == '\\') ? 2 : 1;
        if (*col + 1 + q > LINE_SOFT)
            return put_encoded(b, col, u, n);
        int rc = render_buf_reserve(b, q + 1);
        if (rc)
            return rc;
        char *o = b->p + b->len;
        *o++ = ' ';
        *o++ = '"';
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                *o++ = '\\';
            *o++ = s[i];
        }
        *o++ = '"';
        b->len = (size_t)(o - b->p);
        *col += q + 1;
        return 0;
    }
    if (!plain)
        return put_encoded(b, col, u, n);
    int rc = render_buf_reserve(b, n + 3 * (n / 2 + 1));
    if (rc)
        return rc;
    char *o = b->p + b->len;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (i > 0 && *col + 1 + (j - i) > LINE_SOFT) {
            memcpy(o, "\r\n", 2);
            o += 2;
            *col = 0;
        }
        *o++ = ' ';
        memcpy(o, s + i, j - i);
        o += j - i;
        *col += 1 + j - i;
        i = j + 1;
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ---- Date ---- */


int render_hdr_address(struct rbuf *b, const char *field, const char *name,
                       const char *addr)
{
    char clean[RENDER_HDR_NAME_MAX];
    struct render_hclean h = { .out = clean, .cap = sizeof(clean) };
    if (name)
        render_hdr_clean(&h, name, strlen(name));
    size_t col = strlen(field) + 1, an = strlen(addr);
    int rc = render_buf_puts(b, field);
    if (rc == 0)
        rc = render_buf_puts(b, ":");
    if (rc == 0 && h.len == 0) {
        rc = render_buf_puts(b, " ");
        if (rc == 0)
            rc = render_buf_put(b, addr, an);
        return rc ? rc : render_buf_puts(b, "\r\n");
    }
    if (rc == 0)
        rc = render_hdr_text(b, &col, clean, h.len, 1);
    if (rc == 0 && col + 3 + an > 78)
        rc = render_buf_puts(b, "\r\n");
    if (rc == 0)
        rc = render_buf_puts(b, " <");
    if (rc == 0)
        rc = render_buf_put(b, addr, an);
    return rc ? rc : render_buf_puts(b, ">\r\n");
}

/* Append v as exactly w decimal digits. */
static char *digits(char *o, unsigned v, int w)
{
    for (int i = w - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + w;
}

int render_hdr_date(struct rbuf *b, int64_t t)
{
    static const char wd[] = "ThuFriSatSunMonTueWed";
    static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    /* civil date from days since 1970-01-01 (proleptic Gregorian) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 1900 || y > 9999)
        return RENDER_E_ARG;
    int64_t w = ((days % 7) + 7) % 7;
    int rc = render_buf_reserve(b, 48);
    if (rc)
        return rc;
    char *o = b->p + b->len;
    memcpy(o, "Date: ", 6);
    o += 6;
    memcpy(o, wd + w * 3, 3);
    o += 3;
    memcpy(o, ", ", 2);
    o = digits(o + 2, (unsigned)d, 2);
    *o++ = ' ';
    memcpy(o, mon + (m - 1) * 3, 3);
    o += 3;
    *o++ = ' ';
    o = digits(o, (unsigned)y, 4);
    *o++ = ' ';
    o = digits(o, (unsigned)(secs / 3600), 2);
    *o++ = ':';
    o = digits(o, (unsigned)(secs / 60 % 60), 2);
    *o++ = ':';
    o = digits(o, (unsigned)(secs % 60), 2);
    memcpy(o, " +0000\r\n", 8);
    b->len = (size_t)(o + 8 - b->p);
    return 0;
}
