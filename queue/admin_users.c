/*
 * admin_users.c - users and their roles per account.
 *
 * DESCRIPTION
 *   Owns the "users" database (records keyed 'i' u32 id, name index keyed
 *   'n' name, meta "next_user") and the "roles" database (u32 user . u32
 *   account -> u8 role).  Passwords arrive hashed (argon2id strings from
 *   the tool) and TOTP secrets as raw bytes; neither is ever logged in the
 *   audit trail.  queue_role_effective() is the one place where a role on
 *   the master reaches a sub-account: the sub-account's own role, when set,
 *   wins even when it is lower.
 *
 *   Each user record also keeps the state of password logins: the last
 *   TOTP time step accepted (a code is good once: a step at or below it is
 *   refused), and the failed logins of the current window with the
 *   lock-out they lead to (queue_admin.h, QUEUE_LOGIN_*).  Every login
 *   change is one writer transaction, so two sluice processes logging in
 *   at once cannot both use one code or both miss a failure; a failure and
 *   its audit record commit together.
 *
 * DIAGNOSTICS
 *   -EINVAL for an invalid name, hash or role, -EEXIST for a name in use,
 *   QUEUE_ENOTFOUND for an unknown user or account, QUEUE_ESTATE for a TOTP
 *   step used before, QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define F_DISABLED 1
#define F_TOTP 2
#define USER_FMT_LOGIN 2        /* a user record with its login part */
#define LOGIN_PART (8 + 4 + 8 + 8 + 4)
#define USER_REC_MAX (1 + 1 + 8 + QUEUE_TOTP_SECRET + 1 +                   \
                      QUEUE_MAX_USER_NAME + 1 + QUEUE_MAX_PWHASH + LOGIN_PART)

static MDB_val uid_key(unsigned char key[5], uint32_t id)
{
    key[0] = 'i';
    be32_put(key + 1, id);
    return (MDB_val){ 5, key };
}

static MDB_val uname_key(unsigned char key[1 + QUEUE_MAX_USER_NAME],
                         const char *name)
{
    size_t n = strnlen(name, QUEUE_MAX_USER_NAME);
    key[0] = 'n';
    memcpy(key + 1, name, n);
    return (MDB_val){ n + 1, key };
}

static MDB_val role_key(unsigned char key[8], uint32_t user, uint32_t account)
{
    be32_put(key, user);
    be32_put(key + 4, account);
    return (MDB_val){ 8, key };
}

static size_t user_encode(unsigned char *buf, size_t cap,
                          const struct queue_user *u)
{
    struct rec_w w = { .p = buf, .cap = cap };
    qrec_w_u8(&w, USER_FMT_LOGIN);
    qrec_w_u8(&w, (u->disabled ? F_DISABLED : 0) | (u->totp ? F_TOTP : 0));
    qrec_w_u64(&w, (uint64_t)u->created);
    qrec_w_bytes(&w, u->totp_secret, QUEUE_TOTP_SECRET);
    qrec_w_str(&w, u->name, 1, QUEUE_MAX_USER_NAME);
    qrec_w_str(&w, u->pwhash, 1, QUEUE_MAX_PWHASH);
    qrec_w_u64(&w, (uint64_t)u->login.totp_step);
    qrec_w_u32(&w, u->login.failures);
    qrec_w_u64(&w, (uint64_t)u->login.fail_since);
    qrec_w_u64(&w, (uint64_t)u->login.locked_until);
    qrec_w_u32(&w, u->login.lockouts);
    return w.over ? 0 : w.len;
}

int quser_decode(const MDB_val *v, uint32_t id, struct queue_user *u)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    memset(u, 0, sizeof *u);
    u->id = id;
    unsigned fmt = qrec_r_u8(&r);
    if (fmt != ADMIN_FMT && fmt != USER_FMT_LOGIN)
        return QUEUE_ECORRUPT;
    unsigned flags = qrec_r_u8(&r);
    u->created = (int64_t)qrec_r_u64(&r);
    qrec_r_bytes(&r, u->totp_secret, QUEUE_TOTP_SECRET);
    qrec_r_str(&r, u->name, 1, QUEUE_MAX_USER_NAME);
    qrec_r_str(&r, u->pwhash, 1, QUEUE_MAX_PWHASH);
    if (fmt == USER_FMT_LOGIN) {    /* format 1: no login yet */
        u->login.totp_step = (int64_t)qrec_r_u64(&r);
        u->login.failures = qrec_r_u32(&r);
        u->login.fail_since = (int64_t)qrec_r_u64(&r);
        u->login.locked_until = (int64_t)qrec_r_u64(&r);
        u->login.lockouts = qrec_r_u32(&r);
    }
    if (!qrec_r_done(&r))
        return QUEUE_ECORRUPT;
    u->disabled = flags & F_DISABLED;
    u->totp = flags & F_TOTP;
    return 0;
}

int quser_load(struct queue *q, MDB_txn *txn, uint32_t id,
               struct queue_user *u)
{
    unsigned char key[5];
    MDB_val k = uid_key(key, id), v;
    int rc = mdb_get(txn, q->dbi[DB_USERS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    return quser_decode(&v, id, u);
}

/* A user id by name (QUEUE_ENOTFOUND if none). */
static int user_id_by_name(struct queue *q, MDB_txn *txn, const char *name,
                           uint32_t *id)
{
    unsigned char key[1 + QUEUE_MAX_USER_NAME];
    if (!admin_name_ok(name, QUEUE_MAX_USER_NAME, true))
        return QUEUE_ENOTFOUND;
    MDB_val k = uname_key(key, name), v;
    int rc = mdb_get(txn, q->dbi[DB_USERS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != 4)
        return QUEUE_ECORRUPT;
    *id = be32_get(v.mv_data);
    return 0;
}

static int user_store(struct admin_tx *t, const struct queue_user *u)
{
    unsigned char key[5], buf[USER_REC_MAX];
    size_t len = user_encode(buf, sizeof buf, u);
    if (!len)
        return admin_fail(t, QUEUE_ETOOBIG, "user record too large");
    MDB_val k = uid_key(key, u->id), v = { len, buf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_USERS], &k, &v, 0);
    return rc ? admin_mdb(t, rc) : 0;
}

/* Whether h could be a password hash string: printable ASCII, in cap. */
static bool pwhash_ok(const char *h)
{
    size_t n = h ? strnlen(h, QUEUE_MAX_PWHASH + 1) : 0;
    if (n > QUEUE_MAX_PWHASH)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] <= ' ' || h[i] > '~')
            return false;
    return true;
}

/* Write role (or delete it for NONE) of user on account. */
static int role_store(struct admin_tx *t, uint32_t user, uint32_t account,
                      int role)
{
    unsigned char key[8], val = (unsigned char)role;
    MDB_val k = role_key(key, user, account), v = { 1, &val };
    int rc = role == QUEUE_ROLE_NONE
        ? mdb_del(t->txn, t->q->dbi[DB_ROLES], &k, NULL)
        : mdb_put(t->txn, t->q->dbi[DB_ROLES], &k, &v, 0);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? admin_mdb(t, rc) : 0;
}

/* The role stored for (user, account) in txn, NONE if none. */
static int role_load(struct queue *q, MDB_txn *txn, uint32_t user,
                     uint32_t account, int *role)
{
    unsigned char key[8];
    MDB_val k = role_key(key, user, account), v;
    int rc = mdb_get(txn, q->dbi[DB_ROLES], &k, &v);
    *role = QUEUE_ROLE_NONE;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != 1 || *(const unsigned char *)v.mv_data > QUEUE_ROLE_OWNER)
        return QUEUE_ECORRUPT;
    *role = *(const unsigned char *)v.mv_data;
    return 0;
}

/* ------------------------------------------------------------- add */

struct add_arg {
    const char *name, *pwhash;
    uint32_t account;
    int role;
    const struct queue_actor *by;
    uint32_t id;
    struct queue_account a;
};

static int do_add(struct admin_tx *t, void *arg)
{
    struct add_arg *c = arg;
    struct queue_user u = { 0 };
    uint32_t dummy;
    int err;

    if (!admin_name_ok(c->name, QUEUE_MAX_USER_NAME, true))
        return admin_fail(t, -EINVAL, "invalid user name '%.80s': 1..%d of "
                          "a-z 0-9 . _ @ - starting with a letter or digit",
                          c->name ? c->name : "", QUEUE_MAX_USER_NAME);
    if (!pwhash_ok(c->pwhash))
        return admin_fail(t, -EINVAL, "password hash is not a hash string");
    if (c->role < QUEUE_ROLE_NONE || c->role > QUEUE_ROLE_OWNER)
        return admin_fail(t, -EINVAL, "no such role");
    if ((err = user_id_by_name(t->q, t->txn, c->name, &dummy)) == 0)
        return admin_fail(t, -EEXIST, "user name '%s' is taken", c->name);
    if (err != QUEUE_ENOTFOUND)
        return err;
    if (c->role != QUEUE_ROLE_NONE &&
        (err = qaccount_load(t->q, t->txn, c->account, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->account) : err;
    snprintf(u.name, sizeof u.name, "%s", c->name);
    snprintf(u.pwhash, sizeof u.pwhash, "%s", c->pwhash ? c->pwhash : "");
    u.created = t->now_ms / 1000;
    if ((err = admin_next_id(t, "next_user", &u.id)) ||
        (err = user_store(t, &u)))
        return err;
    unsigned char nk[1 + QUEUE_MAX_USER_NAME], idv[4];
    MDB_val k = uname_key(nk, u.name), v = { 4, idv };
    be32_put(idv, u.id);
    int rc = mdb_put(t->txn, t->q->dbi[DB_USERS], &k, &v, MDB_NOOVERWRITE);
    if (rc)
        return admin_mdb(t, rc);
    if (c->role != QUEUE_ROLE_NONE &&
        (err = role_store(t, u.id, c->account, c->role)))
        return err;
    c->id = u.id;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (c->role != QUEUE_ROLE_NONE)
        snprintf(obj, sizeof obj, "user %s as %s on %s", u.name,
                 queue_role_name(c->role), c->a.name);
    else
        snprintf(obj, sizeof obj, "user %s", u.name);
    return admin_audit_put(t, c->by, c->role != QUEUE_ROLE_NONE
                           ? c->account : (c->by ? c->by->account : 0),
                           "user add", obj, "ok");
}

int queue_user_add(struct queue *q, const char *name, const char *pwhash,
                   uint32_t account, int role, const struct queue_actor *by,
                   uint32_t *id)
{
    struct add_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct add_arg){ .name = name, .pwhash = pwhash, .account = account,
                           .role = role, .by = by };
    int err = admin_run(q, do_add, c);
    if (id)
        *id = err ? 0 : c->id;
    free(c);
    return err;
}

/* ------------------------------------------------- changes to a user */

enum user_change { UC_DISABLED, UC_PASSWORD, UC_TOTP };

struct uchange_arg {
    uint32_t id;
    enum user_change what;
    bool disabled;
    const char *pwhash;
    const unsigned char *secret;
    const struct queue_actor *by;
};

static int do_uchange(struct admin_tx *t, void *arg)
{
    struct uchange_arg *c = arg;
    struct queue_user u;
    const char *action = "user update";
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int err = quser_load(t->q, t->txn, c->id, &u);
    if (err == QUEUE_ENOTFOUND)
        return admin_fail(t, err, "no user with id %u", c->id);
    if (err)
        return err;
    switch (c->what) {
    case UC_DISABLED:
        u.disabled = c->disabled;
        action = c->disabled ? "user disable" : "user enable";
        snprintf(obj, sizeof obj, "user %s", u.name);
        break;
    case UC_PASSWORD:
        if (!pwhash_ok(c->pwhash))
            return admin_fail(t, -EINVAL, "password hash is not a hash "
                              "string");
        snprintf(u.pwhash, sizeof u.pwhash, "%s", c->pwhash ? c->pwhash : "");
        action = "user password";
        snprintf(obj, sizeof obj, "user %s", u.name);
        break;
    case UC_TOTP:
        u.totp = c->secret != NULL;
        if (c->secret)
            memcpy(u.totp_secret, c->secret, QUEUE_TOTP_SECRET);
        else
            memset(u.totp_secret, 0, QUEUE_TOTP_SECRET);
        action = c->secret ? "user totp enable" : "user totp disable";
        snprintf(obj, sizeof obj, "user %s", u.name);
        break;
    }
    if ((err = user_store(t, &u)))
        return err;
    return admin_audit_put(t, c->by, c->by ? c->by->account : 0, action, obj,
                           "ok");
}

int queue_user_set_disabled(struct queue *q, uint32_t id, bool disabled,
                            const struct queue_actor *by)
{
    struct uchange_arg c = { .id = id, .what = UC_DISABLED,
                             .disabled = disabled, .by = by };
    return admin_run(q, do_uchange, &c);
}

int queue_user_set_password(struct queue *q, uint32_t id, const char *pwhash,
                            const struct queue_actor *by)
{
    struct uchange_arg c = { .id = id, .what = UC_PASSWORD, .pwhash = pwhash,
                             .by = by };
    return admin_run(q, do_uchange, &c);
}

int queue_user_set_totp(struct queue *q, uint32_t id,
                        const unsigned char *secret,
                        const struct queue_actor *by)
{
    struct uchange_arg c = { .id = id, .what = UC_TOTP, .secret = secret,
                             .by = by };
    return admin_run(q, do_uchange, &c);
}

/* ------------------------------------------------------------ logins */

struct login_arg {
    uint32_t id;
    const struct queue_actor *by;
    const char *action, *result;
    int64_t step;                   /* login_ok: the TOTP step, 0 none */
    const struct queue_login *set;  /* login_set: the new state */
    int64_t locked_until;           /* out: a lock-out begun now */
};

/* Load user c->id for a login change; QUEUE_ENOTFOUND with a detail. */
static int login_load(struct admin_tx *t, struct login_arg *c,
                      struct queue_user *u)
{
    int err = quser_load(t->q, t->txn, c->id, u);
    if (err == QUEUE_ENOTFOUND)
        return admin_fail(t, err, "no user with id %u", c->id);
    return err;
}

/* The length of the n-th lock-out (n >= 1): doubling from the first. */
static int64_t lock_length(uint32_t n)
{
    int64_t len = QUEUE_LOGIN_LOCK_FIRST;
    for (uint32_t i = 1; i < n && len < QUEUE_LOGIN_LOCK_MAX; i++)
        len *= 2;
    return len < QUEUE_LOGIN_LOCK_MAX ? len : QUEUE_LOGIN_LOCK_MAX;
}

static int do_login_failed(struct admin_tx *t, void *arg)
{
    struct login_arg *c = arg;
    struct queue_user u;
    int64_t now = t->now_ms / 1000;
    int err = login_load(t, c, &u);
    c->locked_until = 0;
    if (err)
        return err;
    struct queue_login *l = &u.login;
    if (!l->failures || now - l->fail_since >= QUEUE_LOGIN_WINDOW ||
        now < l->fail_since) {
        l->failures = 0;            /* a new window */
        l->fail_since = now;
    }
    l->failures++;
    bool lock = l->failures >= QUEUE_LOGIN_MAX_FAILURES;
    if (lock) {
        if (l->lockouts < UINT32_MAX)
            l->lockouts++;
        l->locked_until = now + lock_length(l->lockouts);
        l->failures = 0;
        l->fail_since = 0;
        c->locked_until = l->locked_until;
    }
    if ((err = user_store(t, &u)) ||
        (err = admin_audit_put(t, c->by, 0, c->action, "identity",
                               c->result)))
        return err;
    if (!lock)
        return 0;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], res[QUEUE_MAX_AUDIT_RESULT + 1];
    snprintf(obj, sizeof obj, "user %s", u.name);
    snprintf(res, sizeof res, "locked out for %lld s after %d failed logins "
             "(lock-out %u)", (long long)(l->locked_until - now),
             QUEUE_LOGIN_MAX_FAILURES, l->lockouts);
    return admin_audit_put(t, c->by, 0, "login lock-out", obj, res);
}

int queue_user_login_failed(struct queue *q, uint32_t id,
                            const struct queue_actor *by, const char *action,
                            const char *result, int64_t *locked_until)
{
    struct login_arg c = { .id = id, .by = by, .action = action,
                           .result = result };
    int err = admin_run(q, do_login_failed, &c);
    if (locked_until)
        *locked_until = err ? 0 : c.locked_until;
    return err;
}

static int do_login_ok(struct admin_tx *t, void *arg)
{
    struct login_arg *c = arg;
    struct queue_user u;
    int err = login_load(t, c, &u);
    if (err)
        return err;
    if (c->step > 0 && c->step <= u.login.totp_step)
        return admin_fail(t, QUEUE_ESTATE, "TOTP code of step %lld used "
                          "before (last accepted step %lld)",
                          (long long)c->step, (long long)u.login.totp_step);
    if (c->step > 0)
        u.login.totp_step = c->step;
    u.login.failures = 0;
    u.login.fail_since = 0;
    u.login.locked_until = 0;
    u.login.lockouts = 0;
    return user_store(t, &u);
}

int queue_user_login_ok(struct queue *q, uint32_t id, int64_t step)
{
    struct login_arg c = { .id = id, .step = step };
    return admin_run(q, do_login_ok, &c);
}

static int do_login_set(struct admin_tx *t, void *arg)
{
    struct login_arg *c = arg;
    struct queue_user u;
    int err = login_load(t, c, &u);
    if (err)
        return err;
    int64_t step = u.login.totp_step;
    u.login = *c->set;
    if (u.login.totp_step < step)
        u.login.totp_step = step;   /* a code once used stays used */
    if ((err = user_store(t, &u)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], res[QUEUE_MAX_AUDIT_RESULT + 1];
    snprintf(obj, sizeof obj, "user %s", u.name);
    if (u.login.locked_until || u.login.failures)
        snprintf(res, sizeof res, "ok: %u failures, locked until %lld",
                 u.login.failures, (long long)u.login.locked_until);
    else
        snprintf(res, sizeof res, "ok");
    return admin_audit_put(t, c->by, c->by ? c->by->account : 0,
                           "user unlock", obj, res);
}

int queue_user_login_set(struct queue *q, uint32_t id,
                         const struct queue_login *l,
                         const struct queue_actor *by)
{
    struct login_arg c = { .id = id, .by = by, .set = l };
    return admin_run(q, do_login_set, &c);
}

/* ------------------------------------------------------------ reads */

struct uget_arg {
    struct queue *q;
    uint32_t id;
    const char *name;
    struct queue_user *u;
};

static int do_uget(MDB_txn *txn, void *arg)
{
    struct uget_arg *g = arg;
    int err;
    if (g->name && (err = user_id_by_name(g->q, txn, g->name, &g->id)))
        return err;
    return quser_load(g->q, txn, g->id, g->u);
}

int queue_user_get(struct queue *q, uint32_t id, struct queue_user *u)
{
    struct uget_arg g = { q, id, NULL, u };
    memset(u, 0, sizeof *u);
    if (admin_absent(q))
        return QUEUE_ENOTFOUND;
    return admin_read(q, do_uget, &g);
}

int queue_user_find(struct queue *q, const char *name, struct queue_user *u)
{
    struct uget_arg g = { q, 0, name, u };
    memset(u, 0, sizeof *u);
    if (admin_absent(q) || !name)
        return QUEUE_ENOTFOUND;
    return admin_read(q, do_uget, &g);
}

long queue_users(struct queue *q,
                 int (*cb)(void *arg, const struct queue_user *u), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    struct queue_user u;
    long n = 0;
    int err = 0, rc;

    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_USERS], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    MDB_val k = { 1, "i" }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 5 || kp[0] != 'i')
            break;
        if ((err = quser_decode(&v, be32_get(kp + 1), &u)))
            break;
        n++;
        if (cb(arg, &u))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

/* ------------------------------------------------------------- roles */

struct role_arg {
    uint32_t user, account;
    int role;
    const struct queue_actor *by;
    struct queue_account a;
};

static int do_role_set(struct admin_tx *t, void *arg)
{
    struct role_arg *c = arg;
    struct queue_user u;
    int err, old;
    if (c->role < QUEUE_ROLE_NONE || c->role > QUEUE_ROLE_OWNER)
        return admin_fail(t, -EINVAL, "no such role");
    if ((err = quser_load(t->q, t->txn, c->user, &u)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no user with id %u", c->user) : err;
    if ((err = qaccount_load(t->q, t->txn, c->account, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->account) : err;
    if ((err = role_load(t->q, t->txn, c->user, c->account, &old)) ||
        (err = role_store(t, c->user, c->account, c->role)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    snprintf(obj, sizeof obj, "user %s role %s on %s (was %s)", u.name,
             queue_role_name(c->role), c->a.name, queue_role_name(old));
    return admin_audit_put(t, c->by, c->account, "user role", obj, "ok");
}

int queue_role_set(struct queue *q, uint32_t user, uint32_t account, int role,
                   const struct queue_actor *by)
{
    struct role_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->user = user;
    c->account = account;
    c->role = role;
    c->by = by;
    int err = admin_run(q, do_role_set, c);
    free(c);
    return err;
}

int queue_role_get(struct queue *q, uint32_t user, uint32_t account,
                   int *role)
{
    MDB_txn *txn;
    *role = QUEUE_ROLE_NONE;
    if (admin_absent(q))
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = role_load(q, txn, user, account, role);
    queue_read_end(q, txn);
    return err;
}

struct eff_arg {
    struct queue *q;
    uint32_t user, account;
    int role;
    uint32_t from;
    struct queue_account a;
};

/* The rules of queue_role_effective() inside one read txn. */
static int do_effective(MDB_txn *txn, void *arg)
{
    struct eff_arg *e = arg;
    struct queue_user u;
    int err, r;
    e->role = QUEUE_ROLE_NONE;
    e->from = 0;
    if ((err = quser_load(e->q, txn, e->user, &u)))
        return err;
    if ((err = qaccount_load(e->q, txn, e->account, &e->a)))
        return err;
    if (u.disabled)
        return 0;
    uint32_t parent = e->a.parent;
    bool own_off = e->a.disabled;
    if (parent) {
        if ((err = qaccount_load(e->q, txn, parent, &e->a)))
            return err == QUEUE_ENOTFOUND ? QUEUE_ECORRUPT : err;
        if (e->a.disabled)
            return 0;   /* a disabled master: nobody acts below it */
    } else if (own_off) {
        return 0;
    }
    if (!own_off) {
        if ((err = role_load(e->q, txn, e->user, e->account, &r)))
            return err;
        if (r != QUEUE_ROLE_NONE) {
            e->role = r;
            e->from = e->account;
            return 0;
        }
    }
    if (!parent)
        return 0;
    if ((err = role_load(e->q, txn, e->user, parent, &r)))
        return err;
    if (r != QUEUE_ROLE_NONE) {
        e->role = r;
        e->from = parent;
    }
    return 0;
}

int queue_role_effective(struct queue *q, uint32_t user, uint32_t account,
                         int *role, uint32_t *from)
{
    *role = QUEUE_ROLE_NONE;
    if (from)
        *from = 0;
    if (admin_absent(q))
        return QUEUE_ENOTFOUND;
    struct eff_arg *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->q = q;
    e->user = user;
    e->account = account;
    int err = admin_read(q, do_effective, e);
    if (!err) {
        *role = e->role;
        if (from)
            *from = e->from;
    }
    free(e);
    return err;
}

long queue_roles(struct queue *q,
                 int (*cb)(void *arg, uint32_t user, uint32_t account,
                           int role),
                 void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    long n = 0;
    int err = 0, rc;

    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_ROLES], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 8 || v.mv_size != 1 ||
            *(const unsigned char *)v.mv_data > QUEUE_ROLE_OWNER) {
            err = QUEUE_ECORRUPT;
            break;
        }
        n++;
        if (cb(arg, be32_get(kp), be32_get(kp + 4),
               *(const unsigned char *)v.mv_data))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
