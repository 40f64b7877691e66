/*
 * sink_json.c - the stats of sluice-sink as a JSON file (jansson) and the
 * one-line summary printed at exit.
 *
 * The file is written to "<path>.tmp" and renamed over <path>, so a reader
 * polling it never sees half a document.  The shape is described in
 * bench/sink/README.md.
 *
 * Failures: out of memory or an I/O error returns a negative code and
 * leaves the previous file in place; the caller logs it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "sink.h"

/* Set key to an unsigned counter (jansson integers are signed 64-bit). */
static void put_u64(json_t *o, const char *key, uint64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* Set key to a millisecond time, or null when it never happened. */
static void put_ms(json_t *o, const char *key, int64_t v)
{
    json_object_set_new(o, key, v < 0 ? json_null() : json_integer(v));
}

/* A per-second timeline as an array of counts. */
static json_t *timeline_json(const uint32_t *tl, size_t len)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < len; i++)
        json_array_append_new(a, json_integer(tl[i]));
    return a;
}

/* One local-address entry. */
static json_t *addr_json(const struct sink_domain *d)
{
    json_t *o = json_object();

    put_u64(o, "sessions", d->sessions);
    put_u64(o, "current", d->current);
    put_u64(o, "max_concurrency", d->max_concurrency);
    put_u64(o, "conn_limit_violations", d->conn_limit_violations);
    put_u64(o, "messages", d->messages);
    put_u64(o, "recipients", d->recipients);
    put_u64(o, "rcpt_tempfail", d->rcpt_tempfail);
    put_u64(o, "rcpt_permfail", d->rcpt_permfail);
    put_u64(o, "bare_lf", d->bare_lf);
    put_u64(o, "bare_cr", d->bare_cr);
    return o;
}

/* One recipient-domain entry. */
static json_t *domain_json(const struct sink_domain *d, bool timeline)
{
    json_t *o = json_object();

    put_u64(o, "messages", d->messages);
    put_u64(o, "recipients", d->recipients);
    put_u64(o, "rcpt_tempfail", d->rcpt_tempfail);
    put_u64(o, "rcpt_permfail", d->rcpt_permfail);
    if (timeline)
        json_object_set_new(o, "timeline",
                            timeline_json(d->timeline, d->timeline_len));
    return o;
}

/* All entries of a map as one object keyed by name. */
static json_t *map_json(const struct sink_domain_map *m, bool is_addr,
                        bool timeline)
{
    json_t *o = json_object();

    for (size_t i = 0; i < m->nslots; i++)
        for (const struct sink_domain *d = m->slots[i]; d; d = d->next)
            json_object_set_new(o, d->name, is_addr ? addr_json(d)
                                                    : domain_json(d, timeline));
    if (m->other != NULL)
        json_object_set_new(o, m->other->name,
                            is_addr ? addr_json(m->other)
                                    : domain_json(m->other, timeline));
    return o;
}

/* Build the whole stats document. */
static json_t *stats_json(const struct sink_server *srv)
{
    const struct sink_stats *st = &srv->stats;
    json_t *o = json_object();
    bool tl = st->timeline_max > 0;

    put_u64(o, "version", 1);
    put_ms(o, "started_ms", st->started_ms);
    put_ms(o, "written_ms", sink_wall_ms());
    put_u64(o, "messages", st->messages);
    put_u64(o, "recipients", st->recipients);
    put_u64(o, "rcpt_tempfail", st->rcpt_tempfail);
    put_u64(o, "rcpt_permfail", st->rcpt_permfail);
    put_u64(o, "sessions", st->sessions);
    put_u64(o, "current_sessions", st->current);
    put_u64(o, "sessions_without_mail", st->sessions_without_mail);
    put_u64(o, "sessions_one_mail", st->sessions_one_mail);
    put_u64(o, "max_concurrency", st->max_concurrency);
    put_u64(o, "conn_limit_violations", st->conn_limit_violations);
    put_u64(o, "bytes", st->bytes);
    put_u64(o, "bytes_in", st->bytes_in);
    put_u64(o, "bare_lf", st->bare_lf);
    put_u64(o, "bare_cr", st->bare_cr);
    put_u64(o, "long_lines", st->long_lines);
    put_u64(o, "oversize", st->oversize);
    put_u64(o, "dropped_after_data", st->dropped_after_data);
    put_u64(o, "protocol_errors", st->protocol_errors);
    put_u64(o, "tls_handshakes", st->tls_handshakes);
    put_u64(o, "tls_failures", st->tls_failures);
    put_u64(o, "capture_errors", st->capture_errors);
    put_u64(o, "smtp_sessions", st->smtp_sessions);
    put_u64(o, "transactions", st->transactions);
    if (srv->cfg.track_rcpt > 0) {
        put_u64(o, "rcpt_first", st->rcpt_first);
        put_u64(o, "rcpt_again", st->rcpt_again);
        put_u64(o, "rcpt_untracked", st->rcpt_untracked);
        put_ms(o, "last_first_rcpt_ms", st->last_first_rcpt_ms);
    }
    put_ms(o, "first_accept_ms", st->first_accept_ms);
    put_ms(o, "last_accept_ms", st->last_accept_ms);
    put_u64(o, "domains_dropped", st->by_addr.dropped + st->by_domain.dropped);
    if (tl)
        json_object_set_new(o, "timeline",
                            timeline_json(st->timeline, st->timeline_len));
    json_object_set_new(o, "by_addr", map_json(&st->by_addr, true, false));
    json_object_set_new(o, "by_domain", map_json(&st->by_domain, false, tl));
    return o;
}

/* Write the stats to --stats atomically (temp file + rename). */
int sink_stats_write(struct sink_server *srv)
{
    char tmp[4096];
    json_t *doc;
    int rc = 0;

    if (srv->cfg.stats_path == NULL)
        return 0;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", srv->cfg.stats_path) >=
        (int)sizeof(tmp))
        return UV_ENAMETOOLONG;
    doc = stats_json(srv);
    if (doc == NULL)
        return UV_ENOMEM;
    if (json_dump_file(doc, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0)
        rc = UV_EIO;
    else if (rename(tmp, srv->cfg.stats_path) != 0)
        rc = -errno;
    json_decref(doc);
    return rc;
}

/* Print the one-line summary for a human at exit. */
void sink_stats_summary(struct sink_server *srv, FILE *fp)
{
    const struct sink_stats *st = &srv->stats;
    double rate = 0.0;

    if (st->messages > 1 && st->last_accept_ms > st->first_accept_ms)
        rate = (double)(st->messages - 1) * 1000.0 /
               (double)(st->last_accept_ms - st->first_accept_ms);
    fprintf(fp,
            "sluice-sink: messages=%llu recipients=%llu sessions=%llu "
            "bytes=%llu bare_lf=%llu bare_cr=%llu max_concurrency=%llu "
            "conn_limit_violations=%llu tempfail=%llu permfail=%llu "
            "rate=%.0f msg/s\n",
            (unsigned long long)st->messages,
            (unsigned long long)st->recipients,
            (unsigned long long)st->sessions, (unsigned long long)st->bytes,
            (unsigned long long)st->bare_lf, (unsigned long long)st->bare_cr,
            (unsigned long long)st->max_concurrency,
            (unsigned long long)st->conn_limit_violations,
            (unsigned long long)st->rcpt_tempfail,
            (unsigned long long)st->rcpt_permfail, rate);
}
