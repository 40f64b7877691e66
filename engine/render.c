/*
 * render.c - compile a campaign's templates once; render each recipient's
 * message in one pass.
 *
 * DESCRIPTION
 *   render_compile() checks the input, parses the three parts, splices the
 *   sub-account's header and footer in, derives missing text from the
 *   html, and pre-builds the header fields that are the same for every
 *   message.  render_message() resolves the contact's fields once (one
 *   value per distinct name), then appends headers, the text part and the
 *   html part to one buffer that grows (up to RENDER_MSG_MAX) as needed,
 *   quoted-printable encoding body text as it goes.
 *
 *   Shape: this file is the hub of one pass over the template, and the
 *   pass goes back and forth on purpose.  Each piece is handed to the
 *   encoder it needs as the pass reaches it (render_hdr.c for a header
 *   value, render_qp.c for body text and the buffer, render_token.c for
 *   the tokens), in message order, straight into the one buffer, as
 *   printf() hands each conversion to its formatter.  Gathering the
 *   pieces first to visit each encoder once would cost a second buffer
 *   and a copy per message on the hot path; so a walk of a message
 *   returns here between encoders, and those files are each entered more
 *   than once (render_free() is the last: a template compiled for one
 *   recipient only, campaign.c).
 *
 * OWNERSHIP
 *   The template owns copies of everything (pool, segments, prebuilt
 *   headers, secret) and is never written after compile.
 *
 * DIAGNOSTICS
 *   See render.h.  render_compile() explains a failure in err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sys/random.h>

#include "render_int.h"

#define DOMAIN_MAX 254
#define NAME_MAX_BYTES 256      /* display name of From / Reply-To */
#define SUBJECT_SRC_MAX (64u << 10)
#define POOL_MAX (64u << 20)
#define HOST_MAX 262            /* host name and ":port" */

struct render_tpl {
    char *pool;                 /* literals, defaults, slot names */
    struct render_seg *segs;           /* subject, then html, then text */
    size_t nsubj, nhtml, ntext;
    size_t nslots;
    size_t slot_off[RENDER_SLOTS_MAX], slot_len[RENDER_SLOTS_MAX];
    uint64_t campaign;
    uint32_t account;
    char *head;                 /* "From: ...\r\n" and Reply-To */
    size_t head_len;
    char *fixed;                /* List-Unsubscribe-Post, Feedback-ID, MIME */
    size_t fixed_len;
    char from_domain[DOMAIN_MAX], bounce_domain[DOMAIN_MAX];
    char unsub_domain[DOMAIN_MAX], unsub_host[HOST_MAX];
    struct mackey key;          /* token HMAC, keyed with the secret */
    size_t size_hint;           /* bytes of a message with empty values */
    unsigned track;             /* RENDER_TRACK_* */
};

/* A place in a segment list: segment i, byte off of it. */
struct pos {
    size_t i, off;
};

const char *render_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case RENDER_E_SYNTAX: return "template syntax error";
    case RENDER_E_ARG: return "bad campaign settings";
    case RENDER_E_TOOBIG: return "over a size limit";
    case RENDER_E_ADDR: return "recipient address not usable";
    case RENDER_E_TOKEN: return "not a valid token";
    case RENDER_E_FORGED: return "token authentication failed";
    case RENDER_E_CRYPTO: return "cryptography library failed";
    default: return code < 0 ? strerror(-code) : "unknown error";
    }
}

void render_free(struct render_tpl *t)
{
    if (t == NULL)
        return;
    free(t->pool);
    free(t->segs);
    free(t->head);
    free(t->fixed);
    render_mackey_free(&t->key);
    free(t);
}

/* ---- compile ---- */

/* Is s a host[:port] for the unsubscribe URL? */
static int host_ok(const char *s)
{
    size_t n = strlen(s);
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (!render_hdr_domain_ok(s, hn))
        return 0;
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0 || pn > 5 || strspn(colon + 1, "0123456789") != pn)
            return 0;
    }
    return 1;
}

/* Is s a Feedback-ID field: 1..64 of [A-Za-z0-9._-]? */
static int fbl_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") == n;
}

/* Copy domain d (or dflt when NULL) into out after checking it. */
static int set_domain(struct tplc *c, const char *what, const char *d,
                      const char *dflt, char *out)
{
    if (d == NULL)
        d = dflt;
    size_t n = strlen(d);
    if (!render_hdr_domain_ok(d, n)) {
        render_tpl_error(c, "%s: not a domain name", what);
        return RENDER_E_ARG;
    }
    memcpy(out, d, n + 1);
    return 0;
}

/* Append an address header "Field: Name <addr>\r\n" built from spec. */
static int put_address(struct tplc *c, struct rbuf *b, const char *field,
                       const char *spec, char *addr, size_t addrcap)
{
    char name[NAME_MAX_BYTES];
    if (render_hdr_addr_parse(spec, name, sizeof(name), addr, addrcap) != 0) {
        render_tpl_error(c, "%s: not an address (want "
                         "\"Name <local@domain>\", ASCII address, "
                         "name under %d bytes)", field, NAME_MAX_BYTES);
        return RENDER_E_ARG;
    }
    return render_hdr_address(b, field, name, addr);
}

/* Build the header fields that are the same in every message. */
static int build_fixed(struct tplc *c, const struct render_input *in,
                       struct render_tpl *t)
{
    char addr[DOMAIN_MAX + 70];
    struct rbuf b = { .max = 16384 };
    int rc = put_address(c, &b, "From", in->from, addr, sizeof(addr));
    if (rc == 0) {
        const char *at = strrchr(addr, '@');
        memcpy(t->from_domain, at + 1, strlen(at));
        if (in->reply_to)
            rc = put_address(c, &b, "Reply-To", in->reply_to, addr,
                             sizeof(addr));
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    t->head = b.p;
    t->head_len = b.len;
    if ((rc = set_domain(c, "bounce_domain", in->bounce_domain,
                         t->from_domain, t->bounce_domain)) ||
        (rc = set_domain(c, "unsub_mail_domain", in->unsub_mail_domain,
                         t->from_domain, t->unsub_domain)))
        return rc;
    if (in->unsub_host == NULL || !host_ok(in->unsub_host)) {
        render_tpl_error(c, "unsub_host: want host[:port] for "
                         "https://HOST/u/TOKEN");
        return RENDER_E_ARG;
    }
    memcpy(t->unsub_host, in->unsub_host, strlen(in->unsub_host) + 1);
    const char *fbl = in->feedback_sender ? in->feedback_sender : "sluice";
    if (!fbl_ok(fbl)) {
        render_tpl_error(c,
                         "feedback_sender: want 1..64 of A-Z a-z 0-9 . _ -");
        return RENDER_E_ARG;
    }
    struct rbuf f = { .max = 1024 };
    rc = render_buf_puts(&f, "List-Unsubscribe-Post: "
                             "List-Unsubscribe=One-Click\r\n"
                             "Feedback-ID: ");
    if (rc == 0) rc = render_buf_putu(&f, in->campaign);
    if (rc == 0) rc = render_buf_puts(&f, ":");
    if (rc == 0) rc = render_buf_putu(&f, in->account);
    if (rc == 0) rc = render_buf_puts(&f, ":");
    if (rc == 0) rc = render_buf_putu(&f, in->list);
    if (rc == 0) rc = render_buf_puts(&f, ":");
    if (rc == 0) rc = render_buf_puts(&f, fbl);
    if (rc == 0) rc = render_buf_puts(&f, "\r\nMIME-Version: 1.0\r\n");
    t->fixed = f.p;
    t->fixed_len = f.len;
    return rc;
}

/* Parse optional template text s (cap bytes) of part `part` into l. */
static int parse_part(struct tplc *c, const char *part, const char *s,
                      size_t cap, struct render_seglist *l)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, cap + 1);
    if (n > cap) {
        render_tpl_error(c, "%s: longer than %zu bytes", part, cap);
        return RENDER_E_TOOBIG;
    }
    return render_tpl_parse(c, part, s, n, l);
}

/* Find needle (lowercase) in literal segment i from byte from, ignoring
 * case; returns the offset or SIZE_MAX. */
static size_t seg_find(const struct tplc *c, const struct render_seglist *l,
                       size_t i, size_t from, const char *needle)
{
    const struct render_seg *s = &l->v[i];
    size_t nn = strlen(needle);
    for (size_t k = from; k + nn <= s->len; k++)
        if (strncasecmp(c->pool.p + s->off + k, needle, nn) == 0)
            return k;
    return SIZE_MAX;
}

/* Where the html header and footer go: after <body ...>, before the last
 * </body>; start and end of the html when there is no body tag. */
static void body_points(const struct tplc *c, const struct render_seglist *l,
                        struct pos *open, struct pos *close)
{
    *open = (struct pos){ 0, 0 };
    *close = (struct pos){ l->n, 0 };
    int found = 0;
    for (size_t i = 0; i < l->n && !found; i++) {
        if (l->v[i].kind != RENDER_SEG_LIT)
            continue;
        size_t k = 0;
        while ((k = seg_find(c, l, i, k, "<body")) != SIZE_MAX) {
            const struct render_seg *s = &l->v[i];
            char nx = k + 5 < s->len ? c->pool.p[s->off + k + 5] : ' ';
            if (strchr(" \t\r\n/>", nx) == NULL) {
                k++;
                continue;
            }
            /* the '>' that ends the tag, maybe after merge tags */
            for (size_t j = i, from = k + 5; j < l->n; j++, from = 0) {
                if (l->v[j].kind != RENDER_SEG_LIT)
                    continue;
                const char *p = memchr(c->pool.p + l->v[j].off + from, '>',
                                       l->v[j].len - from);
                if (p) {
                    *open = (struct pos){ j, (size_t)(p - c->pool.p) -
                                                 l->v[j].off + 1 };
                    found = 1;
                    break;
                }
            }
            break;
        }
    }
    for (size_t i = l->n; i-- > 0;) {
        if (l->v[i].kind != RENDER_SEG_LIT)
            continue;
        size_t k = 0, last = SIZE_MAX;
        while ((k = seg_find(c, l, i, k, "</body")) != SIZE_MAX)
            last = k++;
        if (last != SIZE_MAX) {
            struct pos p = { i, last };
            if (p.i > open->i || (p.i == open->i && p.off >= open->off))
                *close = p;
            break;
        }
    }
}

/* Append the segments of l between positions a and b (b excluded). */
static int append_range(struct render_seglist *out,
                        const struct render_seglist *l, struct pos a,
                        struct pos b)
{
    for (size_t i = a.i; i < l->n && i <= b.i; i++) {
        struct render_seg s = l->v[i];
        if (s.kind != RENDER_SEG_LIT) {
            if (i == b.i)
                break;
            int rc = render_seg_add(out, s);
            if (rc)
                return rc;
            continue;
        }
        size_t from = i == a.i ? a.off : 0, to = i == b.i ? b.off : s.len;
        if (to > from) {
            s.off += (uint32_t)from;
            s.len = (uint32_t)(to - from);
            int rc = render_seg_add(out, s);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Does the list end in a line break (or is it empty)? */
static int ends_in_newline(const struct tplc *c, const struct render_seglist *l)
{
    if (l->n == 0)
        return 1;
    const struct render_seg *s = &l->v[l->n - 1];
    return s->kind == RENDER_SEG_LIT && s->len &&
           c->pool.p[s->off + s->len - 1] == '\n';
}

/* The parts: subject, html with header/footer, text with its own. */
static int build_parts(struct tplc *c, const struct render_input *in,
                       struct render_seglist *subj, struct render_seglist *html,
                       struct render_seglist *text)
{
    struct render_seglist body = { 0 }, hh = { 0 }, hf = { 0 }, tb = { 0 },
                   th = { 0 }, tf = { 0 };
    int rc;
    if (in->subject == NULL || in->html == NULL) {
        render_tpl_error(c, "subject and html are required");
        return RENDER_E_ARG;
    }
    const size_t hf_max = RENDER_HF_MAX, part_max = RENDER_PART_MAX;
    if ((rc = parse_part(c, "subject", in->subject, SUBJECT_SRC_MAX, subj)) ||
        (rc = parse_part(c, "html", in->html, part_max, &body)) ||
        (rc = parse_part(c, "header_html", in->header_html, hf_max, &hh)) ||
        (rc = parse_part(c, "footer_html", in->footer_html, hf_max, &hf)) ||
        (rc = parse_part(c, "text", in->text, part_max, &tb)) ||
        (rc = parse_part(c, "header_text", in->header_text, hf_max, &th)) ||
        (rc = parse_part(c, "footer_text", in->footer_text, hf_max, &tf)))
        goto out;
    if ((in->text == NULL &&
         (rc = render_tpl_html_to_text(c, &body, &tb))) ||
        (in->header_text == NULL &&
         (rc = render_tpl_html_to_text(c, &hh, &th))) ||
        (in->footer_text == NULL &&
         (rc = render_tpl_html_to_text(c, &hf, &tf))))
        goto out;
    struct pos open, close;
    body_points(c, &body, &open, &close);
    if ((rc = append_range(html, &body, (struct pos){ 0, 0 }, open)) ||
        (rc = render_seg_append(html, &hh, 0, hh.n)) ||
        (rc = append_range(html, &body, open, close)) ||
        (rc = render_seg_append(html, &hf, 0, hf.n)) ||
        (rc = append_range(html, &body, close, (struct pos){ body.n, 0 })))
        goto out;
    if ((rc = render_seg_append(text, &th, 0, th.n)))
        goto out;
    if (!ends_in_newline(c, text) && (rc = render_seg_lit(c, text, "\n", 1)))
        goto out;
    if ((rc = render_seg_append(text, &tb, 0, tb.n)))
        goto out;
    if (tf.n && !ends_in_newline(c, text) &&
        (rc = render_seg_lit(c, text, "\n", 1)))
        goto out;
    rc = render_seg_append(text, &tf, 0, tf.n);
out:
    free(body.v);
    free(hh.v);
    free(hf.v);
    free(tb.v);
    free(th.v);
    free(tf.v);
    return rc;
}

int render_compile(const struct render_input *in, struct render_tpl **out,
                   char *err, size_t errlen)
{
    struct tplc c = { .pool = { .max = POOL_MAX }, .err = err,
                      .errlen = errlen };
    struct render_seglist subj = { 0 }, html = { 0 }, text = { 0 };
    struct render_tpl *t = NULL;
    int rc;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (in == NULL || in->from == NULL) {
        render_tpl_error(&c, "from is required");
        return RENDER_E_ARG;
    }
    if (in->secret == NULL || in->secret_len < RENDER_SECRET_MIN) {
        render_tpl_error(&c, "secret: at least %d bytes", RENDER_SECRET_MIN);
        return RENDER_E_ARG;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    if (in->track & ~(unsigned)(RENDER_TRACK_OPENS | RENDER_TRACK_CLICKS)) {
        render_tpl_error(&c, "track: opens, clicks or both");
        rc = RENDER_E_ARG;
        goto fail;
    }
    if ((rc = build_fixed(&c, in, t)) ||
        (rc = build_parts(&c, in, &subj, &html, &text)) ||
        (rc = render_track_compile(&c, &html, in->track)))
        goto fail;
    size_t n = subj.n + html.n + text.n;
    t->segs = malloc((n ? n : 1) * sizeof(struct render_seg));
    if (t->segs == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = render_mackey_init(&t->key, in->secret, in->secret_len)))
        goto fail;
    struct render_seglist *parts[] = { &subj, &html, &text };
    for (size_t i = 0, at = 0; i < 3; at += parts[i++]->n)
        if (parts[i]->n)
            memcpy(t->segs + at, parts[i]->v,
                   parts[i]->n * sizeof(struct render_seg));
    t->nsubj = subj.n;
    t->nhtml = html.n;
    t->ntext = text.n;
    t->nslots = c.nslots;
    memcpy(t->slot_off, c.slot_off, sizeof(c.slot_off));
    memcpy(t->slot_len, c.slot_len, sizeof(c.slot_len));
    t->campaign = in->campaign;
    t->account = in->account;
    t->track = in->track;
    size_t lit = 0;
    for (size_t i = subj.n; i < n; i++)
        if (t->segs[i].kind == RENDER_SEG_LIT)
            lit += t->segs[i].len;
    t->size_hint = lit + lit / 16 + t->head_len + t->fixed_len + 1200;
    t->pool = c.pool.p;
    c.pool.p = NULL;
    *out = t;
fail:
    free(c.pool.p);
    free(subj.v);
    free(html.v);
    free(text.v);
    if (rc)
        render_free(t);
    return rc;
}

/* ---- render ---- */

/* The contact's values, one per slot, and the per-message strings. */
struct msgvals {
    const char *v[RENDER_SLOTS_MAX];
    size_t n[RENDER_SLOTS_MAX];
    const char *email;
    size_t email_len;
    char url[8 + HOST_MAX + 3 + RENDER_UNSUB_TOKEN_LEN + 1];
    size_t url_len;
    uint64_t contact, delivery;   /* for the tracking tokens */
};

/* The contact's unsubscribe URL (https://HOST/u/TOKEN) into mv->url. */
static void unsub_url(const struct render_tpl *t, const char *unsub,
                      struct msgvals *mv)
{
    size_t hl = strlen(t->unsub_host);
    memcpy(mv->url, "https://", 8);
    memcpy(mv->url + 8, t->unsub_host, hl);
    memcpy(mv->url + 8 + hl, "/u/", 3);
    memcpy(mv->url + 11 + hl, unsub, RENDER_UNSUB_TOKEN_LEN + 1);
    mv->url_len = 11 + hl + RENDER_UNSUB_TOKEN_LEN;
}

/* Fill the slots from the contact's fields (first match wins). */
static void resolve(const struct render_tpl *t, const struct render_contact *c,
                    struct msgvals *mv)
{
    for (size_t s = 0; s < t->nslots; s++)
        mv->v[s] = NULL;
    for (size_t f = 0; f < c->nfields; f++) {
        const char *name = c->fields[f].name;
        if (name == NULL || c->fields[f].value == NULL)
            continue;
        size_t nl = strnlen(name, RENDER_NAME_MAX + 1);
        for (size_t s = 0; s < t->nslots; s++) {
            if (t->slot_len[s] == nl && mv->v[s] == NULL &&
                strncasecmp(t->pool + t->slot_off[s], name, nl) == 0) {
                mv->v[s] = c->fields[f].value;
                mv->n[s] = c->fields[f].value_len ? c->fields[f].value_len
                                                  : strlen(mv->v[s]);
            }
        }
    }
}

/* What a tag segment renders as: its value, else its default. */
static const char *tag_value(const struct render_tpl *t,
                             const struct msgvals *mv,
                             const struct render_seg *s, size_t *n)
{
    const char *v = NULL;
    *n = 0;
    if (s->kind == RENDER_SEG_FIELD && mv->v[s->slot]) {
        v = mv->v[s->slot];
        *n = mv->n[s->slot];
    } else if (s->kind == RENDER_SEG_EMAIL) {
        v = mv->email;
        *n = mv->email_len;
    } else if (s->kind == RENDER_SEG_UNSUB) {
        v = mv->url;
        *n = mv->url_len;
    }
    if (*n == 0) {
        v = t->pool + s->off;
        *n = s->len;
    }
    return v;
}

/* Merge, clean and write the Subject field. */
static int put_subject(struct rbuf *b, const struct render_tpl *t,
                       const struct msgvals *mv)
{
    char subj[RENDER_SUBJECT_MAX];
    struct render_hclean h = { .out = subj, .cap = sizeof(subj) };
    for (size_t i = 0; i < t->nsubj; i++) {
        const struct render_seg *s = &t->segs[i];
        size_t n;
        const char *v = s->kind == RENDER_SEG_LIT
                            ? (n = s->len, t->pool + s->off)
                            : tag_value(t, mv, s, &n);
        render_hdr_clean(&h, v, n);
    }
    size_t col = 8;
    int rc = render_buf_put(b, "Subject:", 8);
    if (rc == 0)
        rc = render_hdr_text(b, &col, subj, h.len, 0);
    return rc ? rc : render_buf_put(b, "\r\n", 2);
}

/* The URL the segments segs[0..n) of a link's value stand for, as the
 * recipient's browser follows it, into u (ends trimmed). */
static int link_url(const struct render_tpl *t, const struct msgvals *mv,
                    const struct render_seg *segs, size_t n, struct rbuf *u)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct render_seg *s = &segs[i];
        size_t vn;
        const char *v;
        if (s->kind == RENDER_SEG_LIT)
            rc = render_track_unescape(u, t->pool + s->off, s->len);
        else if ((v = tag_value(t, mv, s, &vn)) && vn)
            rc = render_buf_put(u, v, vn);
    }
    if (rc)
        return rc;
    size_t a = 0;
    while (u->len && strchr(" \t\r\n\f", u->p[u->len - 1]))
        u->len--;
    while (a < u->len && strchr(" \t\r\n\f", u->p[a]))
        a++;
    if (a) {
        memmove(u->p, u->p + a, u->len - a);
        u->len -= a;
    }
    return 0;
}

/* The tracked link that starts at segs[*i]: https://HOST/c/TOKEN when its
 * URL may be rewritten, else its value as written; *i is left on its
 * end marker. */
static int put_link(struct rbuf *b, struct render_qp *q,
                    const struct render_tpl *t, const struct msgvals *mv,
                    const struct render_seg *segs, size_t nsegs, size_t *i)
{
    size_t a = *i + 1, z = a;
    while (z < nsegs && segs[z].kind != RENDER_SEG_LINK_END)
        z++;
    *i = z;
    struct rbuf u = { .max = RENDER_LINK_URL_MAX + 1 };
    int rc = link_url(t, mv, segs + a, z - a, &u);
    int ok = rc == 0 && render_track_url_ok(u.p, u.len, t->unsub_host);
    free(u.p);
    if (rc && rc != RENDER_E_TOOBIG)
        return rc;
    if (ok) {
        char tok[RENDER_CLICK_TOKEN_LEN + 1];
        if ((rc = render_click_keyed(&t->key, t->campaign, mv->delivery,
                                     mv->contact, segs[a - 1].slot,
                                     segs[a - 1].off, tok, sizeof tok)) ||
            (rc = render_qp_put(b, q, "https://", 8)) ||
            (rc = render_qp_put(b, q, t->unsub_host,
                                strlen(t->unsub_host))) ||
            (rc = render_qp_put(b, q, "/c/", 3)))
            return rc;
        return render_qp_put(b, q, tok, RENDER_CLICK_TOKEN_LEN);
    }
    for (size_t k = a; k < z; k++) {
        const struct render_seg *s = &segs[k];
        size_t n;
        const char *v;
        if (s->kind == RENDER_SEG_LIT)
            rc = render_qp_put(b, q, t->pool + s->off, s->len);
        else if ((v = tag_value(t, mv, s, &n)))
            rc = render_qp_put_html(b, q, v, n);
        if (rc)
            return rc;
    }
    return 0;
}

/* The open pixel of the message. */
static int put_pixel(struct rbuf *b, struct render_qp *q,
                     const struct render_tpl *t, const struct msgvals *mv)
{
    char tok[RENDER_OPEN_TOKEN_LEN + 1];
    int rc = render_open_keyed(&t->key, t->campaign, mv->delivery,
                               mv->contact, tok, sizeof tok);
    if (rc == 0) rc = render_qp_put(b, q, "<img src=\"https://", 18);
    if (rc == 0) rc = render_qp_put(b, q, t->unsub_host,
                                    strlen(t->unsub_host));
    if (rc == 0) rc = render_qp_put(b, q, "/o/", 3);
    if (rc == 0) rc = render_qp_put(b, q, tok, RENDER_OPEN_TOKEN_LEN);
    if (rc == 0) {
        static const char tail[] =
            "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;"
            "border:0;width:1px;height:1px\">";
        rc = render_qp_put(b, q, tail, sizeof tail - 1);
    }
    return rc;
}

/* Write one body part's segments quoted-printable; html escapes values. */
static int put_body(struct rbuf *b, const struct render_tpl *t,
                    const struct msgvals *mv, const struct render_seg *segs,
                    size_t nsegs, int html)
{
    struct render_qp q = { 0 };
    int rc = 0;
    for (size_t i = 0; i < nsegs && rc == 0; i++) {
        const struct render_seg *s = &segs[i];
        if (s->kind == RENDER_SEG_LIT) {
            rc = render_qp_put(b, &q, t->pool + s->off, s->len);
            continue;
        }
        if (s->kind == RENDER_SEG_LINK) {
            rc = put_link(b, &q, t, mv, segs, nsegs, &i);
            continue;
        }
        if (s->kind == RENDER_SEG_PIXEL) {
            rc = put_pixel(b, &q, t, mv);
            continue;
        }
        if (s->kind == RENDER_SEG_LINK_END)
            continue;
        size_t n;
        const char *v = tag_value(t, mv, s, &n);
        rc = html ? render_qp_put_html(b, &q, v, n)
                  : render_qp_put(b, &q, v, n);
    }
    return rc ? rc : render_qp_end(b, &q);
}

/* A piece of a header block: bytes and length. */
struct piece {
    const char *s;
    size_t n;
};
#define S(lit) { lit, sizeof(lit) - 1 }

/* Append pieces p[0..count) with one reservation. */
static int put_all(struct rbuf *b, const struct piece *p, size_t count)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += p[i].n;
    int rc = render_buf_reserve(b, total);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++) {
        memcpy(b->p + b->len, p[i].s, p[i].n);
        b->len += p[i].n;
    }
    return 0;
}

/* 64 random bits for the Message-ID's nonce and the boundary: splitmix64
 * over a per-thread state seeded from getrandom() on first use.
 * Uniqueness does not rest on it (the ids are in both) nor does
 * authenticity (the Message-ID's MAC does); it tells re-renders of one
 * delivery apart, at no system call per message. */
static uint64_t msg_random(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
        state = seed;
        seeded = 1;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Decimal of v into buf (24 bytes); returns its length. */
static size_t udec(char *buf, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(buf, tmp + i, sizeof(tmp) - i);
    return sizeof(tmp) - i;
}

#define PART_HEAD(type) \
    "Content-Type: text/" type "; charset=utf-8\r\n" \
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"

int render_message(const struct render_tpl *t, const struct render_contact *c,
                   char **out, size_t *len, char *mail_from, size_t mflen)
{
    struct msgvals mv;
    char verp[RENDER_VERP_TOKEN_LEN + 1], unsub[RENDER_UNSUB_TOKEN_LEN + 1];
    char msgid[RENDER_MSGID_LEFT_MAX + 1], deliv[24];
    struct rbuf b = { .max = RENDER_MSG_MAX };
    int rc;

    *out = NULL;
    *len = 0;
    if (c->email == NULL)
        return RENDER_E_ADDR;
    resolve(t, c, &mv); /* local work first, then the encoders */
    size_t dl = udec(deliv, c->delivery);
    mv.contact = c->id;
    mv.delivery = c->delivery;
    mv.email = c->email;
    mv.email_len = strnlen(c->email, 256);
    if (!render_hdr_addr_ok(c->email, mv.email_len))
        return RENDER_E_ADDR;
    if ((rc = render_verp_keyed(&t->key, c->delivery, t->campaign, verp,
                                sizeof(verp))) ||
        (rc = render_unsub_keyed(&t->key, t->account, t->campaign, c->id,
                                 unsub, sizeof(unsub))) ||
        (rc = render_msgid_left(&t->key, t->campaign, c->delivery,
                                msg_random(), msgid, sizeof(msgid))))
        return rc;
    size_t bl = strlen(t->bounce_domain);
    if (mflen < 2 + RENDER_VERP_TOKEN_LEN + 1 + bl + 1)
        return -ENOSPC;
    memcpy(mail_from, "b-", 2);
    memcpy(mail_from + 2, verp, RENDER_VERP_TOKEN_LEN);
    mail_from[2 + RENDER_VERP_TOKEN_LEN] = '@';
    memcpy(mail_from + 3 + RENDER_VERP_TOKEN_LEN, t->bounce_domain, bl + 1);
    unsub_url(t, unsub, &mv);
    /* CAMPAIGN.DELIVERY.NONCE.MAC: the nonce is also the boundary's */
    size_t ml = strlen(msgid);
    const char *rnd = msgid + ml - RENDER_MSGID_MAC_LEN - 1 - MSGID_NONCE_LEN;
    size_t rl = MSGID_NONCE_LEN;

    if ((rc = render_buf_reserve(&b, t->size_hint)) ||
        (rc = render_hdr_date(&b, (int64_t)time(NULL))) ||
        (rc = render_buf_put(&b, t->head, t->head_len)))
        goto fail;
    const struct piece bnd[] = { S("\r\n--=_"), { rnd, rl }, S("."),
                                 { deliv, dl } };
    const struct piece to[] = { S("To: "), { c->email, mv.email_len },
                                S("\r\n") };
    if ((rc = put_all(&b, to, 3)) || (rc = put_subject(&b, t, &mv)))
        goto fail;
    const struct piece mid[] = {
        S("Message-ID: <"), { msgid, ml }, S("@"),
        { t->from_domain, strlen(t->from_domain) },
        S(">\r\nList-Unsubscribe: <mailto:unsub-"),
        { unsub, RENDER_UNSUB_TOKEN_LEN }, S("@"),
        { t->unsub_domain, strlen(t->unsub_domain) }, S(">,\r\n <"),
        { mv.url, mv.url_len }, S(">\r\n"), { t->fixed, t->fixed_len },
        S("Content-Type: multipart/alternative;\r\n boundary=\"=_"),
        { rnd, rl }, S("."), { deliv, dl },
        S("\"\r\n\r\nThis is a multi-part message in MIME format.\r\n")
    };
    if ((rc = put_all(&b, mid, sizeof(mid) / sizeof(mid[0]))) ||
        (rc = put_all(&b, bnd, 4)) ||
        (rc = render_buf_puts(&b, "\r\n" PART_HEAD("plain"))) ||
        (rc = put_body(&b, t, &mv, t->segs + t->nsubj + t->nhtml, t->ntext,
                       0)) ||
        (rc = put_all(&b, bnd, 4)) ||
        (rc = render_buf_puts(&b, "\r\n" PART_HEAD("html"))) ||
        (rc = put_body(&b, t, &mv, t->segs + t->nsubj, t->nhtml, 1)) ||
        (rc = put_all(&b, bnd, 4)) ||
        (rc = render_buf_puts(&b, "--\r\n")))
        goto fail;
    b.p[b.len] = '\0';          /* rbuf always keeps a byte for this */
    *out = b.p;
    *len = b.len;
    return 0;
fail:
    free(b.p);
    return rc;
}

int render_track_link(const struct render_tpl *t,
                      const struct render_contact *c, unsigned link,
                      uint32_t check, char *url, size_t cap)
{
    struct msgvals mv;
    char unsub[RENDER_UNSUB_TOKEN_LEN + 1];
    const struct render_seg *h = t->segs + t->nsubj;
    size_t at = t->nhtml;
    if (c->email == NULL)
        return RENDER_E_ADDR;
    for (size_t i = 0; i < t->nhtml; i++)
        if (h[i].kind == RENDER_SEG_LINK && h[i].slot == link &&
            h[i].off == check)
            at = i;
    for (size_t i = 0; at == t->nhtml && i < t->nhtml; i++)
        if (h[i].kind == RENDER_SEG_LINK && h[i].off == check)
            at = i;                    /* renumbered: the same link */
    if (at == t->nhtml)
        return -ENOENT;
    resolve(t, c, &mv);
    mv.contact = c->id;
    mv.delivery = c->delivery;
    mv.email = c->email;
    mv.email_len = strnlen(c->email, 256);
    int rc = render_unsub_keyed(&t->key, t->account, t->campaign, c->id,
                                unsub, sizeof(unsub));
    if (rc)
        return rc;
    unsub_url(t, unsub, &mv);
    size_t z = at + 1;
    while (z < t->nhtml && h[z].kind != RENDER_SEG_LINK_END)
        z++;
    struct rbuf u = { .max = RENDER_LINK_URL_MAX + 1 };
    rc = link_url(t, &mv, h + at + 1, z - at - 1, &u);
    if (rc == 0 && !render_track_url_ok(u.p, u.len, t->unsub_host))
        rc = -ENOENT;
    if (rc == RENDER_E_TOOBIG)
        rc = -ENOENT;
    if (rc == 0)
        rc = render_track_location(u.p, u.len, url, cap);
    free(u.p);
    return rc;
}

int render_preview(const struct render_tpl *t, const struct render_contact *c,
                   char **out, size_t *len, char *mail_from, size_t mflen)
{
    struct render_contact p = *c;
    p.delivery = RENDER_PREVIEW_DELIVERY;
    return render_message(t, &p, out, len, mail_from, mflen);
}
