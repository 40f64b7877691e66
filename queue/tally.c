/*
 * tally.c - what the rows say the counters and reference counts must be.
 *
 * DESCRIPTION
 *   The spool keeps derived records: counters per total, account, campaign
 *   and domain (counters.c) and, per stored message, the number of its
 *   recipients not yet ended (msgrefs).  Deliveries and events are never
 *   deleted, so both can be counted again from them: a delivery counts as
 *   enqueued and in its state, a deferral event as deferred, a queued
 *   delivery of an injected message as one reference.  check.c compares
 *   the stored records with the tally, salvage.c writes the tally.
 *
 *   A hash table of byte keys (the counter keys of counters.c, and 'm' u64
 *   message id) to six counts, keys kept in one arena.  It stops growing at
 *   TALLY_MAX_KEYS keys; tally_full() then says the counts are incomplete.
 *
 * DIAGNOSTICS
 *   Out of memory, like the cap, marks the tally full (incomplete).
 */
#include <stdlib.h>
#include <string.h>

#include "check_int.h"

#define TKEY_MAX 257

struct tally_ent {
    size_t off;
    uint16_t len;
    bool taken;
    uint64_t c[CF_COUNT];
};

struct tally {
    struct tally_ent *ents;
    size_t n, cap;
    uint32_t *index;         /* 1-based entry numbers, 0 empty */
    size_t icap;
    unsigned char *arena;
    size_t alen, acap;
    bool full;
};

struct tally *tally_new(void)
{
    return calloc(1, sizeof(struct tally));
}

void tally_free(struct tally *t)
{
    if (!t)
        return;
    free(t->ents);
    free(t->index);
    free(t->arena);
    free(t);
}

bool tally_full(const struct tally *t)
{
    return t->full;
}

/* FNV-1a of a key. */
static uint64_t hash(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Rebuild the index at twice the size. */
static bool regrow(struct tally *t)
{
    size_t ncap = t->icap ? t->icap * 2 : 1024;
    uint32_t *idx = calloc(ncap, sizeof *idx);
    if (!idx)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = (size_t)hash(t->arena + t->ents[i].off, t->ents[i].len) &
                   (ncap - 1);
        while (idx[j])
            j = (j + 1) & (ncap - 1);
        idx[j] = (uint32_t)(i + 1);
    }
    free(t->index);
    t->index = idx;
    t->icap = ncap;
    return true;
}

/* The entry of key; added when add is set (NULL if absent or full). */
static struct tally_ent *find(struct tally *t, const unsigned char *key,
                              size_t len, bool add)
{
    if (len > TKEY_MAX)
        return NULL;
    if (t->icap) {
        size_t j = (size_t)hash(key, len) & (t->icap - 1);
        for (; t->index[j]; j = (j + 1) & (t->icap - 1)) {
            struct tally_ent *e = &t->ents[t->index[j] - 1];
            if (e->len == len && !memcmp(t->arena + e->off, key, len))
                return e;
        }
    }
    if (!add || t->full)
        return NULL;
    if (t->n >= TALLY_MAX_KEYS) {
        t->full = true;
        return NULL;
    }
    if ((t->n + 1) * 2 > t->icap && !regrow(t)) {
        t->full = true;
        return NULL;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 256;
        struct tally_ent *ne = realloc(t->ents, ncap * sizeof *ne);
        if (!ne) {
            t->full = true;
            return NULL;
        }
        t->ents = ne;
        t->cap = ncap;
    }
    if (t->alen + len > t->acap) {
        size_t ncap = t->acap ? t->acap * 2 : 4096;
        while (ncap < t->alen + len)
            ncap *= 2;
        unsigned char *na = realloc(t->arena, ncap);
        if (!na) {
            t->full = true;
            return NULL;
        }
        t->arena = na;
        t->acap = ncap;
    }
    struct tally_ent *e = &t->ents[t->n++];
    memset(e, 0, sizeof *e);
    e->off = t->alen;
    e->len = (uint16_t)len;
    memcpy(t->arena + t->alen, key, len);
    t->alen += len;
    size_t j = (size_t)hash(key, len) & (t->icap - 1);
    while (t->index[j])
        j = (j + 1) & (t->icap - 1);
    t->index[j] = (uint32_t)t->n;
    return e;
}

/* Add by to field f of the counters of (account, campaign, domain). */
static void add_counters(struct tally *t, uint32_t account, uint64_t campaign,
                         const char *domain, int f)
{
    unsigned char key[TKEY_MAX];
    struct tally_ent *e;
    key[0] = 't';
    if ((e = find(t, key, 1, true)))
        e->c[f]++;
    key[0] = 'a';
    be32_put(key + 1, account);
    if ((e = find(t, key, 5, true)))
        e->c[f]++;
    if (campaign) {
        key[0] = 'c';
        be64_put(key + 1, campaign);
        if ((e = find(t, key, 9, true)))
            e->c[f]++;
    }
    size_t dl = strlen(domain);
    if (dl > TKEY_MAX - 2)
        dl = TKEY_MAX - 2; /* counters.c cuts the key the same way */
    key[0] = 'd';
    memcpy(key + 1, domain, dl);
    if ((e = find(t, key, dl + 1, true)))
        e->c[f]++;
}

void tally_delivery(struct tally *t, const struct queue_delivery *d)
{
    const char *dom = qrcpt_domain(d->rcpt);
    add_counters(t, d->account, d->campaign, dom, CF_ENQUEUED);
    switch (d->state) {
    case QUEUE_ST_QUEUED:
        add_counters(t, d->account, d->campaign, dom, CF_QUEUED);
        if (!d->campaign) {
            unsigned char key[9] = { 'm' };
            be64_put(key + 1, d->ref);
            struct tally_ent *e = find(t, key, 9, true);
            if (e)
                e->c[0]++;
        }
        break;
    case QUEUE_ST_DELIVERED:
        add_counters(t, d->account, d->campaign, dom, CF_DELIVERED);
        break;
    case QUEUE_ST_BOUNCED:
        add_counters(t, d->account, d->campaign, dom, CF_BOUNCED);
        break;
    case QUEUE_ST_EXPIRED:
        add_counters(t, d->account, d->campaign, dom, CF_EXPIRED);
        break;
    case QUEUE_ST_SUPPRESSED:
        add_counters(t, d->account, d->campaign, dom, CF_SUPPRESSED);
        break;
    case QUEUE_ST_CANCELLED:
        add_counters(t, d->account, d->campaign, dom, CF_CANCELLED);
        break;
    }
}

void tally_deferral(struct tally *t, const struct queue_event *e)
{
    add_counters(t, e->account, e->campaign, qrcpt_domain(e->rcpt),
                 CF_DEFERRED);
}

void tally_take(struct tally *t, const unsigned char *key, size_t klen,
                uint64_t c[CF_COUNT])
{
    struct tally_ent *e = find(t, key, klen, false);
    memset(c, 0, CF_COUNT * sizeof *c);
    if (!e)
        return;
    memcpy(c, e->c, sizeof e->c);
    e->taken = true;
}

void tally_rest(struct tally *t,
                void (*cb)(void *arg, const unsigned char *key, size_t klen,
                           const uint64_t c[CF_COUNT]),
                void *arg)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->ents[i].taken)
            cb(arg, t->arena + t->ents[i].off, t->ents[i].len, t->ents[i].c);
}
