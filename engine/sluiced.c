/*
 * sluiced.c - the sluice daemon: read the configuration, run the engine.
 *
 * SYNOPSIS
 *   sluiced -c FILE [-v] [--progress] [--exit-when-empty]
 *   sluiced -t -c FILE
 *
 * DESCRIPTION
 *   -t checks the configuration, the files its keys name and every DKIM
 *   key the daemon would load (the spool's too, opened read-only), and
 *   exits.  SIGHUP reloads limits, routes, TLS policies and DKIM keys
 *   without touching queued mail (a broken file or a refused key is
 *   reported and the old configuration kept).  SIGTERM or SIGINT stop
 *   opening sessions, let sessions in flight finish within drain_timeout,
 *   commit, and exit 0 (75 when a full spool still could not take their
 *   outcomes at drain_timeout: record.c).  --exit-when-empty exits the
 *   same way once nothing is queued (for demos and tests); --progress
 *   prints a live status line.
 *
 * EXIT STATUS
 *   0 stopped cleanly; 64 usage; 65 foreign or damaged spool, or an event
 *   log that is damaged or written for another spool; 71 system error; 73
 *   the event log cannot be opened (or another process holds it); 74 spool
 *   I/O error; 75 stopped with outcomes the full spool could not take
 *   (their deliveries are due again); 78 configuration error.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "engine.h"
#include "signer.h"

/* The usage and every option, on f. */
static void usage(FILE *f)
{
    fprintf(f,
        "usage: sluiced -c FILE [-v] [--progress] [--exit-when-empty]\n"
        "       sluiced -t -c FILE\n"
        "\n"
        "  -c FILE            the configuration (INI; README \"Running "
        "sluiced\")\n"
        "  -t                 check it and exit: every key, the files and\n"
        "                     directories keys name, and every DKIM key the\n"
        "                     daemon would load (the spool's verified domains\n"
        "                     too, read-only); 0 ok, 78 with FILE:LINE: reason\n"
        "  -v                 trace every SMTP state change on stderr\n"
        "  --progress         a live status line on stderr\n"
        "  --exit-when-empty  stop as on SIGTERM once nothing is queued\n"
        "  -h, --help         this help\n"
        "\n"
        "SIGHUP reloads the configuration and the DKIM keys (a broken file or\n"
        "a refused key keeps the running ones); SIGTERM or SIGINT let the\n"
        "sessions in flight finish within drain_timeout and exit 0.\n"
        "Exit status: 0 stopped cleanly, 64 usage, 65 foreign or damaged\n"
        "spool, 71 system error, 74 spool I/O error, 78 configuration error.\n");
}

/* The exit status for a spool that cannot be opened. */
static int spool_exit(int err)
{
    return err == QUEUE_EFOREIGN || err == QUEUE_ECORRUPT ||
           err == QUEUE_ESCHEMA ? 65 : 74;
}

/* -t: load the configuration and every DKIM key the daemon would load:
 * those of the [account N] domains and of the spool's verified domains
 * (the spool opened read-only; one not made yet has none).  Says what it
 * found; returns the exit status. */
static int check_only(const char *path)
{
    struct config cfg;
    struct queue *q = NULL;
    struct signer *sg;
    char err[600];

    if (config_load(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        return 78;
    }
    struct queue_options qo = { .flags = QUEUE_OPEN_READONLY };
    int rc = queue_open(&q, cfg.spool, &qo);
    if (rc && rc != -ENOENT) {
        fprintf(stderr, "sluiced: spool %s: %s\n  %s\n", cfg.spool,
                queue_strerror(rc), queue_last_detail());
        config_free(&cfg);
        return spool_exit(rc);
    }
    int code = 0;
    if (signer_build(&cfg, q, &sg, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        code = 78;
    } else {
        printf("%s: configuration ok (%zu domain policies, %zu DKIM keys "
               "for %zu domains%s)\n", path, cfg.ndomains, signer_nkeys(sg),
               signer_ndomains(sg), q ? "" : "; no spool yet");
        signer_unref(sg);
    }
    queue_close(q);
    config_free(&cfg);
    return code;
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
    bool test = false;
    struct engine e = { 0 };
    char err[600];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-t")) test = true;
        else if (!strcmp(argv[i], "-v")) smtp_trace = 1;
        else if (!strcmp(argv[i], "--progress")) e.progress = true;
        else if (!strcmp(argv[i], "--exit-when-empty")) e.exit_when_empty = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluiced: unknown option %s\n", argv[i]);
            usage(stderr);
            return 64;
        }
    }
    if (!path) {
        usage(stderr);
        return 64;
    }
    if (test)
        return check_only(path);
    if (config_load(path, &e.cfg, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        return 78;
    }
    if (signer_build(&e.cfg, NULL, &e.signer, err, sizeof err)) {
        fprintf(stderr, "sluiced: %s\n", err);
        config_free(&e.cfg);
        return 78;
    }
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
    e.loop = uv_default_loop();
    int rc = engine_start(&e);
    if (!rc && (rc = eventlog_open(&e, err, sizeof err))) {
        fprintf(stderr, "sluiced: %s\n", err);
        e.exit_code = rc == ENGINE_E_LOGDATA ? 65 : 73;
        goto out;
    }
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
    eventlog_close(&e); /* the last lines and the cursor, before the spool */
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
    /* the events the spool committed during this run (eventlog.c) */
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
