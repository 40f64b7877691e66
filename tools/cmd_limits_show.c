/*
 * cmd_limits_show.c - `sluice limits show`: the live limits in force, or
 * with --effective DOMAIN every limit that applies to a domain and the
 * layer it comes from (also `sluice site-of`).
 *
 * DESCRIPTION
 *   limits show [--effective DOMAIN [--dns-server LIST]] [--json]
 *   The plain form lists the spool's live limits in force (kind, name,
 *   key, value, end, who).  --effective resolves DOMAIN's MX hosts (the
 *   configuration's dns_servers, or --dns-server) and says, key by key,
 *   the value sluiced applies and whether it comes from a live limit,
 *   sluiced.conf, the shipped provider profile or the built-in default.
 *   Needs viewer on the master.
 *
 * DIAGNOSTICS
 *   64 bad usage, 66 no spool, 78 a configuration that does not load
 *   (--effective needs one: without it there are no sites to match).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tool_limits.h"

#define P "sluice limits show"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct live_pick {
    char kind;
    const char *name;
    struct queue_limit v[CONFIG_LK_COUNT];
    bool have[CONFIG_LK_COUNT];
};

/* queue_limits() callback: keep the entries of one target. */
static int pick_live(void *arg, const struct queue_limit *l)
{
    struct live_pick *p = arg;
    int k = config_limit_key_find(l->key);
    if (l->kind == p->kind && !strcmp(l->name, p->name) && k >= 0) {
        p->v[k] = *l;
        p->have[k] = true;
    }
    return 0;
}

/* The live entries of kind/name in q (none when q is NULL). */
static void live_of(struct queue *q, char kind, const char *name,
                    struct live_pick *p)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->name = name;
    if (q)
        queue_limits(q, wall_ms(), pick_live, p);
}

bool tool_live_rate(struct queue *q, char kind, const char *name,
                    struct rate *r)
{
    char err[200];
    struct live_pick p;
    live_of(q, kind, name, &p);
    struct domain_policy pol = { 0 };
    if (!p.have[CONFIG_LK_MAX_RATE] ||
        config_limit_set(kind, &pol, "max_rate", p.v[CONFIG_LK_MAX_RATE].value,
                         err, sizeof err))
        return false;
    *r = pol.max_rate;
    return true;
}

const char *tool_dns_servers(const char *opt, const struct config *cfg,
                             char *buf, size_t cap)
{
    char bad[CONFIG_DNS_SERVERS_MAX];
    if (opt && !config_parse_dns_servers(opt, buf, cap, bad, sizeof bad))
        return buf;
    if (opt)
        return opt;   /* tool_mx_lookup() says what is wrong with it */
    return cfg->dns_servers;
}

/* Whether key is the site's (connections, rates) rather than the
 * domain's own (TLS, recipients per message). */
static bool site_key(int k)
{
    return k == CONFIG_LK_MAX_CONNECTIONS ||
           k == CONFIG_LK_MAX_MESSAGES_PER_CONNECTION ||
           k == CONFIG_LK_MAX_RATE || k == CONFIG_LK_MAX_CONNECTION_RATE;
}

/* Fill one key from policy pol (of section what) and the live entries. */
static void one_key(const struct config *cfg, int k,
                    const struct domain_policy *pol, bool is_site,
                    const char *name, const struct live_pick *live,
                    struct tool_eff_key *out)
{
    struct domain_policy v = *pol;
    char err[200];
    memset(out, 0, sizeof *out);
    if (live->have[k] &&
        !config_limit_set(is_site ? 's' : 'd', &v, config_limit_key_name(k),
                          live->v[k].value, err, sizeof err)) {
        out->layer = "live";
        snprintf(out->from, sizeof out->from, "limits set %s %s",
                 is_site ? "site" : "domain", name);
        out->expires_ms = live->v[k].expires_ms;
        snprintf(out->who, sizeof out->who, "%s", live->v[k].who);
    } else if (pol->keys_ini & (1u << k)) {
        out->layer = "ini";
        snprintf(out->from, sizeof out->from, "[%s %s]",
                 is_site ? "site" : "domain", pol->name);
    } else if (pol->keys_profile & (1u << k)) {
        out->layer = "profile";
        snprintf(out->from, sizeof out->from, "provider profile %s",
                 pol->name);
    } else if (cfg->def.keys_ini & (1u << k)) {
        out->layer = "ini";
        snprintf(out->from, sizeof out->from, "[domain default]");
    } else {
        out->layer = "default";
        snprintf(out->from, sizeof out->from, "built in");
    }
    config_limit_text(&v, k, out->value, sizeof out->value);
    if (!out->value[0])
        snprintf(out->value, sizeof out->value, "unlimited");
}

int tool_effective(const struct config *cfg, struct queue *q,
                   const char *domain, const char *servers,
                   struct tool_effective *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->domain, sizeof out->domain, "%s", domain);
    int rc = tool_mx_lookup(domain, servers, out->mx, TOOL_MAX_MX, &out->nmx,
                            out->mx_error, sizeof out->mx_error);
    if (rc == -EINVAL) {
        fprintf(stderr, "sluice: %s\n", out->mx_error);
        return TOOL_EX_USAGE;
    }
    if (out->nmx)
        out->site = config_site_for_mx(cfg, out->mx[0].host);
    struct live_pick ls, ld;
    const struct domain_policy *dp = config_domain(cfg, domain);
    live_of(q, 'd', domain, &ld);
    if (out->site)
        live_of(q, 's', out->site->lim.name, &ls);
    for (int k = 0; k < CONFIG_LK_COUNT; k++) {
        if (out->site && site_key(k))
            one_key(cfg, k, &out->site->lim, true, out->site->lim.name, &ls,
                    &out->k[k]);
        else
            one_key(cfg, k, dp, false, domain, &ld, &out->k[k]);
    }
    return 0;
}

/* "2026-12-07T18:00:00Z" of unix ms, or "-" for 0. */
static const char *when(int64_t ms, char *buf, size_t cap)
{
    return ms ? tool_time_text(ms / 1000, buf, cap) : "-";
}

void tool_effective_print(const struct tool_ctx *ctx,
                          const struct tool_effective *eff)
{
    const char *site = eff->site ? eff->site->lim.name : NULL;
    const char *site_from = !eff->site ? "" : eff->site->in_file &&
                            eff->site->in_profile ? "profile, sluiced.conf"
                            : eff->site->in_file ? "sluiced.conf"
                            : "shipped profile";
    char t[40];
    if (ctx->json) {
        json_t *mx = json_array(), *lim = json_object();
        for (size_t i = 0; i < eff->nmx; i++)
            json_array_append_new(mx, json_pack("{s:s,s:i}", "host",
                                                eff->mx[i].host, "pref",
                                                (int)eff->mx[i].pref));
        for (int k = 0; k < CONFIG_LK_COUNT; k++) {
            const struct tool_eff_key *e = &eff->k[k];
            json_object_set_new(lim, config_limit_key_name(k), json_pack(
                "{s:s,s:s,s:s,s:I,s:s}", "value", e->value, "layer",
                e->layer, "from", e->from, "expires_ms",
                (json_int_t)e->expires_ms, "who", e->who));
        }
        tool_emit_json(json_pack("{s:s,s:o,s:s,s:o,s:s,s:o}", "domain",
                                 eff->domain, "mx", mx, "mx_error",
                                 eff->mx_error, "site",
                                 site ? json_string(site) : json_null(),
                                 "site_from",
                                 site_from, "limits", lim));
        return;
    }
    if (eff->nmx)
        printf("%s: MX %s (preference %u): %s%s%s%s\n", eff->domain,
               eff->mx[0].host, eff->mx[0].pref, site ? "site " : "its own "
               "limits (no site matches)", site ? site : "",
               site ? " from " : "", site ? site_from : "");
    else
        printf("%s: %s: its own limits until it resolves\n", eff->domain,
               eff->mx_error);
    printf("%-28s  %-14s  %-8s  %-30s  %s\n", "KEY", "VALUE", "LAYER",
           "FROM", "UNTIL");
    for (int k = 0; k < CONFIG_LK_COUNT; k++) {
        const struct tool_eff_key *e = &eff->k[k];
        printf("%-28s  %-14s  %-8s  %-30s  %s\n", config_limit_key_name(k),
               e->value, e->layer, e->from, when(e->expires_ms, t, sizeof t));
    }
}

/* One live limit as a table row or into a JSON array. */
static int print_live(void *arg, const struct queue_limit *l)
{
    json_t *arr = arg;
    char t[40];
    const char *kind = l->kind == 's' ? "site" : l->kind == 'd' ? "domain"
                       : l->kind == 'a' ? "account" : "campaign";
    if (arr) {
        json_array_append_new(arr, json_pack(
            "{s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "kind", kind, "name", l->name,
            "key", l->key, "value", l->value, "since_ms",
            (json_int_t)l->since_ms, "expires_ms", (json_int_t)l->expires_ms,
            "who", l->who));
        return 0;
    }
    printf("%-8s  %-30s  %-28s  %-12s  %-20s  %s\n", kind, l->name, l->key,
           l->value, when(l->expires_ms, t, sizeof t), l->who);
    return 0;
}

int tool_limits_show(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *domain = NULL, *dns = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            ctx->json = true;
        else if (!strcmp(argv[i], "--effective") && i + 1 < argc)
            domain = argv[++i];
        else if (!strcmp(argv[i], "--dns-server") && i + 1 < argc)
            dns = argv[++i];
        else {
            fprintf(stderr, "usage: sluice limits show [--effective DOMAIN "
                    "[--dns-server LIST]] [--json]\n");
            return TOOL_EX_USAGE;
        }
    }
    struct queue *q;
    int rc = tool_admin_begin(ctx, false, "limits show", &q);
    if (rc)
        return rc;
    if ((rc = tool_authorize(ctx, q, ACT_LIMITS_SHOW, 0, 0, "", NULL))) {
        queue_close(q);
        return rc;
    }
    if (domain) {
        struct config cfg;
        bool loaded;
        char buf[3 * CONFIG_DNS_SERVERS_MAX], name[QUEUE_MAX_LIMIT_NAME + 1];
        struct tool_effective *eff = malloc(sizeof *eff);
        rc = tool_config_load(ctx, P, NULL, &cfg, &loaded);
        if (!rc && !loaded) {
            fprintf(stderr, P ": --effective needs sluiced.conf (--config "
                    "FILE or $SLUICE_CONFIG)\n");
            rc = TOOL_EX_CONFIG;
        }
        if (!rc && !eff)
            rc = TOOL_EX_OSERR;
        if (!rc) {
            size_t n = strlen(domain);
            if (n > 1 && domain[n - 1] == '.')
                n--;
            if (n >= sizeof name)
                n = sizeof name - 1;
            for (size_t i = 0; i < n; i++)
                name[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z'
                                 ? domain[i] + 32 : domain[i]);
            name[n] = 0;
            rc = tool_effective(&cfg, q, name,
                                tool_dns_servers(dns, &cfg, buf, sizeof buf),
                                eff);
            if (!rc)
                tool_effective_print(ctx, eff);
        }
        if (loaded)
            config_free(&cfg);
        free(eff);
        queue_close(q);
        return rc;
    }
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr)
        printf("%-8s  %-30s  %-28s  %-12s  %-20s  %s\n", "KIND", "NAME",
               "KEY", "VALUE", "UNTIL", "WHO");
    long n = queue_limits(q, wall_ms(), print_live, arr);
    queue_close(q);
    if (n < 0) {
        json_decref(arr);
        fprintf(stderr, P ": %s\n", queue_strerror((int)n));
        return tool_exit_for((int)n);
    }
    if (arr)
        tool_emit_json(arr);
    else if (!n)
        printf("(no live limits)\n");
    return 0;
}
