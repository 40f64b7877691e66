/*
 * admin_limits.c - live limits kept in the spool (`sluice limits set |
 * unset`), read by sluiced each time the admin generation moves.
 *
 * DESCRIPTION
 *   One meta entry per target and key: "limit.KIND.KEY.NAME" (KIND one of
 *   s d a c; KEY a-z and '_'; NAME lower case, no blanks), its value
 *   u8 fmt, u64 since_ms, u64 expires_ms, str8 who, str8 value.  The spool
 *   keeps the value as text and checks only its form; what it means is
 *   config.h's (the tool checks it before it comes here, sluiced when it
 *   applies it).  A change sets or removes the keys of one target in one
 *   transaction with its audit record, and removes every entry whose end
 *   has passed, so the meta database holds no dead limits for long.
 *
 * DIAGNOSTICS
 *   -EINVAL for a bad kind, name, key or value (queue_last_detail() says
 *   which); QUEUE_ENOTFOUND for an unset that removes nothing;
 *   QUEUE_ECORRUPT for an entry that does not decode.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define PREFIX "limit."
#define KEY_MAX (sizeof PREFIX + 2 + QUEUE_MAX_LIMIT_KEY + 1 + \
                 QUEUE_MAX_LIMIT_NAME)
#define VAL_MAX (1 + 8 + 8 + 1 + QUEUE_MAX_AUDIT_USER + 1 + \
                 QUEUE_MAX_LIMIT_VALUE)

static bool kind_ok(char k)
{
    return k == 's' || k == 'd' || k == 'a' || k == 'c';
}

/* A key: 1..QUEUE_MAX_LIMIT_KEY of a-z and '_'. */
static bool key_ok(const char *s)
{
    size_t n = s ? strnlen(s, QUEUE_MAX_LIMIT_KEY + 1) : 0;
    if (!n || n > QUEUE_MAX_LIMIT_KEY)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

/* A name or value: 1..cap printable bytes, no blank, no upper case when
 * lower is set. */
static bool word_ok(const char *s, size_t cap, bool lower)
{
    size_t n = s ? strnlen(s, cap + 1) : 0;
    if (!n || n > cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || (lower && c >= 'A' && c <= 'Z'))
            return false;
    }
    return true;
}

/* The meta key of kind/key/name into buf; its length (0: too long). */
static size_t limit_key(char buf[KEY_MAX], char kind, const char *key,
                        const char *name)
{
    int n = snprintf(buf, KEY_MAX, PREFIX "%c.%s.%s", kind, key, name);
    return n > 0 && (size_t)n < KEY_MAX ? (size_t)n : 0;
}

int queue_limit_decode(const void *key, size_t klen, const void *val,
                       size_t vlen, struct queue_limit *l)
{
    const char *k = key;
    size_t plen = sizeof PREFIX - 1;
    if (klen <= plen + 2 || klen >= KEY_MAX || memcmp(k, PREFIX, plen) ||
        !kind_ok(k[plen]) || k[plen + 1] != '.')
        return QUEUE_ECORRUPT;
    const char *ks = k + plen + 2, *end = k + klen;
    const char *dot = memchr(ks, '.', (size_t)(end - ks));
    if (!dot || dot == ks || (size_t)(dot - ks) > QUEUE_MAX_LIMIT_KEY ||
        dot + 1 >= end || (size_t)(end - dot - 1) > QUEUE_MAX_LIMIT_NAME)
        return QUEUE_ECORRUPT;
    memset(l, 0, sizeof *l);
    l->kind = k[plen];
    memcpy(l->key, ks, (size_t)(dot - ks));
    memcpy(l->name, dot + 1, (size_t)(end - dot - 1));
    if (!key_ok(l->key) || !word_ok(l->name, QUEUE_MAX_LIMIT_NAME, true))
        return QUEUE_ECORRUPT;
    struct rec_r r = { val, vlen, 0, false };
    if (qrec_r_u8(&r) != ADMIN_FMT)
        return QUEUE_ECORRUPT;
    l->since_ms = (int64_t)qrec_r_u64(&r);
    l->expires_ms = (int64_t)qrec_r_u64(&r);
    qrec_r_str(&r, l->who, 1, QUEUE_MAX_AUDIT_USER);
    qrec_r_str(&r, l->value, 1, QUEUE_MAX_LIMIT_VALUE);
    if (!qrec_r_done(&r) || !word_ok(l->value, QUEUE_MAX_LIMIT_VALUE, false))
        return QUEUE_ECORRUPT;
    return 0;
}

/* Remove the entries that have ended by now_ms and, with c, every key of
 * c's target (how many of those that had not ended, in *n). */
static int drop_entries(struct admin_tx *t, const struct queue_limit_change *c,
                        size_t *n)
{
    MDB_cursor *cur;
    MDB_val k = { sizeof PREFIX - 1, (void *)PREFIX }, v;
    struct queue_limit l;
    int rc = mdb_cursor_open(t->txn, t->q->dbi[DB_META], &cur);
    if (rc)
        return admin_mdb(t, rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < sizeof PREFIX - 1 ||
            memcmp(k.mv_data, PREFIX, sizeof PREFIX - 1))
            break;
        if (queue_limit_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size,
                               &l))
            continue;
        bool ended = l.expires_ms && l.expires_ms <= t->now_ms;
        bool target = c && l.kind == c->kind && !strcmp(l.name, c->name);
        if (!ended && !target)
            continue;
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        *n += target && !ended;
    }
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? admin_mdb(t, rc) : 0;
}

/* Writer: the change of one target, then its audit record. */
static int do_limits(struct admin_tx *t, void *arg)
{
    const struct queue_limit_change *c = arg;
    char key[KEY_MAX];
    unsigned char val[VAL_MAX];
    size_t removed = 0;
    int rc, err;
    if ((err = drop_entries(t, c->unset && c->n == 0 ? c : NULL, &removed)))
        return err;
    for (size_t i = 0; i < c->n; i++) {
        MDB_val k = { limit_key(key, c->kind, c->keys[i], c->name), key };
        if (c->unset) {
            rc = mdb_del(t->txn, t->q->dbi[DB_META], &k, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return admin_mdb(t, rc);
            removed += rc == 0;
            continue;
        }
        struct rec_w w = { val, 0, sizeof val, false };
        qrec_w_u8(&w, ADMIN_FMT);
        qrec_w_u64(&w, (uint64_t)t->now_ms);
        qrec_w_u64(&w, (uint64_t)c->expires_ms);
        qrec_w_str(&w, c->by && c->by->user ? c->by->user : "", 1,
                   QUEUE_MAX_AUDIT_USER);
        qrec_w_str(&w, c->values[i], 1, QUEUE_MAX_LIMIT_VALUE);
        if (w.over)
            return admin_fail(t, -EINVAL, "limit record too long");
        MDB_val v = { w.len, val };
        if ((rc = mdb_put(t->txn, t->q->dbi[DB_META], &k, &v, 0)))
            return admin_mdb(t, rc);
    }
    if (c->unset && !removed)
        return admin_fail(t, QUEUE_ENOTFOUND, "no live limit to unset");
    return admin_audit_put(t, c->by, c->account,
                           c->unset ? "limits unset" : "limits set",
                           c->object ? c->object : "", "ok");
}

int queue_limits_change(struct queue *q, const struct queue_limit_change *c)
{
    if (!kind_ok(c->kind)) {
        queue_set_detail("limit kind must be site, domain, account or "
                         "campaign");
        return -EINVAL;
    }
    if (!word_ok(c->name, QUEUE_MAX_LIMIT_NAME, true)) {
        queue_set_detail("invalid name: 1..%d bytes, lower case, no spaces "
                         "or control characters", QUEUE_MAX_LIMIT_NAME);
        return -EINVAL;
    }
    if (c->n > QUEUE_MAX_LIMIT_KEYS || (!c->unset && !c->n)) {
        queue_set_detail("1..%d keys in one change", QUEUE_MAX_LIMIT_KEYS);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (!key_ok(c->keys[i])) {
            queue_set_detail("invalid key: 1..%d bytes of a-z and '_'",
                             QUEUE_MAX_LIMIT_KEY);
            return -EINVAL;
        }
        if (!c->unset && !word_ok(c->values[i], QUEUE_MAX_LIMIT_VALUE,
                                  false)) {
            queue_set_detail("invalid value for %s: 1..%d bytes, no spaces "
                             "or control characters", c->keys[i],
                             QUEUE_MAX_LIMIT_VALUE);
            return -EINVAL;
        }
    }
    return admin_run(q, do_limits, (void *)c);
}

struct limits_walk {
    int64_t now_ms;
    int (*cb)(void *arg, const struct queue_limit *l);
    void *arg;
    struct queue_limit l;
    long n;
};

/* qmeta_prefix_walk(): one live limit record. */
static int limit_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct limits_walk *w = arg;
    int err = queue_limit_decode(k->mv_data, k->mv_size, v->mv_data,
                                 v->mv_size, &w->l);
    if (err)
        return err;
    if (w->now_ms && w->l.expires_ms && w->l.expires_ms <= w->now_ms)
        return 0;
    w->n++;
    return w->cb(w->arg, &w->l) ? 1 : 0;
}

long queue_limits(struct queue *q, int64_t now_ms,
                  int (*cb)(void *arg, const struct queue_limit *l),
                  void *arg)
{
    struct limits_walk *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (struct limits_walk){ .now_ms = now_ms, .cb = cb, .arg = arg };
    int err = qmeta_prefix_walk(q, PREFIX, sizeof PREFIX - 1, limit_one, w);
    long n = w->n;
    free(w);
    return err ? err : n;
}
