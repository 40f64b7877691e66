/*
 * eta.h - when a campaign will be done: from what each destination still
 * holds for it and the limit there (eta.c), and the live description of
 * sluiced's sites that the estimate takes (eta_live.c).  The one estimate
 * `sluice campaign show` and the web console's campaign rows give.
 *
 * DESCRIPTION
 *   A campaign's queued recipients are grouped by site (the live
 *   description puts each domain in its site; a domain it does not name
 *   is its own).  Each site sends at most its effective max_rate; the
 *   campaign's and its account's rate caps hold over all sites; a
 *   deferred recipient goes no earlier than its retry.  The slowest of
 *   these decides the ETA, and the ETA says which.  A paused campaign, or
 *   mail held by a paused site or domain or a disabled account, has no
 *   ETA: "paused".
 *
 *   The estimate reads only the spool (one walk of the queued mail, the
 *   pauses, the account) and what it is given: no DNS, no configuration
 *   file, no event loop; so sluiced's HTTP thread may call it.  What the
 *   live description does not cover (sluiced is not running, or has not
 *   met a domain yet) a caller may resolve through eta_hooks (the CLI
 *   does, from sluiced.conf); without hooks such a site has no known
 *   rate, and the basis text says so.
 *
 * OWNERSHIP
 *   An eta_live points into the JSON document it was loaded from: keep
 *   the document until eta_live_free().  struct eta owns its sites
 *   (eta_free).
 */
#ifndef SLUICE_ENGINE_ETA_H
#define SLUICE_ENGINE_ETA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_admin.h"

enum eta_state {
    ETA_NONE,       /* nothing to estimate (not sending, nothing queued,
                     * no rate known, or not walked) */
    ETA_TIME,       /* eta is set */
    ETA_PAUSED,     /* held: no time until resumed */
};

/* One destination (site) of the campaign's queued mail. */
struct eta_site {
    char name[256];
    char domain[256];     /* one of its domains (the limits' lookup) */
    uint64_t left;        /* the campaign's queued deliveries there */
    uint64_t held;        /* of which held: paused site/domain, parked */
    bool paused;          /* the site or one of its domains is paused */
    bool described;       /* sluiced (or a hook) said what its limit is */
    double rate;          /* deliveries per second allowed, 0 unknown */
    char limit[48];       /* "10/s", "unlimited", "?" */
    const char *from;     /* "sluiced", "configuration", "observed", "none" */
    int64_t last_due;     /* latest retry time of its mail not held, 0 */
    double seconds;       /* left / rate; 0 when the rate is unknown */
};

struct eta {
    enum eta_state state;
    int64_t now, eta;            /* unix seconds */
    const char *kind;            /* what decides: "site", "campaign cap",
                                  * "account cap", "retry", "paused",
                                  * "none" */
    char what[300];              /* the site, "campaign 7", "account shop" */
    uint64_t left;               /* recipients behind that bound */
    double rate;                 /* its rate per second, 0 none */
    char text[512];              /* "slowest: site example.net, 2000 left
                                  * at 10/s" */
    uint64_t queued;             /* all the campaign's queued recipients */
    struct eta_site *sites;      /* slowest first */
    size_t nsites;
};

/* ------------------------------------------------ live description */

/* One site sluiced describes: a configured [site] (its domains share its
 * limits) or a domain with throttles of its own. */
struct eta_live_site {
    const char *name;
    bool is_site;               /* a [site]: its domains map to it */
    double max_rate_per_s;      /* the limit it applies now, 0 none */
    double rate;                /* deliveries per second lately */
};

/* A rate cap of an account ('a') or campaign ('c') that sluiced applies. */
struct eta_live_cap {
    char kind;
    uint64_t id;
    double per_s;               /* 0: unlimited (a live override) */
    const char *text;           /* "10/s" */
};

struct eta_live_dom;

/* What sluiced says it applies now (its status.json): sites by name,
 * domains to their [site], rate caps. */
struct eta_live {
    struct eta_live_site *sites;  /* sorted by name */
    size_t nsites;
    struct eta_live_dom *doms;    /* sorted by domain */
    size_t ndoms;
    struct eta_live_cap *caps;
    size_t ncaps;
    bool have_caps;               /* the document lists its caps (none
                                   * listed then means no cap) */
};

/* Load from sluiced's status document (NULL: sluiced is not running; the
 * description is then empty).  0, or -ENOMEM (l is then empty). */
int eta_live_load(const json_t *doc, struct eta_live *l);
void eta_live_free(struct eta_live *l);
/* The site sluiced puts domain in, else domain itself. */
const char *eta_live_site_of(const struct eta_live *l, const char *domain);
/* The described site or domain of that name, or NULL. */
const struct eta_live_site *eta_live_find(const struct eta_live *l,
                                          const char *name);

/* --------------------------------------------------------- estimate */

/* What a caller resolves that the live description does not cover; any
 * member may be NULL. */
struct eta_hooks {
    /* A site sluiced has not described: set g->rate, limit, from and
     * described (and may set g->name to the site's own name: groups then
     * named alike are merged). */
    void (*site)(void *arg, struct eta_site *g);
    /* The rate cap of account ('a', a its record) or campaign ('c') id
     * when sluiced has not said: true with *per_s (0 none). */
    bool (*cap)(void *arg, char kind, uint64_t id,
                const struct queue_account *a, double *per_s);
    void *arg;
};

/* One campaign to estimate, with its settled state. */
struct eta_ask {
    uint64_t id;
    uint32_t account;
    int state;                  /* enum queue_campaign_state */
};

/* Estimate the n campaigns of ask into out[0..n) with one walk of the
 * spool's queued mail.  max_walk > 0 stops the walk after that many
 * queued deliveries: the campaigns still sending then get ETA_NONE and a
 * text saying so.  0, or a negative queue code (out then holds nothing
 * to free). */
int eta_estimate(struct queue *q, const struct eta_live *live,
                 const struct eta_hooks *hooks, const struct eta_ask *ask,
                 size_t n, size_t max_walk, struct eta *out);

/* The ETA as JSON: "eta" (time text, "paused" or null) and "eta_basis"
 * are set in obj. */
void eta_json(const struct eta *e, json_t *obj);

/* "10/s", "0.5/s", "2500/s" of a rate per second. */
void eta_rate_text(double r, char *buf, size_t cap);

void eta_free(struct eta *e);

#endif
