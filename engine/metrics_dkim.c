/*
 * metrics_dkim.c - the DKIM signing time histogram, fed by the signing
 * workers (signer.c) and read by the HTTP thread.
 *
 * DESCRIPTION
 *   Process-wide relaxed atomic counters: a worker adds one signature's
 *   time with two atomic additions, no lock, so signing never waits on a
 *   scrape.  The count is the sum of the buckets as read (so the +Inf
 *   bucket always equals it); the sum may lag one signature behind.
 *
 * DIAGNOSTICS
 *   None: counting cannot fail.
 */
#include <stdatomic.h>
#include <time.h>

#include "metrics_int.h"

const uint32_t metrics_dkim_bounds_us[METRICS_DKIM_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000,
};

static _Atomic uint64_t dkim_bucket[METRICS_DKIM_BUCKETS + 1];
static _Atomic uint64_t dkim_sum_us;

uint64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_dkim_observe(uint64_t us)
{
    unsigned b = 0;
    while (b < METRICS_DKIM_BUCKETS && us > metrics_dkim_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&dkim_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&dkim_sum_us, us, memory_order_relaxed);
}

void metrics_dkim_read(uint64_t bucket[METRICS_DKIM_BUCKETS + 1],
                       uint64_t *count, uint64_t *sum_us)
{
    *count = 0;
    for (unsigned b = 0; b <= METRICS_DKIM_BUCKETS; b++) {
        bucket[b] = atomic_load_explicit(&dkim_bucket[b],
                                         memory_order_relaxed);
        *count += bucket[b];
    }
    *sum_us = atomic_load_explicit(&dkim_sum_us, memory_order_relaxed);
}
