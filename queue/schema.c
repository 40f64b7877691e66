/*
 * schema.c - the spool's named databases and its meta records.
 *
 * DESCRIPTION
 *   Opens (or creates) every named database, writes the magic and schema
 *   version into a new spool, and refuses a spool that is foreign (no magic)
 *   or newer than this build.  Each database records the schema version
 *   that introduced it (db_since[]).  A writable open of an older spool
 *   creates the missing databases and writes the current version in the
 *   open's transaction: the upgrade commits whole or not at all.  A
 *   read-only open of an older spool marks them absent (q->absent[]) and
 *   their readers see them empty.
 *
 *   Versions: 1 the first spool; 2 adds "controls" (paused domains, sites);
 *   3 adds "accounts", "users", "roles", "apikeys", "audit", "sdomains" and
 *   "usage" (queue_admin.h); 4 adds "lists", "contacts", "members",
 *   "suppress" and "campaigns" (queue_campaign.h); 5 adds event types;
 *   6 adds "series" (queue_series.h); 7 writes delivery and contact
 *   records in compact formats 2 (records.c, lists_int.h: varints, about
 *   21 and 16 bytes fewer per queued recipient and per contact) and reads
 *   both formats, so an upgrade to 7 rewrites nothing and a build before
 *   7 refuses the spool instead of misreading it.  An
 *   upgrade creates the databases of every later version in one step.
 *
 * DIAGNOSTICS
 *   QUEUE_EFOREIGN for an LMDB environment that is not ours, QUEUE_ESCHEMA
 *   for a newer schema (with a detail line naming both versions),
 *   QUEUE_ECORRUPT for a spool lacking a database its version must have.
 */
#include <errno.h>
#include <string.h>

#include "queue_int.h"

#define SPOOL_MAGIC "sluice-spool"

const char *const queue_db_names[DB_COUNT] = {
    [DB_META] = "meta",
    [DB_DELIVERIES] = "deliveries",
    [DB_READY] = "ready",
    [DB_MESSAGES] = "messages",
    [DB_MSGREFS] = "msgrefs",
    [DB_EVENTS] = "events",
    [DB_COUNTERS] = "counters",
    [DB_CONTROLS] = "controls",
    [DB_ACCOUNTS] = "accounts",
    [DB_USERS] = "users",
    [DB_ROLES] = "roles",
    [DB_APIKEYS] = "apikeys",
    [DB_AUDIT] = "audit",
    [DB_SDOMAINS] = "sdomains",
    [DB_USAGE] = "usage",
    [DB_LISTS] = "lists",
    [DB_CONTACTS] = "contacts",
    [DB_MEMBERS] = "members",
    [DB_SUPPRESS] = "suppress",
    [DB_CAMPAIGNS] = "campaigns",
    [DB_SERIES] = "series",
};

/* Schema version that introduced each database (0 here means 1). */
static const uint32_t db_since[DB_COUNT] = {
    [DB_CONTROLS] = 2,
    [DB_ACCOUNTS] = 3, [DB_USERS] = 3, [DB_ROLES] = 3, [DB_APIKEYS] = 3,
    [DB_AUDIT] = 3, [DB_SDOMAINS] = 3, [DB_USAGE] = 3,
    [DB_LISTS] = 4, [DB_CONTACTS] = 4, [DB_MEMBERS] = 4, [DB_SUPPRESS] = 4,
    [DB_CAMPAIGNS] = 4,
    [DB_SERIES] = 6,
};

uint32_t schema_db_since(int db)
{
    return db >= 0 && db < DB_COUNT && db_since[db] ? db_since[db] : 1;
}

/* Read a u64 meta value (0 when absent). */
int qmeta_get_u64(struct queue *q, MDB_txn *txn, const char *name, uint64_t *v)
{
    MDB_val k = { strlen(name), (void *)name }, d;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &d);
    *v = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_err_mdb(rc);
    if (d.mv_size != 8)
        return QUEUE_ECORRUPT;
    *v = be64_get(d.mv_data);
    return 0;
}

/* Write a u64 meta value; returns the raw LMDB code for txn-fatal checks. */
int qmeta_put_u64(struct queue *q, MDB_txn *txn, const char *name, uint64_t v)
{
    unsigned char buf[8];
    be64_put(buf, v);
    MDB_val k = { strlen(name), (void *)name }, d = { 8, buf };
    return mdb_put(txn, q->dbi[DB_META], &k, &d, 0);
}

/* Whether the unnamed main database holds anything.  A spool without its
 * meta database has never been created: sluice creates every database and
 * the meta records in one transaction, so any named database (even one
 * named like ours: "users" is a common name) or plain key there belongs to
 * some other program. */
static int main_db_is_foreign(struct queue *q, MDB_txn *txn, bool *foreign)
{
    MDB_dbi main;
    MDB_stat st;
    int rc = mdb_dbi_open(txn, NULL, 0, &main);
    *foreign = false;
    (void)q;
    if (rc || (rc = mdb_stat(txn, main, &st)))
        return queue_err_mdb(rc);
    *foreign = st.ms_entries > 0;
    return 0;
}

/* Check the magic and the schema version of an existing spool. */
static int check_meta(struct queue *q, MDB_txn *txn, uint64_t *schema)
{
    MDB_val k = { strlen("magic"), "magic" }, d;
    int rc = mdb_get(txn, q->dbi[DB_META], &k, &d);
    if (rc == MDB_NOTFOUND || (rc == 0 && (d.mv_size != strlen(SPOOL_MAGIC) ||
                               memcmp(d.mv_data, SPOOL_MAGIC, d.mv_size)))) {
        queue_set_detail("%s: meta data lacks the sluice spool magic", q->dir);
        return QUEUE_EFOREIGN;
    }
    if (rc)
        return queue_err_mdb(rc);
    int err = qmeta_get_u64(q, txn, "schema", schema);
    if (err)
        return err;
    if (*schema > QUEUE_SCHEMA_VERSION) {
        queue_set_detail("%s: spool schema version %llu is newer than this "
                         "sluice understands (%d); use a newer sluice",
                         q->dir, (unsigned long long)*schema,
                         QUEUE_SCHEMA_VERSION);
        return QUEUE_ESCHEMA;
    }
    if (*schema == 0) {
        queue_set_detail("%s: spool has no schema version", q->dir);
        return QUEUE_ECORRUPT;
    }
    return 0;
}

/* Open every database and check (or, for a new spool, write) the meta;
 * upgrade an older spool unless read-only. */
int schema_open(struct queue *q, MDB_txn *txn, bool create)
{
    MDB_dbi meta;
    int rc = mdb_dbi_open(txn, queue_db_names[DB_META], 0, &meta);
    uint64_t schema = QUEUE_SCHEMA_VERSION;
    bool fresh = false;
    int err;

    if (rc == MDB_NOTFOUND) {
        bool foreign;
        if ((err = main_db_is_foreign(q, txn, &foreign)))
            return err;
        if (foreign || !create || q->readonly) {
            queue_set_detail("%s: LMDB environment without sluice meta data",
                             q->dir);
            return QUEUE_EFOREIGN;
        }
        fresh = true;
    } else if (rc == MDB_INCOMPATIBLE) {
        queue_set_detail("%s: LMDB environment of another layout", q->dir);
        return QUEUE_EFOREIGN;
    } else if (rc) {
        queue_set_detail("%s: the 'meta' database cannot be opened: %s",
                         q->dir, mdb_strerror(rc));
        return queue_err_mdb(rc);
    } else {
        q->dbi[DB_META] = meta;
        if ((err = check_meta(q, txn, &schema)))
            return err;
    }

    for (int i = 0; i < DB_COUNT; i++) {
        bool newer_db = schema < (db_since[i] ? db_since[i] : 1);
        unsigned flags = fresh || (newer_db && !q->readonly) ? MDB_CREATE : 0;
        rc = mdb_dbi_open(txn, queue_db_names[i], flags, &q->dbi[i]);
        if (rc == MDB_NOTFOUND && newer_db) {
            q->absent[i] = true;   /* read-only open of an older spool */
            continue;
        }
        if (rc == MDB_NOTFOUND) {
            queue_set_detail("%s: sluice spool lacks the '%s' database",
                             q->dir, queue_db_names[i]);
            return QUEUE_ECORRUPT;
        }
        if (rc) {
            queue_set_detail("%s: the '%s' database cannot be opened: %s",
                             q->dir, queue_db_names[i], mdb_strerror(rc));
            return queue_err_mdb(rc);
        }
    }

    if (fresh) {
        MDB_val k = { strlen("magic"), "magic" };
        MDB_val d = { strlen(SPOOL_MAGIC), SPOOL_MAGIC };
        if ((rc = mdb_put(txn, q->dbi[DB_META], &k, &d, 0)) ||
            (rc = qmeta_put_u64(q, txn, "schema", QUEUE_SCHEMA_VERSION)) ||
            (rc = qmeta_put_u64(q, txn, "next_delivery", 1)) ||
            (rc = qmeta_put_u64(q, txn, "next_message", 1)) ||
            (rc = qmeta_put_u64(q, txn, "next_event", 1)))
            return queue_err_mdb(rc);
        return 0;
    }
    if (schema < QUEUE_SCHEMA_VERSION && !q->readonly &&
        (rc = qmeta_put_u64(q, txn, "schema", QUEUE_SCHEMA_VERSION)))
        return queue_err_mdb(rc);
    return 0;
}
