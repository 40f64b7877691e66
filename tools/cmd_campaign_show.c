/*
 * cmd_campaign_show.c - `sluice campaign show` and `campaign list`: what a
 * campaign is doing (cmd_campaign.c has the table and the changes).
 *
 * DESCRIPTION
 *   Both settle the campaign's state first (queue_campaign_settle: a
 *   schedule that has come is sending, a sending or paused campaign whose
 *   every recipient is terminal is done), then read its counters
 *   (queue_counts_campaign).  show prints the definition, the state, the
 *   counts (sent is delivered + bounced) and an ETA from what each
 *   destination still holds for it and the limit in force there, naming
 *   the slowest (engine/eta.c, via campaign_eta.c), and for a campaign an
 *   incident paused, which incident and rule (incident_pause.c); list one
 *   row a campaign, of one account or of every account the caller may
 *   view.  --json gives the same as an object (show) or an array of
 *   objects (list).
 *
 *   A tracked campaign's show also has its opens and clicks: opened and
 *   clicked count the recorded events (what the reports count under
 *   those names), opened_unique and clicked_unique the messages opened
 *   or clicked at least once (queue_track.h); JSON "track" lists what is
 *   tracked.
 *
 * DIAGNOSTICS
 *   64 bad options, 66 unknown account or campaign, 77 refused (viewer on
 *   the campaign's account is needed), 65/74 a spool that cannot be read
 *   (tool_exit_for).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_track.h"
#include "tool_campaign.h"
#include "tool_eta.h"

/* What show and list print about one campaign. */
struct camp_view {
    int state;
    struct queue_counts k;
    uint64_t sent, done;
    double rate;              /* finished recipients per second since it
                               * started, 0 unknown */
    int64_t started, finished; /* after the settle */
    char list_name[QUEUE_MAX_LIST_NAME + 1];
    struct queue_track_counts tk;     /* opens and clicks (queue_track.h) */
};

/* Settle c's state and gather its counters and ETA into v. */
static int view_of(struct queue *q, const struct queue_campaign *c,
                   struct camp_view *v)
{
    struct queue_list *l = malloc(sizeof *l);
    int64_t now = time(NULL);
    int err;
    memset(v, 0, sizeof *v);
    if (!l)
        return -ENOMEM;
    if ((err = queue_campaign_settle(q, c->id, &v->state)) ||
        (err = queue_counts_campaign(q, c->id, &v->k)) ||
        (err = queue_track_counts(q, c->id, &v->tk))) {
        free(l);
        return err;
    }
    snprintf(v->list_name, sizeof v->list_name, "%s",
             queue_list_get(q, c->list, l) == 0 ? l->name : "(deleted)");
    free(l);
    v->sent = v->k.delivered + v->k.bounced;
    v->done = v->sent + v->k.expired + v->k.suppressed + v->k.cancelled;
    /* the settle may have moved started (scheduled -> sending) and
     * finished (-> done: its last terminal event, campaign_end.c) */
    v->started = c->started;
    v->finished = c->finished;
    struct queue_campaign now_c;
    if (v->state != c->state && queue_campaign_get(q, c->id, &now_c) == 0) {
        v->started = now_c.started;
        v->finished = now_c.finished;
        queue_campaign_clear(&now_c);
    }
    /* while it sends, finished is only the mark of its queue's last
     * emptying: no finish time yet */
    if (v->state != QUEUE_CAMPAIGN_DONE &&
        v->state != QUEUE_CAMPAIGN_CANCELLED)
        v->finished = 0;
    int64_t start = v->started ? v->started : c->schedule;
    if (v->state == QUEUE_CAMPAIGN_SENDING && start && now > start &&
        v->done)
        v->rate = (double)v->done / (double)(now - start);
    return 0;
}

/* A campaign id as decimal text into buf. */
static const char *id_text(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%llu", (unsigned long long)id);
    return buf;
}

/* A time for JSON: text, or null for 0. */
static json_t *json_time(int64_t t)
{
    char ts[32];
    return t ? json_string(tool_time_text(t, ts, sizeof ts)) : json_null();
}

/* show --json and list --json rows. */
static json_t *view_json(struct queue *q, const struct queue_campaign *c,
                         const struct camp_view *v, bool full)
{
    char an[QUEUE_MAX_ACCOUNT_NAME + 1];
    json_t *j = json_pack(
        "{s:I,s:s,s:s,s:I,s:s,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:I,s:I,s:I,s:b}",
        "id", (json_int_t)c->id, "name", c->name, "account",
        tool_account_name(q, c->account, an, sizeof an), "list",
        (json_int_t)c->list, "list_name", v->list_name, "state",
        queue_campaign_state_name(v->state), "schedule",
        json_time(c->schedule), "started", json_time(v->started),
        "finished", json_time(v->finished), "recipients",
        (json_int_t)c->recipients, "suppressed",
        (json_int_t)c->suppressed_at_send, "queued", (json_int_t)v->k.queued,
        "sent", (json_int_t)v->sent, "delivered", (json_int_t)v->k.delivered,
        "deferred", (json_int_t)v->k.deferred, "bounced",
        (json_int_t)v->k.bounced, "expired", (json_int_t)v->k.expired,
        "suppressed_in_queue", (json_int_t)v->k.suppressed,
        "cancelled", (json_int_t)v->k.cancelled,
        "send_complete", c->send_complete);
    if (j && full) {
        json_object_set_new(j, "from", json_string(c->from));
        json_object_set_new(j, "reply_to", c->reply_to[0]
                                               ? json_string(c->reply_to)
                                               : json_null());
        json_object_set_new(j, "subject", json_string(c->subject));
        json_object_set_new(j, "created", json_time(c->created));
        json_object_set_new(j, "rate", v->rate > 0 ? json_real(v->rate)
                                                   : json_null());
    }
    if (j) {
        /* opens and clicks: every recorded event, and unique
         * (deliveries opened or clicked at least once) */
        json_t *tr = json_array();
        if (c->track & QUEUE_TRACK_OPENS)
            json_array_append_new(tr, json_string("opens"));
        if (c->track & QUEUE_TRACK_CLICKS)
            json_array_append_new(tr, json_string("clicks"));
        json_object_set_new(j, "track", tr);
        json_object_set_new(j, "opened", json_integer(
                                (json_int_t)v->tk.opens));
        json_object_set_new(j, "opened_unique", json_integer(
                                (json_int_t)v->tk.unique_opens));
        json_object_set_new(j, "clicked", json_integer(
                                (json_int_t)v->tk.clicks));
        json_object_set_new(j, "clicked_unique", json_integer(
                                (json_int_t)v->tk.unique_clicks));
    }
    return j;
}

/* queue_controls(): the end of the campaign's pause (`pause --for`). */
static int pause_end(void *arg, const struct queue_control *c)
{
    struct { const char *name; int64_t until; } *p = arg;
    if (c->kind == QUEUE_CTL_CAMPAIGN && !strcmp(c->name, p->name)) {
        p->until = c->until;
        return 1;
    }
    return 0;
}

/* `campaign show`: definition, state, counters and ETA. */
int camp_cmd_show(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *spec = NULL, *acct = NULL;
    bool bad = false;
    struct camp_cmd cmd;
    struct camp_view v;
    char ts[32], an[QUEUE_MAX_ACCOUNT_NAME + 1];
    int rc;

    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad)) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec) {
        fprintf(stderr, "usage: sluice campaign show ID [--account A] "
                "[--json]\n");
        return TOOL_EX_USAGE;
    }
    /* sluiced's live view (sites, pauses) before the spool is opened
     * here: one open of it at a time in a process */
    struct status_view sv;
    if (status_view_load(&sv, ctx))
        memset(&sv, 0, sizeof sv);   /* said why; the ETA does without */
    if ((rc = camp_begin(ctx, CAMP_P " show", ACT_CAMPAIGN_SHOW, spec, acct,
                         &cmd))) {
        status_view_free(&sv);
        return rc;
    }
    struct eta eta;
    memset(&eta, 0, sizeof eta);
    int err = view_of(cmd.q, &cmd.c, &v);
    if (!err)
        err = tool_campaign_eta(ctx, cmd.q, &sv, &cmd.c, v.state, &eta);
    status_view_free(&sv);
    if (err) {
        fprintf(stderr, CAMP_P " show: %s\n", queue_strerror(err));
        eta_free(&eta);
        camp_end(&cmd);
        return tool_exit_for(err);
    }
    struct queue_campaign *c = &cmd.c;
    /* the incident that paused it, if one did (and it is still paused) */
    struct tool_pause *pauses = NULL;
    size_t npauses = 0;
    const struct tool_pause *by = NULL;
    if (v.state == QUEUE_CAMPAIGN_PAUSED &&
        !tool_incident_pauses(cmd.q, &pauses, &npauses))
        by = tool_pause_find(pauses, npauses, "campaign",
                             id_text(c->id, ts, sizeof ts));
    /* a pause that ends by itself: when (sluiced resumes it then) */
    struct { const char *name; int64_t until; } pe = { NULL, 0 };
    char idbuf[24];
    if (v.state == QUEUE_CAMPAIGN_PAUSED) {
        pe.name = id_text(c->id, idbuf, sizeof idbuf);
        queue_controls(cmd.q, pause_end, &pe);
    }
    if (ctx->json) {
        json_t *j = view_json(cmd.q, c, &v, true);
        json_object_set_new(j, "paused_by", by ? tool_pause_json(by)
                                               : json_null());
        json_object_set_new(j, "paused_until", pe.until
                            ? json_integer(pe.until) : json_null());
        eta_json(&eta, j);
        tool_emit_json(j);
        eta_free(&eta);
        free(pauses);
        camp_end(&cmd);
        return 0;
    }
    printf("campaign    %llu (%s)\n", (unsigned long long)c->id, c->name);
    printf("account     %s\n", tool_account_name(cmd.q, c->account, an,
                                                 sizeof an));
    printf("list        %s (%llu)\n", v.list_name,
           (unsigned long long)c->list);
    printf("from        %s\n", c->from);
    printf("reply-to    %s\n", c->reply_to[0] ? c->reply_to : "-");
    printf("subject     %s\n", c->subject);
    printf("tracking    %s%s%s\n",
           c->track & QUEUE_TRACK_OPENS ? "opens" : "",
           c->track == (QUEUE_TRACK_OPENS | QUEUE_TRACK_CLICKS) ? ", " : "",
           !c->track ? "none" : c->track & QUEUE_TRACK_CLICKS ? "clicks" : "");
    printf("state       %s\n", queue_campaign_state_name(v.state));
    if (by) {
        char line[400];
        printf("paused by   %s\n", tool_pause_text(by, line, sizeof line));
    }
    if (pe.until)
        printf("paused till %s (sluiced resumes it then)\n",
               tool_time_text(pe.until, ts, sizeof ts));
    free(pauses);
    printf("created     %s\n", tool_time_text(c->created, ts, sizeof ts));
    printf("schedule    %s\n", c->schedule ? tool_time_text(c->schedule, ts,
                                                            sizeof ts)
                                           : "-");
    printf("started     %s\n", v.started ? tool_time_text(v.started, ts,
                                                          sizeof ts)
                                          : "-");
    printf("finished    %s\n", v.finished ? tool_time_text(v.finished, ts,
                                                           sizeof ts)
                                           : "-");
    printf("recipients  %llu%s (%llu suppressed at send)\n",
           (unsigned long long)c->recipients,
           c->state != QUEUE_CAMPAIGN_DRAFT && !c->send_complete
               ? " so far, send not complete" : "",
           (unsigned long long)c->suppressed_at_send);
    printf("queued      %llu\n", (unsigned long long)v.k.queued);
    printf("sent        %llu (delivered + bounced)\n",
           (unsigned long long)v.sent);
    printf("delivered   %llu\n", (unsigned long long)v.k.delivered);
    if (c->track)
        printf("opened      %llu (%llu unique)\nclicked     %llu (%llu "
               "unique)\n", (unsigned long long)v.tk.opens,
               (unsigned long long)v.tk.unique_opens,
               (unsigned long long)v.tk.clicks,
               (unsigned long long)v.tk.unique_clicks);
    printf("deferred    %llu (deferrals)\n",
           (unsigned long long)v.k.deferred);
    printf("bounced     %llu\n", (unsigned long long)v.k.bounced);
    printf("expired     %llu\n", (unsigned long long)v.k.expired);
    printf("suppressed  %llu (in the queue, not sent)\n",
           (unsigned long long)v.k.suppressed);
    printf("cancelled   %llu (not sent)\n",
           (unsigned long long)v.k.cancelled);
    if (eta.state == ETA_TIME)
        printf("eta         %s (%s)\n", tool_time_text(eta.eta, ts, sizeof ts),
               eta.text);
    else if (eta.state == ETA_PAUSED)
        printf("eta         paused (%s)\n", eta.text);
    else
        printf("eta         - (%s)\n", eta.text);
    eta_free(&eta);
    camp_end(&cmd);
    return 0;
}

/* Rows of `campaign list`. */
struct list_ctx {
    struct tool_ctx *ctx;
    struct queue *q;
    uint32_t account;    /* 0: every campaign the caller may see */
    json_t *arr;
    int err;
};

/* queue_campaigns() callback: one row, if the caller may see it. */
static int list_one(void *arg, const struct queue_campaign *c)
{
    struct list_ctx *lc = arg;
    struct camp_view v;
    int r;
    if (!lc->account &&
        (tool_role_on(lc->ctx, lc->q, c->account, &r) ||
         r < QUEUE_ROLE_VIEWER))
        return 0;
    if ((lc->err = view_of(lc->q, c, &v)))
        return 1;
    if (lc->arr) {
        json_array_append_new(lc->arr, view_json(lc->q, c, &v, false));
        return 0;
    }
    printf("%-6llu %-10s %-30.30s %-20.20s %10llu %10llu %10llu\n",
           (unsigned long long)c->id, queue_campaign_state_name(v.state),
           c->name, v.list_name, (unsigned long long)c->recipients,
           (unsigned long long)v.k.queued,
           (unsigned long long)v.k.delivered);
    return 0;
}

/* `campaign list`: the campaigns of one account, or all the caller
 * may see. */
int camp_cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    uint32_t account;
    bool named;
    int rc = tool_list_begin(ctx, argc, argv,
                             "campaign", ACT_CAMPAIGN_LIST, "campaigns",
                             &q, &account, &named);
    if (rc)
        return rc;
    uint32_t master = 0;
    queue_account_master(q, &master);
    struct list_ctx lc = { ctx, q, named || account != master ? account : 0,
                           ctx->json ? json_array() : NULL, 0 };
    if (!lc.arr)
        printf("%-6s %-10s %-30s %-20s %10s %10s %10s\n", "ID", "STATE",
               "NAME", "LIST", "RECIPIENTS", "QUEUED", "DELIVERED");
    long n = queue_campaigns(q, lc.account, list_one, &lc);
    if (n >= 0 && lc.err)
        n = lc.err;
    if (n < 0) {
        json_decref(lc.arr);
        rc = tool_admin_error(CAMP_P " list", (int)n);
    } else if (lc.arr) {
        tool_emit_json(lc.arr);
    }
    queue_close(q);
    return rc;
}
