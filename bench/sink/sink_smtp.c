/*
 * sink_smtp.c - the SMTP server state machine of sluice-sink: greeting,
 * commands and replies.
 *
 * Every state change goes through sink_smtp_enter(), which logs
 * "old -> new" with --verbose.  Commands are dispatched by verb; each
 * handler queues its reply with sink_session_reply(), so replies to
 * pipelined commands leave in one write.  The fault modes that change the
 * greeting or the replies (garbage, multiline-mismatch, overlong, drip,
 * greet-421, greet-554, no-greeting) live here; per-recipient scripting is
 * in sink_policy.c and message content in sink_data.c.
 *
 * Failures: a malformed command gets a 5xx reply and the session goes on;
 * only a buffer cap or a write error closes it (in sink_session.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink.h"

#define SINK_OVERLONG_LEN (100 * 1024)

static const char *const state_names[] = {
    [SINK_ST_GREETING] = "GREETING", [SINK_ST_INIT] = "INIT",
    [SINK_ST_READY] = "READY",       [SINK_ST_MAIL] = "MAIL",
    [SINK_ST_RCPT] = "RCPT",         [SINK_ST_DATA] = "DATA",
    [SINK_ST_REFUSED] = "REFUSED",   [SINK_ST_CLOSING] = "CLOSING",
};

/* Move the session to a new state, logging the change with --verbose. */
void sink_smtp_enter(struct sink_session *s, enum sink_state st)
{
    if (s->srv->cfg.verbose && s->state != st)
        sink_log("session %llu: %s -> %s", (unsigned long long)s->id,
                 state_names[s->state], state_names[st]);
    s->state = st;
}

/* Queue a reply, or a garbage line instead in --mode garbage. */
static void say(struct sink_session *s, const char *text)
{
    if (s->srv->cfg.mode == SINK_MODE_GARBAGE)
        text = "this is not an SMTP reply at all\r\n<html>oops</html>\r\n";
    sink_session_reply(s, text);
}

/* Count and answer a command that breaks the protocol. */
static void say_error(struct sink_session *s, const char *text)
{
    s->srv->stats.protocol_errors++;
    say(s, text);
}

/* Forget the current transaction (MAIL, RCPTs, content). */
void sink_smtp_reset_transaction(struct sink_session *s)
{
    s->mail_from[0] = '\0';
    s->mail_params[0] = '\0';
    s->smtputf8 = false;
    s->nrcpt = 0;
    s->drop_after_data = false;
    sink_buf_reset(&s->rcpts, 64 * 1024);
    sink_buf_reset(&s->body, 1024 * 1024);
}

/* Send the next greeting byte in --mode drip; resume when all are sent. */
static void drip_step(struct sink_session *s)
{
    char one[2] = { s->drip[0], '\0' };

    sink_session_reply(s, one);
    sink_session_flush(s);
    s->drip++;
    if (--s->drip_left > 0) {
        sink_session_pause(s, s->srv->cfg.drip_ms);
        return;
    }
    sink_smtp_enter(s, SINK_ST_INIT);
    sink_input_resume(s);
}

/* Greet a new session as the --mode says. */
void sink_smtp_greet(struct sink_session *s)
{
    struct sink_server *srv = s->srv;
    char *big;

    if (srv->greeting[0] == '\0')
        snprintf(srv->greeting, sizeof(srv->greeting),
                 "220 %s ESMTP sluice-sink\r\n", srv->cfg.hostname);
    switch (srv->cfg.mode) {
    case SINK_MODE_GREET_421:
        sink_session_reply(s, "421 4.3.2 service not available\r\n");
        sink_session_quit(s);
        return;
    case SINK_MODE_GREET_554:
        sink_session_reply(s, "554 5.3.2 no SMTP service here\r\n");
        sink_smtp_enter(s, SINK_ST_REFUSED);
        return;
    case SINK_MODE_NO_GREETING:
        s->in = SINK_IN_DISCARD;
        return;
    case SINK_MODE_DRIP:
        s->drip = srv->greeting;
        s->drip_left = strlen(srv->greeting);
        drip_step(s);
        return;
    case SINK_MODE_OVERLONG:
        big = malloc(SINK_OVERLONG_LEN + 8);
        if (big == NULL) {
            sink_session_close(s);
            return;
        }
        memcpy(big, "220 ", 4);
        memset(big + 4, 'x', SINK_OVERLONG_LEN);
        memcpy(big + 4 + SINK_OVERLONG_LEN, "\r\n", 3);
        sink_session_reply(s, big);
        free(big);
        break;
    default:
        sink_session_reply(s, srv->greeting);
        break;
    }
    sink_smtp_enter(s, SINK_ST_INIT);
}

/* The session timer fired: next drip byte, or the held slow RCPT reply. */
void sink_smtp_timer_fired(struct sink_session *s)
{
    if (s->state == SINK_ST_GREETING && s->drip_left > 0) {
        drip_step(s);
        return;
    }
    if (s->pending_reply != NULL) {
        say(s, s->pending_reply);
        free(s->pending_reply);
        s->pending_reply = NULL;
    }
    sink_input_resume(s);
}

/* Answer EHLO (multiline) or HELO. */
static void cmd_hello(struct sink_session *s, char *arg, bool esmtp)
{
    const struct sink_config *cfg = &s->srv->cfg;
    char reply[1024];
    const char *c = "250";

    if (*arg == '\0') {
        say_error(s, "501 5.5.4 syntax: EHLO/HELO hostname\r\n");
        return;
    }
    sink_smtp_reset_transaction(s);
    s->esmtp = esmtp;
    if (!s->hello_counted) {
        s->hello_counted = true;      /* once, STARTTLS's second EHLO too */
        s->srv->stats.smtp_sessions++;
    }
    sink_smtp_enter(s, SINK_ST_READY);
    if (!esmtp) {
        snprintf(reply, sizeof(reply), "250 %s\r\n", cfg->hostname);
        say(s, reply);
        return;
    }
    if (cfg->mode == SINK_MODE_MULTILINE_MISMATCH)
        c = "251";
    snprintf(reply, sizeof(reply),
             "250-%s greets %.64s\r\n%s-PIPELINING\r\n%s-SIZE %llu\r\n"
             "%s%s%s%s%s%s"
             "250 ENHANCEDSTATUSCODES\r\n",
             cfg->hostname, arg, c, c, (unsigned long long)cfg->max_size,
             cfg->no_8bitmime ? "" : c,
             cfg->no_8bitmime ? "" : "-8BITMIME\r\n",
             cfg->no_smtputf8 ? "" : c,
             cfg->no_smtputf8 ? "" : "-SMTPUTF8\r\n",
             (cfg->starttls && s->ssl == NULL) ? c : "",
             (cfg->starttls && s->ssl == NULL) ? "-STARTTLS\r\n" : "");
    say(s, reply);
}

/* Parse "<path> params" into out; *rest gets the parameters. */
static int parse_path(char *arg, char *out, size_t cap, char **rest)
{
    char *end;
    size_t len;

    while (*arg == ' ')
        arg++;
    if (*arg == '<') {
        arg++;
        end = strchr(arg, '>');
        if (end == NULL)
            return -1;
        *rest = end + 1;
    } else {
        end = arg + strcspn(arg, " ");   /* lenient: a bare address */
        *rest = end;
    }
    if (*arg == '@') {                    /* source route: @a,@b:user@d */
        char *colon = memchr(arg, ':', (size_t)(end - arg));
        if (colon == NULL)
            return -1;
        arg = colon + 1;
    }
    len = (size_t)(end - arg);
    if (len >= cap || memchr(arg, '<', len) != NULL)
        return -1;
    memcpy(out, arg, len);
    out[len] = '\0';
    return 0;
}

/* Whether a path holds octets >= 0x80 (UTF-8: needs SMTPUTF8). */
static bool path_8bit(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return true;
    return false;
}

/* Whether the MAIL parameters hold the keyword kw (no value). */
static bool has_keyword(const char *params, const char *kw)
{
    size_t n = strlen(kw);
    for (const char *p = params; (p = strcasestr(p, kw)) != NULL; p += n)
        if ((p == params || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

/* Check the SIZE= parameter of MAIL against --max-size. */
static bool size_param_ok(const struct sink_session *s, const char *params)
{
    const char *p = params;

    while ((p = strcasestr(p, "SIZE=")) != NULL) {
        if (p == params || p[-1] == ' ') {
            unsigned long long v = strtoull(p + 5, NULL, 10);
            return v <= s->srv->cfg.max_size;
        }
        p += 5;
    }
    return true;
}

/* MAIL FROM:<path> [params] */
static void cmd_mail(struct sink_session *s, char *arg)
{
    char *rest;

    if (s->state == SINK_ST_INIT) {
        say_error(s, "503 5.5.1 send EHLO/HELO first\r\n");
        return;
    }
    if (s->state != SINK_ST_READY) {
        say_error(s, "503 5.5.1 nested MAIL command\r\n");
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0 ||
        parse_path(arg + 5, s->mail_from, sizeof(s->mail_from), &rest)) {
        say_error(s, "501 5.5.4 syntax: MAIL FROM:<address>\r\n");
        return;
    }
    if (!size_param_ok(s, rest)) {
        say(s, "552 5.3.4 message size exceeds fixed limit\r\n");
        return;
    }
    if (s->srv->cfg.no_8bitmime && strcasestr(rest, "BODY=8BITMIME")) {
        say(s, "555 5.5.4 BODY=8BITMIME is not offered here\r\n");
        return;
    }
    s->smtputf8 = has_keyword(rest, "SMTPUTF8");
    if (s->smtputf8 && s->srv->cfg.no_smtputf8) {
        s->smtputf8 = false;
        say(s, "555 5.5.4 SMTPUTF8 is not offered here\r\n");
        return;
    }
    if (!s->smtputf8 && path_8bit(s->mail_from)) {
        say(s, "553 5.6.7 a UTF-8 address needs SMTPUTF8\r\n");
        return;
    }
    while (*rest == ' ')
        rest++;
    snprintf(s->mail_params, sizeof(s->mail_params), "%s", rest);
    s->srv->stats.transactions++;
    sink_smtp_enter(s, SINK_ST_MAIL);
    s->mails++;
    say(s, "250 2.1.0 Ok\r\n");
}

/* Remember an accepted recipient and its domain for the message. */
static int rcpt_keep(struct sink_session *s, const char *addr,
                     struct sink_domain *dom)
{
    if (s->nrcpt == s->rcpt_dom_cap) {
        size_t ncap = s->rcpt_dom_cap ? s->rcpt_dom_cap * 2 : 8;
        struct sink_domain **nd = realloc(s->rcpt_dom, ncap * sizeof(*nd));
        if (nd == NULL)
            return UV_ENOMEM;
        s->rcpt_dom = nd;
        s->rcpt_dom_cap = ncap;
    }
    if (sink_buf_append(&s->rcpts, addr, strlen(addr) + 1) != 0)
        return UV_ENOBUFS;
    s->rcpt_dom[s->nrcpt++] = dom;
    return 0;
}

/* RCPT TO:<path> [params], answered as the recipient script says. */
static void cmd_rcpt(struct sink_session *s, char *arg)
{
    char addr[SINK_ADDR_MAX + 1];
    char *rest, *at;
    const char *reply;
    struct sink_domain *dom;
    bool accepted = false, slow = false;

    if (s->state != SINK_ST_MAIL && s->state != SINK_ST_RCPT) {
        say_error(s, "503 5.5.1 need MAIL before RCPT\r\n");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0 ||
        parse_path(arg + 3, addr, sizeof(addr), &rest) != 0 ||
        addr[0] == '\0') {
        say_error(s, "501 5.5.4 syntax: RCPT TO:<address>\r\n");
        return;
    }
    if (!s->smtputf8 && path_8bit(addr)) {
        say(s, "553 5.6.7 a UTF-8 address needs SMTPUTF8\r\n");
        return;
    }
    if (s->nrcpt >= s->srv->cfg.max_rcpt) {
        say(s, "452 4.5.3 too many recipients\r\n");
        return;
    }
    sink_seen_rcpt(&s->srv->stats, addr);
    at = strrchr(addr, '@');
    dom = at ? sink_domain_get(&s->srv->stats.by_domain, at + 1,
                               strlen(at + 1))
             : sink_domain_get(&s->srv->stats.by_domain, "", 0);
    if (at != NULL)
        *at = '\0';
    reply = sink_policy_rcpt(s, addr, &accepted, &slow);
    if (at != NULL)
        *at = '@';
    if (!accepted) {
        sink_stats_rcpt_failed(&s->srv->stats, s, dom, reply[0] == '4');
        say(s, reply);
        return;
    }
    if (rcpt_keep(s, addr, dom) != 0) {
        say(s, "452 4.3.1 out of memory\r\n");
        return;
    }
    sink_smtp_enter(s, SINK_ST_RCPT);
    if (slow) {
        free(s->pending_reply);
        s->pending_reply = strdup(reply);
        sink_session_pause(s, s->srv->cfg.slow_ms);
        return;
    }
    say(s, reply);
}

/* DATA: start receiving content if there is someone to deliver it to. */
static void cmd_data(struct sink_session *s, char *arg)
{
    if (*arg != '\0') {
        say_error(s, "501 5.5.4 syntax: DATA\r\n");
        return;
    }
    if (s->state == SINK_ST_MAIL) {
        say_error(s, "554 5.5.1 no valid recipients\r\n");
        return;
    }
    if (s->state != SINK_ST_RCPT) {
        say_error(s, "503 5.5.1 need MAIL and RCPT before DATA\r\n");
        return;
    }
    say(s, "354 End data with <CR><LF>.<CR><LF>\r\n");
    sink_smtp_enter(s, SINK_ST_DATA);
    sink_data_begin(s);
}

/* STARTTLS: answer 220, then TLS starts at the end of this batch. */
static void cmd_starttls(struct sink_session *s, char *arg)
{
    if (!s->srv->cfg.starttls) {
        say_error(s, "502 5.5.1 STARTTLS not offered\r\n");
        return;
    }
    if (s->ssl != NULL) {
        say_error(s, "503 5.5.1 TLS already active\r\n");
        return;
    }
    if (*arg != '\0') {
        say_error(s, "501 5.5.4 syntax: STARTTLS\r\n");
        return;
    }
    if (s->state == SINK_ST_INIT) {
        say_error(s, "503 5.5.1 send EHLO first\r\n");
        return;
    }
    say(s, "220 2.0.0 Ready to start TLS\r\n");
    sink_smtp_reset_transaction(s);
    sink_smtp_enter(s, SINK_ST_INIT);
    s->esmtp = false;
    s->in = SINK_IN_DISCARD;
    s->starttls_pending = true;
}

/* Handle one command line (CRLF stripped, NUL-terminated). */
void sink_smtp_command(struct sink_session *s, char *line, size_t len)
{
    size_t vlen = strcspn(line, " ");
    char *arg = line + vlen;

    while (*arg == ' ')
        arg++;
    if (s->state == SINK_ST_REFUSED) {
        if (vlen == 4 && strncasecmp(line, "QUIT", 4) == 0) {
            sink_session_reply(s, "221 2.0.0 Bye\r\n");
            sink_session_quit(s);
        } else {
            sink_session_reply(s, "503 5.5.1 no SMTP service here\r\n");
        }
        return;
    }
#define VERB(name) (vlen == sizeof(name) - 1 && \
                    strncasecmp(line, name, sizeof(name) - 1) == 0)
    if (VERB("EHLO")) {
        cmd_hello(s, arg, true);
    } else if (VERB("HELO")) {
        cmd_hello(s, arg, false);
    } else if (VERB("MAIL")) {
        cmd_mail(s, arg);
    } else if (VERB("RCPT")) {
        cmd_rcpt(s, arg);
    } else if (VERB("DATA")) {
        cmd_data(s, arg);
    } else if (VERB("RSET")) {
        sink_smtp_reset_transaction(s);
        if (s->state != SINK_ST_INIT)
            sink_smtp_enter(s, SINK_ST_READY);
        say(s, "250 2.0.0 Ok\r\n");
    } else if (VERB("NOOP")) {
        say(s, "250 2.0.0 Ok\r\n");
    } else if (VERB("QUIT")) {
        say(s, "221 2.0.0 Bye\r\n");
        sink_session_quit(s);
    } else if (VERB("STARTTLS")) {
        cmd_starttls(s, arg);
    } else if (VERB("VRFY")) {
        say(s, "252 2.5.2 cannot VRFY user\r\n");
    } else if (VERB("HELP")) {
        say(s, "214 2.0.0 sluice-sink: EHLO HELO MAIL RCPT DATA RSET NOOP "
               "QUIT STARTTLS\r\n");
    } else {
        say_error(s, "500 5.5.2 command unrecognized\r\n");
    }
#undef VERB
}
