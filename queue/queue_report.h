/*
 * queue_report.h - the report of sending over a range of UTC days, built
 * from the spool's time series (queue_series.h) as one JSON object, for
 * `sluice report` and sluiced (the console, the weekly mail).
 *
 * DESCRIPTION
 *   report_build() answers for the whole platform (account NULL), for the
 *   master's tree (the master's name: its own mail and every
 *   sub-account's, added up at read time) or for one sub-account (its own
 *   only).  The object (CONTRACTS.md section 3):
 *
 *     account, from, to, generated,
 *     summary   COUNTS over the range
 *     daily     one row per day of the range (zeros included)
 *     hourly    one row per hour with any count (hours are kept
 *               report_hourly_days: older hours are absent)
 *     campaigns, sites, domains   one row each, delivered descending
 *     accounts  one row per account in view, delivered descending
 *     billing   per calendar month touched by the range (whole months)
 *               and account: sent
 *
 *   COUNTS, the names README "Definitions" gives: queued, attempted,
 *   delivered, bounced, bounced_by_category {category: n}, expired,
 *   complained, unsubscribed, suppressed, cancelled, deferred, opened,
 *   clicked, sent (= delivered + bounced), first_attempt_rate (null when
 *   nothing was delivered), latency_ms {p50, p90, p99} (null when none).
 *
 * DIAGNOSTICS
 *   report_build(): 0, -EINVAL for a range that is backwards or longer
 *   than REPORT_MAX_DAYS, QUEUE_ENOTFOUND for an unknown account, -ENOMEM,
 *   or a spool read failure.
 *
 * OWNERSHIP
 *   *out is a new reference the caller json_decref()s.
 */
#ifndef SLUICE_QUEUE_REPORT_H
#define SLUICE_QUEUE_REPORT_H

#include <stdint.h>
#include <jansson.h>

struct queue;

#define REPORT_MAX_DAYS 800

struct report_query {
    const char *account;   /* NULL: the whole platform */
    int64_t from, to;      /* unix seconds within the first and last UTC
                              day; both 0: the 30 days up to today */
    int64_t now;           /* 0: the clock */
};

int report_build(struct queue *q, const struct report_query *rq,
                 json_t **out);

/* Parse "YYYY-MM-DD" (a real calendar day) into the unix time of its
 * start; -EINVAL otherwise. */
int report_parse_day(const char *s, int64_t *t);

/* The COUNTS object of one bucket's (or a sum's) slots. */
json_t *report_counts(const uint64_t *c);

#endif
