/*
 * feedback_match.h - which delivery a bounce or complaint report is about,
 * and whether the report proves it.
 *
 * DESCRIPTION
 *   fb_match() looks for the delivery of a parsed report (feedback_parse.h)
 *   by what sluice put into the original message:
 *     - the VERP return path b-TOKEN@domain, its HMAC checked with the
 *       spool's token secret (render_verp_decode());
 *     - else the Message-ID <CAMPAIGN.DELIVERY.NONCE.MAC@domain>, its MAC
 *       checked (render_msgid_decode()), when the report also names the
 *       delivery's recipient;
 *     - else the Feedback-ID CAMPAIGN:ACCOUNT:LIST:SENDER with a recipient
 *       the report names.  Nothing authenticates it (it is the same for
 *       every recipient of a campaign and made of small ids), so such a
 *       match is FB_MATCH_UNAUTHENTICATED: evidence, never grounds to
 *       suppress or record a bounce.
 *   A forgery signal ends the search whatever else would match: a VERP
 *   token or a Message-ID of sluice's form whose MAC does not verify, or a
 *   verified VERP token and a verified Message-ID that name different
 *   deliveries.
 *
 * DIAGNOSTICS
 *   fb_match() returns one of enum fb_match_kind; for every kind but
 *   FB_MATCH_TOKEN, reason says why in one line.
 */
#ifndef SLUICE_FEEDBACK_MATCH_H
#define SLUICE_FEEDBACK_MATCH_H

#include <stddef.h>

#include "feedback_parse.h"
#include "queue_campaign.h"

#define FB_SCAN_MAX 2000000     /* deliveries a Feedback-ID lookup reads */

enum fb_match_kind {
    FB_MATCH_NONE = -1,          /* unmatched or forged: quarantine */
    FB_MATCH_TOKEN = 0,          /* authenticated: act on *d */
    FB_MATCH_UNAUTHENTICATED = 1 /* only the Feedback-ID: evidence only */
};

/* Find the delivery report r is about into *d, *by ("verp", "message-id",
 * "feedback-id") set for a match, reason[reasonlen] for anything but
 * FB_MATCH_TOKEN.  secret is the spool's token secret. */
int fb_match(struct queue *q, const unsigned char *secret, size_t secret_len,
             const struct fb_report *r, struct queue_delivery *d,
             const char **by, char *reason, size_t reasonlen);

#endif
