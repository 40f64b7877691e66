/*
 * tool_cmd.c - what every `sluice` command group shares: the front of a
 * group (--json, --help, the subcommand), dispatch from its table, number
 * parsing and opening the spool.
 *
 * DESCRIPTION
 *   A group is a struct tool_group: its program name ("sluice user"), its
 *   usage text and a table of struct tool_cmd.  tool_group_run() is the one
 *   prologue: it takes --json anywhere into the context, answers --help or
 *   -h (the group's usage on stdout, exit 0), a missing subcommand (usage
 *   on stderr, 64), an unknown one ("PROG: unknown subcommand", 64), and
 *   runs the subcommand with argv shifted so that argv[0] is its name.
 *
 * DIAGNOSTICS
 *   Usage errors exit 64; a spool that does not open is reported by
 *   tool_spool_error() (tool_exit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"

int tool_group_begin(struct tool_ctx *ctx, int *argc, char ***argv,
                     const char *usage, const char **sub)
{
    *argc = tool_take_json(ctx, *argc, *argv);
    char **v = *argv;
    if (*argc < 2 || !strcmp(v[1], "--help") || !strcmp(v[1], "-h")) {
        fprintf(*argc < 2 ? stderr : stdout, "%s", usage);
        return *argc < 2 ? TOOL_EX_USAGE : 0;
    }
    *sub = v[1];
    (*argc)--;
    (*argv)++;
    for (int i = 1; i < *argc; i++)
        if (!strcmp((*argv)[i], "--help") || !strcmp((*argv)[i], "-h")) {
            printf("%s", usage);
            return 0;
        }
    return -1;
}

int tool_group_unknown(const char *prog, const char *sub, const char *usage)
{
    fprintf(stderr, "%s: unknown subcommand '%s'\n%s", prog, sub, usage);
    return TOOL_EX_USAGE;
}

int tool_group_run(struct tool_ctx *ctx, int argc, char **argv,
                   const struct tool_group *g)
{
    const char *sub;
    int front = tool_group_begin(ctx, &argc, &argv, g->usage, &sub);
    if (front >= 0)
        return front;
    for (size_t i = 0; i < g->ncmds; i++)
        if (!strcmp(sub, g->cmds[i].name))
            return g->cmds[i].run(ctx, argc, argv);
    return tool_group_unknown(g->prog, sub, g->usage);
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
