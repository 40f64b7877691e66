/*
 * note.c - appending events: the one append every event takes, and the
 * informational events (complaint, unsubscribed, reception, incident)
 * that tell about a delivery without changing it.
 *
 * DESCRIPTION
 *   qevent_append() gives an event the next seq of the writer's
 *   transaction and the transaction's time and appends it (MDB_APPEND:
 *   seqs only grow).  outcome.c appends the terminal and deferred events
 *   through it, the rest of this file the informational ones:
 *
 *   queue_record_note() is one OP_NOTE operation: the event of a note
 *     about a delivery takes the delivery's campaign, account and
 *     recipient from its row, in the same transaction; a note without a
 *     delivery (an unsubscribe known by campaign and contact) stores them
 *     as given.  The delivery row is not touched: no state, counter or
 *     `prev` link changes, so `sluice` history and the checks see the
 *     delivery as before.
 *   qnote_reception() appends the reception event of a message the
 *     listeners accepted, in the commit that stores the message (one
 *     event per message, not per recipient: a 1,000-recipient message
 *     costs one append more, not a thousand).
 *
 * DIAGNOSTICS
 *   queue_record_note(): -EINVAL for a type that is not informational or
 *   a note without a delivery and without a valid recipient,
 *   QUEUE_ENOTFOUND for an unknown delivery (nothing written), else the
 *   writer's failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* Append ev with the next seq and the txn's time (queue_int.h). */
int qevent_append(struct wctx *w, struct queue_event *ev)
{
    unsigned char ebuf[EVENT_FIXED + QUEUE_MAX_ENHANCED + QUEUE_MAX_MX +
                       QUEUE_MAX_RCPT + QUEUE_MAX_REPLY];
    unsigned char ekey[8];
    int rc;
    ev->seq = w->next_event++;
    ev->time_ms = w->now_ms;
    be64_put(ekey, ev->seq);
    MDB_val ek = { 8, ekey }, evv = { qevent_encode(ebuf, sizeof ebuf, ev),
                                      ebuf };
    if (!w->cur[DB_EVENTS] &&
        (rc = mdb_cursor_open(w->txn, w->q->dbi[DB_EVENTS],
                              &w->cur[DB_EVENTS])))
        return wctx_fail(w, rc);
    if ((rc = mdb_cursor_put(w->cur[DB_EVENTS], &ek, &evv, MDB_APPEND)) ==
        MDB_KEYEXIST)
        rc = mdb_cursor_put(w->cur[DB_EVENTS], &ek, &evv, 0);
    if (rc)
        return wctx_fail(w, rc);
    /* the time series count it in the same transaction (series.c) */
    return series_event(w, ev);
}

/* The reception event of message op, naming its first delivery. */
int qnote_reception(struct wctx *w, const struct queue_op *op,
                    uint64_t first_delivery, const char *rcpt)
{
    struct queue_event ev = {
        .type = QUEUE_EV_RECEPTION, .delivery = first_delivery,
        .account = op->account,
    };
    size_t n = strnlen(rcpt, QUEUE_MAX_RCPT);
    memcpy(ev.rcpt, rcpt, n);
    snprintf(ev.text, sizeof ev.text, "%s: %zu recipient%s", op->via, op->n,
             op->n == 1 ? "" : "s");
    return qevent_append(w, &ev);
}

/* Writer: append the note's event, with its delivery's fields. */
int queue_op_apply_note(struct wctx *w, struct queue_op *op)
{
    const struct op_outcome *o = &op->outcomes[0];
    struct queue_event ev = {
        .type = o->type, .delivery = o->delivery,
        .campaign = op->campaign, .account = op->account,
    };
    uint64_t ref = 0;
    if (o->delivery) {
        unsigned char key[8];
        struct queue_delivery d;
        MDB_val k = { 8, key }, v;
        be64_put(key, o->delivery);
        int rc = mdb_get(w->txn, w->q->dbi[DB_DELIVERIES], &k, &v);
        if (rc == MDB_NOTFOUND) {
            op->status = QUEUE_ENOTFOUND;
            return 0;
        }
        if (rc)
            return wctx_fail(w, rc);
        if ((op->status = qdelivery_decode(&v, o->delivery, &d)))
            return 0;
        ev.campaign = d.campaign;
        ev.account = d.account;
        ref = d.ref;
        memcpy(ev.rcpt, d.rcpt, sizeof ev.rcpt);
    } else {
        const struct op_rcpt *r = &op->rcpts[0];
        memcpy(ev.rcpt, op->arena + r->off, r->len);
    }
    memcpy(ev.text, op->arena + o->text_off, o->text_len);
    struct series_hint hint = { .delivery = o->delivery, .ref = ref };
    w->series_hint = o->delivery ? &hint : NULL;
    int err = qevent_append(w, &ev);
    w->series_hint = NULL;
    return err;
}

/* Check the note, copy it into an OP_NOTE and wait for its commit. */
int queue_record_note(struct queue *q, const struct queue_note *n)
{
    if (q->readonly)
        return -EROFS;
    if (!QUEUE_EV_INFO(n->type) ||
        (!n->delivery && (!n->rcpt || queue_check_rcpt(n->rcpt))))
        return -EINVAL;
    size_t rl = n->delivery ? 0 : strlen(n->rcpt);
    size_t tl = n->text ? strnlen(n->text, QUEUE_MAX_REPLY) : 0;
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->kind = OP_NOTE;
    op->n = 1;
    op->weight = 1;
    op->campaign = n->campaign;
    op->account = n->account;
    if (!(op->outcomes = calloc(1, sizeof *op->outcomes)) ||
        !(op->rcpts = calloc(1, sizeof *op->rcpts)) ||
        !(op->arena = malloc(rl + tl + 1))) {
        queue_op_free(op);
        return -ENOMEM;
    }
    op->outcomes[0].type = (uint8_t)n->type;
    op->outcomes[0].delivery = n->delivery;
    memcpy(op->arena, n->text ? n->text : "", tl);
    op->outcomes[0].text_off = 0;
    op->outcomes[0].text_len = (uint16_t)tl;
    memcpy(op->arena + tl, n->rcpt ? n->rcpt : "", rl);
    op->rcpts[0].off = (uint32_t)tl;
    op->rcpts[0].len = (uint16_t)rl;   /* <= QUEUE_MAX_RCPT: checked */
    op->arena_len = rl + tl;
    return sync_submit_wait(q, op);
}
