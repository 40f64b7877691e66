/*
 * site.h - throttles shared by the destinations of one receiving provider.
 *
 * DESCRIPTION
 *   A site is either a configured [site NAME], whose MX patterns gather
 *   every domain hosted by one provider (MX rollup), or a single domain
 *   with its own limits.  The site holds the limits that matter to the
 *   receiver: open connections, deliveries per rate window, new
 *   connections per rate window; and the adaptive state: a concurrency
 *   limit and a rate factor cut by throttling replies and raised again
 *   after a run of successes, a suspension after strong signals, and an
 *   admin pause stored in the spool.
 *
 *   Rates are kept with GCRA (a virtual schedule: each delivery moves the
 *   theoretical arrival time on by window/N), so over any window there are
 *   at most N deliveries, evenly spaced rather than in bursts.
 *
 * OWNERSHIP
 *   Sites belong to the engine and live until it stops.
 */
#ifndef SLUICE_SITE_H
#define SLUICE_SITE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

struct engine;
struct dest;

enum site_state { SITE_NORMAL, SITE_BACKOFF, SITE_SUSPENDED, SITE_PAUSED };

struct site {
    struct engine *e;
    char name[256];
    bool configured;               /* a [site NAME]; else one domain */
    const struct domain_policy *pol;
    struct site *hnext;

    unsigned sessions;             /* open or opening, all its dests */
    unsigned waiting;              /* items waiting in its dests */
    double tat_msg, tat_conn;      /* GCRA theoretical arrival times, ms */
    unsigned conc_limit;           /* adaptive, <= pol->max_connections */
    double rate_factor;            /* adaptive, <= 1 */
    unsigned ok_in_row;
    int64_t suspended_until_ms;
    int64_t last_cut_ms;           /* last backoff step (loop ms) */
    bool paused;
    enum site_state state;
    char last_error[300];
    int64_t next_retry_ms;         /* when a throttled site may go on */

    uint64_t delivered, deferred, bounced;
    uint32_t per_sec[16];          /* deliveries in the last 16 seconds */
    int64_t per_sec_base;          /* second of per_sec[0] */

    uv_timer_t timer;              /* wakes the dests when allowed again */
    bool timer_armed;
    struct dest **dests;           /* member destinations */
    unsigned ndests, capdests;
    bool probe;                    /* paused, but one transaction may go
                                      (an incident's probe) */
};

/* The site for a destination after its MX lookup: the configured site
 * whose patterns match the first MX host, else the domain's own. */
struct site *site_for_dest(struct engine *e, struct dest *d, const char *mx);

/* May the site open one more connection now?  If not and the limit is a
 * rate, the site's timer will kick its destinations when it may. */
bool site_may_connect(struct site *s);
void site_connected(struct site *s);   /* count one connection attempt */
void site_disconnected(struct site *s);

/* Take n delivery slots from the rate budget, or say when (false). */
bool site_take(struct site *s, unsigned n);

/* Feed back one reply: throttling replies cut, successes recover. */
void site_feedback(struct site *s, bool ok, int code, const char *enhanced,
                   const char *text);

/* Deliveries per second over the last SITE_RATE_WINDOW_S seconds (up to
 * now, the current second included). */
#define SITE_RATE_WINDOW_S 5
double site_rate(struct site *s);
/* The same summed over every site: what status.json's "rate" and the web
 * console's overview show. */
double site_total_rate(struct engine *e);

/* The current limit on connections (adaptive and configured). */
unsigned site_conn_limit(const struct site *s);

/* Does the adaptive backoff hold the site at its floor (its rate factor
 * cut down to the [backoff] min_rate_factor)?  It stays there until
 * successes lift it, also while nothing is sent to it. */
bool site_at_floor(const struct site *s);

/* Is the site stopped (suspended or paused) and until when (ms, 0 none). */
bool site_stopped(struct site *s, int64_t *until_ms);

/* Apply the spool's pause list (names of paused sites and domains). */
void site_set_paused(struct site *s, bool paused);
/* An incident's probe: the paused site called name lets one transaction
 * through, on one connection (false: no such site known, or it is not
 * paused); site_probe_close() ends that if it has not gone yet. */
bool site_probe_open(struct engine *e, const char *name);
void site_probe_close(struct engine *e, const char *name);

const char *site_state_name(enum site_state st);

/* Items waiting in the site's destinations: delta more (or fewer). */
void site_add_waiting(struct site *s, int delta);
/* A destination with sessions open and waiting items moves from site
 * from to site to (either may be NULL). */
void site_move(struct site *from, struct site *to, unsigned sessions,
               unsigned waiting);

/* Count a deferral or (bounced) a bounce for status. */
void site_count_failure(struct site *s, bool bounced);

/* Call fn for every site. */
void site_foreach(struct engine *e, void (*fn)(struct site *s, void *arg),
                  void *arg);

/* Refresh every site's policy pointer after a reload. */
void site_refresh_policies(struct engine *e);
void site_free_all(struct engine *e);

#endif
