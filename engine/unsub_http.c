/*
 * unsub_http.c - the one-click unsubscribe endpoint (RFC 8058) that sluiced
 * serves for the List-Unsubscribe URLs its campaign mail carries.
 *
 * DESCRIPTION
 *   libmicrohttpd runs its own thread on `http_listen = ADDR:PORT`.
 *   POST /u/TOKEN (body "List-Unsubscribe=One-Click", as mailbox providers
 *   send it) checks the token's HMAC with the spool's secret, finds the
 *   contact, and puts its address on the suppression list of the account's
 *   suppression owner at once: the engine checks that list again as each
 *   message leaves the queue, so the contact's queued mail stops.  GET
 *   /u/TOKEN answers a plain page with a button that posts the same form
 *   (a link scanner following GET never unsubscribes anyone).  Anything
 *   else is 404; a forged or garbled token is 400; bodies over 1 KB are 413.
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

#include "engine.h"
#include "queue_admin.h"
#include "queue_campaign.h"
#include "render.h"

#define BODY_MAX 1024

struct req {
    size_t len;
    bool too_big;
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
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Suppress the contact of token; returns the HTTP status. */
static unsigned unsubscribe(struct engine *e, const char *token)
{
    unsigned char secret[QUEUE_TOKEN_SECRET];
    uint32_t account;
    uint64_t campaign, contact;
    if (queue_token_secret(e->q, secret))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    if (render_unsub_decode(token, secret, sizeof secret, &account, &campaign,
                            &contact))
        return MHD_HTTP_BAD_REQUEST;
    struct contact_addr a = { "" };
    int rc = queue_contact_get(e->q, contact, take_addr, &a);
    if (rc == QUEUE_ENOTFOUND)
        return MHD_HTTP_OK; /* deleted meanwhile: nothing left to stop */
    if (rc)
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    /* on the list the account uses, as the account's own entry */
    struct queue_actor by = { .user = "(one-click)", .via = "http",
                              .role = 0, .account = account };
    rc = queue_suppress_add(e->q, account, a.email, "unsubscribed",
                            "one-click", &by);
    if (rc && rc != -EEXIST) {
        fprintf(stderr, "sluiced: unsubscribe of contact %llu: %s\n",
                (unsigned long long)contact, queue_strerror(rc));
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    return MHD_HTTP_OK;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct engine *e = cls;
    (void)version;
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
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->len + *upload_size > BODY_MAX)
            r->too_big = true;
        else {
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return answer(c, 413, "text/plain",
                      "body too large\n");
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
    free(*con_cls);
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
    e->http = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
        (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        on_request, e, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (!e->http) {
        fprintf(stderr, "sluiced: cannot listen on %s for unsubscribes\n",
                e->cfg.http_listen);
        return ENGINE_E_CONFIG;
    }
    return 0;
}

void unsub_http_stop(struct engine *e)
{
    if (e->http)
        MHD_stop_daemon(e->http);
    e->http = NULL;
}
