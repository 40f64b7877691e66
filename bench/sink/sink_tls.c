/*
 * sink_tls.c - STARTTLS for sluice-sink: OpenSSL over memory BIOs inside
 * the libuv read and write path.
 *
 * The server owns one SSL_CTX loaded from --tls-cert/--tls-key.  After
 * STARTTLS a session owns one SSL whose read BIO is filled with the
 * ciphertext libuv read, and whose write BIO is drained into libuv writes
 * after every SSL call, so TLS never touches the socket itself.  Decrypted
 * input goes to sink_input_feed() like plaintext input would.
 *
 * Failures: a bad certificate or key makes sink_tls_init() log the OpenSSL
 * reason and return -1.  A handshake or record error returns UV_EPROTO
 * (counted as tls_failures before the handshake finished), a close_notify
 * UV_EOF; either way the caller closes the session.
 */
#include <limits.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sink.h"

/* Log the oldest queued OpenSSL error with a context. */
static void tls_log_error(const char *what)
{
    char msg[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, msg, sizeof(msg));
    sink_log("%s: %s", what, e ? msg : "unknown TLS error");
    ERR_clear_error();
}

/* Load the certificate and key into the server's SSL_CTX. */
int sink_tls_init(struct sink_server *srv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_log_error("SSL_CTX_new");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, srv->cfg.tls_cert) != 1) {
        tls_log_error(srv->cfg.tls_cert);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, srv->cfg.tls_key,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_log_error(srv->cfg.tls_key);
        SSL_CTX_free(ctx);
        return -1;
    }
    srv->tls_ctx = ctx;
    return 0;
}

/* Release the server's SSL_CTX (NULL is fine). */
void sink_tls_free(struct sink_server *srv)
{
    SSL_CTX_free(srv->tls_ctx);
    srv->tls_ctx = NULL;
}

/* Begin the server side of a handshake on this session. */
int sink_tls_start(struct sink_session *s)
{
    SSL *ssl = SSL_new(s->srv->tls_ctx);
    BIO *rbio, *wbio;

    if (ssl == NULL)
        return UV_ENOMEM;
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return UV_ENOMEM;
    }
    SSL_set_bio(ssl, rbio, wbio);   /* ssl owns both BIOs now */
    SSL_set_accept_state(ssl);
    s->ssl = ssl;
    s->rbio = rbio;
    s->wbio = wbio;
    s->tls_done = false;
    return 0;
}

/* Free the session's SSL and its BIOs (none is fine). */
void sink_tls_end(struct sink_session *s)
{
    SSL_free(s->ssl);
    s->ssl = NULL;
    s->rbio = s->wbio = NULL;
}

/* Move everything OpenSSL wrote into the write BIO to the socket. */
static int tls_drain(struct sink_session *s)
{
    BIO *wbio = s->wbio;
    char *data = NULL;
    long n = BIO_get_mem_data(wbio, &data);
    int rc = 0;

    if (n > 0) {
        rc = sink_session_write_raw(s, data, (size_t)n);
        (void)BIO_reset(wbio);
    }
    return rc;
}

/* Encrypt plaintext replies and send them. */
int sink_tls_output(struct sink_session *s, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = SSL_write(s->ssl, p, chunk);
        if (w <= 0) {
            tls_log_error("SSL_write");
            return UV_EPROTO;
        }
        p += w;
        n -= (size_t)w;
    }
    return tls_drain(s);
}

/* Decrypt what the read BIO holds and feed it, until blocked or paused. */
int sink_tls_pump(struct sink_session *s)
{
    struct sink_stats *st = &s->srv->stats;
    int rc = 0;

    while (!s->paused && !s->closing) {
        int r = SSL_read(s->ssl, s->srv->plainbuf, SINK_READ_CHUNK);
        if (r > 0) {
            sink_input_feed(s, s->srv->plainbuf, (size_t)r);
            continue;
        }
        int err = SSL_get_error(s->ssl, r);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_ZERO_RETURN) {
            rc = UV_EOF;
        } else {
            if (!s->tls_done)
                st->tls_failures++;
            if (s->srv->cfg.verbose)
                tls_log_error("TLS");
            ERR_clear_error();
            rc = UV_EPROTO;
        }
        break;
    }
    if (s->closing)
        return 0;
    if (!s->tls_done && SSL_is_init_finished(s->ssl)) {
        s->tls_done = true;
        st->tls_handshakes++;
    }
    if (tls_drain(s) != 0 && rc == 0)
        rc = UV_EPIPE;
    return rc;
}

/* Take ciphertext from the socket and process it. */
int sink_tls_input(struct sink_session *s, const char *p, size_t n)
{
    if (n > INT_MAX || BIO_write((BIO *)s->rbio, p, (int)n) != (int)n)
        return UV_ENOMEM;
    return sink_tls_pump(s);
}
