/*
 * fuzz_template.c - libFuzzer target for campaign templates: the merge
 * tag parser (engine/render_parse.c), the html-to-text derivation, and
 * rendering (render.c, render_hdr.c, render_qp.c, render_token.c).
 *
 * DESCRIPTION
 *   The input is up to nine parts separated by lines "%%": subject, html,
 *   text, header_html, footer_html, header_text, footer_text (a missing
 *   one is NULL: derived, or none), then the values of the contact's
 *   fields first_name and city (missing: the contact lacks the field).
 *   From, addresses, ids and the token key are fixed.  A template that
 *   compiles is rendered for the contact and the message is checked
 *   against what render.h promises: 7-bit, CRLF line ends only, no line
 *   over 998 octets, no Subject line over 78, and only the header fields
 *   the renderer writes, each once (a value cannot add one); with opens
 *   and clicks tracked (three inputs in four, by their length), link
 *   rewriting keeps those promises and every tracked link of the html
 *   part can be followed back (render_track_link).  A refused
 *   template must say why.  A broken promise aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render.h"

#define NPARTS 9
#define SEP "\n%%\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "sluice-fuzz-secret-0123456789abc";

/* The header fields a message may have, each at most once. */
static const char *const fields[] = {
    "Date", "From", "Reply-To", "To", "Subject", "Message-ID",
    "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID",
    "MIME-Version", "Content-Type",
};
#define NFIELDS (sizeof fields / sizeof fields[0])

/* Stop with a message: the renderer broke a promise of render.h. */
static void broken(const char *what, const char *m, size_t len)
{
    fprintf(stderr, "fuzz_template: %s\n%.*s\n", what,
            (int)(len > 2000 ? 2000 : len), m);
    abort();
}

/* The wire rules, and the header fields. */
static void check_message(const char *m, size_t len)
{
    if (strlen(m) != len)
        broken("a NUL inside the message", m, len);
    if (len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n')
        broken("the message does not end in CRLF", m, len);
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c >= 0x80)
            broken("an 8-bit byte", m, len);
        if (c == '\r') {
            if (m[i + 1] != '\n')
                broken("a bare CR", m, len);
            i++;
            line = 0;
            continue;
        }
        if (c == '\n')
            broken("a bare LF", m, len);
        if (++line > 998)
            broken("a line over 998 octets", m, len);
    }
    const char *end = strstr(m, "\r\n\r\n");
    if (!end)
        broken("no end of the header", m, len);
    unsigned seen[NFIELDS] = { 0 };
    int in_subject = 0;
    for (const char *p = m; p <= end;) {
        const char *eol = strstr(p, "\r\n");
        size_t n = (size_t)(eol - p);
        if (*p != ' ' && *p != '\t') {
            const char *colon = memchr(p, ':', n);
            size_t k = 0;
            while (colon && k < NFIELDS &&
                   (strlen(fields[k]) != (size_t)(colon - p) ||
                    strncmp(fields[k], p, (size_t)(colon - p))))
                k++;
            if (!colon || k == NFIELDS || seen[k]++)
                broken("a header field the renderer does not write, or "
                       "one twice", p, n);
            in_subject = !strcmp(fields[k], "Subject");
        }
        if (in_subject && n > 78)
            broken("a Subject line over 78 characters", p, n);
        p = eol + 2;
    }
    for (size_t k = 0; k < NFIELDS; k++)
        if (!seen[k] && strcmp(fields[k], "Reply-To"))
            broken("a header field is missing", fields[k], strlen(fields[k]));
}

/* Cut the input into NUL-terminated parts; how many there are. */
static size_t split(char *s, size_t size, char **part, size_t *plen)
{
    size_t n = 0;
    char *p = s, *end = s + size;
    while (n < NPARTS) {
        char *sep = memmem(p, (size_t)(end - p), SEP, strlen(SEP));
        part[n] = p;
        plen[n] = sep ? (size_t)(sep - p) : (size_t)(end - p);
        p[plen[n]] = 0;
        n++;
        if (!sep)
            break;
        p = sep + strlen(SEP);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *part[NPARTS] = { 0 };
    size_t plen[NPARTS] = { 0 };
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    size_t n = split(s, size, part, plen);
    struct render_input in = {
        .campaign = 7, .account = 3, .list = 5,
        .from = "Shop News <news@shop.example>",
        .reply_to = "\"Help, Desk\" <help@shop.example>",
        .subject = part[0], .html = n > 1 ? part[1] : "",
        .text = part[2], .header_html = part[3], .footer_html = part[4],
        .header_text = part[5], .footer_text = part[6],
        .unsub_host = "u.shop.example", .feedback_sender = "fuzz",
        .secret = secret, .secret_len = sizeof secret - 1,
        /* opens and clicks tracking (render_track.c) on three inputs in
         * four: its link scanner and rewriting under the same promises */
        .track = (unsigned)(size & 3),
    };
    struct render_field f[3] = {
        { .name = "last_name", .value = "Lee" },
        { .name = "first_name", .value = part[7], .value_len = plen[7] },
        { .name = "city", .value = part[8], .value_len = plen[8] },
    };
    struct render_contact c = {
        .id = 11, .delivery = 99, .email = "ann@example.com", .fields = f,
        .nfields = n > 8 ? 3 : n > 7 ? 2 : 1,
    };
    struct render_tpl *t = NULL;
    char err[256] = "";
    int rc = render_compile(&in, &t, err, sizeof err);
    if (rc) {
        if (!err[0] || !render_strerror(rc))
            broken("a refused template without a reason", s, size);
    } else {
        char *msg = NULL, mf[RENDER_MAILFROM_MAX];
        size_t len = 0;
        rc = render_message(t, &c, &msg, &len, mf, sizeof mf);
        if (rc == 0) {
            check_message(msg, len);
            /* each link number: found, or not one */
            for (unsigned k = 0; k < 4; k++) {
                char url[3 * RENDER_LINK_URL_MAX + 1];
                int lr = render_track_link(t, &c, k, 0, url, sizeof url);
                if (lr && lr != -ENOENT && lr != -ENOSPC)
                    broken("a link that cannot be followed", s, size);
            }
            if (strncmp(mf, "b-", 2) || !strchr(mf, '@'))
                broken("a return path that is not a VERP address", mf,
                       strlen(mf));
        } else if (rc != RENDER_E_TOOBIG) {
            broken("a compiled template that does not render", s, size);
        }
        free(msg);
        render_free(t);
    }
    free(s);
    return 0;
}
