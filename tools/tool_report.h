/*
 * tool_report.h - `sluice report` (cmd_report.c).
 */
#ifndef SLUICE_TOOL_REPORT_H
#define SLUICE_TOOL_REPORT_H

#include "tool.h"

int tool_report_main(struct tool_ctx *ctx, int argc, char **argv);

#endif
