/*
 * cmd_suppress.c - `sluice suppress`: the addresses an account never
 * mails.
 *
 * SYNOPSIS
 *   suppress add EMAIL [--account A] [--reason R]
 *   suppress remove EMAIL [--account A]
 *   suppress list [--account A] [--json]
 *   suppress import FILE|- [--account A] [--reason R] [--source S]
 *   suppress export [--account A] [--output FILE]
 *
 * DESCRIPTION
 *   The suppression list is the account's own or, for a sub-account that
 *   shares it, the master's (account show: "suppression"); every command
 *   acts on that list.  Addresses are stored with the domain as lower-case
 *   A-label and compare without regard to case.  Imports skip suppressed
 *   addresses and the engine checks again before sending: every entry on
 *   the list blocks every account that uses it.  Each entry keeps a
 *   reason, a source ("cli", "import", "dsn", "arf", "one-click", "smtp"),
 *   the time it was added and the account that added it: the account
 *   acted on for add and import, the delivery's account for an
 *   unsubscribe, a bounce or a complaint (`feedback ingest`, sluiced).
 *   Entries stored before sluice kept that count as added by the list's
 *   owner, shown "(old)".
 *
 *   Who sees and removes what on a shared list: list and export show a
 *   sub-account only the entries it added; a user with a role on the
 *   master sees all of them, with the account that added each.  remove
 *   takes off only an entry the account added, unless the user is admin
 *   (or owner) of the master: else it is refused (77, audited) naming the
 *   account that added it.  An add or import never overwrites or
 *   re-attributes an entry that is there already.
 *
 *   import reads one address per line, or CSV lines EMAIL[,REASON[,SOURCE]]
 *   (a first line starting "email" is a header; '#' lines and blank lines
 *   are skipped; a field may be in double quotes, "" for a quote; parsed
 *   by hand).  Missing reason and source take --reason (default "import")
 *   and --source (default "import").  Entries commit in batches of
 *   QUEUE_SUPPRESS_BATCH, one audit record "suppress import" per batch;
 *   addresses already listed keep their first record.  export writes CSV
 *   email,reason,source,since (UTC),added_by in address order.
 *
 *   Who may: add, remove and import need manager on the account, list and
 *   export viewer (and the rules above).  add, remove and import are
 *   audited, and so is a refused remove.
 *
 * DIAGNOSTICS
 *   0 ok (an address already suppressed included; import: invalid lines
 *   are reported on stderr and counted), 64 bad options, 65 an invalid
 *   address or reason, 66 no such account, file or (remove) entry, 73
 *   export file not writable, 74 read error, 77 refused (a role, or
 *   another account's entry).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tool_lists.h"

#define P "sluice suppress"

static const char usage_text[] =
    "usage: sluice suppress add EMAIL [--account A] [--reason R]\n"
    "       sluice suppress remove EMAIL [--account A]\n"
    "       sluice suppress list [--account A] [--json]\n"
    "       sluice suppress import FILE|- [--account A] [--reason R] "
    "[--source S]\n"
    "       sluice suppress export [--account A] [--output FILE]\n"
    "\n"
    "Acts on the account's suppression list (the master's when the account\n"
    "shares it).  Each entry records the account that added it; on a shared\n"
    "list a sub-account lists and removes only its own entries (a role on\n"
    "the master shows all; an admin of the master removes any), and every\n"
    "entry blocks every account on the list.  import takes one address per\n"
    "line or CSV lines EMAIL[,REASON[,SOURCE]]; export writes CSV\n"
    "email,reason,source,since,added_by.  `sluice feedback ingest` adds\n"
    "hard bounces and complaints.\n";

/* Open, identify, find the account and check act; 0 or an exit code. */
static int supp_begin(struct tool_ctx *ctx, const char *prog, int act,
                      const char *acct, const char *obj, struct queue **q,
                      struct queue_account *a, int *role)
{
    int rc;
    if ((rc = tool_admin_begin(ctx, false, prog + 7, q)))
        return rc;
    if (acct) {
        rc = tool_find_account(ctx, *q, prog, acct, a);
    } else if (queue_account_get(*q, tool_default_account(ctx, *q), a)) {
        fprintf(stderr, "%s: there is no account yet\n", prog);
        rc = TOOL_EX_NOINPUT;
    }
    if (!rc)
        rc = tool_authorize(ctx, *q, act, a->id, 0, obj, role);
    if (rc) {
        queue_close(*q);
        *q = NULL;
    }
    return rc;
}

/* Whether the identity has at least role need on the master. */
static bool master_role(struct tool_ctx *ctx, struct queue *q, int need)
{
    uint32_t master = 0;
    int r = QUEUE_ROLE_NONE;
    if (queue_account_master(q, &master) || !master ||
        tool_role_on(ctx, q, master, &r))
        return false;
    return r >= need;
}

/* The entries a listing shows: all for a user with a role on the master,
 * else only those the account added (queue_suppressions' added_by). */
static uint32_t view_of(struct tool_ctx *ctx, struct queue *q,
                        const struct queue_account *a)
{
    return master_role(ctx, q, QUEUE_ROLE_VIEWER) ? 0 : a->id;
}

/* "b", or "m (old)" for an entry stored before "added by" was kept. */
static const char *added_text(const struct queue_suppression *s, char *buf,
                              size_t cap)
{
    snprintf(buf, cap, "%s%s", s->added_by_name,
             s->added_by_recorded ? "" : " (old)");
    return buf;
}

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *reason = NULL, *email = NULL;
    char addr[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX], obj[400];
    char owner[QUEUE_MAX_ACCOUNT_NAME + 1];
    bool bad = false;
    struct queue *q;
    int rc, role;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad) ||
            tool_opt(argc, argv, &i, "--reason", &reason, &bad))
            continue;
        if (argv[i][0] == '-' || email)
            bad = true;
        else
            email = argv[i];
    }
    if (bad || !email) {
        fprintf(stderr, "usage: sluice suppress add EMAIL [--account A] "
                "[--reason R]\n");
        return TOOL_EX_USAGE;
    }
    if (tool_addr_normalize(email, strlen(email), addr, sizeof addr, why)) {
        fprintf(stderr, P " add: invalid address '%.80s': %s\n", email, why);
        return TOOL_EX_DATAERR;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    snprintf(obj, sizeof obj, "suppress %s", addr);
    if ((rc = supp_begin(ctx, P " add", ACT_SUPPRESS_ADD, acct, obj, &q, a,
                         &role))) {
        free(a);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, role, a->id);
    tool_account_name(q, a->suppression_owner, owner, sizeof owner);
    int err = queue_suppress_add(q, a->id, addr, reason ? reason : "manual",
                                 "cli", &by);
    if (err == -EEXIST) {
        printf("%s is already on the suppression list of %s\n", addr, owner);
    } else if (err) {
        rc = tool_admin_error(P " add", err);
    } else if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:s}", "email", addr, "owner",
                                 owner, "added_by", a->name, "reason",
                                 reason ? reason : "manual"));
    } else if (a->id != a->suppression_owner) {
        printf("suppressed %s on the list of %s (added by %s)\n", addr,
               owner, a->name);
    } else {
        printf("suppressed %s on the list of %s\n", addr, owner);
    }
    queue_close(q);
    free(a);
    return rc;
}

/* One row of `suppress list`. */
static int list_row(void *arg, const struct queue_suppression *s)
{
    json_t *arr = arg;
    char ts[32], by[QUEUE_MAX_ACCOUNT_NAME + 8];
    tool_time_text(s->since, ts, sizeof ts);
    if (arr)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}",
                                             "email", s->email, "reason",
                                             s->reason, "source", s->source,
                                             "since", ts, "added_by",
                                             s->added_by_name,
                                             "added_by_recorded",
                                             s->added_by_recorded));
    else
        printf("%-40s %-20s %-10s %-16s %s\n", s->email, s->reason,
               s->source, added_text(s, by, sizeof by), ts);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    bool bad = false;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "usage: sluice suppress list [--account A] "
                "[--json]\n");
        return TOOL_EX_USAGE;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    if ((rc = supp_begin(ctx, P " list", ACT_SUPPRESS_LIST, acct,
                         "suppression list", &q, a, NULL))) {
        free(a);
        return rc;
    }
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!arr)
        printf("%-40s %-20s %-10s %-16s %s\n", "EMAIL", "REASON", "SOURCE",
               "ADDED BY", "SINCE");
    long n = queue_suppressions(q, a->suppression_owner, view_of(ctx, q, a),
                                NULL, list_row, arr);
    if (n < 0) {
        json_decref(arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (arr) {
        tool_emit_json(arr);
    }
    queue_close(q);
    free(a);
    return rc;
}

static int cmd_remove(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *email = NULL;
    char addr[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX], obj[400];
    char owner[QUEUE_MAX_ACCOUNT_NAME + 1];
    bool bad = false;
    struct queue *q;
    int rc, role;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad))
            continue;
        if (argv[i][0] == '-' || email)
            bad = true;
        else
            email = argv[i];
    }
    if (bad || !email) {
        fprintf(stderr, "usage: sluice suppress remove EMAIL "
                "[--account A]\n");
        return TOOL_EX_USAGE;
    }
    if (tool_addr_normalize(email, strlen(email), addr, sizeof addr, why)) {
        fprintf(stderr, P " remove: invalid address '%.80s': %s\n", email,
                why);
        return TOOL_EX_DATAERR;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    snprintf(obj, sizeof obj, "suppress %s", addr);
    if ((rc = supp_begin(ctx, P " remove", ACT_SUPPRESS_REMOVE, acct, obj,
                         &q, a, &role))) {
        free(a);
        return rc;
    }
    struct queue_actor by = tool_actor(ctx, role, a->id);
    tool_account_name(q, a->suppression_owner, owner, sizeof owner);
    /* another account's entry: only an admin of the master */
    int err = queue_suppress_remove(q, a->id, addr,
                                    master_role(ctx, q, QUEUE_ROLE_ADMIN),
                                    &by);
    if (err == -EACCES) {
        char detail[300];  /* copied: the refusal's own calls reset it */
        snprintf(detail, sizeof detail, "%s", queue_last_detail());
        rc = tool_refuse(ctx, q, ACT_SUPPRESS_REMOVE, a->id, obj, detail);
    } else if (err) {
        rc = tool_admin_error(P " remove", err);
    } else if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:b}", "email", addr, "owner",
                                 owner, "removed", 1));
    } else {
        printf("removed %s from the suppression list of %s\n", addr, owner);
    }
    queue_close(q);
    free(a);
    return rc;
}

#define IMP_LINE_MAX 2048

/* One import batch being gathered: entries point into the arrays. */
struct imp_batch {
    struct queue_suppress_entry e[QUEUE_SUPPRESS_BATCH];
    char addr[QUEUE_SUPPRESS_BATCH][TOOL_ADDR_MAX + 1];
    char reason[QUEUE_SUPPRESS_BATCH][QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_SUPPRESS_BATCH][QUEUE_MAX_SUPPRESS_SOURCE + 1];
    unsigned long line[QUEUE_SUPPRESS_BATCH];
    size_t n;
    unsigned long added, already, invalid;
};

/* The next CSV field of *p (up to ',' or the end) into out (cut to cap);
 * a field in double quotes may hold commas and "" for a quote.  Blanks
 * around a field are dropped.  Returns false past the last field. */
static bool csv_field(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    if (!s)
        return false;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '"') {
        for (s++; *s; s++) {
            if (*s == '"' && s[1] == '"') {
                s++;
            } else if (*s == '"') {
                s++;
                break;
            }
            if (n + 1 < cap)
                out[n++] = *s;
        }
        while (*s && *s != ',')
            s++;
    } else {
        for (; *s && *s != ','; s++)
            if (n + 1 < cap)
                out[n++] = *s;
        while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
            n--;
    }
    out[n] = 0;
    *p = *s == ',' ? s + 1 : NULL;
    return true;
}

/* Commit the gathered batch, added by account; 0 or an exit code. */
static int imp_flush(struct queue *q, uint32_t account, struct imp_batch *b,
                     const struct queue_actor *by)
{
    if (!b->n)
        return 0;
    int err = queue_suppress_add_batch(q, account, b->e, b->n,
                                       "suppress import", by);
    if (err)
        return tool_admin_error(P " import", err);
    for (size_t i = 0; i < b->n; i++) {
        if (b->e[i].result == 0) {
            b->added++;
        } else if (b->e[i].result == -EEXIST) {
            b->already++;
        } else {
            b->invalid++;
            fprintf(stderr, P " import: line %lu: reason or source not "
                    "usable\n", b->line[i]);
        }
    }
    b->n = 0;
    return 0;
}

/* Read the import file line by line into batches. */
static int import_lines(FILE *f, struct queue *q, uint32_t account,
                        struct imp_batch *b, const char *reason,
                        const char *source, const struct queue_actor *by)
{
    char line[IMP_LINE_MAX + 2], field[IMP_LINE_MAX + 1], why[TOOL_WHY_MAX];
    unsigned long lineno = 0;
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        lineno++;
        if (n && line[n - 1] != '\n' && !feof(f)) {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            fprintf(stderr, P " import: line %lu: longer than %d bytes\n",
                    lineno, IMP_LINE_MAX);
            b->invalid++;
            continue;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' ||
            (lineno == 1 && !strncasecmp(p, "email", 5) &&
             (!p[5] || p[5] == ',' || p[5] == ' ')))
            continue;
        size_t k = b->n;
        csv_field(&p, field, sizeof field);
        if (tool_addr_normalize(field, strlen(field), b->addr[k],
                                sizeof b->addr[k], why)) {
            fprintf(stderr, P " import: line %lu: invalid address "
                    "'%.80s': %s\n", lineno, field, why);
            b->invalid++;
            continue;
        }
        b->reason[k][0] = b->source[k][0] = 0;
        csv_field(&p, b->reason[k], sizeof b->reason[k]);   /* cut */
        csv_field(&p, b->source[k], sizeof b->source[k]);
        b->e[k] = (struct queue_suppress_entry){
            b->addr[k], b->reason[k][0] ? b->reason[k] : reason,
            b->source[k][0] ? b->source[k] : source, 0 };
        b->line[k] = lineno;
        if (++b->n == QUEUE_SUPPRESS_BATCH)
            rc = imp_flush(q, account, b, by);
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, P " import: read error\n");
        rc = TOOL_EX_IOERR;
    }
    return rc ? rc : imp_flush(q, account, b, by);
}

static int cmd_import(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *path = NULL, *reason = "import";
    const char *source = "import";
    bool bad = false;
    struct queue *q;
    int rc, role;
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad) ||
            tool_opt(argc, argv, &i, "--reason", &reason, &bad) ||
            tool_opt(argc, argv, &i, "--source", &source, &bad))
            continue;
        if ((argv[i][0] == '-' && argv[i][1]) || path)
            bad = true;
        else
            path = argv[i];
    }
    if (bad || !path) {
        fprintf(stderr, "usage: sluice suppress import FILE|- [--account A] "
                "[--reason R] [--source S]\n");
        return TOOL_EX_USAGE;
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, P " import: %s: %s\n", path, strerror(errno));
        return TOOL_EX_NOINPUT;
    }
    struct queue_account *a = malloc(sizeof *a);
    struct imp_batch *b = calloc(1, sizeof *b);
    if (!a || !b)
        rc = TOOL_EX_OSERR;
    else
        rc = supp_begin(ctx, P " import", ACT_SUPPRESS_IMPORT, acct,
                        "suppression list", &q, a, &role);
    if (!rc) {
        struct queue_actor by = tool_actor(ctx, role, a->id);
        rc = import_lines(f, q, a->id, b, reason, source, &by);
        if (!rc && ctx->json)
            tool_emit_json(json_pack("{s:I,s:I,s:I}", "added",
                                     (json_int_t)b->added, "already",
                                     (json_int_t)b->already, "invalid",
                                     (json_int_t)b->invalid));
        else if (!rc)
            printf("suppress import: %lu added, %lu already listed, %lu "
                   "invalid\n", b->added, b->already, b->invalid);
        queue_close(q);
    }
    if (f != stdin)
        fclose(f);
    free(a);
    free(b);
    return rc;
}

/* Write s as one CSV field (quoted when it needs to be). */
static void csv_put(FILE *f, const char *s)
{
    size_t n = strlen(s);
    if (!strpbrk(s, ",\"\r\n") && !(n && (s[0] == ' ' || s[n - 1] == ' '))) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One row of `suppress export`. */
static int export_row(void *arg, const struct queue_suppression *s)
{
    FILE *f = arg;
    char ts[32];
    csv_put(f, s->email);
    fputc(',', f);
    csv_put(f, s->reason);
    fputc(',', f);
    csv_put(f, s->source);
    fprintf(f, ",%s,", tool_time_text(s->since, ts, sizeof ts));
    csv_put(f, s->added_by_name);
    fputc('\n', f);
    return 0;
}

static int cmd_export(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *out = NULL;
    bool bad = false;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--output", &out, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "usage: sluice suppress export [--account A] "
                "[--output FILE]\n");
        return TOOL_EX_USAGE;
    }
    struct queue_account *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    if ((rc = supp_begin(ctx, P " export", ACT_SUPPRESS_EXPORT, acct,
                         "suppression list", &q, a, NULL))) {
        free(a);
        return rc;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        fprintf(stderr, P " export: %s: %s\n", out, strerror(errno));
        rc = TOOL_EX_CANTCREAT;
    } else {
        fputs("email,reason,source,since,added_by\n", f);
        long n = queue_suppressions(q, a->suppression_owner,
                                    view_of(ctx, q, a), NULL, export_row, f);
        if (n < 0)
            rc = tool_admin_error(P " export", (int)n);
        if (fflush(f) || ferror(f)) {
            fprintf(stderr, P " export: write error\n");
            rc = rc ? rc : TOOL_EX_IOERR;
        }
        if (out && fclose(f) && !rc)
            rc = TOOL_EX_IOERR;
    }
    queue_close(q);
    free(a);
    return rc;
}

int tool_suppress_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "add", .run = cmd_add },
        { .name = "list", .run = cmd_list },
        { .name = "remove", .run = cmd_remove },
        { .name = "import", .run = cmd_import },
        { .name = "export", .run = cmd_export },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
