/*
 * record.c - the DNS side of a key: our TXT record cut into strings, and a
 * published record parsed and judged against a key of the store.
 *
 * DESCRIPTION
 *   dkim_txt_cut() gives the character-strings (at most 255 octets each,
 *   RFC 1035 3.3.14) that `sluice dkim keygen|check` and `sluice domain
 *   add|show` print: for a DKIM record the tags before p= in one string,
 *   then p= in 255-octet pieces, so a zone-file reader sees where the key
 *   starts; any other record (SPF, DMARC) in plain 255-octet pieces.
 *   dkim_tags_parse() reads a tag list (RFC 6376 3.2) from a record that
 *   anyone who controls the zone wrote: every spec is bounded by the
 *   record (capped at DKIM_REC_MAX by the caller), names and values are
 *   checked character by character, a repeated tag or more than
 *   DKIM_TAGS_MAX tags is a refusal, and the result points into the record
 *   (nothing is copied or allocated).  dkim_record_judge() says whether the
 *   record publishes a key: v=, k=, h=, s=, t= and p= (DER
 *   SubjectPublicKeyInfo, or a bare PKCS#1 RSAPublicKey, which some publish
 *   and common verifiers accept).
 *
 * DIAGNOSTICS
 *   A record that does not parse is a verdict (DKIM_REC_MISMATCH with the
 *   reason), never an error; nothing here fails otherwise.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "dkim_store.h"

int dkim_txt_cut(const char *txt, size_t off[], size_t len[], int max)
{
    size_t n = strlen(txt), at = 0;
    const char *p = strstr(txt, "p=");
    int k = 0;

    if (max > 0 && !strncmp(txt, "v=DKIM1;", 8) && p &&
        (size_t)(p - txt) <= 255) {
        off[k] = 0;
        len[k++] = (size_t)(p - txt);
        at = (size_t)(p - txt);
    }
    while (at < n && k < max) {
        off[k] = at;
        len[k] = n - at > 255 ? 255 : n - at;
        at += len[k++];
    }
    return k;
}

bool dkim_b64_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                     size_t *outlen)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    size_t o = 0, chars = 0, pad = 0;
    int nbits = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        chars++;
        if (c == '=') {
            pad++;
            continue;
        }
        const char *p = c ? strchr(alpha, c) : NULL;
        if (!p || pad)
            return false;
        acc = (acc << 6) | (unsigned)(p - alpha);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o == cap)
                return false;
            out[o++] = (unsigned char)(acc >> nbits);
        }
    }
    if (chars % 4 != 0 || pad > 2)
        return false;
    *outlen = o;
    return true;
}

static bool is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim white space from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && is_fws(**s))
        (*s)++, (*n)--;
    while (*n && is_fws((*s)[*n - 1]))
        (*n)--;
}

int dkim_tags_parse(const char *s, size_t n, struct dkim_tag *t, int max,
                    const char **why)
{
    int k = 0;
    size_t at = 0;

    while (at <= n) {
        const char *semi = memchr(s + at, ';', n - at);
        size_t end = semi ? (size_t)(semi - s) : n;
        const char *spec = s + at;
        size_t slen = end - at;
        at = end + 1;
        trim(&spec, &slen);
        if (!slen)
            continue;
        const char *eq = memchr(spec, '=', slen);
        if (!eq) {
            *why = "a tag without '='";
            return -1;
        }
        struct dkim_tag tg = { spec, eq + 1, (size_t)(eq - spec),
                               slen - (size_t)(eq - spec) - 1 };
        trim(&tg.name, &tg.nlen);
        trim(&tg.val, &tg.vlen);
        if (!tg.nlen || !isalpha((unsigned char)tg.name[0])) {
            *why = "a bad tag name";
            return -1;
        }
        for (size_t i = 0; i < tg.nlen; i++)
            if (!isalnum((unsigned char)tg.name[i]) && tg.name[i] != '_') {
                *why = "a bad tag name";
                return -1;
            }
        for (size_t i = 0; i < tg.vlen; i++) {
            unsigned char c = (unsigned char)tg.val[i];
            if (!is_fws((char)c) && (c < 0x21 || c > 0x7e)) {
                *why = "a character not allowed in a tag value";
                return -1;
            }
        }
        for (int j = 0; j < k; j++)
            if (t[j].nlen == tg.nlen && !memcmp(t[j].name, tg.name, tg.nlen)) {
                *why = "a repeated tag";
                return -1;
            }
        if (k == max) {
            *why = "too many tags";
            return -1;
        }
        t[k++] = tg;
    }
    return k;
}

const struct dkim_tag *dkim_tag_find(const struct dkim_tag *t, int n,
                                     const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < n; i++)
        if (t[i].nlen == len && !memcmp(t[i].name, name, len))
            return &t[i];
    return NULL;
}

/* Whether the ':'-separated list in tag t names item (or "*" if star),
 * ignoring case and white space around items. */
static bool list_has(const struct dkim_tag *t, const char *item, bool star)
{
    size_t at = 0, len = strlen(item);
    while (at <= t->vlen) {
        const char *colon = memchr(t->val + at, ':', t->vlen - at);
        size_t end = colon ? (size_t)(colon - t->val) : t->vlen;
        const char *s = t->val + at;
        size_t n = end - at;
        trim(&s, &n);
        if ((n == len && !strncasecmp(s, item, len)) ||
            (star && n == 1 && *s == '*'))
            return true;
        at = end + 1;
    }
    return false;
}

/* Compare the published RSA key in pub[0..n) with ours: as DER
 * SubjectPublicKeyInfo (RFC 6376), or as a bare PKCS#1 RSAPublicKey, which
 * some publish and common verifiers accept.  Sets detail. */
static enum dkim_rec_status rsa_compare(const struct dkim_keyinfo *ki,
                                        const unsigned char *pub, size_t n,
                                        char *detail, size_t dlen)
{
    const unsigned char *q = pub;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)n);
    bool pkcs1 = false;

    if (!pk || q != pub + n) {
        EVP_PKEY_free(pk);
        q = pub;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)n);
        pkcs1 = pk != NULL;
    }
    if (!pk || !EVP_PKEY_is_a(pk, "RSA")) {
        EVP_PKEY_free(pk);
        snprintf(detail, dlen, "p= is not an RSA public key");
        return DKIM_REC_MISMATCH;
    }
    enum dkim_rec_status st = EVP_PKEY_eq(pk, ki->pkey) == 1
                                  ? DKIM_REC_MATCH : DKIM_REC_MISMATCH;
    if (st == DKIM_REC_MISMATCH)
        snprintf(detail, dlen, "DNS publishes a different %d-bit RSA key",
                 EVP_PKEY_get_bits(pk));
    else if (pkcs1)
        snprintf(detail, dlen, "p= is a bare PKCS#1 RSAPublicKey: most "
                 "verifiers accept it, RFC 6376 asks for "
                 "SubjectPublicKeyInfo");
    EVP_PKEY_free(pk);
    return st;
}

enum dkim_rec_status dkim_record_judge(const struct dkim_keyinfo *ki,
                                       const char *rec, size_t n,
                                       char *detail, size_t dlen)
{
    struct dkim_tag t[DKIM_TAGS_MAX];
    unsigned char pub[DKIM_REC_MAX];
    const char *why = NULL, *s = rec;
    size_t len = n, publen = 0;
    int nt = dkim_tags_parse(rec, n, t, DKIM_TAGS_MAX, &why);

    detail[0] = 0;
    trim(&s, &len);
    bool says_dkim = len >= 7 && !memcmp(s, "v=DKIM1", 7);
    if (nt < 0) {
        if (!says_dkim)
            return DKIM_REC_NOTDKIM;
        snprintf(detail, dlen, "the record does not parse: %s", why);
        return DKIM_REC_MISMATCH;
    }
    const struct dkim_tag *v = dkim_tag_find(t, nt, "v");
    const struct dkim_tag *p = dkim_tag_find(t, nt, "p");
    const struct dkim_tag *k = dkim_tag_find(t, nt, "k");
    const struct dkim_tag *h = dkim_tag_find(t, nt, "h");
    const struct dkim_tag *sv = dkim_tag_find(t, nt, "s");
    bool v_ok = v && v->vlen == 5 && !memcmp(v->val, "DKIM1", 5);
    if (v && !v_ok)
        return DKIM_REC_NOTDKIM;
    if (v && v != &t[0]) {
        snprintf(detail, dlen, "v=DKIM1 must be the first tag");
        return DKIM_REC_MISMATCH;
    }
    if (!p) {
        if (!v)
            return DKIM_REC_NOTDKIM;
        snprintf(detail, dlen, "the record has no p= tag");
        return DKIM_REC_MISMATCH;
    }
    if (!dkim_b64_decode(p->val, p->vlen, pub, sizeof pub, &publen)) {
        snprintf(detail, dlen, "p= is not base64");
        return DKIM_REC_MISMATCH;
    }
    if (publen == 0) {
        snprintf(detail, dlen, "p= is empty: the key is revoked");
        return DKIM_REC_REVOKED;
    }
    const char *kv = k ? k->val : "rsa";
    size_t klen = k ? k->vlen : 3;
    if (klen != strlen(ki->algo) || strncasecmp(kv, ki->algo, klen)) {
        snprintf(detail, dlen, "DNS says k=%.*s, the key in the store is %s",
                 (int)(klen > 32 ? 32 : klen), kv, ki->algo);
        return DKIM_REC_WRONGTYPE;
    }
    if (h && !list_has(h, "sha256", false)) {
        snprintf(detail, dlen, "h=%.*s does not allow sha256, which sluice "
                 "signs with", (int)(h->vlen > 64 ? 64 : h->vlen), h->val);
        return DKIM_REC_MISMATCH;
    }
    if (sv && !list_has(sv, "email", true)) {
        snprintf(detail, dlen, "s=%.*s does not allow email",
                 (int)(sv->vlen > 64 ? 64 : sv->vlen), sv->val);
        return DKIM_REC_MISMATCH;
    }
    enum dkim_rec_status st;
    if (ki->pkey) {
        st = rsa_compare(ki, pub, publen, detail, dlen);
    } else if (publen == ki->publen && !memcmp(pub, ki->pub, publen)) {
        st = DKIM_REC_MATCH;
    } else {
        snprintf(detail, dlen, publen == 32 ? "DNS publishes a different "
                 "ed25519 key" : "p= is not an ed25519 public key");
        st = DKIM_REC_MISMATCH;
    }
    const struct dkim_tag *tf = dkim_tag_find(t, nt, "t");
    if (st == DKIM_REC_MATCH && tf && list_has(tf, "y", false)) {
        size_t used = strlen(detail);
        snprintf(detail + used, dlen - used, "%st=y: testing mode, receivers "
                 "may treat failures as unsigned", used ? "; " : "");
    }
    return st;
}
