/*
 * check_int.h - what the spool check and salvage share (walk.c, rules.c,
 * tally.c, check.c, salvage.c).
 *
 * DESCRIPTION
 *   LMDB keeps no checksums: a damaged page is found only by reading it,
 *   and reading it may fault (SIGBUS past the end of a cut file, SIGSEGV
 *   through a garbage offset).  So every walk over a spool that may be
 *   damaged runs in a child process of its own (walk_child), where a fault
 *   guard turns a fault inside a guarded stretch into a jump back to the
 *   walk, which skips past the stretch it could not read and goes on.  The
 *   child reports to its parent over a pipe, one fixed-size message per
 *   write (atomic), so whatever it said before dying is kept.
 *
 *   rules.c knows what a well-formed record of each database looks like
 *   and decodes it with the library's own decoders; tally.c counts what
 *   the rows say the counters and message references must be.
 */
#ifndef SLUICE_QUEUE_CHECK_INT_H
#define SLUICE_QUEUE_CHECK_INT_H

#include <setjmp.h>
#include <sys/types.h>

#include "queue_int.h"

/* ------------------------------------------------------- fault guard */

/* The armed guard of this process (NULL: a fault kills it, as usual). */
extern sigjmp_buf *volatile qguard_at;

/* Send SIGBUS, SIGSEGV and SIGABRT to the armed guard.  Only in a
 * process of its own (walk_child's child). */
void qguard_install(void);

/* LMDB assertion callback (mdb_env_set_assert): an assertion that fails
 * on a damaged page jumps to the armed guard instead of aborting. */
void qguard_assert(MDB_env *env, const char *msg);

/* ------------------------------------------------------ child process */

/* One report from a walking child: written whole (under PIPE_BUF). */
enum walk_msg_kind {
    WM_PROBLEM = 1,   /* something is damaged or inconsistent */
    WM_NOTE,          /* something the walk could not do (not damage) */
    WM_DB_BEGIN,      /* the walk enters database db */
    WM_DB_END,        /* n[0] records read, n[1] problems, n[2] the count
                         its header claims, n[3] records written (salvage) */
    WM_COUNT,         /* a salvage count: what names it, n[0] the count */
    WM_ERROR,         /* the walk could not start: n[0] the negated code */
};
#define WM_DB_FILE 255    /* db index for the file as a whole */
#define WM_DB_FREE 254    /* LMDB's free-page list */
#define WM_DB_MAIN 253    /* LMDB's main database (the names of the others) */

struct walk_msg {
    uint8_t kind;
    uint8_t db;
    uint64_t n[4];
    char key[96];
    char what[200];
};

/* Name of a database index of a message ("file", "freelist", ...). */
const char *walk_db_name(int db);

/* Run fn(fd, arg) in a child process that reports through fd (write
 * whole struct walk_msg); on_msg(marg, m) sees each message in the parent.
 * Returns the child's exit status, 128 + signal if a signal ended it, or a
 * negative errno when the child could not be started. */
int walk_child(int (*fn)(int fd, void *arg), void *arg,
               void (*on_msg)(void *marg, const struct walk_msg *m),
               void *marg);

/* Write one message (in the child).  key and what may be NULL. */
void walk_send(int fd, int kind, int db, const char *key, const char *what,
               uint64_t n0, uint64_t n1, uint64_t n2, uint64_t n3);

/* ------------------------------------------------------------ walking */

#define WALK_KEY_MAX 511   /* LMDB's largest key */

/* A walk over one database in key order that survives damage: records
 * are copied out of the map under the fault guard and handed to record();
 * a stretch that cannot be read (an LMDB error, a fault, keys out of
 * order) is skipped by searching for the next key that can be reached
 * from the root, and reported to gap(). */
struct walk {
    MDB_env *env;
    MDB_dbi dbi;
    size_t vcap;             /* larger values reach record() as mv_data
                                NULL with their size */
    /* each record, in key order; non-zero stops the walk */
    int (*record)(struct walk *w, const MDB_val *k, const MDB_val *v);
    /* records after `after` (NULL: from the start) up to `resume`
     * (NULL: to the end) could not be read, because of why */
    void (*gap)(struct walk *w, const MDB_val *after, const MDB_val *resume,
                const char *why);
    void *arg;
    bool intkey;             /* keys are host-order integers (LMDB's
                                MDB_INTEGERKEY, as in its free-page list),
                                ordered as numbers, not as bytes */
    uint64_t records, gaps;
    /* private */
    unsigned char last[WALK_KEY_MAX];
    size_t last_len;
    bool have_last;
    unsigned char *vbuf;
    size_t vbuf_cap;
};

/* Walk w->dbi from its first key.  0, or a negative code when no read
 * transaction can be had at all. */
int walk_run(struct walk *w);
void walk_free(struct walk *w);

/* A read of one key under the fault guard, in *txn (renewed after an
 * error, so the caller's next read works).  0 found (v copied into buf of
 * cap bytes, v->mv_data NULL when larger), MDB_NOTFOUND, or a non-zero
 * code with why filled in. */
int walk_get(MDB_env *env, MDB_txn **txn, MDB_dbi dbi, const MDB_val *k,
             MDB_val *v, void *buf, size_t cap, char *why, size_t whycap);

/* ------------------------------------------------ check.c for salvage */

/* The parent's side of a walk: messages into a report and callbacks. */
struct collect {
    struct queue_check_report *r;
    queue_report_cb cb;
    void *arg;
    int err;                 /* from WM_ERROR: the walk could not start */
    int db;                  /* database being walked, -1 none */
};
void qcollect_msg(void *c, const struct walk_msg *m);
/* The child ended with status (walk_child's value): a death by a signal
 * becomes a problem in the database it was walking. */
void qcollect_end(struct collect *c, int status);

/* Repair the invariants of the salvaged spool in dir (repair.c),
 * reporting through col.  0 or the code of a failed write. */
int repair_spool(const char *dir, struct collect *col);

/* A spool opened with plain LMDB, read-only, in a walking child. */
struct raw {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    bool present[DB_COUNT];
    bool unopened[DB_COUNT]; /* expected, but LMDB could not open it */
};
/* Open DIR for walking, reporting through fd what is wrong with it (as
 * damage_kind: WM_PROBLEM for the check, WM_NOTE for salvage, where only
 * records lost are problems).  0 ready to walk, 1 nothing LMDB can walk
 * (reported), 2 not a spool to walk (WM_ERROR sent). */
int qraw_open(struct raw *s, const char *dir, int fd, int damage_kind);
void qraw_close(struct raw *s);

/* LMDB's two meta pages (metapage.c).  probe: *bad is -1 both intact, 0
 * or 1 the damaged one, 2 both; *psize the page size of an intact one.
 * copy_fixed: copy data file from to to (which must not exist) with meta
 * page bad replaced by the other.  0 or -errno. */
int metapage_probe(const char *path, int *bad, uint32_t *psize);
int metapage_copy_fixed(const char *from, const char *to, int bad,
                        uint32_t psize);

/* ------------------------------------------------------------- rules */

/* Whether a record of database db is well formed, decoding it with the
 * library's decoders: NULL if so, else the reason (in why, cap bytes). */
const char *rules_record(int db, const MDB_val *k, const MDB_val *v,
                         char *why, size_t cap);

/* Largest value a record of db may have. */
size_t rules_value_cap(int db);

/* A printable form of a key of db ("id 42", "due 1700000000 id 7", a
 * quoted name, hex otherwise). */
void rules_key_text(int db, const MDB_val *k, char *buf, size_t cap);

/* Ids handed out by a meta counter: records of db keyed prefix (0: none)
 * and a big-endian id of idlen bytes; every id must be below meta name. */
struct id_rule {
    int db;
    char prefix;
    size_t idlen;
    const char *meta;
};
extern const struct id_rule rules_ids[];
extern const size_t rules_nids;

/* The id of a key under rule r, 0 when the key is not of its form. */
uint64_t rules_id_of(const struct id_rule *r, const MDB_val *k);

/* ------------------------------------------------------------- tallies */

/* Counts the rows imply, by counter key ('t', 'a' account, 'c' campaign,
 * 'd' domain as in counters.c) and by message ('m' u64 id: references).
 * Bounded: past TALLY_MAX_KEYS keys it stops counting and says so. */
#define TALLY_MAX_KEYS (1u << 20)

struct tally;
struct tally *tally_new(void);
void tally_free(struct tally *t);
bool tally_full(const struct tally *t);

/* Count delivery d (its state and its counters' keys; its message's
 * reference when queued). */
void tally_delivery(struct tally *t, const struct queue_delivery *d);
/* Count a deferral event. */
void tally_deferral(struct tally *t, const struct queue_event *e);

/* The six counts under key (zeros if none), and mark the key seen. */
void tally_take(struct tally *t, const unsigned char *key, size_t klen,
                uint64_t c[CF_COUNT]);
/* Each key not taken yet: cb(arg, key, klen, counts). */
void tally_rest(struct tally *t,
                void (*cb)(void *arg, const unsigned char *key, size_t klen,
                           const uint64_t c[CF_COUNT]),
                void *arg);

#endif
