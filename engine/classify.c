/*
 * classify.c - bounce categories for sluiced and `sluice feedback`.
 *
 * DESCRIPTION
 *   A thin door onto bounce_rules.c: holds the rule set loaded from the
 *   `bounce_rules =` file of sluiced.conf (config_load) and classifies
 *   with it, then the shipped defaults.  It lives in the sluice_bounce
 *   library with the rules, so sluiced (SMTP replies) and the feedback
 *   ingest of the tools (DSNs) classify alike without the tools linking
 *   the engine.  Never fails: an unmatched reply gets the fallback
 *   category of its basic code.
 */
#include <stddef.h>

#include "bounce_rules.h"
#include "classify.h"

static const struct bounce_rules *site_rules;

void classify_use_rules(const struct bounce_rules *r)
{
    site_rules = r;
}

int classify_reply(int code, const char *enhanced, const char *text)
{
    return bounce_classify(site_rules, code, enhanced, text, NULL);
}
