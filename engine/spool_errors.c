/*
 * spool_errors.c - the engine's error budget for a damaged spool.
 *
 * DESCRIPTION
 *   LMDB keeps no checksums: a damaged page shows as errors each time it is
 *   read (QUEUE_ECORRUPT, or -EINVAL and -EIO out of LMDB), and retrying
 *   does not help.  Claims run every 10 ms, so without a budget the engine
 *   would log the same failure forever and never exit.  Each kind of spool
 *   operation (claims, counter reads, outcome commits) counts its failures
 *   in a row; ENGINE_SPOOL_BUDGET of them stop the engine with a clear
 *   message and exit 65 (74 for I/O errors), and one success ends the run.
 *   A full disk is not damage: its errors are not counted here.
 *
 * DIAGNOSTICS
 *   The first failure of a run is logged, then the stop; nothing between.
 */
#include <errno.h>
#include <stdio.h>

#include "engine.h"

void engine_spool_result(struct engine *e, enum engine_spool_op op,
                         int err)
{
    static const char *const what[] = { "claiming", "reading the counters",
                                         "recording outcomes" };
    unsigned *n = &e->spool_failures[op];
    if (!err) {
        *n = 0;
        return;
    }
    if (err != QUEUE_ECORRUPT && err != -EINVAL && err != -EIO)
        return; /* not damage: a full disk has its own handling */
    if (++*n == 1)
        fprintf(stderr, "sluiced: %s failed: %s\n", what[op],
                queue_strerror(err));
    if (*n != ENGINE_SPOOL_BUDGET)
        return;
    fprintf(stderr, "sluiced: spool %s: %s failed %u times in a row "
            "(%s); stopping.  Run 'sluice --spool %s spool check'; "
            "'sluice spool salvage' copies what can be read\n",
            err == -EIO ? "I/O error" : "damaged", what[op], *n,
            queue_strerror(err), e->cfg.spool);
    e->exit_code = err == -EIO ? 74 : 65;
    engine_drain(e);
}
