/*
 * cmd_campaign_render.c - campaign templates in the tools: compiling them
 * the way sluiced does, and the commands that render one message.
 *
 * SYNOPSIS
 *   campaign preview ID --contact EMAIL [--config FILE] [--json]
 *   campaign test ID --to ADDR [--config FILE] [--json]
 *
 * DESCRIPTION
 *   Both build the message with sluiced's own builder (campaign_msg.c:
 *   the stored template, the account's header and footer, the spool's
 *   token secret, the contact's first QUEUE_MAX_FIELDS fields), so a
 *   preview is what sluiced sends but for what every render makes anew
 *   (Date, the Message-ID's nonce, the MIME boundary) and the delivery id
 *   (0 here).  What the engine takes from sluiced.conf (unsubscribe host:
 *   unsubscribe_host, else ehlo_hostname; bounce domain; Feedback-ID
 *   sender) is read with the engine's parser from the command's --config
 *   FILE, else the global --config, $SLUICE_CONFIG or
 *   /etc/sluice/sluiced.conf; without any, the unsubscribe host and the
 *   bounce domain are the From domain.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tool_campaign.h"

/* ------------------------------------------------------ configuration */

/* Copy a setting into dst[cap] ("" for NULL); false if it is too long. */
static bool take(char *dst, size_t cap, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, v ? v : "", n + 1);
    return true;
}

int camp_render_cfg_load(struct tool_ctx *ctx, const char *prog,
                         const char *path, struct camp_render_cfg *cfg)
{
    struct config conf;
    struct campaign_msg_settings set;
    bool loaded;
    memset(cfg, 0, sizeof *cfg);
    int rc = tool_config_load(ctx, prog, path, &conf, &loaded);
    if (rc || !loaded)
        return rc;
    campaign_msg_settings(&conf, &set);
    const char *bad = !take(cfg->unsub_host, sizeof cfg->unsub_host,
                            set.unsub_host) ? "unsubscribe_host"
        : !take(cfg->bounce_domain, sizeof cfg->bounce_domain,
                set.bounce_domain) ? "bounce_domain"
        : !take(cfg->feedback_sender, sizeof cfg->feedback_sender,
                set.feedback_sender) ? "feedback_sender" : NULL;
    if (bad) {
        fprintf(stderr, "%s: %s: [sluiced] %s is too long\n", prog,
                conf.path, bad);
        rc = TOOL_EX_CONFIG;
    }
    config_free(&conf);
    return rc;
}

/* -------------------------------------------------------- compiling */

bool camp_from_domain(const char *from, char *out, size_t cap)
{
    return campaign_msg_from_domain(from, out, cap);
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
    if (!tool_domain_verified(q, dom, a->id)) {
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
    struct campaign_msg_settings set = {
        .unsub_host = cfg->unsub_host[0] ? cfg->unsub_host : NULL,
        .bounce_domain = cfg->bounce_domain[0] ? cfg->bounce_domain : NULL,
        .feedback_sender = cfg->feedback_sender[0] ? cfg->feedback_sender
                                                   : NULL,
    };
    return campaign_msg_compile(q, c, a, &set, out, err, errlen);
}

/* ------------------------------------------------------ one message */

/* Look email up in list into cc; 0, or an exit code when required and
 * absent (66) or the lookup failed. */
static int find_contact(const char *prog, struct queue *q, uint64_t list,
                        const char *email, bool required,
                        struct campaign_msg_contact *cc)
{
    int err = queue_contact_find(q, list, email, campaign_msg_take_contact,
                                 cc);
    if (err == 0 && (!cc->found || cc->err))
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
                      const struct campaign_msg_contact *cc, char **msg, size_t *len,
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
    rc = campaign_msg_render(tpl, cc, RENDER_PREVIEW_DELIVERY, msg, len,
                             mail_from, mflen);
    render_free(tpl);
    if (rc) {
        fprintf(stderr, "%s: cannot render for %s: %s\n", prog, cc->email,
                render_strerror(rc));
        return rc == RENDER_E_ADDR || rc == RENDER_E_TOOBIG
            ? TOOL_EX_DATAERR : TOOL_EX_SOFTWARE;
    }
    return 0;
}

/* The options of preview and test: ID, the address option addr_opt (its
 * value required), --account, --config; false on a usage error. */
static bool render_opts(int argc, char **argv, const char *addr_opt,
                        const char **addr, const char **acct,
                        const char **conf, const char **spec)
{
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, addr_opt, addr, &bad) &&
            !tool_opt(argc, argv, &i, "--account", acct, &bad) &&
            !tool_opt(argc, argv, &i, "--config", conf, &bad)) {
            if (argv[i][0] != '-' && !*spec)
                *spec = argv[i];
            else
                bad = true;
        }
    return !bad && *spec && *addr;
}

static const char preview_usage[] =
    "usage: sluice campaign preview ID --contact EMAIL [--account A] "
    "[--config FILE] [--json]\n";

/* `campaign preview`: one contact's message on stdout. */
int camp_cmd_preview(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *contact = NULL, *acct = NULL, *conf = NULL, *spec = NULL;
    const char *prog = CAMP_P " preview";
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct campaign_msg_contact cc = { 0 };
    char mail_from[RENDER_MAILFROM_MAX], *msg = NULL;
    size_t len;
    int rc;

    if (!render_opts(argc, argv, "--contact", &contact, &acct, &conf,
                     &spec)) {
        fprintf(stderr, "%s", preview_usage);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, conf, &cfg)) ||
        (rc = camp_begin(ctx, prog, ACT_CAMPAIGN_PREVIEW, spec, acct, &cmd)))
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
    campaign_msg_contact_clear(&cc);
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
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct campaign_msg_contact cc = { 0 };
    char mail_from[RENDER_MAILFROM_MAX], *msg = NULL;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    size_t len;
    uint64_t first = 0, msg_id = 0;
    int rc;

    if (!render_opts(argc, argv, "--to", &to, &acct, &conf, &spec)) {
        fprintf(stderr, "%s", test_usage);
        return TOOL_EX_USAGE;
    }
    if (queue_check_rcpt(to)) {
        fprintf(stderr, "%s: invalid address '%.80s'\n", prog, to);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, conf, &cfg)) ||
        (rc = camp_begin(ctx, prog, ACT_CAMPAIGN_TEST, spec, acct, &cmd)))
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
    campaign_msg_contact_clear(&cc);
    camp_end(&cmd);
    return rc;
}
