/*
 * feedback_parse.c - a bounded MIME walker for multipart/report messages:
 * delivery status notifications (RFC 3464) and abuse feedback reports
 * (RFC 5965).  What it extracts is described in feedback_parse.h.
 *
 * DESCRIPTION
 *   Written by hand, without a MIME library, over spans of the caller's
 *   buffer (pointer and length; nothing assumes a NUL).  Each entity is
 *   split into its header block and body at the first empty line; header
 *   fields are looked up by name and unfolded into fixed buffers (cut at
 *   their cap, control characters made spaces); a multipart body is cut
 *   at its "--boundary" lines.  Recursion is bounded by FB_MAX_DEPTH and
 *   parts per multipart by FB_MAX_PARTS; base64 and quoted-printable
 *   bodies are decoded into buffers no larger than the encoded text, kept
 *   in a small table and freed at the end.
 *
 * DIAGNOSTICS
 *   Every failure sets the report's reason and returns -1; nothing here
 *   prints or exits.  Out of memory is a failure like any other.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feedback_parse.h"

#define FB_MAX_DECODED 64        /* decoded bodies per report */
#define CT_MAX 1024              /* bytes of a Content-Type kept */
#define BOUNDARY_MAX 200

struct span {
    const char *p;
    size_t n;
};

/* The state of one fb_parse() call. */
struct ctx {
    struct fb_report *r;
    void *decoded[FB_MAX_DECODED];
    size_t ndecoded;
    char env_verp[FB_MAX_VERP][FB_ADDR_MAX + 1]; /* from the report itself */
    size_t nenv;
    bool top_done;
};

/* Set the failure reason (first one wins) and return -1. */
static int fail(struct ctx *c, const char *why)
{
    if (!c->r->reason[0]) {
        size_t n = strlen(why);
        if (n >= sizeof c->r->reason)
            n = sizeof c->r->reason - 1;
        memcpy(c->r->reason, why, n);
        c->r->reason[n] = 0;
    }
    return -1;
}

/* Length of the line at p (without its end) and where the next one starts. */
static size_t line_at(const char *p, size_t n, size_t *next)
{
    const char *nl = memchr(p, '\n', n);
    size_t len = nl ? (size_t)(nl - p) : n;
    *next = nl ? len + 1 : n;
    if (len && p[len - 1] == '\r')
        len--;
    return len;
}

/* Split an entity at its first empty line into header block and body.  A
 * block without an empty line is all header. */
static void split_entity(struct span e, struct span *hdr, struct span *body)
{
    size_t off = 0;
    while (off < e.n) {
        size_t next, len = line_at(e.p + off, e.n - off, &next);
        if (len == 0) {
            *hdr = (struct span){ e.p, off };
            *body = (struct span){ e.p + off + next, e.n - off - next };
            return;
        }
        off += next;
    }
    *hdr = e;
    *body = (struct span){ e.p + e.n, 0 };
}

/* Append src[0..n) to out (cap bytes with the NUL) at *len, controls made
 * spaces, cut at the cap. */
static void put_clean(char *out, size_t cap, size_t *len, const char *src,
                      size_t n)
{
    for (size_t i = 0; i < n && *len + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        out[(*len)++] = (char)(ch < 0x20 || ch == 0x7f ? ' ' : ch);
    }
    out[*len] = 0;
}

/* Trim blanks at both ends of s in place. */
static void trim(char *s)
{
    size_t n = strlen(s), b = 0;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (b < n && (s[b] == ' ' || s[b] == '\t'))
        b++;
    memmove(s, s + b, n - b);
    s[n - b] = 0;
}

/* The first field called name in a header block, unfolded into out (cut,
 * trimmed).  Returns whether it was there. */
static bool hdr_get(struct span h, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), off = 0, len = 0;
    bool in = false;
    out[0] = 0;
    while (off < h.n) {
        size_t next, l = line_at(h.p + off, h.n - off, &next);
        const char *p = h.p + off;
        off += next;
        if (in) {
            if (l && (p[0] == ' ' || p[0] == '\t')) {
                put_clean(out, cap, &len, p, l);
                continue;
            }
            break;
        }
        if (l > nl && !strncasecmp(p, name, nl)) {
            size_t i = nl;
            while (i < l && (p[i] == ' ' || p[i] == '\t'))
                i++;
            if (i < l && p[i] == ':') {
                in = true;
                put_clean(out, cap, &len, p + i + 1, l - i - 1);
            }
        }
    }
    if (in)
        trim(out);
    return in;
}

/* Lower-case s in place. */
static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Copy src (n bytes) into out[cap], cut. */
static void copy_cut(char *out, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(out, src, n);
    out[n] = 0;
}

/* A parameter of a Content-Type value: name="v" or name=v.  Returns
 * whether it was there; out gets its value (cut). */
static bool ct_param(const char *ct, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strchr(ct, ';');
    out[0] = 0;
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!strncasecmp(p, name, nl)) {
            const char *v = p + nl;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                size_t n = 0;
                if (*v == '"') {
                    v++;
                    while (v[n] && v[n] != '"')
                        n++;
                } else {
                    while (v[n] && v[n] != ';' && v[n] != ' ' &&
                           v[n] != '\t' && v[n] != '(')
                        n++;
                }
                copy_cut(out, cap, v, n);
                return true;
            }
        }
        /* next parameter: skip a quoted value that may hold ';' */
        bool q = false;
        while (*p && (q || *p != ';')) {
            if (*p == '"')
                q = !q;
            p++;
        }
        p = *p ? p : NULL;
    }
    return false;
}

/* The media type of a Content-Type value, lower case ("text/plain" when
 * absent or empty). */
static void ct_type(const char *ct, char *out, size_t cap)
{
    size_t n = 0;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t' &&
           ct[n] != '(')
        n++;
    if (!n) {
        copy_cut(out, cap, "text/plain", 10);
        return;
    }
    copy_cut(out, cap, ct, n);
    lower(out);
}

/* Keep buf (malloc'ed) to be freed by fb_parse(); false when the table is
 * full (buf is then freed). */
static bool keep(struct ctx *c, void *buf)
{
    if (c->ndecoded == FB_MAX_DECODED) {
        free(buf);
        return false;
    }
    c->decoded[c->ndecoded++] = buf;
    return true;
}

/* Value of a base64 digit, or -1. */
static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decode base64 (non-alphabet bytes skipped, stops at '='). */
static size_t b64_decode(struct span in, char *out)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < in.n; i++) {
        unsigned char ch = (unsigned char)in.p[i];
        if (ch == '=')
            break;
        int v = b64_val(ch);
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return o;
}

/* Value of a hex digit, or -1. */
static int hex_val(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decode quoted-printable (soft breaks joined, bad escapes kept). */
static size_t qp_decode(struct span in, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < in.n; i++) {
        char ch = in.p[i];
        if (ch != '=') {
            out[o++] = ch;
            continue;
        }
        if (i + 1 < in.n && in.p[i + 1] == '\n') {
            i += 1;
        } else if (i + 2 < in.n && in.p[i + 1] == '\r' &&
                   in.p[i + 2] == '\n') {
            i += 2;
        } else if (i + 2 < in.n && hex_val((unsigned char)in.p[i + 1]) >= 0 &&
                   hex_val((unsigned char)in.p[i + 2]) >= 0) {
            out[o++] = (char)(hex_val((unsigned char)in.p[i + 1]) * 16 +
                              hex_val((unsigned char)in.p[i + 2]));
            i += 2;
        } else {
            out[o++] = ch;
        }
    }
    return o;
}

/* The body of an entity with its Content-Transfer-Encoding undone. */
static int decode_body(struct ctx *c, struct span hdr, struct span body,
                       struct span *out)
{
    char cte[64];
    *out = body;
    if (!hdr_get(hdr, "Content-Transfer-Encoding", cte, sizeof cte))
        return 0;
    lower(cte);
    bool b64 = !strcmp(cte, "base64"), qp = !strcmp(cte, "quoted-printable");
    if ((!b64 && !qp) || !body.n)
        return 0;
    char *buf = malloc(body.n);
    if (!buf)
        return fail(c, "out of memory");
    if (!keep(c, buf))
        return fail(c, "too many encoded parts");
    *out = (struct span){ buf, b64 ? b64_decode(body, buf)
                                   : qp_decode(body, buf) };
    return 0;
}

/* The address in a header value: inside <...> when there is one, else the
 * first word; "" when it has no '@' or holds blanks.  Returns its length. */
static size_t addr_of(const char *v, char *out, size_t cap)
{
    const char *lt = strchr(v, '<'), *b = v, *e;
    out[0] = 0;
    if (lt) {
        b = lt + 1;
        e = strchr(b, '>');
        if (!e)
            return 0;
    } else {
        while (*b == ' ' || *b == '\t')
            b++;
        e = b;
        while (*e && *e != ' ' && *e != '\t' && *e != ',' && *e != ';')
            e++;
    }
    size_t n = (size_t)(e - b);
    if (!n || n >= cap || n > FB_ADDR_MAX || !memchr(b, '@', n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] <= ' ' || b[i] == '<' || b[i] == '>')
            return 0;
    memcpy(out, b, n);
    out[n] = 0;
    return n;
}

/* The address of a typed DSN field "rfc822; addr" (or a bare address). */
static void typed_addr(const char *v, char *out, size_t cap)
{
    const char *semi = strchr(v, ';');
    addr_of(semi ? semi + 1 : v, out, cap);
}

/* Whether addr looks like a sluice VERP address ("b-..."). */
static bool looks_verp(const char *addr)
{
    return (addr[0] == 'b' || addr[0] == 'B') && addr[1] == '-';
}

/* Add a VERP-looking address from field value v to list (no duplicates). */
static void add_verp(char (*list)[FB_ADDR_MAX + 1], size_t *n,
                     const char *v)
{
    char a[FB_ADDR_MAX + 1];
    if (*n == FB_MAX_VERP || !addr_of(v, a, sizeof a) || !looks_verp(a))
        return;
    for (size_t i = 0; i < *n; i++)
        if (!strcasecmp(list[i], a))
            return;
    memcpy(list[(*n)++], a, sizeof a);
}

/* Whether s is an enhanced status code d.d{1,3}.d{1,3}. */
static bool status_ok(const char *s)
{
    if (!(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        int d = 0;
        while (isdigit((unsigned char)*s) && d < 4) {
            s++;
            d++;
        }
        if (d < 1 || d > 3)
            return false;
        if (part == 0 && *s++ != '.')
            return false;
    }
    return *s == 0;
}

/* One per-recipient block of a message/delivery-status body. */
static void dsn_rcpt(struct fb_report *r, struct span blk)
{
    char v[FB_TEXT_MAX + 64];
    struct fb_rcpt *x = &r->rcpts[r->nrcpt];
    bool any = false;
    memset(x, 0, sizeof *x);
    if (hdr_get(blk, "Final-Recipient", v, sizeof v)) {
        typed_addr(v, x->final_rcpt, sizeof x->final_rcpt);
        any = true;
    }
    if (hdr_get(blk, "Original-Recipient", v, sizeof v))
        typed_addr(v, x->original_rcpt, sizeof x->original_rcpt);
    if (hdr_get(blk, "Action", v, sizeof v)) {
        size_t n = strcspn(v, " \t(");
        copy_cut(x->action, sizeof x->action, v, n);
        lower(x->action);
        any = true;
    }
    if (hdr_get(blk, "Status", v, sizeof v)) {
        size_t n = strcspn(v, " \t(");
        v[n] = 0;
        if (status_ok(v))
            copy_cut(x->status, sizeof x->status, v, n);
    }
    if (hdr_get(blk, "Diagnostic-Code", v, sizeof v)) {
        const char *semi = strchr(v, ';');
        const char *t = semi ? semi + 1 : v;
        while (*t == ' ')
            t++;
        copy_cut(x->diagnostic, sizeof x->diagnostic, t, strlen(t));
    }
    if (hdr_get(blk, "Remote-MTA", v, sizeof v)) {
        const char *semi = strchr(v, ';');
        const char *t = semi ? semi + 1 : v;
        while (*t == ' ')
            t++;
        copy_cut(x->remote_mta, sizeof x->remote_mta, t, strcspn(t, " \t"));
    }
    if (any)
        r->nrcpt++;
}

/* A message/delivery-status body: per-message block, then one block per
 * recipient, separated by empty lines. */
static int parse_dsn(struct ctx *c, struct span body)
{
    size_t off = 0, start = 0, blocks = 0;
    while (off <= body.n && c->r->nrcpt < FB_MAX_RCPTS) {
        size_t next = 0, len = off < body.n
            ? line_at(body.p + off, body.n - off, &next) : 0;
        bool end = off == body.n;
        if (end || len == 0) {
            if (off > start) {
                struct span blk = { body.p + start, off - start };
                if (blocks++ > 0)
                    dsn_rcpt(c->r, blk);
            }
            if (end)
                break;
            start = off + next;
        }
        off += next;
    }
    if (!c->r->nrcpt)
        return fail(c, "message/delivery-status without recipient fields");
    c->r->kind = FB_KIND_DSN;
    return 0;
}

/* A message/feedback-report body: one header-like block. */
static int parse_arf(struct ctx *c, struct span body)
{
    char v[FB_FIELD_MAX + 1];
    struct fb_report *r = c->r;
    if (!hdr_get(body, "Feedback-Type", v, sizeof v) || !v[0])
        return fail(c, "message/feedback-report without Feedback-Type");
    copy_cut(r->feedback_type, sizeof r->feedback_type, v,
             strcspn(v, " \t;("));
    lower(r->feedback_type);
    if (hdr_get(body, "Original-Rcpt-To", v, sizeof v))
        addr_of(v, r->arf_rcpt, sizeof r->arf_rcpt);
    if (hdr_get(body, "Original-Mail-From", v, sizeof v))
        add_verp(r->verp, &r->nverp, v);
    r->kind = FB_KIND_ARF;
    return 0;
}

/* The returned original headers. */
static void parse_original(struct ctx *c, struct span hdr)
{
    struct fb_report *r = c->r;
    char v[FB_FIELD_MAX + 1];
    if (r->have_original)
        return;
    r->have_original = 1;
    if (hdr_get(hdr, "Return-Path", v, sizeof v))
        add_verp(r->verp, &r->nverp, v);
    if (hdr_get(hdr, "Message-ID", v, sizeof v)) {
        const char *b = strchr(v, '<');
        b = b ? b + 1 : v;
        copy_cut(r->message_id, sizeof r->message_id, b, strcspn(b, "> \t"));
    }
    if (hdr_get(hdr, "Feedback-ID", v, sizeof v))
        copy_cut(r->feedback_id, sizeof r->feedback_id, v, strlen(v));
    if (hdr_get(hdr, "To", v, sizeof v))
        addr_of(v, r->orig_to, sizeof r->orig_to);
}

/* Cut a multipart body into its parts.  Returns the number of parts, or
 * -1 (reason set) for a missing or unclosed boundary. */
static int split_parts(struct ctx *c, struct span body, const char *bnd,
                       struct span *parts, size_t max)
{
    size_t bl = strlen(bnd), off = 0, np = 0, start = 0;
    bool open = false, closed = false;
    while (off < body.n && !closed) {
        size_t next, len = line_at(body.p + off, body.n - off, &next);
        const char *p = body.p + off;
        if (len >= bl + 2 && p[0] == '-' && p[1] == '-' &&
            !memcmp(p + 2, bnd, bl)) {
            size_t i = bl + 2;
            bool close = len >= i + 2 && p[i] == '-' && p[i + 1] == '-';
            if (close)
                i += 2;
            while (i < len && (p[i] == ' ' || p[i] == '\t'))
                i++;
            if (i == len) {
                if (open) {
                    /* the line end before a delimiter belongs to it */
                    size_t end = off;
                    if (end > start && body.p[end - 1] == '\n')
                        end--;
                    if (end > start && body.p[end - 1] == '\r')
                        end--;
                    if (np == max)
                        return fail(c, "too many MIME parts");
                    parts[np++] = (struct span){ body.p + start, end - start };
                }
                open = true;
                closed = close;
                start = off + next;
            }
        }
        off += next;
    }
    if (!open)
        return fail(c, "multipart body without its boundary");
    if (!closed)
        return fail(c, "truncated multipart: no closing boundary");
    return (int)np;
}

static int walk(struct ctx *c, struct span e, int depth);

/* A multipart/report entity body with its boundary and report type. */
static int parse_report(struct ctx *c, struct span body, const char *bnd,
                        const char *rtype, int depth)
{
    struct span *parts = malloc(FB_MAX_PARTS * sizeof *parts);
    char ct[CT_MAX], type[128];
    if (!parts)
        return fail(c, "out of memory");
    int np = split_parts(c, body, bnd, parts, FB_MAX_PARTS), rc = 0;
    bool dsn = !strcasecmp(rtype, "delivery-status"),
         arf = !strcasecmp(rtype, "feedback-report");
    if (np >= 0 && !dsn && !arf) {
        char why[FB_REASON_MAX];
        size_t n = strlen(rtype) > 60 ? 60 : strlen(rtype);
        memcpy(why, "report-type not handled: ", 25);
        memcpy(why + 25, rtype, n);
        why[25 + n] = 0;
        rc = fail(c, why[25] ? why : "multipart/report without report-type");
    }
    for (int i = 0; np > 0 && !rc && i < np; i++) {
        struct span h, b, d;
        split_entity(parts[i], &h, &b);
        if (!hdr_get(h, "Content-Type", ct, sizeof ct))
            ct[0] = 0;
        ct_type(ct, type, sizeof type);
        if ((rc = decode_body(c, h, b, &d)))
            break;
        if (dsn && (!strcmp(type, "message/delivery-status") ||
                    !strcmp(type, "message/global-delivery-status"))) {
            if (c->r->kind == FB_KIND_NONE)
                rc = parse_dsn(c, d);
        } else if (arf && !strcmp(type, "message/feedback-report")) {
            if (c->r->kind == FB_KIND_NONE)
                rc = parse_arf(c, d);
        } else if (!strcmp(type, "message/rfc822") ||
                   !strcmp(type, "message/global")) {
            struct span oh, ob;
            split_entity(d, &oh, &ob);
            parse_original(c, oh);
        } else if (!strcmp(type, "text/rfc822-headers") ||
                   !strcmp(type, "message/rfc822-headers") ||
                   !strcmp(type, "message/global-headers")) {
            struct span oh, ob;
            split_entity(d, &oh, &ob);
            parse_original(c, oh);
        }
    }
    free(parts);
    (void)depth;
    if (np < 0)
        return -1;
    if (!rc && c->r->kind == FB_KIND_NONE)
        rc = fail(c, dsn ? "multipart/report without a message/"
                           "delivery-status part"
                         : "multipart/report without a message/"
                           "feedback-report part");
    return rc;
}

/* The report's own envelope headers: VERP-looking recipients. */
static void envelope(struct ctx *c, struct span hdr)
{
    static const char *const names[] = { "To", "Delivered-To",
                                         "X-Original-To", "Envelope-To",
                                         "X-Envelope-To", "Return-Path" };
    char v[FB_FIELD_MAX + 1];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (hdr_get(hdr, names[i], v, sizeof v))
            add_verp(c->env_verp, &c->nenv, v);
}

/* Find and parse the report in entity e (depth levels down). */
static int walk(struct ctx *c, struct span e, int depth)
{
    struct span h, b;
    char ct[CT_MAX], type[128], bnd[BOUNDARY_MAX + 1], rtype[64];
    if (depth > FB_MAX_DEPTH)
        return fail(c, "MIME nesting too deep");
    split_entity(e, &h, &b);
    if (!c->top_done) {
        c->top_done = true;
        envelope(c, h);
    }
    if (!hdr_get(h, "Content-Type", ct, sizeof ct))
        ct[0] = 0;
    ct_type(ct, type, sizeof type);
    if (!strncmp(type, "multipart/", 10)) {
        if (!ct_param(ct, "boundary", bnd, sizeof bnd) || !bnd[0])
            return fail(c, "multipart without a boundary parameter");
        if (!strcmp(type, "multipart/report")) {
            if (!ct_param(ct, "report-type", rtype, sizeof rtype))
                rtype[0] = 0;
            return parse_report(c, b, bnd, rtype, depth);
        }
        struct span *parts = malloc(FB_MAX_PARTS * sizeof *parts);
        if (!parts)
            return fail(c, "out of memory");
        int np = split_parts(c, b, bnd, parts, FB_MAX_PARTS);
        int rc = np < 0 ? -1 : 1;
        for (int i = 0; i < np && rc == 1; i++)
            rc = walk(c, parts[i], depth + 1);
        free(parts);
        return rc;
    }
    if (!strcmp(type, "message/rfc822")) {
        struct span d;
        if (decode_body(c, h, b, &d))
            return -1;
        return walk(c, d, depth + 1);
    }
    return 1;   /* not here */
}

int fb_parse(const char *buf, size_t len, struct fb_report *r)
{
    struct ctx *c = calloc(1, sizeof *c);
    memset(r, 0, sizeof *r);
    if (!c) {
        memcpy(r->reason, "out of memory", 14);
        return -1;
    }
    c->r = r;
    int rc;
    if (len > FB_MAX_INPUT)
        rc = fail(c, "report larger than the 8 MiB cap");
    else if (!len)
        rc = fail(c, "empty input");
    else if ((rc = walk(c, (struct span){ buf, len }, 0)) == 1)
        rc = fail(c, "not a multipart/report (no DSN or ARF report in it)");
    /* the report's own envelope comes after the original's Return-Path
     * and the ARF Original-Mail-From */
    for (size_t i = 0; i < c->nenv; i++) {
        bool dup = false;
        for (size_t j = 0; j < r->nverp; j++)
            dup = dup || !strcasecmp(r->verp[j], c->env_verp[i]);
        if (!dup && r->nverp < FB_MAX_VERP)
            memcpy(r->verp[r->nverp++], c->env_verp[i], FB_ADDR_MAX + 1);
    }
    for (size_t i = 0; i < c->ndecoded; i++)
        free(c->decoded[i]);
    free(c);
    if (rc) {
        r->kind = rc < 0 ? r->kind : FB_KIND_NONE;
        return -1;
    }
    return 0;
}
