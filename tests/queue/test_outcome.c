/*
 * test_outcome.c - recording outcomes (queue/outcome.c, read.c,
 * counters.c).
 *
 * DESCRIPTION
 *   Each outcome type changes the row, the ready index, the event log and
 *   the counters as documented; events round-trip every field; history
 *   follows a delivery's chain newest first; the retry schedule (driven by
 *   the opts.clock hook) repeats its last step, never passes the maximum
 *   age, and a deferral at the maximum age becomes the terminal expired
 *   event; a terminal delivery takes no second terminal event; counters
 *   keep queued = enqueued - terminal; a stored message goes with its last
 *   recipient.
 */
#include "testutil.h"

#define T0 1700000000

struct evlist {
    int n;
    struct queue_event ev[64];
    int stop_after;  /* stop after this many (0: never) */
};

static int collect(void *arg, const struct queue_event *ev)
{
    struct evlist *l = arg;
    if (l->n < 64)
        l->ev[l->n] = *ev;
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static uint64_t total_events(struct queue *q)
{
    struct queue_info info;
    E(queue_info(q, &info));
    return info.events;
}

/* Check queued = enqueued - terminal for one set of counters. */
static void check_balance(const char *what, const struct queue_counts *c)
{
    if (c->queued != c->enqueued - c->delivered - c->bounced - c->expired)
        fail_msg("%s: queued %llu != enqueued %llu - delivered %llu - "
                 "bounced %llu - expired %llu", what,
                 (unsigned long long)c->queued,
                 (unsigned long long)c->enqueued,
                 (unsigned long long)c->delivered,
                 (unsigned long long)c->bounced,
                 (unsigned long long)c->expired);
}

struct dom_sum {
    struct queue_counts sum;
    int domains;
};

static int sum_domains(void *arg, const char *domain,
                       const struct queue_counts *c)
{
    struct dom_sum *s = arg;
    check_balance(domain, c);
    s->sum.queued += c->queued;
    s->sum.enqueued += c->enqueued;
    s->sum.delivered += c->delivered;
    s->sum.deferred += c->deferred;
    s->sum.bounced += c->bounced;
    s->sum.expired += c->expired;
    s->domains++;
    return 0;
}

/* Every counter set balances, the domains add up to the total and the
 * total's queued equals the ready index. */
static void check_counters(struct queue *q)
{
    struct queue_counts tot;
    struct queue_info info;
    struct dom_sum s = { 0 };
    E(queue_counts_total(q, &tot));
    check_balance("total", &tot);
    assert_true(queue_domains(q, sum_domains, &s) >= 0);
    assert_memory_equal(&s.sum, &tot, sizeof tot);
    E(queue_info(q, &info));
    assert_int_equal(tot.queued, info.ready);
    assert_int_equal(tot.enqueued, info.deliveries);
}

/* One outcome of each type: rows, ready index, events and counters. */
static void test_each_type(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .retry_steps = 2, .retry = { 300, 900 } };
    struct queue *q;
    struct rcpts rs;
    uint64_t first, mfirst, mid;
    struct queue_delivery d;
    struct queue_counts c;
    struct queue_info info;
    const char *mr[] = { "m1@example.net", "m2@example.net" };
    char longtext[700], longmx[300];

    test_clock_set(T0);
    q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    rcpts_make(&rs, 4, "b%u-r%u@d%u.example", 1, 2);
    E(queue_enqueue_campaign(q, 11, 500, rs.r, rs.n, &first));
    rcpts_free(&rs);
    E(queue_enqueue_message(q, 12, "s@example.net", mr, 2, "m", 1, &mfirst,
                            &mid));
    assert_int_equal(first, 1);
    assert_int_equal(mfirst, 5);

    memset(longtext, 'T', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    memset(longmx, 'm', sizeof longmx - 1);
    longmx[sizeof longmx - 1] = 0;

    test_clock_set(T0 + 10);
    struct queue_outcome oc[] = {
        { .delivery = 1, .type = QUEUE_EV_DELIVERED, .code = 250,
          .enhanced = "2.0.0", .mx = "mx1.d1.example", .text = "ok queued" },
        { .delivery = 2, .type = QUEUE_EV_DEFERRED, .code = 451,
          .category = 3, .enhanced = "4.7.1", .mx = "mx.d0.example",
          .text = "try later" },
        { .delivery = 3, .type = QUEUE_EV_BOUNCED, .code = 550,
          .category = 7, .enhanced = "5.1.1", .mx = longmx,
          .text = longtext },
        { .delivery = 4, .type = QUEUE_EV_EXPIRED },
        { .delivery = 5, .type = QUEUE_EV_NONE, .retry_at = T0 + 5000 },
    };
    E(queue_record_outcomes(q, oc, 5));

    /* rows */
    E(queue_get_delivery(q, 1, &d));
    assert_int_equal(d.state, QUEUE_ST_DELIVERED);
    assert_int_equal(d.attempts, 1);
    assert_int_equal(d.next_attempt, T0 + 10);
    assert_int_equal(d.last_event, 1);
    E(queue_get_delivery(q, 2, &d));
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    assert_int_equal(d.attempts, 1);
    assert_int_equal(d.next_attempt, T0 + 10 + 300);
    assert_int_equal(d.last_event, 2);
    E(queue_get_delivery(q, 3, &d));
    assert_int_equal(d.state, QUEUE_ST_BOUNCED);
    assert_int_equal(d.attempts, 1);
    E(queue_get_delivery(q, 4, &d));
    assert_int_equal(d.state, QUEUE_ST_EXPIRED);
    assert_int_equal(d.attempts, 0);
    E(queue_get_delivery(q, 5, &d));
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    assert_int_equal(d.attempts, 0);
    assert_int_equal(d.next_attempt, T0 + 5000);
    assert_int_equal(d.last_event, 0);
    assert_string_equal(queue_state_name(QUEUE_ST_BOUNCED), "bounced");
    assert_string_equal(queue_event_name(QUEUE_EV_DEFERRED), "deferred");

    E(queue_info(q, &info));
    assert_int_equal(info.ready, 3);    /* 2, 5, 6 */
    assert_int_equal(info.events, 4);   /* none logs no event */
    assert_int_equal(info.next_event_seq, 5);

    /* events round-trip */
    struct evlist l = { 0 };
    assert_int_equal(queue_events_from(q, 1, 0, collect, &l), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(l.ev[i].seq, (uint64_t)i + 1);
        assert_int_equal(l.ev[i].delivery, (uint64_t)i + 1);
        assert_int_equal(l.ev[i].campaign, 500);
        assert_int_equal(l.ev[i].account, 11);
        assert_int_equal(l.ev[i].prev, 0);
        assert_int_equal(l.ev[i].time_ms, (int64_t)(T0 + 10) * 1000);
    }
    assert_int_equal(l.ev[0].type, QUEUE_EV_DELIVERED);
    assert_int_equal(l.ev[0].code, 250);
    assert_int_equal(l.ev[0].attempt, 1);
    assert_int_equal(l.ev[0].category, 0);
    assert_string_equal(l.ev[0].enhanced, "2.0.0");
    assert_string_equal(l.ev[0].mx, "mx1.d1.example");
    assert_string_equal(l.ev[0].text, "ok queued");
    assert_string_equal(l.ev[0].rcpt, "b1-r0@d0.example");
    assert_int_equal(l.ev[1].type, QUEUE_EV_DEFERRED);
    assert_int_equal(l.ev[1].code, 451);
    assert_int_equal(l.ev[1].category, 3);
    assert_string_equal(l.ev[1].enhanced, "4.7.1");
    assert_string_equal(l.ev[1].mx, "mx.d0.example");
    assert_string_equal(l.ev[1].text, "try later");
    assert_string_equal(l.ev[1].rcpt, "b1-r1@d1.example");
    assert_int_equal(l.ev[2].type, QUEUE_EV_BOUNCED);
    assert_int_equal(l.ev[2].code, 550);
    assert_int_equal(l.ev[2].category, 7);
    assert_int_equal(strlen(l.ev[2].text), QUEUE_MAX_REPLY);
    assert_int_equal(strlen(l.ev[2].mx), QUEUE_MAX_MX);
    assert_int_equal(l.ev[3].type, QUEUE_EV_EXPIRED);
    assert_int_equal(l.ev[3].code, 0);
    assert_string_equal(l.ev[3].enhanced, "");
    assert_string_equal(l.ev[3].mx, "");
    assert_string_equal(l.ev[3].text, "");

    /* from, max and stop */
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_events_from(q, 3, 0, collect, &l), 2);
    assert_int_equal(l.ev[0].seq, 3);
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_events_from(q, 1, 2, collect, &l), 2);
    assert_int_equal(l.ev[1].seq, 2);
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    assert_int_equal(queue_events_from(q, 2, 0, collect, &l), 1);
    assert_int_equal(l.ev[0].seq, 2);
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_events_from(q, 5, 0, collect, &l), 0);

    /* counters */
    E(queue_counts_campaign(q, 500, &c));
    assert_int_equal(c.enqueued, 4);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.deferred, 1);
    assert_int_equal(c.bounced, 1);
    assert_int_equal(c.expired, 1);
    assert_int_equal(c.queued, 1);
    E(queue_counts_account(q, 12, &c));
    assert_int_equal(c.enqueued, 2);
    assert_int_equal(c.queued, 2);
    assert_int_equal(c.deferred, 0);
    E(queue_counts_domain(q, "d0.example", &c)); /* rows 1 and 3 */
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.bounced, 1);
    assert_int_equal(c.queued, 0);
    E(queue_counts_domain(q, "d1.example", &c)); /* rows 2 and 4 */
    assert_int_equal(c.deferred, 1);
    assert_int_equal(c.expired, 1);
    assert_int_equal(c.queued, 1);
    check_counters(q);

    /* invalid outcomes are refused at submission */
    struct queue_outcome bad[] = {
        { .delivery = 2, .type = 99 },
        { .delivery = 0, .type = QUEUE_EV_DELIVERED },
        { .delivery = 2, .type = QUEUE_EV_NONE },
        { .delivery = 2, .type = -1 },
    };
    for (int i = 0; i < 4; i++)
        EQ_ERR(queue_record_outcomes(q, &bad[i], 1), -EINVAL);
    EQ_ERR(queue_record_outcomes(q, oc, 0), -EINVAL);
    struct queue_outcome unknown = { .delivery = 999,
                                     .type = QUEUE_EV_DELIVERED };
    EQ_ERR(queue_record_outcomes(q, &unknown, 1), QUEUE_ENOTFOUND);
    assert_int_equal(total_events(q), 4);
    queue_close(q);
}

struct msg_seen {
    int calls;
};

static void on_msg(void *arg, const char *from, const void *m, size_t len)
{
    ((struct msg_seen *)arg)->calls++;
}

/* A stored message lives until its last recipient is terminal. */
static void test_message_freed(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *mr[] = { "a@x.example", "b@x.example", "c@y.example" };
    const char *mr2[] = { "z@x.example" };
    uint64_t first, mid, first2, mid2;
    struct msg_seen s = { 0 };
    struct queue_info info;

    E(queue_enqueue_message(q, 1, "", mr, 3, "hello", 5, &first, &mid));
    E(queue_enqueue_message(q, 1, "", mr2, 1, "other", 5, &first2, &mid2));
    struct queue_outcome o = { .delivery = first, .type = QUEUE_EV_DELIVERED };
    E(queue_record_outcomes(q, &o, 1));
    o = (struct queue_outcome){ .delivery = first + 1,
                                .type = QUEUE_EV_BOUNCED };
    E(queue_record_outcomes(q, &o, 1));
    o = (struct queue_outcome){ .delivery = first + 2,
                                .type = QUEUE_EV_DEFERRED };
    E(queue_record_outcomes(q, &o, 1));
    E(queue_get_message(q, mid, on_msg, &s));
    assert_int_equal(s.calls, 1);
    E(queue_info(q, &info));
    assert_int_equal(info.messages, 2);

    o = (struct queue_outcome){ .delivery = first + 2,
                                .type = QUEUE_EV_EXPIRED };
    E(queue_record_outcomes(q, &o, 1));
    EQ_ERR(queue_get_message(q, mid, on_msg, &s), QUEUE_ENOTFOUND);
    assert_int_equal(s.calls, 1);
    E(queue_info(q, &info));
    assert_int_equal(info.messages, 1);
    /* the other message is untouched */
    E(queue_get_message(q, mid2, on_msg, &s));
    assert_int_equal(s.calls, 2);
    /* a repeated terminal outcome does not free anything twice */
    EQ_ERR(queue_record_outcomes(q, &o, 1), QUEUE_ESTATE);
    E(queue_get_message(q, mid2, on_msg, &s));
    queue_close(q);
}

/* Retry schedule under the test clock: steps in order, the last repeats,
 * next attempts never pass created + max_age, a deferral at that age
 * becomes the terminal expired event. */
static void test_retry_schedule(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .retry_steps = 3, .retry = { 60, 120, 600 },
                               .max_age = 1900 };
    struct queue *q;
    struct rcpts rs;
    uint64_t first;
    struct queue_delivery d;
    struct queue_counts c;

    test_clock_set(T0);
    q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    assert_int_equal(queue_retry_delay(q, 1), 60);
    assert_int_equal(queue_retry_delay(q, 2), 120);
    assert_int_equal(queue_retry_delay(q, 3), 600);
    assert_int_equal(queue_retry_delay(q, 4), 600);
    assert_int_equal(queue_retry_delay(q, 100), 600);

    rcpts_make(&rs, 2, "b%u-r%u@d%u.example", 1, 1);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, &first));
    rcpts_free(&rs);

    /* attempt 1 at T0+5 -> +60; 2 -> +120; 3 -> +600; 4 -> +600 */
    int64_t now = T0 + 5;
    int64_t want[] = { 60, 120, 600, 600 };
    for (int i = 0; i < 4; i++) {
        test_clock_set(now);
        struct queue_outcome oc = { .delivery = first,
                                    .type = QUEUE_EV_DEFERRED, .code = 421 };
        E(queue_record_outcomes(q, &oc, 1));
        E(queue_get_delivery(q, first, &d));
        assert_int_equal(d.state, QUEUE_ST_QUEUED);
        assert_int_equal(d.attempts, i + 1);
        assert_int_equal(d.next_attempt, now + want[i]);
        now = d.next_attempt;
    }
    /* now = T0+1385: the next step (+600) would pass T0+1900: clamped */
    test_clock_set(now);
    struct queue_outcome oc = { .delivery = first, .type = QUEUE_EV_DEFERRED };
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.next_attempt, T0 + 1900);
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    /* an explicit retry_at is also clamped to the maximum age */
    oc.retry_at = T0 + 99999;
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.next_attempt, T0 + 1900);
    /* an explicit retry_at inside the age is taken as is */
    oc.delivery = first + 1;
    oc.retry_at = T0 + 777;
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_get_delivery(q, first + 1, &d));
    assert_int_equal(d.next_attempt, T0 + 777);

    /* a deferral at the maximum age is the terminal expired event */
    test_clock_set(T0 + 1900);
    oc = (struct queue_outcome){ .delivery = first,
                                 .type = QUEUE_EV_DEFERRED, .code = 451,
                                 .text = "still busy" };
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.state, QUEUE_ST_EXPIRED);
    assert_int_equal(d.attempts, 7);
    struct evlist l = { 0 };
    assert_int_equal(queue_history(q, first, collect, &l), 7);
    assert_int_equal(l.ev[0].type, QUEUE_EV_EXPIRED);
    assert_int_equal(l.ev[0].code, 451);
    assert_string_equal(l.ev[0].text, "still busy");
    for (int i = 1; i < 7; i++)
        assert_int_equal(l.ev[i].type, QUEUE_EV_DEFERRED);
    /* and after it, nothing more */
    EQ_ERR(queue_record_outcomes(q, &oc, 1), QUEUE_ESTATE);
    /* past the age too */
    test_clock_set(T0 + 5000);
    oc.delivery = first + 1;
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_get_delivery(q, first + 1, &d));
    assert_int_equal(d.state, QUEUE_ST_EXPIRED);

    E(queue_counts_campaign(q, 1, &c));
    assert_int_equal(c.deferred, 7);
    assert_int_equal(c.expired, 2);
    assert_int_equal(c.queued, 0);
    check_counters(q);
    queue_close(q);

    /* the default schedule: 300 ... 14400, repeating */
    q = open_q(t->path, 0, NULL);
    uint32_t def[] = { 300, 600, 1200, 2400, 3600, 7200, 14400, 14400 };
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(queue_retry_delay(q, i + 1), def[i]);
    queue_close(q);
}

/* History: newest first, following the prev chain, across interleaved
 * events of other deliveries. */
static void test_history(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct rcpts rs;
    uint64_t first;
    struct evlist l = { 0 };

    test_clock_set(T0);
    rcpts_make(&rs, 3, "b%u-r%u@d%u.example", 1, 1);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, &first));
    rcpts_free(&rs);
    int types[] = { QUEUE_EV_DEFERRED, QUEUE_EV_DEFERRED,
                    QUEUE_EV_DELIVERED };
    for (int i = 0; i < 3; i++) {
        struct queue_outcome oc[2] = {
            { .delivery = first + 1, .type = QUEUE_EV_DEFERRED,
              .retry_at = T0 + 10 },
            { .delivery = first, .type = types[i], .code = (uint16_t)(400 + i),
              .retry_at = types[i] == QUEUE_EV_DEFERRED ? T0 + 10 : 0 },
        };
        E(queue_record_outcomes(q, oc, 2));
    }
    assert_int_equal(queue_history(q, first, collect, &l), 3);
    assert_int_equal(l.ev[0].type, QUEUE_EV_DELIVERED);
    assert_int_equal(l.ev[0].code, 402);
    assert_int_equal(l.ev[0].attempt, 3);
    assert_int_equal(l.ev[1].code, 401);
    assert_int_equal(l.ev[1].attempt, 2);
    assert_int_equal(l.ev[2].code, 400);
    assert_int_equal(l.ev[2].attempt, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(l.ev[i].delivery, first);
    assert_true(l.ev[0].seq > l.ev[1].seq && l.ev[1].seq > l.ev[2].seq);
    assert_int_equal(l.ev[0].prev, l.ev[1].seq);
    assert_int_equal(l.ev[1].prev, l.ev[2].seq);
    assert_int_equal(l.ev[2].prev, 0);
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.last_event, l.ev[0].seq);

    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    assert_int_equal(queue_history(q, first + 1, collect, &l), 2);
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_history(q, first + 2, collect, &l), 0);
    assert_int_equal(l.n, 0);
    EQ_ERR(queue_history(q, 12345, collect, &l), QUEUE_ENOTFOUND);

    /* the log as a whole is in seq order with no gaps */
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_events_from(q, 0, 0, collect, &l), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(l.ev[i].seq, (uint64_t)i + 1);
    queue_close(q);
}

/* After a terminal event nothing else is recorded for the delivery: every
 * further outcome fails with QUEUE_ESTATE and writes no event, the others
 * in the same operation still apply, counters stay balanced. */
static void test_terminal_once(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct rcpts rs;
    uint64_t first;
    struct queue_delivery before, after;
    struct queue_counts c0, c1;

    test_clock_set(T0);
    rcpts_make(&rs, 3, "b%u-r%u@d%u.example", 1, 2);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, &first));
    rcpts_free(&rs);
    struct queue_outcome del = { .delivery = first,
                                 .type = QUEUE_EV_DELIVERED, .code = 250 };
    E(queue_record_outcomes(q, &del, 1));
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    E(queue_get_delivery(q, first, &before));
    E(queue_counts_total(q, &c0));
    uint64_t ev0 = total_events(q);

    int again[] = { QUEUE_EV_DELIVERED, QUEUE_EV_BOUNCED, QUEUE_EV_DEFERRED,
                    QUEUE_EV_EXPIRED };
    for (int i = 0; i < 4; i++) {
        struct queue_outcome oc = { .delivery = first, .type = again[i] };
        EQ_ERR(queue_record_outcomes(q, &oc, 1), QUEUE_ESTATE);
    }
    struct queue_outcome none = { .delivery = first, .type = QUEUE_EV_NONE,
                                  .retry_at = T0 + 100 };
    EQ_ERR(queue_record_outcomes(q, &none, 1), QUEUE_ESTATE);
    assert_int_equal(total_events(q), ev0);
    E(queue_get_delivery(q, first, &after));
    assert_memory_equal(&before, &after, sizeof before);
    E(queue_counts_total(q, &c1));
    assert_memory_equal(&c0, &c1, sizeof c0);

    /* one op: a good outcome, a repeat, then the same delivery twice */
    struct queue_outcome mix[] = {
        { .delivery = first + 1, .type = QUEUE_EV_BOUNCED, .code = 550 },
        { .delivery = first, .type = QUEUE_EV_DELIVERED },
        { .delivery = first + 2, .type = QUEUE_EV_DELIVERED },
        { .delivery = first + 2, .type = QUEUE_EV_BOUNCED },
    };
    EQ_ERR(queue_record_outcomes(q, mix, 4), QUEUE_ESTATE);
    assert_int_equal(total_events(q), ev0 + 2);
    E(queue_get_delivery(q, first + 1, &after));
    assert_int_equal(after.state, QUEUE_ST_BOUNCED);
    E(queue_get_delivery(q, first + 2, &after));
    assert_int_equal(after.state, QUEUE_ST_DELIVERED);
    E(queue_counts_total(q, &c1));
    assert_int_equal(c1.delivered, 2);
    assert_int_equal(c1.bounced, 1);
    assert_int_equal(c1.queued, 0);
    check_counters(q);
    queue_close(q);
}

/* Many outcomes over many deliveries and domains: every counter set stays
 * balanced and agrees with the rows. */
static void test_counters_bulk(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    size_t n = bulk(3000, 600);
    struct rcpts rs;
    uint64_t first;

    test_clock_set(T0);
    rcpts_make(&rs, n, "b%u-r%u@d%u.example", 1, 17);
    E(queue_enqueue_campaign(q, 3, 9, rs.r, n, &first));
    rcpts_free(&rs);
    struct queue_outcome *oc = calloc(n, sizeof *oc);
    for (int round = 0; round < 3; round++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            struct queue_delivery d;
            E(queue_get_delivery(q, first + i, &d));
            if (QUEUE_STATE_TERMINAL(d.state))
                continue;
            unsigned r = (unsigned)((i * 2654435761u + (size_t)round) % 5);
            oc[k++] = (struct queue_outcome){
                .delivery = first + i,
                .type = r == 0 ? QUEUE_EV_DELIVERED :
                        r == 1 ? QUEUE_EV_BOUNCED :
                        r == 2 ? QUEUE_EV_NONE : QUEUE_EV_DEFERRED,
                .retry_at = r == 2 ? T0 + 50 : 0,
            };
        }
        E(queue_record_outcomes(q, oc, k));
        check_counters(q);
    }
    free(oc);
    struct queue_counts c, a;
    E(queue_counts_campaign(q, 9, &c));
    E(queue_counts_account(q, 3, &a));
    assert_memory_equal(&c, &a, sizeof c);
    assert_int_equal(c.enqueued, n);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_type, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_message_freed, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_retry_schedule, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_history, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_terminal_once, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_counters_bulk, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
