/*
 * repair.c - make a salvaged spool whole again.
 *
 * DESCRIPTION
 *   After salvage.c copied what it could read, the new spool holds good
 *   records but maybe not consistent ones.  In order (events before
 *   messages: the "expired" events written there must find every
 *   delivery linked to an event that exists):
 *     meta        each id counter (next_delivery, next_account, ...) is
 *                 raised above the largest id copied, so no id is handed
 *                 out twice; audit_head is set to the last audit record
 *                 copied, with the link that record stores (keyed or
 *                 not: repair holds no key and never computes a link, so
 *                 a salvage cannot launder a chain: a record lost in the
 *                 middle stays a gap `audit verify` names, and the heads
 *                 checkpointed before still match the records kept)
 *     events      events of deliveries that were lost are dropped; a
 *                 delivery whose newest event was lost links to the
 *                 newest one of its that is left
 *     messages    a queued recipient of an injected message whose message
 *                 was lost can never be sent: it is ended with an
 *                 "expired" event ("message lost in spool salvage")
 *                 through the library's outcome path, and reported
 *     ready       rebuilt from the queued deliveries: entries of no
 *                 queued delivery due then are dropped, missing ones added
 *     msgrefs     counted again from the queued deliveries; a stored
 *                 message no queued recipient needs is dropped
 *     counters    counted again from the deliveries and deferral events
 *   The new spool is not in use by anyone yet, so the repairs write with
 *   plain LMDB in transactions of REPAIR_BATCH changes, reading from one
 *   snapshot taken before each step.
 *
 * DIAGNOSTICS
 *   Returns 0, or the code of a write that failed (the spool is then as
 *   the last committed batch left it; what was repaired was reported).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin_int.h"
#include "check_int.h"

#define REPAIR_BATCH 10000
#define END_BATCH 4096

struct rp {
    struct collect *col;
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    MDB_txn *rt;             /* the step's read snapshot */
    MDB_txn *wt;             /* the current write batch */
    unsigned n;
    int err;                 /* LMDB code of a failed write */
};

/* Report through the collector, as a walking child would. */
static void say(struct rp *p, int kind, int db, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(struct rp *p, int kind, int db, const char *fmt, ...)
{
    struct walk_msg m;
    va_list ap;
    memset(&m, 0, sizeof m);
    m.kind = (uint8_t)kind;
    m.db = (uint8_t)db;
    va_start(ap, fmt);
    vsnprintf(m.what, sizeof m.what, fmt, ap);
    va_end(ap);
    qcollect_msg(p->col, &m);
}

/* The write batch (begun on first use). */
static MDB_txn *wt(struct rp *p)
{
    if (!p->wt && !p->err && (p->err = mdb_txn_begin(p->env, NULL, 0,
                                                     &p->wt)))
        p->wt = NULL;
    return p->wt;
}

/* Commit the current write batch. */
static void flush(struct rp *p)
{
    if (p->wt) {
        int rc = mdb_txn_commit(p->wt);
        if (rc && !p->err)
            p->err = rc;
    }
    p->wt = NULL;
    p->n = 0;
}

/* Count one change; commit the batch when it is full. */
static void changed(struct rp *p)
{
    if (++p->n >= REPAIR_BATCH)
        flush(p);
}

/* Write one record in the current batch. */
static void put(struct rp *p, int db, const void *k, size_t klen,
                const void *v, size_t vlen)
{
    MDB_val kk = { klen, (void *)k }, vv = { vlen, (void *)v };
    MDB_txn *t = wt(p);
    int rc;
    if (t && (rc = mdb_put(t, p->dbi[db], &kk, &vv, 0)) && !p->err)
        p->err = rc;
    changed(p);
}

/* Delete one record in the current batch (absent is fine). */
static void del(struct rp *p, int db, const void *k, size_t klen)
{
    MDB_val kk = { klen, (void *)k };
    MDB_txn *t = wt(p);
    int rc;
    if (t && (rc = mdb_del(t, p->dbi[db], &kk, NULL)) && rc != MDB_NOTFOUND &&
        !p->err)
        p->err = rc;
    changed(p);
}

/* Begin a step: a fresh snapshot of everything committed. */
static int snap(struct rp *p)
{
    flush(p);
    if (p->rt)
        mdb_txn_abort(p->rt);
    p->rt = NULL;
    int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, &p->rt);
    if (rc)
        p->rt = NULL;
    return rc;
}

/* Whether key k is in database db of the step's snapshot. */
static bool exists(struct rp *p, int db, const void *k, size_t klen)
{
    MDB_val kk = { klen, (void *)k }, v;
    return mdb_get(p->rt, p->dbi[db], &kk, &v) == 0;
}

/* Open the new spool with plain LMDB, room to grow. */
static int rp_open(struct rp *p, const char *dir)
{
    char path[4096];
    struct stat st;
    MDB_txn *txn;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    uint64_t bytes = stat(path, &st) ? 0 : (uint64_t)st.st_size;
    int rc = mdb_env_create(&p->env);
    if (rc)
        return rc;
    mdb_env_set_maxdbs(p->env, 64);
    mdb_env_set_mapsize(p->env, (size_t)(2 * bytes + (1ull << 30)));
    if ((rc = mdb_env_open(p->env, dir, MDB_NOTLS, 0600)) ||
        (rc = mdb_txn_begin(p->env, NULL, 0, &txn)))
        return rc;
    for (int i = 0; i < DB_COUNT && !rc; i++)
        rc = mdb_dbi_open(txn, queue_db_names[i], 0, &p->dbi[i]);
    return rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
}

static void rp_close(struct rp *p)
{
    flush(p);
    if (p->rt)
        mdb_txn_abort(p->rt);
    p->rt = NULL;
    if (p->env)
        mdb_env_close(p->env);
    p->env = NULL;
}

/* ------------------------------------------------------------- meta */

/* The largest id under rule r in the snapshot (0 if none). */
static uint64_t max_id(struct rp *p, const struct id_rule *r)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t id = 0;
    unsigned char after = (unsigned char)(r->prefix + 1);
    if (mdb_cursor_open(p->rt, p->dbi[r->db], &cur))
        return 0;
    int rc;
    if (r->prefix) {
        k.mv_size = 1;
        k.mv_data = &after;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                     : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    /* in a prefixed database other records (names) lie before the ids */
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        const unsigned char *kp = k.mv_data;
        if (r->prefix && (k.mv_size < 1 || kp[0] != r->prefix))
            break;
        if ((id = rules_id_of(r, &k)))
            break;
    }
    mdb_cursor_close(cur);
    return id;
}

static void fix_meta(struct rp *p)
{
    if (snap(p))
        return;
    for (size_t i = 0; i < rules_nids; i++) {
        const struct id_rule *r = &rules_ids[i];
        MDB_val k = { strlen(r->meta), (void *)r->meta }, v;
        uint64_t top = max_id(p, r), stored = 0;
        if (!mdb_get(p->rt, p->dbi[DB_META], &k, &v) && v.mv_size == 8)
            stored = be64_get(v.mv_data);
        if (!top || top + 1 <= stored)
            continue; /* nothing of it, or the counter is above it */
        unsigned char b[8];
        be64_put(b, top + 1);
        put(p, DB_META, r->meta, strlen(r->meta), b, 8);
        say(p, WM_NOTE, DB_META, "%s raised from %llu to %llu, above the "
            "largest id copied", r->meta, (unsigned long long)stored,
            (unsigned long long)top + 1);
    }
    /* the audit head: the last record copied, so new records chain on
     * (its stored link, whatever kind: the last 32 bytes of the value) */
    MDB_cursor *cur;
    MDB_val k, v, hk = { 10, "audit_head" }, hv;
    if (!mdb_cursor_open(p->rt, p->dbi[DB_AUDIT], &cur)) {
        if (!mdb_cursor_get(cur, &k, &v, MDB_LAST) && k.mv_size == 8 &&
            v.mv_size > QUEUE_AUDIT_HASH) {
            unsigned char head[8 + QUEUE_AUDIT_HASH];
            memcpy(head, k.mv_data, 8);
            memcpy(head + 8, (const unsigned char *)v.mv_data + v.mv_size -
                   QUEUE_AUDIT_HASH, QUEUE_AUDIT_HASH);
            if (mdb_get(p->rt, p->dbi[DB_META], &hk, &hv) ||
                hv.mv_size != sizeof head ||
                memcmp(hv.mv_data, head, sizeof head)) {
                put(p, DB_META, "audit_head", 10, head, sizeof head);
                say(p, WM_NOTE, DB_META, "audit_head set to the last audit "
                    "record copied (%llu)",
                    (unsigned long long)be64_get(head));
            }
        }
        mdb_cursor_close(cur);
    }
    flush(p);
}

/* ----------------------------------------------- recipients lost */

/* End, through the library, queued recipients whose message is gone. */
static int end_orphans(struct collect *col, const char *dir)
{
    struct queue *q;
    struct queue_options o = { 0 };
    int err = queue_open(&q, dir, &o);
    if (err)
        return err;
    struct queue_outcome *out = calloc(END_BATCH, sizeof *out);
    uint64_t from = 1, total = 0;
    if (!out) {
        queue_close(q);
        return -ENOMEM;
    }
    for (;;) {
        size_t n = 0;
        MDB_txn *txn;
        MDB_cursor *cur = NULL;
        unsigned char key[8];
        MDB_val k = { 8, key }, v;
        if ((err = queue_read_begin(q, &txn)))
            break;
        be64_put(key, from);
        int rc = mdb_cursor_open(txn, q->dbi[DB_DELIVERIES], &cur);
        for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             rc == 0 && n < END_BATCH;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            struct queue_delivery d;
            uint64_t id = be64_get(k.mv_data);
            from = id + 1;
            if (qdelivery_decode(&v, id, &d) || d.state != QUEUE_ST_QUEUED ||
                d.campaign)
                continue;
            unsigned char mk[8];
            MDB_val mkv = { 8, mk }, mv;
            be64_put(mk, d.ref);
            if (mdb_get(txn, q->dbi[DB_MESSAGES], &mkv, &mv) != MDB_NOTFOUND)
                continue;
            out[n++] = (struct queue_outcome){
                .delivery = id, .type = QUEUE_EV_EXPIRED,
                .category = QUEUE_CAT_OTHER, .enhanced = "5.0.0",
                .text = "message lost in spool salvage" };
            struct walk_msg m = { .kind = WM_PROBLEM, .db = DB_DELIVERIES };
            snprintf(m.key, sizeof m.key, "id %llu", (unsigned long long)id);
            snprintf(m.what, sizeof m.what, "queued for %.120s, but its message "
                     "%llu was lost: ended as expired", d.rcpt,
                     (unsigned long long)d.ref);
            if (total + n <= 200)
                qcollect_msg(col, &m);
            else
                col->r->problems++;
        }
        if (cur)
            mdb_cursor_close(cur);
        queue_read_end(q, txn);
        if (n && (err = queue_record_outcomes(q, out, n)))
            break;
        total += n;
        if (n < END_BATCH)
            break;
    }
    col->r->ended_no_message += total;
    free(out);
    queue_close(q);
    return err;
}

/* ------------------------------------------------------------- ready */

static void fix_ready(struct rp *p)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t dropped = 0, added = 0;
    if (snap(p) || mdb_cursor_open(p->rt, p->dbi[DB_READY], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        struct queue_delivery d;
        MDB_val dk = { 8, (void *)(kp + 8) }, dv;
        if (k.mv_size == 16 && !mdb_get(p->rt, p->dbi[DB_DELIVERIES], &dk,
                                        &dv) &&
            !qdelivery_decode(&dv, be64_get(kp + 8), &d) &&
            d.state == QUEUE_ST_QUEUED &&
            (uint64_t)d.next_attempt == be64_get(kp))
            continue;
        del(p, DB_READY, kp, k.mv_size);
        dropped++;
    }
    mdb_cursor_close(cur);
    if (mdb_cursor_open(p->rt, p->dbi[DB_DELIVERIES], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_delivery d;
        unsigned char rk[16];
        if (k.mv_size != 8 || qdelivery_decode(&v, be64_get(k.mv_data), &d) ||
            d.state != QUEUE_ST_QUEUED)
            continue;
        be64_put(rk, (uint64_t)d.next_attempt);
        be64_put(rk + 8, d.id);
        if (exists(p, DB_READY, rk, 16))
            continue;
        put(p, DB_READY, rk, 16, NULL, 0);
        added++;
    }
    mdb_cursor_close(cur);
    flush(p);
    if (dropped)
        say(p, WM_NOTE, DB_READY, "%llu entries of no queued delivery "
            "dropped", (unsigned long long)dropped);
    if (added)
        say(p, WM_NOTE, DB_READY, "%llu queued deliveries put back in the "
            "index", (unsigned long long)added);
}

/* ------------------------------------------------------------ events */

/* Deliveries whose newest event was lost, each with the newest event of
 * theirs that is left: open addressing, bounded (LINK_MAX). */
#define LINK_MAX (1u << 20)
struct links {
    uint64_t *id, *seq;
    size_t cap, n;
    bool full;
};

/* The slot of delivery id (added if add); NULL if absent or full. */
static uint64_t *link_slot(struct links *l, uint64_t id, bool add)
{
    if (!l->cap) {
        if (!add || !(l->id = calloc(1024, sizeof *l->id)) ||
            !(l->seq = calloc(1024, sizeof *l->seq)))
            return NULL;
        l->cap = 1024;
    }
    size_t j = (size_t)(id * 0x9e3779b97f4a7c15ull) & (l->cap - 1);
    for (; l->id[j]; j = (j + 1) & (l->cap - 1))
        if (l->id[j] == id)
            return &l->seq[j];
    if (!add)
        return NULL;
    if (l->n >= LINK_MAX) {
        l->full = true;
        return NULL;
    }
    if ((l->n + 1) * 2 > l->cap) {
        struct links g = { 0 };
        if (!(g.id = calloc(l->cap * 2, sizeof *g.id)) ||
            !(g.seq = calloc(l->cap * 2, sizeof *g.seq))) {
            free(g.id);
            l->full = true;
            return NULL;
        }
        g.cap = l->cap * 2;
        for (size_t i = 0; i < l->cap; i++)
            if (l->id[i])
                *link_slot(&g, l->id[i], true) = l->seq[i];
        free(l->id);
        free(l->seq);
        g.full = l->full;
        *l = g;
        return link_slot(l, id, true);
    }
    l->id[j] = id;
    l->n++;
    return &l->seq[j];
}

/* Events of deliveries that were lost are dropped; a delivery whose newest
 * event was lost gets the newest one of its that is left (or none). */
static void fix_events(struct rp *p)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t dropped = 0, relinked = 0;
    struct links l = { 0 };
    if (snap(p) || mdb_cursor_open(p->rt, p->dbi[DB_EVENTS], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_event e;
        unsigned char dk[8];
        if (k.mv_size != 8 || qevent_decode(&v, be64_get(k.mv_data), &e))
            continue;
        be64_put(dk, e.delivery);
        if (exists(p, DB_DELIVERIES, dk, 8) ||
            (!e.delivery && (e.type == QUEUE_EV_UNSUBSCRIBED ||
                             e.type == QUEUE_EV_INCIDENT)))
            continue;  /* (an unsubscribe or incident may name none) */
        del(p, DB_EVENTS, k.mv_data, 8);
        dropped++;
    }
    mdb_cursor_close(cur);
    if (snap(p) || mdb_cursor_open(p->rt, p->dbi[DB_DELIVERIES], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_delivery d;
        unsigned char ek[8];
        MDB_val ekv = { 8, ek }, ev;
        struct queue_event e;
        if (k.mv_size != 8 || qdelivery_decode(&v, be64_get(k.mv_data), &d) ||
            !d.last_event)
            continue;
        be64_put(ek, d.last_event);
        if (!mdb_get(p->rt, p->dbi[DB_EVENTS], &ekv, &ev) &&
            !qevent_decode(&ev, d.last_event, &e) && e.delivery == d.id)
            continue;
        link_slot(&l, d.id, true);
    }
    mdb_cursor_close(cur);
    if (l.n && !mdb_cursor_open(p->rt, p->dbi[DB_EVENTS], &cur)) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            struct queue_event e;
            uint64_t *slot;
            /* informational events are not in a delivery's history */
            if (k.mv_size == 8 && !qevent_decode(&v, be64_get(k.mv_data), &e) &&
                !QUEUE_EV_INFO(e.type) &&
                (slot = link_slot(&l, e.delivery, false)))
                *slot = e.seq; /* in order: the last one is the newest */
        }
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; i < l.cap; i++) {
        struct queue_delivery d;
        unsigned char dk[8], rec[DELIVERY_REC_MAX];
        MDB_val dkv = { 8, dk }, dv;
        if (!l.id[i])
            continue;
        be64_put(dk, l.id[i]);
        if (mdb_get(p->rt, p->dbi[DB_DELIVERIES], &dkv, &dv) ||
            qdelivery_decode(&dv, l.id[i], &d))
            continue;
        d.last_event = l.seq[i];
        put(p, DB_DELIVERIES, dk, 8, rec, qdelivery_encode(rec, &d));
        relinked++;
    }
    flush(p);
    if (dropped)
        say(p, WM_NOTE, DB_EVENTS, "%llu events of deliveries that were lost "
            "dropped", (unsigned long long)dropped);
    if (relinked)
        say(p, WM_NOTE, DB_DELIVERIES, "%llu deliveries whose newest event "
            "was lost now end their history at the newest one left",
            (unsigned long long)relinked);
    if (l.full)
        say(p, WM_NOTE, DB_DELIVERIES, "more deliveries lost their newest "
            "event than salvage holds in memory: the rest keep the link");
    free(l.id);
    free(l.seq);
}

/* ---------------------------------------------- counts from the rows */

/* Tally the deliveries and deferral events of the snapshot. */
static struct tally *count_rows(struct rp *p)
{
    struct tally *t = tally_new();
    MDB_cursor *cur;
    MDB_val k, v;
    if (!t || snap(p))
        return t;
    if (!mdb_cursor_open(p->rt, p->dbi[DB_DELIVERIES], &cur)) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            struct queue_delivery d;
            if (k.mv_size == 8 && !qdelivery_decode(&v, be64_get(k.mv_data),
                                                    &d))
                tally_delivery(t, &d);
        }
        mdb_cursor_close(cur);
    }
    if (!mdb_cursor_open(p->rt, p->dbi[DB_EVENTS], &cur)) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            struct queue_event e;
            if (k.mv_size == 8 && !qevent_decode(&v, be64_get(k.mv_data), &e) &&
                e.type == QUEUE_EV_DEFERRED)
                tally_deferral(t, &e);
        }
        mdb_cursor_close(cur);
    }
    return t;
}

struct rest_ctx {
    struct rp *p;
    char kind;               /* 'm' message references, else counters */
    uint64_t n;
};

/* A tallied key without a stored record: write it. */
static void put_rest(void *arg, const unsigned char *key, size_t klen,
                     const uint64_t c[CF_COUNT])
{
    struct rest_ctx *x = arg;
    if ((x->kind == 'm') != (key[0] == 'm'))
        return;
    if (key[0] == 'm') {
        unsigned char refs[4];
        if (klen != 9 || !c[0] || !exists(x->p, DB_MESSAGES, key + 1, 8))
            return;
        be32_put(refs, (uint32_t)c[0]);
        put(x->p, DB_MSGREFS, key + 1, 8, refs, 4);
    } else {
        put(x->p, DB_COUNTERS, key, klen, c, CF_COUNT * sizeof *c);
    }
    x->n++;
}

static void fix_msgrefs(struct rp *p, struct tally *t)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t fixed = 0, dropped = 0;
    uint64_t c[CF_COUNT];
    unsigned char key[9] = { 'm' };
    if (mdb_cursor_open(p->rt, p->dbi[DB_MSGREFS], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *vp = v.mv_data;
        if (k.mv_size != 8 || v.mv_size != 4)
            continue;
        memcpy(key + 1, k.mv_data, 8);
        tally_take(t, key, 9, c);
        uint32_t refs = (uint32_t)vp[0] << 24 | (uint32_t)vp[1] << 16 |
                        (uint32_t)vp[2] << 8 | vp[3];
        if (c[0] == refs)
            continue;
        if (c[0]) {
            unsigned char nv[4];
            be32_put(nv, (uint32_t)c[0]);
            put(p, DB_MSGREFS, k.mv_data, 8, nv, 4);
        } else {
            del(p, DB_MSGREFS, k.mv_data, 8);
        }
        fixed++;
    }
    mdb_cursor_close(cur);
    struct rest_ctx x = { .p = p, .kind = 'm' };
    tally_rest(t, put_rest, &x);
    fixed += x.n;
    if (!mdb_cursor_open(p->rt, p->dbi[DB_MESSAGES], &cur)) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8)
                continue;
            memcpy(key + 1, k.mv_data, 8);
            tally_take(t, key, 9, c);
            if (c[0])
                continue;
            del(p, DB_MESSAGES, k.mv_data, 8);
            del(p, DB_MSGREFS, k.mv_data, 8);
            dropped++;
        }
        mdb_cursor_close(cur);
    }
    flush(p);
    if (fixed)
        say(p, WM_NOTE, DB_MSGREFS, "%llu reference counts set to the "
            "queued recipients", (unsigned long long)fixed);
    if (dropped)
        say(p, WM_NOTE, DB_MESSAGES, "%llu stored messages no queued "
            "recipient needs dropped", (unsigned long long)dropped);
}

static void fix_counters(struct rp *p, struct tally *t)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t fixed = 0;
    uint64_t c[CF_COUNT], was[CF_COUNT];
    if (mdb_cursor_open(p->rt, p->dbi[DB_COUNTERS], &cur))
        return;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (!k.mv_size || kp[0] == 'b')
            continue; /* blocks are not derived from rows */
        tally_take(t, kp, k.mv_size, c);
        /* a record of an older schema (fewer counts) that agrees stays */
        if (!qcounts_load(&v, was) && !memcmp(was, c, sizeof c))
            continue;
        bool zero = true;
        for (int f = 0; f < CF_COUNT; f++)
            zero &= c[f] == 0;
        if (zero)
            del(p, DB_COUNTERS, kp, k.mv_size);
        else
            put(p, DB_COUNTERS, kp, k.mv_size, c, sizeof c);
        fixed++;
    }
    mdb_cursor_close(cur);
    struct rest_ctx x = { .p = p, .kind = 'c' };
    tally_rest(t, put_rest, &x);
    fixed += x.n;
    flush(p);
    if (fixed)
        say(p, WM_NOTE, DB_COUNTERS, "%llu counter records counted again "
            "from the rows", (unsigned long long)fixed);
}

int repair_spool(const char *dir, struct collect *col)
{
    struct rp p = { .col = col };
    int rc = rp_open(&p, dir);
    if (!rc) {
        fix_meta(&p);
        /* before new events are written: a delivery must not link to a
         * lost event whose seq the new ones would reuse or pass */
        fix_events(&p);
        rc = p.err;
    }
    rp_close(&p);
    if (rc)
        return queue_err_mdb(rc);
    int err = end_orphans(col, dir);
    if (err)
        return err;
    memset(&p, 0, sizeof p);
    p.col = col;
    if ((rc = rp_open(&p, dir))) {
        rp_close(&p);
        return queue_err_mdb(rc);
    }
    fix_ready(&p);
    struct tally *t = count_rows(&p);
    if (!t || tally_full(t))
        say(&p, WM_NOTE, DB_COUNTERS, "more distinct counters and messages "
            "than salvage holds in memory: counters and reference counts "
            "kept as copied");
    else {
        /* message keys ('m') and counter keys are apart in the tally */
        fix_msgrefs(&p, t);
        fix_counters(&p, t);
    }
    tally_free(t);
    rc = p.err;
    rp_close(&p);
    return rc ? queue_err_mdb(rc) : 0;
}
