/*
 * sink_blast.c - a pipelining SMTP load generator for measuring sluice-sink
 * (or any SMTP server) on loopback.
 *
 * usage: sink-blast HOST PORT CONNECTIONS MESSAGES SIZE
 *
 * Each connection is one thread with a blocking socket.  After EHLO it
 * sends MAIL, RCPT and DATA together, and after each 354 it sends the
 * content, the final dot and the next MAIL/RCPT/DATA in one write (RFC 2920
 * pipelining, one round trip per message), then QUIT.  MESSAGES is split
 * over the connections; SIZE is the content size in bytes.  Prints the
 * messages accepted, the failures and the rate.
 *
 * Failures: a connection that breaks stops that thread and is reported;
 * the exit status is 1 when any message was not accepted, 64 on bad usage.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

struct blast {
    const char *host, *port;
    uint64_t messages;          /* for this connection */
    const char *content;
    size_t content_len;
    uint64_t accepted, failed;
    pthread_t tid;
};

/* Read replies until `want` final lines arrived; count non-2xx/3xx ones. */
static int read_replies(int fd, char *buf, size_t *have, int want,
                        uint64_t *bad, int *last_code)
{
    while (want > 0) {
        char *lf = memchr(buf, '\n', *have);
        if (lf == NULL) {
            if (*have >= 65536)
                return -1;
            ssize_t r = read(fd, buf + *have, 65536 - *have);
            if (r <= 0)
                return -1;
            *have += (size_t)r;
            continue;
        }
        size_t len = (size_t)(lf - buf) + 1;
        if (len >= 4 && buf[3] != '-') {
            want--;
            *last_code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 +
                         (buf[2] - '0');
            if (buf[0] != '2' && buf[0] != '3')
                (*bad)++;
        }
        memmove(buf, buf + len, *have - len);
        *have -= len;
    }
    return 0;
}

/* Write all bytes. */
static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Open a TCP connection to host:port. */
static int dial(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    int fd;

    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* One connection: EHLO, then one round trip per message, then QUIT. */
static void *blast_run(void *arg)
{
    static const char env[] = "MAIL FROM:<blast@a.test>\r\n"
                              "RCPT TO:<user@b.test>\r\nDATA\r\n";
    struct blast *b = arg;
    char *buf = malloc(65536);
    char *out = malloc(b->content_len + sizeof(env) + 16);
    size_t have = 0;
    uint64_t bad = 0;
    int code = 0, fd = dial(b->host, b->port);

    if (fd < 0 || buf == NULL || out == NULL ||
        read_replies(fd, buf, &have, 1, &bad, &code) != 0 ||
        send_all(fd, "EHLO blast.test\r\n", 17) != 0 ||
        read_replies(fd, buf, &have, 1, &bad, &code) != 0 ||
        send_all(fd, env, sizeof(env) - 1) != 0)
        goto done;
    memcpy(out, b->content, b->content_len);
    memcpy(out + b->content_len, ".\r\n", 3);
    for (uint64_t i = 0; i < b->messages; i++) {
        uint64_t before = bad;
        if (read_replies(fd, buf, &have, i == 0 ? 3 : 4, &bad, &code) != 0)
            goto done;
        if (i > 0 && bad == before)
            b->accepted++;
        if (code != 354)
            goto done;
        const char *next = i + 1 < b->messages ? env : "QUIT\r\n";
        size_t nlen = strlen(next);
        memcpy(out + b->content_len + 3, next, nlen);
        if (send_all(fd, out, b->content_len + 3 + nlen) != 0)
            goto done;
    }
    if (read_replies(fd, buf, &have, 1, &bad, &code) == 0 && code == 250)
        b->accepted++;
done:
    b->failed = b->messages - b->accepted;
    if (fd >= 0)
        close(fd);
    free(buf);
    free(out);
    return NULL;
}

/* A message of about size bytes with 78-octet CRLF lines. */
static char *make_content(size_t size, size_t *len)
{
    char *c = malloc(size + 128);
    int n = snprintf(c, 128, "From: <blast@a.test>\r\nTo: <user@b.test>\r\n"
                             "Subject: blast\r\n\r\n");
    size_t off = (size_t)n;

    while (off + 80 <= size) {
        memset(c + off, 'x', 76);
        memcpy(c + off + 76, "\r\n", 2);
        off += 78;
    }
    *len = off;
    return c;
}

int main(int argc, char **argv)
{
    uint64_t conns, total, size, accepted = 0, failed = 0;
    struct timespec t0, t1;

    if (argc != 6 || sink_parse_u64(argv[3], 10000, &conns) != 0 ||
        conns == 0 || sink_parse_u64(argv[4], UINT64_MAX, &total) != 0 ||
        sink_parse_u64(argv[5], 64 * 1024 * 1024, &size) != 0) {
        fprintf(stderr, "usage: sink-blast HOST PORT CONNECTIONS MESSAGES "
                        "SIZE\n");
        return 64;
    }
    struct blast *b = calloc(conns, sizeof(*b));
    size_t clen;
    char *content = make_content(size, &clen);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < conns; i++) {
        b[i] = (struct blast){ .host = argv[1], .port = argv[2],
                               .messages = total / conns +
                                           (i < total % conns ? 1 : 0),
                               .content = content, .content_len = clen };
        pthread_create(&b[i].tid, NULL, blast_run, &b[i]);
    }
    for (uint64_t i = 0; i < conns; i++) {
        pthread_join(b[i].tid, NULL);
        accepted += b[i].accepted;
        failed += b[i].failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("sink-blast: %llu accepted, %llu failed, %zu-byte messages, "
           "%.2f s, %.0f msg/s, %.1f MB/s\n",
           (unsigned long long)accepted, (unsigned long long)failed, clen,
           secs, (double)accepted / secs,
           (double)accepted * (double)clen / secs / 1e6);
    free(content);
    free(b);
    return failed ? 1 : 0;
}
