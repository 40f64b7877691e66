/*
 * rule_regex.h - compile an operator's regular expression (backoff rules
 * in sluiced.conf, bounce rules files) with a cap on its size.
 *
 * DESCRIPTION
 *   rule_regex_compile() is regcomp() for POSIX extended expressions that
 *   first refuses one that would expand past RULE_REGEX_COST copies of
 *   its parts (see rule_regex.c): glibc spells repetitions out, so a
 *   pattern of thirty characters can otherwise ask for gigabytes.
 *
 * DIAGNOSTICS
 *   0, or -1 with a one-line reason in why (regerror()'s text, or how far
 *   over the cap it is); on -1 nothing is left to regfree().
 */
#ifndef SLUICE_RULE_REGEX_H
#define SLUICE_RULE_REGEX_H

#include <regex.h>
#include <stddef.h>

#define RULE_REGEX_COST 4096   /* atoms once repetitions are spelt out */
#define RULE_REGEX_DEPTH 32    /* nested groups */

int rule_regex_compile(regex_t *re, const char *src, int cflags, char *why,
                       size_t whylen);

#endif
