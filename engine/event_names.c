/*
 * event_names.c - the engine's cache of campaign and account names for
 * the event stream, and the spool's identity.
 *
 * DESCRIPTION
 *   event_json() names an event's campaign and account beside their ids.
 *   A pump of 2,048 events of one campaign must not read the campaign
 *   2,048 times, so names live in two small direct-mapped tables
 *   (CAMPAIGN_SLOTS, ACCOUNT_SLOTS entries, slot = id modulo the size),
 *   each entry the id, the name ("" for none: a deleted campaign is not
 *   looked up again either) and when it was read.  An entry older than
 *   EVENT_NAMES_TTL_MS is read again, so a rename shows within a minute.
 *   A mutex guards the tables: the event log pumps on the loop thread,
 *   other consumers may run elsewhere.  The spool read happens under the
 *   mutex (one read transaction; the spool opens with MDB_NOTLS and its
 *   map lock is a reader-preferring rwlock, so a caller inside
 *   queue_events_from()'s read transaction may read: a grow of the map
 *   waits for both).
 *
 * DIAGNOSTICS
 *   event_names_start() fails with the spool's error when the identity
 *   cannot be read or made.  A name that cannot be read is "" (the event
 *   still goes out, with its ids); it is tried again after the TTL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "event_names.h"
#include "queue_admin.h"
#include "queue_campaign.h"

#define CAMPAIGN_SLOTS 256
#define ACCOUNT_SLOTS 64
#define NAME_MAX_LEN 127   /* QUEUE_MAX_CAMPAIGN_NAME, the longer name */

struct name_slot {
    uint64_t id;           /* 0: empty */
    uint64_t read_ms;
    char name[NAME_MAX_LEN + 1];
};

struct event_names {
    struct queue *q;
    char spool[33];
    pthread_mutex_t mu;
    uint64_t reads;
    struct name_slot campaigns[CAMPAIGN_SLOTS];
    struct name_slot accounts[ACCOUNT_SLOTS];
};

/* Make the cache with the spool's identity (event_names.h). */
int event_names_start(struct engine *e)
{
    struct event_names *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    int err = queue_spool_identity(e->q, n->spool);
    if (err) {
        fprintf(stderr, "sluiced: the spool's identity cannot be read or "
                "made: %s\n", queue_strerror(err));
        free(n);
        return err;
    }
    n->q = e->q;
    pthread_mutex_init(&n->mu, NULL);
    e->evnames = n;
    return 0;
}

/* Free the cache (event_names.h). */
void event_names_stop(struct engine *e)
{
    struct event_names *n = e->evnames;
    if (!n)
        return;
    pthread_mutex_destroy(&n->mu);
    free(n);
    e->evnames = NULL;
}

const char *event_names_spool(const struct event_names *n)
{
    return n->spool;
}

/* The stored name of campaign id into out ("" when none). */
static void read_campaign(struct queue *q, uint64_t id, char *out)
{
    struct queue_campaign c;
    out[0] = 0;
    if (!queue_campaign_get(q, id, &c))
        snprintf(out, NAME_MAX_LEN + 1, "%s", c.name);
    queue_campaign_clear(&c);
}

/* The stored name of account id into out ("" when none). */
static void read_account(struct queue *q, uint64_t id, char *out)
{
    struct queue_account a;
    out[0] = 0;
    if (!queue_account_get(q, (uint32_t)id, &a))
        snprintf(out, NAME_MAX_LEN + 1, "%s", a.name);
}

/* The name of id through the table of nslots slots (read on a miss). */
static const char *lookup(struct event_names *n, struct name_slot *tab,
                          size_t nslots, uint64_t id,
                          void (*rd)(struct queue *, uint64_t, char *),
                          char *out, size_t cap)
{
    if (!cap)
        return out;
    out[0] = 0;
    if (!id)
        return out;
    uint64_t now = engine_now_ms();
    pthread_mutex_lock(&n->mu);
    struct name_slot *s = &tab[id % nslots];
    if (s->id != id || now - s->read_ms >= EVENT_NAMES_TTL_MS) {
        rd(n->q, id, s->name);
        s->id = id;
        s->read_ms = now;
        n->reads++;
    }
    snprintf(out, cap, "%s", s->name);
    pthread_mutex_unlock(&n->mu);
    return out;
}

const char *event_names_campaign(struct event_names *n, uint64_t id,
                                 char *out, size_t cap)
{
    return lookup(n, n->campaigns, CAMPAIGN_SLOTS, id, read_campaign, out,
                  cap);
}

const char *event_names_account(struct event_names *n, uint32_t id,
                                char *out, size_t cap)
{
    return lookup(n, n->accounts, ACCOUNT_SLOTS, id, read_account, out, cap);
}

uint64_t event_names_reads(const struct event_names *n)
{
    return n->reads;
}
