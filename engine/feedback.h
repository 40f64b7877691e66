/*
 * feedback.h - bounce (DSN) and complaint (ARF) reports turned into
 * events and suppressions: the one feedback path of `sluice feedback
 * ingest` and of sluiced's bounce-domain MX.
 *
 * DESCRIPTION
 *   feedback_ingest() takes one report (a whole RFC 5322 message), parses
 *   it (feedback_parse.h), finds its delivery by the tokens sluice put
 *   into the original (feedback_match.h) and acts on it:
 *     - authenticated by a token (the VERP return path's HMAC, else the
 *       Message-ID's MAC with the recipient named), and allowed:
 *         DSN failed   a bounced event (category from bounce_classify()
 *                      with the configured rules, then the shipped ones)
 *                      or, for a delivery terminal already, a late bounce;
 *                      hard bounces suppressed; one commit
 *                      (queue_record_feedback);
 *         DSN delayed  counted, nothing recorded;
 *         ARF abuse, fraud, virus, other
 *                      a complaint: suppressed, audit record "feedback
 *                      complaint";
 *         else         ignored;
 *       and one audit record "feedback ingest" saying what was done;
 *     - matched only by the Feedback-ID: an audit record "feedback
 *       unauthenticated" (evidence), then quarantined;
 *     - malformed, unmatched, forged or refused: quarantined.
 *   The quarantine is a directory of NAME.eml (the report's bytes) and
 *   NAME.reason (why, and where it came from), both written with O_EXCL
 *   and fsync'ed, NAME unique without shared state (time, pid, random).
 *
 * THREADS
 *   No state outside the caller's structures, nothing printed: results
 *   come back in struct feedback_result.  Callable from any thread but
 *   the queue's writer (each spool write waits for its group commit), so
 *   sluiced runs it on a libuv worker (uv_queue_work).  The rule set in
 *   the context must stay alive and unchanged during the call.
 *
 * DIAGNOSTICS
 *   0 when the report is safe (recorded, ignored or quarantined); a
 *   negative FEEDBACK_E* when it could not be kept (the caller keeps its
 *   copy or answers 4xx): r->error says why in one line and, for
 *   FEEDBACK_ESPOOL, r->spool_err is the queue's code.  A spool error
 *   leaves nothing half-done: the event and its suppression are one
 *   commit, and a report whose evidence could not be audited is not
 *   quarantined either.
 */
#ifndef SLUICE_FEEDBACK_H
#define SLUICE_FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feedback_parse.h"
#include "queue_admin.h"
#include "queue_campaign.h"

struct bounce_rules;

#define FEEDBACK_PATH_MAX 4096      /* quarantine directory */
#define FEEDBACK_ERROR_MAX 4400     /* r->error */

/* Codes of feedback_ingest() (all negative). */
enum {
    FEEDBACK_ESPOOL = -1,       /* a spool read or write failed */
    FEEDBACK_EQUARANTINE = -2,  /* the quarantine could not be written */
    FEEDBACK_ENOMEM = -3,       /* out of memory */
    FEEDBACK_EINVAL = -4,       /* bad arguments (no spool, no directory) */
};

/* How one call is made. */
struct feedback_ctx {
    struct queue *q;
    const struct bounce_rules *rules;   /* configured bounce_rules (then
                                           the shipped ones); NULL: the
                                           shipped ones only */
    const char *quarantine_dir;         /* made (0700) when missing; its
                                           parent must exist */
    struct queue_actor by;              /* who records (audit); its
                                           account is set to the
                                           delivery's */
    /* NULL: allowed (sluiced: the token's MAC is the authority).  Else
     * called once per matched report with the delivery's account and the
     * audit object "delivery N (campaign C, RCPT)"; it may complete *by
     * (the role the caller has there).  0 allows; non-zero refuses, with
     * the reason in why (the report is quarantined "refused: WHY"). */
    int (*authorize)(void *arg, uint32_t account, const char *object,
                     struct queue_actor *by, char *why, size_t cap);
    void *arg;
};

/* What one call did. */
struct feedback_result {
    const char *kind;          /* "dsn", "arf", "" (did not parse) */
    const char *matched_by;    /* "verp", "message-id", "feedback-id", NULL */
    const char *outcome;       /* "bounced", "late-bounce", "delayed",
                                  "complaint", "ignored", "quarantined",
                                  "failed" */
    bool have_delivery;        /* d is the report's delivery */
    struct queue_delivery d;
    char category[32];         /* bounce category or ARF feedback type */
    char status[16];           /* the DSN's Status */
    const char *suppressed;    /* "added", "already", NULL */
    bool unauthenticated;      /* matched only by Feedback-ID */
    bool refused;              /* authorize said no */
    char reason[FB_REASON_MAX + 64];        /* why quarantined or failed */
    char quarantine[FEEDBACK_PATH_MAX + 80]; /* NAME.eml written, or "" */
    int spool_err;             /* the queue's code of FEEDBACK_ESPOOL */
    char error[FEEDBACK_ERROR_MAX];          /* a negative return's text */
};

/* Parse, authenticate, match and record one report msg[0..len) (need not
 * be NUL-terminated; over FB_MAX_INPUT it is quarantined as malformed);
 * source names it in the quarantine's .reason.  Synchronous.  0 or a
 * FEEDBACK_E* code, *r filled either way. */
int feedback_ingest(const struct feedback_ctx *c, const char *source,
                    const char *msg, size_t len, struct feedback_result *r);

/* Text for a FEEDBACK_E* code. */
const char *feedback_strerror(int code);

#endif
