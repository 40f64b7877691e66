/*
 * sink_input.c - splits the plaintext input of a session into command lines
 * and message content, and keeps what cannot be used yet.
 *
 * Input arrives in chunks (one socket read, or one SSL_read).  Complete
 * command lines are handed to sink_smtp_command() in place; content after
 * DATA goes to sink_data_consume().  A partial command line, or everything
 * left while the session is paused on a timer, is kept in s->carry (capped
 * at SINK_CARRY_MAX; past it the session is closed).  A command line longer
 * than SINK_CMD_LINE_MAX gets "500 5.5.2" and is skipped up to its LF.
 *
 * After STARTTLS the rest of the batch is discarded (RFC 3207: no command
 * may ride along with it) and TLS begins once the 220 is written.
 */
#include <string.h>

#include "sink.h"

#define SINK_CARRY_KEEP 8192

/* Answer a command line that is too long. */
static void input_overlong(struct sink_session *s)
{
    s->srv->stats.protocol_errors++;
    sink_session_reply(s, "500 5.5.2 line too long\r\n");
}

/* Handle as much of p[0..n) as the state allows; returns bytes used. */
static size_t input_consume(struct sink_session *s, char *p, size_t n)
{
    size_t off = 0;

    while (off < n && !s->paused && !s->closing) {
        char *line, *lf;
        size_t len;

        switch (s->in) {
        case SINK_IN_DATA:
            off += sink_data_consume(s, p + off, n - off);
            break;
        case SINK_IN_DISCARD:
            off = n;
            break;
        case SINK_IN_SKIP:
            lf = memchr(p + off, '\n', n - off);
            if (lf == NULL) {
                off = n;
                break;
            }
            off = (size_t)(lf - p) + 1;
            s->in = SINK_IN_CMD;
            break;
        case SINK_IN_CMD:
            line = p + off;
            lf = memchr(line, '\n', n - off);
            if (lf == NULL) {
                if (n - off > SINK_CMD_LINE_MAX + 1) {
                    input_overlong(s);
                    s->in = SINK_IN_SKIP;
                    off = n;
                }
                return off;
            }
            len = (size_t)(lf - line);
            off += len + 1;
            if (len > 0 && line[len - 1] == '\r')
                len--;
            if (len > SINK_CMD_LINE_MAX) {
                input_overlong(s);
                break;
            }
            line[len] = '\0';
            sink_smtp_command(s, line, len);
            break;
        }
    }
    return off;
}

/* End of a batch: start TLS if STARTTLS was accepted in it. */
static void input_after_batch(struct sink_session *s)
{
    if (!s->starttls_pending || s->closing)
        return;
    /* STARTTLS left us in DISCARD with the 220 queued. */
    s->starttls_pending = false;
    s->carry.len = 0;
    sink_session_flush(s);
    if (s->closing)
        return;
    if (s->srv->cfg.mode == SINK_MODE_TLS_GARBAGE ||
        s->srv->cfg.mode == SINK_MODE_TLS_CLOSE) {
        /* a broken TLS stack: the handshake never happens */
        s->srv->stats.tls_failures++;
        if (s->srv->cfg.mode == SINK_MODE_TLS_GARBAGE)
            sink_session_reply(s, "this is not a TLS record\r\n");
        sink_session_quit(s);
        return;
    }
    if (sink_tls_start(s) != 0) {
        sink_session_close(s);
        return;
    }
    s->in = SINK_IN_CMD;
}

/* Take one chunk of plaintext input. p is modified in place. */
void sink_input_feed(struct sink_session *s, char *p, size_t n)
{
    size_t used;

    if (s->closing)
        return;
    if (s->carry.len > 0 || s->paused) {
        if (sink_buf_append(&s->carry, p, n) != 0) {
            sink_log("session %llu: input backlog over cap, closing",
                     (unsigned long long)s->id);
            sink_session_close(s);
            return;
        }
        if (s->paused)
            return;
        used = input_consume(s, s->carry.data, s->carry.len);
        sink_buf_consume(&s->carry, used);
    } else {
        used = input_consume(s, p, n);
        if (used < n && !s->closing &&
            sink_buf_append(&s->carry, p + used, n - used) != 0) {
            sink_session_close(s);
            return;
        }
    }
    if (s->carry.len == 0)
        sink_buf_reset(&s->carry, SINK_CARRY_KEEP);
    input_after_batch(s);
}

/* The timer that paused the session fired: process what was kept. */
void sink_input_resume(struct sink_session *s)
{
    size_t used;

    s->paused = false;
    if (s->carry.len > 0) {
        used = input_consume(s, s->carry.data, s->carry.len);
        sink_buf_consume(&s->carry, used);
        if (s->carry.len == 0)
            sink_buf_reset(&s->carry, SINK_CARRY_KEEP);
        input_after_batch(s);
    }
    if (!s->paused && !s->closing && s->ssl != NULL &&
        sink_tls_pump(s) != 0) {
        sink_session_close(s);
        return;
    }
    sink_session_flush(s);
    sink_session_update_reading(s);
}
