/*
 * webhook.h - webhooks (webhook.c): each [webhook NAME] a consumer of the
 * spool's event stream, POSTing batches of events through libcurl on the
 * engine's loop.
 *
 * Open after eventlog_open() (the spool is open, the accounts loaded);
 * reload after a new configuration is in place;
 * pump each tick; close after the completer (like the event log), before
 * the loop's last run, which frees what is left in close callbacks.
 */
#ifndef SLUICE_WEBHOOK_H
#define SLUICE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct engine;

/* Start every configured webhook where its cursor stands: 0, or an error
 * (ENGINE_E_CONFIG: a bad account) with the reason in err. */
int webhooks_open(struct engine *e, char *err, size_t errlen);
/* SIGHUP: the configured and the spool's webhooks again; unchanged ones
 * go on, gone or changed ones stop, new or changed ones start
 * (webhook_set.c). */
void webhooks_reload(struct engine *e);
/* Retries that are due, and new batches for free slots. */
void webhooks_pump(struct engine *e);
/* Abort the POSTs in flight (sent again at the next start) and save each
 * cursor. */
void webhooks_close(struct engine *e);

/* One running webhook's backlog, as webhooks_backlog() reports it. */
struct webhook_backlog {
    const char *name;
    uint64_t events;          /* after its cursor: those it does not want
                               * among them (an upper bound) */
    uint64_t failing_since_ms; /* the first POST of its oldest batch that
                                * has failed and waits for a retry; 0 none */
    unsigned attempts;        /* of that batch */
    const char *error;        /* why its last POST failed ("" none) */
};
/* Call cb with each running webhook's backlog (name and error valid
 * during the call): /metrics and the incident watcher read the same
 * numbers.  0, or the spool's error reading its newest event. */
int webhooks_backlog(struct engine *e,
                     void (*cb)(void *arg, const struct webhook_backlog *b),
                     void *arg);

#endif
