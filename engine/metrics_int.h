/*
 * metrics_int.h - what metrics.c (the loop's counting) and metrics_http.c
 * (rendering on the HTTP thread) share: the snapshot and the state.
 *
 * DESCRIPTION
 *   struct metrics_snap is plain data: the loop fills a spare one and
 *   swaps it with the published one under mu; the HTTP thread renders the
 *   published one under mu.  Nothing else crosses threads except the
 *   spool (thread-safe reads) and the DKIM histogram (atomics).
 */
#ifndef SLUICE_METRICS_INT_H
#define SLUICE_METRICS_INT_H

#include <pthread.h>
#include <uv.h>

#include "metrics.h"

/* Upper bounds of the latency buckets, in seconds (enqueue to terminal):
 * 0.1 s to a day. */
#define METRICS_LAT_BUCKETS 17
extern const double metrics_lat_bounds[METRICS_LAT_BUCKETS];
/* Upper bounds of the DKIM signing buckets, in microseconds. */
#define METRICS_DKIM_BUCKETS 12
extern const uint32_t metrics_dkim_bounds_us[METRICS_DKIM_BUCKETS];
/* Seconds the rate gauge averages over. */
#define METRICS_RATE_S 60

struct metrics_site_snap {
    char name[256];
    uint64_t c[METRICS_TYPES];
};

struct metrics_account_snap {
    uint32_t id;
    uint64_t c[METRICS_TYPES];
};

struct metrics_webhook {
    char name[64];
    uint64_t backlog;
};

/* One histogram: counts per bucket (not cumulative; the last is past the
 * last bound), their number and sum. */
struct metrics_hist {
    uint64_t bucket[METRICS_LAT_BUCKETS + 1];
    uint64_t count;
    double sum;
};

struct metrics_snap {
    uint64_t time_ms;              /* when it was taken */
    uint64_t start_ms;             /* when the process started counting */
    uint64_t outcomes[METRICS_TYPES];
    uint64_t by_cat[METRICS_TYPES][QUEUE_CAT_COUNT];
    double rate[METRICS_TYPES];    /* per second over METRICS_RATE_S */
    struct metrics_hist latency[METRICS_TYPES];
    struct metrics_site_snap *sites;   /* top sites, top_sites of room */
    size_t nsites;
    uint64_t site_other[METRICS_TYPES];
    struct metrics_account_snap *accounts; /* max_accounts of room */
    size_t naccounts, max_accounts;
    uint64_t account_other[METRICS_TYPES];
    struct metrics_webhook webhooks[METRICS_WEBHOOKS];
    size_t nwebhooks;
    unsigned sessions_out, sessions_in;
    uint64_t inflight;             /* claimed, outcome not committed */
    uint64_t inflight_bytes;       /* composed bodies held (body.c) */
    uint64_t inflight_bytes_peak;  /* the most held at once */
    uint64_t inflight_bytes_max;   /* max_inflight_bytes */
    uint64_t write_queue_bytes;    /* queued for sockets, all sessions */
    bool have_info, have_totals;
    struct queue_info info;        /* the spool's size */
    struct queue_counts totals;    /* the spool's lifetime counters */
};

/* Counting state of one site (loop thread). */
struct metrics_site {
    char name[256];
    uint64_t total;                /* every event, for the ranking */
    uint64_t own[METRICS_TYPES];   /* events counted while labelled */
    bool labelled;                 /* among the top sites now */
    struct metrics_site *hnext;
};

struct metrics_account {
    uint32_t id;
    uint64_t c[METRICS_TYPES];
};

struct metrics {
    struct engine *e;
    uv_timer_t timer;
    size_t top_sites, max_accounts;
    /* loop thread only */
    uint64_t start_ms;
    uint64_t outcomes[METRICS_TYPES];
    uint64_t by_cat[METRICS_TYPES][QUEUE_CAT_COUNT];
    struct metrics_hist latency[METRICS_TYPES];
    uint64_t ring[METRICS_RATE_S][METRICS_TYPES];
    int64_t ring_sec[METRICS_RATE_S];
    struct metrics_site **site_tab;    /* hash, METRICS_SITES_TRACKED * 2 */
    struct metrics_site *site_v;       /* METRICS_SITES_TRACKED of room */
    struct metrics_site **rank;        /* scratch for the ranking */
    size_t nsite;
    size_t nlabelled;                  /* sites labelled now */
    uint64_t site_other[METRICS_TYPES];
    struct metrics_account *acc;       /* sorted by id */
    size_t nacc;
    uint64_t account_other[METRICS_TYPES];
    struct metrics_webhook webhooks[METRICS_WEBHOOKS];
    size_t nwebhooks;
    struct metrics_snap *spare;
    /* shared: the published snapshot, under mu */
    pthread_mutex_t mu;
    struct metrics_snap *pub;
};

/* metrics_http.c: the DKIM histogram as it stands (any thread). */
void metrics_dkim_read(uint64_t bucket[METRICS_DKIM_BUCKETS + 1],
                       uint64_t *count, uint64_t *sum_us);

#endif
