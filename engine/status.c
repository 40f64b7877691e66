/*
 * status.c - the live view of sluiced, written once a second to
 * SPOOL/status.json (or status_file) for `sluice status`.
 *
 * DESCRIPTION
 *   One JSON document: daemon totals (with "rate": deliveries per second
 *   of all sites over the last rate_window_s seconds) and one object per
 *   site (a configured [site] or a domain with its own throttles):
 *   connections against the limit, current rate (the same window)
 *   against max_rate, backoff state, last error, next
 *   retry, counts, and the domains it holds; and whether the spool takes
 *   writes ("spool_state": writable, full or unwritable, with the outcomes
 *   held in memory meanwhile); and the pauses open incidents hold
 *   ("breakers": campaign, account or site, by which incident and rule,
 *   and its probe); and the rate caps per account and campaign in force
 *   ("rate_caps", limits.c), which a campaign's ETA takes (eta.h).
 *
 *   With many sites the document is large (10,000 sites: megabytes of
 *   JSON) and building it holds up the event loop: the next one is then
 *   written only after STATUS_SHARE times as long as this one took (at
 *   most STATUS_MAX_GAP_MS later), so the status never takes more than
 *   about a twentieth of the engine's time; a small one is still written
 *   every second.
 *
 *   Written into a spare file that is then swapped with status.json
 *   (renameat2 RENAME_EXCHANGE), so a reader never sees half a document
 *   and, once both files exist, a rewrite takes no new disk blocks: the
 *   status still shows a spool whose filesystem is full.  Where the swap
 *   is not supported, a plain rename.
 *
 * DIAGNOSTICS
 *   A failed write is reported once on stderr; delivery goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "incident.h"

#define STATUS_SHARE 20          /* wait 20 x a write's cost before the next */
#define STATUS_MAX_GAP_MS 10000  /* but write at least every 10 s */

/* One site as a JSON object. */
static json_t *site_json(struct site *s)
{
    char rt[32];
    json_t *doms = json_array();
    for (unsigned i = 0; i < s->ndests && i < 1000; i++)
        json_array_append_new(doms, json_string(s->dests[i]->domain));
    const struct rate *r = &s->pol->max_rate;
    /* the keys a live limit (`sluice limits set`) sets, with their values */
    json_t *live = json_object();
    unsigned lk = live_keys_of(s->e, s->configured ? 's' : 'd', s->name);
    for (int k = 0; k < CONFIG_LK_COUNT; k++) {
        char v[40];
        if (lk & (1u << k))
            json_object_set_new(live, config_limit_key_name(k),
                                json_string(config_limit_text(s->pol, k, v,
                                                              sizeof v)));
    }
    double per_s = r->n ? (double)r->n / r->per_s * s->rate_factor : 0;
    return json_pack("{s:s,s:s,s:o,s:i,s:i,s:f,s:s,s:f,s:s,s:i,s:f,s:s,"
                     "s:I,s:I,s:I,s:I,s:i,s:o}",
                     "name", s->name, "kind", s->configured ? "site" : "domain",
                     "domains", doms, "connections", (int)s->sessions,
                     "max_connections", (int)s->pol->max_connections,
                     "rate", site_rate(s),
                     "max_rate", config_rate_text(r, rt, sizeof rt),
                     "max_rate_per_s", per_s, "state", site_state_name(s->state),
                     "concurrency_limit", (int)site_conn_limit(s),
                     "rate_factor", s->rate_factor, "last_error", s->last_error,
                     "next_retry_ms",
                     (json_int_t)(s->state == SITE_NORMAL ? 0 : s->next_retry_ms),
                     "delivered", (json_int_t)s->delivered,
                     "deferred", (json_int_t)s->deferred,
                     "bounced", (json_int_t)s->bounced, "waiting", (int)s->waiting,
                     "live_limits", live);
}

/* The rate caps per account and campaign that limits.c applies now
 * (sluiced.conf, the accounts' own caps, live limits): what a
 * campaign's ETA takes (eta_live.c). */
static json_t *caps_json(const struct engine *e)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < e->limits.n; i++) {
        const struct id_limit *l = &e->limits.v[i];
        char rt[32];
        double per_s = l->rate.n && l->rate.per_s
                       ? (double)l->rate.n / l->rate.per_s : 0;
        json_array_append_new(arr, json_pack(
            "{s:s,s:I,s:s,s:f}", "kind", l->kind == 'a' ? "account"
                                                        : "campaign",
            "id", (json_int_t)l->id, "max_rate",
            config_rate_text(&l->rate, rt, sizeof rt), "max_rate_per_s",
            per_s));
    }
    return arr;
}

/* site_foreach(): one site into the array. */
static void add_site(struct site *s, void *arg)
{
    json_array_append_new(arg, site_json(s));
}

/* Whether the spool takes writes, and what waits meanwhile. */
static json_t *spool_json(const struct engine *e)
{
    const struct spool_hold *h = outcome_hold(e);
    bool ok = engine_spool_writable(e);
    return json_pack("{s:s,s:s,s:I,s:I,s:I}",
                     "state", engine_spool_state_name(e),
                     "error", ok ? "" : engine_strerror(h->err),
                     "since_ms", (json_int_t)(ok ? 0 : h->since_ms),
                     "held_outcomes", (json_int_t)h->noutcomes,
                     "next_retry_ms", (json_int_t)(ok || h->probing ? 0
                                                   : h->next_try_ms));
}

/* Write text into the spare file tmp (over its old blocks) and swap it
 * with path; 0 or -1 with errno. */
static int replace_file(const char *path, const char *tmp, const char *text)
{
    size_t len = strlen(text);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = pwrite(fd, text + off, len - off, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (ftruncate(fd, (off_t)len) || close(fd))
        return -1;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0)
        return 0;
    /* no status.json yet, or no exchange here: rename, and make the spare
     * for next time while there is space */
    if (rename(tmp, path))
        return -1;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0) {
        if (write(fd, text, len) < 0) {
            /* only a spare: the next rewrite tries again */
        }
        close(fd);
    }
    return 0;
}

void status_write(struct engine *e)
{
    static bool complained;
    static uint64_t next_ms;
    char path[4096], tmp[4200];
    if (engine_now_ms() < next_ms)
        return;
    uint64_t t0 = uv_hrtime();
    if (e->cfg.status_file)
        snprintf(path, sizeof path, "%s", e->cfg.status_file);
    else
        snprintf(path, sizeof path, "%s/status.json", e->cfg.spool);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *sites = json_array();
    site_foreach(e, add_site, sites);
    json_t *doc = json_pack("{s:I,s:i,s:i,s:i,s:I,s:o,s:o}",
                            "time_ms", (json_int_t)engine_now_ms(),
                            "pid", (int)getpid(), "sessions", (int)dest_sessions(e),
                            "max_sessions", (int)e->cfg.max_connections,
                            "inflight", (json_int_t)engine_inflight(e),
                            "spool_state", spool_json(e), "sites", sites);
    if (!doc)
        return;
    /* deliveries per second of every site over the last few seconds:
     * what `sluice status` and the web console show as the rate */
    json_object_set_new(doc, "rate", json_real(site_total_rate(e)));
    json_object_set_new(doc, "rate_window_s",
                        json_integer(SITE_RATE_WINDOW_S));
    /* the circuit breaker's pauses of open incidents (incident_probe.c) */
    json_object_set_new(doc, "breakers", incidents_status_json(e));
    json_object_set_new(doc, "rate_caps", caps_json(e));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    int rc = text ? replace_file(path, tmp, text) : -1;
    free(text);
    uint64_t gap = (uv_hrtime() - t0) / 1000000 * STATUS_SHARE;
    next_ms = engine_now_ms() + (gap < STATUS_MAX_GAP_MS ? gap
                                                         : STATUS_MAX_GAP_MS);
    if (rc == 0)
        return;
    if (!complained) {
        complained = true;
        fprintf(stderr, "sluiced: cannot write %s\n", path);
    }
}
