/*
 * live.c - live limits (`sluice limits set`) as the engine applies them.
 *
 * DESCRIPTION
 *   The spool keeps live limits as text per target and key (queue_limits);
 *   live_load() reads them when the admin generation moves and when the
 *   earliest of them ends, and builds one policy per site or domain
 *   named: a copy of the configuration's policy (the [site] or [domain]
 *   section, shipped profile under it) with the live keys set by the
 *   file's own rule (config_limit_set).  live_policy() hands sites and
 *   destinations that copy instead of the configuration's, so a running
 *   engine changes its limits without a reload and keeps each site's
 *   state (sessions, schedule, backoff).  Account and campaign rates are
 *   read by limits.c through live_id_rate().
 *
 * OWNERSHIP
 *   The copies belong to the engine; each is replaced whole on a change
 *   after every site and destination has been pointed at its successor.
 *   Their name and route_host point into e->cfg (never freed here).
 *
 * DIAGNOSTICS
 *   A value the rule refuses (a spool written by a newer tool, say) is
 *   skipped with a line on stderr; a spool that cannot be read keeps the
 *   limits in force.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "queue_admin.h"

/* One live key as read from the spool. */
struct live_key {
    char kind;
    char name[QUEUE_MAX_LIMIT_NAME + 1];
    char key[QUEUE_MAX_LIMIT_KEY + 1];
    char value[QUEUE_MAX_LIMIT_VALUE + 1];
    int64_t expires_ms;
};

/* A site or domain with live keys: the configuration's policy with them
 * set. */
struct live_target {
    char kind;                  /* 's' or 'd' */
    char name[QUEUE_MAX_LIMIT_NAME + 1];
    unsigned keys;              /* 1 << CONFIG_LK_* set live */
    struct domain_policy pol;
};

struct live_list {
    struct live_key *v;
    size_t n, cap;
};

/* queue_limits() callback: keep one entry. */
static int collect(void *arg, const struct queue_limit *l)
{
    struct live_list *ll = arg;
    if (ll->n == ll->cap) {
        size_t ncap = ll->cap ? ll->cap * 2 : 16;
        struct live_key *nv = realloc(ll->v, ncap * sizeof *nv);
        if (!nv)
            return 1;
        ll->v = nv;
        ll->cap = ncap;
    }
    struct live_key *k = &ll->v[ll->n++];
    k->kind = l->kind;
    memcpy(k->name, l->name, sizeof k->name);
    memcpy(k->key, l->key, sizeof k->key);
    memcpy(k->value, l->value, sizeof k->value);
    k->expires_ms = l->expires_ms;
    return 0;
}

/* The configuration's policy of a site or domain target, or NULL (a site
 * the configuration does not name). */
static const struct domain_policy *base_policy(const struct engine *e,
                                               char kind, const char *name)
{
    if (kind == 'd')
        return config_domain(&e->cfg, name);
    for (size_t i = 0; i < e->cfg.nsites; i++)
        if (!strcmp(e->cfg.sites[i].lim.name, name))
            return &e->cfg.sites[i].lim;
    return NULL;
}

const struct domain_policy *live_policy(const struct engine *e, char kind,
                                        const char *name,
                                        const struct domain_policy *base)
{
    for (size_t i = 0; i < e->live.n; i++) {
        const struct live_target *t = e->live.v[i];
        if (t->kind == kind && !strcmp(t->name, name))
            return &t->pol;
    }
    return base;
}

/* The target for k in v (made from the configuration's policy), or NULL
 * when the configuration has no such site or memory ran out. */
static struct live_target *target_for(struct engine *e,
                                      struct live_target ***v, size_t *n,
                                      const struct live_key *k)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i]->kind == k->kind && !strcmp((*v)[i]->name, k->name))
            return (*v)[i];
    const struct domain_policy *base = base_policy(e, k->kind, k->name);
    if (!base)
        return NULL;
    struct live_target **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    *v = nv;
    struct live_target *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = k->kind;
    memcpy(t->name, k->name, sizeof t->name);
    t->pol = *base;
    nv[(*n)++] = t;
    return t;
}

/* dest_foreach(): point a destination at its policy now. */
static void repoint_dest(struct dest *d, void *arg)
{
    struct engine *e = arg;
    d->pol = live_policy(e, 'd', d->domain, config_domain(&e->cfg, d->domain));
}

/* Build the live policies from the keys in force, point every site and
 * destination at them, then free the old ones. */
static void live_build(struct engine *e)
{
    struct live_target **v = NULL, **old = e->live.v;
    size_t n = 0, nold = e->live.n;
    char err[300];
    e->live.next_end_ms = 0;
    e->live.nid = 0;
    for (size_t i = 0; i < e->live.nkeys; i++) {
        const struct live_key *k = &e->live.keys[i];
        if (k->expires_ms && (!e->live.next_end_ms ||
                              k->expires_ms < e->live.next_end_ms))
            e->live.next_end_ms = k->expires_ms;
        if (k->kind == 'a' || k->kind == 'c') {
            e->live.nid++;
            continue;
        }
        struct live_target *t = target_for(e, &v, &n, k);
        if (!t)
            continue;
        int lk = config_limit_key_find(k->key);
        if (config_limit_set(k->kind, &t->pol, k->key, k->value, err,
                             sizeof err)) {
            fprintf(stderr, "sluiced: live limit %s %s %s=%s skipped: %s\n",
                    k->kind == 's' ? "site" : "domain", k->name, k->key,
                    k->value, err);
            continue;
        }
        t->keys |= 1u << lk;
    }
    e->live.v = v;
    e->live.n = n;
    dest_foreach(e, repoint_dest, e);
    site_refresh_policies(e);
    for (size_t i = 0; i < nold; i++)
        free(old[i]);
    free(old);
}

void live_load(struct engine *e)
{
    struct live_list ll = { 0 };
    long n = queue_limits(e->q, (int64_t)engine_now_ms(), collect, &ll);
    if (n < 0 || ll.n < (size_t)n) {
        free(ll.v);
        return;   /* the limits in force stay */
    }
    free(e->live.keys);
    e->live.keys = ll.v;
    e->live.nkeys = ll.n;
    live_build(e);
}

void live_rebuild(struct engine *e)
{
    live_build(e);
}

bool live_tick(struct engine *e)
{
    if (!e->live.next_end_ms ||
        (int64_t)engine_now_ms() < e->live.next_end_ms)
        return false;
    live_load(e);
    return true;
}

bool live_id_rate(const struct engine *e, char kind, uint64_t id,
                  struct rate *r)
{
    char name[24], err[200];
    snprintf(name, sizeof name, "%llu", (unsigned long long)id);
    for (size_t i = 0; i < e->live.nkeys; i++) {
        const struct live_key *k = &e->live.keys[i];
        if (k->kind != kind || strcmp(k->name, name) ||
            strcmp(k->key, "max_rate"))
            continue;
        struct domain_policy p = { 0 };
        if (config_limit_set(kind, &p, k->key, k->value, err, sizeof err))
            return false;
        *r = p.max_rate;
        return true;
    }
    return false;
}

size_t live_ids(const struct engine *e, char *kinds, uint64_t *ids,
                size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < e->live.nkeys && n < cap; i++) {
        const struct live_key *k = &e->live.keys[i];
        char *end;
        unsigned long long id;
        if ((k->kind != 'a' && k->kind != 'c') || strcmp(k->key, "max_rate"))
            continue;
        id = strtoull(k->name, &end, 10);
        if (*end || !id)
            continue;
        kinds[n] = k->kind;
        ids[n++] = id;
    }
    return n;
}

unsigned live_keys_of(const struct engine *e, char kind, const char *name)
{
    for (size_t i = 0; i < e->live.n; i++)
        if (e->live.v[i]->kind == kind && !strcmp(e->live.v[i]->name, name))
            return e->live.v[i]->keys;
    return 0;
}

void live_free(struct engine *e)
{
    for (size_t i = 0; i < e->live.n; i++)
        free(e->live.v[i]);
    free(e->live.v);
    free(e->live.keys);
    memset(&e->live, 0, sizeof e->live);
}
