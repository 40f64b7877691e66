/*
 * compose.h - put a message into its wire form for the DATA phase.
 *
 * DESCRIPTION
 *   compose_wire() turns a raw RFC 5322 message into what goes after DATA:
 *   every line ending becomes CRLF (a bare LF or a bare CR alone becomes
 *   CRLF too, so no bare CR or LF ever reaches the wire: no SMTP smuggling
 *   variant can be built from our output), lines starting with '.' are
 *   dot-stuffed, a missing final line ending is added, and the terminating
 *   "." line is appended.  It also says whether the message has 8-bit
 *   bytes, and whether its header has (RFC 6532 UTF-8 header fields, which
 *   only an SMTPUTF8 session may carry).
 *
 * OWNERSHIP
 *   The result is malloc'd; the caller frees it.
 */
#ifndef SLUICE_COMPOSE_H
#define SLUICE_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>

struct wire {
    char *data;       /* ends with "\r\n.\r\n" */
    size_t len;
    size_t size;      /* message size without stuffing and the final dot */
    bool eightbit;
    bool hdr8;        /* 8-bit bytes in the header section */
};

/* Returns 0, or -ENOMEM. */
int compose_wire(const char *msg, size_t len, struct wire *out);

/* The same with header fields sigs[0..siglen) (DKIM-Signature lines ending
 * in CRLF) put in front of the message. */
int compose_wire_signed(const char *sigs, size_t siglen, const char *msg,
                        size_t len, struct wire *out);

#endif
