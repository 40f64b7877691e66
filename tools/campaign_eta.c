/*
 * campaign_eta.c - the ETA of `campaign show` (tool_eta.h): the slowest
 * of the campaign's destinations, at the limits in force there.
 *
 * DESCRIPTION
 *   One walk of the spool's queued deliveries (queue_queued_walk) counts
 *   the campaign's recipients per site: the site sluiced's live view
 *   (status.json) puts the domain in (tool_queue_site_map, the map of
 *   `queue summary --by site`), else the domain itself.  A delivery is
 *   held when it is parked (a paused campaign, a disabled account) or its
 *   domain or site is paused (the spool's controls).
 *
 *   The rate of a site is what sluiced applies now: its row's
 *   max_rate_per_s in status.json (the shipped provider profile, then
 *   sluiced.conf, then a live `sluice limits set`, times the adaptive
 *   backoff factor).  A site sluiced has not described (it is not
 *   running, or has not met the domain yet) is resolved as `sluice
 *   limits show --effective DOMAIN` does it (tool_effective(): MX lookup,
 *   site match, layers), for at most ETA_LOOKUPS sites; the others have
 *   no known rate.  A site without max_rate goes as fast as the machine
 *   and the receiver allow: its live rate stands in when it has one.
 *
 *   The time a site needs is left / rate; the campaign's own and its
 *   account's rate caps (tool_rate_in_force: live, sluiced.conf, the
 *   account's cap) need all the campaign's left / cap; a deferred
 *   recipient is not tried before its retry time.  The ETA is now plus
 *   the largest of these, and names it.  Other mail to the same site
 *   shares its limit and is not counted: the ETA is the earliest the
 *   limits allow, not a promise.
 *
 *   Cost: one read of the whole ready index (every queued delivery of
 *   the spool, the campaign's or not: the index has no campaign in its
 *   key), like `queue summary`; a spool with millions queued takes
 *   seconds.  Counts per campaign and site kept by the writer would make
 *   it cheap; none exist yet.
 *
 * DIAGNOSTICS
 *   Spool errors as negative queue codes; more than ETA_MAX_SITES sites
 *   counts the rest into one "(other sites)" group without a rate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_eta.h"
#include "tool_limits.h"
#include "tool_queue.h"

#define ETA_MAX_SITES 4096
#define ETA_LOOKUPS 16
#define ETA_JSON_SITES 100
#define ETA_OTHER "(other sites)"

struct eta_walk {
    uint64_t campaign;
    int64_t now;
    const struct status_view *v;
    struct tool_site_map map;
    struct tool_eta_site *s;
    size_t n, cap;
    size_t *slot;           /* open addressing: index + 1, 0 empty */
    size_t nslot;           /* a power of two, > 2 n */
    int err;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Double the slot table; false out of memory. */
static bool rehash(struct eta_walk *w)
{
    size_t ns = w->nslot ? w->nslot * 2 : 64;
    size_t *slot = calloc(ns, sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = 0; i < w->n; i++) {
        size_t b = name_hash(w->s[i].name) & (ns - 1);
        while (slot[b])
            b = (b + 1) & (ns - 1);
        slot[b] = i + 1;
    }
    free(w->slot);
    w->slot = slot;
    w->nslot = ns;
    return true;
}

/* The group of site name (made when new); NULL out of memory. */
static struct tool_eta_site *site_group(struct eta_walk *w, const char *name,
                                        const char *domain)
{
    if (w->nslot)
        for (size_t b = name_hash(name) & (w->nslot - 1); w->slot[b];
             b = (b + 1) & (w->nslot - 1))
            if (!strcmp(w->s[w->slot[b] - 1].name, name))
                return &w->s[w->slot[b] - 1];
    if (w->n >= ETA_MAX_SITES && strcmp(name, ETA_OTHER))
        return site_group(w, ETA_OTHER, "");   /* made once, past the cap */
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        struct tool_eta_site *ns = realloc(w->s, nc * sizeof *ns);
        if (!ns)
            return NULL;
        w->s = ns;
        w->cap = nc;
    }
    if ((w->n + 1) * 2 > w->nslot && !rehash(w))
        return NULL;
    struct tool_eta_site *g = &w->s[w->n];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->domain, sizeof g->domain, "%s", domain);
    g->from = "none";
    size_t b = name_hash(name) & (w->nslot - 1);
    while (w->slot[b])
        b = (b + 1) & (w->nslot - 1);
    w->slot[b] = ++w->n;
    return g;
}

/* queue_queued_walk() callback: count one of the campaign's deliveries. */
static int count_one(void *arg, const struct queue_queued *d)
{
    struct eta_walk *w = arg;
    if (d->campaign != w->campaign)
        return 0;
    const char *site = tool_queue_site_of(&w->map, d->domain);
    struct tool_eta_site *g = site_group(w, site, d->domain);
    if (!g) {
        w->err = -ENOMEM;
        return 1;
    }
    bool paused = tool_queue_paused(w->v, QUEUE_CTL_DOMAIN, d->domain) ||
                  tool_queue_paused(w->v, QUEUE_CTL_SITE, site);
    bool held = paused || queue_due_parked(d->due);
    g->left++;
    if (paused)
        g->paused = true;
    if (held)
        g->held++;
    else if (d->due > g->last_due)
        g->last_due = d->due;
    return 0;
}

/* The live view's row of site name, or NULL. */
static json_t *live_row(const struct status_view *v, const char *name)
{
    json_t *sites = v->doc ? json_object_get(v->doc, "sites") : NULL, *s;
    size_t i;
    json_array_foreach(sites, i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && !strcmp(n, name))
            return s;
    }
    return NULL;
}

/* "10/s", "0.5/s", "1.2k/s" for a rate per second. */
static void rate_text(double r, char *buf, size_t cap)
{
    if (r >= 1000)
        snprintf(buf, cap, "%.0f/s", r);
    else if (r >= 10)
        snprintf(buf, cap, "%.4g/s", r);
    else
        snprintf(buf, cap, "%.3g/s", r);
}

/* The rate of g: sluiced's, else the configuration's via
 * tool_effective() while *lookups last. */
static void site_rate(struct tool_eta_site *g, const struct status_view *v,
                      const struct config *cfg, struct queue *q,
                      const char *servers, unsigned *lookups)
{
    json_t *row = live_row(v, g->name);
    if (row) {
        double lim = json_number_value(json_object_get(row, "max_rate_per_s"));
        double now = json_number_value(json_object_get(row, "rate"));
        if (lim > 0) {
            g->rate = lim;
            g->from = "sluiced";
            rate_text(lim, g->limit, sizeof g->limit);
        } else if (now > 0) {
            g->rate = now;
            g->from = "observed";
            snprintf(g->limit, sizeof g->limit, "unlimited");
        } else {
            snprintf(g->limit, sizeof g->limit, "unlimited");
        }
        return;
    }
    snprintf(g->limit, sizeof g->limit, "?");
    if (!cfg || !g->domain[0] || *lookups == 0)
        return;
    (*lookups)--;
    struct tool_effective *eff = malloc(sizeof *eff);
    if (!eff)
        return;
    if (tool_effective(cfg, q, g->domain, servers, eff) == 0) {
        const char *val = eff->k[CONFIG_LK_MAX_RATE].value;
        struct rate r;
        g->from = "configuration";
        if (config_parse_rate(val, &r) && r.n && r.per_s) {
            g->rate = (double)r.n / r.per_s;
            rate_text(g->rate, g->limit, sizeof g->limit);
        } else {
            snprintf(g->limit, sizeof g->limit, "unlimited");
        }
        if (eff->site)   /* its site's name, as sluiced will call it */
            snprintf(g->name, sizeof g->name, "%s", eff->site->lim.name);
    }
    free(eff);
}

/* Fold groups that name the same site (found by lookup) into one. */
static void merge_same(struct tool_eta *e)
{
    for (size_t i = 0; i < e->nsites; i++)
        for (size_t j = i + 1; j < e->nsites;) {
            if (strcmp(e->sites[i].name, e->sites[j].name)) {
                j++;
                continue;
            }
            struct tool_eta_site *a = &e->sites[i], *b = &e->sites[j];
            a->left += b->left;
            a->held += b->held;
            a->paused |= b->paused;
            if (b->last_due > a->last_due)
                a->last_due = b->last_due;
            if (!a->rate && b->rate) {
                a->rate = b->rate;
                a->from = b->from;
                memcpy(a->limit, b->limit, sizeof a->limit);
            }
            e->sites[j] = e->sites[--e->nsites];
        }
}

static int slowest_first(const void *x, const void *y)
{
    const struct tool_eta_site *a = x, *b = y;
    if (a->seconds != b->seconds)
        return a->seconds > b->seconds ? -1 : 1;
    if (a->left != b->left)
        return a->left > b->left ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* A cap over all sites: the bound it sets, if slower than the one so
 * far. */
static void cap_bound(struct tool_eta *e, struct rate r, const char *kind,
                      const char *what, double *worst)
{
    if (!r.n || !r.per_s || !e->queued)
        return;
    double rate = (double)r.n / r.per_s;
    double sec = (double)e->queued / rate;
    if (sec <= *worst)
        return;
    *worst = sec;
    e->kind = kind;
    snprintf(e->what, sizeof e->what, "%s", what);
    e->left = e->queued;
    e->rate = rate;
}

/* Fill the bound and ETA from the sites and caps. */
static void decide(struct tool_eta *e, struct queue *q,
                   const struct config *cfg, const struct queue_campaign *c)
{
    double worst = 0;
    int64_t last_due = 0;
    const struct tool_eta_site *held = NULL;
    for (size_t i = 0; i < e->nsites; i++) {
        struct tool_eta_site *g = &e->sites[i];
        if (g->last_due > last_due)
            last_due = g->last_due;
        g->seconds = g->rate > 0 ? (double)g->left / g->rate : 0;
    }
    if (e->nsites)
        qsort(e->sites, e->nsites, sizeof *e->sites, slowest_first);
    /* after the sort: the slowest site holding mail; a paused one before
     * mail parked elsewhere */
    for (size_t i = 0; i < e->nsites; i++) {
        const struct tool_eta_site *g = &e->sites[i];
        if (g->held && (!held || (g->paused && !held->paused)))
            held = g;
    }
    if (e->nsites && e->sites[0].seconds > 0) {
        const struct tool_eta_site *g = &e->sites[0];
        worst = g->seconds;
        e->kind = "site";
        snprintf(e->what, sizeof e->what, "%s", g->name);
        e->left = g->left;
        e->rate = g->rate;
    }
    char name[32];
    snprintf(name, sizeof name, "%llu", (unsigned long long)c->id);
    char what[QUEUE_MAX_ACCOUNT_NAME + 40];
    snprintf(what, sizeof what, "campaign %s", name);
    cap_bound(e, tool_rate_in_force(q, cfg, 'c', name, NULL),
              "campaign cap", what, &worst);
    struct queue_account a;
    snprintf(name, sizeof name, "%u", c->account);
    if (queue_account_get(q, c->account, &a) == 0) {
        snprintf(what, sizeof what, "account %s", a.name);
        cap_bound(e, tool_rate_in_force(q, cfg, 'a', name, &a),
                  "account cap", what, &worst);
    }
    char rt[48], ts[32];
    if (held) {
        e->state = TOOL_ETA_PAUSED;
        e->kind = "paused";
        snprintf(e->what, sizeof e->what, "%s", held->name);
        e->left = held->held;
        e->rate = 0;
        if (held->paused)
            snprintf(e->text, sizeof e->text, "site %s is paused, %llu "
                     "left there", held->name,
                     (unsigned long long)held->held);
        else
            snprintf(e->text, sizeof e->text, "%llu left held (a paused "
                     "campaign or a disabled account)",
                     (unsigned long long)held->held);
        return;
    }
    if (last_due > e->now + (int64_t)(worst + 0.5)) {
        e->state = TOOL_ETA_TIME;
        e->eta = last_due;
        e->kind = "retry";
        e->what[0] = 0;
        e->left = 0;
        e->rate = 0;
        snprintf(e->text, sizeof e->text, "a deferred recipient is retried "
                 "at %s", tool_time_text(last_due, ts, sizeof ts));
        return;
    }
    if (worst <= 0) {
        e->state = TOOL_ETA_NONE;
        e->kind = "none";
        snprintf(e->text, sizeof e->text, "%s", e->queued
                 ? "no rate known for its sites" : "nothing queued");
        return;
    }
    e->state = TOOL_ETA_TIME;
    e->eta = e->now + (int64_t)(worst + 0.999);
    rate_text(e->rate, rt, sizeof rt);
    if (!strcmp(e->kind, "site"))
        snprintf(e->text, sizeof e->text, "slowest: site %s, %llu left at %s",
                 e->what, (unsigned long long)e->left, rt);
    else
        snprintf(e->text, sizeof e->text, "%s: %s, %llu left at %s", e->kind,
                 e->what, (unsigned long long)e->left, rt);
}

int tool_campaign_eta(struct tool_ctx *ctx, struct queue *q,
                      const struct status_view *v,
                      const struct queue_campaign *c, int state,
                      struct tool_eta *out)
{
    memset(out, 0, sizeof *out);
    out->now = (int64_t)time(NULL);
    out->kind = "none";
    if (state != QUEUE_CAMPAIGN_SENDING && state != QUEUE_CAMPAIGN_PAUSED) {
        snprintf(out->text, sizeof out->text, "%s",
                 state == QUEUE_CAMPAIGN_SCHEDULED ? "not started"
                 : state == QUEUE_CAMPAIGN_DRAFT ? "not sent" : "ended");
        return 0;
    }
    struct eta_walk w = { .campaign = c->id, .now = out->now, .v = v };
    long n = tool_queue_site_map(v, &w.map) ? -ENOMEM
             : queue_queued_walk(q, count_one, &w);
    free(w.map.v);
    free(w.slot);
    out->sites = w.s;
    out->nsites = w.n;
    if (n < 0 || w.err)
        return n < 0 ? (int)n : w.err;
    for (size_t i = 0; i < out->nsites; i++)
        out->queued += out->sites[i].left;
    /* the configuration only for sites sluiced does not describe */
    struct config cfg;
    bool loaded = false, need = false;
    for (size_t i = 0; i < out->nsites; i++)
        need |= !live_row(v, out->sites[i].name);
    if (need && tool_config_load(ctx, "sluice campaign show", NULL, &cfg,
                                 &loaded))
        loaded = false;
    char buf[3 * CONFIG_DNS_SERVERS_MAX];
    const char *servers = loaded ? tool_dns_servers(NULL, &cfg, buf,
                                                    sizeof buf) : NULL;
    unsigned lookups = ETA_LOOKUPS;
    for (size_t i = 0; i < out->nsites; i++)
        site_rate(&out->sites[i], v, loaded ? &cfg : NULL, q, servers,
                  &lookups);
    merge_same(out);
    decide(out, q, loaded ? &cfg : NULL, c);
    if (state == QUEUE_CAMPAIGN_PAUSED) {
        out->state = TOOL_ETA_PAUSED;
        out->kind = "paused";
        snprintf(out->what, sizeof out->what, "campaign %llu",
                 (unsigned long long)c->id);
        out->left = out->queued;
        out->rate = 0;
        snprintf(out->text, sizeof out->text, "the campaign is paused, "
                 "%llu left", (unsigned long long)out->queued);
    }
    if (loaded)
        config_free(&cfg);
    return 0;
}

void tool_eta_json(const struct tool_eta *e, json_t *obj)
{
    char ts[32];
    json_object_set_new(obj, "eta",
                        e->state == TOOL_ETA_TIME
                            ? json_string(tool_time_text(e->eta, ts,
                                                         sizeof ts))
                        : e->state == TOOL_ETA_PAUSED ? json_string("paused")
                                                      : json_null());
    json_t *sites = json_array();
    for (size_t i = 0; i < e->nsites && i < ETA_JSON_SITES; i++) {
        const struct tool_eta_site *g = &e->sites[i];
        json_array_append_new(sites, json_pack(
            "{s:s,s:I,s:I,s:b,s:o,s:s,s:s,s:o}", "site", g->name,
            "left", (json_int_t)g->left, "held", (json_int_t)g->held,
            "paused", g->paused,
            "rate_per_s", g->rate > 0 ? json_real(g->rate) : json_null(),
            "limit", g->limit, "limit_from", g->from,
            "seconds", g->rate > 0 ? json_real(g->seconds) : json_null()));
    }
    json_object_set_new(obj, "eta_basis", json_pack(
        "{s:s,s:o,s:I,s:o,s:s,s:I,s:o}", "kind", e->kind,
        "what", e->what[0] ? json_string(e->what) : json_null(),
        "left", (json_int_t)e->left,
        "rate_per_s", e->rate > 0 ? json_real(e->rate) : json_null(),
        "text", e->text, "queued", (json_int_t)e->queued, "sites", sites));
}

void tool_eta_free(struct tool_eta *e)
{
    if (!e)
        return;
    free(e->sites);
    e->sites = NULL;
    e->nsites = 0;
}
