/*
 * metrics_http.c - GET /metrics (Prometheus text exposition format 0.0.4)
 * and GET /metrics.json, answered on the HTTP thread.
 *
 * DESCRIPTION
 *   Both answers come from one walk over the families (emit_all), written
 *   by one of two back ends: text lines, or a JSON object
 *   {"metrics": {FAMILY: {"type", "help", "samples": [{"name", "labels",
 *   "value"}]}}} holding the same samples with the same names, labels and
 *   values.  Counted values come from the loop's published snapshot (read
 *   under its mutex, never the loop's own state); the rest is read here
 *   from what any thread may read: the spool's commit histogram and ready
 *   index (queue/stats.c), the DKIM histogram (atomics), /proc/self/statm.
 *
 *   Label values are escaped as the format asks (backslash, double quote,
 *   newline).  The text answer is built in a buffer capped at
 *   METRICS_OUT_MAX bytes.
 *
 * DIAGNOSTICS
 *   Another method than GET or HEAD is 405 (Allow: GET, HEAD); a query
 *   string is 400; an answer over its cap or out of memory is 500; a
 *   spool read that fails leaves its families without samples.
 */
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "metrics_int.h"

/* Ready-index entries walked per scrape for each of ready and parked (a
 * read transaction of about a tenth of a second at the cap). */
#define DEPTH_CAP 2000000u

/* Where the samples go: text lines or a JSON document. */
struct out {
    bool json;
    bool failed;         /* over the cap or out of memory */
    char *buf;
    size_t len, cap;
    json_t *root;        /* the "metrics" object */
    json_t *samples;     /* the current family's */
    const char *fam;
};

/* Append printf-style text, growing the buffer up to METRICS_OUT_MAX. */
static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        if (o->failed)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = o->cap * 2;
        if (ncap < o->len + (size_t)n + 1)
            ncap = o->len + (size_t)n + 1;
        char *nb = ncap <= METRICS_OUT_MAX ? realloc(o->buf, ncap) : NULL;
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
}

/* A family's HELP and TYPE; its samples follow. */
static void family(struct out *o, const char *name, const char *type,
                   const char *help)
{
    o->fam = name;
    if (!o->json) {
        put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        return;
    }
    json_t *f = json_pack("{s:s,s:s,s:[]}", "type", type, "help", help,
                          "samples");
    if (!f || json_object_set_new(o->root, name, f)) {
        o->failed = true;
        o->samples = NULL;
        return;
    }
    o->samples = json_object_get(f, "samples");
}

/* A label value with \, " and newline escaped. */
static void put_escaped(struct out *o, const char *v)
{
    for (; *v && !o->failed; v++) {
        if (*v == '\\')
            put(o, "\\\\");
        else if (*v == '"')
            put(o, "\\\"");
        else if (*v == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *v);
    }
}

/* Whether v is a whole number a double holds exactly. */
static bool whole(double v)
{
    return v >= 0 && v < 9007199254740992.0 && v == (double)(uint64_t)v;
}

/* One sample of the current family: suffix ("", "_bucket", ...), labels
 * as name, value pairs ending with NULL, the value. */
static void sample(struct out *o, const char *suffix,
                   const char *const *labels, double v)
{
    if (!o->json) {
        put(o, "%s%s", o->fam, suffix);
        for (size_t i = 0; labels && labels[i]; i += 2) {
            put(o, "%s%s=\"", i ? "," : "{", labels[i]);
            put_escaped(o, labels[i + 1]);
            put(o, "\"");
        }
        if (whole(v))
            put(o, "%s %.0f\n", labels && labels[0] ? "}" : "", v);
        else
            put(o, "%s %.17g\n", labels && labels[0] ? "}" : "", v);
        return;
    }
    if (o->failed || !o->samples)
        return;
    char name[128];
    snprintf(name, sizeof name, "%s%s", o->fam, suffix);
    json_t *lab = json_object();
    for (size_t i = 0; lab && labels && labels[i]; i += 2)
        json_object_set_new(lab, labels[i], json_string(labels[i + 1]));
    json_t *s = json_pack("{s:s,s:o,s:o}", "name", name, "labels", lab,
                          "value", whole(v) ? json_integer((json_int_t)v)
                                            : json_real(v));
    if (!s || json_array_append_new(o->samples, s))
        o->failed = true;
}

/* A histogram's samples: buckets (counts per bucket, not cumulative, the
 * last past the last bound) made cumulative, then _sum and _count.
 * label/value: one extra label, or NULL. */
static void histogram(struct out *o, const char *label, const char *value,
                      const double *bounds, size_t nb,
                      const uint64_t *bucket, double sum)
{
    uint64_t cum = 0;
    char le[32];
    const char *lab[] = { "le", le, label, value, NULL };
    const char *plain[] = { label, value, NULL };
    for (size_t b = 0; b <= nb; b++) {
        cum += bucket[b];
        if (b < nb)
            snprintf(le, sizeof le, "%g", bounds[b]);
        else
            snprintf(le, sizeof le, "+Inf");
        sample(o, "_bucket", lab, (double)cum);
    }
    sample(o, "_sum", label ? plain : NULL, sum);
    sample(o, "_count", label ? plain : NULL, (double)cum);
}

/* Is t an event type with a name? */
static const char *type_name(unsigned t)
{
    const char *n = queue_event_name((int)t);
    return t && strcmp(n, "unknown") ? n : NULL;
}

/* One counter sample per type with a non-zero count (all: every named
 * type, so a series starts at 0), with one extra label. */
static void per_type(struct out *o, const char *label, const char *value,
                     const uint64_t *c, bool all)
{
    for (unsigned t = 1; t < METRICS_TYPES; t++) {
        const char *n = type_name(t);
        if (!n || (!all && !c[t]))
            continue;
        const char *lab[] = { label, value, "outcome", n, NULL };
        sample(o, "", label ? lab : lab + 2, (double)c[t]);
    }
}

/* The counted families, from the snapshot. */
static void emit_counts(struct out *o, const struct metrics_snap *s)
{
    family(o, "sluice_outcomes_total", "counter",
           "Spool events of each type counted since sluiced started.");
    per_type(o, NULL, NULL, s->outcomes, true);
    family(o, "sluice_outcomes_by_category_total", "counter",
           "Spool events by type and bounce category since start.");
    for (unsigned t = 1; t < METRICS_TYPES; t++)
        for (unsigned c = 1; c < QUEUE_CAT_COUNT; c++)
            if (type_name(t) && s->by_cat[t][c]) {
                const char *lab[] = { "outcome", type_name(t), "category",
                                      queue_category_name((int)c), NULL };
                sample(o, "", lab, (double)s->by_cat[t][c]);
            }
    family(o, "sluice_site_outcomes_total", "counter",
           "Spool events per site: the top sites by volume, the rest as "
           "site=\"other\".");
    for (size_t i = 0; i < s->nsites; i++)
        per_type(o, "site", s->sites[i].name, s->sites[i].c, true);
    per_type(o, "site", "other", s->site_other, true);
    family(o, "sluice_account_outcomes_total", "counter",
           "Spool events per account (id); accounts past metrics_accounts "
           "as account=\"other\".");
    for (size_t i = 0; i < s->naccounts; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", s->accounts[i].id);
        per_type(o, "account", id, s->accounts[i].c, true);
    }
    if (s->naccounts == s->max_accounts)
        per_type(o, "account", "other", s->account_other, true);
    family(o, "sluice_outcomes_per_second", "gauge",
           "Spool events per second over the last minute.");
    for (unsigned t = 1; t < METRICS_TYPES; t++)
        if (type_name(t)) {
            const char *lab[] = { "outcome", type_name(t), NULL };
            sample(o, "", lab, s->rate[t]);
        }
    family(o, "sluice_delivery_latency_seconds", "histogram",
           "Enqueue to committed terminal outcome (whole-second enqueue "
           "time).");
    for (unsigned t = 1; t < METRICS_TYPES; t++)
        if (type_name(t) && s->latency[t].count)
            histogram(o, "outcome", type_name(t), metrics_lat_bounds,
                      METRICS_LAT_BUCKETS, s->latency[t].bucket,
                      s->latency[t].sum);
    family(o, "sluice_webhook_backlog_events", "gauge",
           "Events waiting to be sent to each webhook.");
    for (size_t i = 0; i < s->nwebhooks; i++) {
        const char *lab[] = { "webhook", s->webhooks[i].name, NULL };
        sample(o, "", lab, (double)s->webhooks[i].backlog);
    }
}

/* The engine's gauges, from the snapshot. */
static void emit_gauges(struct out *o, const struct metrics_snap *s)
{
    family(o, "sluice_smtp_sessions", "gauge",
           "Open SMTP sessions: outgoing (delivery), incoming (listener).");
    const char *out[] = { "direction", "outgoing", NULL };
    const char *in[] = { "direction", "incoming", NULL };
    sample(o, "", out, s->sessions_out);
    sample(o, "", in, s->sessions_in);
    family(o, "sluice_inflight_deliveries", "gauge",
           "Deliveries claimed whose outcome has not committed yet.");
    sample(o, "", NULL, (double)s->inflight);
    family(o, "sluice_inflight_bytes", "gauge",
           "Bytes of composed messages held: waiting for or in their SMTP "
           "transaction.");
    sample(o, "", NULL, (double)s->inflight_bytes);
    family(o, "sluice_inflight_bytes_peak", "gauge",
           "The most bytes of composed messages held at once since start.");
    sample(o, "", NULL, (double)s->inflight_bytes_peak);
    family(o, "sluice_inflight_bytes_max", "gauge",
           "max_inflight_bytes: no more is composed while this many are "
           "held.");
    sample(o, "", NULL, (double)s->inflight_bytes_max);
    family(o, "sluice_smtp_write_queue_bytes", "gauge",
           "Bytes outgoing sessions queued for their sockets (copies of "
           "what the kernel did not take yet; counted against "
           "max_inflight_bytes too).");
    sample(o, "", NULL, (double)s->write_queue_bytes);
    family(o, "sluice_spool_deliveries", "gauge",
           "The spool's lifetime counters (they survive restarts).");
    if (s->have_totals) {
        const struct { const char *n; uint64_t v; } c[] = {
            { "queued", s->totals.queued }, { "enqueued", s->totals.enqueued },
            { "delivered", s->totals.delivered },
            { "deferred", s->totals.deferred },
            { "bounced", s->totals.bounced }, { "expired", s->totals.expired },
            { "suppressed", s->totals.suppressed },
            { "cancelled", s->totals.cancelled },
        };
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
            const char *lab[] = { "count", c[i].n, NULL };
            sample(o, "", lab, (double)c[i].v);
        }
    }
    family(o, "sluice_spool_map_size_bytes", "gauge",
           "The spool's LMDB map size.");
    if (s->have_info)
        sample(o, "", NULL, (double)s->info.map_size);
    family(o, "sluice_spool_used_bytes", "gauge",
           "Bytes of the spool's pages in use.");
    if (s->have_info)
        sample(o, "", NULL, (double)s->info.last_page_bytes);
    family(o, "sluice_spool_file_bytes", "gauge",
           "Size of the spool's data.mdb on disk.");
    if (s->have_info)
        sample(o, "", NULL, (double)s->info.file_bytes);
    family(o, "sluice_start_time_seconds", "gauge",
           "When sluiced started counting (unix seconds).");
    sample(o, "", NULL, (double)(s->start_ms / 1000));
}

/* What any thread may read: the spool's ready index and commit latency,
 * DKIM signing time, the process's memory. */
static void emit_live(struct out *o, struct engine *e,
                      const struct queue_depth *d, bool have_depth)
{
    family(o, "sluice_queue_depth", "gauge",
           "Queued deliveries by when they are due: ready (now), deferred "
           "(later), parked (paused campaign or held account).");
    if (have_depth) {
        const char *r[] = { "state", "ready", NULL };
        const char *w[] = { "state", "deferred", NULL };
        const char *p[] = { "state", "parked", NULL };
        sample(o, "", r, (double)d->ready);
        sample(o, "", w, (double)d->waiting);
        sample(o, "", p, (double)d->parked);
    }
    family(o, "sluice_queue_depth_capped", "gauge",
           "1 when the ready or parked count stopped at its walk cap (a "
           "lower bound).");
    if (have_depth)
        sample(o, "", NULL, d->capped ? 1 : 0);

    struct queue_commit_stats cs;
    double cb[QUEUE_COMMIT_BUCKETS];
    for (size_t i = 0; i < QUEUE_COMMIT_BUCKETS; i++)
        cb[i] = queue_commit_bounds_us[i] / 1e6;
    family(o, "sluice_spool_commit_seconds", "histogram",
           "Time of each spool commit group (apply, commit, fsync).");
    if (!queue_commit_stats(e->q, &cs))
        histogram(o, NULL, NULL, cb, QUEUE_COMMIT_BUCKETS, cs.bucket,
                  cs.sum_us / 1e6);

    uint64_t db[METRICS_DKIM_BUCKETS + 1], dn, dsum;
    double dbounds[METRICS_DKIM_BUCKETS];
    for (size_t i = 0; i < METRICS_DKIM_BUCKETS; i++)
        dbounds[i] = metrics_dkim_bounds_us[i] / 1e6;
    metrics_dkim_read(db, &dn, &dsum);
    family(o, "sluice_dkim_sign_seconds", "histogram",
           "Time of each DKIM signature on the signing workers.");
    histogram(o, NULL, NULL, dbounds, METRICS_DKIM_BUCKETS, db, dsum / 1e6);

    char buf[128];
    unsigned long long vsz = 0, rss = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    bool mem = n > 0;
    if (mem) {
        char *end;
        buf[n] = 0;
        vsz = strtoull(buf, &end, 10);
        rss = strtoull(end, NULL, 10);
    }
    long page = sysconf(_SC_PAGESIZE);
    family(o, "sluice_process_resident_memory_bytes", "gauge",
           "Resident set size of sluiced.");
    if (mem)
        sample(o, "", NULL, (double)rss * (double)page);
    family(o, "sluice_process_virtual_memory_bytes", "gauge",
           "Virtual memory size of sluiced (the spool's map included).");
    if (mem)
        sample(o, "", NULL, (double)vsz * (double)page);
}

/* Every family into o; false when it failed. */
static bool emit_all(struct out *o, struct engine *e)
{
    struct metrics *m = e->metrics;
    struct queue_depth d;
    bool have_depth = !queue_ready_depth(e->q, engine_now(), DEPTH_CAP, &d);
    pthread_mutex_lock(&m->mu);
    emit_counts(o, m->pub);
    emit_gauges(o, m->pub);
    pthread_mutex_unlock(&m->mu);
    emit_live(o, e, &d, have_depth);
    return !o->failed;
}

/* A short text answer that closes the connection. */
static int answer(struct MHD_Connection *c, unsigned status, char *body,
                  size_t len, enum MHD_ResponseMemoryMode mode,
                  const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    int ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A fixed message. */
static int say(struct MHD_Connection *c, unsigned status, const char *text)
{
    return answer(c, status, (char *)text, strlen(text),
                  MHD_RESPMEM_PERSISTENT, "text/plain; charset=utf-8");
}

bool metrics_http(struct engine *e, struct MHD_Connection *c,
                  const char *url, const char *method, int *ret)
{
    bool json = !strcmp(url, "/metrics.json");
    if (!json && strcmp(url, "/metrics"))
        return false;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        *ret = say(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                   "/metrics and /metrics.json answer GET (or HEAD) only\n");
        return true;
    }
    if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0) {
        *ret = say(c, MHD_HTTP_BAD_REQUEST,
                   "/metrics and /metrics.json take no query string\n");
        return true;
    }
    if (!e->metrics) {
        *ret = say(c, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics not started\n");
        return true;
    }
    struct out o = { .json = json };
    if (json) {
        o.root = json_object();
        o.failed = !o.root;
    } else {
        o.cap = 64 * 1024;
        o.buf = malloc(o.cap);
        o.failed = !o.buf;
    }
    bool ok = !o.failed && emit_all(&o, e);
    if (ok && json) {
        json_t *doc = json_pack("{s:O,s:I}", "metrics", o.root, "time_ms",
                                (json_int_t)engine_now_ms());
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        json_decref(o.root);
        if (!text) {
            *ret = say(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
            return true;
        }
        *ret = answer(c, MHD_HTTP_OK, text, strlen(text),
                      MHD_RESPMEM_MUST_FREE, "application/json");
        return true;
    }
    json_decref(o.root);
    if (!ok) {
        free(o.buf);
        *ret = say(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                   "metrics: the answer is over its cap or out of memory\n");
        return true;
    }
    *ret = answer(c, MHD_HTTP_OK, o.buf, o.len, MHD_RESPMEM_MUST_FREE,
                  "text/plain; version=0.0.4; charset=utf-8");
    return true;
}
