/*
 * report_html_int.h - what report_html.c and report_svg.c share: a
 * bounded output buffer with HTML escaping, the count getters, and the
 * charts.
 */
#ifndef SLUICE_REPORT_HTML_INT_H
#define SLUICE_REPORT_HTML_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A growing buffer with a cap: once it fails (out of memory or past the
 * cap) every later write is a no-op and err says why. */
struct hbuf {
    char *p;
    size_t len, cap, max;
    int err;                   /* 0, -ENOMEM or -E2BIG */
};

void hb_put(struct hbuf *b, const char *s, size_t n);
void hb_puts(struct hbuf *b, const char *s);
__attribute__((format(printf, 2, 3)))
void hb_printf(struct hbuf *b, const char *fmt, ...);
/* s as HTML/XML text or attribute value: & < > " ' escaped, control
 * characters (not allowed in XML) shown as U+FFFD. */
void hb_esc(struct hbuf *b, const char *s);
/* A count with thousands separators ("12,345"). */
void hb_count(struct hbuf *b, double v);

/* A count of a row (0 when absent or not a number). */
double rep_num(const json_t *row, const char *key);
/* A row's string, "" when absent. */
const char *rep_str(const json_t *row, const char *key);
/* Days since 1970-01-01 of "YYYY-MM-DD..."; false if s is not one. */
bool rep_day(const char *s, long *days);
/* "YYYY-MM-DD" of days since 1970-01-01 into out[11]. */
void rep_day_str(long days, char out[11]);

/* The charts (report_svg.c): each writes one <svg> element, or a
 * paragraph saying there is nothing to draw. */
void svg_volume(struct hbuf *b, const json_t *report);
void svg_heatmap(struct hbuf *b, const json_t *hourly);
void svg_outcomes(struct hbuf *b, const json_t *summary);
void svg_latency(struct hbuf *b, const json_t *report);
/* A small horizontal bar of v out of max (for table cells). */
void svg_cell_bar(struct hbuf *b, double v, double max, const char *colour);

/* The days of the report's period, one entry per day from "from" to
 * "to" (at most SVG_MAX_DAYS), each the matching "daily" row or NULL;
 * when from/to are missing or too far apart, the daily rows themselves.
 * n is the count; names[i] the day. */
#define SVG_MAX_DAYS 400
struct rep_days {
    size_t n;
    const json_t *row[SVG_MAX_DAYS];
    char name[SVG_MAX_DAYS][11];
};
void rep_days(const json_t *report, struct rep_days *d);

#endif
