/*
 * test_cursor.c - named consumer cursors over the event log
 * (queue/cursor.c) and the seq of the newest event.
 *
 * DESCRIPTION
 *   A cursor never saved reads as QUEUE_ENOTFOUND; saved synchronously or
 *   through the writer (completion after the commit), it reads back, is
 *   kept per name and survives close and reopen; bad names are refused; a
 *   read-only open reads cursors and refuses to save them.  The newest
 *   event's seq follows the outcomes recorded, and reading from a saved
 *   cursor + 1 gives exactly the events after it.
 */
#include <pthread.h>

#include "testutil.h"

/* Save a cursor, read it back, keep names apart, survive a reopen. */
static void test_round_trip(void **state)
{
    struct tdir *t = *state;
    uint64_t seq = 99;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    EQ_ERR(queue_cursor_get(q, "eventlog", &seq), QUEUE_ENOTFOUND);
    assert_int_equal(seq, 0);
    E(queue_cursor_put(q, "eventlog", 42));
    E(queue_cursor_put(q, "webhook.crm-1", 7));
    E(queue_cursor_get(q, "eventlog", &seq));
    assert_int_equal(seq, 42);
    E(queue_cursor_put(q, "eventlog", 40)); /* a consumer may go back */
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_cursor_get(q, "eventlog", &seq));
    assert_int_equal(seq, 40);
    E(queue_cursor_get(q, "webhook.crm-1", &seq));
    assert_int_equal(seq, 7);
    queue_close(q);
}

/* Names outside a-z 0-9 . _ - (first a letter or digit), empty or too
 * long are refused, nothing saved. */
static void test_bad_names(void **state)
{
    struct tdir *t = *state;
    uint64_t seq;
    char longname[QUEUE_MAX_CURSOR_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *bad[] = { "", "EventLog", "a/b", "a b", "-x", ".x",
                          "caf\xc3\xa9", longname, NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EQ_ERR(queue_cursor_put(q, bad[i], 1), -EINVAL);
        EQ_ERR(queue_cursor_get(q, bad[i], &seq), -EINVAL);
        EQ_ERR(queue_submit_cursor(q, bad[i], 1, NULL, NULL, NULL), -EINVAL);
    }
    longname[QUEUE_MAX_CURSOR_NAME] = 0; /* exactly the cap: fine */
    E(queue_cursor_put(q, longname, 3));
    E(queue_cursor_get(q, longname, &seq));
    assert_int_equal(seq, 3);
    queue_close(q);
}

/* The asynchronous save: its callback runs once, after the commit. */
static void test_submit(void **state)
{
    struct tdir *t = *state;
    struct done d = { .mu = PTHREAD_MUTEX_INITIALIZER };
    uint64_t seq;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_submit_cursor(q, "eventlog", 5, NULL, done_note, &d));
    E(queue_submit_cursor(q, "eventlog", 9, NULL, done_note, &d));
    E(queue_flush(q));
    pthread_mutex_lock(&d.mu);
    assert_int_equal(d.calls, 2);
    assert_int_equal(d.status, 0);
    pthread_mutex_unlock(&d.mu);
    E(queue_cursor_get(q, "eventlog", &seq));
    assert_int_equal(seq, 9); /* saves apply in the order submitted */
    queue_close(q);
}

/* A read-only open reads cursors and refuses to save one. */
static void test_readonly(void **state)
{
    struct tdir *t = *state;
    uint64_t seq;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_cursor_put(q, "eventlog", 11));
    queue_close(q);
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_cursor_get(q, "eventlog", &seq));
    assert_int_equal(seq, 11);
    EQ_ERR(queue_cursor_put(q, "eventlog", 12), -EROFS);
    EQ_ERR(queue_submit_cursor(q, "eventlog", 12, NULL, NULL, NULL), -EROFS);
    queue_close(q);
}

static int count_ev(void *arg, const struct queue_event *ev)
{
    uint64_t *last = arg;
    assert_true(ev->seq > *last);
    *last = ev->seq;
    return 0;
}

/* The newest seq follows the outcomes; reading after a cursor gives the
 * events after it and no other. */
static void test_events_last(void **state)
{
    struct tdir *t = *state;
    uint64_t last, first = 0, seen;
    const char *rcpts[] = { "a@x.test", "b@x.test", "c@y.test" };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_events_last(q, &last));
    assert_int_equal(last, 0);
    E(queue_enqueue_message(q, 0, "s@x.test", rcpts, 3, "m", 1, &first,
                            NULL));
    struct queue_outcome o[3] = {
        { .delivery = first, .type = QUEUE_EV_DELIVERED, .code = 250 },
        { .delivery = first + 1, .type = QUEUE_EV_DEFERRED, .code = 451 },
        { .delivery = first + 2, .type = QUEUE_EV_BOUNCED, .code = 550 },
    };
    E(queue_record_outcomes(q, o, 3));
    E(queue_events_last(q, &last));
    assert_int_equal(last, 3);
    E(queue_cursor_put(q, "eventlog", 1));
    E(queue_cursor_get(q, "eventlog", &seen));
    uint64_t from = seen;
    assert_int_equal(queue_events_from(q, from + 1, 0, count_ev, &seen), 2);
    assert_int_equal(seen, last);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_submit, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_readonly, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_events_last, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
