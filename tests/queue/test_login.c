/*
 * test_login.c - the login state of users (queue/admin_users.c): failed
 * logins and the lock-out they lead to, TOTP steps good once, and user
 * records written before the login state existed.
 *
 * DESCRIPTION
 *   On the test clock: four failures lock nothing, the fifth locks for 60
 *   s; failures further apart than the window start a new one; each
 *   further lock-out doubles up to an hour; a good login clears it all.
 *   A TOTP step is accepted once and never after a newer one, also across
 *   a close and reopen; an unlock never moves the step back.  Every
 *   failure and lock-out is in the audit trail with its result.  A user
 *   record of format 1 (as an older sluice wrote it) reads with an empty
 *   login state and is rewritten in the new format by the next change.
 */
#include <lmdb.h>

#include "queue_admin.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* A spool with the master and user "alice" (her id in *id). */
static struct queue *one_user(const char *dir, uint32_t *id)
{
    uint32_t master;
    struct queue *q = open_q(dir, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_user_add(q, "alice", "$argon2id$v=19$x", master,
                     QUEUE_ROLE_ADMIN, &boot, id));
    return q;
}

/* One failed login of id now; the lock-out it began (0: none). */
static int64_t fail_login(struct queue *q, uint32_t id)
{
    struct queue_actor a = { "alice", "password", QUEUE_ROLE_NONE, 0 };
    int64_t until = -1;
    E(queue_user_login_failed(q, id, &a, "account show",
                              "refused: wrong user name or password",
                              &until));
    return until;
}

static struct queue_login state(struct queue *q, uint32_t id)
{
    struct queue_user u;
    E(queue_user_get(q, id, &u));
    return u.login;
}

struct count {
    int failures, lockouts, unlocks;
    char last_lockout[QUEUE_MAX_AUDIT_RESULT + 1];
};

static int count_cb(void *arg, const struct queue_audit *r)
{
    struct count *c = arg;
    if (!strcmp(r->result, "refused: wrong user name or password"))
        c->failures++;
    if (!strcmp(r->action, "login lock-out")) {
        c->lockouts++;
        snprintf(c->last_lockout, sizeof c->last_lockout, "%s", r->result);
    }
    if (!strcmp(r->action, "user unlock"))
        c->unlocks++;
    return 0;
}

/* Five failures within the window lock the user out; the lock-out
 * doubles and stops at an hour; a good login clears everything. */
static void test_lockout(void **state_)
{
    struct tdir *t = *state_;
    uint32_t id;
    test_clock_set(T0);
    struct queue *q = one_user(t->path, &id);

    for (int i = 0; i < 4; i++)
        assert_int_equal(fail_login(q, id), 0);
    struct queue_login l = state(q, id);
    assert_int_equal(l.failures, 4);
    assert_int_equal(l.fail_since, T0);
    assert_int_equal(l.locked_until, 0);
    assert_int_equal(fail_login(q, id), T0 + QUEUE_LOGIN_LOCK_FIRST);
    l = state(q, id);
    assert_int_equal(l.locked_until, T0 + 60);
    assert_int_equal(l.lockouts, 1);
    assert_int_equal(l.failures, 0);

    /* failures further apart than the window never add up */
    test_clock_set(T0 + 100);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fail_login(q, id), 0);
    test_clock_set(T0 + 100 + QUEUE_LOGIN_WINDOW);
    assert_int_equal(fail_login(q, id), 0);
    l = state(q, id);
    assert_int_equal(l.failures, 1);
    assert_int_equal(l.fail_since, T0 + 100 + QUEUE_LOGIN_WINDOW);

    /* lock-outs 2, 3, ...: 120 s, 240 s, ... at most an hour */
    int64_t now = T0 + 5000, want = 60;
    for (uint32_t n = 2; n <= 9; n++) {
        test_clock_set(now);
        int64_t until = 0;
        for (int i = 0; i < 5; i++)
            until = fail_login(q, id);
        want = want * 2 > QUEUE_LOGIN_LOCK_MAX ? QUEUE_LOGIN_LOCK_MAX
                                               : want * 2;
        assert_int_equal(until - now, want);
        assert_int_equal(state(q, id).lockouts, n);
        now += 2 * QUEUE_LOGIN_LOCK_MAX;
    }
    assert_int_equal(want, QUEUE_LOGIN_LOCK_MAX);

    /* a good login clears failures and lock-outs, and the next lock-out
     * is a first one again */
    test_clock_set(now);
    fail_login(q, id);
    E(queue_user_login_ok(q, id, 0));
    l = state(q, id);
    assert_int_equal(l.failures, 0);
    assert_int_equal(l.lockouts, 0);
    assert_int_equal(l.locked_until, 0);
    for (int i = 0; i < 4; i++)
        fail_login(q, id);
    assert_int_equal(fail_login(q, id), now + 60);

    /* the trail has every failure and every lock-out */
    struct count c = { 0 };
    assert_true(queue_audit_list(q, 1, count_cb, &c) > 0);
    assert_int_equal(c.failures, 5 + 5 + 8 * 5 + 1 + 5);
    assert_int_equal(c.lockouts, 1 + 8 + 1);
    assert_string_equal(c.last_lockout,
                        "locked out for 60 s after 5 failed logins "
                        "(lock-out 1)");

    /* other changes keep the login state; an unknown user has none */
    E(queue_user_set_password(q, id, "$argon2id$v=19$y", &boot));
    E(queue_user_set_disabled(q, id, false, &boot));
    assert_int_equal(state(q, id).lockouts, 1);
    struct queue_actor a = { "x", "password", QUEUE_ROLE_NONE, 0 };
    EQ_ERR(queue_user_login_failed(q, 999, &a, "x", "refused: x", NULL),
           QUEUE_ENOTFOUND);
    EQ_ERR(queue_user_login_ok(q, 999, 1), QUEUE_ENOTFOUND);
    queue_close(q);
}

/* A TOTP step is good once, never after a newer one, also after a
 * reopen; an unlock clears a lock-out but never moves the step back. */
static void test_totp_steps(void **state_)
{
    struct tdir *t = *state_;
    uint32_t id;
    test_clock_set(T0);
    struct queue *q = one_user(t->path, &id);

    E(queue_user_login_ok(q, id, 1000));
    EQ_ERR(queue_user_login_ok(q, id, 1000), QUEUE_ESTATE);
    EQ_ERR(queue_user_login_ok(q, id, 999), QUEUE_ESTATE);
    E(queue_user_login_ok(q, id, 1001));
    E(queue_user_login_ok(q, id, 0));        /* a login without TOTP */
    assert_int_equal(state(q, id).totp_step, 1001);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    EQ_ERR(queue_user_login_ok(q, id, 1001), QUEUE_ESTATE);
    for (int i = 0; i < 5; i++)
        fail_login(q, id);
    assert_int_not_equal(state(q, id).locked_until, 0);
    struct queue_login clear = { 0 };
    E(queue_user_login_set(q, id, &clear, &boot));
    struct queue_login l = state(q, id);
    assert_int_equal(l.locked_until, 0);
    assert_int_equal(l.failures, 0);
    assert_int_equal(l.totp_step, 1001);
    EQ_ERR(queue_user_login_ok(q, id, 1001), QUEUE_ESTATE);
    struct count c = { 0 };
    queue_audit_list(q, 1, count_cb, &c);
    assert_int_equal(c.unlocks, 1);
    /* TOTP off and on again: a step once used stays used */
    unsigned char secret[QUEUE_TOTP_SECRET] = { 1, 2, 3 };
    E(queue_user_set_totp(q, id, NULL, &boot));
    E(queue_user_set_totp(q, id, secret, &boot));
    EQ_ERR(queue_user_login_ok(q, id, 1001), QUEUE_ESTATE);
    E(queue_user_login_ok(q, id, 1002));
    queue_close(q);
}

/* queue_check() reports: a problem fails the test. */
static void on_report(void *arg, int kind, const char *db, const char *key,
                      const char *what)
{
    (void)arg;
    if (kind == QUEUE_REPORT_PROBLEM)
        fail_msg("spool check: %s %s: %s", db, key, what);
}

/* A user record of format 1 (no login part, as an older sluice wrote
 * it) reads with an empty login state; the next change writes format 2. */
static void test_format_1(void **state_)
{
    struct tdir *t = *state_;
    uint32_t id;
    test_clock_set(T0);
    struct queue *q = one_user(t->path, &id);
    queue_close(q);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char key[5] = { 'i' }, old[512];
    key[1] = (unsigned char)(id >> 24);
    key[2] = (unsigned char)(id >> 16);
    key[3] = (unsigned char)(id >> 8);
    key[4] = (unsigned char)id;
    MDB_val k = { sizeof key, key }, v;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "users", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(((unsigned char *)v.mv_data)[0], 2);
    size_t login_part = 8 + 4 + 8 + 8 + 4;
    assert_true(v.mv_size > login_part && v.mv_size < sizeof old);
    memcpy(old, v.mv_data, v.mv_size - login_part);
    old[0] = 1;
    MDB_val nv = { v.mv_size - login_part, old };
    assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    q = open_q(t->path, 0, NULL);
    struct queue_user u;
    E(queue_user_get(q, id, &u));
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.pwhash, "$argon2id$v=19$x");
    assert_int_equal(u.login.totp_step, 0);
    assert_int_equal(u.login.locked_until, 0);
    assert_int_equal(fail_login(q, id), 0);
    assert_int_equal(state(q, id).failures, 1);
    queue_close(q);

    struct queue_check_report r;
    E(queue_check(t->path, 0, on_report, NULL, &r));
    assert_int_equal(r.problems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lockout, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_totp_steps, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_format_1, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
