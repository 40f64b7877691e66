/*
 * tool_lists.h - what the list, import and suppression commands share:
 * address checks (email_addr.c) and the CSV import (list_import.c).
 */
#ifndef SLUICE_TOOL_LISTS_H
#define SLUICE_TOOL_LISTS_H

#include <stdbool.h>
#include <stddef.h>

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
