/*
 * cmd_report_html.c - `sluice report --html FILE` writes the report as
 * one self-contained HTML page; `sluice report send-weekly --account A`
 * asks the running sluiced to mail account A's report of the last 7 days
 * now.
 *
 * DESCRIPTION
 *   The page is made by the renderer sluiced's weekly mail uses
 *   (engine/report_html.c) from the object report_build() gave
 *   cmd_report.c for the same --account/--from/--to; it is written to
 *   FILE.tmp and renamed over FILE, so a reader never sees half a page,
 *   and the path is printed.
 *   The weekly report mail is sluiced's (engine/report_weekly.c);
 *   send-weekly only records a request in the spool (the cursor
 *   REPORT_WEEKLY_REQ of the account, set to the request's time), which
 *   sluiced picks up within a few seconds, sends to the account's
 *   report_to (else alert_to) addresses and clears.  A request made while
 *   sluiced is down is sent when it starts.  When the tools read a
 *   sluiced.conf (--config, $SLUICE_CONFIG, /etc/sluice/sluiced.conf),
 *   an account without addresses there is refused.  Needs the manager
 *   role on the account (or more); audited as "report send-weekly".
 *
 * DIAGNOSTICS
 *   --html: 73 when FILE cannot be written (the reason on stderr), 70 for
 *   a page the renderer refuses.  send-weekly: 64 bad usage, 66 no such
 *   account, 77 refused, 78 no addresses in sluiced.conf, else the
 *   spool's code.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "report_html.h"
#include "report_weekly.h"
#include "tool.h"
#include "tool_admin.h"
#include "tool_report.h"

#define P "sluice report send-weekly"

int tool_report_write_html(const json_t *rep, const char *path)
{
    char *page, tmp[PATH_MAX];
    size_t len;
    int err = report_html_render(rep, &page, &len);
    if (err) {
        fprintf(stderr, "sluice report: the HTML page: %s\n", strerror(-err));
        return TOOL_EX_SOFTWARE;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        free(page);
        fprintf(stderr, "sluice report: %s: path too long\n", path);
        return TOOL_EX_USAGE;
    }
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(page, 1, len, f) != len || fflush(f) ||
        fsync(fileno(f))) {
        err = errno ? -errno : -EIO;
        if (f)
            fclose(f);
        unlink(tmp);
    } else if (fclose(f)) {
        err = -errno;
        unlink(tmp);
    } else if (rename(tmp, path)) {
        err = -errno;
        unlink(tmp);
    }
    free(page);
    if (err) {
        fprintf(stderr, "sluice report: %s: %s\n", path, strerror(-err));
        return tool_exit_create(err);
    }
    char real[PATH_MAX];
    printf("%s\n", realpath(path, real) ? real : path);
    return 0;
}

/* With a sluiced.conf to read, 0 when it gives account a addresses
 * (report_to or alert_to in its [account ID]), else 78 after saying so:
 * sluiced would drop the request.  Without one, 0 (sluiced decides). */
static int addresses_known(struct tool_ctx *ctx,
                           const struct queue_account *a)
{
    struct config cfg;
    bool loaded = false, found = false;
    int rc = tool_config_load(ctx, P, NULL, &cfg, &loaded);
    if (rc || !loaded)
        return rc;
    for (size_t i = 0; i < cfg.naccounts; i++)
        if (cfg.accounts[i].id == a->id &&
            (cfg.accounts[i].report_to || cfg.accounts[i].alert_to))
            found = true;
    if (!found)
        fprintf(stderr, P ": account %s has no report_to nor alert_to in "
                "[account %u] of %s: nowhere to send its report\n", a->name,
                a->id, cfg.path);
    config_free(&cfg);
    return found ? 0 : TOOL_EX_CONFIG;
}

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
        (rc = tool_authorize(ctx, q, ACT_REPORT, a->id,
                             QUEUE_ROLE_MANAGER, obj, &role)))
        goto out;
    if ((rc = addresses_known(ctx, a)))
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
