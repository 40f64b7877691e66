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
 *   message leaves the queue: every entry on the list an account uses
 *   blocks its mail, whoever added it.  Each entry records the account that
 *   added it (its action, or its contact's: an unsubscribe, a bounce, a
 *   complaint); on a shared list a sub-account sees and removes only its
 *   own (the tools let the master's admins remove any).

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

/* The contact of list with address email (case ignored), through the
 * members index: cb sees it only during the call.  QUEUE_ENOTFOUND when
 * the list has no such address; -EINVAL for an unusable address
 * (contact_find.c). */
int queue_contact_find(struct queue *q, uint64_t list, const char *email,
                       void (*cb)(void *arg, const struct queue_contact *c),
                       void *arg);

/* ---------------------------------------------------------- suppression */

struct queue_suppression {
    uint32_t owner;                    /* account whose list it is */
    uint32_t added_by;                 /* account whose action added it */
    bool added_by_recorded;            /* false: stored before sluice kept
                                          it; added_by is the owner */
    const char *added_by_name;         /* its name ("#id" if gone) */
    const char *email;
    const char *reason;                /* "unsubscribed", "hard bounce", ... */
    const char *source;                /* "import", "one-click", "dsn", ... */
    int64_t since;
};

/* Is email on owner's suppression list?  One read transaction. */
int queue_suppressed(struct queue *q, uint32_t owner, const char *email,
                     bool *yes);

/* Put email on the list account uses (its own, or the master's when
 * shared: the owner is read in the change's transaction), added by
 * account.  -EEXIST when it is there already, whoever added it: the first
 * record stays.  Audited "suppress add". */
int queue_suppress_add(struct queue *q, uint32_t account, const char *email,
                       const char *reason, const char *source,
                       const struct queue_actor *by);

/* Take email off the list account uses.  Only an entry account added,
 * unless any (the caller has checked that its actor may remove others'
 * entries): else -EACCES, nothing changed, with the detail "E was added
 * by NAME: only an admin of the master may remove it" (the caller audits
 * the refusal).  QUEUE_ENOTFOUND (nothing changed) when it is not there.
 * Audited "suppress remove", naming who added it. */
int queue_suppress_remove(struct queue *q, uint32_t account,
                          const char *email, bool any,
                          const struct queue_actor *by);

/* One entry of a batch add; result gets 0 (added), -EEXIST (already on
 * the list, whoever added it: the first record stays) or -EINVAL (bad
 * address, reason or source).  reason/source NULL: "" . */
struct queue_suppress_entry {
    const char *email, *reason, *source;
    int result;
};

/* Add up to QUEUE_SUPPRESS_BATCH entries to the list account uses, added
 * by account, in one transaction with one audit record `action`
 * ("suppress import") whose object counts what was added.  Per-entry
 * problems land in result and do not fail the batch; the return is for
 * the batch (QUEUE_ENOTFOUND: no such account, a write failure). */
#define QUEUE_SUPPRESS_BATCH 1000
int queue_suppress_add_batch(struct queue *q, uint32_t account,
                             struct queue_suppress_entry *e, size_t n,
                             const char *action,
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
    /* finished: done or cancelled, when its last recipient ended (the
     * time of its last terminal event); while sending, when its queue
     * last became empty, 0 never (campaign_end.c) */
    uint64_t recipients;               /* queued by send */
    uint64_t suppressed_at_send;       /* skipped by send */
    /* send bookkeeping (campaign_send.c): */
    uint64_t send_cursor;              /* last contact id send has handled */
    bool send_complete;                /* every contact of the list handled */
    unsigned track;                    /* QUEUE_TRACK_* (0: untracked) */
};

/* Opens and clicks tracking of a campaign (opt-in; render.h rewrites
 * the html part's links and adds the open pixel). */
#define QUEUE_TRACK_OPENS 1u
#define QUEUE_TRACK_CLICKS 2u

/* Read campaign id (QUEUE_ENOTFOUND if none); fills c including its
 * templates, which queue_campaign_clear() frees.  c is cleared first. */
int queue_campaign_get(struct queue *q, uint64_t id, struct queue_campaign *c);
void queue_campaign_clear(struct queue_campaign *c);

/* "draft", "scheduled", "sending", "paused", "done", "cancelled" ("?"). */
const char *queue_campaign_state_name(int state);

/* What a new campaign is made of (create), or the new values of the fields
 * selected by `set` (update).  Strings are copied.  Checks: name 1..127
 * bytes of UTF-8 text without control characters; from 1..320, reply_to
 * 0..320 and subject 0..998 bytes without control characters; html
 * (required at create, may be "") and text (NULL: none, derived from the
 * html when rendered) up to QUEUE_MAX_TEMPLATE bytes of UTF-8 without
 * control characters other than TAB, CR, LF; schedule 0 (none) or unix
 * seconds; track 0 or QUEUE_TRACK_* bits (stored only when not 0).  Templates are not parsed here: the tools compile them with
 * render_compile() before they store them. */
enum queue_campaign_field {
    QUEUE_CF_NAME = 1 << 0,
    QUEUE_CF_LIST = 1 << 1,
    QUEUE_CF_FROM = 1 << 2,
    QUEUE_CF_REPLY_TO = 1 << 3,
    QUEUE_CF_SUBJECT = 1 << 4,
    QUEUE_CF_HTML = 1 << 5,
    QUEUE_CF_TEXT = 1 << 6,
    QUEUE_CF_SCHEDULE = 1 << 7,
    QUEUE_CF_TRACK = 1 << 8,
};
struct queue_campaign_spec {
    uint64_t list;
    const char *name, *from, *reply_to, *subject, *html, *text;
    int64_t schedule;
    unsigned track;                    /* QUEUE_TRACK_* bits */
};

/* Create a draft campaign of account (which must exist) with a new id
 * from the meta counter "next_campaign" (1, 2, ...).  Names are unique
 * within an account: -EEXIST.  Audited "campaign create". */
int queue_campaign_create(struct queue *q, uint32_t account,
                          const struct queue_campaign_spec *s,
                          const struct queue_actor *by, uint64_t *id);

/* Change the fields of a draft selected by set (enum queue_campaign_field;
 * a NULL text with QUEUE_CF_TEXT drops the text template).  QUEUE_ESTATE
 * once the campaign left the draft state.  Audited "campaign update". */
int queue_campaign_update(struct queue *q, uint64_t id, unsigned set,
                          const struct queue_campaign_spec *s,
                          const struct queue_actor *by);

/* The campaign of account named name (templates included, as get). */
int queue_campaign_find(struct queue *q, uint32_t account, const char *name,
                        struct queue_campaign *c);

/* Call cb for each campaign of account (0: of every account) in id order,
 * without templates (html and text NULL); cb returns non-zero to stop.
 * Returns the number passed to cb or a negative code. */
long queue_campaigns(struct queue *q, uint32_t account,
                     int (*cb)(void *arg, const struct queue_campaign *c),
                     void *arg);

/* Pause, resume or cancel: the state change, the engine's control and the
 * audit record ("campaign pause" ...) commit in one transaction.
 *   pause   scheduled or sending -> paused; sets QUEUE_CTL_CAMPAIGN.
 *   resume  paused -> sending (scheduled when its schedule is still ahead);
 *           removes QUEUE_CTL_CAMPAIGN.
 *   cancel  draft, scheduled, sending or paused -> cancelled; sets
 *           QUEUE_CTL_CANCELLED (not for a draft: nothing is queued) and
 *           removes QUEUE_CTL_CAMPAIGN.  Final.
 * The control's name is the decimal id, its who by->user, reason the given
 * text (NULL: none).  QUEUE_ESTATE (detail says why) when the state does
 * not allow it; QUEUE_ENOTFOUND for an unknown id. */
int queue_campaign_pause(struct queue *q, uint64_t id, const char *reason,
                         const struct queue_actor *by);
int queue_campaign_resume(struct queue *q, uint64_t id,
                          const struct queue_actor *by);
/* A pause that ends by itself at until (unix seconds, 0: never): the
 * control holds the end; from then on it reads as not paused and sluiced
 * resumes the campaign (queue_campaign_resume, audited as its own). */
int queue_campaign_pause_until(struct queue *q, uint64_t id,
                               const char *reason, int64_t until,
                               const struct queue_actor *by);
int queue_campaign_cancel(struct queue *q, uint64_t id, const char *reason,
                          const struct queue_actor *by);

/* Persist the states that follow from time and counters, unaudited (no
 * one acts; the tools call it from show and list, the engine may too):
 *   scheduled -> sending   once the schedule has come (clock of the spool);
 *   sending or paused -> done   when send handled every contact and every
 *       recipient is terminal: delivered + bounced + expired counted by
 *       the campaign's counters reach `recipients` (so a campaign is never
 *       done with mail unsent, whatever happened to the engine); its
 *       finished time is then that of its last terminal event, recorded
 *       when it committed (or, for a spool that has no such record, read
 *       from the event log), not the time of the call.
 * *state (may be NULL) gets the state after the call.  A read-only open
 * only reports the derived state. */
int queue_campaign_settle(struct queue *q, uint64_t id, int *state);

/* ------------------------------------------------------ sending (queue) */

/* Sending is resumable: the campaign keeps a cursor, the last contact id
 * send has handled, advanced in the same transaction that queues the
 * recipients of each batch.  A send that dies half way is continued by
 * the next send from the cursor, and two sends at once cannot queue a
 * contact twice (a batch whose `after` is not the cursor fails).
 *
 * queue_campaign_send_begin: draft -> sending, or -> scheduled when the
 * schedule is ahead of now; audited "campaign send" (result "started").
 * On a campaign whose send did not complete (state scheduled, sending or
 * paused) it changes nothing and reports where to continue (result
 * "resumed").  *cursor gets the contact id to continue after (0: from the
 * first).  QUEUE_ESTATE for a campaign already sent, done or cancelled. */
int queue_campaign_send_begin(struct queue *q, uint64_t id,
                              const struct queue_actor *by,
                              uint64_t *cursor);

/* Queue one batch of the campaign's recipients (contacts in (after, last])
 * and advance the cursor from `after` to `last` in one transaction;
 * `suppressed` is how many contacts of that range send skipped.  n may be
 * 0 (every contact of the range skipped).  Recipients are due at the
 * campaign's schedule when it is ahead, else now.  The operation fails
 * with QUEUE_ESTATE (nothing written) when the cursor is not `after` or
 * the campaign was cancelled or is not being sent; QUEUE_ENOTFOUND for an
 * unknown campaign.  Asynchronous like queue_submit_campaign(). */
int queue_campaign_submit_batch(struct queue *q, uint64_t campaign,
                                uint64_t after, uint64_t last,
                                const struct queue_campaign_rcpt *rcpts,
                                size_t n, uint64_t suppressed,
                                struct queue_completer *cmp,
                                queue_done_cb cb, void *arg);

/* What one queue_campaign_send_all() did: cursor is the contact id to
 * continue after (set it from queue_campaign_send_begin()), moved to the
 * last contact of the last batch submitted; the counts add up. */
struct queue_send_run {
    uint64_t cursor, queued, suppressed, invalid, contacts;
};

/* Queue every contact of the campaign's list after run->cursor, skipping
 * invalid addresses and those on owner's suppression list (owner: the
 * account's queue_account.suppression_owner), one batch per chunk of the
 * list (queue_campaign_submit_batch), and wait for every batch.  0, or
 * the first failure: QUEUE_ESTATE (cancelled, or another send took
 * over), QUEUE_ENOTFOUND (the list is gone), QUEUE_EFULL, -ENOMEM;
 * whatever committed stays and the next send continues after it. */
int queue_campaign_send_all(struct queue *q, uint64_t campaign,
                            uint64_t list, uint32_t owner,
                            struct queue_send_run *run);

/* End a send whose cursor is `last`: marks it complete (a campaign with
 * no recipients goes straight to done); audited "campaign send" with the
 * counts.  QUEUE_ESTATE when the cursor moved on (another send). */
int queue_campaign_send_end(struct queue *q, uint64_t id, uint64_t last,
                            const struct queue_actor *by);

/* ---------------------------------------- feedback (delivery_find.c) */

/* The delivery of campaign to rcpt (compared without case), looking at
 * the newest `max` deliveries of the spool at most (0: all; there is no
 * index, it is a scan).  QUEUE_ENOTFOUND when none matched. */
int queue_find_campaign_delivery(struct queue *q, uint64_t campaign,
                                 const char *rcpt, uint64_t max,
                                 struct queue_delivery *d);

/* ------------------------------------------ feedback (feedback.c) */

/* A later bounce (a DSN) or a complaint (an ARF report) about one
 * delivery, as `sluice feedback ingest` found it. */
enum { QUEUE_FEEDBACK_BOUNCE = 1, QUEUE_FEEDBACK_COMPLAINT };

struct queue_feedback {
    uint64_t delivery;
    int kind;                  /* QUEUE_FEEDBACK_* */
    /* a bounce, as in struct queue_outcome (code 0: none); a complaint
     * uses only text: its feedback type ("abuse"), kept in its event */
    uint16_t code;
    uint8_t category;          /* QUEUE_CAT_* */
    const char *enhanced, *mx, *text;
};

/* Whether queue_record_feedback() suppressed the address. */
enum { QUEUE_FEEDBACK_NOT_SUPPRESSED = 0, QUEUE_FEEDBACK_SUPPRESSED,
       QUEUE_FEEDBACK_ALREADY_SUPPRESSED };

struct queue_feedback_result {
    bool recorded;     /* a bounced event was written (else: a complaint,
                          whose event is informational, or a late bounce
                          of a delivery already terminal) */
    int suppressed;    /* QUEUE_FEEDBACK_*SUPPRESSED */
};

/* Record a bounce or complaint in one transaction, through the code that
 * records sluiced's outcomes (outcome.c, hygiene.c), so the event and the
 * suppression it causes commit together or not at all:
 *   bounce, delivery not terminal: the bounced event, with list hygiene as
 *     for any bounced outcome (hard bounces suppress, quota-issues count
 *     towards a streak, policy and spam blocks are counted);
 *   bounce, delivery terminal already (a late bounce): no second terminal
 *     event; a hard bounce still suppresses;
 *   complaint: the address is suppressed, reason "complaint".
 * Entries are made as sluiced makes them: on the delivery's account's list
 * (the master's when shared), added by the delivery's account, reason
 * "hard bounce: CATEGORY", an entry already there left as it is; their
 * source is "dsn" for a bounce and "arf" for a complaint (sluiced's:
 * "smtp").  No audit record: the caller audits what it did.  r may be
 * NULL.  0, QUEUE_ENOTFOUND (no such delivery), QUEUE_ECORRUPT, -EINVAL,
 * -EROFS, -ENOMEM or a write failure (then nothing was written). */
int queue_record_feedback(struct queue *q, const struct queue_feedback *f,
                          struct queue_feedback_result *r);

/* --------------------------------------------------------- token secret */

#define QUEUE_TOKEN_SECRET 32

/* The spool's secret for unsubscribe and VERP tokens (render.h), made
 * once from getrandom(2) and kept in the meta database ("token_secret").
 * The tools and the engine must render with the same secret.  A read-only
 * open of a spool without one gets QUEUE_ENOTFOUND. */
int queue_token_secret(struct queue *q, unsigned char out[QUEUE_TOKEN_SECRET]);

/* ------------------------------------- lists, contacts: more (lists.c) */

/* Notes on the list functions above:
 *   queue_list_create: name [a-z0-9][a-z0-9._-]{0,62}, unique within the
 *     account (-EEXIST); id from the meta counter "next_list"; audited
 *     "list create".
 *   queue_lists: account 0 walks every account's lists in id order, else
 *     one account's lists in name order; cb returns non-zero to stop.
 *   queue_list_delete: audited "list delete"; the name is free at once and
 *     the contacts go with it, in chunks (each its own transaction); a
 *     delete that was interrupted is finished by the next one.  A list
 *     being deleted reads as QUEUE_ENOTFOUND, and so do its contacts.
 *   Contacts: an address compares without regard to case within a list
 *   (the stored address keeps the case of its local part). */

/* Call cb for each entry of owner's suppression list in address order,
 * from the first address >= from (NULL: the first); added_by non-zero
 * passes only the entries that account added (a sub-account's view of a
 * shared list), 0 all.  cb returns non-zero to stop.  Returns the number
 * passed to cb or a negative code. */
long queue_suppressions(struct queue *q, uint32_t owner, uint32_t added_by,
                        const char *from,
                        int (*cb)(void *arg,
                                  const struct queue_suppression *s),
                        void *arg);

/* List hygiene (hygiene.c): the engine's outcomes suppress hard bounces
 * ("hard bounce: <category>", source "smtp") and quota bounces after
 * queue_options.soft_bounce_limit in a row, added by the delivery's
 * account; policy and spam blocks only count.  The blocks of account on
 * UTC day (unix time / 86400). */
int queue_blocks_get(struct queue *q, uint32_t account, uint32_t day,
                     uint64_t *policy, uint64_t *spam);

/* ------------------------------------------------- contact import (import.c) */

/* An import streams rows into a list in large batches through the writer
 * (several in flight), in constant memory:
 *
 *   queue_import_begin()   adds the file's new column names to the list's
 *                          fields (names 1..63 of [a-z0-9_], unique;
 *                          -EINVAL if the list would pass QUEUE_MAX_FIELDS)
 *   queue_import_add()     one row: a checked address (domain lower-case
 *                          A-label) and values[i] (lens[i] bytes, no NUL,
 *                          at most QUEUE_MAX_FIELD_VALUE) for names[i]
 *   queue_import_reject()  a row the caller refused, so that results come
 *                          back in the order rows were given
 *   queue_import_end()     commits the rest, writes one audit record "list
 *                          import" ("list L: imported N, duplicate D,
 *                          invalid I, suppressed S"), frees the import
 *
 * Each row's result reaches cb, in the caller's thread, from within those
 * calls: added, duplicate (an address already in the list, compared
 * without case: from this import -- dup_line says which line -- or an
 * earlier one, dup_line 0), suppressed (on owner's suppression list), or
 * rejected by the caller.  Rows are written sorted by address, window by
 * window (import.c): the first line of an address is the one kept
 * whatever the order of the file, and new contacts take their ids in
 * line order within each slice of a window (a file of up to 16,384 rows
 * keeps its order).  Batches commit one by one: an import that fails
 * keeps the rows committed before, and importing the file again adds only
 * what is missing.
 *
 * queue_import_add() refuses one row without harm to the import: -EINVAL
 * (bad address, NUL in a value), QUEUE_ETOOBIG (a value over its cap, or a
 * packed contact over QUEUE_MAX_CONTACT).  Any other error fails the
 * import (e.g. QUEUE_ENOTFOUND: the list was deleted meanwhile); later
 * calls return it, and queue_import_end() records it in the audit record.
 * The caller may also end with a failure of its own (failure != NULL: no
 * further rows are committed, and the audit result says "failed: ..."). */
#define QUEUE_MAX_IMPORT_REASON 255

enum queue_import_outcome {
    QUEUE_IMPORT_ADDED = 1,
    QUEUE_IMPORT_DUPLICATE,
    QUEUE_IMPORT_SUPPRESSED,
    QUEUE_IMPORT_REJECTED,
};

/* One row's result; strings valid only during the callback. */
struct queue_import_result {
    uint64_t line;                     /* as given to add/reject */
    int outcome;                       /* enum queue_import_outcome */
    const char *email;                 /* as given */
    uint64_t contact;                  /* added: its id; duplicate: the
                                          contact already in the list */
    uint64_t dup_line;                 /* duplicate from this import: the
                                          line of the first; else 0 */
    const char *reason;                /* rejected: the caller's reason */
};

struct queue_import_counts {
    uint64_t rows;                     /* results delivered */
    uint64_t added, duplicate, suppressed, rejected;
};

struct queue_import;

int queue_import_begin(struct queue *q, uint64_t list, uint32_t owner,
                       const char *const *names, unsigned nnames,
                       void (*cb)(void *arg,
                                  const struct queue_import_result *r),
                       void *arg, struct queue_import **out);
int queue_import_add(struct queue_import *im, uint64_t line,
                     const char *email, const char *const *values,
                     const size_t *lens);
int queue_import_reject(struct queue_import *im, uint64_t line,
                        const char *email, const char *reason);
int queue_import_end(struct queue_import *im, const struct queue_actor *by,
                     const char *failure, struct queue_import_counts *counts);

#endif
