/*
 * console_int.h - what the web console's files share: one API call, who
 * makes it, and the answers (console_http.c routes, console_auth.c signs
 * in and checks, console_api.c and console_incident.c answer).
 */
#ifndef SLUICE_ENGINE_CONSOLE_INT_H
#define SLUICE_ENGINE_CONSOLE_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "queue_admin.h"

/* The largest request body read (a note is at most 2000 characters). */
#define CONSOLE_BODY_MAX 16384
/* The session cookie's name. */
#define CONSOLE_COOKIE "sluice_console"
/* Default idle timeout of a session: 30 minutes. */
#define CONSOLE_IDLE_DEFAULT_MS (30u * 60 * 1000)
/* A CSRF token as text: 32 random bytes in hex. */
#define CONSOLE_CSRF_LEN 64

/* Who makes a call: a signed-in user (session) or an API key. */
struct console_who {
    bool by_key;
    uint32_t user;
    char name[QUEUE_MAX_USER_NAME + 1];
    char via[QUEUE_MAX_AUDIT_VIA + 1];  /* "console", "console apikey:7" */
    uint32_t key_id, key_account;
    int key_scope;
    char csrf[CONSOLE_CSRF_LEN + 1];    /* a session's; "" for a key */
};

/* One API call. */
struct console_call {
    struct engine *e;
    struct queue *q;
    struct MHD_Connection *c;
    const char *method;
    const char *path;        /* after "/console/api" */
    const char *body;        /* POST body (NUL after it), "" none */
    size_t len;
    bool secure;             /* reached over HTTPS (X-Forwarded-Proto) */
    struct console_who who;  /* once console_identify() said yes */
    char cookie[200];        /* Set-Cookie of the answer, "" none */
};

/* An error answer {"error": text}; returns status. */
unsigned console_error(json_t **out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The body as a JSON object (an empty body is {}); NULL after a 400 in
 * *out, *status. */
json_t *console_body(struct console_call *k, json_t **out, unsigned *status);
/* "2026-12-07T20:15:46Z" of unix seconds t, null for 0. */
json_t *console_time(int64_t t);
/* An account's name as JSON (null for 0 or unknown). */
json_t *console_account_name(struct queue *q, uint32_t id);

/* ------------------------------------------------- console_auth.c */

/* Session settings (console_start). */
void console_auth_setup(unsigned idle_ms);
/* POST /login, POST /logout, GET /session. */
unsigned console_login(struct console_call *k, json_t **out);
unsigned console_logout(struct console_call *k, json_t **out);
unsigned console_session(struct console_call *k, json_t **out);
/* Who is calling: the session cookie (and, for a POST, its CSRF token
 * in X-CSRF-Token) or "Authorization: Bearer sk_...".  0 with k->who
 * filled, or the error's status (401, 403) with its answer in *out. */
unsigned console_identify(struct console_call *k, json_t **out);
/* The role k's caller acts with on account (the CLI's rule). */
int console_role(struct console_call *k, uint32_t account);
/* May k's caller do act (enum tool_action) on account?  0 with *role
 * (may be NULL), or 403 with the answer in *out after the refusal is
 * audited (object: what it was done to), as the CLI refuses. */
unsigned console_allow(struct console_call *k, int act, uint32_t account,
                       const char *object, int *role, json_t **out);
/* The actor of k's caller acting with role on account. */
struct queue_actor console_actor(const struct console_call *k, int role,
                                 uint32_t account);

/* ------------------------------------------------ console_login.c */

enum { CONSOLE_LOGIN_NONE, CONSOLE_LOGIN_WAITING, CONSOLE_LOGIN_DONE };

/* One sign-in waiting for the sign-in thread, and its answer. */
struct console_login_job {
    struct console_login_job *next;
    struct engine *e;
    struct MHD_Connection *c;
    const char *body;        /* the request's, kept by its connection */
    size_t len;
    bool secure;
    int state;
    unsigned status;         /* the answer: status, JSON text (malloc'd, */
    char *text;              /* NULL out of memory) and Set-Cookie */
    char cookie[200];
};

/* Start and stop the sign-in thread (console_start, console_stop). */
void console_login_start(void);
void console_login_stop(void);
/* Hand job to the sign-in thread: 0 (its connection is suspended until
 * the answer is in job), 1 (answered at once: no thread), -1 (the queue
 * is full or stopping: answer 503). */
int console_login_submit(struct console_login_job *job);

/* ------------------------------------------ console_api.c, _incident.c */

/* Answer an API call of a caller console_identify() accepted: 404 for a
 * path it does not know, 405 for a method it does not take. */
unsigned console_api(struct console_call *k, json_t **out);
unsigned console_incidents(struct console_call *k, const char *rest,
                           json_t **out);
/* GET campaigns; GET campaigns/ID, POST campaigns/ID/VERB (verb NULL
 * for the GET) (console_campaign.c). */
unsigned console_campaigns(struct console_call *k, json_t **out);
unsigned console_campaign(struct console_call *k, uint64_t id,
                          const char *verb, json_t **out);
/* GET report (console_report.c). */
unsigned console_report(struct console_call *k, json_t **out);
/* The status file sluiced writes (console_start). */
void console_api_setup(const char *status_path);

#endif
