/*
 * queue_msg.h - the rules a raw message meets before it is queued, and
 * the header fields added to it when missing.
 *
 * DESCRIPTION
 *   Every way a raw message gets into the spool (`sluice inject` now; the
 *   SMTP listener and the HTTP inject API later) calls
 *   queue_message_cleanup() before queue_submit_message(), and the engine
 *   calls queue_message_check() again before a stored message leaves (a
 *   spool written before these rules may hold one that breaks them), so
 *   the rules live here once.  A message is refused when:
 *
 *   - it is empty (0 bytes);
 *   - it holds a NUL byte: no mail transport carries one faithfully, so
 *     it is refused rather than silently stripped;
 *   - its header section is not parseable: a line that is neither a
 *     header field ("Name: value", the name printable ASCII without ':')
 *     nor a continuation (starting with space or tab, not on the first
 *     line) before the empty line, which usually means that empty line is
 *     missing; or no end of the header within QUEUE_MSG_MAX_HEADER bytes;
 *   - it has no From: header field, more than one, or one without an
 *     address ('@').
 *
 *   Line ends are read as the wire will see them (compose.c): LF, CRLF and
 *   a lone CR each end a line.  A message may end inside its header (no
 *   body, no empty line).
 *
 *   queue_message_cleanup() also adds, at the end of the header section
 *   and with the message's own line end, what a receiver expects and a
 *   sender may have left out (as Postfix's cleanup does):
 *
 *   - "Date:" with the current local time and zone offset (RFC 5322 3.3);
 *   - "Message-ID: <32 hex digits@IDHOST>", the digits from 16 random
 *     bytes (OpenSSL RAND_bytes: unguessable, never repeated in practice).
 *
 * THREADS
 *   No global state: both may be called from any thread.
 *
 * OWNERSHIP
 *   queue_message_cleanup() sets *out to NULL when nothing is added (the
 *   caller keeps using msg), else to a malloc'd buffer of *outlen bytes
 *   (NUL-terminated, the NUL not counted) that the caller frees.
 *
 * DIAGNOSTICS
 *   0, or -EBADMSG with the reason in why (one line, for a person: exit 65
 *   in the tools, a 5.6.0 bounce in the engine); cleanup also -EINVAL for
 *   an idhost that is not a host name, -ENOMEM, -EIO when no random bytes
 *   can be had, QUEUE_ETOOBIG when the result passes QUEUE_MAX_MESSAGE.
 */
#ifndef SLUICE_QUEUE_MSG_H
#define SLUICE_QUEUE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUEUE_MSG_MAX_HEADER (1024u * 1024)  /* bytes of header section */

/* What the check learnt about a message it accepted. */
struct queue_msg_facts {
    size_t header_end;   /* offset just past the header's last field line
                            (the empty line, if any, starts here) */
    bool has_date;
    bool has_message_id;
    bool header_8bit;    /* the header holds octets >= 0x80 (RFC 6532) */
    bool crlf;           /* the first line ends in CRLF */
};

/* Check msg[0..len) against the rules above; facts (may be NULL) is
 * filled when the message is accepted.  0 or -EBADMSG with why. */
int queue_message_check(const void *msg, size_t len,
                        struct queue_msg_facts *facts, char *why,
                        size_t whylen);

/* Check, then add Date: (time now, unix seconds, in the local zone) and
 * Message-ID: (right-hand side idhost) when missing; see OWNERSHIP. */
int queue_message_cleanup(const void *msg, size_t len, const char *idhost,
                          int64_t now, char **out, size_t *outlen,
                          char *why, size_t whylen);

/* Whether h may stand after the '@' of a Message-ID made here: a host
 * name of letters, digits, hyphens and dots, at most 253 octets. */
bool queue_message_host_ok(const char *h);

#ifdef __cplusplus
}
#endif
#endif
