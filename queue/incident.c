/*
 * incident.c - incident records in the spool (`sluice incident`, and the
 * engine's rules that open and resolve them).
 *
 * DESCRIPTION
 *   An incident is a meta entry "incident.NNNNNNNNNN" (its id, ten decimal
 *   digits, so key order is id order) whose value is the owning account
 *   (u32 big-endian) and the incident's text: JSON written by the engine
 *   and edited by the tool, which the spool keeps whole.  Ids come from
 *   the meta counter "next_incident".  A change (queue_incident_change)
 *   is one admin change: the caller's edit function turns the stored text
 *   into the new one inside the writer's transaction, the audit record
 *   and, when asked, an event of type QUEUE_EV_INCIDENT (account,
 *   campaign, the given text) commit with it, so a consumer of the event
 *   stream (webhooks, the event log) sees every opening and resolution.
 *   A probe of an incident's pause (queue_incident_probe_release) moves
 *   one parked delivery back to now, audited as "incident probe".
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND for an unknown id; -EINVAL when the edit refused (its
 *   reason is the detail); -E2BIG for a text over QUEUE_MAX_INCIDENT;
 *   QUEUE_ECORRUPT for a record shorter than its account.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define PREFIX "incident."
#define KEY_LEN (sizeof PREFIX - 1 + 10)

/* The key of incident id into key (KEY_LEN + 1 bytes). */
static void incident_key(char key[KEY_LEN + 1], uint64_t id)
{
    snprintf(key, KEY_LEN + 1, PREFIX "%010llu",
             (unsigned long long)(id % 10000000000ull));
}

int admin_event_append(struct admin_tx *t, struct queue_event *ev)
{
    unsigned char ebuf[EVENT_FIXED + QUEUE_MAX_ENHANCED + QUEUE_MAX_MX +
                       QUEUE_MAX_RCPT + QUEUE_MAX_REPLY];
    unsigned char ekey[8];
    if (!t->w)
        return -EINVAL;
    ev->seq = t->w->next_event + t->nevents;
    ev->time_ms = t->now_ms;
    be64_put(ekey, ev->seq);
    MDB_val k = { 8, ekey }, v = { qevent_encode(ebuf, sizeof ebuf, ev),
                                   ebuf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_EVENTS], &k, &v, 0);
    if (rc)
        return admin_mdb(t, rc);
    t->nevents++;
    return 0;
}

/* Writer: one change of an incident, with its audit record and event. */
static int do_change(struct admin_tx *t, void *arg)
{
    struct queue_incident_change *c = arg;
    char key[KEY_LEN + 1], why[200], obj[40];
    uint32_t account = c->account;
    char *old = NULL;
    uint64_t id = c->id;
    int rc;
    if (!id) {
        uint64_t next;
        int err = qmeta_get_u64(t->q, t->txn, "next_incident", &next);
        if (err)
            return err;
        id = next ? next : 1;
        if ((rc = qmeta_put_u64(t->q, t->txn, "next_incident", id + 1)))
            return admin_mdb(t, rc);
    }
    incident_key(key, id);
    MDB_val k = { KEY_LEN, key }, v;
    rc = mdb_get(t->txn, t->q->dbi[DB_META], &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    if (c->id) {
        if (rc)
            return admin_fail(t, QUEUE_ENOTFOUND, "no incident %llu",
                              (unsigned long long)id);
        if (v.mv_size < 4 || v.mv_size > 4 + QUEUE_MAX_INCIDENT)
            return admin_fail(t, QUEUE_ECORRUPT, "incident %llu does not "
                              "decode", (unsigned long long)id);
        account = be32_get(v.mv_data);
        if (!(old = malloc(v.mv_size - 3)))
            return -ENOMEM;
        memcpy(old, (char *)v.mv_data + 4, v.mv_size - 4);
        old[v.mv_size - 4] = 0;
    }
    unsigned char *val = malloc(4 + QUEUE_MAX_INCIDENT + 1);
    if (!val) {
        free(old);
        return -ENOMEM;
    }
    why[0] = 0;
    long n = c->edit(c->arg, id, old, (char *)val + 4, QUEUE_MAX_INCIDENT + 1,
                     why, sizeof why);
    free(old);
    int err = 0;
    if (n < 0)
        err = admin_fail(t, (int)n, "%s", why[0] ? why : "refused");
    else if ((size_t)n > QUEUE_MAX_INCIDENT)
        err = admin_fail(t, -E2BIG, "incident text over %d bytes",
                         QUEUE_MAX_INCIDENT);
    if (!err) {
        val[0] = (unsigned char)(account >> 24);
        val[1] = (unsigned char)(account >> 16);
        val[2] = (unsigned char)(account >> 8);
        val[3] = (unsigned char)account;
        MDB_val nv = { 4 + (size_t)n, val };
        if ((rc = mdb_put(t->txn, t->q->dbi[DB_META], &k, &nv, 0)))
            err = admin_mdb(t, rc);
    }
    free(val);
    if (!err && c->event_text) {
        struct queue_event ev = { .type = QUEUE_EV_INCIDENT,
                                  .account = account,
                                  .campaign = c->campaign };
        snprintf(ev.text, sizeof ev.text, "%s", c->event_text);
        err = admin_event_append(t, &ev);
    }
    if (err)
        return err;
    c->id = id;
    c->account = account;
    snprintf(obj, sizeof obj, "incident %llu", (unsigned long long)id);
    return admin_audit_put(t, c->by, account, c->action, obj, "ok");
}

int queue_incident_change(struct queue *q, struct queue_incident_change *c)
{
    int err = admin_writable(q);
    if (err)
        return err;
    if (!c->edit || !c->action || !c->by)
        return -EINVAL;
    return admin_run(q, do_change, c);
}

int queue_incident_get(struct queue *q, uint64_t id, uint32_t *account,
                       char **text)
{
    MDB_txn *txn;
    char key[KEY_LEN + 1];
    int err, rc;
    *text = NULL;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    incident_key(key, id);
    MDB_val k = { KEY_LEN, key }, v;
    rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND)
        err = QUEUE_ENOTFOUND;
    else if (rc)
        err = queue_err_mdb(rc);
    else if (v.mv_size < 4)
        err = QUEUE_ECORRUPT;
    else if (!(*text = malloc(v.mv_size - 3)))
        err = -ENOMEM;
    if (!err) {
        *account = be32_get(v.mv_data);
        memcpy(*text, (char *)v.mv_data + 4, v.mv_size - 4);
        (*text)[v.mv_size - 4] = 0;
    }
    queue_read_end(q, txn);
    return err;
}

struct incidents_walk {
    int (*cb)(void *arg, uint64_t id, uint32_t account, const char *text);
    void *arg;
    char *text;
    long n;
};

/* qmeta_prefix_walk(): one incident record. */
static int incident_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct incidents_walk *w = arg;
    if (k->mv_size != KEY_LEN || v->mv_size < 4 ||
        v->mv_size > 4 + QUEUE_MAX_INCIDENT)
        return 0; /* not one of ours */
    char digits[11];
    memcpy(digits, (char *)k->mv_data + sizeof PREFIX - 1, 10);
    digits[10] = 0;
    uint64_t id = strtoull(digits, NULL, 10);
    memcpy(w->text, (char *)v->mv_data + 4, v->mv_size - 4);
    w->text[v->mv_size - 4] = 0;
    w->n++;
    return w->cb(w->arg, id, be32_get(v->mv_data), w->text) ? 1 : 0;
}

long queue_incidents(struct queue *q,
                     int (*cb)(void *arg, uint64_t id, uint32_t account,
                               const char *text),
                     void *arg)
{
    struct incidents_walk w = { cb, arg, malloc(QUEUE_MAX_INCIDENT + 1), 0 };
    if (!w.text)
        return -ENOMEM;
    int err = qmeta_prefix_walk(q, PREFIX, sizeof PREFIX - 1, incident_one,
                                &w);
    free(w.text);
    return err ? err : w.n;
}

struct probe_arg {
    int64_t at;
    const char *domain;
    uint32_t account;
    const struct queue_actor *by;
    struct queue_delivery d;
};

/* Writer: one parked delivery back to now, audited. */
static int do_probe(struct admin_tx *t, void *arg)
{
    struct probe_arg *pa = arg;
    char obj[40];
    int rc = qpark_unpark_one(t->q, t->txn, t->now_ms / 1000, pa->at,
                              pa->domain, &pa->d);
    if (rc == MDB_NOTFOUND)
        return admin_fail(t, QUEUE_ENOTFOUND, "no parked mail%s%s",
                          pa->domain && *pa->domain ? " to " : "",
                          pa->domain ? pa->domain : "");
    if (rc)
        return admin_mdb(t, rc);
    snprintf(obj, sizeof obj, "delivery %llu", (unsigned long long)pa->d.id);
    return admin_audit_put(t, pa->by, pa->account, "incident probe", obj,
                           "ok");
}

int queue_incident_probe_release(struct queue *q, int64_t at,
                                 const char *domain, uint32_t account,
                                 const struct queue_actor *by,
                                 struct queue_delivery *d)
{
    int err = admin_writable(q);
    if (err)
        return err;
    if (!by || at < queue_park_time(0))
        return -EINVAL;
    struct probe_arg pa = { .at = at, .domain = domain, .account = account,
                            .by = by };
    if (!(err = admin_run(q, do_probe, &pa)))
        *d = pa.d;
    return err;
}
