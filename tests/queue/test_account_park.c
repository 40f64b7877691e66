/*
 * test_account_park.c - the mail of disabled accounts parked in the spool
 * (queue/park.c, queue_account_park_time) and released by an enable.
 *
 * DESCRIPTION
 *   Mail the engine parks for a disabled account is never claimed, and an
 *   enable makes it due in the same transaction; mail of a sub-account of
 *   a disabled master stays parked until the master is enabled (and a
 *   sub-account disabled itself stays parked then); a park asked for an
 *   account that is not held (enabled meanwhile) makes the mail due now;
 *   campaigns' parked mail and other accounts' mail are left alone.
 */
#include "queue_admin.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* Enqueue n recipients for account; returns the first delivery id. */
static uint64_t enqueue(struct queue *q, uint32_t account, size_t n)
{
    static const char *rc[] = { "a@x.example", "b@x.example", "c@x.example",
                                "d@x.example" };
    uint64_t first;
    assert_true(n <= 4);
    E(queue_enqueue_message(q, account, "s@s.example", rc, n, "m", 1, &first,
                            NULL));
    return first;
}

static void set_disabled(struct queue *q, uint32_t id, bool disabled)
{
    struct queue_account_change c = { .set = QUEUE_AC_DISABLED,
                                      .disabled = disabled };
    E(queue_account_update(q, id, &c, &boot));
}

/* Claim everything due at now and park each claim of a held account (as
 * sluiced does); returns how many were claimed. */
static int claim_and_park(struct queue *q, int64_t now, const bool *held)
{
    struct queue_claim cl[32];
    int n = queue_claim(q, now, cl, 32);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (held[cl[i].account]) {
            struct queue_outcome o = {
                .delivery = cl[i].id, .type = QUEUE_EV_NONE,
                .retry_at = queue_account_park_time(cl[i].account) };
            E(queue_record_outcomes(q, &o, 1));
        } else {
            queue_release(q, cl[i].id);
        }
    }
    return n;
}

static int64_t due_of(struct queue *q, uint64_t id)
{
    struct queue_delivery d;
    E(queue_get_delivery(q, id, &d));
    return d.next_attempt;
}

static void test_park_and_enable(void **state)
{
    struct tdir *t = *state;
    uint32_t master, shop, blog;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    E(queue_account_create(q, "blog", 0, NULL, &boot, &blog));
    assert_true(queue_account_park_time(shop) >
                queue_park_time(UINT64_MAX));   /* beyond campaigns' */
    uint64_t s0 = enqueue(q, shop, 3), b0 = enqueue(q, blog, 2),
             m0 = enqueue(q, master, 1);

    /* shop disabled: its mail is parked and never claimed again */
    set_disabled(q, shop, true);
    bool held[8] = { false };
    held[shop] = true;
    assert_int_equal(claim_and_park(q, T0, held), 6);
    for (int i = 0; i < 3; i++)
        assert_int_equal(due_of(q, s0 + (uint64_t)i),
                         queue_account_park_time(shop));
    assert_int_equal(claim_and_park(q, T0 + 86400 * 365, held), 3);

    /* the master disabled: its sub-accounts are held too */
    set_disabled(q, master, true);
    held[master] = held[blog] = true;
    assert_int_equal(claim_and_park(q, T0, held), 3);
    assert_int_equal(due_of(q, b0), queue_account_park_time(blog));
    assert_int_equal(due_of(q, m0), queue_account_park_time(master));
    assert_int_equal(claim_and_park(q, T0 + 86400 * 365, held), 0);

    /* shop enabled while its master is disabled: still held, parked */
    test_clock_set(T0 + 5);
    set_disabled(q, shop, false);
    assert_int_equal(due_of(q, s0), queue_account_park_time(shop));
    assert_int_equal(claim_and_park(q, T0 + 5, held), 0);

    /* shop disabled again, then the master enabled: the master's and
     * blog's mail is due at once, shop's stays parked */
    set_disabled(q, shop, true);
    test_clock_set(T0 + 10);
    set_disabled(q, master, false);
    assert_int_equal(due_of(q, m0), T0 + 10);
    for (int i = 0; i < 2; i++)
        assert_int_equal(due_of(q, b0 + (uint64_t)i), T0 + 10);
    assert_int_equal(due_of(q, s0), queue_account_park_time(shop));
    held[master] = held[blog] = false;
    assert_int_equal(claim_and_park(q, T0 + 10, held), 3);

    /* shop enabled: its mail is due now */
    test_clock_set(T0 + 20);
    set_disabled(q, shop, false);
    for (int i = 0; i < 3; i++)
        assert_int_equal(due_of(q, s0 + (uint64_t)i), T0 + 20);
    queue_close(q);
}

/* An engine that has not seen the enable yet parks mail it just claimed:
 * the writer makes it due now instead, so it is not lost until a later
 * enable. */
static void test_park_after_enable_is_due(void **state)
{
    struct tdir *t = *state;
    uint32_t master, shop;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    uint64_t s0 = enqueue(q, shop, 2);
    bool stale[8] = { false };
    stale[shop] = true;   /* the engine's view: shop still disabled */
    assert_int_equal(claim_and_park(q, T0, stale), 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(due_of(q, s0 + (uint64_t)i), T0);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_park_and_enable, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_park_after_enable_is_due,
                                        tdir_setup, tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
