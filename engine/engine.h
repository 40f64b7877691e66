/*
 * engine.h - what the engine's files share: the daemon state, destinations,
 * claimed items and composed bodies.
 *
 * DESCRIPTION
 *   One libuv loop owns everything here.  One message goes through each
 *   file once: the scheduler (scheduler.c) claims it into an item with a
 *   body reference (body.c) and files it under its destination (dest.c);
 *   the destination has it resolved (route.c), its body composed and
 *   signed on the worker pool (body.c, signer.c, campaign.c), made into a
 *   job (job.c) and sent by a session (smtp_session.c, smtp_txn.c); the
 *   job's outcomes (outcome.c) go to the spool's group-commit writer and
 *   their completion frees the item and has the event log (eventlog.c)
 *   read the committed events.
 *
 *   struct engine is made of parts, each owned by one file (named at its
 *   member): only that file writes it, others call the owner's functions.
 *   The shared members (loop, cfg, q, ...) are set up once.
 *
 * OWNERSHIP
 *   Items and bodies are owned by the engine from claim until their outcome
 *   has committed; destinations live as long as the engine.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

#include "compose.h"
#include "config.h"
#include "dns.h"
#include "queue.h"
#include "queue_uv.h"
#include "site.h"
#include "smtp_session.h"

/* A composed message shared by the recipients of one injected message. */
struct body {
    uint64_t msg_id;
    unsigned refs;
    bool ready;          /* composition finished */
    bool composing;      /* on the worker pool now */
    int err;             /* composition failed: items get this */
    char *errtext;       /* and why, in words (or NULL) */
    uint32_t account;    /* whose keys may sign it */
    uint64_t campaign;   /* campaign mail: rendered for this contact and */
    uint64_t contact;    /* delivery (the body is that recipient's own) */
    uint64_t delivery;
    char *from;
    struct wire wire;    /* wire form (hdr8: needs SMTPUTF8 as it is),
                          * written by signer_compose() on a worker */
    struct wire wire7;   /* 7-bit form for receivers without 8BITMIME or
                          * (8-bit header) without SMTPUTF8; its eightbit
                          * and hdr8: what it could not encode */
    size_t bytes;        /* of wire and wire7, counted in held (body.c) */
    size_t reserved;     /* counted in reserved while composing */
    struct body *hnext;  /* hash chain */
};

/* The running state of one [account N] / [campaign N] rate cap. */
struct id_limit {
    char kind;
    uint64_t id;
    struct rate rate;
    double tat;                /* GCRA theoretical arrival, loop ms */
};

/* An account of the spool as the engine applies it (accounts.c). */
struct eng_account {
    uint32_t id;
    uint32_t master;           /* the master's id (own id on the master) */
    bool disabled;
    bool held;                 /* disabled, or its master is: sends nothing */
    uint64_t daily_cap;        /* 0: none */
    uint64_t sent_today;       /* on day `day` */
    uint64_t pending;          /* claimed under the cap, not sent yet */
    uint32_t day;
    uint32_t suppression_owner;
    bool has_rate;
    struct rate rate;
};

/* One claimed delivery. */
struct item {
    struct item *next;
    uint64_t id, campaign, ref;
    uint32_t account;
    uint16_t attempts;
    bool capped;         /* counted against its account's daily cap, not
                          * handed to a receiver yet */
    bool taken;          /* marked by job_build() to leave its dest */
    bool attempted;      /* handed to a receiver: counts as sent */
    bool probe;          /* an incident's probe: goes through its campaign's
                          * pause and its account's hold (incident_probe.c) */
    int64_t created;
    double tag;          /* its turn at its dest (fair.c) */
    struct dest *dest;
    struct body *body;
    char rcpt[];         /* NUL-terminated */
};

enum dns_state { DS_NONE, DS_RESOLVING, DS_READY };

struct target {
    char host[256];
    struct sockaddr_storage addr;
};

/* One destination domain. */
struct dest {
    struct engine *e;
    struct site *site;         /* known once the destination is resolved */
    char domain[256];
    const struct domain_policy *pol;
    struct dest *hnext;
    struct item *head, *tail;  /* waiting items, in turn order (fair.c) */
    struct fair *fair;         /* the turns of its accounts (fair.c) */
    unsigned nitems;
    unsigned ngroups;          /* transactions they make, about */
    enum dns_state dns;
    int64_t dns_expires_ms;
    struct target *targets;
    unsigned ntargets;
    unsigned next_target;      /* first target to try for a new session */
    unsigned failed_in_row;    /* session starts that failed one after another */
    unsigned sessions;         /* open or opening */
    unsigned busy;             /* sessions with a job */
    unsigned connecting;       /* sessions not ready yet: each has one
                                  waiting transaction kept for it */
    int64_t clear_until_ms;    /* opportunistic TLS failed: sessions go
                                  without STARTTLS until then (dest.c) */
    bool in_kick;
    bool paused;               /* `sluice pause domain` */
    bool limit_waiting;        /* waits for an account/campaign rate */
    struct dest *lnext;
    bool starving;             /* waits in the engine's starved list */
    struct dest *snext;
    bool spare;                /* in the engine's list of idle slots */
    struct dest *spnext;
    bool waiting;              /* waits for a body being composed */
    struct dest *wnext;
    bool compose_asked;        /* named in the batch being gathered */
    bool bytes_waiting;        /* waits for max_inflight_bytes room */
    struct dest *bnext;
    bool dns_queued;           /* waits for a DNS lookup slot */
    struct dest *dnext;
    struct smtp_session **idle;/* ready sessions without a job */
    unsigned nidle, capidle;
    struct smtp_session **all; /* every session of this destination */
    unsigned nall, capall;
    char last_error[300];
};

/* Whether the spool takes outcomes (outcome.c). */
enum spool_state { SPOOL_WRITABLE, SPOOL_FULL, SPOOL_UNWRITABLE };

/* Outcome operations the spool could not take yet, with their items
 * (outcome.c owns it).  At most max_inflight outcomes: each is a claimed
 * item. */
struct record_ctx;
struct spool_hold {
    enum spool_state state;
    int err;                   /* the last failure while not writable */
    struct record_ctx *head, *tail; /* oldest first */
    size_t nops, noutcomes;
    bool probing;              /* the oldest submitted alone, in flight */
    unsigned backoff_ms;       /* before the next try: 1 s doubling to 30 s */
    uint64_t since_ms;         /* when the spool stopped taking writes */
    uint64_t next_try_ms;
    uv_timer_t timer;
    /* noted by a completion, done by outcome_tick() */
    bool tell;                 /* announce the new state */
    enum spool_state tell_state; /* as it was, with its error and */
    int tell_err;
    size_t tell_n;             /*   the outcomes held then */
    bool arm;                  /* arm the retry timer */
    bool worked;               /* a commit went through while held */
};

struct engine_stats {
    uint64_t delivered, deferred, bounced, expired;
    uint64_t suppressed, cancelled;   /* ended unsent (issue 18) */
    uint64_t sessions_opened, session_failures;
    uint64_t claimed;
};

/* The parts of the engine, each owned by one file: only that file writes
 * it; other files go through the owner's functions below. */

/* scheduler.c: the heartbeat and the run's mode */
struct engine_run {
    uv_timer_t tick;
    bool draining;
    bool drain_abort;          /* drain timed out: sessions aborted */
    uint64_t drain_deadline_ms;
    bool exit_when_empty;      /* set by sluiced.c from the command line */
    bool progress;
    bool create;               /* --create: start over where data.mdb is
                                  missing or empty (QUEUE_OPEN_RECREATE) */
    int exit_code;
    uint64_t admin_gen;        /* of the spool's accounts, as loaded */
    int64_t dkim_retired_upto; /* unix s: retire dates up to here handled */
    uint64_t started_ms;
};

/* controls.c: the spool's pause list, as applied */
struct control_state {
    uint64_t gen;              /* of the spool's pause list, as applied */
    bool read;
    struct queue_control *v;
    size_t n;
    int64_t next_end;          /* earliest end of a pause that ends by
                                  itself (`pause --for`), 0 none: the list
                                  is applied again then */
    bool resuming;             /* a campaign whose pause ended is being
                                  resumed on a worker (controls.c) */
};

/* body.c: composed bodies by message id, and the batches composing them */
struct body_cache {
    struct body **tab;
    size_t cap, n;
    unsigned composing;        /* compose batches on the worker pool */
    struct compose_batch *gather; /* the batch being gathered this turn */
    uv_check_t check;          /* sends the gathered batch */
    struct dest *waiting_head; /* destinations waiting for a body */
    /* max_inflight_bytes: bytes of composed bodies held, bytes reserved
     * for the bodies being composed (est each), and those waiting */
    uint64_t held, reserved, peak;
    size_t nreserved;          /* bodies being composed */
    size_t est;                /* a composed body's size, about (0: none
                                  composed yet) */
    struct dest *bytes_head, *bytes_tail; /* destinations waiting for room */
};

/* Append destination d to a waiting list kept as head and tail pointers
 * linked through d's member next (the lists of struct dest_table and
 * body.c's list of destinations waiting for room). */
#define DEST_LIST_PUSH(head, tail, d, next)                                 \
    do {                                                                    \
        (d)->next = NULL;                                                   \
        if (tail)                                                           \
            (tail)->next = (d);                                             \
        else                                                                \
            (head) = (d);                                                   \
        (tail) = (d);                                                       \
    } while (0)

/* dest.c (and route.c): destinations, global session count, waiting lists */
struct dest_table {
    struct dest **tab;         /* hash by domain */
    size_t cap, n;
    unsigned sessions;         /* all sessions, for the global cap */
    struct dest *starved_head, *starved_tail; /* wait for a global slot */
    struct dest *spare_head, *spare_tail;     /* hold idle sessions with
                                                 nothing to send */
    struct dest *dnsq_head, *dnsq_tail;       /* wait for a lookup slot */
    unsigned dns_inflight;
};

/* site.c: sites by name */
struct site_table {
    struct site **tab;
    size_t cap, n;
};

/* outcome.c: claimed items, outcomes in flight, and what the spool could
 * not take yet */
struct outcome_state {
    size_t inflight;           /* claimed and not yet committed */
    size_t pending;            /* outcome ops submitted, not completed */
    struct spool_hold hold;    /* outcomes waiting for a writable spool */
    unsigned spool_failures[3]; /* damage-like spool errors in a row, per
                                   enum engine_spool_op (spool_errors.c) */
    int stop;                  /* exit code a commit's failures asked for */
};

/* limits.c: account and campaign rate caps */
struct limit_table {
    struct id_limit *v;
    size_t n;
    uv_timer_t timer;          /* wakes the destinations waiting */
    struct dest *head;         /* wait for an id's rate */
};

/* live.c: live limits (`sluice limits`) as applied */
struct live_target;
struct live_key;
struct live_state {
    struct live_target **v;    /* sites and domains with live keys */
    size_t n;
    struct live_key *keys;     /* every key in force, as read */
    size_t nkeys;
    size_t nid;                /* of them, account and campaign keys */
    int64_t next_end_ms;       /* the earliest end of one (0: none) */
};

/* accounts.c: the spool's accounts as applied, sorted by id */
struct account_table {
    struct eng_account *v;
    size_t n;
};

struct engine {
    /* shared, set up once by sluiced.c and engine_start() */
    uv_loop_t *loop;
    struct config cfg;         /* replaced whole by engine_reload() */
    struct queue *q;
    struct queue_completer *cmp;
    struct dns *dns;
    SSL_CTX *ssl;
    struct signer *signer;     /* DKIM keys; batches hold a reference */
    uv_signal_t sig_term, sig_int, sig_hup; /* sluiced.c */

    struct engine_run run;     /* scheduler.c */
    struct control_state controls; /* controls.c */
    struct body_cache bodies;  /* body.c */
    struct dest_table dests;   /* dest.c, route.c */
    struct site_table sites;   /* site.c */
    struct outcome_state out;  /* outcome.c, spool_errors.c */
    struct limit_table limits; /* limits.c */
    struct live_state live;    /* live.c */
    struct account_table accounts; /* accounts.c */
    struct MHD_Daemon *http;   /* unsub_http.c: the one-click endpoint */
    struct http_gate *http_gate; /* its front door (http_gate.c) */
    struct http_inject *http_inject; /* POST /api/inject/v1 (http_inject.c) */
    struct eventlog *log;      /* eventlog.c, or NULL */
    struct event_names *evnames; /* event_names.c: names for event_json */
    struct accounting *acct;   /* accounting.c, or NULL */
    struct evstream *evstream; /* evstream.c: events read once for all */
    uv_signal_t sig_usr1;      /* sluiced.c: reopen the log files */
    struct webhooks *hooks;    /* webhook_set.c, webhook.c, or NULL */
    struct smtpd *smtpd;       /* smtpd.c: the SMTP listener, or NULL */
    struct engine_stats st;    /* eventlog.c: this run's committed events */
    struct metrics *metrics;   /* metrics.c: GET /metrics */
    struct signals *signals;   /* signals.c: rolling windows, or NULL */
    struct incidents *incidents; /* incident.c: rules and open incidents */
    struct report_weekly *weekly; /* report_weekly.c: the weekly report mail */
};

struct compose_batch;

/* engine_start(): the configuration (or a key it names) cannot be used */
#define ENGINE_E_CONFIG (-30960)
/* campaign mail that must not be sent: the address is suppressed, or the
 * contact was deleted (the delivery ends without sending) */
#define ENGINE_E_SUPPRESSED (-30961)
#define ENGINE_E_GONE (-30962)
/* eventlog_open(): a damaged event log, or one written for another spool */
#define ENGINE_E_LOGDATA (-30963)

/* One text for any error code the engine meets: the engine's own, the
 * spool's (queue), the signer's and DKIM's, the renderer's, the
 * resolver's, libuv's and -errno (spool_errors.c). */
const char *engine_strerror(int err);

/* The wall clock, in seconds and in milliseconds. */
static inline int64_t engine_now(void)
{
    return (int64_t)time(NULL);
}

static inline uint64_t engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* scheduler.c */
int engine_start(struct engine *e);
void engine_drain(struct engine *e);
/* SIGHUP: read the configuration again and apply it (limits, routes, TLS
 * policies, DKIM keys); a broken file or a refused key keeps the running
 * configuration, and says why on stderr. */
void engine_reload(struct engine *e);
/* sluiced's exit status is code (the last caller wins). */
void engine_set_exit(struct engine *e, int code);

/* Stopping: no new sessions; drain_abort: the drain timed out. */
static inline bool engine_draining(const struct engine *e)
{
    return e->run.draining;
}

static inline bool engine_drain_aborted(const struct engine *e)
{
    return e->run.drain_abort;
}

/* controls.c */
/* Apply the spool's pause list when it has changed. */
void controls_apply(struct engine *e);
/* Is the site, domain, campaign (kind QUEUE_CTL_*) called name paused? */
bool engine_paused(const struct engine *e, int kind, const char *name);
/* A campaign's name in the pause list: its decimal id (a static buffer). */
const char *engine_campaign_ctl_name(uint64_t id);
/* What the live controls say of claim c (item it) on its way in: its
 * campaign cancelled (ended) or paused (parked until resumed), its
 * account disabled or at its daily cap (parked); true, with o filled,
 * when the claim stops here.  *domain_paused says whether its domain is
 * paused (for the destination it may create). */
bool controls_claim(struct engine *e, const struct queue_claim *c,
                    struct item *it, struct queue_outcome *o,
                    bool *domain_paused);
void controls_free(struct engine *e);
/* Wait for a campaign resume in flight (controls.c), before the writer
 * closes. */
void controls_wait(struct engine *e);

/* spool_errors.c */
/* A spool operation of kind op failed with err (0: it worked, which ends
 * the run of failures).  Errors of a damaged spool (QUEUE_ECORRUPT, and
 * -EINVAL or -EIO out of LMDB) are counted; after ENGINE_SPOOL_BUDGET of
 * them in a row it says the spool is damaged and returns the exit code
 * to drain to, 65 (74 for an I/O error), instead of trying again
 * forever; 0 otherwise.  Other errors (a full disk) are not counted.
 * The caller stops the engine: the scheduler at once, a commit's
 * completion through outcome_tick(). */
#define ENGINE_SPOOL_BUDGET 100
enum engine_spool_op { ENGINE_SPOOL_CLAIM, ENGINE_SPOOL_COUNTS,
                       ENGINE_SPOOL_OUTCOMES };
int engine_spool_result(struct engine *e, enum engine_spool_op op, int err);

/* body.c */
/* The body under key (a message id, or a campaign delivery's own key), or
 * a new empty one (refs 0, *fresh set); NULL out of memory. */
/* Give item it (of claim c) its body: the message's, shared by its
 * recipients, or a campaign recipient's own; made (empty, composed when
 * its destination gets near it) when new.  False out of memory. */
bool body_attach(struct engine *e, const struct queue_claim *c,
                 struct item *it);
/* Drop one reference; the last frees the body.  NULL is fine. */
void body_unref(struct engine *e, struct body *b);
/* Have bodies composed for destination d, which is kicked when they are
 * ready.  Requests made in one turn of the loop travel to the worker pool
 * together.  Returns how many of them (the first ones) were taken: the
 * rest wait for max_inflight_bytes to have room, and d is kicked when it
 * has. */
size_t body_compose(struct engine *e, struct body **bodies, size_t n,
                    struct dest *d);
/* Bytes of composed bodies held now (and being composed, estimated) are
 * at max_inflight_bytes: nothing more is claimed or composed. */
bool body_over_budget(const struct engine *e);
/* Bytes of composed bodies held now, and the most held at once. */
uint64_t body_bytes_held(const struct engine *e);
uint64_t body_bytes_peak(const struct engine *e);
/* d found its next body still being composed (perhaps for another
 * destination): kick it when a shared body is ready. */
void body_wait(struct engine *e, struct dest *d);
bool body_composing(const struct engine *e);
/* Whether delivery's body b could not be composed: fills o (bounced when
 * the message is at fault, ended for a suppressed or deleted contact,
 * else deferred). */
bool body_stop(const struct body *b, uint64_t delivery,
               struct queue_outcome *o);
void body_init(struct engine *e);
void body_free_all(struct engine *e);

/* outcome.c: outcomes to the spool, held while it cannot take them */
void engine_record(struct engine *e, struct item **items, size_t n,
                   const struct queue_outcome *o);
/* Record the outcome of every recipient of a finished SMTP job, and feed
 * the replies to site (or NULL).  sess (or NULL): the session that
 * delivered the job, told smtp_session_recorded() once the record is
 * durable (or dropped). */
void outcome_job(struct engine *e, struct site *site, struct item **items,
                 struct smtp_rcpt *rcpts, size_t nrcpt, const char *mx,
                 struct smtp_session *sess);
/* A session waits for its records: have the writer commit now. */
void outcome_hurry(struct engine *e);
/* Free an item (its account's claim and its body reference go too). */
void engine_item_free(struct engine *e, struct item *it);
/* Give item it's claim back to the spool without an outcome (out of
 * memory on its way in) and free it. */
void outcome_release(struct engine *e, struct item *it);
/* n items were claimed (count them in flight), or ended without an
 * outcome (their claims given back or ending with the process). */
void outcome_claimed(struct engine *e, size_t n);
void outcome_forget(struct engine *e, size_t n);
void outcome_init(struct engine *e);
/* Draining with nothing else in flight: true when nothing is held, or when
 * drain_timeout has passed (the held outcomes are given up: exit 75). */
bool outcome_drained(struct engine *e);
/* Once per tick: what commits' completions only noted (a spool that
 * stopped taking writes is announced and retried; after a commit that
 * went through, what is held is submitted and deliveries resume).  Returns
 * the exit code the damaged-spool budget asks the engine to stop with,
 * or 0. */
int outcome_tick(struct engine *e);
const char *engine_spool_state_name(const struct engine *e);
/* The spool's hold, for status.json. */
const struct spool_hold *outcome_hold(const struct engine *e);

/* Claimed items not committed yet; outcome ops not completed yet. */
static inline size_t engine_inflight(const struct engine *e)
{
    return e->out.inflight;
}

static inline size_t engine_pending_outcomes(const struct engine *e)
{
    return e->out.pending;
}

/* Whether outcomes can be recorded now: while not, nothing is claimed and
 * no new SMTP transaction starts. */
static inline bool engine_spool_writable(const struct engine *e)
{
    return e->out.hold.state == SPOOL_WRITABLE;
}

/* campaign.c (worker threads): render and sign a campaign recipient's
 * body; 0, or an error code with why filled in */
struct signer;
int engine_campaign_compose(struct engine *e, const struct signer *sg,
                            struct body *b, char *why, size_t whylen);
void engine_campaign_cache_free(void);
/* The URL of tracked link `link` (check: its template's check) of the
 * campaign's message to contact, rendered again from the cached template
 * and %-escaped for a Location header (campaign.c, for track_http.c).
 * -ENOENT: no such link; a queue or render code else. */
int engine_campaign_link(struct engine *e, uint64_t campaign,
                         uint64_t contact, uint64_t delivery, unsigned link,
                         uint32_t check, char *url, size_t cap);

/* unsub_http.c: the RFC 8058 endpoint when http_listen is set */
int unsub_http_start(struct engine *e);
void unsub_http_stop(struct engine *e);
/* Unsubscribe the contact of an unsubscribe token: suppress it on its
 * account's list (source how: "one-click", "mailto"; via: the audit's
 * "http", "smtp:PEER") and record the "unsubscribed" event.  Waits for
 * the commits: not on the loop thread.  0 (also for a contact deleted
 * meanwhile), -EINVAL for a token that does not verify, else the
 * spool's error (try again later). */
int engine_unsubscribe(struct engine *e, const char *token, const char *how,
                       const char *via);

/* accounts.c */
/* Read the accounts again; the waiting mail of an account held since the
 * last load goes back to the spool, parked (queue_account_park_time). */
void accounts_load(struct engine *e);
const struct eng_account *accounts_get(const struct engine *e, uint32_t id);
/* Is account id held (disabled, or its master)?  Nothing of it is sent. */
bool accounts_held(const struct engine *e, uint32_t id);
/* 0 (and it->capped set when the account has a daily cap), or until when
 * (unix seconds; queue_account_park_time() for a held account, then
 * *disabled is set) the item's account's mail must wait */
int64_t accounts_hold(struct engine *e, struct item *it, bool *disabled);
/* Whether item it must end before it goes to a session: its account held
 * (parked until it is enabled) or its recipient on the account's
 * suppression list (a campaign's: unsubscribed since its message was
 * rendered; an injected message's) - "suppressed", not sent.  Fills o. */
bool accounts_stop(struct engine *e, const struct item *it,
                   struct queue_outcome *o);
/* it ends here: sent (it->attempted) or not, it leaves its account's
 * pending count */
void accounts_release(struct engine *e, struct item *it);
void accounts_close(struct engine *e);
/* Every account as applied (sorted by id); returns how many. */
size_t accounts_list(const struct engine *e, const struct eng_account **v);

/* live.c: read the spool's live limits and apply them (when the admin
 * generation moved); rebuild them over a new configuration (reload);
 * once a second, read them again when one has ended (true then). */
void live_load(struct engine *e);
void live_rebuild(struct engine *e);
bool live_tick(struct engine *e);
/* The live policy of site ('s') or domain ('d') name, else base. */
const struct domain_policy *live_policy(const struct engine *e, char kind,
                                        const char *name,
                                        const struct domain_policy *base);
/* The keys (1 << CONFIG_LK_*) set live on a site or domain. */
unsigned live_keys_of(const struct engine *e, char kind, const char *name);
/* A live max_rate of account ('a') or campaign ('c') id: true and *r. */
bool live_id_rate(const struct engine *e, char kind, uint64_t id,
                  struct rate *r);
/* The accounts and campaigns with a live max_rate (at most cap). */
size_t live_ids(const struct engine *e, char *kinds, uint64_t *ids,
                size_t cap);
void live_free(struct engine *e);

/* limits.c */
void limits_init(struct engine *e);
void limits_load(struct engine *e);
double limits_wait(struct engine *e, const struct item *it);
void limits_charge(struct engine *e, const struct item *it, unsigned n);
void limits_wait_dest(struct engine *e, struct dest *d, double ms);
void limits_close(struct engine *e);

/* dest.c */
/* File item it of claim c under its destination (made when new, paused
 * when domain_paused): 1 with *d set; 0 with o filled when the claim goes
 * back to the spool instead (the destination paused, its site stopped,
 * or it holds its share of the in-flight budget); -ENOMEM. */
int dest_file(struct engine *e, const struct queue_claim *c, struct item *it,
              bool domain_paused, struct dest **d, struct queue_outcome *o);
void dest_kick(struct engine *e, struct dest *d);
void dest_refresh_policies(struct engine *e);
void dest_quit_idle(struct engine *e);
void dest_abort_all(struct engine *e);
void dest_hold(struct engine *e, struct dest *d, int64_t until_ms);
void dest_free_all(struct engine *e);
/* Call fn for every destination. */
void dest_foreach(struct engine *e, void (*fn)(struct dest *d, void *arg),
                  void *arg);
/* Kick every destination where items wait (the spool takes writes again). */
void dest_kick_waiting(struct engine *e);
/* Sessions open or opening, all destinations. */
unsigned dest_sessions(const struct engine *e);
/* The site name of domain's destination (the domain itself before its
 * MX lookup), or NULL when sluiced has none (metrics.c). */
const char *dest_site_name(const struct engine *e, const char *domain);
/* The site an event's recipient rcpt counts under (metrics.c,
 * signals.c): its domain, lowercased into buf, through dest_site_name(),
 * or that domain when sluiced has no destination for it. */
const char *dest_rcpt_site(const struct engine *e, const char *rcpt,
                           char *buf, size_t len);
/* Set the destination's admin pause (`sluice pause domain`). */
void dest_set_paused(struct engine *e, struct dest *d, bool paused);
/* Give every waiting item of d the same failure (dest.c, route.c). */
void dest_fail_all(struct engine *e, struct dest *d, int type, int code,
                   const char *enh, const char *text, const char *mx);

/* Unlink the n waiting items of d marked taken (all among the first
 * ones: those job_build() looked at); run_ended: the job took the last
 * of a run of items sharing a body. */
void dest_take(struct dest *d, size_t n, bool run_ended);

/* job.c: jobs for sessions, made from a destination's waiting items */
/* The state a job carries through its session. */
struct job_ctx {
    struct smtp_job job;
    struct dest *dest;
    struct item **items;
    struct smtp_rcpt rcpts[];
};
/* Why job_build() made no job: a rate holds every ready item for ms, a
 * body is being composed, or again (items were ended on the way: build
 * again). */
struct job_wait {
    double ms;
    bool composing;
    bool again;
};
/* A job from the first waiting item whose body is composed, with the
 * other recipients of the same message that wait at d; items that must
 * not go are ended on the way.  NULL when none can go now (w says why). */
struct job_ctx *job_build(struct engine *e, struct dest *d,
                          struct job_wait *w);
/* Have the bodies of d's next items composed. */
void job_prefetch(struct engine *e, struct dest *d);

/* route.c: where a destination's mail goes (MX lookup or a configured
 * route), its target list and its site */
void route_resolve(struct engine *e, struct dest *d);
/* Take every waiting item of campaign out and record a copy of o for it. */
void dest_drop_campaign(struct engine *e, uint64_t campaign,
                        const struct queue_outcome *o);
/* Take every waiting item for which pick() fills in an outcome (and
 * returns true) out and record that outcome; returns how many. */
size_t dest_drop_items(struct engine *e,
                       bool (*pick)(struct engine *e, const struct item *it,
                                    void *arg, struct queue_outcome *o),
                       void *arg);

/* status.c */
void status_write(struct engine *e);

/* eventlog.c: the JSON-lines event log, a consumer of the spool's events
 * (also counts this run's events into e->st, with or without a file).
 * Open after engine_start(); close after the last completion has run. */
struct eventlog;
int eventlog_open(struct engine *e, char *err, size_t errlen);
void eventlog_committed(struct engine *e);   /* outcomes committed */
void eventlog_pump(struct engine *e, bool all); /* each tick; all: catch up */
void eventlog_close(struct engine *e);
void eventlog_site(struct engine *e, const struct site *s, const char *change,
                   int code, const char *enhanced, const char *text);
void eventlog_pause(struct engine *e, const char *domain, bool paused);
/* sluiced appended the audit record seq with link head (any thread; the
 * loop writes the line). */
void eventlog_audit(struct engine *e, uint64_t seq,
                    const unsigned char head[32]);
/* The spool stopped or started taking writes (state "full", "unwritable",
 * "writable"), with held outcomes and how long it was not writable. */
void eventlog_spool(struct engine *e, const char *state, const char *error,
                    size_t held, uint64_t full_ms);
/* SIGUSR1: open the event log and the accounting files by name again. */
void eventlog_reopen(struct engine *e);

/* accounting.c: the [accounting NAME] CSV files, each a consumer of the
 * spool's events (cursor "acct.NAME"), pumped by eventlog_pump().  Open
 * after eventlog_open(); 0, ENGINE_E_CONFIG (a field the events do not
 * have), ENGINE_E_LOGDATA or -errno, the reason in err. */
struct accounting;
int accounting_open(struct engine *e, char *err, size_t errlen);
void accounting_pump(struct engine *e, bool all);
void accounting_reopen(struct engine *e);
void accounting_close(struct engine *e);
/* The newest seq the pump has counted (signals.c restores up to it). */
uint64_t eventlog_counted(const struct engine *e);
/* A webhook's batch of n events up to seq last changed (change
 * "dead-letter": given up after attempts, written to file). */
void eventlog_webhook(struct engine *e, const char *name, const char *change,
                      uint64_t last, unsigned n, unsigned attempts,
                      const char *error, const char *file);

#endif
