/*
 * control.c - the admin's controls: paused domains and sites.
 *
 * DESCRIPTION
 *   A pause is one record in the "controls" database (schema 2), keyed
 *   'p' kind name, holding when it began, why and who set it, and for a
 *   pause that ends by itself (`sluice pause --for`) when it ends: a
 *   record past that time reads as not paused to everyone who asks
 *   (queue_control_active), and stays stored until the next pause or
 *   resume of the same name replaces it.  A campaign's pause may have an
 *   end too (`sluice campaign pause --for`): there the end only stops new
 *   mail being parked; sluiced resumes the campaign (its state, its
 *   parked mail) with queue_campaign_resume() once it has passed.  Pauses and
 *   resumes go through the writer like every other write (OP_CONTROL) and
 *   bump the meta counter "controls_gen" in the same transaction, so a
 *   reader that sees a new generation also sees the change behind it.
 *   Readers list the records in key order: campaigns ('c'), domains
 *   ('d'), sites ('s'), then cancelled campaigns ('x'), each by name.
 *   control_put_txn() writes the same record inside another change's
 *   transaction (campaign pause, resume and cancel with their state).  A
 *   cancel moves every queued row of the campaign to now in that same
 *   transaction (park.c), so the engine ends them all at its next claim.
 *
 *   A read-only open of a schema-1 spool has no controls database
 *   (q->absent[DB_CONTROLS]): it lists nothing and reports generation 0.
 *
 * DIAGNOSTICS
 *   -EINVAL for a bad kind, name, reason or who (queue_last_detail() says
 *   which); QUEUE_ENOTFOUND for resuming what is not paused;
 *   QUEUE_ECORRUPT for a record that does not decode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* Key: 'p' kind name. */
#define CTL_KEY_MAX (2 + QUEUE_MAX_CTL_NAME)
/* Value: since(8) reason_len(1) reason who_len(1) who [until(8)]: a
 * pause that ends by itself has the end time after who. */
#define CTL_VAL_MAX (8 + 1 + QUEUE_MAX_CTL_REASON + 1 + QUEUE_MAX_CTL_WHO + 8)

/* Whether name is a storable domain or site name. */
static bool name_ok(const char *name)
{
    size_t n = name ? strnlen(name, QUEUE_MAX_CTL_NAME + 1) : 0;
    if (n == 0 || n > QUEUE_MAX_CTL_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == 0x7f || (c >= 'A' && c <= 'Z'))
            return false;
    }
    return true;
}

/* Length of text cut to cap bytes without splitting a UTF-8 character;
 * -1 if it holds a control character. */
static long text_len(const char *text, size_t cap)
{
    if (!text)
        return 0;
    size_t n = strnlen(text, cap + 1);
    for (size_t i = 0; i < n && i < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < ' ' || c == 0x7f)
            return -1;
    }
    if (n > cap) {
        n = cap;
        /* back off continuation bytes, then the lead byte they follow */
        while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--;
    }
    return (long)n;
}

/* One of enum queue_ctl_kind. */
static bool ctl_kind_ok(int kind)
{
    return kind == QUEUE_CTL_DOMAIN || kind == QUEUE_CTL_SITE ||
           kind == QUEUE_CTL_CAMPAIGN || kind == QUEUE_CTL_CANCELLED;
}

int queue_control_active(const struct queue_control *c, int64_t now)
{
    return c->until == 0 || c->until > now;
}

int control_submit(struct queue *q, int kind, const char *name,
                   const char *reason, const char *who, bool set,
                   int64_t until, queue_done_cb cb, void *arg)
{
    long rlen = text_len(reason, QUEUE_MAX_CTL_REASON);
    long wlen = text_len(who, QUEUE_MAX_CTL_WHO);
    if (!ctl_kind_ok(kind)) {
        queue_set_detail("control kind must be domain, site, campaign or "
                         "cancelled campaign");
        return -EINVAL;
    }
    if (!name_ok(name)) {
        queue_set_detail("invalid name: 1..%d bytes, lower case, no spaces "
                         "or control characters", QUEUE_MAX_CTL_NAME);
        return -EINVAL;
    }
    if (rlen < 0 || wlen < 0) {
        queue_set_detail("control characters in the %s",
                         rlen < 0 ? "reason" : "name of who paused");
        return -EINVAL;
    }
    /* a campaign's pause ends through queue_campaign_pause_until(), with
     * its state */
    if (until < 0 || (until && (!set || (kind != QUEUE_CTL_DOMAIN &&
                                         kind != QUEUE_CTL_SITE)))) {
        queue_set_detail("only a pause of a domain or site can end by "
                         "itself here");
        return -EINVAL;
    }
    size_t nlen = strlen(name);
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op || !(op->arena = malloc(nlen + (size_t)rlen + (size_t)wlen))) {
        free(op);
        return -ENOMEM;
    }
    op->kind = OP_CONTROL;
    op->weight = 1;
    op->ctl = (struct op_control){ .kind = (uint8_t)kind, .set = set,
                                   .name_len = (uint16_t)nlen,
                                   .reason_len = (uint16_t)rlen,
                                   .who_len = (uint16_t)wlen,
                                   .until = until };
    memcpy(op->arena, name, nlen);
    if (rlen)
        memcpy(op->arena + nlen, reason, (size_t)rlen);
    if (wlen)
        memcpy(op->arena + nlen + rlen, who, (size_t)wlen);
    op->arena_len = nlen + (size_t)rlen + (size_t)wlen;
    return queue_op_submit(q, op, NULL, cb, arg);
}

/* Decode a controls record; QUEUE_ECORRUPT if it does not fit. */
int control_decode(const MDB_val *k, const MDB_val *v,
                   struct queue_control *c)
{
    const unsigned char *kp = k->mv_data, *p = v->mv_data;
    size_t nlen = k->mv_size - 2;
    if (k->mv_size < 3 || k->mv_size > CTL_KEY_MAX || kp[0] != 'p' ||
        !ctl_kind_ok(kp[1]) ||
        v->mv_size < 10)
        return QUEUE_ECORRUPT;
    size_t rlen = p[8];
    if (rlen > QUEUE_MAX_CTL_REASON || 10 + rlen > v->mv_size)
        return QUEUE_ECORRUPT;
    size_t wlen = p[9 + rlen];
    size_t base = 10 + rlen + wlen;
    if (wlen > QUEUE_MAX_CTL_WHO ||
        (base != v->mv_size && base + 8 != v->mv_size))
        return QUEUE_ECORRUPT;
    c->until = base + 8 == v->mv_size ? (int64_t)be64_get(p + base) : 0;
    /* an end time is kept only for domains, sites and campaigns, and is a
     * real time */
    if (base + 8 == v->mv_size &&
        (c->until <= 0 || (kp[1] != QUEUE_CTL_DOMAIN &&
                           kp[1] != QUEUE_CTL_SITE &&
                           kp[1] != QUEUE_CTL_CAMPAIGN)))
        return QUEUE_ECORRUPT;
    c->kind = kp[1];
    memcpy(c->name, kp + 2, nlen);
    c->name[nlen] = 0;
    c->since = (int64_t)be64_get(p);
    memcpy(c->reason, p + 9, rlen);
    c->reason[rlen] = 0;
    memcpy(c->who, p + 10 + rlen, wlen);
    c->who[wlen] = 0;
    return 0;
}

int control_put_txn(struct queue *q, MDB_txn *txn, int64_t now, int kind,
                    const char *name, const char *reason, const char *who,
                    bool set)
{
    return control_put_until_txn(q, txn, now, kind, name, reason, who, set,
                                 0);
}

int control_put_until_txn(struct queue *q, MDB_txn *txn, int64_t now,
                          int kind, const char *name, const char *reason,
                          const char *who, bool set, int64_t until)
{
    long rlen = text_len(reason, QUEUE_MAX_CTL_REASON);
    long wlen = text_len(who, QUEUE_MAX_CTL_WHO);
    unsigned char key[CTL_KEY_MAX], val[CTL_VAL_MAX];
    MDB_dbi dbi = q->dbi[DB_CONTROLS];
    int64_t since = now;
    uint64_t gen;
    int rc, err;

    if (!ctl_kind_ok(kind) || !name_ok(name) || rlen < 0 || wlen < 0)
        return -EINVAL;
    size_t nlen = strlen(name);
    MDB_val k = { 2 + nlen, key }, v;
    key[0] = 'p';
    key[1] = (unsigned char)kind;
    memcpy(key + 2, name, nlen);
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (!set) {
        if (rc == MDB_NOTFOUND)
            return QUEUE_ENOTFOUND;   /* nothing written */
        if ((rc = mdb_del(txn, dbi, &k, NULL)))
            return rc;
    } else {
        if (rc == 0 && v.mv_size >= 8)
            since = (int64_t)be64_get(v.mv_data);   /* keep the first */
        be64_put(val, (uint64_t)since);
        val[8] = (unsigned char)rlen;
        if (rlen)
            memcpy(val + 9, reason, (size_t)rlen);
        val[9 + rlen] = (unsigned char)wlen;
        if (wlen)
            memcpy(val + 10 + rlen, who, (size_t)wlen);
        size_t vlen = 10 + (size_t)rlen + (size_t)wlen;
        if (until > 0) {
            be64_put(val + vlen, (uint64_t)until);
            vlen += 8;
        }
        MDB_val nv = { vlen, val };
        if ((rc = mdb_put(txn, dbi, &k, &nv, 0)))
            return rc;
    }
    /* a resumed or cancelled campaign's parked mail is due now */
    if ((kind == QUEUE_CTL_CAMPAIGN && !set) ||
        (kind == QUEUE_CTL_CANCELLED && set)) {
        char *end;
        unsigned long long id = strtoull(name, &end, 10);
        uint64_t moved;
        if (!*end && id &&
            (rc = qpark_unpark_campaign(q, txn, now, id, &moved)))
            return rc;
        /* cancelled: its scheduled and deferred mail ends now as well */
        if (!*end && id && kind == QUEUE_CTL_CANCELLED &&
            (rc = qpark_hasten_campaign(q, txn, now, id, &moved)))
            return rc;
    }
    if ((err = qmeta_get_u64(q, txn, "controls_gen", &gen)))
        return err;
    return qmeta_put_u64(q, txn, "controls_gen", gen + 1);
}

int queue_op_apply_control(struct wctx *w, struct queue_op *op)
{
    const struct op_control *ctl = &op->ctl;
    char name[QUEUE_MAX_CTL_NAME + 1], reason[QUEUE_MAX_CTL_REASON + 1];
    char who[QUEUE_MAX_CTL_WHO + 1];
    memcpy(name, op->arena, ctl->name_len);
    name[ctl->name_len] = 0;
    memcpy(reason, op->arena + ctl->name_len, ctl->reason_len);
    reason[ctl->reason_len] = 0;
    memcpy(who, op->arena + ctl->name_len + ctl->reason_len, ctl->who_len);
    who[ctl->who_len] = 0;
    int rc = control_put_until_txn(w->q, w->txn, w->now, ctl->kind, name,
                                   reason, who, ctl->set, ctl->until);
    if (rc > 0)
        return wctx_fail(w, rc);
    if (rc == QUEUE_ENOTFOUND || rc == -EINVAL) {
        op->status = rc;   /* nothing written */
        return 0;
    }
    return rc;
}

long queue_controls(struct queue *q,
                    int (*cb)(void *arg, const struct queue_control *c),
                    void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = { 1, "p" }, v;
    long n = 0;
    int err, rc;
    struct queue_control *c;

    if (q->absent[DB_CONTROLS])
        return 0;
    if (!(c = malloc(sizeof *c)))
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(c);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_CONTROLS], &cur))) {
        queue_read_end(q, txn);
        free(c);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 1 || ((const char *)k.mv_data)[0] != 'p')
            break;
        if ((err = control_decode(&k, &v, c)))
            break;
        n++;
        if (cb(arg, c))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(c);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

int queue_controls_gen(struct queue *q, uint64_t *gen)
{
    MDB_txn *txn;
    int err;
    *gen = 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    err = qmeta_get_u64(q, txn, "controls_gen", gen);
    queue_read_end(q, txn);
    return err;
}
