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
 *   A disabled account is held, and so is every sub-account of a disabled
 *   master.  When a load finds an account newly held, its mail waiting at
 *   the destinations goes back to the spool at once, parked at
 *   queue_account_park_time() (its composed bodies are freed with the
 *   items), and no session starts a transaction for it any more
 *   (build_job() in dest.c looks before each MAIL FROM).  What it claims
 *   later is parked the same way.  A transaction whose MAIL FROM is on the
 *   wire already -- the one in progress and, with PIPELINING, the one sent
 *   behind its data -- completes.  Enabling the account moves its parked
 *   mail back to now in the spool (queue_account_update), so it flows on
 *   the next claim, without waiting for a recheck.
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
#include "queue_campaign.h"

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
    x->master = a->master;
    x->disabled = a->disabled;
    x->daily_cap = a->daily_cap;
    x->suppression_owner = a->suppression_owner;
    x->has_rate = a->rate_cap[0] && config_parse_rate(a->rate_cap, &x->rate);
    return 0;
}

/* dest_drop_items() picker: the items of held accounts, parked. */
static bool pick_held(struct engine *e, const struct item *it, void *arg,
                      struct queue_outcome *o)
{
    (void)arg;
    if (!accounts_held(e, it->account) || it->probe)
        return false;
    *o = (struct queue_outcome){
        .type = QUEUE_EV_NONE,
        .retry_at = queue_account_park_time(it->account) };
    return true;
}

/* Mark the held accounts of the new table v (sorted) and say which
 * changed against the running table; returns whether any became held. */
static bool mark_held(struct engine *e, struct eng_account *v, size_t n)
{
    bool newly = false;
    for (size_t i = 0; i < n; i++) {
        struct eng_account key = { .id = v[i].master };
        const struct eng_account *m =
            bsearch(&key, v, n, sizeof key, by_id);
        v[i].held = v[i].disabled || (m && m != &v[i] && m->disabled);
        const struct eng_account *old = accounts_get(e, v[i].id);
        bool was = old && old->held;
        if (v[i].held && !was) {
            newly = true;
            fprintf(stderr, "sluiced: account %u is disabled%s: it sends "
                    "nothing more; its mail waits in the spool until it is "
                    "enabled\n", v[i].id, v[i].disabled ? "" : " (its master)");
        } else if (!v[i].held && was) {
            fprintf(stderr, "sluiced: account %u is enabled again: its mail "
                    "goes\n", v[i].id);
        }
    }
    return newly;
}

void accounts_load(struct engine *e)
{
    struct load_ctx l = { 0 };
    long rc = queue_accounts(e->q, take_account, &l);
    if (rc < 0) {
        fprintf(stderr, "sluiced: cannot read the accounts: %s (keeping "
                        "the ones loaded before)\n", engine_strerror((int)rc));
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
    bool newly = mark_held(e, l.v, l.n);
    free(e->accounts.v);
    e->accounts.v = l.v;
    e->accounts.n = l.n;
    if (newly) {
        size_t n = dest_drop_items(e, pick_held, NULL);
        if (n)
            fprintf(stderr, "sluiced: %zu messages of disabled accounts went "
                    "back to the spool\n", n);
    }
}

bool accounts_held(const struct engine *e, uint32_t id)
{
    const struct eng_account *a = accounts_get(e, id);
    return a && a->held;
}

const struct eng_account *accounts_get(const struct engine *e, uint32_t id)
{
    struct eng_account key = { .id = id };
    return e->accounts.n ? bsearch(&key, e->accounts.v, e->accounts.n, sizeof key, by_id)
                     : NULL;
}

int64_t accounts_hold(struct engine *e, struct item *it, bool *disabled)
{
    struct eng_account *a = (struct eng_account *)accounts_get(e, it->account);
    if (!a)
        return 0;
    int64_t now = engine_now();
    if ((*disabled = a->held))
        return queue_account_park_time(it->account);
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

bool accounts_stop(struct engine *e, const struct item *it,
                   struct queue_outcome *o)
{
    const struct eng_account *a = accounts_get(e, it->account);
    if (a && a->held && !it->probe) {
        /* disabled (or its master): no new transaction; back to the
         * spool, parked until it is enabled.  accounts_load() takes such
         * items back as it loads; this is the last look before a MAIL
         * FROM. */
        *o = (struct queue_outcome){
            .delivery = it->id, .type = QUEUE_EV_NONE,
            .retry_at = queue_account_park_time(it->account) };
        return true;
    }
    if ((!it->campaign && !it->account) || it->body->err)
        return false;
    /* a campaign's list was checked when the message was rendered; this
     * second look, as the message is handed to a session, catches an
     * unsubscribe that came in between.  An injected message's (sluice
     * inject, SMTP, HTTP) is checked here only, as for campaigns (one
     * read transaction). */
    uint32_t owner = a && a->suppression_owner ? a->suppression_owner
                                               : it->account;
    bool yes = false;
    if (queue_suppressed(e->q, owner, it->rcpt, &yes) || !yes)
        return false;
    *o = (struct queue_outcome){ .delivery = it->id,
                                 .type = QUEUE_EV_SUPPRESSED,
                                 .enhanced = "5.7.1",
                                 .category = QUEUE_CAT_OTHER,
                                 .text = it->campaign
                                     ? "suppressed: unsubscribed before "
                                       "sending"
                                     : "suppressed: the address is on the "
                                       "account's suppression list" };
    return true;
}

void accounts_release(struct engine *e, struct item *it)
{
    if (!it->capped)
        return;
    it->capped = false;
    struct eng_account *a = (struct eng_account *)accounts_get(e, it->account);
    if (!a)
        return;
    if (a->pending)
        a->pending--;
    if (it->attempted)
        a->sent_today++;
}
void accounts_close(struct engine *e)
{
    free(e->accounts.v);
    e->accounts.v = NULL;
    e->accounts.n = 0;
}

size_t accounts_list(const struct engine *e, const struct eng_account **v)
{
    *v = e->accounts.v;
    return e->accounts.n;
}
