/*
 * test_dkim_units.c - cmocka unit tests of dkim/: refusals, the field's
 * shape, h= selection, relaxed body hashes against known values and the
 * TXT record of a loaded key.
 * Each test makes its own mkdtemp directory and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dkim_sign.h"

struct fix {
    char dir[64];
    char path[128];
    struct dkim_key *key;
};

/* Make a temporary directory with an Ed25519 key in it. */
static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char txt[256], err[256];
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-dkim-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/k.pem", f->dir);
    assert_int_equal(dkim_keygen("ed25519", 0, f->path, txt, sizeof(txt)), 0);
    assert_int_equal(dkim_key_load(f->path, &f->key, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    dkim_key_free(f->key);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Sign msg and return the field (caller frees), asserting success. */
static char *sign(struct fix *f, const char *msg)
{
    char *h = NULL;
    assert_int_equal(dkim_sign(f->key, "example.test", "s1", msg,
                               strlen(msg), &h), 0);
    return h;
}

static void body_hash_is(struct fix *f, const char *msg, const char *bh)
{
    char *h = sign(f, msg), want[80];
    snprintf(want, sizeof(want), "bh=%s;", bh);
    assert_non_null(strstr(h, want));
    free(h);
}

static void test_body_hashes(void **state)
{
    struct fix *f = *state;
    const char *empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    body_hash_is(f, "From: a@b.test\r\n", empty);
    body_hash_is(f, "From: a@b.test\r\n\r\n", empty);
    body_hash_is(f, "From: a@b.test\r\n\r\n\r\n \t\r\n\r\n", empty);
    body_hash_is(f, "From: a@b.test\r\n\r\nHi  there \t\r\n\r\n\r\n",
                 "LaegeaE4sWd4l9K7YWNlAinmqUePEZwKG9dMjiYmLn8=");
    body_hash_is(f, "From: a@b.test\r\n\r\nHi\tthere",
                 "LaegeaE4sWd4l9K7YWNlAinmqUePEZwKG9dMjiYmLn8=");
    body_hash_is(f, "From: a@b.test\r\n\r\n \t a  b\r\n  \r\nc\r\n\r\n",
                 "LXmMBGb07aGq+JXv4g8cA0Sb/v+C3J//iKyIX+pOPp8=");
}

static void test_field_shape(void **state)
{
    struct fix *f = *state;
    char *h = sign(f, "Received: x\r\nTo: 1@b.test\r\nFrom: a@b.test\r\n"
                      "to: 2@b.test\r\nSubject: s\r\nX-Y: z\r\n\r\nbody\r\n");
    assert_true(strncmp(h, "DKIM-Signature: v=1; a=ed25519-sha256; "
                           "c=relaxed/relaxed; d=example.test;", 55) == 0);
    assert_non_null(strstr(h, "h=From:From:To:To:Subject:Subject;"));
    assert_null(strstr(h, "l="));
    assert_null(strstr(h, "Received"));
    size_t n = strlen(h);
    assert_true(n > 2 && h[n - 2] == '\r' && h[n - 1] == '\n');
    for (char *line = h, *e; (e = strstr(line, "\r\n")) != NULL; line = e + 2)
        assert_true(e - line <= 78);
    free(h);
}

static void test_refusals(void **state)
{
    struct fix *f = *state;
    char *h = NULL, err[256], txt[64];
    struct dkim_key *k = NULL;
    const char *nofrom = "Subject: x\r\n\r\nb\r\n";
    const char *barelf = "From: a@b.test\nSubject: x\r\n\r\n";
    const char *ok = "From: a@b.test\r\n\r\n";

    assert_int_equal(dkim_sign(f->key, "example.test", "s1", nofrom,
                               strlen(nofrom), &h), DKIM_E_MSG);
    assert_int_equal(dkim_sign(f->key, "example.test", "s1", barelf,
                               strlen(barelf), &h), DKIM_E_MSG);
    assert_int_equal(dkim_sign(f->key, "ex;ample.test", "s1", ok,
                               strlen(ok), &h), DKIM_E_ARG);
    assert_int_equal(dkim_sign(f->key, "example.test", "s 1", ok,
                               strlen(ok), &h), DKIM_E_ARG);
    assert_null(h);

    assert_int_equal(chmod(f->path, 0640), 0);
    assert_int_equal(dkim_key_load(f->path, &k, err, sizeof(err)),
                     DKIM_E_KEYPERM);
    assert_null(k);
    assert_non_null(strstr(err, "readable by group or others"));
    assert_int_equal(chmod(f->path, 0600), 0);

    assert_int_equal(dkim_keygen("rsa", 512, "/nonexistent/x", txt,
                                 sizeof(txt)), DKIM_E_KEYSIZE);
    assert_int_equal(dkim_keygen("dsa", 0, "/nonexistent/x", txt,
                                 sizeof(txt)), DKIM_E_ARG);
    /* TXT buffer too small: refused before any file is written. */
    assert_int_equal(dkim_keygen("ed25519", 0, f->path, txt, 10),
                     DKIM_E_TOOBIG);
    /* Existing file is never overwritten. */
    assert_true(dkim_keygen("ed25519", 0, f->path, txt, sizeof(txt)) < 0);
    assert_int_equal(dkim_key_load("/nonexistent/k.pem", &k, err,
                                   sizeof(err)), -2);
    assert_string_equal(dkim_strerror(DKIM_E_KEYPERM),
                        "key file is readable by group or others");
    dkim_key_free(NULL);
}

/* dkim_key_txt() of a loaded key is the record dkim_keygen() printed. */
static void test_key_txt(void **state)
{
    struct fix *f = *state;
    static const char *const algos[] = { "rsa", "ed25519" };
    char path[160], want[1024], got[1024], err[256];

    for (size_t i = 0; i < 2; i++) {
        struct dkim_key *k = NULL;
        snprintf(path, sizeof(path), "%s/%s.pem", f->dir, algos[i]);
        assert_int_equal(dkim_keygen(algos[i], 1024, path, want,
                                     sizeof(want)), 0);
        assert_int_equal(dkim_key_load(path, &k, err, sizeof(err)), 0);
        memset(got, 'x', sizeof(got));
        assert_int_equal(dkim_key_txt(k, got, sizeof(got)), 0);
        assert_string_equal(got, want);
        /* one byte short of the terminating NUL: refused */
        assert_int_equal(dkim_key_txt(k, got, strlen(want)), DKIM_E_TOOBIG);
        assert_int_equal(dkim_key_txt(k, got, strlen(want) + 1), 0);
        assert_string_equal(got, want);
        dkim_key_free(k);
        unlink(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_hashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_txt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
