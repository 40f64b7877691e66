/*
 * queue_queued.h - the admin's operations on queued mail: read every
 * queued delivery with its due time, make deferred mail due now, end
 * queued mail with an administrative bounce (queued.c).
 *
 * DESCRIPTION
 *   A selection names queued deliveries by domain (one or more, lower
 *   case), campaign and account; each part left unset matches all, the
 *   parts set must all match.  The writes go through the writer in
 *   batches (one commit each, so a large queue is not one huge
 *   transaction) and are safe beside a running sluiced: a bounced
 *   delivery the engine holds claimed gets no second terminal event (its
 *   outcome fails with QUEUE_ESTATE, outcome.c), and mail made due now is
 *   claimed on the engine's next claim.
 *
 * OWNERSHIP
 *   Records handed to queue_queued_walk()'s callback are valid only during
 *   the call.  Strings of a selection are the caller's.
 *
 * DIAGNOSTICS
 *   0 or a negative queue code (queue.h); -EINVAL for an empty reason or
 *   one with control characters; -EROFS on a read-only open.
 */
#ifndef SLUICE_QUEUE_QUEUED_H
#define SLUICE_QUEUE_QUEUED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

/* One queued delivery as the ready index holds it. */
struct queue_queued {
    uint64_t id, campaign;
    uint32_t account;
    uint16_t attempts;      /* attempts made so far */
    int64_t created, due;   /* unix seconds; due may be a park time */
    uint64_t last_event;    /* seq of its newest event, 0 none */
    const char *rcpt;
    const char *domain;     /* lower case, inside rcpt */
};

/* Call cb for each queued delivery in due order, in one read snapshot;
 * cb returns non-zero to stop.  Returns the number visited or a negative
 * code.  Works on read-only opens. */
long queue_queued_walk(struct queue *q,
                       int (*cb)(void *arg, const struct queue_queued *d),
                       void *arg);

/* Whether due is a park time (a paused campaign, a disabled account). */
bool queue_due_parked(int64_t due);

/* Which queued deliveries an operation acts on. */
struct queue_select {
    const char *const *domains;  /* lower case; ndomains 0: any domain */
    size_t ndomains;
    uint64_t campaign;           /* 0: any */
    uint32_t account;
    bool by_account;             /* account must match */
};

/* Whether d is in the selection. */
bool queue_select_match(const struct queue_select *s,
                        const struct queue_queued *d);

/* Make every selected delivery that has been tried and waits for a later
 * attempt (deferred; not parked) due now.  *moved counts them. */
int queue_retry_now(struct queue *q, const struct queue_select *s,
                    uint64_t *moved);

/* End every selected queued delivery (parked ones too) with one terminal
 * "bounced" event of category admin, enhanced code 5.0.0 and the text
 * "administrative bounce: REASON" (reason: 1..200 bytes, no control
 * characters).  Counted like other bounces; no suppression, no
 * soft-bounce streak, no block count (hygiene.c leaves category admin
 * alone).  *bounced counts them. */
int queue_bounce_admin(struct queue *q, const struct queue_select *s,
                       const char *reason, uint64_t *bounced);

#define QUEUE_MAX_ADMIN_REASON 200

/* For each of ids, in one read snapshot: ended[i] = 1 when the delivery
 * is terminal (ended by someone else: an admin bounce, a late bounce
 * report), else 0 (queued, or not found).  The engine asks for the mail it
 * holds claimed when the controls generation changes.  0 or a code. */
int queue_deliveries_ended(struct queue *q, const uint64_t *ids, size_t n,
                           unsigned char *ended);

#endif
