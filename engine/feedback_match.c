/*
 * feedback_match.c - a feedback report's delivery, found by the tokens
 * sluice puts into each message (see feedback_match.h).
 *
 * DESCRIPTION
 *   Tokens are checked with the renderer's own functions (render.h), so
 *   the rules that make a VERP address or a Message-ID live in one place.
 *   Deliveries are read with queue_get_delivery(); a Feedback-ID lookup
 *   scans the newest FB_SCAN_MAX deliveries.
 *
 * DIAGNOSTICS
 *   Nothing is written; the reason for a report that is not matched by a
 *   token goes back to the caller.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "feedback_match.h"
#include "render.h"

/* Parse a decimal u64 of s[0..n); false if not all digits or too big. */
static bool dec_u64(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    if (!n || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return true;
}

/* Whether one of the recipients the report names is rcpt. */
static bool names_rcpt(const struct fb_report *r, const char *rcpt)
{
    if (!strcasecmp(r->arf_rcpt, rcpt) || !strcasecmp(r->orig_to, rcpt))
        return true;
    for (size_t i = 0; i < r->nrcpt; i++)
        if (!strcasecmp(r->rcpts[i].final_rcpt, rcpt) ||
            !strcasecmp(r->rcpts[i].original_rcpt, rcpt))
            return true;
    return false;
}

/* The recipient a report is about, for a Feedback-ID lookup. */
static const char *report_rcpt(const struct fb_report *r)
{
    if (r->arf_rcpt[0])
        return r->arf_rcpt;
    for (size_t i = 0; i < r->nrcpt; i++)
        if (r->rcpts[i].final_rcpt[0])
            return r->rcpts[i].final_rcpt;
    return r->orig_to[0] ? r->orig_to : NULL;
}

/* The delivery the first verified VERP token names that exists, into *d:
 * 1 found, 0 none, -1 some token is forged.  Every token is checked. */
static int match_verp(struct queue *q, const unsigned char *secret,
                      size_t slen, const struct fb_report *r,
                      struct queue_delivery *d)
{
    int found = 0;
    uint64_t did, cid;
    for (size_t i = 0; i < r->nverp; i++) {
        int e = render_verp_decode(r->verp[i], secret, slen, &did, &cid);
        if (e == RENDER_E_FORGED)
            return -1;
        if (!e && !found && !queue_get_delivery(q, did, d) &&
            d->campaign == cid)
            found = 1;
    }
    return found;
}

/* The Feedback-ID's delivery to the report's recipient, into *d; 0 or -1. */
static int match_feedback_id(struct queue *q, const struct fb_report *r,
                             struct queue_delivery *d)
{
    const char *f = r->feedback_id, *c1 = strchr(f, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    const char *rcpt = report_rcpt(r);
    uint64_t cid, acct;
    if (c1 && c2 && rcpt && dec_u64(f, (size_t)(c1 - f), &cid) &&
        dec_u64(c1 + 1, (size_t)(c2 - c1 - 1), &acct) && cid &&
        !queue_find_campaign_delivery(q, cid, rcpt, FB_SCAN_MAX, d) &&
        d->account == acct)
        return 0;
    return -1;
}

int fb_match(struct queue *q, const unsigned char *secret, size_t secret_len,
             const struct fb_report *r, struct queue_delivery *d,
             const char **by, char *reason, size_t reasonlen)
{
    uint64_t did, cid;
    *by = NULL;
    reason[0] = 0;
    int verp = match_verp(q, secret, secret_len, r, d);
    if (verp < 0) {
        snprintf(reason, reasonlen, "forged VERP token (its HMAC does not "
                 "verify with this spool's secret)");
        return FB_MATCH_NONE;
    }
    /* Message-ID: CAMPAIGN.DELIVERY.NONCE.MAC@domain */
    const char *mid_why = r->message_id[0] ? "Message-ID not one of ours"
                                           : "no Message-ID";
    int e = render_msgid_decode(r->message_id, secret, secret_len, &cid,
                                &did);
    if (e == RENDER_E_FORGED) {
        snprintf(reason, reasonlen, "forged Message-ID (its MAC does not "
                 "verify with this spool's secret)");
        return FB_MATCH_NONE;
    }
    if (verp) {
        if (!e && (d->id != did || d->campaign != cid)) {
            snprintf(reason, reasonlen, "the VERP token and the Message-ID "
                     "name different deliveries");
            return FB_MATCH_NONE;
        }
        *by = "verp";
        return FB_MATCH_TOKEN;
    }
    if (!e) {
        if (cid && !queue_get_delivery(q, did, d) && d->campaign == cid &&
            names_rcpt(r, d->rcpt)) {
            *by = "message-id";
            return FB_MATCH_TOKEN;
        }
        mid_why = "Message-ID's delivery unknown or recipient differs";
    }
    if (!match_feedback_id(q, r, d)) {
        *by = "feedback-id";
        snprintf(reason, reasonlen, "matched only by Feedback-ID (not "
                 "authenticated)");
        return FB_MATCH_UNAUTHENTICATED;
    }
    snprintf(reason, reasonlen, "no delivery matches (%s, %s, %s)",
             r->nverp ? "VERP token unknown" : "no VERP address", mid_why,
             r->feedback_id[0] ? "Feedback-ID without a matching delivery"
                               : "no Feedback-ID");
    return FB_MATCH_NONE;
}
