/*
 * report_weekly.h - sluiced mails each account's weekly report to its
 * report addresses (report_weekly.c).
 */
#ifndef SLUICE_REPORT_WEEKLY_H
#define SLUICE_REPORT_WEEKLY_H

#include <stddef.h>
#include <stdint.h>

struct engine;
struct queue;

/* The spool cursors (queue_cursor_get/put) of account id: the Monday
 * (days since 1970-01-01) that ends the last week sent, and a request to
 * send now (the request's unix time; 0 none), which `sluice report
 * send-weekly` sets and sluiced clears once the mail is queued. */
#define REPORT_WEEKLY_SENT "report.weekly.%u"
#define REPORT_WEEKLY_REQ "report.weekly.req.%u"

/* Start the weekly reports' timer (e->weekly); 0 or -ENOMEM. */
int report_weekly_open(struct engine *e);
/* Wait for a running job and stop the timer (the handle's memory goes in
 * its close callback, on the teardown's last loop run). */
void report_weekly_close(struct engine *e);

/* The report of account id (name: its name) for the UTC days from..to
 * as one MIME message (text summary and the HTML page) into *msg
 * (malloc'd, CRLF lines); from_addr and to are the header addresses.
 * 0, or the report builder's / renderer's error (report_weekly.c). */
int report_weekly_message(struct queue *q, uint32_t id, const char *name,
                          long from_day, long to_day, const char *from_addr,
                          const char *to, const char *hostname, char **msg,
                          size_t *len);

#endif
