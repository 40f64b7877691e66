/*
 * spool_errors.c - the engine's error texts (engine_strerror: one for
 * every range of codes the engine meets), and its error budget for a
 * damaged spool.
 *
 * DESCRIPTION
 *   Codes are 0 or negative: -errno (libuv's UV_E* are the same on this
 *   platform) and reserved ranges, each with its own names: DNS_E*
 *   (-30101..), DKIM_E_* (-30900..), SIGNER_E_* (-30950..), ENGINE_E_*
 *   (-30960..), QUEUE_E* (-31000..), RENDER_E_* (-31300..).
 *
 *   LMDB keeps no checksums: a damaged page shows as errors each time it is
 *   read (QUEUE_ECORRUPT, or -EINVAL and -EIO out of LMDB), and retrying
 *   does not help.  Claims run every 10 ms, so without a budget the engine
 *   would log the same failure forever and never exit.  Each kind of spool
 *   operation (claims, counter reads, outcome commits) counts its failures
 *   in a row; ENGINE_SPOOL_BUDGET of them stop the engine with a clear
 *   message and exit 65 (74 for I/O errors), and one success ends the run.
 *   The stop is the caller's (scheduler.c, or outcome_tick() for commits):
 *   this file only counts, words and chooses the code.
 *   A full disk is not damage: its errors are not counted here.
 *
 * DIAGNOSTICS
 *   The first failure of a run is logged, then the stop; nothing between.
 */
#include <errno.h>
#include <stdio.h>

#include "dkim_sign.h"
#include "engine.h"
#include "render.h"
#include "signer.h"

/* The engine's own codes, and the signer's (which has no strerror). */
static const char *own_text(int err)
{
    switch (err) {
    case ENGINE_E_CONFIG:
        return "the configuration (or a key it names) cannot be used";
    case ENGINE_E_SUPPRESSED:
        return "the address is suppressed";
    case ENGINE_E_GONE:
        return "the contact was deleted";
    case ENGINE_E_LOGDATA:
        return "the event log is damaged or was written for another spool";
    case SIGNER_E_NOKEY:
        return "no DKIM key for the sending domain";
    case SIGNER_E_NOFROM:
        return "no single usable From: address to sign for";
    case SIGNER_E_BADMSG:
        return "the message breaks the spool's message rules";
    default:
        return NULL;
    }
}

const char *engine_strerror(int err)
{
    const char *own = own_text(err);
    if (own)
        return own;
    if (err <= -31300 && err > -31400)
        return render_strerror(err);
    if (err <= -31000 && err > -31100)
        return queue_strerror(err);
    if (err <= -30900 && err > -30950)
        return dkim_strerror(err);
    if (err <= -30100 && err > -30200)
        return dns_strerror(err);
    return queue_strerror(err); /* 0, -errno, or unknown */
}

int engine_spool_result(struct engine *e, enum engine_spool_op op, int err)
{
    static const char *const what[] = { "claiming", "reading the counters",
                                         "recording outcomes" };
    unsigned *n = &e->out.spool_failures[op];
    if (!err) {
        *n = 0;
        return 0;
    }
    if (err != QUEUE_ECORRUPT && err != -EINVAL && err != -EIO)
        return 0; /* not damage: a full disk has its own handling */
    if (++*n == 1)
        fprintf(stderr, "sluiced: %s failed: %s\n", what[op],
                engine_strerror(err));
    if (*n != ENGINE_SPOOL_BUDGET)
        return 0;
    fprintf(stderr, "sluiced: spool %s: %s failed %u times in a row "
            "(%s); stopping.  Run 'sluice --spool %s spool check'; "
            "'sluice spool salvage' copies what can be read\n",
            err == -EIO ? "I/O error" : "damaged", what[op], *n,
            engine_strerror(err), e->cfg.spool);
    return err == -EIO ? 74 : 65;
}
