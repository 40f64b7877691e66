/*
 * queue.h - the sluice spool: a durable LMDB queue of deliveries.
 *
 * DESCRIPTION
 *   One spool directory holds one LMDB environment with named databases
 *   (see queue/schema.c for the list).  The spool stores raw injected
 *   messages once, one delivery row per recipient, a ready index ordered by
 *   next-attempt time, an append-only event log, and transactional counters
 *   per campaign, account and domain, and the admin's controls (paused
 *   domains and sites).
 *
 *   Writes go through one writer thread per open spool (queue_submit()).  The
 *   writer gathers operations and commits them in groups: one fsync per
 *   group, not per operation.  Each operation's completion callback runs after
 *   the group holding it has committed (or failed), either on the writer
 *   thread or, through a struct queue_completer, on a libuv loop.
 *
 *   Claims are leases held in the memory of the claiming process: a claimed
 *   delivery stays in the ready index on disk until its outcome commits, so a
 *   process that dies with deliveries claimed leaves them due again for the
 *   next process.  Only one process may claim at a time (QUEUE_OPEN_CLAIM
 *   takes an exclusive lock on the spool).
 *
 * OWNERSHIP
 *   Strings and arrays passed to queue_* functions are copied before the call
 *   returns; the caller keeps ownership.  Records handed to read callbacks are
 *   valid only during the callback.  Free functions accept NULL.
 *
 * DIAGNOSTICS
 *   Every function returning int returns 0 on success or a negative code:
 *   either -errno or one of the QUEUE_E* codes below.  queue_strerror() gives
 *   the text.  LMDB codes never reach the caller.  When a function that takes
 *   a callback returns an error, the callback is never called.
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of the queue library (errno values are returned negated). */
enum {
    QUEUE_EFOREIGN = -31000, /* directory holds something that is not a spool */
    QUEUE_ECORRUPT = -31001, /* spool files are damaged */
    QUEUE_ESCHEMA = -31002,  /* spool written by a newer sluice */
    QUEUE_EFULL = -31003,    /* no room: map ceiling reached or the
                                filesystem is out of space (ENOSPC,
                                EDQUOT, a short write at commit) */
    QUEUE_ENOTFOUND = -31004,/* no such delivery, message or record */
    QUEUE_ESTATE = -31005,   /* delivery already in a terminal state */
    QUEUE_ELOCKED = -31006,  /* another process holds the claim lock */
    QUEUE_ESHUTDOWN = -31007,/* spool is closing; operation not accepted */
    QUEUE_ETOOBIG = -31008,  /* value over a documented cap */
};

const char *queue_strerror(int err);

/* Nonzero when err says the spool could not take a write just now (full,
 * read-only, an I/O error, out of memory) rather than anything about the
 * operation: nothing of it was written, and the same operation may be
 * submitted again later. */
int queue_err_unwritable(int err);

/* Detail of the last failure on the calling thread (e.g. the schema versions
 * behind QUEUE_ESCHEMA), or "" if none. */
const char *queue_last_detail(void);

/* Current on-disk schema version written by this build. */
#define QUEUE_SCHEMA_VERSION 7

/* Caps on variable fields: a longer recipient is refused with -EINVAL;
 * reply text, MX names and enhanced codes in outcomes are cut to the cap. */
#define QUEUE_MAX_RCPT 320      /* RFC 5321 path limits: 64 + 1 + 255 */
#define QUEUE_MAX_REPLY 512     /* reply text kept per event */
#define QUEUE_MAX_MX 255        /* remote MX host name */
#define QUEUE_MAX_ENHANCED 15   /* "5.7.1" style enhanced status code */
#define QUEUE_MAX_MESSAGE (64u * 1024 * 1024)
#define QUEUE_MAX_RETRY_STEPS 32

/* ------------------------------------------------------------------ open */

enum queue_open_flags {
    QUEUE_OPEN_CREATE = 1 << 0, /* create the directory and spool if absent */
    QUEUE_OPEN_NOSYNC = 1 << 1, /* no fsync at commit: see README "no-sync" */
    QUEUE_OPEN_CLAIM = 1 << 2,  /* this process claims deliveries (engine) */
    QUEUE_OPEN_READONLY = 1 << 3,
    /* with CREATE: also start a new, empty spool in a directory whose
     * data.mdb is empty, or missing beside lock.mdb or claim.lock, which
     * an open otherwise refuses as QUEUE_ECORRUPT (the spool's data is
     * gone).  A data.mdb with anything in it is never replaced. */
    QUEUE_OPEN_RECREATE = 1 << 4,
};

struct queue_options {
    unsigned flags;           /* enum queue_open_flags */
    uint64_t map_size;        /* initial map size in bytes; 0: 64 MiB */
    uint64_t map_max;         /* ceiling for automatic growth; 0: 64 GiB */
    unsigned group_ops;       /* commit after this many operations; 0: 4096 */
    unsigned group_ms;        /* or after this many ms since the first; 0: 5 */
    unsigned max_pending;     /* submit blocks above this many queued ops;
                                 0: 65536 */
    /* Retry schedule in seconds between attempts; the last step repeats.
     * Zero steps: 300, 600, 1200, 2400, 3600, 7200, 14400. */
    unsigned retry_steps;
    uint32_t retry[QUEUE_MAX_RETRY_STEPS];
    int64_t max_age;          /* seconds a delivery may live; 0: 5 days */
    int64_t (*clock)(void);   /* unix seconds; NULL: the wall clock (tests) */
    unsigned trim_ms;         /* writer drops mapped pages from RSS this
                                 often (queue_trim_map); 0: never */
    /* List hygiene (outcome.c): quota bounces or deferrals in a row, all
     * within soft_bounce_days, that suppress an address; 0: 3 and 7 */
    unsigned soft_bounce_limit;
    unsigned soft_bounce_days;
};

struct queue;

/* Open (or with QUEUE_OPEN_CREATE create) the spool in DIR. opts may be NULL
 * for defaults.  CREATE makes a spool only where there is none yet: a
 * directory that does not exist or is empty (QUEUE_OPEN_RECREATE above).  Clears stale reader slots left by dead processes and starts
 * the writer thread (not in read-only mode). */
int queue_open(struct queue **out, const char *dir,
               const struct queue_options *opts);

/* Wait for every submitted operation to complete, stop the writer and close
 * the environment.  Deliveries still claimed become due again. */
void queue_close(struct queue *q);

/* Facts about the open spool. */
struct queue_info {
    uint32_t schema;
    uint64_t map_size;     /* current map size */
    uint64_t map_max;
    uint64_t file_bytes;   /* size of data.mdb on disk */
    uint64_t last_page_bytes; /* bytes of pages in use (last page + 1) */
    uint64_t data_bytes;   /* bytes of the pages the databases hold: what
                              counts against map_max (last_page_bytes less
                              the free pages LMDB reuses) */
    /* the spool's filesystem (all 0: unknown): its size, the bytes in
     * use, the bytes free to this process (df counts used / (used + free):
     * the root's reserve is neither) */
    uint64_t disk_bytes, disk_used_bytes, disk_free_bytes;
    uint64_t deliveries;   /* delivery rows stored */
    uint64_t ready;        /* entries in the ready index */
    uint64_t events;       /* events logged */
    uint64_t messages;     /* raw messages stored */
    uint64_t next_event_seq;
    /* writer statistics since open */
    uint64_t commits;
    uint64_t ops_committed;
    uint64_t map_grows;
    int stale_readers_cleared;
    int nosync;
};
int queue_info(struct queue *q, struct queue_info *info);

/* The writer's commit latency since open (stats.c): each commit group
 * (apply, commit, fsync) counted once into bucket[i], the first whose
 * upper bound queue_commit_bounds_us[i] it does not pass, or into
 * bucket[QUEUE_COMMIT_BUCKETS] past the last; not cumulative. */
#define QUEUE_COMMIT_BUCKETS 16
extern const uint32_t queue_commit_bounds_us[QUEUE_COMMIT_BUCKETS];
struct queue_commit_stats {
    uint64_t count, sum_us;
    uint64_t bucket[QUEUE_COMMIT_BUCKETS + 1];
};
int queue_commit_stats(struct queue *q, struct queue_commit_stats *out);

/* The ready index by when its entries are due (stats.c): ready (due at or
 * before now, claimed ones included), waiting (due later: retries,
 * schedules, account caps), parked (queue_park_time() and above).  At most
 * cap entries are walked for ready and for parked each (capped is then
 * set and that count is a lower bound); entries is exact. */
struct queue_depth {
    uint64_t entries, ready, waiting, parked;
    int capped;
};
int queue_ready_depth(struct queue *q, int64_t now, uint64_t cap,
                      struct queue_depth *d);

/* ------------------------------------------------------------ the writer */

/* Types of events and delivery states. */
enum queue_event_type {
    QUEUE_EV_NONE = 0,
    QUEUE_EV_DELIVERED = 1,
    QUEUE_EV_DEFERRED = 2,
    QUEUE_EV_BOUNCED = 3,
    QUEUE_EV_EXPIRED = 4,
    /* terminal too (schema 5): skipped at send time because the address
     * is on a suppression list; ended by a campaign's cancel */
    QUEUE_EV_SUPPRESSED = 5,
    QUEUE_EV_CANCELLED = 6,
    /* informational (schema 5): about a delivery (or, for unsubscribed,
     * a campaign's contact) but changing no state and no terminal
     * counter; queue_record_note() writes them, reception also
     * queue_submit_message_via() */
    QUEUE_EV_COMPLAINT = 7,     /* an ARF report; text: feedback type */
    QUEUE_EV_UNSUBSCRIBED = 8,  /* text: how ("one-click", "mailto") */
    QUEUE_EV_RECEPTION = 9,     /* a message accepted by a listener */
    QUEUE_EV_INCIDENT = 10,     /* reserved for incidents (next issue) */
    /* 11..15 reserved */
    QUEUE_EV_OPENED = 11,       /* a tracked open: the pixel was fetched */
    QUEUE_EV_CLICKED = 12,      /* a tracked link followed; text: the URL */
    QUEUE_EV_MAX = 12,
};
/* "delivered", "deferred", ..., "unknown" for a number not above. */
const char *queue_event_name(int type);
/* Nonzero for the types that end a delivery: delivered, bounced,
 * expired, suppressed, cancelled. */
#define QUEUE_EV_TERMINAL(t)                                                \
    ((t) == QUEUE_EV_DELIVERED || (t) == QUEUE_EV_BOUNCED ||                \
     (t) == QUEUE_EV_EXPIRED || (t) == QUEUE_EV_SUPPRESSED ||               \
     (t) == QUEUE_EV_CANCELLED)
/* Nonzero for the informational types (complaint .. incident). */
#define QUEUE_EV_INFO(t) ((t) >= QUEUE_EV_COMPLAINT && (t) <= QUEUE_EV_MAX)

/* Bounce categories, stored as a number in events. */
enum queue_category {
    QUEUE_CAT_NONE = 0,
    QUEUE_CAT_BAD_MAILBOX,
    QUEUE_CAT_BAD_DOMAIN,
    QUEUE_CAT_INACTIVE_MAILBOX,
    QUEUE_CAT_QUOTA,
    QUEUE_CAT_NO_ANSWER,
    QUEUE_CAT_ROUTING,
    QUEUE_CAT_POLICY,
    QUEUE_CAT_SPAM,
    QUEUE_CAT_CONTENT,
    QUEUE_CAT_PROTOCOL,
    QUEUE_CAT_EXPIRED,
    QUEUE_CAT_OTHER,
    /* ended by an admin (`sluice queue bounce`, queue_queued.h): no
     * reply from a receiver, never a reason to suppress the address */
    QUEUE_CAT_ADMIN,
    QUEUE_CAT_COUNT
};
/* "bad-mailbox", "bad-domain", ... ("" for none). */
const char *queue_category_name(int cat);

enum queue_state {
    QUEUE_ST_QUEUED = 0,   /* waiting in the ready index */
    QUEUE_ST_DELIVERED = 1,
    QUEUE_ST_BOUNCED = 3,
    QUEUE_ST_EXPIRED = 4,
    QUEUE_ST_SUPPRESSED = 5,
    QUEUE_ST_CANCELLED = 6,
};
const char *queue_state_name(int state);
#define QUEUE_STATE_TERMINAL(s) ((s) != QUEUE_ST_QUEUED)

/* One recipient of a campaign: contact reference and address. */
struct queue_campaign_rcpt {
    uint64_t contact;
    const char *rcpt;
};

/* An outcome for one delivery.  Type QUEUE_EV_NONE with retry_at set
 * postpones the delivery to retry_at without counting an attempt or logging
 * an event (the engine holding mail back for a throttled site). */
struct queue_outcome {
    uint64_t delivery;
    int type;               /* QUEUE_EV_DELIVERED, _DEFERRED, _BOUNCED,
                               _EXPIRED, _SUPPRESSED, _CANCELLED */
    uint16_t code;          /* SMTP reply code, 0 if none (e.g. DNS failure) */
    uint8_t category;       /* bounce category number (later issue), 0 none */
    const char *enhanced;   /* "5.1.1" or NULL */
    const char *mx;         /* remote MX host or NULL */
    const char *text;       /* reply text or NULL (cut to QUEUE_MAX_REPLY) */
    int64_t retry_at;       /* deferred: explicit next attempt (unix s), or 0
                               to follow the retry schedule */
    const char *site;       /* the engine's site (MX rollup) or NULL: the
                               time series count the outcome under it */
};

struct queue_op;  /* one submitted write operation (opaque) */

/* Completion callback: status is 0 or a negative code.  For enqueue
 * operations, first_id is the id of the first delivery created (ids are
 * consecutive in input order) and msg_id the stored message (0 for
 * campaigns).  For outcomes, first_id is 0.  Runs once per operation. */
typedef void (*queue_done_cb)(void *arg, int status, uint64_t first_id,
                              uint64_t msg_id);

/* Delivery of completions into a libuv loop (defined in queue_uv.h). */
struct queue_completer;

/* Submit operations to the writer.  On success the operation is queued and
 * cb (if not NULL) runs exactly once after its group commits or fails: on the
 * completer's loop if cmp is not NULL, else on the writer thread.  Submit
 * blocks while max_pending operations are waiting.  On error nothing is
 * queued and cb never runs. */
int queue_submit_message(struct queue *q, uint32_t account, const char *from,
                         const char *const *rcpts, size_t nrcpt,
                         const void *msg, size_t len,
                         struct queue_completer *cmp, queue_done_cb cb,
                         void *arg);
int queue_submit_campaign(struct queue *q, uint32_t account,
                          uint64_t campaign,
                          const struct queue_campaign_rcpt *rcpts, size_t n,
                          struct queue_completer *cmp, queue_done_cb cb,
                          void *arg);
/* queue_submit_campaign() with the recipients first due at unix time due
 * (now when due is not ahead): queue_claim() does not hand them out
 * before then.  Their maximum age counts from due. */
int queue_submit_campaign_at(struct queue *q, uint32_t account,
                             uint64_t campaign,
                             const struct queue_campaign_rcpt *rcpts,
                             size_t n, int64_t due,
                             struct queue_completer *cmp, queue_done_cb cb,
                             void *arg);
int queue_submit_outcomes(struct queue *q, const struct queue_outcome *o,
                          size_t n, struct queue_completer *cmp,
                          queue_done_cb cb, void *arg);
/* Someone waits on what is pending (an SMTP session holds its next
 * transaction, or its close, until its outcomes commit): commit it now,
 * without waiting out group_ms, as for a message; what arrives meanwhile
 * shares the next commit.  Returns at once (queue_flush() waits). */
void queue_hurry(struct queue *q);
/* (An outcome operation that fails with a status queue_err_unwritable()
 * accepts leaves its deliveries claimed: submit it again, or release.) */

/* Synchronous forms: submit and wait for the group commit.  Return the
 * operation's status. */
int queue_enqueue_message(struct queue *q, uint32_t account, const char *from,
                          const char *const *rcpts, size_t nrcpt,
                          const void *msg, size_t len, uint64_t *first_id,
                          uint64_t *msg_id);
int queue_enqueue_campaign(struct queue *q, uint32_t account,
                           uint64_t campaign,
                           const struct queue_campaign_rcpt *rcpts, size_t n,
                           uint64_t *first_id);
int queue_record_outcomes(struct queue *q, const struct queue_outcome *o,
                          size_t n);

/* Block until everything submitted so far has committed. */
int queue_flush(struct queue *q);

/* ------------------------------------------------------------ claiming */

/* A claimed delivery, as handed to the engine. */
struct queue_claim {
    uint64_t id;
    uint64_t campaign;     /* 0 for injected messages */
    uint64_t ref;          /* contact id (campaign) or message id */
    uint32_t account;
    uint16_t attempts;     /* attempts made before this one */
    int64_t created;       /* unix seconds */
    int64_t due;           /* next attempt time it was claimed at */
    uint16_t domain_off;   /* rcpt + domain_off is the (lowercase) domain */
    char rcpt[QUEUE_MAX_RCPT + 1];
    int cancelled;         /* its campaign is cancelled (QUEUE_CTL_CANCELLED
                              seen in the claim's own transaction): end it,
                              do not send it */
};

/* Claim up to max deliveries due at or before now (unix seconds) into out.
 * Returns the number claimed (0..max) or a negative code.  Needs
 * QUEUE_OPEN_CLAIM.  A claimed delivery is not claimed again until its
 * outcome commits or queue_release() is called. */
int queue_claim(struct queue *q, int64_t now, struct queue_claim *out,
                size_t max);

/* Give a claim back without an outcome (e.g. on shutdown). */
void queue_release(struct queue *q, uint64_t id);

/* Number of deliveries currently claimed by this process. */
size_t queue_claimed(struct queue *q);

/* ------------------------------------------------------------- reading */

/* Delivery row as stored. */
struct queue_delivery {
    uint64_t id;
    uint64_t campaign;
    uint64_t ref;
    uint32_t account;
    uint16_t attempts;
    uint8_t state;         /* enum queue_state */
    int64_t created;
    int64_t next_attempt;  /* when queued; time of the terminal event else */
    uint64_t last_event;   /* seq of the newest event, 0 if none */
    char rcpt[QUEUE_MAX_RCPT + 1];
};
int queue_get_delivery(struct queue *q, uint64_t id, struct queue_delivery *d);

/* Fetch a stored message: the callback sees the bytes only during the call. */
int queue_get_message(struct queue *q, uint64_t msg_id,
                      void (*cb)(void *arg, const char *from,
                                 const void *msg, size_t len),
                      void *arg);

/* One event of the log. */
struct queue_event {
    uint64_t seq;
    int64_t time_ms;
    uint64_t delivery;
    uint64_t campaign;
    uint32_t account;
    uint8_t type;          /* enum queue_event_type */
    uint8_t category;
    uint16_t code;
    uint16_t attempt;      /* attempt number this outcome ended (1-based) */
    uint64_t prev;         /* previous event of the same delivery, 0 none */
    char enhanced[QUEUE_MAX_ENHANCED + 1];
    char mx[QUEUE_MAX_MX + 1];
    char text[QUEUE_MAX_REPLY + 1];
    char rcpt[QUEUE_MAX_RCPT + 1];
    /* not stored in the event: filled by the readers below from the
     * delivery row in the same read transaction: the stored message of
     * injected mail (several recipients of one message share it), 0 for
     * campaign mail, an unsubscribed note without a delivery, or a
     * delivery no longer in the spool */
    uint64_t message;
};

/* Call cb for each event with seq >= from, in order, up to max events
 * (0: no limit).  cb returns non-zero to stop.  Returns the number of
 * events passed to cb or a negative code. */
long queue_events_from(struct queue *q, uint64_t from, size_t max,
                       int (*cb)(void *arg, const struct queue_event *ev),
                       void *arg);

/* Call cb for each event of one delivery, newest first.  Returns the number
 * of events or a negative code (QUEUE_ENOTFOUND for an unknown delivery). */
long queue_history(struct queue *q, uint64_t delivery,
                   int (*cb)(void *arg, const struct queue_event *ev),
                   void *arg);

/* The seq of the newest event committed (0 when the log is empty). */
int queue_events_last(struct queue *q, uint64_t *seq);

/* ---------------------------------------------- informational events */

/* An informational event (QUEUE_EV_COMPLAINT .. QUEUE_EV_INCIDENT): it
 * is appended to the event log and changes no delivery, state or
 * counter.  With delivery set, campaign, account and rcpt are taken from
 * the delivery row (the fields here are ignored); with delivery 0 (an
 * unsubscribe known only by campaign and contact) they are stored as
 * given.  text is cut to QUEUE_MAX_REPLY. */
struct queue_note {
    int type;
    uint64_t delivery;
    uint64_t campaign;
    uint32_t account;
    const char *rcpt;      /* required when delivery is 0 */
    const char *text;      /* NULL: none */
};

/* Append the note's event through the writer and wait for its commit.
 * Errors: -EINVAL (type, or no delivery and no valid rcpt),
 * QUEUE_ENOTFOUND (no such delivery), -EROFS, QUEUE_ESHUTDOWN, or a
 * write failure. */
int queue_record_note(struct queue *q, const struct queue_note *n);

/* queue_submit_message() that also appends one QUEUE_EV_RECEPTION event
 * in the same commit (the listeners' way in): one event per message,
 * naming its first recipient's delivery, text "VIA: N recipients" (via:
 * "smtp", "http"; 1..15 bytes of a-z). */
int queue_submit_message_via(struct queue *q, uint32_t account,
                             const char *from, const char *const *rcpts,
                             size_t nrcpt, const void *msg, size_t len,
                             const char *via, struct queue_completer *cmp,
                             queue_done_cb cb, void *arg);

/* The spool's identity: 32 lower-case hex digits of 16 random bytes
 * made once, when a writable open first finds none, and kept in meta
 * (a salvage copies it), so "IDENTITY-SEQ" names one event for good.
 * -ENOENT on a read-only open of a spool that has none yet. */
int queue_spool_identity(struct queue *q, char out[33]);

/* ------------------------------------------------------------ cursors */

/* A consumer of the event log (the engine's JSON-lines file; webhooks and
 * accounting later) keeps a named cursor in the spool: the seq of the last
 * event it has handed on.  It reads the events after its cursor
 * (queue_events_from(q, cursor + 1, ...)), hands them on, then saves the
 * new cursor; after a crash it resumes after the last saved seq, so no
 * event is lost and what it hands on again carries the same seq.  name:
 * 1..QUEUE_MAX_CURSOR_NAME bytes of a-z, 0-9, '.', '_', '-', starting with
 * a letter or digit (cursor.c). */
#define QUEUE_MAX_CURSOR_NAME 32

/* The saved seq of cursor name: 0 and QUEUE_ENOTFOUND if never saved. */
int queue_cursor_get(struct queue *q, const char *name, uint64_t *seq);

/* Save cursor name at seq through the writer; cb runs as for the other
 * queue_submit_*() (the save joins the current commit group). */
int queue_submit_cursor(struct queue *q, const char *name, uint64_t seq,
                        struct queue_completer *cmp, queue_done_cb cb,
                        void *arg);

/* The synchronous form: returns once the save has committed (not from a
 * completion callback on the writer thread). */
int queue_cursor_put(struct queue *q, const char *name, uint64_t seq);

/* Counters kept per campaign, account and domain. */
struct queue_counts {
    uint64_t queued;       /* deliveries not yet in a terminal state */
    uint64_t enqueued;     /* deliveries ever enqueued */
    uint64_t delivered;
    uint64_t deferred;     /* deferral events (one delivery may defer often) */
    uint64_t bounced;
    uint64_t expired;
    uint64_t suppressed;   /* ended unsent: on a suppression list */
    uint64_t cancelled;    /* ended unsent: campaign cancelled */
};
int queue_counts_campaign(struct queue *q, uint64_t campaign,
                          struct queue_counts *c);
int queue_counts_account(struct queue *q, uint32_t account,
                         struct queue_counts *c);
int queue_counts_domain(struct queue *q, const char *domain,
                        struct queue_counts *c);
int queue_counts_total(struct queue *q, struct queue_counts *c);

/* Call cb for each domain with its counters, in domain-name order; cb
 * returns non-zero to stop.  Returns the number of domains visited. */
long queue_domains(struct queue *q,
                   int (*cb)(void *arg, const char *domain,
                             const struct queue_counts *c),
                   void *arg);

/* ------------------------------------------------------------ controls */

/* Pauses set by an admin, stored in the spool so they outlive the engine.
 * A paused domain or site keeps its mail queued; the engine does not send
 * to it until it is resumed.  Controls arrived with schema version 2: a
 * read-only open of a version-1 spool sees none, a writable open upgrades
 * the spool. */
enum queue_ctl_kind {
    QUEUE_CTL_DOMAIN = 'd',
    QUEUE_CTL_SITE = 's',
    QUEUE_CTL_CAMPAIGN = 'c',    /* name: campaign id; paused */
    QUEUE_CTL_CANCELLED = 'x',   /* name: campaign id; cancelled for good */
};

#define QUEUE_MAX_CTL_NAME 255   /* domain or site name */
#define QUEUE_MAX_CTL_REASON 255 /* free text, cut to the cap */
#define QUEUE_MAX_CTL_WHO 127    /* who paused it, cut to the cap */

/* One paused domain or site as stored. */
struct queue_control {
    int kind;              /* enum queue_ctl_kind */
    char name[QUEUE_MAX_CTL_NAME + 1];
    int64_t since;         /* unix seconds (spool clock) of the first pause */
    char reason[QUEUE_MAX_CTL_REASON + 1];
    char who[QUEUE_MAX_CTL_WHO + 1];
    int64_t until;         /* unix seconds the pause ends by itself; 0: it
                              lasts until resumed */
};

/* Whether c still holds at unix time now (it has no end, or its end is
 * later).  A pause past its end is still listed by queue_controls() (with
 * its until) until a pause or resume of the name replaces it, but holds
 * nothing: every reader asks this. */
int queue_control_active(const struct queue_control *c, int64_t now);

/* Pause a domain or site.  Synchronous: returns after the change has
 * committed (through the writer; not from a completion callback on the
 * writer thread).  name: 1..255 bytes, no upper-case ASCII, no space or
 * control characters.  reason and who may be NULL; they are cut to their
 * caps on a UTF-8 character boundary and must hold no control characters.
 * Pausing what is already paused replaces reason and who and keeps since.
 * Errors: -EINVAL (kind, name, reason or who), -EROFS (read-only open),
 * QUEUE_ESHUTDOWN, or a write failure. */
int queue_pause(struct queue *q, int kind, const char *name,
                const char *reason, const char *who);

/* queue_pause() of a domain or site that ends by itself at unix time
 * until (> 0; the engine resumes it then, within a second).  A later
 * queue_pause() without an end makes it last; -EINVAL for another kind. */
int queue_pause_until(struct queue *q, int kind, const char *name,
                      const char *reason, const char *who, int64_t until);

/* Resume a paused domain or site (same rules for kind and name).  Returns
 * QUEUE_ENOTFOUND, and changes nothing, if it was not paused. */
int queue_resume(struct queue *q, int kind, const char *name);

/* Call cb for each paused entry in (kind, name) order; the record is valid
 * only during the call and cb returns non-zero to stop.  Returns the number
 * of entries passed to cb or a negative code (QUEUE_ECORRUPT for a record
 * that does not decode).  Works on read-only opens. */
long queue_controls(struct queue *q,
                    int (*cb)(void *arg, const struct queue_control *c),
                    void *arg);

/* The ready time at which the engine parks a paused campaign's mail:
 * beyond any real date, one key range per campaign.  Removing the
 * campaign's QUEUE_CTL_CAMPAIGN control (queue_resume) or setting
 * QUEUE_CTL_CANCELLED moves its parked mail back to now in the same
 * transaction. */
int64_t queue_park_time(uint64_t campaign);

/* The ready time at which the engine parks the mail of a disabled account
 * (or of a sub-account of a disabled master): beyond any real date and
 * every campaign's park time, one per account.  Enabling an account moves
 * the parked mail of every account no longer held back to now in the same
 * transaction (queue_account_update); an outcome that parks the mail of
 * an account not held any more makes it due now instead. */
int64_t queue_account_park_time(uint32_t account);

/* The controls generation: a number that changes (grows) whenever a pause
 * or resume commits, 0 on a spool never paused.  One read transaction: an
 * engine may poll it every second and call queue_controls() only when it
 * changed.  Changes committed by other processes are seen too. */
int queue_controls_gen(struct queue *q, uint64_t *gen);

/* ------------------------------------------------- checking and salvage */

/* LMDB keeps no checksums: damage shows only when a page is read, and
 * reading it may fault.  queue_check() and queue_salvage() read in a child
 * process of their own (fork), so a fault ends nothing but that walk: the
 * caller must be free to fork (not in the middle of a threaded loop's
 * work; sluiced checks before it starts its threads).  They are safe
 * beside a running engine: they read one snapshot (a new one only after
 * damage forced the walk to start over). */

/* What a check or salvage reports: kind QUEUE_REPORT_PROBLEM (damage or a
 * broken invariant; a lost record in salvage) or QUEUE_REPORT_NOTE (what
 * it could not do, what it repaired); db is a database name, or "file",
 * "freelist" or "main" for LMDB's own structures; key is printable. */
enum { QUEUE_REPORT_PROBLEM = 1, QUEUE_REPORT_NOTE = 2 };
typedef void (*queue_report_cb)(void *arg, int kind, const char *db,
                                const char *key, const char *what);

#define QUEUE_CHECK_DBS 24
struct queue_check_db {
    char name[16];
    uint64_t records;      /* records read */
    uint64_t problems;     /* problems found in it (also those not passed
                              to the callback past its cap) */
    uint64_t copied;       /* salvage: records written to the new spool */
};
struct queue_check_report {
    uint64_t records, problems, notes;
    size_t ndb;
    struct queue_check_db db[QUEUE_CHECK_DBS];
    int fatal_signal;      /* the walk died of this signal anyway, 0 none */
    /* salvage only: queued recipients whose message was lost and were
     * ended as expired, and queued deliveries known (from the ready
     * index) but unreadable */
    uint64_t ended_no_message, lost_queued;
};

enum queue_check_flags {
    /* structure only: every database, page and record is read and
     * decoded, but records are not compared with each other */
    QUEUE_CHECK_QUICK = 1 << 0,
};

/* Walk every database of the spool in DIR and every record: LMDB's free
 * list and main database, each record against its layout (decoded as the
 * library reads it), and unless QUEUE_CHECK_QUICK the spool's invariants:
 * every queued delivery in the ready index and every ready entry a queued
 * delivery due then, every queued delivery's message stored and counted
 * in msgrefs, every event's delivery there, ids below the meta counters
 * that hand out the next ones, counters equal to what the rows count, the
 * audit chain unbroken.  cb (may be NULL) gets each problem (at most 200
 * per database; r counts them all).  Returns 0 when the spool was looked
 * at (r->problems says whether it is damaged; a spool LMDB cannot open at
 * all is one problem), or -ENOENT, QUEUE_EFOREIGN, QUEUE_ESCHEMA, -EACCES
 * when DIR is not a spool that can be checked, -errno when no process
 * could be started. */
int queue_check(const char *dir, unsigned flags, queue_report_cb cb,
                void *arg, struct queue_check_report *r);
/* The same, checking the MACs of keyed audit records with audit_key
 * (QUEUE_AUDIT_KEY bytes; NULL: as queue_check, which checks their links
 * but not their MACs and says so in a note). */
int queue_check_keyed(const char *dir, unsigned flags,
                      const unsigned char *audit_key, queue_report_cb cb,
                      void *arg, struct queue_check_report *r);

/* Copy every record of the spool in SRC that can be read and is well
 * formed into a new spool DST (which must not exist), then repair the
 * invariants in DST: the meta counters above every id, the ready index
 * rebuilt from the queued deliveries, message reference counts and
 * counters counted again from the rows, stored messages no recipient
 * needs any more dropped, and every queued recipient whose message was
 * lost ended with an "expired" event (reason "message lost in spool
 * salvage"), so that none is dropped unreported.  cb gets what was lost
 * (problems) and what was repaired (notes); r->db[] counts records read
 * and copied per database.  Returns 0 when DST was made (r->problems > 0
 * when something was lost), -EEXIST when DST exists, -ENOENT,
 * QUEUE_EFOREIGN or QUEUE_ESCHEMA for a SRC that is no spool, or the
 * error that kept DST from being written. */
int queue_salvage(const char *src, const char *dst, queue_report_cb cb,
                  void *arg, struct queue_check_report *r);

/* ------------------------------------------------------------- helpers */

/* The retry delay in seconds before attempt number `attempt + 1`, given
 * `attempt` failed attempts so far (attempt >= 1). */
uint32_t queue_retry_delay(const struct queue *q, unsigned attempt);

/* Drop the spool's mapped pages from this process's resident set (they
 * stay in the page cache).  The engine calls it periodically. */
void queue_trim_map(struct queue *q);

/* Check that ADDR is an acceptable recipient (local@domain, no control
 * characters, 8-bit octets only as well-formed UTF-8 (RFC 6531), within
 * caps).  Returns 0 or -EINVAL. */
int queue_check_rcpt(const char *addr);

#ifdef __cplusplus
}
#endif
#endif
