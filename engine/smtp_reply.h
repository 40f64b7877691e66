/*
 * smtp_reply.h - take SMTP server replies apart, line by line, with caps.
 *
 * DESCRIPTION
 *   The one home of the rule that turns a reply line into a code, an
 *   enhanced status code and text, shared by sluiced's SMTP client, `sluice
 *   bounces classify` and the DSN reader of `sluice feedback` (library
 *   sluice_reply, which needs nothing else).
 *
 *   smtp_reply_split() takes one line apart: a reply code of three digits,
 *   the first 2-5 (RFC 5321 4.2: a client treats any other first digit as
 *   a fatal error; the second and third digit may be any, the client acts
 *   on the first, 4.2.1), then '-' (more lines follow), ' ' or the end.
 *   After the separator, an enhanced status code "c.sss.ddd" (RFC 3463 2:
 *   class 2, 4 or 5 equal to the reply code's first digit, subject and
 *   detail of 1-3 digits) followed by a space or the end is taken as one;
 *   anything else ("9.9.9", "5.1.1234", "4.2.2" in a 5xx reply) stays in
 *   the text.  Spaces before the text are skipped.
 *
 *   A reply is one or more lines "ddd-text" ending with "ddd text" (RFC
 *   5321 4.2); smtp_reply_line() checks every line with the splitter and
 *   that every line of a multiline reply carries the same code.  It keeps
 *   the code, the enhanced status code of the first line (dropped from
 *   later lines that repeat it), and the text (lines joined by a space,
 *   control characters shown as '?', cut at SMTP_REPLY_TEXT).  A reply of
 *   more than SMTP_REPLY_MAX_LINES lines is an error.
 *
 * DIAGNOSTICS
 *   smtp_reply_split() returns -1 for a line without a reply code.
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

/* Longest enhanced status code "c.sss.ddd", its NUL included. */
#define SMTP_REPLY_ENH_MAX 10

enum { SMTP_REPLY_MORE = 0, SMTP_REPLY_DONE = 1, SMTP_REPLY_EPROTO = -1 };

/* One reply line taken apart (text points into the line). */
struct smtp_reply_split {
    int code;                           /* 200..599 */
    bool more;                          /* "ddd-": more lines follow */
    char enhanced[SMTP_REPLY_ENH_MAX];  /* "" when the line has none */
    const char *text;                   /* after code and enhanced code */
    size_t text_len;
};

/* Take apart line[0..len), without its line ending and not necessarily
 * NUL-terminated; 0, or -1 when it does not start with a reply code. */
int smtp_reply_split(const char *line, size_t len,
                     struct smtp_reply_split *out);

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
