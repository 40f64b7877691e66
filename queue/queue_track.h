/*
 * queue_track.h - opens and clicks of tracked campaigns in the spool.
 *
 * DESCRIPTION
 *   sluiced records a tracked open or click as an informational event of
 *   its delivery (QUEUE_EV_OPENED, QUEUE_EV_CLICKED, queue_record_note()
 *   or queue_submit_note()).  The same commit counts it for the delivery's
 *   campaign: every event in the total, and the first open (click) of a
 *   delivery also as unique, so a message opened five times is one unique
 *   open and five opens; past QUEUE_TRACK_MAX opens (clicks) of one
 *   delivery the event is dropped.  Counts live in the campaigns database (track.c;
 *   layouts in campaign_int.h); a spool from before tracking has none and
 *   reads as zeros.
 */
#ifndef SLUICE_QUEUE_TRACK_H
#define SLUICE_QUEUE_TRACK_H

#include <stdint.h>

#include "queue.h"

/* Opens (clicks) of one delivery recorded at most: more are not
 * recorded, so one message cannot grow the event log without end. */
#define QUEUE_TRACK_MAX 100

struct queue_track_counts {
    uint64_t opens, unique_opens;      /* open events; deliveries opened */
    uint64_t clicks, unique_clicks;    /* click events; deliveries clicked */
};

/* The tracking counts of campaign (zeros when it has none). */
int queue_track_counts(struct queue *q, uint64_t campaign,
                       struct queue_track_counts *out);

/* queue_record_note() without the wait: the note is checked and queued,
 * and cb (may be NULL) runs on the writer thread once its group commits
 * or fails.  Blocks only while the writer's queue is full.  Errors as
 * queue_record_note() (then cb never runs). */
int queue_submit_note(struct queue *q, const struct queue_note *n,
                      queue_done_cb cb, void *arg);

#endif
