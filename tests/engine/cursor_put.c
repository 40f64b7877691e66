/*
 * cursor_put.c - test helper: save a named spool cursor, as a consumer
 * in sluiced would (queue_cursor_put), e.g. the week the weekly report
 * was last sent (engine/report_weekly.h), to script a sluiced that was
 * down for weeks.
 *
 * USAGE
 *   cursor_put SPOOL NAME VALUE
 *
 * DIAGNOSTICS
 *   Exit 0; 64 bad usage; 74 with the spool's error on stderr.
 */
#include <stdio.h>
#include <stdlib.h>

#include "queue.h"

int main(int argc, char **argv)
{
    char *end;
    if (argc != 4) {
        fprintf(stderr, "usage: cursor_put SPOOL NAME VALUE\n");
        return 64;
    }
    unsigned long long v = strtoull(argv[3], &end, 10);
    if (*end || end == argv[3]) {
        fprintf(stderr, "cursor_put: %s is not a number\n", argv[3]);
        return 64;
    }
    struct queue *q;
    struct queue_options o = { 0 };
    int err = queue_open(&q, argv[1], &o);
    if (!err) {
        err = queue_cursor_put(q, argv[2], v);
        queue_close(q);
    }
    if (err) {
        fprintf(stderr, "cursor_put: %s\n", queue_strerror(err));
        return 74;
    }
    return 0;
}
