/*
 * name.c - the one domain normaliser of the tree, and the selector rule.
 *
 * DESCRIPTION
 *   dkim_domain_norm() puts a domain in the form the spool and the key
 *   store keep: lower-case A-labels, no trailing dot.  Plain ASCII takes a
 *   fast path (lower case, LDH check), which is all UTS #46 does to such
 *   a name; a name with a non-ASCII octet or an "xn--" label goes through
 *   libidn2 (NFC input, UTS #46 non-transitional), whose answer is then
 *   held to the same LDH rules.  `sluice dkim`, `sluice domain` and the
 *   contact importer (tools/email_addr.c) all call it, so a name one of
 *   them takes is a name all of them take.
 *
 *   dkim_selector_norm() holds selectors to RFC 6376 3.1 (dot-separated
 *   LDH labels; no underscore) in lower case.
 *
 * DIAGNOSTICS
 *   DKIM_E_ARG with a reason ("domain needs at least two labels", "domain
 *   is not a valid IDN name: ..."); nothing is allocated that outlives a
 *   call.  No global state: any thread may call these at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <idn2.h>

#include "dkim_sign.h"
#include "dkim_store.h"

#define LABEL_MAX 63
#define IDN_IN_MAX 1024          /* octets of a U-label name we convert */

/* Write why (if room) and return DKIM_E_ARG. */
static int refuse(char *why, size_t whylen, const char *text)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", text);
    return DKIM_E_ARG;
}

/* Check a lower-case ASCII name d[0..n) as LDH labels (what says "domain"
 * or "selector" in the reason); at least min_labels of them, and with
 * numeric_top false, a top label that is not all digits.  NULL if fine. */
static const char *ldh_check(const char *d, size_t n, const char *what,
                             int min_labels, int numeric_top)
{
    static const char *const dom[] = {
        "empty domain", "domain over 253 octets", "empty label in the domain",
        "domain label over 63 octets",
        "domain label starts or ends with a hyphen",
        "bad character in the domain (letters, digits, hyphens and dots)",
        "all-numeric top-level domain (an address, not a domain name)",
        "domain needs at least two labels" };
    static const char *const sel[] = {
        "empty selector", "selector over 253 octets",
        "empty label in the selector", "selector label over 63 octets",
        "selector label starts or ends with a hyphen",
        "bad character in the selector (letters, digits, hyphens and dots)",
        "", "" };
    const char *const *m = what[0] == 'd' ? dom : sel;
    size_t label = 0, start = 0;
    int labels = 0;

    if (n == 0)
        return m[0];
    if (n > DKIM_NAME_MAX)
        return m[1];
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? d[i] : '.';
        if (c == '.') {
            if (label == 0)
                return m[2];
            if (label > LABEL_MAX)
                return m[3];
            if (d[start] == '-' || d[i - 1] == '-')
                return m[4];
            labels++;
            if (i == n && !numeric_top &&
                strspn(d + start, "0123456789") == label)
                return m[6];
            label = 0;
            start = i + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return m[5];
        label++;
    }
    return labels < min_labels ? m[7] : NULL;
}

/* Whether d[0..n) has a label starting "xn--" (an A-label to check). */
static int has_alabel(const char *d, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if ((i == 0 || d[i - 1] == '.') && !strncmp(d + i, "xn--", 4))
            return 1;
    return 0;
}

int dkim_domain_norm(const char *in, size_t len, char *out, size_t cap,
                     char *why, size_t whylen)
{
    char buf[IDN_IN_MAX];
    size_t n = len;
    int ascii = 1;

    if (n && in[n - 1] == '.')
        n--;
    if (n == 0)
        return refuse(why, whylen, "empty domain");
    if (memchr(in, 0, n))
        return refuse(why, whylen, "NUL byte in the domain");
    if (n >= sizeof buf)
        return refuse(why, whylen, "domain over 253 octets");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        ascii &= c < 0x80;
        buf[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    buf[n] = 0;
    if (ascii && n > DKIM_NAME_MAX)
        return refuse(why, whylen, "domain over 253 octets");
    const char *bad = ascii ? ldh_check(buf, n, "domain", 2, 0) : NULL;
    if (bad)
        return refuse(why, whylen, bad);
    if (!ascii || has_alabel(buf, n)) {
        uint8_t *alabel = NULL;
        int rc = idn2_lookup_u8((const uint8_t *)buf, &alabel,
                                IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            if (why && whylen)
                snprintf(why, whylen, "domain is not a valid IDN name: %s",
                         idn2_strerror(rc));
            return DKIM_E_ARG;
        }
        n = strlen((const char *)alabel);
        for (size_t i = 0; i < n && n < sizeof buf; i++) {
            char c = (char)alabel[i];
            buf[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        idn2_free(alabel);
        if (n >= sizeof buf || n > DKIM_NAME_MAX)
            return refuse(why, whylen, "domain over 253 octets");
        buf[n] = 0;
        if ((bad = ldh_check(buf, n, "domain", 2, 0)))
            return refuse(why, whylen, bad);
    }
    if (n >= cap)
        return refuse(why, whylen, "domain too long");
    memcpy(out, buf, n + 1);
    return 0;
}

int dkim_selector_norm(const char *in, char *out, size_t cap, char *why,
                       size_t whylen)
{
    char buf[DKIM_NAME_MAX + 1];
    size_t n = strlen(in);

    if (n > DKIM_NAME_MAX)
        return refuse(why, whylen, "selector over 253 octets");
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    buf[n] = 0;
    const char *bad = ldh_check(buf, n, "selector", 1, 1);
    if (bad)
        return refuse(why, whylen, bad);
    if (n >= cap)
        return refuse(why, whylen, "selector too long");
    memcpy(out, buf, n + 1);
    return 0;
}

bool dkim_record_name(const char *selector, const char *domain, char *out,
                      size_t cap)
{
    int n = snprintf(out, cap, "%s._domainkey.%s", selector, domain);
    return n > 0 && (size_t)n < cap && n <= DKIM_NAME_MAX;
}
