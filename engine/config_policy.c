/*
 * config_policy.c - the delivery-policy sections of sluiced.conf.
 *
 * DESCRIPTION
 *   The keys of [domain NAME] and [site NAME] (limits, TLS, routes, MX
 *   patterns), [backoff] (the rules that slow or suspend a site, then the
 *   shipped ones), [account N] (sending domains, allow_unsigned) and
 *   [campaign N] (rates), and the look-ups sluiced makes on the result:
 *   the policy of a domain, the site of an MX host, whether a reply
 *   matches a backoff rule.  config.c reads the file and hands each key
 *   of these sections here (config_int.h).
 *
 * DIAGNOSTICS
 *   Like config.c: the first error is kept with its line through
 *   config_fail(), and the handler returns 0 to stop libinih.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "rule_regex.h"

/* Find or create [site NAME]; it starts from the default policy. */
static struct site_policy *site_for(struct config_parse *p, const char *name)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nsites; i++)
        if (!strcasecmp(c->sites[i].lim.name, name))
            return &c->sites[i];
    struct site_policy *n = realloc(c->sites, (c->nsites + 1) * sizeof *n);
    if (!n)
        return NULL;
    c->sites = n;
    struct site_policy *sp = &c->sites[c->nsites];
    memset(sp, 0, sizeof *sp);
    sp->lim = c->def;
    sp->lim.route_host = NULL;
    sp->lim.keys_ini = sp->lim.keys_profile = 0; /* its own keys only */
    sp->lim.line = p->line;
    if (!(sp->lim.name = strdup(name)))
        return NULL;
    /* `sluice pause site` lowercases */
    for (char *ch = sp->lim.name; *ch; ch++)
        *ch = (char)tolower((unsigned char)*ch);
    c->nsites++;
    return sp;
}

/* "CODE ENH /REGEX/" with * for any part; strong rules suspend. */
static int backoff_rule_add(struct config_parse *p, const char *v, bool strong)
{
    struct backoff_policy *b = &p->cfg->backoff;
    struct backoff_rule r = { .strong = strong, .line = p->line };
    char code[8], enh[16];
    int off = 0;
    if (sscanf(v, "%7s %15s %n", code, enh, &off) != 2)
        return config_fail(p, "backoff rule '%s': want CODE ENHANCED [/REGEX/]",
                           v);
    if (strcmp(code, "*")) {
        char *end;
        long cv = strtol(code, &end, 10);
        if (*end || cv < 200 || cv > 599)
            return config_fail(p, "backoff rule '%s': code is not * or 2xx-5xx",
                               v);
        r.code = (int)cv;
    }
    if (strcmp(enh, "*"))
        snprintf(r.enhanced, sizeof r.enhanced, "%s", enh);
    const char *re = v + off;
    if (*re && strcmp(re, "*")) {
        size_t n = strlen(re);
        if (n < 2 || re[0] != '/' || (re[n - 1] != '/' &&
                                      !(n > 2 && re[n - 2] == '/' &&
                                        re[n - 1] == 'i')))
            return config_fail(p, "backoff rule '%s': text pattern must be "
                               "/REGEX/", v);
        size_t end = re[n - 1] == '/' ? n - 1 : n - 2;
        r.regex = strndup(re + 1, end - 1);
        regex_t *rx = malloc(sizeof *rx);
        if (!r.regex || !rx) {
            free(r.regex);
            free(rx);
            return config_fail(p, "out of memory");
        }
        char why[160];
        if (rule_regex_compile(rx, r.regex, REG_EXTENDED | REG_ICASE |
                               REG_NOSUB, why, sizeof why)) {
            free(r.regex);
            free(rx);
            return config_fail(p, "backoff rule '%s': bad regular "
                               "expression: %s", v, why);
        }
        r.compiled = rx;
    }
    struct backoff_rule *n = realloc(b->rules, (b->nrules + 1) * sizeof *n);
    if (!n) {
        if (r.compiled) {
            regfree(r.compiled);
            free(r.compiled);
        }
        free(r.regex);
        return config_fail(p, "out of memory");
    }
    b->rules = n;
    b->rules[b->nrules++] = r;
    return 1;
}

/* One key of the [backoff] section. */
int config_backoff_key(struct config_parse *p, const char *key, const char *v)
{
    struct backoff_policy *b = &p->cfg->backoff;
    unsigned long u;
    uint64_t ms;
    char *end;
    if (!strcmp(key, "match"))
        return backoff_rule_add(p, v, false);
    if (!strcmp(key, "suspend_match"))
        return backoff_rule_add(p, v, true);
    if (!strcmp(key, "decrease") || !strcmp(key, "min_rate_factor")) {
        double d = strtod(v, &end);
        if (*end || !(d > 0.0 && d < 1.0))
            return config_fail(p, "%s: '%s' is not a number between 0 and 1",
                               key, v);
        if (!strcmp(key, "decrease"))
            b->decrease = d;
        else
            b->min_rate_factor = d;
    } else if (!strcmp(key, "suspend")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 || ms > 86400000)
            return config_fail(p, "suspend: '%s' is not 1s..1d", v);
        b->suspend_ms = (unsigned)ms;
    } else if (!strcmp(key, "recover_after")) {
        if (!config_parse_uint(v, 1, 1000000, &u))
            return config_fail(p, "recover_after: '%s' is not 1..1000000", v);
        b->recover_after = (unsigned)u;
    } else {
        return config_fail(p, "unknown key '%s' in [backoff]", key);
    }
    return 1;
}

/* Find or create the policy struct for [domain NAME]. */
static struct domain_policy *domain_for(struct config_parse *p,
                                        const char *name)
{
    struct config *c = p->cfg;
    if (!strcasecmp(name, "default"))
        return &c->def;
    for (size_t i = 0; i < c->ndomains; i++)
        if (!strcasecmp(c->domains[i].name, name))
            return &c->domains[i];
    struct domain_policy *n = realloc(c->domains,
                                      (c->ndomains + 1) * sizeof *n);
    if (!n)
        return NULL;
    c->domains = n;
    struct domain_policy *d = &c->domains[c->ndomains];
    *d = c->def;            /* inherit the default as read so far */
    d->name = strdup(name);
    d->route_host = NULL;
    d->keys_ini = d->keys_profile = 0;
    d->line = p->line;
    if (!d->name)
        return NULL;
    for (char *s = d->name; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    c->ndomains++;
    return d;
}

/* One key of a [domain ...] or [site ...] section (config_int.h).  The
 * shipped profiles (p->profile) do not touch a key the file gave. */
int config_domain_key(struct config_parse *p, struct domain_policy *d,
                      const char *key, const char *v)
{
    unsigned long u;
    int lk = config_limit_key_find(key);
    if (lk >= 0 && p->profile && (d->keys_ini & (1u << lk)))
        return 1;
    if (!strcmp(key, "route")) {
        free(d->route_host);
        d->route_host = NULL;
        if (!config_parse_hostport(v, &d->route_host, &d->route_port))
            return config_fail(p, "route: '%s' is not host[:port]", v);
    } else if (lk == CONFIG_LK_TLS) {
        if (!strcmp(v, "opportunistic")) d->tls = TLS_OPPORTUNISTIC;
        else if (!strcmp(v, "required")) d->tls = TLS_REQUIRED;
        else if (!strcmp(v, "off")) d->tls = TLS_OFF;
        else
            return config_fail(p, "tls: '%s' is not opportunistic, "
                               "required or off", v);
    } else if (lk == CONFIG_LK_TLS_VERIFY) {
        if (!config_parse_bool(v, &d->tls_verify))
            return config_fail(p, "tls_verify: '%s' is not yes or no", v);
    } else if (lk == CONFIG_LK_MAX_CONNECTIONS) {
        if (!config_parse_uint(v, 1, 100000, &u))
            return config_fail(p, "max_connections: '%s' is not 1..100000", v);
        d->max_connections = (unsigned)u;
    } else if (lk == CONFIG_LK_MAX_MESSAGES_PER_CONNECTION) {
        if (!config_parse_uint(v, 1, 1000000, &u))
            return config_fail(p, "max_messages_per_connection: '%s' is not "
                                  "1..1000000", v);
        d->max_messages_per_connection = (unsigned)u;
    } else if (lk == CONFIG_LK_MAX_RCPTS_PER_MESSAGE) {
        if (!config_parse_uint(v, 1, 1000, &u))
            return config_fail(p, "max_rcpts_per_message: '%s' is not 1..1000",
                               v);
        d->max_rcpts_per_message = (unsigned)u;
    } else if (lk == CONFIG_LK_MAX_RATE) {
        if (!config_parse_rate(v, &d->max_rate))
            return config_fail(p, "max_rate: '%s' is not N/s, N/min, N/h "
                               "or N/day", v);
    } else if (lk == CONFIG_LK_MAX_CONNECTION_RATE) {
        if (!config_parse_rate(v, &d->max_connection_rate))
            return config_fail(p, "max_connection_rate: '%s' is not N/s, "
                               "N/min, N/h or N/day", v);
    } else {
        return config_fail(p, "unknown key '%s' in [%s]", key, p->section);
    }
    if (lk >= 0) {
        if (p->profile)
            d->keys_profile |= 1u << lk;
        else
            d->keys_ini |= 1u << lk;
    }
    return 1;
}

/* The [account N] entry for id, made on first use. */
static struct account_policy *account_for(struct config_parse *p, uint32_t id)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->naccounts; i++)
        if (c->accounts[i].id == id)
            return &c->accounts[i];
    struct account_policy *n = realloc(c->accounts,
                                       (c->naccounts + 1) * sizeof *n);
    if (!n)
        return NULL;
    c->accounts = n;
    struct account_policy *a = &n[c->naccounts++];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->allow_unsigned = -1;
    a->line = p->line;
    return a;
}

/* domains = a.example, b.example / allow_unsigned = yes|no / share = N
 * / alert_to, report_to, report_weekly */
static int account_key(struct config_parse *p, uint32_t id, const char *name,
                       const char *value)
{
    struct account_policy *a = account_for(p, id);
    if (!a)
        return config_fail(p, "out of memory");
    if (!strcmp(name, "alert_to")) {
        if (!*value || strlen(value) > 1000 || !strchr(value, '@'))
            return config_fail(p, "alert_to: '%s' is not a list of "
                               "addresses", value);
        free(a->alert_to);
        if (!(a->alert_to = strdup(value)))
            return config_fail(p, "out of memory");
        return 1;
    }
    if (!strcmp(name, "report_to")) {
        if (!*value || strlen(value) > 1000 || !strchr(value, '@'))
            return config_fail(p, "report_to: '%s' is not a list of "
                               "addresses", value);
        free(a->report_to);
        if (!(a->report_to = strdup(value)))
            return config_fail(p, "out of memory");
        return 1;
    }
    if (!strcmp(name, "report_weekly")) {
        if (!config_parse_bool(value, &a->report_weekly))
            return config_fail(p, "report_weekly: '%s' is not yes or no",
                               value);
        return 1;
    }
    if (!strcmp(name, "share")) {
        unsigned long n;
        if (!config_parse_uint(value, 1, CONFIG_MAX_SHARE, &n))
            return config_fail(p, "share: '%s' is not a whole number from 1 "
                               "to %d (the account's weight in turns at a "
                               "destination it shares)", value,
                               CONFIG_MAX_SHARE);
        a->share = (unsigned)n;
        return 1;
    }
    if (!strcmp(name, "allow_unsigned")) {
        bool b;
        if (!config_parse_bool(value, &b))
            return config_fail(p, "allow_unsigned: '%s' is not yes or no",
                               value);
        a->allow_unsigned = b;
        return 1;
    }
    char buf[4096];
    if (strlen(value) >= sizeof buf)
        return config_fail(p, "domains: list too long");
    memcpy(buf, value, strlen(value) + 1);
    for (char *save, *t = strtok_r(buf, ", ", &save); t;
         t = strtok_r(NULL, ", ", &save)) {
        for (char *c = t; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (!config_domain_ok(t))
            return config_fail(p, "domains: '%s' is not a domain name", t);
        for (size_t i = 0; i < p->cfg->naccounts; i++) {
            const struct account_policy *o = &p->cfg->accounts[i];
            for (unsigned k = 0; k < o->ndomains; k++)
                if (!strcmp(o->domains[k], t))
                    return config_fail(p, "domains: %s is already a domain of "
                                       "account %s", t,
                                       o->id == id ? "this" : "another");
        }
        if (a->ndomains == CONFIG_MAX_ACCOUNT_DOMAINS)
            return config_fail(p, "domains: more than 64 for one account");
        if (!(a->domains[a->ndomains] = strdup(t)))
            return config_fail(p, "out of memory");
        a->ndomains++;
    }
    return 1;
}

/* A key of [domain NAME]: the name checked, then domain_key(). */
int config_domain_section(struct config_parse *p, const char *section,
                          const char *name, const char *value)
{
    const char *dn = section + 7;
    while (*dn == ' ')
        dn++;
    if (!*dn || strlen(dn) > 253 || strchr(dn, ' '))
        return config_fail(p, "bad domain section name [%s]", section);
    struct domain_policy *d = domain_for(p, dn);
    if (!d)
        return config_fail(p, "out of memory");
    return config_domain_key(p, d, name, value);
}

/* One key of a [site NAME] section: mx patterns or limits. */
int config_site_section(struct config_parse *p, const char *section,
                        const char *name, const char *value)
{
    const char *sn = section + 5;
    while (*sn == ' ')
        sn++;
    if (!*sn || strlen(sn) > 200 || strchr(sn, ' '))
        return config_fail(p, "bad site section name [%s]", section);
    struct site_policy *sp = site_for(p, sn);
    if (!sp)
        return config_fail(p, "out of memory");
    if (p->profile)
        sp->in_profile = true;
    else
        sp->in_file = true;
    if (!strcmp(name, "mx") && p->profile && sp->nmx &&
        !sp->mx_from_profile)
        return 1;  /* the file's patterns replace the profile's */
    if (!strcmp(name, "mx")) {
        sp->mx_from_profile = p->profile;
        char buf[1024];
        if (strlen(value) >= sizeof buf)
            return config_fail(p, "mx: too long");
        memcpy(buf, value, strlen(value) + 1);
        for (char *save, *t = strtok_r(buf, ", ", &save); t;
             t = strtok_r(NULL, ", ", &save)) {
            if (sp->nmx == SITE_MAX_PATTERNS)
                return config_fail(p, "mx: more than 16 patterns in [site %s]",
                                   sn);
            if (!(sp->mx[sp->nmx] = strdup(t)))
                return config_fail(p, "out of memory");
            for (char *c = sp->mx[sp->nmx]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            sp->nmx++;
        }
        return 1;
    }
    if (!strcmp(name, "route"))
        return config_fail(p, "route is for [domain ...] sections, not "
                           "[site %s]", sn);
    return config_domain_key(p, &sp->lim, name, value);
}

/* One key of an [account N] or [campaign N] section. */
int config_id_section(struct config_parse *p, const char *section,
                      const char *name, const char *value)
{
    char kind = section[0] == 'a' ? 'a' : 'c';
    const char *idt = section + (kind == 'a' ? 8 : 9);
    unsigned long id;
    while (*idt == ' ')
        idt++;
    if (!config_parse_uint(idt, 0, 0xffffffffUL, &id))
        return config_fail(p, "[%s]: the id must be a number", section);
    if (kind == 'a' && (!strcmp(name, "domains") ||
                        !strcmp(name, "allow_unsigned") ||
                        !strcmp(name, "alert_to") ||
                        !strcmp(name, "report_to") ||
                        !strcmp(name, "share") ||
                        !strcmp(name, "report_weekly")))
        return account_key(p, (uint32_t)id, name, value);
    if (!strcmp(name, "share"))
        return config_fail(p, "share is for [account N] sections: the "
                           "campaigns of an account share its turns "
                           "equally");
    if (strcmp(name, "max_rate"))
        return config_fail(p, "unknown key '%s' in [%s]", name, section);
    struct config *c = p->cfg;
    struct id_rate *n = realloc(c->id_rates, (c->nid_rates + 1) * sizeof *n);
    if (!n)
        return config_fail(p, "out of memory");
    c->id_rates = n;
    struct id_rate *r = &c->id_rates[c->nid_rates];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->id = id;
    r->line = p->line;
    if (!config_parse_rate(value, &r->max_rate))
        return config_fail(p, "max_rate: '%s' is not N/s, N/min, N/h or N/day",
                           value);
    c->nid_rates++;
    return 1;
}

/* The rules every sluiced knows, after the configured ones: the common
 * throttling replies of large providers. */
static const struct { const char *rule; bool strong; } default_rules[] = {
    { "* 4.7.28 *", true },          /* Gmail: rate limited, unusual rate */
    { "* * /temporarily (rate limited|throttled|deferred due to)/", true },
    { "421 * *", false },
    { "* 4.7.0 *", false },
    { "* * /try again later/", false },
    { "* * /too many (connections|messages|recipients)/", false },
    { "* * /rate limit/", false },
};

/* Add the shipped rules (not counted against a line). */
void config_add_default_rules(struct config_parse *p)
{
    int line = p->line;
    p->line = 0;
    for (size_t i = 0; i < sizeof default_rules / sizeof default_rules[0]; i++)
        backoff_rule_add(p, default_rules[i].rule, default_rules[i].strong);
    p->line = line;
}

const struct domain_policy *config_domain(const struct config *cfg,
                                          const char *domain)
{
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (!strcasecmp(cfg->domains[i].name, domain))
            return &cfg->domains[i];
    return &cfg->def;
}

unsigned config_account_share(const struct config *cfg, uint32_t id)
{
    for (size_t i = 0; i < cfg->naccounts; i++)
        if (cfg->accounts[i].id == id && cfg->accounts[i].share)
            return cfg->accounts[i].share;
    return 1;
}

const char *config_tls_policy_name(enum tls_policy p)
{
    switch (p) {
    case TLS_REQUIRED: return "required";
    case TLS_OFF: return "off";
    default: return "opportunistic";
    }
}

const struct site_policy *config_site_for_mx(const struct config *cfg,
                                             const char *host)
{
    for (size_t i = 0; i < cfg->nsites; i++)
        for (unsigned k = 0; k < cfg->sites[i].nmx; k++)
            if (fnmatch(cfg->sites[i].mx[k], host, FNM_CASEFOLD) == 0)
                return &cfg->sites[i];
    return NULL;
}

int config_backoff_match(const struct backoff_rule *r, int code,
                         const char *enhanced, const char *text)
{
    if (r->code && r->code != code)
        return 0;
    if (r->enhanced[0] && strncmp(enhanced ? enhanced : "", r->enhanced,
                                  strlen(r->enhanced)))
        return 0;
    if (r->compiled && regexec(r->compiled, text ? text : "", 0, NULL, 0))
        return 0;
    return 1;
}
