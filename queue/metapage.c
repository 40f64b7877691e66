/*
 * metapage.c - LMDB's two meta pages: find a damaged one, and make a copy
 * of the data file with it replaced by the other.
 *
 * DESCRIPTION
 *   An LMDB file begins with two meta pages that each name the roots of
 *   the trees; LMDB writes them in turn and opens the newer one.  It also
 *   refuses the whole file (MDB_INVALID) when either of them is damaged,
 *   although the other one still leads to every record.  Salvage therefore
 *   reads a copy of the file whose damaged meta page is replaced by the
 *   intact one, so one bad sector at the start of the file costs nothing.
 *
 *   This is the only place that reads LMDB's on-disk format itself: the
 *   page header (16 bytes: page number, pad, flags at offset 10) and the
 *   start of the meta record after it (magic 0xBEEFC0DE, version 1, the
 *   page size in the free database's pad at offset 40), as LMDB 0.9 writes
 *   them.  A file of another layout is left to LMDB to refuse.
 *
 * DIAGNOSTICS
 *   -errno for files that cannot be read or written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_int.h"

#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1u
#define PAGE_HDR 16
#define P_META_FLAG 0x08

/* Whether buf (a page read at page number pgno) is a meta page LMDB would
 * accept; its page size in *psize. */
static bool meta_ok(const unsigned char *buf, size_t len, uint32_t *psize)
{
    uint16_t flags;
    uint32_t magic, version;
    if (len < PAGE_HDR + 48)
        return false;
    memcpy(&flags, buf + 10, 2);
    memcpy(&magic, buf + PAGE_HDR, 4);
    memcpy(&version, buf + PAGE_HDR + 4, 4);
    memcpy(psize, buf + PAGE_HDR + 24, 4);
    return (flags & P_META_FLAG) && magic == META_MAGIC &&
           version == META_VERSION && *psize >= 512 && *psize <= 65536 &&
           !(*psize & (*psize - 1));
}

int metapage_probe(const char *path, int *bad, uint32_t *psize)
{
    unsigned char buf[4096];
    uint32_t ps0 = 0, ps1 = 0;
    *bad = -1;
    *psize = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    bool ok0 = n > 0 && meta_ok(buf, (size_t)n, &ps0);
    /* page 1 lies one page further: its size from page 0, else the
     * usual 4096 */
    uint32_t at = ok0 ? ps0 : 4096;
    n = pread(fd, buf, sizeof buf, at);
    bool ok1 = n > 0 && meta_ok(buf, (size_t)n, &ps1) &&
               (!ok0 || ps1 == ps0);
    close(fd);
    if (ok0 && ok1)
        *psize = ps0;
    else if (ok0 || ok1) {
        *bad = ok0 ? 1 : 0;
        *psize = ok0 ? ps0 : ps1;
    } else
        *bad = 2;
    return 0;
}

int metapage_copy_fixed(const char *from, const char *to, int bad,
                        uint32_t psize)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int err = -errno;
        close(in);
        return err;
    }
    int err = 0;
    size_t cap = 1u << 20;
    unsigned char *buf = malloc(cap);
    unsigned char *good = malloc(psize);
    if (!buf || !good)
        err = -ENOMEM;
    for (off_t off = 0; !err;) {
        ssize_t n = pread(in, buf, cap, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = -errno;
        if (n <= 0)
            break;
        for (ssize_t w = 0; w < n && !err;) {
            ssize_t k = pwrite(out, buf + w, (size_t)(n - w), off + w);
            if (k < 0 && errno != EINTR)
                err = -errno;
            else if (k > 0)
                w += k;
        }
        off += n;
    }
    /* the intact meta page over the damaged one, with its page number */
    if (!err && pread(in, good, psize, (off_t)(bad ? 0 : psize)) !=
                    (ssize_t)psize)
        err = -EIO;
    if (!err) {
        uint64_t pgno = (uint64_t)bad;
        memcpy(good, &pgno, sizeof pgno);
        if (pwrite(out, good, psize, (off_t)bad * psize) != (ssize_t)psize)
            err = -errno;
    }
    if (!err && fsync(out))
        err = -errno;
    free(buf);
    free(good);
    close(in);
    if (close(out) && !err)
        err = -errno;
    if (err)
        unlink(to);
    return err;
}
