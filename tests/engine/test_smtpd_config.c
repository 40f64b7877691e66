/*
 * test_smtpd_config.c - the SMTP listener's keys of sluiced.conf
 * (engine/config_smtpd.c): their values and defaults, the refusals with
 * their line, and the CIDR matching of smtp_relay_networks and
 * smtp_auth_clear_networks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define HEAD "[sluiced]\nspool = /tmp/x\nehlo_hostname = mta.example\n"

/* Load text as a configuration into c; config_load()'s result. */
static int load(const char *text, struct config *c, char *err, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-smtpd-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = config_load(path, c, err, cap);
    unlink(path);
    return rc;
}

/* Whether text (an IPv4 or IPv6 address) is in c's relay networks. */
static bool relay(const struct config *c, const char *text)
{
    struct sockaddr_storage a;
    memset(&a, 0, sizeof a);
    if (strchr(text, ':')) {
        a.ss_family = AF_INET6;
        inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&a)->sin6_addr);
    } else {
        a.ss_family = AF_INET;
        inet_pton(AF_INET, text, &((struct sockaddr_in *)&a)->sin_addr);
    }
    return config_cidr_match(c->smtpd.relay, c->smtpd.nrelay,
                             (struct sockaddr *)&a);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    assert_int_equal(load(HEAD, &c, err, sizeof err), 0);
    assert_int_equal(c.smtpd.nlisten, 0);
    assert_int_equal(c.smtpd.max_clients, 1000);
    assert_int_equal(c.smtpd.max_message_size, 20000000);
    assert_int_equal(c.smtpd.max_recipients, 1000);
    assert_int_equal(c.smtpd.command_timeout_ms, 300000);
    assert_int_equal(c.smtpd.data_timeout_ms, 600000);
    assert_int_equal(c.smtpd.auth_failures, 5);
    assert_int_equal(c.smtpd.nclear, 2);   /* loopback */
    config_free(&c);
}

static void test_values(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    assert_int_equal(load(HEAD "smtp_listen = 127.0.0.1:2587, [::1]:2588\n"
                          "smtp_max_clients = 50\n"
                          "max_message_size = 4096\n"
                          "smtp_relay_networks = 10.1.0.0/16 192.0.2.7 "
                          "2001:db8::/32\n"
                          "smtp_default_account = shop\n"
                          "smtp_auth_clear_networks = none\n"
                          "smtp_command_timeout = 30s\n",
                          &c, err, sizeof err), 0);
    assert_int_equal(c.smtpd.nlisten, 2);
    assert_string_equal(c.smtpd.listen_host[0], "127.0.0.1");
    assert_int_equal(c.smtpd.listen_port[0], 2587);
    assert_string_equal(c.smtpd.listen_host[1], "::1");
    assert_int_equal(c.smtpd.max_clients, 50);
    assert_int_equal(c.smtpd.max_message_size, 4096);
    assert_string_equal(c.smtpd.default_account, "shop");
    assert_int_equal(c.smtpd.nclear, 0);
    assert_int_equal(c.smtpd.command_timeout_ms, 30000);
    assert_true(relay(&c, "10.1.200.3"));
    assert_false(relay(&c, "10.2.0.1"));
    assert_true(relay(&c, "192.0.2.7"));
    assert_false(relay(&c, "192.0.2.8"));
    assert_true(relay(&c, "2001:db8:1::5"));
    assert_false(relay(&c, "2001:db9::1"));
    assert_true(relay(&c, "::ffff:10.1.0.9"));   /* v4-mapped counts */
    config_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    struct { const char *text, *want; } bad[] = {
        { HEAD "smtp_listen = 127.0.0.1\n", ":4: smtp_listen:" },
        { HEAD "smtp_listen = nowhere:x\n", ":4: smtp_listen:" },
        { HEAD "smtp_max_clients = 0\n", ":4: smtp_max_clients:" },
        { HEAD "max_message_size = 100\n", ":4: max_message_size:" },
        { HEAD "smtp_relay_networks = 10.0.0.0/33\n",
          ":4: smtp_relay_networks:" },
        { HEAD "smtp_relay_networks = 10.0.0.0/8\n",
          "needs smtp_default_account" },
        { HEAD "tls_cert = /etc/ssl/x.pem\n", "tls_cert and tls_key" },
        { HEAD "smtp_data_timeout = 0s\n", ":4: smtp_data_timeout:" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load(bad[i].text, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
