/*
 * http_gate.h - the front door of sluiced's HTTP server: it accepts the
 * connections, looks at each request line, and hands the well-formed ones
 * to libmicrohttpd.
 *
 * DESCRIPTION
 *   libmicrohttpd 0.9.75 (Debian 12) closes a connection without a word
 *   when the request line does not parse (no space in it, an empty method)
 *   and takes a line that starts with a NUL byte for an empty one, so
 *   "\x00\xff\r\n\r\n" sits unanswered until the connection timeout.  The
 *   gate answers those itself: it peeks (MSG_PEEK) at the first line of
 *   each new connection, without taking the bytes, and either gives the
 *   socket to the daemon (MHD_add_connection: the daemon reads the request
 *   from the start) or answers 400, 414 or 408 and closes.
 *
 * OWNERSHIP
 *   The gate owns its listening socket and its thread; the daemon, started
 *   with MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC, must outlive it (stop
 *   the gate first).
 */
#ifndef SLUICE_HTTP_GATE_H
#define SLUICE_HTTP_GATE_H

#include <stddef.h>
#include <sys/socket.h>

struct MHD_Daemon;
struct http_gate;

/* The longest request line the gate reads (leading empty lines included):
 * a longer one is answered 414. */
#define HTTP_GATE_LINE_MAX 2048

/* What the bytes received so far say about the request line. */
enum http_gate_line {
    HTTP_GATE_MORE,      /* no whole line yet */
    HTTP_GATE_OK,        /* method SP request-target SP HTTP/d.d */
    HTTP_GATE_BAD,       /* anything else: answer 400 */
    HTTP_GATE_TOO_LONG,  /* HTTP_GATE_LINE_MAX bytes without a line */
};

/* Judge the first n bytes of a connection (RFC 9112 section 3: the
 * method a token, the target visible ASCII without spaces, single spaces,
 * CRLF or a bare LF at the end; empty lines before it are skipped). */
enum http_gate_line http_gate_check_line(const char *buf, size_t n);

/* Listen on sa and start the gate's thread for daemon d: at most
 * max_pending connections wait for their request line, each at most
 * timeout_ms.  0, or a negative errno with the reason in err. */
int http_gate_start(struct http_gate **out, const struct sockaddr *sa,
                    socklen_t salen, struct MHD_Daemon *d,
                    unsigned max_pending, unsigned timeout_ms,
                    char *err, size_t errlen);

/* Stop the thread and close every socket the gate still holds; NULL is
 * fine. */
void http_gate_stop(struct http_gate *g);

#endif
