/*
 * test_event_json.c - unit tests of the event stream's fields
 * (engine/event_json.c, engine/event_names.c): the RFC 3339 time, the
 * stable id, the new event types' JSON, and the name cache over a real
 * spool in a temporary directory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "event_json.h"
#include "event_names.h"
#include "queue_admin.h"

/* event_time_rfc3339() of ms is want. */
static void time_is(int64_t ms, const char *want)
{
    char out[EVENT_TIME_MAX];
    size_t n = event_time_rfc3339(ms, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_time(void **state)
{
    (void)state;
    time_is(0, "1970-01-01T00:00:00.000Z");
    time_is(1765116309042, "2025-12-07T14:05:09.042Z");
    time_is(1765116309999, "2025-12-07T14:05:09.999Z");
    time_is(951782400001, "2000-02-29T00:00:00.001Z");   /* leap day */
    time_is(-1, "1969-12-31T23:59:59.999Z");
    /* back to a second seen before another (the kept calendar changes) */
    time_is(1765116309500, "2025-12-07T14:05:09.500Z");
    time_is(1765116310000, "2025-12-07T14:05:10.000Z");
    /* does not fit: "" and 0, nothing cut */
    char small[10];
    assert_int_equal(event_time_rfc3339(1765116309042, small, sizeof small),
                     0);
    assert_string_equal(small, "");
    /* beyond year 9999: no RFC 3339 form */
    char out[EVENT_TIME_MAX];
    assert_int_equal(event_time_rfc3339(253402300800000, out, sizeof out), 0);
    assert_string_equal(out, "");
}

/* Invalid UTF-8 becomes U+FFFD; ASCII and valid sequences are kept; the
 * copy stops with room for a whole sequence and the NUL. */
static void test_utf8_clean(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(event_utf8_clean("a@b.test", out, sizeof out),
                        "a@b.test");
    assert_string_equal(event_utf8_clean("550 \xff bad \xc3\xa9t\xc3",
                                         out, sizeof out),
                        "550 \xef\xbf\xbd bad \xc3\xa9t\xef\xbf\xbd");
    /* surrogates and overlong forms are not UTF-8 */
    assert_string_equal(event_utf8_clean("\xed\xa0\x80\xc0\xaf", out,
                                         sizeof out),
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd\xef\xbf\xbd");
    char small[8];
    assert_string_equal(event_utf8_clean("abcdefghij", small, sizeof small),
                        "abcd");
}

static void test_id(void **state)
{
    (void)state;
    char out[EVENT_ID_MAX];
    const char *spool = "00112233445566778899aabbccddeeff";
    assert_int_equal(event_id(spool, 42, out, sizeof out), 35);
    assert_string_equal(out, "00112233445566778899aabbccddeeff-42");
    event_id(spool, UINT64_MAX, out, sizeof out);
    assert_string_equal(out, "00112233445566778899aabbccddeeff-"
                             "18446744073709551615");
    char small[34];
    assert_int_equal(event_id(spool, 1, small, sizeof small), 0);
    assert_string_equal(small, "");
}

/* The JSON of a complaint without the engine's cache. */
static void test_json_types(void **state)
{
    (void)state;
    struct queue_event ev = {
        .seq = 7, .time_ms = 1765116309042, .delivery = 3, .campaign = 2,
        .account = 1, .type = QUEUE_EV_COMPLAINT, .message = 0,
    };
    snprintf(ev.rcpt, sizeof ev.rcpt, "a@b.test");
    snprintf(ev.text, sizeof ev.text, "abuse");
    json_t *j = event_json(NULL, &ev);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "complaint");
    assert_string_equal(json_string_value(json_object_get(j,
                                                          "feedback_type")),
                        "abuse");
    assert_string_equal(json_string_value(json_object_get(j, "time")),
                        "2025-12-07T14:05:09.042Z");
    assert_int_equal(json_integer_value(json_object_get(j, "time_ms")),
                     1765116309042);
    assert_true(json_is_null(json_object_get(j, "id")));
    assert_true(json_is_null(json_object_get(j, "message_id")));
    assert_true(json_is_null(json_object_get(j, "campaign_name")));
    json_decref(j);

    /* every type has its name; only a complaint has a feedback type */
    static const char *const names[] = {
        NULL, "delivered", "deferred", "bounced", "expired", "suppressed",
        "cancelled", "complaint", "unsubscribed", "reception", "incident",
        "open", "click",
    };
    for (int t = 1; t <= QUEUE_EV_MAX; t++) {
        ev.type = (uint8_t)t;
        ev.message = 9;
        j = event_json(NULL, &ev);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "type")),
                            names[t]);
        assert_int_equal(json_integer_value(json_object_get(j,
                                                            "message_id")),
                         9);
        assert_int_equal(json_object_get(j, "feedback_type") != NULL,
                         t == QUEUE_EV_COMPLAINT);
        assert_int_equal(json_object_get(j, "change") != NULL,
                         t == QUEUE_EV_INCIDENT);
        json_decref(j);
    }
    /* an incident's change is its text's first word (webhooks filter on
     * it: opened, escalated, resumed, resolved) */
    ev.type = QUEUE_EV_INCIDENT;
    snprintf(ev.text, sizeof ev.text, "escalated blocks critical campaign 2");
    j = event_json(NULL, &ev);
    assert_string_equal(json_string_value(json_object_get(j, "change")),
                        "escalated");
    json_decref(j);
    assert_true(QUEUE_EV_TERMINAL(QUEUE_EV_SUPPRESSED) &&
                QUEUE_EV_TERMINAL(QUEUE_EV_CANCELLED) &&
                !QUEUE_EV_TERMINAL(QUEUE_EV_COMPLAINT) &&
                !QUEUE_EV_TERMINAL(QUEUE_EV_RECEPTION) &&
                !QUEUE_EV_TERMINAL(QUEUE_EV_DEFERRED));
    assert_string_equal(queue_event_name(11), "unknown");
}

/* Over a real spool: the identity is made once and kept across opens;
 * names come through the cache, one spool read for many events. */
static void test_names_over_spool(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-evjson-XXXXXX", spool[300], first[33];
    assert_non_null(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool", dir);
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    struct engine e;
    memset(&e, 0, sizeof e);
    assert_int_equal(queue_open(&e.q, spool, &o), 0);
    struct queue_actor by = { .user = "test", .via = "cli" };
    uint32_t acct;
    assert_int_equal(queue_account_create(e.q, "shop", 0, NULL, &by, &acct),
                     0);
    assert_int_equal(event_names_start(&e), 0);
    snprintf(first, sizeof first, "%s", event_names_spool(e.evnames));
    assert_int_equal(strlen(first), 32);

    struct queue_event ev = { .seq = 5, .time_ms = 1000, .delivery = 1,
                              .account = acct, .type = QUEUE_EV_DELIVERED };
    snprintf(ev.rcpt, sizeof ev.rcpt, "a@b.test");
    for (int i = 0; i < 2048; i++) {
        json_t *j = event_json(&e, &ev);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j,
                                                              "account_name")),
                            "shop");
        /* no campaign: no campaign name, and no lookup for it */
        assert_true(json_is_null(json_object_get(j, "campaign_name")));
        char want[EVENT_ID_MAX];
        snprintf(want, sizeof want, "%s-5", first);
        assert_string_equal(json_string_value(json_object_get(j, "id")),
                            want);
        json_decref(j);
    }
    assert_int_equal(event_names_reads(e.evnames), 1);
    /* an account that does not exist: null, looked up once too */
    ev.account = 999;
    json_t *j = event_json(&e, &ev);
    assert_true(json_is_null(json_object_get(j, "account_name")));
    json_decref(j);
    j = event_json(&e, &ev);
    json_decref(j);
    assert_int_equal(event_names_reads(e.evnames), 2);
    event_names_stop(&e);
    queue_close(e.q);

    /* reopened (a restart): the same identity, so the same ids */
    assert_int_equal(queue_open(&e.q, spool, &o), 0);
    assert_int_equal(event_names_start(&e), 0);
    assert_string_equal(event_names_spool(e.evnames), first);
    event_names_stop(&e);
    queue_close(e.q);
    /* read-only: the identity is read, not made */
    o.flags = QUEUE_OPEN_READONLY;
    assert_int_equal(queue_open(&e.q, spool, &o), 0);
    char ro[33];
    assert_int_equal(queue_spool_identity(e.q, ro), 0);
    assert_string_equal(ro, first);
    queue_close(e.q);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The line event_json_line() writes is jansson's compact dump of
 * event_json()'s object, byte for byte, for every type and for fields
 * holding what needs escaping or replacing; a buffer one byte short
 * gives 0. */
static void expect_same_line(struct engine *e, const struct queue_event *ev)
{
    char line[20000];
    json_t *j = event_json(e, ev);
    assert_non_null(j);
    char *dump = json_dumps(j, JSON_COMPACT);
    assert_non_null(dump);
    size_t n = event_json_line(e, ev, line, sizeof line);
    assert_int_equal(n, strlen(dump) + 1);
    assert_memory_equal(line, dump, n - 1);
    assert_int_equal(line[n - 1], '\n');
    assert_int_equal(event_json_line(e, ev, line, n - 1), 0);
    assert_int_equal(event_json_line(e, ev, line, n), n);
    free(dump);
    json_decref(j);
}

static void fill_hostile(struct queue_event *ev)
{
    snprintf(ev->rcpt, sizeof ev->rcpt, "\"q\\uo\"te\x01@b\xc3\xa9.test");
    snprintf(ev->text, sizeof ev->text,
             "550 5.7.1 \"no\"\tthanks\r\n\b\f\x7f \\ / \xff\xfe caf\xc3\xa9 "
             "\xe2\x80\xa8 \xf0\x9f\x93\xa7");
    snprintf(ev->mx, sizeof ev->mx, "mx\x1f.b.test");
    snprintf(ev->enhanced, sizeof ev->enhanced, "5.7.1");
}

static void test_line_is_jansson_dump(void **state)
{
    (void)state;
    struct queue_event ev = {
        .seq = 123456789012ull, .time_ms = 1765116309042, .delivery = 3,
        .campaign = 0, .account = 4000000000u, .code = 550, .attempt = 3,
        .category = 2,
    };
    for (int t = 1; t <= QUEUE_EV_MAX; t++) {
        ev.type = (uint8_t)t;
        ev.message = (uint64_t)t % 2 ? 0 : 77;
        memset(ev.rcpt, 0, sizeof ev.rcpt);
        memset(ev.text, 0, sizeof ev.text);
        memset(ev.mx, 0, sizeof ev.mx);
        memset(ev.enhanced, 0, sizeof ev.enhanced);
        expect_same_line(NULL, &ev);          /* empty strings */
        fill_hostile(&ev);
        expect_same_line(NULL, &ev);
    }
    /* the longest fields the spool keeps, every byte escaped */
    memset(ev.text, '"', QUEUE_MAX_REPLY);
    ev.text[QUEUE_MAX_REPLY] = 0;
    memset(ev.rcpt, 1, QUEUE_MAX_RCPT);
    ev.rcpt[QUEUE_MAX_RCPT] = 0;
    expect_same_line(NULL, &ev);

    /* with the engine's cache: id and names */
    char dir[] = "/tmp/sluice-evline-XXXXXX", spool[300];
    assert_non_null(mkdtemp(dir));
    snprintf(spool, sizeof spool, "%s/spool", dir);
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    struct engine e;
    memset(&e, 0, sizeof e);
    assert_int_equal(queue_open(&e.q, spool, &o), 0);
    struct queue_actor by = { .user = "test", .via = "cli" };
    uint32_t acct;
    assert_int_equal(queue_account_create(e.q, "shop", 0, NULL, &by,
                                          &acct), 0);
    assert_int_equal(event_names_start(&e), 0);
    ev.account = acct;
    fill_hostile(&ev);
    for (int t = 1; t <= QUEUE_EV_MAX; t++) {
        ev.type = (uint8_t)t;
        expect_same_line(&e, &ev);
    }
    event_names_stop(&e);
    queue_close(e.q);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_json_types),
        cmocka_unit_test(test_names_over_spool),
        cmocka_unit_test(test_line_is_jansson_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
