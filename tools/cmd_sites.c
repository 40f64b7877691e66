/*
 * cmd_sites.c - `sluice sites` and `sluice site-of DOMAIN`: the sites
 * sluiced rolls destinations into, and which one a domain falls in.
 *
 * DESCRIPTION
 *   sites [--json]
 *     Every site of the configuration: the shipped provider profiles
 *     (tools/provider-profiles.conf) and sluiced.conf's [site] sections,
 *     with their MX patterns, limits and where they come from.
 *   site-of DOMAIN [--dns-server LIST] [--json]
 *     Resolves DOMAIN's MX (dns_servers of the configuration, or
 *     --dns-server) and prints the site its first MX host matches and the
 *     limits that apply, key by key, with their layer (as `limits show
 *     --effective`, live limits included when the spool is readable).
 *   Both read sluiced.conf (--config, $SLUICE_CONFIG,
 *   /etc/sluice/sluiced.conf); without one, the shipped profiles over
 *   the built-in defaults.  No role is needed: nothing of an account is
 *   shown, and site-of reads the spool's live limits only when it opens.
 *
 * DIAGNOSTICS
 *   64 bad usage or a bad --dns-server, 78 a configuration that does not
 *   load.  A domain whose MX cannot be resolved is no error: its own
 *   limits apply, and the reason is printed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_limits.h"

/* The configuration: sluiced.conf, else an empty one (the profiles over
 * the defaults), written to a temporary file config_load() reads. */
static int load(struct tool_ctx *ctx, const char *prog, struct config *cfg)
{
    bool loaded;
    int rc = tool_config_load(ctx, prog, NULL, cfg, &loaded);
    if (rc || loaded)
        return rc;
    char path[] = "/tmp/sluice-sites-XXXXXX", err[600];
    int fd = mkstemp(path);
    static const char text[] = "[sluiced]\nspool = /nonexistent\n"
                               "ehlo_hostname = localhost\n";
    if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        fprintf(stderr, "%s: cannot write a temporary file\n", prog);
        return TOOL_EX_OSERR;
    }
    close(fd);
    rc = config_load(path, cfg, err, sizeof err);
    unlink(path);
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return TOOL_EX_SOFTWARE;
    }
    return 0;
}

/* Where a site comes from. */
static const char *origin(const struct site_policy *sp)
{
    return sp->in_file && sp->in_profile ? "profile+ini"
           : sp->in_file ? "ini" : "profile";
}

int tool_sites_main(struct tool_ctx *ctx, int argc, char **argv)
{
    argc = tool_take_json(ctx, argc, argv);
    if (argc > 1) {
        fprintf(stderr, "usage: sluice sites [--json]\n");
        return strcmp(argv[1], "--help") ? TOOL_EX_USAGE : 0;
    }
    struct config cfg;
    int rc = load(ctx, "sluice sites", &cfg);
    if (rc)
        return rc;
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr)
        printf("%-10s  %-11s  %-5s  %-5s  %-10s  %-9s  %s\n", "SITE", "FROM",
               "CONNS", "MSGS", "RATE", "CONN_RATE", "MX");
    for (size_t i = 0; i < cfg.nsites; i++) {
        const struct site_policy *sp = &cfg.sites[i];
        char rate[32], crate[32], mx[1024] = "";
        size_t used = 0;
        for (unsigned k = 0; k < sp->nmx && used < sizeof mx; k++)
            used += (size_t)snprintf(mx + used, sizeof mx - used, "%s%s",
                                     k ? ", " : "", sp->mx[k]);
        config_rate_text(&sp->lim.max_rate, rate, sizeof rate);
        config_rate_text(&sp->lim.max_connection_rate, crate, sizeof crate);
        if (arr) {
            json_t *pats = json_array();
            for (unsigned k = 0; k < sp->nmx; k++)
                json_array_append_new(pats, json_string(sp->mx[k]));
            json_array_append_new(arr, json_pack(
                "{s:s,s:s,s:o,s:i,s:i,s:s,s:s}", "name", sp->lim.name,
                "from", origin(sp), "mx", pats, "max_connections",
                (int)sp->lim.max_connections, "max_messages_per_connection",
                (int)sp->lim.max_messages_per_connection, "max_rate", rate,
                "max_connection_rate", crate));
        } else {
            printf("%-10s  %-11s  %-5u  %-5u  %-10s  %-9s  %s\n",
                   sp->lim.name, origin(sp), sp->lim.max_connections,
                   sp->lim.max_messages_per_connection,
                   rate[0] ? rate : "-", crate[0] ? crate : "-", mx);
        }
    }
    if (arr)
        tool_emit_json(arr);
    config_free(&cfg);
    return 0;
}

int tool_site_of_main(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *domain = NULL, *dns = NULL;
    argc = tool_take_json(ctx, argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dns-server") && i + 1 < argc)
            dns = argv[++i];
        else if (argv[i][0] != '-' && !domain)
            domain = argv[i];
        else
            domain = NULL, i = argc;
    }
    if (!domain || strlen(domain) > QUEUE_MAX_LIMIT_NAME) {
        fprintf(stderr, "usage: sluice site-of DOMAIN [--dns-server LIST] "
                "[--json]\n");
        return TOOL_EX_USAGE;
    }
    char name[QUEUE_MAX_LIMIT_NAME + 1], buf[3 * CONFIG_DNS_SERVERS_MAX];
    size_t n = strlen(domain);
    if (n > 1 && domain[n - 1] == '.')
        n--;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z'
                         ? domain[i] + 32 : domain[i]);
    name[n] = 0;
    struct config cfg;
    int rc = load(ctx, "sluice site-of", &cfg);
    if (rc)
        return rc;
    struct tool_effective *eff = malloc(sizeof *eff);
    struct queue *q = NULL;
    /* the live limits, when the spool is there to read */
    char mdb[4200];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", ctx->spool);
    if (access(mdb, R_OK) == 0 &&
        tool_open_spool(ctx, QUEUE_OPEN_READONLY, &q))
        q = NULL;
    if (!eff)
        rc = TOOL_EX_OSERR;
    else if (!(rc = tool_effective(&cfg, q, name,
                                   tool_dns_servers(dns, &cfg, buf,
                                                    sizeof buf), eff)))
        tool_effective_print(ctx, eff);
    if (q)
        queue_close(q);
    free(eff);
    config_free(&cfg);
    return rc;
}
