/*
 * feedback_ingest.c - one bounce or complaint report parsed, matched and
 * recorded (feedback.h): what a DSN or an ARF report does to a delivery.
 *
 * DESCRIPTION
 *   feedback_ingest() runs parse (feedback_parse.c), match
 *   (feedback_match.c), the caller's authorization and the act on its own
 *   heap state: the report structure is large and sluiced calls this on a
 *   libuv worker.  Every spool write goes through the writer
 *   (queue_record_feedback, queue_audit_append) and waits for its commit.
 *
 * DIAGNOSTICS
 *   Nothing is printed.  Spool failures come back as FEEDBACK_ESPOOL with
 *   the queue's code and "SOURCE: queue_strerror (detail)"; quarantine
 *   failures as FEEDBACK_EQUARANTINE (feedback_quarantine.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bounce_rules.h"
#include "feedback.h"
#include "feedback_int.h"
#include "feedback_match.h"
#include "smtp_reply.h"

/* One call's state, on the heap. */
struct run {
    const struct feedback_ctx *c;
    const char *source;
    struct feedback_result *r;
    struct queue_actor by;
    unsigned char secret[QUEUE_TOKEN_SECRET];
    struct fb_report rep;
};

/* A spool failure err: outcome "failed", the queue's code and text. */
static int spool_fail(struct run *u, int err)
{
    struct feedback_result *r = u->r;
    const char *detail = queue_last_detail();
    r->outcome = "failed";
    r->spool_err = err;
    snprintf(r->reason, sizeof r->reason, "%s", queue_strerror(err));
    snprintf(r->error, sizeof r->error, "%s: %s (%s)", u->source,
             queue_strerror(err), detail);
    return FEEDBACK_ESPOOL;
}

/* Note what queue_record_feedback() did to the address. */
static void note_suppressed(struct feedback_result *r, int suppressed)
{
    if (suppressed == QUEUE_FEEDBACK_SUPPRESSED)
        r->suppressed = "added";
    else if (suppressed == QUEUE_FEEDBACK_ALREADY_SUPPRESSED)
        r->suppressed = "already";
}

/* The recipient block of a DSN that is about rcpt (else the first failed,
 * else the first). */
static const struct fb_rcpt *dsn_block(const struct fb_report *r,
                                       const char *rcpt)
{
    const struct fb_rcpt *failed = NULL;
    for (size_t i = 0; i < r->nrcpt; i++) {
        const struct fb_rcpt *x = &r->rcpts[i];
        if (!strcasecmp(x->final_rcpt, rcpt) ||
            !strcasecmp(x->original_rcpt, rcpt))
            return x;
        if (!failed && !strcmp(x->action, "failed"))
            failed = x;
    }
    return failed ? failed : &r->rcpts[0];
}

/* Act on a matched DSN; 0 or a queue error. */
static int act_dsn(struct run *u)
{
    const struct fb_report *rep = &u->rep;
    struct feedback_result *r = u->r;
    const struct fb_rcpt *x = dsn_block(rep, r->d.rcpt);
    snprintf(r->status, sizeof r->status, "%s", x->status);
    if (!strcmp(x->action, "delayed")) {
        r->outcome = "delayed";
        return 0;
    }
    if (strcmp(x->action, "failed")) {
        r->outcome = "ignored";
        return 0;
    }
    /* the Diagnostic-Code's reply taken apart as sluiced takes one apart;
     * Status is the DSN's own enhanced code, and gives the class when the
     * diagnostic has no reply code */
    const char *t = x->diagnostic, *rt = t;
    size_t rl = strlen(t);
    char rtext[SMTP_REPLY_TEXT];   /* the text sluiced would classify */
    struct smtp_reply_split sp;
    int code = x->status[0] == '4' ? 450 : 550;
    if (!smtp_reply_split(t, rl, &sp)) {
        code = sp.code;
        rt = sp.text;
        rl = sp.text_len;
    }
    if (rl >= sizeof rtext)
        rl = sizeof rtext - 1;
    memcpy(rtext, rt, rl);
    rtext[rl] = 0;
    const char *enh = x->status[0] ? x->status
                                   : sp.enhanced[0] ? sp.enhanced : NULL;
    int cat = bounce_classify(u->c->rules, code, enh, rtext, NULL);
    if (cat <= QUEUE_CAT_NONE || cat >= QUEUE_CAT_COUNT)
        cat = QUEUE_CAT_OTHER;
    snprintf(r->category, sizeof r->category, "%s",
             queue_category_name(cat));
    /* the event and the suppression in one commit, as sluiced's */
    struct queue_feedback f = {
        .delivery = r->d.id, .kind = QUEUE_FEEDBACK_BOUNCE,
        .code = (uint16_t)code, .category = (uint8_t)cat,
        .enhanced = enh,
        .mx = x->remote_mta[0] ? x->remote_mta : NULL,
        .text = t[0] ? t : "bounce reported by DSN",
    };
    struct queue_feedback_result fr;
    int err = queue_record_feedback(u->c->q, &f, &fr);
    if (err)
        return err;
    r->outcome = fr.recorded ? "bounced" : "late-bounce";
    note_suppressed(r, fr.suppressed);
    return 0;
}

/* Act on a matched ARF report; 0 or a queue error.  The suppression
 * commits before the audit record "feedback complaint": a failed audit
 * is reported, and a retry finds the address suppressed already. */
static int act_arf(struct run *u)
{
    static const char *const complaint[] = { "abuse", "fraud", "virus",
                                             "other" };
    const struct fb_report *rep = &u->rep;
    struct feedback_result *r = u->r;
    bool is = false;
    for (size_t i = 0; i < sizeof complaint / sizeof complaint[0]; i++)
        is = is || !strcmp(rep->feedback_type, complaint[i]);
    snprintf(r->category, sizeof r->category, "%s", rep->feedback_type);
    if (!is) {
        r->outcome = "ignored";
        return 0;
    }
    /* the feedback type goes into the complaint's event */
    struct queue_feedback f = { .delivery = r->d.id,
                                .kind = QUEUE_FEEDBACK_COMPLAINT,
                                .text = rep->feedback_type };
    struct queue_feedback_result fr;
    int err = queue_record_feedback(u->c->q, &f, &fr);
    if (err)
        return err;
    r->outcome = "complaint";
    note_suppressed(r, fr.suppressed);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "delivery %llu (campaign %llu, %s): %s",
                 (unsigned long long)r->d.id,
                 (unsigned long long)r->d.campaign, r->d.rcpt,
                 rep->feedback_type) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    return queue_audit_append(u->c->q, &u->by, r->d.account,
                              "feedback complaint", obj, "ok");
}

/* Keep a report matched only by its Feedback-ID as evidence: an audit
 * record "feedback unauthenticated" naming the campaign, delivery and
 * what the report claims.  Nothing is suppressed or recorded as an
 * event; the caller quarantines the report.  0 or a queue error. */
static int unauthenticated(struct run *u)
{
    const struct fb_report *rep = &u->rep;
    struct feedback_result *r = u->r;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    const char *what = rep->feedback_type, *status = "";
    if (rep->kind == FB_KIND_DSN) {
        const struct fb_rcpt *x = dsn_block(rep, r->d.rcpt);
        what = x->action;
        status = x->status;
    }
    r->unauthenticated = true;
    if (snprintf(obj, sizeof obj, "campaign %llu, delivery %llu (%s): "
                 "%s %s%s%s", (unsigned long long)r->d.campaign,
                 (unsigned long long)r->d.id, r->d.rcpt, r->kind,
                 what, status[0] ? " " : "", status) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    return queue_audit_append(u->c->q, &u->by, r->d.account,
                              "feedback unauthenticated", obj,
                              "quarantined: matched only by Feedback-ID");
}

/* The audit record "feedback ingest" of an acted-on report (a failure to
 * write it loses only the record: what it describes is committed). */
static void audit_ingest(struct run *u, const char *obj)
{
    struct feedback_result *r = u->r;
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    snprintf(result, sizeof result, "%s%s%s%s%s by %s", r->outcome,
             r->category[0] ? " " : "", r->category,
             r->status[0] ? " " : "", r->status, r->matched_by);
    if (r->suppressed)
        snprintf(result + strlen(result), sizeof result - strlen(result),
                 "; suppressed%s", strcmp(r->suppressed, "already")
                                       ? "" : " already");
    queue_audit_append(u->c->q, &u->by, r->d.account, "feedback ingest",
                       obj, result);
}

/* Parse, match, authorize and act; 0 (acted on), 1 (to be quarantined)
 * or a FEEDBACK_E* code. */
static int handle(struct run *u, const char *msg, size_t len)
{
    const struct feedback_ctx *c = u->c;
    struct feedback_result *r = u->r;
    struct fb_report *rep = &u->rep;
    int err;
    if (fb_parse(msg, len, rep)) {
        snprintf(r->reason, sizeof r->reason, "malformed report: %s",
                 rep->reason);
        return 1;
    }
    r->kind = rep->kind == FB_KIND_DSN ? "dsn" : "arf";
    if ((err = queue_token_secret(c->q, u->secret)))
        return spool_fail(u, err);
    int m = fb_match(c->q, u->secret, sizeof u->secret, rep, &r->d,
                     &r->matched_by, r->reason, sizeof r->reason);
    if (m == FB_MATCH_NONE)
        return 1;
    r->have_delivery = true;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "delivery %llu (campaign %llu, %s)",
                 (unsigned long long)r->d.id,
                 (unsigned long long)r->d.campaign, r->d.rcpt)
        >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    u->by = c->by;
    u->by.account = r->d.account;
    if (c->authorize) {
        char why[FB_REASON_MAX];
        why[0] = 0;
        if (c->authorize(c->arg, r->d.account, obj, &u->by, why,
                         sizeof why)) {
            r->refused = true;
            snprintf(r->reason, sizeof r->reason, "refused: %s",
                     why[0] ? why : "not allowed");
            return 1;
        }
    }
    if (m == FB_MATCH_UNAUTHENTICATED)
        return (err = unauthenticated(u)) ? spool_fail(u, err) : 1;
    err = rep->kind == FB_KIND_DSN ? act_dsn(u) : act_arf(u);
    if (err)
        return spool_fail(u, err);
    audit_ingest(u, obj);
    return 0;
}

int feedback_ingest(const struct feedback_ctx *c, const char *source,
                    const char *msg, size_t len, struct feedback_result *r)
{
    memset(r, 0, sizeof *r);
    r->kind = "";
    r->outcome = "failed";
    if (!c || !c->q || !c->quarantine_dir || !source || (!msg && len)) {
        snprintf(r->error, sizeof r->error, "%s",
                 feedback_strerror(FEEDBACK_EINVAL));
        return FEEDBACK_EINVAL;
    }
    struct run *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(r->error, sizeof r->error, "%s: %s", source,
                 feedback_strerror(FEEDBACK_ENOMEM));
        return FEEDBACK_ENOMEM;
    }
    u->c = c;
    u->source = source;
    u->r = r;
    int rc = handle(u, msg ? msg : "", len);
    if (rc == 1)
        rc = feedback_quarantine(c->quarantine_dir, source, msg ? msg : "",
                                 len, r);
    explicit_bzero(u->secret, sizeof u->secret);
    free(u);
    return rc;
}

const char *feedback_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case FEEDBACK_ESPOOL:
        return "spool error";
    case FEEDBACK_EQUARANTINE:
        return "quarantine not writable";
    case FEEDBACK_ENOMEM:
        return "out of memory";
    case FEEDBACK_EINVAL:
        return "invalid arguments";
    default:
        return "unknown error";
    }
}
