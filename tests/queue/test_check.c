/*
 * test_check.c - a damaged spool: checking, salvage and the open rules
 * (queue/check.c, salvage.c, repair.c, walk.c, metapage.c, spool.c).
 *
 * DESCRIPTION
 *   One spool is built per test: injected messages for three recipients
 *   each, a campaign batch, outcomes of every kind, a paused domain.  The
 *   check finds it sound; then copies of it are broken on purpose:
 *   records edited with plain LMDB (a ready entry gone, a counter off, a
 *   message gone, a meta counter behind the ids, a record of garbage),
 *   pages overwritten with random bytes (fixed seeds), the file cut short,
 *   a meta page damaged.  Each must give the problem a user would look
 *   for and never a crash; salvage must give a spool that checks sound in
 *   which every recipient queued before is still queued, ended with the
 *   "message lost" event, or named as lost in the report.  The open rules:
 *   an empty or missing data.mdb beside the other spool files is refused
 *   unless QUEUE_OPEN_RECREATE; a claim that meets a page LMDB cannot
 *   read says QUEUE_ECORRUPT (not EINVAL).
 */
#include <fcntl.h>
#include <lmdb.h>

#include "testutil.h"

#define T0 1700000000
#define NMSG 200

/* ------------------------------------------------------------ reports */

struct seen {
    size_t n;
    struct {
        int kind;
        char db[16], key[96], what[200];
    } r[1024];
};

static void collect(void *arg, int kind, const char *db, const char *key,
                    const char *what)
{
    struct seen *s = arg;
    if (s->n == sizeof s->r / sizeof s->r[0])
        return;
    s->r[s->n].kind = kind;
    snprintf(s->r[s->n].db, sizeof s->r[s->n].db, "%s", db);
    snprintf(s->r[s->n].key, sizeof s->r[s->n].key, "%s", key);
    snprintf(s->r[s->n].what, sizeof s->r[s->n].what, "%s", what);
    s->n++;
}

/* Whether a problem in db says what (a substring). */
static bool saw(const struct seen *s, const char *db, const char *what)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].kind == QUEUE_REPORT_PROBLEM && !strcmp(s->r[i].db, db) &&
            strstr(s->r[i].what, what))
            return true;
    return false;
}

static void dump(const struct seen *s)
{
    for (size_t i = 0; i < s->n && i < 40; i++)
        fprintf(stderr, "  %s %s %s: %s\n",
                s->r[i].kind == QUEUE_REPORT_PROBLEM ? "problem" : "note",
                s->r[i].db, s->r[i].key, s->r[i].what);
}

/* ------------------------------------------------------------ the spool */

struct built {
    uint64_t ndeliveries;
    uint64_t queued;
    bool was_queued[4096];   /* by delivery id */
};

/* Build the spool in dir; b gets which deliveries are queued. */
static void build(const char *dir, struct built *b)
{
    struct queue *q;
    char body[700];
    uint64_t first, msg;
    struct queue_claim c[128];

    memset(b, 0, sizeof *b);
    test_clock_set(T0);
    /* no fsync per commit: queue_close() syncs */
    q = open_q(dir, QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM | QUEUE_OPEN_NOSYNC,
               NULL);
    memset(body, 'x', sizeof body);
    memcpy(body, "Subject: hi\r\n\r\n", 15);
    for (unsigned i = 0; i < NMSG; i++) {
        char a[3][64];
        const char *rc[3];
        for (unsigned k = 0; k < 3; k++) {
            snprintf(a[k], sizeof a[k], "m%u-%u@d%u.example", i, k,
                     (i + k) % 5);
            rc[k] = a[k];
        }
        E(queue_enqueue_message(q, 1 + i % 2, "s@example.com", rc, 3, body,
                                sizeof body, &first, &msg));
    }
    struct rcpts rs;
    rcpts_make(&rs, 1000, "b%u-r%u@c%u.example", 1, 7);
    E(queue_enqueue_campaign(q, 1, 7, rs.r, rs.n, NULL));
    rcpts_free(&rs);
    /* outcomes: by id, 6 in 10 delivered, one deferred, one bounced, two
     * left queued */
    int n;
    while ((n = queue_claim(q, T0, c, 128)) > 0) {
        struct queue_outcome o[128];
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            unsigned m = (unsigned)(c[i].id % 10);
            if (m >= 8)
                continue;
            o[k++] = (struct queue_outcome){
                .delivery = c[i].id,
                .type = m < 6 ? QUEUE_EV_DELIVERED
                        : m == 6 ? QUEUE_EV_DEFERRED : QUEUE_EV_BOUNCED,
                .code = m == 7 ? 550 : 250, .mx = "mx.example",
                .text = "reply" };
        }
        if (k)
            E(queue_record_outcomes(q, o, k));
    }
    E(queue_pause(q, QUEUE_CTL_DOMAIN, "d1.example", "test", "me"));
    struct queue_info info;
    E(queue_info(q, &info));
    b->ndeliveries = info.deliveries;
    assert_true(b->ndeliveries < sizeof b->was_queued);
    for (uint64_t id = 1; id <= b->ndeliveries; id++) {
        struct queue_delivery d;
        E(queue_get_delivery(q, id, &d));
        if (d.state == QUEUE_ST_QUEUED) {
            b->was_queued[id] = true;
            b->queued++;
        }
    }
    queue_close(q);
}

/* Copy dir's data.mdb into a new dir sub of t. */
static const char *copy_spool(struct tdir *t, const char *from,
                              const char *sub, char *buf, size_t cap)
{
    char src[256], dst[256], data[64 * 1024];
    tdir_sub(t, sub, buf, cap);
    assert_int_equal(mkdir(buf, 0700), 0);
    snprintf(src, sizeof src, "%s/data.mdb", from);
    snprintf(dst, sizeof dst, "%s/data.mdb", buf);
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT, 0600);
    assert_true(in >= 0 && out >= 0);
    ssize_t r;
    while ((r = read(in, data, sizeof data)) > 0)
        assert_int_equal(write(out, data, (size_t)r), r);
    close(in);
    close(out);
    return buf;
}

/* Put (v non-NULL) or delete a record with plain LMDB. */
static void raw_edit(const char *dir, const char *db, const void *k,
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
    if (v)
        assert_int_equal(mdb_put(txn, dbi, &kk, &vv, 0), 0);
    else
        assert_int_equal(mdb_del(txn, dbi, &kk, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* Overwrite n random pages (not the two meta pages) with random bytes. */
static void damage_pages(const char *dir, unsigned seed, int n)
{
    char path[256];
    unsigned char page[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    size_t pages = (size_t)st.st_size / sizeof page;
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0 && pages > 4);
    srand(seed);
    for (int i = 0; i < n; i++) {
        size_t pg = 2 + (size_t)rand() % (pages - 2);
        for (size_t b = 0; b < sizeof page; b++)
            page[b] = (unsigned char)rand();
        assert_int_equal(pwrite(fd, page, sizeof page,
                                (off_t)(pg * sizeof page)),
                         (ssize_t)sizeof page);
    }
    close(fd);
}

/* ------------------------------------------------------------- tests */

/* The built spool is sound, in both modes, and every record is counted. */
static void test_sound(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct built b;
    struct queue_check_report r;
    struct seen s = { 0 };

    build(tdir_sub(t, "src", dir, sizeof dir), &b);
    E(queue_check(dir, 0, collect, &s, &r));
    if (r.problems)
        dump(&s);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.fatal_signal, 0);
    bool found = false;
    for (size_t i = 0; i < r.ndb; i++)
        if (!strcmp(r.db[i].name, "deliveries")) {
            assert_int_equal(r.db[i].records, b.ndeliveries);
            found = true;
        }
    assert_true(found);
    E(queue_check(dir, QUEUE_CHECK_QUICK, collect, &s, &r));
    assert_int_equal(r.problems, 0);
    /* not a spool */
    tdir_sub(t, "none", dir, sizeof dir);
    EQ_ERR(queue_check(dir, 0, NULL, NULL, &r), -ENOENT);
}

/* LMDB's free-page list is keyed by transaction id as a host-order
 * integer (MDB_INTEGERKEY): ids 255 and 256 are in order although their
 * bytes are not.  A free list spanning such ids (a reader held while a
 * few hundred transactions commit, as after a kill -9 of a busy sluiced)
 * is sound. */
static void test_freelist_order(void **state)
{
    struct tdir *t = *state;
    char dir[128];
    struct built b;
    struct queue_check_report r;
    struct seen s = { 0 };
    MDB_env *env;
    MDB_txn *rd, *txn;
    MDB_dbi meta;

    build(tdir_sub(t, "src", dir, sizeof dir), &b);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &rd), 0);
    size_t id = 0;
    /* each commit frees the pages it copied; the reader keeps them from
     * being reused, so each leaves a record in the free list */
    for (int i = 0; id < 600 && i < 2000; i++) {
        MDB_cursor *c;
        MDB_val k, v;
        unsigned char key[64], same[256];
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        assert_int_equal(mdb_cursor_open(txn, meta, &c), 0);
        assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
        assert_true(k.mv_size <= sizeof key && v.mv_size <= sizeof same);
        memcpy(key, k.mv_data, k.mv_size);
        memcpy(same, v.mv_data, v.mv_size);
        mdb_cursor_close(c);
        MDB_val nk = { k.mv_size, key }, nv = { v.mv_size, same };
        assert_int_equal(mdb_put(txn, meta, &nk, &nv, 0), 0);
        id = mdb_txn_id(txn);
        assert_int_equal(mdb_txn_commit(txn), 0);
    }
    assert_true(id >= 600);
    mdb_txn_abort(rd);
    mdb_env_close(env);
    E(queue_check(dir, 0, collect, &s, &r));
    if (r.problems)
        dump(&s);
    assert_int_equal(r.problems, 0);
    bool found = false;
    for (size_t i = 0; i < r.ndb; i++)
        if (!strcmp(r.db[i].name, "freelist")) {
            assert_true(r.db[i].records >= 300);
            found = true;
        }
    assert_true(found);
}

/* Records that break the spool's invariants, each named. */
static void test_invariants(void **state)
{
    struct tdir *t = *state;
    char src[128], dir[128], name[16];
    struct built b;
    struct queue_check_report r;
    unsigned char k[16], v[48];
    uint64_t qid = 0;

    build(tdir_sub(t, "src", src, sizeof src), &b);
    for (uint64_t id = 1; id <= b.ndeliveries && !qid; id++)
        if (b.was_queued[id])
            qid = id;
    assert_true(qid > 0);
    struct queue *q = open_q(src, QUEUE_OPEN_READONLY, NULL);
    struct queue_delivery d;
    E(queue_get_delivery(q, qid, &d));
    queue_close(q);

    static const struct {
        const char *db, *what;
    } want[] = {
        { "deliveries", "not in the ready index" },
        { "counters", "the rows count" },
        { "deliveries", "is not stored" },
        { "deliveries", "not below meta next_delivery" },
        { "deliveries", "does not decode" },
        { "ready", "names a delivery that does not exist" },
    };
    for (int i = 0; i < 6; i++) {
        struct seen s = { 0 };
        snprintf(name, sizeof name, "case%d", i);
        copy_spool(t, src, name, dir, sizeof dir);
        switch (i) {
        case 0: /* a queued delivery's ready entry gone */
            be64(k, (uint64_t)d.next_attempt);
            be64(k + 8, qid);
            raw_edit(dir, "ready", k, 16, NULL, 0);
            break;
        case 1: /* the total counter off by one */
            memset(v, 0, sizeof v);
            v[0] = 1;
            raw_edit(dir, "counters", "t", 1, v, sizeof v);
            break;
        case 2: /* the message of a queued delivery gone */
            be64(k, d.ref);
            raw_edit(dir, "messages", k, 8, NULL, 0);
            break;
        case 3: /* the meta counter behind the ids */
            be64(k, 5);
            raw_edit(dir, "meta", "next_delivery", 13, k, 8);
            break;
        case 4: /* garbage in place of a delivery */
            be64(k, qid);
            raw_edit(dir, "deliveries", k, 8, "garbage!", 8);
            break;
        case 5: /* a ready entry of no delivery */
            be64(k, T0);
            be64(k + 8, 999999);
            raw_edit(dir, "ready", k, 16, "", 0);
            break;
        }
        E(queue_check(dir, 0, collect, &s, &r));
        if (!saw(&s, want[i].db, want[i].what)) {
            dump(&s);
            fail_msg("case %d: no problem in %s saying '%s'", i, want[i].db,
                     want[i].what);
        }
    }
}

/* Salvage of a sound spool copies everything and refuses an existing
 * destination or a source that is not there. */
static void test_salvage_sound(void **state)
{
    struct tdir *t = *state;
    char src[128], dst[128];
    struct built b;
    struct queue_check_report r;
    struct seen s = { 0 };
    struct queue_info a, z;

    build(tdir_sub(t, "src", src, sizeof src), &b);
    E(queue_salvage(src, tdir_sub(t, "dst", dst, sizeof dst), collect, &s,
                    &r));
    if (r.problems)
        dump(&s);
    assert_int_equal(r.problems, 0);
    struct queue *q = open_q(src, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &a));
    queue_close(q);
    q = open_q(dst, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &z));
    struct queue_counts ca, cz;
    E(queue_counts_total(q, &cz));
    queue_close(q);
    q = open_q(src, QUEUE_OPEN_READONLY, NULL);
    E(queue_counts_total(q, &ca));
    queue_close(q);
    assert_int_equal(z.deliveries, a.deliveries);
    assert_int_equal(z.ready, a.ready);
    assert_int_equal(z.events, a.events);
    assert_int_equal(z.messages, a.messages);
    assert_memory_equal(&ca, &cz, sizeof ca);
    E(queue_check(dst, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);
    EQ_ERR(queue_salvage(src, dst, NULL, NULL, &r), -EEXIST);
    EQ_ERR(queue_salvage(tdir_sub(t, "none", src, sizeof src),
                         tdir_sub(t, "dst2", dst, sizeof dst), NULL, NULL,
                         &r), -ENOENT);
}

/* A message lost: its queued recipients end as expired with an event
 * saying so, and are reported; the rest is intact. */
static void test_salvage_lost_message(void **state)
{
    struct tdir *t = *state;
    char src[128], dir[128], dst[128];
    struct built b;
    struct queue_check_report r;
    struct seen s = { 0 };
    unsigned char k[8];
    uint64_t qid = 0;

    build(tdir_sub(t, "src", src, sizeof src), &b);
    for (uint64_t id = 1; id <= b.ndeliveries && !qid; id++)
        if (b.was_queued[id])
            qid = id;
    struct queue *q = open_q(src, QUEUE_OPEN_READONLY, NULL);
    struct queue_delivery d, e;
    E(queue_get_delivery(q, qid, &d));
    assert_int_equal(d.campaign, 0);
    uint64_t lost = 0;
    for (uint64_t id = 1; id <= b.ndeliveries; id++) {
        E(queue_get_delivery(q, id, &e));
        lost += e.campaign == 0 && e.ref == d.ref && b.was_queued[id];
    }
    queue_close(q);
    copy_spool(t, src, "broken", dir, sizeof dir);
    be64(k, d.ref);
    raw_edit(dir, "messages", k, 8, NULL, 0);

    E(queue_salvage(dir, tdir_sub(t, "dst", dst, sizeof dst), collect, &s,
                    &r));
    assert_int_equal(r.ended_no_message, lost);
    assert_true(r.problems >= lost);
    assert_true(saw(&s, "deliveries", "was lost: ended as expired"));
    E(queue_check(dst, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);
    q = open_q(dst, QUEUE_OPEN_READONLY, NULL);
    E(queue_get_delivery(q, qid, &e));
    assert_int_equal(e.state, QUEUE_ST_EXPIRED);
    struct queue_counts c;
    E(queue_counts_total(q, &c));
    assert_int_equal(c.queued, b.queued - lost);
    queue_close(q);
}

/* Whether delivery id lies in a stretch the salvage report calls lost. */
static bool reported_lost(const struct seen *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        unsigned long long a = 0, z = 0;
        const char *w = s->r[i].what, *up = strstr(w, "up to ");
        if (s->r[i].kind != QUEUE_REPORT_PROBLEM)
            continue;
        if (!strcmp(s->r[i].db, "ready") &&
            sscanf(w, "queued delivery %llu", &a) == 1 && a == id)
            return true;
        if (strcmp(s->r[i].db, "deliveries"))
            continue;
        if (sscanf(s->r[i].key, "id %llu", &a) == 1 &&
            strstr(w, "not copied") && a == id)
            return true;
        if (!up)
            continue;
        if (sscanf(s->r[i].key, "id %llu", &a) != 1)
            a = 0;
        if (sscanf(up, "up to id %llu", &z) != 1)
            z = UINT64_MAX; /* to the end */
        if (id > a && id < z)
            return true;
    }
    return false;
}

/* Random pages (fixed seeds): the check names damage and never dies;
 * salvage gives a sound spool where every recipient queued before is
 * queued, ended for a lost message, or reported lost. */
static void test_random_pages(void **state)
{
    struct tdir *t = *state;
    char src[128], dir[128], dst[128], name[32];
    struct built b;

    build(tdir_sub(t, "src", src, sizeof src), &b);
    for (unsigned seed = 1; seed <= 6; seed++) {
        struct queue_check_report r;
        struct seen s = { 0 };
        snprintf(name, sizeof name, "rand%u", seed);
        copy_spool(t, src, name, dir, sizeof dir);
        damage_pages(dir, seed, 3);
        E(queue_check(dir, 0, collect, &s, &r));
        assert_int_equal(r.fatal_signal, 0);
        snprintf(name, sizeof name, "rand%u.dst", seed);
        memset(&s, 0, sizeof s);
        E(queue_salvage(dir, tdir_sub(t, name, dst, sizeof dst), collect, &s,
                        &r));
        assert_int_equal(r.fatal_signal, 0);
        struct queue_check_report rc;
        E(queue_check(dst, 0, NULL, NULL, &rc));
        if (rc.problems) {
            dump(&s);
            fail_msg("seed %u: the salvaged spool has %llu problems", seed,
                     (unsigned long long)rc.problems);
        }
        struct queue *q = open_q(dst, QUEUE_OPEN_READONLY, NULL);
        for (uint64_t id = 1; id <= b.ndeliveries; id++) {
            struct queue_delivery d;
            if (!b.was_queued[id])
                continue;
            int err = queue_get_delivery(q, id, &d);
            if (!err && (d.state == QUEUE_ST_QUEUED ||
                         d.state == QUEUE_ST_EXPIRED))
                continue;
            if (err && reported_lost(&s, id))
                continue;
            dump(&s);
            fail_msg("seed %u: delivery %llu was queued; now %s and not "
                     "reported lost", seed, (unsigned long long)id,
                     err ? queue_strerror(err) : queue_state_name(d.state));
        }
        queue_close(q);
    }
}

/* A file cut short and a damaged meta page: named, and salvaged. */
static void test_truncated_and_meta(void **state)
{
    struct tdir *t = *state;
    char src[128], dir[128], dst[128], path[160];
    struct built b;
    struct queue_check_report r;
    struct stat st;
    struct seen s = { 0 };

    build(tdir_sub(t, "src", src, sizeof src), &b);
    copy_spool(t, src, "cut", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size * 7 / 10), 0);
    E(queue_check(dir, 0, collect, &s, &r));
    assert_true(saw(&s, "file", "truncated"));
    assert_int_equal(r.fatal_signal, 0);
    E(queue_salvage(dir, tdir_sub(t, "cut.dst", dst, sizeof dst), NULL, NULL,
                    &r));
    E(queue_check(dst, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);

    /* meta page 0 of garbage: LMDB refuses the file, salvage reads it all
     * through meta page 1 */
    copy_spool(t, src, "meta", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    unsigned char junk[4096];
    memset(junk, 0xa5, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
    memset(&s, 0, sizeof s);
    E(queue_check(dir, 0, collect, &s, &r));
    assert_true(r.problems > 0);
    assert_true(saw(&s, "file", "not a valid LMDB file"));
    E(queue_salvage(dir, tdir_sub(t, "meta.dst", dst, sizeof dst), NULL,
                    NULL, &r));
    E(queue_check(dst, 0, NULL, NULL, &r));
    assert_int_equal(r.problems, 0);
    struct queue *q = open_q(dst, QUEUE_OPEN_READONLY, NULL);
    struct queue_info info;
    E(queue_info(q, &info));
    assert_true(info.deliveries > 0);
    queue_close(q);
    /* no repaired copy of the source is left behind */
    snprintf(path, sizeof path, "%s.salvage-src", dst);
    assert_int_equal(stat(path, &st), -1);
}

/* Open rules: an empty data.mdb, or a missing one beside lock.mdb, is
 * damage (even with CREATE) until RECREATE; an empty directory is created
 * into. */
static void test_open_rules(void **state)
{
    struct tdir *t = *state;
    char dir[128], path[160];
    struct queue *q;
    struct queue_options create = { .flags = QUEUE_OPEN_CREATE };
    struct queue_options again = { .flags = QUEUE_OPEN_CREATE |
                                            QUEUE_OPEN_RECREATE };
    uint64_t first, msg;
    const char *rc[] = { "a@example.com" };

    q = open_q(tdir_sub(t, "s", dir, sizeof dir), QUEUE_OPEN_CREATE, NULL);
    E(queue_enqueue_message(q, 1, "s@example.com", rc, 1, "hi", 2, &first,
                            &msg));
    queue_close(q);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    assert_int_equal(truncate(path, 0), 0);
    for (int i = 0; i < 3; i++) {
        struct queue_options o = { .flags = i == 0 ? 0 : i == 1
                                            ? QUEUE_OPEN_READONLY
                                            : QUEUE_OPEN_CREATE };
        EQ_ERR(queue_open(&q, dir, &o), QUEUE_ECORRUPT);
        assert_non_null(strstr(queue_last_detail(), "empty"));
    }
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0); /* left as it was */
    E(queue_open(&q, dir, &again));
    struct queue_info info;
    E(queue_info(q, &info));
    assert_int_equal(info.deliveries, 0);
    queue_close(q);

    /* missing beside lock.mdb */
    assert_int_equal(unlink(path), 0);
    EQ_ERR(queue_open(&q, dir, &create), QUEUE_ECORRUPT);
    assert_non_null(strstr(queue_last_detail(), "missing"));
    EQ_ERR(queue_open(&q, dir, NULL), QUEUE_ECORRUPT);
    E(queue_open(&q, dir, &again));
    queue_close(q);

    /* a lone empty data.mdb (a copy that failed) */
    tdir_sub(t, "lone", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    EQ_ERR(queue_open(&q, dir, &create), QUEUE_ECORRUPT);

    /* an empty directory: created into; so is one holding only the
     * tools' side files (keys made before the spool) */
    tdir_sub(t, "empty", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    E(queue_open(&q, dir, &create));
    queue_close(q);
    tdir_sub(t, "keys", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/dkim", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    EQ_ERR(queue_open(&q, dir, NULL), -ENOENT);
    E(queue_open(&q, dir, &create));
    queue_close(q);
}

/* A claim whose delivery lies on a page LMDB cannot read says the spool is
 * damaged, not "Invalid argument". */
static void test_claim_damaged(void **state)
{
    struct tdir *t = *state;
    char src[128], path[160];
    struct built b;
    struct queue_claim c[16];

    build(tdir_sub(t, "src", src, sizeof src), &b);
    /* zero every page holding delivery 1's record (found by its
     * recipient), so the ready index leads to a page of zeros */
    snprintf(path, sizeof path, "%s/data.mdb", src);
    int fd = open(path, O_RDWR);
    unsigned char page[4096], zero[4096] = { 0 };
    int hit = 0;
    assert_true(fd >= 0);
    for (off_t off = 0; pread(fd, page, sizeof page, off) ==
                        (ssize_t)sizeof page; off += sizeof page)
        if (memmem(page, sizeof page, "m0-0@d0.example", 15)) {
            assert_int_equal(pwrite(fd, zero, sizeof zero, off),
                             (ssize_t)sizeof zero);
            hit++;
        }
    close(fd);
    assert_true(hit > 0);
    /* delivery 1 is due again */
    test_clock_set(T0 + 86400);
    struct queue *q = open_q(src, QUEUE_OPEN_CLAIM, NULL);
    EQ_ERR(queue_claim(q, T0 + 86400, c, 16), QUEUE_ECORRUPT);
    queue_close(q);
    test_clock_set(T0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sound, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_freelist_order, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_invariants, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_salvage_sound, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_salvage_lost_message,
                                        tdir_setup, tdir_teardown),
        cmocka_unit_test_setup_teardown(test_random_pages, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_meta, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_open_rules, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_claim_damaged, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
