/*
 * track_http.h - sluiced's open pixel and click redirect (track_http.c).
 *
 * DESCRIPTION
 *   track_http() is called by the HTTP router (unsub_http.c) for every
 *   request: it answers GET and HEAD /o/TOKEN and /c/TOKEN and returns
 *   true, with the MHD result in *ret, or returns false for any other
 *   path.  Runs on the HTTP daemon's thread.
 */
#ifndef SLUICE_TRACK_HTTP_H
#define SLUICE_TRACK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct MHD_Connection;

bool track_http(struct engine *e, struct MHD_Connection *c, const char *url,
                const char *method, int *ret);

/* Is this request one a person is not behind: a HEAD, no User-Agent or a
 * known scanner's, or (for a click: delivered_s not 0) a click within
 * window_ms of the delivery at delivered_s (unix seconds; -1: not yet
 * recorded as delivered)?  Returns the reason ("head", "scanner", ...)
 * or NULL for a request to count. */
const char *track_not_counted(const char *method, const char *ua,
                              int64_t delivered_s, int64_t now_ms,
                              unsigned window_ms);

#endif
