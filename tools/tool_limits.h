/*
 * tool_limits.h - what cmd_limits.c, cmd_limits_show.c and cmd_sites.c
 * share: the effective limits of a domain, layer by layer.
 *
 * DESCRIPTION
 *   A domain's limits come from its site when its first MX host matches
 *   one (connections, messages per connection, rates: the site's), else
 *   from its own [domain] section or [domain default]; TLS and recipients
 *   per message always from the domain's.  Each value has a layer:
 *   "live" (`sluice limits set`, with its end), "ini" (sluiced.conf),
 *   "profile" (the shipped provider profiles) or "default" (built in).
 */
#ifndef SLUICE_TOOL_LIMITS_H
#define SLUICE_TOOL_LIMITS_H

#include "config.h"
#include "tool_admin.h"

#define TOOL_MAX_MX 16

struct tool_eff_key {
    char value[QUEUE_MAX_LIMIT_VALUE + 1];
    const char *layer;         /* "live", "ini", "profile", "default" */
    char from[300];            /* "[site gmail]", "limits set site gmail" */
    int64_t expires_ms;        /* live: its end (0: none) */
    char who[QUEUE_MAX_AUDIT_USER + 1];
};

struct tool_effective {
    char domain[QUEUE_MAX_LIMIT_NAME + 1];
    struct tool_mx mx[TOOL_MAX_MX];
    size_t nmx;
    char mx_error[200];        /* why there are no MX hosts, or "" */
    const struct site_policy *site; /* the site of the first MX, or NULL */
    struct tool_eff_key k[CONFIG_LK_COUNT];
};

/* The effective limits of domain under cfg, with the live limits of q
 * (NULL: none), its MX asked of servers (c-ares form; NULL: the system's
 * resolver).  A failed MX lookup is no error: the domain's own limits
 * apply (as in sluiced until it resolves), and mx_error says why.
 * 0, or a TOOL_EX_* code after a message on stderr. */
int tool_effective(const struct config *cfg, struct queue *q,
                   const char *domain, const char *servers,
                   struct tool_effective *out);

/* Print it as a table, or as JSON with ctx->json. */
void tool_effective_print(const struct tool_ctx *ctx,
                          const struct tool_effective *eff);

/* The live max_rate of account ('a') or campaign ('c') name (its id in
 * decimal) in q: true
 * and *r when one is in force. */
bool tool_live_rate(struct queue *q, char kind, const char *name,
                    struct rate *r);

/* The rate cap in force for account ('a', a given) or campaign ('c')
 * name (its id in decimal): live, else sluiced.conf (cfg may be NULL),
 * else an account's own rate cap; n 0: unlimited (cmd_limits.c). */
struct rate tool_rate_in_force(struct queue *q, const struct config *cfg,
                               char kind, const char *name,
                               const struct queue_account *a);

/* --dns-server LIST (or NULL) into c-ares form in buf, else cfg's
 * dns_servers, else NULL (the system's resolver). */
const char *tool_dns_servers(const char *opt, const struct config *cfg,
                             char *buf, size_t cap);

#endif
