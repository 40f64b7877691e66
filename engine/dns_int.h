/*
 * dns_int.h - what the DNS module's files share among themselves.
 *
 * dns.c owns the resolver object, the c-ares channel and its libuv handles,
 * and delivers results to callers. dns_cache.c owns the entries (one per
 * domain, hashed and kept in LRU order). dns_job.c runs one lookup (MX, then
 * A/AAAA per host) for an entry and builds its result. dns_msg.c reads DNS
 * answers with bounds checks. Nothing here is seen outside engine/dns*.
 */
#ifndef SLUICE_DNS_INT_H
#define SLUICE_DNS_INT_H

#include <ares.h>
#include <stdint.h>
#include <uv.h>

#include "dns.h"

/* A caller waiting for an entry's answer. */
struct dns_waiter {
    struct dns_waiter *next;
    dns_resolve_cb cb;
    void *arg;
};

/* One cached (or in-flight) domain. */
struct dns_entry {
    struct dns_entry *hnext;               /* hash chain */
    struct dns_entry *lru_prev, *lru_next; /* most recently used first */
    struct dns_entry *due_next;            /* on dns->due while on_due */
    uint32_t hash;
    int on_due;                /* has waiters to be called from the idle cb */
    unsigned pins;             /* > 0 while callbacks run on its result */
    struct dns_job *job;       /* non-NULL while the lookup is in flight */
    struct dns_result *result; /* NULL until the first answer */
    uint64_t expires_ms;       /* loop time when result goes stale */
    struct dns_waiter *waiters;
    struct dns_waiter **waiters_tail;
    char name[]; /* normalised domain */
};

/* Hash table plus LRU list, capped at max idle entries. */
struct dns_cache {
    struct dns_entry **buckets;
    size_t mask; /* bucket count - 1 (power of two) */
    size_t count;
    size_t max;
    struct dns_entry *lru_head, *lru_tail;
};

/* A uv_poll_t for one c-ares socket. */
struct dns_poll {
    uv_poll_t handle;
    struct dns *dns;
    ares_socket_t fd;
    struct dns_poll *next;
};

struct dns {
    uv_loop_t *loop;
    struct dns_config cfg;
    ares_channel channel;
    int have_channel;
    uv_timer_t timer;       /* fires at ares_timeout() */
    uv_idle_t idle;         /* delivers results queued on due */
    struct dns_poll *polls; /* open polls, one per c-ares socket */
    unsigned open_handles;  /* handles not yet through their close cb */
    int closing;
    struct dns_entry *due_head, **due_tail;
    struct dns_cache cache;
    struct dns_stats stats;
};

/* dns.c */
void dns__send_query(struct dns *dns, const char *name, int type,
                     ares_callback cb, void *arg);
void dns__entry_answered(struct dns *dns, struct dns_entry *e);

/* dns_job.c */
int dns__job_start(struct dns *dns, struct dns_entry *e);

/* dns_cache.c */
int dns__cache_init(struct dns_cache *c, size_t max);
void dns__cache_free(struct dns_cache *c);
uint32_t dns__cache_hash(const char *name);
struct dns_entry *dns__cache_find(struct dns_cache *c, const char *name,
                                  uint32_t hash);
struct dns_entry *dns__cache_add(struct dns_cache *c, const char *name,
                                 uint32_t hash, uint64_t *evictions);
void dns__cache_touch(struct dns_cache *c, struct dns_entry *e);
void dns__cache_remove(struct dns_cache *c, struct dns_entry *e);

/* dns_msg.c: a bounded reader of one DNS message. */
struct dns_rr {
    int section; /* 1 answer, 2 authority, 3 additional */
    unsigned type;
    unsigned cls;
    uint32_t ttl;
    size_t rdata; /* offset of rdata in the message */
    size_t rdlen;
};

struct dns_msg {
    const unsigned char *buf;
    size_t len;
    size_t off;
    unsigned left[4]; /* records left per section (index 1..3) */
    int section;
};

int dns__msg_open(struct dns_msg *m, const unsigned char *buf, int len);
int dns__msg_next(struct dns_msg *m, struct dns_rr *rr);
int dns__msg_name(const struct dns_msg *m, size_t off, char *out, size_t outsz);
int dns__msg_negative_ttl(const unsigned char *buf, int len, uint32_t *ttl);

#define DNS_T_A 1
#define DNS_T_CNAME 5
#define DNS_T_SOA 6
#define DNS_T_MX 15
#define DNS_T_AAAA 28
#define DNS_C_IN 1

#endif /* SLUICE_DNS_INT_H */
