/*
 * cmd_feedback.c - `sluice feedback ingest`: later bounces (DSNs) and
 * complaints (ARF reports) turned into events and suppressions.
 *
 * SYNOPSIS
 *   feedback ingest [FILE...|-] [--maildir DIR] [--quarantine DIR] [--json]
 *
 * DESCRIPTION
 *   Each report (a file, standard input, or every unseen message of a
 *   maildir's new/ and cur/) is handed to feedback_ingest() (the feedback
 *   library, engine/feedback.h, which sluiced's bounce-domain MX uses
 *   too): parsed (feedback_parse.c) and matched to a delivery
 *   (feedback_match.c); this file reads the input, authorizes, prints
 *   and counts.  Only the tokens made with the spool's
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
 *   bytes and NAME.reason with the reason and where it came from, both
 *   fsync'ed (feedback_quarantine.c; neither is left when one fails: the
 *   report stays where it was and the exit is 73).  Maildir
 *   messages handled are renamed into cur/ with the S (seen) flag,
 *   quarantined ones are removed from the maildir once their copy is
 *   written, and one that could not be kept (a spool or quarantine
 *   failure) stays unseen for the next run; files and standard input are
 *   left as they are.
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
#include <unistd.h>

#include "config.h"
#include "feedback.h"
#include "queue_campaign.h"
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
    struct feedback_ctx fb;   /* the library's view of this run */
    char qdir[4096];
    struct fb_counts n;
    json_t *reports;          /* --json */
    int rc;                   /* worst exit code so far */
    struct feedback_result res; /* large: kept here, not on the stack */
};

/* Raise the run's exit code to at least rc. */
static void raise_rc(struct ingest *in, int rc)
{
    if (in->rc < rc)
        in->rc = rc;
}

/* feedback_ctx.authorize: manager on the delivery's account
 * (tool_authorize, which audits and prints a refusal); *by becomes the
 * caller with the role it has there. */
static int authorize(void *arg, uint32_t account, const char *object,
                     struct queue_actor *by, char *why, size_t cap)
{
    struct ingest *in = arg;
    int role = 0;
    if (tool_authorize(in->ctx, in->q, ACT_FEEDBACK_INGEST, account, 0,
                       object, &role)) {
        snprintf(why, cap, "needs manager on the delivery's account");
        return -1;
    }
    *by = tool_actor(in->ctx, role, account);
    return 0;
}

/* Count what one report did. */
static void count(struct ingest *in, const struct feedback_result *res)
{
    struct fb_counts *n = &in->n;
    const char *o = res->outcome;
    n->reports++;
    n->bounced += !strcmp(o, "bounced");
    n->late += !strcmp(o, "late-bounce");
    n->delayed += !strcmp(o, "delayed");
    n->complaints += !strcmp(o, "complaint");
    n->ignored += !strcmp(o, "ignored");
    n->quarantined += !strcmp(o, "quarantined");
    if (res->suppressed && strcmp(res->suppressed, "already"))
        n->suppressed++;
    else if (res->suppressed)
        n->already++;
    n->unauthenticated += res->unauthenticated;
    if (res->refused) {
        n->refused++;
        raise_rc(in, TOOL_EX_NOPERM);
    }
}

/* Print one report's line or add its JSON object. */
static void report_out(struct ingest *in, const char *source,
                       const struct feedback_result *res)
{
    if (in->reports) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "source", source,
                              "kind", res->kind, "outcome", res->outcome);
        if (!o)
            return;
        if (res->have_delivery) {
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
    if (!res->have_delivery || !strcmp(res->outcome, "quarantined")) {
        printf("%s: %s: %s%s%s\n", source, res->outcome, res->reason,
               res->quarantine[0] ? " -> " : "", res->quarantine);
        return;
    }
    printf("%s: %s delivery %llu (campaign %llu, %s) by %s: %s%s%s%s%s\n",
           source, res->kind, (unsigned long long)res->d.id,
           (unsigned long long)res->d.campaign, res->d.rcpt, res->matched_by,
           res->outcome, res->category[0] ? " " : "", res->category,
           res->suppressed ? ", suppressed" : "",
           res->suppressed && !strcmp(res->suppressed, "already")
               ? " already" : "");
}

/* Handle one report's bytes (feedback_ingest): 1 quarantined, 0 handled,
 * -1 not kept (a spool or quarantine failure: the caller keeps it). */
static int ingest_one(struct ingest *in, const char *source,
                       const char *buf, size_t len)
{
    struct feedback_result *res = &in->res;
    int rc = feedback_ingest(&in->fb, source, buf, len, res);
    count(in, res);
    if (rc) {
        fprintf(stderr, P ": %s\n", res->error);
        raise_rc(in, rc == FEEDBACK_ESPOOL ? tool_exit_for(res->spool_err)
                     : rc == FEEDBACK_EQUARANTINE ? TOOL_EX_CANTCREAT
                                                  : TOOL_EX_OSERR);
    }
    report_out(in, source, res);
    return rc ? -1 : res->quarantine[0] != 0;
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
 * quarantined, or -1 when it could not be read or kept. */
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
    /* over the cap: what was read goes in, and the parser refuses it by
     * size */
    (void)over;
    int q = ingest_one(in, strcmp(path, "-") ? path : "(stdin)", buf, len);
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

/* Load sluiced.conf (tool_config_path) into cfg, whose bounce_rules
 * classify (none configured: the shipped rules).  0 or an exit code. */
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
    /* the secret is read again per report; a spool without one fails
     * here, once, before any report is read */
    unsigned char secret[QUEUE_TOKEN_SECRET];
    err = queue_token_secret(in->q, secret);
    explicit_bzero(secret, sizeof secret);
    if (err) {
        fprintf(stderr, P ": token secret: %s\n", queue_strerror(err));
        rc = tool_exit_for(err);
        goto out;
    }
    if (qdir)
        snprintf(in->qdir, sizeof in->qdir, "%s", qdir);
    else
        snprintf(in->qdir, sizeof in->qdir, "%s/quarantine", ctx->spool);
    in->fb = (struct feedback_ctx){
        .q = in->q, .rules = cfg_loaded ? cfg->bounce_rules : NULL,
        .quarantine_dir = in->qdir, .authorize = authorize, .arg = in,
    };
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
