/*
 * test_msg.c - the message rules of queue_msg.h: what is refused, with
 * which reason, and the Date: and Message-ID: fields added where and how
 * a receiver expects them.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_msg.h"

/* Fail unless expr returns exactly code (0 for E), with the code's text;
 * the file needs no spool, so testutil.h's directories are not used. */
#define EQ_ERR(expr, code)                                                   \
    do {                                                                     \
        int e_rc_ = (expr);                                                  \
        if (e_rc_ != (code))                                                 \
            fail_msg("%s:%d: %s: got %d (%s), want %d", __FILE__, __LINE__,  \
                     #expr, e_rc_, queue_strerror(e_rc_), (code));           \
    } while (0)
#define E(expr) EQ_ERR(expr, 0)

/* Check a NUL-terminated message; returns the code, why in buf. */
static int check(const char *msg, char *why, size_t cap)
{
    why[0] = 0;
    return queue_message_check(msg, strlen(msg), NULL, why, cap);
}

/* A string literal, refused with a reason that holds want. */
#define REFUSED(lit, want) refused(lit, sizeof(lit) - 1, want)

/* Refused with a reason that holds want. */
static void refused(const void *msg, size_t len, const char *want)
{
    char why[300] = "";
    int rc = queue_message_check(msg, len, NULL, why, sizeof why);
    if (rc != -EBADMSG)
        fail_msg("accepted (%d), want refusal '%s'", rc, want);
    if (!strstr(why, want))
        fail_msg("reason '%s' lacks '%s'", why, want);
}

static void test_refusals(void **state)
{
    (void)state;
    REFUSED("", "empty");
    REFUSED("From: a@b.test\n\nx\0y", "NUL byte (at offset 17)");
    REFUSED("From: a@b\0.test\n\nx", "NUL byte (at offset 9)");
    REFUSED("Subject: x\n\nbody\n", "no From: header");
    REFUSED("From: a@b.test\nFrom: c@d.test\n\nx\n", "2 From: headers");
    REFUSED("From: undisclosed\n\nx\n", "holds no address");
    REFUSED("From: a@b.test\nSubject: x\nthe body without a separator\n",
            "header line 3 is not a header field ('the body without a "
                "separator'");
    REFUSED(" From: a@b.test\n\nx\n", "header line 1 starts with white");
    REFUSED("From a@b.test Mon Jan  1 00:00:00 2026\nFrom: a@b.test\n\nx\n",
            "header line 1 is not a header field");
    REFUSED("From: a@b.test\n: no name\n\nx\n", "header line 2");
    /* a lone CR ends a line on the wire: what follows it is checked */
    REFUSED("From: a@b.test\nSubject: x\rinjected\n\nx\n",
            "header line 3 is not a header field ('injected'");
    /* a header that never ends */
    size_t big = QUEUE_MSG_MAX_HEADER + 100;
    char *m = malloc(big);
    assert_non_null(m);
    memcpy(m, "From: a@b.test\n", 15);
    for (size_t i = 15; i + 20 <= big; i += 20)
        memcpy(m + i, "X-Filler: 123456789\n", 20);
    refused(m, big - big % 20, "no end of the header within 1024 KiB");
    free(m);
}

static void test_accepted(void **state)
{
    (void)state;
    char why[300];
    struct queue_msg_facts f;
    const char *ok[] = {
        "From: a@b.test\n\nbody\n",
        "From: a@b.test",                       /* header only, no end */
        "FROM : \"A, B\" <a@b.test>\r\nSubject: x\r\n\r\n",
        "Subject: folded\n over\n\tlines\nFrom:\n  Ann <a@b.test>\n\nx",
        "From: a@b.test\n\nFrom a line in the body: fine\n"
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (check(ok[i], why, sizeof why))
            fail_msg("message %zu refused: %s", i, why);
    const char *h8 = "From: a@b.test\nSubject: Gr\xc3\xbc\xc3\x9f" "e\n\nx\n";
    E(queue_message_check(h8, strlen(h8), &f, why, sizeof why));
    assert_true(f.header_8bit);
    assert_false(f.has_date);
    assert_false(f.crlf);
    const char *b8 = "From: a@b.test\r\nDate: x\r\nMessage-Id: <1@b>\r\n\r\n"
                     "\xc3\xbc\r\n";
    E(queue_message_check(b8, strlen(b8), &f, why, sizeof why));
    assert_false(f.header_8bit);
    assert_true(f.has_date);
    assert_true(f.has_message_id);
    assert_true(f.crlf);
    assert_int_equal(f.header_end, strlen(b8) - 6);
}

/* The fields added, in order, at the end of the header. */
static void test_cleanup(void **state)
{
    (void)state;
    char why[300], *out;
    size_t n;
    regex_t re;
    assert_int_equal(regcomp(&re,
        "^From: a@b.test\r\nSubject: x\r\n"
        "Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
        "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
        "[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\r\n"
        "Message-ID: <[0-9a-f]{32}@mta\\.example\\.net>\r\n"
        "\r\nbody\r\n$", REG_EXTENDED), 0);
    const char *m = "From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n";
    E(queue_message_cleanup(m, strlen(m), "mta.example.net", time(NULL),
                            &out, &n, why, sizeof why));
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    if (regexec(&re, out, 0, NULL, 0))
        fail_msg("cleaned message not as expected:\n%s", out);
    /* two runs: two different Message-IDs */
    char *out2;
    size_t n2;
    E(queue_message_cleanup(m, strlen(m), "mta.example.net", time(NULL),
                            &out2, &n2, why, sizeof why));
    assert_int_equal(n, n2);
    assert_memory_not_equal(strstr(out, "Message-ID"),
                            strstr(out2, "Message-ID"), 46);
    free(out);
    free(out2);
    regfree(&re);

    /* LF message, header only without a final line end; a fixed time in
     * UTC: the date is exact */
    setenv("TZ", "UTC", 1);
    tzset();
    m = "From: a@b.test";
    E(queue_message_cleanup(m, strlen(m), "h.test", 1700000000, &out, &n,
                            why, sizeof why));
    assert_non_null(out);
    const char *want = "From: a@b.test\nDate: Tue, 14 Nov 2023 22:13:20 "
                       "+0000\nMessage-ID: <";
    assert_true(!strncmp(out, want, strlen(want)));
    assert_int_equal(n, strlen(want) + 32 + strlen("@h.test>\n"));
    assert_string_equal(out + n - 9, "@h.test>\n");
    free(out);

    /* nothing missing: the caller's buffer stays (out NULL) */
    m = "From: a@b.test\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n"
        "Message-ID: <x@y>\n\nbody\n";
    E(queue_message_cleanup(m, strlen(m), "h.test", 0, &out, &n, why,
                            sizeof why));
    assert_null(out);
    assert_int_equal(n, strlen(m));
    /* only the Date missing: no host name needed */
    m = "From: a@b.test\nMessage-ID: <x@y>\n\nbody\n";
    E(queue_message_cleanup(m, strlen(m), NULL, 1700000000, &out, &n, why,
                            sizeof why));
    assert_string_equal(out, "From: a@b.test\nMessage-ID: <x@y>\nDate: Tue, "
                             "14 Nov 2023 22:13:20 +0000\n\nbody\n");
    free(out);
    /* refusals pass through; a bad host name is refused */
    m = "Subject: x\n\nbody\n";
    EQ_ERR(queue_message_cleanup(m, strlen(m), "h.test", 0, &out, &n, why,
                                 sizeof why), -EBADMSG);
    assert_null(out);
    assert_non_null(strstr(why, "no From:"));
    m = "From: a@b.test\n\nbody\n";
    EQ_ERR(queue_message_cleanup(m, strlen(m), "bad host>", 0, &out, &n, why,
                                 sizeof why), -EINVAL);
    EQ_ERR(queue_message_cleanup(m, strlen(m), "", 0, &out, &n, why,
                                 sizeof why), -EINVAL);
    assert_null(out);
    assert_true(queue_message_host_ok("mx-1.Example.net"));
    assert_false(queue_message_host_ok("b\xc3\xa9.test"));
    assert_false(queue_message_host_ok(".example.net"));
    assert_false(queue_message_host_ok("a..b"));
    assert_false(queue_message_host_ok(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
