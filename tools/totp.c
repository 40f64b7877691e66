/*
 * totp.c - time-based one-time passwords (RFC 6238 over RFC 4226) and the
 * base32 text of their secrets.
 *
 * DESCRIPTION
 *   HMAC-SHA1 (OpenSSL) over the big-endian 30-second step count, dynamic
 *   truncation, 6 decimal digits.  A code matches the current step or one
 *   step either side (clock drift of up to 30 s); the step it matched is
 *   returned so that the caller (auth.c) accepts each step once and never
 *   an older one (queue_user_login_ok).  Codes are compared in constant
 *   time.  Part of the sluice_access library (access.h), which sluiced's
 *   web console links too.  Owns no state.
 *
 * DIAGNOSTICS
 *   A failed HMAC gives code 1000000, which no 6-digit input matches.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "access.h"

#define STEP 30
#define DIGITS 6

uint32_t tool_totp_code(const unsigned char *secret, size_t len, int64_t t)
{
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    uint64_t step = t < 0 ? 0 : (uint64_t)t / STEP;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(step & 0xff);
        step >>= 8;
    }
    if (!HMAC(EVP_sha1(), secret, (int)len, msg, sizeof msg, mac, &maclen) ||
        maclen < 20)
        return 1000000;
    unsigned off = mac[maclen - 1] & 0x0f;
    uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 |
                   (uint32_t)mac[off + 1] << 16 |
                   (uint32_t)mac[off + 2] << 8 | mac[off + 3];
    return bin % 1000000;
}

int64_t tool_totp_match(const unsigned char *secret, size_t len, int64_t t,
                        const char *code)
{
    char want[DIGITS + 1];
    int64_t step = -1;
    if (!code || strlen(code) != DIGITS || t < STEP)
        return -1;
    for (int d = -1; d <= 1; d++) {
        int64_t at = t + d * STEP;
        snprintf(want, sizeof want, "%06u",
                 (unsigned)tool_totp_code(secret, len, at));
        /* no early exit: every step is compared; the latest match wins */
        if (sodium_memcmp(want, code, DIGITS) == 0)
            step = at / STEP;
    }
    return step;
}

size_t tool_base32(const unsigned char *in, size_t len, char *out,
                   size_t cap)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        buf = buf << 8 | in[i];
        bits += 8;
        while (bits >= 5 && o + 1 < cap) {
            out[o++] = alpha[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0 && o + 1 < cap)
        out[o++] = alpha[(buf << (5 - bits)) & 31];
    if (cap)
        out[o] = 0;
    return o;
}
