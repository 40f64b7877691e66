/*
 * list_import.c - `sluice list import`: a CSV file streamed into a list.
 *
 * DESCRIPTION
 *   The file is RFC 4180 CSV (libcsv, CSV_STRICT) with a header row: one
 *   column holds the address ("email", "e-mail" or "email_address" without
 *   regard to case, or --email-column NAME), every other column becomes a
 *   merge field named after its header, normalised to [a-z0-9_] in lower
 *   case ("First Name" -> first_name).  A UTF-8 byte order mark is skipped.
 *
 *   Reading is streaming in constant memory: 64 KB reads, cut at line
 *   feeds so that each row's first line is known, and given to libcsv at
 *   most FEED_MAX bytes at a time so that no value grows past its cap
 *   (QUEUE_MAX_FIELD_VALUE) before it is seen.  Rows go to the spool in
 *   batches (queue_import_*, queue/import.c), which finds duplicates and
 *   suppressed addresses in the writer.
 *
 *   A row is rejected -- and the import goes on -- for: a value over its
 *   cap, a NUL byte, text that is not UTF-8, the wrong number of fields, a
 *   malformed quote (the rest of that line is skipped), an unterminated
 *   quote at the end of the file, an invalid address (email_addr.c), a
 *   duplicate (in the file or already in the list), a suppressed address.
 *   Values keep CR and LF as given: the renderer makes them header-safe.
 *   Line numbers count line feeds from 1 (the header) and name the line a
 *   row starts on.
 *
 *   Rejected rows go to --reject FILE as CSV "line,email,reason" in line
 *   order; without it the first few are shown on stderr.  Progress goes to
 *   stderr: a redrawn bar with rows/s and ETA (from the file size) on a
 *   terminal, else a line every two seconds.  The summary goes to stdout.
 *
 * DIAGNOSTICS
 *   Exit 65 with nothing imported for input that is not CSV: empty, NUL
 *   bytes or non-UTF-8 text or a malformed quote in the header, no email
 *   column, more than QUEUE_MAX_FIELDS merge fields, header names that are
 *   empty, reserved or the same once normalised.  66 no such file, 73 the
 *   reject file cannot be created, 74 a read or write error during the
 *   import (the rows committed before stay).
 */
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool_lists.h"

#define READ_CHUNK (64u << 10)
#define FEED_MAX 4096
#define MAX_COLS (QUEUE_MAX_FIELDS + 1)
#define ROW_CAP (QUEUE_MAX_CONTACT + QUEUE_MAX_FIELD_VALUE)
#define SAMPLE_REJECTS 5
#define HEADER_MAX (1u << 20)        /* bytes before the header must end */
#define PROGRESS_TTY_MS 100
#define PROGRESS_LINE_MS 2000
#define BAR_WIDTH 30
/* libcsv parser states (csv_parser.pstate, libcsv.c) */
#define CSV_ROW_NOT_BEGUN 0
#define CSV_FIELD_BEGUN 2

struct imp {
    struct tool_ctx *ctx;
    struct queue *q;
    const struct queue_list *l;
    const struct queue_account *a;
    const struct queue_actor *by;
    const struct list_import_opts *o;
    struct csv_parser p;
    int fd;
    uint64_t size, fed;              /* file size (0: unknown), bytes fed */
    uint64_t line, row_line;         /* line being fed; first of the row */
    bool skip_eol;                   /* dropping the rest of a bad line */
    /* header */
    bool header_done;
    unsigned ncols, email_col;
    char names[QUEUE_MAX_FIELDS][QUEUE_MAX_FIELD_NAME + 1];
    const char *name_ptrs[QUEUE_MAX_FIELDS];
    /* the row being read */
    unsigned nf;
    char *row;
    size_t rowlen, off[MAX_COLS], len[MAX_COLS];
    bool is_bad, field_over;
    char bad[TOOL_WHY_MAX + 96];
    /* the spool side */
    struct queue_import *im;
    int fatal;                       /* exit code once the import must end */
    char fatal_msg[512];
    FILE *rej;
    uint64_t rejects, shown;
    bool write_failed;
    /* progress */
    bool tty, bar_drawn;
    uint64_t t0, last_ms, rows;
};

/* Monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* libcsv space test: nothing is a blank to strip (RFC 4180 keeps them). */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

/* (Re)start the parser after a malformed row. */
static int parser_init(struct imp *m)
{
    if (csv_init(&m->p, CSV_STRICT | CSV_STRICT_FINI))
        return -1;
    csv_set_space_func(&m->p, no_space);
    csv_set_blk_size(&m->p, 1024);
    return 0;
}

/* End the import with exit code rc and a message (the first one wins). */
static void fatal(struct imp *m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fatal(struct imp *m, int rc, const char *fmt, ...)
{
    if (m->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->fatal_msg, sizeof m->fatal_msg, fmt, ap);
    va_end(ap);
    m->fatal = rc;
}

/* Mark the current row rejected (the first reason is kept). */
static void row_bad(struct imp *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void row_bad(struct imp *m, const char *fmt, ...)
{
    if (m->is_bad)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->bad, sizeof m->bad, fmt, ap);
    va_end(ap);
    m->is_bad = true;
}

/* "3 (first_name)" for column c of a data row, into buf. */
static const char *col_name(const struct imp *m, unsigned c, char *buf,
                            size_t cap)
{
    if (!m->header_done || c >= m->ncols)
        snprintf(buf, cap, "%u", c + 1);
    else if (c == m->email_col)
        snprintf(buf, cap, "%u (email)", c + 1);
    else
        snprintf(buf, cap, "%u (%s)", c + 1,
                 m->names[c < m->email_col ? c : c - 1]);
    return buf;
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
    double rate = secs > 0 ? (double)m->rows / secs : 0;
    double frac = m->size ? (double)m->fed / (double)m->size : -1;
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
        fprintf(stderr, "%llu rows  %.0f rows/s", (unsigned long long)m->rows,
                rate);
        if (eta >= 0)
            fprintf(stderr, "  ETA %ld:%02ld", eta / 60, eta % 60);
        fprintf(stderr, "\033[K");
        m->bar_drawn = true;
    } else {
        fprintf(stderr, "%s: %llu rows", m->o->prog,
                (unsigned long long)m->rows);
        if (frac >= 0)
            fprintf(stderr, ", %d%%", (int)(frac * 100));
        fprintf(stderr, ", %.0f rows/s", rate);
        if (eta >= 0)
            fprintf(stderr, ", ETA %ld s", eta);
        fputc('\n', stderr);
    }
    fflush(stderr);
}

/* --------------------------------------------------------------- header */

/* Header name s[0..n) normalised into out: [a-z0-9] runs joined by "_". */
static int norm_name(const char *s, size_t n, char *out)
{
    size_t o = 0;
    bool sep = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            sep = true;
            continue;
        }
        if (o + (sep && o) >= QUEUE_MAX_FIELD_NAME)
            return -1;
        if (sep && o)
            out[o++] = '_';
        sep = false;
        out[o++] = c;
    }
    out[o] = 0;
    return 0;
}

/* Whether header cell s[0..n), blanks trimmed, is name (no case). */
static bool header_is(const char *s, size_t n, const char *name)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(name) && !strncasecmp(s, name, n);
}

/* The header row: find the email column, name the others, begin. */
static void header_row(struct imp *m)
{
    static const char *const auto_names[] = { "email", "e-mail",
                                              "email_address" };
    char norm[QUEUE_MAX_FIELD_NAME + 1];
    unsigned found = MAX_COLS;
    if (m->is_bad) {
        fatal(m, TOOL_EX_DATAERR, "not a CSV file: the header (line 1): %s",
              m->bad);
        return;
    }
    if (m->nf > MAX_COLS) {
        fatal(m, TOOL_EX_DATAERR, "the header has %u columns: at most %d "
              "(the email column and %d merge fields)", m->nf, MAX_COLS,
              QUEUE_MAX_FIELDS);
        return;
    }
    for (unsigned c = 0; c < m->nf; c++) {
        const char *s = m->row + m->off[c];
        size_t n = m->len[c];
        if (!tool_utf8_ok(s, n)) {
            fatal(m, TOOL_EX_DATAERR, "not a CSV file of UTF-8 text: the "
                  "header (line 1) is not UTF-8");
            return;
        }
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 32 || s[i] == 0x7f) {
                fatal(m, TOOL_EX_DATAERR, "not a CSV file: control "
                      "characters in the header (line 1, column %u)", c + 1);
                return;
            }
    }
    if (m->o->email_column) {
        for (unsigned c = 0; c < m->nf && found == MAX_COLS; c++)
            if (header_is(m->row + m->off[c], m->len[c], m->o->email_column))
                found = c;
    } else {
        for (size_t k = 0; k < 3 && found == MAX_COLS; k++)
            for (unsigned c = 0; c < m->nf && found == MAX_COLS; c++)
                if (header_is(m->row + m->off[c], m->len[c], auto_names[k]))
                    found = c;
    }
    if (found == MAX_COLS) {
        if (m->o->email_column)
            fatal(m, TOOL_EX_DATAERR, "no column named '%.80s' in the header "
                  "(line 1)", m->o->email_column);
        else
            fatal(m, TOOL_EX_DATAERR, "no email column: the header (line 1) "
                  "has no column named email, e-mail or email_address (name "
                  "it with --email-column)");
        return;
    }
    m->email_col = found;
    m->ncols = m->nf;
    unsigned v = 0;
    for (unsigned c = 0; c < m->nf; c++) {
        if (c == found)
            continue;
        const char *s = m->row + m->off[c];
        int sn = (int)(m->len[c] > 80 ? 80 : m->len[c]);
        if (norm_name(s, m->len[c], norm) || !*norm) {
            fatal(m, TOOL_EX_DATAERR, "column %u of the header ('%.*s') %s: "
                  "merge field names are 1 to %d of a-z 0-9 _", c + 1, sn, s,
                  *norm ? "is too long" : "has no letters or digits",
                  QUEUE_MAX_FIELD_NAME);
            return;
        }
        if (!strcmp(norm, "email") || !strcmp(norm, "unsubscribe_url")) {
            fatal(m, TOOL_EX_DATAERR, "column %u of the header ('%.*s'): "
                  "'%s' is reserved for the renderer", c + 1, sn, s, norm);
            return;
        }
        for (unsigned k = 0; k < v; k++)
            if (!strcmp(m->names[k], norm)) {
                fatal(m, TOOL_EX_DATAERR, "column %u of the header ('%.*s') "
                      "is merge field '%s' again", c + 1, sn, s, norm);
                return;
            }
        memcpy(m->names[v], norm, sizeof norm);
        m->name_ptrs[v] = m->names[v];
        v++;
    }
    int err = queue_import_begin(m->q, m->l->id, m->a->suppression_owner,
                                 m->name_ptrs, v, on_result, m, &m->im);
    if (err) {
        const char *d = queue_last_detail();
        fatal(m, err == -EINVAL ? TOOL_EX_DATAERR
                 : err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT
                 : tool_exit_for(err), "%s", *d ? d : queue_strerror(err));
        return;
    }
    m->header_done = true;
}

/* ----------------------------------------------------------- data rows */

/* Reject the current row with reason, naming its email cell if any. */
static void row_reject(struct imp *m, const char *reason)
{
    char email[QUEUE_MAX_RCPT + 1] = "";
    if (m->header_done && m->email_col < m->nf && m->email_col < MAX_COLS) {
        size_t n = m->len[m->email_col];
        if (n > QUEUE_MAX_RCPT)
            n = QUEUE_MAX_RCPT;
        memcpy(email, m->row + m->off[m->email_col], n);
        email[n] = 0;
        if (memchr(m->row + m->off[m->email_col], 0, n))
            email[0] = 0;
    }
    int err = queue_import_reject(m->im, m->row_line, email, reason);
    if (err)
        fatal(m, tool_exit_for(err), "%s", queue_last_detail());
}

/* A data row: checks, then to the spool or rejected. */
static void data_row(struct imp *m)
{
    char addr[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX], cn[96];
    char reason[TOOL_WHY_MAX + 64];
    const char *vals[QUEUE_MAX_FIELDS];
    size_t lens[QUEUE_MAX_FIELDS];
    m->rows++;
    if (m->is_bad) {
        row_reject(m, m->bad);
        return;
    }
    if (m->nf != m->ncols) {
        snprintf(reason, sizeof reason, "%u fields, the header has %u", m->nf,
                 m->ncols);
        row_reject(m, reason);
        return;
    }
    unsigned v = 0;
    for (unsigned c = 0; c < m->ncols; c++) {
        const char *s = m->row + m->off[c];
        if (!tool_utf8_ok(s, m->len[c])) {
            snprintf(reason, sizeof reason, "column %s: not UTF-8 text",
                     col_name(m, c, cn, sizeof cn));
            row_reject(m, reason);
            return;
        }
        if (c == m->email_col)
            continue;
        vals[v] = s;
        lens[v++] = m->len[c];
    }
    if (tool_addr_normalize(m->row + m->off[m->email_col],
                            m->len[m->email_col], addr, sizeof addr, why)) {
        snprintf(reason, sizeof reason, "invalid address: %s", why);
        row_reject(m, reason);
        return;
    }
    int err = queue_import_add(m->im, m->row_line, addr, vals, lens);
    if (err == -EINVAL || err == QUEUE_ETOOBIG) {
        snprintf(reason, sizeof reason, "%s: %s", err == -EINVAL
                     ? "invalid row" : "row too large", queue_last_detail());
        row_reject(m, reason);
    } else if (err) {
        const char *d = queue_last_detail();
        fatal(m, err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err),
              "%s", *d ? d : queue_strerror(err));
    }
}

/* libcsv: end of a row (c is the terminator, -1 at the end of input). */
static void on_row(int c, void *arg)
{
    struct imp *m = arg;
    (void)c;
    if (!m->fatal) {
        if (!m->header_done)
            header_row(m);
        else
            data_row(m);
    }
    m->nf = 0;
    m->rowlen = 0;
    m->is_bad = m->field_over = false;
    m->row_line = m->line;
    if ((m->rows & 1023) == 0)
        progress(m, false);
}

/* libcsv: one field of the current row. */
static void on_field(void *s, size_t n, void *arg)
{
    struct imp *m = arg;
    unsigned c = m->nf++;
    char cn[96];
    if (c >= (m->header_done ? m->ncols : (unsigned)MAX_COLS))
        return;                       /* counted, not kept */
    if (m->field_over || n > QUEUE_MAX_FIELD_VALUE) {
        row_bad(m, "column %s: value over %d bytes",
                col_name(m, c, cn, sizeof cn), QUEUE_MAX_FIELD_VALUE);
        m->field_over = false;
        n = 0;
    } else if (n && memchr(s, 0, n)) {
        row_bad(m, "column %s: NUL byte", col_name(m, c, cn, sizeof cn));
        n = 0;
    } else if (ROW_CAP - m->rowlen < n) {
        row_bad(m, "row over %d bytes", ROW_CAP);
        n = 0;
    }
    if (n)
        memcpy(m->row + m->rowlen, s, n);
    m->off[c] = m->rowlen;
    m->len[c] = n;
    m->rowlen += n;
}

/* Give p[0..n) (at most one line, at most FEED_MAX bytes) to libcsv. */
static void feed(struct imp *m, const char *p, size_t n)
{
    if (m->p.pstate == CSV_ROW_NOT_BEGUN)
        m->row_line = m->line;
    size_t used = csv_parse(&m->p, p, n, on_field, on_row, m);
    if (m->fatal || used == n) {
        /* a value past its cap is dropped as it grows; its row is bad */
        if (!m->fatal && m->p.pstate == CSV_FIELD_BEGUN &&
            m->p.entry_pos > QUEUE_MAX_FIELD_VALUE) {
            m->p.entry_pos = 0;
            m->field_over = true;
        }
        return;
    }
    if (csv_error(&m->p) != CSV_EPARSE) {
        fatal(m, TOOL_EX_OSERR, "line %llu: %s",
              (unsigned long long)m->line, csv_strerror(csv_error(&m->p)));
        return;
    }
    char cn[96];
    row_bad(m, "malformed quoting in column %s: a quote inside an unquoted "
            "value, or text after a closing quote (rest of line %llu "
            "skipped)", col_name(m, m->nf, cn, sizeof cn),
            (unsigned long long)m->line);
    on_row(-1, m);
    csv_free(&m->p);
    if (parser_init(m))
        fatal(m, TOOL_EX_OSERR, "out of memory");
    m->skip_eol = p[n - 1] != '\n';
}

/* Read the whole input, feeding it line by line. */
static void read_all(struct imp *m, char *buf)
{
    bool first = true;
    for (;;) {
        ssize_t got = read(m->fd, buf, READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fatal(m, TOOL_EX_IOERR, "%s: %s", m->o->path, strerror(errno));
            return;
        }
        if (got == 0)
            break;
        size_t pos = 0, n = (size_t)got;
        if (first && n >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
            pos = 3;                  /* UTF-8 byte order mark */
            m->fed = 3;
        }
        first = false;
        while (pos < n && !m->fatal) {
            const char *nl = memchr(buf + pos, '\n', n - pos);
            size_t end = nl ? (size_t)(nl - buf) + 1 : n;
            if (end - pos > FEED_MAX)
                end = pos + FEED_MAX;
            bool eol = buf[end - 1] == '\n';
            if (m->skip_eol)
                m->skip_eol = !eol;
            else
                feed(m, buf + pos, end - pos);
            m->fed += end - pos;
            if (eol)
                m->line++;
            pos = end;
        }
        if (!m->fatal && !m->header_done && m->fed > HEADER_MAX)
            fatal(m, TOOL_EX_DATAERR, "not a CSV file: no header row within "
                  "the first %u bytes", HEADER_MAX);
        if (m->fatal)
            return;
        progress(m, false);
    }
    /* the last row, if the file does not end with a line feed */
    if (csv_fini(&m->p, on_field, on_row, m) && !m->fatal) {
        if (!m->header_done) {
            fatal(m, TOOL_EX_DATAERR, "not a CSV file: the header (line 1) "
                  "has an unterminated quote");
            return;
        }
        row_bad(m, "unterminated quoted value (runs to the end of the file)");
        on_row(-1, m);
    }
    if (!m->header_done && !m->fatal)
        fatal(m, TOOL_EX_DATAERR, "empty file: no header row");
}

/* ------------------------------------------------------------ summary */

/* The final summary line (or JSON object) on stdout. */
static void summary(struct imp *m, const struct queue_import_counts *c,
                    double secs)
{
    double rate = secs > 0 ? (double)c->rows / secs : 0;
    if (m->ctx->json) {
        json_t *f = json_array();
        for (unsigned i = 0; i + 1 < m->ncols; i++)
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
    if (!m || !buf || !(m->row = malloc(ROW_CAP))) {
        if (m)
            free(m->row);
        free(m);
        free(buf);
        return TOOL_EX_OSERR;
    }
    *m = (struct imp){ .ctx = ctx, .q = q, .l = l, .a = a, .by = by, .o = o,
                       .fd = -1, .line = 1, .row_line = 1, .row = m->row };
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
    if (parser_init(m)) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    m->tty = isatty(STDERR_FILENO);
    m->t0 = m->last_ms = now_ms();
    read_all(m, buf);
    csv_free(&m->p);

    struct queue_import_counts c = { 0 };
    int err = 0;
    if (m->im) {
        err = queue_import_end(m->im, by, m->fatal ? m->fatal_msg : NULL,
                               &c);
        m->im = NULL;
    }
    if (m->rej && (fflush(m->rej) || ferror(m->rej)))
        fatal(m, TOOL_EX_IOERR, "%s: %s", o->reject_path, strerror(errno));
    double secs = (double)(now_ms() - m->t0) / 1000.0;
    if (m->bar_drawn) {
        progress(m, true);
        fputs("\r\033[K", stderr);
    }
    if (m->fatal) {
        fprintf(stderr, "%s: %s%s\n", o->prog, m->fatal_msg,
                m->header_done ? " (rows committed before this stay)" : "");
        rc = m->fatal;
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
    free(m->row);
    free(m);
    free(buf);
    return rc;
}
