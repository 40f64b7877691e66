/*
 * dkim_int.h - what the dkim/ folder shares inside itself.
 *
 * DESCRIPTION
 *   The key object, the header-field index of a message and the relaxed
 *   canonicalizations (canon.c).  Nothing here allocates except where said.
 */
#ifndef SLUICE_DKIM_INT_H
#define SLUICE_DKIM_INT_H

#include <stddef.h>

#include <openssl/evp.h>
#include <pthread.h>

#define DKIM_CTX_POOL 8

struct dkim_key {
    EVP_PKEY *pkey;
    int is_ed25519;
    /* Signing contexts already initialised for this key, reused across
     * messages (and threads, one at a time): OpenSSL's per-call set-up is
     * a tenth of an Ed25519 signature. */
    pthread_mutex_t lock;
    unsigned npool;
    void *pool[DKIM_CTX_POOL];   /* EVP_MD_CTX (Ed25519), EVP_PKEY_CTX (RSA) */
};

/* One header field of the message: name[0..name_len) and the whole field
 * (name, colon, value with folding) field[0..field_len), without the CRLF
 * that ends it.  Pointers into the caller's message. */
struct dkim_hfield {
    const char *field;
    size_t field_len;
    size_t name_len;
};

/* Index the header fields of msg.  Writes at most max entries to fields and
 * the count to *nfields, the offset of the body to *body_off.  Returns 0,
 * DKIM_E_MSG (bare LF, a line that is no field) or DKIM_E_TOOBIG. */
int canon_split(const char *msg, size_t len, struct dkim_hfield *fields,
                size_t max, size_t *nfields, size_t *body_off);

/* Feed the relaxed canonical form of one field (with its CRLF unless
 * with_crlf is 0) to the digest.  Returns 0 or DKIM_E_CRYPTO. */
int canon_header_relaxed(EVP_MD_CTX *md, const char *field, size_t len,
                         int with_crlf);

/* Feed the relaxed canonical form of body[0..len) to the digest. */
int canon_body_relaxed(EVP_MD_CTX *md, const char *body, size_t len);

#endif
