/*
 * test_claim.c - handing due deliveries to the engine (queue/claim.c,
 * lease.c, spool.c claim lock).
 *
 * DESCRIPTION
 *   Claims return only due deliveries, in due order, at most the asked
 *   number; a claimed delivery is not claimed again until its outcome
 *   commits or it is released; postponed and deferred deliveries come back
 *   at their new time; claiming needs QUEUE_OPEN_CLAIM and only one
 *   claiming open may exist (another process, or the same one, gets
 *   QUEUE_ELOCKED); closing gives every claim back.
 */
#include <signal.h>
#include <uv.h>

#include "queue_uv.h"

#include "testutil.h"

#define T0 1700000000

static struct queue *claim_spool(struct tdir *t, size_t n, uint64_t *first)
{
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    struct rcpts rs;
    rcpts_make(&rs, n, "b%u-r%u@D%u.Example", 1, 3);
    E(queue_enqueue_campaign(q, 4, 40, rs.r, n, first));
    rcpts_free(&rs);
    return q;
}

/* Due only, bounded, in order, never twice; release and outcomes bring
 * deliveries back as documented. */
static void test_claim_due(void **state)
{
    struct tdir *t = *state;
    struct queue_claim c[32];
    uint64_t first;
    int n;

    test_clock_set(T0);
    struct queue *q = claim_spool(t, 10, &first);
    /* postpone 8, 9, 10 */
    struct queue_outcome pp[3];
    for (int i = 0; i < 3; i++)
        pp[i] = (struct queue_outcome){ .delivery = first + 7 + (uint64_t)i,
                                        .type = QUEUE_EV_NONE,
                                        .retry_at = T0 + 100 };
    E(queue_record_outcomes(q, pp, 3));

    assert_int_equal(queue_claim(q, T0 - 1, c, 32), 0);
    assert_int_equal(queue_claim(q, T0, c, 0), 0);
    assert_int_equal(queue_claimed(q), 0);

    n = queue_claim(q, T0, c, 4);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "b1-r%d@d%d.example", i, i % 3);
        assert_int_equal(c[i].id, first + (uint64_t)i);
        assert_int_equal(c[i].campaign, 40);
        assert_int_equal(c[i].ref, 1000000u + (unsigned)i);
        assert_int_equal(c[i].account, 4);
        assert_int_equal(c[i].attempts, 0);
        assert_int_equal(c[i].created, T0);
        assert_int_equal(c[i].due, T0);
        assert_string_equal(c[i].rcpt, want);
        assert_string_equal(c[i].rcpt + c[i].domain_off, strchr(want, '@') + 1);
    }
    assert_int_equal(queue_claimed(q), 4);

    /* the rest that is due, none of the first four again */
    n = queue_claim(q, T0 + 99, c, 32);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        assert_int_equal(c[i].id, first + 4 + (uint64_t)i);
    assert_int_equal(queue_claim(q, T0 + 99, c, 32), 0);
    assert_int_equal(queue_claimed(q), 7);

    /* release makes one claimable again, and only that one */
    queue_release(q, first + 1);
    assert_int_equal(queue_claimed(q), 6);
    n = queue_claim(q, T0 + 99, c, 32);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, first + 1);
    queue_release(q, 999999); /* unknown id: no effect */
    assert_int_equal(queue_claimed(q), 7);

    /* postponed ones come due at their time */
    n = queue_claim(q, T0 + 100, c, 32);
    assert_int_equal(n, 3);
    assert_int_equal(c[0].id, first + 7);
    assert_int_equal(c[0].due, T0 + 100);
    assert_int_equal(queue_claimed(q), 10);

    /* outcomes end leases: delivered is gone for good, deferred returns
     * at its next attempt with the attempt counted */
    test_clock_set(T0 + 100);
    struct queue_outcome oc[] = {
        { .delivery = first, .type = QUEUE_EV_DELIVERED },
        { .delivery = first + 2, .type = QUEUE_EV_DEFERRED },
    };
    E(queue_record_outcomes(q, oc, 2));
    assert_int_equal(queue_claimed(q), 8);
    assert_int_equal(queue_claim(q, T0 + 399, c, 32), 0);
    n = queue_claim(q, T0 + 400, c, 32);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, first + 2);
    assert_int_equal(c[0].attempts, 1);
    assert_int_equal(c[0].due, T0 + 400);
    assert_int_equal(queue_claim(q, T0 + 100000, c, 32), 0);
    queue_close(q);
}

/* Claiming needs QUEUE_OPEN_CLAIM. */
static void test_claim_needs_flag(void **state)
{
    struct tdir *t = *state;
    struct queue_claim c[4];
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *r[] = { "a@example.com" };
    E(queue_enqueue_message(q, 1, "", r, 1, "x", 1, NULL, NULL));
    EQ_ERR(queue_claim(q, T0 + 1000000, c, 4), -EPERM);
    assert_int_equal(queue_claimed(q), 0);
    queue_close(q);
}

/* Only one claiming open: a second one in another process, or in this
 * one, gets QUEUE_ELOCKED; non-claiming opens still work; after the
 * holder goes, claiming works again. */
static void test_claim_lock(void **state)
{
    struct tdir *t = *state;
    struct queue *q, *q2;
    struct queue_options co = { .flags = QUEUE_OPEN_CLAIM,
                                .clock = test_clock };
    struct queue_claim c[4];
    int up[2], down[2];
    char ch;
    uint64_t first;

    test_clock_set(T0);
    q = claim_spool(t, 3, &first);
    queue_close(q);

    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct queue *cq;
        struct queue_claim cc[4];
        close(up[0]);
        close(down[1]);
        if (queue_open(&cq, t->path, &co))
            _exit(2);
        if (queue_claim(cq, T0, cc, 4) != 3)
            _exit(3);
        write_all(up[1], "c", 1);
        while (read(down[0], &ch, 1) > 0)
            ;
        queue_close(cq);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    assert_true(read_full(up[0], &ch, 1));

    EQ_ERR(queue_open(&q, t->path, &co), QUEUE_ELOCKED);
    assert_null(q);
    assert_non_null(strstr(queue_last_detail(), "claim lock"));
    q = open_q(t->path, 0, NULL); /* reading and writing are fine */
    struct queue_info info;
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 3);
    queue_close(q);

    close(down[1]);
    assert_int_equal(wait_child(pid), 0);
    close(up[0]);

    /* holder gone: this process claims; a second open here is refused
     * and leaves the first one working */
    E(queue_open(&q, t->path, &co));
    EQ_ERR(queue_open(&q2, t->path, &co), QUEUE_ELOCKED);
    assert_null(q2);
    assert_int_equal(queue_claim(q, T0, c, 4), 3);
    struct queue_outcome oc = { .delivery = c[0].id,
                                .type = QUEUE_EV_DELIVERED };
    E(queue_record_outcomes(q, &oc, 1));
    assert_int_equal(queue_claimed(q), 2);
    queue_close(q);
}

/* Closing gives claims back: after a reopen they are claimable again. */
static void test_close_releases(void **state)
{
    struct tdir *t = *state;
    struct queue_claim c[8];
    uint64_t first;

    test_clock_set(T0);
    struct queue *q = claim_spool(t, 5, &first);
    assert_int_equal(queue_claim(q, T0, c, 8), 5);
    queue_close(q);
    q = open_q(t->path, QUEUE_OPEN_CLAIM, NULL);
    assert_int_equal(queue_claimed(q), 0);
    assert_int_equal(queue_claim(q, T0, c, 8), 5);
    queue_close(q);
}

/* Claim a few thousand in small batches: every delivery exactly once;
 * outcomes for all of them empty the lease table. */
static void test_claim_bulk(void **state)
{
    struct tdir *t = *state;
    size_t n = bulk(5000, 800);
    uint64_t first;
    struct queue_claim c[128];
    unsigned char *seen;

    test_clock_set(T0);
    struct queue *q = claim_spool(t, n, &first);
    seen = calloc(n, 1);
    size_t total = 0;
    int got;
    struct queue_outcome *oc = calloc(n, sizeof *oc);
    while ((got = queue_claim(q, T0, c, 128)) > 0) {
        assert_true(got <= 128);
        for (int i = 0; i < got; i++) {
            uint64_t k = c[i].id - first;
            assert_true(k < n);
            assert_int_equal(seen[k], 0);
            seen[k] = 1;
            oc[total + (size_t)i] = (struct queue_outcome){
                .delivery = c[i].id,
                .type = i % 2 ? QUEUE_EV_DELIVERED : QUEUE_EV_DEFERRED };
        }
        total += (size_t)got;
    }
    assert_int_equal(got, 0);
    assert_int_equal(total, n);
    assert_int_equal(queue_claimed(q), n);
    for (size_t i = 0; i < n; i += 100)
        E(queue_submit_outcomes(q, oc + i, n - i < 100 ? n - i : 100, NULL,
                                NULL, NULL));
    E(queue_flush(q));
    assert_int_equal(queue_claimed(q), 0);
    assert_int_equal(queue_claim(q, T0 + 299, c, 128), 0);
    /* the deferred half is due again at T0 + 300 */
    total = 0;
    while ((got = queue_claim(q, T0 + 300, c, 128)) > 0)
        total += (size_t)got;
    assert_int_equal(total, (n + 1) / 2);
    free(oc);
    free(seen);
    queue_close(q);
}

/* An engine-like loop on a libuv loop: claim, submit outcomes through a
 * completer, claim again while they commit.  Each delivery is deferred
 * once (due again at once) and then delivered: no delivery is claimed
 * after its final outcome was submitted, none gets a second terminal
 * event, and the log holds exactly two events per delivery. */
struct engine {
    struct queue *q;
    struct queue_completer *cmp;
    uint64_t first;
    size_t n;
    unsigned char *claims;   /* per delivery: times claimed */
    unsigned char *final;    /* per delivery: delivered outcome submitted */
    int outstanding, failed;
    size_t delivered;
};

struct batch {
    struct engine *e;
    size_t ndelivered;
};

static void on_outcomes(void *arg, int status, uint64_t a, uint64_t b)
{
    struct batch *bt = arg;
    bt->e->outstanding--;
    if (status)
        bt->e->failed++;
    else
        bt->e->delivered += bt->ndelivered;
    free(bt);
}

static int count_event(void *arg, const struct queue_event *ev)
{
    unsigned char *per = arg;
    per[ev->delivery - 1] += ev->type == QUEUE_EV_DELIVERED ? 16 : 1;
    return 0;
}

static void test_engine_loop(void **state)
{
    struct tdir *t = *state;
    struct engine e = { .n = bulk(3000, 1000) };
    struct queue_claim c[64];
    struct queue_outcome oc[64];
    uv_loop_t loop;

    test_clock_set(T0);
    e.q = claim_spool(t, e.n, &e.first);
    assert_int_equal(e.first, 1);
    e.claims = calloc(e.n, 1);
    e.final = calloc(e.n, 1);
    assert_int_equal(uv_loop_init(&loop), 0);
    E(queue_completer_new(&loop, &e.cmp));
    while (e.delivered < e.n) {
        int got = queue_claim(e.q, T0 + 10, c, 64);
        assert_true(got >= 0);
        struct batch *bt = calloc(1, sizeof *bt);
        bt->e = &e;
        for (int i = 0; i < got; i++) {
            size_t k = c[i].id - e.first;
            if (e.final[k])
                fail_msg("delivery %llu claimed after its final outcome",
                         (unsigned long long)c[i].id);
            if (++e.claims[k] > 2)
                fail_msg("delivery %llu claimed %d times",
                         (unsigned long long)c[i].id, e.claims[k]);
            if (e.claims[k] == 1) {
                oc[i] = (struct queue_outcome){ .delivery = c[i].id,
                                                .type = QUEUE_EV_DEFERRED,
                                                .retry_at = T0 + 5 };
            } else {
                assert_int_equal(c[i].attempts, 1);
                oc[i] = (struct queue_outcome){ .delivery = c[i].id,
                                                .type = QUEUE_EV_DELIVERED };
                e.final[k] = 1;
                bt->ndelivered++;
            }
        }
        if (got > 0) {
            e.outstanding++;
            E(queue_submit_outcomes(e.q, oc, (size_t)got, e.cmp, on_outcomes,
                                    bt));
            uv_run(&loop, UV_RUN_NOWAIT);
        } else {
            free(bt);
            if (e.outstanding)
                uv_run(&loop, UV_RUN_ONCE);
            else
                usleep(5000); /* deferrals behind the resume point */
        }
    }
    assert_int_equal(e.failed, 0);
    while (e.outstanding)
        uv_run(&loop, UV_RUN_ONCE);
    queue_completer_close(e.cmp);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(queue_claimed(e.q), 0);

    unsigned char *per = calloc(e.n, 1);
    assert_int_equal(queue_events_from(e.q, 1, 0, count_event, per),
                     (long)(2 * e.n));
    for (size_t k = 0; k < e.n; k++)
        if (per[k] != 17)
            fail_msg("delivery %zu: events %#x, want one deferral and one "
                     "delivery", k + 1, per[k]);
    struct queue_counts cnt;
    E(queue_counts_total(e.q, &cnt));
    assert_int_equal(cnt.delivered, e.n);
    assert_int_equal(cnt.deferred, e.n);
    assert_int_equal(cnt.queued, 0);
    free(per);
    free(e.claims);
    free(e.final);
    queue_close(e.q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_due, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_claim_needs_flag, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_claim_lock, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_close_releases, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_claim_bulk, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_engine_loop, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
