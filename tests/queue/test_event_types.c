/*
 * test_event_types.c - the event types of schema 5: suppressed and
 * cancelled end a delivery with counters of their own; complaint,
 * unsubscribed and reception are informational (note.c); counter records
 * of an older spool (six counts) still read and check; the spool's
 * identity is made once.
 */
#include <fcntl.h>
#include <lmdb.h>

#include "testutil.h"

/* Events collected by queue_events_from(). */
struct evs {
    struct queue_event ev[16];
    size_t n;
};

static int take_ev(void *arg, const struct queue_event *e)
{
    struct evs *l = arg;
    if (l->n < 16)
        l->ev[l->n++] = *e;
    return 0;
}

/* A check of dir finds no problem. */
static void check_sound(const char *dir)
{
    struct queue_check_report r;
    E(queue_check(dir, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);
}

/* suppressed and cancelled are terminal, counted apart from expired, and
 * take no second terminal event. */
static void test_terminal_types(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct queue *q = open_q(tdir_sub(t, "s", dir, sizeof dir),
                             QUEUE_OPEN_CREATE, NULL);
    struct queue_campaign_rcpt r[] = {
        { 1, "a@x.test" }, { 2, "b@x.test" }, { 3, "c@y.test" },
    };
    uint64_t first;
    E(queue_enqueue_campaign(q, 2, 9, r, 3, &first));
    struct queue_outcome oc[] = {
        { .delivery = first, .type = QUEUE_EV_SUPPRESSED,
          .enhanced = "5.7.1", .text = "suppressed: unsubscribed" },
        { .delivery = first + 1, .type = QUEUE_EV_CANCELLED,
          .enhanced = "5.0.0", .text = "campaign cancelled" },
        { .delivery = first + 2, .type = QUEUE_EV_DELIVERED, .code = 250 },
    };
    E(queue_record_outcomes(q, oc, 3));
    struct queue_counts c;
    E(queue_counts_campaign(q, 9, &c));
    assert_int_equal(c.queued, 0);
    assert_int_equal(c.suppressed, 1);
    assert_int_equal(c.cancelled, 1);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.expired, 0);
    E(queue_counts_domain(q, "x.test", &c));
    assert_int_equal(c.suppressed + c.cancelled, 2);
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_string_equal(queue_state_name(d.state), "suppressed");
    assert_int_equal(d.attempts, 0);      /* not an attempt */
    E(queue_get_delivery(q, first + 1, &d));
    assert_string_equal(queue_state_name(d.state), "cancelled");
    /* one terminal event only */
    struct queue_outcome again = { .delivery = first,
                                   .type = QUEUE_EV_EXPIRED };
    EQ_ERR(queue_record_outcomes(q, &again, 1), QUEUE_ESTATE);
    /* informational types are not outcomes */
    struct queue_outcome bad = { .delivery = first + 2,
                                 .type = QUEUE_EV_COMPLAINT };
    EQ_ERR(queue_record_outcomes(q, &bad, 1), -EINVAL);
    struct evs l = { .n = 0 };
    assert_int_equal(queue_events_from(q, 1, 0, take_ev, &l), 3);
    assert_string_equal(queue_event_name(l.ev[0].type), "suppressed");
    assert_string_equal(queue_event_name(l.ev[1].type), "cancelled");
    assert_int_equal(l.ev[0].message, 0);  /* campaign mail: no message */
    queue_close(q);
    check_sound(dir);
}

/* Reception with the message, complaint and unsubscribed notes: events,
 * and no change to deliveries or counters. */
static void test_notes(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct queue *q = open_q(tdir_sub(t, "s", dir, sizeof dir),
                             QUEUE_OPEN_CREATE, NULL);
    const char *to[] = { "a@x.test", "b@x.test" };
    const char msg[] = "From: s@shop.test\r\n\r\nhi\r\n";
    /* the listeners' way in: one reception event in the same commit */
    EQ_ERR(queue_submit_message_via(q, 2, "s@shop.test", to, 2, msg,
                                    sizeof msg - 1, "SMTP", NULL, NULL,
                                    NULL), -EINVAL);
    E(queue_submit_message_via(q, 2, "s@shop.test", to, 2, msg,
                               sizeof msg - 1, "smtp", NULL, NULL, NULL));
    E(queue_flush(q));
    uint64_t first, mid;
    E(queue_enqueue_message(q, 2, "s@shop.test", to, 1, msg, sizeof msg - 1,
                            &first, &mid));  /* `sluice inject`: none */
    struct evs l = { .n = 0 };
    assert_int_equal(queue_events_from(q, 1, 0, take_ev, &l), 1);
    assert_int_equal(l.ev[0].type, QUEUE_EV_RECEPTION);
    assert_int_equal(l.ev[0].delivery, 1);
    assert_int_equal(l.ev[0].account, 2);
    assert_string_equal(l.ev[0].rcpt, "a@x.test");
    assert_string_equal(l.ev[0].text, "smtp: 2 recipients");
    assert_int_equal(l.ev[0].message, 1);
    struct queue_counts before, after;
    E(queue_counts_total(q, &before));

    /* a complaint about delivery 2: its row gives campaign, account, rcpt */
    struct queue_note n = { .type = QUEUE_EV_COMPLAINT, .delivery = 2,
                            .account = 77, .text = "abuse" };
    E(queue_record_note(q, &n));
    /* an unsubscribe known by campaign and address only */
    struct queue_note u = { .type = QUEUE_EV_UNSUBSCRIBED, .campaign = 4,
                            .account = 2, .rcpt = "z@y.test",
                            .text = "one-click" };
    E(queue_record_note(q, &u));
    struct queue_note bad = u;
    bad.type = QUEUE_EV_DELIVERED;
    EQ_ERR(queue_record_note(q, &bad), -EINVAL);
    bad = u;
    bad.rcpt = "not an address";
    EQ_ERR(queue_record_note(q, &bad), -EINVAL);
    struct queue_note gone = n;
    gone.delivery = 999;
    EQ_ERR(queue_record_note(q, &gone), QUEUE_ENOTFOUND);

    l.n = 0;
    assert_int_equal(queue_events_from(q, 2, 0, take_ev, &l), 2);
    assert_int_equal(l.ev[0].type, QUEUE_EV_COMPLAINT);
    assert_int_equal(l.ev[0].delivery, 2);
    assert_int_equal(l.ev[0].account, 2);  /* the row's, not the note's */
    assert_string_equal(l.ev[0].rcpt, "b@x.test");
    assert_string_equal(l.ev[0].text, "abuse");
    assert_int_equal(l.ev[0].message, 1);
    assert_int_equal(l.ev[1].type, QUEUE_EV_UNSUBSCRIBED);
    assert_int_equal(l.ev[1].delivery, 0);
    assert_int_equal(l.ev[1].campaign, 4);
    assert_string_equal(l.ev[1].rcpt, "z@y.test");
    E(queue_counts_total(q, &after));
    assert_memory_equal(&before, &after, sizeof before);
    struct queue_delivery d;
    E(queue_get_delivery(q, 2, &d));
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    assert_int_equal(d.last_event, 0);     /* not in its history */
    queue_close(q);
    check_sound(dir);
}

/* Put a record with plain LMDB. */
static void raw_put(const char *dir, const char *db, const void *k,
                    size_t klen, const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val kk = { klen, (void *)k }, vv = { vlen, (void *)v };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &kk, &vv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A counter record of a schema-4 spool (six counts) reads with
 * suppressed and cancelled 0, checks sound, and grows when it changes. */
static void test_old_counters(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct queue *q = open_q(tdir_sub(t, "s", dir, sizeof dir),
                             QUEUE_OPEN_CREATE, NULL);
    struct queue_campaign_rcpt r[] = { { 1, "a@x.test" }, { 2, "b@x.test" } };
    uint64_t first;
    E(queue_enqueue_campaign(q, 2, 9, r, 2, &first));
    struct queue_outcome oc = { .delivery = first,
                                .type = QUEUE_EV_DELIVERED, .code = 250 };
    E(queue_record_outcomes(q, &oc, 1));
    queue_close(q);
    /* queued 1, enqueued 2, delivered 1, deferred, bounced, expired 0 */
    uint64_t old[6] = { 1, 2, 1, 0, 0, 0 };
    unsigned char key[9] = { 'c', 0, 0, 0, 0, 0, 0, 0, 9 };
    raw_put(dir, "counters", key, sizeof key, old, sizeof old);
    check_sound(dir);
    q = open_q(dir, 0, NULL);
    struct queue_counts c;
    E(queue_counts_campaign(q, 9, &c));
    assert_int_equal(c.enqueued, 2);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.suppressed, 0);
    assert_int_equal(c.cancelled, 0);
    oc = (struct queue_outcome){ .delivery = first + 1,
                                 .type = QUEUE_EV_SUPPRESSED };
    E(queue_record_outcomes(q, &oc, 1));
    E(queue_counts_campaign(q, 9, &c));
    assert_int_equal(c.queued, 0);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.suppressed, 1);
    queue_close(q);
    check_sound(dir);
}

/* The spool's identity: made once, the same after reopening, not made by
 * a read-only open. */
static void test_identity(void **state)
{
    struct tdir *t = *state;
    char dir[128], a[33], b[33];
    struct queue *q = open_q(tdir_sub(t, "s", dir, sizeof dir),
                             QUEUE_OPEN_CREATE, NULL);
    queue_close(q);
    q = open_q(dir, QUEUE_OPEN_READONLY, NULL);
    EQ_ERR(queue_spool_identity(q, a), -ENOENT);
    queue_close(q);
    q = open_q(dir, 0, NULL);
    E(queue_spool_identity(q, a));
    E(queue_spool_identity(q, b));
    assert_string_equal(a, b);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    queue_close(q);
    q = open_q(dir, QUEUE_OPEN_READONLY, NULL);
    E(queue_spool_identity(q, b));
    assert_string_equal(a, b);
    queue_close(q);
    /* another spool, another identity */
    char dir2[128];
    q = open_q(tdir_sub(t, "t", dir2, sizeof dir2), QUEUE_OPEN_CREATE, NULL);
    E(queue_spool_identity(q, b));
    assert_string_not_equal(a, b);
    queue_close(q);
    check_sound(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_terminal_types, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_notes, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_old_counters, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_identity, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
