/*
 * queue_campaign.h - contact lists, contacts, suppression lists and
 * campaigns in the spool (schema 4).
 *
 * DESCRIPTION
 *   A list belongs to one account and holds contacts: an address and the
 *   merge fields read from the import (names are the list's columns).
 *   Contact ids are global (one sequence per spool), so a queued campaign
 *   recipient needs only (campaign, contact id): the engine fetches the
 *   contact's fields when it renders, and the recipient row stays small.
 *   "members" maps (list, address) to the contact id, so an import drops
 *   duplicates without a scan.
 *
 *   A suppression list belongs to an owner account (a sub-account's own, or
 *   its master's when shared: queue_account.suppression_owner).  Imports
 *   and sends skip suppressed addresses, and the engine checks again as each
 *   message leaves the queue.
 *
 *   A campaign belongs to one account and one list: template (subject,
 *   html, text), from, reply-to, schedule and state.  Its counters are the
 *   spool's campaign counters (queue_counts_campaign); pause and cancel
 *   also set a control (QUEUE_CTL_CAMPAIGN / QUEUE_CTL_CANCELLED, name the
 *   decimal id) that sluiced applies within a second.
 *
 *   Every change goes through the writer with its audit record in the same
 *   transaction (struct queue_actor, queue_admin.h), except contact import,
 *   which is audited once per import.
 *
 * OWNERSHIP
 *   Records passed to callbacks are valid only during the call.  A struct
 *   queue_campaign filled by queue_campaign_get() owns its html and text
 *   (queue_campaign_clear() frees them).
 */
#ifndef SLUICE_QUEUE_CAMPAIGN_H
#define SLUICE_QUEUE_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "queue_admin.h"

#define QUEUE_MAX_LIST_NAME 63        /* [a-z0-9][a-z0-9._-]{0,62} */
#define QUEUE_MAX_FIELDS 64           /* merge fields per list */
#define QUEUE_MAX_FIELD_NAME 63
#define QUEUE_MAX_FIELD_VALUE 4096
#define QUEUE_MAX_CONTACT 16384       /* bytes of one packed contact */
#define QUEUE_MAX_CAMPAIGN_NAME 127
#define QUEUE_MAX_SUBJECT 998
#define QUEUE_MAX_FROM 320
#define QUEUE_MAX_TEMPLATE (4u << 20) /* html or text template */
#define QUEUE_MAX_SUPPRESS_REASON 127
#define QUEUE_MAX_SUPPRESS_SOURCE 127

/* ---------------------------------------------------------------- lists */

struct queue_list {
    uint64_t id;
    uint32_t account;
    char name[QUEUE_MAX_LIST_NAME + 1];
    int64_t created;
    uint64_t contacts;                 /* current number of contacts */
    unsigned nfields;
    char fields[QUEUE_MAX_FIELDS][QUEUE_MAX_FIELD_NAME + 1];
};

int queue_list_create(struct queue *q, uint32_t account, const char *name,
                      const struct queue_actor *by, uint64_t *id);
int queue_list_get(struct queue *q, uint64_t id, struct queue_list *l);
int queue_list_find(struct queue *q, uint32_t account, const char *name,
                    struct queue_list *l);
long queue_lists(struct queue *q, uint32_t account,
                 int (*cb)(void *arg, const struct queue_list *l), void *arg);
int queue_list_delete(struct queue *q, uint64_t id,
                      const struct queue_actor *by);

/* ------------------------------------------------------------- contacts */

/* A contact as the engine and the tools see it: values[i] belongs to the
 * list's fields[i] (a value may be ""). */
struct queue_contact {
    uint64_t id;
    uint64_t list;
    const char *email;                 /* lower-case domain */
    unsigned nvalues;
    const char *values[QUEUE_MAX_FIELDS];
    size_t lens[QUEUE_MAX_FIELDS];
    const char *const *names;          /* the list's field names */
};

/* Fetch contact id; cb sees it only during the call.  QUEUE_ENOTFOUND for
 * a contact deleted since it was queued. */
int queue_contact_get(struct queue *q, uint64_t id,
                      void (*cb)(void *arg, const struct queue_contact *c),
                      void *arg);

/* Call cb for the contacts of list in id order, starting after `after`
 * (0: from the first), at most max (0: all).  Returns the number seen. */
long queue_contacts(struct queue *q, uint64_t list, uint64_t after,
                    size_t max,
                    int (*cb)(void *arg, const struct queue_contact *c),
                    void *arg);

/* ---------------------------------------------------------- suppression */

struct queue_suppression {
    uint32_t owner;                    /* account whose list it is */
    const char *email;
    const char *reason;                /* "unsubscribed", "hard bounce", ... */
    const char *source;                /* "import", "one-click", "dsn", ... */
    int64_t since;
};

/* Is email on owner's suppression list?  One read transaction. */
int queue_suppressed(struct queue *q, uint32_t owner, const char *email,
                     bool *yes);
int queue_suppress_add(struct queue *q, uint32_t owner, const char *email,
                       const char *reason, const char *source,
                       const struct queue_actor *by);

/* ------------------------------------------------------------ campaigns */

enum queue_campaign_state {
    QUEUE_CAMPAIGN_DRAFT = 1,
    QUEUE_CAMPAIGN_SCHEDULED,
    QUEUE_CAMPAIGN_SENDING,            /* recipients queued */
    QUEUE_CAMPAIGN_PAUSED,
    QUEUE_CAMPAIGN_DONE,               /* every recipient terminal */
    QUEUE_CAMPAIGN_CANCELLED,
};

struct queue_campaign {
    uint64_t id;
    uint32_t account;
    uint64_t list;
    char name[QUEUE_MAX_CAMPAIGN_NAME + 1];
    char from[QUEUE_MAX_FROM + 1];     /* "Name <addr@domain>" */
    char reply_to[QUEUE_MAX_FROM + 1]; /* "" none */
    char subject[QUEUE_MAX_SUBJECT + 1];
    char *html;                        /* template, malloc'd */
    char *text;                        /* template or NULL */
    int state;                         /* enum queue_campaign_state */
    int64_t created, schedule, started, finished;
    uint64_t recipients;               /* queued by send */
    uint64_t suppressed_at_send;       /* skipped by send */
};

int queue_campaign_get(struct queue *q, uint64_t id, struct queue_campaign *c);
void queue_campaign_clear(struct queue_campaign *c);

#endif
