/*
 * list_import.c - `sluice list import`: a CSV file streamed into a list.
 *
 * DESCRIPTION
 *   The reading rules -- header, merge field names, which rows are
 *   rejected and why -- are list_csv.c's; this file opens the input,
 *   feeds it in 64 KB reads, and is the reader's sink: rows go to the
 *   spool in batches (queue_import_*, queue/import.c), which finds
 *   duplicates and suppressed addresses in the writer.
 *
 *   Rejected rows go to --reject FILE as CSV "line,email,reason" in line
 *   order; without it the first few are shown on stderr.  Progress goes to
 *   stderr: a redrawn bar with rows/s and ETA (from the file size) on a
 *   terminal, else a line every two seconds.  The summary goes to stdout.
 *
 * DIAGNOSTICS
 *   Exit 65 with nothing imported for input that is not CSV (list_csv.c
 *   says which), 66 no such file, 73 the reject file cannot be created, 74
 *   a read or write error during the import (the rows committed before
 *   stay).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool_lists.h"

#define READ_CHUNK (64u << 10)
#define SAMPLE_REJECTS 5
#define PROGRESS_TTY_MS 100
#define PROGRESS_LINE_MS 2000
#define BAR_WIDTH 30

struct imp {
    struct tool_ctx *ctx;
    struct queue *q;
    const struct queue_list *l;
    const struct queue_account *a;
    const struct queue_actor *by;
    const struct list_import_opts *o;
    struct tool_csv *csv;            /* the reader (list_csv.c) */
    int fd;
    uint64_t size;                   /* file size (0: unknown) */
    const char *const *names;        /* merge fields, from the header */
    unsigned nnames;
    /* the spool side */
    struct queue_import *im;
    FILE *rej;
    uint64_t rejects, shown;
    /* progress */
    bool tty, bar_drawn;
    uint64_t t0, last_ms;
};

/* Monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------ reject output */

/* Write one CSV field, quoted when it needs to be. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One rejected row: into the reject file, or a sample on stderr. */
static void reject_out(struct imp *m, uint64_t line, const char *email,
                       const char *reason)
{
    m->rejects++;
    if (m->rej) {
        fprintf(m->rej, "%llu,", (unsigned long long)line);
        csv_field(m->rej, email ? email : "");
        fputc(',', m->rej);
        csv_field(m->rej, reason);
        fputc('\n', m->rej);
        return;
    }
    if (m->shown++ < SAMPLE_REJECTS) {
        if (m->bar_drawn)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s: line %llu: %s%s%.80s%s\n", m->o->prog,
                (unsigned long long)line, reason, email && *email ? " (" : "",
                email ? email : "", email && *email ? ")" : "");
    }
}

/* Results of the spool, in line order. */
static void on_result(void *arg, const struct queue_import_result *r)
{
    struct imp *m = arg;
    char why[64 + QUEUE_MAX_LIST_NAME];
    switch (r->outcome) {
    case QUEUE_IMPORT_DUPLICATE:
        if (r->dup_line)
            snprintf(why, sizeof why, "duplicate of line %llu",
                     (unsigned long long)r->dup_line);
        else
            snprintf(why, sizeof why, "duplicate: already in list %s",
                     m->l->name);
        reject_out(m, r->line, r->email, why);
        break;
    case QUEUE_IMPORT_SUPPRESSED:
        reject_out(m, r->line, r->email, "suppressed");
        break;
    case QUEUE_IMPORT_REJECTED:
        reject_out(m, r->line, r->email, r->reason ? r->reason : "rejected");
        break;
    default:
        break;
    }
}

/* --------------------------------------------------------- progress */

/* Redraw the bar or print a line when it is time (force: now). */
static void progress(struct imp *m, bool force)
{
    uint64_t t = now_ms();
    unsigned every = m->tty ? PROGRESS_TTY_MS : PROGRESS_LINE_MS;
    if (!force && t - m->last_ms < every)
        return;
    m->last_ms = t;
    double secs = (double)(t - m->t0) / 1000.0;
    double rate = secs > 0 ? (double)tool_csv_rows(m->csv) / secs : 0;
    double frac = m->size ? (double)tool_csv_fed(m->csv) / (double)m->size : -1;
    if (frac > 1)
        frac = 1;
    long eta = frac > 0.001 ? (long)(secs / frac - secs + 0.5) : -1;
    if (m->tty) {
        char bar[BAR_WIDTH + 1];
        int fill = frac >= 0 ? (int)(frac * BAR_WIDTH) : 0;
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = frac < 0 ? ' ' : i < fill ? '#' : '-';
        bar[BAR_WIDTH] = 0;
        fprintf(stderr, "\r");
        if (frac >= 0)
            fprintf(stderr, "%3d%% [%s] ", (int)(frac * 100), bar);
        fprintf(stderr, "%llu rows  %.0f rows/s",
                (unsigned long long)tool_csv_rows(m->csv), rate);
        if (eta >= 0)
            fprintf(stderr, "  ETA %ld:%02ld", eta / 60, eta % 60);
        fprintf(stderr, "\033[K");
        m->bar_drawn = true;
    } else {
        fprintf(stderr, "%s: %llu rows", m->o->prog,
                (unsigned long long)tool_csv_rows(m->csv));
        if (frac >= 0)
            fprintf(stderr, ", %d%%", (int)(frac * 100));
        fprintf(stderr, ", %.0f rows/s", rate);
        if (eta >= 0)
            fprintf(stderr, ", ETA %ld s", eta);
        fputc('\n', stderr);
    }
    fflush(stderr);
}

/* --------------------------------------------------- the reader's sink */

/* The header is good: begin the import with its merge fields. */
static void sink_header(void *arg, const char *const *names, unsigned n)
{
    struct imp *m = arg;
    int err = queue_import_begin(m->q, m->l->id, m->a->suppression_owner,
                                 names, n, on_result, m, &m->im);
    if (err) {
        const char *d = queue_last_detail();
        tool_csv_fatal(m->csv, err == -EINVAL ? TOOL_EX_DATAERR
                       : err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT
                       : tool_exit_for(err), "%s",
                       *d ? d : queue_strerror(err));
        return;
    }
    m->names = names;
    m->nnames = n;
}

/* A checked row: to the spool; one the spool refuses is rejected. */
static int sink_row(void *arg, uint64_t line, const char *addr,
                    const char *const *vals, const size_t *lens, char *why)
{
    struct imp *m = arg;
    int err = queue_import_add(m->im, line, addr, vals, lens);
    if (err == -EINVAL || err == QUEUE_ETOOBIG) {
        snprintf(why, TOOL_CSV_WHY_MAX, "%s: %s", err == -EINVAL
                     ? "invalid row" : "row too large", queue_last_detail());
        return -1;
    }
    if (err) {
        const char *d = queue_last_detail();
        tool_csv_fatal(m->csv, err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT
                       : tool_exit_for(err), "%s",
                       *d ? d : queue_strerror(err));
    }
    return 0;
}

/* A rejected row: to the spool too, so results come back in line order. */
static void sink_reject(void *arg, uint64_t line, const char *email,
                        const char *why)
{
    struct imp *m = arg;
    int err = queue_import_reject(m->im, line, email, why);
    if (err)
        tool_csv_fatal(m->csv, tool_exit_for(err), "%s", queue_last_detail());
}

/* Every 1024 rows: progress, when it is time. */
static void sink_tick(void *arg)
{
    progress(arg, false);
}

static const struct tool_csv_sink import_sink = {
    .header = sink_header, .row = sink_row, .reject = sink_reject,
    .tick = sink_tick,
};

/* Read the whole input into the reader. */
static void read_all(struct imp *m, char *buf)
{
    for (;;) {
        ssize_t got = read(m->fd, buf, READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            tool_csv_fatal(m->csv, TOOL_EX_IOERR, "%s: %s", m->o->path,
                           strerror(errno));
            return;
        }
        if (got == 0)
            break;
        tool_csv_feed(m->csv, buf, (size_t)got);
        if (tool_csv_status(m->csv, NULL))
            return;
        progress(m, false);
    }
    tool_csv_finish(m->csv);
}

/* ------------------------------------------------------------ summary */

/* The final summary line (or JSON object) on stdout. */
static void summary(struct imp *m, const struct queue_import_counts *c,
                    double secs)
{
    double rate = secs > 0 ? (double)c->rows / secs : 0;
    if (m->ctx->json) {
        json_t *f = json_array();
        for (unsigned i = 0; i < m->nnames; i++)
            json_array_append_new(f, json_string(m->names[i]));
        tool_emit_json(json_pack(
            "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:s?,s:o}", "list",
            m->l->name, "account", m->a->name, "rows", (json_int_t)c->rows,
            "imported", (json_int_t)c->added, "duplicate",
            (json_int_t)c->duplicate, "invalid", (json_int_t)c->rejected,
            "suppressed", (json_int_t)c->suppressed, "seconds", secs,
            "rows_per_second", rate, "reject_file", m->o->reject_path,
            "fields", f));
        return;
    }
    printf("list %s: %llu rows: imported %llu, duplicate %llu, invalid "
           "%llu, suppressed %llu (%.1f s, %.0f rows/s)\n", m->l->name,
           (unsigned long long)c->rows, (unsigned long long)c->added,
           (unsigned long long)c->duplicate, (unsigned long long)c->rejected,
           (unsigned long long)c->suppressed, secs, rate);
    if (m->o->reject_path && m->rejects)
        printf("%llu rejected rows are listed in %s\n",
               (unsigned long long)m->rejects, m->o->reject_path);
    else if (m->shown > SAMPLE_REJECTS)
        fprintf(stderr, "%s: ... and %llu more rejected rows (--reject FILE "
                "lists them all)\n", m->o->prog,
                (unsigned long long)(m->shown - SAMPLE_REJECTS));
}

int tool_list_import(struct tool_ctx *ctx, struct queue *q,
                     const struct queue_list *l, const struct queue_account *a,
                     const struct queue_actor *by,
                     const struct list_import_opts *o)
{
    struct imp *m = calloc(1, sizeof *m);
    char *buf = malloc(READ_CHUNK);
    struct stat st;
    int rc = 0;
    if (!m || !buf) {
        free(m);
        free(buf);
        return TOOL_EX_OSERR;
    }
    *m = (struct imp){ .ctx = ctx, .q = q, .l = l, .a = a, .by = by, .o = o,
                       .fd = -1 };
    bool stdin_in = !strcmp(o->path, "-");
    m->fd = stdin_in ? STDIN_FILENO : open(o->path, O_RDONLY | O_CLOEXEC);
    if (m->fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", o->prog, o->path, strerror(errno));
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    if (fstat(m->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: is a directory\n", o->prog, o->path);
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    if (S_ISREG(st.st_mode)) {
        m->size = (uint64_t)st.st_size;
        posix_fadvise(m->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    if (o->reject_path) {
        int rfd = open(o->reject_path, O_WRONLY | O_CREAT | O_TRUNC |
                                           O_CLOEXEC, 0600);
        if (rfd < 0 || !(m->rej = fdopen(rfd, "w"))) {
            fprintf(stderr, "%s: %s: %s\n", o->prog, o->reject_path,
                    strerror(errno));
            if (rfd >= 0)
                close(rfd);
            rc = TOOL_EX_CANTCREAT;
            goto out;
        }
        fputs("line,email,reason\n", m->rej);
    }
    if (!(m->csv = tool_csv_new(o->email_column, &import_sink, m))) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    m->tty = isatty(STDERR_FILENO);
    m->t0 = m->last_ms = now_ms();
    read_all(m, buf);

    struct queue_import_counts c = { 0 };
    const char *why;
    int err = 0;
    if (m->im) {
        err = queue_import_end(m->im, by, tool_csv_status(m->csv, &why)
                                              ? why : NULL, &c);
        m->im = NULL;
    }
    if (m->rej && (fflush(m->rej) || ferror(m->rej)))
        tool_csv_fatal(m->csv, TOOL_EX_IOERR, "%s: %s", o->reject_path,
                       strerror(errno));
    double secs = (double)(now_ms() - m->t0) / 1000.0;
    if (m->bar_drawn) {
        progress(m, true);
        fputs("\r\033[K", stderr);
    }
    if (tool_csv_status(m->csv, &why)) {
        fprintf(stderr, "%s: %s%s\n", o->prog, why,
                tool_csv_header_done(m->csv)
                    ? " (rows committed before this stay)" : "");
        rc = tool_csv_status(m->csv, NULL);
    } else if (err) {
        rc = tool_admin_error(o->prog, err);
    } else {
        summary(m, &c, secs);
    }
out:
    if (m->fd >= 0 && !stdin_in)
        close(m->fd);
    if (m->rej)
        fclose(m->rej);
    tool_csv_free(m->csv);
    free(m);
    free(buf);
    return rc;
}
