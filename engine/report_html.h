/*
 * report_html.h - the report object (the one report_build() makes) as
 * one self-contained HTML page: inline CSS and inline SVG charts, no
 * external resource, readable offline and printable (report_html.c,
 * report_svg.c).  Shared by `sluice report --html` and sluiced's weekly
 * report mail; it needs jansson only.
 */
#ifndef SLUICE_REPORT_HTML_H
#define SLUICE_REPORT_HTML_H

#include <jansson.h>
#include <stddef.h>

/* The largest page made; a larger one is -E2BIG. */
#define REPORT_HTML_MAX (16u << 20)
/* Rows shown per table (campaigns, sites, domains, leaderboard,
 * billing); the page says how many more there were. */
#define REPORT_HTML_ROWS 200

/* The page for report (an object with "summary", "daily", "hourly",
 * "campaigns", "sites", "domains", "accounts", "billing", each optional)
 * into *page (malloc'd, NUL-terminated; *len without the NUL; the caller
 * frees it).  Every name from the report is HTML-escaped.  0, -EINVAL
 * when report is not an object, -ENOMEM, or -E2BIG past REPORT_HTML_MAX;
 * *page is NULL on error. */
int report_html_render(const json_t *report, char **page, size_t *len);

/* A short plain-text summary of report (period, the defined counts, the
 * top accounts) into *text (malloc'd, lines end in "\n"); same errors. */
int report_text_summary(const json_t *report, char **text, size_t *len);

#endif
