/*
 * dkim_sign.c - building and signing the DKIM-Signature field.
 *
 * DESCRIPTION
 *   dkim_sign() hashes the relaxed body (bh=), chooses the signed headers
 *   (h=, bottom-up for repeated names per RFC 6376 5.4.2, some over-signed),
 *   folds the field, hashes the relaxed headers plus the field with an empty
 *   b=, and signs that SHA-256 digest: PKCS#1 v1.5 for RSA, and for Ed25519
 *   the 32-byte digest itself as the message (RFC 8463 section 3).
 *
 * WHY OPENSSL DIRECTLY
 *   libopendkim parses the PEM key again for every message it signs: about
 *   315 us a message (bench/RESULTS.md, "DKIM signing - issue 5"), more
 *   than this whole signature of a 5 KB message with an RSA-2048 key (262
 *   us, bench/dkim_bench.c), so signing through it would cost about 2.2
 *   times as much.  Here a key is parsed once (key.c) and its signing
 *   contexts are reused.  Independent verifiers check the output in the
 *   tests: dkimpy and libopendkim in dkim_it_verify
 *   (tests/dkim/test_dkim_verify.py), dkimpy and opendkim-testmsg on every
 *   message sluiced delivers in engine_it_dkim (tests/engine/test_dkim.py).
 *
 * DIAGNOSTICS
 *   DKIM_E_ARG for a domain or selector that is not a plain DNS name,
 *   DKIM_E_MSG for a message without From or with bare LFs, DKIM_E_TOOBIG,
 *   DKIM_E_CRYPTO, -ENOMEM.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "dkim_int.h"
#include "dkim_sign.h"

#define LINE_MAX_CHARS 78
#define FIELDS_ON_STACK 128     /* header fields indexed without malloc */

static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 fetched once: OpenSSL 3 looks EVP_sha256() up in its provider
 * tables on every init otherwise, which costs more than hashing a short
 * header block. */
static const EVP_MD *sha256_md(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_fetched ? sha256_fetched : EVP_sha256();
}

/* Signed header names; oversign = listed once more than present. */
static const struct {
    const char *name;
    int oversign;
} signed_headers[] = {
    { "From", 1 }, { "To", 0 }, { "Subject", 1 }, { "Date", 0 },
    { "Message-ID", 0 }, { "MIME-Version", 0 }, { "Content-Type", 0 },
    { "Reply-To", 0 }, { "List-Unsubscribe", 1 },
    { "List-Unsubscribe-Post", 1 }, { "Feedback-ID", 0 },
};
#define NSIGNED (sizeof(signed_headers) / sizeof(signed_headers[0]))

/* Folding writer into a fixed buffer. */
struct fold {
    char buf[DKIM_SIGFIELD_MAX];
    size_t len;
    size_t line;        /* characters on the current line */
    int overflow;
};

/* Append raw bytes. */
static void fold_raw(struct fold *f, const char *s, size_t n)
{
    if (f->overflow || n >= sizeof(f->buf) - f->len) {
        f->overflow = 1;
        return;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    f->line += n;
}

/* Append a token, first a space (sep) or nothing; breaks the line before
 * it when it would pass the line limit. */
static void fold_token(struct fold *f, const char *s, size_t n, int sep)
{
    if (f->line + (size_t)(sep ? 1 : 0) + n > LINE_MAX_CHARS && f->line > 1) {
        fold_raw(f, "\r\n\t", 3);
        f->line = 1;
    } else if (sep) {
        fold_raw(f, " ", 1);
    }
    fold_raw(f, s, n);
}

/* A domain or selector: letters, digits, '-', '_', '.', at most 253. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Does field f carry header name? */
static int field_is(const struct dkim_hfield *f, const char *name)
{
    return strlen(name) == f->name_len &&
           strncasecmp(f->field, name, f->name_len) == 0;
}

/* A signing context of k made ready earlier, or a new one; NULL when
 * OpenSSL fails.  The pool is the key's only mutable part. */
static void *ctx_take(const struct dkim_key *key)
{
    struct dkim_key *k = (struct dkim_key *)key;
    void *c = NULL;
    pthread_mutex_lock(&k->lock);
    if (k->npool)
        c = k->pool[--k->npool];
    pthread_mutex_unlock(&k->lock);
    if (c)
        return c;
    if (k->is_ed25519) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        if (m && EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, k->pkey,
                                       NULL) != 1) {
            EVP_MD_CTX_free(m);
            m = NULL;
        }
        return m;
    }
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (pc && (EVP_PKEY_sign_init(pc) != 1 ||
               EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
               EVP_PKEY_CTX_set_signature_md(pc, sha256_md()) != 1)) {
        EVP_PKEY_CTX_free(pc);
        pc = NULL;
    }
    return pc;
}

/* Give a context back for the next message (freed if the pool is full or
 * the context failed). */
static void ctx_give(const struct dkim_key *key, void *c, int ok)
{
    struct dkim_key *k = (struct dkim_key *)key;
    if (ok) {
        pthread_mutex_lock(&k->lock);
        if (k->npool < DKIM_CTX_POOL) {
            k->pool[k->npool++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&k->lock);
    }
    if (c && k->is_ed25519)
        EVP_MD_CTX_free(c);
    else if (c)
        EVP_PKEY_CTX_free(c);
}

/* Sign the 32-byte digest with k into sig; sets *siglen.  Ed25519 signs
 * the digest itself (RFC 8463: PureEdDSA over the SHA-256 hash); RSA
 * signs it as a SHA-256 DigestInfo with PKCS#1 v1.5 padding. */
static int sign_digest(const struct dkim_key *k, const unsigned char *dig,
                       unsigned char *sig, size_t *siglen)
{
    void *c = ctx_take(k);
    int ok = c != NULL &&
             (k->is_ed25519 ? EVP_DigestSign(c, sig, siglen, dig, 32)
                            : EVP_PKEY_sign(c, sig, siglen, dig, 32)) == 1;
    if (c)
        ctx_give(k, c, ok);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : DKIM_E_CRYPTO;
}

int dkim_sign(const struct dkim_key *k, const char *domain,
              const char *selector, const char *msg, size_t len,
              char **header_out)
{
    struct dkim_hfield few[FIELDS_ON_STACK], *fields = few, *many = NULL;
    struct fold *f = NULL;
    EVP_MD_CTX *md = NULL;
    size_t nfields = 0, body_off = 0;
    unsigned char bh[EVP_MAX_MD_SIZE], hd[EVP_MAX_MD_SIZE], sig[1024];
    unsigned char b64[((sizeof(sig) + 2) / 3) * 4 + 1];
    char tmp[320];
    unsigned int mdlen;
    size_t siglen = sizeof(sig);
    int rc, have_from = 0;

    *header_out = NULL;
    if (!name_ok(domain) || !name_ok(selector))
        return DKIM_E_ARG;
    f = malloc(sizeof(*f));
    md = EVP_MD_CTX_new();
    if (f == NULL || md == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    f->len = f->line = 0;
    f->overflow = 0;
    rc = canon_split(msg, len, few, FIELDS_ON_STACK, &nfields, &body_off);
    if (rc == DKIM_E_TOOBIG) {
        /* a message with many fields: index it again on the heap */
        if ((many = calloc(DKIM_HEADERS_MAX, sizeof(*many))) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        fields = many;
        rc = canon_split(msg, len, fields, DKIM_HEADERS_MAX, &nfields,
                         &body_off);
    }
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < nfields; i++)
        if (field_is(&fields[i], "From"))
            have_from = 1;
    if (!have_from) {
        rc = DKIM_E_MSG;
        goto out;
    }

    /* bh= */
    rc = DKIM_E_CRYPTO;
    if (EVP_DigestInit_ex(md, sha256_md(), NULL) != 1)
        goto out;
    if ((rc = canon_body_relaxed(md, msg + body_off, len - body_off)) != 0)
        goto out;
    rc = DKIM_E_CRYPTO;
    if (EVP_DigestFinal_ex(md, bh, &mdlen) != 1)
        goto out;

    /* The field up to "b=". */
    fold_raw(f, "DKIM-Signature:", 15);
    fold_token(f, "v=1;", 4, 1);
    snprintf(tmp, sizeof(tmp), "a=%s;", dkim_key_algorithm(k));
    fold_token(f, tmp, strlen(tmp), 1);
    fold_token(f, "c=relaxed/relaxed;", 18, 1);
    snprintf(tmp, sizeof(tmp), "d=%s;", domain);
    fold_token(f, tmp, strlen(tmp), 1);
    snprintf(tmp, sizeof(tmp), "s=%s;", selector);
    fold_token(f, tmp, strlen(tmp), 1);
    snprintf(tmp, sizeof(tmp), "t=%lld;", (long long)time(NULL));
    fold_token(f, tmp, strlen(tmp), 1);
    int first = 1;
    for (size_t h = 0; h < NSIGNED; h++) {
        size_t count = 0;
        for (size_t i = 0; i < nfields; i++)
            count += (size_t)field_is(&fields[i], signed_headers[h].name);
        if (count > 0 && signed_headers[h].oversign)
            count++;
        for (size_t c = 0; c < count; c++) {
            snprintf(tmp, sizeof(tmp), "%s%s", first ? "h=" : ":",
                     signed_headers[h].name);
            fold_token(f, tmp, strlen(tmp), first);
            first = 0;
        }
    }
    fold_raw(f, ";", 1);
    unsigned char bh64[64];
    EVP_EncodeBlock(bh64, bh, (int)mdlen);
    snprintf(tmp, sizeof(tmp), "bh=%s;", (char *)bh64);
    fold_token(f, tmp, strlen(tmp), 1);
    fold_token(f, "b=", 2, 1);
    if (f->overflow) {
        rc = DKIM_E_TOOBIG;
        goto out;
    }

    /* Header hash: signed fields bottom-up per name, then this field. */
    if (EVP_DigestInit_ex(md, sha256_md(), NULL) != 1)
        goto out;
    for (size_t h = 0; h < NSIGNED; h++) {
        const char *name = signed_headers[h].name;
        size_t idx = nfields;
        for (;;) {
            while (idx > 0 && !field_is(&fields[idx - 1], name))
                idx--;
            if (idx == 0)
                break;                  /* over-signed: a null string */
            idx--;
            rc = canon_header_relaxed(md, fields[idx].field,
                                      fields[idx].field_len, 1);
            if (rc != 0)
                goto out;
        }
    }
    rc = canon_header_relaxed(md, f->buf, f->len, 0);
    if (rc != 0)
        goto out;
    rc = DKIM_E_CRYPTO;
    if (EVP_DigestFinal_ex(md, hd, &mdlen) != 1 || mdlen != 32)
        goto out;
    if ((rc = sign_digest(k, hd, sig, &siglen)) != 0)
        goto out;

    /* b= value, broken where the line is full. */
    EVP_EncodeBlock(b64, sig, (int)siglen);
    size_t blen = strlen((char *)b64), done = 0;
    while (done < blen) {
        size_t room = f->line < LINE_MAX_CHARS ? LINE_MAX_CHARS - f->line : 0;
        if (room == 0) {
            fold_raw(f, "\r\n\t", 3);
            f->line = 1;
            continue;
        }
        size_t n = blen - done < room ? blen - done : room;
        fold_raw(f, (char *)b64 + done, n);
        done += n;
    }
    fold_raw(f, "\r\n", 2);
    if (f->overflow) {
        rc = DKIM_E_TOOBIG;
        goto out;
    }
    *header_out = malloc(f->len + 1);
    if (*header_out == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*header_out, f->buf, f->len);
    (*header_out)[f->len] = '\0';
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(many);
    free(f);
    return rc;
}
