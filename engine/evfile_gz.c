/*
 * evfile_gz.c - compress the rotated files of the event log and the
 * accounting files (evfile.c) with zlib, off the loop thread.
 *
 * DESCRIPTION
 *   A rotated FILE is compressed on libuv's thread pool (uv_queue_work),
 *   so delivery never waits for it: into FILE.gz.tmp, which is fsynced
 *   and renamed to FILE.gz (the directory fsynced), and only then FILE is
 *   unlinked.  A crash at any moment leaves FILE, or a complete FILE.gz,
 *   or both (then FILE is compressed again at the next start), never
 *   neither; a FILE.gz.tmp it leaves is removed at the next start.  A job
 *   holds copies of its names, so the file that queued it may be closed
 *   first; sluiced's last uv_run lets jobs in flight finish.
 *
 * DIAGNOSTICS
 *   A compression that fails keeps FILE and says why on stderr.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "engine.h"
#include "evfile.h"

#define CHUNK (64u << 10)

struct gz_job {
    uv_work_t req;
    char *what;
    char *src;
    int err;            /* 0 or -errno */
    char step[32];      /* what failed */
};

/* The directory of path, fsynced; 0 or -errno. */
static int sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1
                 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = fsync(fd) ? -errno : 0;
    close(fd);
    return err;
}

/* src into src.gz (see above); 0 or -errno with the step in step. */
static int compress_file(const char *src, char *step, size_t steplen)
{
    char tmp[4200], dst[4200];
    snprintf(tmp, sizeof tmp, "%s.gz.tmp", src);
    snprintf(dst, sizeof dst, "%s.gz", src);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(step, steplen, "reading");
        return -errno;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int dupd = out < 0 ? -1 : dup(out);
    gzFile gz = dupd < 0 ? NULL : gzdopen(dupd, "wb6");
    int err = 0;
    char *buf = malloc(CHUNK);
    if (!gz || !buf) {
        err = out < 0 || dupd < 0 ? -errno : -ENOMEM;
        snprintf(step, steplen, "writing");
        if (gz)
            gzclose(gz);
        else if (dupd >= 0)
            close(dupd);
        goto done;
    }
    for (;;) {
        ssize_t r = read(in, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            snprintf(step, steplen, "reading");
            break;
        }
        if (r == 0)
            break;
        if (gzwrite(gz, buf, (unsigned)r) != (int)r) {
            err = -EIO;
            snprintf(step, steplen, "compressing");
            break;
        }
    }
    int zr = gzclose(gz);
    gz = NULL;
    if (!err && zr != Z_OK) {
        err = zr == Z_ERRNO ? -errno : -EIO;
        snprintf(step, steplen, "writing");
    }
    if (!err && fsync(out)) {
        err = -errno;
        snprintf(step, steplen, "fsync");
    }
    if (!err && rename(tmp, dst)) {
        err = -errno;
        snprintf(step, steplen, "renaming");
    }
    if (!err && (err = sync_dir(dst)))
        snprintf(step, steplen, "fsync of its directory");
    if (!err && unlink(src)) {
        err = -errno;
        snprintf(step, steplen, "removing");
    }
done:
    free(buf);
    if (out >= 0)
        close(out);
    close(in);
    if (err)
        unlink(tmp);
    return err;
}

/* Thread pool: the compression. */
static void gz_work(uv_work_t *req)
{
    struct gz_job *j = req->data;
    j->err = compress_file(j->src, j->step, sizeof j->step);
}

/* Loop thread: the job is done; say so if it failed. */
static void gz_done(uv_work_t *req, int status)
{
    struct gz_job *j = req->data;
    if (status)
        j->err = status;
    if (j->err)
        fprintf(stderr, "sluiced: %s: compressing %s: %s: %s (the file is "
                        "kept uncompressed)\n", j->what, j->src, j->step,
                status ? uv_strerror(status) : strerror(-j->err));
    free(j->what);
    free(j->src);
    free(j);
}

void evfile_gz(struct engine *e, const char *what, const char *file)
{
    struct gz_job *j = calloc(1, sizeof *j);
    if (j && (j->what = strdup(what)) && (j->src = strdup(file))) {
        j->req.data = j;
        snprintf(j->step, sizeof j->step, "queueing");
        if (!uv_queue_work(e->loop, &j->req, gz_work, gz_done))
            return;
    }
    fprintf(stderr, "sluiced: %s: %s stays uncompressed (out of memory)\n",
            what, file);
    if (j) {
        free(j->what);
        free(j->src);
    }
    free(j);
}

/* The length of a rotation suffix at s: ".YYYYMMDDTHHMMSSZ" and an
 * optional ".N"; 0 when s does not start with one. */
static size_t rotation_suffix(const char *s)
{
    static const char form[] = ".DDDDDDDDTDDDDDDZ";
    size_t i;
    for (i = 0; form[i]; i++)
        if (form[i] == 'D' ? !isdigit((unsigned char)s[i]) : s[i] != form[i])
            return 0;
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        i++;
        while (isdigit((unsigned char)s[i]))
            i++;
    }
    return i;
}

void evfile_gz_leftovers(struct engine *e, const char *what, const char *path)
{
    char dir[4096], full[8400];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1
                 : (int)(slash - path), path);
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base);
    struct dirent *de;
    /* first the stale .gz.tmp, then the jobs (which make new ones) */
    for (int pass = 0; pass < 2; pass++) {
        rewinddir(d);
        while ((de = readdir(d))) {
            if (strncmp(de->d_name, base, bl))
                continue;
            size_t n = rotation_suffix(de->d_name + bl);
            if (!n)
                continue;
            const char *rest = de->d_name + bl + n;
            snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
            if (pass == 0 && !strcmp(rest, ".gz.tmp"))
                unlink(full);
            else if (pass == 1 && !*rest)
                evfile_gz(e, what, full);
        }
    }
    closedir(d);
}
