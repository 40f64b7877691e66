/*
 * access.h - the sign-in and permission rules shared by the `sluice`
 * command and sluiced's web console (library sluice_access): one home for
 * the TOTP codes (totp.c), the password check (password.c), the
 * permission table and the role rule (authz_table.c).
 *
 * DESCRIPTION
 *   The action numbers (enum tool_action) are tool_admin.h's; the console
 *   includes that header for them.  Nothing here prints or keeps state.
 */
#ifndef SLUICE_TOOL_ACCESS_H
#define SLUICE_TOOL_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_admin.h"

/* ---------------------------------------------------------- TOTP (totp.c) */

/* RFC 6238 TOTP: SHA-1, 30 s steps, 6 digits.  The code for time t. */
uint32_t tool_totp_code(const unsigned char *secret, size_t len, int64_t t);
/* The 30-second step (t / 30) whose code (6 digits) matches, looking at
 * t and one step before or after; -1 when none does. */
int64_t tool_totp_match(const unsigned char *secret, size_t len, int64_t t,
                        const char *code);
/* RFC 4648 base32 without padding into out; returns its length. */
size_t tool_base32(const unsigned char *in, size_t len, char *out,
                   size_t cap);

/* ------------------------------------------------ password (password.c) */

/* Whether password matches argon2id hash pwhash (libsodium).  With no
 * hash (NULL or "": no such user, or no password login) it is false, after
 * spending what a check costs, so the answer's time does not tell whether
 * the user exists.  false too when libsodium cannot start. */
bool tool_password_ok(const char *pwhash, const char *password);

/* -------------------------------------- permission table (authz_table.c) */

/* One row: the lowest role an action needs; whether on the master rather
 * than the account acted on; for a sub-account, a role on the master that
 * also allows it (0: none). */
struct tool_perm {
    const char *name;
    int need;
    bool on_master;
    int alt_master;
};

/* The row of act (enum tool_action), NULL past the table. */
const struct tool_perm *tool_perm(int act);

/* The role user acts with on account (NONE for account 0, an unknown
 * account or user): queue_role_effective(); by_key: an API key of
 * key_account with scope key_scope, which acts with at most its scope and
 * only on its account and (a key of the master) the sub-accounts.  0 or a
 * spool error. */
int tool_role_for(struct queue *q, uint32_t user, bool by_key,
                  uint32_t key_account, int key_scope, uint32_t account,
                  int *role);

/* A user's home account: the master if the user holds a role there (or
 * there is no master), else the first account with a role, else the
 * master; 0 when there is no account.  The CLI's default --account. */
uint32_t tool_home_account(struct queue *q, uint32_t user);

#endif
