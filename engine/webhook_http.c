/*
 * webhook_http.c - webhook POSTs through libcurl's multi interface, driven
 * by the engine's libuv loop.
 *
 * DESCRIPTION
 *   One multi handle serves every webhook.  libcurl tells us which sockets
 *   to watch (CURLMOPT_SOCKETFUNCTION: a uv_poll_t per socket) and when
 *   to call it back (CURLMOPT_TIMERFUNCTION: one uv_timer_t); the loop
 *   hands readiness back with curl_multi_socket_action().  No thread is
 *   made and nothing blocks: a receiver that hangs holds one batch until
 *   its timeout, never the loop or delivery.  Redirects are not followed
 *   and only http and https are spoken.
 *
 *   Each try of a batch is signed anew (config_webhook_signature(): t is
 *   the time of that POST), so a receiver that refuses a t older than its
 *   window (replays) still takes a batch retried hours later.
 *
 * DIAGNOSTICS
 *   wh_http_post() fails with -ENOMEM (or ENGINE_E_CONFIG when libcurl
 *   refuses an option); the batch waits for its next try.  A socket that
 *   cannot be polled makes libcurl fail that transfer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "webhook_int.h"

struct wh_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct webhooks *hs;
    struct wh_sock *next, *prev;
};

/* The answers of finished transfers to their batches. */
static void collect(struct webhooks *hs)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(hs->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        struct wh_batch *b = NULL;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&b);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(hs->multi, easy);
        if (b)
            wh_posted(b, res, status);
    }
}

/* Free a socket's record once libuv has let go of it. */
static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Stop watching k and close it. */
static void sock_close(struct webhooks *hs, struct wh_sock *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        hs->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

/* A watched socket is ready (or failed). */
static void on_poll(uv_poll_t *h, int status, int events)
{
    struct wh_sock *k = h->data;
    struct webhooks *hs = k->hs;
    int flags = status < 0 ? CURL_CSELECT_ERR
                : (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
                  (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(hs->multi, k->fd, flags, &running);
    collect(hs);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl waits for. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    struct webhooks *hs = userp;
    struct wh_sock *k = socketp;
    (void)easy;
    if (hs->closing)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(hs->multi, s, NULL);
            sock_close(hs, k);
        }
        return 0;
    }
    if (!k) {
        if (!(k = calloc(1, sizeof *k)))
            return -1;
        if (uv_poll_init_socket(hs->e->loop, &k->poll, s)) {
            free(k);
            return -1;
        }
        k->fd = s;
        k->hs = hs;
        k->poll.data = k;
        k->next = hs->socks;
        if (k->next)
            k->next->prev = k;
        hs->socks = k;
        curl_multi_assign(hs->multi, s, k);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) |
             (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    return uv_poll_start(&k->poll, ev, on_poll) ? -1 : 0;
}

/* libcurl's timeout has come. */
static void on_timeout(uv_timer_t *t)
{
    struct webhooks *hs = t->data;
    int running;
    curl_multi_socket_action(hs->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(hs);
}

/* CURLMOPT_TIMERFUNCTION: call back after ms (-1: no timer). */
static int on_timer(CURLM *multi, long ms, void *userp)
{
    struct webhooks *hs = userp;
    (void)multi;
    if (hs->closing)
        return 0;
    if (ms < 0)
        uv_timer_stop(&hs->timer);
    else
        uv_timer_start(&hs->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

int wh_http_init(struct webhooks *hs)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return ENGINE_E_CONFIG;
    if (!(hs->multi = curl_multi_init())) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    uv_timer_init(hs->e->loop, &hs->timer);
    hs->timer.data = hs;
    curl_multi_setopt(hs->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(hs->multi, CURLMOPT_SOCKETDATA, hs);
    curl_multi_setopt(hs->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(hs->multi, CURLMOPT_TIMERDATA, hs);
    return 0;
}

/* A receiver's answer body is not kept. */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* The options of a fresh easy handle for webhook w. */
static int easy_setup(struct wh_batch *b)
{
    struct webhook *w = b->w;
    CURL *c = b->easy;
    if (curl_easy_setopt(c, CURLOPT_URL, w->url) ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") ||
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) ||
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms) ||
        curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-webhook/1") ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard) ||
        curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)b))
        return ENGINE_E_CONFIG;
    return 0;
}

int wh_http_post(struct wh_batch *b)
{
    struct webhook *w = b->w;
    char *body = b->buf;
    if (!b->easy) {
        if (!(b->easy = curl_easy_init())) {
            snprintf(b->error, sizeof b->error, "out of memory");
            return -ENOMEM;
        }
        if (easy_setup(b)) {
            curl_easy_cleanup(b->easy);
            b->easy = NULL;
            snprintf(b->error, sizeof b->error, "libcurl refused an option");
            return ENGINE_E_CONFIG;
        }
    }
    curl_slist_free_all(b->hdrs);
    b->hdrs = NULL;
    struct curl_slist *h = curl_slist_append(NULL,
                                             "Content-Type: application/json");
    char line[160], sig[128];
    if (h && w->secret) {
        struct curl_slist *h2 = NULL;
        if (!config_webhook_signature(w->secret, (long long)time(NULL), body,
                                      b->len, sig, sizeof sig)) {
            snprintf(line, sizeof line, "X-Sluice-Signature: %s", sig);
            h2 = curl_slist_append(h, line);
        }
        if (!h2) {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    snprintf(line, sizeof line, "X-Sluice-Webhook: %s", w->name);
    struct curl_slist *h3 = h ? curl_slist_append(h, line) : NULL;
    if (!h3) {
        curl_slist_free_all(h);
        snprintf(b->error, sizeof b->error, "out of memory");
        return -ENOMEM;
    }
    b->hdrs = h3;
    curl_easy_setopt(b->easy, CURLOPT_HTTPHEADER, b->hdrs);
    curl_easy_setopt(b->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)b->len);
    curl_easy_setopt(b->easy, CURLOPT_POSTFIELDS, body);
    CURLMcode mc = curl_multi_add_handle(w->all->multi, b->easy);
    if (mc != CURLM_OK) {
        snprintf(b->error, sizeof b->error, "libcurl: %s",
                 curl_multi_strerror(mc));
        return -ENOMEM;
    }
    b->in_flight = true;
    return 0;
}

/* Free the timer's owner: every webhook and then hs. */
static void on_timer_closed(uv_handle_t *h)
{
    struct webhooks *hs = h->data;
    for (size_t i = 0; i < hs->n; i++) {
        struct webhook *w = hs->v[i];
        for (unsigned k = 0; w->ring && k < w->max_in_flight; k++) {
            free(w->ring[k].buf);
            curl_slist_free_all(w->ring[k].hdrs);
        }
        free(w->ring);
        free(w->name);
        free(w->url);
        free(w->secret);
        free(w->account_text);
        free(w->dead_letter);
        free(w);
    }
    free(hs->v);
    free(hs);
    curl_global_cleanup();
}

void wh_http_abort(struct webhook *w)
{
    for (unsigned k = 0; w->ring && k < w->max_in_flight; k++) {
        struct wh_batch *b = &w->ring[k];
        if (!b->easy)
            continue;
        if (b->in_flight && w->all->multi)
            curl_multi_remove_handle(w->all->multi, b->easy);
        curl_easy_cleanup(b->easy);
        b->easy = NULL;
        b->in_flight = false;
    }
}

void wh_http_close(struct webhooks *hs)
{
    hs->closing = true;
    for (size_t i = 0; i < hs->n; i++)
        wh_http_abort(hs->v[i]);
    curl_multi_cleanup(hs->multi);
    hs->multi = NULL;
    while (hs->socks)
        sock_close(hs, hs->socks);
    uv_timer_stop(&hs->timer);
    uv_close((uv_handle_t *)&hs->timer, on_timer_closed);
}
