/*
 * render.h - campaign messages: templates compiled once, rendered per
 * recipient into complete RFC 5322 messages.
 *
 * DESCRIPTION
 *   render_compile() turns a campaign's subject, html and text templates,
 *   the sub-account's header and footer, the From and the unsubscribe and
 *   bounce settings into a read-only struct render_tpl.  render_message()
 *   then makes one recipient's message from it in a single pass into one
 *   growing buffer: headers (From, To, Subject, Date, Message-ID,
 *   MIME-Version, Reply-To, List-Unsubscribe, List-Unsubscribe-Post,
 *   Feedback-ID) and a multipart/alternative body, text/plain then
 *   text/html, both UTF-8 in quoted-printable.  The output is 7-bit ASCII,
 *   every line ends in CRLF and none is longer than 998 octets.
 *
 * TEMPLATE SYNTAX
 *   {{name}} and {{name|default}}, with blanks (space, tab, CR, LF) allowed
 *   around name and default: {{ first_name | there }}.  A name is 1..64 of
 *   [A-Za-z0-9_.-] and matches the contact's field names without regard to
 *   case; "email" is always the contact's address and "unsubscribe_url" the
 *   one-click https link (both usable in every part, header and footer).
 *   A default runs to the closing "}}" (so it cannot contain "}}") and is
 *   treated exactly like a value.  A field the contact lacks, or has empty,
 *   renders as its default, or as nothing.  "{{{{" writes a literal "{{";
 *   "}}" outside a tag is plain text.  An unterminated "{{", an empty or
 *   bad name is a compile error naming the part, line and column.
 *
 * VALUES
 *   Subject: the merged subject has CR, LF, TAB, other controls, U+0085,
 *   U+2028 and U+2029 turned into spaces, NUL dropped, invalid UTF-8
 *   replaced by U+FFFD, blank runs collapsed to one space, ends trimmed,
 *   and is cut (at a character) to RENDER_SUBJECT_MAX bytes.  It is written
 *   as-is, folded at blanks, when it is printable ASCII without "=?" and
 *   no word is too long to fold; else as RFC 2047 UTF-8 encoded words (Q
 *   or B, whichever is shorter), each at most 75 characters and on its
 *   own line, so no Subject line exceeds 78 characters.  Values cannot add a
 *   header line: every header the renderer writes is built from cleaned
 *   text.  html part: values and defaults are HTML-escaped (& < > " ').
 *   text part: values go in as they are, NUL dropped, lone CR or LF made a
 *   line break.
 *
 * MESSAGE
 *   Date, From, Reply-To, To, Subject, Message-ID, List-Unsubscribe,
 *   List-Unsubscribe-Post, Feedback-ID (CAMPAIGN:ACCOUNT:LIST:SENDER),
 *   MIME-Version, Content-Type.  Message-ID is
 *   <CAMPAIGN.DELIVERY.NONCE.MAC@from-domain>: NONCE 64 bits (13 base32
 *   characters) from a per-thread generator, so that every render differs
 *   (a retry, a repeat after a crash, each `campaign test`), and MAC an
 *   80-bit HMAC of the ids and the nonce (see TOKENS): only the holder of
 *   the secret can make a Message-ID that render_msgid_decode() accepts.
 *   The boundary is "=_NONCE.DELIVERY": quoted-printable output never
 *   holds "=_", so it
 *   cannot occur in a part.  From and Reply-To names are quoted when they
 *   hold specials and RFC 2047 encoded when not ASCII.  The contact's email
 *   must be an ASCII addr-spec (no SMTPUTF8, IDNs in A-label form).
 *
 * HEADER AND FOOTER
 *   header_html goes right after the <body ...> opening tag, else at the
 *   start of the html; footer_html right before the last </body>, else at
 *   the end.  header_text and footer_text start and end the text part.  A
 *   missing text variant is derived from the html one, as the text part is
 *   derived from the html when no text template is given: tags stripped,
 *   head/script/style dropped, blocks on their own lines, common entities
 *   decoded, links kept as "text (url)".  The derivation is done once, at
 *   compile time, on the template (merge tags survive it).
 *
 * TOKENS
 *   Both tokens are lowercase RFC 4648 base32 without padding (mail
 *   systems may change the case of a local part; decoding ignores case)
 *   of  version byte | ids (big-endian) | first 10 bytes (80 bits) of
 *   HMAC-SHA256(secret, label | version | ids), label "sluice-verp" or
 *   "sluice-unsub" so a token of one kind is never valid as the other.
 *     VERP:  b-TOKEN@BOUNCE_DOMAIN, ids = delivery(8) campaign(8);
 *            44 characters, local part 46 octets.
 *     unsub: ids = account(4) campaign(8) contact(8); 50 characters, used
 *            as <mailto:unsub-TOKEN@DOMAIN> (local part 56 octets) and
 *            <https://HOST/u/TOKEN>.
 *   The Message-ID's MAC is the same kind of tag without the ids in it
 *   (they stand before it): base32 of the first 10 bytes of
 *   HMAC-SHA256(secret, "sluice-msgid" | version | campaign(8) |
 *   delivery(8) | nonce(8)), 16 characters.
 *
 * TRACKING
 *   With track set (RENDER_TRACK_OPENS, RENDER_TRACK_CLICKS: a campaign's
 *   opt-in), the html part -- and only it: the text part is left as
 *   written, so a plain-text reader sees the real addresses and no open
 *   is measured there -- changes at compile and render time
 *   (render_track.c):
 *     clicks  the href of each <a> whose value starts with http:// or
 *             https:// or with a merge field becomes
 *             https://HOST/c/TOKEN (HOST: unsub_host), when the URL as
 *             rendered for the recipient is http(s), not on HOST's host,
 *             has no control characters and is at most
 *             RENDER_LINK_URL_MAX bytes; other links (mailto:, tel:,
 *             anchors, {{unsubscribe_url}}, links to HOST) stay as they
 *             are.  The link's number (document order of the marked
 *             links, header and footer included) and a check of its
 *             template text are in the token; the URL is not: a click
 *             finds it again by rendering that link for the contact
 *             (render_track_link()).
 *     opens   <img src="https://HOST/o/TOKEN" width="1" height="1"
 *             alt="" style="..."> right before the last </body>, else at
 *             the end of the part.
 *   Tokens are made as those of TOKENS below, labels "sluice-open" and
 *   "sluice-click": open ids = campaign(8) delivery(8) contact(8), 56
 *   characters; click ids = the same, link(2) check(4), 66 characters.
 *
 * OWNERSHIP
 *   render_compile() copies everything it needs from its input; the input
 *   may be freed after it returns.  A struct render_tpl is read-only after
 *   compile: render_message() may be called from several threads at once
 *   with the same template.  render_message()'s message is malloc'ed and
 *   the caller frees it.  render_free(NULL) is a no-op.
 *
 * DIAGNOSTICS
 *   Functions return 0 or a negative code: -ENOMEM, -ENOSPC (a caller's
 *   buffer is too small), or RENDER_E_* below; render_strerror() names
 *   any of them.  render_compile() also writes a one-line reason to err.
 */
#ifndef SLUICE_RENDER_H
#define SLUICE_RENDER_H

#include <stddef.h>
#include <stdint.h>

#define RENDER_E_SYNTAX  (-31300) /* template malformed (err says where) */
#define RENDER_E_ARG     (-31301) /* bad input: address, domain, secret */
#define RENDER_E_TOOBIG  (-31302) /* template, value or message over a cap */
#define RENDER_E_ADDR    (-31303) /* the contact's email is not usable */
#define RENDER_E_TOKEN   (-31304) /* not a sluice token: wrong form or length */
#define RENDER_E_FORGED  (-31305) /* well-formed token, authentication failed */
#define RENDER_E_CRYPTO  (-31306) /* OpenSSL failed */

#define RENDER_PART_MAX     (4u << 20)  /* bytes of one template part */
#define RENDER_HF_MAX       (64u << 10) /* bytes of a header or footer */
#define RENDER_TAGS_MAX     20000       /* merge tags in all parts together */
#define RENDER_SLOTS_MAX    128         /* distinct field names */
#define RENDER_NAME_MAX     64          /* bytes of a field name */
#define RENDER_DEFAULT_MAX  1024        /* bytes of a default */
#define RENDER_SUBJECT_MAX  2048        /* bytes of a merged subject (cut) */
#define RENDER_MSG_MAX      (24u << 20) /* bytes of a rendered message */
#define RENDER_SECRET_MIN   16          /* bytes of the token secret */
#define RENDER_MAILFROM_MAX 320         /* mail_from buffer that always fits */
#define RENDER_VERP_TOKEN_LEN  44
#define RENDER_UNSUB_TOKEN_LEN 50
#define RENDER_MSGID_MAC_LEN   16       /* the MAC of a Message-ID */
#define RENDER_MSGID_LEFT_MAX  (20 + 1 + 20 + 1 + 13 + 1 + 16)
#define RENDER_PREVIEW_DELIVERY 0       /* delivery id used by render_preview */
#define RENDER_TRACK_OPENS     1        /* render_input.track bits */
#define RENDER_TRACK_CLICKS    2
#define RENDER_OPEN_TOKEN_LEN  56
#define RENDER_CLICK_TOKEN_LEN 66
#define RENDER_LINKS_MAX       10000    /* tracked links of one html part */
#define RENDER_LINK_URL_MAX    2048     /* bytes of a tracked link's URL */

/* What a campaign's messages are made from; copied by render_compile(). */
struct render_input {
    uint64_t campaign;
    uint32_t account;
    uint64_t list;
    const char *from;            /* "Name <addr@domain>", "<addr>" or addr;
                                    the name may be UTF-8 */
    const char *reply_to;        /* same forms, or NULL */
    const char *subject, *html;  /* required (may be "") */
    const char *text;            /* or NULL: derived from html */
    const char *header_html, *footer_html;  /* or NULL */
    const char *header_text, *footer_text;  /* or NULL: derived from html */
    const char *unsub_host;      /* required: host[:port] of https://HOST/u/T */
    const char *unsub_mail_domain; /* mailto:unsub-T@DOMAIN; NULL: from's */
    const char *bounce_domain;   /* VERP domain; NULL: from's domain */
    const char *feedback_sender; /* last Feedback-ID field; NULL: "sluice" */
    const unsigned char *secret; /* per-spool token key, >= 16 bytes */
    size_t secret_len;
    unsigned track;              /* RENDER_TRACK_* bits; 0: none */
};

struct render_tpl;

/* One merge field of a contact: name NUL-terminated, value UTF-8 of
 * value_len bytes, or NUL-terminated when value_len is 0 (designated
 * initialisers may leave it out).  NUL bytes in a value are dropped. */
struct render_field {
    const char *name, *value;
    size_t value_len;
};

/* One recipient: only read during the call. */
struct render_contact {
    uint64_t id;            /* contact id (in the unsubscribe token) */
    uint64_t delivery;      /* delivery id (VERP token, Message-ID) */
    const char *email;      /* ASCII addr-spec: local@domain */
    const struct render_field *fields;
    size_t nfields;
};

/* Compile a campaign; *out is set on success.  err (may be NULL) gets the
 * reason for a failure, such as "html: line 3, column 7: unterminated {{". */
int render_compile(const struct render_input *in, struct render_tpl **out,
                   char *err, size_t errlen);

/* Free a compiled template; NULL is fine. */
void render_free(struct render_tpl *t);

/* Render one recipient's message: *out (malloc'ed, *len bytes, also
 * NUL-terminated) is the RFC 5322 message with CRLF line ends; mail_from
 * (mflen >= RENDER_MAILFROM_MAX always suffices) gets the envelope sender
 * b-TOKEN@BOUNCE_DOMAIN.  Thread-safe for a shared template. */
int render_message(const struct render_tpl *t, const struct render_contact *c,
                   char **out, size_t *len, char *mail_from, size_t mflen);

/* render_message() with c's delivery replaced by RENDER_PREVIEW_DELIVERY,
 * for `sluice campaign preview`. */
int render_preview(const struct render_tpl *t, const struct render_contact *c,
                   char **out, size_t *len, char *mail_from, size_t mflen);

/* The VERP token of (delivery, campaign): RENDER_VERP_TOKEN_LEN characters
 * and a NUL into tok[toklen]. */
int render_verp_token(const unsigned char *secret, size_t secret_len,
                      uint64_t delivery, uint64_t campaign, char *tok,
                      size_t toklen);

/* Check a bounce address "b-TOKEN@domain" (also "b-TOKEN", with or without
 * <>; case ignored) and give back the ids in it.  RENDER_E_TOKEN if it
 * does not have the form of one of ours (b- and RENDER_VERP_TOKEN_LEN
 * base32 characters), RENDER_E_FORGED if it has and does not verify
 * (version, padding bits or HMAC). */
int render_verp_decode(const char *addr, const unsigned char *secret,
                       size_t secret_len, uint64_t *delivery,
                       uint64_t *campaign);

/* The unsubscribe token of (account, campaign, contact). */
int render_unsub_token(const unsigned char *secret, size_t secret_len,
                       uint32_t account, uint64_t campaign, uint64_t contact,
                       char *tok, size_t toklen);

/* Check an unsubscribe token: TOKEN, or the mailto form unsub-TOKEN[@dom]
 * (case ignored), and give back its ids.  Errors as render_verp_decode(). */
int render_unsub_decode(const char *token, const unsigned char *secret,
                        size_t secret_len, uint32_t *account,
                        uint64_t *campaign, uint64_t *contact);

/* The left part "CAMPAIGN.DELIVERY.NONCE.MAC" of the Message-ID of
 * (campaign, delivery) with the given nonce, as render_message() makes it
 * (it draws the nonce at random), NUL-terminated into out[outlen]. */
int render_msgid(const unsigned char *secret, size_t secret_len,
                 uint64_t campaign, uint64_t delivery, uint64_t nonce,
                 char *out, size_t outlen);

/* Check a Message-ID "CAMPAIGN.DELIVERY.NONCE.MAC@domain" (with or without
 * <>; base32 case ignored) and give back its ids.  RENDER_E_TOKEN if it
 * does not have that form (ids in canonical decimal, NONCE 13 and MAC 16
 * base32 characters; the Message-IDs of sluice before the MAC ended at
 * the nonce), RENDER_E_FORGED if it has and does not verify (padding bits
 * or MAC). */
int render_msgid_decode(const char *msgid, const unsigned char *secret,
                        size_t secret_len, uint64_t *campaign,
                        uint64_t *delivery);

/* Check an open token (TRACKING) and give back its ids.  Errors as
 * render_verp_decode(). */
int render_open_decode(const char *token, const unsigned char *secret,
                       size_t secret_len, uint64_t *campaign,
                       uint64_t *delivery, uint64_t *contact);

/* Check a click token and give back its ids, link number and check. */
int render_click_decode(const char *token, const unsigned char *secret,
                        size_t secret_len, uint64_t *campaign,
                        uint64_t *delivery, uint64_t *contact,
                        unsigned *link, uint32_t *check);

/* The URL of tracked link `link` of t's html part as rendered for c,
 * for the redirect of a click: the link whose check is `check` (its
 * number first, then any other with that check, so a link renumbered by
 * a changed header is still found), and only while it passes the rule a
 * rewritten link passes.  Written NUL-terminated into url[cap] with
 * spaces, controls, non-ASCII and a few unsafe characters %-escaped.
 * -ENOENT when there is no such link, -ENOSPC when cap is too small. */
int render_track_link(const struct render_tpl *t,
                      const struct render_contact *c, unsigned link,
                      uint32_t check, char *url, size_t cap);

/* URL u[0..n) %-escaped for a Location header into out[cap] (NUL
 * terminated); -ENOSPC when it does not fit. */
int render_track_location(const char *u, size_t n, char *out, size_t cap);

/* A message for any code returned above (and for -errno values). */
const char *render_strerror(int code);

#endif
