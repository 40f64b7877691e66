/*
 * dns.h - where to deliver mail for a recipient domain.
 *
 * The engine's resolver: MX lookup, then A and AAAA of each MX host, over
 * c-ares driven by the engine's libuv loop (no threads, no blocking calls).
 * Answers are cached per domain for the TTL of the records used; lookups for
 * a domain already in flight are coalesced into one.
 *
 * Ownership: a struct dns belongs to the caller from dns_new() until
 * dns_close(); its memory is freed by the loop after the close, so run the
 * loop until it has no more of the resolver's handles. A struct dns_result
 * and everything it points to is owned by the resolver and valid only during
 * the callback it is passed to: copy what you keep.
 *
 * Errors: functions return 0 or a negative code (negative errno values for
 * system errors, DNS_E* for the resolver's own); dns_strerror() names any of
 * them. When dns_resolve_mx() returns an error its callback is never called.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Caps on one answer: hosts kept after sorting, addresses over all hosts. */
#define DNS_MAX_HOSTS 10
#define DNS_MAX_ADDRS 16
/* Longest domain name accepted, without the trailing dot. */
#define DNS_NAME_MAX 253

/* Error codes: system errors are negative errno values; these are ours. */
#define DNS_EINVAL UV_EINVAL  /* bad argument */
#define DNS_ENOMEM UV_ENOMEM  /* out of memory */
#define DNS_EBADNAME (-30101) /* not an ASCII host name (LDH labels) */
#define DNS_ECLOSING (-30102) /* dns_close() has been called */
#define DNS_ESERVERS (-30103) /* server list did not parse */
#define DNS_ECARES (-30104)   /* c-ares channel could not be set up */

/* What the lookup says about the domain; the caller maps it to an action. */
enum dns_status {
    DNS_OK = 0,   /* targets[] holds at least one host with an address */
    DNS_NULLMX,   /* RFC 7505 null MX: bounce, 5.1.10 */
    DNS_NXDOMAIN, /* the domain does not exist: bounce, 5.1.2 */
    DNS_NOHOST,   /* domain exists, but no MX host (or the implicit MX)
                    has an address and every lookup said so for sure
                    (NXDOMAIN/NODATA): bounce, 5.4.4 */
    DNS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, network error: defer */
    DNS_CANCELLED /* dns_close() was called before the answer came */
};

/* One MX host and its addresses, IPv4 first. */
struct dns_target {
    const char *host;                     /* lower-case, no trailing dot */
    unsigned pref;                        /* MX preference; 0 if implicit */
    unsigned naddrs;                      /* >= 1 */
    const struct sockaddr_storage *addrs; /* port set to config.port */
};

/* The answer for one domain, as handed to a dns_resolve_cb. */
struct dns_result {
    enum dns_status status;
    const char *domain; /* as looked up: lower-case, no trailing dot */
    const char *reason; /* short human text for event logs */
    int implicit_mx;    /* 1: no MX records, domain is its own host */
    unsigned ttl;       /* seconds the answer is cached for */
    unsigned ntargets;  /* 0 unless status is DNS_OK */
    const struct dns_target *targets; /* by preference, ties in answer order */
    unsigned naddrs; /* addresses over all targets, <= DNS_MAX_ADDRS */
};

typedef void (*dns_resolve_cb)(const struct dns_result *res, void *arg);

/* Settings; start from dns_config_init() and change what you need. */
struct dns_config {
    const char *servers;   /* "ADDR:PORT,ADDR:PORT" ("[v6]:PORT" for IPv6);
                              NULL or "" = system resolver configuration.
                              When given, /etc/resolv.conf is not read. */
    unsigned timeout_ms;   /* first try per server (c-ares backs off) */
    unsigned tries;        /* tries per server */
    unsigned cache_max;    /* cached domains; least recently used go first */
    unsigned ttl_min;      /* positive answers are cached at least this, s */
    unsigned ttl_max;      /* ... and at most this, s */
    unsigned negative_ttl; /* NXDOMAIN/NODATA without an SOA, s */
    unsigned negative_ttl_max; /* cap on SOA-derived negative TTLs, s */
    unsigned tempfail_ttl; /* how long a failure is remembered, s (0: not) */
    unsigned short port;   /* port written into result addresses */
};

/* Counters for tests and /metrics. */
struct dns_stats {
    uint64_t requests;  /* dns_resolve_mx() calls that returned 0 */
    uint64_t hits;      /* answered from the cache */
    uint64_t misses;    /* started a lookup (new or expired entry) */
    uint64_t coalesced; /* joined a lookup already in flight */
    uint64_t queries;   /* DNS queries sent (MX, A, AAAA) */
    uint64_t evictions; /* entries dropped to stay under cache_max */
    size_t entries;     /* cached domains now, including in-flight ones */
    size_t inflight;    /* lookups in flight now */
};

struct dns;

/* Fill cfg with the defaults: 2000 ms, 2 tries, 100000 entries, TTLs
 * 5..86400 s, negative 300 s (max 3600), tempfail 30 s, port 25. */
void dns_config_init(struct dns_config *cfg);

/* Create a resolver on loop; cfg is copied (NULL: defaults). */
int dns_new(uv_loop_t *loop, const struct dns_config *cfg, struct dns **out);

/* Find the delivery targets of domain (ASCII, A-labels for IDN; one
 * trailing dot allowed). cb is called exactly once, always from the loop
 * and never from inside this call, unless this returns an error. */
int dns_resolve_mx(struct dns *dns, const char *domain, dns_resolve_cb cb,
                   void *arg);

/* Stop the resolver. Every callback not yet called is called with
 * DNS_CANCELLED before dns_close() returns (so a callback may see
 * DNS_CANCELLED from inside dns_close()); until the loop runs again, more
 * dns_resolve_mx() calls fail with DNS_ECLOSING and more dns_close() calls
 * do nothing. The memory is freed from the loop's close callbacks: after
 * the loop has run, dns is gone. Accepts NULL. */
void dns_close(struct dns *dns);

/* Copy the counters. */
void dns_get_stats(const struct dns *dns, struct dns_stats *out);

/* Lower-case name of a status ("ok", "nullmx", ...). */
const char *dns_status_name(enum dns_status status);

/* Text for an error code from this module. */
const char *dns_strerror(int err);

#endif /* SLUICE_DNS_H */
