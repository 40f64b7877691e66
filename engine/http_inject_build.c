/*
 * http_inject_build.c - the messages of POST /api/inject/v1: its content
 * compiled once per request with the campaign renderer's template parser,
 * and rendered per recipient.
 *
 * DESCRIPTION
 *   Merge tags are the campaigns' ({{name}}, {{name|default}}, "{{{{" for
 *   a literal "{{", render.h TEMPLATE SYNTAX); a name is looked up in the
 *   recipient's substitutions, then the request's, without regard to case;
 *   "email" is the recipient's address and "name" its name unless a
 *   substitution says otherwise.  A value is a JSON string, number or
 *   boolean (null: empty); a missing or empty one renders as the default.
 *
 *   Builder content: the header is Date and Message-ID (added by the
 *   spool's cleanup, queue_msg.h), From, Reply-To, To (the recipient,
 *   unless headers has a To), Subject, the custom headers in the order
 *   given, MIME-Version; the body is text/plain or text/html alone, or
 *   both as multipart/alternative, in quoted-printable UTF-8, and with
 *   attachments all that inside a multipart/mixed whose other parts are
 *   the attachments in base64.  Subject and custom header values are merged
 *   and cleaned like a campaign's Subject (render_hdr_clean(): CR, LF and
 *   other controls become spaces, so no value can end a field or add one)
 *   and written folded, RFC 2047 encoded when not plain ASCII; values in
 *   html_body are HTML-escaped (render_qp_put_html()).  Attachments are
 *   not templated.  The boundaries start with "=_", which neither
 *   quoted-printable nor base64 output can hold.
 *
 *   Raw content (a whole RFC 5322 message): the template is the message.
 *   A value merged into the header section (before the first empty line)
 *   is cleaned the same way; in the body it goes in as it is, NUL bytes
 *   dropped and CR, LF and CRLF written as the message's own line end.
 *
 * DIAGNOSTICS
 *   -EINVAL with a reason for content that breaks the API's rules,
 *   RENDER_E_SYNTAX for a template that does not parse (part, line and
 *   column), RENDER_E_ADDR when a recipient cannot be written in To:.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "dkim_store.h"
#include "http_inject_int.h"

#define POOL_MAX (64u << 20)

/* ------------------------------------------------------------ compile */

static void resolve_global(struct inject_tpl *t, const struct inject_req *r);

/* Parse template text of part into l, noting whether it has tags. */
static int parse(struct inject_tpl *t, const char *part, const char *s,
                 size_t n, struct render_seglist *l)
{
    int rc = render_tpl_parse(&t->c, part, s, n, l);
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        if (l->v[i].kind != RENDER_SEG_LIT)
            t->has_tags = true;
    return rc;
}

/* An address object {email, name} of field into addr and name. */
static int take_address(json_t *o, const char *field, char *addr,
                        size_t acap, char *name, size_t ncap, char *why,
                        size_t cap)
{
    json_t *e = json_object_get(o, "email"), *n = json_object_get(o, "name");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "email") && strcmp(key, "name")) {
            snprintf(why, cap, "content.%s: unknown field \"%.60s\" (want "
                     "email, name)", field, key);
            return -EINVAL;
        }
    }
    if (!json_is_string(e) ||
        !render_hdr_addr_ok(json_string_value(e), json_string_length(e)) ||
        json_string_length(e) >= acap) {
        snprintf(why, cap, "content.%s.email: want an ASCII address "
                 "local@domain", field);
        return -EINVAL;
    }
    if (n && !json_is_string(n)) {
        snprintf(why, cap, "content.%s.name: want a string", field);
        return -EINVAL;
    }
    snprintf(addr, acap, "%s", json_string_value(e));
    snprintf(name, ncap, "%s", n ? json_string_value(n) : "");
    return 0;
}

/* Header names the builder writes itself: given in headers, they would
 * make a second one or break the MIME structure. */
static bool reserved_header(const char *name)
{
    static const char *const own[] = { "from", "reply-to", "subject",
                                       "mime-version" };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcasecmp(name, own[i]))
            return true;
    return !strncasecmp(name, "content-", 8);
}

/* A header field name: 1..76 printable ASCII characters without ':'. */
static bool header_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 76)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == ':')
            return false;
    return true;
}

/* The custom headers of the builder. */
static int take_headers(struct inject_tpl *t, json_t *h, char *why,
                        size_t cap)
{
    const char *key;
    json_t *v;
    if (!json_is_object(h)) {
        snprintf(why, cap, "content.headers: want an object of strings");
        return -EINVAL;
    }
    json_object_foreach(h, key, v) {
        if (!header_name_ok(key) || reserved_header(key)) {
            snprintf(why, cap, "content.headers: \"%.80s\" is not a header "
                     "name the builder takes (From, Reply-To, Subject, "
                     "MIME-Version and Content-* come from its own fields)",
                     key);
            return -EINVAL;
        }
        if (!json_is_string(v)) {
            snprintf(why, cap, "content.headers.%.80s: want a string", key);
            return -EINVAL;
        }
        if (t->nhdrs == INJECT_MAX_HEADERS) {
            snprintf(why, cap, "content.headers: more than %d",
                     INJECT_MAX_HEADERS);
            return -EINVAL;
        }
        struct inject_hdr *d = &t->hdrs[t->nhdrs++];
        d->name = key;
        if (!strcasecmp(key, "to"))
            t->has_to = true;
        int rc = parse(t, key, json_string_value(v), json_string_length(v),
                       &d->value);
        if (rc)
            return rc;
    }
    return 0;
}

/* Characters allowed in a content type or a file name we write in a
 * quoted parameter: printable ASCII without '"' and '\'. */
static bool param_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* One attachment {data, content_type, file_name[, base64]}. */
static int take_attachment(struct inject_tpl *t, json_t *a, size_t i,
                           char *why, size_t cap)
{
    json_t *d = json_object_get(a, "data"),
           *ct = json_object_get(a, "content_type"),
           *fn = json_object_get(a, "file_name"),
           *b64 = json_object_get(a, "base64");
    const char *key;
    json_t *v;
    if (!json_is_object(a)) {
        snprintf(why, cap, "content.attachments[%zu]: want an object", i);
        return -EINVAL;
    }
    json_object_foreach(a, key, v) {
        if (strcmp(key, "data") && strcmp(key, "content_type") &&
            strcmp(key, "file_name") && strcmp(key, "base64")) {
            snprintf(why, cap, "content.attachments[%zu]: unknown field "
                     "\"%.60s\"", i, key);
            return -EINVAL;
        }
    }
    if (!json_is_string(d) || (b64 && !json_is_boolean(b64))) {
        snprintf(why, cap, "content.attachments[%zu]: want data (a string, "
                 "base64 unless \"base64\": false)", i);
        return -EINVAL;
    }
    const char *type = ct && json_is_string(ct) ? json_string_value(ct)
                                                : "application/octet-stream";
    if ((ct && !json_is_string(ct)) || !param_ok(type, 200) ||
        !strchr(type, '/')) {
        snprintf(why, cap, "content.attachments[%zu].content_type: want "
                 "type/subtype in printable ASCII", i);
        return -EINVAL;
    }
    if (fn && (!json_is_string(fn) || !param_ok(json_string_value(fn),
                                                 200))) {
        snprintf(why, cap, "content.attachments[%zu].file_name: want 1..200 "
                 "printable ASCII characters without quotes or '\\'", i);
        return -EINVAL;
    }
    struct inject_att *at = &t->att[t->natt];
    size_t n = json_string_length(d);
    if (!(at->data = malloc(n + 1)))
        return -ENOMEM;
    t->natt++;
    if (b64 && json_is_false(b64)) {
        memcpy(at->data, json_string_value(d), n);
        at->len = n;
    } else if (!dkim_b64_decode(json_string_value(d), n, at->data, n + 1,
                                &at->len)) {
        snprintf(why, cap, "content.attachments[%zu].data: not base64", i);
        return -EINVAL;
    }
    at->type = type;
    at->file = fn ? json_string_value(fn) : NULL;
    return 0;
}

/* The builder's fields. */
static int compile_builder(struct inject_tpl *t, json_t *c, char *why,
                           size_t cap)
{
    static const char *const known[] = { "subject", "from", "reply_to",
        "headers", "text_body", "html_body", "attachments" };
    const char *key;
    json_t *v;
    int rc;
    json_object_foreach(c, key, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]))
            i++;
        if (i == sizeof known / sizeof known[0]) {
            snprintf(why, cap, "content: unknown field \"%.60s\" (want "
                     "subject, from, reply_to, headers, text_body, "
                     "html_body, attachments)", key);
            return -EINVAL;
        }
        if (strcmp(key, "from") && strcmp(key, "reply_to") &&
            strcmp(key, "headers") && strcmp(key, "attachments") &&
            !json_is_string(v)) {
            snprintf(why, cap, "content.%s: want a string", key);
            return -EINVAL;
        }
    }
    json_t *from = json_object_get(c, "from");
    if (!json_is_object(from)) {
        snprintf(why, cap, "content.from: want an object {\"email\", "
                 "\"name\"}");
        return -EINVAL;
    }
    if ((rc = take_address(from, "from", t->from_addr, sizeof t->from_addr,
                           t->from_name, sizeof t->from_name, why, cap)))
        return rc;
    json_t *rt = json_object_get(c, "reply_to");
    if (rt && !json_is_object(rt)) {
        snprintf(why, cap, "content.reply_to: want an object {\"email\", "
                 "\"name\"}");
        return -EINVAL;
    }
    if (rt && (rc = take_address(rt, "reply_to", t->reply_addr,
                                 sizeof t->reply_addr, t->reply_name,
                                 sizeof t->reply_name, why, cap)))
        return rc;
    t->has_reply = rt != NULL;
    json_t *s = json_object_get(c, "subject"),
           *tb = json_object_get(c, "text_body"),
           *hb = json_object_get(c, "html_body"),
           *h = json_object_get(c, "headers"),
           *a = json_object_get(c, "attachments");
    if (!tb && !hb) {
        snprintf(why, cap, "content: needs text_body, html_body or both");
        return -EINVAL;
    }
    t->has_subject = s != NULL;
    t->has_text = tb != NULL;
    t->has_html = hb != NULL;
    if ((s && (rc = parse(t, "subject", json_string_value(s),
                          json_string_length(s), &t->subject))) ||
        (tb && (rc = parse(t, "text_body", json_string_value(tb),
                           json_string_length(tb), &t->text))) ||
        (hb && (rc = parse(t, "html_body", json_string_value(hb),
                           json_string_length(hb), &t->html))) ||
        (h && (rc = take_headers(t, h, why, cap))))
        return rc;
    if (a && (!json_is_array(a) ||
              json_array_size(a) > INJECT_MAX_ATTACHMENTS)) {
        snprintf(why, cap, "content.attachments: want an array of at most "
                 "%d objects", INJECT_MAX_ATTACHMENTS);
        return -EINVAL;
    }
    for (size_t i = 0; a && i < json_array_size(a); i++)
        if ((rc = take_attachment(t, json_array_get(a, i), i, why, cap)))
            return rc;
    return 0;
}

int inject_compile(const struct inject_req *r, struct inject_tpl *t,
                   char *why, size_t cap)
{
    t->c.pool.max = POOL_MAX;
    t->c.err = why;
    t->c.errlen = cap;
    why[0] = 0;
    int rc;
    if (json_is_string(r->content)) {
        t->raw = true;
        rc = parse(t, "content", json_string_value(r->content),
                   json_string_length(r->content), &t->raw_msg);
    } else {
        rc = compile_builder(t, r->content, why, cap);
    }
    if (rc && !why[0])
        snprintf(why, cap, "content: %s", render_strerror(rc));
    if (!rc)
        resolve_global(t, r);
    return rc;
}

void inject_tpl_free(struct inject_tpl *t)
{
    free(t->c.pool.p);
    free(t->raw_msg.v);
    free(t->subject.v);
    free(t->text.v);
    free(t->html.v);
    for (size_t i = 0; i < t->nhdrs; i++)
        free(t->hdrs[i].value.v);
    for (size_t i = 0; i < t->natt; i++)
        free(t->att[i].data);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------- render */

/* The values of one recipient: its own and the request's, by slot. */
struct vals {
    struct inject_vals own;
    const struct inject_vals *global;
    const char *email, *name;
};

/* Slot s takes JSON value v (a string, number, boolean; null: none). */
static void set_value(struct inject_vals *iv, size_t s, json_t *v)
{
    if (json_is_string(v)) {
        iv->v[s] = json_string_value(v);
        iv->n[s] = json_string_length(v);
        return;
    }
    if (json_is_integer(v))
        snprintf(iv->num[s], sizeof iv->num[s], "%lld",
                 (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(iv->num[s], sizeof iv->num[s], "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(iv->num[s], sizeof iv->num[s], "%s",
                 json_is_true(v) ? "true" : "false");
    else
        return;
    iv->v[s] = iv->num[s];
    iv->n[s] = strlen(iv->num[s]);
}

/* Fill the slots of iv from object o (a key matches a slot without
 * regard to case; the first key of a slot wins); found[s] marks them. */
static void fill(const struct inject_tpl *t, json_t *o,
                 struct inject_vals *iv, bool *found)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t kl = strlen(key);
        for (size_t s = 0; s < t->c.nslots; s++)
            if (!found[s] && t->c.slot_len[s] == kl &&
                !strncasecmp(t->c.pool.p + t->c.slot_off[s], key, kl)) {
                found[s] = true;
                set_value(iv, s, v);
            }
    }
}

/* The request's values, once per request. */
static void resolve_global(struct inject_tpl *t, const struct inject_req *r)
{
    bool found[RENDER_SLOTS_MAX] = { false };
    if (r->subst)
        fill(t, r->subst, &t->global, found);
}

/* Fill the slots: the recipient's substitutions, then the request's,
 * then its name. */
static void resolve(const struct inject_tpl *t, const struct inject_rcpt *rc,
                    struct vals *mv)
{
    bool found[RENDER_SLOTS_MAX] = { false };
    mv->email = rc->email;
    mv->name = rc->name;
    mv->global = &t->global;
    for (size_t s = 0; s < t->c.nslots; s++)
        mv->own.v[s] = NULL;
    if (rc->subst)
        fill(t, rc->subst, &mv->own, found);
    for (size_t s = 0; s < t->c.nslots; s++) {
        if (found[s])
            continue;
        mv->own.v[s] = t->global.v[s];
        mv->own.n[s] = t->global.n[s];
        if (!mv->own.v[s] && rc->name && t->c.slot_len[s] == 4 &&
            !memcmp(t->c.pool.p + t->c.slot_off[s], "name", 4)) {
            mv->own.v[s] = rc->name;
            mv->own.n[s] = strlen(rc->name);
        }
    }
}

/* What segment s renders as: its value, else its default. */
static const char *seg_text(const struct inject_tpl *t,
                            const struct vals *mv,
                            const struct render_seg *s, size_t *n)
{
    const char *v = NULL;
    *n = 0;
    if (s->kind == RENDER_SEG_LIT) {
        *n = s->len;
        return t->c.pool.p + s->off;
    }
    if (s->kind == RENDER_SEG_FIELD && mv->own.v[s->slot]) {
        v = mv->own.v[s->slot];
        *n = mv->own.n[s->slot];
    } else if (s->kind == RENDER_SEG_EMAIL) {
        v = mv->email;
        *n = strlen(v);
    }   /* unsubscribe_url: injected mail has no contact; the default */
    if (*n == 0) {
        v = t->c.pool.p + s->off;
        *n = s->len;
    }
    return v;
}

/* "Name: merged value\r\n", the value cleaned and folded. */
static int put_field(struct rbuf *b, const struct inject_tpl *t,
                     const struct vals *mv, const char *name,
                     const struct render_seglist *l)
{
    char *val = malloc(INJECT_HDR_VALUE_MAX);
    if (!val)
        return -ENOMEM;
    struct render_hclean h = { .out = val, .cap = INJECT_HDR_VALUE_MAX };
    for (size_t i = 0; i < l->n; i++) {
        size_t n;
        const char *v = seg_text(t, mv, &l->v[i], &n);
        render_hdr_clean(&h, v, n);
    }
    size_t col = strlen(name) + 1;
    int rc = render_buf_puts(b, name);
    if (rc == 0)
        rc = render_buf_puts(b, ":");
    if (rc == 0)
        rc = render_hdr_text(b, &col, val, h.len, 0);
    free(val);
    return rc ? rc : render_buf_puts(b, "\r\n");
}

/* A body part's text, quoted-printable; html escapes values. */
static int put_qp(struct rbuf *b, const struct inject_tpl *t,
                  const struct vals *mv, const struct render_seglist *l,
                  bool html)
{
    struct render_qp q = { 0 };
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        size_t n;
        const char *v = seg_text(t, mv, &l->v[i], &n);
        rc = html && l->v[i].kind != RENDER_SEG_LIT
                 ? render_qp_put_html(b, &q, v, n)
                 : render_qp_put(b, &q, v, n);
    }
    return rc ? rc : render_qp_end(b, &q);
}

/* Base64 of data[0..n) in lines of 76 characters. */
static int put_base64(struct rbuf *b, const unsigned char *d, size_t n)
{
    unsigned char line[80];
    for (size_t i = 0; i < n; i += 57) {
        int k = EVP_EncodeBlock(line, d + i, (int)(n - i < 57 ? n - i : 57));
        int rc = render_buf_put(b, line, (size_t)k);
        if (rc || (rc = render_buf_put(b, "\r\n", 2)))
            return rc;
    }
    return 0;
}

/* "--BOUNDARY\r\n" (or the closing "--BOUNDARY--\r\n"). */
static int put_delim(struct rbuf *b, const char *bnd, bool last)
{
    int rc = render_buf_puts(b, "\r\n--");
    if (rc == 0)
        rc = render_buf_puts(b, bnd);
    return rc ? rc : render_buf_puts(b, last ? "--\r\n" : "\r\n");
}

/* The text, html or alternative part (its Content-Type and body). */
static int put_text_parts(struct rbuf *b, const struct inject_tpl *t,
                          const struct vals *mv, const char *alt)
{
    static const char plain[] = "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    static const char html[] = "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    int rc;
    if (!(t->has_text && t->has_html)) {
        rc = render_buf_puts(b, t->has_text ? plain : html);
        return rc ? rc : put_qp(b, t, mv, t->has_text ? &t->text : &t->html,
                                !t->has_text);
    }
    if ((rc = render_buf_puts(b, "Content-Type: multipart/alternative;\r\n"
                                 " boundary=\"")) ||
        (rc = render_buf_puts(b, alt)) ||
        (rc = render_buf_puts(b, "\"\r\n\r\n")) ||
        (rc = put_delim(b, alt, false)) ||
        (rc = render_buf_puts(b, plain)) ||
        (rc = put_qp(b, t, mv, &t->text, false)) ||
        (rc = put_delim(b, alt, false)) ||
        (rc = render_buf_puts(b, html)) ||
        (rc = put_qp(b, t, mv, &t->html, true)))
        return rc;
    return put_delim(b, alt, true);
}

/* One attachment part. */
static int put_attachment(struct rbuf *b, const struct inject_att *a)
{
    int rc = render_buf_puts(b, "Content-Type: ");
    if (rc == 0) rc = render_buf_puts(b, a->type);
    if (rc == 0 && a->file) {
        rc = render_buf_puts(b, ";\r\n name=\"");
        if (rc == 0) rc = render_buf_puts(b, a->file);
        if (rc == 0) rc = render_buf_puts(b, "\"");
    }
    if (rc == 0) rc = render_buf_puts(b, "\r\nContent-Disposition: "
                                         "attachment");
    if (rc == 0 && a->file) {
        rc = render_buf_puts(b, ";\r\n filename=\"");
        if (rc == 0) rc = render_buf_puts(b, a->file);
        if (rc == 0) rc = render_buf_puts(b, "\"");
    }
    if (rc == 0) rc = render_buf_puts(b, "\r\nContent-Transfer-Encoding: "
                                         "base64\r\n\r\n");
    return rc ? rc : put_base64(b, a->data, a->len);
}

/* Two boundaries, "=_a.HEX" and "=_m.HEX", 64 random bits each time. */
static void boundaries(char *alt, char *mix, size_t cap)
{
    unsigned long long r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned long long)(uintptr_t)alt ^ (unsigned long long)cap;
    snprintf(alt, cap, "=_a.%016llx", r);
    snprintf(mix, cap, "=_m.%016llx", r);
}

/* The builder's message for one recipient. */
static int render_builder(struct rbuf *b, const struct inject_tpl *t,
                          const struct vals *mv, const struct inject_rcpt *rc,
                          char *why, size_t cap)
{
    char alt[32], mix[32];
    int err;
    boundaries(alt, mix, sizeof alt);
    if (!t->has_to && !render_hdr_addr_ok(rc->email, strlen(rc->email))) {
        snprintf(why, cap, "not an ASCII address to write in To: (give a "
                 "To header)");
        return RENDER_E_ADDR;
    }
    if ((err = render_hdr_address(b, "From", t->from_name, t->from_addr)) ||
        (t->has_reply && (err = render_hdr_address(b, "Reply-To",
                                                   t->reply_name,
                                                   t->reply_addr))) ||
        (!t->has_to && (err = render_hdr_address(b, "To", rc->name,
                                                 rc->email))) ||
        (t->has_subject && (err = put_field(b, t, mv, "Subject",
                                            &t->subject))))
        return err;
    for (size_t i = 0; i < t->nhdrs; i++)
        if ((err = put_field(b, t, mv, t->hdrs[i].name, &t->hdrs[i].value)))
            return err;
    if ((err = render_buf_puts(b, "MIME-Version: 1.0\r\n")))
        return err;
    if (!t->natt)
        return put_text_parts(b, t, mv, alt);
    if ((err = render_buf_puts(b, "Content-Type: multipart/mixed;\r\n"
                                  " boundary=\"")) ||
        (err = render_buf_puts(b, mix)) ||
        (err = render_buf_puts(b, "\"\r\n\r\nThis is a multi-part message "
                                  "in MIME format.\r\n")) ||
        (err = put_delim(b, mix, false)) ||
        (err = put_text_parts(b, t, mv, alt)))
        return err;
    for (size_t i = 0; i < t->natt; i++)
        if ((err = put_delim(b, mix, false)) ||
            (err = put_attachment(b, &t->att[i])))
            return err;
    return put_delim(b, mix, true);
}

/* A value in the body of a raw message: NUL dropped, line ends as eol. */
static int put_raw_body_value(struct rbuf *b, const char *v, size_t n,
                              const char *eol)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (v[i] == '\r' || v[i] == '\n') {
            if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
                i++;
            rc = render_buf_puts(b, eol);
        } else if (v[i]) {
            rc = render_buf_put(b, v + i, 1);
        }
    }
    return rc;
}

/* The raw message with the recipient's values merged. */
static int render_raw(struct rbuf *b, const struct inject_tpl *t,
                      const struct vals *mv)
{
    char *val = NULL;
    bool in_body = false;
    const char *eol = "\r\n";
    int rc = 0;
    for (size_t i = 0; i < t->raw_msg.n && rc == 0; i++) {
        const struct render_seg *s = &t->raw_msg.v[i];
        size_t n;
        const char *v = seg_text(t, mv, s, &n);
        if (s->kind == RENDER_SEG_LIT) {
            if (!in_body) { /* the first empty line ends the header */
                size_t start = b->len;
                rc = render_buf_put(b, v, n);
                for (size_t k = start >= 2 ? start - 2 : 0;
                     rc == 0 && k < b->len && !in_body; k++) {
                    if (b->p[k] != '\n')
                        continue;
                    if (k == 0 || b->p[k - 1] != '\r')
                        eol = "\n";
                    in_body = (k + 1 < b->len && b->p[k + 1] == '\n') ||
                              (k + 2 < b->len && b->p[k + 1] == '\r' &&
                               b->p[k + 2] == '\n');
                }
            } else {
                rc = render_buf_put(b, v, n);
            }
            continue;
        }
        if (in_body) {
            rc = put_raw_body_value(b, v, n, eol);
            continue;
        }
        if (!val && !(val = malloc(INJECT_HDR_VALUE_MAX)))
            return -ENOMEM;
        struct render_hclean h = { .out = val, .cap = INJECT_HDR_VALUE_MAX };
        render_hdr_clean(&h, v, n);
        rc = render_buf_put(b, val, h.len);
    }
    free(val);
    return rc;
}

int inject_render(const struct inject_tpl *t, const struct inject_req *r,
                  const struct inject_rcpt *rc, char **out, size_t *len,
                  char *why, size_t cap)
{
    struct vals *mv = malloc(sizeof *mv);
    struct rbuf b = { .max = INJECT_MSG_MAX };
    *out = NULL;
    why[0] = 0;
    if (!mv)
        return -ENOMEM;
    (void)r;
    resolve(t, rc, mv);
    int err = t->raw ? render_raw(&b, t, mv)
                     : render_builder(&b, t, mv, rc, why, cap);
    free(mv);
    if (err == 0)
        err = render_buf_reserve(&b, 1);
    if (err) {
        if (!why[0])
            snprintf(why, cap, "%s", err == RENDER_E_TOOBIG
                     ? "the message would be larger than 24 MiB"
                     : render_strerror(err));
        free(b.p);
        return err;
    }
    b.p[b.len] = 0;
    *out = b.p;
    *len = b.len;
    return 0;
}
