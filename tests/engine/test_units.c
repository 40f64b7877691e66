/*
 * test_units.c - unit tests of the engine's pure parts: the wire form of a
 * message (compose.c), SMTP reply parsing (smtp_reply.c), configuration
 * checking (config.c) and bounce categories (classify.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "compose.h"
#include "config.h"
#include "smtp_reply.h"

/* Compose and compare with the expected wire form. */
static void wire_is(const char *in, const char *want, size_t want_size,
                    int eight)
{
    struct wire w;
    assert_int_equal(compose_wire(in, strlen(in), &w), 0);
    assert_int_equal(w.len, strlen(want));
    assert_memory_equal(w.data, want, w.len);
    assert_int_equal(w.size, want_size);
    assert_int_equal(w.eightbit, eight);
    free(w.data);
}

static void test_wire_forms(void **state)
{
    (void)state;
    /* clean CRLF passes through, terminated */
    wire_is("A: b\r\n\r\nbody\r\n", "A: b\r\n\r\nbody\r\n.\r\n", 14, 0);
    /* bare LF and bare CR both become CRLF */
    wire_is("a\nb\rc\r\n", "a\r\nb\r\nc\r\n.\r\n", 9, 0);
    /* no final line ending: one is added */
    wire_is("x\r\nlast", "x\r\nlast\r\n.\r\n", 9, 0);
    /* leading dots are doubled, also after a bare CR */
    wire_is(".\n..x\n.y\r.z", "..\r\n...x\r\n..y\r\n..z\r\n.\r\n", 16,
            0);
    /* a lone CR at the end, an empty message, 8-bit bytes */
    wire_is("a\r", "a\r\n.\r\n", 3, 0);
    wire_is("", ".\r\n", 0, 0);
    wire_is("caf\xc3\xa9\n", "caf\xc3\xa9\r\n.\r\n", 7, 1);
    /* CR CR LF: the first CR is a line of its own */
    wire_is("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n", 8, 0);
}

/* Feed lines; return the last result. */
static int feed(struct smtp_reply_parser *p, const char *const *lines,
                size_t n)
{
    int rc = SMTP_REPLY_MORE;
    smtp_reply_reset(p);
    for (size_t i = 0; i < n && rc == SMTP_REPLY_MORE; i++)
        rc = smtp_reply_line(p, lines[i], strlen(lines[i]));
    return rc;
}

static void test_replies(void **state)
{
    (void)state;
    struct smtp_reply_parser p = { 0 };
    const char *ok[] = { "250-mx.example", "250-PIPELINING", "250 SIZE 1000" };
    assert_int_equal(feed(&p, ok, 3), SMTP_REPLY_DONE);
    assert_int_equal(p.r.code, 250);
    assert_int_equal(p.r.lines, 3);

    const char *enh[] = { "550-5.1.1 user", "550 5.1.1 unknown" };
    assert_int_equal(feed(&p, enh, 2), SMTP_REPLY_DONE);
    assert_string_equal(p.r.enhanced, "5.1.1");
    assert_string_equal(p.r.text, "user unknown");

    const char *bare[] = { "421" };
    assert_int_equal(feed(&p, bare, 1), SMTP_REPLY_DONE);
    assert_int_equal(p.r.code, 421);

    const char *mismatch[] = { "250-a", "251 b" };
    assert_int_equal(feed(&p, mismatch, 2), SMTP_REPLY_EPROTO);
    assert_non_null(strstr(p.err, "changed code"));

    const char *garbage[] = { "HTTP/1.1 400 Bad Request" };
    assert_int_equal(feed(&p, garbage, 1), SMTP_REPLY_EPROTO);
    const char *badsep[] = { "250_x" };
    assert_int_equal(feed(&p, badsep, 1), SMTP_REPLY_EPROTO);
    const char *badcode[] = { "650 x" };
    assert_int_equal(feed(&p, badcode, 1), SMTP_REPLY_EPROTO);

    /* a line over the cap, and too many lines */
    char *longline = malloc(SMTP_REPLY_LINE_MAX + 10);
    memset(longline, 'x', SMTP_REPLY_LINE_MAX + 9);
    memcpy(longline, "250 ", 4);
    longline[SMTP_REPLY_LINE_MAX + 9] = 0;
    smtp_reply_reset(&p);
    assert_int_equal(smtp_reply_line(&p, longline, strlen(longline)),
                     SMTP_REPLY_EPROTO);
    free(longline);
    smtp_reply_reset(&p);
    int rc = SMTP_REPLY_MORE;
    for (int i = 0; i < SMTP_REPLY_MAX_LINES + 1 && rc == SMTP_REPLY_MORE; i++)
        rc = smtp_reply_line(&p, "250-more", 8);
    assert_int_equal(rc, SMTP_REPLY_EPROTO);

    /* control characters never reach the kept text */
    const char *ctl[] = { "550 bad\x01text" };
    assert_int_equal(feed(&p, ctl, 1), SMTP_REPLY_DONE);
    assert_string_equal(p.r.text, "bad?text");

    /* a garbage line is quoted from its own bytes only, not up to a NUL
     * (fuzz_reply: smtp_reply_line() read past a line given without one) */
    const char buf[] = "xyz250 what follows";
    smtp_reply_reset(&p);
    assert_int_equal(smtp_reply_line(&p, buf, 3), SMTP_REPLY_EPROTO);
    assert_string_equal(p.err, "garbage in reply: \"xyz\"");
}

/* Write text to a temp file; returns its path (static buffer). */
static const char *conf_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_config(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    const char *p = conf_file("[sluiced]\nspool = /tmp/x\n"
                              "ehlo_hostname = mta.example\n"
                              "retry = 30s, 2m\nmax_age = 1d\n"
                              "timeout_greeting = 500ms\n"
                              "[domain default]\nmax_connections = 3\n"
                              "[domain Example.NET]\nroute = 127.0.0.9:2525\n"
                              "tls = required\n");
    assert_int_equal(config_load(p, &c, err, sizeof err), 0);
    assert_int_equal(c.retry_steps, 2);
    assert_int_equal(c.retry[1], 120);
    assert_int_equal(c.max_age, 86400);
    assert_int_equal(c.timeout_ms[TO_GREETING], 500);
    const struct domain_policy *d = config_domain(&c, "example.net");
    assert_string_equal(d->route_host, "127.0.0.9");
    assert_int_equal(d->route_port, 2525);
    assert_int_equal(d->tls, TLS_REQUIRED);
    assert_int_equal(d->max_connections, 3);   /* from the default above */
    assert_int_equal(config_domain(&c, "other.org")->tls, TLS_OPPORTUNISTIC);
    config_free(&c);
    unlink(p);

    struct { const char *text, *want; } bad[] = {
        { "[sluiced]\nspool = /x\nehlo_hostname = a\nmax_conections = 5\n",
          ":4: unknown key 'max_conections'" },
        { "[sluiced]\nspool = /x\nehlo_hostname = a\nretry = soon\n",
          ":4: retry:" },
        { "[sluiced]\nspool = /x\nehlo_hostname = a\n[domain x]\ntls = maybe\n",
          ":5: tls:" },
        { "[sluiced]\nspool = /x\nehlo_hostname = a\nthis is not ini\n",
          ":4: syntax error" },
        { "[sluiced]\nehlo_hostname = a\n", "spool is not set" },
        { "[nonsense]\nkey = 1\n", ":2: unknown section" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = conf_file(bad[i].text);
        assert_int_equal(config_load(p, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
        unlink(p);
    }
    uint64_t ms;
    assert_int_equal(config_parse_duration_ms("90", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_true(config_parse_duration_ms("5 weeks", &ms) < 0);
    assert_true(config_parse_duration_ms("-1s", &ms) < 0);
}

/* Load text as a configuration; returns config_load()'s result with the
 * message in err. */
static int load_text(const char *text, size_t len, char *err, size_t errlen)
{
    char path[64];
    struct config c;
    snprintf(path, sizeof path, "/tmp/sluice-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    int rc = config_load(path, &c, err, errlen);
    if (!rc)
        config_free(&c);
    unlink(path);
    return rc;
}

/* What libinih would have taken silently: every case names its line. */
static void test_config_file_faults(void **state)
{
    (void)state;
    char err[600], text[1024];
    const char *head = "[sluiced]\nspool = /tmp/x\nehlo_hostname = a.test\n";
    struct { const char *tail, *want; } bad[] = {
        { "smtp_port = 25\n[domain a.test]\ntls = off\n[sluiced]\n"
          "smtp_port = 26\n", ":8: 'smtp_port' is given twice in [sluiced] "
          "(first at line 4)" },
        { "[domain A.test]\ntls = off\n[domain  a.test]\ntls = off\n",
          ":7: 'tls' is given twice" },
        { "[domain default]\nbogus = 1\n",
          ":5: unknown key 'bogus' in [domain default]" },
        { "[domain b.test]\nmax_connections = 5\n\tmax_rate = 5/s\n",
          ":6: this indented line continues 'max_connections'" },
        { "dns_servers = 127.0.0.1:53 10.0.0.256\n",
          ":4: dns_servers: '10.0.0.256' is not IP" },
        { "dns_servers = 127.0.0.1:65536\n", ":4: dns_servers:" },
        { "dns_servers = ,\n", ":4: dns_servers: no server" },
        { "tls_ca_file =\n", ":4: tls_ca_file: needs a file" },
        { "dkim_keys = /nonexistent/k\n",
          ":4: dkim_keys: /nonexistent/k: No such file" },
        { "[site s]\nmx = *.x.test\nbogus = 1\n",
          ":6: unknown key 'bogus' in [site s]" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = snprintf(text, sizeof text, "%s%s", head, bad[i].tail);
        assert_int_equal(load_text(text, (size_t)n, err, sizeof err), -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
    /* a NUL byte, and a line one over libinih's 199 characters; one of
     * exactly 199 is fine */
    int n = snprintf(text, sizeof text, "%s[domain a.test]\ntls = off", head);
    memcpy(text + n, "\0x\n", 3);
    assert_int_equal(load_text(text, (size_t)n + 3, err, sizeof err), -1);
    assert_non_null(strstr(err, ":5: a NUL byte"));
    for (int len = 199; len <= 200; len++) {
        n = snprintf(text, sizeof text, "%s# %0*d\nbogus\n", head, len - 2, 0);
        assert_int_equal(load_text(text, (size_t)n, err, sizeof err), -1);
        if (!strstr(err, len == 199 ? ":5: syntax error"
                                    : ":4: line longer than 199"))
            fail_msg("length %d: %s", len, err);
    }
    /* a section name of 49 characters is kept whole, 50 would be cut */
    for (int len = 49; len <= 50; len++) {
        n = snprintf(text, sizeof text, "%s[domain %0*d.test]\ntls = off\n",
                     head, len - 12, 0);
        int rc = load_text(text, (size_t)n, err, sizeof err);
        assert_int_equal(rc, len == 49 ? 0 : -1);
        if (rc)
            assert_non_null(strstr(err, ":4: section name longer than 49"));
    }
    /* lists may go on over indented lines; [backoff] takes many rules */
    n = snprintf(text, sizeof text, "%s[account 3]\ndomains = a.test,\n"
                 "  b.test\n\tc.test\n[backoff]\nmatch = 421 * *\n"
                 "match = 451 * *\n", head);
    struct config c;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, (size_t)n), n);
    close(fd);
    assert_int_equal(config_load(path, &c, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(c.naccounts, 1);
    assert_int_equal(c.accounts[0].ndomains, 3);
    assert_string_equal(c.accounts[0].domains[2], "c.test");
    assert_int_equal(c.backoff.rules[1].code, 451);
    config_free(&c);
}

/* feedback_address: fbl@bounce_domain unless set, none without a bounce
 * domain, refused unless local@domain. */
static void test_feedback_address(void **state)
{
    (void)state;
    static const char head[] = "[sluiced]\nspool = /tmp/x\n"
                               "ehlo_hostname = mta.example\n";
    struct { const char *extra, *want; } ok[] = {
        { "bounce_domain = bounces.example\n", "fbl@bounces.example" },
        { "bounce_domain = bounces.example\n"
          "feedback_address = abuse-reports@fb.example\n",
          "abuse-reports@fb.example" },
        { "", NULL },
    };
    char text[512], err[600];
    struct config c;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "%s%s", head, ok[i].extra);
        const char *p = conf_file(text);
        assert_int_equal(config_load(p, &c, err, sizeof err), 0);
        if (ok[i].want)
            assert_string_equal(c.feedback_address, ok[i].want);
        else
            assert_null(c.feedback_address);
        config_free(&c);
        unlink(p);
    }
    const char *bad[] = { "fbl", "@fb.example", "fbl@", "f bl@fb.example",
                          "<fbl@fb.example>", "fbl@-fb.example" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%sfeedback_address = %s\n", head,
                 bad[i]);
        const char *p = conf_file(text);
        assert_int_equal(config_load(p, &c, err, sizeof err), -1);
        if (!strstr(err, ":4: feedback_address:"))
            fail_msg("'%s': %s", bad[i], err);
        unlink(p);
    }
}

/* dns_servers into the form c-ares reads. */
static void test_dns_servers(void **state)
{
    (void)state;
    char out[3 * CONFIG_DNS_SERVERS_MAX], bad[CONFIG_DNS_SERVERS_MAX];
    assert_int_equal(config_parse_dns_servers("127.0.0.1:5353, 10.1.2.3\t"
                                              "[::1]:53,,::2", out,
                                              sizeof out, bad, sizeof bad), 0);
    assert_string_equal(out, "127.0.0.1:5353,10.1.2.3:53,[::1]:53,[::2]:53");
    const char *no[] = { "999.1.1.1:53", "1.2.3.4:0", "1.2.3.4:65536",
                         "1.2.3.4:", "[::1", "[::1]x", "[1.2.3.4]:53",
                         "ns.example", "1.2.3", "::g" };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (config_parse_dns_servers(no[i], out, sizeof out, bad,
                                     sizeof bad) != -EINVAL)
            fail_msg("'%s' accepted as '%s'", no[i], out);
        assert_string_equal(bad, no[i]);
    }
    assert_int_equal(config_parse_dns_servers(" , ", out, sizeof out, bad,
                                              sizeof bad), -ENOENT);
    char longlist[CONFIG_DNS_SERVERS_MAX + 8];
    memset(longlist, '1', sizeof longlist - 1);
    longlist[sizeof longlist - 1] = 0;
    assert_int_equal(config_parse_dns_servers(longlist, out, sizeof out, bad,
                                              sizeof bad), -E2BIG);
}

static void test_categories(void **state)
{
    (void)state;
    assert_string_equal(queue_category_name(classify_reply(550, "5.1.1",
                        "user unknown")), "bad-mailbox");
    assert_string_equal(queue_category_name(classify_reply(550, "5.1.2",
                        "domain does not exist")), "bad-domain");
    assert_string_equal(queue_category_name(classify_reply(556, "5.1.10",
                        "null MX")), "bad-domain");
    assert_string_equal(queue_category_name(classify_reply(552, "5.2.2",
                        "mailbox full")), "quota-issues");
    assert_string_equal(queue_category_name(classify_reply(554, "5.7.1",
                        "message rejected as spam")), "spam-related");
    assert_string_equal(queue_category_name(classify_reply(554, "5.7.1",
                        "relay access denied")), "policy-related");
    assert_string_equal(queue_category_name(classify_reply(552, "5.3.4",
                        "too big")), "content-related");
    assert_string_equal(queue_category_name(classify_reply(0, "4.4.7",
                        "expired")), "message-expired");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_forms),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_file_faults),
        cmocka_unit_test(test_dns_servers),
        cmocka_unit_test(test_feedback_address),
        cmocka_unit_test(test_categories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
