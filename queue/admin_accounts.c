/*
 * admin_accounts.c - the master account and its sub-accounts.
 *
 * DESCRIPTION
 *   Owns the "accounts" database: records keyed 'i' u32 id and a name index
 *   keyed 'n' name, plus the meta records "next_account" and "master".
 *   The first account created is the master; later ones are its
 *   sub-accounts (one level deep).  A sub-account may inherit the master's
 *   header and footer and share its suppression list; reads resolve both
 *   (queue_account_get fills in the master's text and the suppression
 *   owner).  Names are unique and never change.
 *
 * DIAGNOSTICS
 *   -EINVAL for an invalid name, text or rate and for what the model
 *   forbids on the master (inheriting, sharing): a data error, not a
 *   permission; -EEXIST for a name in use, QUEUE_ENOTFOUND for an unknown
 *   id or name, QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define F_DISABLED 1
#define F_INHERIT_HEADER 2
#define F_INHERIT_FOOTER 4
#define F_SUPPRESSION_SHARED 8
#define F_ALLOW_UNSIGNED 16

#define ACCOUNT_REC_MAX (1 + 4 + 1 + 8 + 8 + 1 + QUEUE_MAX_ACCOUNT_NAME + 1 + \
                         QUEUE_MAX_RATE_CAP + 2 * (2 + QUEUE_MAX_ACCOUNT_TEXT))

/* Key 'i' u32 id. */
static MDB_val id_key(unsigned char key[5], uint32_t id)
{
    key[0] = 'i';
    be32_put(key + 1, id);
    return (MDB_val){ 5, key };
}

/* Key 'n' name. */
static MDB_val name_key(unsigned char key[1 + QUEUE_MAX_ACCOUNT_NAME],
                        const char *name)
{
    size_t n = strnlen(name, QUEUE_MAX_ACCOUNT_NAME);
    key[0] = 'n';
    memcpy(key + 1, name, n);
    return (MDB_val){ n + 1, key };
}

/* Pack the stored part of a (own header and footer). */
static size_t account_encode(unsigned char *buf, size_t cap,
                             const struct queue_account *a)
{
    struct rec_w w = { .p = buf, .cap = cap };
    unsigned flags = (a->disabled ? F_DISABLED : 0) |
                     (a->inherit_header ? F_INHERIT_HEADER : 0) |
                     (a->inherit_footer ? F_INHERIT_FOOTER : 0) |
                     (a->suppression_shared ? F_SUPPRESSION_SHARED : 0) |
                     (a->allow_unsigned ? F_ALLOW_UNSIGNED : 0);
    qrec_w_u8(&w, ADMIN_FMT);
    qrec_w_u32(&w, a->parent);
    qrec_w_u8(&w, flags);
    qrec_w_u64(&w, (uint64_t)a->created);
    qrec_w_u64(&w, a->daily_cap);
    qrec_w_str(&w, a->name, 1, QUEUE_MAX_ACCOUNT_NAME);
    qrec_w_str(&w, a->rate_cap, 1, QUEUE_MAX_RATE_CAP);
    qrec_w_str(&w, a->inherit_header ? "" : a->header, 2,
               QUEUE_MAX_ACCOUNT_TEXT);
    qrec_w_str(&w, a->inherit_footer ? "" : a->footer, 2,
               QUEUE_MAX_ACCOUNT_TEXT);
    return w.over ? 0 : w.len;
}

/* Unpack a record; QUEUE_ECORRUPT if it does not decode. */
int qaccount_decode(const MDB_val *v, uint32_t id, struct queue_account *a)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    memset(a, 0, sizeof *a);
    a->id = id;
    if (qrec_r_u8(&r) != ADMIN_FMT)
        return QUEUE_ECORRUPT;
    a->parent = qrec_r_u32(&r);
    unsigned flags = qrec_r_u8(&r);
    a->created = (int64_t)qrec_r_u64(&r);
    a->daily_cap = qrec_r_u64(&r);
    qrec_r_str(&r, a->name, 1, QUEUE_MAX_ACCOUNT_NAME);
    qrec_r_str(&r, a->rate_cap, 1, QUEUE_MAX_RATE_CAP);
    qrec_r_str(&r, a->header, 2, QUEUE_MAX_ACCOUNT_TEXT);
    qrec_r_str(&r, a->footer, 2, QUEUE_MAX_ACCOUNT_TEXT);
    if (!qrec_r_done(&r))
        return QUEUE_ECORRUPT;
    a->disabled = flags & F_DISABLED;
    a->inherit_header = flags & F_INHERIT_HEADER;
    a->inherit_footer = flags & F_INHERIT_FOOTER;
    a->suppression_shared = flags & F_SUPPRESSION_SHARED;
    a->allow_unsigned = flags & F_ALLOW_UNSIGNED;
    return 0;
}

int qaccount_master_id(struct queue *q, MDB_txn *txn, uint32_t *id)
{
    uint64_t v;
    int err = qmeta_get_u64(q, txn, "master", &v);
    *id = (uint32_t)v;
    return err;
}

int qaccount_load(struct queue *q, MDB_txn *txn, uint32_t id,
                  struct queue_account *a)
{
    unsigned char key[5];
    MDB_val k = id_key(key, id), v;
    int rc = mdb_get(txn, q->dbi[DB_ACCOUNTS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    return qaccount_decode(&v, id, a);
}

/* The parent and flags of account id in txn, read from the head of its
 * record; false for an unknown id or a record too short. */
static bool account_head(struct queue *q, MDB_txn *txn, uint32_t id,
                         uint32_t *parent, unsigned *flags)
{
    unsigned char key[5];
    MDB_val k = id_key(key, id), v;
    if (q->absent[DB_ACCOUNTS] ||
        mdb_get(txn, q->dbi[DB_ACCOUNTS], &k, &v))
        return false;
    struct rec_r r = { .p = v.mv_data, .len = v.mv_size };
    unsigned fmt = qrec_r_u8(&r);
    *parent = qrec_r_u32(&r);
    *flags = qrec_r_u8(&r);
    return !r.bad && fmt == ADMIN_FMT;
}

bool qaccount_held(struct queue *q, MDB_txn *txn, uint32_t account)
{
    uint32_t parent, mparent;
    unsigned flags, mflags;
    if (!account_head(q, txn, account, &parent, &flags))
        return false;
    if (flags & F_DISABLED)
        return true;
    /* a disabled master holds every sub-account's mail */
    return parent && account_head(q, txn, parent, &mparent, &mflags) &&
           (mflags & F_DISABLED);
}

/* Fill in the resolved fields of a from the master (m, which may be a). */
static void account_resolve(struct queue_account *a,
                            const struct queue_account *m)
{
    a->master = m ? m->id : a->id;
    a->suppression_owner = a->suppression_shared && m ? m->id : a->id;
    if (a->inherit_header && m && m != a)
        memcpy(a->header, m->header, sizeof a->header);
    if (a->inherit_footer && m && m != a)
        memcpy(a->footer, m->footer, sizeof a->footer);
}

/* Load account id resolved, using scratch for the master's record. */
static int account_load_resolved(struct queue *q, MDB_txn *txn, uint32_t id,
                                 struct queue_account *a)
{
    int err = qaccount_load(q, txn, id, a);
    if (err)
        return err;
    if (!a->parent) {
        account_resolve(a, a);
        return 0;
    }
    struct queue_account *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    err = qaccount_load(q, txn, a->parent, m);
    if (err == 0)
        account_resolve(a, m);
    else if (err == QUEUE_ENOTFOUND)
        err = QUEUE_ECORRUPT;   /* a sub-account without its master */
    free(m);
    return err;
}

/* Apply the fields of c to a, checking them. */
static int apply_change(struct admin_tx *t, struct queue_account *a,
                        const struct queue_account_change *c, bool master)
{
    unsigned set = c->set;
    if ((set & QUEUE_AC_HEADER) && (set & QUEUE_AC_INHERIT_HEADER) &&
        c->inherit_header)
        return admin_fail(t, -EINVAL, "a header of its own and an inherited "
                          "one exclude each other");
    if ((set & QUEUE_AC_FOOTER) && (set & QUEUE_AC_INHERIT_FOOTER) &&
        c->inherit_footer)
        return admin_fail(t, -EINVAL, "a footer of its own and an inherited "
                          "one exclude each other");
    if (master && (((set & QUEUE_AC_INHERIT_HEADER) && c->inherit_header) ||
                   ((set & QUEUE_AC_INHERIT_FOOTER) && c->inherit_footer)))
        return admin_fail(t, -EINVAL, "the master account has nothing to "
                          "inherit from");
    if (master && (set & QUEUE_AC_SUPPRESSION) && c->suppression_shared)
        return admin_fail(t, -EINVAL, "the master account's suppression "
                          "list is its own");
    if (set & QUEUE_AC_HEADER) {
        if (!admin_text_ok(c->header, QUEUE_MAX_ACCOUNT_TEXT))
            return admin_fail(t, -EINVAL, "header: over %d bytes, control "
                              "characters or not UTF-8",
                              QUEUE_MAX_ACCOUNT_TEXT);
        snprintf(a->header, sizeof a->header, "%s",
                 c->header ? c->header : "");
        a->inherit_header = false;
    }
    if (set & QUEUE_AC_FOOTER) {
        if (!admin_text_ok(c->footer, QUEUE_MAX_ACCOUNT_TEXT))
            return admin_fail(t, -EINVAL, "footer: over %d bytes, control "
                              "characters or not UTF-8",
                              QUEUE_MAX_ACCOUNT_TEXT);
        snprintf(a->footer, sizeof a->footer, "%s",
                 c->footer ? c->footer : "");
        a->inherit_footer = false;
    }
    if (set & QUEUE_AC_INHERIT_HEADER) {
        a->inherit_header = c->inherit_header;
        if (c->inherit_header)
            a->header[0] = 0;
    }
    if (set & QUEUE_AC_INHERIT_FOOTER) {
        a->inherit_footer = c->inherit_footer;
        if (c->inherit_footer)
            a->footer[0] = 0;
    }
    if (set & QUEUE_AC_SUPPRESSION)
        a->suppression_shared = c->suppression_shared;
    if (set & QUEUE_AC_DAILY_CAP)
        a->daily_cap = c->daily_cap;
    if (set & QUEUE_AC_RATE_CAP) {
        const char *r = c->rate_cap ? c->rate_cap : "";
        if (strlen(r) > QUEUE_MAX_RATE_CAP || admin_rate_check(r))
            return admin_fail(t, -EINVAL, "rate cap '%.40s' is not N/s, "
                              "N/min, N/h or N/day", r);
        snprintf(a->rate_cap, sizeof a->rate_cap, "%s", r);
    }
    if (set & QUEUE_AC_ALLOW_UNSIGNED)
        a->allow_unsigned = c->allow_unsigned;
    if (set & QUEUE_AC_DISABLED)
        a->disabled = c->disabled;
    return 0;
}

/* Write a's record (and with index, its name entry). */
static int account_store(struct admin_tx *t, const struct queue_account *a,
                         bool index)
{
    unsigned char key[5], *buf = malloc(ACCOUNT_REC_MAX);
    if (!buf)
        return -ENOMEM;
    size_t len = account_encode(buf, ACCOUNT_REC_MAX, a);
    MDB_val k = id_key(key, a->id), v = { len, buf };
    int rc = len ? mdb_put(t->txn, t->q->dbi[DB_ACCOUNTS], &k, &v, 0) : 0;
    free(buf);
    if (!len)
        return admin_fail(t, QUEUE_ETOOBIG, "account record too large");
    if (rc)
        return admin_mdb(t, rc);
    if (index) {
        unsigned char nk[1 + QUEUE_MAX_ACCOUNT_NAME], idv[4];
        MDB_val n = name_key(nk, a->name), iv = { 4, idv };
        be32_put(idv, a->id);
        if ((rc = mdb_put(t->txn, t->q->dbi[DB_ACCOUNTS], &n, &iv,
                          MDB_NOOVERWRITE)))
            return rc == MDB_KEYEXIST
                ? admin_fail(t, -EEXIST, "account name '%s' is taken",
                             a->name)
                : admin_mdb(t, rc);
    }
    return 0;
}

/* Look up an account id by name in txn (QUEUE_ENOTFOUND if none). */
static int account_id_by_name(struct queue *q, MDB_txn *txn, const char *name,
                              uint32_t *id)
{
    unsigned char nk[1 + QUEUE_MAX_ACCOUNT_NAME];
    if (!admin_name_ok(name, QUEUE_MAX_ACCOUNT_NAME, false))
        return QUEUE_ENOTFOUND;
    MDB_val k = name_key(nk, name), v;
    int rc = mdb_get(txn, q->dbi[DB_ACCOUNTS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != 4)
        return QUEUE_ECORRUPT;
    *id = be32_get(v.mv_data);
    return 0;
}

struct create_arg {
    const char *name;
    uint32_t parent;
    const struct queue_account_change *init;
    const struct queue_actor *by;
    uint32_t id;
    struct queue_account a;
};

static int do_create(struct admin_tx *t, void *arg)
{
    struct create_arg *c = arg;
    struct queue_account *a = &c->a;
    uint32_t master, parent = c->parent, dummy;
    int err;

    if (!admin_name_ok(c->name, QUEUE_MAX_ACCOUNT_NAME, false))
        return admin_fail(t, -EINVAL, "invalid account name '%.80s': 1..%d "
                          "of a-z 0-9 . _ - starting with a letter or digit",
                          c->name ? c->name : "", QUEUE_MAX_ACCOUNT_NAME);
    if ((err = account_id_by_name(t->q, t->txn, c->name, &dummy)) == 0)
        return admin_fail(t, -EEXIST, "account name '%s' is taken", c->name);
    if (err != QUEUE_ENOTFOUND)
        return err;
    if ((err = qaccount_master_id(t->q, t->txn, &master)))
        return err;
    if (parent && !master)
        return admin_fail(t, QUEUE_ENOTFOUND, "no such parent account (there "
                          "is no master yet)");
    if (parent && parent != master)
        return admin_fail(t, -EINVAL, "sub-accounts are one level deep: the "
                          "parent must be the master");
    if (!parent)
        parent = master;   /* 0: this one becomes the master */

    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", c->name);
    a->parent = parent;
    a->created = t->now_ms / 1000;
    a->inherit_header = a->inherit_footer = a->suppression_shared = parent;
    if (c->init && (err = apply_change(t, a, c->init, !parent)))
        return err;
    if ((err = admin_next_id(t, "next_account", &a->id)))
        return err;
    if ((err = account_store(t, a, true)))
        return err;
    int rc;
    if (!parent && (rc = qmeta_put_u64(t->q, t->txn, "master", a->id)))
        return admin_mdb(t, rc);
    c->id = a->id;
    char obj[160];
    if (parent) {
        struct queue_account *m = malloc(sizeof *m);
        if (!m)
            return -ENOMEM;
        err = qaccount_load(t->q, t->txn, parent, m);
        snprintf(obj, sizeof obj, "account %s (sub-account of %s)", a->name,
                 err ? "?" : m->name);
        free(m);
    } else {
        snprintf(obj, sizeof obj, "account %s (master)", a->name);
    }
    return admin_audit_put(t, c->by, a->id, "account create", obj, "ok");
}

int queue_account_create(struct queue *q, const char *name, uint32_t parent,
                         const struct queue_account_change *init,
                         const struct queue_actor *by, uint32_t *id)
{
    struct create_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->name = name;
    c->parent = parent;
    c->init = init;
    c->by = by;
    int err = admin_run(q, do_create, c);
    if (id)
        *id = err ? 0 : c->id;
    free(c);
    return err;
}

struct update_arg {
    uint32_t id;
    const struct queue_account_change *c;
    const struct queue_actor *by;
    struct queue_account a;
};

/* Describe the fields changed, for the audit record. */
static void change_text(char *buf, size_t cap, const struct queue_account *a,
                        unsigned set)
{
    size_t o = 0;
    buf[0] = 0;
#define ADD(...)                                                             \
    do {                                                                     \
        int n_ = snprintf(buf + o, cap - o, __VA_ARGS__);                    \
        if (n_ > 0 && (size_t)n_ < cap - o)                                  \
            o += (size_t)n_;                                                 \
    } while (0)
    ADD("account %s", a->name);
    if (set & (QUEUE_AC_HEADER | QUEUE_AC_INHERIT_HEADER))
        ADD(" header=%s", a->inherit_header ? "inherit" : "own");
    if (set & (QUEUE_AC_FOOTER | QUEUE_AC_INHERIT_FOOTER))
        ADD(" footer=%s", a->inherit_footer ? "inherit" : "own");
    if (set & QUEUE_AC_SUPPRESSION)
        ADD(" suppression=%s", a->suppression_shared ? "shared" : "own");
    if (set & QUEUE_AC_DAILY_CAP)
        ADD(" daily_cap=%llu", (unsigned long long)a->daily_cap);
    if (set & QUEUE_AC_RATE_CAP)
        ADD(" rate_cap=%s", *a->rate_cap ? a->rate_cap : "none");
    if (set & QUEUE_AC_ALLOW_UNSIGNED)
        ADD(" allow_unsigned=%s", a->allow_unsigned ? "yes" : "no");
#undef ADD
}

static int do_update(struct admin_tx *t, void *arg)
{
    struct update_arg *u = arg;
    struct queue_account *a = &u->a;
    int err = qaccount_load(t->q, t->txn, u->id, a);
    if (err == QUEUE_ENOTFOUND)
        return admin_fail(t, err, "no account with id %u", u->id);
    if (err)
        return err;
    if ((err = apply_change(t, a, u->c, !a->parent)) ||
        (err = account_store(t, a, false)))
        return err;
    /* enabled: mail the engine parked while it was held is due now (a
     * master's enable releases its sub-accounts' mail as well) */
    uint64_t moved;
    int rc;
    if ((u->c->set & QUEUE_AC_DISABLED) && !a->disabled &&
        (rc = qpark_unpark_accounts(t->q, t->txn, t->now_ms / 1000, &moved)))
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    const char *action = "account update";
    if (u->c->set == QUEUE_AC_DISABLED) {
        action = a->disabled ? "account disable" : "account enable";
        snprintf(obj, sizeof obj, "account %s", a->name);
    } else {
        change_text(obj, sizeof obj, a, u->c->set);
    }
    return admin_audit_put(t, u->by, a->id, action, obj, "ok");
}

int queue_account_update(struct queue *q, uint32_t id,
                         const struct queue_account_change *c,
                         const struct queue_actor *by)
{
    if (!c) {
        queue_set_detail("no change given");
        return -EINVAL;
    }
    struct update_arg *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->id = id;
    u->c = c;
    u->by = by;
    int err = admin_run(q, do_update, u);
    free(u);
    return err;
}

struct get_arg {
    struct queue *q;
    uint32_t id;
    const char *name;
    struct queue_account *a;
};

static int do_get(MDB_txn *txn, void *arg)
{
    struct get_arg *g = arg;
    struct queue *q = g->q;
    int err;
    if (g->name && (err = account_id_by_name(q, txn, g->name, &g->id)))
        return err;
    return account_load_resolved(q, txn, g->id, g->a);
}

/* Shared by get and find. */
static int get_account(struct queue *q, uint32_t id, const char *name,
                       struct queue_account *a)
{
    struct get_arg g = { q, id, name, a };
    if (admin_absent(q)) {
        memset(a, 0, sizeof *a);
        return QUEUE_ENOTFOUND;
    }
    int err = admin_read(q, do_get, &g);
    if (err)
        memset(a, 0, sizeof *a);
    return err;
}

int queue_account_get(struct queue *q, uint32_t id, struct queue_account *a)
{
    return get_account(q, id, NULL, a);
}

int queue_account_find(struct queue *q, const char *name,
                       struct queue_account *a)
{
    if (!name) {
        memset(a, 0, sizeof *a);
        return QUEUE_ENOTFOUND;
    }
    return get_account(q, 0, name, a);
}

int queue_account_master(struct queue *q, uint32_t *id)
{
    MDB_txn *txn;
    *id = 0;
    if (admin_absent(q))
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = qaccount_master_id(q, txn, id);
    queue_read_end(q, txn);
    return err;
}

long queue_accounts(struct queue *q,
                    int (*cb)(void *arg, const struct queue_account *a),
                    void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    struct queue_account *a, *m;
    uint32_t master;
    long n = 0;
    int err, rc;

    if (admin_absent(q))
        return 0;
    if (!(a = malloc(2 * sizeof *a)))
        return -ENOMEM;
    m = a + 1;
    if ((err = queue_read_begin(q, &txn))) {
        free(a);
        return err;
    }
    if ((err = qaccount_master_id(q, txn, &master)) ||
        (master && (err = qaccount_load(q, txn, master, m)))) {
        queue_read_end(q, txn);
        free(a);
        return err == QUEUE_ENOTFOUND ? QUEUE_ECORRUPT : err;
    }
    if (master)
        account_resolve(m, m);
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_ACCOUNTS], &cur))) {
        queue_read_end(q, txn);
        free(a);
        return queue_err_mdb(rc);
    }
    MDB_val k = { 1, "i" }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 5 || kp[0] != 'i')
            break;
        uint32_t id = be32_get(kp + 1);
        if ((err = qaccount_decode(&v, id, a)))
            break;
        account_resolve(a, master ? m : NULL);
        n++;
        if (cb(arg, a))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(a);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
