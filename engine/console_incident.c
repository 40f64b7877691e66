/*
 * console_incident.c - the web console's incidents: list, show, and
 * acknowledge, assign, note, resolve.
 *
 * DESCRIPTION
 *   GET  /console/api/incidents[?open=1]   {"incidents": [records]}: the
 *        incidents of the accounts the caller views (the master's viewers
 *        see every one, a sub-account's its own), as `sluice incident
 *        list` shows them
 *   GET  /console/api/incidents/ID         the record (403 another
 *        account's, 404 unknown)
 *   POST /console/api/incidents/ID/ack | /assign {"user"} |
 *        /note {"text"} | /resolve {"text"?}
 *   The roles are the CLI's (incident show: viewer; incident update:
 *   sender, on the incident's account).  A change is one spool change
 *   through the one editor of the record (engine/incident_rec.c) with its
 *   audit record ("incident ack" ...), the caller as the actor, through
 *   the one path `sluice incident ack` takes too (incident_rec_person); a
 *   resolve also appends its event.
 *
 * DIAGNOSTICS
 *   400 a missing or over-long user or text, 409 a change the incident's
 *   state refuses (it is resolved), 403 refused (audited).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console_int.h"
#include "incident_rec.h"
#include "tool_admin.h"

#define ASSIGNEE_MAX 64
#define TEXT_MAX 2000

struct inc_list {
    struct console_call *k;
    bool open_only;
    json_t *arr;
};

/* queue_incidents() callback: the records the caller may view. */
static int list_one(void *arg, uint64_t id, uint32_t account,
                    const char *text)
{
    struct inc_list *l = arg;
    (void)id;
    if (console_role(l->k, account) < QUEUE_ROLE_VIEWER)
        return 0;
    json_t *j = json_loads(text, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    if (!json_is_object(j) || (l->open_only && st &&
                               !strcmp(st, "resolved"))) {
        json_decref(j);
        return 0;
    }
    json_object_set_new(j, "account_name",
                        console_account_name(l->k->q, account));
    json_array_append_new(l->arr, j);
    return 0;
}

static unsigned list(struct console_call *k, json_t **out)
{
    const char *o = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND,
                                                "open");
    struct inc_list l = { k, o && strcmp(o, "0"), json_array() };
    long n = queue_incidents(k->q, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror((int)n));
    }
    *out = json_pack("{s:o}", "incidents", l.arr);
    return MHD_HTTP_OK;
}

/* A person's change of incident id: the CLI's path (incident_rec_person). */
static unsigned change(struct console_call *k, uint64_t id, uint32_t account,
                       json_t *rec, const char *verb, json_t **out)
{
    bool assign = !strcmp(verb, "assign"), note = !strcmp(verb, "note");
    if (!assign && !note && strcmp(verb, "ack") && strcmp(verb, "resolve"))
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such action");
    char obj[40];
    unsigned st;
    int role;
    snprintf(obj, sizeof obj, "incident %llu", (unsigned long long)id);
    if ((st = console_allow(k, ACT_INCIDENT_UPDATE, account, obj, &role,
                            out)))
        return st;
    json_t *b = console_body(k, out, &st);
    if (!b)
        return st;
    json_t *uj = json_object_get(b, "user"), *tj = json_object_get(b, "text");
    const char *user = json_string_value(uj), *text = json_string_value(tj);
    bool bad = (uj && !user) || (tj && !text) ||
               (user && (!*user || strlen(user) > ASSIGNEE_MAX)) ||
               (text && strlen(text) > TEXT_MAX) || (assign && !user) ||
               (note && (!text || !*text));
    if (bad) {
        json_decref(b);
        return console_error(out, MHD_HTTP_BAD_REQUEST, "assign takes "
                             "{\"user\": NAME} (up to %d bytes), note "
                             "{\"text\": TEXT} and resolve {\"text\"?} (up "
                             "to %d bytes)", ASSIGNEE_MAX, TEXT_MAX);
    }
    struct queue_actor by = console_actor(k, role, account);
    const char *what = verb;
    int err = incident_rec_person(
        k->q, id,
        (uint64_t)json_integer_value(json_object_get(rec, "campaign")), verb,
        assign ? user : text, &by, (int64_t)time(NULL) * 1000, &what);
    json_decref(b);
    if (err == -EINVAL)
        return console_error(out, MHD_HTTP_CONFLICT, "%s",
                             queue_last_detail());
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    *out = json_pack("{s:I,s:s}", "id", (json_int_t)id, "change", what);
    return MHD_HTTP_OK;
}

unsigned console_incidents(struct console_call *k, const char *rest,
                           json_t **out)
{
    bool get = !strcmp(k->method, "GET");
    if (!*rest)
        return get ? list(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (*rest != '/')
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such API path");
    rest++;
    size_t n = strspn(rest, "0123456789");
    const char *verb = rest[n] == '/' ? rest + n + 1 : NULL;
    if (!n || n > 19 || (rest[n] && !verb) || (verb && (!*verb ||
                                                       strchr(verb, '/'))))
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such incident");
    uint64_t id = strtoull(rest, NULL, 10);
    if (verb ? get : !get)
        return console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED,
                             verb ? "POST an incident's change"
                                  : "GET an incident");
    uint32_t account;
    char *text = NULL;
    int err = queue_incident_get(k->q, id, &account, &text);
    if (err == QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_NOT_FOUND, "no incident %llu",
                             (unsigned long long)id);
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    unsigned st;
    char obj[40];
    snprintf(obj, sizeof obj, "incident %llu", (unsigned long long)id);
    if (!json_is_object(rec))
        st = console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "incident %llu does not parse",
                           (unsigned long long)id);
    else if (verb)
        st = change(k, id, account, rec, verb, out);
    else if (!(st = console_allow(k, ACT_INCIDENT_VIEW, account, obj, NULL,
                                  out))) {
        json_object_set_new(rec, "account_name",
                            console_account_name(k->q, account));
        *out = json_incref(rec);
        st = MHD_HTTP_OK;
    }
    json_decref(rec);
    return st;
}
