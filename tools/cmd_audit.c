/*
 * cmd_audit.c - `sluice audit`: read and check the audit trail, make its
 * key.
 *
 * SYNOPSIS
 *   audit list [--account A] [--user U] [--since T] [--json]
 *   audit verify [--checkpoint FILE] [--json]
 *   audit keygen FILE
 *
 * DESCRIPTION
 *   Every change (and every refused action) appends a record: time, user,
 *   how they proved who they are, role, account, action, object, result.
 *   `list` shows the records of one account (--account, default the
 *   caller's; the master's users without --account see every record),
 *   optionally of one user and since T (unix seconds, YYYY-MM-DD[THH:MM
 *   [:SS]] UTC, or an age like 2h, 7d).
 *
 *   `verify` walks the chain and compares it with the stored head: the
 *   MAC of each keyed record with audit_key of sluiced.conf (found as
 *   tool_config.c says), the hash of each unkeyed one, no unkeyed record
 *   after a keyed one; then every checkpoint of --checkpoint FILE (default
 *   audit_checkpoint) must name a record of the chain with the same link.
 *   FILE may also be an event log: its "audit" lines are checkpoints and
 *   its other lines are skipped.  Lines written after the walk began are
 *   not read (they may name records it does not see).
 *
 *   `keygen` writes a new key (32 random bytes as 64 hex digits, mode
 *   0600) to FILE and never overwrites one; it needs no spool.
 *
 *   Who may: viewers of the account (list); viewers of the master
 *   (verify); anyone who may create FILE (keygen).
 *
 * DIAGNOSTICS
 *   0 intact (verify warns on stderr when the trail is unkeyed: anyone who
 *   can write the spool could rewrite it), 64 bad options, 65 a broken
 *   chain or a checkpoint the chain does not match (naming the first bad
 *   record), 66 unknown account or --checkpoint FILE missing, 73 keygen
 *   cannot create FILE (or it exists), 77 refused, 78 sluiced.conf or its
 *   key does not load, or keyed records whose MACs cannot be checked
 *   without audit_key.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tool_admin.h"

#define P "sluice audit"
#define CP_LINE_MAX (16 * 1024)    /* longer lines are no checkpoint */

static const char usage_text[] =
    "usage: sluice audit list [--account A] [--user U] [--since T] [--json]\n"
    "       sluice audit verify [--checkpoint FILE] [--json]\n"
    "       sluice audit keygen FILE\n"
    "\n"
    "T: unix seconds, YYYY-MM-DD[THH:MM[:SS]] (UTC) or an age: 30m, 2h, 7d.\n"
    "verify checks keyed records with audit_key of sluiced.conf (--config\n"
    "FILE before the command, $SLUICE_CONFIG, /etc/sluice/sluiced.conf) and\n"
    "compares the chain with the checkpoints of FILE (default\n"
    "audit_checkpoint; an event log's audit lines count too).\n"
    "keygen writes a new audit key (mode 0600) and never overwrites one.\n";

struct list_ctx {
    struct queue *q;
    uint32_t account;       /* 0: all */
    bool all;
    const char *user;
    int64_t since_ms;
    json_t *arr;
    long shown;
};

static int list_one(void *arg, const struct queue_audit *r)
{
    struct list_ctx *l = arg;
    char name[QUEUE_MAX_ACCOUNT_NAME + 1], ts[32];
    char hex[2 * QUEUE_AUDIT_HASH + 1];
    if ((!l->all && r->account != l->account) ||
        (l->user && strcmp(r->user, l->user)) || r->time_ms < l->since_ms)
        return 0;
    l->shown++;
    tool_account_name(l->q, r->account, name, sizeof name);
    tool_time_text(r->time_ms / 1000, ts, sizeof ts);
    if (l->arr) {
        sodium_bin2hex(hex, sizeof hex, r->hash, sizeof r->hash);
        json_array_append_new(l->arr, json_pack(
            "{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
            "seq", (json_int_t)r->seq, "time", ts, "time_ms",
            (json_int_t)r->time_ms, "user", r->user, "via", r->via, "role",
            queue_role_name(r->role), "account", name, "action", r->action,
            "object", r->object, "result", r->result, "hash", hex));
        return 0;
    }
    printf("%-6llu %-20s %-20s %-8s %-16s %-22s %s -> %s\n",
           (unsigned long long)r->seq, ts, r->user, queue_role_name(r->role),
           name, r->action, r->object, r->result);
    return 0;
}

static int cmd_list(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *acct = NULL, *user = NULL, *since = NULL;
    bool bad = false;
    struct queue *q;
    struct queue_account *a = malloc(sizeof *a);
    int64_t since_s = 0;
    int rc;

    if (!a)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--user", &user, &bad) &&
            !tool_opt(argc, argv, &i, "--since", &since, &bad))
            bad = true;
    if (!bad && since && tool_parse_time(since, (int64_t)time(NULL),
                                         &since_s)) {
        fprintf(stderr, P " list: --since: '%.40s' is not a time\n", since);
        bad = true;
    }
    if (bad) {
        fprintf(stderr, "%s", usage_text);
        free(a);
        return TOOL_EX_USAGE;
    }
    if ((rc = tool_admin_begin(ctx, false, "audit list", &q))) {
        free(a);
        return rc;
    }
    uint32_t account = tool_default_account(ctx, q), master = 0;
    queue_account_master(q, &master);
    if (acct && (rc = tool_find_account(ctx, q, P " list", acct, a)))
        goto out;
    if (acct)
        account = a->id;
    if ((rc = tool_authorize(ctx, q, ACT_AUDIT_LIST, account, 0, "audit",
                             NULL)))
        goto out;
    struct list_ctx l = { q, account, !acct && account == master, user,
                          since_s * 1000, ctx->json ? json_array() : NULL, 0 };
    if (!l.arr)
        printf("%-6s %-20s %-20s %-8s %-16s %-22s %s\n", "SEQ", "TIME", "USER",
               "ROLE", "ACCOUNT", "ACTION", "OBJECT -> RESULT");
    long n = queue_audit_list(q, 1, list_one, &l);
    if (n < 0) {
        json_decref(l.arr);
        rc = tool_admin_error(P " list", (int)n);
    } else if (l.arr) {
        tool_emit_json(l.arr);
    }
out:
    queue_close(q);
    free(a);
    return rc;
}


/* --------------------------------------------------------- checkpoints */

/* A checkpoint file (or event log) read up to its size when opened. */
struct cp_reader {
    FILE *f;
    const char *path;
    long long left;          /* bytes still to read */
    unsigned long line;      /* of the checkpoint given last */
    unsigned long skipped;   /* lines that are no checkpoint */
    char *buf;               /* CP_LINE_MAX bytes */
};

/* Drop the rest of a line longer than the buffer. */
static void skip_rest(struct cp_reader *r)
{
    int c;
    while (r->left > 0 && (c = getc(r->f)) != EOF) {
        r->left--;
        if (c == '\n')
            break;
    }
}

/* One event-log line: 1 with an audit line's (seq, head), else 0. */
static int event_line(const char *s, uint64_t *seq,
                      unsigned char head[QUEUE_AUDIT_HASH], bool *bad)
{
    json_t *j = json_loads(s, 0, NULL);
    json_t *t = json_object_get(j, "type");
    json_t *n = json_object_get(j, "audit_seq");
    json_t *h = json_object_get(j, "head");
    size_t got = 0;
    int rc = 0;
    *bad = !json_is_object(j);
    if (json_is_string(t) && !strcmp(json_string_value(t), "audit")) {
        if (json_is_integer(n) && json_integer_value(n) > 0 &&
            json_is_string(h) && json_string_length(h) == 2 * QUEUE_AUDIT_HASH &&
            !sodium_hex2bin(head, QUEUE_AUDIT_HASH, json_string_value(h),
                            2 * QUEUE_AUDIT_HASH, NULL, &got, NULL) &&
            got == QUEUE_AUDIT_HASH) {
            *seq = (uint64_t)json_integer_value(n);
            rc = 1;
        } else {
            *bad = true;
        }
    }
    json_decref(j);
    return rc;
}

/* queue_audit_marks.next: the next checkpoint of the file. */
static int cp_next(void *arg, uint64_t *seq,
                   unsigned char head[QUEUE_AUDIT_HASH])
{
    struct cp_reader *r = arg;
    while (r->left > 0 && fgets(r->buf, CP_LINE_MAX, r->f)) {
        size_t n = strlen(r->buf);
        bool whole = n && r->buf[n - 1] == '\n', bad = false;
        r->left -= (long long)n;
        r->line++;
        if (!whole && r->left > 0) {        /* longer than any checkpoint */
            skip_rest(r);
            bad = r->buf[0] != '{';
        } else if (!whole) {
            break;          /* being written, or cut: not a checkpoint yet */
        } else if (r->buf[0] == '\n' || r->buf[0] == '#') {
            continue;
        } else if (r->buf[0] == '{') {
            if (event_line(r->buf, seq, head, &bad))
                return 1;
        } else if (!queue_audit_checkpoint_parse(r->buf, seq, head)) {
            return 1;
        } else {
            bad = true;
        }
        if (bad && r->skipped++ < 5)
            fprintf(stderr, P " verify: %s line %lu is not a checkpoint "
                    "(SEQ HEAD-HEX TIME, or an event log's audit line): "
                    "skipped\n", r->path, r->line);
    }
    if (ferror(r->f))
        return -EIO;
    return 0;
}

/* Open the checkpoints to compare: --checkpoint FILE (must exist), else
 * audit_checkpoint (may not exist yet).  0, or an exit code. */
static int cp_open(struct cp_reader *r, const char *given,
                   const char *configured)
{
    struct stat st;
    memset(r, 0, sizeof *r);
    r->path = given ? given : *configured ? configured : NULL;
    if (!r->path)
        return 0;
    if (!(r->f = fopen(r->path, "r"))) {
        if (!given && errno == ENOENT) {
            r->path = NULL;     /* no record checkpointed yet */
            return 0;
        }
        fprintf(stderr, P " verify: checkpoint %s: %s\n", r->path,
                strerror(errno));
        return errno == ENOENT ? TOOL_EX_NOINPUT
             : errno == EACCES ? TOOL_EX_NOPERM : TOOL_EX_IOERR;
    }
    if (fstat(fileno(r->f), &st) || !(r->buf = malloc(CP_LINE_MAX))) {
        fclose(r->f);
        r->f = NULL;
        return TOOL_EX_OSERR;
    }
    r->left = st.st_size;
    return 0;
}

static void cp_close(struct cp_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
}

/* ------------------------------------------------------------- verify */

/* Print the verdict; the exit code. */
static int verdict_out(struct tool_ctx *ctx, const struct queue_audit_verdict
                       *v, const struct cp_reader *cp, bool configured_key)
{
    char hex[2 * QUEUE_AUDIT_HASH + 1], id[2 * QUEUE_AUDIT_KEY_ID + 1] = "";
    char warn[300] = "";
    bool broken = v->fault != QUEUE_AUDIT_INTACT;
    sodium_bin2hex(hex, sizeof hex, v->head, sizeof v->head);
    if (v->key)
        sodium_bin2hex(id, sizeof id, v->key_id, sizeof v->key_id);
    if (!broken && !configured_key && !v->keyed_from)
        snprintf(warn, sizeof warn, "unkeyed: anyone who can write the spool "
                 "could rewrite this chain; set audit_key");
    else if (!broken && v->unchecked)
        snprintf(warn, sizeof warn, "records %llu..%llu are keyed and their "
                 "MACs cannot be checked without audit_key (--config FILE "
                 "or $SLUICE_CONFIG naming it); their links are intact",
                 (unsigned long long)v->keyed_from,
                 (unsigned long long)v->records);
    if (ctx->json)
        tool_emit_json(json_pack(
            "{s:b,s:s,s:I,s:I,s:I,s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:s?,s:s}",
            "intact", !broken && !v->unchecked, "fault",
            queue_audit_fault_name(v->fault), "bad_seq",
            (json_int_t)v->bad_seq, "records", (json_int_t)v->records,
            "head_seq", (json_int_t)v->head_seq, "head", hex, "why", v->why,
            "keyed_from", (json_int_t)v->keyed_from, "unchecked",
            (json_int_t)v->unchecked, "key_id", id, "checkpoints",
            (json_int_t)v->checkpoints, "checkpoint_last",
            (json_int_t)v->checkpoint_last, "checkpoint", cp->path,
            "warning", warn));
    if (broken) {
        fprintf(stderr, P " verify: the audit trail is broken at record "
                "%llu: %s (%s)", (unsigned long long)v->bad_seq,
                queue_audit_fault_name(v->fault), v->why);
        if (v->fault == QUEUE_AUDIT_REWRITTEN ||
            (v->fault == QUEUE_AUDIT_TRUNCATED && strstr(v->why,
                                                         "checkpoint")))
            fprintf(stderr, " [%s line %lu]", cp->path, cp->line);
        fprintf(stderr, "\n");
        return TOOL_EX_DATAERR;
    }
    if (*warn)
        fprintf(stderr, P " verify: %s\n", warn);
    if (!ctx->json) {
        printf("audit trail intact: %llu records; head %llu %s\n",
               (unsigned long long)v->records,
               (unsigned long long)v->head_seq, hex);
        if (v->key && v->keyed_from)
            printf("keyed from record %llu (MACs checked with key %s)%s\n",
                   (unsigned long long)v->keyed_from, id,
                   v->keyed_from > 1 ? "; the records before it are "
                   "unkeyed, written before audit_key was set" : "");
        else if (v->key && v->records)
            printf("no record is keyed yet: the next change starts the "
                   "keyed chain (key %s)\n", id);
        if (cp->path)
            printf("%llu checkpoints match (%s, up to record %llu)\n",
                   (unsigned long long)v->checkpoints, cp->path,
                   (unsigned long long)v->checkpoint_last);
        else
            printf("no checkpoint file: a holder of the key could rewrite "
                   "the trail unseen (set audit_checkpoint, keep copies off "
                   "this host)\n");
    }
    return v->unchecked ? TOOL_EX_CONFIG : 0;
}

static int cmd_verify(struct tool_ctx *ctx, int argc, char **argv)
{
    struct queue *q;
    struct queue_audit_verdict v;
    const char *given = NULL, *conf = NULL;
    bool bad = false;
    int rc;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--checkpoint", &given, &bad) &&
            !tool_opt(argc, argv, &i, "--config", &conf, &bad))
            bad = true;
    if (bad) {
        fprintf(stderr, "usage: sluice audit verify [--checkpoint FILE] "
                "[--json]\n");
        return TOOL_EX_USAGE;
    }
    if (conf)
        ctx->config = conf;
    struct tool_audit_conf *ac = malloc(sizeof *ac);
    if (!ac)
        return TOOL_EX_OSERR;
    if ((rc = tool_audit_conf(ctx, ac))) {
        free(ac);
        return rc;
    }
    bool keyed = ac->keyed;
    struct cp_reader cp;
    rc = tool_admin_begin(ctx, false, "audit verify", &q);
    if (!rc && (rc = tool_authorize(ctx, q, ACT_AUDIT_VERIFY, 0, 0, "audit",
                                    NULL)))
        queue_close(q);
    /* the checkpoints written so far, before the walk's snapshot */
    if (!rc && (rc = cp_open(&cp, given, ac->checkpoint)))
        queue_close(q);
    sodium_memzero(ac->key, sizeof ac->key);
    if (rc) {
        free(ac);
        return rc;
    }
    struct queue_audit_marks marks = { cp_next, &cp };
    int err = queue_audit_verify_marks(q, cp.f ? &marks : NULL, &v);
    queue_close(q);
    if (err)
        rc = tool_admin_error(P " verify", err);
    else
        rc = verdict_out(ctx, &v, &cp, keyed);
    cp_close(&cp);
    free(ac);               /* cp.path may point into it */
    return rc;
}

/* ------------------------------------------------------------- keygen */

/* `audit keygen FILE`: needs no spool and no identity. */
static int cmd_keygen(struct tool_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    unsigned char key[QUEUE_AUDIT_KEY], id[QUEUE_AUDIT_KEY_ID];
    char hex[2 * QUEUE_AUDIT_KEY_ID + 1];
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sluice audit keygen FILE\n");
        return TOOL_EX_USAGE;
    }
    int err = queue_audit_key_create(argv[1]);
    if (err) {
        fprintf(stderr, P " keygen: %s\n", queue_last_detail());
        return err == -ENOMEM ? TOOL_EX_OSERR : TOOL_EX_CANTCREAT;
    }
    if (queue_audit_key_load(argv[1], key)) {
        fprintf(stderr, P " keygen: %s\n", queue_last_detail());
        return TOOL_EX_IOERR;
    }
    queue_audit_key_id(key, id);
    sodium_memzero(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    printf("wrote a new audit key to %s (mode 0600, key id %s)\n"
           "set audit_key = %s in [sluiced] of sluiced.conf; keep a copy "
           "where the spool's backups are not\n", argv[1], hex, argv[1]);
    return 0;
}

int tool_audit_main(struct tool_ctx *ctx, int argc, char **argv)
{
    static const struct tool_cmd cmds[] = {
        { .name = "list", .run = cmd_list },
        { .name = "verify", .run = cmd_verify },
        { .name = "keygen", .run = cmd_keygen },
    };
    static const struct tool_group group = {
        P, usage_text, cmds, TOOL_NCMDS(cmds),
    };
    return tool_group_run(ctx, argc, argv, &group);
}
