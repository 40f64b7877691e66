/*
 * test_prepare.c - cmocka unit tests of dkim_prepare(): the zero-copy
 * path, line ends, folding, quoted-printable re-encoding of leaf parts,
 * multipart walking, RFC 2047 header words, malformed MIME and the caps.
 * Every output is also checked for CRLF-only lines of at most 998 octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dkim_prepare.h"
#include "dkim_sign.h"

/* Assert that every line of s[0..n) ends in CRLF and holds at most 998
 * octets, and, when ascii, that no octet is 8-bit. */
static void assert_wire_safe(const char *s, size_t n, int ascii)
{
    size_t i, col = 0;

    if (n > 0)
        assert_true(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
    for (i = 0; i < n; i++) {
        if (s[i] == '\r') {
            assert_true(i + 1 < n && s[i + 1] == '\n');
            assert_true(col <= 998);
            col = 0;
            i++;
            continue;
        }
        assert_true(s[i] != '\n');
        if (ascii)
            assert_true((unsigned char)s[i] < 0x80);
        col++;
    }
}

/* Prepare in (NUL-terminated) and return the output as a malloc'd
 * string, a copy of in when zero-copy; *info gets the bits. */
static char *prep(const char *in, unsigned flags, unsigned *info)
{
    size_t len = strlen(in), outlen = 0;
    char *out = NULL, *copy;

    assert_int_equal(dkim_prepare(in, len, flags, &out, &outlen, info), 0);
    if (out == NULL) {
        assert_int_equal(outlen, len);
        assert_false(*info & DKIM_PREP_CHANGED);
        copy = strdup(in);
        assert_non_null(copy);
        return copy;
    }
    assert_true(*info & DKIM_PREP_CHANGED);
    assert_int_equal(strlen(out), outlen);
    assert_wire_safe(out, outlen,
                     (flags & DKIM_PREP_7BIT) && !(*info & DKIM_PREP_8BIT));
    return out;
}

/* Assert that prep() of in gives exactly want. */
static void prep_is(const char *in, unsigned flags, const char *want,
                    unsigned want_info)
{
    unsigned info = 0;
    char *out = prep(in, flags, &info);

    assert_string_equal(out, want);
    assert_int_equal(info, want_info);
    free(out);
}

#define HDR "From: a@example.org\r\nSubject: hi\r\n"

static void test_zero_copy(void **state)
{
    static const char clean[] = HDR "\r\nline\r\n";
    static const char high[] = HDR "\r\ncaf\xc3\xa9\r\n";
    char *out = (char *)1;
    size_t outlen = 0;
    unsigned info = 99;

    (void)state;
    assert_int_equal(dkim_prepare(clean, strlen(clean), DKIM_PREP_7BIT, &out,
                                  &outlen, &info), 0);
    assert_null(out);
    assert_int_equal(outlen, strlen(clean));
    assert_int_equal(info, 0);
    /* 8-bit without DKIM_PREP_7BIT: untouched, but reported. */
    assert_int_equal(dkim_prepare(high, strlen(high), 0, &out, &outlen, &info), 0);
    assert_null(out);
    assert_int_equal(info, DKIM_PREP_8BIT);
    /* Empty input, and info may be NULL. */
    assert_int_equal(dkim_prepare("", 0, 0, &out, &outlen, NULL), 0);
    assert_null(out);
    assert_int_equal(outlen, 0);
}

static void test_line_ends(void **state)
{
    (void)state;
    prep_is("From: a@example.org\nSubject: hi\n\nl1\nl2\n", 0,
            HDR "\r\nl1\r\nl2\r\n", DKIM_PREP_CHANGED);
    prep_is("From: a@example.org\rSubject: hi\r\rl1\rl2\r", 0,
            HDR "\r\nl1\r\nl2\r\n", DKIM_PREP_CHANGED);
    prep_is(HDR "\r\na\rb\nc\r\n\n\rd", 0,
            HDR "\r\na\r\nb\r\nc\r\n\r\n\r\nd\r\n", DKIM_PREP_CHANGED);
    /* A missing final CRLF is added, after a body or a header alike. */
    prep_is(HDR "\r\nlast", 0, HDR "\r\nlast\r\n", DKIM_PREP_CHANGED);
    prep_is("From: a@example.org", 0, "From: a@example.org\r\n",
            DKIM_PREP_CHANGED);
}

/* A string of n copies of "word " with prefix and suffix (malloc'd). */
static char *words(const char *prefix, size_t n, const char *suffix)
{
    size_t len = strlen(prefix) + 5 * n + strlen(suffix) + 1, i, off;
    char *s = malloc(len);

    assert_non_null(s);
    off = (size_t)snprintf(s, len, "%s", prefix);
    for (i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, len - off, "word ");
    snprintf(s + off, len - off, "%s", suffix);
    return s;
}

/* Remove "\r\n" from s in place (unfolding). */
static void unfold_all(char *s)
{
    char *w = s, *r = s;

    for (; *r; r++)
        if (!(r[0] == '\r' && r[1] == '\n') && !(r[0] == '\n' && r > s && r[-1] == '\r'))
            *w++ = *r;
    *w = '\0';
}

static void test_long_header(void **state)
{
    char *in = words("From: a@example.org\r\nSubject: x", 500, "end\r\n\r\nbody\r\n");
    char *out, *u1, *u2;
    unsigned info;

    (void)state;
    out = prep(in, 0, &info);
    assert_int_equal(info, DKIM_PREP_CHANGED);   /* folded, not re-encoded */
    u1 = strdup(in);
    u2 = strdup(out);
    unfold_all(u1);
    unfold_all(u2);
    assert_string_equal(u1, u2);                 /* only CRLFs were added */
    free(u1);
    free(u2);
    free(out);
    free(in);

    /* No white space at all: CRLF SP goes in, every line stays short. */
    in = malloc(3000);
    assert_non_null(in);
    memcpy(in, "X-Token: ", 9);
    memset(in + 9, 'x', 2500);
    memcpy(in + 2509, "\r\n\r\nb\r\n", 8);
    out = prep(in, 0, &info);
    assert_non_null(strstr(out, "\r\n xxx"));
    free(out);
    free(in);
}

static void test_long_body_line(void **state)
{
    char *in = words(HDR "\r\n", 300, "=end \r\n");
    char *out;
    unsigned info;

    (void)state;
    out = prep(in, 0, &info);
    assert_int_equal(info, DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    assert_non_null(strstr(out, HDR "Content-Transfer-Encoding: quoted-printable\r\n"
                                    "MIME-Version: 1.0\r\n\r\nword word"));
    assert_non_null(strstr(out, "=\r\n"));          /* soft breaks */
    assert_non_null(strstr(out, "=3Dend=20\r\n"));  /* '=' and trailing SP */
    assert_null(strstr(out, "Content-Type"));      /* ASCII: no charset */
    free(out);
    free(in);
}

static void test_7bit_text(void **state)
{
    (void)state;
    prep_is(HDR "\r\ncaf\xc3\xa9 \r\nFrom me\r\n", DKIM_PREP_7BIT,
            HDR "Content-Transfer-Encoding: quoted-printable\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "MIME-Version: 1.0\r\n"
            "\r\ncaf=C3=A9=20\r\n=46rom me\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    /* A MIME part keeps its Content-Type; 8bit becomes quoted-printable. */
    prep_is(HDR "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=latin1\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n", DKIM_PREP_7BIT,
            HDR "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=latin1\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
}

static void test_alternative(void **state)
{
    char *longl = words("", 300, "");
    char in[8192], want[16384];
    char *out;
    unsigned info;
    static const char b64part[] =
        "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        "\r\niVBORw0KGgo=\r\n";

    (void)state;
    snprintf(in, sizeof(in),
             HDR "MIME-Version: 1.0\r\nContent-Type: multipart/alternative;"
             " boundary=b\r\n\r\npreamble\r\n"
             "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
             "--b\r\nContent-Type: text/html\r\n\r\n<p>%s</p>\r\n"
             "--b\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
             "%s--b--\r\nepilogue\r\n", longl, b64part);
    out = prep(in, DKIM_PREP_7BIT, &info);
    assert_int_equal(info, DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    snprintf(want, sizeof(want),
             HDR "MIME-Version: 1.0\r\nContent-Type: multipart/alternative;"
             " boundary=b\r\n\r\npreamble\r\n"
             "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9t=C3=A9\r\n"
             "--b\r\nContent-Type: text/html\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>word");
    assert_memory_equal(out, want, strlen(want));
    /* The ASCII and base64 parts, boundaries and epilogue are as they were. */
    snprintf(want, sizeof(want),
             "</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
             "%s--b--\r\nepilogue\r\n", b64part);
    assert_non_null(strstr(out, want));
    free(out);
    free(longl);
}

static void test_nested(void **state)
{
    static const char in[] =
        HDR "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
        "--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n"
        "--i\r\nContent-Type: text/plain\r\n\r\nascii\r\n"
        "--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xbc\r\n"
        "--i--\r\n"
        "--o\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "JVBERi0=\r\n--o--\r\n";
    static const char want[] =
        HDR "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
        "--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n"
        "--i\r\nContent-Type: text/plain\r\n\r\nascii\r\n"
        "--i\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC\r\n"
        "--i--\r\n"
        "--o\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "JVBERi0=\r\n--o--\r\n";

    (void)state;
    prep_is(in, DKIM_PREP_7BIT, want, DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    prep_is(in, 0, in, DKIM_PREP_8BIT);          /* zero-copy without 7BIT */
}

static void test_base64(void **state)
{
    char *in = malloc(8192), *out;
    size_t off, i;
    unsigned info;

    (void)state;
    assert_non_null(in);
    /* A well-formed base64 part is left alone. */
    prep_is(HDR "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n", DKIM_PREP_7BIT,
            HDR "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n", 0);
    /* One 4000-character line is re-wrapped at 76. */
    off = (size_t)snprintf(in, 8192, HDR "Content-Transfer-Encoding: base64\r\n\r\n");
    for (i = 0; i < 4000; i++)
        in[off++] = "ABCD"[i % 4];
    memcpy(in + off, "\r\n", 3);
    out = prep(in, 0, &info);
    assert_int_equal(info, DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    assert_non_null(strstr(out, "\r\n\r\nABCDABCD"));
    assert_int_equal(strstr(strstr(out, "\r\n\r\n") + 4, "\r\n") -
                     (strstr(out, "\r\n\r\n") + 4), 76);
    free(out);
    free(in);
}

static void test_subject(void **state)
{
    (void)state;
    prep_is("From: a@example.org\r\nSubject: Re: caf\xc3\xa9 au lait\r\n\r\nb\r\n",
            DKIM_PREP_7BIT,
            "From: a@example.org\r\nSubject: Re: =?UTF-8?Q?caf=C3=A9?= au lait\r\n"
            "\r\nb\r\n", DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    /* Not UTF-8: labelled unknown-8bit rather than mislabelled. */
    prep_is("Subject: caf\xe9\r\n\r\nb\r\n", DKIM_PREP_7BIT,
            "Subject: =?unknown-8bit?Q?caf=E9?=\r\n\r\nb\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
}

/* Every encoded word in s is at most 75 characters. */
static void assert_short_words(const char *s)
{
    const char *p = s, *q;

    while ((p = strstr(p, "=?"))) {
        q = strchr(p + 2, '?');         /* end of the charset */
        assert_non_null(q);
        q = strchr(q + 1, '?');         /* end of the encoding letter */
        assert_non_null(q);
        q = strstr(q + 1, "?=");
        assert_non_null(q);
        assert_true(q + 2 - p <= 75);
        p = q + 2;
    }
}

static void test_long_subject(void **state)
{
    char in[4096], *out;
    size_t off, i;
    unsigned info;

    (void)state;
    off = (size_t)snprintf(in, sizeof(in), "Subject: ");
    for (i = 0; i < 200; i++)
        off += (size_t)snprintf(in + off, sizeof(in) - off, "\xe2\x82\xac");
    snprintf(in + off, sizeof(in) - off, "\r\n\r\nb\r\n");
    out = prep(in, DKIM_PREP_7BIT, &info);
    assert_short_words(out);
    assert_null(strstr(out, "\r\n\r\n\r\n"));
    free(out);
}

static void test_from_display_name(void **state)
{
    (void)state;
    prep_is("From: J\xc3\xb6rg M\xc3\xbcller <jm@example.org>\r\n"
            "To: \"M\xc3\xbcller, J.\" <a@example.org>, b@example.org\r\n\r\nb\r\n",
            DKIM_PREP_7BIT,
            "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.org>\r\n"
            "To: =?UTF-8?Q?M=C3=BCller=2C_J=2E?= <a@example.org>, b@example.org\r\n"
            "\r\nb\r\n", DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    /* An 8-bit addr-spec is not ours to change: left, and reported. */
    prep_is("From: J\xc3\xb6rg <j\xc3\xb6rg@example.org>\r\n\r\nb\r\n",
            DKIM_PREP_7BIT,
            "From: =?UTF-8?Q?J=C3=B6rg?= <j\xc3\xb6rg@example.org>\r\n\r\nb\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED | DKIM_PREP_8BIT);
    prep_is("From: j\xc3\xb6rg@example.org\r\n\r\nb\r\n", DKIM_PREP_7BIT,
            "From: j\xc3\xb6rg@example.org\r\n\r\nb\r\n", DKIM_PREP_8BIT);
}

static void test_malformed(void **state)
{
    unsigned info;
    char *out;

    (void)state;
    /* No closing boundary: the last part runs to the end. */
    prep_is("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n\xc3\xa9\r\n",
            DKIM_PREP_7BIT,
            "Content-Type: multipart/mixed; boundary=x\r\nMIME-Version: 1.0\r\n"
            "\r\n--x\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n=C3=A9\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    /* The boundary is a quoted string holding ';' and a quote. */
    prep_is("Content-Type: multipart/mixed; boundary=\"a;\\\"b\"; x=y\r\n\r\n"
            "--a;\"b\r\n\r\n\xc3\xa9\r\n--a;\"b--\r\n", DKIM_PREP_7BIT,
            "Content-Type: multipart/mixed; boundary=\"a;\\\"b\"; x=y\r\n"
            "MIME-Version: 1.0\r\n\r\n--a;\"b\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n=C3=A9\r\n--a;\"b--\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    /* The boundary never appears: the body is one opaque leaf. */
    out = prep("Content-Type: multipart/mixed; boundary=zz\r\n\r\n--z\r\n\xc3\xa9\r\n",
               DKIM_PREP_7BIT, &info);
    assert_non_null(strstr(out, "quoted-printable\r\nMIME-Version: 1.0\r\n\r\n"
                              "=2D-z\r\n=C3=A9\r\n"));
    free(out);
    /* Empty body, header only, nothing at all. */
    prep_is(HDR "\r\n", DKIM_PREP_7BIT, HDR "\r\n", 0);
    prep_is(HDR, DKIM_PREP_7BIT, HDR, 0);
    prep_is("", DKIM_PREP_7BIT, "", 0);
    /* A line that is no header field ends the header (the body starts
     * there); a separator goes in when fields are added. */
    prep_is("From: a@example.org\r\nnot a field \xc3\xa9\r\nmore\r\n", DKIM_PREP_7BIT,
            "From: a@example.org\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n"
            "\r\nnot a field =C3=A9\r\nmore\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
    prep_is("From: a@example.org\r\nnot a field\r\n", 0,
            "From: a@example.org\r\n\r\nnot a field\r\n", DKIM_PREP_CHANGED);
    /* No final CRLF in a part that needs re-encoding. */
    prep_is("Content-Type: text/plain\r\n\r\n\xc3\xa9", DKIM_PREP_7BIT,
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            "MIME-Version: 1.0\r\n\r\n=C3=A9\r\n",
            DKIM_PREP_CHANGED | DKIM_PREP_REENCODED);
}

/* Re-encoding must not make a line that reads as a boundary: a soft
 * break can fall just before "--b", so a '-' opening a line is =2D. */
static void test_qp_never_makes_boundary(void **state)
{
    char in[4096], *out, *p;
    size_t off;
    unsigned info;
    int n = 0;

    (void)state;
    off = (size_t)snprintf(in, sizeof(in),
                           "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                           "--b\r\n\r\n");
    memset(in + off, 'x', 75);
    off += 75;
    off += (size_t)snprintf(in + off, sizeof(in) - off, "--b");
    memset(in + off, 'y', 1000);
    off += 1000;
    snprintf(in + off, sizeof(in) - off, "\r\n--b--\r\n");
    out = prep(in, 0, &info);
    assert_true(info & DKIM_PREP_REENCODED);
    for (p = out; (p = strstr(p, "\r\n--b")); p += 2)
        n++;
    assert_int_equal(n, 2);                      /* the two real ones */
    assert_non_null(strstr(out, "=\r\n=2D-b"));
    free(out);
}

static void test_deep_nesting(void **state)
{
    char in[8192];
    size_t off = 0;
    int i;
    unsigned info;
    char *out;

    (void)state;
    for (i = 0; i < 40; i++)
        off += (size_t)snprintf(in + off, sizeof(in) - off,
                                "Content-Type: multipart/mixed; boundary=\"d%d\"\r\n"
                                "\r\n--d%d\r\n", i, i);
    snprintf(in + off, sizeof(in) - off, "\r\n\xc3\xa9\r\n");
    out = prep(in, DKIM_PREP_7BIT, &info);
    /* Past DKIM_PREP_MAX_DEPTH a multipart is kept whole (no transfer
     * encoding is allowed on it), so the 8-bit octet stays, reported. */
    assert_true(info & DKIM_PREP_8BIT);
    assert_null(strstr(out, "quoted-printable"));
    free(out);
}

static void test_errors(void **state)
{
    size_t big = (size_t)DKIM_PREP_MAX_INPUT + 1, outlen;
    char *msg = malloc(big), *out = (char *)1;
    unsigned info;

    (void)state;
    assert_non_null(msg);   /* never touched: the length is refused first */
    assert_int_equal(dkim_prepare(msg, big, 0, &out, &outlen, &info), DKIM_E_TOOBIG);
    assert_null(out);
    free(msg);
    assert_int_equal(dkim_prepare("x", 1, 0, NULL, &outlen, &info), DKIM_E_ARG);
    assert_int_equal(dkim_prepare(NULL, 1, 0, &out, &outlen, &info), DKIM_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_long_header),
        cmocka_unit_test(test_long_body_line),
        cmocka_unit_test(test_7bit_text),
        cmocka_unit_test(test_alternative),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_long_subject),
        cmocka_unit_test(test_from_display_name),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_qp_never_makes_boundary),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
