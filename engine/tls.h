/*
 * tls.h - TLS over OpenSSL memory BIOs, for STARTTLS: the client side of
 * sluiced's deliveries and the server side of its SMTP listener.
 *
 * DESCRIPTION
 *   The SMTP session owns the socket; this module only transforms bytes.
 *   Ciphertext read from the socket goes in with tls_feed(); plaintext comes
 *   out of tls_read(); plaintext to send goes in with tls_write(), and the
 *   ciphertext to put on the socket comes out of tls_take(), or is handed
 *   to the owner's sink by tls_flush().  No I/O, no blocking, so it runs
 *   inside the event loop.
 *
 * OWNERSHIP
 *   tls_client_ctx() returns an SSL_CTX the caller frees with SSL_CTX_free;
 *   tls_new() a connection freed with tls_free() (NULL accepted).
 *
 * DIAGNOSTICS
 *   Functions return 0/positive on success, TLS_EWANT when more input is
 *   needed, or TLS_EFAIL with the reason in tls_error().
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum { TLS_EWANT = -1, TLS_EFAIL = -2 };

struct tls;

/* A client context: TLS 1.2 or later, system CA paths or ca_file. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);

/* A connection to host (for SNI and, with verify, name checking). */
struct tls *tls_new(SSL_CTX *ctx, const char *host, bool verify);
void tls_free(struct tls *t);

/* A server context with the PEM certificate chain and key: TLS 1.2 or
 * later; NULL with the reason in err. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
                        size_t errlen);
/* The server side of one connection. */
struct tls *tls_new_server(SSL_CTX *ctx);

/* Add ciphertext received from the peer. */
int tls_feed(struct tls *t, const void *data, size_t len);

/* Advance the handshake: 1 done, TLS_EWANT more input needed, TLS_EFAIL. */
int tls_handshake(struct tls *t);

/* Decrypted bytes into buf: count, 0 if none yet, TLS_EFAIL on error or
 * close_notify from the peer. */
ssize_t tls_read(struct tls *t, void *buf, size_t cap);

/* Encrypt plaintext; the ciphertext waits for tls_take(). */
int tls_write(struct tls *t, const void *data, size_t len);

/* Bytes of ciphertext waiting to be sent, and taking them. */
size_t tls_pending(struct tls *t);
size_t tls_take(struct tls *t, void *buf, size_t cap);

/* Where ciphertext goes (the session's socket): 0 or an error code. */
typedef int (*tls_sink)(void *arg, const void *data, size_t len);

/* Hand every byte of ciphertext waiting to put: 0, or put's first error
 * (what is left waits).  The layer above gives its sink; tls.c never
 * calls into the session by name. */
int tls_flush(struct tls *t, tls_sink put, void *arg);

/* Why the last call failed; protocol and cipher once established. */
const char *tls_error(const struct tls *t);
const char *tls_version(const struct tls *t);
const char *tls_cipher(const struct tls *t);

#endif
