/*
 * smtp_txn.c - the mail transaction of an SMTP session: MAIL, RCPT, DATA
 * and the body, each a state of its own.
 *
 * DESCRIPTION
 *   smtp_session_send() starts a job: S_MAIL sends MAIL FROM, or with
 *   PIPELINING (RFC 2920) MAIL, every RCPT and DATA in one write.  Each
 *   reply moves the session on: S_RCPT once per recipient (sending the
 *   next RCPT when not pipelining), S_DATA for the reply to DATA, S_BODY
 *   for the body and the reply after its final dot.  When every RCPT
 *   failed the body is never sent (an empty data, or RSET when not
 *   pipelining).  With PIPELINING the next job's commands ride in the same
 *   write as this job's body (owner's next_job()), and its replies follow
 *   the end of data: that job enters S_MAIL with its commands already out.
 *   A transaction starts only while the jobs the session has delivered
 *   but its owner not yet recorded, with those in flight, stay under
 *   SMTP_UNRECORDED_MAX (smtp_may_start(); smtp_session.h).
 *
 *   A job the server cannot take as it is (over its SIZE, or needing
 *   SMTPUTF8 it lacks) is refused before anything is sent; a 7-bit form
 *   is chosen when the server lacks 8BITMIME or SMTPUTF8 and one exists.
 *
 *   Layering: this file sits above smtp_session.c.  Entering a state
 *   (txn_enter()) first works out what it sends, then calls down once:
 *   smtp_move() for the state, smtp_out2() for the bytes.  The way back
 *   up is the server's reply only (smtp_txn_reply(), from on_reply()).
 *
 * DIAGNOSTICS
 *   Every recipient ends with a status, code, enhanced code and text: the
 *   server's reply, or ours (local) when the job was refused here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_session_int.h"

static void txn_enter(struct smtp_session *s, enum smtp_state st);

void smtp_job_fail_pending(struct smtp_job *job, enum rcpt_status st,
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

void smtp_job_finish(struct smtp_session *s)
{
    struct smtp_job *job = s->job;
    s->job = NULL;
    s->jobs++;
    if (!job)
        return;
    /* a delivered recipient: the server has the message, and until the
     * owner has recorded that (smtp_session_recorded()) a crash would
     * send it again; no transaction starts here meanwhile */
    job->record_wait = false;
    for (size_t i = 0; i < job->nrcpt && !job->record_wait; i++)
        job->record_wait = job->rcpts[i].status == RS_DELIVERED;
    if (job->record_wait)
        s->unrecorded++;
    s->cb.job_done(s, job, s->arg);
}

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
    s->rcpt = 0;
    s->accepted = 0;
    s->mail_failed = s->discard_data = false;
    for (size_t i = 0; i < s->job->nrcpt; i++) {
        s->job->rcpts[i].status = RS_PENDING;
        s->job->rcpts[i].accepted = false;
    }
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
        smtp_job_fail_pending(job, RS_PERMFAIL, true, 552, "5.3.4",
                              "message larger than the server's SIZE limit",
                              false);
    else if (job->smtputf8 && !s->cap_smtputf8)
        smtp_job_fail_pending(job, RS_PERMFAIL, true, 553, "5.6.7",
                              "SMTPUTF8 required: an address is UTF-8 and "
                              "the server lacks SMTPUTF8", false);
    else if (job->utf8hdr && !s->cap_smtputf8)
        smtp_job_fail_pending(job, RS_PERMFAIL, true, 550, "5.6.7",
                              "SMTPUTF8 required: the header has UTF-8 that "
                              "no encoded word can carry (an address) and "
                              "the server lacks SMTPUTF8", false);
    else {
        job->smtputf8 |= job->utf8hdr;
        return false;
    }
    return true;
}

int smtp_session_send(struct smtp_session *s, struct smtp_job *job)
{
    if (s->st != S_READY || s->job || !smtp_may_start(s, 0))
        return -EBUSY;
    s->job = job;
    txn_begin(s);
    if (job_refused(s, job)) {
        smtp_job_finish(s);
        if (s->st == S_READY && !s->job)
            s->cb.ready(s, s->arg);
        return 0;
    }
    txn_enter(s, S_MAIL);
    return 0;
}

/* What S_BODY sends: the body, with the next job's commands in the same
 * write when pipelining (*cmds, malloc'd); or, every RCPT having failed,
 * an empty data.  false: out of memory. */
static bool body_pieces(struct smtp_session *s, const char **a, size_t *an,
                        char **cmds, size_t *clen)
{
    struct smtp_job *j = s->job;
    if (!s->accepted || s->mail_failed) {
        /* RFC 2920: every RCPT failed; end the data at once, empty */
        s->discard_data = true;
        *a = ".\r\n";
        *an = 3;
        return true;
    }
    struct smtp_job *nj = NULL;
    /* RFC 2920: the end of data need not end a command group, so the next
     * transaction rides in the same write as this body, when the session
     * may hold this job and that one unrecorded (SMTP_UNRECORDED_MAX) */
    if (s->cap_pipelining && s->cb.next_job && !s->next &&
        smtp_may_start(s, 1) &&
        (nj = s->cb.next_job(s, s->arg)) && job_refused(s, nj)) {
        s->cb.job_done(s, nj, s->arg);
        nj = NULL;
    }
    s->next = nj; /* on failure, failed with the session */
    if (nj && !(*cmds = txn_commands(s, nj, clen)))
        return false;
    s->next_sent = nj != NULL;
    *a = j->body;
    *an = j->body_len;
    return true;
}

/* Enter transaction state st.  What the state sends is worked out here
 * first; then one step down into smtp_session.c moves the state (trace,
 * timeout) and writes it.  The session never calls back into an entry:
 * the next state comes with the server's reply (smtp_txn_reply()). */
static void txn_enter(struct smtp_session *s, enum smtp_state st)
{
    char line[402];
    const char *a = NULL;
    char *own = NULL;
    size_t an = 0, bn = 0;
    bool ok = true;
    int n;
    switch (st) {
    case S_MAIL:
        if (s->next_sent) { /* pipelined behind the last end of data */
            s->next_sent = false;
        } else if ((ok = (own = txn_commands(s, s->job, &an)) != NULL)) {
            a = own;
            if (!s->cap_pipelining) /* MAIL alone; RCPT, DATA follow replies */
                an = (size_t)(strstr(own, "\r\n") - own) + 2;
        }
        break;
    case S_RCPT:
        if (s->cap_pipelining)
            break;
        n = snprintf(line, sizeof line - 2, "RCPT TO:<%s>",
                     s->job->rcpts[s->rcpt].addr);
        an = n < 0 ? 0 : (size_t)n;
        if (an > sizeof line - 3)
            an = sizeof line - 3; /* cut where snprintf cut it */
        memcpy(line + an, "\r\n", 2);
        an += 2;
        a = line;
        break;
    case S_DATA:
        if (!s->cap_pipelining) {
            a = "DATA\r\n";
            an = 6;
        }
        break;
    case S_BODY:
        ok = body_pieces(s, &a, &an, &own, &bn);
        break;
    default:
        return;
    }
    smtp_move(s, st);
    if (!ok)
        smtp_fail(s, 0, "4.3.0", "out of memory");
    else if (an)
        smtp_out2(s, a, an, st == S_BODY ? own : NULL, bn,
                  st == S_BODY && !s->discard_data);
    free(own);
}

/* The job after this one: its commands are on the wire already, its
 * replies follow. */
static void start_next(struct smtp_session *s)
{
    s->job = s->next;
    s->next = NULL;
    txn_begin(s);
    txn_enter(s, S_MAIL);
}

/* The transaction ended without data: RSET before the next one. */
static void txn_end_reset(struct smtp_session *s)
{
    smtp_job_finish(s);
    if (s->st == S_CLOSING)
        return;
    if (s->next) {
        /* the end of data ended the transaction; the next MAIL is sent */
        start_next(s);
        return;
    }
    smtp_enter(s, S_RSET);
}

/* The recipients' replies are all in: DATA, or RSET when none took it
 * (without pipelining; with it DATA is out already and its reply due). */
static void after_rcpts(struct smtp_session *s)
{
    if (s->cap_pipelining || s->accepted)
        txn_enter(s, S_DATA);
    else
        txn_end_reset(s);
}

/* The reply to MAIL FROM. */
static void on_mail_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    int cls = smtp_reply_class(r->code);
    if (cls != 2) {
        s->mail_failed = true;
        smtp_job_fail_pending(s->job, cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL,
                              false, r->code, r->enhanced, r->text, false);
        if (!s->cap_pipelining) {
            txn_end_reset(s);
            return;
        }
    }
    if (s->job->nrcpt)
        txn_enter(s, S_RCPT); /* pipelined: the first RCPT reply is due */
    else
        after_rcpts(s);
}

/* The reply to one RCPT TO. */
static void on_rcpt_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    int cls = smtp_reply_class(r->code);
    struct smtp_rcpt *rc = &s->job->rcpts[s->rcpt++];
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
    if (s->rcpt < s->job->nrcpt)
        txn_enter(s, S_RCPT);
    else
        after_rcpts(s);
}

/* The reply to DATA: 354 sends the body. */
static void on_data_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    int cls = smtp_reply_class(r->code);
    if (r->code == 354) {
        txn_enter(s, S_BODY);
        return;
    }
    smtp_job_fail_pending(s->job, cls == 5 ? RS_PERMFAIL : RS_TEMPFAIL, false,
                          r->code, r->enhanced, r->text, true);
    txn_end_reset(s);
}

/* The reply after the final dot. */
static void on_body_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    int cls = smtp_reply_class(r->code);
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
    smtp_job_finish(s);
    if (s->st != S_BODY)
        return;
    if (s->next)
        start_next(s);
    else
        smtp_enter(s, S_READY);
}

void smtp_txn_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    switch (s->st) {
    case S_MAIL:
        on_mail_reply(s, r);
        return;
    case S_RCPT:
        on_rcpt_reply(s, r);
        return;
    case S_DATA:
        on_data_reply(s, r);
        return;
    case S_BODY:
        on_body_reply(s, r);
        return;
    default:
        return;
    }
}
