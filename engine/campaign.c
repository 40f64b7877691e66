/*
 * campaign.c - campaign mail made at send time: the template compiled once
 * per campaign, rendered per recipient from the contact's fields, checked
 * against the suppression list, signed and put in wire form.
 *
 * DESCRIPTION
 *   Runs on the worker threads.  The first recipient of a campaign compiles
 *   its template (campaign record, the account's header and footer, the
 *   spool's token secret) into a cache shared by the workers under a mutex;
 *   every later recipient only fetches its contact (one read transaction),
 *   looks the address up in its account's suppression list, renders and
 *   signs.  A queued recipient is therefore a small row, never a stored
 *   message.
 *
 * DIAGNOSTICS
 *   A suppressed address gives ENGINE_E_SUPPRESSED and a contact deleted
 *   since the send ENGINE_E_GONE: both end the delivery without sending.
 *   A campaign that cannot be read or compiled gives its error with the
 *   reason in words; the delivery is deferred and tried again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "engine.h"
#include "queue_admin.h"
#include "queue_campaign.h"
#include "render.h"
#include "signer.h"

#define TPL_CACHE_MAX 256     /* campaigns compiled at once */

struct tpl {
    uint64_t campaign;
    uint32_t account;
    uint32_t suppression_owner;
    struct render_tpl *rt;
    uint64_t used;            /* for eviction: last use tick */
    unsigned refs;            /* workers rendering with it now */
    bool private;             /* not in the cache: freed by tpl_put */
};

struct tpl_cache {
    pthread_mutex_t lock;
    struct tpl v[TPL_CACHE_MAX];
    size_t n;
    uint64_t tick;
};

static struct tpl_cache cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Compile campaign id into t; why says what failed. */
static int tpl_load(struct engine *e, uint64_t id, struct tpl *t, char *why,
                    size_t whylen)
{
    struct queue_campaign c;
    struct queue_account a;
    unsigned char secret[32];
    int rc = queue_campaign_get(e->q, id, &c);
    if (rc) {
        snprintf(why, whylen, "campaign %llu cannot be read: %s",
                 (unsigned long long)id, queue_strerror(rc));
        return rc;
    }
    if ((rc = queue_account_get(e->q, c.account, &a)) ||
        (rc = queue_token_secret(e->q, secret))) {
        snprintf(why, whylen, "campaign %llu: account %u or the token secret "
                 "cannot be read: %s", (unsigned long long)id, c.account,
                 queue_strerror(rc));
        queue_campaign_clear(&c);
        return rc;
    }
    char host[300];
    snprintf(host, sizeof host, "%s", e->cfg.unsubscribe_host
                                      ? e->cfg.unsubscribe_host
                                      : e->cfg.ehlo_hostname);
    struct render_input in = {
        .campaign = c.id, .account = c.account, .list = c.list,
        .from = c.from, .reply_to = c.reply_to[0] ? c.reply_to : NULL,
        .subject = c.subject, .html = c.html ? c.html : "", .text = c.text,
        .header_html = a.header[0] ? a.header : NULL,
        .footer_html = a.footer[0] ? a.footer : NULL,
        .unsub_host = host,
        .bounce_domain = e->cfg.bounce_domain,
        .feedback_sender = e->cfg.feedback_sender,
        .secret = secret, .secret_len = sizeof secret,
    };
    char err[300] = "";
    rc = render_compile(&in, &t->rt, err, sizeof err);
    if (rc)
        snprintf(why, whylen, "campaign %llu template: %s",
                 (unsigned long long)id, err[0] ? err : render_strerror(rc));
    t->campaign = id;
    t->account = c.account;
    t->suppression_owner = a.suppression_owner ? a.suppression_owner
                                               : c.account;
    queue_campaign_clear(&c);
    return rc;
}

/* The compiled template of campaign id (compiled on first use), held
 * until tpl_put(). */
static struct tpl *tpl_get(struct engine *e, uint64_t id, char *why,
                           size_t whylen, int *err)
{
    pthread_mutex_lock(&cache.lock);
    cache.tick++;
    for (size_t i = 0; i < cache.n; i++)
        if (cache.v[i].campaign == id) {
            cache.v[i].used = cache.tick;
            cache.v[i].refs++;
            pthread_mutex_unlock(&cache.lock);
            return &cache.v[i];
        }
    pthread_mutex_unlock(&cache.lock);
    /* compile outside the lock; a race compiles twice, one copy is kept */
    struct tpl t = { 0 };
    if ((*err = tpl_load(e, id, &t, why, whylen)))
        return NULL;
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.n; i++)
        if (cache.v[i].campaign == id) {
            cache.v[i].refs++;
            pthread_mutex_unlock(&cache.lock);
            render_free(t.rt);
            return &cache.v[i];
        }
    size_t slot = cache.n;
    if (cache.n == TPL_CACHE_MAX) {
        /* the least recently used campaign nobody renders with goes */
        slot = TPL_CACHE_MAX;
        for (size_t i = 0; i < cache.n; i++)
            if (!cache.v[i].refs &&
                (slot == TPL_CACHE_MAX || cache.v[i].used < cache.v[slot].used))
                slot = i;
        if (slot == TPL_CACHE_MAX) {
            /* every slot busy: this recipient gets a copy of its own */
            pthread_mutex_unlock(&cache.lock);
            struct tpl *own = malloc(sizeof *own);
            if (!own) {
                render_free(t.rt);
                *err = -ENOMEM;
                return NULL;
            }
            *own = t;
            own->private = true;
            return own;
        }
        render_free(cache.v[slot].rt);
    } else {
        cache.n++;
    }
    t.used = cache.tick;
    t.refs = 1;
    cache.v[slot] = t;
    pthread_mutex_unlock(&cache.lock);
    return &cache.v[slot];
}

/* Done rendering with t. */
static void tpl_put(struct tpl *t)
{
    if (t->private) {
        render_free(t->rt);
        free(t);
        return;
    }
    pthread_mutex_lock(&cache.lock);
    t->refs--;
    pthread_mutex_unlock(&cache.lock);
}

void engine_campaign_cache_free(void)
{
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.n; i++)
        render_free(cache.v[i].rt);
    cache.n = 0;
    pthread_mutex_unlock(&cache.lock);
}

struct contact_copy {
    char email[QUEUE_MAX_RCPT + 1];
    struct render_field f[QUEUE_MAX_FIELDS];
    size_t nf;
    char *buf;                /* names and values, one allocation */
    int err;
};

/* queue_contact_get() callback: copy the contact out of the transaction. */
static void take_contact(void *arg, const struct queue_contact *c)
{
    struct contact_copy *cc = arg;
    size_t need = 0;
    unsigned n = c->nvalues < QUEUE_MAX_FIELDS ? c->nvalues : QUEUE_MAX_FIELDS;
    for (unsigned i = 0; i < n; i++)
        need += strlen(c->names[i]) + 1 + c->lens[i] + 1;
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
    cc->nf = n;
}

static int render_one(struct engine *e, const struct signer *sg,
                      const struct tpl *t, struct body *b, char *why,
                      size_t whylen);

int engine_campaign_compose(struct engine *e, const struct signer *sg,
                            struct body *b, char *why, size_t whylen)
{
    int err = 0;
    struct tpl *t = tpl_get(e, b->campaign, why, whylen, &err);
    if (!t)
        return err;
    err = render_one(e, sg, t, b, why, whylen);
    tpl_put(t);
    return err;
}

/* Contact, suppression check, render and sign for one recipient. */
static int render_one(struct engine *e, const struct signer *sg,
                      const struct tpl *t, struct body *b, char *why,
                      size_t whylen)
{
    int err;
    struct contact_copy cc = { .err = 0 };
    err = queue_contact_get(e->q, b->contact, take_contact, &cc);
    if (err == QUEUE_ENOTFOUND) {
        snprintf(why, whylen, "contact %llu was deleted",
                 (unsigned long long)b->contact);
        return ENGINE_E_GONE;
    }
    if (err || (err = cc.err)) {
        free(cc.buf);
        snprintf(why, whylen, "contact %llu cannot be read: %s",
                 (unsigned long long)b->contact, queue_strerror(err));
        return err;
    }
    bool suppressed = false;
    if ((err = queue_suppressed(e->q, t->suppression_owner, cc.email,
                                &suppressed))) {
        free(cc.buf);
        snprintf(why, whylen, "suppression list cannot be read: %s",
                 queue_strerror(err));
        return err;
    }
    if (suppressed) {
        free(cc.buf);
        snprintf(why, whylen, "suppressed: %s is on the suppression list of "
                 "account %u", cc.email, t->suppression_owner);
        return ENGINE_E_SUPPRESSED;
    }
    struct render_contact rc = { .id = b->contact, .delivery = b->delivery,
                                 .email = cc.email, .fields = cc.f,
                                 .nfields = cc.nf };
    char *msg = NULL, mail_from[RENDER_MAILFROM_MAX];
    size_t len = 0;
    err = render_message(t->rt, &rc, &msg, &len, mail_from, sizeof mail_from);
    free(cc.buf);
    if (err) {
        snprintf(why, whylen, "rendering for contact %llu failed: %s",
                 (unsigned long long)b->contact, render_strerror(err));
        return err;
    }
    struct wire w, w7;
    err = signer_compose(sg, b->account, msg, len, &w, &w7, why, whylen);
    free(msg);
    if (err)
        return err;
    if (!(b->from = strdup(mail_from))) {
        free(w.data);
        free(w7.data);
        return -ENOMEM;
    }
    body_take_wire(b, &w, &w7);
    return 0;
}
