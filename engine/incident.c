/*
 * incident.c - the incident watcher's loop side: rules checked against
 * the rolling windows, the table of open incidents, and the jobs that
 * write them.
 *
 * DESCRIPTION
 *   Once a second incidents_tick() samples the gauges (signals_gauge.c)
 *   and checks every rule ([alert NAME], config_alert.c) against every
 *   scope of its kind (signals.c).  A rule
 *   fires for a scope when the window holds at least min_volume and the
 *   value reaches the threshold.  A firing rule whose rule and scope have
 *   an open incident joins it (its last firing is noted); otherwise an
 *   "open" job is queued.  An incident whose rule has stayed clean for
 *   auto_resolve is resolved by a "resolve" job.  Jobs run one at a time
 *   on a libuv worker (incident_job.c): they compute the root cause from
 *   the spool's events, write the record and its event, pause what the
 *   rule's action says and send the alerts: on opening, and on resolving
 *   unless the last alert of that incident is more recent than
 *   alert_interval (the webhook event is written either way).  Every ten seconds the table
 *   is compared with the spool, so an incident resolved by hand stops
 *   being joined (and one acknowledged stops escalating by time).  At
 *   start the open incidents are read back, so a restart keeps joining
 *   and resolving them, and takes a pause still pending.  Escalation is
 *   incident_esc.c's, the breaker's pending pauses and probes are
 *   incident_probe.c's; while a pause waits for a probe, the incident
 *   does not resolve itself.
 *
 * DIAGNOSTICS
 *   incidents_open() fails out of memory or when the spool cannot be read
 *   (the code and why).  A job that fails is reported on stderr (once
 *   while the same error repeats) and tried again at a later tick.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "incident.h"
#include "incident_int.h"
#include "queue_admin.h"

/* Whether e's table holds rule+kind+name; its entry. */
static struct inc_open *find(struct incidents *in, const char *rule, int kind,
                             const char *name)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->v[i].kind == kind && !strcmp(in->v[i].rule, rule) &&
            !strcmp(in->v[i].scope, name))
            return &in->v[i];
    return NULL;
}

/* A new entry; NULL when the table is full. */
static struct inc_open *add(struct incidents *in, const char *rule, int kind,
                            const char *name)
{
    if (in->n == INC_OPEN_MAX)
        return NULL;
    struct inc_open *o = &in->v[in->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->rule, sizeof o->rule, "%s", rule);
    snprintf(o->scope, sizeof o->scope, "%s", name);
    o->kind = kind;
    return o;
}

/* Drop entry o (its probe, if one is out, with it). */
static void drop(struct engine *e, struct inc_open *o)
{
    struct incidents *in = e->incidents;
    inc_probe_forget(e, o);
    size_t i = (size_t)(o - in->v);
    memmove(&in->v[i], &in->v[i + 1], (in->n - i - 1) * sizeof *o);
    in->n--;
}

struct check {
    struct engine *e;
    const struct alert_rule *r;
    int64_t now;
};

/* One scope against one rule. */
static void check_scope(void *arg, const struct sig_scope *s)
{
    struct check *c = arg;
    struct incidents *in = c->e->incidents;
    struct sig_sums sum;
    double value;
    uint64_t volume;
    signals_sum(s, c->r->window_s, c->now, &sum);
    signals_value(c->r, &sum, &value, &volume);
    if (volume < c->r->min_volume || value < c->r->threshold)
        return;
    struct inc_open *o = find(in, c->r->name, s->kind, s->name);
    if (o) {
        o->last_fire_s = c->now;
        o->last_value = value;  /* escalate_threshold (incident_esc.c) */
        return;
    }
    if (in->busy)
        return; /* one opening at a time: checked again next tick */
    if (!(o = add(in, c->r->name, s->kind, s->name)))
        return;
    o->last_fire_s = c->now;
    /* a campaign's or account's incident is its account's; a site's (the
     * engine's, a webhook's) is the platform's (the master's) */
    o->account = s->account;
    uint32_t master;
    if (s->kind >= ALERT_SCOPE_SITE && !queue_account_master(c->e->q, &master))
        o->account = master;
    struct inc_job *j = calloc(1, sizeof *j);
    if (!j) {
        drop(c->e, o);
        return;
    }
    j->kind = INC_JOB_OPEN;
    j->alert = true;
    j->rule = *c->r;
    j->scope_kind = s->kind;
    snprintf(j->scope, sizeof j->scope, "%s", s->name);
    j->account = o->account;
    j->campaign = s->kind == ALERT_SCOPE_CAMPAIGN
                  ? strtoull(s->name, NULL, 10) : 0;
    j->value = value;
    j->volume = volume;
    j->sums = sum;
    j->detail = signals_detail(c->e, c->r, s);
    inc_job_start(c->e, j);
}

/* Incidents resolved in the spool (by hand) leave the table. */
static void sync_table(struct engine *e)
{
    struct incidents *in = e->incidents;
    for (size_t i = 0; i < in->n;) {
        struct inc_open *o = &in->v[i];
        uint32_t account;
        char *text = NULL;
        bool gone = false;
        if (o->id && !queue_incident_get(e->q, o->id, &account, &text)) {
            json_t *j = json_loads(text, 0, NULL);
            const char *st = json_string_value(json_object_get(j, "state"));
            gone = st && !strcmp(st, "resolved");
            inc_open_refresh(o, j);
            json_decref(j);
        }
        free(text);
        if (gone)
            drop(e, o);
        else
            i++;
    }
}

void incidents_tick(struct engine *e)
{
    struct incidents *in = e->incidents;
    if (!in)
        return;
    int64_t now_ms = (int64_t)engine_now_ms(), now = now_ms / 1000;
    signals_gauges(e);
    if (now - in->last_sync >= 10 && !in->busy) {
        in->last_sync = now;
        sync_table(e);
    }
    for (size_t i = 0; i < e->cfg.nalerts; i++) {
        struct check c = { e, &e->cfg.alerts[i], now };
        signals_foreach(e, c.r->scope, check_scope, &c);
    }
    inc_probe_tick(e, now_ms);
    inc_esc_tick(e, now_ms);
    /* clean for auto_resolve: resolved */
    for (size_t i = 0; i < in->n && !in->busy; i++) {
        struct inc_open *o = &in->v[i];
        const struct alert_rule *r = NULL;
        for (size_t k = 0; k < e->cfg.nalerts; k++)
            if (!strcmp(e->cfg.alerts[k].name, o->rule))
                r = &e->cfg.alerts[k];
        unsigned after = r ? r->auto_resolve_s : 0;
        if (!o->id || !after || now - o->last_fire_s < (int64_t)after ||
            inc_probe_holds(o, r))
            continue;
        struct inc_job *j = calloc(1, sizeof *j);
        if (!j)
            return;
        j->kind = INC_JOB_RESOLVE;
        /* never more than one alert per incident per alert_interval */
        j->alert = now_ms - o->alert_ms >= (int64_t)e->cfg.alert_interval_ms;
        j->id = o->id;
        j->account = o->account;
        snprintf(j->rule.name, sizeof j->rule.name, "%s", o->rule);
        j->scope_kind = o->kind;
        snprintf(j->scope, sizeof j->scope, "%s", o->scope);
        inc_job_start(e, j);
    }
}

void inc_job_finished(struct engine *e, struct inc_job *j)
{
    static const char *const doing[] = {
        [INC_JOB_OPEN] = "opening", [INC_JOB_RESOLVE] = "resolving",
        [INC_JOB_ACT] = "pausing", [INC_JOB_ESCALATE] = "escalating",
        [INC_JOB_ALERT] = "alerting", [INC_JOB_PROBE] = "probing",
        [INC_JOB_VERDICT] = "acting on the probe of" };
    struct incidents *in = e->incidents;
    struct inc_open *o = find(in, j->rule.name, j->scope_kind, j->scope);
    bool said = j->err && j->err == in->last_err;
    in->last_err = j->err;
    if (j->err && !said)
        fprintf(stderr, "sluiced: incidents: %s %s %s %s: %s\n",
                doing[j->kind], j->rule.name,
                config_alert_scope_name(j->scope_kind), j->scope,
                j->why[0] ? j->why : engine_strerror(j->err));
    if (o && j->alerted_ms)
        o->alert_ms = j->alerted_ms;
    if (o && j->kind == INC_JOB_OPEN) {
        if (j->err) {
            drop(e, o);
        } else {
            o->id = j->id;
            inc_probe_finished(e, o, j);
        }
    } else if (o && j->kind == INC_JOB_RESOLVE && !j->err) {
        drop(e, o);
    } else if (o && (j->kind == INC_JOB_ESCALATE ||
                     j->kind == INC_JOB_ALERT)) {
        inc_esc_finished(e, o, j);
    } else if (o && j->kind != INC_JOB_RESOLVE &&
               inc_probe_finished(e, o, j)) {
        drop(e, o);
    }
}

/* queue_incidents(): an open incident read back at start. */
static int load_one(void *arg, uint64_t id, uint32_t account,
                    const char *text)
{
    struct incidents *in = arg;
    json_t *j = json_loads(text, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    const char *rule = json_string_value(json_object_get(j, "rule"));
    const char *scope = json_string_value(json_object_get(j, "scope"));
    const char *name = json_string_value(json_object_get(j, "scope_name"));
    int kind = 0;
    for (int k = ALERT_SCOPE_ACCOUNT; k < ALERT_SCOPE_END; k++)
        if (scope && !strcmp(scope, config_alert_scope_name(k)))
            kind = k;
    if (st && strcmp(st, "resolved") && rule && kind && name) {
        struct inc_open *o = add(in, rule, kind, name);
        if (o) {
            o->id = id;
            o->account = account;
            o->last_fire_s = engine_now(); /* resolves after a clean spell */
            inc_open_load(o, j);     /* escalation, the breaker's pause */
        }
    }
    json_decref(j);
    return 0;
}

int incidents_open(struct engine *e, char *err, size_t errlen)
{
    int rc = signals_open(e, eventlog_counted(e));
    if (rc)
        return rc;
    struct incidents *in = calloc(1, sizeof *in);
    if (!in)
        return -ENOMEM;
    e->incidents = in;
    long n = queue_incidents(e->q, load_one, in);
    if (n < 0) {
        snprintf(err, errlen, "spool %s: reading incidents: %s",
                 e->cfg.spool, engine_strerror((int)n));
        return (int)n;
    }
    return 0;
}

void incidents_close(struct engine *e)
{
    struct incidents *in = e->incidents;
    if (in) {
        while (in->busy)
            uv_run(e->loop, UV_RUN_ONCE);
        free(in);
        e->incidents = NULL;
    }
    signals_free(e);
}
