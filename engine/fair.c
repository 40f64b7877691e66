/*
 * fair.c - turns at one destination: while several accounts have mail
 * waiting there, each gets its share of the deliveries (and so of the
 * rate and the sessions), whatever order the mail was queued in; the
 * campaigns of one account share its part the same way.
 *
 * DESCRIPTION
 *   A flow is the mail of one (account, campaign) at one destination
 *   (campaign 0: injected mail).  Each waiting item carries a tag, its
 *   turn in virtual time, and the destination's list is kept in tag
 *   order, so the sessions, which take the first ready item (job.c),
 *   serve the flows in turn (weighted fair queueing, with the tag given
 *   when the item is filed).  A flow's tags advance by its stride per
 *   recipient: the number of the account's campaigns waiting there
 *   divided by the account's share (`share = N` in [account N], 1 by
 *   default).  A flow that starts (or starts again) does so at the
 *   destination's virtual time, the tag of the item served last, so
 *   mail that waited nowhere earns no credit and mail queued first has
 *   no head start over mail queued a moment later.
 *
 *   A tag is given once, so when a campaign starts or stops beside
 *   another of its account (which changes what each has of the account's
 *   part), every waiting item is given its turn again and the list is
 *   sorted anew (retag(): at most once per FAIR_RETAG_EVERY jobs served).
 *
 *   The recipients of one injected message that wait side by side go in
 *   one transaction: they share one tag, up to max_rcpts_per_message,
 *   and the flow is charged for each of them.
 *
 *   With one flow (the common case) the tags only grow, and filing is
 *   an append: one comparison with the tail.  Otherwise the item goes
 *   after the last one whose tag is not above its own (a walk from the
 *   head; a destination holds at most twice its cap of 2,000, dest.c).
 *
 *   Claims: a destination at its cap sends what it claims back to the
 *   spool (dest.c), but a flow whose turns ahead are fewer than another's
 *   still comes in (fair_may_exceed()), up to twice the cap, so mail
 *   queued behind another account's is in memory beside it.
 *
 *   An account or campaign held by its own rate cap (limits.c) steps
 *   aside: job.c skips its items and the others go; its turns are not
 *   kept for it (the virtual time moves on without it).
 *
 * DIAGNOSTICS
 *   None.  At most FAIR_MAX_FLOWS flows per destination are told apart;
 *   beyond that (and out of memory) an item is filed at the tail, as
 *   before turns existed.
 */
#include <stdlib.h>

#include "engine.h"
#include "fair.h"

#define FAIR_MAX_FLOWS 256
#define FAIR_RETAG_EVERY 16   /* jobs served between two retag()s, at least */

struct fair_flow {
    uint32_t account;
    unsigned share;            /* the account's, from the configuration */
    unsigned ncamp;            /* flows of its account here (retag()) */
    uint64_t campaign;
    double next;               /* where its next turn starts */
    double chunk_tag;          /* tag of the message being filed */
    const void *chunk_body;    /* its body (compared, never used) */
    unsigned chunk_n;          /* its recipients filed so far */
};

struct fair {
    double vtime;              /* the turn served last */
    struct fair_flow *v;
    unsigned n, cap;
    unsigned last;             /* the flow filed last: looked at first */
    unsigned since_retag;      /* jobs served since the last retag() */
    bool retag_due;            /* one was put off (FAIR_RETAG_EVERY) */
};

/* Whether flow x has mail waiting: turns ahead of the time. */
static bool active(const struct fair *f, const struct fair_flow *x)
{
    return x->next > f->vtime;
}

/* The flow of (account, campaign), made when missing (flows with no turn
 * ahead make room) unless e is NULL; NULL when none can be had. */
static struct fair_flow *flow_of(struct engine *e, struct fair *f,
                                 uint32_t account, uint64_t campaign)
{
    if (f->last < f->n && f->v[f->last].account == account &&
        f->v[f->last].campaign == campaign)
        return &f->v[f->last];
    for (unsigned i = 0; i < f->n; i++)
        if (f->v[i].account == account && f->v[i].campaign == campaign) {
            f->last = i;
            return &f->v[i];
        }
    if (!e)
        return NULL;
    if (f->n == f->cap) {
        unsigned k = 0; /* forget the flows that wait no more */
        for (unsigned i = 0; i < f->n; i++)
            if (active(f, &f->v[i]))
                f->v[k++] = f->v[i];
        f->n = k;
    }
    if (f->n == f->cap) {
        unsigned ncap = f->cap ? f->cap * 2 : 4;
        if (ncap > FAIR_MAX_FLOWS)
            return NULL;
        struct fair_flow *nv = realloc(f->v, ncap * sizeof *nv);
        if (!nv)
            return NULL;
        f->v = nv;
        f->cap = ncap;
    }
    struct fair_flow *x = &f->v[f->n];
    *x = (struct fair_flow){ .account = account, .campaign = campaign,
                             .next = f->vtime };
    x->share = config_account_share(&e->cfg, account);
    f->last = f->n++;
    return x;
}

/* Recipients of x's flow cost this many turns each: the account's
 * campaigns waiting here share its part. */
static double stride(const struct fair *f, const struct fair_flow *x)
{
    unsigned ncamp = 1;
    for (unsigned i = 0; i < f->n; i++)
        if (&f->v[i] != x && f->v[i].account == x->account &&
            active(f, &f->v[i]))
            ncamp++;
    return (double)ncamp / (double)x->share;
}

/* Whether another flow of x's account has mail waiting. */
static bool sibling_active(const struct fair *f, const struct fair_flow *x)
{
    for (unsigned i = 0; i < f->n; i++)
        if (&f->v[i] != x && f->v[i].account == x->account &&
            active(f, &f->v[i]))
            return true;
    return false;
}

/* Give it its tag in flow x, recipients costing s turns each. */
static void charge(const struct fair *f, struct fair_flow *x,
                   const struct dest *d, struct item *it, double s)
{
    if (it->body && x->chunk_body == it->body && x->chunk_n &&
        x->chunk_n < d->pol->max_rcpts_per_message &&
        x->chunk_tag > f->vtime) {
        x->chunk_n++;           /* another recipient of the same message */
        x->next += s;
        it->tag = x->chunk_tag;
        return;
    }
    double start = x->next > f->vtime ? x->next : f->vtime;
    x->next = start + s;
    x->chunk_tag = start + s;
    x->chunk_body = it->body;
    x->chunk_n = 1;
    it->tag = x->chunk_tag;
}

/* it's tag, charged to its flow: 1, 0 when it has no flow (the tail),
 * 2 when its flow starts beside another of its account's, whose items'
 * turns were given for a part of the account they no longer have (the
 * caller retags). */
static int tag_item(struct engine *e, struct dest *d, struct item *it)
{
    struct fair *f = d->fair;
    if (!f) {
        if (!(f = calloc(1, sizeof *f)))
            return 0;
        f->since_retag = FAIR_RETAG_EVERY;
        d->fair = f;
    }
    struct fair_flow *x = flow_of(e, f, it->account, it->campaign);
    if (!x)
        return 0;
    bool joins = !active(f, x) && sibling_active(f, x);
    charge(f, x, d, it, stride(f, x));
    return joins ? 2 : 1;
}

/* The flow of it, if it has one (never made here). */
static struct fair_flow *find(struct fair *f, const struct item *it)
{
    return flow_of(NULL, f, it->account, it->campaign);
}

/* Merge sort of the list at head by tag, stable; returns the new head
 * and leaves its last item in *tail. */
static struct item *sort_by_tag(struct item *head, struct item **tail)
{
    size_t width = 1;
    for (;;) {
        struct item *out = NULL, **link = &out, *p = head, *last = NULL;
        size_t merges = 0;
        while (p) {
            merges++;
            struct item *q = p;
            size_t np = 0, nq = width;
            while (q && np < width) {
                q = q->next;
                np++;
            }
            while (np || (nq && q)) {
                struct item *take;
                if (!np || (nq && q && q->tag < p->tag)) {
                    take = q;
                    q = q->next;
                    nq--;
                } else {
                    take = p;
                    p = p->next;
                    np--;
                }
                *link = take;
                link = &take->next;
                last = take;
            }
            p = q;
        }
        *link = NULL;
        head = out;
        *tail = last;
        if (merges <= 1)
            return head;
        width *= 2;
    }
}

/* Give every waiting item of d its turn again from the virtual time, the
 * account's part split over its flows that have items here now (not
 * counting those being taken out: job.c marks them), and put
 * the list in the new order.  Only when an account's campaigns start or
 * stop sharing it: O(n log n) over at most a few thousand items. */
static void retag(struct dest *d)
{
    struct fair *f = d->fair;
    for (unsigned i = 0; i < f->n; i++) {
        struct fair_flow *x = &f->v[i];
        x->next = f->vtime;
        x->chunk_n = 0;
        x->chunk_body = NULL;
        x->ncamp = 0;
    }
    for (struct item *it = d->head; it; it = it->next) {
        struct fair_flow *x = it->taken ? NULL : find(f, it);
        if (x && !x->ncamp) {
            x->ncamp = 1;
            for (unsigned i = 0; i < f->n; i++)
                if (&f->v[i] != x && f->v[i].account == x->account &&
                    f->v[i].ncamp)
                    x->ncamp++, f->v[i].ncamp++;
        }
    }
    for (struct item *it = d->head; it; it = it->next) {
        /* one job.c is taking out now leaves; its turn was had */
        struct fair_flow *x = it->taken ? NULL : find(f, it);
        if (!x) {
            it->tag = f->vtime;
            continue;
        }
        charge(f, x, d, it, (double)x->ncamp / (double)x->share);
    }
    d->head = sort_by_tag(d->head, &d->tail);
    f->since_retag = 0;
    f->retag_due = false;
}

/* Whether a retag may run now; else it is due after FAIR_RETAG_EVERY
 * jobs (a campaign that comes and goes with every claim would otherwise
 * sort the list each time; its turns are right within that many jobs). */
static bool may_retag(struct fair *f)
{
    if (f->since_retag >= FAIR_RETAG_EVERY)
        return true;
    f->retag_due = true;
    return false;
}

struct item *fair_link(struct engine *e, struct dest *d, struct item *it)
{
    struct item *prev = d->tail;
    it->next = NULL;
    int tagged = tag_item(e, d, it);
    if (tagged == 2 && may_retag(d->fair)) {
        if (d->tail)
            d->tail->next = it;
        else
            d->head = it;
        d->tail = it;
        retag(d);
        prev = NULL;
        for (struct item *x = d->head; x != it; x = x->next)
            prev = x;
        return prev;
    }
    if (tagged) {
        if (d->tail && d->tail->tag > it->tag) {
            prev = NULL;
            for (struct item *x = d->head; x && x->tag <= it->tag; x = x->next)
                prev = x;
        }
    } else {
        it->tag = d->tail ? d->tail->tag : 0;
    }
    if (prev) {
        it->next = prev->next;
        prev->next = it;
    } else {
        it->next = d->head;
        d->head = it;
    }
    if (!it->next)
        d->tail = it;
    return prev;
}

void fair_served(struct dest *d, const struct item *it)
{
    struct fair *f = d->fair;
    if (!f || it->tag <= f->vtime)
        return;
    double was = f->vtime;
    f->vtime = it->tag;
    f->since_retag++;
    /* a flow whose turns all went: when its account has another here,
     * that one now has the account's whole part (retag) */
    bool due = f->retag_due;
    for (unsigned i = 0; i < f->n && !due; i++) {
        const struct fair_flow *x = &f->v[i];
        due = x->next > was && !active(f, x) && sibling_active(f, x);
    }
    if (due && may_retag(f))
        retag(d);
}

bool fair_may_exceed(const struct dest *d, unsigned nitems, uint32_t account,
                     uint64_t campaign, unsigned cap)
{
    const struct fair *f = d->fair;
    if (!f || nitems >= 2 * cap)
        return false;
    double own = 0, most = 0;
    for (unsigned i = 0; i < f->n; i++) {
        const struct fair_flow *x = &f->v[i];
        double ahead = x->next - f->vtime;
        if (ahead <= 0)
            continue;
        if (x->account == account && x->campaign == campaign)
            own = ahead;
        else if (ahead > most)
            most = ahead;
    }
    return own < most;
}

void fair_refresh(struct dest *d)
{
    struct fair *f = d->fair;
    if (!f)
        return;
    for (unsigned i = 0; i < f->n; i++)
        f->v[i].share = config_account_share(&d->e->cfg, f->v[i].account);
}

void fair_free(struct dest *d)
{
    if (!d->fair)
        return;
    free(d->fair->v);
    free(d->fair);
    d->fair = NULL;
}
