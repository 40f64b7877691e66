/*
 * incident_rec.h - an incident's JSON text as stored in the spool: the one
 * editor of it, shared by sluiced (open, action, resolve) and the tool
 * (ack, assign, note, resolve).
 */
#ifndef SLUICE_ENGINE_INCIDENT_REC_H
#define SLUICE_ENGINE_INCIDENT_REC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INCIDENT_TIMELINE_MAX 200   /* entries kept; older ones folded */

/* One change: a timeline entry (what, who, text) and what it sets.  For a
 * new incident, base is the record without id (its id is added). */
struct incident_edit {
    const char *what;      /* opened, acknowledged, assigned, noted, action,
                              escalated, probe, resumed, resolved */
    const char *who;
    const char *text;      /* NULL: none */
    const char *assignee;  /* assigned: whom */
    int64_t now_ms;
    json_t *base;          /* opened: the record */
    /* escalated: the new severity; refused (-EALREADY) when the record is
     * at it or above, or, by_time, once it is acknowledged */
    const char *severity;
    bool by_time;
    json_t *pause;         /* members set into the record's "pause" */
};

/* queue_incident_edit_fn over struct incident_edit: refuses (-EINVAL) to
 * acknowledge, assign, escalate or resolve a resolved incident, and
 * (-EALREADY) an escalation that is not due any more. */
long incident_rec_edit(void *arg, uint64_t id, const char *old, char *out,
                       size_t cap, char *why, size_t whylen);

/* The circuit breaker's pause an incident record holds (its "pause"
 * object, incident_job.c): strings point into the record. */
struct incident_pause {
    uint64_t id;
    const char *rule, *severity;
    const char *kind;      /* campaign, account or site */
    const char *name;      /* campaign id, account id, site name */
    const char *state;     /* pending, paused, failed, lifted */
    const char *resume;    /* manual or probe */
    int64_t since_ms, next_probe_ms;
    long long probes;
};

/* Whether record rec holds a pause that sluiced took (or is to take:
 * pending) and did not lift; fills p.  The tools also check that the
 * campaign, account or site is still paused (a person may have resumed
 * it). */
bool incident_rec_pause(json_t *rec, struct incident_pause *p);

/* A person's change of incident id (of campaign, 0 none): verb "ack",
 * "assign" (text: the assignee), "note" (text) or "resolve" (text may be
 * NULL), as one audited spool change ("incident ack" ...) by by, with its
 * timeline entry; a resolve also appends its `incident` event.  The one
 * path of `sluice incident ack ...` and the web console.  0, -ENOENT for
 * another verb, -EINVAL (queue_last_detail says why: a resolved
 * incident), or a spool error.  *what (may be NULL): "acknowledged" ... */
struct queue;
struct queue_actor;
int incident_rec_person(struct queue *q, uint64_t id, uint64_t campaign,
                        const char *verb, const char *text,
                        const struct queue_actor *by, int64_t now_ms,
                        const char **what);

#endif
