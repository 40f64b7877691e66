/*
 * render_token.c - authenticated tokens for VERP bounce addresses,
 * unsubscribe links and the Message-IDs of campaign messages.
 *
 * DESCRIPTION
 *   A token is lowercase base32 (RFC 4648 alphabet, no padding) of
 *       version(1) | ids, big-endian | HMAC-SHA256(secret, label |
 *       version | ids) cut to its first 10 bytes
 *   The label ("sluice-verp", "sluice-unsub", "sluice-open",
 *   "sluice-click") keeps one kind of token
 *   from being accepted as the other.  Decoding ignores case, demands the
 *   exact length and zero padding bits, and compares the MAC in constant
 *   time.  A Message-ID <CAMPAIGN.DELIVERY.NONCE.MAC@domain> carries its
 *   ids in decimal, a 64-bit nonce in base32 (13 characters) and, as MAC,
 *   the base32 (16 characters) of the first 10 bytes of HMAC-SHA256(secret,
 *   "sluice-msgid" | version | campaign | delivery | nonce): unique per
 *   render, and unguessable without the secret.  See render.h for the
 *   sizes.  HMAC (RFC 2104) is done over OpenSSL's SHA-256 from inner and
 *   outer states keyed once: a template keeps its struct mackey, so a
 *   message's three MACs cost six SHA-256 blocks and no algorithm look-up.
 *   A walk of one message comes here twice at most: its tokens, and the
 *   key's end with a template compiled for that recipient alone.
 *
 * DIAGNOSTICS
 *   RENDER_E_ARG (secret shorter than RENDER_SECRET_MIN), -ENOSPC (output
 *   too small), RENDER_E_TOKEN (not of the form of a token or Message-ID
 *   of this kind: prefix, length, base32 alphabet), RENDER_E_FORGED (of
 *   that form, but its version, padding bits or MAC are not what sluice
 *   makes), RENDER_E_CRYPTO (OpenSSL failed).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "decimal.h"
#include "render_int.h"

#define TOKEN_VERSION 1
#define MAC_LEN 10
#define VERP_IDS 16          /* delivery, campaign */
#define UNSUB_IDS 20         /* account, campaign, contact */
#define MSGID_IDS 24         /* campaign, delivery, nonce */
#define OPEN_IDS 24          /* campaign, delivery, contact */
#define CLICK_IDS 30         /* campaign, delivery, contact, link, check */
#define RAW_MAX (1 + CLICK_IDS + MAC_LEN)

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t render_b32_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return o;
}

/* Decode exactly want bytes from s[0..n): 0; -1 when s is not base32 of
 * that length (not the form of a token); -2 when it is but its padding
 * bits are not zero (not one we made). */
static int b32_decode(const char *s, size_t n, unsigned char *out,
                      size_t want)
{
    if (n != (want * 8 + 4) / 5)
        return -1;
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned v;
        if (c >= 'a' && c <= 'z')
            v = (unsigned)(c - 'a');
        else if (c >= 'A' && c <= 'Z')
            v = (unsigned)(c - 'A');
        else if (c >= '2' && c <= '7')
            v = (unsigned)(c - '2' + 26);
        else
            return -1;
        acc = (acc << 5) | v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (acc & ((1u << bits) - 1)) == 0 ? 0 : -2;
}

/* Put v big-endian in w bytes at p. */
static void put_be(unsigned char *p, uint64_t v, int w)
{
    for (int i = w - 1; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* Read w big-endian bytes at p. */
static uint64_t get_be(const unsigned char *p, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

void render_mackey_free(struct mackey *k)
{
    EVP_MD_CTX_free(k->in);
    EVP_MD_CTX_free(k->out);
    k->in = k->out = NULL;
}

int render_mackey_init(struct mackey *k, const unsigned char *secret,
                       size_t slen)
{
    unsigned char key[64] = { 0 }, pad[64];
    unsigned int kl = 0;
    int ok = 0;
    k->in = k->out = NULL;
    if (secret == NULL || slen < RENDER_SECRET_MIN)
        return RENDER_E_ARG;
    k->in = EVP_MD_CTX_new();
    k->out = EVP_MD_CTX_new();
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (k->in == NULL || k->out == NULL || md == NULL)
        goto out;
    if (slen > sizeof(key)) {       /* RFC 2104: long keys are hashed */
        if (!EVP_Digest(secret, slen, key, &kl, md, NULL))
            goto out;
    } else {
        memcpy(key, secret, slen);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x36;
    if (!EVP_DigestInit_ex(k->in, md, NULL) ||
        !EVP_DigestUpdate(k->in, pad, 64))
        goto out;
    for (int i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x5c;
    ok = EVP_DigestInit_ex(k->out, md, NULL) &&
         EVP_DigestUpdate(k->out, pad, 64);
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    EVP_MD_free(md);
    if (!ok) {
        render_mackey_free(k);
        return RENDER_E_CRYPTO;
    }
    return 0;
}

/* The MAC_LEN-byte tag of label | msg[0..n): HMAC-SHA256 from the keyed
 * inner and outer states (copied, so k is only read). */
static int mac(const struct mackey *k, const char *label,
               const unsigned char *msg, size_t n, unsigned char *tag)
{
    unsigned char ih[EVP_MAX_MD_SIZE], md[EVP_MAX_MD_SIZE];
    unsigned int il = 0, ml = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_MD_CTX_copy_ex(c, k->in) &&
             EVP_DigestUpdate(c, label, strlen(label)) &&
             EVP_DigestUpdate(c, msg, n) && EVP_DigestFinal_ex(c, ih, &il) &&
             EVP_MD_CTX_copy_ex(c, k->out) && EVP_DigestUpdate(c, ih, il) &&
             EVP_DigestFinal_ex(c, md, &ml) && ml >= MAC_LEN;
    EVP_MD_CTX_free(c);
    if (!ok)
        return RENDER_E_CRYPTO;
    memcpy(tag, md, MAC_LEN);
    return 0;
}

/* Seal raw[0..n) (version and ids) with its MAC and write the token. */
static int seal(const struct mackey *k, const char *label,
                unsigned char *raw, size_t n, char *tok, size_t toklen)
{
    if (toklen < ((n + MAC_LEN) * 8 + 4) / 5 + 1)
        return -ENOSPC;
    int rc = mac(k, label, raw, n, raw + n);
    if (rc)
        return rc;
    render_b32_encode(raw, n + MAC_LEN, tok);
    return 0;
}

/* Check token s[0..len) of nids id bytes; on success raw holds it. */
static int unseal(const unsigned char *secret, size_t slen, const char *label,
                  const char *s, size_t len, size_t nids, unsigned char *raw)
{
    unsigned char tag[MAC_LEN];
    struct mackey k;
    if (secret == NULL || slen < RENDER_SECRET_MIN)
        return RENDER_E_ARG;
    int form = b32_decode(s, len, raw, 1 + nids + MAC_LEN);
    if (form == -1)
        return RENDER_E_TOKEN;
    if (form || raw[0] != TOKEN_VERSION)
        return RENDER_E_FORGED;       /* the form of a token, not ours */
    int rc = render_mackey_init(&k, secret, slen);
    if (rc)
        return rc;
    rc = mac(&k, label, raw, 1 + nids, tag);
    render_mackey_free(&k);
    if (rc)
        return rc;
    if (CRYPTO_memcmp(tag, raw + 1 + nids, MAC_LEN) != 0)
        return RENDER_E_FORGED;
    return 0;
}

int render_verp_keyed(const struct mackey *k, uint64_t delivery,
                      uint64_t campaign, char *tok, size_t toklen)
{
    unsigned char raw[RAW_MAX];
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, delivery, 8);
    put_be(raw + 9, campaign, 8);
    return seal(k, "sluice-verp", raw, 1 + VERP_IDS, tok, toklen);
}

int render_unsub_keyed(const struct mackey *k, uint32_t account,
                       uint64_t campaign, uint64_t contact, char *tok,
                       size_t toklen)
{
    unsigned char raw[RAW_MAX];
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, account, 4);
    put_be(raw + 5, campaign, 8);
    put_be(raw + 13, contact, 8);
    return seal(k, "sluice-unsub", raw, 1 + UNSUB_IDS, tok, toklen);
}

int render_verp_token(const unsigned char *secret, size_t secret_len,
                      uint64_t delivery, uint64_t campaign, char *tok,
                      size_t toklen)
{
    struct mackey k;
    int rc = render_mackey_init(&k, secret, secret_len);
    if (rc)
        return rc;
    rc = render_verp_keyed(&k, delivery, campaign, tok, toklen);
    render_mackey_free(&k);
    return rc;
}

int render_unsub_token(const unsigned char *secret, size_t secret_len,
                       uint32_t account, uint64_t campaign, uint64_t contact,
                       char *tok, size_t toklen)
{
    struct mackey k;
    int rc = render_mackey_init(&k, secret, secret_len);
    if (rc)
        return rc;
    rc = render_unsub_keyed(&k, account, campaign, contact, tok, toklen);
    render_mackey_free(&k);
    return rc;
}

/* The token inside "[<]PREFIX-TOKEN[@domain][>]": start and length. */
static int local_token(const char *s, const char *prefix, int need_prefix,
                       const char **tok, size_t *len)
{
    if (s == NULL)
        return RENDER_E_TOKEN;
    size_t n = strnlen(s, 1024);
    if (n && s[0] == '<') {
        if (s[n - 1] != '>')
            return RENDER_E_TOKEN;
        s++;
        n -= 2;
    }
    const char *at = memchr(s, '@', n);
    if (at)
        n = (size_t)(at - s);
    size_t pl = strlen(prefix);
    if (n >= pl && strncasecmp(s, prefix, pl) == 0) {
        s += pl;
        n -= pl;
    } else if (need_prefix) {
        return RENDER_E_TOKEN;
    }
    *tok = s;
    *len = n;
    return 0;
}

int render_verp_decode(const char *addr, const unsigned char *secret,
                       size_t secret_len, uint64_t *delivery,
                       uint64_t *campaign)
{
    const char *t;
    size_t n;
    unsigned char raw[RAW_MAX];
    int rc = local_token(addr, "b-", 1, &t, &n);
    if (rc == 0)
        rc = unseal(secret, secret_len, "sluice-verp", t, n, VERP_IDS, raw);
    if (rc)
        return rc;
    *delivery = get_be(raw + 1, 8);
    *campaign = get_be(raw + 9, 8);
    return 0;
}

int render_unsub_decode(const char *token, const unsigned char *secret,
                        size_t secret_len, uint32_t *account,
                        uint64_t *campaign, uint64_t *contact)
{
    const char *t;
    size_t n;
    unsigned char raw[RAW_MAX];
    int rc = local_token(token, "unsub-", 0, &t, &n);
    if (rc == 0)
        rc = unseal(secret, secret_len, "sluice-unsub", t, n, UNSUB_IDS, raw);
    if (rc)
        return rc;
    *account = (uint32_t)get_be(raw + 1, 4);
    *campaign = get_be(raw + 5, 8);
    *contact = get_be(raw + 13, 8);
    return 0;
}

int render_open_keyed(const struct mackey *k, uint64_t campaign,
                      uint64_t delivery, uint64_t contact, char *tok,
                      size_t toklen)
{
    unsigned char raw[RAW_MAX];
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, campaign, 8);
    put_be(raw + 9, delivery, 8);
    put_be(raw + 17, contact, 8);
    return seal(k, "sluice-open", raw, 1 + OPEN_IDS, tok, toklen);
}

int render_click_keyed(const struct mackey *k, uint64_t campaign,
                       uint64_t delivery, uint64_t contact, unsigned link,
                       uint32_t check, char *tok, size_t toklen)
{
    unsigned char raw[RAW_MAX];
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, campaign, 8);
    put_be(raw + 9, delivery, 8);
    put_be(raw + 17, contact, 8);
    put_be(raw + 25, link, 2);
    put_be(raw + 27, check, 4);
    return seal(k, "sluice-click", raw, 1 + CLICK_IDS, tok, toklen);
}

int render_open_decode(const char *token, const unsigned char *secret,
                       size_t secret_len, uint64_t *campaign,
                       uint64_t *delivery, uint64_t *contact)
{
    unsigned char raw[RAW_MAX];
    if (token == NULL)
        return RENDER_E_TOKEN;
    int rc = unseal(secret, secret_len, "sluice-open", token,
                    strnlen(token, 1024), OPEN_IDS, raw);
    if (rc)
        return rc;
    *campaign = get_be(raw + 1, 8);
    *delivery = get_be(raw + 9, 8);
    *contact = get_be(raw + 17, 8);
    return 0;
}

int render_click_decode(const char *token, const unsigned char *secret,
                        size_t secret_len, uint64_t *campaign,
                        uint64_t *delivery, uint64_t *contact,
                        unsigned *link, uint32_t *check)
{
    unsigned char raw[RAW_MAX];
    if (token == NULL)
        return RENDER_E_TOKEN;
    int rc = unseal(secret, secret_len, "sluice-click", token,
                    strnlen(token, 1024), CLICK_IDS, raw);
    if (rc)
        return rc;
    *campaign = get_be(raw + 1, 8);
    *delivery = get_be(raw + 9, 8);
    *contact = get_be(raw + 17, 8);
    *link = (unsigned)get_be(raw + 25, 2);
    *check = (uint32_t)get_be(raw + 27, 4);
    return 0;
}

/* The MAC of the Message-ID of (campaign, delivery, nonce) into tag. */
static int msgid_tag(const struct mackey *k, uint64_t campaign,
                     uint64_t delivery, uint64_t nonce, unsigned char *tag)
{
    unsigned char raw[1 + MSGID_IDS];
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, campaign, 8);
    put_be(raw + 9, delivery, 8);
    put_be(raw + 17, nonce, 8);
    return mac(k, "sluice-msgid", raw, sizeof raw, tag);
}

int render_msgid_left(const struct mackey *k, uint64_t campaign,
                      uint64_t delivery, uint64_t nonce, char *out,
                      size_t outlen)
{
    unsigned char tag[MAC_LEN], nb[8];
    if (outlen < RENDER_MSGID_LEFT_MAX + 1)
        return -ENOSPC;
    int rc = msgid_tag(k, campaign, delivery, nonce, tag);
    if (rc)
        return rc;
    size_t n = decimal_u64(out, campaign);
    out[n++] = '.';
    n += decimal_u64(out + n, delivery);
    out[n++] = '.';
    put_be(nb, nonce, 8);
    n += render_b32_encode(nb, 8, out + n);
    out[n++] = '.';
    render_b32_encode(tag, MAC_LEN, out + n);
    return 0;
}

int render_msgid(const unsigned char *secret, size_t secret_len,
                 uint64_t campaign, uint64_t delivery, uint64_t nonce,
                 char *out, size_t outlen)
{
    struct mackey k;
    int rc = render_mackey_init(&k, secret, secret_len);
    if (rc)
        return rc;
    rc = render_msgid_left(&k, campaign, delivery, nonce, out, outlen);
    render_mackey_free(&k);
    return rc;
}

/* A canonical decimal u64 (no sign, no leading zero) at *s ending at
 * stop; advances *s past it and the stop character.  -1 if not one. */
static int msgid_dec(const char **s, const char *end, char stop,
                     uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    size_t n = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, n++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (n == 0 || (n > 1 && **s == '0') || p == end || *p != stop)
        return -1;
    *s = p + 1;
    *v = x;
    return 0;
}

int render_msgid_decode(const char *msgid, const unsigned char *secret,
                        size_t secret_len, uint64_t *campaign,
                        uint64_t *delivery)
{
    unsigned char got[MAC_LEN], want[MAC_LEN], nb[8];
    struct mackey k;
    uint64_t c, d;
    if (secret == NULL || secret_len < RENDER_SECRET_MIN)
        return RENDER_E_ARG;
    if (msgid == NULL)
        return RENDER_E_TOKEN;
    size_t n = strnlen(msgid, 1024);
    const char *s = msgid, *end = msgid + n;
    if (n && s[0] == '<') {
        if (s[n - 1] != '>')
            return RENDER_E_TOKEN;
        s++;
        end--;
    }
    /* then NONCE "." MAC "@" and at least one character */
    const size_t tail = MSGID_NONCE_LEN + 1 + RENDER_MSGID_MAC_LEN;
    if (msgid_dec(&s, end, '.', &c) || msgid_dec(&s, end, '.', &d) ||
        (size_t)(end - s) < tail + 2 || s[MSGID_NONCE_LEN] != '.' ||
        s[tail] != '@')
        return RENDER_E_TOKEN;
    int fn = b32_decode(s, MSGID_NONCE_LEN, nb, 8);
    int fm = b32_decode(s + MSGID_NONCE_LEN + 1, RENDER_MSGID_MAC_LEN, got,
                        MAC_LEN);
    if (fn == -1 || fm == -1)
        return RENDER_E_TOKEN;
    if (fn || fm)
        return RENDER_E_FORGED;       /* padding bits we never set */
    int rc = render_mackey_init(&k, secret, secret_len);
    if (rc)
        return rc;
    rc = msgid_tag(&k, c, d, get_be(nb, 8), want);
    render_mackey_free(&k);
    if (rc)
        return rc;
    if (CRYPTO_memcmp(got, want, MAC_LEN) != 0)
        return RENDER_E_FORGED;
    *campaign = c;
    *delivery = d;
    return 0;
}
