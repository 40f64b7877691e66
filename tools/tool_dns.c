/*
 * tool_dns.c - the CLI's DNS: a c-ares channel on the configured
 * resolvers driven to its answers by poll(2) (tool_dns_open/run/close,
 * used by `sluice dkim check` and here), and a domain's MX hosts for
 * `sluice site-of` and `sluice limits show --effective`.
 *
 * DESCRIPTION
 *   tool_mx_lookup() asks the servers given (c-ares' "ADDR:PORT,..." form,
 *   as config_parse_dns_servers() writes dns_servers; NULL: the system's
 *   resolv.conf) for the MX records of one domain and waits at most
 *   TOOL_DNS_TOTAL_MS, polling the channel's sockets.  The hosts come
 *   back sorted by preference, as sluiced tries them; sluiced puts a
 *   domain in the site of its first MX host (engine/site.c).
 *
 * DIAGNOSTICS
 *   -EINVAL for a bad server list, -ENOENT for a domain without MX
 *   records (NXDOMAIN or no data), -ETIMEDOUT when no answer came, -EIO
 *   for another failure; why is also in err.
 */
#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_admin.h"
#include "tool_dns.h"

#define TOOL_DNS_TOTAL_MS 10000

struct mx_query {
    bool done;
    int status;
    struct tool_mx *out;
    size_t cap, n;
};

/* c-ares callback: the MX answer, sorted by preference. */
static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf,
                  int alen)
{
    struct mx_query *m = arg;
    struct ares_mx_reply *mx = NULL;
    (void)timeouts;
    m->done = true;
    m->status = status;
    if (status != ARES_SUCCESS)
        return;
    if ((m->status = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS)
        return;
    for (struct ares_mx_reply *r = mx; r && m->n < m->cap; r = r->next) {
        size_t i = m->n++;
        /* insertion by preference (stable: equal ones keep their order) */
        while (i > 0 && m->out[i - 1].pref > r->priority) {
            m->out[i] = m->out[i - 1];
            i--;
        }
        snprintf(m->out[i].host, sizeof m->out[i].host, "%s", r->host);
        m->out[i].pref = r->priority;
    }
    ares_free_data(mx);
}

/* Milliseconds on the monotonic clock. */
static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A channel asking servers (tool_dns.h). */
int tool_dns_open(ares_channel *ch, const char *servers, int try_ms)
{
    struct ares_options o;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_EDNSPSZ;
    memset(&o, 0, sizeof o);
    /* NOCHECKRESP: c-ares 1.18 would turn SERVFAIL and REFUSED into
     * ECONNREFUSED after trying the other servers; the caller says which */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS |
              ARES_FLAG_NOCHECKRESP;
    o.timeout = try_ms;
    o.tries = 3;
    o.ednspsz = 1232;
    if (servers) {
        /* c-ares 1.18 reads resolv.conf unless all of these are given */
        mask |= ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
                ARES_OPT_NDOTS | ARES_OPT_SORTLIST;
        o.lookups = (char *)"b";
        o.ndots = 1;
    }
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return -EIO;
    if (ares_init_options(ch, &o, mask) != ARES_SUCCESS) {
        ares_library_cleanup();
        return -EIO;
    }
    if (servers && ares_set_servers_ports_csv(*ch, servers) != ARES_SUCCESS) {
        ares_destroy(*ch);
        ares_library_cleanup();
        return -EINVAL;
    }
    return 0;
}

void tool_dns_close(ares_channel ch)
{
    ares_destroy(ch);
    ares_library_cleanup();
}

/* Drive ch until pending(arg) is false or total_ms pass (tool_dns.h). */
void tool_dns_run(ares_channel ch, bool (*pending)(void *arg), void *arg,
                  int total_ms)
{
    long long deadline = mono_ms() + total_ms;
    while (pending(arg)) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            ares_cancel(ch);   /* the callbacks get ARES_ECANCELLED */
            break;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        /* not ARES_GETSOCK_WRITABLE(): it shifts a signed 1 into bit 31 */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        int nfd = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((bits & (1u << i) ? POLLIN : 0) |
                               (bits & (1u << (i + ARES_GETSOCK_MAXNUM))
                                    ? POLLOUT : 0));
            if (!ev)
                break;
            pfd[nfd++] = (struct pollfd){ .fd = socks[i], .events = ev };
        }
        struct timeval max = { left / 1000, (left % 1000) * 1000 }, tv;
        struct timeval *tp = ares_timeout(ch, &max, &tv);
        int ms = (int)(tp->tv_sec * 1000 + (tp->tv_usec + 999) / 1000);
        if (poll(pfd, (nfds_t)nfd, ms) < 0 && errno != EINTR)
            break;
        bool any = false;
        for (int i = 0; i < nfd; i++) {
            if (!pfd[i].revents)
                continue;
            any = true;
            ares_process_fd(ch, pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
                                    ? pfd[i].fd : ARES_SOCKET_BAD,
                            pfd[i].revents & POLLOUT ? pfd[i].fd
                                                     : ARES_SOCKET_BAD);
        }
        if (!any)   /* timeouts: retry or give up */
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
}

/* Whether the MX query waits for its answer. */
static bool mx_pending(void *arg)
{
    return !((struct mx_query *)arg)->done;
}

int tool_mx_lookup(const char *domain, const char *servers,
                   struct tool_mx *out, size_t cap, size_t *n, char *err,
                   size_t errlen)
{
    ares_channel ch;
    struct mx_query m = { .out = out, .cap = cap };
    *n = 0;
    int rc = tool_dns_open(&ch, servers, 2000);
    if (rc) {
        if (rc == -EINVAL)
            snprintf(err, errlen, "'%s' is not a list of DNS servers",
                     servers);
        else
            snprintf(err, errlen, "the resolver did not start");
        return rc;
    }
    ares_query(ch, domain, ns_c_in, ns_t_mx, on_mx, &m);
    tool_dns_run(ch, mx_pending, &m, TOOL_DNS_TOTAL_MS);
    tool_dns_close(ch);
    if (!m.done || m.status == ARES_ETIMEOUT || m.status == ARES_ECANCELLED) {
        snprintf(err, errlen, "no answer from the DNS servers");
        return -ETIMEDOUT;
    }
    if (m.status == ARES_ENOTFOUND || m.status == ARES_ENODATA ||
        (m.status == ARES_SUCCESS && !m.n)) {
        snprintf(err, errlen, "%s has no MX records", domain);
        return -ENOENT;
    }
    if (m.status != ARES_SUCCESS) {
        snprintf(err, errlen, "MX lookup of %s: %s", domain,
                 ares_strerror(m.status));
        return -EIO;
    }
    *n = m.n;
    return 0;
}
