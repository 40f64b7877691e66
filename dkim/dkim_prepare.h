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
 *     pure 7-bit ASCII (but for what no encoding may cover; see below);
 *   - the output always ends in CRLF (a missing final CRLF is added).
 *
 *   Parts already in base64 or quoted-printable are left as they are (their
 *   lines are short and 7-bit by construction unless malformed).  A
 *   malformed one is mended in its own encoding without decoding it:
 *   base64 is re-wrapped at 76 characters (non-alphabet octets dropped, as
 *   decoders ignore them); quoted-printable gets soft line breaks inserted
 *   (never inside an =XX) and, under DKIM_PREP_7BIT, raw 8-bit octets
 *   written as =XX.  A part in another transfer encoding (x-uuencode...)
 *   only has lines over 998 octets cut.
 *
 *   MIME structure comes from Content-Type (case-insensitive, comments and
 *   quoted boundary= allowed), whether or not MIME-Version is present.
 *   multipart bodies are split by boundary and walked recursively, up to
 *   DKIM_PREP_MAX_DEPTH levels (a multipart or message/rfc822 deeper than
 *   that is kept whole: RFC 2045 6.4 allows it no transfer encoding, so only
 *   its long lines are cut and its 8-bit octets stay); message/rfc822
 *   bodies (and parts without Content-Type inside multipart/digest) are
 *   handled as messages.  Boundary lines, preamble and epilogue are kept;
 *   in preamble and epilogue, which no transfer encoding covers, lines
 *   over 998 octets are cut and, under DKIM_PREP_7BIT, 8-bit octets become
 *   '?' (readers ignore that text).  What cannot be parsed is an opaque
 *   leaf: a multipart whose boundary is missing or never appears, a last
 *   part without closing boundary (it runs to the end), a header that
 *   ends at a line that is neither a field nor a continuation (the body
 *   starts there, as in Python's parser, and the missing empty line is
 *   put in, without which dkim_sign() refuses the message).
 *
 *   When a leaf is re-encoded as quoted-printable its
 *   Content-Transfer-Encoding is replaced, or added at the end of its
 *   header; if it has no Content-Type and holds 8-bit octets,
 *   "Content-Type: text/plain; charset=utf-8" is added (charset
 *   unknown-8bit when the octets are not UTF-8), since the default
 *   us-ascii would be wrong; a message (the top level or a message/rfc822
 *   part) without MIME-Version that had a transfer encoding set inside it
 *   gets "MIME-Version: 1.0".  The QP encoder also writes the F of a line
 *   starting "From " as =46 so that no mbox hop alters it, and a '-'
 *   starting any line it writes as =2D so that no soft break can make a
 *   line that reads as a boundary.
 *
 *   Header fields under DKIM_PREP_7BIT: in unstructured fields (Subject,
 *   Comments, X-*, unknown names) each run of words holding 8-bit octets
 *   becomes RFC 2047 encoded words (charset UTF-8, or unknown-8bit when not
 *   UTF-8; Q unless B is clearly shorter; each word at most 75 characters,
 *   no UTF-8 sequence split, folded between words at 76); ASCII words and
 *   encoded words already there stay as they are.  In address fields (From, Sender, Reply-To, To, Cc, Bcc, Resent-*
 *   and the like) only display names, group names and comments are
 *   encoded; an 8-bit addr-spec is left (SMTPUTF8 territory) and shows in
 *   DKIM_PREP_8BIT.  In Content-Type and Content-Disposition an 8-bit
 *   parameter value becomes RFC 2231 form (name*=utf-8''%XX..., split into
 *   name*0*=, name*1*= ... sections when long), but never boundary= and
 *   never a value with stray octets around it.  Fields with fixed syntax
 *   (Date, Message-ID, References, Received, List-*, DKIM-Signature ...)
 *   are left and show in DKIM_PREP_8BIT.
 *
 *   A header line over 998 octets is folded before the last white space
 *   that keeps it within 998 (only adding CRLF, so the unfolded value is
 *   unchanged).  With no usable white space, "CRLF SP" is inserted after a
 *   ',' or ';' or between '>' and '<' outside quotes, else at octet 998
 *   (never inside a UTF-8 sequence); that adds one space to the unfolded
 *   value, which between those tokens changes no meaning.  In such a line
 *   a run of over 64 white-space octets, which no fold can split legally,
 *   becomes one space (as relaxed canonicalization reads it anyway).  A
 *   line whose field name alone passes 997 octets is not a header field
 *   (it could never be made legal): the body starts there.
 *
 * THREADS
 *   No global state: any number of threads may call dkim_prepare() at once.
 *
 * COST
 *   The usual message (CRLF only, no long line, and no 8-bit octet or no
 *   DKIM_PREP_7BIT) costs one memchr walk over its lines plus a
 *   word-at-a-time 8-bit scan, and no allocation.
 *
 * OWNERSHIP
 *   When nothing needs changing, *out is set to NULL, *outlen to len and 0
 *   is returned: the caller goes on with its own buffer (zero-copy).
 *   Otherwise *out is a malloc'd buffer of *outlen bytes (NUL-terminated,
 *   the NUL not counted) that the caller frees.  On error *out is NULL.
 *
 * DIAGNOSTICS
 *   Returns 0, -ENOMEM, DKIM_E_ARG (out or outlen NULL, or msg NULL with
 *   len > 0), or DKIM_E_TOOBIG (input over DKIM_PREP_MAX_INPUT or output
 *   over twice that).  Malformed MIME is never an error, and neither is a
 *   message of only header fields.  info may be NULL.
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

/* Prepare msg[0..len) for signing under flags (DKIM_PREP_7BIT or 0): see
 * OWNERSHIP above for *out and *outlen; *info gets DKIM_PREP_* bits (8BIT
 * is reported on the zero-copy path too, so the caller can pick BODY=). */
int dkim_prepare(const char *msg, size_t len, unsigned flags, char **out,
                 size_t *outlen, unsigned *info);

#endif
