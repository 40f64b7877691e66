/* cmd_dkim.c - `sluice dkim keygen|check` (being written). */
#include <stdio.h>

#include "tool.h"

int tool_dkim_main(struct tool_ctx *ctx, int argc, char **argv)
{
    (void)ctx; (void)argc; (void)argv;
    fprintf(stderr, "sluice dkim: not yet available\n");
    return TOOL_EX_SOFTWARE;
}
