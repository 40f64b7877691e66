/*
 * fuzz_reply.c - libFuzzer target for the SMTP reply parser
 * (engine/smtp_reply.c): what a hostile or broken server sends.
 *
 * DESCRIPTION
 *   The input is cut into lines at LF (a CR before it dropped) as
 *   smtp_session.c does, and each line goes to smtp_reply_line() in a buffer
 *   of exactly its length, so a read past the line is an ASan report.
 *   A finished reply is checked against what smtp_reply.h promises: a
 *   code of 100..599, an enhanced code "c.sss.ddd" of class 2, 4 or 5 or
 *   none, a text without control characters, at most SMTP_REPLY_MAX_LINES
 *   lines; an error names its reason in printable text.  A broken promise
 *   aborts (a crash for libFuzzer).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with a message: the input broke a promise of smtp_reply.h. */
static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_reply: %s: \"%.200s\"\n", what, detail);
    abort();
}

/* Whether s (NUL-terminated within cap) holds no control character. */
static int printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The EHLO hook: every byte of the line text it is given is readable. */
static void on_line(void *arg, const char *text, size_t len)
{
    size_t *sum = arg;
    for (size_t i = 0; i < len; i++)
        *sum += (unsigned char)text[i];
}

/* A finished reply keeps every promise of smtp_reply.h. */
static void check_reply(const struct smtp_reply_parser *p)
{
    const struct smtp_reply *r = &p->r;
    if (r->code < 100 || r->code > 599)
        broken("code out of range", r->text);
    if (r->lines < 1 || r->lines > SMTP_REPLY_MAX_LINES)
        broken("line count out of range", r->text);
    if (!printable(r->text, sizeof r->text))
        broken("reply text not printable or not terminated", r->text);
    size_t el = strnlen(r->enhanced, sizeof r->enhanced);
    if (el == sizeof r->enhanced)
        broken("enhanced code not terminated", r->text);
    if (el) {
        unsigned a, b, c;
        int end = 0;
        if (sscanf(r->enhanced, "%1u.%3u.%3u%n", &a, &b, &c, &end) != 3 ||
            (size_t)end != el || (a != 2 && a != 4 && a != 5))
            broken("enhanced code malformed", r->enhanced);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_reply_parser p = { 0 };
    size_t sum = 0;
    smtp_reply_reset(&p);
    p.on_line = on_line;
    p.arg = &sum;
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end - pos;
        if (len && data[end - 1] == '\r')
            len--;
        char *line = malloc(len ? len : 1);
        if (!line)
            return 0;
        memcpy(line, data + pos, len);
        int rc = smtp_reply_line(&p, line, len);
        free(line);
        if (rc == SMTP_REPLY_DONE) {
            check_reply(&p);
            smtp_reply_reset(&p);
        } else if (rc == SMTP_REPLY_EPROTO) {
            if (!p.err[0] || !printable(p.err, sizeof p.err))
                broken("error reason empty or not printable", p.err);
            smtp_reply_reset(&p);
        } else if (rc != SMTP_REPLY_MORE) {
            broken("unknown return value", "");
        }
        pos = end + 1;
    }
    return 0;
}
