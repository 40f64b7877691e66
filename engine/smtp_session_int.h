/*
 * smtp_session_int.h - what smtp_session.c (connection, greeting, EHLO,
 * STARTTLS, I/O) and smtp_txn.c (the mail transaction: MAIL, RCPT, DATA
 * and the body) share about one session.  Not for other files: they use
 * smtp_session.h.
 */
#ifndef SLUICE_SMTP_SESSION_INT_H
#define SLUICE_SMTP_SESSION_INT_H

#include "smtp_session.h"

enum smtp_state {
    S_CONNECT, S_GREETING, S_EHLO, S_HELO, S_STARTTLS, S_TLS, S_READY,
    S_MAIL, S_RCPT, S_DATA, S_BODY, S_RSET, S_QUIT, S_CLOSING, S_COUNT
};

#define SMTP_READ_BUF 16384

struct tls;

struct smtp_session {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer;
    int open_handles;
    enum smtp_state st;
    struct smtp_session_cfg cfg;
    char mx_host[256];
    char ehlo[256];
    struct smtp_session_cb cb;
    void *arg;

    struct smtp_reply_parser rp;
    char line[SMTP_REPLY_LINE_MAX + 1];
    size_t line_len;
    bool line_overflow;
    char rbuf[SMTP_READ_BUF];

    struct tls *tls;
    bool tls_active, tls_failed;

    bool esmtp, cap_pipelining, cap_8bitmime, cap_starttls, cap_smtputf8;
    bool cap_size;
    uint64_t size_limit;
    bool ever_ready;
    unsigned jobs;

    struct smtp_job *job;
    struct smtp_job *next;  /* pipelined behind the current end of data */
    bool next_sent;         /* its commands went out with the body */
    size_t rcpt;            /* in S_RCPT: the recipient whose reply is due */
    size_t accepted;
    bool mail_failed, discard_data;
    bool body_pending;      /* body still in our write queue */

    unsigned unrecorded;    /* jobs delivered, their outcome not durable */
    bool ready_waits;       /* ready, and ready() waits for the record */
    bool close_waits;       /* closed, and closed() waits for the record */

    bool closed_reported;
    int fail_code;
    char fail_enh[16];
    char fail_why[300];
};

/* smtp_session.c */
extern const char *const smtp_state_names[S_COUNT];
/* Move to state st: trace "old -> new" and arm its timeout. */
void smtp_move(struct smtp_session *s, enum smtp_state st);
/* Move to a session state (not MAIL, RCPT, DATA, BODY: smtp_txn.c enters
 * those itself) and do its entry action. */
void smtp_enter(struct smtp_session *s, enum smtp_state st);
/* Re-arm the timer for the reply now awaited within the same state. */
void smtp_arm(struct smtp_session *s, int which);
/* Send protocol bytes (through TLS once it is up); one command line. */
void smtp_out(struct smtp_session *s, const char *p, size_t n);
void smtp_out_cmd(struct smtp_session *s, const char *cmd);
/* Send two pieces in one write (b may be NULL).  body: a is the
 * message body (S_BODY), so the data-block timeout runs while it is
 * still in our write queue, the end-of-data one once it has left. */
void smtp_out2(struct smtp_session *s, const char *a, size_t an,
               const char *b, size_t bn, bool body);
/* End the session with a reason; recipients in flight get RS_TEMPFAIL. */
void smtp_fail(struct smtp_session *s, int code, const char *enh,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* smtp_txn.c */
/* A reply in S_MAIL, S_RCPT, S_DATA or S_BODY. */
void smtp_txn_reply(struct smtp_session *s, const struct smtp_reply *r);
/* Give every undecided recipient of the job one failure outcome. */
void smtp_job_fail_pending(struct smtp_job *job, enum rcpt_status st,
                           bool local, int code, const char *enh,
                           const char *text, bool only_accepted);
/* Hand the finished job back to its owner. */
void smtp_job_finish(struct smtp_session *s);
/* May one more transaction start, with `busy` jobs of the session already
 * in flight?  Each may deliver, and each delivered one stays unrecorded
 * until smtp_session_recorded(). */
bool smtp_may_start(const struct smtp_session *s, unsigned busy);

#endif
