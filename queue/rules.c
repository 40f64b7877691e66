/*
 * rules.c - what a well-formed record of each database looks like.
 *
 * DESCRIPTION
 *   One function per database checks a record's key and value against the
 *   layouts in queue_int.h, admin_int.h, lists_int.h and campaign_int.h,
 *   decoding the value with the same decoder the library reads it with.
 *   The spool check reports records that break them; salvage copies only
 *   records that keep them.  Rules look at one record alone: what ties
 *   records together (a delivery's message, its ready entry, counters) is
 *   check.c's and salvage.c's business.
 *
 * DIAGNOSTICS
 *   rules_record() returns NULL for a good record, else a short reason.
 */
#include <stdio.h>
#include <string.h>

#include "campaign_int.h"
#include "check_int.h"
#include "lists_int.h"
#include "queue_series.h"

#define SPOOL_MAGIC "sluice-spool"

/* Whether the n bytes at p are printable ASCII (a name). */
static bool printable(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return n > 0;
}

static const char *rule_meta(const MDB_val *k, const MDB_val *v)
{
    static const char *const u64s[] = {
        "schema", "next_delivery", "next_message", "next_event",
        "next_account", "next_user", "next_apikey", "next_campaign",
        "next_list", "next_contact", "next_import", "master", "admin_gen",
        "controls_gen", "next_incident",
    };
    if (!printable(k->mv_data, k->mv_size) || k->mv_size > 64)
        return "meta name is not a name";
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++)
        if (k->mv_size == strlen(u64s[i]) &&
            !memcmp(k->mv_data, u64s[i], k->mv_size))
            return v->mv_size == 8 ? NULL : "value is not a u64";
#define IS(name) (k->mv_size == strlen(name) && \
                  !memcmp(k->mv_data, name, k->mv_size))
    if (IS("magic"))
        return v->mv_size == strlen(SPOOL_MAGIC) &&
               !memcmp(v->mv_data, SPOOL_MAGIC, v->mv_size)
               ? NULL : "not the sluice spool magic";
    if (IS("audit_head"))
        return v->mv_size == 8 + QUEUE_AUDIT_HASH ? NULL
               : "audit head is not a sequence and a hash";
    if (IS("token_secret"))
        return v->mv_size == 32 ? NULL : "token secret is not 32 bytes";
    if (IS("spool_id"))
        return v->mv_size == 16 ? NULL : "spool identity is not 16 bytes";
#undef IS
    if (k->mv_size > 6 && !memcmp(k->mv_data, "limit.", 6)) {
        struct queue_limit l;
        return queue_limit_decode(k->mv_data, k->mv_size, v->mv_data,
                                  v->mv_size, &l)
               ? "live limit does not decode" : NULL;
    }
    if (k->mv_size > 9 && !memcmp(k->mv_data, "incident.", 9))
        return v->mv_size >= 4 && v->mv_size <= 4 + QUEUE_MAX_INCIDENT
               ? NULL : "incident record is not an account and a text";
    return v->mv_size <= 4096 ? NULL : "value too large";
}

static const char *rule_delivery(const MDB_val *k, const MDB_val *v)
{
    struct queue_delivery d;
    if (k->mv_size != 8 || !be64_get(k->mv_data))
        return "key is not a delivery id";
    if (qdelivery_decode(v, be64_get(k->mv_data), &d))
        return "delivery record does not decode";
    if (d.state != QUEUE_ST_QUEUED && d.state != QUEUE_ST_DELIVERED &&
        d.state != QUEUE_ST_BOUNCED && d.state != QUEUE_ST_EXPIRED &&
        d.state != QUEUE_ST_SUPPRESSED && d.state != QUEUE_ST_CANCELLED)
        return "delivery has an unknown state";
    if (queue_check_rcpt(d.rcpt))
        return "delivery's recipient is not an address";
    return NULL;
}

static const char *rule_message(const MDB_val *k, const MDB_val *v)
{
    const unsigned char *p = v->mv_data;
    if (k->mv_size != 8 || !be64_get(k->mv_data))
        return "key is not a message id";
    if (v->mv_size < 2)
        return "message record too short";
    size_t flen = (size_t)p[0] << 8 | p[1];
    if (flen > QUEUE_MAX_RCPT || 2 + flen > v->mv_size ||
        v->mv_size - 2 - flen > QUEUE_MAX_MESSAGE)
        return "message record does not decode";
    return NULL;
}

static const char *rule_event(const MDB_val *k, const MDB_val *v)
{
    struct queue_event e;
    if (k->mv_size != 8 || !be64_get(k->mv_data))
        return "key is not an event sequence number";
    if (qevent_decode(v, be64_get(k->mv_data), &e))
        return "event record does not decode";
    if (e.type < QUEUE_EV_DELIVERED || e.type > QUEUE_EV_MAX)
        return "event has an unknown type";
    /* an unsubscribe known by campaign and contact only names none, nor
     * does an incident (incident.c) */
    if (!e.delivery && e.type != QUEUE_EV_UNSUBSCRIBED &&
        e.type != QUEUE_EV_INCIDENT)
        return "event names no delivery";
    if (e.prev >= e.seq)
        return "event's previous event is not older";
    return NULL;
}

/* A time-series bucket (series.c): gran . u32 bucket . dim . id. */
static const char *rule_series(const MDB_val *k, const MDB_val *v)
{
    const unsigned char *p = k->mv_data;
    size_t id = k->mv_size >= 6 ? k->mv_size - 6 : 0;
    if (k->mv_size < 6 || (p[0] != 'h' && p[0] != 'd'))
        return "key is not a time-series bucket";
    bool ok = (p[5] == 't' && id == 0) || (p[5] == 'a' && id == 4) ||
              (p[5] == 'c' && id == 12) ||
              ((p[5] == 's' || p[5] == 'f') && id >= 4 && id <= 4 + 255);
    if (!ok)
        return "time-series bucket of an unknown dimension";
    uint64_t c[QUEUE_SERIES_SLOTS];
    if (qseries_decode(v->mv_data, v->mv_size, c))
        return "time-series counts do not decode";
    return NULL;
}

static const char *rule_counter(const MDB_val *k, const MDB_val *v)
{
    const unsigned char *kp = k->mv_data;
    if (v->mv_size != CF_COUNT * 8 && v->mv_size != CF_COUNT_V4 * 8)
        return "counter record is not eight (or, before schema 5, six) "
               "counts";
    if (k->mv_size < 1)
        return "empty counter key";
    switch (kp[0]) {
    case 't': return k->mv_size == 1 ? NULL : "bad total counter key";
    case 'a': return k->mv_size == 5 ? NULL : "bad account counter key";
    case 'c': return k->mv_size == 9 ? NULL : "bad campaign counter key";
    case 'b': return k->mv_size == 9 ? NULL : "bad blocks counter key";
    case 'd':
        return k->mv_size >= 2 && k->mv_size <= 256 &&
               !memchr(kp + 1, 0, k->mv_size - 1)
               ? NULL : "bad domain counter key";
    default: return "unknown counter key";
    }
}

/* Records keyed 'i' id and 'n' name (accounts, users). */
static const char *rule_named(int db, const MDB_val *k, const MDB_val *v)
{
    const unsigned char *kp = k->mv_data;
    if (k->mv_size >= 2 && kp[0] == 'n')
        return v->mv_size == 4 ? NULL : "name index value is not an id";
    if (k->mv_size != 5 || kp[0] != 'i')
        return "unknown key";
    uint32_t id = (uint32_t)kp[1] << 24 | (uint32_t)kp[2] << 16 |
                  (uint32_t)kp[3] << 8 | kp[4];
    if (db == DB_ACCOUNTS) {
        struct queue_account a;
        return qaccount_decode(v, id, &a) ? "account does not decode" : NULL;
    }
    struct queue_user u;
    return quser_decode(v, id, &u) ? "user does not decode" : NULL;
}

static const char *rule_admin(int db, const MDB_val *k, const MDB_val *v)
{
    switch (db) {
    case DB_ROLES:
        return k->mv_size == 8 && v->mv_size == 1 &&
               *(const unsigned char *)v->mv_data <= QUEUE_ROLE_OWNER
               ? NULL : "role record does not decode";
    case DB_APIKEYS: {
        struct queue_apikey key;
        if (k->mv_size != 4)
            return "key is not an API key id";
        return qapikey_decode(v, be32_get(k->mv_data), &key)
               ? "API key does not decode" : NULL;
    }
    case DB_AUDIT: {
        struct queue_audit r;
        if (k->mv_size != 8)
            return "key is not an audit sequence number";
        if (!qaudit_decode(v, &r))
            return "audit record does not decode";
        return r.seq == be64_get(k->mv_data) ? NULL
               : "audit record under another sequence number";
    }
    case DB_SDOMAINS: {
        struct queue_sdomain d;
        return qsdomain_decode(k, v, &d) ? "sending domain does not decode"
                                        : NULL;
    }
    default: {
        struct queue_usage u;
        if (k->mv_size != 8)
            return "key is not an account and a day";
        return qusage_decode(v, &u) ? "usage record does not decode" : NULL;
    }
    }
}

static const char *rule_lists(int db, const MDB_val *k, const MDB_val *v)
{
    const unsigned char *kp = k->mv_data;
    switch (db) {
    case DB_LISTS: {
        struct list_rec r;
        if (k->mv_size > 5 && kp[0] == 'n')
            return v->mv_size == 8 ? NULL : "name index value is not an id";
        if (k->mv_size != 9 || kp[0] != 'i')
            return "unknown key";
        return qlist_decode(v, be64_get(kp + 1), &r) ? "list does not decode"
                                                     : NULL;
    }
    case DB_CONTACTS: {
        struct contact_view c;
        if (k->mv_size != 8)
            return "key is not a contact id";
        return qcontact_decode(v, &c) ? "contact does not decode" : NULL;
    }
    case DB_MEMBERS:
        if (k->mv_size > 9 && k->mv_size <= MEMBER_KEY_MAX && kp[0] == 'e')
            return v->mv_size == 8 ? NULL : "member value is not an id";
        if (k->mv_size == 17 && kp[0] == 'c')
            return v->mv_size == 0 ? NULL : "member order entry has a value";
        return "unknown key";
    default: {
        char email[QUEUE_MAX_RCPT + 1];
        char reason[QUEUE_MAX_SUPPRESS_REASON + 1];
        char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
        struct queue_suppression s;
        if (k->mv_size >= 6 && kp[4] == 0xff)
            return k->mv_size <= SUPPRESS_KEY_MAX + 1 && hygiene_streak_ok(v)
                   ? NULL : "soft-bounce streak does not decode";
        /* format 2 (with the account that added it, never 0) or format 1
         * (before sluice kept that: read as added by the owner) */
        if (k->mv_size < 5 || !be32_get(kp))
            return "key is not an owner account and an address";
        if (qsupp_decode(k, v, email, reason, source, &s)) {
            unsigned fmt = v->mv_size ? *(const unsigned char *)v->mv_data
                                      : 0;
            return fmt == SUPP_FMT || fmt == SUPP_FMT_V1
                   ? "suppression does not decode"
                   : "suppression of an unknown format";
        }
        return NULL;
    }
    }
}

static const char *rule_campaign(const MDB_val *k, const MDB_val *v)
{
    const unsigned char *kp = k->mv_data;
    struct queue_campaign c;
    if (k->mv_size > 5 && kp[0] == 'n')
        return v->mv_size == 8 ? NULL : "name index value is not an id";
    if (k->mv_size != 9 || (kp[0] != 'i' && kp[0] != 'p'))
        return "unknown key";
    memset(&c, 0, sizeof c);
    int err = kp[0] == 'i' ? qcampaign_def_decode(v, be64_get(kp + 1), &c,
                                                  false)
                           : qcampaign_status_decode(v, &c);
    queue_campaign_clear(&c);
    return err ? "campaign record does not decode" : NULL;
}

const struct id_rule rules_ids[] = {
    { DB_DELIVERIES, 0, 8, "next_delivery" },
    { DB_MESSAGES, 0, 8, "next_message" },
    { DB_EVENTS, 0, 8, "next_event" },
    { DB_ACCOUNTS, 'i', 4, "next_account" },
    { DB_USERS, 'i', 4, "next_user" },
    { DB_APIKEYS, 0, 4, "next_apikey" },
    { DB_LISTS, 'i', 8, "next_list" },
    { DB_CONTACTS, 0, 8, "next_contact" },
    { DB_CAMPAIGNS, 'i', 8, "next_campaign" },
};
const size_t rules_nids = sizeof rules_ids / sizeof rules_ids[0];

uint64_t rules_id_of(const struct id_rule *r, const MDB_val *k)
{
    const unsigned char *kp = k->mv_data;
    size_t pre = r->prefix ? 1 : 0;
    if (k->mv_size != pre + r->idlen || (pre && kp[0] != r->prefix))
        return 0;
    return r->idlen == 8 ? be64_get(kp + pre) : be32_get(kp + pre);
}

const char *rules_record(int db, const MDB_val *k, const MDB_val *v,
                         char *why, size_t cap)
{
    const char *r;
    if (!v->mv_data) {
        snprintf(why, cap, "value of %zu bytes is larger than any record of "
                 "this database", v->mv_size);
        return why;
    }
    switch (db) {
    case DB_META: r = rule_meta(k, v); break;
    case DB_DELIVERIES: r = rule_delivery(k, v); break;
    case DB_READY:
        r = k->mv_size == 16 && v->mv_size == 0 &&
            be64_get((const unsigned char *)k->mv_data + 8)
            ? NULL : "ready entry is not a time and a delivery id";
        break;
    case DB_MESSAGES: r = rule_message(k, v); break;
    case DB_MSGREFS:
        r = k->mv_size == 8 && v->mv_size == 4 &&
            (be64_get(k->mv_data) != 0) &&
            memcmp(v->mv_data, "\0\0\0\0", 4)
            ? NULL : "message reference count does not decode";
        break;
    case DB_EVENTS: r = rule_event(k, v); break;
    case DB_COUNTERS: r = rule_counter(k, v); break;
    case DB_CONTROLS: {
        struct queue_control c;
        r = control_decode(k, v, &c) ? "control does not decode" : NULL;
        break;
    }
    case DB_ACCOUNTS:
    case DB_USERS: r = rule_named(db, k, v); break;
    case DB_ROLES:
    case DB_APIKEYS:
    case DB_AUDIT:
    case DB_SDOMAINS:
    case DB_USAGE: r = rule_admin(db, k, v); break;
    case DB_LISTS:
    case DB_CONTACTS:
    case DB_MEMBERS:
    case DB_SUPPRESS: r = rule_lists(db, k, v); break;
    case DB_CAMPAIGNS: r = rule_campaign(k, v); break;
    case DB_SERIES: r = rule_series(k, v); break;
    default: r = "unknown database"; break;
    }
    if (r)
        snprintf(why, cap, "%s", r);
    return r ? why : NULL;
}

size_t rules_value_cap(int db)
{
    switch (db) {
    case DB_MESSAGES: return 2 + QUEUE_MAX_RCPT + QUEUE_MAX_MESSAGE;
    case DB_CAMPAIGNS: return 64 * 1024 + 2 * (size_t)QUEUE_MAX_TEMPLATE;
    case DB_ACCOUNTS: return 1024 + 2 * QUEUE_MAX_ACCOUNT_TEXT;
    case DB_CONTACTS: return QUEUE_MAX_CONTACT + 64;
    case DB_SDOMAINS: return 64 + QUEUE_MAX_SELECTORS * (3 + 63 + 15 + 1023 + 24);
    default: return 8192;
    }
}

void rules_key_text(int db, const MDB_val *k, char *buf, size_t cap)
{
    const unsigned char *kp = k->mv_data;
    size_t n = k->mv_size;
    if (db == DB_READY && n == 16) {
        snprintf(buf, cap, "due %lld id %llu", (long long)be64_get(kp),
                 (unsigned long long)be64_get(kp + 8));
        return;
    }
    if (n == 8 && (db == DB_DELIVERIES || db == DB_MESSAGES ||
                   db == DB_MSGREFS || db == DB_EVENTS ||
                   db == DB_CONTACTS || db == DB_AUDIT)) {
        snprintf(buf, cap, "%s %llu",
                 db == DB_DELIVERIES ? "id" : db == DB_EVENTS ? "seq"
                 : db == DB_CONTACTS ? "contact" : db == DB_AUDIT ? "seq"
                 : "message", (unsigned long long)be64_get(kp));
        return;
    }
    if (db == DB_COUNTERS && n >= 1) {
        if (n == 1 && kp[0] == 't') {
            snprintf(buf, cap, "total");
            return;
        }
        if (n == 5 && kp[0] == 'a') {
            snprintf(buf, cap, "account %u", be32_get(kp + 1));
            return;
        }
        if (n == 9 && kp[0] == 'c') {
            snprintf(buf, cap, "campaign %llu",
                     (unsigned long long)be64_get(kp + 1));
            return;
        }
        if (kp[0] == 'd' && printable(kp + 1, n - 1)) {
            snprintf(buf, cap, "domain %.*s", (int)(n - 1), kp + 1);
            return;
        }
    }
    if (printable(kp, n)) {
        snprintf(buf, cap, "\"%.*s\"", (int)(n < 80 ? n : 80), kp);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < cap && i < 40; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%02x", kp[i]);
    if (n > 40 && o + 3 < cap)
        snprintf(buf + o, cap - o, "..");
    if (!n)
        snprintf(buf, cap, "(empty key)");
}
