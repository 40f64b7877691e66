/*
 * evfile.c - a file fed by a cursor over the spool's events: the
 * machinery under the event log (eventlog.c) and the accounting files
 * (accounting.c).
 *
 * DESCRIPTION
 *   The file copies the spool's events in seq order, one whole line per
 *   event (or none: a consumer may leave events out), each line holding
 *   the event's seq.  Its owner reads the events after evfile_written()
 *   (evstream_from(): the window of decoded events all consumers share),
 *   hands each to evfile_add() (the line goes into a bounded batch) and
 *   writes the batch with evfile_flush(): one write(2) on an O_APPEND
 *   descriptor, short writes continued; then evfile_save() saves the seq
 *   of the last event taken as the file's spool cursor, a small write
 *   that joins the next commit group.
 *
 *   Resume rule (kill -9 at any moment): at open a last line without its
 *   newline (a write cut short) is cut off, and the last line that has a
 *   seq says where the file stands: it resumes right after it, whatever
 *   the cursor says (the cursor may lag the file).  Only a file without
 *   any seq (new, just rotated, or written by an older sluice) resumes
 *   after the saved cursor, or, with no cursor yet, after the spool's
 *   newest event ("from now on").  A file whose last seq is beyond the
 *   spool's newest belongs to another spool and is refused.  A write
 *   that fails is cut back to the last whole line and tried again a
 *   second later; the events wait in the spool meanwhile.
 *
 *   Rotation keeps that rule true: a file is rotated (or reopened by name
 *   after SIGUSR1) only once the cursor is saved at the file's last event
 *   with no save in flight: until then no line is added (the events wait
 *   in the spool, a commit group or so).  Then the file is renamed to
 *   FILE.YYYYMMDDTHHMMSSZ (".1", ".2"... when that name is taken), a new
 *   FILE is started, and the renamed one is compressed off the loop
 *   (evfile_gz.c).  A kill -9 after the rename finds no FILE, or one
 *   without seq: it resumes after the cursor, which is the rotated
 *   file's last event.  Size rotation closes a file before the batch
 *   that would take it past the size; time rotation happens at each
 *   multiple of the period in UTC (1d: at midnight), and at open for a
 *   file last written in an earlier period.  A stop does not rotate.
 *
 *   The file is not fsynced per batch: each line copies an event the
 *   spool has already committed, so a line lost with the page cache is
 *   written again at the next start from the spool.  It is fdatasynced
 *   at a clean stop.
 *
 * DIAGNOSTICS
 *   evfile_open() fails with -errno (the file cannot be opened, locked or
 *   read) or ENGINE_E_LOGDATA (a damaged line, a file ahead of the
 *   spool), the reason in words in its buffer.  Failed writes, rotations
 *   and cursor saves while running are reported on stderr once per
 *   spell.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "evfile.h"

#define LOG_BUF (1u << 20)  /* lines of one batch; also the tail read at open */
#define PUMP_BATCH 2048     /* events per read transaction */
#define PUMP_ROUNDS 4       /* batches per tick at most (the rest next tick) */
#define RETRY_MS 1000       /* a failed write or rotation waits this long */

struct evfile {
    struct engine *e;
    struct evfile_spec spec;  /* strings below are our copies */
    char *what, *path, *cursor, *header;
    int fd;
    char *buf;            /* LOG_BUF bytes */
    size_t len;
    uint64_t size;        /* bytes in the file */
    uint64_t pending;     /* newest seq taken into the batch */
    uint64_t written;     /* newest seq whose line is in the file */
    uint64_t saved;       /* newest seq saved as the cursor */
    uint64_t saving;      /* seq of the save in flight, 0 if none */
    uint64_t next_cut_ms; /* the next time boundary, 0: none */
    bool closing;         /* stopping: no more asynchronous saves, no
                             size limit on batches */
    bool broken;          /* a write failed: wait for retry_ms */
    bool cut_pending;     /* and its partial line is not cut off yet */
    bool rotate_due, reopen_due;
    bool rotate_failed;   /* reported, until one works */
    off_t cut_at;
    uint64_t retry_ms;
    int save_err;
};

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

/* Append whole lines (after the header when the file is empty); on
 * failure cut the file back to where it was, so it never keeps a partial
 * line, and wait RETRY_MS. */
static int write_lines(struct evfile *f, const char *buf, size_t n)
{
    struct stat st;
    int err = fstat(f->fd, &st) ? -errno : 0;
    size_t hl = f->header && !err && st.st_size == 0 ? strlen(f->header) : 0;
    if (!err && hl)
        err = write_all(f->fd, f->header, hl);
    if (!err)
        err = write_all(f->fd, buf, n);
    if (!err) {
        if (f->broken)
            fprintf(stderr, "sluiced: %s %s: writing again\n", f->what,
                    f->path);
        f->broken = false;
        f->size = (uint64_t)st.st_size + hl + n;
        return 0;
    }
    if (!f->broken)
        fprintf(stderr, "sluiced: %s %s: %s; its events wait in the spool "
                        "and are written when it can be\n", f->what, f->path,
                strerror(-err));
    f->broken = true;
    f->cut_at = st.st_size;
    f->size = (uint64_t)st.st_size;
    f->cut_pending = ftruncate(f->fd, f->cut_at) != 0;
    f->retry_ms = engine_now_ms() + RETRY_MS;
    return err;
}

/* Whether the file takes lines now: after a failure, once its partial
 * line is cut and RETRY_MS have passed (at once when stopping). */
static bool usable(struct evfile *f, bool now)
{
    if (!f->broken)
        return true;
    if (!now && engine_now_ms() < f->retry_ms)
        return false;
    if (f->cut_pending && ftruncate(f->fd, f->cut_at)) {
        f->retry_ms = engine_now_ms() + RETRY_MS;
        return false;
    }
    f->cut_pending = false;
    return true;
}

int evfile_line(struct evfile *f, const char *line, size_t n)
{
    if (!f || !usable(f, false))
        return -EAGAIN;
    return write_lines(f, line, n);
}

int evfile_add(struct evfile *f, struct evstream_event *x)
{
    const struct queue_event *ev = &x->ev;
    if (ev->seq <= f->pending)
        return 0;
    if (f->spec.rotate.size && !f->closing && f->len &&
        f->size + f->len >= f->spec.rotate.size) {
        f->rotate_due = true;
        return 1;
    }
    size_t n = f->spec.ops->format(f->spec.arg, x, f->buf + f->len,
                                   LOG_BUF - f->len);
    if (n == EVFILE_SKIP) {
        f->pending = ev->seq;
        return 0;
    }
    if (!n)
        return 1;
    f->len += n;
    f->pending = ev->seq;
    return 0;
}

long evfile_flush(struct evfile *f)
{
    size_t n = f->len;
    f->len = 0;
    if (n) {
        int err = write_lines(f, f->buf, n);
        if (err) {
            f->pending = f->written;
            return err;
        }
    }
    f->written = f->pending;
    if (f->spec.rotate.size && !f->closing && f->size >= f->spec.rotate.size)
        f->rotate_due = true;
    return (long)n;
}

uint64_t evfile_written(const struct evfile *f)
{
    return f->written;
}

/* ------------------------------------------------------------ cursor */

/* Loop thread: a cursor save has committed (or failed). */
static void on_saved(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct evfile *f = arg;
    (void)first;
    (void)msg;
    if (!status) {
        f->saved = f->saving;
        f->save_err = 0;
    } else if (status != f->save_err) {
        fprintf(stderr, "sluiced: %s: saving its cursor: %s (saved again "
                        "with the next lines)\n", f->what,
                engine_strerror(status));
        f->save_err = status;
    }
    f->saving = 0;
}

void evfile_save(struct evfile *f)
{
    if (f->closing || f->saving || f->written == f->saved)
        return;
    f->saving = f->written;
    int err = queue_submit_cursor(f->e->q, f->cursor, f->written, f->e->cmp,
                                  on_saved, f);
    if (err)
        on_saved(f, err, 0, 0);
}

/* --------------------------------------------------- rotation, reopen */

/* Open path for appending and lock it: the descriptor or -errno. */
static int open_locked(const char *path)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* The first multiple of the period after t_ms. */
static uint64_t next_cut(const struct evfile *f, uint64_t t_ms)
{
    uint64_t p = f->spec.rotate.period_ms;
    return p ? (t_ms / p + 1) * p : 0;
}

/* Whether the file holds more than its header. */
static bool has_lines(const struct evfile *f)
{
    return f->size > (f->header ? strlen(f->header) : 0);
}

/* A name FILE.YYYYMMDDTHHMMSSZ[.N] that neither exists nor has a .gz. */
static int rotated_name(const struct evfile *f, char *out, size_t cap)
{
    time_t now = (time_t)(engine_now_ms() / 1000);
    struct tm tm;
    char stamp[32];
    struct stat st;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (unsigned i = 0; i < 1000; i++) {
        char gz[4200];
        int n = i ? snprintf(out, cap, "%s.%s.%u", f->path, stamp, i)
                  : snprintf(out, cap, "%s.%s", f->path, stamp);
        if (n < 0 || (size_t)n + 4 >= cap)
            return -ENAMETOOLONG;
        snprintf(gz, sizeof gz, "%s.gz", out);
        if (lstat(out, &st) && errno == ENOENT && lstat(gz, &st) &&
            errno == ENOENT)
            return 0;
    }
    return -EEXIST;
}

/* Rename the file aside, start a new one, compress the old: 0 or -errno
 * (then the file is as it was). */
static int rotate(struct evfile *f)
{
    char name[4096];
    int err = rotated_name(f, name, sizeof name);
    if (err)
        return err;
    if (rename(f->path, name)) {
        if (errno != ENOENT)
            return -errno;
        /* moved away by someone else: start a new file, compress nothing */
        f->reopen_due = true;
        return 0;
    }
    int fd = open_locked(f->path);
    if (fd < 0) {
        if (rename(name, f->path))
            fprintf(stderr, "sluiced: %s: moving %s back to %s: %s\n",
                    f->what, name, f->path, strerror(errno));
        return fd;
    }
    close(f->fd);
    f->fd = fd;
    f->size = 0;
    f->rotate_due = false;
    f->next_cut_ms = next_cut(f, engine_now_ms());
    evfile_gz(f->e, f->what, name);
    return 0;
}

/* Open the file by name again (it was moved away, or not): 0 or -errno. */
static int reopen(struct evfile *f)
{
    struct stat a, b;
    f->reopen_due = false;
    if (!fstat(f->fd, &a) && !stat(f->path, &b) && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        return 0; /* the same file: nothing to do */
    int fd = open_locked(f->path);
    if (fd < 0 || fstat(fd, &b)) {
        int err = fd < 0 ? fd : -errno;
        if (fd >= 0)
            close(fd);
        f->reopen_due = true;
        return err;
    }
    close(f->fd);
    f->fd = fd;
    f->size = (uint64_t)b.st_size;
    f->rotate_due = f->spec.rotate.size && f->size >= f->spec.rotate.size;
    f->next_cut_ms = next_cut(f, engine_now_ms());
    fprintf(stderr, "sluiced: %s %s: reopened\n", f->what, f->path);
    return 0;
}

void evfile_reopen(struct evfile *f)
{
    if (f)
        f->reopen_due = true;
}

bool evfile_ready(struct evfile *f, bool all)
{
    if (all)
        f->closing = true; /* the cursor: evfile_close() */
    if (!usable(f, all))
        return false;
    uint64_t now = engine_now_ms();
    if (f->next_cut_ms && now >= f->next_cut_ms) {
        if (has_lines(f))
            f->rotate_due = true;
        else
            f->next_cut_ms = next_cut(f, now);
    }
    if (all || !(f->rotate_due || f->reopen_due))
        return true;
    /* the new file resumes after the cursor: it must be the last event */
    if (f->saving || now < f->retry_ms)
        return false;
    if (f->saved != f->written) {
        evfile_save(f);
        return false;
    }
    int err = f->reopen_due ? reopen(f) : rotate(f);
    if (!err && f->reopen_due)
        err = reopen(f); /* the file was moved away before the rotation */
    if (err) {
        if (!f->rotate_failed)
            fprintf(stderr, "sluiced: %s %s: %s: %s (tried again every "
                            "second; lines wait in the spool)\n", f->what,
                    f->path, f->reopen_due ? "reopening" : "rotating",
                    strerror(-err));
        f->rotate_failed = true;
        f->retry_ms = now + RETRY_MS;
        return false;
    }
    f->rotate_failed = false;
    return true;
}

/* ---------------------------------------------------------- the pump */

struct pump {
    struct evfile *f;
    bool full;
    size_t seen;
};

/* One event read: its line into the batch. */
static int on_event(void *arg, struct evstream_event *x)
{
    struct pump *p = arg;
    if (evfile_add(p->f, x)) {
        p->full = true;
        return 1;
    }
    p->seen++;
    return 0;
}

void evfile_pump(struct evfile *f, bool all)
{
    for (unsigned round = 0; all || round < PUMP_ROUNDS; round++) {
        if (!evfile_ready(f, all))
            break;
        struct pump p = { .f = f };
        long n = evstream_from(f->e, f->written + 1, PUMP_BATCH, on_event,
                               &p);
        long w = evfile_flush(f);
        if (n < 0 || w < 0 || (!p.full && p.seen < PUMP_BATCH) ||
            (p.full && w == 0 && !f->rotate_due))
            break;
    }
    evfile_save(f);
}

/* -------------------------------------------------------------- open */

/* Cut a last line left without its newline and find the seq of the last
 * line that has one (*has false when none).  Reads at most LOG_BUF bytes
 * of the tail. */
static int check_tail(struct evfile *f, uint64_t *last, bool *has,
                      char *err, size_t errlen)
{
    struct stat st;
    *has = false;
    if (fstat(f->fd, &st))
        return -errno;
    size_t win = st.st_size > (off_t)LOG_BUF ? LOG_BUF : (size_t)st.st_size;
    off_t base = st.st_size - (off_t)win;
    for (size_t got = 0; got < win;) {
        ssize_t r = pread(f->fd, f->buf + got, win - got, base + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    size_t end = win;
    while (end > 0 && f->buf[end - 1] != '\n')
        end--;
    if (end < win) {
        if (end == 0 && base > 0) {
            snprintf(err, errlen, "%s %s: its last line is longer than %u "
                     "bytes: the file is damaged or not an %s; move it away",
                     f->what, f->path, LOG_BUF, f->what);
            return ENGINE_E_LOGDATA;
        }
        if (ftruncate(f->fd, base + (off_t)end))
            return -errno;
        fprintf(stderr, "sluiced: %s %s: cut %zu bytes of a line the last "
                        "run left unfinished\n", f->what, f->path, win - end);
    }
    f->size = (uint64_t)(base + (off_t)end);
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && f->buf[start - 1] != '\n')
            start--;
        if (start == 0 && base > 0)
            break; /* the window begins inside this line */
        int r = f->spec.ops->line_seq(f->spec.arg, f->buf + start,
                                      end - 1 - start, last);
        if (r < 0) {
            snprintf(err, errlen, "%s %s: the line at byte %lld is not %s: "
                     "the file is damaged or not an %s; move it away",
                     f->what, f->path, (long long)(base + (off_t)start),
                     f->spec.ops->line_form, f->what);
            return ENGINE_E_LOGDATA;
        }
        if (r == 1 && *last > 0)
            *has = true;
        if (r >= 1)
            break;
        end = start;
    }
    return 0;
}

/* Decide where the file resumes (see the rule above) and save it. */
static int resume_point(struct evfile *f, uint64_t newest, char *err,
                        size_t errlen)
{
    uint64_t file_last = 0, cur;
    bool has;
    int rc = check_tail(f, &file_last, &has, err, errlen);
    if (rc)
        return rc;
    if (has && file_last > newest) {
        snprintf(err, errlen, "%s %s holds events up to seq %llu but the "
                 "spool's newest is %llu: it was written for another spool, "
                 "or this spool lost its newest transactions (damage, an "
                 "older copy); move it away", f->what, f->path,
                 (unsigned long long)file_last, (unsigned long long)newest);
        return ENGINE_E_LOGDATA;
    }
    int cr = queue_cursor_get(f->e->q, f->cursor, &cur);
    if (cr && cr != QUEUE_ENOTFOUND) {
        snprintf(err, errlen, "%s cursor: %s", f->what, engine_strerror(cr));
        return cr;
    }
    f->saved = cr ? 0 : cur;
    f->written = has ? file_last : !cr && cur < newest ? cur : newest;
    f->pending = f->written;
    if (has && !cr && cur != file_last)
        fprintf(stderr, "sluiced: %s %s: resuming after seq %llu, its last "
                        "line (the saved cursor said %llu)\n", f->what,
                f->path, (unsigned long long)file_last,
                (unsigned long long)cur);
    if (cr || cur != f->written) {
        if ((rc = queue_cursor_put(f->e->q, f->cursor, f->written)))
            fprintf(stderr, "sluiced: %s: saving its cursor: %s\n", f->what,
                    engine_strerror(rc));
        else
            f->saved = f->written;
    }
    return 0;
}

/* Free f and its file. */
static void evfile_free(struct evfile *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->what);
    free(f->path);
    free(f->cursor);
    free(f->header);
    free(f->buf);
    free(f);
}

int evfile_open(struct evfile **out, struct engine *e,
                const struct evfile_spec *spec, uint64_t newest, char *err,
                size_t errlen)
{
    struct evfile *f = calloc(1, sizeof *f);
    int rc;
    *out = NULL;
    if (!f)
        return -ENOMEM;
    f->e = e;
    f->fd = -1;
    f->spec = *spec;
    if (!(f->what = strdup(spec->what)) || !(f->path = strdup(spec->path)) ||
        !(f->cursor = strdup(spec->cursor)) ||
        (spec->header && !(f->header = strdup(spec->header))) ||
        !(f->buf = malloc(LOG_BUF))) {
        snprintf(err, errlen, "%s: out of memory", spec->what);
        evfile_free(f);
        return -ENOMEM;
    }
    f->fd = open_locked(f->path);
    if (f->fd < 0) {
        rc = f->fd;
        snprintf(err, errlen, "%s %s: %s", f->what, f->path,
                 rc == -EWOULDBLOCK ? "in use by another process"
                                    : strerror(-rc));
        evfile_free(f);
        return rc;
    }
    if ((rc = resume_point(f, newest, err, errlen))) {
        if (rc != ENGINE_E_LOGDATA && rc > -4096)
            snprintf(err, errlen, "%s %s: %s", f->what, f->path,
                     strerror(-rc));
        evfile_free(f);
        return rc;
    }
    uint64_t now = engine_now_ms();
    f->next_cut_ms = next_cut(f, now);
    struct stat st;
    if (f->spec.rotate.size && f->size >= f->spec.rotate.size)
        f->rotate_due = true;
    if (f->next_cut_ms && has_lines(f) && !fstat(f->fd, &st) &&
        next_cut(f, (uint64_t)st.st_mtime * 1000) <= now)
        f->rotate_due = true; /* last written in an earlier period */
    if (f->spec.rotate.size || f->spec.rotate.period_ms)
        evfile_gz_leftovers(e, f->what, f->path);
    *out = f;
    return 0;
}

void evfile_close(struct evfile *f)
{
    if (!f)
        return;
    f->closing = true;
    if (fdatasync(f->fd))
        fprintf(stderr, "sluiced: %s %s: %s\n", f->what, f->path,
                strerror(errno));
    int rc = f->written == f->saved ? 0
             : queue_cursor_put(f->e->q, f->cursor, f->written);
    if (rc)
        fprintf(stderr, "sluiced: %s: saving its cursor: %s\n", f->what,
                engine_strerror(rc));
    evfile_free(f);
}
