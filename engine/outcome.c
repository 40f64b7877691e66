/*
 * outcome.c - the end of every claimed item: its outcome made from the
 * session's word (or the engine's), recorded through the spool's
 * group-commit writer, held while the spool cannot take it, and the item
 * freed once its outcome has committed.
 *
 * DESCRIPTION
 *   outcome_job() turns the recipients of a finished SMTP job into
 *   outcomes (a deferral past max_age expires; replies feed the site's
 *   throttles); engine_record() keeps the items and a copy of their
 *   outcomes and submits them; the completion (on_recorded(), on this
 *   loop) frees the items and has the event log read the committed
 *   events.  A finished job's session counts its record: the completion
 *   (or the drop of a held record) tells it last
 *   (smtp_session_recorded()), so that it holds at most
 *   SMTP_UNRECORDED_MAX delivered jobs unrecorded, the crash window
 *   (smtp_session.h).  A session that waits (it may start nothing, or it
 *   has closed) has the writer commit what is pending at once
 *   (outcome_hurry(), queue_hurry()) rather than at the end of group_ms.
 *   Beyond that session a completion touches nothing but its own items:
 *   what it means for the whole engine (announcing a spool that stopped taking
 *   writes, arming the retry, submitting what is held and kicking every
 *   destination, stopping on a damaged spool) it only notes, and
 *   outcome_tick() does it on the scheduler's next tick (10 ms).
 *
 *   When the spool cannot take the write (its filesystem is full, the map
 *   is at map_max, an I/O error: queue_err_unwritable()), nothing is
 *   dropped and no delivery is made again: the operation is held in memory
 *   with its items, whose deliveries stay claimed.  The engine leaves the
 *   "writable" state for "full" (or "unwritable"): it claims nothing and
 *   starts no SMTP transaction (a session finishes the one in flight; its
 *   outcomes are held too), says so in one stderr line, one
 *   {"type":"spool"} event-log line and status.json.  A timer submits the
 *   oldest held operation alone, after 1 s and then doubling up to 30 s;
 *   when one commits, every held operation is submitted (next tick).  Deliveries go on
 *   only once the spool's filesystem has spool_min_free bytes free again
 *   (checked every second with statvfs): LMDB often finds room for a small
 *   commit among its own free pages on a full disk, and resuming on that
 *   alone would send a few more messages, fill up again and flap.  Then
 *   the spool is writable again: destinations are kicked, one line each
 *   again.  What is held is bounded by max_inflight: every held outcome is
 *   a claimed item.
 *
 *   On SIGTERM the drain goes on trying, every second, until drain_timeout;
 *   then sluiced gives up, says how many outcomes were not recorded and
 *   exits 75.  Those deliveries are due again when sluiced starts and may
 *   be repeated (at-least-once), never lost.
 *
 * DIAGNOSTICS
 *   One stderr line per change of state, never one per failed attempt.
 *   Other failed commits (a damaged record) are reported per operation;
 *   their deliveries stay in the spool and are tried again, up to the
 *   damaged-spool error budget (engine_spool_result: exit 65).  Out of memory
 *   for a record aborts: the outcome would be lost otherwise.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sysexits.h>

#include "classify.h"
#include "engine.h"
#include "metrics.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

/* Items and a copy of their outcomes (strings included) in one block. */
struct record_ctx {
    struct engine *e;
    struct record_ctx *next;   /* in the held list */
    struct smtp_session *sess; /* waits for this record, or NULL */
    bool probe;                /* submitted alone to see if the spool takes it */
    size_t n;
};

static struct item **ctx_items(struct record_ctx *rc)
{
    return (struct item **)(rc + 1);
}

static struct queue_outcome *ctx_outcomes(struct record_ctx *rc)
{
    return (struct queue_outcome *)(ctx_items(rc) + rc->n);
}

static const char *state_name(enum spool_state s)
{
    return s == SPOOL_FULL ? "full"
         : s == SPOOL_UNWRITABLE ? "unwritable" : "writable";
}

const char *engine_spool_state_name(const struct engine *e)
{
    return state_name(e->out.hold.state);
}

/* Let the session whose delivered job rc records go on: its outcome is
 * durable, or will never be.  Last, after rc is freed: the session may
 * start its next transaction or report closed() from here. */
static void let_session_go(struct smtp_session *sess)
{
    if (sess)
        smtp_session_recorded(sess);
}

/* Give the claims of rc back and free it with its items. */
static void drop(struct engine *e, struct record_ctx *rc)
{
    struct item **items = ctx_items(rc);
    struct smtp_session *sess = rc->sess;
    for (size_t i = 0; i < rc->n; i++) {
        queue_release(e->q, items[i]->id);
        engine_item_free(e, items[i]);
    }
    e->out.inflight -= rc->n;
    free(rc);
    let_session_go(sess);
}

static void on_recorded(void *arg, int status, uint64_t first, uint64_t msg);

/* Hand rc to the writer; on a refusal (the spool is closing) its claims go
 * back. */
static void submit(struct engine *e, struct record_ctx *rc)
{
    e->out.pending++;
    int err = queue_submit_outcomes(e->q, ctx_outcomes(rc), rc->n, e->cmp,
                                    on_recorded, rc);
    if (err) {
        fprintf(stderr, "sluiced: cannot submit outcomes: %s\n",
                engine_strerror(err));
        e->out.pending--;
        if (rc->probe)
            e->out.hold.probing = false;
        drop(e, rc);
    }
}

static void on_retry(uv_timer_t *t);

/* Does the spool's filesystem have spool_min_free bytes free?  (Yes when
 * it cannot be asked.) */
static bool room_enough(const struct engine *e)
{
    struct statvfs sv;
    if (!e->cfg.spool_min_free || statvfs(e->cfg.spool, &sv))
        return true;
    return (uint64_t)sv.f_bavail * sv.f_frsize >= e->cfg.spool_min_free;
}

/* Try the spool again after the backoff (at most 1 s while draining), or,
 * with nothing held, look at its free space again in a second. */
static void arm_retry(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    if (h->probing || uv_is_active((uv_handle_t *)&h->timer) ||
        (!h->head && h->state == SPOOL_WRITABLE))
        return;
    uint64_t ms = h->head ? h->backoff_ms : RETRY_FIRST_MS;
    if (engine_draining(e) && ms > RETRY_FIRST_MS)
        ms = RETRY_FIRST_MS;
    h->next_try_ms = engine_now_ms() + ms;
    uv_timer_start(&h->timer, on_retry, ms, 0);
}

/* Keep rc (its items keep their claims) until the spool takes writes;
 * the announcement and the retry timer are left to outcome_tick(). */
static void hold(struct engine *e, struct record_ctx *rc, int status)
{
    struct spool_hold *h = &e->out.hold;
    enum spool_state st = status == QUEUE_EFULL ? SPOOL_FULL
                                                : SPOOL_UNWRITABLE;
    rc->next = NULL;
    if (rc->probe) {           /* the oldest: back in front */
        rc->probe = false;
        h->probing = false;
        rc->next = h->head;
        h->head = rc;
        if (!h->tail)
            h->tail = rc;
        h->backoff_ms = h->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                         : h->backoff_ms * 2;
    } else {
        if (h->tail)
            h->tail->next = rc;
        else
            h->head = rc;
        h->tail = rc;
    }
    h->nops++;
    h->noutcomes += rc->n;
    h->err = status;
    if (h->state == SPOOL_WRITABLE) {
        h->since_ms = engine_now_ms();
        h->backoff_ms = RETRY_FIRST_MS;
        h->tell = true;
        h->tell_state = st;
        h->tell_err = status;
        h->tell_n = h->noutcomes;
    }
    h->state = st;             /* the kind of trouble may change quietly */
    h->arm = true;
}

/* Say once that the spool stopped taking writes (stderr, event log). */
static void tell_held(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    fprintf(stderr, "sluiced: spool %s: %s; holding the outcomes in "
            "memory (%zu now), claiming and new deliveries stop until "
            "it can be written (retrying)\n", e->cfg.spool,
            engine_strerror(h->tell_err), h->tell_n);
    eventlog_spool(e, state_name(h->tell_state),
                   engine_strerror(h->tell_err), h->tell_n, 0);
}

/* Take the oldest held operation off the list. */
static struct record_ctx *pop_held(struct spool_hold *h)
{
    struct record_ctx *rc = h->head;
    h->head = rc->next;
    if (!h->head)
        h->tail = NULL;
    h->nops--;
    h->noutcomes -= rc->n;
    return rc;
}

/* A commit went through: record what is held and let deliveries go on. */
static void writable_again(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    uint64_t took = engine_now_ms() - h->since_ms;
    fprintf(stderr, "sluiced: spool %s is writable again after %.1f s: "
            "recording %zu held outcomes, deliveries resume\n", e->cfg.spool,
            (double)took / 1000, h->noutcomes);
    eventlog_spool(e, "writable", "", h->noutcomes, took);
    h->state = SPOOL_WRITABLE;
    h->err = 0;
    h->backoff_ms = RETRY_FIRST_MS;
    uv_timer_stop(&h->timer);
    while (h->head && h->state == SPOOL_WRITABLE)
        submit(e, pop_held(h));
    dest_kick_waiting(e);
}

/* A commit went through while the spool was not writable: submit what is
 * held, and let deliveries go on once there is room again. */
static void commit_worked(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    while (h->head)
        submit(e, pop_held(h));   /* a failure holds it again (and arms) */
    if (h->state == SPOOL_FULL && !room_enough(e)) {
        h->backoff_ms = RETRY_FIRST_MS;
        arm_retry(e);
        return;
    }
    writable_again(e);
}

/* Backoff over: submit the oldest held operation alone; with nothing
 * held, see whether the filesystem has room again. */
static void on_retry(uv_timer_t *t)
{
    struct engine *e = t->data;
    struct spool_hold *h = &e->out.hold;
    if (h->state == SPOOL_WRITABLE || h->probing || h->worked)
        return; /* (a commit went through: outcome_tick() goes on) */
    if (!h->head) {
        if (h->state != SPOOL_FULL || room_enough(e))
            writable_again(e);
        else
            arm_retry(e);
        return;
    }
    struct record_ctx *rc = pop_held(h);
    rc->probe = true;
    h->probing = true;
    submit(e, rc);
}

/* A commit completed: the items are freed and the event log reads what
 * committed, in that order, each module once.  What reaches the whole
 * engine (announcing a spool that stopped taking writes, submitting what
 * is held and kicking every destination, stopping on a damaged spool) is
 * only noted here and done by outcome_tick(). */
static void on_recorded(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct record_ctx *rc = arg;
    struct engine *e = rc->e;
    struct spool_hold *h = &e->out.hold;
    struct item **items = ctx_items(rc);
    struct smtp_session *sess = rc->sess;
    (void)first;
    (void)msg;
    e->out.pending--;
    if (queue_err_unwritable(status)) {
        hold(e, rc, status);
        return;
    }
    if (status && status != QUEUE_ESTATE)
        fprintf(stderr, "sluiced: recording %zu outcomes failed: %s "
                        "(they will be tried again)\n",
                rc->n, engine_strerror(status));
    if (rc->probe)
        h->probing = false;
    if (h->state != SPOOL_WRITABLE)
        h->worked = true;
    if (!status)
        metrics_committed(e, items, ctx_outcomes(rc), rc->n);
    for (size_t i = 0; i < rc->n; i++)
        engine_item_free(e, items[i]);
    e->out.inflight -= rc->n;
    free(rc);
    int stop = status == QUEUE_ESTATE
               ? 0 : engine_spool_result(e, ENGINE_SPOOL_OUTCOMES, status);
    if (stop)
        e->out.stop = stop;
    /* the event log (and the counts) read the committed events */
    eventlog_committed(e);
    let_session_go(sess);
}

int outcome_tick(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    /* draining: what is held is tried every second, and once the drain is
     * given up dropped, so that the sessions waiting for it close and the
     * drain can end (scheduler.c asks only once no session is left) */
    if (h->head && engine_draining(e))
        outcome_drained(e);
    if (h->tell) {
        h->tell = false;
        tell_held(e);
    }
    if (h->arm) {
        h->arm = false;
        arm_retry(e);
    }
    if (h->worked) {
        h->worked = false;
        if (h->state != SPOOL_WRITABLE)
            commit_worked(e);
    }
    int stop = e->out.stop;
    e->out.stop = 0;
    return stop;
}

void engine_item_free(struct engine *e, struct item *it)
{
    if (!it)
        return;
    accounts_release(e, it);
    body_unref(e, it->body);
    free(it);
}

void outcome_release(struct engine *e, struct item *it)
{
    queue_release(e->q, it->id);
    outcome_forget(e, 1);
    engine_item_free(e, it);
}

static void record(struct engine *e, struct item **items, size_t n,
                   const struct queue_outcome *o, struct smtp_session *sess);

void outcome_job(struct engine *e, struct site *site, struct item **items,
                 struct smtp_rcpt *rcpts, size_t nrcpt, const char *mx,
                 struct smtp_session *sess)
{
    struct queue_outcome o[nrcpt];
    struct item *cut[nrcpt];
    int64_t now = engine_now();
    size_t n = 0, ncut = 0;
    for (size_t i = 0; i < nrcpt; i++) {
        const struct smtp_rcpt *r = &rcpts[i];
        struct item *it = items[i];
        if (engine_drain_aborted(e) && r->local && r->status == RS_TEMPFAIL) {
            /* cut short by shutdown: no attempt recorded, the claim ends
             * with the process and the delivery is due again */
            cut[ncut++] = it;
            continue;
        }
        int type = r->status == RS_DELIVERED ? QUEUE_EV_DELIVERED
                 : r->status == RS_PERMFAIL ? QUEUE_EV_BOUNCED
                 : QUEUE_EV_DEFERRED;
        if (site && (!r->local || r->code))
            site_feedback(site, type == QUEUE_EV_DELIVERED, r->code,
                          r->enhanced, r->text);
        if (site && type != QUEUE_EV_DELIVERED)
            site_count_failure(site, type == QUEUE_EV_BOUNCED);
        if (type == QUEUE_EV_DEFERRED &&
            now >= it->created + e->cfg.max_age)
            type = QUEUE_EV_EXPIRED;
        o[n] = (struct queue_outcome){
            .delivery = r->delivery, .type = type, .code = r->code,
            .enhanced = r->enhanced, .mx = mx, .text = r->text,
            .site = site ? site->name : NULL,
            .category = (uint8_t)(type == QUEUE_EV_BOUNCED ||
                                  type == QUEUE_EV_DEFERRED
                                  ? classify_reply(r->code, r->enhanced, r->text)
                                  : type == QUEUE_EV_EXPIRED
                                  ? QUEUE_CAT_EXPIRED : 0),
        };
        it->attempted = true; /* counts against its daily cap for good */
        items[n] = it;
        n++;
    }
    for (size_t i = 0; i < ncut; i++)
        engine_item_free(e, cut[i]);
    e->out.inflight -= ncut;
    if (n)
        record(e, items, n, o, sess);
    else
        let_session_go(sess);
}


void engine_record(struct engine *e, struct item **items, size_t n,
                   const struct queue_outcome *o)
{
    record(e, items, n, o, NULL);
}

/* engine_record(), and sess (or NULL) waits until the record is durable
 * (or dropped). */
static void record(struct engine *e, struct item **items, size_t n,
                   const struct queue_outcome *o, struct smtp_session *sess)
{
    /* keep items and a copy of the outcomes (strings copied by the queue,
     * but a held outcome is submitted again) */
    size_t strs = 0;
    for (size_t i = 0; i < n; i++)
        strs += (o[i].enhanced ? strlen(o[i].enhanced) + 1 : 0) +
                (o[i].mx ? strlen(o[i].mx) + 1 : 0) +
                (o[i].text ? strlen(o[i].text) + 1 : 0) +
                (o[i].site ? strlen(o[i].site) + 1 : 0);
    struct record_ctx *rc = malloc(sizeof *rc + n * sizeof(struct item *) +
                                   n * sizeof(struct queue_outcome) + strs);
    if (!rc) {
        fprintf(stderr, "sluiced: out of memory recording outcomes\n");
        abort();
    }
    rc->e = e;
    rc->next = NULL;
    rc->sess = sess;
    rc->probe = false;
    rc->n = n;
    struct item **it = ctx_items(rc);
    struct queue_outcome *oc = ctx_outcomes(rc);
    char *sp = (char *)(oc + n);
    for (size_t i = 0; i < n; i++) {
        it[i] = items[i];
        oc[i] = o[i];
#define KEEP(f)                                                   \
        if (o[i].f) {                                             \
            size_t l = strlen(o[i].f) + 1;                        \
            memcpy(sp, o[i].f, l);                                \
            oc[i].f = sp;                                         \
            sp += l;                                              \
        }
        KEEP(enhanced)
        KEEP(mx)
        KEEP(text)
        KEEP(site)
#undef KEEP
    }
    if (e->out.hold.state != SPOOL_WRITABLE) {
        hold(e, rc, e->out.hold.err); /* joins the others; the timer tries */
        return;
    }
    submit(e, rc);
}

void outcome_init(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    h->state = SPOOL_WRITABLE;
    h->backoff_ms = RETRY_FIRST_MS;
    uv_timer_init(e->loop, &h->timer);
    h->timer.data = e;
    uv_unref((uv_handle_t *)&h->timer);
}

bool outcome_drained(struct engine *e)
{
    struct spool_hold *h = &e->out.hold;
    if (!h->head)
        return true;
    if (!engine_drain_aborted(e)) {
        /* draining: try every second, not after a long backoff */
        if (!h->probing && uv_timer_get_due_in(&h->timer) > RETRY_FIRST_MS) {
            uv_timer_stop(&h->timer);
            arm_retry(e);
        }
        return false;
    }
    fprintf(stderr, "sluiced: stopping with %zu outcomes not recorded "
            "(spool %s: %s); their deliveries are due again when sluiced "
            "starts and may be made twice\n", h->noutcomes, e->cfg.spool,
            engine_strerror(h->err));
    while (h->head)
        drop(e, pop_held(h));
    uv_timer_stop(&h->timer);
    engine_set_exit(e, EX_TEMPFAIL);
    return true;
}

void outcome_hurry(struct engine *e)
{
    queue_hurry(e->q);
}

void outcome_claimed(struct engine *e, size_t n)
{
    e->out.inflight += n;
}

void outcome_forget(struct engine *e, size_t n)
{
    e->out.inflight -= n;
}

const struct spool_hold *outcome_hold(const struct engine *e)
{
    return &e->out.hold;
}
