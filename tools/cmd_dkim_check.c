/*
 * cmd_dkim_check.c - `sluice dkim check` (and the DNS step of `sluice
 * domain verify`): compare what DNS publishes with the keys of the store.
 *
 * DESCRIPTION
 *   For each key of DOMAIN (or one selector) the TXT records at
 *   SELECTOR._domainkey.DOMAIN are asked for with c-ares, all at once, 5 s
 *   for all of them (--dns-server, $SLUICE_DNS or the system resolver).
 *   Each record is the join of its character-strings (capped at
 *   DKIM_REC_MAX) and is judged by dkim_record_judge() (dkim/record.c):
 *   a match wins, else the first DKIM record's verdict.
 *
 * DIAGNOSTICS
 *   Exit 0 all match; 65 some record does not (this wins over 69); 69 DNS
 *   failed; 66 no key for DOMAIN (or S) in the store; 64 bad usage or
 *   --dns-server; 78 a bad $SLUICE_DNS, or a key file group or others may
 *   read (the message names the chmod that fixes it) or that is no key;
 *   77 a store sluice may not read.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <arpa/nameser.h>
#include <ares.h>
#include <jansson.h>

#include "dkim_sign.h"
#include "tool.h"
#include "tool_dkim.h"
#include "tool_dns.h"

#define DNS_TOTAL_MS 5000         /* all of check's queries together */
#define DNS_TRY_MS 1500           /* first try per server (c-ares grows it) */

const char tool_dkim_check_usage[] =
    "usage: sluice dkim check DOMAIN [--selector S]\n"
    "                         [--dns-server ADDR[:PORT]] [--json]\n"
    "\n"
    "For each key of DOMAIN in the store (or only selector S), look up the\n"
    "TXT record S._domainkey.DOMAIN and say whether it publishes that key:\n"
    "\n"
    "  match       the record publishes this key\n"
    "  mismatch    it publishes another key, or one sluice cannot use\n"
    "              (h= without sha256, s= without email, a syntax error)\n"
    "  wrong type  its k= is not the key's algorithm\n"
    "  revoked     its p= is empty\n"
    "  missing     no such name, or no DKIM record among its TXT records\n"
    "  dns error   the server failed (SERVFAIL, refused) or did not answer\n"
    "              within 5 s\n"
    "\n"
    "  --dns-server  ADDR[:PORT][,...] (IP addresses, [v6]:PORT); default\n"
    "                $SLUICE_DNS, else the system resolver\n"
    "  --json        a list of {selector, algorithm, status, detail, name,\n"
    "                key, txt}; status is match, mismatch, wrong_type,\n"
    "                revoked, missing or dns_error; txt is the record to\n"
    "                publish\n"
    "\n"
    "Exit 0 all match; 65 some record does not (this wins over 69); 69 DNS\n"
    "failed; 66 no key for DOMAIN (or S) in the store; 64 bad usage; 78 a\n"
    "key file group or others may read (the message says the chmod to fix\n"
    "it) or that is not a key; 77 a store sluice may not read.\n";


/* The words of each verdict: in --json, and in the table. */
static const struct {
    const char *json, *text;
} status_names[] = {
    [DKIM_REC_MATCH] = { "match", "match" },
    [DKIM_REC_MISMATCH] = { "mismatch", "mismatch" },
    [DKIM_REC_WRONGTYPE] = { "wrong_type", "wrong type" },
    [DKIM_REC_REVOKED] = { "revoked", "revoked" },
    [DKIM_REC_MISSING] = { "missing", "missing" },
    [DKIM_REC_DNSERR] = { "dns_error", "dns error" },
    [DKIM_REC_NOTDKIM] = { "missing", "missing" },
};

/* One selector being checked. */
struct dk_result {
    const char *selector;
    char name[DKIM_NAME_MAX + 2];
    char path[PATH_MAX];
    struct dkim_keyinfo key;
    bool done;
    enum dkim_rec_status status;
    char detail[320];
};

/* Set r's status to a DNS failure or absence for c-ares status. */
static void dns_status(struct dk_result *r, int status)
{
    r->status = DKIM_REC_DNSERR;
    switch (status) {
    case ARES_ENOTFOUND:
        r->status = DKIM_REC_MISSING;
        snprintf(r->detail, sizeof r->detail, "no such name (NXDOMAIN)");
        break;
    case ARES_ENODATA:
        r->status = DKIM_REC_MISSING;
        snprintf(r->detail, sizeof r->detail, "no TXT record at the name");
        break;
    case ARES_ESERVFAIL:
        snprintf(r->detail, sizeof r->detail, "server failure (SERVFAIL)");
        break;
    case ARES_EREFUSED:
        snprintf(r->detail, sizeof r->detail, "the server refused the query");
        break;
    case ARES_ETIMEOUT:
        snprintf(r->detail, sizeof r->detail, "the server did not answer "
                 "(timed out)");
        break;
    case ARES_ECANCELLED:
        snprintf(r->detail, sizeof r->detail, "no answer within %d s",
                 DNS_TOTAL_MS / 1000);
        break;
    case ARES_ECONNREFUSED:   /* c-ares: no server could be reached */
        snprintf(r->detail, sizeof r->detail, "could not reach the server "
                 "(not listening, or no answer)");
        break;
    default:
        snprintf(r->detail, sizeof r->detail, "%s", ares_strerror(status));
        break;
    }
}

/* Judge every TXT record of the answer (a record is the join of its
 * character-strings): a match wins, else the first DKIM record's verdict;
 * several DKIM records at one name are noted. */
static void judge_answer(struct dk_result *r, const struct ares_txt_ext *txt)
{
    char rec[DKIM_REC_MAX], detail[sizeof r->detail];
    int nrec = 0, ndkim = 0;
    enum dkim_rec_status best = DKIM_REC_NOTDKIM;

    for (const struct ares_txt_ext *t = txt; t; ) {
        size_t len = 0;
        bool over = false;
        do {
            if (len + t->length > sizeof rec)
                over = true;
            else if (t->length) {
                memcpy(rec + len, t->txt, t->length);
                len += t->length;
            }
            t = t->next;
        } while (t && !t->record_start);
        nrec++;
        enum dkim_rec_status st = DKIM_REC_MISMATCH;
        if (over)
            snprintf(detail, sizeof detail, "a TXT record is longer than %d "
                     "octets", DKIM_REC_MAX);
        else
            st = dkim_record_judge(&r->key, rec, len, detail, sizeof detail);
        if (st == DKIM_REC_NOTDKIM)
            continue;
        if (++ndkim == 1 || (st == DKIM_REC_MATCH && best != DKIM_REC_MATCH)) {
            best = st;
            snprintf(r->detail, sizeof r->detail, "%s", detail);
        }
    }
    r->status = best == DKIM_REC_NOTDKIM ? DKIM_REC_MISSING : best;
    if (best == DKIM_REC_NOTDKIM) {
        snprintf(r->detail, sizeof r->detail, "no DKIM record among the %d "
                 "TXT record%s at the name", nrec, nrec == 1 ? "" : "s");
        return;
    }
    if (best == DKIM_REC_MATCH && !r->detail[0])
        snprintf(r->detail, sizeof r->detail, "DNS publishes this key");
    if (ndkim > 1) {
        size_t used = strlen(r->detail);
        snprintf(r->detail + used, sizeof r->detail - used, "%s%d DKIM "
                 "records at the name: a verifier may use any one",
                 used ? "; " : "", ndkim);
    }
}

/* c-ares callback of one TXT query. */
static void on_txt(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen)
{
    struct dk_result *r = arg;
    struct ares_txt_ext *txt = NULL;

    if (r->done)
        return;
    r->done = true;
    if (status != ARES_SUCCESS) {
        dns_status(r, status);
        return;
    }
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && !txt))
        dns_status(r, ARES_ENODATA);
    else if (rc != ARES_SUCCESS)
        dns_status(r, rc);
    else
        judge_answer(r, txt);
    ares_free_data(txt);
}

/* Whether any of the check's queries waits for its answer. */
struct dk_wait {
    struct dk_result *res;
    size_t n;
};

static bool dk_pending(void *arg)
{
    struct dk_wait *w = arg;
    for (size_t i = 0; i < w->n; i++)
        if (!w->res[i].done)
            return true;
    return false;
}

/* Look up the TXT records of all n results at once, DNS_TOTAL_MS in all;
 * each result gets its status.  Returns 0, -EINVAL (bad servers) or -EIO. */
static int dns_check(struct dk_result *res, size_t n, const char *servers)
{
    ares_channel ch;
    int rc = tool_dns_open(&ch, servers, DNS_TRY_MS);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        ares_query(ch, res[i].name, ns_c_in, ns_t_txt, on_txt,
                   &res[i]);
    struct dk_wait w = { res, n };
    tool_dns_run(ch, dk_pending, &w, DNS_TOTAL_MS);
    tool_dns_close(ch);
    for (size_t i = 0; i < n; i++)
        if (!res[i].done) {
            res[i].done = true;
            dns_status(&res[i], ARES_ECANCELLED);
        }
    return 0;
}

/* Print the results as a table, JSON, or (quiet) the problems on stderr. */
static void check_report(struct tool_ctx *ctx, const char *dom,
                         const struct dk_result *res, size_t n, bool quiet)
{
    if (quiet) {
        for (size_t i = 0; i < n; i++)
            if (res[i].status != DKIM_REC_MATCH)
                fprintf(stderr, "sluice dkim check: %s selector %s: %s: %s\n",
                        dom, res[i].selector,
                        status_names[res[i].status].text, res[i].detail);
        return;
    }
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack(
                "{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                "selector", res[i].selector, "algorithm", res[i].key.algo,
                "status", status_names[res[i].status].json,
                "detail", res[i].detail, "name", res[i].name,
                "key", res[i].path, "txt", res[i].key.txt));
        tool_emit_json(arr);
        return;
    }
    printf("%-16s  %-8s  %-10s  %s\n", "SELECTOR", "ALGO", "STATUS",
           "DETAIL");
    for (size_t i = 0; i < n; i++)
        printf("%-16s  %-8s  %-10s  %s\n", res[i].selector, res[i].key.algo,
               status_names[res[i].status].text,
               res[i].detail);
    for (size_t i = 0; i < n; i++) {
        enum dkim_rec_status st = res[i].status;
        if (st == DKIM_REC_MATCH || st == DKIM_REC_DNSERR)
            continue;
        printf("\nto sign with %s, publish:\n", res[i].selector);
        tool_dkim_print_record(res[i].name, res[i].key.txt, NULL);
    }
}

int tool_dkim_check(struct tool_ctx *ctx, const char *domain,
                    const char *selector, const char *dns_server, bool quiet)
{
    const char *P = "sluice dkim check", *from = "--dns-server";
    char dom[DKIM_NAME_MAX + 1], sel[DKIM_NAME_MAX + 1];
    char err[2 * PATH_MAX + 256];
    char dir[PATH_MAX], root[PATH_MAX];
    struct dkim_store_list l = { 0 };
    struct dk_result *res = NULL;
    int rc;

    if (tool_dkim_domain(P, domain, dom, sizeof dom) ||
        (selector && tool_dkim_selector(P, selector, sel, sizeof sel)))
        return TOOL_EX_USAGE;
    if (!dns_server) {
        dns_server = getenv("SLUICE_DNS");
        from = "$SLUICE_DNS";
        if (dns_server && !*dns_server)
            dns_server = NULL;
    }
    rc = dkim_store_root(root, sizeof root, ctx->spool);
    if (!rc)
        rc = dkim_store_path(dir, sizeof dir, root, dom, NULL);
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, ctx->spool, strerror(-rc));
        return TOOL_EX_USAGE;
    }
    if (selector) {
        struct stat st;
        char path[PATH_MAX];
        rc = dkim_store_path(path, sizeof path, root, dom, sel);
        if (rc == 0 && stat(path, &st) != 0)
            rc = errno == ENOENT ? 0 : -errno;
        else if (rc == 0)
            rc = dkim_store_add(&l, dom, sel);
    } else {
        rc = dkim_store_scan(&l, root, dom, tool_dkim_warn_odd, NULL);
    }
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, dir, strerror(-rc));
        dkim_store_list_free(&l);
        return tool_exit_for(rc);
    }
    if (l.n == 0) {
        fprintf(stderr, "%s: no DKIM key %s%s%sfor %s in %s\n  make one: "
                "sluice dkim keygen %s --selector %s\n", P,
                selector ? "with selector " : "", selector ? sel : "",
                selector ? " " : "", dom, dir, dom, selector ? sel : "S");
        dkim_store_list_free(&l);
        return TOOL_EX_NOINPUT;
    }

    res = calloc(l.n, sizeof *res);
    if (!res) {
        dkim_store_list_free(&l);
        fprintf(stderr, "%s: out of memory\n", P);
        return TOOL_EX_OSERR;
    }
    int code = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct dk_result *r = &res[i];
        r->selector = l.v[i].selector;
        dkim_store_path(r->path, sizeof r->path, root, dom, r->selector);
        if (!dkim_record_name(r->selector, dom, r->name, sizeof r->name)) {
            fprintf(stderr, "%s: %s._domainkey.%s is longer than 253 octets\n",
                    P, r->selector, dom);
            code = TOOL_EX_CONFIG;
            continue;
        }
        rc = dkim_keyinfo_load(r->path, &r->key, err, sizeof err);
        if (rc) {
            int e = tool_dkim_key_exit(P, rc, err);
            if (!code || e == TOOL_EX_CONFIG)
                code = e;
        }
    }
    if (!code) {
        rc = dns_check(res, l.n, dns_server);
        if (rc == -EINVAL) {
            fprintf(stderr, "%s: %s: '%s' is not ADDR[:PORT][,...] (IP "
                    "addresses; [v6]:PORT)\n", P, from, dns_server);
            code = strcmp(from, "$SLUICE_DNS") ? TOOL_EX_USAGE
                                               : TOOL_EX_CONFIG;
        } else if (rc) {
            fprintf(stderr, "%s: cannot set up the resolver (c-ares)\n", P);
            code = TOOL_EX_UNAVAILABLE;
        }
    }
    if (!code) {
        check_report(ctx, dom, res, l.n, quiet);
        for (size_t i = 0; i < l.n; i++) {
            if (res[i].status == DKIM_REC_DNSERR && !code)
                code = TOOL_EX_UNAVAILABLE;
            else if (res[i].status != DKIM_REC_MATCH && res[i].status != DKIM_REC_DNSERR)
                code = TOOL_EX_DATAERR;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        dkim_keyinfo_free(&res[i].key);
    free(res);
    dkim_store_list_free(&l);
    return code;
}

int tool_dkim_cmd_check(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim check";
    const char *dom = NULL, *sel = NULL, *server = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--selector") && has_val) {
            sel = argv[++i];
        } else if (!strcmp(a, "--dns-server") && has_val) {
            server = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", P, a);
            return TOOL_EX_USAGE;
        } else if (!dom) {
            dom = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", P, a);
            return TOOL_EX_USAGE;
        }
    }
    if (!dom) {
        fprintf(stderr, "usage: sluice dkim check DOMAIN [--selector S] "
                "[--dns-server ADDR[:PORT]] [--json]\n");
        return TOOL_EX_USAGE;
    }
    if (server && !*server) {
        fprintf(stderr, "%s: --dns-server is empty\n", P);
        return TOOL_EX_USAGE;
    }
    return tool_dkim_check(ctx, dom, sel, server, false);
}
