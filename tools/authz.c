/*
 * authz.c - who may do what: the one permission table of the `sluice`
 * commands, and the checks built on it.
 *
 * DESCRIPTION
 *   Roles rise viewer < sender < manager < admin < owner; each row says the
 *   lowest role an action needs and whether it is needed on the account
 *   acted on or on the master (spool-wide and master-level actions).
 *   Summary:
 *     viewer   every read: account list/show/usage, user list, apikey list,
 *              audit list/verify, status, spool, paused, dkim list/check,
 *              list list/show, suppress list/export, campaign
 *              list/show/preview, queue summary
 *     sender   + inject, campaign send/test/pause/resume
 *     manager  + domain list/show/key list, lists (create, delete, import),
 *              suppress add/remove/import, campaign create/update/cancel,
 *              feedback ingest (on the account of each report's delivery)
 *     admin    + users and roles (granting owner aside), unlocking
 *              them, sub-accounts (create, update, disable), API keys of
 *              others (admin wherever that user holds a role), domain
 *              add/verify/key add/key retire, lowering the account's
 *              own live limits (limits set account|campaign), queue
 *              retry/bounce (their --account, else the master); on the
 *              master: limits, live limits (limits set|unset),
 *              pause/resume, dkim keygen, domain verify --force,
 *              injecting without an account
 *     owner    everything, including granting owner and disabling the
 *              account itself
 *   A user's own API keys: creating one needs a role at least the key's
 *   scope; revoking one's own key needs no role.  The role on the master
 *   applies to sub-accounts unless overridden there (queue_role_effective);
 *   an API key acts with the lower of its user's role and its scope, and
 *   only on its own account (a key of the master also on sub-accounts).
 *
 *   The table itself and the role rule are in authz_table.c (library
 *   sluice_access, which sluiced's web console links too); this file
 *   builds the commands' checks and refusals on them.
 *
 * DIAGNOSTICS
 *   A refusal prints "sluice: refused: '<action>' on account <name> needs
 *   role <role>; <user> has <role>", is written to the audit trail with
 *   result "refused: ...", and the command exits 77.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"

struct queue_actor tool_actor(const struct tool_ctx *ctx, int role,
                              uint32_t account)
{
    const struct tool_identity *id = ctx->identity;
    return (struct queue_actor){ id ? id->name : "?", id ? id->via_text : "",
                                 role, account };
}

int tool_role_on(struct tool_ctx *ctx, struct queue *q, uint32_t account,
                 int *role)
{
    const struct tool_identity *id = ctx->identity;
    *role = QUEUE_ROLE_NONE;
    if (!id)
        return 0;
    if (id->via == TOOL_VIA_BOOTSTRAP) {
        *role = QUEUE_ROLE_OWNER;
        return 0;
    }
    /* the role rule itself: authz_table.c, shared with sluiced's console */
    return tool_role_for(q, id->user, id->via == TOOL_VIA_APIKEY,
                         id->key_account, id->key_scope, account, role);
}

uint32_t tool_default_account(struct tool_ctx *ctx, struct queue *q)
{
    const struct tool_identity *id = ctx->identity;
    uint32_t master = 0;
    if (id && id->via == TOOL_VIA_PASSWORD)
        return tool_home_account(q, id->user);
    queue_account_master(q, &master);
    if (!id || id->via == TOOL_VIA_BOOTSTRAP)
        return master;
    return id->key_account;
}

/* "account acme" or "the spool (no master account yet)". */
static const char *where_text(struct queue *q, uint32_t account, char *buf,
                              size_t cap)
{
    char name[QUEUE_MAX_ACCOUNT_NAME + 1];
    if (!account) {
        snprintf(buf, cap, "the spool (there is no master account yet)");
        return buf;
    }
    snprintf(buf, cap, "account %s", tool_account_name(q, account, name,
                                                       sizeof name));
    return buf;
}

int tool_refuse(struct tool_ctx *ctx, struct queue *q, int act,
                uint32_t account, const char *object, const char *why)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    int role = QUEUE_ROLE_NONE;
    fprintf(stderr, "sluice: refused: %s\n", why);
    if (q) {
        tool_role_on(ctx, q, account, &role);
        struct queue_actor a = tool_actor(ctx, role, account);
        snprintf(result, sizeof result, "refused: %s", why);
        queue_audit_append(q, &a, account, tool_action_name(act),
                           object ? object : "", result);
    }
    return TOOL_EX_NOPERM;
}

int tool_authorize(struct tool_ctx *ctx, struct queue *q, int act,
                   uint32_t account, int need, const char *object, int *role)
{
    const struct tool_perm *p = tool_perm(act);
    uint32_t master = 0, target = account;
    char why[400], where[QUEUE_MAX_ACCOUNT_NAME + 64];
    char mname[QUEUE_MAX_ACCOUNT_NAME + 1];
    int r, err;

    if (need < p->need)
        need = p->need;
    if (q && (err = queue_account_master(q, &master)))
        return tool_exit_for(err);
    if (p->on_master)
        target = master;
    if ((err = tool_role_on(ctx, q, target, &r))) {
        fprintf(stderr, "sluice: %s\n", queue_strerror(err));
        return tool_exit_for(err);
    }
    if (r >= need) {
        if (role)
            *role = r;
        ctx->identity->acting_role = r;
        ctx->identity->acting_account = target;
        return 0;
    }
    if (p->alt_master && master && target != master) {
        int rm;
        if ((err = tool_role_on(ctx, q, master, &rm)))
            return tool_exit_for(err);
        if (rm >= p->alt_master) {
            if (role)
                *role = rm;
            ctx->identity->acting_role = rm;
            ctx->identity->acting_account = master;
            return 0;
        }
        snprintf(why, sizeof why, "'%s' on %s needs role %s there or %s on "
                 "the master (%s); %s has %s", p->name,
                 where_text(q, target, where, sizeof where),
                 queue_role_name(need), queue_role_name(p->alt_master),
                 tool_account_name(q, master, mname, sizeof mname),
                 ctx->identity->name, queue_role_name(r));
    } else if (p->on_master && master) {
        snprintf(why, sizeof why, "'%s' needs role %s on the master "
                 "account %s; %s has %s", p->name, queue_role_name(need),
                 tool_account_name(q, master, mname, sizeof mname),
                 ctx->identity->name, queue_role_name(r));
    } else {
        snprintf(why, sizeof why, "'%s' on %s needs role %s; %s has %s",
                 p->name, where_text(q, target, where, sizeof where),
                 queue_role_name(need), ctx->identity->name,
                 queue_role_name(r));
    }
    if (ctx->identity->via == TOOL_VIA_APIKEY) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, " (through API key %u, scope %s)",
                 ctx->identity->key_id,
                 queue_role_name(ctx->identity->key_scope));
    }
    return tool_refuse(ctx, q, act, target, object, why);
}

/* queue_roles() callback: collect the roles of r->user. */
static int roles_of(void *arg, uint32_t user, uint32_t account, int role)
{
    struct tool_user_roles *r = arg;
    if (user != r->user)
        return 0;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 8;
        struct tool_user_role *nr = realloc(r->r, ncap * sizeof *nr);
        if (!nr) {
            r->nomem = true;
            return 1;
        }
        r->r = nr;
        r->cap = ncap;
    }
    r->r[r->n].account = account;
    r->r[r->n++].role = role;
    return 0;
}

bool tool_user_roles_load(struct queue *q, uint32_t user,
                          struct tool_user_roles *r)
{
    *r = (struct tool_user_roles){ .user = user };
    long n = queue_roles(q, roles_of, r);
    return n >= 0 && !r->nomem;
}

void tool_user_roles_free(struct tool_user_roles *r)
{
    free(r->r);
    r->r = NULL;
}

int tool_may_manage_user(struct tool_ctx *ctx, struct queue *q, int act,
                         const struct queue_user *u, int *role)
{
    struct tool_user_roles r;
    char obj[128];
    uint32_t master = 0;
    int rc = 0;
    snprintf(obj, sizeof obj, "user %s", u->name);
    if (!tool_user_roles_load(q, u->id, &r)) {
        tool_user_roles_free(&r);
        fprintf(stderr, "sluice: cannot read %s's roles\n", u->name);
        return TOOL_EX_SOFTWARE;
    }
    if (r.n == 0) {
        queue_account_master(q, &master);
        rc = tool_authorize(ctx, q, act, master, 0, obj, role);
    }
    for (size_t i = 0; i < r.n && !rc; i++)
        rc = tool_authorize(ctx, q, act, r.r[i].account,
                            r.r[i].role == QUEUE_ROLE_OWNER
                                ? QUEUE_ROLE_OWNER : 0,
                            obj, role);
    tool_user_roles_free(&r);
    return rc;
}

int tool_gate(struct tool_ctx *ctx, int act, const char *object)
{
    struct queue *q = NULL;
    int rc;
    if (!tool_has_identity(ctx))
        return tool_identify(ctx, NULL, tool_action_name(act));
    if ((rc = tool_admin_open(ctx, false, &q)))
        return rc;
    if (!(rc = tool_identify(ctx, q, tool_action_name(act))))
        rc = tool_authorize(ctx, q, act, 0, 0, object, NULL);
    queue_close(q);
    return rc;
}
