/*
 * signals_int.h - what signals.c (the outcome stream's windows) shares
 * with signals_gauge.c (the gauges sampled beside it): the table of
 * scopes and its buckets.
 */
#ifndef SLUICE_ENGINE_SIGNALS_INT_H
#define SLUICE_ENGINE_SIGNALS_INT_H

#include <stdbool.h>

#include "incident.h"

#define SIGNALS_HASH 4096

struct signals {
    struct sig_scope *tab[SIGNALS_HASH];
    size_t n;
    bool full_said;
    int64_t gauge_ms;               /* the last gauge sample (wall ms) */
};

/* The scope of kind and name; made when new if make (NULL past the cap
 * or out of memory), else NULL when there is none. */
struct sig_scope *signals_scope(struct signals *s, int kind,
                                const char *name, bool make);
/* c's bucket of unix minute, emptied when it held an older minute; NULL
 * for a minute older than the hour kept. */
struct sig_bucket *signals_bucket(struct sig_scope *c, int64_t minute);

#endif
