/*
 * smtp_session.c - the SMTP client state machine: connection, greeting,
 * EHLO/HELO, STARTTLS, ready, RSET and QUIT, and the session's I/O (the
 * mail transaction's states are in smtp_txn.c).
 *
 * DESCRIPTION
 *   Every change of state goes through smtp_move(), which traces
 *   "old -> new" (sluiced -v) and arms the state's timeout from the table
 *   below.  The session's own states are entered with smtp_enter(), which
 *   then does the entry action (enter_action(): the command whose reply
 *   the state waits for, the handshake, telling the owner the session is
 *   ready), as OpenSMTPD's MTA does; the transaction's states are entered
 *   by smtp_txn.c, which works out what they send and calls down here
 *   once.  The timer is re-armed only on state changes and complete
 *   replies, never on single bytes, so a server that drips a byte a
 *   second still times out.  Replies are dispatched by state in
 *   on_reply(): the one way up into smtp_txn.c (smtp_txn_reply()), as
 *   input is delivered from below, never as part of an entry.
 *
 *   A session holding SMTP_UNRECORDED_MAX delivered jobs unrecorded waits
 *   in S_READY (its idle timeout running) until the owner has recorded
 *   one (smtp_session_recorded()), and a session that closed meanwhile
 *   reports closed() only once all are: see the crash window in
 *   smtp_session.h.
 *
 *   Input is split into lines (capped at SMTP_REPLY_LINE_MAX) and checked by
 *   smtp_reply.c.  Output goes out with uv_try_write() and only the part the
 *   kernel did not take is copied into a write request (the bytes queued
 *   so, all sessions, are counted: smtp_session_queued_bytes()); with
 *   TLS, plaintext goes to tls.c in pieces of TLS_PIECE bytes, each
 *   handed back as ciphertext through the sink given to tls_flush()
 *   (put_cipher()) and written the same way, so TLS buffers hold a piece,
 *   never a whole message.
 *
 *   STARTTLS: once the server says 220, anything it sent after that reply
 *   in clear is a protocol error (command injection); after the handshake
 *   the capabilities are forgotten and EHLO is sent again.  Any failure
 *   during the handshake marks the session tls_failed, so that the owner
 *   can fall back to plain text where the policy allows.
 *
 * DIAGNOSTICS
 *   A timeout, lost connection, protocol error or TLS failure ends the
 *   session: recipients of the job in flight get RS_TEMPFAIL with local set
 *   and a text saying what happened and in which state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_session_int.h"
#include "tls.h"

int smtp_trace;

/* Plaintext given to TLS at a time (its buffers hold about this much). */
#define TLS_PIECE 16384

/* Bytes in the write requests of every session (the loop thread's). */
static uint64_t queued_bytes;

uint64_t smtp_session_queued_bytes(void)
{
    return queued_bytes;
}

const char *const smtp_state_names[S_COUNT] = {
    "connect", "greeting", "ehlo", "helo", "starttls", "tls-handshake",
    "ready", "mail", "rcpt", "data", "body", "rset", "quit", "closing",
};

/* Timeout per state (RFC 5321 4.5.3.2); -1: none. */
static const int state_timeout[S_COUNT] = {
    [S_CONNECT] = TO_CONNECT, [S_GREETING] = TO_GREETING, [S_EHLO] = TO_EHLO,
    [S_HELO] = TO_EHLO, [S_STARTTLS] = TO_STARTTLS, [S_TLS] = TO_TLS,
    [S_READY] = TO_IDLE, [S_MAIL] = TO_MAIL, [S_RCPT] = TO_RCPT,
    [S_DATA] = TO_DATA, [S_BODY] = TO_DATA_DONE, [S_RSET] = TO_RSET,
    [S_QUIT] = TO_QUIT, [S_CLOSING] = -1,
};

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void on_timeout(uv_timer_t *t);
static void enter_action(struct smtp_session *s, enum smtp_state st);

void smtp_move(struct smtp_session *s, enum smtp_state st)
{
    if (smtp_trace)
        fprintf(stderr, "smtp %s[%p]: %s -> %s\n", s->mx_host, (void *)s,
                smtp_state_names[s->st], smtp_state_names[st]);
    s->st = st;
    uv_timer_stop(&s->timer);
    if (state_timeout[st] >= 0)
        uv_timer_start(&s->timer, on_timeout,
                       s->cfg.timeout_ms[state_timeout[st]], 0);
}

void smtp_enter(struct smtp_session *s, enum smtp_state st)
{
    smtp_move(s, st);
    enter_action(s, st);
}

void smtp_arm(struct smtp_session *s, int which)
{
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_timeout, s->cfg.timeout_ms[which], 0);
}

static void on_write(uv_write_t *req, int status)
{
    struct smtp_session *s = req->handle->data;
    queued_bytes -= ((struct wreq *)req)->len;
    free(req);
    /* a failed write shows up as a read error or timeout; once the body
     * has left, the wait for the final reply has its own timeout */
    if (status == 0 && s->st == S_BODY && s->body_pending &&
        uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
        s->body_pending = false;
        smtp_arm(s, TO_DATA_DONE);
    }
}

/* Put raw bytes (one piece, or two in one write) on the socket: what
 * the kernel does not take is copied into one write request. */
static int out_raw(struct smtp_session *s, const char *a, size_t an,
                   const char *b, size_t bn)
{
    if (s->st == S_CLOSING)
        return -ECANCELED;
    uv_buf_t bufs[2] = { uv_buf_init((char *)a, (unsigned)an),
                         uv_buf_init((char *)b, (unsigned)bn) };
    int w = uv_try_write((uv_stream_t *)&s->tcp, bufs, bn ? 2 : 1);
    if (w == (int)(an + bn))
        return 0;
    if (w < 0 && w != UV_EAGAIN)
        return w;
    size_t done = w > 0 ? (size_t)w : 0;
    struct wreq *r = malloc(sizeof *r + an + bn - done);
    if (!r)
        return -ENOMEM;
    r->len = 0;
    if (done < an) {
        memcpy(r->data, a + done, an - done);
        r->len = an - done;
        done = an;
    }
    if (bn) {
        memcpy(r->data + r->len, b + (done - an), bn - (done - an));
        r->len += bn - (done - an);
    }
    uv_buf_t rest = uv_buf_init(r->data, (unsigned)r->len);
    int rc = uv_write(&r->req, (uv_stream_t *)&s->tcp, &rest, 1, on_write);
    if (rc) {
        free(r);
        return rc;
    }
    queued_bytes += r->len;
    if (s->body_pending && s->st == S_BODY) /* the body waits: smtp_out2 */
        smtp_arm(s, TO_DATA_BLOCK);
    return 0;
}

/* tls.c's sink: ciphertext it made goes on the socket. */
static int put_cipher(void *arg, const void *p, size_t n)
{
    return out_raw(arg, p, n, NULL, 0);
}

/* Encrypt p in pieces of TLS_PIECE, each written as ciphertext before
 * the next is encrypted; 0, 1 when TLS failed (tls_error() says why) or
 * the write's error (negative). */
static int out_tls(struct smtp_session *s, const char *p, size_t n)
{
    while (n) {
        size_t k = n < TLS_PIECE ? n : TLS_PIECE;
        if (tls_write(s->tls, p, k))
            return 1;
        int rc = tls_flush(s->tls, put_cipher, s);
        if (rc)
            return rc;
        p += k;
        n -= k;
    }
    return 0;
}

/* Send one or two pieces in one write: as they are, or encrypted by
 * tls.c, which hands the ciphertext to put_cipher. */
static void out_pieces(struct smtp_session *s, const char *a, size_t an,
                       const char *b, size_t bn)
{
    int rc;
    if (!s->tls_active) {
        rc = out_raw(s, a, an, b, bn);
    } else {
        rc = out_tls(s, a, an);
        if (!rc)
            rc = out_tls(s, b, bn);
        if (rc == 1) {
            smtp_fail(s, 0, "4.4.2", "TLS write: %s", tls_error(s->tls));
            return;
        }
    }
    if (rc && rc != -ECANCELED)
        smtp_fail(s, 0, "4.4.2", "write to %s failed in state %s: %s",
                  s->mx_host, smtp_state_names[s->st], uv_strerror(rc));
}

void smtp_out(struct smtp_session *s, const char *p, size_t n)
{
    out_pieces(s, p, n, NULL, 0);
}

void smtp_out2(struct smtp_session *s, const char *a, size_t an,
               const char *b, size_t bn, bool body)
{
    /* RFC 5321 4.5.3.2: a data block timeout while the body is still
     * going out (armed by out_raw() when it has to queue), the
     * end-of-data timeout after that (on_write()) */
    s->body_pending = body;
    out_pieces(s, a, an, b, bn);
    if (!uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp))
        s->body_pending = false;
}

/* Send one command line (CRLF appended). */
void smtp_out_cmd(struct smtp_session *s, const char *cmd)
{
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "%s\r\n", cmd);
    if (n > 0 && (size_t)n < sizeof buf)
        smtp_out(s, buf, (size_t)n);
}

/* Both handles are closed: report closed() and free s, unless a
 * delivered job is still unrecorded (then smtp_session_recorded() does). */
static void close_done(struct smtp_session *s)
{
    if (s->unrecorded) {
        s->close_waits = true;
        if (s->cb.waits)
            s->cb.waits(s, s->arg);
        return;
    }
    if (!s->closed_reported) {
        s->closed_reported = true;
        s->cb.closed(s, s->ever_ready, s->fail_code, s->fail_enh,
                     s->fail_why[0] ? s->fail_why : "closed", s->arg);
    }
    tls_free(s->tls);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct smtp_session *s = h->data;
    if (--s->open_handles > 0)
        return;
    close_done(s);
}

bool smtp_may_start(const struct smtp_session *s, unsigned busy)
{
    return s->unrecorded + busy < SMTP_UNRECORDED_MAX;
}

void smtp_session_recorded(struct smtp_session *s)
{
    if (!s->unrecorded) {
        fprintf(stderr, "sluiced: smtp_session_recorded() for no job\n");
        abort(); /* a broken invariant: the bound would not hold */
    }
    s->unrecorded--;
    if (s->close_waits) {
        if (!s->unrecorded)
            close_done(s);
        return;
    }
    if (s->ready_waits && s->st == S_READY && smtp_may_start(s, 0)) {
        s->ready_waits = false;
        s->cb.ready(s, s->arg);
    }
}

/* Close the connection; the closed() callback follows from the loop. */
static void session_close(struct smtp_session *s)
{
    if (s->st == S_CLOSING)
        return;
    if (s->job)
        smtp_job_fail_pending(s->job, RS_TEMPFAIL, true, s->fail_code,
                              s->fail_enh[0] ? s->fail_enh : "4.4.2",
                              s->fail_why[0] ? s->fail_why : "session closed",
                              false);
    smtp_enter(s, S_CLOSING);
    if (s->job)
        smtp_job_finish(s);
    if (s->next) {
        s->job = s->next;
        s->next = NULL;
        smtp_job_fail_pending(s->job, RS_TEMPFAIL, true, s->fail_code,
                              s->fail_enh[0] ? s->fail_enh : "4.4.2",
                              s->fail_why[0] ? s->fail_why : "session closed",
                              false);
        smtp_job_finish(s);
    }
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

void smtp_fail(struct smtp_session *s, int code, const char *enh,
               const char *fmt, ...)
{
    if (s->st == S_CLOSING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail_why, sizeof s->fail_why, fmt, ap);
    va_end(ap);
    s->fail_code = code;
    snprintf(s->fail_enh, sizeof s->fail_enh, "%s", enh ? enh : "");
    /* whatever ends the handshake (a TLS error, a timeout, the server
     * closing or writing plain text after its 220) is a TLS failure */
    if (s->st == S_TLS)
        s->tls_failed = true;
    if (smtp_trace)
        fprintf(stderr, "smtp %s[%p]: failed in %s: %s\n", s->mx_host,
                (void *)s, smtp_state_names[s->st], s->fail_why);
    session_close(s);
}

/* Fail the session with the server's own reply. */
static void fail_reply(struct smtp_session *s, const char *what)
{
    smtp_fail(s, s->rp.r.code, s->rp.r.enhanced, "%s: %d %s%s%s", what,
              s->rp.r.code, s->rp.r.enhanced,
              s->rp.r.enhanced[0] ? " " : "", s->rp.r.text);
}

/* EHLO keyword hook: record the extensions the server offers. */
static void on_ehlo_line(void *arg, const char *t, size_t n)
{
    struct smtp_session *s = arg;
    if (s->rp.r.lines == 1)
        return; /* the first line names the server */
    char kw[32];
    size_t k = 0;
    while (k < n && k < sizeof kw - 1 && t[k] != ' ' && t[k] != '=') {
        kw[k] = (char)(t[k] >= 'a' && t[k] <= 'z' ? t[k] - 32 : t[k]);
        k++;
    }
    kw[k] = 0;
    if (!strcmp(kw, "PIPELINING"))
        s->cap_pipelining = true;
    else if (!strcmp(kw, "8BITMIME"))
        s->cap_8bitmime = true;
    else if (!strcmp(kw, "STARTTLS"))
        s->cap_starttls = true;
    else if (!strcmp(kw, "SMTPUTF8"))
        s->cap_smtputf8 = true;
    else if (!strcmp(kw, "SIZE")) {
        s->cap_size = true;
        s->size_limit = 0;
        for (size_t i = k + 1; i < n && t[i] >= '0' && t[i] <= '9'; i++)
            if (s->size_limit < UINT64_MAX / 10)
                s->size_limit = s->size_limit * 10 + (uint64_t)(t[i] - '0');
    }
}

static void forget_caps(struct smtp_session *s)
{
    s->esmtp = s->cap_pipelining = s->cap_8bitmime = s->cap_starttls = false;
    s->cap_smtputf8 = s->cap_size = false;
    s->size_limit = 0;
}

/* After EHLO/HELO: STARTTLS if wanted and offered, else ready. */
static void after_hello(struct smtp_session *s)
{
    if (!s->tls_active && s->cfg.tls != TLS_OFF && s->cfg.ssl_ctx &&
        s->cap_starttls) {
        smtp_enter(s, S_STARTTLS);
        return;
    }
    if (!s->tls_active && s->cfg.tls == TLS_REQUIRED) {
        smtp_out_cmd(s, "QUIT");
        smtp_fail(s, 0, "4.7.4", "TLS is required for %s but it does not "
                  "offer STARTTLS", s->mx_host);
        return;
    }
    smtp_enter(s, S_READY);
}

/* "220" to STARTTLS: set TLS up, then the handshake state. */
static void start_tls(struct smtp_session *s)
{
    s->tls = tls_new(s->cfg.ssl_ctx, s->mx_host, s->cfg.tls_verify);
    if (!s->tls) {
        smtp_fail(s, 0, "4.7.5", "cannot set up TLS");
        return;
    }
    smtp_enter(s, S_TLS);
}

/* The entry action of state st (its timeout is armed already): the
 * command that state waits for the reply to, or what the state does. */
static void enter_action(struct smtp_session *s, enum smtp_state st)
{
    char cmd[300];
    int rc;
    switch (st) {
    case S_EHLO:
        forget_caps(s);
        s->rp.on_line = on_ehlo_line;
        s->rp.arg = s;
        snprintf(cmd, sizeof cmd, "EHLO %s", s->ehlo);
        smtp_out_cmd(s, cmd);
        return;
    case S_HELO:
        snprintf(cmd, sizeof cmd, "HELO %s", s->ehlo);
        smtp_out_cmd(s, cmd);
        return;
    case S_STARTTLS:
        smtp_out_cmd(s, "STARTTLS");
        return;
    case S_TLS:
        rc = tls_handshake(s->tls);
        if (rc == TLS_EFAIL) {
            smtp_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
            return;
        }
        if (tls_flush(s->tls, put_cipher, s))
            smtp_fail(s, 0, "4.4.2", "write failed during TLS handshake");
        return;
    case S_READY:
        s->ever_ready = true;
        if (!smtp_may_start(s, 0)) {
            s->ready_waits = true; /* smtp_session_recorded() goes on */
            if (s->cb.waits)
                s->cb.waits(s, s->arg);
            return;
        }
        s->cb.ready(s, s->arg); /* last: it may send a job at once */
        return;
    case S_RSET:
        smtp_out_cmd(s, "RSET");
        return;
    case S_QUIT:
        smtp_out_cmd(s, "QUIT");
        return;
    default: /* connect, greeting, closing: nothing to send; the
              * transaction's states are entered by smtp_txn.c */
        return;
    }
}

/* One complete reply, dispatched by state. */
static void on_reply(struct smtp_session *s)
{
    const struct smtp_reply *r = &s->rp.r;
    int cls = smtp_reply_class(r->code);
    switch (s->st) {
    case S_GREETING:
        if (r->code != 220) {
            fail_reply(s, "greeting");
            return;
        }
        smtp_enter(s, S_EHLO);
        return;
    case S_EHLO:
        s->rp.on_line = NULL;
        if (cls == 2) {
            s->esmtp = true;
            after_hello(s);
        } else if (cls == 5 && !s->tls_active) {
            smtp_enter(s, S_HELO);
        } else {
            fail_reply(s, "EHLO");
        }
        return;
    case S_HELO:
        if (cls != 2) {
            fail_reply(s, "HELO");
            return;
        }
        after_hello(s);
        return;
    case S_STARTTLS:
        if (r->code == 220) {
            start_tls(s);
        } else if (s->cfg.tls == TLS_REQUIRED) {
            fail_reply(s, "STARTTLS refused");
        } else {
            smtp_enter(s, S_READY);
        }
        return;
    case S_MAIL:
    case S_RCPT:
    case S_DATA:
    case S_BODY:
        smtp_txn_reply(s, r);
        return;
    case S_RSET:
        if (cls != 2) {
            fail_reply(s, "RSET");
            return;
        }
        smtp_enter(s, S_READY);
        return;
    case S_QUIT:
        /* the server closes after its 221: wait for that (a second at
         * most) so the session still counts against the site's cap until
         * the server has let it go, and a new one never makes one more
         * than the cap in the server's own count */
        uv_timer_start(&s->timer, on_timeout, 1000, 0);
        return;
    case S_READY:
        if (r->code == 421) {
            fail_reply(s, "server closing");
            return;
        }
        /* fall through */
    default:
        smtp_fail(s, 0, "4.5.0", "unexpected reply in state %s: %d %s",
                  smtp_state_names[s->st], r->code, r->text);
    }
}

/* Split plaintext input into lines and feed them to the reply parser. */
static void feed(struct smtp_session *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n && s->st != S_CLOSING; i++) {
        char c = p[i];
        if (c != '\n') {
            if (s->line_len < sizeof s->line - 1)
                s->line[s->line_len++] = c;
            else
                s->line_overflow = true;
            continue;
        }
        if (s->line_overflow) {
            smtp_fail(s, 0, "4.5.0", "protocol error from %s in state %s: "
                      "reply line over %d bytes", s->mx_host,
                      smtp_state_names[s->st], SMTP_REPLY_LINE_MAX);
            return;
        }
        size_t len = s->line_len;
        if (len && s->line[len - 1] == '\r')
            len--;
        s->line[len] = 0;
        s->line_len = 0;
        if (s->st == S_CONNECT || s->st == S_TLS || s->st == S_CLOSING) {
            smtp_fail(s, 0, "4.5.0", "unexpected data in state %s",
                      smtp_state_names[s->st]);
            return;
        }
        int rc = smtp_reply_line(&s->rp, s->line, len);
        if (rc == SMTP_REPLY_EPROTO) {
            smtp_fail(s, 0, "4.5.0", "protocol error from %s in state %s: "
                      "%s", s->mx_host, smtp_state_names[s->st], s->rp.err);
            return;
        }
        if (rc == SMTP_REPLY_DONE) {
            enum smtp_state before = s->st;
            on_reply(s);
            smtp_reply_reset(&s->rp);
            if (before == S_STARTTLS && s->st == S_TLS && i + 1 < n) {
                smtp_fail(s, 0, "4.5.0", "%s sent data after its STARTTLS "
                          "reply (possible command injection)", s->mx_host);
                return;
            }
            if (s->st == S_TLS)
                return; /* the rest of the input is ciphertext */
        }
    }
}

/* Ciphertext arrived: advance the handshake or decrypt. */
static void feed_tls(struct smtp_session *s, const char *p, size_t n)
{
    char plain[16384];
    if (tls_feed(s->tls, p, n)) {
        smtp_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
        return;
    }
    if (s->st == S_TLS) {
        int rc = tls_handshake(s->tls);
        if (tls_flush(s->tls, put_cipher, s)) {
            smtp_fail(s, 0, "4.4.2", "write failed during TLS handshake");
            return;
        }
        if (rc == TLS_EWANT)
            return;
        if (rc == TLS_EFAIL) {
            smtp_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
            return;
        }
        s->tls_active = true;
        smtp_enter(s, S_EHLO);
    }
    for (;;) {
        ssize_t got = tls_read(s->tls, plain, sizeof plain);
        if (got == 0)
            break;
        if (got < 0) {
            smtp_fail(s, 0, "4.4.2", "%s in state %s", tls_error(s->tls),
                      smtp_state_names[s->st]);
            return;
        }
        feed(s, plain, (size_t)got);
        if (s->st == S_CLOSING)
            return;
    }
    if (tls_flush(s->tls, put_cipher, s))
        smtp_fail(s, 0, "4.4.2", "TLS write failed");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct smtp_session *s = h->data;
    (void)hint;
    *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct smtp_session *s = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (s->st == S_QUIT) {
            session_close(s);
            return;
        }
        smtp_fail(s, 0, "4.4.2", "lost connection with %s in state %s%s%s",
                  s->mx_host, smtp_state_names[s->st],
                  nread == UV_EOF ? "" : ": ",
                  nread == UV_EOF ? "" : uv_strerror((int)nread));
        return;
    }
    if (s->st == S_TLS || s->tls_active)
        feed_tls(s, buf->base, (size_t)nread);
    else
        feed(s, buf->base, (size_t)nread);
}

static void on_timeout(uv_timer_t *t)
{
    struct smtp_session *s = t->data;
    if (s->st == S_READY) {
        smtp_session_quit(s);
        return;
    }
    if (s->st == S_QUIT) {
        session_close(s);
        return;
    }
    smtp_fail(s, 0, "4.4.2", "timeout waiting for %s in state %s",
              s->mx_host, smtp_state_names[s->st]);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct smtp_session *s = req->data;
    if (s->st == S_CLOSING)
        return;
    if (status < 0) {
        smtp_fail(s, 0, "4.4.1", "connect to %s: %s", s->mx_host,
                  uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc) {
        smtp_fail(s, 0, "4.4.1", "read from %s: %s", s->mx_host,
                  uv_strerror(rc));
        return;
    }
    smtp_enter(s, S_GREETING);
}

int smtp_session_start(uv_loop_t *loop, const struct smtp_session_cfg *cfg,
                       const struct sockaddr *addr,
                       const struct smtp_session_cb *cb, void *arg,
                       struct smtp_session **out)
{
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    snprintf(s->mx_host, sizeof s->mx_host, "%s", cfg->mx_host);
    snprintf(s->ehlo, sizeof s->ehlo, "%s", cfg->ehlo_name);
    s->cfg.mx_host = s->mx_host;
    s->cfg.ehlo_name = s->ehlo;
    s->cb = *cb;
    s->arg = arg;
    smtp_reply_reset(&s->rp);
    int rc = uv_tcp_init(loop, &s->tcp);
    if (rc) {
        free(s);
        return rc;
    }
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s->conn.data = s;
    s->open_handles = 2;
    rc = uv_tcp_connect(&s->conn, &s->tcp, addr, on_connect);
    if (rc) {
        /* close quietly: no callback on a failed start */
        s->closed_reported = true;
        s->st = S_CLOSING;
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
        return rc;
    }
    s->st = S_CONNECT;
    uv_timer_start(&s->timer, on_timeout, cfg->timeout_ms[TO_CONNECT], 0);
    *out = s;
    return 0;
}

void smtp_session_quit(struct smtp_session *s)
{
    if (s->st == S_CLOSING || s->st == S_QUIT)
        return;
    if (s->st != S_READY) {
        smtp_session_abort(s, "closed by sluiced");
        return;
    }
    smtp_enter(s, S_QUIT);
}

void smtp_session_abort(struct smtp_session *s, const char *why)
{
    smtp_fail(s, 0, "4.3.2", "%s", why);
}

bool smtp_session_tls(const struct smtp_session *s) { return s->tls_active; }
bool smtp_session_tls_failed(const struct smtp_session *s) { return s->tls_failed; }
unsigned smtp_session_jobs(const struct smtp_session *s) { return s->jobs; }
const char *smtp_session_state(const struct smtp_session *s) { return smtp_state_names[s->st]; }
void *smtp_session_arg(const struct smtp_session *s) { return s->arg; }
const char *smtp_session_host(const struct smtp_session *s) { return s->mx_host; }
