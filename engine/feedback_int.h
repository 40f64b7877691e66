/*
 * feedback_int.h - what the feedback library's files share (not for its
 * callers: they use feedback.h).
 */
#ifndef SLUICE_FEEDBACK_INT_H
#define SLUICE_FEEDBACK_INT_H

#include <stddef.h>

struct feedback_result;

/* Keep buf[0..len) in dir as NAME.eml with NAME.reason (r->reason and
 * source); r->quarantine names the .eml.  0 or FEEDBACK_EQUARANTINE with
 * r->error (then neither file is left). */
int feedback_quarantine(const char *dir, const char *source,
                        const char *buf, size_t len,
                        struct feedback_result *r);

#endif
