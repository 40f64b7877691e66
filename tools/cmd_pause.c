/*
 * cmd_pause.c - `sluice pause`, `sluice resume` and `sluice paused`: hold
 * mail for a destination domain or site, let it flow again, list what is
 * held.
 *
 * DESCRIPTION
 *   pause domain|site NAME [--reason TEXT] [--for DURATION]
 *   resume domain|site NAME
 *   paused [--json]
 *   A pause is a record in the spool (queue_pause()), so it holds across
 *   restarts of sluiced; a running sluiced reads the change from the spool.
 *   With --for (30s, 30m, 2h, 1d: sluiced.conf's durations, at least one
 *   second) the pause ends by itself then (queue_pause_until()): sluiced
 *   resumes it within a second of its end, `paused` shows the time left
 *   and no longer lists it once it has ended.
 *   Mail for a paused destination stays queued.  Names are taken in lower
 *   case (a domain also without a trailing dot); who paused is the acting
 *   user, or for the bootstrap $USER ("bootstrap" when that is unset).
 *   pause and resume need admin on the master, paused viewer (checked in
 *   sluice.c); a pause or resume is written to the audit trail right after
 *   it commits.  pause and resume open the spool for writing (pause
 *   creating it), paused opens it read-only.
 *
 * DIAGNOSTICS
 *   Exit 64 for bad usage or an invalid name, reason or duration, 66 for
 *   resuming
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

#include "config.h"
#include "tool_admin.h"

#define PAUSE_USAGE "domain|site NAME [--reason TEXT] [--for DURATION]"
/* the longest --for: a year */
#define PAUSE_FOR_MAX_S (366LL * 86400)

const char *tool_ctl_kind_name(int kind)
{
    return kind == QUEUE_CTL_SITE ? "site"
           : kind == QUEUE_CTL_CAMPAIGN ? "campaign"
           : kind == QUEUE_CTL_CANCELLED ? "cancelled campaign" : "domain";
}

int tool_pause_until(const char *prog, const char *for_s, int64_t *until,
                     int64_t *secs)
{
    uint64_t for_ms = 0;
    if (config_parse_duration_ms(for_s, &for_ms) || for_ms < 1000 ||
        for_ms / 1000 > PAUSE_FOR_MAX_S) {
        fprintf(stderr, "%s: --for '%s': a duration from 1s to 366d (30s, "
                "30m, 2h, 1d)\n", prog, for_s);
        return -1;
    }
    *secs = (int64_t)(for_ms / 1000);
    *until = (int64_t)time(NULL) + *secs;
    return 0;
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
    const char *kind_s = NULL, *name_s = NULL, *for_s = NULL;
    char name[QUEUE_MAX_CTL_NAME + 2];
    int kind;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sluice %s %s\n", verb,
                   set ? PAUSE_USAGE : "domain|site NAME");
            return 0;
        } else if (set && !strcmp(argv[i], "--reason") && i + 1 < argc) {
            reason = argv[++i];
        } else if (set && !strcmp(argv[i], "--for") && i + 1 < argc) {
            for_s = argv[++i];
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
        fprintf(stderr, "usage: sluice %s %s\n", verb,
                set ? PAUSE_USAGE : "domain|site NAME");
        return TOOL_EX_USAGE;
    }
    int64_t until = 0, secs = 0;
    if (for_s && tool_pause_until("sluice pause", for_s, &until, &secs))
        return TOOL_EX_USAGE;
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
    int err = !set ? queue_resume(q, kind, name)
              : until ? queue_pause_until(q, kind, name, reason,
                                          who_am_i(ctx), until)
              : queue_pause(q, kind, name, reason, who_am_i(ctx));
    char detail[256];
    snprintf(detail, sizeof detail, "%s", queue_last_detail());
    if (!err && ctx->identity) {
        /* the change is audited right after it commits */
        char obj[QUEUE_MAX_CTL_NAME + 340];
        snprintf(obj, sizeof obj, "%s %s%s%s%s%.200s", kind_s, name,
                 for_s ? " for " : "", for_s ? for_s : "",
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
    if (until)
        printf("paused %s %s for %llds\n", kind_s, name,
               (long long)secs);
    else
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

struct paused_out {
    json_t *arr;            /* --json: the array, else NULL */
    int64_t now;
    long shown;
};

/* Print one paused entry still holding as a table row or add it to a JSON
 * array ("until" and "left": its end and the seconds to it, null for a
 * pause without an end). */
static int print_control(void *arg, const struct queue_control *c)
{
    struct paused_out *po = arg;
    json_t *arr = po->arr;
    if (!queue_control_active(c, po->now))
        return 0;   /* a pause --for that has ended */
    po->shown++;
    int64_t left = c->until ? c->until - po->now : 0;
    if (arr) {
        json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s}",
                              "kind", tool_ctl_kind_name(c->kind),
                              "name", c->name,
                              "since", (json_int_t)c->since,
                              "who", c->who,
                              "reason", c->reason);
        if (o) {
            json_object_set_new(o, "until", c->until
                                ? json_integer(c->until) : json_null());
            json_object_set_new(o, "left", c->until
                                ? json_integer(left) : json_null());
        }
        json_array_append_new(arr, o);
        return 0;
    }
    char ends[32] = "-";
    if (c->until)
        snprintf(ends, sizeof ends, "%lldh%02lldm%02llds",
                 (long long)(left / 3600), (long long)(left / 60 % 60),
                 (long long)(left % 60));
    char since[32] = "-";
    time_t t = (time_t)c->since;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-6s  %-30s  %-20s  %-12s  %-10s  %s\n",
           tool_ctl_kind_name(c->kind), c->name, since,
           *c->who ? c->who : "-", ends, c->reason);
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
    struct paused_out po = { arr, (int64_t)time(NULL), 0 };
    if (!ctx->json)
        printf("%-6s  %-30s  %-20s  %-12s  %-10s  %s\n", "KIND", "NAME",
               "SINCE", "WHO", "LEFT", "REASON");
    long n = queue_controls(q, print_control, &po);
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
    } else if (po.shown == 0) {
        printf("(nothing paused)\n");
    }
    return 0;
}
