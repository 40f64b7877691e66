/*
 * sluiced.c - the sluice daemon: read the configuration, run the engine.
 *
 * SYNOPSIS
 *   sluiced -c FILE [-v] [--progress] [--exit-when-empty] [--create]
 *           [--skip-spool-check]
 *   sluiced -t -c FILE
 *
 * DESCRIPTION
 *   -t checks the configuration and exits.  SIGHUP reloads limits, routes
 *   and TLS policies without touching queued mail (a broken file is
 *   reported and the old configuration kept).  SIGTERM or SIGINT stop
 *   opening sessions, let sessions in flight finish within drain_timeout,
 *   commit, and exit 0.  --exit-when-empty exits the same way once nothing
 *   is queued (for demos and tests); --progress prints a live status line.
 *
 *   The spool is created when its directory does not exist or is empty.
 *   A directory whose data.mdb is empty, or missing beside lock.mdb or
 *   claim.lock, has lost its data: refused (65) unless --create asks to
 *   start over with an empty spool there.
 *
 *   LMDB keeps no checksums, and writing through a damaged page can
 *   corrupt memory, so before it opens the spool for writing sluiced walks
 *   every page and record of it (queue_check, quick: structure and
 *   records, in a child process) and refuses a damaged spool (65);
 *   --skip-spool-check leaves the walk out (it reads the whole file once).
 *   Damage met while running: repeated damaged-spool errors stop the
 *   engine (65, or 74 for I/O errors: engine_spool_result), and a bus
 *   error reading the mapped
 *   file (SIGBUS: the file was cut or a page is beyond it) is reported in
 *   one line and exits 65 at once: LMDB cannot go on after it.
 *
 * EXIT STATUS
 *   0 stopped cleanly; 64 usage; 65 foreign or damaged spool (also a bus
 *   error reading it); 71 system error; 74 spool I/O error; 78
 *   configuration error.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "engine.h"
#include "signer.h"

static void usage(void)
{
    fprintf(stderr, "usage: sluiced -c FILE [-v] [--progress] "
                    "[--exit-when-empty] [--create]\n"
                    "               [--skip-spool-check]\n"
                    "       sluiced -t -c FILE\n"
                    "--create starts an empty spool where data.mdb is missing "
                    "or empty beside\nthe spool's lock files (refused with "
                    "exit 65 without it).  A damaged spool\nis refused (65): "
                    "'sluice spool check' shows what, 'sluice spool salvage'\n"
                    "copies what can be read.\n");
}

/* The line a bus error prints: made before the engine starts, written by
 * the handler (write() and _exit() are async-signal-safe). */
static char bus_msg[600];
static size_t bus_len;

/* SIGBUS: a page of the mapped spool is beyond the end of data.mdb (cut
 * short while in use, or a damaged page pointing past it).  LMDB cannot
 * go on from here: say so and exit 65. */
static void on_bus_error(int sig)
{
    (void)sig;
    ssize_t n = write(2, bus_msg, bus_len);
    (void)n;
    _exit(65);
}

/* Report one problem of the start-up check (the first few). */
static void on_problem(void *arg, int kind, const char *db, const char *key,
                       const char *what)
{
    unsigned *shown = arg;
    if (kind == QUEUE_REPORT_PROBLEM && (*shown)++ < 5)
        fprintf(stderr, "  %s %s%s%s\n", db, key, *key ? ": " : "", what);
}

/* Walk the spool before writing to it; 0 to go on, else the exit code. */
static int check_spool(const char *spool)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", spool);
    if (stat(path, &st) || st.st_size == 0)
        return 0; /* nothing to walk: the open decides */
    struct queue_check_report r;
    unsigned shown = 0;
    if (st.st_size > (100 << 20))
        fprintf(stderr, "sluiced: checking the spool %s (%.0f MB)\n", spool,
                (double)st.st_size / 1e6);
    int err = queue_check(spool, QUEUE_CHECK_QUICK, on_problem, &shown, &r);
    if (err)
        return 0; /* not a spool to walk: the open says why */
    if (!r.problems)
        return 0;
    fprintf(stderr, "sluiced: spool %s is damaged (%llu problem%s%s); not "
            "starting.  'sluice --spool %s spool check' lists them, 'sluice "
            "spool salvage' copies what can be read into a new spool\n",
            spool, (unsigned long long)r.problems, r.problems == 1 ? "" : "s",
            shown < r.problems ? ", the first shown above" : ", above",
            spool);
    return 65;
}

static void on_stop_signal(uv_signal_t *h, int sig)
{
    struct engine *e = h->data;
    fprintf(stderr, "sluiced: signal %d: draining\n", sig);
    engine_drain(e);
}

static void on_hup(uv_signal_t *h, int sig)
{
    struct engine *e = h->data;
    struct config n;
    char err[600];
    (void)sig;
    if (config_load(e->cfg.path, &n, err, sizeof err)) {
        fprintf(stderr, "sluiced: reload refused, keeping the running "
                        "configuration: %s\n", err);
        return;
    }
    /* the spool cannot move under a running engine */
    free(n.spool);
    n.spool = e->cfg.spool;
    struct signer *sg;
    if (signer_build(&n, e->q, &sg, err, sizeof err)) {
        fprintf(stderr, "sluiced: reload refused, keeping the running "
                        "configuration and keys: %s\n", err);
        n.spool = NULL;
        config_free(&n);
        return;
    }
    signer_unref(e->signer); /* batches in flight keep the old one */
    e->signer = sg;
    e->cfg.spool = NULL;
    struct config old = e->cfg;
    memcpy(&e->cfg, &n, sizeof n); /* timeout_ms keeps its address */
    classify_use_rules(e->cfg.bounce_rules); /* before the old set goes */
    dest_refresh_policies(e);
    site_refresh_policies(e);
    limits_load(e);
    config_free(&old);
    fprintf(stderr, "sluiced: configuration reloaded from %s (%zu DKIM keys "
                    "for %zu domains)\n", e->cfg.path,
            signer_nkeys(e->signer), signer_ndomains(e->signer));
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool test = false, skip_check = false;
    struct engine e = { 0 };
    char err[600];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-t")) test = true;
        else if (!strcmp(argv[i], "-v")) smtp_trace = 1;
        else if (!strcmp(argv[i], "--progress")) e.progress = true;
        else if (!strcmp(argv[i], "--exit-when-empty")) e.exit_when_empty = true;
        else if (!strcmp(argv[i], "--create")) e.create = true;
        else if (!strcmp(argv[i], "--skip-spool-check")) skip_check = true;
        else { usage(); return 64; }
    }
    if (!path) {
        usage();
        return 64;
    }
    if (config_load(path, &e.cfg, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        return 78;
    }
    if (signer_build(&e.cfg, NULL, &e.signer, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        config_free(&e.cfg);
        return 78;
    }
    if (test) {
        printf("%s: configuration ok (%zu domain policies, %zu DKIM keys "
               "for %zu domains)\n", path, e.cfg.ndomains,
               signer_nkeys(e.signer), signer_ndomains(e.signer));
        signer_unref(e.signer);
        config_free(&e.cfg);
        return 0;
    }
    /* before any thread: the walk runs in a child process */
    int crc = skip_check ? 0 : check_spool(e.cfg.spool);
    if (crc) {
        signer_unref(e.signer);
        config_free(&e.cfg);
        return crc;
    }
    int bn = snprintf(bus_msg, sizeof bus_msg, "sluiced: bus error reading "
                      "the spool %s: data.mdb is shorter than its pages or "
                      "damaged; stopping.  Run 'sluice --spool %s spool "
                      "check'\n", e.cfg.spool, e.cfg.spool);
    bus_len = bn < 0 ? 0 : (size_t)bn < sizeof bus_msg ? (size_t)bn
                                                        : sizeof bus_msg - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus_error;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* bodies are made on worker threads and freed on the loop: keep freed
     * memory around instead of trimming and regrowing heaps all the time */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (!getenv("UV_THREADPOOL_SIZE")) {
        char n[16];
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(n, sizeof n, "%u", e.cfg.workers ? e.cfg.workers
                                    : (unsigned)(cores > 0 ? cores : 2));
        setenv("UV_THREADPOOL_SIZE", n, 1);
    }
    if (e.cfg.event_log && !(e.events = fopen(e.cfg.event_log, "a"))) {
        perror(e.cfg.event_log);
        signer_unref(e.signer);
        config_free(&e.cfg);
        return 73;
    }
    if (e.events)
        setvbuf(e.events, NULL, _IOFBF, 1 << 20);
    e.loop = uv_default_loop();
    int rc = engine_start(&e);
    if (!rc)
        rc = unsub_http_start(&e);
    if (rc) {
        e.exit_code = rc == ENGINE_E_CONFIG ? 78
                      : rc == QUEUE_EFOREIGN || rc == QUEUE_ECORRUPT ||
                      rc == QUEUE_ESCHEMA ? 65 : 74;
        goto out;
    }
    uv_signal_init(e.loop, &e.sig_term);
    uv_signal_init(e.loop, &e.sig_int);
    uv_signal_init(e.loop, &e.sig_hup);
    e.sig_term.data = e.sig_int.data = e.sig_hup.data = &e;
    uv_signal_start(&e.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&e.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&e.sig_hup, on_hup, SIGHUP);
    uv_run(e.loop, UV_RUN_DEFAULT);
    if (e.progress)
        fprintf(stderr, "\n");
out:
    /* orderly teardown: no more unsubscribes, writer drained, handles */
    unsub_http_stop(&e);
    if (e.q)
        queue_flush(e.q);
    if (e.cmp)
        queue_completer_close(e.cmp);
    if (e.dns)
        dns_close(e.dns);
    dest_free_all(&e);
    site_free_all(&e);
    uv_walk(e.loop, close_walk, NULL);
    uv_run(e.loop, UV_RUN_DEFAULT);
    uv_loop_close(e.loop);
    queue_close(e.q);
    if (e.ssl)
        SSL_CTX_free(e.ssl);
    if (e.events && fclose(e.events))
        fprintf(stderr, "sluiced: event log: write error\n");
    fprintf(stderr, "sluiced: stopped: delivered %llu, deferred %llu, "
                    "bounced %llu, expired %llu\n",
            (unsigned long long)e.st.delivered,
            (unsigned long long)e.st.deferred,
            (unsigned long long)e.st.bounced,
            (unsigned long long)e.st.expired);
    for (size_t b = 0; b < e.bcap; b++)
        while (e.btab && e.btab[b]) {
            struct body *x = e.btab[b];
            e.btab[b] = x->hnext;
            engine_body_free(x);
        }
    free(e.btab);
    free(e.paused_sites);
    limits_close(&e);
    accounts_close(&e);
    signer_unref(e.signer);
    config_free(&e.cfg);
    return e.exit_code;
}
