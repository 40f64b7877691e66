/*
 * queue_bench.c - measure the spool: campaign enqueue rate, outcome rate
 * through group commit, and bytes on disk per queued recipient.
 *
 * DESCRIPTION
 *   Phase 1 enqueues N generated campaign recipients (spread over D
 *   domains) in batches through the asynchronous writer.  Phase 2 claims
 *   everything in bounded batches and submits one outcome operation per
 *   delivery, the way the engine does; the mix of outcomes is 90%
 *   delivered, 5% deferred, 3% bounced, 2% expired.  Then it prints the
 *   counters, the rates and the spool growth, optionally as JSON.
 *
 *   `queue-bench --demo` is the same run with a live progress line, used
 *   by `make demo` until the engine lands.
 *
 * EXIT STATUS
 *   0 done, 64 usage, 65 foreign or corrupt spool, 74 other spool error.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

struct opts {
    const char *spool;
    long n;
    long batch;
    long domains;
    int nosync;
    int json;
    int demo;
    int keep;
};

static atomic_long done_rcpts, done_outcomes, failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: queue-bench [--demo] [--spool DIR] [-n RECIPIENTS]\n"
            "                   [--batch N] [--domains N] [--nosync] [--json]\n"
            "                   [--keep]\n"
            "  Enqueues a generated campaign, then claims and resolves it.\n"
            "  Default: 1,000,000 recipients, batches of 10,000, 1,000 "
            "domains,\n  a temporary spool removed at the end (--keep keeps "
            "it).\n");
}

/* Parse a positive number argument or exit 64. */
static long num_arg(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "queue-bench: not a positive number: %s\n", s);
        exit(64);
    }
    return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--demo")) o->demo = 1;
        else if (!strcmp(a, "--nosync")) o->nosync = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--keep")) o->keep = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); exit(0); }
        else if (i + 1 < argc && !strcmp(a, "--spool")) o->spool = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "-n")) o->n = num_arg(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--batch")) o->batch = num_arg(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--domains")) o->domains = num_arg(argv[++i]);
        else { usage(); exit(64); }
    }
}

/* Progress: one rewritten line on a terminal, a line a second otherwise. */
static void progress(const char *what, long done, long total, double t0,
                     int force)
{
    static double last;
    double t = now_s();
    int tty = isatty(2);
    if (!force && t - last < (tty ? 0.2 : 1.0))
        return;
    last = t;
    double rate = t > t0 ? (double)done / (t - t0) : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s%-9s %9ld / %ld  %5.1f%%  %9.0f/s  ETA %4.0fs%s",
            tty ? "\r" : "", what, done, total,
            total ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
            tty ? "" : "\n");
    if (tty && force)
        fputc('\n', stderr);
}

static void on_enqueued(void *arg, int status, uint64_t first, uint64_t msg)
{
    long n = (long)(intptr_t)arg;
    if (status) {
        fprintf(stderr, "\nqueue-bench: enqueue failed: %s\n",
                queue_strerror(status));
        atomic_fetch_add(&failed, 1);
    }
    atomic_fetch_add(&done_rcpts, n);
}

static void on_outcome(void *arg, int status, uint64_t first, uint64_t msg)
{
    if (status)
        atomic_fetch_add(&failed, 1);
    atomic_fetch_add(&done_outcomes, 1);
}

/* Exit code for a spool error (sysexits). */
static int exit_for(int err)
{
    return err == QUEUE_EFOREIGN || err == QUEUE_ECORRUPT ||
                   err == QUEUE_ESCHEMA ? 65 : 74;
}

/* Phase 1: enqueue o->n recipients; returns elapsed seconds. */
static double enqueue_all(struct queue *q, const struct opts *o)
{
    struct queue_campaign_rcpt *r = calloc((size_t)o->batch, sizeof *r);
    char *names = malloc((size_t)o->batch * 48);
    if (!r || !names) {
        fprintf(stderr, "queue-bench: out of memory\n");
        exit(71);
    }
    double t0 = now_s();
    for (long i = 0; i < o->n; i += o->batch) {
        long k = o->n - i < o->batch ? o->n - i : o->batch;
        for (long j = 0; j < k; j++) {
            long id = i + j;
            char *s = names + j * 48;
            snprintf(s, 48, "user%ld@d%ld.example", id, id % o->domains);
            r[j].contact = (uint64_t)id + 1;
            r[j].rcpt = s;
        }
        int err = queue_submit_campaign(q, 1, 1, r, (size_t)k, NULL,
                                        on_enqueued, (void *)(intptr_t)k);
        if (err) {
            fprintf(stderr, "queue-bench: submit: %s\n", queue_strerror(err));
            exit(exit_for(err));
        }
        /* the payload was copied: the buffers can be reused at once */
        if (o->demo)
            progress("enqueue", atomic_load(&done_rcpts), o->n, t0, 0);
    }
    queue_flush(q);
    double el = now_s() - t0;
    if (o->demo)
        progress("enqueue", atomic_load(&done_rcpts), o->n, t0, 1);
    free(r);
    free(names);
    return el;
}

/* Phase 2: claim everything due and resolve it; returns elapsed seconds. */
static double resolve_all(struct queue *q, const struct opts *o,
                          double *claim_s)
{
    size_t cap = 10000;
    struct queue_claim *c = malloc(cap * sizeof *c);
    if (!c)
        exit(71);
    double t0 = now_s();
    *claim_s = 0;
    for (;;) {
        double tc = now_s();
        int n = queue_claim(q, (int64_t)time(NULL), c, cap);
        *claim_s += now_s() - tc;
        if (n < 0) {
            fprintf(stderr, "queue-bench: claim: %s\n", queue_strerror(n));
            exit(exit_for(n));
        }
        if (n == 0) {
            if (queue_claimed(q) == 0)
                break;
            queue_flush(q);
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint64_t id = c[i].id;
            struct queue_outcome out = { .delivery = id, .mx = "mx.example",
                                         .type = QUEUE_EV_DELIVERED,
                                         .code = 250, .enhanced = "2.0.0",
                                         .text = "ok queued" };
            switch (id % 100) {
            case 0: case 1: case 2: case 3: case 4:
                out.type = QUEUE_EV_DEFERRED; out.code = 451;
                out.enhanced = "4.3.0"; out.text = "try again later";
                out.retry_at = (int64_t)time(NULL) + 3600;
                break;
            case 5: case 6: case 7:
                out.type = QUEUE_EV_BOUNCED; out.code = 550;
                out.enhanced = "5.1.1"; out.text = "user unknown";
                break;
            case 8: case 9:
                out.type = QUEUE_EV_EXPIRED; out.code = 0;
                out.enhanced = "4.4.7"; out.text = "expired";
                break;
            }
            int err = queue_submit_outcomes(q, &out, 1, NULL, on_outcome, NULL);
            if (err) {
                fprintf(stderr, "queue-bench: outcome: %s\n",
                        queue_strerror(err));
                exit(exit_for(err));
            }
        }
        if (o->demo)
            progress("resolve", atomic_load(&done_outcomes), o->n, t0, 0);
    }
    queue_flush(q);
    double el = now_s() - t0;
    if (o->demo)
        progress("resolve", atomic_load(&done_outcomes), o->n, t0, 1);
    free(c);
    return el;
}

int main(int argc, char **argv)
{
    struct opts o = { .n = 1000000, .batch = 10000, .domains = 1000 };
    char tmpl[] = "/tmp/sluice-bench-XXXXXX";
    parse(argc, argv, &o);
    if (!o.spool) {
        if (!mkdtemp(tmpl)) {
            perror("queue-bench: mkdtemp");
            return 73;
        }
        o.spool = tmpl;
    }

    struct queue_options qo = { .flags = QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM |
                                         (o.nosync ? QUEUE_OPEN_NOSYNC : 0) };
    struct queue *q;
    int err = queue_open(&q, o.spool, &qo);
    if (err) {
        fprintf(stderr, "queue-bench: %s: %s\n", queue_strerror(err),
                queue_last_detail());
        return exit_for(err);
    }
    struct queue_info i0, i1, i2;
    queue_info(q, &i0);
    if (o.demo)
        fprintf(stderr, "spool %s (%s mode): enqueuing a campaign of %ld "
                "recipients to %ld domains\n", o.spool,
                o.nosync ? "no-sync" : "durable", o.n, o.domains);

    double enq_s = enqueue_all(q, &o);
    queue_info(q, &i1);
    double claim_s;
    double res_s = resolve_all(q, &o, &claim_s);
    queue_info(q, &i2);

    struct queue_counts t;
    queue_counts_total(q, &t);
    double per_rcpt = (double)(i1.last_page_bytes - i0.last_page_bytes) /
                      (double)o.n;
    long outs = atomic_load(&done_outcomes);
    uint64_t commits_res = i2.commits - i1.commits;
    if (o.json) {
        printf("{\"recipients\":%ld,\"domains\":%ld,\"batch\":%ld,"
               "\"mode\":\"%s\",\"enqueue_s\":%.3f,\"enqueue_per_s\":%.0f,"
               "\"bytes_per_recipient\":%.1f,\"outcomes\":%ld,"
               "\"outcome_s\":%.3f,\"outcomes_per_s\":%.0f,"
               "\"claim_s\":%.3f,\"commits_enqueue\":%llu,"
               "\"commits_outcomes\":%llu,\"failed\":%ld,"
               "\"queued\":%llu,\"delivered\":%llu,\"deferred\":%llu,"
               "\"bounced\":%llu,\"expired\":%llu}\n",
               o.n, o.domains, o.batch, o.nosync ? "nosync" : "durable",
               enq_s, (double)o.n / enq_s, per_rcpt, outs, res_s,
               (double)outs / res_s, claim_s,
               (unsigned long long)(i1.commits - i0.commits),
               (unsigned long long)commits_res, atomic_load(&failed),
               (unsigned long long)t.queued, (unsigned long long)t.delivered,
               (unsigned long long)t.deferred, (unsigned long long)t.bounced,
               (unsigned long long)t.expired);
    } else {
        printf("enqueue   %ld recipients in %.2f s: %.0f recipients/s "
               "(%llu commits)\n", o.n, enq_s, (double)o.n / enq_s,
               (unsigned long long)(i1.commits - i0.commits));
        printf("spool     %.1f bytes per queued recipient (%.1f MB in use)\n",
               per_rcpt, (double)i1.last_page_bytes / 1e6);
        printf("outcomes  %ld in %.2f s: %.0f outcomes/s (%llu commits, "
               "%.1f outcomes per commit; claiming took %.2f s)\n",
               outs, res_s, (double)outs / res_s,
               (unsigned long long)commits_res,
               commits_res ? (double)outs / (double)commits_res : 0.0,
               claim_s);
        printf("counters  queued %llu  delivered %llu  deferred %llu  "
               "bounced %llu  expired %llu\n",
               (unsigned long long)t.queued, (unsigned long long)t.delivered,
               (unsigned long long)t.deferred, (unsigned long long)t.bounced,
               (unsigned long long)t.expired);
    }
    queue_close(q);
    if (o.spool == tmpl && !o.keep) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
        if (system(cmd) != 0)
            fprintf(stderr, "queue-bench: could not remove %s\n", tmpl);
    }
    return atomic_load(&failed) ? 74 : 0;
}
