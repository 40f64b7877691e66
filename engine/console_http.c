/*
 * console_http.c - the web console's door on sluiced's HTTP server: the
 * pages and the JSON API's requests, their bodies, headers and answers.
 *
 * DESCRIPTION
 *   unsub_http.c's router hands over every URL the console owns:
 *     GET /                 index.html
 *     GET /static/PATH      the file PATH of engine/console/, by its exact
 *                           name in the embedded table (console_assets.h)
 *     /console/api/...      the JSON API (console_api.c; sign-in and
 *                           sessions in console_auth.c)
 *   Pages carry Content-Security-Policy default-src 'self' (no inline
 *   script, nothing from elsewhere), X-Content-Type-Options nosniff and
 *   X-Frame-Options DENY; API answers are application/json with
 *   Cache-Control no-store.  A POST body must be application/json (a
 *   cross-site form cannot send that without the browser asking first,
 *   which is never granted), and is read whole up to
 *   CONSOLE_BODY_MAX bytes: beyond is 413 (at once when Content-Length
 *   says so; a chunked body is dropped as it comes, and its connection
 *   closed past 256 KiB).  Every answer closes its connection, as all of
 *   the server's answers do (unsub_http.c).
 *
 *   libmicrohttpd calls this on its own thread; a sign-in's password hash
 *   runs on the sign-in thread (console_login.c) meanwhile, its
 *   connection suspended.  What is read comes from
 *   the spool (LMDB read transactions), the status file sluiced rewrites
 *   whole each second, and the session table (console_auth.c, under its
 *   mutex); every change goes through the spool's own synchronous calls
 *   (the writer thread commits them), as the CLI's do, so sluiced's loop
 *   picks them up within its usual second.  Nothing here touches the
 *   loop's state.
 *
 * DIAGNOSTICS
 *   Unknown pages and API paths are 404, another method 405, a body over
 *   the cap 413, out of memory 500; errors are {"error": "text"}.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "console.h"
#include "console_assets.h"
#include "console_int.h"
#include "http_inject.h"

#define API "/console/api"
/* A chunked body over the cap is dropped as it comes; past this much the
 * connection is closed. */
#define DROP_MAX (256 * 1024)

/* A POST's body, gathered over the handler's calls (con_cls). */
struct console_req {
    http_inject_release release;   /* first, as in every con_cls here */
    size_t len;
    bool too_big;
    size_t dropped;
    struct console_login_job job;  /* POST /login: on the sign-in thread */
    char body[CONSOLE_BODY_MAX + 1];
};

/* The release function of a console_req. */
static void req_free(void *p)
{
    struct console_req *r = p;
    if (r)
        free(r->job.text);
    free(r);
}

void console_start(struct engine *e)
{
    char path[4096];
    if (e->cfg.status_file)
        snprintf(path, sizeof path, "%s", e->cfg.status_file);
    else
        snprintf(path, sizeof path, "%s/status.json", e->cfg.spool);
    console_api_setup(path);
    console_auth_setup(e->cfg.console_idle_timeout_ms
                       ? e->cfg.console_idle_timeout_ms
                       : CONSOLE_IDLE_DEFAULT_MS);
    console_login_start();
}

void console_stop(struct engine *e)
{
    (void)e;
    console_login_stop();
}

unsigned console_error(json_t **out, unsigned status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_decref(*out);
    *out = json_pack("{s:s}", "error", text);
    return status;
}

json_t *console_body(struct console_call *k, json_t **out, unsigned *status)
{
    json_error_t err;
    if (!k->len)
        return json_object();
    json_t *j = json_loadb(k->body, k->len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        *status = console_error(out, MHD_HTTP_BAD_REQUEST,
                                "the body is not a JSON object");
        return NULL;
    }
    return j;
}

json_t *console_time(int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !gmtime_r(&tt, &tm))
        return json_null();
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *console_account_name(struct queue *q, uint32_t id)
{
    struct queue_account a;
    if (!id || queue_account_get(q, id, &a))
        return json_null();
    return json_string(a.name);
}

/* Queue a response of len bytes with the headers every answer carries. */
static int respond(struct MHD_Connection *c, unsigned status,
                   const char *type, const void *data, size_t len,
                   enum MHD_ResponseMemoryMode mode, bool page,
                   const char *cookie)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (page)
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'");
    MHD_add_response_header(r, "Cache-Control", page ? "no-cache"
                                                     : "no-store");
    if (cookie && *cookie)
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", page ? "GET, HEAD" : "GET, POST");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    int ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answer with JSON document doc (taken). */
static int send_json(struct MHD_Connection *c, unsigned status, json_t *doc,
                     const char *cookie)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                       oom, sizeof oom - 1, MHD_RESPMEM_PERSISTENT, false,
                       NULL);
    }
    return respond(c, status, "application/json", text, strlen(text),
                   MHD_RESPMEM_MUST_FREE, false, cookie);
}

/* An error of the API as JSON. */
static int send_error(struct MHD_Connection *c, unsigned status,
                      const char *text)
{
    return send_json(c, status, json_pack("{s:s}", "error", text), NULL);
}

/* GET / and /static/NAME from the embedded table. */
static int send_page(struct MHD_Connection *c, const char *url,
                     const char *method)
{
    const char *name = !strcmp(url, "/") ? "/index.html" : url + 7;
    const struct console_asset *a;
    /* an exact name of the table: nothing else can be reached */
    for (a = console_assets; a->path && strcmp(a->path, name); a++)
        ;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                       "GET only\n", 9, MHD_RESPMEM_PERSISTENT, true, NULL);
    if (!a->path)
        return respond(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n",
                       10, MHD_RESPMEM_PERSISTENT, true, NULL);
    return respond(c, MHD_HTTP_OK, a->type, a->data, a->len,
                   MHD_RESPMEM_PERSISTENT, true, NULL);
}

/* Gather a POST body; true while more is to come (*ret set). */
static bool gather(struct MHD_Connection *c, const char *upload,
                   size_t *upload_size, void **con_cls, int *ret)
{
    struct console_req *r = *con_cls;
    if (!r) {
        if (http_declared_too_big(c, CONSOLE_BODY_MAX)) {
            *ret = send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                              "the request body is over its cap");
            return true;
        }
        if (!(r = calloc(1, sizeof *r))) {
            *ret = MHD_NO;
            return true;
        }
        r->release = req_free;
        *con_cls = r;
        *ret = MHD_YES;
        return true;
    }
    if (*upload_size) {
        if (r->len + *upload_size > CONSOLE_BODY_MAX) {
            r->too_big = true;
            r->dropped += *upload_size;
            if (r->dropped > DROP_MAX) {
                *ret = MHD_NO;
                return true;
            }
        } else {
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        *ret = MHD_YES;
        return true;
    }
    if (r->too_big) {
        *ret = send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                          "the request body is over its cap");
        return true;
    }
    r->body[r->len] = 0;
    return false;
}

/* POST /login: handed to the sign-in thread (console_login.c), then
 * answered once it resumes the connection. */
static int login(struct engine *e, struct MHD_Connection *c,
                 struct console_req *r)
{
    struct console_login_job *job = &r->job;
    if (job->state == CONSOLE_LOGIN_NONE) {
        *job = (struct console_login_job){ .e = e, .c = c, .body = r->body,
                                           .len = r->len,
                                           .secure = job->secure };
        int rc = console_login_submit(job);
        if (rc < 0)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "too many sign-ins at once: try again");
        if (rc == 0)
            return MHD_YES;   /* suspended until the answer is in */
    }
    if (job->state != CONSOLE_LOGIN_DONE)
        return MHD_YES;
    if (!job->text)
        return send_error(c, job->status == MHD_HTTP_SERVICE_UNAVAILABLE
                          ? MHD_HTTP_SERVICE_UNAVAILABLE
                          : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          job->status == MHD_HTTP_SERVICE_UNAVAILABLE
                          ? "sluiced is stopping" : "out of memory");
    return respond(c, job->status, "application/json", job->text,
                   strlen(job->text), MHD_RESPMEM_MUST_COPY, false,
                   job->cookie);
}

/* One call of the JSON API, its body read. */
static int api(struct engine *e, struct MHD_Connection *c, const char *url,
               const char *method, struct console_req *r)
{
    struct console_call k = { .e = e, .q = e->q, .c = c, .method = method,
                              .path = url + strlen(API),
                              .body = r ? r->body : "",
                              .len = r ? r->len : 0 };
    json_t *out = NULL;
    unsigned status;
    bool post = !strcmp(method, "POST");
    if (strcmp(method, "GET") && !post)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "the console's API takes GET and POST");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (post && (k.len || !strcmp(k.path, "/login")) &&
        (!ct || strncasecmp(ct, "application/json", 16) ||
         (ct[16] && ct[16] != ';' && ct[16] != ' ')))
        /* a cross-site form can post text/plain, never JSON unasked */
        return send_error(c, MHD_HTTP_BAD_REQUEST,
                          "a POST body must be application/json");
    const char *proto = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    "X-Forwarded-Proto");
    k.secure = proto && !strcasecmp(proto, "https");
    if (!strcmp(k.path, "/login") && post && r) {
        r->job.secure = k.secure;
        return login(e, c, r);
    }
    if (!strcmp(k.path, "/login"))
        status = console_error(&out, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "POST /console/api/login");
    else if ((status = console_identify(&k, &out)))
        ;   /* 401 or 403, answered */
    else if (!strcmp(k.path, "/logout"))
        status = post ? console_logout(&k, &out)
                      : console_error(&out, MHD_HTTP_METHOD_NOT_ALLOWED,
                                      "POST /console/api/logout");
    else if (!strcmp(k.path, "/session"))
        status = console_session(&k, &out);
    else
        status = console_api(&k, &out);
    if (!out)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return send_json(c, status, out, k.cookie);
}

bool console_http(struct engine *e, struct MHD_Connection *c,
                  const char *url, const char *method, const char *upload,
                  size_t *upload_size, void **con_cls, int *ret)
{
    if (!strcmp(url, "/") || !strncmp(url, "/static/", 8)) {
        *ret = send_page(c, url, method);
        return true;
    }
    if (strncmp(url, API "/", strlen(API) + 1) && strcmp(url, API))
        return false;
    if (!strcmp(method, "POST") &&
        gather(c, upload, upload_size, con_cls, ret))
        return true;
    *ret = api(e, c, url, method, *con_cls);
    return true;
}
