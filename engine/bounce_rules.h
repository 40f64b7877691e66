/*
 * bounce_rules.h - bounce categories from a rules file and shipped defaults.
 *
 * DESCRIPTION
 *   A rule set is an ordered list of rules, one per line:
 *
 *     CATEGORY  CODE  ENHANCED  TEXT
 *
 *   CATEGORY is a queue_category_name() ("bad-mailbox", ...).  CODE and
 *   ENHANCED are patterns where '*' matches any run of characters and 'x'
 *   (CODE only) one digit: "550", "5xx", "*"; "5.1.1", "5.7.*", "*".  An
 *   enhanced pattern other than "*" never matches a reply without one.
 *   TEXT is "*" or /REGEX/ with optional flags after the closing slash:
 *   POSIX extended, case-insensitive unless flag 'c'.  Blank lines and
 *   lines starting with '#' are comments.  The first matching rule wins.
 *
 *   Classification tries the loaded rules first, then the shipped defaults
 *   (tools/bounce-rules.default has the same text), then a fallback on the
 *   basic code (0: no answer, 550/553: bad mailbox, else other).
 *
 * DIAGNOSTICS
 *   Loading fails with -EINVAL and "FILE:LINE: why" in the error buffer,
 *   -ENOMEM, or a negative errno for an unreadable file.  Lines are capped
 *   at BOUNCE_RULE_MAX bytes, files at BOUNCE_RULES_MAX rules.
 */
#ifndef SLUICE_BOUNCE_RULES_H
#define SLUICE_BOUNCE_RULES_H

#include <stddef.h>

#define BOUNCE_RULE_MAX 1024
#define BOUNCE_RULES_MAX 10000

struct bounce_rules;

/* What matched: the category, where the rule came from (file name, or
 * "default", or "fallback"), its line in that text and its index (1-based)
 * among the rules of that text.  Pointers live as long as the rule set. */
struct bounce_match {
    int category;
    const char *source;
    unsigned line;
    unsigned index;
    const char *rule;     /* the rule's line as written, "" for fallback */
};

/* Parse rules from text (NUL-terminated); name is used in errors and in
 * bounce_match.source.  *out is owned by the caller (bounce_rules_free). */
int bounce_rules_parse(struct bounce_rules **out, const char *text,
                       const char *name, char *err, size_t errlen);
/* Read and parse a rules file (at most 4 MB). */
int bounce_rules_load(struct bounce_rules **out, const char *path,
                      char *err, size_t errlen);
/* Free a rule set; NULL is fine. */
void bounce_rules_free(struct bounce_rules *r);
/* Number of rules in r. */
size_t bounce_rules_count(const struct bounce_rules *r);

/* The shipped default rules, compiled on first use (thread-safe); NULL
 * only when out of memory.  Never freed. */
const struct bounce_rules *bounce_rules_default(void);
/* The text of the shipped defaults. */
const char *bounce_rules_default_text(void);

/* Classify (code, enhanced, text) with r (may be NULL), then the defaults,
 * then the fallback; m (may be NULL) says which rule.  Returns the
 * category. */
int bounce_classify(const struct bounce_rules *r, int code,
                    const char *enhanced, const char *text,
                    struct bounce_match *m);

/* The category number of a name, or -1. */
int bounce_category_parse(const char *name);

#endif
