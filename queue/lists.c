/*
 * lists.c - contact lists: create, find, list and delete, and the list
 * records that the contact and import code share.
 *
 * DESCRIPTION
 *   Owns the "lists" database (layouts in lists_int.h).  A list belongs to
 *   one account; its name is unique within that account
 *   ([a-z0-9][a-z0-9._-]{0,62}).  Its record keeps the merge field names
 *   (the columns of its imports, in the order they first appeared) and the
 *   number of contacts.  Ids come from the meta counter "next_list".
 *
 *   Deleting a list removes its name and marks the record deleting in one
 *   audited change; its contacts then go in chunks of LIST_PURGE_CHUNK,
 *   each a change of its own, so a list of millions never makes one huge
 *   transaction nor holds the writer for long.  The record goes with the
 *   last chunk.  A delete that was interrupted (crash) is finished by the
 *   next queue_list_delete() of any list.
 *
 * DIAGNOSTICS
 *   -EINVAL for a malformed name, -EEXIST for a name in use in the account,
 *   QUEUE_ENOTFOUND for an unknown account or list (a list being deleted
 *   counts as unknown), QUEUE_ECORRUPT for a record that does not decode.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

#define LIST_PURGE_CHUNK 20000

bool qlists_absent(struct queue *q)
{
    return q->absent[DB_LISTS];
}

/* 'i' key of a list. */
static MDB_val id_key(unsigned char *buf, uint64_t id)
{
    buf[0] = 'i';
    be64_put(buf + 1, id);
    return (MDB_val){ 9, buf };
}

/* 'n' key of (account, name); buf holds 5 + QUEUE_MAX_LIST_NAME bytes. */
static MDB_val name_key(unsigned char *buf, uint32_t account,
                        const char *name)
{
    size_t n = strnlen(name, QUEUE_MAX_LIST_NAME);
    buf[0] = 'n';
    be32_put(buf + 1, account);
    memcpy(buf + 5, name, n);
    return (MDB_val){ 5 + n, buf };
}

/* Pack r into buf (LIST_REC_MAX bytes); its length, 0 if over. */
static size_t list_encode(unsigned char *buf, const struct list_rec *r)
{
    struct rec_w w = { .p = buf, .cap = LIST_REC_MAX };
    qrec_w_u8(&w, LIST_FMT);
    qrec_w_u8(&w, r->flags);
    qrec_w_u32(&w, r->l.account);
    qrec_w_u64(&w, (uint64_t)r->l.created);
    qrec_w_u64(&w, r->l.contacts);
    qrec_w_str(&w, r->l.name, 1, QUEUE_MAX_LIST_NAME);
    qrec_w_u8(&w, r->l.nfields);
    for (unsigned i = 0; i < r->l.nfields; i++)
        qrec_w_str(&w, r->l.fields[i], 1, QUEUE_MAX_FIELD_NAME);
    return w.over ? 0 : w.len;
}

/* Unpack a stored list record of id. */
int qlist_decode(const MDB_val *v, uint64_t id, struct list_rec *r)
{
    struct rec_r rd = { .p = v->mv_data, .len = v->mv_size };
    memset(r, 0, sizeof *r);
    r->l.id = id;
    if (qrec_r_u8(&rd) != LIST_FMT)
        return QUEUE_ECORRUPT;
    r->flags = qrec_r_u8(&rd);
    r->l.account = qrec_r_u32(&rd);
    r->l.created = (int64_t)qrec_r_u64(&rd);
    r->l.contacts = qrec_r_u64(&rd);
    qrec_r_str(&rd, r->l.name, 1, QUEUE_MAX_LIST_NAME);
    r->l.nfields = qrec_r_u8(&rd);
    if (r->l.nfields > QUEUE_MAX_FIELDS)
        return QUEUE_ECORRUPT;
    for (unsigned i = 0; i < r->l.nfields; i++)
        qrec_r_str(&rd, r->l.fields[i], 1, QUEUE_MAX_FIELD_NAME);
    return qrec_r_done(&rd) ? 0 : QUEUE_ECORRUPT;
}

int qlist_load(struct queue *q, MDB_txn *txn, uint64_t id, struct list_rec *r)
{
    unsigned char kb[9];
    MDB_val k = id_key(kb, id), v;
    if (qlists_absent(q))
        return QUEUE_ENOTFOUND;
    int rc = mdb_get(txn, q->dbi[DB_LISTS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    return qlist_decode(&v, id, r);
}

int qlist_store(struct admin_tx *t, const struct list_rec *r)
{
    unsigned char kb[9], buf[LIST_REC_MAX];
    size_t len = list_encode(buf, r);
    if (!len)
        return admin_fail(t, QUEUE_ETOOBIG, "list record too large");
    MDB_val k = id_key(kb, r->l.id), v = { len, buf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_LISTS], &k, &v, 0);
    return rc ? admin_mdb(t, rc) : 0;
}

int qmeta_take(struct admin_tx *t, const char *name, uint64_t n, uint64_t *v)
{
    int err = qmeta_get_u64(t->q, t->txn, name, v);
    if (err)
        return err;
    if (*v == 0)
        *v = 1;
    if (*v > UINT64_MAX - n - 1)
        return admin_fail(t, QUEUE_EFULL, "%s: ids used up", name);
    int rc = qmeta_put_u64(t->q, t->txn, name, *v + n);
    return rc ? admin_mdb(t, rc) : 0;
}

size_t qaddr_lower(const char *addr, size_t len, char *out)
{
    if (len == 0 || len > QUEUE_MAX_RCPT)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)addr[i]);
    out[len] = 0;
    return len;
}

/* ------------------------------------------------------------- create */

struct create_arg {
    uint32_t account;
    const char *name;
    const struct queue_actor *by;
    uint64_t id;
    struct queue_account a;
    struct list_rec r;
};

/* The change of queue_list_create(): checks, record, name, audit. */
static int do_create(struct admin_tx *t, void *arg)
{
    struct create_arg *c = arg;
    unsigned char nk[5 + QUEUE_MAX_LIST_NAME], idv[8];
    int err, rc;
    if (!admin_name_ok(c->name, QUEUE_MAX_LIST_NAME, false))
        return admin_fail(t, -EINVAL, "invalid list name '%.80s': 1 to 63 "
                          "of a-z 0-9 . _ -, starting with a letter or "
                          "digit", c->name ? c->name : "");
    if ((err = qaccount_load(t->q, t->txn, c->account, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->account) : err;
    MDB_val k = name_key(nk, c->account, c->name), v;
    rc = mdb_get(t->txn, t->q->dbi[DB_LISTS], &k, &v);
    if (rc == 0)
        return admin_fail(t, -EEXIST, "account %s already has a list "
                          "named %s", c->a.name, c->name);
    if (rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    if ((err = qmeta_take(t, "next_list", 1, &c->id)))
        return err;
    memset(&c->r, 0, sizeof c->r);
    c->r.l.id = c->id;
    c->r.l.account = c->account;
    c->r.l.created = t->now_ms / 1000;
    snprintf(c->r.l.name, sizeof c->r.l.name, "%s", c->name);
    if ((err = qlist_store(t, &c->r)))
        return err;
    be64_put(idv, c->id);
    v = (MDB_val){ 8, idv };
    if ((rc = mdb_put(t->txn, t->q->dbi[DB_LISTS], &k, &v, 0)))
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    snprintf(obj, sizeof obj, "list %s of %s", c->name, c->a.name);
    return admin_audit_put(t, c->by, c->account, "list create", obj, "ok");
}

int queue_list_create(struct queue *q, uint32_t account, const char *name,
                      const struct queue_actor *by, uint64_t *id)
{
    struct create_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->account = account;
    c->name = name;
    c->by = by;
    int err = admin_run(q, do_create, c);
    if (id)
        *id = err ? 0 : c->id;
    free(c);
    return err;
}

/* -------------------------------------------------------------- reads */

int queue_list_get(struct queue *q, uint64_t id, struct queue_list *l)
{
    MDB_txn *txn;
    struct list_rec *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    memset(l, 0, sizeof *l);
    int err = queue_read_begin(q, &txn);
    if (!err) {
        err = qlist_load(q, txn, id, r);
        queue_read_end(q, txn);
    }
    if (!err && (r->flags & LIST_F_DELETING))
        err = QUEUE_ENOTFOUND;
    if (!err)
        *l = r->l;
    free(r);
    return err;
}

int queue_list_find(struct queue *q, uint32_t account, const char *name,
                    struct queue_list *l)
{
    unsigned char nk[5 + QUEUE_MAX_LIST_NAME];
    MDB_txn *txn;
    MDB_val k, v;
    memset(l, 0, sizeof *l);
    if (qlists_absent(q) || !name || !*name ||
        strlen(name) > QUEUE_MAX_LIST_NAME)
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    k = name_key(nk, account, name);
    int rc = mdb_get(txn, q->dbi[DB_LISTS], &k, &v);
    uint64_t id = rc == 0 && v.mv_size == 8 ? be64_get(v.mv_data) : 0;
    queue_read_end(q, txn);
    if (rc)
        return queue_err_mdb(rc);
    if (!id)
        return QUEUE_ECORRUPT;
    return queue_list_get(q, id, l);
}

long queue_lists(struct queue *q, uint32_t account,
                 int (*cb)(void *arg, const struct queue_list *l), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char pre[5] = { 'i' };
    size_t plen = 1;
    long n = 0;
    int err = 0, rc;

    if (qlists_absent(q))
        return 0;
    struct list_rec *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    if (account) {            /* by name within the account */
        pre[0] = 'n';
        be32_put(pre + 1, account);
        plen = 5;
    }
    if ((err = queue_read_begin(q, &txn))) {
        free(r);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_LISTS], &cur))) {
        queue_read_end(q, txn);
        free(r);
        return queue_err_mdb(rc);
    }
    k = (MDB_val){ plen, pre };
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, pre, plen))
            break;
        if (account) {
            if (v.mv_size != 8) {
                err = QUEUE_ECORRUPT;
                break;
            }
            err = qlist_load(q, txn, be64_get(v.mv_data), r);
        } else {
            err = k.mv_size == 9
                ? qlist_decode(&v, be64_get((const unsigned char *)k.mv_data
                                            + 1), r)
                : QUEUE_ECORRUPT;
        }
        if (err)
            break;
        if (r->flags & LIST_F_DELETING)
            continue;
        n++;
        if (cb(arg, &r->l))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(r);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

/* ------------------------------------------------------------- delete */

struct delete_arg {
    uint64_t id;
    const struct queue_actor *by;
    struct list_rec r;
    struct queue_account a;
    bool left;                 /* purge: contacts remain */
};

/* Mark the list deleting and drop its name: the audited part. */
static int do_delete_mark(struct admin_tx *t, void *arg)
{
    struct delete_arg *c = arg;
    unsigned char nk[5 + QUEUE_MAX_LIST_NAME];
    int err = qlist_load(t->q, t->txn, c->id, &c->r);
    if (err == 0 && (c->r.flags & LIST_F_DELETING))
        err = QUEUE_ENOTFOUND;
    if (err)
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no list with id %llu",
                         (unsigned long long)c->id) : err;
    MDB_val k = name_key(nk, c->r.l.account, c->r.l.name);
    int rc = mdb_del(t->txn, t->q->dbi[DB_LISTS], &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    c->r.flags |= LIST_F_DELETING;
    if ((err = qlist_store(t, &c->r)))
        return err;
    if (qaccount_load(t->q, t->txn, c->r.l.account, &c->a))
        snprintf(c->a.name, sizeof c->a.name, "#%u", c->r.l.account);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    snprintf(obj, sizeof obj, "list %s of %s (%llu contacts)", c->r.l.name,
             c->a.name, (unsigned long long)c->r.l.contacts);
    return admin_audit_put(t, c->by, c->r.l.account, "list delete", obj,
                           "ok");
}

/* Delete one chunk of a deleting list's contacts; the record with the
 * last chunk. */
static int do_delete_chunk(struct admin_tx *t, void *arg)
{
    struct delete_arg *c = arg;
    unsigned char kb[9];
    int err = qlist_load(t->q, t->txn, c->id, &c->r);
    c->left = false;
    if (err == QUEUE_ENOTFOUND)
        return 0;              /* done already */
    if (err)
        return err;
    if (!(c->r.flags & LIST_F_DELETING))
        return admin_fail(t, QUEUE_ESTATE, "list %llu is not being deleted",
                          (unsigned long long)c->id);
    if ((err = qcontacts_purge(t, c->id, LIST_PURGE_CHUNK, &c->left, NULL)))
        return err;
    if (c->left)
        return 0;
    MDB_val k = id_key(kb, c->id);
    int rc = mdb_del(t->txn, t->q->dbi[DB_LISTS], &k, NULL);
    return rc && rc != MDB_NOTFOUND ? admin_mdb(t, rc) : 0;
}

/* Purge every contact of list id (marked deleting) chunk by chunk. */
static int purge_list(struct queue *q, struct delete_arg *c)
{
    int err;
    do
        err = admin_run(q, do_delete_chunk, c);
    while (!err && c->left);
    return err;
}

/* queue_lists()-like scan for lists left deleting by an interrupted
 * delete; collects up to cap ids. */
static size_t deleting_lists(struct queue *q, uint64_t *ids, size_t cap)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char pre[1] = { 'i' };
    MDB_val k = { 1, pre }, v;
    size_t n = 0;
    if (queue_read_begin(q, &txn))
        return 0;
    if (mdb_cursor_open(txn, q->dbi[DB_LISTS], &cur) == 0) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             rc == 0 && n < cap; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const unsigned char *kp = k.mv_data;
            if (k.mv_size != 9 || kp[0] != 'i')
                break;
            /* flags are the second byte of the record */
            if (v.mv_size > 1 &&
                (((const unsigned char *)v.mv_data)[1] & LIST_F_DELETING))
                ids[n++] = be64_get(kp + 1);
        }
        mdb_cursor_close(cur);
    }
    queue_read_end(q, txn);
    return n;
}

int queue_list_delete(struct queue *q, uint64_t id,
                      const struct queue_actor *by)
{
    uint64_t stale[16];
    struct delete_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->id = id;
    c->by = by;
    int err = admin_run(q, do_delete_mark, c);
    if (!err)
        err = purge_list(q, c);
    /* finish deletes that an earlier process did not */
    size_t n = err ? 0 : deleting_lists(q, stale, 16);
    for (size_t i = 0; i < n && !err; i++) {
        c->id = stale[i];
        err = purge_list(q, c);
    }
    free(c);
    return err;
}
