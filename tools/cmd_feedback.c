/*
 * cmd_feedback.c - `sluice feedback ingest`: later bounces (DSNs) and
 * complaints (ARF reports) turned into events and suppressions.
 *
 * SYNOPSIS
 *   feedback ingest [FILE...|-] [--maildir DIR] [--quarantine DIR] [--json]
 *
 * DESCRIPTION
 *   Each report (a file, standard input, or every unseen message of a
 *   maildir's new/ and cur/) is parsed (feedback_parse.c) and matched to a
 *   delivery (feedback_match.c).  Only the tokens made with the spool's
 *   secret authenticate a report: the VERP return path b-TOKEN@domain
 *   (HMAC), else the original's Message-ID
 *   <CAMPAIGN.DELIVERY.NONCE.MAC@domain> (MAC) with the delivery's
 *   recipient named in the report.  A token
 *   whose MAC fails is a forgery signal: the report is quarantined
 *   whatever else matches.  A match by the original's Feedback-ID
 *   CAMPAIGN:ACCOUNT:LIST:SENDER alone is not authenticated (it is the
 *   same for every recipient of a campaign): with manager on the account
 *   it is kept as evidence for complaint statistics, an audit record
 *   "feedback unauthenticated" naming the campaign, delivery and claim,
 *   counted in the summary ("unauthenticated"), and the report is
 *   quarantined with the reason "matched only by Feedback-ID (not
 *   authenticated)"; nothing is suppressed and no event recorded.
 *   Then, for an authenticated match, with manager on the delivery's
 *   account:
 *     DSN, Action failed  a bounced event (category from classify_reply
 *                         over the Diagnostic-Code and Status: the rules
 *                         of sluiced.conf's bounce_rules = file, then the
 *                         shipped ones, as sluiced does) unless the
 *                         delivery is terminal already; a delivery already
 *                         delivered, bounced or expired gets no second
 *                         terminal event (the spool keeps exactly one) and
 *                         counts as a "late bounce".  Hard bounces
 *                         (bad-mailbox, bad-domain, inactive-mailbox) are
 *                         suppressed in both cases as sluiced suppresses
 *                         them (reason "hard bounce: CATEGORY", added by
 *                         the delivery's account), source "dsn", in the
 *                         commit of the event (queue_record_feedback);
 *                         other categories get sluiced's list hygiene
 *                         (soft-bounce streaks, block counts).
 *     DSN, Action delayed counted; nothing recorded.
 *     ARF abuse, fraud, virus, other
 *                         a complaint: suppressed with reason "complaint",
 *                         source "arf", added by the delivery's account.  There is no complaint event type
 *                         yet: the complaint is kept as an audit record
 *                         "feedback complaint" naming the delivery,
 *                         campaign and feedback type.
 *     ARF not-spam, auth-failure, ...  counted as ignored.
 *   Every report matched by a token writes one audit record "feedback
 *   ingest" (late bounces and complaints included) saying what was done.
 *
 *   A report that does not parse, matches no delivery, carries a forged
 *   token, is matched only by its Feedback-ID or is refused goes to the
 *   quarantine directory (default SPOOL/quarantine): NAME.eml with its
 *   bytes and NAME.reason with the reason and where it came from.  Maildir
 *   messages handled are renamed into cur/ with the S (seen) flag,
 *   quarantined ones are removed from the maildir once their copy is
 *   written; files and standard input are left as they are.
 *
 * DIAGNOSTICS
 *   One line per report and a summary line ("feedback: N reports: ...");
 *   --json prints one object with "reports" and "summary".  Exit 0 when
 *   every report was handled (quarantined ones included), 64 bad options,
 *   66 no such file or maildir, 73 quarantine not writable, 74 read
 *   errors, 77 when some report was refused, 78 a configuration (--config,
 *   $SLUICE_CONFIG) or its bounce_rules file that does not load.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "config.h"
#include "feedback_match.h"
#include "feedback_parse.h"
#include "queue_campaign.h"
#include "smtp_reply.h"
#include "tool_admin.h"

#define P "sluice feedback ingest"
#define FB_MAILDIR_MAX 100000   /* messages per maildir run */

static const char usage_text[] =
    "usage: sluice feedback ingest [FILE...|-] [--maildir DIR] "
    "[--quarantine DIR] [--json]\n"
    "\n"
    "Reads DSNs (multipart/report; report-type=delivery-status) and ARF\n"
    "complaints (report-type=feedback-report), finds each one's delivery\n"
    "by its HMAC-checked VERP return path or Message-ID, records bounces\n"
    "and suppresses hard bounces and complaints.  A report matched only by\n"
    "its Feedback-ID is not authenticated: audited as evidence, never\n"
    "acted on.  What cannot be used goes to the quarantine directory\n"
    "(default SPOOL/quarantine) with a .reason.\n";

struct fb_counts {
    unsigned long reports, bounced, late, delayed, complaints, suppressed,
        already, ignored, quarantined, unauthenticated, refused;
};

/* One run's state. */
struct ingest {
    struct tool_ctx *ctx;
    struct queue *q;
    unsigned char secret[QUEUE_TOKEN_SECRET];
    char qdir[4096];
    struct fb_counts n;
    json_t *reports;          /* --json */
    int rc;                   /* worst exit code so far */
    unsigned seq;
    struct fb_report rep;     /* large: kept here, not on the stack */
};

/* What happened to one report, for its line and JSON object. */
struct fb_result {
    const char *source;
    const char *kind;          /* "dsn", "arf", "" */
    const char *matched_by;    /* "verp", "message-id", "feedback-id" */
    const char *outcome;       /* "bounced", "late-bounce", "delayed", ... */
    struct queue_delivery d;
    bool have_d;
    char category[32], status[16], rcpt[QUEUE_MAX_RCPT + 1];
    const char *suppressed;    /* "added", "already", NULL */
    char reason[FB_REASON_MAX + 64];
    char quarantine[4300];
};

/* Write all of buf to fd; 0 or -1. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Create path (mode 0700 files inside) when it is not there; 0 or -1. */
static int ensure_dir(const char *path)
{
    struct stat st;
    if (!stat(path, &st))
        return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

/* Write one file (O_EXCL) with buf; 0 or -1. */
static int write_file(const char *path, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, buf, n);
    if (close(fd))
        rc = -1;
    return rc;
}

/* Put a report into the quarantine: NAME.eml and NAME.reason.  0 or -1
 * (then the result says why). */
static int quarantine(struct ingest *in, const char *buf, size_t len,
                      struct fb_result *res)
{
    char base[4200], path[4300], why[FB_REASON_MAX + 4400];
    in->n.quarantined++;
    res->outcome = "quarantined";
    if (ensure_dir(in->qdir)) {
        fprintf(stderr, P ": quarantine %s: %s\n", in->qdir, strerror(errno));
        if (in->rc < TOOL_EX_CANTCREAT)
            in->rc = TOOL_EX_CANTCREAT;
        return -1;
    }
    for (int tries = 0; tries < 100; tries++) {
        snprintf(base, sizeof base, "%s/%lld-%ld-%u", in->qdir,
                 (long long)time(NULL), (long)getpid(), ++in->seq);
        if (snprintf(path, sizeof path, "%s.eml", base) >= (int)sizeof path)
            return -1;
        if (!write_file(path, buf, len))
            break;
        if (errno != EEXIST) {
            fprintf(stderr, P ": %s: %s\n", path, strerror(errno));
            if (in->rc < TOOL_EX_CANTCREAT)
                in->rc = TOOL_EX_CANTCREAT;
            return -1;
        }
    }
    int wn = snprintf(why, sizeof why, "%s\nsource: %s\n", res->reason,
                      res->source);
    if (snprintf(path, sizeof path, "%s.reason", base) >= (int)sizeof path)
        return -1;
    if (write_file(path, why, wn < (int)sizeof why ? (size_t)wn
                                                   : sizeof why - 1)) {
        fprintf(stderr, P ": %s: %s\n", path, strerror(errno));
        if (in->rc < TOOL_EX_CANTCREAT)
            in->rc = TOOL_EX_CANTCREAT;
        return -1;
    }
    snprintf(res->quarantine, sizeof res->quarantine, "%s.eml", base);
    return 0;
}

/* Count and note what queue_record_feedback() did to the address. */
static void note_suppressed(struct ingest *in, struct fb_result *res,
                            int suppressed)
{
    if (suppressed == QUEUE_FEEDBACK_SUPPRESSED) {
        in->n.suppressed++;
        res->suppressed = "added";
    } else if (suppressed == QUEUE_FEEDBACK_ALREADY_SUPPRESSED) {
        in->n.already++;
        res->suppressed = "already";
    }
}

/* The recipient block of a DSN that is about d (else the first failed,
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
static int act_dsn(struct ingest *in, const struct fb_report *r,
                   struct fb_result *res)
{
    const struct fb_rcpt *x = dsn_block(r, res->d.rcpt);
    snprintf(res->status, sizeof res->status, "%s", x->status);
    if (!strcmp(x->action, "delayed")) {
        in->n.delayed++;
        res->outcome = "delayed";
        return 0;
    }
    if (strcmp(x->action, "failed")) {
        in->n.ignored++;
        res->outcome = "ignored";
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
    int cat = classify_reply(code, enh, rtext);
    if (cat <= QUEUE_CAT_NONE || cat >= QUEUE_CAT_COUNT)
        cat = QUEUE_CAT_OTHER;
    snprintf(res->category, sizeof res->category, "%s",
             queue_category_name(cat));
    /* the event and the suppression in one commit, as sluiced's */
    struct queue_feedback f = {
        .delivery = res->d.id, .kind = QUEUE_FEEDBACK_BOUNCE,
        .code = (uint16_t)code, .category = (uint8_t)cat,
        .enhanced = enh,
        .mx = x->remote_mta[0] ? x->remote_mta : NULL,
        .text = t[0] ? t : "bounce reported by DSN",
    };
    struct queue_feedback_result fr;
    int err = queue_record_feedback(in->q, &f, &fr);
    if (err)
        return err;
    if (fr.recorded) {
        in->n.bounced++;
        res->outcome = "bounced";
    } else {
        in->n.late++;
        res->outcome = "late-bounce";
    }
    note_suppressed(in, res, fr.suppressed);
    return 0;
}

/* Act on a matched ARF report; 0 or a queue error. */
static int act_arf(struct ingest *in, const struct fb_report *r,
                   const struct queue_actor *by, struct fb_result *res)
{
    static const char *const complaint[] = { "abuse", "fraud", "virus",
                                             "other" };
    bool is = false;
    for (size_t i = 0; i < sizeof complaint / sizeof complaint[0]; i++)
        is = is || !strcmp(r->feedback_type, complaint[i]);
    snprintf(res->category, sizeof res->category, "%s", r->feedback_type);
    if (!is) {
        in->n.ignored++;
        res->outcome = "ignored";
        return 0;
    }
    in->n.complaints++;
    res->outcome = "complaint";
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "delivery %llu (campaign %llu, %s): %s",
                 (unsigned long long)res->d.id,
                 (unsigned long long)res->d.campaign, res->d.rcpt,
                 r->feedback_type) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    int err = queue_audit_append(in->q, by, res->d.account,
                                 "feedback complaint", obj, "ok");
    if (err)
        return err;
    struct queue_feedback f = { .delivery = res->d.id,
                                .kind = QUEUE_FEEDBACK_COMPLAINT };
    struct queue_feedback_result fr;
    if ((err = queue_record_feedback(in->q, &f, &fr)))
        return err;
    note_suppressed(in, res, fr.suppressed);
    return 0;
}

/* Keep a report matched only by its Feedback-ID as evidence: counted,
 * and an audit record "feedback unauthenticated" naming the campaign,
 * delivery and what the report claims.  Nothing is suppressed or
 * recorded as an event; the caller quarantines the report. */
static void unauthenticated(struct ingest *in, const struct fb_report *r,
                            const struct queue_actor *by,
                            struct fb_result *res)
{
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    const char *what = r->feedback_type, *status = "";
    if (r->kind == FB_KIND_DSN) {
        const struct fb_rcpt *x = dsn_block(r, res->d.rcpt);
        what = x->action;
        status = x->status;
    }
    in->n.unauthenticated++;
    if (snprintf(obj, sizeof obj, "campaign %llu, delivery %llu (%s): "
                 "%s %s%s%s", (unsigned long long)res->d.campaign,
                 (unsigned long long)res->d.id, res->d.rcpt, res->kind,
                 what, status[0] ? " " : "", status) >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    int err = queue_audit_append(in->q, by, res->d.account,
                                 "feedback unauthenticated", obj,
                                 "quarantined: matched only by Feedback-ID");
    if (err) {
        fprintf(stderr, P ": %s: %s (%s)\n", res->source,
                queue_strerror(err), queue_last_detail());
        if (in->rc < tool_exit_for(err))
            in->rc = tool_exit_for(err);
    }
}

/* Print one report's line or add its JSON object. */
static void report_out(struct ingest *in, const struct fb_result *res)
{
    if (in->reports) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "source", res->source,
                              "kind", res->kind, "outcome", res->outcome);
        if (!o)
            return;
        if (res->have_d) {
            json_object_set_new(o, "delivery",
                                json_integer((json_int_t)res->d.id));
            json_object_set_new(o, "campaign",
                                json_integer((json_int_t)res->d.campaign));
            json_object_set_new(o, "account",
                                json_integer((json_int_t)res->d.account));
            json_object_set_new(o, "rcpt", json_string(res->d.rcpt));
            json_object_set_new(o, "matched_by",
                                json_string(res->matched_by));
        }
        if (res->category[0])
            json_object_set_new(o, "category", json_string(res->category));
        if (res->status[0])
            json_object_set_new(o, "status", json_string(res->status));
        if (res->suppressed)
            json_object_set_new(o, "suppressed",
                                json_string(res->suppressed));
        if (res->reason[0])
            json_object_set_new(o, "reason", json_string(res->reason));
        if (res->quarantine[0])
            json_object_set_new(o, "quarantine",
                                json_string(res->quarantine));
        json_array_append_new(in->reports, o);
        return;
    }
    if (!res->have_d || !strcmp(res->outcome, "quarantined")) {
        printf("%s: %s: %s%s%s\n", res->source, res->outcome, res->reason,
               res->quarantine[0] ? " -> " : "", res->quarantine);
        return;
    }
    printf("%s: %s delivery %llu (campaign %llu, %s) by %s: %s%s%s%s%s\n",
           res->source, res->kind, (unsigned long long)res->d.id,
           (unsigned long long)res->d.campaign, res->d.rcpt, res->matched_by,
           res->outcome, res->category[0] ? " " : "", res->category,
           res->suppressed ? ", suppressed" : "",
           res->suppressed && !strcmp(res->suppressed, "already")
               ? " already" : "");
}

/* Handle one report's bytes; returns whether it was quarantined. */
static bool ingest_one(struct ingest *in, const char *source,
                       const char *buf, size_t len)
{
    struct fb_result *res = calloc(1, sizeof *res);
    struct fb_report *r = &in->rep;
    bool quar = false;
    int role = 0, err;
    if (!res) {
        in->rc = TOOL_EX_OSERR;
        return false;
    }
    res->source = source;
    res->kind = "";
    in->n.reports++;
    if (fb_parse(buf, len, r)) {
        snprintf(res->reason, sizeof res->reason, "malformed report: %s",
                 r->reason);
        goto quarantined;
    }
    res->kind = r->kind == FB_KIND_DSN ? "dsn" : "arf";
    int m = fb_match(in->q, in->secret, sizeof in->secret, r, &res->d,
                     &res->matched_by, res->reason, sizeof res->reason);
    if (m == FB_MATCH_NONE)
        goto quarantined;
    res->have_d = true;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "delivery %llu (campaign %llu, %s)",
                 (unsigned long long)res->d.id,
                 (unsigned long long)res->d.campaign, res->d.rcpt)
        >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0;   /* cut to the audit record's cap */
    if (tool_authorize(in->ctx, in->q, ACT_FEEDBACK_INGEST, res->d.account,
                       0, obj, &role)) {
        in->n.refused++;
        if (in->rc < TOOL_EX_NOPERM)
            in->rc = TOOL_EX_NOPERM;
        snprintf(res->reason, sizeof res->reason, "refused: needs manager "
                 "on the delivery's account");
        goto quarantined;
    }
    struct queue_actor by = tool_actor(in->ctx, role, res->d.account);
    if (m == FB_MATCH_UNAUTHENTICATED) {
        unauthenticated(in, r, &by, res);
        goto quarantined;
    }
    err = r->kind == FB_KIND_DSN ? act_dsn(in, r, res)
                                 : act_arf(in, r, &by, res);
    if (err) {
        fprintf(stderr, P ": %s: %s (%s)\n", source, queue_strerror(err),
                queue_last_detail());
        snprintf(res->reason, sizeof res->reason, "%s", queue_strerror(err));
        res->outcome = "failed";
        if (in->rc < tool_exit_for(err))
            in->rc = tool_exit_for(err);
    } else {
        char result[QUEUE_MAX_AUDIT_RESULT + 1];
        snprintf(result, sizeof result, "%s%s%s%s%s by %s", res->outcome,
                 res->category[0] ? " " : "", res->category,
                 res->status[0] ? " " : "", res->status, res->matched_by);
        if (res->suppressed)
            snprintf(result + strlen(result), sizeof result - strlen(result),
                     "; suppressed%s", strcmp(res->suppressed, "already")
                                           ? "" : " already");
        queue_audit_append(in->q, &by, res->d.account, "feedback ingest",
                           obj, result);
    }
    report_out(in, res);
    free(res);
    return false;
quarantined:
    if (!quarantine(in, buf, len, res))
        quar = true;
    report_out(in, res);
    free(res);
    return quar;
}

/* Read at most cap bytes of fd into a malloc'ed buffer; *over when there
 * was more.  NULL on a read error. */
static char *read_fd(int fd, size_t cap, size_t *len, bool *over)
{
    size_t n = 0, sz = 65536;
    char *buf = malloc(sz);
    *over = false;
    while (buf) {
        if (n == sz) {
            if (sz > cap) {
                *over = true;
                break;
            }
            char *nb = realloc(buf, sz * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            sz *= 2;
        }
        ssize_t r = read(fd, buf + n, sz - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (buf && n > cap)
        *over = true;
    *len = n;
    return buf;
}

/* Ingest one file ("-": standard input); returns whether it was
 * quarantined, or -1 when it could not be read. */
static int ingest_path(struct ingest *in, const char *path)
{
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
    size_t len;
    bool over;
    if (fd < 0) {
        fprintf(stderr, P ": %s: %s\n", path, strerror(errno));
        if (in->rc < TOOL_EX_NOINPUT)
            in->rc = TOOL_EX_NOINPUT;
        return -1;
    }
    char *buf = read_fd(fd, FB_MAX_INPUT, &len, &over);
    if (fd)
        close(fd);
    if (!buf) {
        fprintf(stderr, P ": %s: read error\n", path);
        in->rc = TOOL_EX_IOERR;
        return -1;
    }
    int q;
    if (over) {
        /* keep what was read; the parser refuses it by size */
        q = ingest_one(in, strcmp(path, "-") ? path : "(stdin)", buf, len);
    } else {
        q = ingest_one(in, strcmp(path, "-") ? path : "(stdin)", buf, len);
    }
    free(buf);
    return q;
}

/* scandir() filter: regular maildir names (no dot files). */
static int md_name(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Whether a maildir file name carries the S flag. */
static bool md_seen(const char *name)
{
    const char *info = strstr(name, ":2,");
    return info && strchr(info + 3, 'S');
}

/* Ingest every unseen message of DIR/new and DIR/cur. */
static int ingest_maildir(struct ingest *in, const char *dir)
{
    static const char *const subs[] = { "new", "cur" };
    char sub[4200], path[4500], dst[4600];
    unsigned long done = 0;
    bool any = false;
    for (size_t s = 0; s < 2; s++) {
        struct dirent **ents = NULL;
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[s]);
        int n = scandir(sub, &ents, md_name, alphasort);
        if (n < 0)
            continue;
        any = true;
        for (int i = 0; i < n; i++) {
            const char *name = ents[i]->d_name;
            if (done < FB_MAILDIR_MAX && !md_seen(name)) {
                done++;
                snprintf(path, sizeof path, "%s/%s", sub, name);
                int q = ingest_path(in, path);
                if (q == 1) {
                    unlink(path);
                } else if (q == 0) {
                    snprintf(dst, sizeof dst, "%s/cur/%s%s", dir, name,
                             strstr(name, ":2,") ? "S" : ":2,S");
                    if (rename(path, dst))
                        fprintf(stderr, P ": %s: %s\n", path,
                                strerror(errno));
                }
            }
            free(ents[i]);
        }
        free(ents);
    }
    if (!any) {
        fprintf(stderr, P ": %s: not a maildir (no new/ or cur/)\n", dir);
        if (in->rc < TOOL_EX_NOINPUT)
            in->rc = TOOL_EX_NOINPUT;
    }
    return 0;
}

/* Load sluiced.conf (tool_config_path) into cfg and classify with its
 * bounce_rules; none configured: the shipped rules.  0 or an exit code. */
static int use_config(const struct tool_ctx *ctx, struct config *cfg,
                      bool *loaded)
{
    char err[600];
    const char *path = tool_config_path(ctx);
    *loaded = false;
    if (!path)
        return 0;
    if (config_load(path, cfg, err, sizeof err)) {
        fprintf(stderr, P ": %s\n", err);
        return TOOL_EX_CONFIG;
    }
    *loaded = true;
    classify_use_rules(cfg->bounce_rules);
    return 0;
}

/* `feedback ingest`. */
static int cmd_ingest(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *maildir = NULL, *qdir = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t nfiles = 0;
    bool bad = false;
    if (!files)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--maildir", &maildir, &bad) ||
            tool_opt(argc, argv, &i, "--quarantine", &qdir, &bad))
            continue;
        if (argv[i][0] == '-' && argv[i][1])
            bad = true;
        else
            files[nfiles++] = argv[i];
    }
    if (bad || (!nfiles && !maildir)) {
        fprintf(stderr, "usage: sluice feedback ingest [FILE...|-] "
                "[--maildir DIR] [--quarantine DIR] [--json]\n");
        free(files);
        return TOOL_EX_USAGE;
    }
    struct ingest *in = calloc(1, sizeof *in);
    struct config *cfg = calloc(1, sizeof *cfg);
    bool cfg_loaded = false;
    int rc, err;
    if (!in || !cfg) {
        free(files);
        free(in);
        free(cfg);
        return TOOL_EX_OSERR;
    }
    in->ctx = ctx;
    if ((rc = tool_admin_begin(ctx, false, "feedback ingest", &in->q))) {
        free(files);
        free(in);
        free(cfg);
        return rc;
    }
    if ((rc = use_config(ctx, cfg, &cfg_loaded)))
        goto out;
    if ((err = queue_token_secret(in->q, in->secret))) {
        fprintf(stderr, P ": token secret: %s\n", queue_strerror(err));
        rc = tool_exit_for(err);
        goto out;
    }
    if (qdir)
        snprintf(in->qdir, sizeof in->qdir, "%s", qdir);
    else
        snprintf(in->qdir, sizeof in->qdir, "%s/quarantine", ctx->spool);
    in->reports = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < nfiles; i++)
        ingest_path(in, files[i]);
    if (maildir)
        ingest_maildir(in, maildir);
    const struct fb_counts *n = &in->n;
    if (in->reports) {
        json_t *sum = json_pack(
            "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
            "reports", (json_int_t)n->reports,
            "bounced", (json_int_t)n->bounced,
            "late_bounces", (json_int_t)n->late,
            "delayed", (json_int_t)n->delayed,
            "complaints", (json_int_t)n->complaints,
            "suppressed", (json_int_t)n->suppressed,
            "already_suppressed", (json_int_t)n->already,
            "ignored", (json_int_t)n->ignored,
            "quarantined", (json_int_t)n->quarantined,
            "unauthenticated", (json_int_t)n->unauthenticated,
            "refused", (json_int_t)n->refused);
        tool_emit_json(json_pack("{s:o,s:o}", "reports", in->reports,
                                 "summary", sum));
        in->reports = NULL;
    } else {
        printf("feedback: %lu reports: %lu bounced, %lu late bounces, "
               "%lu delayed, %lu complaints, %lu suppressed (%lu already), "
               "%lu ignored, %lu quarantined (%lu matched only by "
               "Feedback-ID), %lu refused\n",
               n->reports, n->bounced, n->late, n->delayed, n->complaints,
               n->suppressed, n->already, n->ignored, n->quarantined,
               n->unauthenticated, n->refused);
    }
    rc = in->rc;
out:
    queue_close(in->q);
    classify_use_rules(NULL);
    if (cfg_loaded)
        config_free(cfg);
    free(cfg);
    free(files);
    free(in);
    return rc;
}

int tool_feedback_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "ingest", .run = cmd_ingest },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
