/*
 * scheduler.c - the engine's heartbeat: claim due deliveries, compose their
 * bodies on the worker pool, file them under destinations, and record
 * outcomes through the spool's group-commit writer.
 *
 * DESCRIPTION
 *   A 10 ms timer claims while fewer than max_inflight deliveries are held.
 *   Recipients of one injected message share one composed body (a hash by
 *   message id); bodies are composed in batches by uv_queue_work, so the
 *   loop thread does I/O only.  Campaign deliveries need the campaign
 *   renderer (a later issue) and are deferred with a clear reason until it
 *   exists.  A delivery past its maximum age is expired at claim time.
 *
 *   Outcomes are submitted per job (record.c); their completions arrive on
 *   this loop (queue_completer), then the items are freed and the event
 *   log (eventlog.c) reads the committed events on the next tick.  While
 *   the spool cannot take outcomes (full), nothing is claimed (record.c
 *   holds what is in flight).
 *
 * DIAGNOSTICS
 *   A failed claim is reported on stderr and tried again next tick.
 *   Claims and counter reads failing as a damaged spool fails, again and
 *   again with no success between, stop the engine with exit 65
 *   (engine_spool_result) rather than retrying forever.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compose.h"
#include "classify.h"
#include "engine.h"
#include "signer.h"
#include "queue_admin.h"
#include "tls.h"

#define COMPOSE_BATCH 8
#define CAMPAIGN_BODY (1ull << 63)   /* body keys of campaign recipients */
#define DEST_MAX_WAITING 2000

/* Bodies to compose in one trip to the worker pool, and the destinations
 * that asked for them (kicked when they are ready). */
struct compose_batch {
    uv_work_t work;
    struct engine *e;
    struct signer *signer;
    size_t n, ndests;
    struct body *bodies[COMPOSE_BATCH];
    struct dest *dests[COMPOSE_BATCH];
};

int64_t engine_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- bodies */

static size_t body_bucket(const struct engine *e, uint64_t id)
{
    id ^= id >> 31;
    id *= 0x9e3779b97f4a7c15ull;
    return (size_t)(id >> 20) & (e->bcap - 1);
}

/* Find the body of a message, or make an empty one (refs 0). */
static struct body *body_get(struct engine *e, uint64_t msg_id, bool *fresh)
{
    *fresh = false;
    if (e->bcap) {
        for (struct body *b = e->btab[body_bucket(e, msg_id)]; b; b = b->hnext)
            if (b->msg_id == msg_id)
                return b;
    }
    if (e->nbodies + 1 > e->bcap) {
        size_t ncap = e->bcap ? e->bcap * 2 : 1024;
        struct body **n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        size_t oldcap = e->bcap;
        struct body **old = e->btab;
        e->btab = n;
        e->bcap = ncap;
        for (size_t i = 0; i < oldcap; i++)
            for (struct body *b = old[i], *next; b; b = next) {
                next = b->hnext;
                size_t k = body_bucket(e, b->msg_id);
                b->hnext = n[k];
                n[k] = b;
            }
        free(old);
    }
    struct body *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->msg_id = msg_id;
    size_t k = body_bucket(e, msg_id);
    b->hnext = e->btab[k];
    e->btab[k] = b;
    e->nbodies++;
    *fresh = true;
    return b;
}

/* Drop one reference; the last frees the body. */
static void body_unref(struct engine *e, struct body *b)
{
    if (!b || --b->refs)
        return;
    struct body **pp = &e->btab[body_bucket(e, b->msg_id)];
    while (*pp && *pp != b)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = b->hnext;
    e->nbodies--;
    engine_body_free(b);
}

void engine_body_free(struct body *b)
{
    free(b->from);
    free(b->data);
    free(b->data7);
    free(b->errtext);
    free(b);
}

void engine_item_free(struct engine *e, struct item *it)
{
    if (!it)
        return;
    accounts_release(e, it);
    body_unref(e, it->body);
    free(it);
}

struct take_ctx {
    struct body *b;
    const struct signer *signer;
};

/* Worker thread: fetch a message from the spool, prepare, sign and
 * compose it. */
static void take_message(void *arg, const char *from, const void *msg,
                         size_t len)
{
    struct take_ctx *t = arg;
    struct body *b = t->b;
    struct wire w, w7;
    char why[300] = "";
    if (!(b->from = strdup(from))) {
        b->err = -ENOMEM;
        return;
    }
    b->err = signer_compose(t->signer, b->account, msg, len, &w, &w7, why,
                            sizeof why);
    if (b->err) {
        if (why[0])
            b->errtext = strdup(why);
        return;
    }
    b->data = w.data;
    b->len = w.len;
    b->size = w.size;
    b->eightbit = w.eightbit;
    b->hdr8 = w.hdr8;
    b->data7 = w7.data;
    b->len7 = w7.len;
    b->size7 = w7.size;
    b->eightbit7 = w7.eightbit;
    b->hdr8_7 = w7.hdr8;
}

static void compose_work(uv_work_t *w)
{
    struct compose_batch *cb = w->data;
    for (size_t i = 0; i < cb->n; i++) {
        struct body *b = cb->bodies[i];
        if (b->campaign) {
            char why[300] = "";
            if ((b->err = campaign_compose(cb->e, cb->signer, b, why,
                                           sizeof why)) && why[0])
                b->errtext = strdup(why);
            continue;
        }
        struct take_ctx t = { .b = b, .signer = cb->signer };
        int err = queue_get_message(cb->e->q, b->msg_id, take_message, &t);
        if (err)
            b->err = err;
    }
}

/* Loop thread: bodies are ready; wake the destinations waiting for them. */
static void compose_done(uv_work_t *w, int status)
{
    struct compose_batch *cb = w->data;
    struct engine *e = cb->e;
    bool shared = false;
    for (size_t i = 0; i < cb->n; i++) {
        struct body *b = cb->bodies[i];
        if (status)
            b->err = status;
        b->ready = true;
        b->composing = false;
        /* more than one item and the batch: maybe items of several
         * destinations, some waiting for a body another one asked for */
        shared |= b->refs > 2;
        body_unref(e, b); /* the batch's own reference */
    }
    e->composing--;
    for (size_t i = 0; i < cb->ndests; i++)
        dest_kick(e, cb->dests[i]);
    signer_unref(cb->signer);
    free(cb);
    if (!shared)
        return; /* whoever waits for these bodies asked for them: kicked */
    /* destinations that found their next body still being composed */
    struct dest *wd = e->waiting_head;
    e->waiting_head = NULL;
    while (wd) {
        struct dest *next = wd->wnext;
        wd->waiting = false;
        dest_kick(e, wd);
        wd = next;
    }
}

/* Send the gathered batch to the worker pool. */
static void flush_compose(struct engine *e)
{
    struct compose_batch *cb = e->gather;
    if (!cb)
        return;
    e->gather = NULL;
    for (size_t i = 0; i < cb->ndests; i++)
        cb->dests[i]->compose_asked = false;
    cb->signer = signer_ref(e->signer);
    e->composing++;
    if (uv_queue_work(e->loop, &cb->work, compose_work, compose_done)) {
        compose_work(&cb->work); /* cannot happen with a live loop */
        compose_done(&cb->work, 0);
    }
}

/* Once per loop turn: whatever was asked for goes to the pool together. */
static void on_check(uv_check_t *h)
{
    flush_compose(h->data);
}

/* Ask for bodies to be composed for destination d.  Requests made in one
 * turn of the loop travel to the worker pool together, a batch at most
 * COMPOSE_BATCH bodies. */
void engine_compose(struct engine *e, struct body **bodies, size_t n,
                    struct dest *d)
{
    for (size_t i = 0; i < n; i++) {
        struct compose_batch *cb = e->gather;
        if (cb && (cb->n == COMPOSE_BATCH ||
                   (cb->ndests == COMPOSE_BATCH && !d->compose_asked))) {
            flush_compose(e);
            cb = NULL;
        }
        if (!cb) {
            if (!(cb = calloc(1, sizeof *cb))) {
                for (; i < n; i++) {
                    bodies[i]->ready = true;
                    bodies[i]->err = -ENOMEM;
                }
                return;
            }
            cb->work.data = cb;
            cb->e = e;
            e->gather = cb;
        }
        if (!d->compose_asked) {
            d->compose_asked = true;
            cb->dests[cb->ndests++] = d;
        }
        cb->bodies[cb->n++] = bodies[i];
        bodies[i]->refs++;
        bodies[i]->composing = true;
    }
}

/* ---------------------------------------------------------------- claims */

/* A campaign's name in the controls: its decimal id. */
static const char *campaign_name(uint64_t id)
{
    static char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)id);
    return buf;
}

/* Turn one claim into an item filed under its destination. */
static struct dest *file_claim(struct engine *e, const struct queue_claim *c)
{
    size_t len = strlen(c->rcpt);
    struct item *it = malloc(sizeof *it + len + 1);
    if (!it)
        return NULL;
    memset(it, 0, sizeof *it);
    it->id = c->id;
    it->campaign = c->campaign;
    it->ref = c->ref;
    it->account = c->account;
    it->attempts = c->attempts;
    it->created = c->created;
    memcpy(it->rcpt, c->rcpt, len + 1);
    e->inflight++;
    e->st.claimed++;

    if (engine_now() >= c->created + e->cfg.max_age) {
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_EXPIRED,
                                   .enhanced = "4.4.7",
                                   .category = QUEUE_CAT_EXPIRED,
                                   .text = "maximum age reached before "
                                           "delivery" };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    int64_t hold = c->account ? accounts_hold(e, it) : 0;
    if (hold) {
        /* a disabled account (parked until it is enabled), or one at its
         * daily cap (until the next UTC day): the mail waits in the
         * spool */
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_NONE,
                                   .retry_at = hold };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    if (c->campaign && (c->cancelled ||
                        engine_paused(e, QUEUE_CTL_CANCELLED,
                                      campaign_name(c->campaign)))) {
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_EXPIRED,
                                   .enhanced = "5.0.0",
                                   .category = QUEUE_CAT_OTHER,
                                   .text = "campaign cancelled" };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    if (c->campaign && engine_paused(e, QUEUE_CTL_CAMPAIGN,
                                     campaign_name(c->campaign))) {
        /* parked in the spool until `sluice campaign resume` */
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_NONE,
                                   .retry_at = queue_park_time(c->campaign) };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    /* a campaign recipient's body is its own (rendered for it); a message's
     * is shared by its recipients */
    bool fresh;
    struct body *b = body_get(e, c->campaign ? c->id | CAMPAIGN_BODY : c->ref,
                              &fresh);
    if (!b) {
        queue_release(e->q, c->id);
        e->inflight--;
        free(it);
        return NULL;
    }
    if (fresh) { /* composed when its destination gets near it */
        b->account = c->account;
        b->campaign = c->campaign;
        b->contact = c->campaign ? c->ref : 0;
        b->delivery = c->id;
    }
    b->refs++;
    it->body = b;
    struct dest *d = dest_get(e, c->rcpt + c->domain_off);
    if (!d) {
        engine_item_free(e, it);
        queue_release(e->q, c->id);
        e->inflight--;
        return NULL;
    }
    int64_t until;
    if (d->paused) {
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_NONE,
                                   .retry_at = engine_now() +
                                               e->cfg.pause_recheck_ms / 1000 };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    if (d->site && site_stopped(d->site, &until)) {
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_NONE,
                                   .retry_at = until ? (until + 999) / 1000
                                                     : engine_now() +
                                                       e->cfg.pause_recheck_ms / 1000 };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    /* a slow or throttled site holds at most a share of the in-flight
     * budget in memory; the rest waits in the spool */
    unsigned cap = e->cfg.max_inflight / 4;
    if (cap > DEST_MAX_WAITING)
        cap = DEST_MAX_WAITING;
    if (cap < 100)
        cap = 100;
    if (d->nitems >= cap || (d->site && d->site->waiting >= cap)) {
        /* a slow or throttled destination holds at most this many in
         * memory; the rest wait in the spool, so it never starves others */
        struct queue_outcome o = { .delivery = c->id, .type = QUEUE_EV_NONE,
                                   .retry_at = engine_now() + 15 };
        engine_record(e, &it, 1, &o);
        return NULL;
    }
    dest_add_item(e, d, it);
    return d;
}

static void apply_admin(struct engine *e);

/* Claims of a held account: an enable may have made this mail due before
 * the once-a-second look saw it; look now, rather than park it again. */
static void recheck_held(struct engine *e, const struct queue_claim *c,
                         int n)
{
    for (int i = 0; i < n; i++)
        if (c[i].account && accounts_held(e, c[i].account)) {
            apply_admin(e);
            return;
        }
}

/* Claim what is due, up to the in-flight limit.  A claim that fails is
 * counted towards the spool's error budget (engine_spool_result). */
static void claim_some(struct engine *e)
{
    static struct queue_claim claims[1024];
    while (!e->draining && engine_spool_writable(e) &&
           e->inflight < e->cfg.max_inflight) {
        size_t want = e->cfg.max_inflight - e->inflight;
        if (want > e->cfg.claim_batch)
            want = e->cfg.claim_batch;
        if (want > 1024)
            want = 1024;
        int n = queue_claim(e->q, engine_now(), claims, want);
        engine_spool_result(e, ENGINE_SPOOL_CLAIM, n < 0 ? n : 0);
        if (n < 0)
            break;
        recheck_held(e, claims, n);
        for (int i = 0; i < n; i++) {
            struct dest *d = file_claim(e, &claims[i]);
            if (d)
                dest_kick(e, d);
        }
        if ((size_t)n < want)
            break;
    }
}

/* ---------------------------------------------------------------- pauses */

struct paused_list {
    struct queue_control *v;
    size_t n, cap;
};

static int collect_control(void *arg, const struct queue_control *c)
{
    struct paused_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct queue_control *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return 1;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = *c;
    return 0;
}

static bool is_paused(const struct paused_list *l, int kind, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].kind == kind && !strcmp(l->v[i].name, name))
            return true;
    return false;
}

/* Apply the spool's pause list when it has changed (`sluice pause`). */
static void apply_controls(struct engine *e)
{
    uint64_t gen;
    if (queue_controls_gen(e->q, &gen) || (e->controls_read &&
                                           gen == e->controls_gen))
        return;
    struct paused_list l = { 0 };
    if (queue_controls(e->q, collect_control, &l) < 0) {
        free(l.v);
        return;
    }
    e->controls_gen = gen;
    e->controls_read = true;
    for (size_t b = 0; b < e->scap; b++)
        for (struct site *s = e->stab[b]; s; s = s->hnext)
            site_set_paused(s, is_paused(&l, QUEUE_CTL_SITE, s->name));
    for (size_t b = 0; b < e->dcap; b++)
        for (struct dest *d = e->dtab[b]; d; d = d->hnext) {
            bool p = is_paused(&l, QUEUE_CTL_DOMAIN, d->domain);
            if (p != d->paused) {
                d->paused = p;
                eventlog_pause(e, d->domain, p);
                dest_kick(e, d);
            }
        }
    /* campaigns paused or cancelled since the last look: their waiting
     * mail is parked in the spool or ended now, not when it comes up */
    for (size_t i = 0; i < l.n; i++) {
        const struct queue_control *c = &l.v[i];
        if ((c->kind != QUEUE_CTL_CAMPAIGN && c->kind != QUEUE_CTL_CANCELLED) ||
            engine_paused(e, c->kind, c->name))
            continue;
        unsigned long long id;
        char *end;
        errno = 0;
        id = strtoull(c->name, &end, 10);
        if (errno || *end || !id)
            continue;
        struct queue_outcome o = { .type = QUEUE_EV_NONE,
                                   .retry_at = queue_park_time(id) };
        if (c->kind == QUEUE_CTL_CANCELLED)
            o = (struct queue_outcome){ .type = QUEUE_EV_EXPIRED,
                                        .enhanced = "5.0.0",
                                        .category = QUEUE_CAT_OTHER,
                                        .text = "campaign cancelled" };
        dest_drop_campaign(e, id, &o);
    }
    free(e->paused_sites);
    e->paused_sites = l.v; /* kept for sites and domains seen later */
    e->npaused = l.n;
}

bool engine_paused(const struct engine *e, int kind, const char *name)
{
    for (size_t i = 0; i < e->npaused; i++)
        if (e->paused_sites[i].kind == kind &&
            !strcmp(e->paused_sites[i].name, name))
            return true;
    return false;
}

/* ------------------------------------------------------------------ tick */

static void print_progress(struct engine *e, bool final)
{
    static uint64_t last_ms, last_done;
    uint64_t now = engine_now_ms();
    uint64_t done = e->st.delivered + e->st.bounced + e->st.expired;
    if (!final && now - last_ms < 1000)
        return;
    double rate = last_ms ? (double)(done - last_done) * 1000.0 /
                            (double)(now - last_ms) : 0;
    last_ms = now;
    last_done = done;
    fprintf(stderr, "%sdelivered %llu  deferred %llu  bounced %llu  expired "
            "%llu  | %6.0f msg/s | sessions %u  in flight %zu%s",
            isatty(2) ? "\r" : "", (unsigned long long)e->st.delivered,
            (unsigned long long)e->st.deferred,
            (unsigned long long)e->st.bounced,
            (unsigned long long)e->st.expired, rate, e->sessions, e->inflight,
            isatty(2) && !final ? "   " : "\n");
}

/* Accounts, sending domains or keys changed in the spool (`sluice account`,
 * `sluice domain`): load them again (a disabled account's waiting mail
 * goes back to the spool in accounts_load()).  A key that cannot be loaded
 * keeps the running keys (and says why). */
static void apply_admin(struct engine *e)
{
    uint64_t gen;
    if (queue_admin_gen(e->q, &gen) || gen == e->admin_gen)
        return;
    e->admin_gen = gen;
    accounts_load(e);
    limits_load(e);
    struct signer *sg;
    char err[600];
    if (signer_build(&e->cfg, e->q, &sg, err, sizeof err)) {
        fprintf(stderr, "sluiced: keeping the running DKIM keys: %s\n", err);
        return;
    }
    signer_unref(e->signer);
    e->signer = sg;
}

static void stop_loop(struct engine *e)
{
    uv_timer_stop(&e->tick);
    uv_stop(e->loop);
}

static void on_tick(uv_timer_t *t)
{
    struct engine *e = t->data;
    static uint64_t last_empty_check;

    if (e->progress)
        print_progress(e, false);
    eventlog_pump(e, false);
    static uint64_t last_status;
    if (engine_now_ms() - last_status >= 1000) {
        last_status = engine_now_ms();
        apply_controls(e);
        apply_admin(e);
        status_write(e);
    }

    if (e->draining) {
        if (!e->drain_abort && engine_now_ms() >= e->drain_deadline_ms) {
            e->drain_abort = true;
            dest_abort_all(e);
        }
        if (e->sessions == 0 && e->pending_outcomes == 0 && !e->composing &&
            record_drained(e))
            stop_loop(e);
        return;
    }
    claim_some(e);
    if (e->exit_when_empty && e->inflight == 0 && e->pending_outcomes == 0 &&
        engine_now_ms() - last_empty_check >= 200) {
        struct queue_counts c;
        last_empty_check = engine_now_ms();
        int err = queue_counts_total(e->q, &c);
        engine_spool_result(e, ENGINE_SPOOL_COUNTS, err);
        if (!err && c.queued == 0) {
            e->draining = true;
            e->drain_deadline_ms = engine_now_ms() + e->cfg.drain_timeout_ms;
            dest_quit_idle(e);
        }
    }
}

/* Begin the orderly stop: no new sessions, in-flight ones finish. */
void engine_drain(struct engine *e)
{
    if (e->draining)
        return;
    e->draining = true;
    e->drain_deadline_ms = engine_now_ms() + e->cfg.drain_timeout_ms;
    dest_quit_idle(e);
}

int engine_start(struct engine *e)
{
    struct queue_options qo = {
        .flags = QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM |
                 (e->cfg.nosync ? QUEUE_OPEN_NOSYNC : 0) |
                 (e->create ? QUEUE_OPEN_RECREATE : 0),
        .group_ops = e->cfg.group_ops, .group_ms = e->cfg.group_ms,
        .map_max = e->cfg.map_max, .retry_steps = e->cfg.retry_steps,
        .max_age = e->cfg.max_age, .trim_ms = 50,
        .soft_bounce_limit = e->cfg.soft_bounce_limit,
        .soft_bounce_days = e->cfg.soft_bounce_days,
    };
    classify_use_rules(e->cfg.bounce_rules);
    memcpy(qo.retry, e->cfg.retry, sizeof qo.retry);
    int err = queue_open(&e->q, e->cfg.spool, &qo);
    if (err) {
        fprintf(stderr, "sluiced: spool %s: %s\n  %s\n", e->cfg.spool,
                queue_strerror(err), queue_last_detail());
        return err;
    }
    if ((err = queue_completer_new(e->loop, &e->cmp)))
        return err;
    struct dns_config dc;
    dns_config_init(&dc);
    dc.servers = e->cfg.dns_servers;
    dc.timeout_ms = e->cfg.dns_timeout_ms;
    dc.tries = e->cfg.dns_tries;
    dc.port = e->cfg.smtp_port;
    if ((err = dns_new(e->loop, &dc, &e->dns))) {
        fprintf(stderr, "sluiced: DNS: %s\n", dns_strerror(err));
        return err;
    }
    char msg[256];
    if (!(e->ssl = tls_client_ctx(e->cfg.tls_ca_file, msg, sizeof msg)))
        fprintf(stderr, "sluiced: TLS disabled: %s\n", msg);
    e->started_ms = engine_now_ms();
    record_init(e);
    queue_admin_gen(e->q, &e->admin_gen);
    accounts_load(e);
    limits_load(e);
    struct signer *sg;
    char kerr[600];
    if (signer_build(&e->cfg, e->q, &sg, kerr, sizeof kerr)) {
        fprintf(stderr, "sluiced: %s\n", kerr);
        return ENGINE_E_CONFIG;
    }
    signer_unref(e->signer);
    e->signer = sg;
    uv_timer_init(e->loop, &e->limits_timer);
    uv_unref((uv_handle_t *)&e->limits_timer);
    apply_controls(e);
    uv_check_init(e->loop, &e->compose_check);
    e->compose_check.data = e;
    uv_check_start(&e->compose_check, on_check);
    uv_unref((uv_handle_t *)&e->compose_check);
    uv_timer_init(e->loop, &e->tick);
    e->tick.data = e;
    uv_timer_start(&e->tick, on_tick, 0, 10);
    return 0;
}
