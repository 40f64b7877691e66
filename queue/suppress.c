/*
 * suppress.c - suppression lists: addresses an owner account never mails.
 *
 * DESCRIPTION
 *   Owns the "suppress" database: (owner account, lower-case address) ->
 *   reason, source and time (layouts in lists_int.h).  The owner is the
 *   account whose list it is: a sub-account's own, or the master's when the
 *   sub-account shares it (queue_account.suppression_owner); callers pass
 *   the owner, not the account that acts.  Addresses compare without
 *   regard to case, so "Bob@Example.com" and "bob@example.com" are one
 *   entry; domains are expected in A-label form (the tools convert IDNs).
 *   Imports check the same keys inside their transactions (import.c).
 *   Entries are added one by one (audited each), in batches of up to
 *   QUEUE_SUPPRESS_BATCH in one transaction with one audit record (the
 *   suppression import and the feedback ingest), and removed one by one.
 *
 * DIAGNOSTICS
 *   -EINVAL for an empty or over-long address or a reason or source with
 *   control characters or over its cap, -EEXIST for an address already on
 *   the list (the first record stays), QUEUE_ENOTFOUND for an unknown
 *   owner account.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

#define SUPP_FMT 1
#define SUPP_REC_MAX (1 + 8 + 1 + QUEUE_MAX_SUPPRESS_REASON + 1 +            \
                      QUEUE_MAX_SUPPRESS_SOURCE)

/* The key of (owner, addr), or a zero-length key for a bad address. */
static MDB_val key_of(unsigned char *buf, uint32_t owner, const char *addr)
{
    char lower[QUEUE_MAX_RCPT + 1];
    size_t n = addr ? strnlen(addr, QUEUE_MAX_RCPT + 1) : 0;
    if (!addr || memchr(addr, '@', n) == NULL || queue_check_rcpt(addr) ||
        !(n = addr_lower(addr, n, lower)))
        return (MDB_val){ 0, NULL };
    return suppress_key(buf, owner, lower, n);
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
    if (lists_absent(q))
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

struct add_arg {
    uint32_t owner;
    const char *email, *reason, *source;
    const struct queue_actor *by;
    struct queue_account a;
};

/* The change of queue_suppress_add(): checks, record, audit. */
static int do_add(struct admin_tx *t, void *arg)
{
    struct add_arg *c = arg;
    unsigned char kb[SUPPRESS_KEY_MAX], buf[SUPP_REC_MAX];
    int err, rc;
    MDB_val k = key_of(kb, c->owner, c->email), v;
    if (!k.mv_size)
        return admin_fail(t, -EINVAL, "invalid address '%.80s'",
                          c->email ? c->email : "");
    if (!admin_text_ok(c->reason, QUEUE_MAX_SUPPRESS_REASON) ||
        !admin_text_ok(c->source, QUEUE_MAX_SUPPRESS_SOURCE) ||
        (c->reason && strpbrk(c->reason, "\t\r\n")) ||
        (c->source && strpbrk(c->source, "\t\r\n")))
        return admin_fail(t, -EINVAL, "reason and source: one line of "
                          "text, at most %d bytes",
                          QUEUE_MAX_SUPPRESS_REASON);
    if ((err = account_load(t->q, t->txn, c->owner, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->owner) : err;
    rc = mdb_get(t->txn, t->q->dbi[DB_SUPPRESS], &k, &v);
    if (rc == 0)
        return admin_fail(t, -EEXIST, "%.200s is already on the "
                          "suppression list of %s", c->email, c->a.name);
    if (rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    struct rec_w w = { .p = buf, .cap = sizeof buf };
    rw_u8(&w, SUPP_FMT);
    rw_u64(&w, (uint64_t)(t->now_ms / 1000));
    rw_str(&w, c->reason, 1, QUEUE_MAX_SUPPRESS_REASON);
    rw_str(&w, c->source, 1, QUEUE_MAX_SUPPRESS_SOURCE);
    v = (MDB_val){ w.len, buf };
    if (w.over)
        return admin_fail(t, QUEUE_ETOOBIG, "suppression record too large");
    if ((rc = mdb_put(t->txn, t->q->dbi[DB_SUPPRESS], &k, &v, 0)))
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "%s on the suppression list of %s (%s)",
                 c->email, c->a.name, c->reason && *c->reason ? c->reason
                                                              : "no reason")
        >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0; /* cut to the audit record's cap */
    return admin_audit_put(t, c->by, c->by && c->by->account
                                         ? c->by->account : c->owner,
                           "suppress add", obj, "ok");
}

int queue_suppress_add(struct queue *q, uint32_t owner, const char *email,
                       const char *reason, const char *source,
                       const struct queue_actor *by)
{
    struct add_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct add_arg){ owner, email, reason, source, by, { 0 } };
    int err = admin_run(q, do_add, c);
    free(c);
    return err;
}

struct remove_arg {
    uint32_t owner;
    const char *email;
    const struct queue_actor *by;
    struct queue_account a;
};

/* Delete one entry and audit it. */
static int do_remove(struct admin_tx *t, void *arg)
{
    struct remove_arg *c = arg;
    unsigned char kb[SUPPRESS_KEY_MAX];
    int err, rc;
    MDB_val k = key_of(kb, c->owner, c->email);
    if (!k.mv_size)
        return admin_fail(t, -EINVAL, "invalid address '%.80s'",
                          c->email ? c->email : "");
    if ((err = account_load(t->q, t->txn, c->owner, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->owner) : err;
    rc = mdb_del(t->txn, t->q->dbi[DB_SUPPRESS], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return admin_fail(t, QUEUE_ENOTFOUND, "%.200s is not on the "
                          "suppression list of %s", c->email, c->a.name);
    if (rc)
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "%s off the suppression list of %s",
                 c->email, c->a.name) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;
    return admin_audit_put(t, c->by, c->by && c->by->account
                                         ? c->by->account : c->owner,
                           "suppress remove", obj, "ok");
}

int queue_suppress_remove(struct queue *q, uint32_t owner, const char *email,
                          const struct queue_actor *by)
{
    struct remove_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct remove_arg){ owner, email, by, { 0 } };
    int err = admin_run(q, do_remove, c);
    free(c);
    return err;
}

struct batch_arg {
    uint32_t owner;
    struct queue_suppress_entry *e;
    size_t n;
    const char *action;
    const struct queue_actor *by;
    struct queue_account a;
};

/* Put one entry of a batch; 0, -EEXIST, -EINVAL or a write failure (> 0
 * never; a failure other than those ends the batch). */
static int batch_put(struct admin_tx *t, uint32_t owner,
                     const struct queue_suppress_entry *e)
{
    unsigned char kb[SUPPRESS_KEY_MAX], buf[SUPP_REC_MAX];
    MDB_val k = key_of(kb, owner, e->email), v;
    if (!k.mv_size || !admin_text_ok(e->reason, QUEUE_MAX_SUPPRESS_REASON) ||
        !admin_text_ok(e->source, QUEUE_MAX_SUPPRESS_SOURCE) ||
        (e->reason && strpbrk(e->reason, "\t\r\n")) ||
        (e->source && strpbrk(e->source, "\t\r\n")))
        return -EINVAL;
    int rc = mdb_get(t->txn, t->q->dbi[DB_SUPPRESS], &k, &v);
    if (rc == 0)
        return -EEXIST;
    if (rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    struct rec_w w = { .p = buf, .cap = sizeof buf };
    rw_u8(&w, SUPP_FMT);
    rw_u64(&w, (uint64_t)(t->now_ms / 1000));
    rw_str(&w, e->reason, 1, QUEUE_MAX_SUPPRESS_REASON);
    rw_str(&w, e->source, 1, QUEUE_MAX_SUPPRESS_SOURCE);
    if (w.over)
        return -EINVAL;
    v = (MDB_val){ w.len, buf };
    if ((rc = mdb_put(t->txn, t->q->dbi[DB_SUPPRESS], &k, &v, 0)))
        return admin_mdb(t, rc);
    return 0;
}

/* Add a batch in one transaction with one audit record. */
static int do_batch(struct admin_tx *t, void *arg)
{
    struct batch_arg *c = arg;
    size_t added = 0, dup = 0, bad = 0;
    int err;
    if ((err = account_load(t->q, t->txn, c->owner, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->owner) : err;
    for (size_t i = 0; i < c->n; i++) {
        int r = batch_put(t, c->owner, &c->e[i]);
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
    snprintf(obj, sizeof obj, "suppression list of %s: added %zu, already "
             "there %zu, invalid %zu", c->a.name, added, dup, bad);
    return admin_audit_put(t, c->by, c->by && c->by->account
                                         ? c->by->account : c->owner,
                           c->action ? c->action : "suppress import", obj,
                           "ok");
}

int queue_suppress_add_batch(struct queue *q, uint32_t owner,
                             struct queue_suppress_entry *e, size_t n,
                             const char *action,
                             const struct queue_actor *by)
{
    if (n > QUEUE_SUPPRESS_BATCH)
        return -EINVAL;
    struct batch_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct batch_arg){ owner, e, n, action, by, { 0 } };
    int err = admin_run(q, do_batch, c);
    free(c);
    return err;
}

/* Decode a record into s; strings into the caller's buffers. */
int supp_decode(const MDB_val *k, const MDB_val *v, char *email,
                char *reason, char *source, struct queue_suppression *s)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    const unsigned char *kp = k->mv_data;
    if (k->mv_size < 5 || k->mv_size > SUPPRESS_KEY_MAX)
        return QUEUE_ECORRUPT;
    s->owner = be32_get(kp);
    memcpy(email, kp + 4, k->mv_size - 4);
    email[k->mv_size - 4] = 0;
    if (rr_u8(&r) != SUPP_FMT)
        return QUEUE_ECORRUPT;
    s->since = (int64_t)rr_u64(&r);
    rr_str(&r, reason, 1, QUEUE_MAX_SUPPRESS_REASON);
    rr_str(&r, source, 1, QUEUE_MAX_SUPPRESS_SOURCE);
    s->email = email;
    s->reason = reason;
    s->source = source;
    return rr_done(&r) ? 0 : QUEUE_ECORRUPT;
}

long queue_suppressions(struct queue *q, uint32_t owner, const char *from,
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

    if (lists_absent(q))
        return 0;
    size_t fl = from ? strnlen(from, QUEUE_MAX_RCPT + 1) : 0;
    fl = fl ? addr_lower(from, fl, lower) : 0;
    MDB_val k = suppress_key(pre, owner, lower, fl), v;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_SUPPRESS], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 5 || be32_get(k.mv_data) != owner ||
            ((const unsigned char *)k.mv_data)[4] == 0xff)
            break; /* 0xff: soft-bounce streaks (hygiene.c) follow */
        if ((err = supp_decode(&k, &v, email, reason, source, &s)))
            break;
        n++;
        if (cb(arg, &s))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
