/*
 * enqueue_raw.c - queue a message as it is, past the message rules, as a
 * spool written by an older sluice may hold it (tests only).
 *
 * SYNOPSIS
 *   enqueue_raw SPOOL FROM TO FILE
 *
 * DESCRIPTION
 *   Calls queue_enqueue_message() with the bytes of FILE (NUL bytes and
 *   all) and prints the first delivery id.  `sluice inject` would refuse
 *   such a message; this stands for what is already stored.
 *
 * DIAGNOSTICS
 *   Exit 0, 64 usage, 66 unreadable file, 74 a spool error (printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: enqueue_raw SPOOL FROM TO FILE\n");
        return 64;
    }
    FILE *f = fopen(argv[4], "rb");
    if (!f) {
        perror(argv[4]);
        return 66;
    }
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    int err = queue_open(&q, argv[1], &o);
    if (err) {
        fprintf(stderr, "enqueue_raw: %s\n", queue_strerror(err));
        return 74;
    }
    const char *to[1] = { argv[3] };
    uint64_t first = 0, msg = 0;
    err = queue_enqueue_message(q, 0, argv[2], to, 1, buf, len, &first, &msg);
    queue_close(q);
    if (err) {
        fprintf(stderr, "enqueue_raw: %s\n", queue_strerror(err));
        return 74;
    }
    printf("%llu\n", (unsigned long long)first);
    return 0;
}
