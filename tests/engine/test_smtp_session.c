/*
 * test_smtp_session.c - the SMTP client (engine/smtp_session.h) against a
 * scripted server on 127.0.0.1.
 *
 * Each case runs one session in its own libuv loop against a server in the
 * same loop that follows a script: wait for a command line, send a reply
 * (in one write, or one byte per loop turn), take the body, close, hang, or
 * stop reading.  The case then checks what the session told its caller:
 * each recipient's status (delivered, temporary or permanent failure),
 * whether the failure was the server's word or ours, the code and text, and
 * closed()'s reason; and what the client put on the wire (no body after
 * every RCPT failed, HELO after a refused EHLO, ...).
 *
 * Every state is covered (connect, greeting, EHLO, HELO, STARTTLS, the TLS
 * handshake, MAIL, RCPT, DATA, the end of data, RSET, idle, QUIT), with
 * every reply class and the faults of a hostile or broken server (garbage,
 * a multiline reply that changes code, an over-long line, the connection
 * closed mid-reply, silence until the stage's timeout), with and without
 * PIPELINING.  Timeouts are configured short for the stage under test and
 * long for the others; no case looks at how long anything took.  Each case
 * ends with uv_loop_close() == 0, so a leaked handle fails it.
 *
 * Only the public API is used: a case that needs more (which state a
 * session died in, for instance) checks the words of its reason instead.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "smtp_session.h"

#define DEFAULT_TO_MS 10000  /* every stage not under test */
#define SHORT_TO_MS 50       /* the stage under test (the server is silent) */
#define LONG_TO_MS 3600000   /* the other stages of a timeout case */
#define GUARD_MS 100000      /* a case that never ends fails, not hangs */
#define NJOB (SMTP_UNRECORDED_MAX + 1)
#define NRCPT 3
#define SRV_IN_CAP (1u << 20)
#define SRV_LOG_CAP (1u << 20)
#define BIG_BODY (48u << 20) /* more than both socket buffers hold */

/* ------------------------------------------------------------ the cases */

/* What one recipient must end as; status 0: the job must never finish. */
struct want_rcpt {
    uint8_t status;
    bool local;
    uint16_t code;
    const char *enh;   /* NULL: not checked */
    const char *text;  /* substring; NULL for local: closed()'s reason */
};

enum target { T_SERVER, T_REFUSED, T_NO_ACCEPT };

struct scase {
    const char *name;
    /* the server's script, one step per string:
     *   "<X"  wait for a command line starting with X
     *   ">X"  send X CRLF in one write      "~X" the same, a byte a turn
     *   "."   take the body up to its "."   "?"  wait for any bytes
     *   "!"   close (after what was sent)   "="  say nothing more
     *   "#"   stop reading and say nothing
     *   "%LONG" a 3000-byte reply line      "%MANY" a 101-line reply */
    const char *script[40];
    enum target target;
    int timeout;               /* TO_x + 1 made short; 0: none */
    size_t nrcpt;
    int njobs;                 /* jobs to hand over, one per ready() */
    bool pipeline_next;        /* the second job through next_job() */
    bool idle;                 /* ready(): no job, no quit */
    bool late_record;          /* delivered jobs recorded only when the
                                * session waits, or once it has closed */
    bool big_body;
    bool ssl;                  /* give the session an SSL_CTX */
    enum tls_policy tls;
    struct want_rcpt want[NJOB][NRCPT];
    bool ever_ready;
    int code;                  /* closed()'s code */
    const char *enh;           /* closed()'s enhanced code, or NULL */
    const char *why;           /* substring of closed()'s reason */
    bool tls_failed;
    const char *has[4], *lacks[4];  /* in what the client sent */
};

#define SHORT(to) .timeout = (to) + 1
#define DLV(t) { RS_DELIVERED, false, 250, NULL, t }
#define TMP(c, e, t) { RS_TEMPFAIL, false, c, e, t }
#define PRM(c, e, t) { RS_PERMFAIL, false, c, e, t }
#define LCL { RS_TEMPFAIL, true, 0, NULL, NULL }
#define UNPAREN(...) __VA_ARGS__

#define GREET ">220 mx.test ESMTP ready"
#define EHLO_N "<EHLO client.test", ">250-mx.test hello\r\n250 SIZE 1000000"
#define EHLO_P "<EHLO client.test", \
    ">250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME"
#define EHLO_TLS "<EHLO client.test", ">250-mx.test hello\r\n250 STARTTLS"
#define MAIL "<MAIL FROM:<sender@x.test>"
#define RCPT_A "<RCPT TO:<a@x.test>"
#define RCPT_B "<RCPT TO:<b@x.test>"
#define RCPT_C "<RCPT TO:<c@x.test>"
#define QUIT "<QUIT", ">221 2.0.0 bye", "!"
/* One pipelined transaction to a, delivered. */
#define JOB_P MAIL, RCPT_A, "<DATA", ">250 ok\r\n250 ok\r\n354 go", ".", \
    ">250 2.0.0 delivered"
#define BODY_LINE "hello body"

/* The faults of a broken or hostile server at one stage: all end the
 * session with a local temporary failure, never a guess. */
#define LOCAL_FAULTS(nm, to, rdy, fields, prefix)                           \
    { .name = nm ": garbage", .script = { UNPAREN prefix ">bogus reply" },  \
      .ever_ready = rdy, .why = "garbage", .enh = "4.5.0",                  \
      UNPAREN fields },                                                      \
    { .name = nm ": multiline reply changing code",                          \
      .script = { UNPAREN prefix ">250-fine\r\n550 changed" },              \
      .ever_ready = rdy, .why = "changed code", .enh = "4.5.0",             \
      UNPAREN fields },                                                      \
    { .name = nm ": over-long line", .script = { UNPAREN prefix "%LONG" },  \
      .ever_ready = rdy, .why = "over 2048", .enh = "4.5.0",                \
      UNPAREN fields },                                                      \
    { .name = nm ": more than 100 lines",                                    \
      .script = { UNPAREN prefix "%MANY" },                                 \
      .ever_ready = rdy, .why = "more than 100", .enh = "4.5.0",            \
      UNPAREN fields },                                                      \
    { .name = nm ": closed mid-reply",                                       \
      .script = { UNPAREN prefix ">250-partial", "!" },                     \
      .ever_ready = rdy, .why = "lost connection", .enh = "4.4.2",          \
      UNPAREN fields },                                                      \
    { .name = nm ": timeout", .script = { UNPAREN prefix "=" },             \
      SHORT(to), .ever_ready = rdy, .why = "timeout", .enh = "4.4.2",       \
      UNPAREN fields }

static const struct scase cases[] = {
    /* ------------------------------------------------- whole dialogues */
    { .name = "plain: mixed recipients, multiline greeting",
      .script = { ">220-mx.test ESMTP\r\n220 ready", EHLO_N,
                  MAIL, ">250 2.1.0 ok", RCPT_A, ">250 2.1.5 ok",
                  RCPT_B, ">550 5.1.1 no such user",
                  RCPT_C, ">451 4.2.0 try again later", "<DATA",
                  ">354 go ahead", ".", ">250 2.0.0 queued as ABC", QUIT },
      .nrcpt = 3, .njobs = 1,
      .want = {{ { RS_DELIVERED, false, 250, "2.0.0", "queued as ABC" },
                 PRM(550, "5.1.1", "no such user"),
                 TMP(451, "4.2.0", "try again later") }},
      .ever_ready = true, .why = "closed",
      .has = { "MAIL FROM:<sender@x.test> SIZE=", "\r\n" BODY_LINE "\r\n",
               "QUIT\r\n" },
      .lacks = { "STARTTLS", "RSET" } },
    { .name = "plain: greeting and replies a byte at a time",
      .script = { "~220 mx.test ESMTP", "<EHLO client.test",
                  "~250-mx.test\r\n250 SIZE 1000000", MAIL, "~250 ok",
                  RCPT_A, "~250 ok", "<DATA", "~354 go", ".",
                  "~250-2.0.0 queued\r\n250 2.0.0 as XYZ", QUIT },
      .nrcpt = 1, .njobs = 1,
      .want = {{ { RS_DELIVERED, false, 250, "2.0.0", "queued as XYZ" } }},
      .ever_ready = true, .why = "closed" },
    { .name = "plain: two transactions on one connection",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 2.0.0 first",
                  MAIL, ">250 ok", RCPT_A, ">250 ok", "<DATA", ">354 go",
                  ".", ">250 2.0.0 second", QUIT },
      .nrcpt = 1, .njobs = 2,
      .want = {{ DLV("first") }, { DLV("second") }},
      .ever_ready = true, .why = "closed", .lacks = { "RSET" } },

    /* --------------------------------------------------------- connect */
    { .name = "connect: refused", .target = T_REFUSED, .nrcpt = 1,
      .njobs = 1, .ever_ready = false, .enh = "4.4.1", .why = "connect" },
    { .name = "connect: timeout", .target = T_NO_ACCEPT, SHORT(TO_CONNECT),
      .nrcpt = 1, .njobs = 1, .ever_ready = false, .enh = "4.4.2",
      .why = "timeout" },

    /* -------------------------------------------------------- greeting */
    { .name = "greeting: 554", .script = { ">554 5.7.1 go away" },
      .nrcpt = 1, .njobs = 1, .code = 554, .enh = "5.7.1", .why = "go away",
      .lacks = { "EHLO" } },
    { .name = "greeting: 421", .script = { ">421 4.3.2 too busy" },
      .nrcpt = 1, .njobs = 1, .code = 421, .enh = "4.3.2",
      .why = "too busy", .lacks = { "EHLO" } },
    { .name = "greeting: 250 is not a greeting",
      .script = { ">250 hello" }, .nrcpt = 1, .njobs = 1, .code = 250,
      .why = "hello", .lacks = { "EHLO" } },
    LOCAL_FAULTS("greeting", TO_GREETING, false, (.nrcpt = 1, .njobs = 1),
                 ()),

    /* ------------------------------------------------------ EHLO, HELO */
    { .name = "EHLO: 502 falls back to HELO",
      .script = { GREET, "<EHLO client.test", ">502 5.5.2 no ESMTP here",
                  "<HELO client.test", ">250 mx.test", MAIL, ">250 ok",
                  RCPT_A, ">250 ok", "<DATA", ">354 go", ".",
                  ">250 accepted", QUIT },
      .nrcpt = 1, .njobs = 1, .want = {{ DLV("accepted") }},
      .ever_ready = true, .why = "closed",
      .has = { "HELO client.test\r\nMAIL FROM:<sender@x.test>\r\n" } },
    { .name = "EHLO: SIZE smaller than the message: refused unsent",
      .script = { GREET, "<EHLO", ">250-mx.test\r\n250 SIZE 20", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ { RS_PERMFAIL, true, 552, "5.3.4", "SIZE" },
                 { RS_PERMFAIL, true, 552, "5.3.4", "SIZE" } }},
      .ever_ready = true, .why = "closed", .lacks = { "MAIL" } },
    { .name = "EHLO: 421 ends the session without HELO",
      .script = { GREET, "<EHLO", ">421 4.3.2 shutting down" },
      .nrcpt = 1, .njobs = 1, .code = 421, .enh = "4.3.2",
      .why = "shutting down", .lacks = { "HELO" } },
    { .name = "HELO: 501 after a refused EHLO",
      .script = { GREET, "<EHLO", ">500 5.5.1 what", "<HELO",
                  ">501 5.5.4 bad name" },
      .nrcpt = 1, .njobs = 1, .code = 501, .enh = "5.5.4",
      .why = "bad name", .lacks = { "MAIL" } },
    { .name = "HELO: 421 after a refused EHLO",
      .script = { GREET, "<EHLO", ">500 5.5.1 what", "<HELO",
                  ">421 4.3.2 later" },
      .nrcpt = 1, .njobs = 1, .code = 421, .why = "later" },
    { .name = "HELO: garbage",
      .script = { GREET, "<EHLO", ">500 5.5.1 what", "<HELO", ">hi there" },
      .nrcpt = 1, .njobs = 1, .enh = "4.5.0", .why = "garbage" },
    { .name = "HELO: closed mid-reply",
      .script = { GREET, "<EHLO", ">500 5.5.1 what", "<HELO", ">250-a",
                  "!" },
      .nrcpt = 1, .njobs = 1, .enh = "4.4.2", .why = "lost connection" },
    LOCAL_FAULTS("EHLO", TO_EHLO, false, (.nrcpt = 1, .njobs = 1),
                 (GREET, "<EHLO client.test",)),

    /* ------------------------------------------------------- STARTTLS */
    { .name = "STARTTLS: offered, policy off: never sent",
      .script = { GREET, EHLO_TLS, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 done", QUIT },
      .ssl = true, .tls = TLS_OFF, .nrcpt = 1, .njobs = 1,
      .want = {{ DLV("done") }}, .ever_ready = true, .why = "closed",
      .lacks = { "STARTTLS" } },
    { .name = "STARTTLS: 454, opportunistic: goes on in clear",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">454 4.7.0 TLS not now",
                  MAIL, ">250 ok", RCPT_A, ">250 ok", "<DATA", ">354 go",
                  ".", ">250 done", QUIT },
      .ssl = true, .nrcpt = 1, .njobs = 1, .want = {{ DLV("done") }},
      .ever_ready = true, .why = "closed" },
    { .name = "STARTTLS: 554, opportunistic: goes on in clear",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">554 5.7.0 no TLS",
                  MAIL, ">250 ok", RCPT_A, ">250 ok", "<DATA", ">354 go",
                  ".", ">250 done", QUIT },
      .ssl = true, .nrcpt = 1, .njobs = 1, .want = {{ DLV("done") }},
      .ever_ready = true, .why = "closed" },
    { .name = "STARTTLS: 454, required: the server's reply ends it",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">454 4.7.0 TLS not now" },
      .ssl = true, .tls = TLS_REQUIRED, .nrcpt = 1, .njobs = 1,
      .code = 454, .enh = "4.7.0", .why = "TLS not now",
      .lacks = { "MAIL" } },
    { .name = "STARTTLS: 554, required: the server's reply ends it",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">554 5.7.0 never" },
      .ssl = true, .tls = TLS_REQUIRED, .nrcpt = 1, .njobs = 1,
      .code = 554, .why = "never", .lacks = { "MAIL" } },
    { .name = "STARTTLS: not offered, required: QUIT, no mail",
      .script = { GREET, EHLO_N, "<QUIT" },
      .ssl = true, .tls = TLS_REQUIRED, .nrcpt = 1, .njobs = 1,
      .enh = "4.7.4", .why = "does not offer STARTTLS",
      .lacks = { "MAIL", "STARTTLS" } },
    { .name = "STARTTLS: clear text after the 220 is refused",
      .script = { GREET, EHLO_TLS, "<STARTTLS",
                  ">220 go ahead\r\n250 injected" },
      .ssl = true, .nrcpt = 1, .njobs = 1, .enh = "4.5.0",
      .why = "command injection", .tls_failed = true },
    { .name = "TLS handshake: the server answers with clear text",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">220 go ahead", "?",
                  ">this is not TLS" },
      .ssl = true, .nrcpt = 1, .njobs = 1, .enh = "4.7.5",
      .tls_failed = true },
    { .name = "TLS handshake: closed",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">220 go ahead", "?", "!" },
      .ssl = true, .nrcpt = 1, .njobs = 1, .tls_failed = true },
    { .name = "TLS handshake: timeout",
      .script = { GREET, EHLO_TLS, "<STARTTLS", ">220 go ahead", "=" },
      SHORT(TO_TLS), .ssl = true, .nrcpt = 1, .njobs = 1, .enh = "4.4.2",
      .why = "timeout", .tls_failed = true },
    LOCAL_FAULTS("STARTTLS", TO_STARTTLS, false,
                 (.ssl = true, .nrcpt = 1, .njobs = 1),
                 (GREET, EHLO_TLS, "<STARTTLS",)),

    /* ------------------------------------------------------------ MAIL */
    { .name = "MAIL: 451 defers every recipient, RSET",
      .script = { GREET, EHLO_N, MAIL, ">451 4.3.0 try later", "<RSET",
                  ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ TMP(451, "4.3.0", "try later"),
                 TMP(451, "4.3.0", "try later") }},
      .ever_ready = true, .why = "closed", .lacks = { "RCPT", "DATA" } },
    { .name = "MAIL: 550 bounces every recipient, RSET",
      .script = { GREET, EHLO_N, MAIL, ">550 5.7.1 sender refused", "<RSET",
                  ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(550, "5.7.1", "sender refused"),
                 PRM(550, "5.7.1", "sender refused") }},
      .ever_ready = true, .why = "closed", .lacks = { "RCPT", "DATA" } },
    LOCAL_FAULTS("MAIL", TO_MAIL, true,
                 (.nrcpt = 2, .njobs = 1, .want = {{ LCL, LCL }},
                  .lacks = { "RCPT" }),
                 (GREET, EHLO_N, MAIL,)),

    /* ------------------------------------------------------------ RCPT */
    { .name = "RCPT: all refused, no DATA",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A,
                  ">550 5.1.1 unknown a", RCPT_B, ">450 4.2.1 mailbox busy",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(550, "5.1.1", "unknown a"),
                 TMP(450, "4.2.1", "mailbox busy") }},
      .ever_ready = true, .why = "closed", .lacks = { "DATA", BODY_LINE } },
    /* the first RCPT: an earlier RCPT's wait would share the short
     * timeout (the DATA and pipelining faults show earlier verdicts kept) */
    LOCAL_FAULTS("RCPT", TO_RCPT, true,
                 (.nrcpt = 2, .njobs = 1, .want = {{ LCL, LCL }},
                  .lacks = { "RCPT TO:<b@", "DATA" }),
                 (GREET, EHLO_N, MAIL, ">250 ok", RCPT_A,)),

    /* ------------------------------------------------------------ DATA */
    { .name = "DATA: 451 defers the accepted recipients",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok", RCPT_B,
                  ">550 5.1.1 unknown b", "<DATA", ">451 4.3.1 no space",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ TMP(451, "4.3.1", "no space"),
                 PRM(550, "5.1.1", "unknown b") }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    { .name = "DATA: 554 bounces the accepted recipients",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok", RCPT_B,
                  ">451 4.2.0 later b", "<DATA", ">554 5.6.0 no data",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(554, "5.6.0", "no data"),
                 TMP(451, "4.2.0", "later b") }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    { .name = "DATA: 250 instead of 354 is not a delivery",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">250 sure", "<RSET", ">250 ok", QUIT },
      .nrcpt = 1, .njobs = 1,
      .want = {{ { RS_TEMPFAIL, false, 250, NULL, "sure" } }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    LOCAL_FAULTS("DATA", TO_DATA, true,
                 (.nrcpt = 2, .njobs = 1,
                  .want = {{ LCL, PRM(550, "5.1.1", "unknown b") }},
                  .lacks = { BODY_LINE }),
                 (GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok", RCPT_B,
                  ">550 5.1.1 unknown b", "<DATA",)),

    /* ---------------------------------------------------- end of data */
    { .name = "end of data: 452 defers",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok", RCPT_B,
                  ">550 5.1.1 unknown b", "<DATA", ">354 go", ".",
                  ">452 4.3.1 out of space", "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ TMP(452, "4.3.1", "out of space"),
                 PRM(550, "5.1.1", "unknown b") }},
      .ever_ready = true, .why = "closed", .has = { BODY_LINE } },
    { .name = "end of data: 554 bounces",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">554 5.7.1 looks like spam",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 1, .njobs = 1,
      .want = {{ PRM(554, "5.7.1", "looks like spam") }},
      .ever_ready = true, .why = "closed" },
    { .name = "end of data: 250 then the server closes: still delivered",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 2.0.0 kept", "!" },
      .nrcpt = 1, .njobs = 1, .want = {{ DLV("kept") }},
      .ever_ready = true, .why = "closed" },
    { .name = "end of data: data block timeout while the body is stuck",
      .script = { GREET, "<EHLO", ">250 mx.test", MAIL, ">250 ok",
                  RCPT_A, ">250 ok", "<DATA", ">354 go", "#" },
      SHORT(TO_DATA_BLOCK), .big_body = true, .nrcpt = 1, .njobs = 1,
      .want = {{ LCL }}, .ever_ready = true, .enh = "4.4.2",
      .why = "timeout" },
    LOCAL_FAULTS("end of data", TO_DATA_DONE, true,
                 (.nrcpt = 2, .njobs = 1,
                  .want = {{ LCL, PRM(550, "5.1.1", "unknown b") }},
                  .has = { BODY_LINE }),
                 (GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok", RCPT_B,
                  ">550 5.1.1 unknown b", "<DATA", ">354 go", ".",)),

    /* ------------------------------------------------------------ RSET */
    { .name = "RSET: 250, then the next transaction",
      .script = { GREET, EHLO_N, MAIL, ">451 4.3.0 later", "<RSET",
                  ">250 ok", MAIL, ">250 ok", RCPT_A, ">250 ok", "<DATA",
                  ">354 go", ".", ">250 2.0.0 second", QUIT },
      .nrcpt = 1, .njobs = 2,
      .want = {{ TMP(451, "4.3.0", "later") }, { DLV("second") }},
      .ever_ready = true, .why = "closed" },
    { .name = "RSET: 500 ends the session, outcomes kept",
      .script = { GREET, EHLO_N, MAIL, ">550 5.7.1 refused", "<RSET",
                  ">500 5.5.1 what" },
      .nrcpt = 1, .njobs = 2,
      .want = {{ PRM(550, "5.7.1", "refused") }},
      .ever_ready = true, .code = 500, .enh = "5.5.1", .why = "what",
      .lacks = { "MAIL FROM:<sender@x.test>\r\nRSET\r\nMAIL" } },
    LOCAL_FAULTS("RSET", TO_RSET, true,
                 (.nrcpt = 1, .njobs = 2,
                  .want = {{ PRM(550, "5.7.1", "refused") }}),
                 (GREET, EHLO_N, MAIL, ">550 5.7.1 refused", "<RSET",)),

    /* ------------------------------------------------- idle and QUIT */
    { .name = "idle: unsolicited 421 ends the session",
      .script = { GREET, EHLO_N, ">421 4.3.2 going down" }, .idle = true,
      .ever_ready = true, .code = 421, .enh = "4.3.2",
      .why = "going down" },
    { .name = "idle: unsolicited 250 is a protocol error",
      .script = { GREET, EHLO_N, ">250 what" }, .idle = true,
      .ever_ready = true, .enh = "4.5.0", .why = "unexpected" },
    { .name = "idle: timeout sends QUIT",
      .script = { GREET, EHLO_N, QUIT }, SHORT(TO_IDLE), .idle = true,
      .ever_ready = true, .why = "closed", .has = { "QUIT\r\n" } },
    { .name = "QUIT: 500 reply, then closed",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 done", "<QUIT",
                  ">500 5.5.1 what", "!" },
      .nrcpt = 1, .njobs = 1, .want = {{ DLV("done") }},
      .ever_ready = true, .why = "closed" },
    { .name = "QUIT: closed without a reply",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 done", "<QUIT", "!" },
      .nrcpt = 1, .njobs = 1, .want = {{ DLV("done") }},
      .ever_ready = true, .why = "closed" },
    { .name = "QUIT: timeout",
      .script = { GREET, EHLO_N, MAIL, ">250 ok", RCPT_A, ">250 ok",
                  "<DATA", ">354 go", ".", ">250 done", "<QUIT", "=" },
      SHORT(TO_QUIT), .nrcpt = 1, .njobs = 1, .want = {{ DLV("done") }},
      .ever_ready = true, .why = "closed" },

    /* ------------------------------------------------------ PIPELINING */
    { .name = "pipelining: replies in one packet",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, RCPT_C, "<DATA",
                  ">250 ok\r\n250 ok\r\n550 5.1.1 unknown b\r\n"
                  "451 4.7.1 greylisted\r\n354 go",
                  ".", ">250 2.0.0 queued", QUIT },
      .nrcpt = 3, .njobs = 1,
      .want = {{ DLV("queued"), PRM(550, "5.1.1", "unknown b"),
                 TMP(451, "4.7.1", "greylisted") }},
      .ever_ready = true, .why = "closed", .has = { BODY_LINE } },
    { .name = "pipelining: replies a byte at a time",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, RCPT_C, "<DATA",
                  "~250 ok\r\n250 ok\r\n550 5.1.1 unknown b\r\n"
                  "451 4.7.1 greylisted\r\n354 go",
                  ".", "~250-2.0.0 queued\r\n250 2.0.0 fine", QUIT },
      .nrcpt = 3, .njobs = 1,
      .want = {{ DLV("queued fine"), PRM(550, "5.1.1", "unknown b"),
                 TMP(451, "4.7.1", "greylisted") }},
      .ever_ready = true, .why = "closed" },
    { .name = "pipelining: MAIL 550, RCPT and DATA 503",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, "<DATA",
                  ">550 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n"
                  "503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(550, "5.7.1", "sender refused"),
                 PRM(550, "5.7.1", "sender refused") }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    { .name = "pipelining: MAIL 451, yet 354 to DATA: no body",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, "<DATA",
                  ">451 4.3.0 later\r\n503 5.5.1 no MAIL\r\n354 go", ".",
                  ">554 5.6.0 empty", "<RSET", ">250 ok", QUIT },
      .nrcpt = 1, .njobs = 1, .want = {{ TMP(451, "4.3.0", "later") }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    { .name = "pipelining: every RCPT refused, DATA 554",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, "<DATA",
                  ">250 ok\r\n550 5.1.1 unknown a\r\n452 4.5.3 too many\r\n"
                  "554 5.5.1 no valid recipients",
                  "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(550, "5.1.1", "unknown a"),
                 TMP(452, "4.5.3", "too many") }},
      .ever_ready = true, .why = "closed", .lacks = { BODY_LINE } },
    { .name = "pipelining: every RCPT refused, DATA 354: empty data",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, "<DATA",
                  ">250 ok\r\n550 5.1.1 unknown a\r\n550 5.1.1 unknown b\r\n"
                  "354 go",
                  ".", ">554 5.6.0 no message", "<RSET", ">250 ok", QUIT },
      .nrcpt = 2, .njobs = 1,
      .want = {{ PRM(550, "5.1.1", "unknown a"),
                 PRM(550, "5.1.1", "unknown b") }},
      .ever_ready = true, .why = "closed",
      .has = { "DATA\r\n.\r\n" }, .lacks = { BODY_LINE } },
    { .name = "pipelining: the next job rides behind the end of data",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, "<DATA",
                  ">250 ok\r\n250 ok\r\n354 go", ".", MAIL, RCPT_A, "<DATA",
                  ">250 2.0.0 first\r\n250 ok\r\n250 ok\r\n354 go", ".",
                  ">250 2.0.0 second", QUIT },
      .nrcpt = 1, .njobs = 2, .pipeline_next = true,
      .want = {{ DLV("first") }, { DLV("second") }},
      .ever_ready = true, .why = "closed",
      .has = { ".\r\nMAIL FROM:<sender@x.test>" }, .lacks = { "RSET" } },
    { .name = "pipelining: the first end of data fails, the next goes on",
      .script = { GREET, EHLO_P, MAIL, RCPT_A, "<DATA",
                  ">250 ok\r\n250 ok\r\n354 go", ".", MAIL, RCPT_A, "<DATA",
                  ">554 5.7.1 spam\r\n250 ok\r\n250 ok\r\n354 go", ".",
                  ">250 2.0.0 second", QUIT },
      .nrcpt = 1, .njobs = 2, .pipeline_next = true,
      .want = {{ PRM(554, "5.7.1", "spam") }, { DLV("second") }},
      .ever_ready = true, .why = "closed", .lacks = { "RSET" } },
    LOCAL_FAULTS("pipelining: RCPT", TO_RCPT, true,
                 (.nrcpt = 2, .njobs = 1, .want = {{ LCL, LCL }},
                  .lacks = { BODY_LINE }),
                 (GREET, EHLO_P, MAIL, RCPT_A, RCPT_B, "<DATA",
                  ">250 ok\r\n250 ok",)),
    /* the crash window: SMTP_UNRECORDED_MAX delivered jobs unrecorded,
     * then no MAIL until they are recorded; the last one unrecorded, no
     * closed() until it is (the script has SMTP_UNRECORDED_MAX + 1 jobs) */
    { .name = "crash window: no transaction, no closed() before the record",
      .script = { GREET, EHLO_P, JOB_P, JOB_P, JOB_P, JOB_P, JOB_P, QUIT },
      .nrcpt = 1, .njobs = NJOB, .late_record = true,
      .want = {{ DLV("delivered") }, { DLV("delivered") },
               { DLV("delivered") }, { DLV("delivered") },
               { DLV("delivered") }},
      .ever_ready = true, .why = "closed" },
    LOCAL_FAULTS("pipelining: end of data with the next job queued",
                 TO_DATA_DONE, true,
                 (.nrcpt = 1, .njobs = 2, .pipeline_next = true,
                  .want = {{ LCL }, { LCL }}),
                 (GREET, EHLO_P, MAIL, RCPT_A, "<DATA",
                  ">250 ok\r\n250 ok\r\n354 go", ".", MAIL, RCPT_A,
                  "<DATA",)),
};

/* ------------------------------------------------- the scripted server */

struct srv {
    uv_tcp_t listener, conn;
    uv_idle_t drip;
    uv_shutdown_t shut;
    const char *const *script;
    size_t step;
    bool accepted, closing, closed, stalled, dripping;
    char *drip_buf;
    size_t drip_len, drip_pos;
    char *in;
    size_t in_len;
    char *log;         /* every byte the client sent, up to the cap */
    size_t log_len;
    char err[512];     /* the first departure from the script */
};

/* The client side: jobs, and what the callbacks were told. */
struct cli {
    const struct scase *c;
    struct smtp_session *s;
    uv_timer_t record;   /* late_record: records what is unrecorded */
    int unrecorded;      /* late_record: delivered jobs not yet recorded */
    int waited;          /* late_record: times the session waited */
    struct smtp_job jobs[NJOB];
    struct smtp_rcpt rcpts[NJOB][NRCPT];
    int handed, done[NJOB], nclosed;
    bool ever_ready, tls, tls_failed;
    int code;
    char enh[16], why[400];
    char err[512];     /* a broken promise seen inside a callback */
};

struct run {
    uv_loop_t loop;
    uv_timer_t guard;
    bool guard_fired;
    struct srv srv;
    struct cli cli;
};

static void note(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error of a run (later ones are usually its echoes). */
static void note(char *err, size_t cap, const char *fmt, ...)
{
    if (err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void srv_step(struct run *r);

static void on_srv_closed(uv_handle_t *h)
{
    struct run *r = h->data;
    r->srv.closed = true;
}

/* Close the server's side of the connection (idempotent). */
static void srv_close(struct run *r)
{
    if (!r->srv.accepted || r->srv.closing)
        return;
    r->srv.closing = true;
    uv_idle_stop(&r->srv.drip);
    uv_close((uv_handle_t *)&r->srv.conn, on_srv_closed);
}

static void on_srv_write(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

/* Send n bytes in one write. */
static void srv_send(struct run *r, const char *p, size_t n)
{
    uv_write_t *w = malloc(sizeof *w + n);
    assert_non_null(w);
    memcpy(w + 1, p, n);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&r->srv.conn, &b, 1, on_srv_write)) {
        free(w);
        note(r->srv.err, sizeof r->srv.err, "server write failed");
    }
}

/* Step text plus CRLF, or the generated replies, in a malloc'd buffer. */
static char *srv_reply(const char *st, size_t *len)
{
    char *buf;
    if (!strcmp(st, "%LONG")) {
        *len = 4 + 3000 + 2;
        buf = malloc(*len);
        assert_non_null(buf);
        memcpy(buf, "250 ", 4);
        memset(buf + 4, 'x', 3000);
        memcpy(buf + 3004, "\r\n", 2);
        return buf;
    }
    if (!strcmp(st, "%MANY")) {
        *len = 101 * 10 + 10;
        buf = malloc(*len);
        assert_non_null(buf);
        for (int i = 0; i < 101; i++)
            memcpy(buf + i * 10, "250-line\r\n", 10);
        memcpy(buf + 1010, "250 last\r\n", 10);
        return buf;
    }
    size_t n = strlen(st + 1);
    *len = n + 2;
    buf = malloc(*len);
    assert_non_null(buf);
    memcpy(buf, st + 1, n);
    memcpy(buf + n, "\r\n", 2);
    return buf;
}

/* One byte of a drip per loop turn, so the client reads it alone. */
static void on_drip(uv_idle_t *h)
{
    struct run *r = h->data;
    struct srv *v = &r->srv;
    uv_buf_t b = uv_buf_init(v->drip_buf + v->drip_pos, 1);
    int w = uv_try_write((uv_stream_t *)&v->conn, &b, 1);
    if (w == 1)
        v->drip_pos++;
    else if (w != UV_EAGAIN) {
        note(v->err, sizeof v->err, "drip write: %s", uv_strerror(w));
        v->drip_pos = v->drip_len;
    }
    if (v->drip_pos < v->drip_len)
        return;
    uv_idle_stop(h);
    free(v->drip_buf);
    v->drip_buf = NULL;
    v->dripping = false;
    srv_step(r);
}

/* Take one complete line from the input, without its line end. */
static bool srv_line(struct srv *v, char *line, size_t cap)
{
    char *nl = memchr(v->in, '\n', v->in_len);
    if (!nl)
        return false;
    size_t n = (size_t)(nl - v->in), keep = n;
    if (keep && v->in[keep - 1] == '\r')
        keep--;
    if (keep >= cap)
        keep = cap - 1;
    memcpy(line, v->in, keep);
    line[keep] = 0;
    memmove(v->in, nl + 1, v->in_len - n - 1);
    v->in_len -= n + 1;
    return true;
}

/* Run the script as far as the input allows. */
static void srv_step(struct run *r)
{
    struct srv *v = &r->srv;
    char line[1200];
    while (!v->dripping && !v->closing && v->script[v->step]) {
        const char *st = v->script[v->step];
        size_t len;
        char *buf;
        switch (st[0]) {
        case '>':
        case '%':
            buf = srv_reply(st, &len);
            srv_send(r, buf, len);
            free(buf);
            v->step++;
            break;
        case '~':
            v->drip_buf = srv_reply(st, &v->drip_len);
            v->drip_pos = 0;
            v->dripping = true;
            v->step++;
            uv_idle_start(&v->drip, on_drip);
            return;
        case '<':
            if (!srv_line(v, line, sizeof line))
                return;
            if (strncmp(line, st + 1, strlen(st + 1)))
                note(v->err, sizeof v->err,
                     "script step %zu: wanted \"%s\", client sent \"%s\"",
                     v->step, st + 1, line);
            v->step++;
            break;
        case '.':
            for (;;) {
                if (!srv_line(v, line, sizeof line))
                    return;
                if (!strcmp(line, "."))
                    break;
            }
            v->step++;
            break;
        case '?':
            if (!v->in_len)
                return;
            v->in_len = 0;
            v->step++;
            break;
        case '!':
            v->step++;
            if (uv_shutdown(&v->shut, (uv_stream_t *)&v->conn, NULL))
                srv_close(r);
            return;
        case '#':
            v->step++;
            v->stalled = true;
            uv_read_stop((uv_stream_t *)&v->conn);
            return;
        case '=':
            return;
        default:
            fail_msg("bad script step \"%s\"", st);
        }
    }
}

static void on_srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char rbuf[65536];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

/* Log and buffer what the client sent, then move the script on. */
static void on_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = st->data;
    struct srv *v = &r->srv;
    if (n < 0) {
        srv_close(r);
        return;
    }
    size_t k = (size_t)n;
    size_t room = SRV_LOG_CAP - v->log_len;
    memcpy(v->log + v->log_len, buf->base, k < room ? k : room);
    v->log_len += k < room ? k : room;
    if (k > SRV_IN_CAP - v->in_len) {
        note(v->err, sizeof v->err, "client sent more than the server "
             "buffers (%u bytes) unread", SRV_IN_CAP);
        v->in_len = 0;
        return;
    }
    memcpy(v->in + v->in_len, buf->base, k);
    v->in_len += k;
    srv_step(r);
}

/* Take the session's connection (one per case) and start the script. */
static void on_srv_connection(uv_stream_t *l, int status)
{
    struct run *r = l->data;
    struct srv *v = &r->srv;
    if (status < 0 || v->accepted) {
        note(v->err, sizeof v->err, "unexpected connection (%d)", status);
        return;
    }
    assert_int_equal(uv_tcp_init(&r->loop, &v->conn), 0);
    v->conn.data = r;
    v->accepted = true;
    if (uv_accept(l, (uv_stream_t *)&v->conn)) {
        note(v->err, sizeof v->err, "accept failed");
        srv_close(r);
        return;
    }
    uv_tcp_nodelay(&v->conn, 1);
    uv_read_start((uv_stream_t *)&v->conn, on_srv_alloc, on_srv_read);
    srv_step(r);
}

/* ---------------------------------------------------------- the client */

/* Ready: hand over the next job, or QUIT when there is none left. */
static void on_ready(struct smtp_session *s, void *arg)
{
    struct run *r = arg;
    struct cli *c = &r->cli;
    if (smtp_session_arg(s) != arg)
        note(c->err, sizeof c->err, "smtp_session_arg lost the argument");
    if (c->c->idle)
        return;
    if (c->unrecorded >= SMTP_UNRECORDED_MAX)
        note(c->err, sizeof c->err, "ready() with %d jobs unrecorded",
             c->unrecorded);
    if (c->handed < c->c->njobs) {
        int rc = smtp_session_send(s, &c->jobs[c->handed++]);
        if (rc)
            note(c->err, sizeof c->err, "smtp_session_send: %d", rc);
        return;
    }
    smtp_session_quit(s);
}

/* The job to pipeline behind the end of data, in cases that want it. */
static struct smtp_job *on_next_job(struct smtp_session *s, void *arg)
{
    struct run *r = arg;
    struct cli *c = &r->cli;
    (void)s;
    if (!c->c->pipeline_next || c->handed >= c->c->njobs)
        return NULL;
    return &c->jobs[c->handed++];
}

/* late_record: record what the session waits for (it waits with no
 * MAIL sent), or, after the last job, once the server has seen the end:
 * closed() must not have come before. */
static void on_record(uv_timer_t *t)
{
    struct run *r = t->data;
    struct cli *c = &r->cli;
    if (c->handed == c->c->njobs && !r->srv.closed)
        return;
    uv_timer_stop(t);
    if (c->nclosed)
        note(c->err, sizeof c->err, "closed() with %d jobs unrecorded",
             c->unrecorded);
    while (c->unrecorded > 0) {
        c->unrecorded--;
        smtp_session_recorded(c->s);
    }
}

/* A finished job: once only, and every recipient with a status. */
static void on_job_done(struct smtp_session *s, struct smtp_job *job,
                        void *arg)
{
    struct run *r = arg;
    struct cli *c = &r->cli;
    ptrdiff_t j = job - c->jobs;
    if (j < 0 || j >= NJOB) {
        note(c->err, sizeof c->err, "job_done with a job never handed over");
        return;
    }
    if (c->done[j]++)
        note(c->err, sizeof c->err, "job %td finished twice", j);
    for (size_t i = 0; i < job->nrcpt; i++)
        if (job->rcpts[i].status == RS_PENDING)
            note(c->err, sizeof c->err,
                 "job %td recipient %zu finished without a status", j, i);
    bool delivered = false;
    for (size_t i = 0; i < job->nrcpt; i++)
        delivered |= job->rcpts[i].status == RS_DELIVERED;
    if (job->record_wait != delivered)
        note(c->err, sizeof c->err, "job %td: record_wait %d with %s "
             "delivered", j, job->record_wait, delivered ? "a" : "none");
    if (!job->record_wait)
        return;
    if (!c->c->late_record) {
        smtp_session_recorded(s); /* recorded at once: nothing waits */
        return;
    }
    c->unrecorded++; /* recorded when the session says it waits */
}

/* The session waits for its records: record them on the next turn of
 * the loop, or, when it has closed, once the server has seen the end. */
static void on_waits(struct smtp_session *s, void *arg)
{
    struct run *r = arg;
    (void)s;
    r->cli.waited++;
    uv_timer_start(&r->cli.record, on_record, 0, 1);
}

/* Record why the session ended; a stalled server is closed with it. */
static void on_closed(struct smtp_session *s, bool ever_ready, int code,
                      const char *enhanced, const char *why, void *arg)
{
    struct run *r = arg;
    struct cli *c = &r->cli;
    c->nclosed++;
    c->ever_ready = ever_ready;
    c->code = code;
    snprintf(c->enh, sizeof c->enh, "%s", enhanced ? enhanced : "");
    snprintf(c->why, sizeof c->why, "%s", why ? why : "");
    c->tls = smtp_session_tls(s);
    c->tls_failed = smtp_session_tls_failed(s);
    if (r->srv.stalled)
        srv_close(r);
}

static const struct smtp_session_cb session_cb = {
    .ready = on_ready,
    .next_job = on_next_job,
    .job_done = on_job_done,
    .closed = on_closed,
    .waits = on_waits,
};

/* The deadline of a stuck case: end it so the asserts can say why. */
static void on_guard(uv_timer_t *t)
{
    struct run *r = t->data;
    r->guard_fired = true;
    if (!r->cli.nclosed && r->cli.s)
        smtp_session_abort(r->cli.s, "test deadline");
    srv_close(r);
}

/* -------------------------------------------------------------- helpers */

static const char test_body[] =
    "Subject: test\r\n\r\n" BODY_LINE "\r\n..dot-stuffed\r\n.\r\n";

/* A 48 MiB body of short lines, ending CRLF.CRLF. */
static char *big_body(size_t *len)
{
    char *b = malloc(BIG_BODY + 3);
    assert_non_null(b);
    for (size_t i = 0; i < BIG_BODY; i += 64) {
        memset(b + i, 'x', 62);
        memcpy(b + i + 62, "\r\n", 2);
    }
    memcpy(b + BIG_BODY, ".\r\n", 3);
    *len = BIG_BODY + 3;
    return b;
}

/* A loopback port nobody listens on (bound, then closed). */
static void refused_addr(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    socklen_t sl = sizeof *sa;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &sl), 0);
    close(fd);
}

/* A listener whose accept queue is full (backlog 0, one connection
 * waiting), so a further SYN gets no answer and the connect hangs. */
static void no_accept_addr(struct sockaddr_in *sa, int fds[3])
{
    socklen_t sl = sizeof *sa;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(listen(fds[0], 0), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)sa, &sl), 0);
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)sa, sizeof *sa), 0);
    fds[2] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)connect(fds[2], (struct sockaddr *)sa, sizeof *sa);
}

/* Check one recipient against what the case wants. */
static void check_rcpt(const struct scase *c, int j, size_t i,
                       const struct smtp_rcpt *got)
{
    const struct want_rcpt *w = &c->want[j][i];
    const char *text = w->text ? w->text : c->why;
    if (got->status != w->status || got->local != w->local ||
        got->code != w->code || (w->enh && strcmp(got->enhanced, w->enh)) ||
        (text && !strstr(got->text, text)))
        fail_msg("%s: job %d recipient %zu: got status %d local %d code %d "
                 "%s \"%s\"; want status %d local %d code %d %s \"%s\"",
                 c->name, j, i, got->status, got->local, got->code,
                 got->enhanced, got->text, w->status, w->local, w->code,
                 w->enh ? w->enh : "-", text ? text : "");
}

/* Run one case to its end and check everything the caller was told. */
static void run_case(const struct scase *c)
{
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->srv.in = malloc(SRV_IN_CAP);
    r->srv.log = malloc(SRV_LOG_CAP + 1);
    assert_non_null(r->srv.in);
    assert_non_null(r->srv.log);
    r->srv.script = c->script;
    r->cli.c = c;
    assert_int_equal(uv_loop_init(&r->loop), 0);

    /* a timeout case makes every other stage wait past the guard, so
     * only the stage's own timer can end it */
    unsigned to[TO_COUNT];
    for (int i = 0; i < TO_COUNT; i++)
        to[i] = c->timeout ? LONG_TO_MS : DEFAULT_TO_MS;
    if (c->timeout)
        to[c->timeout - 1] = SHORT_TO_MS;

    size_t body_len = sizeof test_body - 1;
    char *big = c->big_body ? big_body(&body_len) : NULL;
    static const char *const addrs[NRCPT] = { "a@x.test", "b@x.test",
                                              "c@x.test" };
    for (int j = 0; j < NJOB; j++) {
        for (size_t i = 0; i < NRCPT; i++)
            r->cli.rcpts[j][i] = (struct smtp_rcpt){
                .delivery = (uint64_t)(j * NRCPT + i + 1), .addr = addrs[i] };
        r->cli.jobs[j] = (struct smtp_job){
            .mail_from = "sender@x.test", .rcpts = r->cli.rcpts[j],
            .nrcpt = c->nrcpt, .body = big ? big : test_body,
            .body_len = body_len, .size = body_len, .owner = r };
    }

    SSL_CTX *ctx = NULL;
    if (c->ssl) {
        ctx = SSL_CTX_new(TLS_client_method());
        assert_non_null(ctx);
    }
    struct smtp_session_cfg cfg = {
        .ehlo_name = "client.test", .mx_host = "mx.test", .tls = c->tls,
        .tls_verify = false, .ssl_ctx = ctx, .timeout_ms = to,
    };

    struct sockaddr_in sa;
    int fds[3] = { -1, -1, -1 };
    assert_int_equal(uv_tcp_init(&r->loop, &r->srv.listener), 0);
    assert_int_equal(uv_idle_init(&r->loop, &r->srv.drip), 0);
    r->srv.listener.data = r->srv.drip.data = r;
    if (c->target == T_SERVER) {
        int sl = sizeof sa;
        assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
        assert_int_equal(uv_tcp_bind(&r->srv.listener,
                                     (struct sockaddr *)&sa, 0), 0);
        assert_int_equal(uv_listen((uv_stream_t *)&r->srv.listener, 4,
                                   on_srv_connection), 0);
        assert_int_equal(uv_tcp_getsockname(&r->srv.listener,
                                            (struct sockaddr *)&sa, &sl), 0);
    } else if (c->target == T_REFUSED) {
        refused_addr(&sa);
    } else {
        no_accept_addr(&sa, fds);
    }
    assert_int_equal(uv_timer_init(&r->loop, &r->guard), 0);
    r->guard.data = r;
    assert_int_equal(uv_timer_init(&r->loop, &r->cli.record), 0);
    r->cli.record.data = r;
    uv_timer_start(&r->guard, on_guard, GUARD_MS, 0);

    assert_int_equal(smtp_session_start(&r->loop, &cfg,
                                        (struct sockaddr *)&sa, &session_cb,
                                        r, &r->cli.s), 0);
    /* until the session is gone and the server has seen the end */
    while (!r->cli.nclosed ||
           (c->target == T_SERVER && !r->srv.closed &&
            !(r->guard_fired && !r->srv.accepted)))
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&r->guard, NULL);
    uv_close((uv_handle_t *)&r->cli.record, NULL);
    uv_close((uv_handle_t *)&r->srv.listener, NULL);
    uv_close((uv_handle_t *)&r->srv.drip, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    int loop_rc = uv_loop_close(&r->loop);
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    SSL_CTX_free(ctx);
    free(big);
    free(r->srv.drip_buf);
    free(r->srv.in);

    /* everything below is what the session's owner (dest.c) acts on */
    struct cli *k = &r->cli;
    char *log = r->srv.log;
    log[r->srv.log_len] = 0;
    if (r->guard_fired)
        fail_msg("%s: the case did not end by itself", c->name);
    if (loop_rc)
        fail_msg("%s: handles left open", c->name);
    if (k->err[0])
        fail_msg("%s: %s", c->name, k->err);
    if (r->srv.err[0])
        fail_msg("%s: %s", c->name, r->srv.err);
    const char *left = c->script[r->srv.step];
    if (c->target == T_SERVER && left &&
        !(left[0] == '=' && !c->script[r->srv.step + 1]))
        fail_msg("%s: the dialogue stopped at script step %zu (\"%s\")",
                 c->name, r->srv.step, left);
    if (k->nclosed != 1)
        fail_msg("%s: closed() called %d times", c->name, k->nclosed);
    /* late_record: it waits once to start the last job, once to close */
    if (k->waited != (c->late_record ? 2 : 0) || k->unrecorded)
        fail_msg("%s: the session waited for records %d times (want %d), "
                 "%d left unrecorded", c->name, k->waited,
                 c->late_record ? 2 : 0, k->unrecorded);
    if (k->ever_ready != c->ever_ready || k->code != c->code ||
        (c->enh && strcmp(k->enh, c->enh)) ||
        (c->why && !strstr(k->why, c->why)))
        fail_msg("%s: closed(ever_ready %d, %d %s \"%s\"); want "
                 "(ever_ready %d, %d %s \"%s\")", c->name, k->ever_ready,
                 k->code, k->enh, k->why, c->ever_ready, c->code,
                 c->enh ? c->enh : "-", c->why ? c->why : "");
    if (!k->why[0])
        fail_msg("%s: closed() without a reason", c->name);
    if (k->tls_failed != c->tls_failed || k->tls)
        fail_msg("%s: tls %d tls_failed %d; want 0 and %d", c->name, k->tls,
                 k->tls_failed, c->tls_failed);
    for (int j = 0; j < NJOB; j++) {
        bool finished = c->want[j][0].status != RS_PENDING;
        if (k->done[j] != (finished ? 1 : 0))
            fail_msg("%s: job %d finished %d times; want %d", c->name, j,
                     k->done[j], finished ? 1 : 0);
        for (size_t i = 0; finished && i < c->nrcpt; i++)
            check_rcpt(c, j, i, &k->rcpts[j][i]);
    }
    for (int i = 0; i < 4; i++) {
        if (c->has[i] && !memmem(log, r->srv.log_len, c->has[i],
                                 strlen(c->has[i])))
            fail_msg("%s: the client never sent \"%s\"", c->name, c->has[i]);
        if (c->lacks[i] && memmem(log, r->srv.log_len, c->lacks[i],
                                  strlen(c->lacks[i])))
            fail_msg("%s: the client sent \"%s\"", c->name, c->lacks[i]);
    }
    free(log);
    free(r);
}

static void test_case(void **state)
{
    run_case(*state);
}

/* A job handed to a session that is not ready (still connecting) gets
 * -EBUSY and is left untouched; the session then ends on its own. */
static void test_busy(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sockaddr_in sa;
    refused_addr(&sa);
    unsigned to[TO_COUNT];
    for (int i = 0; i < TO_COUNT; i++)
        to[i] = DEFAULT_TO_MS;
    struct smtp_session_cfg cfg = { .ehlo_name = "client.test",
                                    .mx_host = "mx.test", .tls = TLS_OFF,
                                    .timeout_ms = to };
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    static const struct scase idle_case = { .name = "busy", .idle = true };
    r->cli.c = &idle_case;
    struct smtp_rcpt rc = { .addr = "a@x.test" };
    struct smtp_job job = { .mail_from = "", .rcpts = &rc, .nrcpt = 1,
                            .body = test_body,
                            .body_len = sizeof test_body - 1 };
    assert_int_equal(smtp_session_start(&loop, &cfg, (struct sockaddr *)&sa,
                                        &session_cb, r, &r->cli.s), 0);
    assert_int_equal(smtp_session_send(r->cli.s, &job), -EBUSY);
    assert_string_equal(smtp_session_host(r->cli.s), "mx.test");
    assert_int_equal(smtp_session_jobs(r->cli.s), 0);
    while (!r->cli.nclosed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_false(r->cli.ever_ready);
    assert_int_equal(rc.status, RS_PENDING); /* never taken, never touched */
    free(r);
}

int main(void)
{
    enum { N = sizeof cases / sizeof cases[0] };
    struct CMUnitTest tests[N + 1];
    for (size_t i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){ .name = cases[i].name,
                                        .test_func = test_case,
                                        .initial_state = (void *)&cases[i] };
    tests[N] = (struct CMUnitTest){ .name = "send to a session not ready",
                                    .test_func = test_busy };
    return _cmocka_run_group_tests("smtp_session", tests, N + 1, NULL, NULL);
}
