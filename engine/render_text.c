/*
 * render_text.c - derive the plain-text template from the html one.
 *
 * DESCRIPTION
 *   Runs once per campaign, at compile time, over the html template's
 *   segments: literal text goes through a small HTML tokenizer, merge tags
 *   pass through as merge tags, so rendering the derived template costs
 *   the same as rendering a written one.  Tags are stripped; <head>,
 *   <script>, <style> and <title> are dropped with their content; blanks
 *   collapse; block elements start new lines (paragraphs and headings a
 *   blank line), <br> breaks a line, <li> starts "- "; the common named
 *   entities and all numeric ones are decoded; a link becomes
 *   "text (url)" unless the text already is the url.  Simple on purpose:
 *   this is the fallback for campaigns that bring no text part.
 *
 * DIAGNOSTICS
 *   -ENOMEM, or RENDER_E_TOOBIG when the derived text or a link's url
 *   passes its cap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render_int.h"

#define HREF_MAX (64u << 10)

enum {
    T_TEXT, T_LT, T_NAME, T_ATTRS, T_ANAME, T_AEQ, T_AVAL0, T_AVAL,
    T_BANG, T_BANG2, T_COMMENT, T_DECL, T_RAW
};

struct h2t {
    struct tplc *c;
    struct render_seglist *out;
    int state;
    /* layout of the output */
    int started, nl_run, want_nl, space, pre;
    /* the tag being read */
    char tag[16];
    size_t taglen;
    int closing;
    char attr[8];
    size_t attrlen;
    char quote;
    int capture;            /* reading the href value of an <a> */
    /* an entity being read (after '&') */
    int in_ent, ent_href;
    char ent[12];
    size_t entlen;
    int dashes;             /* '-' seen in a comment */
    /* dropped content */
    int skip_head;
    char raw[16];           /* rawtext element whose end tag we wait for */
    size_t rawlen, rawmatch;
    /* the current link */
    struct render_seglist href;
    struct rbuf hreftext;
    int in_a, href_tags;
    size_t a_pool, a_seg;   /* pool and output position at <a> */
    int a_tags;
};

/* ---- output ---- */

/* Write pending line breaks or a pending blank before visible text. */
static int flush(struct h2t *h)
{
    int rc = 0;
    if (h->started && h->want_nl > h->nl_run) {
        int n = h->want_nl > 3 ? 3 : h->want_nl;
        for (; h->nl_run < n && rc == 0; h->nl_run++)
            rc = render_seg_lit(h->c, h->out, "\n", 1);
    } else if (h->started && h->space && h->nl_run == 0) {
        rc = render_seg_lit(h->c, h->out, " ", 1);
    }
    h->want_nl = 0;
    h->space = 0;
    return rc;
}

/* Write visible text bytes. */
static int out_text(struct h2t *h, const char *s, size_t n)
{
    int rc = flush(h);
    if (rc == 0)
        rc = render_seg_lit(h->c, h->out, s, n);
    h->started = 1;
    h->nl_run = 0;
    return rc;
}

/* Write a merge tag as visible text. */
static int out_tag(struct h2t *h, struct render_seg s)
{
    int rc = flush(h);
    if (rc == 0)
        rc = render_seg_add(h->out, s);
    h->started = 1;
    h->nl_run = 0;
    h->a_tags++;
    return rc;
}

/* Ask for at least n line breaks before the next text. */
static void block(struct h2t *h, int n)
{
    if (h->want_nl < n)
        h->want_nl = n;
    h->space = 0;
}

/* One more line break than already wanted or written (<br>, pre). */
static void line_break(struct h2t *h)
{
    h->want_nl = (h->want_nl > h->nl_run ? h->want_nl : h->nl_run) + 1;
    h->space = 0;
}

/* Append bytes to the captured href. */
static int href_put(struct h2t *h, const char *s, size_t n)
{
    size_t off = h->hreftext.len;
    int rc = render_buf_put(&h->hreftext, s, n);
    if (rc)
        return rc;
    struct render_seg *last = h->href.n ? &h->href.v[h->href.n - 1] : NULL;
    if (last && last->kind == RENDER_SEG_LIT && last->off + last->len == off) {
        last->len += (uint32_t)n;
        return 0;
    }
    return render_seg_add(&h->href, (struct render_seg){ .off = (uint32_t)off,
                                            .len = (uint32_t)n });
}

/* Send bytes to where they belong now: the href or the text. */
static int put(struct h2t *h, int to_href, const char *s, size_t n)
{
    if (to_href)
        return href_put(h, s, n);
    if (h->skip_head)
        return 0;
    return out_text(h, s, n);
}

/* ---- entities ---- */

static const struct { const char *name; unsigned cp; } entities[] = {
    { "amp", '&' },       { "lt", '<' },          { "gt", '>' },
    { "quot", '"' },      { "apos", '\'' },       { "nbsp", ' ' },
    { "copy", 0xA9 },     { "reg", 0xAE },        { "trade", 0x2122 },
    { "hellip", 0x2026 }, { "mdash", 0x2014 },    { "ndash", 0x2013 },
    { "lsquo", 0x2018 },  { "rsquo", 0x2019 },    { "ldquo", 0x201C },
    { "rdquo", 0x201D },  { "bull", 0x2022 },     { "middot", 0xB7 },
    { "euro", 0x20AC },   { "pound", 0xA3 },      { "laquo", 0xAB },
    { "raquo", 0xBB },    { "zwnj", 0 },          { "zwj", 0 },
    { "shy", 0 },
};

/* Code point of entity name ent (without & and ;), or -1 if unknown. */
static long entity_cp(const char *ent, size_t n)
{
    if (n >= 2 && ent[0] == '#') {
        int hex = ent[1] == 'x' || ent[1] == 'X';
        size_t i = hex ? 2 : 1;
        if (i == n)
            return -1;
        unsigned long v = 0;
        for (; i < n; i++) {
            int d;
            char ch = ent[i];
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (hex && ch >= 'a' && ch <= 'f')
                d = ch - 'a' + 10;
            else if (hex && ch >= 'A' && ch <= 'F')
                d = ch - 'A' + 10;
            else
                return -1;
            v = v * (hex ? 16 : 10) + (unsigned long)d;
            if (v > 0x10FFFF)
                return 0xFFFD;
        }
        if (v == 0xA0)
            return ' ';
        if ((v >= 0xD800 && v <= 0xDFFF) || v == 0)
            return 0xFFFD;
        return (long)v;
    }
    for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
        if (strlen(entities[i].name) == n &&
            memcmp(entities[i].name, ent, n) == 0)
            return entities[i].cp;
    return -1;
}

/* End the entity being read: decoded if known, else as written. */
static int ent_end(struct h2t *h, int semicolon)
{
    h->in_ent = 0;
    long cp = semicolon ? entity_cp(h->ent, h->entlen) : -1;
    if (cp < 0) {
        int rc = put(h, h->ent_href, "&", 1);
        if (rc == 0)
            rc = put(h, h->ent_href, h->ent, h->entlen);
        if (rc == 0 && semicolon)
            rc = put(h, h->ent_href, ";", 1);
        return rc;
    }
    char u[4];
    size_t n;
    if (cp == 0)
        return 0;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return put(h, h->ent_href, u, n);
}

/* ---- links ---- */

/* Trim blanks around s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n && (*s == ' ' || *s == '\n')) {
        s++;
        (*n)--;
    }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\n'))
        (*n)--;
    return s;
}

/* Is the link text, blanks aside, just the merge tag s? */
static int same_tag(const struct h2t *h, struct render_seg s)
{
    int seen = 0;
    size_t i = h->a_seg;
    if (i > 0 && h->out->v[i - 1].kind == RENDER_SEG_LIT)
        i--;        /* link text may have been merged into it */
    for (; i < h->out->n; i++) {
        const struct render_seg *o = &h->out->v[i];
        if (o->kind != RENDER_SEG_LIT) {
            if (o->kind != s.kind || o->slot != s.slot)
                return 0;
            seen = 1;
            continue;
        }
        /* a literal may have begun before the link: look at ours only */
        size_t from = o->off < h->a_pool ? h->a_pool - o->off : 0;
        for (size_t k = from; k < o->len; k++)
            if (h->c->pool.p[o->off + k] != ' ' &&
                h->c->pool.p[o->off + k] != '\n')
                return 0;
    }
    return seen;
}

/* </a>: write " (url)" after the link text unless it adds nothing. */
static int link_end(struct h2t *h)
{
    h->in_a = 0;
    if (h->href.n == 0)
        return 0;
    const char *u = h->hreftext.p;
    size_t un = h->hreftext.len;
    if (h->href_tags == 0) {
        u = trim(u, &un);
        if (un == 0 || u[0] == '#' ||
            (un >= 11 && !strncasecmp(u, "javascript:", 11)))
            goto done;
        size_t tn = h->c->pool.len - h->a_pool;
        const char *t = trim(h->c->pool.p + h->a_pool, &tn);
        if (h->a_tags == 0 &&
            ((tn == un && memcmp(t, u, un) == 0) ||
             (un == tn + 7 && !strncasecmp(u, "mailto:", 7) &&
              memcmp(u + 7, t, tn) == 0)))
            goto done;
    }
    if (h->href.n == 1 && h->href_tags == 1 && h->a_tags == 1 &&
        same_tag(h, h->href.v[0]))
        goto done;
    int empty = h->a_tags == 0 && h->c->pool.len == h->a_pool;
    int rc = out_text(h, empty ? "" : " (", empty ? 0 : 2);
    for (size_t i = 0; i < h->href.n && rc == 0; i++) {
        struct render_seg s = h->href.v[i];
        if (s.kind == RENDER_SEG_LIT)
            rc = out_text(h, h->hreftext.p + s.off, s.len);
        else
            rc = out_tag(h, s);
    }
    if (rc == 0 && !empty)
        rc = out_text(h, ")", 1);
    if (rc)
        return rc;
done:
    h->href.n = 0;
    h->hreftext.len = 0;
    h->href_tags = 0;
    return 0;
}

/* ---- tags ---- */

/* Is the tag just read named name? */
static int tag_is(const struct h2t *h, const char *name)
{
    return strlen(name) == h->taglen && memcmp(h->tag, name, h->taglen) == 0;
}

/* Is the tag one of the names in the NUL-separated list? */
static int tag_in(const struct h2t *h, const char *list)
{
    for (; *list; list += strlen(list) + 1)
        if (tag_is(h, list))
            return 1;
    return 0;
}

/* A whole tag has been read ('>'): act on it. */
static int tag_end(struct h2t *h)
{
    h->state = T_TEXT;
    h->capture = 0;
    if (h->skip_head) {
        if (h->closing && tag_is(h, "head"))
            h->skip_head = 0;
        else if (!h->closing && tag_in(h, "script\0style\0title\0"))
            goto raw;
        return 0;
    }
    if (!h->closing && tag_is(h, "head")) {
        h->skip_head = 1;
        return 0;
    }
    if (!h->closing && tag_in(h, "script\0style\0title\0"))
        goto raw;
    if (tag_is(h, "br")) {
        line_break(h);
    } else if (tag_in(h, "p\0h1\0h2\0h3\0h4\0h5\0h6\0blockquote\0table\0ul\0"
                         "ol\0pre\0hr\0dl\0")) {
        block(h, 2);
        if (tag_is(h, "pre"))
            h->pre += h->closing ? (h->pre > 0 ? -1 : 0) : 1;
    } else if (tag_in(h, "div\0tr\0li\0section\0article\0header\0footer\0"
                         "nav\0dt\0dd\0center\0form\0address\0body\0")) {
        block(h, 1);
        if (tag_is(h, "li") && !h->closing)
            return out_text(h, "- ", 2);
    } else if (tag_in(h, "td\0th\0")) {
        if (!h->closing)
            h->space = 1;
    } else if (tag_is(h, "a")) {
        if (h->closing)
            return h->in_a ? link_end(h) : 0;
        h->in_a = 1;
        h->a_pool = h->c->pool.len;
        h->a_seg = h->out->n;
        h->a_tags = 0;
    }
    return 0;
raw:
    memcpy(h->raw, "</", 2);
    memcpy(h->raw + 2, h->tag, h->taglen);
    h->rawlen = h->taglen + 2;
    h->rawmatch = 0;
    h->state = T_RAW;
    return 0;
}

/* Start reading an attribute value. */
static void aval_begin(struct h2t *h, char quote)
{
    h->quote = quote;
    h->state = T_AVAL;
    h->capture = !h->closing && tag_is(h, "a") && h->attrlen == 4 &&
                 memcmp(h->attr, "href", 4) == 0;
    if (h->capture) {
        h->href.n = 0;
        h->hreftext.len = 0;
        h->href_tags = 0;
    }
}

/* Is c a blank in HTML? */
static int hblank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

/* Lowercase of an ASCII letter. */
static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Feed one character of literal html. */
static int feed(struct h2t *h, char ch)
{
    if (h->in_ent) {
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || (ch == '#' && h->entlen == 0);
        if (alnum && h->entlen < sizeof(h->ent)) {
            h->ent[h->entlen++] = ch;
            return 0;
        }
        int rc = ent_end(h, ch == ';');
        if (rc || ch == ';')
            return rc;
    }
    switch (h->state) {
    case T_TEXT:
        if (ch == '<') {
            h->state = T_LT;
        } else if (ch == '&') {
            h->in_ent = 1;
            h->ent_href = 0;
            h->entlen = 0;
        } else if (h->pre && (ch == '\n' || ch == '\r')) {
            if (ch == '\n' && !h->skip_head)
                line_break(h);
        } else if (hblank(ch) && !h->pre) {
            h->space = 1;
        } else {
            return put(h, 0, &ch, 1);
        }
        return 0;
    case T_LT:
        h->taglen = 0;
        h->attrlen = 0;
        h->closing = 0;
        if (ch == '/') {
            h->closing = 1;
            h->state = T_NAME;
        } else if (ch == '!') {
            h->state = T_BANG;
        } else if (ch == '?') {
            h->state = T_DECL;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            h->tag[h->taglen++] = lower(ch);
            h->state = T_NAME;
        } else {
            h->state = T_TEXT;
            int rc = put(h, 0, "<", 1);
            return rc ? rc : feed(h, ch);
        }
        return 0;
    case T_NAME:
        if (ch == '>')
            return tag_end(h);
        if (hblank(ch) || ch == '/')
            h->state = T_ATTRS;
        else if (h->taglen < sizeof(h->tag))
            h->tag[h->taglen++] = lower(ch);
        else
            h->taglen = sizeof(h->tag) + 1; /* longer than any we know */
        return 0;
    case T_ATTRS:
        if (ch == '>')
            return tag_end(h);
        if (!hblank(ch) && ch != '/') {
            h->attrlen = 0;
            h->state = T_ANAME;
            return feed(h, ch);
        }
        return 0;
    case T_ANAME:
    case T_AEQ:
        if (ch == '>')
            return tag_end(h);
        if (ch == '=') {
            h->state = T_AVAL0;
        } else if (hblank(ch) || ch == '/') {
            h->state = ch == '/' ? T_ATTRS : T_AEQ;
        } else if (h->state == T_AEQ) {
            h->attrlen = 0;
            h->state = T_ANAME;
            return feed(h, ch);
        } else if (h->attrlen < sizeof(h->attr)) {
            h->attr[h->attrlen++] = lower(ch);
        } else {
            h->attrlen = sizeof(h->attr) + 1; /* too long: not href */
        }
        return 0;
    case T_AVAL0:
        if (hblank(ch))
            return 0;
        if (ch == '>')
            return tag_end(h);
        if (ch == '"' || ch == '\'') {
            aval_begin(h, ch);
            return 0;
        }
        aval_begin(h, 0);
        return feed(h, ch);
    case T_AVAL:
        if ((h->quote && ch == h->quote) || (!h->quote && hblank(ch))) {
            h->state = T_ATTRS;
            h->capture = 0;
            return 0;
        }
        if (!h->quote && ch == '>')
            return tag_end(h);
        if (!h->capture)
            return 0;
        if (ch == '&') {
            h->in_ent = 1;
            h->ent_href = 1;
            h->entlen = 0;
            return 0;
        }
        if (ch == '\r' || ch == '\n' || ch == '\t')
            return 0;
        return href_put(h, &ch, 1);
    case T_BANG:
        h->state = ch == '-' ? T_BANG2 : T_DECL;
        return ch == '>' ? (h->state = T_TEXT, 0) : 0;
    case T_BANG2:
        h->state = ch == '-' ? T_COMMENT : T_DECL;
        h->dashes = 0;
        return ch == '>' ? (h->state = T_TEXT, 0) : 0;
    case T_COMMENT:
        if (ch == '>' && h->dashes >= 2)
            h->state = T_TEXT;
        h->dashes = ch == '-' ? h->dashes + 1 : 0;
        return 0;
    case T_DECL:
        if (ch == '>')
            h->state = T_TEXT;
        return 0;
    case T_RAW:
        if (lower(ch) == h->raw[h->rawmatch]) {
            if (++h->rawmatch == h->rawlen) {
                h->closing = 1;
                h->taglen = h->rawlen - 2;
                memcpy(h->tag, h->raw + 2, h->taglen);
                h->state = T_ATTRS;
            }
        } else {
            h->rawmatch = ch == '<' ? 1 : 0;
        }
        return 0;
    }
    return 0;
}

/* A merge tag in the html: where it lands depends on the state. */
static int feed_tag(struct h2t *h, struct render_seg s)
{
    int rc = 0;
    if (h->in_ent)
        rc = ent_end(h, 0);
    if (rc)
        return rc;
    switch (h->state) {
    case T_LT:
        h->state = T_TEXT;
        if ((rc = put(h, 0, "<", 1)))
            return rc;
        /* fall through */
    case T_TEXT:
        return h->skip_head ? 0 : out_tag(h, s);
    case T_AVAL0:
        aval_begin(h, 0);
        /* fall through */
    case T_AVAL:
        if (h->capture) {
            h->href_tags++;
            return render_seg_add(&h->href, s);
        }
        return 0;
    default:
        return 0;
    }
}

int render_tpl_html_to_text(struct tplc *c,
                            const struct render_seglist *html,
                            struct render_seglist *out)
{
    struct h2t h = { .c = c, .out = out, .state = T_TEXT };
    h.hreftext.max = HREF_MAX;
    int rc = 0;
    for (size_t i = 0; i < html->n && rc == 0; i++) {
        struct render_seg s = html->v[i];
        if (s.kind != RENDER_SEG_LIT) {
            rc = feed_tag(&h, s);
            continue;
        }
        for (uint32_t k = 0; k < s.len && rc == 0; k++)
            rc = feed(&h, c->pool.p[s.off + k]);
    }
    if (rc == 0 && h.in_ent)
        rc = ent_end(&h, 0);
    if (rc == 0 && h.state == T_LT)
        rc = put(&h, 0, "<", 1);
    if (rc == 0 && h.in_a)
        rc = link_end(&h);
    free(h.href.v);
    free(h.hreftext.p);
    return rc;
}
