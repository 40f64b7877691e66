/*
 * tls.c - client TLS for STARTTLS through OpenSSL memory BIOs.
 *
 * DESCRIPTION
 *   One SSL object per session with two memory BIOs: the read BIO receives
 *   what the socket delivered, the write BIO collects what must be sent.
 *   With verification on, the peer chain is checked against the CA paths
 *   and the MX host name (SSL_set1_host); with it off, any certificate is
 *   accepted (opportunistic TLS still encrypts).
 *
 * DIAGNOSTICS
 *   tls_error() holds the OpenSSL reason for the last failure, including
 *   the verification result.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

struct tls {
    SSL *ssl;
    BIO *rbio, *wbio;  /* owned by ssl */
    char err[256];
};

/* Keep the most useful OpenSSL error text for this connection. */
static int set_err(struct tls *t, const char *what)
{
    unsigned long e = ERR_get_error();
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK)
        snprintf(t->err, sizeof t->err, "%s: certificate verify failed: %s",
                 what, X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(t->err, sizeof t->err, "%s: %s", what,
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                            : "unknown TLS error");
    else
        snprintf(t->err, sizeof t->err, "%s", what);
    ERR_clear_error();
    return TLS_EFAIL;
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        snprintf(err, errlen, "cannot load CA certificates%s%s",
                 ca_file ? " from " : "", ca_file ? ca_file : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A connection of ctx over two memory BIOs, or NULL. */
static struct tls *tls_alloc(SSL_CTX *ctx)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (!(t->ssl = SSL_new(ctx)) || !(t->rbio = BIO_new(BIO_s_mem())) ||
        !(t->wbio = BIO_new(BIO_s_mem()))) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    return t;
}

struct tls *tls_new(SSL_CTX *ctx, const char *host, bool verify)
{
    struct tls *t = tls_alloc(ctx);
    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    if (host && *host && host[0] != '[')
        SSL_set_tlsext_host_name(t->ssl, host);
    if (verify) {
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        if (host && *host)
            SSL_set1_host(t->ssl, host);
    } else {
        SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    }
    return t;
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
                        size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    const char *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        what = cert;
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        what = key;
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "tls_key does not match tls_cert:";
    if (what) {
        unsigned long e = ERR_get_error();
        snprintf(err, errlen, "%s %s", what,
                 e && ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                 : "cannot be used");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tls *tls_new_server(SSL_CTX *ctx)
{
    struct tls *t = tls_alloc(ctx);
    if (t)
        SSL_set_accept_state(t->ssl);
    return t;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

int tls_feed(struct tls *t, const void *data, size_t len)
{
    while (len) {
        int n = BIO_write(t->rbio, data, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n <= 0)
            return set_err(t, "TLS input");
        data = (const char *)data + n;
        len -= (size_t)n;
    }
    return 0;
}

int tls_handshake(struct tls *t)
{
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_EWANT;
    return set_err(t, "TLS handshake");
}

ssize_t tls_read(struct tls *t, void *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->err, sizeof t->err, "TLS closed by peer");
        return TLS_EFAIL;
    }
    return set_err(t, "TLS read");
}

int tls_write(struct tls *t, const void *data, size_t len)
{
    while (len) {
        int n = SSL_write(t->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n <= 0)
            return set_err(t, "TLS write");
        data = (const char *)data + n;
        len -= (size_t)n;
    }
    return 0;
}

size_t tls_pending(struct tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t tls_take(struct tls *t, void *buf, size_t cap)
{
    int n = BIO_read(t->wbio, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

int tls_flush(struct tls *t, tls_sink put, void *arg)
{
    char buf[16384];
    size_t n;
    while ((n = tls_take(t, buf, sizeof buf))) {
        int rc = put(arg, buf, n);
        if (rc)
            return rc;
    }
    return 0;
}

const char *tls_error(const struct tls *t)
{
    return t->err[0] ? t->err : "TLS error";
}

const char *tls_version(const struct tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *tls_cipher(const struct tls *t)
{
    return SSL_get_cipher_name(t->ssl);
}
