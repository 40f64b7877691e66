/*
 * smtp_session.h - one outgoing SMTP connection as an explicit state machine.
 *
 * DESCRIPTION
 *   A session connects to one address of one MX host, reads the greeting,
 *   says EHLO (HELO if refused), upgrades with STARTTLS when policy and the
 *   server allow, and then carries transactions ("jobs") one after another
 *   until it is told to quit or its owner stops giving it work.  Commands of
 *   a transaction are pipelined when the server offers PIPELINING (RFC
 *   2920); every reply is checked, and when every RCPT failed the body is
 *   never sent.
 *
 *   Bodies arrive ready for the wire (CRLF line ends, dot-stuffed, ending
 *   with "CRLF.CRLF"; see compose.h); the session sends them as they are.
 *
 *   Crash window: a job whose recipients the server accepted is, until
 *   its outcome is durably recorded, a delivery that a crash would repeat.
 *   A session holds at most SMTP_UNRECORDED_MAX such jobs: a job with a
 *   delivered recipient is marked job->record_wait at job_done(), and
 *   while that many are unrecorded, with the jobs in flight counted as if
 *   they will deliver, the session starts no transaction (no MAIL FROM,
 *   none pipelined behind a body) until the owner calls
 *   smtp_session_recorded().  It reports closed() only once all are
 *   recorded, so a closing session keeps its place against the
 *   connection caps until then.  Repeated deliveries after a crash are
 *   thus at most SMTP_UNRECORDED_MAX x the sessions open x the
 *   recipients per message, whatever the load or the writer's pace.
 *
 * OWNERSHIP
 *   The caller owns each job and everything it points to until job_done()
 *   is called for it.  The session frees itself after closed() returns.
 *
 * DIAGNOSTICS
 *   Outcomes are reported per recipient in the job (code, enhanced code,
 *   text, and whether the failure was the server's word or ours: a timeout,
 *   a lost connection or a protocol error).  closed() says why a session
 *   ended; a session that never became ready reports the reason so the
 *   owner can try the next MX.
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"
#include "smtp_reply.h"

/* Jobs with a delivered recipient a session holds unrecorded, at most.
 * 1 makes every transaction wait for a commit (an fsync): W1 ran at about
 * 0.4x of no bound, 2 at 0.5-0.7x; 4 at a median 0.95x (0.54-1.65x over
 * 16 pairs), 8 no better (2026-12, bench/suite.py W1 --fraction 0.3, a
 * busy machine; a waiting session hurries the writer, without which 4 ran
 * at about 0.6x). */
#define SMTP_UNRECORDED_MAX 4

/* Result of one recipient. */
enum rcpt_status {
    RS_PENDING = 0,
    RS_DELIVERED,   /* 2xx to RCPT and to the end of data */
    RS_TEMPFAIL,    /* 4xx, or no answer: try again later */
    RS_PERMFAIL,    /* 5xx: bounce */
};

struct smtp_rcpt {
    uint64_t delivery;
    const char *addr;
    uint8_t status;               /* enum rcpt_status */
    bool accepted;                /* 2xx to RCPT, waiting for the data */
    bool local;                   /* failure found by us, not said by server */
    uint16_t code;
    char enhanced[16];
    char text[SMTP_REPLY_TEXT];
};

/* One transaction: one message to one or more recipients. */
struct smtp_job {
    const char *mail_from;        /* "" for the null sender */
    struct smtp_rcpt *rcpts;
    size_t nrcpt;
    const char *body;             /* wire form, ends with CRLF.CRLF */
    size_t body_len;
    size_t size;                  /* for the SIZE parameter */
    bool eightbit;                /* BODY=8BITMIME when offered */
    const char *body7;            /* the same message in 7-bit form (8-bit
                                   * parts re-encoded, 8-bit header text as
                                   * encoded words, re-signed), for a
                                   * server without 8BITMIME, or without
                                   * SMTPUTF8 when utf8hdr; or NULL */
    size_t body7_len, size7;
    bool body7_8bit, body7_hdr8;  /* 8-bit octets the 7-bit form kept (in
                                   * the header: an 8-bit address) */
    bool smtputf8;                /* envelope address needs SMTPUTF8 */
    bool utf8hdr;                 /* 8-bit header (RFC 6532): SMTPUTF8, or
                                   * the 7-bit form */
    bool record_wait;             /* set by the session at job_done(): a
                                   * recipient was delivered, and the
                                   * owner owes smtp_session_recorded() */
    void *owner;
};

struct smtp_session_cfg {
    const char *ehlo_name;
    const char *mx_host;          /* for TLS name checks and logs */
    enum tls_policy tls;
    bool tls_verify;
    SSL_CTX *ssl_ctx;             /* NULL: never STARTTLS */
    const unsigned *timeout_ms;   /* TO_COUNT entries */
};

struct smtp_session;

struct smtp_session_cb {
    /* idle and able to take a job (smtp_session_send) or smtp_session_quit */
    void (*ready)(struct smtp_session *s, void *arg);
    /* optional: a job to pipeline behind the end of data being sent, or
     * NULL; the session owns nothing of it until job_done() */
    struct smtp_job *(*next_job)(struct smtp_session *s, void *arg);
    /* every recipient of job has its status */
    void (*job_done)(struct smtp_session *s, struct smtp_job *job, void *arg);
    /* the session is gone; ever_ready false when it never got to ready.
     * code/enhanced/why describe the failure (code 0 for local ones). */
    void (*closed)(struct smtp_session *s, bool ever_ready, int code,
                   const char *enhanced, const char *why, void *arg);
    /* optional: s now waits for smtp_session_recorded() (it may start no
     * transaction, or it has closed): record what it waits for soon */
    void (*waits)(struct smtp_session *s, void *arg);
};

/* Connect to addr and begin.  On error no callback is ever called. */
int smtp_session_start(uv_loop_t *loop, const struct smtp_session_cfg *cfg,
                       const struct sockaddr *addr,
                       const struct smtp_session_cb *cb, void *arg,
                       struct smtp_session **out);

/* Hand a job to a ready session.  -EBUSY if it is not ready. */
int smtp_session_send(struct smtp_session *s, struct smtp_job *job);

/* The outcome of a job that job_done() marked record_wait is durable (or
 * will never be: dropped); the session may start its next transaction.
 * Once for each such job; the session may call ready() or closed() from
 * here. */
void smtp_session_recorded(struct smtp_session *s);

/* QUIT politely and close (ready sessions), or close at once. */
void smtp_session_quit(struct smtp_session *s);
void smtp_session_abort(struct smtp_session *s, const char *why);

/* Facts for logs and status. */
bool smtp_session_tls(const struct smtp_session *s);
bool smtp_session_tls_failed(const struct smtp_session *s);
unsigned smtp_session_jobs(const struct smtp_session *s);
const char *smtp_session_state(const struct smtp_session *s);
void *smtp_session_arg(const struct smtp_session *s);
const char *smtp_session_host(const struct smtp_session *s);

/* Debug tracing of state changes to stderr (sluiced -v). */
extern int smtp_trace;
/* Bytes the sessions have queued for their sockets (what the kernel did
 * not take yet: at most the rest of one message and the next commands
 * per session); loop thread. */
uint64_t smtp_session_queued_bytes(void);

#endif
