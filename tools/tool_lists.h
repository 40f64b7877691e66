/*
 * tool_lists.h - what the list, import and suppression commands share:
 * address checks (email_addr.c), the CSV reading rules (list_csv.c) and
 * the import into the spool (list_import.c).
 */
#ifndef SLUICE_TOOL_LISTS_H
#define SLUICE_TOOL_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_campaign.h"
#include "tool_admin.h"

/* ------------------------------------------------------- email_addr.c */

#define TOOL_ADDR_MAX 254        /* RFC 5321 path limit less the brackets */
#define TOOL_WHY_MAX 160

/* Check an address and write its stored form into out (cap > 254): the
 * local part as given (a dot-atom, or a quoted string; ASCII, 1..64
 * octets), "@", the domain in lower-case A-label form (libidn2, UTS #46
 * non-transitional; LDH labels of 1..63, at least two, at most 253, a
 * top-level label not all digits).  Blanks around the address are
 * ignored.  Returns 0, or -1 with why (without the "invalid address: "
 * prefix) in why[TOOL_WHY_MAX]. */
int tool_addr_normalize(const char *in, size_t len, char *out, size_t cap,
                        char *why);

/* Whether p[0..n) is valid UTF-8 (no overlongs, surrogates or values over
 * U+10FFFF). */
bool tool_utf8_ok(const char *p, size_t n);

/* --------------------------------------------------------- list_csv.c */

/* The CSV reading rules of an import, apart from the spool: bytes in
 * pieces of any size, header and rows out to a sink, in file order. */
#define TOOL_CSV_WHY_MAX (TOOL_WHY_MAX + 96)  /* a rejected row's reason */

struct tool_csv;

/* Where the reader hands on what it read.  Each callback may end the
 * reading with tool_csv_fatal(); nothing is handed on after that. */
struct tool_csv_sink {
    /* The header is good: its n merge field names, normalised (valid until
     * tool_csv_free()). */
    void (*header)(void *arg, const char *const *names, unsigned n);
    /* A row that passed every check: the address in stored form and the n
     * merge values (lens[i] bytes, UTF-8, no NUL) in header order.  Returns
     * 0, or -1 with a reason in why[TOOL_CSV_WHY_MAX] to reject the row. */
    int (*row)(void *arg, uint64_t line, const char *addr,
               const char *const *vals, const size_t *lens, char *why);
    /* A rejected row: its email cell as given ("" when there is none) and
     * why. */
    void (*reject)(void *arg, uint64_t line, const char *email,
                   const char *why);
    /* Called every 1024 data rows (progress); may be NULL. */
    void (*tick)(void *arg);
};

/* A reader that finds the address in the column named email_column (kept,
 * not copied), or NULL: email, e-mail or email_address.  NULL when out of
 * memory. */
struct tool_csv *tool_csv_new(const char *email_column,
                              const struct tool_csv_sink *sink, void *arg);
/* Free a reader; NULL is fine. */
void tool_csv_free(struct tool_csv *r);
/* The next n bytes of the file (a piece of any size). */
void tool_csv_feed(struct tool_csv *r, const char *p, size_t n);
/* The end of the file: the last row, or why the file was not CSV. */
void tool_csv_finish(struct tool_csv *r);
/* End the reading with exit code rc and a message (the first one wins). */
void tool_csv_fatal(struct tool_csv *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 while reading may go on, else the exit code; *msg (if msg) its
 * message. */
int tool_csv_status(const struct tool_csv *r, const char **msg);
/* Whether the header was read and taken by the sink. */
bool tool_csv_header_done(const struct tool_csv *r);
/* Data rows read so far, and bytes fed. */
uint64_t tool_csv_rows(const struct tool_csv *r);
uint64_t tool_csv_fed(const struct tool_csv *r);

/* ------------------------------------------------------ list_import.c */

struct list_import_opts {
    const char *path;            /* a file, or "-" for standard input */
    const char *reject_path;     /* NULL: rejects summarised on stderr */
    const char *email_column;    /* NULL: email, e-mail or email_address */
    const char *prog;            /* "sluice list import" */
};

/* Import the CSV of o into list l of account a (suppression owner
 * a->suppression_owner) acting as by.  Prints progress on stderr and the
 * summary on stdout (JSON with ctx->json).  Returns the exit code: 0 done
 * (rows may have been rejected), 65 not CSV or no email column (nothing
 * imported), 66 no such file, 73 reject file not writable, 74 read error,
 * others as tool_admin_error(). */
int tool_list_import(struct tool_ctx *ctx, struct queue *q,
                     const struct queue_list *l, const struct queue_account *a,
                     const struct queue_actor *by,
                     const struct list_import_opts *o);

/* Subcommand groups (cmd_list.c, cmd_suppress.c). */
int tool_list_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_suppress_main(struct tool_ctx *ctx, int argc, char **argv);

#endif
