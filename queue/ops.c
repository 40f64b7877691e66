/*
 * ops.c - building write operations and applying the enqueue ones.
 *
 * DESCRIPTION
 *   queue_submit_*() check their input, copy it into one allocation owned by
 *   the operation and hand it to the writer.  Inside the writer's
 *   transaction, an injected message is stored once with a reference count,
 *   and each recipient becomes a delivery row plus a ready-index entry due
 *   now.  Campaign recipients carry the campaign and contact instead of a
 *   message: the engine renders them at send time.
 *
 *   Delivery ids grow monotonically, so rows are appended (MDB_APPEND) and
 *   pages are filled, which keeps a queued recipient near 100 bytes.
 *
 *   A campaign batch may be due later (queue_submit_campaign_at, a
 *   scheduled campaign): its ready entries sort after everything due
 *   sooner, claims leave them alone until then, and the maximum age of
 *   such a delivery counts from its first due time ("created").  A send
 *   batch (campaign_send.c) first moves the campaign's cursor in the same
 *   transaction.
 *
 * DIAGNOSTICS
 *   -EINVAL for an invalid recipient or empty input (queue_last_detail()
 *   says which), QUEUE_ETOOBIG for a message over QUEUE_MAX_MESSAGE,
 *   -ENOMEM.  Nothing is queued when submission fails.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

void queue_op_free(struct queue_op *op)
{
    if (!op)
        return;
    free(op->rcpts);
    free(op->outcomes);
    free(op->arena);
    free(op);
}

/* Allocate an op with room for n recipients and an arena of alen bytes. */
static struct queue_op *op_new(enum op_kind kind, size_t n, size_t alen)
{
    struct queue_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->kind = kind;
    op->n = n;
    if ((n && !(op->rcpts = calloc(n, sizeof *op->rcpts))) ||
        !(op->arena = malloc(alen ? alen : 1))) {
        queue_op_free(op);
        return NULL;
    }
    return op;
}

/* Copy a checked recipient into the arena, lowercasing its domain. */
static void copy_rcpt(struct queue_op *op, size_t i, uint64_t contact,
                      const char *rcpt)
{
    size_t len = strlen(rcpt);
    const char *at = strrchr(rcpt, '@');
    char *dst = op->arena + op->arena_len;
    memcpy(dst, rcpt, len);
    for (size_t k = (size_t)(at - rcpt) + 1; k < len; k++)
        dst[k] = (char)tolower((unsigned char)dst[k]);
    op->rcpts[i].contact = contact;
    op->rcpts[i].off = (uint32_t)op->arena_len;
    op->rcpts[i].len = (uint16_t)len;
    op->rcpts[i].at = (uint16_t)(at - rcpt);
    op->arena_len += len;
}

int queue_op_submit(struct queue *q, struct queue_op *op,
                    struct queue_completer *cmp, queue_done_cb cb, void *arg)
{
    op->cb = cb;
    op->arg = arg;
    op->cmp = cmp;
    int err = writer_submit(q, op);
    if (err)
        queue_op_free(op);
    return err;
}

/* The OP_MESSAGE of queue_submit_message(), checked; via "" or the
 * listener's name for a reception event. */
static int message_op_new(struct queue_op **out, uint32_t account,
                          const char *from, const char *const *rcpts,
                          size_t nrcpt, const void *msg, size_t len,
                          const char *via)
{
    size_t alen, flen = from ? strlen(from) : 0, vlen = strlen(via);
    *out = NULL;
    if (!nrcpt || !msg) {
        queue_set_detail("a message needs recipients and content");
        return -EINVAL;
    }
    if (len > QUEUE_MAX_MESSAGE)
        return QUEUE_ETOOBIG;
    if (flen > QUEUE_MAX_RCPT || (flen && queue_check_rcpt(from))) {
        queue_set_detail("invalid sender address");
        return -EINVAL;
    }
    if (vlen >= sizeof ((struct queue_op *)0)->via ||
        strspn(via, "abcdefghijklmnopqrstuvwxyz") != vlen) {
        queue_set_detail("invalid listener name for a reception event");
        return -EINVAL;
    }
    alen = flen + len;
    for (size_t i = 0; i < nrcpt; i++) {
        if (queue_check_rcpt(rcpts[i])) {
            queue_set_detail("invalid recipient %zu", i + 1);
            return -EINVAL;
        }
        alen += strlen(rcpts[i]);
    }
    struct queue_op *op = op_new(OP_MESSAGE, nrcpt, alen);
    if (!op)
        return -ENOMEM;
    op->account = account;
    op->weight = (unsigned)(nrcpt < 65536 ? nrcpt : 65536);
    memcpy(op->via, via, vlen + 1);
    memcpy(op->arena, from ? from : "", flen);
    op->from_off = 0;
    op->from_len = (uint32_t)flen;
    op->arena_len = flen;
    for (size_t i = 0; i < nrcpt; i++)
        copy_rcpt(op, i, 0, rcpts[i]);
    op->msg_off = (uint32_t)op->arena_len;
    op->msg_len = len;
    memcpy(op->arena + op->arena_len, msg, len);
    op->arena_len += len;
    *out = op;
    return 0;
}

int queue_submit_message(struct queue *q, uint32_t account, const char *from,
                         const char *const *rcpts, size_t nrcpt,
                         const void *msg, size_t len,
                         struct queue_completer *cmp, queue_done_cb cb,
                         void *arg)
{
    struct queue_op *op;
    int err = message_op_new(&op, account, from, rcpts, nrcpt, msg, len, "");
    if (err)
        return err;
    return queue_op_submit(q, op, cmp, cb, arg);
}

/* queue_submit_message() with a reception event (queue.h). */
int queue_submit_message_via(struct queue *q, uint32_t account,
                             const char *from, const char *const *rcpts,
                             size_t nrcpt, const void *msg, size_t len,
                             const char *via, struct queue_completer *cmp,
                             queue_done_cb cb, void *arg)
{
    struct queue_op *op;
    if (!via || !via[0]) {
        queue_set_detail("a reception event needs the listener's name");
        return -EINVAL;
    }
    int err = message_op_new(&op, account, from, rcpts, nrcpt, msg, len, via);
    if (err)
        return err;
    return queue_op_submit(q, op, cmp, cb, arg);
}

int qcampaign_op_new(struct queue_op **out, uint32_t account,
                     uint64_t campaign, const struct queue_campaign_rcpt *rcpts,
                     size_t n, bool allow_empty)
{
    size_t alen = 0;
    *out = NULL;
    if ((!n && !allow_empty) || !campaign) {
        queue_set_detail("a campaign batch needs a campaign id and recipients");
        return -EINVAL;
    }
    if (n > UINT32_MAX / 2)
        return QUEUE_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (queue_check_rcpt(rcpts[i].rcpt)) {
            queue_set_detail("invalid recipient %zu", i + 1);
            return -EINVAL;
        }
        alen += strlen(rcpts[i].rcpt);
    }
    if (alen > UINT32_MAX)
        return QUEUE_ETOOBIG;
    struct queue_op *op = op_new(OP_CAMPAIGN, n, alen);
    if (!op)
        return -ENOMEM;
    op->account = account;
    op->campaign = campaign;
    op->weight = n == 0 ? 1 : (unsigned)(n < 1u << 30 ? n : 1u << 30);
    for (size_t i = 0; i < n; i++)
        copy_rcpt(op, i, rcpts[i].contact, rcpts[i].rcpt);
    *out = op;
    return 0;
}

int queue_submit_campaign(struct queue *q, uint32_t account,
                          uint64_t campaign,
                          const struct queue_campaign_rcpt *rcpts, size_t n,
                          struct queue_completer *cmp, queue_done_cb cb,
                          void *arg)
{
    return queue_submit_campaign_at(q, account, campaign, rcpts, n, 0, cmp,
                                    cb, arg);
}

int queue_submit_campaign_at(struct queue *q, uint32_t account,
                             uint64_t campaign,
                             const struct queue_campaign_rcpt *rcpts,
                             size_t n, int64_t due,
                             struct queue_completer *cmp, queue_done_cb cb,
                             void *arg)
{
    struct queue_op *op;
    int err = qcampaign_op_new(&op, account, campaign, rcpts, n, false);
    if (err)
        return err;
    op->due = due;
    return queue_op_submit(q, op, cmp, cb, arg);
}

/* Put with MDB_APPEND when the key sorts last, else an ordinary put. */
static int put_append(struct wctx *w, int db, MDB_val *k, MDB_val *v)
{
    int rc;
    if (!w->cur[db] && (rc = mdb_cursor_open(w->txn, w->q->dbi[db],
                                              &w->cur[db])))
        return rc;
    rc = mdb_cursor_put(w->cur[db], k, v, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_cursor_put(w->cur[db], k, v, 0);
    return rc;
}

/* Enqueue one delivery first due at `due` (now when not ahead); its
 * maximum age counts from then. */
static int enqueue_at(struct wctx *w, uint32_t account, uint64_t campaign,
                      uint64_t ref, const char *rcpt, size_t len, size_t at,
                      int64_t due, uint64_t *id)
{
    if (due < w->now)
        due = w->now;
    struct queue_delivery d = {
        .campaign = campaign, .ref = ref, .account = account,
        .state = QUEUE_ST_QUEUED, .created = due,
        .next_attempt = due,
    };
    unsigned char rec[DELIVERY_REC_MAX], key[8], rkey[16];
    int rc;

    memcpy(d.rcpt, rcpt, len);
    d.rcpt[len] = 0;
    *id = w->next_delivery++;
    be64_put(key, *id);
    MDB_val k = { 8, key }, v = { qdelivery_encode(rec, &d), rec };
    if ((rc = put_append(w, DB_DELIVERIES, &k, &v)))
        return wctx_fail(w, rc);
    be64_put(rkey, (uint64_t)due);
    be64_put(rkey + 8, *id);
    MDB_val rk = { 16, rkey }, rv = { 0, NULL };
    if ((rc = put_append(w, DB_READY, &rk, &rv)))
        return wctx_fail(w, rc);
    int err = counters_add(w, account, campaign, rcpt + at + 1, len - at - 1,
                           CF_QUEUED, 1);
    if (!err)
        err = series_queued(w, account, campaign, ref);
    if (!err)
        err = counters_add(w, account, campaign, rcpt + at + 1, len - at - 1,
                           CF_ENQUEUED, 1);
    return err;
}

int qenqueue_delivery(struct wctx *w, uint32_t account, uint64_t campaign,
                      uint64_t ref, const char *rcpt, size_t len, size_t at,
                      uint64_t *id)
{
    return enqueue_at(w, account, campaign, ref, rcpt, len, at, w->now, id);
}

int queue_op_apply_message(struct wctx *w, struct queue_op *op)
{
    unsigned char key[8], refs[4];
    uint64_t id = w->next_message++;
    int rc;

    be64_put(key, id);
    MDB_val k = { 8, key }, v = { 2 + op->from_len + op->msg_len, NULL };
    if (!w->cur[DB_MESSAGES] &&
        (rc = mdb_cursor_open(w->txn, w->q->dbi[DB_MESSAGES],
                              &w->cur[DB_MESSAGES])))
        return wctx_fail(w, rc);
    /* reserve the value and write it in place: no extra copy */
    if ((rc = mdb_cursor_put(w->cur[DB_MESSAGES], &k, &v,
                             MDB_APPEND | MDB_RESERVE)) == MDB_KEYEXIST)
        rc = mdb_cursor_put(w->cur[DB_MESSAGES], &k, &v, MDB_RESERVE);
    if (rc)
        return wctx_fail(w, rc);
    unsigned char *p = v.mv_data;
    p[0] = (unsigned char)(op->from_len >> 8);
    p[1] = (unsigned char)op->from_len;
    memcpy(p + 2, op->arena + op->from_off, op->from_len);
    memcpy(p + 2 + op->from_len, op->arena + op->msg_off, op->msg_len);

    be32_put(refs, (uint32_t)op->n);
    MDB_val rv = { 4, refs };
    if ((rc = mdb_put(w->txn, w->q->dbi[DB_MSGREFS], &k, &rv, 0)))
        return wctx_fail(w, rc);
    for (size_t i = 0; i < op->n; i++) {
        uint64_t did;
        const struct op_rcpt *r = &op->rcpts[i];
        int err = qenqueue_delivery(w, op->account, 0, id, op->arena + r->off,
                                    r->len, r->at, &did);
        if (err)
            return err;
        if (i == 0)
            op->first_id = did;
    }
    op->msg_id = id;
    /* a listener's message: its reception event in the same commit */
    if (op->via[0]) {
        const struct op_rcpt *r = &op->rcpts[0];
        char rcpt[QUEUE_MAX_RCPT + 1];
        memcpy(rcpt, op->arena + r->off, r->len);
        rcpt[r->len] = 0;
        return qnote_reception(w, op, op->first_id, rcpt);
    }
    return 0;
}

int queue_op_apply_campaign(struct wctx *w, struct queue_op *op)
{
    if (op->send) {
        int err = qcampaign_send_step(w, op);
        if (err || op->status)
            return err;
    }
    for (size_t i = 0; i < op->n; i++) {
        uint64_t did;
        const struct op_rcpt *r = &op->rcpts[i];
        int err = enqueue_at(w, op->account, op->campaign, r->contact,
                             op->arena + r->off, r->len, r->at, op->due,
                             &did);
        if (err)
            return err;
        if (i == 0)
            op->first_id = did;
    }
    return 0;
}
