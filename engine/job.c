/*
 * job.c - a job for a session: the next recipients of one message that
 * wait at a destination, ready to go in one SMTP transaction.
 *
 * DESCRIPTION
 *   job_build() takes the first waiting item whose body is composed and
 *   whose account and campaign are within their rates (the waiting list
 *   is in turn order: accounts sharing the destination take turns,
 *   fair.c), with
 *   the items after it that carry the same body, up to
 *   max_rcpts_per_message.  Items that must not go end here instead: of a
 *   held account (parked), a campaign recipient unsubscribed since the
 *   message was rendered ("suppressed", not sent), a body that could not be
 *   composed (bounced when the message is at fault, else deferred; one
 *   that could not be signed is counted for the incident rules).
 *   In stages, each module once: the choice (rates: limits.c; what must
 *   end: accounts.c, body.c), the job's recipients (here), out of the
 *   destination's queue (dest.c), the ends recorded (outcome.c).  The
 *   caller (dest.c) charges the rates and waits for what held the job
 *   back.  job_prefetch() has the next bodies composed (body.c), about
 *   two jobs ahead for every session.
 *
 * OWNERSHIP
 *   A job and its items belong to the caller (dest.c) until its session
 *   is done with it; outcome.c ends the items.
 *
 * DIAGNOSTICS
 *   None: out of memory gives no job this time (the items wait).
 */
#include <stdlib.h>

#include "engine.h"
#include "fair.h"
#include "incident.h"
#include "queue_campaign.h"
#include "signer.h"
#define JOB_SCAN 64   /* waiting items looked at for one job */
#define JOB_SKIP 4096 /* and passed over as their flow is held by its rate */

/* An item that ends because its body could not be signed counts for its
 * account's dkim_failure_rate (only when it happens: nothing per item
 * otherwise). */
static void count_unsigned(struct engine *e, const struct item *it)
{
    if (signer_sign_failed(it->body->err))
        signals_sign_failed(e, it->account, it->body->errtext
                            ? it->body->errtext
                            : engine_strerror(it->body->err));
}

/* The flow (account, campaign) a scan found held by its rate (limits.c):
 * its further items are passed over without asking again, and count
 * towards JOB_SKIP rather than the scan, so the turns of other accounts
 * behind a capped one are still seen (fair.c). */
struct held {
    bool any;
    uint32_t account;
    uint64_t campaign;
    unsigned skipped;
};

static bool skip_held(struct held *h, const struct item *it)
{
    if (!h->any || it->account != h->account || it->campaign != h->campaign)
        return false;
    h->skipped++;
    return true;
}

static void hold(struct held *h, const struct item *it)
{
    *h = (struct held){ .any = true, .account = it->account,
                        .campaign = it->campaign, .skipped = h->skipped };
}

/* Have the bodies of the next items composed: about two jobs ahead for
 * every session, so composition keeps pace without holding a body for
 * every claimed item (and within max_inflight_bytes, body.c). */
void job_prefetch(struct engine *e, struct dest *d)
{
    struct body *want[64];
    size_t n = 0;
    /* a destination without a session: the first job's body (composed
     * while the session connects), none while it waits for a session
     * slot (max_inflight_bytes goes to mail that can leave) */
    unsigned ahead = d->sessions ? (d->sessions + 1) * 4
                     : d->starving ? 0 : 1, seen = 0;
    if (ahead > 64)
        ahead = 64;
    int scanned = 0;
    struct held held = { 0 };
    for (struct item *it = d->head; it && seen < ahead && scanned < 256 &&
         held.skipped < JOB_SKIP; it = it->next) {
        if (skip_held(&held, it))
            continue;
        scanned++;
        if (limits_wait(e, it) > 0) {
            hold(&held, it); /* held by its rate: compose others first */
            continue;
        }
        seen++;
        if (it->body && !it->body->ready && !it->body->composing) {
            it->body->composing = true; /* also keeps it out of want[] twice */
            want[n++] = it->body;
        }
    }
    /* those max_inflight_bytes has no room for wait (body.c) */
    for (size_t i = n ? body_compose(e, want, n, d) : 0; i < n; i++)
        want[i]->composing = false;
}

struct job_ctx *job_build(struct engine *e, struct dest *d,
                          struct job_wait *w)
{
    struct item *drops[JOB_SCAN], *pick = NULL;
    struct queue_outcome out[JOB_SCAN];
    size_t ndrop = 0;
    *w = (struct job_wait){ 0 };
    /* the first ready item whose account and campaign are within their
     * rates (limits.c): the list is in turn order, so accounts sharing
     * the destination take turns by their shares (fair.c); one
     * that must not go (accounts.c: a held account, an unsubscribed
     * recipient; body.c: a body that could not be composed) is marked for
     * its outcome and the next one is looked for */
    for (;;) {
        int scanned = 0;
        struct held held = { 0 };
        pick = NULL;
        for (struct item *it = d->head; it && scanned < JOB_SCAN &&
             held.skipped < JOB_SKIP; it = it->next) {
            if (skip_held(&held, it))
                continue;
            scanned++;
            if (it->taken)
                continue;
            if (!it->body || !it->body->ready) {
                w->composing = true;
                continue;
            }
            double ms = limits_wait(e, it);
            if (ms > 0) {
                if (!w->ms || ms < w->ms)
                    w->ms = ms;
                hold(&held, it);
                continue;
            }
            pick = it; /* the waiting list is in turn order (fair.c) */
            break;
        }
        if (!pick)
            break;
        if (ndrop == JOB_SCAN) {
            pick = NULL; /* the rest next time */
            w->again = true;
            break;
        }
        if (!accounts_stop(e, pick, &out[ndrop])) {
            if (!body_stop(pick->body, pick->id, &out[ndrop]))
                break;
            count_unsigned(e, pick);
        }
        pick->taken = true;
        drops[ndrop++] = pick;
    }

    /* the job: pick and the items after it with the same body, up to
     * max_rcpts_per_message (the recipients of one message wait side by
     * side) */
    struct job_ctx *j = NULL;
    size_t taken = ndrop;
    bool run_ended = false;
    unsigned max = d->pol->max_rcpts_per_message;
    if (pick) /* (out of memory: no job this time, the items wait) */
        j = malloc(sizeof *j + max * sizeof j->rcpts[0] +
                   max * sizeof(struct item *));
    if (j) {
        struct body *b = pick->body;
        unsigned n = 0;
        j->items = (struct item **)(j->rcpts + max);
        j->dest = d;
        bool utf8 = false;
        for (const char *p = b->from; p && *p; p++)
            utf8 |= (unsigned char)*p >= 0x80;
        struct item *c = pick;
        for (; c && n < max; c = c->next) {
            if (c->taken)
                continue; /* one marked to end (a drop) */
            if (c->body != b || c->account != pick->account)
                break;
            c->taken = true;
            j->items[n] = c;
            j->rcpts[n] = (struct smtp_rcpt){ .delivery = c->id,
                                              .addr = c->rcpt };
            for (const char *p = c->rcpt; *p; p++)
                utf8 |= (unsigned char)*p >= 0x80;
            n++;
        }
        run_ended = !c || c->body != b;
        taken += n;
        fair_served(d, pick);
        j->job = (struct smtp_job){
            .mail_from = b->from, .rcpts = j->rcpts, .nrcpt = n,
            .body = b->wire.data, .body_len = b->wire.len,
            .size = b->wire.size, .eightbit = b->wire.eightbit, .owner = j,
            .utf8hdr = b->wire.hdr8, .body7 = b->wire7.data,
            .body7_len = b->wire7.len, .size7 = b->wire7.size,
            .body7_8bit = b->wire7.eightbit, .body7_hdr8 = b->wire7.hdr8,
            .smtputf8 = utf8,
        };
    }
    /* out of d's queue (dest.c), and the ends recorded (outcome.c) */
    if (taken)
        dest_take(d, taken, run_ended);
    if (ndrop)
        engine_record(e, drops, ndrop, out);
    return j;
}
