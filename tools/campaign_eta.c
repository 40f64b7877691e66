/*
 * campaign_eta.c - the ETA of `campaign show` (tool_eta.h): sluiced's
 * estimate (engine/eta.c, the one the web console gives), fed by the
 * live view the tools read, with the configuration for what sluiced has
 * not described.
 *
 * DESCRIPTION
 *   The live description is status.json (status_view_load keeps it while
 *   it is fresh).  A site sluiced has not described (it is not running,
 *   or has not met the domain yet) is resolved as `sluice limits show
 *   --effective DOMAIN` does it (tool_effective(): MX lookup, site match,
 *   layers), for at most ETA_LOOKUPS sites; the others have no known
 *   rate.  When sluiced is not running the campaign's and its account's
 *   rate caps are the ones in force for the tools (tool_rate_in_force:
 *   live, sluiced.conf, the account's cap).  sluiced.conf is read only
 *   when one of these is needed.
 *
 * DIAGNOSTICS
 *   Spool errors as negative queue codes; a configuration that does not
 *   load leaves those sites without a rate (tool_config_load said why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_eta.h"
#include "tool_limits.h"

#define ETA_LOOKUPS 16

/* The tools' side of the estimate: sluiced.conf, read when first
 * needed. */
struct cli_eta {
    struct tool_ctx *ctx;
    struct queue *q;
    struct config cfg;
    bool tried, loaded;
    char buf[3 * CONFIG_DNS_SERVERS_MAX];
    const char *servers;
    unsigned lookups;
};

/* The configuration, or NULL when it does not load. */
static const struct config *cli_config(struct cli_eta *x)
{
    if (!x->tried) {
        x->tried = true;
        if (tool_config_load(x->ctx, "sluice campaign show", NULL, &x->cfg,
                             &x->loaded))
            x->loaded = false;
        if (x->loaded)
            x->servers = tool_dns_servers(NULL, &x->cfg, x->buf,
                                          sizeof x->buf);
    }
    return x->loaded ? &x->cfg : NULL;
}

/* eta_hooks.site: the configuration's rate of a site sluiced has not
 * described, while the lookups last. */
static void cli_site(void *arg, struct eta_site *g)
{
    struct cli_eta *x = arg;
    const struct config *cfg;
    if (!g->domain[0] || x->lookups == 0 || !(cfg = cli_config(x)))
        return;
    x->lookups--;
    struct tool_effective *eff = malloc(sizeof *eff);
    if (!eff)
        return;
    if (tool_effective(cfg, x->q, g->domain, x->servers, eff) == 0) {
        const char *val = eff->k[CONFIG_LK_MAX_RATE].value;
        struct rate r;
        g->from = "configuration";
        g->described = true;
        if (config_parse_rate(val, &r) && r.n && r.per_s) {
            g->rate = (double)r.n / r.per_s;
            eta_rate_text(g->rate, g->limit, sizeof g->limit);
        } else {
            snprintf(g->limit, sizeof g->limit, "unlimited");
        }
        if (eff->site)   /* its site's name, as sluiced will call it */
            snprintf(g->name, sizeof g->name, "%s", eff->site->lim.name);
    }
    free(eff);
}

/* eta_hooks.cap: the cap in force for the tools when sluiced has not
 * said. */
static bool cli_cap(void *arg, char kind, uint64_t id,
                    const struct queue_account *a, double *per_s)
{
    struct cli_eta *x = arg;
    char name[24];
    snprintf(name, sizeof name, "%llu", (unsigned long long)id);
    struct rate r = tool_rate_in_force(x->q, cli_config(x), kind, name, a);
    *per_s = r.n && r.per_s ? (double)r.n / r.per_s : 0;
    return true;
}

int tool_campaign_eta(struct tool_ctx *ctx, struct queue *q,
                      const struct status_view *v,
                      const struct queue_campaign *c, int state,
                      struct eta *out)
{
    struct eta_live live;
    struct cli_eta x = { .ctx = ctx, .q = q, .lookups = ETA_LOOKUPS };
    struct eta_hooks hooks = { cli_site, cli_cap, &x };
    struct eta_ask ask = { c->id, c->account, state };
    memset(out, 0, sizeof *out);
    int err = eta_live_load(v->doc, &live);
    if (!err)
        err = eta_estimate(q, &live, &hooks, &ask, 1, 0, out);
    eta_live_free(&live);
    if (x.loaded)
        config_free(&x.cfg);
    return err;
}
