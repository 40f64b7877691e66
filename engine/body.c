/*
 * body.c - composed bodies: the cache that lets the recipients of one
 * message share one body, and the batches that compose them on the
 * worker pool.
 *
 * DESCRIPTION
 *   Recipients of one injected message share one body (a hash by message
 *   id); a campaign recipient's body is its own (rendered for it, keyed by
 *   its delivery id).  A body is composed when its destination gets near
 *   it (body_compose(), from dest.c): requests made in one turn of the
 *   loop travel to the worker pool together, at most COMPOSE_BATCH bodies
 *   a batch, so the loop thread does I/O only.  On the worker a body is
 *   read from the spool and signed (signer.c), or rendered for its
 *   contact (campaign.c); either way signer_compose() writes its wire
 *   forms straight into the body (b->wire, b->wire7).  Back on the loop
 *   the destinations that asked for it, and those that found it still
 *   being composed, are kicked.
 *
 *   Memory is bounded by bytes as well as by count: the bytes of the
 *   composed bodies held (counted from composition until the last item
 *   leaves), with what sessions copied of them into their socket write
 *   queues (smtp_session_queued_bytes()), plus an estimate for each body being composed (the size of
 *   the bodies composed lately: it follows a larger one at once, a
 *   smaller one slowly) stay under max_inflight_bytes.  A body is
 *   composed only while there is room; the destinations that wait for
 *   room are kicked, oldest first, when sent mail frees some.  There is
 *   always room for one body when nothing is held, so a message larger
 *   than the cap still goes (alone); until the first body's size is
 *   known, one is composed at a time.  So what is held stays under the
 *   cap plus about one message.
 *
 * OWNERSHIP
 *   A body lives while an item or a batch holds a reference; the last
 *   body_unref() frees it.  Batches hold a reference to the signer they
 *   started with, so a reload never frees keys under a worker.
 *
 * DIAGNOSTICS
 *   None here: a body that cannot be composed carries its error (and its
 *   text) to its items, which dest.c defers or bounces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "engine.h"
#include "signer.h"

#define COMPOSE_BATCH 8
#define CAMPAIGN_BODY (1ull << 63)   /* body keys of campaign recipients */

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

static size_t body_bucket(const struct body_cache *bc, uint64_t id)
{
    id ^= id >> 31;
    id *= 0x9e3779b97f4a7c15ull;
    return (size_t)(id >> 20) & (bc->cap - 1);
}

/* Double the hash table; 0 or -ENOMEM. */
static int body_grow(struct body_cache *bc)
{
    size_t ncap = bc->cap ? bc->cap * 2 : 1024;
    struct body **n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    size_t oldcap = bc->cap;
    struct body **old = bc->tab;
    bc->tab = n;
    bc->cap = ncap;
    for (size_t i = 0; i < oldcap; i++)
        for (struct body *b = old[i], *next; b; b = next) {
            next = b->hnext;
            size_t k = body_bucket(bc, b->msg_id);
            b->hnext = n[k];
            n[k] = b;
        }
    free(old);
    return 0;
}

/* The body under key (a message id, or a campaign delivery's own key), or
 * a new empty one (refs 0, *fresh set); NULL out of memory. */
static struct body *body_get(struct engine *e, uint64_t key, bool *fresh)
{
    struct body_cache *bc = &e->bodies;
    *fresh = false;
    if (bc->cap) {
        for (struct body *b = bc->tab[body_bucket(bc, key)]; b; b = b->hnext)
            if (b->msg_id == key)
                return b;
    }
    if (bc->n + 1 > bc->cap && body_grow(bc))
        return NULL;
    struct body *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->msg_id = key;
    size_t k = body_bucket(bc, key);
    b->hnext = bc->tab[k];
    bc->tab[k] = b;
    bc->n++;
    *fresh = true;
    return b;
}

bool body_attach(struct engine *e, const struct queue_claim *c,
                 struct item *it)
{
    bool fresh;
    struct body *b = body_get(e, c->campaign ? c->id | CAMPAIGN_BODY
                                             : c->ref, &fresh);
    if (!b)
        return false;
    if (fresh) { /* composed when its destination gets near it */
        b->account = c->account;
        b->campaign = c->campaign;
        b->contact = c->campaign ? c->ref : 0;
        b->delivery = c->id;
    }
    b->refs++;
    it->body = b;
    return true;
}

/* Free one body and what it owns (its bytes leave bc's count). */
static void body_free(struct body_cache *bc, struct body *b)
{
    bc->held -= b->bytes;
    free(b->from);
    free(b->wire.data);
    free(b->wire7.data);
    free(b->errtext);
    free(b);
}

void body_unref(struct engine *e, struct body *b)
{
    struct body_cache *bc = &e->bodies;
    if (!b || --b->refs)
        return;
    struct body **pp = &bc->tab[body_bucket(bc, b->msg_id)];
    while (*pp && *pp != b)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = b->hnext;
    bc->n--;
    body_free(bc, b);
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
    char why[300] = "";
    if (!(b->from = strdup(from))) {
        b->err = -ENOMEM;
        return;
    }
    b->err = signer_compose(t->signer, b->account, msg, len, &b->wire,
                            &b->wire7, why, sizeof why);
    if (b->err && why[0])
        b->errtext = strdup(why);
}

/* Worker thread: compose every body of the batch. */
static void compose_work(uv_work_t *w)
{
    struct compose_batch *cb = w->data;
    for (size_t i = 0; i < cb->n; i++) {
        struct body *b = cb->bodies[i];
        if (b->campaign) {
            char why[300] = "";
            if ((b->err = engine_campaign_compose(cb->e, cb->signer, b, why,
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

/* A body's composition ended: its estimate leaves the reserved bytes,
 * its real size joins the held ones and the estimate follows it. */
static void count_composed(struct body_cache *bc, struct body *b)
{
    bc->reserved -= b->reserved;
    bc->nreserved--;
    b->reserved = 0;
    b->bytes = b->wire.len + b->wire7.len;
    bc->held += b->bytes;
    if (bc->held > bc->peak)
        bc->peak = bc->held;
    if (!b->bytes)
        return; /* not composed (an error): says nothing of the size */
    bc->est = b->bytes > bc->est ? b->bytes
                                 : bc->est - (bc->est - b->bytes) / 8;
}

/* Whether one more body may be composed now (see DESCRIPTION); the
 * copies of bodies the sessions queued for their sockets count too. */
static bool room_for_one(const struct engine *e)
{
    const struct body_cache *bc = &e->bodies;
    uint64_t held = bc->held + smtp_session_queued_bytes();
    if (!bc->est)
        return bc->nreserved == 0 && held < e->cfg.max_inflight_bytes;
    return held + bc->reserved < e->cfg.max_inflight_bytes;
}

bool body_over_budget(const struct engine *e)
{
    return !room_for_one(e);
}

uint64_t body_bytes_held(const struct engine *e)
{
    return e->bodies.held;
}

uint64_t body_bytes_peak(const struct engine *e)
{
    return e->bodies.peak;
}

/* d waits for room (kicked by on_check() when there is some). */
static void wait_for_room(struct body_cache *bc, struct dest *d)
{
    if (d->bytes_waiting)
        return;
    d->bytes_waiting = true;
    DEST_LIST_PUSH(bc->bytes_head, bc->bytes_tail, d, bnext);
}

/* There is room again: kick the destinations that waited for it, oldest
 * first; those that find none left wait again, in the same order. */
static void kick_waiting_for_room(struct engine *e)
{
    struct body_cache *bc = &e->bodies;
    struct dest *d = bc->bytes_head;
    bc->bytes_head = bc->bytes_tail = NULL;
    while (d) {
        struct dest *next = d->bnext;
        d->bytes_waiting = false;
        dest_kick(e, d);
        d = next;
    }
}

/* Loop thread: bodies are ready; wake the destinations waiting for them. */
static void compose_done(uv_work_t *w, int status)
{
    struct compose_batch *cb = w->data;
    struct engine *e = cb->e;
    struct body_cache *bc = &e->bodies;
    bool shared = false;
    for (size_t i = 0; i < cb->n; i++) {
        struct body *b = cb->bodies[i];
        if (status)
            b->err = status;
        b->ready = true;
        b->composing = false;
        count_composed(bc, b);
        /* more than one item and the batch: maybe items of several
         * destinations, some waiting for a body another one asked for */
        shared |= b->refs > 2;
        body_unref(e, b); /* the batch's own reference */
    }
    bc->composing--;
    for (size_t i = 0; i < cb->ndests; i++)
        dest_kick(e, cb->dests[i]);
    signer_unref(cb->signer);
    free(cb);
    if (!shared)
        return; /* whoever waits for these bodies asked for them: kicked */
    /* destinations that found their next body still being composed */
    struct dest *wd = bc->waiting_head;
    bc->waiting_head = NULL;
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
    struct body_cache *bc = &e->bodies;
    struct compose_batch *cb = bc->gather;
    if (!cb)
        return;
    bc->gather = NULL;
    for (size_t i = 0; i < cb->ndests; i++)
        cb->dests[i]->compose_asked = false;
    cb->signer = signer_ref(e->signer);
    bc->composing++;
    if (uv_queue_work(e->loop, &cb->work, compose_work, compose_done)) {
        compose_work(&cb->work); /* cannot happen with a live loop */
        compose_done(&cb->work, 0);
    }
}

/* Once per loop turn: destinations waiting for room have their turn when
 * there is some, then whatever was asked for goes to the pool together. */
static void on_check(uv_check_t *h)
{
    struct engine *e = h->data;
    if (e->bodies.bytes_head && room_for_one(e))
        kick_waiting_for_room(e);
    flush_compose(e);
}

size_t body_compose(struct engine *e, struct body **bodies, size_t n,
                    struct dest *d)
{
    struct body_cache *bc = &e->bodies;
    for (size_t i = 0; i < n; i++) {
        if (!room_for_one(e)) {
            wait_for_room(bc, d);
            return i;
        }
        struct compose_batch *cb = bc->gather;
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
                return n;
            }
            cb->work.data = cb;
            cb->e = e;
            bc->gather = cb;
        }
        if (!d->compose_asked) {
            d->compose_asked = true;
            cb->dests[cb->ndests++] = d;
        }
        cb->bodies[cb->n++] = bodies[i];
        bodies[i]->refs++;
        bodies[i]->composing = true;
        bodies[i]->reserved = bc->est;
        bc->reserved += bc->est;
        bc->nreserved++;
    }
    return n;
}

bool body_stop(const struct body *b, uint64_t delivery,
               struct queue_outcome *o)
{
    if (!b->err)
        return false;
    /* no From: to sign for, or a message the rules refuse (a NUL byte in
     * an old spool's message), is the message's own fault: bounce it; a
     * missing key or a failure here may be fixed: try later */
    bool perm = b->err == SIGNER_E_NOFROM || b->err == SIGNER_E_BADMSG;
    /* suppressed or deleted contacts end without being sent: a suppressed
     * one as "suppressed", a deleted one as "expired" */
    bool drop = b->err == ENGINE_E_SUPPRESSED || b->err == ENGINE_E_GONE;
    *o = (struct queue_outcome){
        .delivery = delivery,
        .type = b->err == ENGINE_E_SUPPRESSED ? QUEUE_EV_SUPPRESSED
                : drop ? QUEUE_EV_EXPIRED
                : perm ? QUEUE_EV_BOUNCED : QUEUE_EV_DEFERRED,
        .enhanced = drop ? "5.7.1" : perm ? "5.6.0"
                    : b->err == SIGNER_E_NOKEY ? "4.7.5" : "4.3.0",
        .category = perm ? QUEUE_CAT_CONTENT : QUEUE_CAT_OTHER,
        .text = b->errtext ? b->errtext : engine_strerror(b->err) };
    return true;
}

void body_wait(struct engine *e, struct dest *d)
{
    struct body_cache *bc = &e->bodies;
    if (d->waiting)
        return;
    d->waiting = true;
    d->wnext = bc->waiting_head;
    bc->waiting_head = d;
}

bool body_composing(const struct engine *e)
{
    return e->bodies.composing > 0;
}

void body_init(struct engine *e)
{
    struct body_cache *bc = &e->bodies;
    uv_check_init(e->loop, &bc->check);
    bc->check.data = e;
    uv_check_start(&bc->check, on_check);
    uv_unref((uv_handle_t *)&bc->check);
}

void body_free_all(struct engine *e)
{
    struct body_cache *bc = &e->bodies;
    for (size_t k = 0; k < bc->cap; k++)
        while (bc->tab && bc->tab[k]) {
            struct body *x = bc->tab[k];
            bc->tab[k] = x->hnext;
            body_free(bc, x);
        }
    free(bc->tab);
    bc->tab = NULL;
    bc->cap = bc->n = 0;
}
