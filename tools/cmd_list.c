/*
 * cmd_list.c - `sluice list`: contact lists of an account and the import
 * of contacts into them.
 *
 * SYNOPSIS
 *   list create NAME [--account A]
 *   list list [--account A] [--json]
 *   list show LIST [--account A] [--contacts N] [--json]
 *   list delete LIST [--account A]
 *   list import LIST FILE|- [--account A] [--reject FILE]
 *               [--email-column NAME] [--json]
 *
 * DESCRIPTION
 *   A list belongs to one account (--account, else the caller's default
 *   account) and its name is unique there.  `import` reads CSV with a
 *   header row (list_import.c); every column other than the address
 *   becomes a merge field of the list, and a later import may add columns
 *   (contacts imported before read "" for them).  `show` prints the
 *   counts, the fields and, with --contacts N, the first N contacts.
 *   `delete` removes the list with all its contacts.
 *
 *   Who may: list and show need viewer on the account; create, delete and
 *   import manager.  Create, delete and each import write an audit record.
 *
 * DIAGNOSTICS
 *   0 ok (an import that rejected rows included), 64 bad options, 65 input
 *   that is not CSV or has no email column, an invalid or taken list name,
 *   66 no such account, list or file, 73 reject file not writable, 74 I/O
 *   error, 77 refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_lists.h"

#define P "sluice list"
#define MAX_SHOW 100000

static const char usage_text[] =
    "usage: sluice list create NAME [--account A]\n"
    "       sluice list list [--account A] [--json]\n"
    "       sluice list show LIST [--account A] [--contacts N] [--json]\n"
    "       sluice list delete LIST [--account A]\n"
    "       sluice list import LIST FILE|- [--account A] [--reject FILE]\n"
    "                          [--email-column NAME] [--json]\n"
    "\n"
    "import reads CSV (RFC 4180, UTF-8) with a header row: the column named\n"
    "email, e-mail or email_address (or --email-column NAME) holds the\n"
    "address; every other column becomes a merge field, named after its\n"
    "header in lower case with runs of other characters turned into '_'.\n"
    "Invalid, duplicate and suppressed rows are skipped and counted;\n"
    "--reject FILE lists them (line,email,reason).  Exit 0 when the import\n"
    "ran, 65 for input that is not CSV or has no email column.\n";

/* What a list command acts on, once checked. */
struct target {
    struct queue *q;
    struct queue_account a;
    struct queue_list l;
    int role;
};

/* Open, identify, find the account (--account or the default) and check
 * act on it; then find list `name` in it when name is not NULL.  0 or an
 * exit code (t->q closed then). */
static int list_begin(struct tool_ctx *ctx, const char *prog, int act,
                      const char *acct, const char *name, struct target *t)
{
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int rc, err;
    if ((rc = tool_admin_begin(ctx, false, prog + 7, &t->q)))
        return rc;
    if (acct) {
        rc = tool_find_account(ctx, t->q, prog, acct, &t->a);
    } else if (queue_account_get(t->q, tool_default_account(ctx, t->q),
                                 &t->a)) {
        fprintf(stderr, "%s: there is no account yet\n", prog);
        rc = TOOL_EX_NOINPUT;
    }
    if (!rc) {
        snprintf(obj, sizeof obj, "list %.80s of %s", name ? name : "*",
                 t->a.name);
        rc = tool_authorize(ctx, t->q, act, t->a.id, 0, obj, &t->role);
    }
    if (!rc && name && act != ACT_LIST_CREATE) {
        err = queue_list_find(t->q, t->a.id, name, &t->l);
        if (err == QUEUE_ENOTFOUND) {
            fprintf(stderr, "%s: account %s has no list '%.80s'\n", prog,
                    t->a.name, name);
            rc = TOOL_EX_NOINPUT;
        } else if (err) {
            rc = tool_admin_error(prog, err);
        }
    }
    if (rc) {
        queue_close(t->q);
        t->q = NULL;
    }
    return rc;
}

/* Parse the options every subcommand shares plus those in extra (NULL
 * terminated, each taking a value); positional arguments go to pos. */
static bool parse_opts(int argc, char **argv, const char **acct,
                       const char *const *extra, const char **vals,
                       const char **pos, int npos, int *got)
{
    bool bad = false;
    *got = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", acct, &bad))
            continue;
        bool matched = false;
        for (int k = 0; extra && extra[k] && !matched && !bad; k++)
            matched = tool_opt(argc, argv, &i, extra[k], &vals[k], &bad);
        if (matched)
            continue;
        if ((argv[i][0] == '-' && argv[i][1]) || *got >= npos)
            bad = true;
        else
            pos[(*got)++] = argv[i];
    }
    return !bad;
}

static int cmd_create(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *pos[1];
    int n, rc;
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, &acct, NULL, NULL, pos, 1, &n) || n != 1) {
        fprintf(stderr, "usage: sluice list create NAME [--account A]\n");
        free(t);
        return TOOL_EX_USAGE;
    }
    if ((rc = list_begin(ctx, P " create", ACT_LIST_CREATE, acct, pos[0],
                         t))) {
        free(t);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, t->role, t->a.id);
    uint64_t id;
    int err = queue_list_create(t->q, t->a.id, pos[0], &by, &id);
    if (err)
        rc = tool_admin_error(P " create", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id,
                                 "name", pos[0], "account", t->a.name));
    else
        printf("created list %s (id %llu) in account %s\n", pos[0],
               (unsigned long long)id, t->a.name);
    queue_close(t->q);
    free(t);
    return rc;
}

/* Fields of a list as a JSON array. */
static json_t *fields_json(const struct queue_list *l)
{
    json_t *f = json_array();
    for (unsigned i = 0; i < l->nfields; i++)
        json_array_append_new(f, json_string(l->fields[i]));
    return f;
}

/* One row of `list list`. */
static int list_row(void *arg, const struct queue_list *l)
{
    json_t *arr = arg;
    char ts[32];
    tool_time_text(l->created, ts, sizeof ts);
    if (arr) {
        json_array_append_new(arr, json_pack(
            "{s:I,s:s,s:I,s:o,s:s}", "id", (json_int_t)l->id, "name",
            l->name, "contacts", (json_int_t)l->contacts, "fields",
            fields_json(l), "created", ts));
        return 0;
    }
    printf("%-8llu %-30s %10llu %6u  %s\n", (unsigned long long)l->id,
           l->name, (unsigned long long)l->contacts, l->nfields, ts);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *pos[1];
    int n, rc;
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, &acct, NULL, NULL, pos, 0, &n)) {
        fprintf(stderr, "usage: sluice list list [--account A] [--json]\n");
        free(t);
        return TOOL_EX_USAGE;
    }
    if ((rc = list_begin(ctx, P " list", ACT_LIST_READ, acct, NULL, t))) {
        free(t);
        return rc;
    }
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr)
        printf("%-8s %-30s %10s %6s  %s\n", "ID", "NAME", "CONTACTS",
               "FIELDS", "CREATED");
    long got = queue_lists(t->q, t->a.id, list_row, arr);
    if (got < 0) {
        json_decref(arr);
        rc = tool_admin_error(P " list", (int)got);
    } else if (arr) {
        tool_emit_json(arr);
    }
    queue_close(t->q);
    free(t);
    return rc;
}

/* Print a value on one line: CR, LF, TAB and backslash escaped. */
static void print_value(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else
            putchar(c);
    }
}

/* One contact of `list show --contacts`. */
static int show_contact(void *arg, const struct queue_contact *c)
{
    json_t *arr = arg;
    if (arr) {
        json_t *f = json_object();
        for (unsigned i = 0; i < c->nvalues; i++)
            json_object_set_new(f, c->names[i],
                                json_stringn(c->values[i], c->lens[i]));
        json_array_append_new(arr, json_pack("{s:I,s:s,s:o}", "id",
                                             (json_int_t)c->id, "email",
                                             c->email, "fields", f));
        return 0;
    }
    printf("  %-8llu %s", (unsigned long long)c->id, c->email);
    for (unsigned i = 0; i < c->nvalues; i++) {
        if (!c->lens[i])
            continue;
        printf("  %s=", c->names[i]);
        print_value(c->values[i], c->lens[i]);
    }
    putchar('\n');
    return 0;
}

static int cmd_show(struct tool_ctx *ctx, int argc, char **argv)
{
    static const char *const extra[] = { "--contacts", NULL };
    const char *acct = NULL, *vals[1] = { NULL }, *pos[1] = { NULL };
    unsigned long long want = 0;
    int n, rc;
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, &acct, extra, vals, pos, 1, &n) || n != 1 ||
        (vals[0] && (!tool_parse_u64(vals[0], &want) || want > MAX_SHOW))) {
        fprintf(stderr, "usage: sluice list show LIST [--account A] "
                "[--contacts N (at most %d)] [--json]\n", MAX_SHOW);
        free(t);
        return TOOL_EX_USAGE;
    }
    if ((rc = list_begin(ctx, P " show", ACT_LIST_READ, acct, pos[0], t))) {
        free(t);
        return rc;
    }
    const struct queue_list *l = &t->l;
    char ts[32];
    json_t *arr = NULL;
    if (ctx->json) {
        arr = json_array();
    } else {
        printf("list       %s (id %llu)\naccount    %s\n", l->name,
               (unsigned long long)l->id, t->a.name);
        printf("created    %s\ncontacts   %llu\nfields     ",
               tool_time_text(l->created, ts, sizeof ts),
               (unsigned long long)l->contacts);
        for (unsigned i = 0; i < l->nfields; i++)
            printf("%s%s", i ? ", " : "", l->fields[i]);
        printf("%s\n", l->nfields ? "" : "(none)");
        if (want)
            printf("first contacts:\n");
    }
    long got = want ? queue_contacts(t->q, l->id, 0, (size_t)want,
                                     show_contact, arr) : 0;
    if (got < 0) {
        json_decref(arr);
        rc = tool_admin_error(P " show", (int)got);
    } else if (arr) {
        tool_emit_json(json_pack("{s:I,s:s,s:s,s:s,s:I,s:o,s:o}", "id",
                                 (json_int_t)l->id, "name", l->name,
                                 "account", t->a.name, "created",
                                 tool_time_text(l->created, ts, sizeof ts),
                                 "contacts", (json_int_t)l->contacts,
                                 "fields", fields_json(l),
                                 "first_contacts", arr));
    }
    queue_close(t->q);
    free(t);
    return rc;
}

static int cmd_delete(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *pos[1];
    int n, rc;
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, &acct, NULL, NULL, pos, 1, &n) || n != 1) {
        fprintf(stderr, "usage: sluice list delete LIST [--account A]\n");
        free(t);
        return TOOL_EX_USAGE;
    }
    if ((rc = list_begin(ctx, P " delete", ACT_LIST_DELETE, acct, pos[0],
                         t))) {
        free(t);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, t->role, t->a.id);
    int err = queue_list_delete(t->q, t->l.id, &by);
    if (err)
        rc = tool_admin_error(P " delete", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:s,s:I,s:b}", "name", t->l.name,
                                 "account", t->a.name, "contacts",
                                 (json_int_t)t->l.contacts, "deleted", 1));
    else
        printf("deleted list %s of %s (%llu contacts)\n", t->l.name,
               t->a.name, (unsigned long long)t->l.contacts);
    queue_close(t->q);
    free(t);
    return rc;
}

static int cmd_import(struct tool_ctx *ctx, int argc, char **argv)
{
    static const char *const extra[] = { "--reject", "--email-column",
                                         NULL };
    const char *acct = NULL, *vals[2] = { NULL, NULL }, *pos[2];
    int n, rc;
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return TOOL_EX_OSERR;
    if (!parse_opts(argc, argv, &acct, extra, vals, pos, 2, &n) || n != 2 ||
        (vals[1] && !*vals[1])) {
        fprintf(stderr, "usage: sluice list import LIST FILE|- [--account A] "
                "[--reject FILE]\n                          "
                "[--email-column NAME] [--json]\n");
        free(t);
        return TOOL_EX_USAGE;
    }
    if ((rc = list_begin(ctx, P " import", ACT_LIST_IMPORT, acct, pos[0],
                         t))) {
        free(t);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, t->role, t->a.id);
    struct list_import_opts o = { .path = pos[1], .reject_path = vals[0],
                                  .email_column = vals[1],
                                  .prog = P " import" };
    rc = tool_list_import(ctx, t->q, &t->l, &t->a, &by, &o);
    queue_close(t->q);
    free(t);
    return rc;
}

int tool_list_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "create", .run = cmd_create },
        { .name = "list", .run = cmd_list },
        { .name = "show", .run = cmd_show },
        { .name = "delete", .run = cmd_delete },
        { .name = "import", .run = cmd_import },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
