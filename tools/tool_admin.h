/*
 * tool_admin.h - identity, permissions and shared helpers of the `sluice`
 * commands for accounts, users, API keys, sending domains and the audit
 * trail.
 *
 * DESCRIPTION
 *   Every command acts as an identity (auth.c): an API key from
 *   $SLUICE_API_KEY, a user named by the global option --as (password from
 *   $SLUICE_PASSWORD or a prompt on /dev/tty, then a TOTP code from
 *   $SLUICE_TOTP or a prompt when the user has TOTP; $SLUICE_USER is the
 *   default of --as), or, with neither, the owner of the spool directory as
 *   the bootstrap admin ("(bootstrap)", owner rights) while the spool has
 *   no user, and after that only with --bootstrap (break-glass, audited).
 *   Every action checks the identity's role against one table (authz.c); a
 *   refusal names the role needed, is written to the audit trail, and
 *   exits 77.
 */
#ifndef SLUICE_TOOL_ADMIN_H
#define SLUICE_TOOL_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "access.h"
#include "queue_admin.h"
#include "tool.h"

/* ------------------------------------------------------ identity (auth.c) */

enum tool_via { TOOL_VIA_BOOTSTRAP, TOOL_VIA_PASSWORD, TOOL_VIA_APIKEY };

struct tool_identity {
    int via;                         /* enum tool_via */
    uint32_t user;                   /* 0 for the bootstrap */
    char name[QUEUE_MAX_USER_NAME + 1];  /* "(bootstrap)" for it */
    char via_text[QUEUE_MAX_AUDIT_VIA + 1]; /* "uid:0 sudo:ann", "apikey:7" */
    uint32_t key_id;                 /* API key: its id, account, scope */
    uint32_t key_account;
    int key_scope;
    int acting_role;                 /* set by the last tool_authorize() */
    uint32_t acting_account;
};

#define TOOL_BOOTSTRAP_NAME "(bootstrap)"

/* Whether the caller gave an identity (--as or $SLUICE_API_KEY). */
bool tool_has_identity(const struct tool_ctx *ctx);

/* Without an identity: whether the effective uid owns the spool directory
 * (or, when it does not exist yet, the nearest directory above it).  The
 * owner is the bootstrap admin only while the spool has no user, or with
 * --bootstrap (tool_identify). */
bool tool_is_spool_owner(const struct tool_ctx *ctx);

/* Establish who is acting, with q open (NULL allowed only without an
 * identity: then whether the spool has users is read in a child process).
 * On failure prints why (unknown or revoked key, wrong password or code, a
 * code used before, a locked-out or disabled user, no identity and not
 * the owner, no identity on a spool with users), audits the refusal for
 * `action` when the spool can be written, and returns 77.  On success
 * ctx->identity is set. */
int tool_identify(struct tool_ctx *ctx, struct queue *q, const char *action);

/* Read a secret line: from environment variable env if set, else with a
 * prompt on /dev/tty without echo.  Returns 0, or -1 with a message. */
int tool_read_secret(const char *prompt, const char *env, char *buf,
                     size_t cap);

/* argon2id hash of password (crypto_pwhash_str, interactive limits; with
 * SLUICE_PWHASH_FAST=1 in builds with SLUICE_TEST_HOOKS, the minimum
 * limits, for tests only).  Returns 0 or -1. */
int tool_hash_password(const char *password, char *out, size_t cap);

/* -------------------------------------------------- permissions (authz.c) */

/* Actions checked against the permission table. */
enum tool_action {
    ACT_NONE,                   /* 0: none (a tool_cmd without a gate) */
    ACT_ACCOUNT_CREATE, ACT_ACCOUNT_LIST, ACT_ACCOUNT_SHOW, ACT_ACCOUNT_USAGE,
    ACT_ACCOUNT_UPDATE, ACT_ACCOUNT_LIMITS, ACT_ACCOUNT_DISABLE,
    ACT_ACCOUNT_ENABLE,
    ACT_USER_ADD, ACT_USER_LIST, ACT_USER_ROLE, ACT_USER_DISABLE,
    ACT_USER_ENABLE, ACT_USER_TOTP, ACT_USER_PASSWD, ACT_USER_UNLOCK,
    ACT_APIKEY_CREATE, ACT_APIKEY_CREATE_OWN, ACT_APIKEY_LIST,
    ACT_APIKEY_REVOKE, ACT_APIKEY_REVOKE_OWN,
    ACT_DOMAIN_ADD, ACT_DOMAIN_LIST, ACT_DOMAIN_SHOW, ACT_DOMAIN_VERIFY,
    ACT_DOMAIN_FORCE,
    ACT_DOMAIN_KEY_ADD, ACT_DOMAIN_KEY_LIST, ACT_DOMAIN_KEY_RETIRE,
    ACT_AUDIT_LIST, ACT_AUDIT_VERIFY,
    ACT_INJECT, ACT_INJECT_RAW, ACT_PAUSE, ACT_RESUME, ACT_STATUS,
    ACT_SPOOL, ACT_PAUSED, ACT_DKIM_KEYGEN, ACT_DKIM_READ,
    ACT_LIST_CREATE, ACT_LIST_READ, ACT_LIST_DELETE, ACT_LIST_IMPORT,
    ACT_SUPPRESS_ADD, ACT_SUPPRESS_LIST,
    ACT_CAMPAIGN_CREATE, ACT_CAMPAIGN_UPDATE, ACT_CAMPAIGN_LIST,
    ACT_CAMPAIGN_SHOW, ACT_CAMPAIGN_PREVIEW, ACT_CAMPAIGN_TEST,
    ACT_CAMPAIGN_SEND, ACT_CAMPAIGN_PAUSE, ACT_CAMPAIGN_RESUME,
    ACT_CAMPAIGN_CANCEL,
    ACT_SUPPRESS_REMOVE, ACT_SUPPRESS_IMPORT, ACT_SUPPRESS_EXPORT,
    ACT_FEEDBACK_INGEST,
    ACT_WEBHOOK_ADD, ACT_WEBHOOK_LIST, ACT_WEBHOOK_TEST, ACT_WEBHOOK_REMOVE,
    ACT_INCIDENT_VIEW, ACT_INCIDENT_UPDATE,
    ACT_LIMITS_SET, ACT_LIMITS_LOWER, ACT_LIMITS_SHOW,
    ACT_QUEUE_SUMMARY, ACT_QUEUE_RETRY, ACT_QUEUE_BOUNCE,
    ACT_REPORT,
    ACT_COUNT
};

/* cmd_limits.c, cmd_sites.c: `sluice limits`, `sluice sites`,
 * `sluice site-of` */
int tool_limits_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_sites_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_site_of_main(struct tool_ctx *ctx, int argc, char **argv);

/* tool_dns.c: the MX hosts of domain, by preference (at most cap), asked
 * of servers (c-ares "ADDR:PORT,..." form; NULL: the system's).  0, or
 * -EINVAL (bad servers), -ENOENT (no MX), -ETIMEDOUT, -EIO; why in err. */
struct tool_mx {
    char host[256];
    unsigned pref;
};
int tool_mx_lookup(const char *domain, const char *servers,
                   struct tool_mx *out, size_t cap, size_t *n, char *err,
                   size_t errlen);

/* "account create", ... */
const char *tool_action_name(int act);

/* The role the identity in ctx acts with on account (0: none exists).
 * Bootstrap: owner.  A user: queue_role_effective().  An API key: the lower
 * of that and the key's scope, and none on accounts other than the key's
 * own (and, for a key of the master, its sub-accounts). */
int tool_role_on(struct tool_ctx *ctx, struct queue *q, uint32_t account,
                 int *role);

/* Check act on account (for master-level actions account is ignored) with
 * at least role `need` (0: the table's).  Returns 0 with *role (may be
 * NULL) set, or prints "refused: ..." naming the needed role, audits the
 * refusal with object, and returns 77. */
int tool_authorize(struct tool_ctx *ctx, struct queue *q, int act,
                   uint32_t account, int need, const char *object,
                   int *role);

/* Roles of one user (queue_roles()), for listing and checks. */
struct tool_user_roles {
    uint32_t user;
    struct tool_user_role {
        uint32_t account;
        int role;
    } *r;
    size_t n, cap;
    bool nomem;
};
/* Gather user's roles into r; false when they cannot be read or out of
 * memory.  Free with tool_user_roles_free() either way. */
bool tool_user_roles_load(struct queue *q, uint32_t user,
                          struct tool_user_roles *r);
void tool_user_roles_free(struct tool_user_roles *r);

/* Check that the caller may manage user u as act (passwords, TOTP,
 * unlock, disable, API keys for them): admin (owner where u is owner) on
 * every account where u holds a role, or admin on the master for a user
 * without roles.  0 with *role set, or the refusal's exit code. */
int tool_may_manage_user(struct tool_ctx *ctx, struct queue *q, int act,
                         const struct queue_user *u, int *role);

/* Print a refusal and audit it (for rules outside the table). */
int tool_refuse(struct tool_ctx *ctx, struct queue *q, int act,
                uint32_t account, const char *object, const char *why);

/* The account a command acts on when --account is not given: the master
 * for the bootstrap and for users with a role there, a key's own account,
 * else the user's first account with a role.  0 when there is none. */
uint32_t tool_default_account(struct tool_ctx *ctx, struct queue *q);

/* The actor to record for ctx's identity acting with role on account. */
struct queue_actor tool_actor(const struct tool_ctx *ctx, int role,
                              uint32_t account);

/* Gate for the older commands (inject aside): identify and check a
 * master-level act before the command opens the spool itself.  Without an
 * identity the spool is only read in a child process (tool_identify), so
 * a damaged one can still be checked.  Returns 0 or an exit code. */
int tool_gate(struct tool_ctx *ctx, int act, const char *object);

/* ------------------------------------- sluiced.conf (tool_config.c) */

/* The sluiced.conf the tools read: --config FILE, else $SLUICE_CONFIG
 * (set to "": none), else /etc/sluice/sluiced.conf when it exists; NULL
 * when there is none. */
const char *tool_config_path(const struct tool_ctx *ctx);

/* Read sluiced.conf with the engine's parser (config_load): path, else
 * tool_config_path(ctx).  *loaded says whether there was a file (cfg is
 * then to be config_free()d).  0, or after "PROG: FILE:LINE: why" on
 * stderr 78 for a file that does not load (64 for a name too long). */
struct config;
int tool_config_load(const struct tool_ctx *ctx, const char *prog,
                     const char *path, struct config *cfg, bool *loaded);

/* What the tools take from it: the audit key and checkpoint file. */
struct tool_audit_conf {
    char config[4096];          /* the file read, "" none */
    bool keyed;                 /* audit_key is set: key holds it */
    unsigned char key[QUEUE_AUDIT_KEY];
    char checkpoint[4096];      /* audit_checkpoint, "" none */
};
/* Read them (config_load, the engine's parser); 0, or an exit code (78
 * for a file or key that does not load) after saying why on stderr. */
int tool_audit_conf(const struct tool_ctx *ctx, struct tool_audit_conf *a);
/* Give q the key and the checkpoint file (tool_open_spool does it for
 * every writable open); 0 or an exit code after saying why. */
int tool_audit_setup(const struct tool_ctx *ctx, struct queue *q);

/* ------------------------------------------------ helpers (admin_util.c) */

/* Open the spool for an admin command: writable; create only when asked
 * (and only the bootstrap may create one).  Prints why on failure. */
int tool_admin_open(struct tool_ctx *ctx, bool create, struct queue **q);

/* Open, identify; returns 0 or an exit code (q closed then). */
int tool_admin_begin(struct tool_ctx *ctx, bool create, const char *action,
                     struct queue **q);

/* Look up an account by name (or "#ID"); prints "no such account" and
 * returns 66 when unknown (a malformed name: 64). */
int tool_find_account(struct tool_ctx *ctx, struct queue *q,
                      const char *prog, const char *name,
                      struct queue_account *a);
/* The account's name by id ("-" when unknown, "(none)" for 0). */
const char *tool_account_name(struct queue *q, uint32_t id, char *buf,
                              size_t cap);
/* A user's name by id. */
const char *tool_user_name(struct queue *q, uint32_t id, char *buf,
                           size_t cap);

/* Print "prog: text" (the queue's detail when it has one) for an error
 * from an admin change and return tool_exit_for(err) (tool_exit.c): 65
 * invalid or duplicate, 66 not found, 77 permission. */
int tool_admin_error(const char *prog, int err);

/* Whether domain (or a parent of it, never a bare top-level domain) is a
 * verified sending domain of account (inject, campaigns):
 * queue_ingress_domain_verified(), the rule's home. */
bool tool_domain_verified(struct queue *q, const char *domain,
                          uint32_t account);

/* "2024-01-02T03:04:05Z" for unix seconds. */
const char *tool_time_text(int64_t t, char *buf, size_t cap);

/* Parse a time: unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC) or an age
 * N{s,m,h,d} before now.  Returns 0 or -1. */
int tool_parse_time(const char *s, int64_t now, int64_t *out);

/* Read a whole text file of at most cap bytes (NUL-terminated, malloc'ed);
 * NULL with a message on failure. */
char *tool_read_text_file(const char *prog, const char *path, size_t cap);

/* Option parsing: whether argv[*i] is opt taking a value; the value is
 * stored and *i advanced.  A missing value prints usage-style error into
 * *bad. */
/* The front of `sluice GROUP list [--account A] [--json]`: the option,
 * the spool, the account (the one named, else the caller's default; *named
 * says which) and the permission act on it.  On 0 *q is open for the
 * caller to close; else nothing is left open and the exit code returned. */
int tool_list_begin(struct tool_ctx *ctx, int argc, char **argv,
                    const char *group, int act, const char *what,
                    struct queue **q, uint32_t *account, bool *named);

bool tool_opt(int argc, char **argv, int *i, const char *opt,
              const char **val, bool *bad);

/* ------------------------------------- incidents' pauses (incident_pause.c) */

/* A campaign, account or site paused by an incident and still paused. */
struct tool_pause {
    uint64_t incident;
    uint32_t account;              /* the incident's */
    char rule[32], severity[16];
    char kind[16];                 /* campaign, account, site */
    char name[QUEUE_MAX_CTL_NAME + 1]; /* campaign id, account id, site */
    char state[16];                /* paused, pending (to be taken) */
    char resume[16];               /* manual, probe */
    int64_t since_ms, next_probe_ms;
    long long probes;              /* probes that failed */
};

/* Every pause an incident holds that is in effect (malloc'd *v, free()).
 * 0 or a spool code. */
int tool_incident_pauses(struct queue *q, struct tool_pause **v, size_t *n);
/* The entry for kind and name, NULL if none. */
const struct tool_pause *tool_pause_find(const struct tool_pause *v,
                                         size_t n, const char *kind,
                                         const char *name);
/* One entry as JSON {incident, rule, severity, kind, name, state, resume,
 * probes, since, next_probe}, and as a line: "incident 3 (rule blocks,
 * critical) since ...; resumes after a probe, next at ...". */
json_t *tool_pause_json(const struct tool_pause *p);
const char *tool_pause_text(const struct tool_pause *p, char *buf,
                            size_t cap);

/* Subcommand groups. */
int tool_account_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_user_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_apikey_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_webhook_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_incident_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_domain_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_audit_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_campaign_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_feedback_main(struct tool_ctx *ctx, int argc, char **argv);
int tool_queue_main(struct tool_ctx *ctx, int argc, char **argv);

#endif
