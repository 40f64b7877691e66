/*
 * test_series.c - the spool's time series (queue_series.h) and the report
 * built from them (queue_report.h).
 *
 * DESCRIPTION
 *   - the latency histogram: bins are monotonic and cover their edges;
 *     p50/p90/p99 of known samples land in the right bin; empty is -1;
 *   - counts: queued, attempted, delivered (first attempt), deferrals,
 *     bounces by category, expired, suppressed, cancelled and notes land
 *     in the hour, day, account, campaign, site and domain buckets in the
 *     outcome's transaction;
 *   - pruning deletes hours past report_hourly_days and days past
 *     report_daily_days, and nothing newer;
 *   - report_build(): the master's tree, a sub-account alone, an unknown
 *     account, bad ranges and days; billing per month is delivered +
 *     bounced.
 */
#include "testutil.h"

#include <jansson.h>

#include "queue_admin.h"
#include "queue_report.h"
#include "queue_series.h"

#define T0 1700000000   /* 2023-11-14T22:13:20Z */

static void test_bins(void **state)
{
    (void)state;
    assert_int_equal(queue_series_bin(0), 0);
    assert_int_equal(queue_series_bin(99), 0);
    assert_int_equal(queue_series_bin(100), 1);
    assert_int_equal(queue_series_bin(141), 1);
    assert_int_equal(queue_series_bin(142), 2);
    assert_int_equal(queue_series_bin(200), 3);
    assert_int_equal(queue_series_bin(INT64_MAX / 4), QUEUE_SERIES_HIST - 1);
    int prev = 0;
    for (int64_t ms = 0; ms < 10000000; ms += 37) {
        int b = queue_series_bin(ms);
        assert_true(b >= prev);
        prev = b;
        /* the bin's middle lies in the same bin */
        if (b > 0 && b < QUEUE_SERIES_HIST - 1)
            assert_int_equal(queue_series_bin(queue_series_bin_ms(b)), b);
    }
}

static void test_percentiles(void **state)
{
    (void)state;
    uint64_t h[QUEUE_SERIES_HIST] = { 0 };
    assert_int_equal(queue_series_percentile(h, 50), -1);
    /* 90 deliveries at 1 s, 9 at 60 s, 1 at one hour */
    h[queue_series_bin(1000)] += 90;
    h[queue_series_bin(60000)] += 9;
    h[queue_series_bin(3600000)] += 1;
    int64_t p50 = queue_series_percentile(h, 50);
    int64_t p90 = queue_series_percentile(h, 90);
    int64_t p99 = queue_series_percentile(h, 99);
    int64_t p100 = queue_series_percentile(h, 100);
    assert_int_equal(queue_series_bin(p50), queue_series_bin(1000));
    assert_int_equal(queue_series_bin(p90), queue_series_bin(1000));
    assert_int_equal(queue_series_bin(p99), queue_series_bin(60000));
    assert_int_equal(queue_series_bin(p100), queue_series_bin(3600000));
    /* within a bin: about 19% either way */
    assert_true(p50 > 800 && p50 < 1250);
    assert_true(p99 > 48000 && p99 < 75000);
}

struct sum {
    int dim;
    uint64_t id;
    const char *name;
    uint64_t c[QUEUE_SERIES_SLOTS];
    long rows;
};

static int add_row(void *arg, const struct queue_series_row *r)
{
    struct sum *s = arg;
    if (r->dim != s->dim || r->id != s->id ||
        (s->name && strcmp(r->name, s->name)))
        return 0;
    for (int i = 0; i < QUEUE_SERIES_SLOTS; i++)
        s->c[i] += r->c[i];
    s->rows++;
    return 0;
}

static void sum_of(struct queue *q, int gran, int dim, uint64_t id,
                   const char *name, struct sum *s)
{
    memset(s, 0, sizeof *s);
    s->dim = dim;
    s->id = id;
    s->name = name;
    assert_true(queue_series_scan(q, gran, 0, T0 + 86400 * 1000, 0, add_row,
                                  s) >= 0);
}

/* acme (1) and shop (2); shop's campaign 7 of five recipients. */
static struct queue *setup(struct tdir *t, uint64_t *first)
{
    char dir[128];
    const struct queue_actor by = { "t", "uid:0", QUEUE_ROLE_OWNER, 0 };
    test_clock_set(T0);
    struct queue *q = open_q(tdir_sub(t, "s", dir, sizeof dir),
                             QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM, NULL);
    test_acme_shop(q, &by);
    struct queue_campaign_rcpt r[] = {
        { 1, "a@x.test" }, { 2, "b@x.test" }, { 3, "c@y.test" },
        { 4, "d@y.test" }, { 5, "e@z.test" },
    };
    E(queue_enqueue_campaign(q, 2, 7, r, 5, first));
    return q;
}

static void test_counts(void **state)
{
    struct tdir *t = *state;
    uint64_t f;
    struct queue *q = setup(t, &f);
    struct sum s;

    test_clock_set(T0 + 2);
    struct queue_outcome o1[] = {
        { .delivery = f, .type = QUEUE_EV_DELIVERED, .code = 250,
          .site = "xsite" },
        { .delivery = f + 1, .type = QUEUE_EV_DEFERRED, .code = 451,
          .site = "xsite" },
        { .delivery = f + 2, .type = QUEUE_EV_BOUNCED, .code = 550,
          .category = QUEUE_CAT_BAD_MAILBOX, .site = "y.test" },
        { .delivery = f + 3, .type = QUEUE_EV_SUPPRESSED },
    };
    E(queue_record_outcomes(q, o1, 4));
    test_clock_set(T0 + 3600 + 30);   /* the next hour */
    struct queue_outcome o2[] = {
        { .delivery = f + 1, .type = QUEUE_EV_DELIVERED, .code = 250,
          .site = "xsite" },
        { .delivery = f + 4, .type = QUEUE_EV_CANCELLED },
    };
    E(queue_record_outcomes(q, o2, 2));
    struct queue_note n = { .type = QUEUE_EV_COMPLAINT, .delivery = f };
    E(queue_record_note(q, &n));

    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_CAMPAIGN, 7, NULL, &s);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.c[QUEUE_SERIES_QUEUED], 5);
    assert_int_equal(s.c[QUEUE_EV_DELIVERED], 2);
    assert_int_equal(s.c[QUEUE_EV_DEFERRED], 1);
    assert_int_equal(s.c[QUEUE_EV_BOUNCED], 1);
    assert_int_equal(s.c[QUEUE_SERIES_CAT + QUEUE_CAT_BAD_MAILBOX], 1);
    assert_int_equal(s.c[QUEUE_EV_SUPPRESSED], 1);
    assert_int_equal(s.c[QUEUE_EV_CANCELLED], 1);
    assert_int_equal(s.c[QUEUE_EV_COMPLAINT], 1);
    assert_int_equal(s.c[QUEUE_SERIES_ATTEMPTED], 3);
    assert_int_equal(s.c[QUEUE_SERIES_FIRST], 1);
    uint64_t nh = 0;
    for (int i = 0; i < QUEUE_SERIES_HIST; i++)
        nh += s.c[QUEUE_SERIES_HIST0 + i];
    assert_int_equal(nh, 2);
    /* 2 s and 3,630 s after queueing */
    assert_int_equal(s.c[QUEUE_SERIES_HIST0 + queue_series_bin(2000)], 1);
    assert_int_equal(s.c[QUEUE_SERIES_HIST0 + queue_series_bin(3630000)], 1);

    /* two hours, the same totals */
    sum_of(q, QUEUE_SERIES_HOUR, QUEUE_SERIES_TOTAL, 0, NULL, &s);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.c[QUEUE_EV_DELIVERED], 2);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_ACCOUNT, 2, NULL, &s);
    assert_int_equal(s.c[QUEUE_EV_DELIVERED], 2);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_ACCOUNT, 1, NULL, &s);
    assert_int_equal(s.rows, 0);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_SITE, 2, "xsite", &s);
    assert_int_equal(s.c[QUEUE_EV_DELIVERED], 2);
    assert_int_equal(s.c[QUEUE_EV_DEFERRED], 1);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_SITE, 2, "y.test", &s);
    assert_int_equal(s.c[QUEUE_EV_BOUNCED], 1);

    /* the check knows the series database */
    queue_close(q);
    struct queue_check_report cr;
    char dir[128];
    E(queue_check(tdir_sub(t, "s", dir, sizeof dir), 0, NULL, NULL, &cr));
    assert_int_equal(cr.problems, 0);
}

static void test_prune(void **state)
{
    struct tdir *t = *state;
    uint64_t f;
    struct queue *q = setup(t, &f);
    struct sum s;
    queue_series_configure(q, 2, 10);
    /* enqueued at T0: hour and day buckets of T0.  Three days on, the
     * hour is past 2 days, the day within 10 */
    long n = queue_series_prune(q, T0 + 3 * 86400, 0);
    assert_true(n > 0);
    sum_of(q, QUEUE_SERIES_HOUR, QUEUE_SERIES_TOTAL, 0, NULL, &s);
    assert_int_equal(s.rows, 0);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_TOTAL, 0, NULL, &s);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.c[QUEUE_SERIES_QUEUED], 5);
    /* eleven days on, the day goes too; a second prune finds nothing */
    assert_true(queue_series_prune(q, T0 + 11 * 86400, 0) > 0);
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_TOTAL, 0, NULL, &s);
    assert_int_equal(s.rows, 0);
    assert_int_equal(queue_series_prune(q, T0 + 11 * 86400, 0), 0);
    /* the writer prunes by itself: a new hour's first commit */
    test_clock_set(T0 + 12 * 86400);
    struct queue_campaign_rcpt r[] = { { 9, "n@x.test" } };
    uint64_t id;
    E(queue_enqueue_campaign(q, 2, 7, r, 1, &id));
    sum_of(q, QUEUE_SERIES_DAY, QUEUE_SERIES_TOTAL, 0, NULL, &s);
    assert_int_equal(s.rows, 1);
    queue_close(q);
}

static json_int_t jget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_non_null(v);
    return json_integer_value(v);
}

static void test_report(void **state)
{
    struct tdir *t = *state;
    uint64_t f;
    struct queue *q = setup(t, &f);
    struct queue_campaign_rcpt r[] = { { 8, "m@x.test" } };
    uint64_t g;
    E(queue_enqueue_campaign(q, 1, 3, r, 1, &g));   /* acme's own */
    test_clock_set(T0 + 5);
    struct queue_outcome o[] = {
        { .delivery = f, .type = QUEUE_EV_DELIVERED, .code = 250 },
        { .delivery = f + 1, .type = QUEUE_EV_BOUNCED, .code = 550,
          .category = QUEUE_CAT_QUOTA },
        { .delivery = g, .type = QUEUE_EV_DELIVERED, .code = 250 },
    };
    E(queue_record_outcomes(q, o, 3));

    json_t *j;
    struct report_query rq = { .now = T0 + 60 };
    E(report_build(q, &rq, &j));
    json_t *sum = json_object_get(j, "summary");
    assert_int_equal(jget(sum, "queued"), 6);
    assert_int_equal(jget(sum, "delivered"), 2);
    assert_int_equal(jget(sum, "sent"), 3);
    assert_int_equal(jget(json_object_get(sum, "bounced_by_category"),
                          "quota-issues"), 1);
    assert_int_equal(json_array_size(json_object_get(j, "daily")), 30);
    json_t *acc = json_object_get(j, "accounts");
    assert_int_equal(json_array_size(acc), 2);
    json_decref(j);

    /* the master's tree: both accounts, the same totals */
    rq.account = "acme";
    E(report_build(q, &rq, &j));
    assert_int_equal(jget(json_object_get(j, "summary"), "sent"), 3);
    assert_int_equal(json_array_size(json_object_get(j, "accounts")), 2);
    json_t *bill = json_object_get(j, "billing");
    assert_int_equal(json_array_size(bill), 2);
    json_decref(j);

    /* shop alone */
    rq.account = "shop";
    E(report_build(q, &rq, &j));
    sum = json_object_get(j, "summary");
    assert_int_equal(jget(sum, "delivered"), 1);
    assert_int_equal(jget(sum, "sent"), 2);
    assert_int_equal(jget(sum, "queued"), 5);
    acc = json_object_get(j, "accounts");
    assert_int_equal(json_array_size(acc), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(acc, 0), "account")), "shop");
    json_t *camps = json_object_get(j, "campaigns");
    assert_int_equal(json_array_size(camps), 1);
    assert_int_equal(jget(json_array_get(camps, 0), "campaign_id"), 7);
    json_decref(j);

    rq.account = "nobody";
    EQ_ERR(report_build(q, &rq, &j), QUEUE_ENOTFOUND);
    assert_null(j);
    rq.account = NULL;
    rq.from = T0;
    rq.to = T0 - 86400;
    EQ_ERR(report_build(q, &rq, &j), -EINVAL);
    rq.to = T0 + 900 * 86400;
    EQ_ERR(report_build(q, &rq, &j), -EINVAL);

    int64_t d;
    E(report_parse_day("2026-12-07", &d));
    assert_int_equal(d, 1796601600);
    EQ_ERR(report_parse_day("2026-02-30", &d), -EINVAL);
    EQ_ERR(report_parse_day("2026-1-07", &d), -EINVAL);
    EQ_ERR(report_parse_day("2026-12-07x", &d), -EINVAL);
    EQ_ERR(report_parse_day("", &d), -EINVAL);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bins),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test_setup_teardown(test_counts, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_prune, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_report, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
