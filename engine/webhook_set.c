/*
 * webhook_set.c - the set of running webhooks: the [webhook NAME] sections
 * and the webhooks kept in the spool per account (`sluice webhook add`,
 * named aACCOUNT.NAME here), opened at start and brought in line with the
 * configuration and the spool at each SIGHUP.
 *
 * DESCRIPTION
 *   At a reload a webhook whose settings did not change goes on as it
 *   was, batches in flight and all.  One that is gone or changed is
 *   retired: its POSTs in flight are dropped (they go out again: at least
 *   once), its cursor saved synchronously, and it stays, inert, until the
 *   end (a cursor save of it may still be in flight); a changed one starts
 *   again from that cursor with its new settings.  New ones start as at
 *   start (from now on, or the whole stream with start = oldest).
 *
 * DIAGNOSTICS
 *   webhooks_open() fails with ENGINE_E_CONFIG (an account the spool does
 *   not have) or a spool error, in words in its buffer; at a reload such a
 *   webhook is left out and said on stderr, the others run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_admin.h"
#include "webhook.h"
#include "webhook_int.h"

/* The account a webhook is for: an id or a name of the spool. */
static int find_account(struct engine *e, const struct webhook_config *c,
                        uint32_t *id, char *err, size_t errlen)
{
    struct queue_account a;
    unsigned long long n;
    char *end;
    int rc;
    errno = 0;
    n = strtoull(c->account, &end, 10);
    if (!errno && !*end && end != c->account && n <= UINT32_MAX)
        rc = queue_account_get(e->q, (uint32_t)n, &a);
    else
        rc = queue_account_find(e->q, c->account, &a);
    if (rc) {
        snprintf(err, errlen, "[webhook %s] account '%s': %s", c->name,
                 c->account, rc == QUEUE_ENOTFOUND ? "no such account in "
                 "the spool" : engine_strerror(rc));
        return rc == QUEUE_ENOTFOUND ? ENGINE_E_CONFIG : rc;
    }
    *id = a.id;
    return 0;
}

/* Set up w from its section: strings, ring, account, and where it
 * resumes (saved at once for a new webhook). */
static int hook_open(struct engine *e, struct webhook *w,
                     const struct webhook_config *c, uint64_t newest,
                     char *err, size_t errlen)
{
    w->account_text = c->account ? strdup(c->account) : NULL;
    w->name = strdup(c->name);
    w->url = strdup(c->url);
    w->secret = c->secret ? strdup(c->secret) : NULL;
    w->dead_letter = strdup(c->dead_letter);
    w->ring = calloc(c->max_in_flight, sizeof *w->ring);
    if (!w->name || !w->url || (c->secret && !w->secret) ||
        (c->account && !w->account_text) || !w->dead_letter || !w->ring) {
        snprintf(err, errlen, "webhook %s: out of memory", c->name);
        return -ENOMEM;
    }
    w->events = c->events;
    w->batch = c->batch;
    w->max_in_flight = c->max_in_flight;
    w->timeout_ms = c->timeout_ms;
    w->max_age_ms = c->max_age_ms;
    w->body_cap = 2 + (size_t)c->batch * (WH_EVENT_MAX + 1);
    for (unsigned k = 0; k < w->max_in_flight; k++) {
        w->ring[k].w = w;
        w->ring[k].cap = 2 + 2 * WH_EVENT_MAX;
        if (!(w->ring[k].buf = malloc(w->ring[k].cap))) {
            snprintf(err, errlen, "webhook %s: out of memory", c->name);
            return -ENOMEM;
        }
    }
    w->any_account = !c->account;
    int rc = c->account ? find_account(e, c, &w->account, err, errlen) : 0;
    if (rc)
        return rc;
    snprintf(w->cursor, sizeof w->cursor, "webhook.%s", c->name);
    uint64_t cur;
    rc = queue_cursor_get(e->q, w->cursor, &cur);
    if (rc == QUEUE_ENOTFOUND) {
        cur = c->from_oldest ? 0 : newest;
        if ((rc = queue_cursor_put(e->q, w->cursor, cur))) {
            snprintf(err, errlen, "webhook %s: saving its cursor: %s",
                     c->name, engine_strerror(rc));
            return rc;
        }
    } else if (rc) {
        snprintf(err, errlen, "webhook %s: its cursor: %s", c->name,
                 engine_strerror(rc));
        return rc;
    } else if (cur > newest) {
        /* a cursor past the spool's newest event would skip the next
         * ones: start from the newest */
        fprintf(stderr, "sluiced: webhook %s: its cursor (seq %llu) is past "
                        "the spool's newest event (%llu); going on from "
                        "there\n", c->name, (unsigned long long)cur,
                (unsigned long long)newest);
        cur = newest;
        if ((rc = queue_cursor_put(e->q, w->cursor, cur))) {
            snprintf(err, errlen, "webhook %s: saving its cursor: %s",
                     c->name, engine_strerror(rc));
            return rc;
        }
    }
    w->read = w->acked = w->saved = cur;
    return 0;
}

/* The webhooks kept in the spool (`sluice webhook add`), gathered. */
struct spool_hooks {
    struct engine *e;
    struct webhook_config *v;
    size_t n;
};

/* One spool webhook: its settings read (a bad one is skipped, said on
 * stderr), named "aACCOUNT.NAME", for its account. */
static int on_spool_hook(void *arg, uint32_t account, const char *name,
                         const char *spec)
{
    struct spool_hooks *sh = arg;
    struct webhook_config c;
    char why[128];
    if (sh->n == CONFIG_MAX_WEBHOOKS) {
        fprintf(stderr, "sluiced: webhooks past the first %d are left out\n",
                CONFIG_MAX_WEBHOOKS);
        return 1;
    }
    if (config_webhook_from_json(spec, &c, why, sizeof why)) {
        fprintf(stderr, "sluiced: webhook %s of account %u in the spool: %s; "
                        "left out\n", name, account, why);
        return 0;
    }
    char nm[32], acct[16];
    snprintf(nm, sizeof nm, "a%u.%s", account, name);
    snprintf(acct, sizeof acct, "%u", account);
    size_t dl = strlen(sh->e->cfg.spool) + strlen(nm) + 32;
    c.name = strdup(nm);
    c.account = strdup(acct);
    c.dead_letter = malloc(dl);
    if (c.dead_letter)
        snprintf(c.dead_letter, dl, "%s/webhook-%s.dead.jsonl",
                 sh->e->cfg.spool, nm);
    sh->v[sh->n++] = c; /* freed by the caller, also when incomplete */
    return !c.name || !c.account || !c.dead_letter ? -ENOMEM : 0;
}

/* Free the gathered spool webhooks. */
static void spool_hooks_free(struct spool_hooks *sh)
{
    for (size_t i = 0; i < sh->n; i++) {
        free(sh->v[i].name);
        free(sh->v[i].url);
        free(sh->v[i].secret);
        free(sh->v[i].account);
        free(sh->v[i].dead_letter);
    }
    free(sh->v);
}

/* Gather the spool's webhooks into sh (the caller frees it). */
static int spool_hooks_read(struct engine *e, struct spool_hooks *sh)
{
    sh->e = e;
    if (!(sh->v = calloc(CONFIG_MAX_WEBHOOKS, sizeof *sh->v)))
        return -ENOMEM;
    long n = queue_webhooks(e->q, 0, on_spool_hook, sh);
    return n < 0 ? (int)n : 0;
}

/* The i-th wanted webhook: the configured ones, then the spool's. */
static const struct webhook_config *wanted(struct engine *e,
                                           struct spool_hooks *sh, size_t i)
{
    return i < e->cfg.nwebhooks ? &e->cfg.webhooks[i]
                                : &sh->v[i - e->cfg.nwebhooks];
}

/* Whether running w has exactly the settings c. */
static bool same(const struct webhook *w, const struct webhook_config *c)
{
    return !strcmp(w->url, c->url) && !strcmp(w->dead_letter, c->dead_letter)
           && !w->secret == !c->secret &&
           (!w->secret || !strcmp(w->secret, c->secret)) &&
           !w->account_text == !c->account &&
           (!c->account || !strcmp(w->account_text, c->account)) &&
           w->events == c->events && w->batch == c->batch &&
           w->max_in_flight == c->max_in_flight &&
           w->timeout_ms == c->timeout_ms && w->max_age_ms == c->max_age_ms;
}

/* Open webhook c into hs (its array has room). */
static int add_hook(struct engine *e, struct webhooks *hs,
                    const struct webhook_config *c, uint64_t newest,
                    char *err, size_t errlen)
{
    struct webhook *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "webhook %s: out of memory", c->name);
        return -ENOMEM;
    }
    w->all = hs;
    hs->v[hs->n++] = w;
    int rc = hook_open(e, w, c, newest, err, errlen);
    if (!rc)
        fprintf(stderr, "sluiced: webhook %s: %s, after seq %llu\n",
                w->name, w->url, (unsigned long long)w->acked);
    return rc;
}

/* Stop w for good: its POSTs dropped, its cursor saved. */
static void retire(struct engine *e, struct webhook *w)
{
    wh_http_abort(w);
    w->retired = true;
    if (w->acked != w->saved) {
        int rc = queue_cursor_put(e->q, w->cursor, w->acked);
        if (rc)
            fprintf(stderr, "sluiced: webhook %s: saving its cursor: %s\n",
                    w->name, engine_strerror(rc));
        else
            w->saved = w->acked;
    }
    fprintf(stderr, "sluiced: webhook %s: stopped after seq %llu\n",
            w->name, (unsigned long long)w->acked);
}

int webhooks_open(struct engine *e, char *err, size_t errlen)
{
    struct spool_hooks sh = { .e = e };
    uint64_t newest;
    int rc = spool_hooks_read(e, &sh);
    if (!rc)
        rc = queue_events_last(e->q, &newest);
    if (rc) {
        snprintf(err, errlen, "spool %s: %s", e->cfg.spool,
                 engine_strerror(rc));
        spool_hooks_free(&sh);
        return rc;
    }
    struct webhooks *hs = calloc(1, sizeof *hs);
    if (!hs || !(hs->v = calloc(WH_MAX_SLOTS, sizeof *hs->v))) {
        free(hs);
        snprintf(err, errlen, "webhooks: out of memory");
        spool_hooks_free(&sh);
        return -ENOMEM;
    }
    hs->e = e;
    if ((rc = wh_http_init(hs))) {
        snprintf(err, errlen, "webhooks: libcurl cannot start");
        free(hs->v);
        free(hs);
        spool_hooks_free(&sh);
        return rc;
    }
    e->hooks = hs;
    for (size_t i = 0; !rc && i < e->cfg.nwebhooks + sh.n; i++)
        rc = add_hook(e, hs, wanted(e, &sh, i), newest, err, errlen);
    spool_hooks_free(&sh);
    if (rc)
        webhooks_close(e);
    return rc;
}

void webhooks_reload(struct engine *e)
{
    struct webhooks *hs = e->hooks;
    struct spool_hooks sh = { .e = e };
    char err[300];
    uint64_t newest;
    int rc = spool_hooks_read(e, &sh);
    if (!rc)
        rc = queue_events_last(e->q, &newest);
    if (rc || !hs) {
        if (rc)
            fprintf(stderr, "sluiced: webhooks: keeping the running ones: "
                            "%s\n", engine_strerror(rc));
        else if (e->cfg.nwebhooks + sh.n)
            fprintf(stderr, "sluiced: webhooks: new ones start with the "
                            "next start of sluiced\n");
        spool_hooks_free(&sh);
        return;
    }
    size_t total = e->cfg.nwebhooks + sh.n;
    bool *keep = calloc(total ? total : 1, sizeof *keep);
    if (!keep) {
        spool_hooks_free(&sh);
        return;
    }
    /* the running ones: kept when wanted as they are, else retired */
    for (size_t k = 0; k < hs->n; k++) {
        struct webhook *w = hs->v[k];
        bool found = false;
        for (size_t i = 0; !w->retired && i < total && !found; i++) {
            const struct webhook_config *c = wanted(e, &sh, i);
            if (!keep[i] && !strcmp(w->name, c->name) && same(w, c))
                keep[i] = found = true;
        }
        if (!w->retired && !found)
            retire(e, w);
    }
    for (size_t i = 0; i < total; i++) {
        const struct webhook_config *c = wanted(e, &sh, i);
        if (keep[i])
            continue;
        if (hs->n == WH_MAX_SLOTS) {
            fprintf(stderr, "sluiced: webhook %s: too many changes since "
                            "the start: restart sluiced\n", c->name);
            continue;
        }
        if (add_hook(e, hs, c, newest, err, sizeof err)) {
            fprintf(stderr, "sluiced: %s; left out\n", err);
            hs->v[hs->n - 1]->retired = true;
        }
    }
    free(keep);
    spool_hooks_free(&sh);
    webhooks_pump(e);
}

void webhooks_close(struct engine *e)
{
    struct webhooks *hs = e->hooks;
    if (!hs)
        return;
    hs->closing = true;
    for (size_t i = 0; i < hs->n; i++) {
        struct webhook *w = hs->v[i];
        if (w->ring && w->acked != w->saved) {
            int rc = queue_cursor_put(e->q, w->cursor, w->acked);
            if (rc)
                fprintf(stderr, "sluiced: webhook %s: saving its cursor: "
                                "%s\n", w->name, engine_strerror(rc));
        }
    }
    wh_http_close(hs);
    e->hooks = NULL;
}
