/*
 * suppress.c - suppression lists: addresses an owner account never mails.
 *
 * DESCRIPTION
 *   Owns the "suppress" database: (owner account, lower-case address) ->
 *   since, added by, reason and source (layouts in lists_int.h).  The
 *   owner is the account whose list it is: a sub-account's own, or the
 *   master's when the sub-account shares it (queue_account.
 *   suppression_owner).  Changes name the account that acts and the list
 *   is found from it in the change's own transaction; every entry records
 *   that account as the one that added it, so on a shared list each
 *   sub-account's unsubscribes and bounces stay its own: a listing can
 *   pass only one account's entries, and a removal by another account is
 *   refused unless the caller says its actor may remove any (the tools: an
 *   admin of the master).  Every entry blocks whoever uses the list
 *   (queue_suppressed()), whoever added it.  Entries written before
 *   sluice kept "added by" (format 1) read as added by the owner.
 *
 *   Addresses compare without regard to case, so "Bob@Example.com" and
 *   "bob@example.com" are one entry; domains are expected in A-label form
 *   (the tools convert IDNs).  Imports check the same keys inside their
 *   transactions (import.c).  Entries are added one by one (audited
 *   each), in batches of up to QUEUE_SUPPRESS_BATCH in one transaction
 *   with one audit record (the suppression import), and removed one by
 *   one.  Bounces and complaints are suppressed by hygiene.c in the
 *   transaction of the outcome or report that causes them.  An address
 *   already listed keeps its first record: nobody's add or import
 *   re-attributes another account's entry.
 *
 * DIAGNOSTICS
 *   -EINVAL for an empty or over-long address or a reason or source with
 *   control characters or over its cap, -EEXIST for an address already on
 *   the list (the first record stays), -EACCES for removing another
 *   account's entry without `any`, QUEUE_ENOTFOUND for an unknown account
 *   or (remove) address, QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

/* The key of (owner, addr), or a zero-length key for a bad address. */
static MDB_val key_of(unsigned char *buf, uint32_t owner, const char *addr)
{
    char lower[QUEUE_MAX_RCPT + 1];
    size_t n = addr ? strnlen(addr, QUEUE_MAX_RCPT + 1) : 0;
    if (!addr || memchr(addr, '@', n) == NULL || queue_check_rcpt(addr) ||
        !(n = qaddr_lower(addr, n, lower)))
        return (MDB_val){ 0, NULL };
    return qsupp_key(buf, owner, lower, n);
}

size_t qsupp_encode(unsigned char *buf, int64_t since, uint32_t added_by,
                    const char *reason, const char *source)
{
    struct rec_w w = { .p = buf, .cap = SUPP_REC_MAX };
    qrec_w_u8(&w, SUPP_FMT);
    qrec_w_u64(&w, (uint64_t)since);
    qrec_w_u32(&w, added_by);
    qrec_w_str(&w, reason, 1, QUEUE_MAX_SUPPRESS_REASON);
    qrec_w_str(&w, source, 1, QUEUE_MAX_SUPPRESS_SOURCE);
    return w.len;   /* every part is cut to its cap: never over */
}

int queue_suppressed(struct queue *q, uint32_t owner, const char *email,
                     bool *yes)
{
    unsigned char kb[SUPPRESS_KEY_MAX];
    MDB_txn *txn;
    MDB_val k = key_of(kb, owner, email), v;
    *yes = false;
    if (!k.mv_size) {
        queue_set_detail("invalid address");
        return -EINVAL;
    }
    if (qlists_absent(q))
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    int rc = mdb_get(txn, q->dbi[DB_SUPPRESS], &k, &v);
    queue_read_end(q, txn);
    if (rc == 0)
        *yes = true;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : 0;
}

/* The list an account uses, found in a change's transaction. */
struct supp_list {
    uint32_t account, owner;
    char account_name[QUEUE_MAX_ACCOUNT_NAME + 1];
    char owner_name[QUEUE_MAX_ACCOUNT_NAME + 1];
};

/* Find the list account uses (scratch: room for one account record). */
static int list_find(struct admin_tx *t, uint32_t account,
                     struct queue_account *scratch, struct supp_list *l)
{
    int err = qaccount_load(t->q, t->txn, account, scratch);
    if (err)
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", account) : err;
    l->account = account;
    l->owner = scratch->suppression_shared && scratch->parent
        ? scratch->parent : account;
    snprintf(l->account_name, sizeof l->account_name, "%s", scratch->name);
    if (l->owner == account) {
        memcpy(l->owner_name, l->account_name, sizeof l->owner_name);
        return 0;
    }
    if ((err = qaccount_load(t->q, t->txn, l->owner, scratch)))
        return err == QUEUE_ENOTFOUND ? QUEUE_ECORRUPT : err;
    snprintf(l->owner_name, sizeof l->owner_name, "%s", scratch->name);
    return 0;
}

/* The name of account id into out (QUEUE_MAX_ACCOUNT_NAME + 1 bytes):
 * "#id" when it cannot be read. */
static void name_of(struct queue *q, MDB_txn *txn, uint32_t id,
                    struct queue_account *scratch, char *out)
{
    if (qaccount_load(q, txn, id, scratch) == 0)
        snprintf(out, QUEUE_MAX_ACCOUNT_NAME + 1, "%s", scratch->name);
    else
        snprintf(out, QUEUE_MAX_ACCOUNT_NAME + 1, "#%u", id);
}

/* The account id of the audit record of a change by `by` for account. */
static uint32_t audit_account(const struct queue_actor *by, uint32_t account)
{
    return by && by->account ? by->account : account;
}

/* Whether reason and source are one line of text each within their caps. */
static bool texts_ok(const char *reason, const char *source)
{
    return admin_text_ok(reason, QUEUE_MAX_SUPPRESS_REASON) &&
           admin_text_ok(source, QUEUE_MAX_SUPPRESS_SOURCE) &&
           !(reason && strpbrk(reason, "\t\r\n")) &&
           !(source && strpbrk(source, "\t\r\n"));
}

/* Put one entry on l's list, added by l's account: 0, -EEXIST (the entry
 * there stays as it is) or an LMDB failure (recorded in t). */
static int entry_put(struct admin_tx *t, const struct supp_list *l,
                     const MDB_val *k, const char *reason,
                     const char *source)
{
    unsigned char buf[SUPP_REC_MAX];
    MDB_val key = *k, v = { qsupp_encode(buf, t->now_ms / 1000, l->account,
                                         reason, source), buf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_SUPPRESS], &key, &v,
                     MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return -EEXIST;
    return rc ? admin_mdb(t, rc) : 0;
}

struct add_arg {
    uint32_t account;
    const char *email, *reason, *source;
    const struct queue_actor *by;
    struct supp_list l;
    struct queue_account a;
};

/* The change of queue_suppress_add(): checks, record, audit. */
static int do_add(struct admin_tx *t, void *arg)
{
    struct add_arg *c = arg;
    unsigned char kb[SUPPRESS_KEY_MAX];
    int err;
    if (!texts_ok(c->reason, c->source))
        return admin_fail(t, -EINVAL, "reason and source: one line of "
                          "text, at most %d bytes",
                          QUEUE_MAX_SUPPRESS_REASON);
    if ((err = list_find(t, c->account, &c->a, &c->l)))
        return err;
    MDB_val k = key_of(kb, c->l.owner, c->email);
    if (!k.mv_size)
        return admin_fail(t, -EINVAL, "invalid address '%.80s'",
                          c->email ? c->email : "");
    err = entry_put(t, &c->l, &k, c->reason, c->source);
    if (err == -EEXIST)
        return admin_fail(t, -EEXIST, "%.200s is already on the "
                          "suppression list of %s", c->email,
                          c->l.owner_name);
    if (err)
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], by[QUEUE_MAX_ACCOUNT_NAME + 16];
    snprintf(by, sizeof by, ", added by %s", c->l.account_name);
    if (snprintf(obj, sizeof obj, "%s on the suppression list of %s%s (%s)",
                 c->email, c->l.owner_name,
                 c->l.owner == c->account ? "" : by,
                 c->reason && *c->reason ? c->reason : "no reason")
        >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0; /* cut to the audit record's cap */
    return admin_audit_put(t, c->by, audit_account(c->by, c->account),
                           "suppress add", obj, "ok");
}

int queue_suppress_add(struct queue *q, uint32_t account, const char *email,
                       const char *reason, const char *source,
                       const struct queue_actor *by)
{
    struct add_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->account = account;
    c->email = email;
    c->reason = reason;
    c->source = source;
    c->by = by;
    int err = admin_run(q, do_add, c);
    free(c);
    return err;
}

struct remove_arg {
    uint32_t account;
    const char *email;
    bool any;
    const struct queue_actor *by;
    struct supp_list l;
    struct queue_account a;
};

/* Delete one entry (the account's own, unless any) and audit it. */
static int do_remove(struct admin_tx *t, void *arg)
{
    struct remove_arg *c = arg;
    unsigned char kb[SUPPRESS_KEY_MAX];
    char email[QUEUE_MAX_RCPT + 1], reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
    char added[QUEUE_MAX_ACCOUNT_NAME + 1];
    struct queue_suppression s;
    int err, rc;
    if ((err = list_find(t, c->account, &c->a, &c->l)))
        return err;
    MDB_val k = key_of(kb, c->l.owner, c->email), v;
    if (!k.mv_size)
        return admin_fail(t, -EINVAL, "invalid address '%.80s'",
                          c->email ? c->email : "");
    rc = mdb_get(t->txn, t->q->dbi[DB_SUPPRESS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return admin_fail(t, QUEUE_ENOTFOUND, "%.200s is not on the "
                          "suppression list of %s", c->email,
                          c->l.owner_name);
    if (rc)
        return admin_mdb(t, rc);
    if (qsupp_decode(&k, &v, email, reason, source, &s)) {
        if (!c->any)   /* who added it cannot be told: the master's call */
            return admin_fail(t, QUEUE_ECORRUPT, "the entry of %.200s on "
                              "the suppression list of %s does not decode",
                              c->email, c->l.owner_name);
        s.added_by = c->l.owner;
    }
    name_of(t->q, t->txn, s.added_by, &c->a, added);
    if (s.added_by != c->account && !c->any)
        return admin_fail(t, -EACCES, "%.200s was added by %s: only an "
                          "admin of the master may remove it", c->email,
                          added);
    if ((rc = mdb_del(t->txn, t->q->dbi[DB_SUPPRESS], &k, NULL)))
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "%s off the suppression list of %s "
                 "(added by %s)", c->email, c->l.owner_name, added)
        >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;
    return admin_audit_put(t, c->by, audit_account(c->by, c->account),
                           "suppress remove", obj, "ok");
}

int queue_suppress_remove(struct queue *q, uint32_t account,
                          const char *email, bool any,
                          const struct queue_actor *by)
{
    struct remove_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->account = account;
    c->email = email;
    c->any = any;
    c->by = by;
    int err = admin_run(q, do_remove, c);
    free(c);
    return err;
}

struct batch_arg {
    uint32_t account;
    struct queue_suppress_entry *e;
    size_t n;
    const char *action;
    const struct queue_actor *by;
    struct supp_list l;
    struct queue_account a;
};

/* Put one entry of a batch; 0, -EEXIST, -EINVAL or a write failure (a
 * failure other than those ends the batch). */
static int batch_put(struct admin_tx *t, const struct supp_list *l,
                     const struct queue_suppress_entry *e)
{
    unsigned char kb[SUPPRESS_KEY_MAX];
    MDB_val k = key_of(kb, l->owner, e->email);
    if (!k.mv_size || !texts_ok(e->reason, e->source))
        return -EINVAL;
    return entry_put(t, l, &k, e->reason, e->source);
}

/* Add a batch in one transaction with one audit record. */
static int do_batch(struct admin_tx *t, void *arg)
{
    struct batch_arg *c = arg;
    size_t added = 0, dup = 0, bad = 0;
    int err;
    if ((err = list_find(t, c->account, &c->a, &c->l)))
        return err;
    for (size_t i = 0; i < c->n; i++) {
        int r = batch_put(t, &c->l, &c->e[i]);
        c->e[i].result = r;
        if (r == 0)
            added++;
        else if (r == -EEXIST)
            dup++;
        else if (r == -EINVAL)
            bad++;
        else
            return r;
    }
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    snprintf(obj, sizeof obj, "suppression list of %s%s%s: added %zu, "
             "already there %zu, invalid %zu", c->l.owner_name,
             c->l.owner == c->account ? "" : ", as ",
             c->l.owner == c->account ? "" : c->l.account_name, added, dup,
             bad);
    return admin_audit_put(t, c->by, audit_account(c->by, c->account),
                           c->action ? c->action : "suppress import", obj,
                           "ok");
}

int queue_suppress_add_batch(struct queue *q, uint32_t account,
                             struct queue_suppress_entry *e, size_t n,
                             const char *action,
                             const struct queue_actor *by)
{
    if (n > QUEUE_SUPPRESS_BATCH)
        return -EINVAL;
    struct batch_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->account = account;
    c->e = e;
    c->n = n;
    c->action = action;
    c->by = by;
    int err = admin_run(q, do_batch, c);
    free(c);
    return err;
}

/* Decode a record (format 1 or 2) into s; strings into the caller's
 * buffers.  s->added_by_name is left alone. */
int qsupp_decode(const MDB_val *k, const MDB_val *v, char *email,
                 char *reason, char *source, struct queue_suppression *s)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    const unsigned char *kp = k->mv_data;
    if (k->mv_size < 5 || k->mv_size > SUPPRESS_KEY_MAX)
        return QUEUE_ECORRUPT;
    s->owner = be32_get(kp);
    memcpy(email, kp + 4, k->mv_size - 4);
    email[k->mv_size - 4] = 0;
    unsigned fmt = qrec_r_u8(&r);
    if (fmt != SUPP_FMT && fmt != SUPP_FMT_V1)
        return QUEUE_ECORRUPT;
    s->since = (int64_t)qrec_r_u64(&r);
    s->added_by_recorded = fmt == SUPP_FMT;
    s->added_by = s->added_by_recorded ? qrec_r_u32(&r) : s->owner;
    qrec_r_str(&r, reason, 1, QUEUE_MAX_SUPPRESS_REASON);
    qrec_r_str(&r, source, 1, QUEUE_MAX_SUPPRESS_SOURCE);
    s->email = email;
    s->reason = reason;
    s->source = source;
    return qrec_r_done(&r) && s->added_by ? 0 : QUEUE_ECORRUPT;
}

/* Names of the accounts met in one listing: a small cache, as entries of
 * a few accounts interleave in address order. */
#define NAME_SLOTS 16
struct name_cache {
    uint32_t id[NAME_SLOTS];
    char name[NAME_SLOTS][QUEUE_MAX_ACCOUNT_NAME + 1];
    struct queue_account scratch;
};

/* The name of account id, read in txn when not cached. */
static const char *cached_name(struct queue *q, MDB_txn *txn,
                               struct name_cache *nc, uint32_t id)
{
    unsigned i = id % NAME_SLOTS;
    if (nc->id[i] != id || !id) {
        name_of(q, txn, id, &nc->scratch, nc->name[i]);
        nc->id[i] = id;
    }
    return nc->name[i];
}

long queue_suppressions(struct queue *q, uint32_t owner, uint32_t added_by,
                        const char *from,
                        int (*cb)(void *arg,
                                  const struct queue_suppression *s),
                        void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char pre[SUPPRESS_KEY_MAX];
    char email[QUEUE_MAX_RCPT + 1], reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1], lower[QUEUE_MAX_RCPT + 1];
    struct queue_suppression s;
    long n = 0;
    int err = 0, rc;

    if (qlists_absent(q))
        return 0;
    struct name_cache *nc = calloc(1, sizeof *nc);
    if (!nc)
        return -ENOMEM;
    size_t fl = from ? strnlen(from, QUEUE_MAX_RCPT + 1) : 0;
    fl = fl ? qaddr_lower(from, fl, lower) : 0;
    MDB_val k = qsupp_key(pre, owner, lower, fl), v;
    if ((err = queue_read_begin(q, &txn))) {
        free(nc);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_SUPPRESS], &cur))) {
        queue_read_end(q, txn);
        free(nc);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 5 || be32_get(k.mv_data) != owner ||
            ((const unsigned char *)k.mv_data)[4] == 0xff)
            break; /* 0xff: soft-bounce streaks (hygiene.c) follow */
        if ((err = qsupp_decode(&k, &v, email, reason, source, &s)))
            break;
        if (added_by && s.added_by != added_by)
            continue;
        s.added_by_name = cached_name(q, txn, nc, s.added_by);
        n++;
        if (cb(arg, &s))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(nc);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
