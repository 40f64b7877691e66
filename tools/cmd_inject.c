/*
 * cmd_inject.c - `sluice inject`: put one raw message into the spool.
 *
 * SYNOPSIS
 *   sluice inject --from ADDR --to ADDR [--to ADDR ...] [--account N]
 *                 [FILE | -]
 *
 * DESCRIPTION
 *   Reads an RFC 5322 message from FILE or standard input (at most
 *   QUEUE_MAX_MESSAGE bytes), stores it once and queues one delivery per
 *   recipient; prints the first delivery id and the message id.  The
 *   engine picks it up at once.  Until campaigns exist this is how mail
 *   gets in.
 *
 * DIAGNOSTICS
 *   64 bad arguments or an invalid address, 66 unreadable input, 65 a
 *   foreign or damaged spool, 75 spool full.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* Read all of f, up to max bytes; NULL with errno on failure. */
static char *slurp(FILE *f, size_t max, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f) || n > max) {
        free(buf);
        errno = ferror(f) ? EIO : EFBIG;
        return NULL;
    }
    *len = n;
    return buf;
}

int tool_inject_main(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *from = NULL, *file = "-";
    const char **to = calloc((size_t)argc, sizeof *to);
    size_t nto = 0;
    unsigned long long account = 0;
    int rc = 0;

    if (!to)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--from") && i + 1 < argc) from = argv[++i];
        else if (!strcmp(argv[i], "--to") && i + 1 < argc) to[nto++] = argv[++i];
        else if (!strcmp(argv[i], "--account") && i + 1 < argc &&
                 tool_parse_u64(argv[i + 1], &account) && account <= UINT32_MAX)
            i++;
        else if (!strcmp(argv[i], "--help")) {
            puts("usage: sluice inject --from ADDR --to ADDR [--to ADDR ...] "
                 "[--account N] [FILE|-]");
            free(to);
            return 0;
        } else if (argv[i][0] != '-' || !strcmp(argv[i], "-")) file = argv[i];
        else {
            fprintf(stderr, "sluice inject: unknown option %s\n", argv[i]);
            free(to);
            return TOOL_EX_USAGE;
        }
    }
    if (!from || !nto) {
        fprintf(stderr, "usage: sluice inject --from ADDR --to ADDR [--to "
                        "ADDR ...] [FILE|-]\n");
        free(to);
        return TOOL_EX_USAGE;
    }
    if (*from && queue_check_rcpt(from)) {
        fprintf(stderr, "sluice inject: invalid sender address: %s\n", from);
        free(to);
        return TOOL_EX_USAGE;
    }
    for (size_t i = 0; i < nto; i++)
        if (queue_check_rcpt(to[i])) {
            fprintf(stderr, "sluice inject: invalid recipient address: %s\n",
                    to[i]);
            free(to);
            return TOOL_EX_USAGE;
        }
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "sluice inject: %s: %s\n", file, strerror(errno));
        free(to);
        return TOOL_EX_NOINPUT;
    }
    size_t len;
    char *msg = slurp(f, QUEUE_MAX_MESSAGE, &len);
    int e = errno;
    if (f != stdin)
        fclose(f);
    if (!msg) {
        fprintf(stderr, "sluice inject: %s: %s\n", file,
                e == EFBIG ? "message larger than 64 MiB" : strerror(e));
        free(to);
        return e == EFBIG ? TOOL_EX_DATAERR : TOOL_EX_NOINPUT;
    }
    struct queue *q;
    if ((rc = tool_open_spool(ctx, QUEUE_OPEN_CREATE, &q)) == 0) {
        uint64_t first, msg_id;
        int err = queue_enqueue_message(q, (uint32_t)account, from, to, nto,
                                        msg, len, &first, &msg_id);
        if (err) {
            fprintf(stderr, "sluice inject: %s\n", queue_strerror(err));
            rc = tool_exit_for(err);
        } else if (ctx->json) {
            printf("{\"message\":%llu,\"first_delivery\":%llu,"
                   "\"recipients\":%zu}\n", (unsigned long long)msg_id,
                   (unsigned long long)first, nto);
        } else {
            printf("queued message %llu for %zu recipient%s (deliveries "
                   "%llu..%llu)\n", (unsigned long long)msg_id, nto,
                   nto == 1 ? "" : "s", (unsigned long long)first,
                   (unsigned long long)(first + nto - 1));
        }
        queue_close(q);
    }
    free(msg);
    free(to);
    return rc;
}
