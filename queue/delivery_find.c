/*
 * delivery_find.c - find a campaign's delivery by recipient, for feedback
 * reports that name the campaign (Feedback-ID) but carry no delivery id.
 *
 * DESCRIPTION
 *   There is no (campaign, recipient) index: the lookup walks the
 *   deliveries database in one read transaction, newest first, and stops
 *   at the first match or after `max` rows.  It is meant for the rare
 *   report that has neither a VERP return path nor a sluice Message-ID.
 *
 * DIAGNOSTICS
 *   QUEUE_ENOTFOUND when no delivery of the campaign has that recipient
 *   within the rows looked at; QUEUE_ECORRUPT for a record that does not
 *   decode; -EINVAL for an empty recipient.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "queue_campaign.h"
#include "queue_int.h"

int queue_find_campaign_delivery(struct queue *q, uint64_t campaign,
                                 const char *rcpt, uint64_t max,
                                 struct queue_delivery *d)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t seen = 0;
    int err, rc;
    if (!rcpt || !*rcpt || strlen(rcpt) > QUEUE_MAX_RCPT)
        return -EINVAL;
    if ((err = queue_read_begin(q, &txn)))
        return err;
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_DELIVERIES], &cur))) {
        queue_read_end(q, txn);
        return queue_err_mdb(rc);
    }
    err = QUEUE_ENOTFOUND;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 &&
         (!max || seen < max); rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        seen++;
        if (k.mv_size != 8)
            continue;
        int e = qdelivery_decode(&v, be64_get(k.mv_data), d);
        if (e) {
            err = e;
            break;
        }
        if (d->campaign == campaign && !strcasecmp(d->rcpt, rcpt)) {
            err = 0;
            break;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        err = queue_err_mdb(rc);
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    return err;
}
