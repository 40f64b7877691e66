/*
 * limits.c - rate caps per account and per campaign, across all sites.
 *
 * DESCRIPTION
 *   [account N] and [campaign N] sections give a max_rate (and an account's
 *   rate cap in the spool, when the configuration does not name it); each
 *   is a GCRA
 *   schedule like a site's.  A destination building a job skips items
 *   whose account or campaign is ahead of its schedule (so others share
 *   the site meanwhile) and, when nothing else is ready, waits on one
 *   engine timer that wakes the waiting destinations when the earliest
 *   schedule allows.  With no such sections, every check is a single
 *   comparison.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Build the caps from the configuration and the accounts' own rates. */
void limits_load(struct engine *e)
{
    free(e->limits.v);
    e->limits.v = NULL;
    e->limits.n = 0;
    const struct eng_account *accts;
    size_t naccts = accounts_list(e, &accts);
    size_t n = e->cfg.nid_rates + e->live.nid;
    for (size_t i = 0; i < naccts; i++)
        n += accts[i].has_rate;
    if (!n || !(e->limits.v = calloc(n, sizeof *e->limits.v)))
        return;
    for (size_t i = 0; i < e->cfg.nid_rates; i++) {
        e->limits.v[i].kind = e->cfg.id_rates[i].kind;
        e->limits.v[i].id = e->cfg.id_rates[i].id;
        e->limits.v[i].rate = e->cfg.id_rates[i].max_rate;
    }
    e->limits.n = e->cfg.nid_rates;
    /* an account's rate cap from the spool, unless the configuration
     * names that account itself */
    for (size_t i = 0; i < naccts; i++) {
        const struct eng_account *a = &accts[i];
        bool configured = false;
        for (size_t k = 0; k < e->cfg.nid_rates; k++)
            configured |= e->cfg.id_rates[k].kind == 'a' &&
                          e->cfg.id_rates[k].id == a->id;
        if (!a->has_rate || configured)
            continue;
        e->limits.v[e->limits.n++] = (struct id_limit){ .kind = 'a', .id = a->id,
                                                      .rate = a->rate };
    }
    /* a live max_rate (`sluice limits set account|campaign`) beats both */
    char kinds[64];
    uint64_t ids[64];
    size_t nl = live_ids(e, kinds, ids, e->live.nid < 64 ? e->live.nid : 64);
    for (size_t i = 0; i < nl; i++) {
        struct rate r;
        if (!live_id_rate(e, kinds[i], ids[i], &r))
            continue;
        size_t k = 0;
        while (k < e->limits.n && !(e->limits.v[k].kind == kinds[i] &&
                                    e->limits.v[k].id == ids[i]))
            k++;
        if (k == e->limits.n)
            e->limits.v[e->limits.n++] = (struct id_limit){
                .kind = kinds[i], .id = ids[i] };
        e->limits.v[k].rate = r;
    }
}

/* The caps that apply to an item (account, campaign), at most two. */
static size_t caps_of(struct engine *e, const struct item *it,
                      struct id_limit **out)
{
    size_t n = 0;
    for (size_t i = 0; i < e->limits.n && n < 2; i++) {
        struct id_limit *l = &e->limits.v[i];
        if ((l->kind == 'a' && l->id == it->account) ||
            (l->kind == 'c' && it->campaign && l->id == it->campaign))
            out[n++] = l;
    }
    return n;
}

double limits_wait(struct engine *e, const struct item *it)
{
    struct id_limit *c[2];
    double now = (double)uv_now(e->loop), wait = 0;
    size_t n = e->limits.n ? caps_of(e, it, c) : 0;
    for (size_t i = 0; i < n; i++)
        if (c[i]->tat > now && c[i]->tat - now > wait)
            wait = c[i]->tat - now;
    return wait;
}

void limits_charge(struct engine *e, const struct item *it, unsigned n)
{
    struct id_limit *c[2];
    double now = (double)uv_now(e->loop);
    size_t k = e->limits.n ? caps_of(e, it, c) : 0;
    for (size_t i = 0; i < k; i++) {
        double interval = (double)c[i]->rate.per_s * 1000.0 / c[i]->rate.n;
        c[i]->tat = (c[i]->tat > now ? c[i]->tat : now) + interval * n;
    }
}

static void on_limits_timer(uv_timer_t *t)
{
    struct engine *e = t->data;
    struct dest *d = e->limits.head;
    e->limits.head = NULL;
    while (d) {
        struct dest *next = d->lnext;
        d->limit_waiting = false;
        dest_kick(e, d);
        d = next;
    }
}

void limits_wait_dest(struct engine *e, struct dest *d, double ms)
{
    if (!d->limit_waiting) {
        d->limit_waiting = true;
        d->lnext = e->limits.head;
        e->limits.head = d;
    }
    uint64_t due = ms < 1 ? 1 : (uint64_t)ceil(ms);
    if (!uv_is_active((uv_handle_t *)&e->limits.timer) ||
        uv_timer_get_due_in(&e->limits.timer) > due) {
        e->limits.timer.data = e;
        uv_timer_start(&e->limits.timer, on_limits_timer, due, 0);
    }
}

void limits_init(struct engine *e)
{
    uv_timer_init(e->loop, &e->limits.timer);
    uv_unref((uv_handle_t *)&e->limits.timer);
}

void limits_close(struct engine *e)
{
    free(e->limits.v);
    e->limits.v = NULL;
    e->limits.n = 0;
}
