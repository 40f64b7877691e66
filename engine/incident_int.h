/*
 * incident_int.h - what incident.c (loop) and incident_job.c (worker)
 * share: the open-incident table and the job.
 */
#ifndef SLUICE_ENGINE_INCIDENT_INT_H
#define SLUICE_ENGINE_INCIDENT_INT_H

#include <uv.h>

#include "incident.h"

#define INC_OPEN_MAX 1024

/* An incident the watcher keeps joining or will resolve. */
struct inc_open {
    char rule[32];
    int kind;                       /* enum alert_scope */
    char scope[SIGNALS_SCOPE_NAME];
    uint64_t id;                    /* 0 while its opening job runs */
    uint32_t account;
    int64_t last_fire_s;
    int64_t alert_s;                /* its last alert (0: none this run) */
};

struct incidents {
    struct inc_open v[INC_OPEN_MAX];
    size_t n;
    bool busy;                      /* a job is on the worker */
    int64_t last_sync;
    int last_err;                   /* said on stderr (a full spool fails
                                     * every try: said once) */
};

enum { INC_JOB_OPEN = 1, INC_JOB_RESOLVE };

/* One job: filled on the loop, run on a worker, finished on the loop. */
struct inc_job {
    uv_work_t req;
    struct engine *e;
    int kind;
    struct alert_rule rule;
    int scope_kind;
    char scope[SIGNALS_SCOPE_NAME];
    uint32_t account;
    uint64_t campaign;
    double value;
    uint64_t volume;
    struct sig_sums sums;
    struct json_t *detail;          /* a gauge's (signals_detail), or NULL */
    bool alert;                     /* send the alerts (alert_interval) */
    /* copied from the config on the loop (a reload replaces it) */
    char *alert_command, *alert_from, *alert_to;
    char hostname[256];
    /* results */
    uint64_t id;
    int err;
    char why[256];
};

/* Queue j on the worker (incident_job.c); frees j when finished. */
void inc_job_start(struct engine *e, struct inc_job *j);
/* On the loop: the table learns the job's outcome (incident.c). */
void inc_job_finished(struct engine *e, struct inc_job *j);

#endif
