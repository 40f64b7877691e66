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

#endif
