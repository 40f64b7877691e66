/*
 * cmd_report_weekly.c - `sluice report send-weekly --account A`: ask the
 * running sluiced to mail account A's report of the last 7 days now.
 *
 * DESCRIPTION
 *   The weekly report mail is sluiced's (engine/report_weekly.c); this
 *   command only records a request in the spool (the cursor
 *   REPORT_WEEKLY_REQ of the account, set to the request's time), which
 *   sluiced picks up within a few seconds, sends to the account's
 *   report_to (else alert_to) addresses and clears.  A request made while
 *   sluiced is down is sent when it starts.  Needs the manager role on
 *   the account (or more); audited as "report send-weekly".
 *
 * DIAGNOSTICS
 *   64 bad usage, 66 no such account, 77 refused, else the spool's code.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_weekly.h"
#include "tool.h"
#include "tool_admin.h"

#define P "sluice report send-weekly"

int tool_report_send_weekly(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    bool bad = false;
    struct queue *q = NULL;
    struct queue_account *a = calloc(1, sizeof *a);
    int rc;
    if (!a)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (bad || !acct) {
        fprintf(stderr, "usage: " P " --account A [--json]\n");
        free(a);
        return TOOL_EX_USAGE;
    }
    char obj[128], cursor[QUEUE_MAX_CURSOR_NAME + 1];
    int role;
    snprintf(obj, sizeof obj, "account %.80s", acct);
    if ((rc = tool_admin_begin(ctx, false, "report send-weekly", &q)) ||
        (rc = tool_find_account(ctx, q, P, acct, a)) ||
        (rc = tool_authorize(ctx, q, ACT_ACCOUNT_USAGE, a->id,
                             QUEUE_ROLE_MANAGER, obj, &role)))
        goto out;
    snprintf(cursor, sizeof cursor, REPORT_WEEKLY_REQ, a->id);
    int err = queue_cursor_put(q, cursor, (uint64_t)time(NULL));
    struct queue_actor by = tool_actor(ctx, role, a->id);
    if (!err)
        err = queue_audit_append(q, &by, a->id, "report send-weekly", obj,
                                 "ok");
    if (err) {
        rc = tool_admin_error(P, err);
        goto out;
    }
    if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:I,s:b}", "account", a->name,
                                 "account_id", (json_int_t)a->id,
                                 "requested", 1));
    else
        printf("requested: sluiced mails the report of account %s (the "
               "last 7 days) to its report_to addresses\n", a->name);
out:
    if (q)
        queue_close(q);
    free(a);
    return rc;
}
