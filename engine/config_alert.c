/*
 * config_alert.c - the [alert NAME] sections of sluiced.conf and the
 * [sluiced] keys of alerts (alert_command, alert_from, alert_interval).
 *
 * DESCRIPTION
 *   Each [alert NAME] section is one rule the incident watcher
 *   (incident.c) checks against the rolling windows (signals.c): a signal
 *   (bounce_rate [category = NAME], hard_bounce_rate, complaint_rate,
 *   block_rate, deferral_rate, site_stalled; and the gauges of
 *   signals_gauge.c: backoff_floor, dkim_failure_rate, spool_full,
 *   disk_full, webhook_backlog), the scope it is counted per (account,
 *   campaign, site; engine and webhook for the gauges of those, each
 *   gauge fits one scope: signal_kinds[]), the threshold (a fraction, or
 *   N%; backoff_floor a duration, webhook_backlog a number of events), the
 *   minimum volume below which the rule never fires (the levels spool_full,
 *   disk_full and webhook_backlog have none), the window (1m..1h),
 *   the severity (info, warning, critical), the action (none,
 *   pause_campaign, pause_account, pause_site) and how long the signal
 *   must stay clean before the incident resolves itself (auto_resolve, 0:
 *   never).  Escalation: escalate_after (unacknowledged this long: one
 *   severity level up, again after as long, up to critical) and
 *   escalate_threshold (the value reaching it while open: one level up).
 *   The breaker's end: resume = manual (a person resumes) or probe (after
 *   probe_after, a probe delivery decides; incident_probe.c).  A file
 *   without [alert] sections gets the shipped rules (README "Incidents");
 *   a file with any gets only its own.
 *
 * DIAGNOSTICS
 *   A bad value stops config_load() with FILE:LINE and the reason, through
 *   config_fail(); a section without a signal or scope, a signal counted
 *   per another scope, a threshold in the wrong unit, or an action that
 *   does not fit its scope, is refused once the file is read.
 */
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "queue.h"

static const char *const signal_names[] = {
    [ALERT_BOUNCE_RATE] = "bounce_rate",
    [ALERT_HARD_BOUNCE_RATE] = "hard_bounce_rate",
    [ALERT_COMPLAINT_RATE] = "complaint_rate",
    [ALERT_BLOCK_RATE] = "block_rate",
    [ALERT_DEFERRAL_RATE] = "deferral_rate",
    [ALERT_SITE_STALLED] = "site_stalled",
    [ALERT_BACKOFF_FLOOR] = "backoff_floor",
    [ALERT_DKIM_FAILURE_RATE] = "dkim_failure_rate",
    [ALERT_SPOOL_FULL] = "spool_full",
    [ALERT_DISK_FULL] = "disk_full",
    [ALERT_WEBHOOK_BACKLOG] = "webhook_backlog",
};
static const char *const scope_names[] = {
    [ALERT_SCOPE_ACCOUNT] = "account",
    [ALERT_SCOPE_CAMPAIGN] = "campaign",
    [ALERT_SCOPE_SITE] = "site",
    [ALERT_SCOPE_ENGINE] = "engine",
    [ALERT_SCOPE_WEBHOOK] = "webhook",
};
static const char *const action_names[] = {
    [ALERT_ACT_NONE] = "none",
    [ALERT_ACT_PAUSE_CAMPAIGN] = "pause_campaign",
    [ALERT_ACT_PAUSE_ACCOUNT] = "pause_account",
    [ALERT_ACT_PAUSE_SITE] = "pause_site",
};
static const char *const severity_names[] = { "info", "warning",
                                              "critical" };

#define N(a) (int)(sizeof a / sizeof a[0])

/* The index of name in names[lo..n), or -1. */
static int lookup(const char *const *names, int lo, int n, const char *v)
{
    for (int i = lo; i < n; i++)
        if (names[i] && !strcmp(names[i], v))
            return i;
    return -1;
}

/* Name of a table entry, "?" out of range. */
static const char *name_of(const char *const *names, int n, int i)
{
    return i >= 0 && i < n && names[i] ? names[i] : "?";
}

const char *config_alert_signal_name(int s)
{
    return name_of(signal_names, N(signal_names), s);
}

const char *config_alert_scope_name(int s)
{
    return name_of(scope_names, N(scope_names), s);
}

const char *config_alert_action_name(int a)
{
    return name_of(action_names, N(action_names), a);
}

const char *config_alert_severity_name(int s)
{
    return name_of(severity_names, N(severity_names), s);
}

int config_alert_severity_find(const char *name)
{
    return name ? lookup(severity_names, 0, N(severity_names), name) : -1;
}

#define PROBE_AFTER_S 600           /* probe_after when not given */

/* The shipped rules (README "Incidents"), used when the file has none.
 * Escalation (the last four: escalate_after, escalate_threshold, resume,
 * probe_after): a warning nobody acknowledged within the hour, or that
 * grows, becomes critical; critical rules are at the top already. */
static const struct alert_rule shipped[] = {
    { "block-rate", ALERT_BLOCK_RATE, 0, ALERT_SCOPE_CAMPAIGN, 0.10, 100,
      300, 2, ALERT_ACT_PAUSE_CAMPAIGN, 1800, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "hard-bounces", ALERT_HARD_BOUNCE_RATE, 0, ALERT_SCOPE_CAMPAIGN, 0.05,
      200, 3600, 1, ALERT_ACT_NONE, 3600, 0,
      3600, 0.10, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "bounce-rate", ALERT_BOUNCE_RATE, 0, ALERT_SCOPE_ACCOUNT, 0.10, 500,
      3600, 1, ALERT_ACT_NONE, 3600, 0,
      3600, 0.20, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "complaints", ALERT_COMPLAINT_RATE, 0, ALERT_SCOPE_ACCOUNT, 0.003, 1000,
      3600, 2, ALERT_ACT_NONE, 3600, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "complaints-warn", ALERT_COMPLAINT_RATE, 0, ALERT_SCOPE_ACCOUNT, 0.001,
      1000, 3600, 1, ALERT_ACT_NONE, 3600, 0,
      3600, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "deferral-spike", ALERT_DEFERRAL_RATE, 0, ALERT_SCOPE_SITE, 0.5, 200,
      300, 1, ALERT_ACT_NONE, 900, 0,
      1800, 0.90, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "site-stalled", ALERT_SITE_STALLED, 0, ALERT_SCOPE_SITE, 1.0, 50, 300,
      2, ALERT_ACT_NONE, 900, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "backoff-floor", ALERT_BACKOFF_FLOOR, 0, ALERT_SCOPE_SITE, 600, 20, 900,
      1, ALERT_ACT_NONE, 900, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "dkim-failures", ALERT_DKIM_FAILURE_RATE, 0, ALERT_SCOPE_ACCOUNT, 0.02,
      50, 900, 1, ALERT_ACT_NONE, 1800, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "spool-full-warn", ALERT_SPOOL_FULL, 0, ALERT_SCOPE_ENGINE, 0.80, 0, 300,
      1, ALERT_ACT_NONE, 600, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "spool-full", ALERT_SPOOL_FULL, 0, ALERT_SCOPE_ENGINE, 0.95, 0, 300, 2,
      ALERT_ACT_NONE, 600, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    /* the filesystem only when it is about to fill: a shared disk often
     * runs above 80% for reasons of its own */
    { "disk-full", ALERT_DISK_FULL, 0, ALERT_SCOPE_ENGINE, 0.95, 0, 300, 2,
      ALERT_ACT_NONE, 600, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
    { "webhook-backlog", ALERT_WEBHOOK_BACKLOG, 0, ALERT_SCOPE_WEBHOOK, 10000,
      0, 300, 1, ALERT_ACT_NONE, 600, 0,
      0, 0, ALERT_RESUME_MANUAL, PROBE_AFTER_S },
};

/* What a signal is counted per (0: account, campaign or site, the
 * outcome stream's scopes), the unit of its threshold, and whether
 * min_volume applies (the levels have no volume). */
enum { UNIT_FRACTION, UNIT_SECONDS, UNIT_EVENTS };
static const struct {
    int scope, unit;
    bool volume;
} signal_kinds[] = {
    [ALERT_BOUNCE_RATE] = { 0, UNIT_FRACTION, true },
    [ALERT_HARD_BOUNCE_RATE] = { 0, UNIT_FRACTION, true },
    [ALERT_COMPLAINT_RATE] = { 0, UNIT_FRACTION, true },
    [ALERT_BLOCK_RATE] = { 0, UNIT_FRACTION, true },
    [ALERT_DEFERRAL_RATE] = { 0, UNIT_FRACTION, true },
    [ALERT_SITE_STALLED] = { ALERT_SCOPE_SITE, UNIT_FRACTION, true },
    [ALERT_BACKOFF_FLOOR] = { ALERT_SCOPE_SITE, UNIT_SECONDS, true },
    [ALERT_DKIM_FAILURE_RATE] = { ALERT_SCOPE_ACCOUNT, UNIT_FRACTION, true },
    [ALERT_SPOOL_FULL] = { ALERT_SCOPE_ENGINE, UNIT_FRACTION, false },
    [ALERT_DISK_FULL] = { ALERT_SCOPE_ENGINE, UNIT_FRACTION, false },
    [ALERT_WEBHOOK_BACKLOG] = { ALERT_SCOPE_WEBHOOK, UNIT_EVENTS, false },
};


/* The section's rule, made when new; NULL after config_fail. */
static struct alert_rule *entry(struct config_parse *p, const char *name)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nalerts; i++)
        if (!strcmp(c->alerts[i].name, name))
            return &c->alerts[i];
    size_t n = strlen(name);
    bool ok = n > 0 && n < sizeof c->alerts[0].name;
    for (size_t i = 0; i < n && ok; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') ||
             (name[i] >= '0' && name[i] <= '9') || name[i] == '-' ||
             name[i] == '_';
    if (!ok) {
        config_fail(p, "[alert %s]: the name must be 1..31 bytes of a-z, "
                    "0-9, '-', '_'", name);
        return NULL;
    }
    if (c->nalerts >= CONFIG_MAX_ALERTS) {
        config_fail(p, "more than %d [alert] sections", CONFIG_MAX_ALERTS);
        return NULL;
    }
    struct alert_rule *v = realloc(c->alerts, (c->nalerts + 1) * sizeof *v);
    if (!v) {
        config_fail(p, "out of memory");
        return NULL;
    }
    c->alerts = v;
    struct alert_rule *r = &v[c->nalerts++];
    memset(r, 0, sizeof *r);
    memcpy(r->name, name, n + 1);
    r->window_s = 300;
    r->severity = 1;
    r->auto_resolve_s = 900;
    r->line = p->line;
    r->probe_after_s = PROBE_AFTER_S;
    return r;
}

/* "10%" or "0.1" into a fraction 0 < f <= 1. */
static bool parse_fraction(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v)
        return false;
    if (*end == '%') {
        d /= 100;
        end++;
    }
    if (*end || !(d > 0 && d <= 1))
        return false;
    *out = d;
    return true;
}

/* A threshold: a fraction or percentage (parse_fraction), else a number
 * above 1 (events, seconds) or a duration with its unit (seconds). */
static bool parse_threshold(const char *v, double *out)
{
    char *end;
    uint64_t ms;
    if (parse_fraction(v, out))
        return true;
    double d = strtod(v, &end);
    if (end != v && !*end && d > 1 && d <= 1e12) {
        *out = d;
        return true;
    }
    if (end != v && *end != '%' && !config_parse_duration_ms(v, &ms) &&
        ms >= 1000 && ms <= 86400000) {
        *out = (double)(ms / 1000);
        return true;
    }
    return false;
}

/* The escalation and resume keys of r: 1 taken, 0 after config_fail, -1
 * not one of them. */
static int breaker_key(struct config_parse *p, struct alert_rule *r,
                       const char *key, const char *v)
{
    uint64_t ms;
    if (!strcmp(key, "escalate_after")) {
        if (!strcmp(v, "never"))
            ms = 0;
        else if (config_parse_duration_ms(v, &ms) || ms < 1000 ||
                 ms > 7 * 86400000ull)
            return config_fail(p, "escalate_after: '%s' is not a duration "
                               "of 1s to 7d (or never)", v);
        r->escalate_after_s = (unsigned)(ms / 1000);
        return 1;
    }
    if (!strcmp(key, "escalate_threshold")) {
        /* in the threshold's unit (a fraction, events or seconds) */
        if (!parse_threshold(v, &r->escalate_threshold))
            return config_fail(p, "escalate_threshold: '%s' is not a "
                               "fraction (0.3) or a percentage (30%%) above "
                               "0, or a count or duration like threshold", v);
        return 1;
    }
    if (!strcmp(key, "resume")) {
        if (!strcmp(v, "manual"))
            r->resume = ALERT_RESUME_MANUAL;
        else if (!strcmp(v, "probe"))
            r->resume = ALERT_RESUME_PROBE;
        else
            return config_fail(p, "resume: '%s' is not manual or probe", v);
        return 1;
    }
    if (!strcmp(key, "probe_after")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 ||
            ms > 86400000)
            return config_fail(p, "probe_after: '%s' is not a duration of 1s "
                               "to 1d", v);
        r->probe_after_s = (unsigned)(ms / 1000);
        return 1;
    }
    return -1;
}

int config_alert_section(struct config_parse *p, const char *section,
                         const char *key, const char *v)
{
    struct alert_rule *r = entry(p, section + 6);
    unsigned long u;
    uint64_t ms;
    int i;
    if (!r)
        return 0;
    if (!strcmp(key, "signal")) {
        if ((i = lookup(signal_names, 1, N(signal_names), v)) < 0)
            return config_fail(p, "signal: '%s' is not bounce_rate, "
                               "hard_bounce_rate, complaint_rate, block_rate, "
                               "deferral_rate, site_stalled, backoff_floor, "
                               "dkim_failure_rate, spool_full, disk_full or "
                               "webhook_backlog", v);
        r->signal = i;
    } else if (!strcmp(key, "category")) {
        for (i = 1; i < QUEUE_CAT_COUNT; i++)
            if (!strcmp(queue_category_name(i), v))
                break;
        if (i == QUEUE_CAT_COUNT)
            return config_fail(p, "category: '%s' is not a bounce category",
                               v);
        r->category = i;
    } else if (!strcmp(key, "scope")) {
        if ((i = lookup(scope_names, 1, N(scope_names), v)) < 0)
            return config_fail(p, "scope: '%s' is not account, campaign, "
                               "site, engine or webhook", v);
        r->scope = i;
    } else if (!strcmp(key, "threshold")) {
        if (!parse_threshold(v, &r->threshold))
            return config_fail(p, "threshold: '%s' is not a fraction (0.05) "
                               "or a percentage (5%%) above 0, a number of "
                               "events (10000) or a duration (10m)", v);
    } else if (!strcmp(key, "min_volume")) {
        if (!config_parse_uint(v, 1, 100000000, &u))
            return config_fail(p, "min_volume: '%s' is not 1..100000000", v);
        r->min_volume = (unsigned)u;
    } else if (!strcmp(key, "window")) {
        if (config_parse_duration_ms(v, &ms) || ms < 60000 ||
            ms > 3600000 || ms % 60000)
            return config_fail(p, "window: '%s' is not whole minutes from 1m "
                               "to 1h", v);
        r->window_s = (unsigned)(ms / 1000);
    } else if (!strcmp(key, "severity")) {
        if ((i = lookup(severity_names, 0, N(severity_names), v)) < 0)
            return config_fail(p, "severity: '%s' is not info, warning or "
                               "critical", v);
        r->severity = i;
    } else if (!strcmp(key, "action")) {
        if ((i = lookup(action_names, 0, N(action_names), v)) < 0)
            return config_fail(p, "action: '%s' is not none, pause_campaign, "
                               "pause_account or pause_site", v);
        r->action = i;
    } else if (!strcmp(key, "auto_resolve")) {
        if (!strcmp(v, "never"))
            ms = 0;
        else if (config_parse_duration_ms(v, &ms) || ms > 7 * 86400000ull)
            return config_fail(p, "auto_resolve: '%s' is not a duration up to "
                               "7d", v);
        r->auto_resolve_s = (unsigned)(ms / 1000);
    } else if ((i = breaker_key(p, r, key, v)) >= 0) {
        return i;
    } else {
        return config_fail(p, "unknown key '%s' in [%s]", key, section);
    }
    return 1;
}

int config_alert_daemon_key(struct config_parse *p, const char *key,
                            const char *v)
{
    struct config *c = p->cfg;
    uint64_t ms;
    if (!strcmp(key, "alert_command")) {
        if (*v != '/')
            return config_fail(p, "alert_command: needs an absolute file "
                               "name");
        free(c->alert_command);
        return (c->alert_command = strdup(v)) ? 1
               : config_fail(p, "out of memory");
    }
    if (!strcmp(key, "alert_from")) {
        if (!strchr(v, '@') || strlen(v) > 254 || strpbrk(v, " <>\"\r\n"))
            return config_fail(p, "alert_from: '%s' is not an address", v);
        free(c->alert_from);
        return (c->alert_from = strdup(v)) ? 1
               : config_fail(p, "out of memory");
    }
    if (!strcmp(key, "alert_interval")) {
        if (config_parse_duration_ms(v, &ms) || ms < 1000 ||
            ms > 86400000)
            return config_fail(p, "alert_interval: '%s' is not a duration of "
                               "1s to 1d", v);
        c->alert_interval_ms = (unsigned)ms;
        return 1;
    }
    return -1;
}

/* The signal's scope, threshold and volume as signal_kinds says (after
 * the checks every rule has); false after config_fail. */
static bool signal_check(struct config_parse *p, struct alert_rule *r)
{
    const char *sig = config_alert_signal_name(r->signal);
    int scope = signal_kinds[r->signal].scope;
    if (scope ? r->scope != scope : r->scope > ALERT_SCOPE_SITE) {
        config_fail(p, "[alert %s]: %s is counted per %s", r->name, sig,
                    scope ? config_alert_scope_name(scope)
                          : "account, campaign or site");
        return false;
    }
    switch (signal_kinds[r->signal].unit) {
    case UNIT_FRACTION:
        if (r->threshold > 1) {
            config_fail(p, "[alert %s]: threshold %g: %s needs a fraction "
                        "(0.05) or a percentage (5%%)", r->name,
                        r->threshold, sig);
            return false;
        }
        break;
    case UNIT_SECONDS:
        /* the window slides by the second (signals_sum): a site held
         * all along shows the whole window */
        if (r->threshold < 1 || r->threshold > r->window_s) {
            config_fail(p, "[alert %s]: threshold: %s needs a duration of 1s "
                        "up to the window (%us)", r->name, sig,
                        r->window_s);
            return false;
        }
        break;
    case UNIT_EVENTS:
        if (r->threshold < 1) {
            config_fail(p, "[alert %s]: threshold: %s needs a number of "
                        "events, 1 or more", r->name, sig);
            return false;
        }
        break;
    }
    if (!signal_kinds[r->signal].volume && r->min_volume) {
        config_fail(p, "[alert %s]: %s is a level without a volume: leave "
                    "min_volume out", r->name, sig);
        return false;
    }
    return true;
}

void config_alert_check(struct config_parse *p)
{
    struct config *c = p->cfg;
    if (!c->alert_interval_ms)
        c->alert_interval_ms = 900000;
    if (!c->nalerts) {
        c->alerts = malloc(sizeof shipped);
        if (!c->alerts) {
            config_fail(p, "out of memory");
            return;
        }
        memcpy(c->alerts, shipped, sizeof shipped);
        c->nalerts = N(shipped);
        return;
    }
    for (size_t i = 0; i < c->nalerts; i++) {
        struct alert_rule *r = &c->alerts[i];
        p->line = r->line;
        if (!r->signal || !r->scope) {
            config_fail(p, "[alert %s] needs signal and scope", r->name);
            return;
        }
        if (r->signal != ALERT_SITE_STALLED && r->threshold <= 0) {
            config_fail(p, "[alert %s] needs a threshold", r->name);
            return;
        }
        if (r->signal == ALERT_SITE_STALLED && r->scope != ALERT_SCOPE_SITE) {
            config_fail(p, "[alert %s]: site_stalled is counted per site",
                        r->name);
            return;
        }
        if (!signal_check(p, r))
            return;
        if (!r->min_volume && signal_kinds[r->signal].volume)
            r->min_volume = 100;
        bool fits = r->action == ALERT_ACT_NONE ||
                    r->action == ALERT_ACT_PAUSE_ACCOUNT ||
                    (r->action == ALERT_ACT_PAUSE_CAMPAIGN &&
                     r->scope == ALERT_SCOPE_CAMPAIGN) ||
                    (r->action == ALERT_ACT_PAUSE_SITE &&
                     r->scope == ALERT_SCOPE_SITE);
        if (r->action == ALERT_ACT_PAUSE_ACCOUNT &&
            r->scope == ALERT_SCOPE_SITE)
            fits = false;
        if (r->scope == ALERT_SCOPE_ENGINE || r->scope == ALERT_SCOPE_WEBHOOK)
            fits = r->action == ALERT_ACT_NONE;
        if (!fits) {
            config_fail(p, "[alert %s]: action %s does not fit scope %s",
                        r->name, config_alert_action_name(r->action),
                        config_alert_scope_name(r->scope));
            return;
        }
        if (r->resume == ALERT_RESUME_PROBE && r->action == ALERT_ACT_NONE) {
            config_fail(p, "[alert %s]: resume = probe needs a pause action",
                        r->name);
            return;
        }
        if (r->escalate_threshold > 0 &&
            r->escalate_threshold <= r->threshold) {
            config_fail(p, "[alert %s]: escalate_threshold must be above "
                        "threshold", r->name);
            return;
        }
    }
}

void config_alert_free(struct config *c)
{
    free(c->alerts);
    free(c->alert_command);
    free(c->alert_from);
    c->alerts = NULL;
    c->nalerts = 0;
}
