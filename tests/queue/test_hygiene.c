/*
 * test_hygiene.c - list hygiene in the outcome commit (queue/hygiene.c).
 *
 * DESCRIPTION
 *   A hard bounce (bad-mailbox, bad-domain, inactive-mailbox) puts the
 *   address on the suppression list of the account's owner (the master's
 *   when shared) in the outcome's own commit; a policy or spam block never
 *   does but is counted per account and day; quota bounces suppress only
 *   after soft_bounce_limit in a row within soft_bounce_days, a delivery in
 *   between starts again, and so does a streak older than the window;
 *   deliveries without an account are left alone; streak records never
 *   show up in the suppression listing; streaks outlive a reopen.  Every
 *   entry hygiene adds is the delivery's account's (added_by), on a
 *   shared list too, and an address already listed keeps its first
 *   record.
 */
#include "queue_campaign.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* acme (1, master), shop (2, shares acme's list), solo (3, own list). */
static struct queue *hygiene_spool(struct tdir *t)
{
    struct queue_options o = { .soft_bounce_limit = 3, .soft_bounce_days = 7 };
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    test_acme_shop(q, &boot);
    uint32_t id;
    struct queue_account_change own = { .set = QUEUE_AC_SUPPRESSION,
                                        .suppression_shared = false };
    E(queue_account_create(q, "solo", 0, &own, &boot, &id));
    assert_int_equal(id, 3);
    return q;
}

/* Enqueue one delivery of account to rcpt; its id. */
static uint64_t one(struct queue *q, uint32_t account, const char *rcpt)
{
    static uint64_t contact = 1;
    struct queue_campaign_rcpt r = { contact++, rcpt };
    uint64_t id;
    E(queue_enqueue_campaign(q, account, 100 + account, &r, 1, &id));
    return id;
}

/* Record one outcome with a category. */
static void outcome(struct queue *q, uint64_t id, int type, int code,
                    int category)
{
    struct queue_outcome o = { .delivery = id, .type = type,
                               .code = (uint16_t)code,
                               .category = (uint8_t)category };
    E(queue_record_outcomes(q, &o, 1));
}

static bool suppressed(struct queue *q, uint32_t owner, const char *rcpt)
{
    bool yes;
    E(queue_suppressed(q, owner, rcpt, &yes));
    return yes;
}

struct listing {
    long n;
    char reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
    char by[QUEUE_MAX_ACCOUNT_NAME + 1];
    uint32_t added_by;
    bool recorded;
};

static int listing_cb(void *arg, const struct queue_suppression *s)
{
    struct listing *l = arg;
    l->n++;
    snprintf(l->reason, sizeof l->reason, "%s", s->reason);
    snprintf(l->source, sizeof l->source, "%s", s->source);
    snprintf(l->by, sizeof l->by, "%s", s->added_by_name);
    l->added_by = s->added_by;
    l->recorded = s->added_by_recorded;
    return 0;
}

/* Hard bounces suppress for the owner; blocks only count. */
static void test_hard_and_blocks(void **state)
{
    struct tdir *t = *state;
    struct queue *q = hygiene_spool(t);

    outcome(q, one(q, 2, "Gone@Example.com"), QUEUE_EV_BOUNCED, 550,
            QUEUE_CAT_BAD_MAILBOX);
    assert_true(suppressed(q, 1, "gone@example.com"));  /* shop -> acme */
    assert_false(suppressed(q, 2, "gone@example.com"));
    outcome(q, one(q, 3, "nodomain@nx.example"), QUEUE_EV_BOUNCED, 550,
            QUEUE_CAT_BAD_DOMAIN);
    outcome(q, one(q, 3, "off@example.com"), QUEUE_EV_BOUNCED, 550,
            QUEUE_CAT_INACTIVE_MAILBOX);
    assert_true(suppressed(q, 3, "nodomain@nx.example"));
    assert_true(suppressed(q, 3, "off@example.com"));
    assert_false(suppressed(q, 1, "off@example.com"));

    struct listing l = { 0 };
    assert_int_equal(queue_suppressions(q, 1, 0, NULL, listing_cb, &l), 1);
    assert_string_equal(l.reason, "hard bounce: bad-mailbox");
    assert_string_equal(l.source, "smtp");
    /* on acme's list, as shop's entry: shop's contact bounced */
    assert_int_equal(l.added_by, 2);
    assert_string_equal(l.by, "shop");
    assert_true(l.recorded);
    assert_int_equal(queue_suppressions(q, 1, 1, NULL, listing_cb, &l), 0);
    assert_int_equal(queue_suppressions(q, 1, 2, NULL, listing_cb, &l), 1);
    l = (struct listing){ 0 };
    assert_int_equal(queue_suppressions(q, 3, 0, NULL, listing_cb, &l), 2);
    assert_int_equal(l.added_by, 3);

    /* a hard deferral (4xx with a bad-mailbox text) does not suppress */
    outcome(q, one(q, 3, "maybe@example.com"), QUEUE_EV_DEFERRED, 450,
            QUEUE_CAT_BAD_MAILBOX);
    assert_false(suppressed(q, 3, "maybe@example.com"));

    /* blocks: never suppressed, counted per account per day */
    outcome(q, one(q, 2, "block1@example.com"), QUEUE_EV_BOUNCED, 554,
            QUEUE_CAT_POLICY);
    outcome(q, one(q, 2, "block2@example.com"), QUEUE_EV_BOUNCED, 554,
            QUEUE_CAT_SPAM);
    outcome(q, one(q, 2, "block3@example.com"), QUEUE_EV_DEFERRED, 421,
            QUEUE_CAT_SPAM);
    assert_false(suppressed(q, 1, "block1@example.com"));
    assert_false(suppressed(q, 1, "block2@example.com"));
    assert_false(suppressed(q, 1, "block3@example.com"));
    uint64_t pol, spam;
    E(queue_blocks_get(q, 2, T0 / 86400, &pol, &spam));
    assert_int_equal(pol, 1);
    assert_int_equal(spam, 2);
    E(queue_blocks_get(q, 1, T0 / 86400, &pol, &spam));
    assert_int_equal(pol + spam, 0);

    /* no account: nothing */
    outcome(q, one(q, 0, "anon@example.com"), QUEUE_EV_BOUNCED, 550,
            QUEUE_CAT_BAD_MAILBOX);
    assert_false(suppressed(q, 0, "anon@example.com"));

    /* an address already suppressed keeps its first record, and who
     * added it */
    outcome(q, one(q, 1, "gone@example.com"), QUEUE_EV_BOUNCED, 550,
            QUEUE_CAT_INACTIVE_MAILBOX);
    l = (struct listing){ 0 };
    assert_int_equal(queue_suppressions(q, 1, 0, NULL, listing_cb, &l), 1);
    assert_string_equal(l.reason, "hard bounce: bad-mailbox");
    assert_int_equal(l.added_by, 2);
    queue_close(q);
}

/* Quota: N in a row within D days; a delivery resets; the window ages. */
static void test_soft_streak(void **state)
{
    struct tdir *t = *state;
    struct queue *q = hygiene_spool(t);
    struct listing l = { 0 };

    /* two deferrals of one delivery and a bounce of another: 3 in a row */
    uint64_t a = one(q, 3, "full@example.com");
    outcome(q, a, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, a, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 3, "full@example.com"));
    /* the streak does not show as a suppression */
    assert_int_equal(queue_suppressions(q, 3, 0, NULL, listing_cb, &l), 0);
    outcome(q, one(q, 3, "FULL@example.com"), QUEUE_EV_BOUNCED, 552,
            QUEUE_CAT_QUOTA);
    assert_true(suppressed(q, 3, "full@example.com"));
    assert_int_equal(queue_suppressions(q, 3, 0, NULL, listing_cb, &l), 1);
    assert_string_equal(l.reason, "soft bounce: quota-issues x3");

    /* a delivery in between resets */
    uint64_t b = one(q, 3, "often@example.com");
    outcome(q, b, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, b, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, b, QUEUE_EV_DELIVERED, 250, 0);
    uint64_t c = one(q, 3, "often@example.com");
    outcome(q, c, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, c, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 3, "often@example.com"));

    /* per owner: acme's streak for the same address is its own */
    uint64_t f = one(q, 1, "often@example.com");
    outcome(q, f, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, f, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 1, "often@example.com"));
    outcome(q, c, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_true(suppressed(q, 3, "often@example.com"));
    assert_false(suppressed(q, 1, "often@example.com"));

    /* spread over more than the window: starts again */
    uint64_t d = one(q, 3, "slow@example.com");
    outcome(q, d, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, d, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    test_clock_set(T0 + 8 * 86400);
    uint64_t e = one(q, 3, "slow@example.com");
    outcome(q, e, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 3, "slow@example.com"));
    outcome(q, e, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 3, "slow@example.com"));
    outcome(q, e, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_true(suppressed(q, 3, "slow@example.com"));

    queue_close(q);
    test_clock_set(T0);
}

/* Streaks are stored: they go on after a reopen, and a delivery after the
 * reopen still ends them. */
static void test_reopen(void **state)
{
    struct tdir *t = *state;
    struct queue *q = hygiene_spool(t);
    struct queue_options o = { .soft_bounce_limit = 3 };
    uint64_t a = one(q, 2, "full@example.com");
    uint64_t b = one(q, 3, "often@example.com");
    outcome(q, a, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, a, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, b, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    outcome(q, b, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    queue_close(q);

    q = open_q(t->path, 0, &o);
    outcome(q, one(q, 3, "Often@Example.com"), QUEUE_EV_DELIVERED, 250, 0);
    outcome(q, b, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_false(suppressed(q, 3, "often@example.com"));  /* reset */
    outcome(q, a, QUEUE_EV_DEFERRED, 452, QUEUE_CAT_QUOTA);
    assert_true(suppressed(q, 1, "full@example.com"));    /* continued */
    struct listing l = { 0 };     /* shop's soft bounces: shop's entry */
    assert_int_equal(queue_suppressions(q, 1, 2, NULL, listing_cb, &l), 1);
    assert_string_equal(l.reason, "soft bounce: quota-issues x3");
    queue_close(q);
}

/* The limit comes from the options. */
static void test_limit_option(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .soft_bounce_limit = 1 };
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    uint32_t id;
    E(queue_account_create(q, "acme", 0, NULL, &boot, &id));
    outcome(q, one(q, id, "full@example.com"), QUEUE_EV_DEFERRED, 452,
            QUEUE_CAT_QUOTA);
    assert_true(suppressed(q, id, "full@example.com"));
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hard_and_blocks, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_soft_streak, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_reopen, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_limit_option, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
