/*
 * queue_series.h - the spool's time series: counts per hour and per day,
 * per account, campaign, site and sending domain.
 *
 * DESCRIPTION
 *   The writer counts every event (and every recipient queued) into
 *   buckets of the "series" database in the transaction that appends the
 *   event, so a report never disagrees with the event log.  A bucket is
 *   one UTC hour (kept report_hourly_days, default 35) or one UTC day
 *   (kept report_daily_days, default 800) of one dimension:
 *
 *     total      every account together (the platform)
 *     account    one account as it is: a master's bucket holds its own
 *                mail only; its sub-accounts are added at read time
 *                (queue_report.h)
 *     campaign   one campaign
 *     site       the site the engine sent through (MX rollup: a [site]
 *                name, or the recipient domain); "" when none (not sent,
 *                or a bounce reported later by mail); per account
 *     domain     the sending domain (the From address's domain); per
 *                account
 *
 *   A bucket holds QUEUE_SERIES_SLOTS counts (slot numbers below; unused
 *   slots are room for new event types).  Latency (enqueue, or the first
 *   due time of a scheduled campaign, to delivered) is a histogram of
 *   QUEUE_SERIES_HIST log-scale bins: bin 0 is under 100 ms, bin i covers
 *   [100 ms * 2^((i-1)/2), 100 ms * 2^(i/2)), the last bin is open.  A
 *   percentile read from it is within one bin (about 19%).
 *
 * OWNERSHIP
 *   Rows handed to callbacks are valid during the call only.
 */
#ifndef SLUICE_QUEUE_SERIES_H
#define SLUICE_QUEUE_SERIES_H

#include <stdint.h>
#include <stddef.h>

struct queue;

/* Slots of a bucket.  Slots 0..15 count events by type (enum
 * queue_event_type); slot 0 (QUEUE_EV_NONE) counts recipients queued. */
enum {
    QUEUE_SERIES_QUEUED = 0,
    QUEUE_SERIES_TYPES = 16,        /* slots 0..15: by event type */
    QUEUE_SERIES_CAT = 16,          /* 16..31: bounces by category */
    QUEUE_SERIES_ATTEMPTED = 32,    /* recipients whose 1st attempt ended */
    QUEUE_SERIES_FIRST = 33,        /* delivered on the first attempt */
    QUEUE_SERIES_HIST0 = 40,        /* 40..87: latency histogram */
    QUEUE_SERIES_HIST = 48,
    QUEUE_SERIES_SLOTS = 96,        /* 88..95 free */
};

/* Dimensions (the key byte). */
enum queue_series_dim {
    QUEUE_SERIES_TOTAL = 't',
    QUEUE_SERIES_ACCOUNT = 'a',
    QUEUE_SERIES_CAMPAIGN = 'c',
    QUEUE_SERIES_SITE = 's',
    QUEUE_SERIES_DOMAIN = 'f',
};

/* Granularity. */
enum queue_series_gran {
    QUEUE_SERIES_HOUR = 'h',
    QUEUE_SERIES_DAY = 'd',
};

/* One bucket as read. */
struct queue_series_row {
    int gran;                /* enum queue_series_gran */
    int64_t start;           /* unix seconds of the hour or day */
    int dim;                 /* enum queue_series_dim */
    uint64_t id;             /* account (account, site and domain rows) or
                                campaign id */
    uint32_t account;        /* the account of every row but total's */
    char name[256];          /* site or sending domain */
    uint64_t c[QUEUE_SERIES_SLOTS];
};

/* Keep hourly buckets hourly_days and daily buckets daily_days (at least
 * 1 each; 0 leaves the value as it is).  Call before the writer runs. */
void queue_series_configure(struct queue *q, unsigned hourly_days,
                            unsigned daily_days);

/* Call cb for each bucket of granularity gran whose start is within
 * [from, to] (unix seconds), in time order then key order; dim 0 for
 * every dimension.  cb returns non-zero to stop.  Returns the number of
 * buckets passed or a negative code (a spool of an older schema read-only
 * has none). */
long queue_series_scan(struct queue *q, int gran, int64_t from, int64_t to,
                       int dim,
                       int (*cb)(void *arg, const struct queue_series_row *r),
                       void *arg);

/* The histogram bin of a latency in ms, and the ms a bin stands for (its
 * geometric middle; 50 for bin 0, the lower bound for the last). */
int queue_series_bin(int64_t ms);
int64_t queue_series_bin_ms(int bin);

/* The latency under which pct percent (0..100) of the histogram's
 * deliveries lie, in ms; -1 for an empty histogram. */
int64_t queue_series_percentile(const uint64_t hist[QUEUE_SERIES_HIST],
                                double pct);

/* Delete buckets older than the configured periods as of unix time now,
 * at most max keys (0: no limit); the writer does this by itself once an
 * hour.  Returns the number deleted or a negative code. */
long queue_series_prune(struct queue *q, int64_t now, size_t max);

#endif
