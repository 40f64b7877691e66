/*
 * tool.h - what the `sluice` command's files share.
 *
 * DESCRIPTION
 *   The command is one binary with subcommands.  Each subcommand is a
 *   function taking the common context and its own arguments; it prints its
 *   result (text, or JSON with --json) and returns a sysexits code.
 */
#ifndef SLUICE_TOOL_H
#define SLUICE_TOOL_H

#include <stdbool.h>

#include "queue.h"

/* sysexits(3) codes used by the tools */
enum {
    TOOL_OK = 0,
    TOOL_EX_USAGE = 64,
    TOOL_EX_DATAERR = 65,
    TOOL_EX_NOINPUT = 66,
    TOOL_EX_SOFTWARE = 70,
    TOOL_EX_OSERR = 71,
    TOOL_EX_CANTCREAT = 73,
    TOOL_EX_IOERR = 74,
    TOOL_EX_TEMPFAIL = 75,
    TOOL_EX_NOPERM = 77,
    TOOL_EX_CONFIG = 78,
};

struct tool_ctx {
    const char *spool;   /* --spool, $SLUICE_SPOOL or ./sluice-data */
    bool json;           /* --json: machine-readable output */
};

/* One subcommand: name, one-line help, handler. */
struct tool_cmd {
    const char *name;
    const char *help;
    int (*run)(struct tool_ctx *ctx, int argc, char **argv);
};

/* Open the spool for ctx with flags; on failure print why and return the
 * exit code (0 on success). */
int tool_open_spool(struct tool_ctx *ctx, unsigned flags, struct queue **q);

/* The sysexits code for a queue error. */
int tool_exit_for(int err);

/* Parse a non-negative integer; false if s is not one. */
bool tool_parse_u64(const char *s, unsigned long long *v);

/* Subcommand groups. */
int tool_spool_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_inject_main(struct tool_ctx *ctx, int argc, char **argv);

#endif
