/*
 * test_eta_live.c - what the campaign ETA takes from sluiced's status
 * document (engine/eta_live.c): sites and their limits, the domains of a
 * [site], the rate caps; a document of the wrong shape or with forged
 * rows gives an empty or partial description, never a crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "eta.h"

/* The description of doc text (NULL: no document). */
static void load(const char *text, struct eta_live *l)
{
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    assert_true(!text || doc);
    assert_int_equal(eta_live_load(doc, l), 0);
    json_decref(doc);   /* l points into doc: only its counts are read */
}

static void no_document(void **state)
{
    (void)state;
    struct eta_live l;
    load(NULL, &l);
    assert_int_equal(l.nsites + l.ndoms + l.ncaps, 0);
    assert_false(l.have_caps);
    assert_string_equal(eta_live_site_of(&l, "a.test"), "a.test");
    assert_null(eta_live_find(&l, "a.test"));
    eta_live_free(&l);
}

static void wrong_shapes(void **state)
{
    (void)state;
    struct eta_live l;
    load("[1,2]", &l);
    assert_int_equal(l.nsites, 0);
    eta_live_free(&l);
    load("{\"sites\":\"x\",\"rate_caps\":{}}", &l);
    assert_int_equal(l.nsites + l.ncaps, 0);
    assert_false(l.have_caps);
    eta_live_free(&l);
    /* rows without a name, domains that are not text, unknown or bad
     * cap kinds and ids are skipped */
    load("{\"sites\":[7,{\"kind\":\"site\",\"domains\":[\"a.test\"]},"
         "{\"name\":\"s\",\"kind\":\"site\",\"domains\":[1,null,\"b.test\"],"
         "\"max_rate_per_s\":\"fast\",\"rate\":-3}],"
         "\"rate_caps\":[{\"kind\":\"bogus\",\"id\":1},"
         "{\"kind\":\"account\",\"id\":-2},{\"kind\":\"campaign\"},5]}", &l);
    assert_int_equal(l.nsites, 1);
    assert_int_equal(l.ndoms, 1);
    assert_true(l.have_caps);
    assert_int_equal(l.ncaps, 0);
    eta_live_free(&l);
}

static void sites_domains_caps(void **state)
{
    (void)state;
    const char *text =
        "{\"sites\":["
        "{\"name\":\"gmail\",\"kind\":\"site\",\"domains\":[\"gmail.com\","
        "\"googlemail.com\"],\"max_rate_per_s\":10,\"rate\":3.5},"
        "{\"name\":\"x.test\",\"kind\":\"domain\",\"domains\":[\"x.test\"],"
        "\"max_rate_per_s\":0,\"rate\":2}],"
        "\"rate_caps\":[{\"kind\":\"account\",\"id\":3,\"max_rate\":\"5/s\","
        "\"max_rate_per_s\":5},{\"kind\":\"campaign\",\"id\":9,"
        "\"max_rate\":\"\",\"max_rate_per_s\":0}]}";
    json_t *doc = json_loads(text, 0, NULL);
    struct eta_live l;
    assert_non_null(doc);
    assert_int_equal(eta_live_load(doc, &l), 0);
    assert_string_equal(eta_live_site_of(&l, "googlemail.com"), "gmail");
    assert_string_equal(eta_live_site_of(&l, "x.test"), "x.test");
    assert_string_equal(eta_live_site_of(&l, "y.test"), "y.test");
    const struct eta_live_site *s = eta_live_find(&l, "gmail");
    assert_non_null(s);
    assert_true(s->is_site && s->max_rate_per_s == 10 && s->rate == 3.5);
    s = eta_live_find(&l, "x.test");
    assert_non_null(s);
    assert_true(!s->is_site && s->max_rate_per_s == 0 && s->rate == 2);
    assert_null(eta_live_find(&l, "gmail.com"));
    assert_true(l.have_caps);
    assert_int_equal(l.ncaps, 2);
    assert_int_equal(l.caps[0].kind, 'a');
    assert_int_equal(l.caps[0].id, 3);
    assert_true(l.caps[0].per_s == 5);
    assert_string_equal(l.caps[0].text, "5/s");
    assert_int_equal(l.caps[1].kind, 'c');
    assert_true(l.caps[1].per_s == 0);
    eta_live_free(&l);
    json_decref(doc);
    eta_live_free(NULL);
}

static void rate_text(void **state)
{
    (void)state;
    char b[48];
    eta_rate_text(10, b, sizeof b);
    assert_string_equal(b, "10/s");
    eta_rate_text(0.5, b, sizeof b);
    assert_string_equal(b, "0.5/s");
    eta_rate_text(2500, b, sizeof b);
    assert_string_equal(b, "2500/s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_document),
        cmocka_unit_test(wrong_shapes),
        cmocka_unit_test(sites_domains_caps),
        cmocka_unit_test(rate_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
