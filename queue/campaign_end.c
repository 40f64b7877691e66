/*
 * campaign_end.c - when a campaign finished: the time of its last
 * terminal event, recorded as it commits (campaign_int.h).
 *
 * DESCRIPTION
 *   The writer's counter flush (counters.c) calls
 *   qcampaign_queue_emptied() when a transaction took the campaign's
 *   queued count down to 0: the recipients that left the queue in it
 *   reached their terminal events (delivered, bounced, expired,
 *   suppressed, cancelled) at this transaction's time, which is also the
 *   time of those events.  The time goes into the campaign's status
 *   record as "finished"; a later emptying (more recipients queued by a
 *   send still running, then ended) moves it on.  While the campaign is
 *   sending the field is only that mark; once the campaign is done
 *   (queue_campaign_settle, campaign_send.c) it is the finish time
 *   shown.  So `campaign show` says when the last recipient ended, not
 *   when someone first looked after it had.
 *
 *   A spool written before this (a campaign whose queue emptied with no
 *   mark) gets the time from the event log instead:
 *   qcampaign_last_end_scan() reads the log backwards for the campaign's
 *   newest terminal event, at most CAMP_END_SCAN_MAX events, so a huge
 *   log costs a bounded read; past that the settle's own time stands.
 *
 * DIAGNOSTICS
 *   A campaign without a status record is left alone (the flush goes on);
 *   LMDB failures as raw codes to the writer, which aborts the group.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_int.h"

#define CAMP_END_SCAN_MAX 200000

int qcampaign_queue_emptied(struct wctx *w, uint64_t id)
{
    unsigned char key[9];
    MDB_val k = camp_key(key, 'p', id), v;
    struct queue_campaign c;
    if (w->q->absent[DB_CAMPAIGNS])
        return 0;
    int rc = mdb_get(w->txn, w->q->dbi[DB_CAMPAIGNS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return wctx_fail(w, rc);
    memset(&c, 0, sizeof c);
    c.id = id;
    if (qcampaign_status_decode(&v, &c))
        return 0;   /* damaged: `spool check` reports it, delivery goes on */
    int64_t t = w->now_ms / 1000;   /* the second of its events' time_ms */
    if (c.finished == t)
        return 0;
    c.finished = t;
    if ((rc = qcampaign_status_put(w->q, w->txn, &c)))
        return wctx_fail(w, rc);
    return 0;
}

int64_t qcampaign_last_end_scan(struct queue *q, MDB_txn *txn, uint64_t id)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t t = 0;
    struct queue_event *ev;
    if (q->absent[DB_EVENTS] || !(ev = malloc(sizeof *ev)))
        return 0;
    if (mdb_cursor_open(txn, q->dbi[DB_EVENTS], &cur)) {
        free(ev);
        return 0;
    }
    unsigned n = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
         rc == 0 && n < CAMP_END_SCAN_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV), n++) {
        if (k.mv_size != 8 || qevent_decode(&v, be64_get(k.mv_data), ev))
            continue;
        if (ev->campaign == id && ev->delivery &&
            QUEUE_EV_TERMINAL(ev->type)) {
            t = ev->time_ms / 1000;
            break;
        }
    }
    mdb_cursor_close(cur);
    free(ev);
    return t;
}

int64_t qcampaign_finish_time(const struct queue_campaign *c, int64_t scanned,
                              int64_t now)
{
    int64_t t = c->finished ? c->finished : scanned ? scanned : now;
    if (t > now)
        t = now;
    if (c->started && t < c->started)
        t = c->started;
    return t;
}
