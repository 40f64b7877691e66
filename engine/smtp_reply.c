/*
 * smtp_reply.c - taking SMTP reply lines apart, and collecting replies.
 *
 * DESCRIPTION
 *   See smtp_reply.h.  Garbage (no code), codes outside 2xx-5xx, a bad
 *   separator, a code that changes inside a multiline reply, or too many
 *   lines all end the reply as a protocol error; the session then fails
 *   and its recipients are deferred, never guessed as delivered.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

/* Whether c is an ASCII digit (not locale-dependent, unlike isdigit). */
static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of an enhanced status code of class cls at s[0..n), or 0. */
static size_t enhanced_len(const char *s, size_t n, int cls)
{
    if ((cls != 2 && cls != 4 && cls != 5) || n < 5 || s[0] != '0' + cls ||
        s[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {   /* subject, then detail */
        size_t d = 0;
        while (i < n && digit(s[i]) && d < 4) {
            i++;
            d++;
        }
        if (d < 1 || d > 3)
            return 0;
        if (part == 0 && (i == n || s[i++] != '.'))
            return 0;
    }
    return i == n || s[i] == ' ' ? i : 0;
}

int smtp_reply_split(const char *line, size_t len,
                     struct smtp_reply_split *out)
{
    memset(out, 0, sizeof *out);
    out->text = "";
    if (len < 3 || line[0] < '2' || line[0] > '5' || !digit(line[1]) ||
        !digit(line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return -1;
    out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    out->more = len > 3 && line[3] == '-';
    if (len <= 4)
        return 0;
    const char *t = line + 4;
    size_t n = len - 4;
    size_t el = enhanced_len(t, n, out->code / 100);
    memcpy(out->enhanced, t, el);
    out->enhanced[el] = 0;
    t += el;
    n -= el;
    while (n && *t == ' ') {
        t++;
        n--;
    }
    out->text = t;
    out->text_len = n;
    return 0;
}

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

int smtp_reply_line(struct smtp_reply_parser *p, const char *line, size_t len)
{
    struct smtp_reply_split sp;
    if (len > SMTP_REPLY_LINE_MAX) {
        snprintf(p->err, sizeof p->err, "reply line over %d bytes",
                 SMTP_REPLY_LINE_MAX);
        return SMTP_REPLY_EPROTO;
    }
    if (smtp_reply_split(line, len, &sp)) {
        /* quote at most the line's own bytes: it need not end in a NUL */
        snprintf(p->err, sizeof p->err, "garbage in reply: \"%.*s\"",
                 (int)(len < 40 ? len : 40), line);
        for (char *c = p->err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        return SMTP_REPLY_EPROTO;
    }
    if (p->r.lines && sp.code != p->r.code) {
        snprintf(p->err, sizeof p->err,
                 "multiline reply changed code from %d to %d", p->r.code,
                 sp.code);
        return SMTP_REPLY_EPROTO;
    }
    if (++p->r.lines > SMTP_REPLY_MAX_LINES) {
        snprintf(p->err, sizeof p->err, "reply of more than %d lines",
                 SMTP_REPLY_MAX_LINES);
        return SMTP_REPLY_EPROTO;
    }
    p->r.code = sp.code;
    if (p->on_line)
        p->on_line(p->arg, len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0);
    const char *text = sp.text;
    size_t tl = sp.text_len;
    if (p->r.lines == 1) {
        memcpy(p->r.enhanced, sp.enhanced, sizeof sp.enhanced);
    } else if (sp.enhanced[0] && strcmp(sp.enhanced, p->r.enhanced)) {
        /* a different enhanced code on a later line stays in the text */
        text = line + 4;
        tl = len - 4;
        while (tl && *text == ' ') {
            text++;
            tl--;
        }
    }
    add_text(p, text, tl);
    return sp.more ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}
