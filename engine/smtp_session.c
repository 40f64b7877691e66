/*
 * smtp_session.c - the SMTP client state machine.
 *
 * DESCRIPTION
 *   Every change of state goes through session_enter(), which traces
 *   "old -> new" and arms the state's timeout from the table below.  The
 *   timer is re-armed only on state changes and complete replies, never on
 *   single bytes, so a server that drips a byte a second still times out.
 *   Replies are dispatched by state in on_reply().
 *
 *   Input is split into lines (capped at SMTP_REPLY_LINE_MAX) and checked by
 *   smtp_reply.c.  Output goes out with uv_try_write() and only the part the
 *   kernel did not take is copied into a write request; with TLS, plaintext
 *   goes through tls.c and the ciphertext is written the same way.
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

#include "smtp_session.h"
#include "tls.h"

int smtp_trace;

enum state {
    S_CONNECT, S_GREETING, S_EHLO, S_HELO, S_STARTTLS, S_TLS, S_READY,
    S_TXN, S_BODY, S_RSET, S_QUIT, S_CLOSING, S_COUNT
};

static const char *const state_names[S_COUNT] = {
    "connect", "greeting", "ehlo", "helo", "starttls", "tls-handshake",
    "ready", "transaction", "data", "rset", "quit", "closing",
};

/* Timeout per state (RFC 5321 4.5.3.2); -1: none. */
static const int state_timeout[S_COUNT] = {
    [S_CONNECT] = TO_CONNECT, [S_GREETING] = TO_GREETING, [S_EHLO] = TO_EHLO,
    [S_HELO] = TO_EHLO, [S_STARTTLS] = TO_STARTTLS, [S_TLS] = TO_TLS,
    [S_READY] = TO_IDLE, [S_TXN] = TO_MAIL, [S_BODY] = TO_DATA_DONE,
    [S_RSET] = TO_RSET, [S_QUIT] = TO_QUIT, [S_CLOSING] = -1,
};

#define READ_BUF 16384

struct smtp_session {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer;
    int open_handles;
    enum state st;
    struct smtp_session_cfg cfg;
    char mx_host[256];
    char ehlo[256];
    struct smtp_session_cb cb;
    void *arg;

    struct reply_parser rp;
    char line[SMTP_REPLY_LINE_MAX + 1];
    size_t line_len;
    bool line_overflow;
    char rbuf[READ_BUF];
    bool rbuf_busy;

    struct tls *tls;
    bool tls_active, tls_failed;

    bool esmtp, cap_pipelining, cap_8bitmime, cap_starttls, cap_smtputf8;
    bool cap_size;
    uint64_t size_limit;
    bool ever_ready;
    unsigned jobs;

    struct smtp_job *job;
    struct smtp_job *next;  /* pipelined behind the current end of data */
    size_t expect;          /* reply awaited: 0 MAIL, 1..n RCPT, n+1 DATA */
    size_t accepted;
    bool mail_failed, discard_data, need_rset;
    bool body_pending;      /* body still in our write queue */

    bool closed_reported;
    int fail_code;
    char fail_enh[16];
    char fail_why[300];
};

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void session_fail(struct smtp_session *s, int code, const char *enh,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void on_timeout(uv_timer_t *t);

/* Move to a new state, tracing it and arming its timeout. */
static void session_enter(struct smtp_session *s, enum state st)
{
    if (smtp_trace)
        fprintf(stderr, "smtp %s[%p]: %s -> %s\n", s->mx_host, (void *)s,
                state_names[s->st], state_names[st]);
    s->st = st;
    uv_timer_stop(&s->timer);
    if (state_timeout[st] >= 0 && st != S_CLOSING)
        uv_timer_start(&s->timer, on_timeout, s->cfg.timeout_ms[state_timeout[st]], 0);
}

/* Re-arm the timer for the reply now awaited within the same state. */
static void arm(struct smtp_session *s, int which)
{
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_timeout, s->cfg.timeout_ms[which], 0);
}

static void on_write(uv_write_t *req, int status)
{
    struct smtp_session *s = req->handle->data;
    free(req);
    /* a failed write shows up as a read error or timeout; once the body
     * has left, the wait for the final reply has its own timeout */
    if (status == 0 && s->st == S_BODY && s->body_pending &&
        uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
        s->body_pending = false;
        arm(s, TO_DATA_DONE);
    }
}

/* Put raw bytes on the socket: what the kernel does not take is copied. */
static int out_raw(struct smtp_session *s, const char *p, size_t n)
{
    if (s->st == S_CLOSING)
        return -ECANCELED;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (w == (int)n)
        return 0;
    if (w < 0 && w != UV_EAGAIN)
        return w;
    size_t done = w > 0 ? (size_t)w : 0;
    struct wreq *r = malloc(sizeof *r + n - done);
    if (!r)
        return -ENOMEM;
    r->len = n - done;
    memcpy(r->data, p + done, r->len);
    b = uv_buf_init(r->data, (unsigned)r->len);
    int rc = uv_write(&r->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (rc)
        free(r);
    return rc;
}

/* Send whatever ciphertext TLS has produced. */
static int flush_tls(struct smtp_session *s)
{
    char buf[16384];
    while (tls_pending(s->tls)) {
        size_t n = tls_take(s->tls, buf, sizeof buf);
        if (!n)
            break;
        int rc = out_raw(s, buf, n);
        if (rc)
            return rc;
    }
    return 0;
}

/* Send protocol bytes, through TLS once it is up. */
static void out(struct smtp_session *s, const char *p, size_t n)
{
    int rc;
    if (s->tls_active) {
        rc = tls_write(s->tls, p, n);
        if (rc == 0)
            rc = flush_tls(s);
        else {
            session_fail(s, 0, "4.4.2", "TLS write: %s", tls_error(s->tls));
            return;
        }
    } else {
        rc = out_raw(s, p, n);
    }
    if (rc && rc != -ECANCELED)
        session_fail(s, 0, "4.4.2", "write to %s failed in state %s: %s",
                     s->mx_host, state_names[s->st], uv_strerror(rc));
}

/* Send two pieces in one write (the body and the next commands). */
static void out2(struct smtp_session *s, const char *a, size_t an,
                 const char *b, size_t bn)
{
    if (s->tls_active || !bn) {
        out(s, a, an);
        if (bn)
            out(s, b, bn);
        return;
    }
    if (s->st == S_CLOSING)
        return;
    uv_buf_t bufs[2] = { uv_buf_init((char *)a, (unsigned)an),
                         uv_buf_init((char *)b, (unsigned)bn) };
    int w = uv_try_write((uv_stream_t *)&s->tcp, bufs, 2);
    if (w == (int)(an + bn))
        return;
    if (w < 0 && w != UV_EAGAIN) {
        session_fail(s, 0, "4.4.2", "write to %s failed in state %s: %s",
                     s->mx_host, state_names[s->st], uv_strerror(w));
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    if (done < an) {
        out(s, a + done, an - done);
        out(s, b, bn);
    } else {
        out(s, b + (done - an), bn - (done - an));
    }
}

/* Send one command line (CRLF appended). */
static void out_cmd(struct smtp_session *s, const char *cmd)
{
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "%s\r\n", cmd);
    if (n > 0 && (size_t)n < sizeof buf)
        out(s, buf, (size_t)n);
}

/* Give every undecided recipient of the job one failure outcome. */
static void job_fail_pending(struct smtp_job *job, enum rcpt_status st,
                             bool local, int code, const char *enh,
                             const char *text, bool only_accepted)
{
    for (size_t i = 0; i < job->nrcpt; i++) {
        struct smtp_rcpt *r = &job->rcpts[i];
        if (r->status != RS_PENDING || (only_accepted && !r->accepted))
            continue;
        r->status = (uint8_t)st;
        r->local = local;
        r->code = (uint16_t)code;
        snprintf(r->enhanced, sizeof r->enhanced, "%s", enh ? enh : "");
        snprintf(r->text, sizeof r->text, "%s", text);
    }
}

/* Hand the finished job back to its owner. */
static void job_finish(struct smtp_session *s)
{
    struct smtp_job *job = s->job;
    s->job = NULL;
    s->jobs++;
    if (job)
        s->cb.job_done(s, job, s->arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct smtp_session *s = h->data;
    if (--s->open_handles > 0)
        return;
    if (!s->closed_reported) {
        s->closed_reported = true;
        s->cb.closed(s, s->ever_ready, s->fail_code, s->fail_enh,
                     s->fail_why[0] ? s->fail_why : "closed", s->arg);
    }
    tls_free(s->tls);
    free(s);
}

/* Close the connection; the closed() callback follows from the loop. */
static void session_close(struct smtp_session *s)
{
    if (s->st == S_CLOSING)
        return;
    if (s->job)
        job_fail_pending(s->job, RS_TEMPFAIL, true, s->fail_code,
                         s->fail_enh[0] ? s->fail_enh : "4.4.2",
                         s->fail_why[0] ? s->fail_why : "session closed",
                         false);
    session_enter(s, S_CLOSING);
    if (s->job)
        job_finish(s);
    if (s->next) {
        s->job = s->next;
        s->next = NULL;
        job_fail_pending(s->job, RS_TEMPFAIL, true, s->fail_code,
                         s->fail_enh[0] ? s->fail_enh : "4.4.2",
                         s->fail_why[0] ? s->fail_why : "session closed",
                         false);
        job_finish(s);
    }
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

static void session_fail(struct smtp_session *s, int code, const char *enh,
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
                (void *)s, state_names[s->st], s->fail_why);
    session_close(s);
}

/* Fail the session with the server's own reply. */
static void fail_reply(struct smtp_session *s, const char *what)
{
    session_fail(s, s->rp.r.code, s->rp.r.enhanced, "%s: %d %s%s%s", what,
                 s->rp.r.code, s->rp.r.enhanced,
                 s->rp.r.enhanced[0] ? " " : "", s->rp.r.text);
}

static void enter_ready(struct smtp_session *s)
{
    s->ever_ready = true;
    session_enter(s, S_READY);
    s->cb.ready(s, s->arg);
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

static void send_ehlo(struct smtp_session *s)
{
    char cmd[300];
    forget_caps(s);
    snprintf(cmd, sizeof cmd, "EHLO %s", s->ehlo);
    s->rp.on_line = on_ehlo_line;
    s->rp.arg = s;
    session_enter(s, S_EHLO);
    out_cmd(s, cmd);
}

/* After EHLO/HELO: STARTTLS if wanted and offered, else ready. */
static void after_hello(struct smtp_session *s)
{
    if (!s->tls_active && s->cfg.tls != TLS_OFF && s->cfg.ssl_ctx &&
        s->cap_starttls) {
        session_enter(s, S_STARTTLS);
        out_cmd(s, "STARTTLS");
        return;
    }
    if (!s->tls_active && s->cfg.tls == TLS_REQUIRED) {
        out_cmd(s, "QUIT");
        session_fail(s, 0, "4.7.4", "TLS is required for %s but it does not "
                     "offer STARTTLS", s->mx_host);
        return;
    }
    enter_ready(s);
}

/* Start the TLS handshake after "220" to STARTTLS. */
static void start_tls(struct smtp_session *s)
{
    s->tls = tls_new(s->cfg.ssl_ctx, s->mx_host, s->cfg.tls_verify);
    if (!s->tls) {
        session_fail(s, 0, "4.7.5", "cannot set up TLS");
        return;
    }
    session_enter(s, S_TLS);
    int rc = tls_handshake(s->tls);
    if (rc == TLS_EFAIL) {
        session_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
        return;
    }
    if (flush_tls(s))
        session_fail(s, 0, "4.4.2", "write failed during TLS handshake");
}

/* Build and send the transaction's commands (all of them when pipelining). */
/* The MAIL, RCPT and DATA commands of job j in one malloc'd buffer. */
static char *txn_commands(struct smtp_session *s, const struct smtp_job *j,
                          size_t *len_out)
{
    char mail[700];
    int n = snprintf(mail, sizeof mail, "MAIL FROM:<%s>", j->mail_from);
    if (s->cap_size)
        n += snprintf(mail + n, sizeof mail - (size_t)n, " SIZE=%zu", j->size);
    if (j->eightbit && s->cap_8bitmime)
        n += snprintf(mail + n, sizeof mail - (size_t)n, " BODY=8BITMIME");
    if (j->smtputf8)
        snprintf(mail + n, sizeof mail - (size_t)n, " SMTPUTF8");
    size_t cap = 800 + j->nrcpt * 340, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    len += (size_t)snprintf(buf, cap, "%s\r\n", mail);
    for (size_t i = 0; i < j->nrcpt; i++)
        len += (size_t)snprintf(buf + len, cap - len, "RCPT TO:<%s>\r\n",
                                j->rcpts[i].addr);
    len += (size_t)snprintf(buf + len, cap - len, "DATA\r\n");
    *len_out = len;
    return buf;
}

/* Reset the per-transaction state for the job now current. */
static void txn_begin(struct smtp_session *s)
{
    s->expect = 0;
    s->accepted = 0;
    s->mail_failed = s->discard_data = false;
    for (size_t i = 0; i < s->job->nrcpt; i++) {
        s->job->rcpts[i].status = RS_PENDING;
        s->job->rcpts[i].accepted = false;
    }
}

/* The job pipelined behind the end of data becomes current: its commands
 * are on the wire already, its replies follow. */
static void start_next(struct smtp_session *s)
{
    s->job = s->next;
    s->next = NULL;
    txn_begin(s);
    session_enter(s, S_TXN);
}

static void send_txn(struct smtp_session *s)
{
    size_t len;
    char *buf = txn_commands(s, s->job, &len);
    if (!buf) {
        session_fail(s, 0, "4.3.0", "out of memory");
        return;
    }
    if (!s->cap_pipelining) /* MAIL alone; RCPT and DATA follow replies */
        len = (size_t)(strstr(buf, "\r\n") - buf) + 2;
    out(s, buf, len);
    free(buf);
}

/* Pick the form of a job for this server's extensions, or refuse a job
 * it cannot take (SIZE, SMTPUTF8) without sending anything; returns true
 * when the job was refused and finished.  RFC 6531/6532: a message whose
 * envelope or header holds UTF-8 goes with the SMTPUTF8 parameter.  A
 * server without SMTPUTF8 gets the 7-bit form when only header text
 * needed it (encoded words), and a refusal (5.6.7) when an address does;
 * a server without 8BITMIME gets the 7-bit form of an 8-bit message. */
static bool job_refused(struct smtp_session *s, struct smtp_job *job)
{
    if (job->body7 && ((job->utf8hdr && !s->cap_smtputf8) ||
                       (job->eightbit && !s->cap_8bitmime))) {
        job->body = job->body7;
        job->body_len = job->body7_len;
        job->size = job->size7;
        job->eightbit = job->body7_8bit && s->cap_8bitmime;
        job->utf8hdr = job->body7_hdr8;
    }
    if (s->cap_size && s->size_limit && job->size > s->size_limit)
        job_fail_pending(job, RS_PERMFAIL, true, 552, "5.3.4",
                         "message larger than the server's SIZE limit", false);
    else if (job->smtputf8 && !s->cap_smtputf8)
        job_fail_pending(job, RS_PERMFAIL, true, 553, "5.6.7",
                         "SMTPUTF8 required: an address is UTF-8 and the "
                         "server lacks SMTPUTF8", false);
    else if (job->utf8hdr && !s->cap_smtputf8)
        job_fail_pending(job, RS_PERMFAIL, true, 550, "5.6.7",
                         "SMTPUTF8 required: the header has UTF-8 that no "
                         "encoded word can carry (an address) and the "
                         "server lacks SMTPUTF8", false);
    else {
        job->smtputf8 |= job->utf8hdr;
        return false;
    }
    return true;
}

int smtp_session_send(struct smtp_session *s, struct smtp_job *job)
{
    if (s->st != S_READY || s->job)
        return -EBUSY;
    s->job = job;
    txn_begin(s);
    if (job_refused(s, job)) {
        job_finish(s);
        if (s->st == S_READY && !s->job)
            s->cb.ready(s, s->arg);
        return 0;
    }
    session_enter(s, S_TXN);
    send_txn(s);
    return 0;
}

/* The transaction ended without data: RSET before the next one. */
static void txn_end_reset(struct smtp_session *s)
{
    job_finish(s);
    if (s->st == S_CLOSING)
        return;
    if (s->next) {
        /* the end of data ended the transaction; the next MAIL is sent */
        start_next(s);
        return;
    }
    session_enter(s, S_RSET);
    out_cmd(s, "RSET");
}

/* Replies during a transaction: MAIL, each RCPT, then DATA. */
static void on_txn_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    struct smtp_job *j = s->job;
    int cls = reply_class(r->code);
    size_t idx = s->expect++;
    char cmd[400];

    if (idx == 0) {
        if (cls != 2) {
            s->mail_failed = true;
            job_fail_pending(j, cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL, false,
                             r->code, r->enhanced, r->text, false);
            if (!s->cap_pipelining) {
                txn_end_reset(s);
                return;
            }
        } else if (!s->cap_pipelining) {
            snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", j->rcpts[0].addr);
            arm(s, TO_RCPT);
            out_cmd(s, cmd);
            return;
        }
        if (s->cap_pipelining)
            arm(s, TO_RCPT); /* the first pipelined RCPT reply is due */
        return;
    }
    if (idx <= j->nrcpt) {
        struct smtp_rcpt *rc = &j->rcpts[idx - 1];
        if (!s->mail_failed) {
            if (cls == 2) {
                rc->accepted = true;
                s->accepted++;
            } else {
                rc->status = cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL;
                rc->code = (uint16_t)r->code;
                snprintf(rc->enhanced, sizeof rc->enhanced, "%s", r->enhanced);
                snprintf(rc->text, sizeof rc->text, "%s", r->text);
            }
        }
        if (!s->cap_pipelining) {
            if (idx < j->nrcpt) {
                snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", j->rcpts[idx].addr);
                arm(s, TO_RCPT);
                out_cmd(s, cmd);
            } else if (s->accepted) {
                arm(s, TO_DATA);
                out_cmd(s, "DATA");
            } else {
                txn_end_reset(s);
            }
        } else if (idx == j->nrcpt) {
            arm(s, TO_DATA);
        } else {
            arm(s, TO_RCPT);
        }
        return;
    }
    /* the reply to DATA */
    if (r->code == 354) {
        session_enter(s, S_BODY);
        if (s->accepted && !s->mail_failed) {
            struct smtp_job *nj = NULL;
            char *cmds = NULL;
            size_t clen = 0;
            /* RFC 2920: the end of data need not end a command group, so
             * the next transaction rides in the same write as this body */
            if (s->cap_pipelining && s->cb.next_job && !s->next &&
                (nj = s->cb.next_job(s, s->arg)) && job_refused(s, nj)) {
                s->cb.job_done(s, nj, s->arg);
                nj = NULL;
            }
            if (nj && !(cmds = txn_commands(s, nj, &clen))) {
                s->next = nj; /* failed below with the session */
                session_fail(s, 0, "4.3.0", "out of memory");
                return;
            }
            s->next = nj;
            out2(s, j->body, j->body_len, cmds, clen);
            free(cmds);
            /* RFC 5321 4.5.3.2: a data block timeout while the body is
             * still going out, the end-of-data timeout after that */
            if (s->st == S_BODY &&
                uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) > 0) {
                s->body_pending = true;
                arm(s, TO_DATA_BLOCK);
            }
        } else {
            /* RFC 2920: every RCPT failed; end the data at once, empty */
            s->discard_data = true;
            out(s, ".\r\n", 3);
        }
        return;
    }
    job_fail_pending(j, cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL, false, r->code,
                     r->enhanced, r->text, true);
    txn_end_reset(s);
}

/* The reply after the final dot. */
static void on_body_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    int cls = reply_class(r->code);
    struct smtp_job *j = s->job;
    if (s->discard_data) {
        txn_end_reset(s);
        return;
    }
    for (size_t i = 0; i < j->nrcpt; i++) {
        struct smtp_rcpt *rc = &j->rcpts[i];
        if (!rc->accepted || rc->status != RS_PENDING)
            continue;
        rc->status = cls == 2 ? RS_DELIVERED
                              : cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL;
        rc->code = (uint16_t)r->code;
        snprintf(rc->enhanced, sizeof rc->enhanced, "%s", r->enhanced);
        snprintf(rc->text, sizeof rc->text, "%s", r->text);
    }
    if (cls != 2) {
        txn_end_reset(s);
        return;
    }
    job_finish(s);
    if (s->st != S_BODY)
        return;
    if (s->next)
        start_next(s);
    else
        enter_ready(s);
}

/* One complete reply, dispatched by state. */
static void on_reply(struct smtp_session *s)
{
    const struct smtp_reply *r = &s->rp.r;
    int cls = reply_class(r->code);
    switch (s->st) {
    case S_GREETING:
        if (r->code != 220) {
            fail_reply(s, "greeting");
            return;
        }
        send_ehlo(s);
        return;
    case S_EHLO:
        s->rp.on_line = NULL;
        if (cls == 2) {
            s->esmtp = true;
            after_hello(s);
        } else if (cls == 5 && !s->tls_active) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "HELO %s", s->ehlo);
            session_enter(s, S_HELO);
            out_cmd(s, cmd);
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
            enter_ready(s);
        }
        return;
    case S_TXN:
        on_txn_reply(s, r);
        return;
    case S_BODY:
        on_body_reply(s, r);
        return;
    case S_RSET:
        if (cls != 2) {
            fail_reply(s, "RSET");
            return;
        }
        enter_ready(s);
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
        session_fail(s, 0, "4.5.0", "unexpected reply in state %s: %d %s",
                     state_names[s->st], r->code, r->text);
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
            session_fail(s, 0, "4.5.0", "protocol error from %s in state %s: "
                         "reply line over %d bytes", s->mx_host,
                         state_names[s->st], SMTP_REPLY_LINE_MAX);
            return;
        }
        size_t len = s->line_len;
        if (len && s->line[len - 1] == '\r')
            len--;
        s->line[len] = 0;
        s->line_len = 0;
        if (s->st != S_GREETING && s->st != S_EHLO && s->st != S_HELO &&
            s->st != S_STARTTLS && s->st != S_TXN && s->st != S_BODY &&
            s->st != S_RSET && s->st != S_QUIT && s->st != S_READY) {
            session_fail(s, 0, "4.5.0", "unexpected data in state %s",
                         state_names[s->st]);
            return;
        }
        int rc = reply_line(&s->rp, s->line, len);
        if (rc == SMTP_REPLY_EPROTO) {
            session_fail(s, 0, "4.5.0", "protocol error from %s in state %s: "
                         "%s", s->mx_host, state_names[s->st], s->rp.err);
            return;
        }
        if (rc == SMTP_REPLY_DONE) {
            enum state before = s->st;
            on_reply(s);
            reply_reset(&s->rp);
            if (before == S_STARTTLS && s->st == S_TLS && i + 1 < n) {
                session_fail(s, 0, "4.5.0", "%s sent data after its STARTTLS "
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
        session_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
        return;
    }
    if (s->st == S_TLS) {
        int rc = tls_handshake(s->tls);
        if (flush_tls(s)) {
            session_fail(s, 0, "4.4.2", "write failed during TLS handshake");
            return;
        }
        if (rc == TLS_EWANT)
            return;
        if (rc == TLS_EFAIL) {
            session_fail(s, 0, "4.7.5", "%s", tls_error(s->tls));
            return;
        }
        s->tls_active = true;
        send_ehlo(s);
    }
    for (;;) {
        ssize_t got = tls_read(s->tls, plain, sizeof plain);
        if (got == 0)
            break;
        if (got < 0) {
            session_fail(s, 0, "4.4.2", "%s in state %s", tls_error(s->tls),
                         state_names[s->st]);
            return;
        }
        feed(s, plain, (size_t)got);
        if (s->st == S_CLOSING)
            return;
    }
    if (flush_tls(s))
        session_fail(s, 0, "4.4.2", "TLS write failed");
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
        session_fail(s, 0, "4.4.2", "lost connection with %s in state %s%s%s",
                     s->mx_host, state_names[s->st],
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
    session_fail(s, 0, "4.4.2", "timeout waiting for %s in state %s",
                 s->mx_host, state_names[s->st]);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct smtp_session *s = req->data;
    if (s->st == S_CLOSING)
        return;
    if (status < 0) {
        session_fail(s, 0, "4.4.1", "connect to %s: %s", s->mx_host,
                     uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc) {
        session_fail(s, 0, "4.4.1", "read from %s: %s", s->mx_host,
                     uv_strerror(rc));
        return;
    }
    session_enter(s, S_GREETING);
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
    reply_reset(&s->rp);
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
    session_enter(s, S_QUIT);
    out_cmd(s, "QUIT");
}

void smtp_session_abort(struct smtp_session *s, const char *why)
{
    session_fail(s, 0, "4.3.2", "%s", why);
}

bool smtp_session_tls(const struct smtp_session *s) { return s->tls_active; }
bool smtp_session_tls_failed(const struct smtp_session *s) { return s->tls_failed; }
unsigned smtp_session_jobs(const struct smtp_session *s) { return s->jobs; }
const char *smtp_session_state(const struct smtp_session *s) { return state_names[s->st]; }
void *smtp_session_arg(const struct smtp_session *s) { return s->arg; }
const char *smtp_session_host(const struct smtp_session *s) { return s->mx_host; }
