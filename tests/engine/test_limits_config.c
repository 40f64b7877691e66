/*
 * test_limits_config.c - the layers of a site's limits and the live
 * limits' records: the shipped provider profiles under sluiced.conf
 * (engine/config_limits.c, config_policy.c), config_limit_set() with the
 * file's own rules, the rate order a sub-account's change is checked
 * with, and the spool's live-limit entries (queue/admin_limits.c): set,
 * read back, ended, unset, and a damaged entry refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "queue_admin.h"

#define HEAD "[sluiced]\nspool = /tmp/x\nehlo_hostname = mta.example\n"

/* Load text as a configuration into c; config_load()'s result. */
static int load(const char *text, struct config *c, char *err, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sluice-limits-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = config_load(path, c, err, cap);
    unlink(path);
    return rc;
}

static const struct site_policy *site(const struct config *c, const char *n)
{
    for (size_t i = 0; i < c->nsites; i++)
        if (!strcmp(c->sites[i].lim.name, n))
            return &c->sites[i];
    return NULL;
}

/* The profiles are there, and their MX patterns place provider hosts. */
static void test_profiles_shipped(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    assert_int_equal(load(HEAD, &c, err, sizeof err), 0);
    static const char *const names[] = { "gmail", "microsoft", "yahoo",
        "icloud", "comcast", "gmx", "orange", "mailru", "yandex", "qq",
        "zoho" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct site_policy *sp = site(&c, names[i]);
        assert_non_null(sp);
        assert_true(sp->in_profile && !sp->in_file && sp->nmx > 0);
        assert_true(sp->lim.keys_profile & (1u << CONFIG_LK_MAX_RATE));
        assert_int_equal(sp->lim.keys_ini, 0);
    }
    const struct site_policy *g = config_site_for_mx(&c, "aspmx.l.google.com");
    assert_non_null(g);
    assert_string_equal(g->lim.name, "gmail");
    g = config_site_for_mx(&c, "mta6.am0.yahoodns.net");
    assert_string_equal(g->lim.name, "yahoo");
    g = config_site_for_mx(&c, "example-com.mail.protection.outlook.com");
    assert_string_equal(g->lim.name, "microsoft");
    assert_null(config_site_for_mx(&c, "mx1.example.test"));
    config_free(&c);

    /* provider_profiles = no: none of them */
    assert_int_equal(load(HEAD "provider_profiles = no\n", &c, err,
                          sizeof err), 0);
    assert_null(site(&c, "gmail"));
    config_free(&c);
}

/* A key the file gives beats the profile's; the others stay the
 * profile's; the file's mx patterns replace the profile's. */
static void test_file_beats_profile(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    assert_int_equal(load(HEAD "[domain default]\ntls = required\n"
                          "[site gmail]\nmax_connections = 3\n"
                          "[site yahoo]\nmx = mx.own.test\n", &c, err,
                          sizeof err), 0);
    const struct site_policy *g = site(&c, "gmail");
    assert_true(g->in_file && g->in_profile);
    assert_int_equal(g->lim.max_connections, 3);
    assert_true(g->lim.keys_ini & (1u << CONFIG_LK_MAX_CONNECTIONS));
    assert_false(g->lim.keys_profile & (1u << CONFIG_LK_MAX_CONNECTIONS));
    assert_int_equal(g->lim.max_rate.n, 1200);
    assert_int_equal(g->lim.max_rate.per_s, 60);
    assert_true(g->lim.keys_profile & (1u << CONFIG_LK_MAX_RATE));
    assert_int_equal(g->lim.tls, TLS_REQUIRED);  /* [domain default] */
    const struct site_policy *y = site(&c, "yahoo");
    assert_int_equal(y->nmx, 1);
    assert_string_equal(y->mx[0], "mx.own.test");
    assert_null(config_site_for_mx(&c, "mta5.am0.yahoodns.net"));
    /* a site of the file comes before the profiles: it wins a match */
    config_free(&c);
    assert_int_equal(load(HEAD "[site mine]\nmx = *.google.com\n", &c, err,
                          sizeof err), 0);
    assert_string_equal(config_site_for_mx(&c, "aspmx.l.google.com")->lim.name,
                        "mine");
    config_free(&c);
}

/* config_limit_set(): the file's rule, and the keys of each kind. */
static void test_limit_set(void **state)
{
    (void)state;
    struct domain_policy p = { 0 };
    char err[300], buf[40];
    assert_int_equal(config_limit_set('s', &p, "max_rate", "2/s", err,
                                      sizeof err), 0);
    assert_string_equal(config_limit_text(&p, CONFIG_LK_MAX_RATE, buf,
                                          sizeof buf), "2/s");
    assert_int_equal(p.keys_ini | p.keys_profile, 0);
    assert_int_equal(config_limit_set('d', &p, "tls", "required", err,
                                      sizeof err), 0);
    assert_int_equal(p.tls, TLS_REQUIRED);
    assert_int_equal(config_limit_set('s', &p, "max_rate", "2/x", err,
                                      sizeof err), -1);
    assert_non_null(strstr(err, "max_rate: '2/x' is not N/s"));
    assert_int_equal(config_limit_set('s', &p, "max_connections", "0", err,
                                      sizeof err), -1);
    assert_non_null(strstr(err, "1..100000"));
    assert_int_equal(config_limit_set('a', &p, "max_connections", "3", err,
                                      sizeof err), -1);
    assert_int_equal(config_limit_set('d', &p, "route", "x.test", err,
                                      sizeof err), -1);
    assert_int_equal(config_limit_set('c', &p, "max_rate", "10/min", err,
                                      sizeof err), 0);
    struct rate a = { 10, 60 }, b = { 1, 1 }, none = { 0, 1 };
    assert_true(config_rate_lower(&a, &b));     /* 10/min < 1/s */
    assert_false(config_rate_lower(&b, &a));
    assert_false(config_rate_lower(&b, &b));
    assert_true(config_rate_lower(&b, &none));  /* anything < unlimited */
    assert_false(config_rate_lower(&none, &b));
}

struct seen {
    int n;
    struct queue_limit l[4];
};

static int keep(void *arg, const struct queue_limit *l)
{
    struct seen *s = arg;
    if (s->n < 4)
        s->l[s->n] = *l;
    s->n++;
    return 0;
}

/* The spool's entries: set, read, ended, unset, damaged. */
static void test_spool_entries(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-limits-spool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE };
    assert_int_equal(queue_open(&q, dir, &o), 0);
    struct queue_actor by = { "alice", "test", QUEUE_ROLE_OWNER, 0 };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000;
    struct queue_limit_change c = { .kind = 's', .name = "gmail", .n = 2,
        .keys = { "max_rate", "max_connections" }, .values = { "2/s", "3" },
        .object = "site gmail", .by = &by };
    assert_int_equal(queue_limits_change(q, &c), 0);
    struct queue_limit_change t = { .kind = 'd', .name = "x.test", .n = 1,
        .keys = { "max_rate" }, .values = { "1/s" },
        .expires_ms = now + 3600000, .by = &by };
    assert_int_equal(queue_limits_change(q, &t), 0);
    struct seen s = { 0 };
    assert_int_equal(queue_limits(q, now, keep, &s), 3);
    /* key order: kind, key, name */
    assert_int_equal(s.l[0].kind, 'd');
    assert_string_equal(s.l[0].value, "1/s");
    assert_string_equal(s.l[1].key, "max_connections");
    assert_string_equal(s.l[2].value, "2/s");
    assert_string_equal(s.l[2].who, "alice");
    /* after its end the clamp is no longer read */
    memset(&s, 0, sizeof s);
    assert_int_equal(queue_limits(q, now + 3600001, keep, &s), 2);
    /* bad input: refused before the writer */
    struct queue_limit_change bad = c;
    bad.name = "Upper";
    assert_int_equal(queue_limits_change(q, &bad), -EINVAL);
    bad = c;
    bad.values[0] = "two per second";
    assert_int_equal(queue_limits_change(q, &bad), -EINVAL);
    /* unset one key, then all, then nothing is left to unset */
    struct queue_limit_change u = { .kind = 's', .name = "gmail", .n = 1,
        .keys = { "max_rate" }, .unset = true, .by = &by };
    assert_int_equal(queue_limits_change(q, &u), 0);
    u.n = 0;
    assert_int_equal(queue_limits_change(q, &u), 0);
    assert_int_equal(queue_limits_change(q, &u), QUEUE_ENOTFOUND);
    memset(&s, 0, sizeof s);
    assert_int_equal(queue_limits(q, now, keep, &s), 1);
    queue_close(q);

    /* a damaged entry: the decoder refuses it */
    struct queue_limit l;
    static const char k[] = "limit.s.max_rate.gmail";
    unsigned char v[64] = { 1 };
    assert_int_equal(queue_limit_decode(k, sizeof k - 1, v, 17, &l),
                     QUEUE_ECORRUPT);
    assert_int_equal(queue_limit_decode("limit.z.max_rate.g", 18, v, 17, &l),
                     QUEUE_ECORRUPT);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* max_inflight_bytes: a size with its unit, 1MB..64GB, 32MB when not
 * given; anything else is refused naming the key and the value. */
static void test_inflight_bytes(void **state)
{
    (void)state;
    struct config c;
    char err[600];
    assert_int_equal(load(HEAD, &c, err, sizeof err), 0);
    assert_int_equal(c.max_inflight_bytes, 32ull << 20);
    config_free(&c);
    static const struct { const char *v; uint64_t want; } good[] = {
        { "2MB", 2ull << 20 }, { "64 mb", 64ull << 20 },
        { "1024KB", 1ull << 20 }, { "1GB", 1ull << 30 },
        { "64GB", 64ull << 30 }, { "1048576B", 1ull << 20 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, HEAD "max_inflight_bytes = %s\n",
                 good[i].v);
        assert_int_equal(load(text, &c, err, sizeof err), 0);
        assert_int_equal(c.max_inflight_bytes, good[i].want);
        config_free(&c);
    }
    static const char *const bad[] = { "0", "64", "1023KB", "65GB",
        "lots", "64MiB", "-1MB", "", "99999999999999999999GB" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], want[128];
        snprintf(text, sizeof text, HEAD "max_inflight_bytes = %s\n",
                 bad[i]);
        assert_int_not_equal(load(text, &c, err, sizeof err), 0);
        snprintf(want, sizeof want, "max_inflight_bytes: '%s' is not a "
                 "size from 1MB to 64GB", bad[i]);
        if (!strstr(err, want))
            fail_msg("%s: %s", bad[i], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_shipped),
        cmocka_unit_test(test_file_beats_profile),
        cmocka_unit_test(test_limit_set),
        cmocka_unit_test(test_spool_entries),
        cmocka_unit_test(test_inflight_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
