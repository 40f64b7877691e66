/*
 * dkim_store.h - the DKIM key store: where keys live, which names they may
 * have, what a key publishes and what a published record says.
 *
 * DESCRIPTION
 *   The store is a directory ROOT (SPOOL/dkim, or sluiced's dkim_keys) with
 *   ROOT/DOMAIN/SELECTOR.key files (directories 0700, keys 0600; a key any
 *   group or other bit is set on is refused by dkim_key_load()).  DOMAIN
 *   is a lower-case A-label name without trailing dot, SELECTOR lower-case
 *   LDH labels: the store holds one spelling of each.  Every program that
 *   finds, makes, lists or signs with a key goes through these functions
 *   (`sluice dkim`, `sluice domain`, sluiced's signer), so a rule about
 *   keys has one home.
 *
 *   name.c      dkim_domain_norm(), dkim_selector_norm(): the one domain
 *               normaliser of the tree (U-labels to A-labels with libidn2,
 *               UTS #46 non-transitional), and the selector rule.
 *   keystore.c  paths, making the store's directories, listing it, making
 *               a key in it and reading what a key publishes.
 *   record.c    the TXT record of a key cut into character-strings, and
 *               the parse of a published record (RFC 6376 3.6.1 tag list)
 *               judged against a key.
 *
 * DIAGNOSTICS
 *   0 or a negative code: -errno, or DKIM_E_* (dkim_strerror()).  Functions
 *   with a why buffer also put a short reason there, phrased to follow
 *   "invalid domain 'X': ".
 */
#ifndef SLUICE_DKIM_STORE_H
#define SLUICE_DKIM_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#define DKIM_NAME_MAX     253    /* octets of a DNS name, no root dot */
#define DKIM_WHY_MAX      160    /* a reason, with room for libidn2's text */
#define DKIM_TXT_MAX      1024   /* our record: ~750 bytes for RSA-4096 */
#define DKIM_PUB_MAX      1024   /* DER public key: 550 bytes RSA-4096 */
#define DKIM_REC_MAX      4096   /* one published TXT record, joined */
#define DKIM_STRINGS_MAX  8      /* character-strings of our record */
#define DKIM_STORE_MAX    100000 /* keys one listing of the store holds */

/* ------------------------------------------------------------- name.c */

/* Normalise a domain in[0..len) into out (cap bytes, DKIM_NAME_MAX + 1 is
 * enough): one trailing dot dropped, U-labels to A-labels (libidn2, NFC
 * input, UTS #46 non-transitional; an A-label given is checked the same
 * way), lower case, labels of 1..63 letters, digits and hyphens with no
 * hyphen at either end, two labels or more, a top label that is not all
 * digits (an IPv4 address).  Returns 0, or DKIM_E_ARG with the reason in
 * why ("needs at least two labels", "is not a valid IDN name: ..."). */
int dkim_domain_norm(const char *in, size_t len, char *out, size_t cap,
                     char *why, size_t whylen);

/* Normalise a selector: dot-separated LDH labels (RFC 6376 3.1), copied
 * lower-cased to out.  Returns 0, or DKIM_E_ARG with the reason in why. */
int dkim_selector_norm(const char *in, char *out, size_t cap, char *why,
                       size_t whylen);

/* SELECTOR._domainkey.DOMAIN into out; false if over 253 octets. */
bool dkim_record_name(const char *selector, const char *domain, char *out,
                      size_t cap);

/* --------------------------------------------------------- keystore.c */

/* ROOT[/DOMAIN[/SELECTOR.key]] into buf (domain NULL: the root itself;
 * selector NULL: the domain's directory).  0 or -ENAMETOOLONG. */
int dkim_store_path(char *buf, size_t cap, const char *root,
                    const char *domain, const char *selector);

/* SPOOL/dkim, the store of a spool, into buf.  0 or -ENAMETOOLONG. */
int dkim_store_root(char *buf, size_t cap, const char *spool);

/* Make the store's directories for domain under root (and root's missing
 * parents), each new one mode 0700 whatever the umask.  On failure the
 * directory that could not be made is in failed.  0 or -errno. */
int dkim_store_mkdirs(const char *root, const char *domain, char *failed,
                      size_t failedlen);

/* One key of the store. */
struct dkim_store_entry {
    char domain[DKIM_NAME_MAX + 1];
    char selector[DKIM_NAME_MAX + 1];
};

/* A listing of the store, capped at DKIM_STORE_MAX; free with
 * dkim_store_list_free(). */
struct dkim_store_list {
    struct dkim_store_entry *v;
    size_t n, cap;
};

/* Told about a file or directory of the store whose name breaks the
 * store's rules (an upper-case or invalid selector, a name that is no
 * domain); return 0 to skip it and go on, or a negative code to stop the
 * scan with that code. */
typedef int (*dkim_store_odd_fn)(void *arg, const char *path,
                                 const char *why);

/* Add the keys of domain (NULL: of every domain) under root to l, sorted
 * by domain then selector.  A missing root or domain directory adds
 * nothing.  odd (may be NULL: skip silently) hears of names the store
 * would never make.  0, -ENOMEM, -E2BIG (over DKIM_STORE_MAX), -errno. */
int dkim_store_scan(struct dkim_store_list *l, const char *root,
                    const char *domain, dkim_store_odd_fn odd, void *arg);

/* Append one entry (no check).  0, -ENOMEM or -E2BIG. */
int dkim_store_add(struct dkim_store_list *l, const char *domain,
                   const char *selector);

/* Free the entries; l may be zeroed or NULL. */
void dkim_store_list_free(struct dkim_store_list *l);

/* What a key file publishes. */
struct dkim_keyinfo {
    const char *algo;                   /* "rsa" or "ed25519" (k= names) */
    int bits;
    char txt[DKIM_TXT_MAX];             /* v=DKIM1; k=...; p=... */
    unsigned char pub[DKIM_PUB_MAX];    /* p= decoded */
    size_t publen;
    EVP_PKEY *pkey;                     /* the public key (RSA only) */
};

/* Load the key at path (dkim_key_load(): mode checked, size capped) and
 * fill ki.  Returns 0 or a code with the reason, path first, in err;
 * DKIM_E_KEYPERM for a key group or others may read (err then says the
 * chmod that fixes it).  Free with dkim_keyinfo_free() either way. */
int dkim_keyinfo_load(const char *path, struct dkim_keyinfo *ki, char *err,
                      size_t errlen);

/* Release what ki holds; ki may be zeroed. */
void dkim_keyinfo_free(struct dkim_keyinfo *ki);

/* Make a key ("rsa", bits 1024..4096, or "ed25519") at path, which must
 * not exist (-EEXIST, nothing touched), mode 0600, and put its TXT record
 * in txt (DKIM_TXT_MAX is enough).  dkim_keygen() codes otherwise. */
int dkim_store_keygen(const char *algo, int bits, const char *path,
                      char *txt, size_t txtlen);

/* ----------------------------------------------------------- record.c */

/* Cut a record into character-strings of at most 255 octets: for a DKIM
 * record ("v=DKIM1; ...") the tags before p= in one, then p= in 255-octet
 * pieces; any other record in 255-octet pieces.  Offsets and lengths go
 * to off[] and len[] (max entries); returns the count. */
int dkim_txt_cut(const char *txt, size_t off[], size_t len[], int max);

/* Decode base64 s[0..n), skipping white space (FWS is allowed inside p=),
 * into out; false if it is not base64 or does not fit in cap. */
bool dkim_b64_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                     size_t *outlen);

/* One tag=value of a tag list; pointers into the record. */
struct dkim_tag {
    const char *name, *val;
    size_t nlen, vlen;
};

#define DKIM_TAGS_MAX 32         /* tags in one published record */

/* Parse a tag list (RFC 6376 3.2) s[0..n): tag=value specs separated by
 * ';', white space around names and values ignored, empty specs skipped.
 * Returns the number of tags (at most max), or -1 with why set: no '=',
 * a bad name or value character, a repeated tag, more than max tags. */
int dkim_tags_parse(const char *s, size_t n, struct dkim_tag *t, int max,
                    const char **why);

/* The tag called name among t[0..n), or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag *t, int n,
                                     const char *name);

/* How a published record stands against a key of the store. */
enum dkim_rec_status {
    DKIM_REC_MATCH,      /* publishes this key */
    DKIM_REC_MISMATCH,   /* another key, or one sluice cannot use */
    DKIM_REC_WRONGTYPE,  /* k= is not the key's algorithm */
    DKIM_REC_REVOKED,    /* p= is empty */
    DKIM_REC_MISSING,    /* no record (set by the caller's DNS step) */
    DKIM_REC_DNSERR,     /* DNS failed (set by the caller's DNS step) */
    DKIM_REC_NOTDKIM     /* not a DKIM key record (SPF, a token...) */
};

/* Judge one published TXT record rec[0..n) (its strings joined) against
 * ki.  Returns DKIM_REC_NOTDKIM for a record that is no DKIM key record,
 * else its status with a sentence in detail (may be empty on a match). */
enum dkim_rec_status dkim_record_judge(const struct dkim_keyinfo *ki,
                                       const char *rec, size_t n,
                                       char *detail, size_t dlen);

#endif
