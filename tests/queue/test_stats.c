/*
 * test_stats.c - the spool's monitoring figures (queue/stats.c): the ready
 * index split by when its mail is due, and the writer's commit latency.
 *
 * DESCRIPTION
 *   Mail due now, deferred to a later time and parked for a held account
 *   is counted as ready, waiting and parked; a walk cap makes a lower
 *   bound and says so; every commit group is counted once in the commit
 *   histogram.
 */
#include "queue_admin.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* Enqueue n (up to 6) recipients for account. */
static void enqueue(struct queue *q, uint32_t account, size_t n)
{
    static const char *rc[] = { "a@x.example", "b@x.example", "c@x.example",
                                "d@x.example", "e@x.example", "f@x.example" };
    uint64_t first;
    assert_true(n <= 6);
    E(queue_enqueue_message(q, account, "s@s.example", rc, n, "m", 1, &first,
                            NULL));
}

static void test_depth(void **state)
{
    struct tdir *t = *state;
    uint32_t acme, shop;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    struct queue_depth d;
    E(queue_ready_depth(q, T0, 100, &d));
    assert_int_equal(d.entries + d.ready + d.waiting + d.parked, 0);

    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    enqueue(q, acme, 6);
    enqueue(q, shop, 1);
    struct queue_account_change c = { .set = QUEUE_AC_DISABLED,
                                      .disabled = true };
    E(queue_account_update(q, shop, &c, &boot));

    /* two of acme's deferred an hour, shop's parked (held), four due */
    struct queue_claim cl[8];
    int n = queue_claim(q, T0, cl, 8);
    assert_int_equal(n, 7);
    int deferred = 0;
    for (int i = 0; i < n; i++) {
        struct queue_outcome o = { .delivery = cl[i].id };
        if (cl[i].account == shop) {
            o.type = QUEUE_EV_NONE;
            o.retry_at = queue_account_park_time(shop);
        } else if (deferred < 2) {
            deferred++;
            o.type = QUEUE_EV_DEFERRED;
            o.code = 451;
            o.retry_at = T0 + 3600;
        } else {
            queue_release(q, cl[i].id);
            continue;
        }
        E(queue_record_outcomes(q, &o, 1));
    }
    E(queue_ready_depth(q, T0, 100, &d));
    assert_int_equal(d.entries, 7);
    assert_int_equal(d.ready, 4);
    assert_int_equal(d.waiting, 2);
    assert_int_equal(d.parked, 1);
    assert_int_equal(d.capped, 0);

    /* an hour later the deferred mail is due too */
    E(queue_ready_depth(q, T0 + 3600, 100, &d));
    assert_int_equal(d.ready, 6);
    assert_int_equal(d.waiting, 0);
    assert_int_equal(d.parked, 1);

    /* a cap of 2: a lower bound, said so; the total stays exact */
    E(queue_ready_depth(q, T0, 2, &d));
    assert_int_equal(d.ready, 2);
    assert_int_equal(d.capped, 1);
    assert_int_equal(d.entries, 7);
    assert_int_equal(d.ready + d.waiting + d.parked, 7);
    queue_close(q);
}

static void test_commit_stats(void **state)
{
    struct tdir *t = *state;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct queue_commit_stats s;
    struct queue_info info;
    E(queue_commit_stats(q, &s));
    uint64_t before = s.count;
    for (int i = 0; i < 5; i++)
        enqueue(q, 0, 1);
    /* a commit is counted after its completions ran: wait for the writer */
    E(queue_flush(q));
    E(queue_commit_stats(q, &s));
    E(queue_info(q, &info));
    /* each synchronous enqueue waited for its own commit group */
    assert_true(s.count >= before + 5);
    assert_int_equal(s.count, info.commits);
    uint64_t sum = 0;
    for (unsigned b = 0; b <= QUEUE_COMMIT_BUCKETS; b++)
        sum += s.bucket[b];
    assert_int_equal(sum, s.count);
    for (unsigned b = 1; b < QUEUE_COMMIT_BUCKETS; b++)
        assert_true(queue_commit_bounds_us[b] > queue_commit_bounds_us[b - 1]);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_depth, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_commit_stats, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
