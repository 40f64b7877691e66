/*
 * smtp_reply.c - checking and collecting SMTP reply lines.
 *
 * DESCRIPTION
 *   See smtp_reply.h.  Garbage (no code), codes outside 1xx-5xx, a bad
 *   separator, a code that changes inside a multiline reply, or too many
 *   lines all end the reply as a protocol error; the session then fails
 *   and its recipients are deferred, never guessed as delivered.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

void smtp_reply_reset(struct smtp_reply_parser *p)
{
    memset(&p->r, 0, sizeof p->r);
    p->text_len = 0;
    p->err[0] = 0;
}

/* Append text to the reply text, a space between lines, cut at the cap. */
static void add_text(struct smtp_reply_parser *p, const char *s, size_t n)
{
    size_t room = sizeof p->r.text - 1 - p->text_len;
    if (p->text_len && room) {
        p->r.text[p->text_len++] = ' ';
        room--;
    }
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++) /* keep the log and event text printable */
        p->r.text[p->text_len + i] =
            (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    p->text_len += n;
    p->r.text[p->text_len] = 0;
}

/* Take an enhanced status code "c.sss.ddd" from the start of s. */
static size_t take_enhanced(struct smtp_reply_parser *p, const char *s,
                            size_t n)
{
    size_t i = 0, parts = 0, digits = 0;
    if (n < 5 || !strchr("245", s[0]) || s[1] != '.')
        return 0;
    for (; i < n && i < 15; i++) {
        if (isdigit((unsigned char)s[i])) {
            if (++digits > 3)
                return 0;
        } else if (s[i] == '.') {
            if (!digits)
                return 0;
            parts++;
            digits = 0;
        } else {
            break;
        }
    }
    if (parts != 2 || !digits || (i < n && s[i] != ' '))
        return 0;
    memcpy(p->r.enhanced, s, i);
    p->r.enhanced[i] = 0;
    return i < n ? i + 1 : i;
}

int smtp_reply_line(struct smtp_reply_parser *p, const char *line, size_t len)
{
    if (len > SMTP_REPLY_LINE_MAX) {
        snprintf(p->err, sizeof p->err, "reply line over %d bytes",
                 SMTP_REPLY_LINE_MAX);
        return SMTP_REPLY_EPROTO;
    }
    if (len < 3 || !isdigit((unsigned char)line[0]) ||
        !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]) ||
        line[0] < '1' || line[0] > '5' || (len > 3 && line[3] != ' ' &&
                                           line[3] != '-')) {
        /* quote at most the line's own bytes: it need not end in a NUL */
        snprintf(p->err, sizeof p->err, "garbage in reply: \"%.*s\"",
                 (int)(len < 40 ? len : 40), line);
        for (char *c = p->err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        return SMTP_REPLY_EPROTO;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (p->r.lines && code != p->r.code) {
        snprintf(p->err, sizeof p->err,
                 "multiline reply changed code from %d to %d", p->r.code, code);
        return SMTP_REPLY_EPROTO;
    }
    if (++p->r.lines > SMTP_REPLY_MAX_LINES) {
        snprintf(p->err, sizeof p->err, "reply of more than %d lines",
                 SMTP_REPLY_MAX_LINES);
        return SMTP_REPLY_EPROTO;
    }
    p->r.code = code;
    const char *text = len > 4 ? line + 4 : "";
    size_t tl = len > 4 ? len - 4 : 0;
    if (p->on_line)
        p->on_line(p->arg, text, tl);
    if (p->r.lines == 1) {
        size_t skip = take_enhanced(p, text, tl);
        text += skip;
        tl -= skip;
    } else if (p->r.enhanced[0] && tl > strlen(p->r.enhanced) &&
               !strncmp(text, p->r.enhanced, strlen(p->r.enhanced))) {
        /* the same enhanced code repeated on continuation lines */
        text += strlen(p->r.enhanced) + 1;
        tl -= strlen(p->r.enhanced) + 1;
    }
    add_text(p, text, tl);
    return len > 3 && line[3] == '-' ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}
