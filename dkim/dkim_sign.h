/*
 * dkim_sign.h - DKIM signing (RFC 6376, RFC 8463) with keys loaded once.
 *
 * DESCRIPTION
 *   Loads a PEM private key (RSA 1024..4096 bits or Ed25519) into a
 *   struct dkim_key once, then signs any number of messages with it:
 *   a=rsa-sha256 or a=ed25519-sha256, c=relaxed/relaxed, never l=.
 *   dkim_keygen() makes a key file and the DNS TXT record that goes with it.
 *   Signing is done with OpenSSL directly, not libopendkim, because
 *   libopendkim parses the key again for every message (dkim_sign.c says
 *   what that costs, measured); dkimpy and libopendkim verify the output
 *   in the tests (dkim_it_verify, engine_it_dkim).  Where keys live and
 *   what a published record says is the key store's (dkim_store.h).
 *
 * INPUT
 *   dkim_sign() takes a raw RFC 5322 message whose lines end in CRLF (the
 *   engine normalises line ends before signing).  A bare LF is refused with
 *   DKIM_E_MSG rather than signed in a form a verifier would read otherwise.
 *
 * THREADS
 *   A loaded key is read-only: several threads may sign with the same key
 *   at once.  dkim_key_free() must not race with signing.
 *
 * DIAGNOSTICS
 *   Every function returns 0 or a negative code: a negated errno for system
 *   errors, or one of DKIM_E_* below; dkim_strerror() names either.  Functions
 *   that take an err buffer also write a one-line reason there.
 */
#ifndef SLUICE_DKIM_SIGN_H
#define SLUICE_DKIM_SIGN_H

#include <stddef.h>

/* Error codes of this module's own range; other negatives are -errno. */
#define DKIM_E_KEYPERM   (-30900) /* key file readable by group or others */
#define DKIM_E_KEYPARSE  (-30901) /* not a PEM private key */
#define DKIM_E_KEYTYPE   (-30902) /* neither RSA nor Ed25519 */
#define DKIM_E_KEYSIZE   (-30903) /* RSA key outside 1024..4096 bits */
#define DKIM_E_MSG       (-30904) /* message malformed (no From, bare LF) */
#define DKIM_E_TOOBIG    (-30905) /* input or output over a size cap */
#define DKIM_E_CRYPTO    (-30906) /* OpenSSL failed */
#define DKIM_E_ARG       (-30907) /* bad argument (domain, selector, algo) */

/* Caps. */
#define DKIM_KEYFILE_MAX   (64 * 1024)  /* bytes of a PEM key file */
#define DKIM_HEADERS_MAX   1000         /* header fields in one message */
#define DKIM_SIGFIELD_MAX  (8 * 1024)   /* bytes of the DKIM-Signature field */

struct dkim_key;

/* Load the PEM private key at path.  Refuses files with any group/other
 * permission bit set.  On success *out owns the key (dkim_key_free()). */
int dkim_key_load(const char *path, struct dkim_key **out, char *err,
                  size_t errlen);

/* Free a key; NULL is fine. */
void dkim_key_free(struct dkim_key *k);

/* "rsa-sha256" or "ed25519-sha256" for a loaded key. */
const char *dkim_key_algorithm(const struct dkim_key *k);

/* Sign msg[0..len) for d=domain, s=selector.  On success *header_out is a
 * malloc'ed, NUL-terminated "DKIM-Signature: ..." field, folded into lines
 * of at most 78 characters (a single token longer than that, such as a very
 * long d= value, stays unbroken), each line including the last ending in
 * CRLF, ready to be written in front of the message.  The caller free()s it.
 * Signs the present headers among From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type, Reply-To, List-Unsubscribe,
 * List-Unsubscribe-Post and Feedback-ID; From, Subject, List-Unsubscribe and
 * List-Unsubscribe-Post, when present, are listed once more than they occur
 * so that no copy can be added.  A message without From gives DKIM_E_MSG. */
int dkim_sign(const struct dkim_key *k, const char *domain,
              const char *selector, const char *msg, size_t len,
              char **header_out);

/* Put the DNS TXT record value for k's public half in txt, in the form
 * dkim_keygen() gives ("v=DKIM1; k=rsa; p=...").  DKIM_E_TOOBIG if it does
 * not fit in len bytes (about 800 are enough for RSA-4096). */
int dkim_key_txt(const struct dkim_key *k, char *txt, size_t len);

/* Generate a key ("rsa" with bits 1024..4096, or "ed25519" with bits
 * ignored), write it as PEM to path, which must not exist yet, with mode
 * 0600, and put the DNS TXT record value ("v=DKIM1; k=rsa; p=...") in txt.
 * txt needs about 800 bytes for RSA-4096. */
int dkim_keygen(const char *algo, int bits, const char *path, char *txt,
                size_t txtlen);

/* Static text for a code returned by this module. */
const char *dkim_strerror(int code);

#endif
