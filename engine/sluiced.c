/*
 * sluiced.c - the sluice daemon: read the configuration, run the engine.
 *
 * SYNOPSIS
 *   sluiced -c FILE [-v] [--progress] [--exit-when-empty] [--create]
 *           [--skip-spool-check]
 *   sluiced -t -c FILE
 *
 * DESCRIPTION
 *   -t checks the configuration, the files its keys name, every DKIM
 *   key the daemon would load (the spool's too, opened read-only) and
 *   that audit_key is the key of the spool's audit trail, and exits.  SIGHUP reloads limits, routes, TLS policies and DKIM keys
 *   without touching queued mail (a broken file or a refused key is
 *   reported and the old configuration kept).  SIGUSR1 opens the event
 *   log and the accounting files by name again (logrotate).  SIGTERM or
 *   SIGINT stop opening sessions, let sessions in flight finish within drain_timeout,
 *   commit, and exit 0 (75 when a full spool still could not take their
 *   outcomes at drain_timeout: outcome.c).  --exit-when-empty exits the
 *   same way once nothing is queued (for demos and tests); --progress
 *   prints a live status line.
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
 *   With audit_key the audit records sluiced appends (one-click
 *   unsubscribes) are keyed, and with audit_checkpoint each one's head is
 *   appended to that file; the event log gets an "audit" line with the
 *   head of each (eventlog.c).
 *
 * EXIT STATUS
 *   0 stopped cleanly; 64 usage; 65 foreign or damaged spool (also a bus
 *   error reading it), or an event log (or accounting file) that is
 *   damaged or written for another spool; 71 system error; 73 the event
 *   log or an accounting file cannot be opened (or another process holds
 *   it); 74 spool I/O error; 75 stopped with
 *   outcomes the full spool could not take (their deliveries are due
 *   again); 78 configuration error.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "classify.h"
#include "engine.h"
#include "event_names.h"
#include "evstream.h"
#include "metrics.h"
#include "smtpd.h"
#include "queue_admin.h"
#include "signer.h"
#include "incident.h"
#include "report_weekly.h"
#include "webhook.h"

/* The usage and every option, on f. */
static void usage(FILE *f)
{
    fprintf(f,
        "usage: sluiced -c FILE [-v] [--progress] [--exit-when-empty]\n"
        "               [--create] [--skip-spool-check]\n"
        "       sluiced -t -c FILE\n"
        "\n"
        "  -c FILE            the configuration (INI; README \"Running "
        "sluiced\")\n"
        "  -t                 check it and exit: every key, the files and\n"
        "                     directories keys name, and every DKIM key the\n"
        "                     daemon would load (the spool's verified domains\n"
        "                     too, read-only); 0 ok, 78 with FILE:LINE: reason\n"
        "  -v                 trace every SMTP and site state change on stderr\n"
        "  --progress         a live status line on stderr\n"
        "  --exit-when-empty  stop as on SIGTERM once nothing is queued\n"
        "  --create           start an empty spool where data.mdb is missing\n"
        "                     or empty beside the spool's lock files (refused\n"
        "                     with exit 65 without it)\n"
        "  --skip-spool-check do not walk the spool before writing to it, as\n"
        "                     spool_check = no does (the walk reads the whole\n"
        "                     file once, ~2.5 s a GB; a damaged spool\n"
        "                     is refused with 65: 'sluice spool check' shows\n"
        "                     what, 'sluice spool salvage' copies what can be\n"
        "                     read)\n"
        "  -h, --help         this help\n"
        "\n"
        "SIGHUP reloads the configuration and the DKIM keys (a broken file or\n"
        "a refused key keeps the running ones); SIGUSR1 opens the event log\n"
        "and the accounting files by name again; SIGTERM or SIGINT let the\n"
        "sessions in flight finish within drain_timeout and exit 0.\n"
        "Exit status: 0 stopped cleanly, 64 usage, 65 foreign or damaged\n"
        "spool (or event log, accounting file), 71 system error, 73 event log\n"
        "or accounting file cannot be opened,\n"
        "74 spool I/O error, 75 stopped with outcomes a full spool could not\n"
        "take, 78 configuration error.\n");
}

/* The exit status for a spool that cannot be opened. */
static int spool_exit(int err)
{
    return err == QUEUE_EFOREIGN || err == QUEUE_ECORRUPT ||
           err == QUEUE_ESCHEMA ? 65 : 74;
}

/* A checkpoint line of the audit trail could not be written. */
static void on_audit_warn(void *arg, const char *text)
{
    (void)arg;
    fprintf(stderr, "sluiced: %s\n", text);
}

/* sluiced appended an audit record: its head goes to the event log. */
static void on_audit_exported(void *arg, uint64_t seq,
                              const unsigned char head[QUEUE_AUDIT_HASH])
{
    eventlog_audit(arg, seq, head);
}

/* A trail whose last record is keyed takes records of that key only:
 * refuse to start without it (every one-click unsubscribe would fail)
 * rather than find out at the first.  0 or ENGINE_E_CONFIG. */
static int audit_key_fits(struct queue *q, const char *path,
                          const unsigned char *key)
{
    unsigned char id[QUEUE_AUDIT_KEY_ID], mine[QUEUE_AUDIT_KEY_ID];
    bool keyed;
    if (queue_audit_last_key(q, &keyed, id) || !keyed)
        return 0;                /* unreadable: the append will say */
    if (!key) {
        fprintf(stderr, "sluiced: the spool's audit trail is keyed: set "
                "audit_key in [sluiced] to its key file\n");
        return ENGINE_E_CONFIG;
    }
    queue_audit_key_id(key, mine);
    if (memcmp(id, mine, sizeof id)) {
        fprintf(stderr, "sluiced: audit_key %s is not the key of the "
                "spool's audit trail\n", path);
        return ENGINE_E_CONFIG;
    }
    return 0;
}

/* Give the spool the audit key and checkpoint file of the configuration:
 * the records sluiced appends (one-click unsubscribes) are keyed and
 * checkpointed like those of the tools.  0 or ENGINE_E_CONFIG. */
static int audit_start(struct engine *e)
{
    unsigned char key[QUEUE_AUDIT_KEY];
    if (e->cfg.audit_key && queue_audit_key_load(e->cfg.audit_key, key)) {
        fprintf(stderr, "sluiced: %s\n", queue_last_detail());
        return ENGINE_E_CONFIG;
    }
    if (audit_key_fits(e->q, e->cfg.audit_key,
                       e->cfg.audit_key ? key : NULL)) {
        OPENSSL_cleanse(key, sizeof key);
        return ENGINE_E_CONFIG;
    }
    struct queue_audit_config ac = {
        .key = e->cfg.audit_key ? key : NULL,
        .checkpoint = e->cfg.audit_checkpoint, .warn = on_audit_warn,
        .exported = on_audit_exported, .arg = e,
    };
    int err = queue_audit_configure(e->q, &ac);
    OPENSSL_cleanse(key, sizeof key);
    if (err) {
        fprintf(stderr, "sluiced: audit: %s\n", engine_strerror(err));
        return ENGINE_E_CONFIG;
    }
    return 0;
}

/* -t: the audit key fits the spool's trail (q NULL: no spool yet); 0 or
 * 78, said on stderr. */
static int check_audit_key(const struct config *cfg, struct queue *q)
{
    unsigned char key[QUEUE_AUDIT_KEY];
    if (!q)
        return 0;
    if (cfg->audit_key && queue_audit_key_load(cfg->audit_key, key)) {
        fprintf(stderr, "sluiced: %s\n", queue_last_detail());
        return 78;
    }
    int rc = audit_key_fits(q, cfg->audit_key, cfg->audit_key ? key : NULL);
    OPENSSL_cleanse(key, sizeof key);
    return rc ? 78 : 0;
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
                engine_strerror(rc), queue_last_detail());
        config_free(&cfg);
        return spool_exit(rc);
    }
    int code = check_audit_key(&cfg, q);
    if (code) {
        /* said */
    } else if (signer_build(&cfg, q, &sg, err, sizeof err)) {
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

/* SIGHUP: read the configuration again (scheduler.c). */
static void on_hup(uv_signal_t *h, int sig)
{
    (void)sig;
    engine_reload(h->data);
}

/* SIGUSR1: open the event log and accounting files by name again
 * (eventlog.c), for logrotate's move-and-create. */
static void on_usr1(uv_signal_t *h, int sig)
{
    (void)sig;
    eventlog_reopen(h->data);
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
        else if (!strcmp(argv[i], "--progress")) e.run.progress = true;
        else if (!strcmp(argv[i], "--exit-when-empty")) e.run.exit_when_empty = true;
        else if (!strcmp(argv[i], "--create")) e.run.create = true;
        else if (!strcmp(argv[i], "--skip-spool-check")) skip_check = true;
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
    /* before any thread: the walk runs in a child process */
    int crc = skip_check || !e.cfg.spool_check ? 0
                                               : check_spool(e.cfg.spool);
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
    e.loop = uv_default_loop();
    int rc = engine_start(&e);
    if (!rc)
        rc = audit_start(&e);
    if (!rc)
        rc = event_names_start(&e);   /* before the first event_json() */
    if (!rc && (rc = eventlog_open(&e, err, sizeof err))) {
        fprintf(stderr, "sluiced: %s\n", err);
        e.run.exit_code = rc == ENGINE_E_LOGDATA ? 65 : 73;
        goto out;
    }
    if (!rc && (rc = accounting_open(&e, err, sizeof err))) {
        fprintf(stderr, "sluiced: %s\n", err);
        e.run.exit_code = rc == ENGINE_E_CONFIG ? 78
                          : rc == ENGINE_E_LOGDATA ? 65 : 73;
        goto out;
    }
    if (!rc)
        rc = metrics_open(&e);
    if (!rc && (rc = incidents_open(&e, err, sizeof err))) {
        fprintf(stderr, "sluiced: %s\n", err);
        e.run.exit_code = spool_exit(rc);
        goto out;
    }
    if (!rc && (rc = webhooks_open(&e, err, sizeof err))) {
        fprintf(stderr, "sluiced: %s\n", err);
        e.run.exit_code = rc == ENGINE_E_CONFIG ? 78 : spool_exit(rc);
        goto out;
    }
    if (!rc)
        rc = report_weekly_open(&e);
    if (!rc)
        rc = unsub_http_start(&e);
    if (!rc)
        rc = smtpd_start(&e);
    if (rc) {
        e.run.exit_code = rc == ENGINE_E_CONFIG ? 78 : spool_exit(rc);
        goto out;
    }
    uv_signal_init(e.loop, &e.sig_term);
    uv_signal_init(e.loop, &e.sig_int);
    uv_signal_init(e.loop, &e.sig_hup);
    e.sig_term.data = e.sig_int.data = e.sig_hup.data = &e;
    uv_signal_start(&e.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&e.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&e.sig_hup, on_hup, SIGHUP);
    uv_signal_init(e.loop, &e.sig_usr1);
    e.sig_usr1.data = &e;
    uv_signal_start(&e.sig_usr1, on_usr1, SIGUSR1);
    uv_run(e.loop, UV_RUN_DEFAULT);
    if (e.run.progress)
        fprintf(stderr, "\n");
out:
    /* orderly teardown: no more unsubscribes, writer drained, handles */
    incidents_close(&e); /* its job writes through the writer */
    controls_wait(&e);   /* so does a campaign's resume */
    report_weekly_close(&e); /* so does the weekly report's */
    unsub_http_stop(&e);
    smtpd_stop(&e);
    if (e.q)
        queue_flush(e.q);
    if (e.cmp)
        queue_completer_close(e.cmp);
    eventlog_close(&e); /* the last lines and the cursor, before the spool */
    accounting_close(&e);
    webhooks_close(&e); /* transfers aborted, cursors saved */
    evstream_stop(&e);  /* after the consumers that read it */
    event_names_stop(&e); /* after the consumers that name events */
    if (e.dns)
        dns_close(e.dns);
    dest_free_all(&e);
    site_free_all(&e);
    uv_walk(e.loop, close_walk, NULL);
    uv_run(e.loop, UV_RUN_DEFAULT);
    uv_loop_close(e.loop);
    smtpd_free(&e);
    metrics_free(&e);
    queue_close(e.q);
    if (e.ssl)
        SSL_CTX_free(e.ssl);
    /* the events the spool committed during this run (eventlog.c) */
    fprintf(stderr, "sluiced: stopped: delivered %llu, deferred %llu, "
                    "bounced %llu, expired %llu, suppressed %llu, "
                    "cancelled %llu\n",
            (unsigned long long)e.st.delivered,
            (unsigned long long)e.st.deferred,
            (unsigned long long)e.st.bounced,
            (unsigned long long)e.st.expired,
            (unsigned long long)e.st.suppressed,
            (unsigned long long)e.st.cancelled);
    body_free_all(&e);
    controls_free(&e);
    limits_close(&e);
    live_free(&e);
    accounts_close(&e);
    signer_unref(e.signer);
    config_free(&e.cfg);
    return e.run.exit_code;
}
