/*
 * cmd_suppress.c - `sluice suppress`: the addresses an account never
 * mails (minimal set: add and list).
 *
 * SYNOPSIS
 *   suppress add EMAIL [--account A] [--reason R]
 *   suppress list [--account A] [--json]
 *
 * DESCRIPTION
 *   The suppression list is the account's own or, for a sub-account that
 *   shares it, the master's (account show: "suppression"); both commands
 *   act on that list.  Addresses are stored with the domain as lower-case
 *   A-label and compare without regard to case.  Imports skip suppressed
 *   addresses and the engine checks again before sending.  Removing
 *   entries, importing suppression files and bounce-fed entries come with
 *   the bounces issue.
 *
 *   Who may: add needs manager on the account, list viewer.  add is
 *   audited.
 *
 * DIAGNOSTICS
 *   0 ok (an address already suppressed included), 64 bad options, 65 an
 *   invalid address or reason, 66 no such account, 77 refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_lists.h"

#define P "sluice suppress"

static const char usage_text[] =
    "usage: sluice suppress add EMAIL [--account A] [--reason R]\n"
    "       sluice suppress list [--account A] [--json]\n"
    "\n"
    "Acts on the account's suppression list (the master's when the account\n"
    "shares it).  Only add and list exist so far: remove, import and the\n"
    "entries fed by bounces and complaints come with the bounces issue.\n";

/* Open, identify, find the account and check act; 0 or an exit code. */
static int supp_begin(struct tool_ctx *ctx, const char *prog, int act,
                      const char *acct, const char *obj, struct queue **q,
                      struct queue_account *a, int *role)
{
    int rc;
    if ((rc = tool_admin_begin(ctx, false, prog + 7, q)))
        return rc;
    if (acct) {
        rc = tool_find_account(ctx, *q, prog, acct, a);
    } else if (queue_account_get(*q, tool_default_account(ctx, *q), a)) {
        fprintf(stderr, "%s: there is no account yet\n", prog);
        rc = TOOL_EX_NOINPUT;
    }
    if (!rc)
        rc = tool_authorize(ctx, *q, act, a->id, 0, obj, role);
    if (rc) {
        queue_close(*q);
        *q = NULL;
    }
    return rc;
}

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *reason = NULL, *email = NULL;
    char addr[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX], obj[400];
    char owner[QUEUE_MAX_ACCOUNT_NAME + 1];
    bool bad = false;
    struct queue *q;
    int rc, role;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad) ||
            tool_opt(argc, argv, &i, "--reason", &reason, &bad))
            continue;
        if (argv[i][0] == '-' || email)
            bad = true;
        else
            email = argv[i];
    }
    if (bad || !email) {
        fprintf(stderr, "usage: sluice suppress add EMAIL [--account A] "
                "[--reason R]\n");
        return TOOL_EX_USAGE;
    }
    if (tool_addr_normalize(email, strlen(email), addr, sizeof addr, why)) {
        fprintf(stderr, P " add: invalid address '%.80s': %s\n", email, why);
        return TOOL_EX_DATAERR;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    snprintf(obj, sizeof obj, "suppress %s", addr);
    if ((rc = supp_begin(ctx, P " add", ACT_SUPPRESS_ADD, acct, obj, &q, a,
                         &role))) {
        free(a);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, role, a->id);
    tool_account_name(q, a->suppression_owner, owner, sizeof owner);
    int err = queue_suppress_add(q, a->suppression_owner, addr,
                                 reason ? reason : "manual", "cli", &by);
    if (err == -EEXIST) {
        printf("%s is already on the suppression list of %s\n", addr, owner);
    } else if (err) {
        rc = tool_admin_error(P " add", err);
    } else if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:s}", "email", addr, "owner",
                                 owner, "reason", reason ? reason
                                                         : "manual"));
    } else {
        printf("suppressed %s on the list of %s\n", addr, owner);
    }
    queue_close(q);
    free(a);
    return rc;
}

/* One row of `suppress list`. */
static int list_row(void *arg, const struct queue_suppression *s)
{
    json_t *arr = arg;
    char ts[32];
    tool_time_text(s->since, ts, sizeof ts);
    if (arr)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s}", "email",
                                             s->email, "reason", s->reason,
                                             "source", s->source, "since",
                                             ts));
    else
        printf("%-40s %-20s %-10s %s\n", s->email, s->reason, s->source, ts);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    bool bad = false;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "usage: sluice suppress list [--account A] "
                "[--json]\n");
        return TOOL_EX_USAGE;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    if ((rc = supp_begin(ctx, P " list", ACT_SUPPRESS_LIST, acct,
                         "suppression list", &q, a, NULL))) {
        free(a);
        return rc;
    }
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr)
        printf("%-40s %-20s %-10s %s\n", "EMAIL", "REASON", "SOURCE",
               "SINCE");
    long n = queue_suppressions(q, a->suppression_owner, NULL, list_row, arr);
    if (n < 0) {
        json_decref(arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (arr) {
        tool_emit_json(arr);
    }
    queue_close(q);
    free(a);
    return rc;
}

int tool_suppress_main(struct tool_ctx *ctx, int argc, char **argv)
{
    argc = tool_take_json(ctx, argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "%s", usage_text);
        return argc < 2 ? TOOL_EX_USAGE : 0;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", usage_text);
            return 0;
        }
    if (!strcmp(sub, "add"))
        return cmd_add(ctx, argc, argv);
    if (!strcmp(sub, "list"))
        return cmd_list(ctx, argc, argv);
    fprintf(stderr, P ": unknown subcommand '%s'\n%s", sub, usage_text);
    return TOOL_EX_USAGE;
}
