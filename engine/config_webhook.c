/*
 * config_webhook.c - the [webhook NAME] sections of sluiced.conf.
 *
 * DESCRIPTION
 *   Each [webhook NAME] section names one consumer of the event stream
 *   (webhook.c): where its batches go (url, http or https only), which
 *   events (events = delivered, bounced, ...; all when not given), whose
 *   (account = NAME or ID: that account's events, and its sub-accounts'
 *   when it is the master), how they are signed (secret), how many per
 *   POST (batch), how many POSTs at once (max_in_flight), how long one
 *   POST may take (timeout), how long a batch is retried (max_age) and
 *   where it goes then (dead_letter), and where a new webhook starts in
 *   the stream (start = now | oldest).  NAME is what the spool cursor is
 *   called after ("webhook." NAME), so it is 1..24 bytes of a-z, 0-9,
 *   '.', '_', '-'.
 *
 * DIAGNOSTICS
 *   A bad value stops config_load() with FILE:LINE and the reason, through
 *   config_fail(); a section without url is refused once the file is read.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "queue_admin.h"

/* The spool cursor is "webhook." NAME: QUEUE_MAX_CURSOR_NAME bytes. */
#define WEBHOOK_NAME_MAX (QUEUE_MAX_CURSOR_NAME - 8)

/* Whether NAME is 1..WEBHOOK_NAME_MAX bytes of a-z, 0-9, '.', '_', '-',
 * beginning with a letter or digit. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WEBHOOK_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* Whether url is http:// or https:// with a host, and nothing a header
 * or request line could be split with. */
bool config_webhook_url_ok(const char *url)
{
    const char *rest;
    if (!strncasecmp(url, "http://", 7))
        rest = url + 7;
    else if (!strncasecmp(url, "https://", 8))
        rest = url + 8;
    else
        return false;
    if (!*rest || *rest == '/' || *rest == ':' || strlen(url) > 2000)
        return false;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= ' ' || *c >= 0x7f)
            return false;
    return true;
}

/* The section's entry, made when it is new; NULL after config_fail. */
static struct webhook_config *entry(struct config_parse *p, const char *name)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nwebhooks; i++)
        if (!strcmp(c->webhooks[i].name, name))
            return &c->webhooks[i];
    if (name[0] == 'a' && name[1] >= '0' && name[1] <= '9' &&
        name[strspn(name + 1, "0123456789") + 1] == '.') {
        config_fail(p, "[webhook %s]: names aNUMBER.NAME are those of the "
                    "webhooks kept in the spool (sluice webhook)", name);
        return NULL;
    }
    if (!name_ok(name)) {
        config_fail(p, "[webhook %s]: the name must be 1..%d bytes of a-z, "
                    "0-9, '.', '_', '-'", name, WEBHOOK_NAME_MAX);
        return NULL;
    }
    if (c->nwebhooks >= CONFIG_MAX_WEBHOOKS) {
        config_fail(p, "more than %d [webhook] sections", CONFIG_MAX_WEBHOOKS);
        return NULL;
    }
    struct webhook_config *v = realloc(c->webhooks,
                                       (c->nwebhooks + 1) * sizeof *v);
    if (!v) {
        config_fail(p, "out of memory");
        return NULL;
    }
    c->webhooks = v;
    struct webhook_config *w = &v[c->nwebhooks];
    memset(w, 0, sizeof *w);
    if (!(w->name = strdup(name))) {
        config_fail(p, "out of memory");
        return NULL;
    }
    w->batch = 100;
    w->max_in_flight = 4;
    w->timeout_ms = 10000;
    w->max_age_ms = 86400000ull;
    w->line = p->line;
    c->nwebhooks++;
    return w;
}

/* A fresh copy of v into *dst (one key is given once per section). */
static int set_str(struct config_parse *p, char **dst, const char *v)
{
    if (!(*dst = strdup(v)))
        return config_fail(p, "out of memory");
    return 1;
}

int config_webhook_section(struct config_parse *p, const char *section,
                           const char *key, const char *v)
{
    struct webhook_config *w = entry(p, section + 8);
    unsigned long u;
    uint64_t ms;
    if (!w)
        return 0;
    if (!strcmp(key, "url")) {
        if (!config_webhook_url_ok(v))
            return config_fail(p, "url: '%s' is not an http:// or https:// "
                               "URL", v);
        return set_str(p, &w->url, v);
    }
    if (!strcmp(key, "secret")) {
        if (strlen(v) < 16 || strlen(v) > 1024)
            return config_fail(p, "secret: 16 to 1024 characters");
        return set_str(p, &w->secret, v);
    }
    if (!strcmp(key, "account")) {
        if (!*v || strlen(v) > QUEUE_MAX_ACCOUNT_NAME)
            return config_fail(p, "account: '%s' is not an account name or "
                               "id", v);
        return set_str(p, &w->account, v);
    }
    if (!strcmp(key, "dead_letter"))
        return set_str(p, &w->dead_letter, v);
    if (!strcmp(key, "events")) {
        char bad[64];
        if (!config_event_types(v, &w->events, bad, sizeof bad))
            return config_fail(p, "events: '%s' is not an event type "
                               "(delivered, deferred, bounced, expired, ...)",
                               bad);
        return 1;
    }
    if (!strcmp(key, "batch")) {
        if (!config_parse_uint(v, 1, 10000, &u))
            return config_fail(p, "batch: '%s' is not 1..10000", v);
        w->batch = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "max_in_flight")) {
        if (!config_parse_uint(v, 1, 64, &u))
            return config_fail(p, "max_in_flight: '%s' is not 1..64", v);
        w->max_in_flight = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "timeout")) {
        if (config_parse_duration_ms(v, &ms) || ms < 100 || ms > 600000)
            return config_fail(p, "timeout: '%s' is not a duration of 100ms "
                               "to 10m", v);
        w->timeout_ms = (unsigned)ms;
        return 1;
    }
    if (!strcmp(key, "max_age")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 ||
            ms > 30ull * 86400000)
            return config_fail(p, "max_age: '%s' is not a duration of 1s to "
                               "30d", v);
        w->max_age_ms = ms;
        return 1;
    }
    if (!strcmp(key, "start")) {
        if (strcmp(v, "now") && strcmp(v, "oldest"))
            return config_fail(p, "start: '%s' is not now or oldest", v);
        w->from_oldest = !strcmp(v, "oldest");
        return 1;
    }
    return config_fail(p, "unknown key '%s' in [%s]", key, section);
}

void config_webhook_check(struct config_parse *p)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nwebhooks && !p->err[0]; i++) {
        struct webhook_config *w = &c->webhooks[i];
        p->line = w->line;
        if (!w->url) {
            config_fail(p, "[webhook %s] has no url", w->name);
        } else if (!w->dead_letter && c->spool) {
            size_t n = strlen(c->spool) + strlen(w->name) + 32;
            if (!(w->dead_letter = malloc(n)))
                config_fail(p, "out of memory");
            else
                snprintf(w->dead_letter, n, "%s/webhook-%s.dead.jsonl",
                         c->spool, w->name);
        }
    }
}

void config_webhook_free(struct config *c)
{
    for (size_t i = 0; i < c->nwebhooks; i++) {
        struct webhook_config *w = &c->webhooks[i];
        free(w->name);
        free(w->url);
        free(w->secret);
        free(w->account);
        free(w->dead_letter);
    }
    free(c->webhooks);
    c->webhooks = NULL;
    c->nwebhooks = 0;
}
