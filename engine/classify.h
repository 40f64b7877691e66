/*
 * classify.h - a bounce category for an SMTP reply or local failure.
 *
 * DESCRIPTION
 *   The engine's built-in rules: enhanced status code first (RFC 3463
 *   subjects and details), then words in the reply text, then the basic
 *   code.  The rules file of the bounce-feedback work extends this.
 */
#ifndef SLUICE_CLASSIFY_H
#define SLUICE_CLASSIFY_H

/* A queue_category for (code, enhanced, text); local failures pass code 0. */
int classify_reply(int code, const char *enhanced, const char *text);

#endif
