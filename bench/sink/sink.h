/*
 * sink.h - private header shared by the files of sluice-sink.
 *
 * sluice-sink is a scriptable SMTP sink on one libuv loop, used by the tests
 * and benchmarks of sluice.  This header declares the configuration, the
 * counters, the per-domain table, the session and the server, and the
 * functions each file exports to the others.
 *
 * Ownership: the server owns every session (a list), the domain tables, the
 * TLS context and the shared read buffers.  A session owns its buffers and
 * its two libuv handles; its memory is freed only in the last close callback.
 *
 * Errors: functions returning int give 0 on success and a negative
 * errno-style code (libuv's space) on failure; OpenSSL errors are converted
 * at the edge in sink_tls.c.
 */
#ifndef SLUICE_SINK_H
#define SLUICE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#define SINK_CMD_LINE_MAX 4096        /* command line cap, CRLF excluded */
#define SINK_READ_CHUNK (256 * 1024)  /* one read from the network */
#define SINK_OUT_FLUSH (64 * 1024)    /* flush replies mid-batch above this */
#define SINK_WQ_HIGH (1024 * 1024)    /* stop reading above this write queue */
#define SINK_WQ_LOW (256 * 1024)      /* resume reading below this */
#define SINK_CARRY_MAX (SINK_CMD_LINE_MAX + 2 * SINK_READ_CHUNK)
#define SINK_ADDR_MAX 512             /* one mail address in a path */
#define SINK_PARAMS_MAX 512           /* MAIL parameters kept for capture */

/* Exit codes (sysexits.h values). */
#define SINK_EXIT_OK 0
#define SINK_EXIT_USAGE 64
#define SINK_EXIT_OSERR 71

/* Session-level fault modes chosen with --mode. */
enum sink_mode {
    SINK_MODE_NORMAL,
    SINK_MODE_GARBAGE,
    SINK_MODE_MULTILINE_MISMATCH,
    SINK_MODE_OVERLONG,
    SINK_MODE_DRIP,
    SINK_MODE_GREET_421,
    SINK_MODE_GREET_554,
    SINK_MODE_NO_GREETING,
    SINK_MODE_TLS_GARBAGE,   /* 220 to STARTTLS, then plaintext garbage */
    SINK_MODE_TLS_CLOSE,     /* 220 to STARTTLS, then close */
};

/* Everything the command line sets. Strings point into argv. */
struct sink_config {
    const char *listen_host;
    int listen_port;
    uint64_t max_size;
    const char *tls_cert;
    const char *tls_key;
    bool starttls;               /* advertise STARTTLS (needs cert + key) */
    bool no_8bitmime;   /* --no-8bitmime: do not offer 8BITMIME */
    bool no_smtputf8;   /* --no-smtputf8: do not offer SMTPUTF8 */
    uint64_t slow_ms;
    uint64_t drip_ms;
    enum sink_mode mode;
    double tempfail_pct;
    double permfail_pct;
    double block_pct;   /* --block-pct: 554 5.7.1, a policy block */
    uint64_t seed;
    uint64_t max_conn_per_domain; /* 0: unlimited */
    uint64_t max_domains;
    uint64_t max_rcpt;
    uint64_t timeline_secs;       /* 0: no timeline */
    const char *stats_path;
    uint64_t stats_interval;      /* seconds, 0: only at exit and SIGUSR1 */
    const char *capture_dir;
    const char *pidfile;
    uint64_t exit_after;          /* 0: never */
    uint64_t track_rcpt;          /* --track-recipients cap; 0: off */
    const char *hostname;
    bool verbose;
};

/* A bounded growable byte buffer; appends past max fail. */
struct sink_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

/* Counters for one domain: a local address or a recipient domain. */
struct sink_domain {
    struct sink_domain *next;     /* hash chain */
    uint64_t hash;
    uint64_t sessions;
    uint64_t current;
    uint64_t max_concurrency;
    uint64_t conn_limit_violations;
    uint64_t messages;
    uint64_t recipients;
    uint64_t rcpt_tempfail;
    uint64_t rcpt_permfail;
    uint64_t bare_lf;
    uint64_t bare_cr;
    uint64_t last_msg;            /* message seq last counted, for dedup */
    uint32_t *timeline;           /* accepted recipients per second */
    size_t timeline_len;
    size_t timeline_cap;
    char name[];
};

/* A capped hash map from name to struct sink_domain. */
struct sink_domain_map {
    struct sink_domain **slots;
    size_t nslots;
    size_t count;
    size_t max;
    uint64_t dropped;             /* names folded into "(other)" */
    struct sink_domain *other;
};

/* Global counters. */
struct sink_stats {
    uint64_t sessions;
    uint64_t current;
    uint64_t max_concurrency;
    uint64_t conn_limit_violations;
    uint64_t messages;
    uint64_t recipients;
    uint64_t rcpt_tempfail;
    uint64_t rcpt_permfail;
    uint64_t bytes;               /* accepted message bytes, unstuffed */
    uint64_t bytes_in;            /* raw bytes read from clients */
    uint64_t bare_lf;
    uint64_t bare_cr;
    uint64_t long_lines;
    uint64_t oversize;
    uint64_t dropped_after_data;  /* disconnect* sessions */
    uint64_t sessions_without_mail; /* closed with no MAIL accepted */
    uint64_t sessions_one_mail;   /* closed after exactly one MAIL */
    uint64_t protocol_errors;
    uint64_t tls_handshakes;
    uint64_t tls_failures;
    uint64_t capture_errors;
    uint64_t smtp_sessions;       /* connections that said EHLO/HELO */
    uint64_t transactions;        /* MAIL commands accepted */
    uint64_t rcpt_first;          /* RCPTs of an address not seen before */
    uint64_t rcpt_again;          /* RCPTs of an address seen before */
    uint64_t rcpt_untracked;      /* RCPTs past the --track-recipients cap */
    int64_t last_first_rcpt_ms;   /* the last first RCPT; -1: none yet */
    int64_t started_ms;
    int64_t first_accept_ms;      /* -1: none yet */
    int64_t last_accept_ms;
    uint64_t start_hr;            /* uv_hrtime() at start, for the timeline */
    size_t timeline_max;          /* seconds kept; 0: no timeline */
    uint32_t *timeline;
    size_t timeline_len;
    size_t timeline_cap;
    struct sink_domain_map by_addr;
    struct sink_domain_map by_domain;
    struct sink_domain_map seen;  /* --track-recipients: addresses */
};

/* DATA decoder: dot-unstuffing, end at CRLF.CRLF, bare CR/LF counting. */
struct sink_dot {
    int state;
    size_t line_len;
    uint64_t bare_lf;
    uint64_t bare_cr;
    uint64_t long_lines;
};

typedef void (*sink_emit_fn)(void *ctx, const char *p, size_t n);

/* Where the input of a session goes. */
enum sink_in {
    SINK_IN_CMD,       /* command lines */
    SINK_IN_DATA,      /* message content until CRLF.CRLF */
    SINK_IN_SKIP,      /* rest of an overlong command line */
    SINK_IN_DISCARD,   /* everything (after STARTTLS, before TLS, closing) */
};

/* SMTP states; every change goes through sink_smtp_enter(). */
enum sink_state {
    SINK_ST_GREETING,
    SINK_ST_INIT,      /* greeted, no EHLO/HELO yet */
    SINK_ST_READY,     /* EHLO/HELO seen, no transaction */
    SINK_ST_MAIL,      /* MAIL accepted */
    SINK_ST_RCPT,      /* at least one RCPT accepted */
    SINK_ST_DATA,      /* receiving content */
    SINK_ST_REFUSED,   /* greet-554: only QUIT works */
    SINK_ST_CLOSING,
};

struct sink_server;
struct ssl_st;
struct ssl_ctx_st;

/* One client connection. */
struct sink_session {
    uv_tcp_t tcp;
    uv_timer_t timer;             /* slow replies and drip */
    uv_shutdown_t shutdown_req;
    struct sink_server *srv;
    struct sink_session *prev, *next;
    struct sink_domain *addr;     /* the local address it connected to */
    uint64_t id;
    enum sink_state state;
    enum sink_in in;
    int handles_open;
    bool reading;
    bool paused;                  /* waiting on a timer: keep input */
    bool closing;                 /* handles being closed */
    bool shutting_down;           /* flush, then FIN, then close */
    bool shutdown_started;
    bool counted;                 /* in the concurrency counters */
    bool esmtp;
    bool hello_counted;           /* counted in smtp_sessions */
    bool starttls_pending;        /* 220 queued, TLS starts after it */
    struct ssl_st *ssl;           /* non-NULL once STARTTLS began */
    void *rbio, *wbio;
    bool tls_done;
    struct sink_buf carry;        /* unconsumed input */
    struct sink_buf out;          /* replies not yet written */
    struct sink_buf rcpts;        /* "<addr>\0" per accepted recipient */
    struct sink_domain **rcpt_dom;
    size_t nrcpt;
    size_t rcpt_dom_cap;
    char mail_from[SINK_ADDR_MAX + 1];
    char mail_params[SINK_PARAMS_MAX + 1]; /* as sent, cut to the cap */
    bool smtputf8;                /* MAIL carried SMTPUTF8 */
    uint64_t mails;               /* MAIL commands answered 250 */
    bool drop_after_data;         /* a disconnect* recipient */
    struct sink_dot dot;
    uint64_t msg_size;
    bool msg_oversize;
    struct sink_buf body;         /* captured content, when --capture */
    char *pending_reply;          /* slow* reply held until the timer */
    const char *drip;             /* greeting left to drip */
    size_t drip_left;
};

/* The process: one loop, one listener, all sessions. */
struct sink_server {
    uv_loop_t *loop;
    struct sink_config cfg;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uv_timer_t stats_timer, drain_timer;
    bool listening, stopping, draining;
    struct ssl_ctx_st *tls_ctx;
    struct sink_stats stats;
    struct sink_session *sessions;
    uint64_t next_session_id;
    uint64_t rng;
    char *readbuf;                /* shared: alloc_cb -> read_cb is atomic */
    char *plainbuf;               /* shared: decrypted TLS input */
    char greeting[320];
};

/* sink_config.c */
int sink_config_parse(struct sink_config *cfg, int argc, char **argv);
void sink_config_usage(FILE *fp);

/* sink_server.c */
int sink_server_run(struct sink_server *srv);
void sink_server_message_accepted(struct sink_server *srv);
void sink_server_session_gone(struct sink_server *srv);

/* sink_session.c */
void sink_session_accept(struct sink_server *srv);
void sink_session_close(struct sink_session *s);
void sink_session_reply(struct sink_session *s, const char *text);
void sink_session_flush(struct sink_session *s);
int sink_session_write_raw(struct sink_session *s, const char *p, size_t n);
void sink_session_quit(struct sink_session *s);
void sink_session_pause(struct sink_session *s, uint64_t ms);
void sink_session_update_reading(struct sink_session *s);

/* sink_input.c */
void sink_input_feed(struct sink_session *s, char *p, size_t n);
void sink_input_resume(struct sink_session *s);

/* sink_smtp.c */
void sink_smtp_greet(struct sink_session *s);
void sink_smtp_command(struct sink_session *s, char *line, size_t len);
void sink_smtp_enter(struct sink_session *s, enum sink_state st);
void sink_smtp_timer_fired(struct sink_session *s);
void sink_smtp_reset_transaction(struct sink_session *s);

/* sink_policy.c */
const char *sink_policy_rcpt(struct sink_session *s, const char *local,
                             bool *accepted, bool *slow);
const char *sink_mode_name(enum sink_mode m);
int sink_mode_parse(const char *name, enum sink_mode *m);

/* sink_data.c */
void sink_dot_init(struct sink_dot *d);
size_t sink_dot_decode(struct sink_dot *d, const char *in, size_t n,
                       sink_emit_fn emit, void *ctx, bool *done);
size_t sink_data_consume(struct sink_session *s, const char *p, size_t n);
void sink_data_begin(struct sink_session *s);

/* sink_capture.c */
int sink_capture_write(struct sink_session *s, uint64_t seq);

/* sink_tls.c */
int sink_tls_init(struct sink_server *srv);
void sink_tls_free(struct sink_server *srv);
int sink_tls_start(struct sink_session *s);
void sink_tls_end(struct sink_session *s);
int sink_tls_input(struct sink_session *s, const char *p, size_t n);
int sink_tls_output(struct sink_session *s, const char *p, size_t n);
int sink_tls_pump(struct sink_session *s);

/* sink_stats.c */
int sink_stats_init(struct sink_stats *st, const struct sink_config *cfg);
void sink_stats_free(struct sink_stats *st);
struct sink_domain *sink_domain_get(struct sink_domain_map *m,
                                    const char *name, size_t len);
void sink_stats_session_open(struct sink_stats *st, struct sink_domain *d);
void sink_stats_session_close(struct sink_stats *st, struct sink_domain *d);
void sink_stats_rcpt_failed(struct sink_stats *st, struct sink_session *s,
                            struct sink_domain *dom, bool temporary);
void sink_stats_message(struct sink_server *srv, struct sink_session *s);
int sink_domain_map_init(struct sink_domain_map *m, size_t max);

/* sink_seen.c */
int sink_seen_init(struct sink_stats *st, const struct sink_config *cfg);
void sink_seen_rcpt(struct sink_stats *st, const char *addr);
void sink_domain_map_free(struct sink_domain_map *m);

/* sink_json.c */
int sink_stats_write(struct sink_server *srv);
void sink_stats_summary(struct sink_server *srv, FILE *fp);

/* sink_util.c */
void sink_buf_init(struct sink_buf *b, size_t max);
int sink_buf_append(struct sink_buf *b, const void *p, size_t n);
void sink_buf_consume(struct sink_buf *b, size_t n);
void sink_buf_reset(struct sink_buf *b, size_t keep);
void sink_buf_free(struct sink_buf *b);
int64_t sink_wall_ms(void);
int sink_parse_u64(const char *s, uint64_t max, uint64_t *out);

void sink_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SLUICE_SINK_H */
