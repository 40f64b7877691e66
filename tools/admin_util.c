/*
 * admin_util.c - what the account, user, apikey, domain and audit commands
 * share: opening the spool as an identity, name lookups, error exits, time
 * and file input, JSON output and option parsing.
 *
 * DESCRIPTION
 *   Admin commands open the spool for writing (a refusal must be written
 *   to the audit trail even for a read).  Only the bootstrap may create a
 *   spool; anyone else gets "no spool" (66).  A spool that exists but may
 *   not be read is "permission denied" (77, tool_open_spool).  Owns nothing
 *   beyond the call.
 *
 * DIAGNOSTICS
 *   Errors are printed as "sluice <command>: <text>" and mapped to sysexits
 *   codes by tool_admin_error() (tool_exit.c): 64 for what the command line
 *   got wrong before the spool was touched, 65 invalid or duplicate data,
 *   66 unknown names, 77 refusals, the rest as tool_exit_for().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "queue_ingress.h"
#include "tool_admin.h"

int tool_admin_open(struct tool_ctx *ctx, bool create, struct queue **q)
{
    char path[4096];
    struct stat st;
    *q = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", ctx->spool);
    if (create && stat(path, &st) && errno == ENOENT &&
        tool_has_identity(ctx)) {
        fprintf(stderr, "sluice: %s: no spool here (only the owner of the "
                "directory may create one)\n", ctx->spool);
        return TOOL_EX_NOINPUT;
    }
    return tool_open_spool(ctx, create ? QUEUE_OPEN_CREATE : 0, q);
}

int tool_admin_begin(struct tool_ctx *ctx, bool create, const char *action,
                     struct queue **q)
{
    int rc;
    *q = NULL;
    /* without an identity, not the owner: refused before the spool is
     * created or opened (the owner is checked against its users below) */
    if (!tool_has_identity(ctx) && !tool_is_spool_owner(ctx))
        return tool_identify(ctx, NULL, action);
    if ((rc = tool_admin_open(ctx, create, q)))
        return rc;
    if ((rc = tool_identify(ctx, *q, action))) {
        queue_close(*q);
        *q = NULL;
    }
    return rc;
}

int tool_find_account(struct tool_ctx *ctx, struct queue *q,
                      const char *prog, const char *name,
                      struct queue_account *a)
{
    (void)ctx;
    int err = queue_account_find(q, name, a);
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "%s: no such account '%.80s'\n", prog, name);
        return TOOL_EX_NOINPUT;
    }
    if (err) {
        fprintf(stderr, "%s: %s\n", prog, queue_strerror(err));
        return tool_exit_for(err);
    }
    return 0;
}

const char *tool_account_name(struct queue *q, uint32_t id, char *buf,
                              size_t cap)
{
    struct queue_account *a;
    if (!id) {
        snprintf(buf, cap, "(none)");
        return buf;
    }
    snprintf(buf, cap, "-");
    if ((a = malloc(sizeof *a))) {
        if (queue_account_get(q, id, a) == 0)
            snprintf(buf, cap, "%s", a->name);
        free(a);
    }
    return buf;
}

const char *tool_user_name(struct queue *q, uint32_t id, char *buf,
                           size_t cap)
{
    struct queue_user u;
    if (queue_user_get(q, id, &u) == 0)
        snprintf(buf, cap, "%s", u.name);
    else
        snprintf(buf, cap, "#%u", id);
    return buf;
}

bool tool_domain_verified(struct queue *q, const char *domain,
                          uint32_t account)
{
    return queue_ingress_domain_verified(q, domain, account);
}

void tool_emit_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

const char *tool_time_text(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

int tool_parse_time(const char *s, int64_t now, int64_t *out)
{
    unsigned long long v;
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 32)
        return -1;
    if (tool_parse_u64(s, &v)) {
        *out = (int64_t)v;
        return 0;
    }
    char unit = s[n - 1];
    if (n > 1 && strchr("smhd", unit)) {
        char num[40];
        memcpy(num, s, n - 1);
        num[n - 1] = 0;
        if (tool_parse_u64(num, &v) && v < 100ull * 365 * 86400) {
            int64_t mul = unit == 's' ? 1 : unit == 'm' ? 60
                        : unit == 'h' ? 3600 : 86400;
            *out = now - (int64_t)v * mul;
            return 0;
        }
    }
    struct tm tm = { 0 };
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T')
        end = strptime(end + 1, "%H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end + 1, "%S", &tm);
    if (end && *end == 'Z')
        end++;
    if (!end || *end)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

char *tool_read_text_file(const char *prog, const char *path, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(cap + 2);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: %s: cannot read\n", prog, path);
        free(buf);
        return NULL;
    }
    if (n > cap) {
        fprintf(stderr, "%s: %s: longer than %zu bytes\n", prog, path, cap);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        fprintf(stderr, "%s: %s: holds a NUL byte\n", prog, path);
        free(buf);
        return NULL;
    }
    return buf;
}

bool tool_opt(int argc, char **argv, int *i, const char *opt,
              const char **val, bool *bad)
{
    if (strcmp(argv[*i], opt))
        return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sluice: option %s needs a value\n", opt);
        *bad = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

int tool_list_begin(struct tool_ctx *ctx, int argc, char **argv,
                    const char *group, int act, const char *what,
                    struct queue **q, uint32_t *account, bool *named)
{
    const char *acct = NULL;
    bool bad = false;
    char prog[64], action[64];
    snprintf(prog, sizeof prog, "sluice %s list", group);
    snprintf(action, sizeof action, "%s list", group);
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "usage: %s [--account A] [--json]\n", prog);
        return TOOL_EX_USAGE;
    }
    int rc = tool_admin_begin(ctx, false, action, q);
    if (rc)
        return rc;
    *account = tool_default_account(ctx, *q);
    *named = acct != NULL;
    if (acct) {
        struct queue_account *a = malloc(sizeof *a);
        if (!a)
            rc = TOOL_EX_OSERR;
        else if (!(rc = tool_find_account(ctx, *q, prog, acct, a)))
            *account = a->id;
        free(a);
    }
    if (!rc)
        rc = tool_authorize(ctx, *q, act, *account, 0, what, NULL);
    if (rc) {
        queue_close(*q);
        *q = NULL;
    }
    return rc;
}
