/*
 * cmd_bounces.c - `sluice bounces`: the bounce classification rules.
 *
 * SYNOPSIS
 *   bounces classify [--rules FILE] [--json] "550 5.1.1 <a@b>: user unknown"
 *   bounces rules [--rules FILE]
 *
 * DESCRIPTION
 *   classify splits an SMTP reply (continuation lines "550-..." are joined)
 *   into code, enhanced code and text with sluiced's own reply parser
 *   (engine/smtp_reply.h: the same checks, caps and text), and prints the
 *   category and the rule that matched: "FILE:LINE", "default #N (line L)"
 *   or "fallback" (engine/bounce_rules.h has the format and the order).
 *   rules prints the shipped defaults, or checks FILE and says how many
 *   rules it has.  Neither opens the spool.
 *
 * DIAGNOSTICS
 *   Exit 64 for bad usage or a reply sluiced would refuse (no 3-digit code
 *   2xx-5xx, a code that changes between lines, a line after the last
 *   one, a line over 2048 bytes, more than 100 lines), 78 for a
 *   rules file that does not load (its error names the line).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_rules.h"
#include "smtp_reply.h"
#include "tool.h"

static const char usage_text[] =
    "usage: sluice bounces classify [--rules FILE] [--json] REPLY\n"
    "       sluice bounces rules [--rules FILE]\n";

/* Print usage to stderr; returns the usage exit code. */
static int usage(void)
{
    fputs(usage_text, stderr);
    return TOOL_EX_USAGE;
}

/* Split reply (lines "550-..." joined; empty lines skipped) into code,
 * enhanced code and text with sluiced's own reply parser.  A reply that
 * stops after a "550-" line is taken as it is.  0, or -1 with the reason
 * in p->err. */
static int split_reply(const char *reply, struct smtp_reply_parser *p)
{
    int rc = SMTP_REPLY_MORE;
    smtp_reply_reset(p);
    for (const char *s = reply; *s;) {
        size_t len = strcspn(s, "\r\n");
        if (len && rc != SMTP_REPLY_MORE) {
            snprintf(p->err, sizeof p->err, "a line after the last line "
                                            "(\"ddd text\")");
            return -1;
        }
        if (len && (rc = smtp_reply_line(p, s, len)) == SMTP_REPLY_EPROTO)
            return -1;
        s += len;
        s += strspn(s, "\r\n");
    }
    if (!p->r.lines) {
        snprintf(p->err, sizeof p->err, "no reply line");
        return -1;
    }
    return 0;
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
    struct smtp_reply_parser p = { 0 };
    struct bounce_rules *r;
    if (split_reply(reply, &p)) {
        fprintf(stderr, "sluice: '%.80s' is not an SMTP reply (want a "
                        "3-digit code 2xx-5xx first): %s\n", reply, p.err);
        return TOOL_EX_USAGE;
    }
    int code = p.r.code;
    const char *enh = p.r.enhanced, *text = p.r.text;
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

/* The options of classify and rules: --rules FILE and at most one
 * operand; 0, or the usage exit code. */
static int bounce_args(int argc, char **argv, const char **rules_path,
                       const char **operand)
{
    *rules_path = *operand = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc)
            *rules_path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return usage();
        else if (!*operand)
            *operand = argv[i];
        else
            return usage();
    }
    return 0;
}

static int cmd_classify(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *rules_path, *reply;
    int rc = bounce_args(argc, argv, &rules_path, &reply);
    if (rc)
        return rc;
    return reply ? do_classify(ctx, rules_path, reply) : usage();
}

static int cmd_rules(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *rules_path, *extra;
    (void)ctx;
    int rc = bounce_args(argc, argv, &rules_path, &extra);
    if (rc)
        return rc;
    return extra ? usage() : do_rules(rules_path);
}

int tool_bounces_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "classify", .run = cmd_classify },
        { .name = "rules", .run = cmd_rules },
    };
    static const struct tool_group group = {
        "sluice bounces", usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
