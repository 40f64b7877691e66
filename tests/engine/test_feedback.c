/*
 * test_feedback.c - the feedback library (engine/feedback.h) as sluiced
 * calls it: feedback_ingest() on libuv worker threads, several at once,
 * over a spool with real deliveries.
 *
 * DESCRIPTION
 *   The reports are the samples of tests/tools/feedback (argv[1]) with
 *   their placeholders filled for one delivery each: the VERP token and
 *   the Message-ID made with the spool's secret by the renderer's own
 *   functions.  On uv_queue_work workers (never the loop's thread):
 *     - a Postfix DSN matched by its VERP token records the bounced event
 *       (bad-mailbox) and suppresses the address (source "dsn"), audited
 *       "feedback ingest";
 *     - the same DSN with one character of the token changed is
 *       quarantined as forged (NAME.eml holds its bytes, NAME.reason
 *       says why) and its delivery is untouched;
 *     - an ARF abuse report suppresses (reason "complaint", source "arf"),
 *       audited "feedback complaint";
 *   all three in flight together.  A spool that cannot be written
 *   (opened read-only) makes feedback_ingest() return FEEDBACK_ESPOOL
 *   with the queue's code and keeps nothing: no event, no suppression,
 *   no audit record, no quarantine file, even for a report that would be
 *   quarantined as evidence; the same report then goes through on the
 *   writable spool.  A quarantine that cannot be written returns
 *   FEEDBACK_EQUARANTINE and leaves no file; a caller's refusal
 *   (authorize) quarantines and records nothing.
 */
#include <dirent.h>
#include <pthread.h>
#include <strings.h>
#include <uv.h>

#include "feedback.h"
#include "render.h"
#include "testutil.h"

#define NDELIV 4
#define RDOM "mx.example.net"
#define BOUNCE_DOM "bounces.acme.example"
#define SAMPLE_MAX (64u << 10)

static const char *samples;       /* argv[1]: tests/tools/feedback */

static const struct queue_actor mx = { "sluiced", "smtp:127.0.0.1",
                                       QUEUE_ROLE_OWNER, 0 };

/* One delivery of the spool and what its reports carry. */
struct deliv {
    uint64_t id, campaign;
    char rcpt[64];
    char verp[RENDER_VERP_TOKEN_LEN + 64];
    char msgid[160];
    char fbid[64];
};

struct fixture {
    void *t;                      /* struct tdir, tdir_setup() */
    char spool[128], qdir[128];
    struct deliv d[NDELIV];
};

/* A spool with account acme (1) and NDELIV deliveries of campaign 7,
 * closed again; the tokens of each made with its secret. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(tdir_setup(&f->t), 0);
    tdir_sub(f->t, "spool", f->spool, sizeof f->spool);
    tdir_sub(f->t, "quarantine", f->qdir, sizeof f->qdir);
    struct queue_options o = { .flags = QUEUE_OPEN_NOSYNC };
    struct queue *q = open_q(f->spool, QUEUE_OPEN_CREATE, &o);
    test_acme_shop(q, &mx);
    unsigned char secret[QUEUE_TOKEN_SECRET];
    E(queue_token_secret(q, secret));
    for (size_t i = 0; i < NDELIV; i++) {
        struct deliv *d = &f->d[i];
        snprintf(d->rcpt, sizeof d->rcpt, "user%zu@" RDOM, i);
        struct queue_campaign_rcpt r = { 100 + i, d->rcpt };
        E(queue_enqueue_campaign(q, 1, 7, &r, 1, &d->id));
        d->campaign = 7;
        char tok[RENDER_VERP_TOKEN_LEN + 1], mid[128];
        assert_int_equal(render_verp_token(secret, sizeof secret, d->id, 7,
                                           tok, sizeof tok), 0);
        snprintf(d->verp, sizeof d->verp, "b-%s@" BOUNCE_DOM, tok);
        assert_int_equal(render_msgid(secret, sizeof secret, 7, d->id,
                                      0x1234 + i, mid, sizeof mid), 0);
        snprintf(d->msgid, sizeof d->msgid, "%s@acme.example", mid);
        snprintf(d->fbid, sizeof d->fbid, "7:1:3:sluice");
    }
    queue_close(q);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tdir_teardown(&f->t);
    free(f);
    return 0;
}

/* Append src[0..n) to the growing sample text. */
static void put(char *out, size_t *len, const char *src, size_t n)
{
    assert_true(*len + n < SAMPLE_MAX);
    memcpy(out + *len, src, n);
    *len += n;
}

/* The sample NAME with its placeholders filled for d; malloc'ed. */
static char *sample(const char *name, const struct deliv *d, size_t *len)
{
    char path[512], *raw = malloc(SAMPLE_MAX), *out = malloc(SAMPLE_MAX);
    assert_non_null(raw);
    assert_non_null(out);
    snprintf(path, sizeof path, "%s/%s", samples, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("%s: %s", path, strerror(errno));
    size_t n = fread(raw, 1, SAMPLE_MAX - 1, fp);
    fclose(fp);
    raw[n] = 0;
    const struct { const char *key, *val; } subst[] = {
        { "@@VERP@@", d->verp }, { "@@RCPT@@", d->rcpt },
        { "@@MSGID@@", d->msgid }, { "@@FBID@@", d->fbid },
        { "@@RDOM@@", RDOM },
    };
    *len = 0;
    for (const char *p = raw; *p;) {
        size_t k = 0;
        while (k < sizeof subst / sizeof subst[0] &&
               strncmp(p, subst[k].key, strlen(subst[k].key)))
            k++;
        if (k < sizeof subst / sizeof subst[0]) {
            put(out, len, subst[k].val, strlen(subst[k].val));
            p += strlen(subst[k].key);
        } else {
            put(out, len, p++, 1);
        }
    }
    out[*len] = 0;
    free(raw);
    return out;
}

/* One feedback_ingest() call run on a libuv worker. */
struct job {
    uv_work_t w;
    const struct feedback_ctx *c;
    const char *source;
    char *msg;
    size_t len;
    int rc;
    struct feedback_result r;
    pthread_t ran_on;
    bool done;
};

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    j->ran_on = pthread_self();
    j->rc = feedback_ingest(j->c, j->source, j->msg, j->len, &j->r);
}

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    assert_int_equal(status, 0);
    j->done = true;
}

/* Run every job on the loop's worker pool at once; each ran on a thread
 * other than this (the loop's) one. */
static void run_jobs(struct job *jobs, size_t n)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < n; i++) {
        jobs[i].w.data = &jobs[i];
        assert_int_equal(uv_queue_work(&loop, &jobs[i].w, job_work,
                                       job_after), 0);
    }
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(jobs[i].done);
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
    }
}

/* Events of a delivery: how many, and the last one's type and category. */
struct hist {
    long n;
    int type, category;
};

static int hist_cb(void *arg, const struct queue_event *ev)
{
    struct hist *h = arg;
    h->n++;
    h->type = ev->type;
    h->category = ev->category;
    return 0;
}

static struct hist history(struct queue *q, uint64_t id)
{
    struct hist h = { 0 };
    assert_true(queue_history(q, id, hist_cb, &h) >= 0);
    return h;
}

/* The suppression entry of one address on acme's list. */
struct entry {
    const char *email;
    bool found;
    char reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
};

static int entry_cb(void *arg, const struct queue_suppression *s)
{
    struct entry *e = arg;
    if (!strcasecmp(s->email, e->email)) {
        e->found = true;
        snprintf(e->reason, sizeof e->reason, "%s", s->reason);
        snprintf(e->source, sizeof e->source, "%s", s->source);
    }
    return 0;
}

static struct entry entry_of(struct queue *q, const char *email)
{
    struct entry e = { .email = email };
    assert_true(queue_suppressions(q, 1, 0, NULL, entry_cb, &e) >= 0);
    return e;
}

/* Audit records whose action starts with "feedback": how many, and the
 * last one's action, object and user. */
struct audits {
    int n;
    char action[QUEUE_MAX_AUDIT_ACTION + 1];
    char object[QUEUE_MAX_AUDIT_OBJECT + 1];
    char user[QUEUE_MAX_AUDIT_USER + 1];
};

static int audit_cb(void *arg, const struct queue_audit *r)
{
    struct audits *a = arg;
    if (strncmp(r->action, "feedback", 8))
        return 0;
    a->n++;
    snprintf(a->action, sizeof a->action, "%s", r->action);
    snprintf(a->object, sizeof a->object, "%s", r->object);
    snprintf(a->user, sizeof a->user, "%s", r->user);
    return 0;
}

/* The feedback audit records of the spool. */
static struct audits feedback_audits(struct queue *q)
{
    struct audits a = { 0 };
    assert_true(queue_audit_list(q, 1, audit_cb, &a) >= 0);
    return a;
}

/* Files in dir (0 when it does not exist). */
static int files_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The whole file at path, NUL-terminated; malloc'ed. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = malloc(SAMPLE_MAX);
    if (!fp)
        fail_msg("%s: %s", path, strerror(errno));
    assert_non_null(buf);
    *len = fread(buf, 1, SAMPLE_MAX - 1, fp);
    buf[*len] = 0;
    fclose(fp);
    return buf;
}

/* A DSN by VERP token, a forged token and an ARF complaint, at once on
 * the worker pool. */
static void test_workers(void **state)
{
    struct fixture *f = *state;
    struct queue_options o = { .flags = QUEUE_OPEN_NOSYNC };
    struct queue *q = open_q(f->spool, 0, &o);
    struct feedback_ctx c = { .q = q, .quarantine_dir = f->qdir, .by = mx };
    struct deliv forged = f->d[1];
    char *t = strchr(forged.verp, '-') + 5;   /* one token character */
    *t = *t == 'a' ? 'b' : 'a';
    struct job jobs[3] = {
        { .c = &c, .source = "smtp:dsn" },
        { .c = &c, .source = "smtp:forged" },
        { .c = &c, .source = "smtp:arf" },
    };
    jobs[0].msg = sample("postfix.eml", &f->d[0], &jobs[0].len);
    jobs[1].msg = sample("postfix.eml", &forged, &jobs[1].len);
    jobs[2].msg = sample("arf-yahoo.eml", &f->d[2], &jobs[2].len);
    run_jobs(jobs, 3);

    /* the DSN: bounced, bad-mailbox, suppressed as sluiced does */
    const struct feedback_result *r = &jobs[0].r;
    assert_int_equal(jobs[0].rc, 0);
    assert_string_equal(r->kind, "dsn");
    assert_string_equal(r->outcome, "bounced");
    assert_string_equal(r->matched_by, "verp");
    assert_true(r->have_delivery);
    assert_int_equal(r->d.id, f->d[0].id);
    assert_string_equal(r->category, "bad-mailbox");
    assert_string_equal(r->status, "5.1.1");
    assert_string_equal(r->suppressed, "added");
    assert_string_equal(r->quarantine, "");
    struct hist h = history(q, f->d[0].id);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.type, QUEUE_EV_BOUNCED);
    assert_int_equal(h.category, QUEUE_CAT_BAD_MAILBOX);
    struct entry e = entry_of(q, f->d[0].rcpt);
    assert_true(e.found);
    assert_string_equal(e.reason, "hard bounce: bad-mailbox");
    assert_string_equal(e.source, "dsn");

    /* the forgery: quarantined with its bytes, delivery untouched */
    r = &jobs[1].r;
    assert_int_equal(jobs[1].rc, 0);
    assert_string_equal(r->outcome, "quarantined");
    assert_false(r->have_delivery);
    assert_non_null(strstr(r->reason, "forged VERP token"));
    size_t qlen;
    char *kept = slurp(r->quarantine, &qlen);
    assert_int_equal(qlen, jobs[1].len);
    assert_memory_equal(kept, jobs[1].msg, qlen);
    free(kept);
    char why[4200];
    snprintf(why, sizeof why, "%.*s.reason",
             (int)(strlen(r->quarantine) - 4), r->quarantine);
    kept = slurp(why, &qlen);
    assert_non_null(strstr(kept, "forged VERP token"));
    assert_non_null(strstr(kept, "source: smtp:forged"));
    free(kept);
    assert_int_equal(files_in(f->qdir), 2);
    assert_int_equal(history(q, f->d[1].id).n, 0);
    assert_false(entry_of(q, f->d[1].rcpt).found);

    /* the complaint: suppressed, audited */
    r = &jobs[2].r;
    assert_int_equal(jobs[2].rc, 0);
    assert_string_equal(r->kind, "arf");
    assert_string_equal(r->outcome, "complaint");
    assert_string_equal(r->category, "abuse");
    assert_string_equal(r->suppressed, "added");
    assert_int_equal(history(q, f->d[2].id).n, 0);
    e = entry_of(q, f->d[2].rcpt);
    assert_true(e.found);
    assert_string_equal(e.reason, "complaint");
    assert_string_equal(e.source, "arf");

    /* one "feedback ingest" each for the DSN and the complaint, plus the
     * complaint's own record, all as the context's actor */
    struct audits a = feedback_audits(q);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.user, "sluiced");
    for (int i = 0; i < 3; i++)
        free(jobs[i].msg);
    queue_close(q);
}

/* A spool that cannot be written: FEEDBACK_ESPOOL, nothing kept; then
 * the same reports on the writable spool go through. */
static void test_spool_error(void **state)
{
    struct fixture *f = *state;
    struct queue_options o = { .flags = QUEUE_OPEN_NOSYNC };
    struct queue *q = open_q(f->spool, QUEUE_OPEN_READONLY, &o);
    struct feedback_ctx c = { .q = q, .quarantine_dir = f->qdir, .by = mx };
    struct deliv fbonly = f->d[3];
    snprintf(fbonly.verp, sizeof fbonly.verp, "someone@" RDOM);
    snprintf(fbonly.msgid, sizeof fbonly.msgid, "x.1@" RDOM);
    struct job jobs[3] = {
        { .c = &c, .source = "dsn" }, { .c = &c, .source = "arf" },
        { .c = &c, .source = "fbid" },
    };
    jobs[0].msg = sample("postfix.eml", &f->d[0], &jobs[0].len);
    jobs[1].msg = sample("arf-yahoo.eml", &f->d[2], &jobs[1].len);
    jobs[2].msg = sample("fbid-only.eml", &fbonly, &jobs[2].len);
    run_jobs(jobs, 3);
    for (int i = 0; i < 3; i++) {
        const struct feedback_result *r = &jobs[i].r;
        if (jobs[i].rc != FEEDBACK_ESPOOL)
            fail_msg("%s: %d (%s) %s", jobs[i].source, jobs[i].rc,
                     r->outcome, r->error);
        assert_true(r->spool_err < 0);
        assert_string_equal(r->outcome, "failed");
        assert_string_equal(r->quarantine, "");
        assert_non_null(strstr(r->error, jobs[i].source));
        assert_non_null(strstr(r->error, queue_strerror(r->spool_err)));
    }
    assert_true(jobs[2].r.unauthenticated);
    queue_close(q);
    assert_int_equal(files_in(f->qdir), 0);

    q = open_q(f->spool, 0, &o);
    c.q = q;
    assert_int_equal(history(q, f->d[0].id).n, 0);
    assert_false(entry_of(q, f->d[0].rcpt).found);
    assert_false(entry_of(q, f->d[2].rcpt).found);
    assert_int_equal(feedback_audits(q).n, 0);
    run_jobs(jobs, 3);
    assert_int_equal(jobs[0].rc, 0);
    assert_string_equal(jobs[0].r.outcome, "bounced");
    assert_int_equal(jobs[1].rc, 0);
    assert_string_equal(jobs[1].r.outcome, "complaint");
    assert_int_equal(jobs[2].rc, 0);
    assert_string_equal(jobs[2].r.outcome, "quarantined");
    assert_true(jobs[2].r.unauthenticated);
    assert_int_equal(history(q, f->d[0].id).n, 1);
    assert_int_equal(history(q, f->d[3].id).n, 0);
    assert_false(entry_of(q, f->d[3].rcpt).found);
    assert_int_equal(files_in(f->qdir), 2);
    for (int i = 0; i < 3; i++)
        free(jobs[i].msg);
    queue_close(q);
}

/* A quarantine that cannot be written, and a caller that refuses. */
static int refuse(void *arg, uint32_t account, const char *object,
                  struct queue_actor *by, char *why, size_t cap)
{
    int *calls = arg;
    (*calls)++;
    assert_int_equal(account, 1);
    assert_non_null(strstr(object, "delivery "));
    snprintf(why, cap, "not on this account");
    return -1;
}

static void test_quarantine_and_refusal(void **state)
{
    struct fixture *f = *state;
    struct queue_options o = { .flags = QUEUE_OPEN_NOSYNC };
    struct queue *q = open_q(f->spool, 0, &o);
    char notdir[160], below[200];
    tdir_sub(f->t, "plain-file", notdir, sizeof notdir);
    FILE *fp = fopen(notdir, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(below, sizeof below, "%s/q", notdir);
    struct feedback_ctx c = { .q = q, .quarantine_dir = notdir, .by = mx };
    struct job j = { .c = &c, .source = "garbage" };
    j.msg = strdup("this is not a report\r\n");
    j.len = strlen(j.msg);
    run_jobs(&j, 1);
    assert_int_equal(j.rc, FEEDBACK_EQUARANTINE);
    assert_string_equal(j.r.outcome, "quarantined");
    assert_string_equal(j.r.quarantine, "");
    assert_non_null(strstr(j.r.error, notdir));
    c.quarantine_dir = below;
    run_jobs(&j, 1);
    assert_int_equal(j.rc, FEEDBACK_EQUARANTINE);
    assert_non_null(strstr(j.r.error, below));
    free(j.msg);

    int calls = 0;
    c.quarantine_dir = f->qdir;
    c.authorize = refuse;
    c.arg = &calls;
    struct job k = { .c = &c, .source = "refused" };
    k.msg = sample("postfix.eml", &f->d[1], &k.len);
    run_jobs(&k, 1);
    assert_int_equal(k.rc, 0);
    assert_int_equal(calls, 1);
    assert_true(k.r.refused);
    assert_string_equal(k.r.outcome, "quarantined");
    assert_string_equal(k.r.reason, "refused: not on this account");
    assert_int_equal(files_in(f->qdir), 2);
    assert_int_equal(history(q, f->d[1].id).n, 0);
    assert_false(entry_of(q, f->d[1].rcpt).found);
    free(k.msg);
    queue_close(q);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_feedback SAMPLE_DIR\n");
        return 2;
    }
    samples = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_and_refusal, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
