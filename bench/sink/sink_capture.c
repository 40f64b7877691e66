/*
 * sink_capture.c - writes each accepted message to the --capture directory.
 *
 * The file is DIR/msg-<pid>-<seq>.eml: one "X-Sink-Mail-From: <...>" line,
 * one "X-Sink-Mail-Params: ..." line when MAIL had parameters (SIZE=,
 * BODY=, SMTPUTF8 as sent), one "X-Sink-Rcpt-To: <...>" line per accepted
 * recipient (CRLF-ended), then
 * the content exactly as received after dot-unstuffing.  It is written to a
 * ".tmp" name and renamed, so a reader never sees a partial file.  Writes
 * are synchronous: capture is for tests, not for speed.
 *
 * Failures: any open/write/rename error returns a negative errno, removes
 * the temporary file and makes the caller answer 451.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sink.h"

/* Write all n bytes to fd. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write the envelope lines, then the content. */
static int capture_body(struct sink_session *s, int fd)
{
    char line[SINK_ADDR_MAX + 32];
    const char *r = s->rcpts.data;
    int n, rc;

    n = snprintf(line, sizeof(line), "X-Sink-Mail-From: <%s>\r\n",
                 s->mail_from);
    if ((rc = write_all(fd, line, (size_t)n)) != 0)
        return rc;
    if (s->mail_params[0] != '\0') {
        char pl[SINK_PARAMS_MAX + 32];
        n = snprintf(pl, sizeof(pl), "X-Sink-Mail-Params: %s\r\n",
                     s->mail_params);
        if ((rc = write_all(fd, pl, (size_t)n)) != 0)
            return rc;
    }
    for (size_t i = 0; i < s->nrcpt; i++) {
        n = snprintf(line, sizeof(line), "X-Sink-Rcpt-To: <%s>\r\n", r);
        if ((rc = write_all(fd, line, (size_t)n)) != 0)
            return rc;
        r += strlen(r) + 1;
    }
    return write_all(fd, s->body.data, s->body.len);
}

/* Store the current message as message number seq. */
int sink_capture_write(struct sink_session *s, uint64_t seq)
{
    const char *dir = s->srv->cfg.capture_dir;
    char path[4096], tmp[4110];
    int fd, rc;

    if (snprintf(path, sizeof(path), "%s/msg-%ld-%08llu.eml", dir,
                 (long)getpid(), (unsigned long long)seq) >= (int)sizeof(path))
        return UV_ENAMETOOLONG;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        sink_log("capture %s: %s", tmp, strerror(errno));
        return rc;
    }
    rc = capture_body(s, fd);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        sink_log("capture %s: %s", path, uv_strerror(rc));
        unlink(tmp);
    }
    return rc;
}
