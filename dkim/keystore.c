/*
 * keystore.c - the DKIM key store on disk: ROOT/DOMAIN/SELECTOR.key.
 *
 * DESCRIPTION
 *   The one path builder for keys (dkim_store_path(); `sluice dkim`,
 *   `sluice domain` and sluiced's signer all call it), the making of the
 *   store's directories (0700 whatever the umask), the listing of the
 *   store (only names the store would make: a lower-case domain directory
 *   and lower-case selector files; others are reported to the caller,
 *   which warns or refuses), a new key written into it (never over an
 *   existing file) and what a key file publishes (its TXT record, its
 *   algorithm and size).  Keys are read by dkim_key_load() (key.c), which
 *   refuses a file any group or other permission bit is set on.
 *
 * DIAGNOSTICS
 *   -errno (a directory that cannot be read or made, a name too long),
 *   -E2BIG past DKIM_STORE_MAX keys, or the DKIM_E_* of key.c.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "dkim_sign.h"
#include "dkim_store.h"

#define ED25519_BITS 256

int dkim_store_path(char *buf, size_t cap, const char *root,
                    const char *domain, const char *selector)
{
    int n;
    if (!domain)
        n = snprintf(buf, cap, "%s", root);
    else if (!selector)
        n = snprintf(buf, cap, "%s/%s", root, domain);
    else
        n = snprintf(buf, cap, "%s/%s/%s.key", root, domain, selector);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int dkim_store_root(char *buf, size_t cap, const char *spool)
{
    int n = snprintf(buf, cap, "%s/dkim", spool);
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

int dkim_store_mkdirs(const char *root, const char *domain, char *failed,
                      size_t failedlen)
{
    char dir[PATH_MAX];
    int rc = dkim_store_path(dir, sizeof dir, root, NULL, NULL);
    if (!rc)
        rc = make_dir(dir, true);
    if (!rc && domain && !(rc = dkim_store_path(dir, sizeof dir, root, domain,
                                                NULL)))
        rc = make_dir(dir, false);
    if (rc && failed && failedlen)
        snprintf(failed, failedlen, "%s", dir);
    return rc;
}

/* Order entries by domain, then selector. */
static int cmp_entries(const void *pa, const void *pb)
{
    const struct dkim_store_entry *a = pa, *b = pb;
    int c = strcmp(a->domain, b->domain);
    return c ? c : strcmp(a->selector, b->selector);
}

int dkim_store_add(struct dkim_store_list *l, const char *domain,
                   const char *selector)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (l->n >= DKIM_STORE_MAX)
            return -E2BIG;
        struct dkim_store_entry *v = realloc(l->v, cap * sizeof *v);
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

void dkim_store_list_free(struct dkim_store_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Add the SELECTOR.key files of one domain directory; a missing directory
 * adds nothing.  A name that is no lower-case selector goes to odd. */
static int scan_domain(struct dkim_store_list *l, const char *root,
                       const char *domain, dkim_store_odd_fn odd, void *arg)
{
    char dir[PATH_MAX], path[PATH_MAX], sel[DKIM_NAME_MAX + 1];
    char why[DKIM_WHY_MAX], name[NAME_MAX + 1];
    struct dirent *e;
    struct stat st;
    int rc = dkim_store_path(dir, sizeof dir, root, domain, NULL);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".key"))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
                (int)sizeof path || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        memcpy(name, e->d_name, n - 4);
        name[n - 4] = 0;
        int bad = dkim_selector_norm(name, sel, sizeof sel, why, sizeof why);
        if (!bad && !strcmp(sel, name)) {
            rc = dkim_store_add(l, domain, sel);
            continue;
        }
        if (!bad)
            snprintf(why, sizeof why, "selector is not in lower case");
        if (odd)
            rc = odd(arg, path, why);
    }
    closedir(d);
    return rc;
}

int dkim_store_scan(struct dkim_store_list *l, const char *root,
                    const char *domain, dkim_store_odd_fn odd, void *arg)
{
    char path[PATH_MAX], dom[DKIM_NAME_MAX + 1], why[DKIM_WHY_MAX];
    struct dirent *e;
    struct stat st;
    int rc = 0;

    if (domain) {
        rc = scan_domain(l, root, domain, odd, arg);
    } else {
        DIR *d = opendir(root);
        if (!d)
            return errno == ENOENT ? 0 : -errno;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' ||
                snprintf(path, sizeof path, "%s/%s", root, e->d_name) >=
                    (int)sizeof path ||
                stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
                continue;
            dom[0] = 0;
            if (dkim_domain_norm(e->d_name, strlen(e->d_name), dom,
                                 sizeof dom, why, sizeof why) ||
                strcmp(dom, e->d_name)) {
                if (odd)
                    rc = odd(arg, path, "not a lower-case domain name");
                continue;
            }
            rc = scan_domain(l, root, dom, odd, arg);
        }
        closedir(d);
    }
    if (rc == 0 && l->n > 1)
        qsort(l->v, l->n, sizeof l->v[0], cmp_entries);
    return rc;
}

int dkim_keyinfo_load(const char *path, struct dkim_keyinfo *ki, char *err,
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
    if (rc == 0 && (!p || !dkim_b64_decode(p + 2, strlen(p + 2), ki->pub,
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

void dkim_keyinfo_free(struct dkim_keyinfo *ki)
{
    EVP_PKEY_free(ki->pkey);
    ki->pkey = NULL;
}

int dkim_store_keygen(const char *algo, int bits, const char *path,
                      char *txt, size_t txtlen)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return -EEXIST;
    return dkim_keygen(algo, bits, path, txt, txtlen);
}
