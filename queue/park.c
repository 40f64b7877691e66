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
 *   to now (qpark_unpark_campaign), so the engine sees it on its next claim --
 *   within a second, however large the campaign.  An engine that has not
 *   seen the resume yet may still ask to park mail it just claimed: the
 *   writer parks only while the campaign's pause control exists
 *   (qpark_still_wanted), else the mail is due now.
 *
 *   A cancel also moves to now the campaign's mail that waits for a later
 *   time without being parked: recipients of a campaign scheduled ahead
 *   (queued due at the schedule), deferrals waiting for their retry and
 *   mail held back for an account cap (qpark_hasten_campaign).  The ready index
 *   has no campaign in its key, so this reads the delivery of every entry
 *   due later than now and before the parked range (one lookup each, in
 *   the cancel's transaction); the campaign's own entries move, the others
 *   stay.  So every queued row of a cancelled campaign is due at once and
 *   the engine ends it ("campaign cancelled") on its next claim, instead
 *   of hours later or never.
 *
 *   The mail of a disabled account (or of a sub-account whose master is
 *   disabled) is parked the same way at queue_account_park_time(account),
 *   a range of its own above the campaigns'.  Enabling an account moves,
 *   in the same transaction (qpark_unpark_accounts), the parked mail of every
 *   account no longer held back to now; the writer parks an account's
 *   mail only while qaccount_held() says so, else it is due now.  So an
 *   enable lets the mail go on the engine's next claim, and a disabled
 *   account's backlog is never claimed again and again meanwhile.
 *
 *   An incident's probe (engine/incident_probe.c) moves one parked entry,
 *   the first whose recipient is at the domain the probe is for, back to
 *   now (qpark_unpark_one): the engine lets that one claim through the
 *   pause, and the rest stays parked.
 *
 * DIAGNOSTICS
 *   LMDB failures end the write transaction like any other write (the
 *   writer retries after growing the map); parked entries are moved in the
 *   same transaction as the control, so a resume is all or nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "queue_int.h"

#define PARK_BASE 0x7e00000000000000ull
#define PARK_MASK 0x00ffffffffffffffull
/* accounts: above every campaign's time, one time per account */
#define ACCOUNT_PARK_BASE 0x7f00000000000000ull
#define ACCOUNT_PARK_END (ACCOUNT_PARK_BASE + UINT32_MAX)

int64_t queue_park_time(uint64_t campaign)
{
    return (int64_t)(PARK_BASE | (campaign & PARK_MASK));
}

int64_t queue_account_park_time(uint32_t account)
{
    return (int64_t)(ACCOUNT_PARK_BASE | account);
}

/* Whether campaign's control of kind is set in txn. */
static bool campaign_control(struct queue *q, MDB_txn *txn, int kind,
                             uint64_t campaign)
{
    unsigned char key[2 + 24];
    if (q->absent[DB_CONTROLS])
        return false;
    key[0] = 'p';
    key[1] = (unsigned char)kind;
    int n = snprintf((char *)key + 2, sizeof key - 2, "%llu",
                     (unsigned long long)campaign);
    MDB_val k = { 2 + (size_t)n, key }, v;
    return mdb_get(txn, q->dbi[DB_CONTROLS], &k, &v) == 0;
}

bool qpark_still_wanted(struct queue *q, MDB_txn *txn, uint64_t campaign)
{
    return campaign_control(q, txn, QUEUE_CTL_CAMPAIGN, campaign);
}

bool qcampaign_cancelled(struct queue *q, MDB_txn *txn, uint64_t campaign)
{
    return campaign_control(q, txn, QUEUE_CTL_CANCELLED, campaign);
}

/* Move delivery id's ready entry (its cursor's current key, already
 * deleted by the caller) and its next attempt to now.  0 or an LMDB code. */
int qpark_move_to_now(struct queue *q, MDB_txn *txn, int64_t now,
                      uint64_t id, const struct queue_delivery *d)
{
    unsigned char rec[DELIVERY_REC_MAX], dk[8], nk[16];
    struct queue_delivery nd = *d;
    be64_put(dk, id);
    MDB_val dkv = { 8, dk };
    nd.next_attempt = now;
    MDB_val nv = { qdelivery_encode(rec, &nd), rec };
    int rc = mdb_put(txn, q->dbi[DB_DELIVERIES], &dkv, &nv, 0);
    if (rc)
        return rc;
    be64_put(nk, (uint64_t)now);
    be64_put(nk + 8, id);
    MDB_val nkv = { 16, nk }, empty = { 0, NULL };
    return mdb_put(txn, q->dbi[DB_READY], &nkv, &empty, 0);
}

/* Read delivery id in txn: 0, MDB_NOTFOUND (also for a record that does
 * not decode: the index entry is stale) or an LMDB code. */
static int read_delivery(struct queue *q, MDB_txn *txn, uint64_t id,
                         struct queue_delivery *d)
{
    unsigned char dk[8];
    be64_put(dk, id);
    MDB_val dkv = { 8, dk }, dv;
    int rc = mdb_get(txn, q->dbi[DB_DELIVERIES], &dkv, &dv);
    if (!rc && qdelivery_decode(&dv, id, d))
        rc = MDB_NOTFOUND;
    return rc;
}

/* Move every ready entry due at `at` (a park time) and its delivery's
 * next attempt to now; 0 or an LMDB code. */
static int unpark_at(struct queue *q, MDB_txn *txn, int64_t now, uint64_t at,
                     uint64_t *moved)
{
    unsigned char key[16];
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
        struct queue_delivery d;
        rc = read_delivery(q, txn, id, &d);
        if (!rc && (rc = qpark_move_to_now(q, txn, now, id, &d)))
            break;
        if (rc && rc != MDB_NOTFOUND)
            break;
        if (!rc)
            (*moved)++;
        rc = 0;   /* an index entry without its delivery: dropped */
        be64_put(key, at);
        be64_put(key + 8, id);
        k = (MDB_val){ 16, key };
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int qpark_unpark_campaign(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t campaign, uint64_t *moved)
{
    return unpark_at(q, txn, now, (uint64_t)queue_park_time(campaign), moved);
}

/* Whether d's recipient is at domain (NULL or "": any). */
static bool rcpt_at(const struct queue_delivery *d, const char *domain)
{
    const char *at = strrchr(d->rcpt, '@');
    return !domain || !*domain || (at && !strcasecmp(at + 1, domain));
}

int qpark_unpark_one(struct queue *q, MDB_txn *txn, int64_t now, int64_t at,
                     const char *domain, struct queue_delivery *d)
{
    unsigned char key[16];
    MDB_cursor *cur;
    MDB_val k = { 16, key }, v;
    int rc;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur)))
        return rc;
    be64_put(key, (uint64_t)at);
    be64_put(key + 8, 0);
    size_t seen = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16 || be64_get(k.mv_data) != (uint64_t)at ||
            ++seen > QPARK_PROBE_SCAN) {
            rc = MDB_NOTFOUND;
            break;
        }
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        int r = read_delivery(q, txn, id, d);
        if (r == MDB_NOTFOUND || (!r && (QUEUE_STATE_TERMINAL(d->state) ||
                                         !rcpt_at(d, domain))))
            continue;
        if (r) {
            rc = r;
            break;
        }
        if (!(rc = mdb_cursor_del(cur, 0)))
            rc = qpark_move_to_now(q, txn, now, id, d);
        break;
    }
    mdb_cursor_close(cur);
    return rc;
}

int qpark_unpark_accounts(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t *moved)
{
    unsigned char key[16];
    uint64_t at = ACCOUNT_PARK_BASE;
    int rc = 0;
    *moved = 0;
    while (at <= ACCOUNT_PARK_END) {
        /* the next account with parked mail: the first entry from at */
        MDB_cursor *cur;
        MDB_val k = { 16, key }, v;
        if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur)))
            return rc;
        be64_put(key, at);
        be64_put(key + 8, 0);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        uint64_t due = rc == 0 && k.mv_size == 16 ? be64_get(k.mv_data) : 0;
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND || (!rc && (due < at || due > ACCOUNT_PARK_END)))
            return 0;
        if (rc)
            return rc;
        uint64_t m = 0;
        /* an account still held keeps its mail: skip its range whole */
        if (!qaccount_held(q, txn, (uint32_t)(due - ACCOUNT_PARK_BASE)) &&
            (rc = unpark_at(q, txn, now, due, &m)))
            return rc;
        *moved += m;
        at = due + 1;
    }
    return 0;
}

int qpark_hasten_campaign(struct queue *q, MDB_txn *txn, int64_t now,
                          uint64_t campaign, uint64_t *moved)
{
    unsigned char key[16];
    MDB_cursor *cur;
    MDB_val k = { 16, key }, v;
    int rc;
    *moved = 0;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_READY], &cur)))
        return rc;
    be64_put(key, (uint64_t)now + 1);
    be64_put(key + 8, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;) {
        if (k.mv_size != 16)
            break;
        uint64_t due = be64_get(k.mv_data);
        uint64_t id = be64_get((const unsigned char *)k.mv_data + 8);
        if (due >= PARK_BASE)
            break;   /* parked mail: qpark_unpark_campaign() moves this one's */
        struct queue_delivery d;
        rc = read_delivery(q, txn, id, &d);
        if (rc && rc != MDB_NOTFOUND)
            break;
        if (rc || d.campaign != campaign || QUEUE_STATE_TERMINAL(d.state)) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if ((rc = mdb_cursor_del(cur, 0)) ||
            (rc = qpark_move_to_now(q, txn, now, id, &d)))
            break;
        (*moved)++;
        /* the new entry lies before the scan; go on after this one */
        be64_put(key, due);
        be64_put(key + 8, id);
        k = (MDB_val){ 16, key };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
