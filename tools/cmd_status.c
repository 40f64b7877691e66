/*
 * cmd_status.c - `sluice status`: one row per site with what is queued for
 * it and what sluiced is doing about it.
 *
 * DESCRIPTION
 *   Loads the merged view (status_view.c), sorts and cuts it, and prints a
 *   table or one JSON document; --watch repeats that every SECONDS until
 *   SIGINT or SIGTERM, which end it with exit 0.  On a terminal each
 *   refresh clears the screen; elsewhere each refresh is a block of its
 *   own (or one JSON document per line).  Below the table, the pauses
 *   incidents hold (incident_pause.c).  Read-only: safe beside sluiced.
 *
 * DIAGNOSTICS
 *   Exit 64 for bad usage, 65 foreign, damaged or too-new spool, 66 no
 *   spool, 78 a sluiced.conf that does not load; a missing, stale or
 *   unreadable status.json (or status_file) is not an error (the live
 *   columns are empty and the header says why).
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tool_admin.h"

static const char help[] =
    "usage: sluice status [--sort queued|name|rate|errors] [--limit N]\n"
    "                     [--json] [--watch [SECONDS]]\n"
    "\n"
    "One row per site (or domain) with mail queued in the spool, known to\n"
    "the running sluiced, or paused.  Live columns come from\n"
    "<spool>/status.json, or status_file of sluiced.conf (--config FILE,\n"
    "$SLUICE_CONFIG or /etc/sluice/sluiced.conf), which sluiced rewrites\n"
    "every second; when it is missing or over 5 s old, sluiced counts as\n"
    "not running and they are empty.\n"
    "\n"
    "  SITE        site name, or the domain for a row of kind domain\n"
    "  KIND        site (a [site] of the configuration) or domain\n"
    "  QUEUED      deliveries waiting in the spool for the row's domains\n"
    "              ('-': a paused site sluiced is not describing)\n"
    "  CONN        open connections / the site's maximum\n"
    "  RATE        messages delivered per second over the last 5 s / the\n"
    "              limit per second, e.g. 12.5/1.67/s; just 12.5/s when\n"
    "              there is no limit (the header line has the total)\n"
    "  STATE       normal, backoff, suspended or paused\n"
    "  NEXT RETRY  when a backed-off or suspended site is tried again\n"
    "  LAST ERROR  the last failure reply, cut to the terminal's width\n"
    "\n"
    "  --sort      queued (default, most first), name, rate (fastest\n"
    "              first) or errors (deferrals + bounces, most first)\n"
    "  --limit N   rows to show, default 50, 0 for all\n"
    "  --json      one JSON document with every field of the rows\n"
    "  --watch     redraw every SECONDS (default 2) until interrupted\n"
    "\n"
    "Below the table, what incidents paused (a rule's action): the\n"
    "campaign, account or site, the incident and rule, since when, and\n"
    "how it resumes.\n";

enum sort_key { SORT_QUEUED, SORT_NAME, SORT_RATE, SORT_ERRORS };
static const char *const sort_names[] = { "queued", "name", "rate",
                                          "errors" };

struct status_opts {
    enum sort_key sort;
    unsigned long long limit;
    double watch;                /* seconds between refreshes; 0: once */
};

/* ------------------------------------------------------- live fields */

/* A number field of a row's live object; def when absent. */
static double live_num(const struct status_row *r, const char *key,
                       double def)
{
    json_t *j = r->live ? json_object_get(r->live, key) : NULL;
    return json_is_number(j) ? json_number_value(j) : def;
}

/* A string field of a row's live object; NULL when absent. */
static const char *live_str(const struct status_row *r, const char *key)
{
    json_t *j = r->live ? json_object_get(r->live, key) : NULL;
    return json_string_value(j);
}

/* The row's state: paused wins over what sluiced says; NULL if unknown. */
static const char *row_state(const struct status_row *r)
{
    return r->pause ? "paused" : live_str(r, "state");
}

/* Failures sluiced counted for the row: deferrals and bounces. */
static double row_errors(const struct status_row *r)
{
    return live_num(r, "deferred", 0) + live_num(r, "bounced", 0);
}

/* ------------------------------------------------------------ sorting */

static enum sort_key sort_by;   /* for cmp_rows (qsort has no argument) */

static int cmp_num(double a, double b)
{
    return a > b ? -1 : a < b ? 1 : 0;   /* larger first */
}

/* Order rows by sort_by, then queued (most first), name and kind. */
static int cmp_rows(const void *pa, const void *pb)
{
    const struct status_row *a = pa, *b = pb;
    int c = 0;
    double qa = a->queued_known ? (double)a->queued : -1;
    double qb = b->queued_known ? (double)b->queued : -1;
    switch (sort_by) {
    case SORT_QUEUED: c = cmp_num(qa, qb); break;
    case SORT_NAME: break;
    case SORT_RATE: c = cmp_num(live_num(a, "rate", -1), live_num(b, "rate", -1));
                    break;
    case SORT_ERRORS:
        if (!(c = cmp_num(row_errors(a), row_errors(b))))
            c = cmp_num(live_str(a, "last_error") && *live_str(a, "last_error"),
                        live_str(b, "last_error") && *live_str(b, "last_error"));
        break;
    }
    if (!c && sort_by != SORT_QUEUED && sort_by != SORT_NAME)
        c = cmp_num(qa, qb);
    if (!c)
        c = strcmp(a->name, b->name);
    return c ? c : a->kind - b->kind;
}

/* ------------------------------------------------------------ text */

/* Copy s into buf for a cell of at most width columns: control bytes
 * become '?', a cut ends in '~' and never splits a UTF-8 character. */
static void cell(char *buf, size_t cap, const char *s, size_t width)
{
    size_t n = 0, cols = 0;
    if (!s || !*s)
        s = "-";
    if (width + 1 > cap)
        width = cap - 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool lead = (*p & 0xc0) != 0x80;
        if (lead && cols == width)
            break;
        if (n + 2 > cap)
            break;
        buf[n++] = *p < ' ' || *p == 0x7f ? '?' : (char)*p;
        cols += lead;
    }
    if (cols == width && s[n]) {
        /* cut: replace the last character by '~' */
        while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0)
            n--;
        buf[n++] = '~';
    }
    buf[n] = 0;
}

/* Print s in a left-aligned column of width characters and two spaces
 * (printf would pad by bytes, not characters). */
static void put_col(const char *s, size_t width, bool last)
{
    char buf[1024];
    cell(buf, sizeof buf, s, width);
    fputs(buf, stdout);
    if (last)
        return;
    size_t cols = 0;
    for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
        cols += (*p & 0xc0) != 0x80;
    for (; cols < width + 2; cols++)
        putchar(' ');
}

/* A rate for the RATE column: 3 significant digits, no trailing zeros. */
static void fmt_rate(char *buf, size_t cap, double x)
{
    snprintf(buf, cap, "%.*f", x >= 100 ? 0 : x >= 10 ? 1 : 2, x);
    if (strchr(buf, '.')) {
        char *e = buf + strlen(buf) - 1;
        while (*e == '0')
            *e-- = 0;
        if (*e == '.')
            *e = 0;
    }
}

/* "in 4m10s", "now" or "-" for a next-retry time in unix ms. */
static void fmt_retry(char *buf, size_t cap, double at_ms, int64_t now_ms)
{
    if (at_ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    long long s = (long long)ceil((at_ms - (double)now_ms) / 1000);
    if (s <= 0)
        snprintf(buf, cap, "now");
    else if (s < 60)
        snprintf(buf, cap, "in %llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "in %lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "in %lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "in %lldd%02lldh", s / 86400, s / 3600 % 24);
}

/* Columns the output may use: the terminal's, $COLUMNS, else 120. */
static size_t out_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
        ws.ws_col >= 40)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    unsigned long long n;
    if (c && tool_parse_u64(c, &n) && n >= 40 && n <= 1000)
        return (size_t)n;
    return 120;
}

/* The line about sluiced: pid, sessions, in flight, or why it is not
 * running. */
static void print_header(const struct status_view *v)
{
    if (!v->doc) {
        printf("sluiced is not running (live columns empty)");
        if (*v->why_not) {
            char why[300];
            cell(why, sizeof why, v->why_not, sizeof why - 1);
            printf(": %s", why);
        }
        printf("\n");
        return;
    }
    json_t *d = v->doc;
    /* the rate of the last few seconds (sluiced's status.c), not an
     * average that lags behind a pause or a cancel */
    char rate[40] = "";
    json_t *rj = json_object_get(d, "rate");
    if (json_is_number(rj)) {   /* absent from an older sluiced's */
        char r[24];
        fmt_rate(r, sizeof r, json_number_value(rj));
        snprintf(rate, sizeof rate, "rate %s/s, ", r);
    }
    printf("sluiced pid %lld: sessions %lld/%lld, %lld in flight, "
           "%sstatus %.1fs old\n",
           (long long)json_integer_value(json_object_get(d, "pid")),
           (long long)json_integer_value(json_object_get(d, "sessions")),
           (long long)json_integer_value(json_object_get(d, "max_sessions")),
           (long long)json_integer_value(json_object_get(d, "inflight")),
           rate, v->age_ms > 0 ? (double)v->age_ms / 1000 : 0.0);
    /* the spool cannot take writes: deliveries wait (sluiced record.c) */
    json_t *sp = json_object_get(d, "spool_state");
    const char *st = json_string_value(json_object_get(sp, "state"));
    const char *why = json_string_value(json_object_get(sp, "error"));
    json_t *held = json_object_get(sp, "held_outcomes");
    if (st && strcmp(st, "writable"))
        printf("spool %s: %s; %lld outcomes held, no new deliveries until "
               "it can be written\n", st, why ? why : "",
               (long long)json_integer_value(held));
}

/* What incidents paused (the circuit breaker), one line each. */
static void print_breakers(const struct status_view *v)
{
    char line[400], an[QUEUE_MAX_CTL_NAME + 24];
    if (!v->npauses)
        return;
    printf("paused by incidents:\n");
    for (size_t i = 0; i < v->npauses; i++) {
        const struct tool_pause *p = &v->pauses[i];
        snprintf(an, sizeof an, "%s %s", p->kind, p->name);
        printf("  %-24s %s\n", an, tool_pause_text(p, line, sizeof line));
    }
}

/* The table: header, column titles, show rows, a note on the rest. */
static void print_text(const struct status_view *v, size_t show)
{
    size_t namew = 4;
    for (size_t i = 0; i < show; i++) {
        size_t n = strlen(v->rows[i].name);
        if (n > namew)
            namew = n;
    }
    if (namew > 32)
        namew = 32;
    /* SITE KIND QUEUED CONN RATE STATE NEXT-RETRY, two spaces apart */
    size_t used = namew + 2 + 6 + 2 + 9 + 2 + 9 + 2 + 13 + 2 + 9 + 2 + 11 + 2;
    size_t width = out_width();
    size_t errw = width > used + 10 ? width - used : 10;

    print_header(v);
    put_col("SITE", namew, false);
    printf("%-6s  %9s  %-9s  %-13s  %-9s  %-11s  LAST ERROR\n", "KIND",
           "QUEUED", "CONN", "RATE", "STATE", "NEXT RETRY");
    for (size_t i = 0; i < show; i++) {
        const struct status_row *r = &v->rows[i];
        char queued[24] = "-", conn[48] = "-", rate[64] = "-", retry[32];
        char state[16], a[24], b[24];
        if (r->queued_known)
            snprintf(queued, sizeof queued, "%llu",
                     (unsigned long long)r->queued);
        if (r->live) {
            double c = live_num(r, "connections", 0);
            double m = live_num(r, "max_connections", 0);
            if (m > 0)
                snprintf(conn, sizeof conn, "%.0f/%.0f", c, m);
            else
                snprintf(conn, sizeof conn, "%.0f", c);
            double lim = live_num(r, "max_rate_per_s", 0);
            fmt_rate(a, sizeof a, live_num(r, "rate", 0));
            fmt_rate(b, sizeof b, lim);
            if (lim > 0)
                snprintf(rate, sizeof rate, "%s/%s/s", a, b);
            else
                snprintf(rate, sizeof rate, "%s/s", a);
        }
        fmt_retry(retry, sizeof retry, live_num(r, "next_retry_ms", 0),
                  v->now_ms);
        cell(state, sizeof state, row_state(r), 9);
        put_col(r->name, namew, false);
        printf("%-6s  %9s  %-9s  %-13s  %-9s  %-11s  ",
               tool_ctl_kind_name(r->kind), queued, conn, rate, state, retry);
        put_col(live_str(r, "last_error"), errw, true);
        putchar('\n');
    }
    if (show < v->nrows)
        printf("(%zu more rows; --limit 0 shows all)\n", v->nrows - show);
    print_breakers(v);
}

/* ------------------------------------------------------------ JSON */

/* The row as a JSON object: spool facts, pause and the live fields. */
static json_t *row_json(const struct status_view *v,
                        const struct status_row *r)
{
    static const char *const live_keys[] = {
        "connections", "max_connections", "rate", "max_rate",
        "max_rate_per_s", "concurrency_limit", "rate_factor", "last_error",
        "next_retry_ms", "delivered", "deferred", "bounced", "waiting",
        "live_limits",
    };
    const char *state = row_state(r);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "kind", json_string(tool_ctl_kind_name(r->kind)));
    json_t *doms = r->live ? json_object_get(r->live, "domains") : NULL;
    if (json_is_array(doms))
        json_object_set(o, "domains", doms);
    else if (r->kind == QUEUE_CTL_DOMAIN)
        json_object_set_new(o, "domains", json_pack("[s]", r->name));
    else
        json_object_set_new(o, "domains", json_array());
    json_object_set_new(o, "queued", r->queued_known
                        ? json_integer((json_int_t)r->queued) : json_null());
    json_object_set_new(o, "state", state ? json_string(state) : json_null());
    json_object_set_new(o, "paused", json_boolean(r->pause));
    json_object_set_new(o, "pause", r->pause
        ? json_pack("{s:I,s:s,s:s}", "since", (json_int_t)r->pause->since,
                    "who", r->pause->who, "reason", r->pause->reason)
        : json_null());
    /* a site an incident paused: which one (incident_pause.c) */
    const struct tool_pause *by = r->pause && r->kind == QUEUE_CTL_SITE
        ? tool_pause_find(v->pauses, v->npauses, "site", r->name) : NULL;
    if (r->pause)
        json_object_set_new(json_object_get(o, "pause"), "incident",
                            by ? tool_pause_json(by) : json_null());
    json_object_set_new(o, "live", json_boolean(r->live));
    for (size_t i = 0; i < sizeof live_keys / sizeof live_keys[0]; i++) {
        json_t *j = r->live ? json_object_get(r->live, live_keys[i]) : NULL;
        json_object_set_new(o, live_keys[i], j ? json_incref(j) : json_null());
    }
    return o;
}

/* One JSON document: spool, sluiced facts, sort, row counts, rows. */
static void print_json(const struct status_view *v, size_t show,
                       const struct status_opts *so, const char *spool)
{
    json_t *sluiced;
    if (v->doc) {
        sluiced = json_pack("{s:b,s:I}", "running", 1, "status_age_ms",
                            (json_int_t)v->age_ms);
        static const char *const keys[] = { "pid", "sessions",
                                            "max_sessions", "inflight",
                                            "time_ms", "spool_state",
                                            "rate", "rate_window_s" };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *j = json_object_get(v->doc, keys[i]);
            json_object_set_new(sluiced, keys[i],
                                j ? json_incref(j) : json_null());
        }
    } else {
        sluiced = json_pack("{s:b,s:s}", "running", 0, "why",
                            *v->why_not ? v->why_not : "status.json missing");
        json_object_set_new(sluiced, "status_age_ms", v->age_ms >= 0
                            ? json_integer(v->age_ms) : json_null());
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < show; i++)
        json_array_append_new(rows, row_json(v, &v->rows[i]));
    json_t *doc = json_pack("{s:s,s:I,s:o,s:s,s:I,s:I,s:o}", "spool", spool,
                            "time_ms", (json_int_t)v->now_ms,
                            "sluiced", sluiced,
                            "sort", sort_names[so->sort],
                            "total_rows", (json_int_t)v->nrows,
                            "shown_rows", (json_int_t)show, "rows", rows);
    json_t *br = json_array();
    for (size_t i = 0; i < v->npauses; i++)
        json_array_append_new(br, tool_pause_json(&v->pauses[i]));
    json_object_set_new(doc, "paused_by_incidents", br);
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (s)
        puts(s);
    free(s);
    json_decref(doc);
}

/* ------------------------------------------------------------ main */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Sleep up to seconds; returns early when a signal arrives (nanosleep is
 * never restarted after a handler). */
static void nap(double seconds)
{
    struct timespec ts = { (time_t)seconds,
                           (long)((seconds - floor(seconds)) * 1e9) };
    while (!interrupted && nanosleep(&ts, &ts) != 0)
        ;
}

/* Load, sort, print once. */
static int show_once(struct tool_ctx *ctx, const struct status_opts *so)
{
    struct status_view v;
    int rc = status_view_load(&v, ctx);
    if (rc)
        return rc;
    sort_by = so->sort;
    if (v.nrows)
        qsort(v.rows, v.nrows, sizeof *v.rows, cmp_rows);
    size_t show = so->limit && so->limit < v.nrows ? (size_t)so->limit
                                                   : v.nrows;
    if (ctx->json)
        print_json(&v, show, so, ctx->spool);
    else
        print_text(&v, show);
    status_view_free(&v);
    fflush(stdout);
    return 0;
}

/* Parse the options; returns false on bad usage. */
static bool parse_opts(struct status_opts *so, int argc, char **argv)
{
    *so = (struct status_opts){ .sort = SORT_QUEUED, .limit = 50 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sort") && i + 1 < argc) {
            size_t k = 0, n = sizeof sort_names / sizeof sort_names[0];
            while (k < n && strcmp(argv[i + 1], sort_names[k]))
                k++;
            if (k == n)
                return false;
            so->sort = (enum sort_key)k;
            i++;
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc &&
                   tool_parse_u64(argv[i + 1], &so->limit)) {
            i++;
        } else if (!strcmp(argv[i], "--watch")) {
            char *end;
            so->watch = 2;
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                double s = strtod(argv[i + 1], &end);
                if (*end || !(s >= 0.1 && s <= 3600))
                    return false;
                so->watch = s;
                i++;
            }
        } else {
            return false;
        }
    }
    return true;
}

int tool_status_main(struct tool_ctx *ctx, int argc, char **argv)
{
    struct status_opts so;
    argc = tool_take_json(ctx, argc, argv);
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(help, stdout);
        return 0;
    }
    if (!parse_opts(&so, argc, argv)) {
        fputs(help, stderr);
        return TOOL_EX_USAGE;
    }
    if (!so.watch)
        return show_once(ctx, &so);

    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    for (bool first = true; !interrupted; first = false) {
        if (tty && !ctx->json)
            fputs("\033[H\033[2J", stdout);
        else if (!first && !ctx->json)
            putchar('\n');
        if (!ctx->json) {
            time_t now = time(NULL);
            struct tm tm;
            char when[32] = "";
            if (localtime_r(&now, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            printf("%s, every %gs (Ctrl-C ends)\n", when, so.watch);
        }
        int rc = show_once(ctx, &so);
        if (rc)
            return rc;
        nap(so.watch);
    }
    return 0;
}
