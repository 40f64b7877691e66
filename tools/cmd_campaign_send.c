/*
 * cmd_campaign_send.c - `sluice campaign send ID`: queue one recipient per
 * non-suppressed contact of the campaign's list.
 *
 * DESCRIPTION
 *   Checks who may send and that the template still compiles, starts the
 *   send (queue_campaign_send_begin), has the spool queue every contact
 *   of the list not on the account's suppression list (the master's when
 *   shared: queue_campaign_send_all, one batch per chunk of the list,
 *   each queuing its recipients and moving the campaign's cursor in one
 *   transaction) and then marks the send complete.
 *   A campaign whose schedule is ahead gets its recipients queued now, due
 *   at the schedule.  The engine checks suppression again when each
 *   message leaves the queue.
 *
 *   A send that stops (killed, spool full) is continued by running send
 *   again: it goes on after the last contact whose batch committed.  A
 *   campaign cancelled during the send stops it at the next batch.
 *
 *   Who may: sender on the campaign's account, which must be enabled, with
 *   the From domain still verified.
 *
 * DIAGNOSTICS
 *   65 the campaign was sent already (or is done or cancelled), or its
 *   template no longer compiles; 66 unknown campaign or its list is gone;
 *   75 spool full; 77 refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_campaign.h"

/* Monotonic seconds. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Queue every contact after run->cursor (queue_campaign_send_all) and say
 * why when it stops early; 0 or an exit code. */
static int enqueue_all(const char *prog, struct queue *q,
                       const struct queue_campaign *c, uint32_t owner,
                       struct queue_send_run *run)
{
    int err = queue_campaign_send_all(q, c->id, c->list, owner, run);
    if (err == -ENOMEM) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return TOOL_EX_OSERR;
    }
    if (err == QUEUE_ESTATE) {
        struct queue_campaign now;
        const char *state = "changed";
        if (queue_campaign_get(q, c->id, &now) == 0) {
            state = queue_campaign_state_name(now.state);
            queue_campaign_clear(&now);
        }
        fprintf(stderr, "%s: the send of campaign %llu stopped: it is %s "
                "now, or another send took over\n", prog,
                (unsigned long long)c->id, state);
        return TOOL_EX_DATAERR;
    }
    if (err) {
        const char *d = queue_last_detail();
        fprintf(stderr, "%s: %s%s%s (run send again to continue)\n", prog,
                err == QUEUE_ENOTFOUND ? "the campaign's list is gone"
                                       : queue_strerror(err),
                *d ? ": " : "", d);
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    return 0;
}

/* `campaign send`: checks, begin, enqueue every chunk, end. */
int camp_cmd_send(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *prog = CAMP_P " send", *spec = NULL, *acct = NULL;
    const char *conf = NULL;
    bool bad = false;
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct queue_list *l = malloc(sizeof *l);
    struct queue_send_run run = { 0 };
    char why[300];
    int rc, err;

    if (!l)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--config", &conf, &bad)) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec) {
        fprintf(stderr, "usage: sluice campaign send ID [--account A] "
                "[--json]\n");
        free(l);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, conf, &cfg))) {
        free(l);
        return rc;
    }
    if ((rc = camp_begin(ctx, prog, ACT_CAMPAIGN_SEND, spec, acct, &cmd))) {
        free(l);
        return rc;
    }
    struct queue_campaign *c = &cmd.c;
    if ((rc = camp_may_send(ctx, cmd.q, ACT_CAMPAIGN_SEND, c, cmd.a)))
        goto out;
    if ((err = queue_list_get(cmd.q, c->list, l))) {
        fprintf(stderr, "%s: list %llu of campaign %llu: %s\n", prog,
                (unsigned long long)c->list, (unsigned long long)c->id,
                err == QUEUE_ENOTFOUND ? "deleted" : queue_strerror(err));
        rc = err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
        goto out;
    }
    /* the account's header or footer may have changed since create */
    struct render_tpl *tpl = NULL;
    if ((err = camp_compile(cmd.q, c, cmd.a, &cfg, &tpl, why, sizeof why))) {
        fprintf(stderr, "%s: campaign %llu does not compile: %s\n", prog,
                (unsigned long long)c->id, why);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    render_free(tpl);
    struct queue_actor by = tool_actor(ctx, cmd.role, c->account);
    if ((err = queue_campaign_send_begin(cmd.q, c->id, &by, &run.cursor))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    uint64_t start_cursor = run.cursor;
    double t0 = mono_s();
    if ((rc = enqueue_all(prog, cmd.q, c, cmd.a->suppression_owner, &run)))
        goto out;
    if ((err = queue_campaign_send_end(cmd.q, c->id, run.cursor, &by))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    double secs = mono_s() - t0;
    struct queue_campaign now;
    if ((err = queue_campaign_get(cmd.q, c->id, &now))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    queue_campaign_clear(&now);
    if (ctx->json) {
        tool_emit_json(json_pack(
            "{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:f}", "id", (json_int_t)c->id,
            "state", queue_campaign_state_name(now.state), "recipients",
            (json_int_t)now.recipients, "suppressed",
            (json_int_t)now.suppressed_at_send, "queued_now",
            (json_int_t)run.queued, "contacts_read", (json_int_t)run.contacts,
            "invalid", (json_int_t)run.invalid, "resumed", start_cursor != 0,
            "seconds", secs));
    } else {
        printf("campaign %llu (%s): %llu recipients queued, %llu suppressed"
               "%s; %s", (unsigned long long)c->id, c->name,
               (unsigned long long)now.recipients,
               (unsigned long long)now.suppressed_at_send,
               start_cursor ? " (continued an interrupted send)" : "",
               queue_campaign_state_name(now.state));
        if (now.state == QUEUE_CAMPAIGN_SCHEDULED) {
            char ts[32];
            printf(" until %s", tool_time_text(now.schedule, ts, sizeof ts));
        }
        printf(" (%.2f s)\n", secs);
        if (run.invalid)
            printf("%llu contacts with unusable addresses were skipped\n",
                   (unsigned long long)run.invalid);
    }
out:
    free(l);
    camp_end(&cmd);
    return rc;
}
