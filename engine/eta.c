/*
 * eta.c - a campaign's ETA (eta.h): the slowest of its destinations, at
 * the limits in force there.  The one estimate of `sluice campaign show`
 * (tools/campaign_eta.c) and of the web console's campaign rows
 * (console_campaign.c).
 *
 * DESCRIPTION
 *   One walk of the spool's queued deliveries (queue_queued_walk) counts
 *   the recipients of every campaign asked, per site: the site the live
 *   description puts the domain in (eta_live_site_of: the map of `queue
 *   summary --by site`), else the domain itself.  A delivery is held
 *   when it is parked (a paused campaign, a disabled account) or its
 *   domain or site is paused (the spool's controls, read here).
 *
 *   The rate of a site is what sluiced applies now: its max_rate_per_s
 *   (the shipped provider profile, then sluiced.conf, then a live `sluice
 *   limits set`, times the adaptive backoff factor).  A site sluiced has
 *   not described goes to the caller's hook (the CLI resolves it from
 *   sluiced.conf as `limits show --effective` does), else has no known
 *   rate.  A site without max_rate goes as fast as the machine and the
 *   receiver allow: its live rate stands in when it has one.
 *
 *   The time a site needs is left / rate; the campaign's own and its
 *   account's rate caps (sluiced's, else the hook's) need all the
 *   campaign's left / cap; a deferred recipient is not tried before its
 *   retry time.  The ETA is now plus the largest of these, and names it.
 *   Other mail to the same site shares its limit and is not counted: the
 *   ETA is the earliest the limits allow, not a promise.
 *
 *   Cost: one read of the whole ready index (every queued delivery of
 *   the spool, the campaigns' or not: the index has no campaign in its
 *   key), shared by all campaigns asked at once; a spool with millions
 *   queued takes seconds, so a caller that must answer quickly caps the
 *   walk (max_walk).  Counts per campaign and site kept by the writer
 *   would make it cheap; none exist yet.
 *
 * DIAGNOSTICS
 *   Spool errors as negative queue codes; more than ETA_MAX_SITES sites
 *   of one campaign counts the rest into one "(other sites)" group
 *   without a rate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eta.h"
#include "queue_campaign.h"
#include "queue_queued.h"

#define ETA_MAX_SITES 4096
#define ETA_JSON_SITES 100
#define ETA_OTHER "(other sites)"
/* site and domain pauses read at most (more: the rest hold nothing here) */
#define ETA_MAX_PAUSES 100000

/* One campaign's groups while walking. */
struct camp_walk {
    uint64_t id;
    struct eta *out;
    size_t cap;             /* of out->sites */
    size_t *slot;           /* open addressing: index + 1, 0 empty */
    size_t nslot;           /* a power of two, > 2 n */
};

struct eta_walk {
    const struct eta_live *live;
    struct queue_control *pauses;  /* sites' and domains', sorted */
    size_t npauses, pcap;
    int64_t now;
    struct camp_walk *c;           /* sorted by id */
    size_t nc;
    size_t max, seen;
    bool capped;
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
static bool rehash(struct camp_walk *w)
{
    size_t ns = w->nslot ? w->nslot * 2 : 64;
    size_t *slot = calloc(ns, sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = 0; i < w->out->nsites; i++) {
        size_t b = name_hash(w->out->sites[i].name) & (ns - 1);
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
static struct eta_site *site_group(struct camp_walk *w, const char *name,
                                   const char *domain)
{
    struct eta *e = w->out;
    if (w->nslot)
        for (size_t b = name_hash(name) & (w->nslot - 1); w->slot[b];
             b = (b + 1) & (w->nslot - 1))
            if (!strcmp(e->sites[w->slot[b] - 1].name, name))
                return &e->sites[w->slot[b] - 1];
    if (e->nsites >= ETA_MAX_SITES && strcmp(name, ETA_OTHER))
        return site_group(w, ETA_OTHER, "");   /* made once, past the cap */
    if (e->nsites == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        struct eta_site *ns = realloc(e->sites, nc * sizeof *ns);
        if (!ns)
            return NULL;
        e->sites = ns;
        w->cap = nc;
    }
    if ((e->nsites + 1) * 2 > w->nslot && !rehash(w))
        return NULL;
    struct eta_site *g = &e->sites[e->nsites];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->domain, sizeof g->domain, "%s", domain);
    g->from = "none";
    size_t b = name_hash(name) & (w->nslot - 1);
    while (w->slot[b])
        b = (b + 1) & (w->nslot - 1);
    w->slot[b] = ++e->nsites;
    return g;
}

static int pause_cmp(const void *a, const void *b)
{
    const struct queue_control *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* queue_controls() callback: keep the site and domain pauses holding. */
static int take_pause(void *arg, const struct queue_control *c)
{
    struct eta_walk *w = arg;
    if ((c->kind != QUEUE_CTL_SITE && c->kind != QUEUE_CTL_DOMAIN) ||
        !queue_control_active(c, w->now) || w->npauses >= ETA_MAX_PAUSES)
        return 0;
    if (w->npauses == w->pcap) {
        size_t nc = w->pcap ? w->pcap * 2 : 16;
        struct queue_control *np = realloc(w->pauses, nc * sizeof *np);
        if (!np) {
            w->err = -ENOMEM;
            return 1;
        }
        w->pauses = np;
        w->pcap = nc;
    }
    w->pauses[w->npauses++] = *c;
    return 0;
}

/* Whether a pause of kind and name holds now. */
static bool paused(const struct eta_walk *w, int kind, const char *name)
{
    struct queue_control key = { .kind = kind };
    if (!w->npauses || strlen(name) >= sizeof key.name)
        return false;
    memcpy(key.name, name, strlen(name) + 1);
    return bsearch(&key, w->pauses, w->npauses, sizeof key, pause_cmp);
}

static int camp_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct camp_walk *)a)->id;
    uint64_t y = ((const struct camp_walk *)b)->id;
    return x < y ? -1 : x > y;
}

/* queue_queued_walk() callback: count one delivery of a campaign asked. */
static int count_one(void *arg, const struct queue_queued *d)
{
    struct eta_walk *w = arg;
    if (w->max && ++w->seen > w->max) {
        w->capped = true;
        return 1;
    }
    struct camp_walk key = { .id = d->campaign };
    struct camp_walk *c = d->campaign
        ? bsearch(&key, w->c, w->nc, sizeof key, camp_cmp) : NULL;
    if (!c)
        return 0;
    const char *site = eta_live_site_of(w->live, d->domain);
    struct eta_site *g = site_group(c, site, d->domain);
    if (!g) {
        w->err = -ENOMEM;
        return 1;
    }
    bool p = paused(w, QUEUE_CTL_DOMAIN, d->domain) ||
             paused(w, QUEUE_CTL_SITE, site);
    bool held = p || queue_due_parked(d->due);
    g->left++;
    if (p)
        g->paused = true;
    if (held)
        g->held++;
    else if (d->due > g->last_due)
        g->last_due = d->due;
    return 0;
}

void eta_rate_text(double r, char *buf, size_t cap)
{
    if (r >= 1000)
        snprintf(buf, cap, "%.0f/s", r);
    else if (r >= 10)
        snprintf(buf, cap, "%.4g/s", r);
    else
        snprintf(buf, cap, "%.3g/s", r);
}

/* "2026-12-07T20:31:05Z" of unix seconds t. */
static const char *time_text(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

/* The rate of g: sluiced's, else the hook's. */
static void site_rate(struct eta_site *g, const struct eta_live *live,
                      const struct eta_hooks *h)
{
    const struct eta_live_site *row = eta_live_find(live, g->name);
    if (row) {
        g->described = true;
        if (row->max_rate_per_s > 0) {
            g->rate = row->max_rate_per_s;
            g->from = "sluiced";
            eta_rate_text(g->rate, g->limit, sizeof g->limit);
            return;
        }
        snprintf(g->limit, sizeof g->limit, "unlimited");
        if (row->rate > 0) {
            g->rate = row->rate;
            g->from = "observed";
        }
        return;
    }
    snprintf(g->limit, sizeof g->limit, "?");
    if (h && h->site)
        h->site(h->arg, g);
}

/* Fold groups that name the same site (a hook's renames) into one. */
static void merge_same(struct eta *e)
{
    for (size_t i = 0; i < e->nsites; i++)
        for (size_t j = i + 1; j < e->nsites;) {
            if (strcmp(e->sites[i].name, e->sites[j].name)) {
                j++;
                continue;
            }
            struct eta_site *a = &e->sites[i], *b = &e->sites[j];
            a->left += b->left;
            a->held += b->held;
            a->paused |= b->paused;
            if (b->last_due > a->last_due)
                a->last_due = b->last_due;
            if (!a->rate && b->rate) {
                a->rate = b->rate;
                a->from = b->from;
                a->described = b->described;
                memcpy(a->limit, b->limit, sizeof a->limit);
            }
            e->sites[j] = e->sites[--e->nsites];
        }
}

static int slowest_first(const void *x, const void *y)
{
    const struct eta_site *a = x, *b = y;
    if (a->seconds != b->seconds)
        return a->seconds > b->seconds ? -1 : 1;
    if (a->left != b->left)
        return a->left > b->left ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The cap per second of kind/id: sluiced's, else the hook's; 0 none. */
static double cap_of(const struct eta_live *live, const struct eta_hooks *h,
                     char kind, uint64_t id, const struct queue_account *a)
{
    double per_s = 0;
    if (live->have_caps) {
        for (size_t i = 0; i < live->ncaps; i++)
            if (live->caps[i].kind == kind && live->caps[i].id == id)
                return live->caps[i].per_s;
        return 0;
    }
    if (h && h->cap && h->cap(h->arg, kind, id, a, &per_s) && per_s > 0)
        return per_s;
    return 0;
}

/* A cap over all sites: the bound it sets, if slower than the one so
 * far. */
static void cap_bound(struct eta *e, double rate, const char *kind,
                      const char *what, double *worst)
{
    if (rate <= 0 || !e->queued)
        return;
    double sec = (double)e->queued / rate;
    if (sec <= *worst)
        return;
    *worst = sec;
    e->kind = kind;
    snprintf(e->what, sizeof e->what, "%s", what);
    e->left = e->queued;
    e->rate = rate;
}

/* What left at sites without a known rate adds to the text. */
static void unknown_note(struct eta *e)
{
    uint64_t left = 0;
    size_t n = 0;
    for (size_t i = 0; i < e->nsites; i++)
        if (!e->sites[i].described && e->sites[i].left > e->sites[i].held) {
            left += e->sites[i].left - e->sites[i].held;
            n++;
        }
    size_t len = strlen(e->text);
    if (n && len < sizeof e->text)
        snprintf(e->text + len, sizeof e->text - len, "; %llu more at %zu "
                 "site%s sluiced has not described yet (rate unknown)",
                 (unsigned long long)left, n, n == 1 ? "" : "s");
}

/* Fill the bound and ETA from the sites and caps. */
static void decide(struct eta *e, struct queue *q, const struct eta_live *live,
                   const struct eta_hooks *h, const struct eta_ask *c)
{
    double worst = 0;
    int64_t last_due = 0;
    const struct eta_site *held = NULL;
    for (size_t i = 0; i < e->nsites; i++) {
        struct eta_site *g = &e->sites[i];
        if (g->last_due > last_due)
            last_due = g->last_due;
        g->seconds = g->rate > 0 ? (double)g->left / g->rate : 0;
    }
    if (e->nsites)
        qsort(e->sites, e->nsites, sizeof *e->sites, slowest_first);
    /* after the sort: the slowest site holding mail; a paused one before
     * mail parked elsewhere */
    for (size_t i = 0; i < e->nsites; i++) {
        const struct eta_site *g = &e->sites[i];
        if (g->held && (!held || (g->paused && !held->paused)))
            held = g;
    }
    if (e->nsites && e->sites[0].seconds > 0) {
        const struct eta_site *g = &e->sites[0];
        worst = g->seconds;
        e->kind = "site";
        snprintf(e->what, sizeof e->what, "%s", g->name);
        e->left = g->left;
        e->rate = g->rate;
    }
    char what[QUEUE_MAX_ACCOUNT_NAME + 40];
    snprintf(what, sizeof what, "campaign %llu", (unsigned long long)c->id);
    cap_bound(e, cap_of(live, h, 'c', c->id, NULL), "campaign cap", what,
              &worst);
    struct queue_account a;
    if (queue_account_get(q, c->account, &a) == 0) {
        snprintf(what, sizeof what, "account %s", a.name);
        cap_bound(e, cap_of(live, h, 'a', c->account, &a), "account cap",
                  what, &worst);
    }
    char rt[48], ts[32];
    if (held) {
        e->state = ETA_PAUSED;
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
        e->state = ETA_TIME;
        e->eta = last_due;
        e->kind = "retry";
        e->what[0] = 0;
        e->left = 0;
        e->rate = 0;
        snprintf(e->text, sizeof e->text, "a deferred recipient is retried "
                 "at %s", time_text(last_due, ts, sizeof ts));
        unknown_note(e);
        return;
    }
    if (worst <= 0) {
        e->state = ETA_NONE;
        e->kind = "none";
        snprintf(e->text, sizeof e->text, "%s", e->queued
                 ? "no rate known for its sites" : "nothing queued");
        unknown_note(e);
        return;
    }
    e->state = ETA_TIME;
    e->eta = e->now + (int64_t)(worst + 0.999);
    eta_rate_text(e->rate, rt, sizeof rt);
    if (!strcmp(e->kind, "site"))
        snprintf(e->text, sizeof e->text, "slowest: site %s, %llu left at %s",
                 e->what, (unsigned long long)e->left, rt);
    else
        snprintf(e->text, sizeof e->text, "%s: %s, %llu left at %s", e->kind,
                 e->what, (unsigned long long)e->left, rt);
    unknown_note(e);
}

/* Finish one walked campaign: rates, merge, bound, and its own pause. */
static void finish(struct eta *e, struct queue *q, const struct eta_live *live,
                   const struct eta_hooks *h, const struct eta_ask *c,
                   bool capped, size_t max)
{
    for (size_t i = 0; i < e->nsites; i++)
        e->queued += e->sites[i].left;
    if (capped) {
        free(e->sites);
        e->sites = NULL;
        e->nsites = 0;
        e->queued = 0;
        snprintf(e->text, sizeof e->text, "not estimated here: more than "
                 "%zu queued deliveries in the spool to read", max);
    } else {
        for (size_t i = 0; i < e->nsites; i++)
            site_rate(&e->sites[i], live, h);
        merge_same(e);
        decide(e, q, live, h, c);
    }
    if (c->state == QUEUE_CAMPAIGN_PAUSED) {
        e->state = ETA_PAUSED;
        e->kind = "paused";
        snprintf(e->what, sizeof e->what, "campaign %llu",
                 (unsigned long long)c->id);
        e->left = e->queued;
        e->rate = 0;
        if (capped)
            snprintf(e->text, sizeof e->text, "the campaign is paused");
        else
            snprintf(e->text, sizeof e->text, "the campaign is paused, "
                     "%llu left", (unsigned long long)e->queued);
    }
}

int eta_estimate(struct queue *q, const struct eta_live *live,
                 const struct eta_hooks *hooks, const struct eta_ask *ask,
                 size_t n, size_t max_walk, struct eta *out)
{
    struct eta_walk w = { .live = live, .now = (int64_t)time(NULL),
                          .max = max_walk };
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        struct eta *e = &out[i];
        int st = ask[i].state;
        memset(e, 0, sizeof *e);
        e->now = w.now;
        e->kind = "none";
        if (st == QUEUE_CAMPAIGN_SENDING || st == QUEUE_CAMPAIGN_PAUSED)
            w.nc++;
        else
            snprintf(e->text, sizeof e->text, "%s",
                     st == QUEUE_CAMPAIGN_SCHEDULED ? "not started"
                     : st == QUEUE_CAMPAIGN_DRAFT ? "not sent" : "ended");
    }
    if (!w.nc)
        return 0;
    if (!(w.c = calloc(w.nc, sizeof *w.c)))
        return -ENOMEM;
    w.nc = 0;
    for (size_t i = 0; i < n; i++)
        if (ask[i].state == QUEUE_CAMPAIGN_SENDING ||
            ask[i].state == QUEUE_CAMPAIGN_PAUSED)
            w.c[w.nc++] = (struct camp_walk){ .id = ask[i].id,
                                              .out = &out[i] };
    qsort(w.c, w.nc, sizeof *w.c, camp_cmp);
    long rc = queue_controls(q, take_pause, &w);
    if (rc >= 0 && !w.err) {
        if (w.npauses)
            qsort(w.pauses, w.npauses, sizeof *w.pauses, pause_cmp);
        rc = queue_queued_walk(q, count_one, &w);
    }
    err = rc < 0 ? (int)rc : w.err;
    for (size_t i = 0; i < w.nc; i++)
        free(w.c[i].slot);
    free(w.c);
    free(w.pauses);
    if (err) {
        for (size_t i = 0; i < n; i++)
            eta_free(&out[i]);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        if (ask[i].state == QUEUE_CAMPAIGN_SENDING ||
            ask[i].state == QUEUE_CAMPAIGN_PAUSED)
            finish(&out[i], q, live, hooks, &ask[i], w.capped, max_walk);
    return 0;
}

void eta_json(const struct eta *e, json_t *obj)
{
    char ts[32];
    json_object_set_new(obj, "eta",
                        e->state == ETA_TIME
                            ? json_string(time_text(e->eta, ts, sizeof ts))
                        : e->state == ETA_PAUSED ? json_string("paused")
                                                 : json_null());
    json_t *sites = json_array();
    for (size_t i = 0; i < e->nsites && i < ETA_JSON_SITES; i++) {
        const struct eta_site *g = &e->sites[i];
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

void eta_free(struct eta *e)
{
    if (!e)
        return;
    free(e->sites);
    e->sites = NULL;
    e->nsites = 0;
}
