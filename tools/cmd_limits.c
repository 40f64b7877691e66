/*
 * cmd_limits.c - `sluice limits`: live limits of sites, domains, accounts
 * and campaigns, kept in the spool and applied by a running sluiced.
 *
 * SYNOPSIS
 *   limits set site|domain|account|campaign NAME KEY=VALUE... [--for DUR]
 *   limits unset site|domain|account|campaign NAME [KEY...]
 *   limits show [--effective DOMAIN [--dns-server LIST]] [--json]
 *
 * DESCRIPTION
 *   Keys and values are sluiced.conf's: a site or domain takes tls,
 *   tls_verify, max_connections, max_messages_per_connection,
 *   max_rcpts_per_message, max_rate and max_connection_rate; an account or
 *   campaign max_rate.  Each value is checked here with the rule the file
 *   is read with (config_limit_set), then stored (queue_limits_change) with
 *   an audit record; sluiced applies it within a second (it polls the
 *   admin generation) and a live value beats the file and the shipped
 *   profiles.  --for makes a clamp that ends by itself.  A site must be
 *   one the configuration or the profiles name (`sluice sites`); an
 *   account is given by name, a campaign by id.
 *
 *   Roles: admin on the master sets and unsets anything.  An admin of a
 *   sub-account may set its own account's and campaigns' max_rate when the
 *   new value is lower than the one in force (live, else sluiced.conf,
 *   else the account's rate cap); raising or unsetting is refused (77,
 *   audited).
 *
 * DIAGNOSTICS
 *   64 bad usage or a value the rule refuses, 66 no such site, account or
 *   campaign, or nothing to unset, 77 refused, 78 a configuration that
 *   does not load.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_campaign.h"
#include "tool_limits.h"

#define P "sluice limits"

static const char usage_text[] =
    "usage: sluice limits set site|domain|account|campaign NAME KEY=VALUE... "
    "[--for DUR]\n"
    "       sluice limits unset site|domain|account|campaign NAME [KEY...]\n"
    "       sluice limits show [--effective DOMAIN [--dns-server LIST]] "
    "[--json]\n"
    "\n"
    "Keys are sluiced.conf's: tls, tls_verify, max_connections,\n"
    "max_messages_per_connection, max_rcpts_per_message, max_rate,\n"
    "max_connection_rate (an account or campaign: max_rate).  A running\n"
    "sluiced applies a change within a second; --for 2h ends it by itself.\n";

int tool_limits_show(struct tool_ctx *ctx, int argc, char **argv);

/* A change being made: its target, keys and the audit text. */
struct change {
    char kind;
    const char *kind_s;
    char name[QUEUE_MAX_LIMIT_NAME + 1];
    const char *keys[QUEUE_MAX_LIMIT_KEYS];
    char values[QUEUE_MAX_LIMIT_KEYS][QUEUE_MAX_LIMIT_VALUE + 1];
    const char *vptr[QUEUE_MAX_LIMIT_KEYS];
    size_t n;
    int64_t for_ms;
    uint32_t account;          /* of an account or campaign target */
};

static int parse_kind(const char *s)
{
    return !strcmp(s, "site") ? 's' : !strcmp(s, "domain") ? 'd'
           : !strcmp(s, "account") ? 'a' : !strcmp(s, "campaign") ? 'c' : 0;
}

/* Parse KIND NAME and the rest (KEY=VALUE for set, KEY for unset). */
static int parse_args(int argc, char **argv, bool set, struct change *c)
{
    memset(c, 0, sizeof *c);
    int i = 1;
    if (argc < 3 || !(c->kind = (char)parse_kind(argv[1]))) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    c->kind_s = argv[1];
    size_t n = strlen(argv[2]);
    if (c->kind == 'd' && n > 1 && argv[2][n - 1] == '.')
        n--;
    if (!n || n >= sizeof c->name) {
        fprintf(stderr, P ": %s name must be 1..%d bytes\n", argv[1],
                QUEUE_MAX_LIMIT_NAME);
        return TOOL_EX_USAGE;
    }
    for (size_t k = 0; k < n; k++)
        c->name[k] = (char)tolower((unsigned char)argv[2][k]);
    for (i = 3; i < argc; i++) {
        if (set && !strcmp(argv[i], "--for") && i + 1 < argc) {
            uint64_t ms;
            if (config_parse_duration_ms(argv[++i], &ms) || ms < 1000 ||
                ms > 366ull * 86400000) {
                fprintf(stderr, P ": --for: '%s' is not a duration of 1s "
                        "to 366d\n", argv[i]);
                return TOOL_EX_USAGE;
            }
            c->for_ms = (int64_t)ms;
            continue;
        }
        if (argv[i][0] == '-' || c->n == QUEUE_MAX_LIMIT_KEYS) {
            fprintf(stderr, "%s", usage_text);
            return TOOL_EX_USAGE;
        }
        char *eq = strchr(argv[i], '=');
        if (set != (eq != NULL)) {
            fprintf(stderr, P ": '%s': want %s\n", argv[i],
                    set ? "KEY=VALUE" : "KEY");
            return TOOL_EX_USAGE;
        }
        if (eq) {
            *eq = 0;
            if (strlen(eq + 1) > QUEUE_MAX_LIMIT_VALUE) {
                fprintf(stderr, P ": %s: value too long\n", argv[i]);
                return TOOL_EX_USAGE;
            }
            snprintf(c->values[c->n], sizeof c->values[c->n], "%s", eq + 1);
        }
        c->keys[c->n] = argv[i];
        c->vptr[c->n] = c->values[c->n];
        c->n++;
    }
    if (set && !c->n) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    /* every key and value by the file's own rule */
    for (size_t k = 0; k < c->n; k++) {
        struct domain_policy pol = { 0 };
        char err[300];
        if (!set && config_limit_key_find(c->keys[k]) < 0) {
            fprintf(stderr, P ": '%s' is not a limit key\n", c->keys[k]);
            return TOOL_EX_USAGE;
        }
        if (set && config_limit_set(c->kind, &pol, c->keys[k], c->values[k],
                                    err, sizeof err)) {
            fprintf(stderr, P ": %s\n", err);
            return TOOL_EX_USAGE;
        }
    }
    return 0;
}

/* The rate in force for account or campaign id: live, else sluiced.conf,
 * else (an account) its rate cap; n 0: unlimited (tool_limits.h). */
struct rate tool_rate_in_force(struct queue *q, const struct config *cfg,
                               char kind, const char *name,
                               const struct queue_account *a)
{
    struct rate r = { 0, 1 };
    unsigned long long id = strtoull(name, NULL, 10);
    if (tool_live_rate(q, kind, name, &r))
        return r;
    for (size_t i = 0; cfg && i < cfg->nid_rates; i++)
        if (cfg->id_rates[i].kind == kind && cfg->id_rates[i].id == id)
            return cfg->id_rates[i].max_rate;
    if (a && a->rate_cap[0] && !config_parse_rate(a->rate_cap, &r))
        r = (struct rate){ 0, 1 };
    return r;
}

/* Resolve an account or campaign target: its id as the stored name and
 * the account it belongs to. */
static int resolve_target(struct tool_ctx *ctx, struct queue *q,
                          struct change *c, struct queue_account *a)
{
    if (c->kind == 'a') {
        int rc = tool_find_account(ctx, q, P, c->name, a);
        if (rc)
            return rc;
        snprintf(c->name, sizeof c->name, "%u", a->id);
        c->account = a->id;
        return 0;
    }
    unsigned long long id;
    struct queue_campaign cp;
    if (!tool_parse_u64(c->name, &id) || !id) {
        fprintf(stderr, P ": a campaign is given by its id\n");
        return TOOL_EX_USAGE;
    }
    int err = queue_campaign_get(q, id, &cp);
    if (err) {
        fprintf(stderr, P ": campaign %llu: %s\n", id,
                err == QUEUE_ENOTFOUND ? "no such campaign"
                                       : queue_strerror(err));
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    c->account = cp.account;
    queue_campaign_clear(&cp);
    if ((err = queue_account_get(q, c->account, a))) {
        fprintf(stderr, P ": %s\n", queue_strerror(err));
        return tool_exit_for(err);
    }
    return 0;
}

/* May the caller make this change?  Admin on the master may; a
 * sub-account's admin only lowers its own account's or campaign's rate. */
static int authorize(struct tool_ctx *ctx, struct queue *q,
                     const struct config *cfg, bool set,
                     const struct change *c, const struct queue_account *a,
                     const char *obj, int *role)
{
    uint32_t master = 0;
    int rm = QUEUE_ROLE_NONE, err;
    if (c->kind == 's' || c->kind == 'd' || !set)
        return tool_authorize(ctx, q, ACT_LIMITS_SET, 0, 0, obj, role);
    if ((err = queue_account_master(q, &master)) ||
        (err = tool_role_on(ctx, q, master, &rm))) {
        fprintf(stderr, P ": %s\n", queue_strerror(err));
        return tool_exit_for(err);
    }
    if (rm >= QUEUE_ROLE_ADMIN)
        return tool_authorize(ctx, q, ACT_LIMITS_SET, 0, 0, obj, role);
    int rc = tool_authorize(ctx, q, ACT_LIMITS_LOWER, c->account, 0, obj,
                            role);
    if (rc)
        return rc;
    struct rate now = tool_rate_in_force(q, cfg, c->kind, c->name,
                                    c->kind == 'a' ? a : NULL), want;
    struct domain_policy pol = { 0 };
    char err_s[300], nt[32], wt[32], why[400];
    for (size_t k = 0; k < c->n; k++) {
        config_limit_set(c->kind, &pol, c->keys[k], c->values[k], err_s,
                         sizeof err_s);
        want = pol.max_rate;
        if (config_rate_lower(&want, &now))
            continue;
        config_rate_text(&now, nt, sizeof nt);
        snprintf(why, sizeof why, "a sub-account may only lower its own "
                 "limits: %s max_rate %s is not below %s (needs admin on "
                 "the master)", c->kind_s, config_rate_text(&want, wt,
                                                            sizeof wt),
                 nt[0] ? nt : "unlimited");
        return tool_refuse(ctx, q, ACT_LIMITS_LOWER, c->account, obj, why);
    }
    return 0;
}

/* set and unset: parse, check against the configuration, authorize,
 * store with its audit record. */
static int change(struct tool_ctx *ctx, int argc, char **argv, bool set)
{
    struct change c;
    struct config cfg;
    struct queue_account a;
    bool loaded = false;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int rc = parse_args(argc, argv, set, &c), role = 0;
    if (rc)
        return rc;
    if ((rc = tool_config_load(ctx, P, NULL, &cfg, &loaded)))
        return rc;
    memset(&a, 0, sizeof a);
    if (c.kind == 's' && loaded) {
        bool known = false;
        for (size_t i = 0; i < cfg.nsites; i++)
            known |= !strcmp(cfg.sites[i].lim.name, c.name);
        if (!known) {
            fprintf(stderr, P ": no site '%s' in %s or the shipped provider "
                    "profiles ('sluice sites' lists them; a domain's own "
                    "limits are 'limits set domain')\n", c.name, cfg.path);
            config_free(&cfg);
            return TOOL_EX_NOINPUT;
        }
    }
    struct queue *q;
    if ((rc = tool_admin_begin(ctx, set, set ? "limits set"
                                               : "limits unset", &q))) {
        if (loaded)
            config_free(&cfg);
        return rc;
    }
    if (c.kind == 'a' || c.kind == 'c')
        rc = resolve_target(ctx, q, &c, &a);
    /* the audit object: "site gmail max_rate=2/s max_connections=3 for 2s" */
    size_t used = (size_t)snprintf(obj, sizeof obj, "%s %s", c.kind_s,
                                   c.kind == 'a' ? a.name : c.name);
    for (size_t k = 0; k < c.n && used < sizeof obj; k++)
        used += (size_t)snprintf(obj + used, sizeof obj - used, " %s%s%s",
                                 c.keys[k], set ? "=" : "",
                                 set ? c.values[k] : "");
    if (c.for_ms && used < sizeof obj)
        snprintf(obj + used, sizeof obj - used, " for %llds",
                 (long long)(c.for_ms / 1000));
    if (!rc)
        rc = authorize(ctx, q, loaded ? &cfg : NULL, set, &c, &a, obj, &role);
    if (!rc) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        struct queue_actor by = tool_actor(ctx, role,
                                           ctx->identity->acting_account);
        struct queue_limit_change qc = {
            .kind = c.kind, .name = c.name, .n = c.n, .unset = !set,
            .expires_ms = c.for_ms ? now + c.for_ms : 0,
            .account = c.account ? c.account : ctx->identity->acting_account,
            .object = obj, .by = &by };
        memcpy(qc.keys, c.keys, sizeof qc.keys);
        memcpy(qc.values, c.vptr, sizeof qc.values);
        int err = queue_limits_change(q, &qc);
        if (err == QUEUE_ENOTFOUND) {
            fprintf(stderr, P " unset: %s %s has no live %s\n", c.kind_s,
                    argv[2], c.n ? "limit of those keys" : "limits");
            rc = TOOL_EX_NOINPUT;
        } else if (err) {
            rc = tool_admin_error(P, err);
        } else if (ctx->json) {
            tool_emit_json(json_pack("{s:s,s:s,s:s,s:I}", "action",
                                     set ? "set" : "unset", "kind", c.kind_s,
                                     "name", c.name, "expires_ms",
                                     (json_int_t)qc.expires_ms));
        } else {
            char t[40];
            printf("%s %s\n", set ? "set" : "unset", obj);
            if (qc.expires_ms)
                printf("ends at %s\n", tool_time_text(qc.expires_ms / 1000, t,
                                                      sizeof t));
        }
    }
    queue_close(q);
    if (loaded)
        config_free(&cfg);
    return rc;
}

static int cmd_set(struct tool_ctx *ctx, int argc, char **argv)
{
    return change(ctx, argc, argv, true);
}

static int cmd_unset(struct tool_ctx *ctx, int argc, char **argv)
{
    return change(ctx, argc, argv, false);
}

int tool_limits_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "set", .run = cmd_set },
        { .name = "unset", .run = cmd_unset },
        { .name = "show", .run = tool_limits_show },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
