/*
 * cmd_bounces.c - `sluice bounces`: the bounce classification rules.
 *
 * SYNOPSIS
 *   bounces classify [--rules FILE] [--json] "550 5.1.1 <a@b>: user unknown"
 *   bounces rules [--rules FILE]
 *
 * DESCRIPTION
 *   classify splits an SMTP reply (continuation lines "550-..." are joined)
 *   into code, enhanced code and text the way sluiced does, and prints the
 *   category and the rule that matched: "FILE:LINE", "default #N (line L)"
 *   or "fallback" (engine/bounce_rules.h has the format and the order).
 *   rules prints the shipped defaults, or checks FILE and says how many
 *   rules it has.  Neither opens the spool.
 *
 * DIAGNOSTICS
 *   Exit 64 for bad usage or a reply without a 3-digit code, 78 for a
 *   rules file that does not load (its error names the line).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_rules.h"
#include "tool.h"

#define REPLY_MAX 4096

/* Print usage to stderr; returns the usage exit code. */
static int usage(void)
{
    fprintf(stderr,
            "usage: sluice bounces classify [--rules FILE] [--json] REPLY\n"
            "       sluice bounces rules [--rules FILE]\n");
    return TOOL_EX_USAGE;
}

/* Whether s starts with a 3-digit code followed by ' ', '-' or the end. */
static int reply_code(const char *s)
{
    if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
        s[2] < '0' || s[2] > '9' || (s[3] && s[3] != ' ' && s[3] != '-'))
        return 0;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* Length of an enhanced code "c.sss.ddd" at s, or 0. */
static size_t enhanced_len(const char *s, int code)
{
    const char *p = s;
    if (*p != '0' + code / 100 || p[1] != '.')
        return 0;
    p += 2;
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if (n < 1 || n > 3)
            return 0;
        p += n;
        if (part == 0 && *p++ != '.')
            return 0;
    }
    return *p == 0 || *p == ' ' ? (size_t)(p - s) : 0;
}

/* Split reply into code, enhanced code and text (joined over lines). */
static int split_reply(const char *reply, int *code, char *enh, size_t enhcap,
                       char *text, size_t textcap)
{
    size_t tl = 0;
    *code = 0;
    enh[0] = text[0] = 0;
    for (const char *s = reply; *s;) {
        const char *e = strpbrk(s, "\r\n");
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char line[REPLY_MAX];
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, s, len);
        line[len] = 0;
        int c = reply_code(line);
        if (len && !c)
            return -1;
        if (len) {
            if (!*code)
                *code = c;
            const char *p = line + (line[3] ? 4 : 3);
            size_t el = enhanced_len(p, c);
            if (el && el < enhcap) {
                if (!enh[0]) {
                    memcpy(enh, p, el);
                    enh[el] = 0;
                }
                p += el;
            }
            while (*p == ' ')
                p++;
            size_t pl = strlen(p);
            if (tl && tl + 1 < textcap)
                text[tl++] = ' ';
            if (pl > textcap - 1 - tl)
                pl = textcap - 1 - tl;
            memcpy(text + tl, p, pl);
            tl += pl;
            text[tl] = 0;
        }
        s += len;
        while (*s == '\r' || *s == '\n')
            s++;
    }
    return *code ? 0 : -1;
}

/* Load --rules FILE if given; prints the error.  0 or an exit code. */
static int load_rules(const char *path, struct bounce_rules **r)
{
    char err[512];
    *r = NULL;
    if (!path)
        return 0;
    if (bounce_rules_load(r, path, err, sizeof err)) {
        fprintf(stderr, "sluice: bounce rules: %s\n", err);
        return TOOL_EX_CONFIG;
    }
    return 0;
}

/* bounces classify */
static int do_classify(struct tool_ctx *ctx, const char *rules_path,
                       const char *reply)
{
    char enh[16], text[REPLY_MAX];
    int code;
    struct bounce_rules *r;
    if (split_reply(reply, &code, enh, sizeof enh, text, sizeof text)) {
        fprintf(stderr, "sluice: '%.80s' is not an SMTP reply (want a "
                        "3-digit code first)\n", reply);
        return TOOL_EX_USAGE;
    }
    int rc = load_rules(rules_path, &r);
    if (rc)
        return rc;
    struct bounce_match m;
    int cat = bounce_classify(r, code, enh, text, &m);
    char where[600];
    if (!strcmp(m.source, "fallback"))
        snprintf(where, sizeof where, "fallback (no rule matched: by the "
                                      "basic code)");
    else if (!strcmp(m.source, "default"))
        snprintf(where, sizeof where, "default #%u (line %u)", m.index,
                 m.line);
    else
        snprintf(where, sizeof where, "%s:%u", m.source, m.line);
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:i, s:s}",
                              "category", queue_category_name(cat),
                              "code", code, "enhanced", enh, "text", text,
                              "source", m.source, "match", where,
                              "line", (int)m.line, "rule", m.rule);
        if (!o || json_dumpf(o, stdout, JSON_COMPACT) < 0)
            rc = TOOL_EX_SOFTWARE;
        else
            putchar('\n');
        json_decref(o);
    } else {
        printf("category  %s\nrule      %s\n", queue_category_name(cat), where);
        if (m.rule[0])
            printf("          %s\n", m.rule);
    }
    bounce_rules_free(r);
    return rc;
}

/* bounces rules */
static int do_rules(const char *rules_path)
{
    struct bounce_rules *r;
    int rc = load_rules(rules_path, &r);
    if (rc)
        return rc;
    if (r)
        printf("%s: %zu rules ok (tried before the %zu shipped defaults)\n",
               rules_path, bounce_rules_count(r),
               bounce_rules_count(bounce_rules_default()));
    else
        fputs(bounce_rules_default_text(), stdout);
    bounce_rules_free(r);
    return 0;
}

int tool_bounces_main(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *rules_path = NULL, *reply = NULL;
    argc = tool_take_json(ctx, argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return argc < 2 ? TOOL_EX_USAGE : TOOL_OK;
    }
    const char *sub = argv[1];
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc)
            rules_path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return usage();
        else if (!reply)
            reply = argv[i];
        else
            return usage();
    }
    if (!strcmp(sub, "classify") && reply)
        return do_classify(ctx, rules_path, reply);
    if (!strcmp(sub, "rules") && !reply)
        return do_rules(rules_path);
    return usage();
}
