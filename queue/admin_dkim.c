/*
 * admin_dkim.c - the DKIM keys of a sending domain over time: adding a
 * selector, verifying keys, retiring one, and the rule that says which
 * keys sign.
 *
 * DESCRIPTION
 *   A sending domain (admin_domains.c) holds up to QUEUE_MAX_SELECTORS
 *   keys.  A key is added pending; it is verified when its DNS record was
 *   seen to match (or by a forced verify); it signs while the domain is
 *   verified and until its retire date, if it has one, passes.  The state
 *   is computed from those dates at the time asked (queue_sdomain_key_
 *   state()), so a retire date passing needs no change to the record:
 *   sluiced and the tools ask the same function.  Every change is one
 *   audited change through the writer (admin_run), which bumps the admin
 *   generation sluiced watches.
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND unknown domain or selector, -EEXIST a selector the
 *   domain already has, QUEUE_ESTATE a full record, a key already retired,
 *   or a retirement that would leave nothing to sign with; -EINVAL bad
 *   input.  The detail (queue_last_detail) says which, in words.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define RETIRE_MAX_S (366 * 86400ull)   /* furthest retire date ahead */

int queue_sdomain_key_state(const struct queue_sdomain *d, unsigned i,
                            int64_t now)
{
    const struct queue_dkim_sel *k = &d->sel[i];
    if (k->retire_at && now >= k->retire_at)
        return QUEUE_KEY_RETIRED;
    if (!k->verified_at)
        return QUEUE_KEY_PENDING;
    if (!d->verified)
        return QUEUE_KEY_VERIFIED;
    return k->retire_at ? QUEUE_KEY_RETIRING : QUEUE_KEY_ACTIVE;
}

bool queue_sdomain_key_signs(const struct queue_sdomain *d, unsigned i,
                             int64_t now)
{
    int st = queue_sdomain_key_state(d, i, now);
    return st == QUEUE_KEY_ACTIVE || st == QUEUE_KEY_RETIRING;
}

const char *queue_key_state_name(int state)
{
    switch (state) {
    case QUEUE_KEY_RETIRED: return "retired";
    case QUEUE_KEY_PENDING: return "pending";
    case QUEUE_KEY_VERIFIED: return "verified";
    case QUEUE_KEY_RETIRING: return "retiring";
    case QUEUE_KEY_ACTIVE: return "active";
    default: return "?";
    }
}

/* Index of selector in d, or -1. */
static int find_sel(const struct queue_sdomain *d, const char *selector)
{
    for (unsigned i = 0; i < d->nsel; i++)
        if (!strcmp(d->sel[i].selector, selector))
            return (int)i;
    return -1;
}

/* The audit object "domain D selector S" with a tail, cut to the cap. */
static void key_object(char *obj, size_t cap, const char *domain,
                       const char *selector, const char *tail)
{
    if (snprintf(obj, cap, "domain %s selector %s%s", domain, selector,
                 tail) >= (int)cap)
        obj[cap - 1] = 0;
}

/* ------------------------------------------------------------ add */

struct key_add_arg {
    const char *domain;
    const struct queue_dkim_sel *sel;
    const struct queue_actor *by;
    struct queue_sdomain d;
};

/* Make room in a full record by dropping its retired keys, oldest retire
 * date first, until one slot is free; false when none is retired. */
static bool drop_retired(struct queue_sdomain *d, int64_t now)
{
    while (d->nsel == QUEUE_MAX_SELECTORS) {
        int old = -1;
        for (unsigned i = 0; i < d->nsel; i++)
            if (queue_sdomain_key_state(d, i, now) == QUEUE_KEY_RETIRED &&
                (old < 0 || d->sel[i].retire_at < d->sel[old].retire_at))
                old = (int)i;
        if (old < 0)
            return false;
        memmove(&d->sel[old], &d->sel[old + 1],
                (d->nsel - (unsigned)old - 1) * sizeof d->sel[0]);
        d->nsel--;
    }
    return true;
}

static int do_key_add(struct admin_tx *t, void *arg)
{
    struct key_add_arg *c = arg;
    const struct queue_dkim_sel *s = c->sel;
    struct queue_sdomain *d = &c->d;
    int64_t now = t->now_ms / 1000;
    int err;
    if (!qsdomain_selector_ok(s->selector))
        return admin_fail(t, -EINVAL, "invalid DKIM selector '%.80s'",
                          s->selector);
    if (strcmp(s->algo, "rsa") && strcmp(s->algo, "ed25519"))
        return admin_fail(t, -EINVAL, "DKIM algorithm is rsa or ed25519");
    if (!*s->key_path || !admin_text_ok(s->key_path, QUEUE_MAX_KEY_PATH) ||
        strpbrk(s->key_path, "\t\r\n"))
        return admin_fail(t, -EINVAL, "invalid DKIM key path");
    if ((err = qsdomain_load(t, c->domain, d)))
        return err;
    int i = find_sel(d, s->selector);
    if (i >= 0)
        return admin_fail(t, -EEXIST, "%s already has the DKIM selector %s "
                          "(%s): a new key needs a new selector", d->domain,
                          s->selector, queue_key_state_name(
                              queue_sdomain_key_state(d, (unsigned)i, now)));
    if (!drop_retired(d, now))
        return admin_fail(t, QUEUE_ESTATE, "%s has %d DKIM selectors, none "
                          "of them retired: retire one first", d->domain,
                          QUEUE_MAX_SELECTORS);
    struct queue_dkim_sel *k = &d->sel[d->nsel++];
    *k = *s;
    k->created = now;
    k->verified_at = k->retire_at = 0;
    if ((err = qsdomain_store(t, d)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], tail[QUEUE_MAX_ALGO + 4];
    snprintf(tail, sizeof tail, " (%s)", k->algo);
    key_object(obj, sizeof obj, d->domain, k->selector, tail);
    return admin_audit_put(t, c->by, d->account, "domain key add", obj, "ok");
}

int queue_sdomain_key_add(struct queue *q, const char *domain,
                          const struct queue_dkim_sel *sel,
                          const struct queue_actor *by)
{
    if (!sel)
        return -EINVAL;
    struct key_add_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->domain = domain;
    c->sel = sel;
    c->by = by;
    int err = admin_run(q, do_key_add, c);
    free(c);
    return err;
}

/* --------------------------------------------------------- retire */

struct retire_arg {
    const char *domain, *selector;
    uint64_t after_s;
    bool last;
    const struct queue_actor *by;
    int64_t at;
    struct queue_sdomain d;
};

/* Whether a verified key of d other than skip has no retire date: the
 * domain keeps a key to sign with once skip is retired. */
static bool other_stays(const struct queue_sdomain *d, unsigned skip)
{
    for (unsigned i = 0; i < d->nsel; i++)
        if (i != skip && d->sel[i].verified_at && !d->sel[i].retire_at)
            return true;
    return false;
}

static int do_retire(struct admin_tx *t, void *arg)
{
    struct retire_arg *c = arg;
    struct queue_sdomain *d = &c->d;
    int64_t now = t->now_ms / 1000;
    int err;
    if (c->after_s > RETIRE_MAX_S)
        return admin_fail(t, -EINVAL, "a retire date is at most 366 days "
                          "ahead");
    if ((err = qsdomain_load(t, c->domain, d)))
        return err;
    int i = c->selector ? find_sel(d, c->selector) : -1;
    if (i < 0)
        return admin_fail(t, QUEUE_ENOTFOUND, "%s has no DKIM selector "
                          "%.80s", d->domain, c->selector ? c->selector : "");
    struct queue_dkim_sel *k = &d->sel[i];
    if (queue_sdomain_key_state(d, (unsigned)i, now) == QUEUE_KEY_RETIRED)
        return admin_fail(t, QUEUE_ESTATE, "selector %s of %s is already "
                          "retired", k->selector, d->domain);
    c->at = now + (int64_t)c->after_s;
    if (!c->last && d->verified && k->verified_at &&
        !other_stays(d, (unsigned)i))
        return admin_fail(t, QUEUE_ESTATE, "retiring %s would leave %s "
                          "without a verified key to sign with: add a key, "
                          "publish and verify it first (or retire it as the "
                          "last one, --last)", k->selector, d->domain);
    k->retire_at = c->at;
    if ((err = qsdomain_store(t, d)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], tail[48];
    snprintf(tail, sizeof tail, " after %llus",
             (unsigned long long)c->after_s);
    key_object(obj, sizeof obj, d->domain, k->selector, tail);
    return admin_audit_put(t, c->by, d->account, "domain key retire", obj,
                           "ok");
}

int queue_sdomain_key_retire(struct queue *q, const char *domain,
                             const char *selector, uint64_t after_s,
                             bool last, const struct queue_actor *by,
                             int64_t *retire_at)
{
    struct retire_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->domain = domain;
    c->selector = selector;
    c->after_s = after_s;
    c->last = last;
    c->by = by;
    int err = admin_run(q, do_retire, c);
    if (!err && retire_at)
        *retire_at = c->at;
    free(c);
    return err;
}

/* --------------------------------------------------------- verify */

struct verify_arg {
    const char *domain;
    bool verified;
    const char *how;
    const char *const *sels;   /* NULL: every key not retired */
    unsigned nsels;
    const struct queue_actor *by;
    struct queue_sdomain d;
};

/* Mark key i verified now unless it was before. */
static void key_verified(struct queue_dkim_sel *k, int64_t now)
{
    if (!k->verified_at)
        k->verified_at = now;
}

static int do_verify(struct admin_tx *t, void *arg)
{
    struct verify_arg *c = arg;
    struct queue_sdomain *d = &c->d;
    int64_t now = t->now_ms / 1000;
    int err;
    if (!c->domain || !*c->domain)
        return admin_fail(t, -EINVAL, "no domain given");
    if ((err = qsdomain_load(t, c->domain, d)))
        return err;
    char list[QUEUE_MAX_AUDIT_OBJECT + 1] = "";
    size_t ln = 0;
    for (unsigned j = 0; c->sels && j < c->nsels; j++) {
        int i = find_sel(d, c->sels[j]);
        if (i < 0)
            return admin_fail(t, QUEUE_ENOTFOUND, "%s has no DKIM selector "
                              "%.80s", d->domain, c->sels[j]);
        if (queue_sdomain_key_state(d, (unsigned)i, now) == QUEUE_KEY_RETIRED)
            return admin_fail(t, QUEUE_ESTATE, "selector %s of %s is "
                              "retired", c->sels[j], d->domain);
        key_verified(&d->sel[i], now);
        int n = snprintf(list + ln, sizeof list - ln, "%s%s", j ? "," : "",
                         c->sels[j]);
        if (n > 0 && (size_t)n < sizeof list - ln)
            ln += (size_t)n;
    }
    if (!c->sels && c->verified)
        for (unsigned i = 0; i < d->nsel; i++)
            if (queue_sdomain_key_state(d, i, now) != QUEUE_KEY_RETIRED)
                key_verified(&d->sel[i], now);
    d->verified = c->verified;
    d->verified_at = c->verified ? now : 0;
    if ((err = qsdomain_store(t, d)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    bool how = c->how && *c->how;
    if (snprintf(obj, sizeof obj, "domain %s%s%s%s%s%s", d->domain,
                 ln ? " selectors " : "", list, how ? " (" : "",
                 how ? c->how : "", how ? ")" : "") >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0; /* cut to the audit record's cap */
    return admin_audit_put(t, c->by, d->account,
                           c->verified ? "domain verify" : "domain unverify",
                           obj, "ok");
}

/* One verify change: the whole domain (sels NULL) or the named keys. */
static int verify_run(struct queue *q, const char *domain, bool verified,
                      const char *const *sels, unsigned n, const char *how,
                      const struct queue_actor *by)
{
    struct verify_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->domain = domain;
    c->verified = verified;
    c->sels = sels;
    c->nsels = n;
    c->how = how;
    c->by = by;
    int err = admin_run(q, do_verify, c);
    free(c);
    return err;
}

int queue_sdomain_set_verified(struct queue *q, const char *domain,
                               bool verified, const char *how,
                               const struct queue_actor *by)
{
    return verify_run(q, domain, verified, NULL, 0, how, by);
}

int queue_sdomain_keys_verified(struct queue *q, const char *domain,
                                const char *const *selectors, unsigned n,
                                const char *how,
                                const struct queue_actor *by)
{
    if (!selectors || !n)
        return -EINVAL;
    return verify_run(q, domain, true, selectors, n, how, by);
}
