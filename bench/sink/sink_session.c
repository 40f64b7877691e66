/*
 * sink_session.c - one client connection of sluice-sink: accept, the libuv
 * read and write paths, flow control, timers and closing.
 *
 * Owns struct sink_session and its buffers.  A session has two handles (the
 * TCP stream and a timer); it is unlinked from the server when closing
 * starts and freed in the last close callback, after libuv has called back
 * every pending write and shutdown request.
 *
 * Replies are appended to s->out and written once per read batch (one
 * uv_try_write, falling back to a queued uv_write), so pipelined commands
 * get one write.  Reading stops while the write queue holds more than
 * SINK_WQ_HIGH bytes and while the session is paused on a timer.
 *
 * Failures: any read or write error, or a buffer cap hit, closes only this
 * session.  Out of memory during accept drops the connection.
 */
#include <stdlib.h>
#include <string.h>

#include "sink.h"

/* A queued write with its own copy of the bytes. */
struct sink_wreq {
    uv_write_t req;
    struct sink_session *s;
    size_t len;
    char data[];
};

static void session_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void session_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Free a session once both of its handles are closed. */
static void on_close(uv_handle_t *h)
{
    struct sink_session *s = h->data;
    struct sink_server *srv = s->srv;

    if (--s->handles_open > 0)
        return;
    sink_tls_end(s);
    sink_buf_free(&s->carry);
    sink_buf_free(&s->out);
    sink_buf_free(&s->rcpts);
    sink_buf_free(&s->body);
    free(s->rcpt_dom);
    free(s->pending_reply);
    free(s);
    sink_server_session_gone(srv);
}

/* Close the session now: unlink it and close both handles. */
void sink_session_close(struct sink_session *s)
{
    struct sink_server *srv = s->srv;

    if (s->closing)
        return;
    s->closing = true;
    if (srv->cfg.verbose)
        sink_log("session %llu closed", (unsigned long long)s->id);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (s->counted)
        sink_stats_session_close(&srv->stats, s->addr);
    if (s->mails == 0)
        srv->stats.sessions_without_mail++;
    else if (s->mails == 1)
        srv->stats.sessions_one_mail++;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->tcp, on_close);
    uv_close((uv_handle_t *)&s->timer, on_close);
}

/* Start or stop reading as pause, close and the write queue require. */
void sink_session_update_reading(struct sink_session *s)
{
    size_t wq;
    bool want;

    if (s->closing)
        return;
    wq = uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp);
    want = !s->paused && wq < (s->reading ? SINK_WQ_HIGH : SINK_WQ_LOW);
    if (want && !s->reading) {
        if (uv_read_start((uv_stream_t *)&s->tcp, session_alloc,
                          session_read) != 0) {
            sink_session_close(s);
            return;
        }
        s->reading = true;
    } else if (!want && s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
    }
}

/* A queued write finished: free it and maybe resume reading. */
static void on_write(uv_write_t *req, int status)
{
    struct sink_wreq *w = (struct sink_wreq *)req;
    struct sink_session *s = w->s;

    free(w);
    if (s->closing)
        return;
    if (status < 0) {
        sink_session_close(s);
        return;
    }
    sink_session_update_reading(s);
}

/* After a QUIT-like close, the FIN went out: close the handles. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct sink_session *s = req->data;

    sink_session_close(s);
}

/* Write bytes to the socket now if possible, else queue a copy. */
int sink_session_write_raw(struct sink_session *s, const char *p, size_t n)
{
    uv_stream_t *st = (uv_stream_t *)&s->tcp;
    struct sink_wreq *w;
    uv_buf_t buf;
    int rc;

    if (s->closing || n == 0)
        return 0;
    if (uv_stream_get_write_queue_size(st) == 0) {
        buf = uv_buf_init((char *)p, (unsigned int)n);
        rc = uv_try_write(st, &buf, 1);
        if (rc >= 0 && (size_t)rc == n)
            return 0;
        if (rc < 0 && rc != UV_EAGAIN)
            return rc;
        if (rc > 0) {
            p += rc;
            n -= (size_t)rc;
        }
    }
    w = malloc(sizeof(*w) + n);
    if (w == NULL)
        return UV_ENOMEM;
    w->s = s;
    w->len = n;
    memcpy(w->data, p, n);
    buf = uv_buf_init(w->data, (unsigned int)n);
    rc = uv_write(&w->req, st, &buf, 1, on_write);
    if (rc != 0) {
        free(w);
        return rc;
    }
    sink_session_update_reading(s);
    return 0;
}

/* Write the pending replies (through TLS when active); then maybe FIN. */
void sink_session_flush(struct sink_session *s)
{
    int rc = 0;

    if (s->closing)
        return;
    if (s->out.len > 0) {
        if (s->ssl != NULL)
            rc = sink_tls_output(s, s->out.data, s->out.len);
        else
            rc = sink_session_write_raw(s, s->out.data, s->out.len);
        sink_buf_reset(&s->out, SINK_OUT_FLUSH);
        if (rc != 0) {
            sink_session_close(s);
            return;
        }
    }
    if (s->shutting_down && !s->shutdown_started) {
        s->shutdown_started = true;
        s->shutdown_req.data = s;
        if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp,
                        on_shutdown) != 0)
            sink_session_close(s);
    }
}

/* Queue one reply (text includes CRLF); flush early when much is pending. */
void sink_session_reply(struct sink_session *s, const char *text)
{
    if (s->closing)
        return;
    if (sink_buf_append(&s->out, text, strlen(text)) != 0) {
        sink_session_close(s);
        return;
    }
    if (s->out.len >= SINK_OUT_FLUSH)
        sink_session_flush(s);
}

/* Send what is pending, then end the session with a FIN and close. */
void sink_session_quit(struct sink_session *s)
{
    s->in = SINK_IN_DISCARD;
    s->shutting_down = true;
    sink_smtp_enter(s, SINK_ST_CLOSING);
    sink_session_flush(s);
}

/* The session timer fired: let the protocol layer act. */
static void on_timer(uv_timer_t *t)
{
    struct sink_session *s = t->data;

    if (!s->closing)
        sink_smtp_timer_fired(s);
}

/* Hold all input processing for ms milliseconds. */
void sink_session_pause(struct sink_session *s, uint64_t ms)
{
    s->paused = true;
    sink_session_update_reading(s);
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

/* Hand libuv the shared read buffer (alloc and read run back to back). */
static void session_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct sink_session *s = h->data;

    *buf = uv_buf_init(s->srv->readbuf, SINK_READ_CHUNK);
}

/* Bytes arrived: decrypt if needed, parse, and write the replies. */
static void session_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct sink_session *s = st->data;

    if (nread == 0 || s->closing)
        return;
    if (nread < 0) {
        sink_session_close(s);
        return;
    }
    s->srv->stats.bytes_in += (uint64_t)nread;
    if (s->ssl != NULL) {
        if (sink_tls_input(s, buf->base, (size_t)nread) != 0) {
            sink_session_close(s);
            return;
        }
    } else {
        sink_input_feed(s, buf->base, (size_t)nread);
    }
    sink_session_flush(s);
}

/* Name the local address a client connected to, e.g. "127.0.0.5". */
static int local_address(uv_tcp_t *tcp, char *name, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len);

    if (rc != 0)
        return rc;
    if (ss.ss_family == AF_INET6)
        return uv_ip6_name((struct sockaddr_in6 *)&ss, name, cap);
    return uv_ip4_name((struct sockaddr_in *)&ss, name, cap);
}

/* Set up a new session's buffers and handles; NULL on failure. */
static struct sink_session *session_new(struct sink_server *srv)
{
    struct sink_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->srv = srv;
    s->id = ++srv->next_session_id;
    sink_buf_init(&s->carry, SINK_CARRY_MAX);
    sink_buf_init(&s->out, 4 * 1024 * 1024);
    sink_buf_init(&s->rcpts, srv->cfg.max_rcpt * (SINK_ADDR_MAX + 1));
    sink_buf_init(&s->body, (size_t)srv->cfg.max_size);
    uv_tcp_init(srv->loop, &s->tcp);
    uv_timer_init(srv->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles_open = 2;
    s->next = srv->sessions;
    if (s->next != NULL)
        s->next->prev = s;
    srv->sessions = s;
    return s;
}

/* Accept one connection, count it, and greet or refuse it. */
void sink_session_accept(struct sink_server *srv)
{
    struct sink_session *s = session_new(srv);
    char name[64];
    uint64_t limit = srv->cfg.max_conn_per_domain;

    if (s == NULL) {
        sink_log("out of memory accepting a connection");
        return;
    }
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&s->tcp) ||
        local_address(&s->tcp, name, sizeof(name)) != 0) {
        s->addr = NULL;
        sink_session_close(s);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    s->addr = sink_domain_get(&srv->stats.by_addr, name, strlen(name));
    sink_stats_session_open(&srv->stats, s->addr);
    s->counted = true;
    if (srv->cfg.verbose)
        sink_log("session %llu from local address %s",
                 (unsigned long long)s->id, name);
    if (limit > 0 && s->addr != NULL && s->addr->current > limit) {
        s->addr->conn_limit_violations++;
        srv->stats.conn_limit_violations++;
        sink_session_reply(s, "421 4.7.0 too many connections\r\n");
        sink_session_quit(s);
        sink_session_update_reading(s);
        return;
    }
    sink_smtp_greet(s);
    sink_session_update_reading(s);
    sink_session_flush(s);
}
