/*
 * incident_pause.c - the pauses incidents hold, for the commands that
 * show what is paused (`sluice status`, `campaign show`, `incident
 * show`).
 *
 * DESCRIPTION
 *   A rule's action pauses a campaign, an account or a site and says so
 *   in the incident's record ("pause", engine/incident_rec.c reads it).
 *   tool_incident_pauses() lists every incident whose pause sluiced took
 *   (or is still to take: pending) and did not lift, and that is still in
 *   effect: the campaign paused, the account disabled, the site in the
 *   pause list (a person may have resumed it meanwhile; that pause is no
 *   longer the incident's).  tool_pause_json() and tool_pause_text() give
 *   one entry as the commands print it.
 *
 * DIAGNOSTICS
 *   Spool read failures are returned as codes; an incident record that
 *   does not parse is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_rec.h"
#include "queue_campaign.h"
#include "tool_admin.h"

#define PAUSES_MAX 4096   /* entries listed; more are left out */

struct gather {
    struct tool_pause *v;
    size_t n, cap;
    int err;
};

/* queue_controls(): whether the site named *arg is paused (*arg NULL). */
static int site_paused(void *arg, const struct queue_control *c)
{
    const char **name = arg;
    if (c->kind == QUEUE_CTL_SITE && !strcmp(c->name, *name)) {
        *name = NULL;
        return 1;
    }
    return 0;
}

/* Whether the pause p names is in effect in q now. */
static bool in_effect(struct queue *q, const struct tool_pause *p)
{
    unsigned long long id;
    if (!strcmp(p->state, "pending"))
        return true;
    if (!strcmp(p->kind, "site")) {
        const char *name = p->name;
        return queue_controls(q, site_paused, &name) >= 0 && !name;
    }
    if (!tool_parse_u64(p->name, &id))
        return false;
    if (!strcmp(p->kind, "account")) {
        struct queue_account a;
        return id <= UINT32_MAX && !queue_account_get(q, (uint32_t)id, &a) &&
               a.disabled;
    }
    struct queue_campaign c;
    if (queue_campaign_get(q, id, &c))
        return false;
    bool yes = c.state == QUEUE_CAMPAIGN_PAUSED;
    queue_campaign_clear(&c);
    return yes;
}

/* queue_incidents(): one record's pause, when it holds one. */
static int gather_one(void *arg, uint64_t id, uint32_t account,
                      const char *text)
{
    struct gather *g = arg;
    struct incident_pause p;
    json_t *rec = json_loads(text, 0, NULL);
    (void)id;
    if (!rec || !incident_rec_pause(rec, &p)) {
        json_decref(rec);
        return 0;
    }
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 8;
        struct tool_pause *nv = ncap <= PAUSES_MAX
                                ? realloc(g->v, ncap * sizeof *nv) : NULL;
        if (!nv) {
            json_decref(rec);
            if (ncap <= PAUSES_MAX)
                g->err = -ENOMEM;
            return 1;
        }
        g->v = nv;
        g->cap = ncap;
    }
    struct tool_pause *t = &g->v[g->n++];
    memset(t, 0, sizeof *t);
    t->incident = p.id;
    t->account = account;
    snprintf(t->rule, sizeof t->rule, "%s", p.rule);
    snprintf(t->severity, sizeof t->severity, "%s", p.severity);
    snprintf(t->kind, sizeof t->kind, "%s", p.kind);
    snprintf(t->name, sizeof t->name, "%s", p.name);
    snprintf(t->state, sizeof t->state, "%s", p.state);
    snprintf(t->resume, sizeof t->resume, "%s", p.resume);
    t->since_ms = p.since_ms;
    t->next_probe_ms = p.next_probe_ms;
    t->probes = p.probes;
    json_decref(rec);
    return 0;
}

int tool_incident_pauses(struct queue *q, struct tool_pause **v, size_t *n)
{
    struct gather g = { 0 };
    long r = queue_incidents(q, gather_one, &g);
    *v = NULL;
    *n = 0;
    if (r < 0 || g.err) {
        free(g.v);
        return r < 0 ? (int)r : g.err;
    }
    /* after the walk (no read inside another): those still in effect */
    size_t k = 0;
    for (size_t i = 0; i < g.n; i++)
        if (in_effect(q, &g.v[i]))
            g.v[k++] = g.v[i];
    *v = g.v;
    *n = k;
    return 0;
}

const struct tool_pause *tool_pause_find(const struct tool_pause *v,
                                         size_t n, const char *kind,
                                         const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].kind, kind) && !strcmp(v[i].name, name))
            return &v[i];
    return NULL;
}

json_t *tool_pause_json(const struct tool_pause *p)
{
    char since[32], next[32];
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "incident",
                          (json_int_t)p->incident, "rule", p->rule,
                          "severity", p->severity, "kind", p->kind, "name",
                          p->name, "state", p->state, "resume", p->resume,
                          "probes", (json_int_t)p->probes);
    json_object_set_new(j, "since", p->since_ms
        ? json_string(tool_time_text(p->since_ms / 1000, since, sizeof since))
        : json_null());
    json_object_set_new(j, "next_probe", p->next_probe_ms &&
                                         !strcmp(p->resume, "probe")
        ? json_string(tool_time_text(p->next_probe_ms / 1000, next,
                                     sizeof next))
        : json_null());
    return j;
}

const char *tool_pause_text(const struct tool_pause *p, char *buf,
                            size_t cap)
{
    char since[32], next[32];
    int n = snprintf(buf, cap, "incident %llu (rule %s, %s)%s%s",
                     (unsigned long long)p->incident, p->rule, p->severity,
                     p->since_ms ? " since " : " (pending)",
                     p->since_ms ? tool_time_text(p->since_ms / 1000, since,
                                                  sizeof since) : "");
    if (n > 0 && (size_t)n < cap) {
        if (!strcmp(p->resume, "probe") && p->next_probe_ms)
            snprintf(buf + n, cap - (size_t)n, "; resumes after a probe, "
                     "next at %s (%lld failed)",
                     tool_time_text(p->next_probe_ms / 1000, next,
                                    sizeof next), p->probes);
        else
            snprintf(buf + n, cap - (size_t)n, "; a person resumes it");
    }
    return buf;
}
