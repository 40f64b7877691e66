/*
 * test_render.c - unit tests of engine/render: merge fields, header
 * injection, escaping, RFC 2047 subjects, header/footer placement, the
 * fixed headers, tokens (VERP and unsubscribe), template errors, MIME
 * boundaries, the derived text part and rendering from several threads.
 *
 * Messages are taken apart here with small independent decoders
 * (header unfolding, RFC 2047, quoted-printable) so that each test states
 * what a receiving mail client would see.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "render.h"

#define CAP (256 * 1024)

static const unsigned char secret[] = "test-secret-0123456789abcdef";
#define SECRET_LEN (sizeof(secret) - 1)

/* ---- helpers: a template, a contact, one message ---- */

/* Input with the usual settings and the given parts. */
static struct render_input input(const char *subject, const char *html,
                                 const char *text)
{
    return (struct render_input){
        .campaign = 7001, .account = 42, .list = 9,
        .from = "Acme News <news@mail.example.com>",
        .subject = subject, .html = html, .text = text,
        .unsub_host = "unsub.example.com",
        .bounce_domain = "bounce.example.com",
        .feedback_sender = "acme",
        .secret = secret, .secret_len = SECRET_LEN,
    };
}

/* Compile, asserting success. */
static struct render_tpl *compile(const struct render_input *in)
{
    char err[256];
    struct render_tpl *t = NULL;
    int rc = render_compile(in, &t, err, sizeof(err));
    if (rc)
        fail_msg("compile: %s (%s)", err, render_strerror(rc));
    return t;
}

/* Render for a contact with fields f[0..n), asserting success. */
static char *render(const struct render_tpl *t, const struct render_field *f,
                    size_t n, uint64_t delivery, char *mf)
{
    struct render_contact c = { .id = 555, .delivery = delivery,
                                .email = "rcpt@example.org", .fields = f,
                                .nfields = n };
    char *msg = NULL, mfl[RENDER_MAILFROM_MAX];
    size_t len = 0;
    int rc = render_message(t, &c, &msg, &len, mf ? mf : mfl, sizeof(mfl));
    if (rc)
        fail_msg("render: %s", render_strerror(rc));
    assert_int_equal(strlen(msg), len);
    return msg;
}

/* The wire rules: CRLF only, lines <= 998 octets, 7-bit, no NUL. */
static void check_wire(const char *m)
{
    size_t line = 0;
    for (const char *p = m; *p; p++) {
        unsigned char c = (unsigned char)*p;
        assert_true(c < 0x80);
        if (c == '\r') {
            assert_int_equal(p[1], '\n');
            p++;
            line = 0;
            continue;
        }
        assert_int_not_equal(c, '\n');   /* a bare LF */
        assert_true(++line <= 998);
    }
    size_t n = strlen(m);
    assert_true(n >= 2 && m[n - 2] == '\r' && m[n - 1] == '\n');
}

/* Length of the header block (up to and with the empty line). */
static size_t head_len(const char *m)
{
    const char *e = strstr(m, "\r\n\r\n");
    assert_non_null(e);
    return (size_t)(e - m) + 4;
}

/* How many header fields named name there are; the first one's value,
 * unfolded (CRLF before blanks removed), goes into out. */
static int header(const char *m, const char *name, char *out, size_t cap)
{
    size_t hl = head_len(m), nl = strlen(name);
    int count = 0;
    for (const char *p = m; p < m + hl - 2;) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            if (count++ == 0 && out) {
                size_t o = 0;
                const char *q = p + nl + 1;
                while (*q == ' ')
                    q++;
                for (; q < m + hl - 2; q++) {
                    if (q[0] == '\r' && q[1] == '\n') {
                        if (q[2] != ' ' && q[2] != '\t')
                            break;
                        q++;
                        continue;
                    }
                    if (o + 1 < cap)
                        out[o++] = *q;
                }
                out[o] = '\0';
            }
        }
        p = eol + 2;
    }
    return count;
}

/* Value of a hex digit, or -1. */
static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decode quoted-printable s[0..n) into out (NUL-terminated). */
static size_t qp_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=' && i + 2 < n && hexv(s[i + 1]) >= 0 &&
                   hexv(s[i + 2]) >= 0) {
            out[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            assert_int_not_equal(s[i], '=');
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

/* The boundary named in Content-Type. */
static void boundary(const char *m, char *b, size_t cap)
{
    char ct[512];
    assert_int_equal(header(m, "Content-Type", ct, sizeof(ct)), 1);
    const char *p = strstr(ct, "boundary=\"");
    assert_non_null(p);
    p += 10;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    assert_true((size_t)(e - p) < cap);
    memcpy(b, p, (size_t)(e - p));
    b[e - p] = '\0';
}

/* The decoded body of the part of type type ("text/plain", "text/html");
 * also checks the delimiter lines: exactly two parts and a close. */
static void part(const char *m, const char *type, char *out, size_t cap)
{
    char b[128], delim[140];
    boundary(m, b, sizeof(b));
    snprintf(delim, sizeof(delim), "\r\n--%s", b);
    size_t dl = strlen(delim);
    const char *p = m, *starts[4];
    int nd = 0;
    while ((p = strstr(p, delim)) != NULL) {
        assert_true(nd < 3);
        starts[nd++] = p;
        p += dl;
    }
    assert_int_equal(nd, 3);
    assert_memory_equal(starts[2] + dl, "--\r\n", 4);
    for (int i = 0; i < 2; i++) {
        const char *h = starts[i] + dl + 2, *body = strstr(h, "\r\n\r\n");
        assert_non_null(body);
        char want[64];
        snprintf(want, sizeof(want), "Content-Type: %s; charset=utf-8", type);
        if (strncmp(h, want, strlen(want)) != 0)
            continue;
        assert_non_null(strstr(h, "Content-Transfer-Encoding: quoted-printable"));
        body += 4;
        /* the part's encoded text: no line over 76, no blank at the end */
        for (const char *l = body; l < starts[i + 1];) {
            const char *e = strstr(l, "\r\n");
            assert_true(e - l <= 76);
            if (e > l)
                assert_true(e[-1] != ' ' && e[-1] != '\t');
            /* no line an mbox hop rewrites or a reader takes for a
             * boundary (dkim_qp_put()'s guard) */
            assert_false(e - l >= 5 && !memcmp(l, "From ", 5));
            assert_false(e > l && l[0] == '-');
            if (e >= starts[i + 1])
                break;
            l = e + 2;
        }
        qp_decode(body, (size_t)(starts[i + 1] - body), out, cap);
        return;
    }
    fail_msg("no %s part", type);
}

/* Decode the RFC 2047 words of an unfolded header value; checks each
 * word is at most 75 characters. */
static void ew_decode(const char *v, char *out, size_t cap)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    int prev_word = 0;
    while (*v && o + 8 < cap) {
        if (strncasecmp(v, "=?utf-8?", 8) == 0) {
            const char *e = strstr(v + 10, "?=");
            assert_non_null(e);
            assert_true(e + 2 - v <= 75);
            char enc = (char)(v[8] | 0x20);
            const char *s = v + 10;
            if (enc == 'q') {
                for (; s < e; s++) {
                    if (*s == '_') {
                        out[o++] = ' ';
                    } else if (*s == '=') {
                        out[o++] = (char)(hexv(s[1]) * 16 + hexv(s[2]));
                        s += 2;
                    } else {
                        out[o++] = *s;
                    }
                }
            } else {
                unsigned acc = 0, bits = 0;
                for (; s < e && *s != '='; s++) {
                    acc = acc << 6 | (unsigned)(strchr(b64, *s) - b64);
                    bits += 6;
                    if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)(acc >> bits);
                    }
                }
            }
            v = e + 2;
            prev_word = 1;
            continue;
        }
        if (*v == ' ' && prev_word && strncasecmp(v + 1, "=?utf-8?", 8) == 0) {
            v++;    /* blanks between encoded words are not text */
            continue;
        }
        prev_word = 0;
        out[o++] = *v++;
    }
    out[o] = '\0';
}

/* The decoded Subject of m (exactly one Subject field). */
static void subject(const char *m, char *out, size_t cap)
{
    char raw[64 * 1024];
    assert_int_equal(header(m, "Subject", raw, sizeof(raw)), 1);
    ew_decode(raw, out, cap);
}

/* Every header line <= 78 characters, and names only fields we write. */
static void check_head(const char *m)
{
    static const char *known[] = {
        "Date:", "From:", "Reply-To:", "To:", "Subject:", "Message-ID:",
        "List-Unsubscribe:", "List-Unsubscribe-Post:", "Feedback-ID:",
        "MIME-Version:", "Content-Type:", NULL
    };
    size_t hl = head_len(m);
    for (const char *p = m; p < m + hl - 2;) {
        const char *e = strstr(p, "\r\n");
        assert_true(e - p <= 998);
        if (*p != ' ') {
            int ok = 0;
            for (int i = 0; known[i]; i++)
                ok |= strncmp(p, known[i], strlen(known[i])) == 0;
            if (!ok)
                fail_msg("unexpected header line: %.60s", p);
        }
        p = e + 2;
    }
}

/* ---- tests ---- */

static void test_merge_fields(void **state)
{
    (void)state;
    struct render_input in = input(
        "Hi {{ first_name | there }}, {{City}}!{{nope}}",
        "<p>{{FIRST_NAME|friend}} / {{last.name-x}} / {{missing}} / "
        "{{ email }}</p>",
        "Hello {{first_name|there}} {{last.name-x|?}}{{nope}}.");
    struct render_tpl *t = compile(&in);
    char s[4096], b[CAP];

    struct render_field f1[] = { { "First_Name", "Zoë", 0 }, { "city", "Kraków", 0 },
                                 { "LAST.NAME-X", "K", 0 } };
    char *m = render(t, f1, 3, 1, NULL);
    check_wire(m);
    check_head(m);
    subject(m, s, sizeof(s));
    assert_string_equal(s, "Hi Zoë, Kraków!");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "Hello Zoë K.");
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<p>Zoë / K /  / rcpt@example.org</p>");
    free(m);

    /* absent and empty fields take the default, or render as nothing */
    struct render_field f2[] = { { "first_name", "", 0 } };
    m = render(t, f2, 1, 2, NULL);
    subject(m, s, sizeof(s));
    assert_string_equal(s, "Hi there, !");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "Hello there ?.");
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<p>friend /  /  / rcpt@example.org</p>");
    free(m);

    /* the first of two fields with the same name (any case) wins */
    struct render_field f3[] = { { "FIRST_NAME", "A", 0 }, { "first_name", "B", 0 } };
    m = render(t, f3, 2, 3, NULL);
    subject(m, s, sizeof(s));
    assert_string_equal(s, "Hi A, !");
    free(m);
    render_free(t);
}

/* Render a value into subject, html and text, and check no header can
 * come of it.  Returns the message. */
static char *inject(const struct render_tpl *t, const char *value)
{
    struct render_field f[] = { { "v", value, 0 } };
    char *m = render(t, f, 1, 11, NULL);
    check_wire(m);
    check_head(m);
    assert_int_equal(header(m, "Subject", NULL, 0), 1);
    assert_int_equal(header(m, "To", NULL, 0), 1);
    assert_int_equal(header(m, "From", NULL, 0), 1);
    assert_int_equal(header(m, "Bcc", NULL, 0), 0);
    return m;
}

static void test_header_injection(void **state)
{
    (void)state;
    struct render_input in = input("News {{v}} end", "<p>{{v}}</p>",
                                   "T:{{v}}:T");
    struct render_tpl *t = compile(&in);
    static const char *corpus[] = {
        "\r\nBcc: x@evil.example",
        "\nSubject: x",
        "\rSubject: y",
        "a\r\n\r\nbody-smuggle",
        "%0d%0aBcc: x@evil.example",
        "x\xe2\x80\xa8" "Bcc: y\xe2\x80\xa9z",      /* U+2028, U+2029 */
        "x\xc2\x85" "Bcc: nel",                       /* U+0085 */
        "tab\there\vvt\ffeed\x1b[31mesc",
        "bad utf8 \xff\xfe\xc3 end",
        "=?utf-8?q?=0D=0ABcc:_x@evil?=",
    };
    static const char *want[] = {
        "News Bcc: x@evil.example end",
        "News Subject: x end",
        "News Subject: y end",
        "News a body-smuggle end",
        "News %0d%0aBcc: x@evil.example end",
        "News x Bcc: y z end",
        "News x Bcc: nel end",
        "News tab here vt feed [31mesc end",
        "News bad utf8 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end end",
        "News =?utf-8?q?=0D=0ABcc:_x@evil?= end",
    };
    char s[8192], b[CAP];
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        char *m = inject(t, corpus[i]);
        subject(m, s, sizeof(s));
        assert_string_equal(s, want[i]);
        free(m);
    }
    /* text part: as-is but line ends made CRLF (decoded: CRLF) */
    char *m = inject(t, "a\rb\nc\r\nd");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "T:a\r\nb\r\nc\r\nd:T");
    free(m);

    /* a value with NUL bytes (given by length): they are dropped */
    struct render_field fn[] = { { "v", "a\0b\0", 4 } };
    m = render(t, fn, 1, 12, NULL);
    check_wire(m);
    subject(m, s, sizeof(s));
    assert_string_equal(s, "News ab end");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "T:ab:T");
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<p>ab</p>");
    free(m);

    /* 100 KB values, with and without blanks and line breaks */
    char *big = malloc(100 * 1024 + 1);
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < 100 * 1024; i++)
            big[i] = kind == 0 ? 'x' : kind == 1 ? (i % 7 ? 'y' : ' ')
                                     : (i % 50 ? 'z' : '\n');
        big[100 * 1024] = '\0';
        m = inject(t, big);
        subject(m, s, sizeof(s));
        assert_true(strlen(s) <= RENDER_SUBJECT_MAX);
        assert_memory_equal(s, "News ", 5);
        part(m, "text/plain", b, sizeof(b));
        assert_true(strlen(b) >= 100 * 1024);
        free(m);
    }
    free(big);
    render_free(t);
}

static void test_html_escaping(void **state)
{
    (void)state;
    struct render_input in = input("{{v}}", "<a title=\"{{v}}\">{{v|<&>}}</a>",
                                   "{{v}}");
    struct render_tpl *t = compile(&in);
    char s[1024], b[CAP];
    struct render_field f[] = { { "v", "<script>alert('x')&\"</script>", 0 } };
    char *m = render(t, f, 1, 1, NULL);
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<a title=\"&lt;script&gt;alert(&#39;x&#39;)&amp;"
                           "&quot;&lt;/script&gt;\">&lt;script&gt;alert(&#39;"
                           "x&#39;)&amp;&quot;&lt;/script&gt;</a>");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "<script>alert('x')&\"</script>");
    subject(m, s, sizeof(s));
    assert_string_equal(s, "<script>alert('x')&\"</script>");
    free(m);
    /* a default is escaped like a value */
    m = render(t, NULL, 0, 2, NULL);
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<a title=\"\">&lt;&amp;&gt;</a>");
    free(m);
    render_free(t);
}

static void test_rfc2047_subject(void **state)
{
    (void)state;
    struct render_input in = input("{{v}}", "x", "x");
    struct render_tpl *t = compile(&in);
    static const char *corpus[] = {
        "Grüße aus Köln",
        "日本語のお知らせ、今週のおすすめ商品はこちらです。ぜひご覧ください。"
        "日本語のお知らせ、今週のおすすめ商品はこちらです。",
        "Emoji 🎉🎉🎉 party and a rather long ASCII tail that keeps going on "
        "and on past the fold point",
        "plain ascii subject that is long enough to need folding at a space "
        "somewhere in the middle of it, twice over, to be sure of it",
        "café_=?x?= 100% sûr",
    };
    char s[8192], raw[8192];
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        struct render_field f[] = { { "v", corpus[i], 0 } };
        char *m = render(t, f, 1, 1, NULL);
        check_wire(m);
        /* every Subject line within 78 characters */
        const char *p = strstr(m, "\r\nSubject:") + 2;
        do {
            const char *e = strstr(p, "\r\n");
            assert_true(e - p <= 78);
            p = e + 2;
        } while (*p == ' ');
        header(m, "Subject", raw, sizeof(raw));
        if (i != 3)
            assert_memory_equal(raw, "=?utf-8?", 8);
        subject(m, s, sizeof(s));
        assert_string_equal(s, corpus[i]);
        free(m);
    }
    /* a UTF-8 display name is encoded, a plain one is not */
    in.from = "Zoë's Café <news@mail.example.com>";
    render_free(t);
    t = compile(&in);
    char *m = render(t, NULL, 0, 1, NULL);
    header(m, "From", raw, sizeof(raw));
    assert_memory_equal(raw, "=?utf-8?", 8);
    assert_non_null(strstr(raw, " <news@mail.example.com>"));
    ew_decode(raw, s, sizeof(s));
    assert_string_equal(s, "Zoë's Café <news@mail.example.com>");
    free(m);
    render_free(t);
}

static void test_header_footer(void **state)
{
    (void)state;
    struct render_input in = input(
        "s", "<html><head><title>T</title></head><BODY class=\"{{c}}\">"
             "<p>Body</p></body></html>",
        "Body text\n");
    in.header_html = "<div>HH {{first|you}}</div>";
    in.footer_html = "<div><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></div>";
    in.header_text = "HT {{first|you}}";
    in.footer_text = "FT {{unsubscribe_url}}";
    struct render_tpl *t = compile(&in);
    char b[CAP], lu[1024];
    char *m = render(t, NULL, 0, 1, NULL);
    header(m, "List-Unsubscribe", lu, sizeof(lu));
    const char *https = strstr(lu, "<https://");
    assert_non_null(https);
    char url[256];
    snprintf(url, sizeof(url), "%.*s", (int)(strchr(https, '>') - https - 1),
             https + 1);
    part(m, "text/html", b, sizeof(b));
    char want[2048];
    snprintf(want, sizeof(want),
             "<html><head><title>T</title></head><BODY class=\"\"><div>HH you"
             "</div><p>Body</p><div><a href=\"%s\">Unsubscribe</a></div>"
             "</body></html>", url);
    assert_string_equal(b, want);
    part(m, "text/plain", b, sizeof(b));
    snprintf(want, sizeof(want), "HT you\r\nBody text\r\nFT %s", url);
    assert_string_equal(b, want);
    free(m);
    render_free(t);

    /* no body tag: start and end; text variants derived from the html */
    in.html = "<p>Only</p>";
    in.text = NULL;
    in.header_text = in.footer_text = NULL;
    t = compile(&in);
    m = render(t, NULL, 0, 1, NULL);
    part(m, "text/html", b, sizeof(b));
    snprintf(want, sizeof(want), "<div>HH you</div><p>Only</p><div><a href=\""
             "%s\">Unsubscribe</a></div>", url);
    assert_string_equal(b, want);
    part(m, "text/plain", b, sizeof(b));
    snprintf(want, sizeof(want), "HH you\r\nOnly\r\nUnsubscribe (%s)", url);
    assert_string_equal(b, want);
    free(m);
    render_free(t);
}

/* Decode lowercase base32 (test's own) into out; returns bytes. */
static size_t b32_dec(const char *s, size_t n, unsigned char *out)
{
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a = "abcdefghijklmnopqrstuvwxyz234567";
        const char *p = strchr(a, s[i] | 0x20);
        assert_non_null(p);
        acc = acc << 5 | (unsigned)(p - a);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

static void test_fixed_headers(void **state)
{
    (void)state;
    struct render_input in = input("s", "h", "t");
    in.reply_to = "Help Desk <help@example.com>";
    struct render_tpl *t = compile(&in);
    char v[1024], ids[64][128];
    for (int i = 0; i < 64; i++) {
        char *m = render(t, NULL, 0, (uint64_t)i, NULL);
        check_head(m);
        static const char *once[] = {
            "Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
            "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post",
            "Feedback-ID", "Content-Type"
        };
        for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++)
            assert_int_equal(header(m, once[k], NULL, 0), 1);
        header(m, "Message-ID", v, sizeof(v));
        char want[64];
        snprintf(want, sizeof(want), "<7001.%d.", i);
        assert_memory_equal(v, want, strlen(want));
        assert_non_null(strstr(v, "@mail.example.com>"));
        assert_true(strlen(v) < sizeof(ids[i]));
        memcpy(ids[i], v, strlen(v) + 1);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
        header(m, "List-Unsubscribe-Post", v, sizeof(v));
        assert_string_equal(v, "List-Unsubscribe=One-Click");
        header(m, "Feedback-ID", v, sizeof(v));
        assert_string_equal(v, "7001:42:9:acme");
        header(m, "To", v, sizeof(v));
        assert_string_equal(v, "rcpt@example.org");
        header(m, "Reply-To", v, sizeof(v));
        assert_string_equal(v, "Help Desk <help@example.com>");
        header(m, "MIME-Version", v, sizeof(v));
        assert_string_equal(v, "1.0");
        header(m, "Date", v, sizeof(v));
        assert_int_equal(strlen(v), strlen("Thu, 01 Jan 2026 00:00:00 +0000"));
        assert_string_equal(v + 25, " +0000");
        header(m, "List-Unsubscribe", v, sizeof(v));
        assert_memory_equal(v, "<mailto:unsub-", 14);
        assert_non_null(strstr(v, "@mail.example.com>, <https://unsub.example.com/u/"));
        free(m);
    }
    render_free(t);
}

static void test_verp_tokens(void **state)
{
    (void)state;
    struct render_input in = input("s", "h", "t");
    struct render_tpl *t = compile(&in);
    char mf[RENDER_MAILFROM_MAX];
    char *m = render(t, NULL, 0, 123456789012345ull, mf);
    free(m);
    /* b-TOKEN@bounce domain, local part <= 64 */
    assert_memory_equal(mf, "b-", 2);
    const char *at = strchr(mf, '@');
    assert_int_equal(at - mf, 2 + RENDER_VERP_TOKEN_LEN);
    assert_true(at - mf <= 64);
    assert_string_equal(at + 1, "bounce.example.com");
    uint64_t d = 0, c = 0;
    assert_int_equal(render_verp_decode(mf, secret, SECRET_LEN, &d, &c), 0);
    assert_true(d == 123456789012345ull && c == 7001);

    /* the documented format, checked with OpenSSL's own HMAC */
    unsigned char raw[32], data[64], md[32];
    unsigned mdl;
    assert_int_equal(b32_dec(mf + 2, RENDER_VERP_TOKEN_LEN, raw), 27);
    memcpy(data, "sluice-verp", 11);
    memcpy(data + 11, raw, 17);
    HMAC(EVP_sha256(), secret, SECRET_LEN, data, 28, md, &mdl);
    assert_int_equal(raw[0], 1);
    assert_memory_equal(raw + 17, md, 10);

    /* case is ignored, <> and a bare local part are accepted */
    char up[RENDER_MAILFROM_MAX + 2];
    for (size_t i = 0; mf[i]; i++)
        up[i] = (char)(mf[i] >= 'a' && mf[i] <= 'z' ? mf[i] - 32 : mf[i]);
    up[strlen(mf)] = '\0';
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c), 0);
    snprintf(up, sizeof(up), "<%s>", mf);
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c), 0);

    /* every one-character change (version, ids, padding bits, MAC) is a
     * forgery: the feedback ingest quarantines on it */
    for (size_t i = 2; i < 2 + RENDER_VERP_TOKEN_LEN; i++) {
        char x[RENDER_MAILFROM_MAX];
        memcpy(x, mf, sizeof(x));
        x[i] = x[i] == 'a' ? 'b' : 'a';
        int rc = render_verp_decode(x, secret, SECRET_LEN, &d, &c);
        assert_int_equal(rc, RENDER_E_FORGED);
    }
    /* a token made with another secret, garbage, truncation, wrong kind */
    static const unsigned char other[] = "another-secret-0123456789abcdef";
    char tok[64];
    assert_int_equal(render_verp_token(other, sizeof(other) - 1, 1, 7001,
                                       tok, sizeof(tok)), 0);
    snprintf(up, sizeof(up), "b-%s@bounce.example.com", tok);
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c),
                     RENDER_E_FORGED);
    assert_int_equal(render_verp_decode("b-zzzz@x", secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    assert_int_equal(render_verp_decode("bounce@x", secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    assert_int_equal(render_verp_decode("", secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    snprintf(up, sizeof(up), "%.*s@x", (int)(at - mf - 1), mf);
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    snprintf(up, sizeof(up), "b-1%s", mf + 3);
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    /* the same ids as an unsubscribe token are not a VERP token */
    assert_int_equal(render_unsub_token(secret, SECRET_LEN, 0, 7001, 1, tok,
                                        sizeof(tok)), 0);
    snprintf(up, sizeof(up), "b-%s@x", tok);
    assert_int_equal(render_verp_decode(up, secret, SECRET_LEN, &d, &c),
                     RENDER_E_TOKEN);
    /* a short secret is refused */
    assert_int_equal(render_verp_decode(mf, secret, 8, &d, &c), RENDER_E_ARG);

    /* preview: fixed delivery id */
    struct render_contact ct = { .id = 1, .delivery = 99,
                                 .email = "p@example.org" };
    size_t len;
    assert_int_equal(render_preview(t, &ct, &m, &len, mf, sizeof(mf)), 0);
    free(m);
    assert_int_equal(render_verp_decode(mf, secret, SECRET_LEN, &d, &c), 0);
    assert_true(d == RENDER_PREVIEW_DELIVERY && c == 7001);
    render_free(t);
}

static void test_unsub_tokens(void **state)
{
    (void)state;
    struct render_input in = input("s", "h", "t");
    struct render_tpl *t = compile(&in);
    char v[1024];
    char *m = render(t, NULL, 0, 5, NULL);
    header(m, "List-Unsubscribe", v, sizeof(v));
    free(m);
    /* <mailto:unsub-TOKEN@DOMAIN>, <https://HOST/u/TOKEN>: same token */
    char *mt = v + strlen("<mailto:");
    char *mat = strchr(mt, '@');
    *mat = '\0';
    assert_int_equal(strlen(mt), 6 + RENDER_UNSUB_TOKEN_LEN);
    assert_true(strlen(mt) <= 64);
    char *u = strstr(mat + 1, "/u/") + 3;
    *strchr(u, '>') = '\0';
    assert_string_equal(u, mt + 6);
    uint32_t a = 0;
    uint64_t c = 0, k = 0;
    assert_int_equal(render_unsub_decode(mt, secret, SECRET_LEN, &a, &c, &k), 0);
    assert_true(a == 42 && c == 7001 && k == 555);
    assert_int_equal(render_unsub_decode(u, secret, SECRET_LEN, &a, &c, &k), 0);
    char full[1100];
    snprintf(full, sizeof(full), "%s@mail.example.com", mt);
    assert_int_equal(render_unsub_decode(full, secret, SECRET_LEN, &a, &c, &k), 0);

    /* round trip over extremes */
    char tok[64];
    assert_int_equal(render_unsub_token(secret, SECRET_LEN, UINT32_MAX,
                                        UINT64_MAX, 0, tok, sizeof(tok)), 0);
    assert_int_equal(strlen(tok), RENDER_UNSUB_TOKEN_LEN);
    assert_int_equal(render_unsub_decode(tok, secret, SECRET_LEN, &a, &c, &k), 0);
    assert_true(a == UINT32_MAX && c == UINT64_MAX && k == 0);
    assert_int_equal(render_unsub_token(secret, SECRET_LEN, 1, 2, 3, tok, 50),
                     -ENOSPC);

    /* forged: changed characters, another secret, a VERP token */
    for (size_t i = 0; i < RENDER_UNSUB_TOKEN_LEN; i++) {
        char x[64];
        memcpy(x, u, RENDER_UNSUB_TOKEN_LEN + 1);
        x[i] = x[i] == '2' ? '3' : '2';
        int rc = render_unsub_decode(x, secret, SECRET_LEN, &a, &c, &k);
        assert_int_equal(rc, RENDER_E_FORGED);
    }
    static const unsigned char other[] = "another-secret-0123456789abcdef";
    assert_int_equal(render_unsub_decode(u, other, sizeof(other) - 1, &a, &c,
                                         &k), RENDER_E_FORGED);
    assert_int_equal(render_unsub_decode("hello", secret, SECRET_LEN, &a, &c,
                                         &k), RENDER_E_TOKEN);
    assert_int_equal(render_unsub_decode(NULL, secret, SECRET_LEN, &a, &c, &k),
                     RENDER_E_TOKEN);
    render_free(t);
}

/* Message-IDs: <CAMPAIGN.DELIVERY.NONCE.MAC@from-domain>, the MAC an
 * HMAC only the secret's holder makes; render_msgid_decode() checks it. */
static void test_msgid(void **state)
{
    (void)state;
    struct render_input in = input("s", "h", "t");
    struct render_tpl *t = compile(&in);
    char v[1024], x[1100], left[RENDER_MSGID_LEFT_MAX + 1];
    char *m = render(t, NULL, 0, 123456789012345ull, NULL);
    header(m, "Message-ID", v, sizeof(v));
    free(m);
    const char *pre = "<7001.123456789012345.";
    size_t pl = strlen(pre);
    assert_memory_equal(v, pre, pl);
    assert_int_equal(v[pl + 13], '.');
    assert_int_equal(v[pl + 14 + RENDER_MSGID_MAC_LEN], '@');
    assert_string_equal(v + pl + 15 + RENDER_MSGID_MAC_LEN,
                        "mail.example.com>");
    uint64_t c = 0, d = 0;
    assert_int_equal(render_msgid_decode(v, secret, SECRET_LEN, &c, &d), 0);
    assert_true(c == 7001 && d == 123456789012345ull);

    /* the documented MAC, checked with OpenSSL's own HMAC */
    unsigned char nonce[8], mac[10], data[64], md[32];
    unsigned mdl;
    assert_int_equal(b32_dec(v + pl, 13, nonce), 8);
    assert_int_equal(b32_dec(v + pl + 14, RENDER_MSGID_MAC_LEN, mac), 10);
    memcpy(data, "sluice-msgid\x01", 13);
    for (int i = 0; i < 8; i++) {
        data[13 + i] = (unsigned char)(7001ull >> (56 - 8 * i));
        data[21 + i] = (unsigned char)(123456789012345ull >> (56 - 8 * i));
    }
    memcpy(data + 29, nonce, 8);
    HMAC(EVP_sha256(), secret, SECRET_LEN, data, 37, md, &mdl);
    assert_memory_equal(mac, md, 10);
    /* render_msgid() makes the same left part from the same nonce */
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n = n << 8 | nonce[i];
    assert_int_equal(render_msgid(secret, SECRET_LEN, 7001,
                                  123456789012345ull, n, left, sizeof(left)),
                     0);
    assert_memory_equal(v + 1, left, strlen(left));
    assert_int_equal(v[1 + strlen(left)], '@');
    assert_int_equal(render_msgid(secret, SECRET_LEN, 1, 2, 3, left, 40),
                     -ENOSPC);

    /* without <>, upper case: accepted */
    snprintf(x, sizeof(x), "%.*s", (int)strlen(v) - 2, v + 1);
    assert_int_equal(render_msgid_decode(x, secret, SECRET_LEN, &c, &d), 0);
    for (size_t i = 0; x[i] && x[i] != '@'; i++)
        if (x[i] >= 'a' && x[i] <= 'z')
            x[i] = (char)(x[i] - 32);
    assert_int_equal(render_msgid_decode(x, secret, SECRET_LEN, &c, &d), 0);

    /* every one-character change of ids, nonce or MAC is a forgery */
    size_t at = (size_t)(strchr(v, '@') - v);
    for (size_t i = 1; i < at; i++) {
        if (v[i] == '.')
            continue;
        memcpy(x, v, strlen(v) + 1);
        if (i < pl)                           /* a digit of the ids */
            x[i] = v[i] == '9' ? '1' : (char)(v[i] + 1);
        else                                  /* base32 */
            x[i] = v[i] == 'a' ? 'b' : 'a';
        int rc = render_msgid_decode(x, secret, SECRET_LEN, &c, &d);
        if (rc != RENDER_E_FORGED)
            fail_msg("\"%s\": %d, not a forgery", x, rc);
    }
    memcpy(x, v, strlen(v) + 1);
    x[1] = '8';                               /* 8001: another campaign */
    assert_int_equal(render_msgid_decode(x, secret, SECRET_LEN, &c, &d),
                     RENDER_E_FORGED);
    /* another secret; the form sluice used before the MAC; not canonical */
    static const unsigned char other[] = "another-secret-0123456789abcdef";
    assert_int_equal(render_msgid_decode(v, other, sizeof(other) - 1, &c, &d),
                     RENDER_E_FORGED);
    static const char *const not_ours[] = {
        "<7001.5.abcdefghijklm@mail.example.com>",    /* before the MAC */
        "7001.5@x", "hello@x", "", "<>", "<7001.5.a.b@x>",
        "<07001.123456789012345.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@x>",
        "<7001.123456789012345.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@>",
        "<7001.123456789012345.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@x",
        "<7001.123456789012345.aaaaaaaaaaaaa.aaaaaaaaaaaaaaa1@x>",
        "<18446744073709551616.1.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@x>",
        "<+1.1.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@x>",
    };
    for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++)
        if (render_msgid_decode(not_ours[i], secret, SECRET_LEN, &c, &d) !=
            RENDER_E_TOKEN)
            fail_msg("\"%s\" taken for a sluice Message-ID", not_ours[i]);
    assert_int_equal(render_msgid_decode(
        "<18446744073709551615.0.aaaaaaaaaaaaa.aaaaaaaaaaaaaaaa@x>", secret,
        SECRET_LEN, &c, &d), RENDER_E_FORGED);
    assert_int_equal(render_msgid_decode(            /* padding bits set */
        "<7001.123456789012345.aaaaaaaaaaaab.aaaaaaaaaaaaaaaa@x>", secret,
        SECRET_LEN, &c, &d), RENDER_E_FORGED);
    assert_int_equal(render_msgid_decode(NULL, secret, SECRET_LEN, &c, &d),
                     RENDER_E_TOKEN);
    assert_int_equal(render_msgid_decode(v, secret, 8, &c, &d), RENDER_E_ARG);

    /* every render differs (retries, test sends), all verify */
    m = render(t, NULL, 0, 123456789012345ull, NULL);
    header(m, "Message-ID", x, sizeof(x));
    free(m);
    assert_string_not_equal(x, v);
    assert_int_equal(render_msgid_decode(x, secret, SECRET_LEN, &c, &d), 0);
    render_free(t);
}

/* Compile and expect failure rc with message containing what. */
static void compile_fails(const struct render_input *in, int rc,
                          const char *what)
{
    char err[256];
    struct render_tpl *t = (struct render_tpl *)1;
    assert_int_equal(render_compile(in, &t, err, sizeof(err)), rc);
    assert_null(t);
    if (strstr(err, what) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void test_malformed(void **state)
{
    (void)state;
    struct render_input in = input("ok", "<p>\n  {{first_name</p>", "t");
    compile_fails(&in, RENDER_E_SYNTAX, "html: line 2, column 3: unterminated");
    in = input("Hi {{}}", "h", "t");
    compile_fails(&in, RENDER_E_SYNTAX, "subject: line 1, column 4: empty");
    in = input("s", "h", "a {{first name}}");
    compile_fails(&in, RENDER_E_SYNTAX, "text: line 1, column 3: bad character");
    in = input("s", "h", "{{ <b> }}");
    compile_fails(&in, RENDER_E_SYNTAX, "bad field name");
    in = input("s", "h", "t");
    in.footer_html = "x {{y";
    compile_fails(&in, RENDER_E_SYNTAX, "footer_html: line 1, column 3");
    in = input("s", "h", "t");
    in.from = "Acme <news@>";
    compile_fails(&in, RENDER_E_ARG, "From");
    in.from = "Acme\r\nBcc: x <news@example.com>";
    compile_fails(&in, RENDER_E_ARG, "From");
    in.from = "news@exa mple.com";
    compile_fails(&in, RENDER_E_ARG, "From");
    /* nor behind a backslash in a quoted name (fuzz_addr) */
    in.from = "\"Acme\\\r\\\nBcc: x\" <news@example.com>";
    compile_fails(&in, RENDER_E_ARG, "From");
    in = input("s", "h", "t");
    in.secret_len = 8;
    compile_fails(&in, RENDER_E_ARG, "secret");
    in = input("s", "h", "t");
    in.unsub_host = "unsub.example.com/evil\r\n";
    compile_fails(&in, RENDER_E_ARG, "unsub_host");
    in = input("s", "h", "t");
    in.feedback_sender = "a:b";
    compile_fails(&in, RENDER_E_ARG, "feedback_sender");
    in = input("s", "h", "t");
    in.bounce_domain = "-bad-.example";
    compile_fails(&in, RENDER_E_ARG, "bounce_domain");
    in = input("s", NULL, "t");
    compile_fails(&in, RENDER_E_ARG, "html");

    /* {{{{ is a literal {{; }} alone is text; a lone { is text */
    in = input("a {{{{b}} {c}", "<p>{{{{x}}</p>", "{{{{ {x} }}");
    struct render_tpl *t = compile(&in);
    char *m = render(t, NULL, 0, 1, NULL);
    char s[256], b[1024];
    subject(m, s, sizeof(s));
    assert_string_equal(s, "a {{b}} {c}");
    part(m, "text/html", b, sizeof(b));
    assert_string_equal(b, "<p>{{x}}</p>");
    part(m, "text/plain", b, sizeof(b));
    assert_string_equal(b, "{{ {x} }}");
    free(m);

    /* a bad recipient address */
    struct render_contact c = { .email = "a@b.example\r\nBcc: x@y" };
    size_t len;
    char mf[RENDER_MAILFROM_MAX];
    assert_int_equal(render_message(t, &c, &m, &len, mf, sizeof(mf)),
                     RENDER_E_ADDR);
    assert_null(m);
    c.email = "no-at-sign";
    assert_int_equal(render_message(t, &c, &m, &len, mf, sizeof(mf)),
                     RENDER_E_ADDR);
    c.email = "ok@example.org";
    assert_int_equal(render_message(t, &c, &m, &len, mf, 10), -ENOSPC);
    render_free(t);
    render_free(NULL);

    /* an empty subject is an empty Subject field */
    in = input("{{nothing}}", "h", "t");
    t = compile(&in);
    m = render(t, NULL, 0, 1, NULL);
    check_wire(m);
    assert_non_null(strstr(m, "\r\nSubject:\r\n"));
    free(m);
    render_free(t);
}

static void test_size_cap(void **state)
{
    (void)state;
    /* one 5 MB value used five times: over RENDER_MSG_MAX once encoded */
    struct render_input in = input("s", "{{v}}{{v}}{{v}}", "{{v}}{{v}}");
    struct render_tpl *t = compile(&in);
    size_t n = 5u << 20;
    char *v = malloc(n + 1);
    memset(v, '=', n);      /* '=' takes three characters in QP */
    v[n] = '\0';
    struct render_field f[] = { { "v", v, n } };
    struct render_contact c = { .id = 1, .delivery = 1,
                                .email = "big@example.org", .fields = f,
                                .nfields = 1 };
    char *m = (char *)1, mf[RENDER_MAILFROM_MAX];
    size_t len;
    assert_int_equal(render_message(t, &c, &m, &len, mf, sizeof(mf)),
                     RENDER_E_TOOBIG);
    assert_null(m);
    free(v);
    render_free(t);

    /* a template part over its cap */
    char *big = malloc(RENDER_PART_MAX + 2);
    memset(big, 'x', RENDER_PART_MAX + 1);
    big[RENDER_PART_MAX + 1] = '\0';
    in = input("s", big, NULL);
    compile_fails(&in, RENDER_E_TOOBIG, "html: longer than");
    free(big);
}

static void test_boundary(void **state)
{
    (void)state;
    struct render_input in = input("s", "<p>{{v}}</p>", "{{v}}");
    struct render_tpl *t = compile(&in);
    char b[CAP], bnd[128];
    /* learn a boundary, then put it (and look-alikes) into the values */
    char *m = render(t, NULL, 0, 77, NULL);
    boundary(m, bnd, sizeof(bnd));
    free(m);
    char v[512];
    snprintf(v, sizeof(v), "--%s\r\n--%s--\r\n=_ --=_ %s", bnd, bnd, bnd);
    struct render_field f[] = { { "v", v, 0 } };
    m = render(t, f, 1, 77, NULL);
    check_wire(m);
    /* part() demands exactly three delimiter lines */
    part(m, "text/plain", b, sizeof(b));
    assert_non_null(strstr(b, bnd));
    part(m, "text/html", b, sizeof(b));
    assert_null(strstr(m, "=_ --"));       /* '=' is always encoded */
    free(m);
    render_free(t);
}

static void test_derived_text(void **state)
{
    (void)state;
    struct render_input in = input(
        "s",
        "<!DOCTYPE html><html><head><title>Title</title><style>p{x:1}"
        "</style></head><body>\n<h1>Hello&nbsp;{{name}}</h1>\n"
        "<p>Tom &amp; Jerry &lt;3   say\n   &quot;hi&quot; &#233;&#x1F600;"
        " &bogus; a&b</p><script>if (a<b) x();</script>"
        "<p>Visit <a href=\"https://ex.example/?a=1&amp;b={{code}}\">our "
        "shop</a> or <a href='https://x.example/'>https://x.example/</a> "
        "or <a href=\"#top\">top</a>.</p><ul><li>one</li><li>two</li></ul>"
        "line<br>break<br><br>para<!-- hidden {{name}} --><p><a href=\""
        "{{unsubscribe_url}}\"> {{unsubscribe_url}} </a></p></body></html>",
        NULL);
    struct render_tpl *t = compile(&in);
    struct render_field f[] = { { "name", "Ann <A>", 0 }, { "code", "Q&A", 0 } };
    char *m = render(t, f, 2, 1, NULL);
    char b[CAP];
    part(m, "text/plain", b, sizeof(b));
    /* ends with the unsubscribe link once: text and href are one tag */
    static const char want[] =
        "Hello Ann <A>\r\n\r\nTom & Jerry <3 say \"hi\" \xc3\xa9\xf0\x9f\x98\x80"
        " &bogus; a&b\r\n\r\nVisit our shop (https://ex.example/?a=1&b=Q&A) "
        "or https://x.example/ or top.\r\n\r\n- one\r\n- two\r\n\r\n"
        "line\r\nbreak\r\n\r\npara\r\n\r\nhttps://unsub.example.com/u/";
    assert_int_equal(strlen(b), sizeof(want) - 1 + RENDER_UNSUB_TOKEN_LEN);
    assert_memory_equal(b, want, sizeof(want) - 1);
    free(m);
    render_free(t);
}

/* Lines that start "From " or '-' (after a hard or a soft break, in the
 * template or in a merged value) are written so that no encoded line
 * starts that way, and decode to the text as it was. */
static void test_qp_guard(void **state)
{
    (void)state;
    struct render_input in = input("s", "<p>{{v}}</p>",
                                   "From the team\n-- \nsig {{v}}");
    struct render_tpl *t = compile(&in);
    char v[512], b[CAP], want[1024];
    memset(v, 'x', 74);
    memcpy(v + 74, "-- cut\nFrom me\nFrost\n-", 22);
    v[96] = '\0';
    struct render_field f[] = { { "v", v, 0 } };
    char *m = render(t, f, 1, 1, NULL);
    check_wire(m);
    part(m, "text/plain", b, sizeof(b));    /* checks the line starts */
    snprintf(want, sizeof(want), "From the team\r\n-- \r\nsig %.74s-- cut"
             "\r\nFrom me\r\nFrost\r\n-", v);
    assert_string_equal(b, want);
    assert_non_null(strstr(m, "=46rom the team\r\n=2D-=20\r\n"));
    free(m);
    render_free(t);
}

static void test_qp_lines(void **state)
{
    (void)state;
    struct render_input in = input("s", "{{v}}", "{{v}}");
    struct render_tpl *t = compile(&in);
    char v[4096], b[CAP];
    /* long lines, '=' everywhere, trailing blanks before line ends */
    size_t o = 0;
    for (int i = 0; i < 300; i++)
        v[o++] = "a=b \t\xc3\xa9"[i % 7];
    memcpy(v + o, " \r\nnext \t\nlast ", 15);
    v[o + 15] = '\0';
    struct render_field f[] = { { "v", v, 0 } };
    char *m = render(t, f, 1, 1, NULL);
    check_wire(m);
    part(m, "text/plain", b, sizeof(b));   /* checks lines <= 76 */
    char want[4200];
    snprintf(want, sizeof(want), "%.*s \r\nnext \t\r\nlast ", (int)o, v);
    assert_string_equal(b, want);
    free(m);
    render_free(t);
}

struct thr {
    const struct render_tpl *t;
    int ok;
    char ids[100][96];
};

/* Render 100 messages, keeping their Message-IDs. */
static void *thr_run(void *arg)
{
    struct thr *a = arg;
    struct render_field f[] = { { "v", "threaded", 0 } };
    struct render_contact c = { .id = 3, .email = "t@example.org",
                                .fields = f, .nfields = 1 };
    a->ok = 1;
    for (int i = 0; i < 100; i++) {
        char *m, mf[RENDER_MAILFROM_MAX];
        size_t len;
        c.delivery = (uint64_t)i;
        if (render_message(a->t, &c, &m, &len, mf, sizeof(mf)) != 0) {
            a->ok = 0;
            return NULL;
        }
        const char *p = strstr(m, "Message-ID: ") + 12;
        snprintf(a->ids[i], sizeof(a->ids[i]), "%.*s",
                 (int)(strchr(p, '\r') - p), p);
        uint64_t d, cc;
        if (render_verp_decode(mf, secret, SECRET_LEN, &d, &cc) != 0 ||
            d != (uint64_t)i)
            a->ok = 0;
        free(m);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct render_input in = input("{{v}}", "<p>{{v}}</p>", NULL);
    struct render_tpl *t = compile(&in);
    static struct thr a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i].t = t;
        assert_int_equal(pthread_create(&th[i], NULL, thr_run, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(a[i].ok);
    }
    /* the same deliveries rendered by four threads: all ids differ */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++)
            for (int k = 0; k < 100; k++)
                assert_string_not_equal(a[i].ids[k], a[j].ids[k]);
    render_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_fields),
        cmocka_unit_test(test_header_injection),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_rfc2047_subject),
        cmocka_unit_test(test_header_footer),
        cmocka_unit_test(test_fixed_headers),
        cmocka_unit_test(test_verp_tokens),
        cmocka_unit_test(test_unsub_tokens),
        cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_derived_text),
        cmocka_unit_test(test_qp_lines),
        cmocka_unit_test(test_qp_guard),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
