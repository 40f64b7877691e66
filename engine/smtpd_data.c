/*
 * smtpd_data.c - the SMTP listener's DATA: the message as it arrives, its
 * checks, and its hand-over to the spool.
 *
 * DESCRIPTION
 *   Bytes after 354 run through a small state machine that removes dot
 *   stuffing and finds the end: only <CR><LF>.<CR><LF> ends a message (a
 *   "." line after a bare LF, or followed by one, does not), so no
 *   smuggling sequence splits one message into two.  A bare CR or LF
 *   anywhere makes the whole message refused (550 5.6.0), as a NUL byte
 *   does; a text line over 1000 octets is refused with 500 5.5.2 and a
 *   message over max_message_size with 552 5.3.4 (a report to the MX
 *   path over FB_MAX_INPUT too).  The messages being received on all
 *   connections together hold at most smtp_data_memory: past it the
 *   message is refused with 452 4.3.1.  Once a reason is found
 *   the rest is read to the end and not kept.
 *
 *   An accepted message passes queue_ingress_message() for the session's
 *   account (the spool's rules; Date: and Message-ID: added; From: in a
 *   domain verified for the account, else 550 5.7.1) and goes to the
 *   spool's writer with queue_submit_message().  The 250 is sent from its
 *   completion callback: after the group commit holds the message and
 *   every recipient.  While it waits the connection reads nothing.
 *
 * DIAGNOSTICS
 *   A spool that cannot take the message: 452 4.3.1 (full) or 451 4.3.0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedback_parse.h"
#include "smtpd_int.h"

#define MSG_FIRST (16u * 1024)   /* the message buffer's first size */

void smtpd_msg_free(struct smtpd_conn *c)
{
    c->srv->data_bytes -= c->msgcap;
    free(c->msg);
    c->msg = NULL;
    c->msglen = c->msgcap = 0;
}

void smtpd_data_begin(struct smtpd_conn *c)
{
    c->bad = BAD_NONE;
    c->msglen = c->msgseen = 0;
    c->d_bol = c->d_crlf_bol = true;
    c->d_cr = c->d_dot = false;
    c->d_linelen = 0;
    smtpd_enter(c, SS_DATA);
}

/* Note the first reason to refuse the message; its bytes go. */
static void refuse(struct smtpd_conn *c, enum smtpd_bad why)
{
    if (c->bad == BAD_NONE)
        c->bad = why;
    smtpd_msg_free(c);
}

/* Keep n bytes of the message (unless it is refused already). */
static void put(struct smtpd_conn *c, const char *p, size_t n)
{
    struct smtpd *s = c->srv;
    size_t max = s->e->cfg.smtpd.max_message_size;
    if (c->mx_txn && max > FB_MAX_INPUT)
        max = FB_MAX_INPUT;   /* a report is never larger */
    c->msgseen += n;
    if (c->bad)
        return;
    if (c->msgseen > max) {
        refuse(c, BAD_SIZE);
        return;
    }
    if (c->msglen + n > c->msgcap) {
        size_t ncap = c->msgcap ? 2 * c->msgcap : MSG_FIRST;
        while (ncap < c->msglen + n)
            ncap *= 2;
        if (ncap > max + 1)
            ncap = max + 1;
        if (s->data_bytes - c->msgcap + ncap >
            (uint64_t)s->e->cfg.smtpd.data_memory_mb << 20) {
            refuse(c, BAD_MEMORY);   /* all connections' messages */
            return;
        }
        char *nm = realloc(c->msg, ncap);
        if (!nm) {
            refuse(c, BAD_MEMORY);
            return;
        }
        s->data_bytes += ncap - c->msgcap;
        c->msg = nm;
        c->msgcap = ncap;
    }
    memcpy(c->msg + c->msglen, p, n);
    c->msglen += n;
}

/* A new line starts; crlf: the previous one ended in CR LF. */
static void line_start(struct smtpd_conn *c, bool crlf)
{
    c->d_bol = true;
    c->d_crlf_bol = crlf;
    c->d_dot = false;
    c->d_linelen = 0;
}

static void finish(struct smtpd_conn *c);

size_t smtpd_data_feed(struct smtpd_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (c->d_cr) {
            c->d_cr = false;
            if (ch == '\n') {
                if (c->d_dot && c->d_linelen == 1 && c->d_crlf_bol) {
                    finish(c);
                    return i + 1;
                }
                put(c, "\r\n", 2);
                line_start(c, true);
                continue;
            }
            refuse(c, BAD_NEWLINE);   /* a CR without LF */
            c->d_bol = false;
        }
        if (ch == '\r') {
            c->d_cr = true;
            continue;
        }
        if (ch == '\n') {
            refuse(c, BAD_NEWLINE);   /* an LF without CR */
            line_start(c, false);
            continue;
        }
        if (c->d_bol) {
            c->d_bol = false;
            if (ch == '.') {          /* dot stuffing, or the end */
                c->d_dot = true;
                c->d_linelen = 1;
                continue;
            }
        }
        if (ch == 0)
            refuse(c, BAD_NUL);
        /* the run of plain bytes up to the next CR, LF or NUL at once */
        size_t j = i + 1;
        while (j < n && p[j] != '\r' && p[j] != '\n' && p[j] != 0)
            j++;
        put(c, p + i, j - i);
        c->d_linelen += j - i;
        if (c->d_linelen + 2 > SMTPD_DATA_LINE_MAX)
            refuse(c, BAD_LONG);
        i = j - 1;
    }
    return n;
}

/* The spool's writer committed the message (or failed to). */
static void on_committed(void *arg, int status, uint64_t first_id,
                         uint64_t msg_id)
{
    struct smtpd_conn *c = arg;
    (void)first_id;
    if (!c->closing) {
        if (status == 0)
            smtpd_reply(c, "250 2.0.0 Ok: queued as %llu",
                        (unsigned long long)msg_id);
        else if (queue_err_unwritable(status))
            smtpd_reply(c, "452 4.3.1 Insufficient system storage; try "
                        "again later");
        else
            smtpd_reply(c, "451 4.3.0 Error: queue: %s",
                        queue_strerror(status));
        smtpd_txn_reset(c);
        smtpd_enter(c, SS_COMMAND);
        smtpd_pump(c);
    }
    smtpd_unref(c);
}

/* The reply for a message refused for why. */
static void reply_bad(struct smtpd_conn *c)
{
    switch (c->bad) {
    case BAD_NEWLINE:
        smtpd_reply(c, "550 5.6.0 Error: bare <CR> or <LF> in message data "
                    "(RFC 5321 2.3.8: lines end in <CR><LF>)");
        break;
    case BAD_NUL:
        smtpd_reply(c, "550 5.6.0 Error: NUL byte in message data");
        break;
    case BAD_MEMORY:
        smtpd_reply(c, "452 4.3.1 Insufficient system storage (messages in "
                    "transit); try again later");
        break;
    case BAD_LONG:
        smtpd_reply(c, "500 5.5.2 Error: line too long (over %u octets)",
                    SMTPD_DATA_LINE_MAX);
        break;
    default:
        smtpd_reply(c, "552 5.3.4 Error: message exceeds fixed maximum "
                    "message size");
        break;
    }
}

/* <CR><LF>.<CR><LF> came: check the message and hand it to the spool. */
static void finish(struct smtpd_conn *c)
{
    struct engine *e = c->srv->e;
    char why[400] = "", *clean = NULL;
    size_t clen = 0;
    smtpd_enter(c, SS_COMMAND);
    if (c->bad) {
        reply_bad(c);
        smtpd_txn_reset(c);
        return;
    }
    if (c->mx_txn) {
        smtpd_mx_submit(c);   /* a report: the feedback path */
        return;
    }
    int err = queue_ingress_message(e->q, &c->who, c->msg ? c->msg : "",
                                    c->msglen, smtpd_hostname(c), &clean,
                                    &clen, why, sizeof why);
    if (err == QUEUE_EINVAL)
        smtpd_reply(c, "550 5.6.0 Error: %s", why);
    else if (err == QUEUE_EPERM)
        smtpd_reply(c, "550 5.7.1 Error: %s", why);
    else if (err == QUEUE_ETOOBIG)
        smtpd_reply(c, "552 5.3.4 Error: message exceeds fixed maximum "
                    "message size");
    else if (err)
        smtpd_reply(c, "451 4.3.0 Error: %s", queue_strerror(err));
    if (err) {
        smtpd_txn_reset(c);
        return;
    }
    /* with its "reception" event in the same commit */
    err = queue_submit_message_via(e->q, c->who.account, c->mail_from,
                                   (const char *const *)c->rcpts, c->nrcpt,
                                   clean ? clean : c->msg,
                                   clean ? clen : c->msglen, "smtp",
                                   e->cmp, on_committed, c);
    free(clean);
    if (err) {
        if (queue_err_unwritable(err))
            smtpd_reply(c, "452 4.3.1 Insufficient system storage; try "
                        "again later");
        else
            smtpd_reply(c, "451 4.3.0 Error: queue: %s", queue_strerror(err));
        smtpd_txn_reset(c);
        return;
    }
    smtpd_msg_free(c);   /* the spool's writer has its own copy */
    smtpd_ref(c);
    smtpd_enter(c, SS_COMMIT);
}
