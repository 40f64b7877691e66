/*
 * incident_put.c - store an incident record as sluiced's opening writes
 * it, without the action that follows (tests only).
 *
 * SYNOPSIS
 *   incident_put SPOOL ACCOUNT CAMPAIGN FILE
 *
 * DESCRIPTION
 *   Runs the opening change sluiced makes (queue_incident_change with
 *   incident_rec_edit, "opened" by sluiced, an `incident` event) with the
 *   JSON object in FILE as the record, and prints the new id.  A record
 *   whose "pause" is pending is what a kill -9 between the opening and
 *   the pause leaves in the spool; the test starts sluiced on it.
 *
 * DIAGNOSTICS
 *   Exit 0, 64 usage, 65 a FILE that is not a JSON object, 74 a spool
 *   error (printed).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "incident_rec.h"
#include "queue_admin.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: incident_put SPOOL ACCOUNT CAMPAIGN FILE\n");
        return 64;
    }
    json_error_t jerr;
    json_t *base = json_load_file(argv[4], 0, &jerr);
    if (!json_is_object(base)) {
        fprintf(stderr, "incident_put: %s: %s\n", argv[4], jerr.text);
        json_decref(base);
        return 65;
    }
    struct queue *q;
    struct queue_options o = { 0 };
    int err = queue_open(&q, argv[1], &o);
    if (err) {
        fprintf(stderr, "incident_put: %s\n", queue_strerror(err));
        json_decref(base);
        return 74;
    }
    struct queue_actor by = { .user = "sluiced", .via = "incident",
                              .role = QUEUE_ROLE_OWNER,
                              .account = (uint32_t)strtoul(argv[2], NULL,
                                                           10) };
    struct incident_edit ed = { .what = "opened", .who = "sluiced",
                                .text = "written by incident_put",
                                .base = base,
                                .now_ms = (int64_t)time(NULL) * 1000 };
    struct queue_incident_change c = {
        .account = by.account, .campaign = strtoull(argv[3], NULL, 10),
        .edit = incident_rec_edit, .arg = &ed, .action = "incident open",
        .event_text = "opened (incident_put)", .by = &by };
    err = queue_incident_change(q, &c);
    queue_close(q);
    json_decref(base);
    if (err) {
        fprintf(stderr, "incident_put: %s (%s)\n", queue_strerror(err),
                queue_last_detail());
        return 74;
    }
    printf("%llu\n", (unsigned long long)c.id);
    return 0;
}
