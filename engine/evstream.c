/*
 * evstream.c - the spool's events read once for every consumer: a
 * bounded window of decoded events that the event log (and the counts
 * beside it), the accounting files and the webhooks take their slices
 * from.
 *
 * DESCRIPTION
 *   Each consumer is a cursor over the spool's events, saved in the
 *   spool by the consumer itself (queue/cursor.c), and asks for the
 *   events after it with evstream_from() as it would ask
 *   queue_events_from().  The window holds every event of the spool with
 *   seq in [lo, next), decoded (with the stored message of each, read
 *   from its delivery row), in a ring; and each event's JSON line once a
 *   consumer asked for it (evstream_line()), so the log and every webhook
 *   hand on the same bytes, made once.  A consumer that reaches the
 *   window's end extends it with one read transaction of what committed
 *   since (at most EVS_READ events): the first consumer of a round
 *   reads, the others find the events in memory.  After a read that
 *   found the spool's end the window is not read again until outcomes
 *   commit (evstream_committed()) or EVS_RECHECK_MS have passed (events
 *   that other processes or threads record).
 *
 *   Bounded: EVS_EVENTS events at most (a read that needs room drops
 *   the oldest), and EVS_LINE_BYTES of lines (beyond, a line is made in
 *   a scratch buffer at each ask and not kept).  A consumer whose cursor
 *   is before the window (one that lags by more than it: a webhook whose
 *   receiver is down) reads its events itself, as all did before; one
 *   ahead of the window starts it anew at its cursor, so the window
 *   follows the leading consumers and the others catch up into it.
 *
 *   Nothing here is persisted and nothing decides what a consumer has
 *   handed on: that is its cursor.  After kill -9 each consumer resumes
 *   from its own, and the window starts empty.
 *
 * DIAGNOSTICS
 *   evstream_from() returns what queue_events_from() would: the number of
 *   events passed, or a negative code (-ENOMEM, the spool's error); the
 *   caller reports it and asks again later.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "event_json.h"
#include "evstream.h"

#define EVS_EVENTS 1024          /* events in the window, at most */
#define EVS_READ 512             /* events one read adds, at most */
#define EVS_LINE_BYTES (2u << 20) /* line buffers kept, at most */
#define EVS_LINE_FIRST 1024      /* a slot's line buffer at first */
#define EVS_LINE_MAX (16u << 10) /* a line, at most (event_json.h) */
#define EVS_RECHECK_MS 100       /* the spool's end read again after */

struct evstream {
    struct evstream_event *ring;  /* EVS_EVENTS slots */
    size_t head, count;
    uint64_t lo, next;    /* the window: every event with lo <= seq < next */
    bool started;         /* lo and next mean something */
    bool at_end;          /* the last read found the spool's end */
    bool committed;       /* outcomes committed since */
    uint64_t read_ms;     /* when the last read was made */
    size_t line_bytes;    /* in the slots' line buffers */
    char *scratch;        /* EVS_LINE_MAX: a line not kept */
    struct evstream_event loose; /* an event read outside the window */
};

/* The window, made at the first ask: NULL when out of memory. */
static struct evstream *get(struct engine *e)
{
    struct evstream *s = e->evstream;
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s || !(s->ring = calloc(EVS_EVENTS, sizeof *s->ring)) ||
        !(s->scratch = malloc(EVS_LINE_MAX))) {
        if (s)
            free(s->ring);
        free(s);
        return NULL;
    }
    e->evstream = s;
    return s;
}

void evstream_stop(struct engine *e)
{
    struct evstream *s = e->evstream;
    if (!s)
        return;
    for (size_t i = 0; i < EVS_EVENTS; i++)
        free(s->ring[i].line);
    free(s->ring);
    free(s->scratch);
    free(s);
    e->evstream = NULL;
}

void evstream_committed(struct engine *e)
{
    if (e->evstream)
        e->evstream->committed = true;
}

/* The window's i-th event, oldest first. */
static struct evstream_event *slot(struct evstream *s, size_t i)
{
    return &s->ring[(s->head + i) % EVS_EVENTS];
}

/* The index of the first event with seq >= from (count: none). */
static size_t find(struct evstream *s, uint64_t from)
{
    size_t a = 0, b = s->count;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (slot(s, m)->ev.seq < from)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* Forget every event: the window starts at from. */
static void restart(struct evstream *s, uint64_t from)
{
    for (size_t i = 0; i < s->count; i++)
        slot(s, i)->line_len = 0;
    s->head = s->count = 0;
    s->lo = s->next = from;
    s->started = true;
    s->at_end = false;
}

/* queue_events_from(): one event read onto the window's end (the oldest
 * dropped when it is full). */
static int append(void *arg, const struct queue_event *ev)
{
    struct evstream *s = arg;
    if (s->count == EVS_EVENTS) {
        struct evstream_event *old = slot(s, 0);
        s->lo = old->ev.seq + 1;
        old->line_len = 0;
        s->head = (s->head + 1) % EVS_EVENTS;
        s->count--;
    }
    struct evstream_event *x = slot(s, s->count++);
    x->ev = *ev;
    x->line_len = 0;
    s->next = ev->seq + 1;
    return 0;
}

/* Read the events after the window's end onto it: how many, 0 when none
 * (or none looked for: the end was found lately and nothing committed
 * since), or a negative code. */
static long extend(struct engine *e, struct evstream *s)
{
    uint64_t now = engine_now_ms();
    if (s->at_end && !s->committed && now - s->read_ms < EVS_RECHECK_MS)
        return 0;
    s->committed = false;
    s->read_ms = now;
    long n = queue_events_from(e->q, s->next, EVS_READ, append, s);
    s->at_end = n >= 0 && n < EVS_READ;
    return n;
}

struct loose_call {
    struct evstream *s;
    int (*cb)(void *arg, struct evstream_event *x);
    void *arg;
};

/* queue_events_from(): an event outside the window to the consumer. */
static int pass_loose(void *arg, const struct queue_event *ev)
{
    struct loose_call *c = arg;
    c->s->loose.ev = *ev;
    c->s->loose.line_len = 0;
    return c->cb(c->arg, &c->s->loose);
}

long evstream_from(struct engine *e, uint64_t from, size_t max,
                   int (*cb)(void *arg, struct evstream_event *x),
                   void *arg)
{
    struct evstream *s = get(e);
    if (!s)
        return -ENOMEM;
    if (from < 1)
        from = 1;
    if (!s->started || from > s->next)
        restart(s, from);   /* ahead of the window: it follows */
    if (from < s->lo) {     /* behind it: a read of its own */
        struct loose_call c = { s, cb, arg };
        return queue_events_from(e->q, from, max, pass_loose, &c);
    }
    long n = 0;
    size_t i = find(s, from);
    for (;;) {
        for (; i < s->count; i++) {
            n++;
            if (cb(arg, slot(s, i)) || (max && (size_t)n >= max))
                return n;
        }
        long r = extend(e, s);
        if (r < 0)
            return r;
        if (r == 0)
            return n;
        i = s->count - (size_t)r;  /* the events just read */
    }
}

/* x's line buffer at least want bytes, within the window's cap. */
static bool line_room(struct evstream *s, struct evstream_event *x,
                      size_t want)
{
    if (x->line_cap >= want)
        return true;
    if (s->line_bytes - x->line_cap + want > EVS_LINE_BYTES)
        return false;
    char *nb = realloc(x->line, want);
    if (!nb)
        return false;
    s->line_bytes += want - x->line_cap;
    x->line = nb;
    x->line_cap = want;
    return true;
}

const char *evstream_line(struct engine *e, struct evstream_event *x,
                          size_t *len)
{
    struct evstream *s = e->evstream;
    *len = 0;
    if (x->line_len) {
        *len = x->line_len;
        return x->line;
    }
    if (!s)
        return NULL;
    if (x != &s->loose) {
        /* kept in the slot's buffer, grown for a long line */
        size_t n = 0;
        if (line_room(s, x, EVS_LINE_FIRST))
            n = event_json_line(e, &x->ev, x->line, x->line_cap);
        if (!n && x->line_cap < EVS_LINE_MAX &&
            line_room(s, x, EVS_LINE_MAX))
            n = event_json_line(e, &x->ev, x->line, x->line_cap);
        if (n) {
            x->line_len = n;
            *len = n;
            return x->line;
        }
    }
    /* not kept: made for this ask in the scratch buffer */
    *len = event_json_line(e, &x->ev, s->scratch, EVS_LINE_MAX);
    return *len ? s->scratch : NULL;
}
