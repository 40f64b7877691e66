/*
 * dkim_encode.h - the one quoted-printable encoder (RFC 2045 6.7) and the
 * one RFC 2047 encoded-word writer of the tree, shared by the message
 * preparation before signing (dkim/prepare_*.c) and the campaign renderer
 * (engine/render_qp.c, engine/render_hdr.c; sluice_render links
 * sluice_dkim).
 *
 * DESCRIPTION
 *   dkim_qp_put() is a streaming encoder: text may come in any number of
 *   pieces (the renderer feeds template literals and merge values one by
 *   one) and the output is the same as for the whole text at once, but for
 *   the line-start guard below at a piece's end.  Printable ASCII but '='
 *   is written as itself, SP and TAB too unless last before a line break
 *   or at the end (then =20, =09), every other octet as =XX; CR, LF and
 *   CRLF in the input become one CRLF hard break; a soft break "=" CRLF
 *   keeps every line at 76 characters or less (75 and the '=').  Since
 *   '=' is always encoded, "=_" never occurs in the output, which keeps a
 *   boundary that starts with "=_" safe without a search.
 *
 *   With DKIM_QP_GUARD, an output line never starts with '-' (=2D: no line
 *   can read as a MIME boundary after a soft break) nor with "From " (the
 *   F is =46: no mbox hop rewrites it to ">From ", which would break the
 *   body hash).  An 'F' at a line start that is the end of a piece and
 *   could still become "From " is encoded too.  With DKIM_QP_DROP_NUL a
 *   NUL octet is dropped (the renderer's rule); without, it is =00.
 *
 *   dkim_ew_*() write RFC 2047 encoded words: which octets Q writes as
 *   themselves (RFC 2047 5 rule 3, the rule that is safe in phrases; SP is
 *   '_'), when B is used (only when clearly shorter than Q: Q stays
 *   readable), and the word "=?CHARSET?Q?...?=" itself.  Where the words go
 *   and how lines are folded is the caller's: a header the renderer builds
 *   puts one word per line, the preparation refolds an existing field.
 *
 * OWNERSHIP
 *   Nothing allocates: the caller gives room (DKIM_QP_ROOM(n) octets past
 *   its current length for dkim_qp_put(), dkim_ew_len() for a word).
 *   The encoder's state lives in the caller's struct dkim_qp.
 *
 * THREADS
 *   No global state.
 */
#ifndef SLUICE_DKIM_ENCODE_H
#define SLUICE_DKIM_ENCODE_H

#include <stddef.h>

#define DKIM_QP_GUARD     0x1u  /* '-' and "From " never start a line */
#define DKIM_QP_DROP_NUL  0x2u  /* drop NUL octets (else =00) */

#define DKIM_QP_LINE      75    /* characters before a soft break's '=' */
#define DKIM_QP_CHUNK     4096  /* most input octets per dkim_qp_put() */
/* Output room one call of n (<= DKIM_QP_CHUNK) input octets may need:
 * every octet =XX and a soft break per 25 of them, plus 8 octets the
 * fast path may copy past the end, plus what a guard adds. */
#define DKIM_QP_ROOM(n)   ((n) * 4 + 16)
#define DKIM_QP_END_ROOM  8     /* room dkim_qp_end() may need */

/* The encoder's state between pieces; zero it to start. */
struct dkim_qp {
    unsigned col;             /* characters on the current output line */
    unsigned flags;           /* DKIM_QP_* */
    unsigned char ws;         /* last octet written is a literal SP or TAB */
    unsigned char cr;         /* last input octet was CR: swallow an LF */
};

/* Encode s[0..n) (n <= DKIM_QP_CHUNK) onto buf, whose first len octets
 * are output already (the last may be rewritten: a blank before a break
 * becomes =20) and which has DKIM_QP_ROOM(n) octets of room past len.
 * Returns the new length. */
size_t dkim_qp_put(struct dkim_qp *q, char *buf, size_t len, const char *s,
                   size_t n);

/* End the text: a blank last on its line is encoded; no break is added.
 * buf needs DKIM_QP_END_ROOM octets of room past len.  Returns the new
 * length. */
size_t dkim_qp_end(struct dkim_qp *q, char *buf, size_t len);

#define DKIM_EW_MAX 75          /* characters of one encoded word */

/* Characters octet c takes in a Q word: 1 or 3. */
size_t dkim_ew_qcost(unsigned char c);

/* Whether s[0..n) goes in B rather than Q: only when B is clearly (a
 * quarter) shorter. */
int dkim_ew_use_b(const unsigned char *s, size_t n);

/* Characters the encoded text of s[0..n) takes in Q or B (without the
 * "=?CHARSET?Q?" and "?=" around it). */
size_t dkim_ew_textlen(const unsigned char *s, size_t n, int b);

/* Write "=?charset?Q?...?=" (or ?B?) for s[0..n) at o; returns the number
 * of characters written: 7 + strlen(charset) + dkim_ew_textlen(). */
size_t dkim_ew_put(char *o, const char *charset, int b,
                   const unsigned char *s, size_t n);

#endif
