/*
 * import.c - contact import: rows gathered into windows, each window
 * sorted by address and written in slices, one operation of the writer
 * each, while the caller fills the next window.
 *
 * DESCRIPTION
 *   queue_import_begin() adds the file's new columns to the list's fields
 *   and takes an import number (meta "next_import") in one change.  Rows
 *   are then packed in the caller's thread into a window (its row limit
 *   starts at IMPORT_BATCH_ROWS and doubles with each window up to
 *   IMPORT_WINDOW_ROWS, so the writer starts early; at most
 *   IMPORT_WINDOW_BYTES).  A full window is sorted by lower-case address
 *   (then line) and goes to the writer as slices of IMPORT_BATCH_ROWS
 *   rows, each an OP_ADMIN operation committed on its own, applied in
 *   order; the caller fills the other window meanwhile.  IMPORT_WINDOWS
 *   buffers turn in a ring, so memory stays the same whatever the size of
 *   the file.
 *
 *   Why sorted: the (list, address) index of a file in random order takes
 *   inserts all over its range, so a commit in file order rewrites most
 *   of the index's pages (copy-on-write), and the import cost grew with
 *   the list (1,000,000 random rows: 7.3 GB written, against 0.2 GB for
 *   the same rows in address order).  A slice of a sorted window covers
 *   1/16 of the address range and rewrites only the pages of that part:
 *   0.5 GB for the same file (bench/RESULTS.md, issue 22).  The spool's map
 *   is not trimmed during an import: trimming after every batch made it
 *   three times slower (every page faulted in again) and the mapped pages
 *   are shared page cache, not memory of the import.
 *
 *   In the writer, each row of a slice is checked against the owner's
 *   suppression list, then looked up in members: an address already in
 *   the list (compared without case) is a duplicate, and the existing
 *   contact's record says whether it came from this import (and from
 *   which line) or an earlier one.  Equal addresses sort by line and the
 *   later ones take the result of the first, so the first line is the
 *   one kept whatever the order of the file.  New contacts get
 *   consecutive ids in line order within the slice (the list's order, and
 *   a campaign's, follows the file slice by slice: wholly for a file of up
 *   to IMPORT_BATCH_ROWS rows) and are appended to "contacts"; their
 *   addresses go into members last (slice_apply() says in which order).
 *   The list's contact count moves in the same transaction.  A slice
 *   commits as a whole: an import that fails half way keeps the slices
 *   committed before.
 *
 *   Results come back to the caller, in the order rows were given, from
 *   within queue_import_add/_reject/_end, once a window is done: once per
 *   row, rows the caller rejected itself included, so a reject file can
 *   be written in line order.  A slice that failed has no results.  The
 *   import ends with one audit record with its counts.
 *
 * DIAGNOSTICS
 *   queue_import_add() refuses one row (-EINVAL, QUEUE_ETOOBIG) without
 *   harm to the import.  A slice that fails (list deleted meanwhile:
 *   QUEUE_ENOTFOUND; disk or map full) fails the import: later calls
 *   return its code, queue_last_detail() says why.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

#define IMPORT_BATCH_ROWS 16384          /* rows of one commit */
#define IMPORT_WINDOW_ROWS (16 * IMPORT_BATCH_ROWS)
#define IMPORT_WINDOW_BYTES (32u << 20)
#define IMPORT_WINDOWS 2
#define IMPORT_SLICES (IMPORT_WINDOW_ROWS / IMPORT_BATCH_ROWS)
#define DETAIL_MAX 256
#define SPREAD_RUN 8                    /* addresses put in one run */

enum { ROW_CONTACT, ROW_REJECT };
#define NO_ROW UINT32_MAX

/* One row of a window; strings in the window's arena. */
struct irow {
    uint64_t line;
    uint64_t contact, dup_line;         /* results */
    uint32_t email_off, key_off, rec_off, rec_len;
    uint16_t email_len, key_len;
    uint8_t kind;
    uint8_t outcome;                    /* 0: not (yet) committed */
};

struct iwin;

/* A contact row in the sort, then in the writer.  For the sort: its
 * key's first 16 bytes as two big-endian numbers (zero padded; addresses
 * hold no NUL), so that most comparisons read only this array.  After it
 * (window_mark_dups()) the writer's view of the row, in address order, so
 * that a slice reads and writes neighbouring memory: results go back to
 * the rows when the window is collected. */
struct iord {
    union {
        struct {
            uint64_t p0, p1;
        };
        struct {
            uint64_t contact, dup_line;  /* results */
        };
    };
    uint32_t row;
    uint32_t first;                     /* ord index of the first row with
                                           this address (an earlier line),
                                           or NO_ROW */
    uint32_t skey;                      /* the key in the window's keys */
    uint16_t klen;
    uint8_t outcome;                    /* 0: not (yet) committed */
};

/* One commit's share of a window: ord[first .. first + n). */
struct islice {
    struct iwin *w;
    size_t first, n;
    uint64_t added;
    struct list_rec lrec;               /* writer's scratch */
    char detail[DETAIL_MAX];
};

/* A window of rows: filled in line order, written in address order. */
struct iwin {
    struct queue_import *im;
    struct irow *rows;
    struct iord *ord;                   /* contact rows in address order */
    char *keys;                         /* their keys in that order */
    size_t nord;                        /* entries of ord */
    uint64_t *byline;                   /* writer's scratch, as ord */
    char *arena;
    size_t n, alen;
    bool busy;                          /* submitted, results not taken */
    unsigned pending;                   /* slices the writer has not done */
    int status;                         /* first failure of a slice */
    char detail[DETAIL_MAX];
    struct islice slices[IMPORT_SLICES];
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
    struct iwin w[IMPORT_WINDOWS];
    unsigned cur;                       /* the window being filled */
    size_t limit;                       /* its rows: grows to the cap */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int err;
    char detail[DETAIL_MAX];
    struct queue_import_counts counts;
};

/* Free the windows' buffers. */
static void windows_free(struct queue_import *im)
{
    for (unsigned i = 0; i < IMPORT_WINDOWS; i++) {
        free(im->w[i].rows);
        free(im->w[i].ord);
        free(im->w[i].byline);
        free(im->w[i].keys);
        free(im->w[i].arena);
    }
}

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
    im->limit = IMPORT_BATCH_ROWS;
    for (unsigned i = 0; i < IMPORT_WINDOWS && !err; i++) {
        struct iwin *w = &im->w[i];
        w->im = im;
        w->rows = malloc(IMPORT_WINDOW_ROWS * sizeof *w->rows);
        w->ord = malloc(IMPORT_WINDOW_ROWS * sizeof *w->ord);
        w->byline = malloc(IMPORT_WINDOW_ROWS * sizeof *w->byline);
        w->arena = malloc(IMPORT_WINDOW_BYTES);
        w->keys = malloc(IMPORT_WINDOW_BYTES);
        if (!w->rows || !w->ord || !w->byline || !w->arena || !w->keys)
            err = -ENOMEM;
    }
    c->im = im;
    c->names = names;
    if (!err)
        err = admin_run(q, do_begin, c);
    free(c);
    if (err) {
        windows_free(im);
        pthread_mutex_destroy(&im->mu);
        pthread_cond_destroy(&im->cv);
        free(im);
        return err;
    }
    *out = im;
    return 0;
}

/* ------------------------------------------------------------ writer */

/* Ascending order of u64 values. */
static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Greatest common divisor. */
static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A step through n runs that visits each once and spreads them over the
 * range (about n / golden ratio, coprime with n). */
static size_t spread_step(size_t n)
{
    size_t s = n * 618 / 1000;
    if (s == 0)
        s = 1;
    while (gcd(s, n) != 1)
        s++;
    return s;
}

/* Apply one slice of a window in the writer's nested transaction.  The
 * slice is one part of the window's address range, so a commit rewrites
 * only the index pages of that part, not pages all over the list's index
 * as rows in file order would.  Its rows are looked up in address order;
 * new contacts take their ids in line order; their addresses go into
 * the index as short sorted runs taken in spread order, since one long
 * sorted run into the middle of a B-tree leaves every page it splits
 * half empty (LMDB splits in the middle: 38,260 pages against 31,220
 * for 1,000,000 contacts).  A row whose address an earlier line of the
 * window has takes that row's result, after it. */
/* The cursors of slice_apply(): successive keys that fall on the page a
 * cursor is on are found without a descent from the root. */
enum { CUR_SUPP, CUR_ADDR, CUR_IDS, CUR_CONTACTS, CUR_COUNT };

/* Find key k with cursor c: its value, or MDB_NOTFOUND.  MDB_SET_RANGE
 * leaves the cursor on a page even when k is absent, so the next key in
 * address order is searched on that page first. */
static int cursor_find(MDB_cursor *c, MDB_val k, MDB_val *v)
{
    MDB_val f = k;
    int rc = mdb_cursor_get(c, &f, v, MDB_SET_RANGE);
    if (rc)
        return rc;
    return f.mv_size == k.mv_size && !memcmp(f.mv_data, k.mv_data, k.mv_size)
        ? 0 : MDB_NOTFOUND;
}

static int slice_rows(struct admin_tx *t, struct islice *sl, MDB_cursor **c)
{
    struct iwin *w = sl->w;
    struct queue_import *im = w->im;
    struct queue *q = t->q;
    unsigned char sk[SUPPRESS_KEY_MAX], mk[MEMBER_KEY_MAX], ck[17], idb[8];
    uint64_t *byline = w->byline + sl->first;
    struct contact_view cv;
    size_t nnew = 0;
    uint64_t next;
    int err, rc;

    sl->added = 0;
    err = qlist_load(q, t->txn, im->list, &sl->lrec);
    if (err == QUEUE_ENOTFOUND || (!err && (sl->lrec.flags & LIST_F_DELETING)))
        return admin_fail(t, QUEUE_ENOTFOUND, "list %s was deleted during "
                          "the import", im->list_name);
    if (err)
        return err;
    if ((err = qmeta_get_u64(q, t->txn, "next_contact", &next)))
        return err;
    if (next == 0)
        next = 1;
    /* suppressed, already in the list, or new */
    for (size_t j = sl->first; j < sl->first + sl->n; j++) {
        struct iord *o = &w->ord[j];
        const char *key = w->keys + o->skey;
        o->contact = o->dup_line = 0;
        o->outcome = 0;
        if (o->first != NO_ROW)
            continue;
        MDB_val k = qsupp_key(sk, im->owner, key, o->klen), v;
        rc = cursor_find(c[CUR_SUPP], k, &v);
        if (rc == 0) {
            o->outcome = QUEUE_IMPORT_SUPPRESSED;
            continue;
        }
        if (rc != MDB_NOTFOUND)
            return admin_mdb(t, rc);
        k = qmember_key(mk, im->list, key, o->klen);
        rc = cursor_find(c[CUR_ADDR], k, &v);
        if (rc == MDB_NOTFOUND) {
            o->outcome = QUEUE_IMPORT_ADDED;   /* its id below */
            byline[nnew++] = (uint64_t)o->row << 32 | (uint32_t)j;
            continue;
        }
        if (rc)
            return admin_mdb(t, rc);
        if (v.mv_size != 8)
            return admin_fail(t, QUEUE_ECORRUPT, "bad member record");
        o->outcome = QUEUE_IMPORT_DUPLICATE;
        o->contact = be64_get(v.mv_data);
        be64_put(idb, o->contact);
        MDB_val ik = { 8, idb }, iv;
        if (mdb_get(t->txn, q->dbi[DB_CONTACTS], &ik, &iv) == 0 &&
            qcontact_decode(&iv, &cv) == 0 && cv.import == im->number)
            o->dup_line = cv.line;
    }
    /* the new contacts, in line order: ids, records, the list's order */
    qsort(byline, nnew, sizeof *byline, u64_cmp);
    for (size_t i = 0; i < nnew; i++) {
        struct iord *o = &w->ord[(uint32_t)byline[i]];
        const struct irow *r = &w->rows[o->row];
        be64_put(idb, next);
        MDB_val ik = { 8, idb }, iv = { r->rec_len, w->arena + r->rec_off };
        rc = mdb_cursor_put(c[CUR_CONTACTS], &ik, &iv, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return admin_fail(t, QUEUE_ECORRUPT, "contact ids out of order "
                              "(next_contact %llu)",
                              (unsigned long long)next);
        if (rc)
            return admin_mdb(t, rc);
        MDB_val k = qmember_id_key(ck, im->list, next), v = { 0, NULL };
        if ((rc = mdb_cursor_put(c[CUR_IDS], &k, &v, 0)))
            return admin_mdb(t, rc);
        o->contact = next++;
        sl->added++;
    }
    /* their addresses, runs of SPREAD_RUN in spread order */
    size_t nruns = (sl->n + SPREAD_RUN - 1) / SPREAD_RUN;
    size_t step = spread_step(nruns);
    for (size_t b = 0, run = 0; b < nruns; b++, run = (run + step) % nruns) {
        size_t end = sl->first + (run + 1) * SPREAD_RUN;
        if (end > sl->first + sl->n)
            end = sl->first + sl->n;
        for (size_t j = sl->first + run * SPREAD_RUN; j < end; j++) {
            const struct iord *o = &w->ord[j];
            if (o->first != NO_ROW || o->outcome != QUEUE_IMPORT_ADDED)
                continue;
            be64_put(idb, o->contact);
            MDB_val k = qmember_key(mk, im->list, w->keys + o->skey,
                                    o->klen), v = { 8, idb };
            rc = mdb_cursor_put(c[CUR_ADDR], &k, &v, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST)
                return admin_fail(t, QUEUE_ECORRUPT, "an address put twice");
            if (rc)
                return admin_mdb(t, rc);
        }
    }
    /* the later lines of an address: its first line's result */
    for (size_t j = sl->first; j < sl->first + sl->n; j++) {
        struct iord *o = &w->ord[j];
        if (o->first == NO_ROW)
            continue;
        const struct iord *f = &w->ord[o->first];
        o->outcome = f->outcome;
        o->contact = f->contact;
        o->dup_line = f->dup_line;
        if (f->outcome == QUEUE_IMPORT_ADDED) {
            o->outcome = QUEUE_IMPORT_DUPLICATE;
            o->dup_line = w->rows[f->row].line;
        }
    }
    if (sl->added) {
        if ((rc = qmeta_put_u64(q, t->txn, "next_contact", next)))
            return admin_mdb(t, rc);
        sl->lrec.l.contacts += sl->added;
        if ((err = qlist_store(t, &sl->lrec)))
            return err;
    }
    return 0;
}

/* Apply one slice (slice_rows()) with its cursors. */
static int slice_apply(struct admin_tx *t, void *arg)
{
    static const int dbs[CUR_COUNT] = { DB_SUPPRESS, DB_MEMBERS, DB_MEMBERS,
                                        DB_CONTACTS };
    MDB_cursor *c[CUR_COUNT] = { NULL };
    int rc = 0, err;
    for (int i = 0; i < CUR_COUNT && !rc; i++)
        rc = mdb_cursor_open(t->txn, t->q->dbi[dbs[i]], &c[i]);
    err = rc ? admin_mdb(t, rc) : slice_rows(t, arg, c);
    for (int i = 0; i < CUR_COUNT; i++)
        if (c[i])
            mdb_cursor_close(c[i]);
    return err;
}

/* Completion of a slice on the writer thread: a slice that failed has no
 * results (its transaction was not committed); wake the importer when the
 * window is done. */
static void slice_done(void *arg, int status, uint64_t first_id,
                       uint64_t msg_id)
{
    struct islice *sl = arg;
    struct iwin *w = sl->w;
    (void)first_id;
    (void)msg_id;
    pthread_mutex_lock(&w->im->mu);
    if (status) {
        for (size_t j = sl->first; j < sl->first + sl->n; j++)
            w->ord[j].outcome = 0;
        if (!w->status) {
            w->status = status;
            memcpy(w->detail, sl->detail, sizeof w->detail);
        }
    }
    w->pending--;
    pthread_cond_broadcast(&w->im->cv);
    pthread_mutex_unlock(&w->im->mu);
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

/* Wait for window w and hand its results to the caller in line order
 * (rows of a slice that failed have none); w is empty after. */
static void window_collect(struct queue_import *im, struct iwin *w)
{
    pthread_mutex_lock(&im->mu);
    while (w->pending)
        pthread_cond_wait(&im->cv, &im->mu);
    pthread_mutex_unlock(&im->mu);
    if (w->status)
        import_fail(im, w->status, w->detail);
    for (size_t j = 0; j < w->nord; j++) {
        const struct iord *o = &w->ord[j];
        struct irow *r = &w->rows[o->row];
        r->outcome = o->outcome;
        r->contact = o->contact;
        r->dup_line = o->dup_line;
    }
    for (size_t i = 0; i < w->n; i++) {
        const struct irow *r = &w->rows[i];
        if (!r->outcome)
            continue;
        struct queue_import_result res = {
            .line = r->line, .outcome = r->outcome,
            .email = w->arena + r->email_off, .contact = r->contact,
            .dup_line = r->dup_line,
            .reason = r->kind == ROW_REJECT ? w->arena + r->rec_off : NULL,
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
    w->busy = false;
    w->n = w->alen = w->nord = 0;
    w->status = 0;
}

/* Order of two rows of a window by lower-case address (the order of the
 * member and suppression keys, which share their prefix), then by line. */
static int row_cmp(const void *a, const void *b, void *arg)
{
    const struct iord *x = a, *y = b;
    if (x->p0 != y->p0)
        return x->p0 < y->p0 ? -1 : 1;
    if (x->p1 != y->p1)
        return x->p1 < y->p1 ? -1 : 1;
    const struct iwin *w = arg;
    const struct irow *rx = &w->rows[x->row], *ry = &w->rows[y->row];
    size_t n = rx->key_len < ry->key_len ? rx->key_len : ry->key_len;
    int c = n > 16 ? memcmp(w->arena + rx->key_off + 16,
                            w->arena + ry->key_off + 16, n - 16) : 0;
    if (c)
        return c;
    if (rx->key_len != ry->key_len)
        return rx->key_len < ry->key_len ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* 8 bytes of a key from off as a big-endian number (zero padded). */
static uint64_t key_prefix(const char *key, size_t len, size_t off)
{
    uint64_t v = 0;
    for (size_t i = off; i < off + 8; i++)
        v = v << 8 | (i < len ? (unsigned char)key[i] : 0);
    return v;
}

/* After the sort: each row whose address the row before it has points
 * to the first row of that address (the earliest line); the keys are
 * copied in that order, so the writer reads them one after the other
 * rather than all over the window's bytes. */
static void window_mark_dups(struct iwin *w, size_t n)
{
    uint32_t first = NO_ROW;
    size_t koff = 0;
    const struct irow *p = NULL;
    for (size_t j = 0; j < n; j++) {
        struct iord *o = &w->ord[j];
        const struct irow *r = &w->rows[o->row];
        if (p && p->key_len == r->key_len &&
            !memcmp(w->arena + p->key_off, w->arena + r->key_off,
                    r->key_len)) {
            o->first = first;
        } else {
            o->first = NO_ROW;
            first = (uint32_t)j;
        }
        memcpy(w->keys + koff, w->arena + r->key_off, r->key_len);
        o->skey = (uint32_t)koff;
        o->klen = r->key_len;
        o->outcome = 0;
        o->contact = o->dup_line = 0;
        koff += r->key_len;
        p = r;
    }
}

/* Sort the window being filled by address and send it to the writer in
 * slices of IMPORT_BATCH_ROWS rows (one commit each, applied in order);
 * make the next window ready, waiting for it if it is still in flight. */
static int window_submit(struct queue_import *im)
{
    struct iwin *w = &im->w[im->cur];
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->rows[i].kind == ROW_CONTACT) {
            const struct irow *r = &w->rows[i];
            const char *key = w->arena + r->key_off;
            struct iord *o = &w->ord[n++];
            o->p0 = key_prefix(key, r->key_len, 0);
            o->p1 = key_prefix(key, r->key_len, 8);
            o->row = (uint32_t)i;
        }
    qsort_r(w->ord, n, sizeof *w->ord, row_cmp, w);
    window_mark_dups(w, n);
    if (w->n) {
        size_t sent = 0;
        w->busy = true;
        w->status = 0;
        while (sent < n && !im->err) {
            struct islice *sl = &w->slices[sent / IMPORT_BATCH_ROWS];
            struct queue_op *op = calloc(1, sizeof *op);
            if (!op) {
                import_fail(im, -ENOMEM, NULL);
                break;
            }
            sl->w = w;
            sl->first = sent;
            sl->n = n - sent < IMPORT_BATCH_ROWS ? n - sent : IMPORT_BATCH_ROWS;
            op->kind = OP_ADMIN;
            op->weight = (unsigned)sl->n;     /* a group of its own */
            op->admin_fn = slice_apply;
            op->admin_arg = sl;
            op->admin_detail = sl->detail;
            pthread_mutex_lock(&im->mu);
            w->pending++;
            pthread_mutex_unlock(&im->mu);
            int err = queue_op_submit(im->q, op, NULL, slice_done, sl);
            if (err) {
                pthread_mutex_lock(&im->mu);
                w->pending--;
                pthread_mutex_unlock(&im->mu);
                import_fail(im, err, NULL);
                break;
            }
            sent += sl->n;
        }
        /* rows of slices never sent have no results */
        for (size_t j = sent; j < n; j++)
            w->ord[j].outcome = 0;
        w->nord = n;
        im->cur = (im->cur + 1) % IMPORT_WINDOWS;
        /* small first windows: the writer starts early */
        if (im->limit < IMPORT_WINDOW_ROWS)
            im->limit *= 2;
    }
    w = &im->w[im->cur];
    if (w->busy)
        window_collect(im, w);
    return im->err;
}

/* Room for one row of need arena bytes in the current window. */
static struct iwin *window_room(struct queue_import *im, size_t need)
{
    struct iwin *w = &im->w[im->cur];
    if (w->n == im->limit || IMPORT_WINDOW_BYTES - w->alen < need) {
        if (window_submit(im))
            return NULL;
        w = &im->w[im->cur];
    }
    return w;
}

/* Append n bytes (and a NUL when nul) to w's arena; the offset. */
static uint32_t arena_put(struct iwin *w, const void *p, size_t n, bool nul)
{
    uint32_t off = (uint32_t)w->alen;
    if (n)
        memcpy(w->arena + w->alen, p, n);
    w->alen += n;
    if (nul)
        w->arena[w->alen++] = 0;
    return off;
}

/* Varint (qvar_put()) put into the arena. */
static void arena_var(struct iwin *w, uint64_t v)
{
    unsigned char *at = (unsigned char *)w->arena + w->alen;
    w->alen += (size_t)(qvar_put(at, v) - at);
}

/* Little-endian put into the arena. */
static void arena_le(struct iwin *w, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        w->arena[w->alen++] = (char)(v >> (8 * i));
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
    /* rec is the format-1 size (the cap's measure); format 2's varints
     * of list, import and line may take 5 bytes more */
    struct iwin *w = window_room(im, 2 * (elen + 1) + rec + 5);
    if (!w)
        return im->err;
    struct irow *r = &w->rows[w->n++];
    memset(r, 0, sizeof *r);
    r->kind = ROW_CONTACT;
    r->line = line;
    r->email_len = (uint16_t)elen;
    r->email_off = arena_put(w, email, elen, true);
    r->key_len = (uint16_t)elen;
    /* most addresses are lower-case already: one copy serves both */
    r->key_off = memcmp(email, lower, elen)
        ? arena_put(w, lower, elen, true) : r->email_off;
    r->rec_off = (uint32_t)w->alen;
    arena_le(w, CONTACT_FMT, 1);
    arena_var(w, im->list);
    arena_var(w, im->number);
    arena_var(w, line);
    arena_var(w, elen);
    arena_put(w, email, elen, true);
    arena_le(w, nvalues, 1);
    for (unsigned j = 0; j < nvalues; j++) {
        int c = im->col_of[j];
        size_t n = c >= 0 ? lens[c] : 0;
        arena_var(w, n);
        arena_put(w, n ? values[c] : NULL, n, true);
    }
    r->rec_len = (uint32_t)(w->alen - r->rec_off);
    return 0;
}

int queue_import_reject(struct queue_import *im, uint64_t line,
                        const char *email, const char *reason)
{
    size_t elen = email ? strnlen(email, QUEUE_MAX_FIELD_VALUE) : 0;
    size_t rlen = reason ? strnlen(reason, QUEUE_MAX_IMPORT_REASON) : 0;
    if (im->err)
        return im->err;
    struct iwin *w = window_room(im, elen + rlen + 2);
    if (!w)
        return im->err;
    struct irow *r = &w->rows[w->n++];
    memset(r, 0, sizeof *r);
    r->kind = ROW_REJECT;
    r->outcome = QUEUE_IMPORT_REJECTED;
    r->line = line;
    r->email_len = (uint16_t)elen;
    r->email_off = arena_put(w, email, elen, true);
    r->rec_off = arena_put(w, reason, rlen, true);
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
        window_submit(im);
    /* every window still in flight, oldest first */
    for (unsigned i = 0; i < IMPORT_WINDOWS; i++) {
        struct iwin *w = &im->w[(im->cur + i) % IMPORT_WINDOWS];
        if (w->busy)
            window_collect(im, w);
    }
    struct audit_arg a = { im, by, failure };
    int aerr = admin_run(im->q, do_audit, &a);
    int err = im->err ? im->err : aerr;
    if (im->err)
        queue_set_detail("%s", im->detail);
    if (counts)
        *counts = im->counts;
    windows_free(im);
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    free(im);
    return err;
}
