/*
 * test_track.c - unit tests of opens and clicks tracking: which links of
 * the html part are rewritten and which are not, where the pixel goes,
 * the click and open tokens (forged or altered ones refused), the URL a
 * click recovers (also after a header change renumbered the links), and
 * the rule of what is not counted (HEAD, scanners, the scanner window).
 *
 * Messages are decoded here with a small quoted-printable decoder so the
 * assertions state what a mail client shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "track_http.h"

static const unsigned char secret[] = "test-secret-0123456789abcdef";
#define SECRET_LEN (sizeof(secret) - 1)

static const char HTML[] =
    "<html><BODY><p>Hi {{name}}</p>\n"
    "<a href=\"https://a.example/x?y=1&amp;z=2\">A</a>\n"
    "<a title=\"t\" href=http://b.example/p>B</a>\n"
    "<a href=\"{{site}}\">C</a>\n"
    "<a href=\"{{bad}}\">D</a>\n"
    "<a href=\"mailto:x@y.example\">mail</a>\n"
    "<a href=\"https://unsub.example.com/own\">own</a>\n"
    "<abbr href=\"https://abbr.example/\">abbr</abbr>\n"
    "<a href=\"{{unsubscribe_url}}\">leave</a>\n"
    "<a href=\"#top\">top</a>\n"
    "</BODY></html>\n";

static struct render_input input(const char *html, const char *header,
                                 unsigned track)
{
    return (struct render_input){
        .campaign = 7001, .account = 42, .list = 9,
        .from = "Acme <news@mail.example.com>",
        .subject = "s", .html = html, .text = "plain {{name}}\n",
        .header_html = header,
        .footer_html = "<a href='https://f.example/'>footer</a>",
        .unsub_host = "unsub.example.com",
        .secret = secret, .secret_len = SECRET_LEN, .track = track,
    };
}

static struct render_tpl *compile(const struct render_input *in)
{
    char err[256];
    struct render_tpl *t = NULL;
    int rc = render_compile(in, &t, err, sizeof err);
    if (rc)
        fail_msg("compile: %s (%s)", err, render_strerror(rc));
    return t;
}

static const struct render_field fields[] = {
    { .name = "name", .value = "Ann" },
    { .name = "site", .value = "https://c.example/q?a=<b> c" },
    { .name = "bad", .value = "javascript:alert(1)" },
};

static struct render_contact contact(uint64_t delivery)
{
    return (struct render_contact){ .id = 555, .delivery = delivery,
                                    .email = "rcpt@example.org",
                                    .fields = fields, .nfields = 3 };
}

/* The message of t for delivery, quoted-printable decoded (headers and
 * both parts; soft breaks joined). */
static char *rendered(const struct render_tpl *t, uint64_t delivery)
{
    struct render_contact c = contact(delivery);
    char *msg, mf[RENDER_MAILFROM_MAX];
    size_t len;
    int rc = render_message(t, &c, &msg, &len, mf, sizeof mf);
    if (rc)
        fail_msg("render: %s", render_strerror(rc));
    char *out = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '=' && i + 2 < len && msg[i + 1] == '\r' &&
            msg[i + 2] == '\n') {
            i += 2;
        } else if (msg[i] == '=' && i + 2 < len &&
                   strchr("0123456789ABCDEF", msg[i + 1]) &&
                   strchr("0123456789ABCDEF", msg[i + 2])) {
            unsigned v = 0;
            sscanf(msg + i + 1, "%2x", &v);
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = msg[i];
        }
    }
    out[o] = 0;
    free(msg);
    return out;
}

/* The click tokens of m, in order, into tok[][67]; their number. */
static size_t clicks(const char *m, char tok[][RENDER_CLICK_TOKEN_LEN + 1],
                     size_t max)
{
    size_t n = 0;
    const char *needle = "https://unsub.example.com/c/";
    for (const char *p = strstr(m, needle); p && n < max;
         p = strstr(p + 1, needle)) {
        memcpy(tok[n], p + strlen(needle), RENDER_CLICK_TOKEN_LEN);
        tok[n++][RENDER_CLICK_TOKEN_LEN] = 0;
    }
    return n;
}

/* The URL a click on tok leads to under t (asserting the token). */
static int follow(const struct render_tpl *t, const char *tok, char *url,
                  size_t cap, uint64_t *delivery)
{
    uint64_t campaign, contact_id;
    unsigned link;
    uint32_t check;
    assert_int_equal(render_click_decode(tok, secret, SECRET_LEN, &campaign,
                                         delivery, &contact_id, &link,
                                         &check), 0);
    assert_int_equal(campaign, 7001);
    assert_int_equal(contact_id, 555);
    struct render_contact c = contact(*delivery);
    return render_track_link(t, &c, link, check, url, cap);
}

static void test_links_and_pixel(void **state)
{
    (void)state;
    struct render_input in = input(HTML, "<a href=\"https://h.example/\">h"
                                         "</a>", 3);
    struct render_tpl *t = compile(&in);
    char *m = rendered(t, 31);
    char tok[16][RENDER_CLICK_TOKEN_LEN + 1];
    /* tracked: the header's, A, B, C (a field), the footer's */
    assert_int_equal(clicks(m, tok, 16), 5);
    static const char *const want[] = {
        "https://h.example/", "https://a.example/x?y=1&z=2",
        "http://b.example/p", "https://c.example/q?a=%3Cb%3E%20c",
        "https://f.example/",
    };
    for (size_t i = 0; i < 5; i++) {
        char url[4096];
        uint64_t d;
        assert_int_equal(follow(t, tok[i], url, sizeof url, &d), 0);
        assert_int_equal(d, 31);
        assert_string_equal(url, want[i]);
    }
    /* left as written */
    assert_non_null(strstr(m, "<a href=\"javascript:alert(1)\">D</a>"));
    assert_non_null(strstr(m, "href=\"mailto:x@y.example\""));
    assert_non_null(strstr(m, "href=\"https://unsub.example.com/own\""));
    assert_non_null(strstr(m, "<abbr href=\"https://abbr.example/\">"));
    assert_non_null(strstr(m, "href=\"https://unsub.example.com/u/"));
    assert_non_null(strstr(m, "href=\"#top\""));
    assert_non_null(strstr(m, "<a title=\"t\" href=https://unsub.example.com"
                              "/c/"));
    /* the pixel: after the footer, right before </BODY>, its token ours */
    const char *px = strstr(m, "<img src=\"https://unsub.example.com/o/");
    assert_non_null(px);
    assert_true(strstr(m, "footer</a>") < px);
    const char *end = strchr(px, '>');
    assert_non_null(end);
    assert_memory_equal(end + 1, "</BODY>", 7);
    char otok[RENDER_OPEN_TOKEN_LEN + 1];
    memcpy(otok, px + 38, RENDER_OPEN_TOKEN_LEN);
    otok[RENDER_OPEN_TOKEN_LEN] = 0;
    uint64_t campaign, delivery, cid;
    assert_int_equal(render_open_decode(otok, secret, SECRET_LEN, &campaign,
                                        &delivery, &cid), 0);
    assert_true(campaign == 7001 && delivery == 31 && cid == 555);
    /* the text part keeps nothing of it */
    const char *plain = strstr(m, "plain Ann");
    assert_non_null(plain);
    const char *plain_end = strstr(plain, "--=_");
    assert_non_null(plain_end);
    assert_true(strstr(plain, "/c/") > plain_end);

    /* a changed character is forged; a token of the other kind has the
     * wrong length; an unknown check finds no link */
    char bad[RENDER_CLICK_TOKEN_LEN + 1];
    memcpy(bad, tok[1], sizeof bad);
    bad[20] = bad[20] == 'a' ? 'b' : 'a';
    unsigned link;
    uint32_t check;
    assert_int_equal(render_click_decode(bad, secret, SECRET_LEN, &campaign,
                                         &delivery, &cid, &link, &check),
                     RENDER_E_FORGED);
    assert_int_equal(render_click_decode(otok, secret, SECRET_LEN,
                                         &campaign, &delivery, &cid, &link,
                                         &check), RENDER_E_TOKEN);
    assert_int_equal(render_open_decode(tok[0], secret, SECRET_LEN,
                                        &campaign, &delivery, &cid),
                     RENDER_E_TOKEN);
    struct render_contact c = contact(31);
    char url[4096];
    assert_int_equal(render_track_link(t, &c, 1, 12345, url, sizeof url),
                     -ENOENT);
    uint64_t dd, cc;
    assert_int_equal(render_click_decode(tok[1], secret, SECRET_LEN,
                                         &campaign, &dd, &cc, &link, &check),
                     0);
    assert_int_equal(render_track_link(t, &c, link, check, url, 8), -ENOSPC);

    /* a header without its link renumbers the others: a click still
     * finds its own link by its check */
    struct render_input in2 = input(HTML, NULL, 3);
    struct render_tpl *t2 = compile(&in2);
    uint64_t d;
    assert_int_equal(follow(t2, tok[1], url, sizeof url, &d), 0);
    assert_string_equal(url, "https://a.example/x?y=1&z=2");
    assert_int_equal(follow(t2, tok[0], url, sizeof url, &d), -ENOENT);
    render_free(t2);
    free(m);
    render_free(t);
}

static void test_opens_only_clicks_only_none(void **state)
{
    (void)state;
    struct render_input in = input(HTML, NULL, RENDER_TRACK_OPENS);
    struct render_tpl *t = compile(&in);
    char *m = rendered(t, 1);
    assert_null(strstr(m, "/c/"));
    assert_non_null(strstr(m, "/o/"));
    free(m);
    render_free(t);
    in.track = RENDER_TRACK_CLICKS;
    t = compile(&in);
    m = rendered(t, 1);
    assert_non_null(strstr(m, "/c/"));
    assert_null(strstr(m, "/o/"));
    free(m);
    render_free(t);
    in.track = 0;
    t = compile(&in);
    m = rendered(t, 1);
    assert_null(strstr(m, "/c/"));
    assert_null(strstr(m, "/o/"));
    assert_non_null(strstr(m, "href=\"https://a.example/x?y=1&amp;z=2\""));
    free(m);
    render_free(t);
    /* no </body>: the pixel ends the part; an over-long URL stays */
    char big[3000], path[2100];
    memset(path, 'x', sizeof path - 1);
    path[sizeof path - 1] = 0;
    snprintf(big, sizeof big, "<a href=\"https://g.example/%s\">g</a><p>e",
             path);
    in = input(big, NULL, 3);
    t = compile(&in);
    m = rendered(t, 1);
    char tk[4][RENDER_CLICK_TOKEN_LEN + 1];
    assert_int_equal(clicks(m, tk, 4), 1);          /* the footer's only */
    assert_non_null(strstr(m, "<a href=\"https://g.example/xxxxxxxx"));
    const char *px = strstr(m, "/o/");
    assert_non_null(px);
    assert_non_null(strstr(px, "\">\r\n--=_"));
    free(m);
    render_free(t);
    in = input(HTML, NULL, 4);
    char err[200];
    assert_int_equal(render_compile(&in, &t, err, sizeof err), RENDER_E_ARG);
}

static void test_not_counted(void **state)
{
    (void)state;
    const char *ua = "Mozilla/5.0 (Macintosh) AppleWebKit";
    int64_t now = 1700000000000;
    assert_null(track_not_counted("GET", ua, 0, now, 10000));
    assert_string_equal(track_not_counted("HEAD", ua, 0, now, 10000),
                        "head");
    assert_string_equal(track_not_counted("GET", NULL, 0, now, 10000),
                        "no user agent");
    assert_string_equal(track_not_counted("GET", "", 0, now, 10000),
                        "no user agent");
    assert_string_equal(track_not_counted("GET", "Mozilla/5.0 (compatible; "
                                          "Googlebot/2.1)", 0, now, 10000),
                        "scanner");
    assert_string_equal(track_not_counted("GET", "Proofpoint URL Defense",
                                          0, now, 10000), "scanner");
    /* a click 5 s after delivery is a scanner's, 20 s after a person's;
     * not yet recorded as delivered: too soon; window 0: no rule */
    assert_string_equal(track_not_counted("GET", ua, now / 1000 - 5, now,
                                          10000), "too soon after delivery");
    assert_null(track_not_counted("GET", ua, now / 1000 - 20, now, 10000));
    assert_string_equal(track_not_counted("GET", ua, -1, now, 10000),
                        "too soon after delivery");
    assert_null(track_not_counted("GET", ua, now / 1000 - 5, now, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_links_and_pixel),
        cmocka_unit_test(test_opens_only_clicks_only_none),
        cmocka_unit_test(test_not_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
