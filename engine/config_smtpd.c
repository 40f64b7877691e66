/*
 * config_smtpd.c - the SMTP listener's keys of [sluiced]: smtp_listen,
 * smtp_max_clients, max_message_size, smtp_max_recipients,
 * smtp_data_memory,
 * smtp_relay_networks, smtp_default_account, smtp_auth_clear_networks,
 * tls_cert, tls_key,
 * smtp_command_timeout, smtp_data_timeout, smtp_auth_failures,
 * smtp_auth_window; and the CIDR matching the listener uses.
 *
 * DIAGNOSTICS
 *   A bad value is "FILE:LINE: reason" through config_fail(); after the
 *   file is read: relay networks without smtp_default_account, tls_cert
 *   without tls_key (or the reverse).  The files are read when the
 *   listener starts (smtpd.c), which refuses to start without them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config_int.h"

#define LIST_SEP ", \t"

/* Copy v into a fresh string at *dst (the old one freed). */
static bool set_str(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return false;
    free(*dst);
    *dst = s;
    return true;
}

/* "ADDR:PORT, [V6]:PORT ..." into s's listen list. */
static int parse_listen(struct config_parse *p, struct smtpd_config *s,
                        const char *v)
{
    char buf[1024], *save = NULL;
    if (strlen(v) >= sizeof buf)
        return config_fail(p, "smtp_listen: the list is too long");
    memcpy(buf, v, strlen(v) + 1);
    for (char *t = strtok_r(buf, LIST_SEP, &save); t;
         t = strtok_r(NULL, LIST_SEP, &save)) {
        char *host = NULL;
        uint16_t port = 0;
        if (s->nlisten == CONFIG_SMTPD_MAX_LISTEN)
            return config_fail(p, "smtp_listen: more than %d addresses",
                               CONFIG_SMTPD_MAX_LISTEN);
        if (!config_parse_hostport(t, &host, &port) || !port) {
            free(host);
            return config_fail(p, "smtp_listen: '%s' is not ADDR:PORT", t);
        }
        s->listen_host[s->nlisten] = host;
        s->listen_port[s->nlisten++] = port;
    }
    if (!s->nlisten)
        return config_fail(p, "smtp_listen: needs ADDR:PORT");
    return 1;
}

/* One "ADDR/BITS" (or a bare address: all its bits) into c. */
static bool parse_cidr(const char *t, struct config_cidr *c)
{
    char a[64];
    const char *slash = strchr(t, '/');
    size_t n = slash ? (size_t)(slash - t) : strlen(t);
    unsigned long bits;
    if (n == 0 || n >= sizeof a)
        return false;
    memcpy(a, t, n);
    a[n] = 0;
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, a, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, a, c->addr) == 1)
        c->family = AF_INET6;
    else
        return false;
    unsigned max = c->family == AF_INET ? 32 : 128;
    if (!slash)
        bits = max;
    else if (!config_parse_uint(slash + 1, 0, max, &bits))
        return false;
    c->bits = (unsigned)bits;
    return true;
}

/* "CIDR, CIDR ..." (or "none") of key into nets. */
static int parse_nets(struct config_parse *p, const char *key,
                      struct config_cidr *nets, unsigned *n, const char *v)
{
    char buf[4096], *save = NULL;
    if (strlen(v) >= sizeof buf)
        return config_fail(p, "%s: the list is too long", key);
    memcpy(buf, v, strlen(v) + 1);
    *n = 0;
    if (!strcmp(v, "none"))
        return 1;
    for (char *t = strtok_r(buf, LIST_SEP, &save); t;
         t = strtok_r(NULL, LIST_SEP, &save)) {
        if (*n == CONFIG_SMTPD_MAX_NETS)
            return config_fail(p, "%s: more than %d networks", key,
                               CONFIG_SMTPD_MAX_NETS);
        if (!parse_cidr(t, &nets[(*n)++]))
            return config_fail(p, "%s: '%s' is not ADDR/BITS", key, t);
    }
    return 1;
}

/* A duration key of lo..hi ms into *out. */
static int duration(struct config_parse *p, const char *key, const char *v,
                    uint64_t lo, uint64_t hi, unsigned *out)
{
    uint64_t ms;
    if (config_parse_duration_ms(v, &ms) || ms < lo || ms > hi)
        return config_fail(p, "%s: '%s' is not a duration of %llus..%llus",
                           key, v, (unsigned long long)(lo / 1000),
                           (unsigned long long)(hi / 1000));
    *out = (unsigned)ms;
    return 1;
}

int config_smtpd_key(struct config_parse *p, const char *key, const char *v)
{
    struct smtpd_config *s = &p->cfg->smtpd;
    unsigned long u;
    if (!strcmp(key, "smtp_listen"))
        return parse_listen(p, s, v);
    if (!strcmp(key, "smtp_max_clients")) {
        if (!config_parse_uint(v, 1, 1000000, &u))
            return config_fail(p, "smtp_max_clients: '%s' is not 1..1000000",
                               v);
        s->max_clients = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "max_message_size")) {
        if (!config_parse_uint(v, 1024, QUEUE_MAX_MESSAGE, &u))
            return config_fail(p, "max_message_size: '%s' is not 1024..%u "
                               "(bytes)", v, (unsigned)QUEUE_MAX_MESSAGE);
        s->max_message_size = u;
        return 1;
    }
    if (!strcmp(key, "smtp_max_recipients")) {
        if (!config_parse_uint(v, 1, 100000, &u))
            return config_fail(p, "smtp_max_recipients: '%s' is not "
                               "1..100000", v);
        s->max_recipients = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "smtp_data_memory")) {
        if (!config_parse_uint(v, 1, 1u << 20, &u))
            return config_fail(p, "smtp_data_memory: '%s' is not 1..1048576 "
                               "(MiB)", v);
        s->data_memory_mb = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "smtp_auth_failures")) {
        if (!config_parse_uint(v, 1, 1000, &u))
            return config_fail(p, "smtp_auth_failures: '%s' is not 1..1000",
                               v);
        s->auth_failures = (unsigned)u;
        return 1;
    }
    if (!strcmp(key, "smtp_relay_networks"))
        return parse_nets(p, key, s->relay, &s->nrelay, v);
    if (!strcmp(key, "smtp_auth_clear_networks"))
        return parse_nets(p, key, s->clear, &s->nclear, v);
    if (!strcmp(key, "smtp_command_timeout"))
        return duration(p, key, v, 1000, 3600000, &s->command_timeout_ms);
    if (!strcmp(key, "smtp_data_timeout"))
        return duration(p, key, v, 1000, 3600000, &s->data_timeout_ms);
    if (!strcmp(key, "smtp_auth_window"))
        return duration(p, key, v, 1000, 86400000, &s->auth_window_ms);
    char **str = !strcmp(key, "smtp_default_account") ? &s->default_account
               : !strcmp(key, "tls_cert") ? &s->tls_cert
               : !strcmp(key, "tls_key") ? &s->tls_key : NULL;
    if (!str)
        return -1;
    if (!*v)
        return config_fail(p, "%s: needs a value", key);
    if (!set_str(str, v))
        return config_fail(p, "out of memory");
    return 1;
}

void config_smtpd_defaults(struct smtpd_config *s)
{
    s->max_clients = 1000;
    s->max_message_size = 20u * 1000 * 1000;
    s->max_recipients = 1000;
    s->data_memory_mb = 512;
    s->command_timeout_ms = 300000;
    s->data_timeout_ms = 600000;
    s->auth_failures = 5;
    s->auth_window_ms = 300000;
    /* AUTH in the clear: loopback only */
    parse_cidr("127.0.0.0/8", &s->clear[0]);
    parse_cidr("::1", &s->clear[1]);
    s->nclear = 2;
}

void config_smtpd_check(struct config_parse *p)
{
    struct smtpd_config *s = &p->cfg->smtpd;
    if (s->nrelay && !s->default_account) {
        p->line = config_seen_line(&p->seen, "sluiced", "smtp_relay_networks");
        config_fail(p, "smtp_relay_networks needs smtp_default_account (the "
                    "account its clients send as)");
    } else if (!s->tls_cert != !s->tls_key) {
        p->line = config_seen_line(&p->seen, "sluiced",
                                   s->tls_cert ? "tls_cert" : "tls_key");
        config_fail(p, "tls_cert and tls_key go together");
    }
}

void config_smtpd_free(struct smtpd_config *s)
{
    for (unsigned i = 0; i < s->nlisten; i++)
        free(s->listen_host[i]);
    free(s->default_account);
    free(s->tls_cert);
    free(s->tls_key);
    memset(s, 0, sizeof *s);
}

bool config_cidr_match(const struct config_cidr *nets, unsigned n,
                       const struct sockaddr *addr)
{
    unsigned char a[16];
    int fam;
    if (addr->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        fam = AF_INET;
    } else if (addr->sa_family == AF_INET6) {
        const unsigned char *b =
            ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                  0, 0xff, 0xff };
        fam = memcmp(b, mapped, 12) ? AF_INET6 : AF_INET;
        memcpy(a, fam == AF_INET ? b + 12 : b, fam == AF_INET ? 4 : 16);
    } else {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct config_cidr *c = &nets[i];
        if (c->family != fam)
            continue;
        unsigned full = c->bits / 8, rest = c->bits % 8;
        if (memcmp(a, c->addr, full))
            continue;
        if (rest) {
            unsigned char m = (unsigned char)(0xff << (8 - rest));
            if ((a[full] & m) != (c->addr[full] & m))
                continue;
        }
        return true;
    }
    return false;
}
