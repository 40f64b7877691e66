/*
 * tool_cmd.c - what every `sluice` command group shares: the front of a
 * group (--json, --help, the subcommand, its gate), dispatch from its
 * table, number parsing and opening the spool.
 *
 * DESCRIPTION
 *   A group is a struct tool_group: its program name ("sluice user"), its
 *   usage text and a table of struct tool_cmd.  tool_group_run() is the one
 *   prologue: it takes --json anywhere into the context, answers --help,
 *   -h or `help` (the group's usage on stdout, exit 0), `SUB ... --help`
 *   (SUB's own usage when its entry has one, else the group's), a missing
 *   subcommand (usage on stderr, 64), an unknown one ("PROG: unknown
 *   subcommand", 64), checks the subcommand's gate (a master-level action:
 *   tool_cmd_gate) and runs it with argv shifted so that argv[0] is its
 *   name.  Commands without subcommands carry their gate in sluice.c's
 *   table, checked there by tool_cmd_gate() too.
 *
 * DIAGNOSTICS
 *   Usage errors exit 64; a refused gate 77 (authz.c); a spool that does
 *   not open is reported by tool_spool_error() (tool_exit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"

/* Whether s asks for help. */
static bool is_help(const char *s)
{
    return !strcmp(s, "--help") || !strcmp(s, "-h");
}

int tool_cmd_gate(struct tool_ctx *ctx, const struct tool_cmd *cmd,
                  int argc, char **argv)
{
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1] = "";
    if (!cmd->gate)
        return 0;
    for (int i = 0, o = 0; i < argc && i < 3; i++) {
        int n = snprintf(obj + o, sizeof obj - (size_t)o, "%s%s",
                         i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof obj - (size_t)o)
            break;
        o += n;
    }
    return tool_gate(ctx, cmd->gate, obj);
}

int tool_group_run(struct tool_ctx *ctx, int argc, char **argv,
                   const struct tool_group *g)
{
    argc = tool_take_json(ctx, argc, argv);
    if (argc < 2 || is_help(argv[1]) || !strcmp(argv[1], "help")) {
        fprintf(argc < 2 ? stderr : stdout, "%s", g->usage);
        return argc < 2 ? TOOL_EX_USAGE : 0;
    }
    const struct tool_cmd *cmd = NULL;
    for (size_t i = 0; i < g->ncmds && !cmd; i++)
        if (!strcmp(argv[1], g->cmds[i].name))
            cmd = &g->cmds[i];
    argc--;
    argv++;
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) {
            printf("%s", cmd && cmd->usage ? cmd->usage : g->usage);
            return 0;
        }
    if (!cmd) {
        fprintf(stderr, "%s: unknown subcommand '%s'\n%s", g->prog, argv[0],
                g->usage);
        return TOOL_EX_USAGE;
    }
    int rc = tool_cmd_gate(ctx, cmd, argc, argv);
    return rc ? rc : cmd->run(ctx, argc, argv);
}

int tool_take_json(struct tool_ctx *ctx, int argc, char **argv)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            ctx->json = true;
        else
            argv[n++] = argv[i];
    }
    return n;
}

bool tool_parse_u64(const char *s, unsigned long long *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !errno && !*end;
}

int tool_open_spool(struct tool_ctx *ctx, unsigned flags, struct queue **q)
{
    struct queue_options o = { .flags = flags };
    int err = queue_open(q, ctx->spool, &o);
    if (err)
        return tool_spool_error("sluice", ctx->spool, err);
    if (!(flags & QUEUE_OPEN_READONLY) && (err = tool_audit_setup(ctx, *q))) {
        queue_close(*q);
        *q = NULL;
        return err;
    }
    return 0;
}
