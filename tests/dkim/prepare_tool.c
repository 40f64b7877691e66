/*
 * prepare_tool.c - test driver for dkim_prepare().
 *
 * USAGE
 *   prepare_tool [--7bit] IN OUT
 *       prepares the message in file IN, writes the result to OUT (the input
 *       itself when nothing changed) and prints the info bits as
 *       "info=N changed=0|1 8bit=0|1 reencoded=0|1 zerocopy=0|1"
 *   prepare_tool --bench [--7bit] IN [ROUNDS]
 *       calls dkim_prepare() ROUNDS times (default 200000) on IN and prints
 *       the mean nanoseconds per call; for bench/, never a pass/fail test
 *
 * DIAGNOSTICS
 *   Exit 0 on success, 1 with the reason on stderr, 2 for bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_prepare.h"
#include "dkim_sign.h"

#define MSG_MAX ((size_t)DKIM_PREP_MAX_INPUT + 1)

/* Read a whole file of at most MSG_MAX bytes into a malloc'ed buffer. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(MSG_MAX + 1);
    size_t n;

    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return NULL;
    }
    n = fread(buf, 1, MSG_MAX + 1, f);
    if (ferror(f) || n > MSG_MAX) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Write len bytes to path. */
static int write_file(const char *path, const char *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL)
        return -1;
    ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Mean ns per dkim_prepare() call over rounds calls. */
static int bench(const char *msg, size_t len, unsigned flags, long rounds)
{
    struct timespec t0, t1;
    unsigned info;
    size_t outlen;
    char *out;
    long i;
    double ns;
    int copied = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < rounds; i++) {
        int rc = dkim_prepare(msg, len, flags, &out, &outlen, &info);
        if (rc) {
            fprintf(stderr, "prepare_tool: %s\n", dkim_strerror(rc));
            return 1;
        }
        copied = out != NULL;
        free(out);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
          (double)(t1.tv_nsec - t0.tv_nsec)) / (double)rounds;
    printf("%zu bytes, %s path, flags %u: %.1f ns per call (%.2f GB/s)\n",
           len, copied ? "copy" : "zero-copy", flags, ns, (double)len / ns);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned flags = 0, info = 0;
    int i = 1, do_bench = 0, rc;
    size_t len, outlen;
    char *msg, *out, *end;
    long rounds = 200000;

    if (i < argc && strcmp(argv[i], "--bench") == 0) {
        do_bench = 1;
        i++;
    }
    if (i < argc && strcmp(argv[i], "--7bit") == 0) {
        flags |= DKIM_PREP_7BIT;
        i++;
    }
    if (argc - i != 2 && !(do_bench && argc - i == 1)) {
        fprintf(stderr, "usage: prepare_tool [--7bit] IN OUT\n"
                        "       prepare_tool --bench [--7bit] IN [ROUNDS]\n");
        return 2;
    }
    if (!(msg = read_file(argv[i], &len))) {
        fprintf(stderr, "prepare_tool: cannot read %s\n", argv[i]);
        return 1;
    }
    if (do_bench) {
        if (argc - i == 2) {
            rounds = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || rounds <= 0) {
                free(msg);
                return 2;
            }
        }
        rc = bench(msg, len, flags, rounds);
        free(msg);
        return rc;
    }
    rc = dkim_prepare(msg, len, flags, &out, &outlen, &info);
    if (rc) {
        fprintf(stderr, "prepare_tool: %s\n", dkim_strerror(rc));
        free(msg);
        return 1;
    }
    if (write_file(argv[i + 1], out ? out : msg, outlen)) {
        fprintf(stderr, "prepare_tool: cannot write %s\n", argv[i + 1]);
        free(out);
        free(msg);
        return 1;
    }
    printf("info=%u changed=%d 8bit=%d reencoded=%d zerocopy=%d\n", info,
           !!(info & DKIM_PREP_CHANGED), !!(info & DKIM_PREP_8BIT),
           !!(info & DKIM_PREP_REENCODED), out == NULL);
    free(out);
    free(msg);
    return 0;
}
