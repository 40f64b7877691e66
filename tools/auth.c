/*
 * auth.c - who is running a `sluice` command.
 *
 * DESCRIPTION
 *   Ways to act, tried in this order:
 *     --as USER        a password from $SLUICE_PASSWORD or a prompt on
 *                      /dev/tty, checked against the user's argon2id hash
 *                      (libsodium); then, for a user with TOTP, a code from
 *                      $SLUICE_TOTP or a prompt (RFC 6238, totp.c).  A code
 *                      is good once: its time step must lie above the last
 *                      one accepted for the user, else it is refused as a
 *                      wrong code.
 *     $SLUICE_API_KEY  "sk_<id>_<64 hex digits>": the id finds the key, the
 *                      SHA-256 of the 32 secret bytes is compared with the
 *                      stored hash in constant time.  A revoked key or a
 *                      disabled user is refused at once.
 *     $SLUICE_USER     the default of --as (sluice.c), below the key.
 *     none             the bootstrap admin, recorded as "(bootstrap)" with
 *                      the uid and $SUDO_USER (else $USER): only the owner
 *                      of the spool directory (or, before it exists, its
 *                      parent), and only while the spool has no user.
 *                      Once one exists, a command without an identity is
 *                      refused; `sluice --bootstrap` is the owner's
 *                      break-glass (every admin locked out): it acts as
 *                      the bootstrap anyway, warns on stderr and writes an
 *                      audit record for the command.
 *   Password logins are throttled per user in the user record (queue
 *   QUEUE_LOGIN_*): every wrong password or code counts, and a user locked
 *   out is refused before the password is even read or hashed.  A good
 *   login clears the count.
 *
 *   Commands gated before they open the spool (tool_gate) learn whether
 *   it has users in a child process: a damaged spool faults the child, not
 *   the command.  A spool that cannot be opened at all has no user anyone
 *   could log in as, so there the owner may still run what repairs it
 *   (spool check, salvage, init); every other command fails on its own.
 *   Owns the one identity of the process (ctx->identity points to it).
 *
 * DIAGNOSTICS
 *   Every failure prints "sluice: refused: <why>" and returns 77; failures
 *   and lock-outs of a named user or key, refusals for want of an
 *   identity and every --bootstrap command are written to the audit trail
 *   when the spool can be written.  Messages do not say whether a user
 *   exists, but for a lock-out (anyone who may open the spool can read
 *   its user names anyway).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "queue_ingress.h"
#include "tool_admin.h"

#define SECRET_MAX 1024

static struct tool_identity identity;

bool tool_has_identity(const struct tool_ctx *ctx)
{
    const char *k = getenv("SLUICE_API_KEY");
    return !ctx->bootstrap && (ctx->as_user || (k && *k));
}

bool tool_is_spool_owner(const struct tool_ctx *ctx)
{
    struct stat st;
    char path[4096];
    size_t n = strlen(ctx->spool);
    if (n == 0 || n >= sizeof path)
        return false;
    memcpy(path, ctx->spool, n + 1);
    /* the spool, or before it exists, the nearest directory above it */
    for (;;) {
        if (stat(path, &st) == 0)
            return st.st_uid == geteuid();
        if (errno != ENOENT || !strcmp(path, ".") || !strcmp(path, "/"))
            return false;
        while (n > 1 && path[n - 1] == '/')
            path[--n] = 0;
        char *slash = strrchr(path, '/');
        if (!slash) {
            snprintf(path, sizeof path, ".");
        } else if (slash == path) {
            path[1] = 0;
        } else {
            *slash = 0;
        }
        n = strlen(path);
    }
}

/* Write s to the terminal; a failure only loses the prompt. */
static void tty_say(int fd, const char *s)
{
    ssize_t r = write(fd, s, strlen(s));
    (void)r;
}

int tool_read_secret(const char *prompt, const char *env, char *buf,
                     size_t cap)
{
    const char *v = env ? getenv(env) : NULL;
    if (v) {
        if (strlen(v) >= cap) {
            fprintf(stderr, "sluice: $%s is too long\n", env);
            return -1;
        }
        memcpy(buf, v, strlen(v) + 1);
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sluice: no terminal to ask on%s%s\n",
                env ? ": set $" : "", env ? env : "");
        return -1;
    }
    struct termios old, quiet;
    bool tty = tcgetattr(fd, &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    tty_say(fd, prompt);
    size_t n = 0;
    bool over = false;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            over = true;
    }
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = 0;
    if (tty)
        tcsetattr(fd, TCSAFLUSH, &old);
    tty_say(fd, "\n");
    close(fd);
    if (over) {
        sodium_memzero(buf, cap);
        fprintf(stderr, "sluice: input longer than %zu bytes\n", cap - 1);
        return -1;
    }
    return 0;
}

int tool_hash_password(const char *password, char *out, size_t cap)
{
    unsigned long long ops = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
    size_t mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
    if (sodium_init() < 0 || cap < crypto_pwhash_argon2id_STRBYTES)
        return -1;
#ifdef SLUICE_TEST_HOOKS
    const char *fast = getenv("SLUICE_PWHASH_FAST");
    if (fast && !strcmp(fast, "1")) {
        /* tests only (tool_admin.h, option SLUICE_TEST_HOOKS) */
        ops = crypto_pwhash_argon2id_OPSLIMIT_MIN;
        mem = crypto_pwhash_argon2id_MEMLIMIT_MIN;
        fprintf(stderr, "sluice: warning: SLUICE_PWHASH_FAST=1: weak "
                        "test-only password hash\n");
    }
#endif
    return crypto_pwhash_argon2id_str(out, password, strlen(password), ops,
                                      mem) ? -1 : 0;
}

/* Record a failed identification in the audit trail (best effort). */
static void audit_refusal(struct queue *q, const char *user, const char *via,
                          const char *action, const char *why)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    if (!q)
        return;
    struct queue_actor a = { user, via, QUEUE_ROLE_NONE, 0 };
    snprintf(result, sizeof result, "refused: %.*s",
             (int)(sizeof result - sizeof "refused: "), why);
    queue_audit_append(q, &a, 0, action ? action : "?", "identity", result);
}

/* Print the refusal, audit it, return 77. */
static int refuse(struct queue *q, const char *user, const char *via,
                  const char *action, const char *why)
{
    fprintf(stderr, "sluice: refused: %s\n", why);
    audit_refusal(q, user, via, action, why);
    return TOOL_EX_NOPERM;
}

/* Identify by $SLUICE_API_KEY (the key checks: queue_ingress.h). */
static int identify_key(struct tool_ctx *ctx, struct queue *q,
                        const char *action)
{
    struct queue_apikey k;
    struct queue_user u;
    char via[32], why[160];

    int err = queue_ingress_key_find(q, getenv("SLUICE_API_KEY"), &k, &u,
                                     why, sizeof why);
    if (err == QUEUE_EINVAL)
        return refuse(q, "?", "apikey", action,
                      "$SLUICE_API_KEY is not a sluice API key "
                      "(sk_<id>_<64 hex digits>)");
    snprintf(via, sizeof via, "apikey:%u", k.id);
    if (err && err != QUEUE_ENOTFOUND && err != QUEUE_EPERM) {
        fprintf(stderr, "sluice: %s: %s\n", ctx->spool, queue_strerror(err));
        return tool_exit_for(err);
    }
    if (err)
        return refuse(q, u.name[0] ? u.name : "?", via, action, why);
    identity = (struct tool_identity){ .via = TOOL_VIA_APIKEY, .user = u.id,
                                       .key_id = k.id,
                                       .key_account = k.account,
                                       .key_scope = k.scope };
    snprintf(identity.name, sizeof identity.name, "%s", u.name);
    snprintf(identity.via_text, sizeof identity.via_text, "%s", via);
    return 0;
}

/* A failed password or code of known user u: print, count it in the
 * user record with its audit record (why, plus note for the trail only),
 * say so when it began a lock-out; 77. */
static int login_failed(struct queue *q, const struct queue_user *u,
                        const char *via, const char *action, const char *why,
                        const char *note)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1], when[32];
    int64_t until = 0;
    fprintf(stderr, "sluice: refused: %s\n", why);
    snprintf(result, sizeof result, "refused: %s%s", why, note);
    struct queue_actor a = { u->name, via, QUEUE_ROLE_NONE, 0 };
    int err = queue_user_login_failed(q, u->id, &a, action, result, &until);
    if (err)
        fprintf(stderr, "sluice: the failed login could not be recorded: "
                "%s\n", queue_strerror(err));
    else if (until)
        fprintf(stderr, "sluice: %d failed logins: user %s is locked out "
                "until %s\n", QUEUE_LOGIN_MAX_FAILURES, u->name,
                tool_time_text(until, when, sizeof when));
    return TOOL_EX_NOPERM;
}

/* Identify by --as USER with password and, if set up, TOTP. */
static int identify_password(struct tool_ctx *ctx, struct queue *q,
                             const char *action)
{
    char pw[SECRET_MAX], prompt[160], code[16], why[256], when[32];
    struct queue_user u;
    const char *name = ctx->as_user;
    int64_t step = 0;
    int err;

    if (sodium_init() < 0)
        return TOOL_EX_SOFTWARE;
    err = queue_user_find(q, name, &u);
    if (err && err != QUEUE_ENOTFOUND) {
        fprintf(stderr, "sluice: %s: %s\n", ctx->spool, queue_strerror(err));
        return tool_exit_for(err);
    }
    /* locked out: refused before the password is read or hashed */
    if (!err && u.login.locked_until > (int64_t)time(NULL)) {
        snprintf(why, sizeof why, "user %s is locked out until %s after "
                 "too many failed logins (an admin may end it: sluice user "
                 "unlock %s)", u.name,
                 tool_time_text(u.login.locked_until, when, sizeof when),
                 u.name);
        return refuse(q, u.name, "password", action, why);
    }
    snprintf(prompt, sizeof prompt, "Password for %s: ", name);
    if (tool_read_secret(prompt, "SLUICE_PASSWORD", pw, sizeof pw))
        return refuse(q, name, "password", action, "no password given");
    /* the one password check (password.c), shared with the console */
    bool ok = tool_password_ok(err ? NULL : u.pwhash, pw);
    sodium_memzero(pw, sizeof pw);
    if (!ok && err)
        return refuse(q, "?", "password", action,
                      "wrong user name or password");
    if (!ok)
        return login_failed(q, &u, "password", action,
                            "wrong user name or password", "");
    if (u.totp) {
        snprintf(prompt, sizeof prompt, "TOTP code for %s: ", name);
        if (tool_read_secret(prompt, "SLUICE_TOTP", code, sizeof code))
            return refuse(q, name, "password+totp", action,
                          "no TOTP code given");
        step = tool_totp_match(u.totp_secret, QUEUE_TOTP_SECRET, time(NULL),
                               code);
        sodium_memzero(code, sizeof code);
        if (step < 0)
            return login_failed(q, &u, "password+totp", action,
                                "wrong TOTP code", "");
    }
    if (u.disabled) {
        snprintf(why, sizeof why, "user %s is disabled", u.name);
        return refuse(q, u.name, "password", action, why);
    }
    /* the step is stored (and a failure count cleared) in one change:
     * of two logins with one code, the second finds the step used */
    if (step > 0 || u.login.failures || u.login.lockouts ||
        u.login.locked_until) {
        err = queue_user_login_ok(q, u.id, step);
        if (err == QUEUE_ESTATE)
            return login_failed(q, &u, "password+totp", action,
                                "wrong TOTP code", " (a code used before)");
        if (err) {
            fprintf(stderr, "sluice: %s: %s\n", ctx->spool,
                    queue_strerror(err));
            return tool_exit_for(err);
        }
    }
    identity = (struct tool_identity){ .via = TOOL_VIA_PASSWORD,
                                       .user = u.id };
    snprintf(identity.name, sizeof identity.name, "%s", u.name);
    snprintf(identity.via_text, sizeof identity.via_text, "%s",
             u.totp ? "password+totp" : "password");
    return 0;
}

/* ------------------------------------------------- the bootstrap admin */

#define WHY_USERS "the spool has users: act as one with --as USER or " \
                  "$SLUICE_API_KEY; the spool owner may use --bootstrap to " \
                  "recover"

/* Whether the spool has users: in the open spool, or (probe) in a child
 * process.  UNREADABLE: it could not be opened at all. */
enum { USERS_NONE, USERS_SOME, USERS_UNREADABLE };

/* Append name (printable, no spaces, cut) to buf after a space and tag. */
static void via_append(char *buf, size_t cap, const char *tag,
                       const char *name)
{
    size_t n = strlen(buf);
    int w = snprintf(buf + n, cap - n, " %s:", tag);
    if (w < 0 || (size_t)w >= cap - n)
        return;
    n += (size_t)w;
    for (; *name && n + 1 < cap; name++)
        buf[n++] = *name > ' ' && *name < 0x7f ? *name : '?';
    buf[n] = 0;
}

/* "uid:N" and who ran it: $SUDO_USER through sudo, else $USER. */
static void owner_via(char *buf, size_t cap)
{
    const char *sudo = getenv("SUDO_USER"), *user = getenv("USER");
    snprintf(buf, cap, "uid:%u", (unsigned)geteuid());
    if (sudo && *sudo)
        via_append(buf, cap, "sudo", sudo);
    else if (user && *user)
        via_append(buf, cap, "user", user);
}

/* queue_users() callback: stop at the first. */
static int any_user(void *arg, const struct queue_user *u)
{
    (void)arg;
    (void)u;
    return 1;
}

/* Whether open spool q has a user; one that cannot be read counts. */
static int users_in(struct queue *q)
{
    return queue_users(q, any_user, NULL) == 0 ? USERS_NONE : USERS_SOME;
}

/* The audit record of a --bootstrap command. */
static void audit_break_glass(struct queue *q, const char *via,
                              const char *action)
{
    struct queue_actor a = { TOOL_BOOTSTRAP_NAME, via, QUEUE_ROLE_OWNER, 0 };
    queue_audit_append(q, &a, 0, action ? action : "?",
                       "--bootstrap (break-glass)", "allowed: spool owner");
}

/* The child of probe(): read whether the spool has users (read-only),
 * then, where there is something to audit, write it. */
static int probe_child(const struct tool_ctx *ctx, const char *via,
                       const char *action)
{
    struct queue_options o = { .flags = QUEUE_OPEN_READONLY };
    struct queue *q;
    int users = USERS_NONE;
    if (!ctx->bootstrap) {
        if (queue_open(&q, ctx->spool, &o))
            return USERS_UNREADABLE;
        users = users_in(q);
        queue_close(q);
        if (users == USERS_NONE)
            return users;
    }
    o.flags = 0;
    if (queue_open(&q, ctx->spool, &o) == 0) {
        if (ctx->bootstrap)
            audit_break_glass(q, via, action);
        else
            audit_refusal(q, "(none)", via, action, WHY_USERS);
        queue_close(q);
    }
    return users;
}

/* Run probe_child() in a child process; its answer, USERS_UNREADABLE
 * when it died (a damaged spool), -1 when there is no child. */
static int probe(const struct tool_ctx *ctx, const char *via,
                 const char *action)
{
    int st;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* a fault of the child (a damaged spool) says nothing, dumps
         * nothing: the parent goes on */
        struct rlimit none = { 0, 0 };
        setrlimit(RLIMIT_CORE, &none);
        signal(SIGBUS, SIG_DFL);
        _exit(probe_child(ctx, via, action));
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) > USERS_UNREADABLE)
        return USERS_UNREADABLE;
    return WEXITSTATUS(st);
}

/* No identity given: the spool's owner as the bootstrap admin, while the
 * spool has no user or with --bootstrap.  q: the open spool, or NULL
 * before the command opened it. */
static int identify_owner(struct tool_ctx *ctx, struct queue *q,
                          const char *action)
{
    char via[QUEUE_MAX_AUDIT_VIA + 1];
    owner_via(via, sizeof via);
    if (!tool_is_spool_owner(ctx)) {
        if (ctx->bootstrap)
            fprintf(stderr, "sluice: refused: --bootstrap: only the owner "
                    "of %s may act as the bootstrap admin (this is uid "
                    "%u)\n", ctx->spool, (unsigned)geteuid());
        else
            fprintf(stderr, "sluice: refused: no identity: set "
                    "$SLUICE_API_KEY or use --as USER (only the owner of %s "
                    "may act without one, and only until the spool has a "
                    "user)\n", ctx->spool);
        return TOOL_EX_NOPERM;
    }
    int users = USERS_NONE;
    if (q && !ctx->bootstrap)
        users = users_in(q);
    else if (!q)
        users = probe(ctx, via, action);
    if (users < 0) {
        fprintf(stderr, "sluice: cannot fork: %s\n", strerror(errno));
        return TOOL_EX_OSERR;
    }
    if (users == USERS_SOME && !ctx->bootstrap) {
        if (!q)   /* the probe audited it */
            fprintf(stderr, "sluice: refused: %s\n", WHY_USERS);
        return q ? refuse(q, "(none)", via, action, WHY_USERS)
                 : TOOL_EX_NOPERM;
    }
    if (ctx->bootstrap) {
        fprintf(stderr, "sluice: warning: --bootstrap: acting as the "
                "bootstrap admin (every right on every account) as %s; "
                "this is written to the audit trail\n", via);
        if (q)
            audit_break_glass(q, via, action);
    }
    identity = (struct tool_identity){ .via = TOOL_VIA_BOOTSTRAP,
                                       .acting_role = QUEUE_ROLE_OWNER };
    snprintf(identity.name, sizeof identity.name, "%s", TOOL_BOOTSTRAP_NAME);
    snprintf(identity.via_text, sizeof identity.via_text, "%s", via);
    ctx->identity = &identity;
    return 0;
}

int tool_identify(struct tool_ctx *ctx, struct queue *q, const char *action)
{
    if (ctx->identity)
        return 0;
    if (!tool_has_identity(ctx))
        return identify_owner(ctx, q, action);
    if (!q) {
        fprintf(stderr, "sluice: refused: no spool at %s to find the user "
                "in\n", ctx->spool);
        return TOOL_EX_NOPERM;
    }
    int rc = ctx->as_user ? identify_password(ctx, q, action)
                          : identify_key(ctx, q, action);
    if (rc == 0)
        ctx->identity = &identity;
    return rc;
}
