/*
 * smtpd_auth.c - AUTH PLAIN and LOGIN on the SMTP listener (RFC 4954),
 * the rate limit on failures per client address, and their audit.
 *
 * DESCRIPTION
 *   AUTH is offered and taken only over TLS (after STARTTLS) or from
 *   smtp_auth_clear_networks (loopback by default); elsewhere it is 538
 *   5.7.11.  The user name is an
 *   account name, the password an API key with the send scope
 *   (queue_ingress_key(): the key must be allowed to send as that
 *   account).  A failure answers 535 5.7.8 without saying why (the why
 *   goes to the audit trail), and counts against the client's address:
 *   smtp_auth_failures within smtp_auth_window lock the address out of
 *   AUTH (454 4.7.0) until the window has passed.  The counters live in a
 *   fixed table of SMTPD_AUTH_SLOTS slots by address hash: bounded, and
 *   a collision only restarts another address's count.
 *
 *   Audit records ("smtp auth", user "?" or the name tried, via
 *   "smtp:ADDR") are appended on the worker pool: the loop never waits
 *   for the spool's write.
 *
 * DIAGNOSTICS
 *   501 for a response that is not base64 or was cancelled ("*"), 504
 *   for another mechanism, 503 out of order, 454 4.7.0 when the spool
 *   cannot be read.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd_int.h"

#define MECH_PLAIN 1
#define MECH_LOGIN 2
#define DECODED_MAX 768   /* a response line decoded (1000 base64 chars) */

bool smtpd_auth_offered(const struct smtpd_conn *c)
{
    return (c->tls || c->clear_ok) && !c->authed;
}

/* The failure slot of c's address, and the address's bytes. */
static struct smtpd_auth_slot *slot_of(struct smtpd_conn *c,
                                       unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (c->peer.ss_family == AF_INET)
        memcpy(addr, &((struct sockaddr_in *)&c->peer)->sin_addr, 4);
    else if (c->peer.ss_family == AF_INET6)
        memcpy(addr, &((struct sockaddr_in6 *)&c->peer)->sin6_addr, 16);
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    return &c->srv->auth[h % SMTPD_AUTH_SLOTS];
}

bool smtpd_auth_locked(struct smtpd_conn *c)
{
    const struct smtpd_config *k = &c->srv->e->cfg.smtpd;
    unsigned char a[16];
    struct smtpd_auth_slot *s = slot_of(c, a);
    return !memcmp(s->addr, a, 16) && s->failures >= k->auth_failures &&
           engine_now_ms() - s->since_ms < k->auth_window_ms;
}

struct audit_job {
    uv_work_t w;
    struct engine *e;
    char user[QUEUE_MAX_AUDIT_USER + 1];
    char via[QUEUE_MAX_AUDIT_VIA + 1];
    char object[QUEUE_MAX_AUDIT_OBJECT + 1];
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    int err;
};

static void audit_work(uv_work_t *w)
{
    struct audit_job *j = w->data;
    struct queue_actor by = { j->user, j->via, QUEUE_ROLE_NONE, 0 };
    j->err = queue_audit_append(j->e->q, &by, 0, "smtp auth", j->object,
                                j->result);
}

static void audit_done(uv_work_t *w, int status)
{
    struct audit_job *j = w->data;
    if (status == 0 && j->err)
        fprintf(stderr, "sluiced: smtp: the audit record of a refused AUTH "
                "from %s failed: %s\n", j->via, queue_strerror(j->err));
    free(j);
}

/* Append the audit record of a refusal on the worker pool. */
static void audit(struct smtpd_conn *c, const char *user, const char *why)
{
    struct audit_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->e = c->srv->e;
    j->w.data = j;
    /* printable only: the name is the client's */
    size_t n = 0;
    for (const char *p = user && *user ? user : "?"; *p && n < 64; p++)
        j->user[n++] = *p > ' ' && *p < 0x7f ? *p : '?';
    snprintf(j->via, sizeof j->via, "smtp:%s", c->peer_text);
    snprintf(j->object, sizeof j->object, "account %s", j->user);
    snprintf(j->result, sizeof j->result, "refused: %s", why);
    if (uv_queue_work(c->srv->e->loop, &j->w, audit_work, audit_done))
        free(j);
}

/* Count a failure of c's address; true when it began a lock-out. */
static bool count_failure(struct smtpd_conn *c)
{
    const struct smtpd_config *k = &c->srv->e->cfg.smtpd;
    unsigned char a[16];
    struct smtpd_auth_slot *s = slot_of(c, a);
    uint64_t now = engine_now_ms();
    if (memcmp(s->addr, a, 16) || now - s->since_ms >= k->auth_window_ms) {
        memcpy(s->addr, a, 16);
        s->since_ms = now;
        s->failures = 0;
    }
    return ++s->failures == k->auth_failures;
}

/* Decode base64 text into out (at most cap - 1 bytes, NUL added); the
 * length, or -1. */
static int b64_decode(const char *text, char *out, size_t cap)
{
    size_t n = strlen(text);
    if (n % 4 || n / 4 * 3 >= cap)
        return -1;
    if (n == 0) {
        out[0] = 0;
        return 0;
    }
    int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text,
                              (int)n);
    if (len < 0)
        return -1;
    if (text[n - 1] == '=')
        len--;
    if (text[n - 2] == '=')
        len--;
    out[len] = 0;
    return len;
}

/* Check user and key; reply and leave the AUTH state. */
static void check(struct smtpd_conn *c, const char *user, const char *key)
{
    char why[256] = "";
    struct queue_ingress_who w;
    smtpd_enter(c, SS_COMMAND);
    c->auth_mech = c->auth_step = 0;
    int err = *user ? queue_ingress_key(c->srv->e->q, key, user, &w, why,
                                        sizeof why)
                    : QUEUE_EPERM;
    if (!*user)
        snprintf(why, sizeof why, "no user name");
    if (err == 0) {
        c->who = w;
        snprintf(c->who.via, sizeof c->who.via, "smtp:apikey:%u", w.key_id);
        c->authed = true;
        smtpd_reply(c, "235 2.7.0 Authentication successful");
        return;
    }
    if (err != QUEUE_EPERM && err != QUEUE_ENOTFOUND) {
        fprintf(stderr, "sluiced: smtp: AUTH from %s: %s\n", c->peer_text,
                why);
        smtpd_reply(c, "454 4.7.0 Temporary authentication failure");
        return;
    }
    audit(c, user, why);
    if (count_failure(c)) {
        char lock[160];
        snprintf(lock, sizeof lock, "%u failed AUTH from this address: "
                 "locked out of AUTH for %us",
                 c->srv->e->cfg.smtpd.auth_failures,
                 c->srv->e->cfg.smtpd.auth_window_ms / 1000);
        audit(c, user, lock);
    }
    c->errors++;
    smtpd_reply(c, "535 5.7.8 Error: authentication failed");
}

/* PLAIN's response: authzid NUL authcid NUL password. */
static void plain(struct smtpd_conn *c, const char *resp)
{
    char buf[DECODED_MAX];
    int n = b64_decode(resp, buf, sizeof buf);
    char *u = n > 0 ? memchr(buf, 0, (size_t)n) : NULL;
    char *p = u ? memchr(u + 1, 0, (size_t)(buf + n - u - 1)) : NULL;
    if (!p) {
        smtpd_enter(c, SS_COMMAND);
        c->errors++;
        smtpd_reply(c, "501 5.5.2 Error: invalid AUTH PLAIN response");
        return;
    }
    check(c, u + 1, p + 1);
    OPENSSL_cleanse(buf, sizeof buf);
}

void smtpd_auth_start(struct smtpd_conn *c, char *args)
{
    char *mech = args, *init = strchr(args, ' ');
    if (init) {
        *init++ = 0;
        while (*init == ' ')
            init++;
    }
    if (!c->greeted) {
        smtpd_reply(c, "503 5.5.1 Error: send HELO/EHLO first");
    } else if (c->authed) {
        smtpd_reply(c, "503 5.5.1 Error: already authenticated");
    } else if (c->in_mail) {
        smtpd_reply(c, "503 5.5.1 Error: MAIL transaction in progress");
    } else if (!smtpd_auth_offered(c)) {
        smtpd_reply(c, "538 5.7.11 Encryption required for requested "
                    "authentication mechanism");
    } else if (smtpd_auth_locked(c)) {
        smtpd_reply(c, "454 4.7.0 Error: too many failed authentications "
                    "from this address; try again later");
    } else if (!strcasecmp(mech, "PLAIN")) {
        c->auth_mech = MECH_PLAIN;
        if (init && *init) {
            plain(c, strcmp(init, "=") ? init : "");
            return;
        }
        smtpd_reply(c, "334 ");
        smtpd_enter(c, SS_AUTH);
    } else if (!strcasecmp(mech, "LOGIN")) {
        c->auth_mech = MECH_LOGIN;
        c->auth_step = 1;
        smtpd_enter(c, SS_AUTH);
        if (init && *init) {
            smtpd_auth_line(c, init);
            return;
        }
        smtpd_reply(c, "334 VXNlcm5hbWU6");   /* "Username:" */
    } else {
        smtpd_reply(c, "504 5.5.4 Error: unsupported authentication "
                    "mechanism");
    }
}

void smtpd_auth_line(struct smtpd_conn *c, char *line)
{
    char buf[DECODED_MAX];
    if (!strcmp(line, "*")) {
        smtpd_enter(c, SS_COMMAND);
        c->auth_mech = c->auth_step = 0;
        smtpd_reply(c, "501 5.7.0 Authentication aborted");
        return;
    }
    if (c->auth_mech == MECH_PLAIN) {
        plain(c, line);
        return;
    }
    int n = b64_decode(line, buf, sizeof buf);
    if (n < 0 || memchr(buf, 0, (size_t)n)) {
        smtpd_enter(c, SS_COMMAND);
        c->auth_mech = c->auth_step = 0;
        c->errors++;
        smtpd_reply(c, "501 5.5.2 Error: cannot decode response");
        return;
    }
    if (c->auth_step == 1) {
        size_t ul = (size_t)n < sizeof c->auth_user ? (size_t)n
                                                    : sizeof c->auth_user - 1;
        memcpy(c->auth_user, buf, ul);   /* a longer name fails the check */
        c->auth_user[ul] = 0;
        c->auth_step = 2;
        smtpd_reply(c, "334 UGFzc3dvcmQ6");   /* "Password:" */
        return;
    }
    check(c, c->auth_user, buf);
    OPENSSL_cleanse(buf, sizeof buf);
}
