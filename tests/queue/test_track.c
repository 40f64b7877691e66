/*
 * test_track.c - opens and clicks in the spool: a campaign's track
 * setting (stored only when set, so an untracked campaign's record is the
 * layout of before, and such a record reads as untracked), and the counts
 * an open or click event adds to its campaign in its own commit: every
 * event in the total, a delivery's first as unique, none past
 * QUEUE_TRACK_MAX of a kind for one delivery; the spool check knows the
 * records.
 */
#include <lmdb.h>
#include <pthread.h>

#include "queue_campaign.h"
#include "queue_track.h"
#include "testutil.h"

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* A check of dir finds n problems. */
static void check_problems(const char *dir, uint64_t n)
{
    struct queue_check_report r;
    queue_check(dir, 0, NULL, NULL, &r);
    assert_int_equal(r.problems, n);
}

/* Size of the campaign definition record of id, or put v there. */
static size_t raw_def(const char *dir, uint64_t id, const void *v,
                      size_t vlen, unsigned char *copy, size_t cap)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char key[9] = { 'i' };
    for (int i = 0; i < 8; i++)
        key[8 - i] = (unsigned char)(id >> (8 * i));
    MDB_val kk = { 9, key }, vv = { vlen, (void *)v };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "campaigns", 0, &dbi), 0);
    size_t n = 0;
    if (v) {
        assert_int_equal(mdb_put(txn, dbi, &kk, &vv, 0), 0);
    } else {
        assert_int_equal(mdb_get(txn, dbi, &kk, &vv), 0);
        n = vv.mv_size;
        if (copy)
            memcpy(copy, vv.mv_data, n < cap ? n : cap);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return n;
}

static void test_setting(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    test_acme_shop(q, &boot);
    struct queue_campaign_spec s = {
        .list = 7, .name = "plain", .from = "Acme <news@acme.example>",
        .subject = "s", .html = "<p>x</p>",
    };
    uint64_t plain, tracked;
    E(queue_campaign_create(q, 2, &s, &boot, &plain));
    s.name = "track";   /* as long as "plain" */
    s.track = QUEUE_TRACK_OPENS | QUEUE_TRACK_CLICKS;
    E(queue_campaign_create(q, 2, &s, &boot, &tracked));
    s.name = "bad";
    s.track = 4;
    EQ_ERR(queue_campaign_create(q, 2, &s, &boot, NULL), -EINVAL);
    struct queue_campaign c;
    E(queue_campaign_get(q, plain, &c));
    assert_int_equal(c.track, 0);
    queue_campaign_clear(&c);
    E(queue_campaign_get(q, tracked, &c));
    assert_int_equal(c.track, 3);
    queue_campaign_clear(&c);
    struct queue_campaign_spec u = { .track = QUEUE_TRACK_CLICKS };
    E(queue_campaign_update(q, tracked, QUEUE_CF_TRACK, &u, &boot));
    E(queue_campaign_get(q, tracked, &c));
    assert_int_equal(c.track, QUEUE_TRACK_CLICKS);
    queue_campaign_clear(&c);
    queue_close(q);
    /* the untracked record is the layout of before: one byte shorter */
    unsigned char rec[512];
    size_t pn = raw_def(t->path, plain, NULL, 0, NULL, 0);
    size_t tn = raw_def(t->path, tracked, NULL, 0, rec, sizeof rec);
    assert_int_equal(tn, pn + 1);
    assert_int_equal(rec[tn - 1], QUEUE_TRACK_CLICKS);
    check_problems(t->path, 0);
    /* a track byte no sluice writes is a damaged record */
    rec[tn - 1] = 9;
    raw_def(t->path, tracked, rec, tn, NULL, 0);
    check_problems(t->path, 1);
    q = open_q(t->path, 0, NULL);
    EQ_ERR(queue_campaign_get(q, tracked, &c), QUEUE_ECORRUPT);
    queue_close(q);
}

struct evs {
    int type[16];
    char text[16][64];
    size_t n;
};

static int take_ev(void *arg, const struct queue_event *e)
{
    struct evs *l = arg;
    if (l->n < 16) {
        l->type[l->n] = e->type;
        snprintf(l->text[l->n], sizeof l->text[0], "%.63s", e->text);
        l->n++;
    }
    return 0;
}

static void test_counts(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct queue_campaign_rcpt r[] = { { 1, "a@x.test" }, { 2, "b@x.test" } };
    uint64_t first;
    E(queue_enqueue_campaign(q, 2, 9, r, 2, &first));
    struct queue_track_counts k;
    E(queue_track_counts(q, 9, &k));
    assert_int_equal(k.opens + k.unique_opens + k.clicks + k.unique_clicks,
                     0);
    struct queue_note o = { .type = QUEUE_EV_OPENED, .delivery = first };
    struct queue_note c = { .type = QUEUE_EV_CLICKED, .delivery = first,
                            .text = "https://a.example/" };
    E(queue_record_note(q, &o));
    E(queue_record_note(q, &o));
    E(queue_record_note(q, &c));
    struct done d = { .mu = PTHREAD_MUTEX_INITIALIZER };
    pthread_mutex_init(&d.mu, NULL);
    c.delivery = first + 1;
    E(queue_submit_note(q, &c, done_note, &d));
    E(queue_flush(q));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    pthread_mutex_destroy(&d.mu);
    o.delivery = 999;
    EQ_ERR(queue_record_note(q, &o), QUEUE_ENOTFOUND);
    E(queue_track_counts(q, 9, &k));
    assert_int_equal(k.opens, 2);
    assert_int_equal(k.unique_opens, 1);
    assert_int_equal(k.clicks, 2);
    assert_int_equal(k.unique_clicks, 2);
    E(queue_track_counts(q, 8, &k));
    assert_int_equal(k.opens, 0);
    struct evs l = { .n = 0 };
    assert_int_equal(queue_events_from(q, 1, 0, take_ev, &l), 4);
    assert_string_equal(queue_event_name(l.type[0]), "open");
    assert_string_equal(queue_event_name(l.type[2]), "click");
    assert_string_equal(l.text[2], "https://a.example/");
    /* one message opened without end: QUEUE_TRACK_MAX events, no more */
    o.delivery = first + 1;
    for (int i = 0; i < QUEUE_TRACK_MAX + 5; i++)
        E(queue_submit_note(q, &o, NULL, NULL));
    E(queue_flush(q));
    E(queue_track_counts(q, 9, &k));
    assert_int_equal(k.opens, 2 + QUEUE_TRACK_MAX);
    assert_int_equal(k.unique_opens, 2);
    assert_int_equal(k.clicks, 2);
    l.n = 0;
    assert_int_equal(queue_events_from(q, 1, 0, take_ev, &l),
                     4 + QUEUE_TRACK_MAX);
    /* informational: the deliveries' counters and states do not move */
    struct queue_counts qc;
    E(queue_counts_campaign(q, 9, &qc));
    assert_int_equal(qc.queued, 2);
    assert_int_equal(qc.delivered, 0);
    queue_close(q);
    check_problems(t->path, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setting, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_counts, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
