/*
 * cmd_domain_key.c - `sluice domain key`: the DKIM selectors of a sending
 * domain, for dual signing and key rotation.
 *
 * SYNOPSIS
 *   domain key add DOMAIN --selector S [--algo rsa|ed25519] [--bits N]
 *   domain key list DOMAIN [--json]
 *   domain key retire DOMAIN --selector S [--after DURATION] [--last]
 *
 * DESCRIPTION
 *   `add` gives DOMAIN one more key (up to four; a full domain first drops
 *   its retired keys from the record, their files stay): the key file is
 *   made in the key store as `domain add` makes it (an existing file of
 *   that name is taken as it is, so a key of `sluice dkim keygen` can be
 *   adopted), and the DKIM record to publish is printed (--json: the same
 *   `records` objects as `domain add`).  The key is pending until `sluice
 *   domain verify` sees its record in DNS; from then on sluiced signs with
 *   it too, next to the domain's other keys (rsa + ed25519: two
 *   signatures), picking the change up within a second.
 *
 *   `list` shows each selector with its algorithm, state (pending,
 *   verified, active, retiring, retired: queue_admin.h) and dates.
 *
 *   `retire` sets the date after which the key signs no more (DURATION as
 *   in sluiced.conf: 30s, 12h, 7d; default at once, at most 366d); sluiced
 *   stops using it at that second with no further command.  Retiring the
 *   last verified key that would still sign is refused unless --last.
 *
 *   This file also holds what `domain add|show` share with `key add`:
 *   making the key file and printing the records (tool_domain.h).
 *
 *   Who may: add and retire need admin on the domain's account (a
 *   sub-account's admin manages its own domains), list manager.  Each
 *   change is audited.
 *
 * DIAGNOSTICS
 *   64 bad options or selector, 65 a selector the domain already has, a
 *   full domain, a key already retired or the last one, 66 unknown domain
 *   or selector, 73 the key cannot be written, 77 refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dkim_sign.h"
#include "tool_dkim.h"
#include "tool_domain.h"

#define P "sluice domain key"
#define AFTER_MAX_MS (366 * 86400000ull)

const char tool_domain_key_usage[] =
    "usage: sluice domain key add DOMAIN --selector S [--algo rsa|ed25519]\n"
    "                             [--bits N]\n"
    "       sluice domain key list DOMAIN [--json]\n"
    "       sluice domain key retire DOMAIN --selector S [--after DURATION]\n"
    "                                [--last]\n"
    "\n"
    "add makes one more DKIM key for DOMAIN and prints its DNS record; it\n"
    "signs once `sluice domain verify DOMAIN` has seen the record.  retire\n"
    "stops a key signing after DURATION (30s, 12h, 7d; default now);\n"
    "--last allows retiring the last key that would sign.\n";

/* ------------------------------------------------- shared with domain */

/* The TXT record as a JSON object with its strings. */
static json_t *txt_json(const char *name, const char *txt, const char *what)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", name, "type", "TXT",
                     "what", what, "value", txt, "strings",
                     tool_dkim_record_strings(txt));
}

void tool_domain_records(const struct queue_sdomain *d, const char *only,
                         bool spf_dmarc, json_t *arr)
{
    char name[QUEUE_MAX_DOMAIN + QUEUE_MAX_SELECTOR + 16];
    char err[256];
    for (unsigned i = 0; i < d->nsel; i++) {
        struct dkim_keyinfo ki;
        if (only && strcmp(only, d->sel[i].selector))
            continue;
        snprintf(name, sizeof name, "%s._domainkey.%s", d->sel[i].selector,
                 d->domain);
        if (dkim_keyinfo_load(d->sel[i].key_path, &ki, err, sizeof err)) {
            fprintf(stderr, "sluice domain: %s: %s\n", d->sel[i].key_path,
                    err);
            dkim_keyinfo_free(&ki);
            continue;
        }
        if (arr)
            json_array_append_new(arr, txt_json(name, ki.txt, "dkim"));
        else
            tool_dkim_print_record(name, ki.txt, NULL);
        dkim_keyinfo_free(&ki);
    }
    if (!spf_dmarc)
        return;
    char spf[] = "v=spf1 a mx ~all";
    char dmarc[QUEUE_MAX_DOMAIN + 64];
    snprintf(dmarc, sizeof dmarc, "v=DMARC1; p=none; rua=mailto:postmaster@%s",
             d->domain);
    snprintf(name, sizeof name, "_dmarc.%s", d->domain);
    if (arr) {
        json_array_append_new(arr, txt_json(d->domain, spf, "spf"));
        json_array_append_new(arr, txt_json(name, dmarc, "dmarc"));
    } else {
        tool_dkim_print_record(d->domain, spf, "suggested SPF: add the "
                               "addresses sluiced sends from");
        tool_dkim_print_record(name, dmarc, "suggested DMARC: start with "
                               "p=none");
    }
}

int tool_domain_key_file(struct tool_ctx *ctx, const char *prog,
                         const char *dom, const char *algo, int bits,
                         struct queue_dkim_sel *sel, bool *made)
{
    char spool[PATH_MAX], root[PATH_MAX], dir[PATH_MAX] = "";
    char txt[DKIM_TXT_MAX];
    *made = false;
    snprintf(sel->algo, sizeof sel->algo, "%s", algo);
    int e = realpath(ctx->spool, spool) ? 0 : -errno;
    if (!e)
        e = dkim_store_root(root, sizeof root, spool);
    if (!e)
        e = dkim_store_mkdirs(root, dom, dir, sizeof dir);
    if (!e)
        e = dkim_store_path(sel->key_path, sizeof sel->key_path, root, dom,
                            sel->selector);
    if (e) {
        fprintf(stderr, "%s: %s: cannot make the key directory: %s\n", prog,
                dir[0] ? dir : ctx->spool, strerror(-e));
        return TOOL_EX_CANTCREAT;
    }
    struct stat st;
    if (stat(sel->key_path, &st) == 0) {
        struct dkim_keyinfo ki;
        char err[256];
        if (dkim_keyinfo_load(sel->key_path, &ki, err, sizeof err)) {
            fprintf(stderr, "%s: %s exists and is not a usable key: %s\n",
                    prog, sel->key_path, err);
            dkim_keyinfo_free(&ki);
            return TOOL_EX_CANTCREAT;
        }
        snprintf(sel->algo, sizeof sel->algo, "%s", ki.algo);
        dkim_keyinfo_free(&ki);
        return 0;
    }
    int err = dkim_store_keygen(algo, bits, sel->key_path, txt, sizeof txt);
    if (err) {
        fprintf(stderr, "%s: %s: %s\n", prog, sel->key_path,
                dkim_strerror(err));
        return TOOL_EX_CANTCREAT;
    }
    *made = true;
    return 0;
}

/* ------------------------------------------------------------- add */

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *sel_s = NULL, *algo = "rsa", *bits_s = NULL, *dom_s = NULL;
    bool bad = false, made = false;
    unsigned long long bits = 2048;
    struct queue_dkim_sel sel = { 0 };
    struct queue_sdomain *d = malloc(sizeof *d);
    struct queue *q = NULL;
    int rc, r;

    if (!d)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--selector", &sel_s, &bad) ||
            tool_opt(argc, argv, &i, "--algo", &algo, &bad) ||
            tool_opt(argc, argv, &i, "--bits", &bits_s, &bad))
            continue;
        if (argv[i][0] != '-' && !dom_s)
            dom_s = argv[i];
        else
            bad = true;
    }
    if (bad || !dom_s || !sel_s ||
        (strcmp(algo, "rsa") && strcmp(algo, "ed25519")) ||
        (bits_s && (!tool_parse_u64(bits_s, &bits) || bits < 1024 ||
                    bits > 4096))) {
        fprintf(stderr, "%s", tool_domain_key_usage);
        free(d);
        return TOOL_EX_USAGE;
    }
    if (tool_dkim_selector(P " add", sel_s, sel.selector,
                           sizeof sel.selector)) {
        free(d);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_domain_begin(ctx, P " add", ACT_DOMAIN_KEY_ADD, dom_s, &q,
                                d, &r))) {
        free(d);
        return rc;
    }
    /* refuse a selector the domain has before a key file is touched */
    for (unsigned i = 0; i < d->nsel; i++)
        if (!strcmp(d->sel[i].selector, sel.selector)) {
            fprintf(stderr, P " add: %s already has the DKIM selector %s "
                    "(%s): a new key needs a new selector\n", d->domain,
                    sel.selector, queue_key_state_name(
                        queue_sdomain_key_state(d, i, time(NULL))));
            rc = TOOL_EX_DATAERR;
            goto out;
        }
    if ((rc = tool_domain_key_file(ctx, P " add", d->domain, algo, (int)bits,
                                   &sel, &made)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, d->account);
    int err = queue_sdomain_key_add(q, d->domain, &sel, &by);
    if (err) {
        if (made)
            unlink(sel.key_path);
        rc = tool_admin_error(P " add", err);
        goto out;
    }
    char dom[QUEUE_MAX_DOMAIN + 1];
    snprintf(dom, sizeof dom, "%s", d->domain);
    if (queue_sdomain_get(q, dom, d)) {
        rc = TOOL_EX_SOFTWARE;
        goto out;
    }
    if (ctx->json) {
        json_t *recs = json_array();
        tool_domain_records(d, sel.selector, false, recs);
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:o}", "domain",
                                 dom, "selector", sel.selector, "algo",
                                 sel.algo, "key", sel.key_path,
                                 "key_created", made, "state", "pending",
                                 "records", recs));
    } else {
        printf("added DKIM key %s (%s) to %s, pending: %s %s\n\n",
               sel.selector, sel.algo, dom,
               made ? "created in" : "taken from", sel.key_path);
        printf("Publish this DNS record, then run: sluice domain verify %s\n"
               "(the key signs, next to the others, once verified)\n", dom);
        tool_domain_records(d, sel.selector, false, NULL);
    }
out:
    queue_close(q);
    free(d);
    return rc;
}

/* ------------------------------------------------------------ list */

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_sdomain *d = malloc(sizeof *d);
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], t1[32], t2[32], t3[32];
    int rc;
    if (!d)
        return TOOL_EX_OSERR;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice domain key list DOMAIN [--json]\n");
        free(d);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_domain_begin(ctx, P " list", ACT_DOMAIN_KEY_LIST, argv[1],
                                &q, d, NULL))) {
        free(d);
        return rc;
    }
    int64_t now = time(NULL);
    tool_account_name(q, d->account, name, sizeof name);
    json_t *sels = ctx->json ? json_array() : NULL;
    if (!sels)
        printf("%-20s %-8s %-9s %-21s %-21s %s\n", "SELECTOR", "ALGO",
               "STATE", "CREATED", "VERIFIED", "RETIRE");
    for (unsigned i = 0; i < d->nsel; i++) {
        const struct queue_dkim_sel *k = &d->sel[i];
        const char *st = queue_key_state_name(
            queue_sdomain_key_state(d, i, now));
        const char *v = k->verified_at
            ? tool_time_text(k->verified_at, t2, sizeof t2) : NULL;
        const char *ra = k->retire_at
            ? tool_time_text(k->retire_at, t3, sizeof t3) : NULL;
        tool_time_text(k->created, t1, sizeof t1);
        if (sels)
            json_array_append_new(sels, json_pack(
                "{s:s,s:s,s:s,s:b,s:s,s:s,s:s?,s:s?}", "selector",
                k->selector, "algo", k->algo, "state", st, "signs",
                queue_sdomain_key_signs(d, i, now), "key", k->key_path,
                "created", t1, "verified_at", v, "retire_at", ra));
        else
            printf("%-20s %-8s %-9s %-21s %-21s %s\n", k->selector, k->algo,
                   st, t1, v ? v : "-", ra ? ra : "-");
    }
    if (sels)
        tool_emit_json(json_pack("{s:s,s:s,s:b,s:o}", "domain", d->domain,
                                 "account", name, "verified", d->verified,
                                 "selectors", sels));
    else if (!d->verified)
        printf("(%s is not verified: no key signs until `sluice domain "
               "verify %s`)\n", d->domain, d->domain);
    queue_close(q);
    free(d);
    return 0;
}

/* ---------------------------------------------------------- retire */

static int cmd_retire(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *sel_s = NULL, *after_s = NULL, *dom_s = NULL;
    bool bad = false, last = false;
    uint64_t after_ms = 0;
    char sel[QUEUE_MAX_SELECTOR + 1], ts[32];
    struct queue_sdomain *d = malloc(sizeof *d);
    struct queue *q;
    int rc, r;

    if (!d)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--selector", &sel_s, &bad) ||
            tool_opt(argc, argv, &i, "--after", &after_s, &bad))
            continue;
        if (!strcmp(argv[i], "--last"))
            last = true;
        else if (argv[i][0] != '-' && !dom_s)
            dom_s = argv[i];
        else
            bad = true;
    }
    if (!bad && after_s && (config_parse_duration_ms(after_s, &after_ms) ||
                            after_ms > AFTER_MAX_MS)) {
        fprintf(stderr, P " retire: --after '%s' is not a duration of at "
                "most 366d (30s, 12h, 7d)\n", after_s);
        free(d);
        return TOOL_EX_USAGE;
    }
    if (bad || !dom_s || !sel_s) {
        fprintf(stderr, "%s", tool_domain_key_usage);
        free(d);
        return TOOL_EX_USAGE;
    }
    if (tool_dkim_selector(P " retire", sel_s, sel, sizeof sel)) {
        free(d);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_domain_begin(ctx, P " retire", ACT_DOMAIN_KEY_RETIRE,
                                dom_s, &q, d, &r))) {
        free(d);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, r, d->account);
    int64_t at = 0;
    int err = queue_sdomain_key_retire(q, d->domain, sel,
                                       (after_ms + 999) / 1000, last, &by,
                                       &at);
    if (err) {
        rc = tool_admin_error(P " retire", err);
    } else if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:s}", "domain", d->domain,
                                 "selector", sel, "retire_at",
                                 tool_time_text(at, ts, sizeof ts)));
    } else {
        printf("DKIM selector %s of %s retires at %s%s\n", sel, d->domain,
               tool_time_text(at, ts, sizeof ts),
               after_ms ? " (it signs until then)" : " (now)");
    }
    queue_close(q);
    free(d);
    return rc;
}

int tool_domain_key_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "add", .run = cmd_add },
        { .name = "list", .run = cmd_list },
        { .name = "retire", .run = cmd_retire },
    };
    static const struct tool_group group = {
        P, tool_domain_key_usage, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
