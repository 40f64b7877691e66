/*
 * cmd_spool_repair.c - `sluice spool check`, `sluice spool salvage` and
 * `sluice spool init`: a spool that may be damaged.
 *
 * DESCRIPTION
 *   check [--quick]   walks every database and record (queue_check) and
 *                     prints each problem as "DB KEY: WHAT", then a
 *                     summary.  Read-only, safe beside a running engine.
 *                     The MACs of keyed audit records are checked with
 *                     audit_key of sluiced.conf (tool_config.c); without
 *                     it a note says they were not.
 *   salvage [SRC] DST copies what can be read of SRC (default: --spool)
 *                     into the new spool DST, repairs DST's invariants and
 *                     prints what was lost and what was repaired.
 *   init              makes an empty spool at --spool: where none is, or
 *                     where data.mdb is missing or empty beside the other
 *                     spool files (which every other command refuses).
 *   The walks run in a child process (queue/walk.c): a damaged page that
 *   faults ends the walk, not the command, and is reported.
 *
 * EXIT STATUS
 *   check: 0 sound, 65 damage found, 66 no spool, 64 usage, 78
 *   sluiced.conf or its audit key does not load.
 *   salvage: 0 everything copied, 65 something lost (DST is still a
 *   working spool), 66 no SRC, 73 DST exists or cannot be made.
 *   init: 0 made (or already a spool), 65 a foreign directory, 73 cannot
 *   create.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_admin.h"

/* What --json collects: problems and notes as they come. */
struct out {
    const struct tool_ctx *ctx;
    json_t *problems, *notes;
};

static void on_report(void *arg, int kind, const char *db, const char *key,
                      const char *what)
{
    struct out *o = arg;
    if (o->ctx->json) {
        json_array_append_new(kind == QUEUE_REPORT_PROBLEM ? o->problems
                                                           : o->notes,
                              json_pack("{s:s,s:s,s:s}", "db", db, "key",
                                        key, "what", what));
        return;
    }
    printf("%-8s %-11s %s%s%s\n", kind == QUEUE_REPORT_PROBLEM ? "problem"
                                                               : "note",
           db, key, *key ? ": " : "", what);
}

/* The per-database table of a report as JSON. */
static json_t *databases_json(const struct queue_check_report *r,
                              bool copied)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->ndb; i++) {
        json_t *d = json_pack("{s:s,s:I,s:I}", "name", r->db[i].name,
                              "records", (json_int_t)r->db[i].records,
                              "problems", (json_int_t)r->db[i].problems);
        if (copied)
            json_object_set_new(d, "copied",
                                json_integer((json_int_t)r->db[i].copied));
        json_array_append_new(a, d);
    }
    return a;
}


/* Print why a spool could not be looked at; the exit code. */
static int refused(const char *prog, const char *dir, int err)
{
    return tool_spool_error(prog, dir, err);
}

int tool_spool_check(struct tool_ctx *ctx, int argc, char **argv)
{
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            flags |= QUEUE_CHECK_QUICK;
        } else {
            fprintf(stderr, "usage: sluice spool check [--quick] [--json]\n");
            return TOOL_EX_USAGE;
        }
    }
    struct tool_audit_conf *ac = malloc(sizeof *ac);
    if (!ac)
        return TOOL_EX_OSERR;
    int rc = tool_audit_conf(ctx, ac);
    if (rc) {
        free(ac);
        return rc;
    }
    struct out o = { .ctx = ctx, .problems = json_array(),
                     .notes = json_array() };
    struct queue_check_report r;
    int err = queue_check_keyed(ctx->spool, flags, ac->keyed ? ac->key : NULL,
                                on_report, &o, &r);
    OPENSSL_cleanse(ac, sizeof *ac);
    free(ac);
    if (err) {
        json_decref(o.problems);
        json_decref(o.notes);
        return refused("sluice spool check", ctx->spool, err);
    }
    if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:b,s:I,s:I,s:o,s:o,s:o}", "spool", ctx->spool,
                       "sound", r.problems == 0, "records",
                       (json_int_t)r.records, "problem_count",
                       (json_int_t)r.problems, "problems", o.problems,
                       "notes", o.notes, "databases",
                       databases_json(&r, false)));
    } else {
        json_decref(o.problems);
        json_decref(o.notes);
        if (r.problems)
            printf("%s: DAMAGED: %llu problem%s in %llu records read "
                   "('sluice spool salvage DST' copies what can be read)\n",
                   ctx->spool, (unsigned long long)r.problems,
                   r.problems == 1 ? "" : "s",
                   (unsigned long long)r.records);
        else
            printf("%s: sound: %llu records in %zu databases\n", ctx->spool,
                   (unsigned long long)r.records, r.ndb);
    }
    return r.problems ? TOOL_EX_DATAERR : 0;
}

int tool_spool_salvage(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *src = ctx->spool, *dst;
    if (argc == 2) {
        dst = argv[1];
    } else if (argc == 3) {
        src = argv[1];
        dst = argv[2];
    } else {
        fprintf(stderr, "usage: sluice spool salvage [SRC] DST\n");
        return TOOL_EX_USAGE;
    }
    struct out o = { .ctx = ctx, .problems = json_array(),
                     .notes = json_array() };
    struct queue_check_report r;
    int err = queue_salvage(src, dst, on_report, &o, &r);
    if (err) {
        json_decref(o.problems);
        json_decref(o.notes);
        if (err == -EEXIST) {
            fprintf(stderr, "sluice spool salvage: %s exists; salvage "
                    "writes a new spool and never into an existing one\n",
                    dst);
            return TOOL_EX_CANTCREAT;
        }
        int rc = refused("sluice spool salvage", src, err);
        return rc == TOOL_EX_IOERR || rc == TOOL_EX_NOPERM
               ? TOOL_EX_CANTCREAT : rc;
    }
    if (ctx->json) {
        tool_emit_json(json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:o,s:o,s:o}", "from", src,
                       "to", dst, "complete", r.problems == 0,
                       "problem_count", (json_int_t)r.problems,
                       "ended_no_message", (json_int_t)r.ended_no_message,
                       "lost_queued", (json_int_t)r.lost_queued,
                       "problems", o.problems, "notes", o.notes,
                       "databases", databases_json(&r, true)));
    } else {
        json_decref(o.problems);
        json_decref(o.notes);
        printf("%-12s %12s %12s %9s\n", "database", "read", "copied",
               "problems");
        for (size_t i = 0; i < r.ndb; i++)
            printf("%-12s %12llu %12llu %9llu\n", r.db[i].name,
                   (unsigned long long)r.db[i].records,
                   (unsigned long long)r.db[i].copied,
                   (unsigned long long)r.db[i].problems);
        if (r.problems)
            printf("%s salvaged into %s with losses: %llu problems, %llu "
                   "queued recipients lost, %llu ended as expired (message "
                   "lost)\n", src, dst, (unsigned long long)r.problems,
                   (unsigned long long)r.lost_queued,
                   (unsigned long long)r.ended_no_message);
        else
            printf("%s salvaged into %s: every record copied\n", src, dst);
    }
    return r.problems ? TOOL_EX_DATAERR : 0;
}

int tool_spool_init(struct tool_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: sluice spool init\n");
        return TOOL_EX_USAGE;
    }
    struct queue *q;
    struct queue_options o = { .flags = QUEUE_OPEN_CREATE |
                                        QUEUE_OPEN_RECREATE };
    int err = queue_open(&q, ctx->spool, &o);
    if (err) {
        int rc = refused("sluice spool init", ctx->spool, err);
        return rc == TOOL_EX_IOERR || rc == TOOL_EX_NOPERM ||
               rc == TOOL_EX_NOINPUT ? TOOL_EX_CANTCREAT : rc;
    }
    struct queue_info i;
    err = queue_info(q, &i);
    queue_close(q);
    if (err)
        return refused("sluice spool init", ctx->spool, err);
    if (ctx->json)
        tool_emit_json(json_pack("{s:s,s:i,s:I}", "spool", ctx->spool, "schema",
                       (int)i.schema, "deliveries",
                       (json_int_t)i.deliveries));
    else
        printf("spool %s ready (schema %u, %llu deliveries)\n", ctx->spool,
               i.schema, (unsigned long long)i.deliveries);
    return 0;
}
