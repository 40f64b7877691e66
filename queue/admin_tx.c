/*
 * admin_tx.c - the transaction, record packing and input checks shared by
 * the admin data of the spool (accounts, users, keys, domains, audit).
 *
 * DESCRIPTION
 *   A change is an OP_ADMIN operation: the writer runs its function in a
 *   nested transaction of the current group, so a change that fails leaves
 *   nothing behind while the group's other operations commit, and a change
 *   is durable when its group's fsync returns.  The caller waits for it
 *   (admin_run).  Map growth and group splitting work as for every other
 *   operation: a change may run again from scratch after the group was
 *   retried, so change functions keep no state between runs.
 *
 *   Records are packed by the rec_w / rec_r helpers: little-endian integers,
 *   strings with a 1- or 2-byte length, every length checked against its
 *   cap when decoding.
 *
 * DIAGNOSTICS
 *   A change's failure text is written into a buffer of the waiting caller
 *   and set as its queue_last_detail() (details are per thread and the
 *   change runs on the writer thread).  So is the audit record it
 *   appended, whose head admin_run() exports once the change committed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define DETAIL_MAX 256

int queue_op_apply_admin(struct wctx *w, struct queue_op *op)
{
    struct admin_tx t = { .q = w->q, .now_ms = w->now_ms,
                          .detail = op->admin_detail,
                          .mark = op->admin_mark, .w = w };
    int rc = mdb_txn_begin(w->q->env, w->txn, 0, &t.txn);
    if (rc)
        return wctx_fail(w, rc);
    if (t.detail)
        t.detail[0] = 0;
    if (t.mark)
        t.mark->seq = 0;    /* a group retried runs the change again */
    int err = op->admin_fn(&t, op->admin_arg);
    if (err == 0) {
        if ((rc = mdb_txn_commit(t.txn)))
            return wctx_fail(w, rc);
        w->next_event += t.nevents;
        return 0;
    }
    mdb_txn_abort(t.txn);
    if (t.mdb_rc && queue_err_txn_fatal(t.mdb_rc))
        return wctx_fail(w, t.mdb_rc);   /* the group retries or splits */
    op->status = err;
    return 0;
}

int admin_writable(struct queue *q)
{
    if (q->readonly) {
        queue_set_detail("the spool is open read-only");
        return -EROFS;
    }
    return 0;
}

int admin_run(struct queue *q, int (*fn)(struct admin_tx *t, void *arg),
              void *arg)
{
    char detail[DETAIL_MAX] = "";
    struct audit_mark mark = { 0 };
    int err = admin_writable(q);
    if (err)
        return err;
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->kind = OP_ADMIN;
    op->weight = 1;
    op->admin_fn = fn;
    op->admin_arg = arg;
    op->admin_detail = detail;
    op->admin_mark = &mark;
    err = sync_submit_wait(q, op);
    if (!err && mark.seq)
        qaudit_export(q, &mark);   /* committed: export the new head */
    queue_set_detail("%s", detail);
    return err;
}

int admin_mdb(struct admin_tx *t, int rc)
{
    if (queue_err_txn_fatal(rc))
        t->mdb_rc = rc;
    return queue_err_mdb(rc);
}

int admin_fail(struct admin_tx *t, int err, const char *fmt, ...)
{
    if (t->detail) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->detail, DETAIL_MAX, fmt, ap);
        va_end(ap);
    }
    return err;
}

bool admin_absent(struct queue *q)
{
    return q->absent[DB_ACCOUNTS];
}

int admin_read(struct queue *q, int (*fn)(MDB_txn *txn, void *arg), void *arg)
{
    MDB_txn *txn;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = fn(txn, arg);
    queue_read_end(q, txn);
    return err;
}

int admin_next_id(struct admin_tx *t, const char *name, uint32_t *id)
{
    uint64_t v;
    int err = qmeta_get_u64(t->q, t->txn, name, &v);
    if (err)
        return err;
    if (v == 0)
        v = 1;
    if (v > UINT32_MAX)
        return admin_fail(t, QUEUE_EFULL, "%s: ids used up", name);
    *id = (uint32_t)v;
    int rc = qmeta_put_u64(t->q, t->txn, name, v + 1);
    return rc ? admin_mdb(t, rc) : 0;
}

int queue_admin_gen(struct queue *q, uint64_t *gen)
{
    MDB_txn *txn;
    int err;
    *gen = 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    err = qmeta_get_u64(q, txn, "admin_gen", gen);
    queue_read_end(q, txn);
    return err;
}

/* ------------------------------------------------------------- checks */

bool admin_name_ok(const char *s, size_t cap, bool user)
{
    size_t n = s ? strnlen(s, cap + 1) : 0;
    if (n == 0 || n > cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (i > 0)
            ok = ok || c == '.' || c == '_' || c == '-' || (user && c == '@');
        if (!ok)
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence starting at p (n bytes left), 0 if bad. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t need;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) { need = 2; cp = p[0] & 0x1f; }
    else if ((p[0] & 0xf0) == 0xe0) { need = 3; cp = p[0] & 0x0f; }
    else if ((p[0] & 0xf8) == 0xf0) { need = 4; cp = p[0] & 0x07; }
    else return 0;
    if (need > n)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

bool admin_text_ok(const char *s, size_t cap)
{
    if (!s)
        return true;
    size_t n = strnlen(s, cap + 1);
    if (n > cap)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if ((p[i] < ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') ||
            p[i] == 0x7f)
            return false;
        size_t l = utf8_len(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

int admin_rate_check(const char *s)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!s || !*s)
        return 0;
    if (!slash || slash == s || slash - s > 9)
        return -EINVAL;
    unsigned long n = 0;
    for (const char *p = s; p < slash; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        n = n * 10 + (unsigned long)(*p - '0');
    }
    if (n == 0 || n > 100000000)
        return -EINVAL;
    const char *u = slash + 1;
    static const char *const units[] = { "s", "sec", "min", "m", "h", "hour",
                                         "day", "d" };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(u, units[i]))
            return 0;
    return -EINVAL;
}

/* ------------------------------------------------------------- roles */

static const char *const role_names[] = { "none", "viewer", "sender",
                                          "manager", "admin", "owner" };

const char *queue_role_name(int role)
{
    if (role < QUEUE_ROLE_NONE || role > QUEUE_ROLE_OWNER)
        return "?";
    return role_names[role];
}

int queue_role_parse(const char *name)
{
    for (int i = 0; name && i <= QUEUE_ROLE_OWNER; i++)
        if (!strcmp(name, role_names[i]))
            return i;
    return -EINVAL;
}

/* ----------------------------------------------------------- packing */

/* Room for n more bytes in w, or mark it over. */
static unsigned char *rw_room(struct rec_w *w, size_t n)
{
    if (w->over || w->cap - w->len < n) {
        w->over = true;
        return NULL;
    }
    unsigned char *p = w->p + w->len;
    w->len += n;
    return p;
}

void qrec_w_u8(struct rec_w *w, unsigned v)
{
    unsigned char *p = rw_room(w, 1);
    if (p)
        p[0] = (unsigned char)v;
}

void qrec_w_u32(struct rec_w *w, uint32_t v)
{
    unsigned char *p = rw_room(w, 4);
    for (int i = 0; p && i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void qrec_w_u64(struct rec_w *w, uint64_t v)
{
    unsigned char *p = rw_room(w, 8);
    for (int i = 0; p && i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void qrec_w_bytes(struct rec_w *w, const void *b, size_t n)
{
    unsigned char *p = rw_room(w, n);
    if (p && n)
        memcpy(p, b, n);
}

void qrec_w_str(struct rec_w *w, const char *s, int lenbytes, size_t cap)
{
    size_t n = s ? strnlen(s, cap) : 0;
    if (lenbytes == 1)
        qrec_w_u8(w, (unsigned)n);
    else {
        qrec_w_u8(w, (unsigned)(n & 0xff));
        qrec_w_u8(w, (unsigned)(n >> 8));
    }
    qrec_w_bytes(w, s, n);
}

/* The next n bytes of r, or NULL (and r bad). */
static const unsigned char *rr_take(struct rec_r *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

unsigned qrec_r_u8(struct rec_r *r)
{
    const unsigned char *p = rr_take(r, 1);
    return p ? p[0] : 0;
}

uint32_t qrec_r_u32(struct rec_r *r)
{
    const unsigned char *p = rr_take(r, 4);
    uint32_t v = 0;
    for (int i = 3; p && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t qrec_r_u64(struct rec_r *r)
{
    const unsigned char *p = rr_take(r, 8);
    uint64_t v = 0;
    for (int i = 7; p && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void qrec_r_bytes(struct rec_r *r, void *b, size_t n)
{
    const unsigned char *p = rr_take(r, n);
    if (p && n)
        memcpy(b, p, n);
    else if (n)
        memset(b, 0, n);
}

void qrec_r_str(struct rec_r *r, char *dst, int lenbytes, size_t cap)
{
    size_t n = qrec_r_u8(r);
    if (lenbytes == 2)
        n |= (size_t)qrec_r_u8(r) << 8;
    dst[0] = 0;
    if (n > cap) {
        r->bad = true;
        return;
    }
    const unsigned char *p = rr_take(r, n);
    if (!p)
        return;
    if (n && memchr(p, 0, n)) {
        r->bad = true;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = 0;
}

bool qrec_r_done(const struct rec_r *r)
{
    return !r->bad && r->off == r->len;
}
