/*
 * signals.c - rolling windows of the outcome stream per account, campaign
 * and site, the numbers the incident rules read.
 *
 * DESCRIPTION
 *   Each scope keeps one bucket per minute for the last hour: attempts
 *   (delivered, bounced, deferred), deliveries, bounces (and by
 *   category), hard bounces (bad mailbox or domain, inactive mailbox),
 *   blocks (policy and spam categories: the shipped bounce rules put the
 *   blocklist replies of Spamhaus, Microsoft's S3150, Yahoo's TSS04 ...
 *   there), deferrals and complaints.  Admin bounces (category admin)
 *   count in none of them.  A bucket is keyed by the event's
 *   minute; a window is the sum of the buckets of the minutes wholly in
 *   it and the share still in it of the minute it starts in (a 1m window
 *   is the last 60 seconds, not the current clock minute).  Events
 *   come from the event log's pump (each event once, eventlog.c); at
 *   start the last hour is read back from the spool (signals_open), so a
 *   restart keeps its windows.
 *
 *   The same scopes (and webhooks, and the engine) carry the gauges
 *   signals_gauge.c samples: a site's seconds at its backoff floor and an
 *   account's signing failures in the same minute buckets, the levels
 *   (spool, disk, webhook backlog) as last read.  signals_value() is the
 *   one place a rule's value is computed from either.
 *
 *   Scopes are capped at SIGNALS_MAX_SCOPES; events of scopes past the cap
 *   are not counted (said once on stderr).
 *
 * DIAGNOSTICS
 *   signals_open() fails only out of memory; a spool read that fails at
 *   start is reported and the windows start empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "incident.h"
#include "signals_int.h"

#define HASH SIGNALS_HASH

/* FNV-1a of kind and name. */
static size_t scope_hash(int kind, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (unsigned)kind;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return (size_t)(h % HASH);
}

struct sig_scope *signals_scope(struct signals *s, int kind,
                                const char *name, bool make)
{
    size_t h = scope_hash(kind, name);
    for (struct sig_scope *c = s->tab[h]; c; c = c->hnext)
        if (c->kind == kind && !strcmp(c->name, name))
            return c;
    if (!make)
        return NULL;
    /* the engine's one scope and the webhooks' (WH_MAX_SLOTS at most)
     * are never crowded out */
    if (s->n >= SIGNALS_MAX_SCOPES && kind <= ALERT_SCOPE_SITE) {
        if (!s->full_said)
            fprintf(stderr, "sluiced: incidents: more than %d accounts, "
                    "campaigns, sites and webhooks; new ones are not "
                    "watched\n", SIGNALS_MAX_SCOPES);
        s->full_said = true;
        return NULL;
    }
    struct sig_scope *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = kind;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->hnext = s->tab[h];
    s->tab[h] = c;
    s->n++;
    return c;
}

struct sig_bucket *signals_bucket(struct sig_scope *c, int64_t minute)
{
    struct sig_bucket *b = &c->b[minute % SIGNALS_MINUTES];
    if (b->minute != minute) {
        if (b->minute > minute)
            return NULL; /* older than the hour kept */
        memset(b, 0, sizeof *b);
        b->minute = minute;
    }
    return b;
}

/* Count ev into scope c. */
static void count(struct sig_scope *c, const struct queue_event *ev)
{
    struct sig_bucket *b = signals_bucket(c, ev->time_ms / 60000);
    if (!b)
        return;
    c->account = ev->account;
    bool block = ev->category == QUEUE_CAT_POLICY ||
                 ev->category == QUEUE_CAT_SPAM;
    switch (ev->type) {
    case QUEUE_EV_DELIVERED:
        b->attempts++;
        b->delivered++;
        break;
    case QUEUE_EV_DEFERRED:
        b->attempts++;
        b->deferred++;
        b->blocked += block;
        break;
    case QUEUE_EV_BOUNCED:
        /* an admin bounce (`sluice queue bounce`) is no receiver's
         * answer: no attempt, and no bounce rate to raise an incident */
        if (ev->category == QUEUE_CAT_ADMIN)
            break;
        b->attempts++;
        b->bounced++;
        b->blocked += block;
        if (ev->category < QUEUE_CAT_COUNT)
            b->by_cat[ev->category]++;
        if (ev->category == QUEUE_CAT_BAD_MAILBOX ||
            ev->category == QUEUE_CAT_BAD_DOMAIN ||
            ev->category == QUEUE_CAT_INACTIVE_MAILBOX)
            b->hard++;
        break;
    case QUEUE_EV_COMPLAINT:
        b->complaints++;
        break;
    }
}

void signals_event(struct engine *e, const struct queue_event *ev)
{
    struct signals *s = e->signals;
    char name[SIGNALS_SCOPE_NAME], dom[256];
    struct sig_scope *c;
    if (!s || (ev->type != QUEUE_EV_DELIVERED &&
               ev->type != QUEUE_EV_DEFERRED &&
               ev->type != QUEUE_EV_BOUNCED &&
               ev->type != QUEUE_EV_COMPLAINT))
        return;
    snprintf(name, sizeof name, "%u", ev->account);
    if ((c = signals_scope(s, ALERT_SCOPE_ACCOUNT, name, true)))
        count(c, ev);
    if (ev->campaign) {
        snprintf(name, sizeof name, "%llu", (unsigned long long)ev->campaign);
        if ((c = signals_scope(s, ALERT_SCOPE_CAMPAIGN, name, true)))
            count(c, ev);
    }
    if (ev->type != QUEUE_EV_COMPLAINT) {
        const char *site = dest_rcpt_site(e, ev->rcpt, dom, sizeof dom);
        snprintf(name, sizeof name, "%.63s", site);
        if ((c = signals_scope(s, ALERT_SCOPE_SITE, name, true)))
            count(c, ev);
    }
}

void signals_foreach(struct engine *e, int kind,
                     void (*cb)(void *arg, const struct sig_scope *s),
                     void *arg)
{
    struct signals *s = e->signals;
    if (!s)
        return;
    for (size_t h = 0; h < HASH; h++)
        for (struct sig_scope *c = s->tab[h]; c; c = c->hnext)
            if (c->kind == kind)
                cb(arg, c);
}

/* x scaled by part/60, rounded. */
static uint64_t part_of(uint64_t x, int64_t part)
{
    return (x * (uint64_t)part + 30) / 60;
}

void signals_sum(const struct sig_scope *s, unsigned window_s, int64_t now_s,
                 struct sig_sums *out)
{
    /* the window slides by the second: the minutes wholly inside it, and
     * of the minute it starts in the share still inside (a 1m window is
     * the last 60 s, not the minute the clock is in) */
    int64_t now_min = now_s / 60, first = now_min - (int64_t)window_s / 60;
    int64_t left = 60 - now_s % 60;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < SIGNALS_MINUTES; i++) {
        const struct sig_bucket *b = &s->b[i];
        if (b->minute < first || b->minute > now_min)
            continue;
        int64_t part = b->minute == first ? left : 60;
        out->attempts += part_of(b->attempts, part);
        out->delivered += part_of(b->delivered, part);
        out->bounced += part_of(b->bounced, part);
        out->hard += part_of(b->hard, part);
        out->blocked += part_of(b->blocked, part);
        out->deferred += part_of(b->deferred, part);
        out->complaints += part_of(b->complaints, part);
        for (int k = 0; k < QUEUE_CAT_COUNT; k++)
            out->by_cat[k] += part_of(b->by_cat[k], part);
        out->floor_ms += part_of(b->floor_ms, part);
        out->dkim_failed += part_of(b->dkim_failed, part);
    }
    /* a level not read for a while (a webhook gone at a reload) is 0 */
    if (s->gauge_s >= now_s - SIGNALS_GAUGE_FRESH_S)
        memcpy(out->gauge, s->gauge, sizeof out->gauge);
}

void signals_value(const struct alert_rule *r, const struct sig_sums *s,
                   double *value, uint64_t *volume)
{
    uint64_t num = 0, den = s->attempts;
    switch (r->signal) {
    case ALERT_BOUNCE_RATE:
        num = r->category ? s->by_cat[r->category] : s->bounced;
        break;
    case ALERT_HARD_BOUNCE_RATE: num = s->hard; break;
    case ALERT_BLOCK_RATE: num = s->blocked; break;
    case ALERT_DEFERRAL_RATE: num = s->deferred; break;
    case ALERT_COMPLAINT_RATE:
        num = s->complaints;
        den = s->delivered;
        break;
    case ALERT_SITE_STALLED:
        /* attempts, none of them delivered */
        num = s->delivered ? 0 : s->attempts;
        break;
    case ALERT_DKIM_FAILURE_RATE:
        /* a failure is counted when it happens, its deferral a moment
         * later by the pump: never above all */
        num = s->dkim_failed < den ? s->dkim_failed : den;
        break;
    case ALERT_BACKOFF_FLOOR:
        /* seconds at the floor, while the window had attempts */
        *volume = den;
        *value = (double)(s->floor_ms / 1000);
        return;
    case ALERT_SPOOL_FULL:
    case ALERT_DISK_FULL:
    case ALERT_WEBHOOK_BACKLOG:
        /* levels, no volume */
        *volume = 0;
        *value = s->gauge[r->signal == ALERT_SPOOL_FULL ? SIG_G_MAP
                          : r->signal == ALERT_DISK_FULL ? SIG_G_DISK
                          : SIG_G_BACKLOG];
        return;
    }
    *volume = den;
    *value = den ? (double)num / (double)den : 0;
}

/* queue_events_from(): one event of the hour before the start. */
static int restore_one(void *arg, const struct queue_event *ev)
{
    struct engine *e = arg;
    signals_event(e, ev);
    return 0;
}

/* queue_events_from(): the time of the one event asked for. */
static int restore_probe(void *arg, const struct queue_event *ev)
{
    int64_t *t = arg;
    *t = ev->time_ms;
    return 1;
}

/* The first seq whose event is not older than since_ms (binary search
 * over seqs 1..upto: events are appended in time order). */
static uint64_t first_since(struct queue *q, uint64_t upto, int64_t since_ms)
{
    uint64_t lo = 1, hi = upto + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t t = -1;
        long n = queue_events_from(q, mid, 1, restore_probe, &t);
        if (n <= 0)
            return upto + 1;
        if (t >= since_ms)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int signals_open(struct engine *e, uint64_t upto)
{
    struct signals *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    e->signals = s;
    if (!upto)
        return 0;
    int64_t since = (int64_t)engine_now_ms() - 3600 * 1000;
    uint64_t from = first_since(e->q, upto, since);
    while (from <= upto) {
        size_t max = upto - from + 1 < 4096 ? (size_t)(upto - from + 1) : 4096;
        long n = queue_events_from(e->q, from, max, restore_one, e);
        if (n < 0)
            fprintf(stderr, "sluiced: incidents: reading the last hour's "
                    "events: %s\n", engine_strerror((int)n));
        if (n <= 0)
            break;
        from += (uint64_t)n;
    }
    return 0;
}

void signals_free(struct engine *e)
{
    struct signals *s = e->signals;
    if (!s)
        return;
    for (size_t h = 0; h < HASH; h++)
        for (struct sig_scope *c = s->tab[h], *next; c; c = next) {
            next = c->hnext;
            free(c);
        }
    free(s);
    e->signals = NULL;
}
