/*
 * cmd_webhook.c - `sluice webhook`: webhooks kept in the spool per account.
 *
 * SYNOPSIS
 *   webhook add NAME --account A --url URL [--events LIST] [--secret S]
 *               [--batch N] [--max-in-flight N] [--timeout DUR]
 *               [--max-age DUR]
 *   webhook list [--account A] [--json]
 *   webhook test NAME --account A
 *   webhook remove NAME --account A
 *
 * DESCRIPTION
 *   A webhook added here gets the account's events (and its sub-accounts'
 *   for the master) as [webhook NAME] sections do; sluiced reads them at
 *   start and at SIGHUP (engine/webhook_set.c; named aACCOUNT.NAME
 *   there).  The settings go into the spool as JSON text
 *   (engine/webhook_spec.c, the one reader and writer of it); add and
 *   remove are audited, the secret never is,
 *   and `list` shows whether one is set, never the secret.  `test` POSTs
 *   one sample event ([{"type":"test",...}], signed like the real ones)
 *   synchronously with the webhook's timeout and prints the answer.
 *
 *   Roles: add and remove need admin on the account (a webhook sends the
 *   account's recipients' addresses to a URL), list and test manager.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 a name or settings refused or a name the account
 *   already has, 66 unknown account or webhook, 69 `test`: the receiver
 *   did not answer 2xx, 77 refused (audited).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "tool_admin.h"

#define P "sluice webhook"

static const char usage_text[] =
    "usage: sluice webhook add NAME --account A --url URL [--events LIST]\n"
    "                      [--secret S] [--batch N] [--max-in-flight N]\n"
    "                      [--timeout DUR] [--max-age DUR]\n"
    "       sluice webhook list [--account A] [--json]\n"
    "       sluice webhook test NAME --account A\n"
    "       sluice webhook remove NAME --account A\n"
    "\n"
    "The account's events (its sub-accounts' too for the master) are\n"
    "POSTed in batches to URL; sluiced reads webhooks at start and SIGHUP.\n";

/* A number option in lo..hi. */
static bool num_opt(const char *s, unsigned long lo, unsigned long hi,
                    unsigned *out)
{
    unsigned long long v;
    if (!tool_parse_u64(s, &v) || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

/* A duration option ("10s", "5m") in lo..hi ms. */
static bool dur_opt(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    return !config_parse_duration_ms(s, out) && *out >= lo && *out <= hi;
}

/* The settings of add's options into w; false (said why) for a bad one. */
static bool add_options(int argc, char **argv, const char **acct,
                        struct webhook_config *w)
{
    const char *url = NULL, *events = NULL, *secret = NULL, *batch = NULL;
    const char *inflight = NULL, *timeout = NULL, *age = NULL;
    bool bad = false;
    for (int i = 2; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", acct, &bad) &&
            !tool_opt(argc, argv, &i, "--url", &url, &bad) &&
            !tool_opt(argc, argv, &i, "--events", &events, &bad) &&
            !tool_opt(argc, argv, &i, "--secret", &secret, &bad) &&
            !tool_opt(argc, argv, &i, "--batch", &batch, &bad) &&
            !tool_opt(argc, argv, &i, "--max-in-flight", &inflight, &bad) &&
            !tool_opt(argc, argv, &i, "--timeout", &timeout, &bad) &&
            !tool_opt(argc, argv, &i, "--max-age", &age, &bad))
            bad = true;
    const char *why = NULL;
    uint64_t tmo = 10000;
    w->batch = 100;
    w->max_in_flight = 4;
    w->timeout_ms = 10000;
    w->max_age_ms = 86400000;
    if (bad || !*acct || !url)
        why = "";
    else if (!config_webhook_url_ok(url))
        why = "--url is not an http:// or https:// URL";
    else if (events && !config_event_types(events, &w->events, NULL, 0))
        why = "--events is not a list of event types";
    else if (secret && (strlen(secret) < 16 || strlen(secret) > 1024))
        why = "--secret must be 16 to 1024 characters";
    else if (batch && !num_opt(batch, 1, 10000, &w->batch))
        why = "--batch is not 1..10000";
    else if (inflight && !num_opt(inflight, 1, 64, &w->max_in_flight))
        why = "--max-in-flight is not 1..64";
    else if (timeout && !dur_opt(timeout, 100, 600000, &tmo))
        why = "--timeout is not a duration of 100ms to 10m";
    else if (age && !dur_opt(age, 1000, 30ull * 86400000, &w->max_age_ms))
        why = "--max-age is not a duration of 1s to 30d";
    if (why) {
        if (*why)
            fprintf(stderr, P " add: %s\n", why);
        else
            fprintf(stderr, "%s", usage_text);
        return false;
    }
    w->timeout_ms = (unsigned)tmo;
    w->url = (char *)url;
    w->secret = (char *)secret;
    return true;
}

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    struct webhook_config w;
    struct queue_account a;
    const char *acct = NULL;
    struct queue *q;
    char obj[64];
    int rc, r;
    memset(&w, 0, sizeof w);
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    if (!add_options(argc, argv, &acct, &w))
        return TOOL_EX_USAGE;
    char *spec = config_webhook_to_json(&w);
    if (!spec)
        return TOOL_EX_OSERR;
    if ((rc = tool_admin_begin(ctx, false, "webhook add", &q))) {
        free(spec);
        return rc;
    }
    snprintf(obj, sizeof obj, "webhook %.40s", argv[1]);
    if (!(rc = tool_find_account(ctx, q, P " add", acct, &a)) &&
        !(rc = tool_authorize(ctx, q, ACT_WEBHOOK_ADD, a.id, 0, obj, &r))) {
        struct queue_actor by = tool_actor(ctx, r, a.id);
        int err = queue_webhook_add(q, a.id, argv[1], spec, &by);
        if (err)
            rc = tool_admin_error(P " add", err);
        else if (ctx->json)
            tool_emit_json(json_pack("{s:s,s:s,s:b}", "name", argv[1],
                                     "account", a.name, "added", 1));
        else
            printf("added webhook %s to account %s (sluiced starts it at its "
                   "next start or SIGHUP)\n", argv[1], a.name);
    }
    free(spec);
    queue_close(q);
    return rc;
}

/* The state of one `list`. */
struct list_st {
    struct queue *q;
    json_t *arr;
};

/* One webhook of the listed account. */
static int list_one(void *arg, uint32_t account, const char *name,
                    const char *spec)
{
    struct list_st *l = arg;
    struct webhook_config w;
    char why[128], an[QUEUE_MAX_ACCOUNT_NAME + 1], ev[64];
    bool ok = !config_webhook_from_json(spec, &w, why, sizeof why);
    tool_account_name(l->q, account, an, sizeof an);
    snprintf(ev, sizeof ev, "%s", !ok ? "-" : w.events ? "some" : "all");
    if (l->arr)
        json_array_append_new(l->arr, json_pack(
            "{s:s,s:s,s:s?,s:b,s:i,s:i,s:I,s:I,s:s?}", "name", name,
            "account", an, "url", ok ? w.url : NULL, "secret",
            ok && w.secret, "batch", ok ? (int)w.batch : 0,
            "max_in_flight", ok ? (int)w.max_in_flight : 0,
            "timeout_ms", (json_int_t)(ok ? w.timeout_ms : 0),
            "max_age_ms", (json_int_t)(ok ? w.max_age_ms : 0),
            "error", ok ? NULL : why));
    else
        printf("%-14s %-16s %-6s %-5s %s\n", name, an, ok && w.secret ? "yes"
               : "no", ev, ok ? w.url : why);
    if (ok) {
        free(w.url);
        free(w.secret);
    }
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    bool bad = false;
    struct queue_account a;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "webhook list", &q)))
        return rc;
    if (acct)
        rc = tool_find_account(ctx, q, P " list", acct, &a);
    else if (queue_account_get(q, tool_default_account(ctx, q), &a))
        rc = (fprintf(stderr, P " list: there is no account yet\n"),
              TOOL_EX_NOINPUT);
    if (!rc)
        rc = tool_authorize(ctx, q, ACT_WEBHOOK_LIST, a.id, 0,
                            "webhooks", NULL);
    if (!rc) {
        struct list_st l = { q, ctx->json ? json_array() : NULL };
        if (!ctx->json)
            printf("%-14s %-16s %-6s %-5s %s\n", "NAME", "ACCOUNT", "SECRET",
                   "TYPES", "URL");
        long n = queue_webhooks(q, a.id, list_one, &l);
        if (n < 0) {
            json_decref(l.arr);
            rc = tool_admin_error(P " list", (int)n);
        } else if (l.arr) {
            tool_emit_json(l.arr);
        }
    }
    queue_close(q);
    return rc;
}

/* The state of a lookup by name. */
struct find_st {
    const char *name;
    char *spec;
};

static int find_one(void *arg, uint32_t account, const char *name,
                    const char *spec)
{
    struct find_st *f = arg;
    (void)account;
    if (strcmp(name, f->name))
        return 0;
    f->spec = strdup(spec);
    return 1;
}

/* Discard the receiver's answer body. */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* POST one signed sample event to w; the HTTP status, or 0 with why. */
static long post_sample(const struct webhook_config *w, const char *name,
                        uint32_t account, char *why, size_t whylen)
{
    char body[512], sig[128], hdr[200];
    long long now = (long long)time(NULL);
    int n = snprintf(body, sizeof body, "[{\"seq\":0,\"type\":\"test\","
                     "\"account\":%u,\"webhook\":\"%s\",\"time_ms\":%lld}]",
                     account, name, now * 1000);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL,
                                             "Content-Type: application/json");
    long status = 0;
    if (!c || !h || n < 0 || (size_t)n >= sizeof body) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(hdr, sizeof hdr, "X-Sluice-Webhook: a%u.%s", account, name);
    h = curl_slist_append(h, hdr);
    if (h && w->secret) {
        char line[160];
        if (config_webhook_signature(w->secret, now, body, (size_t)n, sig,
                                     sizeof sig)) {
            snprintf(why, whylen, "cannot sign (OpenSSL)");
            goto out;
        }
        snprintf(line, sizeof line, "X-Sluice-Signature: %s", sig);
        h = curl_slist_append(h, line);
    }
    if (!h) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-webhook/1");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode res = curl_easy_perform(c);
    if (res != CURLE_OK)
        snprintf(why, whylen, "%s", curl_easy_strerror(res));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
    curl_slist_free_all(h);
    if (c)
        curl_easy_cleanup(c);
    return status;
}

/* test and remove: NAME --account A. */
static int name_account(int argc, char **argv, const char **acct)
{
    bool bad = argc < 2 || argv[1][0] == '-';
    for (int i = 2; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", acct, &bad))
            bad = true;
    if (bad || !*acct) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    return 0;
}

static int cmd_test(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    struct queue_account a;
    struct queue *q;
    struct find_st f = { argc > 1 ? argv[1] : "", NULL };
    int rc = name_account(argc, argv, &acct);
    if (rc || (rc = tool_admin_begin(ctx, false, "webhook test", &q)))
        return rc;
    char obj[64];
    snprintf(obj, sizeof obj, "webhook %.40s", argv[1]);
    if (!(rc = tool_find_account(ctx, q, P " test", acct, &a)) &&
        !(rc = tool_authorize(ctx, q, ACT_WEBHOOK_TEST, a.id, 0, obj, NULL))) {
        long n = queue_webhooks(q, a.id, find_one, &f);
        if (n < 0)
            rc = tool_admin_error(P " test", (int)n);
        else if (!f.spec)
            rc = (fprintf(stderr, P " test: account %s has no webhook %s\n",
                          a.name, argv[1]), TOOL_EX_NOINPUT);
    }
    queue_close(q);
    if (rc)
        return rc;
    struct webhook_config w;
    char why[256];
    if (config_webhook_from_json(f.spec, &w, why, sizeof why)) {
        fprintf(stderr, P " test: the stored settings: %s\n", why);
        free(f.spec);
        return TOOL_EX_DATAERR;
    }
    free(f.spec);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long status = post_sample(&w, argv[1], a.id, why, sizeof why);
    curl_global_cleanup();
    bool ok = status >= 200 && status < 300;
    if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:s,s:i,s:b,s:s?}", "name", argv[1],
                                 "url", w.url, "status", (int)status, "ok",
                                 ok, "error", status ? NULL : why));
    else if (status)
        printf("webhook %s: %s answered HTTP %ld\n", argv[1], w.url, status);
    else
        printf("webhook %s: %s: %s\n", argv[1], w.url, why);
    free(w.url);
    free(w.secret);
    return ok ? 0 : TOOL_EX_UNAVAILABLE;
}

static int cmd_remove(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    struct queue_account a;
    struct queue *q;
    char obj[64];
    int r, rc = name_account(argc, argv, &acct);
    if (rc || (rc = tool_admin_begin(ctx, false, "webhook remove", &q)))
        return rc;
    snprintf(obj, sizeof obj, "webhook %.40s", argv[1]);
    if (!(rc = tool_find_account(ctx, q, P " remove", acct, &a)) &&
        !(rc = tool_authorize(ctx, q, ACT_WEBHOOK_REMOVE, a.id, 0, obj,
                              &r))) {
        struct queue_actor by = tool_actor(ctx, r, a.id);
        int err = queue_webhook_remove(q, a.id, argv[1], &by);
        if (err)
            rc = tool_admin_error(P " remove", err);
        else if (ctx->json)
            tool_emit_json(json_pack("{s:s,s:s,s:b}", "name", argv[1],
                                     "account", a.name, "removed", 1));
        else
            printf("removed webhook %s of account %s (sluiced stops it at "
                   "its next SIGHUP or start)\n", argv[1], a.name);
    }
    queue_close(q);
    return rc;
}

int tool_webhook_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "add", .run = cmd_add },
        { .name = "list", .run = cmd_list },
        { .name = "test", .run = cmd_test },
        { .name = "remove", .run = cmd_remove },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
