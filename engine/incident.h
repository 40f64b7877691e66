/*
 * incident.h - the incident watcher of sluiced: rolling windows of the
 * outcome stream (signals.c) and the rules, incidents, circuit breaker
 * and alerts built on them (incident.c, incident_job.c; escalation:
 * incident_esc.c; the breaker's pauses and probes: incident_probe.c on
 * the loop, incident_act.c on the worker).
 *
 * The loop thread owns the windows and the open-incident table; spool
 * writes (incident records, pauses, alert mail) run on a libuv worker,
 * one job at a time.
 */
#ifndef SLUICE_ENGINE_INCIDENT_H
#define SLUICE_ENGINE_INCIDENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "queue.h"

struct engine;

/* ------------------------------------------------------------ signals */

#define SIGNALS_MINUTES 60          /* one bucket a minute, one hour kept */
#define SIGNALS_MAX_SCOPES 2048     /* scopes counted; further ones are not */
#define SIGNALS_SCOPE_NAME 64
#define SIGNALS_GAUGE_FRESH_S 5     /* a level older than this reads 0 */

/* What one minute of one scope counted. */
struct sig_bucket {
    int64_t minute;                 /* unix minute; another: empty */
    uint32_t attempts, delivered, bounced, hard, blocked, deferred;
    uint32_t complaints;
    uint32_t by_cat[QUEUE_CAT_COUNT]; /* bounced by category */
    uint32_t floor_ms;              /* a site: ms at its backoff floor */
    uint32_t dkim_failed;           /* an account: deliveries not signed */
};

/* The levels a scope's gauges read at their last sample. */
enum { SIG_G_MAP, SIG_G_DISK, SIG_G_BACKLOG, SIG_GAUGES };

/* One account, campaign, site, webhook, or the engine. */
struct sig_scope {
    int kind;                       /* enum alert_scope */
    char name[SIGNALS_SCOPE_NAME];  /* decimal id, or the site's name */
    uint32_t account;               /* the account last seen in it */
    struct sig_bucket b[SIGNALS_MINUTES];
    double gauge[SIG_GAUGES];       /* levels (signals_gauge.c) */
    int64_t gauge_s;                /* when they were read (unix s) */
    char last_error[160];           /* an account: its last signing
                                     * failure, which names the domain and
                                     * selector */
    struct sig_scope *hnext;
};

/* The sums of a window. */
struct sig_sums {
    uint64_t attempts, delivered, bounced, hard, blocked, deferred;
    uint64_t complaints;
    uint64_t by_cat[QUEUE_CAT_COUNT];
    uint64_t floor_ms, dkim_failed;
    double gauge[SIG_GAUGES];       /* the levels when fresh, else 0 */
};

struct signals;

int signals_open(struct engine *e, uint64_t upto);
void signals_free(struct engine *e);
/* Count one spool event (eventlog.c's pump, each event once). */
void signals_event(struct engine *e, const struct queue_event *ev);
/* Call cb for each scope of kind. */
void signals_foreach(struct engine *e, int kind,
                     void (*cb)(void *arg, const struct sig_scope *s),
                     void *arg);
/* The sums of s over the last window_s seconds before now_s. */
void signals_sum(const struct sig_scope *s, unsigned window_s, int64_t now_s,
                 struct sig_sums *out);
/* A rule's value and volume from the sums; the value fires at or above
 * the threshold when volume >= min_volume. */
void signals_value(const struct alert_rule *r, const struct sig_sums *s,
                   double *value, uint64_t *volume);

/* ------------------------------------------------ gauges (signals_gauge.c) */

/* The one scope of kind engine. */
#define SIGNALS_ENGINE_SCOPE "spool"

/* Sample the gauges (incidents_tick, once a second, whatever the mail
 * rate): the time each site spends at its backoff floor, the spool's map
 * and filesystem, each webhook's backlog. */
void signals_gauges(struct engine *e);
/* A delivery of account could not be signed (job.c: its body failed with
 * a DKIM error, signer_sign_failed()); why names the domain and
 * selector.  Counted only when it happens. */
void signals_sign_failed(struct engine *e, uint32_t account, const char *why);
/* What a gauge rule r saw in scope s when it fired, for the incident's
 * root cause (the site's backoff, the signing error, the spool's bytes,
 * the webhook's failing batch); NULL for the other signals.  The caller
 * owns the reference. */
struct json_t;
struct json_t *signals_detail(struct engine *e, const struct alert_rule *r,
                              const struct sig_scope *s);

/* ---------------------------------------------------------- incidents */

int incidents_open(struct engine *e, char *err, size_t errlen);
/* Check the rules (from the tick, once a second). */
void incidents_tick(struct engine *e);
/* Wait for the job in flight (teardown, before the writer stops). */
void incidents_close(struct engine *e);

/* The circuit breaker's probes (incident_probe.c).  A claim that a
 * campaign pause or an account hold stops: whether it is the probe an
 * incident lets through (then it goes on, marked a probe). */
bool incidents_probe_claim(struct engine *e, const struct queue_claim *c);
/* One spool event (the event log's pump, each once): a probe's outcome. */
void incidents_event(struct engine *e, const struct queue_event *ev);
/* The open incidents' pauses for status.json: [{incident, rule, severity,
 * kind, name, state, next_probe_ms, probe, probes}]. */
json_t *incidents_status_json(const struct engine *e);

#endif
