/*
 * classify.c - bounce categories for the engine.
 *
 * DESCRIPTION
 *   A thin door onto bounce_rules.c: holds the rule set sluiced loaded
 *   from its `bounce_rules =` file and classifies with it, then the
 *   shipped defaults.  Never fails: an unmatched reply gets the fallback
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
