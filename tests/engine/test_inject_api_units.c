/*
 * test_inject_api_units.c - the inject API's request reader and message
 * builder (engine/http_inject_json.c, http_inject_build.c) without a
 * server: what a request is refused for, and the bytes of the messages
 * made from it (values merged, cleaned in headers, escaped in html, line
 * ends of a raw message kept, attachments in base64).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_inject_int.h"

/* Parse body; 0 or the error, why filled. */
static int parse(const char *body, unsigned max, struct inject_req *r,
                 char *why, size_t cap)
{
    return inject_parse(body, strlen(body), max, r, why, cap);
}

/* Refused with a reason containing want. */
static void refused(const char *body, const char *want)
{
    struct inject_req r;
    char why[400] = "";
    int rc = parse(body, 10, &r, why, sizeof why);
    if (rc != -EINVAL || !strstr(why, want))
        fail_msg("%s: got %d '%s', want '%s'", body, rc, why, want);
}

static void test_refused_requests(void **state)
{
    (void)state;
    refused("{\"envelope_sender\": \"a@b.test\",", "line 1, column ");
    refused("{\"envelope_sender\": \"a@b.test\",", "(byte ");
    refused("[]", "JSON object");
    refused("{\"content\":\"x\",\"recipients\":[{\"email\":\"a@b.c\"}]}",
            "envelope_sender");
    refused("{\"envelope_sender\":\"\",\"recipients\":[{\"email\":\"a@b.c\"}]}",
            "content");
    refused("{\"envelope_sender\":\"\",\"content\":7,"
            "\"recipients\":[{\"email\":\"a@b.c\"}]}", "content");
    refused("{\"envelope_sender\":\"\",\"content\":\"x\"}", "recipients");
    refused("{\"envelope_sender\":\"\",\"content\":\"x\",\"recipients\":[]}",
            "recipients");
    refused("{\"envelope_sender\":\"\",\"content\":\"x\",\"recipients\":"
            "[{\"email\":\"a@b.c\",\"cc\":1}]}", "unknown field \"cc\"");
    refused("{\"envelope_sender\":\"\",\"content\":\"x\",\"recipients\":"
            "[{\"email\":\"a@b.c\",\"substitutions\":{\"x\":{}}}]}",
            "substitutions.x");
    refused("{\"envelope_sender\":\"\",\"content\":\"x\",\"recipients\":"
            "[{\"email\":\"a@b.c\"}],\"template_dialect\":\"Jinja\"}",
            "unknown field");
    refused("{\"envelope_sender\":\"\",\"envelope_sender\":\"\"}",
            "duplicate");
    /* jansson refuses NUL in strings: no value can carry one */
    refused("{\"envelope_sender\":\"\",\"content\":\"x\",\"recipients\":"
            "[{\"email\":\"a@b.c\",\"substitutions\":{\"x\":\"\\u0000\"}}]}",
            "invalid JSON");
    /* eleven recipients, ten allowed */
    char big[1024];
    int n = snprintf(big, sizeof big, "{\"envelope_sender\":\"\","
                     "\"content\":\"x\",\"recipients\":[");
    for (int i = 0; i < 11; i++)
        n += snprintf(big + n, sizeof big - (size_t)n,
                      "%s{\"email\":\"r%d@b.c\"}", i ? "," : "", i);
    snprintf(big + n, sizeof big - (size_t)n, "]}");
    refused(big, "max_request_recipients");
}

/* Compile body (which must parse) into t and r; the compile result. */
static int compile(const char *body, struct inject_req *r,
                   struct inject_tpl *t, char *why, size_t cap)
{
    assert_int_equal(parse(body, 100, r, why, cap), 0);
    memset(t, 0, sizeof *t);
    return inject_compile(r, t, why, cap);
}

/* The message of recipient i, as a string the caller frees (not inlined:
 * gcc 12 then takes the result for a pointer to the local msg). */
__attribute__((noinline))
static char *render(const struct inject_tpl *t, const struct inject_req *r,
                    size_t i)
{
    char *msg = NULL, why[300];
    size_t len;
    int rc = inject_render(t, r, &r->rcpts[i], &msg, &len, why, sizeof why);
    if (rc)
        fail_msg("render %zu: %d %s", i, rc, why);
    assert_int_equal(strlen(msg), len);
    return msg;
}

static void test_refused_content(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        { "{\"subject\":\"x\",\"text_body\":\"x\"}", "content.from" },
        { "{\"from\":{\"email\":\"not-an-address\"},\"text_body\":\"x\"}",
          "content.from.email" },
        { "{\"from\":{\"email\":\"a@b.test\"}}", "text_body" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"text_body\":\"{{x\"}",
          "text_body: line 1, column 1" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"text_body\":\"x\","
          "\"headers\":{\"Content-Type\":\"x\"}}", "Content-Type" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"text_body\":\"x\","
          "\"headers\":{\"X-A\":5}}", "X-A" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"text_body\":\"x\","
          "\"attachments\":[{\"data\":\"@@@\"}]}", "base64" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"text_body\":\"x\","
          "\"attachments\":[{\"data\":\"\",\"file_name\":\"a\\\"b\"}]}",
          "file_name" },
        { "{\"from\":{\"email\":\"a@b.test\"},\"html\":\"x\"}",
          "unknown field" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[600], why[400] = "";
        struct inject_req r;
        struct inject_tpl t;
        snprintf(body, sizeof body, "{\"envelope_sender\":\"\",\"content\":"
                 "%s,\"recipients\":[{\"email\":\"a@b.c\"}]}", bad[i][0]);
        int rc = compile(body, &r, &t, why, sizeof why);
        if (!rc || !strstr(why, bad[i][1]))
            fail_msg("%s: got %d '%s', want '%s'", bad[i][0], rc, why,
                     bad[i][1]);
        inject_tpl_free(&t);
        inject_req_free(&r);
    }
}

static void test_raw_message(void **state)
{
    (void)state;
    struct inject_req r;
    struct inject_tpl t;
    char why[300];
    /* LF line ends: values in the body follow them */
    const char *body =
        "{\"envelope_sender\":\"b@s.test\","
        "\"content\":\"From: s@s.test\\nSubject: Hi {{name}} {{n}}\\n\\n"
        "Dear {{name}}: {{note|none}} {{n}} {{email}}\\n\","
        "\"substitutions\":{\"n\":\"global\",\"note\":\"G\"},"
        "\"recipients\":[{\"email\":\"a@d.test\",\"name\":\"Ann\\r\\nBcc: x@y\","
        "\"substitutions\":{\"N\":12.5,\"note\":\"l1\\r\\nl2\\rl3\"}},"
        "{\"email\":\"b@d.test\",\"substitutions\":{\"name\":true}}]}";
    assert_int_equal(compile(body, &r, &t, why, sizeof why), 0);
    assert_true(t.raw);
    assert_true(t.has_tags);
    char *m = render(&t, &r, 0);
    assert_string_equal(m, "From: s@s.test\nSubject: Hi Ann Bcc: x@y 12.5\n\n"
                           "Dear Ann\nBcc: x@y: l1\nl2\nl3 12.5 a@d.test\n");
    free(m);
    m = render(&t, &r, 1);
    assert_string_equal(m, "From: s@s.test\nSubject: Hi true global\n\n"
                           "Dear true: G global b@d.test\n");
    free(m);
    inject_tpl_free(&t);
    inject_req_free(&r);
}

static void test_builder(void **state)
{
    (void)state;
    struct inject_req r;
    struct inject_tpl t;
    char why[300];
    const char *body =
        "{\"envelope_sender\":\"b@s.test\",\"content\":{"
        "\"from\":{\"email\":\"news@s.test\",\"name\":\"S\\u00f6 News\"},"
        "\"reply_to\":{\"email\":\"help@s.test\"},"
        "\"subject\":\"Order {{o}}\","
        "\"headers\":{\"X-Order\":\"{{o}}\",\"To\":\"{{name}} <{{email}}>\"},"
        "\"text_body\":\"Hi {{o}}\",\"html_body\":\"<b>{{o}}</b>\","
        "\"attachments\":[{\"data\":\"aGVsbG8=\",\"content_type\":"
        "\"text/plain\",\"file_name\":\"h.txt\"},{\"data\":\"raw\","
        "\"base64\":false}]},"
        "\"recipients\":[{\"email\":\"a@d.test\",\"name\":\"Ann\","
        "\"substitutions\":{\"o\":\"<1>\\r\\nX-Evil: 1\"}}]}";
    assert_int_equal(compile(body, &r, &t, why, sizeof why), 0);
    char *m = render(&t, &r, 0);
    /* header: fields in order, values on one line each */
    assert_non_null(strstr(m, "From: =?utf-8?"));
    assert_non_null(strstr(m, "\r\nReply-To: help@s.test\r\n"
                              "Subject: Order <1> X-Evil: 1\r\n"
                              "X-Order: <1> X-Evil: 1\r\n"
                              "To: Ann <a@d.test>\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed;\r\n"));
    char *end = strstr(m, "\r\n\r\n");   /* the header's */
    assert_non_null(end);
    *end = 0;
    assert_null(strstr(m, "\nX-Evil"));
    *end = '\r';
    /* the html part escapes the value, the text part keeps it */
    assert_non_null(strstr(m, "<b>&lt;1&gt;=0D=0AX-Evil: 1</b>") ||
                    strstr(m, "<b>&lt;1&gt;\r\nX-Evil: 1</b>"));
    assert_non_null(strstr(m, "Hi <1>\r\nX-Evil: 1"));
    /* attachments: base64, name and type; text given as is */
    assert_non_null(strstr(m, "Content-Type: text/plain;\r\n name=\"h.txt\""
                              "\r\nContent-Disposition: attachment;\r\n "
                              "filename=\"h.txt\"\r\nContent-Transfer-"
                              "Encoding: base64\r\n\r\naGVsbG8=\r\n"));
    assert_non_null(strstr(m, "Content-Type: application/octet-stream\r\n"
                              "Content-Disposition: attachment\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n"
                              "cmF3\r\n"));
    /* every line ends in CRLF: no bare LF anywhere */
    for (size_t i = 0, n = strlen(m); i < n; i++)
        if (m[i] == '\n')
            assert_true(i > 0 && m[i - 1] == '\r');
    free(m);
    inject_tpl_free(&t);
    inject_req_free(&r);
}

static void test_text_only_and_no_tags(void **state)
{
    (void)state;
    struct inject_req r;
    struct inject_tpl t;
    char why[300];
    const char *body =
        "{\"envelope_sender\":\"\",\"content\":{"
        "\"from\":{\"email\":\"n@s.test\"},\"text_body\":\"plain\"},"
        "\"recipients\":[{\"email\":\"a@d.test\"}]}";
    assert_int_equal(compile(body, &r, &t, why, sizeof why), 0);
    assert_false(t.has_tags);
    char *m = render(&t, &r, 0);
    assert_string_equal(m, "From: n@s.test\r\nTo: a@d.test\r\n"
                           "MIME-Version: 1.0\r\nContent-Type: text/plain; "
                           "charset=utf-8\r\nContent-Transfer-Encoding: "
                           "quoted-printable\r\n\r\nplain");
    free(m);
    inject_tpl_free(&t);
    inject_req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_requests),
        cmocka_unit_test(test_refused_content),
        cmocka_unit_test(test_raw_message),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_text_only_and_no_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
