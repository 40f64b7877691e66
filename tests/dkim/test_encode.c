/*
 * test_encode.c - cmocka unit tests of the one quoted-printable encoder
 * and RFC 2047 word writer (dkim/encode.c) that message preparation and
 * the campaign renderer share: output decodes to the input, lines stay
 * within 76, text fed in pieces encodes as the whole, the line-start
 * guard, NUL handling, and the encoded words' form and Q/B choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dkim_encode.h"

#define OUT_CAP 65536

/* Encode s[0..n) in pieces of at most piece octets; NUL-terminated. */
static size_t encode(const char *s, size_t n, size_t piece, unsigned flags,
                     char *out)
{
    struct dkim_qp q = { .flags = flags };
    size_t len = 0;
    for (size_t at = 0; at < n; at += piece) {
        size_t k = n - at < piece ? n - at : piece;
        assert_true(len + DKIM_QP_ROOM(k) < OUT_CAP);
        len = dkim_qp_put(&q, out, len, s + at, k);
    }
    len = dkim_qp_end(&q, out, len);
    out[len] = 0;
    return len;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode quoted-printable, checking the form on the way: lines of at
 * most 76, no blank before a line end, '=' only as =XX or a soft break,
 * and (guard) no line starting with '-' or "From ". */
static size_t decode(const char *s, char *out, int guard)
{
    size_t o = 0, col = 0;
    for (size_t i = 0; s[i]; i++) {
        if (col == 0 && guard) {
            assert_false(s[i] == '-');
            assert_false(!strncmp(s + i, "From ", 5));
        }
        if (s[i] == '\r') {
            assert_int_equal(s[i + 1], '\n');
            assert_true(i == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'));
            out[o++] = '\r';
            out[o++] = '\n';
            i++;
            col = 0;
            continue;
        }
        col++;
        assert_true(col <= 76);
        if (s[i] == '=') {
            if (s[i + 1] == '\r') {
                assert_int_equal(s[i + 2], '\n');
                i += 2;
                col = 0;
                continue;
            }
            assert_true(hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0);
            out[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
            col += 2;
            assert_true(col <= 76);
            continue;
        }
        out[o++] = s[i];
    }
    out[o] = 0;
    return o;
}

static void test_roundtrip_and_pieces(void **state)
{
    (void)state;
    char in[3000], whole[OUT_CAP], piece[OUT_CAP], dec[OUT_CAP];
    size_t n = 0;
    /* long lines, '=', blanks before breaks, 8-bit octets, dashes */
    static const char unit[] = "ab=cd \t\xc3\xa9-x--.  ";
    while (n + sizeof unit < 1500) {
        memcpy(in + n, unit, sizeof unit - 1);
        n += sizeof unit - 1;
    }
    memcpy(in + n, " \r\nnext \t\r\n-dash\r\nlast ", 23);
    n += 23;
    in[n] = 0;
    static const unsigned flags[] = { 0, DKIM_QP_GUARD,
                                      DKIM_QP_GUARD | DKIM_QP_DROP_NUL };
    for (size_t f = 0; f < 3; f++) {
        size_t wl = encode(in, n, DKIM_QP_CHUNK, flags[f], whole);
        size_t dl = decode(whole, dec, flags[f] & DKIM_QP_GUARD);
        assert_int_equal(dl, n);
        assert_memory_equal(dec, in, n);
        /* the same output whatever the pieces (no 'F' in this text) */
        static const size_t pieces[] = { 1, 2, 7, 8, 9, 75, 76, 1000 };
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            size_t pl = encode(in, n, pieces[p], flags[f], piece);
            assert_int_equal(pl, wl);
            assert_memory_equal(piece, whole, wl);
        }
    }
}

static void test_guard(void **state)
{
    (void)state;
    char out[OUT_CAP], dec[OUT_CAP], in[200];
    encode("From me\nFrost\n-x\nFrom", 21, DKIM_QP_CHUNK, DKIM_QP_GUARD,
           out);
    assert_string_equal(out, "=46rom me\r\nFrost\r\n=2Dx\r\n=46rom");
    encode("From me\n-x", 10, DKIM_QP_CHUNK, 0, out);
    assert_string_equal(out, "From me\r\n-x");
    /* a '-' that a soft break would put at a line start */
    memset(in, 'a', 75);
    memcpy(in + 75, "-b", 3);
    encode(in, 77, DKIM_QP_CHUNK, DKIM_QP_GUARD, out);
    assert_non_null(strstr(out, "=\r\n=2Db"));
    decode(out, dec, 1);
    assert_string_equal(dec, in);
    /* "From " cut across two pieces is still caught */
    struct dkim_qp q = { .flags = DKIM_QP_GUARD };
    size_t len = dkim_qp_put(&q, out, 0, "Fr", 2);
    len = dkim_qp_put(&q, out, len, "om x", 4);
    out[dkim_qp_end(&q, out, len)] = 0;
    assert_string_equal(out, "=46rom x");
}

static void test_nul(void **state)
{
    (void)state;
    char out[64];
    encode("a\0b", 3, DKIM_QP_CHUNK, 0, out);
    assert_string_equal(out, "a=00b");
    encode("a\0b", 3, DKIM_QP_CHUNK, DKIM_QP_DROP_NUL, out);
    assert_string_equal(out, "ab");
    encode("end \t", 5, DKIM_QP_CHUNK, 0, out);
    assert_string_equal(out, "end =09");
}

static void test_encoded_words(void **state)
{
    (void)state;
    char w[256];
    const unsigned char *cafe = (const unsigned char *)"caf\xc3\xa9 au lait";
    size_t n = strlen((const char *)cafe);
    assert_false(dkim_ew_use_b(cafe, n));
    size_t wl = dkim_ew_put(w, "UTF-8", 0, cafe, n);
    w[wl] = 0;
    assert_string_equal(w, "=?UTF-8?Q?caf=C3=A9_au_lait?=");
    assert_int_equal(wl, 7 + 5 + dkim_ew_textlen(cafe, n, 0));
    /* Q stays unless B is clearly shorter: "Jörg Müller" is Q (21 vs 20) */
    const unsigned char *jm = (const unsigned char *)"J\xc3\xb6rg M\xc3\xbcller";
    assert_false(dkim_ew_use_b(jm, strlen((const char *)jm)));
    /* all 8-bit text is B */
    const unsigned char *ru = (const unsigned char *)
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82";
    n = strlen((const char *)ru);
    assert_true(dkim_ew_use_b(ru, n));
    wl = dkim_ew_put(w, "utf-8", 1, ru, n);
    w[wl] = 0;
    assert_string_equal(w, "=?utf-8?B?0J/RgNC40LLQtdGC?=");
    /* B padding, and the Q specials */
    wl = dkim_ew_put(w, "UTF-8", 1, (const unsigned char *)"\xff", 1);
    w[wl] = 0;
    assert_string_equal(w, "=?UTF-8?B?/w==?=");
    wl = dkim_ew_put(w, "UTF-8", 0, (const unsigned char *)"a_b?c=d\"", 8);
    w[wl] = 0;
    assert_string_equal(w, "=?UTF-8?Q?a=5Fb=3Fc=3Dd=22?=");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_pieces),
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_encoded_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
