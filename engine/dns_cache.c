/*
 * dns_cache.c - the resolver's per-domain entries: hash table + LRU list.
 *
 * Owns every struct dns_entry and the result it holds. An entry is created
 * when a domain is first asked for, carries the lookup in flight and its
 * waiters, then the answer until it expires or is evicted. The table never
 * grows: buckets are sized once from the configured maximum.
 *
 * Eviction takes the least recently used entry that is idle (no lookup in
 * flight, no waiters, no callbacks running on it). If none of the few at the
 * tail is idle the cache goes over its cap for a while rather than fail;
 * the overshoot is bounded by the lookups in flight. Allocation failure is
 * returned to the caller as NULL / DNS_ENOMEM.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

#define MAX_BUCKETS ((size_t)1 << 20)
#define EVICT_SCAN 16

/* Set up an empty cache for up to max idle entries. */
int dns__cache_init(struct dns_cache *c, size_t max)
{
    size_t n = 16;

    memset(c, 0, sizeof(*c));
    while (n < max && n < MAX_BUCKETS)
        n <<= 1;
    c->buckets = calloc(n, sizeof(*c->buckets));
    if (!c->buckets)
        return DNS_ENOMEM;
    c->mask = n - 1;
    c->max = max ? max : 1;
    return 0;
}

/* Free one entry and what it owns (its waiters must be gone). */
static void entry_free(struct dns_entry *e)
{
    free(e->result);
    free(e);
}

/* Free every entry and the table; the cache is unusable afterwards. */
void dns__cache_free(struct dns_cache *c)
{
    struct dns_entry *e = c->lru_head;

    while (e) {
        struct dns_entry *next = e->lru_next;
        entry_free(e);
        e = next;
    }
    free(c->buckets);
    memset(c, 0, sizeof(*c));
}

/* FNV-1a over the normalised name. */
uint32_t dns__cache_hash(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

/* Entry for name, or NULL. */
struct dns_entry *dns__cache_find(struct dns_cache *c, const char *name,
                                  uint32_t hash)
{
    for (struct dns_entry *e = c->buckets[hash & c->mask]; e; e = e->hnext)
        if (e->hash == hash && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* Take e out of the LRU list. */
static void lru_unlink(struct dns_cache *c, struct dns_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

/* Put e at the most recently used end. */
static void lru_push_head(struct dns_cache *c, struct dns_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    else
        c->lru_tail = e;
    c->lru_head = e;
}

/* Mark e as just used. */
void dns__cache_touch(struct dns_cache *c, struct dns_entry *e)
{
    if (c->lru_head == e)
        return;
    lru_unlink(c, e);
    lru_push_head(c, e);
}

/* Unlink e from table and list and free it. */
void dns__cache_remove(struct dns_cache *c, struct dns_entry *e)
{
    struct dns_entry **pp = &c->buckets[e->hash & c->mask];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    entry_free(e);
}

/* Whether e may be evicted now. */
static int entry_idle(const struct dns_entry *e)
{
    return !e->job && !e->waiters && !e->on_due && e->pins == 0;
}

/* Evict idle entries from the LRU end until there is room for one more. */
static void make_room(struct dns_cache *c, uint64_t *evictions)
{
    struct dns_entry *e = c->lru_tail;
    unsigned scanned = 0;

    while (c->count >= c->max && e && scanned < EVICT_SCAN) {
        struct dns_entry *prev = e->lru_prev;
        if (entry_idle(e)) {
            dns__cache_remove(c, e);
            (*evictions)++;
        }
        e = prev;
        scanned++;
    }
}

/* Create an empty entry for name (not found before), evicting if full. */
struct dns_entry *dns__cache_add(struct dns_cache *c, const char *name,
                                 uint32_t hash, uint64_t *evictions)
{
    size_t n = strlen(name);
    struct dns_entry *e;

    make_room(c, evictions);
    e = calloc(1, sizeof(*e) + n + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, n + 1);
    e->hash = hash;
    e->waiters_tail = &e->waiters;
    e->hnext = c->buckets[hash & c->mask];
    c->buckets[hash & c->mask] = e;
    lru_push_head(c, e);
    c->count++;
    return e;
}
