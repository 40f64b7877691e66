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
 *   reads the events after the file's last seq (queue_events_from: one
 *   read transaction per batch of up to PUMP_BATCH events), builds whole
 *   lines in a bounded buffer and writes them with write(2) on an O_APPEND
 *   descriptor (short writes continued).  Then it saves the seq of the
 *   last line written as the spool cursor "eventlog" (queue/cursor.c), a
 *   small write that joins the next commit group.
 *
 *   The rule that keeps each event exactly once in the file: at open, a
 *   last line without its newline (a write cut by kill -9) is cut off, and
 *   the last line that has a seq says where the file stands: the log
 *   resumes right after it, whatever the cursor says (the cursor may lag
 *   the file by the lines written after its last save).  Only a file
 *   without any seq (new, emptied by rotation, or written by an older
 *   sluice) resumes after the saved cursor, or, with no cursor yet, after
 *   the spool's newest event ("from now on").  A file whose last seq is
 *   beyond the spool's newest event belongs to another spool and is
 *   refused.  A write that fails is cut back to the last whole line and
 *   tried again a second later; the events wait in the spool meanwhile.
 *
 *   The file is not fsynced per batch: each line copies an event the
 *   spool has already committed, so a line lost with the page cache (an
 *   operating-system crash) is written again at the next start from the
 *   spool.  It is fdatasynced at a clean stop.
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
 *   spool), the reason in words in its buffer.  Failed writes and reads
 *   while running are reported on stderr once per spell.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "event_json.h"
#include "queue_admin.h"

#define CURSOR "eventlog"
#define LOG_BUF (1u << 20)  /* lines of one batch; also the tail read at open */
#define PUMP_BATCH 2048     /* events per read transaction */
#define PUMP_ROUNDS 4       /* batches per tick at most (the rest next tick) */
#define RETRY_MS 1000       /* a failed write is tried again after this */

struct eventlog {
    struct engine *e;
    int fd;              /* the file, or -1 (counting only) */
    char *path;
    char *buf;           /* LOG_BUF bytes */
    size_t len;
    uint64_t counted;    /* newest seq counted into e->st */
    uint64_t written;    /* newest seq whose line is in the file */
    uint64_t saved;      /* newest seq saved as the cursor */
    uint64_t saving;     /* seq of the save in flight, 0 if none */
    bool due;            /* outcomes committed since the last read */
    bool closing;        /* no more asynchronous saves */
    bool broken;         /* a write failed: wait for retry_ms */
    bool cut_pending;    /* and its partial line is not cut off yet */
    off_t cut_at;
    uint64_t retry_ms, last_read_ms;
    int read_err, save_err;   /* reported, until it works again */
    /* the audit head sluiced appended last (any thread), under audit_mu,
     * and the one last logged (loop thread) */
    pthread_mutex_t audit_mu;
    uint64_t audit_pending, audit_logged;
    unsigned char audit_head[QUEUE_AUDIT_HASH];
};

/* ------------------------------------------------------------- lines */

/* ------------------------------------------------------------- writes */

/* All of buf to fd, continuing short writes. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Append whole lines; on failure cut the file back to where it was, so
 * it never keeps a partial line, and wait RETRY_MS. */
static int write_lines(struct eventlog *l, const char *buf, size_t n)
{
    struct stat st;
    int err = fstat(l->fd, &st) ? -errno : write_all(l->fd, buf, n);
    if (!err) {
        if (l->broken)
            fprintf(stderr, "sluiced: event log %s: writing again\n",
                    l->path);
        l->broken = false;
        return 0;
    }
    if (!l->broken)
        fprintf(stderr, "sluiced: event log %s: %s; its events wait in the "
                        "spool and are written when it can be\n", l->path,
                strerror(-err));
    l->broken = true;
    l->cut_at = st.st_size;
    l->cut_pending = ftruncate(l->fd, l->cut_at) != 0;
    l->retry_ms = engine_now_ms() + RETRY_MS;
    return err;
}

/* Whether the file takes lines now: after a failure, once its partial
 * line is cut and RETRY_MS have passed (at once when stopping). */
static bool log_usable(struct eventlog *l, bool now)
{
    if (l->fd < 0)
        return false;
    if (!l->broken)
        return true;
    if (!now && engine_now_ms() < l->retry_ms)
        return false;
    if (l->cut_pending && ftruncate(l->fd, l->cut_at)) {
        l->retry_ms = engine_now_ms() + RETRY_MS;
        return false;
    }
    l->cut_pending = false;
    return true;
}

/* A line that is not a spool event, written on its own. */
static void emit(struct engine *e, json_t *j)
{
    struct eventlog *l = e->log;
    if (j && l && log_usable(l, false)) {
        size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
        char *line = n ? malloc(n + 1) : NULL;
        if (line && json_dumpb(j, line, n, JSON_COMPACT) == n) {
            line[n] = '\n';
            write_lines(l, line, n + 1);
        }
        free(line);
    }
    json_decref(j);
}

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
    if (seq <= l->audit_logged || l->fd < 0)
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
    uint64_t last_line;  /* seq of the last line in the buffer */
};

/* Count an event of this run. */
static void count(struct engine_stats *st, int type)
{
    switch (type) {
    case QUEUE_EV_DELIVERED: st->delivered++; break;
    case QUEUE_EV_DEFERRED: st->deferred++; break;
    case QUEUE_EV_BOUNCED: st->bounced++; break;
    case QUEUE_EV_EXPIRED: st->expired++; break;
    }
}

/* One event read: its line into the batch, its type into the counts. */
static int on_event(void *arg, const struct queue_event *ev)
{
    struct pump *p = arg;
    struct eventlog *l = p->l;
    if (p->file && ev->seq > l->written) {
        size_t n = event_json_line(l->e, ev, l->buf + l->len, LOG_BUF - l->len);
        if (!n) {
            p->full = true;
            return 1;
        }
        l->len += n;
        p->last_line = ev->seq;
    }
    if (ev->seq > l->counted) {
        count(&l->e->st, ev->type);
        l->counted = ev->seq;
    }
    p->seen++;
    return 0;
}

/* Loop thread: a cursor save has committed (or failed). */
static void on_saved(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct eventlog *l = arg;
    (void)first;
    (void)msg;
    if (!status) {
        l->saved = l->saving;
        l->save_err = 0;
    } else if (status != l->save_err) {
        fprintf(stderr, "sluiced: event log: saving its cursor: %s (saved "
                        "again with the next lines)\n", engine_strerror(status));
        l->save_err = status;
    }
    l->saving = 0;
}

/* Save the cursor when the file is ahead of it, one save in flight. */
static void save_cursor(struct eventlog *l)
{
    if (l->fd < 0 || l->closing || l->saving || l->written == l->saved)
        return;
    l->saving = l->written;
    int err = queue_submit_cursor(l->e->q, CURSOR, l->written, l->e->cmp,
                                  on_saved, l);
    if (err)
        on_saved(l, err, 0, 0);
}

void eventlog_committed(struct engine *e)
{
    if (e->log)
        e->log->due = true;
}

void eventlog_pump(struct engine *e, bool all)
{
    struct eventlog *l = e->log;
    if (l)
        audit_line(l);
    if (!l || (!all && !l->due && engine_now_ms() - l->last_read_ms < 1000))
        return;
    l->due = false;
    l->last_read_ms = engine_now_ms();
    bool file = log_usable(l, all);
    for (unsigned round = 0;; round++) {
        if (!all && round == PUMP_ROUNDS) {
            l->due = true; /* more next tick: the loop has other work */
            break;
        }
        uint64_t from = file && l->written < l->counted ? l->written
                                                        : l->counted;
        struct pump p = { .l = l, .file = file };
        l->len = 0;
        long n = queue_events_from(e->q, from + 1, PUMP_BATCH, on_event, &p);
        if (n < 0 && n != l->read_err)
            fprintf(stderr, "sluiced: event log: reading the spool's events "
                            "after seq %llu: %s\n", (unsigned long long)from,
                    engine_strerror((int)n));
        l->read_err = n < 0 ? (int)n : 0;
        size_t batch = l->len;
        if (batch) {
            if (write_lines(l, l->buf, batch))
                file = false;
            else
                l->written = p.last_line;
        }
        if (n < 0 || (!p.full && p.seen < PUMP_BATCH) || (p.full && !batch))
            break;
    }
    save_cursor(l);
}

/* -------------------------------------------------------------- open */

/* Cut a last line left without its newline and find the seq of the last
 * line that has one (*has false when none: a new file, site lines only,
 * or lines of an older sluice).  Reads at most LOG_BUF bytes of the
 * tail. */
static int check_tail(struct eventlog *l, uint64_t *last, bool *has,
                      char *err, size_t errlen)
{
    struct stat st;
    *has = false;
    if (fstat(l->fd, &st))
        return -errno;
    size_t win = st.st_size > (off_t)LOG_BUF ? LOG_BUF : (size_t)st.st_size;
    off_t base = st.st_size - (off_t)win;
    for (size_t got = 0; got < win;) {
        ssize_t r = pread(l->fd, l->buf + got, win - got, base + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    size_t end = win;
    while (end > 0 && l->buf[end - 1] != '\n')
        end--;
    if (end < win) {
        if (end == 0 && base > 0) {
            snprintf(err, errlen, "event log %s: its last line is longer "
                     "than %u bytes: the file is damaged or not an event "
                     "log; move it away", l->path, LOG_BUF);
            return ENGINE_E_LOGDATA;
        }
        if (ftruncate(l->fd, base + (off_t)end))
            return -errno;
        fprintf(stderr, "sluiced: event log %s: cut %zu bytes of a line the "
                        "last run left unfinished\n", l->path, win - end);
    }
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && l->buf[start - 1] != '\n')
            start--;
        if (start == 0 && base > 0)
            break; /* the window begins inside this line */
        json_t *j = json_loadb(l->buf + start, end - 1 - start, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            snprintf(err, errlen, "event log %s: the line at byte %lld is "
                     "not a JSON object: the file is damaged or not an "
                     "event log; move it away", l->path,
                     (long long)(base + (off_t)start));
            return ENGINE_E_LOGDATA;
        }
        json_t *seq = json_object_get(j, "seq");
        bool older = !seq && json_object_get(j, "delivery");
        if (json_is_integer(seq) && json_integer_value(seq) > 0) {
            *last = (uint64_t)json_integer_value(seq);
            *has = true;
        }
        json_decref(j);
        if (*has || older)
            break;
        end = start;
    }
    return 0;
}

/* Decide where the file resumes (see the rule above) and save it. */
static int resume_point(struct eventlog *l, uint64_t newest, char *err,
                        size_t errlen)
{
    uint64_t file_last, cur;
    bool has;
    int rc = check_tail(l, &file_last, &has, err, errlen);
    if (rc)
        return rc;
    if (has && file_last > newest) {
        snprintf(err, errlen, "event log %s holds events up to seq %llu but "
                 "the spool's newest is %llu: it was written for another "
                 "spool; move it away", l->path,
                 (unsigned long long)file_last, (unsigned long long)newest);
        return ENGINE_E_LOGDATA;
    }
    int cr = queue_cursor_get(l->e->q, CURSOR, &cur);
    if (cr && cr != QUEUE_ENOTFOUND) {
        snprintf(err, errlen, "event log cursor: %s", engine_strerror(cr));
        return cr;
    }
    l->saved = cr ? 0 : cur;
    l->written = has ? file_last : !cr && cur < newest ? cur : newest;
    if (has && !cr && cur != file_last)
        fprintf(stderr, "sluiced: event log %s: resuming after seq %llu, "
                        "its last line (the saved cursor said %llu)\n",
                l->path, (unsigned long long)file_last,
                (unsigned long long)cur);
    if (cr || cur != l->written) {
        if ((rc = queue_cursor_put(l->e->q, CURSOR, l->written)))
            fprintf(stderr, "sluiced: event log: saving its cursor: %s\n",
                    engine_strerror(rc));
        else
            l->saved = l->written;
    }
    return 0;
}

/* Free l and its file. */
static void log_free(struct eventlog *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l->buf);
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
    l->fd = -1;
    pthread_mutex_init(&l->audit_mu, NULL);
    l->last_read_ms = engine_now_ms();
    if ((rc = queue_events_last(e->q, &newest))) {
        snprintf(err, errlen, "spool %s: %s", e->cfg.spool,
                 engine_strerror(rc));
        goto fail;
    }
    l->counted = newest;
    if (e->cfg.event_log) {
        if (!(l->path = strdup(e->cfg.event_log)) ||
            !(l->buf = malloc(LOG_BUF))) {
            rc = -ENOMEM;
            snprintf(err, errlen, "event log: out of memory");
            goto fail;
        }
        l->fd = open(l->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (l->fd < 0 || flock(l->fd, LOCK_EX | LOCK_NB)) {
            rc = -errno;
            snprintf(err, errlen, "event log %s: %s", l->path,
                     rc == -EWOULDBLOCK ? "in use by another process"
                                        : strerror(-rc));
            goto fail;
        }
        if ((rc = resume_point(l, newest, err, errlen))) {
            if (rc != ENGINE_E_LOGDATA && rc > -4096)
                snprintf(err, errlen, "event log %s: %s", l->path,
                         strerror(-rc));
            goto fail;
        }
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
    l->closing = true;
    eventlog_pump(e, true);
    if (l->fd >= 0) {
        if (fdatasync(l->fd))
            fprintf(stderr, "sluiced: event log %s: %s\n", l->path,
                    strerror(errno));
        int rc = l->written == l->saved ? 0
                 : queue_cursor_put(e->q, CURSOR, l->written);
        if (rc)
            fprintf(stderr, "sluiced: event log: saving its cursor: %s\n",
                    engine_strerror(rc));
        if (l->written < l->counted)
            fprintf(stderr, "sluiced: event log %s: events after seq %llu "
                            "are not in it yet; they are written at the next "
                            "start\n", l->path,
                    (unsigned long long)l->written);
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
    if (!e->log || e->log->fd < 0)
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
    if (!e->log || e->log->fd < 0)
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
    if (!e->log || e->log->fd < 0)
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
    if (!e->log || e->log->fd < 0)
        return;
    emit(e, json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:s,s:s,s:I}", "type",
                      "webhook", "webhook", name, "change", change,
                      "last_seq", (json_int_t)last, "count", (int)n,
                      "attempts", (int)attempts,
                      "error", event_utf8_clean(error, t, sizeof t),
                      "file", file, "time_ms", (json_int_t)engine_now_ms()));
}
