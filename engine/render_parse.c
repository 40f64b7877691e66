/*
 * render_parse.c - template text to segments.
 *
 * DESCRIPTION
 *   render_tpl_parse() cuts a template part into literal segments and merge
 *   tags ({{name}}, {{name|default}}, "{{{{" for a literal "{{"; see
 *   render.h).  Literal text is copied into the compile pool; field names
 *   are folded to lowercase and numbered (slots) so that rendering resolves
 *   each distinct name once per recipient.
 *
 * OWNERSHIP
 *   Segment lists are malloc'ed arrays owned by whoever holds the list.
 *
 * DIAGNOSTICS
 *   RENDER_E_SYNTAX with "part: line L, column C: reason" in c->err for a
 *   malformed tag; RENDER_E_TOOBIG for more than RENDER_TAGS_MAX tags,
 *   RENDER_SLOTS_MAX names or a name or default over its cap; -ENOMEM.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render_int.h"

void render_tpl_error(struct tplc *c, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

int render_seg_add(struct render_seglist *l, struct render_seg s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct render_seg *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

int render_seg_append(struct render_seglist *l,
                      const struct render_seglist *src, size_t from,
                      size_t to)
{
    for (size_t i = from; i < to; i++) {
        int rc = render_seg_add(l, src->v[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int render_seg_lit(struct tplc *c, struct render_seglist *l, const char *s,
                   size_t n)
{
    if (n == 0)
        return 0;
    struct render_seg *last = l->n ? &l->v[l->n - 1] : NULL;
    size_t off = c->pool.len;
    int rc = render_buf_put(&c->pool, s, n);
    if (rc)
        return rc;
    if (last && last->kind == RENDER_SEG_LIT && last->off + last->len == off) {
        last->len += (uint32_t)n;
        return 0;
    }
    return render_seg_add(l, (struct render_seg){
        .off = (uint32_t)off, .len = (uint32_t)n, .kind = RENDER_SEG_LIT });
}

/* Is c allowed in a field name? */
static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Is c a blank allowed around names and defaults? */
static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Report a syntax error at byte offset at of src. */
static int syntax(struct tplc *c, const char *part, const char *src,
                  size_t at, const char *why)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    render_tpl_error(c, "%s: line %zu, column %zu: %s", part, line, col, why);
    return RENDER_E_SYNTAX;
}

/* The slot of a field name (lowercased into lc), adding it if new. */
static int slot_of(struct tplc *c, const char *lc, size_t n, uint16_t *slot)
{
    for (size_t i = 0; i < c->nslots; i++) {
        if (c->slot_len[i] == n &&
            memcmp(c->pool.p + c->slot_off[i], lc, n) == 0) {
            *slot = (uint16_t)i;
            return 0;
        }
    }
    if (c->nslots == RENDER_SLOTS_MAX) {
        render_tpl_error(c, "more than %d distinct field names",
                         RENDER_SLOTS_MAX);
        return RENDER_E_TOOBIG;
    }
    size_t off = c->pool.len;
    int rc = render_buf_put(&c->pool, lc, n);
    if (rc)
        return rc;
    c->slot_off[c->nslots] = off;
    c->slot_len[c->nslots] = n;
    *slot = (uint16_t)c->nslots++;
    return 0;
}

/* Parse the inside of one tag, src[a..z), which started at offset at. */
static int parse_tag(struct tplc *c, const char *part, const char *src,
                     size_t at, size_t a, size_t z, struct render_seglist *out)
{
    while (a < z && blank(src[a]))
        a++;
    size_t name = a;
    while (a < z && name_char((unsigned char)src[a]))
        a++;
    size_t nlen = a - name;
    while (a < z && blank(src[a]))
        a++;
    if (a < z && src[a] != '|')
        return syntax(c, part, src, at,
                      nlen ? "bad character in field name (allowed: "
                             "A-Z a-z 0-9 _ . -)"
                           : "bad field name (allowed: A-Z a-z 0-9 _ . -)");
    if (nlen == 0)
        return syntax(c, part, src, at, "empty field name");
    if (nlen > RENDER_NAME_MAX)
        return syntax(c, part, src, at, "field name longer than 64");
    size_t def = z, dlen = 0;
    if (a < z) {
        def = a + 1;
        while (def < z && blank(src[def]))
            def++;
        size_t e = z;
        while (e > def && blank(src[e - 1]))
            e--;
        dlen = e - def;
        if (dlen > RENDER_DEFAULT_MAX)
            return syntax(c, part, src, at, "default longer than 1024");
    }
    if (++c->ntags > RENDER_TAGS_MAX) {
        render_tpl_error(c, "more than %d merge tags", RENDER_TAGS_MAX);
        return RENDER_E_TOOBIG;
    }
    char lc[RENDER_NAME_MAX];
    for (size_t i = 0; i < nlen; i++) {
        char ch = src[name + i];
        lc[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    struct render_seg s = { .kind = RENDER_SEG_FIELD };
    int rc = 0;
    if (nlen == 5 && memcmp(lc, "email", 5) == 0)
        s.kind = RENDER_SEG_EMAIL;
    else if (nlen == 15 && memcmp(lc, "unsubscribe_url", 15) == 0)
        s.kind = RENDER_SEG_UNSUB;
    else
        rc = slot_of(c, lc, nlen, &s.slot);
    if (rc)
        return rc;
    s.off = (uint32_t)c->pool.len;
    s.len = (uint32_t)dlen;
    rc = render_buf_put(&c->pool, src + def, dlen);
    return rc ? rc : render_seg_add(out, s);
}

int render_tpl_parse(struct tplc *c, const char *part, const char *src,
                     size_t n, struct render_seglist *out)
{
    size_t i = 0, lit = 0;
    int rc;
    for (;;) {
        const char *p = i < n ? memchr(src + i, '{', n - i) : NULL;
        if (p == NULL)
            break;
        size_t j = (size_t)(p - src);
        if (j + 1 >= n || src[j + 1] != '{') {
            i = j + 1;
            continue;
        }
        if (j + 3 < n && src[j + 2] == '{' && src[j + 3] == '{') {
            /* "{{{{": a literal "{{" */
            if ((rc = render_seg_lit(c, out, src + lit, j + 2 - lit)))
                return rc;
            lit = i = j + 4;
            continue;
        }
        const char *q = memmem(src + j + 2, n - j - 2, "}}", 2);
        if (q == NULL)
            return syntax(c, part, src, j, "unterminated {{ (no }})");
        if ((rc = render_seg_lit(c, out, src + lit, j - lit)))
            return rc;
        size_t z = (size_t)(q - src);
        if ((rc = parse_tag(c, part, src, j, j + 2, z, out)))
            return rc;
        lit = i = z + 2;
    }
    return render_seg_lit(c, out, src + lit, n - lit);
}
