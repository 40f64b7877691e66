/*
 * cmd_spool.c - `sluice spool`: look inside a spool.
 *
 * DESCRIPTION
 *   info      schema, rows, map and file sizes, total counters
 *   domains   counters per destination domain (queued first, or by name)
 *   events    the event log from a sequence number
 *   history   every event of one delivery, newest first
 *   check, salvage, init: cmd_spool_repair.c
 *   Read-only: opens the spool with QUEUE_OPEN_READONLY, so it is safe
 *   beside a running engine.
 *
 * DIAGNOSTICS
 *   A foreign, damaged or too-new spool exits 65 with the reason; a missing
 *   one 66; bad arguments 64.  LMDB keeps no checksums, so a damaged page
 *   can make a read fault (SIGBUS past the end of a cut file, SIGSEGV
 *   through a garbage offset): these commands then say so and exit 65
 *   instead of dying of the signal.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_admin.h"

/* A read of the mapped spool faulted: say so (async-signal-safe) and exit
 * 65, as for any damaged spool. */
static void on_fault(int sig)
{
    static const char msg[] =
        "sluice spool: reading the spool faulted (a bus error or a bad "
        "address in the mapped data.mdb): the spool is damaged; "
        "'sluice spool check' shows where\n";
    (void)sig;
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(TOOL_EX_DATAERR);
}

/* The counters as one JSON object (tool.h). */
json_t *tool_counts_json(const struct queue_counts *c)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                     "queued", (json_int_t)c->queued,
                     "enqueued", (json_int_t)c->enqueued,
                     "delivered", (json_int_t)c->delivered,
                     "deferred", (json_int_t)c->deferred,
                     "bounced", (json_int_t)c->bounced,
                     "expired", (json_int_t)c->expired,
                     "suppressed", (json_int_t)c->suppressed,
                     "cancelled", (json_int_t)c->cancelled);
}

static int cmd_info(struct tool_ctx *ctx, struct queue *q)
{
    struct queue_info i;
    struct queue_counts t;
    int err = queue_info(q, &i);
    if (!err)
        err = queue_counts_total(q, &t);
    if (err) {
        fprintf(stderr, "sluice spool info: %s\n", queue_strerror(err));
        return tool_exit_for(err);
    }
    if (ctx->json) {
        json_t *j = json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                              "spool", ctx->spool, "schema", (int)i.schema,
                              "deliveries", (json_int_t)i.deliveries,
                              "ready", (json_int_t)i.ready,
                              "events", (json_int_t)i.events,
                              "messages", (json_int_t)i.messages,
                              "map_size", (json_int_t)i.map_size,
                              "bytes_in_use", (json_int_t)i.last_page_bytes,
                              "file_bytes", (json_int_t)i.file_bytes,
                              "counts", tool_counts_json(&t));
        tool_emit_json(j);
        return 0;
    }
    printf("spool        %s (schema %u)\n", ctx->spool, i.schema);
    printf("deliveries   %llu rows, %llu ready, %llu messages stored\n",
           (unsigned long long)i.deliveries, (unsigned long long)i.ready,
           (unsigned long long)i.messages);
    printf("events       %llu\n", (unsigned long long)i.events);
    printf("size         %.1f MB in use, %.1f MB file, map %.1f MB\n",
           (double)i.last_page_bytes / 1e6, (double)i.file_bytes / 1e6,
           (double)i.map_size / 1e6);
    printf("counts       queued %llu  delivered %llu  deferred %llu  "
           "bounced %llu  expired %llu  suppressed %llu  cancelled %llu  "
           "(enqueued %llu)\n",
           (unsigned long long)t.queued, (unsigned long long)t.delivered,
           (unsigned long long)t.deferred, (unsigned long long)t.bounced,
           (unsigned long long)t.expired, (unsigned long long)t.suppressed,
           (unsigned long long)t.cancelled, (unsigned long long)t.enqueued);
    return 0;
}

struct dom_row {
    char name[256];
    struct queue_counts c;
};
struct dom_list {
    struct dom_row *rows;
    size_t n, cap;
    int err;
};

static int collect_domain(void *arg, const char *d, const struct queue_counts *c)
{
    struct dom_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        struct dom_row *r = realloc(l->rows, ncap * sizeof *r);
        if (!r) {
            l->err = 1;
            return 1;
        }
        l->rows = r;
        l->cap = ncap;
    }
    snprintf(l->rows[l->n].name, sizeof l->rows[l->n].name, "%s", d);
    l->rows[l->n++].c = *c;
    return 0;
}

static int by_queued(const void *a, const void *b)
{
    const struct dom_row *x = a, *y = b;
    if (x->c.queued != y->c.queued)
        return x->c.queued < y->c.queued ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int cmd_domains(struct tool_ctx *ctx, struct queue *q, int argc,
                       char **argv)
{
    unsigned long long limit = 50;
    bool by_name = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc &&
            tool_parse_u64(argv[i + 1], &limit))
            i++;
        else if (!strcmp(argv[i], "--sort") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "name") || !strcmp(argv[i + 1], "queued")))
            by_name = !strcmp(argv[++i], "name");
        else {
            fprintf(stderr, "usage: sluice spool domains [--sort queued|name] "
                            "[--limit N]\n");
            return TOOL_EX_USAGE;
        }
    }
    struct dom_list l = { 0 };
    long n = queue_domains(q, collect_domain, &l);
    if (n < 0 || l.err) {
        fprintf(stderr, "sluice spool domains: %s\n",
                queue_strerror(n < 0 ? (int)n : -12));
        free(l.rows);
        return tool_exit_for(n < 0 ? (int)n : -12);
    }
    if (!by_name && l.n)
        qsort(l.rows, l.n, sizeof *l.rows, by_queued);
    size_t show = limit && limit < l.n ? limit : l.n;
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < show; i++) {
            json_t *o = tool_counts_json(&l.rows[i].c);
            json_object_set_new(o, "domain", json_string(l.rows[i].name));
            json_array_append_new(arr, o);
        }
        tool_emit_json(arr);
    } else {
        printf("%-40s %10s %10s %10s %10s %10s %10s %10s\n", "domain",
               "queued", "delivered", "deferred", "bounced", "expired",
               "suppressed", "cancelled");
        for (size_t i = 0; i < show; i++) {
            const struct queue_counts *c = &l.rows[i].c;
            printf("%-40s %10llu %10llu %10llu %10llu %10llu %10llu "
                   "%10llu\n",
                   l.rows[i].name, (unsigned long long)c->queued,
                   (unsigned long long)c->delivered,
                   (unsigned long long)c->deferred,
                   (unsigned long long)c->bounced,
                   (unsigned long long)c->expired,
                   (unsigned long long)c->suppressed,
                   (unsigned long long)c->cancelled);
        }
        if (show < l.n)
            printf("(%zu more domains; --limit 0 shows all)\n", l.n - show);
    }
    free(l.rows);
    return 0;
}

/* Print one event as a JSON line or a text line. */
static int print_event(void *arg, const struct queue_event *e)
{
    const struct tool_ctx *ctx = arg;
    if (ctx->json) {
        tool_emit_json(json_pack("{s:I,s:I,s:s,s:I,s:I,s:i,s:s,s:i,s:s,s:i,s:s,s:s,s:I}",
                       "seq", (json_int_t)e->seq, "time_ms",
                       (json_int_t)e->time_ms, "type",
                       queue_event_name(e->type), "delivery",
                       (json_int_t)e->delivery, "campaign",
                       (json_int_t)e->campaign, "account", (int)e->account,
                       "rcpt", e->rcpt, "code", (int)e->code, "enhanced",
                       e->enhanced, "category", (int)e->category, "mx", e->mx,
                       "text", e->text, "attempt", (json_int_t)e->attempt));
    } else {
        printf("%llu %lld %-9s d=%llu c=%llu a=%u %s %u %s mx=%s \"%s\"\n",
               (unsigned long long)e->seq, (long long)e->time_ms,
               queue_event_name(e->type), (unsigned long long)e->delivery,
               (unsigned long long)e->campaign, e->account, e->rcpt, e->code,
               *e->enhanced ? e->enhanced : "-", *e->mx ? e->mx : "-",
               e->text);
    }
    return 0;
}

static int cmd_events(struct tool_ctx *ctx, struct queue *q, int argc,
                      char **argv)
{
    unsigned long long from = 1, limit = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--from") && i + 1 < argc &&
            tool_parse_u64(argv[i + 1], &from))
            i++;
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc &&
                 tool_parse_u64(argv[i + 1], &limit))
            i++;
        else {
            fprintf(stderr, "usage: sluice spool events [--from SEQ] "
                            "[--limit N]\n");
            return TOOL_EX_USAGE;
        }
    }
    long n = queue_events_from(q, from, limit, print_event, ctx);
    if (n < 0) {
        fprintf(stderr, "sluice spool events: %s\n", queue_strerror((int)n));
        return tool_exit_for((int)n);
    }
    return 0;
}

static int cmd_history(struct tool_ctx *ctx, struct queue *q, int argc,
                       char **argv)
{
    unsigned long long id;
    if (argc != 2 || !tool_parse_u64(argv[1], &id)) {
        fprintf(stderr, "usage: sluice spool history DELIVERY-ID\n");
        return TOOL_EX_USAGE;
    }
    struct queue_delivery d;
    int err = queue_get_delivery(q, id, &d);
    if (err) {
        fprintf(stderr, "sluice spool history: delivery %llu: %s\n", id,
                queue_strerror(err));
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    if (!ctx->json)
        printf("delivery %llu to %s: %s after %u attempts\n", id, d.rcpt,
               queue_state_name(d.state), d.attempts);
    long n = queue_history(q, id, print_event, ctx);
    return n < 0 ? tool_exit_for((int)n) : 0;
}

static const char spool_usage[] =
    "usage: sluice spool info\n"
    "       sluice spool domains [--sort queued|name] [--limit N]\n"
    "       sluice spool events [--from SEQ] [--limit N]\n"
    "       sluice spool history DELIVERY-ID\n"
    "       sluice spool check [--quick]\n"
    "       sluice spool salvage [SRC] DST\n"
    "       sluice spool init\n"
    "All take --json.\n"
    "check walks every database and record and checks the spool's\n"
    "invariants: exit 0 sound, 65 damaged.  salvage copies every record\n"
    "of SRC (default: --spool) that can be read into the new spool DST,\n"
    "repairs it and says what was lost: exit 0 nothing lost, 65 losses\n"
    "(DST still works), 73 DST exists.  init makes an empty spool; it\n"
    "also starts over where data.mdb is missing or empty beside the\n"
    "spool's lock files, which every other command refuses (65).\n";

/* info, domains, events, history: on the spool opened read-only. */
static int cmd_read(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    int rc = tool_open_spool(ctx, QUEUE_OPEN_READONLY, &q);
    if (rc)
        return rc;
    if (!strcmp(argv[0], "info"))
        rc = argc == 1 ? cmd_info(ctx, q) : TOOL_EX_USAGE;
    else if (!strcmp(argv[0], "domains"))
        rc = cmd_domains(ctx, q, argc, argv);
    else if (!strcmp(argv[0], "events"))
        rc = cmd_events(ctx, q, argc, argv);
    else
        rc = cmd_history(ctx, q, argc, argv);
    queue_close(q);
    return rc;
}

int tool_spool_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "info", .run = cmd_read, .gate = ACT_SPOOL },
        { .name = "domains", .run = cmd_read, .gate = ACT_SPOOL },
        { .name = "events", .run = cmd_read, .gate = ACT_SPOOL },
        { .name = "history", .run = cmd_read, .gate = ACT_SPOOL },
        { .name = "check", .run = tool_spool_check, .gate = ACT_SPOOL },
        { .name = "salvage", .run = tool_spool_salvage, .gate = ACT_SPOOL },
        { .name = "init", .run = tool_spool_init, .gate = ACT_SPOOL },
    };
    static const struct tool_group group = {
        "sluice spool", spool_usage, cmds, TOOL_NCMDS(cmds),
    };
    /* a fault reading the mapped spool is a damaged spool (65) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    return tool_group_run(ctx, argc, argv, &group);
}
