/*
 * webhook.c - webhooks: consumers of the spool's event stream that POST
 * batches of events as JSON arrays to a URL.
 *
 * DESCRIPTION
 *   Each [webhook NAME] is a cursor over the spool's events (queue/cursor.c,
 *   "webhook." NAME), like the event log.  Each tick, and as soon as a POST
 *   ends, the webhook fills free slots of its ring of max_in_flight batches:
 *   it takes the events after the newest one read from the window the
 *   consumers share (evstream.c: read from the spool once for all),
 *   keeps those of the wanted types and account (an account's own
 *   events, and its sub-accounts' when it is the master) up to `batch`,
 *   as event_json() makes them (the event log's line, made once), and
 *   the batch is POSTed (webhook_http.c).  A
 *   batch covers the seqs it read, wanted or not; events no webhook wants
 *   are passed over and count as handed on.
 *
 *   A batch answered 2xx is done; any other answer, a timeout or a refused
 *   connection is tried again after 1 s, 2 s, 4 s ... (at most 60 s apart)
 *   until max_age after its first try; then the batch is written as one
 *   line to the dead-letter file (JSON lines: the webhook, the seqs, the
 *   attempts, the last error and the events), the event log gets a line
 *   "type":"webhook","change":"dead-letter", and the stream moves on.
 *
 *   The cursor only moves over a contiguous run of done batches from the
 *   oldest: a later batch answered first waits for the ones before it.
 *   It is saved through the writer (one save in flight) and, at a clean
 *   stop, synchronously.  After kill -9 the webhook resumes after the last
 *   saved seq: what was POSTed since is POSTed again (at least once; twice
 *   only across a crash), with the same seq and id, so receivers dedupe.
 *   A new webhook starts from the spool's newest event (start = oldest: the
 *   whole stream); that starting point is saved at once.
 *
 *   Memory is bounded: max_in_flight batches of at most `batch` events,
 *   each line capped (event_json_line()).  Delivery never waits for a
 *   webhook: a receiver that is down only makes its cursor lag.
 *
 *   Which webhooks run (opening, SIGHUP, closing) is webhook_set.c's.
 *
 * DIAGNOSTICS
 *   A receiver that fails is reported on stderr once per spell, and each
 *   dead-lettered batch once; a dead-letter file that cannot be written
 *   keeps the batch (tried again each second: nothing is dropped).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "event_json.h"
#include "evstream.h"
#include "metrics.h"
#include "webhook.h"
#include "webhook_int.h"

#define SCAN_MAX 4096            /* events passed to one read, at most */
#define BACKOFF_MAX_MS 60000
#define DEAD_RETRY_MS 1000
#define PUMP_READS 16            /* next_batch() calls per pump, at most */

/* ------------------------------------------------------------ cursor */

/* Loop thread: a cursor save has committed (or failed). */
static void on_saved(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct webhook *w = arg;
    (void)first;
    (void)msg;
    if (!status) {
        w->saved = w->saving;
        w->save_err = 0;
    } else if (status != w->save_err) {
        fprintf(stderr, "sluiced: webhook %s: saving its cursor: %s (saved "
                        "again later)\n", w->name, engine_strerror(status));
        w->save_err = status;
    }
    w->saving = 0;
}

/* Save the cursor when it has moved, one save in flight. */
static void save_cursor(struct webhook *w)
{
    struct engine *e = w->all->e;
    if (w->all->closing || w->saving || w->acked == w->saved)
        return;
    w->saving = w->acked;
    int err = queue_submit_cursor(e->q, w->cursor, w->acked, e->cmp,
                                  on_saved, w);
    if (err)
        on_saved(w, err, 0, 0);
}

/* Move the cursor over the done batches at the head of the ring. */
static void advance(struct webhook *w)
{
    while (w->count && w->ring[w->head].done) {
        struct wh_batch *b = &w->ring[w->head];
        w->acked = b->last;
        b->done = false;
        b->len = 0;
        b->nevents = 0;
        w->head = (w->head + 1) % w->max_in_flight;
        w->count--;
    }
    if (!w->count)
        w->acked = w->read;
}

/* ------------------------------------------------------ dead letters */

/* Write b as one line of the dead-letter file: 0 or -errno (the file is
 * cut back to its size before, so it never keeps half a line). */
static int dead_letter(struct webhook *w, struct wh_batch *b)
{
    char head[512];
    char err[3 * sizeof b->error + 4];
    json_t *msg = json_string(event_utf8_clean(b->error, err, sizeof err));
    char *emsg = msg ? json_dumps(msg, JSON_ENCODE_ANY) : NULL;
    json_decref(msg);
    int n = snprintf(head, sizeof head, "{\"webhook\":\"%s\",\"last_seq\":"
                     "%llu,\"count\":%u,\"attempts\":%u,\"error\":%s,"
                     "\"time_ms\":%llu,\"events\":", w->name,
                     (unsigned long long)b->last, b->nevents, b->attempts,
                     emsg ? emsg : "\"\"",
                     (unsigned long long)engine_now_ms());
    free(emsg);
    if (n < 0 || (size_t)n >= sizeof head)
        return -EOVERFLOW;
    int fd = open(w->dead_letter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    struct iovec iov[3] = {
        { head, (size_t)n },
        { b->buf, b->len },
        { "}\n", 2 },
    };
    size_t want = iov[0].iov_len + iov[1].iov_len + iov[2].iov_len;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc) {
        ssize_t wr = writev(fd, iov, 3);
        if (wr != (ssize_t)want) {
            rc = wr < 0 ? -errno : -ENOSPC;
            if (ftruncate(fd, st.st_size))
                rc = -errno;
        } else if (fdatasync(fd)) {
            rc = -errno;
        }
    }
    close(fd);
    return rc;
}

/* b has failed for max_age: to the dead-letter file, and on. */
static void give_up(struct webhook *w, struct wh_batch *b)
{
    int rc = dead_letter(w, b);
    if (rc) {
        fprintf(stderr, "sluiced: webhook %s: dead-letter file %s: %s; the "
                        "batch is kept and written when it can be\n",
                w->name, w->dead_letter, strerror(-rc));
        b->next_try_ms = engine_now_ms() + DEAD_RETRY_MS;
        return;
    }
    fprintf(stderr, "sluiced: webhook %s: gave up on %u events up to seq "
                    "%llu after %u attempts (%s); written to %s\n", w->name,
            b->nevents, (unsigned long long)b->last, b->attempts, b->error,
            w->dead_letter);
    eventlog_webhook(w->all->e, w->name, "dead-letter", b->last, b->nevents,
                     b->attempts, b->error, w->dead_letter);
    w->dead_batches++;
    b->done = true;
    advance(w);
}

/* ------------------------------------------------------------ POSTs */

/* Send b now (first try or retry). */
static void post(struct webhook *w, struct wh_batch *b)
{
    if (!b->attempts)
        b->first_try_ms = engine_now_ms();
    if (wh_http_post(b) == 0)
        return;
    b->attempts++;
    b->next_try_ms = engine_now_ms() + 1000;
    (void)w;
}

void wh_posted(struct wh_batch *b, CURLcode res, long status)
{
    struct webhook *w = b->w;
    b->in_flight = false;
    b->attempts++;
    if (res == CURLE_OK && status >= 200 && status < 300) {
        if (w->failing)
            fprintf(stderr, "sluiced: webhook %s: %s answers again\n",
                    w->name, w->url);
        w->failing = false;
        w->sent_events += b->nevents;
        b->done = true;
        advance(w);
        webhooks_pump(w->all->e);
        return;
    }
    if (res != CURLE_OK)
        snprintf(b->error, sizeof b->error, "%s", curl_easy_strerror(res));
    else
        snprintf(b->error, sizeof b->error, "HTTP status %ld", status);
    if (!w->failing)
        fprintf(stderr, "sluiced: webhook %s: POST to %s: %s; its events "
                        "wait in the spool and are tried again\n", w->name,
                w->url, b->error);
    w->failing = true;
    uint64_t now = engine_now_ms();
    uint64_t until = b->first_try_ms + w->max_age_ms;
    if (now >= until) {
        give_up(w, b);
        return;
    }
    unsigned shift = b->attempts < 7 ? b->attempts - 1 : 6;
    uint64_t backoff = 1000ull << shift;
    if (backoff > BACKOFF_MAX_MS)
        backoff = BACKOFF_MAX_MS;
    b->next_try_ms = now + backoff < until ? now + backoff : until;
}

/* ------------------------------------------------------------ reading */

struct fill {
    struct webhook *w;
    struct wh_batch *b;
    struct engine *e;
    uint64_t last;       /* newest seq passed (taken or not) */
    size_t seen;
    bool full;
    int err;
};

/* Whether w wants ev: its type, and its account or a sub-account of it. */
static bool wants(const struct webhook *w, const struct engine *e,
                  const struct queue_event *ev)
{
    if (w->events && (ev->type >= 32 || !(w->events & (1u << ev->type))))
        return false;
    if (w->any_account || ev->account == w->account)
        return true;
    const struct eng_account *a = accounts_get(e, ev->account);
    return a && a->master == w->account;
}

/* One event read: into the batch when wanted (its line, made once for
 * every consumer: evstream_line()); stops before one that does not fit. */
static int on_event(void *arg, struct evstream_event *x)
{
    struct fill *f = arg;
    struct wh_batch *b = f->b;
    const struct queue_event *ev = &x->ev;
    if (wants(f->w, f->e, ev)) {
        if (b->nevents == f->w->batch) {
            f->full = true;
            return 1;
        }
        size_t at = 1 + b->len;  /* after the '[' */
        if (b->cap - at < WH_EVENT_MAX + 2) {
            size_t ncap = b->cap * 2;
            if (ncap > f->w->body_cap)
                ncap = f->w->body_cap;
            char *nb = ncap > b->cap ? realloc(b->buf, ncap) : NULL;
            if (!nb) {
                f->err = -ENOMEM;
                return 1;
            }
            b->buf = nb;
            b->cap = ncap;
        }
        size_t n;
        const char *line = evstream_line(f->e, x, &n);
        if (!line || n > b->cap - at - 1) {
            f->err = -ENOMEM;
            return 1;
        }
        memcpy(b->buf + at, line, n);
        b->buf[at + n - 1] = ',';
        b->len += n;
        b->nevents++;
    }
    f->last = ev->seq;
    f->seen++;
    return 0;
}

/* Fill a free slot with the next events and POST it; false when there
 * is nothing more to read now. */
static bool next_batch(struct webhook *w)
{
    struct engine *e = w->all->e;
    struct wh_batch *b = &w->ring[(w->head + w->count) % w->max_in_flight];
    struct fill f = { .w = w, .b = b, .e = e };
    b->len = 0;
    b->nevents = 0;
    bool more = false;
    for (unsigned round = 0; round < 4; round++) {
        f.seen = 0;
        long n = evstream_from(e, w->read + 1, SCAN_MAX, on_event, &f);
        if (n < 0 && n != w->read_err)
            fprintf(stderr, "sluiced: webhook %s: reading the spool's events "
                            "after seq %llu: %s\n", w->name,
                    (unsigned long long)w->read, engine_strerror((int)n));
        w->read_err = n < 0 ? (int)n : 0;
        if (f.seen)
            w->read = f.last;
        if (n < 0 || f.err || f.full || f.seen < SCAN_MAX)
            break;
        more = true; /* a whole scan without a full batch: read on */
    }
    if (!b->nevents) {
        /* passed over: covered by the newest batch in flight, or done */
        if (w->count)
            w->ring[(w->head + w->count - 1) % w->max_in_flight].last =
                w->read;
        else
            w->acked = w->read;
        return more && !f.err && w->read_err == 0;
    }
    /* the body: [ then the lines (each ending with ','), the last , -> ] */
    b->buf[0] = '[';
    b->len += 1;
    b->buf[b->len - 1] = ']';
    b->last = w->read;
    b->attempts = 0;
    b->done = false;
    b->error[0] = 0;
    w->count++;
    post(w, b);
    return f.full;
}

int webhooks_backlog(struct engine *e,
                     void (*cb)(void *arg, const struct webhook_backlog *b),
                     void *arg)
{
    struct webhooks *hs = e->hooks;
    uint64_t newest = 0;
    if (!hs || !hs->n)
        return 0;
    int err = queue_events_last(e->q, &newest);
    if (err)
        return err;
    for (size_t i = 0; i < hs->n; i++) {
        const struct webhook *w = hs->v[i];
        if (w->retired)
            continue;
        struct webhook_backlog b = {
            .name = w->name, .error = "",
            .events = newest > w->acked ? newest - w->acked : 0 };
        const struct wh_batch *h = w->count ? &w->ring[w->head] : NULL;
        if (h && h->attempts && !h->done && h->error[0]) {
            b.failing_since_ms = h->first_try_ms;
            b.attempts = h->attempts;
            b.error = h->error;
        }
        cb(arg, &b);
    }
    return 0;
}

/* webhooks_backlog(): one webhook's to /metrics. */
static void backlog_metric(void *arg, const struct webhook_backlog *b)
{
    metrics_webhook_backlog(arg, b->name, b->events);
}

/* Once a second, each webhook's backlog to /metrics. */
static void report_backlogs(struct webhooks *hs, uint64_t now)
{
    if (!hs->e->metrics || now < hs->backlog_ms)
        return;
    if (!webhooks_backlog(hs->e, backlog_metric, hs->e))
        hs->backlog_ms = now + 1000;
}

void webhooks_pump(struct engine *e)
{
    struct webhooks *hs = e->hooks;
    if (!hs || hs->closing)
        return;
    uint64_t now = engine_now_ms();
    for (size_t i = 0; i < hs->n; i++) {
        struct webhook *w = hs->v[i];
        if (w->retired)
            continue;
        for (unsigned k = 0; k < w->count; k++) {
            struct wh_batch *b = &w->ring[(w->head + k) % w->max_in_flight];
            if (b->done || b->in_flight || b->next_try_ms > now)
                continue;
            if (b->attempts && now >= b->first_try_ms + w->max_age_ms)
                give_up(w, b);
            else
                post(w, b);
        }
        /* a bounded number of reads per call: a long run of events the
         * webhook does not want is passed over a few ticks at a time */
        for (unsigned r = 0; r < PUMP_READS && w->count < w->max_in_flight &&
                             next_batch(w); r++)
            ;
        save_cursor(w);
    }
    report_backlogs(hs, now);
}
