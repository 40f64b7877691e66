/*
 * status_view.c - what `sluice status` shows, before it is shown: the
 * spool's queued counts and pauses merged with the live view of sluiced.
 *
 * DESCRIPTION
 *   sluiced rewrites <spool>/status.json, or the status_file of
 *   sluiced.conf (the one the tools read: tool_config_load), every second
 *   (write and rename):
 *   its pid, sessions and one object per site with connections, rate,
 *   backoff state, last error and next retry, and the domains it has seen
 *   for the site.  A file older than TOOL_STATUS_STALE_MS (by its time_ms),
 *   unreadable, or over TOOL_STATUS_MAX bytes counts as sluiced not
 *   running: the view then has no live part.
 *
 *   Rows:
 *   - one per site of status.json; its queued count is the sum of the
 *     spool's queued counters over the site's domains;
 *   - one per domain with queued mail that no live row covers;
 *   - a paused domain always has its own row, and its mail is not counted
 *     in its site's row;
 *   - a paused site sluiced does not describe gets a row whose queued
 *     count is unknown (the spool does not know which domains it covers).
 *   A pause marks the row of the same kind and name.  The pauses that
 *   incidents hold (a campaign, an account or a site paused by a rule's
 *   action) are listed too (incident_pause.c).
 *
 * DIAGNOSTICS
 *   Spool errors end the load with the tool's exit code and a message; a
 *   bad status.json only empties the live part (why_not says why).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "tool_admin.h"

/* A domain with queued mail in the spool. */
struct status_dom {
    char *name;
    uint64_t queued;
    const struct queue_control *pause;
    bool in_row;                 /* counted in some row already */
};

struct collect {
    struct status_view *v;
    size_t cap;
    int err;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Room for one more element after n in arr (capacity *cap, elements of
 * size sz): arr itself or a larger copy, NULL when out of memory (arr is
 * then unchanged). */
static void *grow(void *arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *np = realloc(arr, ncap * sz);
    if (np)
        *cap = ncap;
    return np;
}

/* queue_domains callback: keep domains with queued mail. */
static int collect_dom(void *arg, const char *d, const struct queue_counts *c)
{
    struct collect *cl = arg;
    struct status_view *v = cl->v;
    struct status_dom *doms;
    if (!c->queued)
        return 0;
    if (!(doms = grow(v->doms, v->ndoms, &cl->cap, sizeof *doms))) {
        cl->err = -ENOMEM;
        return 1;
    }
    v->doms = doms;
    if (!(doms[v->ndoms].name = strdup(d))) {
        cl->err = -ENOMEM;
        return 1;
    }
    v->doms[v->ndoms].queued = c->queued;
    v->doms[v->ndoms].pause = NULL;
    v->doms[v->ndoms++].in_row = false;
    return 0;
}

/* queue_controls callback: keep every pause still holding (one past its
 * end, `pause --for`, holds nothing). */
static int collect_ctl(void *arg, const struct queue_control *c)
{
    struct collect *cl = arg;
    struct status_view *v = cl->v;
    if (!queue_control_active(c, v->now_ms / 1000))
        return 0;
    struct queue_control *ctls = grow(v->ctls, v->nctls, &cl->cap,
                                      sizeof *ctls);
    if (!ctls) {
        cl->err = -ENOMEM;
        return 1;
    }
    v->ctls = ctls;
    ctls[v->nctls++] = *c;
    return 0;
}

static int dom_cmp(const void *a, const void *b)
{
    return strcmp(((const struct status_dom *)a)->name,
                  ((const struct status_dom *)b)->name);
}

/* The spool's entry for domain (case-insensitive), or NULL. */
static struct status_dom *find_dom(struct status_view *v, const char *domain)
{
    char low[QUEUE_MAX_CTL_NAME + 1];
    size_t n = strlen(domain);
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)domain[i]);
    struct status_dom key = { .name = low };
    return v->ndoms ? bsearch(&key, v->doms, v->ndoms, sizeof *v->doms,
                              dom_cmp) : NULL;
}

/* Read the spool's side: queued domains and pauses. */
static int load_spool(struct status_view *v, struct tool_ctx *ctx)
{
    struct queue *q;
    struct collect cl = { .v = v };
    int rc = tool_open_spool(ctx, QUEUE_OPEN_READONLY, &q);
    if (rc)
        return rc;
    long n = queue_domains(q, collect_dom, &cl);
    if (n >= 0 && !cl.err) {
        cl.cap = 0;
        n = queue_controls(q, collect_ctl, &cl);
    }
    if (n >= 0 && !cl.err) {
        int perr = tool_incident_pauses(q, &v->pauses, &v->npauses);
        if (perr)
            n = perr;
    }
    queue_close(q);
    int err = n < 0 ? (int)n : cl.err;
    if (err) {
        fprintf(stderr, "sluice status: %s: %s\n", ctx->spool,
                queue_strerror(err));
        return tool_exit_for(err);
    }
    if (v->ndoms)   /* no array at all for an empty spool */
        qsort(v->doms, v->ndoms, sizeof *v->doms, dom_cmp);
    for (size_t i = 0; i < v->nctls; i++) {
        struct status_dom *d;
        if (v->ctls[i].kind == QUEUE_CTL_DOMAIN &&
            (d = find_dom(v, v->ctls[i].name)))
            d->pause = &v->ctls[i];
    }
    return 0;
}

/* Read all of fd, at most cap bytes, into a new buffer; NULL with errno
 * set on failure.  *len gets the size. */
static char *read_capped(int fd, size_t cap, size_t *len)
{
    char *buf = malloc(cap + 1);
    *len = 0;
    while (buf && *len < cap) {
        ssize_t r = read(fd, buf + *len, cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        *len += (size_t)r;
    }
    return buf;
}

/* Read the live view at path (at most TOOL_STATUS_MAX bytes; called name
 * in messages) into v->doc if fresh; otherwise say why in v->why_not (""
 * when it is missing). */
static void load_live(struct status_view *v, const char *path,
                      const char *name)
{
    struct stat st;
    json_error_t je;
    size_t len;
    v->age_ms = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            snprintf(v->why_not, sizeof v->why_not, "%.200s: %s",
                     name, strerror(errno));
        return;
    }
    const char *bad = NULL;
    if (fstat(fd, &st))
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if ((uint64_t)st.st_size > TOOL_STATUS_MAX)
        bad = "larger than the 64 MB cap";
    /* sluiced replaces the file by rename, never rewrites it: the size
     * read here holds for this open file */
    char *buf = bad ? NULL : read_capped(fd, (size_t)st.st_size, &len);
    if (!bad && !buf)
        bad = strerror(errno);
    close(fd);
    json_t *doc = buf ? json_loadb(buf, len, 0, &je) : NULL;
    free(buf);
    if (!bad && !doc)
        bad = je.text;
    else if (!bad && !json_is_object(doc))
        bad = "not a JSON object";
    if (bad) {
        snprintf(v->why_not, sizeof v->why_not, "%.200s: %s", name,
                 bad);
        json_decref(doc);
        return;
    }
    json_t *t = json_object_get(doc, "time_ms");
    int64_t when = json_is_integer(t) ? (int64_t)json_integer_value(t)
                                      : (int64_t)st.st_mtime * 1000;
    v->age_ms = v->now_ms - when;
    if (v->age_ms > TOOL_STATUS_STALE_MS || v->age_ms < -TOOL_STATUS_STALE_MS) {
        snprintf(v->why_not, sizeof v->why_not, "%.200s is %llds old",
                 name, (long long)(v->age_ms / 1000));
        json_decref(doc);
        return;
    }
    v->doc = doc;
}

/* Append a row; NULL when out of memory. */
static struct status_row *add_row(struct status_view *v, size_t *cap,
                                  const char *name, int kind)
{
    struct status_row *rows = grow(v->rows, v->nrows, cap, sizeof *rows);
    if (!rows)
        return NULL;
    v->rows = rows;
    struct status_row *r = &rows[v->nrows++];
    *r = (struct status_row){ .name = name, .kind = kind,
                              .queued_known = true };
    return r;
}

/* The pause of kind and name, marking it used; NULL if not paused. */
static const struct queue_control *find_pause(struct status_view *v,
                                              bool *used, int kind,
                                              const char *name)
{
    for (size_t i = 0; i < v->nctls; i++)
        if (v->ctls[i].kind == kind && !strcmp(v->ctls[i].name, name)) {
            used[i] = true;
            return &v->ctls[i];
        }
    return NULL;
}

/* Count one domain into a row: once, in the first row listing it; a
 * site row leaves paused domains out. */
static void count_dom(struct status_view *v, struct status_row *r,
                      const char *domain)
{
    struct status_dom *d = find_dom(v, domain);
    if (!d || d->in_row || (r->kind == QUEUE_CTL_SITE && d->pause))
        return;
    r->queued += d->queued;
    d->in_row = true;
}

/* Build the rows (see DESCRIPTION); -ENOMEM on failure. */
static int merge(struct status_view *v)
{
    size_t cap = 0;
    bool *used = calloc(v->nctls + 1, sizeof *used);
    json_t *sites = v->doc ? json_object_get(v->doc, "sites") : NULL;
    size_t i;
    json_t *s;
    struct status_row *r;

    if (!used)
        return -ENOMEM;
    json_array_foreach(sites, i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *kind = json_string_value(json_object_get(s, "kind"));
        json_t *doms = json_object_get(s, "domains"), *d;
        size_t k;
        if (!json_is_object(s) || !name || !*name)
            continue;
        int kd = kind && !strcmp(kind, "domain") ? QUEUE_CTL_DOMAIN
                                                 : QUEUE_CTL_SITE;
        if (!(r = add_row(v, &cap, name, kd)))
            goto nomem;
        r->live = s;
        r->pause = find_pause(v, used, kd, name);
        if (kd == QUEUE_CTL_DOMAIN && json_array_size(doms) == 0)
            count_dom(v, r, name);
        json_array_foreach(doms, k, d)
            if (json_is_string(d))
                count_dom(v, r, json_string_value(d));
    }
    for (i = 0; i < v->ndoms; i++) {
        struct status_dom *d = &v->doms[i];
        if (d->in_row)
            continue;
        if (!(r = add_row(v, &cap, d->name, QUEUE_CTL_DOMAIN)))
            goto nomem;
        r->queued = d->queued;
        r->pause = find_pause(v, used, QUEUE_CTL_DOMAIN, d->name);
    }
    for (i = 0; i < v->nctls; i++) {
        if (used[i])
            continue;
        if (!(r = add_row(v, &cap, v->ctls[i].name, v->ctls[i].kind)))
            goto nomem;
        r->pause = &v->ctls[i];
        r->queued_known = v->ctls[i].kind == QUEUE_CTL_DOMAIN;
    }
    free(used);
    return 0;
nomem:
    free(used);
    return -ENOMEM;
}

/* Where sluiced writes the live view: status_file of sluiced.conf (read
 * with the engine's parser, tool_config_load), else SPOOL/status.json.
 * 0 or an exit code after saying why. */
static int live_path(struct tool_ctx *ctx, char *path, size_t cap,
                     bool *configured)
{
    struct config cfg;
    bool loaded;
    int rc = tool_config_load(ctx, "sluice status", NULL, &cfg, &loaded);
    if (rc)
        return rc;
    *configured = loaded && cfg.status_file;
    int n = *configured ? snprintf(path, cap, "%s", cfg.status_file)
                        : snprintf(path, cap, "%s/%s", ctx->spool,
                                   TOOL_STATUS_FILE);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "sluice status: %s: the file name is too long\n",
                *configured ? "status_file" : ctx->spool);
        rc = *configured ? TOOL_EX_CONFIG : TOOL_EX_USAGE;
    }
    if (loaded)
        config_free(&cfg);
    return rc;
}

int status_view_load(struct status_view *v, struct tool_ctx *ctx)
{
    char path[4096];
    bool configured = false;
    memset(v, 0, sizeof *v);
    v->now_ms = wall_ms();
    int rc = live_path(ctx, path, sizeof path, &configured);
    if (!rc)
        rc = load_spool(v, ctx);
    if (rc) {
        status_view_free(v);
        return rc;
    }
    load_live(v, path, configured ? path : TOOL_STATUS_FILE);
    if (merge(v)) {
        fprintf(stderr, "sluice status: out of memory\n");
        status_view_free(v);
        return TOOL_EX_OSERR;
    }
    return 0;
}

void status_view_free(struct status_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->ndoms; i++)
        free(v->doms[i].name);
    free(v->doms);
    free(v->ctls);
    free(v->pauses);
    free(v->rows);
    json_decref(v->doc);
    memset(v, 0, sizeof *v);
}
