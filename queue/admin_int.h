/*
 * admin_int.h - what the admin_*.c files of queue/ share: the change
 * transaction, record packing and the record layouts.
 *
 * RECORD LAYOUTS (little-endian; strN = uN length then bytes, no NUL; every
 * record starts with a format byte: 1, or 2 for users with a login part)
 *   account  u8 fmt, u32 parent, u8 flags (1 disabled, 2 inherit_header,
 *            4 inherit_footer, 8 suppression_shared, 16 allow_unsigned),
 *            i64 created, u64 daily_cap, str8 name, str8 rate_cap,
 *            str16 header, str16 footer
 *   user     u8 fmt (2; 1 without the login part), u8 flags (1 disabled,
 *            2 totp), i64 created, 20 bytes TOTP secret (zero when off),
 *            str8 name, str8 pwhash; then the login part: i64 totp_step,
 *            u32 failures, i64 fail_since, i64 locked_until, u32 lockouts
 *   apikey   u8 fmt, u8 flags (1 revoked), u8 scope, u32 user, u32 account,
 *            i64 created, i64 revoked_at, 32 bytes SHA-256, str8 name
 *   sdomain  u8 fmt (2; 1 without the key dates), u8 flags (1 verified),
 *            u32 account, i64 created, i64 verified_at, u8 nsel, nsel x
 *            (str8 selector, str8 algo, str16 key_path, then in fmt 2:
 *            i64 created, i64 verified_at, i64 retire_at)
 *   audit    32 bytes prev link, body: u8 fmt, [fmt 2: 8 bytes key id],
 *            u64 seq, i64 time_ms, u8 role, u32 account, str8 user,
 *            str8 via, str8 action, str16 object, str8 result; then 32
 *            bytes own link: fmt 1 (unkeyed) SHA-256(prev link || body),
 *            fmt 2 (keyed) HMAC-SHA256(audit key, prev link || body)
 *   role     u8 role
 *   usage    u64 sent, u64 delivered, u64 bounced
 *   Every string is checked against its cap in queue_admin.h on decode.
 */
#ifndef SLUICE_QUEUE_ADMIN_INT_H
#define SLUICE_QUEUE_ADMIN_INT_H

#include "queue_admin.h"
#include "queue_int.h"

#define ADMIN_FMT 1

/* Big-endian u32 of a key. */
static inline uint32_t be32_get(const void *v)
{
    const unsigned char *p = v;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* The last audit record a change appended, exported once it commits
 * (admin_run); seq 0: none. */
struct audit_mark {
    uint64_t seq;
    int64_t time_ms;
    unsigned char link[QUEUE_AUDIT_HASH];
};

/* A change in progress: a nested transaction of the writer's group. */
struct admin_tx {
    struct queue *q;
    MDB_txn *txn;
    int64_t now_ms;
    int mdb_rc;              /* raw LMDB code of a failed call, 0 if none */
    char *detail;            /* failure text for the caller (256 bytes) */
    struct audit_mark *mark; /* the caller's, or NULL */
    struct wctx *w;          /* the writer's group (admin_event_append) */
    uint64_t nevents;        /* events appended by this change */
};

/* Append ev inside the change (incident.c): its seq follows the group's
 * events and is the group's once the change commits; 0 or a code. */
int admin_event_append(struct admin_tx *t, struct queue_event *ev);

/* Run fn(t, arg) as one change through the writer and wait for it.  fn
 * returns 0 to commit or a code to abort its nested transaction (nothing of
 * it is kept).  The detail fn sets reaches queue_last_detail(). */
int admin_run(struct queue *q, int (*fn)(struct admin_tx *t, void *arg),
              void *arg);

/* Record a failed LMDB call in t; returns the queue code. */
int admin_mdb(struct admin_tx *t, int rc);
/* Set t's failure text; returns err. */
int admin_fail(struct admin_tx *t, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append the audit record of the change in t (admin_audit.c) and bump the
 * admin generation (except for result other than "ok"). */
int admin_audit_put(struct admin_tx *t, const struct queue_actor *by,
                    uint32_t account, const char *action, const char *object,
                    const char *result);

/* ------------------------------------------------------------ audit */

#define AUDIT_FMT_PLAIN 1   /* link = SHA-256(prev || body) */
#define AUDIT_FMT_KEYED 2   /* link = HMAC-SHA256(key, prev || body) */

/* A handle's audit key and checkpoint (queue_audit_configure). */
struct audit_cfg {
    bool keyed;
    unsigned char key[QUEUE_AUDIT_KEY];
    unsigned char key_id[QUEUE_AUDIT_KEY_ID];
    char *checkpoint;        /* NULL: none */
    void (*warn)(void *arg, const char *text);
    void (*exported)(void *arg, uint64_t seq,
                     const unsigned char head[QUEUE_AUDIT_HASH]);
    void *arg;
};

/* The link a stored record value v (prev || body || link) should carry:
 * SHA-256 for an unkeyed one, HMAC with key for a keyed one.  False when
 * it cannot be computed (keyed and key NULL, or a value too short). */
bool qaudit_link(const MDB_val *v, bool keyed, const unsigned char *key,
                 unsigned char out[QUEUE_AUDIT_HASH]);
/* Append m's checkpoint line to q's checkpoint file (audit_key.c; a
 * failure goes to the handle's warn callback), then tell its exported
 * callback. */
void qaudit_export(struct queue *q, const struct audit_mark *m);
/* Read the head inside txn (admin_audit.c): last seq and link, present
 * false when none is stored; QUEUE_ECORRUPT when it does not decode. */
int qaudit_head_get(struct queue *q, MDB_txn *txn, uint64_t *seq,
                    unsigned char link[QUEUE_AUDIT_HASH], bool *present);

/* Read helpers: run fn inside a read transaction.  A database absent on a
 * read-only open of an older spool reads as empty: admin_absent(). */
int admin_read(struct queue *q, int (*fn)(MDB_txn *txn, void *arg),
               void *arg);
bool admin_absent(struct queue *q);
/* Refuse changes on a read-only open or an older spool. */
int admin_writable(struct queue *q);

/* Meta counters (u64 big-endian, as qmeta_get_u64) within a change. */
int admin_next_id(struct admin_tx *t, const char *name, uint32_t *id);

/* Checks (admin_tx.c). */
bool admin_name_ok(const char *s, size_t cap, bool user);
bool admin_text_ok(const char *s, size_t cap);
int admin_rate_check(const char *s);

/* Account lookups inside any txn (admin_accounts.c): the record by id,
 * unresolved (header/footer own text only). */
int qaccount_load(struct queue *q, MDB_txn *txn, uint32_t id,
                  struct queue_account *a);
int qaccount_master_id(struct queue *q, MDB_txn *txn, uint32_t *id);
int quser_load(struct queue *q, MDB_txn *txn, uint32_t id,
               struct queue_user *u);

/* Record decoders, also used by the spool check and salvage (check.c):
 * 0 (true for audit) when the value decodes, else QUEUE_ECORRUPT. */
int qaccount_decode(const MDB_val *v, uint32_t id, struct queue_account *a);
int quser_decode(const MDB_val *v, uint32_t id, struct queue_user *u);
int qapikey_decode(const MDB_val *v, uint32_t id, struct queue_apikey *k);
bool qaudit_decode(const MDB_val *v, struct queue_audit *r);
int qsdomain_decode(const MDB_val *k, const MDB_val *v,
                    struct queue_sdomain *d);

/* Sending domains inside a change (admin_domains.c, for admin_dkim.c):
 * read one (QUEUE_ENOTFOUND with the detail set), write one, and whether
 * s is a DKIM selector we accept: [a-z0-9][a-z0-9._-]*, no "..". */
int qsdomain_load(struct admin_tx *t, const char *domain,
                  struct queue_sdomain *d);
int qsdomain_store(struct admin_tx *t, const struct queue_sdomain *d);
bool qsdomain_selector_ok(const char *s);
int qusage_decode(const MDB_val *v, struct queue_usage *u);

/* ---------------------------------------------------- record packing */

struct rec_w {
    unsigned char *p;
    size_t len, cap;
    bool over;               /* a put did not fit */
};
struct rec_r {
    const unsigned char *p;
    size_t len, off;
    bool bad;                /* a get ran past the end or over a cap */
};

void qrec_w_u8(struct rec_w *w, unsigned v);
void qrec_w_u32(struct rec_w *w, uint32_t v);
void qrec_w_u64(struct rec_w *w, uint64_t v);
void qrec_w_bytes(struct rec_w *w, const void *b, size_t n);
/* A string with a 1- or 2-byte length (lenbytes), cut to cap bytes. */
void qrec_w_str(struct rec_w *w, const char *s, int lenbytes, size_t cap);

unsigned qrec_r_u8(struct rec_r *r);
uint32_t qrec_r_u32(struct rec_r *r);
uint64_t qrec_r_u64(struct rec_r *r);
void qrec_r_bytes(struct rec_r *r, void *b, size_t n);
/* Into dst (cap + 1 bytes); marks the record bad for a length over cap
 * or a NUL inside. */
void qrec_r_str(struct rec_r *r, char *dst, int lenbytes, size_t cap);
/* Whether the whole record was read, exactly, without faults. */
bool qrec_r_done(const struct rec_r *r);

/* Fill buf with n random bytes from the kernel (getrandom(2)): the token
 * secret and audit keys.  0 or -errno. */
int queue_random_bytes(unsigned char *buf, size_t n);

#endif
