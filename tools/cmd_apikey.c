/*
 * cmd_apikey.c - `sluice apikey`: API keys for scripts and programs.
 *
 * SYNOPSIS
 *   apikey create [--user U] [--account A] --scope read|send|manage|admin
 *                 [--name N]
 *   apikey list [--account A] [--json]
 *   apikey revoke ID
 *
 * DESCRIPTION
 *   A key is "sk_<id>_<64 hex digits>": an id to find it by and 32 random
 *   bytes (libsodium randombytes).  Only the SHA-256 of the random part is
 *   stored; the key is printed once, at creation.  A key acts for its user
 *   on its account (a key of the master also on the sub-accounts) with the
 *   lower of the user's role and its scope (read = viewer, send = sender,
 *   manage = manager, admin = admin; never owner).  Use it by setting
 *   SLUICE_API_KEY.  A revoked key, or any key of a disabled user, is
 *   refused from the next command on.
 *
 *   Anyone may create keys for themselves up to their own role on the
 *   account and revoke their own keys.  A key for another user needs admin
 *   on the key's account and, since the key is that user's credential as
 *   a password is, admin (owner for an owner) on every account where that
 *   user holds a role; a key for a user without a role on the account
 *   (another tenant's user) is refused.  Revoking others' keys needs admin
 *   on the key's account.  `list` shows the caller's own keys and, on
 *   accounts where the caller is admin, everyone's.
 *
 * DIAGNOSTICS
 *   64 bad options or scope, 66 unknown user, account or key, 77 refused
 *   (audited), also for a user without a role on the account.
 */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"

#define P "sluice apikey"
#define SECRET 32

static const char usage_text[] =
    "usage: sluice apikey create [--user U] [--account A]\n"
    "                     --scope read|send|manage|admin [--name N]\n"
    "       sluice apikey list [--account A] [--json]\n"
    "       sluice apikey revoke ID\n"
    "\n"
    "The key is shown once; set SLUICE_API_KEY to it to act as its user\n"
    "with the lower of the user's role and the key's scope.\n";

static const char *const scope_names[] = { "", "read", "send", "manage",
                                           "admin" };

/* Scope name -> role, -1 if unknown. */
static int parse_scope(const char *s)
{
    for (int i = QUEUE_ROLE_VIEWER; i <= QUEUE_ROLE_ADMIN; i++)
        if (!strcmp(s, scope_names[i]))
            return i;
    return -1;
}

static int cmd_create(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *user_s = NULL, *acct = NULL, *scope_s = NULL, *name = NULL;
    bool bad = false;
    struct queue *q = NULL;
    struct queue_account *a = malloc(sizeof *a);
    struct queue_user u;
    unsigned char secret[SECRET], hash[QUEUE_APIKEY_HASH];
    char obj[200], hex[2 * SECRET + 1];
    int rc, scope, r, have;
    uint32_t id;

    if (!a)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--user", &user_s, &bad) &&
            !tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--scope", &scope_s, &bad) &&
            !tool_opt(argc, argv, &i, "--name", &name, &bad))
            bad = true;
    if (bad || !scope_s) {
        fprintf(stderr, "%s", usage_text);
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((scope = parse_scope(scope_s)) < 0) {
        fprintf(stderr, P " create: unknown scope '%.40s' (read, send, "
                "manage, admin)\n", scope_s);
        free(a);
        return TOOL_EX_USAGE;
    }
    if (name && strlen(name) > QUEUE_MAX_KEY_NAME) {
        fprintf(stderr, P " create: --name longer than %d bytes\n",
                QUEUE_MAX_KEY_NAME);
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "apikey create", &q)))
        goto out;
    if (!user_s && ctx->identity->via == TOOL_VIA_BOOTSTRAP) {
        fprintf(stderr, P " create: the bootstrap has no keys of its own: "
                "give --user\n");
        rc = TOOL_EX_USAGE;
        goto out;
    }
    int err = user_s ? queue_user_find(q, user_s, &u)
                     : queue_user_get(q, ctx->identity->user, &u);
    if (err) {
        fprintf(stderr, P " create: no such user '%.80s'\n",
                user_s ? user_s : ctx->identity->name);
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    if (acct) {
        if ((rc = tool_find_account(ctx, q, P " create", acct, a)))
            goto out;
    } else if (queue_account_get(q, tool_default_account(ctx, q), a)) {
        fprintf(stderr, P " create: there is no account yet\n");
        rc = TOOL_EX_NOINPUT;
        goto out;
    }
    bool own = ctx->identity->via != TOOL_VIA_BOOTSTRAP &&
               ctx->identity->user == u.id;
    snprintf(obj, sizeof obj, "apikey of %s on %s scope %s", u.name, a->name,
             scope_s);
    if ((rc = tool_authorize(ctx, q, own ? ACT_APIKEY_CREATE_OWN
                                         : ACT_APIKEY_CREATE,
                             a->id, own ? scope : 0, obj, &r)))
        goto out;
    if ((err = queue_role_effective(q, u.id, a->id, &have, NULL)) ||
        have == QUEUE_ROLE_NONE) {
        char why[300];
        snprintf(why, sizeof why, "'apikey create': %s has no role on %s "
                 "(a key acts only where its user has one)", u.name,
                 a->name);
        rc = tool_refuse(ctx, q, ACT_APIKEY_CREATE, a->id, obj, why);
        goto out;
    }
    /* a key for someone else is a credential of theirs: as for their
     * password, admin wherever they hold a role */
    if (!own && (rc = tool_may_manage_user(ctx, q, ACT_APIKEY_CREATE, &u,
                                           NULL)))
        goto out;
    if (sodium_init() < 0) {
        rc = TOOL_EX_SOFTWARE;
        goto out;
    }
    unsigned int hl = sizeof hash;
    randombytes_buf(secret, sizeof secret);
    if (!EVP_Digest(secret, sizeof secret, hash, &hl, EVP_sha256(), NULL)) {
        rc = TOOL_EX_SOFTWARE;
        goto out;
    }
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    struct queue_actor by = tool_actor(ctx, r, a->id);
    err = queue_apikey_create(q, u.id, a->id, scope, name, hash, &by, &id);
    if (err) {
        rc = tool_admin_error(P " create", err);
        goto out;
    }
    char key[3 + 10 + 1 + sizeof hex];
    snprintf(key, sizeof key, "sk_%u_%s", id, hex);
    if (ctx->json)
        tool_emit_json(json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "id", (int)id,
                                 "key", key, "user", u.name, "account",
                                 a->name, "scope", scope_s, "name",
                                 name ? name : ""));
    else
        printf("API key %u for %s on %s, scope %s:\n%s\n(shown only now: "
               "keep it; set SLUICE_API_KEY to use it)\n", id, u.name,
               a->name, scope_s, key);
    sodium_memzero(key, sizeof key);
out:
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(hex, sizeof hex);
    queue_close(q);
    free(a);
    return rc;
}

struct list_ctx {
    struct tool_ctx *ctx;
    struct queue *q;
    uint32_t account;
    json_t *arr;
};

static int list_one(void *arg, const struct queue_apikey *k)
{
    struct list_ctx *l = arg;
    struct queue_account *a = malloc(sizeof *a);
    char uname[QUEUE_MAX_USER_NAME + 1], ts[32];
    int r = QUEUE_ROLE_NONE;
    if (!a)
        return 1;
    if (queue_account_get(l->q, k->account, a) ||
        (k->account != l->account && a->parent != l->account)) {
        free(a);
        return 0;
    }
    bool own = l->ctx->identity->via != TOOL_VIA_BOOTSTRAP &&
               l->ctx->identity->user == k->user;
    tool_role_on(l->ctx, l->q, k->account, &r);
    if (!own && r < QUEUE_ROLE_ADMIN) {
        free(a);
        return 0;
    }
    tool_user_name(l->q, k->user, uname, sizeof uname);
    tool_time_text(k->created, ts, sizeof ts);
    if (l->arr)
        json_array_append_new(l->arr, json_pack(
            "{s:i,s:s,s:s,s:s,s:s,s:s,s:b}", "id", (int)k->id, "user", uname,
            "account", a->name, "scope", scope_names[k->scope], "name",
            k->name, "created", ts, "revoked", k->revoked));
    else
        printf("%-4u %-20s %-16s %-7s %-9s %-20s %s\n", k->id, uname, a->name,
               scope_names[k->scope], k->revoked ? "revoked" : "active", ts,
               k->name);
    free(a);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    uint32_t account;
    bool named;
    int rc = tool_list_begin(ctx, argc, argv,
                             "apikey", ACT_APIKEY_LIST, "apikeys",
                             &q, &account, &named);
    if (rc)
        return rc;
    struct list_ctx l = { ctx, q, account, ctx->json ? json_array() : NULL };
    if (!l.arr)
        printf("%-4s %-20s %-16s %-7s %-9s %-20s %s\n", "ID", "USER",
               "ACCOUNT", "SCOPE", "STATE", "CREATED", "NAME");
    long n = queue_apikeys(q, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (l.arr) {
        tool_emit_json(l.arr);
    }
    queue_close(q);
    return rc;
}

static int cmd_revoke(struct tool_ctx *ctx, int argc, char **argv)
{
    unsigned long long id;
    struct queue *q;
    struct queue_apikey k;
    char obj[64];
    int rc, r;
    if (argc != 2 || !tool_parse_u64(argv[1], &id) || id == 0 ||
        id > UINT32_MAX) {
        fprintf(stderr, "usage: sluice apikey revoke ID\n");
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "apikey revoke", &q)))
        return rc;
    snprintf(obj, sizeof obj, "apikey %llu", id);
    int err = queue_apikey_get(q, (uint32_t)id, &k);
    if (err) {
        rc = err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
        fprintf(stderr, P " revoke: no API key %llu\n", id);
        goto out;
    }
    bool own = ctx->identity->via != TOOL_VIA_BOOTSTRAP &&
               ctx->identity->user == k.user;
    if ((rc = tool_authorize(ctx, q, own ? ACT_APIKEY_REVOKE_OWN
                                         : ACT_APIKEY_REVOKE,
                             k.account, 0, obj, &r)))
        goto out;
    struct queue_actor by = tool_actor(ctx, r, k.account);
    if ((err = queue_apikey_revoke(q, k.id, &by)))
        rc = tool_admin_error(P " revoke", err);
    else if (ctx->json)
        tool_emit_json(json_pack("{s:i,s:b}", "id", (int)k.id, "revoked", 1));
    else
        printf("revoked API key %u\n", k.id);
out:
    queue_close(q);
    return rc;
}

int tool_apikey_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "create", .run = cmd_create },
        { .name = "list", .run = cmd_list },
        { .name = "revoke", .run = cmd_revoke },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
