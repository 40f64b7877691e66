/*
 * accounts.c - the accounts of the spool as the engine applies them:
 * disabled accounts hold their mail, a daily send cap holds it until the
 * next UTC day, and a rate cap joins the [account N] caps (limits.c).
 *
 * DESCRIPTION
 *   accounts_load() reads every account (queue_accounts) at start and
 *   whenever the spool's admin generation changes (polled once a second
 *   with the controls), and today's sent count of each capped account from
 *   the usage counters.  Between loads the engine counts what it hands to
 *   receivers itself, so a cap holds without a spool read per message.
 *
 * DIAGNOSTICS
 *   A spool that cannot be read keeps the previous table and says so on
 *   stderr; mail is never held because of a read error alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "queue_admin.h"

struct load_ctx {
    struct eng_account *v;
    size_t n, cap;
};

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const struct eng_account *)a)->id;
    uint32_t y = ((const struct eng_account *)b)->id;
    return x < y ? -1 : x > y;
}

/* queue_accounts() callback: keep what the engine applies. */
static int take_account(void *arg, const struct queue_account *a)
{
    struct load_ctx *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct eng_account *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return 1;
        l->v = nv;
        l->cap = ncap;
    }
    struct eng_account *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    x->id = a->id;
    x->disabled = a->disabled;
    x->daily_cap = a->daily_cap;
    x->suppression_owner = a->suppression_owner;
    x->has_rate = a->rate_cap[0] && config_parse_rate(a->rate_cap, &x->rate);
    return 0;
}

void accounts_load(struct engine *e)
{
    struct load_ctx l = { 0 };
    long rc = queue_accounts(e->q, take_account, &l);
    if (rc < 0) {
        fprintf(stderr, "sluiced: cannot read the accounts: %s (keeping "
                        "the ones loaded before)\n", queue_strerror((int)rc));
        free(l.v);
        return;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, by_id);
    uint32_t today = queue_day_of(engine_now());
    for (size_t i = 0; i < l.n; i++) {
        struct eng_account *x = &l.v[i];
        if (!x->daily_cap)
            continue;
        struct queue_usage u;
        x->day = today;
        if (!queue_usage_get(e->q, x->id, today, &u))
            x->sent_today = u.sent;
        /* what this engine handed out but the spool has not counted yet
         * (outcomes in flight) is kept from the old table */
        const struct eng_account *old = accounts_get(e, x->id);
        if (old && old->day == today && old->sent_today > x->sent_today)
            x->sent_today = old->sent_today;
        if (old)
            x->pending = old->pending;
    }
    free(e->accts);
    e->accts = l.v;
    e->naccts = l.n;
}

const struct eng_account *accounts_get(const struct engine *e, uint32_t id)
{
    struct eng_account key = { .id = id };
    return e->naccts ? bsearch(&key, e->accts, e->naccts, sizeof key, by_id)
                     : NULL;
}

int64_t accounts_hold(struct engine *e, struct item *it)
{
    struct eng_account *a = (struct eng_account *)accounts_get(e, it->account);
    if (!a)
        return 0;
    int64_t now = engine_now();
    if (a->disabled)
        return now + e->cfg.pause_recheck_ms / 1000;
    if (!a->daily_cap)
        return 0;
    uint32_t today = queue_day_of(now);
    if (a->day != today) {
        a->day = today;
        a->sent_today = 0;
    }
    if (a->sent_today + a->pending >= a->daily_cap)
        return ((now / 86400) + 1) * 86400; /* the next UTC day */
    a->pending++;
    it->capped = true;
    return 0;
}

void accounts_sent(struct engine *e, struct item *it)
{
    if (!it->capped)
        return;
    it->capped = false;
    struct eng_account *a = (struct eng_account *)accounts_get(e, it->account);
    if (!a)
        return;
    if (a->pending)
        a->pending--;
    a->sent_today++;
}

void accounts_release(struct engine *e, struct item *it)
{
    if (!it->capped)
        return;
    it->capped = false;
    struct eng_account *a = (struct eng_account *)accounts_get(e, it->account);
    if (a && a->pending)
        a->pending--;
}

void accounts_close(struct engine *e)
{
    free(e->accts);
    e->accts = NULL;
    e->naccts = 0;
}
