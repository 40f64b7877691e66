/*
 * test_enqueue.c - putting mail into the spool (queue/ops.c, read.c,
 * counters.c, records.c, completer.c).
 *
 * DESCRIPTION
 *   Injected messages are stored once for all their recipients and read
 *   back byte for byte; campaign batches get consecutive ids and readable
 *   rows with lowercased domains; counters per campaign, account, domain
 *   and in total count what was enqueued; recipient checks refuse what
 *   cannot be an address.  Asynchronous submission through a libuv
 *   completer runs each callback once, on the loop's thread.
 */
#include <pthread.h>
#include <uv.h>

#include "queue_uv.h"
#include "testutil.h"

struct got_msg {
    int calls;
    char from[QUEUE_MAX_RCPT + 1];
    unsigned char *buf;
    size_t len;
};

static void on_message(void *arg, const char *from, const void *msg,
                       size_t len)
{
    struct got_msg *g = arg;
    g->calls++;
    snprintf(g->from, sizeof g->from, "%s", from);
    g->buf = malloc(len ? len : 1);
    memcpy(g->buf, msg, len);
    g->len = len;
}

/* One message, three recipients: stored once, same bytes and sender back,
 * one row per recipient with consecutive ids and the message as ref. */
static void test_message(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *rc[] = { "Alice@Example.COM", "bob@example.com",
                         "carol@Other.Example" };
    size_t len = 200000;
    unsigned char *msg = malloc(len);
    uint64_t first, mid;
    struct queue_info info;
    struct queue_delivery d;
    struct queue_counts c;

    for (size_t i = 0; i < len; i++)
        msg[i] = (unsigned char)(i * 7 + (i >> 9)); /* includes NULs */
    E(queue_enqueue_message(q, 42, "Sender@Example.org", rc, 3, msg, len,
                            &first, &mid));
    assert_int_equal(first, 1);
    assert_int_equal(mid, 1);
    E(queue_info(q, &info));
    assert_int_equal(info.messages, 1);
    assert_int_equal(info.deliveries, 3);
    assert_int_equal(info.ready, 3);

    struct got_msg g = { 0 };
    E(queue_get_message(q, mid, on_message, &g));
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.from, "Sender@Example.org");
    assert_int_equal(g.len, len);
    assert_memory_equal(g.buf, msg, len);
    free(g.buf);

    const char *want[] = { "Alice@example.com", "bob@example.com",
                           "carol@other.example" };
    for (uint64_t i = 0; i < 3; i++) {
        E(queue_get_delivery(q, first + i, &d));
        assert_int_equal(d.id, first + i);
        assert_string_equal(d.rcpt, want[i]);
        assert_int_equal(d.campaign, 0);
        assert_int_equal(d.ref, mid);
        assert_int_equal(d.account, 42);
        assert_int_equal(d.state, QUEUE_ST_QUEUED);
        assert_int_equal(d.attempts, 0);
        assert_int_equal(d.created, test_clock());
        assert_int_equal(d.next_attempt, test_clock());
        assert_int_equal(d.last_event, 0);
    }
    EQ_ERR(queue_get_delivery(q, 4, &d), QUEUE_ENOTFOUND);
    EQ_ERR(queue_get_delivery(q, 0, &d), QUEUE_ENOTFOUND);
    EQ_ERR(queue_get_message(q, 2, on_message, &g), QUEUE_ENOTFOUND);
    assert_int_equal(g.calls, 1);

    /* a null sender and a second message get the next ids */
    E(queue_enqueue_message(q, 42, NULL, rc + 1, 1, "x", 1, &first, &mid));
    assert_int_equal(first, 4);
    assert_int_equal(mid, 2);
    memset(&g, 0, sizeof g);
    E(queue_get_message(q, mid, on_message, &g));
    assert_string_equal(g.from, "");
    assert_int_equal(g.len, 1);
    free(g.buf);

    E(queue_counts_account(q, 42, &c));
    assert_int_equal(c.enqueued, 4);
    assert_int_equal(c.queued, 4);
    E(queue_counts_domain(q, "example.com", &c));
    assert_int_equal(c.enqueued, 3);
    E(queue_counts_domain(q, "other.example", &c));
    assert_int_equal(c.enqueued, 1);
    E(queue_counts_total(q, &c));
    assert_int_equal(c.enqueued, 4);
    assert_int_equal(c.queued, 4);
    assert_int_equal(c.delivered + c.bounced + c.expired + c.deferred, 0);
    free(msg);
    queue_close(q);
}

/* Invalid input is refused at submission and nothing is written. */
static void test_message_invalid(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *good[] = { "a@example.com" };
    const char *bad[] = { "a@example.com", "no-at-sign" };
    struct queue_info info;
    uint64_t first = 9, mid = 9;

    EQ_ERR(queue_enqueue_message(q, 1, "", good, 0, "x", 1, &first, &mid),
           -EINVAL);
    assert_int_equal(first, 0);
    assert_int_equal(mid, 0);
    EQ_ERR(queue_enqueue_message(q, 1, "", bad, 2, "x", 1, NULL, NULL),
           -EINVAL);
    assert_non_null(strstr(queue_last_detail(), "2"));
    EQ_ERR(queue_enqueue_message(q, 1, "bad sender", good, 1, "x", 1, NULL,
                                 NULL), -EINVAL);
    EQ_ERR(queue_enqueue_message(q, 1, "", good, 1, NULL, 0, NULL, NULL),
           -EINVAL);
    EQ_ERR(queue_enqueue_message(q, 1, "", good, 1, "x",
                                 (size_t)QUEUE_MAX_MESSAGE + 1, NULL, NULL),
           QUEUE_ETOOBIG);
    E(queue_flush(q));
    E(queue_info(q, &info));
    assert_int_equal(info.messages, 0);
    assert_int_equal(info.deliveries, 0);
    queue_close(q);
}

struct dom_seen {
    int n;
    char names[8][32];
    uint64_t enqueued[8];
};

static int on_domain(void *arg, const char *domain,
                     const struct queue_counts *c)
{
    struct dom_seen *s = arg;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", domain);
        s->enqueued[s->n] = c->enqueued;
    }
    s->n++;
    return 0;
}

static int stop_at_first(void *arg, const char *domain,
                         const struct queue_counts *c)
{
    (*(int *)arg)++;
    return 1;
}

/* A campaign batch: consecutive ids, readable rows carrying campaign and
 * contact, domains lowercased, counters per campaign/account/domain/total
 * and the domain list in name order. */
static void test_campaign(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct rcpts rs;
    uint64_t first, first2;
    struct queue_delivery d;
    struct queue_counts c;
    struct queue_info info;
    size_t n = 1000;

    rcpts_make(&rs, n, "User%u-%u@MiXeD%u.Example", 3, 3);
    E(queue_enqueue_campaign(q, 5, 77, rs.r, n, &first));
    assert_int_equal(first, 1);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "User3-%zu@mixed%zu.example", i, i % 3);
        E(queue_get_delivery(q, first + i, &d));
        assert_string_equal(d.rcpt, want);
        assert_int_equal(d.campaign, 77);
        assert_int_equal(d.ref, rs.r[i].contact);
        assert_int_equal(d.account, 5);
        assert_int_equal(d.state, QUEUE_ST_QUEUED);
        assert_int_equal(d.next_attempt, test_clock());
    }
    EQ_ERR(queue_get_delivery(q, first + n, &d), QUEUE_ENOTFOUND);
    rcpts_free(&rs);

    /* a second batch of another campaign follows on */
    rcpts_make(&rs, 10, "b%u-r%u@zed%u.example", 4, 1);
    E(queue_enqueue_campaign(q, 6, 78, rs.r, rs.n, &first2));
    assert_int_equal(first2, first + n);
    rcpts_free(&rs);

    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, n + 10);
    assert_int_equal(info.ready, n + 10);
    assert_int_equal(info.messages, 0);

    E(queue_counts_campaign(q, 77, &c));
    assert_int_equal(c.enqueued, n);
    assert_int_equal(c.queued, n);
    E(queue_counts_campaign(q, 78, &c));
    assert_int_equal(c.enqueued, 10);
    E(queue_counts_campaign(q, 79, &c)); /* unknown: zeros */
    assert_int_equal(c.enqueued, 0);
    E(queue_counts_account(q, 5, &c));
    assert_int_equal(c.enqueued, n);
    E(queue_counts_account(q, 6, &c));
    assert_int_equal(c.queued, 10);
    E(queue_counts_domain(q, "mixed1.example", &c));
    assert_int_equal(c.enqueued, 333);
    E(queue_counts_domain(q, "MiXeD1.Example", &c)); /* stored lowercase */
    assert_int_equal(c.enqueued, 0);
    E(queue_counts_total(q, &c));
    assert_int_equal(c.enqueued, n + 10);
    assert_int_equal(c.queued, n + 10);

    struct dom_seen s = { 0 };
    assert_int_equal(queue_domains(q, on_domain, &s), 4);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.names[0], "mixed0.example");
    assert_string_equal(s.names[1], "mixed1.example");
    assert_string_equal(s.names[2], "mixed2.example");
    assert_string_equal(s.names[3], "zed0.example");
    assert_int_equal(s.enqueued[0], 334);
    assert_int_equal(s.enqueued[3], 10);
    int stops = 0;
    assert_int_equal(queue_domains(q, stop_at_first, &stops), 1);
    assert_int_equal(stops, 1);

    /* invalid batches: refused whole, nothing written */
    struct queue_campaign_rcpt badr[] = { { 1, "ok@example.com" },
                                          { 2, "bad@exa mple.com" } };
    EQ_ERR(queue_enqueue_campaign(q, 5, 77, badr, 2, NULL), -EINVAL);
    EQ_ERR(queue_enqueue_campaign(q, 5, 0, badr, 1, NULL), -EINVAL);
    EQ_ERR(queue_enqueue_campaign(q, 5, 77, badr, 0, NULL), -EINVAL);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, n + 10);
    E(queue_counts_campaign(q, 77, &c));
    assert_int_equal(c.enqueued, n);
    queue_close(q);
}

/* Recipient checks: good addresses pass, anything with control or space
 * characters, no '@', empty parts or over the caps is refused. */
static void test_check_rcpt(void **state)
{
    char longlocal[80], longdom[300], longall[400];
    static const char *good[] = {
        "a@b", "user@example.com", "First.Last+tag@sub.Example.ORG",
        "x@[192.0.2.1]", "o'neil@example.ie", "\xc3\xa9@example.fr",
        "a@b-c.example", "\xe7\x94\xa8\xe6\x88\xb7@example.test",
        "\xf0\x9f\x93\xa7@example.test",
    };
    static const char *bad[] = {
        "", "example.com", "@example.com", "user@", "user@.example.com",
        "user@example.com.", "user@exa..mple.com", "us er@example.com",
        "user@exa mple.com", "user@example.com\r\nRCPT TO:<x@y>",
        "user\r@example.com", "user\n@example.com", "user@example.com\n",
        "\tuser@example.com", "<user@example.com>", "user@exa_mple.com",
        "user@example.com\x7f",
        /* 8-bit that is not UTF-8: Latin-1, a cut sequence, an overlong
         * '@', a surrogate, beyond U+10FFFF */
        "\xe9@example.fr", "\xe7\x94@example.test",
        "a\xc0\x80\x62@example.test", "\xed\xa0\x80@example.test",
        "\xf4\x90\x80\x80@example.test",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (queue_check_rcpt(good[i]))
            fail_msg("refused good address '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (queue_check_rcpt(bad[i]) != -EINVAL)
            fail_msg("accepted bad address '%s'", bad[i]);
    EQ_ERR(queue_check_rcpt(NULL), -EINVAL);

    /* local part: 64 ok, 65 refused */
    memset(longlocal, 'l', 64);
    snprintf(longlocal + 64, sizeof longlocal - 64, "@example.com");
    E(queue_check_rcpt(longlocal));
    memset(longlocal, 'l', 65);
    snprintf(longlocal + 65, sizeof longlocal - 65, "@example.com");
    EQ_ERR(queue_check_rcpt(longlocal), -EINVAL);
    /* domain: 255 ok, 256 refused */
    longdom[0] = 'u';
    longdom[1] = '@';
    memset(longdom + 2, 'd', 255);
    longdom[257] = 0;
    E(queue_check_rcpt(longdom));
    longdom[257] = 'd';
    longdom[258] = 0;
    EQ_ERR(queue_check_rcpt(longdom), -EINVAL);
    /* whole address: 64 + 1 + 255 = QUEUE_MAX_RCPT is the limit */
    memset(longall, 'l', 64);
    longall[64] = '@';
    memset(longall + 65, 'd', 255);
    longall[320] = 0;
    assert_int_equal(strlen(longall), QUEUE_MAX_RCPT);
    E(queue_check_rcpt(longall));
    memset(longall, 'x', 399);
    longall[399] = 0;
    longall[10] = '@';
    EQ_ERR(queue_check_rcpt(longall), -EINVAL);
}

/* ------------------------------------------------- async with a loop */

struct async_ctx {
    pthread_t loop_thread;
    struct queue_completer *cmp;
    int expected, done, wrong_thread, failed;
    uint64_t first_ids[64];
    uint64_t msg_ids[64];
};

struct async_arg {
    struct async_ctx *ctx;
    int index;
};

static void on_async_done(void *arg, int status, uint64_t first_id,
                          uint64_t msg_id)
{
    struct async_arg *a = arg;
    struct async_ctx *c = a->ctx;
    if (!pthread_equal(pthread_self(), c->loop_thread))
        c->wrong_thread++;
    if (status)
        c->failed++;
    c->first_ids[a->index] = first_id;
    c->msg_ids[a->index] = msg_id;
    if (++c->done == c->expected)
        queue_completer_close(c->cmp); /* the last callback seen */
}

static void never_cb(void *arg, int status, uint64_t a, uint64_t b)
{
    (*(int *)arg)++;
}

/* Submit campaign batches, messages and outcomes with a completer: every
 * callback runs exactly once on the loop thread, with the ids of its op;
 * a refused submission never calls back. */
static void test_async_uv(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ms = 2 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    uv_loop_t loop;
    struct async_ctx ctx = { .loop_thread = pthread_self() };
    struct async_arg args[64];
    struct rcpts rs[20];
    const char *mr[] = { "m1@example.com", "m2@example.com" };
    int never = 0;

    assert_int_equal(uv_loop_init(&loop), 0);
    E(queue_completer_new(&loop, &ctx.cmp));
    ctx.expected = 41;
    for (int i = 0; i < 20; i++) {
        rcpts_make(&rs[i], 50, "b%u-r%u@d%u.example", (unsigned)i, 4);
        args[2 * i] = (struct async_arg){ &ctx, 2 * i };
        E(queue_submit_campaign(q, 1, 900, rs[i].r, rs[i].n, ctx.cmp,
                                on_async_done, &args[2 * i]));
        rcpts_free(&rs[i]); /* the queue copied them */
        args[2 * i + 1] = (struct async_arg){ &ctx, 2 * i + 1 };
        E(queue_submit_message(q, 2, "s@example.com", mr, 2, "body", 4,
                               ctx.cmp, on_async_done, &args[2 * i + 1]));
    }
    struct queue_campaign_rcpt bad = { 1, "bad" };
    EQ_ERR(queue_submit_campaign(q, 1, 900, &bad, 1, ctx.cmp, never_cb,
                                 &never), -EINVAL);
    struct queue_outcome oc = { .delivery = 1, .type = QUEUE_EV_DELIVERED,
                                .code = 250 };
    args[40] = (struct async_arg){ &ctx, 40 };
    E(queue_submit_outcomes(q, &oc, 1, ctx.cmp, on_async_done, &args[40]));

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ctx.done, 41);
    assert_int_equal(ctx.wrong_thread, 0);
    assert_int_equal(ctx.failed, 0);
    assert_int_equal(never, 0);
    /* each op got its own consecutive range, in submission order */
    uint64_t next = 1, msg = 1;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(ctx.first_ids[i], next);
        next += i % 2 ? 2 : 50;
        if (i % 2) {
            assert_int_equal(ctx.msg_ids[i], msg);
            msg++;
        } else {
            assert_int_equal(ctx.msg_ids[i], 0);
        }
    }
    assert_int_equal(ctx.first_ids[40], 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    queue_completer_close(NULL); /* free functions accept NULL */

    struct queue_info info;
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 20 * 52);
    assert_int_equal(info.events, 1);
    queue_close(q);
}

/* Closing the completer from the last callback, many times over: the
 * writer must be done with the completer once its last callback can run
 * (under valgrind this catches a writer touching a freed completer). */
struct close_ctx {
    struct queue_completer *cmp;
    int done, expected;
};

static void on_close_last(void *arg, int status, uint64_t a, uint64_t b)
{
    struct close_ctx *c = arg;
    if (++c->done == c->expected)
        queue_completer_close(c->cmp);
}

static void test_completer_close_last(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .flags = QUEUE_OPEN_NOSYNC, .group_ms = 1 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct queue_campaign_rcpt r = { 1, "a@b.example" };
    int rounds = (int)bulk(300, 100);

    for (int it = 0; it < rounds; it++) {
        uv_loop_t loop;
        struct close_ctx c = { .expected = 1 + it % 5 };
        assert_int_equal(uv_loop_init(&loop), 0);
        E(queue_completer_new(&loop, &c.cmp));
        for (int i = 0; i < c.expected; i++)
            E(queue_submit_campaign(q, 1, 1, &r, 1, c.cmp, on_close_last,
                                    &c));
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(c.done, c.expected);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    queue_close(q);
}

/* Without a completer, callbacks run on the writer thread, and after
 * queue_flush() every one of them has run. */
struct wr_ctx {
    pthread_t main;
    int done, on_main, failed;
    pthread_mutex_t mu;
};

static void on_writer_done(void *arg, int status, uint64_t a, uint64_t b)
{
    struct wr_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (pthread_equal(pthread_self(), c->main))
        c->on_main++;
    if (status)
        c->failed++;
    pthread_mutex_unlock(&c->mu);
}

static void test_flush_writer_thread(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ms = 20, .group_ops = 64 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    struct wr_ctx c = { .main = pthread_self() };
    struct rcpts rs;
    struct queue_info info;

    pthread_mutex_init(&c.mu, NULL);
    rcpts_make(&rs, 10, "b%u-r%u@d%u.example", 1, 2);
    for (int i = 0; i < 100; i++)
        E(queue_submit_campaign(q, 1, 1, rs.r, rs.n, NULL, on_writer_done,
                                &c));
    rcpts_free(&rs);
    E(queue_flush(q));
    pthread_mutex_lock(&c.mu);
    assert_int_equal(c.done, 100);
    assert_int_equal(c.on_main, 0);
    assert_int_equal(c.failed, 0);
    pthread_mutex_unlock(&c.mu);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 1000);
    assert_int_equal(info.ops_committed, 100);
    E(queue_flush(q)); /* nothing pending: returns at once */
    queue_close(q);
    pthread_mutex_destroy(&c.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_message, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_message_invalid, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_campaign, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test(test_check_rcpt),
        cmocka_unit_test_setup_teardown(test_async_uv, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_completer_close_last,
                                        tdir_setup, tdir_teardown),
        cmocka_unit_test_setup_teardown(test_flush_writer_thread, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
