/*
 * sink_stats.c - the counters of sluice-sink: global totals, the per-domain
 * hash maps and the per-second timelines.
 *
 * Two maps: by_addr (the local address a session connected to, which tests
 * map one-to-one to a receiving domain) and by_domain (the domain of each
 * recipient).  A map is chained hashing over FNV-1a of the lower-cased
 * name; entries are allocated one by one so pointers stay valid while the
 * slot array grows.  Each map holds at most --max-domains names; further
 * names are counted into one "(other)" entry.  A timeline is an array of
 * per-second counts grown by doubling, never past --timeline seconds.
 *
 * Failures: out of memory makes sink_domain_get() return NULL (the counts
 * of that name are lost, the totals are kept) and sink_stats_init() return
 * UV_ENOMEM.  The free functions accept a zeroed struct.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"

#define SINK_MAP_INITIAL 1024
#define SINK_NAME_MAX 255

/* Set up an empty map holding at most max names. */
int sink_domain_map_init(struct sink_domain_map *m, size_t max)
{
    memset(m, 0, sizeof(*m));
    m->slots = calloc(SINK_MAP_INITIAL, sizeof(*m->slots));
    if (m->slots == NULL)
        return UV_ENOMEM;
    m->nslots = SINK_MAP_INITIAL;
    m->max = max;
    return 0;
}

/* Free one entry and its timeline. */
static void domain_free(struct sink_domain *d)
{
    if (d != NULL)
        free(d->timeline);
    free(d);
}

/* Free every entry and the slot array. */
void sink_domain_map_free(struct sink_domain_map *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct sink_domain *d = m->slots[i];
        while (d != NULL) {
            struct sink_domain *next = d->next;
            domain_free(d);
            d = next;
        }
    }
    free(m->slots);
    domain_free(m->other);
    memset(m, 0, sizeof(*m));
}

/* FNV-1a over a name that is already lower-case. */
static uint64_t name_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A new zeroed entry named name[0..n). */
static struct sink_domain *domain_new(const char *name, size_t n)
{
    struct sink_domain *d = calloc(1, sizeof(*d) + n + 1);

    if (d != NULL)
        memcpy(d->name, name, n);
    return d;
}

/* Double the slot array and move every entry; keeps the old on failure. */
static void map_grow(struct sink_domain_map *m)
{
    size_t n = m->nslots * 2;
    struct sink_domain **slots = calloc(n, sizeof(*slots));

    if (slots == NULL)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        struct sink_domain *d = m->slots[i];
        while (d != NULL) {
            struct sink_domain *next = d->next;
            size_t j = (size_t)(d->hash & (n - 1));
            d->next = slots[j];
            slots[j] = d;
            d = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

/* Find or add the entry for a name (case-insensitive); NULL without memory. */
struct sink_domain *sink_domain_get(struct sink_domain_map *m,
                                    const char *name, size_t len)
{
    char key[SINK_NAME_MAX + 1];
    struct sink_domain *d;
    uint64_t h;
    size_t i;

    if (m->slots == NULL)
        return NULL;
    if (len > SINK_NAME_MAX)
        len = SINK_NAME_MAX;
    for (i = 0; i < len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[len] = '\0';
    h = name_hash(key, len);
    for (d = m->slots[h & (m->nslots - 1)]; d != NULL; d = d->next)
        if (d->hash == h && strcmp(d->name, key) == 0)
            return d;
    if (m->count >= m->max) {
        m->dropped++;
        if (m->other == NULL)
            m->other = domain_new("(other)", 7);
        return m->other;
    }
    d = domain_new(key, len);
    if (d == NULL)
        return NULL;
    d->hash = h;
    i = (size_t)(h & (m->nslots - 1));
    d->next = m->slots[i];
    m->slots[i] = d;
    if (++m->count > m->nslots)
        map_grow(m);
    return d;
}

/* Zero the counters and set up the maps. */
int sink_stats_init(struct sink_stats *st, const struct sink_config *cfg)
{
    memset(st, 0, sizeof(*st));
    st->started_ms = sink_wall_ms();
    st->first_accept_ms = -1;
    st->last_accept_ms = -1;
    st->start_hr = uv_hrtime();
    st->timeline_max = (size_t)cfg->timeline_secs;
    if (sink_domain_map_init(&st->by_addr, (size_t)cfg->max_domains) != 0 ||
        sink_domain_map_init(&st->by_domain, (size_t)cfg->max_domains) != 0)
        return UV_ENOMEM;
    return sink_seen_init(st, cfg);
}

/* Free the maps and timelines. */
void sink_stats_free(struct sink_stats *st)
{
    sink_domain_map_free(&st->by_addr);
    sink_domain_map_free(&st->by_domain);
    sink_domain_map_free(&st->seen);
    free(st->timeline);
    st->timeline = NULL;
}

/* A session opened to local address d. */
void sink_stats_session_open(struct sink_stats *st, struct sink_domain *d)
{
    st->sessions++;
    if (++st->current > st->max_concurrency)
        st->max_concurrency = st->current;
    if (d == NULL)
        return;
    d->sessions++;
    if (++d->current > d->max_concurrency)
        d->max_concurrency = d->current;
}

/* A session to local address d closed. */
void sink_stats_session_close(struct sink_stats *st, struct sink_domain *d)
{
    st->current--;
    if (d != NULL)
        d->current--;
}

/* A recipient got a 4xx (temporary) or 5xx answer. */
void sink_stats_rcpt_failed(struct sink_stats *st, struct sink_session *s,
                            struct sink_domain *dom, bool temporary)
{
    struct sink_domain *ds[2] = { dom, s->addr };

    if (temporary)
        st->rcpt_tempfail++;
    else
        st->rcpt_permfail++;
    for (int i = 0; i < 2; i++) {
        if (ds[i] == NULL)
            continue;
        if (temporary)
            ds[i]->rcpt_tempfail++;
        else
            ds[i]->rcpt_permfail++;
    }
}

/* Add n to second sec of a timeline, growing it up to max seconds. */
static void timeline_add(uint32_t **tl, size_t *len, size_t *cap,
                         size_t max, size_t sec, uint32_t n)
{
    if (sec >= max)
        return;
    if (sec >= *cap) {
        size_t ncap = *cap ? *cap : 64;
        while (ncap <= sec)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        uint32_t *nt = realloc(*tl, ncap * sizeof(*nt));
        if (nt == NULL)
            return;
        memset(nt + *cap, 0, (ncap - *cap) * sizeof(*nt));
        *tl = nt;
        *cap = ncap;
    }
    (*tl)[sec] += n;
    if (sec >= *len)
        *len = sec + 1;
}

/* A message was accepted: count it, its bytes and its recipients. */
void sink_stats_message(struct sink_server *srv, struct sink_session *s)
{
    struct sink_stats *st = &srv->stats;
    int64_t now = sink_wall_ms();
    size_t sec = 0;

    st->messages++;
    st->recipients += s->nrcpt;
    st->bytes += s->msg_size;
    if (st->first_accept_ms < 0)
        st->first_accept_ms = now;
    st->last_accept_ms = now;
    if (st->timeline_max > 0) {
        sec = (size_t)((uv_hrtime() - st->start_hr) / 1000000000ull);
        timeline_add(&st->timeline, &st->timeline_len, &st->timeline_cap,
                     st->timeline_max, sec, (uint32_t)s->nrcpt);
    }
    if (s->addr != NULL) {
        s->addr->messages++;
        s->addr->recipients += s->nrcpt;
    }
    for (size_t i = 0; i < s->nrcpt; i++) {
        struct sink_domain *d = s->rcpt_dom[i];
        if (d == NULL)
            continue;
        d->recipients++;
        if (d->last_msg != st->messages) {
            d->last_msg = st->messages;
            d->messages++;
        }
        if (st->timeline_max > 0)
            timeline_add(&d->timeline, &d->timeline_len, &d->timeline_cap,
                         st->timeline_max, sec, 1);
    }
}
