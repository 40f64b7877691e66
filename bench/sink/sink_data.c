/*
 * sink_data.c - message content after DATA: the dot decoder and the end of
 * a message.
 *
 * The decoder (struct sink_dot) is a byte state machine that survives chunk
 * boundaries.  Only CRLF ends a line (RFC 5321 section 2.3.8): a bare LF or
 * bare CR is kept as content and counted as a protocol violation, and a
 * line that starts after one is not checked for a dot.  A leading dot is
 * removed (dot-unstuffing); ".CRLF" at the start of a line ends the
 * message, and the CRLF before it belongs to the content.  Lines longer
 * than 1000 octets with CRLF are counted, not refused.
 *
 * Content is passed on in spans through an emit callback; the session
 * counts it against --max-size (552 at the end when over) and keeps it for
 * --capture.  Nothing here fails; a capture error becomes a 451 reply.
 */
#include <stdlib.h>
#include <string.h>

#include "sink.h"

#define SINK_DATA_LINE_MAX 1000   /* RFC 5321 text line, CRLF included */

enum {
    DOT_BOL,     /* at the start of a line */
    DOT_DOT,     /* a dot at the start of a line, held */
    DOT_DOTCR,   /* ".\r" at the start of a line, held */
    DOT_TEXT,    /* inside a line */
    DOT_CR,      /* after a CR inside a line */
};

/* Reset a decoder for a new message. */
void sink_dot_init(struct sink_dot *d)
{
    memset(d, 0, sizeof(*d));
    d->state = DOT_BOL;
}

/* Decode in[0..n): emit content, stop after CRLF.CRLF; returns bytes used. */
size_t sink_dot_decode(struct sink_dot *d, const char *in, size_t n,
                       sink_emit_fn emit, void *ctx, bool *done)
{
    size_t i = 0, span = 0;   /* in[span..i) is content not yet emitted */

    *done = false;
    while (i < n) {
        const char *p, *e;

        switch (d->state) {
        case DOT_BOL:
            d->line_len = 0;
            if (in[i] == '.') {
                if (i > span)
                    emit(ctx, in + span, i - span);
                span = ++i;
                d->state = DOT_DOT;
            } else {
                d->state = DOT_TEXT;
            }
            break;
        case DOT_DOT:
            d->line_len = 1;
            if (in[i] == '\r') {
                span = ++i;
                d->state = DOT_DOTCR;
            } else {
                d->state = DOT_TEXT;   /* the stuffing dot is dropped */
            }
            break;
        case DOT_DOTCR:
            if (in[i] == '\n') {
                *done = true;
                d->state = DOT_BOL;
                return i + 1;
            }
            d->bare_cr++;              /* ".\r" then not LF */
            emit(ctx, "\r", 1);
            d->line_len++;
            d->state = DOT_TEXT;
            break;
        case DOT_TEXT:
            p = in + i;
            e = in + n;
            while (p < e && *p != '\r' && *p != '\n')
                p++;
            d->line_len += (size_t)(p - (in + i));
            i = (size_t)(p - in);
            if (i == n)
                break;
            d->line_len++;
            if (*p == '\n')
                d->bare_lf++;
            else
                d->state = DOT_CR;
            i++;
            break;
        case DOT_CR:
            if (in[i] == '\n') {
                if (d->line_len + 1 > SINK_DATA_LINE_MAX)
                    d->long_lines++;
                i++;
                d->state = DOT_BOL;
            } else {
                d->bare_cr++;
                d->state = DOT_TEXT;
            }
            break;
        }
    }
    if (i > span)
        emit(ctx, in + span, i - span);
    return i;
}

/* Take a span of content: count it, keep it for --capture. */
static void data_emit(void *ctx, const char *p, size_t n)
{
    struct sink_session *s = ctx;

    s->msg_size += n;
    if (s->msg_oversize)
        return;
    if (s->msg_size > s->srv->cfg.max_size) {
        s->msg_oversize = true;
        sink_buf_reset(&s->body, 0);
        return;
    }
    if (s->srv->cfg.capture_dir != NULL &&
        sink_buf_append(&s->body, p, n) != 0) {
        s->msg_oversize = true;    /* cannot keep it: refuse it */
        sink_buf_reset(&s->body, 0);
    }
}

/* Start receiving a message after the 354. */
void sink_data_begin(struct sink_session *s)
{
    sink_dot_init(&s->dot);
    s->msg_size = 0;
    s->msg_oversize = false;
    s->body.len = 0;
    s->in = SINK_IN_DATA;
}

/* The final dot arrived: accept, refuse or drop the message. */
static void data_end(struct sink_session *s)
{
    struct sink_server *srv = s->srv;
    char reply[96];

    s->in = SINK_IN_CMD;
    if (s->drop_after_data) {
        srv->stats.dropped_after_data++;
        sink_smtp_reset_transaction(s);
        sink_session_quit(s);
        return;
    }
    if (s->msg_oversize) {
        srv->stats.oversize++;
        sink_session_reply(s, "552 5.3.4 message too big\r\n");
    } else if (srv->cfg.capture_dir != NULL &&
               sink_capture_write(s, srv->stats.messages + 1) != 0) {
        srv->stats.capture_errors++;
        sink_session_reply(s, "451 4.3.0 could not store the message\r\n");
    } else {
        sink_stats_message(srv, s);
        snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %llu\r\n",
                 (unsigned long long)srv->stats.messages);
        sink_session_reply(s, reply);
        sink_server_message_accepted(srv);
    }
    sink_smtp_reset_transaction(s);
    sink_smtp_enter(s, SINK_ST_READY);
}

/* Feed content bytes; returns bytes used (less than n if the message ended). */
size_t sink_data_consume(struct sink_session *s, const char *p, size_t n)
{
    struct sink_stats *st = &s->srv->stats;
    uint64_t lf = s->dot.bare_lf, cr = s->dot.bare_cr, ll = s->dot.long_lines;
    bool done = false;
    size_t used = sink_dot_decode(&s->dot, p, n, data_emit, s, &done);

    st->bare_lf += s->dot.bare_lf - lf;
    st->bare_cr += s->dot.bare_cr - cr;
    st->long_lines += s->dot.long_lines - ll;
    if (s->addr != NULL) {
        s->addr->bare_lf += s->dot.bare_lf - lf;
        s->addr->bare_cr += s->dot.bare_cr - cr;
    }
    if (done)
        data_end(s);
    return used;
}
