/*
 * test_lists.c - contact lists, contacts, imports and suppression lists
 * (queue/lists.c, contacts.c, import.c, suppress.c).
 *
 * DESCRIPTION
 *   Lists: names unique per account, found by name and id, listed per
 *   account and in all, deleted with an audit record.  Contacts round-trip
 *   with their merge values (CR, LF, UTF-8 kept) through close and reopen;
 *   a later import that brings new columns appends fields and older
 *   contacts read "" for them.  Imports drop duplicates (case-insensitive,
 *   within the import with the first line, and against earlier imports),
 *   skip suppressed addresses, hand back the caller's rejects in order,
 *   refuse bad rows without harm, fail cleanly when the list is deleted
 *   under them, and write one audit record.  Deleting a list removes all
 *   its contacts and members (across several purge chunks), leaves other
 *   lists alone, and a delete left half done (edited in with raw LMDB) is
 *   finished by the next one.
 *   Suppression entries record the account that added them: on a shared
 *   list a sub-account's view holds only its own, an add or import never
 *   re-attributes another's entry, removing another's is refused (-EACCES,
 *   nothing changed) unless the caller allows any; every entry blocks
 *   every account on the list.  A record of the format before (1, written
 *   with raw LMDB) reads as added by the owner, and the spool check takes
 *   both formats while naming an unknown one.
 */
#include <lmdb.h>

#include "queue_campaign.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* ------------------------------------------------------------ helpers */

/* The newest audit record. */
struct last_audit {
    struct queue_audit r;
    long n;
};

static int last_audit_cb(void *arg, const struct queue_audit *r)
{
    struct last_audit *l = arg;
    l->r = *r;
    l->n++;
    return 0;
}

static void last_audit(struct queue *q, struct queue_audit *out)
{
    struct last_audit *l = calloc(1, sizeof *l);
    assert_non_null(l);
    assert_true(queue_audit_list(q, 1, last_audit_cb, l) > 0);
    *out = l->r;
    free(l);
}

/* Results of an import, kept for checks. */
#define MAX_RES 64
struct results {
    size_t n;
    struct {
        uint64_t line, contact, dup_line;
        int outcome;
        char email[QUEUE_MAX_RCPT + 1];
        char reason[QUEUE_MAX_IMPORT_REASON + 1];
    } r[MAX_RES];
    uint64_t seen, last_line;
    bool in_order;
};

static void results_cb(void *arg, const struct queue_import_result *r)
{
    struct results *res = arg;
    if (res->seen && r->line <= res->last_line)
        res->in_order = false;
    res->seen++;
    res->last_line = r->line;
    if (res->n == MAX_RES)
        return;
    res->r[res->n].line = r->line;
    res->r[res->n].contact = r->contact;
    res->r[res->n].dup_line = r->dup_line;
    res->r[res->n].outcome = r->outcome;
    snprintf(res->r[res->n].email, sizeof res->r[0].email, "%s", r->email);
    snprintf(res->r[res->n].reason, sizeof res->r[0].reason, "%s",
             r->reason ? r->reason : "");
    res->n++;
}

static struct results *results_new(void)
{
    struct results *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->in_order = true;
    return r;
}

/* Add one row with up to 4 values given as strings. */
static int add_row(struct queue_import *im, uint64_t line, const char *email,
                   const char *v0, const char *v1, const char *v2)
{
    const char *vals[3] = { v0 ? v0 : "", v1 ? v1 : "", v2 ? v2 : "" };
    size_t lens[3] = { strlen(vals[0]), strlen(vals[1]), strlen(vals[2]) };
    return queue_import_add(im, line, email, vals, lens);
}

/* A contact copied out of its callback. */
struct contact_copy {
    uint64_t id, list;
    char email[QUEUE_MAX_RCPT + 1];
    unsigned n;
    char names[QUEUE_MAX_FIELDS][QUEUE_MAX_FIELD_NAME + 1];
    char values[8][256];
    size_t lens[8];
};

static void copy_contact(void *arg, const struct queue_contact *c)
{
    struct contact_copy *cc = arg;
    memset(cc, 0, sizeof *cc);
    cc->id = c->id;
    cc->list = c->list;
    snprintf(cc->email, sizeof cc->email, "%s", c->email);
    cc->n = c->nvalues;
    for (unsigned i = 0; i < c->nvalues && i < 8; i++) {
        snprintf(cc->names[i], sizeof cc->names[i], "%s", c->names[i]);
        assert_true(c->lens[i] < sizeof cc->values[i]);
        memcpy(cc->values[i], c->values[i], c->lens[i]);
        assert_int_equal(c->values[i][c->lens[i]], 0); /* NUL-terminated */
        cc->lens[i] = c->lens[i];
    }
}

/* queue_contacts() callback collecting ids. */
struct ids {
    uint64_t v[64];
    size_t n;
};

static int collect_ids(void *arg, const struct queue_contact *c)
{
    struct ids *ids = arg;
    if (ids->n < 64)
        ids->v[ids->n] = c->id;
    ids->n++;
    return 0;
}

static int count_lists(void *arg, const struct queue_list *l)
{
    (void)l;
    (*(int *)arg)++;
    return 0;
}

/* Names of lists in callback order, comma-joined. */
static int name_lists(void *arg, const struct queue_list *l)
{
    char *s = arg;
    size_t n = strlen(s);
    snprintf(s + n, 256 - n, "%s%s", n ? "," : "", l->name);
    return 0;
}

/* ------------------------------------------------------------- lists */

/* Create, find, get, list and delete lists; names and accounts. */
static void test_lists_crud(void **state)
{
    struct tdir *t = *state;
    struct queue_list *l = malloc(sizeof *l);
    struct queue_audit a;
    uint32_t acme, shop;
    uint64_t news, promo, other, id;
    char names[256] = "";
    int n = 0;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    assert_non_null(l);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));

    E(queue_list_create(q, acme, "news", &boot, &news));
    E(queue_list_create(q, acme, "promo", &boot, &promo));
    E(queue_list_create(q, shop, "news", &boot, &other));
    assert_int_equal(news, 1);
    assert_int_equal(promo, 2);
    assert_int_equal(other, 3);
    last_audit(q, &a);
    assert_string_equal(a.action, "list create");
    assert_string_equal(a.object, "list news of shop");
    assert_int_equal(a.account, shop);

    EQ_ERR(queue_list_create(q, acme, "news", &boot, &id), -EEXIST);
    assert_non_null(strstr(queue_last_detail(), "already has a list"));
    EQ_ERR(queue_list_create(q, acme, "News", &boot, &id), -EINVAL);
    EQ_ERR(queue_list_create(q, acme, "", &boot, &id), -EINVAL);
    EQ_ERR(queue_list_create(q, acme, "-x", &boot, &id), -EINVAL);
    EQ_ERR(queue_list_create(q, 99, "x", &boot, &id), QUEUE_ENOTFOUND);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_list_find(q, acme, "news", l));
    assert_int_equal(l->id, news);
    assert_int_equal(l->account, acme);
    assert_int_equal(l->created, T0);
    assert_int_equal(l->contacts, 0);
    assert_int_equal(l->nfields, 0);
    E(queue_list_get(q, other, l));
    assert_int_equal(l->account, shop);
    assert_string_equal(l->name, "news");
    EQ_ERR(queue_list_find(q, shop, "promo", l), QUEUE_ENOTFOUND);
    EQ_ERR(queue_list_get(q, 42, l), QUEUE_ENOTFOUND);
    assert_int_equal(queue_lists(q, acme, name_lists, names), 2);
    assert_string_equal(names, "news,promo");
    assert_int_equal(queue_lists(q, 0, count_lists, &n), 3);

    E(queue_list_delete(q, promo, &boot));
    last_audit(q, &a);
    assert_string_equal(a.action, "list delete");
    assert_string_equal(a.object, "list promo of acme (0 contacts)");
    EQ_ERR(queue_list_find(q, acme, "promo", l), QUEUE_ENOTFOUND);
    EQ_ERR(queue_list_get(q, promo, l), QUEUE_ENOTFOUND);
    EQ_ERR(queue_list_delete(q, promo, &boot), QUEUE_ENOTFOUND);
    n = 0;
    assert_int_equal(queue_lists(q, 0, count_lists, &n), 2);
    /* the name is free again, under a new id */
    E(queue_list_create(q, acme, "promo", &boot, &id));
    assert_int_equal(id, 4);
    queue_close(q);
    free(l);
}

/* -------------------------------------------------------- contacts */

/* Values round-trip; a second import with other columns appends fields
 * and maps values by name; contacts walk in id order with after/max. */
static void test_contacts_roundtrip(void **state)
{
    struct tdir *t = *state;
    struct contact_copy *c = malloc(sizeof *c);
    struct queue_list *l = malloc(sizeof *l);
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    struct ids ids = { .n = 0 };
    uint32_t acme;
    uint64_t list;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    assert_non_null(c);
    assert_non_null(l);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "news", &boot, &list));

    const char *names1[] = { "first_name", "city" };
    E(queue_import_begin(q, list, acme, names1, 2, results_cb, res, &im));
    E(add_row(im, 2, "Ann@example.com", "Ann", "Paris, FR", NULL));
    E(add_row(im, 3, "bob@example.org", "Bob \"B\"", "", NULL));
    E(add_row(im, 4, "multi@example.org", "line1\r\nline2", "Zürich",
              NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.rows, 3);
    assert_int_equal(n.added, 3);
    assert_int_equal(res->r[0].contact, 1);
    assert_int_equal(res->r[2].contact, 3);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_list_get(q, list, l));
    assert_int_equal(l->contacts, 3);
    assert_int_equal(l->nfields, 2);
    assert_string_equal(l->fields[0], "first_name");
    assert_string_equal(l->fields[1], "city");
    E(queue_contact_get(q, 1, copy_contact, c));
    assert_string_equal(c->email, "Ann@example.com");
    assert_int_equal(c->list, list);
    assert_int_equal(c->n, 2);
    assert_string_equal(c->names[0], "first_name");
    assert_string_equal(c->values[0], "Ann");
    assert_string_equal(c->values[1], "Paris, FR");
    E(queue_contact_get(q, 3, copy_contact, c));
    assert_string_equal(c->values[0], "line1\r\nline2");
    assert_string_equal(c->values[1], "Z\xc3\xbcrich");
    E(queue_contact_get(q, 2, copy_contact, c));
    assert_int_equal(c->lens[1], 0);
    EQ_ERR(queue_contact_get(q, 99, copy_contact, c), QUEUE_ENOTFOUND);

    /* a second import: columns in another order, one new */
    const char *names2[] = { "plan", "first_name" };
    memset(res, 0, sizeof *res);
    res->in_order = true;
    E(queue_import_begin(q, list, acme, names2, 2, results_cb, res, &im));
    E(add_row(im, 2, "carol@example.net", "pro", "Carol", NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 1);
    E(queue_list_get(q, list, l));
    assert_int_equal(l->nfields, 3);
    assert_string_equal(l->fields[2], "plan");
    E(queue_contact_get(q, 4, copy_contact, c));
    assert_int_equal(c->n, 3);
    assert_string_equal(c->values[0], "Carol");
    assert_string_equal(c->values[1], "");
    assert_string_equal(c->values[2], "pro");
    E(queue_contact_get(q, 1, copy_contact, c));   /* older: "" for plan */
    assert_int_equal(c->n, 3);
    assert_string_equal(c->names[2], "plan");
    assert_string_equal(c->values[2], "");

    assert_int_equal(queue_contacts(q, list, 0, 0, collect_ids, &ids), 4);
    assert_int_equal(ids.v[0], 1);
    assert_int_equal(ids.v[3], 4);
    ids.n = 0;
    assert_int_equal(queue_contacts(q, list, 1, 2, collect_ids, &ids), 2);
    assert_int_equal(ids.v[0], 2);
    assert_int_equal(ids.v[1], 3);
    ids.n = 0;
    assert_int_equal(queue_contacts(q, list, 4, 0, collect_ids, &ids), 0);
    EQ_ERR(queue_contacts(q, 77, 0, 0, collect_ids, &ids), QUEUE_ENOTFOUND);

    /* bad names */
    const char *bad1[] = { "First Name" };
    EQ_ERR(queue_import_begin(q, list, acme, bad1, 1, NULL, NULL, &im),
           -EINVAL);
    const char *bad2[] = { "a", "a" };
    EQ_ERR(queue_import_begin(q, list, acme, bad2, 2, NULL, NULL, &im),
           -EINVAL);
    EQ_ERR(queue_import_begin(q, 77, acme, names1, 2, NULL, NULL, &im),
           QUEUE_ENOTFOUND);
    queue_close(q);
    free(c);
    free(l);
    free(res);
}

/* Duplicates in one import (case-insensitive, with the first line), with
 * an earlier import (dup_line 0), and none across lists. */
static void test_members_dedupe(void **state)
{
    struct tdir *t = *state;
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    struct queue_list l;
    uint32_t acme;
    uint64_t list, list2;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "news", &boot, &list));
    E(queue_list_create(q, acme, "other", &boot, &list2));

    E(queue_import_begin(q, list, acme, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "a@example.com", NULL, NULL, NULL));
    E(add_row(im, 3, "b@example.com", NULL, NULL, NULL));
    E(add_row(im, 5, "A@Example.com", NULL, NULL, NULL));
    E(add_row(im, 6, "b@example.com", NULL, NULL, NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 2);
    assert_int_equal(n.duplicate, 2);
    assert_int_equal(res->r[2].outcome, QUEUE_IMPORT_DUPLICATE);
    assert_int_equal(res->r[2].dup_line, 2);
    assert_int_equal(res->r[2].contact, 1);
    assert_string_equal(res->r[2].email, "A@Example.com");
    assert_int_equal(res->r[3].dup_line, 3);

    memset(res, 0, sizeof *res);
    E(queue_import_begin(q, list, acme, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "B@EXAMPLE.COM", NULL, NULL, NULL));
    E(add_row(im, 3, "c@example.com", NULL, NULL, NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 1);
    assert_int_equal(n.duplicate, 1);
    assert_int_equal(res->r[0].outcome, QUEUE_IMPORT_DUPLICATE);
    assert_int_equal(res->r[0].dup_line, 0);   /* an earlier import */
    assert_int_equal(res->r[0].contact, 2);

    memset(res, 0, sizeof *res);
    E(queue_import_begin(q, list2, acme, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "a@example.com", NULL, NULL, NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 1);
    E(queue_list_get(q, list, &l));
    assert_int_equal(l.contacts, 3);
    E(queue_list_get(q, list2, &l));
    assert_int_equal(l.contacts, 1);
    queue_close(q);
    free(res);
}

/* ------------------------------------------------------- suppression */

struct supp_seen {
    char emails[256];
    int n;
};

static int supp_cb(void *arg, const struct queue_suppression *s)
{
    struct supp_seen *ss = arg;
    size_t n = strlen(ss->emails);
    snprintf(ss->emails + n, sizeof ss->emails - n, "%s%s/%s/%s",
             n ? "," : "", s->email, s->reason, s->source);
    assert_int_equal(s->since, T0);
    ss->n++;
    return 0;
}

/* Add and look up suppressions (case-insensitive, per owner); an import
 * skips them. */
static void test_suppression(void **state)
{
    struct tdir *t = *state;
    struct results *res = results_new();
    struct supp_seen ss = { "", 0 };
    struct queue_import_counts n;
    struct queue_import *im;
    struct queue_audit a;
    uint32_t acme, shop;
    uint64_t list;
    bool yes;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));

    E(queue_suppressed(q, acme, "gone@example.com", &yes));
    assert_false(yes);
    struct queue_actor by = boot;
    by.account = acme;
    E(queue_suppress_add(q, acme, "Gone@Example.com", "unsubscribed",
                         "cli", &by));
    last_audit(q, &a);
    assert_string_equal(a.action, "suppress add");
    assert_string_equal(a.object, "Gone@Example.com on the suppression "
                                  "list of acme (unsubscribed)");
    E(queue_suppress_add(q, acme, "b@example.com", "hard bounce", "dsn",
                         &by));
    EQ_ERR(queue_suppress_add(q, acme, "GONE@example.com", "x", "cli", &by),
           -EEXIST);
    EQ_ERR(queue_suppress_add(q, acme, "no-at-sign", "x", "cli", &by),
           -EINVAL);
    EQ_ERR(queue_suppress_add(q, acme, "x@example.com", "two\nlines", "cli",
                              &by), -EINVAL);
    EQ_ERR(queue_suppress_add(q, 99, "x@example.com", "x", "cli", &by),
           QUEUE_ENOTFOUND);
    E(queue_suppressed(q, acme, "gone@example.com", &yes));
    assert_true(yes);
    E(queue_suppressed(q, acme, "GONE@EXAMPLE.COM", &yes));
    assert_true(yes);
    E(queue_suppressed(q, shop, "gone@example.com", &yes));
    assert_false(yes);
    EQ_ERR(queue_suppressed(q, acme, "", &yes), -EINVAL);
    assert_int_equal(queue_suppressions(q, acme, 0, NULL, supp_cb, &ss), 2);
    assert_string_equal(ss.emails, "b@example.com/hard bounce/dsn,"
                                   "gone@example.com/unsubscribed/cli");
    ss.emails[0] = 0;
    assert_int_equal(queue_suppressions(q, acme, 0, "c", supp_cb, &ss), 1);
    assert_int_equal(queue_suppressions(q, shop, 0, NULL, supp_cb, &ss), 0);

    E(queue_list_create(q, acme, "news", &boot, &list));
    E(queue_import_begin(q, list, acme, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "ok@example.com", NULL, NULL, NULL));
    E(add_row(im, 3, "gONe@example.com", NULL, NULL, NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 1);
    assert_int_equal(n.suppressed, 1);
    assert_int_equal(res->r[1].outcome, QUEUE_IMPORT_SUPPRESSED);
    /* the same address into shop's list: shop's own suppression list */
    memset(res, 0, sizeof *res);
    E(queue_list_create(q, shop, "news", &boot, &list));
    E(queue_import_begin(q, list, shop, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "gone@example.com", NULL, NULL, NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 1);
    queue_close(q);
    free(res);
}

/* One entry as a listing passed it. */
struct supp_one {
    long n;
    char email[QUEUE_MAX_RCPT + 1], by[QUEUE_MAX_ACCOUNT_NAME + 1];
    char reason[QUEUE_MAX_SUPPRESS_REASON + 1];
    char source[QUEUE_MAX_SUPPRESS_SOURCE + 1];
    uint32_t added_by;
    bool recorded;
    int64_t since;
};

/* Keep the first entry passed, count them all. */
static int supp_one_cb(void *arg, const struct queue_suppression *s)
{
    struct supp_one *o = arg;
    if (o->n++)
        return 0;
    snprintf(o->email, sizeof o->email, "%s", s->email);
    snprintf(o->by, sizeof o->by, "%s", s->added_by_name);
    snprintf(o->reason, sizeof o->reason, "%s", s->reason);
    snprintf(o->source, sizeof o->source, "%s", s->source);
    o->added_by = s->added_by;
    o->recorded = s->added_by_recorded;
    o->since = s->since;
    return 0;
}

/* The entry of email on owner's list as added_by's view passes it (n 0:
 * not there, or not in that view). */
static struct supp_one supp_get(struct queue *q, uint32_t owner,
                                uint32_t added_by, const char *email)
{
    struct supp_one o = { 0 };
    long n = queue_suppressions(q, owner, added_by, email, supp_one_cb, &o);
    assert_true(n >= 0);
    if (o.n && strcmp(o.email, email))
        o.n = 0;   /* listing went on to the next address */
    if (o.n)
        o.n = 1;
    return o;
}

/* master acme with b and c sharing its list and solo with its own: who
 * added each entry, who sees and removes it, what blocks whom. */
static void test_suppression_added_by(void **state)
{
    struct tdir *t = *state;
    struct queue_audit a;
    uint32_t acme, b, c, solo;
    bool yes;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_account_create(q, "b", 0, NULL, &boot, &b));
    E(queue_account_create(q, "c", 0, NULL, &boot, &c));
    struct queue_account_change own = { .set = QUEUE_AC_SUPPRESSION,
                                        .suppression_shared = false };
    E(queue_account_create(q, "solo", 0, &own, &boot, &solo));
    struct queue_actor bm = { "bm", "password", QUEUE_ROLE_MANAGER, b };
    struct queue_actor cm = { "cm", "password", QUEUE_ROLE_MANAGER, c };
    struct queue_actor am = { "am", "password", QUEUE_ROLE_ADMIN, acme };

    /* b's entry lands on acme's list, as b's */
    E(queue_suppress_add(q, b, "X@example.com", "unsubscribed", "cli", &bm));
    last_audit(q, &a);
    assert_string_equal(a.object, "X@example.com on the suppression list of "
                                  "acme, added by b (unsubscribed)");
    assert_int_equal(a.account, b);
    E(queue_suppressed(q, acme, "x@example.com", &yes));
    assert_true(yes);              /* and so it blocks c's mail too */
    struct supp_one o = supp_get(q, acme, 0, "x@example.com");
    assert_int_equal(o.n, 1);
    assert_int_equal(o.added_by, b);
    assert_string_equal(o.by, "b");
    assert_true(o.recorded);
    assert_int_equal(supp_get(q, acme, b, "x@example.com").n, 1);
    assert_int_equal(supp_get(q, acme, c, "x@example.com").n, 0);
    assert_int_equal(queue_suppressions(q, acme, c, NULL, supp_one_cb, &o),
                     0);

    /* c cannot take it over: add and import keep b's record */
    EQ_ERR(queue_suppress_add(q, c, "x@EXAMPLE.com", "mine", "cli", &cm),
           -EEXIST);
    struct queue_suppress_entry e[2] = {
        { "x@example.com", "mine", "import", 0 },
        { "y@example.com", "mine", "import", 0 },
    };
    E(queue_suppress_add_batch(q, c, e, 2, "suppress import", &cm));
    assert_int_equal(e[0].result, -EEXIST);
    assert_int_equal(e[1].result, 0);
    last_audit(q, &a);
    assert_string_equal(a.object, "suppression list of acme, as c: added 1, "
                                  "already there 1, invalid 0");
    o = supp_get(q, acme, 0, "x@example.com");
    assert_int_equal(o.added_by, b);
    assert_string_equal(o.reason, "unsubscribed");
    o = supp_get(q, acme, c, "y@example.com");
    assert_int_equal(o.n, 1);
    assert_string_equal(o.by, "c");
    assert_int_equal(queue_suppressions(q, acme, c, NULL, supp_one_cb, &o),
                     1);
    assert_int_equal(queue_suppressions(q, acme, 0, NULL, supp_one_cb, &o),
                     2);

    /* c may not remove b's entry; b may; c may remove its own */
    EQ_ERR(queue_suppress_remove(q, c, "x@example.com", false, &cm),
           -EACCES);
    assert_string_equal(queue_last_detail(), "x@example.com was added by b: "
                        "only an admin of the master may remove it");
    E(queue_suppressed(q, acme, "x@example.com", &yes));
    assert_true(yes);
    E(queue_suppress_remove(q, b, "X@example.com", false, &bm));
    last_audit(q, &a);
    assert_string_equal(a.action, "suppress remove");
    assert_string_equal(a.object, "X@example.com off the suppression list "
                                  "of acme (added by b)");
    E(queue_suppressed(q, acme, "x@example.com", &yes));
    assert_false(yes);
    EQ_ERR(queue_suppress_remove(q, b, "x@example.com", false, &bm),
           QUEUE_ENOTFOUND);
    E(queue_suppress_remove(q, c, "y@example.com", false, &cm));

    /* the master's own entries are the master's; another's needs any */
    E(queue_suppress_add(q, acme, "m@example.com", "manual", "cli", &am));
    E(queue_suppress_add(q, b, "z@example.com", "manual", "cli", &bm));
    EQ_ERR(queue_suppress_remove(q, b, "m@example.com", false, &bm),
           -EACCES);
    EQ_ERR(queue_suppress_remove(q, acme, "z@example.com", false, &am),
           -EACCES);
    E(queue_suppress_remove(q, acme, "m@example.com", false, &am));
    E(queue_suppress_remove(q, c, "z@example.com", true, &am));
    last_audit(q, &a);
    assert_string_equal(a.object, "z@example.com off the suppression list "
                                  "of acme (added by b)");

    /* an own list: its entries are its own, and block only it */
    E(queue_suppress_add(q, solo, "s@example.com", "manual", "cli", &am));
    o = supp_get(q, solo, solo, "s@example.com");
    assert_int_equal(o.added_by, solo);
    E(queue_suppressed(q, acme, "s@example.com", &yes));
    assert_false(yes);
    EQ_ERR(queue_suppress_remove(q, 99, "s@example.com", true, &am),
           QUEUE_ENOTFOUND);
    EQ_ERR(queue_suppress_add_batch(q, 99, e, 1, NULL, &am),
           QUEUE_ENOTFOUND);
    queue_close(q);
}

/* Write one record into the "suppress" database with plain LMDB. */
static void raw_supp_put(const char *dir, uint32_t owner, const char *addr,
                         const unsigned char *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char key[4 + QUEUE_MAX_RCPT];
    size_t n = strlen(addr);
    key[0] = (unsigned char)(owner >> 24);
    key[1] = (unsigned char)(owner >> 16);
    key[2] = (unsigned char)(owner >> 8);
    key[3] = (unsigned char)owner;
    memcpy(key + 4, addr, n);
    MDB_val k = { 4 + n, key }, v = { len, (void *)val };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "suppress", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

struct problems {
    int n;
    char what[200];
};

static void problem_cb(void *arg, int kind, const char *db, const char *key,
                       const char *what)
{
    struct problems *p = arg;
    (void)key;
    if (kind != QUEUE_REPORT_PROBLEM)
        return;
    p->n++;
    snprintf(p->what, sizeof p->what, "%s: %s", db, what);
}

/* A list deleted while its import has rows waiting: the import fails
 * with QUEUE_ENOTFOUND saying why, no contact is added, and only the
 * caller's own rejected row has a result. */
static void test_import_list_deleted(void **state)
{
    struct tdir *t = *state;
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    uint32_t acme;
    uint64_t list;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "news", &boot, &list));
    E(queue_import_begin(q, list, acme, NULL, 0, results_cb, res, &im));
    E(add_row(im, 2, "ann@example.com", NULL, NULL, NULL));
    E(queue_import_reject(im, 3, "nope", "invalid address: no @"));
    E(add_row(im, 4, "bob@example.com", NULL, NULL, NULL));
    E(queue_list_delete(q, list, &boot));
    EQ_ERR(queue_import_end(im, &boot, NULL, &n), QUEUE_ENOTFOUND);
    assert_non_null(strstr(queue_last_detail(), "deleted during the import"));
    assert_int_equal(n.added, 0);
    assert_int_equal(n.rows, 1);
    assert_int_equal(res->n, 1);
    assert_int_equal(res->r[0].line, 3);
    assert_int_equal(res->r[0].outcome, QUEUE_IMPORT_REJECTED);
    queue_close(q);
    free(res);
}

/* A contact record of format 1 (schema 6 and before: fixed-width list,
 * import, line and u16 lengths) reads as it did beside the format-2 ones
 * imports write now: its values, its duplicate when imported again, and
 * the check finds nothing wrong. */
static void test_contact_old_format(void **state)
{
    struct tdir *t = *state;
    struct contact_copy *c = malloc(sizeof *c);
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    uint32_t acme;
    uint64_t list;
    test_clock_set(T0);
    assert_non_null(c);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "news", &boot, &list));
    const char *names[] = { "first_name", "city" };
    E(queue_import_begin(q, list, acme, names, 2, results_cb, res, &im));
    E(add_row(im, 2, "Ann@example.com", "Ann", "Paris", NULL));
    E(add_row(im, 3, "bob@example.org", "Bob", "Oslo", NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.added, 2);
    queue_close(q);

    /* contact 1 as a schema-6 build wrote it */
    unsigned char v1[128] = { 1 }, id[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    size_t o = 1;
    for (int i = 0; i < 8; i++)
        v1[o++] = (unsigned char)(list >> (8 * i));
    v1[o++] = 1;                                     /* import 1 */
    o += 3;
    v1[o++] = 2;                                     /* line 2 */
    o += 7;
    const char *strs[] = { "Ann@example.com", "Old", "Lyon" };
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(strs[i]);
        v1[o++] = (unsigned char)l;
        v1[o++] = 0;
        memcpy(v1 + o, strs[i], l + 1);
        o += l + 1;
        if (i == 0)
            v1[o++] = 2;                             /* nvalues */
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 8, id }, v = { o, v1 };
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "contacts", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    struct problems p = { 0, "" };
    struct queue_check_report r;
    E(queue_check(t->path, 0, problem_cb, &p, &r));
    assert_int_equal(p.n, 0);

    q = open_q(t->path, 0, NULL);
    E(queue_contact_get(q, 1, copy_contact, c));
    assert_string_equal(c->email, "Ann@example.com");
    assert_int_equal(c->list, list);
    assert_string_equal(c->values[0], "Old");
    assert_string_equal(c->values[1], "Lyon");
    E(queue_contact_get(q, 2, copy_contact, c));
    assert_string_equal(c->email, "bob@example.org");
    assert_string_equal(c->values[1], "Oslo");
    memset(res, 0, sizeof *res);
    E(queue_import_begin(q, list, acme, names, 2, results_cb, res, &im));
    E(add_row(im, 2, "ANN@example.com", "A", "B", NULL));
    E(queue_import_end(im, &boot, NULL, &n));
    assert_int_equal(n.duplicate, 1);
    assert_int_equal(res->r[0].contact, 1);
    assert_int_equal(res->r[0].dup_line, 0);   /* an earlier import */
    queue_close(q);
    free(c);
    free(res);
}

/* A record of format 1 (before "added by": u8 1, i64 since, str8 reason,
 * str8 source) reads as added by the owner, blocks, is the owner's to
 * remove; the spool check takes it and names an unknown format. */
static void test_suppression_old_format(void **state)
{
    struct tdir *t = *state;
    uint32_t acme, b;
    bool yes;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_account_create(q, "b", 0, NULL, &boot, &b));
    E(queue_suppress_add(q, b, "new@example.com", "manual", "cli", &boot));
    queue_close(q);

    unsigned char v1[64] = { 1 };
    size_t n = 1;
    for (int i = 0; i < 8; i++)
        v1[n++] = (unsigned char)((uint64_t)(T0 - 86400) >> (8 * i));
    v1[n++] = 12;
    memcpy(v1 + n, "unsubscribed", 12);
    n += 12;
    v1[n++] = 9;
    memcpy(v1 + n, "one-click", 9);
    n += 9;
    raw_supp_put(t->path, acme, "old@example.com", v1, n);

    struct problems p = { 0, "" };
    struct queue_check_report r;
    E(queue_check(t->path, 0, problem_cb, &p, &r));
    assert_int_equal(p.n, 0);

    q = open_q(t->path, 0, NULL);
    struct supp_one o = supp_get(q, acme, 0, "old@example.com");
    assert_int_equal(o.n, 1);
    assert_int_equal(o.added_by, acme);
    assert_false(o.recorded);
    assert_string_equal(o.by, "acme");
    assert_string_equal(o.reason, "unsubscribed");
    assert_string_equal(o.source, "one-click");
    assert_int_equal(o.since, T0 - 86400);
    assert_int_equal(supp_get(q, acme, b, "old@example.com").n, 0);
    o = supp_get(q, acme, b, "new@example.com");
    assert_int_equal(o.n, 1);
    assert_true(o.recorded);
    E(queue_suppressed(q, acme, "old@example.com", &yes));
    assert_true(yes);
    struct queue_actor bm = { "bm", "password", QUEUE_ROLE_MANAGER, b };
    EQ_ERR(queue_suppress_remove(q, b, "old@example.com", false, &bm),
           -EACCES);
    assert_string_equal(queue_last_detail(), "old@example.com was added by "
                        "acme: only an admin of the master may remove it");
    E(queue_suppress_remove(q, acme, "old@example.com", false, &boot));
    queue_close(q);

    /* format 9: reported as such (and the listing refuses it) */
    v1[0] = 9;
    raw_supp_put(t->path, acme, "odd@example.com", v1, n);
    p = (struct problems){ 0, "" };
    E(queue_check(t->path, 0, problem_cb, &p, &r));
    assert_int_equal(p.n, 1);
    assert_string_equal(p.what, "suppress: suppression of an unknown format");
    q = open_q(t->path, 0, NULL);
    assert_int_equal(queue_suppressions(q, acme, 0, NULL, supp_one_cb, &o),
                     QUEUE_ECORRUPT);
    queue_close(q);
}

/* ---------------------------------------------------------- imports */

/* Caller's rejects come back in order among the others; bad rows are
 * refused without ending the import; one audit record with the counts. */
static void test_import_rejects(void **state)
{
    struct tdir *t = *state;
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    struct queue_audit a;
    uint32_t acme;
    uint64_t list;
    char big[QUEUE_MAX_FIELD_VALUE + 2];
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "news", &boot, &list));
    struct queue_actor by = { "ann", "password", QUEUE_ROLE_MANAGER, acme };

    const char *names[] = { "a", "b", "c" };
    E(queue_import_begin(q, list, acme, names, 3, results_cb, res, &im));
    E(add_row(im, 2, "one@example.com", "1", NULL, NULL));
    E(queue_import_reject(im, 3, "bad@", "invalid address: empty domain"));
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    EQ_ERR(add_row(im, 4, "big@example.com", big, NULL, NULL),
           QUEUE_ETOOBIG);
    E(queue_import_reject(im, 4, "big@example.com", "value too big"));
    const char *vals[3] = { "a\0b", "", "" };
    size_t lens[3] = { 3, 0, 0 };
    EQ_ERR(queue_import_add(im, 5, "nul@example.com", vals, lens), -EINVAL);
    EQ_ERR(add_row(im, 6, "no-at-sign", NULL, NULL, NULL), -EINVAL);
    /* three values at the cap pack over QUEUE_MAX_CONTACT? no: 12 KB */
    big[QUEUE_MAX_FIELD_VALUE] = 0;
    E(add_row(im, 7, "three@example.com", big, big, big));
    E(add_row(im, 8, "two@example.com", NULL, NULL, "3"));
    E(queue_import_end(im, &by, NULL, &n));
    assert_int_equal(n.rows, 5);
    assert_int_equal(n.added, 3);
    assert_int_equal(n.rejected, 2);
    assert_true(res->in_order);
    assert_int_equal(res->r[1].outcome, QUEUE_IMPORT_REJECTED);
    assert_int_equal(res->r[1].line, 3);
    assert_string_equal(res->r[1].email, "bad@");
    assert_string_equal(res->r[1].reason, "invalid address: empty domain");
    assert_int_equal(res->r[2].line, 4);
    last_audit(q, &a);
    assert_string_equal(a.action, "list import");
    assert_string_equal(a.object, "list news: imported 3, duplicate 0, "
                                  "invalid 2, suppressed 0");
    assert_string_equal(a.result, "ok");
    assert_string_equal(a.user, "ann");
    assert_int_equal(a.role, QUEUE_ROLE_MANAGER);
    assert_int_equal(a.account, acme);

    /* an import the caller gives up on is audited as failed */
    E(queue_import_begin(q, list, acme, names, 3, results_cb, res, &im));
    E(queue_import_end(im, &by, "read error", &n));
    last_audit(q, &a);
    assert_string_equal(a.result, "failed: read error");
    queue_close(q);
    free(res);
}

/* A large import spans several batches; results stay in order and the
 * list deleted under an import fails it cleanly. */
static void test_import_batches(void **state)
{
    struct tdir *t = *state;
    struct results *res = results_new();
    struct queue_import_counts n;
    struct queue_import *im;
    struct queue_audit a;
    struct queue_list l;
    uint32_t acme;
    uint64_t list;
    char email[64];
    size_t rows = bulk(40000, 2000);
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "big", &boot, &list));
    const char *names[] = { "n" };
    E(queue_import_begin(q, list, acme, names, 1, results_cb, res, &im));
    for (size_t i = 0; i < rows; i++) {
        size_t u = i % (rows - 10);
        snprintf(email, sizeof email, "u%zu@d%zu.example", u, u % 7);
        if (i % 1000 == 500)
            E(queue_import_reject(im, i + 2, email, "r"));
        else
            E(add_row(im, i + 2, email, "v", NULL, NULL));
    }
    E(queue_import_end(im, &boot, NULL, &n));
    size_t rejected = rows / 1000;
    assert_int_equal(n.rows, rows);
    assert_int_equal(n.rejected, rejected);
    assert_true(res->in_order);
    /* the last ten rows repeat the first ten addresses */
    assert_int_equal(n.duplicate, 10);
    assert_int_equal(n.added, rows - 10 - rejected);
    E(queue_list_get(q, list, &l));
    assert_int_equal(l.contacts, n.added);

    /* deleted while rows wait in the import's batch */
    memset(res, 0, sizeof *res);
    res->in_order = true;
    E(queue_import_begin(q, list, acme, names, 1, results_cb, res, &im));
    E(add_row(im, 2, "late@example.com", "v", NULL, NULL));
    E(queue_list_delete(q, list, &boot));
    EQ_ERR(queue_import_end(im, &boot, NULL, &n), QUEUE_ENOTFOUND);
    assert_non_null(strstr(queue_last_detail(), "deleted during the import"));
    assert_int_equal(n.added, 0);
    last_audit(q, &a);
    assert_string_equal(a.action, "list import");
    assert_non_null(strstr(a.result, "failed: list big was deleted"));
    EQ_ERR(queue_contact_get(q, 1, copy_contact, NULL), QUEUE_ENOTFOUND);
    queue_close(q);
    free(res);
}

/* ------------------------------------------------------------ delete */

/* Deleting a list removes every contact (more than one purge chunk) and
 * its members; other lists keep theirs; a delete left half done is
 * finished by the next. */
static void test_list_delete(void **state)
{
    struct tdir *t = *state;
    struct queue_import_counts n;
    struct queue_import *im;
    struct queue_list l;
    struct ids ids = { .n = 0 };
    uint32_t acme;
    uint64_t big, keep, stale;
    char email[64];
    size_t rows = bulk(25000, 500);
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &acme));
    E(queue_list_create(q, acme, "big", &boot, &big));
    E(queue_list_create(q, acme, "keep", &boot, &keep));
    E(queue_list_create(q, acme, "stale", &boot, &stale));
    uint64_t lists[3] = { big, keep, stale };
    size_t sizes[3] = { rows, 3, 5 };
    for (int k = 0; k < 3; k++) {
        E(queue_import_begin(q, lists[k], acme, NULL, 0, NULL, NULL, &im));
        for (size_t i = 0; i < sizes[k]; i++) {
            snprintf(email, sizeof email, "u%zu@example.com", i);
            E(add_row(im, i + 2, email, NULL, NULL, NULL));
        }
        E(queue_import_end(im, &boot, NULL, &n));
        assert_int_equal(n.added, sizes[k]);
    }
    E(queue_list_delete(q, big, &boot));
    EQ_ERR(queue_contact_get(q, 1, copy_contact, NULL), QUEUE_ENOTFOUND);
    EQ_ERR(queue_contact_get(q, rows, copy_contact, NULL), QUEUE_ENOTFOUND);
    EQ_ERR(queue_contacts(q, big, 0, 0, collect_ids, &ids), QUEUE_ENOTFOUND);
    assert_int_equal(queue_contacts(q, keep, 0, 0, collect_ids, &ids), 3);
    assert_int_equal(ids.v[0], rows + 1);
    queue_close(q);

    /* every key of the big list is gone; leave "stale" half deleted */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi members, contacts, dlists;
    MDB_stat st;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "members", 0, &members), 0);
    assert_int_equal(mdb_dbi_open(txn, "contacts", 0, &contacts), 0);
    assert_int_equal(mdb_dbi_open(txn, "lists", 0, &dlists), 0);
    assert_int_equal(mdb_stat(txn, contacts, &st), 0);
    assert_int_equal(st.ms_entries, 8);
    assert_int_equal(mdb_stat(txn, members, &st), 0);
    assert_int_equal(st.ms_entries, 16);     /* 'e' and 'c' per contact */
    unsigned char ik[9] = { 'i' }, nk[5 + 5] = { 'n' };
    for (int i = 7; i >= 0; i--)
        ik[1 + 7 - i] = (unsigned char)(stale >> (8 * i));
    nk[1] = (unsigned char)(acme >> 24);
    nk[2] = (unsigned char)(acme >> 16);
    nk[3] = (unsigned char)(acme >> 8);
    nk[4] = (unsigned char)acme;
    memcpy(nk + 5, "stale", 5);
    MDB_val k = { 9, ik }, v, nkv = { 10, nk };
    assert_int_equal(mdb_get(txn, dlists, &k, &v), 0);
    unsigned char rec[512];
    assert_true(v.mv_size <= sizeof rec);
    memcpy(rec, v.mv_data, v.mv_size);
    rec[1] |= 1;                             /* deleting */
    v.mv_data = rec;
    assert_int_equal(mdb_put(txn, dlists, &k, &v, 0), 0);
    assert_int_equal(mdb_del(txn, dlists, &nkv, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    q = open_q(t->path, 0, NULL);
    EQ_ERR(queue_list_get(q, stale, &l), QUEUE_ENOTFOUND);
    E(queue_list_delete(q, keep, &boot));
    queue_close(q);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, t->path, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "members", 0, &members), 0);
    assert_int_equal(mdb_dbi_open(txn, "contacts", 0, &contacts), 0);
    assert_int_equal(mdb_dbi_open(txn, "lists", 0, &dlists), 0);
    assert_int_equal(mdb_stat(txn, contacts, &st), 0);
    assert_int_equal(st.ms_entries, 0);
    assert_int_equal(mdb_stat(txn, members, &st), 0);
    assert_int_equal(st.ms_entries, 0);
    assert_int_equal(mdb_stat(txn, dlists, &st), 0);
    assert_int_equal(st.ms_entries, 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lists_crud, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_import_list_deleted, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_contact_old_format, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_contacts_roundtrip, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_members_dedupe, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_suppression, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_suppression_added_by,
                                        tdir_setup, tdir_teardown),
        cmocka_unit_test_setup_teardown(test_suppression_old_format,
                                        tdir_setup, tdir_teardown),
        cmocka_unit_test_setup_teardown(test_import_rejects, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_import_batches, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_list_delete, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
