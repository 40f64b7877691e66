/*
 * test_controls.c - paused domains and sites (queue/control.c) and the
 * schema 1 -> 2 upgrade that brought them (queue/schema.c).
 *
 * DESCRIPTION
 *   Pause, list and resume; pauses survive close and reopen; resuming what
 *   is not paused is QUEUE_ENOTFOUND; bad names and texts are refused and
 *   long texts cut on a character boundary; the generation counter moves
 *   on every change, including one made by another process.  A schema-1
 *   spool, made from a current one with raw LMDB (schema set to 1, the
 *   controls database and generation removed), opens read-only with no
 *   controls and unchanged, and a writable open upgrades it to the current
 *   version with its deliveries intact.
 */
#include <lmdb.h>

#include "testutil.h"

/* The paused entries of q, collected. */
struct ctl_list {
    struct queue_control c[8];
    size_t n;
};

static int collect(void *arg, const struct queue_control *c)
{
    struct ctl_list *l = arg;
    if (l->n < 8)
        l->c[l->n] = *c;
    l->n++;
    return 0;
}

static long list(struct queue *q, struct ctl_list *l)
{
    memset(l, 0, sizeof *l);
    return queue_controls(q, collect, l);
}

static uint64_t gen_of(struct queue *q)
{
    uint64_t g = 99;
    E(queue_controls_gen(q, &g));
    return g;
}

/* Pause a domain and a site, list them in order, resume them. */
static void test_round_trip(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l;
    test_clock_set(1700000000);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    assert_int_equal(list(q, &l), 0);
    E(queue_pause(q, QUEUE_CTL_SITE, "google", "complaints", "alice"));
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "gmail.com", NULL, NULL));
    assert_int_equal(list(q, &l), 2);
    /* domains sort before sites */
    assert_int_equal(l.c[0].kind, QUEUE_CTL_DOMAIN);
    assert_string_equal(l.c[0].name, "gmail.com");
    assert_string_equal(l.c[0].reason, "");
    assert_string_equal(l.c[0].who, "");
    assert_int_equal(l.c[1].kind, QUEUE_CTL_SITE);
    assert_string_equal(l.c[1].name, "google");
    assert_string_equal(l.c[1].reason, "complaints");
    assert_string_equal(l.c[1].who, "alice");
    assert_int_equal(l.c[1].since, 1700000000);

    /* pausing again replaces reason and who, keeps since */
    test_clock_set(1700000100);
    E(queue_pause(q, QUEUE_CTL_SITE, "google", "still bad", "bob"));
    assert_int_equal(list(q, &l), 2);
    assert_string_equal(l.c[1].reason, "still bad");
    assert_string_equal(l.c[1].who, "bob");
    assert_int_equal(l.c[1].since, 1700000000);

    /* the kind is part of the key: a site is not the domain of that name */
    EQ_ERR(queue_resume(q, QUEUE_CTL_DOMAIN, "google"), QUEUE_ENOTFOUND);
    E(queue_resume(q, QUEUE_CTL_SITE, "google"));
    assert_int_equal(list(q, &l), 1);
    assert_string_equal(l.c[0].name, "gmail.com");
    E(queue_resume(q, QUEUE_CTL_DOMAIN, "gmail.com"));
    assert_int_equal(list(q, &l), 0);
    EQ_ERR(queue_resume(q, QUEUE_CTL_DOMAIN, "gmail.com"), QUEUE_ENOTFOUND);
    EQ_ERR(queue_resume(q, QUEUE_CTL_SITE, "never.paused"), QUEUE_ENOTFOUND);
    queue_close(q);
}

/* A pause is in the spool: it outlives the handle that set it and is seen
 * by a read-only open. */
static void test_survives_reopen(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "yahoo.com", "blocklisted", "ops"));
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    assert_int_equal(list(q, &l), 1);
    assert_string_equal(l.c[0].name, "yahoo.com");
    assert_string_equal(l.c[0].reason, "blocklisted");
    EQ_ERR(queue_resume(q, QUEUE_CTL_DOMAIN, "yahoo.com"), -EROFS);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_resume(q, QUEUE_CTL_DOMAIN, "yahoo.com"));
    queue_close(q);
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    assert_int_equal(list(q, &l), 0);
    queue_close(q);
}

/* Bad kinds, names and texts are refused with -EINVAL and store nothing;
 * long texts are cut to their caps without splitting a character. */
static void test_invalid(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l;
    char longname[QUEUE_MAX_CTL_NAME + 2], text[600];
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    uint64_t g0 = gen_of(q);

    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    const char *bad[] = { "", "Gmail.com", "a b", "tab\there", "nl\n",
                          "del\x7f", longname };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EQ_ERR(queue_pause(q, QUEUE_CTL_DOMAIN, bad[i], NULL, NULL), -EINVAL);
        EQ_ERR(queue_resume(q, QUEUE_CTL_SITE, bad[i]), -EINVAL);
    }
    EQ_ERR(queue_pause(q, QUEUE_CTL_DOMAIN, NULL, NULL, NULL), -EINVAL);
    EQ_ERR(queue_pause(q, 'z', "example.com", NULL, NULL), -EINVAL);
    EQ_ERR(queue_resume(q, 0, "example.com"), -EINVAL);
    EQ_ERR(queue_pause(q, QUEUE_CTL_DOMAIN, "example.com", "two\nlines",
                       NULL), -EINVAL);
    EQ_ERR(queue_pause(q, QUEUE_CTL_DOMAIN, "example.com", NULL, "es\033c"),
           -EINVAL);
    assert_int_equal(list(q, &l), 0);
    assert_int_equal(gen_of(q), g0);

    /* the longest name is fine; so is UTF-8 */
    longname[QUEUE_MAX_CTL_NAME] = 0;
    E(queue_pause(q, QUEUE_CTL_DOMAIN, longname, NULL, NULL));
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "b\xc3\xbc" "cher.de", NULL, NULL));

    /* 300 two-byte characters: cut to 127 characters (254 bytes) */
    for (int i = 0; i < 300; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[599] = 0;   /* ends in a lone lead byte past the cap: harmless */
    E(queue_pause(q, QUEUE_CTL_SITE, "big", text, text));
    assert_int_equal(list(q, &l), 3);
    assert_string_equal(l.c[0].name, longname);
    assert_string_equal(l.c[1].name, "b\xc3\xbc" "cher.de");
    assert_int_equal(strlen(l.c[2].reason), 254);
    assert_int_equal(strlen(l.c[2].who), 126);
    assert_memory_equal(l.c[2].reason, text, 254);
    queue_close(q);
}

/* The generation moves on every committed change, not on a failed one,
 * and a change made by another process is seen through an open handle.
 * The other process is forked before this one opens the spool (LMDB
 * handles must not cross a fork) and waits for a byte on a pipe. */
static void test_generation(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    int go[2];
    char ch;

    queue_close(q);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct queue *cq;
        struct queue_options o = { 0 };
        close(go[1]);
        if (!read_full(go[0], &ch, 1))
            _exit(2);
        int err = queue_open(&cq, t->path, &o);
        if (!err)
            err = queue_pause(cq, QUEUE_CTL_SITE, "microsoft", "x", "child");
        queue_close(cq);
        _exit(err ? 1 : 0);
    }
    close(go[0]);

    q = open_q(t->path, 0, NULL);
    uint64_t g0 = gen_of(q);
    assert_int_equal(g0, 0);
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "a.example", NULL, NULL));
    uint64_t g1 = gen_of(q);
    assert_true(g1 > g0);
    EQ_ERR(queue_resume(q, QUEUE_CTL_DOMAIN, "b.example"), QUEUE_ENOTFOUND);
    assert_int_equal(gen_of(q), g1);
    E(queue_resume(q, QUEUE_CTL_DOMAIN, "a.example"));
    uint64_t g2 = gen_of(q);
    assert_true(g2 > g1);

    /* another process (a `sluice pause`) changes the spool */
    write_all(go[1], "g", 1);
    close(go[1]);
    assert_int_equal(wait_child(pid), 0);
    uint64_t g3 = gen_of(q);
    assert_true(g3 > g2);
    assert_int_equal(list(q, &l), 1);
    assert_string_equal(l.c[0].name, "microsoft");
    assert_string_equal(l.c[0].who, "child");
    queue_close(q);
}

/* ------------------------------------------------------ schema upgrade */

/* Raw LMDB on a closed spool. */
static void raw_open(const char *dir, unsigned flags, MDB_env **env,
                     MDB_txn **txn)
{
    assert_int_equal(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 32);
    assert_int_equal(mdb_env_open(*env, dir, flags, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, flags & MDB_RDONLY, txn), 0);
}

/* The meta "schema" of a closed spool, and whether "controls" exists. */
static uint64_t raw_schema(const char *dir, bool *has_controls)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 6, "schema" }, v;
    raw_open(dir, MDB_RDONLY, &env, &txn);
    *has_controls = mdb_dbi_open(txn, "controls", 0, &dbi) == 0;
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(v.mv_size, 8);
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = s << 8 | ((const unsigned char *)v.mv_data)[i];
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return s;
}

/* Turn a closed current spool into what sluice 1 wrote: schema 1, no
 * controls database, no controls generation.  With keep_schema the version
 * stays 2 (a damaged spool). */
static void make_v1(const char *dir, bool keep_schema)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, ctl;
    unsigned char one[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    MDB_val k = { 6, "schema" }, v = { 8, one };
    MDB_val gk = { 12, "controls_gen" };
    raw_open(dir, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    if (!keep_schema)
        assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    int rc = mdb_del(txn, meta, &gk, NULL);
    assert_true(rc == 0 || rc == MDB_NOTFOUND);
    assert_int_equal(mdb_dbi_open(txn, "controls", 0, &ctl), 0);
    assert_int_equal(mdb_drop(txn, ctl, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A schema-1 spool: read-only sees no controls and changes nothing; a
 * writable open upgrades it to the current version and keeps its
 * deliveries. */
static void test_upgrade_v1(void **state)
{
    struct tdir *t = *state;
    struct ctl_list l;
    struct queue_info info;
    struct queue_counts c;
    struct queue_delivery d;
    bool has;
    uint64_t first, gen;
    const char *rc[] = { "a@one.example", "b@two.example" };

    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_enqueue_message(q, 1, "s@x.example", rc, 2, "hi", 2, &first,
                            NULL));
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "gone.example", NULL, NULL));
    queue_close(q);
    make_v1(t->path, false);
    assert_int_equal(raw_schema(t->path, &has), 1);
    assert_false(has);

    /* read-only: works, shows no controls, writes nothing */
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, 1);
    assert_int_equal(info.deliveries, 2);
    assert_int_equal(list(q, &l), 0);
    E(queue_controls_gen(q, &gen));
    assert_int_equal(gen, 0);
    E(queue_counts_domain(q, "one.example", &c));
    assert_int_equal(c.queued, 1);
    EQ_ERR(queue_pause(q, QUEUE_CTL_DOMAIN, "x.example", NULL, NULL), -EROFS);
    queue_close(q);
    assert_int_equal(raw_schema(t->path, &has), 1);
    assert_false(has);

    /* writable: upgraded in the open, controls work, nothing else moved */
    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, QUEUE_SCHEMA_VERSION);
    assert_int_equal(list(q, &l), 0);
    E(queue_pause(q, QUEUE_CTL_SITE, "google", "upgrade", "test"));
    assert_int_equal(list(q, &l), 1);
    E(queue_get_delivery(q, first + 1, &d));
    assert_string_equal(d.rcpt, "b@two.example");
    queue_close(q);
    assert_int_equal(raw_schema(t->path, &has), QUEUE_SCHEMA_VERSION);
    assert_true(has);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    assert_int_equal(list(q, &l), 1);
    assert_string_equal(l.c[0].name, "google");
    queue_close(q);
}

/* A spool that says schema 2 but lacks the controls database is damaged:
 * QUEUE_ECORRUPT naming the database, read-only or not. */
static void test_v2_without_controls(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    queue_close(q);
    make_v1(t->path, true);

    struct queue_options o = { .flags = QUEUE_OPEN_READONLY };
    EQ_ERR(queue_open(&q, t->path, &o), QUEUE_ECORRUPT);
    assert_null(q);
    assert_non_null(strstr(queue_last_detail(), "controls"));
    o.flags = QUEUE_OPEN_CREATE;
    EQ_ERR(queue_open(&q, t->path, &o), QUEUE_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_invalid, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_generation, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_v1, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_v2_without_controls, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
