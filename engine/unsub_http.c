/*
 * unsub_http.c - the one-click unsubscribe endpoint (RFC 8058) that sluiced
 * serves for the List-Unsubscribe URLs its campaign mail carries.
 *
 * DESCRIPTION
 *   libmicrohttpd runs its own thread on `http_listen = ADDR:PORT`, behind
 *   the gate (http_gate.c) that answers a malformed request line with 400
 *   and closes, where libmicrohttpd 0.9.75 would close without a word.
 *
 *   POST /u/TOKEN unsubscribes only with the one-click body of RFC 8058
 *   section 3.1: the single form field List-Unsubscribe=One-Click, sent as
 *   application/x-www-form-urlencoded or multipart/form-data (parsed by
 *   libmicrohttpd's post processor).  Any other body, another or a second
 *   field, a file, a missing or other Content-Type, is 400 and suppresses
 *   nobody.  With the right body the token's HMAC is checked with the
 *   spool's secret, the contact found, and its address put on the
 *   suppression list of the account's suppression owner at once: the
 *   engine checks that list again as each message leaves the queue, so the
 *   contact's queued mail stops; then an "unsubscribed" event is recorded
 *   (queue_record_note: its own commit, after the suppression's).  GET /u/TOKEN answers a plain page whose
 *   button posts that same body (a link scanner following GET never
 *   unsubscribes anyone).  POST /api/inject/v1 is the inject API
 *   (http_inject.c; its per-connection state, like ours, starts with the
 *   function that frees it).  GET /metrics and /metrics.json are
 *   metrics_http.c's; /, /static/... and /console/... the web console's
 *   (console_http.c).  Other paths are 404, other methods 405; a
 *   forged or garbled token is 400; a body over BODY_MAX bytes is 413
 *   (at once when its Content-Length says so).  Every answer closes the
 *   connection, so each connection carries the one request the gate
 *   checked.
 *
 * DIAGNOSTICS
 *   A spool error answers 503 (the provider tries again) and is logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console.h"
#include "engine.h"
#include "http_gate.h"
#include "http_inject.h"
#include "metrics.h"
#include "queue_admin.h"
#include "queue_campaign.h"
#include "render.h"

/* The largest POST body read: a one-click body is 26 bytes url-encoded,
 * a few hundred as multipart/form-data. */
#define BODY_MAX 4096
/* A chunked body (no Content-Length) over the cap is dropped as it comes;
 * past this much the connection is closed without more ado. */
#define DROP_MAX (256 * 1024)
/* Connections at once, and how long one may take to send its request. */
#define HTTP_CONNECTIONS 256u
#define HTTP_TIMEOUT_S 10u

struct req {
    http_inject_release release;   /* first, as in every con_cls here */
    size_t len;
    bool too_big;
    size_t dropped;
    char body[BODY_MAX + 1];
};

struct contact_addr {
    char email[QUEUE_MAX_RCPT + 1];
};

/* queue_contact_get() callback: keep the address. */
static void take_addr(void *arg, const struct queue_contact *c)
{
    struct contact_addr *a = arg;
    snprintf(a->email, sizeof a->email, "%s", c->email);
}

/* Answer with a small text or HTML page. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned status,
                              const char *type, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    /* one request per connection: the one the gate has checked */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Unsubscribe the contact of token (engine.h). */
int engine_unsubscribe(struct engine *e, const char *token, const char *how,
                       const char *via)
{
    unsigned char secret[QUEUE_TOKEN_SECRET];
    uint32_t account;
    uint64_t campaign, contact;
    char user[32];
    int rc = queue_token_secret(e->q, secret);
    if (rc)
        return rc;
    if (render_unsub_decode(token, secret, sizeof secret, &account, &campaign,
                            &contact))
        return -EINVAL;
    struct contact_addr a = { "" };
    rc = queue_contact_get(e->q, contact, take_addr, &a);
    if (rc == QUEUE_ENOTFOUND)
        return 0; /* deleted meanwhile: nothing left to stop */
    if (rc)
        return rc;
    /* on the list the account uses, as the account's own entry */
    snprintf(user, sizeof user, "(%s)", how);
    struct queue_actor by = { .user = user, .via = via, .role = 0,
                              .account = account };
    rc = queue_suppress_add(e->q, account, a.email, "unsubscribed", how, &by);
    if (rc && rc != -EEXIST) {
        fprintf(stderr, "sluiced: unsubscribe of contact %llu: %s\n",
                (unsigned long long)contact, engine_strerror(rc));
        return rc;
    }
    /* the "unsubscribed" event, after the suppression committed (a second
     * request is a second event; a crash in between loses only the event) */
    struct queue_note n = { .type = QUEUE_EV_UNSUBSCRIBED,
                            .campaign = campaign, .account = account,
                            .rcpt = a.email, .text = how };
    if ((rc = queue_record_note(e->q, &n)))
        fprintf(stderr, "sluiced: unsubscribed event of contact %llu: %s\n",
                (unsigned long long)contact, engine_strerror(rc));
    return 0;
}

/* Suppress the contact of token; returns the HTTP status. */
static unsigned unsubscribe(struct engine *e, const char *token)
{
    int rc = engine_unsubscribe(e, token, "one-click", "http");
    return rc == 0 ? MHD_HTTP_OK
           : rc == -EINVAL ? MHD_HTTP_BAD_REQUEST
                           : MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Token characters: lower-case base32 (render.h), nothing else. */
static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (!n || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '2' && t[i] <= '7')))
            return false;
    return true;
}

/* The form fields of a POST body, as the post processor finds them. */
struct form {
    unsigned fields;
    bool other;          /* a field that is not List-Unsubscribe, or a file */
    size_t vlen;
    char value[16];      /* of List-Unsubscribe, cut at its cap */
};

/* MHD_PostDataIterator: note each field (a value may come in pieces, the
 * first at offset 0). */
static enum MHD_Result take_field(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *filename,
                                  const char *content_type,
                                  const char *transfer_encoding,
                                  const char *data, uint64_t off, size_t size)
{
    struct form *f = cls;
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (off == 0)
        f->fields++;
    if (!key || strcmp(key, "List-Unsubscribe") || filename) {
        f->other = true;
        return MHD_YES;
    }
    if (off != f->vlen || size > sizeof f->value - f->vlen) {
        f->other = true;   /* longer than "One-Click" could be */
        return MHD_YES;
    }
    memcpy(f->value + f->vlen, data, size);
    f->vlen += size;
    return MHD_YES;
}

/* A url-encoded body holds only what a form encoder writes: visible ASCII
 * (a space is '+', anything else %XX).  The post processor itself would
 * let a trailing CR, LF or NUL pass. */
static bool encoded_chars_ok(struct MHD_Connection *c, const struct req *r)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED);
    if (!ct || strncasecmp(ct, MHD_HTTP_POST_ENCODING_FORM_URLENCODED, n))
        return true;   /* multipart: MIME rules, the post processor's job */
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)r->body[i] <= 0x20 ||
            (unsigned char)r->body[i] >= 0x7f)
            return false;
    return true;
}

/* Is the body of c the RFC 8058 one-click body: the one field
 * List-Unsubscribe=One-Click, url-encoded or as multipart/form-data? */
static bool one_click_body(struct MHD_Connection *c, const struct req *r)
{
    struct form f = { 0 };
    if (!encoded_chars_ok(c, r))
        return false;
    struct MHD_PostProcessor *pp =
        MHD_create_post_processor(c, 1024, take_field, &f);
    if (!pp)
        return false;   /* no Content-Type the post processor knows */
    bool ok = MHD_post_process(pp, r->body, r->len) == MHD_YES;
    ok &= MHD_destroy_post_processor(pp) == MHD_YES;
    return ok && f.fields == 1 && !f.other && f.vlen == 9 &&
           !memcmp(f.value, "One-Click", 9);
}

bool http_declared_too_big(struct MHD_Connection *c, uint64_t max)
{
    const char *cl = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    errno = 0;
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    return cl && (errno || n > max);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct engine *e = cls;
    (void)version;
    if (!strcmp(url, HTTP_INJECT_PATH))
        return http_inject_request(e->http_inject, c, method, upload,
                                   upload_size, con_cls);
    int mret;
    if (metrics_http(e, c, url, method, &mret))   /* metrics_http.c */
        return (enum MHD_Result)mret;
    if (console_http(e, c, url, method, upload, upload_size, con_cls,
                     &mret))                      /* console_http.c */
        return (enum MHD_Result)mret;
    if (strncmp(url, "/u/", 3) || !token_ok(url + 3))
        return answer(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n");
    const char *token = url + 3;
    if (!strcmp(method, "GET")) {
        char page[1024];
        snprintf(page, sizeof page,
                 "<!doctype html><title>Unsubscribe</title>"
                 "<form method=\"post\" action=\"/u/%s\">"
                 "<input type=\"hidden\" name=\"List-Unsubscribe\" "
                 "value=\"One-Click\"><p>Stop these emails?</p>"
                 "<button>Unsubscribe</button></form>\n", token);
        return answer(c, MHD_HTTP_OK, "text/html; charset=utf-8", page);
    }
    if (strcmp(method, "POST"))
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                      "GET or POST\n");
    struct req *r = *con_cls;
    if (!r) {
        /* answered before the body is read */
        if (http_declared_too_big(c, BODY_MAX))
            return answer(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain",
                          "body too large\n");
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->release = free;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->len + *upload_size > BODY_MAX) {
            r->too_big = true;   /* a chunked body: dropped as it comes */
            r->dropped += *upload_size;
            if (r->dropped > DROP_MAX)
                return MHD_NO;   /* past any honest one-click request */
        } else {
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return answer(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain",
                      "body too large\n");
    if (!one_click_body(c, r))
        return answer(c, MHD_HTTP_BAD_REQUEST, "text/plain",
                      "not a one-click unsubscribe: the body must be "
                      "List-Unsubscribe=One-Click (RFC 8058)\n");
    unsigned status = unsubscribe(e, token);
    return answer(c, status, "text/plain",
                  status == MHD_HTTP_OK ? "unsubscribed\n"
                  : status == MHD_HTTP_BAD_REQUEST ? "invalid link\n"
                  : "try again later\n");
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    http_inject_release *release = *con_cls;
    if (release)
        (*release)(*con_cls);
    *con_cls = NULL;
}

/* "A.B.C.D:PORT" or "[V6]:PORT" into ss; 0 or -1. */
static int parse_hostport(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || !port || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

int unsub_http_start(struct engine *e)
{
    if (!e->cfg.http_listen)
        return 0;
    struct sockaddr_storage ss;
    if (parse_hostport(e->cfg.http_listen, &ss)) {
        fprintf(stderr, "sluiced: http_listen: '%s' is not ADDR:PORT\n",
                e->cfg.http_listen);
        return ENGINE_E_CONFIG;
    }
    console_start(e);   /* console_http.c: its settings, before requests */
    if (!(e->http_inject = http_inject_new(e))) {
        fprintf(stderr, "sluiced: out of memory\n");
        return -ENOMEM;
    }
    /* no listening socket of its own: the gate hands it connections;
     * inject requests wait for their commit suspended (http_inject.c) */
    e->http = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG |
        MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
        on_request, e,
        MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    char err[200] = "cannot start the HTTP daemon";
    if (!e->http ||
        http_gate_start(&e->http_gate, (struct sockaddr *)&ss,
                        ss.ss_family == AF_INET6
                        ? sizeof(struct sockaddr_in6)
                        : sizeof(struct sockaddr_in), e->http,
                        HTTP_CONNECTIONS, HTTP_TIMEOUT_S * 1000, err,
                        sizeof err)) {
        fprintf(stderr, "sluiced: cannot listen on %s for HTTP: "
                        "%s\n", e->cfg.http_listen, err);
        unsub_http_stop(e);
        return ENGINE_E_CONFIG;
    }
    return 0;
}

void unsub_http_stop(struct engine *e)
{
    http_gate_stop(e->http_gate); /* first: it hands the daemon sockets */
    e->http_gate = NULL;
    http_inject_stop(e->http_inject); /* what it submitted is committed */
    console_stop(e);   /* no sign-in left suspended (console_login.c) */
    if (e->http)
        MHD_stop_daemon(e->http);
    e->http = NULL;
    http_inject_free(e->http_inject);
    e->http_inject = NULL;
}
