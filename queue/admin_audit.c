/*
 * admin_audit.c - the append-only, hash-chained audit trail.
 *
 * DESCRIPTION
 *   Every change to the admin data appends one record in the change's own
 *   transaction (admin_audit_put); refused actions, injections and pauses
 *   append one of their own (queue_audit_append).  Record n is stored under
 *   key n (u64 big-endian) as  prev_hash || body || hash  where
 *   hash = SHA-256(prev_hash || body) and prev_hash is record n-1's hash
 *   (zeros for record 1).  The meta record "audit_head" holds the last seq
 *   and its hash, so cutting records off the end is found as well.
 *
 *   Verification walks the records in key order and names the first fault:
 *   a gap in the sequence (missing), a record whose bytes do not match its
 *   hash or do not decode, or whose link to its predecessor is broken
 *   (altered), a record stored under another record's seq (reordered), or a
 *   head beyond the last record (truncated).  A chain without a secret
 *   cannot stop someone with write access from rewriting all of it; the
 *   head hash that `sluice audit verify` prints can be kept elsewhere to
 *   catch that too.
 *
 *   Texts are stored cut to their caps on a character boundary, with
 *   control characters and broken UTF-8 replaced by '?'.
 *
 * DIAGNOSTICS
 *   QUEUE_ECORRUPT when appending finds records past the head (the trail
 *   was tampered with: `sluice audit verify` says how), or when listing
 *   meets a record that does not decode.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define HASH QUEUE_AUDIT_HASH
#define HEAD_LEN (8 + HASH)
#define BODY_MAX (1 + 8 + 8 + 1 + 4 + 1 + QUEUE_MAX_AUDIT_USER + 1 +        \
                  QUEUE_MAX_AUDIT_VIA + 1 + QUEUE_MAX_AUDIT_ACTION + 2 +     \
                  QUEUE_MAX_AUDIT_OBJECT + 1 + QUEUE_MAX_AUDIT_RESULT)
#define VALUE_MAX (HASH + BODY_MAX + HASH)

/* SHA-256 of a||b. */
static void sha256_2(const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char out[HASH])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = HASH;
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(c, a, alen) || !EVP_DigestUpdate(c, b, blen) ||
        !EVP_DigestFinal_ex(c, out, &n))
        memset(out, 0, HASH);   /* never matches a stored hash */
    EVP_MD_CTX_free(c);
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

/* Read the head: last seq and its hash (0 and zeros when none). */
static int head_get(struct queue *q, MDB_txn *txn, uint64_t *seq,
                    unsigned char hash[HASH], bool *present)
{
    MDB_val k = { 10, "audit_head" }, v;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &v);
    *seq = 0;
    memset(hash, 0, HASH);
    *present = false;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    if (v.mv_size != HEAD_LEN)
        return QUEUE_ECORRUPT;
    *seq = be64_get(v.mv_data);
    memcpy(hash, (const unsigned char *)v.mv_data + 8, HASH);
    *present = true;
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
    bool present;
    int err, rc;
    struct {
        char user[QUEUE_MAX_AUDIT_USER + 1], via[QUEUE_MAX_AUDIT_VIA + 1];
        char action[QUEUE_MAX_AUDIT_ACTION + 1];
        char object[QUEUE_MAX_AUDIT_OBJECT + 1];
        char result[QUEUE_MAX_AUDIT_RESULT + 1];
    } s;

    if ((err = head_get(q, t->txn, &seq, val, &present)))
        return admin_fail(t, err, "audit head does not decode");
    seq++;
    clean_text(s.user, by && by->user ? by->user : "?", QUEUE_MAX_AUDIT_USER);
    clean_text(s.via, by ? by->via : "", QUEUE_MAX_AUDIT_VIA);
    clean_text(s.action, action, QUEUE_MAX_AUDIT_ACTION);
    clean_text(s.object, object, QUEUE_MAX_AUDIT_OBJECT);
    clean_text(s.result, result, QUEUE_MAX_AUDIT_RESULT);
    struct rec_w w = { .p = val, .len = HASH, .cap = sizeof val - HASH };
    rw_u8(&w, ADMIN_FMT);
    rw_u64(&w, seq);
    rw_u64(&w, (uint64_t)t->now_ms);
    rw_u8(&w, by && by->role >= 0 && by->role <= QUEUE_ROLE_OWNER
                  ? (unsigned)by->role : 0);
    rw_u32(&w, account);
    rw_str(&w, s.user, 1, QUEUE_MAX_AUDIT_USER);
    rw_str(&w, s.via, 1, QUEUE_MAX_AUDIT_VIA);
    rw_str(&w, s.action, 1, QUEUE_MAX_AUDIT_ACTION);
    rw_str(&w, s.object, 2, QUEUE_MAX_AUDIT_OBJECT);
    rw_str(&w, s.result, 1, QUEUE_MAX_AUDIT_RESULT);
    if (w.over)
        return admin_fail(t, QUEUE_ETOOBIG, "audit record too large");
    sha256_2(val, HASH, val + HASH, w.len - HASH, val + w.len);
    size_t len = w.len + HASH;

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
        if ((err = meta_get_u64(q, t->txn, "admin_gen", &gen)))
            return err;
        if ((rc = meta_put_u64(q, t->txn, "admin_gen", gen + 1)))
            return admin_mdb(t, rc);
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
bool audit_decode(const MDB_val *v, struct queue_audit *r)
{
    const unsigned char *p = v->mv_data;
    memset(r, 0, sizeof *r);
    if (v->mv_size < 2 * HASH + 1 || v->mv_size > VALUE_MAX)
        return false;
    memcpy(r->prev, p, HASH);
    memcpy(r->hash, p + v->mv_size - HASH, HASH);
    struct rec_r rd = { .p = p + HASH, .len = v->mv_size - 2 * HASH };
    if (rr_u8(&rd) != ADMIN_FMT)
        return false;
    r->seq = rr_u64(&rd);
    r->time_ms = (int64_t)rr_u64(&rd);
    r->role = (int)rr_u8(&rd);
    r->account = rr_u32(&rd);
    rr_str(&rd, r->user, 1, QUEUE_MAX_AUDIT_USER);
    rr_str(&rd, r->via, 1, QUEUE_MAX_AUDIT_VIA);
    rr_str(&rd, r->action, 1, QUEUE_MAX_AUDIT_ACTION);
    rr_str(&rd, r->object, 2, QUEUE_MAX_AUDIT_OBJECT);
    rr_str(&rd, r->result, 1, QUEUE_MAX_AUDIT_RESULT);
    return rr_done(&rd) && r->role <= QUEUE_ROLE_OWNER;
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
        if (!audit_decode(&v, r)) {
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

const char *queue_audit_fault_name(int fault)
{
    switch (fault) {
    case QUEUE_AUDIT_INTACT: return "intact";
    case QUEUE_AUDIT_ALTERED: return "altered";
    case QUEUE_AUDIT_MISSING: return "missing";
    case QUEUE_AUDIT_REORDERED: return "reordered";
    case QUEUE_AUDIT_TRUNCATED: return "truncated";
    default: return "?";
    }
}

/* Note the first fault in v; returns 1 to stop the walk. */
static int fault(struct queue_audit_verdict *v, int f, uint64_t seq,
                 const char *why)
{
    v->fault = f;
    v->bad_seq = seq;
    size_t n = strlen(why);
    if (n >= sizeof v->why)
        n = sizeof v->why - 1;
    memcpy(v->why, why, n);
    v->why[n] = 0;
    return 1;
}

/* Walk the chain in txn and compare its end with the head. */
static int verify_txn(struct queue *q, MDB_txn *txn,
                      struct queue_audit_verdict *v, struct queue_audit *r)
{
    MDB_cursor *cur;
    MDB_val k, d;
    unsigned char prev[HASH] = { 0 }, calc[HASH], head[HASH];
    uint64_t expect = 1, head_seq;
    bool present;
    int rc, err, stop = 0;
    char why[160];

    if ((rc = mdb_cursor_open(txn, q->dbi[DB_AUDIT], &cur)))
        return queue_err_mdb(rc);
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && !stop;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != 8) {
            stop = fault(v, QUEUE_AUDIT_ALTERED, expect,
                         "a key of the audit database is not a sequence "
                         "number");
            break;
        }
        uint64_t seq = be64_get(k.mv_data);
        if (seq != expect) {
            snprintf(why, sizeof why, "record %llu is missing (next found "
                     "is %llu)", (unsigned long long)expect,
                     (unsigned long long)seq);
            stop = fault(v, QUEUE_AUDIT_MISSING, expect, why);
            break;
        }
        if (!audit_decode(&d, r)) {
            stop = fault(v, QUEUE_AUDIT_ALTERED, seq,
                         "record does not decode");
            break;
        }
        sha256_2(d.mv_data, HASH, (const unsigned char *)d.mv_data + HASH,
                 d.mv_size - 2 * HASH, calc);
        if (memcmp(calc, r->hash, HASH)) {
            stop = fault(v, QUEUE_AUDIT_ALTERED, seq,
                         "record bytes do not match its hash");
            break;
        }
        if (r->seq != seq) {
            snprintf(why, sizeof why, "position %llu holds record %llu",
                     (unsigned long long)seq, (unsigned long long)r->seq);
            stop = fault(v, QUEUE_AUDIT_REORDERED, seq, why);
            break;
        }
        if (memcmp(r->prev, prev, HASH)) {
            snprintf(why, sizeof why, "record does not link to record %llu "
                     "(one of them was replaced)",
                     (unsigned long long)(seq - 1));
            stop = fault(v, QUEUE_AUDIT_ALTERED, seq, why);
            break;
        }
        memcpy(prev, r->hash, HASH);
        v->records++;
        expect++;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND && !stop)
        return queue_err_mdb(rc);
    if (stop)
        return 0;
    if ((err = head_get(q, txn, &head_seq, head, &present))) {
        if (err != QUEUE_ECORRUPT)
            return err;
        fault(v, QUEUE_AUDIT_ALTERED, expect - 1, "the audit head does not "
              "decode");
        return 0;
    }
    v->head_seq = head_seq;
    memcpy(v->head, head, HASH);
    uint64_t last = expect - 1;
    if (!present && last > 0)
        fault(v, QUEUE_AUDIT_ALTERED, last, "the audit head is missing");
    else if (head_seq > last) {
        snprintf(why, sizeof why, "records %llu..%llu are gone from the end",
                 (unsigned long long)(last + 1),
                 (unsigned long long)head_seq);
        fault(v, QUEUE_AUDIT_TRUNCATED, last + 1, why);
    } else if (head_seq < last) {
        snprintf(why, sizeof why, "records after %llu were added outside "
                 "sluice", (unsigned long long)head_seq);
        fault(v, QUEUE_AUDIT_ALTERED, head_seq + 1, why);
    } else if (memcmp(head, prev, HASH)) {
        fault(v, QUEUE_AUDIT_ALTERED, last, "the last record does not match "
              "the audit head");
    }
    return 0;
}

int queue_audit_verify(struct queue *q, struct queue_audit_verdict *v)
{
    MDB_txn *txn;
    int err;
    memset(v, 0, sizeof *v);
    if (admin_absent(q))
        return 0;
    struct queue_audit *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(r);
        return err;
    }
    err = verify_txn(q, txn, v, r);
    queue_read_end(q, txn);
    free(r);
    return err;
}
