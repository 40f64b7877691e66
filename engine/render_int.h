/*
 * render_int.h - what the render_*.c files share inside engine/.
 *
 * DESCRIPTION
 *   A compiled template part is an array of segments over one text pool:
 *   literal text, or a merge tag (a field slot, the contact's email or the
 *   unsubscribe URL) with its default.  struct rbuf is the one growing,
 *   capped buffer everything is written into; struct render_qp is the
 *   state of the streaming quoted-printable encoder that body text goes
 *   through.  The names shared between these files carry the render_
 *   prefix (render_qp_*, render_hdr_*, render_seg_*).
 *   struct mackey is the HMAC key the tokens and Message-IDs are made with.
 *
 * OWNERSHIP
 *   Segments hold offsets into the pool, never pointers, so the pool may
 *   move while a template is being compiled.
 */
#ifndef SLUICE_RENDER_INT_H
#define SLUICE_RENDER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dkim_encode.h"
#include "render.h"

/* ---- growing buffer with a cap (render_qp.c) ---- */

struct rbuf {
    char *p;
    size_t len, cap, max;   /* max: RENDER_E_TOOBIG beyond it */
};

/* Make room for more bytes; -ENOMEM or RENDER_E_TOOBIG. */
int render_buf_reserve(struct rbuf *b, size_t more);
/* Append n bytes. */
int render_buf_put(struct rbuf *b, const void *s, size_t n);
/* Append a NUL-terminated string. */
int render_buf_puts(struct rbuf *b, const char *s);
/* Append an unsigned number in decimal. */
int render_buf_putu(struct rbuf *b, uint64_t v);

/* ---- quoted-printable body encoding (render_qp.c) ---- */

/* The state of dkim_qp_put() (dkim_encode.h) between pieces; zero it. */
struct render_qp {
    struct dkim_qp e;
};

/* Encode s[0..n) onto b; CR, LF and CRLF are line breaks, NUL dropped. */
int render_qp_put(struct rbuf *b, struct render_qp *q, const char *s, size_t n);
/* The same after HTML-escaping & < > " '. */
int render_qp_put_html(struct rbuf *b, struct render_qp *q, const char *s,
                       size_t n);
/* End the encoded text (a last blank is encoded); no line break added. */
int render_qp_end(struct rbuf *b, struct render_qp *q);

/* ---- templates (render_parse.c) ---- */

enum render_seg_kind {
    RENDER_SEG_LIT,        /* pool[off..off+len) */
    RENDER_SEG_FIELD,      /* contact field number slot; default in pool */
    RENDER_SEG_EMAIL,      /* the contact's address; default in pool */
    RENDER_SEG_UNSUB,      /* https://HOST/u/TOKEN; default in pool */
    /* tracking (render_track.c), html part only: */
    RENDER_SEG_LINK,       /* a tracked link's value starts: slot its
                              number, off its check */
    RENDER_SEG_LINK_END,   /* ... and ends */
    RENDER_SEG_PIXEL       /* the open pixel's <img> */
};

struct render_seg {
    uint32_t off, len;
    uint16_t kind, slot;
};

struct render_seglist {
    struct render_seg *v;
    size_t n, cap;
};

/* Compile state shared by the parser and the html-to-text derivation. */
struct tplc {
    struct rbuf pool;
    size_t slot_off[RENDER_SLOTS_MAX];  /* slot names (lowercase) in pool */
    size_t slot_len[RENDER_SLOTS_MAX];
    size_t nslots;
    size_t ntags;
    char *err;
    size_t errlen;
};

/* Parse template text src[0..n) of part `part` (for messages), appending
 * to out; RENDER_E_SYNTAX with the position in c->err. */
int render_tpl_parse(struct tplc *c, const char *part, const char *src,
                     size_t n, struct render_seglist *out);
/* Append a literal (copied into the pool), merging with a preceding one. */
int render_seg_lit(struct tplc *c, struct render_seglist *l, const char *s,
                   size_t n);
/* Append a copy of segment s. */
int render_seg_add(struct render_seglist *l, struct render_seg s);
/* Append all of src[from..to). */
int render_seg_append(struct render_seglist *l,
                      const struct render_seglist *src, size_t from,
                      size_t to);
/* Write a message into c->err. */
void render_tpl_error(struct tplc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Derive a plain-text template from an html one (render_text.c). */
int render_tpl_html_to_text(struct tplc *c,
                            const struct render_seglist *html,
                            struct render_seglist *out);

/* ---- opens and clicks (render_track.c) ---- */

/* Mark the links of a compiled html part and place the open pixel, as
 * track (RENDER_TRACK_*) asks; nothing for 0. */
int render_track_compile(struct tplc *c, struct render_seglist *html,
                         unsigned track);
/* Append the URL an HTML attribute value s[0..n) stands for. */
int render_track_unescape(struct rbuf *b, const char *s, size_t n);
/* May the URL u[0..n) be rewritten: http(s), a host, not our_host (a
 * host[:port]; compared without the port), no control characters, at
 * most RENDER_LINK_URL_MAX bytes? */
int render_track_url_ok(const char *u, size_t n, const char *our_host);

/* ---- headers (render_hdr.c) ---- */

/* Split "Name <addr>", "<addr>" or "addr"; both results NUL-terminated,
 * name unquoted.  RENDER_E_ARG when malformed or over a cap. */
int render_hdr_addr_parse(const char *s, char *name, size_t namecap, char *addr,
                   size_t addrcap);
/* Is a[0..n) an ASCII addr-spec (dot-atom local part @ host name)? */
int render_hdr_addr_ok(const char *a, size_t n);
/* Is d[0..n) a host name of LDH labels? */
int render_hdr_domain_ok(const char *d, size_t n);
/* Header text being cleaned (see render.h, VALUES) into out[0..cap). */
struct render_hclean {
    char *out;
    size_t len, cap;
    int blank;              /* a blank is pending (dropped at the end) */
    int full;               /* cap reached: the rest is cut */
};
/* Clean in[0..n) onto h: one piece of a merged header value. */
void render_hdr_clean(struct render_hclean *h, const char *in, size_t n);
/* Write clean text s[0..n) after a field name that ends at column *col:
 * plain words, a quoted string (phrase only) or RFC 2047 encoded words,
 * folded so lines stay within 78; *col is left at the end column. */
int render_hdr_text(struct rbuf *b, size_t *col, const char *s, size_t n,
             int phrase);
/* Append the address field "Field: Name <addr>\r\n" (name cleaned, quoted
 * or RFC 2047 encoded as needed, cut to RENDER_HDR_NAME_MAX bytes; no
 * name: "Field: addr\r\n").  addr is written as given: check it first. */
#define RENDER_HDR_NAME_MAX 256
int render_hdr_address(struct rbuf *b, const char *field, const char *name,
                       const char *addr);
/* Append "Date: ...\r\n" for time t (UTC). */
int render_hdr_date(struct rbuf *b, int64_t t);

/* ---- tokens (render_token.c) ---- */

/* HMAC-SHA256 keyed once: SHA-256 states after the ipad and opad blocks
 * (EVP_MD_CTX), only read (copied) after render_mackey_init(). */
struct mackey {
    struct evp_md_ctx_st *in, *out;
};

/* Key an HMAC with the token secret; RENDER_E_ARG for a secret NULL or
 * shorter than RENDER_SECRET_MIN, RENDER_E_CRYPTO if OpenSSL fails. */
int render_mackey_init(struct mackey *k, const unsigned char *secret,
                       size_t slen);
/* Release a key (also a failed or zeroed one). */
void render_mackey_free(struct mackey *k);
/* The VERP and unsubscribe tokens under key k (see render.h). */
int render_verp_keyed(const struct mackey *k, uint64_t delivery,
                      uint64_t campaign, char *tok, size_t toklen);
int render_unsub_keyed(const struct mackey *k, uint32_t account,
                       uint64_t campaign, uint64_t contact, char *tok,
                       size_t toklen);
/* The open and click tokens under key k (see render.h, TRACKING). */
int render_open_keyed(const struct mackey *k, uint64_t campaign,
                      uint64_t delivery, uint64_t contact, char *tok,
                      size_t toklen);
int render_click_keyed(const struct mackey *k, uint64_t campaign,
                       uint64_t delivery, uint64_t contact, unsigned link,
                       uint32_t check, char *tok, size_t toklen);
/* The left part CAMPAIGN.DELIVERY.NONCE.MAC of a Message-ID under key k
 * (see render.h), NUL-terminated; NONCE is MSGID_NONCE_LEN characters. */
int render_msgid_left(const struct mackey *k, uint64_t campaign,
                      uint64_t delivery, uint64_t nonce, char *out,
                      size_t outlen);
#define MSGID_NONCE_LEN 13

/* Lowercase base32 of in[0..n) into out (NUL-terminated); returns length. */
size_t render_b32_encode(const unsigned char *in, size_t n, char *out);

#endif
