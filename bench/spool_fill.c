/*
 * spool_fill.c - fill a spool with generated injected messages, for the
 * engine benchmark and tests: N messages of about SIZE bytes, one recipient
 * each, spread round-robin over D domains (user<i>@d<i % D>.bench).
 *
 * usage: spool-fill --spool DIR [-n N] [--domains D] [--size BYTES]
 *                   [--rcpts-per-msg K] [--prefix LOCAL] [--suffix TLD]
 *
 * EXIT STATUS
 *   0 done, 64 usage, 65 foreign or damaged spool, 74 spool error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

static long arg_num(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "spool-fill: not a positive number: %s\n", s);
        exit(64);
    }
    return v;
}

static void on_done(void *arg, int status, uint64_t first, uint64_t msg)
{
    (void)arg; (void)first; (void)msg;
    if (status) {
        fprintf(stderr, "spool-fill: enqueue failed: %s\n",
                queue_strerror(status));
        exit(74);
    }
}

int main(int argc, char **argv)
{
    const char *spool = NULL, *prefix = "user", *suffix = "bench";
    long n = 100000, domains = 1000, size = 5120, per = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--spool") && i + 1 < argc) spool = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--domains") && i + 1 < argc) domains = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--rcpts-per-msg") && i + 1 < argc) per = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc) prefix = argv[++i];
        else if (!strcmp(argv[i], "--suffix") && i + 1 < argc) suffix = argv[++i];
        else {
            fprintf(stderr, "usage: spool-fill --spool DIR [-n N] [--domains D] "
                            "[--size BYTES] [--rcpts-per-msg K] [--prefix L] "
                            "[--suffix TLD]\n");
            return 64;
        }
    }
    if (!spool || per > 1000) {
        fprintf(stderr, "spool-fill: --spool DIR is required\n");
        return 64;
    }
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    int err = queue_open(&q, spool, &o);
    if (err) {
        fprintf(stderr, "spool-fill: %s: %s\n", queue_strerror(err),
                queue_last_detail());
        return err == QUEUE_EFOREIGN || err == QUEUE_ECORRUPT ? 65 : 74;
    }
    char *msg = malloc((size_t)size + 1024);
    char (*rc)[128] = malloc((size_t)per * sizeof *rc);
    const char **rp = malloc((size_t)per * sizeof *rp);
    if (!msg || !rc || !rp)
        return 71;
    for (long i = 0; i < n; i++) {
        long d = i % domains;
        int h = snprintf(msg, 1024,
                         "From: Bench <bench@sender.bench>\r\n"
                         "To: <%s%ld@d%ld.%s>\r\n"
                         "Subject: benchmark message %ld\r\n"
                         "Message-ID: <%ld.bench@sender.bench>\r\n"
                         "MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                         prefix, i, d, suffix, i, i);
        long len = h;
        while (len < size) { /* 76-character lines of text */
            int k = snprintf(msg + len, (size_t)(size + 1024 - len),
                             "%.74s\r\n",
                             "The quick brown fox jumps over the lazy dog "
                             "while sluice measures time.....");
            len += k;
        }
        for (long r = 0; r < per; r++) {
            snprintf(rc[r], sizeof rc[r], "%s%ld-%ld@d%ld.%s", prefix, i,
                     r, d, suffix);
            rp[r] = rc[r];
        }
        err = queue_submit_message(q, 0, "bench@sender.bench", rp,
                                   (size_t)per, msg, (size_t)len, NULL,
                                   on_done, NULL);
        if (err) {
            fprintf(stderr, "spool-fill: %s\n", queue_strerror(err));
            return 74;
        }
    }
    queue_flush(q);
    queue_close(q);
    free(msg);
    free(rc);
    free(rp);
    return 0;
}
