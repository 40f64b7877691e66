/*
 * incident_act.c - the circuit breaker and escalation on the incident
 * worker: a rule's pause taken and marked in the record, an escalation
 * written and alerted, a probe let go, and the verdict of a probe acted
 * on (the pause lifted and the incident resolved, or the failure noted).
 *
 * DESCRIPTION
 *   Pause: the record holds the pause as "pending" from the transaction
 *   that opened it (incident_job.c).  inc_act_take() pauses with the
 *   ordinary mechanisms, as a person's command would (the campaign:
 *   queue_campaign_pause; the account: disabled, its mail held; the site:
 *   a site pause), audited as sluiced via "incident N", and then marks
 *   the pause paused (or failed) in the record with the timeline entry
 *   "action".  A crash between the two leaves it pending, and the next
 *   start takes it again: pausing what is paused already counts as
 *   taken, so the action happens at least once.
 *
 *   Probe (resume = probe): one parked delivery of the paused campaign or
 *   account, to the domain the root cause named first, goes back to now
 *   (queue_incident_probe_release); a site lets one transaction through
 *   (incident_probe.c).  Its verdict: delivered lifts the pause
 *   (queue_campaign_resume, the account enabled, the site resumed; audited
 *   as sluiced via "incident N"), the timeline says "resumed after
 *   probe" and the incident resolves; anything else is noted ("probe")
 *   and the pause stays until the next probe.  A pause someone lifted
 *   meanwhile is noted and not probed again.
 *
 * DIAGNOSTICS
 *   A spool failure ends the job with its code in j->err; incident.c
 *   reports it and the loop tries again later.  A pause that cannot be
 *   taken (a campaign that is done) is marked failed, with the reason in
 *   the timeline and on stderr.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "incident_int.h"
#include "incident_rec.h"
#include "queue_admin.h"
#include "queue_campaign.h"

/* The pause's kind and what it names, for the timeline. */
static void what_paused(const struct inc_job *j, int act, char *out,
                        size_t len)
{
    switch (act) {
    case ALERT_ACT_PAUSE_CAMPAIGN:
        snprintf(out, len, "campaign %llu", (unsigned long long)j->campaign);
        break;
    case ALERT_ACT_PAUSE_ACCOUNT:
        snprintf(out, len, "account %u", j->account);
        break;
    default:
        snprintf(out, len, "site %s", j->act_name);
        break;
    }
}

/* Whether campaign id is paused now. */
static bool campaign_paused(struct queue *q, uint64_t id)
{
    struct queue_campaign c;
    if (queue_campaign_get(q, id, &c))
        return false;
    bool yes = c.state == QUEUE_CAMPAIGN_PAUSED;
    queue_campaign_clear(&c);
    return yes;
}

/* Whether account id is disabled now. */
static bool account_disabled(struct queue *q, uint32_t id)
{
    struct queue_account a;
    return !queue_account_get(q, id, &a) && a.disabled;
}

/* queue_controls(): whether the site of arg's name is paused. */
static int find_site(void *arg, const struct queue_control *c)
{
    const char **name = arg;
    if (c->kind == QUEUE_CTL_SITE && !strcmp(c->name, *name)) {
        *name = NULL;
        return 1;
    }
    return 0;
}

/* Whether the pause act of j is in effect now. */
static bool in_effect(struct inc_job *j, int act)
{
    const char *name = j->act_name;
    switch (act) {
    case ALERT_ACT_PAUSE_CAMPAIGN:
        return campaign_paused(j->e->q, j->campaign);
    case ALERT_ACT_PAUSE_ACCOUNT:
        return account_disabled(j->e->q, j->account);
    default:
        return queue_controls(j->e->q, find_site, &name) >= 0 && !name;
    }
}

/* Pause (set) or resume what act names, by sluiced; 0 also when it is
 * so already. */
static int set_pause(struct inc_job *j, int act, bool set)
{
    char via[40], reason[200];
    struct queue_actor by = inc_actor(j, via, sizeof via);
    struct queue *q = j->e->q;
    int err;
    snprintf(reason, sizeof reason, "incident %llu: %s",
             (unsigned long long)j->id, j->rule.name);
    switch (act) {
    case ALERT_ACT_PAUSE_CAMPAIGN:
        err = set ? queue_campaign_pause(q, j->campaign, reason, &by)
                  : queue_campaign_resume(q, j->campaign, &by);
        if (err == QUEUE_ESTATE && campaign_paused(q, j->campaign) == set)
            err = 0; /* taken before a crash, or resumed by someone */
        return err;
    case ALERT_ACT_PAUSE_SITE:
        err = set ? queue_pause(q, QUEUE_CTL_SITE, j->act_name, reason, via)
                  : queue_resume(q, QUEUE_CTL_SITE, j->act_name);
        return err == QUEUE_ENOTFOUND && !set ? 0 : err;
    default: {
        struct queue_account_change ch = { .set = QUEUE_AC_DISABLED,
                                           .disabled = set };
        err = queue_account_update(q, j->account, &ch, &by);
        if (err && account_disabled(q, j->account) == set)
            err = 0;
        return err;
    }
    }
}

void inc_act_take(struct inc_job *j)
{
    int act = j->kind == INC_JOB_OPEN ? j->rule.action : j->act;
    char what[120], text[400];
    j->act_state = INC_ACT_NONE;
    if (act == ALERT_ACT_NONE)
        return;
    if (j->kind == INC_JOB_OPEN)
        snprintf(j->act_name, sizeof j->act_name, "%s", j->scope);
    what_paused(j, act, what, sizeof what);
    int err = set_pause(j, act, true);
    int64_t now = (int64_t)engine_now_ms();
    if (err) {
        snprintf(text, sizeof text, "%s %s failed: %s (%s)",
                 config_alert_action_name(act), what, engine_strerror(err),
                 queue_last_detail());
        fprintf(stderr, "sluiced: incident %llu: %s\n",
                (unsigned long long)j->id, text);
    } else {
        snprintf(text, sizeof text, "%s: account %u, %s",
                 config_alert_action_name(act), j->account, what);
    }
    json_t *p = json_pack("{s:s}", "state", err ? "failed" : "paused");
    if (!err) {
        json_object_set_new(p, "since_ms", json_integer(now));
        j->next_probe_ms = now + (int64_t)j->rule.probe_after_s * 1000;
        if (j->rule.resume == ALERT_RESUME_PROBE)
            json_object_set_new(p, "next_probe_ms",
                                json_integer(j->next_probe_ms));
    }
    struct incident_edit ed = { .what = "action", .text = text, .pause = p };
    int rc = inc_note_edit(j, &ed, "incident action", NULL);
    json_decref(p);
    /* not marked: still pending, taken again (at the latest, next start) */
    j->act_state = rc ? INC_ACT_PENDING
                      : err ? INC_ACT_FAILED : INC_ACT_PAUSED;
    if (rc && j->kind == INC_JOB_ACT)
        j->err = rc;
}

/* The timeline entry of a pause someone else lifted; no more probes. */
static void note_gone(struct inc_job *j)
{
    char what[120], text[300];
    what_paused(j, j->act, what, sizeof what);
    snprintf(text, sizeof text, "%s is not paused any more (resumed by "
             "hand, see the audit trail): no more probes", what);
    json_t *p = json_pack("{s:s}", "state", "lifted");
    struct incident_edit ed = { .what = "resumed", .text = text, .pause = p };
    j->err = inc_note_edit(j, &ed, "incident resume", NULL);
    json_decref(p);
    if (j->err == -EINVAL)
        j->err = 0; /* resolved meanwhile */
}

/* Worker: an escalation to j->severity, written and (when the interval
 * allows) alerted. */
static void job_escalate(struct inc_job *j)
{
    char etext[200];
    const char *sev = config_alert_severity_name(j->severity);
    snprintf(etext, sizeof etext, "escalated %s %s %s %s", j->rule.name, sev,
             config_alert_scope_name(j->scope_kind), j->scope);
    struct incident_edit ed = { .what = "escalated", .text = j->text,
                                .severity = sev, .by_time = j->by_time };
    j->err = inc_note_edit(j, &ed, "incident escalate", etext);
    if (j->err == -EALREADY || j->err == -EINVAL) {
        j->err = 0; /* acknowledged, escalated or resolved meanwhile */
        j->skipped = true;
        return;
    }
    if (!j->err && j->alert)
        inc_alert(j, "escalated");
}

/* Worker: one parked delivery of the paused campaign or account back to
 * now (j->released; 0 when none waits there). */
static void job_probe(struct inc_job *j)
{
    char via[40];
    struct queue_actor by = inc_actor(j, via, sizeof via);
    struct queue_delivery d;
    if (!in_effect(j, j->act)) {
        j->gone = true;
        note_gone(j);
        return;
    }
    int64_t at = j->act == ALERT_ACT_PAUSE_CAMPAIGN
                 ? queue_park_time(j->campaign)
                 : queue_account_park_time(j->account);
    int err = queue_incident_probe_release(j->e->q, at, j->domain, j->account,
                                           &by, &d);
    if (!err)
        j->released = d.id;
    else if (err != QUEUE_ENOTFOUND)
        j->err = err;
}

/* Worker: act on a probe's verdict (j->probe_ok, what happened in
 * j->text). */
static void job_verdict(struct inc_job *j)
{
    char what[120], text[500], etext[200];
    if (j->gone) {
        note_gone(j);
        return;
    }
    what_paused(j, j->act, what, sizeof what);
    if (!j->probe_ok) {
        json_t *p = json_pack("{s:I,s:I}", "next_probe_ms",
                              (json_int_t)j->next_probe_ms, "probes",
                              (json_int_t)j->probes);
        snprintf(text, sizeof text, "probe failed: %s; %s stays paused, the "
                 "next probe in %us", j->text, what, j->rule.probe_after_s);
        struct incident_edit ed = { .what = "probe", .text = text,
                                    .pause = p };
        j->err = inc_note_edit(j, &ed, "incident probe", NULL);
        json_decref(p);
        if (j->err == -EINVAL)
            j->err = 0; /* resolved meanwhile */
        return;
    }
    if ((j->err = set_pause(j, j->act, false))) {
        snprintf(j->why, sizeof j->why, "resuming %s: %s (%s)", what,
                 engine_strerror(j->err), queue_last_detail());
        return;
    }
    json_t *p = json_pack("{s:s,s:I}", "state", "lifted", "lifted_ms",
                          (json_int_t)engine_now_ms());
    snprintf(text, sizeof text, "%s resumed after probe: %s", what, j->text);
    snprintf(etext, sizeof etext, "resumed %s %s %s after probe",
             j->rule.name, config_alert_scope_name(j->scope_kind), j->scope);
    struct incident_edit ed = { .what = "resumed", .text = text, .pause = p };
    j->err = inc_note_edit(j, &ed, "incident resume", etext);
    json_decref(p);
    if (j->err == -EINVAL)
        j->err = 0; /* resolved by hand meanwhile: the pause is lifted */
    if (j->err)
        return;
    snprintf(etext, sizeof etext, "resolved %s %s %s", j->rule.name,
             config_alert_scope_name(j->scope_kind), j->scope);
    j->err = inc_note(j, "resolved", "resumed after probe",
                      "incident resolve", etext);
    if (j->err == -EINVAL) {
        j->err = 0;
        return;
    }
    if (!j->err && j->alert)
        inc_alert(j, "resolved");
}

void inc_act_work(struct inc_job *j)
{
    switch (j->kind) {
    case INC_JOB_ACT:
        inc_act_take(j);
        break;
    case INC_JOB_ESCALATE:
        job_escalate(j);
        break;
    case INC_JOB_ALERT:
        inc_alert(j, "escalated");
        break;
    case INC_JOB_PROBE:
        job_probe(j);
        break;
    case INC_JOB_VERDICT:
        job_verdict(j);
        break;
    }
}
