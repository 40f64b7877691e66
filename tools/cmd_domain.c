/*
 * cmd_domain.c - `sluice domain`: the domains an account may send from.
 *
 * SYNOPSIS
 *   domain add DOMAIN [--account A] [--selector S] [--algo rsa|ed25519]
 *              [--bits N]
 *   domain list [--account A] [--json]
 *   domain show DOMAIN [--json]
 *   domain verify DOMAIN [--dns-server HOST[:PORT]] [--force]
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
 *   `verify` looks the DKIM record up (tool_dkim_check, cmd_dkim.c) and
 *   marks the domain verified when it matches the key; --force marks it
 *   without DNS (admin of the master only; recorded in the audit trail).
 *
 *   Who may: add and verify need admin on the domain's account, list and
 *   show manager.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 invalid domain or one already taken, or a DKIM
 *   record that does not match, 66 unknown account or domain, 69 DNS
 *   failure, 73 the key cannot be written, 77 refused.
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
#include "tool_admin.h"
#include "tool_dkim.h"

#define P "sluice domain"

static const char usage_text[] =
    "usage: sluice domain add DOMAIN [--account A] [--selector S]\n"
    "                     [--algo rsa|ed25519] [--bits N]\n"
    "       sluice domain list [--account A] [--json]\n"
    "       sluice domain show DOMAIN [--json]\n"
    "       sluice domain verify DOMAIN [--dns-server HOST[:PORT]] "
    "[--force]\n"
    "\n"
    "add creates the domain's DKIM key in SPOOL/dkim and prints the DNS\n"
    "records to publish; verify checks the published DKIM record.\n";

/* The TXT record as a JSON object with its strings. */
static json_t *txt_json(const char *name, const char *txt, const char *what)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", name, "type", "TXT",
                     "what", what, "value", txt, "strings",
                     tool_dkim_record_strings(txt));
}

/* The records to publish for d (DKIM from its key files), printed or
 * added to arr. */
static void records(const struct queue_sdomain *d, json_t *arr)
{
    char name[QUEUE_MAX_DOMAIN + QUEUE_MAX_SELECTOR + 16];
    char err[256];
    for (unsigned i = 0; i < d->nsel; i++) {
        struct dkim_keyinfo ki;
        snprintf(name, sizeof name, "%s._domainkey.%s", d->sel[i].selector,
                 d->domain);
        if (dkim_keyinfo_load(d->sel[i].key_path, &ki, err, sizeof err)) {
            fprintf(stderr, P ": %s: %s\n", d->sel[i].key_path, err);
            dkim_keyinfo_free(&ki);
            continue;
        }
        if (arr)
            json_array_append_new(arr, txt_json(name, ki.txt, "dkim"));
        else
            tool_dkim_print_record(name, ki.txt, NULL);
        dkim_keyinfo_free(&ki);
    }
    char spf[] = "v=spf1 a mx ~all";
    char dmarc[QUEUE_MAX_DOMAIN + 64];
    snprintf(dmarc, sizeof dmarc, "v=DMARC1; p=none; rua=mailto:postmaster@%s",
             d->domain);
    snprintf(name, sizeof name, "_dmarc.%s", d->domain);
    if (arr) {
        json_array_append_new(arr, txt_json(d->domain, spf, "spf"));
        json_array_append_new(arr, txt_json(name, dmarc, "dmarc"));
    } else {
        tool_dkim_print_record(d->domain, spf, "suggested SPF: add the addresses "
                  "sluiced sends from");
        tool_dkim_print_record(name, dmarc, "suggested DMARC: start with p=none");
    }
}

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *sel_s = NULL, *algo = "rsa", *bits_s = NULL;
    bool bad = false, made = false;
    char dom[QUEUE_MAX_DOMAIN + 1], spool[PATH_MAX], obj[400];
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
    snprintf(sel.algo, sizeof sel.algo, "%s", algo);
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
        fprintf(stderr, P " add: domain %s is already a sending domain "
                "of %s\n", dom, d->account == a->id ? "this account" : "another account");
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    /* the key: SPOOL/dkim/DOMAIN/SELECTOR.key, absolute for the engine */
    char txt[DKIM_TXT_MAX], root[PATH_MAX], dir[PATH_MAX] = "";
    int e = realpath(ctx->spool, spool) ? 0 : -errno;
    if (!e)
        e = dkim_store_root(root, sizeof root, spool);
    if (!e)
        e = dkim_store_mkdirs(root, dom, dir, sizeof dir);
    if (!e)
        e = dkim_store_path(sel.key_path, sizeof sel.key_path, root, dom,
                            sel.selector);
    if (e) {
        fprintf(stderr, P " add: %s: cannot make the key directory: %s\n",
                dir[0] ? dir : ctx->spool, strerror(-e));
        rc = TOOL_EX_CANTCREAT;
        goto out;
    }
    struct stat st;
    if (stat(sel.key_path, &st) == 0) {
        struct dkim_keyinfo ki;
        char err[256];
        if (dkim_keyinfo_load(sel.key_path, &ki, err, sizeof err)) {
            fprintf(stderr, P " add: %s exists and is not a usable key: %s\n",
                    sel.key_path, err);
            dkim_keyinfo_free(&ki);
            rc = TOOL_EX_CANTCREAT;
            goto out;
        }
        snprintf(txt, sizeof txt, "%s", ki.txt);
        snprintf(sel.algo, sizeof sel.algo, "%s", ki.algo);
        dkim_keyinfo_free(&ki);
    } else {
        int err = dkim_store_keygen(algo, (int)bits, sel.key_path, txt,
                                    sizeof txt);
        if (err) {
            fprintf(stderr, P " add: %s: %s\n", sel.key_path,
                    dkim_strerror(err));
            rc = TOOL_EX_CANTCREAT;
            goto out;
        }
        made = true;
    }
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
        records(d, recs);
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
        records(d, NULL);
    }
out:
    queue_close(q);
    free(a);
    free(d);
    return rc;
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
        json_t *sels = json_array();
        for (unsigned i = 0; i < d->nsel; i++)
            json_array_append_new(sels, json_pack("{s:s,s:s,s:s}", "selector",
                                                  d->sel[i].selector, "algo",
                                                  d->sel[i].algo, "key",
                                                  d->sel[i].key_path));
        json_array_append_new(l->arr, json_pack(
            "{s:s,s:s,s:b,s:s,s:s?,s:o}", "domain", d->domain, "account",
            name, "verified", d->verified, "created",
            tool_time_text(d->created, ts, sizeof ts), "verified_at",
            d->verified ? tool_time_text(d->verified_at, ts, sizeof ts)
                        : NULL,
            "selectors", sels));
        return 0;
    }
    printf("%-40s %-20s %-10s %s\n", d->domain, name,
           d->verified ? "verified" : "unverified",
           d->nsel ? d->sel[0].selector : "-");
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
               "SELECTOR");
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

/* Open, find DOMAIN and check act on its account; 0 or an exit code. */
static int domain_begin(struct tool_ctx *ctx, const char *prog, int act,
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
    if ((rc = domain_begin(ctx, P " show", ACT_DOMAIN_SHOW, argv[1], &q, d,
                           NULL))) {
        free(d);
        return rc;
    }
    tool_account_name(q, d->account, name, sizeof name);
    if (ctx->json) {
        json_t *sels = json_array(), *recs = json_array();
        for (unsigned i = 0; i < d->nsel; i++)
            json_array_append_new(sels, json_pack("{s:s,s:s,s:s}", "selector",
                                                  d->sel[i].selector, "algo",
                                                  d->sel[i].algo, "key",
                                                  d->sel[i].key_path));
        records(d, recs);
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
            printf("dkim       %s (%s) %s\n", d->sel[i].selector,
                   d->sel[i].algo, d->sel[i].key_path);
        printf("\nDNS records:\n");
        records(d, NULL);
    }
    queue_close(q);
    free(d);
    return 0;
}

static int cmd_verify(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *dns = NULL, *dom_s = NULL;
    bool bad = false, force = false;
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
    if ((rc = domain_begin(ctx, P " verify",
                           force ? ACT_DOMAIN_FORCE : ACT_DOMAIN_VERIFY, dom_s,
                           &q, d, &r))) {
        free(d);
        return rc;
    }
    if (!force) {
        if (!d->nsel) {
            fprintf(stderr, P " verify: %s has no DKIM key to look up\n",
                    d->domain);
            rc = TOOL_EX_DATAERR;
            goto out;
        }
        rc = tool_dkim_check(ctx, d->domain, d->sel[0].selector, dns,
                             ctx->json);
        if (rc) {
            fprintf(stderr, P " verify: %s not verified: the published DKIM "
                    "record of %s does not match its key\n", d->domain,
                    d->sel[0].selector);
            goto out;
        }
    }
    struct queue_actor by = tool_actor(ctx, r, d->account);
    int err = queue_sdomain_set_verified(q, d->domain, true,
                                         force ? "forced" : "dns", &by);
    if (err)
        rc = tool_admin_error(P " verify", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:b,s:s}", "domain", d->domain,
                                 "verified", 1, "how",
                                 force ? "forced" : "dns"));
    else
        printf("%s verified%s\n", d->domain, force ? " (forced, without DNS)"
                                                   : "");
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
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
