/*
 * feedback_parse.h - bounce (DSN) and complaint (ARF) reports taken apart.
 *
 * DESCRIPTION
 *   fb_parse() walks one message, bounded in size, depth and parts, looking
 *   for a multipart/report (RFC 6522) at the top or nested in other multiparts
 *   or message/rfc822 wrappers (a forwarded report):
 *     report-type=delivery-status  (RFC 3464): the message/delivery-status
 *       part's per-recipient fields Final-Recipient, Original-Recipient,
 *       Action, Status, Diagnostic-Code, Remote-MTA;
 *     report-type=feedback-report  (RFC 5965): the message/feedback-report
 *       part's Feedback-Type, Original-Mail-From, Original-Rcpt-To;
 *   and, for both, the returned original headers (message/rfc822,
 *   message/rfc822-headers, text/rfc822-headers, message/global[-headers]).
 *   A base64 or quoted-printable part is decoded before it is read.
 *
 *   From what it finds it gathers what a sluice delivery is known by:
 *   addresses that look like a sluice VERP return path (local part "b-..."),
 *   taken from the original's Return-Path, the ARF Original-Mail-From and
 *   the report's own envelope headers (To, Delivered-To, X-Original-To,
 *   Envelope-To, Return-Path), in that order; the original's Message-ID;
 *   its Feedback-ID; and its To.  Checking tokens and finding deliveries
 *   is the caller's business (feedback_match.c, feedback_ingest.c).
 *
 *   All parsing is by hand: no MIME library.  Header lines are unfolded;
 *   CRLF and bare LF both end lines.
 *
 * DIAGNOSTICS
 *   fb_parse() returns 0, or -1 with a one-line reason in r->reason for a
 *   message that is not a usable report: over FB_MAX_INPUT, nesting over
 *   FB_MAX_DEPTH, no multipart/report, a boundary missing or never closed,
 *   no delivery-status or feedback-report part, no recipient fields.  It
 *   never reads outside buf and allocates at most a few times len.
 */
#ifndef SLUICE_FEEDBACK_PARSE_H
#define SLUICE_FEEDBACK_PARSE_H

#include <stddef.h>

#define FB_MAX_INPUT (8u << 20)  /* bytes of one report */
#define FB_MAX_DEPTH 6           /* nested multiparts / messages */
#define FB_MAX_PARTS 100         /* parts of one multipart */
#define FB_MAX_RCPTS 16          /* DSN recipient blocks kept */
#define FB_MAX_VERP 6            /* VERP-looking addresses kept */
#define FB_ADDR_MAX 320
#define FB_TEXT_MAX 512          /* diagnostic text, cut */
#define FB_FIELD_MAX 255         /* Message-ID, Feedback-ID, short fields */
#define FB_REASON_MAX 200

enum fb_kind { FB_KIND_NONE = 0, FB_KIND_DSN, FB_KIND_ARF };

/* One per-recipient block of a DSN. */
struct fb_rcpt {
    char final_rcpt[FB_ADDR_MAX + 1];     /* address only, "" if absent */
    char original_rcpt[FB_ADDR_MAX + 1];
    char action[32];                      /* lower case: failed, delayed ... */
    char status[16];                      /* "5.1.1" */
    char diagnostic[FB_TEXT_MAX + 1];     /* after "smtp;" */
    char remote_mta[FB_FIELD_MAX + 1];
};

/* What one report holds; filled by fb_parse(). */
struct fb_report {
    int kind;                             /* enum fb_kind */
    struct fb_rcpt rcpts[FB_MAX_RCPTS];
    size_t nrcpt;
    char feedback_type[32];               /* ARF, lower case: "abuse" ... */
    char arf_rcpt[FB_ADDR_MAX + 1];       /* Original-Rcpt-To */
    char verp[FB_MAX_VERP][FB_ADDR_MAX + 1]; /* candidates, best first */
    size_t nverp;
    char message_id[FB_FIELD_MAX + 1];    /* original's, without <> */
    char feedback_id[FB_FIELD_MAX + 1];   /* original's Feedback-ID */
    char orig_to[FB_ADDR_MAX + 1];        /* original's To address */
    int have_original;                    /* original headers were found */
    char reason[FB_REASON_MAX];           /* why fb_parse() failed */
};

/* Parse buf[0..len) (need not be NUL-terminated) into *r (cleared first).
 * Returns 0 or -1 with r->reason. */
int fb_parse(const char *buf, size_t len, struct fb_report *r);

#endif
