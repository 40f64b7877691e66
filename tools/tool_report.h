/*
 * tool_report.h - `sluice report` (cmd_report.c).
 */
#ifndef SLUICE_TOOL_REPORT_H
#define SLUICE_TOOL_REPORT_H

#include "tool.h"

int tool_report_main(struct tool_ctx *ctx, int argc, char **argv);

/* `report --html FILE` (cmd_report_html.c): the page of rep written to
 * path (through path.tmp), its path printed; 0 or an exit code. */
struct json_t;
int tool_report_write_html(const struct json_t *rep, const char *path);
/* `report send-weekly --account A`: argv[0] is "send-weekly". */
int tool_report_send_weekly(struct tool_ctx *ctx, int argc, char **argv);

#endif
