/*
 * check.c - `sluice spool check`: walk every database and record of a
 * spool and report what is damaged or inconsistent.
 *
 * DESCRIPTION
 *   The walk runs in a child process (walk.c) so that a page that faults
 *   ends nothing but the walk.  In the child the spool is first opened as
 *   the library opens it (queue_open, read-only), which gives the refusals
 *   (not a spool, newer schema, truncated file), then with plain LMDB.  It
 *   walks LMDB's free-page list and main database, then each database of
 *   the schema in key order (walk.c skips what cannot be read), checking
 *   each record with rules.c and, unless quick, the invariants that tie
 *   records together:
 *     deliveries  id below meta next_delivery; queued: its ready entry
 *                 (next_attempt, id) exists, its message is stored (an
 *                 injected one); its newest event exists and is its own
 *     ready       names a queued delivery due at that time
 *     messages    id below next_message, has a reference count
 *     msgrefs     counts a stored message, equal to its queued recipients
 *     events      seq below next_event, names an existing delivery (an
 *                 unsubscribed event may name none)
 *     counters    equal to what deliveries and deferral events count
 *                 (tally.c)
 *     audit       each record's link is the one its bytes give (the
 *                 SHA-256 of an unkeyed record; the HMAC of a keyed one,
 *                 when the caller gave the key: without it a note says
 *                 how many MACs went unchecked), no unkeyed record after
 *                 a keyed one, each record's previous link is the link
 *                 before it, and meta audit_head is the last record
 *   Each problem goes to the parent as one message; at most PROBLEM_CAP
 *   per database are sent, all are counted.
 *
 * DIAGNOSTICS
 *   queue_check() returns 0 when it looked at the spool (the report says
 *   what it found) or the code that kept it from looking (see queue.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "admin_int.h"
#include "check_int.h"

#define PROBLEM_CAP 200
#define LOOK_CAP 4096       /* value bytes a lookup copies (an event fits) */

struct ck {
    const char *dir;
    unsigned flags;
    int fd;
    struct raw s;
    MDB_txn *look;           /* the lookups' read transaction */
    struct tally *t;
    unsigned look_failed[DB_COUNT]; /* lookups into each that failed */
    int db;                  /* database being walked */
    uint64_t problems;       /* found in it */
    uint64_t next[16];       /* meta counters of rules_ids (0: absent) */
    unsigned char audit_head[8 + QUEUE_AUDIT_HASH];
    bool have_head;
    uint64_t last_pgno;
    unsigned char prev_hash[QUEUE_AUDIT_HASH];
    bool have_prev;
    uint64_t audit_last;
    bool have_key;           /* the audit key was given */
    unsigned char key[QUEUE_AUDIT_KEY], key_id[QUEUE_AUDIT_KEY_ID];
    uint64_t keyed_from;     /* first keyed audit record, 0: none yet */
    uint64_t unchecked;      /* keyed records whose MAC was not checked */
    unsigned char buf[LOOK_CAP];
};

/* ---------------------------------------------------- parent's side */

/* The report's entry for database index db (added if new). */
static struct queue_check_db *report_db(struct queue_check_report *r, int db)
{
    const char *name = walk_db_name(db);
    for (size_t i = 0; i < r->ndb; i++)
        if (!strcmp(r->db[i].name, name))
            return &r->db[i];
    if (r->ndb == QUEUE_CHECK_DBS)
        return NULL;
    struct queue_check_db *d = &r->db[r->ndb++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    return d;
}

void qcollect_msg(void *arg, const struct walk_msg *m)
{
    struct collect *c = arg;
    struct queue_check_db *d = m->kind == WM_PROBLEM ||
                               m->kind == WM_DB_END
                               ? report_db(c->r, m->db) : NULL;
    char key[sizeof m->key + 1], what[sizeof m->what + 1];
    memcpy(key, m->key, sizeof m->key);
    key[sizeof m->key] = 0;
    memcpy(what, m->what, sizeof m->what);
    what[sizeof m->what] = 0;
    switch (m->kind) {
    case WM_PROBLEM:
        c->r->problems++;
        if (d)
            d->problems++;
        if (c->cb)
            c->cb(c->arg, QUEUE_REPORT_PROBLEM, walk_db_name(m->db), key,
                  what);
        break;
    case WM_NOTE:
        c->r->notes++;
        if (c->cb)
            c->cb(c->arg, QUEUE_REPORT_NOTE, walk_db_name(m->db), key, what);
        break;
    case WM_DB_BEGIN:
        c->db = m->db;
        break;
    case WM_DB_END:
        c->db = -1;
        if (!d)
            break;
        d->records = m->n[0];
        c->r->records += m->n[0];
        if (m->n[1] > d->problems) { /* those past the cap */
            c->r->problems += m->n[1] - d->problems;
            d->problems = m->n[1];
        }
        d->copied = m->n[3];
        break;
    case WM_COUNT:
        if (!strcmp(key, "ended_no_message"))
            c->r->ended_no_message += m->n[0];
        else if (!strcmp(key, "lost_queued"))
            c->r->lost_queued += m->n[0];
        break;
    case WM_ERROR:
        c->err = -(int)m->n[0];
        if (*what)
            queue_set_detail("%s", what);
        break;
    }
}

void qcollect_end(struct collect *c, int status)
{
    if (status < 128 || c->err)
        return;
    struct walk_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WM_PROBLEM;
    m.db = (uint8_t)(c->db >= 0 ? c->db : WM_DB_FILE);
    snprintf(m.what, sizeof m.what, "the walk died of signal %d here; what "
             "follows was not read", status - 128);
    c->r->fatal_signal = status - 128;
    qcollect_msg(c, &m);
}

/* ------------------------------------------------- opening, in the child */

/* Whether DIR's data.mdb is missing or empty (nothing LMDB can read). */
static bool data_file_empty(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &st) || st.st_size == 0;
}

/* Open DIR as the library does, under the guard: 0 when it opens, 1 when
 * it is damaged (reported) and 2 when it is no spool to walk (WM_ERROR). */
static int library_open(const char *dir, int fd, int kind)
{
    struct queue_options o = { .flags = QUEUE_OPEN_READONLY };
    struct queue *q = NULL;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        qguard_at = NULL;
        walk_send(fd, WM_PROBLEM, WM_DB_MAIN, "", "opening the spool "
                  "faulted: LMDB's main database is damaged", 0, 0, 0, 0);
        return 1;
    }
    qguard_at = &jb;
    int err = queue_open(&q, dir, &o);
    qguard_at = NULL;
    if (!err) {
        queue_close(q);
        return 0;
    }
    if (err == QUEUE_ECORRUPT) {
        char path[4096];
        int bad;
        uint32_t psize;
        walk_send(fd, kind, WM_DB_FILE, "", queue_last_detail(), 0, 0, 0, 0);
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (!metapage_probe(path, &bad, &psize) && (bad == 0 || bad == 1)) {
            char what[160];
            snprintf(what, sizeof what, "LMDB's meta page %d is damaged, "
                     "the other one is intact: salvage reads every record "
                     "through it", bad);
            walk_send(fd, WM_NOTE, WM_DB_FILE, "", what, 0, 0, 0, 0);
        }
        return 1;
    }
    walk_send(fd, WM_ERROR, WM_DB_FILE, "", queue_last_detail(),
              (uint64_t)-err, 0, 0, 0);
    return 2;
}

/* The schema version in the meta database, under a guard of its own: a
 * meta database that cannot be read is the meta walk's to report, the
 * others are opened as this build's. */
static uint64_t read_schema(MDB_txn *txn, MDB_dbi meta)
{
    sigjmp_buf jb;
    sigjmp_buf *volatile outer = qguard_at;
    uint64_t schema = QUEUE_SCHEMA_VERSION;
    MDB_val sk = { 6, "schema" }, sv;
    if (sigsetjmp(jb, 0)) {
        qguard_at = outer;
        return QUEUE_SCHEMA_VERSION;
    }
    qguard_at = &jb;
    if (!mdb_get(txn, meta, &sk, &sv) && sv.mv_size == 8)
        schema = be64_get(sv.mv_data);
    qguard_at = outer;
    return schema;
}

/* Open one database in a read transaction of its own, kept when it
 * opens: a database LMDB cannot open marks its transaction bad, and in a
 * shared one every open after it would fail too (MDB_BAD_TXN), hiding
 * the databases that are sound and the first failure's own cause. */
static int open_one(struct raw *s, const char *name, MDB_dbi *dbi)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_dbi_open(txn, name, 0, dbi))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn); /* keeps the handle */
}

/* Open every database of the schema under the guard; a database that
 * cannot be opened is reported and left out (and marked unopened).  -1
 * when the main database faulted. */
static int open_databases(struct raw *s, int fd)
{
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0)) {
        qguard_at = NULL;
        walk_send(fd, WM_PROBLEM, WM_DB_MAIN, "", "reading the names of the "
                  "databases faulted: LMDB's main database is damaged",
                  0, 0, 0, 0);
        return -1;
    }
    qguard_at = &jb;
    uint64_t schema = QUEUE_SCHEMA_VERSION;
    MDB_dbi meta;
    MDB_txn *txn;
    if (!open_one(s, "meta", &meta) &&
        !mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) {
        schema = read_schema(txn, meta);
        mdb_txn_abort(txn);
    }
    for (int i = 0; i < DB_COUNT; i++) {
        int rc = open_one(s, queue_db_names[i], &s->dbi[i]);
        s->present[i] = rc == 0;
        if (rc == MDB_NOTFOUND && schema < schema_db_since(i))
            continue; /* an older spool: not there yet */
        if (rc) {
            char what[160];
            s->unopened[i] = true;
            snprintf(what, sizeof what, "database cannot be opened: %s",
                     rc == MDB_NOTFOUND ? "it is missing" : mdb_strerror(rc));
            walk_send(fd, WM_PROBLEM, i, "", what, 0, 0, 0, 0);
        }
    }
    qguard_at = NULL;
    return 0;
}

int qraw_open(struct raw *s, const char *dir, int fd, int damage_kind)
{
    int rc;

    memset(s, 0, sizeof *s);
    int how = library_open(dir, fd, damage_kind);
    if (how == 2 || (how == 1 && data_file_empty(dir)))
        return how;
    if ((rc = mdb_env_create(&s->env)))
        goto fail;
    mdb_env_set_assert(s->env, qguard_assert);
    mdb_env_set_maxdbs(s->env, 64);
    if ((rc = mdb_env_open(s->env, dir, MDB_RDONLY | MDB_NOTLS, 0600)))
        goto fail;
    if (open_databases(s, fd)) {
        qraw_close(s);
        return 1;
    }
    return 0;
fail:
    qraw_close(s);
    if (how == 0) {
        char what[160];
        snprintf(what, sizeof what, "LMDB cannot open it: %s",
                 mdb_strerror(rc));
        walk_send(fd, WM_PROBLEM, WM_DB_FILE, "", what, 0, 0, 0, 0);
    }
    return 1;
}

void qraw_close(struct raw *s)
{
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
}

/* --------------------------------------------------- checks, in the child */

/* Report a problem with the record under key k (NULL: the database). */
static void problem(struct ck *c, const MDB_val *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct ck *c, const MDB_val *k, const char *fmt, ...)
{
    char key[96] = "", what[200];
    va_list ap;
    if (++c->problems > PROBLEM_CAP)
        return;
    if (k)
        rules_key_text(c->db, k, key, sizeof key);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    walk_send(c->fd, WM_PROBLEM, c->db, key, what, 0, 0, 0, 0);
}

/* Look a key up in database db for the record `about`: 1 found (value in
 * v, in c->buf when it fits), 0 absent, -1 unreadable (reported). */
static int look(struct ck *c, int db, const void *key, size_t klen,
                MDB_val *v, const MDB_val *about)
{
    char why[160];
    MDB_val k = { klen, (void *)key };
    if (!c->s.present[db])
        return 0;
    int rc = walk_get(c->s.env, &c->look, c->s.dbi[db], &k, v, c->buf,
                      sizeof c->buf, why, sizeof why);
    if (rc == 0)
        return 1;
    if (rc == MDB_NOTFOUND)
        return 0;
    /* the damage itself is reported where it lies: name the first few
     * records it hides something from, count the rest */
    if (++c->look_failed[db] <= 3)
        problem(c, about, "%s cannot be read for it: %s%s",
                queue_db_names[db], why, c->look_failed[db] == 3
                ? " (further failed lookups are counted, not listed)" : "");
    else
        c->problems++;
    return -1;
}

static void check_delivery(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    struct queue_delivery d;
    unsigned char key[16];
    MDB_val lv;
    qdelivery_decode(v, be64_get(k->mv_data), &d);
    tally_delivery(c->t, &d);
    if (d.state == QUEUE_ST_QUEUED) {
        be64_put(key, (uint64_t)d.next_attempt);
        be64_put(key + 8, d.id);
        if (look(c, DB_READY, key, 16, &lv, k) == 0)
            problem(c, k, "queued for %s but not in the ready index: it "
                    "would never be sent", d.rcpt);
        be64_put(key, d.ref);
        if (!d.campaign && look(c, DB_MESSAGES, key, 8, &lv, k) == 0)
            problem(c, k, "queued for %s, but its message %llu is not "
                    "stored: it cannot be sent", d.rcpt,
                    (unsigned long long)d.ref);
    }
    if (d.last_event) {
        struct queue_event e;
        be64_put(key, d.last_event);
        int r = look(c, DB_EVENTS, key, 8, &lv, k);
        if (r == 0)
            problem(c, k, "its newest event %llu is missing",
                    (unsigned long long)d.last_event);
        else if (r == 1 && lv.mv_data &&
                 !qevent_decode(&lv, d.last_event, &e) && e.delivery != d.id)
            problem(c, k, "its newest event %llu is delivery %llu's",
                    (unsigned long long)d.last_event,
                    (unsigned long long)e.delivery);
    }
}

static void check_ready(struct ck *c, const MDB_val *k)
{
    const unsigned char *kp = k->mv_data;
    int64_t due = (int64_t)be64_get(kp);
    struct queue_delivery d;
    MDB_val lv;
    int r = look(c, DB_DELIVERIES, kp + 8, 8, &lv, k);
    if (r == 0)
        problem(c, k, "names a delivery that does not exist");
    if (r != 1 || !lv.mv_data || qdelivery_decode(&lv, be64_get(kp + 8), &d))
        return; /* an unreadable delivery is reported where it lies */
    if (QUEUE_STATE_TERMINAL(d.state))
        problem(c, k, "its delivery already ended (%s)",
                queue_state_name(d.state));
    else if (d.next_attempt != due)
        problem(c, k, "its delivery is due at %lld, not then",
                (long long)d.next_attempt);
}

/* A tallied key without its stored record (message references or
 * counters). */
static void missing_record(void *arg, const unsigned char *key, size_t klen,
                           const uint64_t n[CF_COUNT])
{
    struct ck *c = arg;
    if (c->db == DB_MSGREFS && key[0] == 'm' && klen == 9 && n[0]) {
        MDB_val k = { 8, (void *)(key + 1) };
        problem(c, &k, "%llu queued recipients but no reference count",
                (unsigned long long)n[0]);
    } else if (c->db == DB_COUNTERS && key[0] != 'm') {
        MDB_val k = { klen, (void *)key };
        problem(c, &k, "no counter record, though the rows count %llu "
                "queued of %llu enqueued", (unsigned long long)n[CF_QUEUED],
                (unsigned long long)n[CF_ENQUEUED]);
    }
}

static void check_msgref(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    const unsigned char *p = v->mv_data;
    uint32_t refs = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                    (uint32_t)p[2] << 8 | p[3];
    unsigned char key[9] = { 'm' };
    uint64_t n[CF_COUNT];
    MDB_val lv;
    if (look(c, DB_MESSAGES, k->mv_data, 8, &lv, k) == 0)
        problem(c, k, "counts references to a message that is not stored");
    memcpy(key + 1, k->mv_data, 8);
    tally_take(c->t, key, sizeof key, n);
    if (!tally_full(c->t) && n[0] != refs)
        problem(c, k, "says %u recipients are left, the deliveries say %llu",
                refs, (unsigned long long)n[0]);
}

static void check_counter(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    static const char *const names[CF_COUNT] = {
        "queued", "enqueued", "delivered", "deferred", "bounced", "expired",
        "suppressed", "cancelled"
    };
    const unsigned char *kp = k->mv_data;
    uint64_t stored[CF_COUNT], n[CF_COUNT];
    if (kp[0] == 'b' || tally_full(c->t))
        return;
    (void)qcounts_load(v, stored);   /* its size: rules.c */
    tally_take(c->t, kp, k->mv_size, n);
    for (int f = 0; f < CF_COUNT; f++)
        if (stored[f] != n[f]) {
            problem(c, k, "%s is %llu, the rows count %llu", names[f],
                    (unsigned long long)stored[f],
                    (unsigned long long)n[f]);
            break;
        }
}

/* Meta records the other checks need: the id counters, the audit head. */
static void take_meta(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    for (size_t i = 0; i < rules_nids; i++)
        if (k->mv_size == strlen(rules_ids[i].meta) &&
            !memcmp(k->mv_data, rules_ids[i].meta, k->mv_size))
            c->next[i] = be64_get(v->mv_data);
    if (k->mv_size == 10 && !memcmp(k->mv_data, "audit_head", 10)) {
        memcpy(c->audit_head, v->mv_data, sizeof c->audit_head);
        c->have_head = true;
    }
}

/* Ids must stay below the meta counter that hands out the next one: an id
 * at or above it would be handed out again, overwriting the record. */
static void check_id(struct ck *c, const MDB_val *k)
{
    for (size_t i = 0; i < rules_nids; i++) {
        uint64_t id;
        if (rules_ids[i].db != c->db || !c->next[i] ||
            !(id = rules_id_of(&rules_ids[i], k)) || id < c->next[i])
            continue;
        problem(c, k, "id is not below meta %s (%llu): a new record would "
                "overwrite it", rules_ids[i].meta,
                (unsigned long long)c->next[i]);
    }
}

/* An audit record: its own link, the key rules, its link to the record
 * before it (audit_verify.c has the same rules for `audit verify`). */
static void check_audit(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    struct queue_audit r;
    unsigned char calc[QUEUE_AUDIT_HASH];
    qaudit_decode(v, &r);     /* rules.c found that it decodes */
    if (!r.keyed && c->keyed_from)
        problem(c, k, "unkeyed audit record after keyed ones: rewritten? "
                "(keyed from %llu)", (unsigned long long)c->keyed_from);
    if (r.keyed && !c->keyed_from)
        c->keyed_from = r.seq;
    if (r.keyed && !c->have_key)
        c->unchecked++;
    else if (r.keyed && memcmp(r.key_id, c->key_id, sizeof c->key_id))
        problem(c, k, "written with another key than audit_key");
    else if (!qaudit_link(v, r.keyed, c->key, calc) ||
             memcmp(calc, r.hash, sizeof calc))
        problem(c, k, r.keyed ? "its bytes do not match its MAC"
                              : "its bytes do not match its hash");
    if (c->have_prev && memcmp(r.prev, c->prev_hash, sizeof r.prev))
        problem(c, k, "audit chain broken: its previous link is not the "
                "link of the record before it");
    memcpy(c->prev_hash, r.hash, sizeof c->prev_hash);
    c->have_prev = true;
    c->audit_last = r.seq;
}

/* The invariants of one well-formed record (not in quick mode). */
static void check_links(struct ck *c, const MDB_val *k, const MDB_val *v)
{
    MDB_val lv;
    uint64_t id = k->mv_size == 8 ? be64_get(k->mv_data) : 0;
    check_id(c, k);
    switch (c->db) {
    case DB_META:
        take_meta(c, k, v);
        break;
    case DB_DELIVERIES: check_delivery(c, k, v); break;
    case DB_READY: check_ready(c, k); break;
    case DB_MESSAGES:
        if (look(c, DB_MSGREFS, k->mv_data, 8, &lv, k) == 0)
            problem(c, k, "has no reference count: it would never be freed");
        break;
    case DB_MSGREFS: check_msgref(c, k, v); break;
    case DB_EVENTS: {
        struct queue_event e;
        qevent_decode(v, id, &e);
        unsigned char dk[8];
        be64_put(dk, e.delivery);
        if ((e.delivery || (e.type != QUEUE_EV_UNSUBSCRIBED &&
                            e.type != QUEUE_EV_INCIDENT)) &&
            look(c, DB_DELIVERIES, dk, 8, &lv, k) == 0)
            problem(c, k, "names delivery %llu, which does not exist",
                    (unsigned long long)e.delivery);
        if (e.type == QUEUE_EV_DEFERRED)
            tally_deferral(c->t, &e);
        break;
    }
    case DB_COUNTERS: check_counter(c, k, v); break;
    case DB_AUDIT: check_audit(c, k, v); break;
    }
}

/* One record of the walked database. */
static int on_record(struct walk *w, const MDB_val *k, const MDB_val *v)
{
    struct ck *c = w->arg;
    char why[200];
    if (c->db == WM_DB_FREE) {
        /* txnid -> page count, then the page numbers (host size_t) */
        size_t n = 0;
        if (k->mv_size != sizeof(size_t) || !v->mv_data ||
            v->mv_size < sizeof n) {
            problem(c, k, "free-page record does not decode");
            return 0;
        }
        memcpy(&n, v->mv_data, sizeof n);
        if (n > v->mv_size / sizeof n || (n + 1) * sizeof n != v->mv_size) {
            problem(c, k, "free-page list of %zu pages in %zu bytes", n,
                    v->mv_size);
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            size_t pg;
            memcpy(&pg, (const char *)v->mv_data + i * sizeof pg, sizeof pg);
            if (pg < 2 || pg > c->last_pgno) {
                problem(c, k, "free page %zu is outside the file", pg);
                break;
            }
        }
        return 0;
    }
    if (c->db == WM_DB_MAIN) {
        bool ours = false;
        for (int i = 0; i < DB_COUNT && !ours; i++)
            ours = k->mv_size == strlen(queue_db_names[i]) &&
                   !memcmp(k->mv_data, queue_db_names[i], k->mv_size);
        if (!ours)
            problem(c, k, "unknown database");
        else if (v->mv_size != 48)
            problem(c, k, "database record is not an LMDB database");
        return 0;
    }
    if (rules_record(c->db, k, v, why, sizeof why)) {
        problem(c, k, "%s", why);
        return 0;
    }
    if (!(c->flags & QUEUE_CHECK_QUICK))
        check_links(c, k, v);
    return 0;
}

/* A stretch of the walked database that could not be read. */
static void on_gap(struct walk *w, const MDB_val *after, const MDB_val *resume,
                   const char *why)
{
    struct ck *c = w->arg;
    char to[96] = "the end";
    if (resume)
        rules_key_text(c->db, resume, to, sizeof to);
    if (after)
        problem(c, after, "records after this one up to %s could not be "
                "read: %s", to, why);
    else
        problem(c, NULL, "records from the start up to %s could not be "
                "read: %s", to, why);
}

/* Walk one database (or LMDB's own: WM_DB_FREE, WM_DB_MAIN). */
static void walk_one(struct ck *c, int db, MDB_dbi dbi, bool present)
{
    struct walk w = { .env = c->s.env, .dbi = dbi, .record = on_record,
                      .gap = on_gap, .arg = c };
    MDB_stat st = { 0 };
    MDB_txn *txn;
    c->db = db;
    c->problems = 0;
    memset(c->look_failed, 0, sizeof c->look_failed);
    walk_send(c->fd, WM_DB_BEGIN, db, NULL, NULL, 0, 0, 0, 0);
    if (!present) {
        walk_send(c->fd, WM_DB_END, db, NULL, NULL, 0, 0, 0, 0);
        return;
    }
    w.vcap = db < DB_COUNT ? rules_value_cap(db) : 1u << 24;
    w.intkey = db == WM_DB_FREE; /* txnids, MDB_INTEGERKEY */
    int err = walk_run(&w);
    if (err)
        problem(c, NULL, "cannot be read: %s", queue_strerror(err));
    if (!mdb_txn_begin(c->s.env, NULL, MDB_RDONLY, &txn)) {
        mdb_stat(txn, dbi, &st); /* from the database record: no page */
        mdb_txn_abort(txn);
    }
    if (!err && !w.gaps && st.ms_entries != w.records)
        problem(c, NULL, "its header counts %llu records, the walk found "
                "%llu", (unsigned long long)st.ms_entries,
                (unsigned long long)w.records);
    if (!(c->flags & QUEUE_CHECK_QUICK) &&
        (db == DB_MSGREFS || db == DB_COUNTERS) && !tally_full(c->t))
        tally_rest(c->t, missing_record, c);
    if (!(c->flags & QUEUE_CHECK_QUICK) && db == DB_AUDIT && c->have_prev &&
        (!c->have_head || be64_get(c->audit_head) != c->audit_last ||
         memcmp(c->audit_head + 8, c->prev_hash, QUEUE_AUDIT_HASH)))
        problem(c, NULL, "meta audit_head is not the last record (%llu): "
                "the next audit record would not chain",
                (unsigned long long)c->audit_last);
    if (db == DB_AUDIT && c->unchecked) {
        char what[200];
        snprintf(what, sizeof what, "%llu keyed audit records (from %llu): "
                 "links checked, MACs not (no audit key; 'sluice audit "
                 "verify' with audit_key checks them)",
                 (unsigned long long)c->unchecked,
                 (unsigned long long)c->keyed_from);
        walk_send(c->fd, WM_NOTE, DB_AUDIT, "", what, 0, 0, 0, 0);
    }
    walk_send(c->fd, WM_DB_END, db, NULL, NULL, w.records, c->problems,
              st.ms_entries, 0);
    walk_free(&w);
}

static int check_child(int fd, void *arg)
{
    struct ck *c = arg;
    c->fd = fd;
    int rc = qraw_open(&c->s, c->dir, fd, WM_PROBLEM);
    if (rc)
        return rc == 2 ? 66 : 0;
    if (!(c->flags & QUEUE_CHECK_QUICK) && !(c->t = tally_new()))
        return 71;
    MDB_envinfo ei;
    mdb_env_info(c->s.env, &ei);
    c->last_pgno = ei.me_last_pgno;
    walk_one(c, WM_DB_FREE, 0, true);
    walk_one(c, WM_DB_MAIN, 1, true);
    /* the order matters: meta's counters, then the rows the derived
     * records are tallied from, then those records */
    static const int order[] = { DB_META, DB_DELIVERIES, DB_READY,
                                 DB_MESSAGES, DB_EVENTS, DB_MSGREFS,
                                 DB_COUNTERS };
    bool done[DB_COUNT] = { false };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        walk_one(c, order[i], c->s.dbi[order[i]], c->s.present[order[i]]);
        done[order[i]] = true;
    }
    for (int i = 0; i < DB_COUNT; i++)
        if (!done[i])
            walk_one(c, i, c->s.dbi[i], c->s.present[i]);
    if (c->t && tally_full(c->t))
        walk_send(fd, WM_NOTE, DB_COUNTERS, NULL, "more distinct counters "
                  "and messages than the check holds in memory: counters "
                  "and reference counts were not compared", 0, 0, 0, 0);
    if (c->look)
        mdb_txn_abort(c->look);
    tally_free(c->t);
    qraw_close(&c->s);
    return 0;
}

int queue_check(const char *dir, unsigned flags, queue_report_cb cb,
                void *arg, struct queue_check_report *r)
{
    return queue_check_keyed(dir, flags, NULL, cb, arg, r);
}

int queue_check_keyed(const char *dir, unsigned flags,
                      const unsigned char *audit_key, queue_report_cb cb,
                      void *arg, struct queue_check_report *r)
{
    struct ck *c = calloc(1, sizeof *c);
    struct collect col = { .r = r, .cb = cb, .arg = arg, .db = -1 };
    memset(r, 0, sizeof *r);
    if (!c)
        return -ENOMEM;
    c->dir = dir;
    c->flags = flags;
    if (audit_key) {
        c->have_key = true;
        memcpy(c->key, audit_key, sizeof c->key);
        queue_audit_key_id(c->key, c->key_id);
    }
    queue_set_detail("%s", "");
    int st = walk_child(check_child, c, qcollect_msg, &col);
    OPENSSL_cleanse(c->key, sizeof c->key);
    free(c);
    if (st < 0)
        return st;
    if (col.err)
        return col.err;
    if (st > 0 && st < 128) {
        queue_set_detail("the walk could not run (status %d)", st);
        return st == 71 ? -ENOMEM : -EIO;
    }
    qcollect_end(&col, st);
    return 0;
}
