/*
 * admin_keys.c - API keys: who they belong to, which account they act on,
 * their scope, and the SHA-256 of their secret.
 *
 * DESCRIPTION
 *   Owns the "apikeys" database (u32 id -> record) and meta "next_apikey".
 *   The secret itself is never stored or audited: the tool shows it once
 *   and keeps only its hash here.  A revoked key keeps its record (for the
 *   audit and `apikey list`) with revoked set.
 *
 * DIAGNOSTICS
 *   -EINVAL for a bad scope or name, QUEUE_ENOTFOUND for an unknown key,
 *   user or account, QUEUE_ESTATE for revoking a revoked key,
 *   QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define F_REVOKED 1
#define KEY_REC_MAX (1 + 1 + 1 + 4 + 4 + 8 + 8 + QUEUE_APIKEY_HASH + 1 +     \
                     QUEUE_MAX_KEY_NAME)

static const char *const scope_names[] = { "", "read", "send", "manage",
                                           "admin" };

static MDB_val key_key(unsigned char key[4], uint32_t id)
{
    be32_put(key, id);
    return (MDB_val){ 4, key };
}

static size_t apikey_encode(unsigned char *buf, size_t cap,
                            const struct queue_apikey *k)
{
    struct rec_w w = { .p = buf, .cap = cap };
    qrec_w_u8(&w, ADMIN_FMT);
    qrec_w_u8(&w, k->revoked ? F_REVOKED : 0);
    qrec_w_u8(&w, (unsigned)k->scope);
    qrec_w_u32(&w, k->user);
    qrec_w_u32(&w, k->account);
    qrec_w_u64(&w, (uint64_t)k->created);
    qrec_w_u64(&w, (uint64_t)k->revoked_at);
    qrec_w_bytes(&w, k->hash, QUEUE_APIKEY_HASH);
    qrec_w_str(&w, k->name, 1, QUEUE_MAX_KEY_NAME);
    return w.over ? 0 : w.len;
}

int qapikey_decode(const MDB_val *v, uint32_t id, struct queue_apikey *k)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    memset(k, 0, sizeof *k);
    k->id = id;
    if (qrec_r_u8(&r) != ADMIN_FMT)
        return QUEUE_ECORRUPT;
    k->revoked = qrec_r_u8(&r) & F_REVOKED;
    k->scope = (int)qrec_r_u8(&r);
    k->user = qrec_r_u32(&r);
    k->account = qrec_r_u32(&r);
    k->created = (int64_t)qrec_r_u64(&r);
    k->revoked_at = (int64_t)qrec_r_u64(&r);
    qrec_r_bytes(&r, k->hash, QUEUE_APIKEY_HASH);
    qrec_r_str(&r, k->name, 1, QUEUE_MAX_KEY_NAME);
    if (!qrec_r_done(&r) || k->scope < QUEUE_ROLE_VIEWER ||
        k->scope > QUEUE_ROLE_ADMIN)
        return QUEUE_ECORRUPT;
    return 0;
}

struct create_arg {
    struct queue_apikey k;
    const struct queue_actor *by;
    struct queue_user u;
    struct queue_account a;
};

static int do_create(struct admin_tx *t, void *arg)
{
    struct create_arg *c = arg;
    int err;
    if (c->k.scope < QUEUE_ROLE_VIEWER || c->k.scope > QUEUE_ROLE_ADMIN)
        return admin_fail(t, -EINVAL, "a key's scope is read, send, manage "
                          "or admin");
    if (!admin_text_ok(c->k.name, QUEUE_MAX_KEY_NAME) ||
        strchr(c->k.name, '\n') || strchr(c->k.name, '\t') ||
        strchr(c->k.name, '\r'))
        return admin_fail(t, -EINVAL, "key name: at most %d bytes of "
                          "printable UTF-8", QUEUE_MAX_KEY_NAME);
    if ((err = quser_load(t->q, t->txn, c->k.user, &c->u)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no user with id %u", c->k.user) : err;
    if ((err = qaccount_load(t->q, t->txn, c->k.account, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->k.account) : err;
    if ((err = admin_next_id(t, "next_apikey", &c->k.id)))
        return err;
    c->k.created = t->now_ms / 1000;
    unsigned char key[4], buf[KEY_REC_MAX];
    size_t len = apikey_encode(buf, sizeof buf, &c->k);
    MDB_val k = key_key(key, c->k.id), v = { len, buf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_APIKEYS], &k, &v, MDB_NOOVERWRITE);
    if (rc)
        return admin_mdb(t, rc);
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    snprintf(obj, sizeof obj, "apikey %u of %s on %s scope %s%s%s", c->k.id,
             c->u.name, c->a.name, scope_names[c->k.scope],
             *c->k.name ? " name " : "", c->k.name);
    return admin_audit_put(t, c->by, c->k.account, "apikey create", obj,
                           "ok");
}

int queue_apikey_create(struct queue *q, uint32_t user, uint32_t account,
                        int scope, const char *name,
                        const unsigned char hash[QUEUE_APIKEY_HASH],
                        const struct queue_actor *by, uint32_t *id)
{
    struct create_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->k.user = user;
    c->k.account = account;
    c->k.scope = scope;
    c->by = by;
    memcpy(c->k.hash, hash, QUEUE_APIKEY_HASH);
    if (name && strlen(name) > QUEUE_MAX_KEY_NAME) {
        free(c);
        queue_set_detail("key name longer than %d bytes", QUEUE_MAX_KEY_NAME);
        return -EINVAL;
    }
    snprintf(c->k.name, sizeof c->k.name, "%s", name ? name : "");
    int err = admin_run(q, do_create, c);
    if (id)
        *id = err ? 0 : c->k.id;
    free(c);
    return err;
}

struct revoke_arg {
    uint32_t id;
    const struct queue_actor *by;
};

static int do_revoke(struct admin_tx *t, void *arg)
{
    struct revoke_arg *c = arg;
    struct queue_apikey k;
    unsigned char key[4], buf[KEY_REC_MAX];
    MDB_val kv = key_key(key, c->id), v;
    int rc = mdb_get(t->txn, t->q->dbi[DB_APIKEYS], &kv, &v), err;
    if (rc == MDB_NOTFOUND)
        return admin_fail(t, QUEUE_ENOTFOUND, "no API key %u", c->id);
    if (rc)
        return admin_mdb(t, rc);
    if ((err = qapikey_decode(&v, c->id, &k)))
        return err;
    if (k.revoked)
        return admin_fail(t, QUEUE_ESTATE, "API key %u is already revoked",
                          c->id);
    k.revoked = true;
    k.revoked_at = t->now_ms / 1000;
    size_t len = apikey_encode(buf, sizeof buf, &k);
    v = (MDB_val){ len, buf };
    if ((rc = mdb_put(t->txn, t->q->dbi[DB_APIKEYS], &kv, &v, 0)))
        return admin_mdb(t, rc);
    char obj[64];
    snprintf(obj, sizeof obj, "apikey %u", c->id);
    return admin_audit_put(t, c->by, k.account, "apikey revoke", obj, "ok");
}

int queue_apikey_revoke(struct queue *q, uint32_t id,
                        const struct queue_actor *by)
{
    struct revoke_arg c = { id, by };
    return admin_run(q, do_revoke, &c);
}

int queue_apikey_get(struct queue *q, uint32_t id, struct queue_apikey *k)
{
    MDB_txn *txn;
    unsigned char key[4];
    memset(k, 0, sizeof *k);
    if (admin_absent(q))
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    MDB_val kv = key_key(key, id), v;
    int rc = mdb_get(txn, q->dbi[DB_APIKEYS], &kv, &v);
    err = rc ? queue_err_mdb(rc) : qapikey_decode(&v, id, k);
    queue_read_end(q, txn);
    return err;
}

long queue_apikeys(struct queue *q,
                   int (*cb)(void *arg, const struct queue_apikey *k),
                   void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    struct queue_apikey key;
    long n = 0;
    int err = 0, rc;

    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_APIKEYS], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4) {
            err = QUEUE_ECORRUPT;
            break;
        }
        if ((err = qapikey_decode(&v, be32_get(k.mv_data), &key)))
            break;
        n++;
        if (cb(arg, &key))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
