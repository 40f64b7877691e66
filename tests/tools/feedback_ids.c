/*
 * feedback_ids.c - test helper for feedback_cli.py: the deliveries of a
 * spool with the VERP address and the Message-ID each was sent with.
 *
 * DESCRIPTION
 *   feedback-ids SPOOL [FROM_DOMAIN] prints one line per delivery, ids 1
 *   up to the first missing one (at most 100000):
 *       ID CAMPAIGN ACCOUNT RCPT b-TOKEN MESSAGE-ID
 *   the token made with the spool's secret exactly as the engine makes it,
 *   and the Message-ID (without <>) taken from a message the engine's
 *   renderer (render_message()) makes for that delivery with the spool's
 *   secret and a From in FROM_DOMAIN (default acme.example), so that the
 *   test can write reports that carry real tokens.  Opens the spool
 *   read-only.  Exit 1 with a message when the spool or secret is missing
 *   or a message does not render.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_campaign.h"
#include "render.h"

/* The Message-ID the renderer writes for delivery d into out (no <>);
 * 0 or -1. */
static int message_id(const unsigned char *secret, const char *from,
                      const struct queue_delivery *d, char *out, size_t cap)
{
    struct render_input in = {
        .campaign = d->campaign, .account = d->account, .from = from,
        .subject = "s", .html = "h", .unsub_host = "u.example",
        .secret = secret, .secret_len = QUEUE_TOKEN_SECRET,
    };
    struct render_contact c = { .id = 1, .delivery = d->id,
                                .email = d->rcpt };
    struct render_tpl *t;
    char err[200], mf[RENDER_MAILFROM_MAX], *m = NULL;
    size_t len;
    int rc = render_compile(&in, &t, err, sizeof err);
    if (rc) {
        fprintf(stderr, "feedback-ids: %s\n", err);
        return -1;
    }
    rc = render_message(t, &c, &m, &len, mf, sizeof mf);
    render_free(t);
    const char *h = m ? strstr(m, "\r\nMessage-ID: <") : NULL;
    const char *e = h ? strchr(h, '>') : NULL;
    if (rc || !e || (size_t)(e - h - 15) >= cap) {
        fprintf(stderr, "feedback-ids: delivery %llu: no Message-ID (%s)\n",
                (unsigned long long)d->id, render_strerror(rc));
        free(m);
        return -1;
    }
    snprintf(out, cap, "%.*s", (int)(e - h - 15), h + 15);
    free(m);
    return 0;
}

int main(int argc, char **argv)
{
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_READONLY };
    unsigned char secret[QUEUE_TOKEN_SECRET];
    char tok[RENDER_VERP_TOKEN_LEN + 1], from[300], mid[400];
    struct queue_delivery d;
    int err, rc = 0;
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: feedback-ids SPOOL [FROM_DOMAIN]\n");
        return 2;
    }
    snprintf(from, sizeof from, "news@%s", argc == 3 ? argv[2]
                                                     : "acme.example");
    if ((err = queue_open(&q, argv[1], &o)) ||
        (err = queue_token_secret(q, secret))) {
        fprintf(stderr, "feedback-ids: %s\n", queue_strerror(err));
        return 1;
    }
    for (uint64_t id = 1; id <= 100000 && !queue_get_delivery(q, id, &d);
         id++) {
        if (render_verp_token(secret, sizeof secret, d.id, d.campaign, tok,
                              sizeof tok))
            tok[0] = 0;
        if (message_id(secret, from, &d, mid, sizeof mid)) {
            rc = 1;
            break;
        }
        printf("%llu %llu %u %s b-%s %s\n", (unsigned long long)d.id,
               (unsigned long long)d.campaign, d.account, d.rcpt, tok, mid);
    }
    queue_close(q);
    return rc;
}
