/*
 * rule_regex.c - regcomp() with a cap on how far a pattern expands.
 *
 * DESCRIPTION
 *   glibc's regcomp() copies a repeated part once per repetition it has to
 *   spell out: "X+" becomes "X X*", "X{2,5}" five copies of X, and stacked
 *   or nested repetitions multiply, so "a+++++++++++++++++++++++++++++" or
 *   "((a{1,99}){1,99}){1,99}" make it allocate gigabytes (found by
 *   tests/fuzz/fuzz_config).  Before regcomp() the pattern is read once:
 *   every atom (a character, an escape, a bracket expression) costs 1, a
 *   group costs what it holds, alternatives add up, and a repetition
 *   multiplies what it applies to by the copies it needs (* and ?: 1,
 *   +: 2, {n}: n, {n,}: n + 1, {n,m}: m).  A pattern costing more than
 *   RULE_REGEX_COST, or with groups nested deeper than RULE_REGEX_DEPTH,
 *   is refused.  The walk only estimates: whatever it cannot read it
 *   counts as a plain character and leaves to regcomp() to judge.
 *
 * DIAGNOSTICS
 *   See rule_regex.h.
 */
#include <stdint.h>
#include <stdio.h>

#include "rule_regex.h"

#define DUP_MAX 100000           /* interval bounds read up to this */

/* Past the bracket expression starting at s[i] == '['. */
static size_t bracket_end(const char *s, size_t i)
{
    size_t j = i + 1;
    if (s[j] == '^')
        j++;
    if (s[j] == ']')
        j++;                     /* a leading ']' is a member */
    while (s[j] && s[j] != ']') {
        if (s[j] == '[' && (s[j + 1] == ':' || s[j + 1] == '.' ||
                            s[j + 1] == '=')) {
            char kind = s[j + 1];
            j += 2;
            while (s[j] && !(s[j] == kind && s[j + 1] == ']'))
                j++;
            if (s[j])
                j += 2;
        } else {
            j++;
        }
    }
    return s[j] ? j + 1 : j;
}

/* Read a decimal bound at s[*i] (none: -1), up to DUP_MAX. */
static long bound(const char *s, size_t *i)
{
    long v = -1;
    while (s[*i] >= '0' && s[*i] <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (s[*i] - '0');
        if (v > DUP_MAX)
            v = DUP_MAX;
        (*i)++;
    }
    return v;
}

/* The copies an interval "{n}", "{n,}", "{n,m}" or "{,m}" at s[i] needs,
 * and where it ends; 0 if s[i] does not start one. */
static uint64_t interval(const char *s, size_t i, size_t *end)
{
    size_t j = i + 1;
    long lo = bound(s, &j), hi;
    if (s[j] == ',') {
        j++;
        hi = bound(s, &j);
        if (lo < 0 && hi < 0)
            return 0;
        hi = hi < 0 ? lo + 1 : hi;
    } else {
        if (lo < 0)
            return 0;
        hi = lo;
    }
    if (s[j] != '}')
        return 0;
    *end = j + 1;
    return hi > 0 ? (uint64_t)hi : 1;
}

/* The estimated cost of src, or RULE_REGEX_COST + 1 once over the cap
 * (*deep set when the groups nest too deep). */
static uint64_t cost(const char *s, int *deep)
{
    uint64_t sum[RULE_REGEX_DEPTH + 1] = { 0 }, last = 0;
    int depth = 0;
    *deep = 0;
    for (size_t i = 0; s[i];) {
        char c = s[i];
        uint64_t copies = 0;
        size_t next = i + 1;
        if (c == '*' || c == '?')
            copies = 1;
        else if (c == '+')
            copies = 2;
        else if (c == '{')
            copies = interval(s, i, &next);
        if (copies) {                 /* a repetition of the last part */
            sum[depth] += last * (copies - 1);
            last *= copies;
        } else if (c == '(') {
            if (depth == RULE_REGEX_DEPTH) {
                *deep = 1;
                return RULE_REGEX_COST + 1;
            }
            sum[++depth] = 0;
            last = 0;
        } else if (c == ')' && depth > 0) {
            last = sum[depth--];
            sum[depth] += last;
        } else if (c == '|') {
            last = 0;
        } else {                      /* one atom */
            if (c == '\\' && s[i + 1])
                next = i + 2;
            else if (c == '[')
                next = bracket_end(s, i);
            last = 1;
            sum[depth] += 1;
        }
        if (sum[depth] > RULE_REGEX_COST || last > RULE_REGEX_COST)
            return RULE_REGEX_COST + 1;
        i = next;
    }
    return sum[0];
}

int rule_regex_compile(regex_t *re, const char *src, int cflags, char *why,
                       size_t whylen)
{
    int deep;
    if (cost(src, &deep) > RULE_REGEX_COST) {
        if (deep)
            snprintf(why, whylen, "groups nested more than %d deep",
                     RULE_REGEX_DEPTH);
        else
            snprintf(why, whylen, "too large once its repetitions are "
                     "spelt out (over %d parts): nest or stack fewer "
                     "repetitions", RULE_REGEX_COST);
        return -1;
    }
    int rc = regcomp(re, src, cflags);
    if (rc) {
        regerror(rc, re, why, whylen);   /* glibc freed what it had */
        return -1;
    }
    return 0;
}
