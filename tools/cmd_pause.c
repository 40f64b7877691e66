/*
 * cmd_pause.c - `sluice pause`, `sluice resume` and `sluice paused`: hold
 * mail for a destination domain or site, let it flow again, list what is
 * held.
 *
 * DESCRIPTION
 *   pause domain|site NAME [--reason TEXT]
 *   resume domain|site NAME
 *   paused [--json]
 *   A pause is a record in the spool (queue_pause()), so it holds across
 *   restarts of sluiced; a running sluiced reads the change from the spool.
 *   Mail for a paused destination stays queued.  Names are taken in lower
 *   case (a domain also without a trailing dot); who paused is the acting
 *   user, or for the bootstrap $USER ("bootstrap" when that is unset).
 *   pause and resume need admin on the master, paused viewer (checked in
 *   sluice.c); a pause or resume is written to the audit trail right after
 *   it commits.  pause and resume open the spool for writing (pause
 *   creating it), paused opens it read-only.
 *
 * DIAGNOSTICS
 *   Exit 64 for bad usage or an invalid name or reason, 66 for resuming
 *   what is not paused (or a missing spool), 65 for a foreign, damaged or
 *   too-new spool.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_admin.h"

const char *tool_ctl_kind_name(int kind)
{
    return kind == QUEUE_CTL_SITE ? "site"
           : kind == QUEUE_CTL_CAMPAIGN ? "campaign"
           : kind == QUEUE_CTL_CANCELLED ? "cancelled campaign" : "domain";
}

/* Parse "domain" or "site"; 0 if neither. */
static int parse_kind(const char *s)
{
    if (!strcmp(s, "domain"))
        return QUEUE_CTL_DOMAIN;
    if (!strcmp(s, "site"))
        return QUEUE_CTL_SITE;
    return 0;
}

/* Copy NAME lower-cased into buf (a domain loses a trailing dot); false if
 * it does not fit.  The queue checks the rest. */
static bool normal_name(int kind, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    if (kind == QUEUE_CTL_DOMAIN && n > 1 && name[n - 1] == '.')
        n--;
    if (n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[n] = 0;
    return true;
}

/* Who is making the change: the user acting, or for the bootstrap $USER
 * if it is printable, else "bootstrap". */
static const char *who_am_i(const struct tool_ctx *ctx)
{
    if (ctx->identity && ctx->identity->via != TOOL_VIA_BOOTSTRAP)
        return ctx->identity->name;
    const char *u = getenv("USER");
    if (!u || !*u)
        return "bootstrap";
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            return "bootstrap";
    return u;
}

/* Shared by pause and resume: parse, open for writing, change, report. */
static int change(struct tool_ctx *ctx, int argc, char **argv, bool set)
{
    const char *verb = set ? "pause" : "resume", *reason = NULL;
    const char *kind_s = NULL, *name_s = NULL;
    char name[QUEUE_MAX_CTL_NAME + 2];
    int kind;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sluice %s domain|site NAME%s\n", verb,
                   set ? " [--reason TEXT]" : "");
            return 0;
        } else if (set && !strcmp(argv[i], "--reason") && i + 1 < argc) {
            reason = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            ctx->json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            kind_s = name_s = NULL;
            break;
        } else if (!kind_s) {
            kind_s = argv[i];
        } else if (!name_s) {
            name_s = argv[i];
        } else {
            kind_s = name_s = NULL;
            break;
        }
    }
    if (!kind_s || !name_s || !(kind = parse_kind(kind_s))) {
        fprintf(stderr, "usage: sluice %s domain|site NAME%s\n", verb,
                set ? " [--reason TEXT]" : "");
        return TOOL_EX_USAGE;
    }
    if (!normal_name(kind, name_s, name, sizeof name)) {
        fprintf(stderr, "sluice %s: %s name longer than %d bytes\n", verb,
                kind_s, QUEUE_MAX_CTL_NAME);
        return TOOL_EX_USAGE;
    }

    struct queue *q;
    /* a pause may come before any mail: it creates the spool */
    int rc = tool_open_spool(ctx, set ? QUEUE_OPEN_CREATE : 0, &q);
    if (rc)
        return rc;
    int err = set ? queue_pause(q, kind, name, reason, who_am_i(ctx))
                  : queue_resume(q, kind, name);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", queue_last_detail());
    if (!err && ctx->identity) {
        /* the change is audited right after it commits */
        char obj[QUEUE_MAX_CTL_NAME + 300];
        snprintf(obj, sizeof obj, "%s %s%s%.200s", kind_s, name,
                 reason ? " reason: " : "", reason ? reason : "");
        struct queue_actor by = tool_actor(ctx, ctx->identity->acting_role,
                                           ctx->identity->acting_account);
        int aerr = queue_audit_append(q, &by, by.account, verb, obj, "ok");
        if (aerr)
            fprintf(stderr, "sluice %s: done, but the audit record failed: "
                    "%s\n", verb, queue_strerror(aerr));
    }
    queue_close(q);
    if (err == -EINVAL) {
        fprintf(stderr, "sluice %s: %s\n", verb, detail);
        return TOOL_EX_USAGE;
    }
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "sluice resume: %s %s is not paused\n", kind_s, name);
        return TOOL_EX_NOINPUT;
    }
    if (err) {
        fprintf(stderr, "sluice %s: %s: %s\n", verb, ctx->spool,
                queue_strerror(err));
        return tool_exit_for(err);
    }
    printf("%s %s %s\n", set ? "paused" : "resumed", kind_s, name);
    return 0;
}

int tool_pause_main(struct tool_ctx *ctx, int argc, char **argv)
{
    return change(ctx, argc, argv, true);
}

int tool_resume_main(struct tool_ctx *ctx, int argc, char **argv)
{
    return change(ctx, argc, argv, false);
}

/* Print one paused entry as a table row or add it to a JSON array. */
static int print_control(void *arg, const struct queue_control *c)
{
    json_t *arr = arg;
    if (arr) {
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:s,s:s}",
                                             "kind", tool_ctl_kind_name(c->kind),
                                             "name", c->name,
                                             "since", (json_int_t)c->since,
                                             "who", c->who,
                                             "reason", c->reason));
        return 0;
    }
    char since[32] = "-";
    time_t t = (time_t)c->since;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-6s  %-30s  %-20s  %-12s  %s\n", tool_ctl_kind_name(c->kind),
           c->name, since, *c->who ? c->who : "-", c->reason);
    return 0;
}

int tool_paused_main(struct tool_ctx *ctx, int argc, char **argv)
{
    argc = tool_take_json(ctx, argc, argv);
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: sluice paused [--json]\n");
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: sluice paused [--json]\n");
        return TOOL_EX_USAGE;
    }
    struct queue *q;
    int rc = tool_open_spool(ctx, QUEUE_OPEN_READONLY, &q);
    if (rc)
        return rc;
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!ctx->json)
        printf("%-6s  %-30s  %-20s  %-12s  %s\n", "KIND", "NAME", "SINCE",
               "WHO", "REASON");
    long n = queue_controls(q, print_control, arr);
    queue_close(q);
    if (n < 0) {
        json_decref(arr);
        fprintf(stderr, "sluice paused: %s: %s\n", ctx->spool,
                queue_strerror((int)n));
        return tool_exit_for((int)n);
    }
    if (arr) {
        char *s = json_dumps(arr, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(arr);
    } else if (n == 0) {
        printf("(nothing paused)\n");
    }
    return 0;
}
