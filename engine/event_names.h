/*
 * event_names.h - what an event's JSON names beside its numbers: the
 * spool's identity (for the event's `id`) and campaign and account names
 * through a small cache (event_names.c).
 */
#ifndef SLUICE_EVENT_NAMES_H
#define SLUICE_EVENT_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct engine;
struct event_names;

/* Make e->evnames: reads (on the first start of a spool, makes) the
 * spool's identity.  0, or the spool's error (sluiced does not start). */
int event_names_start(struct engine *e);
/* Free e->evnames (NULL is fine). */
void event_names_stop(struct engine *e);

/* The spool's identity, 32 hex digits (queue_spool_identity). */
const char *event_names_spool(const struct event_names *n);

/* The name of campaign id (account id) into out, "" when there is none
 * (deleted, unreadable, id 0).  From the cache when it was looked up
 * less than EVENT_NAMES_TTL_MS ago, else read from the spool (one read
 * transaction; safe inside a queue_events_from() callback).  Any
 * thread. */
#define EVENT_NAMES_TTL_MS 60000
const char *event_names_campaign(struct event_names *n, uint64_t id,
                                 char *out, size_t cap);
const char *event_names_account(struct event_names *n, uint32_t id,
                                char *out, size_t cap);

/* Spool reads made by the cache since start (a test sees it cache). */
uint64_t event_names_reads(const struct event_names *n);

#endif
