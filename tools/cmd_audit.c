/*
 * cmd_audit.c - `sluice audit`: read and check the audit trail.
 *
 * SYNOPSIS
 *   audit list [--account A] [--user U] [--since T] [--json]
 *   audit verify [--json]
 *
 * DESCRIPTION
 *   Every change (and every refused action) appends a record: time, user,
 *   how they proved who they are, role, account, action, object, result.
 *   `list` shows the records of one account (--account, default the
 *   caller's; the master's users without --account see every record),
 *   optionally of one user and since T (unix seconds, YYYY-MM-DD[THH:MM
 *   [:SS]] UTC, or an age like 2h, 7d).  `verify` walks the hash chain and
 *   compares it with the stored head: exit 0 when intact, 65 naming the
 *   first bad record and whether it was altered, removed, reordered or
 *   the tail cut off.  It prints the head hash, which can be kept outside
 *   the spool to detect a rewrite of the whole trail.
 *
 *   Who may: viewers of the account (list); viewers of the master (verify).
 *
 * DIAGNOSTICS
 *   64 bad options, 65 a broken chain, 66 unknown account, 77 refused.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_admin.h"

#define P "sluice audit"

static const char usage_text[] =
    "usage: sluice audit list [--account A] [--user U] [--since T] [--json]\n"
    "       sluice audit verify [--json]\n"
    "\n"
    "T: unix seconds, YYYY-MM-DD[THH:MM[:SS]] (UTC) or an age: 30m, 2h, 7d.\n";

struct list_ctx {
    struct queue *q;
    uint32_t account;       /* 0: all */
    bool all;
    const char *user;
    int64_t since_ms;
    json_t *arr;
    long shown;
};

static int list_one(void *arg, const struct queue_audit *r)
{
    struct list_ctx *l = arg;
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
    char hex[2 * QUEUE_AUDIT_HASH + 1];
    if ((!l->all && r->account != l->account) ||
        (l->user && strcmp(r->user, l->user)) || r->time_ms < l->since_ms)
        return 0;
    l->shown++;
    tool_account_name(l->q, r->account, name, sizeof name);
    tool_time_text(r->time_ms / 1000, ts, sizeof ts);
    if (l->arr) {
        sodium_bin2hex(hex, sizeof hex, r->hash, sizeof r->hash);
        json_array_append_new(l->arr, json_pack(
            "{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
            "seq", (json_int_t)r->seq, "time", ts, "time_ms",
            (json_int_t)r->time_ms, "user", r->user, "via", r->via, "role",
            queue_role_name(r->role), "account", name, "action", r->action,
            "object", r->object, "result", r->result, "hash", hex));
        return 0;
    }
    printf("%-6llu %-20s %-20s %-8s %-16s %-22s %s -> %s\n",
           (unsigned long long)r->seq, ts, r->user, queue_role_name(r->role),
           name, r->action, r->object, r->result);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *user = NULL, *since = NULL;
    bool bad = false;
    struct queue *q;
    struct queue_account *a = malloc(sizeof *a);
    int64_t since_s = 0;
    int rc;

    if (!a)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--user", &user, &bad) &&
            !tool_opt(argc, argv, &i, "--since", &since, &bad))
            bad = true;
    if (!bad && since && tool_parse_time(since, (int64_t)time(NULL),
                                         &since_s)) {
        fprintf(stderr, P " list: --since: '%.40s' is not a time\n", since);
        bad = true;
    }
    if (bad) {
        fprintf(stderr, "%s", usage_text);
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "audit list", &q))) {
        free(a);
        return rc;
    }
    uint32_t account = tool_default_account(ctx, q), master = 0;
    queue_account_master(q, &master);
    if (acct && (rc = tool_find_account(ctx, q, P " list", acct, a)))
        goto out;
    if (acct)
        account = a->id;
    if ((rc = tool_authorize(ctx, q, ACT_AUDIT_LIST, account, 0, "audit",
                             NULL)))
        goto out;
    struct list_ctx l = { q, account, !acct && account == master, user,
                          since_s * 1000, ctx->json ? json_array() : NULL, 0 };
    if (!l.arr)
        printf("%-6s %-20s %-20s %-8s %-16s %-22s %s\n", "SEQ", "TIME", "USER",
               "ROLE", "ACCOUNT", "ACTION", "OBJECT -> RESULT");
    long n = queue_audit_list(q, 1, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (l.arr) {
        tool_emit_json(l.arr);
    }
out:
    queue_close(q);
    free(a);
    return rc;
}

static int cmd_verify(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_audit_verdict v;
    char hex[2 * QUEUE_AUDIT_HASH + 1];
    int rc;
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: sluice audit verify [--json]\n");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "audit verify", &q)))
        return rc;
    if ((rc = tool_authorize(ctx, q, ACT_AUDIT_VERIFY, 0, 0, "audit", NULL))) {
        queue_close(q);
        return rc;
    }
    int err = queue_audit_verify(q, &v);
    queue_close(q);
    if (err)
        return tool_admin_error(P " verify", err);
    sodium_bin2hex(hex, sizeof hex, v.head, sizeof v.head);
    if (ctx->json)
        tool_emit_json(json_pack("{s:b,s:s,s:I,s:I,s:I,s:s,s:s}", "intact",
                                 v.fault == QUEUE_AUDIT_INTACT, "fault",
                                 queue_audit_fault_name(v.fault), "bad_seq",
                                 (json_int_t)v.bad_seq, "records",
                                 (json_int_t)v.records, "head_seq",
                                 (json_int_t)v.head_seq, "head", hex, "why",
                                 v.why));
    if (v.fault != QUEUE_AUDIT_INTACT) {
        fprintf(stderr, P " verify: the audit trail is broken at record "
                "%llu: %s (%s)\n", (unsigned long long)v.bad_seq,
                queue_audit_fault_name(v.fault), v.why);
        return TOOL_EX_DATAERR;
    }
    if (!ctx->json)
        printf("audit trail intact: %llu records; head %llu %s\n",
               (unsigned long long)v.records,
               (unsigned long long)v.head_seq, hex);
    return 0;
}

int tool_audit_main(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *sub;
    int front = tool_group_begin(ctx, &argc, &argv, usage_text, &sub);
    if (front >= 0)
        return front;
    if (!strcmp(sub, "list"))
        return cmd_list(ctx, argc, argv);
    if (!strcmp(sub, "verify"))
        return cmd_verify(ctx, argc, argv);
    return tool_group_unknown(P, sub, usage_text);
}
