/*
 * signer.c - DKIM keys per verified sending domain, and the signing step of
 * composition (runs on the worker threads).
 *
 * DESCRIPTION
 *   signer_build() reads the verified sending domains of the spool (each
 *   with the key files its record names that sign at the time of the
 *   build: verified and not retired, queue_sdomain_key_signs(), each with
 *   its retire date) and every [account N] domains
 *   list of the configuration (keys found in the key store, dkim_store.h:
 *   ROOT/DOMAIN/SELECTOR.key, ROOT is dkim_keys, default SPOOL/dkim), keys
 *   sorted by selector.  The table is sorted by domain and never changes
 *   once built, so worker threads read it without locks.
 *
 *   signer_compose() checks the message against the spool's rules
 *   (queue_msg.h: no NUL byte, not empty, a parseable header with one
 *   From: address), finds the From: domain, walks up to the nearest domain
 *   in the table, and signs only if that domain belongs to the message's own
 *   account.  The message is first made safe to sign (dkim_prepare), then
 *   signed with every key of the domain whose retire date has not passed
 *   (checked per message, so a date passing between two rebuilds stops
 *   that key at once), then put in wire form with the
 *   signatures in front.  An 8-bit result gets a second, 7-bit form, signed
 *   on its own, for receivers without 8BITMIME.
 *
 * DIAGNOSTICS
 *   A key that dkim_key_load() refuses fails the whole build with the path
 *   and reason, so a bad key is found at start or reload, not per message;
 *   so does a .key file in the store whose name is no lower-case selector
 *   (the store's rule, dkim_selector_norm()).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compose.h"
#include "queue_admin.h"
#include "queue_msg.h"
#include "dkim_prepare.h"
#include "dkim_sign.h"
#include "dkim_store.h"
#include "metrics.h"
#include "signer.h"

struct signer_key {
    char *selector;
    struct dkim_key *key;
    int64_t retire_at;      /* unix s; 0: none (signs only before it) */
};

struct signer_domain {
    char *name;
    uint32_t account;
    unsigned nkeys;
    struct signer_key keys[SIGNER_MAX_KEYS];
};

struct signer_account {
    uint32_t id;
    bool allow_unsigned;
};

struct signer {
    unsigned refs;
    struct signer_domain *domains;   /* sorted by name */
    size_t ndomains, nkeys;
    struct signer_account *accounts; /* sorted by id */
    size_t naccounts;
    bool allow_unsigned;             /* accounts without a section */
    bool off;                        /* dkim_sign = no: send all unsigned */
    int64_t first_retire;            /* earliest retire date of a key, 0 */
};

static void domain_free(struct signer_domain *d)
{
    for (unsigned i = 0; i < d->nkeys; i++) {
        free(d->keys[i].selector);
        dkim_key_free(d->keys[i].key);
    }
    free(d->name);
}

static void signer_free(struct signer *s)
{
    for (size_t i = 0; i < s->ndomains; i++)
        domain_free(&s->domains[i]);
    free(s->domains);
    free(s->accounts);
    free(s);
}

struct signer *signer_ref(struct signer *s)
{
    if (s)
        s->refs++;
    return s;
}

void signer_unref(struct signer *s)
{
    if (s && !--s->refs)
        signer_free(s);
}

size_t signer_nkeys(const struct signer *s)
{
    return s ? s->nkeys : 0;
}

size_t signer_ndomains(const struct signer *s)
{
    return s ? s->ndomains : 0;
}

int64_t signer_first_retire(const struct signer *s)
{
    return s ? s->first_retire : 0;
}

void signer_say_retired(const struct signer *s, int64_t after, int64_t upto)
{
    for (size_t i = 0; s && i < s->ndomains; i++)
        for (unsigned k = 0; k < s->domains[i].nkeys; k++) {
            const struct signer_key *key = &s->domains[i].keys[k];
            if (key->retire_at > after && key->retire_at <= upto)
                fprintf(stderr, "sluiced: DKIM selector %s of %s retired "
                        "(its date passed): it signs no more\n",
                        key->selector, s->domains[i].name);
        }
}

/* Whether key k may sign at time now (its retire date not passed). */
static bool key_live(const struct signer_key *k, int64_t now)
{
    return !k->retire_at || now < k->retire_at;
}

/* Number of d's keys that may sign at time now. */
static unsigned live_keys(const struct signer_domain *d, int64_t now)
{
    unsigned n = 0;
    for (unsigned i = 0; i < d->nkeys; i++)
        n += key_live(&d->keys[i], now);
    return n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct signer_domain *)a)->name,
                  ((const struct signer_domain *)b)->name);
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const struct signer_account *)a)->id;
    uint32_t y = ((const struct signer_account *)b)->id;
    return x < y ? -1 : x > y;
}

/* Say why the key at path of domain d was refused.  from is where the
 * domain comes from: "FILE:LINE: [account N]" of the configuration, or
 * NULL for a verified domain of the spool.  dkim_key_load()'s reason names
 * the path and, for a key group or others may read, the chmod to run. */
static void key_refused(char *err, size_t errlen, const struct signer_domain *d,
                        const char *from, const char *path, int rc,
                        const char *why)
{
    const char *r = why[0] ? why : path, *sep = why[0] ? "" : ": ";
    const char *text = why[0] ? "" : dkim_strerror(rc);
    if (from)
        snprintf(err, errlen, "%s: DKIM key of %s: %s%s%s", from, d->name, r,
                 sep, text);
    else
        snprintf(err, errlen, "DKIM key of %s (verified in the spool): "
                 "%s%s%s", d->name, r, sep, text);
}

/* What the store scan of one domain reports to load_keys(). */
struct odd_ctx {
    char *err;
    size_t errlen;
};

/* dkim_store_scan() callback: a file the store would never make (an
 * invalid or upper-case selector) stops the build, naming it. */
static int odd_key(void *arg, const char *path, const char *why)
{
    struct odd_ctx *o = arg;
    snprintf(o->err, o->errlen, "DKIM key %s: %s", path, why);
    return -EINVAL;
}

/* Load every ROOT/DOMAIN/SELECTOR.key of d, a domain of the configuration
 * ("FILE:LINE: [account N]"), through the key store; none at all is
 * fine. */
static int load_keys(const char *root, struct signer_domain *d,
                     const char *from, char *err, size_t errlen)
{
    char path[4096];
    struct dkim_store_list l = { 0 };
    struct odd_ctx o = { err, errlen };
    int rc = dkim_store_path(path, sizeof path, root, d->name, NULL);
    if (rc) {
        snprintf(err, errlen, "dkim_keys: path too long for %s", d->name);
        return rc;
    }
    rc = dkim_store_scan(&l, root, d->name, odd_key, &o);
    if (rc && rc != -EINVAL)
        snprintf(err, errlen, "DKIM keys of %s: %s: %s", d->name, path,
                 strerror(-rc));
    if (!rc && l.n > SIGNER_MAX_KEYS) {
        snprintf(err, errlen, "DKIM keys of %s: more than %d in %s",
                 d->name, SIGNER_MAX_KEYS, path);
        rc = -E2BIG;
    }
    for (size_t i = 0; !rc && i < l.n; i++) {
        char kp[4096 + 256], why[600] = "";
        struct signer_key *k = &d->keys[d->nkeys];
        if ((rc = dkim_store_path(kp, sizeof kp, root, d->name,
                                  l.v[i].selector))) {
            snprintf(err, errlen, "dkim_keys: path too long for %s", d->name);
            break;
        }
        if ((rc = dkim_key_load(kp, &k->key, why, sizeof why))) {
            key_refused(err, errlen, d, from, kp, rc, why);
            break;
        }
        if (!(k->selector = strdup(l.v[i].selector))) {
            dkim_key_free(k->key);
            rc = -ENOMEM;
            break;
        }
        d->nkeys++;
    }
    dkim_store_list_free(&l);
    return rc;
}

/* Load one key file as selector sel of d, a verified domain of the spool,
 * signing until retire_at (0: no date). */
static int load_key(struct signer_domain *d, const char *sel, const char *path,
                    int64_t retire_at, char *err, size_t errlen)
{
    if (d->nkeys == SIGNER_MAX_KEYS) {
        snprintf(err, errlen, "DKIM keys of %s: more than %d", d->name,
                 SIGNER_MAX_KEYS);
        return -E2BIG;
    }
    char why[600] = "";
    struct signer_key *k = &d->keys[d->nkeys];
    int rc = dkim_key_load(path, &k->key, why, sizeof why);
    if (rc) {
        key_refused(err, errlen, d, NULL, path, rc, why);
        return rc;
    }
    if (!(k->selector = strdup(sel))) {
        dkim_key_free(k->key);
        return -ENOMEM;
    }
    k->retire_at = retire_at;
    d->nkeys++;
    return 0;
}

/* Note a loaded key's retire date in the table's earliest one. */
static void note_retire(struct signer *s, int64_t at)
{
    if (at && (!s->first_retire || at < s->first_retire))
        s->first_retire = at;
}

struct spool_ctx {
    struct signer *s;
    size_t cap;
    int64_t now;        /* unix s: the keys that sign at this time */
    int rc;
    char *err;
    size_t errlen;
};

/* Room for one more domain. */
static struct signer_domain *add_domain(struct signer *s, size_t *cap,
                                        const char *name, uint32_t account)
{
    if (s->ndomains == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct signer_domain *n = realloc(s->domains, ncap * sizeof *n);
        if (!n)
            return NULL;
        s->domains = n;
        *cap = ncap;
    }
    struct signer_domain *d = &s->domains[s->ndomains];
    memset(d, 0, sizeof *d);
    if (!(d->name = strdup(name)))
        return NULL;
    d->account = account;
    s->ndomains++;
    return d;
}

/* queue_sdomains() callback: a verified domain with its keys that sign
 * (pending and retired ones are not even read). */
static int take_sdomain(void *arg, const struct queue_sdomain *sd)
{
    struct spool_ctx *c = arg;
    if (!sd->verified)
        return 0;
    struct signer_domain *d = add_domain(c->s, &c->cap, sd->domain,
                                         sd->account);
    if (!d) {
        c->rc = -ENOMEM;
        return 1;
    }
    for (unsigned i = 0; i < sd->nsel && !c->rc; i++)
        if (queue_sdomain_key_signs(sd, i, c->now)) {
            c->rc = load_key(d, sd->sel[i].selector, sd->sel[i].key_path,
                             sd->sel[i].retire_at, c->err, c->errlen);
            note_retire(c->s, sd->sel[i].retire_at);
        }
    c->s->nkeys += d->nkeys;
    return c->rc != 0;
}

/* queue_accounts() callback: who may send unsigned. */
static int take_account(void *arg, const struct queue_account *a)
{
    struct spool_ctx *c = arg;
    struct signer *s = c->s;
    if (s->naccounts == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct signer_account *n = realloc(s->accounts, ncap * sizeof *n);
        if (!n) {
            c->rc = -ENOMEM;
            return 1;
        }
        s->accounts = n;
        c->cap = ncap;
    }
    s->accounts[s->naccounts++] = (struct signer_account){
        .id = a->id, .allow_unsigned = a->allow_unsigned };
    return 0;
}

int signer_build(const struct config *cfg, struct queue *q,
                 struct signer **out, char *err, size_t errlen)
{
    *out = NULL;
    struct signer *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->refs = 1;
    s->allow_unsigned = cfg->allow_unsigned;
    s->off = !cfg->dkim_sign;
    char dir[4096];
    if (cfg->dkim_keys)
        snprintf(dir, sizeof dir, "%s", cfg->dkim_keys);
    else
        dkim_store_root(dir, sizeof dir, cfg->spool ? cfg->spool : ".");
    struct spool_ctx c = { .s = s, .now = (int64_t)time(NULL), .err = err,
                           .errlen = errlen };
    long n = 0;
    if (q && (n = queue_sdomains(q, take_sdomain, &c)) < 0 && !c.rc) {
        snprintf(err, errlen, "cannot read the sending domains: %s",
                 queue_strerror((int)n));
        c.rc = (int)n;
    }
    size_t dcap = c.cap;
    int rc = c.rc;
    /* the configuration's domains and accounts */
    for (size_t i = 0; i < cfg->naccounts && !rc; i++) {
        const struct account_policy *a = &cfg->accounts[i];
        for (unsigned k = 0; k < a->ndomains && !rc; k++) {
            for (size_t j = 0; j < s->ndomains; j++)
                if (!strcmp(s->domains[j].name, a->domains[k])) {
                    snprintf(err, errlen, "[account %u]: %s is already a "
                             "sending domain of account %u in the spool",
                             a->id, a->domains[k], s->domains[j].account);
                    rc = -EEXIST;
                }
            struct signer_domain *d = rc ? NULL
                : add_domain(s, &dcap, a->domains[k], a->id);
            if (!rc && !d)
                rc = -ENOMEM;
            if (!rc) {
                char from[4200];
                snprintf(from, sizeof from, "%s:%d: [account %u]",
                         cfg->path ? cfg->path : "?", a->line, a->id);
                rc = load_keys(dir, d, from, err, errlen);
                s->nkeys += d->nkeys;
            }
        }
    }
    c.cap = 0;
    if (!rc && q && (n = queue_accounts(q, take_account, &c)) < 0 && !c.rc) {
        snprintf(err, errlen, "cannot read the accounts: %s",
                 queue_strerror((int)n));
        c.rc = (int)n;
    }
    if (!rc)
        rc = c.rc;
    /* the configuration's allow_unsigned wins over the spool's record */
    for (size_t i = 0; i < cfg->naccounts && !rc; i++) {
        const struct account_policy *a = &cfg->accounts[i];
        if (a->allow_unsigned < 0)
            continue; /* the spool's record, or the default, applies */
        bool allow = a->allow_unsigned == 1;
        size_t j = 0;
        while (j < s->naccounts && s->accounts[j].id != a->id)
            j++;
        if (j == s->naccounts) {
            struct signer_account *na = realloc(s->accounts,
                                                (j + 1) * sizeof *na);
            if (!na) {
                rc = -ENOMEM;
                break;
            }
            s->accounts = na;
            s->naccounts++;
        }
        s->accounts[j] = (struct signer_account){ .id = a->id,
                                                  .allow_unsigned = allow };
    }
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory loading DKIM keys");
        signer_free(s);
        return rc;
    }
    if (s->ndomains)
        qsort(s->domains, s->ndomains, sizeof *s->domains, by_name);
    if (s->naccounts)
        qsort(s->accounts, s->naccounts, sizeof *s->accounts, by_id);
    *out = s;
    return 0;
}

/* ------------------------------------------------------------ signing */

static bool allows_unsigned(const struct signer *s, uint32_t account)
{
    struct signer_account key = { .id = account };
    const struct signer_account *a = !s->naccounts ? NULL :
        bsearch(&key, s->accounts, s->naccounts, sizeof key, by_id);
    return a ? a->allow_unsigned : s->allow_unsigned;
}

/* The nearest table entry for dom or one of its parents, or NULL. */
static const struct signer_domain *nearest(const struct signer *s,
                                           const char *dom)
{
    for (const char *p = dom; p && *p;) {
        struct signer_domain key = { .name = (char *)p };
        const struct signer_domain *d = !s->ndomains ? NULL :
            bsearch(&key, s->domains, s->ndomains, sizeof key, by_name);
        if (d)
            return d;
        p = strchr(p, '.');
        if (p)
            p++;
    }
    return NULL;
}

/* Find the end of the header section (the blank line) or len. */
static size_t header_end(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (msg[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < len && msg[j] == '\r')
            j++;
        if (j < len && msg[j] == '\n')
            return i + 1;
        if (j >= len)
            return len;
    }
    return len;
}

bool signer_from_domain(const char *msg, size_t len, char *buf,
                        size_t buflen)
{
    size_t hend = header_end(msg, len);
    const char *val = NULL;
    size_t vlen = 0;
    unsigned nfrom = 0;
    for (size_t i = 0; i < hend;) {
        const char *line = msg + i;
        const char *nl = memchr(line, '\n', hend - i);
        size_t l = nl ? (size_t)(nl - line) + 1 : hend - i;
        if (l >= 5 && !strncasecmp(line, "from", 4)) {
            size_t c = 4;
            while (c < l && (line[c] == ' ' || line[c] == '\t'))
                c++;
            if (c < l && line[c] == ':') {
                nfrom++;
                val = line + c + 1;
                /* the value runs over continuation lines */
                size_t j = i + l;
                while (j < hend && (msg[j] == ' ' || msg[j] == '\t')) {
                    const char *n2 = memchr(msg + j, '\n', hend - j);
                    j = n2 ? (size_t)(n2 - msg) + 1 : hend;
                }
                vlen = (size_t)(msg + j - val);
            }
        }
        i += l;
    }
    if (nfrom != 1 || vlen > 4096)
        return false;
    /* the address: inside the last <...>, else the whole value */
    const char *a = val, *e = val + vlen;
    const char *lt = NULL;
    bool quoted = false;
    for (const char *p = val; p < e; p++) {
        if (*p == '"' && (p == val || p[-1] != '\\'))
            quoted = !quoted;
        else if (!quoted && *p == '<')
            lt = p;
        else if (!quoted && *p == ',' && !lt)
            return false; /* several authors */
    }
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(e - lt));
        if (!gt)
            return false;
        a = lt + 1;
        e = gt;
    }
    const char *at = NULL;
    for (const char *p = a; p < e; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return false;
    const char *d = at + 1;
    while (e > d && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                     e[-1] == '\n'))
        e--;
    size_t n = (size_t)(e - d);
    if (!n || n >= buflen || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)d[i];
        if (!isalnum(ch) && ch != '-' && ch != '.')
            return false;
        buf[i] = (char)tolower(ch);
    }
    buf[n] = 0;
    return true;
}

/* Whom a message of account is signed for: *d is the nearest domain of
 * its From: address with keys of this account, or NULL (unsigned, where
 * the account allows it); 0 or a SIGNER_E_ code with why in words.  Only
 * reads msg within len, so it may run before the spool's check. */
static int choose_domain(const struct signer *s, uint32_t account,
                         const char *msg, size_t len, int64_t now,
                         const struct signer_domain **out, char *why,
                         size_t whylen)
{
    *out = NULL;
    if (!s || s->off)
        return 0;
    bool allow = allows_unsigned(s, account);
    char dom[256];
    if (!signer_from_domain(msg, len, dom, sizeof dom)) {
        if (allow)
            return 0;
        snprintf(why, whylen, "no single From: address to sign for "
                 "(account %u)", account);
        return SIGNER_E_NOFROM;
    }
    const struct signer_domain *d = nearest(s, dom);
    if (d && d->account == account && live_keys(d, now)) {
        *out = d;
        return 0;
    }
    if (allow)
        return 0;
    if (d && d->account != account)
        snprintf(why, whylen, "no DKIM key: %s is not a verified domain of "
                 "account %u", d->name, account);
    else if (d)
        snprintf(why, whylen, "no DKIM key for %s (account %u); add one or "
                 "allow unsigned mail", d->name, account);
    else
        snprintf(why, whylen, "no DKIM key: %s is not a verified domain of "
                 "account %u", dom, account);
    return SIGNER_E_NOKEY;
}

bool signer_sign_failed(int err)
{
    /* dkim_sign.h's codes run from DKIM_E_KEYPERM down to DKIM_E_ARG */
    return err == SIGNER_E_NOKEY ||
           (err <= DKIM_E_KEYPERM && err >= DKIM_E_ARG);
}

/* The steps run in pipeline order, each module once: whom to sign for
 * (here), the spool's rules (queue/), prepare and sign (dkim/), the wire
 * form (compose.c); the 7-bit form is a second turn of the same loop. */
int signer_compose(const struct signer *s, uint32_t account,
                   const char *msg, size_t len, struct wire *w,
                   struct wire *w7, char *why, size_t whylen)
{
    memset(w, 0, sizeof *w);
    if (w7)
        memset(w7, 0, sizeof *w7);
    const struct signer_domain *d;
    int64_t now = (int64_t)time(NULL);
    int refused = choose_domain(s, account, msg, len, now, &d, why, whylen);
    char rule[240];
    if (queue_message_check(msg, len, NULL, rule, sizeof rule)) {
        snprintf(why, whylen, "message refused: %s", rule);
        return SIGNER_E_BADMSG;
    }
    if (refused)
        return refused;
    /* form 0 as it is, form 1 in 7 bits when form 0 holds 8-bit octets */
    struct wire *out[2] = { w, w7 };
    int rc = 0;
    for (unsigned f = 0; f < 2 && !rc; f++) {
        if (f && (!w->eightbit || !w7))
            break;
        char *prep = NULL, *sigs = NULL;
        size_t plen = 0, siglen = 0;
        unsigned info = 0;
        if ((rc = dkim_prepare(msg, len, f ? DKIM_PREP_7BIT : 0, &prep,
                               &plen, &info))) {
            snprintf(why, whylen, "message cannot be prepared for signing: "
                     "%s", dkim_strerror(rc));
            break;
        }
        const char *m = prep ? prep : msg;
        size_t ml = prep ? plen : len;
        for (unsigned i = 0; d && i < d->nkeys && !rc; i++) {
            if (!key_live(&d->keys[i], now))
                continue;
            char *h = NULL;
            uint64_t t0 = metrics_now_us();
            rc = dkim_sign(d->keys[i].key, d->name, d->keys[i].selector, m,
                           ml, &h);
            metrics_dkim_observe(metrics_now_us() - t0);
            if (rc) {
                snprintf(why, whylen, "DKIM signing for %s (selector %s) "
                         "failed: %s", d->name, d->keys[i].selector,
                         dkim_strerror(rc));
                break;
            }
            size_t hl = strlen(h);
            char *n = realloc(sigs, siglen + hl);
            if (n) {
                memcpy(n + siglen, h, hl);
                sigs = n;
                siglen += hl;
            } else {
                rc = -ENOMEM;
            }
            free(h);
        }
        if (!rc)
            rc = compose_wire_signed(sigs, siglen, m, ml, out[f]);
        free(prep);
        free(sigs);
    }
    if (rc && w->data) { /* the 7-bit form failed: no half result */
        free(w->data);
        w->data = NULL;
    }
    return rc;
}
