/*
 * track_int.h - what track.c gives the rest of queue/: the count of an
 * open or click in the writer's transaction and the rule of its records
 * (layouts in campaign_int.h).
 */
#ifndef SLUICE_QUEUE_TRACK_INT_H
#define SLUICE_QUEUE_TRACK_INT_H

#include "queue_int.h"

/* Count an open or click event about to be appended in w's txn for its
 * campaign (total, and unique per delivery); *keep false when its
 * delivery has QUEUE_TRACK_MAX of that kind already (then it is neither
 * counted nor to be appended).  Other events: nothing, *keep true.  0 or
 * a txn failure. */
int qtrack_count(struct wctx *w, const struct queue_event *ev, bool *keep);

/* The rule of a 't' or 'T' record of the campaigns database (rules.c):
 * NULL for a good one, else why not. */
const char *qtrack_rule(const MDB_val *k, const MDB_val *v);

#endif
