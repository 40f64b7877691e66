/*
 * cmd_campaign_render.c - campaign templates in the tools: compiling them
 * the way sluiced does, and the commands that render one message.
 *
 * SYNOPSIS
 *   campaign preview ID --contact EMAIL [--config FILE] [--json]
 *   campaign test ID --to ADDR [--config FILE] [--json]
 *
 * DESCRIPTION
 *   Both render with render_compile() / render_message() from the stored
 *   template, the account's header and footer and the spool's token
 *   secret, like the engine at send time.  What the engine takes from
 *   sluiced.conf (unsubscribe host, bounce domain, Feedback-ID sender)
 *   comes from --config FILE or $SLUICE_CONFIG ([sluiced] section);
 *   without one the unsubscribe host is $SLUICE_UNSUB_HOST or the From
 *   domain, and bounces go to the From domain.
 *
 *   `preview` prints the message for one contact of the campaign's list
 *   (Message-ID and tokens made for delivery 0) and the envelope sender on
 *   stderr, or both in --json.  `test` renders for the list's contact with
 *   address ADDR, or a contact with only that address when the list has
 *   none, and queues it as a raw message of the campaign's account (signed
 *   and sent by sluiced like any message); it prints the delivery id and is
 *   written to the audit trail.
 *
 *   Who may: preview needs viewer on the campaign's account, test sender.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 a template or setting that does not compile, 66 an
 *   unknown campaign or a contact not in the list, 77 refused (role,
 *   disabled account, From domain not verified), 78 a configuration file
 *   that cannot be read.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_campaign.h"

/* ------------------------------------------------------ configuration */

struct cfg_read {
    struct camp_render_cfg *cfg;
    char ehlo[256];
    bool bad;
    char why[160];
};

/* inih callback: the [sluiced] keys a message depends on. */
static int cfg_key(void *user, const char *section, const char *name,
                   const char *value)
{
    struct cfg_read *r = user;
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(section, "sluiced"))
        return 1;
    if (!strcmp(name, "unsubscribe_host")) {
        dst = r->cfg->unsub_host;
        cap = sizeof r->cfg->unsub_host;
    } else if (!strcmp(name, "bounce_domain")) {
        dst = r->cfg->bounce_domain;
        cap = sizeof r->cfg->bounce_domain;
    } else if (!strcmp(name, "feedback_sender")) {
        dst = r->cfg->feedback_sender;
        cap = sizeof r->cfg->feedback_sender;
    } else if (!strcmp(name, "ehlo_hostname")) {
        dst = r->ehlo;
        cap = sizeof r->ehlo;
    } else {
        return 1;
    }
    if (strlen(value) >= cap) {
        r->bad = true;
        snprintf(r->why, sizeof r->why, "[sluiced] %s is too long", name);
        return 0;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 1;
}

int camp_render_cfg_load(const char *prog, const char *path,
                         struct camp_render_cfg *cfg)
{
    struct cfg_read r = { .cfg = cfg };
    memset(cfg, 0, sizeof *cfg);
    if (!path || !*path)
        path = getenv("SLUICE_CONFIG");
    if (!path || !*path) {
        const char *h = getenv("SLUICE_UNSUB_HOST");
        if (h && strlen(h) < sizeof cfg->unsub_host)
            memcpy(cfg->unsub_host, h, strlen(h) + 1);
        return 0;
    }
    int rc = ini_parse(path, cfg_key, &r);
    if (rc < 0 || r.bad || rc > 0) {
        if (rc < 0)
            fprintf(stderr, "%s: %s: cannot read the configuration\n", prog,
                    path);
        else
            fprintf(stderr, "%s: %s:%d: %s\n", prog, path, rc,
                    r.bad ? r.why : "cannot parse");
        return TOOL_EX_CONFIG;
    }
    if (!cfg->unsub_host[0])
        memcpy(cfg->unsub_host, r.ehlo, sizeof r.ehlo);
    return 0;
}

/* -------------------------------------------------------- compiling */

bool camp_from_domain(const char *from, char *out, size_t cap)
{
    const char *lt = strrchr(from, '<'), *a0 = from, *a1;
    if (lt) {
        a0 = lt + 1;
        a1 = strchr(a0, '>');
        if (!a1)
            return false;
    } else {
        a1 = from + strlen(from);
    }
    while (a0 < a1 && isspace((unsigned char)*a0))
        a0++;
    while (a1 > a0 && isspace((unsigned char)a1[-1]))
        a1--;
    const char *at = NULL;
    for (const char *p = a0; p < a1; p++)
        if (*p == '@')
            at = p;
    if (!at || at + 1 >= a1 || (size_t)(a1 - at - 1) >= cap)
        return false;
    size_t n = 0;
    for (const char *p = at + 1; p < a1; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    out[n] = 0;
    return true;
}

bool camp_domain_verified(struct queue *q, const char *domain,
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

int camp_may_send(struct tool_ctx *ctx, struct queue *q, int act,
                  const struct queue_campaign *c,
                  const struct queue_account *a)
{
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], dom[QUEUE_MAX_DOMAIN + 2];
    char why[QUEUE_MAX_DOMAIN + QUEUE_MAX_ACCOUNT_NAME + 120];
    camp_object(c, obj, sizeof obj);
    if (a->disabled) {
        snprintf(why, sizeof why, "account %s is disabled", a->name);
        return tool_refuse(ctx, q, act, a->id, obj, why);
    }
    if (!camp_from_domain(c->from, dom, sizeof dom)) {
        snprintf(why, sizeof why, "the From address of campaign %llu has "
                 "no domain", (unsigned long long)c->id);
        return tool_refuse(ctx, q, act, a->id, obj, why);
    }
    if (!camp_domain_verified(q, dom, a->id)) {
        snprintf(why, sizeof why, "From domain %s is not a verified sending "
                 "domain of account %s", dom, a->name);
        return tool_refuse(ctx, q, act, a->id, obj, why);
    }
    return 0;
}

int camp_compile(struct queue *q, const struct queue_campaign *c,
                 const struct queue_account *a,
                 const struct camp_render_cfg *cfg, struct render_tpl **out,
                 char *err, size_t errlen)
{
    unsigned char secret[QUEUE_TOKEN_SECRET];
    char host[300] = "";
    int rc = queue_token_secret(q, secret);
    if (rc) {
        snprintf(err, errlen, "the spool's token secret: %s",
                 queue_strerror(rc));
        return rc;
    }
    if (cfg->unsub_host[0])
        snprintf(host, sizeof host, "%s", cfg->unsub_host);
    else if (!camp_from_domain(c->from, host, sizeof host))
        snprintf(host, sizeof host, "invalid");  /* from fails first */
    struct render_input in = {
        .campaign = c->id, .account = c->account, .list = c->list,
        .from = c->from, .reply_to = c->reply_to[0] ? c->reply_to : NULL,
        .subject = c->subject, .html = c->html ? c->html : "",
        .text = c->text,
        .header_html = a && a->header[0] ? a->header : NULL,
        .footer_html = a && a->footer[0] ? a->footer : NULL,
        .unsub_host = host,
        .bounce_domain = cfg->bounce_domain[0] ? cfg->bounce_domain : NULL,
        .feedback_sender = cfg->feedback_sender[0] ? cfg->feedback_sender
                                                   : NULL,
        .secret = secret, .secret_len = sizeof secret,
    };
    err[0] = 0;
    rc = render_compile(&in, out, err, errlen);
    if (rc && !err[0])
        snprintf(err, errlen, "%s", render_strerror(rc));
    return rc;
}

/* ------------------------------------------------------ one message */

/* A contact copied out of its callback, as render_contact wants it. */
struct contact_copy {
    bool found;
    uint64_t id;
    char email[QUEUE_MAX_RCPT + 1];
    size_t nfields;
    struct render_field f[QUEUE_MAX_FIELDS];
    char *store;                      /* names and values */
};

/* queue_contact_find() callback: copy c. */
static void copy_contact(void *arg, const struct queue_contact *c)
{
    struct contact_copy *cc = arg;
    size_t need = 0;
    for (unsigned i = 0; i < c->nvalues; i++)
        need += strlen(c->names[i]) + 1 + c->lens[i] + 1;
    if (!(cc->store = malloc(need + 1)))
        return;
    char *p = cc->store;
    for (unsigned i = 0; i < c->nvalues; i++) {
        size_t nl = strlen(c->names[i]);
        memcpy(p, c->names[i], nl + 1);
        cc->f[i].name = p;
        p += nl + 1;
        memcpy(p, c->values[i], c->lens[i]);
        p[c->lens[i]] = 0;
        cc->f[i].value = p;
        cc->f[i].value_len = c->lens[i];
        p += c->lens[i] + 1;
    }
    cc->nfields = c->nvalues;
    cc->id = c->id;
    snprintf(cc->email, sizeof cc->email, "%s", c->email);
    cc->found = true;
}

/* Look email up in list into cc; 0, or an exit code when required and
 * absent (66) or the lookup failed. */
static int find_contact(const char *prog, struct queue *q, uint64_t list,
                        const char *email, bool required,
                        struct contact_copy *cc)
{
    int err = queue_contact_find(q, list, email, copy_contact, cc);
    if (err == 0 && !cc->found)
        err = -ENOMEM;
    if (err == QUEUE_ENOTFOUND && !required)
        return 0;
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "%s: %s is not a contact of list %llu\n", prog,
                email, (unsigned long long)list);
        return TOOL_EX_NOINPUT;
    }
    if (err == -EINVAL) {
        fprintf(stderr, "%s: invalid address '%.80s'\n", prog, email);
        return TOOL_EX_USAGE;
    }
    if (err) {
        fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        return tool_exit_for(err);
    }
    return 0;
}

/* Render cc (delivery 0) for cmd's campaign; 0 or an exit code. */
static int render_one(const char *prog, struct camp_cmd *cmd,
                      const struct camp_render_cfg *cfg,
                      const struct contact_copy *cc, char **msg, size_t *len,
                      char *mail_from, size_t mflen)
{
    struct render_tpl *tpl;
    char err[300];
    int rc = camp_compile(cmd->q, &cmd->c, cmd->a, cfg, &tpl, err,
                          sizeof err);
    if (rc) {
        fprintf(stderr, "%s: campaign %llu does not compile: %s\n", prog,
                (unsigned long long)cmd->c.id, err);
        return rc == RENDER_E_SYNTAX || rc == RENDER_E_ARG ||
               rc == RENDER_E_TOOBIG ? TOOL_EX_DATAERR : TOOL_EX_SOFTWARE;
    }
    struct render_contact rc_ = {
        .id = cc->id, .delivery = RENDER_PREVIEW_DELIVERY,
        .email = cc->email, .fields = cc->f, .nfields = cc->nfields,
    };
    rc = render_message(tpl, &rc_, msg, len, mail_from, mflen);
    render_free(tpl);
    if (rc) {
        fprintf(stderr, "%s: cannot render for %s: %s\n", prog, cc->email,
                render_strerror(rc));
        return rc == RENDER_E_ADDR || rc == RENDER_E_TOOBIG
            ? TOOL_EX_DATAERR : TOOL_EX_SOFTWARE;
    }
    return 0;
}

static const char preview_usage[] =
    "usage: sluice campaign preview ID --contact EMAIL [--account A] "
    "[--config FILE] [--json]\n";

/* `campaign preview`: one contact's message on stdout. */
int camp_cmd_preview(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *contact = NULL, *acct = NULL, *conf = NULL, *spec = NULL;
    const char *prog = CAMP_P " preview";
    bool bad = false;
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct contact_copy cc = { 0 };
    char mail_from[RENDER_MAILFROM_MAX], *msg = NULL;
    size_t len;
    int rc;

    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--contact", &contact, &bad) &&
            !tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--config", &conf, &bad)) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec || !contact) {
        fprintf(stderr, "%s", preview_usage);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(prog, conf, &cfg)))
        return rc;
    if ((rc = camp_begin(ctx, prog, ACT_CAMPAIGN_PREVIEW, spec, acct, &cmd)))
        return rc;
    if ((rc = find_contact(prog, cmd.q, cmd.c.list, contact, true, &cc)) ||
        (rc = render_one(prog, &cmd, &cfg, &cc, &msg, &len, mail_from,
                         sizeof mail_from)))
        goto out;
    if (ctx->json) {
        tool_emit_json(json_pack("{s:I,s:I,s:s,s:s,s:s%}", "campaign",
                                 (json_int_t)cmd.c.id, "contact",
                                 (json_int_t)cc.id, "email", cc.email,
                                 "mail_from", mail_from, "message", msg,
                                 len));
    } else {
        fprintf(stderr, "envelope sender: %s\n", mail_from);
        fwrite(msg, 1, len, stdout);
    }
out:
    free(msg);
    free(cc.store);
    camp_end(&cmd);
    return rc;
}

static const char test_usage[] =
    "usage: sluice campaign test ID --to ADDR [--account A] "
    "[--config FILE] [--json]\n";

/* `campaign test`: render for one address and queue it as a message. */
int camp_cmd_test(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *to = NULL, *acct = NULL, *conf = NULL, *spec = NULL;
    const char *prog = CAMP_P " test";
    bool bad = false;
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct contact_copy cc = { 0 };
    char mail_from[RENDER_MAILFROM_MAX], *msg = NULL;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    size_t len;
    uint64_t first = 0, msg_id = 0;
    int rc;

    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--to", &to, &bad) &&
            !tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--config", &conf, &bad)) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec || !to) {
        fprintf(stderr, "%s", test_usage);
        return TOOL_EX_USAGE;
    }
    if (queue_check_rcpt(to)) {
        fprintf(stderr, "%s: invalid address '%.80s'\n", prog, to);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(prog, conf, &cfg)))
        return rc;
    if ((rc = camp_begin(ctx, prog, ACT_CAMPAIGN_TEST, spec, acct, &cmd)))
        return rc;
    if ((rc = camp_may_send(ctx, cmd.q, ACT_CAMPAIGN_TEST, &cmd.c, cmd.a)) ||
        (rc = find_contact(prog, cmd.q, cmd.c.list, to, false, &cc)))
        goto out;
    if (!cc.found) {
        /* not in the list: a contact with only the address */
        snprintf(cc.email, sizeof cc.email, "%s", to);
        char *at = strrchr(cc.email, '@');
        for (char *p = at; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    if ((rc = render_one(prog, &cmd, &cfg, &cc, &msg, &len, mail_from,
                         sizeof mail_from)))
        goto out;
    const char *rcpt = cc.email;
    int err = queue_enqueue_message(cmd.q, cmd.c.account, mail_from, &rcpt,
                                    1, msg, len, &first, &msg_id);
    if (err) {
        fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        rc = tool_exit_for(err);
        goto out;
    }
    snprintf(obj, sizeof obj, "campaign %llu (%.127s) to %.80s%s, delivery "
             "%llu", (unsigned long long)cmd.c.id, cmd.c.name, cc.email,
             cc.found ? "" : " (not in the list)", (unsigned long long)first);
    struct queue_actor by = tool_actor(ctx, cmd.role, cmd.c.account);
    if ((err = queue_audit_append(cmd.q, &by, cmd.c.account, "campaign test",
                                  obj, "ok")))
        fprintf(stderr, "%s: queued, but the audit record failed: %s\n",
                prog, queue_strerror(err));
    if (ctx->json)
        tool_emit_json(json_pack("{s:I,s:I,s:I,s:s,s:b,s:s}", "campaign",
                                 (json_int_t)cmd.c.id, "delivery",
                                 (json_int_t)first, "message",
                                 (json_int_t)msg_id, "to", cc.email,
                                 "in_list", cc.found, "mail_from",
                                 mail_from));
    else
        printf("queued a test of campaign %llu to %s as delivery %llu%s\n",
               (unsigned long long)cmd.c.id, cc.email,
               (unsigned long long)first,
               cc.found ? "" : " (not in the list: only {{email}} is set)");
out:
    free(msg);
    free(cc.store);
    camp_end(&cmd);
    return rc;
}
