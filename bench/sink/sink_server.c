/*
 * sink_server.c - the process skeleton of sluice-sink: the libuv loop, the
 * listener, signals, the periodic stats timer, the pidfile and shutdown.
 *
 * Owns the loop and every server-level handle, the shared read buffers, the
 * TLS context and the stats.  SIGTERM and SIGINT stop the server: the stats
 * are written, the listener and every session are closed, and the loop runs
 * until all close callbacks are done, so the process ends leak-free.
 * SIGUSR1 writes the stats.  --exit-after N stops accepting after the Nth
 * message and stops once the sessions are gone (at most 2 s later).
 *
 * Failures: could not listen or write the pidfile -> SINK_EXIT_OSERR (71);
 * bad TLS files or capture directory -> SINK_EXIT_USAGE (64).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink.h"

#define SINK_DRAIN_GRACE_MS 2000

/* Close a handle unless it is already closing or was never set up. */
static void close_if_open(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

/* Stop serving: write the stats, close the listener and all sessions. */
static void server_stop(struct sink_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    if (srv->cfg.stats_path != NULL && sink_stats_write(srv) != 0)
        sink_log("could not write stats to %s", srv->cfg.stats_path);
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    while (srv->sessions != NULL) {
        struct sink_session *s = srv->sessions;
        sink_session_close(s);   /* unlinks s from the list */
    }
    close_if_open((uv_handle_t *)&srv->sig_term);
    close_if_open((uv_handle_t *)&srv->sig_int);
    close_if_open((uv_handle_t *)&srv->sig_usr1);
    close_if_open((uv_handle_t *)&srv->stats_timer);
    close_if_open((uv_handle_t *)&srv->drain_timer);
}

/* SIGTERM/SIGINT stop the server; SIGUSR1 writes the stats. */
static void on_signal(uv_signal_t *h, int signum)
{
    struct sink_server *srv = h->data;

    if (signum == SIGUSR1) {
        if (srv->cfg.stats_path != NULL && sink_stats_write(srv) != 0)
            sink_log("could not write stats to %s", srv->cfg.stats_path);
        return;
    }
    server_stop(srv);
}

/* Periodic stats dump for --stats-interval. */
static void on_stats_timer(uv_timer_t *t)
{
    struct sink_server *srv = t->data;

    if (sink_stats_write(srv) != 0)
        sink_log("could not write stats to %s", srv->cfg.stats_path);
}

/* The grace period of --exit-after ended. */
static void on_drain_timer(uv_timer_t *t)
{
    server_stop(t->data);
}

/* A client connected. */
static void on_connection(uv_stream_t *listener, int status)
{
    struct sink_server *srv = listener->data;

    if (status < 0) {
        sink_log("accept: %s", uv_strerror(status));
        return;
    }
    sink_session_accept(srv);
}

/* Count an accepted message toward --exit-after; begin draining at N. */
void sink_server_message_accepted(struct sink_server *srv)
{
    if (srv->cfg.exit_after == 0 || srv->draining ||
        srv->stats.messages < srv->cfg.exit_after)
        return;
    srv->draining = true;
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    uv_timer_start(&srv->drain_timer, on_drain_timer, SINK_DRAIN_GRACE_MS, 0);
}

/* A session went away; when draining and none is left, stop. */
void sink_server_session_gone(struct sink_server *srv)
{
    if (srv->draining && srv->sessions == NULL)
        server_stop(srv);
}

/* Bind and listen on the configured address. */
static int server_listen(struct sink_server *srv)
{
    struct sockaddr_storage ss;
    const struct sink_config *cfg = &srv->cfg;
    int rc;

    rc = uv_ip4_addr(cfg->listen_host, cfg->listen_port,
                     (struct sockaddr_in *)&ss);
    if (rc != 0)
        rc = uv_ip6_addr(cfg->listen_host, cfg->listen_port,
                         (struct sockaddr_in6 *)&ss);
    if (rc != 0)
        return rc;
    rc = uv_tcp_init(srv->loop, &srv->listener);
    if (rc != 0)
        return rc;
    srv->listener.data = srv;
    srv->listening = true;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    return rc;
}

/* Write our pid to the pidfile. */
static int write_pidfile(const char *path)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return -errno;
    fprintf(fp, "%ld\n", (long)getpid());
    if (fclose(fp) != 0)
        return -errno;
    return 0;
}

/* Make sure the capture directory exists. */
static int check_capture_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : UV_ENOTDIR;
}

/* Start signals and timers; all are closed in server_stop(). */
static void server_handles(struct sink_server *srv)
{
    uv_signal_init(srv->loop, &srv->sig_term);
    uv_signal_init(srv->loop, &srv->sig_int);
    uv_signal_init(srv->loop, &srv->sig_usr1);
    srv->sig_term.data = srv->sig_int.data = srv->sig_usr1.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_usr1, on_signal, SIGUSR1);
    uv_timer_init(srv->loop, &srv->stats_timer);
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->stats_timer.data = srv->drain_timer.data = srv;
    if (srv->cfg.stats_interval > 0 && srv->cfg.stats_path != NULL)
        uv_timer_start(&srv->stats_timer, on_stats_timer,
                       srv->cfg.stats_interval * 1000,
                       srv->cfg.stats_interval * 1000);
}

/* Set up everything before the loop; returns an exit code. */
static int server_setup(struct sink_server *srv)
{
    int rc;

    if (srv->cfg.capture_dir != NULL &&
        (rc = check_capture_dir(srv->cfg.capture_dir)) != 0) {
        sink_log("capture dir %s: %s", srv->cfg.capture_dir, uv_strerror(rc));
        return SINK_EXIT_USAGE;
    }
    if (srv->cfg.tls_cert != NULL && sink_tls_init(srv) != 0)
        return SINK_EXIT_USAGE;
    srv->readbuf = malloc(SINK_READ_CHUNK);
    srv->plainbuf = malloc(SINK_READ_CHUNK);
    if (srv->readbuf == NULL || srv->plainbuf == NULL ||
        sink_stats_init(&srv->stats, &srv->cfg) != 0) {
        sink_log("out of memory");
        return SINK_EXIT_OSERR;
    }
    rc = server_listen(srv);
    if (rc != 0) {
        sink_log("cannot listen on %s:%d: %s", srv->cfg.listen_host,
                 srv->cfg.listen_port, uv_strerror(rc));
        return SINK_EXIT_OSERR;
    }
    if (srv->cfg.pidfile != NULL && (rc = write_pidfile(srv->cfg.pidfile))) {
        sink_log("pidfile %s: %s", srv->cfg.pidfile, uv_strerror(rc));
        return SINK_EXIT_OSERR;
    }
    server_handles(srv);
    return SINK_EXIT_OK;
}

/* Run the sink until stopped; returns the process exit code. */
int sink_server_run(struct sink_server *srv)
{
    uv_loop_t loop;
    int code;

    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop) != 0) {
        sink_log("cannot create the event loop");
        return SINK_EXIT_OSERR;
    }
    srv->loop = &loop;
    srv->rng = srv->cfg.seed;
    code = server_setup(srv);
    if (code == SINK_EXIT_OK) {
        sink_log("listening on %s:%d mode %s%s", srv->cfg.listen_host,
                 srv->cfg.listen_port, sink_mode_name(srv->cfg.mode),
                 srv->cfg.starttls ? " starttls" : "");
        uv_run(&loop, UV_RUN_DEFAULT);
        sink_stats_summary(srv, stderr);
    } else {
        srv->stopping = true;
        if (srv->listening)
            uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&loop) != 0)
        sink_log("loop closed with handles still open");
    if (code == SINK_EXIT_OK && srv->cfg.pidfile != NULL)
        unlink(srv->cfg.pidfile);
    sink_tls_free(srv);
    sink_stats_free(&srv->stats);
    free(srv->readbuf);
    free(srv->plainbuf);
    return code;
}
