/*
 * sink_util.c - bounded byte buffers, logging, wall clock and number parsing
 * for sluice-sink.
 *
 * A struct sink_buf owns its data; it grows by doubling but never past the
 * max given at init, so a buffer fed by the network cannot grow without
 * bound.  sink_buf_append() fails with UV_ENOBUFS at the cap and UV_ENOMEM
 * when malloc fails, leaving the buffer unchanged.  sink_buf_free() and
 * sink_buf_reset() accept a buffer that never allocated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink.h"

/* Set up an empty buffer that may hold at most max bytes. */
void sink_buf_init(struct sink_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Append n bytes; fails without change past the cap or without memory. */
int sink_buf_append(struct sink_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->max || b->len > b->max - n)
        return UV_ENOBUFS;
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        if (ncap > b->max)
            ncap = b->max;
        char *nd = realloc(b->data, ncap);
        if (nd == NULL)
            return UV_ENOMEM;
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Drop the first n bytes, keeping the rest at the front. */
void sink_buf_consume(struct sink_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Empty the buffer; release its memory if it grew beyond keep bytes. */
void sink_buf_reset(struct sink_buf *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

/* Release the buffer's memory; the buffer stays usable and empty. */
void sink_buf_free(struct sink_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Wall clock in milliseconds since the epoch. */
int64_t sink_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse a whole decimal string into *out, refusing junk and values > max. */
int sink_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return UV_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return UV_EINVAL;
    *out = (uint64_t)v;
    return 0;
}

/* Print one diagnostic line to stderr, prefixed with the program name. */
void sink_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "sluice-sink: %s\n", line);
}
