/*
 * http_gate.c - the front door of sluiced's HTTP server (http_gate.h):
 * every connection's request line is checked before libmicrohttpd sees it,
 * so that a malformed request gets "400 Bad Request" and a closed
 * connection, never silence.
 *
 * DESCRIPTION
 *   One thread polls the listening socket and the connections that have
 *   not sent a whole request line yet.  It reads them with MSG_PEEK, so
 *   the bytes stay in the socket for the daemon; while a line is still
 *   incomplete, SO_RCVLOWAT makes poll() wait for more bytes instead of
 *   waking again for the same ones.  A well-formed line hands the socket
 *   to the daemon (MHD_add_connection).  Otherwise the gate answers and
 *   closes:
 *     400  a byte no request line may hold at that place (a control
 *          character, a NUL, a second space, a version other than
 *          HTTP/d.d), or the client ending its side before a whole line;
 *     414  HTTP_GATE_LINE_MAX bytes without a whole line;
 *     408  no whole line within the timeout.
 *   An answered connection is shut down for writing and read until the
 *   client closes (at most GATE_LINGER_MS), so unread input does not make
 *   the kernel reset the connection before the client reads the answer.
 *
 *   At most max_pending connections wait at the gate; beyond that the
 *   listening socket is left alone and new connections wait in the
 *   kernel's backlog.
 *
 * DIAGNOSTICS
 *   Start-up errors (socket, bind, listen, thread) are returned with the
 *   reason.  A connection that fails on the way is closed; nothing stops
 *   the gate but http_gate_stop().
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_gate.h"

/* How long an answered connection is read (and its input dropped) before
 * it is closed. */
#define GATE_LINGER_MS 2000
/* A pause in accepting after the process ran out of descriptors. */
#define GATE_ACCEPT_PAUSE_MS 100

struct gate_conn {
    int fd;
    bool closing;            /* answered: input is drained until EOF */
    uint64_t deadline_ms;    /* monotonic */
    socklen_t alen;
    struct sockaddr_storage addr;
};

struct http_gate {
    struct MHD_Daemon *d;
    int lfd;
    int wake[2];             /* a byte on wake[1] stops the thread */
    pthread_t th;
    bool started;
    unsigned timeout_ms, max;
    uint64_t accept_after_ms;
    struct gate_conn *c;     /* max entries, n in use */
    unsigned n;
    struct pollfd *pfd;      /* max + 2 */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* RFC 9110 5.6.2: the characters of a token (a method). */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch);
}

/* Whether n bytes without a verdict mean "wait" or "too long". */
static enum http_gate_line more(size_t n)
{
    return n >= HTTP_GATE_LINE_MAX ? HTTP_GATE_TOO_LONG : HTTP_GATE_MORE;
}

enum http_gate_line http_gate_check_line(const char *buf, size_t n)
{
    static const char version[] = "HTTP/#.#";
    size_t i = 0;
    for (;;) { /* RFC 9112 2.2: empty lines before the request line */
        if (i < n && buf[i] == '\n')
            i++;
        else if (i + 1 < n && buf[i] == '\r' && buf[i + 1] == '\n')
            i += 2;
        else if (i + 1 == n && buf[i] == '\r')
            return more(n);
        else
            break;
    }
    enum { METHOD, TARGET, VERSION } part = METHOD;
    size_t start = i;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (part == METHOD) {
            if (ch == ' ' && i > start) {
                part = TARGET;
                start = i + 1;
            } else if (!is_tchar(ch)) {
                return HTTP_GATE_BAD;
            }
        } else if (part == TARGET) {
            if (ch == ' ' && i > start) {
                part = VERSION;
                start = i + 1;
            } else if (ch <= 0x20 || ch >= 0x7f) {
                return HTTP_GATE_BAD;
            }
        } else {
            size_t k = i - start;
            if (k == sizeof version - 1) { /* the end of the line */
                if (ch == '\n')
                    return HTTP_GATE_OK;
                if (ch != '\r')
                    return HTTP_GATE_BAD;
                if (i + 1 == n)
                    return more(n);
                return buf[i + 1] == '\n' ? HTTP_GATE_OK : HTTP_GATE_BAD;
            }
            if (version[k] == '#' ? !(ch >= '0' && ch <= '9')
                                  : ch != (unsigned char)version[k])
                return HTTP_GATE_BAD;
        }
    }
    return more(n);
}

/* Poll for more than `have` bytes (1: any byte). */
static void want_bytes(int fd, int have)
{
    int lowat = have + 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
}

/* Answer with status and close c's sending side; c drains until EOF. */
static void answer(struct gate_conn *c, const char *status)
{
    char msg[256];
    const char *text = strchr(status, ' ') + 1;
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 %s\r\nContent-Type: "
                     "text/plain\r\nContent-Length: %zu\r\nConnection: "
                     "close\r\nCache-Control: no-store\r\n\r\n%s\n", status,
                     strlen(text) + 1, text);
    if (n > 0 && (size_t)n < sizeof msg) /* fits the socket's buffer */
        (void)!send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(c->fd, SHUT_WR);
    want_bytes(c->fd, 0);
    c->closing = true;
    c->deadline_ms = mono_ms() + GATE_LINGER_MS;
}

/* Close c's socket (its entry is dropped by the caller). */
static void drop(struct gate_conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Input on a connection: drain an answered one; judge a new one's request
 * line.  hup: the client has ended its side. */
static void on_input(struct http_gate *g, struct gate_conn *c, bool hup)
{
    char buf[HTTP_GATE_LINE_MAX];
    if (c->closing) {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            drop(c);
        return;
    }
    ssize_t r = recv(c->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            drop(c);   /* gone before a request: nobody to answer */
        return;
    }
    switch (http_gate_check_line(buf, (size_t)r)) {
    case HTTP_GATE_OK:
        want_bytes(c->fd, 0);
        /* the daemon closes the socket itself when it cannot take it */
        MHD_add_connection(g->d, c->fd, (const struct sockaddr *)&c->addr,
                           c->alen);
        c->fd = -1;
        return;
    case HTTP_GATE_BAD:
        answer(c, "400 Bad Request");
        return;
    case HTTP_GATE_TOO_LONG:
        answer(c, "414 URI Too Long");
        return;
    case HTTP_GATE_MORE:
        if (hup)
            answer(c, "400 Bad Request"); /* no more is coming */
        else
            want_bytes(c->fd, (int)r);
        return;
    }
}

/* Take the new connections the listening socket has, while there is
 * room. */
static void accept_some(struct http_gate *g)
{
    while (g->n < g->max) {
        struct gate_conn *c = &g->c[g->n];
        c->alen = sizeof c->addr;
        int fd = accept4(g->lfd, (struct sockaddr *)&c->addr, &c->alen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                g->accept_after_ms = mono_ms() + GATE_ACCEPT_PAUSE_MS;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        c->fd = fd;
        c->closing = false;
        c->deadline_ms = mono_ms() + g->timeout_ms;
        g->n++;
    }
}

/* Answer (408) or close the connections whose time is up; returns the
 * poll timeout until the next deadline (-1: none). */
static int expire(struct http_gate *g)
{
    uint64_t now = mono_ms(), next = UINT64_MAX;
    for (unsigned i = 0; i < g->n; i++) {
        struct gate_conn *c = &g->c[i];
        if (c->deadline_ms <= now) {
            if (c->closing)
                drop(c);
            else
                answer(c, "408 Request Timeout");
        }
        if (c->fd >= 0 && c->deadline_ms < next)
            next = c->deadline_ms;
    }
    if (g->accept_after_ms > now && g->accept_after_ms < next)
        next = g->accept_after_ms;
    return next == UINT64_MAX ? -1 : (int)(next - now);
}

/* Forget the entries whose socket is closed or handed over. */
static void compact(struct http_gate *g)
{
    unsigned k = 0;
    for (unsigned i = 0; i < g->n; i++)
        if (g->c[i].fd >= 0)
            g->c[k++] = g->c[i];
    g->n = k;
}

static void *gate_main(void *arg)
{
    struct http_gate *g = arg;
    for (;;) {
        int timeout = expire(g);
        compact(g);
        struct pollfd *p = g->pfd;
        unsigned np = 0;
        p[np++] = (struct pollfd){ .fd = g->wake[0], .events = POLLIN };
        bool listening = g->n < g->max && mono_ms() >= g->accept_after_ms;
        p[np++] = (struct pollfd){ .fd = listening ? g->lfd : -1,
                                   .events = POLLIN };
        for (unsigned i = 0; i < g->n; i++)
            p[np++] = (struct pollfd){ .fd = g->c[i].fd,
                                       .events = POLLIN | POLLRDHUP };
        if (poll(p, np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        unsigned n = g->n; /* accepted below are looked at next round */
        for (unsigned i = 0; i < n; i++)
            if (p[2 + i].revents)
                on_input(g, &g->c[i], (p[2 + i].revents &
                                       (POLLRDHUP | POLLHUP | POLLERR)) != 0);
        if (p[1].revents)
            accept_some(g);
    }
    return NULL;
}

/* Open the listening socket; 0 or a negative errno. */
static int listen_on(struct http_gate *g, const struct sockaddr *sa,
                     socklen_t salen)
{
    g->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (g->lfd < 0)
        return -errno;
    int on = 1;
    setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(g->lfd, sa, salen) || listen(g->lfd, 128))
        return -errno;
    return 0;
}

int http_gate_start(struct http_gate **out, const struct sockaddr *sa,
                    socklen_t salen, struct MHD_Daemon *d,
                    unsigned max_pending, unsigned timeout_ms,
                    char *err, size_t errlen)
{
    *out = NULL;
    struct http_gate *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    g->d = d;
    g->lfd = g->wake[0] = g->wake[1] = -1;
    g->max = max_pending ? max_pending : 1;
    g->timeout_ms = timeout_ms;
    g->c = calloc(g->max, sizeof *g->c);
    g->pfd = calloc(g->max + 2, sizeof *g->pfd);
    int rc = !g->c || !g->pfd ? -ENOMEM : 0;
    const char *what = "out of memory";
    if (!rc && (rc = listen_on(g, sa, salen)))
        what = "cannot listen";
    if (!rc && pipe2(g->wake, O_CLOEXEC | O_NONBLOCK)) {
        rc = -errno;
        what = "pipe";
    }
    if (!rc && (rc = -pthread_create(&g->th, NULL, gate_main, g)))
        what = "cannot start a thread";
    if (rc) {
        snprintf(err, errlen, "%s: %s", what, strerror(-rc));
        http_gate_stop(g);
        return rc;
    }
    g->started = true;
    *out = g;
    return 0;
}

void http_gate_stop(struct http_gate *g)
{
    if (!g)
        return;
    if (g->started) {
        (void)!write(g->wake[1], "x", 1);
        pthread_join(g->th, NULL);
    }
    for (unsigned i = 0; g->c && i < g->n; i++)
        if (g->c[i].fd >= 0)
            close(g->c[i].fd);
    if (g->lfd >= 0)
        close(g->lfd);
    if (g->wake[0] >= 0)
        close(g->wake[0]);
    if (g->wake[1] >= 0)
        close(g->wake[1]);
    free(g->c);
    free(g->pfd);
    free(g);
}
