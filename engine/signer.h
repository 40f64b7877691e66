/*
 * signer.h - which key signs which message: the DKIM keys of each account's
 * verified sending domains, and the signing step of composition.
 *
 * DESCRIPTION
 *   A signer is an immutable table built at start and on reload: for every
 *   verified sending domain, its owning account and its keys (the keys of
 *   the spool's record that are verified and not retired, with their
 *   retire dates; every DIR/DOMAIN/SELECTOR.key file of a configured
 *   domain; each one loaded once), plus which accounts may send unsigned
 *   mail.  Worker threads sign with it while the loop may
 *   build a newer one; the loop keeps a reference per batch in flight.
 *
 *   A message is signed only with keys of a domain that its own account has
 *   verified: d= is the From: domain, or the nearest parent of it that the
 *   account has verified (relaxed alignment).  Every key of that domain adds
 *   one DKIM-Signature (so an rsa and an ed25519 key give a dual signature),
 *   except a key whose retire date has passed: it stops signing at that
 *   second, even before the table is rebuilt.
 *   No key means the message is held back (deferred) with the reason,
 *   unless the account allows unsigned mail.  Before signing the message is
 *   made safe to travel unchanged (dkim_prepare.h).
 *
 * DIAGNOSTICS
 *   signer_build() fails with a one-line reason for a key that cannot be
 *   loaded: readable by group or others, not a key, too small.
 */
#ifndef SLUICE_SIGNER_H
#define SLUICE_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SIGNER_MAX_KEYS 4          /* signatures on one message */

/* Codes of signer_compose() besides 0 and -errno. */
#define SIGNER_E_NOKEY   (-30950)  /* no key for the account's domain: defer */
#define SIGNER_E_NOFROM  (-30951)  /* no single usable From: permanent */
#define SIGNER_E_BADMSG  (-30952)  /* breaks the spool's message rules
                                    * (queue_msg.h): NUL, empty...: permanent */

struct signer;
struct wire;

/* Build the table from the verified sending domains of the spool q (each
 * with the key files its record names; `sluice domain add|verify`) and of
 * the [account N] domains of cfg (keys under cfg->dkim_keys, else
 * SPOOL/dkim), and each account's allow_unsigned (the spool's record, or
 * the configuration's).  q may be NULL (configuration only).  A domain
 * claimed twice is an error.  On failure *out is NULL and err says why. */
struct queue;
int signer_build(const struct config *cfg, struct queue *q,
                 struct signer **out, char *err, size_t errlen);

/* References: the builder holds one. */
struct signer *signer_ref(struct signer *s);
void signer_unref(struct signer *s);

/* Number of loaded keys and of verified domains (for the start line). */
size_t signer_nkeys(const struct signer *s);
size_t signer_ndomains(const struct signer *s);

/* The earliest retire date (unix s) of a loaded key; 0 when none has
 * one.  sluiced builds the table again once it has passed, so the retired
 * key's memory goes and the log says so. */
int64_t signer_first_retire(const struct signer *s);
/* Log on stderr each loaded key whose retire date is in (after, upto]. */
void signer_say_retired(const struct signer *s, int64_t after, int64_t upto);

/* Compose the wire form of a raw message of account: checked against the
 * spool's message rules (a message stored before they existed may break
 * them: SIGNER_E_BADMSG, never sent), prepared, signed, dot-
 * stuffed.  When the result holds 8-bit octets, *w7 (if not NULL) receives
 * the 7-bit form, prepared and signed on its own, for receivers without
 * 8BITMIME (w7->data stays NULL otherwise).  On error why says what
 * happened in words for the event log.  s may be NULL: no signing. */
int signer_compose(const struct signer *s, uint32_t account,
                   const char *msg, size_t len, struct wire *w,
                   struct wire *w7, char *why, size_t whylen);

/* Whether a signer_compose() error is a signing failure: no key for the
 * account's domain, or DKIM's own (prepare or sign), as against a
 * message at fault (SIGNER_E_NOFROM, SIGNER_E_BADMSG) or the system. */
bool signer_sign_failed(int err);

/* The domain of the single From: address of a message, lowercased, into
 * buf; false when there is none, several, or it cannot be read. */
bool signer_from_domain(const char *msg, size_t len, char *buf,
                        size_t buflen);

#endif
