/*
 * site.c - per-provider throttles: connection caps, GCRA rates, adaptive
 * backoff and recovery, suspension and pause.
 *
 * DESCRIPTION
 *   Backoff: a reply that matches a [backoff] rule (or a shipped default:
 *   421, 4.7.0, 4.7.28, "try again later", "too many connections", "rate
 *   limit") multiplies the site's concurrency limit and rate factor by
 *   `decrease` (at most once a second, so one burst of 421s from many
 *   sessions counts once); a strong rule suspends the site for `suspend`.
 *   After `recover_after` successes in a row the site steps back up: one
 *   more connection and a tenth more rate, until it is back at its limits.
 *   Every change of state is written to the event log with the reply that
 *   caused it.  A paused site takes nothing, except the one transaction of
 *   an incident's probe (site_probe_open(), on one connection).
 *
 * DIAGNOSTICS
 *   None: a site only ever says "not now" and when.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "site.h"

static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

const char *site_state_name(enum site_state st)
{
    switch (st) {
    case SITE_BACKOFF: return "backoff";
    case SITE_SUSPENDED: return "suspended";
    case SITE_PAUSED: return "paused";
    default: return "normal";
    }
}

/* Move the site to state st; every change goes through here, traced
 * old -> new on stderr with sluiced -v. */
static void site_enter(struct site *s, enum site_state st)
{
    if (s->state == st)
        return;
    if (smtp_trace)
        fprintf(stderr, "site %s: %s -> %s\n", s->name,
                site_state_name(s->state), site_state_name(st));
    s->state = st;
}

/* The state a site goes back to when nothing stops it: backoff while its
 * limits are cut, else normal. */
static enum site_state site_running_state(const struct site *s)
{
    return s->conc_limit < s->pol->max_connections || s->rate_factor < 1.0
           ? SITE_BACKOFF : SITE_NORMAL;
}

static double now_ms(const struct site *s)
{
    return (double)uv_now(s->e->loop);
}

static void arm(struct site *s, double delay);

static void on_site_timer(uv_timer_t *t)
{
    struct site *s = t->data;
    int64_t now = (int64_t)uv_now(s->e->loop);
    s->timer_armed = false;
    if (s->state == SITE_SUSPENDED && s->suspended_until_ms <= now) {
        site_enter(s, site_running_state(s));
        eventlog_site(s->e, s, "resume-after-suspend", 0, "", "");
    } else if (s->state == SITE_SUSPENDED) {
        /* an earlier wake-up (a rate) took the timer: the end of the
         * suspension still needs one */
        arm(s, (double)(s->suspended_until_ms - now));
    }
    for (unsigned i = 0; i < s->ndests; i++)
        dest_kick(s->e, s->dests[i]);
}

/* Wake the destinations after delay ms (keeping an earlier wake-up). */
static void arm(struct site *s, double delay)
{
    uint64_t ms = delay < 1 ? 1 : (uint64_t)ceil(delay);
    if (s->timer_armed && uv_timer_get_due_in(&s->timer) <= ms)
        return;
    s->timer_armed = true;
    uv_timer_start(&s->timer, on_site_timer, ms, 0);
    s->next_retry_ms = (int64_t)engine_now_ms() + (int64_t)ms;
}

/* Find or make the site called name. */
static struct site *site_get(struct engine *e, const char *name,
                             bool configured, const struct domain_policy *pol)
{
    if (e->sites.cap) {
        for (struct site *s = e->sites.tab[hash_name(name) & (e->sites.cap - 1)]; s;
             s = s->hnext)
            if (!strcmp(s->name, name) && s->configured == configured)
                return s;
    }
    if (e->sites.n + 1 > e->sites.cap) {
        size_t ncap = e->sites.cap ? e->sites.cap * 2 : 1024;
        struct site **n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < e->sites.cap; i++)
            for (struct site *s = e->sites.tab[i], *next; s; s = next) {
                next = s->hnext;
                size_t b = hash_name(s->name) & (ncap - 1);
                s->hnext = n[b];
                n[b] = s;
            }
        free(e->sites.tab);
        e->sites.tab = n;
        e->sites.cap = ncap;
    }
    struct site *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = e;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->configured = configured;
    s->pol = pol;
    s->conc_limit = pol->max_connections;
    s->rate_factor = 1.0;
    if (engine_paused(e, QUEUE_CTL_SITE, name)) {
        s->paused = true;
        site_enter(s, SITE_PAUSED);
    }
    uv_timer_init(e->loop, &s->timer);
    s->timer.data = s;
    uv_unref((uv_handle_t *)&s->timer);
    size_t b = hash_name(name) & (e->sites.cap - 1);
    s->hnext = e->sites.tab[b];
    e->sites.tab[b] = s;
    e->sites.n++;
    return s;
}

struct site *site_for_dest(struct engine *e, struct dest *d, const char *mx)
{
    const struct site_policy *sp = mx ? config_site_for_mx(&e->cfg, mx) : NULL;
    struct site *s = sp ? site_get(e, sp->lim.name, true,
                                   live_policy(e, 's', sp->lim.name, &sp->lim))
                        : site_get(e, d->domain, false, d->pol);
    if (!s)
        return NULL;
    for (unsigned i = 0; i < s->ndests; i++)
        if (s->dests[i] == d)
            return s;
    if (s->ndests == s->capdests) {
        unsigned ncap = s->capdests ? s->capdests * 2 : 4;
        struct dest **n = realloc(s->dests, ncap * sizeof *n);
        if (!n)
            return s;
        s->dests = n;
        s->capdests = ncap;
    }
    s->dests[s->ndests++] = d;
    return s;
}

unsigned site_conn_limit(const struct site *s)
{
    return s->conc_limit < s->pol->max_connections ? s->conc_limit
                                                   : s->pol->max_connections;
}

bool site_stopped(struct site *s, int64_t *until_ms)
{
    *until_ms = 0;
    if (s->paused && !s->probe)
        return true;
    if (s->suspended_until_ms > (int64_t)uv_now(s->e->loop)) {
        *until_ms = (int64_t)engine_now_ms() +
                    (s->suspended_until_ms - (int64_t)uv_now(s->e->loop));
        return true;
    }
    return false;
}

bool site_may_connect(struct site *s)
{
    int64_t until;
    if (site_stopped(s, &until) || s->sessions >= site_conn_limit(s) ||
        (s->paused && s->sessions))   /* a probe: one connection */
        return false;
    const struct rate *r = &s->pol->max_connection_rate;
    if (r->n && s->tat_conn > now_ms(s)) {
        arm(s, s->tat_conn - now_ms(s));
        return false;
    }
    return true;
}

void site_connected(struct site *s)
{
    const struct rate *r = &s->pol->max_connection_rate;
    s->sessions++;
    if (r->n) {
        double t = now_ms(s);
        s->tat_conn = (s->tat_conn > t ? s->tat_conn : t) +
                      (double)r->per_s * 1000.0 / r->n;
    }
}

void site_disconnected(struct site *s)
{
    if (s->sessions)
        s->sessions--;
    /* a slot came free: the site's other destinations may be waiting for
     * it (kicked from the site's timer, not inside this session's close) */
    if (s->ndests > 1)
        arm(s, 0);
}

bool site_take(struct site *s, unsigned n)
{
    const struct rate *r = &s->pol->max_rate;
    int64_t until;
    if (site_stopped(s, &until))
        return false;
    if (n && s->paused)
        s->probe = false;   /* the probe's one transaction: it goes */
    if (!r->n)
        return true;
    double t = now_ms(s);
    if (s->tat_msg > t) {
        arm(s, s->tat_msg - t);
        return false;
    }
    double interval = (double)r->per_s * 1000.0 / ((double)r->n * s->rate_factor);
    s->tat_msg = (s->tat_msg > t ? s->tat_msg : t) + interval * n;
    return true;
}

/* Count one delivery in the per-second ring. */
static void count_delivery(struct site *s)
{
    int64_t sec = (int64_t)(engine_now_ms() / 1000);
    if (sec - s->per_sec_base >= 32 || sec < s->per_sec_base) {
        /* all of it is older than the ring (or the clock went back); a
         * smaller gap shifts below, keeping the last seconds for
         * site_rate() */
        memset(s->per_sec, 0, sizeof s->per_sec);
        s->per_sec_base = sec - 15;
    }
    while (sec - s->per_sec_base >= 16) {
        memmove(s->per_sec, s->per_sec + 1, sizeof s->per_sec - sizeof s->per_sec[0]);
        s->per_sec[15] = 0;
        s->per_sec_base++;
    }
    s->per_sec[sec - s->per_sec_base]++;
}

double site_rate(struct site *s)
{
    /* deliveries from the start of the second SITE_RATE_WINDOW_S - 1
     * seconds ago until now, over that span: the current second counts
     * with its part gone by, so the rate falls to 0 within the window once
     * nothing is delivered (a 10 s average of whole seconds lagged after
     * a cancel) */
    int64_t now = (int64_t)engine_now_ms(), sec = now / 1000;
    uint32_t sum = 0;
    for (int64_t k = sec - (SITE_RATE_WINDOW_S - 1); k <= sec; k++)
        if (k >= s->per_sec_base && k < s->per_sec_base + 16)
            sum += s->per_sec[k - s->per_sec_base];
    double span = (double)(SITE_RATE_WINDOW_S - 1) +
                  (double)(now % 1000) / 1000;
    return sum / span;
}

/* site_foreach(): add one site's recent rate into the sum. */
static void add_rate(struct site *s, void *arg)
{
    *(double *)arg += site_rate(s);
}

double site_total_rate(struct engine *e)
{
    double sum = 0;
    site_foreach(e, add_rate, &sum);
    return sum;
}

void site_feedback(struct site *s, bool ok, int code, const char *enhanced,
                   const char *text)
{
    const struct backoff_policy *b = &s->e->cfg.backoff;
    if (ok) {
        s->delivered++;
        count_delivery(s);
        if (s->state != SITE_BACKOFF || ++s->ok_in_row < b->recover_after)
            return;
        s->ok_in_row = 0;
        if (s->conc_limit < s->pol->max_connections)
            s->conc_limit++;
        /* 0.5 + 5 * 0.1 is 0.9999999999999999 in binary: snap, or the
         * site takes one needless extra step */
        s->rate_factor = s->rate_factor + 0.1 > 1.0 - 1e-9 ? 1.0
                                                        : s->rate_factor + 0.1;
        if (s->conc_limit >= s->pol->max_connections && s->rate_factor >= 1.0)
            site_enter(s, SITE_NORMAL);
        eventlog_site(s->e, s, s->state == SITE_NORMAL ? "recovered"
                                                      : "recovering", 0, "", "");
        for (unsigned i = 0; i < s->ndests; i++)
            dest_kick(s->e, s->dests[i]);
        return;
    }
    snprintf(s->last_error, sizeof s->last_error, "%d %s%s%s", code,
             enhanced ? enhanced : "", enhanced && *enhanced ? " " : "",
             text ? text : "");
    const struct backoff_rule *rule = NULL;
    for (size_t i = 0; i < b->nrules && !rule; i++)
        if (config_backoff_match(&b->rules[i], code, enhanced, text))
            rule = &b->rules[i];
    if (!rule)
        return;
    s->ok_in_row = 0;
    int64_t now = (int64_t)uv_now(s->e->loop);
    if (rule->strong) {
        if (s->state == SITE_SUSPENDED && s->suspended_until_ms > now)
            return;
        s->suspended_until_ms = now + b->suspend_ms;
        site_enter(s, SITE_SUSPENDED);
        s->conc_limit = 1;
        s->rate_factor = b->min_rate_factor;
        arm(s, b->suspend_ms);
        eventlog_site(s->e, s, "suspended", code, enhanced, text);
        return;
    }
    if (now - s->last_cut_ms < 1000)
        return; /* one burst of throttling replies counts once */
    s->last_cut_ms = now;
    unsigned c = (unsigned)(site_conn_limit(s) * b->decrease);
    s->conc_limit = c ? c : 1;
    s->rate_factor *= b->decrease;
    if (s->rate_factor < b->min_rate_factor)
        s->rate_factor = b->min_rate_factor;
    if (s->state != SITE_SUSPENDED)
        site_enter(s, SITE_BACKOFF);
    eventlog_site(s->e, s, "backoff", code, enhanced, text);
}

bool site_at_floor(const struct site *s)
{
    /* the factor is cut to exactly min_rate_factor; 1e-9 for a reload
     * that printed it back the same */
    return s->rate_factor <= s->e->cfg.backoff.min_rate_factor + 1e-9;
}

void site_set_paused(struct site *s, bool paused)
{
    if (s->paused == paused)
        return;
    s->paused = paused;
    s->probe = false;
    site_enter(s, paused ? SITE_PAUSED : site_running_state(s));
    eventlog_site(s->e, s, paused ? "paused" : "resumed", 0, "", "");
    for (unsigned i = 0; i < s->ndests; i++)
        dest_kick(s->e, s->dests[i]);
}

/* The site called name (configured or a domain's own), NULL if none. */
static struct site *site_named(struct engine *e, const char *name)
{
    if (!e->sites.cap)
        return NULL;
    for (struct site *s = e->sites.tab[hash_name(name) & (e->sites.cap - 1)];
         s; s = s->hnext)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

bool site_probe_open(struct engine *e, const char *name)
{
    struct site *s = site_named(e, name);
    if (!s || !s->paused)
        return false;
    s->probe = true;
    return true;
}

void site_probe_close(struct engine *e, const char *name)
{
    struct site *s = site_named(e, name);
    if (s)
        s->probe = false;
}

void site_add_waiting(struct site *s, int delta)
{
    s->waiting = (unsigned)((int)s->waiting + delta);
}

void site_move(struct site *from, struct site *to, unsigned sessions,
               unsigned waiting)
{
    if (from) {
        from->sessions -= sessions < from->sessions ? sessions
                                                    : from->sessions;
        from->waiting -= waiting < from->waiting ? waiting : from->waiting;
    }
    if (to) {
        to->sessions += sessions;
        to->waiting += waiting;
    }
}

void site_count_failure(struct site *s, bool bounced)
{
    if (bounced)
        s->bounced++;
    else
        s->deferred++;
}

void site_foreach(struct engine *e, void (*fn)(struct site *s, void *arg),
                  void *arg)
{
    for (size_t b = 0; b < e->sites.cap; b++)
        for (struct site *s = e->sites.tab[b], *next; s; s = next) {
            next = s->hnext;
            fn(s, arg);
        }
}

void site_refresh_policies(struct engine *e)
{
    for (size_t b = 0; b < e->sites.cap; b++)
        for (struct site *s = e->sites.tab[b]; s; s = s->hnext) {
            const struct site_policy *sp = NULL;
            for (size_t i = 0; s->configured && i < e->cfg.nsites; i++)
                if (!strcmp(e->cfg.sites[i].lim.name, s->name))
                    sp = &e->cfg.sites[i];
            /* a live limit (live.c) over the configured policy */
            if (sp)
                s->pol = live_policy(e, 's', s->name, &sp->lim);
            else if (!s->configured)
                s->pol = live_policy(e, 'd', s->name,
                                     config_domain(&e->cfg, s->name));
            else
                s->pol = &e->cfg.def; /* site removed: plain defaults */
            if (s->conc_limit > s->pol->max_connections ||
                s->state == SITE_NORMAL)
                s->conc_limit = s->pol->max_connections;
        }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct site *s = h->data;
    free(s->dests);
    free(s);
}

void site_free_all(struct engine *e)
{
    for (size_t b = 0; b < e->sites.cap; b++) {
        struct site *s = e->sites.tab[b], *next;
        for (; s; s = next) {
            next = s->hnext;
            uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        }
    }
    free(e->sites.tab);
    e->sites.tab = NULL;
    e->sites.cap = e->sites.n = 0;
}
