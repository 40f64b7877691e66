/*
 * eventlog.c - the JSON-lines event log: one line per committed outcome.
 *
 * DESCRIPTION
 *   Written on the loop thread after the outcome's group commit, so the log
 *   never shows an outcome the spool does not have.  Lines are built with
 *   jansson (escaping included) and buffered; the scheduler flushes the
 *   buffer every tick.
 *
 * DIAGNOSTICS
 *   Write errors are counted by stdio; sluiced reports them at exit.
 */
#include <jansson.h>
#include <stdlib.h>

#include "engine.h"

/* Write one JSON object as a line and free it. */
static void emit(struct engine *e, json_t *j)
{
    if (!j)
        return;
    char *line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (line) {
        fputs(line, e->events);
        fputc('\n', e->events);
        free(line);
    }
}

void eventlog_write(struct engine *e, const struct item *it,
                    const struct queue_outcome *o, const char *domain)
{
    json_t *j = json_pack(
        "{s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:i,s:I}",
        "type", queue_event_name(o->type),
        "delivery", (json_int_t)it->id,
        "campaign", (json_int_t)it->campaign,
        "account", (json_int_t)it->account,
        "rcpt", it->rcpt,
        "domain", domain,
        "mx", o->mx ? o->mx : "",
        "code", (int)o->code,
        "enhanced", o->enhanced ? o->enhanced : "",
        "category", queue_category_name(o->category),
        "text", o->text ? o->text : "",
        "attempts", (int)it->attempts +
                        (o->type == QUEUE_EV_EXPIRED && !o->code ? 0 : 1),
        "time_ms", (json_int_t)engine_now_ms());
    emit(e, j);
}

/* A change of a site's state, with the reply that caused it. */
void eventlog_site(struct engine *e, const struct site *s, const char *change,
                   int code, const char *enhanced, const char *text)
{
    if (!e->events)
        return;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:i,s:f,s:i,s:s,s:s,s:I}",
                          "type", "site", "site", s->name,
                          "change", change, "state", site_state_name(s->state),
                          "concurrency", (int)site_conn_limit(s),
                          "rate_factor", s->rate_factor,
                          "code", code, "enhanced", enhanced ? enhanced : "",
                          "text", text ? text : "",
                          "time_ms", (json_int_t)engine_now_ms());
    emit(e, j);
}

/* A domain paused or resumed by an admin. */
void eventlog_pause(struct engine *e, const char *domain, bool paused)
{
    if (!e->events)
        return;
    json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "type", "domain",
                          "domain", domain,
                          "change", paused ? "paused" : "resumed",
                          "time_ms", (json_int_t)engine_now_ms());
    emit(e, j);
}

/* The spool stopped or started taking writes (record.c). */
void eventlog_spool(struct engine *e, const char *state, const char *error,
                    size_t held, uint64_t full_ms)
{
    if (!e->events)
        return;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "type", "spool",
                          "state", state, "spool", e->cfg.spool,
                          "error", error, "held", (json_int_t)held,
                          "full_ms", (json_int_t)full_ms,
                          "time_ms", (json_int_t)engine_now_ms());
    emit(e, j);
}
