/*
 * report.c - the report builder (queue_report.h): the time series of a
 * range of UTC days gathered into one JSON object.
 *
 * DESCRIPTION
 *   One pass over the daily buckets of the range (and one over the hourly
 *   ones) adds each bucket to what it belongs to: the summary and its day
 *   (total rows for the platform, account rows for an account's view),
 *   its account, campaign, site and sending domain.  Which account a
 *   bucket belongs to: its own id for account, site and domain rows, the
 *   campaign's account (in the key) for campaign rows.  The master's view adds its
 *   sub-accounts' rows here, at read time; nothing is rolled up when
 *   written.
 *
 *   Billing takes the daily account rows of every calendar month the
 *   range touches, whole, in a scan of its own.
 *
 * DIAGNOSTICS
 *   As queue_report.h says; a campaign row whose campaign is gone shows
 *   its id with name "(deleted)".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "queue_admin.h"
#include "queue_campaign.h"
#include "queue_report.h"
#include "queue_series.h"

/* A row being added up: a key (account id, campaign id or a name). */
struct agg {
    uint64_t id;
    uint32_t account;       /* a campaign's */
    char name[256];
    uint64_t c[QUEUE_SERIES_SLOTS];
};

struct aggs {
    struct agg *a;
    size_t n, cap;
    json_t *index;          /* key text -> position + 1 */
};

/* Account and campaign names, and the accounts in view. */
struct acct {
    uint32_t id, master;
    char name[QUEUE_MAX_ACCOUNT_NAME + 1];
    bool in_view;
};

struct camp {
    uint64_t id;
    uint32_t account;
    char name[QUEUE_MAX_CAMPAIGN_NAME + 1];
};

struct build {
    struct queue *q;
    bool platform;            /* no account: total rows */
    struct acct *acct;
    size_t nacct, capacct;
    struct camp *camp;
    size_t ncamp, capcamp;
    int64_t from_day, ndays;  /* day numbers since the epoch */
    uint64_t (*day)[QUEUE_SERIES_SLOTS];
    uint64_t sum[QUEUE_SERIES_SLOTS];
    struct aggs hours, camps, sites, doms, accts, bill;
    int err;
};

static void add_slots(uint64_t *to, const uint64_t *c)
{
    for (int i = 0; i < QUEUE_SERIES_SLOTS; i++)
        to[i] += c[i];
}

/* The aggregate of key (id, name), added if new; NULL on no memory. */
static struct agg *agg_for(struct aggs *g, uint64_t id, const char *name)
{
    char key[300];
    snprintf(key, sizeof key, "%llu/%s", (unsigned long long)id, name);
    if (!g->index && !(g->index = json_object()))
        return NULL;
    json_t *pos = json_object_get(g->index, key);
    if (pos)
        return &g->a[json_integer_value(pos) - 1];
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        struct agg *na = realloc(g->a, ncap * sizeof *na);
        if (!na)
            return NULL;
        g->a = na;
        g->cap = ncap;
    }
    struct agg *a = &g->a[g->n++];
    memset(a, 0, sizeof *a);
    a->id = id;
    snprintf(a->name, sizeof a->name, "%s", name);
    if (json_object_set_new(g->index, key, json_integer((json_int_t)g->n)))
        return NULL;
    return a;
}

static void aggs_free(struct aggs *g)
{
    free(g->a);
    json_decref(g->index);
}

static struct acct *acct_of(struct build *b, uint64_t id)
{
    for (size_t i = 0; i < b->nacct; i++)
        if (b->acct[i].id == id)
            return &b->acct[i];
    return NULL;
}

static struct camp *camp_of(struct build *b, uint64_t id)
{
    /* campaigns come in id order: binary search */
    size_t lo = 0, hi = b->ncamp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->camp[mid].id == id)
            return &b->camp[mid];
        if (b->camp[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int on_account(void *arg, const struct queue_account *a)
{
    struct build *b = arg;
    if (b->nacct == b->capacct) {
        size_t ncap = b->capacct ? b->capacct * 2 : 16;
        struct acct *n = realloc(b->acct, ncap * sizeof *n);
        if (!n) {
            b->err = -ENOMEM;
            return 1;
        }
        b->acct = n;
        b->capacct = ncap;
    }
    struct acct *x = &b->acct[b->nacct++];
    x->id = a->id;
    x->master = a->master;
    x->in_view = b->platform;
    snprintf(x->name, sizeof x->name, "%s", a->name);
    return 0;
}

static int on_campaign(void *arg, const struct queue_campaign *c)
{
    struct build *b = arg;
    if (b->ncamp == b->capcamp) {
        size_t ncap = b->capcamp ? b->capcamp * 2 : 16;
        struct camp *n = realloc(b->camp, ncap * sizeof *n);
        if (!n) {
            b->err = -ENOMEM;
            return 1;
        }
        b->camp = n;
        b->capcamp = ncap;
    }
    struct camp *x = &b->camp[b->ncamp++];
    x->id = c->id;
    x->account = c->account;
    snprintf(x->name, sizeof x->name, "%s", c->name);
    return 0;
}

/* Whether a bucket of account id is in view. */
static bool in_view(struct build *b, uint64_t id)
{
    if (b->platform)
        return true;
    struct acct *a = acct_of(b, id);
    return a && a->in_view;
}

static int on_day(void *arg, const struct queue_series_row *r)
{
    struct build *b = arg;
    int64_t d = r->start / 86400 - b->from_day;
    struct agg *a = NULL;
    if (d < 0 || d >= b->ndays)
        return 0;
    switch (r->dim) {
    case QUEUE_SERIES_TOTAL:
        if (b->platform) {
            add_slots(b->sum, r->c);
            add_slots(b->day[d], r->c);
        }
        return 0;
    case QUEUE_SERIES_ACCOUNT:
        if (!in_view(b, r->id))
            return 0;
        if (!b->platform) {
            add_slots(b->sum, r->c);
            add_slots(b->day[d], r->c);
        }
        a = agg_for(&b->accts, r->id, "");
        break;
    case QUEUE_SERIES_CAMPAIGN:
        if (!in_view(b, r->account))
            return 0;
        a = agg_for(&b->camps, r->id, "");
        if (a)
            a->account = r->account;
        break;
    case QUEUE_SERIES_SITE:
        if (!in_view(b, r->id))
            return 0;
        a = agg_for(&b->sites, 0, r->name);
        break;
    case QUEUE_SERIES_DOMAIN:
        if (!in_view(b, r->id))
            return 0;
        a = agg_for(&b->doms, 0, r->name);
        break;
    default:
        return 0;
    }
    if (!a) {
        b->err = -ENOMEM;
        return 1;
    }
    add_slots(a->c, r->c);
    return 0;
}

static int on_hour(void *arg, const struct queue_series_row *r)
{
    struct build *b = arg;
    bool take = b->platform ? r->dim == QUEUE_SERIES_TOTAL
                            : r->dim == QUEUE_SERIES_ACCOUNT &&
                              in_view(b, r->id);
    if (!take)
        return 0;
    struct agg *a = agg_for(&b->hours, (uint64_t)r->start, "");
    if (!a) {
        b->err = -ENOMEM;
        return 1;
    }
    add_slots(a->c, r->c);
    return 0;
}

static int on_bill_day(void *arg, const struct queue_series_row *r)
{
    struct build *b = arg;
    if (r->dim != QUEUE_SERIES_ACCOUNT || !in_view(b, r->id))
        return 0;
    time_t t = (time_t)r->start;
    struct tm tm;
    char month[16];
    gmtime_r(&t, &tm);
    strftime(month, sizeof month, "%Y-%m", &tm);
    struct agg *a = agg_for(&b->bill, r->id, month);
    if (!a) {
        b->err = -ENOMEM;
        return 1;
    }
    add_slots(a->c, r->c);
    return 0;
}

static json_t *latency(const uint64_t *c)
{
    const uint64_t *h = c + QUEUE_SERIES_HIST0;
    int64_t p50 = queue_series_percentile(h, 50);
    if (p50 < 0)
        return json_null();
    return json_pack("{s:I,s:I,s:I}", "p50", (json_int_t)p50,
                     "p90", (json_int_t)queue_series_percentile(h, 90),
                     "p99", (json_int_t)queue_series_percentile(h, 99));
}

json_t *report_counts(const uint64_t *c)
{
    uint64_t dlv = c[QUEUE_EV_DELIVERED], bnc = c[QUEUE_EV_BOUNCED];
    json_t *cat = json_object(), *o;
    if (!cat)
        return NULL;
    for (int i = 1; i < QUEUE_CAT_COUNT && i < 16; i++)
        if (c[QUEUE_SERIES_CAT + i])
            json_object_set_new(cat, queue_category_name(i),
                                json_integer((json_int_t)
                                             c[QUEUE_SERIES_CAT + i]));
#define N(x) ((json_int_t)(x))
    o = json_pack("{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                  "s:I,s:o,s:o}",
                  "queued", N(c[QUEUE_SERIES_QUEUED]),
                  "attempted", N(c[QUEUE_SERIES_ATTEMPTED]),
                  "delivered", N(dlv), "bounced", N(bnc),
                  "bounced_by_category", cat,
                  "expired", N(c[QUEUE_EV_EXPIRED]),
                  "complained", N(c[QUEUE_EV_COMPLAINT]),
                  "unsubscribed", N(c[QUEUE_EV_UNSUBSCRIBED]),
                  "suppressed", N(c[QUEUE_EV_SUPPRESSED]),
                  "cancelled", N(c[QUEUE_EV_CANCELLED]),
                  "deferred", N(c[QUEUE_EV_DEFERRED]),
                  "opened", N(c[QUEUE_EV_OPENED]),
                  "clicked", N(c[QUEUE_EV_CLICKED]),
                  "sent", N(dlv + bnc),
                  "first_attempt_rate",
                  dlv ? json_real((double)c[QUEUE_SERIES_FIRST] /
                                  (double)dlv)
                      : json_null(),
                  "latency_ms", latency(c));
#undef N
    return o;
}

/* COUNTS with extra leading fields: row = {fields..., counts...}. */
static json_t *row_with(json_t *row, const uint64_t *c)
{
    json_t *k = report_counts(c);
    if (!row || !k || json_object_update(row, k)) {
        json_decref(row);
        json_decref(k);
        return NULL;
    }
    json_decref(k);
    return row;
}

static void day_text(int64_t t, char *buf, size_t cap, const char *fmt)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, fmt, &tm);
}

/* Sort by delivered, descending, then by key. */
static int by_delivered(const void *x, const void *y)
{
    const struct agg *a = x, *b = y;
    uint64_t da = a->c[QUEUE_EV_DELIVERED], db = b->c[QUEUE_EV_DELIVERED];
    if (da != db)
        return da > db ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int by_month(const void *x, const void *y)
{
    const struct agg *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int by_key(const void *x, const void *y)
{
    const struct agg *a = x, *b = y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Append rows of one kind to the array named key of out. */
static int put_rows(struct build *b, json_t *out, const char *key,
                    struct aggs *g, char kind)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    if (g->n)
        qsort(g->a, g->n, sizeof *g->a,
              kind == 'h' ? by_key : kind == 'b' ? by_month : by_delivered);
    for (size_t i = 0; i < g->n; i++) {
        struct agg *a = &g->a[i];
        json_t *row = NULL;
        char ts[32];
        if (kind == 'h') {
            day_text((int64_t)a->id, ts, sizeof ts, "%Y-%m-%dT%H:00:00Z");
            row = row_with(json_pack("{s:s}", "hour", ts), a->c);
        } else if (kind == 'c') {
            struct camp *c = camp_of(b, a->id);
            struct acct *ac = acct_of(b, a->account);
            row = row_with(json_pack("{s:s,s:I,s:s?}", "campaign",
                                     c ? c->name : "(deleted)",
                                     "campaign_id", (json_int_t)a->id,
                                     "account",
                                     ac ? ac->name : NULL), a->c);
        } else if (kind == 's') {
            row = row_with(json_pack("{s:s}", "site", a->name), a->c);
        } else if (kind == 'f') {
            row = row_with(json_pack("{s:s}", "domain", a->name), a->c);
        } else if (kind == 'a') {
            struct acct *ac = acct_of(b, a->id);
            row = row_with(json_pack("{s:s?,s:I}", "account",
                                     ac ? ac->name : NULL, "account_id",
                                     (json_int_t)a->id), a->c);
        } else {
            struct acct *ac = acct_of(b, a->id);
            row = json_pack("{s:s,s:s?,s:I}", "month", a->name, "account",
                            ac ? ac->name : NULL, "sent",
                            (json_int_t)(a->c[QUEUE_EV_DELIVERED] +
                                         a->c[QUEUE_EV_BOUNCED]));
        }
        if (!row || json_array_append_new(arr, row)) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    return json_object_set_new(out, key, arr) ? -ENOMEM : 0;
}

int report_parse_day(const char *s, int64_t *t)
{
    int y, m, d;
    char extra;
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 ||
        y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return -EINVAL;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -EINVAL;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
    time_t v = timegm(&tm);
    struct tm back;
    gmtime_r(&v, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1)
        return -EINVAL;   /* 2026-02-30 */
    *t = (int64_t)v;
    return 0;
}

/* The view: which accounts count.  0 or QUEUE_ENOTFOUND. */
static int set_view(struct build *b, const char *account)
{
    struct acct *me = NULL;
    for (size_t i = 0; i < b->nacct; i++)
        if (!strcmp(b->acct[i].name, account))
            me = &b->acct[i];
    if (!me)
        return QUEUE_ENOTFOUND;
    bool master = me->master == me->id;
    for (size_t i = 0; i < b->nacct; i++)
        b->acct[i].in_view = &b->acct[i] == me ||
                             (master && b->acct[i].master == me->id);
    return 0;
}

int report_build(struct queue *q, const struct report_query *rq,
                 json_t **out)
{
    struct build b = { .q = q, .platform = !rq->account };
    int64_t now = rq->now ? rq->now : (int64_t)time(NULL);
    int64_t from = rq->from, to = rq->to;
    json_t *o = NULL;
    long n;
    int err = 0;
    *out = NULL;
    if (!from && !to) {
        to = now;
        from = now - 29 * 86400;
    }
    if (from < 0 || to < from ||
        to / 86400 - from / 86400 + 1 > REPORT_MAX_DAYS)
        return -EINVAL;
    b.from_day = from / 86400;
    b.ndays = to / 86400 - b.from_day + 1;
    if (!(b.day = calloc((size_t)b.ndays, sizeof *b.day)))
        return -ENOMEM;
    if ((n = queue_accounts(q, on_account, &b)) < 0 ||
        (n = queue_campaigns(q, 0, on_campaign, &b)) < 0) {
        err = (int)n;
        goto done;
    }
    if ((err = b.err))
        goto done;
    if (rq->account && (err = set_view(&b, rq->account)))
        goto done;
    /* every account in view has its row, sending or not */
    for (size_t i = 0; i < b.nacct; i++)
        if (b.acct[i].in_view && !agg_for(&b.accts, b.acct[i].id, "")) {
            err = -ENOMEM;
            goto done;
        }
    int64_t d0 = b.from_day * 86400, d1 = (b.from_day + b.ndays) * 86400 - 1;
    if ((n = queue_series_scan(q, QUEUE_SERIES_DAY, d0, d1, 0, on_day,
                               &b)) < 0 ||
        (!b.err && (n = queue_series_scan(q, QUEUE_SERIES_HOUR, d0, d1, 0,
                                          on_hour, &b)) < 0)) {
        err = (int)n;
        goto done;
    }
    /* billing: whole calendar months */
    {
        time_t t = (time_t)d0;
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        int64_t m0 = (int64_t)timegm(&tm);
        t = (time_t)d1;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_mon += 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        int64_t m1 = (int64_t)timegm(&tm) - 1;
        if (!b.err && (n = queue_series_scan(q, QUEUE_SERIES_DAY, m0, m1,
                                             QUEUE_SERIES_ACCOUNT,
                                             on_bill_day, &b)) < 0) {
            err = (int)n;
            goto done;
        }
    }
    if ((err = b.err))
        goto done;

    char fs[16], ts[16], gen[32];
    day_text(d0, fs, sizeof fs, "%Y-%m-%d");
    day_text(d1, ts, sizeof ts, "%Y-%m-%d");
    day_text(now, gen, sizeof gen, "%Y-%m-%dT%H:%M:%SZ");
    o = json_pack("{s:s?,s:s,s:s,s:s,s:o}", "account", rq->account,
                  "from", fs, "to", ts, "generated", gen, "summary",
                  report_counts(b.sum));
    json_t *days = json_array();
    if (!o || !days) {
        json_decref(days);
        err = -ENOMEM;
        goto done;
    }
    json_object_set_new(o, "daily", days);
    for (int64_t i = 0; i < b.ndays; i++) {
        char ds[16];
        day_text((b.from_day + i) * 86400, ds, sizeof ds, "%Y-%m-%d");
        json_t *row = row_with(json_pack("{s:s}", "day", ds), b.day[i]);
        if (!row || json_array_append_new(days, row)) {
            err = -ENOMEM;
            goto done;
        }
    }
    if ((err = put_rows(&b, o, "hourly", &b.hours, 'h')) ||
        (err = put_rows(&b, o, "campaigns", &b.camps, 'c')) ||
        (err = put_rows(&b, o, "sites", &b.sites, 's')) ||
        (err = put_rows(&b, o, "domains", &b.doms, 'f')) ||
        (err = put_rows(&b, o, "accounts", &b.accts, 'a')) ||
        (err = put_rows(&b, o, "billing", &b.bill, 'b')))
        goto done;
    *out = o;
    o = NULL;
done:
    json_decref(o);
    free(b.day);
    free(b.acct);
    free(b.camp);
    aggs_free(&b.hours);
    aggs_free(&b.camps);
    aggs_free(&b.sites);
    aggs_free(&b.doms);
    aggs_free(&b.accts);
    aggs_free(&b.bill);
    return err;
}
