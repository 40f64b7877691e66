/*
 * fair.h - turns between accounts, and between the campaigns of one
 * account, at one destination (fair.c).
 */
#ifndef SLUICE_FAIR_H
#define SLUICE_FAIR_H

#include <stdbool.h>
#include <stdint.h>

struct engine;
struct dest;
struct item;

/* Link it into d's waiting list at its turn (its tag, see fair.c) and
 * return the item now before it, NULL when it went to the head.  Never
 * fails: out of memory it goes to the tail, as before turns existed. */
struct item *fair_link(struct engine *e, struct dest *d, struct item *it);

/* it goes out in a job now: the destination's virtual time moves to its
 * turn, so a flow that comes later starts from here. */
void fair_served(struct dest *d, const struct item *it);

/* Whether a claim of (account, campaign) may wait at d although d holds
 * cap items already: its flow holds less than its share of what waits
 * there (measured in turns) while another flow holds more, and d holds
 * fewer than twice cap.  So mail queued behind another account's comes
 * into memory beside it rather than after it. */
bool fair_may_exceed(const struct dest *d, unsigned nitems, uint32_t account,
                     uint64_t campaign, unsigned cap);

/* The configuration was reloaded: look the accounts' shares up again. */
void fair_refresh(struct dest *d);

/* Free d's turn state (NULL-safe). */
void fair_free(struct dest *d);

#endif
