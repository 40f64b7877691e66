/*
 * fuzz_addr.c - libFuzzer target for address parsing: contact addresses
 * (tools/email_addr.c, libidn2), the spool's recipient check
 * (queue_check_rcpt, queue/records.c), From/Reply-To parsing and the
 * addr-spec check of the renderer (engine/render_hdr.c), and the VERP and
 * unsubscribe tokens and the Message-IDs read back from bounces and
 * clicks (engine/render_token.c).
 *
 * DESCRIPTION
 *   The input is one address as a CSV cell or a bounce would give it.
 *   Beyond memory safety, the parts must agree: an address the import
 *   accepts is one the spool and the renderer accept too (else a contact
 *   would be imported that no campaign can mail), fits TOOL_ADDR_MAX, and
 *   is its own normal form; a From the renderer parses gives an addr-spec
 *   it accepts and a name without controls; a token or Message-ID that
 *   verifies is the one the renderer makes for the ids (and nonce) it
 *   gives back.  A disagreement
 *   aborts (a crash for libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue.h"
#include "render_int.h"
#include "tool_lists.h"

#define IN_MAX 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The token key every seed token was made with (see README.md). */
static const unsigned char secret[] = "sluice-fuzz-secret-0123456789abc";

/* Stop with a message: the parts disagree about s. */
static void broken(const char *what, const char *s)
{
    fprintf(stderr, "fuzz_addr: %s: \"%.300s\"\n", what, s);
    abort();
}

/* An address the import takes must suit the spool and the renderer. */
static void check_normalized(const char *out)
{
    size_t n = strnlen(out, TOOL_ADDR_MAX + 1);
    if (n > TOOL_ADDR_MAX)
        broken("normal form over TOOL_ADDR_MAX", out);
    if (queue_check_rcpt(out))
        broken("the spool refuses an imported address", out);
    if (!render_hdr_addr_ok(out, n))
        broken("the renderer refuses an imported address", out);
    char again[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX];
    if (tool_addr_normalize(out, n, again, sizeof again, why))
        broken("the normal form is refused when given again", out);
    if (strcmp(again, out))
        broken("the normal form is not its own normal form", out);
}

/* A From header value the renderer parses gives a usable address. */
static void check_from(const char *s)
{
    char name[256], addr[TOOL_ADDR_MAX + 1];
    if (render_hdr_addr_parse(s, name, sizeof name, addr, sizeof addr))
        return;
    if (!render_hdr_addr_ok(addr, strlen(addr)))
        broken("render_hdr_addr_parse gave an address render_hdr_addr_ok "
               "refuses", s);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            broken("a display name with a control character", s);
}

/* A token that verifies is the one made for the ids it carries. */
static void check_tokens(const char *s)
{
    char tok[64];
    uint64_t delivery, campaign, contact;
    uint32_t account;
    if (!render_verp_decode(s, secret, sizeof secret - 1, &delivery,
                            &campaign)) {
        if (render_verp_token(secret, sizeof secret - 1, delivery, campaign,
                              tok, sizeof tok))
            broken("render_verp_token failed", s);
        const char *t = s + (s[0] == '<') + 2;    /* past "<b-" */
        if (strncasecmp(t, tok, RENDER_VERP_TOKEN_LEN))
            broken("a VERP token verified that is not the canonical one", s);
    }
    if (!render_unsub_decode(s, secret, sizeof secret - 1, &account,
                             &campaign, &contact)) {
        if (render_unsub_token(secret, sizeof secret - 1, account, campaign,
                               contact, tok, sizeof tok))
            broken("render_unsub_token failed", s);
        const char *t = s + (s[0] == '<');
        if (!strncasecmp(t, "unsub-", 6))
            t += 6;
        if (strncasecmp(t, tok, RENDER_UNSUB_TOKEN_LEN))
            broken("an unsubscribe token verified that is not the "
                   "canonical one", s);
    }
}

/* A Message-ID that verifies is the one made for its ids and nonce. */
static void check_msgid(const char *s)
{
    char left[RENDER_MSGID_LEFT_MAX + 1];
    uint64_t campaign, delivery, nonce = 0;
    if (render_msgid_decode(s, secret, sizeof secret - 1, &campaign,
                            &delivery))
        return;
    /* CAMPAIGN.DELIVERY.NONCE.MAC: the nonce's 13 base32 characters */
    const char *p = strchr(strchr(s, '.') + 1, '.') + 1;
    for (int i = 0; i < 13; i++) {
        const char *a = "abcdefghijklmnopqrstuvwxyz234567";
        const char *c = p[i] ? strchr(a, p[i] | 0x20) : NULL;
        if (!c)
            broken("a verified Message-ID with a bad nonce", s);
        uint64_t v = (uint64_t)(c - a);
        /* 12 x 5 bits, then 4 and the one padding bit */
        nonce = i < 12 ? nonce << 5 | v : nonce << 4 | v >> 1;
    }
    if (render_msgid(secret, sizeof secret - 1, campaign, delivery, nonce,
                     left, sizeof left))
        broken("render_msgid failed", s);
    const char *t = s + (s[0] == '<');
    size_t n = strlen(left);
    if (strncasecmp(t, left, n) || t[n] != '@')
        broken("a Message-ID verified that is not the canonical one", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > IN_MAX)
        return 0;
    char out[TOOL_ADDR_MAX + 1], why[TOOL_WHY_MAX];
    /* as a CSV cell gives it: exactly size bytes, no NUL after them */
    char *cell = malloc(size ? size : 1);
    if (!cell)
        return 0;
    memcpy(cell, data, size);
    int rc = tool_addr_normalize(cell, size, out, sizeof out, why);
    free(cell);
    if (rc == 0)
        check_normalized(out);
    else if (!memchr(why, 0, TOOL_WHY_MAX) || !why[0])
        broken("a refusal without a reason", "");

    /* as a C string: the spool's check, From parsing, tokens */
    char s[IN_MAX + 1];
    memcpy(s, data, size);
    s[size] = 0;
    (void)queue_check_rcpt(s);
    check_from(s);
    check_tokens(s);
    check_msgid(s);
    return 0;
}
