/*
 * config_acct.c - the configuration of the files fed by the event
 * stream: event_log_rotate in [sluiced] and the [accounting NAME]
 * sections (path, fields, types, rotate).
 *
 * DESCRIPTION
 *   A rotation is "SIZE, TIME", either alone, in any order: SIZE is a
 *   number with B, KB, MB or GB (1024-based; 1KB at least), TIME one
 *   with s, m, h or d (1s at least).  An accounting section needs a path
 *   and fields; fields are checked here for their form only (lower-case
 *   letters, digits, '_'), and against the keys event_json() gives when
 *   sluiced opens the file (accounting.c), so a field added to the event
 *   stream later needs no change here.  types names event types
 *   (queue_event_name()).
 *
 * DIAGNOSTICS
 *   Through config_fail(): the key, the value and what was expected.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config_int.h"

#define MAX_ACCOUNTING 32   /* [accounting NAME] sections */
#define MAX_FIELDS 32       /* fields of one section (accounting.c: VALUE_MAX) */
#define MAX_FIELD_NAME 64

/* "SIZE, TIME" (either alone) into r; false when v is not that. */
static bool parse_rotate(const char *v, struct config_rotate *r)
{
    char buf[128];
    size_t n = strlen(v);
    if (n >= sizeof buf)
        return false;
    memcpy(buf, v, n + 1);
    memset(r, 0, sizeof *r);
    bool got_size = false, got_time = false;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = 0;
        uint64_t x;
        if (!got_size && config_parse_size(tok, &x) && x >= 1024) {
            r->size = x;
            got_size = true;
        } else if (!got_time && len && isalpha((unsigned char)tok[len - 1]) &&
                   !config_parse_duration_ms(tok, &x) && x >= 1000) {
            r->period_ms = x;
            got_time = true;
        } else {
            return false;
        }
    }
    return got_size || got_time;
}

int config_rotate_key(struct config_parse *p, const char *key, const char *v,
                      struct config_rotate *r)
{
    if (!parse_rotate(v, r))
        return config_fail(p, "%s: '%s' is not SIZE, TIME (either alone), "
                           "e.g. 100MB, 1d: sizes in B, KB, MB, GB (1KB at "
                           "least), times in s, m, h, d (1s at least)", key,
                           v);
    return 1;
}

/* Replace a string setting. */
static bool set_str(char **dst, const char *v)
{
    char *n = strdup(v);
    if (!n)
        return false;
    free(*dst);
    *dst = n;
    return true;
}

/* The section's entry, made when it first appears. */
static struct config_accounting *section_of(struct config_parse *p,
                                            const char *name)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->naccounting; i++)
        if (!strcmp(c->accounting[i].name, name))
            return &c->accounting[i];
    if (c->naccounting == MAX_ACCOUNTING) {
        config_fail(p, "more than %d [accounting] sections", MAX_ACCOUNTING);
        return NULL;
    }
    struct config_accounting *a = realloc(c->accounting,
                                          (c->naccounting + 1) * sizeof *a);
    if (!a) {
        config_fail(p, "out of memory");
        return NULL;
    }
    c->accounting = a;
    a = &a[c->naccounting];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name))) {
        config_fail(p, "out of memory");
        return NULL;
    }
    a->line = p->line;
    c->naccounting++;
    return a;
}

/* A field name: lower-case letters, digits and '_'. */
static bool field_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= MAX_FIELD_NAME)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
              *s == '_'))
            return false;
    return true;
}

/* fields = a, b, c into a->fields. */
static int parse_fields(struct config_parse *p, struct config_accounting *a,
                        const char *v)
{
    char *buf = strdup(v), *save = NULL;
    if (!buf)
        return config_fail(p, "out of memory");
    int ok = 1;
    for (char *tok = strtok_r(buf, ",", &save); tok && ok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = 0;
        if (!field_name_ok(tok)) {
            ok = config_fail(p, "fields: '%s' is not a field name (the "
                             "event log's keys: seq, type, rcpt, ...)", tok);
            break;
        }
        for (size_t i = 0; i < a->nfields; i++)
            if (!strcmp(a->fields[i], tok)) {
                ok = config_fail(p, "fields: '%s' is listed twice", tok);
                break;
            }
        if (!ok)
            break;
        if (a->nfields == MAX_FIELDS) {
            ok = config_fail(p, "fields: more than %d", MAX_FIELDS);
            break;
        }
        char **f = realloc(a->fields, (a->nfields + 1) * sizeof *f);
        if (!f || !(f[a->nfields] = strdup(tok))) {
            if (f)
                a->fields = f;
            ok = config_fail(p, "out of memory");
            break;
        }
        a->fields = f;
        a->nfields++;
    }
    free(buf);
    if (ok && !a->nfields)
        ok = config_fail(p, "fields: needs at least one field");
    return ok;
}

/* types = delivered, bounced into a bit mask of event types. */
static int parse_types(struct config_parse *p, struct config_accounting *a,
                       const char *v)
{
    char bad[64];
    uint32_t mask;
    if (!config_event_types(v, &mask, bad, sizeof bad))
        return config_fail(p, *bad ? "types: '%s' is not an event type "
                           "(e.g. delivered, bounced, expired, deferred)"
                           : "types: needs at least one event type%s", bad);
    a->types = mask;
    return 1;
}

int config_accounting_section(struct config_parse *p, const char *section,
                              const char *name, const char *value)
{
    const char *id = section + 11;
    bool ok = *id && strlen(id) <= 24;
    for (const char *s = id; *s && ok; s++)
        ok = islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
             *s == '_' || *s == '-';
    if (!ok)
        return config_fail(p, "[%s]: the name after accounting must be 1 to "
                           "24 of a-z, 0-9, '_', '-'", section);
    struct config_accounting *a = section_of(p, id);
    if (!a)
        return 0;
    if (!strcmp(name, "path")) {
        if (!*value)
            return config_fail(p, "path: needs a file");
        if (!set_str(&a->path, value))
            return config_fail(p, "out of memory");
        return 1;
    }
    if (!strcmp(name, "fields"))
        return parse_fields(p, a, value);
    if (!strcmp(name, "types"))
        return parse_types(p, a, value);
    if (!strcmp(name, "rotate"))
        return config_rotate_key(p, name, value, &a->rotate);
    return config_fail(p, "unknown key '%s' in [%s] (path, fields, types, "
                       "rotate)", name, section);
}

/* The directory of path exists (path itself is not one). */
static int dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    struct stat st;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir)
        return -ENAMETOOLONG;
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1
                 : (int)(slash - path), path);
    if (stat(dir, &st))
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (!stat(path, &st) && S_ISDIR(st.st_mode))
        return -EISDIR;
    return 0;
}

void config_accounting_check(struct config_parse *p)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->naccounting; i++) {
        struct config_accounting *a = &c->accounting[i];
        p->line = a->line;
        if (!a->path) {
            config_fail(p, "[accounting %s] has no path", a->name);
            return;
        }
        if (!a->nfields) {
            config_fail(p, "[accounting %s] has no fields", a->name);
            return;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(c->accounting[k].path, a->path) ||
                (c->event_log && !strcmp(c->event_log, a->path))) {
                config_fail(p, "[accounting %s]: %s is written by another "
                            "section or is the event log", a->name, a->path);
                return;
            }
        if (c->event_log && !strcmp(c->event_log, a->path)) {
            config_fail(p, "[accounting %s]: %s is the event log", a->name,
                        a->path);
            return;
        }
        int rc = dir_of(a->path);
        if (rc) {
            config_fail(p, "[accounting %s] path %s: %s", a->name, a->path,
                        rc == -EISDIR ? "is a directory, not a file"
                                      : strerror(-rc));
            return;
        }
    }
}

void config_accounting_free(struct config *c)
{
    for (size_t i = 0; i < c->naccounting; i++) {
        struct config_accounting *a = &c->accounting[i];
        free(a->name);
        free(a->path);
        for (size_t k = 0; k < a->nfields; k++)
            free(a->fields[k]);
        free(a->fields);
    }
    free(c->accounting);
    c->accounting = NULL;
    c->naccounting = 0;
}
