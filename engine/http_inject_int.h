/*
 * http_inject_int.h - what the files of POST /api/inject/v1 share: the
 * request as read from its JSON (http_inject_json.c) and the message
 * template made from it (http_inject_build.c).  http_inject.c serves it.
 *
 * DESCRIPTION
 *   inject_parse() checks a request body against the API's shape and
 *   keeps the parsed JSON; inject_compile() turns its content into a
 *   template with the campaign renderer's parser (render_int.h: {{name}},
 *   {{name|default}}); inject_render() makes the message of one
 *   recipient from it.
 *
 * OWNERSHIP
 *   A struct inject_req owns its JSON (inject_req_free()); the pointers
 *   in it point into that JSON.  A struct inject_tpl owns its pool,
 *   segments and decoded attachments (inject_tpl_free()).  Messages from
 *   inject_render() are malloc'ed; the caller frees them.
 *
 * DIAGNOSTICS
 *   0 or a negative code (-ENOMEM, -EINVAL for a request that breaks the
 *   API's rules, RENDER_E_* from the renderer), with the reason in words
 *   in the caller's buffer.
 */
#ifndef SLUICE_HTTP_INJECT_INT_H
#define SLUICE_HTTP_INJECT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "render_int.h"

/* Substitutions of one recipient (as a list contact's merge fields,
 * QUEUE_MAX_FIELDS), and of the request. */
#define INJECT_MAX_RCPT_SUBST 64
#define INJECT_MAX_SUBST 1000
/* Custom header fields of one builder request. */
#define INJECT_MAX_HEADERS 100
/* Attachments of one builder request. */
#define INJECT_MAX_ATTACHMENTS 100
/* Bytes of a merged custom header value, or of one value merged into the
 * header of a raw message; longer is cut (at a character). */
#define INJECT_HDR_VALUE_MAX 8192
/* Bytes of a rendered message. */
#define INJECT_MSG_MAX RENDER_MSG_MAX

/* One recipient of the request. */
struct inject_rcpt {
    const char *email;
    const char *name;          /* or NULL */
    json_t *subst;             /* object or NULL */
};

/* A request as read from its body. */
struct inject_req {
    json_t *root;
    const char *envelope_sender;
    json_t *content;           /* string (raw) or object (builder) */
    json_t *subst;             /* global substitutions: object or NULL */
    struct inject_rcpt *rcpts;
    size_t nrcpts;
};

/* Parse and check body[0..len) (at most max_rcpts recipients) into *r.
 * 0, or -EINVAL with the reason in why (jansson's text with its line,
 * column and byte for JSON that does not parse), or -ENOMEM. */
int inject_parse(const char *body, size_t len, unsigned max_rcpts,
                 struct inject_req *r, char *why, size_t cap);
void inject_req_free(struct inject_req *r);

/* One decoded attachment. */
struct inject_att {
    unsigned char *data;
    size_t len;
    const char *type, *file;   /* into the request's JSON */
};

/* One custom header field: name and value template. */
struct inject_hdr {
    const char *name;
    struct render_seglist value;
};

/* Values by field slot: a recipient's, or the request's for all. */
struct inject_vals {
    const char *v[RENDER_SLOTS_MAX];
    size_t n[RENDER_SLOTS_MAX];
    char num[RENDER_SLOTS_MAX][32];   /* numbers and booleans as text */
};

/* The message template of one request. */
struct inject_tpl {
    struct tplc c;             /* pool and field slots */
    bool raw;                  /* content is a whole RFC 5322 message */
    bool has_tags;             /* any merge tag at all */
    struct render_seglist raw_msg, subject, text, html;
    bool has_subject, has_text, has_html, has_to;
    struct inject_hdr hdrs[INJECT_MAX_HEADERS];
    size_t nhdrs;
    char from_addr[RENDER_MAILFROM_MAX], from_name[RENDER_HDR_NAME_MAX];
    char reply_addr[RENDER_MAILFROM_MAX], reply_name[RENDER_HDR_NAME_MAX];
    bool has_reply;
    struct inject_att att[INJECT_MAX_ATTACHMENTS];
    size_t natt;
    struct inject_vals global;     /* the request's substitutions */
};

/* Compile the content of r into *t (zeroed by the caller).  0, or -EINVAL
 * / RENDER_E_SYNTAX with the reason in why, or -ENOMEM. */
int inject_compile(const struct inject_req *r, struct inject_tpl *t,
                   char *why, size_t cap);
void inject_tpl_free(struct inject_tpl *t);

/* The message of recipient rc of request r: *out (malloc'ed, *len bytes,
 * NUL-terminated).  0, or a negative code with the reason in why
 * (RENDER_E_ADDR: the recipient's address cannot be written in To:). */
int inject_render(const struct inject_tpl *t, const struct inject_req *r,
                  const struct inject_rcpt *rc, char **out, size_t *len,
                  char *why, size_t cap);

#endif
