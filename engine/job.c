/*
 * job.c - a job for a session: the next recipients of one message that
 * wait at a destination, ready to go in one SMTP transaction.
 *
 * DESCRIPTION
 *   job_build() takes the first waiting item whose body is composed and
 *   whose account and campaign are within their rates (another account
 *   than the one served last, when accounts share the destination), with
 *   the items after it that carry the same body, up to
 *   max_rcpts_per_message.  Items that must not go end here instead: of a
 *   held account (parked), a campaign recipient unsubscribed since the
 *   message was rendered (expired, not sent), a body that could not be
 *   composed (bounced when the message is at fault, else deferred).
 *   job_prefetch() has the next bodies composed (body.c), about two jobs
 *   ahead for every session.
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
#include "queue_campaign.h"
#include "signer.h"

/* Whether an address holds 8-bit octets (UTF-8: RFC 6531 SMTPUTF8). */
static bool has_8bit(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}


/* Have the bodies of the next items composed: about two jobs ahead for
 * every session, so composition keeps pace without holding a body for
 * every claimed item. */
void job_prefetch(struct engine *e, struct dest *d)
{
    struct body *want[64];
    size_t n = 0;
    unsigned ahead = (d->sessions + 1) * 4, seen = 0;
    if (ahead > 64)
        ahead = 64;
    int scanned = 0;
    for (struct item *it = d->head; it && seen < ahead && scanned < 256;
         it = it->next, scanned++) {
        if (limits_wait(e, it) > 0)
            continue; /* held by its account's rate: compose others first */
        seen++;
        if (it->body && !it->body->ready && !it->body->composing) {
            it->body->composing = true; /* also keeps it out of want[] twice */
            want[n++] = it->body;
        }
    }
    if (n)
        body_compose(e, want, n, d);
}

/* Is a recipient on its account's suppression list now?  A campaign's
 * was checked when the message was rendered; this second look, as the
 * message is handed to a session, catches an unsubscribe that came in
 * between.  An injected message's is checked here only (one read
 * transaction). */
static bool suppressed_now(struct engine *e, const struct item *it)
{
    const struct eng_account *a = accounts_get(e, it->account);
    uint32_t owner = a && a->suppression_owner ? a->suppression_owner
                                               : it->account;
    bool yes = false;
    return !queue_suppressed(e->q, owner, it->rcpt, &yes) && yes;
}

/* Unlink waiting item it (after prev) from d, alone. */
static void take_out(struct dest *d, struct item *prev, struct item *it)
{
    dest_unlink(d, prev, it);
    dest_groups_taken(d, false);
}

struct job_ctx *job_build(struct engine *e, struct dest *d)
{
    struct item *prev = NULL, *it = d->head, *pick = NULL, *pick_prev = NULL;
    bool composing = false;
    double wait = 0;
    job_prefetch(e, d);
    /* the first ready item whose account and campaign are within their
     * rates, preferring another account than the one served last (fair
     * share between accounts on a shared destination) */
    for (int scanned = 0; it && scanned < 64;
         scanned++, prev = it, it = it->next) {
        if (!it->body || !it->body->ready) {
            composing = true;
            continue;
        }
        double w = limits_wait(e, it);
        if (w > 0) {
            if (!wait || w < wait)
                wait = w;
            continue;
        }
        if (!pick || it->account != d->last_account) {
            pick = it;
            pick_prev = prev;
            /* one account only: no one to take turns with, stop looking */
            if (it->account != d->last_account || !d->accounts_mixed)
                break;
        }
    }
    it = pick;
    prev = pick_prev;
    if (!it) {
        if (wait > 0)
            limits_wait_dest(e, d, wait);
        if (composing)
            body_wait(e, d);
        return NULL;
    }
    d->last_account = it->account;
    if (accounts_held(e, it->account)) {
        /* its account is disabled (or its master): no new transaction;
         * back to the spool, parked until it is enabled.  apply_admin()
         * takes such items back as it loads the accounts; this is the
         * last look before a MAIL FROM. */
        take_out(d, prev, it);
        struct queue_outcome o = {
            .delivery = it->id, .type = QUEUE_EV_NONE,
            .retry_at = queue_account_park_time(it->account) };
        engine_record(e, &it, 1, &o);
        return job_build(e, d);
    }
    if ((it->campaign || it->account) && !it->body->err &&
        suppressed_now(e, it)) {
        /* a campaign's: unsubscribed after its message was rendered; an
         * injected message's (sluice inject, SMTP, HTTP): on its
         * account's list, as for campaigns.  Not sent. */
        take_out(d, prev, it);
        struct queue_outcome o = { .delivery = it->id,
                                   .type = QUEUE_EV_EXPIRED,
                                   .enhanced = "5.7.1",
                                   .category = QUEUE_CAT_OTHER,
                                   .text = it->campaign
                                       ? "suppressed: unsubscribed before "
                                         "sending"
                                       : "suppressed: the address is on "
                                         "the account's suppression list" };
        engine_record(e, &it, 1, &o);
        return job_build(e, d);
    }
    if (it->body->err) {
        /* unreadable or uncomposable message: defer it alone */
        take_out(d, prev, it);
        /* no From: to sign for, or a message the rules refuse (a NUL
         * byte in an old spool's message), is the message's own fault:
         * bounce it; a missing key or a failure here may be fixed: try
         * later */
        bool perm = it->body->err == SIGNER_E_NOFROM ||
                    it->body->err == SIGNER_E_BADMSG;
        /* suppressed or deleted contacts end without being sent */
        bool drop = it->body->err == ENGINE_E_SUPPRESSED ||
                    it->body->err == ENGINE_E_GONE;
        struct queue_outcome o = {
            .delivery = it->id,
            .type = drop ? QUEUE_EV_EXPIRED
                    : perm ? QUEUE_EV_BOUNCED : QUEUE_EV_DEFERRED,
            .enhanced = drop ? "5.7.1" : perm ? "5.6.0"
                        : it->body->err == SIGNER_E_NOKEY ? "4.7.5" : "4.3.0",
            .category = perm ? QUEUE_CAT_CONTENT : QUEUE_CAT_OTHER,
            .text = it->body->errtext ? it->body->errtext
                                      : engine_strerror(it->body->err) };
        engine_record(e, &it, 1, &o);
        return job_build(e, d);
    }
    struct body *b = it->body;
    unsigned max = d->pol->max_rcpts_per_message, n = 0;
    struct job_ctx *j = malloc(sizeof *j + max * sizeof j->rcpts[0] +
                               max * sizeof(struct item *));
    if (!j)
        return NULL;
    j->items = (struct item **)(j->rcpts + max);
    j->dest = d;
    /* unlink it and the items after it with the same body, up to max
     * (the recipients of one message wait side by side) */
    struct item *p = prev, *c = it;
    while (c && n < max && c->body == b && c->account == it->account) {
        struct item *next = c->next;
        dest_unlink(d, p, c);
        j->items[n] = c;
        j->rcpts[n] = (struct smtp_rcpt){ .delivery = c->id, .addr = c->rcpt };
        n++;
        c = next;
    }
    dest_groups_taken(d, !c || c->body != b);
    limits_charge(e, it, n);
    for (unsigned i = 0; i < n; i++)
        accounts_sent(e, j->items[i]);
    j->job = (struct smtp_job){
        .mail_from = b->from, .rcpts = j->rcpts, .nrcpt = n,
        .body = b->data, .body_len = b->len, .size = b->size,
        .eightbit = b->eightbit, .owner = j, .utf8hdr = b->hdr8,
        .body7 = b->data7, .body7_len = b->len7, .size7 = b->size7,
        .body7_8bit = b->eightbit7, .body7_hdr8 = b->hdr8_7,
        .smtputf8 = has_8bit(b->from),
    };
    for (unsigned i = 0; i < n; i++)
        j->job.smtputf8 |= has_8bit(j->rcpts[i].addr);
    return j;
}
