/*
 * sink_seen.c - --track-recipients: which recipient addresses the sink has
 * already been asked about, so that a benchmark can tell a sender's first
 * pass over its recipients from its retries.
 *
 * Every RCPT with a well-formed address, whatever the answer, is looked up
 * in a capped set of addresses (the per-domain map of sink_stats.c, keyed
 * by the lower-cased address).  A new address counts in rcpt_first and
 * moves last_first_rcpt_ms to now: once every recipient has been tried,
 * that is when the first pass ended, and what follows is the retry tail.
 * A known address counts in rcpt_again.  Past the cap, addresses are not
 * remembered and count in rcpt_untracked, so the two figures above stay
 * exact for the addresses they cover; addresses longer than the map's
 * 255-character names are cut there.
 *
 * Failures: out of memory while adding an address counts it as untracked.
 */
#include <string.h>

#include "sink.h"

/* Set up the set when --track-recipients asks for one. */
int sink_seen_init(struct sink_stats *st, const struct sink_config *cfg)
{
    st->last_first_rcpt_ms = -1;
    if (cfg->track_rcpt == 0)
        return 0;
    return sink_domain_map_init(&st->seen, (size_t)cfg->track_rcpt);
}

/* One RCPT of addr: a first attempt, a retry, or past the cap. */
void sink_seen_rcpt(struct sink_stats *st, const char *addr)
{
    struct sink_domain *d;

    if (st->seen.slots == NULL)
        return;
    d = sink_domain_get(&st->seen, addr, strlen(addr));
    if (d == NULL || d == st->seen.other) {
        st->rcpt_untracked++;
        return;
    }
    if (d->recipients++ > 0) {
        st->rcpt_again++;
        return;
    }
    st->rcpt_first++;
    st->last_first_rcpt_ms = sink_wall_ms();
}
