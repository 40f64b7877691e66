/*
 * walk.c - reading a spool that may be damaged: a walk over one database
 * that skips what it cannot read, a fault guard, and the child process the
 * walks run in.
 *
 * DESCRIPTION
 *   LMDB trusts its pages.  A page of garbage makes it return an error
 *   (MDB_CORRUPTED, MDB_PAGE_NOTFOUND), records that are not there, keys
 *   out of order, or a fault when an offset points outside the map.  The
 *   walk reads one database in key order and copies each record out of the
 *   map under the fault guard.  When a step fails it searches for the next
 *   key it can reach from the root: first by doubling the distance from
 *   the last good key (keys read as big-endian numbers), then by halving
 *   the interval between the last probe that failed and the first that
 *   worked, so that the stretch it skips is about one damaged page and not
 *   more.  Each skipped stretch is reported once.
 *
 *   The guard: SIGBUS and SIGSEGV jump back to the armed sigsetjmp point
 *   instead of ending the process.  It is installed only in the child of
 *   walk_child(), a process that does nothing but walk, never in a library
 *   caller or an event loop; after a jump the read transaction in use is
 *   dropped and a new one begun.
 *
 * DIAGNOSTICS
 *   walk_run() fails only when no read transaction can be begun.
 *   walk_child() returns the child's status, or 128 + the signal that
 *   killed it despite the guard.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_int.h"

#define NUM_MAX 32          /* bytes of a key used as a probe number */
#define MAX_PROBES 2048     /* probes per damaged stretch */

sigjmp_buf *volatile qguard_at;

/* SIGBUS, SIGSEGV or SIGABRT (an LMDB assertion that met a damaged page
 * outside an environment of ours): jump to the armed guard, else die of
 * it as usual. */
static void guard_on_fault(int sig)
{
    if (qguard_at)
        siglongjmp(*qguard_at, sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

void qguard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_on_fault;
    /* not blocked in the handler: the jump leaves it unblocked for the
     * next fault without a sigprocmask per guarded step */
    sa.sa_flags = SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
}

void qguard_assert(MDB_env *env, const char *msg)
{
    (void)env;
    (void)msg;
    if (qguard_at)
        siglongjmp(*qguard_at, SIGABRT);
}

const char *walk_db_name(int db)
{
    switch (db) {
    case WM_DB_FILE: return "file";
    case WM_DB_FREE: return "freelist";
    case WM_DB_MAIN: return "main";
    default: return db >= 0 && db < DB_COUNT ? queue_db_names[db] : "?";
    }
}

/* ---------------------------------------------------------- the child */

void walk_send(int fd, int kind, int db, const char *key, const char *what,
               uint64_t n0, uint64_t n1, uint64_t n2, uint64_t n3)
{
    struct walk_msg m;
    memset(&m, 0, sizeof m);
    m.kind = (uint8_t)kind;
    m.db = (uint8_t)db;
    m.n[0] = n0;
    m.n[1] = n1;
    m.n[2] = n2;
    m.n[3] = n3;
    snprintf(m.key, sizeof m.key, "%s", key ? key : "");
    snprintf(m.what, sizeof m.what, "%s", what ? what : "");
    const char *p = (const char *)&m;
    size_t left = sizeof m;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(74); /* the parent is gone */
        p += n;
        left -= (size_t)n;
    }
}

int walk_child(int (*fn)(int fd, void *arg), void *arg,
               void (*on_msg)(void *marg, const struct walk_msg *m),
               void *marg)
{
    int fds[2];
    if (pipe(fds))
        return -errno;
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGPIPE, SIG_IGN);
        qguard_install();
        _exit(fn(fds[1], arg) & 0xff);
    }
    close(fds[1]);
    struct walk_msg m;
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fds[0], (char *)&m + have, sizeof m - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        if (have == sizeof m) {
            on_msg(marg, &m);
            have = 0;
        }
    }
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 70;
}

/* ------------------------------------------------------ probe numbers */

/* Keys as n-byte big-endian numbers: a key's first n bytes, zero-padded.
 * Every number above a key's number is above the key itself. */
static void num_of(const unsigned char *k, size_t klen, unsigned char *num,
                   size_t n)
{
    memset(num, 0, n);
    memcpy(num, k, klen < n ? klen : n);
}

/* num += 2^bit; false when it overflows n bytes. */
static bool num_add_pow2(unsigned char *num, size_t n, unsigned bit)
{
    if (bit >= 8 * n)
        return false;
    size_t i = n - 1 - bit / 8;
    unsigned carry = 1u << (bit % 8);
    for (;; i--) {
        unsigned v = num[i] + carry;
        num[i] = (unsigned char)v;
        carry = v >> 8;
        if (!carry)
            return true;
        if (i == 0)
            return false;
    }
}

/* mid = (lo + hi) / 2; false when hi - lo <= 1 (nothing between). */
static bool num_mid(const unsigned char *lo, const unsigned char *hi,
                    unsigned char *mid, size_t n)
{
    unsigned char sum[NUM_MAX + 1];
    unsigned carry = 0;
    for (size_t i = n; i-- > 0;) {
        unsigned v = (unsigned)lo[i] + hi[i] + carry;
        sum[i + 1] = (unsigned char)v;
        carry = v >> 8;
    }
    sum[0] = (unsigned char)carry;
    unsigned rem = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned v = rem << 8 | sum[i];
        sum[i] = (unsigned char)(v >> 1);
        rem = v & 1;
    }
    memcpy(mid, sum + 1, n);
    return memcmp(mid, lo, n) != 0 && memcmp(mid, hi, n) != 0;
}

/* Whether w's keys of n bytes are host-order integers (MDB_INTEGERKEY
 * keys are all unsigned int or all size_t). */
static bool int_sized(const struct walk *w, size_t n)
{
    return w->intkey && (n == sizeof(unsigned) || n == sizeof(size_t));
}

/* The host-order integer of n bytes at k (int_sized). */
static uint64_t int_of(const void *k, size_t n)
{
    if (n == sizeof(unsigned)) {
        unsigned u;
        memcpy(&u, k, sizeof u);
        return u;
    }
    size_t z;
    memcpy(&z, k, sizeof z);
    return z;
}

/* w's key order: LMDB's default (bytes, then length), or as numbers for
 * integer keys of one size (its free-page list: txnid 256 after 255). */
static int key_cmp(const struct walk *w, const void *a, size_t alen,
                   const void *b, size_t blen)
{
    if (alen == blen && int_sized(w, alen)) {
        uint64_t x = int_of(a, alen), y = int_of(b, blen);
        return x < y ? -1 : x > y;
    }
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Between probe numbers (big-endian, n bytes) and w's keys: the same
 * bytes for byte-ordered keys, byte-swapped for integer keys on a
 * little-endian host.  The reversal is its own inverse. */
static void num_key(const struct walk *w, const unsigned char *in,
                    unsigned char *out, size_t n)
{
    const uint16_t one = 1;
    bool swap = int_sized(w, n) && *(const unsigned char *)&one == 1;
    for (size_t i = 0; i < n; i++)
        out[i] = swap ? in[n - 1 - i] : in[i];
}

/* ------------------------------------------------------------- walking */

/* Where a walk stands: its transaction, cursor and the record in hand. */
struct pos {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;            /* copies (walk buffers) */
    unsigned char key[WALK_KEY_MAX];
};

/* Close the cursor and end the transaction of p (both may be NULL). */
static void pos_drop(struct pos *p)
{
    if (p->cur)
        mdb_cursor_close(p->cur);
    if (p->txn)
        mdb_txn_abort(p->txn);
    p->cur = NULL;
    p->txn = NULL;
}

/* Copy the record at k/v (in the map) into p and w's value buffer.  Runs
 * under the guard.  0, or an LMDB-style code with why. */
static int pos_take(struct walk *w, struct pos *p, const MDB_val *k,
                    const MDB_val *v, char *why, size_t cap)
{
    if (k->mv_size > WALK_KEY_MAX || (k->mv_size && !k->mv_data)) {
        snprintf(why, cap, "key of %zu bytes", k->mv_size);
        return MDB_CORRUPTED;
    }
    memcpy(p->key, k->mv_data, k->mv_size);
    p->k.mv_size = k->mv_size;
    p->k.mv_data = p->key;
    p->v.mv_size = v->mv_size;
    p->v.mv_data = NULL;
    if (v->mv_size > w->vcap)
        return 0;
    if (v->mv_size > w->vbuf_cap) {
        size_t ncap = w->vbuf_cap ? w->vbuf_cap : 4096;
        while (ncap < v->mv_size)
            ncap *= 2;
        unsigned char *nb = realloc(w->vbuf, ncap);
        if (!nb) {
            snprintf(why, cap, "out of memory for a value of %zu bytes",
                     v->mv_size);
            return ENOMEM;
        }
        w->vbuf = nb;
        w->vbuf_cap = ncap;
    }
    if (v->mv_size)
        memcpy(w->vbuf, v->mv_data, v->mv_size);
    p->v.mv_data = v->mv_size ? (void *)w->vbuf : (void *)p->key;
    return 0;
}

/* One guarded cursor step (a fresh transaction when p has none).  0 with
 * the record copied into p, MDB_NOTFOUND at the end, else a failure. */
static int pos_step(struct walk *w, struct pos *p, MDB_cursor_op op,
                    const MDB_val *at, char *why, size_t cap)
{
    sigjmp_buf jb;
    int rc;
    if (sigsetjmp(jb, 0)) {
        qguard_at = NULL;
        snprintf(why, cap, "reading the page faulted (bus error or "
                 "segmentation fault)");
        /* a read faulted half way through the step: the cursor and the
         * transaction are only freed (a read-only one holds no lock) */
        pos_drop(p);
        return MDB_CORRUPTED;
    }
    if (!p->txn) {
        if ((rc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, &p->txn))) {
            p->txn = NULL;
            snprintf(why, cap, "%s", mdb_strerror(rc));
            return rc;
        }
        if ((rc = mdb_cursor_open(p->txn, w->dbi, &p->cur))) {
            p->cur = NULL;
            snprintf(why, cap, "%s", mdb_strerror(rc));
            pos_drop(p);
            return rc;
        }
    }
    MDB_val k = { 0, NULL }, v = { 0, NULL };
    if (at)
        k = *at;
    qguard_at = &jb;
    rc = mdb_cursor_get(p->cur, &k, &v, op);
    if (rc == 0)
        rc = pos_take(w, p, &k, &v, why, cap);
    else if (rc != MDB_NOTFOUND)
        snprintf(why, cap, "LMDB: %s", mdb_strerror(rc));
    qguard_at = NULL;
    if (rc && rc != MDB_NOTFOUND)
        pos_drop(p);
    return rc;
}

/* Whether a probe at num (n bytes) reached a record beyond the last one
 * (or the end): 1 with p positioned (txn NULL at the end), 0 if not. */
static int probe(struct walk *w, struct pos *p, const unsigned char *num,
                 size_t n, char *why, size_t cap)
{
    unsigned char key[NUM_MAX];
    pos_drop(p);
    num_key(w, num, key, n);
    MDB_val at = { n, key };
    int rc = pos_step(w, p, MDB_SET_RANGE, &at, why, cap);
    if (rc == MDB_NOTFOUND) {
        pos_drop(p);
        return 1;
    }
    if (rc)
        return 0;
    if (key_cmp(w, p->k.mv_data, p->k.mv_size, key, n) < 0 ||
        (w->have_last &&
         key_cmp(w, p->k.mv_data, p->k.mv_size, w->last, w->last_len) <= 0)) {
        snprintf(why, cap, "keys out of order");
        pos_drop(p);
        return 0;
    }
    return 1;
}

/* Find the first record that can be read after the last good one (or
 * from the start): 1 positioned there, 0 at the end of what can be read. */
static int skip_damage(struct walk *w, struct pos *p, const char *why0)
{
    unsigned char base[NUM_MAX], lo[NUM_MAX], hi[NUM_MAX], mid[NUM_MAX];
    char why[160];  /* of the probes; the stretch is reported with why0 */
    size_t n = w->have_last ? w->last_len : 8;
    if (n > NUM_MAX)
        n = NUM_MAX;
    if (n == 0)
        n = 1;
    if (w->have_last && w->last_len == n && int_sized(w, n))
        num_key(w, w->last, base, n);
    else
        num_of(w->last, w->have_last ? w->last_len : 0, base, n);
    unsigned probes = 0;
    int found = 0;
    /* double the distance until a probe lands */
    unsigned bit = 0;
    for (; bit < 8 * n && probes < MAX_PROBES; bit++) {
        memcpy(hi, base, n);
        if (!num_add_pow2(hi, n, bit))
            break;
        probes++;
        if ((found = probe(w, p, hi, n, why, sizeof why)))
            break;
    }
    if (found && bit > 0) {
        /* halve the interval between the last miss and the first hit,
         * then stand on the first hit again */
        memcpy(lo, base, n);
        num_add_pow2(lo, n, bit - 1);
        while (probes < MAX_PROBES && num_mid(lo, hi, mid, n)) {
            probes++;
            if (probe(w, p, mid, n, why, sizeof why))
                memcpy(hi, mid, n);
            else
                memcpy(lo, mid, n);
        }
        found = probe(w, p, hi, n, why, sizeof why);
    }
    MDB_val after = { w->last_len, w->last };
    w->gaps++;
    if (!found || !p->txn) {
        pos_drop(p);
        if (w->gap)
            w->gap(w, w->have_last ? &after : NULL, NULL, why0);
        return 0;
    }
    if (w->gap)
        w->gap(w, w->have_last ? &after : NULL, &p->k, why0);
    return 1;
}

int walk_run(struct walk *w)
{
    struct pos p = { 0 };
    char why[160];
    MDB_txn *t;
    int rc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, &t);
    if (rc)
        return queue_err_mdb(rc); /* the environment, not a page */
    mdb_txn_abort(t);
    w->records = w->gaps = 0;
    w->have_last = false;
    w->last_len = 0;
    rc = pos_step(w, &p, MDB_FIRST, NULL, why, sizeof why);
    for (;;) {
        if (rc == 0 && w->have_last &&
            key_cmp(w, p.k.mv_data, p.k.mv_size, w->last, w->last_len) <= 0) {
            snprintf(why, sizeof why, "keys out of order");
            pos_drop(&p);
            rc = MDB_CORRUPTED;
        }
        if (rc == MDB_NOTFOUND)
            break;
        if (rc) {
            if (!skip_damage(w, &p, why))
                break;
            rc = 0;
        }
        memcpy(w->last, p.k.mv_data, p.k.mv_size);
        w->last_len = p.k.mv_size;
        w->have_last = true;
        w->records++;
        if (w->record && w->record(w, &p.k, &p.v))
            break;
        rc = pos_step(w, &p, MDB_NEXT, NULL, why, sizeof why);
    }
    pos_drop(&p);
    return 0;
}

void walk_free(struct walk *w)
{
    free(w->vbuf);
    w->vbuf = NULL;
    w->vbuf_cap = 0;
}

int walk_get(MDB_env *env, MDB_txn **txn, MDB_dbi dbi, const MDB_val *k,
             MDB_val *v, void *buf, size_t cap, char *why, size_t whycap)
{
    sigjmp_buf jb;
    sigjmp_buf *volatile outer = qguard_at;
    int rc;
    if (sigsetjmp(jb, 0)) {
        qguard_at = outer;
        snprintf(why, whycap, "reading the page faulted");
        mdb_txn_abort(*txn); /* read-only: freed, its slot released */
        *txn = NULL;
        return MDB_CORRUPTED;
    }
    if (!*txn && (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn))) {
        *txn = NULL;
        snprintf(why, whycap, "LMDB: %s", mdb_strerror(rc));
        return rc;
    }
    MDB_val d;
    qguard_at = &jb;
    rc = mdb_get(*txn, dbi, (MDB_val *)k, &d);
    if (rc == 0) {
        v->mv_size = d.mv_size;
        v->mv_data = NULL;
        if (d.mv_size <= cap) {
            if (d.mv_size)
                memcpy(buf, d.mv_data, d.mv_size);
            v->mv_data = buf;
        }
    }
    qguard_at = outer;
    if (rc && rc != MDB_NOTFOUND) {
        snprintf(why, whycap, "LMDB: %s", mdb_strerror(rc));
        mdb_txn_abort(*txn); /* an error leaves it unusable */
        *txn = NULL;
    }
    return rc;
}
