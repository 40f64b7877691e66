/*
 * hygiene.c - list hygiene inside the outcome transaction.
 *
 * DESCRIPTION
 *   outcome.c calls hygiene_outcome() for every outcome of a delivery that
 *   has an account, in the writer's transaction, so a suppression commits
 *   together with the outcome that caused it:
 *
 *   bad-mailbox, bad-domain, inactive-mailbox (bounced): the address goes
 *     on the suppression list of the account's suppression owner, reason
 *     "hard bounce: <category>", source "smtp" (sluiced's SMTP replies) or
 *     the caller's (feedback.c: "dsn"), added by the delivery's account
 *     (on a shared list it is that sub-account's entry; an entry already
 *     there stays as it is, whoever added it).  A complaint reported by
 *     feedback.c is suppressed the same way, reason "complaint".
 *   quota-issues (deferred, bounced or expired): a streak per (owner,
 *     address) counts them; the soft_bounce_limit-th in a row, all within
 *     soft_bounce_days of the first, suppresses (reason "soft bounce:
 *     quota-issues xN", added by the account of the delivery that made it
 *     N: the streak is the list's, as the list is shared).  A streak older
 *     than that starts again.
 *   delivered: the streak ends.
 *   policy-related, spam-related: never suppress (they speak of the
 *     sender's reputation); counted per account per UTC day for incidents
 *     (queue_blocks_get()).
 *
 *   Streaks live in the "suppress" database under u32 owner . 0xff .
 *   lower-case address, after every address of that owner (0xff never
 *   starts an address), so listing an owner's suppressions stops at them.
 *   Value: u8 fmt 1, u32 count, i64 first (little-endian).  The blocks
 *   counters live in "counters" under 'b' u32 account . u32 day (counters.c
 *   record; field 0 policy, field 1 spam).
 *
 *   Delivered outcomes are the hot path: an in-memory set of address
 *   hashes (struct queue, loaded from the stored streaks on the first
 *   outcome after open, only growing, so a superset) answers "no streak"
 *   without touching the spool; only a possible hit looks the streak up.
 *
 *   No audit record: these are the engine's changes, not an operator's; the
 *   suppression record's source says where it came from.  (A report fed
 *   back by `sluice feedback ingest` is audited by the tool, "feedback
 *   ingest", naming what it suppressed.)
 *
 * DIAGNOSTICS
 *   Returns 0 or a txn-fatal code.  An account that is gone, an address
 *   that does not fit a key, or a record that does not decode leave the
 *   list as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists_int.h"

#define STREAK_FMT 1
#define STREAK_LEN (1 + 4 + 8)

/* The suppression owner of account id from its stored record: the parent
 * when the list is shared, else the account.  0 when there is none. */
static int owner_of(struct wctx *w, uint32_t id, uint32_t *owner)
{
    unsigned char key[5] = { 'i' };
    be32_put(key + 1, id);
    MDB_val k = { 5, key }, v;
    *owner = 0;
    int rc = mdb_get(w->txn, w->q->dbi[DB_ACCOUNTS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return wctx_fail(w, rc);
    const unsigned char *p = v.mv_data;
    if (v.mv_size < 6 || p[0] != ADMIN_FMT)
        return 0;
    uint32_t parent = (uint32_t)p[1] | (uint32_t)p[2] << 8 |
                      (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
    *owner = (p[5] & 8) && parent ? parent : id;
    return 0;
}

/* FNV-1a hash of a lower-case address; never 0 (the empty slot). */
static uint64_t addr_hash(const char *lower, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)lower[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Whether h is in the streak set. */
static bool set_has(const struct queue *q, uint64_t h)
{
    if (!q->streak_cap)
        return false;
    for (size_t i = h & (q->streak_cap - 1);; i = (i + 1) & (q->streak_cap - 1)) {
        if (q->streak_hash[i] == h)
            return true;
        if (!q->streak_hash[i])
            return false;
    }
}

/* Add h to the streak set (grows at half full); 0 or -ENOMEM. */
static int set_add(struct queue *q, uint64_t h)
{
    if (set_has(q, h))
        return 0;
    if (2 * (q->streak_count + 1) > q->streak_cap) {
        size_t nc = q->streak_cap ? 2 * q->streak_cap : 1024;
        uint64_t *nh = calloc(nc, sizeof *nh);
        if (!nh)
            return -ENOMEM;
        for (size_t i = 0; i < q->streak_cap; i++) {
            uint64_t x = q->streak_hash[i];
            if (!x)
                continue;
            size_t j = x & (nc - 1);
            while (nh[j])
                j = (j + 1) & (nc - 1);
            nh[j] = x;
        }
        free(q->streak_hash);
        q->streak_hash = nh;
        q->streak_cap = nc;
    }
    size_t i = h & (q->streak_cap - 1);
    while (q->streak_hash[i])
        i = (i + 1) & (q->streak_cap - 1);
    q->streak_hash[i] = h;
    q->streak_count++;
    return 0;
}

void hygiene_free(struct queue *q)
{
    free(q->streak_hash);
    q->streak_hash = NULL;
    q->streak_cap = q->streak_count = 0;
    q->streak_loaded = false;
}

/* Fill the streak set from the stored streaks of every account (once per
 * open): the set only ever grows, so it stays a superset of the records. */
static int set_load(struct wctx *w)
{
    MDB_cursor *ac = NULL, *sc = NULL;
    MDB_val k = { 1, "i" }, v;
    int rc, err = 0;
    if ((rc = mdb_cursor_open(w->txn, w->q->dbi[DB_ACCOUNTS], &ac)) ||
        (rc = mdb_cursor_open(w->txn, w->q->dbi[DB_SUPPRESS], &sc))) {
        if (ac)
            mdb_cursor_close(ac);
        return wctx_fail(w, rc);
    }
    for (rc = mdb_cursor_get(ac, &k, &v, MDB_SET_RANGE); rc == 0 && !err;
         rc = mdb_cursor_get(ac, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 5 || kp[0] != 'i')
            break;
        unsigned char pre[5];
        memcpy(pre, kp + 1, 4);
        pre[4] = 0xff;
        MDB_val sk = { 5, pre }, sv;
        int src;
        for (src = mdb_cursor_get(sc, &sk, &sv, MDB_SET_RANGE); src == 0;
             src = mdb_cursor_get(sc, &sk, &sv, MDB_NEXT)) {
            if (sk.mv_size <= 5 || memcmp(sk.mv_data, pre, 5))
                break;
            if ((err = set_add(w->q, addr_hash((const char *)sk.mv_data + 5,
                                               sk.mv_size - 5))))
                break;
        }
        if (!err && src && src != MDB_NOTFOUND)
            err = wctx_fail(w, src);
    }
    if (!err && rc && rc != MDB_NOTFOUND)
        err = wctx_fail(w, rc);
    mdb_cursor_close(sc);
    mdb_cursor_close(ac);
    if (!err)
        w->q->streak_loaded = true;
    return err;
}

bool hygiene_streak_ok(const MDB_val *v)
{
    return v->mv_size == STREAK_LEN &&
           ((const unsigned char *)v->mv_data)[0] == STREAK_FMT;
}

/* The streak key of (owner, address); mv_size 0 when it does not fit. */
static MDB_val streak_key(unsigned char *buf, uint32_t owner,
                          const char *rcpt)
{
    char lower[QUEUE_MAX_RCPT + 1];
    size_t n = strnlen(rcpt, QUEUE_MAX_RCPT + 1);
    if (!n || n > QUEUE_MAX_RCPT || !(n = qaddr_lower(rcpt, n, lower)))
        return (MDB_val){ 0, NULL };
    be32_put(buf, owner);
    buf[4] = 0xff;
    memcpy(buf + 5, lower, n);
    return (MDB_val){ 5 + n, buf };
}

/* Put rcpt on owner's suppression list, added by account, with via's
 * source ("smtp" without one), unless it is there already (whoever added
 * it); via learns which. */
static int suppress_put(struct wctx *w, uint32_t owner, uint32_t account,
                        const char *rcpt, const char *reason,
                        struct hygiene_via *via)
{
    unsigned char kb[SUPPRESS_KEY_MAX], buf[SUPP_REC_MAX];
    char lower[QUEUE_MAX_RCPT + 1];
    size_t n = strnlen(rcpt, QUEUE_MAX_RCPT + 1);
    if (!n || n > QUEUE_MAX_RCPT || !(n = qaddr_lower(rcpt, n, lower)))
        return 0;
    MDB_val k = qsupp_key(kb, owner, lower, n);
    MDB_val v = { qsupp_encode(buf, w->now, account, reason,
                               via && via->source ? via->source : "smtp"),
                  buf };
    int rc = mdb_put(w->txn, w->q->dbi[DB_SUPPRESS], &k, &v, MDB_NOOVERWRITE);
    if (rc && rc != MDB_KEYEXIST)
        return wctx_fail(w, rc);
    if (via)
        via->suppressed = rc ? QUEUE_FEEDBACK_ALREADY_SUPPRESSED
                             : QUEUE_FEEDBACK_SUPPRESSED;
    return 0;
}

/* Drop owner's streak for rcpt, if any. */
static int streak_end(struct wctx *w, uint32_t owner, const char *rcpt)
{
    unsigned char kb[SUPPRESS_KEY_MAX + 1];
    MDB_val k = streak_key(kb, owner, rcpt);
    if (!k.mv_size)
        return 0;
    int rc = mdb_del(w->txn, w->q->dbi[DB_SUPPRESS], &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    return 0;
}

/* Count one more soft bounce for (owner, rcpt); suppress at the limit,
 * added by account (whose delivery made the streak full). */
static int streak_add(struct wctx *w, uint32_t owner, uint32_t account,
                      const char *rcpt, int category,
                      struct hygiene_via *via)
{
    unsigned char kb[SUPPRESS_KEY_MAX + 1], val[STREAK_LEN];
    unsigned limit = w->q->opt.soft_bounce_limit ? w->q->opt.soft_bounce_limit
                                                 : 3;
    int64_t span = 86400 * (int64_t)(w->q->opt.soft_bounce_days
                                     ? w->q->opt.soft_bounce_days : 7);
    MDB_val k = streak_key(kb, owner, rcpt), v;
    if (!k.mv_size)
        return 0;
    uint32_t count = 0;
    int64_t first = w->now;
    int rc = mdb_get(w->txn, w->q->dbi[DB_SUPPRESS], &k, &v);
    if (rc == 0 && hygiene_streak_ok(&v)) {
        const unsigned char *p = v.mv_data;
        uint64_t f = 0;
        for (int b = 7; b >= 0; b--)
            f = f << 8 | p[5 + b];
        count = (uint32_t)p[1] | (uint32_t)p[2] << 8 |
                (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
        first = (int64_t)f;
        if (w->now - first > span) { /* too old: a new streak */
            count = 0;
            first = w->now;
        }
    } else if (rc && rc != MDB_NOTFOUND) {
        return wctx_fail(w, rc);
    }
    count++;
    if (count >= limit) {
        char reason[64];
        snprintf(reason, sizeof reason, "soft bounce: %s x%u",
                 queue_category_name(category), (unsigned)count);
        int err = suppress_put(w, owner, account, rcpt, reason, via);
        return err ? err : streak_end(w, owner, rcpt);
    }
    val[0] = STREAK_FMT;
    for (int b = 0; b < 4; b++)
        val[1 + b] = (unsigned char)(count >> (8 * b));
    for (int b = 0; b < 8; b++)
        val[5 + b] = (unsigned char)((uint64_t)first >> (8 * b));
    MDB_val nv = { sizeof val, val };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_SUPPRESS], &k, &nv, 0)))
        return wctx_fail(w, rc);
    return set_add(w->q, addr_hash((const char *)k.mv_data + 5,
                                   k.mv_size - 5));
}

/* Whether rcpt may have a streak under any owner (the set says no for
 * almost every delivered address, saving two lookups). */
static bool may_have_streak(const struct queue *q, const char *rcpt)
{
    char lower[QUEUE_MAX_RCPT + 1];
    size_t n = strnlen(rcpt, QUEUE_MAX_RCPT + 1);
    if (!n || n > QUEUE_MAX_RCPT || !(n = qaddr_lower(rcpt, n, lower)))
        return false;
    return set_has(q, addr_hash(lower, n));
}

bool hygiene_hard(int category)
{
    return category == QUEUE_CAT_BAD_MAILBOX ||
           category == QUEUE_CAT_BAD_DOMAIN ||
           category == QUEUE_CAT_INACTIVE_MAILBOX;
}

int hygiene_suppress(struct wctx *w, uint32_t account, const char *rcpt,
                     int category, struct hygiene_via *via)
{
    uint32_t owner;
    char reason[64];
    int err;
    if (!account)
        return 0;
    if ((err = owner_of(w, account, &owner)) || !owner)
        return err;
    if (category == QUEUE_CAT_NONE)
        snprintf(reason, sizeof reason, "complaint");
    else
        snprintf(reason, sizeof reason, "hard bounce: %s",
                 queue_category_name(category));
    if ((err = suppress_put(w, owner, account, rcpt, reason, via)))
        return err;
    return streak_end(w, owner, rcpt);
}

int hygiene_outcome(struct wctx *w, uint32_t account, const char *rcpt,
                    int type, int category, struct hygiene_via *via)
{
    uint32_t owner;
    int err;
    if (!account)
        return 0;
    if (!w->q->streak_loaded && (err = set_load(w)))
        return err;
    switch (category) {
    case QUEUE_CAT_POLICY:
    case QUEUE_CAT_SPAM:
        if (type != QUEUE_EV_BOUNCED && type != QUEUE_EV_DEFERRED)
            return 0;
        return qblocks_add(w, account, (uint32_t)(w->now / 86400),
                           category == QUEUE_CAT_POLICY,
                           category == QUEUE_CAT_SPAM);
    case QUEUE_CAT_BAD_MAILBOX:
    case QUEUE_CAT_BAD_DOMAIN:
    case QUEUE_CAT_INACTIVE_MAILBOX:
        if (type != QUEUE_EV_BOUNCED)
            return 0;
        return hygiene_suppress(w, account, rcpt, category, via);
    case QUEUE_CAT_QUOTA:
        if (type != QUEUE_EV_BOUNCED && type != QUEUE_EV_DEFERRED &&
            type != QUEUE_EV_EXPIRED)
            return 0;
        if ((err = owner_of(w, account, &owner)) || !owner)
            return err;
        return streak_add(w, owner, account, rcpt, category, via);
    default:
        if (type != QUEUE_EV_DELIVERED || !may_have_streak(w->q, rcpt))
            return 0; /* the hot path: no lookups */
        if ((err = owner_of(w, account, &owner)) || !owner)
            return err;
        return streak_end(w, owner, rcpt);
    }
}

int queue_blocks_get(struct queue *q, uint32_t account, uint32_t day,
                     uint64_t *policy, uint64_t *spam)
{
    unsigned char key[9] = { 'b' };
    uint64_t c[CF_COUNT];
    MDB_txn *txn;
    MDB_val k = { sizeof key, key }, v;
    be32_put(key + 1, account);
    be32_put(key + 5, day);
    *policy = *spam = 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    int rc = mdb_get(txn, q->dbi[DB_COUNTERS], &k, &v);
    if (rc == 0 && !qcounts_load(&v, c)) {
        *policy = c[0];
        *spam = c[1];
    }
    queue_read_end(q, txn);
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : 0;
}
