/*
 * metrics.c - the loop thread's side of the metrics: counting the spool's
 * events and committed outcomes, and publishing a snapshot once a second.
 *
 * DESCRIPTION
 *   Every spool event the event log's pump reads (each once, in seq
 *   order: eventlog.c) is counted by type (queue_event_name()), by type
 *   and bounce category, by account and by site.  The site of an event is
 *   the site of its recipient domain's destination (a configured [site]
 *   or the domain itself), or the recipient's domain when sluiced has no
 *   destination for it (an event recorded by another process).
 *
 *   Label sets stay bounded.  Accounts: the first metrics_accounts
 *   accounts seen have their own label, later ones count as
 *   account="other".  Sites: up to METRICS_SITES_TRACKED sites are
 *   counted (further ones go to site="other" at once).  A new site is
 *   labelled at once while fewer than metrics_sites are; once a second
 *   the metrics_sites sites with the most events become the labelled
 *   ones.  A site counts into its own series only while it is labelled
 *   and into site="other" otherwise; a site that leaves the top hands
 *   its series' counts to site="other" and stops being shown, one that
 *   enters it starts a series at 0.  So "other" only grows, and the
 *   series shown always add up to the totals.
 *
 *   Delivery latency is the time from the delivery's enqueue (the spool's
 *   created, whole seconds) to the commit of its terminal outcome, taken
 *   from the claimed item when the outcome commits (outcome.c).
 *
 *   Once a second (and at open) the counts, the ranking, the engine's
 *   gauges and the spool's size and lifetime counters are copied into a
 *   spare snapshot, which is swapped with the published one under mu.
 *
 * DIAGNOSTICS
 *   metrics_open() fails only out of memory.  A spool read that fails
 *   leaves its gauges out of that snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "metrics_int.h"
#include "smtpd_int.h"

const double metrics_lat_bounds[METRICS_LAT_BUCKETS] = {
    0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400,
    28800, 43200, 86400,
};

#define SITE_HASH (METRICS_SITES_TRACKED * 2)

/* FNV-1a of a site name. */
static size_t site_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % SITE_HASH);
}

/* The counting state of site name, made when new; NULL past the cap. */
static struct metrics_site *site_get(struct metrics *m, const char *name)
{
    size_t b = site_hash(name);
    for (struct metrics_site *s = m->site_tab[b]; s; s = s->hnext)
        if (!strcmp(s->name, name))
            return s;
    if (m->nsite == METRICS_SITES_TRACKED)
        return NULL;
    struct metrics_site *s = &m->site_v[m->nsite++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->hnext = m->site_tab[b];
    m->site_tab[b] = s;
    if (m->nlabelled < m->top_sites) {
        s->labelled = true;   /* a free place in the top */
        m->nlabelled++;
    }
    return s;
}

/* The counts of account id: its own, or "other" past the cap. */
static uint64_t *account_counts(struct metrics *m, uint32_t id)
{
    size_t lo = 0, hi = m->nacc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->acc[mid].id == id)
            return m->acc[mid].c;
        if (m->acc[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (m->nacc == m->max_accounts)
        return m->account_other;
    memmove(&m->acc[lo + 1], &m->acc[lo], (m->nacc - lo) * sizeof *m->acc);
    memset(&m->acc[lo], 0, sizeof *m->acc);
    m->acc[lo].id = id;
    m->nacc++;
    return m->acc[lo].c;
}

void metrics_event(struct engine *e, const struct queue_event *ev)
{
    struct metrics *m = e->metrics;
    if (!m || ev->type >= METRICS_TYPES)
        return;
    unsigned t = ev->type;
    m->outcomes[t]++;
    if (ev->category && ev->category < QUEUE_CAT_COUNT)
        m->by_cat[t][ev->category]++;
    account_counts(m, ev->account)[t]++;
    char dom[256];
    struct metrics_site *s = site_get(m, dest_rcpt_site(e, ev->rcpt, dom,
                                                    sizeof dom));
    if (s)
        s->total++;
    if (s && s->labelled)
        s->own[t]++;
    else
        m->site_other[t]++;
    int64_t sec = engine_now();
    size_t slot = (size_t)(sec % METRICS_RATE_S);
    if (m->ring_sec[slot] != sec) {
        memset(m->ring[slot], 0, sizeof m->ring[slot]);
        m->ring_sec[slot] = sec;
    }
    m->ring[slot][t]++;
}

void metrics_committed(struct engine *e, struct item *const *items,
                       const struct queue_outcome *o, size_t n)
{
    struct metrics *m = e->metrics;
    if (!m)
        return;
    uint64_t now = engine_now_ms();
    for (size_t i = 0; i < n; i++) {
        int t = o[i].type;
        if (t <= QUEUE_EV_NONE || t >= METRICS_TYPES ||
            t == QUEUE_EV_DEFERRED)
            continue;
        int64_t created_ms = items[i]->created * 1000;
        double s = (int64_t)now > created_ms
                   ? (double)((int64_t)now - created_ms) / 1000.0 : 0;
        struct metrics_hist *h = &m->latency[t];
        unsigned b = 0;
        while (b < METRICS_LAT_BUCKETS && s > metrics_lat_bounds[b])
            b++;
        h->bucket[b]++;
        h->count++;
        h->sum += s;
    }
}

void metrics_webhook_backlog(struct engine *e, const char *name,
                             uint64_t events)
{
    struct metrics *m = e->metrics;
    if (!m)
        return;
    for (size_t i = 0; i < m->nwebhooks; i++)
        if (!strcmp(m->webhooks[i].name, name)) {
            m->webhooks[i].backlog = events;
            return;
        }
    if (m->nwebhooks == METRICS_WEBHOOKS)
        return;
    struct metrics_webhook *w = &m->webhooks[m->nwebhooks++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->backlog = events;
}

/* qsort: the site with more events first, then by name. */
static int by_volume(const void *a, const void *b)
{
    const struct metrics_site *x = *(struct metrics_site *const *)a;
    const struct metrics_site *y = *(struct metrics_site *const *)b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Label the top_sites sites with the most events; copy them to sn. */
static void rank_sites(struct metrics *m, struct metrics_snap *sn)
{
    for (size_t i = 0; i < m->nsite; i++)
        m->rank[i] = &m->site_v[i];
    qsort(m->rank, m->nsite, sizeof *m->rank, by_volume);
    sn->nsites = 0;
    for (size_t i = 0; i < m->nsite; i++) {
        struct metrics_site *s = m->rank[i];
        bool was = s->labelled;
        s->labelled = i < m->top_sites;
        if (!s->labelled) {
            for (unsigned t = 0; was && t < METRICS_TYPES; t++) {
                m->site_other[t] += s->own[t];   /* it leaves the top */
                s->own[t] = 0;
            }
            continue;
        }
        m->nlabelled = i + 1;
        struct metrics_site_snap *o = &sn->sites[sn->nsites++];
        memcpy(o->name, s->name, sizeof o->name);
        memcpy(o->c, s->own, sizeof o->c);
    }
    memcpy(sn->site_other, m->site_other, sizeof sn->site_other);
}

/* Fill the spare snapshot and publish it. */
static void publish(struct metrics *m)
{
    struct engine *e = m->e;
    struct metrics_snap *sn = m->spare;
    sn->time_ms = engine_now_ms();
    sn->start_ms = m->start_ms;
    memcpy(sn->outcomes, m->outcomes, sizeof sn->outcomes);
    memcpy(sn->by_cat, m->by_cat, sizeof sn->by_cat);
    memcpy(sn->latency, m->latency, sizeof sn->latency);
    int64_t now = engine_now();
    for (unsigned t = 0; t < METRICS_TYPES; t++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < METRICS_RATE_S; i++)
            if (m->ring_sec[i] > now - METRICS_RATE_S)
                sum += m->ring[i][t];
        sn->rate[t] = (double)sum / METRICS_RATE_S;
    }
    rank_sites(m, sn);
    sn->naccounts = m->nacc;
    sn->max_accounts = m->max_accounts;
    for (size_t i = 0; i < m->nacc; i++) {
        sn->accounts[i].id = m->acc[i].id;
        memcpy(sn->accounts[i].c, m->acc[i].c, sizeof sn->accounts[i].c);
    }
    memcpy(sn->account_other, m->account_other, sizeof sn->account_other);
    memcpy(sn->webhooks, m->webhooks, sizeof sn->webhooks);
    sn->nwebhooks = m->nwebhooks;
    sn->sessions_out = dest_sessions(e);
    sn->sessions_in = e->smtpd ? e->smtpd->nconns : 0;
    sn->inflight = engine_inflight(e);
    sn->inflight_bytes = body_bytes_held(e);
    sn->inflight_bytes_peak = body_bytes_peak(e);
    sn->inflight_bytes_max = e->cfg.max_inflight_bytes;
    sn->write_queue_bytes = smtp_session_queued_bytes();
    sn->have_info = e->q && !queue_info(e->q, &sn->info);
    sn->have_totals = e->q && !queue_counts_total(e->q, &sn->totals);
    pthread_mutex_lock(&m->mu);
    m->spare = m->pub;
    m->pub = sn;
    pthread_mutex_unlock(&m->mu);
}

/* Once a second. */
static void on_timer(uv_timer_t *t)
{
    publish(t->data);
}

/* A snapshot with room for the labelled sites and accounts. */
static struct metrics_snap *snap_new(const struct metrics *m)
{
    struct metrics_snap *sn = calloc(1, sizeof *sn);
    if (!sn)
        return NULL;
    sn->sites = calloc(m->top_sites, sizeof *sn->sites);
    sn->accounts = calloc(m->max_accounts, sizeof *sn->accounts);
    if (!sn->sites || !sn->accounts) {
        free(sn->sites);
        free(sn->accounts);
        free(sn);
        return NULL;
    }
    return sn;
}

static void snap_free(struct metrics_snap *sn)
{
    if (!sn)
        return;
    free(sn->sites);
    free(sn->accounts);
    free(sn);
}

/* Free m and what it holds (its timer closed or never started). */
static void state_free(struct metrics *m)
{
    if (!m)
        return;
    snap_free(m->spare);
    snap_free(m->pub);
    free(m->site_tab);
    free(m->site_v);
    free(m->rank);
    free(m->acc);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int metrics_open(struct engine *e)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->e = e;
    m->top_sites = e->cfg.metrics_sites;
    m->max_accounts = e->cfg.metrics_accounts;
    m->start_ms = engine_now_ms();
    m->site_tab = calloc(SITE_HASH, sizeof *m->site_tab);
    m->site_v = calloc(METRICS_SITES_TRACKED, sizeof *m->site_v);
    m->rank = calloc(METRICS_SITES_TRACKED, sizeof *m->rank);
    m->acc = calloc(m->max_accounts, sizeof *m->acc);
    m->spare = snap_new(m);
    m->pub = snap_new(m);
    if (!m->site_tab || !m->site_v || !m->rank || !m->acc || !m->spare ||
        !m->pub) {
        state_free(m);
        return -ENOMEM;
    }
    e->metrics = m;
    publish(m);
    uv_timer_init(e->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, on_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&m->timer);
    return 0;
}

void metrics_free(struct engine *e)
{
    state_free(e->metrics);
    e->metrics = NULL;
}
