/*
 * salvage.c - `sluice spool salvage`: copy what can be read of a damaged
 * spool into a new one.
 *
 * DESCRIPTION
 *   A child process (walk.c) opens the source read-only with plain LMDB,
 *   makes the new spool (queue_open with CREATE, so it has this build's
 *   schema) and copies every database of the schema in key order: each
 *   record that can be read and keeps its layout (rules.c) is written, in
 *   transactions of COPY_BATCH records; what cannot be read is skipped
 *   (walk.c) and reported as lost, with its key range.  The meta records
 *   "magic" and "schema" are the new spool's own.  A ready entry whose
 *   delivery did not come through names a queued recipient that is lost:
 *   it is reported and not copied.  Then the parent repairs the new spool
 *   (repair.c).  The source is never written.
 *
 *   The copy is what mdb_dump would give, except that it goes on past a
 *   damaged page instead of stopping at it, and leaves out records that
 *   do not decode.
 *
 * DIAGNOSTICS
 *   See queue_salvage() in queue.h.  A child that dies despite the guard
 *   leaves what it committed; the repairs still run on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_int.h"

#define COPY_BATCH 10000
#define COPY_BATCH_BYTES (64u << 20)

struct sv {
    const char *src, *dst;
    char tmp[4096];          /* a repaired copy of the source, if any */
    int fd;
    struct raw s;
    MDB_env *out;
    MDB_dbi odbi[DB_COUNT];
    MDB_txn *otxn;
    MDB_cursor *ocur;
    unsigned pending;
    size_t pending_bytes;
    int db;
    uint64_t problems, copied, lost_queued;
    int write_err;           /* LMDB code of a failed write: stop */
};

/* Report a loss in the database being copied (k NULL: the database). */
static void lost(struct sv *c, const MDB_val *k, const char *what)
{
    char key[96] = "";
    c->problems++;
    if (c->problems > 200)
        return;
    if (k)
        rules_key_text(c->db, k, key, sizeof key);
    walk_send(c->fd, WM_PROBLEM, c->db, key, what, 0, 0, 0, 0);
}

/* Commit the pending copies and begin the next transaction. */
static int out_commit(struct sv *c)
{
    int rc = 0;
    if (c->ocur)
        mdb_cursor_close(c->ocur);
    c->ocur = NULL;
    if (c->otxn && (rc = mdb_txn_commit(c->otxn)))
        c->write_err = rc;
    c->otxn = NULL;
    c->pending = 0;
    c->pending_bytes = 0;
    return rc;
}

static int out_begin(struct sv *c)
{
    int rc = mdb_txn_begin(c->out, NULL, 0, &c->otxn);
    if (!rc && (rc = mdb_cursor_open(c->otxn, c->odbi[c->db], &c->ocur))) {
        mdb_txn_abort(c->otxn);
        c->otxn = NULL;
    }
    if (rc)
        c->write_err = rc;
    return rc;
}

/* Write one record into the new spool, in key order. */
static int out_put(struct sv *c, const MDB_val *k, const MDB_val *v)
{
    if (!c->otxn && out_begin(c))
        return c->write_err;
    MDB_val kk = *k, vv = *v;
    int rc = c->db == DB_META
             ? mdb_put(c->otxn, c->odbi[DB_META], &kk, &vv, 0)
             : mdb_cursor_put(c->ocur, &kk, &vv, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_put(c->otxn, c->odbi[c->db], &kk, &vv, 0);
    if (rc) {
        c->write_err = rc;
        return rc;
    }
    c->copied++;
    c->pending_bytes += k->mv_size + v->mv_size;
    if (++c->pending >= COPY_BATCH || c->pending_bytes >= COPY_BATCH_BYTES)
        return out_commit(c);
    return 0;
}

static int on_record(struct walk *w, const MDB_val *k, const MDB_val *v)
{
    struct sv *c = w->arg;
    char why[200], what[240];
    if (rules_record(c->db, k, v, why, sizeof why)) {
        snprintf(what, sizeof what, "not copied: %s", why);
        lost(c, k, what);
        return 0;
    }
    if (c->db == DB_META && ((k->mv_size == 5 && !memcmp(k->mv_data,
                                                          "magic", 5)) ||
                             (k->mv_size == 6 && !memcmp(k->mv_data,
                                                          "schema", 6)))) {
        c->copied++; /* the new spool's own */
        return 0;
    }
    if (c->db == DB_READY) {
        /* the deliveries are committed: is this one among them? */
        MDB_val dk = { 8, (unsigned char *)k->mv_data + 8 }, dv;
        if (!c->otxn && out_begin(c))
            return 1;
        int rc = mdb_get(c->otxn, c->odbi[DB_DELIVERIES], &dk, &dv);
        if (rc == MDB_NOTFOUND) {
            c->lost_queued++;
            snprintf(what, sizeof what, "queued delivery %llu could not be "
                     "read: its recipient is lost",
                     (unsigned long long)be64_get(dk.mv_data));
            lost(c, k, what);
            return 0;
        }
        if (rc) {
            c->write_err = rc;
            return 1;
        }
    }
    return out_put(c, k, v) ? 1 : 0;
}

static void on_gap(struct walk *w, const MDB_val *after, const MDB_val *resume,
                   const char *why)
{
    struct sv *c = w->arg;
    char to[96] = "the end", what[240];
    if (resume)
        rules_key_text(c->db, resume, to, sizeof to);
    snprintf(what, sizeof what, "lost: the records %s up to %s could not be "
             "read (%s)", after ? "after this one" : "from the start", to,
             why);
    lost(c, after, what);
}

/* Copy one database of the source. */
static int copy_db(struct sv *c, int db)
{
    struct walk w = { .env = c->s.env, .dbi = c->s.dbi[db],
                      .vcap = rules_value_cap(db), .record = on_record,
                      .gap = on_gap, .arg = c };
    MDB_stat st = { 0 };
    MDB_txn *txn;
    c->db = db;
    c->problems = c->copied = 0;
    walk_send(c->fd, WM_DB_BEGIN, db, NULL, NULL, 0, 0, 0, 0);
    if (c->s.unopened[db])
        lost(c, NULL, "lost: the records from the start up to the end could "
             "not be read (LMDB cannot open the database)");
    if (c->s.present[db]) {
        int err = walk_run(&w);
        if (err)
            lost(c, NULL, "lost: the database cannot be read at all");
        if (!mdb_txn_begin(c->s.env, NULL, MDB_RDONLY, &txn)) {
            mdb_stat(txn, c->s.dbi[db], &st);
            mdb_txn_abort(txn);
        }
    }
    if (!c->write_err)
        out_commit(c);
    if (c->write_err) {
        char what[200];
        snprintf(what, sizeof what, "cannot write the new spool: %s",
                 mdb_strerror(c->write_err));
        lost(c, NULL, what);
    } else if (st.ms_entries > w.records && st.ms_entries < (1ull << 48)) {
        char what[200];
        snprintf(what, sizeof what, "lost: %llu of the %llu records its "
                 "header counts could not be read",
                 (unsigned long long)(st.ms_entries - w.records),
                 (unsigned long long)st.ms_entries);
        lost(c, NULL, what);
    }
    walk_send(c->fd, WM_DB_END, db, NULL, NULL, w.records, c->problems,
              st.ms_entries, c->copied);
    walk_free(&w);
    return c->write_err ? 74 : 0;
}

/* Make the new spool and open it with plain LMDB for the copy. */
static int make_dst(struct sv *c, uint64_t src_bytes)
{
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    MDB_txn *txn;
    int err = queue_open(&q, c->dst, &o);
    if (err) {
        walk_send(c->fd, WM_ERROR, WM_DB_FILE, "", queue_last_detail(),
                  (uint64_t)-err, 0, 0, 0);
        return 73;
    }
    queue_close(q);
    int rc = mdb_env_create(&c->out);
    if (!rc) {
        mdb_env_set_maxdbs(c->out, 64);
        /* room for all of the source and its free pages twice over */
        mdb_env_set_mapsize(c->out, (size_t)(2 * src_bytes + (1ull << 30)));
        rc = mdb_env_open(c->out, c->dst, MDB_NOTLS, 0600);
    }
    if (!rc && !(rc = mdb_txn_begin(c->out, NULL, 0, &txn))) {
        for (int i = 0; i < DB_COUNT && !rc; i++)
            rc = mdb_dbi_open(txn, queue_db_names[i], 0, &c->odbi[i]);
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    }
    if (rc) {
        walk_send(c->fd, WM_ERROR, WM_DB_FILE, "", mdb_strerror(rc),
                  (uint64_t)-queue_err_mdb(rc), 0, 0, 0);
        return 73;
    }
    return 0;
}

/* When one of LMDB's meta pages is damaged (LMDB then refuses the whole
 * file), read a copy with the intact one in its place, made beside DST. */
static int fix_meta_page(struct sv *c)
{
    char path[4096], copy[4200];
    int bad;
    uint32_t psize;
    snprintf(path, sizeof path, "%s/data.mdb", c->src);
    if (metapage_probe(path, &bad, &psize) || (bad != 0 && bad != 1))
        return 0;
    snprintf(c->tmp, sizeof c->tmp, "%s.salvage-src", c->dst);
    snprintf(copy, sizeof copy, "%s/data.mdb", c->tmp);
    int err = mkdir(c->tmp, 0700) ? -errno
              : metapage_copy_fixed(path, copy, bad, psize);
    if (err) {
        char what[200];
        snprintf(what, sizeof what, "LMDB's meta page %d is damaged and a "
                 "repaired copy cannot be made beside the new spool: %s",
                 bad, strerror(-err));
        walk_send(c->fd, WM_ERROR, WM_DB_FILE, "", what, (uint64_t)-err, 0,
                  0, 0);
        rmdir(c->tmp);
        c->tmp[0] = 0;
        return 73;
    }
    char what[200];
    snprintf(what, sizeof what, "LMDB's meta page %d is damaged: reading a "
             "copy with the intact one in its place", bad);
    walk_send(c->fd, WM_NOTE, WM_DB_FILE, "", what, 0, 0, 0, 0);
    /* LMDB writes the two in turn: the damaged one may have been the
     * newer, naming what the last commit wrote */
    walk_send(c->fd, WM_PROBLEM, WM_DB_FILE, "", "what the last commit "
              "wrote may be lost (if the damaged meta page was the newer)",
              0, 0, 0, 0);
    c->src = c->tmp;
    return 0;
}

/* Remove the repaired copy of the source, if one was made. */
static void drop_tmp(struct sv *c)
{
    char path[4200];
    if (!c->tmp[0])
        return;
    snprintf(path, sizeof path, "%s/data.mdb", c->tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", c->tmp);
    unlink(path);
    rmdir(c->tmp);
}

/* Copy every database of the source into the new spool. */
static int salvage_copy(struct sv *c)
{
    char path[4096];
    struct stat st;
    int fd = c->fd;
    int rc = qraw_open(&c->s, c->src, fd, WM_NOTE);
    if (rc == 2)
        return 66;
    if (rc) {
        walk_send(fd, WM_ERROR, WM_DB_FILE, "", "LMDB cannot read the "
                  "source at all: nothing to salvage", (uint64_t)-QUEUE_ECORRUPT,
                  0, 0, 0);
        return 65;
    }
    snprintf(path, sizeof path, "%s/data.mdb", c->src);
    if ((rc = make_dst(c, stat(path, &st) ? 0 : (uint64_t)st.st_size)))
        return rc;
    /* deliveries before ready: a ready entry is checked against them */
    rc = copy_db(c, DB_META);
    if (!rc)
        rc = copy_db(c, DB_DELIVERIES);
    for (int i = 0; i < DB_COUNT && !rc; i++)
        if (i != DB_META && i != DB_DELIVERIES)
            rc = copy_db(c, i);
    walk_send(fd, WM_COUNT, WM_DB_FILE, "lost_queued", NULL, c->lost_queued,
              0, 0, 0);
    mdb_env_close(c->out);
    qraw_close(&c->s);
    return rc;
}

static int salvage_child(int fd, void *arg)
{
    struct sv *c = arg;
    c->fd = fd;
    int rc = fix_meta_page(c);
    if (rc)
        return rc;
    rc = salvage_copy(c);
    drop_tmp(c);
    return rc;
}

int queue_salvage(const char *src, const char *dst, queue_report_cb cb,
                  void *arg, struct queue_check_report *r)
{
    struct stat st;
    struct collect col = { .r = r, .cb = cb, .arg = arg, .db = -1 };
    memset(r, 0, sizeof *r);
    queue_set_detail("%s", "");
    if (!src || !dst || !*dst)
        return -EINVAL;
    if (lstat(dst, &st) == 0) {
        queue_set_detail("%s exists", dst);
        return -EEXIST;
    }
    struct sv *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->src = src;
    c->dst = dst;
    snprintf(c->tmp, sizeof c->tmp, "%s.salvage-src", dst);
    if (lstat(c->tmp, &st) == 0) {
        queue_set_detail("%s exists (left by an interrupted salvage?)",
                         c->tmp);
        free(c);
        return -EEXIST;
    }
    c->tmp[0] = 0;
    int status = walk_child(salvage_child, c, qcollect_msg, &col);
    free(c);
    if (status < 0)
        return status;
    if (col.err)
        return col.err;
    if (status > 0 && status < 128) {
        /* the new spool could not be written (reported): no repairs */
        queue_set_detail("%s could not be written", dst);
        return -EIO;
    }
    qcollect_end(&col, status);
    return repair_spool(dst, &col);
}
