/*
 * http_inject_json.c - read the body of POST /api/inject/v1 (jansson)
 * and check it has the API's shape.
 *
 * DESCRIPTION
 *   The body is one JSON object (KumoMTA's inject v1 shape):
 *     envelope_sender  string, required: the SMTP MAIL FROM ("" for <>)
 *     content          string (a whole RFC 5322 message) or object (the
 *                      builder: http_inject_build.c), required
 *     recipients       array of {email (required), name, substitutions},
 *                      1..max_rcpts entries
 *     substitutions    object: values for every recipient
 *   Any other field is refused (a misspelt field would otherwise be
 *   ignored without a word).  Duplicate keys are refused (jansson's
 *   JSON_REJECT_DUPLICATES).  A recipient's address is not checked here:
 *   a bad one fails that recipient alone (http_inject.c).
 *
 * DIAGNOSTICS
 *   -EINVAL with the reason: jansson's own text with line, column and
 *   byte position when the body is not JSON; the field at fault
 *   otherwise.  -ENOMEM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_inject_int.h"

/* Is o an object of at most max values, each a string, number, boolean
 * or null? */
static bool subst_ok(json_t *o, size_t max, char *bad, size_t cap)
{
    const char *key;
    json_t *v;
    if (json_object_size(o) > max) {
        snprintf(bad, cap, "(%zu of them, more than %zu)",
                 json_object_size(o), max);
        return false;
    }
    json_object_foreach(o, key, v) {
        if (json_is_object(v) || json_is_array(v)) {
            snprintf(bad, cap, "%.80s", key);
            return false;
        }
    }
    return true;
}

/* Check recipient i and point r->rcpts[i] into it. */
static int take_rcpt(struct inject_req *r, size_t i, json_t *o, char *why,
                     size_t cap)
{
    char bad[96];
    const char *key;
    json_t *v;
    if (!json_is_object(o)) {
        snprintf(why, cap, "recipients[%zu]: want an object {\"email\", "
                 "\"name\", \"substitutions\"}", i);
        return -EINVAL;
    }
    json_object_foreach(o, key, v) {
        if (strcmp(key, "email") && strcmp(key, "name") &&
            strcmp(key, "substitutions")) {
            snprintf(why, cap, "recipients[%zu]: unknown field \"%.60s\" "
                     "(want email, name, substitutions)", i, key);
            return -EINVAL;
        }
    }
    json_t *e = json_object_get(o, "email"), *n = json_object_get(o, "name"),
           *s = json_object_get(o, "substitutions");
    if (!json_is_string(e)) {
        snprintf(why, cap, "recipients[%zu].email: want a string", i);
        return -EINVAL;
    }
    if (n && !json_is_string(n)) {
        snprintf(why, cap, "recipients[%zu].name: want a string", i);
        return -EINVAL;
    }
    if (s && !json_is_object(s)) {
        snprintf(why, cap, "recipients[%zu].substitutions: want an object",
                 i);
        return -EINVAL;
    }
    if (s && !subst_ok(s, INJECT_MAX_RCPT_SUBST, bad, sizeof bad)) {
        snprintf(why, cap, "recipients[%zu].substitutions.%s: want a "
                 "string, number, boolean or null", i, bad);
        return -EINVAL;
    }
    r->rcpts[i] = (struct inject_rcpt){
        .email = json_string_value(e),
        .name = n ? json_string_value(n) : NULL, .subst = s };
    return 0;
}

/* The top level of the request. */
static int take_top(struct inject_req *r, unsigned max_rcpts, char *why,
                    size_t cap)
{
    char bad[96];
    const char *key;
    json_t *v;
    json_object_foreach(r->root, key, v) {
        if (strcmp(key, "envelope_sender") && strcmp(key, "content") &&
            strcmp(key, "recipients") && strcmp(key, "substitutions")) {
            snprintf(why, cap, "unknown field \"%.60s\" (want "
                     "envelope_sender, content, recipients, "
                     "substitutions)", key);
            return -EINVAL;
        }
    }
    json_t *es = json_object_get(r->root, "envelope_sender"),
           *rc = json_object_get(r->root, "recipients");
    r->content = json_object_get(r->root, "content");
    r->subst = json_object_get(r->root, "substitutions");
    if (!json_is_string(es)) {
        snprintf(why, cap, "envelope_sender: want a string (the address "
                 "bounces go to)");
        return -EINVAL;
    }
    r->envelope_sender = json_string_value(es);
    if (!json_is_string(r->content) && !json_is_object(r->content)) {
        snprintf(why, cap, "content: want a string (an RFC 5322 message) "
                 "or an object (the builder)");
        return -EINVAL;
    }
    if (r->subst && !json_is_object(r->subst)) {
        snprintf(why, cap, "substitutions: want an object");
        return -EINVAL;
    }
    if (r->subst && !subst_ok(r->subst, INJECT_MAX_SUBST, bad, sizeof bad)) {
        snprintf(why, cap, "substitutions.%s: want a string, number, "
                 "boolean or null", bad);
        return -EINVAL;
    }
    if (!json_is_array(rc) || json_array_size(rc) == 0) {
        snprintf(why, cap, "recipients: want a non-empty array");
        return -EINVAL;
    }
    if (json_array_size(rc) > max_rcpts) {
        snprintf(why, cap, "recipients: %zu, more than the %u one request "
                 "may have (max_request_recipients)", json_array_size(rc),
                 max_rcpts);
        return -EINVAL;
    }
    r->nrcpts = json_array_size(rc);
    if (!(r->rcpts = calloc(r->nrcpts, sizeof *r->rcpts)))
        return -ENOMEM;
    for (size_t i = 0; i < r->nrcpts; i++) {
        int err = take_rcpt(r, i, json_array_get(rc, i), why, cap);
        if (err)
            return err;
    }
    return 0;
}

int inject_parse(const char *body, size_t len, unsigned max_rcpts,
                 struct inject_req *r, char *why, size_t cap)
{
    json_error_t je;
    memset(r, 0, sizeof *r);
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!r->root) {
        snprintf(why, cap, "invalid JSON: %s at line %d, column %d "
                 "(byte %d)", je.text, je.line, je.column, je.position);
        return -EINVAL;
    }
    if (!json_is_object(r->root)) {
        snprintf(why, cap, "the body must be a JSON object");
        inject_req_free(r);
        return -EINVAL;
    }
    int err = take_top(r, max_rcpts, why, cap);
    if (err)
        inject_req_free(r);
    return err;
}

void inject_req_free(struct inject_req *r)
{
    if (!r)
        return;
    json_decref(r->root);
    free(r->rcpts);
    memset(r, 0, sizeof *r);
}
