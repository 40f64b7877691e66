/*
 * key.c - loading and generating DKIM private keys.
 *
 * DESCRIPTION
 *   dkim_key_load() reads a PEM private key once (fstat on the open file,
 *   so the mode checked is the mode of the file read) and keeps the
 *   EVP_PKEY.  dkim_keygen() writes a new key with mode 0600 and returns
 *   the DNS TXT record: p= is the DER SubjectPublicKeyInfo for RSA and the
 *   raw 32-byte public key for Ed25519 (RFC 8463), both base64;
 *   dkim_key_txt() gives the same record for a loaded key.
 *
 * DIAGNOSTICS
 *   DKIM_E_KEYPERM, DKIM_E_KEYPARSE, DKIM_E_KEYTYPE, DKIM_E_KEYSIZE,
 *   DKIM_E_TOOBIG, DKIM_E_CRYPTO, DKIM_E_ARG or -errno; the err buffer gets
 *   the path and the reason, with OpenSSL's text where it has one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim_int.h"
#include "dkim_sign.h"

/* Write a formatted reason to err (if given) and return code. */
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* OpenSSL's last error as text (drains the thread's error queue). */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

const char *dkim_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case DKIM_E_KEYPERM: return "key file is readable by group or others";
    case DKIM_E_KEYPARSE: return "not a PEM private key";
    case DKIM_E_KEYTYPE: return "key is neither RSA nor Ed25519";
    case DKIM_E_KEYSIZE: return "RSA key size outside 1024..4096 bits";
    case DKIM_E_MSG: return "malformed message";
    case DKIM_E_TOOBIG: return "size limit exceeded";
    case DKIM_E_CRYPTO: return "OpenSSL operation failed";
    case DKIM_E_ARG: return "invalid argument";
    default: break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

const char *dkim_key_algorithm(const struct dkim_key *k)
{
    return k->is_ed25519 ? "ed25519-sha256" : "rsa-sha256";
}

/* Check that pkey is a usable DKIM key; sets *ed to 1 for Ed25519. */
static int key_check(EVP_PKEY *pkey, int *ed, char *err, size_t errlen,
                     const char *path)
{
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *ed = 1;
        return 0;
    }
    if (!EVP_PKEY_is_a(pkey, "RSA"))
        return fail(DKIM_E_KEYTYPE, err, errlen,
                    "%s: key is neither RSA nor Ed25519", path);
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < 1024 || bits > 4096)
        return fail(DKIM_E_KEYSIZE, err, errlen,
                    "%s: RSA key has %d bits, need 1024..4096", path, bits);
    *ed = 0;
    return 0;
}

int dkim_key_load(const char *path, struct dkim_key **out, char *err,
                  size_t errlen)
{
    char buf[DKIM_KEYFILE_MAX], ssl[256];
    struct stat st;
    ssize_t got;
    size_t len = 0;
    int fd, rc, ed = 0;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return fail(rc, err, errlen, "%s: %s", path, strerror(-rc));
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return fail(rc, err, errlen, "%s: %s", path, strerror(-rc));
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return fail(DKIM_E_KEYPERM, err, errlen,
                    "%s: key file mode %04o is readable by group or others, "
                    "so sluiced refuses it; fix: chmod 600 %s", path,
                    (unsigned)(st.st_mode & 0777), path);
    }
    while ((got = read(fd, buf + len, sizeof(buf) - len)) > 0) {
        len += (size_t)got;
        if (len == sizeof(buf)) {
            close(fd);
            return fail(DKIM_E_TOOBIG, err, errlen,
                        "%s: key file larger than %d bytes", path,
                        DKIM_KEYFILE_MAX);
        }
    }
    if (got < 0) {
        rc = -errno;
        close(fd);
        return fail(rc, err, errlen, "%s: %s", path, strerror(-rc));
    }
    close(fd);

    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL)
        return fail(-ENOMEM, err, errlen, "%s: out of memory", path);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    if (pkey == NULL)
        return fail(DKIM_E_KEYPARSE, err, errlen, "%s: not a PEM private key "
                    "(%s)", path, ssl_reason(ssl, sizeof(ssl)));
    rc = key_check(pkey, &ed, err, errlen, path);
    if (rc != 0) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    struct dkim_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return fail(-ENOMEM, err, errlen, "%s: out of memory", path);
    }
    k->pkey = pkey;
    k->is_ed25519 = ed;
    pthread_mutex_init(&k->lock, NULL);
    *out = k;
    return 0;
}

void dkim_key_free(struct dkim_key *k)
{
    if (k == NULL)
        return;
    for (unsigned i = 0; i < k->npool; i++) {
        if (k->is_ed25519)
            EVP_MD_CTX_free(k->pool[i]);
        else
            EVP_PKEY_CTX_free(k->pool[i]);
    }
    pthread_mutex_destroy(&k->lock);
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* Public key of pkey as the TXT record value, into txt. */
static int key_txt(EVP_PKEY *pkey, int ed, char *txt, size_t txtlen)
{
    unsigned char raw[2048], *p = raw;
    unsigned char b64[((sizeof(raw) + 2) / 3) * 4 + 1];
    size_t rawlen = sizeof(raw);
    int n;

    if (ed) {
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
            return DKIM_E_CRYPTO;
    } else {
        n = i2d_PUBKEY(pkey, NULL);
        if (n <= 0 || (size_t)n > sizeof(raw))
            return DKIM_E_CRYPTO;
        if (i2d_PUBKEY(pkey, &p) != n)
            return DKIM_E_CRYPTO;
        rawlen = (size_t)n;
    }
    EVP_EncodeBlock(b64, raw, (int)rawlen);
    n = snprintf(txt, txtlen, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa",
                 (char *)b64);
    if (n < 0 || (size_t)n >= txtlen)
        return DKIM_E_TOOBIG;
    return 0;
}

int dkim_key_txt(const struct dkim_key *k, char *txt, size_t len)
{
    int rc = key_txt(k->pkey, k->is_ed25519, txt, len);
    ERR_clear_error();
    return rc;
}

int dkim_keygen(const char *algo, int bits, const char *path, char *txt,
                size_t txtlen)
{
    EVP_PKEY *pkey = NULL;
    int ed, rc, fd;

    if (strcmp(algo, "ed25519") == 0) {
        ed = 1;
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else if (strcmp(algo, "rsa") == 0) {
        if (bits < 1024 || bits > 4096)
            return DKIM_E_KEYSIZE;
        ed = 0;
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else {
        return DKIM_E_ARG;
    }
    if (pkey == NULL) {
        ERR_clear_error();
        return DKIM_E_CRYPTO;
    }
    rc = key_txt(pkey, ed, txt, txtlen);
    if (rc != 0)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        rc = -errno;
        close(fd);
        unlink(path);
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        rc = -errno;
    else if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1)
        rc = DKIM_E_CRYPTO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path);
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    return rc;
}
