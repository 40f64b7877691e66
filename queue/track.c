/*
 * track.c - the counts of a tracked campaign's opens and clicks.
 *
 * DESCRIPTION
 *   qtrack_count() runs in the writer's transaction as an open or click
 *   event of a delivery is appended (note.c): the delivery's mark ('T'
 *   campaign . delivery) counts its opens and clicks; the first of a kind
 *   adds one to the campaign's unique count, each one to its total, and
 *   past QUEUE_TRACK_MAX of a kind the event is dropped (not appended,
 *   not counted).  So the counts always agree with the events they count,
 *   and a delivery is unique at most once per kind whatever the number of
 *   requests.  queue_track_counts() reads the 't' record (zeros when
 *   there is none: an untracked campaign, or a spool from before).
 *
 * DIAGNOSTICS
 *   LMDB failures of the transaction (the group is retried or fails as a
 *   whole); QUEUE_ECORRUPT for a counts record that does not decode.
 */
#include <string.h>

#include "campaign_int.h"
#include "queue_track.h"
#include "track_int.h"

#define TRACK_LEN (1 + 4 * 8)

/* Decode a 't' record into k. */
static int counts_decode(const MDB_val *v, struct queue_track_counts *k)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    if (qrec_r_u8(&r) != CAMP_FMT)
        return QUEUE_ECORRUPT;
    k->opens = qrec_r_u64(&r);
    k->unique_opens = qrec_r_u64(&r);
    k->clicks = qrec_r_u64(&r);
    k->unique_clicks = qrec_r_u64(&r);
    return qrec_r_done(&r) ? 0 : QUEUE_ECORRUPT;
}

#define MARK_LEN (1 + 2 + 2)

/* Check a 't' or 'T' record of the campaigns database (rules.c). */
const char *qtrack_rule(const MDB_val *k, const MDB_val *v)
{
    const unsigned char *kp = k->mv_data, *vp = v->mv_data;
    struct queue_track_counts c;
    if (k->mv_size == 9 && kp[0] == 't')
        return counts_decode(v, &c) ? "tracking counts do not decode" : NULL;
    if (k->mv_size == 17 && kp[0] == 'T')
        return v->mv_size == MARK_LEN && vp[0] == CAMP_FMT &&
               (vp[1] | vp[2] | vp[3] | vp[4])
               ? NULL : "tracking mark does not decode";
    return "unknown key";
}

int qtrack_count(struct wctx *w, const struct queue_event *ev, bool *keep)
{
    unsigned char key[17], mark[MARK_LEN] = { CAMP_FMT }, buf[TRACK_LEN];
    struct queue_track_counts k = { 0 };
    bool open = ev->type == QUEUE_EV_OPENED;
    MDB_dbi db = w->q->dbi[DB_CAMPAIGNS];
    int rc;
    *keep = true;
    if (!ev->campaign || !ev->delivery || w->q->absent[DB_CAMPAIGNS] ||
        (ev->type != QUEUE_EV_OPENED && ev->type != QUEUE_EV_CLICKED))
        return 0;
    key[0] = 'T';
    be64_put(key + 1, ev->campaign);
    be64_put(key + 9, ev->delivery);
    MDB_val mk = { 17, key }, v;
    if ((rc = mdb_get(w->txn, db, &mk, &v)) == 0 && v.mv_size == MARK_LEN)
        memcpy(mark, v.mv_data, MARK_LEN);
    else if (rc && rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    unsigned char *n = mark + (open ? 1 : 3);   /* u16, big-endian */
    unsigned seen = (unsigned)n[0] << 8 | n[1];
    if (seen >= QUEUE_TRACK_MAX) {
        *keep = false;
        return 0;
    }
    seen++;
    n[0] = (unsigned char)(seen >> 8);
    n[1] = (unsigned char)seen;
    v = (MDB_val){ MARK_LEN, mark };
    if ((rc = mdb_put(w->txn, db, &mk, &v, 0)))
        return wctx_fail(w, rc);
    MDB_val ck = camp_key(key, 't', ev->campaign);
    if ((rc = mdb_get(w->txn, db, &ck, &v)) == 0)
        counts_decode(&v, &k);     /* a bad record starts again at 0 */
    else if (rc != MDB_NOTFOUND)
        return wctx_fail(w, rc);
    if (open) {
        k.opens++;
        k.unique_opens += seen == 1;
    } else {
        k.clicks++;
        k.unique_clicks += seen == 1;
    }
    struct rec_w rw = { .p = buf, .cap = sizeof buf };
    qrec_w_u8(&rw, CAMP_FMT);
    qrec_w_u64(&rw, k.opens);
    qrec_w_u64(&rw, k.unique_opens);
    qrec_w_u64(&rw, k.clicks);
    qrec_w_u64(&rw, k.unique_clicks);
    v = (MDB_val){ rw.len, buf };
    ck = camp_key(key, 't', ev->campaign);
    if ((rc = mdb_put(w->txn, db, &ck, &v, 0)))
        return wctx_fail(w, rc);
    return 0;
}

int queue_track_counts(struct queue *q, uint64_t campaign,
                       struct queue_track_counts *out)
{
    unsigned char key[9];
    MDB_txn *txn;
    memset(out, 0, sizeof *out);
    if (q->absent[DB_CAMPAIGNS])
        return 0;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    MDB_val k = camp_key(key, 't', campaign), v;
    int rc = mdb_get(txn, q->dbi[DB_CAMPAIGNS], &k, &v);
    if (rc == 0)
        err = counts_decode(&v, out);
    else if (rc != MDB_NOTFOUND)
        err = queue_err_mdb(rc);
    queue_read_end(q, txn);
    return err;
}
