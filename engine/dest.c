/*
 * dest.c - destinations: one per recipient domain, with its waiting items,
 * its DNS answer and its SMTP sessions.
 *
 * DESCRIPTION
 *   dest_kick() is the one place that moves a destination forward: resolve
 *   when there is no answer, give waiting items to idle sessions as jobs,
 *   and open more sessions while items wait and the domain's and the global
 *   connection limits allow.  A session that fails before it is ready moves
 *   the destination to its next MX address; when every address has failed
 *   in a row, the waiting items are deferred with the last reason.
 *
 *   A job groups the recipients of one injected message that wait at the
 *   same destination (up to max_rcpts_per_message), so the message goes
 *   once per transaction.  While the spool cannot record outcomes
 *   (engine_spool_writable()), no job starts: sessions finish the one in
 *   flight and wait idle.
 *
 *   DNS answers: null MX bounces (5.1.10), NXDOMAIN bounces (5.1.2), no
 *   host with an address bounces (5.4.4), a temporary failure defers
 *   (4.4.3).
 *
 *   Opportunistic TLS whose handshake fails (a TLS error, a timeout, the
 *   server closing or talking plain text after its 220 to STARTTLS) does
 *   not count as a failed address: the destination's sessions go without
 *   STARTTLS for the next hour (DEST_CLEAR_MS) and the waiting mail is
 *   deferred with the reason and "the next attempt goes without TLS",
 *   due again at once.  tls = required never falls back.
 *
 * DIAGNOSTICS
 *   Each destination remembers its last error for status and events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "engine.h"
#include "signer.h"
#include "queue_campaign.h"

/* How long a destination whose opportunistic STARTTLS failed gets
 * sessions without TLS before TLS is tried again. */
#define DEST_CLEAR_MS (60 * 60 * 1000)

/* The state a job carries through its session. */
struct job_ctx {
    struct smtp_job job;
    struct dest *dest;
    struct item **items;
    struct smtp_rcpt rcpts[];
};

/* Whether an address holds 8-bit octets (UTF-8: RFC 6531 SMTPUTF8). */
static bool has_8bit(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* Count waiting items on the destination and on its site. */
static void count_items(struct dest *d, int delta)
{
    d->nitems = (unsigned)((int)d->nitems + delta);
    if (d->site)
        d->site->waiting = (unsigned)((int)d->site->waiting + delta);
}

/* The limits that apply: the site's once resolved, else the domain's. */
static const struct domain_policy *lim(const struct dest *d)
{
    return d->site ? d->site->pol : d->pol;
}

static struct site *d_site(const struct job_ctx *j)
{
    return j->dest->site;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

/* Double the destination table. */
static int grow_dests(struct engine *e)
{
    size_t ncap = e->dcap ? e->dcap * 2 : 1024;
    struct dest **n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < e->dcap; i++) {
        struct dest *d = e->dtab[i], *next;
        for (; d; d = next) {
            next = d->hnext;
            size_t b = hash_str(d->domain) & (ncap - 1);
            d->hnext = n[b];
            n[b] = d;
        }
    }
    free(e->dtab);
    e->dtab = n;
    e->dcap = ncap;
    return 0;
}

struct dest *dest_get(struct engine *e, const char *domain)
{
    if (e->dcap) {
        for (struct dest *d = e->dtab[hash_str(domain) & (e->dcap - 1)]; d;
             d = d->hnext)
            if (!strcmp(d->domain, domain))
                return d;
    }
    if (e->ndests + 1 > e->dcap && grow_dests(e))
        return NULL;
    struct dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    d->e = e;
    d->paused = engine_paused(e, QUEUE_CTL_DOMAIN, domain);
    d->pol = config_domain(&e->cfg, domain);
    size_t b = hash_str(domain) & (e->dcap - 1);
    d->hnext = e->dtab[b];
    e->dtab[b] = d;
    e->ndests++;
    return d;
}

void dest_add_item(struct engine *e, struct dest *d, struct item *it)
{
    (void)e;
    it->next = NULL;
    it->dest = d;
    if (!d->tail || d->tail->body != it->body || !it->body)
        d->ngroups++; /* recipients of one message arrive side by side */
    if (!d->head)
        d->accounts_mixed = false;
    else if (d->head->account != it->account)
        d->accounts_mixed = true;
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    count_items(d, 1);
}

/* Keep the transaction estimate within what is left. */
static void fix_groups(struct dest *d)
{
    if (d->ngroups > d->nitems)
        d->ngroups = d->nitems;
    if (d->nitems && !d->ngroups)
        d->ngroups = 1;
}

/* Take every waiting item out and give each a copy of outcome o. */
static void record_all(struct engine *e, struct dest *d,
                       const struct queue_outcome *o)
{
    while (d->head) {
        struct item *batch[256];
        struct queue_outcome out[256];
        size_t n = 0;
        while (d->head && n < 256) {
            struct item *it = d->head;
            d->head = it->next;
            count_items(d, -1);
            batch[n] = it;
            out[n] = *o;
            out[n].delivery = it->id;
            n++;
        }
        engine_record(e, batch, n, out);
    }
    d->tail = NULL;
    d->ngroups = 0;
}

size_t dest_drop_items(struct engine *e,
                       bool (*pick)(struct engine *e, const struct item *it,
                                    void *arg, struct queue_outcome *o),
                       void *arg)
{
    struct item *batch[256];
    struct queue_outcome out[256];
    size_t n = 0, total = 0;
    for (size_t b = 0; b < e->dcap; b++)
        for (struct dest *d = e->dtab[b]; d; d = d->hnext) {
            struct item *prev = NULL, *it = d->head;
            bool took = false;
            while (it) {
                struct item *next = it->next;
                if (!pick(e, it, arg, &out[n])) {
                    prev = it;
                    it = next;
                    continue;
                }
                if (prev) prev->next = next; else d->head = next;
                if (d->tail == it) d->tail = prev;
                count_items(d, -1);
                took = true;
                out[n].delivery = it->id;
                batch[n++] = it;
                total++;
                if (n == 256) {
                    engine_record(e, batch, n, out);
                    n = 0;
                }
                it = next;
            }
            if (took) {
                /* count the runs of items sharing a body again */
                d->ngroups = 0;
                for (struct item *x = d->head, *p = NULL; x; p = x, x = x->next)
                    if (!p || p->body != x->body)
                        d->ngroups++;
            }
        }
    if (n)
        engine_record(e, batch, n, out);
    return total;
}

struct campaign_pick {
    uint64_t campaign;
    const struct queue_outcome *o;
};

/* dest_drop_items() picker: the items of one campaign, outcome o. */
static bool pick_campaign(struct engine *e, const struct item *it, void *arg,
                          struct queue_outcome *o)
{
    const struct campaign_pick *p = arg;
    (void)e;
    if (it->campaign != p->campaign)
        return false;
    *o = *p->o;
    return true;
}

void dest_drop_campaign(struct engine *e, uint64_t campaign,
                        const struct queue_outcome *o)
{
    struct campaign_pick p = { campaign, o };
    dest_drop_items(e, pick_campaign, &p);
}

/* Give every waiting item the same failure. */
static void fail_all(struct engine *e, struct dest *d, int type, int code,
                     const char *enh, const char *text, const char *mx)
{
    struct queue_outcome o = {
        .type = type, .code = (uint16_t)code, .enhanced = enh, .text = text,
        .mx = mx, .category = (uint8_t)(type == QUEUE_EV_BOUNCED ||
                                        type == QUEUE_EV_DEFERRED
                                        ? classify_reply(code, enh, text) : 0),
    };
    record_all(e, d, &o);
    snprintf(d->last_error, sizeof d->last_error, "%s", text);
}

/* Have the bodies of the next items composed: about two jobs ahead for
 * every session, so composition keeps pace without holding a body for
 * every claimed item. */
static void prefetch(struct engine *e, struct dest *d)
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
        engine_compose(e, want, n, d);
}

/* Is a campaign recipient on its account's suppression list now?  The
 * list was checked when the message was rendered; this second look, as
 * the message is handed to a session, catches an unsubscribe that came
 * in between (one read transaction). */
static bool suppressed_now(struct engine *e, const struct item *it)
{
    const struct eng_account *a = accounts_get(e, it->account);
    uint32_t owner = a && a->suppression_owner ? a->suppression_owner
                                               : it->account;
    bool yes = false;
    return !queue_suppressed(e->q, owner, it->rcpt, &yes) && yes;
}

/* Unlink waiting item it (after prev) from d. */
static void take_out(struct dest *d, struct item *prev, struct item *it)
{
    if (prev) prev->next = it->next; else d->head = it->next;
    if (d->tail == it) d->tail = prev;
    count_items(d, -1);
    fix_groups(d);
}

/* Wait for a body being composed (for another destination, perhaps). */
static void wait_compose(struct engine *e, struct dest *d)
{
    if (d->waiting)
        return;
    d->waiting = true;
    d->wnext = e->waiting_head;
    e->waiting_head = d;
}

/* Build a job from the first waiting item whose body is composed, with
 * the other recipients of the same message that wait here. */
static struct job_ctx *build_job(struct engine *e, struct dest *d)
{
    struct item *prev = NULL, *it = d->head, *pick = NULL, *pick_prev = NULL;
    bool composing = false;
    double wait = 0;
    prefetch(e, d);
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
            wait_compose(e, d);
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
        return build_job(e, d);
    }
    if (it->campaign && !it->body->err && suppressed_now(e, it)) {
        /* unsubscribed after its message was rendered: not sent */
        take_out(d, prev, it);
        struct queue_outcome o = { .delivery = it->id,
                                   .type = QUEUE_EV_EXPIRED,
                                   .enhanced = "5.7.1",
                                   .category = QUEUE_CAT_OTHER,
                                   .text = "suppressed: unsubscribed before "
                                           "sending" };
        engine_record(e, &it, 1, &o);
        return build_job(e, d);
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
                                      : queue_strerror(it->body->err) };
        engine_record(e, &it, 1, &o);
        return build_job(e, d);
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
        if (p) p->next = next; else d->head = next;
        if (d->tail == c) d->tail = p;
        count_items(d, -1);
        j->items[n] = c;
        j->rcpts[n] = (struct smtp_rcpt){ .delivery = c->id, .addr = c->rcpt };
        n++;
        c = next;
    }
    if (!c || c->body != b)
        d->ngroups--;
    fix_groups(d);
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

static void remove_idle(struct dest *d, struct smtp_session *s)
{
    for (unsigned i = 0; i < d->nidle; i++)
        if (d->idle[i] == s) {
            d->idle[i] = d->idle[--d->nidle];
            return;
        }
}

static void push_idle(struct dest *d, struct smtp_session *s)
{
    if (d->nidle == d->capidle) {
        unsigned ncap = d->capidle ? d->capidle * 2 : 4;
        struct smtp_session **n = realloc(d->idle, ncap * sizeof *n);
        if (!n) {
            smtp_session_quit(s);
            return;
        }
        d->idle = n;
        d->capidle = ncap;
    }
    d->idle[d->nidle++] = s;
}

/* Whether a session still fits its destination: a reload may have
 * changed the route or made TLS required since it was opened. */
static bool session_current(const struct dest *d, struct smtp_session *s)
{
    if (d->pol->tls == TLS_REQUIRED && !smtp_session_tls(s))
        return false;
    for (unsigned i = 0; i < d->ntargets; i++)
        if (!strcmp(d->targets[i].host, smtp_session_host(s)))
            return true;
    return false;
}

/* Queue a destination that could not open a session for the global cap. */
static void starve(struct engine *e, struct dest *d)
{
    if (d->starving)
        return;
    d->starving = true;
    d->snext = NULL;
    if (e->starved_tail)
        e->starved_tail->snext = d;
    else
        e->starved_head = d;
    e->starved_tail = d;
}

/* A global session slot came free: let starved destinations have it. */
static void feed_starved(struct engine *e)
{
    while (e->starved_head && e->sessions < e->cfg.max_connections &&
           !e->draining) {
        struct dest *d = e->starved_head;
        e->starved_head = d->snext;
        if (!e->starved_head)
            e->starved_tail = NULL;
        d->starving = false;
        dest_kick(e, d);
    }
}

/* Give the session a job, or park it idle (it quits after idle_timeout,
 * or at once when other destinations wait for a session slot). */
static void feed_session(struct engine *e, struct dest *d,
                         struct smtp_session *s)
{
    if (e->draining || !session_current(d, s) ||
        smtp_session_jobs(s) >= lim(d)->max_messages_per_connection) {
        smtp_session_quit(s);
        return;
    }
    if (d->site && d->site->sessions > site_conn_limit(d->site)) {
        smtp_session_quit(s); /* backoff cut the concurrency */
        return;
    }
    if (!engine_spool_writable(e)) {
        push_idle(d, s); /* no new transaction while outcomes wait */
        return;
    }
    struct job_ctx *j = d->site && !site_take(d->site, 0) ? NULL
                                                         : build_job(e, d);
    if (j && d->site)
        site_take(d->site, (unsigned)j->job.nrcpt);
    if (!j) {
        /* nothing left here: give the slot back at once when the global
         * cap or the site's cap may keep another destination waiting
         * (parked, it would hold the site's slot for idle_timeout) */
        if (!d->nitems && (e->starved_head ||
                           (d->site && d->site->ndests > 1 &&
                            d->site->sessions >= site_conn_limit(d->site))))
            smtp_session_quit(s);
        else
            push_idle(d, s);
        return;
    }
    d->busy++;
    if (smtp_session_send(s, &j->job)) {
        /* not ready after all: put the items back in front */
        d->busy--;
        for (size_t i = j->job.nrcpt; i-- > 0;) {
            j->items[i]->next = d->head;
            d->head = j->items[i];
            if (!d->tail)
                d->tail = j->items[i];
            count_items(d, 1);
        }
        d->ngroups++;
        free(j);
    }
}

/* A job to pipeline behind the end of data the session is sending. */
static struct smtp_job *on_next_job(struct smtp_session *s, void *arg)
{
    struct dest *d = arg;
    struct engine *e = d->e;
    /* the job being sent counts too: jobs() + 1 now, + 2 with this one */
    if (e->draining || !engine_spool_writable(e) || !session_current(d, s) ||
        smtp_session_jobs(s) + 2 > lim(d)->max_messages_per_connection ||
        (d->site && !site_take(d->site, 0)))
        return NULL;
    struct job_ctx *j = build_job(e, d);
    if (!j)
        return NULL;
    if (d->site)
        site_take(d->site, (unsigned)j->job.nrcpt);
    d->busy++;
    return &j->job;
}

/* Record the outcome of every recipient of a finished job. */
static void job_outcomes(struct engine *e, struct job_ctx *j, const char *mx)
{
    struct queue_outcome o[j->job.nrcpt];
    int64_t now = engine_now();
    size_t n = 0;
    for (size_t i = 0; i < j->job.nrcpt; i++) {
        const struct smtp_rcpt *r = &j->rcpts[i];
        struct item *it = j->items[i];
        if (e->drain_abort && r->local && r->status == RS_TEMPFAIL) {
            /* cut short by shutdown: no attempt recorded, the claim ends
             * with the process and the delivery is due again */
            engine_item_free(e, it);
            e->inflight--;
            continue;
        }
        int type = r->status == RS_DELIVERED ? QUEUE_EV_DELIVERED
                 : r->status == RS_PERMFAIL ? QUEUE_EV_BOUNCED
                 : QUEUE_EV_DEFERRED;
        if (d_site(j) && (!r->local || r->code))
            site_feedback(d_site(j), type == QUEUE_EV_DELIVERED, r->code,
                          r->enhanced, r->text);
        if (d_site(j) && type == QUEUE_EV_DEFERRED)
            d_site(j)->deferred++;
        if (d_site(j) && type == QUEUE_EV_BOUNCED)
            d_site(j)->bounced++;
        if (type == QUEUE_EV_DEFERRED &&
            now >= it->created + e->cfg.max_age)
            type = QUEUE_EV_EXPIRED;
        o[n] = (struct queue_outcome){
            .delivery = r->delivery, .type = type, .code = r->code,
            .enhanced = r->enhanced, .mx = mx, .text = r->text,
            .category = (uint8_t)(type == QUEUE_EV_BOUNCED ||
                                  type == QUEUE_EV_DEFERRED
                                  ? classify_reply(r->code, r->enhanced, r->text)
                                  : type == QUEUE_EV_EXPIRED
                                  ? QUEUE_CAT_EXPIRED : 0),
        };
        j->items[n] = it;
        n++;
    }
    if (n)
        engine_record(e, j->items, n, o);
}

static void on_ready(struct smtp_session *s, void *arg)
{
    struct dest *d = arg;
    d->failed_in_row = 0;
    feed_session(d->e, d, s);
}

static void on_job_done(struct smtp_session *s, struct smtp_job *job,
                        void *arg)
{
    struct dest *d = arg;
    struct job_ctx *j = job->owner;
    d->busy--;
    job_outcomes(d->e, j, smtp_session_host(s));
    free(j);
}

/* Opportunistic TLS failed in the handshake with s's host: the next
 * sessions of d go without STARTTLS for DEST_CLEAR_MS (Postfix falls
 * back to plain text the same way), and what waits here is deferred with
 * the reason, due again at once, unless a ready session can take it. */
static void tls_fallback(struct engine *e, struct dest *d,
                         struct smtp_session *s, const char *enh,
                         const char *why)
{
    char text[QUEUE_MAX_REPLY];
    d->clear_until_ms = (int64_t)engine_now_ms() + DEST_CLEAR_MS;
    snprintf(text, sizeof text, "TLS with %s failed: %s; the next attempt "
             "goes without TLS", smtp_session_host(s), why);
    snprintf(d->last_error, sizeof d->last_error, "%.*s",
             (int)sizeof d->last_error - 1, text);
    if (e->draining || d->busy || d->nidle)
        return;
    struct queue_outcome o = {
        .type = QUEUE_EV_DEFERRED, .enhanced = enh && *enh ? enh : "4.7.5",
        .text = text, .mx = smtp_session_host(s),
        .category = (uint8_t)classify_reply(0, enh, text),
        .retry_at = engine_now(),
    };
    record_all(e, d, &o);
}

static void on_closed(struct smtp_session *s, bool ever_ready, int code,
                      const char *enh, const char *why, void *arg)
{
    struct dest *d = arg;
    struct engine *e = d->e;
    remove_idle(d, s);
    for (unsigned i = 0; i < d->nall; i++)
        if (d->all[i] == s) {
            d->all[i] = d->all[--d->nall];
            break;
        }
    d->sessions--;
    e->sessions--;
    if (d->site)
        site_disconnected(d->site);
    if (!ever_ready && d->site && code >= 400)
        site_feedback(d->site, false, code, enh, why);
    if (!ever_ready) {
        e->st.session_failures++;
        snprintf(d->last_error, sizeof d->last_error, "%s", why);
        if (smtp_session_tls_failed(s) && d->pol->tls == TLS_OPPORTUNISTIC) {
            tls_fallback(e, d, s, enh, why);
        } else if (d->ntargets &&
                   strcmp(smtp_session_host(s),
                          d->targets[d->next_target % d->ntargets].host)) {
            /* opened before an earlier failure moved on: no news */
        } else if (++d->failed_in_row >= d->ntargets) {
            /* every address failed in a row: defer what waits here,
             * unless a ready session can take it; sessions still
             * connecting do not count (a new one opens after each
             * failure, so waiting for none would never end) */
            d->failed_in_row = 0;
            d->next_target = 0;
            d->dns = DS_NONE;
            if (!e->draining && d->busy == 0 && d->nidle == 0)
                fail_all(e, d, QUEUE_EV_DEFERRED, code >= 400 ? code : 0,
                         enh && *enh ? enh : "4.4.1", why,
                         smtp_session_host(s));
        } else {
            d->next_target = (d->next_target + 1) % d->ntargets;
        }
    }
    if (!e->draining) {
        dest_kick(e, d);
        feed_starved(e);
    }
}

static const struct smtp_session_cb session_cb = {
    .ready = on_ready, .next_job = on_next_job, .job_done = on_job_done,
    .closed = on_closed,
};

/* The TLS policy of a new session: opportunistic TLS goes without
 * STARTTLS for a while after a handshake failed; required never does. */
static enum tls_policy session_tls(const struct dest *d)
{
    if (d->pol->tls == TLS_OPPORTUNISTIC &&
        (int64_t)engine_now_ms() < d->clear_until_ms)
        return TLS_OFF;
    return d->pol->tls;
}

/* Open one more session to the current target. */
static int open_session(struct engine *e, struct dest *d)
{
    const struct target *t = &d->targets[d->next_target % d->ntargets];
    struct smtp_session_cfg sc = {
        .ehlo_name = e->cfg.ehlo_hostname, .mx_host = t->host,
        .tls = session_tls(d),
        .tls_verify = d->pol->tls_verify, .ssl_ctx = e->ssl,
        .timeout_ms = e->cfg.timeout_ms,
    };
    struct smtp_session *s;
    int rc = smtp_session_start(e->loop, &sc, (const struct sockaddr *)&t->addr,
                                &session_cb, d, &s);
    if (rc) {
        snprintf(d->last_error, sizeof d->last_error, "connect to %s: %s",
                 t->host, uv_strerror(rc));
        return rc;
    }
    if (d->nall == d->capall) {
        unsigned ncap = d->capall ? d->capall * 2 : 4;
        struct smtp_session **n = realloc(d->all, ncap * sizeof *n);
        if (!n) {
            smtp_session_abort(s, "out of memory");
            if (d->site)
                site_connected(d->site);
            d->sessions++;
            e->sessions++;
            return 0; /* its closed() callback balances the counts */
        }
        d->all = n;
        d->capall = ncap;
    }
    d->all[d->nall++] = s;
    if (d->site)
        site_connected(d->site);
    d->sessions++;
    e->sessions++;
    e->st.sessions_opened++;
    return 0;
}

/* Move the destination to site ns (or none) with its open sessions, so
 * that each site counts exactly the sessions of its destinations: one
 * that closes while the destination has no site (after a reload, before
 * the lookup) would otherwise hold the old site's cap for ever. */
static void set_site(struct dest *d, struct site *ns)
{
    if (ns == d->site)
        return;
    if (d->site) {
        d->site->sessions -= d->sessions < d->site->sessions
                             ? d->sessions : d->site->sessions;
        d->site->waiting -= d->nitems < d->site->waiting
                            ? d->nitems : d->site->waiting;
    }
    if (ns) {
        ns->sessions += d->sessions;
        ns->waiting += d->nitems;
    }
    d->site = ns;
}

/* Copy a DNS answer into the destination's target list. */
static void take_targets(struct engine *e, struct dest *d,
                         const struct dns_result *r)
{
    unsigned n = 0;
    free(d->targets);
    d->targets = calloc(r->naddrs ? r->naddrs : 1, sizeof *d->targets);
    if (!d->targets) {
        d->ntargets = 0;
        return;
    }
    for (unsigned h = 0; h < r->ntargets; h++)
        for (unsigned a = 0; a < r->targets[h].naddrs && n < r->naddrs; a++) {
            snprintf(d->targets[n].host, sizeof d->targets[n].host, "%s",
                     r->targets[h].host);
            d->targets[n].addr = r->targets[h].addrs[a];
            n++;
        }
    d->ntargets = n;
    d->next_target = 0;
    d->failed_in_row = 0;
    d->dns_expires_ms = (int64_t)engine_now_ms() + (int64_t)r->ttl * 1000;
    if (n)
        set_site(d, site_for_dest(e, d, d->targets[0].host));
}

/* Lookups in flight at once: a burst of a thousand new domains would
 * otherwise overrun the resolver's socket and time out. */
#define DNS_MAX_INFLIGHT 64

static void resolve(struct engine *e, struct dest *d);

/* A lookup finished: start the next queued one. */
static void dns_slot_free(struct engine *e)
{
    e->dns_inflight--;
    while (e->dnsq_head && e->dns_inflight < DNS_MAX_INFLIGHT) {
        struct dest *d = e->dnsq_head;
        e->dnsq_head = d->dnext;
        if (!e->dnsq_head)
            e->dnsq_tail = NULL;
        d->dns_queued = false;
        d->dns = DS_NONE;
        dest_kick(e, d);
    }
}

static void on_dns(const struct dns_result *r, void *arg)
{
    struct dest *d = arg;
    struct engine *e = d->e;
    char text[300];
    d->dns = DS_NONE;
    if (r->status != DNS_CANCELLED)
        dns_slot_free(e);
    switch (r->status) {
    case DNS_OK:
        take_targets(e, d, r);
        d->dns = d->ntargets ? DS_READY : DS_NONE;
        dest_kick(e, d);
        return;
    case DNS_NULLMX:
        snprintf(text, sizeof text, "%s accepts no mail (null MX)", d->domain);
        fail_all(e, d, QUEUE_EV_BOUNCED, 556, "5.1.10", text, NULL);
        return;
    case DNS_NXDOMAIN:
        snprintf(text, sizeof text, "%s does not exist: %s", d->domain,
                 r->reason);
        fail_all(e, d, QUEUE_EV_BOUNCED, 550, "5.1.2", text, NULL);
        return;
    case DNS_NOHOST:
        snprintf(text, sizeof text, "no mail host for %s: %s", d->domain,
                 r->reason);
        fail_all(e, d, QUEUE_EV_BOUNCED, 554, "5.4.4", text, NULL);
        return;
    case DNS_TEMPFAIL:
        snprintf(text, sizeof text, "DNS lookup for %s failed: %s", d->domain,
                 r->reason);
        fail_all(e, d, QUEUE_EV_DEFERRED, 0, "4.4.3", text, NULL);
        return;
    case DNS_CANCELLED:
        return;
    }
}

/* Use a configured smarthost instead of MX (an address literal). */
static int route_targets(struct engine *e, struct dest *d)
{
    const struct domain_policy *p = d->pol;
    struct target t = { 0 };
    uint16_t port = p->route_port ? p->route_port : e->cfg.smtp_port;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t.addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t.addr;
    if (inet_pton(AF_INET, p->route_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, p->route_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
    } else {
        return -EINVAL;
    }
    snprintf(t.host, sizeof t.host, "%s", p->route_host);
    free(d->targets);
    if (!(d->targets = malloc(sizeof t)))
        return -ENOMEM;
    d->targets[0] = t;
    d->ntargets = 1;
    d->next_target = 0;
    d->dns = DS_READY;
    d->dns_expires_ms = INT64_MAX;
    set_site(d, site_for_dest(e, d, NULL));
    return 0;
}

/* Start finding where the destination's mail goes. */
static void resolve(struct engine *e, struct dest *d)
{
    if (d->dns_queued)
        return;
    if (d->pol->route_host) {
        if (route_targets(e, d) == 0)
            return;
        /* a host name route: resolve it like a domain (implicit MX) */
    }
    const char *name = d->pol->route_host ? d->pol->route_host : d->domain;
    d->dns = DS_RESOLVING;
    if (e->dns_inflight >= DNS_MAX_INFLIGHT) {
        if (!d->dns_queued) {
            d->dns_queued = true;
            d->dnext = NULL;
            if (e->dnsq_tail)
                e->dnsq_tail->dnext = d;
            else
                e->dnsq_head = d;
            e->dnsq_tail = d;
        }
        return;
    }
    int rc = dns_resolve_mx(e->dns, name, on_dns, d);
    if (rc == 0)
        e->dns_inflight++;
    if (rc) {
        char text[300];
        d->dns = DS_NONE;
        snprintf(text, sizeof text, "cannot look up %s: %s", name,
                 dns_strerror(rc));
        fail_all(e, d, rc == DNS_EBADNAME ? QUEUE_EV_BOUNCED : QUEUE_EV_DEFERRED,
                 rc == DNS_EBADNAME ? 553 : 0,
                 rc == DNS_EBADNAME ? "5.1.2" : "4.4.3", text, NULL);
    }
}

void dest_kick(struct engine *e, struct dest *d)
{
    if (d->in_kick)
        return;
    d->in_kick = true;
    if (d->nitems && !e->draining) {
        if (d->dns == DS_READY && d->sessions == 0 &&
            (int64_t)engine_now_ms() > d->dns_expires_ms)
            d->dns = DS_NONE;
        if (d->dns == DS_NONE)
            resolve(e, d);
    }
    int64_t until = 0;
    if (d->dns == DS_READY &&
        (d->paused || (d->site && site_stopped(d->site, &until)))) {
        /* suspended or paused: nothing goes; what waits here goes back to
         * the spool until then, so it holds no memory and blocks nobody */
        dest_hold(e, d, until ? until : (int64_t)engine_now_ms() +
                                        e->cfg.pause_recheck_ms);
        while (d->nidle)
            smtp_session_quit(d->idle[--d->nidle]);
        d->in_kick = false;
        return;
    }
    if (d->dns == DS_READY) {
        prefetch(e, d);
        while (d->nidle && d->nitems && engine_spool_writable(e)) {
            struct smtp_session *s = d->idle[--d->nidle];
            feed_session(e, d, s);
            if (d->nidle && d->idle[d->nidle - 1] == s)
                break; /* parked again: no body composed yet */
        }
        while (!e->draining && engine_spool_writable(e) &&
               (int)d->ngroups > (int)d->sessions - (int)d->busy &&
               (d->site ? site_may_connect(d->site)
                        : d->sessions < d->pol->max_connections)) {
            if (e->sessions >= e->cfg.max_connections) {
                starve(e, d);
                break;
            }
            if (open_session(e, d))
                break;
        }
    }
    d->in_kick = false;
}

void dest_hold(struct engine *e, struct dest *d, int64_t until_ms)
{
    struct queue_outcome o = { .type = QUEUE_EV_NONE,
                               .retry_at = (until_ms + 999) / 1000 };
    record_all(e, d, &o);
}

void dest_refresh_policies(struct engine *e)
{
    for (size_t b = 0; b < e->dcap; b++)
        for (struct dest *d = e->dtab[b]; d; d = d->hnext) {
            d->pol = config_domain(&e->cfg, d->domain);
            if (d->dns == DS_READY)
                d->dns = DS_NONE; /* a route may be new, changed or gone */
            /* sites may have changed: the next lookup finds it again and
             * set_site() moves the open sessions; until then they count
             * where they were opened, and closing them frees slots there */
        }
}

void dest_quit_idle(struct engine *e)
{
    for (size_t b = 0; b < e->dcap; b++)
        for (struct dest *d = e->dtab[b]; d; d = d->hnext)
            while (d->nidle)
                smtp_session_quit(d->idle[--d->nidle]);
}

void dest_abort_all(struct engine *e)
{
    for (size_t b = 0; b < e->dcap; b++)
        for (struct dest *d = e->dtab[b]; d; d = d->hnext)
            for (unsigned i = 0; i < d->nall; i++) /* closes later */
                smtp_session_abort(d->all[i], "sluiced is stopping");
}

void dest_free_all(struct engine *e)
{
    for (size_t b = 0; b < e->dcap; b++) {
        struct dest *d = e->dtab[b], *next;
        for (; d; d = next) {
            next = d->hnext;
            while (d->head) {
                struct item *it = d->head;
                d->head = it->next;
                engine_item_free(e, it);
            }
            free(d->targets);
            free(d->idle);
            free(d->all);
            free(d);
        }
    }
    free(e->dtab);
    e->dtab = NULL;
    e->dcap = e->ndests = 0;
}
