/*
 * render_tool.c - test driver for engine/render: renders a JSON corpus,
 * decodes tokens, and times rendering.
 *
 * USAGE
 *   render_tool render CASES.json
 *       CASES.json is an array of {"input": {...render_input, "secret":
 *       HEX}, "contact": {"id", "delivery", "email", "fields": [[name,
 *       value], ...]}, "preview": bool}; prints an array of
 *       {"ok": true, "message", "mail_from"} or {"ok": false, "code",
 *       "error"} in the same order.
 *   render_tool verp-decode ADDR SECRET_HEX    prints "delivery campaign"
 *   render_tool unsub-decode TOKEN SECRET_HEX  prints "account campaign
 *                                              contact"
 *   render_tool msgid-decode MSGID SECRET_HEX  prints "campaign delivery"
 *   render_tool --bench [N [THREADS]]
 *       renders a ~5 KB message N times (default 200000) on each of
 *       THREADS threads (default 1) and prints the time per message.
 *
 * DIAGNOSTICS
 *   Exit 0 on success, 1 with the reason on stderr, 2 for bad usage.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render.h"

#define SECRET_MAX 256

/* Decode hex into out (at most cap bytes); returns the length or -1. */
static long unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return (long)(n / 2);
}

/* A string member of o, or NULL. */
static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Render one case into a result object. */
static json_t *render_case(json_t *cs)
{
    json_t *jin = json_object_get(cs, "input");
    json_t *jc = json_object_get(cs, "contact");
    unsigned char secret[SECRET_MAX];
    const char *hex = str(jin, "secret");
    long sl = hex ? unhex(hex, secret, sizeof(secret)) : -1;
    struct render_input in = {
        .campaign = (uint64_t)json_integer_value(json_object_get(jin, "campaign")),
        .account = (uint32_t)json_integer_value(json_object_get(jin, "account")),
        .list = (uint64_t)json_integer_value(json_object_get(jin, "list")),
        .from = str(jin, "from"), .reply_to = str(jin, "reply_to"),
        .subject = str(jin, "subject"), .html = str(jin, "html"),
        .text = str(jin, "text"), .header_html = str(jin, "header_html"),
        .footer_html = str(jin, "footer_html"),
        .header_text = str(jin, "header_text"),
        .footer_text = str(jin, "footer_text"),
        .unsub_host = str(jin, "unsub_host"),
        .unsub_mail_domain = str(jin, "unsub_mail_domain"),
        .bounce_domain = str(jin, "bounce_domain"),
        .feedback_sender = str(jin, "feedback_sender"),
        .secret = secret, .secret_len = sl < 0 ? 0 : (size_t)sl,
    };
    char err[256];
    struct render_tpl *t;
    int rc = render_compile(&in, &t, err, sizeof(err));
    if (rc)
        return json_pack("{s:b, s:i, s:s, s:s}", "ok", 0, "code", rc, "error",
                         err, "what", render_strerror(rc));
    json_t *jf = json_object_get(jc, "fields");
    size_t nf = json_array_size(jf);
    struct render_field *f = calloc(nf ? nf : 1, sizeof(*f));
    for (size_t i = 0; i < nf; i++) {
        f[i].name = json_string_value(json_array_get(json_array_get(jf, i), 0));
        json_t *v = json_array_get(json_array_get(jf, i), 1);
        f[i].value = json_string_value(v);
        f[i].value_len = json_string_length(v);  /* may hold NUL */
    }
    struct render_contact c = {
        .id = (uint64_t)json_integer_value(json_object_get(jc, "id")),
        .delivery = (uint64_t)json_integer_value(json_object_get(jc, "delivery")),
        .email = str(jc, "email"), .fields = f, .nfields = nf,
    };
    char *msg = NULL, mf[RENDER_MAILFROM_MAX];
    size_t len = 0;
    rc = json_is_true(json_object_get(cs, "preview"))
             ? render_preview(t, &c, &msg, &len, mf, sizeof(mf))
             : render_message(t, &c, &msg, &len, mf, sizeof(mf));
    json_t *r = rc ? json_pack("{s:b, s:i, s:s}", "ok", 0, "code", rc,
                               "error", render_strerror(rc))
                   : json_pack("{s:b, s:s%, s:s}", "ok", 1, "message", msg,
                               len, "mail_from", mf);
    free(msg);
    free(f);
    render_free(t);
    return r;
}

/* render CASES.json */
static int cmd_render(const char *path)
{
    json_error_t je;
    json_t *cases = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!json_is_array(cases)) {
        fprintf(stderr, "%s: %s\n", path, je.text);
        return 1;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(cases); i++)
        json_array_append_new(out, render_case(json_array_get(cases, i)));
    json_dumpf(out, stdout, JSON_ENSURE_ASCII);
    putchar('\n');
    json_decref(out);
    json_decref(cases);
    return 0;
}

/* verp-decode (1) / unsub-decode (0) / msgid-decode (2) */
static int cmd_decode(int verp, const char *tok, const char *hex)
{
    unsigned char secret[SECRET_MAX];
    long sl = unhex(hex, secret, sizeof(secret));
    if (sl < 0)
        return 2;
    uint64_t a, b, d;
    uint32_t acct;
    int rc = verp == 2 ? render_msgid_decode(tok, secret, (size_t)sl, &a, &b)
           : verp ? render_verp_decode(tok, secret, (size_t)sl, &a, &b)
                  : render_unsub_decode(tok, secret, (size_t)sl, &acct, &b, &d);
    if (rc) {
        fprintf(stderr, "%s\n", render_strerror(rc));
        return 1;
    }
    if (verp)
        printf("%llu %llu\n", (unsigned long long)a, (unsigned long long)b);
    else
        printf("%lu %llu %llu\n", (unsigned long)acct, (unsigned long long)b,
               (unsigned long long)d);
    return 0;
}

/* ---- bench ---- */

struct bench {
    const struct render_tpl *t;
    long n;
    size_t bytes;
    int rc;
};

static const struct render_field bench_fields[] = {
    { "first_name", "Zoë", 0 }, { "last_name", "Kowalski", 0 },
    { "city", "Kraków", 0 }, { "plan", "Pro & Team", 0 }, { "code", "SPRING-24", 0 },
    { "company", "Acme <Widgets> Ltd", 0 }, { "country", "PL", 0 },
    { "signup", "2023-04-01", 0 }, { "manager", "Ann", 0 }, { "lang", "pl", 0 },
};

/* Render the bench message n times. */
static void *bench_run(void *arg)
{
    struct bench *b = arg;
    struct render_contact c = { .id = 42, .email = "zoe.k@example.org",
                                .fields = bench_fields,
                                .nfields = sizeof(bench_fields) /
                                           sizeof(bench_fields[0]) };
    char mf[RENDER_MAILFROM_MAX];
    for (long i = 0; i < b->n; i++) {
        char *msg;
        size_t len;
        c.delivery = (uint64_t)i;
        b->rc = render_message(b->t, &c, &msg, &len, mf, sizeof(mf));
        if (b->rc)
            return NULL;
        b->bytes = len;
        free(msg);
    }
    return NULL;
}

/* Time rendering of a ~5 KB campaign message. */
static int cmd_bench(long n, int threads)
{
    static char html[8192], text[4096];
    size_t h = 0, x = 0;
    h += (size_t)snprintf(html + h, sizeof(html) - h,
        "<!DOCTYPE html><html><head><title>News</title><style>p{margin:0}"
        "</style></head><body style=\"margin:0\">\n<h1>Hello {{first_name|there}}!</h1>\n");
    x += (size_t)snprintf(text + x, sizeof(text) - x,
                          "Hello {{first_name|there}}!\n\n");
    for (int i = 0; i < 14; i++) {
        h += (size_t)snprintf(html + h, sizeof(html) - h,
            "<p>Paragraph %d for {{ first_name }} {{last_name}} in {{city}}: "
            "your {{plan}} plan at {{company}} renews soon; use code "
            "<b>{{code}}</b> at <a href=\"https://shop.example.com/r?c={{code}}"
            "&amp;p=%d\">our shop</a>.</p>\n", i, i);
        x += (size_t)snprintf(text + x, sizeof(text) - x,
            "Paragraph %d for {{first_name}}: your {{plan}} plan renews soon, "
            "code {{code}}.\n", i);
    }
    snprintf(html + h, sizeof(html) - h, "</body></html>\n");
    unsigned char secret[32] = "0123456789abcdef0123456789abcdef";
    struct render_input in = {
        .campaign = 7, .account = 3, .list = 9,
        .from = "Acme Café <news@mail.example.com>",
        .subject = "{{first_name|Hi}}, your {{plan}} offer — {{city}}",
        .html = html, .text = text,
        .footer_html = "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>",
        .footer_text = "Unsubscribe: {{unsubscribe_url}}",
        .unsub_host = "u.example.com", .secret = secret,
        .secret_len = sizeof(secret),
    };
    char err[256];
    struct render_tpl *t;
    int rc = render_compile(&in, &t, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "compile: %s\n", err);
        return 1;
    }
    struct bench b[16];
    pthread_t th[16];
    if (threads < 1 || threads > 16)
        threads = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) {
        b[i] = (struct bench){ .t = t, .n = n };
        pthread_create(&th[i], NULL, bench_run, &b[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    rc = 0;
    for (int i = 0; i < threads; i++)
        rc |= b[i].rc;
    printf("render: %ld messages x %d threads, %zu bytes each: %.2f us per "
           "message per thread, %.0f messages/s in all%s\n", n, threads,
           b[0].bytes, s * 1e6 / (double)n, (double)n * threads / s,
           rc ? " (FAILED)" : "");
    render_free(t);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "render") == 0)
        return cmd_render(argv[2]);
    if (argc == 4 && strcmp(argv[1], "verp-decode") == 0)
        return cmd_decode(1, argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "msgid-decode") == 0)
        return cmd_decode(2, argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "unsub-decode") == 0)
        return cmd_decode(0, argv[2], argv[3]);
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0) {
        long n = argc > 2 ? strtol(argv[2], NULL, 10) : 200000;
        int th = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 1;
        return cmd_bench(n > 0 ? n : 1, th);
    }
    fprintf(stderr, "usage: render_tool render CASES.json | verp-decode ADDR "
                    "HEX | unsub-decode TOKEN HEX | --bench [N [THREADS]]\n");
    return 2;
}
