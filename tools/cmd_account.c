/*
 * cmd_account.c - `sluice account`: the master account and its
 * sub-accounts.
 *
 * SYNOPSIS
 *   account create NAME [--parent MASTER] [--daily-cap N] [--rate-cap R]
 *                  [--header-file F | --inherit-header]
 *                  [--footer-file F | --inherit-footer]
 *                  [--suppression own|shared] [--allow-unsigned]
 *   account list [--json]
 *   account show NAME [--json]
 *   account update NAME [the options of create] [--no-header]
 *                  [--no-footer] [--no-rate-cap] [--require-signed]
 *   account disable|enable NAME
 *   account usage NAME [--days N] [--json]
 *
 * DESCRIPTION
 *   The first account created is the master (only the spool owner, acting
 *   as the bootstrap, can make it); every later one is a sub-account of the
 *   master (one level deep).  A sub-account inherits the master's header
 *   and footer and shares its suppression list unless told otherwise.
 *   Limits (--daily-cap, --rate-cap, --allow-unsigned) are set by admins of
 *   the master; header, footer and suppression by admins of the account.
 *   On a disabled account the roles set there stop (admins of the master
 *   still reach it) and inject refuses it; the engine is to hold its mail
 *   (it reads `disabled` through queue_accounts()).  A disabled master
 *   stops every user, and only the spool owner (the bootstrap) can enable
 *   it again.
 *   `show` gives the account's settings, its domains and the counters of
 *   its deliveries: queued, delivered, deferred, bounced, expired,
 *   suppressed (ended unsent: on the suppression list) and cancelled
 *   (ended unsent: campaign cancelled).
 *   `usage` prints per UTC day the recipients sent (delivered + bounced,
 *   once each: README "Reports"), delivered and bounced;
 *   on the master, per sub-account and the total the master is billed for.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 invalid or duplicate names and values, 66 unknown
 *   account or unreadable file, 77 refused (the message names the role
 *   needed).  Nothing changes on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_admin.h"

#define P "sluice account"
#define MAX_DAYS 366

static const char usage_text[] =
    "usage: sluice account create NAME [--parent MASTER] [--daily-cap N]\n"
    "                      [--rate-cap N/s|N/min|N/h|N/day]\n"
    "                      [--header-file F | --inherit-header]\n"
    "                      [--footer-file F | --inherit-footer]\n"
    "                      [--suppression own|shared] [--allow-unsigned]\n"
    "       sluice account list [--json]\n"
    "       sluice account show NAME [--json]\n"
    "       sluice account update NAME [options of create] [--no-header]\n"
    "                      [--no-footer] [--no-rate-cap] [--require-signed]\n"
    "       sluice account disable|enable NAME\n"
    "       sluice account usage NAME [--days N] [--json]\n"
    "\n"
    "The first account is the master; later ones are its sub-accounts.\n"
    "A sub-account inherits header and footer and shares the master's\n"
    "suppression list unless given its own.  Limits need admin on the\n"
    "master; disabling needs owner of the account (or admin of the master\n"
    "for a sub-account).\n";

/* Options of create and update, parsed. */
struct acct_opts {
    const char *name, *parent;
    struct queue_account_change c;
    char *header, *footer;       /* file contents, owned */
    bool limits;                 /* a limit is among the changes */
};

/* Parse create/update options from argv[2..]; 0 or an exit code. */
static int parse_opts(int argc, char **argv, bool update,
                      struct acct_opts *o)
{
    const char *v = NULL, *hfile = NULL, *ffile = NULL;
    bool bad = false;
    unsigned long long n;
    struct queue_account_change *c = &o->c;

    for (int i = 2; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--parent", &o->parent, &bad)) {
            if (update) {
                fprintf(stderr, P " update: an account's parent cannot "
                        "change\n");
                return TOOL_EX_USAGE;
            }
        } else if (tool_opt(argc, argv, &i, "--daily-cap", &v, &bad)) {
            if (!bad && !tool_parse_u64(v, &n)) {
                fprintf(stderr, P ": --daily-cap wants a number, not "
                        "'%.40s'\n", v);
                return TOOL_EX_USAGE;
            }
            c->set |= QUEUE_AC_DAILY_CAP;
            c->daily_cap = n;
            o->limits = true;
        } else if (tool_opt(argc, argv, &i, "--rate-cap", &v, &bad)) {
            c->set |= QUEUE_AC_RATE_CAP;
            c->rate_cap = v;
            o->limits = true;
        } else if (update && !strcmp(argv[i], "--no-rate-cap")) {
            c->set |= QUEUE_AC_RATE_CAP;
            c->rate_cap = "";
            o->limits = true;
        } else if (tool_opt(argc, argv, &i, "--header-file", &hfile, &bad)) {
            c->set |= QUEUE_AC_HEADER;
        } else if (tool_opt(argc, argv, &i, "--footer-file", &ffile, &bad)) {
            c->set |= QUEUE_AC_FOOTER;
        } else if (!strcmp(argv[i], "--inherit-header")) {
            c->set |= QUEUE_AC_INHERIT_HEADER;
            c->inherit_header = true;
        } else if (!strcmp(argv[i], "--inherit-footer")) {
            c->set |= QUEUE_AC_INHERIT_FOOTER;
            c->inherit_footer = true;
        } else if (update && !strcmp(argv[i], "--no-header")) {
            c->set |= QUEUE_AC_HEADER | QUEUE_AC_INHERIT_HEADER;
            c->header = "";
        } else if (update && !strcmp(argv[i], "--no-footer")) {
            c->set |= QUEUE_AC_FOOTER | QUEUE_AC_INHERIT_FOOTER;
            c->footer = "";
        } else if (tool_opt(argc, argv, &i, "--suppression", &v, &bad)) {
            if (!bad && strcmp(v, "own") && strcmp(v, "shared")) {
                fprintf(stderr, P ": --suppression is own or shared\n");
                return TOOL_EX_USAGE;
            }
            c->set |= QUEUE_AC_SUPPRESSION;
            c->suppression_shared = !bad && !strcmp(v, "shared");
        } else if (!strcmp(argv[i], "--allow-unsigned")) {
            c->set |= QUEUE_AC_ALLOW_UNSIGNED;
            c->allow_unsigned = true;
            o->limits = true;
        } else if (update && !strcmp(argv[i], "--require-signed")) {
            c->set |= QUEUE_AC_ALLOW_UNSIGNED;
            c->allow_unsigned = false;
            o->limits = true;
        } else {
            fprintf(stderr, P ": unknown option %s\n%s", argv[i], usage_text);
            return TOOL_EX_USAGE;
        }
    }
    if (bad)
        return TOOL_EX_USAGE;
    if ((hfile && c->inherit_header) || (ffile && c->inherit_footer)) {
        fprintf(stderr, P ": a file of its own and --inherit-... exclude each "
                "other\n");
        return TOOL_EX_USAGE;
    }
    if (hfile) {
        if (!(o->header = tool_read_text_file(P, hfile,
                                              QUEUE_MAX_ACCOUNT_TEXT)))
            return TOOL_EX_NOINPUT;
        c->header = o->header;
    }
    if (ffile) {
        if (!(o->footer = tool_read_text_file(P, ffile,
                                              QUEUE_MAX_ACCOUNT_TEXT)))
            return TOOL_EX_NOINPUT;
        c->footer = o->footer;
    }
    if (update && !c->set) {
        fprintf(stderr, P " update: nothing to change\n");
        return TOOL_EX_USAGE;
    }
    return 0;
}

static int cmd_create(struct tool_ctx *ctx, int argc, char **argv)
{
    struct acct_opts o = { 0 };
    struct queue *q = NULL;
    struct queue_account *pa = malloc(sizeof *pa);
    uint32_t master = 0, parent = 0, id;
    char obj[128];
    int rc;

    if (!pa)
        return TOOL_EX_OSERR;
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s", usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    o.name = argv[1];
    if ((rc = parse_opts(argc, argv, false, &o)))
        goto out;
    if ((rc = tool_admin_begin(ctx, true, "account create", &q)))
        goto out;
    snprintf(obj, sizeof obj, "account %.80s", o.name);
    queue_account_master(q, &master);
    if (o.parent) {
        if ((rc = tool_find_account(ctx, q, P " create", o.parent, pa)))
            goto out;
        parent = pa->id;
    }
    if (!master) {
        if (ctx->identity->via != TOOL_VIA_BOOTSTRAP) {
            rc = tool_refuse(ctx, q, ACT_ACCOUNT_CREATE, 0, obj,
                             "creating the master account needs the owner "
                             "of the spool (bootstrap)");
            goto out;
        }
    } else if ((rc = tool_authorize(ctx, q, ACT_ACCOUNT_CREATE, master, 0,
                                    obj, NULL))) {
        goto out;
    }
    struct queue_actor by = tool_actor(ctx, ctx->identity->acting_role,
                                       master);
    if (!master)
        by.role = QUEUE_ROLE_OWNER;
    int err = queue_account_create(q, o.name, parent, &o.c, &by, &id);
    if (err) {
        rc = tool_admin_error(P " create", err);
        goto out;
    }
    char mname[QUEUE_MAX_ACCOUNT_NAME + 1];
    tool_account_name(q, master, mname, sizeof mname);
    if (ctx->json)
        tool_emit_json(json_pack("{s:i,s:s,s:s?}", "id", (int)id, "name",
                                 o.name, "parent", master ? mname : NULL));
    else if (master)
        printf("created account %s (id %u), a sub-account of %s\n", o.name, id,
               mname);
    else
        printf("created account %s (id %u), the master\n", o.name, id);
out:
    queue_close(q);
    free(o.header);
    free(o.footer);
    free(pa);
    return rc;
}

/* The JSON object of an account. */
static json_t *account_json(struct queue *q, const struct queue_account *a)
{
    char pname[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
    return json_pack("{s:i,s:s,s:s?,s:b,s:s,s:I,s:s,s:b,s:s,s:s,s:b,s:b,"
                     "s:s,s:s}",
                     "id", (int)a->id, "name", a->name,
                     "parent", a->parent ? tool_account_name(q, a->parent,
                                                             pname,
                                                             sizeof pname)
                                         : NULL,
                     "disabled", a->disabled,
                     "created", tool_time_text(a->created, ts, sizeof ts),
                     "daily_cap", (json_int_t)a->daily_cap,
                     "rate_cap", a->rate_cap,
                     "allow_unsigned", a->allow_unsigned,
                     "suppression", a->suppression_shared ? "shared" : "own",
                     "kind", a->parent ? "sub-account" : "master",
                     "inherit_header", a->inherit_header,
                     "inherit_footer", a->inherit_footer,
                     "header", a->header, "footer", a->footer);
}

struct list_ctx {
    struct tool_ctx *ctx;
    struct queue *q;
    json_t *arr;
    long shown;
};

static int list_one(void *arg, const struct queue_account *a)
{
    struct list_ctx *l = arg;
    char pname[QUEUE_MAX_ACCOUNT_NAME + 1];
    int r;
    if (tool_role_on(l->ctx, l->q, a->id, &r) || r < QUEUE_ROLE_VIEWER)
        return 0;
    l->shown++;
    if (l->arr) {
        json_array_append_new(l->arr, account_json(l->q, a));
        return 0;
    }
    printf("%-4u %-20s %-12s %-8s %-10llu %-10s %-11s %s\n", a->id, a->name,
           a->parent ? tool_account_name(l->q, a->parent, pname, sizeof pname)
                     : "(master)",
           a->disabled ? "disabled" : "active",
           (unsigned long long)a->daily_cap, *a->rate_cap ? a->rate_cap : "-",
           a->suppression_shared ? "shared" : "own",
           a->allow_unsigned ? "yes" : "no");
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    int rc;
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: sluice account list [--json]\n");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "account list", &q)))
        return rc;
    uint32_t def = tool_default_account(ctx, q);
    if ((rc = tool_authorize(ctx, q, ACT_ACCOUNT_LIST, def, 0, "accounts",
                             NULL))) {
        queue_close(q);
        return rc;
    }
    struct list_ctx l = { ctx, q, ctx->json ? json_array() : NULL, 0 };
    if (!l.arr)
        printf("%-4s %-20s %-12s %-8s %-10s %-10s %-11s %s\n", "ID", "NAME",
               "PARENT", "STATE", "DAILY_CAP", "RATE_CAP", "SUPPRESSION",
               "UNSIGNED");
    long n = queue_accounts(q, list_one, &l);
    queue_close(q);
    if (n < 0) {
        json_decref(l.arr);
        return tool_admin_error(P " list", (int)n);
    }
    if (l.arr)
        tool_emit_json(l.arr);
    return 0;
}

struct dom_list {
    uint32_t account;
    json_t *arr;
};

static int dom_of(void *arg, const struct queue_sdomain *d)
{
    struct dom_list *l = arg;
    if (d->account == l->account)
        json_array_append_new(l->arr, json_pack("{s:s,s:b}", "domain",
                                                d->domain, "verified",
                                                d->verified));
    return 0;
}

static int cmd_show(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_account *a = malloc(sizeof *a);
    int rc;
    if (!a)
        return TOOL_EX_OSERR;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice account show NAME [--json]\n");
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "account show", &q))) {
        free(a);
        return rc;
    }
    char obj[128];
    snprintf(obj, sizeof obj, "account %.80s", argv[1]);
    if ((rc = tool_find_account(ctx, q, P " show", argv[1], a)) ||
        (rc = tool_authorize(ctx, q, ACT_ACCOUNT_SHOW, a->id, 0, obj,
                             NULL))) {
        queue_close(q);
        free(a);
        return rc;
    }
    json_t *j = account_json(q, a);
    struct dom_list dl = { a->id, json_array() };
    struct queue_counts k;
    queue_sdomains(q, dom_of, &dl);
    json_object_set_new(j, "domains", dl.arr);
    if ((rc = queue_counts_account(q, a->id, &k))) {
        json_decref(j);
        queue_close(q);
        free(a);
        return tool_admin_error(P " show", rc);
    }
    json_object_set_new(j, "counts", tool_counts_json(&k));
    if (ctx->json) {
        tool_emit_json(j);
    } else {
        char pname[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
        printf("account       %s (id %u)\n", a->name, a->id);
        printf("kind          %s\n", a->parent ? "sub-account" : "master");
        if (a->parent)
            printf("parent        %s\n",
                   tool_account_name(q, a->parent, pname, sizeof pname));
        printf("state         %s\n", a->disabled ? "disabled" : "active");
        printf("created       %s\n", tool_time_text(a->created, ts,
                                                    sizeof ts));
        printf("daily cap     %s%llu\n", a->daily_cap ? "" : "none ",
               (unsigned long long)a->daily_cap);
        printf("rate cap      %s\n", *a->rate_cap ? a->rate_cap : "none");
        printf("unsigned mail %s\n", a->allow_unsigned ? "allowed"
                                                       : "deferred");
        printf("suppression   %s\n", a->suppression_shared
                                         ? "shared with the master" : "own");
        printf("header        %s: %s\n", a->inherit_header ? "inherited"
                                                           : "own",
               *a->header ? a->header : "(none)");
        printf("footer        %s: %s\n", a->inherit_footer ? "inherited"
                                                           : "own",
               *a->footer ? a->footer : "(none)");
        size_t nd = json_array_size(dl.arr);
        printf("domains       %s", nd ? "" : "(none)");
        for (size_t i = 0; i < nd; i++) {
            json_t *d = json_array_get(dl.arr, i);
            printf("%s%s%s", i ? ", " : "",
                   json_string_value(json_object_get(d, "domain")),
                   json_is_true(json_object_get(d, "verified"))
                       ? "" : " (unverified)");
        }
        printf("\n");
        printf("deliveries    queued %llu  delivered %llu  deferred %llu  "
               "bounced %llu  expired %llu  suppressed %llu  cancelled "
               "%llu\n", (unsigned long long)k.queued,
               (unsigned long long)k.delivered,
               (unsigned long long)k.deferred, (unsigned long long)k.bounced,
               (unsigned long long)k.expired,
               (unsigned long long)k.suppressed,
               (unsigned long long)k.cancelled);
        json_decref(j);
    }
    queue_close(q);
    free(a);
    return 0;
}

static int cmd_update(struct tool_ctx *ctx, int argc, char **argv)
{
    struct acct_opts o = { 0 };
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    int rc, role = QUEUE_ROLE_NONE;
    char obj[128];

    if (!a)
        return TOOL_EX_OSERR;
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s", usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if ((rc = parse_opts(argc, argv, true, &o)))
        goto out;
    if ((rc = tool_admin_begin(ctx, false, "account update", &q)) ||
        (rc = tool_find_account(ctx, q, P " update", argv[1], a)))
        goto out;
    snprintf(obj, sizeof obj, "account %s", a->name);
    if (o.limits &&
        (rc = tool_authorize(ctx, q, ACT_ACCOUNT_LIMITS, a->id, 0, obj,
                             &role)))
        goto out;
    if ((o.c.set & ~(unsigned)(QUEUE_AC_DAILY_CAP | QUEUE_AC_RATE_CAP |
                               QUEUE_AC_ALLOW_UNSIGNED)) &&
        (rc = tool_authorize(ctx, q, ACT_ACCOUNT_UPDATE, a->id, 0, obj,
                             &role)))
        goto out;
    struct queue_actor by = tool_actor(ctx, role, a->id);
    int err = queue_account_update(q, a->id, &o.c, &by);
    if (err) {
        rc = tool_admin_error(P " update", err);
        goto out;
    }
    if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:b}", "account", a->name, "updated",
                                 1));
    else
        printf("updated account %s\n", a->name);
out:
    queue_close(q);
    free(o.header);
    free(o.footer);
    free(a);
    return rc;
}

/* `disable` or `enable` (argv[0] says which). */
static int cmd_disable(struct tool_ctx *ctx, int argc, char **argv)
{
    bool disable = !strcmp(argv[0], "disable");
    struct queue *q;
    struct queue_account *a = malloc(sizeof *a);
    const char *verb = disable ? "disable" : "enable";
    char obj[128], prog[64];
    int rc, role = QUEUE_ROLE_NONE;

    if (!a)
        return TOOL_EX_OSERR;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice account %s NAME\n", verb);
        free(a);
        return TOOL_EX_USAGE;
    }
    snprintf(prog, sizeof prog, P " %s", verb);
    if ((rc = tool_admin_begin(ctx, false, prog + 7, &q))) {
        free(a);
        return rc;
    }
    snprintf(obj, sizeof obj, "account %.80s", argv[1]);
    if ((rc = tool_find_account(ctx, q, prog, argv[1], a)) ||
        (rc = tool_authorize(ctx, q, disable ? ACT_ACCOUNT_DISABLE
                                             : ACT_ACCOUNT_ENABLE,
                             a->id, 0, obj, &role))) {
        queue_close(q);
        free(a);
        return rc;
    }
    struct queue_account_change c = { .set = QUEUE_AC_DISABLED,
                                      .disabled = disable };
    struct queue_actor by = tool_actor(ctx, role, a->id);
    int err = queue_account_update(q, a->id, &c, &by);
    queue_close(q);
    if (err)
        rc = tool_admin_error(prog, err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:b}", "account", a->name, "disabled",
                                 disable));
    else
        printf("%s account %s\n", disable ? "disabled" : "enabled", a->name);
    free(a);
    return rc;
}

/* The accounts of a usage table: one, or a master and its sub-accounts. */
struct subs {
    uint32_t master;
    struct sub {
        uint32_t id;
        char name[QUEUE_MAX_ACCOUNT_NAME + 1];
    } *a;
    size_t n, cap;
    bool nomem;
};

/* Add one account to s. */
static void subs_add(struct subs *s, uint32_t id, const char *name)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? 2 * s->cap : 16;
        struct sub *na = realloc(s->a, ncap * sizeof *na);
        if (!na) {
            s->nomem = true;
            return;
        }
        s->a = na;
        s->cap = ncap;
    }
    s->a[s->n].id = id;
    snprintf(s->a[s->n].name, sizeof s->a[0].name, "%s", name);
    s->n++;
}

static int sub_of(void *arg, const struct queue_account *a)
{
    struct subs *s = arg;
    if (a->id == s->master || a->parent == s->master)
        subs_add(s, a->id, a->name);
    return s->nomem;
}

/* "YYYY-MM-DD" of a day number. */
static const char *day_text(uint32_t day, char *buf, size_t cap)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d", &tm);
    return buf;
}

static json_t *usage_json(const struct queue_usage *u)
{
    return json_pack("{s:I,s:I,s:I}", "sent", (json_int_t)u->sent,
                     "delivered", (json_int_t)u->delivered,
                     "bounced", (json_int_t)u->bounced);
}

static int cmd_usage(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    struct subs *s = calloc(1, sizeof *s);
    unsigned long long days = 7;
    const char *name = NULL, *v;
    bool bad = false;
    int rc;

    if (!a || !s) {
        free(a);
        free(s);
        return TOOL_EX_OSERR;
    }
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--days", &v, &bad)) {
            if (!bad && (!tool_parse_u64(v, &days) || days == 0 ||
                         days > MAX_DAYS))
                bad = true;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            bad = true;
        }
    }
    if (bad || !name) {
        fprintf(stderr, "usage: sluice account usage NAME [--days 1..%d] "
                "[--json]\n", MAX_DAYS);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    char obj[128];
    snprintf(obj, sizeof obj, "account %.80s", name);
    if ((rc = tool_admin_begin(ctx, false, "account usage", &q)) ||
        (rc = tool_find_account(ctx, q, P " usage", name, a)) ||
        (rc = tool_authorize(ctx, q, ACT_ACCOUNT_USAGE, a->id, 0, obj, NULL)))
        goto out;
    if (a->parent) {
        subs_add(s, a->id, a->name);
    } else {
        s->master = a->id;
        queue_accounts(q, sub_of, s);
    }
    if (s->nomem) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    uint32_t today = queue_day_of((int64_t)time(NULL));
    json_t *jdays = ctx->json ? json_array() : NULL;
    if (!jdays)
        printf("%-10s  %-20s %10s %10s %10s\n", "DAY", "ACCOUNT", "SENT",
               "DELIVERED", "BOUNCED");
    for (uint32_t d = today - (uint32_t)days + 1; d <= today; d++) {
        char dt[16];
        struct queue_usage u, total = { 0 };
        json_t *jacc = jdays ? json_array() : NULL;
        day_text(d, dt, sizeof dt);
        for (size_t i = 0; i < s->n; i++) {
            int err = queue_usage_get(q, s->a[i].id, d, &u);
            if (err) {
                json_decref(jacc);
                json_decref(jdays);
                rc = tool_admin_error(P " usage", err);
                goto out;
            }
            total.sent += u.sent;
            total.delivered += u.delivered;
            total.bounced += u.bounced;
            if (jacc) {
                json_t *o = usage_json(&u);
                json_object_set_new(o, "account", json_string(s->a[i].name));
                json_array_append_new(jacc, o);
            } else {
                printf("%-10s  %-20s %10llu %10llu %10llu\n", dt,
                       s->a[i].name,
                       (unsigned long long)u.sent,
                       (unsigned long long)u.delivered,
                       (unsigned long long)u.bounced);
            }
        }
        if (jdays) {
            json_array_append_new(jdays, json_pack("{s:s,s:o,s:o}", "day", dt,
                                                   "accounts", jacc, "total",
                                                   usage_json(&total)));
        } else if (!a->parent) {
            printf("%-10s  %-20s %10llu %10llu %10llu\n", dt, "(total)",
                   (unsigned long long)total.sent,
                   (unsigned long long)total.delivered,
                   (unsigned long long)total.bounced);
        }
    }
    if (jdays)
        tool_emit_json(json_pack("{s:s,s:s,s:o}", "account", a->name, "kind",
                                 a->parent ? "sub-account" : "master",
                                 "days", jdays));
out:
    queue_close(q);
    free(a);
    if (s)
        free(s->a);
    free(s);
    return rc;
}

int tool_account_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "create", .run = cmd_create },
        { .name = "list", .run = cmd_list },
        { .name = "show", .run = cmd_show },
        { .name = "update", .run = cmd_update },
        { .name = "disable", .run = cmd_disable },
        { .name = "enable", .run = cmd_disable },
        { .name = "usage", .run = cmd_usage },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
