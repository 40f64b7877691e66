/*
 * eta_live.c - what the campaign ETA (eta.h) takes from sluiced's status
 * document: its sites with their limits and rates, the domains of each
 * configured [site], and the account and campaign rate caps in force.
 *
 * DESCRIPTION
 *   status.c writes, per site, "name", "kind" ("site" for a configured
 *   [site], "domain" for a domain with throttles of its own), "domains"
 *   (those it has met), "max_rate_per_s" (the effective limit: layers
 *   times the backoff factor, 0 none) and "rate" (deliveries per second
 *   of the last seconds); and "rate_caps", the caps limits.c applies
 *   ({"kind": "account"|"campaign", "id", "max_rate", "max_rate_per_s"}).
 *   A document without "rate_caps" (an older sluiced) leaves the caps
 *   undescribed, for the caller's hooks.  Rows without a name, domains
 *   that are not text and unknown cap kinds are skipped.
 *
 * DIAGNOSTICS
 *   -ENOMEM only; a document of another shape gives an empty
 *   description.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "eta.h"

struct eta_live_dom {
    const char *domain, *site;
};

static int site_cmp(const void *a, const void *b)
{
    return strcmp(((const struct eta_live_site *)a)->name,
                  ((const struct eta_live_site *)b)->name);
}

static int dom_cmp(const void *a, const void *b)
{
    return strcmp(((const struct eta_live_dom *)a)->domain,
                  ((const struct eta_live_dom *)b)->domain);
}

/* The caps of the document's "rate_caps" into l; false out of memory. */
static bool load_caps(const json_t *caps, struct eta_live *l)
{
    size_t i;
    json_t *c;
    l->have_caps = json_is_array(caps);
    if (!json_array_size(caps))
        return true;
    if (!(l->caps = calloc(json_array_size(caps), sizeof *l->caps)))
        return false;
    json_array_foreach(caps, i, c) {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        json_t *id = json_object_get(c, "id");
        if (!kind || !json_is_integer(id) || json_integer_value(id) <= 0 ||
            (strcmp(kind, "account") && strcmp(kind, "campaign")))
            continue;
        const char *text = json_string_value(json_object_get(c, "max_rate"));
        double per_s = json_number_value(json_object_get(c,
                                                         "max_rate_per_s"));
        l->caps[l->ncaps++] = (struct eta_live_cap){
            .kind = kind[0] == 'a' ? 'a' : 'c',
            .id = (uint64_t)json_integer_value(id),
            .per_s = per_s > 0 ? per_s : 0,
            .text = text ? text : "",
        };
    }
    return true;
}

int eta_live_load(const json_t *doc, struct eta_live *l)
{
    json_t *sites = json_object_get(doc, "sites"), *s, *d;
    size_t i, k, ndoms = 0;
    memset(l, 0, sizeof *l);
    if (!json_is_object(doc))
        return 0;
    json_array_foreach(sites, i, s)
        ndoms += json_array_size(json_object_get(s, "domains"));
    if ((json_array_size(sites) &&
         !(l->sites = calloc(json_array_size(sites), sizeof *l->sites))) ||
        (ndoms && !(l->doms = calloc(ndoms, sizeof *l->doms))) ||
        !load_caps(json_object_get(doc, "rate_caps"), l)) {
        eta_live_free(l);
        return -ENOMEM;
    }
    json_array_foreach(sites, i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *kind = json_string_value(json_object_get(s, "kind"));
        if (!name)
            continue;
        double lim = json_number_value(json_object_get(s, "max_rate_per_s"));
        double now = json_number_value(json_object_get(s, "rate"));
        bool is_site = !kind || !strcmp(kind, "site");
        l->sites[l->nsites++] = (struct eta_live_site){
            .name = name, .is_site = is_site,
            .max_rate_per_s = lim > 0 ? lim : 0, .rate = now > 0 ? now : 0,
        };
        if (!is_site)
            continue;   /* a domain of its own: its name is the domain */
        json_array_foreach(json_object_get(s, "domains"), k, d)
            if (json_is_string(d) && l->ndoms < ndoms)
                l->doms[l->ndoms++] = (struct eta_live_dom){
                    json_string_value(d), name };
    }
    if (l->nsites)
        qsort(l->sites, l->nsites, sizeof *l->sites, site_cmp);
    if (l->ndoms)
        qsort(l->doms, l->ndoms, sizeof *l->doms, dom_cmp);
    return 0;
}

void eta_live_free(struct eta_live *l)
{
    if (!l)
        return;
    free(l->sites);
    free(l->doms);
    free(l->caps);
    memset(l, 0, sizeof *l);
}

const char *eta_live_site_of(const struct eta_live *l, const char *domain)
{
    struct eta_live_dom key = { domain, NULL };
    const struct eta_live_dom *f = l->ndoms
        ? bsearch(&key, l->doms, l->ndoms, sizeof *l->doms, dom_cmp) : NULL;
    return f ? f->site : domain;
}

const struct eta_live_site *eta_live_find(const struct eta_live *l,
                                          const char *name)
{
    struct eta_live_site key = { .name = name };
    return l->nsites ? bsearch(&key, l->sites, l->nsites, sizeof *l->sites,
                               site_cmp) : NULL;
}
