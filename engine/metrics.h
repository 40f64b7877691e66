/*
 * metrics.h - sluiced's Prometheus metrics: counted on the loop, served on
 * http_listen as GET /metrics (text exposition format 0.0.4) and
 * GET /metrics.json (the same samples as JSON).
 *
 * DESCRIPTION
 *   The loop thread counts (metrics.c): the spool's events as the event
 *   log's pump reads them (metrics_event), the delivery latency of each
 *   terminal outcome once it has committed (metrics_committed), webhook
 *   backlogs (metrics_webhook_backlog).  Once a second it copies what it
 *   counted, with the engine's gauges (sessions, spool size), into a
 *   snapshot under a mutex; the HTTP thread (metrics_http.c) renders only
 *   that snapshot, plus what is safe to read from any thread (the spool's
 *   commit latency and ready index, the DKIM signing histogram, the
 *   process's memory).  Counters count what this process saw since it
 *   started (Prometheus' convention: they start from 0 at each start);
 *   the spool's lifetime totals are a gauge of their own.
 *
 * OWNERSHIP
 *   struct metrics belongs to the engine (e->metrics) from metrics_open()
 *   to metrics_free(), which runs after the loop and the HTTP thread have
 *   stopped.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct engine;
struct item;
struct metrics;

/* Event types counted (enum queue_event_type values below it); label
 * names come from queue_event_name(), so new types appear by themselves. */
#define METRICS_TYPES 32
/* Bounds on the label sets: the sites counted at all (the rest count
 * under site="other" at once), webhooks reported, bytes of one answer. */
#define METRICS_SITES_TRACKED 4096
#define METRICS_WEBHOOKS 64
#define METRICS_OUT_MAX (8u << 20)

/* Loop thread: the state, its first snapshot and its once-a-second timer
 * (unreferenced: it never keeps the loop running).  0 or -ENOMEM. */
int metrics_open(struct engine *e);
/* After the loop has closed its handles and the HTTP thread has stopped
 * (NULL-safe). */
void metrics_free(struct engine *e);

/* Loop thread: one spool event, once, in seq order (eventlog.c). */
void metrics_event(struct engine *e, const struct queue_event *ev);
/* Loop thread: n outcomes of items committed (outcome.c); the terminal
 * ones feed the enqueue-to-terminal latency histogram. */
void metrics_committed(struct engine *e, struct item *const *items,
                       const struct queue_outcome *o, size_t n);
/* Loop thread: webhook name has events waiting to be sent (the family
 * sluice_webhook_backlog_events has no samples until one is reported).
 * Names past METRICS_WEBHOOKS are not shown. */
void metrics_webhook_backlog(struct engine *e, const char *name,
                             uint64_t events);
/* Any thread (signing workers): one DKIM signature took us microseconds. */
void metrics_dkim_observe(uint64_t us);
/* A monotonic clock in microseconds, for metrics_dkim_observe(). */
uint64_t metrics_now_us(void);

/* HTTP thread (unsub_http.c): answer url if it is /metrics or
 * /metrics.json (true, *ret set); false for any other url. */
struct MHD_Connection;
bool metrics_http(struct engine *e, struct MHD_Connection *c,
                  const char *url, const char *method, int *ret);

#endif
