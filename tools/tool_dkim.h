/*
 * tool_dkim.h - what `sluice dkim` and `sluice domain` share about keys and
 * the DNS records they print (cmd_dkim_record.c), over dkim/dkim_store.h.
 *
 * DESCRIPTION
 *   The key store's rules (paths, names, loading, records) live in dkim/;
 *   these are the command-line ends of them: a name checked with the
 *   reason printed, a record printed in zone-file form or as JSON, and the
 *   exit code for a key that would not load.
 */
#ifndef SLUICE_TOOL_DKIM_H
#define SLUICE_TOOL_DKIM_H

#include <stddef.h>

#include <jansson.h>

#include "dkim_store.h"

struct tool_ctx;

/* Normalise a domain (dkim_domain_norm()) into out; -1 after printing
 * "PREFIX: invalid domain 'IN': why". */
int tool_dkim_domain(const char *prefix, const char *in, char *out,
                     size_t cap);

/* Normalise a selector (dkim_selector_norm()) into out; -1 after printing
 * "PREFIX: invalid selector 'IN': why". */
int tool_dkim_selector(const char *prefix, const char *in, char *out,
                       size_t cap);

/* Print the zone-file line NAME. IN TXT ( "..." "..." ), the strings cut
 * by dkim_txt_cut(), and "   ; NOTE" after it when note is not NULL. */
void tool_dkim_print_record(const char *name, const char *txt,
                            const char *note);

/* The record's character-strings as a new JSON array. */
json_t *tool_dkim_record_strings(const char *txt);

/* The exit code for a key that would not load (rc and err from
 * dkim_keyinfo_load(): tool_exit_for()), after printing "PREFIX: err". */
int tool_dkim_key_exit(const char *prefix, int rc, const char *err);

/* dkim_store_scan()'s odd callback of the tools: warn that path is
 * ignored, and go on. */
int tool_dkim_warn_odd(void *arg, const char *path, const char *why);

/* `sluice dkim check` (cmd_dkim_check.c), argv[0] being "check", and its
 * --help text (tool_group_run prints it). */
int tool_dkim_cmd_check(struct tool_ctx *ctx, int argc, char **argv);
extern const char tool_dkim_check_usage[];

#endif
