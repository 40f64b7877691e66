/*
 * signals_gauge.c - the gauges the incident rules read beside the
 * outcome stream: a site held at its backoff floor, an account's DKIM
 * signing failures, the spool's LMDB map and filesystem, each webhook's
 * backlog.
 *
 * DESCRIPTION
 *   signals_gauges() runs on the incident tick, once a second, and costs
 *   the same at any mail rate: it walks the sites (one at its floor,
 *   site_at_floor(), adds the time since the last sample to its scope's
 *   minute), reads queue_info() once (the numbers /metrics shows: the
 *   bytes the databases hold against map_max, the filesystem's use as df
 *   counts it) and the webhooks' backlogs (webhooks_backlog(), /metrics'
 *   numbers too).  A signing failure is counted when one happens
 *   (signals_sign_failed(), from job.c), never per message.  The levels
 *   are kept as last read; signals_value() (signals.c) makes a rule's
 *   value of either.
 *
 *   A site at its floor counts only while it has a scope (outcomes in
 *   this run or the hour before it): at its floor with nothing sent to it,
 *   it is idle, not held; the rule's min_volume asks for attempts in the
 *   window too.
 *
 *   After a restart the floor time and signing failures sampled before it
 *   are gone (sites start unthrottled, and a failure that persists is
 *   counted again); the levels are read again within a second.
 *
 * DIAGNOSTICS
 *   None: a spool read that fails leaves the levels unread, and after
 *   SIGNALS_GAUGE_FRESH_S they read 0.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "incident.h"
#include "signals_int.h"
#include "site.h"
#include "webhook.h"

#define FLOOR_STEP_MAX_MS 5000   /* a stalled loop counts this at most */

struct floor_ctx {
    struct signals *s;
    int64_t minute;
    uint32_t dt;
};

/* site_foreach(): a site at its floor adds dt to its minute. */
static void floor_one(struct site *st, void *arg)
{
    struct floor_ctx *f = arg;
    char name[SIGNALS_SCOPE_NAME];
    if (!site_at_floor(st))
        return;
    snprintf(name, sizeof name, "%.63s", st->name);
    struct sig_scope *c = signals_scope(f->s, ALERT_SCOPE_SITE, name, false);
    struct sig_bucket *b = c ? signals_bucket(c, f->minute) : NULL;
    if (b)
        b->floor_ms += f->dt;
}

/* The map's share used: the databases' bytes against map_max. */
static double map_used(const struct queue_info *i)
{
    if (!i->map_max)
        return 0;
    double d = (double)i->data_bytes / (double)i->map_max;
    return d < 1 ? d : 1;
}

/* The filesystem's share used, as df counts it. */
static double disk_used(const struct queue_info *i)
{
    uint64_t all = i->disk_used_bytes + i->disk_free_bytes;
    return all ? (double)i->disk_used_bytes / (double)all : 0;
}

struct level_ctx {
    struct signals *s;
    int64_t now_s;
};

/* webhooks_backlog(): one webhook's events behind. */
static void backlog_one(void *arg, const struct webhook_backlog *b)
{
    struct level_ctx *l = arg;
    char name[SIGNALS_SCOPE_NAME];
    snprintf(name, sizeof name, "%.63s", b->name);
    struct sig_scope *c = signals_scope(l->s, ALERT_SCOPE_WEBHOOK, name,
                                        true);
    if (c) {
        c->gauge[SIG_G_BACKLOG] = (double)b->events;
        c->gauge_s = l->now_s;
    }
}

void signals_gauges(struct engine *e)
{
    struct signals *s = e->signals;
    if (!s)
        return;
    int64_t now_ms = (int64_t)engine_now_ms();
    int64_t dt = s->gauge_ms && now_ms > s->gauge_ms ? now_ms - s->gauge_ms
                                                     : 0;
    s->gauge_ms = now_ms;
    struct floor_ctx f = { s, now_ms / 60000,
                           (uint32_t)(dt < FLOOR_STEP_MAX_MS
                                      ? dt : FLOOR_STEP_MAX_MS) };
    if (f.dt)
        site_foreach(e, floor_one, &f);

    struct level_ctx l = { s, now_ms / 1000 };
    struct queue_info qi;
    struct sig_scope *c = signals_scope(s, ALERT_SCOPE_ENGINE,
                                        SIGNALS_ENGINE_SCOPE, true);
    if (c && e->q && !queue_info(e->q, &qi)) {
        c->gauge[SIG_G_MAP] = map_used(&qi);
        c->gauge[SIG_G_DISK] = disk_used(&qi);
        c->gauge_s = l.now_s;
    }
    webhooks_backlog(e, backlog_one, &l);
}

void signals_sign_failed(struct engine *e, uint32_t account, const char *why)
{
    struct signals *s = e->signals;
    char name[SIGNALS_SCOPE_NAME];
    if (!s)
        return;
    snprintf(name, sizeof name, "%u", account);
    struct sig_scope *c = signals_scope(s, ALERT_SCOPE_ACCOUNT, name, true);
    if (!c)
        return;
    struct sig_bucket *b = signals_bucket(c, (int64_t)engine_now_ms() / 60000);
    if (b)
        b->dkim_failed++;
    c->account = account;
    snprintf(c->last_error, sizeof c->last_error, "%s", why ? why : "");
}

struct site_find {
    const char *name;
    json_t *out;
};

/* site_foreach(): the detail of the site called name. */
static void floor_detail(struct site *st, void *arg)
{
    struct site_find *f = arg;
    char name[SIGNALS_SCOPE_NAME];
    snprintf(name, sizeof name, "%.63s", st->name);
    if (f->out || strcmp(name, f->name))
        return;
    f->out = json_pack("{s:s,s:f,s:f,s:I,s:I,s:s,s:s}", "site", st->name,
                       "rate_factor", st->rate_factor, "min_rate_factor",
                       st->e->cfg.backoff.min_rate_factor, "concurrency",
                       (json_int_t)site_conn_limit(st), "waiting",
                       (json_int_t)st->waiting, "state",
                       site_state_name(st->state), "last_reply",
                       st->last_error);
}

/* The spool's numbers (both spool_full and disk_full show all). */
static json_t *spool_detail(struct engine *e)
{
    struct queue_info qi;
    if (!e->q || queue_info(e->q, &qi))
        return NULL;
    return json_pack("{s:s,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:f}", "path",
                     e->cfg.spool, "data_bytes", (json_int_t)qi.data_bytes,
                     "map_size_bytes", (json_int_t)qi.map_size,
                     "map_max_bytes", (json_int_t)qi.map_max, "map_used",
                     map_used(&qi), "disk_bytes", (json_int_t)qi.disk_bytes,
                     "disk_used_bytes", (json_int_t)qi.disk_used_bytes,
                     "disk_free_bytes", (json_int_t)qi.disk_free_bytes,
                     "disk_used", disk_used(&qi));
}

struct hook_find {
    const char *name;
    json_t *out;
};

/* webhooks_backlog(): the detail of the webhook called name. */
static void backlog_detail(void *arg, const struct webhook_backlog *b)
{
    struct hook_find *f = arg;
    char name[SIGNALS_SCOPE_NAME];
    snprintf(name, sizeof name, "%.63s", b->name);
    if (f->out || strcmp(name, f->name))
        return;
    f->out = json_pack("{s:s,s:I,s:I,s:I,s:s}", "webhook", b->name,
                       "events_behind", (json_int_t)b->events,
                       "failing_since_ms", (json_int_t)b->failing_since_ms,
                       "attempts", (json_int_t)b->attempts, "last_error",
                       b->error);
}

json_t *signals_detail(struct engine *e, const struct alert_rule *r,
                       const struct sig_scope *s)
{
    struct sig_sums sum;
    switch (r->signal) {
    case ALERT_BACKOFF_FLOOR: {
        struct site_find f = { s->name, NULL };
        site_foreach(e, floor_detail, &f);
        return f.out;
    }
    case ALERT_DKIM_FAILURE_RATE:
        signals_sum(s, r->window_s, engine_now(), &sum);
        return json_pack("{s:I,s:s}", "failures", (json_int_t)sum.dkim_failed,
                         "last_error", s->last_error);
    case ALERT_SPOOL_FULL:
    case ALERT_DISK_FULL:
        return spool_detail(e);
    case ALERT_WEBHOOK_BACKLOG: {
        struct hook_find f = { s->name, NULL };
        webhooks_backlog(e, backlog_detail, &f);
        return f.out;
    }
    default:
        return NULL;
    }
}
