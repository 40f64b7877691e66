/*
 * dkim_prepare.h - make a message safe to sign and to send unchanged.
 *
 * DESCRIPTION
 *   A DKIM signature breaks when any hop rewrites the message.  Hops rewrite
 *   what the standards do not let them carry: bare CR or LF, lines longer
 *   than 998 octets (RFC 5322 2.1.1), and 8-bit octets towards a receiver
 *   that lacks 8BITMIME (RFC 6152).  dkim_prepare() fixes all three before
 *   the signature is made, so nothing downstream needs to touch the bytes:
 *
 *   - every line end becomes CRLF (a lone CR or LF becomes CRLF);
 *   - a header line over 998 octets is folded at white space;
 *   - a body part (a MIME leaf; the whole body for a non-MIME message) that
 *     has a line over 998 octets is re-encoded as quoted-printable, and its
 *     Content-Transfer-Encoding header set (added or replaced);
 *   - with DKIM_PREP_7BIT, every body part holding 8-bit octets is
 *     re-encoded as quoted-printable, and 8-bit header values (an unencoded
 *     UTF-8 Subject, say) become RFC 2047 encoded words, so the result is
 *     pure 7-bit ASCII.
 *
 *   Parts already in base64 or quoted-printable are left as they are (their
 *   lines are short and 7-bit by construction unless malformed; malformed
 *   long lines are still re-encoded).  Multipart bodies are walked
 *   recursively (multipart types) by boundary, up to DKIM_PREP_MAX_DEPTH levels.
 *
 * OWNERSHIP
 *   On success *out is a malloc'd buffer of *outlen bytes (NUL-terminated,
 *   the NUL not counted) that the caller frees.
 *
 * DIAGNOSTICS
 *   Returns 0, -ENOMEM, DKIM_E_TOOBIG (input over DKIM_PREP_MAX_INPUT or
 *   output over twice that), or DKIM_E_MSG (no header/body separator can be
 *   found is NOT an error: a message of only headers is fine).
 */
#ifndef SLUICE_DKIM_PREPARE_H
#define SLUICE_DKIM_PREPARE_H

#include <stddef.h>

#define DKIM_PREP_7BIT       0x1u   /* receiver lacks 8BITMIME */

/* Bits of *info on return. */
#define DKIM_PREP_CHANGED    0x1u   /* output differs from the input */
#define DKIM_PREP_8BIT       0x2u   /* output still holds 8-bit octets */
#define DKIM_PREP_REENCODED  0x4u   /* some part or header was re-encoded */

#define DKIM_PREP_MAX_INPUT  (64u << 20)
#define DKIM_PREP_MAX_DEPTH  16

int dkim_prepare(const char *msg, size_t len, unsigned flags, char **out,
                 size_t *outlen, unsigned *info);

#endif
