/*
 * email_addr.c - checking contact addresses and putting them in the form
 * the spool stores: local part as given, domain as lower-case A-label.
 *
 * DESCRIPTION
 *   The local part is a dot-atom (RFC 5321 4.1.2; quoted strings are
 *   refused: the renderer writes To: as a plain addr-spec), in
 *   ASCII (SMTPUTF8 local parts are refused: the renderer writes ASCII
 *   headers).  The domain goes through the tree's one domain normaliser,
 *   dkim_domain_norm() (dkim/name.c: libidn2, UTS #46 non-transitional,
 *   for a name that is not plain ASCII or holds an A-label; a fast LDH
 *   path otherwise), after the address rules of its own: no trailing dot
 *   and no address literal.  A small cache of converted IDN domains
 *   spares libidn2 the repeats of a large import.  Owns nothing; not
 *   thread-safe (the cache).
 *
 * DIAGNOSTICS
 *   Every refusal comes with a short reason ("local part over 64 octets",
 *   "domain: ...") for the reject file.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dkim_store.h"
#include "tool_lists.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 253
#define IDN_CACHE 64
#define IDN_IN_MAX 1024

/* RFC 5322 atext. */
static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

bool tool_utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if ((p[i] & 0xe0) == 0xc0) { need = 2; cp = p[i] & 0x1f; }
        else if ((p[i] & 0xf0) == 0xe0) { need = 3; cp = p[i] & 0x0f; }
        else if ((p[i] & 0xf8) == 0xf0) { need = 4; cp = p[i] & 0x07; }
        else return false;
        if (n - i < need)
            return false;
        for (size_t k = 1; k < need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) ||
            (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need;
    }
    return true;
}

/* Check the local part l[0..n); NULL if fine, else why. */
static const char *local_check(const char *l, size_t n)
{
    if (n == 0)
        return "empty local part";
    if (n > LOCAL_MAX)
        return "local part over 64 octets";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)l[i] >= 0x80)
            return "non-ASCII local part (SMTPUTF8 is not supported)";
    /* campaign mail needs an address the renderer can put in To: as it
     * is; receivers rarely take quoted local parts either */
    if (l[0] == '"')
        return "quoted local part (not accepted for campaign mail)";
    if (l[0] == '.' || l[n - 1] == '.')
        return "local part starts or ends with a dot";
    for (size_t i = 0; i < n; i++) {
        if (l[i] == '.') {
            if (l[i + 1] == '.')
                return "two dots in a row in the local part";
        } else if (!atext((unsigned char)l[i])) {
            return (unsigned char)l[i] <= ' ' ? "blank or control character "
                   "in the local part" : "bad character in the local part";
        }
    }
    return NULL;
}

/* One converted IDN domain remembered. */
struct idn_entry {
    char in[IDN_IN_MAX];
    size_t in_len;
    char out[DOMAIN_MAX + 1];
    bool used;
};
static struct idn_entry idn_cache[IDN_CACHE];

/* FNV-1a of the input, for the cache slot. */
static size_t idn_slot(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h % IDN_CACHE;
}

/* The A-label form of d[0..n) into out (DOMAIN_MAX + 1) by the tree's one
 * domain normaliser (dkim_domain_norm()), with the address rules on top
 * (no trailing dot, no address literal); NULL or why (written there). */
static const char *domain_norm(const char *d, size_t n, char *out,
                               char *why)
{
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (unsigned char)d[i] < 0x80;
    if (n && d[0] == '[')
        return "address literals are not accepted";
    if (n && d[n - 1] == '.')
        return n > 1 && d[n - 2] != '.' ? "domain ends with a dot"
                                        : "empty label in the domain";
    if (ascii)   /* the normaliser's fast path: no cache needed */
        return dkim_domain_norm(d, n, out, DOMAIN_MAX + 1, why,
                                TOOL_WHY_MAX) ? why : NULL;
    if (n >= IDN_IN_MAX)
        return "domain too long";
    struct idn_entry *e = &idn_cache[idn_slot(d, n)];
    if (e->used && e->in_len == n && !memcmp(e->in, d, n)) {
        memcpy(out, e->out, strlen(e->out) + 1);
        return NULL;
    }
    if (!tool_utf8_ok(d, n))
        return "domain is not UTF-8";
    if (dkim_domain_norm(d, n, out, DOMAIN_MAX + 1, why, TOOL_WHY_MAX))
        return why;
    memcpy(e->in, d, n);
    e->in_len = n;
    memcpy(e->out, out, strlen(out) + 1);
    e->used = true;
    return NULL;
}

int tool_addr_normalize(const char *in, size_t len, char *out, size_t cap,
                        char *why)
{
    char dom[DOMAIN_MAX + 1];
    const char *bad = NULL;
    while (len && (*in == ' ' || *in == '\t')) {
        in++;
        len--;
    }
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    const char *at = NULL;
    for (size_t i = len; i > 0; i--)
        if (in[i - 1] == '@') {
            at = in + i - 1;
            break;
        }
    if (len == 0)
        bad = "empty";
    else if (memchr(in, 0, len))
        bad = "NUL byte";
    else if (!at)
        bad = "no @";
    else
        bad = local_check(in, (size_t)(at - in));
    if (!bad)
        bad = domain_norm(at + 1, len - (size_t)(at - in) - 1, dom, why);
    size_t ln = at ? (size_t)(at - in) : 0, dn = bad ? 0 : strlen(dom);
    if (!bad && (ln + 1 + dn > TOOL_ADDR_MAX || ln + 1 + dn >= cap))
        bad = "address over 254 octets";
    if (bad) {
        if (bad != why)
            snprintf(why, TOOL_WHY_MAX, "%s", bad);
        return -1;
    }
    memcpy(out, in, ln);
    out[ln] = '@';
    memcpy(out + ln + 1, dom, dn + 1);
    return 0;
}
