/*
 * smtpd_cmd.c - the SMTP listener's commands: EHLO/HELO, STARTTLS, MAIL,
 * RCPT, DATA, RSET, NOOP, VRFY, HELP, QUIT (AUTH: smtpd_auth.c).
 *
 * DESCRIPTION
 *   EHLO offers PIPELINING, SIZE (max_message_size), 8BITMIME, SMTPUTF8,
 *   ENHANCEDSTATUSCODES, STARTTLS (with tls_cert, before TLS) and AUTH
 *   PLAIN LOGIN (after STARTTLS or on loopback, until authenticated).
 *   MAIL needs a session that may send: authenticated, or a client of
 *   smtp_relay_networks (as smtp_default_account); else 530 5.7.0, so
 *   nothing is ever relayed for a stranger.  MAIL also answers 452 4.3.1
 *   while the spool takes no writes and 552 5.3.4 for a SIZE over the
 *   limit.  RCPT takes any well-formed address (unknown or suppressed
 *   ones are the engine's to end, as events) up to smtp_max_recipients,
 *   then 452 4.5.3.  With bounce_domain set, a client that may not send
 *   still gets MAIL, and RCPT only for report addresses (smtpd_mx.c).
 *   Every reply carries an enhanced status code.
 *
 * DIAGNOSTICS
 *   Syntax errors 501 5.5.4 / 500 5.5.2, bad order 503 5.5.1, unsupported
 *   parameters 555 5.5.4; after SMTPD_MAX_ERRORS the session ends 421.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd_int.h"

const char *smtpd_hostname(const struct smtpd_conn *c)
{
    return c->srv->e->cfg.ehlo_hostname;
}

void smtpd_txn_reset(struct smtpd_conn *c)
{
    free(c->mail_from);
    c->mail_from = NULL;
    for (unsigned i = 0; i < c->nrcpt; i++)
        free(c->rcpts[i]);
    free(c->rcpts);
    c->rcpts = NULL;
    c->nrcpt = c->caprcpt = 0;
    smtpd_msg_free(c);
    c->msgseen = 0;
    c->in_mail = false;
    c->mx_txn = false;
}

/* Whether the line starts with the verb (case-insensitive), followed by
 * the end or a space; *rest then points past the spaces after it. */
static bool verb(char *line, const char *v, char **rest)
{
    size_t n = strlen(v);
    if (strncasecmp(line, v, n) || (line[n] && line[n] != ' '))
        return false;
    char *p = line + n;
    while (*p == ' ')
        p++;
    *rest = p;
    return true;
}

/* Parse "<path> params" (after FROM: or TO:): *addr the address without
 * brackets or source route, *params the rest.  false: syntax error. */
static bool parse_path(char *arg, char **addr, char **params)
{
    while (*arg == ' ')
        arg++;
    if (*arg != '<')
        return false;
    char *gt = strchr(arg, '>');
    if (!gt)
        return false;
    *gt = 0;
    char *a = arg + 1;
    if (*a == '@') {   /* a source route: @a,@b:user@domain */
        char *colon = strchr(a, ':');
        if (!colon)
            return false;
        a = colon + 1;
    }
    if (strpbrk(a, "<> \t"))
        return false;
    *addr = a;
    char *p = gt + 1;
    if (*p && *p != ' ')
        return false;
    while (*p == ' ')
        p++;
    *params = p;
    return true;
}

/* EHLO or HELO host. */
static void cmd_helo(struct smtpd_conn *c, char *arg, bool ehlo)
{
    if (!*arg) {
        c->errors++;
        smtpd_reply(c, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
        return;
    }
    smtpd_txn_reset(c);
    c->greeted = true;
    if (!ehlo) {
        smtpd_reply(c, "250 %s", smtpd_hostname(c));
        return;
    }
    const char *ext[8];
    char size[32];
    unsigned n = 0;
    snprintf(size, sizeof size, "SIZE %llu",
             (unsigned long long)c->srv->e->cfg.smtpd.max_message_size);
    ext[n++] = "PIPELINING";
    ext[n++] = size;
    ext[n++] = "8BITMIME";
    ext[n++] = "SMTPUTF8";
    ext[n++] = "ENHANCEDSTATUSCODES";
    if (c->srv->tls && !c->tls)
        ext[n++] = "STARTTLS";
    if (smtpd_auth_offered(c))
        ext[n++] = "AUTH PLAIN LOGIN";
    smtpd_reply(c, "250-%s", smtpd_hostname(c));
    for (unsigned i = 0; i < n; i++)
        smtpd_reply(c, "250%c%s", i + 1 < n ? '-' : ' ', ext[i]);
}

/* Who the session sends as, for MAIL: false after a reply saying no. */
static bool may_send(struct smtpd_conn *c)
{
    struct engine *e = c->srv->e;
    char why[256];
    if (c->authed)
        return true;
    if (!c->relay_ok && c->srv->mx) {
        c->mx_txn = true;   /* reports to the bounce domain only */
        return true;
    }
    if (!c->relay_ok) {
        smtpd_reply(c, "530 5.7.0 Authentication required");
        return false;
    }
    int err = queue_ingress_account(e->q, e->cfg.smtpd.default_account,
                                    &c->who, why, sizeof why);
    if (err == QUEUE_EPERM) {
        smtpd_reply(c, "550 5.7.1 %s", why);
        return false;
    }
    if (err) {
        fprintf(stderr, "sluiced: smtp: relay account: %s\n", why);
        smtpd_reply(c, "451 4.3.0 Error: the relay account cannot be read; "
                    "try again later");
        return false;
    }
    c->authed = true;
    return true;
}

/* The parameters of MAIL FROM: SIZE, BODY, SMTPUTF8, AUTH. */
static bool mail_params(struct smtpd_conn *c, char *p)
{
    char *save = NULL;
    for (char *t = strtok_r(p, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        if (eq)
            *eq++ = 0;
        if (!strcasecmp(t, "SIZE") && eq) {
            char *end;
            unsigned long long v = strtoull(eq, &end, 10);
            if (!*eq || *end || !isdigit((unsigned char)*eq)) {
                smtpd_reply(c, "501 5.5.4 Bad SIZE parameter");
                return false;
            }
            if (v > c->srv->e->cfg.smtpd.max_message_size) {
                smtpd_reply(c, "552 5.3.4 Message size exceeds fixed limit");
                return false;
            }
        } else if (!strcasecmp(t, "BODY") && eq) {
            if (strcasecmp(eq, "7BIT") && strcasecmp(eq, "8BITMIME")) {
                smtpd_reply(c, "501 5.5.4 Bad BODY parameter");
                return false;
            }
        } else if (!strcasecmp(t, "SMTPUTF8") && !eq) {
            /* taken: addresses and header may be UTF-8 */
        } else if (!strcasecmp(t, "AUTH") && eq) {
            /* RFC 4954 5: the submitter's identity; ours is the AUTH */
        } else {
            smtpd_reply(c, "555 5.5.4 Unsupported option: %.64s", t);
            return false;
        }
    }
    return true;
}

/* MAIL FROM:<addr> params. */
static void cmd_mail(struct smtpd_conn *c, char *arg)
{
    char *addr, *params;
    struct engine *e = c->srv->e;
    if (!c->greeted) {
        smtpd_reply(c, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (c->in_mail) {
        smtpd_reply(c, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) || !parse_path(arg + 5, &addr, &params)) {
        c->errors++;
        smtpd_reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    if (!may_send(c))
        return;
    if (engine_draining(e)) {
        smtpd_reply(c, "421 4.3.2 %s Error: shutting down; try again later",
                    smtpd_hostname(c));
        smtpd_close_after_reply(c);
        return;
    }
    if (!engine_spool_writable(e)) {
        smtpd_reply(c, "452 4.3.1 Insufficient system storage; try again "
                    "later");
        return;
    }
    if (*addr && (strlen(addr) > QUEUE_MAX_RCPT || queue_check_rcpt(addr))) {
        smtpd_reply(c, "501 5.1.7 Bad sender address syntax");
        return;
    }
    if (!mail_params(c, params))
        return;
    if (!(c->mail_from = strdup(addr))) {
        smtpd_reply(c, "451 4.3.0 Error: out of memory");
        return;
    }
    c->in_mail = true;
    smtpd_reply(c, "250 2.1.0 Ok");
}

/* RCPT TO:<addr>. */
static void cmd_rcpt(struct smtpd_conn *c, char *arg)
{
    char *addr, *params;
    unsigned max = c->srv->e->cfg.smtpd.max_recipients;
    if (!c->in_mail) {
        smtpd_reply(c, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) || !parse_path(arg + 3, &addr, &params)) {
        c->errors++;
        smtpd_reply(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (*params) {
        smtpd_reply(c, "555 5.5.4 Unsupported option: %.64s", params);
        return;
    }
    if (!*addr || strlen(addr) > QUEUE_MAX_RCPT || queue_check_rcpt(addr)) {
        smtpd_reply(c, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    if (c->mx_txn) {
        int m = smtpd_mx_rcpt(c, addr);
        if (m == SMTPD_MX_FORGED) {
            smtpd_reply(c, "550 5.7.1 Error: the bounce address does not "
                        "verify");
            return;
        }
        if (m != SMTPD_MX_OURS) {
            smtpd_reply(c, "550 5.7.1 Error: relay access denied "
                        "(authenticate to send mail)");
            return;
        }
    }
    if (c->nrcpt >= max) {
        smtpd_reply(c, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (c->nrcpt == c->caprcpt) {
        unsigned ncap = c->caprcpt ? 2 * c->caprcpt : 8;
        if (ncap > max)
            ncap = max;
        char **nr = realloc(c->rcpts, ncap * sizeof *nr);
        if (!nr) {
            smtpd_reply(c, "452 4.3.1 Error: out of memory");
            return;
        }
        c->rcpts = nr;
        c->caprcpt = ncap;
    }
    if (!(c->rcpts[c->nrcpt] = strdup(addr))) {
        smtpd_reply(c, "452 4.3.1 Error: out of memory");
        return;
    }
    c->nrcpt++;
    smtpd_reply(c, "250 2.1.5 Ok");
}

/* DATA. */
static void cmd_data(struct smtpd_conn *c, char *arg)
{
    if (*arg) {
        c->errors++;
        smtpd_reply(c, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (!c->in_mail) {
        smtpd_reply(c, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (!c->nrcpt) {
        smtpd_reply(c, "554 5.5.1 Error: no valid recipients");
        return;
    }
    smtpd_reply(c, "354 End data with <CR><LF>.<CR><LF>");
    smtpd_data_begin(c);
}

/* STARTTLS. */
static void cmd_starttls(struct smtpd_conn *c, char *arg)
{
    if (*arg) {
        smtpd_reply(c, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (!c->srv->tls || c->tls) {
        smtpd_reply(c, c->tls ? "554 5.5.1 Error: TLS already active"
                              : "502 5.5.1 Error: command not implemented");
        return;
    }
    smtpd_txn_reset(c);
    smtpd_reply(c, "220 2.0.0 Ready to start TLS");
    smtpd_start_tls(c);
}

void smtpd_command(struct smtpd_conn *c, char *line, size_t len)
{
    char *arg;
    (void)len;
    if (verb(line, "EHLO", &arg))
        cmd_helo(c, arg, true);
    else if (verb(line, "HELO", &arg))
        cmd_helo(c, arg, false);
    else if (verb(line, "MAIL", &arg))
        cmd_mail(c, arg);
    else if (verb(line, "RCPT", &arg))
        cmd_rcpt(c, arg);
    else if (verb(line, "DATA", &arg))
        cmd_data(c, arg);
    else if (verb(line, "AUTH", &arg))
        smtpd_auth_start(c, arg);
    else if (verb(line, "STARTTLS", &arg))
        cmd_starttls(c, arg);
    else if (verb(line, "RSET", &arg)) {
        smtpd_txn_reset(c);
        smtpd_reply(c, "250 2.0.0 Ok");
    } else if (verb(line, "NOOP", &arg))
        smtpd_reply(c, "250 2.0.0 Ok");
    else if (verb(line, "VRFY", &arg))
        smtpd_reply(c, "252 2.5.2 Cannot VRFY user");
    else if (verb(line, "HELP", &arg))
        smtpd_reply(c, "214 2.0.0 See RFC 5321");
    else if (verb(line, "QUIT", &arg)) {
        smtpd_reply(c, "221 2.0.0 Bye");
        smtpd_close_after_reply(c);
    } else {
        c->errors++;
        smtpd_reply(c, "500 5.5.2 Error: command not recognized");
    }
}
