/*
 * smtp_reply.h - parse SMTP server replies line by line, with caps.
 *
 * DESCRIPTION
 *   A reply is one or more lines "ddd-text" ending with "ddd text" (RFC 5321
 *   4.2).  The parser checks every line: three digits 2xx-5xx (or 1xx),
 *   then '-', ' ' or the end; every line of a multiline reply carries the
 *   same code.  It keeps the code, the enhanced status code (RFC 3463) of
 *   the first line, and the text (lines joined, cut at SMTP_REPLY_TEXT).
 *   A reply of more than SMTP_REPLY_MAX_LINES lines is an error.
 *
 * DIAGNOSTICS
 *   smtp_reply_line() returns SMTP_REPLY_MORE, SMTP_REPLY_DONE or
 *   SMTP_REPLY_EPROTO with the reason in p->err.
 */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_LINE_MAX 2048   /* longer line: protocol error */
#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_TEXT 512

enum { SMTP_REPLY_MORE = 0, SMTP_REPLY_DONE = 1, SMTP_REPLY_EPROTO = -1 };

struct smtp_reply {
    int code;
    char enhanced[16];
    char text[SMTP_REPLY_TEXT];
    unsigned lines;
};

struct smtp_reply_parser {
    struct smtp_reply r;
    size_t text_len;
    /* optional hook: called with each line's text (EHLO keywords) */
    void (*on_line)(void *arg, const char *text, size_t len);
    void *arg;
    char err[128];
};

void smtp_reply_reset(struct smtp_reply_parser *p);

/* Feed one line without its line ending. */
int smtp_reply_line(struct smtp_reply_parser *p, const char *line, size_t len);

/* Class of a code: 2, 3, 4 or 5 (0 if none). */
static inline int smtp_reply_class(int code) { return code / 100; }

#endif
