/*
 * webhook_int.h - what webhook.c (the consumers: batches, cursors, dead
 * letters) shares with webhook_http.c (libcurl's multi interface on the
 * libuv loop, and the signature).
 *
 * OWNERSHIP
 *   struct webhooks is owned by the engine (e->hooks) from webhooks_open()
 *   to webhooks_close(); it is freed in the close callback of its timer.
 *   Each webhook owns a ring of max_in_flight batches, each with its body
 *   buffer and its curl easy handle, reused from POST to POST.
 */
#ifndef SLUICE_WEBHOOK_INT_H
#define SLUICE_WEBHOOK_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "engine.h"

/* One POST: events (first, last] of the stream, those of them the
 * webhook wants as a JSON array. */
struct wh_batch {
    struct webhook *w;
    CURL *easy;                /* made at the first POST, reused */
    struct curl_slist *hdrs;   /* of the POST in flight */
    char *buf;                 /* the body */
    size_t len, cap;           /* body length; buf's size */
    uint64_t last;             /* newest seq the batch covers */
    unsigned nevents;
    unsigned attempts;
    uint64_t first_try_ms, next_try_ms;
    bool in_flight;
    bool done;                 /* answered 2xx or dead-lettered */
    char error[160];           /* why the last POST failed */
};

/* One event's JSON, at most (event_json_line()). */
#define WH_EVENT_MAX (16u << 10)

/* Webhooks opened in one run, retired ones included. */
#define WH_MAX_SLOTS 256

/* One [webhook NAME] as running. */
struct webhook {
    struct webhooks *all;
    char *account_text;        /* as configured, to compare at a reload */
    bool retired;              /* stopped by a reload: inert to the end */
    char *name, *url, *secret, *dead_letter;
    char cursor[QUEUE_MAX_CURSOR_NAME + 1];
    uint32_t events;           /* mask of 1 << type; 0: all */
    bool any_account;
    uint32_t account;
    unsigned batch, max_in_flight, timeout_ms;
    uint64_t max_age_ms;
    size_t body_cap;           /* batch * WH_EVENT_MAX + room */
    struct wh_batch *ring;     /* max_in_flight; oldest at head */
    unsigned head, count;
    uint64_t read;             /* newest seq read into a batch (or passed) */
    uint64_t acked;            /* every event up to here is handed on */
    uint64_t saved, saving;    /* the cursor saved, the save in flight */
    bool failing;              /* POSTs fail: said once on stderr */
    int read_err, save_err;
    uint64_t sent_events, dead_batches;
};

struct wh_sock;

struct webhooks {
    struct engine *e;
    CURLM *multi;
    uv_timer_t timer;          /* libcurl's timeout */
    struct wh_sock *socks;     /* polled sockets, to close at the end */
    struct webhook **v;        /* WH_MAX_SLOTS; retired ones stay to the end */
    size_t n;
    bool closing;
    uint64_t backlog_ms;       /* when the backlogs go to metrics next */
};

/* webhook_http.c */
/* The multi handle and its timer on e's loop. */
int wh_http_init(struct webhooks *hs);
/* Start b's POST (its body is ready; signed now when there is a secret):
 * 0, or a negative code with b->error filled (b waits for a retry). */
int wh_http_post(struct wh_batch *b);
/* Drop w's POSTs in flight and its easy handles (a retired webhook). */
void wh_http_abort(struct webhook *w);
/* Abort every transfer and close the handles; hs is freed by the timer's
 * close callback. */
void wh_http_close(struct webhooks *hs);

/* webhook.c: b's POST ended (curl result, HTTP status). */
void wh_posted(struct wh_batch *b, CURLcode res, long status);

#endif
