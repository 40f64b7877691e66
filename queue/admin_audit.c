/*
 * admin_audit.c - the append-only, chained audit trail: appending records
 * and reading them back.
 *
 * DESCRIPTION
 *   Every change to the admin data appends one record in the change's own
 *   transaction (admin_audit_put); refused actions, injections and pauses
 *   append one of their own (queue_audit_append).  Record n is stored under
 *   key n (u64 big-endian) as  prev || body || link  where prev is record
 *   n-1's link (zeros for record 1) and link is
 *     HMAC-SHA256(audit key, prev || body)  for a keyed record (format 2,
 *                                           whose body names the key by
 *                                           its id), or
 *     SHA-256(prev || body)                 for an unkeyed one (format 1).
 *   The meta record "audit_head" holds the last seq and its link, so
 *   cutting records off the end is found as well.  A handle given a key
 *   (queue_audit_configure, audit_key.c) appends keyed records, so a trail
 *   unkeyed so far goes on keyed; a handle without one appends unkeyed
 *   records, except after a keyed record: that would break the chain
 *   (verification calls it a rewrite), so the change is refused.  Mixing
 *   keys is refused the same way.  A writer of the spool who does not hold
 *   the key cannot recompute keyed links after an edit; the heads each
 *   append exports to a checkpoint file (audit_key.c) catch a rewrite by
 *   one who does.  audit_verify.c walks the chain.
 *
 *   Texts are stored cut to their caps on a character boundary, with
 *   control characters and broken UTF-8 replaced by '?'.
 *
 * DIAGNOSTICS
 *   QUEUE_ECORRUPT when appending finds records past the head (the trail
 *   was tampered with: `sluice audit verify` says how), or when listing
 *   meets a record that does not decode; -ENOKEY / -EKEYREJECTED for an
 *   append the key rules above refuse, with the detail saying why.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define HASH QUEUE_AUDIT_HASH
#define KEY_ID QUEUE_AUDIT_KEY_ID
#define HEAD_LEN (8 + HASH)
#define BODY_MAX (1 + KEY_ID + 8 + 8 + 1 + 4 + 1 + QUEUE_MAX_AUDIT_USER + 1 + \
                  QUEUE_MAX_AUDIT_VIA + 1 + QUEUE_MAX_AUDIT_ACTION + 2 +     \
                  QUEUE_MAX_AUDIT_OBJECT + 1 + QUEUE_MAX_AUDIT_RESULT)
#define VALUE_MAX (HASH + BODY_MAX + HASH)

bool qaudit_link(const MDB_val *v, bool keyed, const unsigned char *key,
                 unsigned char out[HASH])
{
    const unsigned char *p = v->mv_data;
    size_t n = v->mv_size;
    if (n < 2 * HASH + 1 || (keyed && !key))
        return false;
    n -= HASH;                  /* prev || body */
    if (keyed) {
        unsigned int len = HASH;
        return HMAC(EVP_sha256(), key, QUEUE_AUDIT_KEY, p, n, out, &len) &&
               len == HASH;
    }
    unsigned int len = HASH;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
              EVP_DigestUpdate(c, p, n) && EVP_DigestFinal_ex(c, out, &len) &&
              len == HASH;
    EVP_MD_CTX_free(c);
    return ok;
}

/* Copy s into dst (cap + 1 bytes): control characters and broken UTF-8
 * become '?', cut at cap on a character boundary. */
static void clean_text(char *dst, const char *s, size_t cap)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t l = 1;
        unsigned char c = *p;
        if (c >= 0x80) {
            l = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
              : (c & 0xf8) == 0xf0 ? 4 : 0;
            for (size_t i = 1; i < l; i++)
                if ((p[i] & 0xc0) != 0x80)
                    l = 0;
        }
        if (o + (l ? l : 1) > cap)
            break;
        if (l == 0 || (l == 1 && (c < ' ' || c == 0x7f))) {
            dst[o++] = '?';
            p++;
            continue;
        }
        memcpy(dst + o, p, l);
        o += l;
        p += l;
    }
    dst[o] = 0;
}

int qaudit_head_get(struct queue *q, MDB_txn *txn, uint64_t *seq,
                    unsigned char link[HASH], bool *present)
{
    MDB_val k = { 10, "audit_head" }, v;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    *seq = 0;
    memset(link, 0, HASH);
    *present = false;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != HEAD_LEN)
        return QUEUE_ECORRUPT;
    *seq = be64_get(v.mv_data);
    memcpy(link, (const unsigned char *)v.mv_data + 8, HASH);
    *present = true;
    return 0;
}

/* The format (0: unknown, absent) and key id of stored record seq. */
static int record_kind(struct queue *q, MDB_txn *txn, uint64_t seq,
                       unsigned char id[KEY_ID])
{
    unsigned char key[8];
    be64_put(key, seq);
    MDB_val k = { 8, key }, v;
    if (!seq || mdb_get(txn, q->dbi[DB_AUDIT], &k, &v) ||
        v.mv_size < 2 * HASH + 1 + KEY_ID)
        return 0;
    const unsigned char *p = (const unsigned char *)v.mv_data + HASH;
    if (p[0] == AUDIT_FMT_KEYED)
        memcpy(id, p + 1, KEY_ID);
    return p[0];
}

/* Whether t's handle may append after record seq, and keyed or not. */
static int key_rule(struct admin_tx *t, uint64_t seq, bool *keyed)
{
    const struct audit_cfg *c = t->q->audit;
    unsigned char id[KEY_ID];
    char a[2 * KEY_ID + 1], b[2 * KEY_ID + 1];
    *keyed = c && c->keyed;
    if (record_kind(t->q, t->txn, seq, id) != AUDIT_FMT_KEYED)
        return 0;               /* unkeyed so far: go on as configured */
    if (!*keyed)
        return admin_fail(t, -ENOKEY, "the audit trail is keyed (record "
                          "%llu) and this process has no audit_key: give "
                          "it the sluiced.conf naming the key (--config "
                          "FILE or $SLUICE_CONFIG)",
                          (unsigned long long)seq);
    if (memcmp(id, c->key_id, KEY_ID)) {
        for (int i = 0; i < KEY_ID; i++) {
            snprintf(a + 2 * i, 3, "%02x", c->key_id[i]);
            snprintf(b + 2 * i, 3, "%02x", id[i]);
        }
        return admin_fail(t, -EKEYREJECTED, "audit_key (id %s) is not the "
                          "key of the audit trail (record %llu: id %s)", a,
                          (unsigned long long)seq, b);
    }
    return 0;
}

/* Append one record inside t; bump the admin generation if asked. */
static int audit_write(struct admin_tx *t, const struct queue_actor *by,
                       uint32_t account, const char *action,
                       const char *object, const char *result, bool bump)
{
    struct queue *q = t->q;
    unsigned char val[VALUE_MAX], headv[HEAD_LEN], key[8];
    uint64_t seq;
    bool present, keyed;
    int err, rc;
    struct {
        char user[QUEUE_MAX_AUDIT_USER + 1], via[QUEUE_MAX_AUDIT_VIA + 1];
        char action[QUEUE_MAX_AUDIT_ACTION + 1];
        char object[QUEUE_MAX_AUDIT_OBJECT + 1];
        char result[QUEUE_MAX_AUDIT_RESULT + 1];
    } s;

    if ((err = qaudit_head_get(q, t->txn, &seq, val, &present)))
        return admin_fail(t, err, "audit head does not decode");
    if ((err = key_rule(t, seq, &keyed)))
        return err;
    seq++;
    clean_text(s.user, by && by->user ? by->user : "?", QUEUE_MAX_AUDIT_USER);
    clean_text(s.via, by ? by->via : "", QUEUE_MAX_AUDIT_VIA);
    clean_text(s.action, action, QUEUE_MAX_AUDIT_ACTION);
    clean_text(s.object, object, QUEUE_MAX_AUDIT_OBJECT);
    clean_text(s.result, result, QUEUE_MAX_AUDIT_RESULT);
    struct rec_w w = { .p = val, .len = HASH, .cap = sizeof val - HASH };
    qrec_w_u8(&w, keyed ? AUDIT_FMT_KEYED : AUDIT_FMT_PLAIN);
    if (keyed)
        qrec_w_bytes(&w, q->audit->key_id, KEY_ID);
    qrec_w_u64(&w, seq);
    qrec_w_u64(&w, (uint64_t)t->now_ms);
    qrec_w_u8(&w, by && by->role >= 0 && by->role <= QUEUE_ROLE_OWNER
                  ? (unsigned)by->role : 0);
    qrec_w_u32(&w, account);
    qrec_w_str(&w, s.user, 1, QUEUE_MAX_AUDIT_USER);
    qrec_w_str(&w, s.via, 1, QUEUE_MAX_AUDIT_VIA);
    qrec_w_str(&w, s.action, 1, QUEUE_MAX_AUDIT_ACTION);
    qrec_w_str(&w, s.object, 2, QUEUE_MAX_AUDIT_OBJECT);
    qrec_w_str(&w, s.result, 1, QUEUE_MAX_AUDIT_RESULT);
    if (w.over)
        return admin_fail(t, QUEUE_ETOOBIG, "audit record too large");
    size_t len = w.len + HASH;
    MDB_val mv = { len, val };
    if (!qaudit_link(&mv, keyed, keyed ? q->audit->key : NULL, val + w.len))
        return admin_fail(t, -ENOMEM, "audit record: computing its link "
                          "failed");

    be64_put(key, seq);
    MDB_val k = { 8, key }, v = { len, val };
    rc = mdb_put(t->txn, q->dbi[DB_AUDIT], &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        return admin_fail(t, QUEUE_ECORRUPT, "the audit trail holds records "
                          "past its head (seq %llu): run 'sluice audit "
                          "verify'", (unsigned long long)seq);
    if (rc)
        return admin_mdb(t, rc);
    be64_put(headv, seq);
    memcpy(headv + 8, val + w.len, HASH);
    MDB_val hk = { 10, "audit_head" }, hv = { HEAD_LEN, headv };
    if ((rc = mdb_put(t->txn, q->dbi[DB_META], &hk, &hv, 0)))
        return admin_mdb(t, rc);
    if (bump) {
        uint64_t gen;
        if ((err = qmeta_get_u64(q, t->txn, "admin_gen", &gen)))
            return err;
        if ((rc = qmeta_put_u64(q, t->txn, "admin_gen", gen + 1)))
            return admin_mdb(t, rc);
    }
    if (t->mark) {
        t->mark->seq = seq;
        t->mark->time_ms = t->now_ms;
        memcpy(t->mark->link, val + w.len, HASH);
    }
    return 0;
}

int admin_audit_put(struct admin_tx *t, const struct queue_actor *by,
                    uint32_t account, const char *action, const char *object,
                    const char *result)
{
    return audit_write(t, by, account, action, object, result, true);
}

struct append_arg {
    const struct queue_actor *by;
    uint32_t account;
    const char *action, *object, *result;
};

static int do_append(struct admin_tx *t, void *arg)
{
    struct append_arg *a = arg;
    return audit_write(t, a->by, a->account, a->action, a->object, a->result,
                       false);
}

int queue_audit_append(struct queue *q, const struct queue_actor *by,
                       uint32_t account, const char *action,
                       const char *object, const char *result)
{
    struct append_arg a = { by, account, action, object, result };
    if (!action || !*action) {
        queue_set_detail("audit record without an action");
        return -EINVAL;
    }
    return admin_run(q, do_append, &a);
}

/* Decode a stored value (key seq) into r; false if it does not decode. */
bool qaudit_decode(const MDB_val *v, struct queue_audit *r)
{
    const unsigned char *p = v->mv_data;
    memset(r, 0, sizeof *r);
    if (v->mv_size < 2 * HASH + 1 || v->mv_size > VALUE_MAX)
        return false;
    memcpy(r->prev, p, HASH);
    memcpy(r->hash, p + v->mv_size - HASH, HASH);
    struct rec_r rd = { .p = p + HASH, .len = v->mv_size - 2 * HASH };
    unsigned fmt = qrec_r_u8(&rd);
    if (fmt != AUDIT_FMT_PLAIN && fmt != AUDIT_FMT_KEYED)
        return false;
    r->keyed = fmt == AUDIT_FMT_KEYED;
    if (r->keyed)
        qrec_r_bytes(&rd, r->key_id, KEY_ID);
    r->seq = qrec_r_u64(&rd);
    r->time_ms = (int64_t)qrec_r_u64(&rd);
    r->role = (int)qrec_r_u8(&rd);
    r->account = qrec_r_u32(&rd);
    qrec_r_str(&rd, r->user, 1, QUEUE_MAX_AUDIT_USER);
    qrec_r_str(&rd, r->via, 1, QUEUE_MAX_AUDIT_VIA);
    qrec_r_str(&rd, r->action, 1, QUEUE_MAX_AUDIT_ACTION);
    qrec_r_str(&rd, r->object, 2, QUEUE_MAX_AUDIT_OBJECT);
    qrec_r_str(&rd, r->result, 1, QUEUE_MAX_AUDIT_RESULT);
    return qrec_r_done(&rd) && r->role <= QUEUE_ROLE_OWNER;
}

long queue_audit_list(struct queue *q, uint64_t from,
                      int (*cb)(void *arg, const struct queue_audit *r),
                      void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char key[8];
    long n = 0;
    int err, rc;
    struct queue_audit *r;

    if (admin_absent(q))
        return 0;
    if (!(r = malloc(sizeof *r)))
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(r);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_AUDIT], &cur))) {
        queue_read_end(q, txn);
        free(r);
        return queue_err_mdb(rc);
    }
    be64_put(key, from);
    MDB_val k = { 8, key }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!qaudit_decode(&v, r)) {
            err = QUEUE_ECORRUPT;
            queue_set_detail("audit record under key %llu does not decode",
                             k.mv_size == 8 ? (unsigned long long)
                             be64_get(k.mv_data) : 0ull);
            break;
        }
        n++;
        if (cb(arg, r))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(r);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

int queue_audit_last_key(struct queue *q, bool *keyed,
                         unsigned char id[KEY_ID])
{
    MDB_txn *txn;
    unsigned char head[HASH];
    uint64_t seq;
    bool present;
    int err;
    *keyed = false;
    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if (!(err = qaudit_head_get(q, txn, &seq, head, &present)))
        *keyed = record_kind(q, txn, seq, id) == AUDIT_FMT_KEYED;
    queue_read_end(q, txn);
    return err;
}

int queue_audit_head(struct queue *q, uint64_t *seq, unsigned char head[HASH])
{
    MDB_txn *txn;
    bool present;
    int err;
    *seq = 0;
    memset(head, 0, HASH);
    if (admin_absent(q))
        return 0;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    err = qaudit_head_get(q, txn, seq, head, &present);
    queue_read_end(q, txn);
    return err;
}
