/*
 * errors.c - one error space for the queue library.
 *
 * DESCRIPTION
 *   Converts LMDB's return codes at the module edge into -errno values or
 *   QUEUE_E* codes, gives every code its text, and keeps a per-thread detail
 *   line for failures whose text needs numbers (schema versions, paths).
 *
 *   Every way a spool runs out of room is one code, QUEUE_EFULL: the map at
 *   its ceiling, the filesystem out of space or quota (ENOSPC, EDQUOT), and
 *   the EIO LMDB makes of a short write at commit when the filesystem has
 *   (almost) no space left.  Callers see one error, whatever the errno.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "queue_int.h"

static _Thread_local char detail[256];

/* Remember a detail line for the last failure on this thread. */
void queue_set_detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
}

/* The detail line of the last failure on this thread ("" if none). */
const char *queue_last_detail(void)
{
    return detail;
}

/* Map an LMDB return code (or positive errno) to the queue's error space. */
int queue_err_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return QUEUE_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        return QUEUE_EFULL;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_DBI:
        return QUEUE_ECORRUPT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
    case MDB_TLS_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -ENOSPC;
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    case ENOSPC:
    case EDQUOT:
        return QUEUE_EFULL;     /* the filesystem: same as the map */
    default:
        if (rc > 0)
            return -rc;
        return rc < -30999 && rc > -32000 ? rc : -EIO;
    }
}

/* Below this much free space an EIO at commit means the filesystem ran
 * out: LMDB turns a write that came up short into EIO, so the space left
 * is less than one write wanted, and one write is rarely more than a
 * message (QUEUE_MAX_MESSAGE) and its rows.  An EIO with more space free
 * stays an I/O error. */
#define LOW_SPACE (2ull * QUEUE_MAX_MESSAGE)

int queue_err_commit(const struct queue *q, int err)
{
    struct statvfs sv;
    if (err != -EIO || statvfs(q->dir, &sv))
        return err;
    /* root may write into the blocks reserved for it */
    unsigned long long blocks = geteuid() == 0 ? sv.f_bfree : sv.f_bavail;
    if (blocks < LOW_SPACE / (sv.f_frsize ? sv.f_frsize : 4096))
        return QUEUE_EFULL;
    return err;
}

int queue_err_unwritable(int err)
{
    switch (err) {
    case QUEUE_EFULL:
    case -ENOSPC:
    case -EDQUOT:
    case -EIO:
    case -EROFS:
    case -ENOMEM:
    case -EAGAIN:
        return 1;
    default:
        return 0;
    }
}

/* Whether LMDB code rc means the write transaction must be aborted. */
bool queue_err_txn_fatal(int rc)
{
    return rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST;
}

/* Text for a queue error code. */
const char *queue_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case QUEUE_EFOREIGN:
        return "not a sluice spool (the directory holds something else)";
    case QUEUE_ECORRUPT:
        return "spool is damaged (LMDB reports corrupt or invalid files)";
    case QUEUE_ESCHEMA:
        return "spool was written by a newer sluice (schema version too new)";
    case QUEUE_EFULL:
        return "spool is full (no space left on its filesystem, or the map "
               "reached map_max): nothing was written";
    case QUEUE_ENOTFOUND:
        return "no such record";
    case QUEUE_ESTATE:
        return "delivery already ended (it has its terminal event)";
    case QUEUE_ELOCKED:
        return "another process is claiming from this spool";
    case QUEUE_ESHUTDOWN:
        return "spool is closing";
    case QUEUE_ETOOBIG:
        return "value too large";
    default:
        if (err < 0 && err > -4096)
            return strerror(-err);
        return "unknown queue error";
    }
}

/* Wall clock in milliseconds. */
uint64_t queue_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
