/*
 * series.c - the writer's side of the time series (queue_series.h): every
 * event and every recipient queued counted into hourly and daily buckets
 * in the transaction that writes them.
 *
 * DESCRIPTION
 *   qevent_append() (note.c) calls series_event() for each event and
 *   enqueue (ops.c) series_queued() for each recipient.  Every event of
 *   one write transaction carries the transaction's time, so they all fall
 *   in the same hour and day: the changes gather in a small hash table
 *   keyed by dimension only (total, account, campaign, site, sending
 *   domain), and series_flush() adds each entry once to its hour bucket
 *   and once to its day bucket.  A group of 4,096 outcomes for one
 *   campaign to 50 sites costs about 55 entries, 110 bucket writes.
 *
 *   Reception and incident events count nothing: they are not about
 *   one recipient.  Opens and clicks (types 11, 12) count like the rest.
 *
 *   An outcome tells series_event() what the event alone does not (when
 *   the delivery was queued, whether this outcome was an attempt, the
 *   site it went through) in a struct series_hint on the wctx.
 *
 *   The sending domain is the domain of the campaign's From, or of the
 *   envelope sender of an injected message, looked up in the transaction
 *   (a per-transaction cache keeps it to one read per campaign/message).
 *
 *   Bucket keys: gran . u32 bucket (hour or day number since the epoch,
 *   big-endian, so a time range is one cursor run) . dim . id: nothing
 *   (total), u32 account, or u32 account . u64 campaign / the site or
 *   domain name (so a sub-account's view needs no lookup).  Values: the
 *   nonzero counts only, each a slot byte and the count as a LEB128
 *   varint, written here by hand (a bucket holds a handful of the 96
 *   slots: ~20 bytes, not 768); a slot this build does not know is
 *   skipped.
 *
 *   A full spool: when a group that only records outcomes does not fit
 *   under the map's ceiling, the writer (writer.c) commits it once more
 *   without its series changes, since outcomes are what frees the spool;
 *   those events are then missing from the series (rare, counted in
 *   q->series_skipped).
 *
 *   Pruning: once an hour the writer deletes up to PRUNE_BATCH buckets
 *   past the periods in its transaction (queue_series_prune() too).
 *
 * DIAGNOSTICS
 *   -ENOMEM when the table cannot grow (the transaction aborts), LMDB
 *   failures through wctx_fail().  A bucket value of another size is
 *   read as far as it goes.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"
#include "queue_series.h"
#include "campaign_int.h"

#define SKEY_MAX (1 + 4 + 1 + 255)
#define NAME_MAX_ 255
#define PRUNE_BATCH 2000
#define FROM_CACHE 16

struct series_delta {
    unsigned char key[5 + 255];   /* dim . id */
    uint16_t klen;
    uint64_t hash;
    uint64_t c[QUEUE_SERIES_SLOTS];
};

struct from_cache {
    char kind;                    /* 'c' campaign, 'm' message, 0 empty */
    uint64_t id;
    uint8_t len;
    char dom[NAME_MAX_];
};

struct series_state {
    struct series_delta *d;
    size_t n, cap;
    size_t *index;
    size_t capindex;
    struct from_cache fc[FROM_CACHE];
    int64_t last_prune_hour;
    unsigned hourly_days, daily_days;
};

static struct series_state *state(struct queue *q)
{
    if (!q->series) {
        q->series = calloc(1, sizeof *q->series);
        if (q->series) {
            q->series->hourly_days = 35;
            q->series->daily_days = 800;
        }
    }
    return q->series;
}

void queue_series_configure(struct queue *q, unsigned hourly_days,
                            unsigned daily_days)
{
    struct series_state *s = state(q);
    if (!s)
        return;
    if (hourly_days)
        s->hourly_days = hourly_days;
    if (daily_days)
        s->daily_days = daily_days;
}

void series_free(struct queue *q)
{
    if (!q->series)
        return;
    free(q->series->d);
    free(q->series->index);
    free(q->series);
    q->series = NULL;
}

void series_reset(struct queue *q)
{
    struct series_state *s = q->series;
    if (!s)
        return;
    s->n = 0;
    if (s->index)
        memset(s->index, 0, s->capindex * sizeof *s->index);
    memset(s->fc, 0, sizeof s->fc);
}

static int grow_index(struct series_state *s)
{
    return qkey_index_grow(&s->index, &s->capindex, 64, s->d, s->n,
                           sizeof *s->d, offsetof(struct series_delta, hash));
}

/* The position in s->d of one dimension key's delta, added if new; -1
 * when out of memory.  (A position, not a pointer: adding moves s->d.) */
static long delta_for(struct series_state *s, const unsigned char *key,
                      size_t klen)
{
    if ((s->n + 1) * 2 > s->capindex && grow_index(s))
        return -1;
    uint64_t h = qkey_hash(key, klen);
    size_t j = (size_t)h & (s->capindex - 1);
    while (s->index[j]) {
        struct series_delta *sd = &s->d[s->index[j] - 1];
        if (sd->hash == h && sd->klen == klen && !memcmp(sd->key, key, klen))
            return (long)(s->index[j] - 1);
        j = (j + 1) & (s->capindex - 1);
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct series_delta *nd = realloc(s->d, ncap * sizeof *nd);
        if (!nd)
            return -1;
        s->d = nd;
        s->cap = ncap;
    }
    struct series_delta *sd = &s->d[s->n++];
    memset(sd->c, 0, sizeof sd->c);
    memcpy(sd->key, key, klen);
    sd->klen = (uint16_t)klen;
    sd->hash = h;
    s->index[j] = s->n;
    return (long)(s->n - 1);
}

/* The domain of an address ("Name <a@b.example>" or "a@b.example"),
 * lowercase, into out (NAME_MAX_ + 1); its length, 0 if none. */
static size_t addr_domain(const char *addr, char *out)
{
    const char *at = strrchr(addr, '@');
    size_t n = 0;
    if (!at)
        return 0;
    for (const char *p = at + 1; *p && *p != '>' && *p != ' ' &&
                                 n < NAME_MAX_; p++)
        out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    out[n] = 0;
    return n;
}

/* The sending domain of a campaign (campaign != 0) or stored message, or
 * "" when unknown; cached for the transaction. */
static size_t sending_domain(struct wctx *w, struct series_state *s,
                             uint64_t campaign, uint64_t msg, char *out)
{
    char kind = campaign ? 'c' : 'm';
    uint64_t id = campaign ? campaign : msg;
    struct from_cache *fc = &s->fc[id % FROM_CACHE];
    out[0] = 0;
    if (!id)
        return 0;
    if (fc->kind == kind && fc->id == id) {
        memcpy(out, fc->dom, fc->len);
        out[fc->len] = 0;
        return fc->len;
    }
    size_t n = 0;
    if (campaign) {
        unsigned char key[9] = { 'i' };
        MDB_val k = { 9, key }, v;
        be64_put(key + 1, campaign);
        if (!w->q->absent[DB_CAMPAIGNS] &&
            !mdb_get(w->txn, w->q->dbi[DB_CAMPAIGNS], &k, &v)) {
            struct queue_campaign c;
            memset(&c, 0, sizeof c);
            if (!qcampaign_def_decode(&v, campaign, &c, false))
                n = addr_domain(c.from, out);
            queue_campaign_clear(&c);
        }
    } else {
        unsigned char key[8];
        MDB_val k = { 8, key }, v;
        be64_put(key, msg);
        if (!mdb_get(w->txn, w->q->dbi[DB_MESSAGES], &k, &v) &&
            v.mv_size >= 2) {
            const unsigned char *p = v.mv_data;
            size_t fl = (size_t)p[0] << 8 | p[1];
            char from[QUEUE_MAX_RCPT + 1];
            if (fl <= QUEUE_MAX_RCPT && 2 + fl <= v.mv_size) {
                memcpy(from, p + 2, fl);
                from[fl] = 0;
                n = addr_domain(from, out);
            }
        }
    }
    fc->kind = kind;
    fc->id = id;
    fc->len = (uint8_t)n;
    memcpy(fc->dom, out, n);
    return n;
}

/* Add slot values to the five dimensions of one event. */
static int add_dims(struct series_state *s, uint32_t account,
                    uint64_t campaign, const char *site, size_t site_len,
                    const char *dom, size_t dom_len,
                    const int *slot, const uint64_t *by, int nslot)
{
    unsigned char key[5 + 255];
    long at[5];
    int nd = 0;
    key[0] = QUEUE_SERIES_TOTAL;
    at[nd++] = delta_for(s, key, 1);
    key[0] = QUEUE_SERIES_ACCOUNT;
    be32_put(key + 1, account);
    at[nd++] = delta_for(s, key, 5);
    if (campaign) {
        key[0] = QUEUE_SERIES_CAMPAIGN;   /* account . campaign */
        be64_put(key + 5, campaign);
        at[nd++] = delta_for(s, key, 13);
    }
    if (site_len > NAME_MAX_)
        site_len = NAME_MAX_;
    key[0] = QUEUE_SERIES_SITE;   /* account . name: a sub-account's own */
    memcpy(key + 5, site, site_len);
    at[nd++] = delta_for(s, key, 5 + site_len);
    key[0] = QUEUE_SERIES_DOMAIN;
    memcpy(key + 5, dom, dom_len);
    at[nd++] = delta_for(s, key, 5 + dom_len);
    for (int i = 0; i < nd; i++) {
        if (at[i] < 0)
            return -ENOMEM;
        for (int j = 0; j < nslot; j++)
            s->d[at[i]].c[slot[j]] += by[j];
    }
    return 0;
}

int series_queued(struct wctx *w, uint32_t account, uint64_t campaign,
                  uint64_t ref)
{
    struct series_state *s = state(w->q);
    char dom[NAME_MAX_ + 1];
    if (!s)
        return -ENOMEM;
    size_t dl = sending_domain(w, s, campaign, campaign ? 0 : ref, dom);
    int slot[1] = { QUEUE_SERIES_QUEUED };
    uint64_t by[1] = { 1 };
    return add_dims(s, account, campaign, "", 0, dom, dl, slot, by, 1);
}

int series_suppressed_at_send(struct wctx *w, uint32_t account,
                               uint64_t campaign, uint64_t n)
{
    struct series_state *s = state(w->q);
    char dom[NAME_MAX_ + 1];
    if (!s)
        return -ENOMEM;
    if (!n)
        return 0;
    size_t dl = sending_domain(w, s, campaign, 0, dom);
    int slot[1] = { QUEUE_SERIES_SUPPRESSED_AT_SEND };
    uint64_t by[1] = { n };
    return add_dims(s, account, campaign, "", 0, dom, dl, slot, by, 1);
}

int series_event(struct wctx *w, const struct queue_event *ev)
{
    struct series_state *s = state(w->q);
    const struct series_hint *h = w->series_hint;
    char dom[NAME_MAX_ + 1];
    int slot[5];
    uint64_t by[5] = { 1, 1, 1, 1, 1 };
    int n = 0;
    if (!s)
        return -ENOMEM;
    if (ev->type == QUEUE_EV_NONE || ev->type >= QUEUE_SERIES_TYPES ||
        ev->type == QUEUE_EV_RECEPTION || ev->type == QUEUE_EV_INCIDENT)
        return 0;   /* not about one recipient */
    if (h && h->delivery != ev->delivery)
        h = NULL;
    slot[n++] = ev->type;
    if (ev->type == QUEUE_EV_BOUNCED)
        slot[n++] = QUEUE_SERIES_CAT +
                    (ev->category < 16 ? ev->category : QUEUE_CAT_OTHER);
    if (h && h->attempt && ev->attempt == 1)
        slot[n++] = QUEUE_SERIES_ATTEMPTED;
    if (ev->type == QUEUE_EV_DELIVERED && ev->attempt == 1 && h &&
        h->attempt)
        slot[n++] = QUEUE_SERIES_FIRST;
    if (ev->type == QUEUE_EV_DELIVERED && h && h->created > 0) {
        int64_t ms = ev->time_ms - h->created * 1000;
        slot[n++] = QUEUE_SERIES_HIST0 + queue_series_bin(ms);
    }
    size_t dl = h ? sending_domain(w, s, ev->campaign,
                                   ev->campaign ? 0 : h->ref, dom)
                  : sending_domain(w, s, ev->campaign, 0, dom);
    return add_dims(s, ev->account, ev->campaign,
                    h && h->site ? h->site : "", h ? h->site_len : 0,
                    dom, dl, slot, by, n);
}

size_t qseries_encode(const uint64_t *c, unsigned char *out)
{
    size_t n = 0;
    for (int i = 0; i < QUEUE_SERIES_SLOTS; i++) {
        uint64_t x = c[i];
        if (!x)
            continue;
        out[n++] = (unsigned char)i;
        do {
            out[n++] = (unsigned char)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            x >>= 7;
        } while (x);
    }
    return n;
}

int qseries_decode(const unsigned char *p, size_t len,
                   uint64_t *c)
{
    size_t i = 0;
    memset(c, 0, QUEUE_SERIES_SLOTS * sizeof *c);
    while (i < len) {
        unsigned slot = p[i++];
        uint64_t x = 0;
        int shift = 0;
        for (;;) {
            if (i >= len || shift > 63)
                return QUEUE_ECORRUPT;
            unsigned char b = p[i++];
            x |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
        if (slot < QUEUE_SERIES_SLOTS)
            c[slot] = x;   /* a newer build's slot: skipped */
    }
    return 0;
}

/* Add the delta c to the bucket gran.bucket.key in txn. */
static int bucket_add(struct wctx *w, int gran, uint32_t bucket,
                      const struct series_delta *sd)
{
    unsigned char key[5 + sizeof sd->key];
    uint64_t val[QUEUE_SERIES_SLOTS] = { 0 };
    key[0] = (unsigned char)gran;
    be32_put(key + 1, bucket);
    memcpy(key + 5, sd->key, sd->klen);
    MDB_val k = { 5 + sd->klen, key }, v;
    unsigned char enc[QUEUE_SERIES_SLOTS * 11];
    int rc = mdb_get(w->txn, w->q->dbi[DB_SERIES], &k, &v);
    if (rc == 0)
        (void)qseries_decode(v.mv_data, v.mv_size, val);
    else if (rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    for (int i = 0; i < QUEUE_SERIES_SLOTS; i++)
        val[i] += sd->c[i];
    MDB_val nv = { qseries_encode(val, enc), enc };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_SERIES], &k, &nv, 0)))
        return wctx_fail(w, rc);
    return 0;
}

/* Delete up to max buckets of gran older than bucket number `before`;
 * returns the number deleted or an LMDB code (negated). */
static long prune_gran(MDB_txn *txn, MDB_dbi dbi, int gran, uint32_t before,
                       size_t max)
{
    MDB_cursor *cur;
    unsigned char start[1] = { (unsigned char)gran };
    MDB_val k = { 1, start }, v;
    long n = 0;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return -rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *p = k.mv_data;
        if (k.mv_size < 5 || p[0] != gran || be32_get(p + 1) >= before ||
            (max && (size_t)n >= max))
            break;
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        n++;
    }
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? -rc : n;
}

long series_prune_txn(struct queue *q, MDB_txn *txn, int64_t now, size_t max)
{
    struct series_state *s = state(q);
    if (!s)
        return -ENOMEM;
    if (q->absent[DB_SERIES])
        return 0;
    int64_t h = now / 3600 - (int64_t)s->hourly_days * 24;
    int64_t d = now / 86400 - (int64_t)s->daily_days;
    long a = prune_gran(txn, q->dbi[DB_SERIES], QUEUE_SERIES_HOUR,
                        h > 0 ? (uint32_t)h : 0, max);
    if (a < 0)
        return a;
    long b = prune_gran(txn, q->dbi[DB_SERIES], QUEUE_SERIES_DAY,
                        d > 0 ? (uint32_t)d : 0,
                        max ? (max > (size_t)a ? max - (size_t)a : 1) : 0);
    return b < 0 ? b : a + b;
}

int series_flush(struct wctx *w)
{
    struct series_state *s = w->q->series;
    int err;
    if (!s)
        return 0;
    uint32_t hour = (uint32_t)(w->now / 3600), day = (uint32_t)(w->now / 86400);
    for (size_t i = 0; i < s->n; i++)
        if ((err = bucket_add(w, QUEUE_SERIES_HOUR, hour, &s->d[i])) ||
            (err = bucket_add(w, QUEUE_SERIES_DAY, day, &s->d[i])))
            return err;
    if (w->now / 3600 != s->last_prune_hour) {
        long n = series_prune_txn(w->q, w->txn, w->now, PRUNE_BATCH);
        if (n < 0)
            return wctx_fail(w, (int)-n);
        if (n < PRUNE_BATCH)
            s->last_prune_hour = w->now / 3600;
    }
    series_reset(w->q);
    return 0;
}
