/*
 * incident_probe.c - the circuit breaker on the loop: pauses still to be
 * taken, probes of a paused campaign, account or site, and their
 * verdicts.
 *
 * DESCRIPTION
 *   An open incident whose record says its pause is pending (a crash came
 *   between the record and the pause) gets an "act" job: the pause is
 *   taken and marked (incident_act.c).
 *
 *   A rule with resume = probe: once the pause has lasted probe_after and
 *   the rule does not fire for the scope (its signal is clean), a probe:
 *   - a paused campaign or account: a pass is opened here first, then a
 *     job moves one parked delivery back to now, the first to the
 *     recipient domain the root cause named first (none parked there:
 *     the next try takes any).  The claim of that campaign or account to
 *     that domain goes through the pause (incidents_probe_claim(), from
 *     controls.c; the item is marked a probe, so the account hold lets it
 *     by too); the rest stays parked;
 *   - a paused site lets one transaction through (site_probe_open()).
 *   The probe's outcome comes from the event stream (incidents_event(),
 *   from the event log's pump): delivered lifts the pause and resolves
 *   the incident; bounced, deferred or expired, or no outcome within
 *   PROBE_WAIT_MIN_S (or probe_after when longer), is a failure: noted,
 *   and the next probe waits probe_after again.  While its pause waits
 *   for a probe, the incident does not resolve itself (auto_resolve).
 *
 *   The state of a probe in flight is only here: after a restart the
 *   next probe comes at the record's next_probe_ms, and a delivery let
 *   go meanwhile is parked again by its claim.
 *
 * DIAGNOSTICS
 *   None of its own: jobs report their failures (incident.c) and are
 *   tried again a few seconds later.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"
#include "incident_int.h"
#include "incident_rec.h"

#define PROBE_WAIT_MIN_S 120   /* a probe's outcome awaited at least this */
#define RETRY_MS 5000          /* a failed job, an unknown site: again then */

/* How long a probe's outcome is awaited under rule r, seconds. */
static unsigned probe_wait(const struct alert_rule *r)
{
    return r->probe_after_s > PROBE_WAIT_MIN_S ? r->probe_after_s
                                               : PROBE_WAIT_MIN_S;
}

/* The rule of o in the running config, NULL when it is gone. */
static const struct alert_rule *rule_of(const struct engine *e,
                                        const struct inc_open *o)
{
    for (size_t i = 0; i < e->cfg.nalerts; i++)
        if (!strcmp(e->cfg.alerts[i].name, o->rule))
            return &e->cfg.alerts[i];
    return NULL;
}

struct inc_job *inc_job_for(struct engine *e, const struct inc_open *o,
                            int kind)
{
    struct inc_job *j = calloc(1, sizeof *j);
    (void)e;
    if (!j)
        return NULL;
    j->kind = kind;
    j->id = o->id;
    j->account = o->account;
    j->campaign = o->campaign;
    snprintf(j->rule.name, sizeof j->rule.name, "%s", o->rule);
    j->scope_kind = o->kind;
    snprintf(j->scope, sizeof j->scope, "%s", o->scope);
    j->act = o->act;
    snprintf(j->act_name, sizeof j->act_name, "%s", o->act_name);
    snprintf(j->domain, sizeof j->domain, "%s",
             o->pass_any ? "" : o->domain);
    j->probes = o->probes;
    return j;
}

/* The action a record's pause kind stands for. */
static int act_of(const char *kind)
{
    if (!kind)
        return ALERT_ACT_NONE;
    if (!strcmp(kind, "campaign"))
        return ALERT_ACT_PAUSE_CAMPAIGN;
    if (!strcmp(kind, "account"))
        return ALERT_ACT_PAUSE_ACCOUNT;
    if (!strcmp(kind, "site"))
        return ALERT_ACT_PAUSE_SITE;
    return ALERT_ACT_NONE;
}

void inc_open_load(struct inc_open *o, json_t *rec)
{
    json_t *p = json_object_get(rec, "pause");
    const char *st = json_string_value(json_object_get(p, "state"));
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *dom = json_string_value(json_object_get(p, "domain"));
    int sev = config_alert_severity_find(json_string_value(
        json_object_get(rec, "severity")));
    o->severity = sev < 0 ? 1 : sev;
    o->opened_ms = json_integer_value(json_object_get(rec, "opened_ms"));
    o->escalated_ms = json_integer_value(json_object_get(rec,
                                                        "escalated_ms"));
    o->acked = !strcmp(json_string_value(json_object_get(rec, "state"))
                       ? json_string_value(json_object_get(rec, "state"))
                       : "", "acknowledged");
    o->campaign = (uint64_t)json_integer_value(json_object_get(rec,
                                                              "campaign"));
    o->act = act_of(json_string_value(json_object_get(p, "kind")));
    if (o->act == ALERT_ACT_NONE || !st || !name)
        return;
    o->act_state = !strcmp(st, "pending") ? INC_ACT_PENDING
                   : !strcmp(st, "paused") ? INC_ACT_PAUSED
                   : !strcmp(st, "lifted") ? INC_ACT_LIFTED : INC_ACT_FAILED;
    snprintf(o->act_name, sizeof o->act_name, "%s", name);
    snprintf(o->domain, sizeof o->domain, "%s", dom ? dom : "");
    o->next_probe_ms = json_integer_value(json_object_get(p,
                                                          "next_probe_ms"));
    if (!o->next_probe_ms)
        o->next_probe_ms = json_integer_value(json_object_get(p,
                                                              "since_ms")) +
            json_integer_value(json_object_get(p, "probe_after_s")) * 1000;
    o->probes = json_integer_value(json_object_get(p, "probes"));
}

bool inc_probe_holds(const struct inc_open *o, const struct alert_rule *r)
{
    return r && r->resume == ALERT_RESUME_PROBE &&
           (o->act_state == INC_ACT_PAUSED || o->act_state == INC_ACT_PENDING);
}

/* The probe of o ends with a verdict (ok: delivered), text what came. */
static void decide(struct engine *e, struct inc_open *o, bool ok,
                   const char *text)
{
    struct incidents *in = e->incidents;
    if ((o->probe == INC_PROBE_OUT || o->probe == INC_PROBE_RELEASING) &&
        in->probes_out)
        in->probes_out--;
    if (o->pass && in->passes)
        in->passes--;
    o->pass = false;
    if (o->act == ALERT_ACT_PAUSE_SITE)
        site_probe_close(e, o->act_name);
    o->probe = INC_PROBE_DECIDED;
    o->probe_ok = ok;
    snprintf(o->probe_text, sizeof o->probe_text, "%s", text);
}

void inc_probe_forget(struct engine *e, struct inc_open *o)
{
    struct incidents *in = e->incidents;
    if (o->pass && in->passes)
        in->passes--;
    o->pass = false;
    if (o->probe == INC_PROBE_OUT || o->probe == INC_PROBE_RELEASING) {
        if (in->probes_out)
            in->probes_out--;
        if (o->act == ALERT_ACT_PAUSE_SITE)
            site_probe_close(e, o->act_name);
    }
    o->probe = INC_PROBE_IDLE;
}

/* Queue job j for o, its probe state becoming st meanwhile. */
static void start(struct engine *e, struct inc_open *o, struct inc_job *j,
                  int st)
{
    if (!j)
        return;
    o->probe = st;
    inc_job_start(e, j);
}

/* Begin a probe of o's pause. */
static void probe_begin(struct engine *e, struct inc_open *o, int64_t now_ms,
                        const struct alert_rule *r)
{
    struct incidents *in = e->incidents;
    if (o->act == ALERT_ACT_PAUSE_SITE) {
        if (!engine_paused(e, QUEUE_CTL_SITE, o->act_name)) {
            struct inc_job *j = inc_job_for(e, o, INC_JOB_VERDICT);
            if (j)
                j->gone = true;
            start(e, o, j, INC_PROBE_JOB);
        } else if (site_probe_open(e, o->act_name)) {
            o->probe = INC_PROBE_OUT;
            o->probe_seq = eventlog_counted(e);
            in->probes_out++;
        } else {
            o->next_probe_ms = now_ms + RETRY_MS; /* nothing waits for it */
            return;
        }
    } else {
        o->pass = true;
        o->probe_delivery = 0;
        in->passes++;
        start(e, o, inc_job_for(e, o, INC_JOB_PROBE), INC_PROBE_RELEASING);
        if (o->probe != INC_PROBE_RELEASING) {
            o->pass = false;   /* out of memory: again next tick */
            in->passes--;
            return;
        }
        in->probes_out++;      /* its outcome may come before the job's end */
    }
    o->probe_deadline_ms = now_ms + (int64_t)probe_wait(r) * 1000;
}

void inc_probe_tick(struct engine *e, int64_t now_ms)
{
    struct incidents *in = e->incidents;
    int64_t now_s = now_ms / 1000;
    for (size_t i = 0; i < in->n && !in->busy; i++) {
        struct inc_open *o = &in->v[i];
        const struct alert_rule *r = rule_of(e, o);
        if (!o->id)
            continue;
        if (o->act_state == INC_ACT_PENDING) {
            if (now_ms >= o->next_probe_ms)
                start(e, o, inc_job_for(e, o, INC_JOB_ACT), INC_PROBE_IDLE);
            continue;
        }
        if (!inc_probe_holds(o, r))
            continue;
        if (o->probe == INC_PROBE_OUT && now_ms >= o->probe_deadline_ms) {
            char text[120];
            snprintf(text, sizeof text, "no outcome of the probe within %us",
                     probe_wait(r));
            decide(e, o, false, text);
        }
        if (o->probe == INC_PROBE_DECIDED) {
            struct inc_job *j = inc_job_for(e, o, INC_JOB_VERDICT);
            if (j) {
                j->probe_ok = o->probe_ok;
                snprintf(j->text, sizeof j->text, "%s", o->probe_text);
                j->next_probe_ms = now_ms + (int64_t)r->probe_after_s * 1000;
                j->probes = o->probes + !o->probe_ok;
            }
            start(e, o, j, INC_PROBE_JOB);
        } else if (o->probe == INC_PROBE_IDLE && now_ms >= o->next_probe_ms &&
                   o->last_fire_s < now_s) {
            probe_begin(e, o, now_ms, r);
        }
    }
}

bool inc_probe_finished(struct engine *e, struct inc_open *o,
                        struct inc_job *j)
{
    struct incidents *in = e->incidents;
    int64_t now_ms = (int64_t)engine_now_ms();
    switch (j->kind) {
    case INC_JOB_OPEN:
        o->act = j->rule.action;
        o->act_state = j->act_state;
        o->campaign = j->campaign;
        o->severity = j->rule.severity;
        o->opened_ms = now_ms;
        snprintf(o->act_name, sizeof o->act_name, "%s", j->act_name);
        snprintf(o->domain, sizeof o->domain, "%s", j->domain);
        o->next_probe_ms = o->act_state == INC_ACT_PENDING
                           ? now_ms + RETRY_MS : j->next_probe_ms;
        return false;
    case INC_JOB_ACT:
        o->act_state = j->act_state;
        o->next_probe_ms = o->act_state == INC_ACT_PENDING
                           ? now_ms + RETRY_MS : j->next_probe_ms;
        return false;
    case INC_JOB_PROBE:
        if (o->probe != INC_PROBE_RELEASING)
            return false;   /* decided already: its outcome came first */
        if (j->err || j->gone || !j->released) {
            if (o->pass && in->passes)
                in->passes--;
            if (in->probes_out)
                in->probes_out--;
            o->pass = false;
            o->probe = INC_PROBE_IDLE;
        }
        if (j->err) {
            o->next_probe_ms = now_ms + RETRY_MS;
        } else if (j->gone) {
            o->act_state = INC_ACT_LIFTED;
        } else if (!j->released && !o->pass_any && o->domain[0]) {
            o->pass_any = true;     /* none to that domain: any, now */
        } else if (!j->released) {
            o->pass_any = false;    /* nothing parked: later */
            o->next_probe_ms = now_ms + (int64_t)j->rule.probe_after_s *
                                        1000;
        } else {
            o->probe = INC_PROBE_OUT;
        }
        return false;
    case INC_JOB_VERDICT:
        if (j->err) {
            o->probe = INC_PROBE_DECIDED; /* acted on again next tick */
            return false;
        }
        o->probe = INC_PROBE_IDLE;
        o->pass_any = false;
        if (j->gone) {
            o->act_state = INC_ACT_LIFTED;
            return false;
        }
        if (j->probe_ok)
            return true;    /* lifted and resolved */
        o->probes = j->probes;
        o->next_probe_ms = j->next_probe_ms;
        return false;
    }
    return false;
}

bool incidents_probe_claim(struct engine *e, const struct queue_claim *c)
{
    struct incidents *in = e->incidents;
    if (!in || !in->passes)
        return false;
    for (size_t i = 0; i < in->n; i++) {
        struct inc_open *o = &in->v[i];
        if (!o->pass || o->probe_delivery)
            continue;
        bool mine = o->act == ALERT_ACT_PAUSE_CAMPAIGN
                    ? c->campaign == o->campaign
                    : c->account == o->account;
        if (!mine || (!o->pass_any && o->domain[0] &&
                      strcasecmp(c->rcpt + c->domain_off, o->domain)))
            continue;
        o->probe_delivery = c->id;
        o->pass = false;
        in->passes--;
        return true;
    }
    return false;
}

void incidents_event(struct engine *e, const struct queue_event *ev)
{
    struct incidents *in = e->incidents;
    char dom[256], text[300];
    if (!in || !in->probes_out ||
        (ev->type != QUEUE_EV_DELIVERED && ev->type != QUEUE_EV_BOUNCED &&
         ev->type != QUEUE_EV_DEFERRED && ev->type != QUEUE_EV_EXPIRED))
        return;
    for (size_t i = 0; i < in->n; i++) {
        struct inc_open *o = &in->v[i];
        if (o->probe != INC_PROBE_OUT && o->probe != INC_PROBE_RELEASING)
            continue;
        if (o->act == ALERT_ACT_PAUSE_SITE) {
            /* the first attempt at the site since it let one through */
            if (ev->seq <= o->probe_seq ||
                strcmp(dest_rcpt_site(e, ev->rcpt, dom, sizeof dom),
                       o->act_name))
                continue;
            o->probe_delivery = ev->delivery;
        } else if (!o->probe_delivery || ev->delivery != o->probe_delivery) {
            continue;
        }
        int n = snprintf(text, sizeof text, "delivery %llu to %.100s %s",
                         (unsigned long long)ev->delivery, ev->rcpt,
                         queue_event_name(ev->type));
        if (n > 0 && (size_t)n < sizeof text && (ev->code || ev->text[0]))
            snprintf(text + n, sizeof text - (size_t)n, ": %d %.16s %.120s",
                     ev->code, ev->enhanced, ev->text);
        decide(e, o, ev->type == QUEUE_EV_DELIVERED, text);
    }
}

/* status.json's view of one breaker. */
static json_t *breaker_json(const struct inc_open *o)
{
    static const char *const states[] = {
        [INC_ACT_NONE] = "none", [INC_ACT_PENDING] = "pending",
        [INC_ACT_PAUSED] = "paused", [INC_ACT_FAILED] = "failed",
        [INC_ACT_LIFTED] = "lifted" };
    static const char *const probes[] = {
        [INC_PROBE_IDLE] = "waiting", [INC_PROBE_RELEASING] = "releasing",
        [INC_PROBE_OUT] = "out", [INC_PROBE_DECIDED] = "decided",
        [INC_PROBE_JOB] = "deciding" };
    const char *kind = o->act == ALERT_ACT_PAUSE_CAMPAIGN ? "campaign"
                       : o->act == ALERT_ACT_PAUSE_ACCOUNT ? "account"
                                                           : "site";
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I}", "incident",
                     (json_int_t)o->id, "rule", o->rule, "severity",
                     config_alert_severity_name(o->severity), "kind", kind,
                     "name", o->act_name, "state", states[o->act_state],
                     "next_probe_ms", (json_int_t)o->next_probe_ms, "probe",
                     probes[o->probe], "probes", (json_int_t)o->probes);
}

/* Whether o's pause is in effect as the engine applies the spool (a
 * person may have resumed it; pending: not taken yet, listed). */
static bool applied(const struct engine *e, const struct inc_open *o)
{
    if (o->act_state == INC_ACT_PENDING)
        return true;
    if (o->act_state != INC_ACT_PAUSED)
        return false;
    switch (o->act) {
    case ALERT_ACT_PAUSE_CAMPAIGN:
        return engine_paused(e, QUEUE_CTL_CAMPAIGN, o->act_name);
    case ALERT_ACT_PAUSE_SITE:
        return engine_paused(e, QUEUE_CTL_SITE, o->act_name);
    default:
        return accounts_held(e, o->account);
    }
}

json_t *incidents_status_json(const struct engine *e)
{
    const struct incidents *in = e->incidents;
    json_t *a = json_array();
    for (size_t i = 0; in && i < in->n; i++)
        if (in->v[i].id && applied(e, &in->v[i]))
            json_array_append_new(a, breaker_json(&in->v[i]));
    return a;
}
