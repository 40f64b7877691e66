/*
 * classify.h - a bounce category for an SMTP reply or local failure.
 *
 * DESCRIPTION
 *   sluiced's and the feedback ingest's view of bounce_rules.h: the
 *   rules file named by `bounce_rules =` (if any) first, then the shipped
 *   defaults, then the basic code.  The rule set is set once at start-up, before any
 *   classification.
 */
#ifndef SLUICE_CLASSIFY_H
#define SLUICE_CLASSIFY_H

struct bounce_rules;

/* Use r (owned by the caller, kept alive while it classifies; NULL for
 * the defaults only) for every later classify_reply(). */
void classify_use_rules(const struct bounce_rules *r);

/* A queue_category for (code, enhanced, text); local failures pass code 0. */
int classify_reply(int code, const char *enhanced, const char *text);

#endif
