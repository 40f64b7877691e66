/*
 * dns_job.c - one lookup for one domain: MX, then A and AAAA per host.
 *
 * A job belongs to the cache entry it fills. It sends the MX query, sorts
 * the exchanges by preference (stable: ties keep answer order), keeps the
 * best DNS_MAX_HOSTS, and then asks A and AAAA for all of them at once. When
 * the last answer is in it builds the entry's result in one allocation,
 * picks its TTL and hands the entry back to dns.c for delivery.
 *
 * Outcomes (see enum dns_status): an MX lookup that times out or gets
 * SERVFAIL/REFUSED is DNS_TEMPFAIL; NXDOMAIN is DNS_NXDOMAIN; NODATA means
 * implicit MX (RFC 5321 5.1); a lone "." exchange is DNS_NULLMX. A host whose
 * lookups fail is skipped; if none is left the answer is DNS_TEMPFAIL when
 * any lookup failed temporarily, else DNS_NOHOST.
 *
 * c-ares calls every query callback exactly once, also when the channel is
 * destroyed, so a job ends only through its callbacks. Out of memory while
 * building a result aborts the process (STYLE: only OOM ends it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

/* What one query said. */
enum answer { ANS_NONE, ANS_OK, ANS_NODATA, ANS_NXDOMAIN, ANS_TEMP };

enum phase { PHASE_MX, PHASE_HOSTS };

struct query_arg {
    struct dns_job *job;
    int host; /* index in hosts[]; -1 for the MX query */
    int type; /* DNS_T_MX, DNS_T_A or DNS_T_AAAA */
};

struct host {
    char name[DNS_NAME_MAX + 1];
    unsigned pref;
    enum answer r4, r6;
    unsigned n4, n6;
    unsigned char a4[DNS_MAX_ADDRS][4];
    unsigned char a6[DNS_MAX_ADDRS][16];
    uint32_t ttl;    /* smallest TTL of the A/AAAA answers used */
    uint32_t negttl; /* smallest negative TTL seen */
    struct query_arg q4, q6;
};

struct dns_job {
    struct dns *dns;
    struct dns_entry *entry;
    enum phase phase;
    unsigned pending; /* queries out, plus one while starting */
    enum answer mx;
    int implicit;
    unsigned nulls;    /* "." exchanges seen */
    unsigned unusable; /* MX records with a name we refused */
    uint32_t mxttl;    /* MX answer TTL, or its negative TTL */
    unsigned nhosts;
    struct host hosts[DNS_MAX_HOSTS];
    struct query_arg qmx;
    char why[128]; /* first temporary failure, for reason */
};

/* Map a c-ares query status to what it means for delivery. */
static enum answer classify(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return ANS_OK;
    case ARES_ENODATA:
        return ANS_NODATA;
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
        return ANS_NXDOMAIN;
    default:
        return ANS_TEMP;
    }
}

/* Negative TTL of a NODATA/NXDOMAIN answer: SOA-based, else configured. */
static uint32_t negative_ttl(const struct dns *dns, const unsigned char *abuf,
                             int alen)
{
    uint32_t ttl;

    if (!dns__msg_negative_ttl(abuf, alen, &ttl))
        return dns->cfg.negative_ttl;
    return ttl < dns->cfg.negative_ttl_max ? ttl : dns->cfg.negative_ttl_max;
}

/* Event-log text for a failed query. c-ares 1.18 moves on to the next
 * server on SERVFAIL/REFUSED and, once all are tried, reports only
 * ARES_ECONNREFUSED, so that one says what it may hide. */
static const char *failure_text(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return "DNS timeout";
    case ARES_ECONNREFUSED:
        return "no DNS server gave an answer (SERVFAIL, REFUSED or unreachable)";
    case ARES_ESERVFAIL:
        return "SERVFAIL";
    case ARES_EREFUSED:
        return "REFUSED";
    case ARES_EBADRESP:
        return "malformed DNS answer";
    default:
        return ares_strerror(status);
    }
}

/* Remember the first temporary failure for the result's reason text. */
static void note_temp(struct dns_job *job, const char *what, const char *name,
                      int status)
{
    if (job->why[0])
        return;
    int n = snprintf(job->why, sizeof(job->why), "%s %s: %s", what, name,
                     failure_text(status));
    if (n < 0)
        job->why[0] = '\0'; /* truncation is fine, failure is not */
}

/* Insert an exchange into the sorted, capped, de-duplicated host list. */
static void add_host(struct dns_job *job, const char *name, unsigned pref)
{
    unsigned i, at;

    for (i = 0; i < job->nhosts; i++) {
        if (strcmp(job->hosts[i].name, name) != 0)
            continue;
        if (job->hosts[i].pref <= pref)
            return; /* already there at a better preference */
        memmove(&job->hosts[i], &job->hosts[i + 1],
                (job->nhosts - i - 1) * sizeof(job->hosts[0]));
        job->nhosts--;
        break;
    }
    for (at = 0; at < job->nhosts && job->hosts[at].pref <= pref; at++)
        ;
    if (at >= DNS_MAX_HOSTS)
        return;
    if (job->nhosts == DNS_MAX_HOSTS)
        job->nhosts--; /* the worst one falls off the end */
    memmove(&job->hosts[at + 1], &job->hosts[at],
            (job->nhosts - at) * sizeof(job->hosts[0]));
    memset(&job->hosts[at], 0, sizeof(job->hosts[at]));
    memcpy(job->hosts[at].name, name, strlen(name) + 1);
    job->hosts[at].pref = pref;
    job->nhosts++;
}

/* Read the MX records of an answer into the host list. */
static void read_mx(struct dns_job *job, const unsigned char *abuf, int alen)
{
    struct dns_msg m;
    struct dns_rr rr;
    char name[DNS_NAME_MAX + 1];
    uint32_t ttl = UINT32_MAX;
    unsigned seen = 0;
    int rc;

    if (dns__msg_open(&m, abuf, alen) < 0) {
        job->mx = ANS_TEMP;
        note_temp(job, "MX", job->entry->name, ARES_EBADRESP);
        return;
    }
    while ((rc = dns__msg_next(&m, &rr)) == 1) {
        if (rr.section != 1 || rr.cls != DNS_C_IN)
            continue;
        if (rr.type == DNS_T_CNAME && rr.ttl < ttl)
            ttl = rr.ttl;
        if (rr.type != DNS_T_MX)
            continue;
        seen++;
        if (rr.ttl < ttl)
            ttl = rr.ttl;
        if (rr.rdlen < 3 ||
            dns__msg_name(&m, rr.rdata + 2, name, sizeof(name)) < 0) {
            job->unusable++;
            continue;
        }
        if (name[0] == '\0') {
            job->nulls++;
            continue;
        }
        add_host(job, name,
                 ((unsigned)abuf[rr.rdata] << 8) | abuf[rr.rdata + 1]);
    }
    if (rc < 0 && seen == 0) {
        job->mx = ANS_TEMP;
        note_temp(job, "MX", job->entry->name, ARES_EBADRESP);
        return;
    }
    job->mxttl = ttl;
    job->mx = seen ? ANS_OK : ANS_NODATA;
    if (!seen) /* e.g. only a CNAME: same as NODATA */
        job->mxttl = negative_ttl(job->dns, abuf, alen);
}

/* Read the A or AAAA records of an answer into host h. */
static enum answer read_addrs(struct host *h, int type,
                              const unsigned char *abuf, int alen)
{
    struct dns_msg m;
    struct dns_rr rr;
    unsigned want = type == DNS_T_A ? 4 : 16;
    unsigned *n = type == DNS_T_A ? &h->n4 : &h->n6;
    uint32_t ttl = UINT32_MAX;

    if (dns__msg_open(&m, abuf, alen) < 0)
        return ANS_TEMP;
    while (dns__msg_next(&m, &rr) == 1) {
        if (rr.section != 1 || rr.cls != DNS_C_IN)
            continue;
        if (rr.type == DNS_T_CNAME && rr.ttl < ttl)
            ttl = rr.ttl;
        if (rr.type != (unsigned)type || rr.rdlen != want ||
            *n >= DNS_MAX_ADDRS)
            continue;
        if (type == DNS_T_A)
            memcpy(h->a4[h->n4], abuf + rr.rdata, 4);
        else
            memcpy(h->a6[h->n6], abuf + rr.rdata, 16);
        (*n)++;
        if (rr.ttl < ttl)
            ttl = rr.ttl;
    }
    if (*n == 0)
        return ANS_NODATA;
    if (ttl < h->ttl)
        h->ttl = ttl;
    return ANS_OK;
}

static void job_release(struct dns_job *job);

/* c-ares callback for every query of a job. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                      int alen)
{
    struct query_arg *q = arg;
    struct dns_job *job = q->job;
    struct dns *dns = job->dns;

    if (dns->closing || status == ARES_ECANCELLED ||
        status == ARES_EDESTRUCTION) {
        job_release(job);
        return;
    }
    enum answer a = classify(status);
    if (q->host < 0) {
        job->mx = a;
        if (a == ANS_OK)
            read_mx(job, abuf, alen);
        else if (a == ANS_NODATA || a == ANS_NXDOMAIN)
            job->mxttl = negative_ttl(dns, abuf, alen);
        else
            note_temp(job, "MX", job->entry->name, status);
    } else {
        struct host *h = &job->hosts[q->host];
        const char *what = q->type == DNS_T_A ? "A" : "AAAA";
        if (a == ANS_OK)
            a = read_addrs(h, q->type, abuf, alen);
        if (a == ANS_NODATA || a == ANS_NXDOMAIN) {
            uint32_t neg = negative_ttl(dns, abuf, alen);
            if (neg < h->negttl)
                h->negttl = neg;
        }
        if (a == ANS_TEMP)
            note_temp(job, what, h->name,
                      status == ARES_SUCCESS ? ARES_EBADRESP : status);
        if (q->type == DNS_T_A)
            h->r4 = a;
        else
            h->r6 = a;
    }
    job_release(job);
}

/* Ask A and AAAA for every host; the job guards itself while sending. */
static void send_host_queries(struct dns_job *job)
{
    job->phase = PHASE_HOSTS;
    job->pending++;
    for (unsigned i = 0; i < job->nhosts; i++) {
        struct host *h = &job->hosts[i];
        h->ttl = UINT32_MAX;
        h->negttl = UINT32_MAX;
        h->q4 = (struct query_arg){job, (int)i, DNS_T_A};
        h->q6 = (struct query_arg){job, (int)i, DNS_T_AAAA};
        job->pending += 2;
        dns__send_query(job->dns, h->name, DNS_T_A, on_answer, &h->q4);
        dns__send_query(job->dns, h->name, DNS_T_AAAA, on_answer, &h->q6);
    }
    job_release(job);
}

/* Clamp a positive TTL to the configured range. */
static uint32_t clamp_ttl(const struct dns *dns, uint32_t ttl)
{
    if (ttl < dns->cfg.ttl_min)
        return dns->cfg.ttl_min;
    if (ttl > dns->cfg.ttl_max)
        return dns->cfg.ttl_max;
    return ttl;
}

/* Round off up to the alignment of the type at the next offset. */
static size_t align_up(size_t off, size_t a)
{
    return (off + a - 1) / a * a;
}

/* Fill a socket address for 4 or 16 address bytes. */
static void fill_addr(struct sockaddr_storage *ss, const unsigned char *a,
                      int v6, unsigned short port)
{
    memset(ss, 0, sizeof(*ss));
    if (!v6) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, a, 16);
    }
}

/* What the answer comes to: status, TTL and reason text. */
struct verdict {
    enum dns_status status;
    uint32_t ttl;
    char reason[160];
    unsigned ntargets, naddrs; /* hosts and addresses that will be kept */
};

/* Decide the outcome from the MX answer and the host answers. */
static void judge(const struct dns_job *job, struct verdict *v)
{
    const struct dns *dns = job->dns;
    uint32_t ttl = job->mxttl, negttl = job->mxttl;
    int temp = 0;

    memset(v, 0, sizeof(*v));
    if (job->mx == ANS_TEMP) {
        v->status = DNS_TEMPFAIL;
        v->ttl = dns->cfg.tempfail_ttl;
        snprintf(v->reason, sizeof(v->reason), "%s", job->why);
        return;
    }
    if (job->mx == ANS_NXDOMAIN) {
        v->status = DNS_NXDOMAIN;
        v->ttl = job->mxttl;
        snprintf(v->reason, sizeof(v->reason), "%s does not exist (NXDOMAIN)",
                 job->entry->name);
        return;
    }
    if (job->nhosts == 0) {
        /* MX records, none usable: all ".", or names we refused */
        v->status = job->nulls && !job->unusable ? DNS_NULLMX : DNS_NOHOST;
        v->ttl = clamp_ttl(dns, job->mxttl);
        snprintf(v->reason, sizeof(v->reason), "%s",
                 v->status == DNS_NULLMX ? "null MX (RFC 7505): accepts no mail"
                                         : "MX records name no usable host");
        return;
    }
    for (unsigned i = 0; i < job->nhosts; i++) {
        const struct host *h = &job->hosts[i];
        if (h->r4 == ANS_TEMP || h->r6 == ANS_TEMP)
            temp = 1;
        if (h->negttl < negttl)
            negttl = h->negttl;
        if (h->n4 + h->n6 == 0 || v->naddrs >= DNS_MAX_ADDRS)
            continue;
        unsigned n = h->n4 + h->n6;
        if (n > DNS_MAX_ADDRS - v->naddrs)
            n = DNS_MAX_ADDRS - v->naddrs;
        v->ntargets++;
        v->naddrs += n;
        if (h->ttl < ttl)
            ttl = h->ttl;
    }
    if (v->naddrs > 0) {
        v->status = DNS_OK;
        v->ttl = clamp_ttl(dns, ttl);
        if (temp && v->ttl > dns->cfg.tempfail_ttl)
            v->ttl = dns->cfg.tempfail_ttl; /* a host is missing: retry soon */
        snprintf(v->reason, sizeof(v->reason), "%s%u host%s, %u address%s",
                 job->implicit ? "implicit MX, " : "", v->ntargets,
                 v->ntargets == 1 ? "" : "s", v->naddrs,
                 v->naddrs == 1 ? "" : "es");
    } else if (temp) {
        v->status = DNS_TEMPFAIL;
        v->ttl = dns->cfg.tempfail_ttl;
        snprintf(v->reason, sizeof(v->reason), "no MX host address: %s",
                 job->why);
    } else {
        v->status = DNS_NOHOST;
        v->ttl = negttl;
        snprintf(v->reason, sizeof(v->reason), "%s",
                 job->implicit ? "no MX and no A/AAAA records"
                               : "no MX host has an address");
    }
}

/* Build the result for the entry in one block: result, addresses, targets,
 * then the strings. */
static struct dns_result *build_result(const struct dns_job *job,
                                       const struct verdict *v)
{
    size_t off_addrs, off_targets, off_text, size;
    size_t dlen = strlen(job->entry->name) + 1;
    size_t rlen = strlen(v->reason) + 1;
    size_t hlen = 0;
    unsigned i;

    for (i = 0; i < job->nhosts; i++)
        hlen += strlen(job->hosts[i].name) + 1;
    off_addrs =
        align_up(sizeof(struct dns_result), _Alignof(struct sockaddr_storage));
    off_targets =
        align_up(off_addrs + v->naddrs * sizeof(struct sockaddr_storage),
                 _Alignof(struct dns_target));
    off_text = off_targets + v->ntargets * sizeof(struct dns_target);
    size = off_text + dlen + rlen + hlen;

    char *block = calloc(1, size);
    if (!block) {
        fprintf(stderr, "dns: out of memory building a result\n");
        abort();
    }
    struct dns_result *r = (struct dns_result *)block;
    struct sockaddr_storage *addrs =
        (struct sockaddr_storage *)(block + off_addrs);
    struct dns_target *targets = (struct dns_target *)(block + off_targets);
    char *text = block + off_text;

    r->status = v->status;
    r->ttl = v->ttl;
    r->implicit_mx = job->implicit;
    r->domain = text;
    memcpy(text, job->entry->name, dlen);
    text += dlen;
    r->reason = text;
    memcpy(text, v->reason, rlen);
    text += rlen;
    if (v->status != DNS_OK)
        return r;

    unsigned na = 0, nt = 0;
    unsigned short port = job->dns->cfg.port;
    for (i = 0; i < job->nhosts && na < v->naddrs; i++) {
        const struct host *h = &job->hosts[i];
        if (h->n4 + h->n6 == 0)
            continue;
        struct dns_target *t = &targets[nt++];
        size_t len = strlen(h->name) + 1;
        memcpy(text, h->name, len);
        t->host = text;
        text += len;
        t->pref = h->pref;
        t->addrs = &addrs[na];
        for (unsigned k = 0; k < h->n4 && na < v->naddrs; k++, t->naddrs++)
            fill_addr(&addrs[na++], h->a4[k], 0, port);
        for (unsigned k = 0; k < h->n6 && na < v->naddrs; k++, t->naddrs++)
            fill_addr(&addrs[na++], h->a6[k], 1, port);
    }
    r->ntargets = nt;
    r->naddrs = na;
    r->targets = targets;
    return r;
}

/* Publish the job's answer on its entry (unless closing) and free it. */
static void job_finish(struct dns_job *job)
{
    struct dns *dns = job->dns;
    struct dns_entry *e = job->entry;

    e->job = NULL;
    dns->stats.inflight--;
    if (!dns->closing) {
        struct verdict v;
        judge(job, &v);
        free(e->result);
        e->result = build_result(job, &v);
        e->expires_ms = uv_now(dns->loop) + (uint64_t)v.ttl * 1000;
        dns__entry_answered(dns, e);
    }
    free(job);
}

/* Drop one reference; when none is left, take the next step. */
static void job_release(struct dns_job *job)
{
    if (--job->pending > 0)
        return;
    if (job->dns->closing) {
        job_finish(job);
        return;
    }
    if (job->phase == PHASE_MX) {
        if (job->mx == ANS_NODATA) {
            /* RFC 5321 5.1: no MX, the domain itself at preference 0 */
            job->implicit = 1;
            add_host(job, job->entry->name, 0);
        }
        if ((job->mx == ANS_OK || job->mx == ANS_NODATA) && job->nhosts > 0) {
            send_host_queries(job);
            return;
        }
    }
    job_finish(job);
}

/* Start the lookup for entry e; 0, or DNS_ENOMEM with nothing started. */
int dns__job_start(struct dns *dns, struct dns_entry *e)
{
    struct dns_job *job = calloc(1, sizeof(*job));

    if (!job)
        return DNS_ENOMEM;
    job->dns = dns;
    job->entry = e;
    job->phase = PHASE_MX;
    job->mx = ANS_NONE;
    job->mxttl = UINT32_MAX;
    job->qmx = (struct query_arg){job, -1, DNS_T_MX};
    job->pending = 1;
    e->job = job;
    dns->stats.inflight++;
    /* the callback may run before this returns; job may be gone after */
    dns__send_query(dns, e->name, DNS_T_MX, on_answer, &job->qmx);
    return 0;
}
