/*
 * cmd_user.c - `sluice user`: people, their roles per account, passwords
 * and TOTP.
 *
 * SYNOPSIS
 *   user add NAME [--account A] [--role ROLE]
 *                 [--password-stdin | --no-password]
 *   user list [--account A] [--json]
 *   user role USER ACCOUNT ROLE          (ROLE none removes it)
 *   user disable|enable USER
 *   user passwd USER [--password-stdin]
 *   user totp USER enable|disable
 *   user unlock USER
 *
 * DESCRIPTION
 *   A user holds a role per account: owner, admin, manager, sender,
 *   viewer.  A role on the master applies to its sub-accounts unless one is
 *   set on the sub-account itself (which wins, even when lower).  `add`
 *   grants ROLE (default viewer) on A (default: the caller's account); the
 *   password comes from the first line of standard input, or a prompt on
 *   the terminal (asked twice); --no-password makes a user who logs in
 *   with API keys only.  Passwords are stored as argon2id hashes.
 *   Disabling a user stops their API keys at once.  `totp enable` prints
 *   the base32 secret and an otpauth:// URI once; from then on a password
 *   login also needs the current 6-digit code, each code once.  Failed
 *   logins lock a user out for a while (auth.c); `unlock` ends that now.
 *   The first user, who ends the bootstrap admin, must be an owner or
 *   admin of the master with a password.
 *
 *   Who may: admins of the accounts concerned (owner to grant or take
 *   owner); disable/enable/passwd/totp/unlock of another user need admin on
 *   every account where that user holds a role (owner where they are
 *   owner), or admin on the master for a user without roles; a user may
 *   always change their own password and TOTP.
 *
 * DIAGNOSTICS
 *   64 bad options or unknown role, 65 invalid or duplicate name (or a
 *   first user who could not administer), 66 unknown user or account, 77
 *   refused.  Nothing changes on any failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_admin.h"

#define P "sluice user"
#define PASSWORD_MAX 1024

static const char usage_text[] =
    "usage: sluice user add NAME [--account A] [--role ROLE]\n"
    "                   [--password-stdin | --no-password]\n"
    "       sluice user list [--account A] [--json]\n"
    "       sluice user role USER ACCOUNT owner|admin|manager|sender|"
    "viewer|none\n"
    "       sluice user disable|enable USER\n"
    "       sluice user passwd USER [--password-stdin]\n"
    "       sluice user totp USER enable|disable\n"
    "       sluice user unlock USER\n"
    "\n"
    "Roles: owner, admin (users, sub-accounts), manager (lists, campaigns,\n"
    "sending), sender (send existing campaigns), viewer (read-only).  A\n"
    "role on the master applies to sub-accounts unless set there.\n";

/* Read a new password: stdin's first line, or twice on the terminal. */
static int new_password(const char *user, bool from_stdin, char *pw,
                        size_t cap)
{
    if (from_stdin) {
        if (!fgets(pw, (int)cap, stdin)) {
            fprintf(stderr, P ": no password on standard input\n");
            return TOOL_EX_NOINPUT;
        }
        size_t n = strlen(pw);
        if (n && pw[n - 1] == '\n')
            pw[--n] = 0;
        else if (n == cap - 1) {
            fprintf(stderr, P ": password longer than %zu bytes\n", cap - 2);
            return TOOL_EX_DATAERR;
        }
        if (n && pw[n - 1] == '\r')
            pw[--n] = 0;
    } else {
        char again[PASSWORD_MAX], prompt[128];
        snprintf(prompt, sizeof prompt, "New password for %s: ", user);
        if (tool_read_secret(prompt, NULL, pw, cap) ||
            tool_read_secret("Again: ", NULL, again, sizeof again)) {
            fprintf(stderr, P ": use --password-stdin or --no-password "
                    "without a terminal\n");
            return TOOL_EX_USAGE;
        }
        bool same = !strcmp(pw, again);
        sodium_memzero(again, sizeof again);
        if (!same) {
            fprintf(stderr, P ": the passwords differ\n");
            return TOOL_EX_DATAERR;
        }
    }
    if (!*pw) {
        fprintf(stderr, P ": empty password\n");
        return TOOL_EX_DATAERR;
    }
    return 0;
}

/* Hash a new password into hash; an exit code on failure. */
static int hash_new(const char *user, bool from_stdin, char *hash, size_t cap)
{
    char pw[PASSWORD_MAX];
    int rc = new_password(user, from_stdin, pw, sizeof pw);
    if (!rc && tool_hash_password(pw, hash, cap)) {
        fprintf(stderr, P ": cannot hash the password (out of memory?)\n");
        rc = TOOL_EX_OSERR;
    }
    sodium_memzero(pw, sizeof pw);
    return rc;
}

/* queue_users() callback: stop at the first. */
static int any_user(void *arg, const struct queue_user *u)
{
    (void)arg;
    (void)u;
    return 1;
}

/* The first user ends the bootstrap (auth.c), so it must be able to
 * administer: an owner or admin of the master, with a password.  0 or 65
 * with a message naming the command that does it. */
static int first_user_check(struct tool_ctx *ctx, struct queue *q,
                            const struct queue_account *a, int role,
                            bool nopw)
{
    char master[QUEUE_MAX_ACCOUNT_NAME + 1];
    uint32_t mid = 0;
    if (ctx->identity->via != TOOL_VIA_BOOTSTRAP ||
        queue_users(q, any_user, NULL) != 0 ||
        (a->parent == 0 && role >= QUEUE_ROLE_ADMIN && !nopw))
        return 0;
    queue_account_master(q, &mid);
    tool_account_name(q, mid, master, sizeof master);
    fprintf(stderr, P " add: the first user must be an owner (or admin) of "
            "the master account %s with a password: once a user exists, "
            "commands need an identity and the spool owner acts only with "
            "--bootstrap.  Add one first:\n  sluice user add NAME --account "
            "%s --role owner --password-stdin\n", master, master);
    return TOOL_EX_DATAERR;
}

static int cmd_add(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *role_s = "viewer";
    bool bad = false, from_stdin = false, nopw = false;
    char hash[QUEUE_MAX_PWHASH + 1] = "", obj[160];
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    int rc = 0, role, r;
    uint32_t id;

    if (!a)
        return TOOL_EX_OSERR;
    for (int i = 2; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad) ||
            tool_opt(argc, argv, &i, "--role", &role_s, &bad))
            continue;
        if (!strcmp(argv[i], "--password-stdin"))
            from_stdin = true;
        else if (!strcmp(argv[i], "--no-password"))
            nopw = true;
        else
            bad = true;
    }
    if (bad || argc < 2 || argv[1][0] == '-' || (from_stdin && nopw)) {
        fprintf(stderr, "%s", usage_text);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if ((role = queue_role_parse(role_s)) < 0) {
        fprintf(stderr, P " add: unknown role '%.40s' (owner, admin, "
                "manager, sender, viewer, none)\n", role_s);
        rc = TOOL_EX_USAGE;
        goto out;
    }
    if ((rc = tool_admin_begin(ctx, false, "user add", &q)))
        goto out;
    if (acct) {
        if ((rc = tool_find_account(ctx, q, P " add", acct, a)))
            goto out;
    } else if (queue_account_get(q, tool_default_account(ctx, q), a)) {
        fprintf(stderr, P " add: there is no account yet: create the master "
                "first (sluice account create NAME)\n");
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    snprintf(obj, sizeof obj, "user %.64s as %s on %s", argv[1],
             queue_role_name(role), a->name);
    if ((rc = tool_authorize(ctx, q, ACT_USER_ADD, a->id,
                             role == QUEUE_ROLE_OWNER ? QUEUE_ROLE_OWNER : 0,
                             obj, &r)))
        goto out;
    struct queue_user u;
    if (queue_user_find(q, argv[1], &u) == 0) {
        fprintf(stderr, P " add: user name '%s' is taken\n", argv[1]);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if ((rc = first_user_check(ctx, q, a, role, nopw)))
        goto out;
    if (!nopw && (rc = hash_new(argv[1], from_stdin, hash, sizeof hash)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, a->id);
    int err = queue_user_add(q, argv[1], nopw ? NULL : hash, a->id, role,
                             &by, &id);
    if (err)
        rc = tool_admin_error(P " add", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:i,s:s,s:s,s:s}", "id", (int)id, "name",
                                 argv[1], "account", a->name, "role",
                                 queue_role_name(role)));
    else
        printf("added user %s (id %u)%s%s%s%s\n", argv[1], id,
               role ? " as " : "", role ? queue_role_name(role) : "",
               role ? " on " : "", role ? a->name : "");
out:
    queue_close(q);
    free(a);
    return rc;
}

/* Whether the caller is user u itself. */
static bool is_self(const struct tool_ctx *ctx, const struct queue_user *u)
{
    return ctx->identity->via != TOOL_VIA_BOOTSTRAP &&
           ctx->identity->user == u->id;
}

/* Find a user or print "no such user" (66). */
static int find_user(struct queue *q, const char *prog, const char *name,
                     struct queue_user *u)
{
    int err = queue_user_find(q, name, u);
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "%s: no such user '%.80s'\n", prog, name);
        return TOOL_EX_NOINPUT;
    }
    if (err)
        return tool_admin_error(prog, err);
    return 0;
}

struct list_ctx {
    struct tool_ctx *ctx;
    struct queue *q;
    uint32_t account;     /* 0: every user (master-level caller) */
    json_t *arr;
};

static int list_one(void *arg, const struct queue_user *u)
{
    struct list_ctx *l = arg;
    struct tool_user_roles r;
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], roles[512] = "", until[32];
    int eff = QUEUE_ROLE_NONE;
    uint32_t from = 0;
    bool locked = u->login.locked_until > (int64_t)time(NULL);

    if (l->account) {
        queue_role_effective(l->q, u->id, l->account, &eff, &from);
        if (eff == QUEUE_ROLE_NONE)
            return 0;
    }
    if (!tool_user_roles_load(l->q, u->id, &r)) {
        tool_user_roles_free(&r);
        return 1;
    }
    json_t *jr = json_object();
    size_t o = 0;
    for (size_t i = 0; i < r.n; i++) {
        const char *rn = queue_role_name(r.r[i].role);
        tool_account_name(l->q, r.r[i].account, name, sizeof name);
        json_object_set_new(jr, name, json_string(rn));
        int n = snprintf(roles + o, sizeof roles - o, "%s%s:%s", o ? "," : "",
                         name, rn);
        if (n > 0 && (size_t)n < sizeof roles - o)
            o += (size_t)n;
    }
    tool_user_roles_free(&r);
    if (l->arr) {
        json_t *j = json_pack("{s:i,s:s,s:b,s:b,s:b,s:o,s:b}", "id",
                              (int)u->id, "name", u->name, "disabled",
                              u->disabled, "totp", u->totp, "password",
                              *u->pwhash != 0, "roles", jr, "locked", locked);
        if (locked)
            json_object_set_new(j, "locked_until", json_string(
                tool_time_text(u->login.locked_until, until, sizeof until)));
        if (l->account) {
            json_object_set_new(j, "role", json_string(queue_role_name(eff)));
            json_object_set_new(j, "role_from", json_string(
                tool_account_name(l->q, from, name, sizeof name)));
        }
        json_array_append_new(l->arr, j);
        return 0;
    }
    json_decref(jr);
    printf("%-4u %-24s %-8s %-4s %-10s %s\n", u->id, u->name,
           u->disabled ? "disabled" : locked ? "locked" : "active",
           u->totp ? "yes" : "no",
           l->account ? queue_role_name(eff) : "-", *roles ? roles : "-");
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    uint32_t account;
    bool named;
    int rc = tool_list_begin(ctx, argc, argv,
                             "user", ACT_USER_LIST, "users",
                             &q, &account, &named);
    if (rc)
        return rc;
    uint32_t master = 0;
    queue_account_master(q, &master);
    /* the master's users without --account: everyone */
    struct list_ctx l = { ctx, q, named || account != master ? account : 0,
                          ctx->json ? json_array() : NULL };
    if (!l.arr)
        printf("%-4s %-24s %-8s %-4s %-10s %s\n", "ID", "NAME", "STATE",
               "TOTP", "ROLE", "ROLES");
    long n = queue_users(q, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (l.arr) {
        tool_emit_json(l.arr);
    }
    queue_close(q);
    return rc;
}

static int cmd_role(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    struct queue_user u;
    char obj[200];
    int rc, role, old, r;

    if (!a)
        return TOOL_EX_OSERR;
    if (argc != 4) {
        fprintf(stderr, "usage: sluice user role USER ACCOUNT owner|admin|"
                "manager|sender|viewer|none\n");
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((role = queue_role_parse(argv[3])) < 0) {
        fprintf(stderr, P " role: unknown role '%.40s' (owner, admin, "
                "manager, sender, viewer, none)\n", argv[3]);
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "user role", &q)) ||
        (rc = find_user(q, P " role", argv[1], &u)) ||
        (rc = tool_find_account(ctx, q, P " role", argv[2], a)))
        goto out;
    queue_role_get(q, u.id, a->id, &old);
    snprintf(obj, sizeof obj, "user %s role %s on %s", u.name,
             queue_role_name(role), a->name);
    if ((rc = tool_authorize(ctx, q, ACT_USER_ROLE, a->id,
                             role == QUEUE_ROLE_OWNER ||
                                     old == QUEUE_ROLE_OWNER
                                 ? QUEUE_ROLE_OWNER : 0,
                             obj, &r)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, a->id);
    int err = queue_role_set(q, u.id, a->id, role, &by);
    if (err)
        rc = tool_admin_error(P " role", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:s,s:s,s:s}", "user", u.name,
                                 "account", a->name, "role",
                                 queue_role_name(role), "was",
                                 queue_role_name(old)));
    else
        printf("%s is now %s on %s (was %s)\n", u.name, queue_role_name(role),
               a->name, queue_role_name(old));
out:
    queue_close(q);
    free(a);
    return rc;
}

/* `disable` or `enable` (argv[0] says which). */
static int cmd_disable(struct tool_ctx *ctx, int argc, char **argv)
{
    bool disable = !strcmp(argv[0], "disable");
    struct queue *q;
    struct queue_user u;
    const char *prog = disable ? P " disable" : P " enable";
    int rc, r;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice user %s USER\n",
                disable ? "disable" : "enable");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, prog + 7, &q)))
        return rc;
    if (!(rc = find_user(q, prog, argv[1], &u)) &&
        !(rc = tool_may_manage_user(ctx, q, disable ? ACT_USER_DISABLE
                                                    : ACT_USER_ENABLE,
                                    &u, &r))) {
        struct queue_actor by = tool_actor(ctx, r,
                                           ctx->identity->acting_account);
        int err = queue_user_set_disabled(q, u.id, disable, &by);
        if (err)
            rc = tool_admin_error(prog, err);
        else if (ctx->json)
            tool_emit_json(json_pack("{s:s,s:b}", "user", u.name, "disabled",
                                     disable));
        else
            printf("%s user %s%s\n", disable ? "disabled" : "enabled", u.name,
                   disable ? " (their API keys stop working now)" : "");
    }
    queue_close(q);
    return rc;
}

static int cmd_passwd(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_user u;
    char hash[QUEUE_MAX_PWHASH + 1];
    bool from_stdin = argc == 3 && !strcmp(argv[2], "--password-stdin");
    int rc, r = QUEUE_ROLE_NONE;
    if (argc < 2 || argc > 3 || argv[1][0] == '-' ||
        (argc == 3 && !from_stdin)) {
        fprintf(stderr, "usage: sluice user passwd USER [--password-stdin]\n");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "user passwd", &q)))
        return rc;
    if ((rc = find_user(q, P " passwd", argv[1], &u)))
        goto out;
    if (!is_self(ctx, &u) &&
        (rc = tool_may_manage_user(ctx, q, ACT_USER_PASSWD, &u, &r)))
        goto out;
    if ((rc = hash_new(u.name, from_stdin, hash, sizeof hash)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, ctx->identity->acting_account);
    int err = queue_user_set_password(q, u.id, hash, &by);
    if (err)
        rc = tool_admin_error(P " passwd", err);
    else if (!ctx->json)
        printf("password of %s changed\n", u.name);
    else
        tool_emit_json(json_pack("{s:s,s:b}", "user", u.name, "changed", 1));
out:
    queue_close(q);
    return rc;
}

/* `user unlock USER`: end a lock-out after failed logins now. */
static int cmd_unlock(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_user u;
    int rc, r;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice user unlock USER\n");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "user unlock", &q)))
        return rc;
    if (!(rc = find_user(q, P " unlock", argv[1], &u)) &&
        !(rc = tool_may_manage_user(ctx, q, ACT_USER_UNLOCK, &u, &r))) {
        struct queue_actor by = tool_actor(ctx, r,
                                           ctx->identity->acting_account);
        struct queue_login clear = { 0 };
        int err = queue_user_login_set(q, u.id, &clear, &by);
        if (err)
            rc = tool_admin_error(P " unlock", err);
        else if (ctx->json)
            tool_emit_json(json_pack("{s:s,s:b}", "user", u.name, "locked",
                                     0));
        else
            printf("user %s may log in again (failed logins cleared)\n",
                   u.name);
    }
    queue_close(q);
    return rc;
}

/* Percent-encode s for the otpauth URI path and query. */
static void uri_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = 0;
}

static int cmd_totp(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_user u;
    unsigned char secret[QUEUE_TOTP_SECRET];
    int rc, r = QUEUE_ROLE_NONE;
    bool enable;
    if (argc != 3 ||
        (strcmp(argv[2], "enable") && strcmp(argv[2], "disable"))) {
        fprintf(stderr, "usage: sluice user totp USER enable|disable\n");
        return TOOL_EX_USAGE;
    }
    enable = !strcmp(argv[2], "enable");
    if ((rc = tool_admin_begin(ctx, false, "user totp", &q)))
        return rc;
    if ((rc = find_user(q, P " totp", argv[1], &u)))
        goto out;
    if (!is_self(ctx, &u) &&
        (rc = tool_may_manage_user(ctx, q, ACT_USER_TOTP, &u, &r)))
        goto out;
    if (sodium_init() < 0) {
        rc = TOOL_EX_SOFTWARE;
        goto out;
    }
    if (enable)
        randombytes_buf(secret, sizeof secret);
    struct queue_actor by = tool_actor(ctx, r, ctx->identity->acting_account);
    int err = queue_user_set_totp(q, u.id, enable ? secret : NULL, &by);
    if (err) {
        rc = tool_admin_error(P " totp", err);
        goto out;
    }
    if (!enable) {
        if (ctx->json)
            tool_emit_json(json_pack("{s:s,s:b}", "user", u.name, "totp", 0));
        else
            printf("TOTP off for %s\n", u.name);
        goto out;
    }
    char b32[64], esc[3 * QUEUE_MAX_USER_NAME + 8], uri[512];
    tool_base32(secret, sizeof secret, b32, sizeof b32);
    uri_escape(u.name, esc, sizeof esc);
    snprintf(uri, sizeof uri, "otpauth://totp/sluice:%s?secret=%s&issuer="
             "sluice&algorithm=SHA1&digits=6&period=30", esc, b32);
    if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:b,s:s,s:s}", "user", u.name, "totp",
                                 1, "secret", b32, "uri", uri));
    else
        printf("TOTP on for %s; add this to the authenticator now (it is not "
               "shown again):\n  secret  %s\n  uri     %s\n", u.name, b32,
               uri);
out:
    sodium_memzero(secret, sizeof secret);
    queue_close(q);
    return rc;
}

int tool_user_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "add", .run = cmd_add },
        { .name = "list", .run = cmd_list },
        { .name = "role", .run = cmd_role },
        { .name = "disable", .run = cmd_disable },
        { .name = "enable", .run = cmd_disable },
        { .name = "passwd", .run = cmd_passwd },
        { .name = "totp", .run = cmd_totp },
        { .name = "unlock", .run = cmd_unlock },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
