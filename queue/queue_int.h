/*
 * queue_int.h - what the files of queue/ share among themselves.
 *
 * DESCRIPTION
 *   The spool handle, the write-operation record, the per-transaction write
 *   context, record encodings and the key layouts.  Nothing here is part of
 *   the public API (queue.h).
 *
 * KEY LAYOUTS (all integers big-endian so that LMDB's byte order is numeric)
 *   meta        string name -> value
 *   deliveries  u64 id -> delivery record (records.c)
 *   ready       u64 due (unix s) . u64 id -> empty
 *   messages    u64 id -> u16 from_len . from . raw message
 *   msgrefs     u64 id -> u32 deliveries not yet terminal
 *   events      u64 seq -> event record (records.c)
 *   counters    'c' u64 campaign | 'a' u32 account | 'd' domain | 't'
 *               -> struct queue_counts (host order, six u64)
 *               | 'b' u32 account . u32 day -> same record, fields 0 and
 *               1 policy and spam blocks (hygiene.c)
 *   controls    'p' kind ('d' or 's') . name -> i64 since . u8 reason_len
 *               . reason . u8 who_len . who        (schema 2, control.c)
 *               [. i64 until: a domain or site pause that ends by itself]
 *   meta "controls_gen" u64, bumped by every pause and resume (and by an
 *        admin bounce, queued.c)
 *   schema 3 (admin_int.h has the record layouts):
 *   accounts    'i' u32 id -> account record | 'n' name -> u32 id
 *   users       'i' u32 id -> user record | 'n' name -> u32 id
 *   roles       u32 user . u32 account -> u8 role
 *   apikeys     u32 id -> key record
 *   audit       u64 seq -> prev link . record . own link (admin_int.h)
 *   sdomains    domain -> sending domain record
 *   usage       u32 account . u32 day -> u64 sent, delivered, bounced (LE)
 *   meta "next_account", "next_user", "next_apikey" u64; "master" u64;
 *        "audit_head" u64 seq . 32-byte link; "admin_gen" u64
 *   schema 4 (campaigns.c has the record layouts):
 *   campaigns   'i' u64 id -> campaign record | 'p' u64 id -> send progress
 *               | 'n' u32 account . name -> u64 id
 *   meta "next_campaign" u64; "token_secret" 32 bytes
 *   meta "cursor." name u64: a consumer's last seq handed on (cursor.c)
 */
#ifndef SLUICE_QUEUE_INT_H
#define SLUICE_QUEUE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

/* ---------------------------------------------------------- databases */

enum queue_dbi {
    DB_META,
    DB_DELIVERIES,
    DB_READY,
    DB_MESSAGES,
    DB_MSGREFS,
    DB_EVENTS,
    DB_COUNTERS,
    DB_CONTROLS,    /* schema 2 */
    DB_ACCOUNTS,    /* schema 3: admin_*.c */
    DB_USERS,
    DB_ROLES,
    DB_APIKEYS,
    DB_AUDIT,
    DB_SDOMAINS,
    DB_USAGE,
    DB_LISTS,       /* schema 4: lists.c, contacts.c, suppress.c */
    DB_CONTACTS,
    DB_MEMBERS,
    DB_SUPPRESS,
    DB_CAMPAIGNS,   /* schema 4: campaigns.c */
    DB_SERIES,      /* schema 6: series.c (queue_series.h) */
    DB_COUNT
};

/* Name of each database, in enum order (schema.c). */
extern const char *const queue_db_names[DB_COUNT];

/* ------------------------------------------------------------- leases */

/* Set of delivery ids claimed by this process (lease.c).  Not locked:
 * the spool's claim mutex protects it. */
struct lease_set {
    uint64_t *slots;    /* 0 marks an empty slot; ids start at 1 */
    size_t cap;         /* power of two */
    size_t count;
};
int lease_add(struct lease_set *s, uint64_t id);
bool lease_has(const struct lease_set *s, uint64_t id);
bool lease_del(struct lease_set *s, uint64_t id);
void lease_free(struct lease_set *s);

/* --------------------------------------------------------- operations */

enum op_kind { OP_MESSAGE = 1, OP_CAMPAIGN, OP_OUTCOMES, OP_BARRIER,
               OP_CONTROL, OP_ADMIN, OP_FEEDBACK, OP_NOTE, OP_QUEUED };

struct admin_tx;
struct audit_mark;
struct audit_cfg;
/* Free a handle's audit configuration (audit_key.c); NULL is fine. */
void qaudit_cfg_free(struct audit_cfg *c);

/* One recipient of an enqueue, pointing into the op's arena. */
struct op_rcpt {
    uint64_t contact;
    uint32_t off;       /* offset of the address in the arena */
    uint16_t len;
    uint16_t at;        /* offset of '@' within the address */
};

/* One outcome with its strings in the op's arena. */
struct op_outcome {
    uint64_t delivery;
    int64_t retry_at;
    uint16_t code;
    uint8_t type;
    uint8_t category;
    uint32_t enhanced_off, mx_off, text_off;
    uint16_t enhanced_len, mx_len, text_len;
    uint32_t site_off;           /* the site, for the time series */
    uint16_t site_len;
};

/* A pause or resume; name, reason and who follow each other in the
 * op's arena. */
struct op_control {
    uint8_t kind;       /* QUEUE_CTL_DOMAIN or QUEUE_CTL_SITE */
    bool set;           /* pause (true) or resume */
    uint16_t name_len, reason_len, who_len;
    int64_t until;      /* a pause that ends then by itself; 0: never */
};

struct queue_op {
    struct queue_op *next;
    enum op_kind kind;
    unsigned weight;             /* items, for the group size */
    queue_done_cb cb;
    void *arg;
    struct queue_completer *cmp;
    int status;
    uint64_t first_id, msg_id;

    uint32_t account;
    uint64_t campaign;
    size_t n;                    /* recipients or outcomes */
    struct op_rcpt *rcpts;
    struct op_outcome *outcomes;
    char *arena;                 /* strings (and message bytes) */
    size_t arena_len;
    uint32_t from_off, from_len; /* OP_MESSAGE */
    uint32_t msg_off;            /* OP_MESSAGE */
    size_t msg_len;
    struct op_control ctl;       /* OP_CONTROL */
    /* OP_CAMPAIGN: first-attempt time (0: now); a campaign send batch
     * (campaign_send.c) also moves the campaign's cursor */
    int64_t due;
    bool send;
    uint64_t send_after, send_last, send_suppressed;
    /* OP_ADMIN: run in a nested txn of the group; may run more than once
     * (a group retried after map growth), so it must not keep state */
    int (*admin_fn)(struct admin_tx *t, void *arg);
    void *admin_arg;
    char *admin_detail;          /* caller's buffer for the failure text */
    struct audit_mark *admin_mark; /* caller's: the audit record appended */
    /* OP_FEEDBACK (feedback.c): outcomes[0] is the bounce (or names the
     * delivery of a complaint); the result goes to the caller's fb_result,
     * reset on every run of the op */
    int fb_kind;
    struct queue_feedback_result *fb_result;
    /* OP_MESSAGE through queue_submit_message_via(): the listener's name
     * for its reception event, "" for none (note.c) */
    char via[16];
};
void queue_op_free(struct queue_op *op);

/* Set the callback fields and pass the op to the writer; frees the op
 * when the writer refuses it (ops.c). */
int queue_op_submit(struct queue *q, struct queue_op *op,
                    struct queue_completer *cmp, queue_done_cb cb, void *arg);

/* --------------------------------------------------------- the spool */

struct queue {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    bool absent[DB_COUNT];       /* read-only open of an older schema
                                    lacks this database: read it as empty */
    char *dir;
    struct queue_options opt;
    bool readonly;

    /* Readers hold this shared; the writer holds it exclusive while it
     * changes the map size (LMDB wants no live transaction then). */
    pthread_rwlock_t maplock;
    uint64_t map_size;

    /* writer */
    pthread_t writer;
    bool writer_running;
    pthread_mutex_t mu;
    pthread_cond_t cond_work;    /* ops arrived or stopping */
    pthread_cond_t cond_space;   /* room in the pending list */
    pthread_cond_t cond_idle;    /* pending list drained */
    struct queue_op *head, *tail;
    unsigned pending;            /* weight of queued ops */
    unsigned inflight;           /* weight being committed */
    bool stopping;
    unsigned flushing;           /* queue_flush() callers waiting */
    unsigned urgent;             /* pending ops a client is waiting on */
    bool hurry;                  /* queue_hurry(): commit what is pending */
    uint64_t first_arrival_ms;   /* arrival of the oldest pending op */
    uint64_t commits, ops_committed, map_grows;
    struct queue_commit_stats commit_stats; /* stats.c, under mu */
    uint64_t last_sync_ms;
    uint64_t last_trim_ms;
    int last_mdb_rc;             /* raw LMDB code of the last txn failure */

    /* claims */
    int claim_fd;                /* flock'd lock file, -1 if not claiming */
    pthread_mutex_t claim_mu;
    struct lease_set leases;

    /* list hygiene (hygiene.c, writer thread only): hashes of addresses
     * that may have a soft-bounce streak, a superset, loaded on first use */
    uint64_t *streak_hash;
    size_t streak_cap, streak_count;
    bool streak_loaded;
    int64_t scan_due;            /* claim resumes from this due time */
    uint64_t scan_id;
    uint64_t scan_reset_ms;      /* last full scan of the ready index */
    int stale_readers;

    /* the audit key and checkpoint (queue_audit_configure), or NULL */
    struct audit_cfg *audit;

    /* the time series' writer state (series.c), or NULL; series_skip
     * while a group is retried without them on a full spool (writer.c),
     * series_skipped counts such groups */
    struct series_state *series;
    bool series_skip;
    uint64_t series_skipped;
};

/* A write transaction in progress with its running identifiers and the
 * counter changes it has gathered (counters.c). */
struct counter_delta;
struct wctx {
    struct queue *q;
    MDB_txn *txn;
    MDB_cursor *cur[DB_COUNT];
    uint64_t next_delivery, next_message, next_event;
    int64_t now;                 /* unix seconds at txn start */
    int64_t now_ms;
    struct counter_delta *deltas;
    size_t ndeltas, capdeltas;
    size_t *index;               /* open-addressing index into deltas */
    size_t capindex;
    /* what an outcome tells the time series about the event it appends
     * (series.c), or NULL */
    const struct series_hint *series_hint;
};

/* Time series (series.c): the writer counts each event and each
 * recipient queued; series_flush() writes the buckets before commit. */
struct series_hint {
    uint64_t delivery;           /* the event's delivery */
    int64_t created;             /* its first due time (unix s) */
    uint64_t ref;                /* its stored message (injected mail) */
    bool attempt;                /* this outcome was an SMTP attempt */
    const char *site;            /* the engine's site, or NULL */
    size_t site_len;
};
int series_event(struct wctx *w, const struct queue_event *ev);
int series_queued(struct wctx *w, uint32_t account, uint64_t campaign,
                  uint64_t ref);
/* A campaign send batch that left n suppressed contacts out. */
int series_suppressed_at_send(struct wctx *w, uint32_t account,
                              uint64_t campaign, uint64_t n);
int series_flush(struct wctx *w);
void series_reset(struct queue *q);
void series_free(struct queue *q);
/* Delete up to max (0: all) buckets past the periods in txn; the number
 * deleted, or a negated LMDB code. */
/* A bucket's counts to and from their stored form (nonzero slots as
 * slot byte + LEB128); decode: 0 or QUEUE_ECORRUPT (counts so far kept). */
size_t qseries_encode(const uint64_t *c, unsigned char *out);
int qseries_decode(const unsigned char *p, size_t len, uint64_t *c);
long series_prune_txn(struct queue *q, MDB_txn *txn, int64_t now, size_t max);

/* ------------------------------------------------------------ helpers */

/* park.c: move campaign's parked ready entries back to now in txn;
 * returns 0 or an LMDB code */
int qpark_unpark_campaign(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t campaign, uint64_t *moved);
/* park.c: move delivery id (d, its decoded row) and a new ready entry
 * of it to now in txn; the caller has deleted its old entry.  0 or an
 * LMDB code */
int qpark_move_to_now(struct queue *q, MDB_txn *txn, int64_t now,
                      uint64_t id, const struct queue_delivery *d);
/* park.c: move every other ready entry of campaign due later than now
 * (scheduled, deferred, held; not parked) to now in txn, for a cancel */
int qpark_hasten_campaign(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t campaign, uint64_t *moved);
/* park.c: move the parked mail of every account no longer held
 * (qaccount_held) back to now in txn, for an enable; 0 or an LMDB code */
int qpark_unpark_accounts(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t *moved);
/* park.c: move one entry parked at `at` (a campaign's or an account's
 * park time) to now in txn, the first whose recipient is at domain (NULL
 * or "": the first); *d gets its delivery.  MDB_NOTFOUND when none is
 * found within QPARK_PROBE_SCAN entries, else 0 or an LMDB code. */
#define QPARK_PROBE_SCAN 100000
int qpark_unpark_one(struct queue *q, MDB_txn *txn, int64_t now, int64_t at,
                     const char *domain, struct queue_delivery *d);
/* admin_accounts.c: is the account's mail held: the account disabled, or
 * its master?  (An unknown account or a record that does not decode: no.) */
bool qaccount_held(struct queue *q, MDB_txn *txn, uint32_t account);
/* is the campaign still paused (its QUEUE_CTL_CAMPAIGN control set)? */
bool qpark_still_wanted(struct queue *q, MDB_txn *txn, uint64_t campaign);
/* is the campaign cancelled (its QUEUE_CTL_CANCELLED control set)? */
bool qcampaign_cancelled(struct queue *q, MDB_txn *txn, uint64_t campaign);

int queue_err_mdb(int rc);            /* LMDB/errno code -> queue code */
/* err of a failed write txn of q, with an EIO on a filesystem that has
 * (almost) no space left made QUEUE_EFULL */
int queue_err_commit(const struct queue *q, int err);
bool queue_err_txn_fatal(int rc);     /* does rc leave the txn unusable */
void queue_set_detail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

uint64_t queue_now_ms(void);

/* big-endian keys */
static inline void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}
static inline uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void be32_put(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* Read transactions (spool.c): begin under the map lock, end releasing it. */
int queue_read_begin(struct queue *q, MDB_txn **txn);
/* The writer's per-commit delta tables (counters.c, series.c): a key's
 * hash (FNV-1a), and an open-addressing index of positions + 1 grown to
 * twice its size (first_cap at first) and rebuilt from the n entries at
 * base, whose uint64_t hash lies hash_off bytes into each stride-byte
 * entry.  0 or -ENOMEM (the old index kept). */
uint64_t qkey_hash(const unsigned char *p, size_t n);
int qkey_index_grow(size_t **index, size_t *cap, size_t first_cap,
                    const void *base, size_t n, size_t stride,
                    size_t hash_off);
/* Call cb for each meta record whose key begins with prefix (plen bytes),
 * in key order, in one read transaction (read.c).  cb returns 0 to go
 * on, > 0 to stop, < 0 to stop with that code.  0 or a negative code. */
int qmeta_prefix_walk(struct queue *q, const char *prefix, size_t plen,
                      int (*cb)(void *arg, const MDB_val *k,
                                const MDB_val *v),
                      void *arg);
void queue_read_end(struct queue *q, MDB_txn *txn);

/* Map growth and write transactions (spool.c). */
int spool_grow(struct queue *q);
int spool_write_begin(struct queue *q, MDB_txn **txn);
int64_t spool_now(const struct queue *q);

/* Schema (schema.c): open or create every database and check the meta
 * records inside TXN. */
int schema_open(struct queue *q, MDB_txn *txn, bool create);
int qmeta_get_u64(struct queue *q, MDB_txn *txn, const char *name,
                  uint64_t *v);
/* Schema version that introduced database db. */
uint32_t schema_db_since(int db);
int qmeta_put_u64(struct queue *q, MDB_txn *txn, const char *name,
                  uint64_t v);

/* Records (records.c). */
#define DELIVERY_FIXED 50        /* format 1 (records.c) */
/* a delivery record's largest size in any format: 18 fixed bytes, five
 * varints (at most 5 + 3 x 10 + 2 bytes), the address */
#define DELIVERY_REC_MAX (64 + QUEUE_MAX_RCPT)
#define EVENT_FIXED 50
/* The records' varints (LEB128: 7 bits a byte, low first, the high bit
 * on all but the last; at most 10 bytes): qvar_put writes v at p and
 * returns the end; qvar_get reads one from *p (before end), false when
 * it runs past end or over 64 bits. */
unsigned char *qvar_put(unsigned char *p, uint64_t v);
bool qvar_get(const unsigned char **p, const unsigned char *end,
              uint64_t *v);
size_t qdelivery_encode(unsigned char *buf, const struct queue_delivery *d);
int qdelivery_decode(const MDB_val *v, uint64_t id, struct queue_delivery *d);
size_t qevent_encode(unsigned char *buf, size_t cap,
                     const struct queue_event *e);
int qevent_decode(const MDB_val *v, uint64_t seq, struct queue_event *e);
/* Append ev to the events database in w's txn (note.c): ev->seq and
 * ev->time_ms are set from w; 0 or a txn failure. */
int qevent_append(struct wctx *w, struct queue_event *ev);
/* The reception event of a message op just applied (note.c). */
int qnote_reception(struct wctx *w, const struct queue_op *op,
                    uint64_t first_delivery, const char *rcpt);
int queue_op_apply_note(struct wctx *w, struct queue_op *op);
const char *qrcpt_domain(const char *rcpt);

/* Writer (writer.c). */
int writer_start(struct queue *q);
void writer_stop(struct queue *q);
int writer_submit(struct queue *q, struct queue_op *op);

/* Apply one op inside ctx's transaction (ops.c, outcome.c).  Returns 0,
 * a per-op failure that left nothing written, or a txn-fatal code. */
int queue_op_apply_message(struct wctx *w, struct queue_op *op);
int queue_op_apply_campaign(struct wctx *w, struct queue_op *op);
int queue_op_apply_outcomes(struct wctx *w, struct queue_op *op);
int queue_op_apply_control(struct wctx *w, struct queue_op *op);
int queue_op_apply_admin(struct wctx *w, struct queue_op *op);
int queue_op_apply_feedback(struct wctx *w, struct queue_op *op);
/* OP_QUEUED (queued.c): one batch of a retry or an admin bounce; the
 * caller's job is admin_arg */
int queue_op_apply_queued(struct wctx *w, struct queue_op *op);

/* Where an outcome comes from, for the suppression it may cause: the
 * entry's source and, back, whether it suppressed (QUEUE_FEEDBACK_*
 * SUPPRESSED).  sluiced's outcomes pass NULL: source "smtp". */
struct hygiene_via {
    const char *source;
    int suppressed;
};

/* Build an OP_OUTCOMES op of n checked outcomes (outcome.c); 0, -EINVAL
 * or -ENOMEM. */
int qoutcome_op_new(struct queue_op **out, const struct queue_outcome *o,
                    size_t n);
/* Apply one outcome of op in w's txn (outcome.c).  A failure of the
 * outcome alone (nothing written) goes to *status: QUEUE_ENOTFOUND,
 * QUEUE_ESTATE (terminal already), QUEUE_ECORRUPT; returns non-zero only
 * for transaction failures. */
int qoutcome_apply(struct wctx *w, const struct queue_op *op,
                   const struct op_outcome *o, struct hygiene_via *via,
                   int *status);

/* Submit op and wait for its group to commit; returns its status
 * (sync.c). */
int sync_submit_wait(struct queue *q, struct queue_op *op);

/* Check and queue a pause (set) or resume; cb runs as for queue_submit_*
 * (control.c, waited for in sync.c). */
int control_submit(struct queue *q, int kind, const char *name,
                   const char *reason, const char *who, bool set,
                   int64_t until, queue_done_cb cb, void *arg);

/* Decode a controls record (control.c); QUEUE_ECORRUPT if it does not
 * fit. */
int control_decode(const MDB_val *k, const MDB_val *v,
                   struct queue_control *c);

/* Record a failed LMDB call in a write txn; returns the queue code. */
static inline int wctx_fail(struct wctx *w, int rc)
{
    w->q->last_mdb_rc = rc;
    return queue_err_mdb(rc);
}

/* Enqueue one delivery row and its ready entry (ops.c). */
int qenqueue_delivery(struct wctx *w, uint32_t account, uint64_t campaign,
                      uint64_t ref, const char *rcpt, size_t len, size_t at,
                      uint64_t *id);

/* Build an OP_CAMPAIGN op of n checked recipients (n may be 0 only when
 * allow_empty); 0 or -EINVAL / QUEUE_ETOOBIG / -ENOMEM (ops.c). */
int qcampaign_op_new(struct queue_op **out, uint32_t account,
                     uint64_t campaign, const struct queue_campaign_rcpt *rcpts,
                     size_t n, bool allow_empty);

/* For a send batch: check and advance the campaign's cursor in w's txn and
 * set op->account and op->due from the campaign; sets op->status (nothing
 * written) when the batch must not apply (campaign_send.c). */
int qcampaign_send_step(struct wctx *w, struct queue_op *op);

/* Set (pause) or clear a control record inside txn and bump
 * "controls_gen" (control.c).  Returns 0, QUEUE_ENOTFOUND when clearing
 * what is not set (nothing written), -EINVAL, or a raw LMDB code (> 0). */
int control_put_txn(struct queue *q, MDB_txn *txn, int64_t now, int kind,
                    const char *name, const char *reason, const char *who,
                    bool set);
/* The same with an end time for a pause (0: until resumed). */
int control_put_until_txn(struct queue *q, MDB_txn *txn, int64_t now,
                          int kind, const char *name, const char *reason,
                          const char *who, bool set, int64_t until);

/* Counter deltas (counters.c). */
enum counter_field { CF_QUEUED, CF_ENQUEUED, CF_DELIVERED, CF_DEFERRED,
                     CF_BOUNCED, CF_EXPIRED, CF_SUPPRESSED, CF_CANCELLED,
                     CF_COUNT };
/* Counts in a counter record written before schema 5 (no suppressed,
 * cancelled): such a record reads with those two as 0. */
#define CF_COUNT_V4 6
/* A counter record into c[CF_COUNT] (missing trailing counts 0); 0, or
 * QUEUE_ECORRUPT for a value of neither size (counters.c). */
int qcounts_load(const MDB_val *v, uint64_t c[CF_COUNT]);
int counters_add(struct wctx *w, uint32_t account, uint64_t campaign,
                 const char *domain, size_t dlen, enum counter_field f,
                 int64_t by);
int counters_flush(struct wctx *w);
/* Usage of an account on a UTC day (admin_usage.c keys; flushed to the
 * usage database by counters_flush). */
int qusage_add(struct wctx *w, uint32_t account, uint32_t day,
               unsigned sent, unsigned delivered, unsigned bounced);
/* Policy and spam blocks of an account on a UTC day: counters record
 * 'b' u32 account . u32 day, fields 0 and 1 (hygiene.c reads them). */
int qblocks_add(struct wctx *w, uint32_t account, uint32_t day,
                unsigned policy, unsigned spam);
/* List hygiene for one outcome of a delivery (hygiene.c): suppressions,
 * soft-bounce streaks and block counts in w's txn; via as for
 * qoutcome_apply (may be NULL); 0 or txn-fatal. */
int hygiene_outcome(struct wctx *w, uint32_t account, const char *rcpt,
                    int type, int category, struct hygiene_via *via);
/* Whether a bounce of category suppresses at once (hard bounce). */
bool hygiene_hard(int category);
/* Put rcpt on the list account uses (its own or its master's), added by
 * account, reason "hard bounce: CATEGORY" for a hard bounce (category)
 * or "complaint" (category QUEUE_CAT_NONE), and end its soft-bounce
 * streak; an entry there stays as it is.  0 or txn-fatal. */
int hygiene_suppress(struct wctx *w, uint32_t account, const char *rcpt,
                     int category, struct hygiene_via *via);
void hygiene_free(struct queue *q);
void counters_reset(struct wctx *w);
void counters_free(struct wctx *w);

/* Claims (claim.c): drop the leases of committed outcome ops. */
void claim_release_op(struct queue *q, const struct queue_op *op);

/* Writer statistics (stats.c): a monotonic clock in microseconds, and a
 * commit group's time counted (under q->mu). */
uint64_t qstats_now_us(void);
void qstats_commit(struct queue *q, uint64_t us);

/* Completions (completer.c). */
void completer_push(struct queue_completer *c, struct queue_op *op);

#endif
