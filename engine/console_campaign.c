/*
 * console_campaign.c - the web console's campaigns: the list, one
 * campaign, and its pause, resume and cancel.
 *
 * DESCRIPTION
 *   GET  /console/api/campaigns             {"campaigns": [rows]}: every
 *        campaign of the accounts the caller views (`campaign list`)
 *   GET  /console/api/campaigns/ID          one row with its definition
 *        (`campaign show`: viewer on its account, else 403)
 *   POST /console/api/campaigns/ID/pause | /resume | /cancel  {"reason"?}
 *        (`campaign pause|resume`: sender; `cancel`: manager)
 *   A row's state is settled as `campaign show` settles it
 *   (queue_campaign_settle), its counts are the spool's counters
 *   (queue_counts_campaign): total (recipients queued by send), delivered,
 *   bounced, expired, suppressed (ended unsent in the queue),
 *   suppressed_at_send, cancelled, pending (not yet terminal), sent
 *   (delivered + bounced), deferred (deferral events), progress (terminal
 *   / total, 0..1; 1 once done) and eta (null: the honest ETA of
 *   `campaign show` is computed by the tools only so far).  An action is
 *   the spool's own call the CLI makes (queue_campaign_pause ...): the
 *   state, the control sluiced polls each second and the audit record,
 *   the caller as the actor, commit together.
 *
 * DIAGNOSTICS
 *   403 refused (audited), 404 unknown campaign, 405 a wrong method, 409 a
 *   change the state refuses (say, resuming a campaign that is sending),
 *   400 a reason that is not text or over QUEUE_MAX_CTL_REASON bytes, 503
 *   a spool read failure.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "console_int.h"
#include "queue_campaign.h"
#include "tool_admin.h"

/* One campaign's row: state settled as `campaign show` settles it. */
static json_t *campaign_row(struct queue *q, const struct queue_campaign *c,
                            bool full)
{
    struct queue_counts n;
    int state = c->state;
    if (queue_campaign_settle(q, c->id, &state) ||
        queue_counts_campaign(q, c->id, &n))
        return NULL;
    uint64_t done = n.delivered + n.bounced + n.expired + n.suppressed +
                    n.cancelled;
    double progress = state == QUEUE_CAMPAIGN_DONE ? 1
                      : c->recipients ? (double)done / (double)c->recipients
                      : 0;
    if (progress > 1)
        progress = 1;
    json_t *j = json_pack(
        "{s:I,s:s,s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,"
        "s:n,s:b}",
        "id", (json_int_t)c->id, "name", c->name, "account",
        console_account_name(q, c->account), "state",
        queue_campaign_state_name(state), "total", (json_int_t)c->recipients,
        "delivered", (json_int_t)n.delivered, "bounced",
        (json_int_t)n.bounced, "expired", (json_int_t)n.expired,
        "suppressed", (json_int_t)n.suppressed, "suppressed_at_send",
        (json_int_t)c->suppressed_at_send, "cancelled",
        (json_int_t)n.cancelled, "pending", (json_int_t)n.queued, "sent",
        (json_int_t)(n.delivered + n.bounced), "deferred",
        (json_int_t)n.deferred, "progress", progress, "eta",
        "send_complete", c->send_complete);
    if (j) {
        json_object_set_new(j, "account_id", json_integer(c->account));
        json_object_set_new(j, "started", console_time(c->started));
        json_object_set_new(j, "finished", console_time(c->finished));
    }
    if (j && full) {
        json_object_set_new(j, "from", json_string(c->from));
        json_object_set_new(j, "subject", json_string(c->subject));
        json_object_set_new(j, "list", json_integer((json_int_t)c->list));
        json_object_set_new(j, "created", console_time(c->created));
        json_object_set_new(j, "schedule", console_time(c->schedule));
    }
    return j;
}

struct camp_list {
    struct console_call *k;
    json_t *arr;
    int err;
};

/* queue_campaigns() callback: the rows the caller may view. */
static int list_one(void *arg, const struct queue_campaign *c)
{
    struct camp_list *l = arg;
    if (console_role(l->k, c->account) < QUEUE_ROLE_VIEWER)
        return 0;
    json_t *row = campaign_row(l->k->q, c, false);
    if (!row) {
        l->err = -EIO;
        return 1;
    }
    json_array_append_new(l->arr, row);
    return 0;
}

unsigned console_campaigns(struct console_call *k, json_t **out)
{
    struct camp_list l = { k, json_array(), 0 };
    long n = queue_campaigns(k->q, 0, list_one, &l);
    if (n < 0 || l.err) {
        json_decref(l.arr);
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(n < 0 ? (int)n : l.err));
    }
    *out = json_pack("{s:o}", "campaigns", l.arr);
    return MHD_HTTP_OK;
}

unsigned console_campaign(struct console_call *k, uint64_t id,
                          const char *verb, json_t **out)
{
    struct queue_campaign c;
    char obj[QUEUE_MAX_CAMPAIGN_NAME + 40];
    unsigned st;
    int role, act;
    bool post = !strcmp(k->method, "POST");
    if (!verb && post)
        return console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "GET a campaign; POST its pause, resume or "
                             "cancel");
    if (verb && !post)
        return console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "POST /console/api/campaigns/ID/%s", verb);
    act = !verb ? ACT_CAMPAIGN_SHOW
          : !strcmp(verb, "pause") ? ACT_CAMPAIGN_PAUSE
          : !strcmp(verb, "resume") ? ACT_CAMPAIGN_RESUME
          : !strcmp(verb, "cancel") ? ACT_CAMPAIGN_CANCEL : ACT_NONE;
    if (act == ACT_NONE)
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such action");
    int err = queue_campaign_get(k->q, id, &c);
    if (err == QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_NOT_FOUND, "no campaign %llu",
                             (unsigned long long)id);
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    snprintf(obj, sizeof obj, "campaign %llu (%.127s)",
             (unsigned long long)c.id, c.name);
    if ((st = console_allow(k, act, c.account, obj, &role, out))) {
        queue_campaign_clear(&c);
        return st;
    }
    json_t *b = NULL;
    if (verb && !(b = console_body(k, out, &st))) {
        queue_campaign_clear(&c);
        return st;
    }
    json_t *rj = b ? json_object_get(b, "reason") : NULL;
    const char *reason = json_string_value(rj);
    struct queue_actor by = console_actor(k, role, c.account);
    if ((rj && !reason) || (reason && strlen(reason) > QUEUE_MAX_CTL_REASON))
        err = -EINVAL;
    else if (act == ACT_CAMPAIGN_PAUSE)
        err = queue_campaign_pause(k->q, id, reason, &by);
    else if (act == ACT_CAMPAIGN_RESUME)
        err = queue_campaign_resume(k->q, id, &by);
    else if (act == ACT_CAMPAIGN_CANCEL)
        err = queue_campaign_cancel(k->q, id, reason, &by);
    json_decref(b);
    queue_campaign_clear(&c);
    if (err == -EINVAL)
        return console_error(out, MHD_HTTP_BAD_REQUEST, "\"reason\": text "
                             "up to %d bytes", QUEUE_MAX_CTL_REASON);
    if (err == QUEUE_ESTATE)
        return console_error(out, MHD_HTTP_CONFLICT, "%s",
                             queue_last_detail());
    if (!err && !(err = queue_campaign_get(k->q, id, &c))) {
        *out = campaign_row(k->q, &c, true);
        queue_campaign_clear(&c);
        if (*out)
            return MHD_HTTP_OK;
        err = -EIO;
    }
    return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                         queue_strerror(err));
}
