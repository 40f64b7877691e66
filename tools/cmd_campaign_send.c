/*
 * cmd_campaign_send.c - `sluice campaign send ID`: queue one recipient per
 * non-suppressed contact of the campaign's list.
 *
 * DESCRIPTION
 *   Reads the list in contact-id order, SEND_CHUNK contacts per read
 *   transaction, skips addresses on the account's suppression list (the
 *   master's when shared) and submits each chunk as one batch that queues
 *   its recipients and moves the campaign's cursor in one transaction
 *   (queue_campaign_submit_batch).  Batches are submitted without waiting,
 *   so the spool's writer commits one while the next is read; the command
 *   waits for all of them at the end and then marks the send complete.
 *   A campaign whose schedule is ahead gets its recipients queued now, due
 *   at the schedule.  The engine checks suppression again when each
 *   message leaves the queue.
 *
 *   A send that stops (killed, spool full) is continued by running send
 *   again: it goes on after the last contact whose batch committed.  A
 *   campaign cancelled during the send stops it at the next batch.
 *
 *   Who may: sender on the campaign's account, which must be enabled, with
 *   the From domain still verified.
 *
 * DIAGNOSTICS
 *   65 the campaign was sent already (or is done or cancelled), or its
 *   template no longer compiles; 66 unknown campaign or its list is gone;
 *   75 spool full; 77 refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool_campaign.h"

#define SEND_CHUNK 10000
#define ARENA_MAX ((size_t)SEND_CHUNK * (QUEUE_MAX_RCPT + 1))

/* One chunk of contacts read from the list. */
struct chunk {
    size_t n;
    uint64_t last;                       /* id of the last contact read */
    uint64_t ids[SEND_CHUNK];
    uint32_t off[SEND_CHUNK];            /* address in arena */
    char *arena;
    size_t alen;
    struct queue_campaign_rcpt rcpts[SEND_CHUNK];
};

/* The outcome of the batches, set from the writer thread. */
struct send_state {
    int err;                             /* first failed batch, or 0 */
};

/* queue_contacts() callback: copy the contact's id and address. */
static int collect(void *arg, const struct queue_contact *c)
{
    struct chunk *ch = arg;
    size_t len = strnlen(c->email, QUEUE_MAX_RCPT + 1);
    ch->last = c->id;
    if (len > QUEUE_MAX_RCPT)
        len = 0;   /* kept as an empty, invalid address: skipped */
    ch->ids[ch->n] = c->id;
    ch->off[ch->n] = (uint32_t)ch->alen;
    memcpy(ch->arena + ch->alen, c->email, len);
    ch->arena[ch->alen + len] = 0;
    ch->alen += len + 1;
    ch->n++;
    return ch->n >= SEND_CHUNK;
}

/* Completion of one batch (writer thread): keep the first failure. */
static void batch_done(void *arg, int status, uint64_t first, uint64_t msg)
{
    struct send_state *s = arg;
    int none = 0;
    (void)first;
    (void)msg;
    if (status)
        __atomic_compare_exchange_n(&s->err, &none, status, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Monotonic seconds. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Totals of one run. */
struct send_run {
    uint64_t cursor, queued, suppressed, invalid, contacts;
};

/* Read, filter and submit every chunk after run->cursor; 0 or an exit
 * code.  Waits for the submitted batches. */
static int enqueue_all(const char *prog, struct queue *q,
                       const struct queue_campaign *c, uint32_t owner,
                       struct send_run *run, struct send_state *st)
{
    struct chunk *ch = calloc(1, sizeof *ch);
    int err = 0;
    if (!ch || !(ch->arena = malloc(ARENA_MAX))) {
        free(ch);
        fprintf(stderr, "%s: out of memory\n", prog);
        return TOOL_EX_OSERR;
    }
    for (;;) {
        ch->n = ch->alen = 0;
        long got = queue_contacts(q, c->list, run->cursor, SEND_CHUNK,
                                  collect, ch);
        if (got < 0) {
            err = (int)got;
            break;
        }
        if (ch->n == 0)
            break;
        size_t n = 0;
        uint64_t supp = 0;
        for (size_t i = 0; i < ch->n; i++) {
            const char *addr = ch->arena + ch->off[i];
            bool yes = false;
            if (queue_check_rcpt(addr)) {
                run->invalid++;
                continue;
            }
            if ((err = queue_suppressed(q, owner, addr, &yes)))
                break;
            if (yes) {
                supp++;
                continue;
            }
            ch->rcpts[n].contact = ch->ids[i];
            ch->rcpts[n].rcpt = addr;
            n++;
        }
        if (err)
            break;
        err = queue_campaign_submit_batch(q, c->id, run->cursor, ch->last,
                                          ch->rcpts, n, supp, NULL,
                                          batch_done, st);
        if (err)
            break;
        run->contacts += ch->n;
        run->queued += n;
        run->suppressed += supp;
        run->cursor = ch->last;
        if (__atomic_load_n(&st->err, __ATOMIC_SEQ_CST) || ch->n < SEND_CHUNK)
            break;
    }
    free(ch->arena);
    free(ch);
    int ferr = queue_flush(q);
    if (!err)
        err = __atomic_load_n(&st->err, __ATOMIC_SEQ_CST);
    if (!err)
        err = ferr;
    if (err == QUEUE_ESTATE) {
        struct queue_campaign now;
        const char *state = "changed";
        if (queue_campaign_get(q, c->id, &now) == 0) {
            state = queue_campaign_state_name(now.state);
            queue_campaign_clear(&now);
        }
        fprintf(stderr, "%s: the send of campaign %llu stopped: it is %s "
                "now, or another send took over\n", prog,
                (unsigned long long)c->id, state);
        return TOOL_EX_DATAERR;
    }
    if (err) {
        const char *d = queue_last_detail();
        fprintf(stderr, "%s: %s%s%s (run send again to continue)\n", prog,
                err == QUEUE_ENOTFOUND ? "the campaign's list is gone"
                                       : queue_strerror(err),
                *d ? ": " : "", d);
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    return 0;
}

/* `campaign send`: checks, begin, enqueue every chunk, end. */
int camp_cmd_send(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *prog = CAMP_P " send", *spec = NULL, *acct = NULL;
    const char *conf = NULL;
    bool bad = false;
    struct camp_cmd cmd;
    struct camp_render_cfg cfg;
    struct queue_list *l = malloc(sizeof *l);
    struct send_run run = { 0 };
    struct send_state st = { 0 };
    char why[300];
    int rc, err;

    if (!l)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc && !bad; i++)
        if (!tool_opt(argc, argv, &i, "--account", &acct, &bad) &&
            !tool_opt(argc, argv, &i, "--config", &conf, &bad)) {
            if (argv[i][0] != '-' && !spec)
                spec = argv[i];
            else
                bad = true;
        }
    if (bad || !spec) {
        fprintf(stderr, "usage: sluice campaign send ID [--account A] "
                "[--json]\n");
        free(l);
        return TOOL_EX_USAGE;
    }
    if ((rc = camp_render_cfg_load(ctx, prog, conf, &cfg))) {
        free(l);
        return rc;
    }
    if ((rc = camp_begin(ctx, prog, ACT_CAMPAIGN_SEND, spec, acct, &cmd))) {
        free(l);
        return rc;
    }
    struct queue_campaign *c = &cmd.c;
    if ((rc = camp_may_send(ctx, cmd.q, ACT_CAMPAIGN_SEND, c, cmd.a)))
        goto out;
    if ((err = queue_list_get(cmd.q, c->list, l))) {
        fprintf(stderr, "%s: list %llu of campaign %llu: %s\n", prog,
                (unsigned long long)c->list, (unsigned long long)c->id,
                err == QUEUE_ENOTFOUND ? "deleted" : queue_strerror(err));
        rc = err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
        goto out;
    }
    /* the account's header or footer may have changed since create */
    struct render_tpl *tpl = NULL;
    if ((err = camp_compile(cmd.q, c, cmd.a, &cfg, &tpl, why, sizeof why))) {
        fprintf(stderr, "%s: campaign %llu does not compile: %s\n", prog,
                (unsigned long long)c->id, why);
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    render_free(tpl);
    struct queue_actor by = tool_actor(ctx, cmd.role, c->account);
    if ((err = queue_campaign_send_begin(cmd.q, c->id, &by, &run.cursor))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    uint64_t start_cursor = run.cursor;
    double t0 = mono_s();
    if ((rc = enqueue_all(prog, cmd.q, c, cmd.a->suppression_owner, &run,
                          &st)))
        goto out;
    if ((err = queue_campaign_send_end(cmd.q, c->id, run.cursor, &by))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    double secs = mono_s() - t0;
    struct queue_campaign now;
    if ((err = queue_campaign_get(cmd.q, c->id, &now))) {
        rc = tool_admin_error(prog, err);
        goto out;
    }
    queue_campaign_clear(&now);
    if (ctx->json) {
        tool_emit_json(json_pack(
            "{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:f}", "id", (json_int_t)c->id,
            "state", queue_campaign_state_name(now.state), "recipients",
            (json_int_t)now.recipients, "suppressed",
            (json_int_t)now.suppressed_at_send, "queued_now",
            (json_int_t)run.queued, "contacts_read", (json_int_t)run.contacts,
            "invalid", (json_int_t)run.invalid, "resumed", start_cursor != 0,
            "seconds", secs));
    } else {
        printf("campaign %llu (%s): %llu recipients queued, %llu suppressed"
               "%s; %s", (unsigned long long)c->id, c->name,
               (unsigned long long)now.recipients,
               (unsigned long long)now.suppressed_at_send,
               start_cursor ? " (continued an interrupted send)" : "",
               queue_campaign_state_name(now.state));
        if (now.state == QUEUE_CAMPAIGN_SCHEDULED) {
            char ts[32];
            printf(" until %s", tool_time_text(now.schedule, ts, sizeof ts));
        }
        printf(" (%.2f s)\n", secs);
        if (run.invalid)
            printf("%llu contacts with unusable addresses were skipped\n",
                   (unsigned long long)run.invalid);
    }
out:
    free(l);
    camp_end(&cmd);
    return rc;
}
