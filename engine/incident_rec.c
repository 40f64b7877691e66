/*
 * incident_rec.c - the one editor of an incident's stored JSON.
 *
 * DESCRIPTION
 *   An incident is an object: id, rule, signal, scope, scope_name,
 *   account, campaign, severity, state (open, acknowledged, resolved),
 *   opened_ms, acknowledged_ms, resolved_ms, assignee, numbers (value,
 *   threshold, volume, window_s), root_cause (replies, mx, domains,
 *   first_ms, last_ms, samples), action, and timeline: entries
 *   {time_ms, what, who, text}.  An escalation raises severity and sets
 *   escalated_ms and escalations (a count).  A rule with a pause action
 *   adds "pause": kind (campaign, account, site), name, state (pending
 *   until taken, then paused or failed; lifted after a probe), resume
 *   (manual, probe), probe_after_s, domain (where probes go), since_ms,
 *   next_probe_ms, probes.  incident_rec_edit() runs inside the
 *   spool's writer transaction (queue_incident_change), so each change
 *   applies to the newest record.  The timeline keeps its first entry and
 *   the newest INCIDENT_TIMELINE_MAX - 1.  incident_rec_person() is the
 *   one way people's changes (ack, assign, note, resolve) reach the
 *   spool, from `sluice incident` and from sluiced's web console alike.
 *
 * DIAGNOSTICS
 *   -EINVAL with why for a record that does not parse or a change the
 *   state refuses; -E2BIG when the text does not fit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "incident_rec.h"
#include "queue_admin.h"

/* The rank of a severity name (info 0 .. critical 2), -1 unknown. */
static int severity_rank(const char *s)
{
    static const char *const names[] = { "info", "warning", "critical" };
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* An escalation of j (to c->severity): 0, or -EALREADY with why when it
 * is not due any more (at that level already; acknowledged, by time). */
static long escalate(json_t *j, const struct incident_edit *c, uint64_t id,
                     char *why, size_t whylen)
{
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *sev = json_string_value(json_object_get(j, "severity"));
    if (severity_rank(c->severity) < 0 ||
        severity_rank(sev) >= severity_rank(c->severity) ||
        (c->by_time && state && !strcmp(state, "acknowledged"))) {
        snprintf(why, whylen, "incident %llu: no escalation due",
                 (unsigned long long)id);
        return -EALREADY;
    }
    json_object_set_new(j, "severity", json_string(c->severity));
    json_object_set_new(j, "escalated_ms", json_integer(c->now_ms));
    json_object_set_new(j, "escalations", json_integer(
        json_integer_value(json_object_get(j, "escalations")) + 1));
    return 0;
}

/* The record's new state for a change, NULL: unchanged. */
static const char *new_state(const char *what)
{
    if (!strcmp(what, "acknowledged"))
        return "acknowledged";
    if (!strcmp(what, "resolved"))
        return "resolved";
    return NULL;
}

long incident_rec_edit(void *arg, uint64_t id, const char *old, char *out,
                       size_t cap, char *why, size_t whylen)
{
    const struct incident_edit *c = arg;
    json_t *j;
    if (!old) {
        j = json_deep_copy(c->base);
        if (!j)
            return -ENOMEM;
        json_object_set_new(j, "id", json_integer((json_int_t)id));
        json_object_set_new(j, "state", json_string("open"));
        json_object_set_new(j, "opened_ms", json_integer(c->now_ms));
        json_object_set_new(j, "timeline", json_array());
    } else if (j = json_loads(old, 0, NULL), !json_is_object(j)) {
        /* (json_is_object() evaluates its argument twice) */
        json_decref(j);
        snprintf(why, whylen, "incident %llu does not parse",
                 (unsigned long long)id);
        return -EINVAL;
    }
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *to = new_state(c->what);
    if (old && state && !strcmp(state, "resolved") &&
        strcmp(c->what, "noted")) {
        json_decref(j);
        snprintf(why, whylen, "incident %llu is resolved",
                 (unsigned long long)id);
        return -EINVAL;
    }
    if (to && !(state && !strcmp(to, "acknowledged") &&
                !strcmp(state, "acknowledged"))) {
        json_object_set_new(j, "state", json_string(to));
        char key[32];
        snprintf(key, sizeof key, "%s_ms", to);
        json_object_set_new(j, key, json_integer(c->now_ms));
    }
    if (!strcmp(c->what, "escalated")) {
        long rc = escalate(j, c, id, why, whylen);
        if (rc) {
            json_decref(j);
            return rc;
        }
    }
    if (c->pause) {
        json_t *p = json_object_get(j, "pause");
        if (!json_is_object(p)) {
            p = json_object();
            json_object_set_new(j, "pause", p);
        }
        json_object_update(p, c->pause);
    }
    if (!strcmp(c->what, "assigned") && c->assignee)
        json_object_set_new(j, "assignee", json_string(c->assignee));
    json_t *tl = json_object_get(j, "timeline");
    if (!json_is_array(tl)) {
        tl = json_array();
        json_object_set_new(j, "timeline", tl);
    }
    while (json_array_size(tl) >= INCIDENT_TIMELINE_MAX)
        json_array_remove(tl, 1);
    json_array_append_new(tl, json_pack("{s:I,s:s,s:s,s:s?}", "time_ms",
                                        (json_int_t)c->now_ms, "what",
                                        c->what, "who", c->who ? c->who : "?",
                                        "text", c->text));
    size_t n = json_dumpb(j, out, cap, JSON_COMPACT);
    json_decref(j);
    if (n == 0 || n >= cap) {
        snprintf(why, whylen, "incident %llu: record too large",
                 (unsigned long long)id);
        return -E2BIG;
    }
    out[n] = 0;
    return (long)n;
}

bool incident_rec_pause(json_t *rec, struct incident_pause *p)
{
    json_t *pa = json_object_get(rec, "pause");
    memset(p, 0, sizeof *p);
    if (!json_is_object(pa))
        return false;
    p->id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
    p->rule = json_string_value(json_object_get(rec, "rule"));
    p->severity = json_string_value(json_object_get(rec, "severity"));
    p->kind = json_string_value(json_object_get(pa, "kind"));
    p->name = json_string_value(json_object_get(pa, "name"));
    p->state = json_string_value(json_object_get(pa, "state"));
    p->resume = json_string_value(json_object_get(pa, "resume"));
    p->since_ms = json_integer_value(json_object_get(pa, "since_ms"));
    p->next_probe_ms = json_integer_value(json_object_get(pa,
                                                          "next_probe_ms"));
    p->probes = json_integer_value(json_object_get(pa, "probes"));
    if (!p->rule)
        p->rule = "?";
    if (!p->severity)
        p->severity = "?";
    if (!p->resume)
        p->resume = "manual";
    return p->kind && p->name && p->state &&
           (!strcmp(p->state, "paused") || !strcmp(p->state, "pending"));
}

int incident_rec_person(struct queue *q, uint64_t id, uint64_t campaign,
                        const char *verb, const char *text,
                        const struct queue_actor *by, int64_t now_ms,
                        const char **what)
{
    static const struct {
        const char *verb, *what, *action;
    } verbs[] = {
        { "ack", "acknowledged", "incident ack" },
        { "assign", "assigned", "incident assign" },
        { "note", "noted", "incident note" },
        { "resolve", "resolved", "incident resolve" },
    };
    size_t v = 0;
    while (v < sizeof verbs / sizeof verbs[0] && strcmp(verbs[v].verb, verb))
        v++;
    if (v == sizeof verbs / sizeof verbs[0])
        return -ENOENT;
    if (what)
        *what = verbs[v].what;
    struct incident_edit ed = { .what = verbs[v].what, .who = by->user,
                                .text = v == 0 ? NULL : text,
                                .assignee = v == 1 ? text : NULL,
                                .now_ms = now_ms };
    char etext[120];
    snprintf(etext, sizeof etext, "resolved by %s", by->user);
    struct queue_incident_change c = {
        .id = id, .campaign = campaign, .edit = incident_rec_edit,
        .arg = &ed, .action = verbs[v].action,
        .event_text = v == 3 ? etext : NULL, .by = by };
    return queue_incident_change(q, &c);
}
