/*
 * test_queued.c - the admin's operations on queued mail (queue/queued.c)
 * and pauses that end by themselves (queue/control.c).
 *
 * DESCRIPTION
 *   The walk sees every queued delivery with its due time and attempts;
 *   a retry moves only the selected deferred mail to now, in batches over
 *   a queue larger than one batch; an admin bounce ends every selected
 *   queued delivery once (a claimed one's later outcome is refused), with
 *   category admin, no attempt counted and the bounce counters moved, and
 *   the engine can ask which of its claims ended; a pause with an end
 *   reads as holding until then, survives a reopen, is refused for
 *   campaigns, and a spool holding one checks sound.
 */
#include "testutil.h"
#include "queue_queued.h"

struct seen {
    struct queue_queued d[16];
    char rcpt[16][64];
    size_t n;
};

static int collect(void *arg, const struct queue_queued *d)
{
    struct seen *s = arg;
    if (s->n < 16) {
        s->d[s->n] = *d;
        snprintf(s->rcpt[s->n], sizeof s->rcpt[0], "%s", d->rcpt);
    }
    s->n++;
    return 0;
}

static long walk(struct queue *q, struct seen *s)
{
    memset(s, 0, sizeof *s);
    return queue_queued_walk(q, collect, s);
}

/* Defer deliveries first..first+n-1 once (next attempt: now + 300). */
static void defer_all(struct queue *q, uint64_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct queue_outcome o = { .delivery = first + i,
                                   .type = QUEUE_EV_DEFERRED, .code = 451,
                                   .text = "try later" };
        E(queue_record_outcomes(q, &o, 1));
    }
}

/* Retry moves the selected deferred mail to now, and nothing else. */
static void test_retry(void **state)
{
    struct tdir *t = *state;
    struct seen s;
    uint64_t first, msg, moved;
    const char *r[] = { "a@one.test", "b@one.test", "c@two.test" };
    test_clock_set(1700000000);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    E(queue_enqueue_message(q, 0, "", r, 3, "m", 1, &first, &msg));
    /* not tried yet: nothing to retry */
    const char *one[] = { "one.test" };
    struct queue_select sel = { .domains = one, .ndomains = 1 };
    E(queue_retry_now(q, &sel, &moved));
    assert_int_equal(moved, 0);
    defer_all(q, first, 3);
    assert_int_equal(walk(q, &s), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(s.d[i].attempts, 1);
        assert_int_equal(s.d[i].due, 1700000000 + 300);
        assert_false(queue_due_parked(s.d[i].due));
    }
    assert_string_equal(s.rcpt[2], "c@two.test");

    /* other campaign or account: nothing */
    struct queue_select other = { .campaign = 5 };
    E(queue_retry_now(q, &other, &moved));
    assert_int_equal(moved, 0);
    other = (struct queue_select){ .account = 7, .by_account = true };
    E(queue_retry_now(q, &other, &moved));
    assert_int_equal(moved, 0);

    E(queue_retry_now(q, &sel, &moved));
    assert_int_equal(moved, 2);
    struct queue_claim c[4];
    int n = queue_claim(q, 1700000000, c, 4);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].rcpt + c[0].domain_off, "one.test");
    assert_string_equal(c[1].rcpt + c[1].domain_off, "one.test");
    /* c@two.test still waits for its schedule */
    assert_int_equal(walk(q, &s), 3);
    assert_int_equal(s.d[2].due, 1700000000 + 300);
    /* everything: only c is deferred still */
    struct queue_select all = { 0 };
    E(queue_retry_now(q, &all, &moved));
    assert_int_equal(moved, 1);
    queue_close(q);
}

/* More deferred mail than one batch: every delivery moves once. */
static void test_retry_batches(void **state)
{
    struct tdir *t = *state;
    size_t n = bulk(4500, 2500);
    struct rcpts rs;
    uint64_t first, moved;
    test_clock_set(1700000000);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    rcpts_make(&rs, n, "r%u.%u@many%u.test", 1, 1);
    E(queue_enqueue_campaign(q, 0, 9, rs.r, n, &first));
    struct queue_outcome *o = calloc(n, sizeof *o);
    assert_non_null(o);
    for (size_t i = 0; i < n; i++)
        o[i] = (struct queue_outcome){ .delivery = first + i,
                                       .type = QUEUE_EV_DEFERRED };
    E(queue_record_outcomes(q, o, n));
    struct queue_select sel = { .campaign = 9 };
    E(queue_retry_now(q, &sel, &moved));
    assert_int_equal(moved, n);
    struct queue_depth d;
    E(queue_ready_depth(q, 1700000000, n + 10, &d));
    assert_int_equal(d.ready, n);
    E(queue_retry_now(q, &sel, &moved));
    assert_int_equal(moved, 0);
    /* and a bounce of them all, also in batches */
    E(queue_bounce_admin(q, &sel, "gone", &moved));
    assert_int_equal(moved, n);
    struct queue_counts c;
    E(queue_counts_total(q, &c));
    assert_int_equal(c.queued, 0);
    assert_int_equal(c.bounced, n);
    free(o);
    rcpts_free(&rs);
    queue_close(q);
}

struct evs {
    struct queue_event e[8];
    size_t n;
};

static int take_ev(void *arg, const struct queue_event *ev)
{
    struct evs *s = arg;
    if (s->n < 8)
        s->e[s->n] = *ev;
    s->n++;
    return 0;
}

/* An admin bounce ends each selected queued delivery once. */
static void test_bounce(void **state)
{
    struct tdir *t = *state;
    uint64_t first, msg, n;
    const char *r[] = { "a@held.test", "b@held.test", "c@held.test",
                        "d@open.test" };
    test_clock_set(1700000000);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM,
                             NULL);
    E(queue_enqueue_message(q, 0, "", r, 4, "m", 1, &first, &msg));
    defer_all(q, first + 2, 1);    /* c waits for a retry */
    struct queue_claim c[4];
    assert_int_equal(queue_claim(q, 1700000000, c, 1), 1);  /* a in flight */
    const char *held[] = { "held.test" };
    struct queue_select sel = { .domains = held, .ndomains = 1 };

    EQ_ERR(queue_bounce_admin(q, &sel, "", &n), -EINVAL);
    EQ_ERR(queue_bounce_admin(q, &sel, "a\nb", &n), -EINVAL);
    E(queue_bounce_admin(q, &sel, "receiver closed", &n));
    assert_int_equal(n, 3);

    struct evs s = { 0 };
    assert_int_equal(queue_events_from(q, 1, 0, take_ev, &s), 4);
    /* the deferral, then three bounces */
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(s.e[i].type, QUEUE_EV_BOUNCED);
        assert_int_equal(s.e[i].category, QUEUE_CAT_ADMIN);
        assert_string_equal(s.e[i].enhanced, "5.0.0");
        assert_string_equal(s.e[i].text,
                            "administrative bounce: receiver closed");
    }
    assert_string_equal(queue_category_name(QUEUE_CAT_ADMIN), "admin");
    /* no attempt counted for the bounce */
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.attempts, 0);
    assert_int_equal(d.state, QUEUE_ST_BOUNCED);
    E(queue_get_delivery(q, first + 2, &d));
    assert_int_equal(d.attempts, 1);

    /* the engine asks which of its claims ended: a did, d did not */
    uint64_t ids[3] = { first, first + 3, 999 };
    unsigned char ended[3] = { 9, 9, 9 };
    E(queue_deliveries_ended(q, ids, 3, ended));
    assert_int_equal(ended[0], 1);
    assert_int_equal(ended[1], 0);
    assert_int_equal(ended[2], 0);
    /* a's own outcome comes late: no second terminal event */
    struct queue_outcome o = { .delivery = first,
                               .type = QUEUE_EV_DELIVERED };
    EQ_ERR(queue_record_outcomes(q, &o, 1), QUEUE_ESTATE);

    struct queue_counts cnt;
    E(queue_counts_total(q, &cnt));
    assert_int_equal(cnt.queued, 1);
    assert_int_equal(cnt.bounced, 3);
    assert_int_equal(cnt.delivered, 0);
    /* again: nothing is left to bounce */
    E(queue_bounce_admin(q, &sel, "again", &n));
    assert_int_equal(n, 0);
    struct seen w;
    assert_int_equal(walk(q, &w), 1);
    assert_string_equal(w.rcpt[0], "d@open.test");
    queue_close(q);
}

struct ctl_list {
    struct queue_control c[4];
    size_t n;
};

static int take_ctl(void *arg, const struct queue_control *c)
{
    struct ctl_list *l = arg;
    if (l->n < 4)
        l->c[l->n] = *c;
    l->n++;
    return 0;
}

/* A pause with an end holds until then, and is stored as such. */
static void test_pause_until(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l = { 0 };
    struct queue_check_report rep;
    test_clock_set(1700000000);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_pause_until(q, QUEUE_CTL_DOMAIN, "brief.test", "short", "ann",
                        1700000060));
    E(queue_pause(q, QUEUE_CTL_SITE, "big", NULL, NULL));
    EQ_ERR(queue_pause_until(q, QUEUE_CTL_CAMPAIGN, "7", NULL, NULL,
                             1700000060), -EINVAL);
    EQ_ERR(queue_pause_until(q, QUEUE_CTL_DOMAIN, "x.test", NULL, NULL, -5),
           -EINVAL);
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    assert_int_equal(queue_controls(q, take_ctl, &l), 2);
    assert_string_equal(l.c[0].name, "brief.test");
    assert_int_equal(l.c[0].until, 1700000060);
    assert_string_equal(l.c[0].reason, "short");
    assert_string_equal(l.c[0].who, "ann");
    assert_true(queue_control_active(&l.c[0], 1700000059));
    assert_false(queue_control_active(&l.c[0], 1700000060));
    assert_int_equal(l.c[1].until, 0);
    assert_true(queue_control_active(&l.c[1], INT64_MAX));
    queue_close(q);
    E(queue_check(t->path, 0, NULL, NULL, &rep));
    assert_int_equal(rep.problems, 0);

    /* a pause without an end makes it last */
    q = open_q(t->path, 0, NULL);
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "brief.test", NULL, NULL));
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_controls(q, take_ctl, &l), 2);
    assert_int_equal(l.c[0].until, 0);
    assert_int_equal(l.c[0].since, 1700000000);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_retry_batches, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_bounce, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_pause_until, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
