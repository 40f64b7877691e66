/*
 * incident_esc.c - escalation of open incidents, and the alerts it makes
 * due, on the loop.
 *
 * DESCRIPTION
 *   An escalation raises an incident's severity one level (info, warning,
 *   critical); each level is reached once.  An open incident escalates
 *   when nobody acknowledged it within its rule's escalate_after (counted
 *   from its opening, then from its last escalation), or when the rule's
 *   value for its scope reaches escalate_threshold while it is open (once
 *   per incident; acknowledged or not).  An acknowledgement stops
 *   escalation by time: the record's editor refuses it once the incident
 *   is acknowledged (incident_rec.c), so an ack that comes between this
 *   look and the job still wins.  The escalation is a timeline entry
 *   "escalated" and an `incident` event (webhooks receive it at once).
 *
 *   Its alerts (command and mail) keep the rule of at most one alert per
 *   incident per alert_interval: an escalation makes an alert due, sent
 *   with the escalation when the last alert is at least alert_interval
 *   old, else as soon as it is (an "alert" job); never dropped while the
 *   incident is open.  A due alert is kept in memory only: a restart
 *   forgets it (the escalation itself is in the record and the event
 *   stream).
 *
 * DIAGNOSTICS
 *   None of its own: a failed job is reported by incident.c and the
 *   escalation is tried again at a later tick.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "incident_int.h"

#define TOP_SEVERITY 2              /* critical */

void inc_open_refresh(struct inc_open *o, json_t *rec)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    int sev = config_alert_severity_find(json_string_value(
        json_object_get(rec, "severity")));
    o->acked = st && !strcmp(st, "acknowledged");
    if (sev >= 0)
        o->severity = sev;
}

void inc_esc_tick(struct engine *e, int64_t now_ms)
{
    struct incidents *in = e->incidents;
    int64_t interval = (int64_t)e->cfg.alert_interval_ms;
    for (size_t i = 0; i < in->n && !in->busy; i++) {
        struct inc_open *o = &in->v[i];
        const struct alert_rule *r = NULL;
        for (size_t k = 0; k < e->cfg.nalerts; k++)
            if (!strcmp(e->cfg.alerts[k].name, o->rule))
                r = &e->cfg.alerts[k];
        if (!o->id || !r)
            continue;
        bool may_alert = now_ms - o->alert_ms >= interval;
        if (o->alert_due) {
            struct inc_job *j = may_alert ? inc_job_for(e, o, INC_JOB_ALERT)
                                          : NULL;
            if (j)
                inc_job_start(e, j);
            continue;
        }
        if (o->severity >= TOP_SEVERITY)
            continue;
        bool by_value = r->escalate_threshold > 0 && !o->value_escalated &&
                        o->last_fire_s == now_ms / 1000 &&
                        o->last_value >= r->escalate_threshold;
        int64_t since = o->escalated_ms > o->opened_ms ? o->escalated_ms
                                                       : o->opened_ms;
        bool by_time = r->escalate_after_s && !o->acked && since &&
                       now_ms - since >= (int64_t)r->escalate_after_s * 1000;
        if (!by_value && !by_time)
            continue;
        struct inc_job *j = inc_job_for(e, o, INC_JOB_ESCALATE);
        if (!j)
            return;
        j->severity = o->severity + 1;
        j->by_time = !by_value;
        j->alert = may_alert;
        if (by_value)
            snprintf(j->text, sizeof j->text, "%s %s -> %s: value %.4f "
                     "reached escalate_threshold %.4f",
                     config_alert_signal_name(r->signal),
                     config_alert_severity_name(o->severity),
                     config_alert_severity_name(j->severity), o->last_value,
                     r->escalate_threshold);
        else
            snprintf(j->text, sizeof j->text, "%s -> %s: not acknowledged "
                     "within %us", config_alert_severity_name(o->severity),
                     config_alert_severity_name(j->severity),
                     r->escalate_after_s);
        inc_job_start(e, j);
    }
}

void inc_esc_finished(struct engine *e, struct inc_open *o,
                      struct inc_job *j)
{
    int64_t now_ms = (int64_t)engine_now_ms();
    if (j->err)
        return;
    if (j->kind == INC_JOB_ALERT) {
        o->alert_due = false;
        o->alert_ms = j->alerted_ms ? j->alerted_ms : now_ms;
        return;
    }
    if (j->skipped) {
        /* acknowledged or escalated meanwhile: the record says which */
        e->incidents->last_sync = 0;
        if (j->by_time)
            o->acked = true;
        return;
    }
    o->severity = j->severity;
    o->escalated_ms = now_ms;
    if (!j->by_time)
        o->value_escalated = true;
    if (!j->alert)
        o->alert_due = true;
}
