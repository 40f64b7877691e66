/*
 * cmd_queue.c - `sluice queue`: the admin's view of queued mail and the
 * group front of its operations.
 *
 * DESCRIPTION
 *   queue summary [--by domain|site|campaign|account] [--account A] [--json]
 *     one row per group of queued deliveries, largest first: queued,
 *     ready (due now, in flight included), deferred (tried, waiting for
 *     the next attempt), waiting (not tried yet, due later: a schedule
 *     or an account's daily cap), held (a paused campaign, a disabled
 *     account, a paused domain or site), the oldest one's age, the next
 *     attempt, and the newest deferral's reply among them.  Read from one
 *     snapshot of the spool (queue_queued_walk) beside the pauses and the
 *     live view of `sluice status` (status_view.c), whose sites name the
 *     domains each holds: --by site groups a domain under the site
 *     sluiced put it in, or under its own name when sluiced has not seen
 *     it or does not run (the "live" field says which).
 *   queue retry, queue bounce: cmd_queue_act.c.
 *   Who may: without --account, the role on the master (summary viewer,
 *   retry and bounce admin); with --account A, that role on A, so the
 *   user of a sub-account acts on its own account's mail only.  Refusals
 *   are audited (authz.c); retry and bounce are audited when they commit.
 *
 * DIAGNOSTICS
 *   64 usage, 66 no spool or no such account, 65 a damaged spool, 69
 *   --site while sluiced does not run (its sites are known to it only),
 *   77 refused, 75 spool full (nothing written).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue_queued.h"
#include "tool_admin.h"
#include "tool_queue.h"

#define QP "sluice queue"
/* groups a summary holds at most (a queue of more distinct domains is
 * refused with a message rather than eating the memory) */
#define SUMMARY_MAX_GROUPS (1u << 22)

static const char usage_text[] =
    "usage: sluice queue summary [--by domain|site|campaign|account] "
    "[--account A] [--json]\n"
    "       sluice queue retry --site S|--domain D|--campaign ID "
    "[--account A] [--json]\n"
    "       sluice queue bounce --domain D|--site S|--campaign ID|--account A "
    "--reason TEXT [--json]\n";

/* ------------------------------------------------------- shared front */

struct site_of {
    const char *domain, *site;   /* strings of the view's JSON */
};

static int site_of_cmp(const void *a, const void *b)
{
    return strcmp(((const struct site_of *)a)->domain,
                  ((const struct site_of *)b)->domain);
}

int tool_queue_site_map(const struct status_view *v,
                        struct tool_site_map *m)
{
    json_t *sites = v->doc ? json_object_get(v->doc, "sites") : NULL;
    size_t i, k, n = 0;
    json_t *s, *d;
    m->v = NULL;
    m->n = 0;
    json_array_foreach(sites, i, s)
        n += json_array_size(json_object_get(s, "domains"));
    if (!n)
        return 0;
    if (!(m->v = calloc(n, sizeof *m->v)))
        return -ENOMEM;
    json_array_foreach(sites, i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *kind = json_string_value(json_object_get(s, "kind"));
        if (!name || (kind && strcmp(kind, "site")))
            continue;
        json_array_foreach(json_object_get(s, "domains"), k, d)
            if (json_is_string(d) && m->n < n)
                m->v[m->n++] = (struct site_of){ json_string_value(d), name };
    }
    qsort(m->v, m->n, sizeof *m->v, site_of_cmp);
    return 0;
}

const char *tool_queue_site_of(const struct tool_site_map *m,
                               const char *domain)
{
    struct site_of key = { domain, NULL };
    const struct site_of *f = m->n ? bsearch(&key, m->v, m->n, sizeof *m->v,
                                             site_of_cmp) : NULL;
    return f ? f->site : domain;
}

bool tool_queue_paused(const struct status_view *v, int kind,
                       const char *name)
{
    for (size_t i = 0; i < v->nctls; i++)   /* only those still holding */
        if (v->ctls[i].kind == kind && !strcmp(v->ctls[i].name, name))
            return true;
    return false;
}

int tool_queue_begin(struct tool_ctx *ctx, const char *prog, int act,
                     const char *acct, const char *object, struct queue **q,
                     struct queue_select *sel)
{
    struct queue_account a;
    uint32_t target = 0;
    int rc;
    if ((rc = tool_admin_begin(ctx, false, tool_action_name(act), q)))
        return rc;
    if (acct) {
        if ((rc = tool_find_account(ctx, *q, prog, acct, &a))) {
            queue_close(*q);
            return rc;
        }
        sel->account = target = a.id;
        sel->by_account = true;
    } else {
        queue_account_master(*q, &target);
    }
    if ((rc = tool_authorize(ctx, *q, act, target, 0, object, NULL))) {
        queue_close(*q);
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------ summary */

enum by { BY_DOMAIN, BY_SITE, BY_CAMPAIGN, BY_ACCOUNT };

struct group {
    char *name;               /* domain or site; NULL for numbered groups */
    uint64_t num;             /* campaign or account id */
    uint64_t queued, ready, deferred, waiting, held;
    int64_t oldest;           /* earliest created */
    int64_t next;             /* earliest due later than now, not held */
    uint64_t last_event;      /* newest event of a tried delivery */
};

struct summary {
    enum by by;
    int64_t now;
    const struct status_view *v;
    struct tool_site_map map;     /* domain -> site of the live view */
    struct group *g;
    size_t n, cap;            /* groups; cap a power of two */
    size_t *slot;             /* open addressing: index + 1, 0 empty */
    int err;
};

static uint64_t hash_key(const char *s, uint64_t num)
{
    uint64_t h = 1469598103934665603ull ^ num;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h * 0x9e3779b97f4a7c15ull;
}

/* Double the table; false out of memory. */
static bool grow(struct summary *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 256;
    struct group *ng = realloc(s->g, ncap / 2 * sizeof *ng);
    size_t *ns = calloc(ncap, sizeof *ns);
    if (!ng || !ns) {
        if (ng)
            s->g = ng;
        free(ns);
        return false;
    }
    s->g = ng;
    free(s->slot);
    s->slot = ns;
    s->cap = ncap;
    for (size_t i = 0; i < s->n; i++) {
        size_t b = hash_key(s->g[i].name, s->g[i].num) & (ncap - 1);
        while (ns[b])
            b = (b + 1) & (ncap - 1);
        ns[b] = i + 1;
    }
    return true;
}

/* The group named (name, num), made when new; NULL out of memory or past
 * the cap (s->err says which). */
static struct group *group_of(struct summary *s, const char *name,
                              uint64_t num)
{
    if (s->cap) {
        size_t b = hash_key(name, num) & (s->cap - 1);
        for (; s->slot[b]; b = (b + 1) & (s->cap - 1)) {
            struct group *g = &s->g[s->slot[b] - 1];
            if (g->num == num && (!name || !strcmp(g->name, name)))
                return g;
        }
    }
    if (s->n >= SUMMARY_MAX_GROUPS) {
        s->err = QUEUE_ETOOBIG;
        return NULL;
    }
    if ((s->n + 1) * 2 > s->cap && !grow(s)) {
        s->err = -ENOMEM;
        return NULL;
    }
    struct group *g = &s->g[s->n];
    *g = (struct group){ .num = num, .oldest = INT64_MAX };
    if (name && !(g->name = strdup(name))) {
        s->err = -ENOMEM;
        return NULL;
    }
    size_t b = hash_key(name, num) & (s->cap - 1);
    while (s->slot[b])
        b = (b + 1) & (s->cap - 1);
    s->slot[b] = ++s->n;
    return g;
}

struct walk_arg {
    struct summary *s;
    const struct queue_select *sel;
};

/* queue_queued_walk() callback: count one delivery into its group. */
static int count_one(void *arg, const struct queue_queued *d)
{
    struct walk_arg *wa = arg;
    struct summary *s = wa->s;
    if (!queue_select_match(wa->sel, d))
        return 0;
    const char *site = tool_queue_site_of(&s->map, d->domain);
    struct group *g =
        s->by == BY_DOMAIN ? group_of(s, d->domain, 0)
        : s->by == BY_SITE ? group_of(s, site, 0)
        : s->by == BY_CAMPAIGN ? group_of(s, NULL, d->campaign)
        : group_of(s, NULL, d->account);
    if (!g)
        return 1;
    bool held = queue_due_parked(d->due) ||
                tool_queue_paused(s->v, QUEUE_CTL_DOMAIN, d->domain) ||
                tool_queue_paused(s->v, QUEUE_CTL_SITE, site);
    g->queued++;
    if (held)
        g->held++;
    else if (d->due <= s->now)
        g->ready++;
    else if (d->attempts)
        g->deferred++;
    else
        g->waiting++;
    if (!held && d->due > s->now && (!g->next || d->due < g->next))
        g->next = d->due;
    if (d->created < g->oldest)
        g->oldest = d->created;
    if (d->attempts && d->last_event > g->last_event)
        g->last_event = d->last_event;
    return 0;
}

static int group_cmp(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->queued != y->queued)
        return x->queued > y->queued ? -1 : 1;
    if (x->name && y->name)
        return strcmp(x->name, y->name);
    return x->num < y->num ? -1 : x->num > y->num;
}

/* queue_events_from() callback: keep the one event read. */
static int take_event(void *arg, const struct queue_event *ev)
{
    memcpy(arg, ev, sizeof *ev);
    return 1;
}

/* The group's display name into buf. */
static const char *group_name(struct summary *s, struct queue *q,
                              const struct group *g, char *buf, size_t cap)
{
    if (g->name)
        return g->name;
    if (s->by == BY_ACCOUNT)
        return tool_account_name(q, (uint32_t)g->num, buf, cap);
    if (!g->num)
        return "-";
    snprintf(buf, cap, "%llu", (unsigned long long)g->num);
    return buf;
}

/* Print the groups (table or JSON) with their last errors. */
static void print_summary(struct tool_ctx *ctx, struct summary *s,
                          struct queue *q)
{
    static const char *const by_names[] = { "domain", "site", "campaign",
                                            "account" };
    struct queue_event *ev = malloc(sizeof *ev);
    json_t *arr = ctx->json ? json_array() : NULL;
    char name[QUEUE_MAX_ACCOUNT_NAME + 64];
    if (s->n)
        qsort(s->g, s->n, sizeof *s->g, group_cmp);
    if (!ctx->json)
        printf("%-30s %8s %8s %8s %8s %8s %9s %-20s %s\n",
               by_names[s->by], "QUEUED", "READY", "DEFERRED", "WAITING",
               "HELD", "OLDEST", "NEXT", "LAST ERROR");
    for (size_t i = 0; i < s->n; i++) {
        const struct group *g = &s->g[i];
        bool have_ev = ev && g->last_event &&
                       queue_events_from(q, g->last_event, 1, take_event,
                                         ev) == 1 &&
                       ev->seq == g->last_event;
        const char *gn = group_name(s, q, g, name, sizeof name);
        int64_t age = s->now - g->oldest;
        char next[32] = "-", err[QUEUE_MAX_REPLY + 64] = "-";
        if (g->ready)
            snprintf(next, sizeof next, "now");
        else if (g->next)
            tool_time_text(g->next, next, sizeof next);
        if (have_ev)
            snprintf(err, sizeof err, "%u %s %s", (unsigned)ev->code,
                     ev->enhanced[0] ? ev->enhanced : "-", ev->text);
        if (arr) {
            json_t *o = json_pack(
                "{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "name", gn,
                "queued", (json_int_t)g->queued,
                "ready", (json_int_t)g->ready,
                "deferred", (json_int_t)g->deferred,
                "waiting", (json_int_t)g->waiting,
                "held", (json_int_t)g->held,
                "oldest_age", (json_int_t)(age > 0 ? age : 0));
            if (!o)
                continue;
            if (s->by == BY_CAMPAIGN || s->by == BY_ACCOUNT)
                json_object_set_new(o, "id", json_integer((json_int_t)g->num));
            json_object_set_new(o, "next_attempt",
                                g->ready ? json_integer(s->now)
                                : g->next ? json_integer(g->next)
                                          : json_null());
            json_object_set_new(o, "last_error", have_ev
                ? json_pack("{s:I,s:s,s:s,s:s,s:I}", "code",
                            (json_int_t)ev->code, "enhanced", ev->enhanced,
                            "text", ev->text, "mx", ev->mx, "seq",
                            (json_int_t)ev->seq)
                : json_null());
            json_array_append_new(arr, o);
        } else {
            printf("%-30s %8llu %8llu %8llu %8llu %8llu %8llds %-20s %.200s\n",
                   gn, (unsigned long long)g->queued,
                   (unsigned long long)g->ready,
                   (unsigned long long)g->deferred,
                   (unsigned long long)g->waiting,
                   (unsigned long long)g->held,
                   (long long)(age > 0 ? age : 0), next, err);
        }
    }
    if (arr)
        tool_emit_json(json_pack("{s:s,s:I,s:b,s:o}", "by", by_names[s->by],
                                 "now", (json_int_t)s->now, "live",
                                 s->v->doc != NULL, "groups", arr));
    else if (!s->n)
        printf("(nothing queued)\n");
    free(ev);
}

/* `queue summary`. */
static int cmd_summary(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *by_s = "domain", *acct = NULL;
    bool bad = false;
    struct summary s = { .by = BY_DOMAIN };
    struct queue_select sel = { 0 };
    struct status_view v;
    struct queue *q;
    int rc;

    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--by", &by_s, &bad) &&
            !tool_opt(argc, argv, &i, "--account", &acct, &bad))
            bad = true;
    if (!bad) {
        if (!strcmp(by_s, "domain"))
            s.by = BY_DOMAIN;
        else if (!strcmp(by_s, "site"))
            s.by = BY_SITE;
        else if (!strcmp(by_s, "campaign"))
            s.by = BY_CAMPAIGN;
        else if (!strcmp(by_s, "account"))
            s.by = BY_ACCOUNT;
        else
            bad = true;
    }
    if (bad) {
        fputs(usage_text, stderr);
        return TOOL_EX_USAGE;
    }
    /* the pauses and sluiced's sites first: one open of the spool at a
     * time in this process */
    if ((rc = status_view_load(&v, ctx)))
        return rc;
    if ((rc = tool_queue_begin(ctx, QP " summary", ACT_QUEUE_SUMMARY, acct,
                               "queue summary", &q, &sel))) {
        status_view_free(&v);
        return rc;
    }
    s.now = (int64_t)time(NULL);
    s.v = &v;
    struct walk_arg wa = { &s, &sel };
    long n = tool_queue_site_map(&v, &s.map) ? -ENOMEM
             : queue_queued_walk(q, count_one, &wa);
    if (n < 0 || s.err) {
        int err = n < 0 ? (int)n : s.err;
        if (err == QUEUE_ETOOBIG)
            fprintf(stderr, QP " summary: more than %u groups\n",
                    SUMMARY_MAX_GROUPS);
        else
            fprintf(stderr, QP " summary: %s: %s\n", ctx->spool,
                    queue_strerror(err));
        rc = tool_exit_for(err);
    } else {
        print_summary(ctx, &s, q);
    }
    queue_close(q);
    for (size_t i = 0; i < s.n; i++)
        free(s.g[i].name);
    free(s.g);
    free(s.slot);
    free(s.map.v);
    status_view_free(&v);
    return rc;
}

int tool_queue_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "summary", .run = cmd_summary },
        { .name = "retry", .run = tool_queue_retry },
        { .name = "bounce", .run = tool_queue_bounce },
    };
    static const struct tool_group group = {
        QP, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
