/*
 * password.c - the one check of a user's password against its argon2id
 * hash, shared by `sluice --as USER` (auth.c) and sluiced's web console
 * sign-in (engine/console_auth.c).
 *
 * DESCRIPTION
 *   crypto_pwhash_str_verify (libsodium) does the work.  Without a hash
 *   (unknown user, or a user without password login) a hash of the given
 *   password is computed anyway at the interactive cost and thrown away,
 *   so that the time of a refusal does not tell whether the user exists.
 *   Part of the sluice_access library.  Owns no state.
 *
 * DIAGNOSTICS
 *   None: any failure is "no match".
 */
#include <sodium.h>
#include <string.h>

#include "access.h"

bool tool_password_ok(const char *pwhash, const char *password)
{
    if (sodium_init() < 0 || !password)
        return false;
    if (pwhash && *pwhash)
        return crypto_pwhash_str_verify(pwhash, password,
                                        strlen(password)) == 0;
    char scratch[crypto_pwhash_argon2id_STRBYTES];
    if (crypto_pwhash_argon2id_str(
            scratch, password, strlen(password),
            crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
            crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE) == 0)
        sodium_memzero(scratch, sizeof scratch);
    return false;
}
