/*
 * feedback_quarantine.c - where reports that cannot be used are kept:
 * NAME.eml (the report's bytes) and NAME.reason (why, and its source) in
 * the quarantine directory (feedback.h).
 *
 * DESCRIPTION
 *   NAME is TIME-PID-RANDOM (64 random bits from getrandom(2)), so calls
 *   from several threads or processes never share a counter; both files
 *   are created with O_EXCL (a taken name is drawn again), fsync'ed, and
 *   the directory is fsync'ed after them, so a quarantined report
 *   survives a crash once feedback_quarantine() returned 0.
 *
 * DIAGNOSTICS
 *   feedback_quarantine() returns 0, or FEEDBACK_EQUARANTINE with
 *   "PATH: strerror" in the result's error; a failure leaves no
 *   NAME.eml without its NAME.reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "feedback.h"
#include "feedback_int.h"

#define QUARANTINE_TRIES 16       /* names drawn before giving up */

/* Write all of buf to fd; 0 or -1 (errno set). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Create path (mode 0700) when it is not there; 0 or -1 (errno set). */
static int ensure_dir(const char *path)
{
    struct stat st;
    if (!stat(path, &st)) {
        if (S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
        return -1;
    }
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

/* Write one new file (O_EXCL) with buf and fsync it; 0 or -1 (errno set;
 * a file made but not fully written is removed). */
static int write_file(const char *path, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, buf, n);
    if (!rc && fsync(fd))
        rc = -1;
    int saved = errno;
    if (close(fd) && !rc) {
        rc = -1;
        saved = errno;
    }
    if (rc) {
        unlink(path);
        errno = saved;
    }
    return rc;
}

/* fsync a directory so the names made in it are durable; 0 or -1. */
static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Fail the quarantine with "what: strerror(errno)". */
static int fail(struct feedback_result *r, const char *what)
{
    snprintf(r->error, sizeof r->error, "%s: %s", what, strerror(errno));
    r->quarantine[0] = 0;
    return FEEDBACK_EQUARANTINE;
}

int feedback_quarantine(const char *dir, const char *source,
                        const char *buf, size_t len,
                        struct feedback_result *r)
{
    char base[FEEDBACK_PATH_MAX + 64], path[FEEDBACK_PATH_MAX + 80];
    char why[sizeof r->reason + FEEDBACK_PATH_MAX + 32];
    int made = 0;
    r->outcome = "quarantined";
    r->quarantine[0] = 0;
    if (ensure_dir(dir)) {
        snprintf(r->error, sizeof r->error, "quarantine %s: %s", dir,
                 strerror(errno));
        return FEEDBACK_EQUARANTINE;
    }
    for (int tries = 0; tries < QUARANTINE_TRIES && !made; tries++) {
        unsigned long long rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return fail(r, "getrandom");
        if (snprintf(base, sizeof base, "%s/%lld-%ld-%016llx", dir,
                     (long long)time(NULL), (long)getpid(), rnd)
                >= (int)sizeof base ||
            snprintf(path, sizeof path, "%s.eml", base) >= (int)sizeof path) {
            errno = ENAMETOOLONG;
            return fail(r, dir);
        }
        if (!write_file(path, buf, len))
            made = 1;
        else if (errno != EEXIST)
            return fail(r, path);
    }
    if (!made) {
        errno = EEXIST;
        return fail(r, path);
    }
    int wn = snprintf(why, sizeof why, "%s\nsource: %s\n", r->reason,
                      source);
    char eml[sizeof path];
    memcpy(eml, path, sizeof eml);
    snprintf(path, sizeof path, "%s.reason", base);
    if (write_file(path, why, wn < (int)sizeof why ? (size_t)wn
                                                   : sizeof why - 1)) {
        int saved = errno;
        unlink(eml);
        errno = saved;
        return fail(r, path);
    }
    if (sync_dir(dir)) {
        int saved = errno;
        unlink(path);
        unlink(eml);
        errno = saved;
        return fail(r, dir);
    }
    snprintf(r->quarantine, sizeof r->quarantine, "%s", eml);
    return 0;
}
