/*
 * cmd_campaign.c - `sluice campaign`: campaigns of an account, from draft
 * to done.
 *
 * SYNOPSIS
 *   campaign create NAME --list L --from "Name <addr@domain>" --subject S
 *                   --html FILE [--text FILE] [--reply-to ADDR]
 *                   [--schedule TIME] [--track WHAT] [--account A]
 *                   [--config FILE]
 *   campaign update ID [--name N] [--list L] [--from F] [--subject S]
 *                   [--html FILE] [--text FILE | --no-text]
 *                   [--reply-to ADDR] [--schedule TIME | --no-schedule]
 *                   [--track WHAT]
 *   campaign list [--account A] [--json]        (cmd_campaign_show.c)
 *   campaign show ID [--json]                 (cmd_campaign_show.c)
 *   campaign preview ID --contact EMAIL       (cmd_campaign_render.c)
 *   campaign test ID --to ADDR                (cmd_campaign_render.c)
 *   campaign send ID                          (cmd_campaign_send.c)
 *   campaign pause ID [--reason TEXT] [--for DURATION]
 *   campaign resume ID
 *   campaign cancel ID [--reason TEXT]
 *   ID is the campaign's number, or its name in --account (default: the
 *   caller's account); a name cannot be all digits.
 *
 * DESCRIPTION
 *   `create` stores a draft after three checks: the list belongs to the
 *   account, the From domain (or a parent of it) is a verified sending
 *   domain of the account, and subject, html and text compile with the
 *   account's header and footer ({{field}}, {{field|default}}; a syntax
 *   error names the part, line and column).  TIME is ISO 8601 UTC
 *   ("2026-11-23T09:00:00Z", also without seconds or Z), unix seconds, or
 *   "+N" with s, m, h or d ("+30m"): the campaign's recipients are queued
 *   by `send` but not sent before then.  Only a draft can be updated.
 *   --track opens, clicks or opens,clicks (none: off, the default) tracks
 *   the campaign's opens and clicks: sluiced rewrites the html part's
 *   links and adds an open pixel (render.h, TRACKING).
 *
 *   `show` gives the state and the counts: recipients queued by send and
 *   contacts skipped as suppressed; queued (not yet terminal), sent
 *   (delivered + bounced: recipients a delivery attempt finished with),
 *   delivered, deferred (deferral events), bounced, expired (timed out),
 *   suppressed in the queue (ended unsent: the address was suppressed
 *   after send queued it; JSON "suppressed_in_queue", as "suppressed" is
 *   the count skipped at send) and cancelled (ended unsent by cancel);
 *   and an ETA: the slowest of its sites at the limit in force there
 *   (campaign_eta.c), or "paused".  A campaign whose schedule has come is
 *   shown (and stored) as sending; a sending or paused campaign whose
 *   every recipient is terminal as done, finished at its last terminal
 *   event; never earlier.
 *
 *   pause, resume and cancel change the state and set the control sluiced
 *   polls every second (`sluice paused` lists them): paused mail stays
 *   queued, cancelled mail ends as "cancelled".
 *
 *   Who may: viewer list, show, preview; sender send, test, pause, resume;
 *   manager create, update, cancel (on the campaign's account).  Every
 *   change is written to the audit trail.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 invalid data (a template that does not compile, a
 *   schedule in the past, a duplicate name, a change the state does not
 *   allow such as a second send), 66 unknown account, list or campaign,
 *   77 refused (role, disabled account, list of another account, From
 *   domain not verified), 78 unreadable --config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_campaign.h"

static const char usage_text[] =
    "usage: sluice campaign create NAME --list L --from \"Name <addr@dom>\" "
    "--subject S\n"
    "                       --html FILE [--text FILE] [--reply-to ADDR]\n"
    "                       [--schedule TIME] [--track opens,clicks] "
    "[--account A] [--config FILE]\n"
    "       sluice campaign update ID [--name N] [--list L] [--from F] "
    "[--subject S]\n"
    "                       [--html FILE] [--text FILE | --no-text] "
    "[--reply-to ADDR]\n"
    "                       [--schedule TIME | --no-schedule] "
    "[--track WHAT] [--config FILE]\n"
    "       sluice campaign list [--account A] [--json]\n"
    "       sluice campaign show ID [--json]\n"
    "       sluice campaign preview ID --contact EMAIL [--config FILE] "
    "[--json]\n"
    "       sluice campaign test ID --to ADDR [--config FILE] [--json]\n"
    "       sluice campaign send ID [--json]\n"
    "       sluice campaign pause ID [--reason TEXT] [--for DURATION]\n"
    "       sluice campaign resume ID\n"
    "       sluice campaign cancel ID [--reason TEXT]\n"
    "\n"
    "ID is a campaign number, or a name in --account A.  TIME: "
    "2026-11-23T09:00:00Z,\nunix seconds, or +N{s,m,h,d} from now.  "
    "Templates use {{field}} and\n{{field|default}}.\n";

const char *camp_object(const struct queue_campaign *c, char *buf,
                        size_t cap)
{
    snprintf(buf, cap, "campaign %llu (%.127s)", (unsigned long long)c->id,
             c->name);
    return buf;
}

/* The account named by acct, or the caller's default; 0 or exit code. */
static int pick_account(struct tool_ctx *ctx, struct queue *q,
                        const char *prog, const char *acct,
                        struct queue_account *a)
{
    if (acct)
        return tool_find_account(ctx, q, prog, acct, a);
    if (queue_account_get(q, tool_default_account(ctx, q), a)) {
        fprintf(stderr, "%s: there is no account yet\n", prog);
        return TOOL_EX_NOINPUT;
    }
    return 0;
}

int camp_begin(struct tool_ctx *ctx, const char *prog, int act,
               const char *spec, const char *acct, struct camp_cmd *cc)
{
    unsigned long long id;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int rc, err;

    memset(cc, 0, sizeof *cc);
    if (!(cc->a = malloc(sizeof *cc->a)))
        return TOOL_EX_OSERR;
    if ((rc = tool_admin_begin(ctx, false, prog + 7, &cc->q)))
        goto fail;
    if (tool_parse_u64(spec, &id)) {
        err = queue_campaign_get(cc->q, id, &cc->c);
    } else {
        if ((rc = pick_account(ctx, cc->q, prog, acct, cc->a)))
            goto fail;
        err = queue_campaign_find(cc->q, cc->a->id, spec, &cc->c);
    }
    if (err) {
        if (err == QUEUE_ENOTFOUND)
            fprintf(stderr, "%s: no campaign '%.80s'\n", prog, spec);
        else
            fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        rc = err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
        goto fail;
    }
    camp_object(&cc->c, obj, sizeof obj);
    if ((rc = tool_authorize(ctx, cc->q, act, cc->c.account, 0, obj,
                             &cc->role)))
        goto fail;
    if ((err = queue_account_get(cc->q, cc->c.account, cc->a))) {
        fprintf(stderr, "%s: account %u of campaign %llu: %s\n", prog,
                cc->c.account, (unsigned long long)cc->c.id,
                queue_strerror(err));
        rc = tool_exit_for(err);
        goto fail;
    }
    return 0;
fail:
    camp_end(cc);
    return rc;
}

void camp_end(struct camp_cmd *cc)
{
    queue_campaign_clear(&cc->c);
    queue_close(cc->q);
    free(cc->a);
    cc->q = NULL;
    cc->a = NULL;
}

/* Parse a schedule: ISO 8601 UTC, unix seconds or +N{s,m,h,d}. */
static int parse_schedule(const char *s, int64_t now, int64_t *out)
{
    if (s[0] == '+') {
        size_t n = strlen(s);
        unsigned long long v;
        char num[32], unit = n > 2 ? s[n - 1] : 0;
        if (!unit || !strchr("smhd", unit) || n - 2 >= sizeof num)
            return -1;
        memcpy(num, s + 1, n - 2);
        num[n - 2] = 0;
        if (!tool_parse_u64(num, &v) || v > 10ull * 365 * 86400)
            return -1;
        int64_t mul = unit == 's' ? 1 : unit == 'm' ? 60
                    : unit == 'h' ? 3600 : 86400;
        *out = now + (int64_t)v * mul;
        return 0;
    }
    size_t n = strlen(s);
    if (n && strchr("smhd", s[n - 1]) && s[n - 1] != 'Z')
        return -1;   /* "30m" would read as 30 minutes ago: want "+30m" */
    return tool_parse_time(s, now, out);
}

/* The list named spec (or with that number) of account; 0 or an exit
 * code: 66 unknown, 77 (audited) a list of another account. */
static int find_list(struct tool_ctx *ctx, struct queue *q, const char *prog,
                     int act, const struct queue_account *a,
                     const char *spec, struct queue_list *l)
{
    unsigned long long id;
    char why[200], obj[120];
    int err = queue_list_find(q, a->id, spec, l);
    if (err == QUEUE_ENOTFOUND && tool_parse_u64(spec, &id) &&
        queue_list_get(q, id, l) == 0) {
        if (l->account == a->id)
            return 0;
        snprintf(why, sizeof why, "list %llu belongs to another account, "
                 "not to %s", id, a->name);
        snprintf(obj, sizeof obj, "list %llu", id);
        return tool_refuse(ctx, q, act, a->id, obj, why);
    }
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "%s: account %s has no list '%.80s'\n", prog,
                a->name, spec);
        return TOOL_EX_NOINPUT;
    }
    if (err) {
        fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        return tool_exit_for(err);
    }
    return 0;
}

/* Options of create and update. */
struct camp_opts {
    const char *name, *list, *from, *subject, *html, *text, *reply_to;
    const char *schedule, *account, *config, *track;
    bool no_text, no_schedule;
};

/* --track: "opens", "clicks", both comma-separated, or "none"/"off";
 * false if it is none of those. */
static bool parse_track(const char *v, unsigned *track)
{
    char buf[64];
    *track = 0;
    if (strlen(v) >= sizeof buf)
        return false;
    if (!strcmp(v, "none") || !strcmp(v, "off"))
        return true;
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "opens"))
            *track |= QUEUE_TRACK_OPENS;
        else if (!strcmp(t, "clicks"))
            *track |= QUEUE_TRACK_CLICKS;
        else
            return false;
    }
    return *track != 0;
}

/* Parse argv[first..] into o; false on a bad option. */
static bool parse_opts(int argc, char **argv, int first, struct camp_opts *o,
                       bool update, const char **pos)
{
    bool bad = false;
    for (int i = first; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--list", &o->list, &bad) ||
            tool_opt(argc, argv, &i, "--from", &o->from, &bad) ||
            tool_opt(argc, argv, &i, "--subject", &o->subject, &bad) ||
            tool_opt(argc, argv, &i, "--html", &o->html, &bad) ||
            tool_opt(argc, argv, &i, "--text", &o->text, &bad) ||
            tool_opt(argc, argv, &i, "--reply-to", &o->reply_to, &bad) ||
            tool_opt(argc, argv, &i, "--schedule", &o->schedule, &bad) ||
            tool_opt(argc, argv, &i, "--account", &o->account, &bad) ||
            tool_opt(argc, argv, &i, "--config", &o->config, &bad) ||
            tool_opt(argc, argv, &i, "--track", &o->track, &bad) ||
            (update && tool_opt(argc, argv, &i, "--name", &o->name, &bad)))
            continue;
        if (update && !strcmp(argv[i], "--no-text"))
            o->no_text = true;
        else if (update && !strcmp(argv[i], "--no-schedule"))
            o->no_schedule = true;
        else if (argv[i][0] != '-' && !*pos)
            *pos = argv[i];
        else
            bad = true;
    }
    return !bad && *pos && !(o->text && o->no_text) &&
           !(o->schedule && o->no_schedule);
}

/* Read the template files named in o; 0 or an exit code. */
static int read_templates(const char *prog, const struct camp_opts *o,
                          char **html, char **text)
{
    *html = *text = NULL;
    if (o->html && !(*html = tool_read_text_file(prog, o->html,
                                                 QUEUE_MAX_TEMPLATE)))
        return TOOL_EX_NOINPUT;
    if (o->text && !(*text = tool_read_text_file(prog, o->text,
                                                 QUEUE_MAX_TEMPLATE))) {
        free(*html);
        *html = NULL;
        return TOOL_EX_NOINPUT;
    }
    return 0;
}

/* The checks a definition must pass before it is stored: the From
 * domain is verified for the account, and the templates compile. */
static int check_definition(struct tool_ctx *ctx, struct queue *q,
                            const char *prog, int act,
                            const struct queue_campaign *c,
                            const struct queue_account *a,
                            const struct camp_render_cfg *cfg)
{
    char dom[QUEUE_MAX_DOMAIN + 2], why[600], obj[QUEUE_MAX_FROM + 16];
    struct render_tpl *tpl = NULL;
    if (!camp_from_domain(c->from, dom, sizeof dom)) {
        fprintf(stderr, "%s: --from needs an address: \"Name "
                "<local@domain>\"\n", prog);
        return TOOL_EX_DATAERR;
    }
    if (!tool_domain_verified(q, dom, a->id)) {
        snprintf(why, sizeof why, "From domain %s is not a verified sending "
                 "domain of account %s (sluice domain add / verify)", dom,
                 a->name);
        snprintf(obj, sizeof obj, "from %s", dom);
        return tool_refuse(ctx, q, act, a->id, obj, why);
    }
    int rc = camp_compile(q, c, a, cfg, &tpl, why, sizeof why);
    render_free(tpl);
    if (rc) {
        fprintf(stderr, "%s: the campaign does not compile: %s\n", prog, why);
        return rc == RENDER_E_SYNTAX || rc == RENDER_E_ARG ||
               rc == RENDER_E_TOOBIG ? TOOL_EX_DATAERR : TOOL_EX_SOFTWARE;
    }
    return 0;
}

/* `campaign create`: check the account, list, From domain and templates,
 * then store the draft. */
static int cmd_create(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *prog = CAMP_P " create", *name = NULL;
    struct camp_opts o = { 0 };
    struct camp_render_cfg cfg;
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    struct queue_list *l = malloc(sizeof *l);
    struct queue_campaign *c = calloc(1, sizeof *c);
    char *html = NULL, *text = NULL, obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int64_t schedule = 0;
    int rc, role;

    if (!a || !l || !c) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    if (!parse_opts(argc, argv, 1, &o, false, &name) || !o.list ||
        !o.from || !o.subject || !o.html) {
        fprintf(stderr, "%s", usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    unsigned long long num;
    unsigned track = 0;
    if (o.track && !parse_track(o.track, &track)) {
        fprintf(stderr, "%s: --track: want opens, clicks, opens,clicks or "
                "none\n", prog);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if (tool_parse_u64(name, &num)) {
        fprintf(stderr, "%s: a campaign name cannot be a number (numbers "
                "are campaign ids)\n", prog);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if (o.schedule && parse_schedule(o.schedule, time(NULL), &schedule)) {
        fprintf(stderr, "%s: --schedule: want 2026-11-23T09:00:00Z, unix "
                "seconds or +N{s,m,h,d}\n", prog);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if (o.schedule && schedule <= time(NULL)) {
        fprintf(stderr, "%s: --schedule %s is in the past\n", prog,
                o.schedule);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, o.config, &cfg)) ||
        (rc = read_templates(prog, &o, &html, &text)) ||
        (rc = tool_admin_begin(ctx, false, "campaign create", &q)) ||
        (rc = pick_account(ctx, q, prog, o.account, a)))
        goto out;
    snprintf(obj, sizeof obj, "campaign '%.127s' of %s", name, a->name);
    if ((rc = tool_authorize(ctx, q, ACT_CAMPAIGN_CREATE, a->id, 0, obj,
                             &role)))
        goto out;
    if (a->disabled) {
        char why[128];
        snprintf(why, sizeof why, "account %s is disabled", a->name);
        rc = tool_refuse(ctx, q, ACT_CAMPAIGN_CREATE, a->id, obj, why);
        goto out;
    }
    if ((rc = find_list(ctx, q, prog, ACT_CAMPAIGN_CREATE, a, o.list, l)))
        goto out;
    /* the draft as it will be stored, for the checks */
    c->account = a->id;
    c->list = l->id;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->from, sizeof c->from, "%s", o.from);
    snprintf(c->reply_to, sizeof c->reply_to, "%s",
             o.reply_to ? o.reply_to : "");
    snprintf(c->subject, sizeof c->subject, "%s", o.subject);
    c->html = html;
    c->text = text;
    c->track = track;
    if (strlen(o.from) > QUEUE_MAX_FROM ||
        (o.reply_to && strlen(o.reply_to) > QUEUE_MAX_FROM) ||
        strlen(o.subject) > QUEUE_MAX_SUBJECT ||
        strlen(name) > QUEUE_MAX_CAMPAIGN_NAME) {
        fprintf(stderr, "%s: name, from, reply-to or subject over its cap "
                "(%d, %d, %d, %d bytes)\n", prog, QUEUE_MAX_CAMPAIGN_NAME,
                QUEUE_MAX_FROM, QUEUE_MAX_FROM, QUEUE_MAX_SUBJECT);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if ((rc = check_definition(ctx, q, prog, ACT_CAMPAIGN_CREATE, c, a,
                               &cfg)))
        goto out;
    struct queue_campaign_spec s = {
        .list = l->id, .name = name, .from = o.from, .reply_to = o.reply_to,
        .subject = o.subject, .html = html, .text = text,
        .schedule = schedule, .track = track,
    };
    struct queue_actor by = tool_actor(ctx, role, a->id);
    uint64_t id;
    int err = queue_campaign_create(q, a->id, &s, &by, &id);
    if (err) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    if (ctx->json)
        tool_emit_json(json_pack("{s:I,s:s,s:s,s:s,s:s}", "id",
                                 (json_int_t)id, "name", name, "account",
                                 a->name, "list", l->name, "state", "draft"));
    else
        printf("created campaign %llu (%s) of account %s for list %s: "
               "draft; send it with: sluice campaign send %llu\n",
               (unsigned long long)id, name, a->name, l->name,
               (unsigned long long)id);
out:
    if (c) {
        c->html = c->text = NULL;   /* html and text are freed below */
        queue_campaign_clear(c);
    }
    free(html);
    free(text);
    queue_close(q);
    free(a);
    free(l);
    free(c);
    return rc;
}

/* `campaign update`: change fields of a draft, checked like create. */
static int cmd_update(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *prog = CAMP_P " update", *spec = NULL;
    struct camp_opts o = { 0 };
    struct camp_render_cfg cfg;
    struct camp_cmd cmd = { 0 };
    struct queue_list *l = malloc(sizeof *l);
    char *html = NULL, *text = NULL;
    struct queue_campaign_spec s = { 0 };
    unsigned set = 0;
    int rc;

    if (!l)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, 1, &o, true, &spec)) {
        fprintf(stderr, "%s", usage_text);
        free(l);
        return TOOL_EX_USAGE;
    }
    if (o.schedule && parse_schedule(o.schedule, time(NULL), &s.schedule)) {
        fprintf(stderr, "%s: --schedule: want 2026-11-23T09:00:00Z, unix "
                "seconds or +N{s,m,h,d}\n", prog);
        free(l);
        return TOOL_EX_USAGE;
    }
    if (o.schedule && s.schedule <= time(NULL)) {
        fprintf(stderr, "%s: --schedule %s is in the past\n", prog,
                o.schedule);
        free(l);
        return TOOL_EX_DATAERR;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, o.config, &cfg)) ||
        (rc = read_templates(prog, &o, &html, &text)) ||
        (rc = camp_begin(ctx, prog, ACT_CAMPAIGN_UPDATE, spec, o.account,
                         &cmd)))
        goto out;
    if (cmd.c.state != QUEUE_CAMPAIGN_DRAFT) {
        fprintf(stderr, "%s: campaign %llu is %s: only a draft can be "
                "changed\n", prog, (unsigned long long)cmd.c.id,
                queue_campaign_state_name(cmd.c.state));
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    /* apply the changes to the loaded campaign, check, then store */
    unsigned long long num;
    if (o.name && tool_parse_u64(o.name, &num)) {
        fprintf(stderr, "%s: a campaign name cannot be a number (numbers "
                "are campaign ids)\n", prog);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if (o.name) {
        set |= QUEUE_CF_NAME;
        s.name = o.name;
        snprintf(cmd.c.name, sizeof cmd.c.name, "%s", o.name);
    }
    if (o.list) {
        if ((rc = find_list(ctx, cmd.q, prog, ACT_CAMPAIGN_UPDATE, cmd.a,
                            o.list, l)))
            goto out;
        set |= QUEUE_CF_LIST;
        s.list = cmd.c.list = l->id;
    }
    if (o.from) {
        set |= QUEUE_CF_FROM;
        s.from = o.from;
        snprintf(cmd.c.from, sizeof cmd.c.from, "%s", o.from);
    }
    if (o.reply_to) {
        set |= QUEUE_CF_REPLY_TO;
        s.reply_to = o.reply_to;
        snprintf(cmd.c.reply_to, sizeof cmd.c.reply_to, "%s", o.reply_to);
    }
    if (o.subject) {
        set |= QUEUE_CF_SUBJECT;
        s.subject = o.subject;
        snprintf(cmd.c.subject, sizeof cmd.c.subject, "%s", o.subject);
    }
    if (html) {
        set |= QUEUE_CF_HTML;
        s.html = html;
        free(cmd.c.html);
        cmd.c.html = strdup(html);
    }
    if (text || o.no_text) {
        set |= QUEUE_CF_TEXT;
        s.text = text;
        free(cmd.c.text);
        cmd.c.text = text ? strdup(text) : NULL;
    }
    if (o.schedule || o.no_schedule)
        set |= QUEUE_CF_SCHEDULE;
    if (o.track) {
        if (!parse_track(o.track, &s.track)) {
            fprintf(stderr, "%s: --track: want opens, clicks, opens,clicks "
                    "or none\n", prog);
            rc = TOOL_EX_USAGE;
            goto out;
        }
        set |= QUEUE_CF_TRACK;
        cmd.c.track = s.track;
    }
    if (!set) {
        fprintf(stderr, "%s: nothing to change\n%s", prog, usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if (!cmd.c.html || (text && !cmd.c.text)) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    if ((rc = check_definition(ctx, cmd.q, prog, ACT_CAMPAIGN_UPDATE, &cmd.c,
                               cmd.a, &cfg)))
        goto out;
    struct queue_actor by = tool_actor(ctx, cmd.role, cmd.c.account);
    int err = queue_campaign_update(cmd.q, cmd.c.id, set, &s, &by);
    if (err)
        rc = tool_admin_error(prog, err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:I,s:s}", "id", (json_int_t)cmd.c.id,
                                 "state", "draft"));
    else
        printf("updated campaign %llu (%s)\n", (unsigned long long)cmd.c.id,
               cmd.c.name);
out:
    free(html);
    free(text);
    free(l);
    camp_end(&cmd);
    return rc;
}

/* ------------------------------------------- pause, resume, cancel */

/* `campaign pause`, `resume` and `cancel`. */
static int cmd_control(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *sub = argv[0], *spec = NULL, *acct = NULL, *reason = NULL;
    const char *for_s = NULL;
    int64_t until = 0, secs = 0;
    bool bad = false, resume = !strcmp(sub, "resume");
    char prog[40];
    struct camp_cmd cmd;
    int act = !strcmp(sub, "pause") ? ACT_CAMPAIGN_PAUSE
            : resume ? ACT_CAMPAIGN_RESUME : ACT_CAMPAIGN_CANCEL;
    int rc, err;

    snprintf(prog, sizeof prog, CAMP_P " %s", sub);
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            (resume || !tool_opt(argc, argv, &i, "--reason", &reason, &bad)) &&
            (act != ACT_CAMPAIGN_PAUSE ||
             !tool_opt(argc, argv, &i, "--for", &for_s, &bad))) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec) {
        fprintf(stderr, "usage: sluice campaign %s ID%s%s\n", sub,
                resume ? "" : " [--reason TEXT]",
                act == ACT_CAMPAIGN_PAUSE ? " [--for DURATION]" : "");
        return TOOL_EX_USAGE;
    }
    if (for_s && tool_pause_until(prog, for_s, &until, &secs))
        return TOOL_EX_USAGE;
    if ((rc = camp_begin(ctx, prog, act, spec, acct, &cmd)))
        return rc;
    struct queue_actor by = tool_actor(ctx, cmd.role, cmd.c.account);
    if (act == ACT_CAMPAIGN_PAUSE)
        err = queue_campaign_pause_until(cmd.q, cmd.c.id, reason, until, &by);
    else if (resume)
        err = queue_campaign_resume(cmd.q, cmd.c.id, &by);
    else
        err = queue_campaign_cancel(cmd.q, cmd.c.id, reason, &by);
    if (err) {
        rc = tool_admin_error(prog, err);
    } else {
        struct queue_campaign now;
        int state = act == ACT_CAMPAIGN_PAUSE ? QUEUE_CAMPAIGN_PAUSED
                  : act == ACT_CAMPAIGN_CANCEL ? QUEUE_CAMPAIGN_CANCELLED
                  : QUEUE_CAMPAIGN_SENDING;
        if (queue_campaign_get(cmd.q, cmd.c.id, &now) == 0) {
            state = now.state;
            queue_campaign_clear(&now);
        }
        if (ctx->json) {
            json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)cmd.c.id,
                                  "state", queue_campaign_state_name(state));
            if (until)
                json_object_set_new(o, "until", json_integer(until));
            tool_emit_json(o);
        } else if (until) {
            printf("campaign %llu (%s) is %s for %llds\n",
                   (unsigned long long)cmd.c.id, cmd.c.name,
                   queue_campaign_state_name(state), (long long)secs);
        } else {
            printf("campaign %llu (%s) is %s\n", (unsigned long long)cmd.c.id,
                   cmd.c.name, queue_campaign_state_name(state));
        }
    }
    camp_end(&cmd);
    return rc;
}

int tool_campaign_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "create", .run = cmd_create },
        { .name = "update", .run = cmd_update },
        { .name = "list", .run = camp_cmd_list },
        { .name = "show", .run = camp_cmd_show },
        { .name = "preview", .run = camp_cmd_preview },
        { .name = "test", .run = camp_cmd_test },
        { .name = "send", .run = camp_cmd_send },
        { .name = "pause", .run = cmd_control },
        { .name = "resume", .run = cmd_control },
        { .name = "cancel", .run = cmd_control },
    };
    static const struct tool_group group = {
        CAMP_P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
