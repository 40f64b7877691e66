/*
 * report_html.c - the report object (report_build(): the counts of the
 * period, per day, per hour, per campaign, site, sending domain and
 * sub-account) as one self-contained HTML page, and as a short text.
 *
 * DESCRIPTION
 *   The page is one file with nothing outside it: the CSS is inline, the
 *   charts are inline SVG (report_svg.c), there are no scripts, fonts or
 *   images to fetch, so it reads the same offline, in a mail client that
 *   blocks remote content, and on paper (a print stylesheet: A4, no
 *   backgrounds lost, sections not split).  It is also well-formed XML
 *   (every element closed, text escaped), so a strict parser reads it.
 *   Sections: the summary table of the defined counts, volume per day,
 *   busiest hours, outcomes by category, delivery latency, the
 *   sub-account leaderboard (table with bars), then campaigns, sites,
 *   sending domains and billing months as tables (REPORT_HTML_ROWS each,
 *   the rest counted).  Every name that comes from users (account,
 *   campaign, site, domain, bounce category) is escaped: a campaign named
 *   <script> shows as that text.  A period without mail says so at the
 *   top and in each chart.  The text summary is the mail's plain part.
 *   The HTML and SVG are written by hand: no packaged C library renders
 *   either, and the page is a few templates.
 *
 * DIAGNOSTICS
 *   -EINVAL for a report that is not a JSON object; -ENOMEM; -E2BIG for a
 *   page past REPORT_HTML_MAX.  Missing parts or rows of the wrong type
 *   are shown as absent (zero), not refused.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"
#include "report_html_int.h"

/* ------------------------------------------------------------ buffer */

/* Room for n more bytes (and a NUL); false once the buffer has failed. */
static bool hb_room(struct hbuf *b, size_t n)
{
    if (b->err)
        return false;
    if (b->len + n + 1 > b->max) {
        b->err = -E2BIG;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + n + 1)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->err = -ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void hb_put(struct hbuf *b, const char *s, size_t n)
{
    if (!hb_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void hb_puts(struct hbuf *b, const char *s)
{
    hb_put(b, s, strlen(s));
}

void hb_printf(struct hbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        hb_put(b, tmp, (size_t)n);
        return;
    }
    if (!hb_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hb_esc(struct hbuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        switch (*p) {
        case '&': hb_puts(b, "&amp;"); break;
        case '<': hb_puts(b, "&lt;"); break;
        case '>': hb_puts(b, "&gt;"); break;
        case '"': hb_puts(b, "&quot;"); break;
        case '\'': hb_puts(b, "&#39;"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                hb_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            else
                hb_put(b, (const char *)p, 1);
        }
    }
}

void hb_count(struct hbuf *b, double v)
{
    if (!isfinite(v)) {
        hb_puts(b, "?");
        return;
    }
    if (v != floor(v) || fabs(v) >= 1e15) {
        hb_printf(b, "%.2f", v);
        return;
    }
    char digits[32], out[48];
    snprintf(digits, sizeof digits, "%lld", (long long)fabs(v));
    size_t n = strlen(digits), o = 0;
    if (v < 0)
        out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    hb_puts(b, out);
}

/* A rate of row (0..1) as a percentage, "-" when it is not a number
 * (the builder's null: nothing delivered). */
static void hb_rate(struct hbuf *b, const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    if (json_is_number(v))
        hb_printf(b, "%.1f%%", 100 * json_number_value(v));
    else
        hb_puts(b, "-");
}

/* ------------------------------------------------------------ rows */

double rep_num(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

const char *rep_str(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

bool rep_day(const char *s, long *days)
{
    int y, m, d, n = 0;
    if (!s || strlen(s) < 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3
        || n != 10 || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 ||
        d > 31)
        return false;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return true;
}

void rep_day_str(long days, char out[11])
{
    /* civil_from_days, the inverse of days_from_civil() */
    days += 719468;
    long era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%04ld-%02u-%02u", (y + (m <= 2)) % 10000,
             m % 100, d % 100);
    memcpy(out, tmp, 10);
    out[10] = 0;
}

void rep_days(const json_t *report, struct rep_days *d)
{
    const json_t *daily = json_object_get(report, "daily");
    long from, to;
    d->n = 0;
    if (rep_day(rep_str(report, "from"), &from) &&
        rep_day(rep_str(report, "to"), &to) && to >= from &&
        to - from < SVG_MAX_DAYS) {
        for (long day = from; day <= to; day++) {
            rep_day_str(day, d->name[d->n]);
            d->row[d->n] = NULL;
            size_t i;
            const json_t *row;
            json_array_foreach(daily, i, row) {
                if (i == 2 * SVG_MAX_DAYS) /* a day has one row */
                    break;
                if (!strncmp(rep_str(row, "day"), d->name[d->n], 10))
                    d->row[d->n] = row;
            }
            d->n++;
        }
        return;
    }
    size_t i;
    const json_t *row;
    json_array_foreach(daily, i, row) {
        if (d->n == SVG_MAX_DAYS)
            break;
        snprintf(d->name[d->n], 11, "%.10s", rep_str(row, "day"));
        if (strlen(d->name[d->n]) < 10)
            snprintf(d->name[d->n], 11, "unknown");
        d->row[d->n++] = row;
    }
}

/* ------------------------------------------------------------ page */

/* The defined counts in the order the summary shows them, with a line
 * each (README's "Reports" section is their definition). */
static const struct { const char *key, *what; } counts[] = {
    { "queued", "recipients put in the queue" },
    { "attempted", "recipients whose first SMTP attempt ended" },
    { "delivered", "recipients a receiver accepted with 250" },
    { "bounced", "recipients ended by a permanent failure" },
    { "expired", "recipients still deferred at max_age" },
    { "complained", "complaint (ARF) events" },
    { "unsubscribed", "unsubscribe events" },
    { "suppressed", "recipients ended unsent: the address was suppressed" },
    { "suppressed_at_send", "contacts a campaign's send left out: "
                            "suppressed then, never queued" },
    { "cancelled", "recipients ended unsent by a campaign's cancel" },
    { "deferred", "temporary failures (a recipient may have several)" },
    { "opened", "tracked opens" },
    { "clicked", "tracked clicks" },
    { "sent", "delivered + bounced: recipients with a final answer" },
};
#define NCOUNTS (sizeof counts / sizeof counts[0])

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
    "sans-serif;color:#212121;margin:0 auto;max-width:60em;padding:1em}"
    "h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;"
    "border-bottom:1px solid #ccc}"
    ".meta{color:#555}.empty{color:#555;font-style:italic}"
    ".notice{background:#fff8e1;border:1px solid #ffe082;padding:.6em}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:.2em .5em;border-bottom:1px solid #eee;"
    "vertical-align:middle}td.n,th.n{text-align:right;"
    "font-variant-numeric:tabular-nums}"
    "svg.chart{width:100%;height:auto;display:block}"
    "svg.cellbar{width:6em;height:.7em}"
    ".grid{stroke:#e0e0e0;stroke-width:1}.ax{font-size:11px;fill:#555}"
    "section{margin-bottom:1em}"
    "@page{size:A4;margin:12mm}"
    "@media print{body{max-width:none;padding:0;font-size:11px}"
    "section{break-inside:avoid;page-break-inside:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/* The summary table of the defined counts. */
static void summary_table(struct hbuf *b, const json_t *s)
{
    hb_puts(b, "<section id=\"summary\"><h2>Summary</h2><table><thead><tr>"
               "<th>count</th><th class=\"n\">value</th><th>meaning</th>"
               "</tr></thead><tbody>\n");
    for (size_t i = 0; i < NCOUNTS; i++) {
        hb_printf(b, "<tr><td>%s</td><td class=\"n\">", counts[i].key);
        hb_count(b, rep_num(s, counts[i].key));
        hb_printf(b, "</td><td>%s</td></tr>\n", counts[i].what);
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(s, "bounced_by_category"),
                        k, v) {
        hb_puts(b, "<tr><td>bounced: ");
        hb_esc(b, k);
        hb_puts(b, "</td><td class=\"n\">");
        hb_count(b, json_number_value(v));
        hb_puts(b, "</td><td>bounces of this category</td></tr>\n");
    }
    hb_puts(b, "<tr><td>first_attempt_rate</td><td class=\"n\">");
    hb_rate(b, s, "first_attempt_rate");
    hb_puts(b, "</td><td>delivered on the first attempt, of those "
               "delivered</td></tr>\n");
    const json_t *l = json_object_get(s, "latency_ms");
    static const char *const pct[] = { "p50", "p90", "p99" };
    for (size_t i = 0; i < 3; i++) {
        hb_printf(b, "<tr><td>latency_ms %s</td><td class=\"n\">", pct[i]);
        if (json_is_number(json_object_get(l, pct[i])))
            hb_count(b, rep_num(l, pct[i]));
        else
            hb_puts(b, "-");
        hb_printf(b, "</td><td>milliseconds from queued to delivered, "
                  "%s of deliveries faster</td></tr>\n",
                  i == 0 ? "half" : i == 1 ? "90%" : "99%");
    }
    hb_puts(b, "</tbody></table></section>\n");
}

/* A table of rows named by name_key: the name, the main counts, and for
 * the leaderboard a bar of delivered. */
static void rows_table(struct hbuf *b, const json_t *rows, const char *id,
                       const char *title, const char *name_key, bool bars)
{
    static const char *const cols[] = { "delivered", "bounced", "expired",
                                        "deferred", "complained",
                                        "suppressed" };
    const size_t ncols = sizeof cols / sizeof cols[0];
    hb_printf(b, "<section id=\"%s\"><h2>%s</h2>", id, title);
    size_t n = json_array_size(rows);
    if (!n) {
        hb_puts(b, "<p class=\"empty\">No rows in this period.</p>"
                   "</section>\n");
        return;
    }
    double max = 0;
    for (size_t i = 0; i < n && i < REPORT_HTML_ROWS; i++)
        if (rep_num(json_array_get(rows, i), "delivered") > max)
            max = rep_num(json_array_get(rows, i), "delivered");
    hb_puts(b, "<table><thead><tr>");
    if (bars)
        hb_puts(b, "<th class=\"n\">#</th>");
    hb_printf(b, "<th>%s</th>", name_key);
    for (size_t c = 0; c < ncols; c++)
        hb_printf(b, "<th class=\"n\">%s</th>", cols[c]);
    hb_puts(b, "<th class=\"n\">first attempt</th>");
    if (bars)
        hb_puts(b, "<th>delivered</th>");
    hb_puts(b, "</tr></thead><tbody>\n");
    for (size_t i = 0; i < n && i < REPORT_HTML_ROWS; i++) {
        const json_t *r = json_array_get(rows, i);
        hb_puts(b, "<tr>");
        if (bars)
            hb_printf(b, "<td class=\"n\">%zu</td>", i + 1);
        hb_puts(b, "<td>");
        hb_esc(b, *rep_str(r, name_key) ? rep_str(r, name_key) : "(none)");
        if (!strcmp(name_key, "campaign") && *rep_str(r, "account")) {
            hb_puts(b, " <span class=\"meta\">(");
            hb_esc(b, rep_str(r, "account"));
            hb_puts(b, ")</span>");
        }
        hb_puts(b, "</td>");
        for (size_t c = 0; c < ncols; c++) {
            hb_puts(b, "<td class=\"n\">");
            hb_count(b, rep_num(r, cols[c]));
            hb_puts(b, "</td>");
        }
        hb_puts(b, "<td class=\"n\">");
        hb_rate(b, r, "first_attempt_rate");
        hb_puts(b, "</td>");
        if (bars) {
            hb_puts(b, "<td>");
            svg_cell_bar(b, rep_num(r, "delivered"), max, "#2e7d32");
            hb_puts(b, "</td>");
        }
        hb_puts(b, "</tr>\n");
    }
    hb_puts(b, "</tbody></table>");
    if (n > REPORT_HTML_ROWS)
        hb_printf(b, "<p class=\"meta\">%zu more not shown.</p>",
                  n - REPORT_HTML_ROWS);
    hb_puts(b, "</section>\n");
}

/* Billing usage per calendar month. */
static void billing_table(struct hbuf *b, const json_t *rows)
{
    size_t n = json_array_size(rows);
    if (!n)
        return;
    hb_puts(b, "<section id=\"billing\"><h2>Billing usage</h2><table><thead>"
               "<tr><th>month</th><th>account</th><th class=\"n\">sent</th>"
               "</tr></thead><tbody>\n");
    for (size_t i = 0; i < n && i < REPORT_HTML_ROWS; i++) {
        const json_t *r = json_array_get(rows, i);
        hb_puts(b, "<tr><td>");
        hb_esc(b, rep_str(r, "month"));
        hb_puts(b, "</td><td>");
        hb_esc(b, rep_str(r, "account"));
        hb_puts(b, "</td><td class=\"n\">");
        hb_count(b, rep_num(r, "sent"));
        hb_puts(b, "</td></tr>\n");
    }
    hb_puts(b, "</tbody></table></section>\n");
}

/* Whose report: the account's name, or the whole platform. */
static void who(struct hbuf *b, const json_t *report)
{
    const char *a = json_string_value(json_object_get(report, "account"));
    if (a) {
        hb_puts(b, "account ");
        hb_esc(b, a);
    } else {
        hb_puts(b, "all accounts");
    }
}

/* Nothing happened in the period: every count of the summary is zero
 * (the builder's daily rows are there, zeros, for every day). */
static bool report_empty(const json_t *report)
{
    const json_t *s = json_object_get(report, "summary");
    for (size_t i = 0; i < NCOUNTS; i++)
        if (rep_num(s, counts[i].key) > 0)
            return false;
    return true;
}

/* A finished buffer into the caller's hands. */
static int hb_finish(struct hbuf *b, char **out, size_t *len)
{
    if (!b->err && !b->p)
        hb_room(b, 0);
    if (b->err) {
        free(b->p);
        return b->err;
    }
    *out = b->p;
    if (len)
        *len = b->len;
    return 0;
}

int report_html_render(const json_t *report, char **page, size_t *len)
{
    *page = NULL;
    if (!json_is_object(report))
        return -EINVAL;
    struct hbuf b = { .max = REPORT_HTML_MAX };
    const json_t *s = json_object_get(report, "summary");
    hb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                "<meta charset=\"utf-8\"/><meta name=\"viewport\" "
                "content=\"width=device-width, initial-scale=1\"/>"
                "<title>sluice report: ");
    who(&b, report);
    hb_puts(&b, ", ");
    hb_esc(&b, rep_str(report, "from"));
    hb_puts(&b, " to ");
    hb_esc(&b, rep_str(report, "to"));
    hb_printf(&b, "</title><style>%s</style></head>\n<body>\n<header>"
              "<h1>sluice report</h1><p class=\"meta\">", css);
    who(&b, report);
    hb_puts(&b, " &#183; ");
    hb_esc(&b, rep_str(report, "from"));
    hb_puts(&b, " to ");
    hb_esc(&b, rep_str(report, "to"));
    hb_puts(&b, " (UTC days) &#183; generated ");
    hb_esc(&b, rep_str(report, "generated"));
    hb_puts(&b, "</p></header>\n");
    if (report_empty(report))
        hb_puts(&b, "<p class=\"notice empty\" id=\"no-data\">No mail in "
                    "this period: nothing was queued, sent or delivered "
                    "for this selection.</p>\n");
    summary_table(&b, s);
    hb_puts(&b, "<section id=\"volume\"><h2>Volume per day</h2>");
    svg_volume(&b, report);
    hb_puts(&b, "</section>\n<section id=\"hours\"><h2>Busiest hours "
                "(attempts, UTC)</h2>");
    svg_heatmap(&b, json_object_get(report, "hourly"));
    hb_puts(&b, "</section>\n<section id=\"outcomes\"><h2>Outcomes by "
                "category</h2>");
    svg_outcomes(&b, s);
    hb_puts(&b, "</section>\n<section id=\"latency\"><h2>Delivery latency "
                "(queued to delivered)</h2>");
    svg_latency(&b, report);
    hb_puts(&b, "</section>\n");
    rows_table(&b, json_object_get(report, "accounts"), "leaderboard",
               "Sub-account leaderboard", "account", true);
    rows_table(&b, json_object_get(report, "campaigns"), "campaigns",
               "Campaigns", "campaign", false);
    rows_table(&b, json_object_get(report, "sites"), "sites", "Sites",
               "site", false);
    rows_table(&b, json_object_get(report, "domains"), "domains",
               "Sending domains", "domain", false);
    billing_table(&b, json_object_get(report, "billing"));
    hb_puts(&b, "<footer class=\"meta\"><p>Counts as defined in sluice's "
                "README (Reports). Days and hours are UTC.</p></footer>\n"
                "</body></html>\n");
    return hb_finish(&b, page, len);
}

int report_text_summary(const json_t *report, char **text, size_t *len)
{
    *text = NULL;
    if (!json_is_object(report))
        return -EINVAL;
    struct hbuf b = { .max = 1u << 20 };
    const json_t *s = json_object_get(report, "summary");
    const char *a = json_string_value(json_object_get(report, "account"));
    /* plain text: names as they are (no HTML here), control characters
     * dropped by the %s of a cut copy */
    char name[130] = "all accounts";
    if (a) {
        size_t o = 0;
        o += (size_t)snprintf(name, sizeof name, "account ");
        for (const char *p = a; *p && o + 1 < sizeof name; p++)
            if ((unsigned char)*p >= 0x20 && *p != 0x7f)
                name[o++] = *p;
        name[o] = 0;
    }
    hb_printf(&b, "sluice report for %s, %.10s to %.10s (UTC days)\n\n",
              name, rep_str(report, "from"), rep_str(report, "to"));
    for (size_t i = 0; i < NCOUNTS; i++) {
        hb_printf(&b, "  %-18s ", counts[i].key);
        hb_count(&b, rep_num(s, counts[i].key));
        hb_puts(&b, "\n");
    }
    hb_printf(&b, "  %-18s ", "first attempt");
    hb_rate(&b, s, "first_attempt_rate");
    const json_t *l = json_object_get(s, "latency_ms");
    if (json_is_object(l))
        hb_printf(&b, "\n  %-18s p50 %.0f ms, p90 %.0f ms, p99 %.0f ms\n",
                  "latency", rep_num(l, "p50"), rep_num(l, "p90"),
                  rep_num(l, "p99"));
    else
        hb_printf(&b, "\n  %-18s -\n", "latency");
    const json_t *acc = json_object_get(report, "accounts");
    if (json_array_size(acc)) {
        hb_puts(&b, "\nLeaderboard (delivered):\n");
        for (size_t i = 0; i < json_array_size(acc) && i < 10; i++) {
            const json_t *r = json_array_get(acc, i);
            char an[65];
            size_t o = 0;
            for (const char *p = rep_str(r, "account"); *p && o < 64; p++)
                if ((unsigned char)*p >= 0x20 && *p != 0x7f)
                    an[o++] = *p;
            an[o] = 0;
            hb_printf(&b, "  %2zu. %-24s ", i + 1, an);
            hb_count(&b, rep_num(r, "delivered"));
            hb_puts(&b, "\n");
        }
    }
    hb_puts(&b, "\nThe charts are in the HTML part of this mail.\n");
    return hb_finish(&b, text, len);
}
