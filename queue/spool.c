/*
 * spool.c - open, check, size and close a spool directory.
 *
 * DESCRIPTION
 *   Owns the LMDB environment: opening with the durable defaults (no
 *   MDB_NOSYNC unless asked, never MDB_WRITEMAP), clearing stale reader
 *   slots, the claim lock file, read transactions under the map lock, map
 *   growth up to the configured ceiling, and the spool facts for status.
 *
 *   Who may create: QUEUE_OPEN_CREATE makes a spool in a directory that
 *   does not exist or is empty (but for the tools' side files: dkim/,
 *   status.json, quarantine/).  A directory whose data.mdb is missing or
 *   empty while lock.mdb or claim.lock is there (or the empty data.mdb
 *   itself) is a spool that lost its data: refused as damaged unless
 *   QUEUE_OPEN_RECREATE asks to start over.
 *
 * DIAGNOSTICS
 *   A spool the caller may not read (the directory, or data.mdb) gives
 *   -EACCES, never "no spool here"; a directory that is not a spool gives
 *   QUEUE_EFOREIGN, damaged files
 *   (also an empty data.mdb, or a missing one beside lock.mdb)
 *   QUEUE_ECORRUPT, a newer spool QUEUE_ESCHEMA; queue_last_detail() names
 *   the path and the reason.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "queue_int.h"

static const uint32_t default_retry[] = { 300, 600, 1200, 2400, 3600, 7200,
                                          14400 };

/* Fill in defaults for every option left at zero. */
static void options_defaults(struct queue_options *o)
{
    if (!o->map_size)
        o->map_size = 64ull << 20;
    if (!o->map_max)
        o->map_max = 64ull << 30;
    if (o->map_size > o->map_max)
        o->map_size = o->map_max;
    if (!o->group_ops)
        o->group_ops = 4096;
    if (!o->group_ms)
        o->group_ms = 5;
    if (!o->max_pending)
        o->max_pending = 65536;
    if (o->max_pending < o->group_ops)
        o->max_pending = o->group_ops;
    if (!o->retry_steps || o->retry_steps > QUEUE_MAX_RETRY_STEPS) {
        o->retry_steps = sizeof default_retry / sizeof default_retry[0];
        memcpy(o->retry, default_retry, sizeof default_retry);
    }
    if (o->max_age <= 0)
        o->max_age = 5 * 86400;
}

/* Create DIR and its parents with mode 0700. */
static int mkdirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) && errno != EEXIST)
        return -errno;
    return 0;
}

/* Files the spool's tools keep beside the database (sluiced's live view
 * and its spare, the DKIM key store, the feedback quarantine): they may
 * come before the spool (`sluice dkim keygen`) and say nothing about it. */
static bool spool_side_file(const char *name)
{
    static const char *const names[] = { "status.json", "status.json.tmp",
                                         "dkim", "quarantine" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return true;
    return false;
}

/* What a directory without a usable data.mdb holds. */
enum dir_kind { DIR_EMPTY, DIR_SPOOL_TRACES, DIR_FOREIGN, DIR_UNREADABLE };

/* Classify DIR: nothing of a spool's database (empty, or only the side
 * files), the traces an LMDB environment leaves (lock.mdb, claim.lock, an
 * empty data.mdb: a spool whose data is gone), or something else. */
static enum dir_kind dir_classify(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    enum dir_kind kind = DIR_EMPTY;
    if (!d)
        return errno == ENOENT ? DIR_EMPTY : DIR_UNREADABLE;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            spool_side_file(e->d_name))
            continue;
        if (!strcmp(e->d_name, "data.mdb") || !strcmp(e->d_name, "lock.mdb") ||
            !strcmp(e->d_name, "claim.lock")) {
            kind = DIR_SPOOL_TRACES;
            continue;
        }
        kind = DIR_FOREIGN;
        break;
    }
    closedir(d);
    return kind;
}

/* Check the directory before LMDB sees it; creates it if asked.
 *
 * A data.mdb that is missing or empty is where LMDB would quietly start a
 * new, empty environment.  That is right only for a directory that holds
 * nothing yet (or does not exist) and a caller that creates; beside the
 * traces of an environment (lock.mdb, claim.lock) it means the spool's data is
 * gone (a failed copy, a disk full at creation), and only an explicit
 * re-initialisation (QUEUE_OPEN_RECREATE) may start over there.  Two
 * programs creating the same new spool at the very same moment may see
 * each other's empty data.mdb for an instant; the loser is refused and
 * succeeds when run again. */
static int check_dir(const char *dir, bool create, bool recreate)
{
    struct stat st;
    char path[4096];

    if (stat(dir, &st)) {
        if (errno != ENOENT || !create) {
            int err = -errno;
            queue_set_detail("%s: %s", dir, strerror(errno));
            return err;
        }
        int err = mkdirs(dir);
        if (err)
            queue_set_detail("%s: cannot create: %s", dir, strerror(-err));
        return err;
    }
    if (!S_ISDIR(st.st_mode)) {
        queue_set_detail("%s: not a directory", dir);
        return QUEUE_EFOREIGN;
    }
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    bool missing = stat(path, &st) != 0;
    if (missing && errno != ENOENT) {
        /* EACCES: a directory the caller may not search is no "no spool" */
        int err = -errno;
        queue_set_detail("%s: %s", path, strerror(errno));
        return err;
    }
    if (!missing && !S_ISREG(st.st_mode)) {
        queue_set_detail("%s: data.mdb is not a regular file", dir);
        return QUEUE_EFOREIGN;
    }
    if (!missing && st.st_size > 0)
        return 0;
    switch (dir_classify(dir)) {
    case DIR_UNREADABLE: {
        int err = -errno;
        queue_set_detail("%s: %s", dir, strerror(errno));
        return err;
    }
    case DIR_EMPTY:
        if (create)
            return 0;
        queue_set_detail("%s: no spool here (no data.mdb)", dir);
        return -ENOENT;
    case DIR_FOREIGN:
        if (!missing)
            break;
        if (!create) {
            queue_set_detail("%s: no spool here (no data.mdb)", dir);
            return -ENOENT;
        }
        queue_set_detail("%s: directory holds other files; refusing to "
                         "create a spool in it", dir);
        return QUEUE_EFOREIGN;
    default:
        if (create && recreate)
            return 0;
        queue_set_detail("%s: data.mdb is %s beside the spool's lock files: "
                         "its data is gone (a failed copy or a full disk?); "
                         "restore a backup, or start an empty spool there "
                         "with 'sluice spool init' or 'sluiced --create'",
                         dir, missing ? "missing" : "empty");
        return QUEUE_ECORRUPT;
    }
    queue_set_detail("%s: data.mdb is empty: its data is gone (a failed copy "
                     "or a full disk?); restore a backup", dir);
    return QUEUE_ECORRUPT;
}

/* Take the exclusive claim lock so only one process claims deliveries. */
static int take_claim_lock(struct queue *q)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/claim.lock", q->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int err = errno == EWOULDBLOCK ? QUEUE_ELOCKED : -errno;
        close(fd);
        queue_set_detail("%s: another process holds the claim lock", q->dir);
        return err;
    }
    q->claim_fd = fd;
    return 0;
}

/* Refuse a data file shorter than the pages its meta page claims: LMDB
 * would fault (SIGBUS) reading past the end of the mapping. */
static int check_file_size(struct queue *q)
{
    MDB_envinfo ei;
    MDB_stat es;
    struct stat st;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", q->dir);
    if (stat(path, &st))
        return -errno;
    mdb_env_info(q->env, &ei);
    mdb_env_stat(q->env, &es);
    uint64_t need = (uint64_t)(ei.me_last_pgno + 1) * es.ms_psize;
    if ((uint64_t)st.st_size < need) {
        queue_set_detail("%s: data.mdb is truncated (%llu bytes, its pages "
                         "need %llu)", q->dir, (unsigned long long)st.st_size,
                         (unsigned long long)need);
        return QUEUE_ECORRUPT;
    }
    return 0;
}

int queue_open(struct queue **out, const char *dir,
               const struct queue_options *opts)
{
    struct queue *q;
    int rc, err;
    MDB_txn *txn;

    *out = NULL;
    queue_set_detail("%s", "");
    if (!dir || !*dir)
        return -EINVAL;
    if (!(q = calloc(1, sizeof *q)))
        return -ENOMEM;
    if (opts)
        q->opt = *opts;
    options_defaults(&q->opt);
    q->readonly = q->opt.flags & QUEUE_OPEN_READONLY;
    q->claim_fd = -1;
    pthread_rwlock_init(&q->maplock, NULL);
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->claim_mu, NULL);
    pthread_cond_init(&q->cond_work, NULL);
    pthread_cond_init(&q->cond_space, NULL);
    pthread_cond_init(&q->cond_idle, NULL);
    if (!(q->dir = strdup(dir))) {
        err = -ENOMEM;
        goto fail;
    }
    bool create = (q->opt.flags & QUEUE_OPEN_CREATE) && !q->readonly;
    if ((err = check_dir(dir, create,
                         create && (q->opt.flags & QUEUE_OPEN_RECREATE))))
        goto fail;
    /* before LMDB: a refused second open in this process must not open
     * and close the environment again (that drops LMDB's locks) */
    if ((q->opt.flags & QUEUE_OPEN_CLAIM) && (err = take_claim_lock(q)))
        goto fail;

    if ((rc = mdb_env_create(&q->env))) {
        err = queue_err_mdb(rc);
        goto fail;
    }
    mdb_env_set_maxdbs(q->env, 32);
    mdb_env_set_maxreaders(q->env, 256);
    mdb_env_set_mapsize(q->env, q->opt.map_size);
    unsigned flags = MDB_NOTLS;
    if (q->opt.flags & QUEUE_OPEN_NOSYNC)
        flags |= MDB_NOSYNC;
    if (q->readonly)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_open(q->env, dir, flags, 0600))) {
        err = queue_err_mdb(rc);
        if (err == QUEUE_ECORRUPT)
            queue_set_detail("%s: data.mdb is not a valid LMDB file (%s)",
                             dir, mdb_strerror(rc));
        else
            queue_set_detail("%s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    mdb_reader_check(q->env, &q->stale_readers);
    if ((err = check_file_size(q)))
        goto fail;

    /* another process may be growing the map right now: adopt its size */
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(q->env, NULL, q->readonly ? MDB_RDONLY : 0, &txn);
        if (rc != MDB_MAP_RESIZED || tries == 10)
            break;
        mdb_env_set_mapsize(q->env, 0);
    }
    if (rc) {
        err = queue_err_mdb(rc);
        goto fail;
    }
    if ((err = schema_open(q, txn, q->opt.flags & QUEUE_OPEN_CREATE))) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn))) {
        err = queue_err_mdb(rc);
        goto fail;
    }

    MDB_envinfo ei;
    mdb_env_info(q->env, &ei);
    q->map_size = ei.me_mapsize;
    if (q->map_size > q->opt.map_max)
        q->opt.map_max = q->map_size;

    if (!q->readonly && (err = writer_start(q)))
        goto fail;
    *out = q;
    return 0;
fail:
    queue_close(q);
    return err;
}

void queue_close(struct queue *q)
{
    if (!q)
        return;
    if (q->writer_running)
        writer_stop(q);
    if (q->env) {
        if (q->opt.flags & QUEUE_OPEN_NOSYNC && !q->readonly)
            mdb_env_sync(q->env, 1);
        mdb_env_close(q->env);
    }
    if (q->claim_fd >= 0)
        close(q->claim_fd);
    lease_free(&q->leases);
    hygiene_free(q);
    series_free(q);
    qaudit_cfg_free(q->audit);
    pthread_rwlock_destroy(&q->maplock);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->claim_mu);
    pthread_cond_destroy(&q->cond_work);
    pthread_cond_destroy(&q->cond_space);
    pthread_cond_destroy(&q->cond_idle);
    free(q->dir);
    free(q);
}

/* Adopt a map size grown by another process (MDB_MAP_RESIZED). */
static void adopt_map_size(struct queue *q)
{
    MDB_envinfo ei;
    pthread_rwlock_wrlock(&q->maplock);
    mdb_env_set_mapsize(q->env, 0);
    mdb_env_info(q->env, &ei);
    q->map_size = ei.me_mapsize;
    pthread_rwlock_unlock(&q->maplock);
}

int queue_read_begin(struct queue *q, MDB_txn **txn)
{
    for (int tries = 0; tries < 10; tries++) {
        pthread_rwlock_rdlock(&q->maplock);
        int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&q->maplock);
        if (rc != MDB_MAP_RESIZED)
            return queue_err_mdb(rc);
        adopt_map_size(q);
    }
    return -EAGAIN;
}

void queue_read_end(struct queue *q, MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&q->maplock);
}

/* Grow the map (writer thread, no write txn live).  QUEUE_EFULL at the
 * ceiling. */
int spool_grow(struct queue *q)
{
    if (q->map_size >= q->opt.map_max)
        return QUEUE_EFULL;
    uint64_t n = q->map_size * 2;
    if (n > q->opt.map_max)
        n = q->opt.map_max;
    pthread_rwlock_wrlock(&q->maplock);
    int rc = mdb_env_set_mapsize(q->env, n);
    if (rc == 0) {
        q->map_size = n;
        q->map_grows++;
    }
    pthread_rwlock_unlock(&q->maplock);
    return queue_err_mdb(rc);
}

/* Begin a write transaction, adopting a map resized elsewhere. */
int spool_write_begin(struct queue *q, MDB_txn **txn)
{
    for (int tries = 0; tries < 10; tries++) {
        int rc = mdb_txn_begin(q->env, NULL, 0, txn);
        if (rc == 0)
            return 0;
        if (rc != MDB_MAP_RESIZED)
            return queue_err_mdb(rc);
        adopt_map_size(q);
    }
    return -EAGAIN;
}

/* Count the entries of one database. */
static uint64_t db_entries(struct queue *q, MDB_txn *txn, int db)
{
    MDB_stat st;
    if (mdb_stat(txn, q->dbi[db], &st))
        return 0;
    return st.ms_entries;
}

/* Pages of one database's tree (0 when it cannot be read). */
static uint64_t db_pages(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;
    if (mdb_stat(txn, dbi, &st))
        return 0;
    return (uint64_t)st.ms_branch_pages + st.ms_leaf_pages +
           st.ms_overflow_pages;
}

/* Pages every tree holds: the free list's, the main one's, each named
 * database's, and the two meta pages. */
static uint64_t held_pages(struct queue *q, MDB_txn *txn)
{
    uint64_t n = 2 + db_pages(txn, 0) + db_pages(txn, 1);
    for (int i = 0; i < DB_COUNT; i++)
        if (!q->absent[i])
            n += db_pages(txn, q->dbi[i]);
    return n;
}

int queue_info(struct queue *q, struct queue_info *info)
{
    MDB_txn *txn;
    MDB_envinfo ei;
    MDB_stat es;
    struct stat st;
    struct statvfs sv;
    char path[4096];
    int err;
    uint64_t held;

    memset(info, 0, sizeof *info);
    if ((err = queue_read_begin(q, &txn)))
        return err;
    info->deliveries = db_entries(q, txn, DB_DELIVERIES);
    info->ready = db_entries(q, txn, DB_READY);
    info->events = db_entries(q, txn, DB_EVENTS);
    info->messages = db_entries(q, txn, DB_MESSAGES);
    uint64_t schema = 0;
    qmeta_get_u64(q, txn, "schema", &schema);
    qmeta_get_u64(q, txn, "next_event", &info->next_event_seq);
    info->schema = (uint32_t)schema;
    held = held_pages(q, txn);
    mdb_env_info(q->env, &ei);
    mdb_env_stat(q->env, &es);
    queue_read_end(q, txn);

    info->map_size = ei.me_mapsize;
    info->map_max = q->opt.map_max;
    info->last_page_bytes = (uint64_t)(ei.me_last_pgno + 1) * es.ms_psize;
    info->data_bytes = held * es.ms_psize;
    if (info->data_bytes > info->last_page_bytes)
        info->data_bytes = info->last_page_bytes;
    if (statvfs(q->dir, &sv) == 0) {
        info->disk_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
        info->disk_used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) *
                                sv.f_frsize;
        info->disk_free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    }
    snprintf(path, sizeof path, "%s/data.mdb", q->dir);
    if (stat(path, &st) == 0)
        info->file_bytes = (uint64_t)st.st_size;
    pthread_mutex_lock(&q->mu);
    info->commits = q->commits;
    info->ops_committed = q->ops_committed;
    info->map_grows = q->map_grows;
    pthread_mutex_unlock(&q->mu);
    info->stale_readers_cleared = q->stale_readers;
    info->nosync = !!(q->opt.flags & QUEUE_OPEN_NOSYNC);
    return 0;
}

uint32_t queue_retry_delay(const struct queue *q, unsigned attempt)
{
    if (attempt == 0)
        attempt = 1;
    if (attempt > q->opt.retry_steps)
        attempt = q->opt.retry_steps;
    return q->opt.retry[attempt - 1];
}

/* Unix seconds from the configured clock. */
int64_t spool_now(const struct queue *q)
{
    if (q->opt.clock)
        return q->opt.clock();
    return (int64_t)(queue_now_ms() / 1000);
}

/* Drop every page of the map from this process's resident set.  Reading
 * a spool through the map makes each page touched count in RSS, so an
 * engine streaming gigabytes of messages would look gigabytes large; the
 * pages stay in the page cache and fault back in (cheaply) when used
 * again.  Safe beside readers and the writer: LMDB writes with pwrite and
 * never changes a page a reader may still see. */
void queue_trim_map(struct queue *q)
{
    char path[4096], line[4608];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", q->dir);
    pthread_rwlock_rdlock(&q->maplock);
    /* LMDB does not tell where it mapped the file (me_mapaddr is only set
     * for MDB_FIXEDMAP), so find the mapping of data.mdb by its inode */
    FILE *f = stat(path, &st) ? NULL : fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        unsigned maj, min;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off,
                   &maj, &min, &ino) == 7 && ino == (unsigned long)st.st_ino &&
            makedev(maj, min) == st.st_dev)
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    if (f)
        fclose(f);
    pthread_rwlock_unlock(&q->maplock);
}
