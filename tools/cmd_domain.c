/*
 * cmd_domain.c - `sluice domain`: the domains an account may send from.
 *
 * SYNOPSIS
 *   domain add DOMAIN [--account A] [--selector S] [--algo rsa|ed25519]
 *              [--bits N]
 *   domain list [--account A] [--json]
 *   domain show DOMAIN [--json]
 *   domain verify DOMAIN [--dns-server HOST[:PORT]] [--force]
 *   domain key add|list|retire ...      (cmd_domain_key.c)
 *
 * DESCRIPTION
 *   `add` gives DOMAIN (dkim_domain_norm(): lower case, no trailing dot,
 *   an IDN becomes its A-label, libidn2 UTS #46 non-transitional) to one
 *   account, creates its DKIM key in the key store (dkim_store.h:
 *   SPOOL/dkim/DOMAIN/SELECTOR.key, directories 0700, key 0600; selector
 *   "sl" + YYYYMM unless told, LDH labels taken in lower case; RSA 2048
 *   unless told; an existing key file of that name is used as it is) and
 *   prints the DNS records to publish: the DKIM TXT record in strings of
 *   at most 255 octets (as `sluice dkim keygen` cuts it), and suggested
 *   SPF and DMARC records.  A domain belongs to one account: adding it again, from any
 *   account, is refused.  Mail from a domain not verified for its account
 *   is refused by `sluice inject` and deferred by the engine.
 *
 *   `verify` looks up the DKIM record of every key not retired
 *   (tool_dkim_check, cmd_dkim_check.c), marks each key whose record
 *   matches verified (from then on it signs), and the domain verified when
 *   one did.  A key verified before stays verified when its record no
 *   longer matches (a DNS mistake does not stop the signing), but the exit
 *   code says so.  --force marks the domain and all its keys not retired
 *   verified without DNS (admin of the master only; audited).
 *
 *   Who may: add and verify need admin on the domain's account, list and
 *   show manager.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 invalid domain or one already taken, or a DKIM
 *   record that does not match (verify: of any key; the keys that matched
 *   are verified all the same), 66 unknown account or domain (or a key
 *   file missing from the store), 69 DNS failure, 73 the key cannot be
 *   written, 77 refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dkim_sign.h"
#include "tool_dkim.h"
#include "tool_domain.h"

#define P "sluice domain"

static const char usage_text[] =
    "usage: sluice domain add DOMAIN [--account A] [--selector S]\n"
    "                     [--algo rsa|ed25519] [--bits N]\n"
    "       sluice domain list [--account A] [--json]\n"
    "       sluice domain show DOMAIN [--json]\n"
    "       sluice domain verify DOMAIN [--dns-server HOST[:PORT]] "
    "[--force]\n"
    "       sluice domain key add|list|retire DOMAIN ...  (more DKIM keys)\n"
    "\n"
    "add creates the domain's DKIM key in SPOOL/dkim and prints the DNS\n"
    "records to publish; verify checks the published DKIM record of every\n"
    "key; a key signs once verified.\n";

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *sel_s = NULL, *algo = "rsa", *bits_s = NULL;
    bool bad = false, made = false;
    char dom[QUEUE_MAX_DOMAIN + 1], obj[400];
    struct queue_dkim_sel sel = { 0 };
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    struct queue_sdomain *d = malloc(sizeof *d);
    unsigned long long bits = 2048;
    int rc, r;

    if (!a || !d) {
        free(a);
        free(d);
        return TOOL_EX_OSERR;
    }
    for (int i = 2; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--selector", &sel_s, &bad) &&
            !tool_opt(argc, argv, &i, "--algo", &algo, &bad) &&
            !tool_opt(argc, argv, &i, "--bits", &bits_s, &bad))
            bad = true;
    if (bad || argc < 2 || argv[1][0] == '-' ||
        (strcmp(algo, "rsa") && strcmp(algo, "ed25519")) ||
        (bits_s && (!tool_parse_u64(bits_s, &bits) || bits < 1024 ||
                    bits > 4096))) {
        fprintf(stderr, "%s", usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if (tool_dkim_domain(P " add", argv[1], dom, sizeof dom)) {
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if (sel_s) {
        if (tool_dkim_selector(P " add", sel_s, sel.selector,
                               sizeof sel.selector)) {
            rc = TOOL_EX_USAGE;
            goto out;
        }
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(sel.selector, sizeof sel.selector, "sl%Y%m", &tm);
    }
    if ((rc = tool_admin_begin(ctx, false, "domain add", &q)))
        goto out;
    if (acct) {
        if ((rc = tool_find_account(ctx, q, P " add", acct, a)))
            goto out;
    } else if (queue_account_get(q, tool_default_account(ctx, q), a)) {
        fprintf(stderr, P " add: there is no account yet\n");
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    snprintf(obj, sizeof obj, "domain %s of %s", dom, a->name);
    if ((rc = tool_authorize(ctx, q, ACT_DOMAIN_ADD, a->id, 0, obj, &r)))
        goto out;
    if (queue_sdomain_get(q, dom, d) == 0) {
        bool ours = d->account == a->id;
        fprintf(stderr, P " add: domain %s is already a sending domain "
                "of %s%s%s%s\n", dom, ours ? "this account" : "another account",
                ours ? " (another DKIM key: sluice domain key add " : "",
                ours ? dom : "", ours ? " --selector S)" : "");
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    /* the key: SPOOL/dkim/DOMAIN/SELECTOR.key, absolute for the engine */
    if ((rc = tool_domain_key_file(ctx, P " add", dom, algo, (int)bits, &sel,
                                   &made)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, a->id);
    int err = queue_sdomain_add(q, dom, a->id, &sel, &by);
    if (err) {
        if (made)
            unlink(sel.key_path);
        rc = tool_admin_error(P " add", err);
        goto out;
    }
    if (queue_sdomain_get(q, dom, d)) {
        rc = TOOL_EX_SOFTWARE;
        goto out;
    }
    if (ctx->json) {
        json_t *recs = json_array();
        tool_domain_records(d, NULL, true, recs);
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:o}",
                                 "domain", dom, "account", a->name,
                                 "selector", sel.selector, "algo", sel.algo,
                                 "key", sel.key_path, "key_created", made,
                                 "verified", 0, "records", recs));
    } else {
        printf("added %s to account %s (not verified yet)\n", dom, a->name);
        printf("DKIM key %s (%s) %s %s\n\n", sel.selector, sel.algo,
               made ? "created in" : "taken from", sel.key_path);
        printf("Publish these DNS records, then run: sluice domain verify "
               "%s\n", dom);
        tool_domain_records(d, NULL, true, NULL);
    }
out:
    queue_close(q);
    free(a);
    free(d);
    return rc;
}

/* d's keys as a JSON array of {selector, algo, key, state}. */
static json_t *sels_json(const struct queue_sdomain *d)
{
    json_t *sels = json_array();
    int64_t now = time(NULL);
    for (unsigned i = 0; i < d->nsel; i++)
        json_array_append_new(sels, json_pack(
            "{s:s,s:s,s:s,s:s}", "selector", d->sel[i].selector, "algo",
            d->sel[i].algo, "key", d->sel[i].key_path, "state",
            queue_key_state_name(queue_sdomain_key_state(d, i, now))));
    return sels;
}

/* Rows of `domain list`. */
struct list_ctx {
    struct tool_ctx *ctx;
    struct queue *q;
    uint32_t account;   /* 0: every domain the caller may see */
    json_t *arr;
};

static int list_one(void *arg, const struct queue_sdomain *d)
{
    struct list_ctx *l = arg;
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
    int r;
    if (l->account && d->account != l->account)
        return 0;
    if (!l->account &&
        (tool_role_on(l->ctx, l->q, d->account, &r) ||
         r < QUEUE_ROLE_MANAGER))
        return 0;
    tool_account_name(l->q, d->account, name, sizeof name);
    if (l->arr) {
        json_t *sels = sels_json(d);
        json_array_append_new(l->arr, json_pack(
            "{s:s,s:s,s:b,s:s,s:s?,s:o}", "domain", d->domain, "account",
            name, "verified", d->verified, "created",
            tool_time_text(d->created, ts, sizeof ts), "verified_at",
            d->verified ? tool_time_text(d->verified_at, ts, sizeof ts)
                        : NULL,
            "selectors", sels));
        return 0;
    }
    char sels[QUEUE_MAX_SELECTORS * (QUEUE_MAX_SELECTOR + 1) + 1] = "-";
    size_t n = 0;
    int64_t now = time(NULL);
    for (unsigned i = 0; i < d->nsel; i++)  /* the keys not retired */
        if (queue_sdomain_key_state(d, i, now) != QUEUE_KEY_RETIRED)
            n += (size_t)snprintf(sels + n, sizeof sels - n, "%s%s",
                                  n ? "," : "", d->sel[i].selector);
    printf("%-40s %-20s %-10s %s\n", d->domain, name,
           d->verified ? "verified" : "unverified", sels);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    uint32_t account;
    bool named;
    int rc = tool_list_begin(ctx, argc, argv,
                             "domain", ACT_DOMAIN_LIST, "domains",
                             &q, &account, &named);
    if (rc)
        return rc;
    uint32_t master = 0;
    queue_account_master(q, &master);
    struct list_ctx l = { ctx, q, named || account != master ? account : 0,
                          ctx->json ? json_array() : NULL };
    if (!l.arr)
        printf("%-40s %-20s %-10s %s\n", "DOMAIN", "ACCOUNT", "STATE",
               "SELECTORS");
    long n = queue_sdomains(q, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (l.arr) {
        tool_emit_json(l.arr);
    }
    queue_close(q);
    return rc;
}

int tool_domain_begin(struct tool_ctx *ctx, const char *prog, int act,
                      const char *in, struct queue **q,
                      struct queue_sdomain *d, int *role)
{
    char dom[QUEUE_MAX_DOMAIN + 1], obj[300];
    int rc;
    if (tool_dkim_domain(prog, in, dom, sizeof dom))
        return TOOL_EX_DATAERR;
    if ((rc = tool_admin_begin(ctx, false, prog + 7, q)))
        return rc;
    int err = queue_sdomain_get(*q, dom, d);
    if (err) {
        if (err == QUEUE_ENOTFOUND)
            fprintf(stderr, "%s: no sending domain %s\n", prog, dom);
        else
            fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        queue_close(*q);
        *q = NULL;
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    snprintf(obj, sizeof obj, "domain %s", dom);
    if ((rc = tool_authorize(ctx, *q, act, d->account, 0, obj, role))) {
        queue_close(*q);
        *q = NULL;
    }
    return rc;
}

static int cmd_show(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_sdomain *d = malloc(sizeof *d);
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
    int rc;
    if (!d)
        return TOOL_EX_OSERR;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice domain show DOMAIN [--json]\n");
        free(d);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_domain_begin(ctx, P " show", ACT_DOMAIN_SHOW, argv[1], &q, d,
                           NULL))) {
        free(d);
        return rc;
    }
    tool_account_name(q, d->account, name, sizeof name);
    if (ctx->json) {
        json_t *sels = sels_json(d), *recs = json_array();
        tool_domain_records(d, NULL, true, recs);
        tool_emit_json(json_pack("{s:s,s:s,s:b,s:s,s:o,s:o}", "domain",
                                 d->domain, "account", name, "verified",
                                 d->verified, "created",
                                 tool_time_text(d->created, ts, sizeof ts),
                                 "selectors", sels, "records", recs));
    } else {
        printf("domain     %s\naccount    %s\n", d->domain, name);
        printf("verified   %s\n", d->verified ? tool_time_text(d->verified_at,
                                                               ts, sizeof ts)
                                              : "no");
        for (unsigned i = 0; i < d->nsel; i++)
            printf("dkim       %s (%s, %s) %s\n", d->sel[i].selector,
                   d->sel[i].algo, queue_key_state_name(
                       queue_sdomain_key_state(d, i, time(NULL))),
                   d->sel[i].key_path);
        printf("\nDNS records:\n");
        tool_domain_records(d, NULL, true, NULL);
    }
    queue_close(q);
    free(d);
    return 0;
}

/* Check the published record of every key of d not retired (quiet: each
 * problem on stderr); ok[i] says which matched.  0 when all did, else the
 * first failure's exit code (65 mismatch, 69 DNS, ...). */
static int check_keys(struct tool_ctx *ctx, const struct queue_sdomain *d,
                      const char *dns, int64_t now, bool ok[])
{
    int code = 0;
    for (unsigned i = 0; i < d->nsel; i++) {
        ok[i] = false;
        if (queue_sdomain_key_state(d, i, now) == QUEUE_KEY_RETIRED)
            continue;
        int rc = tool_dkim_check(ctx, d->domain, d->sel[i].selector, dns,
                                 true);
        ok[i] = rc == 0;
        if (rc && !code)
            code = rc;
    }
    return code;
}

static int cmd_verify(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *dns = NULL, *dom_s = NULL;
    bool bad = false, force = false, ok[QUEUE_MAX_SELECTORS] = { false };
    struct queue *q;
    struct queue_sdomain *d = malloc(sizeof *d);
    int rc, r;
    if (!d)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--dns-server", &dns, &bad))
            continue;
        if (!strcmp(argv[i], "--force"))
            force = true;
        else if (argv[i][0] != '-' && !dom_s)
            dom_s = argv[i];
        else
            bad = true;
    }
    if (bad || !dom_s || (force && dns)) {
        fprintf(stderr, "usage: sluice domain verify DOMAIN "
                "[--dns-server HOST[:PORT]] [--force]\n");
        free(d);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_domain_begin(ctx, P " verify",
                                force ? ACT_DOMAIN_FORCE : ACT_DOMAIN_VERIFY,
                                dom_s, &q, d, &r))) {
        free(d);
        return rc;
    }
    int64_t now = time(NULL);
    const char *names[QUEUE_MAX_SELECTORS];
    unsigned n = 0;
    for (unsigned i = 0; force && i < d->nsel; i++)
        ok[i] = queue_sdomain_key_state(d, i, now) != QUEUE_KEY_RETIRED;
    if (!force) {
        unsigned live = 0;
        for (unsigned i = 0; i < d->nsel; i++)
            live += queue_sdomain_key_state(d, i, now) != QUEUE_KEY_RETIRED;
        if (!live) {
            fprintf(stderr, P " verify: %s has no DKIM key to look up\n",
                    d->domain);
            rc = TOOL_EX_DATAERR;
            goto out;
        }
        rc = check_keys(ctx, d, dns, now, ok);
        for (unsigned i = 0; i < d->nsel; i++)
            if (ok[i])
                names[n++] = d->sel[i].selector;
        for (unsigned i = 0; rc && i < d->nsel; i++)
            if (!ok[i] && queue_sdomain_key_state(d, i, now) !=
                              QUEUE_KEY_RETIRED)
                fprintf(stderr, P " verify: %s selector %s not verified: "
                        "its published DKIM record does not match its key%s"
                        "\n", d->domain, d->sel[i].selector,
                        d->sel[i].verified_at ? " (it was verified before "
                        "and goes on signing: fix the record)" : "");
        if (!n) {
            fprintf(stderr, P " verify: %s not verified: no published DKIM "
                    "record matches its key\n", d->domain);
            goto out;
        }
    }
    struct queue_actor by = tool_actor(ctx, r, d->account);
    int err = force ? queue_sdomain_set_verified(q, d->domain, true,
                                                 "forced", &by)
                    : queue_sdomain_keys_verified(q, d->domain, names, n,
                                                  "dns", &by);
    if (err) {
        rc = tool_admin_error(P " verify", err);
        goto out;
    }
    if (ctx->json) {
        json_t *sels = json_array();
        for (unsigned i = 0; i < d->nsel; i++)
            if (ok[i])
                json_array_append_new(sels, json_string(d->sel[i].selector));
        tool_emit_json(json_pack("{s:s,s:b,s:s,s:o,s:b}", "domain",
                                 d->domain, "verified", 1, "how",
                                 force ? "forced" : "dns", "selectors", sels,
                                 "complete", rc == 0));
    } else {
        printf("%s verified%s\n", d->domain,
               force ? " (forced, without DNS)" : "");
        for (unsigned i = 0; i < d->nsel; i++)
            if (ok[i])
                printf("  selector %s verified: it signs\n",
                       d->sel[i].selector);
    }
out:
    queue_close(q);
    free(d);
    return rc;
}

int tool_domain_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "add", .run = cmd_add },
        { .name = "list", .run = cmd_list },
        { .name = "show", .run = cmd_show },
        { .name = "verify", .run = cmd_verify },
        { .name = "key", .run = tool_domain_key_main,
          .usage = tool_domain_key_usage },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
