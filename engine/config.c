/*
 * config.c - load and check sluiced's INI configuration with libinih.
 *
 * DESCRIPTION
 *   The file is read through ini_parse_stream() with config_file.c's line
 *   reader, so every complaint names FILE:LINE.  Unknown sections and keys
 *   are errors (a misspelt limit must not be silently ignored), as are
 *   values out of range, a key given twice in one section, and a file or
 *   directory a key names that is not there.  Defaults are filled in
 *   first; what the file says overrides them.  This file handles the
 *   [sluiced] keys itself and hands the policy sections to
 *   config_policy.c.
 *
 * DIAGNOSTICS
 *   The first error wins and is returned as "FILE:LINE: reason".
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bounce_rules.h"
#include "config_int.h"

static const uint32_t default_retry[] = { 300, 600, 1200, 2400, 3600, 7200,
                                          14400 };

/* RFC 5321 section 4.5.3.2 minimums, plus our own for the extra states. */
static const unsigned default_timeouts[TO_COUNT] = {
    [TO_CONNECT] = 30000, [TO_GREETING] = 300000, [TO_EHLO] = 300000,
    [TO_STARTTLS] = 120000, [TO_TLS] = 60000, [TO_MAIL] = 300000,
    [TO_RCPT] = 300000, [TO_DATA] = 120000, [TO_DATA_BLOCK] = 180000,
    [TO_DATA_DONE] = 600000, [TO_RSET] = 120000, [TO_QUIT] = 10000,
    [TO_IDLE] = 2000,
};

static const char *const timeout_keys[TO_COUNT] = {
    [TO_CONNECT] = "timeout_connect", [TO_GREETING] = "timeout_greeting",
    [TO_EHLO] = "timeout_ehlo", [TO_STARTTLS] = "timeout_starttls",
    [TO_TLS] = "timeout_tls", [TO_MAIL] = "timeout_mail",
    [TO_RCPT] = "timeout_rcpt", [TO_DATA] = "timeout_data",
    [TO_DATA_BLOCK] = "timeout_data_block",
    [TO_DATA_DONE] = "timeout_data_done", [TO_RSET] = "timeout_rset",
    [TO_QUIT] = "timeout_quit", [TO_IDLE] = "idle_timeout",
};

int config_fail(struct config_parse *p, const char *fmt, ...)
{
    if (!p->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->err_line = p->line;
    }
    return 0;
}

/* Replace a string setting. */
static bool set_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return false;
    free(*dst);
    *dst = n;
    return true;
}

/* One key of the [sluiced] section. */
static int daemon_key(struct config_parse *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    unsigned long u;
    uint64_t ms;

    for (int i = 0; i < TO_COUNT; i++) {
        if (strcmp(key, timeout_keys[i]))
            continue;
        if (config_parse_duration_ms(v, &ms) || ms < 1 || ms > 86400000)
            return config_fail(p, "%s: '%s' is not a duration (e.g. 30s, 5m)",
                               key, v);
        c->timeout_ms[i] = (unsigned)ms;
        return 1;
    }
    if (!strcmp(key, "spool")) {
        if (!*v || !set_str(&c->spool, v))
            return config_fail(p, "spool: needs a directory");
    } else if (!strcmp(key, "ehlo_hostname")) {
        for (const char *s = v; *s; s++)
            if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '-'))
                return config_fail(p, "ehlo_hostname: '%s' is not a host name",
                                   v);
        if (!*v || strlen(v) > 255 || !set_str(&c->ehlo_hostname, v))
            return config_fail(p, "ehlo_hostname: '%s' is not a host name", v);
    } else if (!strcmp(key, "dns_servers")) {
        char list[3 * CONFIG_DNS_SERVERS_MAX], bad[CONFIG_DNS_SERVERS_MAX];
        int rc = config_parse_dns_servers(v, list, sizeof list, bad,
                                          sizeof bad);
        if (rc == -EINVAL)
            return config_fail(p, "dns_servers: '%s' is not IP[:PORT] or "
                               "[IPv6][:PORT] (port 1..65535)", bad);
        if (rc)
            return config_fail(p, "dns_servers: %s", rc == -ENOENT ? "no server"
                               : "the list is too long");
        if (!set_str(&c->dns_servers, list))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "dns_timeout")) {
        if (config_parse_duration_ms(v, &ms) || ms < 10 || ms > 60000)
            return config_fail(p, "dns_timeout: '%s' is not 10ms..60s", v);
        c->dns_timeout_ms = (unsigned)ms;
    } else if (!strcmp(key, "dns_tries")) {
        if (!config_parse_uint(v, 1, 10, &u))
            return config_fail(p, "dns_tries: '%s' is not 1..10", v);
        c->dns_tries = (unsigned)u;
    } else if (!strcmp(key, "smtp_port")) {
        if (!config_parse_uint(v, 1, 65535, &u))
            return config_fail(p, "smtp_port: '%s' is not a port", v);
        c->smtp_port = (uint16_t)u;
    } else if (!strcmp(key, "max_connections")) {
        if (!config_parse_uint(v, 1, 100000, &u))
            return config_fail(p, "max_connections: '%s' is not 1..100000", v);
        c->max_connections = (unsigned)u;
    } else if (!strcmp(key, "retry")) {
        if (!config_parse_retry(c, v))
            return config_fail(p, "retry: '%s' is not a list of up to 32 "
                               "durations of 1s or more", v);
    } else if (!strcmp(key, "max_age")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000)
            return config_fail(p, "max_age: '%s' is not a duration of 1s "
                               "or more", v);
        c->max_age = (int64_t)(ms / 1000);
    } else if (!strcmp(key, "bounce_rules")) {
        if (!*v || !set_str(&c->bounce_rules_path, v))
            return config_fail(p, "bounce_rules: needs a file");
    } else if (!strcmp(key, "soft_bounce_limit")) {
        if (!config_parse_uint(v, 1, 1000, &u))
            return config_fail(p, "soft_bounce_limit: '%s' is not 1..1000", v);
        c->soft_bounce_limit = (unsigned)u;
    } else if (!strcmp(key, "soft_bounce_days")) {
        if (!config_parse_uint(v, 1, 3650, &u))
            return config_fail(p, "soft_bounce_days: '%s' is not 1..3650", v);
        c->soft_bounce_days = (unsigned)u;
    } else if (!strcmp(key, "event_log")) {
        if (!*v)
            return config_fail(p, "event_log: needs a file");
        if (!set_str(&c->event_log, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "event_log_rotate")) {
        return config_rotate_key(p, key, v, &c->event_log_rotate);
    } else if (!strcmp(key, "workers")) {
        if (!config_parse_uint(v, 0, 64, &u))
            return config_fail(p, "workers: '%s' is not 0..64", v);
        c->workers = (unsigned)u;
    } else if (!strcmp(key, "drain_timeout")) {
        if (config_parse_duration_ms(v, &ms) || ms > 3600000)
            return config_fail(p, "drain_timeout: '%s' is not a duration up "
                               "to 1h", v);
        c->drain_timeout_ms = (unsigned)ms;
    } else if (!strcmp(key, "pause_recheck")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 || ms > 3600000)
            return config_fail(p, "pause_recheck: '%s' is not 1s..1h", v);
        c->pause_recheck_ms = (unsigned)ms;
    } else if (!strcmp(key, "claim_batch")) {
        if (!config_parse_uint(v, 1, 100000, &u))
            return config_fail(p, "claim_batch: '%s' is not 1..100000", v);
        c->claim_batch = (unsigned)u;
    } else if (!strcmp(key, "max_inflight")) {
        if (!config_parse_uint(v, 1, 10000000, &u))
            return config_fail(p, "max_inflight: '%s' is not 1..10000000", v);
        c->max_inflight = (unsigned)u;
    } else if (!strcmp(key, "max_inflight_bytes")) {
        uint64_t b;
        if (!config_parse_size(v, &b) || b < CONFIG_MIN_INFLIGHT_BYTES ||
            b > CONFIG_MAX_INFLIGHT_BYTES)
            return config_fail(p, "max_inflight_bytes: '%s' is not a size "
                               "from 1MB to 64GB (B, KB, MB or GB, e.g. "
                               "64MB)", v);
        c->max_inflight_bytes = b;
    } else if (!strcmp(key, "group_ops")) {
        if (!config_parse_uint(v, 1, 1000000, &u))
            return config_fail(p, "group_ops: '%s' is not 1..1000000", v);
        c->group_ops = (unsigned)u;
    } else if (!strcmp(key, "group_ms")) {
        if (!config_parse_uint(v, 1, 10000, &u))
            return config_fail(p, "group_ms: '%s' is not 1..10000", v);
        c->group_ms = (unsigned)u;
    } else if (!strcmp(key, "nosync")) {
        if (!config_parse_bool(v, &c->nosync))
            return config_fail(p, "nosync: '%s' is not yes or no", v);
    } else if (!strcmp(key, "map_max")) {
        if (!config_parse_uint(v, 1, 1u << 20, &u))
            return config_fail(p, "map_max: '%s' is not 1..1048576 (MiB)", v);
        c->map_max = (uint64_t)u << 20;
    } else if (!strcmp(key, "provider_profiles")) {
        if (!config_parse_bool(v, &c->provider_profiles))
            return config_fail(p, "provider_profiles: '%s' is not yes or no",
                               v);
    } else if (!strcmp(key, "spool_check")) {
        if (!config_parse_bool(v, &c->spool_check))
            return config_fail(p, "spool_check: '%s' is not yes or no", v);
    } else if (!strcmp(key, "spool_min_free")) {
        if (!config_parse_uint(v, 0, 1u << 20, &u))
            return config_fail(p, "spool_min_free: '%s' is not 0..1048576 "
                               "(MiB)", v);
        c->spool_min_free = (uint64_t)u << 20;
    } else if (!strcmp(key, "dkim_sign")) {
        if (!config_parse_bool(v, &c->dkim_sign))
            return config_fail(p, "dkim_sign: '%s' is not yes or no", v);
    } else if (!strcmp(key, "dkim_keys")) {
        if (!*v)
            return config_fail(p, "dkim_keys: needs a directory");
        if (!set_str(&c->dkim_keys, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "unsubscribe_host")) {
        if (!set_str(&c->unsubscribe_host, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "bounce_domain")) {
        if (!set_str(&c->bounce_domain, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "http_listen")) {
        if (!set_str(&c->http_listen, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "track_scanner_window")) {
        if (config_parse_duration_ms(v, &ms) || ms > 3600000)
            return config_fail(p, "track_scanner_window: '%s' is not a "
                               "duration up to 1h", v);
        c->track_scanner_window_ms = (unsigned)ms;
    } else if (!strcmp(key, "max_request_size")) {
        if (!config_parse_uint(v, 1, 1024, &u))
            return config_fail(p, "max_request_size: '%s' is not 1..1024 "
                               "(MiB)", v);
        c->max_request_size = (uint64_t)u << 20;
    } else if (!strcmp(key, "max_request_recipients")) {
        if (!config_parse_uint(v, 1, 100000, &u))
            return config_fail(p, "max_request_recipients: '%s' is not "
                               "1..100000", v);
        c->max_request_recipients = (unsigned)u;
    } else if (!strcmp(key, "metrics_sites")) {
        if (!config_parse_uint(v, 1, 1000, &u))
            return config_fail(p, "metrics_sites: '%s' is not 1..1000", v);
        c->metrics_sites = (unsigned)u;
    } else if (!strcmp(key, "metrics_accounts")) {
        if (!config_parse_uint(v, 1, 10000, &u))
            return config_fail(p, "metrics_accounts: '%s' is not 1..10000",
                               v);
        c->metrics_accounts = (unsigned)u;
    } else if (!strcmp(key, "feedback_sender")) {
        if (!set_str(&c->feedback_sender, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "feedback_address")) {
        if (!config_mailbox_ok(v))
            return config_fail(p, "feedback_address: '%s' is not an address "
                               "(local@domain)", v);
        if (!set_str(&c->feedback_address, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "status_file")) {
        if (!*v)
            return config_fail(p, "status_file: needs a file");
        if (!set_str(&c->status_file, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "tls_ca_file")) {
        if (!*v)
            return config_fail(p, "tls_ca_file: needs a file");
        if (!set_str(&c->tls_ca_file, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "report_hourly_days")) {
        if (!config_parse_uint(v, 1, 3660, &u))
            return config_fail(p, "report_hourly_days: '%s' is not 1..3660",
                               v);
        c->report_hourly_days = (unsigned)u;
    } else if (!strcmp(key, "report_daily_days")) {
        if (!config_parse_uint(v, 1, 36600, &u))
            return config_fail(p, "report_daily_days: '%s' is not 1..36600",
                               v);
        c->report_daily_days = (unsigned)u;
    } else if (!strcmp(key, "audit_key") ||
               !strcmp(key, "audit_checkpoint")) {
        if (*v != '/')
            return config_fail(p, "%s: needs an absolute file name", key);
        if (!set_str(!strcmp(key, "audit_key") ? &c->audit_key
                                               : &c->audit_checkpoint, v))
            return config_fail(p, "out of memory");
    } else if (!strcmp(key, "console_idle_timeout")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 || ms > 86400000)
            return config_fail(p, "console_idle_timeout: '%s' is not 1s..24h",
                               v);
        c->console_idle_timeout_ms = (unsigned)ms;
    } else {
        int r = config_smtpd_key(p, key, v);
        if (r >= 0)
            return r;
        if ((r = config_alert_daemon_key(p, key, v)) >= 0)
            return r;
        return config_fail(p, "unknown key '%s' in [sluiced]", key);
    }
    return 1;
}

/* Refuse a key given twice in one section, and an indented line that
 * continues a key of one value (libinih hands it over as that key again):
 * only the lists domains and mx may go on over indented lines, and
 * [backoff] takes one rule per match or suspend_match line. */
static bool key_once(struct config_parse *p, const char *section,
                     const char *name)
{
    bool continues = config_reader_continues(&p->rd);
    p->rd.after_key = true;
    if (continues) {
        if (!strcmp(name, "domains") || !strcmp(name, "mx"))
            return true;
        config_fail(p,
                    "this indented line continues '%s', which takes one line "
                    "(indent only the lines of a domains or mx list)",
                    name);
        return false;
    }
    if (!strcmp(section, "backoff") &&
        (!strcmp(name, "match") || !strcmp(name, "suspend_match")))
        return true;
    int first = config_seen_add(&p->seen, section, name, p->line);
    if (first > 0)
        config_fail(p, "'%s' is given twice in [%s] (first at line %d)", name,
                    section, first);
    else if (first == -E2BIG)
        config_fail(p, "more than %d keys", CONFIG_MAX_KEYS);
    else if (first < 0)
        config_fail(p, "out of memory");
    return first == 0;
}

/* libinih callback: one name = value under a section. */
static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct config_parse *p = user;
    p->line = p->rd.line;
    p->section = section;
    if (!key_once(p, section, name))
        return 0;
    if (!strcmp(section, "sluiced"))
        return daemon_key(p, name, value);
    if (!strncmp(section, "domain ", 7))
        return config_domain_section(p, section, name, value);
    if (!strncmp(section, "site ", 5))
        return config_site_section(p, section, name, value);
    if (!strcmp(section, "backoff"))
        return config_backoff_key(p, name, value);
    if (!strcmp(section, "account default")) {
        if (strcmp(name, "allow_unsigned"))
            return config_fail(p,
                               "unknown key '%s' in [%s] (only allow_unsigned)",
                               name, section);
        if (!config_parse_bool(value, &p->cfg->allow_unsigned))
            return config_fail(p, "allow_unsigned: '%s' is not yes or no",
                               value);
        return 1;
    }
    if (!strncmp(section, "accounting ", 11))
        return config_accounting_section(p, section, name, value);
    if (!strncmp(section, "account ", 8) || !strncmp(section, "campaign ", 9))
        return config_id_section(p, section, name, value);
    if (!strncmp(section, "webhook ", 8))
        return config_webhook_section(p, section, name, value);
    if (!strncmp(section, "alert ", 6))
        return config_alert_section(p, section, name, value);
    return config_fail(p, "unknown section [%s]", section);
}

/* Fill every default before reading the file. */
static void defaults(struct config *c)
{
    c->dns_timeout_ms = 2000;
    c->dns_tries = 2;
    c->smtp_port = 25;
    c->max_connections = 1000;
    config_smtpd_defaults(&c->smtpd);
    c->retry_steps = sizeof default_retry / sizeof default_retry[0];
    memcpy(c->retry, default_retry, sizeof default_retry);
    c->max_age = 5 * 86400;
    c->report_hourly_days = 35;
    c->report_daily_days = 800;
    c->soft_bounce_limit = 3;
    c->soft_bounce_days = 7;
    c->drain_timeout_ms = 30000;
    c->pause_recheck_ms = 30000;
    c->track_scanner_window_ms = 10000;
    c->claim_batch = 2000;
    c->group_ops = 1024;
    c->group_ms = 25;
    c->spool_min_free = 64ull << 20;
    c->spool_check = true;
    c->provider_profiles = true;
    c->dkim_sign = true;
    c->max_inflight = 60000;
    c->max_inflight_bytes = CONFIG_DEFAULT_INFLIGHT_BYTES;
    c->max_request_size = 16ull << 20;
    c->max_request_recipients = 10000;
    c->metrics_sites = 20;
    c->metrics_accounts = 100;
    memcpy(c->timeout_ms, default_timeouts, sizeof default_timeouts);
    c->def.tls = TLS_OPPORTUNISTIC;
    c->def.max_connections = 10;
    c->def.max_messages_per_connection = 100;
    c->def.max_rcpts_per_message = 100;
    c->backoff.decrease = 0.5;
    c->backoff.min_rate_factor = 0.05;
    c->backoff.suspend_ms = 300000;
    c->backoff.recover_after = 50;
}

/* What can only be checked once the whole file is read: required keys,
 * the bounce rules file, sites without patterns, the files keys name. */
static void check_loaded(struct config_parse *p)
{
    struct config *cfg = p->cfg;
    p->line = 0;
    if (!cfg->spool)
        config_fail(p, "[sluiced] spool is not set");
    else if (!cfg->ehlo_hostname)
        config_fail(p, "[sluiced] ehlo_hostname is not set");
    if (!p->err[0] && !cfg->feedback_address && cfg->bounce_domain &&
        cfg->bounce_domain[0]) {
        size_t n = strlen(cfg->bounce_domain) + 5;
        if (!(cfg->feedback_address = malloc(n)))
            config_fail(p, "out of memory");
        else
            snprintf(cfg->feedback_address, n, "fbl@%s", cfg->bounce_domain);
    }
    if (!p->err[0] && cfg->bounce_rules_path) {
        char why[sizeof p->err - 16];
        p->line = config_seen_line(&p->seen, "sluiced", "bounce_rules");
        if (bounce_rules_load(&cfg->bounce_rules, cfg->bounce_rules_path,
                              why, sizeof why))
            config_fail(p, "bounce_rules: %s", why);
    }
    for (size_t i = 0; i < cfg->nsites && !p->err[0]; i++)
        if (!cfg->sites[i].nmx) {
            p->line = cfg->sites[i].lim.line;
            config_fail(p, "[site %s] has no mx patterns",
                        cfg->sites[i].lim.name);
        }
    if (!p->err[0])
        config_accounting_check(p);
    /* the weekly report needs somewhere to go (report_weekly.c) */
    for (size_t i = 0; i < cfg->naccounts && !p->err[0]; i++)
        if (cfg->accounts[i].report_weekly && !cfg->accounts[i].report_to &&
            !cfg->accounts[i].alert_to) {
            p->line = cfg->accounts[i].line;
            config_fail(p, "[account %u] report_weekly = yes needs "
                        "report_to (or alert_to)", cfg->accounts[i].id);
        }
    if (!p->err[0] &&
        config_check_paths(cfg, &p->seen, p->err, sizeof p->err, &p->line))
        p->err_line = p->line;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    struct config_parse p = { .cfg = cfg };
    memset(cfg, 0, sizeof *cfg);
    defaults(cfg);
    if (!(p.rd.f = fopen(path, "r"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(config_read_line, &p.rd, handler, &p);
    fclose(p.rd.f);
    if (!p.err[0] && p.rd.err[0]) {  /* it stopped after every other line */
        snprintf(p.err, sizeof p.err, "%s", p.rd.err);
        p.err_line = p.rd.err_line;
    }
    if (!p.err[0] && rc == 0 && cfg->provider_profiles)
        config_profiles_read(&p);
    if (!p.err[0])
        config_add_default_rules(&p);
    if (!cfg->def.name)
        cfg->def.name = strdup("default");
    if (!(cfg->path = strdup(path)))
        rc = -2;
    if (rc == 0 && !p.err[0])
        check_loaded(&p);
    if (rc == 0 && !p.err[0])
        config_smtpd_check(&p);
    if (rc == 0 && !p.err[0])
        config_webhook_check(&p);
    if (rc == 0 && !p.err[0])
        config_alert_check(&p);
    config_seen_free(&p.seen);
    if (rc > 0 && (!p.err[0] || rc < p.err_line)) {
        p.err_line = rc;
        snprintf(p.err, sizeof p.err, "syntax error (expected [section] or "
                                      "name = value)");
    } else if (rc < 0 && !p.err[0]) {
        snprintf(p.err, sizeof p.err, "out of memory");
    }
    if (p.err[0]) {
        if (p.err_line > 0)
            snprintf(err, errlen, "%s:%d: %s", path, p.err_line, p.err);
        else
            snprintf(err, errlen, "%s: %s", path, p.err);
        config_free(cfg);
        return -1;
    }
    return 0;
}

static void policy_free(struct domain_policy *d)
{
    free(d->name);
    free(d->route_host);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->spool);
    free(cfg->ehlo_hostname);
    free(cfg->dns_servers);
    free(cfg->event_log);
    config_accounting_free(cfg);
    free(cfg->bounce_rules_path);
    bounce_rules_free(cfg->bounce_rules);
    free(cfg->tls_ca_file);
    free(cfg->audit_key);
    free(cfg->audit_checkpoint);
    config_smtpd_free(&cfg->smtpd);
    config_webhook_free(cfg);
    config_alert_free(cfg);
    policy_free(&cfg->def);
    for (size_t i = 0; i < cfg->ndomains; i++)
        policy_free(&cfg->domains[i]);
    free(cfg->domains);
    for (size_t i = 0; i < cfg->nsites; i++) {
        policy_free(&cfg->sites[i].lim);
        for (unsigned k = 0; k < cfg->sites[i].nmx; k++)
            free(cfg->sites[i].mx[k]);
    }
    free(cfg->sites);
    for (size_t i = 0; i < cfg->backoff.nrules; i++) {
        struct backoff_rule *r = &cfg->backoff.rules[i];
        if (r->compiled) {
            regfree(r->compiled);
            free(r->compiled);
        }
        free(r->regex);
    }
    free(cfg->backoff.rules);
    free(cfg->id_rates);
    free(cfg->status_file);
    free(cfg->dkim_keys);
    free(cfg->unsubscribe_host);
    free(cfg->bounce_domain);
    free(cfg->feedback_sender);
    free(cfg->feedback_address);
    free(cfg->http_listen);
    for (size_t i = 0; i < cfg->naccounts; i++) {
        free(cfg->accounts[i].alert_to);
        free(cfg->accounts[i].report_to);
    }
    for (size_t i = 0; i < cfg->naccounts; i++)
        for (unsigned k = 0; k < cfg->accounts[i].ndomains; k++)
            free(cfg->accounts[i].domains[k]);
    free(cfg->accounts);
    memset(cfg, 0, sizeof *cfg);
}
