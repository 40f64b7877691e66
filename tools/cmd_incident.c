/*
 * cmd_incident.c - `sluice incident`: the incidents sluiced opened.
 *
 * SYNOPSIS
 *   incident list [--account A] [--open] [--json]
 *   incident show ID [--json]
 *   incident ack ID | assign ID USER | note ID TEXT | resolve ID [TEXT]
 *   incident report --month YYYY-MM [--account A] [--json]
 *
 * DESCRIPTION
 *   sluiced opens incidents when an [alert] rule fires (engine/incident.c)
 *   and resolves them when the signal stays clean; people acknowledge,
 *   assign, note and resolve them here.  Each change is one audited spool
 *   change that adds a timeline entry (engine/incident_rec.c, the one
 *   editor of the record); a resolve also appends an `incident` event.
 *   A paused campaign, account or site is resumed by its own command
 *   (`sluice campaign resume`, `sluice resume site`...), audited there,
 *   or by sluiced after a probe is delivered (a rule with resume =
 *   probe).  show prints the escalations and the pause the incident holds
 *   (its state, how it resumes, the next probe).
 *   `report` gives per incident opened in the month the time to
 *   acknowledge and to resolve, and their means (MTTA, MTTR).
 *
 *   Roles: viewer on the account lists, shows and reports (the master's
 *   lists include its sub-accounts' incidents; a sub-account sees its
 *   own); sender acknowledges, assigns, notes and resolves.
 *
 * DIAGNOSTICS
 *   64 bad options, 65 a change the incident's state refuses (resolved),
 *   66 unknown account or incident, 77 refused (audited).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident_rec.h"
#include "tool_admin.h"

#define P "sluice incident"

static const char usage_text[] =
    "usage: sluice incident list [--account A] [--open] [--json]\n"
    "       sluice incident show ID [--json]\n"
    "       sluice incident ack ID\n"
    "       sluice incident assign ID USER\n"
    "       sluice incident note ID TEXT\n"
    "       sluice incident resolve ID [TEXT]\n"
    "       sluice incident report --month YYYY-MM [--account A] [--json]\n";

/* Whether incident account x is seen from account a (itself or a sub). */
static bool visible(struct queue *q, const struct queue_account *a,
                    uint32_t x)
{
    struct queue_account s;
    if (x == a->id)
        return true;
    return !a->parent && !queue_account_get(q, x, &s) && s.parent == a->id;
}

/* The account the listing is for: --account or the caller's default. */
static int which_account(struct tool_ctx *ctx, struct queue *q,
                         const char *prog, const char *acct,
                         struct queue_account *a)
{
    if (acct)
        return tool_find_account(ctx, q, prog, acct, a);
    if (queue_account_get(q, tool_default_account(ctx, q), a)) {
        fprintf(stderr, "%s: there is no account yet\n", prog);
        return TOOL_EX_NOINPUT;
    }
    return 0;
}

struct list_st {
    struct queue *q;
    const struct queue_account *a;
    bool open_only;
    json_t *arr;
    int64_t from_ms, to_ms;   /* report: opened in [from, to) */
};

/* Integer member of j, 0 when absent. */
static int64_t num(json_t *j, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(j, k));
}

/* String member of j, "-" when absent. */
static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "-";
}

static int list_one(void *arg, uint64_t id, uint32_t account,
                    const char *text)
{
    struct list_st *l = arg;
    (void)id;
    if (!visible(l->q, l->a, account))
        return 0;
    json_t *j = json_loads(text, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    if (l->open_only && !strcmp(str(j, "state"), "resolved")) {
        json_decref(j);
        return 0;
    }
    if (l->to_ms && (num(j, "opened_ms") < l->from_ms ||
                     num(j, "opened_ms") >= l->to_ms)) {
        json_decref(j);
        return 0;
    }
    json_array_append_new(l->arr, j);
    return 0;
}

/* Print one incident's line. */
static void print_line(json_t *j)
{
    char an[32];
    time_t t = (time_t)(num(j, "opened_ms") / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(an, sizeof an, "%lld", (long long)num(j, "account"));
    printf("%-6lld %-13s %-9s %-16s %-8s %-8s %-20s %s\n",
           (long long)num(j, "id"), str(j, "state"), str(j, "severity"),
           str(j, "rule"), str(j, "scope"), str(j, "scope_name"), when,
           str(j, "action"));
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL;
    bool bad = false, open_only = false;
    struct queue_account a;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--open"))
            open_only = true;
        else if (!tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    }
    if (bad) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "incident list", &q)))
        return rc;
    if (!(rc = which_account(ctx, q, P " list", acct, &a)) &&
        !(rc = tool_authorize(ctx, q, ACT_INCIDENT_VIEW, a.id, 0,
                              "incidents", NULL))) {
        struct list_st l = { q, &a, open_only, json_array(), 0, 0 };
        long n = queue_incidents(q, list_one, &l);
        if (n < 0) {
            rc = tool_admin_error(P " list", (int)n);
            json_decref(l.arr);
        } else if (ctx->json) {
            tool_emit_json(l.arr);
        } else {
            printf("%-6s %-13s %-9s %-16s %-8s %-8s %-20s %s\n", "ID",
                   "STATE", "SEVERITY", "RULE", "SCOPE", "NAME", "OPENED",
                   "ACTION");
            size_t i;
            json_t *j;
            json_array_foreach(l.arr, i, j)
                print_line(j);
            json_decref(l.arr);
        }
    }
    queue_close(q);
    return rc;
}

/* The incident ID of argv[1] read and authorized for act; *j its record. */
static int load(struct tool_ctx *ctx, struct queue *q, const char *prog,
                const char *ids, int act, uint32_t *account, json_t **j,
                int *role)
{
    unsigned long long id;
    char *text = NULL, obj[40];
    if (!tool_parse_u64(ids, &id) || !id) {
        fprintf(stderr, "%s: '%s' is not an incident id\n", prog, ids);
        return TOOL_EX_USAGE;
    }
    int err = queue_incident_get(q, id, account, &text);
    if (err == QUEUE_ENOTFOUND) {
        fprintf(stderr, "%s: no incident %llu\n", prog, id);
        return TOOL_EX_NOINPUT;
    }
    if (err)
        return tool_admin_error(prog, err);
    snprintf(obj, sizeof obj, "incident %llu", id);
    int rc = tool_authorize(ctx, q, act, *account, 0, obj, role);
    if (!rc && !(*j = json_loads(text, 0, NULL))) {
        fprintf(stderr, "%s: incident %llu does not parse\n", prog, id);
        rc = TOOL_EX_DATAERR;
    }
    free(text);
    return rc;
}

/* The circuit breaker's pause of record j, for people. */
static void print_pause(json_t *j)
{
    json_t *p = json_object_get(j, "pause");
    char when[32];
    if (!json_is_object(p))
        return;
    printf("pause: %s %s %s", str(p, "kind"), str(p, "name"), str(p, "state"));
    if (num(p, "since_ms"))
        printf(" since %s", tool_time_text(num(p, "since_ms") / 1000, when,
                                           sizeof when));
    if (!strcmp(str(p, "resume"), "probe")) {
        printf("; resumes after a probe");
        if (!strcmp(str(p, "state"), "paused") && num(p, "next_probe_ms"))
            printf(", next at %s", tool_time_text(num(p, "next_probe_ms") /
                                                  1000, when, sizeof when));
        printf(" (%lld failed)", (long long)num(p, "probes"));
    } else {
        printf("; a person resumes it");
    }
    printf("\n");
}

/* Print a record for people. */
static void print_record(json_t *j)
{
    json_t *n = json_object_get(j, "numbers"), *rc;
    size_t i;
    json_t *v;
    printf("incident %lld: %s, %s, rule %s (%s)\n", (long long)num(j, "id"),
           str(j, "state"), str(j, "severity"), str(j, "rule"),
           str(j, "signal"));
    printf("scope: %s %s, account %lld\n", str(j, "scope"),
           str(j, "scope_name"), (long long)num(j, "account"));
    printf("opened with: value %.4f, threshold %.4f, volume %lld, window "
           "%llds\n", json_real_value(json_object_get(n, "value")),
           json_real_value(json_object_get(n, "threshold")),
           (long long)num(n, "volume"), (long long)num(n, "window_s"));
    printf("action: %s; assignee: %s\n", str(j, "action"),
           str(j, "assignee"));
    if (num(j, "escalations"))
        printf("escalated: %lld time(s), last at %lld\n",
               (long long)num(j, "escalations"),
               (long long)num(j, "escalated_ms"));
    print_pause(j);
    rc = json_object_get(j, "root_cause");
    printf("root cause (%lld events):\n", (long long)num(rc, "events"));
    json_array_foreach(json_object_get(rc, "replies"), i, v)
        printf("  reply  %6lld  %s\n", (long long)num(v, "count"),
               str(v, "reply"));
    json_array_foreach(json_object_get(rc, "mx"), i, v)
        printf("  mx     %6lld  %s\n", (long long)num(v, "count"),
               str(v, "host"));
    json_array_foreach(json_object_get(rc, "domains"), i, v)
        printf("  domain %6lld  %s\n", (long long)num(v, "count"),
               str(v, "domain"));
    /* a gauge's own numbers (backoff floor, signing, spool, webhook) */
    const char *key;
    json_object_foreach(json_object_get(rc, "detail"), key, v) {
        char *t = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
        printf("  %-16s %s\n", key, t ? t : json_is_string(v)
               ? json_string_value(v) : "");
        free(t);
    }
    printf("timeline:\n");
    json_array_foreach(json_object_get(j, "timeline"), i, v)
        printf("  %lld %-12s %-10s %s\n", (long long)num(v, "time_ms"),
               str(v, "what"), str(v, "who"),
               json_string_value(json_object_get(v, "text"))
               ? str(v, "text") : "");
}

static int cmd_show(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    uint32_t account;
    json_t *j = NULL;
    int rc;
    if (argc != 2) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "incident show", &q)))
        return rc;
    if (!(rc = load(ctx, q, P " show", argv[1], ACT_INCIDENT_VIEW, &account,
                    &j, NULL))) {
        if (ctx->json)
            tool_emit_json(json_incref(j));
        else
            print_record(j);
    }
    json_decref(j);
    queue_close(q);
    return rc;
}

/* ack, assign, note, resolve: one timeline entry (incident_rec_person,
 * the path the web console takes too). */
static int change(struct tool_ctx *ctx, const char *prog, const char *ids,
                  const char *verb, const char *text, const char *action)
{
    struct queue *q;
    uint32_t account;
    json_t *j = NULL;
    int role, rc;
    if ((rc = tool_admin_begin(ctx, false, action, &q)))
        return rc;
    if (!(rc = load(ctx, q, prog, ids, ACT_INCIDENT_UPDATE, &account, &j,
                    &role))) {
        struct queue_actor by = tool_actor(ctx, role, account);
        const char *what = verb;
        uint64_t id = (uint64_t)num(j, "id");
        int err = incident_rec_person(q, id, (uint64_t)num(j, "campaign"),
                                      verb, text, &by,
                                      (int64_t)time(NULL) * 1000, &what);
        if (err == -EINVAL) {
            fprintf(stderr, "%s: %s\n", prog, queue_last_detail());
            rc = TOOL_EX_DATAERR;
        } else if (err) {
            rc = tool_admin_error(prog, err);
        } else if (ctx->json) {
            tool_emit_json(json_pack("{s:I,s:s}", "id", (json_int_t)id,
                                     "change", what));
        } else {
            printf("incident %llu %s\n", (unsigned long long)id, what);
        }
    }
    json_decref(j);
    queue_close(q);
    return rc;
}

static int cmd_ack(struct tool_ctx *ctx, int argc, char **argv)
{
    if (argc != 2)
        return fprintf(stderr, "%s", usage_text), TOOL_EX_USAGE;
    return change(ctx, P " ack", argv[1], "ack", NULL, "incident ack");
}

static int cmd_assign(struct tool_ctx *ctx, int argc, char **argv)
{
    if (argc != 3 || strlen(argv[2]) > 64)
        return fprintf(stderr, "%s", usage_text), TOOL_EX_USAGE;
    return change(ctx, P " assign", argv[1], "assign", argv[2],
                  "incident assign");
}

static int cmd_note(struct tool_ctx *ctx, int argc, char **argv)
{
    if (argc != 3 || strlen(argv[2]) > 2000)
        return fprintf(stderr, "%s", usage_text), TOOL_EX_USAGE;
    return change(ctx, P " note", argv[1], "note", argv[2], "incident note");
}

static int cmd_resolve(struct tool_ctx *ctx, int argc, char **argv)
{
    if ((argc != 2 && argc != 3) || (argc == 3 && strlen(argv[2]) > 2000))
        return fprintf(stderr, "%s", usage_text), TOOL_EX_USAGE;
    return change(ctx, P " resolve", argv[1], "resolve",
                  argc == 3 ? argv[2] : NULL, "incident resolve");
}

/* YYYY-MM into [from, to) in ms; false when it is not one. */
static bool month_range(const char *s, int64_t *from, int64_t *to)
{
    int y, m;
    char tail;
    if (strlen(s) != 7 || sscanf(s, "%4d-%2d%c", &y, &m, &tail) != 2 ||
        y < 1970 || y > 9999 || m < 1 || m > 12)
        return false;
    struct tm a = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1 };
    struct tm b = { .tm_year = m == 12 ? y - 1899 : y - 1900,
                    .tm_mon = m == 12 ? 0 : m, .tm_mday = 1 };
    *from = (int64_t)timegm(&a) * 1000;
    *to = (int64_t)timegm(&b) * 1000;
    return true;
}

static int cmd_report(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *month = NULL;
    bool bad = false;
    int64_t from, to;
    struct queue_account a;
    struct queue *q;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--month", &month, &bad))
            bad = true;
    if (bad || !month || !month_range(month, &from, &to)) {
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "incident report", &q)))
        return rc;
    if (!(rc = which_account(ctx, q, P " report", acct, &a)) &&
        !(rc = tool_authorize(ctx, q, ACT_INCIDENT_VIEW, a.id, 0,
                              "incidents", NULL))) {
        struct list_st l = { q, &a, false, json_array(), from, to };
        long n = queue_incidents(q, list_one, &l);
        if (n < 0) {
            json_decref(l.arr);
            queue_close(q);
            return tool_admin_error(P " report", (int)n);
        }
        json_t *rows = json_array(), *j;
        size_t i, nack = 0, nres = 0;
        double sack = 0, sres = 0;
        json_array_foreach(l.arr, i, j) {
            int64_t o = num(j, "opened_ms"), ak = num(j, "acknowledged_ms");
            int64_t rs = num(j, "resolved_ms");
            json_t *r = json_pack("{s:I,s:s,s:I}", "id",
                                  (json_int_t)num(j, "id"), "rule",
                                  str(j, "rule"), "account",
                                  (json_int_t)num(j, "account"));
            if (ak) {
                json_object_set_new(r, "tta_s", json_real((ak - o) / 1000.0));
                sack += (ak - o) / 1000.0;
                nack++;
            }
            if (rs) {
                json_object_set_new(r, "ttr_s", json_real((rs - o) / 1000.0));
                sres += (rs - o) / 1000.0;
                nres++;
            }
            json_array_append_new(rows, r);
        }
        json_t *rep = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "month",
                                month, "account", a.name, "incidents",
                                (json_int_t)json_array_size(l.arr),
                                "acknowledged", (json_int_t)nack,
                                "resolved", (json_int_t)nres, "mtta_s",
                                nack ? json_real(sack / (double)nack)
                                     : json_null(),
                                "mttr_s", nres ? json_real(sres / (double)nres)
                                               : json_null(),
                                "rows", rows);
        json_decref(l.arr);
        if (ctx->json) {
            tool_emit_json(rep);
        } else {
            printf("%s, account %s: %zu incidents, %zu acknowledged, %zu "
                   "resolved\n", month, a.name,
                   json_array_size(rows), nack, nres);
            if (nack)
                printf("MTTA %.1f s\n", sack / (double)nack);
            if (nres)
                printf("MTTR %.1f s\n", sres / (double)nres);
            printf("  %-6s %-16s %12s %12s\n", "ID", "RULE", "TTA (s)",
                   "TTR (s)");
            json_array_foreach(rows, i, j) {
                char ta[24] = "-", tr[24] = "-";
                json_t *ta_j = json_object_get(j, "tta_s");
                json_t *tr_j = json_object_get(j, "ttr_s");
                if (ta_j)
                    snprintf(ta, sizeof ta, "%.1f", json_real_value(ta_j));
                if (tr_j)
                    snprintf(tr, sizeof tr, "%.1f", json_real_value(tr_j));
                printf("  %-6lld %-16s %12s %12s\n", (long long)num(j, "id"),
                       str(j, "rule"), ta, tr);
            }
            json_decref(rep);
        }
    }
    queue_close(q);
    return rc;
}

int tool_incident_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "list", .run = cmd_list },
        { .name = "show", .run = cmd_show },
        { .name = "ack", .run = cmd_ack },
        { .name = "assign", .run = cmd_assign },
        { .name = "note", .run = cmd_note },
        { .name = "resolve", .run = cmd_resolve },
        { .name = "report", .run = cmd_report },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
