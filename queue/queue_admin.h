/*
 * queue_admin.h - accounts, users, roles, API keys, sending domains, the
 * audit trail and per-account usage, kept in the spool (schema 3).
 *
 * DESCRIPTION
 *   Accounts: one master and its sub-accounts (one level deep: a
 *   sub-account's parent is always the master).  Account id 0 means "no
 *   account" (raw injection before accounts existed) and is never stored.
 *   The id of an account is the `account` carried by its deliveries
 *   (struct queue_claim).
 *
 *   Users hold one role per account.  A role on the master applies to every
 *   sub-account unless the user has a role set on the sub-account itself:
 *   that override wins even when it is lower.  Passwords and API key secrets
 *   are hashed by the caller (the tool); the spool keeps only the hashes.
 *
 *   Every change below is one write transaction through the spool's writer
 *   that also appends its audit record, so a change never commits without
 *   its record.  Records are chained: record n stores the link of record
 *   n-1 and its own link, HMAC-SHA256(key, prev || body) when the handle
 *   holds the audit key (queue_audit_configure), else SHA-256(prev ||
 *   body) (an unkeyed trail, or the part of a trail written before a key
 *   was set); the meta database keeps the head (last seq and link), so
 *   removing, altering, reordering or cutting off records is found by
 *   queue_audit_verify(), and with the key a writer of the spool who does
 *   not hold it cannot recompute the links after an edit.  Each append
 *   also writes its (seq, link) to the handle's checkpoint file, kept
 *   outside the spool, so that even a holder of the key cannot rewrite
 *   the trail up to an exported checkpoint unseen.
 *   Changes need a writable open; reads work on read-only opens (a
 *   read-only open of a schema-1 or -2 spool sees no admin data).
 *
 *   Usage: per account and UTC day, counted in the outcome transaction
 *   (queue_submit_outcomes) for deliveries whose account is not 0:
 *     sent      +1 per delivered or bounced event: once per recipient,
 *               however many attempts it took (README "Definitions");
 *     delivered +1 per delivered event;
 *     bounced   +1 per bounced event (with or without an SMTP code).
 *   Expired events and postponements count nothing.  The master's bill is
 *   its own usage plus that of its sub-accounts (queue_usage_rollup()).
 *
 * OWNERSHIP
 *   Strings passed in are copied; structs handed to callbacks are valid only
 *   during the call.  Output structs are filled by copy.
 *
 * DIAGNOSTICS
 *   0 or a negative code as in queue.h: -EINVAL for invalid input (with a
 *   queue_last_detail() line saying what), -EEXIST for a duplicate name,
 *   QUEUE_ENOTFOUND for an unknown id or name, -EPERM for a change the data
 *   model forbids (a second master, inheriting on the master), -EROFS on a
 *   read-only open, QUEUE_ECORRUPT for a record that does not decode.
 */
#ifndef SLUICE_QUEUE_ADMIN_H
#define SLUICE_QUEUE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caps (bytes, without the terminating NUL). */
#define QUEUE_MAX_ACCOUNT_NAME 63   /* [a-z0-9][a-z0-9._-]{0,62} */
#define QUEUE_MAX_USER_NAME 64      /* [a-z0-9][a-z0-9._@-]{0,63} */
#define QUEUE_MAX_ACCOUNT_TEXT 8192 /* header or footer text */
#define QUEUE_MAX_RATE_CAP 31       /* "N/s", "N/min", "N/h", "N/day" */
#define QUEUE_MAX_PWHASH 127        /* crypto_pwhash_str() output */
#define QUEUE_TOTP_SECRET 20        /* RFC 6238 HMAC-SHA1 secret */
#define QUEUE_MAX_KEY_NAME 63       /* API key label */
#define QUEUE_APIKEY_HASH 32        /* SHA-256 of the key's secret */
#define QUEUE_MAX_DOMAIN 253
#define QUEUE_MAX_SELECTOR 63
#define QUEUE_MAX_ALGO 15           /* "rsa", "ed25519" */
#define QUEUE_MAX_KEY_PATH 1023
#define QUEUE_MAX_SELECTORS 4       /* DKIM selectors per sending domain */
#define QUEUE_MAX_AUDIT_USER 80
#define QUEUE_MAX_AUDIT_VIA 63    /* "uid:0 sudo:alice" */
#define QUEUE_MAX_AUDIT_ACTION 31
#define QUEUE_MAX_AUDIT_OBJECT 255
#define QUEUE_MAX_AUDIT_RESULT 127
#define QUEUE_AUDIT_HASH 32
#define QUEUE_AUDIT_KEY 32          /* bytes of an audit key */
#define QUEUE_AUDIT_KEY_ID 8        /* bytes naming the key of a record */

/* ----------------------------------------------------------------- roles */

/* Roles in rising order of power; a higher role can do all a lower can. */
enum queue_role {
    QUEUE_ROLE_NONE = 0,
    QUEUE_ROLE_VIEWER = 1,   /* read-only */
    QUEUE_ROLE_SENDER = 2,   /* + send existing campaigns, inject */
    QUEUE_ROLE_MANAGER = 3,  /* + lists, campaigns, suppressions, domains */
    QUEUE_ROLE_ADMIN = 4,    /* + users, roles, sub-accounts, keys, domains */
    QUEUE_ROLE_OWNER = 5,    /* everything */
};
/* "none", "viewer", ... "owner"; queue_role_parse() returns -EINVAL for an
 * unknown name. */
const char *queue_role_name(int role);
int queue_role_parse(const char *name);

/* Who makes a change, as written into its audit record: a user name (or
 * "(bootstrap)"), how they proved it ("password", "apikey:7", "uid:0"),
 * the role they act with, and the account they act through, which is the
 * record's account for changes not tied to one account (users, TOTP; 0:
 * spool-wide).  Strings are cut to their caps. */
struct queue_actor {
    const char *user;
    const char *via;
    int role;
    uint32_t account;
};

/* -------------------------------------------------------------- accounts */

struct queue_account {
    uint32_t id;
    uint32_t parent;            /* 0 for the master */
    char name[QUEUE_MAX_ACCOUNT_NAME + 1];
    bool disabled;
    int64_t created;            /* unix seconds (spool clock) */
    bool inherit_header;        /* header below is the master's */
    bool inherit_footer;
    bool suppression_shared;    /* uses the master's suppression list */
    bool allow_unsigned;        /* may send without a DKIM key */
    uint64_t daily_cap;         /* messages per UTC day, 0: none */
    char rate_cap[QUEUE_MAX_RATE_CAP + 1]; /* "" none */
    /* resolved when read: */
    uint32_t master;            /* the master's id (own id on the master) */
    uint32_t suppression_owner; /* own id, or the master's when shared */
    char header[QUEUE_MAX_ACCOUNT_TEXT + 1]; /* own text or, inherited, the
                                                master's */
    char footer[QUEUE_MAX_ACCOUNT_TEXT + 1];
};

/* Fields of an account to set at creation or change in an update: only
 * those whose QUEUE_AC_* bit is in `set`. */
enum queue_account_field {
    QUEUE_AC_HEADER = 1 << 0,   /* header (own text; NULL or "" none) */
    QUEUE_AC_FOOTER = 1 << 1,
    QUEUE_AC_INHERIT_HEADER = 1 << 2, /* inherit_header (true drops own) */
    QUEUE_AC_INHERIT_FOOTER = 1 << 3,
    QUEUE_AC_SUPPRESSION = 1 << 4,
    QUEUE_AC_DAILY_CAP = 1 << 5,
    QUEUE_AC_RATE_CAP = 1 << 6,
    QUEUE_AC_ALLOW_UNSIGNED = 1 << 7,
    QUEUE_AC_DISABLED = 1 << 8,
};
struct queue_account_change {
    unsigned set;
    const char *header, *footer;
    bool inherit_header, inherit_footer;
    bool suppression_shared;
    uint64_t daily_cap;
    const char *rate_cap;       /* checked like the engine's max_rate */
    bool allow_unsigned;
    bool disabled;
};

/* Create an account.  parent 0 makes the master when none exists yet, and
 * else a sub-account of the master; a non-zero parent must be the master.
 * A sub-account inherits header and footer and shares the master's
 * suppression list unless init says otherwise; the master can do neither
 * (-EPERM).  init may be NULL.  -EEXIST for a name in use. */
int queue_account_create(struct queue *q, const char *name, uint32_t parent,
                         const struct queue_account_change *init,
                         const struct queue_actor *by, uint32_t *id);

/* Change the fields selected in c->set. */
int queue_account_update(struct queue *q, uint32_t id,
                         const struct queue_account_change *c,
                         const struct queue_actor *by);

/* One account by id or by name, resolved (QUEUE_ENOTFOUND if none). */
int queue_account_get(struct queue *q, uint32_t id, struct queue_account *a);
int queue_account_find(struct queue *q, const char *name,
                       struct queue_account *a);

/* The master's id, or 0 when no account exists yet. */
int queue_account_master(struct queue *q, uint32_t *id);

/* Call cb for each account in id order (the master first), resolved; cb
 * returns non-zero to stop.  Returns the number visited or a code. */
long queue_accounts(struct queue *q,
                    int (*cb)(void *arg, const struct queue_account *a),
                    void *arg);

/* ---------------------------------------------------------- users, roles */

struct queue_user {
    uint32_t id;
    char name[QUEUE_MAX_USER_NAME + 1];
    bool disabled;
    int64_t created;
    char pwhash[QUEUE_MAX_PWHASH + 1];  /* "" : no password login */
    bool totp;
    unsigned char totp_secret[QUEUE_TOTP_SECRET];
    struct queue_login {        /* password logins (queue_user_login_*) */
        int64_t totp_step;      /* last accepted TOTP time step, 0 none */
        uint32_t failures;      /* failed logins in the current window */
        int64_t fail_since;     /* unix s of the window's first failure */
        int64_t locked_until;   /* unix s; locked out while in the future */
        uint32_t lockouts;      /* lock-outs since the last good login */
    } login;
};

/* Add a user with a password hash (NULL: none) and, if role is not NONE,
 * that role on account in the same transaction.  -EEXIST for a name in
 * use. */
int queue_user_add(struct queue *q, const char *name, const char *pwhash,
                   uint32_t account, int role, const struct queue_actor *by,
                   uint32_t *id);
int queue_user_get(struct queue *q, uint32_t id, struct queue_user *u);
int queue_user_find(struct queue *q, const char *name, struct queue_user *u);
long queue_users(struct queue *q,
                 int (*cb)(void *arg, const struct queue_user *u), void *arg);

/* Disable or enable a user: a disabled user and every API key of theirs
 * are refused from the next command on. */
int queue_user_set_disabled(struct queue *q, uint32_t id, bool disabled,
                            const struct queue_actor *by);
int queue_user_set_password(struct queue *q, uint32_t id, const char *pwhash,
                            const struct queue_actor *by);
/* Turn TOTP on with secret (QUEUE_TOTP_SECRET bytes) or off (NULL). */
int queue_user_set_totp(struct queue *q, uint32_t id,
                        const unsigned char *secret,
                        const struct queue_actor *by);

/* Password logins are throttled per user: QUEUE_LOGIN_MAX_FAILURES failed
 * logins within QUEUE_LOGIN_WINDOW seconds lock the user out for
 * QUEUE_LOGIN_LOCK_FIRST seconds, twice as long with each further lock-out
 * up to QUEUE_LOGIN_LOCK_MAX, until a login succeeds.  The caller refuses
 * a user whose login.locked_until is still ahead before it checks the
 * password at all. */
#define QUEUE_LOGIN_MAX_FAILURES 5
#define QUEUE_LOGIN_WINDOW 900
#define QUEUE_LOGIN_LOCK_FIRST 60
#define QUEUE_LOGIN_LOCK_MAX 3600

/* Record a failed login of user id (spool clock) and its audit record
 * (by, action, "identity", result) in one transaction; the failure that
 * fills the window also locks the user out, audited as "login lock-out".
 * *locked_until (may be NULL): the end of the lock-out this failure began,
 * else 0. */
int queue_user_login_failed(struct queue *q, uint32_t id,
                            const struct queue_actor *by, const char *action,
                            const char *result, int64_t *locked_until);
/* Record a good login: clears failures and lock-outs and, for step > 0,
 * stores the TOTP time step the code matched.  A step at or below the last
 * one stored is a code used before: QUEUE_ESTATE, and nothing changes. */
int queue_user_login_ok(struct queue *q, uint32_t id, int64_t step);
/* Replace the failure count and lock-out of user id with l's (all zero:
 * an admin ends a lock-out); the TOTP step is never moved back.  Audited
 * as "user unlock". */
int queue_user_login_set(struct queue *q, uint32_t id,
                         const struct queue_login *l,
                         const struct queue_actor *by);

/* Set user's role on account; QUEUE_ROLE_NONE removes it. */
int queue_role_set(struct queue *q, uint32_t user, uint32_t account, int role,
                   const struct queue_actor *by);
/* The role set on account itself (NONE if not set). */
int queue_role_get(struct queue *q, uint32_t user, uint32_t account,
                   int *role);
/* The role user acts with on account: the role set there, else the one on
 * the master.  NONE for a disabled user, and roles set on a disabled
 * sub-account count as NONE (the master's still apply); on a disabled master
 * every role is NONE.  *from (may be NULL) tells where it came from (the
 * account, the master, or 0 for none). */
int queue_role_effective(struct queue *q, uint32_t user, uint32_t account,
                         int *role, uint32_t *from);
/* Every (user, account, role), by user then account. */
long queue_roles(struct queue *q,
                 int (*cb)(void *arg, uint32_t user, uint32_t account,
                           int role),
                 void *arg);

/* ------------------------------------------------------------- API keys */

/* A key's scope is the highest role it may act with (VIEWER "read", SENDER
 * "send", MANAGER "manage", ADMIN "admin"); never OWNER. */
struct queue_apikey {
    uint32_t id;
    uint32_t user;
    uint32_t account;
    int scope;
    bool revoked;
    int64_t created, revoked_at;
    unsigned char hash[QUEUE_APIKEY_HASH];
    char name[QUEUE_MAX_KEY_NAME + 1];
};
int queue_apikey_create(struct queue *q, uint32_t user, uint32_t account,
                        int scope, const char *name,
                        const unsigned char hash[QUEUE_APIKEY_HASH],
                        const struct queue_actor *by, uint32_t *id);
int queue_apikey_get(struct queue *q, uint32_t id, struct queue_apikey *k);
/* Revoke a key (QUEUE_ESTATE if it already is). */
int queue_apikey_revoke(struct queue *q, uint32_t id,
                        const struct queue_actor *by);
long queue_apikeys(struct queue *q,
                   int (*cb)(void *arg, const struct queue_apikey *k),
                   void *arg);

/* ------------------------------------------------------- sending domains */

/* One DKIM key of a sending domain.  It signs once its record was seen in
 * DNS (verified_at, or a forced verify) while the domain is verified, and
 * until retire_at passes (queue_sdomain_key_signs()).  Times are unix
 * seconds; 0 is "not yet" / "no date". */
struct queue_dkim_sel {
    char selector[QUEUE_MAX_SELECTOR + 1];
    char algo[QUEUE_MAX_ALGO + 1];
    char key_path[QUEUE_MAX_KEY_PATH + 1];
    int64_t created;
    int64_t verified_at;      /* 0: pending, its record not verified yet */
    int64_t retire_at;        /* 0: none; signs only before this time */
};

struct queue_sdomain {
    char domain[QUEUE_MAX_DOMAIN + 1];   /* lower-case A-label form */
    uint32_t account;
    bool verified;
    int64_t created, verified_at;
    unsigned nsel;
    struct queue_dkim_sel sel[QUEUE_MAX_SELECTORS];
};

/* Where a key of a sending domain stands at a time (queue_sdomain_key_
 * state()), in the order the checks run: */
enum queue_key_state {
    QUEUE_KEY_RETIRED,   /* its retire date has passed: never signs again */
    QUEUE_KEY_PENDING,   /* its DNS record was never verified */
    QUEUE_KEY_VERIFIED,  /* verified, but the domain is not (no signing) */
    QUEUE_KEY_RETIRING,  /* signs until its retire date */
    QUEUE_KEY_ACTIVE,    /* signs */
};

/* Add a sending domain to account, with one DKIM key (sel may be NULL;
 * its dates are set here: created now, pending, no retire date).
 * A domain belongs to one account: -EEXIST if it is taken. */
int queue_sdomain_add(struct queue *q, const char *domain, uint32_t account,
                      const struct queue_dkim_sel *sel,
                      const struct queue_actor *by);
/* Mark verified (how: "dns" or "forced", for the audit) or not.  Verified
 * marks every key not retired verified too (a forced verify signs with
 * all of them); not verified leaves the keys' own state alone. */
int queue_sdomain_set_verified(struct queue *q, const char *domain,
                               bool verified, const char *how,
                               const struct queue_actor *by);
int queue_sdomain_get(struct queue *q, const char *domain,
                      struct queue_sdomain *d);
/* Every sending domain in name order. */
long queue_sdomains(struct queue *q,
                    int (*cb)(void *arg, const struct queue_sdomain *d),
                    void *arg);

/* Add a DKIM key (pending) to a sending domain (admin_dkim.c).  A record
 * full of QUEUE_MAX_SELECTORS keys first drops its retired ones (the
 * oldest first; their key files are not touched).  -EEXIST when the
 * selector is already one of the domain's (even retired), QUEUE_ESTATE
 * when the record is full of keys not retired, QUEUE_ENOTFOUND for an
 * unknown domain, -EINVAL for a bad selector, algorithm or path. */
int queue_sdomain_key_add(struct queue *q, const char *domain,
                          const struct queue_dkim_sel *sel,
                          const struct queue_actor *by);
/* Retire a key after_s seconds from now (0: at once); *retire_at (may be
 * NULL) receives the date.  A key already retiring gets the new date.
 * Unless last is true, QUEUE_ESTATE when the domain is verified and no
 * other verified key without a retire date would be left to sign with
 * (the domain's mail would be held back);
 * also QUEUE_ESTATE for a key already retired, QUEUE_ENOTFOUND for an
 * unknown domain or selector. */
int queue_sdomain_key_retire(struct queue *q, const char *domain,
                             const char *selector, uint64_t after_s,
                             bool last, const struct queue_actor *by,
                             int64_t *retire_at);
/* Mark the n named keys verified (their records matched in DNS; a key
 * verified before keeps its date) and so the domain (how for the audit).
 * QUEUE_ENOTFOUND for an unknown domain or selector, QUEUE_ESTATE for a
 * retired key. */
int queue_sdomain_keys_verified(struct queue *q, const char *domain,
                                const char *const *selectors, unsigned n,
                                const char *how,
                                const struct queue_actor *by);
/* Key i of d at time now (unix s): enum queue_key_state. */
int queue_sdomain_key_state(const struct queue_sdomain *d, unsigned i,
                            int64_t now);
/* Whether key i of d signs at time now: ACTIVE or RETIRING.  The one rule
 * sluiced's signer and the tools share. */
bool queue_sdomain_key_signs(const struct queue_sdomain *d, unsigned i,
                             int64_t now);
/* "pending", "verified", "active", "retiring", "retired" ("?" else). */
const char *queue_key_state_name(int state);

/* ---------------------------------------------------------------- audit */

struct queue_audit {
    uint64_t seq;               /* 1, 2, 3, ... */
    int64_t time_ms;            /* unix ms (spool clock) */
    char user[QUEUE_MAX_AUDIT_USER + 1];
    char via[QUEUE_MAX_AUDIT_VIA + 1];
    int role;
    uint32_t account;           /* 0: spool-wide or none */
    char action[QUEUE_MAX_AUDIT_ACTION + 1];  /* "account create", ... */
    char object[QUEUE_MAX_AUDIT_OBJECT + 1];  /* what it acted on */
    char result[QUEUE_MAX_AUDIT_RESULT + 1];  /* "ok", "refused", ... */
    bool keyed;                 /* link is an HMAC with the audit key */
    unsigned char key_id[QUEUE_AUDIT_KEY_ID]; /* of that key (keyed only) */
    unsigned char prev[QUEUE_AUDIT_HASH];
    unsigned char hash[QUEUE_AUDIT_HASH];    /* the record's link */
};

/* The audit key of a handle and where its appends export the head.  Give
 * it right after queue_open(), before any change; strings and the key are
 * copied.  With a key every record appended is keyed (a trail unkeyed so
 * far goes on keyed from the next record); without one records stay
 * unkeyed, and an append to a trail whose last record is keyed is refused
 * (-ENOKEY: an unkeyed record after keyed ones breaks the chain), as is
 * one with another key than the last record's (-EKEYREJECTED).  After
 * each change that appended a record commits, the line "SEQ LINK-HEX
 * UNIX-SECONDS" is appended to checkpoint (O_APPEND, one write(2), the
 * file made 0640 if new); when that fails the change stays committed and
 * warn (may be NULL) gets a line saying why.  Then exported (may be NULL)
 * gets the new head.  Both are called in the thread that made the
 * change.  Returns 0, -EINVAL or -ENOMEM. */
struct queue_audit_config {
    const unsigned char *key;   /* QUEUE_AUDIT_KEY bytes, or NULL */
    const char *checkpoint;     /* file outside the spool, or NULL */
    void (*warn)(void *arg, const char *text);
    void (*exported)(void *arg, uint64_t seq,
                     const unsigned char head[QUEUE_AUDIT_HASH]);
    void *arg;                  /* of warn and exported */
};
int queue_audit_configure(struct queue *q, const struct queue_audit_config *c);

/* Read an audit key file: QUEUE_AUDIT_KEY bytes raw, or as 64 hex digits
 * (a newline after them allowed).  A file that group or others may read
 * is refused (-EPERM, the detail naming the chmod that fixes it), as is
 * one that holds anything else (-EINVAL); -errno when it cannot be read.
 * The detail (queue_last_detail) says what. */
int queue_audit_key_load(const char *path, unsigned char key[QUEUE_AUDIT_KEY]);
/* Make a new key file: QUEUE_AUDIT_KEY random bytes written as 64 hex
 * digits and a newline, mode 0600.  -EEXIST when path exists (a key is
 * never overwritten), -errno otherwise. */
int queue_audit_key_create(const char *path);
/* The id records carry for key: the first QUEUE_AUDIT_KEY_ID bytes of
 * HMAC-SHA256(key, "sluice audit key id"). */
void queue_audit_key_id(const unsigned char key[QUEUE_AUDIT_KEY],
                        unsigned char id[QUEUE_AUDIT_KEY_ID]);
/* Parse one checkpoint line "SEQ LINK-HEX [TIME]" (blanks around it and a
 * trailing newline allowed): 0 or -EINVAL. */
int queue_audit_checkpoint_parse(const char *line, uint64_t *seq,
                                 unsigned char head[QUEUE_AUDIT_HASH]);

/* The stored head: last seq and its link (0 and zeros when none). */
int queue_audit_head(struct queue *q, uint64_t *seq,
                     unsigned char head[QUEUE_AUDIT_HASH]);
/* Whether the head's record is keyed, and with which key (its id): a
 * writer must then hold that key (sluiced checks at start). */
int queue_audit_last_key(struct queue *q, bool *keyed,
                         unsigned char id[QUEUE_AUDIT_KEY_ID]);

/* Append a record on its own (refused actions, injections, pauses). */
int queue_audit_append(struct queue *q, const struct queue_actor *by,
                       uint32_t account, const char *action,
                       const char *object, const char *result);

/* Call cb for each record with seq >= from, in order.  Records are decoded
 * as stored; queue_audit_verify() checks them. */
long queue_audit_list(struct queue *q, uint64_t from,
                      int (*cb)(void *arg, const struct queue_audit *r),
                      void *arg);

enum queue_audit_fault {
    QUEUE_AUDIT_INTACT = 0,
    QUEUE_AUDIT_ALTERED,        /* a record's bytes or link do not match */
    QUEUE_AUDIT_MISSING,        /* a sequence number is absent */
    QUEUE_AUDIT_REORDERED,      /* a record sits under another's seq */
    QUEUE_AUDIT_TRUNCATED,      /* records after the last one are gone, or
                                   the chain ends before a checkpoint */
    QUEUE_AUDIT_UNKEYED,        /* an unkeyed record after keyed ones */
    QUEUE_AUDIT_REWRITTEN,      /* a checkpoint's link differs */
};
struct queue_audit_verdict {
    int fault;                  /* enum queue_audit_fault */
    uint64_t bad_seq;           /* first bad seq (fault != INTACT) */
    char why[160];
    uint64_t records;           /* records checked */
    uint64_t head_seq;
    unsigned char head[QUEUE_AUDIT_HASH];  /* link of the last record */
    uint64_t keyed_from;        /* first keyed record, 0: none */
    uint64_t unchecked;         /* keyed records whose MAC could not be
                                   checked: the handle holds no key */
    bool key;                   /* the handle holds a key (MACs checked) */
    unsigned char key_id[QUEUE_AUDIT_KEY_ID]; /* its id */
    uint64_t checkpoints;       /* checkpoints compared with the chain */
    uint64_t checkpoint_last;   /* the highest seq among them */
};
/* Where verification reads checkpoints: next() gives one (seq, link) and
 * returns 1, 0 at the end, or a negative code to stop with it. */
struct queue_audit_marks {
    int (*next)(void *arg, uint64_t *seq,
                unsigned char head[QUEUE_AUDIT_HASH]);
    void *arg;
};
/* Check the whole chain against the stored head: every link (the MACs of
 * keyed records with the handle's key; without one they are counted in
 * unchecked), no unkeyed record after a keyed one, and then, when marks is
 * not NULL and the chain is sound, every checkpoint: its seq must be in
 * the chain (else TRUNCATED) and its link the record's (else REWRITTEN).
 * Read checkpoints written before the walk begins: one appended later
 * may name a record the walk's snapshot does not hold.  Returns 0 with
 * the verdict filled in (fault says whether it is intact), or a code when
 * the spool (or a mark) cannot be read. */
int queue_audit_verify(struct queue *q, struct queue_audit_verdict *v);
int queue_audit_verify_marks(struct queue *q,
                             const struct queue_audit_marks *marks,
                             struct queue_audit_verdict *v);
const char *queue_audit_fault_name(int fault);

/* ---------------------------------------------------------------- usage */

struct queue_usage {
    uint64_t sent, delivered, bounced;
};

/* UTC day number (days since 1970-01-01) of unix time t. */
uint32_t queue_day_of(int64_t t);

/* One account's own usage on one day (zeros if none). */
int queue_usage_get(struct queue *q, uint32_t account, uint32_t day,
                    struct queue_usage *u);
/* The account's usage plus, for the master, that of every sub-account:
 * what the master is billed for. */
int queue_usage_rollup(struct queue *q, uint32_t account, uint32_t day,
                       struct queue_usage *u);
/* Call cb for each stored (day, usage) of account with day in
 * [from, to], in day order. */
long queue_usage_days(struct queue *q, uint32_t account, uint32_t from,
                      uint32_t to,
                      int (*cb)(void *arg, uint32_t day,
                                const struct queue_usage *u),
                      void *arg);

/* ------------------------------------------------------------ watching */

/* A number that grows with every committed admin change (accounts, users,
 * roles, keys, domains): an engine may poll it and reload on change. */
int queue_admin_gen(struct queue *q, uint64_t *gen);

#ifdef __cplusplus
}
#endif
/* ------------------------------------------------------------ webhooks */

/* Webhooks kept in the spool per account (admin_webhooks.c): a name and
 * its settings as text the spool keeps whole (the tool's JSON), read by
 * sluiced at start.  Adding and removing are audited (never the text). */
#define QUEUE_MAX_WEBHOOK_NAME 12
#define QUEUE_MAX_WEBHOOK_SPEC 8192
int queue_webhook_add(struct queue *q, uint32_t account, const char *name,
                      const char *spec, const struct queue_actor *by);
int queue_webhook_remove(struct queue *q, uint32_t account, const char *name,
                         const struct queue_actor *by);
/* Call cb for each webhook of account (0: every account) in key order;
 * cb returns non-zero to stop.  The number seen or a negative code. */
long queue_webhooks(struct queue *q, uint32_t account,
                    int (*cb)(void *arg, uint32_t account, const char *name,
                              const char *spec),
                    void *arg);

/* ----------------------------------------------------------- live limits */

/* Live limits (admin_limits.c, `sluice limits`): one meta entry per
 * target and key, "limit.KIND.KEY.NAME", KIND 's' site, 'd' domain, 'a'
 * account, 'c' campaign (NAME the decimal id for those two), holding the
 * value as text (sluiced.conf's form: the engine and the tool parse it
 * with config.h's one reader), when it was set, who set it and when it
 * ends (0: never).  Each set or unset is one admin change with its audit
 * record; it bumps the admin generation, which a running sluiced polls.
 * An entry past its end is ignored by readers and removed by the next
 * change. */
#define QUEUE_MAX_LIMIT_NAME 253
#define QUEUE_MAX_LIMIT_KEY 31
#define QUEUE_MAX_LIMIT_VALUE 63
#define QUEUE_MAX_LIMIT_KEYS 16   /* keys in one change */

struct queue_limit {
    char kind;                  /* 's', 'd', 'a', 'c' */
    char name[QUEUE_MAX_LIMIT_NAME + 1];
    char key[QUEUE_MAX_LIMIT_KEY + 1];
    char value[QUEUE_MAX_LIMIT_VALUE + 1];
    int64_t since_ms;           /* unix ms (spool clock) */
    int64_t expires_ms;         /* unix ms; 0: until unset */
    char who[QUEUE_MAX_AUDIT_USER + 1];
};

/* One change: set the n keys (values as given) of kind/name, ending at
 * expires_ms (0: never), or with unset remove them (n 0: every key of
 * the target).  object and account go into the audit record with
 * action "limits set" / "limits unset".  -EINVAL for a bad kind, name,
 * key or value (detail says which), QUEUE_ENOTFOUND for an unset that
 * removes nothing. */
struct queue_limit_change {
    char kind;
    const char *name;
    const char *keys[QUEUE_MAX_LIMIT_KEYS];
    const char *values[QUEUE_MAX_LIMIT_KEYS];
    size_t n;
    int64_t expires_ms;
    bool unset;
    uint32_t account;           /* of the audit record */
    const char *object;
    const struct queue_actor *by;
};
int queue_limits_change(struct queue *q, const struct queue_limit_change *c);

/* Call cb for each entry in force at now_ms (every entry with now_ms 0)
 * in key order (kind, key, name); cb returns non-zero to stop.  The
 * number seen or a negative code; QUEUE_ECORRUPT for an entry that does
 * not decode. */
long queue_limits(struct queue *q, int64_t now_ms,
                  int (*cb)(void *arg, const struct queue_limit *l),
                  void *arg);

/* Decode the meta entry k/v (admin_limits.c; the spool check's rule):
 * 0, or QUEUE_ECORRUPT. */
int queue_limit_decode(const void *key, size_t klen, const void *val,
                       size_t vlen, struct queue_limit *l);

/* ----------------------------------------------------------- incidents */

/* Incidents (incident.c): a record per incident, its text the engine's
 * and the tool's JSON (the spool keeps it whole), owned by one account.
 * Every change runs an edit function inside the writer's transaction, so
 * two changes to one incident never lose each other's part; each is
 * audited and may append an event of type QUEUE_EV_INCIDENT in the same
 * commit. */
#define QUEUE_MAX_INCIDENT 65536  /* bytes of an incident's text */

/* Make the incident's new text from the stored one (NULL for a new
 * incident) into out (cap bytes); the length, or a negative code with why
 * in why.  Runs on the writer thread, perhaps more than once: it must
 * keep no state between runs. */
typedef long (*queue_incident_edit_fn)(void *arg, uint64_t id,
                                       const char *old, char *out,
                                       size_t cap, char *why, size_t whylen);

struct queue_incident_change {
    uint64_t id;            /* 0: a new incident; its id is set here */
    uint32_t account;       /* a new incident's owner; an edit's is kept */
    uint64_t campaign;      /* for the event (0: none) */
    queue_incident_edit_fn edit;
    void *arg;
    const char *action;     /* audit action, "incident open" ... */
    const char *event_text; /* the event's text, or NULL: no event */
    const struct queue_actor *by;
};

/* Apply one change and wait for its commit.  Errors: QUEUE_ENOTFOUND (no
 * such incident), -EINVAL (edit refused; detail says why), -E2BIG (text
 * over QUEUE_MAX_INCIDENT), or the writer's failure. */
int queue_incident_change(struct queue *q, struct queue_incident_change *c);
/* An incident's probe: move one delivery parked at `at` (a campaign's
 * queue_park_time() or an account's queue_account_park_time()) back to
 * now, the first whose recipient is at domain (NULL or "": the first),
 * so the engine may let that one claim through the pause.  *d gets the
 * delivery.  Audited "incident probe" by `by` on account.  Errors:
 * QUEUE_ENOTFOUND (none parked there, within a capped scan), -EINVAL
 * (not a park time), or the writer's failure. */
int queue_incident_probe_release(struct queue *q, int64_t at,
                                 const char *domain, uint32_t account,
                                 const struct queue_actor *by,
                                 struct queue_delivery *d);
/* The text of incident id (malloc'd into *text) and its account. */
int queue_incident_get(struct queue *q, uint64_t id, uint32_t *account,
                       char **text);
/* Call cb for each incident in id order (cb returns non-zero to stop);
 * the number seen or a negative code. */
long queue_incidents(struct queue *q,
                     int (*cb)(void *arg, uint64_t id, uint32_t account,
                               const char *text),
                     void *arg);

#endif
