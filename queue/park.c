/*
 * park.c - campaign mail parked while its campaign is paused.
 *
 * DESCRIPTION
 *   A paused campaign's deliveries are postponed by the engine to
 *   queue_park_time(campaign): a ready-index time far beyond any real date
 *   that also carries the campaign id, so each campaign's parked mail lies
 *   in one key range of the ready index (time, delivery).  The claim scan
 *   never reaches it.  When the campaign is resumed (its control removed)
 *   or cancelled, the same write transaction moves every parked entry back
 *   to now (unpark_campaign), so the engine sees it on its next claim --
 *   within a second, however large the campaign.  An engine that has not
 *   seen the resume yet may still ask to park mail it just claimed: the
 *   writer parks only while the campaign's pause control exists
 *   (park_still_wanted), else the mail is due now.
 *
 * DIAGNOSTICS
 *   LMDB failures end the write transaction like any other write (the
 *   writer retries after growing the map); parked entries are moved in the
 *   same transaction as the control, so a resume is all or nothing.
 */
#include <stdio.h>
#include <string.h>

#include "queue_int.h"

#define PARK_BASE 0x7e00000000000000ull
#define PARK_MASK 0x00ffffffffffffffull

int64_t queue_park_time(uint64_t campaign)
{
    return (int64_t)(PARK_BASE | (campaign & PARK_MASK));
}

bool park_still_wanted(struct queue *q, MDB_txn *txn, uint64_t campaign)
{
    unsigned char key[2 + 24];
    key[0] = 'p';
    key[1] = QUEUE_CTL_CAMPAIGN;
    int n = snprintf((char *)key + 2, sizeof key - 2, "%llu",
                     (unsigned long long)campaign);
    MDB_val k = { 2 + (size_t)n, key }, v;
    return mdb_get(txn, q->dbi[DB_CONTROLS], &k, &v) == 0;
}

int unpark_campaign(struct queue *q, MDB_txn *txn, int64_t now,
                    uint64_t campaign, uint64_t *moved)
{
    unsigned char key[16], rec[DELIVERY_FIXED + QUEUE_MAX_RCPT];
    uint64_t at = (uint64_t)queue_park_time(campaign);
    MDB_cursor *cur;
    MDB_val k = { 16, key }, v;
    int rc;
    *moved = 0;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur)))
        return rc;
    be64_put(key, at);
    be64_put(key + 8, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) {
        if (k.mv_size != 16 || be64_get(k.mv_data) != at)
            break;
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        /* the delivery's next attempt is the ready key the writer looks
         * for when its outcome comes: both move to now */
        unsigned char dk[8];
        be64_put(dk, id);
        MDB_val dkv = { 8, dk }, dv;
        struct queue_delivery d;
        rc = mdb_get(txn, q->dbi[DB_DELIVERIES], &dkv, &dv);
        if (rc == MDB_NOTFOUND || (!rc && delivery_decode(&dv, id, &d))) {
            rc = 0;
            continue; /* an index entry without its delivery: dropped */
        }
        if (rc)
            break;
        d.next_attempt = now;
        MDB_val nv = { delivery_encode(rec, &d), rec };
        if ((rc = mdb_put(txn, q->dbi[DB_DELIVERIES], &dkv, &nv, 0)))
            break;
        unsigned char nk[16];
        be64_put(nk, (uint64_t)now);
        be64_put(nk + 8, id);
        MDB_val nkv = { 16, nk }, empty = { 0, NULL };
        if ((rc = mdb_put(txn, q->dbi[DB_READY], &nkv, &empty, 0)))
            break;
        (*moved)++;
        be64_put(key, at);
        be64_put(key + 8, id);
        k = (MDB_val){ 16, key };
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
