/*
 * feedback_mutate.c - the feedback parser over real samples and many
 * damaged copies of them, for every build (the libFuzzer target
 * fuzz_feedback.c needs clang).
 *
 * DESCRIPTION
 *   feedback-mutate DIR [N] parses every regular file in DIR as it is,
 *   then N (default 10000) mutated copies: random byte flips, inserted
 *   MIME-significant bytes ("-", CR, LF, '"', ';', NUL), truncations and
 *   duplicated spans, from a fixed seed so a failure repeats.  Each copy
 *   is in a buffer of exactly its size, so ASan sees any read past it.
 *   Exit 0 when nothing crashed and every sample that should parse did
 *   (names starting "bad-" must fail, others must succeed); 1 otherwise.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedback_parse.h"

#define MAX_SAMPLES 64
#define SAMPLE_MAX (1u << 20)

static uint64_t rng = 0x5eed5eed12345678ull;

/* xorshift64*: the fixed-seed generator. */
static uint64_t next_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

struct sample {
    char name[256];
    char *buf;
    size_t len;
};

/* Read a whole file (at most SAMPLE_MAX bytes); NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(SAMPLE_MAX) : NULL;
    if (!buf) {
        if (f)
            fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, SAMPLE_MAX, f);
    fclose(f);
    return buf;
}

/* One damaged copy of s, malloc'ed to its exact size. */
static char *mutate(const struct sample *s, size_t *len)
{
    static const char sig[] = "-\r\n\";:=<>@\0 \t";
    size_t n = s->len, cap = n + 4096;
    char *m = malloc(cap);
    if (!m)
        return NULL;
    memcpy(m, s->buf, n);
    unsigned rounds = 1 + (unsigned)(next_rand() % 8);
    for (unsigned r = 0; r < rounds && n; r++) {
        size_t at = (size_t)(next_rand() % n);
        switch (next_rand() % 5) {
        case 0:
            m[at] = (char)(m[at] ^ (1u << (next_rand() % 8)));
            break;
        case 1:
            m[at] = sig[next_rand() % (sizeof sig - 1)];
            break;
        case 2:
            n = at;                       /* truncate */
            break;
        case 3: {                         /* duplicate a span */
            size_t span = (size_t)(next_rand() % 256);
            if (at + span > n)
                span = n - at;
            if (n + span <= cap) {
                memmove(m + at + span, m + at, n - at);
                n += span;
            }
            break;
        }
        default:                          /* delete a span */
            {
                size_t span = (size_t)(next_rand() % 64);
                if (at + span > n)
                    span = n - at;
                memmove(m + at, m + at + span, n - at - span);
                n -= span;
            }
        }
    }
    char *exact = malloc(n ? n : 1);
    if (exact)
        memcpy(exact, m, n);
    free(m);
    *len = n;
    return exact;
}

int main(int argc, char **argv)
{
    static struct sample s[MAX_SAMPLES];
    struct fb_report *r = malloc(sizeof *r);
    size_t ns = 0;
    int bad = 0;
    unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    DIR *d = argc > 1 ? opendir(argv[1]) : NULL;
    if (!d || !r) {
        fprintf(stderr, "usage: feedback-mutate DIR [N]\n");
        return 2;
    }
    struct dirent *e;
    while ((e = readdir(d)) && ns < MAX_SAMPLES) {
        char path[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        snprintf(s[ns].name, sizeof s[ns].name, "%s", e->d_name);
        if ((s[ns].buf = slurp(path, &s[ns].len)))
            ns++;
    }
    closedir(d);
    for (size_t i = 0; i < ns; i++) {
        char *exact = malloc(s[i].len ? s[i].len : 1);
        if (!exact)
            return 1;
        memcpy(exact, s[i].buf, s[i].len);
        int rc = fb_parse(exact, s[i].len, r);
        bool want_fail = !strncmp(s[i].name, "bad-", 4);
        if ((rc != 0) != want_fail) {
            fprintf(stderr, "%s: parse %s%s%s\n", s[i].name,
                    rc ? "failed: " : "succeeded, expected a failure",
                    rc ? r->reason : "", "");
            bad = 1;
        }
        free(exact);
    }
    unsigned long ok = 0;
    for (unsigned long i = 0; ns && i < n; i++) {
        size_t len;
        char *m = mutate(&s[next_rand() % ns], &len);
        if (!m)
            return 1;
        if (!fb_parse(m, len, r))
            ok++;
        free(m);
    }
    printf("feedback-mutate: %zu samples, %lu mutated copies (%lu still "
           "parse)\n", ns, n, ok);
    for (size_t i = 0; i < ns; i++)
        free(s[i].buf);
    free(r);
    return bad;
}
