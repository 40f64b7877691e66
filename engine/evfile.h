/*
 * evfile.h - a file fed by a cursor over the spool's events (evfile.c):
 * the machinery the event log and the accounting files share: resume
 * after kill -9, whole lines only, the cursor, rotation with compressed
 * rotated files (evfile_gz.c), and a reopen by name (SIGUSR1).
 */
#ifndef SLUICE_EVFILE_H
#define SLUICE_EVFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evstream.h"
#include "queue.h"

struct engine;
struct evfile;

/* What format() returns for an event the file leaves out. */
#define EVFILE_SKIP ((size_t)-1)

/* What makes one file's lines. */
struct evfile_ops {
    /* One whole line of the file (without its newline), read back at
     * open: 1 with *seq when it holds an event's seq, 0 when it holds
     * none (look further back), 2 when it is a line of an older format
     * (stop: the file has no seq), ENGINE_E_LOGDATA when it is damaged. */
    int (*line_seq)(void *arg, const char *line, size_t n, uint64_t *seq);
    /* The event's line, its newline included, into buf: its length, 0
     * when it does not fit in room, EVFILE_SKIP when it has no line. */
    size_t (*format)(void *arg, struct evstream_event *x, char *buf,
                     size_t room);
    const char *line_form;  /* what a line is, for "is not ..." */
};

struct evfile_spec {
    const char *what;      /* "event log", "accounting file NAME" */
    const char *path;
    const char *cursor;    /* the spool cursor's name */
    const char *header;    /* the first line of a new file, or NULL */
    struct config_rotate rotate;
    const struct evfile_ops *ops;
    void *arg;
};

/* Open (create) and lock the file, cut a torn last line, decide where it
 * resumes (evfile.c's rule) given the spool's newest seq.  0, -errno or
 * ENGINE_E_LOGDATA, the reason in err. */
int evfile_open(struct evfile **out, struct engine *e,
                const struct evfile_spec *spec, uint64_t newest, char *err,
                size_t errlen);

/* Whether lines may be added now: the file is not waiting after a failed
 * write, nor for its cursor before a rotation or reopen (which it does
 * here).  all: stopping (no rotation; a failed write is tried at once). */
bool evfile_ready(struct evfile *f, bool all);

/* The event's line into the batch (an event at or before the last one
 * taken is passed over): 0, or 1 when the batch is full. */
int evfile_add(struct evfile *f, struct evstream_event *x);

/* Write the batch: the bytes written (0: none), or a negative code (the
 * file is cut back to its last whole line and waits a second). */
long evfile_flush(struct evfile *f);

/* The seq of the last event the file has taken (written or left out). */
uint64_t evfile_written(const struct evfile *f);

/* A whole line that is not a spool event (n bytes, newline included). */
int evfile_line(struct evfile *f, const char *line, size_t n);

/* Save the cursor when the file is ahead of it (one save in flight). */
void evfile_save(struct evfile *f);

/* Take the events after the file's last (evstream_from()) and write
 * them (a consumer with nothing else to do per event): up to a few
 * batches, all when all. */
void evfile_pump(struct evfile *f, bool all);

/* SIGUSR1: open the file by name again at the next evfile_ready(). */
void evfile_reopen(struct evfile *f);

/* The last lines are the caller's: fdatasync, save the cursor, close. */
void evfile_close(struct evfile *f);

/* evfile_gz.c: compress a rotated file to FILE.gz on the loop's thread
 * pool (FILE.gz.tmp, fsync, rename, then FILE unlinked); what names the
 * file's owner in messages.  evfile_gz_leftovers(): the rotated files of
 * path a crash left uncompressed are compressed, stale .gz.tmp removed. */
void evfile_gz(struct engine *e, const char *what, const char *file);
void evfile_gz_leftovers(struct engine *e, const char *what,
                         const char *path);

#endif
