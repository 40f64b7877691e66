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
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

/* sysexits(3) codes used by the tools */
enum {
    TOOL_OK = 0,
    TOOL_EX_USAGE = 64,
    TOOL_EX_DATAERR = 65,
    TOOL_EX_NOINPUT = 66,
    TOOL_EX_UNAVAILABLE = 69,
    TOOL_EX_SOFTWARE = 70,
    TOOL_EX_OSERR = 71,
    TOOL_EX_CANTCREAT = 73,
    TOOL_EX_IOERR = 74,
    TOOL_EX_TEMPFAIL = 75,
    TOOL_EX_NOPERM = 77,
    TOOL_EX_CONFIG = 78,
};

struct tool_identity;
struct tool_ctx {
    const char *spool;   /* --spool, $SLUICE_SPOOL or ./sluice-data */
    bool json;           /* --json: machine-readable output */
    const char *as_user; /* --as USER, else $SLUICE_USER (tool_admin.h) */
    const char *config;  /* --config FILE: sluiced.conf (tool_config.c) */
    bool bootstrap;      /* --bootstrap: the spool owner's break-glass */
    struct tool_identity *identity; /* who acts, once established */
};

/* One command or subcommand.  Tables name their fields (.name, .run...):
 * what a command does not use stays 0. */
struct tool_cmd {
    const char *name;
    const char *help;            /* one line, for `sluice --help` */
    int (*run)(struct tool_ctx *ctx, int argc, char **argv);
    const char *usage;           /* `SUB --help`: its own text (NULL: the
                                  * group's usage) */
    int gate;                    /* a master-level enum tool_action checked
                                  * before run (tool_cmd_gate); 0 none */
};

/* A command group: `PROG SUB ...` runs the cmds entry named SUB. */
struct tool_group {
    const char *prog;            /* "sluice user" */
    const char *usage;           /* printed for --help and usage errors */
    const struct tool_cmd *cmds;
    size_t ncmds;
};
#define TOOL_NCMDS(t) (sizeof (t) / sizeof (t)[0])

/* The one prologue and dispatch of a group (tool_cmd.c): takes --json
 * anywhere into ctx; answers --help, -h or `help` (the group's usage on
 * stdout, 0), `SUB ... --help` (SUB's usage, else the group's, on stdout,
 * 0), no subcommand (usage on stderr, 64) and an unknown one ("PROG:
 * unknown subcommand", 64); checks SUB's gate; runs SUB with argv[0] its
 * name.  Returns the exit code. */
int tool_group_run(struct tool_ctx *ctx, int argc, char **argv,
                   const struct tool_group *g);

/* Identify the caller and check cmd's gate (a master-level action, before
 * the command opens the spool itself; tool_gate, authz.c), with argv[0..2]
 * as the audited object.  0 (also for no gate) or the exit code. */
int tool_cmd_gate(struct tool_ctx *ctx, const struct tool_cmd *cmd,
                  int argc, char **argv);

/* Print why the spool in dir could not be opened (err from queue_open)
 * as "prog: dir: ..." and return the exit code: tool_exit_for(), with
 * "permission denied" (77) for -EACCES and -EPERM. */
int tool_spool_error(const char *prog, const char *dir, int err);

/* Open the spool for ctx with flags; on failure print why and return the
 * exit code (0 on success).  A writable handle gets the audit key and
 * checkpoint of sluiced.conf (tool_audit_setup). */
int tool_open_spool(struct tool_ctx *ctx, unsigned flags, struct queue **q);

/* The sysexits code for an error (queue code, DKIM_E_* or -errno): the one
 * table, tool_exit.c.  -EPERM and -EACCES are 77. */
int tool_exit_for(int err);

/* The same for a file or directory the command was making: any other
 * -errno is 73 (cannot create). */
int tool_exit_create(int err);

/* Parse a non-negative integer; false if s is not one. */
bool tool_parse_u64(const char *s, unsigned long long *v);

/* Print a JSON value compactly on its own line of stdout and free it
 * (NULL: nothing; admin_util.c). */
struct json_t;
void tool_emit_json(struct json_t *j);

/* A spool's counters (queue_counts) as a JSON object, the same keys for
 * the spool, an account and a domain (cmd_spool.c). */
struct queue_counts;
struct json_t *tool_counts_json(const struct queue_counts *c);

/* Take --json out of argv (accepted anywhere after the command) into ctx;
 * returns the new argc. */
int tool_take_json(struct tool_ctx *ctx, int argc, char **argv);

/* "domain" or "site" for a control kind (cmd_pause.c). */
const char *tool_ctl_kind_name(int kind);

/* Subcommands and groups. */
int tool_spool_main(struct tool_ctx *ctx, int argc, char **argv);
/* `sluice spool check|salvage|init` (cmd_spool_repair.c); argv[0] is the
 * subcommand. */
int tool_spool_check(struct tool_ctx *ctx, int argc, char **argv);
int tool_spool_salvage(struct tool_ctx *ctx, int argc, char **argv);
int tool_spool_init(struct tool_ctx *ctx, int argc, char **argv);
int tool_inject_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_pause_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_resume_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_paused_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_status_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_dkim_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_bounces_main(struct tool_ctx *ctx, int argc, char **argv);

/* `sluice dkim check` (cmd_dkim.c): compare the DNS TXT record of each key
 * of domain in <spool>/dkim (or only selector; NULL: all) with the key.
 * dns_server is "ADDR[:PORT][,...]"; NULL: $SLUICE_DNS, else the system
 * resolver.  Prints a table (JSON with ctx->json) unless quiet; quiet still
 * names each problem on stderr.  Returns 0 all match, 64 bad domain,
 * selector or server, 65 some record mismatched, wrong type, revoked or
 * missing, 66 no such key in the store, 69 DNS failed, 77/78 a key file
 * that cannot be read or used (78 names the chmod that fixes its mode). */
int tool_dkim_check(struct tool_ctx *ctx, const char *domain,
                    const char *selector, const char *dns_server,
                    bool quiet);

/* ------------------------------------------- status view (status_view.c) */

/* The live view sluiced rewrites every second in the spool directory
 * (unless sluiced.conf sets status_file), its size cap, and the age past
 * which sluiced counts as not running. */
#define TOOL_STATUS_FILE "status.json"
#define TOOL_STATUS_MAX (64u << 20)
#define TOOL_STATUS_STALE_MS 5000

struct json_t;
struct status_dom;

/* One row of `sluice status`: a site or a domain with what the spool and
 * the live view know of it.  Pointers refer into the status_view. */
struct status_row {
    const char *name;
    int kind;                           /* QUEUE_CTL_SITE or _DOMAIN */
    struct json_t *live;                /* its object in status.json or NULL */
    uint64_t queued;                    /* sum over its domains */
    bool queued_known;                  /* false: paused site, no live view */
    const struct queue_control *pause;  /* NULL when not paused */
};

struct tool_pause;

/* The spool's queued counts and pauses merged with status.json. */
struct status_view {
    int64_t now_ms;               /* wall clock when loaded */
    struct json_t *doc;           /* status.json if fresh, else NULL */
    int64_t age_ms;               /* of status.json; -1 when missing */
    char why_not[512];            /* doc NULL: "" missing, else the reason */
    struct status_row *rows;
    size_t nrows;
    struct status_dom *doms;      /* domains with queued mail, by name */
    size_t ndoms;
    struct queue_control *ctls;   /* paused entries */
    size_t nctls;
    struct tool_pause *pauses;    /* the ones incidents hold (tool_admin.h) */
    size_t npauses;
};

/* Load the view for ctx's spool (opened read-only).  On failure print why
 * and return the exit code; v is then empty.  Free with status_view_free. */
int status_view_load(struct status_view *v, struct tool_ctx *ctx);
void status_view_free(struct status_view *v);

#endif
