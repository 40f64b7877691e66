/*
 * console_api.c - the web console's JSON API (CONTRACTS section 4):
 * overview, sites, campaigns, accounts and the audit trail, and the
 * actions on sites and campaigns.
 *
 * DESCRIPTION
 *   Every call is checked with the CLI's permission table for the CLI
 *   command that does the same (console_allow):
 *     GET  overview, sites                   status (viewer on the master)
 *     POST sites/NAME/pause|resume           pause|resume (admin, master)
 *     GET  campaigns, campaigns/ID           campaign list|show (viewer on
 *                                            the campaign's account; the
 *                                            list holds only those)
 *     POST campaigns/ID/pause|resume|cancel  campaign pause|resume (sender),
 *                                            cancel (manager)
 *     GET  accounts                          account usage (viewer)
 *     GET  audit?limit=N                     audit list (viewer; records of
 *                                            the accounts the caller sees,
 *                                            spool-wide ones for the master's)
 *     GET  report?from=&to=                  report (console_report.c)
 *   Reads come from the spool (the counters queue_counts_*, the campaigns'
 *   settled state as `campaign show` settles it) and from the status file
 *   sluiced rewrites each second (sites, sessions, rates).  Actions are
 *   the spool's own calls the CLI makes (queue_campaign_pause ...,
 *   queue_pause of a site): they commit with their audit record, the
 *   caller as the actor, and sluiced applies them within its usual second.
 *   The overview's queued is the recipients not yet terminal, deferred
 *   those of them waiting for a later attempt (the ready index, as
 *   /metrics' sluice_queue_depth), deferrals the deferral events counted,
 *   rate the deliveries per second of the last seconds (status.json).
 *   The campaigns' calls are console_campaign.c's.
 *
 * DIAGNOSTICS
 *   403 refused (audited), 404 unknown campaign or path, 409 a change the
 *   campaign's state refuses, 503 a spool or status file that cannot be
 *   read.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console_int.h"
#include "queue_campaign.h"
#include "tool_admin.h"

/* Ready-index entries walked per overview for ready and parked each. */
#define DEPTH_CAP 200000u

static char status_path[4096];

void console_api_setup(const char *path)
{
    snprintf(status_path, sizeof status_path, "%s", path);
}

/* The status file sluiced writes each second, or NULL. */
static json_t *status_doc(void)
{
    json_t *j = json_load_file(status_path, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A decimal id of at most 19 digits; 0 when it is not one. */
static uint64_t parse_id(const char *s, size_t n)
{
    uint64_t v = 0;
    if (!n || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* ------------------------------------------------------------ overview */

struct pause_set {
    json_t *names;   /* object: site or domain name -> true */
    int64_t now;
};

/* queue_controls() callback: the sites and domains paused now. */
static int take_pause(void *arg, const struct queue_control *c)
{
    struct pause_set *p = arg;
    if ((c->kind == QUEUE_CTL_SITE || c->kind == QUEUE_CTL_DOMAIN) &&
        queue_control_active(c, p->now))
        json_object_set_new(p->names, c->name, json_true());
    return 0;
}

struct open_count {
    long n;
};

/* queue_incidents() callback: count those not resolved. */
static int count_open(void *arg, uint64_t id, uint32_t account,
                      const char *text)
{
    struct open_count *oc = arg;
    (void)id;
    (void)account;
    json_t *j = json_loads(text, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st && strcmp(st, "resolved"))
        oc->n++;
    json_decref(j);
    return 0;
}

/* queue_campaigns() callback: count those sending. */
static int count_sending(void *arg, const struct queue_campaign *c)
{
    if (c->state == QUEUE_CAMPAIGN_SENDING)
        ++*(long *)arg;
    return 0;
}

static unsigned overview(struct console_call *k, json_t **out)
{
    unsigned st;
    if ((st = console_allow(k, ACT_STATUS, 0, "overview", NULL, out)))
        return st;
    struct queue_counts t = { 0 };
    int err = queue_counts_total(k->q, &t);
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    struct open_count oc = { 0 };
    long sending = 0;
    queue_incidents(k->q, count_open, &oc);
    queue_campaigns(k->q, 0, count_sending, &sending);
    json_t *s = status_doc();
    /* the last seconds' rate sluiced writes, else its sites' sum */
    json_t *total = json_object_get(s, "rate");
    double rate = json_number_value(total);
    size_t i;
    json_t *site;
    if (!json_is_number(total))
        json_array_foreach(json_object_get(s, "sites"), i, site)
            rate += json_number_value(json_object_get(site, "rate"));
    json_t *sessions = json_object_get(s, "sessions");
    struct queue_depth d = { 0 };
    bool depth = !queue_ready_depth(k->q, engine_now(), DEPTH_CAP, &d);
    *out = json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:I,s:I,s:o,s:b}",
                     "rate", rate, "queued", (json_int_t)t.queued,
                     "deferred", (json_int_t)d.waiting,
                     "deferrals", (json_int_t)t.deferred,
                     "delivered", (json_int_t)t.delivered,
                     "bounced", (json_int_t)t.bounced,
                     "expired", (json_int_t)t.expired,
                     "enqueued", (json_int_t)t.enqueued,
                     "sessions", sessions ? sessions : json_null(),
                     "incidents_open", (json_int_t)oc.n,
                     "campaigns_running", (json_int_t)sending,
                     "time", console_time((int64_t)time(NULL)),
                     "live", s != NULL);
    if (*out && depth)
        json_object_set_new(*out, "depth", json_pack(
            "{s:I,s:I,s:I,s:b}", "ready", (json_int_t)d.ready, "waiting",
            (json_int_t)d.waiting, "parked", (json_int_t)d.parked, "capped",
            d.capped));
    json_decref(s);
    return MHD_HTTP_OK;
}

/* --------------------------------------------------------------- sites */

static unsigned sites(struct console_call *k, json_t **out)
{
    unsigned st;
    if ((st = console_allow(k, ACT_STATUS, 0, "sites", NULL, out)))
        return st;
    struct pause_set p = { json_object(), (int64_t)time(NULL) };
    long n = queue_controls(k->q, take_pause, &p);
    if (n < 0) {
        json_decref(p.names);
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror((int)n));
    }
    json_t *s = status_doc(), *arr = json_array(), *site;
    size_t i;
    json_array_foreach(json_object_get(s, "sites"), i, site) {
        const char *name = json_string_value(json_object_get(site, "name"));
        if (!name)
            continue;
        json_t *row = json_deep_copy(site);
        json_object_set_new(row, "paused",
                            json_boolean(json_object_get(p.names, name)));
        json_object_set(row, "queued", json_object_get(site, "waiting"));
        json_object_set_new(row, "backoff", json_pack(
            "{s:O,s:O,s:O,s:O}",
            "state", json_object_get(site, "state"),
            "rate_factor", json_object_get(site, "rate_factor"),
            "next_retry_ms", json_object_get(site, "next_retry_ms"),
            "last_error", json_object_get(site, "last_error")));
        json_array_append_new(arr, row);
    }
    json_decref(p.names);
    *out = json_pack("{s:o,s:b}", "sites", arr, "live", s != NULL);
    json_decref(s);
    return MHD_HTTP_OK;
}

/* A site name into out, lower-cased as the CLI takes it (letters,
 * digits, dot, dash, underscore); false for anything else. */
static bool site_name(const char *s, size_t n, char *out)
{
    if (!n || n > QUEUE_MAX_CTL_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a')
                                             : s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_'))
            return false;
        out[i] = ch;
    }
    out[n] = 0;
    return true;
}

/* POST sites/NAME/pause|resume: as `sluice pause|resume site NAME`. */
static unsigned site_change(struct console_call *k, const char *name,
                            size_t n, bool set, json_t **out)
{
    char nm[QUEUE_MAX_CTL_NAME + 1], obj[QUEUE_MAX_CTL_NAME + 300];
    unsigned st;
    int role;
    if (!site_name(name, n, nm))
        return console_error(out, MHD_HTTP_BAD_REQUEST, "not a site name");
    snprintf(obj, sizeof obj, "site %s", nm);
    if ((st = console_allow(k, set ? ACT_PAUSE : ACT_RESUME, 0, obj, &role,
                            out)))
        return st;
    json_t *b = console_body(k, out, &st);
    if (!b)
        return st;
    json_t *rj = json_object_get(b, "reason");
    const char *reason = json_string_value(rj);
    if ((rj && !reason) || (reason && strlen(reason) > QUEUE_MAX_CTL_REASON)) {
        json_decref(b);
        return console_error(out, MHD_HTTP_BAD_REQUEST, "\"reason\": text "
                             "up to %d bytes", QUEUE_MAX_CTL_REASON);
    }
    int err = set ? queue_pause(k->q, QUEUE_CTL_SITE, nm, reason, k->who.name)
                  : queue_resume(k->q, QUEUE_CTL_SITE, nm);
    if (!err) {
        if (reason)
            snprintf(obj, sizeof obj, "site %s reason: %.200s", nm, reason);
        uint32_t master = 0;
        queue_account_master(k->q, &master);
        struct queue_actor a = console_actor(k, role, master);
        queue_audit_append(k->q, &a, master, set ? "pause" : "resume", obj,
                           "ok");
    }
    json_decref(b);
    if (err == QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_CONFLICT, "site %s is not paused",
                             nm);
    if (err == -EINVAL)
        return console_error(out, MHD_HTTP_BAD_REQUEST, "%s",
                             queue_last_detail());
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    *out = json_pack("{s:s,s:b}", "site", nm, "paused", set);
    return MHD_HTTP_OK;
}

/* ------------------------------------------------------------ accounts */

struct acct_list {
    struct console_call *k;
    json_t *arr;
};

/* queue_accounts() callback: the usage of an account the caller views. */
static int acct_one(void *arg, const struct queue_account *a)
{
    struct acct_list *l = arg;
    struct queue_counts n;
    if (console_role(l->k, a->id) < QUEUE_ROLE_VIEWER ||
        queue_counts_account(l->k->q, a->id, &n))
        return 0;
    json_array_append_new(l->arr, json_pack(
        "{s:s,s:I,s:o,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
        "account", a->name, "account_id", (json_int_t)a->id,
        "parent", console_account_name(l->k->q, a->parent),
        "disabled", a->disabled,
        "queued", (json_int_t)n.enqueued, "pending", (json_int_t)n.queued,
        "sent", (json_int_t)(n.delivered + n.bounced),
        "delivered", (json_int_t)n.delivered, "bounced",
        (json_int_t)n.bounced, "expired", (json_int_t)n.expired,
        "deferred", (json_int_t)n.deferred, "suppressed",
        (json_int_t)n.suppressed, "cancelled", (json_int_t)n.cancelled));
    return 0;
}

/* Leaderboard order: delivered, most first; then by id. */
static int by_delivered(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t dx = json_integer_value(json_object_get(x, "delivered"));
    json_int_t dy = json_integer_value(json_object_get(y, "delivered"));
    if (dx != dy)
        return dx < dy ? 1 : -1;
    dx = json_integer_value(json_object_get(x, "account_id"));
    dy = json_integer_value(json_object_get(y, "account_id"));
    return dx < dy ? -1 : dx > dy;
}

static unsigned accounts(struct console_call *k, json_t **out)
{
    struct acct_list l = { k, json_array() };
    long n = queue_accounts(k->q, acct_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror((int)n));
    }
    size_t cnt = json_array_size(l.arr);
    json_t **rows = calloc(cnt ? cnt : 1, sizeof *rows);
    json_t *sorted = json_array();
    if (!rows || !sorted) {
        free(rows);
        json_decref(sorted);
        json_decref(l.arr);
        return console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory");
    }
    for (size_t i = 0; i < cnt; i++)
        rows[i] = json_array_get(l.arr, i);
    qsort(rows, cnt, sizeof *rows, by_delivered);
    for (size_t i = 0; i < cnt; i++)
        json_array_append(sorted, rows[i]);
    free(rows);
    json_decref(l.arr);
    *out = json_pack("{s:o}", "accounts", sorted);
    return MHD_HTTP_OK;
}

/* --------------------------------------------------------------- audit */

#define AUDIT_DEFAULT 100
#define AUDIT_MAX 1000
/* Records looked at, newest first, for one answer. */
#define AUDIT_SCAN 20000

struct audit_list {
    struct console_call *k;
    json_t *ring[AUDIT_MAX];
    size_t n, next, limit;
    bool master_view;          /* may see spool-wide records */
    uint32_t seen_account;
    int seen_role;
};

/* queue_audit_list() callback: keep the last `limit` records visible. */
static int audit_one(void *arg, const struct queue_audit *r)
{
    struct audit_list *l = arg;
    if (r->account) {
        if (r->account != l->seen_account) {
            l->seen_account = r->account;
            l->seen_role = console_role(l->k, r->account);
        }
        if (l->seen_role < QUEUE_ROLE_VIEWER)
            return 0;
    } else if (!l->master_view) {
        return 0;
    }
    json_t *j = json_pack("{s:I,s:I,s:s,s:s,s:s,s:o,s:s,s:s,s:s}",
                          "seq", (json_int_t)r->seq, "time_ms",
                          (json_int_t)r->time_ms, "user", r->user, "via",
                          r->via, "role", queue_role_name(r->role),
                          "account", console_account_name(l->k->q,
                                                          r->account),
                          "action", r->action, "object", r->object,
                          "result", r->result);
    if (!j)
        return 0;   /* text jansson will not take: left out */
    json_object_set_new(j, "time", console_time(r->time_ms / 1000));
    json_decref(l->ring[l->next]);
    l->ring[l->next] = j;
    l->next = (l->next + 1) % l->limit;
    if (l->n < l->limit)
        l->n++;
    return 0;
}

static unsigned audit(struct console_call *k, json_t **out)
{
    const char *ls = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND,
                                                 "limit");
    uint64_t limit = ls ? parse_id(ls, strlen(ls)) : AUDIT_DEFAULT;
    if (!limit || limit > AUDIT_MAX)
        return console_error(out, MHD_HTTP_BAD_REQUEST,
                             "limit: 1..%d records", AUDIT_MAX);
    uint32_t home = tool_home_account(k->q, k->who.user);
    unsigned st;
    if ((st = console_allow(k, ACT_AUDIT_LIST, home, "audit trail", NULL,
                            out)))
        return st;
    uint32_t master = 0;
    queue_account_master(k->q, &master);
    struct audit_list *l = calloc(1, sizeof *l);
    if (!l)
        return console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory");
    l->k = k;
    l->limit = (size_t)limit;
    l->master_view = console_role(k, master) >= QUEUE_ROLE_VIEWER;
    uint64_t head = 0;
    unsigned char link[QUEUE_AUDIT_HASH];
    queue_audit_head(k->q, &head, link);
    long n = queue_audit_list(k->q, head > AUDIT_SCAN ? head - AUDIT_SCAN
                                                      : 0, audit_one, l);
    json_t *arr = json_array();
    /* newest first */
    for (size_t i = 0; i < l->n; i++) {
        size_t at = (l->next + l->limit - 1 - i) % l->limit;
        json_array_append(arr, l->ring[at]);
    }
    for (size_t i = 0; i < l->limit; i++)
        json_decref(l->ring[i]);
    free(l);
    if (n < 0) {
        json_decref(arr);
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror((int)n));
    }
    *out = json_pack("{s:o}", "records", arr);
    return MHD_HTTP_OK;
}

/* ------------------------------------------------------------- routing */

/* Segment i (0-based) of path "/a/b/c" into *s, *n; false if none. */
static bool segment(const char *path, int i, const char **s, size_t *n)
{
    const char *p = path;
    for (int j = 0; j <= i; j++) {
        if (*p != '/')
            return false;
        *s = ++p;
        p += strcspn(p, "/");
        *n = (size_t)(p - *s);
    }
    return *n > 0;
}

unsigned console_api(struct console_call *k, json_t **out)
{
    const char *s0 = "", *s1 = "", *s2 = "", *s3 = "";
    size_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
    bool get = !strcmp(k->method, "GET");
    if (!segment(k->path, 0, &s0, &n0))
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such API path");
    bool has1 = segment(k->path, 1, &s1, &n1);
    bool has2 = segment(k->path, 2, &s2, &n2);
    if (segment(k->path, 3, &s3, &n3) ||
        (k->path[strlen(k->path) - 1] == '/'))
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such API path");
#define IS(s, n, lit) ((n) == sizeof lit - 1 && !memcmp(s, lit, n))
    if (IS(s0, n0, "incidents"))
        return console_incidents(k, k->path + 10, out);
    if (IS(s0, n0, "overview") && !has1)
        return get ? overview(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (IS(s0, n0, "sites") && !has1)
        return get ? sites(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (IS(s0, n0, "sites") && has2 &&
        (IS(s2, n2, "pause") || IS(s2, n2, "resume")))
        return !get ? site_change(k, s1, n1, IS(s2, n2, "pause"), out)
                    : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED,
                                    "POST");
    if (IS(s0, n0, "campaigns") && !has1)
        return get ? console_campaigns(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (IS(s0, n0, "campaigns")) {
        uint64_t id = parse_id(s1, n1);
        char verb[16] = "";
        if (!id || (has2 && n2 >= sizeof verb))
            return console_error(out, MHD_HTTP_NOT_FOUND, "no such campaign");
        if (has2)
            memcpy(verb, s2, n2);
        return console_campaign(k, id, has2 ? verb : NULL, out);
    }
    if (IS(s0, n0, "accounts") && !has1)
        return get ? accounts(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (IS(s0, n0, "audit") && !has1)
        return get ? audit(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (IS(s0, n0, "report") && !has1)
        return get ? console_report(k, out)
                   : console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
#undef IS
    return console_error(out, MHD_HTTP_NOT_FOUND, "no such API path");
}
