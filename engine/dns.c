/*
 * dns.c - the engine's resolver object: c-ares on the libuv loop.
 *
 * Owns the c-ares channel, one uv_poll_t per socket c-ares opens (told by
 * its socket-state callback), a uv_timer_t set to ares_timeout(), and a
 * uv_idle_t that hands answers to callers. Callers are always called from
 * that idle callback, never from inside c-ares or from dns_resolve_mx(), so
 * a callback may start lookups or close the resolver. Lookups themselves are
 * in dns_job.c; the cache in dns_cache.c.
 *
 * Failure: dns_new() and dns_resolve_mx() return negative codes and leave
 * nothing behind. A poll that cannot be set up for a c-ares socket leaves
 * that query to time out (DNS_TEMPFAIL). dns_close() destroys the channel,
 * calls every waiting callback with DNS_CANCELLED, and frees the memory from
 * the last handle's close callback.
 */
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

/* Defaults; see dns_config_init() in dns.h. */
void dns_config_init(struct dns_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = 2000;
    cfg->tries = 2;
    cfg->cache_max = 100000;
    cfg->ttl_min = 5;
    cfg->ttl_max = 86400;
    cfg->negative_ttl = 300;
    cfg->negative_ttl_max = 3600;
    cfg->tempfail_ttl = 30;
    cfg->port = 25;
}

const char *dns_status_name(enum dns_status status)
{
    switch (status) {
    case DNS_OK:
        return "ok";
    case DNS_NULLMX:
        return "nullmx";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_NOHOST:
        return "nohost";
    case DNS_TEMPFAIL:
        return "tempfail";
    case DNS_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

const char *dns_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case DNS_EBADNAME:
        return "not a valid ASCII domain name";
    case DNS_ECLOSING:
        return "resolver is closing";
    case DNS_ESERVERS:
        return "bad DNS server list (want ADDR:PORT,...)";
    case DNS_ECARES:
        return "c-ares channel could not be set up";
    default:
        return uv_strerror(err);
    }
}

/* ---- handles and their close ------------------------------------------ */

/* Free everything once the last handle has been closed. */
static void maybe_free(struct dns *dns)
{
    if (!dns->closing || dns->open_handles > 0)
        return;
    dns__cache_free(&dns->cache);
    free(dns);
    ares_library_cleanup();
}

/* Close callback of the timer and the idle handle. */
static void on_handle_closed(uv_handle_t *h)
{
    struct dns *dns = h->data;

    dns->open_handles--;
    maybe_free(dns);
}

/* Close callback of a socket poll: free it. */
static void on_poll_closed(uv_handle_t *h)
{
    struct dns_poll *p = h->data;
    struct dns *dns = p->dns;

    free(p);
    dns->open_handles--;
    maybe_free(dns);
}

/* Stop polling p's socket now (before c-ares closes it) and free p later. */
static void poll_close(struct dns *dns, struct dns_poll *p)
{
    struct dns_poll **pp = &dns->polls;

    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    uv_poll_stop(&p->handle);
    uv_close((uv_handle_t *)&p->handle, on_poll_closed);
}

/* ---- c-ares on the loop ------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* Re-arm the timer for c-ares' next timeout, or stop it if nothing waits. */
static void timer_update(struct dns *dns)
{
    struct timeval tv, *t;

    if (dns->closing)
        return;
    t = ares_timeout(dns->channel, NULL, &tv);
    if (!t) {
        uv_timer_stop(&dns->timer);
        return;
    }
    /* round up: waking early would only re-arm with 0 and spin */
    uint64_t ms =
        (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    uv_timer_start(&dns->timer, on_timer, ms, 0);
}

/* Make sure the timer fires no later than c-ares needs it. Any deadline
 * c-ares sets from now on is at least timeout_ms away (retries only get
 * longer), so a timer already due within timeout_ms is early enough; this
 * spares an ares_timeout() call, which walks every query in c-ares 1.18,
 * per query sent and per socket event. A timer left early just fires,
 * finds nothing due and re-arms. */
static void timer_ensure(struct dns *dns)
{
    if (dns->closing)
        return;
    if (uv_is_active((uv_handle_t *)&dns->timer) &&
        uv_timer_get_due_in(&dns->timer) <= dns->cfg.timeout_ms)
        return;
    timer_update(dns);
}

/* c-ares timeouts are due: let it retry or fail the queries.  libuv runs
 * timers before it polls for I/O, so after a busy loop turn answers may be
 * waiting unread in the sockets; read those first, so that a query whose
 * answer has arrived is never timed out for the engine's own delay. */
static void on_timer(uv_timer_t *t)
{
    struct dns *dns = t->data;
    ares_socket_t fds[32];
    size_t n = 0;

    for (struct dns_poll *p = dns->polls; p && n < 32; p = p->next)
        fds[n++] = p->fd;
    for (size_t i = 0; i < n; i++)
        ares_process_fd(dns->channel, fds[i], ARES_SOCKET_BAD);
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    timer_update(dns);
}

/* A c-ares socket is ready (or failed): let c-ares read or write it. */
static void on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_poll *p = h->data;
    struct dns *dns = p->dns;
    ares_socket_t fd = p->fd;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    if (status < 0) {
        rfd = wfd = fd; /* let c-ares see the error on the socket */
    } else {
        if (events & UV_READABLE)
            rfd = fd;
        if (events & UV_WRITABLE)
            wfd = fd;
    }
    ares_process_fd(dns->channel, rfd, wfd); /* may close p */
    timer_ensure(dns);
}

/* c-ares tells which sockets to watch; keep one poll per socket. */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable)
{
    struct dns *dns = data;
    struct dns_poll *p;

    for (p = dns->polls; p && p->fd != fd; p = p->next)
        ;
    if (!readable && !writable) {
        if (p)
            poll_close(dns, p);
        return;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return; /* the query will time out */
        if (uv_poll_init(dns->loop, &p->handle, fd) < 0) {
            free(p);
            return;
        }
        p->dns = dns;
        p->fd = fd;
        p->handle.data = p;
        p->next = dns->polls;
        dns->polls = p;
        dns->open_handles++;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    if (uv_poll_start(&p->handle, events, on_poll) < 0)
        poll_close(dns, p);
}

/* Send one query for a job and count it. */
void dns__send_query(struct dns *dns, const char *name, int type,
                     ares_callback cb, void *arg)
{
    dns->stats.queries++;
    ares_query(dns->channel, name, DNS_C_IN, type, cb, arg);
    timer_ensure(dns);
}

/* ---- delivery --------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

/* Queue e for its waiters to be called from the idle callback. */
static void due_push(struct dns *dns, struct dns_entry *e)
{
    if (e->on_due)
        return;
    e->on_due = 1;
    e->due_next = NULL;
    *dns->due_tail = e;
    dns->due_tail = &e->due_next;
    uv_idle_start(&dns->idle, on_idle);
}

/* An entry has its answer: queue its waiters (if any). */
void dns__entry_answered(struct dns *dns, struct dns_entry *e)
{
    if (e->waiters)
        due_push(dns, e);
}

/* Take the waiter list off e. */
static struct dns_waiter *take_waiters(struct dns_entry *e)
{
    struct dns_waiter *w = e->waiters;

    e->waiters = NULL;
    e->waiters_tail = &e->waiters;
    return w;
}

/* Call each waiter in list with res (or cancelled, once closing). */
static void call_waiters(struct dns *dns, struct dns_entry *e,
                         struct dns_waiter *w)
{
    e->pins++;
    while (w) {
        struct dns_waiter *next = w->next;
        if (dns->closing || !e->result) {
            struct dns_result c = {.status = DNS_CANCELLED,
                                   .domain = e->name,
                                   .reason = "resolver closed"};
            w->cb(&c, w->arg);
        } else {
            w->cb(e->result, w->arg);
        }
        free(w);
        w = next;
    }
    e->pins--;
}

/* Idle callback: call the waiters of every entry queued so far. */
static void on_idle(uv_idle_t *h)
{
    struct dns *dns = h->data;
    struct dns_entry *e = dns->due_head;

    /* entries queued by the callbacks below wait for the next turn */
    dns->due_head = NULL;
    dns->due_tail = &dns->due_head;
    while (e) {
        struct dns_entry *next = e->due_next;
        e->on_due = 0;
        call_waiters(dns, e, take_waiters(e));
        e = next;
    }
    if (!dns->due_head && !dns->closing)
        uv_idle_stop(&dns->idle);
}

/* ---- public ----------------------------------------------------------- */

/* Copy domain into out as a lower-case LDH name without trailing dot. */
static int normalise(const char *domain, char *out, size_t outsz)
{
    size_t n = strnlen(domain, DNS_NAME_MAX + 2);
    size_t label = 0;

    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX || n >= outsz)
        return DNS_EBADNAME;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)domain[i];
        if (c == '.') {
            if (label == 0 || domain[i - 1] == '-')
                return DNS_EBADNAME;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (c == '-' && label == 0)
                return DNS_EBADNAME;
            label++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + ('a' - 'A'));
            label++;
        } else {
            return DNS_EBADNAME;
        }
        if (label > 63)
            return DNS_EBADNAME;
        out[i] = (char)c;
    }
    if (out[n - 1] == '-')
        return DNS_EBADNAME;
    out[n] = '\0';
    return 0;
}

/* Set up the c-ares channel per cfg. */
static int channel_init(struct dns *dns)
{
    struct ares_options o;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_SOCK_STATE_CB;
    int have_servers = dns->cfg.servers && dns->cfg.servers[0];

    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = (int)dns->cfg.timeout_ms;
    o.tries = (int)dns->cfg.tries;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = dns;
    if (have_servers) {
        /* c-ares 1.18 reads resolv.conf unless all of these are given */
        mask |= ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
                ARES_OPT_NDOTS | ARES_OPT_SORTLIST;
        o.nservers = 0;
        o.ndomains = 0;
        o.lookups = (char *)"b";
        o.ndots = 1;
        o.nsort = 0;
    }
    int rc = ares_init_options(&dns->channel, &o, mask);
    if (rc != ARES_SUCCESS)
        return rc == ARES_ENOMEM ? DNS_ENOMEM : DNS_ECARES;
    dns->have_channel = 1;
    if (have_servers && ares_set_servers_ports_csv(
                            dns->channel, dns->cfg.servers) != ARES_SUCCESS)
        return DNS_ESERVERS;
    return 0;
}

int dns_new(uv_loop_t *loop, const struct dns_config *cfg, struct dns **out)
{
    struct dns *dns;
    int rc;

    if (!loop || !out)
        return DNS_EINVAL;
    *out = NULL;
    dns = calloc(1, sizeof(*dns));
    if (!dns)
        return DNS_ENOMEM;
    if (cfg)
        dns->cfg = *cfg;
    else
        dns_config_init(&dns->cfg);
    if (dns->cfg.ttl_min > dns->cfg.ttl_max || dns->cfg.tries == 0 ||
        dns->cfg.timeout_ms == 0 || dns->cfg.timeout_ms > 600000) {
        free(dns);
        return DNS_EINVAL;
    }
    dns->loop = loop;
    dns->due_tail = &dns->due_head;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        free(dns);
        return DNS_ECARES;
    }
    rc = dns__cache_init(&dns->cache, dns->cfg.cache_max);
    if (rc == 0)
        rc = channel_init(dns);
    if (rc < 0) {
        if (dns->have_channel)
            ares_destroy(dns->channel);
        dns__cache_free(&dns->cache);
        free(dns);
        ares_library_cleanup();
        return rc;
    }
    dns->cfg.servers = NULL; /* not ours to keep */
    uv_timer_init(loop, &dns->timer);
    uv_idle_init(loop, &dns->idle);
    dns->timer.data = dns;
    dns->idle.data = dns;
    dns->open_handles = 2;
    *out = dns;
    return 0;
}

int dns_resolve_mx(struct dns *dns, const char *domain, dns_resolve_cb cb,
                   void *arg)
{
    char name[DNS_NAME_MAX + 1];
    struct dns_waiter *w;
    struct dns_entry *e;
    int rc, fresh = 0;

    if (!dns || !domain || !cb)
        return DNS_EINVAL;
    if (dns->closing)
        return DNS_ECLOSING;
    rc = normalise(domain, name, sizeof(name));
    if (rc < 0)
        return rc;
    w = calloc(1, sizeof(*w));
    if (!w)
        return DNS_ENOMEM;
    w->cb = cb;
    w->arg = arg;

    uint32_t hash = dns__cache_hash(name);
    e = dns__cache_find(&dns->cache, name, hash);
    if (e && e->job) {
        dns->stats.coalesced++;
    } else if (e && e->result &&
               (uv_now(dns->loop) < e->expires_ms || e->on_due || e->pins)) {
        /* fresh; or stale but being handed out this very turn */
        dns->stats.hits++;
        dns__cache_touch(&dns->cache, e);
        due_push(dns, e);
    } else {
        if (!e) {
            e = dns__cache_add(&dns->cache, name, hash, &dns->stats.evictions);
            if (!e) {
                free(w);
                return DNS_ENOMEM;
            }
            fresh = 1;
        }
        dns__cache_touch(&dns->cache, e);
        /* the waiter goes on first: the job may answer before it returns */
        *e->waiters_tail = w;
        e->waiters_tail = &w->next;
        rc = dns__job_start(dns, e);
        if (rc < 0) {
            take_waiters(e);
            free(w);
            if (fresh)
                dns__cache_remove(&dns->cache, e);
            return rc;
        }
        dns->stats.misses++;
        dns->stats.requests++;
        return 0;
    }
    *e->waiters_tail = w;
    e->waiters_tail = &w->next;
    dns->stats.requests++;
    return 0;
}

void dns_close(struct dns *dns)
{
    if (!dns || dns->closing)
        return;
    dns->closing = 1;
    /* every query callback runs now with ARES_EDESTRUCTION; jobs end */
    ares_destroy(dns->channel);
    dns->have_channel = 0;
    while (dns->polls)
        poll_close(dns, dns->polls);
    uv_close((uv_handle_t *)&dns->timer, on_handle_closed);
    uv_close((uv_handle_t *)&dns->idle, on_handle_closed);
    dns->due_head = NULL;
    dns->due_tail = &dns->due_head;
    /* callbacks may not add entries (ECLOSING), so the list holds still */
    for (struct dns_entry *e = dns->cache.lru_head; e; e = e->lru_next) {
        e->on_due = 0;
        if (e->waiters)
            call_waiters(dns, e, take_waiters(e));
    }
}

void dns_get_stats(const struct dns *dns, struct dns_stats *out)
{
    *out = dns->stats;
    out->entries = dns->cache.count;
}
