/*
 * render_track.c - opens and clicks tracking in a compiled html part:
 * where its links are, and which of them may be rewritten.
 *
 * DESCRIPTION
 *   render_track_compile() runs once per campaign, on the html part after
 *   the account's header and footer are spliced in.  It reads the part as
 *   HTML just far enough to find the href value of each <a> start tag
 *   (quoted with " or ', or unquoted; the first href of a tag; merge tags
 *   inside the value are kept) and marks the ones that look like web
 *   links: a value starting with http:// or https:// (any case), or with
 *   a merge field (decided per message, on its value).  mailto:, tel:,
 *   #anchors, relative links and {{unsubscribe_url}} are left alone.  A
 *   marked value is bracketed by a RENDER_SEG_LINK segment (slot: the
 *   link's number in document order; off: a 32-bit FNV-1a check of its
 *   template text, so a click on a link renumbered since, by a changed
 *   account header, still finds its link or none) and RENDER_SEG_LINK_END.
 *   With opens tracked a RENDER_SEG_PIXEL goes before the last </body>
 *   (any case), else at the end of the part.  render.c renders them.
 *
 *   render_track_url_ok() is the rule both the send and a click apply to
 *   a link's URL as rendered: http or https, a host, no control
 *   characters, not our own host (the unsubscribe host), at most
 *   RENDER_LINK_URL_MAX bytes.  render_track_unescape() turns the HTML
 *   text of a value into the URL a browser follows (&amp; &lt; &gt; &quot;
 *   &apos; and numeric references; others stay as written).
 *
 *   Hand-written: this is a scanner for one attribute, not an HTML parser;
 *   no packaged library parses a template with merge tags in it.
 *
 * DIAGNOSTICS
 *   -ENOMEM, or RENDER_E_TOOBIG past the pool's cap.  More than
 *   RENDER_LINKS_MAX links: the rest are not tracked.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render_int.h"

#define TAG_CHAR '\x01'   /* what a merge tag is in the flat text */

/* One place to cut the part: a link's start or end, or the pixel. */
struct cut {
    size_t pos;
    int kind;             /* RENDER_SEG_LINK_END, _PIXEL, _LINK (that order
                             at one position) */
    uint16_t link;
    uint32_t check;
};

/* The part as one string (a merge tag is one TAG_CHAR) and where each
 * segment starts in it. */
struct flat {
    char *s;
    size_t n;
    size_t *start;        /* nsegs + 1 entries */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

/* Flatten l into f. */
static int flatten(const struct tplc *c, const struct render_seglist *l,
                   struct flat *f)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->v[i].kind == RENDER_SEG_LIT ? l->v[i].len : 1;
    f->s = malloc(n + 1);
    f->start = malloc((l->n + 1) * sizeof *f->start);
    if (!f->s || !f->start)
        return -ENOMEM;
    f->n = 0;
    for (size_t i = 0; i < l->n; i++) {
        f->start[i] = f->n;
        if (l->v[i].kind == RENDER_SEG_LIT) {
            memcpy(f->s + f->n, c->pool.p + l->v[i].off, l->v[i].len);
            f->n += l->v[i].len;
        } else {
            f->s[f->n++] = TAG_CHAR;
        }
    }
    f->start[l->n] = f->n;
    f->s[f->n] = 0;
    return 0;
}

/* The segment that holds flat position p. */
static size_t seg_at(const struct flat *f, size_t nsegs, size_t p)
{
    size_t lo = 0, hi = nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (f->start[mid] <= p)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n--) {
        h ^= *s++;
        h *= 16777619u;
    }
    return h;
}

/* The check of the template text of value [vs, ve). */
static uint32_t value_check(const struct tplc *c,
                            const struct render_seglist *l,
                            const struct flat *f, size_t vs, size_t ve)
{
    uint32_t h = 2166136261u;
    for (size_t p = vs; p < ve; p++) {
        size_t i = seg_at(f, l->n, p);
        const struct render_seg *s = &l->v[i];
        if (s->kind == RENDER_SEG_LIT) {
            h = fnv(h, f->s + p, 1);
            continue;
        }
        unsigned char k = (unsigned char)(0x10 + s->kind);
        h = fnv(h, &k, 1);
        if (s->kind == RENDER_SEG_FIELD)
            h = fnv(h, c->pool.p + c->slot_off[s->slot], c->slot_len[s->slot]);
        h = fnv(h, "|", 1);
        h = fnv(h, c->pool.p + s->off, s->len);
        h = fnv(h, "}", 1);
    }
    return h;
}

/* Is value [vs, ve) one to mark: http(s):// or a merge field first? */
static int value_marked(const struct render_seglist *l, const struct flat *f,
                        size_t vs, size_t ve)
{
    while (vs < ve && is_blank(f->s[vs]))
        vs++;
    if (vs == ve)
        return 0;
    size_t i = seg_at(f, l->n, vs);
    if (l->v[i].kind != RENDER_SEG_LIT)
        return l->v[i].kind == RENDER_SEG_FIELD;
    size_t n = ve - vs;
    return (n > 7 && !strncasecmp(f->s + vs, "http://", 7)) ||
           (n > 8 && !strncasecmp(f->s + vs, "https://", 8));
}

/* Add a cut, growing the array. */
static int add_cut(struct cut **v, size_t *n, size_t *cap, struct cut c)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct cut *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = c;
    return 0;
}

/* The href value of the <a tag whose attributes start at k: [*vs, *ve),
 * or *vs = *ve = 0 if it has none; returns where the tag ends. */
static size_t a_href(const struct flat *f, size_t k, size_t *vs, size_t *ve)
{
    const char *s = f->s;
    size_t n = f->n;
    *vs = *ve = 0;
    bool found = false;
    while (k < n) {
        while (k < n && (is_blank(s[k]) || s[k] == '/'))
            k++;
        if (k >= n)
            break;
        if (s[k] == '>')
            return k + 1;
        size_t ns = k;
        while (k < n && !is_blank(s[k]) && s[k] != '=' && s[k] != '>' &&
               s[k] != '/')
            k++;
        size_t nl = k - ns;
        if (nl == 0) {
            k++;                      /* a stray character: step over */
            continue;
        }
        while (k < n && is_blank(s[k]))
            k++;
        if (k >= n || s[k] != '=')
            continue;                 /* an attribute without a value */
        k++;
        while (k < n && is_blank(s[k]))
            k++;
        size_t a, z;
        if (k < n && (s[k] == '"' || s[k] == '\'')) {
            const char *e = memchr(s + k + 1, s[k], n - k - 1);
            a = k + 1;
            z = e ? (size_t)(e - s) : n;
            k = e ? z + 1 : n;
        } else {
            a = k;
            while (k < n && !is_blank(s[k]) && s[k] != '>')
                k++;
            z = k;
        }
        if (!found && nl == 4 && !strncasecmp(s + ns, "href", 4)) {
            found = true;
            *vs = a;
            *ve = z;
        }
    }
    return k;
}

/* Order of cuts: by position; at one position an end, then the pixel,
 * then a start. */
static int cut_cmp(const void *a, const void *b)
{
    const struct cut *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    int rx = x->kind == RENDER_SEG_LINK_END ? 0
             : x->kind == RENDER_SEG_PIXEL ? 1 : 2;
    int ry = y->kind == RENDER_SEG_LINK_END ? 0
             : y->kind == RENDER_SEG_PIXEL ? 1 : 2;
    return rx - ry;
}

/* Emit the marker segment of cut x onto out. */
static int put_cut(struct render_seglist *out, const struct cut *x)
{
    struct render_seg s = { .kind = (uint16_t)x->kind };
    if (x->kind == RENDER_SEG_LINK) {
        s.slot = x->link;
        s.off = x->check;
    }
    return render_seg_add(out, s);
}

int render_track_compile(struct tplc *c, struct render_seglist *html,
                         unsigned track)
{
    struct flat f = { 0 };
    struct cut *cuts = NULL;
    size_t ncuts = 0, capcuts = 0, nlinks = 0;
    struct render_seglist out = { 0 };
    int rc;
    if (!track)
        return 0;
    if ((rc = flatten(c, html, &f)))
        goto done;
    for (size_t i = 0; (track & RENDER_TRACK_CLICKS) && i < f.n;) {
        const char *p = memchr(f.s + i, '<', f.n - i);
        if (!p)
            break;
        size_t j = (size_t)(p - f.s);
        if (j + 2 > f.n || (f.s[j + 1] != 'a' && f.s[j + 1] != 'A') ||
            (j + 2 < f.n && !is_blank(f.s[j + 2]) && f.s[j + 2] != '>' &&
             f.s[j + 2] != '/')) {
            i = j + 1;
            continue;
        }
        size_t vs, ve;
        i = a_href(&f, j + 2, &vs, &ve);
        if (ve <= vs || !value_marked(html, &f, vs, ve) ||
            nlinks >= RENDER_LINKS_MAX)
            continue;
        struct cut a = { .pos = vs, .kind = RENDER_SEG_LINK,
                         .link = (uint16_t)nlinks,
                         .check = value_check(c, html, &f, vs, ve) };
        struct cut z = { .pos = ve, .kind = RENDER_SEG_LINK_END };
        if ((rc = add_cut(&cuts, &ncuts, &capcuts, a)) ||
            (rc = add_cut(&cuts, &ncuts, &capcuts, z)))
            goto done;
        nlinks++;
    }
    if (track & RENDER_TRACK_OPENS) {
        size_t at = f.n;
        for (size_t i = f.n; i-- > 0;)
            if (f.s[i] == '<' && i + 6 <= f.n &&
                !strncasecmp(f.s + i, "</body", 6)) {
                at = i;
                break;
            }
        struct cut px = { .pos = at, .kind = RENDER_SEG_PIXEL };
        if ((rc = add_cut(&cuts, &ncuts, &capcuts, px)))
            goto done;
    }
    if (!ncuts)
        goto done;
    qsort(cuts, ncuts, sizeof *cuts, cut_cmp);
    size_t e = 0;
    for (size_t i = 0; i < html->n; i++) {
        struct render_seg s = html->v[i];
        size_t s0 = f.start[i], s1 = f.start[i + 1], pos = s0;
        while (e < ncuts && cuts[e].pos <= s0)
            if ((rc = put_cut(&out, &cuts[e++])))
                goto done;
        if (s.kind != RENDER_SEG_LIT) {
            if ((rc = render_seg_add(&out, s)))
                goto done;
            continue;
        }
        while (e < ncuts && cuts[e].pos < s1) {
            struct render_seg piece = s;
            piece.off = s.off + (uint32_t)(pos - s0);
            piece.len = (uint32_t)(cuts[e].pos - pos);
            if ((piece.len && (rc = render_seg_add(&out, piece))) ||
                (rc = put_cut(&out, &cuts[e])))
                goto done;
            pos = cuts[e++].pos;
        }
        struct render_seg rest = s;
        rest.off = s.off + (uint32_t)(pos - s0);
        rest.len = (uint32_t)(s1 - pos);
        if (rest.len && (rc = render_seg_add(&out, rest)))
            goto done;
    }
    while (e < ncuts)
        if ((rc = put_cut(&out, &cuts[e++])))
            goto done;
    free(html->v);
    *html = out;
    out.v = NULL;
done:
    free(out.v);
    free(cuts);
    free(f.s);
    free(f.start);
    return rc;
}

/* Value of hex digit c, or -1. */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Append code point cp as UTF-8 to b. */
static int put_utf8(struct rbuf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return render_buf_put(b, u, n);
}

int render_track_unescape(struct rbuf *b, const char *s, size_t n)
{
    static const struct {
        const char *name;
        char c;
    } named[] = { { "amp", '&' }, { "lt", '<' }, { "gt", '>' },
                  { "quot", '"' }, { "apos", '\'' } };
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t j = amp ? (size_t)(amp - s) : n;
        int rc = render_buf_put(b, s + i, j - i);
        if (rc || j == n)
            return rc;
        const char *semi = memchr(s + j, ';', n - j < 12 ? n - j : 12);
        size_t el = semi ? (size_t)(semi - s) - j - 1 : 0;
        const char *ent = s + j + 1;
        long cp = -1;
        if (el >= 2 && ent[0] == '#') {
            unsigned long v = 0;
            bool hex = ent[1] == 'x' || ent[1] == 'X';
            size_t k = hex ? 2 : 1;
            bool ok = k < el;
            for (; ok && k < el; k++) {
                int d = hex ? hexval(ent[k])
                            : ent[k] >= '0' && ent[k] <= '9' ? ent[k] - '0'
                                                             : -1;
                ok = d >= 0 && v < 0x110000;
                v = v * (hex ? 16 : 10) + (unsigned long)(ok ? d : 0);
            }
            if (ok && v > 0 && v < 0x110000 && (v < 0xd800 || v > 0xdfff))
                cp = (long)v;
        } else {
            for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
                if (el == strlen(named[k].name) &&
                    !memcmp(ent, named[k].name, el))
                    cp = named[k].c;
        }
        if (cp < 0) {
            if ((rc = render_buf_put(b, "&", 1)))
                return rc;
            i = j + 1;
            continue;
        }
        if ((rc = put_utf8(b, (unsigned long)cp)))
            return rc;
        i = j + el + 2;
    }
    return 0;
}

int render_track_url_ok(const char *u, size_t n, const char *our_host)
{
    size_t k;
    if (n == 0 || n > RENDER_LINK_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
            return 0;
    if (n > 7 && !strncasecmp(u, "http://", 7))
        k = 7;
    else if (n > 8 && !strncasecmp(u, "https://", 8))
        k = 8;
    else
        return 0;
    size_t a = k;
    while (k < n && u[k] != '/' && u[k] != '?' && u[k] != '#' &&
           u[k] != '\\')
        k++;
    for (size_t i = a; i < k; i++)     /* user:password@ is not the host */
        if (u[i] == '@')
            a = i + 1;
    size_t hl = k - a;
    if (hl == 0)
        return 0;
    /* the host without a port, against ours without its port */
    const char *colon = u[a] == '[' ? NULL : memchr(u + a, ':', hl);
    size_t h = colon ? (size_t)(colon - (u + a)) : hl;
    size_t ol = strcspn(our_host, ":");
    if (h == ol && !strncasecmp(u + a, our_host, ol))
        return 0;                      /* one of ours already */
    return 1;
}

int render_track_location(const char *url, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        bool esc = ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '<' ||
                   ch == '>' || ch == '\\' || ch == '^' || ch == '`' ||
                   ch == '{' || ch == '|' || ch == '}';
        if (o + (esc ? 3 : 1) >= cap)
            return -ENOSPC;
        if (esc) {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    if (o >= cap)
        return -ENOSPC;
    out[o] = 0;
    return 0;
}
