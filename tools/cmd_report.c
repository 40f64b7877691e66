/*
 * cmd_report.c - `sluice report`: sending over a range of UTC days, from
 * the spool's time series, as text, JSON or CSV.
 *
 *   sluice report summary|daily|hourly|campaigns|sites|domains|accounts|
 *                 leaderboard [--account A] [--from YYYY-MM-DD]
 *                 [--to YYYY-MM-DD] [--json | --csv]
 *
 * DESCRIPTION
 *   A thin adapter over report_build() (queue/queue_report.h), the
 *   builder sluiced uses too.  The account is --account, else the
 *   caller's default (tool_default_account); viewer on it is needed.  The
 *   master's view is the whole platform: every account, each in
 *   `accounts`, and their total in `summary`; a sub-account's view is its
 *   own mail only.  --from/--to are UTC days, inclusive (default: the 30
 *   days up to today; one of them alone: 30 days from or up to it).
 *
 *   --json prints the part of the builder's object the subcommand names
 *   (with account, from, to, generated); `accounts` adds billing (sent
 *   per calendar month and account) and the total; `leaderboard` is the
 *   accounts ranked by delivered.  --csv prints a header row and one row
 *   per line, the counts under the same names (bounces by category as
 *   bounced_CATEGORY, latency as latency_p50_ms ...).
 *
 * DIAGNOSTICS
 *   64 bad options, a date that is not a calendar day, --to before
 *   --from, or more than 800 days; 66 unknown account; 77 refused; 65/74
 *   a spool that cannot be read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_report.h"
#include "tool_admin.h"

#define P "sluice report"

static const char usage_text[] =
    "usage: sluice report summary|daily|hourly|campaigns|sites|domains|"
    "accounts|leaderboard\n"
    "         [--account A] [--from YYYY-MM-DD] [--to YYYY-MM-DD] "
    "[--json | --csv]\n";

/* The count columns of CSV and their order. */
static const char *const count_keys[] = {
    "queued", "attempted", "delivered", "bounced", "expired", "complained",
    "unsubscribed", "suppressed", "cancelled", "deferred", "opened",
    "clicked", "sent",
};
#define NKEYS (sizeof count_keys / sizeof count_keys[0])

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void csv_header(const char *const *lead, size_t nlead)
{
    for (size_t i = 0; i < nlead; i++)
        printf("%s,", lead[i]);
    for (size_t i = 0; i < NKEYS; i++)
        printf("%s,", count_keys[i]);
    for (int c = 1; c < QUEUE_CAT_COUNT; c++) {
        char name[64];
        snprintf(name, sizeof name, "bounced_%s", queue_category_name(c));
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        printf("%s,", name);
    }
    printf("first_attempt_rate,latency_p50_ms,latency_p90_ms,"
           "latency_p99_ms\n");
}

static void csv_value(json_t *v)
{
    if (json_is_string(v))
        csv_field(json_string_value(v));
    else if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%.4f", json_real_value(v));
    /* null: empty */
}

static void csv_row(json_t *row, const char *const *lead, size_t nlead)
{
    for (size_t i = 0; i < nlead; i++) {
        csv_value(json_object_get(row, lead[i]));
        putchar(',');
    }
    for (size_t i = 0; i < NKEYS; i++) {
        csv_value(json_object_get(row, count_keys[i]));
        putchar(',');
    }
    json_t *cat = json_object_get(row, "bounced_by_category");
    for (int c = 1; c < QUEUE_CAT_COUNT; c++) {
        json_t *n = json_object_get(cat, queue_category_name(c));
        printf("%lld,", n ? (long long)json_integer_value(n) : 0LL);
    }
    csv_value(json_object_get(row, "first_attempt_rate"));
    json_t *lat = json_object_get(row, "latency_ms");
    const char *const p[] = { "p50", "p90", "p99" };
    for (int i = 0; i < 3; i++) {
        putchar(',');
        csv_value(json_object_get(lat, p[i]));
    }
    putchar('\n');
}

/* Integer count key of row, 0 when absent. */
static long long cnt(json_t *row, const char *key)
{
    return (long long)json_integer_value(json_object_get(row, key));
}

static void text_header(const char *first)
{
    printf("%-28s %8s %8s %9s %8s %8s %8s %7s %8s %6s %9s\n", first,
           "QUEUED", "SENT", "DELIVERED", "BOUNCED", "DEFERRED", "EXPIRED",
           "COMPL", "OPENED", "1ST%", "P50");
}

static void text_row(json_t *row, const char *first)
{
    json_t *r = json_object_get(row, "first_attempt_rate");
    json_t *lat = json_object_get(json_object_get(row, "latency_ms"), "p50");
    char rate[16] = "-", p50[24] = "-";
    if (json_is_real(r))
        snprintf(rate, sizeof rate, "%.0f", 100.0 * json_real_value(r));
    if (lat) {
        long long ms = (long long)json_integer_value(lat);
        if (ms < 10000)
            snprintf(p50, sizeof p50, "%lldms", ms);
        else
            snprintf(p50, sizeof p50, "%llds", ms / 1000);
    }
    printf("%-28.28s %8lld %8lld %9lld %8lld %8lld %8lld %7lld %8lld %6s "
           "%9s\n", first, cnt(row, "queued"), cnt(row, "sent"),
           cnt(row, "delivered"), cnt(row, "bounced"), cnt(row, "deferred"),
           cnt(row, "expired"), cnt(row, "complained"), cnt(row, "opened"),
           rate, p50);
}

/* The summary as "name value" lines, bounces by category indented. */
static void text_summary(json_t *rep)
{
    json_t *s = json_object_get(rep, "summary");
    json_t *acct = json_object_get(rep, "account");
    printf("account      %s\n", json_is_string(acct)
                                ? json_string_value(acct)
                                : "(all: the whole platform)");
    printf("days         %s .. %s (UTC)\n",
           json_string_value(json_object_get(rep, "from")),
           json_string_value(json_object_get(rep, "to")));
    for (size_t i = 0; i < NKEYS; i++) {
        printf("%-12s %lld\n", count_keys[i], cnt(s, count_keys[i]));
        if (!strcmp(count_keys[i], "bounced")) {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(s, "bounced_by_category"),
                                k, v)
                printf("  %-18s %lld\n", k, (long long)json_integer_value(v));
        }
    }
    json_t *r = json_object_get(s, "first_attempt_rate");
    if (json_is_real(r))
        printf("first-attempt delivery rate %.1f%%\n",
               100.0 * json_real_value(r));
    json_t *lat = json_object_get(s, "latency_ms");
    if (json_is_object(lat))
        printf("latency      p50 %lld ms, p90 %lld ms, p99 %lld ms "
               "(queued -> delivered)\n", cnt(lat, "p50"), cnt(lat, "p90"),
               cnt(lat, "p99"));
}

/* Print the rows of rep's array key, first column from field (or the
 * rank when field is NULL). */
static void print_rows(json_t *rep, const char *key, const char *field,
                       const char *title, bool csv)
{
    json_t *rows = json_object_get(rep, key);
    size_t i;
    json_t *row;
    const char *lead[2] = { field ? field : "rank", "account_id" };
    size_t nlead = !field ? 2 : !strcmp(field, "account") ? 2 : 1;
    if (!field)
        lead[1] = "account";
    if (csv) {
        csv_header(lead, nlead);
        json_array_foreach(rows, i, row)
            csv_row(row, lead, nlead);
        return;
    }
    text_header(title);
    json_array_foreach(rows, i, row) {
        char first[64];
        if (!field)
            snprintf(first, sizeof first, "%zu. %s", i + 1,
                     json_string_value(json_object_get(row, "account")));
        else
            snprintf(first, sizeof first, "%s",
                     json_is_string(json_object_get(row, field))
                     ? json_string_value(json_object_get(row, field))
                     : "(none)");
        if (!first[0])
            snprintf(first, sizeof first, "(none)");
        text_row(row, first);
    }
}

/* The part of rep a subcommand shows, for --json. */
static json_t *json_part(json_t *rep, const char *sub)
{
    json_t *o = json_pack("{s:O,s:O,s:O,s:O}", "account",
                          json_object_get(rep, "account"), "from",
                          json_object_get(rep, "from"), "to",
                          json_object_get(rep, "to"), "generated",
                          json_object_get(rep, "generated"));
    if (!o)
        return NULL;
    if (!strcmp(sub, "summary")) {
        json_object_set(o, "summary", json_object_get(rep, "summary"));
    } else if (!strcmp(sub, "accounts")) {
        json_object_set(o, "accounts", json_object_get(rep, "accounts"));
        json_object_set(o, "total", json_object_get(rep, "summary"));
        json_object_set(o, "billing", json_object_get(rep, "billing"));
    } else if (!strcmp(sub, "leaderboard")) {
        json_t *rows = json_object_get(rep, "accounts"), *row;
        size_t i;
        json_array_foreach(rows, i, row)
            json_object_set_new(row, "rank", json_integer((json_int_t)i + 1));
        json_object_set(o, "accounts", rows);
    } else {
        json_object_set(o, sub, json_object_get(rep, sub));
    }
    return o;
}

int tool_report_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const char *const subs[] = {
        "summary", "daily", "hourly", "campaigns", "sites", "domains",
        "accounts", "leaderboard",
    };
    const char *sub = NULL, *acct = NULL, *from_s = NULL, *to_s = NULL;
    bool bad = false, csv = false;
    struct queue *q = NULL;
    struct queue_account *a = NULL;
    json_t *rep = NULL;
    int rc;

    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s", usage_text);
        return 0;
    }
    argc = tool_take_json(ctx, argc, argv);
    for (int i = 1; i < argc && !bad; i++) {
        if (tool_opt(argc, argv, &i, "--account", &acct, &bad) ||
            tool_opt(argc, argv, &i, "--from", &from_s, &bad) ||
            tool_opt(argc, argv, &i, "--to", &to_s, &bad))
            continue;
        if (!strcmp(argv[i], "--csv"))
            csv = true;
        else if (argv[i][0] != '-' && !sub)
            sub = argv[i];
        else
            bad = true;
    }
    bool known = false;
    for (size_t i = 0; sub && i < sizeof subs / sizeof subs[0]; i++)
        known |= !strcmp(sub, subs[i]);
    if (bad || !known || (csv && ctx->json)) {
        if (sub && !known && !bad)
            fprintf(stderr, P ": unknown report '%s'\n", sub);
        if (csv && ctx->json)
            fprintf(stderr, P ": --json and --csv exclude each other\n");
        fprintf(stderr, "%s", usage_text);
        return TOOL_EX_USAGE;
    }
    struct report_query rq = { 0 };
    int64_t now = (int64_t)time(NULL);
    if (from_s && report_parse_day(from_s, &rq.from)) {
        fprintf(stderr, P ": --from %s: not a day (YYYY-MM-DD)\n", from_s);
        return TOOL_EX_USAGE;
    }
    if (to_s && report_parse_day(to_s, &rq.to)) {
        fprintf(stderr, P ": --to %s: not a day (YYYY-MM-DD)\n", to_s);
        return TOOL_EX_USAGE;
    }
    if (from_s && !to_s) {
        rq.to = rq.from + 29 * 86400;
        if (rq.to > now)
            rq.to = now > rq.from ? now : rq.from;
    } else if (to_s && !from_s) {
        rq.from = rq.to - 29 * 86400;
    } else if (!from_s && !to_s) {
        rq.to = now;
        rq.from = now - 29 * 86400;
    }
    if (rq.to < rq.from) {
        fprintf(stderr, P ": --to %s is before --from %s\n", to_s, from_s);
        return TOOL_EX_USAGE;
    }
    if (rq.to / 86400 - rq.from / 86400 + 1 > REPORT_MAX_DAYS) {
        fprintf(stderr, P ": at most %d days in one report\n",
                REPORT_MAX_DAYS);
        return TOOL_EX_USAGE;
    }
    if (rq.from < 0)
        rq.from = 0;
    rq.now = now;

    if ((rc = tool_admin_begin(ctx, false, "report", &q)))
        return rc;
    if (!(a = malloc(sizeof *a))) {
        rc = TOOL_EX_OSERR;
        goto out;
    }
    if (acct) {
        if ((rc = tool_find_account(ctx, q, P, acct, a)))
            goto out;
    } else {
        uint32_t def = tool_default_account(ctx, q);
        if (!def || queue_account_get(q, def, a)) {
            fprintf(stderr, P ": no account to report on (make one with "
                    "'sluice account create')\n");
            rc = TOOL_EX_NOINPUT;
            goto out;
        }
    }
    char obj[128];
    snprintf(obj, sizeof obj, "report %s account %.80s", sub, a->name);
    if ((rc = tool_authorize(ctx, q, ACT_REPORT, a->id, 0, obj, NULL)))
        goto out;
    /* the master's view is the platform's; a sub-account's its own */
    rq.account = a->parent ? a->name : NULL;
    int err = report_build(q, &rq, &rep);
    if (err) {
        rc = tool_admin_error(P, err);
        goto out;
    }
    if (ctx->json) {
        tool_emit_json(json_part(rep, sub));
    } else if (!strcmp(sub, "summary")) {
        if (csv) {
            const char *lead[] = { "account", "from", "to" };
            json_t *s = json_deep_copy(json_object_get(rep, "summary"));
            json_object_set(s, "account", json_object_get(rep, "account"));
            json_object_set(s, "from", json_object_get(rep, "from"));
            json_object_set(s, "to", json_object_get(rep, "to"));
            csv_header(lead, 3);
            csv_row(s, lead, 3);
            json_decref(s);
        } else {
            text_summary(rep);
        }
    } else if (!strcmp(sub, "daily")) {
        print_rows(rep, "daily", "day", "DAY", csv);
    } else if (!strcmp(sub, "hourly")) {
        print_rows(rep, "hourly", "hour", "HOUR (UTC)", csv);
    } else if (!strcmp(sub, "campaigns")) {
        print_rows(rep, "campaigns", "campaign", "CAMPAIGN", csv);
    } else if (!strcmp(sub, "sites")) {
        print_rows(rep, "sites", "site", "SITE", csv);
    } else if (!strcmp(sub, "domains")) {
        print_rows(rep, "domains", "domain", "SENDING DOMAIN", csv);
    } else if (!strcmp(sub, "accounts")) {
        print_rows(rep, "accounts", "account", "ACCOUNT", csv);
        if (!csv) {
            text_row(json_object_get(rep, "summary"), "(total)");
            json_t *row;
            size_t i;
            printf("\n%-8s %-28s %10s\n", "MONTH", "ACCOUNT", "SENT");
            json_array_foreach(json_object_get(rep, "billing"), i, row)
                printf("%-8s %-28s %10lld\n",
                       json_string_value(json_object_get(row, "month")),
                       json_is_string(json_object_get(row, "account"))
                       ? json_string_value(json_object_get(row, "account"))
                       : "(none)", cnt(row, "sent"));
        }
    } else {
        print_rows(rep, "accounts", NULL, "RANK ACCOUNT", csv);
    }
out:
    json_decref(rep);
    free(a);
    queue_close(q);
    return rc;
}
