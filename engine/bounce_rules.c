/*
 * bounce_rules.c - parse and apply bounce classification rules.
 *
 * DESCRIPTION
 *   Owns rule sets (bounce_rules.h has the format): each rule keeps its
 *   category, two glob patterns, an optional compiled POSIX regex and its
 *   line as written.  The shipped defaults are the text of
 *   tools/bounce-rules.default, embedded at build time
 *   (bounce_rules_default_src) and compiled once under pthread_once.
 *   Matching is a linear walk, first match wins; it allocates nothing and
 *   is safe from several threads on one set.
 *
 * DIAGNOSTICS
 *   Parse errors name the source and line: an unknown category, a missing
 *   field, a text field that is neither "*" nor /REGEX/flags, a regex
 *   regcomp() refuses (with its message) or one too large once spelt out
 *   (rule_regex.c), an overlong line, too many
 *   rules.
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_rules.h"
#include "queue.h"
#include "rule_regex.h"

extern const char bounce_rules_default_src[];

#define FILE_MAX (4u << 20)

struct rule {
    int category;
    char code[8];
    char enhanced[16];
    bool has_re;
    regex_t re;
    unsigned line;
    char *text;             /* the line as written */
};

struct bounce_rules {
    struct rule *v;
    size_t n, cap;
    char *name;
};

int bounce_category_parse(const char *name)
{
    /* admin is the category of `sluice queue bounce`, not of a reply */
    for (int c = 1; c < QUEUE_CAT_COUNT; c++)
        if (c != QUEUE_CAT_ADMIN && !strcmp(name, queue_category_name(c)))
            return c;
    return -1;
}

/* Glob match: '*' any run, 'x' one digit when digits is set. */
static bool glob_match(const char *p, const char *s, bool digits)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (p[1] == '*')
                p++;
            if (!p[1])
                return true;
            for (; *s; s++)
                if (glob_match(p + 1, s, digits))
                    return true;
            return false;
        }
        if (!*s)
            return false;
        if (digits && (*p == 'x' || *p == 'X')) {
            if (*s < '0' || *s > '9')
                return false;
        } else if (*p != *s) {
            return false;
        }
    }
    return *s == 0;
}

void bounce_rules_free(struct bounce_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].has_re)
            regfree(&r->v[i].re);
        free(r->v[i].text);
    }
    free(r->v);
    free(r->name);
    free(r);
}

size_t bounce_rules_count(const struct bounce_rules *r)
{
    return r ? r->n : 0;
}

/* Next whitespace-separated field of *p into out (cap bytes); 0 if none
 * or too long. */
static size_t next_field(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *b = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    size_t n = (size_t)(s - b);
    *p = s;
    if (!n || n >= cap)
        return 0;
    memcpy(out, b, n);
    out[n] = 0;
    return n;
}

/* Check a code pattern: digits, 'x', '*'. */
static bool code_pattern_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == 'x' || *s == 'X' ||
              *s == '*'))
            return false;
    return true;
}

/* Check an enhanced-code pattern: digits, dots, '*'. */
static bool enh_pattern_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == '*'))
            return false;
    return true;
}

/* Parse one non-comment line (NUL-terminated, no newline) into r. */
static int parse_line(struct bounce_rules *r, const char *line, unsigned ln,
                      char *err, size_t errlen)
{
    char cat[32];
    struct rule ru = { .line = ln };
    const char *p = line;
#define FAIL(...)                                                            \
    do {                                                                     \
        int o_ = snprintf(err, errlen, "%s:%u: ", r->name, ln);              \
        if (o_ >= 0 && (size_t)o_ < errlen)                                  \
            snprintf(err + o_, errlen - (size_t)o_, __VA_ARGS__);            \
        return -EINVAL;                                                      \
    } while (0)
    if (!next_field(&p, cat, sizeof cat) ||
        (ru.category = bounce_category_parse(cat)) < 0)
        FAIL("unknown category '%.31s'", cat[0] ? cat : "");
    if (!next_field(&p, ru.code, sizeof ru.code) || !code_pattern_ok(ru.code))
        FAIL("reply code: want a pattern like 550, 5xx or *");
    if (!next_field(&p, ru.enhanced, sizeof ru.enhanced) ||
        !enh_pattern_ok(ru.enhanced))
        FAIL("enhanced code: want a pattern like 5.1.1, 5.7.* or *");
    while (*p == ' ' || *p == '\t')
        p++;
    size_t tl = strlen(p);
    while (tl && (p[tl - 1] == ' ' || p[tl - 1] == '\t' || p[tl - 1] == '\r'))
        tl--;
    if (tl == 1 && p[0] == '*') {
        ru.has_re = false;
    } else if (tl >= 2 && p[0] == '/') {
        const char *end = p + tl;
        const char *close = end - 1;
        while (close > p && *close != '/')
            close--;
        if (close == p)
            FAIL("text: /REGEX/ lacks its closing slash");
        int cflags = REG_EXTENDED | REG_ICASE | REG_NOSUB;
        for (const char *f = close + 1; f < end; f++) {
            if (*f == 'c')
                cflags &= ~REG_ICASE;
            else if (*f != 'i')
                FAIL("text: unknown regex flag '%c' (i, c)", *f);
        }
        size_t rl = (size_t)(close - p - 1);
        if (rl == 0)
            FAIL("text: empty regex");
        char re[BOUNCE_RULE_MAX];
        memcpy(re, p + 1, rl);
        re[rl] = 0;
        char why[160];
        if (rule_regex_compile(&ru.re, re, cflags, why, sizeof why))
            FAIL("regex: %s", why);
        ru.has_re = true;
    } else {
        FAIL("text: want * or /REGEX/flags");
    }
#undef FAIL
    if (r->n >= BOUNCE_RULES_MAX) {
        if (ru.has_re)
            regfree(&ru.re);
        snprintf(err, errlen, "%s:%u: more than %d rules", r->name, ln,
                 BOUNCE_RULES_MAX);
        return -EINVAL;
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        struct rule *nv = realloc(r->v, nc * sizeof *nv);
        if (!nv) {
            if (ru.has_re)
                regfree(&ru.re);
            return -ENOMEM;
        }
        r->v = nv;
        r->cap = nc;
    }
    size_t ll = strlen(line);
    while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' '))
        ll--;
    if (!(ru.text = malloc(ll + 1))) {
        if (ru.has_re)
            regfree(&ru.re);
        return -ENOMEM;
    }
    memcpy(ru.text, line, ll);
    ru.text[ll] = 0;
    r->v[r->n++] = ru;
    return 0;
}

int bounce_rules_parse(struct bounce_rules **out, const char *text,
                       const char *name, char *err, size_t errlen)
{
    struct bounce_rules *r = calloc(1, sizeof *r);
    size_t nl = strlen(name ? name : "rules");
    int rc = 0;
    *out = NULL;
    if (errlen)
        err[0] = 0;
    if (!r || !(r->name = malloc(nl + 1))) {
        free(r);
        return -ENOMEM;
    }
    memcpy(r->name, name ? name : "rules", nl + 1);
    unsigned ln = 0;
    for (const char *s = text; *s && !rc;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        ln++;
        if (len >= BOUNCE_RULE_MAX) {
            snprintf(err, errlen, "%s:%u: line longer than %d bytes",
                     r->name, ln, BOUNCE_RULE_MAX - 1);
            rc = -EINVAL;
            break;
        }
        char line[BOUNCE_RULE_MAX];
        memcpy(line, s, len);
        line[len] = 0;
        const char *b = line;
        while (*b == ' ' || *b == '\t' || *b == '\r')
            b++;
        if (*b && *b != '#')
            rc = parse_line(r, b, ln, err, errlen);
        s = e ? e + 1 : s + len;
    }
    if (rc) {
        bounce_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int bounce_rules_load(struct bounce_rules **out, const char *path,
                      char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > FILE_MAX || memchr(buf, 0, n)) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error"
                 : n > FILE_MAX ? "larger than 4 MB" : "contains a NUL byte");
        free(buf);
        return bad ? -EIO : -EINVAL;
    }
    buf[n] = 0;
    int rc = bounce_rules_parse(out, buf, path, err, errlen);
    free(buf);
    return rc;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static struct bounce_rules *default_rules;

/* Compile the shipped defaults (once). */
static void default_init(void)
{
    char err[256];
    if (bounce_rules_parse(&default_rules, bounce_rules_default_src,
                           "default", err, sizeof err) == -EINVAL) {
        /* the build's own text must parse: a broken invariant */
        fprintf(stderr, "sluice: shipped bounce rules: %s\n", err);
        abort();
    }
}

const struct bounce_rules *bounce_rules_default(void)
{
    pthread_once(&default_once, default_init);
    return default_rules;
}

const char *bounce_rules_default_text(void)
{
    return bounce_rules_default_src;
}

/* The first rule of r matching; its index or -1. */
static long first_match(const struct bounce_rules *r, const char *code,
                        const char *enh, const char *text)
{
    for (size_t i = 0; r && i < r->n; i++) {
        const struct rule *ru = &r->v[i];
        if (!glob_match(ru->code, code, true))
            continue;
        if (strcmp(ru->enhanced, "*") &&
            (!*enh || !glob_match(ru->enhanced, enh, false)))
            continue;
        if (ru->has_re && regexec(&ru->re, text, 0, NULL, 0))
            continue;
        return (long)i;
    }
    return -1;
}

int bounce_classify(const struct bounce_rules *r, int code,
                    const char *enhanced, const char *text,
                    struct bounce_match *m)
{
    char cs[8] = "";
    const char *e = enhanced ? enhanced : "";
    const char *t = text ? text : "";
    struct bounce_match dummy;
    if (!m)
        m = &dummy;
    if (code > 0 && code < 1000)
        snprintf(cs, sizeof cs, "%d", code);
    const struct bounce_rules *sets[2] = { r, bounce_rules_default() };
    for (int s = 0; s < 2; s++) {
        long i = first_match(sets[s], cs, e, t);
        if (i >= 0) {
            const struct rule *ru = &sets[s]->v[i];
            *m = (struct bounce_match){ ru->category, sets[s]->name, ru->line,
                                        (unsigned)i + 1, ru->text };
            return ru->category;
        }
    }
    int cat = code == 0 ? QUEUE_CAT_NO_ANSWER
              : code == 550 || code == 553 ? QUEUE_CAT_BAD_MAILBOX
              : QUEUE_CAT_OTHER;
    *m = (struct bounce_match){ cat, "fallback", 0, 0, "" };
    return cat;
}
