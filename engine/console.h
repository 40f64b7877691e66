/*
 * console.h - the web console that sluiced serves on http_listen: the
 * pages at / and /static/..., embedded at build time (console_assets.h),
 * and the JSON API under /console/api/ with sign-in, sessions, CSRF
 * tokens, the CLI's role checks and audit records (console_*.c).
 */
#ifndef SLUICE_ENGINE_CONSOLE_H
#define SLUICE_ENGINE_CONSOLE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct engine;

/* Take what the console needs from the configuration (idle timeout,
 * status file); called where the HTTP server starts, before any
 * request. */
void console_start(struct engine *e);
/* Answer the sign-ins still waiting and stop the console's thread; called
 * before the HTTP server stops. */
void console_stop(struct engine *e);

/* Answer the request if url is the console's (/, /static/..., /console/
 * ...): true with *ret the MHD result; false leaves it to the other
 * handlers.  Arguments as libmicrohttpd's access handler's. */
bool console_http(struct engine *e, struct MHD_Connection *c,
                  const char *url, const char *method, const char *upload,
                  size_t *upload_size, void **con_cls, int *ret);

#endif
