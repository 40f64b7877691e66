/*
 * authz_table.c - the one permission table of sluice (who may do what),
 * and the role an identity acts with on an account: shared by the `sluice`
 * commands (authz.c builds its checks and refusals on it) and sluiced's
 * web console (engine/console_auth.c), so both refuse the same things.
 *
 * DESCRIPTION
 *   Each row gives the lowest role an action needs, whether it is needed
 *   on the master rather than the account acted on, and for a sub-account
 *   the role on the master that also allows it (authz.c's header sums the
 *   table up).  tool_role_for() is the role rule: a user's effective role
 *   (queue_role_effective: the account's role, else the master's), and
 *   for an API key the lower of that and the key's scope, only on the
 *   key's own account and, for a key of the master, its sub-accounts.
 *   Part of the sluice_access library (tools/access.h).  Owns no state.
 *
 * DIAGNOSTICS
 *   tool_role_for() returns spool errors; an unknown account or user is
 *   role NONE, not an error.
 */
#include "tool_admin.h"

#define V QUEUE_ROLE_VIEWER
#define S QUEUE_ROLE_SENDER
#define M QUEUE_ROLE_MANAGER
#define A QUEUE_ROLE_ADMIN
#define O QUEUE_ROLE_OWNER

static const struct tool_perm perms[ACT_COUNT] = {
    [ACT_ACCOUNT_CREATE] = { "account create", A, true, 0 },
    [ACT_ACCOUNT_LIST] = { "account list", V, false, 0 },
    [ACT_ACCOUNT_SHOW] = { "account show", V, false, 0 },
    [ACT_ACCOUNT_USAGE] = { "account usage", V, false, 0 },
    [ACT_ACCOUNT_UPDATE] = { "account update", A, false, 0 },
    [ACT_ACCOUNT_LIMITS] = { "account update (limits)", A, true, 0 },
    [ACT_ACCOUNT_DISABLE] = { "account disable", O, false, A },
    [ACT_ACCOUNT_ENABLE] = { "account enable", O, false, A },
    [ACT_USER_ADD] = { "user add", A, false, 0 },
    [ACT_USER_LIST] = { "user list", V, false, 0 },
    [ACT_USER_ROLE] = { "user role", A, false, 0 },
    [ACT_USER_DISABLE] = { "user disable", A, false, 0 },
    [ACT_USER_ENABLE] = { "user enable", A, false, 0 },
    [ACT_USER_TOTP] = { "user totp", A, false, 0 },
    [ACT_USER_PASSWD] = { "user passwd", A, false, 0 },
    [ACT_USER_UNLOCK] = { "user unlock", A, false, 0 },
    [ACT_APIKEY_CREATE] = { "apikey create", A, false, 0 },
    [ACT_APIKEY_CREATE_OWN] = { "apikey create", V, false, 0 },
    [ACT_APIKEY_LIST] = { "apikey list", V, false, 0 },
    [ACT_APIKEY_REVOKE] = { "apikey revoke", A, false, 0 },
    [ACT_APIKEY_REVOKE_OWN] = { "apikey revoke", QUEUE_ROLE_NONE, false, 0 },
    [ACT_DOMAIN_ADD] = { "domain add", A, false, 0 },
    [ACT_DOMAIN_LIST] = { "domain list", M, false, 0 },
    [ACT_DOMAIN_SHOW] = { "domain show", M, false, 0 },
    [ACT_DOMAIN_VERIFY] = { "domain verify", A, false, 0 },
    [ACT_DOMAIN_FORCE] = { "domain verify --force", A, true, 0 },
    [ACT_DOMAIN_KEY_ADD] = { "domain key add", A, false, 0 },
    [ACT_DOMAIN_KEY_LIST] = { "domain key list", M, false, 0 },
    [ACT_DOMAIN_KEY_RETIRE] = { "domain key retire", A, false, 0 },
    [ACT_AUDIT_LIST] = { "audit list", V, false, 0 },
    [ACT_AUDIT_VERIFY] = { "audit verify", V, true, 0 },
    [ACT_INJECT] = { "inject", S, false, 0 },
    [ACT_INJECT_RAW] = { "inject (no account)", A, true, 0 },
    [ACT_PAUSE] = { "pause", A, true, 0 },
    [ACT_RESUME] = { "resume", A, true, 0 },
    [ACT_STATUS] = { "status", V, true, 0 },
    [ACT_SPOOL] = { "spool", V, true, 0 },
    [ACT_PAUSED] = { "paused", V, true, 0 },
    [ACT_DKIM_KEYGEN] = { "dkim keygen", A, true, 0 },
    [ACT_DKIM_READ] = { "dkim list/check", V, true, 0 },
    [ACT_LIST_CREATE] = { "list create", M, false, 0 },
    [ACT_LIST_READ] = { "list list/show", V, false, 0 },
    [ACT_LIST_DELETE] = { "list delete", M, false, 0 },
    [ACT_LIST_IMPORT] = { "list import", M, false, 0 },
    [ACT_SUPPRESS_ADD] = { "suppress add", M, false, 0 },
    [ACT_SUPPRESS_LIST] = { "suppress list", V, false, 0 },
    [ACT_CAMPAIGN_CREATE] = { "campaign create", M, false, 0 },
    [ACT_CAMPAIGN_UPDATE] = { "campaign update", M, false, 0 },
    [ACT_CAMPAIGN_LIST] = { "campaign list", V, false, 0 },
    [ACT_CAMPAIGN_SHOW] = { "campaign show", V, false, 0 },
    [ACT_CAMPAIGN_PREVIEW] = { "campaign preview", V, false, 0 },
    [ACT_CAMPAIGN_TEST] = { "campaign test", S, false, 0 },
    [ACT_CAMPAIGN_SEND] = { "campaign send", S, false, 0 },
    [ACT_CAMPAIGN_PAUSE] = { "campaign pause", S, false, 0 },
    [ACT_CAMPAIGN_RESUME] = { "campaign resume", S, false, 0 },
    [ACT_CAMPAIGN_CANCEL] = { "campaign cancel", M, false, 0 },
    [ACT_SUPPRESS_REMOVE] = { "suppress remove", M, false, 0 },
    [ACT_SUPPRESS_IMPORT] = { "suppress import", M, false, 0 },
    [ACT_SUPPRESS_EXPORT] = { "suppress export", V, false, 0 },
    [ACT_FEEDBACK_INGEST] = { "feedback ingest", M, false, 0 },
    [ACT_WEBHOOK_ADD] = { "webhook add", A, false, 0 },
    [ACT_WEBHOOK_LIST] = { "webhook list", M, false, 0 },
    [ACT_WEBHOOK_TEST] = { "webhook test", M, false, 0 },
    [ACT_WEBHOOK_REMOVE] = { "webhook remove", A, false, 0 },
    [ACT_INCIDENT_VIEW] = { "incident show", V, false, 0 },
    [ACT_INCIDENT_UPDATE] = { "incident update", S, false, 0 },
    [ACT_LIMITS_SET] = { "limits set", A, true, 0 },
    /* a sub-account's admin may lower its own account's and campaigns'
     * limits (cmd_limits.c checks that each value lowers) */
    [ACT_LIMITS_LOWER] = { "limits set (lower)", A, false, 0 },
    [ACT_LIMITS_SHOW] = { "limits show", V, true, 0 },
    /* on the account named by --account, else on the master */
    [ACT_QUEUE_SUMMARY] = { "queue summary", V, false, 0 },
    [ACT_QUEUE_RETRY] = { "queue retry", A, false, 0 },
    [ACT_QUEUE_BOUNCE] = { "queue bounce", A, false, 0 },
    /* on the account named by --account, else the caller's default */
    [ACT_REPORT] = { "report", V, false, 0 },
};

#undef V
#undef S
#undef M
#undef A
#undef O

const char *tool_action_name(int act)
{
    return act > ACT_NONE && act < ACT_COUNT ? perms[act].name : "?";
}


const struct tool_perm *tool_perm(int act)
{
    return act >= ACT_NONE && act < ACT_COUNT ? &perms[act] : NULL;
}

int tool_role_for(struct queue *q, uint32_t user, bool by_key,
                  uint32_t key_account, int key_scope, uint32_t account,
                  int *role)
{
    struct queue_account a;
    int err;
    *role = QUEUE_ROLE_NONE;
    if (!account)
        return 0;
    if (by_key && account != key_account) {
        if ((err = queue_account_get(q, account, &a)))
            return err == QUEUE_ENOTFOUND ? 0 : err;
        if (a.parent != key_account)
            return 0;   /* not the key's account nor one under it */
    }
    err = queue_role_effective(q, user, account, role, NULL);
    if (err == QUEUE_ENOTFOUND) {
        *role = QUEUE_ROLE_NONE;
        return 0;
    }
    if (err)
        return err;
    if (by_key && *role > key_scope)
        *role = key_scope;
    return 0;
}

struct first_account {
    uint32_t user, account;
};

/* queue_roles() callback: the first account (lowest id) of one user. */
static int first_role(void *arg, uint32_t user, uint32_t account, int role)
{
    struct first_account *f = arg;
    (void)role;
    if (user != f->user)
        return 0;
    f->account = account;
    return 1;
}

uint32_t tool_home_account(struct queue *q, uint32_t user)
{
    uint32_t master = 0;
    queue_account_master(q, &master);
    int r = QUEUE_ROLE_NONE;
    if (master)
        queue_role_get(q, user, master, &r);
    if (r != QUEUE_ROLE_NONE || !master)
        return master;
    struct first_account f = { user, 0 };
    queue_roles(q, first_role, &f);   /* (user, account) order */
    return f.account ? f.account : master;
}
