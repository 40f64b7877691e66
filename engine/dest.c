/*
 * dest.c - destinations: one per recipient domain, with its waiting items,
 * its DNS answer and its SMTP sessions.
 *
 * DESCRIPTION
 *   dest_kick() is the one place that moves a destination forward: have it
 *   resolved when there is no answer (route.c), have the bodies of the
 *   next items composed (body.c), give waiting items to idle sessions as jobs,
 *   and open more sessions while items wait and the domain's and the global
 *   connection limits allow.  Sessions follow the mail in hand: one per
 *   DEST_JOBS_PER_SESSION transactions (the open ones take the rest,
 *   pipelined), and each session on its way up has one waiting transaction
 *   kept for it, so none opens for mail another then sends.  At the global
 *   cap, an idle session with nothing to send gives its slot up to a
 *   destination waiting for one.  A session that fails before it is ready moves
 *   the destination to its next MX address; when every address has failed
 *   in a row, the waiting items are deferred with the last reason.
 *
 *   A job groups the recipients of one injected message that wait at the
 *   same destination (up to max_rcpts_per_message), so the message goes
 *   once per transaction.  While the spool cannot record outcomes
 *   (engine_spool_writable()), no job starts: sessions finish the one in
 *   flight and wait idle.
 *
 *   A finished job's recipients go to outcome.c (outcome_job()), which
 *   records them; mail that cannot go ends there too (engine_record()).
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "engine.h"
#include "fair.h"

/* How long a destination whose opportunistic STARTTLS failed gets
 * sessions without TLS before TLS is tried again. */
#define DEST_CLEAR_MS (60 * 60 * 1000)
#define DEST_MAX_WAITING 2000   /* items waiting at one destination, at most */
/* Transactions a session is expected to carry before another one opens:
 * with fewer waiting, the open sessions take them (one after the other,
 * pipelined), so a domain's few messages go on one connection. */
#define DEST_JOBS_PER_SESSION 8

/* Count waiting items on the destination and on its site. */
static void count_items(struct dest *d, int delta)
{
    d->nitems = (unsigned)((int)d->nitems + delta);
    if (d->site)
        site_add_waiting(d->site, delta);
}

/* The limits that apply: the site's once resolved, else the domain's. */
static const struct domain_policy *lim(const struct dest *d)
{
    return d->site ? d->site->pol : d->pol;
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
    size_t ncap = e->dests.cap ? e->dests.cap * 2 : 1024;
    struct dest **n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < e->dests.cap; i++) {
        struct dest *d = e->dests.tab[i], *next;
        for (; d; d = next) {
            next = d->hnext;
            size_t b = hash_str(d->domain) & (ncap - 1);
            d->hnext = n[b];
            n[b] = d;
        }
    }
    free(e->dests.tab);
    e->dests.tab = n;
    e->dests.cap = ncap;
    return 0;
}

/* The destination of domain, or a new one (paused when paused says so);
 * NULL out of memory. */
static struct dest *dest_get(struct engine *e, const char *domain,
                             bool paused)
{
    if (e->dests.cap) {
        for (struct dest *d = e->dests.tab[hash_str(domain) & (e->dests.cap - 1)]; d;
             d = d->hnext)
            if (!strcmp(d->domain, domain))
                return d;
    }
    if (e->dests.n + 1 > e->dests.cap && grow_dests(e))
        return NULL;
    struct dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    d->e = e;
    d->paused = paused;
    size_t b = hash_str(domain) & (e->dests.cap - 1);
    d->hnext = e->dests.tab[b];
    e->dests.tab[b] = d;
    e->dests.n++;
    d->pol = live_policy(e, 'd', domain, config_domain(&e->cfg, domain));
    return d;
}

const char *dest_site_name(const struct engine *e, const char *domain)
{
    if (!e->dests.cap)
        return NULL;
    for (struct dest *d = e->dests.tab[hash_str(domain) & (e->dests.cap - 1)];
         d; d = d->hnext)
        if (!strcmp(d->domain, domain))
            return d->site ? d->site->name : d->domain;
    return NULL;
}

/* The site of rcpt's domain (engine.h). */
const char *dest_rcpt_site(const struct engine *e, const char *rcpt,
                           char *buf, size_t len)
{
    const char *at = strrchr(rcpt, '@');
    const char *dom = at ? at + 1 : rcpt;
    size_t i = 0;
    for (; dom[i] && i + 1 < len; i++)
        buf[i] = (char)(dom[i] >= 'A' && dom[i] <= 'Z' ? dom[i] + 32 : dom[i]);
    buf[i] = 0;
    const char *site = dest_site_name(e, buf);
    return site ? site : buf;
}

/* File item it in d's queue at its turn (fair.c: the end, when one
 * account's mail waits there). */
static void add_item(struct dest *d, struct item *it)
{
    it->dest = d;
    struct item *prev = fair_link(d->e, d, it);
    if (!prev || prev->body != it->body || !it->body)
        d->ngroups++; /* recipients of one message arrive side by side */
    count_items(d, 1);
}

/* When a claim goes back to the spool rather than wait at destination d
 * (unix seconds), 0 when it may wait here: d is paused, its site stopped,
 * or it holds its share of the in-flight budget already. */
static int64_t waits_in_spool(struct engine *e, const struct dest *d,
                              const struct queue_claim *c)
{
    int64_t until;
    if (d->paused)
        return engine_now() + e->cfg.pause_recheck_ms / 1000;
    if (d->site && site_stopped(d->site, &until))
        return until ? (until + 999) / 1000
                     : engine_now() + e->cfg.pause_recheck_ms / 1000;
    /* a slow or throttled site holds at most a share of the in-flight
     * budget in memory; the rest waits in the spool, so it never starves
     * others */
    unsigned cap = e->cfg.max_inflight / 4;
    if (cap > DEST_MAX_WAITING)
        cap = DEST_MAX_WAITING;
    if (cap < 100)
        cap = 100;
    unsigned held = d->nitems;
    if (d->site && d->site->waiting > held)
        held = d->site->waiting;
    /* over it, an account (campaign) with less than its turns' share of
     * what waits here still comes in, so the mail queued first does not
     * keep the rest in the spool (fair.c) */
    if (held >= cap && !fair_may_exceed(d, held, c->account, c->campaign, cap))
        return engine_now() + 15;
    return 0;
}

int dest_file(struct engine *e, const struct queue_claim *c, struct item *it,
              bool domain_paused, struct dest **dp, struct queue_outcome *o)
{
    struct dest *d = dest_get(e, c->rcpt + c->domain_off, domain_paused);
    *dp = NULL;
    if (!d)
        return -ENOMEM;
    int64_t retry_at = waits_in_spool(e, d, c);
    if (retry_at) {
        *o = (struct queue_outcome){ .delivery = it->id,
                                     .type = QUEUE_EV_NONE,
                                     .retry_at = retry_at };
        return 0;
    }
    add_item(d, it);
    *dp = d;
    return 1;
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

void dest_take(struct dest *d, size_t n, bool run_ended)
{
    struct item *prev = NULL, *it = d->head;
    size_t gone = 0;
    while (it && gone < n) {
        struct item *next = it->next;
        if (it->taken) {
            it->taken = false;
            if (prev) prev->next = next; else d->head = next;
            if (d->tail == it) d->tail = prev;
            gone++;
        } else {
            prev = it;
        }
        it = next;
    }
    if (run_ended)
        d->ngroups--;
    /* the transaction estimate within what is left */
    unsigned left = d->nitems - (unsigned)gone;
    if (d->ngroups > left)
        d->ngroups = left;
    if (left && !d->ngroups)
        d->ngroups = 1;
    count_items(d, -(int)gone);
}size_t dest_drop_items(struct engine *e,
                       bool (*pick)(struct engine *e, const struct item *it,
                                    void *arg, struct queue_outcome *o),
                       void *arg)
{
    struct item *batch[256];
    struct queue_outcome out[256];
    size_t n = 0, total = 0;
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b]; d; d = d->hnext) {
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

void dest_fail_all(struct engine *e, struct dest *d, int type, int code,
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

static void remove_idle(struct dest *d, struct smtp_session *s)
{
    for (unsigned i = 0; i < d->nidle; i++)
        if (d->idle[i] == s) {
            d->idle[i] = d->idle[--d->nidle];
            return;
        }
}

/* Park s on d's idle list; -ENOMEM when the list cannot grow (the
 * caller closes s then). */
static int push_idle(struct dest *d, struct smtp_session *s)
{
    if (d->nidle == d->capidle) {
        unsigned ncap = d->capidle ? d->capidle * 2 : 4;
        struct smtp_session **n = realloc(d->idle, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        d->idle = n;
        d->capidle = ncap;
    }
    d->idle[d->nidle++] = s;
    return 0;
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

/* A global session slot came free: let starved destinations have it. */
static void feed_starved(struct engine *e)
{
    while (e->dests.starved_head && e->dests.sessions < e->cfg.max_connections &&
           !engine_draining(e)) {
        struct dest *d = e->dests.starved_head;
        e->dests.starved_head = d->snext;
        if (!e->dests.starved_head)
            e->dests.starved_tail = NULL;
        d->starving = false;
        dest_kick(e, d);
    }
}

/* What dest_kick() does with an idle session it took off the list. */
enum fate {
    FATE_SEND,  /* it may take a job: build one */
    FATE_SPARE, /* it may, but none goes now: keep it or free the slot */
    FATE_PARK,  /* keep it idle: no new transaction while outcomes wait */
    FATE_QUIT,  /* close it */
};

/* Stage admit (site.c) for one idle session: may it take a job now, by
 * the policy, the site's connection cap and the site's message rate?
 * *cap is the site's connection cap (0 without a site). */
static enum fate admit_session(struct engine *e, struct dest *d,
                               struct smtp_session *s, unsigned *cap)
{
    if (!session_current(d, s) ||
        smtp_session_jobs(s) >= lim(d)->max_messages_per_connection)
        return FATE_QUIT;
    *cap = d->site ? site_conn_limit(d->site) : 0;
    if (engine_draining(e) ||
        (d->site && d->site->sessions > *cap)) /* backoff cut the concurrency */
        return FATE_QUIT;
    if (!engine_spool_writable(e))
        return FATE_PARK;
    if (d->site && !site_take(d->site, 0))
        return FATE_SPARE;
    return FATE_SEND;
}

/* A job s could not take after all (not ready): its items go back in
 * front of d's queue. */
static void put_back(struct dest *d, struct job_ctx *j)
{
    d->busy--;
    for (size_t i = j->job.nrcpt; i-- > 0;) {
        j->items[i]->next = d->head;
        d->head = j->items[i];
        if (!d->tail)
            d->tail = j->items[i];
    }
    d->ngroups++;
    count_items(d, (int)j->job.nrcpt);
    free(j);
}

/* Stage tidy: the one place an idle session of d is parked or closed. */
static void tidy(struct dest *d, struct smtp_session *s, enum fate f)
{
    if (f == FATE_PARK && push_idle(d, s))
        f = FATE_QUIT; /* no room on the idle list */
    if (f == FATE_QUIT)
        smtp_session_quit(s);
}

/* Whether d has a waiting transaction beyond the one kept for each
 * session still connecting.  A session is opened only for mail in hand;
 * keeping that mail for it means no connection goes up to find its work
 * taken by another session (pipelined behind its last message) and
 * closes having carried nothing. */
static bool unclaimed_work(const struct dest *d)
{
    return d->nitems && d->ngroups > d->connecting;
}

/* Note that d parked an idle session with nothing to send: a destination
 * kept waiting for the global cap may have its slot (starve()). */
static void offer_spare(struct engine *e, struct dest *d)
{
    if (d->spare)
        return;
    d->spare = true;
    DEST_LIST_PUSH(e->dests.spare_head, e->dests.spare_tail, d, spnext);
}

/* At the global cap, close one idle session that has nothing to send
 * (the oldest offered), so its slot goes to a destination with mail
 * rather than idle until idle_timeout.  The list is checked lazily: a
 * destination that got mail or lost its idle sessions since is skipped. */
static void free_spare_slot(struct engine *e, const struct dest *needy)
{
    struct dest *p;
    while ((p = e->dests.spare_head)) {
        e->dests.spare_head = p->spnext;
        if (!e->dests.spare_head)
            e->dests.spare_tail = NULL;
        p->spare = false;
        if (p == needy || !p->nidle || unclaimed_work(p))
            continue;
        tidy(p, p->idle[--p->nidle], FATE_QUIT);
        if (p->nidle)
            offer_spare(e, p);
        return;
    }
}

/* Queue a destination that could not open a session for the global cap,
 * and have an idle session elsewhere give its slot up for it. */
static void starve(struct engine *e, struct dest *d)
{
    if (d->starving)
        return;
    d->starving = true;
    DEST_LIST_PUSH(e->dests.starved_head, e->dests.starved_tail, d, snext);
    free_spare_slot(e, d);
}

/* The next job for a session of d (job.c), charged to the rates it goes
 * under (limits.c: account, campaign; site.c); NULL when none can go now,
 * and d waits for the rate or the body that holds it back. */
static struct job_ctx *next_job(struct engine *e, struct dest *d)
{
    struct job_wait w;
    struct job_ctx *j;
    if (!unclaimed_work(d))
        return NULL; /* kept for the sessions on their way up */
    job_prefetch(e, d);
    while (!(j = job_build(e, d, &w)) && w.again)
        ;
    if (j) {
        limits_charge(e, j->items[0], (unsigned)j->job.nrcpt);
        if (d->site)
            site_take(d->site, (unsigned)j->job.nrcpt);
        return j;
    }
    if (w.ms > 0)
        limits_wait_dest(e, d, w.ms);
    if (w.composing)
        body_wait(e, d);
    return NULL;
}

/* One idle session through the pipeline: admit it (site.c), build its
 * job (next_job), hand the job over (smtp_session.c), or tidy it: park it
 * idle (it quits after idle_timeout) or close it at once when other
 * destinations wait for a session slot. */
static void feed_session(struct engine *e, struct dest *d,
                         struct smtp_session *s)
{
    unsigned cap = 0;
    enum fate f = admit_session(e, d, s, &cap);
    struct job_ctx *j = f == FATE_SEND ? next_job(e, d) : NULL;
    if (j) { /* hand over (smtp_session.c) */
        d->busy++;
        if (smtp_session_send(s, &j->job))
            put_back(d, j);
        return;
    }
    if (f == FATE_SEND || f == FATE_SPARE)
        /* nothing left here (or nothing until max_inflight_bytes has
         * room): give the slot back at once when the global cap or the
         * site's cap may keep another destination waiting (parked, it
         * would hold the slot for idle_timeout, and that destination
         * perhaps the bytes this one waits for) */
        f = (!unclaimed_work(d) || d->bytes_waiting) &&
            (e->dests.starved_head ||
                           (d->site && d->site->ndests > 1 &&
                            d->site->sessions >= cap))
            ? FATE_QUIT : FATE_PARK;
    tidy(d, s, f);
    if (f == FATE_PARK && !unclaimed_work(d))
        offer_spare(e, d); /* its slot, should another need it */
}

/* A job to pipeline behind the end of data the session is sending. */
static struct smtp_job *on_next_job(struct smtp_session *s, void *arg)
{
    struct dest *d = arg;
    struct engine *e = d->e;
    /* the job being sent counts too: jobs() + 1 now, + 2 with this one */
    if (engine_draining(e) || !engine_spool_writable(e) || !session_current(d, s) ||
        smtp_session_jobs(s) + 2 > lim(d)->max_messages_per_connection ||
        (d->site && !site_take(d->site, 0)))
        return NULL;
    struct job_ctx *j = next_job(e, d);
    if (!j)
        return NULL;
    d->busy++;
    return &j->job;
}

static void on_ready(struct smtp_session *s, void *arg)
{
    struct dest *d = arg;
    d->failed_in_row = 0;
    if (!smtp_session_jobs(s))
        d->connecting--; /* its first ready (ready comes after each job) */
    feed_session(d->e, d, s);
}

static void on_job_done(struct smtp_session *s, struct smtp_job *job,
                        void *arg)
{
    struct dest *d = arg;
    struct job_ctx *j = job->owner;
    d->busy--;
    outcome_job(d->e, d->site, j->items, j->rcpts, j->job.nrcpt,
                smtp_session_host(s), job->record_wait ? s : NULL);
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
    if (engine_draining(e) || d->busy || d->nidle)
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
    e->dests.sessions--;
    if (!ever_ready)
        d->connecting--;
    if (d->site)
        site_disconnected(d->site);
    if (!ever_ready && d->site && code >= 400)
        site_feedback(d->site, false, code, enh, why);
    if (!ever_ready) {
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
            if (!engine_draining(e) && d->busy == 0 && d->nidle == 0)
                dest_fail_all(e, d, QUEUE_EV_DEFERRED, code >= 400 ? code : 0,
                         enh && *enh ? enh : "4.4.1", why,
                         smtp_session_host(s));
        } else {
            d->next_target = (d->next_target + 1) % d->ntargets;
        }
    }
    if (!engine_draining(e)) {
        dest_kick(e, d);
        feed_starved(e);
    }
}

/* s waits for its outcomes to commit (smtp_session.h: crash window). */
static void on_waits(struct smtp_session *s, void *arg)
{
    struct dest *d = arg;
    (void)s;
    outcome_hurry(d->e);
}

static const struct smtp_session_cb session_cb = {
    .ready = on_ready, .next_job = on_next_job, .job_done = on_job_done,
    .closed = on_closed, .waits = on_waits,
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
            d->connecting++;
            e->dests.sessions++;
            return 0; /* its closed() callback balances the counts */
        }
        d->all = n;
        d->capall = ncap;
    }
    d->all[d->nall++] = s;
    if (d->site)
        site_connected(d->site);
    d->sessions++;
    d->connecting++;
    e->dests.sessions++;
    return 0;
}

/* Stage route (route.c): a destination with mail waiting needs an
 * answer; one whose answer expired while it had no session asks again. */
static void kick_route(struct engine *e, struct dest *d)
{
    if (!d->nitems || engine_draining(e))
        return;
    if (d->dns == DS_READY && d->sessions == 0 &&
        (int64_t)engine_now_ms() > d->dns_expires_ms)
        d->dns = DS_NONE;
    if (d->dns == DS_NONE)
        route_resolve(e, d);
}

/* The sessions the mail in hand at d warrants: one per
 * DEST_JOBS_PER_SESSION transactions waiting or under way (fewer per
 * session when max_messages_per_connection is lower), at least one while
 * anything waits. */
static unsigned sessions_wanted(const struct dest *d)
{
    unsigned per = DEST_JOBS_PER_SESSION;
    if (lim(d)->max_messages_per_connection < per)
        per = lim(d)->max_messages_per_connection;
    if (per < 1)
        per = 1;
    if (!d->nitems)
        return 0;
    return (d->ngroups + d->busy + per - 1) / per;
}

/* Stage connect (smtp_session.c): open sessions while the mail waiting
 * warrants more than are open or opening (sessions_wanted()), the spool
 * can record outcomes and the site's (or the domain's) connection limit
 * allows; at the global cap, wait in line. */
static void open_sessions(struct engine *e, struct dest *d)
{
    while (!engine_draining(e) && engine_spool_writable(e) &&
           sessions_wanted(d) > d->sessions &&
           (d->site ? site_may_connect(d->site)
                    : d->sessions < d->pol->max_connections)) {
        if (e->dests.sessions >= e->cfg.max_connections) {
            starve(e, d);
            break;
        }
        if (open_session(e, d))
            break;
    }
}

/* Move d forward, in message order: route, admit, build and hand over to
 * the idle sessions, connect more, tidy what is left idle. */
void dest_kick(struct engine *e, struct dest *d)
{
    if (d->in_kick)
        return;
    d->in_kick = true;
    kick_route(e, d);
    int64_t until = 0; /* admit (site.c): paused, or the site stopped */
    if (d->dns == DS_READY &&
        (d->paused || (d->site && site_stopped(d->site, &until)))) {
        /* suspended or paused: nothing goes; what waits here goes back to
         * the spool until then, so it holds no memory and blocks nobody */
        dest_hold(e, d, until ? until : (int64_t)engine_now_ms() +
                                        e->cfg.pause_recheck_ms);
        while (d->nidle)
            tidy(d, d->idle[--d->nidle], FATE_QUIT);
    } else if (d->dns == DS_READY) {
        job_prefetch(e, d);
        while (d->nidle && d->nitems && engine_spool_writable(e)) {
            struct smtp_session *s = d->idle[--d->nidle];
            feed_session(e, d, s);
            if (d->nidle && d->idle[d->nidle - 1] == s)
                break; /* parked again: no body composed yet */
        }
        open_sessions(e, d);
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
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b]; d; d = d->hnext) {
            d->pol = live_policy(e, 'd', d->domain,
                                 config_domain(&e->cfg, d->domain));
            fair_refresh(d); /* shares may have changed */
            if (d->dns == DS_READY)
                d->dns = DS_NONE; /* a route may be new, changed or gone */
            /* sites may have changed: the next lookup finds it again and
             * set_site() moves the open sessions; until then they count
             * where they were opened, and closing them frees slots there */
        }
}

void dest_quit_idle(struct engine *e)
{
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b]; d; d = d->hnext)
            while (d->nidle)
                tidy(d, d->idle[--d->nidle], FATE_QUIT);
}

void dest_abort_all(struct engine *e)
{
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b]; d; d = d->hnext)
            for (unsigned i = 0; i < d->nall; i++) /* closes later */
                smtp_session_abort(d->all[i], "sluiced is stopping");
}

void dest_free_all(struct engine *e)
{
    for (size_t b = 0; b < e->dests.cap; b++) {
        struct dest *d = e->dests.tab[b], *next;
        for (; d; d = next) {
            next = d->hnext;
            while (d->head) {
                struct item *it = d->head;
                d->head = it->next;
                engine_item_free(e, it);
            }
            fair_free(d);
            free(d->targets);
            free(d->idle);
            free(d->all);
            free(d);
        }
    }
    free(e->dests.tab);
    e->dests.tab = NULL;
    e->dests.cap = e->dests.n = 0;
}

void dest_foreach(struct engine *e, void (*fn)(struct dest *d, void *arg),
                  void *arg)
{
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b], *next; d; d = next) {
            next = d->hnext;
            fn(d, arg);
        }
}

void dest_kick_waiting(struct engine *e)
{
    for (size_t b = 0; b < e->dests.cap; b++)
        for (struct dest *d = e->dests.tab[b]; d; d = d->hnext)
            if (d->nitems)
                dest_kick(e, d);
}

unsigned dest_sessions(const struct engine *e)
{
    return e->dests.sessions;
}

void dest_set_paused(struct engine *e, struct dest *d, bool paused)
{
    if (paused == d->paused)
        return;
    d->paused = paused;
    eventlog_pause(e, d->domain, paused);
    dest_kick(e, d);
}
