/*
 * test_campaign_msg.c - unit tests of the one campaign-message builder
 * (engine/campaign_msg.c) that sluiced and `sluice campaign` share.
 *
 * DESCRIPTION
 *   The settings rule (unsubscribe_host, else ehlo_hostname; no
 *   configuration: the From domain), the From-domain parser, the contact
 *   copy clamped to QUEUE_MAX_FIELDS (a contact claiming more fields is
 *   copied up to the cap, never past it: ASan and valgrind would see an
 *   overrun), and a message compiled against a real spool's token secret
 *   carrying the configured hosts.  Each test makes its own mkdtemp spool.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign_msg.h"
#include "config.h"

/* The settings follow sluiced's rule. */
static void test_settings(void **state)
{
    (void)state;
    struct config cfg;
    struct campaign_msg_settings s;
    memset(&cfg, 0, sizeof cfg);
    cfg.ehlo_hostname = "mx.example";
    campaign_msg_settings(&cfg, &s);
    assert_string_equal(s.unsub_host, "mx.example");
    assert_null(s.bounce_domain);
    assert_null(s.feedback_sender);
    cfg.unsubscribe_host = "u.example:8443";
    cfg.bounce_domain = "b.example";
    cfg.feedback_sender = "esp";
    campaign_msg_settings(&cfg, &s);
    assert_string_equal(s.unsub_host, "u.example:8443");
    assert_string_equal(s.bounce_domain, "b.example");
    assert_string_equal(s.feedback_sender, "esp");
    campaign_msg_settings(NULL, &s);
    assert_null(s.unsub_host);
    assert_null(s.bounce_domain);
}

/* The From domain, lower-cased, from each form of a From value. */
static void test_from_domain(void **state)
{
    (void)state;
    char d[64];
    assert_true(campaign_msg_from_domain("Shop <News@Shop.TEST>", d,
                                         sizeof d));
    assert_string_equal(d, "shop.test");
    assert_true(campaign_msg_from_domain(" a@b.example ", d, sizeof d));
    assert_string_equal(d, "b.example");
    assert_false(campaign_msg_from_domain("Shop <a@b.example", d, sizeof d));
    assert_false(campaign_msg_from_domain("<a@>", d, sizeof d));
    assert_false(campaign_msg_from_domain("nobody", d, sizeof d));
    assert_false(campaign_msg_from_domain("a@0123456789", d, 8));
}

/* A contact with more values than QUEUE_MAX_FIELDS is cut at the cap. */
static void test_contact_clamp(void **state)
{
    (void)state;
    static const char *names[QUEUE_MAX_FIELDS + 4];
    char nbuf[QUEUE_MAX_FIELDS + 4][16];
    struct queue_contact c;
    memset(&c, 0, sizeof c);
    for (unsigned i = 0; i < QUEUE_MAX_FIELDS + 4; i++) {
        snprintf(nbuf[i], sizeof nbuf[i], "f%u", i);
        names[i] = nbuf[i];
    }
    for (unsigned i = 0; i < QUEUE_MAX_FIELDS; i++) {
        c.values[i] = "v";
        c.lens[i] = 1;
    }
    c.id = 7;
    c.email = "a@b.example";
    c.names = names;
    c.nvalues = QUEUE_MAX_FIELDS + 4;
    struct campaign_msg_contact cc = { .err = 0 };
    campaign_msg_take_contact(&cc, &c);
    assert_true(cc.found);
    assert_int_equal(cc.err, 0);
    assert_int_equal(cc.id, 7);
    assert_string_equal(cc.email, "a@b.example");
    assert_int_equal(cc.nfields, QUEUE_MAX_FIELDS);
    assert_string_equal(cc.f[QUEUE_MAX_FIELDS - 1].name,
                        names[QUEUE_MAX_FIELDS - 1]);
    assert_string_equal(cc.f[0].value, "v");
    campaign_msg_contact_clear(&cc);
    assert_null(cc.buf);
}

/* Compiled against a spool's secret and rendered: the configured hosts
 * are in the message and the envelope sender. */
static void test_compile_render(void **state)
{
    (void)state;
    char dir[] = "/tmp/campaign-msg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct queue *q = NULL;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    assert_int_equal(queue_open(&q, dir, &o), 0);
    struct queue_campaign c;
    memset(&c, 0, sizeof c);
    c.id = 3;
    c.account = 1;
    c.list = 2;
    snprintf(c.from, sizeof c.from, "Shop <news@shop.example>");
    snprintf(c.subject, sizeof c.subject, "Hi {{first|there}}");
    c.html = "<p>Hi {{first|there}}</p>";
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ehlo_hostname = "mx.example";
    cfg.bounce_domain = "bounce.example";
    struct campaign_msg_settings s;
    campaign_msg_settings(&cfg, &s);
    struct render_tpl *t = NULL;
    char why[300] = "";
    assert_int_equal(campaign_msg_compile(q, &c, NULL, &s, &t, why,
                                          sizeof why), 0);
    struct render_field f = { .name = "first", .value = "Ann" };
    struct campaign_msg_contact cc = {
        .found = true, .id = 9, .email = "ann@a.example", .nfields = 1,
    };
    cc.f[0] = f;
    char *msg = NULL, mf[RENDER_MAILFROM_MAX];
    size_t len = 0;
    assert_int_equal(campaign_msg_render(t, &cc, 42, &msg, &len, mf,
                                         sizeof mf), 0);
    assert_non_null(strstr(msg, "Subject: Hi Ann\r\n"));
    assert_non_null(strstr(msg, "<https://mx.example/u/"));
    assert_non_null(strstr(msg, "Message-ID: <3.42."));
    assert_non_null(strstr(mf, "@bounce.example"));
    free(msg);
    render_free(t);
    /* no configuration: the From domain is the unsubscribe host */
    campaign_msg_settings(NULL, &s);
    assert_int_equal(campaign_msg_compile(q, &c, NULL, &s, &t, why,
                                          sizeof why), 0);
    assert_int_equal(campaign_msg_render(t, &cc, 42, &msg, &len, mf,
                                         sizeof mf), 0);
    assert_non_null(strstr(msg, "<https://shop.example/u/"));
    assert_non_null(strstr(mf, "@shop.example"));
    free(msg);
    render_free(t);
    /* a template that does not compile says where */
    c.html = "<p>{{first</p>";
    assert_int_equal(campaign_msg_compile(q, &c, NULL, &s, &t, why,
                                          sizeof why), RENDER_E_SYNTAX);
    assert_non_null(strstr(why, "html"));
    queue_close(q);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_from_domain),
        cmocka_unit_test(test_contact_clamp),
        cmocka_unit_test(test_compile_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
