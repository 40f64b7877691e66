/*
 * incident_rec.h - an incident's JSON text as stored in the spool: the one
 * editor of it, shared by sluiced (open, action, resolve) and the tool
 * (ack, assign, note, resolve).
 */
#ifndef SLUICE_ENGINE_INCIDENT_REC_H
#define SLUICE_ENGINE_INCIDENT_REC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define INCIDENT_TIMELINE_MAX 200   /* entries kept; older ones folded */

/* One change: a timeline entry (what, who, text) and what it sets.  For a
 * new incident, base is the record without id (its id is added). */
struct incident_edit {
    const char *what;      /* opened, acknowledged, assigned, noted, action,
                              resolved */
    const char *who;
    const char *text;      /* NULL: none */
    const char *assignee;  /* assigned: whom */
    int64_t now_ms;
    json_t *base;          /* opened: the record */
};

/* queue_incident_edit_fn over struct incident_edit: refuses (-EINVAL) to
 * acknowledge, assign or resolve a resolved incident. */
long incident_rec_edit(void *arg, uint64_t id, const char *old, char *out,
                       size_t cap, char *why, size_t whylen);

#endif
