/*
 * dkim_bench.c - what DKIM signing costs per message, against the bare
 * signature with the same loaded key, measured in one run.
 *
 * DESCRIPTION
 *   For rsa-sha256 (2048 bits) and ed25519-sha256: generate a key, load it
 *   once, then time (a) dkim_sign() over a 5 KB message (canonicalization,
 *   body and header hashes, signature, base64, folding) and (b) the bare
 *   signature of a 32-byte input with the same key, twice: with a context
 *   set up per call, and the way `openssl speed` loops (one context set up
 *   once, then signing again and again).  Prints microseconds per
 *   operation and dkim_sign's ratio to the `openssl speed` loop (target:
 *   within 1.5x).
 *
 * usage: dkim-bench [SECONDS_PER_CASE]   (default 2)
 */
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dkim_int.h"
#include "dkim_sign.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Microseconds per bare signature of 32 bytes with the loaded key; with
 * reuse the context is set up once, as `openssl speed` does. */
static double bare_us(const struct dkim_key *k, double secs, int reuse)
{
    unsigned char in[32] = { 1 }, sig[1024];
    long n = 0;
    EVP_MD_CTX *c = NULL;
    EVP_PKEY_CTX *pc = NULL;
    double t0 = now_s();
    do {
        size_t sl = sizeof sig;
        if (k->is_ed25519) {
            if (!c) {
                c = EVP_MD_CTX_new();
                EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey);
            }
            if (EVP_DigestSign(c, sig, &sl, in, sizeof in) != 1)
                exit(70);
        } else {
            if (!pc) {
                pc = EVP_PKEY_CTX_new(k->pkey, NULL);
                EVP_PKEY_sign_init(pc);
                EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING);
                EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256());
            }
            if (EVP_PKEY_sign(pc, sig, &sl, in, sizeof in) != 1)
                exit(70);
        }
        if (!reuse) {
            EVP_MD_CTX_free(c);
            EVP_PKEY_CTX_free(pc);
            c = NULL;
            pc = NULL;
        }
        n++;
    } while (now_s() - t0 < secs);
    double us = (now_s() - t0) * 1e6 / (double)n;
    EVP_MD_CTX_free(c);
    EVP_PKEY_CTX_free(pc);
    return us;
}

/* Microseconds per dkim_sign() of msg. */
static double sign_us(const struct dkim_key *k, const char *msg, size_t len,
                      double secs)
{
    long n = 0;
    double t0 = now_s();
    do {
        char *h;
        int rc = dkim_sign(k, "example.com", "s1", msg, len, &h);
        if (rc) {
            fprintf(stderr, "dkim-bench: %s\n", dkim_strerror(rc));
            exit(70);
        }
        free(h);
        n++;
    } while (now_s() - t0 < secs);
    return (now_s() - t0) * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    char dir[] = "/tmp/sluice-dkimbench-XXXXXX", path[128], txt[2048];
    char *msg = malloc(8192);
    size_t len = 0;
    if (!msg || !mkdtemp(dir))
        return 71;
    len += (size_t)snprintf(msg, 8192,
                            "From: News <news@example.com>\r\n"
                            "To: <someone@example.net>\r\n"
                            "Subject: The weekly letter\r\n"
                            "Date: Sun, 22 Nov 2026 20:00:00 +0000\r\n"
                            "Message-ID: <1.bench@example.com>\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "List-Unsubscribe: <mailto:u@example.com>\r\n\r\n");
    while (len < 5120)
        len += (size_t)snprintf(msg + len, 8192 - len, "%.74s\r\n",
                                "Lorem ipsum dolor sit amet, consectetur "
                                "adipiscing elit, sed do eiusmod tempor.....");
    const char *algos[] = { "rsa", "ed25519" };
    printf("DKIM signing of a %zu-byte message, %.0f s per case\n", len, secs);
    for (int i = 0; i < 2; i++) {
        struct dkim_key *k;
        char err[256];
        snprintf(path, sizeof path, "%s/%s.pem", dir, algos[i]);
        if (dkim_keygen(algos[i], 2048, path, txt, sizeof txt) ||
            dkim_key_load(path, &k, err, sizeof err)) {
            fprintf(stderr, "dkim-bench: key: %s\n", err);
            return 70;
        }
        double bare = bare_us(k, secs, 0), speed = bare_us(k, secs, 1);
        double full = sign_us(k, msg, len, secs);
        printf("%-8s bare signature %7.1f us  openssl-speed loop %7.1f us "
               "(%6.0f/s)  dkim_sign %7.1f us (%6.0f/s)  ratio to speed "
               "%.2f\n", i ? "ed25519" : "rsa-2048", bare, speed,
               1e6 / speed, full, 1e6 / full, full / speed);
        dkim_key_free(k);
        unlink(path);
    }
    rmdir(dir);
    free(msg);
    return 0;
}
