/*
 * status.c - the live view of sluiced, written once a second to
 * SPOOL/status.json (or status_file) for `sluice status`.
 *
 * DESCRIPTION
 *   One JSON document: daemon totals and one object per site (a configured
 *   [site] or a domain with its own throttles): connections against the
 *   limit, current rate against max_rate, backoff state, last error, next
 *   retry, counts, and the domains it holds.  Written to a temporary file
 *   and renamed, so a reader never sees half a document.
 *
 * DIAGNOSTICS
 *   A failed write is reported once on stderr; delivery goes on.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* One site as a JSON object. */
static json_t *site_json(struct site *s)
{
    char rt[32];
    json_t *doms = json_array();
    for (unsigned i = 0; i < s->ndests && i < 1000; i++)
        json_array_append_new(doms, json_string(s->dests[i]->domain));
    const struct rate *r = &s->pol->max_rate;
    double per_s = r->n ? (double)r->n / r->per_s * s->rate_factor : 0;
    return json_pack("{s:s,s:s,s:o,s:i,s:i,s:f,s:s,s:f,s:s,s:i,s:f,s:s,"
                     "s:I,s:I,s:I,s:I,s:i}",
                     "name", s->name, "kind", s->configured ? "site" : "domain",
                     "domains", doms, "connections", (int)s->sessions,
                     "max_connections", (int)s->pol->max_connections,
                     "rate", site_rate(s), "max_rate", rate_text(r, rt, sizeof rt),
                     "max_rate_per_s", per_s, "state", site_state_name(s->state),
                     "concurrency_limit", (int)site_conn_limit(s),
                     "rate_factor", s->rate_factor, "last_error", s->last_error,
                     "next_retry_ms",
                     (json_int_t)(s->state == SITE_NORMAL ? 0 : s->next_retry_ms),
                     "delivered", (json_int_t)s->delivered,
                     "deferred", (json_int_t)s->deferred,
                     "bounced", (json_int_t)s->bounced, "waiting", (int)s->waiting);
}

void status_write(struct engine *e)
{
    static bool complained;
    char path[4096], tmp[4200];
    if (e->cfg.status_file)
        snprintf(path, sizeof path, "%s", e->cfg.status_file);
    else
        snprintf(path, sizeof path, "%s/status.json", e->cfg.spool);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *sites = json_array();
    for (size_t b = 0; b < e->scap; b++)
        for (struct site *s = e->stab[b]; s; s = s->hnext)
            json_array_append_new(sites, site_json(s));
    json_t *doc = json_pack("{s:I,s:i,s:i,s:i,s:I,s:o}",
                            "time_ms", (json_int_t)engine_now_ms(),
                            "pid", (int)getpid(), "sessions", (int)e->sessions,
                            "max_sessions", (int)e->cfg.max_connections,
                            "inflight", (json_int_t)e->inflight, "sites", sites);
    if (!doc)
        return;
    int rc = json_dump_file(doc, tmp, JSON_COMPACT);
    json_decref(doc);
    if (rc == 0 && rename(tmp, path) == 0)
        return;
    if (!complained) {
        complained = true;
        fprintf(stderr, "sluiced: cannot write %s\n", path);
    }
}
