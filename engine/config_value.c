/*
 * config_value.c - the value forms of sluiced.conf: numbers, booleans,
 * durations, sizes, rates, host[:port], retry schedules, domain names and DNS
 * server lists.
 *
 * DESCRIPTION
 *   Pure functions of a string: each says whether the text is one of its
 *   form and, if so, what it means.  config.c picks the form per key and
 *   words the complaint; these never print.
 *
 * DIAGNOSTICS
 *   false (or -EINVAL for durations) when the text is not of the form or
 *   out of range; config_parse_dns_servers() names the entry at fault.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

/* "500ms", "30s", "5m", "2h", "5d" or bare seconds into milliseconds. */
int config_parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    while (*end == ' ')
        end++;
    uint64_t mul;
    if (!*end || !strcmp(end, "s")) mul = 1000;
    else if (!strcmp(end, "ms")) mul = 1;
    else if (!strcmp(end, "m")) mul = 60000;
    else if (!strcmp(end, "h")) mul = 3600000;
    else if (!strcmp(end, "d")) mul = 86400000;
    else return -EINVAL;
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *ms = v * mul;
    return 0;
}

/* A size with its unit ("100MB", "512 KB": B, KB, MB or GB, 1024-based)
 * into bytes. */
bool config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    while (*end == ' ')
        end++;
    uint64_t mul;
    if (!strcasecmp(end, "b")) mul = 1;
    else if (!strcasecmp(end, "kb")) mul = 1ull << 10;
    else if (!strcasecmp(end, "mb")) mul = 1ull << 20;
    else if (!strcasecmp(end, "gb")) mul = 1ull << 30;
    else return false;
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

/* Parse an unsigned integer in [lo, hi]. */
bool config_parse_uint(const char *s, unsigned long lo, unsigned long hi,
                       unsigned long *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* yes/on/true/1 or no/off/false/0. */
bool config_parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcasecmp(s, "true") || !strcmp(s, "1"))
        *out = true;
    else if (!strcasecmp(s, "no") || !strcasecmp(s, "off") ||
             !strcasecmp(s, "false") || !strcmp(s, "0"))
        *out = false;
    else
        return false;
    return true;
}

/* "host:port" or "[v6]:port" or "host" into a fresh host string and port. */
bool config_parse_hostport(const char *s, char **host, uint16_t *port)
{
    const char *colon, *h = s;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return false;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] && !colon)
            return false;
    } else {
        colon = strrchr(s, ':');
        hl = colon ? (size_t)(colon - s) : strlen(s);
    }
    unsigned long p = 0;
    if (colon && !config_parse_uint(colon + 1, 1, 65535, &p))
        return false;
    if (hl == 0 || hl > 255)
        return false;
    for (size_t i = 0; i < hl; i++)
        if (!(isalnum((unsigned char)h[i]) || strchr(".-:_", h[i])))
            return false;
    if (!(*host = strndup(h, hl)))
        return false;
    *port = (uint16_t)p;
    return true;
}

/* Parse the retry schedule: a comma-separated list of durations. */
bool config_parse_retry(struct config *c, const char *v)
{
    char buf[1024];
    unsigned n = 0;
    if (strlen(v) >= sizeof buf)
        return false;
    memcpy(buf, v, strlen(v) + 1);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ')
            tok[--l] = 0;
        uint64_t ms;
        if (n == QUEUE_MAX_RETRY_STEPS || config_parse_duration_ms(tok, &ms) ||
            ms < 1000 || ms / 1000 > UINT32_MAX)
            return false;
        c->retry[n++] = (uint32_t)(ms / 1000);
    }
    if (!n)
        return false;
    c->retry_steps = n;
    return true;
}

/* Parse "N/s", "N/min", "N/h", "N/day" (also sec, m, hour, d). */
bool config_parse_rate(const char *v, struct rate *r)
{
    char *end;
    if (!isdigit((unsigned char)*v))
        return false;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || n == 0 || n > 100000000 || *end != '/')
        return false;
    const char *u = end + 1;
    uint32_t per;
    if (!strcmp(u, "s") || !strcmp(u, "sec")) per = 1;
    else if (!strcmp(u, "min") || !strcmp(u, "m")) per = 60;
    else if (!strcmp(u, "h") || !strcmp(u, "hour")) per = 3600;
    else if (!strcmp(u, "day") || !strcmp(u, "d")) per = 86400;
    else return false;
    r->n = (uint32_t)n;
    r->per_s = per;
    return true;
}

const char *config_rate_text(const struct rate *r, char *buf, size_t len)
{
    const char *u = r->per_s == 1 ? "s" : r->per_s == 60 ? "min"
                  : r->per_s == 3600 ? "h" : "day";
    if (!r->n)
        snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, "%u/%s", r->n, u);
    return buf;
}

/* True if s is a plausible domain name: LDH labels of 1..63 separated by
 * single dots, 253 characters at most. */
bool config_domain_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (!n || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (!label || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum(ch) || (ch == '-' && label)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

/* True if s is a plain mailbox local@domain: a local part of 1..64
 * printable characters without space, quotes, brackets or '@', and a
 * domain config_domain_ok() takes. */
bool config_mailbox_ok(const char *s)
{
    const char *at = strrchr(s, '@');
    if (!at || at == s || at - s > 64)
        return false;
    for (const char *c = s; c < at; c++)
        if (*c <= ' ' || *c > '~' || strchr("\"<>()[]@,;:\\", *c))
            return false;
    return config_domain_ok(at + 1);
}

/* One server of a dns_servers list, IP[:PORT] or [IPv6][:PORT], appended
 * to out in the form c-ares reads (ADDR:PORT, [IPv6]:PORT; 53 when no
 * port is given).  False when it is not one or out has no room. */
static bool dns_server(const char *t, char *out, size_t outlen, size_t *o)
{
    char host[INET6_ADDRSTRLEN];
    const char *h = t, *port = NULL;
    size_t hl;
    bool v6;
    if (*t == '[') {
        const char *rb = strchr(t, ']');
        if (!rb || (rb[1] && rb[1] != ':'))
            return false;
        h = t + 1;
        hl = (size_t)(rb - h);
        port = rb[1] ? rb + 2 : NULL;
        v6 = true;
    } else {
        const char *colon = strchr(t, ':');
        v6 = colon && strchr(colon + 1, ':');  /* bare IPv6: no port */
        hl = colon && !v6 ? (size_t)(colon - t) : strlen(t);
        port = colon && !v6 ? colon + 1 : NULL;
    }
    unsigned char addr[sizeof(struct in6_addr)];
    unsigned long pn = 53;
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, h, hl);
    host[hl] = 0;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1 ||
        (port && !config_parse_uint(port, 1, 65535, &pn)))
        return false;
    int n = snprintf(out + *o, outlen - *o, v6 ? "%s[%s]:%lu" : "%s%s:%lu",
                     *o ? "," : "", host, pn);
    if (n < 0 || (size_t)n >= outlen - *o)
        return false;
    *o += (size_t)n;
    return true;
}

int config_parse_dns_servers(const char *list, char *out, size_t outlen,
                             char *bad, size_t badlen)
{
    char buf[CONFIG_DNS_SERVERS_MAX];
    size_t o = 0, n = strlen(list);
    bad[0] = 0;
    if (n >= sizeof buf || outlen < 3 * sizeof buf)
        return -E2BIG;
    memcpy(buf, list, n + 1);
    out[0] = 0;
    for (char *save, *t = strtok_r(buf, ", \t", &save); t;
         t = strtok_r(NULL, ", \t", &save))
        if (!dns_server(t, out, outlen, &o)) {
            snprintf(bad, badlen, "%s", t);
            return -EINVAL;
        }
    return o ? 0 : -ENOENT;
}

/* TYPE, TYPE ... into a mask (config.h). */
bool config_event_types(const char *v, uint32_t *mask, char *bad,
                        size_t badlen)
{
    char buf[512];
    if (bad && badlen)
        snprintf(bad, badlen, "%s", v);
    if (strlen(v) >= sizeof buf)
        return false;
    memcpy(buf, v, strlen(v) + 1);
    *mask = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", \t", &save); t;
         t = strtok_r(NULL, ", \t", &save)) {
        int type = 0;
        for (int k = 1; k < 32 && !type; k++)
            if (!strcmp(t, queue_event_name(k)))
                type = k;
        if (!type) {
            if (bad && badlen)
                snprintf(bad, badlen, "%s", t);
            return false;
        }
        *mask |= 1u << type;
    }
    return *mask != 0;
}
