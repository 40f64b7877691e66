/*
 * test_writer.c - the group-commit writer (queue/writer.c, spool.c map
 * sizing).
 *
 * DESCRIPTION
 *   Groups: with group_ops = N and a long group window, commits come in
 *   groups of N and queue_flush() does not wait for the window; many small
 *   submissions take far fewer commits than operations; a message someone
 *   waits on, or a hurry, ends the window at once.  Map growth: a
 *   tiny map grows on demand and keeps everything.  Map ceiling: the
 *   operation that does not fit fails with QUEUE_EFULL, leaves no rows or
 *   counts behind, earlier operations stay whole, and the spool still opens
 *   and works.  Outcomes that do not fit keep their deliveries claimed
 *   (the engine holds them and submits them again) until released.
 *   Closing drains everything submitted.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "testutil.h"

#define T0 1700000000

struct done_count {
    pthread_mutex_t mu;
    pthread_cond_t cond;  /* signalled on each completion */
    int done, failed;
};

static void on_done(void *arg, int status, uint64_t a, uint64_t b)
{
    struct done_count *d = arg;
    pthread_mutex_lock(&d->mu);
    d->done++;
    if (status)
        d->failed++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

static void enqueue_async(struct queue *q, unsigned batch, size_t n,
                          struct done_count *dc)
{
    struct rcpts rs;
    rcpts_make(&rs, n, "b%u-r%u@d%u.example", batch, 5);
    E(queue_submit_campaign(q, 1, batch + 1, rs.r, n, NULL, on_done, dc));
    rcpts_free(&rs);
}

/* group_ops = 10 and a window of ten minutes: 100 single outcomes take
 * ten commits; five more and a flush take one more, without waiting for
 * the window (queue_flush() asks the writer to commit now). */
static void test_group_ops(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 10, .group_ms = 600000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info a, b;

    test_clock_set(T0);
    enqueue_async(q, 1, 10, &dc); /* one op of weight 10: a full group */
    E(queue_flush(q));
    assert_int_equal(dc.done, 1);
    E(queue_info(q, &a));
    assert_int_equal(a.deliveries, 10);

    for (int i = 0; i < 100; i++) {
        struct queue_outcome oc = { .delivery = 1 + (uint64_t)(i % 10),
                                    .type = QUEUE_EV_NONE,
                                    .retry_at = T0 + 1 + i };
        E(queue_submit_outcomes(q, &oc, 1, NULL, on_done, &dc));
    }
    E(queue_flush(q));
    E(queue_info(q, &b));
    assert_int_equal(dc.done, 101);
    assert_int_equal(dc.failed, 0);
    assert_int_equal(b.ops_committed - a.ops_committed, 100);
    assert_int_equal(b.commits - a.commits, 10);

    for (int i = 0; i < 5; i++) {
        struct queue_outcome oc = { .delivery = 1, .type = QUEUE_EV_NONE,
                                    .retry_at = T0 + 500 + i };
        E(queue_submit_outcomes(q, &oc, 1, NULL, on_done, &dc));
    }
    E(queue_flush(q));
    E(queue_info(q, &a));
    assert_int_equal(dc.done, 106);
    assert_int_equal(a.commits - b.commits, 1);
    struct queue_delivery d;
    E(queue_get_delivery(q, 1, &d));
    assert_int_equal(d.next_attempt, T0 + 504);
    queue_close(q);
}

/* A message someone waits on (a listener client's DATA, an inject API
 * request) does not wait out the group window: with a window of ten
 * minutes a synchronous enqueue returns, and the outcomes pending before
 * it go in the same commit.  (Broken, this test hangs until ctest's
 * timeout.) */
static void test_message_ends_window(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 1000, .group_ms = 600000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info a, b;
    const char *rc[] = { "r@d.example" };
    uint64_t first = 0;

    test_clock_set(T0);
    enqueue_async(q, 1, 3, &dc);
    E(queue_flush(q));
    E(queue_info(q, &a));
    for (int i = 0; i < 3; i++) {
        struct queue_outcome oc = { .delivery = 1 + (uint64_t)i,
                                    .type = QUEUE_EV_NONE,
                                    .retry_at = T0 + 60 };
        E(queue_submit_outcomes(q, &oc, 1, NULL, on_done, &dc));
    }
    E(queue_enqueue_message(q, 1, "s@s.example", rc, 1, "m", 1, &first,
                            NULL));
    assert_true(first > 0);
    E(queue_flush(q)); /* the writer counts a commit after its callbacks */
    E(queue_info(q, &b));
    assert_int_equal(dc.done, 4);
    assert_int_equal(b.commits - a.commits, 1);
    assert_int_equal(b.ops_committed - a.ops_committed, 4);
    queue_close(q);
}

/* What is pending when someone waits on it (queue_hurry(): an SMTP
 * session holds its next transaction) does not wait out the group window
 * either: with a window of ten minutes the completions come without a
 * flush, all in one commit.  (Broken, this test hangs until ctest's
 * timeout.) */
static void test_hurry_ends_window(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 1000, .group_ms = 600000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER,
                             .cond = PTHREAD_COND_INITIALIZER };
    struct queue_info a, b;

    test_clock_set(T0);
    enqueue_async(q, 1, 4, &dc);
    E(queue_flush(q));
    E(queue_info(q, &a));
    for (int i = 0; i < 4; i++) {
        struct queue_outcome oc = { .delivery = 1 + (uint64_t)i,
                                    .type = QUEUE_EV_NONE,
                                    .retry_at = T0 + 60 };
        E(queue_submit_outcomes(q, &oc, 1, NULL, on_done, &dc));
    }
    queue_hurry(q);
    pthread_mutex_lock(&dc.mu);
    while (dc.done < 5)
        pthread_cond_wait(&dc.cond, &dc.mu);
    pthread_mutex_unlock(&dc.mu);
    E(queue_flush(q)); /* the writer counts a commit after its callbacks */
    E(queue_info(q, &b));
    assert_int_equal(dc.failed, 0);
    assert_int_equal(b.commits - a.commits, 1);
    assert_int_equal(b.ops_committed - a.ops_committed, 4);
    queue_close(q);
}

/* Many small asynchronous outcome submissions: far fewer commits than
 * operations (each commit is one fsync). */
static void test_group_many_small(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ms = 50 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info a, b;
    size_t n = bulk(2000, 500), nops = bulk(4000, 1000);

    test_clock_set(T0);
    enqueue_async(q, 1, n, &dc);
    E(queue_flush(q));
    E(queue_info(q, &a));
    for (size_t i = 0; i < nops; i++) {
        struct queue_outcome oc = {
            .delivery = 1 + i % n,
            .type = i < n ? QUEUE_EV_DEFERRED : QUEUE_EV_NONE,
            .retry_at = T0 + 10000 + (int64_t)i };
        E(queue_submit_outcomes(q, &oc, 1, NULL, on_done, &dc));
    }
    E(queue_flush(q));
    E(queue_info(q, &b));
    assert_int_equal(dc.done, (int)nops + 1);
    assert_int_equal(dc.failed, 0);
    assert_int_equal(b.ops_committed - a.ops_committed, nops);
    uint64_t commits = b.commits - a.commits;
    assert_true(commits >= 1);
    if (commits * 10 > nops)
        fail_msg("%llu commits for %zu ops: not grouped",
                 (unsigned long long)commits, nops);
    assert_int_equal(b.events, n);
    queue_close(q);
}

/* A bounded pending list: submit blocks but everything completes. */
static void test_max_pending(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 8, .max_pending = 16,
                               .group_ms = 1 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info info;

    for (unsigned i = 0; i < 200; i++)
        enqueue_async(q, i, 3, &dc);
    E(queue_flush(q));
    assert_int_equal(dc.done, 200);
    assert_int_equal(dc.failed, 0);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 600);
    queue_close(q);
}

/* Closing waits for every submitted operation: all callbacks ran and
 * everything is there after a reopen. */
static void test_close_drains(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 100, .group_ms = 600000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info info;

    for (unsigned i = 0; i < 50; i++)
        enqueue_async(q, i, 7, &dc);
    queue_close(q);
    assert_int_equal(dc.done, 50);
    assert_int_equal(dc.failed, 0);
    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 350);
    queue_close(q);
}

/* Once queue_close() has begun, submissions are refused with
 * QUEUE_ESHUTDOWN (here: from a completion callback on the writer thread
 * while close drains the last group) and their callbacks never run. */
struct resubmit {
    struct queue *q;
    int status, inner_calls;
};

static void on_inner(void *arg, int status, uint64_t a, uint64_t b)
{
    ((struct resubmit *)arg)->inner_calls++;
}

static void on_outer(void *arg, int status, uint64_t a, uint64_t b)
{
    struct resubmit *r = arg;
    struct queue_campaign_rcpt rc = { 1, "late@example.com" };
    r->status = queue_submit_campaign(r->q, 1, 1, &rc, 1, NULL, on_inner, r);
}

static void test_shutdown_refuses(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ops = 1000, .group_ms = 600000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct resubmit r = { .q = q, .status = 1 };
    struct queue_campaign_rcpt rc = { 1, "early@example.com" };
    struct queue_info info;

    /* the op waits in the group window until close ends it */
    E(queue_submit_campaign(q, 1, 1, &rc, 1, NULL, on_outer, &r));
    queue_close(q);
    EQ_ERR(r.status, QUEUE_ESHUTDOWN);
    assert_int_equal(r.inner_calls, 0);
    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 1);
    queue_close(q);
}

/* Count the deliveries of each batch ("b<batch>-r<i>@...") over all
 * campaign rows; checks that the rows of a batch are consecutive and in
 * order. */
static void count_batches(struct queue *q, unsigned *per, unsigned nbatch)
{
    struct queue_info info;
    struct queue_delivery d;
    E(queue_info(q, &info));
    memset(per, 0, nbatch * sizeof *per);
    for (uint64_t id = 1; id <= info.deliveries; id++) {
        unsigned b, i;
        E(queue_get_delivery(q, id, &d));
        if (d.campaign == 0)
            continue; /* an injected message, not a batch */
        assert_true(rcpt_batch(d.rcpt, &b, &i));
        assert_true(b < nbatch);
        assert_int_equal(i, per[b]);
        assert_int_equal(d.campaign, b + 1);
        per[b]++;
    }
}

/* A map of 1 MiB that may grow: far more than 1 MiB goes in, the map grew,
 * and every row and the big message are there. */
static void test_map_growth(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 1u << 30,
                               .group_ops = 2000 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct queue_info info;
    unsigned nb = (unsigned)bulk(40, 10), per[40];

    for (unsigned b = 0; b < nb; b++)
        enqueue_async(q, b, 1000, &dc);
    size_t mlen = 3u << 20;
    char *msg = malloc(mlen);
    for (size_t i = 0; i < mlen; i++)
        msg[i] = (char)('a' + i % 26);
    const char *r[] = { "m@example.com" };
    uint64_t mid;
    E(queue_flush(q));
    E(queue_enqueue_message(q, 1, "", r, 1, msg, mlen, NULL, &mid));
    E(queue_info(q, &info));
    assert_int_equal(dc.done, (int)nb);
    assert_int_equal(dc.failed, 0);
    assert_true(info.map_grows > 0);
    assert_true(info.map_size > (1u << 20));
    assert_true(info.last_page_bytes > (1u << 20));
    assert_int_equal(info.deliveries, nb * 1000 + 1);
    assert_int_equal(info.messages, 1);
    free(msg);
    queue_close(q);

    /* reopened with the small initial size: the spool keeps its size */
    q = open_q(t->path, 0, &o);
    E(queue_info(q, &info));
    assert_true(info.map_size > (1u << 20));
    struct queue_delivery d;
    E(queue_get_delivery(q, nb * 1000 + 1, &d));
    assert_string_equal(d.rcpt, "m@example.com");
    queue_close(q);
    q = open_q(t->path, 0, NULL);
    count_batches(q, per, nb);
    for (unsigned b = 0; b < nb; b++)
        assert_int_equal(per[b], 1000);
    queue_close(q);
}

struct batch_status {
    struct done_count *dc;
    unsigned batch;
    int status;
};

static void on_batch(void *arg, int status, uint64_t a, uint64_t b)
{
    struct batch_status *s = arg;
    s->status = status;
    on_done(s->dc, status, a, b);
}

/* A small map ceiling: enqueue until QUEUE_EFULL reaches the caller; the
 * failing batch left nothing, the earlier ones are whole, counters agree,
 * and the spool still opens and works.  Then a group of several batches
 * at the ceiling: each batch is whole or absent as its status says. */
static void test_map_ceiling(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 2u << 20 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct queue_info info;
    struct queue_counts c;
    unsigned per[200], ok = 0;
    int err = 0;
    /* recipients per batch: the room a failing batch leaves must hold the
     * 50 outcomes below (events, counters, copied pages); 500 did with
     * schema 6's delivery records, 800 is the least that does with the
     * compact ones of schema 7 (records.c) */
    enum { BATCH = 1000 };

    test_clock_set(T0);
    for (unsigned b = 0; b < 200; b++) {
        struct rcpts rs;
        uint64_t first;
        rcpts_make(&rs, BATCH, "b%u-r%u@d%u.example", b, 5);
        err = queue_enqueue_campaign(q, 1, b + 1, rs.r, rs.n, &first);
        rcpts_free(&rs);
        if (err)
            break;
        assert_int_equal(first, (uint64_t)b * BATCH + 1);
        ok++;
    }
    EQ_ERR(err, QUEUE_EFULL);
    assert_true(ok > 0);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, ok * BATCH);
    assert_int_equal(info.ready, ok * BATCH);
    assert_true(info.map_size <= o.map_max);
    E(queue_counts_total(q, &c));
    assert_int_equal(c.enqueued, ok * BATCH);
    assert_int_equal(c.queued, ok * BATCH);
    E(queue_counts_campaign(q, ok + 1, &c)); /* the failed batch */
    assert_int_equal(c.enqueued, 0);
    E(queue_counts_campaign(q, ok, &c));
    assert_int_equal(c.enqueued, BATCH);
    count_batches(q, per, ok + 1);
    for (unsigned b = 0; b < ok; b++)
        assert_int_equal(per[b], BATCH);
    assert_int_equal(per[ok], 0);
    /* a small batch may still fit: then it is whole */
    struct rcpts rs;
    uint64_t first;
    rcpts_make(&rs, 1, "b%u-r%u@d%u.example", ok, 1);
    err = queue_enqueue_campaign(q, 1, ok + 1, rs.r, 1, &first);
    rcpts_free(&rs);
    assert_true(err == 0 || err == QUEUE_EFULL);
    unsigned small = err == 0;
    queue_close(q);

    /* reopen: it still opens, reads, claims and records outcomes */
    q = open_q(t->path, QUEUE_OPEN_CLAIM, &o);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, ok * BATCH + small);
    struct queue_claim cl[50];
    assert_int_equal(queue_claim(q, T0, cl, 50), 50);
    struct queue_outcome oc[50];
    for (int i = 0; i < 50; i++)
        oc[i] = (struct queue_outcome){ .delivery = cl[i].id,
                                        .type = QUEUE_EV_DELIVERED,
                                        .code = 250 };
    E(queue_record_outcomes(q, oc, 50));
    E(queue_counts_total(q, &c));
    assert_int_equal(c.delivered, 50);
    assert_int_equal(c.queued, ok * BATCH + small - 50);
    queue_close(q);

    /* a fresh spool at the ceiling: several batches in one group */
    struct tdir t2;
    tdir_make(&t2);
    struct queue_options o2 = { .map_size = 1u << 20, .map_max = 1u << 20,
                                .group_ops = 100000, .group_ms = 20 };
    q = open_q(t2.path, QUEUE_OPEN_CREATE, &o2);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct batch_status st[12];
    for (unsigned b = 0; b < 12; b++) {
        st[b] = (struct batch_status){ .dc = &dc, .batch = b, .status = 1 };
        rcpts_make(&rs, 1000, "b%u-r%u@d%u.example", b, 5);
        E(queue_submit_campaign(q, 1, b + 1, rs.r, rs.n, NULL, on_batch,
                                &st[b]));
        rcpts_free(&rs);
    }
    E(queue_flush(q));
    assert_int_equal(dc.done, 12);
    assert_true(dc.failed > 0);
    assert_true(dc.failed < 12);
    unsigned per2[12];
    count_batches(q, per2, 12);
    uint64_t sum = 0;
    for (unsigned b = 0; b < 12; b++) {
        if (st[b].status == 0) {
            assert_int_equal(per2[b], 1000);
            sum += 1000;
        } else {
            EQ_ERR(st[b].status, QUEUE_EFULL);
            assert_int_equal(per2[b], 0);
            E(queue_counts_campaign(q, b + 1, &c));
            assert_int_equal(c.enqueued, 0);
        }
    }
    E(queue_counts_total(q, &c));
    assert_int_equal(c.enqueued, sum);
    queue_close(q);
    tdir_remove(&t2);
}

/* A full spool: an outcome op that cannot be written fails with
 * QUEUE_EFULL, writes nothing, and its deliveries stay claimed (a claim
 * does not hand them out again) until they are released. */
static void test_full_keeps_claims(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 1u << 20 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             &o);
    int err = 0;
    test_clock_set(T0);
    for (unsigned b = 0; b < 100 && !err; b++) {
        struct rcpts rs;
        rcpts_make(&rs, 200, "b%u-r%u@d%u.example", b, 5);
        err = queue_enqueue_campaign(q, 1, b + 1, rs.r, rs.n, NULL);
        rcpts_free(&rs);
    }
    EQ_ERR(err, QUEUE_EFULL);
    enum { N = 600 };
    static struct queue_claim cl[N];
    assert_int_equal(queue_claim(q, T0, cl, N), N);
    /* long replies: more event bytes than the full map can take */
    static char text[QUEUE_MAX_REPLY];
    memset(text, 'x', sizeof text - 1);
    static struct queue_outcome oc[N];
    for (int i = 0; i < N; i++)
        oc[i] = (struct queue_outcome){ .delivery = cl[i].id,
                                        .type = QUEUE_EV_BOUNCED,
                                        .code = 550, .text = text };
    err = queue_record_outcomes(q, oc, N);
    EQ_ERR(err, QUEUE_EFULL);
    assert_true(queue_err_unwritable(err));
    struct queue_counts c;
    E(queue_counts_total(q, &c));
    assert_int_equal(c.bounced, 0);
    assert_int_equal(queue_claimed(q), N);
    /* a new claim skips them all */
    static struct queue_claim more[N];
    int n = queue_claim(q, T0, more, N);
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < N; k++)
            assert_true(more[i].id != cl[k].id);
    for (int i = 0; i < n; i++)
        queue_release(q, more[i].id);
    /* released, they are due again */
    for (int k = 0; k < N; k++)
        queue_release(q, cl[k].id);
    assert_int_equal(queue_claimed(q), 0);
    assert_int_equal(queue_claim(q, T0, more, N), N);
    assert_int_equal(more[0].id, cl[0].id);
    queue_close(q);
}

/* Readers on other threads while the writer grows the map: every read
 * succeeds and sees whole batches. */
struct reader {
    struct queue *q;
    int stop, errors, reads;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
        struct queue_info info;
        struct queue_delivery d;
        struct queue_counts c;
        if (queue_info(r->q, &info)) {
            r->errors++;
            continue;
        }
        if (info.deliveries % 500 != 0)
            r->errors++; /* a batch seen half-written */
        if (info.deliveries &&
            queue_get_delivery(r->q, info.deliveries, &d))
            r->errors++;
        if (queue_counts_total(r->q, &c) || c.enqueued < info.deliveries)
            r->errors++;
        r->reads++;
        usleep(200); /* a status poller, not a spinning thread */
    }
    return NULL;
}

static void test_growth_with_readers(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 1u << 30,
                               .group_ms = 1 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct done_count dc = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct reader r[2] = { { .q = q }, { .q = q } };
    pthread_t th[2];
    unsigned nb = (unsigned)bulk(60, 20);

    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    for (unsigned b = 0; b < nb; b++)
        enqueue_async(q, b, 500, &dc);
    E(queue_flush(q));
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&r[i].stop, 1, __ATOMIC_SEQ_CST);
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].errors, 0);
        assert_true(r[i].reads > 0);
    }
    struct queue_info info;
    E(queue_info(q, &info));
    assert_true(info.map_grows > 0);
    assert_int_equal(info.deliveries, nb * 500);
    assert_int_equal(dc.failed, 0);
    queue_close(q);
}

/* Another process grows the map while this one has the spool open: reads
 * and writes here adopt the new size and see everything. */
static void test_growth_other_process(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 1u << 30,
                               .group_ms = 1 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct rcpts rs;
    int go[2], done[2];
    char ch;
    unsigned nb = (unsigned)bulk(40, 15);

    rcpts_make(&rs, 100, "b%u-r%u@d%u.example", 0, 3);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, NULL));
    rcpts_free(&rs);
    queue_close(q);

    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork(); /* before this process opens the spool again */
    assert_true(pid >= 0);
    if (pid == 0) {
        struct queue *cq;
        struct queue_info ci;
        close(go[1]);
        close(done[0]);
        if (!read_full(go[0], &ch, 1) || queue_open(&cq, t->path, &o))
            _exit(2);
        for (unsigned b = 1; b <= nb; b++) {
            struct rcpts crs;
            rcpts_make(&crs, 1000, "b%u-r%u@d%u.example", b, 3);
            int err = queue_enqueue_campaign(cq, 1, b + 1, crs.r, crs.n,
                                             NULL);
            rcpts_free(&crs);
            if (err)
                _exit(3);
        }
        if (queue_info(cq, &ci) || ci.map_grows == 0)
            _exit(4);
        queue_close(cq);
        write_all(done[1], "d", 1);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    q = open_q(t->path, 0, &o);
    struct queue_info before, info;
    E(queue_info(q, &before));
    write_all(go[1], "g", 1);
    close(go[1]);
    assert_true(read_full(done[0], &ch, 1));
    close(done[0]);
    assert_int_equal(wait_child(pid), 0);

    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 100 + nb * 1000);
    assert_true(info.map_size > before.map_size);
    struct queue_delivery d;
    E(queue_get_delivery(q, info.deliveries, &d));
    assert_int_equal(d.campaign, nb + 1);
    /* and this process writes on top */
    rcpts_make(&rs, 1000, "b%u-r%u@d%u.example", nb + 1, 3);
    uint64_t first;
    E(queue_enqueue_campaign(q, 1, nb + 2, rs.r, rs.n, &first));
    rcpts_free(&rs);
    assert_int_equal(first, info.deliveries + 1);
    unsigned per[64];
    count_batches(q, per, nb + 2);
    assert_int_equal(per[0], 100);
    for (unsigned b = 1; b <= nb + 1; b++)
        assert_int_equal(per[b], 1000);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_ops, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_hurry_ends_window,
                                        tdir_setup, tdir_teardown),
        cmocka_unit_test_setup_teardown(test_message_ends_window, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_group_many_small, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_max_pending, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_refuses, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_map_ceiling, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_full_keeps_claims, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_growth_with_readers, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_growth_other_process,
                                        tdir_setup, tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
