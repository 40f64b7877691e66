/*
 * cmd_dkim.c - `sluice dkim keygen|list|check`: make DKIM keys in the
 * spool's key store and list them (check is cmd_dkim_check.c).
 *
 * DESCRIPTION
 *   The key store is <spool>/dkim/DOMAIN/SELECTOR.key (directories 0700,
 *   key files 0600); sluiced loads its signing keys from there.  Its
 *   rules (paths, names, the mode check, records) are dkim/'s
 *   (dkim_store.h); this file is the command line over them.
 *     keygen  writes a new key (dkim_store_keygen()) and prints the TXT
 *             record to publish at SELECTOR._domainkey.DOMAIN, cut into
 *             character-strings of at most 255 octets.
 *     list    shows the keys with algorithm and size, and warns about a
 *             key file that group or others may read (sluiced refuses it).
 *     check   says whether DNS publishes each key (cmd_dkim_check.c).
 *   Domains are taken in lower case without a trailing dot; a U-label
 *   (IDN) domain becomes its A-label (dkim_domain_norm(): libidn2, UTS #46
 *   non-transitional).  Selectors are lower-cased too, so the store holds one spelling.
 *
 * DIAGNOSTICS
 *   Exit 64 bad usage, name, algorithm, size or DNS server; 73 keygen over
 *   an existing key (or a directory it cannot make); 66 no key in the
 *   store; 65 a record that does not publish the key; 69 DNS failed; 77 a
 *   store sluice may not read; 78 a key file readable by group or others
 *   (the message names the chmod that fixes it) or one that is no key.
 *   A file or directory in the store under a name the store would never
 *   make (upper case, an invalid selector) is ignored with a warning.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dkim_sign.h"
#include "tool_admin.h"
#include "tool_dkim.h"

#define ED25519_BITS 256

static const char help_group[] =
    "usage: sluice dkim keygen DOMAIN --selector S [--algo rsa|ed25519]\n"
    "                   [--bits N] [--key PATH] [--json]\n"
    "       sluice dkim list [DOMAIN] [--json]\n"
    "       sluice dkim check DOMAIN [--selector S]\n"
    "                   [--dns-server ADDR[:PORT]] [--json]\n"
    "\n"
    "  keygen  make a key in the store and print the TXT record to publish\n"
    "  list    the keys in the store\n"
    "  check   compare the published DNS records with the keys\n"
    "\n"
    "Keys live in <spool>/dkim/DOMAIN/SELECTOR.key (directories 0700,\n"
    "keys 0600); sluiced signs with them.  'sluice dkim COMMAND --help'\n"
    "says more.\n";

static const char help_keygen[] =
    "usage: sluice dkim keygen DOMAIN --selector S [--algo rsa|ed25519]\n"
    "                          [--bits N] [--key PATH] [--json]\n"
    "\n"
    "Make a new private key for DOMAIN and SELECTOR and print the DNS TXT\n"
    "record to publish at S._domainkey.DOMAIN, in zone-file form with\n"
    "character-strings of at most 255 octets, and where the key went.\n"
    "\n"
    "  DOMAIN      the signing domain (d=); an IDN domain is converted to\n"
    "              its A-label (xn--...)\n"
    "  --selector  the selector (s=), e.g. 2026q1: dot-separated labels of\n"
    "              letters, digits and hyphens\n"
    "  --algo      rsa (default) or ed25519; many receivers do not verify\n"
    "              ed25519 yet, so keep an rsa key beside one\n"
    "  --bits      RSA size, 1024..4096, default 2048\n"
    "  --key PATH  write the key to PATH, not <spool>/dkim/DOMAIN/S.key\n"
    "              (the spool is created if need be)\n"
    "  --json      {domain, selector, algorithm, bits, key, name, txt,\n"
    "              strings}\n"
    "\n"
    "An existing key is never replaced (exit 73): rotate keys by making one\n"
    "under a new selector.  Exit 64 for a bad domain, selector, algorithm\n"
    "or size.\n";

static const char help_list[] =
    "usage: sluice dkim list [DOMAIN] [--json]\n"
    "\n"
    "The keys in <spool>/dkim (only DOMAIN's when given): domain, selector,\n"
    "algorithm, bits and path.  A key file that group or others may read\n"
    "gets a warning with the chmod that fixes it: sluiced refuses such keys.\n"
    "--json gives a list of {domain, selector, algorithm, bits, key,\n"
    "warning}.  Exit 0, or 66 when DOMAIN has no key.\n";

/* =============================================================== keygen */

static int cmd_keygen(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim keygen";
    const char *dom_s = NULL, *sel_s = NULL, *algo = "rsa", *bits_s = NULL;
    const char *keyarg = NULL;
    char dom[DKIM_NAME_MAX + 1], sel[DKIM_NAME_MAX + 1], name[DKIM_NAME_MAX + 2];
    char path[PATH_MAX], dir[PATH_MAX], txt[DKIM_TXT_MAX];
    unsigned long long bits = 2048;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--selector") && has_val) {
            sel_s = argv[++i];
        } else if (!strcmp(a, "--algo") && has_val) {
            algo = argv[++i];
        } else if (!strcmp(a, "--bits") && has_val) {
            bits_s = argv[++i];
        } else if (!strcmp(a, "--key") && has_val) {
            keyarg = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", P, a);
            return TOOL_EX_USAGE;
        } else if (!dom_s) {
            dom_s = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", P, a);
            return TOOL_EX_USAGE;
        }
    }
    if (!dom_s || !sel_s) {
        fprintf(stderr, "%s: %s\nusage: sluice dkim keygen DOMAIN "
                "--selector S [--algo rsa|ed25519] [--bits N] [--key PATH] "
                "[--json]\n", P,
                dom_s ? "--selector is required" : "DOMAIN is required");
        return TOOL_EX_USAGE;
    }
    if (tool_dkim_domain(P, dom_s, dom, sizeof dom) ||
        tool_dkim_selector(P, sel_s, sel, sizeof sel))
        return TOOL_EX_USAGE;
    if (!dkim_record_name(sel, dom, name, sizeof name)) {
        fprintf(stderr, "%s: %s._domainkey.%s is longer than 253 octets\n", P,
                sel, dom);
        return TOOL_EX_USAGE;
    }
    bool ed = !strcmp(algo, "ed25519");
    if (!ed && strcmp(algo, "rsa")) {
        fprintf(stderr, "%s: --algo must be rsa or ed25519, not '%s'\n", P,
                algo);
        return TOOL_EX_USAGE;
    }
    if (bits_s && ed) {
        fprintf(stderr, "%s: --bits is for rsa keys (ed25519 keys have one "
                "size)\n", P);
        return TOOL_EX_USAGE;
    }
    if (bits_s && (!tool_parse_u64(bits_s, &bits) || bits < 1024 ||
                   bits > 4096)) {
        fprintf(stderr, "%s: --bits must be a number from 1024 to 4096, not "
                "'%s'\n", P, bits_s);
        return TOOL_EX_USAGE;
    }

    int rc = 0;
    char root[PATH_MAX];
    if (keyarg) {
        if (snprintf(path, sizeof path, "%s", keyarg) >= (int)sizeof path)
            rc = -ENAMETOOLONG;
    } else if (!(rc = dkim_store_root(root, sizeof root, ctx->spool)) &&
               !(rc = dkim_store_path(path, sizeof path, root, dom, sel))) {
        /* the spool may not exist yet; the store's directories are 0700 */
        rc = dkim_store_mkdirs(root, dom, dir, sizeof dir);
        if (rc) {
            fprintf(stderr, "%s: cannot make directory %s: %s\n", P, dir,
                    strerror(-rc));
            return tool_exit_create(rc);
        }
    }
    if (rc) {
        fprintf(stderr, "%s: key path: %s\n", P, strerror(-rc));
        return TOOL_EX_USAGE;
    }
    rc = dkim_store_keygen(algo, (int)bits, path, txt, sizeof txt);
    if (rc == -EEXIST) {
        fprintf(stderr, "%s: %s already exists; a key is never replaced: "
                "make one under a new selector (and remove the old one once "
                "no mail signed with it is in flight)\n", P, path);
        return TOOL_EX_CANTCREAT;
    }
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, path, dkim_strerror(rc));
        return tool_exit_create(rc);
    }
    if (ed)
        bits = ED25519_BITS;

    if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:o}",
                             "domain", dom, "selector", sel, "algorithm", algo,
                             "bits", (json_int_t)bits, "key", path,
                             "name", name, "txt", txt,
                             "strings", tool_dkim_record_strings(txt)));
        return 0;
    }
    printf("made %s %llu-bit DKIM key for %s, selector %s\nkey: %s\n\n"
           "publish this DNS record:\n", algo, bits, dom, sel, path);
    tool_dkim_print_record(name, txt, NULL);
    printf("\nthen check it: sluice dkim check %s --selector %s\n", dom, sel);
    if (ed)
        printf("note: many receivers do not verify ed25519 signatures yet "
               "(RFC 8463); keep an rsa key for %s as well\n", dom);
    return 0;
}

/* ================================================================= list */

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim list", *dom_s = NULL;
    char dom[DKIM_NAME_MAX + 1], path[PATH_MAX], err[2 * PATH_MAX + 256];
    char warn[2 * PATH_MAX + 256];
    struct dkim_store_list l = { 0 };

    for (int i = 1; i < argc; i++) {
        if ((argv[i][0] == '-' && argv[i][1]) || dom_s) {
            fprintf(stderr, "%s: unexpected argument '%s'\nusage: sluice dkim "
                    "list [DOMAIN] [--json]\n", P, argv[i]);
            return TOOL_EX_USAGE;
        }
        dom_s = argv[i];
    }
    if (dom_s && tool_dkim_domain(P, dom_s, dom, sizeof dom))
        return TOOL_EX_USAGE;
    char root[PATH_MAX];
    int rc = dkim_store_root(root, sizeof root, ctx->spool);
    if (!rc)
        rc = dkim_store_scan(&l, root, dom_s ? dom : NULL, tool_dkim_warn_odd,
                             NULL);
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, root, strerror(-rc));
        dkim_store_list_free(&l);
        return tool_exit_for(rc);
    }

    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr && l.n)
        printf("%-30s  %-16s  %-8s  %5s  %s\n", "DOMAIN", "SELECTOR",
               "ALGO", "BITS", "KEY");
    for (size_t i = 0; i < l.n; i++) {
        struct dkim_keyinfo ki;
        const struct dkim_store_entry *e = &l.v[i];
        dkim_store_path(path, sizeof path, root, e->domain, e->selector);
        int lr = dkim_keyinfo_load(path, &ki, err, sizeof err);
        warn[0] = 0;
        if (lr)
            snprintf(warn, sizeof warn, "%s", err);
        if (arr) {
            json_array_append_new(arr, json_pack(
                "{s:s,s:s,s:s?,s:o,s:s,s:s?}", "domain", e->domain,
                "selector", e->selector, "algorithm", lr ? NULL : ki.algo,
                "bits", lr ? json_null() : json_integer(ki.bits), "key", path,
                "warning", warn[0] ? warn : NULL));
        } else {
            char bits[16] = "?";
            if (!lr)
                snprintf(bits, sizeof bits, "%d", ki.bits);
            printf("%-30s  %-16s  %-8s  %5s  %s\n", e->domain, e->selector,
                   lr ? "?" : ki.algo, bits, path);
            if (warn[0])
                fprintf(stderr, "%s: warning: %s: %s\n", P, path, warn);
        }
        dkim_keyinfo_free(&ki);
    }
    if (arr)
        tool_emit_json(arr);
    else if (!l.n) {
        dkim_store_path(path, sizeof path, root, dom_s ? dom : NULL, NULL);
        printf("(no DKIM keys in %s)\n", path);
    }
    rc = dom_s && l.n == 0 ? TOOL_EX_NOINPUT : 0;
    dkim_store_list_free(&l);
    return rc;
}

/* ================================================================ group */

int tool_dkim_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "keygen", .run = cmd_keygen, .usage = help_keygen,
          .gate = ACT_DKIM_KEYGEN },
        { .name = "list", .run = cmd_list, .usage = help_list,
          .gate = ACT_DKIM_READ },
        { .name = "check", .run = tool_dkim_cmd_check,
          .usage = tool_dkim_check_usage, .gate = ACT_DKIM_READ },
    };
    static const struct tool_group group = {
        "sluice dkim", help_group, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
