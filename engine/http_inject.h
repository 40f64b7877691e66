/*
 * http_inject.h - POST /api/inject/v1 on sluiced's HTTP server: messages
 * from an application's JSON, queued for its recipients (KumoMTA's shape).
 *
 * DESCRIPTION
 *   unsub_http.c owns the libmicrohttpd daemon and hands every request for
 *   HTTP_INJECT_PATH to http_inject_request().  The request is checked
 *   (key, size, JSON, content), its messages made and submitted to the
 *   spool's writer from the daemon's thread, and the connection suspended
 *   until the writer has committed them all: 200 means queued durably.
 *   The libuv loop takes no part in it.
 *
 * OWNERSHIP
 *   http_inject_new() copies what it needs from the configuration (a
 *   reload does not change a running server).  http_inject_stop() waits
 *   for every submitted message to be committed and, a little while, for
 *   the answers to go out; call it after no new connection can arrive and
 *   before the daemon stops.  The per-connection state a request leaves
 *   in *con_cls starts with its release function (http_inject_release).
 */
#ifndef SLUICE_HTTP_INJECT_H
#define SLUICE_HTTP_INJECT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_INJECT_PATH "/api/inject/v1"

struct engine;
struct http_inject;

/* The injector for engine e's spool and settings; NULL out of memory. */
struct http_inject *http_inject_new(struct engine *e);

/* The daemon's access handler for HTTP_INJECT_PATH. */
enum MHD_Result http_inject_request(struct http_inject *hi,
                                    struct MHD_Connection *c,
                                    const char *method, const char *upload,
                                    size_t *upload_size, void **con_cls);

/* Free what a request left in *con_cls (its first member calls this). */
typedef void (*http_inject_release)(void *con_cls);

/* The request's Content-Length says its body is over max bytes (or past
 * what strtoull holds): answered 413 before the body is read.  Defined in
 * unsub_http.c, the server's, shared by its endpoints. */
bool http_declared_too_big(struct MHD_Connection *c, uint64_t max);

/* Refuse new requests, wait for those in flight; NULL is fine. */
void http_inject_stop(struct http_inject *hi);
void http_inject_free(struct http_inject *hi);

#endif
