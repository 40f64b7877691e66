/*
 * feedback_ids.c - test helper for feedback_cli.py: the deliveries of a
 * spool with the VERP address each was sent with.
 *
 * DESCRIPTION
 *   feedback-ids SPOOL prints one line per delivery, ids 1 up to the first
 *   missing one (at most 100000): "ID CAMPAIGN ACCOUNT RCPT b-TOKEN", the
 *   token made with the spool's secret exactly as the engine makes it, so
 *   the test can write reports that carry real tokens.  Opens the spool
 *   read-only.  Exit 1 with a message when the spool or secret is missing.
 */
#include <stdio.h>

#include "queue_campaign.h"
#include "render.h"

int main(int argc, char **argv)
{
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_READONLY };
    unsigned char secret[QUEUE_TOKEN_SECRET];
    char tok[RENDER_VERP_TOKEN_LEN + 1];
    struct queue_delivery d;
    int err;
    if (argc != 2) {
        fprintf(stderr, "usage: feedback-ids SPOOL\n");
        return 2;
    }
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
        printf("%llu %llu %u %s b-%s\n", (unsigned long long)d.id,
               (unsigned long long)d.campaign, d.account, d.rcpt, tok);
    }
    queue_close(q);
    return 0;
}
