/*
 * audit_verify.c - check the audit trail: the chain, its head, and the
 * checkpoints exported while it grew.
 *
 * DESCRIPTION
 *   The walk reads the records in key order inside one read transaction
 *   and names the first fault: a gap in the sequence (missing), a record
 *   that does not decode, whose link is not the one its bytes give (the
 *   SHA-256 of an unkeyed record, the HMAC of a keyed one with the
 *   handle's key), written with another key, or whose link to its
 *   predecessor is broken (altered), a record stored under another
 *   record's seq (reordered), an unkeyed record after a keyed one (a
 *   writer without the key rewrote the tail: unkeyed), or a head beyond
 *   the last record (truncated).  A handle without the key checks the
 *   structure of keyed records but not their MACs, and counts them.
 *
 *   Then, in the same transaction, each checkpoint the caller reads out
 *   (a line of the checkpoint file, or an audit line of the event log)
 *   is compared with the record at its seq: a seq the chain does not
 *   reach is a cut (truncated), another link a rewrite (rewritten) -- the
 *   one a holder of the key can do, and only up to the last checkpoint
 *   kept out of their reach.
 *
 * DIAGNOSTICS
 *   Faults go into the verdict; the return code is for a spool (or a
 *   checkpoint source) that cannot be read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define HASH QUEUE_AUDIT_HASH
#define KEY_ID QUEUE_AUDIT_KEY_ID

const char *queue_audit_fault_name(int fault)
{
    switch (fault) {
    case QUEUE_AUDIT_INTACT: return "intact";
    case QUEUE_AUDIT_ALTERED: return "altered";
    case QUEUE_AUDIT_MISSING: return "missing";
    case QUEUE_AUDIT_REORDERED: return "reordered";
    case QUEUE_AUDIT_TRUNCATED: return "truncated";
    case QUEUE_AUDIT_UNKEYED: return "unkeyed";
    case QUEUE_AUDIT_REWRITTEN: return "rewritten";
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

/* Hex of a key id into out (2 * KEY_ID + 1 bytes). */
static const char *id_hex(const unsigned char id[KEY_ID], char *out)
{
    for (int i = 0; i < KEY_ID; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
    return out;
}

/* Check one decoded record r (stored value d) against its own bytes and
 * the key rules; returns 1 when it is a fault (noted in v). */
static int check_link(const struct audit_cfg *cfg, const MDB_val *d,
                      const struct queue_audit *r,
                      struct queue_audit_verdict *v)
{
    unsigned char calc[HASH];
    char why[160], a[2 * KEY_ID + 1], b[2 * KEY_ID + 1];
    if (!r->keyed && v->keyed_from) {
        snprintf(why, sizeof why, "unkeyed record after keyed ones: "
                 "rewritten? (keyed from record %llu)",
                 (unsigned long long)v->keyed_from);
        return fault(v, QUEUE_AUDIT_UNKEYED, r->seq, why);
    }
    if (r->keyed && !v->keyed_from)
        v->keyed_from = r->seq;
    if (r->keyed && !v->key) {
        v->unchecked++;          /* structure only */
        return 0;
    }
    if (r->keyed && memcmp(r->key_id, cfg->key_id, KEY_ID)) {
        snprintf(why, sizeof why, "written with another key (id %s; "
                 "audit_key's is %s)", id_hex(r->key_id, a),
                 id_hex(cfg->key_id, b));
        return fault(v, QUEUE_AUDIT_ALTERED, r->seq, why);
    }
    if (!qaudit_link(d, r->keyed, r->keyed ? cfg->key : NULL, calc) ||
        memcmp(calc, r->hash, HASH))
        return fault(v, QUEUE_AUDIT_ALTERED, r->seq, r->keyed
                     ? "record bytes do not match its MAC"
                     : "record bytes do not match its hash");
    return 0;
}

/* Walk the chain in txn; 0 with v->records counted (a fault noted in v)
 * and prev the last record's link, or a code. */
static int walk_chain(struct queue *q, MDB_txn *txn,
                      struct queue_audit_verdict *v, struct queue_audit *r,
                      unsigned char prev[HASH])
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint64_t expect = 1;
    int rc, stop = 0;
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
        if (!qaudit_decode(&d, r)) {
            stop = fault(v, QUEUE_AUDIT_ALTERED, seq,
                         "record does not decode");
            break;
        }
        uint64_t own = r->seq;
        r->seq = seq;            /* faults name the position */
        if ((stop = check_link(q->audit, &d, r, v)))
            break;
        if (own != seq) {
            snprintf(why, sizeof why, "position %llu holds record %llu",
                     (unsigned long long)seq, (unsigned long long)own);
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
    return 0;
}

/* Compare the chain's end (last link prev) with the stored head. */
static int check_head(struct queue *q, MDB_txn *txn,
                      struct queue_audit_verdict *v,
                      const unsigned char prev[HASH])
{
    unsigned char head[HASH];
    uint64_t head_seq, last = v->records;
    bool present;
    char why[160];
    int err = qaudit_head_get(q, txn, &head_seq, head, &present);
    if (err) {
        if (err != QUEUE_ECORRUPT)
            return err;
        fault(v, QUEUE_AUDIT_ALTERED, last, "the audit head does not "
              "decode");
        return 0;
    }
    v->head_seq = head_seq;
    memcpy(v->head, head, HASH);
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

/* Compare each checkpoint of marks with the (sound) chain in txn. */
static int check_marks(struct queue *q, MDB_txn *txn,
                       const struct queue_audit_marks *m,
                       struct queue_audit_verdict *v)
{
    unsigned char head[HASH], key[8];
    uint64_t seq;
    char why[160];
    int rc;
    while ((rc = m->next(m->arg, &seq, head)) == 1) {
        if (!seq)
            continue;            /* a trail without records */
        if (seq > v->records) {
            snprintf(why, sizeof why, "checkpoint %llu: the chain ends at "
                     "record %llu: records were cut off",
                     (unsigned long long)seq,
                     (unsigned long long)v->records);
            fault(v, QUEUE_AUDIT_TRUNCATED, v->records + 1, why);
            return 0;
        }
        be64_put(key, seq);
        MDB_val k = { 8, key }, d;
        if ((rc = mdb_get(txn, q->dbi[DB_AUDIT], &k, &d)))
            return queue_err_mdb(rc);
        if (d.mv_size < HASH || memcmp((const unsigned char *)d.mv_data +
                                       d.mv_size - HASH, head, HASH)) {
            snprintf(why, sizeof why, "checkpoint %llu: head differs: the "
                     "chain was rewritten after it", (unsigned long long)seq);
            fault(v, QUEUE_AUDIT_REWRITTEN, seq, why);
            return 0;
        }
        v->checkpoints++;
        if (seq > v->checkpoint_last)
            v->checkpoint_last = seq;
    }
    return rc;
}

int queue_audit_verify_marks(struct queue *q,
                             const struct queue_audit_marks *marks,
                             struct queue_audit_verdict *v)
{
    MDB_txn *txn;
    unsigned char prev[HASH] = { 0 };
    int err;
    memset(v, 0, sizeof *v);
    if (q->audit && q->audit->keyed) {
        v->key = true;
        memcpy(v->key_id, q->audit->key_id, KEY_ID);
    }
    if (admin_absent(q))
        return 0;
    struct queue_audit *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(r);
        return err;
    }
    err = walk_chain(q, txn, v, r, prev);
    if (!err && v->fault == QUEUE_AUDIT_INTACT)
        err = check_head(q, txn, v, prev);
    if (!err && v->fault == QUEUE_AUDIT_INTACT && marks)
        err = check_marks(q, txn, marks, v);
    queue_read_end(q, txn);
    free(r);
    return err;
}

int queue_audit_verify(struct queue *q, struct queue_audit_verdict *v)
{
    return queue_audit_verify_marks(q, NULL, v);
}
