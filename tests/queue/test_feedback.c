/*
 * test_feedback.c - bounces and complaints reported later by mail
 * (queue_record_feedback, queue/feedback.c).
 *
 * DESCRIPTION
 *   A DSN's bounce records the bounced event and its suppression in one
 *   commit (the writer's commit count moves by one), and the entry is
 *   the one sluiced's own bounce makes (reason "hard bounce: CATEGORY",
 *   added by the delivery's account, on the master's list when shared);
 *   only the source says which path made it ("smtp", "dsn").  A complaint
 *   suppresses ("complaint", "arf"); a late bounce (delivery terminal
 *   already) adds no second terminal event but a hard one suppresses; a
 *   soft one changes nothing; an address already listed keeps its first
 *   record; an unknown delivery changes nothing.  On a spool at its map
 *   ceiling every report is whole or absent: never the event without its
 *   suppression nor the other way round.
 */
#include <string.h>

#include "queue_campaign.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* acme (1, master), shop (2, shares acme's list). */
static struct queue *feedback_spool(const char *path,
                                    struct queue_options *o)
{
    test_clock_set(T0);
    struct queue *q = open_q(path, QUEUE_OPEN_CREATE, o);
    test_acme_shop(q, &boot);
    return q;
}

/* Enqueue one delivery of account to rcpt; its id, or 0 when the spool is
 * full. */
static uint64_t one(struct queue *q, uint32_t account, const char *rcpt)
{
    static uint64_t contact = 1;
    struct queue_campaign_rcpt r = { contact++, rcpt };
    uint64_t id;
    int err = queue_enqueue_campaign(q, account, 100 + account, &r, 1, &id);
    if (err == QUEUE_EFULL)
        return 0;
    E(err);
    return id;
}

/* A DSN's bad-mailbox bounce of delivery id. */
static int dsn(struct queue *q, uint64_t id, int category,
               struct queue_feedback_result *r)
{
    struct queue_feedback f = {
        .delivery = id, .kind = QUEUE_FEEDBACK_BOUNCE, .code = 550,
        .category = (uint8_t)category, .enhanced = "5.1.1",
        .mx = "mx.example.com", .text = "550 5.1.1 user unknown",
    };
    return queue_record_feedback(q, &f, r);
}

/* One suppression entry, found by address. */
struct entry {
    const char *email;
    bool found;
    char reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
    uint32_t added_by;
};

static int entry_cb(void *arg, const struct queue_suppression *s)
{
    struct entry *e = arg;
    if (strcmp(s->email, e->email))
        return 0;
    e->found = true;
    snprintf(e->reason, sizeof e->reason, "%s", s->reason);
    snprintf(e->source, sizeof e->source, "%s", s->source);
    e->added_by = s->added_by;
    return 0;
}

/* The entry of email on owner's list (found false when there is none). */
static struct entry entry_of(struct queue *q, uint32_t owner,
                             const char *email)
{
    struct entry e = { .email = email };
    assert_true(queue_suppressions(q, owner, 0, NULL, entry_cb, &e) >= 0);
    return e;
}

/* Events of delivery id, and the type of the last. */
struct hist {
    long n;
    int last_type;
};

static int hist_cb(void *arg, const struct queue_event *ev)
{
    struct hist *h = arg;
    h->n++;
    h->last_type = ev->type;
    return 0;
}

static struct hist history(struct queue *q, uint64_t id)
{
    struct hist h = { 0 };
    assert_true(queue_history(q, id, hist_cb, &h) >= 0);
    return h;
}

/* Commits of the writer so far (after queue_flush(): the counter moves
 * after the waiting caller was woken). */
static uint64_t commits(struct queue *q)
{
    struct queue_info info;
    E(queue_flush(q));
    E(queue_info(q, &info));
    return info.commits;
}

/* One commit holds the event and the suppression; the entry is sluiced's
 * but for its source. */
static void test_bounce_one_commit(void **state)
{
    struct tdir *t = *state;
    struct queue *q = feedback_spool(t->path, NULL);
    uint64_t by_smtp = one(q, 2, "smtp@example.com");
    uint64_t by_dsn = one(q, 2, "dsn@example.com");
    struct queue_outcome o = { .delivery = by_smtp,
                               .type = QUEUE_EV_BOUNCED, .code = 550,
                               .category = QUEUE_CAT_BAD_MAILBOX };
    E(queue_record_outcomes(q, &o, 1));

    struct queue_feedback_result r = { true, -1 };
    uint64_t c0 = commits(q);
    E(dsn(q, by_dsn, QUEUE_CAT_BAD_MAILBOX, &r));
    assert_int_equal(commits(q), c0 + 1);
    assert_true(r.recorded);
    assert_int_equal(r.suppressed, QUEUE_FEEDBACK_SUPPRESSED);
    struct hist h = history(q, by_dsn);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.last_type, QUEUE_EV_BOUNCED);
    struct queue_delivery d;
    E(queue_get_delivery(q, by_dsn, &d));
    assert_int_equal(d.state, QUEUE_ST_BOUNCED);

    struct entry es = entry_of(q, 1, "smtp@example.com");
    struct entry ed = entry_of(q, 1, "dsn@example.com");
    assert_true(es.found && ed.found);   /* shop shares acme's list */
    assert_string_equal(es.reason, "hard bounce: bad-mailbox");
    assert_string_equal(ed.reason, es.reason);
    assert_int_equal(es.added_by, 2);
    assert_int_equal(ed.added_by, es.added_by);
    assert_string_equal(es.source, "smtp");
    assert_string_equal(ed.source, "dsn");
    queue_close(q);
}

/* Late bounces, complaints, soft bounces, unknown deliveries. */
static void test_late_and_complaint(void **state)
{
    struct tdir *t = *state;
    struct queue *q = feedback_spool(t->path, NULL);
    struct queue_feedback_result r;

    /* delivered, then a DSN says it bounced: no second terminal event */
    uint64_t late = one(q, 2, "late@example.com");
    struct queue_outcome o = { .delivery = late,
                               .type = QUEUE_EV_DELIVERED, .code = 250 };
    E(queue_record_outcomes(q, &o, 1));
    E(dsn(q, late, QUEUE_CAT_BAD_DOMAIN, &r));
    assert_false(r.recorded);
    assert_int_equal(r.suppressed, QUEUE_FEEDBACK_SUPPRESSED);
    struct hist h = history(q, late);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.last_type, QUEUE_EV_DELIVERED);
    struct entry e = entry_of(q, 1, "late@example.com");
    assert_true(e.found);
    assert_string_equal(e.reason, "hard bounce: bad-domain");
    assert_string_equal(e.source, "dsn");
    assert_int_equal(e.added_by, 2);
    /* the same report again: already there, first record kept */
    E(dsn(q, late, QUEUE_CAT_BAD_MAILBOX, &r));
    assert_int_equal(r.suppressed, QUEUE_FEEDBACK_ALREADY_SUPPRESSED);
    e = entry_of(q, 1, "late@example.com");
    assert_string_equal(e.reason, "hard bounce: bad-domain");

    /* a late soft bounce changes nothing */
    uint64_t soft = one(q, 2, "soft@example.com");
    o.delivery = soft;
    E(queue_record_outcomes(q, &o, 1));
    E(dsn(q, soft, QUEUE_CAT_QUOTA, &r));
    assert_false(r.recorded);
    assert_int_equal(r.suppressed, QUEUE_FEEDBACK_NOT_SUPPRESSED);
    assert_false(entry_of(q, 1, "soft@example.com").found);

    /* a complaint about a delivery still queued: suppressed, no event */
    uint64_t plain = one(q, 2, "angry@example.com");
    struct queue_feedback f = { .delivery = plain,
                                .kind = QUEUE_FEEDBACK_COMPLAINT };
    uint64_t c0 = commits(q);
    E(queue_record_feedback(q, &f, &r));
    assert_int_equal(commits(q), c0 + 1);
    assert_false(r.recorded);
    assert_int_equal(r.suppressed, QUEUE_FEEDBACK_SUPPRESSED);
    e = entry_of(q, 1, "angry@example.com");
    assert_true(e.found);
    assert_string_equal(e.reason, "complaint");
    assert_string_equal(e.source, "arf");
    assert_int_equal(e.added_by, 2);
    assert_int_equal(history(q, plain).n, 0);

    /* no such delivery; a bounce without a category */
    EQ_ERR(dsn(q, 999999, QUEUE_CAT_BAD_MAILBOX, &r), QUEUE_ENOTFOUND);
    f.kind = 7;
    EQ_ERR(queue_record_feedback(q, &f, &r), -EINVAL);
    EQ_ERR(dsn(q, plain, QUEUE_CAT_NONE, &r), -EINVAL);
    queue_close(q);
}

/* At the map ceiling a report is whole or absent, as its status says. */
static void test_full_whole_or_absent(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .map_size = 1u << 20, .map_max = 1u << 20,
                               .flags = QUEUE_OPEN_NOSYNC };
    struct queue *q = feedback_spool(t->path, &o);
    enum { BATCH = 100, MAX = 100000 };
    static uint64_t ids[MAX];
    static char addr[MAX][32];
    struct queue_campaign_rcpt r[BATCH];
    size_t n = 0;
    /* fill the map: batches of 100, then single recipients */
    for (size_t size = BATCH; size >= 1 && n + size <= MAX; ) {
        for (size_t i = 0; i < size; i++) {
            snprintf(addr[n + i], sizeof addr[n + i], "r%zu@example.com",
                     n + i);
            r[i] = (struct queue_campaign_rcpt){ n + i + 1, addr[n + i] };
        }
        uint64_t first;
        int err = queue_enqueue_campaign(q, 2, 102, r, size, &first);
        if (err == QUEUE_EFULL) {
            size = size == 1 ? 0 : 1;
            continue;
        }
        E(err);
        for (size_t i = 0; i < size; i++)
            ids[n + i] = first + i;
        n += size;
    }
    assert_true(n > 10 && n < MAX);   /* the spool filled up */
    unsigned absent = 0;
    for (size_t i = 0; i < n && absent < 3; i++) {
        struct queue_feedback_result res;
        bool listed;
        int err = dsn(q, ids[i], QUEUE_CAT_BAD_MAILBOX, &res);
        E(queue_suppressed(q, 1, addr[i], &listed));
        struct hist h = history(q, ids[i]);
        if (err == 0) {
            assert_true(res.recorded && listed && h.n == 1);
        } else {
            EQ_ERR(err, QUEUE_EFULL);
            assert_false(listed);
            assert_int_equal(h.n, 0);
            absent++;
        }
    }
    assert_true(absent > 0);   /* the ceiling was met while recording */
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bounce_one_commit, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_late_and_complaint, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_full_whole_or_absent,
                                        tdir_setup, tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
