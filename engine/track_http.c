/*
 * track_http.c - the open pixel and the click redirect of tracked
 * campaigns, on sluiced's HTTP listener.
 *
 * DESCRIPTION
 *   GET /o/TOKEN answers a 1x1 transparent GIF with caching forbidden
 *   (no-store), so each open of the message asks again; GET /c/TOKEN
 *   answers 302 to the link's own URL.  Tokens are the renderer's (render.h,
 *   TRACKING), checked with the spool's token secret like the unsubscribe
 *   tokens.  A click token holds the link's number and a check of its
 *   template text, never its URL: the URL is made again by rendering
 *   that link of the campaign for the token's contact (engine_campaign_link,
 *   the template cache of campaign.c), so no query string or changed byte
 *   can turn the endpoint into an open redirect: a token that does not
 *   verify is 400, one not of the form of a token 404, a link the
 *   campaign does not have (any more) 404, and none of them records
 *   anything.
 *
 *   What is counted becomes an informational event of the delivery:
 *   QUEUE_EV_OPENED (text empty) or QUEUE_EV_CLICKED (text: the URL, cut
 *   to the event's text cap), submitted without waiting for the commit
 *   (queue_submit_note): the answer never waits on the spool, and the
 *   writer counts the event for its campaign (total, and unique per
 *   delivery) in the same commit, and drops it past QUEUE_TRACK_MAX opens
 *   (clicks) of that delivery.  A token of delivery 0 (a `campaign
 *   preview` or `campaign test`) works but records nothing.
 *
 *   Not counted (answered all the same, so a scanner learns nothing):
 *   HEAD requests; a missing User-Agent or one naming a known bot or
 *   link scanner (SCANNERS below); a click less than
 *   track_scanner_window (default 10 s) after the delivery was recorded,
 *   or before it was: security gateways follow every link of a message
 *   as it arrives, people do not.  Opens have no window: Apple Mail
 *   Privacy Protection fetches every image through Apple's proxies when
 *   the message reaches the device, read or not, and cannot be told from
 *   a person, so opens are an upper bound (README).
 *
 * DIAGNOSTICS
 *   405 for another method; 503 when the spool's secret or the campaign
 *   cannot be read (logged); a failed event append is logged by the
 *   writer's callback.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "engine.h"
#include "queue_campaign.h"
#include "queue_track.h"
#include "render.h"
#include "track_http.h"

/* A 1x1 transparent GIF89a. */
static const unsigned char pixel[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
};

/* User-Agent words of crawlers, link scanners and security gateways
 * (compared without case). */
static const char *const SCANNERS[] = {
    "bot", "crawl", "spider", "slurp", "preview", "scanner", "scan/",
    "linkcheck", "validator", "headless", "barracuda", "mimecast",
    "proofpoint", "urldefense", "safelinks", "symantec", "messagelabs",
    "trendmicro", "forcepoint", "fortiguard", "ironport", "sophos",
    "zscaler", "checkpoint", "avanan", "libwww", "go-http-client",
};

const char *track_not_counted(const char *method, const char *ua,
                              int64_t delivered_s, int64_t now_ms,
                              unsigned window_ms)
{
    if (!strcmp(method, "HEAD"))
        return "head";
    if (!ua || !*ua)
        return "no user agent";
    for (size_t i = 0; i < sizeof SCANNERS / sizeof SCANNERS[0]; i++)
        if (strcasestr(ua, SCANNERS[i]))
            return "scanner";
    if (window_ms && delivered_s &&
        (delivered_s < 0 || now_ms - delivered_s * 1000 < (int64_t)window_ms))
        return "too soon after delivery";
    return NULL;
}

/* Answer with bytes (not copied: static) and the no-cache headers. */
static int answer(struct MHD_Connection *c, unsigned status, const void *body,
                  size_t len, const char *type, const char *location)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control",
                            "no-store, no-cache, must-revalidate, max-age=0");
    MHD_add_response_header(r, "Pragma", "no-cache");
    MHD_add_response_header(r, "Expires", "0");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (location)
        MHD_add_response_header(r, "Location", location);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    int ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int say(struct MHD_Connection *c, unsigned status, const char *text)
{
    return answer(c, status, text, strlen(text), "text/plain", NULL);
}

/* Exactly n characters of lower-case base32. */
static bool token_form(const char *t, size_t n)
{
    if (strlen(t) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '2' && t[i] <= '7')))
            return false;
    return true;
}

/* Writer callback of a submitted event: only a failure is worth a word. */
static void note_done(void *arg, int status, uint64_t first, uint64_t msg)
{
    (void)first;
    (void)msg;
    if (status)
        fprintf(stderr, "sluiced: tracking event of delivery %llu: %s\n",
                (unsigned long long)(uintptr_t)arg, queue_strerror(status));
}

/* The delivery's time for the scanner rule (0: no rule applies, -1: not
 * recorded as delivered yet); false if the token does not name it. */
static bool delivery_of(struct engine *e, uint64_t id, uint64_t campaign,
                        uint64_t contact, int64_t *delivered_s)
{
    struct queue_delivery d;
    if (queue_get_delivery(e->q, id, &d) || d.campaign != campaign ||
        d.ref != contact)
        return false;
    *delivered_s = d.state == QUEUE_ST_DELIVERED ? d.next_attempt
                   : d.state == QUEUE_ST_QUEUED ? -1 : 0;
    return true;
}

/* Record one open or click of delivery (text: the URL or NULL) unless
 * the request is not a person's. */
static void record(struct engine *e, struct MHD_Connection *c,
                   const char *method, int type, uint64_t campaign,
                   uint64_t delivery, uint64_t contact, const char *text)
{
    int64_t when = 0;
    if (!delivery || !delivery_of(e, delivery, campaign, contact, &when))
        return;
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_USER_AGENT);
    if (track_not_counted(method, ua, type == QUEUE_EV_CLICKED ? when : 0,
                          (int64_t)engine_now_ms(),
                          e->cfg.track_scanner_window_ms))
        return;
    struct queue_note n = { .type = type, .delivery = delivery,
                            .campaign = campaign, .text = text };
    int rc = queue_submit_note(e->q, &n, note_done,
                               (void *)(uintptr_t)delivery);
    if (rc)
        fprintf(stderr, "sluiced: tracking event of delivery %llu: %s\n",
                (unsigned long long)delivery, queue_strerror(rc));
}

bool track_http(struct engine *e, struct MHD_Connection *c, const char *url,
                const char *method, int *ret)
{
    bool open = !strncmp(url, "/o/", 3), click = !strncmp(url, "/c/", 3);
    if (!open && !click)
        return false;
    const char *tok = url + 3;
    if (!token_form(tok, open ? RENDER_OPEN_TOKEN_LEN
                              : RENDER_CLICK_TOKEN_LEN)) {
        *ret = say(c, MHD_HTTP_NOT_FOUND, "not found\n");
        return true;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        *ret = say(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD\n");
        return true;
    }
    unsigned char secret[QUEUE_TOKEN_SECRET];
    uint64_t campaign, delivery, contact;
    unsigned link = 0;
    uint32_t check = 0;
    int rc = queue_token_secret(e->q, secret);
    if (rc) {
        fprintf(stderr, "sluiced: tracking: the token secret: %s\n",
                queue_strerror(rc));
        *ret = say(c, MHD_HTTP_SERVICE_UNAVAILABLE, "try again later\n");
        return true;
    }
    rc = open ? render_open_decode(tok, secret, sizeof secret, &campaign,
                                   &delivery, &contact)
              : render_click_decode(tok, secret, sizeof secret, &campaign,
                                    &delivery, &contact, &link, &check);
    if (rc) {
        *ret = say(c, rc == RENDER_E_TOKEN ? MHD_HTTP_NOT_FOUND
                                           : MHD_HTTP_BAD_REQUEST,
                   "invalid link\n");
        return true;
    }
    if (open) {
        record(e, c, method, QUEUE_EV_OPENED, campaign, delivery, contact,
               NULL);
        *ret = answer(c, MHD_HTTP_OK, pixel, sizeof pixel, "image/gif",
                      NULL);
        return true;
    }
    char target[3 * RENDER_LINK_URL_MAX + 1];
    rc = engine_campaign_link(e, campaign, contact, delivery, link, check,
                              target, sizeof target);
    if (rc == -ENOENT || rc == QUEUE_ENOTFOUND || rc == ENGINE_E_GONE) {
        *ret = say(c, MHD_HTTP_NOT_FOUND, "this link is not known\n");
        return true;
    }
    if (rc) {
        fprintf(stderr, "sluiced: click on campaign %llu: %s\n",
                (unsigned long long)campaign, engine_strerror(rc));
        *ret = say(c, MHD_HTTP_SERVICE_UNAVAILABLE, "try again later\n");
        return true;
    }
    record(e, c, method, QUEUE_EV_CLICKED, campaign, delivery, contact,
           target);
    static const char moved[] = "redirecting\n";
    *ret = answer(c, MHD_HTTP_FOUND, moved, sizeof moved - 1, "text/plain",
                  target);
    return true;
}
