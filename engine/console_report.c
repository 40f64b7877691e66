/*
 * console_report.c - GET /console/api/report: the report of sending over
 * a range of UTC days (CONTRACTS section 3), for the console's charts.
 *
 * DESCRIPTION
 *   GET /console/api/report?from=YYYY-MM-DD&to=YYYY-MM-DD[&account=NAME]
 *   answers report_build()'s object (queue_report.h), the one builder
 *   `sluice report` uses, with its rules: the account is the one named,
 *   else the caller's home account; viewer on it is needed (the CLI's
 *   "report" row); the master's view is the whole platform, a
 *   sub-account's its own.  Without from and to: the last 30 days; with
 *   one of them, 30 days from or up to it; at most REPORT_MAX_DAYS.
 *
 * DIAGNOSTICS
 *   400 a day that is not one, a backwards or too long range; 403
 *   refused (audited); 404 an unknown account; 503 a spool read failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "console_int.h"
#include "queue_report.h"
#include "tool_admin.h"

#define DEFAULT_DAYS 30

/* A query argument, or NULL. */
static const char *arg(struct console_call *k, const char *name)
{
    return MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, name);
}

unsigned console_report(struct console_call *k, json_t **out)
{
    const char *from_s = arg(k, "from"), *to_s = arg(k, "to");
    const char *acct = arg(k, "account");
    struct report_query rq = { 0 };
    int64_t now = (int64_t)time(NULL), span = (DEFAULT_DAYS - 1) * 86400;
    if ((from_s && report_parse_day(from_s, &rq.from)) ||
        (to_s && report_parse_day(to_s, &rq.to)))
        return console_error(out, MHD_HTTP_BAD_REQUEST,
                             "from and to are days: YYYY-MM-DD");
    if (from_s && !to_s)
        rq.to = rq.from + span < now ? rq.from + span
                                     : now > rq.from ? now : rq.from;
    else if (to_s && !from_s)
        rq.from = rq.to - span;
    else if (!from_s && !to_s)
        rq.to = now, rq.from = now - span;
    if (rq.to < rq.from)
        return console_error(out, MHD_HTTP_BAD_REQUEST,
                             "to is before from");
    if (rq.to / 86400 - rq.from / 86400 + 1 > REPORT_MAX_DAYS)
        return console_error(out, MHD_HTTP_BAD_REQUEST,
                             "at most %d days in one report",
                             REPORT_MAX_DAYS);
    if (rq.from < 0)
        rq.from = 0;
    rq.now = now;
    struct queue_account a;
    int err = acct ? queue_account_find(k->q, acct, &a)
                   : queue_account_get(k->q, tool_home_account(
                                                 k->q, k->who.user), &a);
    if (err == QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such account");
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    char obj[128];
    unsigned st;
    snprintf(obj, sizeof obj, "report account %.80s", a.name);
    if ((st = console_allow(k, ACT_REPORT, a.id, obj, NULL, out)))
        return st;
    /* the master's view is the platform's; a sub-account's its own */
    rq.account = a.parent ? a.name : NULL;
    json_t *rep = NULL;
    err = report_build(k->q, &rq, &rep);
    if (err == -EINVAL)
        return console_error(out, MHD_HTTP_BAD_REQUEST, "not a range of "
                             "days the report takes");
    if (err == QUEUE_ENOTFOUND)
        return console_error(out, MHD_HTTP_NOT_FOUND, "no such account");
    if (err)
        return console_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "spool: %s",
                             queue_strerror(err));
    *out = rep;
    return MHD_HTTP_OK;
}
