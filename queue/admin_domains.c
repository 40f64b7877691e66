/*
 * admin_domains.c - sending domains: which account may send as which
 * domain, whether the domain is verified, and its DKIM keys.
 *
 * DESCRIPTION
 *   Owns the "sdomains" database, keyed by the domain in lower-case A-label
 *   form (the tool converts U-labels with libidn2 first).  A domain belongs
 *   to exactly one account.  Each carries up to QUEUE_MAX_SELECTORS DKIM
 *   selectors with the algorithm, the path of the private key file (the
 *   key itself stays in its file) and the key's dates (created, verified,
 *   retire date: admin_dkim.c changes them).  Verification is recorded
 *   with its time; how it was verified (DNS or forced) goes into the audit
 *   record.  Records are written in format 2; format 1 (before keys had
 *   dates) still reads: its keys count as verified when the domain is.
 *
 * DIAGNOSTICS
 *   -EINVAL for a malformed domain, selector, algorithm or path, -EEXIST for
 *   a domain already added (to this or another account), QUEUE_ENOTFOUND
 *   for an unknown domain or account, QUEUE_ECORRUPT for a record that does
 *   not decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define F_VERIFIED 1
#define SDOM_FMT_DATED 2   /* format 1 plus three dates per key */
#define SDOM_REC_MAX (1 + 1 + 4 + 8 + 8 + 1 +                                \
                      QUEUE_MAX_SELECTORS * (1 + QUEUE_MAX_SELECTOR + 1 +    \
                                             QUEUE_MAX_ALGO + 2 +            \
                                             QUEUE_MAX_KEY_PATH + 3 * 8))

/* Whether d is a lower-case LDH domain name with at least two labels. */
static bool domain_ok(const char *d)
{
    size_t n = d ? strnlen(d, QUEUE_MAX_DOMAIN + 1) : 0, label = 0;
    bool dot = false;
    if (n == 0 || n > QUEUE_MAX_DOMAIN)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = d[i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || d[i - 1] == '-')
                return false;
            if (c == '.')
                dot = true;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (c == '-' && label > 0)))
            return false;
        label++;
    }
    return dot;
}

bool qsdomain_selector_ok(const char *s)
{
    return admin_name_ok(s, QUEUE_MAX_SELECTOR, false) &&
           s[strlen(s) - 1] != '.' && !strstr(s, "..");
}

static size_t sdomain_encode(unsigned char *buf, size_t cap,
                             const struct queue_sdomain *d)
{
    struct rec_w w = { .p = buf, .cap = cap };
    qrec_w_u8(&w, SDOM_FMT_DATED);
    qrec_w_u8(&w, d->verified ? F_VERIFIED : 0);
    qrec_w_u32(&w, d->account);
    qrec_w_u64(&w, (uint64_t)d->created);
    qrec_w_u64(&w, (uint64_t)d->verified_at);
    qrec_w_u8(&w, d->nsel);
    for (unsigned i = 0; i < d->nsel; i++) {
        qrec_w_str(&w, d->sel[i].selector, 1, QUEUE_MAX_SELECTOR);
        qrec_w_str(&w, d->sel[i].algo, 1, QUEUE_MAX_ALGO);
        qrec_w_str(&w, d->sel[i].key_path, 2, QUEUE_MAX_KEY_PATH);
        qrec_w_u64(&w, (uint64_t)d->sel[i].created);
        qrec_w_u64(&w, (uint64_t)d->sel[i].verified_at);
        qrec_w_u64(&w, (uint64_t)d->sel[i].retire_at);
    }
    return w.over ? 0 : w.len;
}

int qsdomain_decode(const MDB_val *k, const MDB_val *v,
                    struct queue_sdomain *d)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    memset(d, 0, sizeof *d);
    if (k->mv_size == 0 || k->mv_size > QUEUE_MAX_DOMAIN)
        return QUEUE_ECORRUPT;
    memcpy(d->domain, k->mv_data, k->mv_size);
    unsigned fmt = qrec_r_u8(&r);
    if (fmt != ADMIN_FMT && fmt != SDOM_FMT_DATED)
        return QUEUE_ECORRUPT;
    d->verified = qrec_r_u8(&r) & F_VERIFIED;
    d->account = qrec_r_u32(&r);
    d->created = (int64_t)qrec_r_u64(&r);
    d->verified_at = (int64_t)qrec_r_u64(&r);
    d->nsel = qrec_r_u8(&r);
    if (d->nsel > QUEUE_MAX_SELECTORS)
        return QUEUE_ECORRUPT;
    for (unsigned i = 0; i < d->nsel; i++) {
        qrec_r_str(&r, d->sel[i].selector, 1, QUEUE_MAX_SELECTOR);
        qrec_r_str(&r, d->sel[i].algo, 1, QUEUE_MAX_ALGO);
        qrec_r_str(&r, d->sel[i].key_path, 2, QUEUE_MAX_KEY_PATH);
        struct queue_dkim_sel *s = &d->sel[i];
        if (fmt == ADMIN_FMT) { /* before keys had their own dates */
            s->created = d->created;
            s->verified_at = d->verified ? d->verified_at : 0;
            continue;
        }
        s->created = (int64_t)qrec_r_u64(&r);
        s->verified_at = (int64_t)qrec_r_u64(&r);
        s->retire_at = (int64_t)qrec_r_u64(&r);
    }
    return qrec_r_done(&r) ? 0 : QUEUE_ECORRUPT;
}

static MDB_val dom_key(const char *domain)
{
    return (MDB_val){ strnlen(domain, QUEUE_MAX_DOMAIN), (void *)domain };
}

int qsdomain_store(struct admin_tx *t, const struct queue_sdomain *d)
{
    unsigned char *buf = malloc(SDOM_REC_MAX);
    if (!buf)
        return -ENOMEM;
    size_t len = sdomain_encode(buf, SDOM_REC_MAX, d);
    MDB_val k = dom_key(d->domain), v = { len, buf };
    int rc = len ? mdb_put(t->txn, t->q->dbi[DB_SDOMAINS], &k, &v, 0) : 0;
    free(buf);
    if (!len)
        return admin_fail(t, QUEUE_ETOOBIG, "domain record too large");
    return rc ? admin_mdb(t, rc) : 0;
}

struct add_arg {
    const char *domain;
    uint32_t account;
    const struct queue_dkim_sel *sel;
    const struct queue_actor *by;
    struct queue_sdomain d;
    struct queue_account a;
};

static int do_add(struct admin_tx *t, void *arg)
{
    struct add_arg *c = arg;
    struct queue_sdomain *d = &c->d;
    int err;
    if (!domain_ok(c->domain))
        return admin_fail(t, -EINVAL, "invalid domain '%.80s': lower-case "
                          "labels of a-z 0-9 -, at least two",
                          c->domain ? c->domain : "");
    if (c->sel) {
        if (!qsdomain_selector_ok(c->sel->selector))
            return admin_fail(t, -EINVAL, "invalid DKIM selector '%.80s'",
                              c->sel->selector);
        if (strcmp(c->sel->algo, "rsa") && strcmp(c->sel->algo, "ed25519"))
            return admin_fail(t, -EINVAL, "DKIM algorithm is rsa or ed25519");
        if (!*c->sel->key_path ||
            !admin_text_ok(c->sel->key_path, QUEUE_MAX_KEY_PATH) ||
            strpbrk(c->sel->key_path, "\t\r\n"))
            return admin_fail(t, -EINVAL, "invalid DKIM key path");
    }
    if ((err = qaccount_load(t->q, t->txn, c->account, &c->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", c->account) : err;
    MDB_val k = dom_key(c->domain), v;
    int rc = mdb_get(t->txn, t->q->dbi[DB_SDOMAINS], &k, &v);
    if (rc == 0) {
        if ((err = qsdomain_decode(&k, &v, d)))
            return err;
        return admin_fail(t, -EEXIST, "domain %s is already a sending "
                          "domain of %s", c->domain,
                          d->account == c->account ? "this account"
                                                   : "another account");
    }
    if (rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    memset(d, 0, sizeof *d);
    snprintf(d->domain, sizeof d->domain, "%s", c->domain);
    d->account = c->account;
    d->created = t->now_ms / 1000;
    if (c->sel) {
        d->sel[0] = *c->sel;
        d->sel[0].created = d->created;
        d->sel[0].verified_at = d->sel[0].retire_at = 0;
        d->nsel = 1;
    }
    if ((err = qsdomain_store(t, d)))
        return err;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    if (snprintf(obj, sizeof obj, "domain %s of %s%s%s", d->domain, c->a.name,
             d->nsel ? " selector " : "",
             d->nsel ? d->sel[0].selector : "") >= (int)sizeof obj)
        obj[sizeof obj - 1] = 0; /* cut to the audit record's cap */
    return admin_audit_put(t, c->by, c->account, "domain add", obj, "ok");
}

int queue_sdomain_add(struct queue *q, const char *domain, uint32_t account,
                      const struct queue_dkim_sel *sel,
                      const struct queue_actor *by)
{
    struct add_arg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->domain = domain;
    c->account = account;
    c->sel = sel;
    c->by = by;
    int err = admin_run(q, do_add, c);
    free(c);
    return err;
}

int qsdomain_load(struct admin_tx *t, const char *domain,
                  struct queue_sdomain *d)
{
    if (!domain || !*domain || strlen(domain) > QUEUE_MAX_DOMAIN)
        return admin_fail(t, QUEUE_ENOTFOUND, "no sending domain %.80s",
                          domain ? domain : "");
    MDB_val k = dom_key(domain), v;
    int rc = mdb_get(t->txn, t->q->dbi[DB_SDOMAINS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return admin_fail(t, QUEUE_ENOTFOUND, "no sending domain %.80s",
                          domain);
    if (rc)
        return admin_mdb(t, rc);
    return qsdomain_decode(&k, &v, d);
}

int queue_sdomain_get(struct queue *q, const char *domain,
                      struct queue_sdomain *d)
{
    MDB_txn *txn;
    memset(d, 0, sizeof *d);
    if (admin_absent(q) || !domain || !*domain ||
        strlen(domain) > QUEUE_MAX_DOMAIN)
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    MDB_val k = dom_key(domain), v;
    int rc = mdb_get(txn, q->dbi[DB_SDOMAINS], &k, &v);
    err = rc ? queue_err_mdb(rc) : qsdomain_decode(&k, &v, d);
    queue_read_end(q, txn);
    return err;
}

long queue_sdomains(struct queue *q,
                    int (*cb)(void *arg, const struct queue_sdomain *d),
                    void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    long n = 0;
    int err = 0, rc;

    if (admin_absent(q))
        return 0;
    struct queue_sdomain *d = malloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(d);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_SDOMAINS], &cur))) {
        queue_read_end(q, txn);
        free(d);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if ((err = qsdomain_decode(&k, &v, d)))
            break;
        n++;
        if (cb(arg, d))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(d);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}
