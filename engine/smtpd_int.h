/*
 * smtpd_int.h - what the SMTP listener's files share (smtpd.h): the
 * server, one connection and its states.
 *
 * DESCRIPTION
 *   A connection owns fixed buffers: SMTPD_IN bytes of input (commands
 *   and DATA arrive through it), SMTPD_OUT bytes of replies waiting to be
 *   written; the message being received grows in msg up to
 *   max_message_size, and the recipients up to smtp_max_recipients.  A
 *   write in flight owns a copy (wbuf) freed when it completes.  Nothing
 *   else grows with what a client sends.
 *
 * OWNERSHIP
 *   smtpd.c allocates and frees connections; a connection is freed after
 *   its handles closed and no spool operation or audit job of its is in
 *   flight (refs).
 */
#ifndef SLUICE_SMTPD_INT_H
#define SLUICE_SMTPD_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "engine.h"
#include "queue_campaign.h"
#include "queue_ingress.h"
#include "smtpd.h"
#include "tls.h"

#define SMTPD_IN 4096          /* input buffer per connection */
#define SMTPD_OUT 4096         /* replies waiting to be written */
#define SMTPD_LINE_MAX 1000    /* a command line, CRLF included */
#define SMTPD_DATA_LINE_MAX 1000 /* a text line of DATA, CRLF included */
#define SMTPD_MAX_ERRORS 10    /* bad commands before 421 */
#define SMTPD_AUTH_SLOTS 1024  /* client addresses the AUTH limit tracks */

/* A connection's protocol state (the state table of smtpd.c). */
enum smtpd_state {
    SS_COMMAND,      /* reading commands */
    SS_AUTH,         /* AUTH: waiting for a 334 answer */
    SS_DATA,         /* after 354: the message */
    SS_COMMIT,       /* the message is with the spool's writer */
    SS_TLS,          /* STARTTLS: the handshake */
    SS_CLOSING,      /* the last reply is being written, then close */
    SS_COUNT
};

/* Why DATA's content is refused (the first reason found). */
enum smtpd_bad { BAD_NONE, BAD_NEWLINE, BAD_NUL, BAD_LONG, BAD_SIZE,
                 BAD_MEMORY };

struct smtpd;

struct smtpd_conn {
    struct smtpd *srv;
    struct smtpd_conn *prev, *next;  /* the server's list */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    unsigned refs;                   /* handles open + operations out */
    enum smtpd_state state;
    bool writing, closing, reading, tls_pending_switch;
    struct sockaddr_storage peer;
    char peer_text[INET6_ADDRSTRLEN + 8];
    bool clear_ok;                   /* may AUTH without TLS */
    bool relay_ok;                   /* in smtp_relay_networks */
    struct tls *tls;                 /* after STARTTLS */
    bool greeted;                    /* HELO or EHLO seen */
    bool authed;                     /* AUTH done, or a relay client */
    bool mx_txn;                     /* unauthenticated: reports only */
    struct queue_ingress_who who;
    int auth_mech;                   /* 1 PLAIN, 2 LOGIN */
    int auth_step;                   /* LOGIN: 1 user, 2 password */
    char auth_user[QUEUE_MAX_ACCOUNT_NAME + 1];
    unsigned errors;
    /* the transaction */
    bool in_mail;
    char *mail_from;
    char **rcpts;
    unsigned nrcpt, caprcpt;
    /* DATA */
    char *msg;
    size_t msglen, msgcap, msgseen;
    enum smtpd_bad bad;
    bool d_bol, d_crlf_bol, d_cr, d_dot;
    size_t d_linelen;
    /* I/O */
    bool skipping;                   /* discarding an overlong line */
    size_t inlen, outlen;
    char *wbuf;
    char in[SMTPD_IN];
    char out[SMTPD_OUT];
};

/* One failed-AUTH counter per client address (hash slot). */
struct smtpd_auth_slot {
    unsigned char addr[16];
    uint64_t since_ms;
    unsigned failures;
};

struct bounce_rules;

struct smtpd {
    struct engine *e;
    bool mx;                         /* bounce_domain set: the MX path */
    unsigned char secret[QUEUE_TOKEN_SECRET]; /* the spool's, for VERP */
    struct bounce_rules *rules;      /* bounce_rules as read at start */
    char qdir[4096 + 16];            /* SPOOL/quarantine */
    uv_tcp_t listeners[CONFIG_SMTPD_MAX_LISTEN];
    unsigned nlisteners;
    SSL_CTX *tls;                    /* server context, or NULL */
    struct smtpd_conn *conns;
    unsigned nconns;
    uint64_t accepted, refused_busy;
    uint64_t data_bytes;             /* message buffers of all connections
                                        and reports with the MX path */
    struct smtpd_auth_slot auth[SMTPD_AUTH_SLOTS];
};

/* smtpd.c */
/* Queue a reply line (CRLF added); lines of a multi-line reply one by
 * one.  false when the output buffer is full (the session is closed). */
bool smtpd_reply(struct smtpd_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Enter state s: its timer, reading on or off (one place for it). */
void smtpd_enter(struct smtpd_conn *c, enum smtpd_state s);
/* Write what is queued; then go on reading (and pumping input). */
void smtpd_flush(struct smtpd_conn *c);
/* Write what is queued and close. */
void smtpd_close_after_reply(struct smtpd_conn *c);
/* Process input already buffered (after a state that paused it). */
void smtpd_pump(struct smtpd_conn *c);
/* STARTTLS accepted: write the 220 in the clear, then the handshake. */
void smtpd_start_tls(struct smtpd_conn *c);
/* Hold/release a connection across an asynchronous operation. */
void smtpd_ref(struct smtpd_conn *c);
void smtpd_unref(struct smtpd_conn *c);

/* smtpd_cmd.c: one command line (CR LF removed, NUL-free). */
void smtpd_command(struct smtpd_conn *c, char *line, size_t len);
/* Forget the transaction (RSET, EHLO, after DATA). */
void smtpd_txn_reset(struct smtpd_conn *c);
/* The EHLO/banner host name. */
const char *smtpd_hostname(const struct smtpd_conn *c);

/* smtpd_data.c: feed DATA bytes; returns how many were consumed (stops
 * after the end of the message, which it submits). */
size_t smtpd_data_feed(struct smtpd_conn *c, const char *p, size_t n);
/* Free the message buffer (its bytes leave the global count). */
void smtpd_msg_free(struct smtpd_conn *c);
/* Start receiving a message (after 354). */
void smtpd_data_begin(struct smtpd_conn *c);

/* smtpd_auth.c */
void smtpd_auth_start(struct smtpd_conn *c, char *args);
void smtpd_auth_line(struct smtpd_conn *c, char *line);
/* Whether AUTH may be offered and used on c now. */
bool smtpd_auth_offered(const struct smtpd_conn *c);
/* Whether c's address is locked out of AUTH now. */
bool smtpd_auth_locked(struct smtpd_conn *c);

/* smtpd_mx.c: the bounce domain's MX */
enum { SMTPD_MX_NOT_OURS, SMTPD_MX_OURS, SMTPD_MX_FORGED };
/* Read the token secret and bounce rules when bounce_domain is set. */
int smtpd_mx_start(struct smtpd *s);
void smtpd_mx_free(struct smtpd *s);
/* Whether addr is a report address of ours (SMTPD_MX_*). */
int smtpd_mx_rcpt(struct smtpd_conn *c, const char *addr);
/* Hand the received report (c->msg) to the feedback path. */
void smtpd_mx_submit(struct smtpd_conn *c);

#endif
