/*
 * incident_int.h - what incident.c (loop) and incident_job.c (worker)
 * share: the open-incident table and the job.
 */
#ifndef SLUICE_ENGINE_INCIDENT_INT_H
#define SLUICE_ENGINE_INCIDENT_INT_H

#include <jansson.h>
#include <uv.h>

#include "incident.h"

#define INC_OPEN_MAX 1024

/* The breaker's pause of an incident (incident_probe.c). */
enum inc_act_state { INC_ACT_NONE, INC_ACT_PENDING, INC_ACT_PAUSED,
                     INC_ACT_FAILED, INC_ACT_LIFTED };
/* Its probe: waiting for next_probe_ms; a release job out; a probe let
 * through (its delivery's outcome awaited); decided (a job to act on
 * the verdict). */
enum inc_probe_state { INC_PROBE_IDLE, INC_PROBE_RELEASING, INC_PROBE_OUT,
                       INC_PROBE_DECIDED, INC_PROBE_JOB };

/* An incident the watcher keeps joining or will resolve. */
struct inc_open {
    char rule[32];
    int kind;                       /* enum alert_scope */
    char scope[SIGNALS_SCOPE_NAME];
    uint64_t id;                    /* 0 while its opening job runs */
    uint32_t account;
    int64_t last_fire_s;
    int64_t alert_ms;               /* its last alert (0: none this run) */
    /* escalation (incident_esc.c) */
    int severity;                   /* as the record holds it */
    int64_t opened_ms, escalated_ms;
    bool acked;                     /* acknowledged (sync_table) */
    bool value_escalated;           /* escalate_threshold reached once */
    bool alert_due;                 /* an escalation's alert waits for
                                       alert_interval */
    double last_value;              /* the rule's value at its last firing */
    /* the breaker (incident_probe.c) */
    int act;                        /* enum alert_action of the record */
    int act_state;                  /* enum inc_act_state */
    uint64_t campaign;              /* the record's campaign (0 none) */
    char act_name[SIGNALS_SCOPE_NAME]; /* what is paused: id or site */
    char domain[256];               /* probes go to this recipient domain
                                       ("" any) */
    int64_t next_probe_ms;
    long long probes;               /* probes that failed */
    int probe;                      /* enum inc_probe_state */
    bool pass;                      /* a claim of the pause may go */
    bool pass_any;                  /* ... to any domain */
    uint64_t probe_delivery;        /* the claim that went (0: none yet) */
    uint64_t probe_seq;             /* site: its events after this seq */
    int64_t probe_deadline_ms;
    bool probe_ok;
    char probe_text[300];           /* what the probe's outcome was */
};

struct incidents {
    struct inc_open v[INC_OPEN_MAX];
    size_t n;
    bool busy;                      /* a job is on the worker */
    int64_t last_sync;
    int last_err;                   /* said on stderr (a full spool fails
                                     * every try: said once) */
    unsigned passes;                /* entries with a pass open */
    unsigned probes_out;            /* entries RELEASING or OUT: their
                                       probe's outcome is awaited */
};

enum { INC_JOB_OPEN = 1, INC_JOB_RESOLVE, INC_JOB_ACT, INC_JOB_ESCALATE,
       INC_JOB_ALERT, INC_JOB_PROBE, INC_JOB_VERDICT };

/* One job: filled on the loop, run on a worker, finished on the loop. */
/* The most destination domains of one site a root cause matches by. */
#define INC_SITE_DOMAINS 4096

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
    /* escalate: to this severity, by time (else by value), why */
    int severity;
    bool by_time;
    char text[320];                 /* escalate: why; verdict: the outcome */
    /* act, probe, verdict (incident_act.c) */
    int act;                        /* enum alert_action */
    char act_name[SIGNALS_SCOPE_NAME];
    char domain[256];               /* probe: released to it ("" any) */
    bool probe_ok;                  /* verdict: delivered (else failed) */
    bool gone;                      /* verdict: the pause was lifted by
                                       someone else */
    long long probes;
    int64_t next_probe_ms;
    /* copied from the config on the loop (a reload replaces it) */
    char *alert_command, *alert_from, *alert_to;
    char hostname[256];
    /* opening a site's incident: the domains sluiced routes to the site
     * (its dests), sorted, at most INC_SITE_DOMAINS; copied on the loop */
    char (*site_domains)[256];
    size_t nsite_domains;
    /* results */
    uint64_t id;
    int err;
    char why[256];
    int64_t alerted_ms;             /* when it sent alerts (0: none) */
    int act_state;                  /* enum inc_act_state after the job */
    uint64_t released;              /* probe: the delivery let go (0 none) */
    bool skipped;                   /* escalate: not due any more */
};

/* Queue j on the worker (incident_job.c); frees j when finished. */
void inc_job_start(struct engine *e, struct inc_job *j);
/* On the loop: the table learns the job's outcome (incident.c). */
void inc_job_finished(struct engine *e, struct inc_job *j);

/* incident_job.c, for incident_act.c: the actor of sluiced's changes,
 * one timeline entry (with ed's extras; an event when etext is given),
 * and the alerts of a change (hook and mail). */
struct incident_edit;
struct queue_actor inc_actor(const struct inc_job *j, char *via,
                             size_t len);
int inc_note_edit(struct inc_job *j, struct incident_edit *ed,
                  const char *action, const char *etext);
int inc_note(struct inc_job *j, const char *what, const char *text,
             const char *action, const char *etext);
void inc_alert(struct inc_job *j, const char *change);

/* incident_act.c (worker): the rule's pause taken and marked in the
 * record; the jobs of escalation, deferred alerts, probes, verdicts. */
void inc_act_take(struct inc_job *j);
void inc_act_work(struct inc_job *j);

/* incident_esc.c, incident_probe.c (loop): their part of a tick, of a
 * finished job, and of a record read back at start. */
void inc_esc_tick(struct engine *e, int64_t now_ms);
void inc_probe_tick(struct engine *e, int64_t now_ms);
/* (true: the incident was resolved: it leaves the table) */
bool inc_probe_finished(struct engine *e, struct inc_open *o,
                        struct inc_job *j);
void inc_esc_finished(struct engine *e, struct inc_open *o,
                      struct inc_job *j);
/* The acknowledgement and severity of a record read again (sync). */
void inc_open_refresh(struct inc_open *o, json_t *rec);
void inc_open_load(struct inc_open *o, json_t *rec);
/* o leaves the table: its pass, its probe and a site's slot end. */
void inc_probe_forget(struct engine *e, struct inc_open *o);
/* Whether o's pause waits for a probe (no auto_resolve meanwhile). */
bool inc_probe_holds(const struct inc_open *o, const struct alert_rule *r);
/* A job of kind for o, its fields from o (NULL out of memory). */
struct inc_job *inc_job_for(struct engine *e, const struct inc_open *o,
                            int kind);

#endif
