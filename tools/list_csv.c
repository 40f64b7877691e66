/*
 * list_csv.c - the reading rules of a contact import: CSV bytes in,
 * a checked header, checked rows and rejected rows out; no spool, no files.
 *
 * DESCRIPTION
 *   The file is RFC 4180 CSV (libcsv, CSV_STRICT) with a header row: one
 *   column holds the address ("email", "e-mail" or "email_address" without
 *   regard to case, or a name the caller gives), every other column becomes
 *   a merge field named after its header, normalised to [a-z0-9_] in lower
 *   case ("First Name" -> first_name).  A UTF-8 byte order mark at the start
 *   of the first piece fed is skipped.
 *
 *   Input comes in pieces of any size (list_import.c reads 64 KB at a
 *   time); they are cut at line feeds so that each row's first line is
 *   known, and given to libcsv at most FEED_MAX bytes at a time so that no
 *   value grows past its cap (QUEUE_MAX_FIELD_VALUE) before it is seen.
 *   Memory is constant: one row buffer of ROW_CAP bytes.
 *
 *   A row is rejected -- and reading goes on -- for: a value over its cap,
 *   a NUL byte, text that is not UTF-8, the wrong number of fields, a
 *   malformed quote (the rest of that line is skipped), an unterminated
 *   quote at the end of the file, an invalid address (email_addr.c), or
 *   the sink's own reason.  Values keep CR and LF as given: the renderer
 *   makes them header-safe.  Line numbers count line feeds from 1 (the
 *   header) and name the line a row starts on.
 *
 * DIAGNOSTICS
 *   The reading ends (tool_csv_status() gives the exit code and message)
 *   with 65 for input that is not CSV: empty, NUL bytes, non-UTF-8 text or
 *   control characters or a malformed quote in the header, no email column,
 *   more than QUEUE_MAX_FIELDS merge fields, header names that are empty,
 *   reserved or the same once normalised, no header within HEADER_MAX
 *   bytes; 71 when libcsv runs out of memory; or with whatever the sink
 *   passes to tool_csv_fatal().
 */
#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tool_lists.h"

#define FEED_MAX 4096
#define MAX_COLS (QUEUE_MAX_FIELDS + 1)
#define ROW_CAP (QUEUE_MAX_CONTACT + QUEUE_MAX_FIELD_VALUE)
#define HEADER_MAX (1u << 20)        /* bytes before the header must end */
#define TICK_ROWS 1024
/* libcsv parser states (csv_parser.pstate, libcsv.c) */
#define CSV_ROW_NOT_BEGUN 0
#define CSV_FIELD_BEGUN 2

struct tool_csv {
    const char *email_column;        /* NULL: the usual names */
    const struct tool_csv_sink *sink;
    void *arg;
    struct csv_parser p;
    uint64_t fed;                    /* bytes fed, the mark included */
    uint64_t line, row_line;         /* line being fed; first of the row */
    bool skip_eol;                   /* dropping the rest of a bad line */
    uint64_t rows;                   /* data rows seen */
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
    char bad[TOOL_CSV_WHY_MAX];
    /* the end */
    int fatal;                       /* exit code once reading must end */
    char fatal_msg[512];
};

/* libcsv space test: nothing is a blank to strip (RFC 4180 keeps them). */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

/* (Re)start the parser after a malformed row. */
static int parser_init(struct tool_csv *r)
{
    if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI))
        return -1;
    csv_set_space_func(&r->p, no_space);
    csv_set_blk_size(&r->p, 1024);
    return 0;
}

void tool_csv_fatal(struct tool_csv *r, int rc, const char *fmt, ...)
{
    if (r->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fatal_msg, sizeof r->fatal_msg, fmt, ap);
    va_end(ap);
    r->fatal = rc;
}

/* Mark the current row rejected (the first reason is kept). */
static void row_bad(struct tool_csv *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void row_bad(struct tool_csv *r, const char *fmt, ...)
{
    if (r->is_bad)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->bad, sizeof r->bad, fmt, ap);
    va_end(ap);
    r->is_bad = true;
}

/* "3 (first_name)" for column c of a data row, into buf. */
static const char *col_name(const struct tool_csv *r, unsigned c, char *buf,
                            size_t cap)
{
    if (!r->header_done || c >= r->ncols)
        snprintf(buf, cap, "%u", c + 1);
    else if (c == r->email_col)
        snprintf(buf, cap, "%u (email)", c + 1);
    else
        snprintf(buf, cap, "%u (%s)", c + 1,
                 r->names[c < r->email_col ? c : c - 1]);
    return buf;
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

/* The header row's cells are UTF-8 text without controls; else fatal. */
static bool header_text_ok(struct tool_csv *r)
{
    for (unsigned c = 0; c < r->nf; c++) {
        const char *s = r->row + r->off[c];
        size_t n = r->len[c];
        if (!tool_utf8_ok(s, n)) {
            tool_csv_fatal(r, TOOL_EX_DATAERR, "not a CSV file of UTF-8 "
                           "text: the header (line 1) is not UTF-8");
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 32 || s[i] == 0x7f) {
                tool_csv_fatal(r, TOOL_EX_DATAERR, "not a CSV file: control "
                               "characters in the header (line 1, column "
                               "%u)", c + 1);
                return false;
            }
    }
    return true;
}

/* The column holding the address, or MAX_COLS (fatal) if none. */
static unsigned email_column(struct tool_csv *r)
{
    static const char *const auto_names[] = { "email", "e-mail",
                                              "email_address" };
    unsigned found = MAX_COLS;
    if (r->email_column) {
        for (unsigned c = 0; c < r->nf && found == MAX_COLS; c++)
            if (header_is(r->row + r->off[c], r->len[c], r->email_column))
                found = c;
    } else {
        for (size_t k = 0; k < 3 && found == MAX_COLS; k++)
            for (unsigned c = 0; c < r->nf && found == MAX_COLS; c++)
                if (header_is(r->row + r->off[c], r->len[c], auto_names[k]))
                    found = c;
    }
    if (found == MAX_COLS) {
        if (r->email_column)
            tool_csv_fatal(r, TOOL_EX_DATAERR, "no column named '%.80s' in "
                           "the header (line 1)", r->email_column);
        else
            tool_csv_fatal(r, TOOL_EX_DATAERR, "no email column: the header "
                           "(line 1) has no column named email, e-mail or "
                           "email_address (name it with --email-column)");
    }
    return found;
}

/* The header row: find the email column, name the others, begin. */
static void header_row(struct tool_csv *r)
{
    char norm[QUEUE_MAX_FIELD_NAME + 1];
    if (r->is_bad) {
        tool_csv_fatal(r, TOOL_EX_DATAERR, "not a CSV file: the header "
                       "(line 1): %s", r->bad);
        return;
    }
    if (r->nf > MAX_COLS) {
        tool_csv_fatal(r, TOOL_EX_DATAERR, "the header has %u columns: at "
                       "most %d (the email column and %d merge fields)",
                       r->nf, MAX_COLS, QUEUE_MAX_FIELDS);
        return;
    }
    if (!header_text_ok(r))
        return;
    unsigned found = email_column(r);
    if (found == MAX_COLS)
        return;
    r->email_col = found;
    r->ncols = r->nf;
    unsigned v = 0;
    for (unsigned c = 0; c < r->nf; c++) {
        if (c == found)
            continue;
        const char *s = r->row + r->off[c];
        int sn = (int)(r->len[c] > 80 ? 80 : r->len[c]);
        if (norm_name(s, r->len[c], norm) || !*norm) {
            tool_csv_fatal(r, TOOL_EX_DATAERR, "column %u of the header "
                           "('%.*s') %s: merge field names are 1 to %d of "
                           "a-z 0-9 _", c + 1, sn, s, *norm ? "is too long"
                           : "has no letters or digits", QUEUE_MAX_FIELD_NAME);
            return;
        }
        if (!strcmp(norm, "email") || !strcmp(norm, "unsubscribe_url")) {
            tool_csv_fatal(r, TOOL_EX_DATAERR, "column %u of the header "
                           "('%.*s'): '%s' is reserved for the renderer",
                           c + 1, sn, s, norm);
            return;
        }
        for (unsigned k = 0; k < v; k++)
            if (!strcmp(r->names[k], norm)) {
                tool_csv_fatal(r, TOOL_EX_DATAERR, "column %u of the header "
                               "('%.*s') is merge field '%s' again", c + 1,
                               sn, s, norm);
                return;
            }
        memcpy(r->names[v], norm, sizeof norm);
        r->name_ptrs[v] = r->names[v];
        v++;
    }
    r->sink->header(r->arg, r->name_ptrs, v);
    if (!r->fatal)
        r->header_done = true;
}

/* ----------------------------------------------------------- data rows */

/* Reject the current row with reason, naming its email cell if any. */
static void row_reject(struct tool_csv *r, const char *reason)
{
    char email[QUEUE_MAX_RCPT + 1] = "";
    if (r->header_done && r->email_col < r->nf && r->email_col < MAX_COLS) {
        size_t n = r->len[r->email_col];
        if (n > QUEUE_MAX_RCPT)
            n = QUEUE_MAX_RCPT;
        memcpy(email, r->row + r->off[r->email_col], n);
        email[n] = 0;
        if (memchr(r->row + r->off[r->email_col], 0, n))
            email[0] = 0;
    }
    r->sink->reject(r->arg, r->row_line, email, reason);
}

/* A data row: checks, then to the sink or rejected. */
static void data_row(struct tool_csv *r)
{
    char addr[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX], cn[96];
    char reason[TOOL_CSV_WHY_MAX];
    const char *vals[QUEUE_MAX_FIELDS];
    size_t lens[QUEUE_MAX_FIELDS];
    r->rows++;
    if (r->is_bad) {
        row_reject(r, r->bad);
        return;
    }
    if (r->nf != r->ncols) {
        snprintf(reason, sizeof reason, "%u fields, the header has %u", r->nf,
                 r->ncols);
        row_reject(r, reason);
        return;
    }
    unsigned v = 0;
    for (unsigned c = 0; c < r->ncols; c++) {
        const char *s = r->row + r->off[c];
        if (!tool_utf8_ok(s, r->len[c])) {
            snprintf(reason, sizeof reason, "column %s: not UTF-8 text",
                     col_name(r, c, cn, sizeof cn));
            row_reject(r, reason);
            return;
        }
        if (c == r->email_col)
            continue;
        vals[v] = s;
        lens[v++] = r->len[c];
    }
    if (tool_addr_normalize(r->row + r->off[r->email_col],
                            r->len[r->email_col], addr, sizeof addr, why)) {
        snprintf(reason, sizeof reason, "invalid address: %s", why);
        row_reject(r, reason);
        return;
    }
    if (r->sink->row(r->arg, r->row_line, addr, vals, lens, reason) &&
        !r->fatal)
        row_reject(r, reason);
}

/* libcsv: end of a row (c is the terminator, -1 at the end of input). */
static void on_row(int c, void *arg)
{
    struct tool_csv *r = arg;
    (void)c;
    if (!r->fatal) {
        if (!r->header_done)
            header_row(r);
        else
            data_row(r);
    }
    r->nf = 0;
    r->rowlen = 0;
    r->is_bad = r->field_over = false;
    r->row_line = r->line;
    if ((r->rows % TICK_ROWS) == 0 && r->sink->tick && !r->fatal)
        r->sink->tick(r->arg);
}

/* libcsv: one field of the current row. */
static void on_field(void *s, size_t n, void *arg)
{
    struct tool_csv *r = arg;
    unsigned c = r->nf++;
    char cn[96];
    if (c >= (r->header_done ? r->ncols : (unsigned)MAX_COLS))
        return;                       /* counted, not kept */
    if (r->field_over || n > QUEUE_MAX_FIELD_VALUE) {
        row_bad(r, "column %s: value over %d bytes",
                col_name(r, c, cn, sizeof cn), QUEUE_MAX_FIELD_VALUE);
        r->field_over = false;
        n = 0;
    } else if (n && memchr(s, 0, n)) {
        row_bad(r, "column %s: NUL byte", col_name(r, c, cn, sizeof cn));
        n = 0;
    } else if (ROW_CAP - r->rowlen < n) {
        row_bad(r, "row over %d bytes", ROW_CAP);
        n = 0;
    }
    if (n)
        memcpy(r->row + r->rowlen, s, n);
    r->off[c] = r->rowlen;
    r->len[c] = n;
    r->rowlen += n;
}

/* Give p[0..n) (at most one line, at most FEED_MAX bytes) to libcsv. */
static void feed_line(struct tool_csv *r, const char *p, size_t n)
{
    if (r->p.pstate == CSV_ROW_NOT_BEGUN)
        r->row_line = r->line;
    size_t used = csv_parse(&r->p, p, n, on_field, on_row, r);
    if (r->fatal || used == n) {
        /* a value past its cap is dropped as it grows; its row is bad */
        if (!r->fatal && r->p.pstate == CSV_FIELD_BEGUN &&
            r->p.entry_pos > QUEUE_MAX_FIELD_VALUE) {
            r->p.entry_pos = 0;
            r->field_over = true;
        }
        return;
    }
    if (csv_error(&r->p) != CSV_EPARSE) {
        tool_csv_fatal(r, TOOL_EX_OSERR, "line %llu: %s",
                       (unsigned long long)r->line,
                       csv_strerror(csv_error(&r->p)));
        return;
    }
    char cn[96];
    row_bad(r, "malformed quoting in column %s: a quote inside an unquoted "
            "value, or text after a closing quote (rest of line %llu "
            "skipped)", col_name(r, r->nf, cn, sizeof cn),
            (unsigned long long)r->line);
    on_row(-1, r);
    csv_free(&r->p);
    if (parser_init(r))
        tool_csv_fatal(r, TOOL_EX_OSERR, "out of memory");
    r->skip_eol = p[n - 1] != '\n';
}

/* ------------------------------------------------------------ the API */

struct tool_csv *tool_csv_new(const char *email_column,
                              const struct tool_csv_sink *sink, void *arg)
{
    struct tool_csv *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (!(r->row = malloc(ROW_CAP)) || parser_init(r)) {
        free(r->row);
        free(r);
        return NULL;
    }
    r->email_column = email_column;
    r->sink = sink;
    r->arg = arg;
    r->line = r->row_line = 1;
    return r;
}

void tool_csv_free(struct tool_csv *r)
{
    if (!r)
        return;
    csv_free(&r->p);
    free(r->row);
    free(r);
}

void tool_csv_feed(struct tool_csv *r, const char *buf, size_t n)
{
    size_t pos = 0;
    if (r->fed == 0 && n >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
        pos = 3;                      /* UTF-8 byte order mark */
        r->fed = 3;
    }
    while (pos < n && !r->fatal) {
        const char *nl = memchr(buf + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - buf) + 1 : n;
        if (end - pos > FEED_MAX)
            end = pos + FEED_MAX;
        bool eol = buf[end - 1] == '\n';
        if (r->skip_eol)
            r->skip_eol = !eol;
        else
            feed_line(r, buf + pos, end - pos);
        r->fed += end - pos;
        if (eol)
            r->line++;
        pos = end;
    }
    if (!r->fatal && !r->header_done && r->fed > HEADER_MAX)
        tool_csv_fatal(r, TOOL_EX_DATAERR, "not a CSV file: no header row "
                       "within the first %u bytes", HEADER_MAX);
}

void tool_csv_finish(struct tool_csv *r)
{
    if (r->fatal)
        return;
    /* the last row, if the file does not end with a line feed */
    if (csv_fini(&r->p, on_field, on_row, r) && !r->fatal) {
        if (!r->header_done) {
            tool_csv_fatal(r, TOOL_EX_DATAERR, "not a CSV file: the header "
                           "(line 1) has an unterminated quote");
            return;
        }
        row_bad(r, "unterminated quoted value (runs to the end of the "
                "file)");
        on_row(-1, r);
    }
    if (!r->header_done && !r->fatal)
        tool_csv_fatal(r, TOOL_EX_DATAERR, "empty file: no header row");
}

int tool_csv_status(const struct tool_csv *r, const char **msg)
{
    if (msg)
        *msg = r->fatal ? r->fatal_msg : "";
    return r->fatal;
}

bool tool_csv_header_done(const struct tool_csv *r)
{
    return r->header_done;
}

uint64_t tool_csv_rows(const struct tool_csv *r)
{
    return r->rows;
}

uint64_t tool_csv_fed(const struct tool_csv *r)
{
    return r->fed;
}
