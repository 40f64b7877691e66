/*
 * testutil.h - helpers shared by the queue/ tests.
 *
 * DESCRIPTION
 *   E(expr) runs a call returning a queue error code and fails the test
 *   with file, line, the expression and queue_strerror() text (plus
 *   queue_last_detail()) unless it returned 0.  EQ_ERR(expr, code) expects a
 *   given code.  Temp-dir helpers give every test its own mkdtemp directory
 *   under /tmp and remove it again, so tests may run in parallel.  A settable
 *   clock drives the spool's opts.clock hook.  bulk() scales bulk cases down
 *   when SLUICE_TEST_SMALL is set (the valgrind runs).
 *
 *   Header-only: every helper is static, some tests do not use them all.
 */
#ifndef SLUICE_TESTS_QUEUE_TESTUTIL_H
#define SLUICE_TESTS_QUEUE_TESTUTIL_H

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_admin.h"

/* Fail unless expr (an int or long queue code) is 0. */
#define E(expr)                                                              \
    do {                                                                     \
        long e_rc_ = (long)(expr);                                           \
        if (e_rc_ != 0)                                                      \
            fail_msg("%s:%d: %s: %ld %s [%s]", __FILE__, __LINE__, #expr,    \
                     e_rc_, queue_strerror((int)e_rc_),                      \
                     queue_last_detail());                                   \
    } while (0)

/* Fail unless expr returns exactly code. */
#define EQ_ERR(expr, code)                                                   \
    do {                                                                     \
        long e_rc_ = (long)(expr);                                           \
        if (e_rc_ != (long)(code))                                           \
            fail_msg("%s:%d: %s: got %ld (%s), want %ld (%s) [%s]",          \
                     __FILE__, __LINE__, #expr, e_rc_,                       \
                     queue_strerror((int)e_rc_), (long)(code),               \
                     queue_strerror((int)(code)), queue_last_detail());      \
    } while (0)

/* ----------------------------------------------------------- temp dirs */

struct tdir {
    char path[64];
};

static inline void tdir_make(struct tdir *t)
{
    snprintf(t->path, sizeof t->path, "/tmp/sluice-qtest-XXXXXX");
    if (!mkdtemp(t->path))
        fail_msg("mkdtemp: %s", strerror(errno));
}

static int tdir_rm_one(const char *p, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void tdir_remove(struct tdir *t)
{
    if (t->path[0])
        nftw(t->path, tdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    t->path[0] = 0;
}

/* A sub-path of the temp dir ("" for the dir itself). */
static inline const char *tdir_sub(const struct tdir *t, const char *name,
                                   char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", t->path, name);
    return buf;
}

/* Standard test fixtures: state is a struct tdir. */
static int tdir_setup(void **state)
{
    struct tdir *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    tdir_make(t);
    *state = t;
    return 0;
}

static int tdir_teardown(void **state)
{
    struct tdir *t = *state;
    tdir_remove(t);
    free(t);
    return 0;
}

/* ------------------------------------------------------------- clock */

static int64_t test_now = 1700000000;

static int64_t test_clock(void)
{
    return __atomic_load_n(&test_now, __ATOMIC_SEQ_CST);
}

static inline void test_clock_set(int64_t t)
{
    __atomic_store_n(&test_now, t, __ATOMIC_SEQ_CST);
}

/* ---------------------------------------------------------- accounts */

/* Make the master acme (id 1) and its sub-account shop (id 2, sharing
 * acme's suppression list) in q, as by. */
static inline void test_acme_shop(struct queue *q,
                                  const struct queue_actor *by)
{
    uint32_t id;
    assert_int_equal(queue_account_create(q, "acme", 0, NULL, by, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(queue_account_create(q, "shop", 0, NULL, by, &id), 0);
    assert_int_equal(id, 2);
}

/* ------------------------------------------------------------- sizes */

/* n for a normal run, small for valgrind runs (SLUICE_TEST_SMALL set). */
static inline size_t bulk(size_t n, size_t small)
{
    const char *s = getenv("SLUICE_TEST_SMALL");
    return s && *s && *s != '0' ? small : n;
}

/* ----------------------------------------------------------- helpers */

/* Open DIR creating it, with the test clock and otherwise opts' values. */
static inline struct queue *open_q(const char *dir, unsigned flags,
                                   struct queue_options *base)
{
    struct queue_options o = { 0 };
    struct queue *q = NULL;
    if (base)
        o = *base;
    o.flags |= flags;
    if (!o.clock)
        o.clock = test_clock;
    if (!o.group_ms)
        o.group_ms = 1;
    E(queue_open(&q, dir, &o));
    assert_non_null(q);
    return q;
}

/* Build n campaign recipients "r<i>@<dom>" with contacts base+i; the
 * strings live in one block freed by rcpts_free(). */
/* A writer completion seen by a test: how many came, the last status
 * (done_note is the callback; d->mu starts PTHREAD_MUTEX_INITIALIZER). */
struct done {
    pthread_mutex_t mu;
    int calls, status;
};

static inline void done_note(void *arg, int status, uint64_t first,
                             uint64_t msg)
{
    struct done *d = arg;
    (void)first;
    (void)msg;
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->status = status;
    pthread_mutex_unlock(&d->mu);
}

struct rcpts {
    struct queue_campaign_rcpt *r;
    char *buf;
    size_t n;
};

static inline void rcpts_make(struct rcpts *rs, size_t n, const char *fmt,
                              unsigned batch, unsigned ndomains)
{
    rs->n = n;
    rs->r = calloc(n, sizeof *rs->r);
    rs->buf = calloc(n, 64);
    assert_non_null(rs->r);
    assert_non_null(rs->buf);
    for (size_t i = 0; i < n; i++) {
        char *s = rs->buf + i * 64;
        snprintf(s, 64, fmt, batch, (unsigned)i,
                 ndomains ? (unsigned)(i % ndomains) : 0u);
        rs->r[i].rcpt = s;
        rs->r[i].contact = 1000000u * batch + i;
    }
}

static inline void rcpts_free(struct rcpts *rs)
{
    free(rs->r);
    free(rs->buf);
    rs->r = NULL;
    rs->buf = NULL;
}

/* Parse "b<batch>-r<i>@..." back into its numbers; false if not that form. */
static inline bool rcpt_batch(const char *rcpt, unsigned *batch, unsigned *i)
{
    return sscanf(rcpt, "b%u-r%u@", batch, i) == 2;
}

/* Write all of buf to fd (child side of a pipe). */
static inline void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(99);
        p += w;
        n -= (size_t)w;
    }
}

/* Read exactly n bytes; returns false at EOF. */
static inline bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Wait for child pid; returns its exit status or 128+signal. */
static inline int wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

#endif
