/*
 * config_limits.c - the limit keys of a site or domain as one table, the
 * shipped provider profiles, and the entry points `sluice limits` and
 * sluiced's live limits use to read a key with the file's own rule.
 *
 * DESCRIPTION
 *   A limit key has one rule: config_domain_key() in config_policy.c.
 *   config_limit_set() runs that rule on a value that did not come from
 *   the file (a live limit kept in the spool), so a key means the same
 *   wherever it is given.  The provider profiles (config_provider_profiles,
 *   tools/provider-profiles.conf embedded at build time) are read after
 *   the file, with the same handlers: a site the file names keeps every
 *   key the file gave it (and its mx patterns, when it gave some), and
 *   takes the profile's values for the rest.
 *
 * DIAGNOSTICS
 *   config_limit_set() returns -1 with the rule's message; an error in
 *   the profiles' text is reported as "provider profiles: ..." by
 *   config_load() (a build that ships a broken profile fails its tests).
 */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

static const char *const key_names[CONFIG_LK_COUNT] = {
    [CONFIG_LK_TLS] = "tls",
    [CONFIG_LK_TLS_VERIFY] = "tls_verify",
    [CONFIG_LK_MAX_CONNECTIONS] = "max_connections",
    [CONFIG_LK_MAX_MESSAGES_PER_CONNECTION] = "max_messages_per_connection",
    [CONFIG_LK_MAX_RCPTS_PER_MESSAGE] = "max_rcpts_per_message",
    [CONFIG_LK_MAX_RATE] = "max_rate",
    [CONFIG_LK_MAX_CONNECTION_RATE] = "max_connection_rate",
};

const char *config_limit_key_name(int key)
{
    return key >= 0 && key < CONFIG_LK_COUNT ? key_names[key] : "?";
}

int config_limit_key_find(const char *name)
{
    for (int i = 0; i < CONFIG_LK_COUNT; i++)
        if (!strcmp(name, key_names[i]))
            return i;
    return -1;
}

int config_limit_set(char kind, struct domain_policy *pol, const char *key,
                     const char *value, char *err, size_t errlen)
{
    struct config dummy;
    char section[32];
    struct config_parse p = { .cfg = &dummy, .section = section };
    int lk = config_limit_key_find(key);
    snprintf(section, sizeof section, "%s", kind == 's' ? "site"
             : kind == 'd' ? "domain" : kind == 'a' ? "account" : "campaign");
    if (lk < 0 || ((kind == 'a' || kind == 'c') && lk != CONFIG_LK_MAX_RATE)) {
        snprintf(err, errlen, "'%s' is not a limit of a %s (%s)", key,
                 section, kind == 'a' || kind == 'c' ? "max_rate"
                 : "tls, tls_verify, max_connections, "
                   "max_messages_per_connection, max_rcpts_per_message, "
                   "max_rate, max_connection_rate");
        return -1;
    }
    memset(&dummy, 0, sizeof dummy);
    unsigned ini = pol->keys_ini, prof = pol->keys_profile;
    if (config_domain_key(&p, pol, key, value) == 1) {
        pol->keys_ini = ini;       /* the layers are the caller's to say */
        pol->keys_profile = prof;
        return 0;
    }
    snprintf(err, errlen, "%s", p.err);
    return -1;
}

const char *config_limit_text(const struct domain_policy *pol, int key,
                              char *buf, size_t len)
{
    switch (key) {
    case CONFIG_LK_TLS:
        snprintf(buf, len, "%s", config_tls_policy_name(pol->tls));
        break;
    case CONFIG_LK_TLS_VERIFY:
        snprintf(buf, len, "%s", pol->tls_verify ? "yes" : "no");
        break;
    case CONFIG_LK_MAX_CONNECTIONS:
        snprintf(buf, len, "%u", pol->max_connections);
        break;
    case CONFIG_LK_MAX_MESSAGES_PER_CONNECTION:
        snprintf(buf, len, "%u", pol->max_messages_per_connection);
        break;
    case CONFIG_LK_MAX_RCPTS_PER_MESSAGE:
        snprintf(buf, len, "%u", pol->max_rcpts_per_message);
        break;
    case CONFIG_LK_MAX_RATE:
        config_rate_text(&pol->max_rate, buf, len);
        break;
    case CONFIG_LK_MAX_CONNECTION_RATE:
        config_rate_text(&pol->max_connection_rate, buf, len);
        break;
    default:
        snprintf(buf, len, "?");
    }
    return buf;
}

bool config_rate_lower(const struct rate *a, const struct rate *b)
{
    if (!b->n)
        return a->n != 0;
    if (!a->n)
        return false;
    /* a.n / a.per_s < b.n / b.per_s, without division */
    return (uint64_t)a->n * b->per_s < (uint64_t)b->n * a->per_s;
}

/* libinih's handler for the profiles: [site NAME] keys and [backoff]
 * match rules, nothing else. */
static int profile_handler(void *user, const char *section, const char *name,
                           const char *value)
{
    struct config_parse *p = user;
    p->section = section;
    p->line = 0;
    if (!strncmp(section, "site ", 5))
        return config_site_section(p, section, name, value);
    if (!strcmp(section, "backoff") &&
        (!strcmp(name, "match") || !strcmp(name, "suspend_match")))
        return config_backoff_key(p, name, value);
    return config_fail(p, "provider profiles: [%s] %s is not a site key or "
                       "a backoff rule", section, name);
}

int config_profiles_read(struct config_parse *p)
{
    p->profile = true;
    int rc = ini_parse_string(config_provider_profiles, profile_handler, p);
    p->profile = false;
    if (rc && !p->err[0])
        config_fail(p, "provider profiles: syntax error at line %d", rc);
    else if (p->err[0] && strncmp(p->err, "provider profiles", 17)) {
        char why[sizeof p->err];
        snprintf(why, sizeof why, "%s", p->err);
        snprintf(p->err, sizeof p->err, "provider profiles: %.480s", why);
    }
    return p->err[0] ? -1 : 0;
}
