/*
 * queue_ingress.h - who may put mail into the spool, and what mail: the
 * one home of the rules every way in (`sluice inject`, the SMTP listener,
 * the HTTP inject API) applies before queue_submit_message().
 *
 * DESCRIPTION
 *   An API key is the text "sk_<id>_<64 hex digits>": the id finds the
 *   key record, the SHA-256 of the 32 secret bytes is compared with the
 *   stored hash in constant time.  A revoked key and a disabled user are
 *   refused.  For sending, the key needs scope send or above, and its
 *   user role sender or above on the account (queue_role_effective: the
 *   master's role also counts on sub-accounts); the key acts with the
 *   lower of the two, and only on its own account or, for a key of the
 *   master, on the master's sub-accounts.  The account must be enabled.
 *
 *   A message must meet the spool's rules (queue_msg.h; a missing Date:
 *   or Message-ID: is added), and its From: address must be in a domain
 *   verified for the account it is sent as: the domain itself or a parent
 *   of it (DMARC relaxed alignment), never a bare top-level domain.  Mail
 *   of account 0 (no account: the spool's admins only) has no From: check.
 *
 * THREADS
 *   Read-only transactions of q: callable from any thread but the queue's
 *   writer.  No global state.
 *
 * DIAGNOSTICS
 *   0, QUEUE_EPERM (refused: the reason in why, one line for a person),
 *   QUEUE_ENOTFOUND (an unknown key or account), QUEUE_EINVAL (a message
 *   that breaks a rule, or text that is not an API key); other negative
 *   codes are spool errors (queue_strerror).  Nothing here audits:
 *   callers write the audit record with what they know of the session.
 */
#ifndef SLUICE_QUEUE_INGRESS_H
#define SLUICE_QUEUE_INGRESS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "queue_admin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QUEUE_EPERM (-EPERM)     /* refused: the reason in why */
#define QUEUE_EINVAL (-EINVAL)   /* the input breaks a rule */

#define QUEUE_APIKEY_SECRET 32   /* bytes behind the 64 hex digits */

/* Who a message is queued for, resolved once per SMTP session or HTTP
 * request. */
struct queue_ingress_who {
    uint32_t account;      /* the account the mail belongs to */
    uint32_t user;         /* the API key's user; 0 for a relay client */
    uint32_t key_id;       /* 0 when not by key */
    int role;              /* effective: lower of the user's role and the
                              key's scope (QUEUE_ROLE_*) */
    char account_name[QUEUE_MAX_ACCOUNT_NAME + 1];
    char user_name[QUEUE_MAX_USER_NAME + 1];
    char via[48];          /* for the audit trail: "apikey:7", "relay" */
};

/* Find the key of text key and its user: parse, hash, compare, not
 * revoked, user enabled.  k and u (either may be NULL) are filled as far
 * as known, even on a refusal: k->id once the text parsed (else 0),
 * u->name once the user was found (else "").  0, QUEUE_EINVAL (not an
 * API key), QUEUE_ENOTFOUND (unknown key or wrong secret), QUEUE_EPERM
 * (revoked, the user gone or disabled), with why; or a spool error. */
int queue_ingress_key_find(struct queue *q, const char *key,
                           struct queue_apikey *k, struct queue_user *u,
                           char *why, size_t cap);

/* Check API key text "sk_<id>_<64 hex>" for sending as account_name (NULL:
 * the key's own account): the rules above.  0 and *w filled, or
 * QUEUE_EPERM / QUEUE_ENOTFOUND (unknown key, or text that is no key) with
 * the reason in why; other negative codes are spool errors. */
int queue_ingress_key(struct queue *q, const char *key,
                      const char *account_name,
                      struct queue_ingress_who *w, char *why, size_t cap);

/* The account a relay client (smtp_relay_networks) sends as, by name (or
 * by id, digits): it must exist in the spool (QUEUE_ENOTFOUND) and be
 * enabled (QUEUE_EPERM).  w->user and w->key_id are 0, w->role SENDER,
 * w->via "relay". */
int queue_ingress_account(struct queue *q, const char *account_name,
                          struct queue_ingress_who *w, char *why,
                          size_t cap);

/* Check and complete msg for w: the spool's rules (queue_message_cleanup:
 * missing Date:/Message-ID: added, the Message-ID's right-hand side
 * msgid_host, else the From: domain, else "localhost.localdomain"), and
 * From: in a domain verified for w->account (or a parent: relaxed
 * alignment) unless w is NULL or w->account is 0 (q may then be NULL).
 * 0 with *clean a new buffer (free it) or NULL when msg is fine as it is;
 * QUEUE_EINVAL (the message breaks a rule) or QUEUE_EPERM (From: domain
 * not the account's) with the reason in why; -ENOMEM, -EIO,
 * QUEUE_ETOOBIG, or a spool error. */
int queue_ingress_message(struct queue *q,
                          const struct queue_ingress_who *w,
                          const char *msg, size_t len,
                          const char *msgid_host, char **clean,
                          size_t *clen, char *why, size_t cap);

/* The domain of the first From: header field of msg, lower case, into
 * out; false when there is none (or it has no address). */
bool queue_ingress_from_domain(const char *msg, size_t len, char *out,
                               size_t cap);

/* Whether domain, or a parent of it below the top level, is a verified
 * sending domain of account. */
bool queue_ingress_domain_verified(struct queue *q, const char *domain,
                                   uint32_t account);

#ifdef __cplusplus
}
#endif
#endif
