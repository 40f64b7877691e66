/*
 * test_spool.c - opening, creating, checking and closing a spool
 * (queue/spool.c, queue/schema.c).
 *
 * DESCRIPTION
 *   Create/open/close round trips, queue_info facts, no-sync and read-only
 *   modes, and refusal of everything that is not a spool of ours: missing
 *   directory, regular file, directory of other files, random bytes, a
 *   foreign LMDB environment, a newer schema.  The reader check kills a
 *   child in the middle of a read transaction and expects the next open to
 *   clear its slot.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>

#include "testutil.h"

/* Create a spool in a directory that does not exist yet, check the facts,
 * close, reopen without CREATE and find what was written. */
static void test_create_open_close(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct queue *q;
    struct queue_info info;
    uint64_t first, msg;
    const char *rc[] = { "a@example.com" };

    tdir_sub(t, "x/y/spool", dir, sizeof dir);
    q = open_q(dir, QUEUE_OPEN_CREATE, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, QUEUE_SCHEMA_VERSION);
    assert_int_equal(info.deliveries, 0);
    assert_int_equal(info.messages, 0);
    assert_int_equal(info.events, 0);
    assert_int_equal(info.next_event_seq, 1);
    assert_int_equal(info.nosync, 0);
    assert_true(info.map_size > 0);
    assert_true(info.map_max >= info.map_size);
    assert_true(info.file_bytes > 0);
    assert_true(info.last_page_bytes > 0);
    E(queue_enqueue_message(q, 1, "s@example.com", rc, 1, "hi", 2, &first,
                            &msg));
    assert_int_equal(first, 1);
    assert_int_equal(msg, 1);
    queue_close(q);
    queue_close(NULL); /* free functions accept NULL */

    q = open_q(dir, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 1);
    assert_int_equal(info.ready, 1);
    assert_int_equal(info.messages, 1);
    /* ids continue after a reopen */
    E(queue_enqueue_message(q, 1, "s@example.com", rc, 1, "hi", 2, &first,
                            &msg));
    assert_int_equal(first, 2);
    assert_int_equal(msg, 2);
    queue_close(q);
}

/* A spool directory that does not exist and no CREATE: -ENOENT, nothing
 * created.  An existing empty directory without CREATE: -ENOENT too. */
static void test_missing(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct queue *q = (struct queue *)1;
    struct stat st;

    tdir_sub(t, "nothing", dir, sizeof dir);
    EQ_ERR(queue_open(&q, dir, NULL), -ENOENT);
    assert_null(q);
    assert_int_equal(stat(dir, &st), -1);
    EQ_ERR(queue_open(&q, t->path, NULL), -ENOENT);
    assert_null(q);
    EQ_ERR(queue_open(&q, "", NULL), -EINVAL);
}

/* A path that is a regular file is refused, with or without CREATE, and
 * the file is left alone. */
static void test_regular_file(void **state)
{
    struct tdir *t = *state;
    char path[128];
    struct queue *q;
    struct stat st;
    int fd;

    tdir_sub(t, "file", path, sizeof path);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    EQ_ERR(queue_open(&q, path, NULL), QUEUE_EFOREIGN);
    assert_null(q);
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    EQ_ERR(queue_open(&q, path, &o), QUEUE_EFOREIGN);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5);
}

/* A non-empty directory of other files with CREATE: QUEUE_EFOREIGN, and no
 * spool files appear in it. */
static void test_strangers(void **state)
{
    struct tdir *t = *state;
    char path[128];
    struct queue *q;
    struct stat st;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };

    int fd = open(tdir_sub(t, "notes.txt", path, sizeof path),
                  O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    EQ_ERR(queue_open(&q, t->path, &o), QUEUE_EFOREIGN);
    assert_null(q);
    assert_non_null(strstr(queue_last_detail(), t->path));
    assert_int_equal(stat(tdir_sub(t, "data.mdb", path, sizeof path), &st),
                     -1);
}

/* data.mdb of random bytes: QUEUE_ECORRUPT (or EFOREIGN), never a crash,
 * with and without CREATE, and the file is not rewritten. */
static void test_random_bytes(void **state)
{
    struct tdir *t = *state;
    char path[128];
    unsigned char buf[16384], back[16384];
    struct queue *q;
    unsigned s = 12345;

    for (size_t i = 0; i < sizeof buf; i++) {
        s = s * 1103515245u + 12345u;
        buf[i] = (unsigned char)(s >> 16);
    }
    int fd = open(tdir_sub(t, "data.mdb", path, sizeof path),
                  O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    for (int create = 0; create < 2; create++) {
        struct queue_options o = { .flags = create ? QUEUE_OPEN_CREATE : 0 };
        int err = queue_open(&q, t->path, &o);
        assert_null(q);
        if (err != QUEUE_ECORRUPT && err != QUEUE_EFOREIGN)
            fail_msg("random data.mdb: got %d %s", err, queue_strerror(err));
        assert_string_not_equal(queue_last_detail(), "");
    }
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
    close(fd);
    assert_memory_equal(buf, back, sizeof buf);
}

/* A data.mdb cut short (a copy that stopped half way): refused as
 * QUEUE_ECORRUPT, not a SIGBUS. */
static void test_truncated(void **state)
{
    struct tdir *t = *state;
    char path[128];
    struct stat st;
    struct rcpts rs;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    rcpts_make(&rs, 5000, "b%u-r%u@d%u.example", 1, 10);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, NULL));
    rcpts_free(&rs);
    queue_close(q);
    tdir_sub(t, "data.mdb", path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    EQ_ERR(queue_open(&q, t->path, NULL), QUEUE_ECORRUPT);
    assert_null(q);
    assert_non_null(strstr(queue_last_detail(), "truncated"));
}

/* Make a raw LMDB environment in dir with one named database and one key. */
static void make_foreign_env(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 5, "alice" }, v = { 3, "42!" };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "users", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A valid LMDB environment with other named databases and no sluice meta:
 * QUEUE_EFOREIGN even with CREATE, and the foreign environment is left as
 * it was (no sluice databases added). */
static void test_foreign_lmdb(void **state)
{
    struct tdir *t = *state;
    struct queue *q;

    make_foreign_env(t->path);
    for (int create = 0; create < 2; create++) {
        struct queue_options o = { .flags = create ? QUEUE_OPEN_CREATE : 0 };
        EQ_ERR(queue_open(&q, t->path, &o), QUEUE_EFOREIGN);
        assert_null(q);
    }

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 5, "alice" }, v;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, t->path, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), MDB_NOTFOUND);
    assert_int_equal(mdb_dbi_open(txn, "deliveries", 0, &dbi), MDB_NOTFOUND);
    assert_int_equal(mdb_dbi_open(txn, "users", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(v.mv_size, 3);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* Little-endian put of n bytes. */
static void le_put(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A spool of schema 6 (delivery records in format 1, fixed offsets) opens,
 * is upgraded to the current schema without a rewrite, and its records
 * read as they were beside the compact ones written since; the check
 * finds nothing wrong with the mix. */
static void test_schema6_deliveries(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    const char *rc[] = { "first@example.com", "second@example.com" };
    uint64_t first, msg;
    E(queue_enqueue_message(q, 7, "s@example.com", rc, 2, "hi", 2, &first,
                            &msg));
    struct queue_delivery d2;
    E(queue_get_delivery(q, 2, &d2));
    queue_close(q);

    /* delivery 1 as a schema-6 build wrote it, and schema 6 in the meta */
    const char *addr = "first@example.com";
    size_t alen = strlen(addr);
    unsigned char rec[50 + 64] = { 1, QUEUE_ST_QUEUED };
    le_put(rec + 2, 3, 2);                     /* attempts */
    le_put(rec + 4, 7, 4);                     /* account */
    le_put(rec + 8, 0, 8);                     /* campaign */
    le_put(rec + 16, msg, 8);                  /* ref */
    le_put(rec + 24, (uint64_t)d2.created, 8);
    le_put(rec + 32, (uint64_t)d2.next_attempt, 8);  /* its ready entry */
    le_put(rec + 40, 0, 8);                    /* last_event */
    le_put(rec + 48, alen, 2);
    memcpy(rec + 50, addr, alen);
    unsigned char id[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    unsigned char six[8] = { 0, 0, 0, 0, 0, 0, 0, 6 };
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 8, id }, v = { 50 + alen, rec };
    MDB_val sk = { 6, "schema" }, sv = { 8, six };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "deliveries", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &sk, &sv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    /* read-only first: schema 6 is read as it is */
    struct queue_info info;
    struct queue_delivery d;
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, 6);
    E(queue_get_delivery(q, 1, &d));
    assert_string_equal(d.rcpt, "first@example.com");
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, QUEUE_SCHEMA_VERSION);
    E(queue_get_delivery(q, 1, &d));
    assert_int_equal(d.id, 1);
    assert_int_equal(d.state, QUEUE_ST_QUEUED);
    assert_int_equal(d.attempts, 3);
    assert_int_equal(d.account, 7);
    assert_int_equal(d.campaign, 0);
    assert_int_equal(d.ref, msg);
    assert_int_equal(d.created, d2.created);
    assert_int_equal(d.next_attempt, d2.next_attempt);
    assert_int_equal(d.last_event, 0);
    assert_string_equal(d.rcpt, "first@example.com");
    E(queue_get_delivery(q, 2, &d));
    assert_int_equal(d.account, 7);
    assert_int_equal(d.ref, msg);
    assert_int_equal(d.created, d2.created);
    assert_int_equal(d.next_attempt, d2.next_attempt);
    assert_string_equal(d.rcpt, "second@example.com");
    queue_close(q);

    struct queue_check_report r;
    E(queue_check(t->path, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);
}

/* Bump the schema version in the meta database with raw LMDB: the open is
 * refused with QUEUE_ESCHEMA naming both versions. */
static void test_schema_newer(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    queue_close(q);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char be[8] = { 0, 0, 0, 0, 0, 0, 0, 99 };
    MDB_val k = { 6, "schema" }, v = { 8, be };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    EQ_ERR(queue_open(&q, t->path, &o), QUEUE_ESCHEMA);
    assert_null(q);
    const char *d = queue_last_detail();
    assert_non_null(strstr(d, "99"));
    char want[16];
    snprintf(want, sizeof want, "(%d)", QUEUE_SCHEMA_VERSION);
    assert_non_null(strstr(d, want));
    EQ_ERR(queue_open(&q, t->path, NULL), QUEUE_ESCHEMA);
}

/* No-sync mode opens, reports itself and keeps what was written across a
 * clean close. */
static void test_nosync(void **state)
{
    struct tdir *t = *state;
    struct queue_info info;
    struct rcpts rs;
    uint64_t first;

    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE | QUEUE_OPEN_NOSYNC,
                             NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.nosync, 1);
    rcpts_make(&rs, 100, "b%u-r%u@d%u.example", 1, 3);
    E(queue_enqueue_campaign(q, 1, 7, rs.r, rs.n, &first));
    rcpts_free(&rs);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.nosync, 0);
    assert_int_equal(info.deliveries, 100);
    queue_close(q);
}

/* Read-only mode: reads work, writes are refused without a callback. */
static int ro_cb_runs;
static void ro_cb(void *arg, int status, uint64_t a, uint64_t b)
{
    ro_cb_runs++;
}

static void test_readonly(void **state)
{
    struct tdir *t = *state;
    struct queue_info info;
    struct queue_delivery d;
    const char *rc[] = { "a@example.com" };
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_enqueue_message(q, 1, "", rc, 1, "x", 1, NULL, NULL));
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 1);
    E(queue_get_delivery(q, 1, &d));
    assert_string_equal(d.rcpt, "a@example.com");
    EQ_ERR(queue_submit_message(q, 1, "", rc, 1, "x", 1, NULL, ro_cb, NULL),
           -EROFS);
    EQ_ERR(queue_enqueue_message(q, 1, "", rc, 1, "x", 1, NULL, NULL),
           -EROFS);
    assert_int_equal(ro_cb_runs, 0);
    E(queue_flush(q));
    queue_close(q);
}

/* Reader check: a process killed inside a read transaction leaves its
 * reader slot behind; the next open clears it.  LMDB resets the reader
 * table when the first process opens an environment nobody else has open,
 * so a holder child keeps the spool open meanwhile. */
static void test_stale_readers(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    queue_close(q);

    int hold_up[2], hold_down[2], rd[2];
    char c;
    assert_int_equal(pipe(hold_up), 0);
    assert_int_equal(pipe(hold_down), 0);
    assert_int_equal(pipe(rd), 0);

    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        struct queue *hq;
        close(hold_up[0]);
        close(hold_down[1]);
        if (queue_open(&hq, t->path, NULL))
            _exit(2);
        write_all(hold_up[1], "h", 1);
        while (read(hold_down[0], &c, 1) > 0)
            ;
        queue_close(hq);
        _exit(0);
    }
    close(hold_up[1]);
    close(hold_down[0]);
    assert_true(read_full(hold_up[0], &c, 1));

    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        MDB_env *env;
        MDB_txn *txn;
        close(rd[0]);
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
            mdb_env_open(env, t->path, MDB_NOTLS, 0600) ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
            _exit(2);
        write_all(rd[1], "r", 1);
        for (;;)
            pause();
    }
    close(rd[1]);
    assert_true(read_full(rd[0], &c, 1));
    close(rd[0]);
    kill(reader, SIGKILL);
    assert_int_equal(wait_child(reader), 128 + SIGKILL);

    struct queue_info info;
    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_true(info.stale_readers_cleared >= 1);
    queue_close(q);

    close(hold_down[1]);
    assert_int_equal(wait_child(holder), 0);
    close(hold_up[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_open_close, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_missing, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_regular_file, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_strangers, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_lmdb, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_schema6_deliveries, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_newer, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_nosync, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_readonly, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_stale_readers, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
