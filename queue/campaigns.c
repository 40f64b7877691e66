/*
 * campaigns.c - campaigns in the spool: their records, creation, changes
 * to drafts, listing, and the state machine with pause, resume and cancel.
 *
 * DESCRIPTION
 *   Owns the "campaigns" database (schema 4; layouts in campaign_int.h).
 *   A campaign is two records: its definition (template, from, list,
 *   schedule), written at create and changed only while it is a draft, and
 *   a small status record (state, times, send cursor and counts) that every
 *   transition rewrites, so pausing a campaign with a 4 MiB template
 *   writes 51 bytes.  Ids come from the meta counter "next_campaign".
 *
 *   Every transition goes through qcampaign_enter(), which checks it
 *   against one table (from -> to):
 *     draft      -> scheduled, sending, cancelled
 *     scheduled  -> sending, paused, done (nothing to send), cancelled
 *     sending    -> paused, done, cancelled
 *     paused     -> scheduled, sending, done, cancelled
 *     done, cancelled: final
 *   Pause, resume and cancel write the engine's control (control.c) in
 *   the same transaction as the state and the audit record.
 *
 * DIAGNOSTICS
 *   -EINVAL for invalid fields (queue_last_detail() says which), -EEXIST
 *   for a name in use in the account, QUEUE_ENOTFOUND for an unknown
 *   campaign or account, QUEUE_ESTATE for a change the state does not
 *   allow, QUEUE_ECORRUPT for a record that does not decode, -EROFS on a
 *   read-only open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_int.h"

#define DEF_FIXED (1 + 4 + 8 + 8 + 8)
#define DEF_STRINGS (1 + QUEUE_MAX_CAMPAIGN_NAME + 2 + QUEUE_MAX_FROM + 2 + \
                     QUEUE_MAX_FROM + 2 + QUEUE_MAX_SUBJECT + 1 + 4 + 4 + 1)
#define NAME_KEY_MAX (1 + 4 + QUEUE_MAX_CAMPAIGN_NAME)

static const char *const state_names[] = {
    [QUEUE_CAMPAIGN_DRAFT] = "draft",
    [QUEUE_CAMPAIGN_SCHEDULED] = "scheduled",
    [QUEUE_CAMPAIGN_SENDING] = "sending",
    [QUEUE_CAMPAIGN_PAUSED] = "paused",
    [QUEUE_CAMPAIGN_DONE] = "done",
    [QUEUE_CAMPAIGN_CANCELLED] = "cancelled",
};

/* allowed[from][to]: the campaign state machine. */
#define D QUEUE_CAMPAIGN_DRAFT
#define SC QUEUE_CAMPAIGN_SCHEDULED
#define SE QUEUE_CAMPAIGN_SENDING
#define PA QUEUE_CAMPAIGN_PAUSED
#define DO QUEUE_CAMPAIGN_DONE
#define CA QUEUE_CAMPAIGN_CANCELLED
static const bool allowed[CA + 1][CA + 1] = {
    [D] = { [SC] = true, [SE] = true, [CA] = true },
    [SC] = { [SE] = true, [PA] = true, [DO] = true, [CA] = true },
    [SE] = { [PA] = true, [DO] = true, [CA] = true },
    [PA] = { [SC] = true, [SE] = true, [DO] = true, [CA] = true },
};
#undef D
#undef SC
#undef SE
#undef PA
#undef DO
#undef CA

const char *queue_campaign_state_name(int state)
{
    if (state < QUEUE_CAMPAIGN_DRAFT || state > QUEUE_CAMPAIGN_CANCELLED)
        return "?";
    return state_names[state];
}

void queue_campaign_clear(struct queue_campaign *c)
{
    if (!c)
        return;
    free(c->html);
    free(c->text);
    c->html = c->text = NULL;
}

/* ------------------------------------------------------------ records */

/* Pack c's definition into a malloc'ed buffer. */
static int def_encode(const struct queue_campaign *c, unsigned char **out,
                      size_t *len)
{
    size_t hl = c->html ? strlen(c->html) : 0;
    size_t tl = c->text ? strlen(c->text) : 0;
    size_t cap = DEF_FIXED + DEF_STRINGS + hl + tl;
    struct rec_w w = { .p = malloc(cap), .cap = cap };
    if (!w.p)
        return -ENOMEM;
    qrec_w_u8(&w, CAMP_FMT);
    qrec_w_u32(&w, c->account);
    qrec_w_u64(&w, c->list);
    qrec_w_u64(&w, (uint64_t)c->created);
    qrec_w_u64(&w, (uint64_t)c->schedule);
    qrec_w_str(&w, c->name, 1, QUEUE_MAX_CAMPAIGN_NAME);
    qrec_w_str(&w, c->from, 2, QUEUE_MAX_FROM);
    qrec_w_str(&w, c->reply_to, 2, QUEUE_MAX_FROM);
    qrec_w_str(&w, c->subject, 2, QUEUE_MAX_SUBJECT);
    qrec_w_u8(&w, c->text != NULL);
    qrec_w_u32(&w, (uint32_t)hl);
    qrec_w_bytes(&w, c->html, hl);
    qrec_w_u32(&w, (uint32_t)tl);
    qrec_w_bytes(&w, c->text, tl);
    if (c->track)
        qrec_w_u8(&w, c->track);   /* absent: untracked, as before */
    if (w.over) {
        free(w.p);
        return QUEUE_ETOOBIG;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

/* A template of the record: copied into *dst (NUL-terminated) when dst is
 * not NULL, else skipped.  False (r marked bad) if it does not fit or
 * holds a NUL, or (r not bad) when out of memory. */
static bool take_template(struct rec_r *r, char **dst)
{
    uint32_t n = qrec_r_u32(r);
    if (r->bad || n > QUEUE_MAX_TEMPLATE || r->len - r->off < n) {
        r->bad = true;
        return false;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    if (!dst)
        return true;
    if (n && memchr(p, 0, n)) {
        r->bad = true;
        return false;
    }
    if (!(*dst = malloc((size_t)n + 1)))
        return false;
    memcpy(*dst, p, n);
    (*dst)[n] = 0;
    return true;
}

/* Decode a definition into c (templates only when asked). */
int qcampaign_def_decode(const MDB_val *v, uint64_t id,
                         struct queue_campaign *c, bool templates)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    char *html = NULL;
    c->id = id;
    if (qrec_r_u8(&r) != CAMP_FMT)
        return QUEUE_ECORRUPT;
    c->account = qrec_r_u32(&r);
    c->list = qrec_r_u64(&r);
    c->created = (int64_t)qrec_r_u64(&r);
    c->schedule = (int64_t)qrec_r_u64(&r);
    qrec_r_str(&r, c->name, 1, QUEUE_MAX_CAMPAIGN_NAME);
    qrec_r_str(&r, c->from, 2, QUEUE_MAX_FROM);
    qrec_r_str(&r, c->reply_to, 2, QUEUE_MAX_FROM);
    qrec_r_str(&r, c->subject, 2, QUEUE_MAX_SUBJECT);
    bool has_text = qrec_r_u8(&r) != 0;
    bool ok = take_template(&r, templates ? &html : NULL) &&
              take_template(&r, templates && has_text ? &c->text : NULL);
    bool oom = !ok && !r.bad;
    c->track = 0;
    if (ok && r.off < r.len) {
        c->track = qrec_r_u8(&r);
        if (!c->track || c->track > (QUEUE_TRACK_OPENS | QUEUE_TRACK_CLICKS))
            r.bad = true;
    }
    if (!ok || !qrec_r_done(&r)) {
        free(html);
        free(c->text);
        c->text = NULL;
        return oom ? -ENOMEM : QUEUE_ECORRUPT;
    }
    c->html = html;
    return 0;
}

/* Decode a status record into c. */
int qcampaign_status_decode(const MDB_val *v, struct queue_campaign *c)
{
    struct rec_r r = { .p = v->mv_data, .len = v->mv_size };
    if (qrec_r_u8(&r) != CAMP_FMT)
        return QUEUE_ECORRUPT;
    c->state = (int)qrec_r_u8(&r);
    c->send_complete = qrec_r_u8(&r) & CAMP_F_COMPLETE;
    c->started = (int64_t)qrec_r_u64(&r);
    c->finished = (int64_t)qrec_r_u64(&r);
    c->send_cursor = qrec_r_u64(&r);
    c->recipients = qrec_r_u64(&r);
    c->suppressed_at_send = qrec_r_u64(&r);
    if (!qrec_r_done(&r) || c->state < QUEUE_CAMPAIGN_DRAFT ||
        c->state > QUEUE_CAMPAIGN_CANCELLED)
        return QUEUE_ECORRUPT;
    return 0;
}

int qcampaign_status_put(struct queue *q, MDB_txn *txn,
                         const struct queue_campaign *c)
{
    unsigned char buf[CAMP_STATUS_LEN], key[9];
    struct rec_w w = { .p = buf, .cap = sizeof buf };
    qrec_w_u8(&w, CAMP_FMT);
    qrec_w_u8(&w, (unsigned)c->state);
    qrec_w_u8(&w, c->send_complete ? CAMP_F_COMPLETE : 0);
    qrec_w_u64(&w, (uint64_t)c->started);
    qrec_w_u64(&w, (uint64_t)c->finished);
    qrec_w_u64(&w, c->send_cursor);
    qrec_w_u64(&w, c->recipients);
    qrec_w_u64(&w, c->suppressed_at_send);
    MDB_val k = camp_key(key, 'p', c->id), v = { w.len, buf };
    return mdb_put(txn, q->dbi[DB_CAMPAIGNS], &k, &v, 0);
}

int qcampaign_load(struct queue *q, MDB_txn *txn, uint64_t id,
                   struct queue_campaign *c, bool templates)
{
    unsigned char key[9];
    MDB_val k = camp_key(key, 'i', id), v;
    memset(c, 0, sizeof *c);
    if (q->absent[DB_CAMPAIGNS])
        return QUEUE_ENOTFOUND;
    int rc = mdb_get(txn, q->dbi[DB_CAMPAIGNS], &k, &v);
    if (rc)
        return queue_err_mdb(rc);
    int err = qcampaign_def_decode(&v, id, c, templates);
    if (err)
        return err;
    k = camp_key(key, 'p', id);
    rc = mdb_get(txn, q->dbi[DB_CAMPAIGNS], &k, &v);
    err = rc ? (rc == MDB_NOTFOUND ? QUEUE_ECORRUPT : queue_err_mdb(rc))
             : qcampaign_status_decode(&v, c);
    if (err)
        queue_campaign_clear(c);
    return err;
}

/* Key of the name index: 'n' account . name. */
static MDB_val name_key(unsigned char *key, uint32_t account,
                        const char *name)
{
    size_t n = strnlen(name, QUEUE_MAX_CAMPAIGN_NAME);
    key[0] = 'n';
    be32_put(key + 1, account);
    memcpy(key + 5, name, n);
    return (MDB_val){ 5 + n, key };
}

/* ------------------------------------------------------------- checks */

/* Whether s is 0..cap bytes of UTF-8 text; one line unless multiline. */
static bool field_ok(const char *s, size_t cap, bool multiline)
{
    if (!admin_text_ok(s, cap))
        return false;
    return multiline || !s || !strpbrk(s, "\t\r\n");
}

/* Check the fields of s selected by set; 0 or -EINVAL with a detail. */
static int spec_check(struct admin_tx *t, const struct queue_campaign_spec *s,
                      unsigned set)
{
    if ((set & QUEUE_CF_NAME) &&
        (!s->name || !*s->name ||
         !field_ok(s->name, QUEUE_MAX_CAMPAIGN_NAME, false)))
        return admin_fail(t, -EINVAL, "campaign name: 1..%d bytes of text "
                          "on one line", QUEUE_MAX_CAMPAIGN_NAME);
    if ((set & QUEUE_CF_FROM) &&
        (!s->from || !*s->from || !field_ok(s->from, QUEUE_MAX_FROM, false)))
        return admin_fail(t, -EINVAL, "from: 1..%d bytes on one line",
                          QUEUE_MAX_FROM);
    if ((set & QUEUE_CF_REPLY_TO) &&
        !field_ok(s->reply_to, QUEUE_MAX_FROM, false))
        return admin_fail(t, -EINVAL, "reply-to: up to %d bytes on one line",
                          QUEUE_MAX_FROM);
    if ((set & QUEUE_CF_SUBJECT) &&
        !field_ok(s->subject, QUEUE_MAX_SUBJECT, false))
        return admin_fail(t, -EINVAL, "subject: up to %d bytes of UTF-8 on "
                          "one line", QUEUE_MAX_SUBJECT);
    if ((set & QUEUE_CF_HTML) &&
        (!s->html || !field_ok(s->html, QUEUE_MAX_TEMPLATE, true)))
        return admin_fail(t, -EINVAL, "html template: up to %u bytes of "
                          "UTF-8", QUEUE_MAX_TEMPLATE);
    if ((set & QUEUE_CF_TEXT) && !field_ok(s->text, QUEUE_MAX_TEMPLATE, true))
        return admin_fail(t, -EINVAL, "text template: up to %u bytes of "
                          "UTF-8", QUEUE_MAX_TEMPLATE);
    if ((set & QUEUE_CF_SCHEDULE) && s->schedule < 0)
        return admin_fail(t, -EINVAL, "schedule before 1970");
    if ((set & QUEUE_CF_LIST) && !s->list)
        return admin_fail(t, -EINVAL, "a campaign needs a list");
    if ((set & QUEUE_CF_TRACK) &&
        (s->track & ~(QUEUE_TRACK_OPENS | QUEUE_TRACK_CLICKS)))
        return admin_fail(t, -EINVAL, "track: opens, clicks or both");
    return 0;
}

/* Copy the fields of s selected by set into c (templates duplicated). */
static int spec_apply(struct queue_campaign *c,
                      const struct queue_campaign_spec *s, unsigned set)
{
    if (set & QUEUE_CF_NAME)
        snprintf(c->name, sizeof c->name, "%s", s->name);
    if (set & QUEUE_CF_LIST)
        c->list = s->list;
    if (set & QUEUE_CF_FROM)
        snprintf(c->from, sizeof c->from, "%s", s->from);
    if (set & QUEUE_CF_REPLY_TO)
        snprintf(c->reply_to, sizeof c->reply_to, "%s",
                 s->reply_to ? s->reply_to : "");
    if (set & QUEUE_CF_SUBJECT)
        snprintf(c->subject, sizeof c->subject, "%s",
                 s->subject ? s->subject : "");
    if (set & QUEUE_CF_SCHEDULE)
        c->schedule = s->schedule;
    if (set & QUEUE_CF_TRACK)
        c->track = s->track;
    if (set & QUEUE_CF_HTML) {
        free(c->html);
        if (!(c->html = strdup(s->html)))
            return -ENOMEM;
    }
    if (set & QUEUE_CF_TEXT) {
        free(c->text);
        c->text = NULL;
        if (s->text && !(c->text = strdup(s->text)))
            return -ENOMEM;
    }
    return 0;
}

/* Store c's definition. */
static int def_put(struct admin_tx *t, const struct queue_campaign *c)
{
    unsigned char *buf, key[9];
    size_t len;
    int err = def_encode(c, &buf, &len);
    if (err)
        return admin_fail(t, err, "campaign record too large");
    MDB_val k = camp_key(key, 'i', c->id), v = { len, buf };
    int rc = mdb_put(t->txn, t->q->dbi[DB_CAMPAIGNS], &k, &v, 0);
    free(buf);
    return rc ? admin_mdb(t, rc) : 0;
}

/* Take the name for c's account in the index; -EEXIST if another has it. */
static int name_claim(struct admin_tx *t, const struct queue_campaign *c)
{
    unsigned char key[NAME_KEY_MAX], idb[8];
    MDB_val k = name_key(key, c->account, c->name), v;
    int rc = mdb_get(t->txn, t->q->dbi[DB_CAMPAIGNS], &k, &v);
    if (rc == 0 && (v.mv_size != 8 || be64_get(v.mv_data) != c->id))
        return admin_fail(t, -EEXIST, "the account has a campaign named "
                          "'%.127s' already", c->name);
    if (rc && rc != MDB_NOTFOUND)
        return admin_mdb(t, rc);
    be64_put(idb, c->id);
    v = (MDB_val){ 8, idb };
    rc = mdb_put(t->txn, t->q->dbi[DB_CAMPAIGNS], &k, &v, 0);
    return rc ? admin_mdb(t, rc) : 0;
}

/* "campaign 7 (spring)" for audit records. */
static void object_text(char *buf, size_t cap, const struct queue_campaign *c,
                        const char *more)
{
    if (snprintf(buf, cap, "campaign %llu (%s)%s%s",
                 (unsigned long long)c->id, c->name, more ? " " : "",
                 more ? more : "") >= (int)cap)
        buf[cap - 1] = 0;   /* cut to the audit record's cap */
}

int qcampaign_enter(struct admin_tx *t, struct queue_campaign *c, int to,
                    int64_t when)
{
    int from = c->state;
    if (from < QUEUE_CAMPAIGN_DRAFT || from > QUEUE_CAMPAIGN_CANCELLED ||
        to < QUEUE_CAMPAIGN_DRAFT || to > QUEUE_CAMPAIGN_CANCELLED ||
        !allowed[from][to])
        return admin_fail(t, QUEUE_ESTATE, "campaign %llu is %s: it cannot "
                          "become %s", (unsigned long long)c->id,
                          queue_campaign_state_name(from),
                          queue_campaign_state_name(to));
    if (to == QUEUE_CAMPAIGN_SENDING && !c->started)
        c->started = when;
    if (to == QUEUE_CAMPAIGN_DONE || to == QUEUE_CAMPAIGN_CANCELLED)
        c->finished = when;
    c->state = to;
    return 0;
}

/* ------------------------------------------------------------- create */

struct create_arg {
    uint32_t account;
    const struct queue_campaign_spec *s;
    const struct queue_actor *by;
    uint64_t id;
    struct queue_campaign c;
    struct queue_account a;
};

/* The create change: check, number, store the records and the name, audit. */
static int do_create(struct admin_tx *t, void *arg)
{
    struct create_arg *ca = arg;
    struct queue_campaign *c = &ca->c;
    unsigned set = QUEUE_CF_NAME | QUEUE_CF_LIST | QUEUE_CF_FROM |
                   QUEUE_CF_REPLY_TO | QUEUE_CF_SUBJECT | QUEUE_CF_HTML |
                   QUEUE_CF_TEXT | QUEUE_CF_SCHEDULE | QUEUE_CF_TRACK;
    uint64_t next;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], more[96];
    int err, rc;

    queue_campaign_clear(c);   /* a retried group runs this again */
    memset(c, 0, sizeof *c);
    if ((err = spec_check(t, ca->s, set)))
        return err;
    if ((err = qaccount_load(t->q, t->txn, ca->account, &ca->a)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no account with id %u", ca->account) : err;
    if ((err = qmeta_get_u64(t->q, t->txn, "next_campaign", &next)))
        return err;
    c->id = next ? next : 1;
    c->account = ca->account;
    c->created = t->now_ms / 1000;
    c->state = QUEUE_CAMPAIGN_DRAFT;
    if ((err = spec_apply(c, ca->s, set)) || (err = name_claim(t, c)) ||
        (err = def_put(t, c)))
        return err;
    if ((rc = qcampaign_status_put(t->q, t->txn, c)) ||
        (rc = qmeta_put_u64(t->q, t->txn, "next_campaign", c->id + 1)))
        return admin_mdb(t, rc);
    snprintf(more, sizeof more, "of %s, list %llu", ca->a.name,
             (unsigned long long)c->list);
    object_text(obj, sizeof obj, c, more);
    if ((err = admin_audit_put(t, ca->by, c->account, "campaign create", obj,
                               "ok")))
        return err;
    ca->id = c->id;
    return 0;
}

int queue_campaign_create(struct queue *q, uint32_t account,
                          const struct queue_campaign_spec *s,
                          const struct queue_actor *by, uint64_t *id)
{
    struct create_arg *ca = calloc(1, sizeof *ca);
    if (!ca)
        return -ENOMEM;
    ca->account = account;
    ca->s = s;
    ca->by = by;
    int err = admin_run(q, do_create, ca);
    if (!err && id)
        *id = ca->id;
    queue_campaign_clear(&ca->c);
    free(ca);
    return err;
}

/* ------------------------------------------------------------- update */

struct update_arg {
    uint64_t id;
    unsigned set;
    const struct queue_campaign_spec *s;
    const struct queue_actor *by;
    struct queue_campaign c;
};

/* The update change of a draft: the fields of ua->set, renamed in the
 * index when the name changes, audited with the list of fields. */
static int do_update(struct admin_tx *t, void *arg)
{
    struct update_arg *ua = arg;
    struct queue_campaign *c = &ua->c;
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], more[160] = "";
    static const char *const names[] = { "name", "list", "from", "reply-to",
                                         "subject", "html", "text",
                                         "schedule", "track" };
    int err;

    queue_campaign_clear(c);
    if ((err = spec_check(t, ua->s, ua->set)))
        return err;
    if ((err = qcampaign_load(t->q, t->txn, ua->id, c, true)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no campaign %llu",
                         (unsigned long long)ua->id) : err;
    if (c->state != QUEUE_CAMPAIGN_DRAFT)
        return admin_fail(t, QUEUE_ESTATE, "campaign %llu is %s: only a "
                          "draft can be changed", (unsigned long long)c->id,
                          queue_campaign_state_name(c->state));
    if (ua->set & QUEUE_CF_NAME) {
        unsigned char key[NAME_KEY_MAX];
        MDB_val k = name_key(key, c->account, c->name);
        int rc = mdb_del(t->txn, t->q->dbi[DB_CAMPAIGNS], &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return admin_mdb(t, rc);
    }
    if ((err = spec_apply(c, ua->s, ua->set)))
        return err;
    if (((ua->set & QUEUE_CF_NAME) && (err = name_claim(t, c))) ||
        (err = def_put(t, c)))
        return err;
    for (size_t i = 0, n = 0; i < sizeof names / sizeof names[0]; i++)
        if (ua->set & (1u << i))
            n += (size_t)snprintf(more + n, sizeof more - n, "%s%s",
                                  n ? ", " : "changed ", names[i]);
    object_text(obj, sizeof obj, c, more);
    return admin_audit_put(t, ua->by, c->account, "campaign update", obj,
                           "ok");
}

int queue_campaign_update(struct queue *q, uint64_t id, unsigned set,
                          const struct queue_campaign_spec *s,
                          const struct queue_actor *by)
{
    struct update_arg *ua = calloc(1, sizeof *ua);
    if (!ua)
        return -ENOMEM;
    ua->id = id;
    ua->set = set;
    ua->s = s;
    ua->by = by;
    int err = admin_run(q, do_update, ua);
    queue_campaign_clear(&ua->c);
    free(ua);
    return err;
}

/* ------------------------------------------------------------ reading */

int queue_campaign_get(struct queue *q, uint64_t id, struct queue_campaign *c)
{
    MDB_txn *txn;
    memset(c, 0, sizeof *c);
    if (q->absent[DB_CAMPAIGNS])
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    err = qcampaign_load(q, txn, id, c, true);
    queue_read_end(q, txn);
    return err;
}

int queue_campaign_find(struct queue *q, uint32_t account, const char *name,
                        struct queue_campaign *c)
{
    MDB_txn *txn;
    unsigned char key[NAME_KEY_MAX];
    memset(c, 0, sizeof *c);
    if (q->absent[DB_CAMPAIGNS] || !name || !*name ||
        strlen(name) > QUEUE_MAX_CAMPAIGN_NAME)
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    MDB_val k = name_key(key, account, name), v;
    int rc = mdb_get(txn, q->dbi[DB_CAMPAIGNS], &k, &v);
    if (rc)
        err = queue_err_mdb(rc);
    else if (v.mv_size != 8)
        err = QUEUE_ECORRUPT;
    else
        err = qcampaign_load(q, txn, be64_get(v.mv_data), c, true);
    queue_read_end(q, txn);
    return err;
}

long queue_campaigns(struct queue *q, uint32_t account,
                     int (*cb)(void *arg, const struct queue_campaign *c),
                     void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = { 1, "i" }, v;
    long n = 0;
    int err = 0, rc;

    if (q->absent[DB_CAMPAIGNS])
        return 0;
    struct queue_campaign *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    if ((err = queue_read_begin(q, &txn))) {
        free(c);
        return err;
    }
    if ((rc = mdb_cursor_open(txn, q->dbi[DB_CAMPAIGNS], &cur))) {
        queue_read_end(q, txn);
        free(c);
        return queue_err_mdb(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 9 || kp[0] != 'i')
            break;
        if ((err = qcampaign_load(q, txn, be64_get(kp + 1), c, false)))
            break;
        if (account && c->account != account)
            continue;
        n++;
        if (cb(arg, c))
            break;
    }
    mdb_cursor_close(cur);
    queue_read_end(q, txn);
    free(c);
    if (err)
        return err;
    return rc && rc != MDB_NOTFOUND ? queue_err_mdb(rc) : n;
}

/* --------------------------------------------- pause, resume, cancel */

enum ctl_action { CTL_PAUSE, CTL_RESUME, CTL_CANCEL };

struct ctl_arg {
    uint64_t id;
    enum ctl_action action;
    const char *reason;
    int64_t until;          /* pause: its end (0: until resumed) */
    const struct queue_actor *by;
    struct queue_campaign c;
};

/* Set or clear one control of c inside t. */
static int ctl_put(struct admin_tx *t, const struct queue_campaign *c,
                   int kind, const struct ctl_arg *ca, bool set)
{
    char name[24];
    snprintf(name, sizeof name, "%llu", (unsigned long long)c->id);
    int rc = control_put_until_txn(t->q, t->txn, t->now_ms / 1000, kind,
                                   name, ca->reason,
                                   ca->by ? ca->by->user : NULL, set,
                                   set && kind == QUEUE_CTL_CAMPAIGN
                                   ? ca->until : 0);
    if (rc > 0)
        return admin_mdb(t, rc);
    if (rc == QUEUE_ENOTFOUND && !set)
        return 0;   /* was not set: nothing to clear */
    if (rc == -EINVAL)
        return admin_fail(t, rc, "control characters in the reason");
    return rc;
}

/* Pause, resume or cancel: the state, the controls and the audit record
 * in one change. */
static int do_control(struct admin_tx *t, void *arg)
{
    struct ctl_arg *ca = arg;
    struct queue_campaign *c = &ca->c;
    int64_t now = t->now_ms / 1000;
    static const char *const actions[] = { "campaign pause", "campaign resume",
                                           "campaign cancel" };
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1];
    int err, rc, to;

    if ((err = qcampaign_load(t->q, t->txn, ca->id, c, false)))
        return err == QUEUE_ENOTFOUND
            ? admin_fail(t, err, "no campaign %llu",
                         (unsigned long long)ca->id) : err;
    bool queued = c->state != QUEUE_CAMPAIGN_DRAFT;
    switch (ca->action) {
    case CTL_PAUSE:
        to = QUEUE_CAMPAIGN_PAUSED;
        break;
    case CTL_RESUME:
        if (c->state != QUEUE_CAMPAIGN_PAUSED)
            return admin_fail(t, QUEUE_ESTATE, "campaign %llu is %s, not "
                              "paused", (unsigned long long)c->id,
                              queue_campaign_state_name(c->state));
        to = c->schedule > now ? QUEUE_CAMPAIGN_SCHEDULED
                               : QUEUE_CAMPAIGN_SENDING;
        break;
    default:
        to = QUEUE_CAMPAIGN_CANCELLED;
        break;
    }
    if ((err = qcampaign_enter(t, c, to, now)))
        return err;
    if ((rc = qcampaign_status_put(t->q, t->txn, c)))
        return admin_mdb(t, rc);
    if (ca->action == CTL_PAUSE)
        err = ctl_put(t, c, QUEUE_CTL_CAMPAIGN, ca, true);
    else
        err = ctl_put(t, c, QUEUE_CTL_CAMPAIGN, ca, false);
    if (!err && ca->action == CTL_CANCEL && queued)
        err = ctl_put(t, c, QUEUE_CTL_CANCELLED, ca, true);
    if (err)
        return err;
    object_text(obj, sizeof obj, c, NULL);
    return admin_audit_put(t, ca->by, c->account, actions[ca->action], obj,
                           "ok");
}

/* Run one of pause, resume, cancel. */
static int campaign_control(struct queue *q, uint64_t id,
                            enum ctl_action action, const char *reason,
                            int64_t until, const struct queue_actor *by)
{
    struct ctl_arg *ca = calloc(1, sizeof *ca);
    if (!ca)
        return -ENOMEM;
    ca->id = id;
    ca->action = action;
    ca->reason = reason;
    ca->until = until;
    ca->by = by;
    int err = admin_run(q, do_control, ca);
    free(ca);
    return err;
}

int queue_campaign_pause(struct queue *q, uint64_t id, const char *reason,
                         const struct queue_actor *by)
{
    return campaign_control(q, id, CTL_PAUSE, reason, 0, by);
}

int queue_campaign_pause_until(struct queue *q, uint64_t id,
                               const char *reason, int64_t until,
                               const struct queue_actor *by)
{
    if (until < 0)
        return -EINVAL;
    return campaign_control(q, id, CTL_PAUSE, reason, until, by);
}

int queue_campaign_resume(struct queue *q, uint64_t id,
                          const struct queue_actor *by)
{
    return campaign_control(q, id, CTL_RESUME, NULL, 0, by);
}

int queue_campaign_cancel(struct queue *q, uint64_t id, const char *reason,
                          const struct queue_actor *by)
{
    return campaign_control(q, id, CTL_CANCEL, reason, 0, by);
}
