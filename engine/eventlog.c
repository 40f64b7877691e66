/*
 * eventlog.c - the JSON-lines event log: a consumer of the spool's events.
 *
 * DESCRIPTION
 *   The spool's events table is the record of every outcome; the event log
 *   copies it, one line per event in seq order, each line holding the
 *   stored event's values and its seq.  So the file never shows an outcome
 *   the spool does not hold (an attempt whose result arrives after max_age
 *   is "expired" in both).  After a tick in which outcomes committed, and
 *   once a second for events recorded by other processes, eventlog_pump()
 *   takes the events after the file's last seq (evstream_from: the
 *   window of decoded events every consumer shares, read once per round;
 *   batches of up to PUMP_BATCH events) and hands them to the file
 *   (evfile.c), which owns what is about the file: whole
 *   lines by write(2), the spool cursor "eventlog", the rule by which it
 *   resumes after kill -9 (the last line with a seq, else the cursor),
 *   rotation (event_log_rotate) and the reopen after SIGUSR1.  The
 *   [accounting] files (accounting.c) are pumped from here too.
 *
 *   Site and domain lines ("type":"site" / "domain") are not spool
 *   events: they carry no seq and are written, each as one whole line by
 *   one write(2), when they happen.  So are audit lines ("type":"audit"):
 *   after sluiced appended an audit record (a one-click unsubscribe, in
 *   the HTTP thread) eventlog_audit() notes the new head and the next
 *   pump writes it (its seq as audit_seq; heads noted between two pumps
 *   come out as the last one), so the log carries checkpoints of the
 *   trail that `sluice audit verify --checkpoint EVENTLOG` compares with
 *   it.
 *
 *   The same reading counts the outcomes the spool committed during this
 *   run (events after its newest at start) into e->st, with or without a
 *   file, so the progress and stop lines agree with the spool.
 *
 * DIAGNOSTICS
 *   eventlog_open() fails with -errno (the file cannot be opened, locked
 *   or read) or ENGINE_E_LOGDATA (a damaged line, or a file ahead of the
 *   spool), the reason in words in its buffer.  Failed reads while running
 *   are reported on stderr once per spell (failed writes: evfile.c).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "event_json.h"
#include "evfile.h"
#include "incident.h"
#include "metrics.h"
#include "queue_admin.h"

#define CURSOR "eventlog"
#define LINE_MAX_BYTES (64u << 10) /* one line: capped fields fit well */
#define PUMP_BATCH 2048     /* events per read transaction */
#define PUMP_ROUNDS 4       /* batches per tick at most (the rest next tick) */

struct eventlog {
    struct engine *e;
    struct evfile *f;    /* the file, or NULL (counting only) */
    uint64_t counted;    /* newest seq counted into e->st */
    bool due;            /* outcomes committed since the last read */
    uint64_t last_read_ms;
    int read_err;        /* reported, until it works again */
    /* the audit head sluiced appended last (any thread), under audit_mu,
     * and the one last logged (loop thread) */
    pthread_mutex_t audit_mu;
    uint64_t audit_pending, audit_logged;
    unsigned char audit_head[QUEUE_AUDIT_HASH];
};

/* ------------------------------------------------------------- lines */

/* A line that is not a spool event, written on its own. */
static void emit(struct engine *e, json_t *j)
{
    struct eventlog *l = e->log;
    if (j && l && l->f) {
        size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
        char *line = n && n < LINE_MAX_BYTES ? malloc(n + 1) : NULL;
        if (line && json_dumpb(j, line, n, JSON_COMPACT) == n) {
            line[n] = '\n';
            evfile_line(l->f, line, n + 1);
        }
        free(line);
    }
    json_decref(j);
}

/* The event's line (evfile_ops.format): the one the webhooks hand on. */
static size_t format_line(void *arg, struct evstream_event *x, char *buf,
                          size_t room)
{
    size_t n;
    const char *line = evstream_line(arg, x, &n);
    if (!line || n > room)
        return 0;
    memcpy(buf, line, n);
    return n;
}

/* A line read back at open (evfile_ops.line_seq): a JSON object whose
 * seq is an event's; a line with "delivery" but no seq is of an older
 * sluice (the file has no seq). */
static int line_seq(void *arg, const char *line, size_t n, uint64_t *seq)
{
    (void)arg;
    json_t *j = json_loadb(line, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return ENGINE_E_LOGDATA;
    }
    json_t *s = json_object_get(j, "seq");
    int r = 0;
    if (json_is_integer(s) && json_integer_value(s) > 0) {
        *seq = (uint64_t)json_integer_value(s);
        r = 1;
    } else if (!s && json_object_get(j, "delivery")) {
        r = 2;
    }
    json_decref(j);
    return r;
}

static const struct evfile_ops log_ops = { line_seq, format_line,
                                           "a JSON object" };

/* ----------------------------------------------------- the audit head */

void eventlog_audit(struct engine *e, uint64_t seq,
                    const unsigned char head[QUEUE_AUDIT_HASH])
{
    struct eventlog *l = e->log;
    if (!l)
        return;
    pthread_mutex_lock(&l->audit_mu);
    if (seq > l->audit_pending) {
        l->audit_pending = seq;
        memcpy(l->audit_head, head, QUEUE_AUDIT_HASH);
    }
    pthread_mutex_unlock(&l->audit_mu);
}

/* The head sluiced appended last, once, as a line {"type":"audit",
 * "audit_seq":N,"head":HEX,"time_ms":T} (loop thread).  Its key is
 * audit_seq, not seq: a line with a seq is a spool event to the resume
 * rule above. */
static void audit_line(struct eventlog *l)
{
    unsigned char head[QUEUE_AUDIT_HASH];
    char hex[2 * QUEUE_AUDIT_HASH + 1];
    pthread_mutex_lock(&l->audit_mu);
    uint64_t seq = l->audit_pending;
    memcpy(head, l->audit_head, sizeof head);
    pthread_mutex_unlock(&l->audit_mu);
    if (seq <= l->audit_logged || !l->f)
        return;
    l->audit_logged = seq;
    for (size_t i = 0; i < sizeof head; i++)
        snprintf(hex + 2 * i, 3, "%02x", head[i]);
    emit(l->e, json_pack("{s:s,s:I,s:s,s:I}", "type", "audit", "audit_seq",
                         (json_int_t)seq, "head", hex, "time_ms",
                         (json_int_t)engine_now_ms()));
}

/* ---------------------------------------------------------- the pump */

struct pump {
    struct eventlog *l;
    bool file;           /* lines are wanted */
    bool full;           /* stopped before an event that did not fit */
    size_t seen;
};

/* Count an event of this run. */
static void count(struct engine_stats *st, int type)
{
    switch (type) {
    case QUEUE_EV_DELIVERED: st->delivered++; break;
    case QUEUE_EV_DEFERRED: st->deferred++; break;
    case QUEUE_EV_BOUNCED: st->bounced++; break;
    case QUEUE_EV_EXPIRED: st->expired++; break;
    case QUEUE_EV_SUPPRESSED: st->suppressed++; break;
    case QUEUE_EV_CANCELLED: st->cancelled++; break;
    }
}

/* One event read: its line into the batch, its type into the counts. */
static int on_event(void *arg, struct evstream_event *x)
{
    struct pump *p = arg;
    struct eventlog *l = p->l;
    const struct queue_event *ev = &x->ev;
    if (p->file && evfile_add(l->f, x)) {
        p->full = true;
        return 1;
    }
    if (ev->seq > l->counted) {
        count(&l->e->st, ev->type);
        metrics_event(l->e, ev);
        signals_event(l->e, ev);
        incidents_event(l->e, ev);
        l->counted = ev->seq;
    }
    p->seen++;
    return 0;
}

uint64_t eventlog_counted(const struct engine *e)
{
    return e->log ? e->log->counted : 0;
}

void eventlog_committed(struct engine *e)
{
    evstream_committed(e);
    if (e->log)
        e->log->due = true;
}

void eventlog_pump(struct engine *e, bool all)
{
    struct eventlog *l = e->log;
    if (all)
        /* the last pump reads the spool's end again whenever it was last
         * read: what committed since without an outcome (an incident's
         * record at teardown) must not wait for a recheck that never
         * comes (evstream.c) */
        evstream_committed(e);
    if (l)
        audit_line(l);
    if (!l || (!all && !l->due && engine_now_ms() - l->last_read_ms < 1000))
        return;
    l->due = false;
    l->last_read_ms = engine_now_ms();
    accounting_pump(e, all);
    bool file = l->f && evfile_ready(l->f, all);
    for (unsigned round = 0;; round++) {
        if (!all && round == PUMP_ROUNDS) {
            l->due = true; /* more next tick: the loop has other work */
            break;
        }
        uint64_t written = l->f ? evfile_written(l->f) : 0;
        uint64_t from = file && written < l->counted ? written : l->counted;
        struct pump p = { .l = l, .file = file };
        long n = evstream_from(e, from + 1, PUMP_BATCH, on_event, &p);
        if (n < 0 && n != l->read_err)
            fprintf(stderr, "sluiced: event log: reading the spool's events "
                            "after seq %llu: %s\n", (unsigned long long)from,
                    engine_strerror((int)n));
        l->read_err = n < 0 ? (int)n : 0;
        long batch = file ? evfile_flush(l->f) : 0;
        if (batch < 0)
            file = false;
        if (n < 0 || (!p.full && p.seen < PUMP_BATCH) || (p.full && !batch))
            break;
        if (file && !evfile_ready(l->f, all))
            file = false; /* a rotation waits for the cursor */
    }
    if (l->f)
        evfile_save(l->f);
}

/* SIGUSR1: the event log and the accounting files are opened by name
 * again (after logrotate moved them away). */
void eventlog_reopen(struct engine *e)
{
    if (e->log)
        evfile_reopen(e->log->f);
    accounting_reopen(e);
}

/* -------------------------------------------------------------- open */

/* Free l and its file. */
static void log_free(struct eventlog *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->audit_mu);
    free(l);
}

int eventlog_open(struct engine *e, char *err, size_t errlen)
{
    struct eventlog *l = calloc(1, sizeof *l);
    uint64_t newest;
    int rc;
    if (!l)
        return -ENOMEM;
    l->e = e;
    pthread_mutex_init(&l->audit_mu, NULL);
    l->last_read_ms = engine_now_ms();
    if ((rc = queue_events_last(e->q, &newest))) {
        snprintf(err, errlen, "spool %s: %s", e->cfg.spool,
                 engine_strerror(rc));
        goto fail;
    }
    l->counted = newest;
    if (e->cfg.event_log) {
        struct evfile_spec spec = {
            .what = "event log", .path = e->cfg.event_log, .cursor = CURSOR,
            .rotate = e->cfg.event_log_rotate, .ops = &log_ops, .arg = e,
        };
        if ((rc = evfile_open(&l->f, e, &spec, newest, err, errlen)))
            goto fail;
    }
    e->log = l;
    return 0;
fail:
    log_free(l);
    return rc;
}

void eventlog_close(struct engine *e)
{
    struct eventlog *l = e->log;
    if (!l)
        return;
    eventlog_pump(e, true);
    if (l->f) {
        uint64_t written = evfile_written(l->f);
        if (written < l->counted)
            fprintf(stderr, "sluiced: event log: events after seq %llu "
                            "are not in it yet; they are written at the next "
                            "start\n", (unsigned long long)written);
        evfile_close(l->f);
    }
    log_free(l);
    e->log = NULL;
}

/* ------------------------------------------------ lines of the engine */

/* A change of a site's state, with the reply that caused it. */
void eventlog_site(struct engine *e, const struct site *s, const char *change,
                   int code, const char *enhanced, const char *text)
{
    char t[3 * QUEUE_MAX_REPLY + 4];
    if (!e->log || !e->log->f)
        return;
    emit(e, json_pack("{s:s,s:s,s:s,s:s,s:i,s:f,s:i,s:s,s:s,s:I}",
                      "type", "site", "site", s->name,
                      "change", change, "state", site_state_name(s->state),
                      "concurrency", (int)site_conn_limit(s),
                      "rate_factor", s->rate_factor,
                      "code", code, "enhanced", enhanced ? enhanced : "",
                      "text", event_utf8_clean(text ? text : "", t, sizeof t),
                      "time_ms", (json_int_t)engine_now_ms()));
}

/* A domain paused or resumed by an admin. */
void eventlog_pause(struct engine *e, const char *domain, bool paused)
{
    if (!e->log || !e->log->f)
        return;
    emit(e, json_pack("{s:s,s:s,s:s,s:I}", "type", "domain",
                      "domain", domain,
                      "change", paused ? "paused" : "resumed",
                      "time_ms", (json_int_t)engine_now_ms()));
}

/* The spool stopped or started taking writes (outcome.c). */
void eventlog_spool(struct engine *e, const char *state, const char *error,
                    size_t held, uint64_t full_ms)
{
    if (!e->log || !e->log->f)
        return;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "type", "spool",
                          "state", state, "spool", e->cfg.spool,
                          "error", error, "held", (json_int_t)held,
                          "full_ms", (json_int_t)full_ms,
                          "time_ms", (json_int_t)engine_now_ms());
    emit(e, j);
}

/* A webhook gave a batch up (webhook.c). */
void eventlog_webhook(struct engine *e, const char *name, const char *change,
                      uint64_t last, unsigned n, unsigned attempts,
                      const char *error, const char *file)
{
    char t[3 * 160 + 4];
    if (!e->log || !e->log->f)
        return;
    emit(e, json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:s,s:s,s:I}", "type",
                      "webhook", "webhook", name, "change", change,
                      "last_seq", (json_int_t)last, "count", (int)n,
                      "attempts", (int)attempts,
                      "error", event_utf8_clean(error, t, sizeof t),
                      "file", file, "time_ms", (json_int_t)engine_now_ms()));
}
