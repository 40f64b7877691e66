/*
 * contacts.c - contacts of lists: the records, reading one by id, walking
 * a list in id order, and removing a list's contacts.
 *
 * DESCRIPTION
 *   Owns the "contacts" and "members" databases (layouts in lists_int.h).
 *   A contact's id is global (meta "next_contact"), so a queued campaign
 *   recipient refers to it with one number and the engine fetches the
 *   address and merge values when it renders.  "members" holds two indexes
 *   per list: (list, lower-case address) -> id, which makes imports drop
 *   duplicates without a scan (the address compares without regard to
 *   case), and (list, id), which walks a list in id order.  Contacts are
 *   written by imports (import.c) and removed with their list (lists.c).
 *
 * OWNERSHIP
 *   The struct queue_contact handed to a callback points into the map and
 *   into the reader's stack: valid only during the call.  Every string in
 *   it is NUL-terminated as well as counted.
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND for a contact that is not there (deleted with its
 *   list), QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

MDB_val qmember_key(unsigned char *buf, uint64_t list, const char *lower,
                    size_t len)
{
    buf[0] = 'e';
    be64_put(buf + 1, list);
    memcpy(buf + 9, lower, len);
    return (MDB_val){ 9 + len, buf };
}

MDB_val qmember_id_key(unsigned char *buf, uint64_t list, uint64_t contact)
{
    buf[0] = 'c';
    be64_put(buf + 1, list);
    be64_put(buf + 9, contact);
    return (MDB_val){ 17, buf };
}

MDB_val qsupp_key(unsigned char *buf, uint32_t owner, const char *lower,
                  size_t len)
{
    be32_put(buf, owner);
    memcpy(buf + 4, lower, len);
    return (MDB_val){ 4 + len, buf };
}

/* Little-endian reads of the record. */
static uint64_t le_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* One counted, NUL-terminated string at *off; false if it does not fit. */
static bool take_str(const unsigned char *p, size_t len, size_t *off,
                     size_t cap, const char **s, size_t *n)
{
    if (len - *off < 2)
        return false;
    size_t l = (size_t)le_get(p + *off, 2);
    if (l > cap || len - *off - 2 < l + 1 || p[*off + 2 + l] != 0 ||
        memchr(p + *off + 2, 0, l))
        return false;
    *s = (const char *)p + *off + 2;
    *n = l;
    *off += 3 + l;
    return true;
}

/* A varint (qvar_get()) at *off; false if it runs past len or 64 bits. */
static bool take_var(const unsigned char *p, size_t len, size_t *off,
                     uint64_t *v)
{
    const unsigned char *at = p + *off;
    bool ok = qvar_get(&at, p + len, v);
    *off = (size_t)(at - p);
    return ok;
}

/* One NUL-terminated string with a varint length at *off (format 2). */
static bool take_vstr(const unsigned char *p, size_t len, size_t *off,
                      size_t cap, const char **s, size_t *n)
{
    uint64_t l;
    if (!take_var(p, len, off, &l) || l > cap || len - *off < l + 1 ||
        p[*off + l] != 0 || memchr(p + *off, 0, l))
        return false;
    *s = (const char *)p + *off;
    *n = (size_t)l;
    *off += l + 1;
    return true;
}

int qcontact_decode(const MDB_val *v, struct contact_view *c)
{
    const unsigned char *p = v->mv_data;
    size_t len = v->mv_size, off = CONTACT_FIXED;
    bool (*str)(const unsigned char *, size_t, size_t *, size_t,
                const char **, size_t *) = take_str;
    if (len < 4)
        return QUEUE_ECORRUPT;
    if (p[0] == CONTACT_FMT) {
        uint64_t import;
        off = 1;
        if (!take_var(p, len, &off, &c->list) ||
            !take_var(p, len, &off, &import) || import > UINT32_MAX ||
            !take_var(p, len, &off, &c->line))
            return QUEUE_ECORRUPT;
        c->import = (uint32_t)import;
        str = take_vstr;
    } else if (p[0] == LIST_FMT && len >= CONTACT_FIXED + 4) {
        c->list = le_get(p + 1, 8);
        c->import = (uint32_t)le_get(p + 9, 4);
        c->line = le_get(p + 13, 8);
    } else {
        return QUEUE_ECORRUPT;
    }
    if (!str(p, len, &off, QUEUE_MAX_RCPT, &c->email, &c->email_len) ||
        off >= len)
        return QUEUE_ECORRUPT;
    c->nvalues = p[off++];
    if (c->nvalues > QUEUE_MAX_FIELDS)
        return QUEUE_ECORRUPT;
    for (unsigned i = 0; i < c->nvalues; i++)
        if (!str(p, len, &off, QUEUE_MAX_FIELD_VALUE, &c->values[i],
                 &c->lens[i]))
            return QUEUE_ECORRUPT;
    return off == len ? 0 : QUEUE_ECORRUPT;
}

/* Fill the public view of contact id from its record and its list. */
static void contact_public(struct queue_contact *out, uint64_t id,
                           const struct contact_view *c,
                           const struct queue_list *l, const char **names)
{
    memset(out, 0, sizeof *out);
    out->id = id;
    out->list = c->list;
    out->email = c->email;
    out->nvalues = l->nfields;
    for (unsigned i = 0; i < l->nfields; i++) {
        names[i] = l->fields[i];
        out->values[i] = i < c->nvalues ? c->values[i] : "";
        out->lens[i] = i < c->nvalues ? c->lens[i] : 0;
    }
    out->names = names;
}

/* The contact record of id inside txn. */
static int contact_fetch(struct queue *q, MDB_txn *txn, uint64_t id,
                         struct contact_view *c)
{
    unsigned char kb[8];
    be64_put(kb, id);
    MDB_val k = { 8, kb }, v;
    int rc = mdb_get(txn, q->dbi[DB_CONTACTS], &k, &v);
    return rc ? queue_err_mdb(rc) : qcontact_decode(&v, c);
}

struct contact_scratch {
    struct contact_view c;
    struct list_rec r;
    struct queue_contact pub;
    const char *names[QUEUE_MAX_FIELDS];
};

int queue_contact_get(struct queue *q, uint64_t id,
                      void (*cb)(void *arg, const struct queue_contact *c),
                      void *arg)
{
    MDB_txn *txn;
    if (qlists_absent(q))
        return QUEUE_ENOTFOUND;
    struct contact_scratch *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    int err = queue_read_begin(q, &txn);
    if (!err) {
        err = contact_fetch(q, txn, id, &s->c);
        if (!err)                /* a list gone or going: so is the contact */
            err = qlist_load(q, txn, s->c.list, &s->r);
        if (!err && (s->r.flags & LIST_F_DELETING))
            err = QUEUE_ENOTFOUND;
        if (!err && s->c.nvalues > s->r.l.nfields)
            err = QUEUE_ECORRUPT;
        if (!err) {
            contact_public(&s->pub, id, &s->c, &s->r.l, s->names);
            cb(arg, &s->pub);
        }
        queue_read_end(q, txn);
    }
    free(s);
    return err;
}

long queue_contacts(struct queue *q, uint64_t list, uint64_t after,
                    size_t max,
                    int (*cb)(void *arg, const struct queue_contact *c),
                    void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char kb[17];
    long n = 0;
    int err, rc;

    if (qlists_absent(q))
        return 0;
    struct contact_scratch *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(s);
        return err;
    }
    if ((err = qlist_load(q, txn, list, &s->r)) == 0 &&
        (s->r.flags & LIST_F_DELETING))
        err = QUEUE_ENOTFOUND;
    if (err) {
        queue_read_end(q, txn);
        free(s);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_MEMBERS], &cur))) {
        queue_read_end(q, txn);
        free(s);
        return queue_err_mdb(rc);
    }
    if (after == UINT64_MAX)
        rc = MDB_NOTFOUND;
    MDB_val k = qmember_id_key(kb, list, after + 1), v;
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 17 || kp[0] != 'c' || be64_get(kp + 1) != list)
            break;
        uint64_t id = be64_get(kp + 9);
        if ((err = contact_fetch(q, txn, id, &s->c)))
            break;
        if (s->c.list != list || s->c.nvalues > s->r.l.nfields) {
            err = QUEUE_ECORRUPT;
            break;
        }
        contact_public(&s->pub, id, &s->c, &s->r.l, s->names);
        n++;
        if (cb(arg, &s->pub) || (max && (size_t)n >= max))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(s);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

int qcontacts_purge(struct admin_tx *t, uint64_t list, size_t max,
                    bool *left, uint64_t *deleted)
{
    struct queue *q = t->q;
    MDB_cursor *cur;
    unsigned char kb[17], mk[MEMBER_KEY_MAX], ck[8];
    char lower[QUEUE_MAX_RCPT + 1];
    struct contact_view c;
    uint64_t next = 0;
    size_t n = 0;
    int rc, err = 0;

    *left = false;
    if ((rc = mdb_cursor_open(t->txn, q->dbi[DB_MEMBERS], &cur)))
        return admin_mdb(t, rc);
    for (;;) {
        MDB_val k = qmember_id_key(kb, list, next), v;
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)))
            break;
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 17 || kp[0] != 'c' || be64_get(kp + 1) != list)
            break;
        if (n == max) {
            *left = true;
            break;
        }
        uint64_t id = be64_get(kp + 9);
        be64_put(ck, id);
        MDB_val cid = { 8, ck }, cv;
        rc = mdb_get(t->txn, q->dbi[DB_CONTACTS], &cid, &cv);
        if (rc == 0) {
            if ((err = qcontact_decode(&cv, &c)))
                break;
            size_t ln = qaddr_lower(c.email, c.email_len, lower);
            MDB_val ek = qmember_key(mk, list, lower, ln);
            if (ln && (rc = mdb_del(t->txn, q->dbi[DB_MEMBERS], &ek, NULL)) &&
                rc != MDB_NOTFOUND)
                break;
            if ((rc = mdb_del(t->txn, q->dbi[DB_CONTACTS], &cid, NULL)))
                break;
        } else if (rc != MDB_NOTFOUND) {
            break;
        }
        MDB_val idk = qmember_id_key(kb, list, id);
        if ((rc = mdb_del(t->txn, q->dbi[DB_MEMBERS], &idk, NULL)))
            break;
        n++;
        next = id + 1;
    }
    mdb_cursor_close(cur);
    if (deleted)
        *deleted = n;
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? admin_mdb(t, rc) : 0;
}
