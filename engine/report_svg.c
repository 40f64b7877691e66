/*
 * report_svg.c - the report page's charts as inline SVG: volume per day
 * (stacked outcomes), the busiest hours (weekday x hour heat map),
 * outcomes by category (bars) and delivery latency (p50/p90/p99 per
 * day); and the small bars of the leaderboard's cells.
 *
 * DESCRIPTION
 *   Written by hand: no packaged C library draws SVG charts, and these
 *   are a few rectangles, lines and text elements.  Every chart is a
 *   fixed-size viewBox that scales with the page (width 100%), so it
 *   prints as drawn.  Each bar, cell and point carries a <title> with its
 *   numbers (the browser shows it on hover; a reader of the source sees
 *   it).  A chart with nothing to draw is a sentence saying so, never an
 *   empty or broken SVG.  Names from the report (bounce categories, days)
 *   are escaped like the page's other text (hb_esc()).  Days and hours
 *   are UTC, as the report's are.
 *
 * DIAGNOSTICS
 *   None here: a failed write is held in the buffer (struct hbuf) and
 *   reported by report_html_render().
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report_html_int.h"

#define W 760.0                /* every chart's viewBox width */
#define LEFT 60.0              /* room for the y axis labels */
#define RIGHT 12.0
#define TOP 12.0

/* The terminal outcomes stacked per day, with their colours. */
static const struct { const char *key, *label, *colour; } stack[] = {
    { "delivered", "delivered", "#2e7d32" },
    { "bounced", "bounced", "#c62828" },
    { "expired", "expired", "#ef6c00" },
    { "suppressed", "suppressed", "#6d4c41" },
    { "cancelled", "cancelled", "#90a4ae" },
};
#define NSTACK (sizeof stack / sizeof stack[0])

/* A round axis maximum at or above v (1, 2 or 5 times a power of ten). */
static double nice_max(double v)
{
    if (v <= 0)
        return 1;
    double p = pow(10, floor(log10(v)));
    double m = v / p;
    double r = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
    return r * p;
}

/* The y axis: 4 grid lines from 0 to max, labelled in the unit. */
static void y_axis(struct hbuf *b, double max, double plot_h, const char *unit)
{
    for (int i = 0; i <= 4; i++) {
        double v = max * i / 4, y = TOP + plot_h - plot_h * i / 4;
        hb_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                  "y2=\"%.1f\"/><text class=\"ax\" x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"end\">", LEFT, y, W - RIGHT, y, LEFT - 6,
                  y + 4);
        if (max < 10 && v != floor(v))
            hb_printf(b, "%.1f", v);
        else
            hb_count(b, v);
        hb_printf(b, "%s</text>", unit);
    }
}

/* A legend line of coloured squares at y. */
static void legend(struct hbuf *b, double y, const char *const *labels,
                   const char *const *colours, size_t n)
{
    double x = LEFT;
    for (size_t i = 0; i < n; i++) {
        hb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" "
                  "fill=\"%s\"/><text class=\"ax\" x=\"%.1f\" y=\"%.1f\">",
                  x, y - 9, colours[i], x + 14, y);
        hb_esc(b, labels[i]);
        hb_puts(b, "</text>");
        x += 24 + 7.0 * (double)strlen(labels[i]);
    }
}

/* Every k-th day's label under the x axis, so at most about 12 show. */
static void x_labels(struct hbuf *b, const struct rep_days *d, double plot_h,
                     double step)
{
    size_t k = d->n / 12 + 1;
    for (size_t i = 0; i < d->n; i += k) {
        hb_printf(b, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"middle\">", LEFT + step * ((double)i + 0.5),
                  TOP + plot_h + 16);
        hb_esc(b, d->name[i] + 5); /* MM-DD */
        hb_puts(b, "</text>");
    }
}

void svg_volume(struct hbuf *b, const json_t *report)
{
    struct rep_days d;
    rep_days(report, &d);
    double max = 0;
    for (size_t i = 0; i < d.n; i++) {
        double t = 0;
        for (size_t s = 0; s < NSTACK; s++)
            t += rep_num(d.row[i], stack[s].key);
        if (t > max)
            max = t;
    }
    if (!d.n || max <= 0) {
        hb_puts(b, "<p class=\"empty\">No delivered, bounced, expired, "
                   "suppressed or cancelled recipients in this period.</p>\n");
        return;
    }
    const double plot_h = 200, h = TOP + plot_h + 44;
    double top = nice_max(max), step = (W - LEFT - RIGHT) / (double)d.n;
    hb_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"recipients "
              "per day by outcome\">", W, h);
    y_axis(b, top, plot_h, "");
    for (size_t i = 0; i < d.n; i++) {
        if (!d.row[i])
            continue;
        hb_puts(b, "<g><title>");
        hb_esc(b, d.name[i]);
        for (size_t s = 0; s < NSTACK; s++) {
            hb_printf(b, "%s %s ", s ? "," : ":", stack[s].label);
            hb_count(b, rep_num(d.row[i], stack[s].key));
        }
        hb_puts(b, "</title>");
        double y = TOP + plot_h;
        for (size_t s = 0; s < NSTACK; s++) {
            double v = rep_num(d.row[i], stack[s].key);
            if (v <= 0)
                continue;
            double bh = plot_h * v / top;
            y -= bh;
            hb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                      "height=\"%.1f\" fill=\"%s\"/>",
                      LEFT + step * (double)i + step * 0.1, y, step * 0.8,
                      bh, stack[s].colour);
        }
        hb_puts(b, "</g>");
    }
    x_labels(b, &d, plot_h, step);
    const char *labels[NSTACK], *colours[NSTACK];
    for (size_t s = 0; s < NSTACK; s++) {
        labels[s] = stack[s].label;
        colours[s] = stack[s].colour;
    }
    legend(b, h - 6, labels, colours, NSTACK);
    hb_puts(b, "</svg>\n");
}

/* Day of the week (0 Monday .. 6 Sunday) of days since 1970-01-01 (a
 * Thursday). */
static int weekday(long days)
{
    long w = (days + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* What a row of "hourly" counts for busyness: attempts when the report
 * has them, else the outcomes. */
static double busy(const json_t *row)
{
    if (json_object_get(row, "attempted"))
        return rep_num(row, "attempted");
    return rep_num(row, "delivered") + rep_num(row, "bounced") +
           rep_num(row, "deferred") + rep_num(row, "expired");
}

void svg_heatmap(struct hbuf *b, const json_t *hourly)
{
    static const char *const wd[7] = { "Mon", "Tue", "Wed", "Thu", "Fri",
                                       "Sat", "Sun" };
    double cell[7][24] = { { 0 } }, max = 0;
    size_t i;
    const json_t *row;
    json_array_foreach(hourly, i, row) {
        const char *h = rep_str(row, "hour");
        long days;
        int hour;
        if (!rep_day(h, &days) || strlen(h) < 13 || h[10] != 'T' ||
            sscanf(h + 11, "%2d", &hour) != 1 || hour < 0 || hour > 23)
            continue;
        double v = busy(row);
        if (v > 0)
            cell[weekday(days)][hour] += v;
    }
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < 24; c++)
            if (cell[r][c] > max)
                max = cell[r][c];
    if (max <= 0) {
        hb_puts(b, "<p class=\"empty\">No delivery attempts in this "
                   "period.</p>\n");
        return;
    }
    const double cw = (W - LEFT - RIGHT) / 24, ch = 24;
    hb_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"attempts "
              "by weekday and hour (UTC)\">", W, TOP + 7 * ch + 24);
    for (int r = 0; r < 7; r++) {
        hb_printf(b, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"end\">%s</text>", LEFT - 6,
                  TOP + ch * r + ch * 0.65, wd[r]);
        for (int c = 0; c < 24; c++) {
            /* from a pale blue (none) to a deep one (the busiest) */
            double f = cell[r][c] / max;
            int red = (int)(240 - f * 232), green = (int)(244 - f * 163),
                blue = (int)(250 - f * 94);
            hb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                      "height=\"%.1f\" fill=\"#%02x%02x%02x\"><title>%s "
                      "%02d:00 UTC: ", LEFT + cw * c + 1, TOP + ch * r + 1,
                      cw - 2, ch - 2, red, green, blue, wd[r], c);
            hb_count(b, cell[r][c]);
            hb_puts(b, "</title></rect>");
        }
    }
    for (int c = 0; c < 24; c += 3)
        hb_printf(b, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" "
                  "text-anchor=\"middle\">%02d</text>",
                  LEFT + cw * c + cw / 2, TOP + 7 * ch + 16, c);
    hb_puts(b, "</svg>\n");
}

/* One horizontal bar row of the outcomes chart. */
static void hbar(struct hbuf *b, double y, const char *label, double v,
                 double max, const char *colour, double bw)
{
    hb_printf(b, "<g><title>");
    hb_esc(b, label);
    hb_puts(b, ": ");
    hb_count(b, v);
    hb_printf(b, "</title><text class=\"ax\" x=\"194\" y=\"%.1f\" "
              "text-anchor=\"end\">", y + 13);
    hb_esc(b, label);
    hb_printf(b, "</text><rect x=\"200\" y=\"%.1f\" width=\"%.1f\" "
              "height=\"16\" fill=\"%s\"/><text class=\"ax\" x=\"%.1f\" "
              "y=\"%.1f\">", y, v > 0 ? bw * v / max : 0, colour,
              206 + (v > 0 ? bw * v / max : 0), y + 13);
    hb_count(b, v);
    hb_puts(b, "</text></g>");
}

#define MAX_CATEGORIES 32

void svg_outcomes(struct hbuf *b, const json_t *summary)
{
    static const struct { const char *key, *colour; } rows[] = {
        { "delivered", "#2e7d32" }, { "bounced", "#c62828" },
        { "expired", "#ef6c00" }, { "deferred", "#f9a825" },
        { "complained", "#ad1457" }, { "unsubscribed", "#5e35b1" },
        { "suppressed", "#6d4c41" }, { "suppressed_at_send", "#a1887f" },
        { "cancelled", "#90a4ae" },
    };
    const size_t nrows = sizeof rows / sizeof rows[0];
    const json_t *cats = json_object_get(summary, "bounced_by_category");
    double max = 0;
    size_t ncat = 0;
    for (size_t i = 0; i < nrows; i++)
        if (rep_num(summary, rows[i].key) > max)
            max = rep_num(summary, rows[i].key);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)cats, k, v) {
        if (ncat++ == MAX_CATEGORIES)
            break;
        if (json_number_value(v) > max)
            max = json_number_value(v);
    }
    if (max <= 0) {
        hb_puts(b, "<p class=\"empty\">No outcomes in this period.</p>\n");
        return;
    }
    if (ncat > MAX_CATEGORIES)
        ncat = MAX_CATEGORIES;
    const double rh = 22, bw = W - 200 - 80;
    hb_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"outcomes "
              "by category\">", W, TOP + rh * (double)(nrows + ncat) + 8);
    double y = TOP;
    for (size_t i = 0; i < nrows; i++, y += rh) {
        hbar(b, y, rows[i].key, rep_num(summary, rows[i].key), max,
             rows[i].colour, bw);
        if (strcmp(rows[i].key, "bounced"))
            continue;
        size_t n = 0;
        json_object_foreach((json_t *)cats, k, v) {
            if (n++ == ncat)
                break;
            char label[160];
            snprintf(label, sizeof label, "bounced: %s", k);
            y += rh;
            hbar(b, y, label, json_number_value(v), max, "#e57373", bw);
        }
    }
    hb_puts(b, "</svg>\n");
}

void svg_latency(struct hbuf *b, const json_t *report)
{
    static const struct { const char *key, *colour; } pct[] = {
        { "p50", "#1565c0" }, { "p90", "#ef6c00" }, { "p99", "#c62828" },
    };
    struct rep_days d;
    rep_days(report, &d);
    double max = 0;
    size_t points = 0;
    for (size_t i = 0; i < d.n; i++) {
        const json_t *l = json_object_get(d.row[i], "latency_ms");
        if (!json_is_object(l) || rep_num(d.row[i], "delivered") <= 0)
            continue;
        points++;
        for (size_t p = 0; p < 3; p++)
            if (rep_num(l, pct[p].key) > max)
                max = rep_num(l, pct[p].key);
    }
    if (!points) {
        hb_puts(b, "<p class=\"empty\">No deliveries, so no latency, in "
                   "this period.</p>\n");
        return;
    }
    /* seconds once the slowest is past 10 s, else milliseconds */
    bool secs = max >= 10000;
    double scale = secs ? 1000 : 1, top = nice_max(max / scale);
    const double plot_h = 180, h = TOP + plot_h + 44;
    double step = (W - LEFT - RIGHT) / (double)d.n;
    hb_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"delivery "
              "latency per day\">", W, h);
    y_axis(b, top, plot_h, secs ? " s" : " ms");
    for (size_t p = 0; p < 3; p++) {
        hb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" "
                  "stroke-width=\"2\" points=\"", pct[p].colour);
        for (size_t i = 0; i < d.n; i++) {
            const json_t *l = json_object_get(d.row[i], "latency_ms");
            if (!json_is_object(l) || rep_num(d.row[i], "delivered") <= 0)
                continue;
            hb_printf(b, "%.1f,%.1f ", LEFT + step * ((double)i + 0.5),
                      TOP + plot_h -
                          plot_h * rep_num(l, pct[p].key) / scale / top);
        }
        hb_puts(b, "\"/>");
    }
    for (size_t i = 0; i < d.n; i++) {
        const json_t *l = json_object_get(d.row[i], "latency_ms");
        if (!json_is_object(l) || rep_num(d.row[i], "delivered") <= 0)
            continue;
        for (size_t p = 0; p < 3; p++) {
            hb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
                      "fill=\"%s\"><title>", LEFT + step * ((double)i + 0.5),
                      TOP + plot_h -
                          plot_h * rep_num(l, pct[p].key) / scale / top,
                      pct[p].colour);
            hb_esc(b, d.name[i]);
            hb_printf(b, " %s: ", pct[p].key);
            hb_count(b, rep_num(l, pct[p].key));
            hb_puts(b, " ms</title></circle>");
        }
    }
    x_labels(b, &d, plot_h, step);
    const char *labels[3] = { "p50", "p90", "p99" };
    const char *colours[3] = { pct[0].colour, pct[1].colour, pct[2].colour };
    legend(b, h - 6, labels, colours, 3);
    hb_puts(b, "</svg>\n");
}

void svg_cell_bar(struct hbuf *b, double v, double max, const char *colour)
{
    double w = max > 0 && v > 0 ? 120 * v / max : 0;
    hb_printf(b, "<svg class=\"cellbar\" xmlns=\"http://www.w3.org/2000/svg\" "
              "viewBox=\"0 0 120 12\" width=\"120\" height=\"12\">"
              "<rect x=\"0\" y=\"1\" width=\"%.1f\" height=\"10\" "
              "fill=\"%s\"/></svg>", w, colour);
}
