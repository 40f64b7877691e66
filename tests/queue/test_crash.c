/*
 * test_crash.c - what survives a killed process or a full disk
 * (queue/writer.c, spool.c, claim.c across processes).
 *
 * DESCRIPTION
 *   A child enqueues campaign batches asynchronously through a libuv
 *   completer and acknowledges each batch on a pipe when its callback
 *   reports success; the parent SIGKILLs it mid-stream, reopens, and finds
 *   every acknowledged batch whole and no batch partly present.  A child
 *   that claimed deliveries and was killed leaves them claimable.  A child
 *   whose file size limit (RLIMIT_FSIZE) runs out gets the error back, and
 *   the spool it leaves holds only whole batches.
 *
 *   Children never use cmocka: they report through exit codes and pipes.
 */
#include <signal.h>
#include <sys/resource.h>
#include <uv.h>

#include "queue_uv.h"
#include "testutil.h"

#define T0 1700000000
#define ACK_ERROR 0xffffffffu

/* Count the recipients of each batch ("b<batch>-r<i>@...", campaign
 * batch + 1) over every delivery row. */
static unsigned *count_batches(struct queue *q, unsigned nbatch)
{
    struct queue_info info;
    struct queue_delivery d;
    unsigned *per = calloc(nbatch, sizeof *per);
    E(queue_info(q, &info));
    for (uint64_t id = 1; id <= info.deliveries; id++) {
        unsigned b, i;
        E(queue_get_delivery(q, id, &d));
        if (!rcpt_batch(d.rcpt, &b, &i) || b >= nbatch)
            fail_msg("delivery %llu: unexpected '%s'",
                     (unsigned long long)id, d.rcpt);
        assert_int_equal(d.campaign, b + 1);
        per[b]++;
    }
    return per;
}

/* Make an empty spool in dir (so children only open it). */
static void make_spool(const char *dir)
{
    struct queue *q = open_q(dir, QUEUE_OPEN_CREATE, NULL);
    queue_close(q);
}

/* ---------------------------------------------------- crash mid-batch */

/* The enqueuing child: SLOTS batches in flight; each success is written
 * to fd and its slot takes the next batch. */
#define SLOTS 4

struct feeder;
struct slot {
    struct feeder *f;
    unsigned batch;
};

struct feeder {
    struct queue *q;
    struct queue_completer *cmp;
    int fd;
    unsigned next, max, size;
    struct slot slots[SLOTS];
};

static void feed(struct slot *s);

static void on_slot_done(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct slot *s = arg;
    if (status)
        _exit(3);
    write_all(s->f->fd, &s->batch, sizeof s->batch);
    feed(s);
}

/* Submit the next batch from one slot. */
static void feed(struct slot *s)
{
    struct feeder *f = s->f;
    struct rcpts rs;
    if (f->next >= f->max)
        _exit(4); /* the parent should have killed us by now */
    s->batch = f->next++;
    rcpts_make(&rs, f->size, "b%u-r%u@d%u.example", s->batch, 7);
    if (queue_submit_campaign(f->q, 2, s->batch + 1, rs.r, rs.n, f->cmp,
                              on_slot_done, s))
        _exit(5);
    rcpts_free(&rs);
}

static void feeder_child(const char *dir, int fd, unsigned size)
{
    struct feeder f = { .fd = fd, .max = 100000, .size = size };
    struct queue_options o = { .group_ms = 2 };
    uv_loop_t loop;
    if (queue_open(&f.q, dir, &o) || uv_loop_init(&loop) ||
        queue_completer_new(&loop, &f.cmp))
        _exit(2);
    for (unsigned i = 0; i < SLOTS; i++) {
        f.slots[i].f = &f;
        feed(&f.slots[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(6);
}

/* Kill the enqueuing child after some acknowledgements: acknowledged
 * batches are whole, no batch is partial. */
static void test_crash_mid_batch(void **state)
{
    struct tdir *t = *state;
    unsigned size = (unsigned)bulk(2000, 500);
    unsigned want_acks = (unsigned)bulk(12, 4);
    int p[2];

    make_spool(t->path);
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        feeder_child(t->path, p[1], size);
    }
    close(p[1]);
    unsigned acked[64], nack = 0, b;
    while (nack < want_acks && read_full(p[0], &b, sizeof b))
        acked[nack++] = b;
    kill(pid, SIGKILL);
    int st = wait_child(pid);
    if (st != 128 + SIGKILL)
        fail_msg("feeder child ended with %d before the kill", st);
    /* acknowledgements written before the kill still count */
    while (nack < 64 && read_full(p[0], &b, sizeof b))
        acked[nack++] = b;
    close(p[0]);
    assert_true(nack >= want_acks);

    struct queue *q = open_q(t->path, QUEUE_OPEN_CLAIM, NULL);
    struct queue_info info;
    E(queue_info(q, &info));
    unsigned nbatch = (unsigned)(info.deliveries / size) + 8;
    unsigned *per = count_batches(q, nbatch);
    unsigned whole = 0;
    for (unsigned i = 0; i < nbatch; i++) {
        if (per[i] != 0 && per[i] != size)
            fail_msg("batch %u partly present: %u of %u", i, per[i], size);
        whole += per[i] == size;
    }
    for (unsigned i = 0; i < nack; i++)
        if (per[acked[i]] != size)
            fail_msg("acknowledged batch %u has %u of %u", acked[i],
                     per[acked[i]], size);
    assert_int_equal(info.deliveries, (uint64_t)whole * size);
    print_message("killed after %u acks: %u whole batches\n", nack, whole);
    struct queue_counts c;
    E(queue_counts_account(q, 2, &c));
    assert_int_equal(c.enqueued, info.deliveries);
    assert_int_equal(c.queued, info.deliveries);
    free(per);
    /* the spool works on: a claim and an outcome */
    struct queue_claim cl[4];
    assert_int_equal(queue_claim(q, INT64_MAX / 2, cl, 4), 4);
    struct queue_outcome oc = { .delivery = cl[0].id,
                                .type = QUEUE_EV_DELIVERED };
    E(queue_record_outcomes(q, &oc, 1));
    queue_close(q);
}

/* A child claims everything and is killed: the next claiming process
 * gets every delivery again. */
static void test_crash_claimed(void **state)
{
    struct tdir *t = *state;
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    struct rcpts rs;
    uint64_t first;
    int p[2];
    char ch;

    test_clock_set(T0);
    rcpts_make(&rs, 100, "b%u-r%u@d%u.example", 0, 3);
    E(queue_enqueue_campaign(q, 1, 1, rs.r, rs.n, &first));
    rcpts_free(&rs);
    queue_close(q);

    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct queue *cq;
        struct queue_claim cl[128];
        struct queue_options o = { .flags = QUEUE_OPEN_CLAIM };
        close(p[0]);
        if (queue_open(&cq, t->path, &o))
            _exit(2);
        if (queue_claim(cq, T0, cl, 128) != 100)
            _exit(3);
        write_all(p[1], "c", 1);
        for (;;)
            pause();
    }
    close(p[1]);
    assert_true(read_full(p[0], &ch, 1));
    close(p[0]);
    kill(pid, SIGKILL);
    assert_int_equal(wait_child(pid), 128 + SIGKILL);

    struct queue_claim cl[128];
    q = open_q(t->path, QUEUE_OPEN_CLAIM, NULL);
    assert_int_equal(queue_claim(q, T0, cl, 128), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(cl[i].id, first + (uint64_t)i);
    queue_close(q);
}

/* --------------------------------------------------------- disk full */

static void disk_full_child(const char *dir, int fd, unsigned size)
{
    struct queue *q;
    struct queue_options o = { .group_ms = 1 };
    struct stat st;
    char path[256];

    if (queue_open(&q, dir, &o))
        _exit(2);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st))
        _exit(3);
    struct rlimit rl = { (rlim_t)st.st_size + (256u << 10),
                         (rlim_t)st.st_size + (256u << 10) };
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl))
        _exit(4);
    for (unsigned b = 0; b < 2000; b++) {
        struct rcpts rs;
        rcpts_make(&rs, size, "b%u-r%u@d%u.example", b, 7);
        int err = queue_enqueue_campaign(q, 1, b + 1, rs.r, rs.n, NULL);
        rcpts_free(&rs);
        if (err) {
            uint32_t msg[2] = { ACK_ERROR, (uint32_t)err };
            write_all(fd, msg, sizeof msg);
            /* a later, smaller batch fails too: nothing half-written */
            struct rcpts one;
            rcpts_make(&one, size, "b%u-r%u@d%u.example", b + 1, 7);
            int err2 = queue_enqueue_campaign(q, 1, b + 2, one.r, one.n,
                                              NULL);
            rcpts_free(&one);
            write_all(fd, &err2, sizeof err2);
            queue_close(q);
            _exit(0);
        }
        write_all(fd, &b, sizeof b);
    }
    queue_close(q);
    _exit(5);
}

/* The file size limit runs out mid-stream: the error reaches the caller,
 * and the reopened spool holds every acknowledged batch whole and nothing
 * of the others. */
static void test_disk_full(void **state)
{
    struct tdir *t = *state;
    unsigned size = 400;
    int p[2];

    make_spool(t->path);
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        disk_full_child(t->path, p[1], size);
    }
    close(p[1]);
    unsigned nack = 0, b;
    int err = 0, err2 = 0;
    while (read_full(p[0], &b, sizeof b)) {
        if (b == ACK_ERROR) {
            uint32_t e;
            assert_true(read_full(p[0], &e, sizeof e));
            err = (int)e;
            assert_true(read_full(p[0], &err2, sizeof err2));
            break;
        }
        assert_int_equal(b, nack);
        nack++;
    }
    close(p[0]);
    assert_int_equal(wait_child(pid), 0);
    if (err != -EFBIG && err != -ENOSPC && err != -EIO)
        fail_msg("disk full: got %d (%s)", err, queue_strerror(err));
    assert_true(err2 < 0);
    assert_true(nack > 0);
    print_message("disk full after %u batches: %s, then %s\n", nack,
                  queue_strerror(err), queue_strerror(err2));

    struct queue *q = open_q(t->path, 0, NULL);
    struct queue_info info;
    E(queue_info(q, &info));
    unsigned *per = count_batches(q, nack + 2);
    for (unsigned i = 0; i < nack; i++)
        assert_int_equal(per[i], size);
    assert_int_equal(per[nack], 0);
    assert_int_equal(per[nack + 1], 0);
    assert_int_equal(info.deliveries, (uint64_t)nack * size);
    struct queue_counts c;
    E(queue_counts_total(q, &c));
    assert_int_equal(c.enqueued, info.deliveries);
    free(per);
    /* and it takes more once there is room */
    struct rcpts rs;
    uint64_t first;
    rcpts_make(&rs, size, "b%u-r%u@d%u.example", nack, 7);
    E(queue_enqueue_campaign(q, 1, nack + 1, rs.r, rs.n, &first));
    assert_int_equal(first, (uint64_t)nack * size + 1);
    rcpts_free(&rs);
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_mid_batch, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_crash_claimed, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
