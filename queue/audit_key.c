/*
 * audit_key.c - the audit trail's key and its checkpoint file: both kept
 * outside the spool.
 *
 * DESCRIPTION
 *   The key is a file of QUEUE_AUDIT_KEY random bytes, raw or as 64 hex
 *   digits, that only its owner may read (mode 0600, as DKIM keys): a
 *   file group or others may read is refused, with the chmod that fixes
 *   it.  Records name their key by an id derived from it (never the key
 *   itself), so a wrong key file is told apart from an edited record.
 *   queue_audit_configure() gives a handle the key and the checkpoint
 *   file; admin_run() calls qaudit_export() once a change that appended a
 *   record has committed, which appends "SEQ LINK-HEX UNIX-SECONDS\n" to
 *   the checkpoint file in one write(2) on an O_APPEND descriptor, so
 *   lines of several processes never interleave and nothing already in
 *   the file is ever rewritten.  The line comes after the commit, so the
 *   file never names a record the spool does not hold; a crash between
 *   the two costs one line, not a false alarm.  The handle's exported
 *   callback hears of the head after that (sluiced logs it).
 *
 * DIAGNOSTICS
 *   Key files: -errno, -EPERM (mode) or -EINVAL (content) with the detail
 *   set.  A checkpoint line that cannot be written does not undo the
 *   committed change: the handle's warn callback is told.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_int.h"

#define KEY QUEUE_AUDIT_KEY
#define KEY_FILE_MAX 128        /* bytes read of a key file at most */
#define LINE_MAX_CP 128         /* one checkpoint line */

/* Value of hex digit c, or -1. */
static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* 2n hex digits at s into out (n bytes); false if they are not. */
static bool unhex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);
        if (lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* Read at most cap bytes of fd into buf; the count or -errno. */
static ssize_t read_some(int fd, unsigned char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap) {
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    return (ssize_t)len;
}

int queue_audit_key_load(const char *path, unsigned char key[KEY])
{
    unsigned char buf[KEY_FILE_MAX + 1];
    struct stat st;
    int err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = -errno;
        queue_set_detail("audit_key %s: %s", path, strerror(-err));
        return err;
    }
    if (fstat(fd, &st)) {
        err = -errno;
        queue_set_detail("audit_key %s: %s", path, strerror(-err));
    } else if (!S_ISREG(st.st_mode)) {
        err = -EINVAL;
        queue_set_detail("audit_key %s: not a regular file", path);
    } else if (st.st_mode & 077) {
        err = -EPERM;
        queue_set_detail("audit_key %s: mode %04o lets group or others read "
                         "the audit key, so sluice refuses it; fix: chmod "
                         "600 %s", path, (unsigned)(st.st_mode & 07777),
                         path);
    }
    ssize_t n = err ? 0 : read_some(fd, buf, sizeof buf);
    close(fd);
    if (err)
        return err;
    if (n < 0) {
        queue_set_detail("audit_key %s: %s", path, strerror((int)-n));
        return (int)n;
    }
    size_t len = (size_t)n;
    if (len == KEY) {
        memcpy(key, buf, KEY);          /* raw */
    } else {
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
            len--;
        if (len != 2 * KEY || !unhex((const char *)buf, key, KEY)) {
            OPENSSL_cleanse(buf, sizeof buf);
            queue_set_detail("audit_key %s: not an audit key (%d bytes, or "
                             "%d hex digits: 'sluice audit keygen FILE' "
                             "makes one)", path, KEY, 2 * KEY);
            return -EINVAL;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

int queue_audit_key_create(const char *path)
{
    unsigned char key[KEY];
    char text[2 * KEY + 2];
    int err = queue_random_bytes(key, sizeof key);
    if (err) {
        queue_set_detail("audit key: no random bytes: %s", strerror(-err));
        return err;
    }
    for (int i = 0; i < KEY; i++)
        snprintf(text + 2 * i, 3, "%02x", key[i]);
    text[2 * KEY] = '\n';
    text[2 * KEY + 1] = 0;
    OPENSSL_cleanse(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = -errno;
        OPENSSL_cleanse(text, sizeof text);
        if (err == -EEXIST)
            queue_set_detail("%s exists: an audit key is never overwritten "
                             "(move it away first)", path);
        else
            queue_set_detail("%s: %s", path, strerror(-err));
        return err;
    }
    size_t len = 2 * KEY + 1;
    ssize_t w = fchmod(fd, 0600) ? -1 : write(fd, text, len);
    if (w != (ssize_t)len || fsync(fd))
        err = w < 0 || w == (ssize_t)len ? -errno : -EIO;
    if (close(fd) && !err)
        err = -errno;
    OPENSSL_cleanse(text, sizeof text);
    if (err) {
        unlink(path);
        queue_set_detail("%s: %s", path, strerror(-err));
    }
    return err;
}

void queue_audit_key_id(const unsigned char key[KEY],
                        unsigned char id[QUEUE_AUDIT_KEY_ID])
{
    static const char label[] = "sluice audit key id";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, KEY, (const unsigned char *)label,
              sizeof label - 1, mac, &len) || len < QUEUE_AUDIT_KEY_ID)
        memset(mac, 0, sizeof mac);
    memcpy(id, mac, QUEUE_AUDIT_KEY_ID);
}

void qaudit_cfg_free(struct audit_cfg *c)
{
    if (!c)
        return;
    OPENSSL_cleanse(c->key, sizeof c->key);
    free(c->checkpoint);
    free(c);
}

int queue_audit_configure(struct queue *q, const struct queue_audit_config *c)
{
    if (!c || (c->checkpoint && !*c->checkpoint)) {
        queue_set_detail("audit configuration without a key or checkpoint "
                         "path");
        return -EINVAL;
    }
    struct audit_cfg *a = calloc(1, sizeof *a);
    if (!a || (c->checkpoint && !(a->checkpoint = strdup(c->checkpoint)))) {
        free(a);
        return -ENOMEM;
    }
    if (c->key) {
        a->keyed = true;
        memcpy(a->key, c->key, KEY);
        queue_audit_key_id(a->key, a->key_id);
    }
    a->warn = c->warn;
    a->exported = c->exported;
    a->arg = c->arg;
    qaudit_cfg_free(q->audit);
    q->audit = a;
    return 0;
}

void qaudit_export(struct queue *q, const struct audit_mark *m)
{
    const struct audit_cfg *c = q->audit;
    char line[LINE_MAX_CP], why[4400];
    if (!c)
        return;
    if (!c->checkpoint) {
        if (c->exported)
            c->exported(c->arg, m->seq, m->link);
        return;
    }
    int n = snprintf(line, sizeof line, "%llu ", (unsigned long long)m->seq);
    for (int i = 0; i < QUEUE_AUDIT_HASH; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%02x", m->link[i]);
    n += snprintf(line + n, sizeof line - (size_t)n, " %lld\n",
                  (long long)(m->time_ms / 1000));
    int err = 0;
    int fd = open(c->checkpoint, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0640);
    if (fd < 0) {
        err = errno;
    } else {
        ssize_t w = write(fd, line, (size_t)n);
        if (w != n)
            err = w < 0 ? errno : ENOSPC;
        if (close(fd) && !err)
            err = errno;
    }
    if (err && c->warn) {
        snprintf(why, sizeof why, "audit checkpoint %s: %s: record %llu is "
                 "committed, but its head is not checkpointed",
                 c->checkpoint, strerror(err), (unsigned long long)m->seq);
        c->warn(c->arg, why);
    }
    if (c->exported)
        c->exported(c->arg, m->seq, m->link);
}

int queue_audit_checkpoint_parse(const char *line, uint64_t *seq,
                                 unsigned char head[QUEUE_AUDIT_HASH])
{
    const char *p = line;
    unsigned long long v = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (unsigned)(*p - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (!v || (*p != ' ' && *p != '\t'))
        return -EINVAL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!unhex(p, head, QUEUE_AUDIT_HASH))  /* stops at a NUL */
        return -EINVAL;
    p += 2 * QUEUE_AUDIT_HASH;
    if (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        return -EINVAL;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p >= '0' && *p <= '9')      /* the time, not checked */
        p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p)
        return -EINVAL;
    *seq = v;
    return 0;
}
