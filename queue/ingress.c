/*
 * ingress.c - the rules for mail coming in (queue_ingress.h): API keys
 * for sending, the account mail is sent as, and the From: domain check.
 *
 * DESCRIPTION
 *   Everything is read in the caller's thread through the admin getters
 *   (read-only transactions); nothing is written, nothing audited.  Key
 *   secrets are wiped from the stack after hashing.
 *
 * DIAGNOSTICS
 *   See queue_ingress.h: QUEUE_EPERM / QUEUE_ENOTFOUND / QUEUE_EINVAL with
 *   a reason in why, or the spool's own error codes passed through.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "queue_ingress.h"
#include "queue_msg.h"

/* Write the reason into why (cap may be 0). */
static int say(char *why, size_t cap, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *why, size_t cap, int err, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* The value of one hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse "sk_<id>_<64 hex>"; false if it is not one. */
static bool parse_key(const char *s, uint32_t *id,
                      unsigned char secret[QUEUE_APIKEY_SECRET])
{
    unsigned long long v = 0;
    if (strncmp(s, "sk_", 3))
        return false;
    const char *p = s + 3;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned)(*p - '0');
        if (v > UINT32_MAX)
            return false;
    }
    if (*p++ != '_' || strlen(p) != 2 * QUEUE_APIKEY_SECRET || v == 0)
        return false;
    for (size_t i = 0; i < QUEUE_APIKEY_SECRET; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        secret[i] = (unsigned char)(hi << 4 | lo);
    }
    *id = (uint32_t)v;
    return true;
}

int queue_ingress_key_find(struct queue *q, const char *key,
                           struct queue_apikey *k, struct queue_user *u,
                           char *why, size_t cap)
{
    unsigned char secret[QUEUE_APIKEY_SECRET], hash[QUEUE_APIKEY_HASH];
    unsigned int hlen = sizeof hash;
    struct queue_apikey kk;
    struct queue_user uu;
    uint32_t id = 0;
    int err;

    if (!k)
        k = &kk;
    if (!u)
        u = &uu;
    memset(k, 0, sizeof *k);
    memset(u, 0, sizeof *u);
    if (!key || !parse_key(key, &id, secret))
        return say(why, cap, QUEUE_EINVAL,
                   "not a sluice API key (sk_<id>_<64 hex digits>)");
    bool hashed = EVP_Digest(secret, sizeof secret, hash, &hlen,
                             EVP_sha256(), NULL) == 1;
    OPENSSL_cleanse(secret, sizeof secret);
    if (!hashed)
        return say(why, cap, -EIO, "SHA-256 failed");
    err = queue_apikey_get(q, id, k);
    if (err && err != QUEUE_ENOTFOUND)
        return say(why, cap, err, "%s", queue_strerror(err));
    if (err || CRYPTO_memcmp(hash, k->hash, sizeof hash)) {
        memset(k, 0, sizeof *k);
        k->id = id;
        return say(why, cap, QUEUE_ENOTFOUND, "unknown API key");
    }
    if ((err = queue_user_get(q, k->user, u))) {
        memset(u, 0, sizeof *u);
        if (err != QUEUE_ENOTFOUND)
            return say(why, cap, err, "%s", queue_strerror(err));
        return say(why, cap, QUEUE_EPERM, "the API key's user is gone");
    }
    if (k->revoked)
        return say(why, cap, QUEUE_EPERM, "this API key is revoked");
    if (u->disabled)
        return say(why, cap, QUEUE_EPERM, "user %s is disabled", u->name);
    return 0;
}

/* Fill w for account a (enabled) sent as by key k of user u. */
static void who_fill(struct queue_ingress_who *w, const struct queue_account *a,
                     const struct queue_apikey *k, const struct queue_user *u,
                     int role)
{
    memset(w, 0, sizeof *w);
    w->account = a->id;
    w->role = role;
    snprintf(w->account_name, sizeof w->account_name, "%s", a->name);
    if (k) {
        w->user = u->id;
        w->key_id = k->id;
        snprintf(w->user_name, sizeof w->user_name, "%s", u->name);
        snprintf(w->via, sizeof w->via, "apikey:%u", k->id);
    } else {
        snprintf(w->via, sizeof w->via, "relay");
    }
}

/* Look up an account by name, or by id when name is all digits. */
static int account_lookup(struct queue *q, const char *name,
                          struct queue_account *a)
{
    unsigned long long n = 0;
    const char *p = name;
    for (; *p >= '0' && *p <= '9' && n <= UINT32_MAX; p++)
        n = n * 10 + (unsigned)(*p - '0');
    if (p != name && !*p && n <= UINT32_MAX && n > 0)
        return queue_account_get(q, (uint32_t)n, a);
    return queue_account_find(q, name, a);
}

int queue_ingress_key(struct queue *q, const char *key,
                      const char *account_name,
                      struct queue_ingress_who *w, char *why, size_t cap)
{
    struct queue_apikey k;
    struct queue_user u;
    struct queue_account *a = malloc(sizeof *a);
    int role = QUEUE_ROLE_NONE, err;

    if (!a)
        return say(why, cap, -ENOMEM, "out of memory");
    err = queue_ingress_key_find(q, key, &k, &u, why, cap);
    if (err == QUEUE_EINVAL)
        err = QUEUE_ENOTFOUND;
    if (err)
        goto out;
    if (k.scope < QUEUE_ROLE_SENDER) {
        err = say(why, cap, QUEUE_EPERM, "API key %u has scope %s; sending "
                  "needs scope send", k.id, queue_role_name(k.scope));
        goto out;
    }
    err = account_name ? account_lookup(q, account_name, a)
                       : queue_account_get(q, k.account, a);
    if (err == QUEUE_ENOTFOUND) {
        err = say(why, cap, QUEUE_EPERM, "no account %.80s for API key %u",
                  account_name ? account_name : "(the key's)", k.id);
        goto out;
    }
    if (err)
        goto out;
    if (a->id != k.account && a->parent != k.account) {
        err = say(why, cap, QUEUE_EPERM, "API key %u is not for account %s",
                  k.id, a->name);
        goto out;
    }
    if (a->disabled) {
        err = say(why, cap, QUEUE_EPERM, "account %s is disabled", a->name);
        goto out;
    }
    err = queue_role_effective(q, u.id, a->id, &role, NULL);
    if (err == QUEUE_ENOTFOUND) {
        role = QUEUE_ROLE_NONE;
        err = 0;
    }
    if (err)
        goto out;
    if (role > k.scope)
        role = k.scope;
    if (role < QUEUE_ROLE_SENDER) {
        err = say(why, cap, QUEUE_EPERM, "sending as account %s needs role "
                  "sender; %s has %s (through API key %u, scope %s)", a->name,
                  u.name, queue_role_name(role), k.id,
                  queue_role_name(k.scope));
        goto out;
    }
    who_fill(w, a, &k, &u, role);
out:
    free(a);
    return err;
}

int queue_ingress_account(struct queue *q, const char *account_name,
                          struct queue_ingress_who *w, char *why,
                          size_t cap)
{
    struct queue_account *a = malloc(sizeof *a);
    int err;
    if (!a)
        return say(why, cap, -ENOMEM, "out of memory");
    err = account_name && *account_name
        ? account_lookup(q, account_name, a) : QUEUE_ENOTFOUND;
    if (err == QUEUE_ENOTFOUND)
        err = say(why, cap, err, "no account %.80s in the spool",
                  account_name ? account_name : "");
    else if (!err && a->disabled)
        err = say(why, cap, QUEUE_EPERM, "account %s is disabled", a->name);
    else if (!err)
        who_fill(w, a, NULL, NULL, QUEUE_ROLE_SENDER);
    free(a);
    return err;
}

bool queue_ingress_from_domain(const char *msg, size_t len, char *out,
                               size_t cap)
{
    const char *p = msg, *end = msg + len;
    if (!cap)
        return false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if (le == p || (le == p + 1 && *p == '\r'))
            return false;   /* end of the header */
        if (le - p > 5 && !strncasecmp(p, "From:", 5)) {
            /* the field with its continuation lines */
            const char *fe = le;
            while (fe + 1 < end && (fe[1] == ' ' || fe[1] == '\t')) {
                const char *n = memchr(fe + 1, '\n', (size_t)(end - fe - 1));
                fe = n ? n : end;
            }
            const char *v = p + 5, *at = NULL, *lt = NULL, *gt = NULL;
            for (const char *c = v; c < fe; c++) {
                if (*c == '<' && !lt)
                    lt = c;
                else if (*c == '>' && lt && !gt)
                    gt = c;
            }
            const char *a0 = lt && gt ? lt + 1 : v, *a1 = lt && gt ? gt : fe;
            for (const char *c = a0; c < a1; c++)
                if (*c == '@')
                    at = c;
            if (!at)
                return false;
            size_t n = 0;
            for (const char *c = at + 1; c < a1 && n + 1 < cap; c++) {
                if (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n' ||
                    *c == '>' || *c == ')' || *c == ',' || *c == ';')
                    break;
                out[n++] = (char)tolower((unsigned char)*c);
            }
            out[n] = 0;
            return n > 0;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

bool queue_ingress_domain_verified(struct queue *q, const char *domain,
                                   uint32_t account)
{
    struct queue_sdomain *d = malloc(sizeof *d);
    bool ok = false;
    for (const char *p = domain; d && p && !ok;) {
        if (queue_sdomain_get(q, p, d) == 0 && d->account == account &&
            d->verified)
            ok = true;
        p = strchr(p, '.');
        if (p)
            p++;
        if (p && !strchr(p, '.'))
            break;   /* never a bare top-level domain */
    }
    free(d);
    return ok;
}

int queue_ingress_message(struct queue *q,
                          const struct queue_ingress_who *w,
                          const char *msg, size_t len,
                          const char *msgid_host, char **clean,
                          size_t *clen, char *why, size_t cap)
{
    char host[QUEUE_MAX_DOMAIN + 2], dom[QUEUE_MAX_DOMAIN + 2];
    *clean = NULL;
    *clen = 0;
    if (msgid_host && strlen(msgid_host) < sizeof host &&
        queue_message_host_ok(msgid_host))
        snprintf(host, sizeof host, "%s", msgid_host);
    else if (!queue_ingress_from_domain(msg, len, host, sizeof host) ||
             !queue_message_host_ok(host))
        snprintf(host, sizeof host, "localhost.localdomain");
    int err = queue_message_cleanup(msg, len, host, (int64_t)time(NULL),
                                    clean, clen, why, cap);
    if (err == -EBADMSG)
        return QUEUE_EINVAL;
    if (err)
        return err == -ENOMEM || err == -EIO || err == QUEUE_ETOOBIG
            ? err : say(why, cap, QUEUE_EINVAL, "%s", queue_strerror(err));
    if (!w || !w->account)
        return 0;
    const char *m = *clean ? *clean : msg;
    size_t mlen = *clean ? *clen : len;
    if (!queue_ingress_from_domain(m, mlen, dom, sizeof dom))
        err = say(why, cap, QUEUE_EINVAL, "the message has no From: header "
                  "with an address");
    else if (!queue_ingress_domain_verified(q, dom, w->account))
        err = say(why, cap, QUEUE_EPERM, "From: domain %s is not a verified "
                  "sending domain of account %s", dom, w->account_name);
    if (err) {
        free(*clean);
        *clean = NULL;
        *clen = 0;
    }
    return err;
}
