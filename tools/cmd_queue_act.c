/*
 * cmd_queue_act.c - `sluice queue retry` and `sluice queue bounce`: act on
 * queued mail by destination, campaign or account.
 *
 * DESCRIPTION
 *   queue retry --site S|--domain D|--campaign ID [--account A] [--json]
 *     deferred mail of the selection (tried, waiting for its next
 *     attempt, not held) is made due now (queue_retry_now); a running
 *     sluiced claims it on its next claim, within a second.
 *   queue bounce --domain D|--site S|--campaign ID|--account A
 *                --reason TEXT [--json]
 *     every queued delivery of the selection ends with one "bounced"
 *     event of category admin (queue_bounce_admin): no suppression, no
 *     soft-bounce streak.  A delivery sluiced is sending at that moment
 *     keeps the bounce as its one terminal event.
 *   The options given must all match.  --site takes the domains sluiced's
 *   live view (status.json) puts in that site (the first 1000 it lists of
 *   a site), so it needs sluiced running.  Domains are taken in lower case without a trailing dot.
 *   Who may: admin on the master, or with --account A admin on A
 *   (cmd_queue.c); each change is written to the audit trail after it
 *   commits, with the selection and how many deliveries it touched.
 *
 * DIAGNOSTICS
 *   64 usage (no selection, no reason, a bad campaign id, domain or
 *   reason), 66 no spool or no such account, 69 --site without a running
 *   sluiced or a site it does not know, 75 spool full (a batch already
 *   committed stays: the command can be run again), 77 refused.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"
#include "tool_queue.h"

struct act_args {
    const char *site, *domain_s, *campaign_s, *acct, *reason;
    char domain[QUEUE_MAX_CTL_NAME + 1];
    uint64_t campaign;
};

/* Parse the options of retry (bounce false) or bounce; 0 or 64. */
static int parse(int argc, char **argv, bool bounce, struct act_args *a)
{
    bool bad = false;
    const char *verb = bounce ? "bounce" : "retry";
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--site", &a->site, &bad) &&
            !tool_opt(argc, argv, &i, "--domain", &a->domain_s, &bad) &&
            !tool_opt(argc, argv, &i, "--campaign", &a->campaign_s, &bad) &&
            !tool_opt(argc, argv, &i, "--account", &a->acct, &bad) &&
            !(bounce && tool_opt(argc, argv, &i, "--reason", &a->reason,
                                 &bad)))
            bad = true;
    unsigned long long id = 0;
    if (!bad && a->campaign_s && (!tool_parse_u64(a->campaign_s, &id) || !id))
        bad = true;
    a->campaign = id;
    if (!bad && a->domain_s) {
        size_t n = strlen(a->domain_s);
        if (n > 1 && a->domain_s[n - 1] == '.')
            n--;
        bad = n == 0 || n >= sizeof a->domain;
        for (size_t i = 0; !bad && i < n; i++) {
            unsigned char c = (unsigned char)a->domain_s[i];
            bad = c <= ' ' || c == 0x7f || c == '@';
            a->domain[i] = (char)tolower(c);
        }
        if (!bad)
            a->domain[n] = 0;
    }
    if (!bad && a->site && a->domain_s)
        bad = true;   /* one destination at a time */
    if (!bad && !a->site && !a->domain_s && !a->campaign_s &&
        (!bounce || !a->acct))
        bad = true;
    if (!bad && bounce && (!a->reason || !*a->reason))
        bad = true;
    if (bad) {
        if (bounce)
            fprintf(stderr, "usage: sluice queue bounce --domain D|--site S|"
                    "--campaign ID|--account A --reason TEXT [--json]\n");
        else
            fprintf(stderr, "usage: sluice queue retry --site S|--domain D|"
                    "--campaign ID [--account A] [--json]\n");
        fprintf(stderr, "(sluice queue %s: the options given must all "
                "match; --site and --domain do not go together)\n", verb);
        return TOOL_EX_USAGE;
    }
    return 0;
}

/* The domains of site in sluiced's live view into *doms (pointers into
 * v); 0, or 69 when sluiced does not run or does not know the site. */
static int site_domains(const struct status_view *v, const char *prog,
                        const char *site, const char ***doms, size_t *n)
{
    json_t *sites = v->doc ? json_object_get(v->doc, "sites") : NULL;
    size_t i, k;
    json_t *s, *d;
    *doms = NULL;
    *n = 0;
    if (!v->doc) {
        fprintf(stderr, "%s: --site needs a running sluiced (its live view "
                "says which domains a site holds)%s%s; use --domain\n",
                prog, v->why_not[0] ? ": " : "", v->why_not);
        return TOOL_EX_UNAVAILABLE;
    }
    json_array_foreach(sites, i, s) {
        /* a [site] of sluiced.conf, or a destination that is a site of
         * its own (kind "domain": its one domain) */
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || strcmp(name, site))
            continue;
        json_t *list = json_object_get(s, "domains");
        size_t cnt = json_array_size(list);
        const char **out = calloc(cnt + 1, sizeof *out);
        if (!out)
            return TOOL_EX_OSERR;
        json_array_foreach(list, k, d)
            if (json_is_string(d))
                out[(*n)++] = json_string_value(d);
        *doms = out;
        return 0;
    }
    fprintf(stderr, "%s: sluiced knows no site '%.80s' (sluice status "
            "lists the sites)\n", prog, site);
    return TOOL_EX_UNAVAILABLE;
}

/* retry (bounce false) or bounce: parse, select, authorize, act, audit,
 * report. */
static int run(struct tool_ctx *ctx, int argc, char **argv, bool bounce)
{
    const char *prog = bounce ? "sluice queue bounce" : "sluice queue retry";
    const char *action = bounce ? "queue bounce" : "queue retry";
    struct act_args a = { 0 };
    struct queue_select sel = { 0 };
    struct status_view v = { 0 };
    const char **doms = NULL;
    const char *one[1];
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], result[64];
    struct queue *q;
    uint64_t done = 0;
    bool none = false;
    int rc;

    if ((rc = parse(argc, argv, bounce, &a)))
        return rc;
    if (a.site) {
        if ((rc = status_view_load(&v, ctx)))
            return rc;
        if ((rc = site_domains(&v, prog, a.site, &doms, &sel.ndomains)))
            goto out;
        sel.domains = doms;
        none = sel.ndomains == 0;   /* a site without domains holds none */
    } else if (a.domain_s) {
        one[0] = a.domain;
        sel.domains = one;
        sel.ndomains = 1;
    }
    sel.campaign = a.campaign;
    /* what the audit trail says it acted on (each part cut to fit) */
    snprintf(obj, sizeof obj, "%s%.50s%s%.50s%s%.20s%s%.40s%s%.50s",
             a.site ? " site " : "", a.site ? a.site : "",
             a.domain_s ? " domain " : "", a.domain_s ? a.domain : "",
             a.campaign_s ? " campaign " : "",
             a.campaign_s ? a.campaign_s : "",
             a.acct ? " account " : "", a.acct ? a.acct : "",
             bounce ? " reason: " : "", bounce ? a.reason : "");
    memmove(obj, obj + 1, strlen(obj));   /* the leading space */
    if ((rc = tool_queue_begin(ctx, prog, bounce ? ACT_QUEUE_BOUNCE
                                                 : ACT_QUEUE_RETRY,
                               a.acct, obj, &q, &sel)))
        goto out;
    int err = none ? 0
              : bounce ? queue_bounce_admin(q, &sel, a.reason, &done)
                       : queue_retry_now(q, &sel, &done);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", queue_last_detail());
    if (!err || done) {
        /* audited once committed; a failure after some batches too */
        snprintf(result, sizeof result, "%s: %llu %s", err ? "partly" : "ok",
                 (unsigned long long)done, bounce ? "bounced" : "due now");
        struct queue_actor by = tool_actor(ctx, ctx->identity->acting_role,
                                           ctx->identity->acting_account);
        int aerr = queue_audit_append(q, &by, by.account, action, obj,
                                      result);
        if (aerr)
            fprintf(stderr, "%s: done, but the audit record failed: %s\n",
                    prog, queue_strerror(aerr));
    }
    queue_close(q);
    if (err == -EINVAL) {
        fprintf(stderr, "%s: %s\n", prog, detail);
        rc = TOOL_EX_USAGE;
    } else if (err) {
        fprintf(stderr, "%s: %s: %s (%llu done before it)\n", prog,
                ctx->spool, queue_strerror(err), (unsigned long long)done);
        rc = tool_exit_for(err);
    } else if (ctx->json) {
        tool_emit_json(json_pack("{s:I}", bounce ? "bounced" : "retried",
                                 (json_int_t)done));
    } else if (bounce) {
        printf("bounced %llu queued deliveries (category admin)\n",
               (unsigned long long)done);
    } else {
        printf("%llu deferred deliveries are due now\n",
               (unsigned long long)done);
    }
out:
    free(doms);
    status_view_free(&v);
    return rc;
}

int tool_queue_retry(struct tool_ctx *ctx, int argc, char **argv)
{
    return run(ctx, argc, argv, false);
}

int tool_queue_bounce(struct tool_ctx *ctx, int argc, char **argv)
{
    return run(ctx, argc, argv, true);
}
