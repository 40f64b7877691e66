/*
 * console_auth.c - sign-in to the web console, its sessions, CSRF tokens,
 * API keys, and the role checks every console call makes.
 *
 * DESCRIPTION
 *   POST /console/api/login {"user", "password", "totp"?} checks the
 *   password and the TOTP code with the CLI's own code (tools/access.h:
 *   password.c, totp.c) and throttles failures in the user record as the
 *   CLI does (queue_user_login_failed / _ok): a user locked out is
 *   refused (429) before the password is hashed; a wrong password or code
 *   is 401; a user with TOTP is 401 {"totp_required": true} until a good
 *   code comes (each code is good once); a disabled user is 403.  A good
 *   sign-in makes a session: a random 32-byte token (libsodium) in the
 *   cookie sluice_console (HttpOnly; SameSite=Strict; Path=/; and Secure
 *   when the request came over HTTPS through a proxy that says so with
 *   X-Forwarded-Proto: https: http_listen itself speaks plain HTTP) and a
 *   random CSRF token that every POST of the session must
 *   carry in X-CSRF-Token (else 403).  Sessions live in this process's
 *   memory: a restart of sluiced signs everyone out.  A user has at most
 *   SESSIONS_PER_USER: a further sign-in replaces their own session idle
 *   longest (never anyone else's); at most SESSIONS_MAX exist in all, and
 *   past that a sign-in is refused (503).  A session idle for
 *   console_idle_timeout (default 30 min) is gone.
 *
 *   "Authorization: Bearer sk_<id>_<hex>" (an API key, queue_ingress.h)
 *   is taken instead of a cookie, without CSRF (a browser never sends
 *   it by itself).  Roles are read from the spool at each call, with the
 *   CLI's table and rule (tools/authz_table.c), so a role change applies
 *   at once; a user disabled (or removed) ends their sessions at their
 *   next request.  Sign-ins (good and refused), sign-outs
 *   and refusals are written to the audit trail as the CLI writes its
 *   own, the user as the actor and "console" (or "console apikey:N") as
 *   how they proved who they are.
 *
 * DIAGNOSTICS
 *   A spool that cannot be read answers 503; the password hash runs on
 *   libmicrohttpd's thread (a fraction of a second per sign-in).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "console_int.h"
#include "queue_ingress.h"
#include "tool_admin.h"

#define SESSIONS_MAX 1024
#define SESSIONS_PER_USER 16
#define TOKEN_BYTES 32
#define PASSWORD_MAX 1024
#define ACTION "console login"

struct session {
    bool used;
    unsigned char token[TOKEN_BYTES];
    char csrf[CONSOLE_CSRF_LEN + 1];
    uint32_t user;
    char name[QUEUE_MAX_USER_NAME + 1];
    int64_t last_ms;
};

static struct {
    pthread_mutex_t lock;
    unsigned idle_ms;
    struct session s[SESSIONS_MAX];
} sessions = { .lock = PTHREAD_MUTEX_INITIALIZER,
               .idle_ms = CONSOLE_IDLE_DEFAULT_MS };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void console_auth_setup(unsigned idle_ms)
{
    pthread_mutex_lock(&sessions.lock);
    sessions.idle_ms = idle_ms;
    pthread_mutex_unlock(&sessions.lock);
}

/* The session of cookie text (64 hex digits), touched; false if none. */
static bool session_find(const char *text, struct session *out)
{
    unsigned char tok[TOKEN_BYTES];
    size_t n = 0;
    if (!text || strlen(text) != 2 * TOKEN_BYTES ||
        sodium_hex2bin(tok, sizeof tok, text, strlen(text), NULL, &n,
                       NULL) || n != TOKEN_BYTES)
        return false;
    bool found = false;
    int64_t now = now_ms();
    pthread_mutex_lock(&sessions.lock);
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        struct session *s = &sessions.s[i];
        if (!s->used || sodium_memcmp(s->token, tok, TOKEN_BYTES))
            continue;
        if (now - s->last_ms > (int64_t)sessions.idle_ms) {
            sodium_memzero(s, sizeof *s);   /* idle too long: gone */
            break;
        }
        s->last_ms = now;
        *out = *s;
        found = true;
        break;
    }
    pthread_mutex_unlock(&sessions.lock);
    return found;
}

/* A new session for user; its cookie token as hex into hex.  false when
 * every slot holds a live session of someone else. */
static bool session_new(uint32_t user, const char *name, char *hex,
                        char *csrf)
{
    unsigned char rnd[TOKEN_BYTES];
    int64_t now = now_ms();
    pthread_mutex_lock(&sessions.lock);
    struct session *free_slot = NULL, *oldest = NULL;
    unsigned mine = 0;
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        struct session *s = &sessions.s[i];
        if (s->used && now - s->last_ms > (int64_t)sessions.idle_ms)
            sodium_memzero(s, sizeof *s);
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
        } else if (s->user == user) {
            mine++;
            if (!oldest || s->last_ms < oldest->last_ms)
                oldest = s;
        }
    }
    /* a user's own sessions make room for their next one: a user never
     * signs anyone else out */
    struct session *pick = mine >= SESSIONS_PER_USER || !free_slot
                           ? oldest : free_slot;
    if (!pick) {
        pthread_mutex_unlock(&sessions.lock);
        return false;
    }
    memset(pick, 0, sizeof *pick);
    pick->used = true;
    randombytes_buf(pick->token, TOKEN_BYTES);
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(pick->csrf, sizeof pick->csrf, rnd, sizeof rnd);
    pick->user = user;
    snprintf(pick->name, sizeof pick->name, "%s", name);
    pick->last_ms = now;
    sodium_bin2hex(hex, 2 * TOKEN_BYTES + 1, pick->token, TOKEN_BYTES);
    memcpy(csrf, pick->csrf, CONSOLE_CSRF_LEN + 1);
    pthread_mutex_unlock(&sessions.lock);
    return true;
}

/* End the session whose CSRF token is csrf (the caller's). */
static void session_end(const char *csrf)
{
    pthread_mutex_lock(&sessions.lock);
    for (size_t i = 0; i < SESSIONS_MAX; i++)
        if (sessions.s[i].used && !strcmp(sessions.s[i].csrf, csrf))
            sodium_memzero(&sessions.s[i], sizeof sessions.s[i]);
    pthread_mutex_unlock(&sessions.lock);
}

struct queue_actor console_actor(const struct console_call *k, int role,
                                 uint32_t account)
{
    return (struct queue_actor){ k->who.name, k->who.via, role, account };
}

/* Audit a refused sign-in (best effort), as auth.c does. */
static void audit_refusal(struct queue *q, const char *user, const char *via,
                          const char *why)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    struct queue_actor a = { user, via, QUEUE_ROLE_NONE, 0 };
    snprintf(result, sizeof result, "refused: %.*s",
             (int)(sizeof result - sizeof "refused: "), why);
    queue_audit_append(q, &a, 0, ACTION, "identity", result);
}

/* A wrong password or code of known user u: counted (and audited) in
 * the user record; 401, or 429 when it began a lock-out. */
static unsigned login_failed(struct console_call *k,
                             const struct queue_user *u, const char *via,
                             const char *why, bool totp, json_t **out)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    int64_t until = 0;
    snprintf(result, sizeof result, "refused: %s", why);
    struct queue_actor a = { u->name, via, QUEUE_ROLE_NONE, 0 };
    int err = queue_user_login_failed(k->q, u->id, &a, ACTION, result,
                                      &until);
    if (err)
        fprintf(stderr, "sluiced: console: the failed login of %s could "
                "not be recorded: %s\n", u->name, queue_strerror(err));
    unsigned st = console_error(out, until ? MHD_HTTP_TOO_MANY_REQUESTS
                                           : MHD_HTTP_UNAUTHORIZED,
                                "%s%s", why, until
                                ? ": too many failed logins, locked out"
                                : "");
    json_object_set_new(*out, "totp_required", json_boolean(totp));
    return st;
}

/* The answer to a good sign-in and to GET /session. */
static json_t *session_json(struct console_call *k)
{
    uint32_t home = tool_home_account(k->q, k->who.user);
    int role = console_role(k, home);
    uint32_t master = 0;
    queue_account_master(k->q, &master);
    int mrole = console_role(k, master);
    return json_pack("{s:s,s:s,s:o,s:s,s:b,s:b}", "user", k->who.name,
                     "role", queue_role_name(role), "account",
                     console_account_name(k->q, home), "csrf", k->who.csrf,
                     /* what the pages may show: the master-level views
                      * (overview, sites, site pause) need a role there */
                     "master", master && home == master,
                     "admin", mrole >= QUEUE_ROLE_ADMIN);
}

/* A JSON string member of j up to max bytes, or NULL. */
static const char *member(json_t *j, const char *key, size_t max)
{
    json_t *v = json_object_get(j, key);
    const char *s = json_string_value(v);
    return s && json_string_length(v) <= max && strlen(s) ==
           json_string_length(v) ? s : NULL;
}

/* The sign-in of login body b; the status, with *out. */
static unsigned login(struct console_call *k, json_t *b, json_t **out)
{
    unsigned st;
    const char *name = member(b, "user", QUEUE_MAX_USER_NAME);
    const char *pw = member(b, "password", PASSWORD_MAX);
    json_t *tj = json_object_get(b, "totp");
    const char *code = member(b, "totp", 16);
    if (!name || !*name || !pw || (tj && !json_is_null(tj) && !code))
        return console_error(out, MHD_HTTP_BAD_REQUEST, "give \"user\" and "
                             "\"password\" (and \"totp\" when asked) as "
                             "strings");
    if (code && !*code)
        code = NULL;
    struct queue_user u;
    int err = queue_user_find(k->q, name, &u);
    if (err && err != QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    const char *via = !err && u.totp ? "console password+totp"
                                     : "console password";
    int64_t t = (int64_t)time(NULL);
    /* locked out: refused before the password is hashed */
    if (!err && u.login.locked_until > t) {
        char why[400];
        snprintf(why, sizeof why, "user %s is locked out for %lld more "
                 "seconds after too many failed logins (an admin may end "
                 "it: sluice user unlock %s)", u.name,
                 (long long)(u.login.locked_until - t), u.name);
        audit_refusal(k->q, u.name, via, why);
        return console_error(out, MHD_HTTP_TOO_MANY_REQUESTS, "%s", why);
    }
    bool ok = tool_password_ok(err ? NULL : u.pwhash, pw);
    if (!ok && err) {
        audit_refusal(k->q, "?", via, "wrong user name or password");
        st = console_error(out, MHD_HTTP_UNAUTHORIZED,
                           "wrong user name or password");
        json_object_set_new(*out, "totp_required", json_false());
        return st;
    }
    if (!ok)
        return login_failed(k, &u, via, "wrong user name or password",
                            false, out);
    int64_t step = 0;
    if (u.totp && !code) {
        /* the password was right: ask for the code (not a failure) */
        st = console_error(out, MHD_HTTP_UNAUTHORIZED,
                           "a TOTP code is required");
        json_object_set_new(*out, "totp_required", json_true());
        return st;
    }
    if (u.totp &&
        (step = tool_totp_match(u.totp_secret, QUEUE_TOTP_SECRET, t,
                                code)) < 0)
        return login_failed(k, &u, via, "wrong TOTP code", true, out);
    if (u.disabled) {
        char why[120];
        snprintf(why, sizeof why, "user %s is disabled", u.name);
        audit_refusal(k->q, u.name, via, why);
        return console_error(out, MHD_HTTP_FORBIDDEN, "%s", why);
    }
    /* the step stored and the failures cleared in one change: of two
     * sign-ins with one code, the second finds the step used */
    if (step > 0 || u.login.failures || u.login.lockouts ||
        u.login.locked_until) {
        err = queue_user_login_ok(k->q, u.id, step);
        if (err == QUEUE_ESTATE)
            return login_failed(k, &u, via, "wrong TOTP code (a code used "
                                "before)", true, out);
        if (err)
            return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "spool: %s", queue_strerror(err));
    }
    char hex[2 * TOKEN_BYTES + 1];
    k->who = (struct console_who){ .user = u.id };
    snprintf(k->who.name, sizeof k->who.name, "%s", u.name);
    snprintf(k->who.via, sizeof k->who.via, "%s", via);
    if (!session_new(u.id, u.name, hex, k->who.csrf))
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "%d sessions "
                             "are open: try again when some have ended",
                             SESSIONS_MAX);
    snprintf(k->cookie, sizeof k->cookie, CONSOLE_COOKIE "=%s; HttpOnly; "
             "SameSite=Strict; Path=/%s", hex, k->secure ? "; Secure" : "");
    sodium_memzero(hex, sizeof hex);
    struct queue_actor a = console_actor(k, QUEUE_ROLE_NONE, 0);
    queue_audit_append(k->q, &a, 0, ACTION, "session", "ok");
    json_decref(*out);
    *out = session_json(k);
    return MHD_HTTP_OK;
}

unsigned console_login(struct console_call *k, json_t **out)
{
    unsigned st;
    json_t *b = console_body(k, out, &st);
    if (!b)
        return st;
    st = login(k, b, out);
    json_t *pw = json_object_get(b, "password");
    if (json_is_string(pw))   /* best effort: jansson keeps its copy */
        sodium_memzero((char *)json_string_value(pw), json_string_length(pw));
    json_decref(b);
    return st;
}

unsigned console_logout(struct console_call *k, json_t **out)
{
    if (k->who.by_key)
        return console_error(out, MHD_HTTP_BAD_REQUEST,
                             "an API key has no session to end");
    session_end(k->who.csrf);
    snprintf(k->cookie, sizeof k->cookie, CONSOLE_COOKIE "=; HttpOnly; "
             "SameSite=Strict; Path=/; Max-Age=0%s",
             k->secure ? "; Secure" : "");
    struct queue_actor a = console_actor(k, QUEUE_ROLE_NONE, 0);
    queue_audit_append(k->q, &a, 0, "console logout", "session", "ok");
    *out = json_pack("{s:b}", "ok", 1);
    return MHD_HTTP_OK;
}

unsigned console_session(struct console_call *k, json_t **out)
{
    if (strcmp(k->method, "GET"))
        return console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "GET /console/api/session");
    *out = session_json(k);
    return MHD_HTTP_OK;
}

/* Identify by "Authorization: Bearer KEY". */
static unsigned identify_key(struct console_call *k, const char *key,
                             json_t **out)
{
    struct queue_apikey ak;
    struct queue_user u;
    char why[160], via[QUEUE_MAX_AUDIT_VIA + 1];
    int err = queue_ingress_key_find(k->q, key, &ak, &u, why, sizeof why);
    snprintf(via, sizeof via, "console apikey:%u", err == QUEUE_EINVAL
                                                   ? 0 : ak.id);
    if (err == QUEUE_EINVAL || err == QUEUE_ENOTFOUND || err == QUEUE_EPERM) {
        if (err == QUEUE_EINVAL)
            snprintf(why, sizeof why, "not a sluice API key "
                     "(sk_<id>_<64 hex digits>)");
        audit_refusal(k->q, u.name[0] && err != QUEUE_EINVAL ? u.name : "?",
                      via, why);
        return console_error(out, MHD_HTTP_UNAUTHORIZED, "%s", why);
    }
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    k->who = (struct console_who){ .by_key = true, .user = u.id,
                                   .key_id = ak.id,
                                   .key_account = ak.account,
                                   .key_scope = ak.scope };
    snprintf(k->who.name, sizeof k->who.name, "%s", u.name);
    snprintf(k->who.via, sizeof k->who.via, "%s", via);
    return 0;
}

unsigned console_identify(struct console_call *k, json_t **out)
{
    const char *auth = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND,
                                                   "Authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7))
        return identify_key(k, auth + 7, out);
    const char *cookie = MHD_lookup_connection_value(k->c, MHD_COOKIE_KIND,
                                                     CONSOLE_COOKIE);
    struct session s;
    if (!session_find(cookie, &s))
        return console_error(out, MHD_HTTP_UNAUTHORIZED, "%s",
                             cookie ? "the session has ended: sign in again"
                                    : "sign in first");
    /* a user disabled or removed since signing in: the session ends */
    struct queue_user u;
    int err = queue_user_get(k->q, s.user, &u);
    if (err && err != QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    if (err || u.disabled) {
        session_end(s.csrf);
        return console_error(out, MHD_HTTP_UNAUTHORIZED, "user %s is %s",
                             s.name, err ? "gone" : "disabled");
    }
    k->who = (struct console_who){ .user = s.user };
    snprintf(k->who.name, sizeof k->who.name, "%s", s.name);
    snprintf(k->who.via, sizeof k->who.via, "console");
    memcpy(k->who.csrf, s.csrf, sizeof k->who.csrf);
    if (!strcmp(k->method, "POST")) {
        const char *tok = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND,
                                                      "X-CSRF-Token");
        if (!tok || strlen(tok) != CONSOLE_CSRF_LEN ||
            sodium_memcmp(tok, s.csrf, CONSOLE_CSRF_LEN))
            return console_error(out, MHD_HTTP_FORBIDDEN, "a POST needs the "
                                 "session's CSRF token in X-CSRF-Token");
    }
    return 0;
}

int console_role(struct console_call *k, uint32_t account)
{
    int role = QUEUE_ROLE_NONE;
    if (tool_role_for(k->q, k->who.user, k->who.by_key, k->who.key_account,
                      k->who.key_scope, account, &role))
        return QUEUE_ROLE_NONE;
    return role;
}

unsigned console_allow(struct console_call *k, int act, uint32_t account,
                       const char *object, int *role, json_t **out)
{
    const struct tool_perm *p = tool_perm(act);
    uint32_t master = 0, target = account;
    char why[300], result[QUEUE_MAX_AUDIT_RESULT + 1];
    queue_account_master(k->q, &master);
    if (p->on_master)
        target = master;
    int r = console_role(k, target);
    if (target && r >= p->need) {
        if (role)
            *role = r;
        return 0;
    }
    if (p->alt_master && master && target != master) {
        int rm = console_role(k, master);
        if (rm >= p->alt_master) {
            if (role)
                *role = rm;
            return 0;
        }
    }
    if (p->on_master)
        snprintf(why, sizeof why, "'%s' needs role %s on the master "
                 "account; %s has %s", p->name, queue_role_name(p->need),
                 k->who.name, queue_role_name(r));
    else
        snprintf(why, sizeof why, "'%s' on this account needs role %s; %s "
                 "has %s", p->name, queue_role_name(p->need), k->who.name,
                 queue_role_name(r));
    if (k->who.by_key) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, " (through API key %u, scope %s)",
                 k->who.key_id, queue_role_name(k->who.key_scope));
    }
    struct queue_actor a = console_actor(k, r, target);
    snprintf(result, sizeof result, "refused: %.*s",
             (int)(sizeof result - sizeof "refused: "), why);
    queue_audit_append(k->q, &a, target, p->name, object ? object : "",
                       result);
    return console_error(out, MHD_HTTP_FORBIDDEN, "%s", why);
}
