/*
 * test_campaigns.c - campaigns in the spool (queue/campaigns.c,
 * campaign_send.c, token_secret.c) and recipients queued for later
 * (queue_submit_campaign_at in ops.c).
 *
 * DESCRIPTION
 *   Records round-trip through close and reopen with every field, UTF-8
 *   and large templates; names are unique per account; only drafts change.
 *   The state machine refuses what it must (pause a draft, resume what is
 *   not paused, send twice, anything after cancel) and pause, resume and
 *   cancel set the engine's controls in the same commit as the state and
 *   the audit record.  A send batch moves the cursor with its recipients:
 *   a batch from a stale cursor or after a cancel writes nothing; a send
 *   cut short continues where it stopped.  The whole enqueue
 *   (queue_campaign_send_all) queues every contact not suppressed and
 *   counts the others; from a stale cursor it queues nothing.  A campaign
 *   becomes done only when every recipient is terminal, and its finished
 *   time is that of the last terminal outcome, not of the settle.
 *   Recipients of a
 *   scheduled campaign are not claimable before their time.  The token
 *   secret is made once.
 */
#include <lmdb.h>

#include "queue_campaign.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* A spool with the master acme (1) and the sub-account shop (2). */
static struct queue *campaign_spool(struct tdir *t, unsigned flags)
{
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | flags, NULL);
    test_acme_shop(q, &boot);
    return q;
}

static const struct queue_campaign_spec base_spec = {
    .list = 7, .name = "spring sale", .from = "Acme Shop <news@acme.example>",
    .reply_to = "help@acme.example", .subject = "Hello {{first|friend}} \xc3\xa9t\xc3\xa9",
    .html = "<p>Hi {{first}}</p>", .text = "Hi {{first}}", .schedule = 0,
};

/* Audit records from seq on, newest last. */
struct audit_rows {
    struct queue_audit r[64];
    int n;
};

static int audit_cb(void *arg, const struct queue_audit *r)
{
    struct audit_rows *a = arg;
    if (a->n < 64)
        a->r[a->n++] = *r;
    return 0;
}

/* The last audit record's action and object. */
static void last_audit(struct queue *q, const char *action, const char *obj)
{
    struct audit_rows *a = calloc(1, sizeof *a);
    assert_non_null(a);
    assert_true(queue_audit_list(q, 1, audit_cb, a) > 0);
    assert_string_equal(a->r[a->n - 1].action, action);
    if (obj && !strstr(a->r[a->n - 1].object, obj))
        fail_msg("audit object '%s' lacks '%s'", a->r[a->n - 1].object, obj);
    free(a);
}

/* Whether a control of kind for campaign id is set. */
struct ctl_find {
    int kind;
    char name[24];
    bool found;
    char who[QUEUE_MAX_CTL_WHO + 1], reason[QUEUE_MAX_CTL_REASON + 1];
    struct queue_control c;
};

static int ctl_cb(void *arg, const struct queue_control *c)
{
    struct ctl_find *f = arg;
    if (c->kind == f->kind && !strcmp(c->name, f->name)) {
        f->found = true;
        snprintf(f->who, sizeof f->who, "%s", c->who);
        snprintf(f->reason, sizeof f->reason, "%s", c->reason);
        f->c = *c;
    }
    return 0;
}

static bool has_ctl(struct queue *q, int kind, uint64_t id,
                    struct ctl_find *out)
{
    struct ctl_find f = { .kind = kind };
    snprintf(f.name, sizeof f.name, "%llu", (unsigned long long)id);
    assert_true(queue_controls(q, ctl_cb, &f) >= 0);
    if (out)
        *out = f;
    return f.found;
}

static int count_cb(void *arg, const struct queue_campaign *c)
{
    assert_null(c->html);   /* lists carry no templates */
    (*(int *)arg)++;
    return 0;
}

/* ------------------------------------------------------------- records */

/* Every field survives close and reopen; find, list, update, checks. */
static void test_records(void **state)
{
    struct tdir *t = *state;
    struct queue_campaign c;
    uint64_t id, id2, id3;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, 0);

    E(queue_campaign_create(q, 1, &base_spec, &boot, &id));
    assert_int_equal(id, 1);
    last_audit(q, "campaign create", "campaign 1 (spring sale) of acme");
    /* a large template, no text, a schedule */
    size_t big = 3u << 20;
    char *html = malloc(big + 1);
    assert_non_null(html);
    for (size_t i = 0; i < big; i++)
        html[i] = "<p>{{x}}\xe2\x82\xac</p>\n"[i % 16];
    html[big] = 0;
    struct queue_campaign_spec s2 = base_spec;
    s2.name = "big";
    s2.html = html;
    s2.text = NULL;
    s2.reply_to = NULL;
    s2.schedule = T0 + 86400;
    E(queue_campaign_create(q, 1, &s2, &boot, &id2));
    assert_int_equal(id2, 2);
    /* same name in another account is fine, not in the same one */
    E(queue_campaign_create(q, 2, &base_spec, &boot, &id3));
    EQ_ERR(queue_campaign_create(q, 1, &base_spec, &boot, NULL), -EEXIST);
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.account, 1);
    assert_int_equal(c.list, 7);
    assert_string_equal(c.name, "spring sale");
    assert_string_equal(c.from, base_spec.from);
    assert_string_equal(c.reply_to, "help@acme.example");
    assert_string_equal(c.subject, base_spec.subject);
    assert_string_equal(c.html, base_spec.html);
    assert_string_equal(c.text, base_spec.text);
    assert_int_equal(c.state, QUEUE_CAMPAIGN_DRAFT);
    assert_int_equal(c.created, T0);
    assert_int_equal(c.schedule, 0);
    assert_int_equal(c.recipients, 0);
    assert_false(c.send_complete);
    queue_campaign_clear(&c);
    queue_campaign_clear(&c);   /* twice is fine */
    E(queue_campaign_get(q, id2, &c));
    assert_int_equal(strlen(c.html), big);
    assert_memory_equal(c.html, html, big);
    assert_null(c.text);
    assert_string_equal(c.reply_to, "");
    assert_int_equal(c.schedule, T0 + 86400);
    queue_campaign_clear(&c);
    E(queue_campaign_find(q, 2, "spring sale", &c));
    assert_int_equal(c.id, id3);
    queue_campaign_clear(&c);
    EQ_ERR(queue_campaign_find(q, 2, "big", &c), QUEUE_ENOTFOUND);
    EQ_ERR(queue_campaign_get(q, 99, &c), QUEUE_ENOTFOUND);
    int n = 0;
    assert_int_equal(queue_campaigns(q, 1, count_cb, &n), 2);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(queue_campaigns(q, 0, count_cb, &n), 3);
    EQ_ERR(queue_campaign_create(q, 1, &base_spec, &boot, NULL), -EROFS);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    /* invalid fields, unknown account */
    struct queue_campaign_spec bad = base_spec;
    bad.name = "x";
    bad.subject = "two\r\nlines";
    EQ_ERR(queue_campaign_create(q, 1, &bad, &boot, NULL), -EINVAL);
    bad.subject = "ok";
    bad.name = "";
    EQ_ERR(queue_campaign_create(q, 1, &bad, &boot, NULL), -EINVAL);
    bad.name = "x";
    bad.html = "bad \x01 byte";
    EQ_ERR(queue_campaign_create(q, 1, &bad, &boot, NULL), -EINVAL);
    bad.html = "bad \xff utf8";
    EQ_ERR(queue_campaign_create(q, 1, &bad, &boot, NULL), -EINVAL);
    bad.html = "fine";
    bad.list = 0;
    EQ_ERR(queue_campaign_create(q, 1, &bad, &boot, NULL), -EINVAL);
    bad.list = 7;
    EQ_ERR(queue_campaign_create(q, 9, &bad, &boot, NULL), QUEUE_ENOTFOUND);
    /* update a draft: rename, drop text, new subject */
    struct queue_campaign_spec up = { .name = "summer", .text = NULL,
                                      .subject = "New" };
    E(queue_campaign_update(q, id, QUEUE_CF_NAME | QUEUE_CF_TEXT |
                            QUEUE_CF_SUBJECT, &up, &boot));
    last_audit(q, "campaign update", "changed name, subject, text");
    E(queue_campaign_find(q, 1, "summer", &c));
    assert_null(c.text);
    assert_string_equal(c.subject, "New");
    assert_string_equal(c.html, base_spec.html);
    queue_campaign_clear(&c);
    EQ_ERR(queue_campaign_find(q, 1, "spring sale", &c), QUEUE_ENOTFOUND);
    /* the old name is free again, the new one taken */
    up.name = "big";
    EQ_ERR(queue_campaign_update(q, id, QUEUE_CF_NAME, &up, &boot), -EEXIST);
    EQ_ERR(queue_campaign_update(q, 99, QUEUE_CF_NAME, &up, &boot),
           QUEUE_ENOTFOUND);
    struct queue_audit_verdict v;
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    queue_close(q);
    free(html);
}

/* ------------------------------------------------------------- states */

/* Recipients r<i>@d<i%3>.example with contacts from+i. */
static void batch_make(struct queue_campaign_rcpt *r, char (*buf)[64],
                       size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], 64, "r%llu@d%llu.example",
                 (unsigned long long)(from + i),
                 (unsigned long long)((from + i) % 3));
        r[i].rcpt = buf[i];
        r[i].contact = from + i;
    }
}

struct batch_wait {
    int status;
    uint64_t first;
};

static void batch_done(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct batch_wait *w = arg;
    (void)msg;
    w->status = status;
    w->first = first;
}

/* Submit one send batch and wait for it; returns its status. */
static int send_batch(struct queue *q, uint64_t id, uint64_t after,
                      uint64_t last, size_t n, uint64_t suppressed,
                      uint64_t *first)
{
    struct queue_campaign_rcpt r[16];
    char buf[16][64];
    struct batch_wait w = { -1, 0 };
    assert_true(n <= 16);
    batch_make(r, buf, n, after + 1);
    int err = queue_campaign_submit_batch(q, id, after, last, r, n,
                                          suppressed, NULL, batch_done, &w);
    if (err)
        return err;
    E(queue_flush(q));
    if (first)
        *first = w.first;
    return w.status;
}

static int campaign_state(struct queue *q, uint64_t id)
{
    struct queue_campaign c;
    E(queue_campaign_get(q, id, &c));
    queue_campaign_clear(&c);
    return c.state;
}

/* Record outcome type for deliveries first..first+n-1. */
static void outcomes(struct queue *q, uint64_t first, size_t n, int type)
{
    struct queue_outcome o[16];
    for (size_t i = 0; i < n; i++)
        o[i] = (struct queue_outcome){ .delivery = first + i, .type = type,
                                       .code = 250 };
    E(queue_record_outcomes(q, o, n));
}

/* finished is the last terminal outcome's time: recorded when the
 * campaign's queue empties (a send still running may empty it more than
 * once: the last one counts), and in a spool whose status record has no
 * mark (written before there was one) taken from the event log. */
static void test_finished_time(void **state)
{
    struct tdir *t = *state;
    struct queue_campaign c;
    uint64_t id, cursor, first, first2;
    int st;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, 0);
    E(queue_campaign_create(q, 1, &base_spec, &boot, &id));
    E(queue_campaign_send_begin(q, id, &boot, &cursor));
    E(send_batch(q, id, 0, 2, 2, 0, &first));
    test_clock_set(T0 + 10);
    outcomes(q, first, 2, QUEUE_EV_DELIVERED);   /* emptied, not complete */
    E(send_batch(q, id, 2, 4, 2, 0, &first2));
    E(queue_campaign_send_end(q, id, 4, &boot));
    test_clock_set(T0 + 20);
    outcomes(q, first2, 1, QUEUE_EV_BOUNCED);
    test_clock_set(T0 + 30);
    outcomes(q, first2 + 1, 1, QUEUE_EV_EXPIRED);
    test_clock_set(T0 + 90);
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_DONE);
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.finished, T0 + 30);
    queue_campaign_clear(&c);

    /* a second campaign done under an older sluice: no mark */
    struct queue_campaign_spec s2 = base_spec;
    uint64_t id2;
    s2.name = "old";
    E(queue_campaign_create(q, 1, &s2, &boot, &id2));
    E(queue_campaign_send_begin(q, id2, &boot, &cursor));
    E(send_batch(q, id2, 0, 2, 2, 0, &first));
    E(queue_campaign_send_end(q, id2, 2, &boot));
    test_clock_set(T0 + 100);
    outcomes(q, first, 1, QUEUE_EV_DELIVERED);
    test_clock_set(T0 + 110);
    outcomes(q, first + 1, 1, QUEUE_EV_DELIVERED);
    queue_close(q);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char key[9] = { 'p' }, rec[64];
    for (int b = 0; b < 8; b++)
        key[1 + b] = (unsigned char)(id2 >> (8 * (7 - b)));
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "campaigns", 0, &dbi), 0);
    MDB_val k = { sizeof key, key }, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_true(v.mv_size <= sizeof rec && v.mv_size >= 19);
    memcpy(rec, v.mv_data, v.mv_size);
    memset(rec + 11, 0, 8);   /* u8 fmt, state, flags, i64 started: then
                               * i64 finished (campaign_int.h) */
    v.mv_data = rec;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    test_clock_set(T0 + 500);
    q = open_q(t->path, 0, NULL);
    E(queue_campaign_settle(q, id2, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_DONE);
    E(queue_campaign_get(q, id2, &c));
    assert_int_equal(c.finished, T0 + 110);
    queue_campaign_clear(&c);
    queue_close(q);
}

/* Send, pause, resume, the cursor, done only when all is terminal. */
static void test_states(void **state)
{
    struct tdir *t = *state;
    struct queue_campaign c;
    struct queue_counts k;
    struct ctl_find f;
    uint64_t id, cursor = 99, first = 0, first2 = 0;
    int st;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, 0);
    struct queue_actor alice = { "alice", "password", QUEUE_ROLE_SENDER, 1 };

    E(queue_campaign_create(q, 1, &base_spec, &boot, &id));
    EQ_ERR(queue_campaign_pause(q, id, NULL, &alice), QUEUE_ESTATE);
    EQ_ERR(queue_campaign_resume(q, id, &alice), QUEUE_ESTATE);
    /* a batch before the send began writes nothing */
    EQ_ERR(send_batch(q, id, 0, 5, 5, 0, NULL), QUEUE_ESTATE);
    E(queue_counts_campaign(q, id, &k));
    assert_int_equal(k.enqueued, 0);

    E(queue_campaign_send_begin(q, id, &alice, &cursor));
    assert_int_equal(cursor, 0);
    last_audit(q, "campaign send", "to list 7");
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.state, QUEUE_CAMPAIGN_SENDING);
    assert_int_equal(c.started, T0);
    queue_campaign_clear(&c);
    EQ_ERR(queue_campaign_update(q, id, QUEUE_CF_SUBJECT, &base_spec, &boot),
           QUEUE_ESTATE);

    /* contacts 1..10: 5 queued, 5 suppressed; a stale cursor fails */
    E(send_batch(q, id, 0, 10, 5, 5, &first));
    EQ_ERR(send_batch(q, id, 0, 10, 5, 5, NULL), QUEUE_ESTATE);
    EQ_ERR(send_batch(q, id, 5, 10, 5, 5, NULL), QUEUE_ESTATE);
    E(queue_counts_campaign(q, id, &k));
    assert_int_equal(k.enqueued, 5);
    assert_int_equal(k.queued, 5);
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.account, 1);    /* from the campaign */
    assert_int_equal(d.campaign, id);
    assert_int_equal(d.ref, 1);
    assert_string_equal(d.rcpt, "r1@d1.example");

    /* pause and resume: state, control and audit together */
    test_clock_set(T0 + 10);
    E(queue_campaign_pause(q, id, "checking links", &alice));
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_PAUSED);
    assert_true(has_ctl(q, QUEUE_CTL_CAMPAIGN, id, &f));
    assert_string_equal(f.who, "alice");
    assert_string_equal(f.reason, "checking links");
    last_audit(q, "campaign pause", "campaign 1 (spring sale)");
    EQ_ERR(queue_campaign_pause(q, id, NULL, &alice), QUEUE_ESTATE);
    /* batches still queue while paused (the engine holds them) */
    E(send_batch(q, id, 10, 12, 2, 0, &first2));
    E(queue_campaign_resume(q, id, &alice));
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_SENDING);
    assert_false(has_ctl(q, QUEUE_CTL_CAMPAIGN, id, NULL));
    last_audit(q, "campaign resume", NULL);
    /* a pause with an end: the control keeps it (it reads as not paused
     * from then on); a resume ends it like any other */
    E(queue_campaign_pause_until(q, id, NULL, T0 + 70, &alice));
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_PAUSED);
    assert_true(has_ctl(q, QUEUE_CTL_CAMPAIGN, id, &f));
    assert_int_equal(f.c.until, T0 + 70);
    assert_true(queue_control_active(&f.c, T0 + 69));
    assert_false(queue_control_active(&f.c, T0 + 70));
    EQ_ERR(queue_campaign_pause_until(q, id, NULL, -1, &alice), -EINVAL);
    E(queue_campaign_resume(q, id, &alice));
    assert_false(has_ctl(q, QUEUE_CTL_CAMPAIGN, id, NULL));

    /* end with the wrong cursor fails; with the right one completes */
    EQ_ERR(queue_campaign_send_end(q, id, 10, &alice), QUEUE_ESTATE);
    E(queue_campaign_send_end(q, id, 12, &alice));
    last_audit(q, "campaign send", "7 queued, 5 suppressed");
    E(queue_campaign_get(q, id, &c));
    assert_true(c.send_complete);
    assert_int_equal(c.recipients, 7);
    assert_int_equal(c.suppressed_at_send, 5);
    assert_int_equal(c.send_cursor, 12);
    queue_campaign_clear(&c);
    EQ_ERR(queue_campaign_send_begin(q, id, &alice, &cursor), QUEUE_ESTATE);
    EQ_ERR(send_batch(q, id, 12, 13, 1, 0, NULL), QUEUE_ESTATE);

    /* never done with mail unsent: 6 of 7 terminal is still sending */
    outcomes(q, first, 4, QUEUE_EV_DELIVERED);
    outcomes(q, first + 4, 1, QUEUE_EV_BOUNCED);
    outcomes(q, first2, 1, QUEUE_EV_EXPIRED);
    outcomes(q, first2 + 1, 1, QUEUE_EV_DEFERRED);
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_SENDING);
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_SENDING);
    /* paused with the last one outstanding: still not done */
    E(queue_campaign_pause(q, id, NULL, &alice));
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_PAUSED);
    test_clock_set(T0 + 100);
    outcomes(q, first2 + 1, 1, QUEUE_EV_DELIVERED);
    /* finished is when the last recipient ended, not when someone looked
     * (campaign_end.c): settled 150 s later, and again later still */
    test_clock_set(T0 + 250);
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_DONE);
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.state, QUEUE_CAMPAIGN_DONE);
    assert_int_equal(c.finished, T0 + 100);
    queue_campaign_clear(&c);
    test_clock_set(T0 + 400);
    E(queue_campaign_settle(q, id, &st));
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.finished, T0 + 100);
    queue_campaign_clear(&c);
    EQ_ERR(queue_campaign_cancel(q, id, NULL, &alice), QUEUE_ESTATE);
    EQ_ERR(queue_campaign_resume(q, id, &alice), QUEUE_ESTATE);

    /* cancel while sending: controls swap, batches stop, final */
    struct queue_campaign_spec s2 = base_spec;
    s2.name = "second";
    uint64_t id2;
    E(queue_campaign_create(q, 1, &s2, &boot, &id2));
    E(queue_campaign_send_begin(q, id2, &alice, &cursor));
    E(send_batch(q, id2, 0, 3, 3, 0, NULL));
    E(queue_campaign_pause(q, id2, NULL, &alice));
    E(queue_campaign_cancel(q, id2, "wrong list", &alice));
    assert_int_equal(campaign_state(q, id2), QUEUE_CAMPAIGN_CANCELLED);
    assert_false(has_ctl(q, QUEUE_CTL_CAMPAIGN, id2, NULL));
    assert_true(has_ctl(q, QUEUE_CTL_CANCELLED, id2, &f));
    assert_string_equal(f.reason, "wrong list");
    last_audit(q, "campaign cancel", "campaign 2 (second)");
    EQ_ERR(send_batch(q, id2, 3, 6, 3, 0, NULL), QUEUE_ESTATE);
    EQ_ERR(queue_campaign_send_end(q, id2, 3, &alice), QUEUE_ESTATE);
    EQ_ERR(queue_campaign_resume(q, id2, &alice), QUEUE_ESTATE);
    E(queue_campaign_settle(q, id2, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_CANCELLED);

    /* cancel a draft: no control, nothing queued */
    s2.name = "third";
    uint64_t id3;
    E(queue_campaign_create(q, 1, &s2, &boot, &id3));
    E(queue_campaign_cancel(q, id3, NULL, &alice));
    assert_false(has_ctl(q, QUEUE_CTL_CANCELLED, id3, NULL));
    EQ_ERR(queue_campaign_send_begin(q, id3, &alice, &cursor), QUEUE_ESTATE);

    /* every contact suppressed: an empty batch, then done at once */
    s2.name = "fourth";
    uint64_t id4;
    E(queue_campaign_create(q, 1, &s2, &boot, &id4));
    E(queue_campaign_send_begin(q, id4, &alice, &cursor));
    E(send_batch(q, id4, 0, 40, 0, 40, NULL));
    E(queue_campaign_send_end(q, id4, 40, &alice));
    E(queue_campaign_get(q, id4, &c));
    assert_int_equal(c.state, QUEUE_CAMPAIGN_DONE);
    assert_int_equal(c.suppressed_at_send, 40);
    assert_int_equal(c.recipients, 0);
    queue_campaign_clear(&c);

    EQ_ERR(queue_campaign_send_begin(q, 77, &alice, &cursor),
           QUEUE_ENOTFOUND);
    EQ_ERR(send_batch(q, 77, 0, 1, 1, 0, NULL), QUEUE_ENOTFOUND);
    struct queue_audit_verdict v;
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    queue_close(q);
}

/* A send cut short (the spool closed mid-way) continues from its cursor
 * after a reopen; the state survives. */
static void test_resume_send(void **state)
{
    struct tdir *t = *state;
    struct queue_campaign c;
    struct queue_counts k;
    uint64_t id, cursor;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, 0);
    E(queue_campaign_create(q, 2, &base_spec, &boot, &id));
    E(queue_campaign_send_begin(q, id, &boot, &cursor));
    E(send_batch(q, id, 0, 8, 8, 0, NULL));
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_campaign_send_begin(q, id, &boot, &cursor));
    assert_int_equal(cursor, 8);
    last_audit(q, "campaign send", "after contact 8");
    E(send_batch(q, id, 8, 12, 4, 0, NULL));
    E(queue_campaign_send_end(q, id, 12, &boot));
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.recipients, 12);
    assert_int_equal(c.state, QUEUE_CAMPAIGN_SENDING);
    assert_int_equal(c.account, 2);
    queue_campaign_clear(&c);
    E(queue_counts_campaign(q, id, &k));
    assert_int_equal(k.enqueued, 12);
    E(queue_counts_account(q, 2, &k));
    assert_int_equal(k.enqueued, 12);
    queue_close(q);
}

/* queue_import_begin() result callback: not needed here. */
static void no_results(void *arg, const struct queue_import_result *r)
{
    (void)arg;
    (void)r;
}

/* queue_campaign_send_all() queues every contact not suppressed, moves
 * the cursor to the last, counts what it skipped; run again from the end
 * it queues nothing; run from a stale cursor (another send moved it) it
 * fails with QUEUE_ESTATE and queues nothing. */
static void test_send_all(void **state)
{
    struct tdir *t = *state;
    struct queue_import *im;
    struct queue_import_counts n;
    struct queue_campaign c;
    struct queue_counts k;
    uint64_t list, id, cursor;
    char addr[64];
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, 0);
    E(queue_list_create(q, 2, "news", &boot, &list));
    E(queue_import_begin(q, list, 2, NULL, 0, no_results, NULL, &im));
    for (unsigned i = 1; i <= 25; i++) {
        snprintf(addr, sizeof addr, "c%u@example.com", i);
        E(queue_import_add(im, i, addr, NULL, NULL));
    }
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 25);
    /* on acme's list, which shop shares */
    E(queue_suppress_add(q, 2, "c3@example.com", "asked", "cli", &boot));

    struct queue_campaign_spec spec = base_spec;
    spec.list = list;
    E(queue_campaign_create(q, 2, &spec, &boot, &id));
    E(queue_campaign_send_begin(q, id, &boot, &cursor));
    struct queue_send_run run = { .cursor = cursor };
    E(queue_campaign_send_all(q, id, list, 1, &run));
    assert_int_equal(run.contacts, 25);
    assert_int_equal(run.queued, 24);
    assert_int_equal(run.suppressed, 1);
    assert_int_equal(run.invalid, 0);
    assert_int_equal(run.cursor, 25);
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.recipients, 24);
    assert_int_equal(c.suppressed_at_send, 1);
    assert_int_equal(c.send_cursor, 25);
    queue_campaign_clear(&c);

    struct queue_send_run again = { .cursor = run.cursor };
    E(queue_campaign_send_all(q, id, list, 1, &again));
    assert_int_equal(again.contacts, 0);
    assert_int_equal(again.queued, 0);
    struct queue_send_run stale = { .cursor = 0 };
    EQ_ERR(queue_campaign_send_all(q, id, list, 1, &stale), QUEUE_ESTATE);
    E(queue_counts_campaign(q, id, &k));
    assert_int_equal(k.enqueued, 24);
    E(queue_campaign_send_end(q, id, run.cursor, &boot));
    queue_close(q);
}

/* ---------------------------------------------------------- scheduled */

/* Recipients queued for later are not claimable before their time, the
 * campaign is scheduled until then, and their age counts from then. */
static void test_scheduled(void **state)
{
    struct tdir *t = *state;
    struct queue_campaign c;
    struct queue_claim cl[32];
    uint64_t id, cursor, first;
    int st;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, QUEUE_OPEN_CLAIM);

    /* the plain queue function */
    struct queue_campaign_rcpt r[4];
    char buf[4][64];
    batch_make(r, buf, 4, 100);
    struct batch_wait w = { -1, 0 };
    E(queue_submit_campaign_at(q, 1, 50, r, 4, T0 + 600, NULL, batch_done,
                               &w));
    E(queue_flush(q));
    E(w.status);
    assert_int_equal(queue_claim(q, T0, cl, 32), 0);
    assert_int_equal(queue_claim(q, T0 + 599, cl, 32), 0);
    assert_int_equal(queue_claim(q, T0 + 600, cl, 32), 4);
    assert_int_equal(cl[0].due, T0 + 600);
    assert_int_equal(cl[0].created, T0 + 600);
    for (int i = 0; i < 4; i++)
        queue_release(q, cl[i].id);
    /* a due time in the past means now */
    batch_make(r, buf, 1, 200);
    E(queue_submit_campaign_at(q, 1, 51, r, 1, T0 - 50, NULL, batch_done,
                               &w));
    E(queue_flush(q));
    assert_int_equal(queue_claim(q, T0, cl, 32), 1);
    assert_int_equal(cl[0].due, T0);
    queue_release(q, cl[0].id);

    /* a campaign scheduled an hour ahead */
    struct queue_campaign_spec s = base_spec;
    s.schedule = T0 + 3600;
    E(queue_campaign_create(q, 1, &s, &boot, &id));
    E(queue_campaign_send_begin(q, id, &boot, &cursor));
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_SCHEDULED);
    last_audit(q, "campaign send", "due at");
    E(send_batch(q, id, 0, 5, 5, 0, &first));
    E(queue_campaign_send_end(q, id, 5, &boot));
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.next_attempt, T0 + 3600);
    test_clock_set(T0 + 700);
    int n = queue_claim(q, T0 + 700, cl, 32);
    assert_int_equal(n, 5);   /* the earlier five, not the campaign's */
    for (int i = 0; i < n; i++) {
        assert_int_not_equal(cl[i].campaign, id);
        queue_release(q, cl[i].id);
    }
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_SCHEDULED);
    /* paused and resumed before its time: scheduled again */
    E(queue_campaign_pause(q, id, NULL, &boot));
    E(queue_campaign_resume(q, id, &boot));
    assert_int_equal(campaign_state(q, id), QUEUE_CAMPAIGN_SCHEDULED);

    test_clock_set(T0 + 3600);
    n = queue_claim(q, T0 + 3600, cl, 32);
    assert_int_equal(n, 10);
    int mine = 0;
    for (int i = 0; i < n; i++) {
        mine += cl[i].campaign == id;
        queue_release(q, cl[i].id);
    }
    assert_int_equal(mine, 5);
    E(queue_campaign_settle(q, id, &st));
    assert_int_equal(st, QUEUE_CAMPAIGN_SENDING);
    E(queue_campaign_get(q, id, &c));
    assert_int_equal(c.state, QUEUE_CAMPAIGN_SENDING);
    assert_int_equal(c.started, T0 + 3600);
    queue_campaign_clear(&c);
    /* a deferral a day after the schedule is not past the maximum age
     * (5 days from the schedule, not from the enqueue) */
    test_clock_set(T0 + 3600 + 86400);
    struct queue_outcome o = { .delivery = first, .type = QUEUE_EV_DEFERRED,
                               .code = 451 };
    E(queue_record_outcomes(q, &o, 1));
    E(queue_get_delivery(q, first, &d));
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    queue_close(q);
}

/* Cancel makes every queued row of the campaign due at once: scheduled
 * ahead, deferred for a retry or parked; other campaigns' rows stay. */
static void test_cancel_ends_all(void **state)
{
    struct tdir *t = *state;
    struct queue_claim cl[32];
    struct queue_delivery d;
    uint64_t a, b, c, cursor, fa = 0, fb = 0, fc = 0;
    test_clock_set(T0);
    struct queue *q = campaign_spool(t, QUEUE_OPEN_CLAIM);

    /* a and b scheduled for the same second, two hours ahead */
    struct queue_campaign_spec s = base_spec;
    s.schedule = T0 + 7200;
    E(queue_campaign_create(q, 1, &s, &boot, &a));
    s.name = "other";
    E(queue_campaign_create(q, 1, &s, &boot, &b));
    E(queue_campaign_send_begin(q, a, &boot, &cursor));
    E(send_batch(q, a, 0, 6, 6, 0, &fa));
    E(queue_campaign_send_begin(q, b, &boot, &cursor));
    E(send_batch(q, b, 0, 4, 4, 0, &fb));
    /* c sending now: one row deferred (retry later), one parked by a
     * pause, one due */
    s.name = "third";
    s.schedule = 0;
    E(queue_campaign_create(q, 1, &s, &boot, &c));
    E(queue_campaign_send_begin(q, c, &boot, &cursor));
    E(send_batch(q, c, 0, 3, 3, 0, &fc));
    assert_int_equal(queue_claim(q, T0, cl, 32), 3);
    E(queue_campaign_pause(q, c, NULL, &boot));
    struct queue_outcome o[2] = {
        { .delivery = fc, .type = QUEUE_EV_DEFERRED, .code = 451 },
        { .delivery = fc + 1, .type = QUEUE_EV_NONE,
          .retry_at = queue_park_time(c) },
    };
    E(queue_record_outcomes(q, o, 2));
    queue_release(q, fc + 2);
    E(queue_get_delivery(q, fc, &d));
    assert_true(d.next_attempt > T0);
    E(queue_get_delivery(q, fc + 1, &d));
    assert_int_equal(d.next_attempt, queue_park_time(c));

    test_clock_set(T0 + 10);
    E(queue_campaign_cancel(q, a, NULL, &boot));
    for (uint64_t i = 0; i < 6; i++) {
        E(queue_get_delivery(q, fa + i, &d));
        assert_int_equal(d.next_attempt, T0 + 10);
    }
    for (uint64_t i = 0; i < 4; i++) {
        E(queue_get_delivery(q, fb + i, &d));
        assert_int_equal(d.next_attempt, T0 + 7200);
    }
    int n = queue_claim(q, T0 + 10, cl, 32);
    assert_int_equal(n, 7);   /* a's six and c's due one */
    int mine = 0;
    for (int i = 0; i < n; i++) {
        mine += cl[i].campaign == a;
        /* handed out marked: the engine ends them, never sends them */
        assert_int_equal(cl[i].cancelled, cl[i].campaign == a);
        assert_int_not_equal(cl[i].campaign, b);
        queue_release(q, cl[i].id);
    }
    assert_int_equal(mine, 6);

    E(queue_campaign_cancel(q, c, NULL, &boot));
    for (uint64_t i = 0; i < 3; i++) {
        E(queue_get_delivery(q, fc + i, &d));
        assert_int_equal(d.next_attempt, i == 2 ? T0 : T0 + 10);
    }
    assert_int_equal(queue_claim(q, T0 + 10, cl, 32), 9);
    for (int i = 0; i < 9; i++) {
        assert_true(cl[i].cancelled);
        queue_release(q, cl[i].id);
    }
    /* b is untouched: its rows wait for their schedule */
    assert_int_equal(queue_claim(q, T0 + 7199, cl, 32), 9);
    for (int i = 0; i < 9; i++)
        queue_release(q, cl[i].id);
    assert_int_equal(queue_claim(q, T0 + 7200, cl, 32), 13);
    for (int i = 0; i < 13; i++)
        assert_int_equal(cl[i].cancelled, cl[i].campaign != b);
    queue_close(q);
}

/* -------------------------------------------------------- token secret */

static void test_token_secret(void **state)
{
    struct tdir *t = *state;
    unsigned char a[QUEUE_TOKEN_SECRET], b[QUEUE_TOKEN_SECRET];
    unsigned char zero[QUEUE_TOKEN_SECRET] = { 0 };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    queue_close(q);
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    EQ_ERR(queue_token_secret(q, a), QUEUE_ENOTFOUND);
    queue_close(q);
    q = open_q(t->path, 0, NULL);
    E(queue_token_secret(q, a));
    assert_memory_not_equal(a, zero, sizeof a);
    E(queue_token_secret(q, b));
    assert_memory_equal(a, b, sizeof a);
    queue_close(q);
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_token_secret(q, b));
    assert_memory_equal(a, b, sizeof a);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_states, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_resume_send, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_send_all, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_scheduled, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_ends_all, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_finished_time, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_token_secret, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
