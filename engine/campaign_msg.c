/*
 * campaign_msg.c - the one builder of a campaign message (campaign_msg.h):
 * settings from sluiced.conf, compile, contact copy, render.
 *
 * DESCRIPTION
 *   Used by sluiced's workers (campaign.c) and by the `sluice campaign`
 *   commands, so that a preview is made by the same code, from the same
 *   records and settings, as the message sluiced sends.  Holds no state.
 *
 * DIAGNOSTICS
 *   Errors are returned (campaign_msg.h); nothing is printed.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_msg.h"
#include "config.h"

void campaign_msg_settings(const struct config *cfg,
                           struct campaign_msg_settings *s)
{
    memset(s, 0, sizeof *s);
    if (!cfg)
        return;
    s->unsub_host = cfg->unsubscribe_host ? cfg->unsubscribe_host
                                          : cfg->ehlo_hostname;
    s->bounce_domain = cfg->bounce_domain;
    s->feedback_sender = cfg->feedback_sender;
}

bool campaign_msg_from_domain(const char *from, char *out, size_t cap)
{
    const char *lt = strrchr(from, '<'), *a0 = from, *a1;
    if (lt) {
        a0 = lt + 1;
        a1 = strchr(a0, '>');
        if (!a1)
            return false;
    } else {
        a1 = from + strlen(from);
    }
    while (a0 < a1 && isspace((unsigned char)*a0))
        a0++;
    while (a1 > a0 && isspace((unsigned char)a1[-1]))
        a1--;
    const char *at = NULL;
    for (const char *p = a0; p < a1; p++)
        if (*p == '@')
            at = p;
    if (!at || at + 1 >= a1 || (size_t)(a1 - at - 1) >= cap)
        return false;
    size_t n = 0;
    for (const char *p = at + 1; p < a1; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    out[n] = 0;
    return true;
}

int campaign_msg_compile(struct queue *q, const struct queue_campaign *c,
                         const struct queue_account *a,
                         const struct campaign_msg_settings *s,
                         struct render_tpl **out, char *why, size_t whylen)
{
    unsigned char secret[QUEUE_TOKEN_SECRET];
    char host[300];
    *out = NULL;
    int rc = queue_token_secret(q, secret);
    if (rc) {
        snprintf(why, whylen, "the spool's token secret cannot be read: %s",
                 queue_strerror(rc));
        return rc;
    }
    if (s->unsub_host)
        snprintf(host, sizeof host, "%s", s->unsub_host);
    else if (!campaign_msg_from_domain(c->from, host, sizeof host))
        snprintf(host, sizeof host, "invalid");  /* the From fails first */
    struct render_input in = {
        .campaign = c->id, .account = c->account, .list = c->list,
        .from = c->from, .reply_to = c->reply_to[0] ? c->reply_to : NULL,
        .subject = c->subject, .html = c->html ? c->html : "",
        .text = c->text,
        .header_html = a && a->header[0] ? a->header : NULL,
        .footer_html = a && a->footer[0] ? a->footer : NULL,
        .unsub_host = host,
        .bounce_domain = s->bounce_domain,
        .feedback_sender = s->feedback_sender,
        .secret = secret, .secret_len = sizeof secret,
        .track = (c->track & QUEUE_TRACK_OPENS ? RENDER_TRACK_OPENS : 0) |
                 (c->track & QUEUE_TRACK_CLICKS ? RENDER_TRACK_CLICKS : 0),
    };
    char err[300] = "";
    rc = render_compile(&in, out, err, sizeof err);
    OPENSSL_cleanse(secret, sizeof secret);
    if (rc)
        snprintf(why, whylen, "%s", err[0] ? err : render_strerror(rc));
    return rc;
}

void campaign_msg_take_contact(void *arg, const struct queue_contact *c)
{
    struct campaign_msg_contact *cc = arg;
    size_t need = 0;
    unsigned n = c->nvalues < QUEUE_MAX_FIELDS ? c->nvalues : QUEUE_MAX_FIELDS;
    for (unsigned i = 0; i < n; i++)
        need += strlen(c->names[i]) + 1 + c->lens[i] + 1;
    cc->found = true;
    cc->id = c->id;
    snprintf(cc->email, sizeof cc->email, "%s", c->email);
    if (!(cc->buf = malloc(need + 1))) {
        cc->err = -ENOMEM;
        return;
    }
    char *p = cc->buf;
    for (unsigned i = 0; i < n; i++) {
        size_t nl = strlen(c->names[i]);
        memcpy(p, c->names[i], nl + 1);
        cc->f[i].name = p;
        p += nl + 1;
        memcpy(p, c->values[i], c->lens[i]);
        p[c->lens[i]] = 0;
        cc->f[i].value = p;
        cc->f[i].value_len = c->lens[i];
        p += c->lens[i] + 1;
    }
    cc->nfields = n;
}

void campaign_msg_contact_clear(struct campaign_msg_contact *cc)
{
    free(cc->buf);
    cc->buf = NULL;
    cc->nfields = 0;
}

int campaign_msg_render(const struct render_tpl *t,
                        const struct campaign_msg_contact *cc,
                        uint64_t delivery, char **msg, size_t *len,
                        char *mail_from, size_t mflen)
{
    struct render_contact rc = {
        .id = cc->id, .delivery = delivery, .email = cc->email,
        .fields = cc->f, .nfields = cc->nfields,
    };
    return render_message(t, &rc, msg, len, mail_from, mflen);
}
