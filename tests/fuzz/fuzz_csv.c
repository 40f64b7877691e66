/*
 * fuzz_csv.c - libFuzzer target for the CSV contact import: the reading
 * rules of tools/list_csv.c over libcsv, with the address checks of
 * tools/email_addr.c (libidn2); the spool is not involved.
 *
 * DESCRIPTION
 *   The input is a whole CSV file.  It is read twice: in one piece, and
 *   in pieces of 3..259 bytes chosen from the input, as reads from a pipe
 *   may come.  What the sink is handed -- header names, rows, rejected
 *   rows with their lines and reasons, the final status -- is folded into
 *   a digest that must be the same both times.  Each row the sink gets
 *   keeps the promises of tool_lists.h: a recipient the spool accepts,
 *   merge values of UTF-8 without NUL and within QUEUE_MAX_FIELD_VALUE,
 *   line numbers in file order; each rejection has a reason.  A broken
 *   promise aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_lists.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one reading handed to the sink, folded. */
struct run {
    uint64_t digest;
    uint64_t last_line;
    unsigned nnames;
};

/* Stop with a message: the reader broke a promise of tool_lists.h. */
static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_csv: %s: \"%.300s\"\n", what, detail);
    abort();
}

/* Fold n bytes into the digest (FNV-1a, 64 bits). */
static void fold(struct run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        r->digest = (r->digest ^ b[i]) * 1099511628211ull;
}

/* Fold a string with its end. */
static void fold_str(struct run *r, const char *s)
{
    fold(r, s, strlen(s) + 1);
}

/* Rows and rejects come in file order (lines count LFs: a file with CR
 * line ends is all on line 1). */
static void line_in_order(struct run *r, uint64_t line)
{
    if (line < r->last_line || line < 1)
        broken("a row out of file order", "");
    r->last_line = line;
    fold(r, &line, sizeof line);
}

static void on_header(void *arg, const char *const *names, unsigned n)
{
    struct run *r = arg;
    r->nnames = n;
    fold(r, "H", 1);
    for (unsigned i = 0; i < n; i++)
        fold_str(r, names[i]);
}

static int on_row(void *arg, uint64_t line, const char *addr,
                  const char *const *vals, const size_t *lens, char *why)
{
    struct run *r = arg;
    fold(r, "R", 1);
    line_in_order(r, line);
    if (queue_check_rcpt(addr))
        broken("the spool refuses a row's address", addr);
    fold_str(r, addr);
    for (unsigned i = 0; i < r->nnames; i++) {
        if (lens[i] > QUEUE_MAX_FIELD_VALUE || memchr(vals[i], 0, lens[i]) ||
            !tool_utf8_ok(vals[i], lens[i]))
            broken("a value over its cap, with a NUL or not UTF-8", addr);
        fold(r, vals[i], lens[i]);
        fold(r, &lens[i], sizeof lens[i]);
    }
    return 0;
}

static void on_reject(void *arg, uint64_t line, const char *email,
                      const char *why)
{
    struct run *r = arg;
    fold(r, "X", 1);
    line_in_order(r, line);
    if (strnlen(email, QUEUE_MAX_RCPT + 1) > QUEUE_MAX_RCPT)
        broken("a rejected row's email over QUEUE_MAX_RCPT", email);
    if (!why[0] || strnlen(why, TOOL_CSV_WHY_MAX) == TOOL_CSV_WHY_MAX)
        broken("a rejection without a reason, or one past its cap", why);
    fold_str(r, email);
    fold_str(r, why);
}

static const struct tool_csv_sink sink = {
    .header = on_header, .row = on_row, .reject = on_reject,
};

/* Read data in pieces of the given sizes (0: one piece); the digest. */
static uint64_t read_file(const uint8_t *data, size_t size, int pieces)
{
    struct run r = { .digest = 14695981039346656037ull };
    struct tool_csv *csv = tool_csv_new(NULL, &sink, &r);
    if (!csv)
        abort();
    size_t pos = 0, k = 0;
    while (pos < size && !tool_csv_status(csv, NULL)) {
        size_t n = size - pos;
        if (pieces) {
            /* the first piece holds a byte order mark whole, as a read of
             * a file would */
            size_t want = 3 + (size_t)data[k++ % size];
            if (n > want)
                n = want;
        }
        tool_csv_feed(csv, (const char *)data + pos, n);
        pos += n;
    }
    tool_csv_finish(csv);
    const char *msg;
    int rc = tool_csv_status(csv, &msg);
    if (rc && !msg[0])
        broken("the reading ended without a message", "");
    fold(&r, &rc, sizeof rc);
    fold_str(&r, msg);
    tool_csv_free(csv);
    return r.digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (read_file(data, size, 0) != read_file(data, size, 1))
        broken("the result depends on how the input was cut", "");
    return 0;
}
