/*
 * controls.c - the spool's pause list (`sluice pause`, `sluice campaign
 * pause/cancel`) as the engine applies it.
 *
 * DESCRIPTION
 *   controls_apply() reads the list again when its generation has changed
 *   (once a second, from the tick): sites and destinations named in it are
 *   paused, the others resumed; the waiting mail of a campaign paused or
 *   cancelled since the last look is parked in the spool or ended at once
 *   rather than when it comes up.  engine_paused() answers from the list
 *   as applied, for sites, destinations and claims met later.  A pause
 *   with an end (`sluice pause --for`) holds until then: the list is
 *   applied again once the earliest end has passed, so the site or
 *   domain resumes by itself without a write to the spool.  A campaign's
 *   pause with an end (`sluice campaign pause --for`) needs one: its mail
 *   is parked and its state says paused, so once the end has passed a
 *   worker resumes it (queue_campaign_resume, audited as sluiced's, "pause
 *   ended"), one campaign at a time, tried again every few seconds while
 *   it fails; the list is read again each second until it is done.  A
 *   sluiced that was stopped at the end does it when it starts.  An admin
 *   bounce (`sluice queue bounce`) changes the generation too: the mail
 *   held claimed whose delivery it ended is let go unsent (drop_ended).
 *
 * DIAGNOSTICS
 *   None: a list that cannot be read is read again next time; the one
 *   applied stays meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "incident.h"
#include "queue_admin.h"
#include "queue_campaign.h"
#include "queue_queued.h"

/* A campaign's name in the controls: its decimal id. */
const char *engine_campaign_ctl_name(uint64_t id)
{
    static char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)id);
    return buf;
}

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
        if (l->v[i].kind == kind && !strcmp(l->v[i].name, name) &&
            queue_control_active(&l->v[i], engine_now()))
            return true;
    return false;
}

struct pause_apply {
    struct engine *e;
    const struct paused_list *l;
};

/* site_foreach(): a site is paused when the list names it. */
static void pause_site(struct site *s, void *arg)
{
    struct pause_apply *pa = arg;
    site_set_paused(s, is_paused(pa->l, QUEUE_CTL_SITE, s->name));
}

/* dest_foreach(): a destination is paused when the list names it. */
static void pause_dest(struct dest *d, void *arg)
{
    struct pause_apply *pa = arg;
    dest_set_paused(pa->e, d, is_paused(pa->l, QUEUE_CTL_DOMAIN, d->domain));
}

struct id_list {
    uint64_t *v;
    size_t n, cap;
    bool nomem;
};

/* dest_foreach(): gather the ids of the items waiting at d. */
static void gather_waiting(struct dest *d, void *arg)
{
    struct id_list *l = arg;
    for (struct item *it = d->head; it && !l->nomem; it = it->next) {
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 256;
            uint64_t *nv = realloc(l->v, ncap * sizeof *nv);
            if (!nv) {
                l->nomem = true;
                return;
            }
            l->v = nv;
            l->cap = ncap;
        }
        l->v[l->n++] = it->id;
    }
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* dest_drop_items() picker: an item whose delivery has ended. */
static bool pick_ended(struct engine *e, const struct item *it, void *arg,
                       struct queue_outcome *o)
{
    const struct id_list *ended = arg;
    (void)e;
    if (!bsearch(&it->id, ended->v, ended->n, sizeof *ended->v, id_cmp))
        return false;
    /* the spool refuses it (QUEUE_ESTATE): the item is only let go */
    *o = (struct queue_outcome){ .type = QUEUE_EV_BOUNCED,
                                 .category = QUEUE_CAT_ADMIN,
                                 .enhanced = "5.0.0",
                                 .text = "ended in the spool meanwhile" };
    return true;
}

/* Let go of the mail held claimed whose delivery another process ended
 * meanwhile (`sluice queue bounce`): it is not sent.  What is in an SMTP
 * transaction already goes on; its outcome finds the delivery ended. */
static void drop_ended(struct engine *e)
{
    struct id_list l = { 0 };
    dest_foreach(e, gather_waiting, &l);
    unsigned char *ended = l.n && !l.nomem ? malloc(l.n) : NULL;
    if (ended && !queue_deliveries_ended(e->q, l.v, l.n, ended)) {
        size_t k = 0;
        for (size_t i = 0; i < l.n; i++)
            if (ended[i])
                l.v[k++] = l.v[i];
        l.n = k;
        qsort(l.v, l.n, sizeof *l.v, id_cmp);
        if (l.n)
            dest_drop_items(e, pick_ended, &l);
    }
    free(ended);
    free(l.v);
}

/* Resuming a campaign whose pause has ended, on a worker. */
struct resume_job {
    uv_work_t req;
    struct engine *e;
    uint64_t id;
    int err;
};

/* uv_work_cb: the resume, through the writer. */
static void resume_work(uv_work_t *req)
{
    struct resume_job *r = req->data;
    struct queue_actor by = { .user = "sluiced", .via = "pause ended",
                              .role = QUEUE_ROLE_OWNER };
    r->err = queue_campaign_resume(r->e->q, r->id, &by);
}

/* uv_after_work_cb: a failure is tried again in a few seconds; a campaign
 * no longer paused (resumed or cancelled meanwhile) is left alone, its
 * control is gone with that change. */
static void resume_done(uv_work_t *req, int status)
{
    struct resume_job *r = req->data;
    struct engine *e = r->e;
    (void)status;
    e->controls.resuming = false;
    if (r->err && r->err != QUEUE_ESTATE && r->err != QUEUE_ENOTFOUND) {
        fprintf(stderr, "sluiced: campaign %llu: resuming after its pause "
                        "ended: %s (tried again in 5 s)\n",
                (unsigned long long)r->id, engine_strerror(r->err));
        e->controls.next_end = engine_now() + 5;
    } else {
        e->controls.next_end = engine_now(); /* read the list again */
    }
    free(r);
}

/* Start resuming the first campaign of l whose pause has ended. */
static void resume_ended(struct engine *e, const struct paused_list *l,
                         int64_t now)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct queue_control *c = &l->v[i];
        if (c->kind != QUEUE_CTL_CAMPAIGN || !c->until || c->until > now)
            continue;
        /* read again next second until the resume has committed */
        if (!e->controls.next_end || e->controls.next_end > now + 1)
            e->controls.next_end = now + 1;
        if (e->controls.resuming)
            return;
        char *end;
        errno = 0;
        unsigned long long id = strtoull(c->name, &end, 10);
        struct resume_job *r;
        if (errno || *end || !id || !(r = calloc(1, sizeof *r)))
            continue;
        r->e = e;
        r->id = id;
        r->req.data = r;
        if (uv_queue_work(e->loop, &r->req, resume_work, resume_done)) {
            free(r);
            return;
        }
        e->controls.resuming = true;
        return;
    }
}

void controls_wait(struct engine *e)
{
    while (e->controls.resuming)
        uv_run(e->loop, UV_RUN_ONCE);
}

/* Apply the spool's pause list when it has changed (`sluice pause`). */
void controls_apply(struct engine *e)
{
    uint64_t gen;
    int64_t now = engine_now();
    bool ended = e->controls.next_end && now >= e->controls.next_end;
    if (queue_controls_gen(e->q, &gen) || (e->controls.read && !ended &&
                                           gen == e->controls.gen))
        return;
    struct paused_list l = { 0 };
    if (queue_controls(e->q, collect_control, &l) < 0) {
        free(l.v);
        return;
    }
    bool changed = !e->controls.read || gen != e->controls.gen;
    e->controls.gen = gen;
    e->controls.read = true;
    e->controls.next_end = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].until > now && (!e->controls.next_end ||
                                   l.v[i].until < e->controls.next_end))
            e->controls.next_end = l.v[i].until;
    resume_ended(e, &l, now);
    struct pause_apply pa = { e, &l };
    site_foreach(e, pause_site, &pa);
    dest_foreach(e, pause_dest, &pa);
    /* campaigns paused or cancelled since the last look: their waiting
     * mail is parked in the spool or ended now, not when it comes up */
    for (size_t i = 0; i < l.n; i++) {
        const struct queue_control *c = &l.v[i];
        if ((c->kind != QUEUE_CTL_CAMPAIGN && c->kind != QUEUE_CTL_CANCELLED) ||
            !queue_control_active(c, now) ||
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
            o = (struct queue_outcome){ .type = QUEUE_EV_CANCELLED,
                                        .enhanced = "5.0.0",
                                        .category = QUEUE_CAT_OTHER,
                                        .text = "campaign cancelled" };
        dest_drop_campaign(e, id, &o);
    }
    free(e->controls.v);
    e->controls.v = l.v; /* kept for sites and domains seen later */
    e->controls.n = l.n;
    if (changed)
        drop_ended(e);
}

bool engine_paused(const struct engine *e, int kind, const char *name)
{
    /* each claim asks: the clock is read only for a name that matches */
    for (size_t i = 0; i < e->controls.n; i++)
        if (e->controls.v[i].kind == kind &&
            !strcmp(e->controls.v[i].name, name) &&
            queue_control_active(&e->controls.v[i], engine_now()))
            return true;
    return false;
}

bool controls_claim(struct engine *e, const struct queue_claim *c,
                    struct item *it, struct queue_outcome *o,
                    bool *domain_paused)
{
    *domain_paused = engine_paused(e, QUEUE_CTL_DOMAIN,
                                   c->rcpt + c->domain_off);
    if (c->campaign && (c->cancelled ||
                        engine_paused(e, QUEUE_CTL_CANCELLED,
                                      engine_campaign_ctl_name(c->campaign)))) {
        *o = (struct queue_outcome){ .delivery = c->id,
                                     .type = QUEUE_EV_CANCELLED,
                                     .enhanced = "5.0.0",
                                     .category = QUEUE_CAT_OTHER,
                                     .text = "campaign cancelled" };
        return true;
    }
    /* a paused campaign: parked until `sluice campaign resume`; a
     * disabled account: parked until it is enabled; an account at its
     * daily cap: until the next UTC day.  A probe of the incident that
     * paused the campaign or account takes this one through (past its
     * account's hold too). */
    bool paused = c->campaign &&
                  engine_paused(e, QUEUE_CTL_CAMPAIGN,
                                engine_campaign_ctl_name(c->campaign));
    bool disabled = false;
    int64_t hold = paused ? queue_park_time(c->campaign)
                   : c->account ? accounts_hold(e, it, &disabled) : 0;
    if (hold && (paused || disabled) &&
        (it->probe = incidents_probe_claim(e, c)))
        hold = 0;
    if (hold) {
        *o = (struct queue_outcome){ .delivery = c->id, .type = QUEUE_EV_NONE,
                                     .retry_at = hold };
        return true;
    }
    return false;
}

void controls_free(struct engine *e)
{
    free(e->controls.v);
    e->controls.v = NULL;
    e->controls.n = 0;
}
