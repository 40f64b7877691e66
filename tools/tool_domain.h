/*
 * tool_domain.h - what `sluice domain` (cmd_domain.c) and `sluice domain
 * key` (cmd_domain_key.c) share: finding a domain with the caller's right
 * on it, making or taking a key file, and the DNS records to publish.
 *
 * DIAGNOSTICS
 *   Each function prints its own "PROG: reason" and returns a sysexits
 *   code (tool.h), or 0.
 */
#ifndef SLUICE_TOOL_DOMAIN_H
#define SLUICE_TOOL_DOMAIN_H

#include <stdbool.h>

#include <jansson.h>

#include "tool_admin.h"

/* Open the spool, find domain `in` into *d and check act on its account
 * (role into *role when not NULL); 0 with *q open, or an exit code with
 * nothing open: 65 invalid name, 66 no such domain, 77 refused.  prog is
 * "sluice domain ..." (its tail names the action for the login). */
int tool_domain_begin(struct tool_ctx *ctx, const char *prog, int act,
                      const char *in, struct queue **q,
                      struct queue_sdomain *d, int *role);

/* The key file of sel->selector for dom in the spool's key store
 * (SPOOL/dkim/DOMAIN/SELECTOR.key, absolute, into sel->key_path): an
 * existing file is taken as it is (sel->algo becomes its algorithm), else
 * a new key of algo and bits is made (*made true).  0, 73 for a directory
 * or key that cannot be made or an existing file that is no usable key. */
int tool_domain_key_file(struct tool_ctx *ctx, const char *prog,
                         const char *dom, const char *algo, int bits,
                         struct queue_dkim_sel *sel, bool *made);

/* The DNS records to publish for d: the DKIM TXT record of each key (of
 * only the selector `only` when not NULL) and, when spf_dmarc, suggested
 * SPF and DMARC records; printed in zone-file form, or appended to arr
 * as {name, type, what, value, strings} when arr is not NULL. */
void tool_domain_records(const struct queue_sdomain *d, const char *only,
                         bool spf_dmarc, json_t *arr);

/* `sluice domain key ...` (cmd_domain_key.c), argv[0] being "key". */
int tool_domain_key_main(struct tool_ctx *ctx, int argc, char **argv);
extern const char tool_domain_key_usage[];

#endif
