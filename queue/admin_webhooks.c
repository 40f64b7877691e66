/*
 * admin_webhooks.c - webhooks kept in the spool per account (`sluice
 * webhook add|remove`), read by sluiced at start.
 *
 * DESCRIPTION
 *   Each is a meta entry "webhook.ACCOUNT.NAME" (ACCOUNT in decimal)
 *   whose value is its settings as text (the tool's JSON: url, events,
 *   secret, batch ...); the spool does not read that text, only keeps it
 *   whole.  Adding and removing are admin changes with an audit record
 *   (the secret never goes into it: the object is "webhook NAME").
 *
 * DIAGNOSTICS
 *   -EINVAL for a name that is not 1..QUEUE_MAX_WEBHOOK_NAME bytes of
 *   a-z, 0-9, '.', '_', '-' or settings over QUEUE_MAX_WEBHOOK_SPEC bytes;
 *   -EEXIST for a name the account already has; QUEUE_ENOTFOUND for one it
 *   does not have, or an unknown account.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define PREFIX "webhook."
#define KEY_MAX (sizeof PREFIX + 11 + QUEUE_MAX_WEBHOOK_NAME + 1)

/* The meta key of account's webhook name into key; its length. */
static size_t hook_key(char key[KEY_MAX], uint32_t account, const char *name)
{
    int n = snprintf(key, KEY_MAX, PREFIX "%u.%s", account, name);
    return n > 0 && (size_t)n < KEY_MAX ? (size_t)n : 0;
}

struct hook_arg {
    uint32_t account;
    const char *name, *spec;
    bool remove;
    const struct queue_actor *by;
};

/* Writer: add or remove one webhook, with its audit record. */
static int do_hook(struct admin_tx *t, void *arg)
{
    struct hook_arg *c = arg;
    struct queue_account a;
    char key[KEY_MAX], obj[64];
    MDB_val k = { hook_key(key, c->account, c->name), key }, v;
    int err = qaccount_load(t->q, t->txn, c->account, &a);
    if (err == QUEUE_ENOTFOUND)
        return admin_fail(t, err, "no account %u", c->account);
    if (err)
        return err;
    int rc = mdb_get(t->txn, t->q->dbi[DB_META], &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    if (c->remove) {
        if (rc)
            return admin_fail(t, QUEUE_ENOTFOUND, "account %s has no webhook "
                              "%s", a.name, c->name);
        if ((rc = mdb_del(t->txn, t->q->dbi[DB_META], &k, NULL)))
            return admin_mdb(t, rc);
    } else {
        if (!rc)
            return admin_fail(t, -EEXIST, "account %s already has a webhook "
                              "%s", a.name, c->name);
        v = (MDB_val){ strlen(c->spec), (void *)c->spec };
        if ((rc = mdb_put(t->txn, t->q->dbi[DB_META], &k, &v, 0)))
            return admin_mdb(t, rc);
    }
    snprintf(obj, sizeof obj, "webhook %s", c->name);
    return admin_audit_put(t, c->by, c->account,
                           c->remove ? "webhook remove" : "webhook add", obj,
                           "ok");
}

/* Check the name and the settings' size. */
static int hook_check(const char *name, const char *spec)
{
    if (!admin_name_ok(name, QUEUE_MAX_WEBHOOK_NAME, false)) {
        queue_set_detail("webhook name must be 1..%d bytes of a-z, 0-9, "
                         "'.', '_', '-'", QUEUE_MAX_WEBHOOK_NAME);
        return -EINVAL;
    }
    if (spec && (!*spec || strlen(spec) > QUEUE_MAX_WEBHOOK_SPEC)) {
        queue_set_detail("webhook settings must be 1..%d bytes",
                         QUEUE_MAX_WEBHOOK_SPEC);
        return -EINVAL;
    }
    return 0;
}

int queue_webhook_add(struct queue *q, uint32_t account, const char *name,
                      const char *spec, const struct queue_actor *by)
{
    struct hook_arg c = { account, name, spec, false, by };
    int err = hook_check(name, spec);
    return err ? err : admin_run(q, do_hook, &c);
}

int queue_webhook_remove(struct queue *q, uint32_t account, const char *name,
                         const struct queue_actor *by)
{
    struct hook_arg c = { account, name, NULL, true, by };
    int err = hook_check(name, NULL);
    return err ? err : admin_run(q, do_hook, &c);
}

struct hooks_walk {
    uint32_t account;
    int (*cb)(void *arg, uint32_t account, const char *name,
              const char *spec);
    void *arg;
    char key[KEY_MAX], spec[QUEUE_MAX_WEBHOOK_SPEC + 1];
    long n;
};

/* qmeta_prefix_walk(): one webhook record ("PREFIX" ACCOUNT "." NAME). */
static int hook_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct hooks_walk *w = arg;
    if (k->mv_size < sizeof PREFIX || k->mv_size >= KEY_MAX ||
        v->mv_size > QUEUE_MAX_WEBHOOK_SPEC)
        return 0; /* not one of ours */
    memcpy(w->key, k->mv_data, k->mv_size);
    w->key[k->mv_size] = 0;
    char *end;
    unsigned long id = strtoul(w->key + sizeof PREFIX - 1, &end, 10);
    if (*end != '.' || id > UINT32_MAX || (w->account && id != w->account))
        return 0;
    memcpy(w->spec, v->mv_data, v->mv_size);
    w->spec[v->mv_size] = 0;
    w->n++;
    return w->cb(w->arg, (uint32_t)id, end + 1, w->spec) ? 1 : 0;
}

long queue_webhooks(struct queue *q, uint32_t account,
                    int (*cb)(void *arg, uint32_t account, const char *name,
                              const char *spec),
                    void *arg)
{
    struct hooks_walk *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    w->account = account;
    w->cb = cb;
    w->arg = arg;
    w->n = 0;
    int err = qmeta_prefix_walk(q, PREFIX, sizeof PREFIX - 1, hook_one, w);
    long n = w->n;
    free(w);
    return err ? err : n;
}
