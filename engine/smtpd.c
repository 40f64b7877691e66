/*
 * smtpd.c - the SMTP listener's sockets: listeners, connections, the
 * byte stream (plain or TLS), replies, per-state timeouts and closing.
 *
 * DESCRIPTION
 *   Every smtp_listen address gets a uv_tcp listener on the engine's loop.
 *   A connection over smtp_max_clients (or while sluiced drains) is told
 *   421 at greeting and closed.  Input goes into the connection's fixed
 *   buffer; complete command lines go to smtpd_cmd.c, DATA bytes to
 *   smtpd_data.c.  Replies queue in a fixed buffer and are written when
 *   the input at hand is processed (pipelined commands get their replies
 *   in one write).  While the reply buffer is half full, the input buffer
 *   is full, or a message is with the spool, the socket is not read:
 *   a client that sends without reading is held by TCP, not by memory.
 *
 *   Timeouts, one per state (smtpd_enter): a command line must be
 *   complete within smtp_command_timeout of the previous reply (a client
 *   trickling bytes gains nothing), the whole of DATA within
 *   smtp_data_timeout, the last reply is written within 10 s; waiting for
 *   the spool has no timeout (the spool's, not the client's, time).
 *
 * DIAGNOSTICS
 *   A timeout answers 421 4.4.2 and closes; a broken connection or TLS
 *   failure closes.  Nothing here ends the process.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd_int.h"

#define CLOSE_TIMEOUT_MS 10000
#define TLS_READ_CHUNK 65536

static const char *const state_names[SS_COUNT] = {
    "command", "auth", "data", "commit", "tls", "closing"
};

/* The connection's timeout in state s, in ms (0: none). */
static uint64_t state_timeout(const struct smtpd_conn *c, enum smtpd_state s)
{
    const struct smtpd_config *k = &c->srv->e->cfg.smtpd;
    switch (s) {
    case SS_COMMAND: case SS_AUTH: case SS_TLS: return k->command_timeout_ms;
    case SS_DATA: return k->data_timeout_ms;
    case SS_CLOSING: return CLOSE_TIMEOUT_MS;
    default: return 0;
    }
}

static void conn_close(struct smtpd_conn *c);
static void update_reading(struct smtpd_conn *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void switch_to_tls(struct smtpd_conn *c);

/* The state's timer ran out. */
static void on_timeout(uv_timer_t *t)
{
    struct smtpd_conn *c = t->data;
    if (c->state == SS_CLOSING || c->state == SS_TLS) {
        conn_close(c);
        return;
    }
    c->inlen = 0;
    smtpd_reply(c, "421 4.4.2 %s Error: timeout exceeded (%s)",
                smtpd_hostname(c), state_names[c->state]);
    smtpd_close_after_reply(c);
}

/* (Re)start the timer of the current state. */
static void arm_timer(struct smtpd_conn *c)
{
    uint64_t ms = state_timeout(c, c->state);
    if (c->closing)
        return;
    if (ms)
        uv_timer_start(&c->timer, on_timeout, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

void smtpd_enter(struct smtpd_conn *c, enum smtpd_state s)
{
    if (c->closing)
        return;
    static int trace = -1;
    if (trace < 0)
        trace = getenv("SLUICE_SMTPD_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "smtpd %s: %s -> %s\n", c->peer_text,
                state_names[c->state], state_names[s]);
    c->state = s;
    arm_timer(c);
    update_reading(c);
}

void smtpd_ref(struct smtpd_conn *c)
{
    c->refs++;
}

/* Free c (its handles are closed, nothing of it is in flight). */
static void conn_free(struct smtpd_conn *c)
{
    struct smtpd *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    smtpd_txn_reset(c);
    tls_free(c->tls);
    free(c->wbuf);
    free(c);
}

void smtpd_unref(struct smtpd_conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    smtpd_unref(h->data);
}

/* Close c's socket and timer; freed when nothing of it is in flight. */
static void conn_close(struct smtpd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->srv->nconns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

bool smtpd_reply(struct smtpd_conn *c, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof c->out - c->outlen;
    if (c->closing)
        return false;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->outlen, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 2 >= room) {
        /* cannot happen with the input held back at half; close rather
         * than send half a reply */
        conn_close(c);
        return false;
    }
    c->outlen += (size_t)n;
    c->out[c->outlen++] = '\r';
    c->out[c->outlen++] = '\n';
    return true;
}

/* libuv wants a buffer: the free part of the input buffer, or for TLS
 * one shared buffer (its bytes are fed to OpenSSL at once). */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char cipher[TLS_READ_CHUNK];
    struct smtpd_conn *c = h->data;
    (void)hint;
    if (c->tls)
        *buf = uv_buf_init(cipher, sizeof cipher);
    else
        *buf = uv_buf_init(c->in + c->inlen,
                           (unsigned)(sizeof c->in - c->inlen));
}

/* Read from the socket only when the input can be taken. */
static void update_reading(struct smtpd_conn *c)
{
    bool want = !c->closing && !c->tls_pending_switch &&
                (c->state == SS_COMMAND || c->state == SS_AUTH ||
                 c->state == SS_DATA || c->state == SS_TLS) &&
                c->inlen < sizeof c->in && c->outlen < sizeof c->out / 2;
    if (want && !c->reading)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else if (!want && c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

static void on_write(uv_write_t *w, int status)
{
    struct smtpd_conn *c = w->data;
    free(c->wbuf);
    c->wbuf = NULL;
    c->writing = false;
    if (status < 0 || c->closing) {
        conn_close(c);
        smtpd_unref(c);
        return;
    }
    if (c->tls_pending_switch) {
        smtpd_flush(c);   /* the 220 of STARTTLS, in the clear */
        if (!c->closing && !c->outlen)
            switch_to_tls(c);
        smtpd_unref(c);
        return;
    }
    if (c->state == SS_CLOSING && !c->outlen &&
        (!c->tls || !tls_pending(c->tls)))
        conn_close(c);
    else if (c->state != SS_TLS)
        smtpd_pump(c);
    else
        smtpd_flush(c);
    smtpd_unref(c);
}

void smtpd_flush(struct smtpd_conn *c)
{
    if (c->closing || c->writing) {
        update_reading(c);
        return;
    }
    size_t n = 0;
    if (c->tls && c->outlen) {
        if (tls_write(c->tls, c->out, c->outlen) < 0) {
            conn_close(c);
            return;
        }
        c->outlen = 0;
    }
    if (c->tls && (n = tls_pending(c->tls))) {
        if (!(c->wbuf = malloc(n))) {
            conn_close(c);
            return;
        }
        n = tls_take(c->tls, c->wbuf, n);
    } else if (!c->tls && c->outlen) {
        if (!(c->wbuf = malloc(c->outlen))) {
            conn_close(c);
            return;
        }
        memcpy(c->wbuf, c->out, c->outlen);
        n = c->outlen;
        c->outlen = 0;
    }
    if (n) {
        uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)n);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
            free(c->wbuf);
            c->wbuf = NULL;
            conn_close(c);
            return;
        }
        c->writing = true;
        smtpd_ref(c);
    } else if (c->state == SS_CLOSING) {
        conn_close(c);
        return;
    }
    update_reading(c);
}

void smtpd_close_after_reply(struct smtpd_conn *c)
{
    smtpd_enter(c, SS_CLOSING);
    smtpd_flush(c);
}

/* Move the plaintext OpenSSL holds into the input buffer; false when the
 * TLS session failed. */
static bool tls_pull(struct smtpd_conn *c)
{
    while (c->inlen < sizeof c->in) {
        ssize_t n = tls_read(c->tls, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n < 0)
            return false;
        if (n == 0)
            break;
        c->inlen += (size_t)n;
    }
    return true;
}

/* Drop the first n bytes of input. */
static void consume(struct smtpd_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* One line of input (at most SMTPD_LINE_MAX with its LF) to a command. */
static void take_line(struct smtpd_conn *c, const char *lf)
{
    char line[SMTPD_LINE_MAX + 1];
    size_t len = (size_t)(lf - c->in), total = len + 1;
    if (c->skipping) {
        c->skipping = false;   /* the end of the overlong line */
        consume(c, total);
        return;
    }
    if (len && c->in[len - 1] == '\r')
        len--;
    if (total > SMTPD_LINE_MAX) {
        consume(c, total);
        c->errors++;
        smtpd_reply(c, "500 5.5.2 Error: line too long");
        return;
    }
    memcpy(line, c->in, len);
    line[len] = 0;
    consume(c, total);
    arm_timer(c);   /* a whole command came in time */
    if (memchr(line, 0, len)) {
        c->errors++;
        smtpd_reply(c, "500 5.5.2 Error: NUL byte in command");
        return;
    }
    if (c->state == SS_AUTH)
        smtpd_auth_line(c, line);
    else
        smtpd_command(c, line, len);
}

void smtpd_pump(struct smtpd_conn *c)
{
    while (!c->closing) {
        if (c->tls && c->state != SS_TLS && !tls_pull(c)) {
            conn_close(c);
            return;
        }
        if (c->state == SS_DATA) {
            size_t used = smtpd_data_feed(c, c->in, c->inlen);
            consume(c, used);
            if (c->state == SS_DATA)
                break;   /* all taken, more to come */
            continue;
        }
        if ((c->state != SS_COMMAND && c->state != SS_AUTH) ||
            c->outlen >= sizeof c->out / 2)
            break;
        if (c->errors >= SMTPD_MAX_ERRORS) {
            c->inlen = 0;
            smtpd_reply(c, "421 4.7.0 %s Error: too many errors",
                        smtpd_hostname(c));
            smtpd_close_after_reply(c);
            return;
        }
        const char *lf = memchr(c->in, '\n', c->inlen);
        if (lf) {
            take_line(c, lf);
            continue;
        }
        if (c->inlen < SMTPD_LINE_MAX)
            break;   /* the rest of the line is to come */
        /* no end within the limit: say so once, drop to the line's end */
        if (!c->skipping) {
            c->errors++;
            smtpd_reply(c, "500 5.5.2 Error: line too long");
        }
        c->skipping = true;
        c->inlen = 0;
    }
    smtpd_flush(c);
}

/* STARTTLS's handshake made progress with new ciphertext. */
static void tls_progress(struct smtpd_conn *c)
{
    int rc = tls_handshake(c->tls);
    if (rc == TLS_EFAIL) {
        conn_close(c);
        return;
    }
    if (rc == 1) {
        /* RFC 3207: the client starts over with EHLO */
        c->greeted = false;
        smtpd_enter(c, SS_COMMAND);
        smtpd_pump(c);
        return;
    }
    smtpd_flush(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct smtpd_conn *c = s->data;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->tls) {
        if (tls_feed(c->tls, buf->base, (size_t)n) < 0) {
            conn_close(c);
            return;
        }
        if (c->state == SS_TLS) {
            tls_progress(c);
            return;
        }
    } else {
        c->inlen += (size_t)n;
    }
    smtpd_pump(c);
}

/* The 220 of STARTTLS is on its way in the clear: from now on the
 * connection's bytes are TLS. */
static void switch_to_tls(struct smtpd_conn *c)
{
    c->tls_pending_switch = false;
    if (!(c->tls = tls_new_server(c->srv->tls))) {
        conn_close(c);
        return;
    }
    smtpd_enter(c, SS_TLS);
}

/* STARTTLS accepted (its 220 queued): the reply goes out in the clear,
 * what the client sent after the command is dropped (RFC 3207 5: no
 * plaintext injection into the TLS session), nothing is read until the
 * reply's write is issued (a write still in flight delays it), then the
 * handshake. */
void smtpd_start_tls(struct smtpd_conn *c)
{
    c->inlen = 0;
    c->tls_pending_switch = true;
    smtpd_flush(c);
    if (!c->closing && !c->outlen)
        switch_to_tls(c);
}

/* A client connected to listener l. */
static void on_connection(uv_stream_t *l, int status)
{
    struct smtpd *s = l->data;
    struct engine *e = s->e;
    if (status < 0)
        return;
    struct smtpd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;   /* it stays in the backlog until memory is back */
    c->srv = s;
    uv_tcp_init(e->loop, &c->tcp);
    uv_timer_init(e->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->refs = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    int alen = sizeof c->peer;
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &alen);
    if (c->peer.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&c->peer, c->peer_text,
                    sizeof c->peer_text);
    else if (c->peer.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->peer_text,
                    sizeof c->peer_text);
    c->clear_ok = config_cidr_match(e->cfg.smtpd.clear, e->cfg.smtpd.nclear,
                                    (struct sockaddr *)&c->peer);
    c->relay_ok = config_cidr_match(e->cfg.smtpd.relay, e->cfg.smtpd.nrelay,
                                    (struct sockaddr *)&c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    s->accepted++;
    if (s->nconns > e->cfg.smtpd.max_clients) {
        s->refused_busy++;
        smtpd_reply(c, "421 4.7.0 %s Error: too many connections; try "
                    "again later", smtpd_hostname(c));
        smtpd_close_after_reply(c);
        return;
    }
    if (engine_draining(e)) {
        smtpd_reply(c, "421 4.3.2 %s Error: shutting down; try again later",
                    smtpd_hostname(c));
        smtpd_close_after_reply(c);
        return;
    }
    smtpd_reply(c, "220 %s ESMTP sluice", smtpd_hostname(c));
    smtpd_enter(c, SS_COMMAND);
    smtpd_flush(c);
}

/* Bind and listen on one address; 0 or a libuv error with why. */
static int listen_one(struct smtpd *s, const char *host, uint16_t port,
                      char *why, size_t cap)
{
    struct sockaddr_storage a;
    uv_tcp_t *l = &s->listeners[s->nlisteners];
    int err = uv_ip4_addr(host, port, (struct sockaddr_in *)&a);
    if (err)
        err = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&a);
    if (err) {
        snprintf(why, cap, "smtp_listen: '%s' is not an IP address", host);
        return err;
    }
    uv_tcp_init(s->e->loop, l);
    l->data = s;
    s->nlisteners++;
    if ((err = uv_tcp_bind(l, (struct sockaddr *)&a, 0)) ||
        (err = uv_listen((uv_stream_t *)l, 511, on_connection)))
        snprintf(why, cap, "smtp_listen: %s port %u: %s", host,
                 (unsigned)port, uv_strerror(err));
    return err;
}

int smtpd_start(struct engine *e)
{
    const struct smtpd_config *k = &e->cfg.smtpd;
    char why[512];
    if (!k->nlisten)
        return 0;
    struct smtpd *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->e = e;
    e->smtpd = s;
    if (smtpd_mx_start(s))
        return ENGINE_E_CONFIG;
    if (k->tls_cert &&
        !(s->tls = tls_server_ctx(k->tls_cert, k->tls_key, why, sizeof why))) {
        fprintf(stderr, "sluiced: STARTTLS: %s\n", why);
        return ENGINE_E_CONFIG;
    }
    for (unsigned i = 0; i < k->nlisten; i++)
        if (listen_one(s, k->listen_host[i], k->listen_port[i], why,
                       sizeof why)) {
            fprintf(stderr, "sluiced: %s\n", why);
            return ENGINE_E_CONFIG;
        }
    for (unsigned i = 0; i < k->nlisten; i++)
        fprintf(stderr, "sluiced: SMTP listener on %s port %u%s\n",
                k->listen_host[i], (unsigned)k->listen_port[i],
                s->tls ? " (STARTTLS)" : "");
    return 0;
}

void smtpd_stop(struct engine *e)
{
    struct smtpd *s = e->smtpd;
    if (!s)
        return;
    for (unsigned i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&s->listeners[i]))
            uv_close((uv_handle_t *)&s->listeners[i], NULL);
    for (struct smtpd_conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

void smtpd_free(struct engine *e)
{
    struct smtpd *s = e->smtpd;
    if (!s)
        return;
    /* connections still held by a spool operation that never completed
     * (the process is ending) */
    while (s->conns) {
        struct smtpd_conn *c = s->conns;
        c->refs = 1;
        smtpd_unref(c);
    }
    if (s->tls)
        SSL_CTX_free(s->tls);
    smtpd_mx_free(s);
    free(s);
    e->smtpd = NULL;
}
