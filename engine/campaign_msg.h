/*
 * campaign_msg.h - the one builder of a campaign message, shared by
 * sluiced (engine/campaign.c) and `sluice campaign preview|test|create`
 * (tools/cmd_campaign_render.c).
 *
 * DESCRIPTION
 *   campaign_msg_settings() takes from sluiced.conf what a message depends
 *   on (the unsubscribe host: unsubscribe_host, else ehlo_hostname; the
 *   bounce domain; the Feedback-ID sender).  campaign_msg_compile() compiles
 *   a campaign with its account's header and footer and the spool's token
 *   secret.  campaign_msg_take_contact() copies a contact out of its read
 *   transaction (at most QUEUE_MAX_FIELDS fields), and campaign_msg_render()
 *   makes the message of one delivery from the two.  Whatever calls these
 *   in the same order with the same records gets the same bytes, apart from
 *   what every render makes anew (Date, the Message-ID's nonce and MAC, the
 *   MIME boundary: render.h).
 *
 *   The library (sluice_campaign_msg) needs sluice_queue and sluice_render
 *   only: the tools link it without the engine.
 *
 * OWNERSHIP
 *   A struct campaign_msg_contact owns its field buffer until
 *   campaign_msg_contact_clear(); settings point into the struct config they
 *   came from.
 *
 * DIAGNOSTICS
 *   0 or a negative code: a queue code (queue_strerror), -ENOMEM, or a
 *   RENDER_E_* code (render_strerror); compile also writes the reason in
 *   words to why.
 */
#ifndef SLUICE_CAMPAIGN_MSG_H
#define SLUICE_CAMPAIGN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_admin.h"
#include "queue_campaign.h"
#include "render.h"

struct config;

/* What a campaign message takes from sluiced's configuration. */
struct campaign_msg_settings {
    const char *unsub_host;      /* https://HOST/u/...; NULL: From domain */
    const char *bounce_domain;   /* VERP domain; NULL: the From domain */
    const char *feedback_sender; /* Feedback-ID's last field; NULL: sluice */
};

/* sluiced's settings from cfg (NULL: no configuration, every setting
 * falls back to the From domain or "sluice"): the unsubscribe host is
 * unsubscribe_host, else ehlo_hostname. */
void campaign_msg_settings(const struct config *cfg,
                           struct campaign_msg_settings *s);

/* The lower-case domain of the address in a From value ("Name <a@d>",
 * "<a@d>" or "a@d") into out; false if there is none. */
bool campaign_msg_from_domain(const char *from, char *out, size_t cap);

/* Compile campaign c of account a (its header and footer; a may be NULL)
 * with the token secret of q into *out; c->track turns on opens and
 * clicks tracking (render.h, TRACKING).  why gets the reason on failure:
 * the renderer's ("html: line 3, column 7: ...") or the secret's. */
int campaign_msg_compile(struct queue *q, const struct queue_campaign *c,
                         const struct queue_account *a,
                         const struct campaign_msg_settings *s,
                         struct render_tpl **out, char *why, size_t whylen);

/* A contact copied out of its transaction, as the renderer wants it. */
struct campaign_msg_contact {
    bool found;                          /* the callback ran */
    int err;                             /* 0, or -ENOMEM from the copy */
    uint64_t id;
    char email[QUEUE_MAX_RCPT + 1];
    struct render_field f[QUEUE_MAX_FIELDS];
    size_t nfields;
    char *buf;                           /* names and values */
};

/* queue_contact_get() / queue_contact_find() callback: copy c into arg (a
 * struct campaign_msg_contact, zeroed), at most QUEUE_MAX_FIELDS fields. */
void campaign_msg_take_contact(void *arg, const struct queue_contact *c);

/* Free what the copy holds (the struct itself is the caller's). */
void campaign_msg_contact_clear(struct campaign_msg_contact *cc);

/* The message of delivery to cc: render_message() (*msg malloc'ed, CRLF
 * line ends; mail_from gets the VERP envelope sender). */
int campaign_msg_render(const struct render_tpl *t,
                        const struct campaign_msg_contact *cc,
                        uint64_t delivery, char **msg, size_t *len,
                        char *mail_from, size_t mflen);

#endif
