/*
 * route.c - where a destination's mail goes: its MX lookup (or a
 * configured route), the list of addresses to try, and the site whose
 * throttles it shares.
 *
 * DESCRIPTION
 *   route_resolve() starts a lookup for a destination dest_kick() found
 *   without an answer.  At most DNS_MAX_INFLIGHT lookups run at once; the
 *   rest wait in a FIFO and start as slots come free.  A configured route
 *   to an address literal needs no lookup; a route to a host name is
 *   looked up like a domain (implicit MX).  The answer becomes the
 *   destination's targets, in MX preference order, and the first MX host
 *   names its site (site_for_dest(): a configured [site] whose patterns
 *   match, else the domain's own), which takes the destination's open
 *   sessions and waiting items with it.
 *
 *   Answers that end the waiting mail: null MX bounces (5.1.10), NXDOMAIN
 *   bounces (5.1.2), no host with an address bounces (5.4.4), a name that
 *   is not a host name bounces (5.1.2), a temporary failure defers
 *   (4.4.3).
 *
 * DIAGNOSTICS
 *   None of its own: failures end in the waiting items' outcomes and the
 *   destination's last error (dest_fail_all()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Move the destination to site ns (or none) with its open sessions, so
 * that each site counts exactly the sessions of its destinations: one
 * that closes while the destination has no site (after a reload, before
 * the lookup) would otherwise hold the old site's cap for ever. */
static void set_site(struct dest *d, struct site *ns)
{
    if (ns == d->site)
        return;
    site_move(d->site, ns, d->sessions, d->nitems);
    d->site = ns;
}

/* Copy a DNS answer into the destination's target list. */
static void take_targets(struct engine *e, struct dest *d,
                         const struct dns_result *r)
{
    unsigned n = 0;
    free(d->targets);
    d->targets = calloc(r->naddrs ? r->naddrs : 1, sizeof *d->targets);
    if (!d->targets) {
        d->ntargets = 0;
        return;
    }
    for (unsigned h = 0; h < r->ntargets; h++)
        for (unsigned a = 0; a < r->targets[h].naddrs && n < r->naddrs; a++) {
            snprintf(d->targets[n].host, sizeof d->targets[n].host, "%s",
                     r->targets[h].host);
            d->targets[n].addr = r->targets[h].addrs[a];
            n++;
        }
    d->ntargets = n;
    d->next_target = 0;
    d->failed_in_row = 0;
    d->dns_expires_ms = (int64_t)engine_now_ms() + (int64_t)r->ttl * 1000;
    if (n)
        set_site(d, site_for_dest(e, d, d->targets[0].host));
}

/* Lookups in flight at once: a burst of a thousand new domains would
 * otherwise overrun the resolver's socket and time out. */
#define DNS_MAX_INFLIGHT 64

/* A lookup finished: start the next queued one. */
static void dns_slot_free(struct engine *e)
{
    e->dests.dns_inflight--;
    while (e->dests.dnsq_head && e->dests.dns_inflight < DNS_MAX_INFLIGHT) {
        struct dest *d = e->dests.dnsq_head;
        e->dests.dnsq_head = d->dnext;
        if (!e->dests.dnsq_head)
            e->dests.dnsq_tail = NULL;
        d->dns_queued = false;
        d->dns = DS_NONE;
        dest_kick(e, d);
    }
}

static void on_dns(const struct dns_result *r, void *arg)
{
    struct dest *d = arg;
    struct engine *e = d->e;
    char text[300];
    d->dns = DS_NONE;
    if (r->status != DNS_CANCELLED)
        dns_slot_free(e);
    switch (r->status) {
    case DNS_OK:
        take_targets(e, d, r);
        d->dns = d->ntargets ? DS_READY : DS_NONE;
        dest_kick(e, d);
        return;
    case DNS_NULLMX:
        snprintf(text, sizeof text, "%s accepts no mail (null MX)", d->domain);
        dest_fail_all(e, d, QUEUE_EV_BOUNCED, 556, "5.1.10", text, NULL);
        return;
    case DNS_NXDOMAIN:
        snprintf(text, sizeof text, "%s does not exist: %s", d->domain,
                 r->reason);
        dest_fail_all(e, d, QUEUE_EV_BOUNCED, 550, "5.1.2", text, NULL);
        return;
    case DNS_NOHOST:
        snprintf(text, sizeof text, "no mail host for %s: %s", d->domain,
                 r->reason);
        dest_fail_all(e, d, QUEUE_EV_BOUNCED, 554, "5.4.4", text, NULL);
        return;
    case DNS_TEMPFAIL:
        snprintf(text, sizeof text, "DNS lookup for %s failed: %s", d->domain,
                 r->reason);
        dest_fail_all(e, d, QUEUE_EV_DEFERRED, 0, "4.4.3", text, NULL);
        return;
    case DNS_CANCELLED:
        return;
    }
}

/* Use a configured smarthost instead of MX (an address literal). */
static int route_targets(struct engine *e, struct dest *d)
{
    const struct domain_policy *p = d->pol;
    struct target t = { 0 };
    uint16_t port = p->route_port ? p->route_port : e->cfg.smtp_port;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t.addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t.addr;
    if (inet_pton(AF_INET, p->route_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, p->route_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
    } else {
        return -EINVAL;
    }
    snprintf(t.host, sizeof t.host, "%s", p->route_host);
    free(d->targets);
    if (!(d->targets = malloc(sizeof t)))
        return -ENOMEM;
    d->targets[0] = t;
    d->ntargets = 1;
    d->next_target = 0;
    d->dns = DS_READY;
    d->dns_expires_ms = INT64_MAX;
    set_site(d, site_for_dest(e, d, NULL));
    return 0;
}

void route_resolve(struct engine *e, struct dest *d)
{
    if (d->dns_queued)
        return;
    if (d->pol->route_host) {
        if (route_targets(e, d) == 0)
            return;
        /* a host name route: resolve it like a domain (implicit MX) */
    }
    const char *name = d->pol->route_host ? d->pol->route_host : d->domain;
    d->dns = DS_RESOLVING;
    if (e->dests.dns_inflight >= DNS_MAX_INFLIGHT) {
        if (!d->dns_queued) {
            d->dns_queued = true;
            DEST_LIST_PUSH(e->dests.dnsq_head, e->dests.dnsq_tail, d, dnext);
        }
        return;
    }
    int rc = dns_resolve_mx(e->dns, name, on_dns, d);
    if (rc == 0)
        e->dests.dns_inflight++;
    if (rc) {
        char text[300];
        d->dns = DS_NONE;
        snprintf(text, sizeof text, "cannot look up %s: %s", name,
                 engine_strerror(rc));
        dest_fail_all(e, d, rc == DNS_EBADNAME ? QUEUE_EV_BOUNCED : QUEUE_EV_DEFERRED,
                 rc == DNS_EBADNAME ? 553 : 0,
                 rc == DNS_EBADNAME ? "5.1.2" : "4.4.3", text, NULL);
    }
}
