/*
 * import.c - contact import: rows gathered into large batches, each batch
 * one operation of the writer, several batches in flight at once.
 *
 * DESCRIPTION
 *   queue_import_begin() adds the file's new columns to the list's fields
 *   and takes an import number (meta "next_import") in one change.  Rows
 *   are then packed in the caller's thread into a batch (up to
 *   IMPORT_BATCH_ROWS rows or IMPORT_BATCH_BYTES bytes); a full batch goes
 *   to the writer as an OP_ADMIN operation and the caller fills the next
 *   one while the writer applies it.  IMPORT_BATCHES buffers turn in a
 *   ring, so memory stays the same whatever the size of the file.
 *
 *   Batch size: the (list, address) index takes inserts in random order,
 *   so every commit rewrites most of the index pages the batch touched;
 *   larger batches touch each page for more rows.  Measured on 1,000,000
 *   rows (bench/import_bench.sh): 5,000-row commits 17 s, about 16,000
 *   8-10 s; the writer's dirty pages (about 45 MB at 16,000 rows into a
 *   large list) are what bounds the import's private memory.  The spool's
 *   map is not trimmed during an import: trimming after every batch made
 *   it three times slower (every page faulted in again) and the mapped
 *   pages are shared page cache, not memory of the import.
 *
 *   In the writer, each row of a batch is checked against the owner's
 *   suppression list, then put into members with MDB_NOOVERWRITE: an
 *   address already in the list (compared without case) is a duplicate,
 *   and the existing contact's record says whether it came from this
 *   import (and from which line) or an earlier one.  New contacts get
 *   consecutive ids and are appended to "contacts".  The list's contact
 *   count moves in the same transaction.  The batch commits as a whole:
 *   an import that fails half way keeps the batches committed before.
 *
 *   Results come back to the caller, in the order rows were given, from
 *   within queue_import_add/_reject/_end: once per row, rows the caller
 *   rejected itself included, so a reject file can be written in line
 *   order.  The import ends with one audit record with its counts.
 *
 * DIAGNOSTICS
 *   queue_import_add() refuses one row (-EINVAL, QUEUE_ETOOBIG) without
 *   harm to the import.  A batch that fails (list deleted meanwhile:
 *   QUEUE_ENOTFOUND; disk or map full) fails the import: later calls
 *   return its code, queue_last_detail() says why.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

#define IMPORT_BATCH_ROWS 16384
#define IMPORT_BATCH_BYTES (2u << 20)
#define IMPORT_BATCHES 3
#define DETAIL_MAX 256

enum { ROW_CONTACT, ROW_REJECT };
#define NO_ROW UINT32_MAX

/* One row of a batch; strings in the batch arena. */
struct irow {
    uint64_t line;
    uint64_t contact, dup_line;         /* results */
    uint32_t dup_of;                    /* row added first, or NO_ROW */
    uint32_t email_off, key_off, rec_off, rec_len;
    uint16_t email_len, key_len;
    uint8_t kind;
    uint8_t outcome;
};

struct ibatch {
    struct queue_import *im;
    struct irow *rows;
    uint32_t *ord;                      /* rows in address order */
    size_t n;
    char *arena;
    size_t alen;
    bool busy;                          /* submitted, results not taken */
    bool done;                          /* the writer finished it */
    int status;
    uint64_t added;
    struct list_rec lrec;               /* writer's scratch */
    char detail[DETAIL_MAX];
};

struct queue_import {
    struct queue *q;
    uint64_t list;
    uint32_t account, owner, number;
    char list_name[QUEUE_MAX_LIST_NAME + 1];
    unsigned ncols, nfields;
    int col_of[QUEUE_MAX_FIELDS];       /* list field -> value index, -1 */
    void (*cb)(void *arg, const struct queue_import_result *r);
    void *arg;
    struct ibatch b[IMPORT_BATCHES];
    unsigned cur;                       /* the batch being filled */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int err;
    char detail[DETAIL_MAX];
    struct queue_import_counts counts;
};

/* ------------------------------------------------------------- begin */

struct begin_arg {
    struct queue_import *im;
    const char *const *names;
    struct list_rec r;
};

/* Whether s is a field name we store: 1..63 of [a-z0-9_]. */
static bool field_name_ok(const char *s)
{
    size_t n = s ? strnlen(s, QUEUE_MAX_FIELD_NAME + 1) : 0;
    return n > 0 && n <= QUEUE_MAX_FIELD_NAME &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The change of queue_import_begin(): new fields, import number. */
static int do_begin(struct admin_tx *t, void *arg)
{
    struct begin_arg *c = arg;
    struct queue_import *im = c->im;
    struct queue_list *l = &c->r.l;
    uint64_t number;
    int err = qlist_load(t->q, t->txn, im->list, &c->r);
    if (err == 0 && (c->r.flags & LIST_F_DELETING))
        err = QUEUE_ENOTFOUND;
    if (err)
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no list with id %llu",
                         (unsigned long long)im->list) : err;
    bool grew = false;
    for (unsigned i = 0; i < QUEUE_MAX_FIELDS; i++)
        im->col_of[i] = -1;
    for (unsigned i = 0; i < im->ncols; i++) {
        const char *name = c->names[i];
        unsigned j = 0;
        while (j < l->nfields && strcmp(l->fields[j], name))
            j++;
        if (j == l->nfields) {
            if (l->nfields == QUEUE_MAX_FIELDS)
                return admin_fail(t, -EINVAL, "list %s would have more "
                                  "than %d merge fields", l->name,
                                  QUEUE_MAX_FIELDS);
            snprintf(l->fields[l->nfields++], QUEUE_MAX_FIELD_NAME + 1, "%s",
                     name);
            grew = true;
        }
        im->col_of[j] = (int)i;
    }
    if (grew && (err = qlist_store(t, &c->r)))
        return err;
    if ((err = qmeta_take(t, "next_import", 1, &number)))
        return err;
    im->number = (uint32_t)number;    /* kept per contact; wraps after 4G */
    im->nfields = l->nfields;
    im->account = l->account;
    memcpy(im->list_name, l->name, sizeof im->list_name);
    return 0;
}

int queue_import_begin(struct queue *q, uint64_t list, uint32_t owner,
                       const char *const *names, unsigned nnames,
                       void (*cb)(void *arg,
                                  const struct queue_import_result *r),
                       void *arg, struct queue_import **out)
{
    *out = NULL;
    if (nnames > QUEUE_MAX_FIELDS) {
        queue_set_detail("at most %d merge fields", QUEUE_MAX_FIELDS);
        return -EINVAL;
    }
    for (unsigned i = 0; i < nnames; i++) {
        if (!field_name_ok(names[i])) {
            queue_set_detail("invalid field name '%.80s': 1 to 63 of "
                             "a-z 0-9 _", names[i] ? names[i] : "");
            return -EINVAL;
        }
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(names[i], names[j])) {
                queue_set_detail("field %s given twice", names[i]);
                return -EINVAL;
            }
    }
    struct queue_import *im = calloc(1, sizeof *im);
    struct begin_arg *c = calloc(1, sizeof *c);
    if (!im || !c) {
        free(im);
        free(c);
        return -ENOMEM;
    }
    im->q = q;
    im->list = list;
    im->owner = owner;
    im->ncols = nnames;
    im->cb = cb;
    im->arg = arg;
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->cv, NULL);
    int err = 0;
    for (unsigned i = 0; i < IMPORT_BATCHES && !err; i++) {
        im->b[i].im = im;
        im->b[i].rows = malloc(IMPORT_BATCH_ROWS * sizeof *im->b[i].rows);
        im->b[i].ord = malloc(IMPORT_BATCH_ROWS * sizeof *im->b[i].ord);
        im->b[i].arena = malloc(IMPORT_BATCH_BYTES);
        if (!im->b[i].rows || !im->b[i].ord || !im->b[i].arena)
            err = -ENOMEM;
    }
    c->im = im;
    c->names = names;
    if (!err)
        err = admin_run(q, do_begin, c);
    free(c);
    if (err) {
        for (unsigned i = 0; i < IMPORT_BATCHES; i++) {
            free(im->b[i].rows);
            free(im->b[i].ord);
            free(im->b[i].arena);
        }
        pthread_mutex_destroy(&im->mu);
        pthread_cond_destroy(&im->cv);
        free(im);
        return err;
    }
    *out = im;
    return 0;
}

/* ------------------------------------------------------------ writer */

/* Order of two rows by lower-case address (LMDB's order of the member
 * and suppression keys, which share the prefix), then by line. */
static int row_cmp(const void *a, const void *b, void *arg)
{
    const struct ibatch *bt = arg;
    const struct irow *x = &bt->rows[*(const uint32_t *)a];
    const struct irow *y = &bt->rows[*(const uint32_t *)b];
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(bt->arena + x->key_off, bt->arena + y->key_off, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Whether rows x and y have the same lower-case address. */
static bool row_same(const struct ibatch *b, const struct irow *x,
                     const struct irow *y)
{
    return x->key_len == y->key_len &&
           !memcmp(b->arena + x->key_off, b->arena + y->key_off, x->key_len);
}

/* Look up the rows of b in address order (suppressed, already a member,
 * or new; a later row with the address of a new one is its duplicate):
 * neighbouring keys share their pages, so each page of the indexes is
 * read once per batch, not once per row. */
static int batch_lookup(struct admin_tx *t, struct ibatch *b, size_t *nord)
{
    struct queue_import *im = b->im;
    struct queue *q = t->q;
    unsigned char sk[SUPPRESS_KEY_MAX], mk[MEMBER_KEY_MAX], idb[8];
    struct contact_view cv;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < b->n; i++) {
        struct irow *r = &b->rows[i];
        r->contact = r->dup_line = 0;
        r->dup_of = NO_ROW;
        if (r->kind == ROW_REJECT)
            r->outcome = QUEUE_IMPORT_REJECTED;
        else
            b->ord[n++] = (uint32_t)i;
    }
    qsort_r(b->ord, n, sizeof *b->ord, row_cmp, b);
    *nord = n;
    for (size_t j = 0; j < n; j++) {
        struct irow *r = &b->rows[b->ord[j]];
        struct irow *p = j ? &b->rows[b->ord[j - 1]] : NULL;
        if (p && row_same(b, p, r)) {
            /* the same address as the row before it (an earlier line) */
            r->outcome = p->outcome;
            r->contact = p->contact;
            r->dup_line = p->dup_line;
            if (p->outcome == QUEUE_IMPORT_ADDED) {
                r->outcome = QUEUE_IMPORT_DUPLICATE;
                r->dup_of = b->ord[j - 1];
            } else if (p->dup_of != NO_ROW) {
                r->dup_of = p->dup_of;
            }
            continue;
        }
        const char *key = b->arena + r->key_off;
        MDB_val k = qsupp_key(sk, im->owner, key, r->key_len), v;
        rc = mdb_get(t->txn, q->dbi[DB_SUPPRESS], &k, &v);
        if (rc == 0) {
            r->outcome = QUEUE_IMPORT_SUPPRESSED;
            continue;
        }
        if (rc != MDB_NOTFOUND)
            return admin_mdb(t, rc);
        k = qmember_key(mk, im->list, key, r->key_len);
        rc = mdb_get(t->txn, q->dbi[DB_MEMBERS], &k, &v);
        if (rc == MDB_NOTFOUND) {
            r->outcome = QUEUE_IMPORT_ADDED;   /* once it has its id */
            continue;
        }
        if (rc)
            return admin_mdb(t, rc);
        if (v.mv_size != 8)
            return admin_fail(t, QUEUE_ECORRUPT, "bad member record");
        r->outcome = QUEUE_IMPORT_DUPLICATE;
        r->contact = be64_get(v.mv_data);
        MDB_val ik = { 8, idb }, iv;
        be64_put(idb, r->contact);
        if (mdb_get(t->txn, q->dbi[DB_CONTACTS], &ik, &iv) == 0 &&
            qcontact_decode(&iv, &cv) == 0 && cv.import == im->number)
            r->dup_line = cv.line;
    }
    return 0;
}

/* Apply one batch in the writer's nested transaction: look the rows up
 * in address order, give the new contacts their ids in line order
 * (appended to "contacts" and to the list's id order), then put their
 * addresses into the list in address order. */
static int batch_apply(struct admin_tx *t, void *arg)
{
    struct ibatch *b = arg;
    struct queue_import *im = b->im;
    struct queue *q = t->q;
    unsigned char mk[MEMBER_KEY_MAX], ck[17], idb[8];
    uint64_t next;
    size_t nord;
    int err, rc;

    b->added = 0;
    err = qlist_load(q, t->txn, im->list, &b->lrec);
    if (err == QUEUE_ENOTFOUND || (!err && (b->lrec.flags & LIST_F_DELETING)))
        return admin_fail(t, QUEUE_ENOTFOUND, "list %s was deleted during "
                          "the import", im->list_name);
    if (err)
        return err;
    if ((err = qmeta_get_u64(q, t->txn, "next_contact", &next)))
        return err;
    if (next == 0)
        next = 1;
    if ((err = batch_lookup(t, b, &nord)))
        return err;
    for (size_t i = 0; i < b->n; i++) {
        struct irow *r = &b->rows[i];
        if (r->dup_of != NO_ROW) {
            /* its first line came before it: that one has its id */
            r->contact = b->rows[r->dup_of].contact;
            r->dup_line = b->rows[r->dup_of].line;
            continue;
        }
        if (r->kind == ROW_REJECT || r->outcome != QUEUE_IMPORT_ADDED)
            continue;
        be64_put(idb, next);
        MDB_val ik = { 8, idb }, iv = { r->rec_len, b->arena + r->rec_off };
        rc = mdb_put(t->txn, q->dbi[DB_CONTACTS], &ik, &iv, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return admin_fail(t, QUEUE_ECORRUPT, "contact ids out of order "
                              "(next_contact %llu)",
                              (unsigned long long)next);
        if (rc)
            return admin_mdb(t, rc);
        MDB_val k = qmember_id_key(ck, im->list, next), v = { 0, NULL };
        if ((rc = mdb_put(t->txn, q->dbi[DB_MEMBERS], &k, &v, 0)))
            return admin_mdb(t, rc);
        r->contact = next++;
        b->added++;
    }
    for (size_t j = 0; j < nord; j++) {
        struct irow *r = &b->rows[b->ord[j]];
        if (r->outcome != QUEUE_IMPORT_ADDED)
            continue;
        be64_put(idb, r->contact);
        MDB_val k = qmember_key(mk, im->list, b->arena + r->key_off,
                                r->key_len), v = { 8, idb };
        rc = mdb_put(t->txn, q->dbi[DB_MEMBERS], &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            return admin_fail(t, QUEUE_ECORRUPT, "member added twice");
        if (rc)
            return admin_mdb(t, rc);
    }
    if (b->added) {
        if ((rc = qmeta_put_u64(q, t->txn, "next_contact", next)))
            return admin_mdb(t, rc);
        b->lrec.l.contacts += b->added;
        if ((err = qlist_store(t, &b->lrec)))
            return err;
    }
    return 0;
}

/* Completion on the writer thread: wake the importer. */
static void batch_done(void *arg, int status, uint64_t first_id,
                       uint64_t msg_id)
{
    struct ibatch *b = arg;
    (void)first_id;
    (void)msg_id;
    pthread_mutex_lock(&b->im->mu);
    b->status = status;
    b->done = true;
    pthread_cond_broadcast(&b->im->cv);
    pthread_mutex_unlock(&b->im->mu);
}

/* ------------------------------------------------------------ caller */

/* Record the import's first failure. */
static void import_fail(struct queue_import *im, int err, const char *why)
{
    if (im->err)
        return;
    im->err = err;
    snprintf(im->detail, sizeof im->detail, "%s",
             why && *why ? why : queue_strerror(err));
}

/* Wait for batch b and hand its results to the caller; b is empty after. */
static void batch_collect(struct queue_import *im, struct ibatch *b)
{
    pthread_mutex_lock(&im->mu);
    while (!b->done)
        pthread_cond_wait(&im->cv, &im->mu);
    pthread_mutex_unlock(&im->mu);
    if (b->status)
        import_fail(im, b->status, b->detail);
    for (size_t i = 0; i < b->n && !b->status; i++) {
        const struct irow *r = &b->rows[i];
        struct queue_import_result res = {
            .line = r->line, .outcome = r->outcome,
            .email = b->arena + r->email_off, .contact = r->contact,
            .dup_line = r->dup_line,
            .reason = r->kind == ROW_REJECT ? b->arena + r->rec_off : NULL,
        };
        im->counts.rows++;
        switch (r->outcome) {
        case QUEUE_IMPORT_ADDED: im->counts.added++; break;
        case QUEUE_IMPORT_DUPLICATE: im->counts.duplicate++; break;
        case QUEUE_IMPORT_SUPPRESSED: im->counts.suppressed++; break;
        default: im->counts.rejected++; break;
        }
        if (im->cb)
            im->cb(im->arg, &res);
    }
    b->busy = b->done = false;
    b->n = b->alen = 0;
    b->status = 0;
}

/* Send the batch being filled to the writer and make the next one ready
 * (waiting for it if it is still in flight). */
static int batch_submit(struct queue_import *im)
{
    struct ibatch *b = &im->b[im->cur];
    if (b->n) {
        struct queue_op *op = calloc(1, sizeof *op);
        if (!op) {
            import_fail(im, -ENOMEM, NULL);
            return im->err;
        }
        op->kind = OP_ADMIN;
        op->weight = (unsigned)b->n;     /* a group of its own */
        op->admin_fn = batch_apply;
        op->admin_arg = b;
        op->admin_detail = b->detail;
        b->busy = true;
        b->done = false;
        int err = queue_op_submit(im->q, op, NULL, batch_done, b);
        if (err) {
            b->busy = false;
            b->n = b->alen = 0;
            import_fail(im, err, NULL);
            return err;
        }
        im->cur = (im->cur + 1) % IMPORT_BATCHES;
    }
    b = &im->b[im->cur];
    if (b->busy)
        batch_collect(im, b);
    return im->err;
}

/* Room for one row of need arena bytes in the current batch. */
static struct ibatch *batch_room(struct queue_import *im, size_t need)
{
    struct ibatch *b = &im->b[im->cur];
    if (b->n == IMPORT_BATCH_ROWS || IMPORT_BATCH_BYTES - b->alen < need) {
        if (batch_submit(im))
            return NULL;
        b = &im->b[im->cur];
    }
    return b;
}

/* Append n bytes (and a NUL when nul) to b's arena; the offset. */
static uint32_t arena_put(struct ibatch *b, const void *p, size_t n, bool nul)
{
    uint32_t off = (uint32_t)b->alen;
    if (n)
        memcpy(b->arena + b->alen, p, n);
    b->alen += n;
    if (nul)
        b->arena[b->alen++] = 0;
    return off;
}

/* Little-endian put into the arena. */
static void arena_le(struct ibatch *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b->arena[b->alen++] = (char)(v >> (8 * i));
}

int queue_import_add(struct queue_import *im, uint64_t line,
                     const char *email, const char *const *values,
                     const size_t *lens)
{
    char lower[QUEUE_MAX_RCPT + 1];
    size_t elen = email ? strnlen(email, QUEUE_MAX_RCPT + 1) : 0;
    unsigned nvalues = 0;
    if (im->err)
        return im->err;
    if (!elen || elen > QUEUE_MAX_RCPT || queue_check_rcpt(email) ||
        !qaddr_lower(email, elen, lower)) {
        queue_set_detail("invalid address");
        return -EINVAL;
    }
    size_t rec = CONTACT_FIXED + 2 + elen + 1 + 1;
    for (unsigned j = 0; j < im->nfields; j++) {
        int c = im->col_of[j];
        size_t n = c >= 0 ? lens[c] : 0;
        if (n > QUEUE_MAX_FIELD_VALUE || (n && memchr(values[c], 0, n))) {
            queue_set_detail("value of %u bytes or with a NUL byte",
                             (unsigned)n);
            return n > QUEUE_MAX_FIELD_VALUE ? QUEUE_ETOOBIG : -EINVAL;
        }
        if (n)
            nvalues = j + 1;
    }
    for (unsigned j = 0; j < nvalues; j++) {
        int c = im->col_of[j];
        rec += 3 + (c >= 0 ? lens[c] : 0);
    }
    if (rec > QUEUE_MAX_CONTACT) {
        queue_set_detail("contact of %zu bytes packed, over %u", rec,
                         (unsigned)QUEUE_MAX_CONTACT);
        return QUEUE_ETOOBIG;
    }
    struct ibatch *b = batch_room(im, 2 * (elen + 1) + rec);
    if (!b)
        return im->err;
    struct irow *r = &b->rows[b->n++];
    memset(r, 0, sizeof *r);
    r->kind = ROW_CONTACT;
    r->line = line;
    r->email_len = (uint16_t)elen;
    r->email_off = arena_put(b, email, elen, true);
    r->key_len = (uint16_t)elen;
    r->key_off = arena_put(b, lower, elen, true);
    r->rec_off = (uint32_t)b->alen;
    arena_le(b, LIST_FMT, 1);
    arena_le(b, im->list, 8);
    arena_le(b, im->number, 4);
    arena_le(b, line, 8);
    arena_le(b, elen, 2);
    arena_put(b, email, elen, true);
    arena_le(b, nvalues, 1);
    for (unsigned j = 0; j < nvalues; j++) {
        int c = im->col_of[j];
        size_t n = c >= 0 ? lens[c] : 0;
        arena_le(b, n, 2);
        arena_put(b, n ? values[c] : NULL, n, true);
    }
    r->rec_len = (uint32_t)(b->alen - r->rec_off);
    return 0;
}

int queue_import_reject(struct queue_import *im, uint64_t line,
                        const char *email, const char *reason)
{
    size_t elen = email ? strnlen(email, QUEUE_MAX_FIELD_VALUE) : 0;
    size_t rlen = reason ? strnlen(reason, QUEUE_MAX_IMPORT_REASON) : 0;
    if (im->err)
        return im->err;
    struct ibatch *b = batch_room(im, elen + rlen + 2);
    if (!b)
        return im->err;
    struct irow *r = &b->rows[b->n++];
    memset(r, 0, sizeof *r);
    r->kind = ROW_REJECT;
    r->line = line;
    r->email_len = (uint16_t)elen;
    r->email_off = arena_put(b, email, elen, true);
    r->rec_off = arena_put(b, reason, rlen, true);
    r->rec_len = (uint32_t)rlen;
    return 0;
}

/* ------------------------------------------------------------- end */

struct audit_arg {
    struct queue_import *im;
    const struct queue_actor *by;
    const char *failure;
};

/* The import's one audit record, with its counts. */
static int do_audit(struct admin_tx *t, void *arg)
{
    struct audit_arg *c = arg;
    struct queue_import *im = c->im;
    const struct queue_import_counts *n = &im->counts;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], res[QUEUE_MAX_AUDIT_RESULT + 1];
    snprintf(obj, sizeof obj, "list %s: imported %llu, duplicate %llu, "
             "invalid %llu, suppressed %llu", im->list_name,
             (unsigned long long)n->added, (unsigned long long)n->duplicate,
             (unsigned long long)n->rejected,
             (unsigned long long)n->suppressed);
    const char *why = c->failure ? c->failure : im->err ? im->detail : NULL;
    if (why && snprintf(res, sizeof res, "failed: %s", why) >=
                   (int)sizeof res)
        res[sizeof res - 1] = 0; /* cut to the record's cap */
    return admin_audit_put(t, c->by, im->account, "list import", obj,
                           why ? res : "ok");
}

int queue_import_end(struct queue_import *im, const struct queue_actor *by,
                     const char *failure, struct queue_import_counts *counts)
{
    if (!im)
        return 0;
    if (!im->err && !failure)
        batch_submit(im);
    /* every batch still in flight, oldest first */
    for (unsigned i = 0; i < IMPORT_BATCHES; i++) {
        struct ibatch *b = &im->b[(im->cur + i) % IMPORT_BATCHES];
        if (b->busy)
            batch_collect(im, b);
    }
    struct audit_arg a = { im, by, failure };
    int aerr = admin_run(im->q, do_audit, &a);
    int err = im->err ? im->err : aerr;
    if (im->err)
        queue_set_detail("%s", im->detail);
    if (counts)
        *counts = im->counts;
    for (unsigned i = 0; i < IMPORT_BATCHES; i++) {
        free(im->b[i].rows);
        free(im->b[i].ord);
        free(im->b[i].arena);
    }
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    free(im);
    return err;
}
