/*
 * test_smtp_reply.c - unit tests of the one SMTP reply-line splitter
 * (smtp_reply_split() in engine/smtp_reply.c), which sluiced's client,
 * `sluice bounces classify` and feedback's DSN reader share, and of what
 * sluiced's reply parser makes of it over several lines.
 *
 * Every line is handed over in a buffer of exactly its length (no NUL
 * after it), so a read past the line is an ASan or valgrind report.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

/* Split s (given without its NUL, in a buffer of its exact length);
 * returns the result and fills out, text copied into text[cap]. */
static int split(const char *s, size_t n, struct smtp_reply_split *out,
                 char *text, size_t cap)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    int rc = smtp_reply_split(b, n, out);
    text[0] = 0;
    if (rc == 0) {
        /* the text lies inside the line, after the code */
        if (out->text_len) {
            assert_true(out->text >= b + 4 &&
                        out->text + out->text_len == b + n);
        }
        assert_true(out->text_len < cap);
        memcpy(text, out->text, out->text_len);
        text[out->text_len] = 0;
    }
    free(b);
    return rc;
}

/* The line s splits into code, more, enhanced and text. */
static void split_is(const char *s, int code, bool more, const char *enh,
                     const char *text)
{
    struct smtp_reply_split sp;
    char t[256];
    assert_int_equal(split(s, strlen(s), &sp, t, sizeof t), 0);
    assert_int_equal(sp.code, code);
    assert_int_equal(sp.more, more);
    assert_string_equal(sp.enhanced, enh);
    assert_string_equal(t, text);
}

/* The line s is not a reply line. */
static void split_refused(const char *s, size_t n)
{
    struct smtp_reply_split sp;
    char t[8];
    assert_int_equal(split(s, n, &sp, t, sizeof t), -1);
}

static void test_split_codes(void **state)
{
    (void)state;
    split_is("250 ok", 250, false, "", "ok");
    split_is("421", 421, false, "", "");
    split_is("220 ", 220, false, "", "");
    /* the client acts on the first digit: any second and third digit */
    split_is("290 odd", 290, false, "", "odd");
    split_is("571 refused", 571, false, "", "refused");
    split_is("599", 599, false, "", "");
    /* hostile and broken lines */
    split_refused("", 0);
    split_refused("5", 1);
    split_refused("55", 2);
    split_refused("5.1.1", 5);
    split_refused("5.1.1 user unknown", 18);
    split_refused("550_x", 5);
    split_refused("5a0 x", 5);
    split_refused(" 550 x", 6);
    split_refused("HTTP/1.1 400 Bad Request", 24);
    /* first digits outside 2-5 (RFC 5321 4.2) */
    split_refused("150 preliminary", 15);
    split_refused("099 x", 5);
    split_refused("650 x", 5);
    split_refused("999", 3);
    /* a NUL where the separator goes */
    split_refused("550\0x", 5);
}

static void test_split_continuation(void **state)
{
    (void)state;
    split_is("550-", 550, true, "", "");
    split_is("550-5.1.1", 550, true, "5.1.1", "");
    split_is("250-PIPELINING", 250, true, "", "PIPELINING");
    split_is("550-5.7.1 Our system", 550, true, "5.7.1", "Our system");
}

static void test_split_enhanced(void **state)
{
    (void)state;
    split_is("550 5.1.1 user unknown", 550, false, "5.1.1", "user unknown");
    split_is("550 5.1.1", 550, false, "5.1.1", "");
    /* the code ends at a space (RFC 2034's "status-code SP text") */
    split_is("550 5.1.1\tx", 550, false, "", "5.1.1\tx");
    split_is("452 4.2.2 mailbox full", 452, false, "4.2.2", "mailbox full");
    split_is("250 2.0.0 Ok: queued", 250, false, "2.0.0", "Ok: queued");
    split_is("554 5.123.456 widest", 554, false, "5.123.456", "widest");
    /* not enhanced codes: they stay in the text */
    split_is("550 5.1.1234", 550, false, "", "5.1.1234");
    split_is("550 5.1234.1 x", 550, false, "", "5.1234.1 x");
    split_is("550 9.9.9", 550, false, "", "9.9.9");
    split_is("550 5.1.1.1 x", 550, false, "", "5.1.1.1 x");
    split_is("550 5.1.1x", 550, false, "", "5.1.1x");
    split_is("550 5..1 x", 550, false, "", "5..1 x");
    split_is("550 5.1. x", 550, false, "", "5.1. x");
    split_is("550 5.1", 550, false, "", "5.1");
    split_is("550 51.1.1 x", 550, false, "", "51.1.1 x");
    /* the class must be the reply code's first digit (RFC 3463 2) */
    split_is("550 4.2.2 full", 550, false, "", "4.2.2 full");
    split_is("250 5.1.1 odd", 250, false, "", "5.1.1 odd");
    split_is("354 2.0.0 go ahead", 354, false, "", "2.0.0 go ahead");
    /* the enhanced code follows the one separator; blanks before the
     * text are skipped */
    split_is("550  5.1.1 x", 550, false, "", "5.1.1 x");
    split_is("550 5.1.1    x", 550, false, "5.1.1", "x");
    split_is("550     ", 550, false, "", "");
}

static void test_split_long(void **state)
{
    (void)state;
    /* far over any line cap: the splitter itself has none, and reads
     * nothing past the line */
    size_t n = 1 << 20;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'x', n);
    memcpy(s, "550 5.7.1 ", 10);
    struct smtp_reply_split sp;
    char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, s, n);
    assert_int_equal(smtp_reply_split(b, n, &sp), 0);
    assert_int_equal(sp.code, 550);
    assert_string_equal(sp.enhanced, "5.7.1");
    assert_ptr_equal(sp.text, b + 10);
    assert_int_equal(sp.text_len, n - 10);
    /* a long enhanced-looking run of digits is no enhanced code */
    memcpy(b, "550 5.", 6);
    memset(b + 6, '1', n - 6);
    assert_int_equal(smtp_reply_split(b, n, &sp), 0);
    assert_string_equal(sp.enhanced, "");
    assert_int_equal(sp.text_len, n - 4);
    free(b);
    free(s);
}

/* Feed lines, each in a buffer of its exact length; the last result. */
static int feed(struct smtp_reply_parser *p, const char *const *lines,
                size_t n)
{
    int rc = SMTP_REPLY_MORE;
    smtp_reply_reset(p);
    for (size_t i = 0; i < n && rc == SMTP_REPLY_MORE; i++) {
        size_t len = strlen(lines[i]);
        char *b = malloc(len ? len : 1);
        assert_non_null(b);
        memcpy(b, lines[i], len);
        rc = smtp_reply_line(p, b, len);
        free(b);
    }
    return rc;
}

static void test_parser_uses_split(void **state)
{
    (void)state;
    struct smtp_reply_parser p = { 0 };
    /* the enhanced code of the first line, dropped where a later line
     * repeats it */
    const char *gmail[] = { "550-5.7.1 Our system has detected",
                            "550 5.7.1 unusual traffic" };
    assert_int_equal(feed(&p, gmail, 2), SMTP_REPLY_DONE);
    assert_string_equal(p.r.enhanced, "5.7.1");
    assert_string_equal(p.r.text, "Our system has detected unusual traffic");
    /* a different code on a later line stays in the text, whole (it was
     * cut as if it were the first line's 5.1.1) */
    const char *other[] = { "550-5.1.1 a", "550 5.1.12 b" };
    assert_int_equal(feed(&p, other, 2), SMTP_REPLY_DONE);
    assert_string_equal(p.r.enhanced, "5.1.1");
    assert_string_equal(p.r.text, "a 5.1.12 b");
    /* an enhanced code of another class is text */
    const char *cls[] = { "550 4.2.2 mailbox full" };
    assert_int_equal(feed(&p, cls, 1), SMTP_REPLY_DONE);
    assert_int_equal(p.r.code, 550);
    assert_string_equal(p.r.enhanced, "");
    assert_string_equal(p.r.text, "4.2.2 mailbox full");
    /* a 1xx reply is a protocol error, not a reply of class 1 */
    const char *pre[] = { "150 wait" };
    assert_int_equal(feed(&p, pre, 1), SMTP_REPLY_EPROTO);
    assert_non_null(strstr(p.err, "garbage"));
    /* "550-" then nothing: the reply is not over */
    const char *open[] = { "550-" };
    assert_int_equal(feed(&p, open, 1), SMTP_REPLY_MORE);
    const char *empty[] = { "" };
    assert_int_equal(feed(&p, empty, 1), SMTP_REPLY_EPROTO);
    const char *two[] = { "55" };
    assert_int_equal(feed(&p, two, 1), SMTP_REPLY_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_codes),
        cmocka_unit_test(test_split_continuation),
        cmocka_unit_test(test_split_enhanced),
        cmocka_unit_test(test_split_long),
        cmocka_unit_test(test_parser_uses_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
