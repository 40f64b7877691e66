/*
 * tool_eta.h - when a campaign will be done: from what each destination
 * still holds for it and the limit there (campaign_eta.c).
 *
 * DESCRIPTION
 *   A campaign's queued recipients are grouped by site (sluiced's live
 *   view puts each domain in its site; a domain it has not seen is its
 *   own, or the site its MX matches).  Each site sends at most its
 *   effective max_rate; the campaign's and its account's rate caps hold
 *   over all sites; a deferred recipient goes no earlier than its retry.
 *   The slowest of these decides the ETA, and the ETA says which.  A
 *   paused campaign, or mail held by a paused site or domain or a
 *   disabled account, has no ETA: "paused".
 */
#ifndef SLUICE_TOOL_ETA_H
#define SLUICE_TOOL_ETA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue_campaign.h"
#include "tool_admin.h"

enum tool_eta_state {
    TOOL_ETA_NONE,       /* nothing to estimate (not sending, nothing
                          * queued, or no rate known) */
    TOOL_ETA_TIME,       /* eta is set */
    TOOL_ETA_PAUSED,     /* held: no time until resumed */
};

/* One destination (site) of the campaign's queued mail. */
struct tool_eta_site {
    char name[256];
    char domain[256];     /* one of its domains (the limits' lookup) */
    uint64_t left;        /* the campaign's queued deliveries there */
    uint64_t held;        /* of which held: paused site/domain, parked */
    bool paused;          /* the site or one of its domains is paused */
    double rate;          /* deliveries per second allowed, 0 unknown */
    char limit[48];       /* "10/s", "unlimited", "?" */
    const char *from;     /* "sluiced", "configuration", "observed", "none" */
    int64_t last_due;     /* latest retry time of its mail not held, 0 */
    double seconds;       /* left / rate; 0 when the rate is unknown */
};

struct tool_eta {
    enum tool_eta_state state;
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
    struct tool_eta_site *sites; /* slowest first */
    size_t nsites;
};

/* Estimate campaign c (whose settled state is state) from the live view
 * v (status_view_load, loaded before q was opened), the spool q and
 * sluiced.conf as the tools read it.  0, or a negative queue code. */
int tool_campaign_eta(struct tool_ctx *ctx, struct queue *q,
                      const struct status_view *v,
                      const struct queue_campaign *c, int state,
                      struct tool_eta *out);

/* The ETA as JSON: "eta" (time text, "paused" or null) and "eta_basis"
 * are set in obj. */
void tool_eta_json(const struct tool_eta *e, json_t *obj);

void tool_eta_free(struct tool_eta *e);

#endif
