/*
 * config_file.c - sluiced.conf as a file: its lines, the keys it gave, and
 * the files and directories its keys name.
 *
 * DESCRIPTION
 *   libinih reads lines into a fixed buffer (200 bytes in Debian's build)
 *   and would cut a longer line in two, numbering the rest as a line of
 *   its own; it stops at a NUL byte and reads the line on as if it ended
 *   there; and it cuts section names to 49 bytes.  config_read_line()
 *   reads the lines itself and stops, with the line number, at each of
 *   these, so nothing in the file is silently lost or misplaced.
 *
 *   The table of keys seen makes a key given twice in one section an
 *   error (libinih calls the handler once per line and would let the last
 *   one win).  config_check_paths() opens what the keys name, so -t finds
 *   a missing CA file or key directory before the daemon needs it, and
 *   loads the audit key (refused when group or others may read it), which
 *   like the audit checkpoint must lie outside the spool.
 *
 * DIAGNOSTICS
 *   Reasons are one line; the caller adds FILE:LINE.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "config_int.h"
#include "queue_admin.h"
#include "tls.h"

/* Stop reading with a reason at line. */
static char *stop(struct config_reader *r, int line, const char *why)
{
    snprintf(r->err, sizeof r->err, "%s", why);
    r->err_line = line;
    return NULL;
}

/* Is the line in buf a [section] line to libinih, and is its name longer
 * than libinih keeps?  (An indented line after a key is a value.) */
static bool section_too_long(struct config_reader *r, const char *buf)
{
    const char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    if (*s != '[' || (r->indented && r->after_key))
        return false;
    r->after_key = false;
    const char *end = strchr(s + 1, ']');
    size_t n = end ? (size_t)(end - s - 1) : strlen(s + 1);
    return n >= CONFIG_INIH_MAX_SECTION;
}

char *config_read_line(char *buf, int size, void *stream)
{
    struct config_reader *r = stream;
    int n = 0, ch;
    char why[128];

    if (r->err[0] || size < 2)
        return NULL;
    while ((ch = getc(r->f)) != EOF && ch != '\n') {
        if (ch == 0)
            return stop(r, r->line + 1, "a NUL byte (a config file is text)");
        if (n == size - 1) {
            snprintf(why, sizeof why, "line longer than %d characters",
                     size - 1);
            return stop(r, r->line + 1, why);
        }
        buf[n++] = (char)ch;
    }
    if (ch == EOF && ferror(r->f)) {
        snprintf(why, sizeof why, "read error: %s", strerror(errno));
        return stop(r, r->line + 1, why);
    }
    if (ch == EOF && n == 0)
        return NULL;
    buf[n] = 0;
    r->line++;
    r->indented = isspace((unsigned char)buf[0]);
    if (section_too_long(r, buf)) {
        snprintf(why, sizeof why, "section name longer than %d characters",
                 CONFIG_INIH_MAX_SECTION - 1);
        return stop(r, r->line, why);
    }
    return buf;
}

bool config_reader_continues(const struct config_reader *r)
{
    return r->indented && r->after_key;
}

/* One key seen: "section\nkey" (section lowercased, blanks squeezed). */
struct seen_key {
    int line;
    char name[];
};

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const struct seen_key *)a)->name,
                  ((const struct seen_key *)b)->name);
}

/* A fresh entry for section and key, or NULL when out of memory. */
static struct seen_key *seen_new(const char *section, const char *key,
                                 int line)
{
    size_t sl = strlen(section), kl = strlen(key);
    struct seen_key *k = malloc(sizeof *k + sl + kl + 2);
    if (!k)
        return NULL;
    k->line = line;
    size_t o = 0;
    for (const char *s = section; *s; s++) {
        if (isspace((unsigned char)*s)) {
            if (o && k->name[o - 1] != ' ' && s[1])
                k->name[o++] = ' ';
            continue;
        }
        k->name[o++] = (char)tolower((unsigned char)*s);
    }
    k->name[o++] = '\n';
    memcpy(k->name + o, key, kl + 1);
    return k;
}

int config_seen_add(struct config_seen *s, const char *section,
                    const char *key, int line)
{
    struct seen_key *k = seen_new(section, key, line);
    if (!k)
        return -ENOMEM;
    struct seen_key **found = tfind(k, &s->root, seen_cmp);
    if (found) {
        free(k);
        return (*found)->line;
    }
    if (s->n == CONFIG_MAX_KEYS) {
        free(k);
        return -E2BIG;
    }
    if (!tsearch(k, &s->root, seen_cmp)) {
        free(k);
        return -ENOMEM;
    }
    s->n++;
    return 0;
}

int config_seen_line(const struct config_seen *s, const char *section,
                     const char *key)
{
    struct seen_key *k = seen_new(section, key, 0);
    if (!k)
        return 0;
    struct seen_key **found = tfind(k, &s->root, seen_cmp);
    free(k);
    return found ? (*found)->line : 0;
}

void config_seen_free(struct config_seen *s)
{
    tdestroy(s->root, free);
    s->root = NULL;
    s->n = 0;
}

/* Is path a file we may open for reading?  0 or -errno. */
static int readable_file(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    close(fd);
    return rc;
}

/* Is path (or, with parent, the directory it is in) a directory?  0 or
 * -errno. */
static int is_directory(const char *path, bool parent)
{
    char dir[4096];
    struct stat st;
    if (parent) {
        const char *slash = strrchr(path, '/');
        size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir)
            return -ENAMETOOLONG;
        memcpy(dir, slash ? path : ".", n);
        dir[n] = 0;
        path = dir;
    }
    if (stat(path, &st))
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The real directory of path (with parent: of the directory path is in),
 * or, when it does not resolve, the name as given; 0 or -ENAMETOOLONG. */
static int real_dir(const char *path, bool parent, char out[PATH_MAX])
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (parent) {
        const char *slash = strrchr(path, '/');
        n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
        if (!slash)
            path = ".";
    }
    if (n >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = 0;
    if (!realpath(dir, out))
        memcpy(out, dir, n + 1);
    return 0;
}

/* Is file (a file name) inside the spool directory? */
static bool in_spool(const char *spool, const char *file)
{
    char sd[PATH_MAX], fd[PATH_MAX];
    if (!spool || real_dir(spool, false, sd) || real_dir(file, true, fd))
        return false;
    size_t n = strlen(sd);
    while (n > 1 && sd[n - 1] == '/')
        sd[--n] = 0;
    return !strncmp(fd, sd, n) && (fd[n] == 0 || fd[n] == '/');
}

/* The audit key loads, and it and the checkpoint lie outside the spool. */
static int check_audit_paths(const struct config *c,
                             const struct config_seen *s, char *err,
                             size_t errlen, int *line)
{
    unsigned char key[QUEUE_AUDIT_KEY];
    int rc;
    if (c->audit_key) {
        *line = config_seen_line(s, "sluiced", "audit_key");
        if (queue_audit_key_load(c->audit_key, key)) {
            snprintf(err, errlen, "%s", queue_last_detail());
            return -1;
        }
        OPENSSL_cleanse(key, sizeof key);
        if (in_spool(c->spool, c->audit_key)) {
            snprintf(err, errlen, "audit_key: %s is inside the spool: keep "
                     "it outside (whoever copies or writes the spool would "
                     "hold the key too)", c->audit_key);
            return -1;
        }
    }
    if (c->audit_checkpoint) {
        *line = config_seen_line(s, "sluiced", "audit_checkpoint");
        if (in_spool(c->spool, c->audit_checkpoint)) {
            snprintf(err, errlen, "audit_checkpoint: %s is inside the spool: "
                     "keep it outside (whoever rewrites the spool could "
                     "rewrite it too)", c->audit_checkpoint);
            return -1;
        }
        if ((rc = is_directory(c->audit_checkpoint, true))) {
            snprintf(err, errlen, "audit_checkpoint: the directory of %s: %s",
                     c->audit_checkpoint, strerror(-rc));
            return -1;
        }
        if (!is_directory(c->audit_checkpoint, false)) {
            snprintf(err, errlen, "audit_checkpoint: %s is a directory, not "
                     "a file", c->audit_checkpoint);
            return -1;
        }
    }
    return 0;
}

int config_check_paths(const struct config *c, const struct config_seen *s,
                       char *err, size_t errlen, int *line)
{
    int rc;
    *line = 0;
    if (check_audit_paths(c, s, err, errlen, line))
        return -1;
    if (c->tls_ca_file) {
        *line = config_seen_line(s, "sluiced", "tls_ca_file");
        if ((rc = readable_file(c->tls_ca_file))) {
            snprintf(err, errlen, "tls_ca_file: %s: %s", c->tls_ca_file,
                     strerror(-rc));
            return -1;
        }
        char why[256];
        SSL_CTX *ctx = tls_client_ctx(c->tls_ca_file, why, sizeof why);
        if (!ctx) {
            ERR_clear_error();
            snprintf(err, errlen, "tls_ca_file: %s holds no CA certificate "
                     "OpenSSL can load", c->tls_ca_file);
            return -1;
        }
        SSL_CTX_free(ctx);
    }
    if (c->dkim_keys) {
        *line = config_seen_line(s, "sluiced", "dkim_keys");
        if ((rc = is_directory(c->dkim_keys, false))) {
            snprintf(err, errlen, "dkim_keys: %s: %s", c->dkim_keys,
                     strerror(-rc));
            return -1;
        }
    }
    const struct { const char *key, *path; } files[] = {
        { "event_log", c->event_log },
        { "status_file", c->status_file },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i].path)
            continue;
        *line = config_seen_line(s, "sluiced", files[i].key);
        if ((rc = is_directory(files[i].path, true))) {
            snprintf(err, errlen, "%s: the directory of %s: %s", files[i].key,
                     files[i].path, strerror(-rc));
            return -1;
        }
        if (!is_directory(files[i].path, false)) {
            snprintf(err, errlen, "%s: %s is a directory, not a file",
                     files[i].key, files[i].path);
            return -1;
        }
    }
    *line = 0;
    return 0;
}
