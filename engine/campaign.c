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
 *   message.  Compiling, the contact copy and rendering are the shared
 *   builder's (campaign_msg.c), the one `sluice campaign preview` uses.
 *
 *   Shape: engine_campaign_compose() is one recipient's pipeline, each
 *   step a call to the module that owns it.  Two returns are honest: the
 *   template is held for the render and given back after it (tpl_put(),
 *   the end of a get/use/put bracket; a template compiled for this
 *   recipient alone is freed there, render.c), and campaign_msg.c is
 *   entered twice, to compile on the campaign's first use and to render
 *   once the contact, which needs the compiled suppression owner, is
 *   read.
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

#include "campaign_msg.h"
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

/* Compile campaign id into t with the shared builder (campaign_msg.c);
 * why says what failed. */
static int tpl_load(struct engine *e, uint64_t id, struct tpl *t, char *why,
                    size_t whylen)
{
    struct queue_campaign c;
    struct queue_account a;
    int rc = queue_campaign_get(e->q, id, &c);
    if (rc) {
        snprintf(why, whylen, "campaign %llu cannot be read: %s",
                 (unsigned long long)id, queue_strerror(rc));
        return rc;
    }
    if ((rc = queue_account_get(e->q, c.account, &a))) {
        snprintf(why, whylen, "campaign %llu: account %u cannot be read: %s",
                 (unsigned long long)id, c.account, queue_strerror(rc));
        queue_campaign_clear(&c);
        return rc;
    }
    struct campaign_msg_settings set;
    char err[300] = "";
    campaign_msg_settings(&e->cfg, &set);
    rc = campaign_msg_compile(e->q, &c, &a, &set, &t->rt, err, sizeof err);
    if (rc)
        snprintf(why, whylen, "campaign %llu template: %s",
                 (unsigned long long)id, err);
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

/* One recipient, in pipeline order: its campaign's template (compiled on
 * the first use), its contact and the suppression list (queue/), the
 * message (campaign_msg.c), signed into the body's wire forms (signer.c);
 * then the template is given back. */
int engine_campaign_compose(struct engine *e, const struct signer *sg,
                            struct body *b, char *why, size_t whylen)
{
    int err = 0;
    struct tpl *t = tpl_get(e, b->campaign, why, whylen, &err);
    if (!t)
        return err;
    struct campaign_msg_contact cc = { .err = 0 };
    bool suppressed = false;
    char *msg = NULL, mail_from[RENDER_MAILFROM_MAX];
    size_t len = 0;
    err = queue_contact_get(e->q, b->contact, campaign_msg_take_contact,
                            &cc);
    if (err == QUEUE_ENOTFOUND) {
        snprintf(why, whylen, "contact %llu was deleted",
                 (unsigned long long)b->contact);
        err = ENGINE_E_GONE;
    } else if (err || (err = cc.err)) {
        snprintf(why, whylen, "contact %llu cannot be read: %s",
                 (unsigned long long)b->contact, queue_strerror(err));
    } else if ((err = queue_suppressed(e->q, t->suppression_owner, cc.email,
                                       &suppressed))) {
        snprintf(why, whylen, "suppression list cannot be read: %s",
                 queue_strerror(err));
    } else if (suppressed) {
        snprintf(why, whylen, "suppressed: %s is on the suppression list of "
                 "account %u", cc.email, t->suppression_owner);
        err = ENGINE_E_SUPPRESSED;
    } else {
        cc.id = b->contact;
        if ((err = campaign_msg_render(t->rt, &cc, b->delivery, &msg, &len,
                                       mail_from, sizeof mail_from)))
            snprintf(why, whylen, "rendering for contact %llu failed: %s",
                     (unsigned long long)b->contact, render_strerror(err));
        else if (!(b->from = strdup(mail_from)))
            err = -ENOMEM;
        else
            err = signer_compose(sg, b->account, msg, len, &b->wire,
                                 &b->wire7, why, whylen);
        free(msg);
    }
    campaign_msg_contact_clear(&cc);
    tpl_put(t);
    return err;
}

/* The target of a click on tracked link `link` (with its check) in the
 * campaign's message to contact, through the compiled template cache:
 * the link rendered for the contact again (engine.h). */
int engine_campaign_link(struct engine *e, uint64_t campaign,
                         uint64_t contact, uint64_t delivery, unsigned link,
                         uint32_t check, char *url, size_t cap)
{
    char why[300];
    int err = 0;
    struct tpl *t = tpl_get(e, campaign, why, sizeof why, &err);
    if (!t)
        return err;
    struct campaign_msg_contact cc = { .err = 0 };
    err = queue_contact_get(e->q, contact, campaign_msg_take_contact, &cc);
    if (!err && !(err = cc.err)) {
        struct render_contact rc = {
            .id = contact, .delivery = delivery, .email = cc.email,
            .fields = cc.f, .nfields = cc.nfields,
        };
        err = render_track_link(t->rt, &rc, link, check, url, cap);
    }
    campaign_msg_contact_clear(&cc);
    tpl_put(t);
    return err;
}
