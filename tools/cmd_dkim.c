/*
 * cmd_dkim.c - `sluice dkim keygen|list|check`: make DKIM keys in the
 * spool's key store, list them, and check what DNS publishes for them.
 *
 * DESCRIPTION
 *   The key store is <spool>/dkim/DOMAIN/SELECTOR.key (directories 0700,
 *   key files 0600); sluiced loads its signing keys from there.
 *     keygen  writes a new key (dkim_keygen()) and prints the TXT record to
 *             publish at SELECTOR._domainkey.DOMAIN, cut into
 *             character-strings of at most 255 octets.
 *     list    shows the keys with algorithm and size, and warns about a
 *             key file that group or others may read (sluiced refuses it).
 *     check   asks DNS for each key's record with c-ares (--dns-server,
 *             $SLUICE_DNS or the system resolver; 5 s for all queries),
 *             joins each TXT record's strings, parses the tag list
 *             (RFC 6376 3.6.1) and says whether it publishes the key.
 *   Domains are taken in lower case without a trailing dot; a U-label
 *   (IDN) domain becomes its A-label (libidn2, UTS #46 non-transitional).
 *   Selectors are lower-cased too, so the store holds one spelling.
 *
 * DIAGNOSTICS
 *   Exit 64 bad usage, name, algorithm, size or DNS server; 73 keygen over
 *   an existing key (or a directory it cannot make); 66 no key in the
 *   store; 65 a record that does not publish the key; 69 DNS failed; 77 a
 *   store sluice may not read; 78 a key file readable by group or others
 *   (the message names the chmod that fixes it) or one that is no key.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/nameser.h>
#include <ares.h>
#include <idn2.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dkim_sign.h"
#include "tool.h"

#define DNS_NAME_MAX 253          /* octets of a name without the root dot */
#define LABEL_MAX 63
#define TXT_MAX 1024              /* our record: ~750 bytes for RSA-4096 */
#define PUB_MAX 1024              /* DER public key: 550 bytes RSA-4096 */
#define REC_MAX 4096              /* one published TXT record, joined */
#define TAGS_MAX 32               /* tags in one published record */
#define STORE_MAX 100000          /* keys in the store we will list */
#define STRINGS_MAX 8             /* character-strings of our record */
#define DNS_TOTAL_MS 5000         /* all of check's queries together */
#define DNS_TRY_MS 1500           /* first try per server (c-ares grows it) */
#define ED25519_BITS 256

static const char help_group[] =
    "usage: sluice dkim keygen DOMAIN --selector S [--algo rsa|ed25519]\n"
    "                   [--bits N] [--key PATH] [--json]\n"
    "       sluice dkim list [DOMAIN] [--json]\n"
    "       sluice dkim check DOMAIN [--selector S]\n"
    "                   [--dns-server ADDR[:PORT]] [--json]\n"
    "\n"
    "  keygen  make a key in the store and print the TXT record to publish\n"
    "  list    the keys in the store\n"
    "  check   compare the published DNS records with the keys\n"
    "\n"
    "Keys live in <spool>/dkim/DOMAIN/SELECTOR.key (directories 0700,\n"
    "keys 0600); sluiced signs with them.  'sluice dkim COMMAND --help'\n"
    "says more.\n";

static const char help_keygen[] =
    "usage: sluice dkim keygen DOMAIN --selector S [--algo rsa|ed25519]\n"
    "                          [--bits N] [--key PATH] [--json]\n"
    "\n"
    "Make a new private key for DOMAIN and SELECTOR and print the DNS TXT\n"
    "record to publish at S._domainkey.DOMAIN, in zone-file form with\n"
    "character-strings of at most 255 octets, and where the key went.\n"
    "\n"
    "  DOMAIN      the signing domain (d=); an IDN domain is converted to\n"
    "              its A-label (xn--...)\n"
    "  --selector  the selector (s=), e.g. 2026q1: dot-separated labels of\n"
    "              letters, digits and hyphens\n"
    "  --algo      rsa (default) or ed25519; many receivers do not verify\n"
    "              ed25519 yet, so keep an rsa key beside one\n"
    "  --bits      RSA size, 1024..4096, default 2048\n"
    "  --key PATH  write the key to PATH, not <spool>/dkim/DOMAIN/S.key\n"
    "              (the spool is created if need be)\n"
    "  --json      {domain, selector, algorithm, bits, key, name, txt,\n"
    "              strings}\n"
    "\n"
    "An existing key is never replaced (exit 73): rotate keys by making one\n"
    "under a new selector.  Exit 64 for a bad domain, selector, algorithm\n"
    "or size.\n";

static const char help_list[] =
    "usage: sluice dkim list [DOMAIN] [--json]\n"
    "\n"
    "The keys in <spool>/dkim (only DOMAIN's when given): domain, selector,\n"
    "algorithm, bits and path.  A key file that group or others may read\n"
    "gets a warning with the chmod that fixes it: sluiced refuses such keys.\n"
    "--json gives a list of {domain, selector, algorithm, bits, key,\n"
    "warning}.  Exit 0, or 66 when DOMAIN has no key.\n";

static const char help_check[] =
    "usage: sluice dkim check DOMAIN [--selector S]\n"
    "                         [--dns-server ADDR[:PORT]] [--json]\n"
    "\n"
    "For each key of DOMAIN in the store (or only selector S), look up the\n"
    "TXT record S._domainkey.DOMAIN and say whether it publishes that key:\n"
    "\n"
    "  match       the record publishes this key\n"
    "  mismatch    it publishes another key, or one sluice cannot use\n"
    "              (h= without sha256, s= without email, a syntax error)\n"
    "  wrong type  its k= is not the key's algorithm\n"
    "  revoked     its p= is empty\n"
    "  missing     no such name, or no DKIM record among its TXT records\n"
    "  dns error   the server failed (SERVFAIL, refused) or did not answer\n"
    "              within 5 s\n"
    "\n"
    "  --dns-server  ADDR[:PORT][,...] (IP addresses, [v6]:PORT); default\n"
    "                $SLUICE_DNS, else the system resolver\n"
    "  --json        a list of {selector, algorithm, status, detail, name,\n"
    "                key, txt}; status is match, mismatch, wrong_type,\n"
    "                revoked, missing or dns_error; txt is the record to\n"
    "                publish\n"
    "\n"
    "Exit 0 all match; 65 some record does not (this wins over 69); 69 DNS\n"
    "failed; 66 no key for DOMAIN (or S) in the store; 64 bad usage; 78 a\n"
    "key file group or others may read (the message says the chmod to fix\n"
    "it) or that is not a key; 77 a store sluice may not read.\n";

/* ================================================================ names */

/* Check s as dot-separated labels of 1..63 letters, digits and hyphens,
 * no hyphen at either end of a label, and copy it lower-cased to out.
 * Returns the number of labels, or 0 with why set. */
static int ldh_labels(const char *s, char *out, size_t cap, const char **why)
{
    size_t n = strlen(s), label = 0;
    int labels = 1;

    if (n == 0) {
        *why = "is empty";
        return 0;
    }
    if (n >= cap || n > DNS_NAME_MAX) {
        *why = "is longer than 253 octets";
        return 0;
    }
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' || c == 0) {
            if (label == 0) {
                *why = "has an empty label";
                return 0;
            }
            if (s[i - 1] == '-') {
                *why = "has a label ending in '-'";
                return 0;
            }
            if (c == '.')
                labels++;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            if (c == '-' && label == 0) {
                *why = "has a label starting with '-'";
                return 0;
            }
            if (++label > LABEL_MAX) {
                *why = "has a label longer than 63 octets";
                return 0;
            }
        } else {
            *why = "may hold only letters, digits, hyphens and dots";
            return 0;
        }
        out[i] = (char)tolower(c);
    }
    return labels;
}

/* Normalise a signing domain into out (cap bytes): U-labels to A-labels,
 * lower case, no trailing dot, hostname syntax, two labels or more, not an
 * IPv4 address.  Returns 0, or -1 after printing why with the prefix. */
static int norm_domain(const char *in, char *out, size_t cap,
                       const char *prefix)
{
    char buf[4 * DNS_NAME_MAX + 2];
    const char *why = NULL;
    uint8_t *alabel = NULL;
    size_t n = strlen(in);
    bool ascii = true;

    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n >= sizeof buf) {
        fprintf(stderr, "%s: domain is too long\n", prefix);
        return -1;
    }
    memcpy(buf, in, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] >= 0x80 ||
            (i + 4 <= n && !strncasecmp(buf + i, "xn--", 4)))
            ascii = false;   /* a U-label to convert or an A-label to check */
    if (!ascii) {
        int rc = idn2_lookup_u8((const uint8_t *)buf, &alabel,
                                IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            fprintf(stderr, "%s: domain '%s' is not a valid IDN name: %s\n",
                    prefix, in, idn2_strerror(rc));
            return -1;
        }
    }
    int labels = ldh_labels(alabel ? (const char *)alabel : buf, out, cap,
                            &why);
    idn2_free(alabel);
    if (labels == 1)
        why = "needs at least two labels (example.com)";
    if (labels >= 2) {
        const char *last = strrchr(out, '.') + 1;
        if (strspn(last, "0123456789") == strlen(last))
            why = "is an address, not a domain name";
        else
            return 0;
    }
    fprintf(stderr, "%s: domain '%s' %s\n", prefix, in, why);
    return -1;
}

/* Normalise a selector into out: LDH labels, lower case.  Returns 0, or -1
 * after printing why with the prefix. */
static int norm_selector(const char *in, char *out, size_t cap,
                         const char *prefix)
{
    const char *why = NULL;
    if (ldh_labels(in, out, cap, &why) > 0)
        return 0;
    fprintf(stderr, "%s: selector '%s' %s\n", prefix, in, why);
    return -1;
}

/* S._domainkey.DOMAIN into out; false if it is over 253 octets. */
static bool record_name(const char *sel, const char *dom, char *out,
                        size_t cap)
{
    int n = snprintf(out, cap, "%s._domainkey.%s", sel, dom);
    return n > 0 && (size_t)n < cap && n <= DNS_NAME_MAX;
}

/* ================================================================ store */

struct store_entry {
    char domain[DNS_NAME_MAX + 1];
    char selector[DNS_NAME_MAX + 1];
};

/* spool/dkim[/domain[/selector.key]] into buf; -ENAMETOOLONG if too long. */
static int store_path(char *buf, size_t cap, const char *spool,
                      const char *domain, const char *selector)
{
    int n;
    if (!domain)
        n = snprintf(buf, cap, "%s/dkim", spool);
    else if (!selector)
        n = snprintf(buf, cap, "%s/dkim/%s", spool, domain);
    else
        n = snprintf(buf, cap, "%s/dkim/%s/%s.key", spool, domain, selector);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* mkdir path with mode 0700 (exactly, whatever the umask) unless it is a
 * directory already; with parents, its missing parents too. */
static int make_dir(const char *path, bool parents)
{
    char buf[PATH_MAX];
    struct stat st;

    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    if (parents) {
        size_t n = strlen(path);
        if (n >= sizeof buf)
            return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = 0;
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(path, 0700) != 0)
        return errno == EEXIST ? 0 : -errno;
    return chmod(path, 0700) != 0 ? -errno : 0;
}

/* Order entries by domain, then selector. */
static int cmp_entries(const void *pa, const void *pb)
{
    const struct store_entry *a = pa, *b = pb;
    int c = strcmp(a->domain, b->domain);
    return c ? c : strcmp(a->selector, b->selector);
}

/* A growing list of store entries, capped at STORE_MAX. */
struct store_list {
    struct store_entry *v;
    size_t n, cap;
};

/* Append domain/selector; -ENOMEM, or -E2BIG past STORE_MAX. */
static int store_add(struct store_list *l, const char *domain,
                     const char *selector)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (l->n >= STORE_MAX)
            return -E2BIG;
        struct store_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n].domain, sizeof l->v[0].domain, "%s", domain);
    snprintf(l->v[l->n].selector, sizeof l->v[0].selector, "%s", selector);
    l->n++;
    return 0;
}

/* Add the SELECTOR.key files of one domain directory; a missing directory
 * adds nothing.  Names that are no lower-case selector are skipped with a
 * warning (sluiced would not find them either). */
static int scan_domain(struct store_list *l, const char *spool,
                       const char *domain)
{
    char dir[PATH_MAX], path[PATH_MAX], sel[DNS_NAME_MAX + 1];
    struct dirent *e;
    struct stat st;
    int rc = store_path(dir, sizeof dir, spool, domain, NULL);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        const char *why = NULL;
        if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".key"))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
                (int)sizeof path || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        char name[NAME_MAX + 1];
        memcpy(name, e->d_name, n - 4);
        name[n - 4] = 0;
        if (!ldh_labels(name, sel, sizeof sel, &why) || strcmp(sel, name)) {
            fprintf(stderr, "sluice dkim: warning: ignoring %s: '%s' %s\n",
                    path, name, why ? why : "is not in lower case");
            continue;
        }
        rc = store_add(l, domain, sel);
    }
    closedir(d);
    return rc;
}

/* The keys of domain (NULL: every domain) in the store, sorted. */
static int store_scan(struct store_list *l, const char *spool,
                      const char *domain)
{
    char dir[PATH_MAX], path[PATH_MAX], dom[DNS_NAME_MAX + 1];
    struct dirent *e;
    struct stat st;
    int rc = 0;

    if (domain)
        rc = scan_domain(l, spool, domain);
    else if ((rc = store_path(dir, sizeof dir, spool, NULL, NULL)) == 0) {
        DIR *d = opendir(dir);
        if (!d)
            return errno == ENOENT ? 0 : -errno;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            const char *why = NULL;
            if (e->d_name[0] == '.' ||
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
                    (int)sizeof path ||
                stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
                continue;
            if (ldh_labels(e->d_name, dom, sizeof dom, &why) < 2 ||
                strcmp(dom, e->d_name)) {
                fprintf(stderr, "sluice dkim: warning: ignoring %s: not a "
                        "lower-case domain name\n", path);
                continue;
            }
            rc = scan_domain(l, spool, dom);
        }
        closedir(d);
    }
    if (rc == 0 && l->n > 1)
        qsort(l->v, l->n, sizeof l->v[0], cmp_entries);
    return rc;
}

/* ================================================================= keys */

/* What the store's key file tells: its algorithm, size and our record. */
struct key_info {
    const char *algo;             /* "rsa" or "ed25519" (k= names) */
    int bits;
    char txt[TXT_MAX];            /* v=DKIM1; k=...; p=... */
    unsigned char pub[PUB_MAX];   /* p= decoded */
    size_t publen;
    EVP_PKEY *pkey;               /* the public key (RSA only) */
};

/* Decode base64 s[0..n), skipping whitespace (FWS inside p= is allowed),
 * into out; false if it is not base64 or does not fit. */
static bool b64_decode(const char *s, size_t n, unsigned char *out,
                       size_t cap, size_t *outlen)
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

/* Load the key at path and fill ki.  Returns a dkim code (DKIM_E_KEYPERM
 * for a mode sluiced refuses) with the reason in err. */
static int key_info_load(const char *path, struct key_info *ki, char *err,
                         size_t errlen)
{
    struct dkim_key *k = NULL;
    int rc = dkim_key_load(path, &k, err, errlen);

    memset(ki, 0, sizeof *ki);
    if (rc)
        return rc;
    rc = dkim_key_txt(k, ki->txt, sizeof ki->txt);
    bool ed = !strcmp(dkim_key_algorithm(k), "ed25519-sha256");
    dkim_key_free(k);
    const char *p = strstr(ki->txt, "p=");
    if (rc == 0 && (!p || !b64_decode(p + 2, strlen(p + 2), ki->pub,
                                      sizeof ki->pub, &ki->publen)))
        rc = DKIM_E_CRYPTO;
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, dkim_strerror(rc));
        return rc;
    }
    ki->algo = ed ? "ed25519" : "rsa";
    ki->bits = ED25519_BITS;
    if (!ed) {
        const unsigned char *q = ki->pub;
        ki->pkey = d2i_PUBKEY(NULL, &q, (long)ki->publen);
        if (!ki->pkey) {
            snprintf(err, errlen, "%s: %s", path,
                     dkim_strerror(DKIM_E_CRYPTO));
            return DKIM_E_CRYPTO;
        }
        ki->bits = EVP_PKEY_get_bits(ki->pkey);
    }
    return 0;
}

static void key_info_free(struct key_info *ki)
{
    EVP_PKEY_free(ki->pkey);
    ki->pkey = NULL;
}

/* The exit code for a key that would not load, after saying why (for a
 * key group or others may read, dkim_key_load() words the chmod to run). */
static int key_load_exit(const char *prefix, int rc, const char *err)
{
    fprintf(stderr, "%s: %s\n", prefix, err);
    switch (rc) {
    case -ENOENT: return TOOL_EX_NOINPUT;
    case -EACCES:
    case -EPERM: return TOOL_EX_NOPERM;
    case -ENOMEM: return TOOL_EX_OSERR;
    case -EIO: return TOOL_EX_IOERR;
    default: return TOOL_EX_CONFIG;
    }
}

/* ========================================================== the record */

/* Cut our record into character-strings of at most 255 octets: the tags
 * before p= in one, then p= in 255-octet pieces.  Returns the count. */
static int txt_cut(const char *txt, size_t off[], size_t len[], int max)
{
    size_t n = strlen(txt), at = 0;
    const char *p = strstr(txt, "p=");
    int k = 0;

    if (p && p > txt && (size_t)(p - txt) <= 255) {
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

/* Print the zone-file line: NAME. IN TXT ( "..." "..." ). */
static void print_record(const char *name, const char *txt)
{
    size_t off[STRINGS_MAX], len[STRINGS_MAX];
    int k = txt_cut(txt, off, len, STRINGS_MAX);
    printf("%s. IN TXT (", name);
    for (int i = 0; i < k; i++)
        printf(" \"%.*s\"", (int)len[i], txt + off[i]);
    printf(" )\n");
}

/* The record's strings as a JSON array. */
static json_t *record_strings(const char *txt)
{
    size_t off[STRINGS_MAX], len[STRINGS_MAX];
    int k = txt_cut(txt, off, len, STRINGS_MAX);
    json_t *a = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(a, json_stringn(txt + off[i], len[i]));
    return a;
}


/* =============================================================== keygen */

static int cmd_keygen(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim keygen";
    const char *dom_s = NULL, *sel_s = NULL, *algo = "rsa", *bits_s = NULL;
    const char *keyarg = NULL;
    char dom[DNS_NAME_MAX + 1], sel[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 2];
    char path[PATH_MAX], dir[PATH_MAX], txt[TXT_MAX];
    unsigned long long bits = 2048;
    struct stat st;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_keygen, stdout);
            return 0;
        } else if (!strcmp(a, "--selector") && has_val) {
            sel_s = argv[++i];
        } else if (!strcmp(a, "--algo") && has_val) {
            algo = argv[++i];
        } else if (!strcmp(a, "--bits") && has_val) {
            bits_s = argv[++i];
        } else if (!strcmp(a, "--key") && has_val) {
            keyarg = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", P, a);
            return TOOL_EX_USAGE;
        } else if (!dom_s) {
            dom_s = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", P, a);
            return TOOL_EX_USAGE;
        }
    }
    if (!dom_s || !sel_s) {
        fprintf(stderr, "%s: %s\nusage: sluice dkim keygen DOMAIN "
                "--selector S [--algo rsa|ed25519] [--bits N] [--key PATH] "
                "[--json]\n", P,
                dom_s ? "--selector is required" : "DOMAIN is required");
        return TOOL_EX_USAGE;
    }
    if (norm_domain(dom_s, dom, sizeof dom, P) ||
        norm_selector(sel_s, sel, sizeof sel, P))
        return TOOL_EX_USAGE;
    if (!record_name(sel, dom, name, sizeof name)) {
        fprintf(stderr, "%s: %s._domainkey.%s is longer than 253 octets\n", P,
                sel, dom);
        return TOOL_EX_USAGE;
    }
    bool ed = !strcmp(algo, "ed25519");
    if (!ed && strcmp(algo, "rsa")) {
        fprintf(stderr, "%s: --algo must be rsa or ed25519, not '%s'\n", P,
                algo);
        return TOOL_EX_USAGE;
    }
    if (bits_s && ed) {
        fprintf(stderr, "%s: --bits is for rsa keys (ed25519 keys have one "
                "size)\n", P);
        return TOOL_EX_USAGE;
    }
    if (bits_s && (!tool_parse_u64(bits_s, &bits) || bits < 1024 ||
                   bits > 4096)) {
        fprintf(stderr, "%s: --bits must be a number from 1024 to 4096, not "
                "'%s'\n", P, bits_s);
        return TOOL_EX_USAGE;
    }

    int rc = 0;
    if (keyarg) {
        if (snprintf(path, sizeof path, "%s", keyarg) >= (int)sizeof path)
            rc = -ENAMETOOLONG;
    } else if (!(rc = store_path(path, sizeof path, ctx->spool, dom, sel)) &&
               !(rc = store_path(dir, sizeof dir, ctx->spool, dom, NULL))) {
        /* the spool may not exist yet; the store's directories are 0700 */
        rc = make_dir(ctx->spool, true);
        if (!rc && !(rc = store_path(dir, sizeof dir, ctx->spool, NULL, NULL)))
            rc = make_dir(dir, false);
        if (!rc && !(rc = store_path(dir, sizeof dir, ctx->spool, dom, NULL)))
            rc = make_dir(dir, false);
        if (rc) {
            fprintf(stderr, "%s: cannot make directory %s: %s\n", P, dir,
                    strerror(-rc));
            return rc == -EACCES || rc == -EPERM ? TOOL_EX_NOPERM
                                                 : TOOL_EX_CANTCREAT;
        }
    }
    if (rc) {
        fprintf(stderr, "%s: key path: %s\n", P, strerror(-rc));
        return TOOL_EX_USAGE;
    }
    if (lstat(path, &st) == 0)
        rc = -EEXIST;
    else
        rc = dkim_keygen(algo, (int)bits, path, txt, sizeof txt);
    if (rc == -EEXIST) {
        fprintf(stderr, "%s: %s already exists; a key is never replaced: "
                "make one under a new selector (and remove the old one once "
                "no mail signed with it is in flight)\n", P, path);
        return TOOL_EX_CANTCREAT;
    }
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, path, dkim_strerror(rc));
        if (rc == -EACCES || rc == -EPERM)
            return TOOL_EX_NOPERM;
        return rc > -4096 ? TOOL_EX_CANTCREAT : TOOL_EX_SOFTWARE;
    }
    if (ed)
        bits = ED25519_BITS;

    if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:o}",
                             "domain", dom, "selector", sel, "algorithm", algo,
                             "bits", (json_int_t)bits, "key", path,
                             "name", name, "txt", txt,
                             "strings", record_strings(txt)));
        return 0;
    }
    printf("made %s %llu-bit DKIM key for %s, selector %s\nkey: %s\n\n"
           "publish this DNS record:\n", algo, bits, dom, sel, path);
    print_record(name, txt);
    printf("\nthen check it: sluice dkim check %s --selector %s\n", dom, sel);
    if (ed)
        printf("note: many receivers do not verify ed25519 signatures yet "
               "(RFC 8463); keep an rsa key for %s as well\n", dom);
    return 0;
}

/* ================================================================= list */

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim list", *dom_s = NULL;
    char dom[DNS_NAME_MAX + 1], path[PATH_MAX], err[2 * PATH_MAX + 256];
    char warn[2 * PATH_MAX + 256];
    struct store_list l = { 0 };

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help_list, stdout);
            return 0;
        } else if ((argv[i][0] == '-' && argv[i][1]) || dom_s) {
            fprintf(stderr, "%s: unexpected argument '%s'\nusage: sluice dkim "
                    "list [DOMAIN] [--json]\n", P, argv[i]);
            return TOOL_EX_USAGE;
        }
        dom_s = argv[i];
    }
    if (dom_s && norm_domain(dom_s, dom, sizeof dom, P))
        return TOOL_EX_USAGE;
    int rc = store_scan(&l, ctx->spool, dom_s ? dom : NULL);
    if (rc) {
        store_path(path, sizeof path, ctx->spool, NULL, NULL);
        fprintf(stderr, "%s: %s: %s\n", P, path, strerror(-rc));
        free(l.v);
        return tool_exit_for(rc);
    }

    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr && l.n)
        printf("%-30s  %-16s  %-8s  %5s  %s\n", "DOMAIN", "SELECTOR",
               "ALGO", "BITS", "KEY");
    for (size_t i = 0; i < l.n; i++) {
        struct key_info ki;
        const struct store_entry *e = &l.v[i];
        store_path(path, sizeof path, ctx->spool, e->domain, e->selector);
        int lr = key_info_load(path, &ki, err, sizeof err);
        warn[0] = 0;
        if (lr)
            snprintf(warn, sizeof warn, "%s", err);
        if (arr) {
            json_array_append_new(arr, json_pack(
                "{s:s,s:s,s:s?,s:o,s:s,s:s?}", "domain", e->domain,
                "selector", e->selector, "algorithm", lr ? NULL : ki.algo,
                "bits", lr ? json_null() : json_integer(ki.bits), "key", path,
                "warning", warn[0] ? warn : NULL));
        } else {
            char bits[16] = "?";
            if (!lr)
                snprintf(bits, sizeof bits, "%d", ki.bits);
            printf("%-30s  %-16s  %-8s  %5s  %s\n", e->domain, e->selector,
                   lr ? "?" : ki.algo, bits, path);
            if (warn[0])
                fprintf(stderr, "%s: warning: %s: %s\n", P, path, warn);
        }
        key_info_free(&ki);
    }
    if (arr)
        tool_emit_json(arr);
    else if (!l.n) {
        store_path(path, sizeof path, ctx->spool, dom_s ? dom : NULL, NULL);
        printf("(no DKIM keys in %s)\n", path);
    }
    rc = dom_s && l.n == 0 ? TOOL_EX_NOINPUT : 0;
    free(l.v);
    return rc;
}

/* ======================================================= record parsing */

enum dk_status { DK_MATCH, DK_MISMATCH, DK_WRONGTYPE, DK_REVOKED,
                 DK_MISSING, DK_DNSERR, DK_NOTDKIM };

static const struct {
    const char *json, *text;
} status_names[] = {
    [DK_MATCH] = { "match", "match" },
    [DK_MISMATCH] = { "mismatch", "mismatch" },
    [DK_WRONGTYPE] = { "wrong_type", "wrong type" },
    [DK_REVOKED] = { "revoked", "revoked" },
    [DK_MISSING] = { "missing", "missing" },
    [DK_DNSERR] = { "dns_error", "dns error" },
    [DK_NOTDKIM] = { "missing", "missing" },
};

/* One tag=value of a tag list; pointers into the record. */
struct tag {
    const char *name, *val;
    size_t nlen, vlen;
};

static bool is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim whitespace from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && is_fws(**s))
        (*s)++, (*n)--;
    while (*n && is_fws((*s)[*n - 1]))
        (*n)--;
}

/* Parse a tag list (RFC 6376 3.2): tag=value specs separated by ';',
 * whitespace around names and values ignored, empty specs skipped.
 * Returns the number of tags, or -1 with why set (no '=', a bad name or
 * value character, a repeated tag, more than max tags). */
static int parse_tags(const char *s, size_t n, struct tag *t, int max,
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
        struct tag tg = { spec, eq + 1, (size_t)(eq - spec),
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

/* The tag called name, or NULL. */
static const struct tag *find_tag(const struct tag *t, int n,
                                  const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < n; i++)
        if (t[i].nlen == len && !memcmp(t[i].name, name, len))
            return &t[i];
    return NULL;
}

/* Whether the ':'-separated list in tag t names item (or "*" if star),
 * ignoring case and whitespace around items. */
static bool list_has(const struct tag *t, const char *item, bool star)
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
static enum dk_status rsa_compare(const struct key_info *ki,
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
        return DK_MISMATCH;
    }
    enum dk_status st = EVP_PKEY_eq(pk, ki->pkey) == 1 ? DK_MATCH
                                                         : DK_MISMATCH;
    if (st == DK_MISMATCH)
        snprintf(detail, dlen, "DNS publishes a different %d-bit RSA key",
                 EVP_PKEY_get_bits(pk));
    else if (pkcs1)
        snprintf(detail, dlen, "p= is a bare PKCS#1 RSAPublicKey: most "
                 "verifiers accept it, RFC 6376 asks for "
                 "SubjectPublicKeyInfo");
    EVP_PKEY_free(pk);
    return st;
}

/* Judge one published TXT record rec[0..n) against our key.  Returns
 * DK_NOTDKIM for a record that is no DKIM key record (SPF, a verification
 * token), else its status with detail set. */
static enum dk_status judge_record(const struct key_info *ki, const char *rec,
                                   size_t n, char *detail, size_t dlen)
{
    struct tag t[TAGS_MAX];
    unsigned char pub[REC_MAX];
    const char *why = NULL, *s = rec;
    size_t len = n, publen = 0;
    int nt = parse_tags(rec, n, t, TAGS_MAX, &why);

    detail[0] = 0;
    trim(&s, &len);
    bool says_dkim = len >= 7 && !memcmp(s, "v=DKIM1", 7);
    if (nt < 0) {
        if (!says_dkim)
            return DK_NOTDKIM;
        snprintf(detail, dlen, "the record does not parse: %s", why);
        return DK_MISMATCH;
    }
    const struct tag *v = find_tag(t, nt, "v"), *p = find_tag(t, nt, "p");
    const struct tag *k = find_tag(t, nt, "k"), *h = find_tag(t, nt, "h");
    const struct tag *sv = find_tag(t, nt, "s");
    bool v_ok = v && v->vlen == 5 && !memcmp(v->val, "DKIM1", 5);
    if (v && !v_ok)
        return DK_NOTDKIM;
    if (v && v != &t[0]) {
        snprintf(detail, dlen, "v=DKIM1 must be the first tag");
        return DK_MISMATCH;
    }
    if (!p) {
        if (!v)
            return DK_NOTDKIM;
        snprintf(detail, dlen, "the record has no p= tag");
        return DK_MISMATCH;
    }
    if (!b64_decode(p->val, p->vlen, pub, sizeof pub, &publen)) {
        snprintf(detail, dlen, "p= is not base64");
        return DK_MISMATCH;
    }
    if (publen == 0) {
        snprintf(detail, dlen, "p= is empty: the key is revoked");
        return DK_REVOKED;
    }
    const char *kv = k ? k->val : "rsa";
    size_t klen = k ? k->vlen : 3;
    if (klen != strlen(ki->algo) || strncasecmp(kv, ki->algo, klen)) {
        snprintf(detail, dlen, "DNS says k=%.*s, the key in the store is %s",
                 (int)(klen > 32 ? 32 : klen), kv, ki->algo);
        return DK_WRONGTYPE;
    }
    if (h && !list_has(h, "sha256", false)) {
        snprintf(detail, dlen, "h=%.*s does not allow sha256, which sluice "
                 "signs with", (int)(h->vlen > 64 ? 64 : h->vlen), h->val);
        return DK_MISMATCH;
    }
    if (sv && !list_has(sv, "email", true)) {
        snprintf(detail, dlen, "s=%.*s does not allow email",
                 (int)(sv->vlen > 64 ? 64 : sv->vlen), sv->val);
        return DK_MISMATCH;
    }
    enum dk_status st;
    if (ki->pkey) {
        st = rsa_compare(ki, pub, publen, detail, dlen);
    } else if (publen == ki->publen && !memcmp(pub, ki->pub, publen)) {
        st = DK_MATCH;
    } else {
        snprintf(detail, dlen, publen == 32 ? "DNS publishes a different "
                 "ed25519 key" : "p= is not an ed25519 public key");
        st = DK_MISMATCH;
    }
    const struct tag *tf = find_tag(t, nt, "t");
    if (st == DK_MATCH && tf && list_has(tf, "y", false)) {
        size_t used = strlen(detail);
        snprintf(detail + used, dlen - used, "%st=y: testing mode, receivers "
                 "may treat failures as unsigned", used ? "; " : "");
    }
    return st;
}

/* ================================================================ check */

/* One selector being checked. */
struct dk_result {
    const char *selector;
    char name[DNS_NAME_MAX + 2];
    char path[PATH_MAX];
    struct key_info key;
    bool done;
    enum dk_status status;
    char detail[320];
};

/* Set r's status to a DNS failure or absence for c-ares status. */
static void dns_status(struct dk_result *r, int status)
{
    r->status = DK_DNSERR;
    switch (status) {
    case ARES_ENOTFOUND:
        r->status = DK_MISSING;
        snprintf(r->detail, sizeof r->detail, "no such name (NXDOMAIN)");
        break;
    case ARES_ENODATA:
        r->status = DK_MISSING;
        snprintf(r->detail, sizeof r->detail, "no TXT record at the name");
        break;
    case ARES_ESERVFAIL:
        snprintf(r->detail, sizeof r->detail, "server failure (SERVFAIL)");
        break;
    case ARES_EREFUSED:
        snprintf(r->detail, sizeof r->detail, "the server refused the query");
        break;
    case ARES_ETIMEOUT:
        snprintf(r->detail, sizeof r->detail, "the server did not answer "
                 "(timed out)");
        break;
    case ARES_ECANCELLED:
        snprintf(r->detail, sizeof r->detail, "no answer within %d s",
                 DNS_TOTAL_MS / 1000);
        break;
    case ARES_ECONNREFUSED:   /* c-ares: no server could be reached */
        snprintf(r->detail, sizeof r->detail, "could not reach the server "
                 "(not listening, or no answer)");
        break;
    default:
        snprintf(r->detail, sizeof r->detail, "%s", ares_strerror(status));
        break;
    }
}

/* Judge every TXT record of the answer (a record is the join of its
 * character-strings): a match wins, else the first DKIM record's verdict;
 * several DKIM records at one name are noted. */
static void judge_answer(struct dk_result *r, const struct ares_txt_ext *txt)
{
    char rec[REC_MAX], detail[sizeof r->detail];
    int nrec = 0, ndkim = 0;
    enum dk_status best = DK_NOTDKIM;

    for (const struct ares_txt_ext *t = txt; t; ) {
        size_t len = 0;
        bool over = false;
        do {
            if (len + t->length > sizeof rec)
                over = true;
            else if (t->length) {
                memcpy(rec + len, t->txt, t->length);
                len += t->length;
            }
            t = t->next;
        } while (t && !t->record_start);
        nrec++;
        enum dk_status st = DK_MISMATCH;
        if (over)
            snprintf(detail, sizeof detail, "a TXT record is longer than %d "
                     "octets", REC_MAX);
        else
            st = judge_record(&r->key, rec, len, detail, sizeof detail);
        if (st == DK_NOTDKIM)
            continue;
        if (++ndkim == 1 || (st == DK_MATCH && best != DK_MATCH)) {
            best = st;
            snprintf(r->detail, sizeof r->detail, "%s", detail);
        }
    }
    r->status = best == DK_NOTDKIM ? DK_MISSING : best;
    if (best == DK_NOTDKIM) {
        snprintf(r->detail, sizeof r->detail, "no DKIM record among the %d "
                 "TXT record%s at the name", nrec, nrec == 1 ? "" : "s");
        return;
    }
    if (best == DK_MATCH && !r->detail[0])
        snprintf(r->detail, sizeof r->detail, "DNS publishes this key");
    if (ndkim > 1) {
        size_t used = strlen(r->detail);
        snprintf(r->detail + used, sizeof r->detail - used, "%s%d DKIM "
                 "records at the name: a verifier may use any one",
                 used ? "; " : "", ndkim);
    }
}

/* c-ares callback of one TXT query. */
static void on_txt(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen)
{
    struct dk_result *r = arg;
    struct ares_txt_ext *txt = NULL;

    if (r->done)
        return;
    r->done = true;
    if (status != ARES_SUCCESS) {
        dns_status(r, status);
        return;
    }
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && !txt))
        dns_status(r, ARES_ENODATA);
    else if (rc != ARES_SUCCESS)
        dns_status(r, rc);
    else
        judge_answer(r, txt);
    ares_free_data(txt);
}

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Make a c-ares channel asking servers ("ADDR[:PORT],..."; NULL: the
 * system's resolv.conf).  Returns 0, -EINVAL for a bad server list or
 * -EIO. */
static int dns_channel(ares_channel *ch, const char *servers)
{
    struct ares_options o;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_EDNSPSZ;

    memset(&o, 0, sizeof o);
    /* NOCHECKRESP: c-ares 1.18 would turn SERVFAIL and REFUSED into
     * ECONNREFUSED after trying the other servers; a check says which */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS |
              ARES_FLAG_NOCHECKRESP;
    o.timeout = DNS_TRY_MS;
    o.tries = 3;
    o.ednspsz = 1232;
    if (servers) {
        /* c-ares 1.18 reads resolv.conf unless all of these are given */
        mask |= ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
                ARES_OPT_NDOTS | ARES_OPT_SORTLIST;
        o.lookups = (char *)"b";
        o.ndots = 1;
    }
    if (ares_init_options(ch, &o, mask) != ARES_SUCCESS)
        return -EIO;
    if (servers && ares_set_servers_ports_csv(*ch, servers) != ARES_SUCCESS) {
        ares_destroy(*ch);
        return -EINVAL;
    }
    return 0;
}

/* Look up the TXT records of all n results at once, DNS_TOTAL_MS in all;
 * each result gets its status.  Returns 0, -EINVAL (bad servers) or -EIO. */
static int dns_check(struct dk_result *res, size_t n, const char *servers)
{
    ares_channel ch;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return -EIO;
    int rc = dns_channel(&ch, servers);
    if (rc) {
        ares_library_cleanup();
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        ares_query(ch, res[i].name, ns_c_in, ns_t_txt, on_txt,
                   &res[i]);
    long long deadline = now_ms() + DNS_TOTAL_MS;
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += !res[i].done;
        long long left = deadline - now_ms();
        if (!pending)
            break;
        if (left <= 0) {
            ares_cancel(ch);   /* the callbacks get ARES_ECANCELLED */
            break;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        /* not ARES_GETSOCK_WRITABLE(): it shifts a signed 1 into bit 31 */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        int nfd = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((bits & (1u << i) ? POLLIN : 0) |
                               (bits & (1u << (i + ARES_GETSOCK_MAXNUM))
                                    ? POLLOUT : 0));
            if (!ev)
                break;
            pfd[nfd++] = (struct pollfd){ .fd = socks[i], .events = ev };
        }
        struct timeval max = { left / 1000, (left % 1000) * 1000 }, tv;
        struct timeval *tp = ares_timeout(ch, &max, &tv);
        int ms = (int)(tp->tv_sec * 1000 + (tp->tv_usec + 999) / 1000);
        if (poll(pfd, (nfds_t)nfd, ms) < 0 && errno != EINTR)
            break;
        bool any = false;
        for (int i = 0; i < nfd; i++) {
            if (!pfd[i].revents)
                continue;
            any = true;
            ares_process_fd(ch, pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
                                    ? pfd[i].fd : ARES_SOCKET_BAD,
                            pfd[i].revents & POLLOUT ? pfd[i].fd
                                                     : ARES_SOCKET_BAD);
        }
        if (!any)   /* timeouts: retry or give up */
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    ares_destroy(ch);
    ares_library_cleanup();
    for (size_t i = 0; i < n; i++)
        if (!res[i].done) {
            res[i].done = true;
            dns_status(&res[i], ARES_ECANCELLED);
        }
    return 0;
}

/* Print the results as a table, JSON, or (quiet) the problems on stderr. */
static void check_report(struct tool_ctx *ctx, const char *dom,
                         const struct dk_result *res, size_t n, bool quiet)
{
    if (quiet) {
        for (size_t i = 0; i < n; i++)
            if (res[i].status != DK_MATCH)
                fprintf(stderr, "sluice dkim check: %s selector %s: %s: %s\n",
                        dom, res[i].selector,
                        status_names[res[i].status].text, res[i].detail);
        return;
    }
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack(
                "{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                "selector", res[i].selector, "algorithm", res[i].key.algo,
                "status", status_names[res[i].status].json,
                "detail", res[i].detail, "name", res[i].name,
                "key", res[i].path, "txt", res[i].key.txt));
        tool_emit_json(arr);
        return;
    }
    printf("%-16s  %-8s  %-10s  %s\n", "SELECTOR", "ALGO", "STATUS",
           "DETAIL");
    for (size_t i = 0; i < n; i++)
        printf("%-16s  %-8s  %-10s  %s\n", res[i].selector, res[i].key.algo,
               status_names[res[i].status].text,
               res[i].detail);
    for (size_t i = 0; i < n; i++) {
        enum dk_status st = res[i].status;
        if (st == DK_MATCH || st == DK_DNSERR)
            continue;
        printf("\nto sign with %s, publish:\n", res[i].selector);
        print_record(res[i].name, res[i].key.txt);
    }
}

int tool_dkim_check(struct tool_ctx *ctx, const char *domain,
                    const char *selector, const char *dns_server, bool quiet)
{
    const char *P = "sluice dkim check", *from = "--dns-server";
    char dom[DNS_NAME_MAX + 1], sel[DNS_NAME_MAX + 1];
    char err[2 * PATH_MAX + 256];
    char dir[PATH_MAX];
    struct store_list l = { 0 };
    struct dk_result *res = NULL;
    int rc;

    if (norm_domain(domain, dom, sizeof dom, P) ||
        (selector && norm_selector(selector, sel, sizeof sel, P)))
        return TOOL_EX_USAGE;
    if (!dns_server) {
        dns_server = getenv("SLUICE_DNS");
        from = "$SLUICE_DNS";
        if (dns_server && !*dns_server)
            dns_server = NULL;
    }
    store_path(dir, sizeof dir, ctx->spool, dom, NULL);
    if (selector) {
        struct stat st;
        char path[PATH_MAX];
        rc = store_path(path, sizeof path, ctx->spool, dom, sel);
        if (rc == 0 && stat(path, &st) != 0)
            rc = errno == ENOENT ? 0 : -errno;
        else if (rc == 0)
            rc = store_add(&l, dom, sel);
    } else {
        rc = store_scan(&l, ctx->spool, dom);
    }
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", P, dir, strerror(-rc));
        free(l.v);
        return tool_exit_for(rc);
    }
    if (l.n == 0) {
        fprintf(stderr, "%s: no DKIM key %s%s%sfor %s in %s\n  make one: "
                "sluice dkim keygen %s --selector %s\n", P,
                selector ? "with selector " : "", selector ? sel : "",
                selector ? " " : "", dom, dir, dom, selector ? sel : "S");
        free(l.v);
        return TOOL_EX_NOINPUT;
    }

    res = calloc(l.n, sizeof *res);
    if (!res) {
        free(l.v);
        fprintf(stderr, "%s: out of memory\n", P);
        return TOOL_EX_OSERR;
    }
    int code = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct dk_result *r = &res[i];
        r->selector = l.v[i].selector;
        store_path(r->path, sizeof r->path, ctx->spool, dom, r->selector);
        if (!record_name(r->selector, dom, r->name, sizeof r->name)) {
            fprintf(stderr, "%s: %s._domainkey.%s is longer than 253 octets\n",
                    P, r->selector, dom);
            code = TOOL_EX_CONFIG;
            continue;
        }
        rc = key_info_load(r->path, &r->key, err, sizeof err);
        if (rc) {
            int e = key_load_exit(P, rc, err);
            if (!code || e == TOOL_EX_CONFIG)
                code = e;
        }
    }
    if (!code) {
        rc = dns_check(res, l.n, dns_server);
        if (rc == -EINVAL) {
            fprintf(stderr, "%s: %s: '%s' is not ADDR[:PORT][,...] (IP "
                    "addresses; [v6]:PORT)\n", P, from, dns_server);
            code = strcmp(from, "$SLUICE_DNS") ? TOOL_EX_USAGE
                                               : TOOL_EX_CONFIG;
        } else if (rc) {
            fprintf(stderr, "%s: cannot set up the resolver (c-ares)\n", P);
            code = TOOL_EX_UNAVAILABLE;
        }
    }
    if (!code) {
        check_report(ctx, dom, res, l.n, quiet);
        for (size_t i = 0; i < l.n; i++) {
            if (res[i].status == DK_DNSERR && !code)
                code = TOOL_EX_UNAVAILABLE;
            else if (res[i].status != DK_MATCH && res[i].status != DK_DNSERR)
                code = TOOL_EX_DATAERR;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        key_info_free(&res[i].key);
    free(res);
    free(l.v);
    return code;
}

static int cmd_check(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *P = "sluice dkim check";
    const char *dom = NULL, *sel = NULL, *server = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_check, stdout);
            return 0;
        } else if (!strcmp(a, "--selector") && has_val) {
            sel = argv[++i];
        } else if (!strcmp(a, "--dns-server") && has_val) {
            server = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", P, a);
            return TOOL_EX_USAGE;
        } else if (!dom) {
            dom = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", P, a);
            return TOOL_EX_USAGE;
        }
    }
    if (!dom) {
        fprintf(stderr, "usage: sluice dkim check DOMAIN [--selector S] "
                "[--dns-server ADDR[:PORT]] [--json]\n");
        return TOOL_EX_USAGE;
    }
    if (server && !*server) {
        fprintf(stderr, "%s: --dns-server is empty\n", P);
        return TOOL_EX_USAGE;
    }
    return tool_dkim_check(ctx, dom, sel, server, false);
}

/* ================================================================ group */

int tool_dkim_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd sub[] = {
        { "keygen", "make a key and print its DNS record", cmd_keygen },
        { "list", "the keys in the store", cmd_list },
        { "check", "compare published records with the keys", cmd_check },
    };

    argc = tool_take_json(ctx, argc, argv);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
                      !strcmp(argv[1], "help"))) {
        fputs(help_group, stdout);
        return 0;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof sub / sizeof sub[0]; i++)
        if (!strcmp(argv[1], sub[i].name))
            return sub[i].run(ctx, argc - 1, argv + 1);
    if (argc >= 2)
        fprintf(stderr, "sluice dkim: unknown command '%s'\n", argv[1]);
    fputs(help_group, stderr);
    return TOOL_EX_USAGE;
}
