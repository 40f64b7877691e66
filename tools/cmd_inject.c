/*
 * cmd_inject.c - `sluice inject`: put one raw message into the spool.
 *
 * SYNOPSIS
 *   sluice inject --from ADDR --to ADDR [--to ADDR ...] [--account A]
 *                 [FILE | -]
 *
 * DESCRIPTION
 *   Reads an RFC 5322 message from FILE or standard input (at most
 *   QUEUE_MAX_MESSAGE bytes), stores it once and queues one delivery per
 *   recipient; prints the first delivery id and the message id.  The
 *   engine picks it up at once.
 *
 *   The message must meet the spool's rules (queue_msg.h): not empty, no
 *   NUL byte, a parseable header with one From: address.  A missing Date:
 *   or Message-ID: is added; the Message-ID's right-hand side is this
 *   machine's host name when it is a domain (has a dot), else the From:
 *   domain.  A refused message queues nothing.
 *
 *   --account (a name or an id) needs role sender on that account, which
 *   must be enabled, and the message's From: header must be in a domain
 *   verified for that account (the domain itself or a parent of it: DMARC
 *   relaxed alignment).  Without --account the mail belongs to no account
 *   (id 0, as before accounts existed): only admins of the master (and the
 *   bootstrap) may do that, and no From: check applies.  The same holds for
 *   a numeric --account on a spool that has no accounts yet (accounts known
 *   only to sluiced.conf).  Each injection is written to the audit trail
 *   after it is queued.
 *
 * DIAGNOSTICS
 *   64 bad arguments or an invalid address, 66 unreadable input or unknown
 *   account, 65 a foreign or damaged spool or a message the rules refuse
 *   (with the reason), 75 spool full (its filesystem out of space or the
 *   map at map_max: nothing was queued, try again later), 77 refused (role,
 *   disabled account, From: domain not verified for the account).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "queue_ingress.h"
#include "queue_msg.h"
#include "tool_admin.h"

/* Read all of f, up to max bytes; NULL with errno on failure. */
static char *slurp(FILE *f, size_t max, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f) || n > max) {
        free(buf);
        errno = ferror(f) ? EIO : EFBIG;
        return NULL;
    }
    *len = n;
    return buf;
}

/* The right-hand side for an added Message-ID: the host name when it is
 * a domain, else "" (queue_ingress_message then takes the From: domain,
 * else "localhost.localdomain"; a From: domain in UTF-8 is no host
 * name). */
static void msgid_host(char *out, size_t cap)
{
    char host[256] = "";
    out[0] = 0;
    if (!gethostname(host, sizeof host - 1) && strchr(host, '.') &&
        strlen(host) < cap && queue_message_host_ok(host))
        memcpy(out, host, strlen(host) + 1);
}

/* Read the message of file ("-": standard input), check it against the
 * spool's rules and add what is missing; 0 or an exit code after saying
 * why. */
static int read_message(const char *file, char **msg, size_t *len)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "sluice inject: %s: %s\n", file, strerror(errno));
        return TOOL_EX_NOINPUT;
    }
    char *raw = slurp(f, QUEUE_MAX_MESSAGE, len);
    int e = errno;
    if (f != stdin)
        fclose(f);
    if (!raw) {
        fprintf(stderr, "sluice inject: %s: %s\n", file,
                e == EFBIG ? "message larger than 64 MiB" : strerror(e));
        return e == EFBIG ? TOOL_EX_DATAERR : TOOL_EX_NOINPUT;
    }
    char host[256], why[300] = "", *clean = NULL;
    size_t clen = 0;
    msgid_host(host, sizeof host);
    /* the spool's rules only: the account's are checked in may_inject() */
    int err = queue_ingress_message(NULL, NULL, raw, *len, host, &clean,
                                    &clen, why, sizeof why);
    if (err) {
        fprintf(stderr, "sluice inject: %s: refused: %s\n", file,
                why[0] ? why : queue_strerror(err));
        free(raw);
        return err == -ENOMEM ? TOOL_EX_OSERR : TOOL_EX_DATAERR;
    }
    if (clean) {
        free(raw);
        raw = clean;
        *len = clen;
    }
    *msg = raw;
    return 0;
}

/* Check the identity may inject msg for account (name or id in spec, NULL
 * for none); sets *account.  0 or an exit code. */
static int may_inject(struct tool_ctx *ctx, struct queue *q, const char *spec,
                      const char *msg, size_t len, uint32_t *account)
{
    struct queue_account *a;
    unsigned long long n;
    char obj[QUEUE_MAX_DOMAIN + 64], dom[QUEUE_MAX_DOMAIN + 2];
    int rc, err;
    uint32_t master = 0;
    *account = 0;
    if ((err = queue_account_master(q, &master)))
        return tool_exit_for(err);
    if (!spec)
        return tool_authorize(ctx, q, ACT_INJECT_RAW, 0, 0, "no account",
                              NULL);
    if (!master && tool_parse_u64(spec, &n) && n <= UINT32_MAX) {
        /* a spool without accounts: a bare number, as before accounts
         * (sluiced.conf [account N] sections), for the spool's admins */
        *account = (uint32_t)n;
        snprintf(obj, sizeof obj, "account %llu (not in the spool)", n);
        return tool_authorize(ctx, q, ACT_INJECT_RAW, 0, 0, obj, NULL);
    }
    if (!(a = malloc(sizeof *a)))
        return TOOL_EX_OSERR;
    err = tool_parse_u64(spec, &n) && n <= UINT32_MAX
        ? queue_account_get(q, (uint32_t)n, a)
        : queue_account_find(q, spec, a);
    if (err) {
        fprintf(stderr, "sluice inject: no such account '%.80s'\n", spec);
        free(a);
        return err == QUEUE_ENOTFOUND ? TOOL_EX_NOINPUT : tool_exit_for(err);
    }
    *account = a->id;
    snprintf(obj, sizeof obj, "account %s", a->name);
    if ((rc = tool_authorize(ctx, q, ACT_INJECT, a->id, 0, obj, NULL)))
        goto out;
    if (a->disabled) {
        char why[128];
        snprintf(why, sizeof why, "account %s is disabled", a->name);
        rc = tool_refuse(ctx, q, ACT_INJECT, a->id, obj, why);
        goto out;
    }
    if (!queue_ingress_from_domain(msg, len, dom, sizeof dom)) {
        fprintf(stderr, "sluice inject: the message has no From: header "
                "with an address\n");
        rc = TOOL_EX_DATAERR;
        goto out;
    }
    if (!queue_ingress_domain_verified(q, dom, a->id)) {
        char why[QUEUE_MAX_DOMAIN + 160];
        snprintf(why, sizeof why, "From: domain %s is not a verified sending "
                 "domain of account %s", dom, a->name);
        snprintf(obj, sizeof obj, "from %s", dom);
        rc = tool_refuse(ctx, q, ACT_INJECT, a->id, obj, why);
    }
out:
    free(a);
    return rc;
}

int tool_inject_main(struct tool_ctx *ctx, int argc, char **argv)
{
    const char *from = NULL, *file = "-", *acct = NULL;
    const char **to = calloc((size_t)argc, sizeof *to);
    size_t nto = 0;
    uint32_t account = 0;
    int rc = 0;

    if (!to)
        return TOOL_EX_OSERR;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--from") && i + 1 < argc) from = argv[++i];
        else if (!strcmp(argv[i], "--to") && i + 1 < argc) to[nto++] = argv[++i];
        else if (!strcmp(argv[i], "--account") && i + 1 < argc)
            acct = argv[++i];
        else if (!strcmp(argv[i], "--help")) {
            puts("usage: sluice inject --from ADDR --to ADDR [--to ADDR ...] "
                 "[--account A] [FILE|-]");
            free(to);
            return 0;
        } else if (argv[i][0] != '-' || !strcmp(argv[i], "-")) file = argv[i];
        else {
            fprintf(stderr, "sluice inject: unknown option %s\n", argv[i]);
            free(to);
            return TOOL_EX_USAGE;
        }
    }
    if (!from || !nto) {
        fprintf(stderr, "usage: sluice inject --from ADDR --to ADDR [--to "
                        "ADDR ...] [FILE|-]\n");
        free(to);
        return TOOL_EX_USAGE;
    }
    if (*from && queue_check_rcpt(from)) {
        fprintf(stderr, "sluice inject: invalid sender address: %s\n", from);
        free(to);
        return TOOL_EX_USAGE;
    }
    for (size_t i = 0; i < nto; i++)
        if (queue_check_rcpt(to[i])) {
            fprintf(stderr, "sluice inject: invalid recipient address: %s\n",
                    to[i]);
            free(to);
            return TOOL_EX_USAGE;
        }
    size_t len;
    char *msg = NULL;
    if ((rc = read_message(file, &msg, &len))) {
        free(to);
        return rc;
    }
    struct queue *q;
    if ((rc = tool_admin_begin(ctx, true, "inject", &q)) == 0 &&
        (rc = may_inject(ctx, q, acct, msg, len, &account)))
        queue_close(q);
    else if (rc == 0) {
        uint64_t first, msg_id;
        int err = queue_enqueue_message(q, account, from, to, nto,
                                        msg, len, &first, &msg_id);
        if (!err) {
            char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
            snprintf(obj, sizeof obj, "message %llu from %.200s to %zu "
                     "recipient%s", (unsigned long long)msg_id, from, nto,
                     nto == 1 ? "" : "s");
            struct queue_actor by = tool_actor(ctx,
                                               ctx->identity->acting_role,
                                               account);
            int aerr = queue_audit_append(q, &by, account, "inject", obj,
                                          "ok");
            if (aerr)
                fprintf(stderr, "sluice inject: queued, but the audit record "
                        "failed: %s\n", queue_strerror(aerr));
        }
        if (err == QUEUE_EFULL) {
            fprintf(stderr, "sluice inject: spool is full: %s\n  nothing "
                    "was queued; free space on its filesystem (or raise "
                    "map_max) and try again\n", ctx->spool);
            rc = tool_exit_for(err);
        } else if (err) {
            fprintf(stderr, "sluice inject: %s\n", queue_strerror(err));
            rc = tool_exit_for(err);
        } else if (ctx->json) {
            printf("{\"message\":%llu,\"first_delivery\":%llu,"
                   "\"recipients\":%zu}\n", (unsigned long long)msg_id,
                   (unsigned long long)first, nto);
        } else {
            printf("queued message %llu for %zu recipient%s (deliveries "
                   "%llu..%llu)\n", (unsigned long long)msg_id, nto,
                   nto == 1 ? "" : "s", (unsigned long long)first,
                   (unsigned long long)(first + nto - 1));
        }
        queue_close(q);
    }
    free(msg);
    free(to);
    return rc;
}
