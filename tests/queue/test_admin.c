/*
 * test_admin.c - accounts, users, roles, API keys, sending domains, the
 * audit chain and usage (queue/admin_*.c), and the schema 2 -> 3 upgrade
 * that brought them.
 *
 * DESCRIPTION
 *   Records round-trip through close and reopen; names are unique; the
 *   master is made once and sub-accounts hang off it; a role on the master
 *   reaches a sub-account unless one is set there (even a lower one);
 *   disabled users and accounts lose their roles.  The audit chain is
 *   checked with raw LMDB edits on a closed spool: every byte of every
 *   stored record flipped in turn, a record removed, two swapped, the tail
 *   cut off, the head changed -- each is found and named.  Keyed records
 *   carry HMAC-SHA256 links with the key's id: the attack (an edit,
 *   then the chain recomputed with SHA-256 and the head rewritten) passes
 *   an unkeyed trail and is named on a keyed one; a trail unkeyed so far
 *   goes on keyed, a handle without the key (or with another) may not
 *   append after keyed records, a forged unkeyed record after them is a
 *   fault; checkpoints written after each commit catch a rewrite by a
 *   holder of the key and a cut below them; key files are made 0600, never
 *   overwritten and refused when others may read them.  Usage comes from
 *   queue_record_outcomes() and rolls up to the master.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_admin.h"
#include "testutil.h"

#define T0 1700000000

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* ----------------------------------------------------------- raw LMDB */

static void raw_open(const char *dir, unsigned flags, MDB_env **env,
                     MDB_txn **txn)
{
    assert_int_equal(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 32);
    assert_int_equal(mdb_env_open(*env, dir, flags, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, flags & MDB_RDONLY, txn), 0);
}

static void raw_close(MDB_env *env, MDB_txn *txn, bool commit)
{
    if (commit)
        assert_int_equal(mdb_txn_commit(txn), 0);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* --------------------------------------------------------- accounts */

static int count_cb(void *arg, const struct queue_account *a)
{
    (void)a;
    (*(int *)arg)++;
    return 0;
}

/* Master, sub-accounts, resolution of inherited header and footer,
 * duplicates, invalid input and the rules of the master. */
static void test_accounts(void **state)
{
    struct tdir *t = *state;
    struct queue_account *a = malloc(sizeof *a);
    uint32_t master, shop, blog, id;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    assert_non_null(a);
    E(queue_account_master(q, &master));
    assert_int_equal(master, 0);
    struct queue_account_change mc = {
        .set = QUEUE_AC_HEADER | QUEUE_AC_FOOTER | QUEUE_AC_DAILY_CAP,
        .header = "Acme news", .footer = "Unsubscribe: acme.example/u",
        .daily_cap = 100000 };
    E(queue_account_create(q, "acme", 0, &mc, &boot, &master));
    assert_int_equal(master, 1);
    /* no --parent once a master exists: a sub-account of it */
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    struct queue_account_change bc = {
        .set = QUEUE_AC_FOOTER | QUEUE_AC_SUPPRESSION | QUEUE_AC_RATE_CAP |
               QUEUE_AC_ALLOW_UNSIGNED,
        .footer = "Blog footer", .suppression_shared = false,
        .rate_cap = "100/min", .allow_unsigned = true };
    E(queue_account_create(q, "blog", master, &bc, &boot, &blog));

    EQ_ERR(queue_account_create(q, "shop", 0, NULL, &boot, &id), -EEXIST);
    assert_non_null(strstr(queue_last_detail(), "taken"));
    EQ_ERR(queue_account_create(q, "Bad Name", 0, NULL, &boot, &id), -EINVAL);
    EQ_ERR(queue_account_create(q, "", 0, NULL, &boot, &id), -EINVAL);
    EQ_ERR(queue_account_create(q, "-x", 0, NULL, &boot, &id), -EINVAL);
    EQ_ERR(queue_account_create(q, "deep", shop, NULL, &boot, &id), -EINVAL);
    assert_non_null(strstr(queue_last_detail(), "one level"));
    struct queue_account_change bad = { .set = QUEUE_AC_RATE_CAP,
                                        .rate_cap = "fast" };
    EQ_ERR(queue_account_create(q, "x1", 0, &bad, &boot, &id), -EINVAL);
    bad = (struct queue_account_change){ .set = QUEUE_AC_INHERIT_HEADER,
                                         .inherit_header = true };
    EQ_ERR(queue_account_update(q, master, &bad, &boot), -EINVAL);
    bad = (struct queue_account_change){ .set = QUEUE_AC_SUPPRESSION,
                                         .suppression_shared = true };
    EQ_ERR(queue_account_update(q, master, &bad, &boot), -EINVAL);
    char big[QUEUE_MAX_ACCOUNT_TEXT + 2];
    memset(big, 'h', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bad = (struct queue_account_change){ .set = QUEUE_AC_HEADER,
                                         .header = big };
    EQ_ERR(queue_account_update(q, shop, &bad, &boot), -EINVAL);
    bad.header = "bad \x01 control";
    EQ_ERR(queue_account_update(q, shop, &bad, &boot), -EINVAL);
    bad.header = "bad \xc3\x28 utf-8";
    EQ_ERR(queue_account_update(q, shop, &bad, &boot), -EINVAL);
    EQ_ERR(queue_account_update(q, 99, &mc, &boot), QUEUE_ENOTFOUND);
    queue_close(q);

    /* reopened: resolved reads */
    q = open_q(t->path, 0, NULL);
    E(queue_account_get(q, shop, a));
    assert_string_equal(a->name, "shop");
    assert_int_equal(a->parent, master);
    assert_int_equal(a->master, master);
    assert_true(a->inherit_header && a->inherit_footer);
    assert_string_equal(a->header, "Acme news");
    assert_string_equal(a->footer, "Unsubscribe: acme.example/u");
    assert_true(a->suppression_shared);
    assert_int_equal(a->suppression_owner, master);
    assert_int_equal(a->created, T0);
    E(queue_account_find(q, "blog", a));
    assert_int_equal(a->id, blog);
    assert_true(a->inherit_header);
    assert_false(a->inherit_footer);
    assert_string_equal(a->footer, "Blog footer");
    assert_int_equal(a->suppression_owner, blog);
    assert_string_equal(a->rate_cap, "100/min");
    assert_true(a->allow_unsigned);
    E(queue_account_find(q, "acme", a));
    assert_int_equal(a->parent, 0);
    assert_int_equal(a->daily_cap, 100000);
    assert_int_equal(a->suppression_owner, master);
    EQ_ERR(queue_account_find(q, "nope", a), QUEUE_ENOTFOUND);
    EQ_ERR(queue_account_find(q, "BAD", a), QUEUE_ENOTFOUND);

    /* a header of its own, then disabled */
    struct queue_account_change up = { .set = QUEUE_AC_HEADER |
                                              QUEUE_AC_DAILY_CAP,
                                       .header = "Shop header",
                                       .daily_cap = 5 };
    E(queue_account_update(q, shop, &up, &boot));
    up = (struct queue_account_change){ .set = QUEUE_AC_DISABLED,
                                        .disabled = true };
    E(queue_account_update(q, shop, &up, &boot));
    E(queue_account_get(q, shop, a));
    assert_false(a->inherit_header);
    assert_string_equal(a->header, "Shop header");
    assert_string_equal(a->footer, "Unsubscribe: acme.example/u");
    assert_int_equal(a->daily_cap, 5);
    assert_true(a->disabled);
    int n = 0;
    assert_int_equal(queue_accounts(q, count_cb, &n), 3);
    assert_int_equal(n, 3);
    uint64_t gen;
    E(queue_admin_gen(q, &gen));
    assert_int_equal(gen, 5);   /* 3 creates, 2 updates; failures none */
    queue_close(q);

    /* read-only: reads work, changes do not */
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_account_get(q, master, a));
    EQ_ERR(queue_account_create(q, "ro", 0, NULL, &boot, &id), -EROFS);
    queue_close(q);
    free(a);
}

/* ------------------------------------------------------ users, roles */

static void test_users_roles(void **state)
{
    struct tdir *t = *state;
    struct queue_user u;
    uint32_t master, shop, blog, alice, bob, carol, id, from;
    int r;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    /* roles need accounts: a role on an unknown account is refused */
    EQ_ERR(queue_user_add(q, "early", "h", 1, QUEUE_ROLE_ADMIN, &boot, &id),
           QUEUE_ENOTFOUND);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    E(queue_account_create(q, "blog", 0, NULL, &boot, &blog));
    E(queue_user_add(q, "alice", "$argon2id$v=19$x", master,
                     QUEUE_ROLE_ADMIN, &boot, &alice));
    E(queue_user_add(q, "bob@shop.example", NULL, shop, QUEUE_ROLE_MANAGER,
                     &boot, &bob));
    E(queue_user_add(q, "carol", NULL, 0, QUEUE_ROLE_NONE, &boot, &carol));
    EQ_ERR(queue_user_add(q, "alice", NULL, 0, 0, &boot, &id), -EEXIST);
    EQ_ERR(queue_user_add(q, "Alice", NULL, 0, 0, &boot, &id), -EINVAL);
    EQ_ERR(queue_user_add(q, "x y", NULL, 0, 0, &boot, &id), -EINVAL);
    EQ_ERR(queue_user_add(q, "dave", "bad hash", 0, 0, &boot, &id), -EINVAL);
    EQ_ERR(queue_user_add(q, "dave", NULL, master, 9, &boot, &id), -EINVAL);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_user_find(q, "alice", &u));
    assert_int_equal(u.id, alice);
    assert_string_equal(u.pwhash, "$argon2id$v=19$x");
    assert_false(u.disabled);
    assert_false(u.totp);
    E(queue_user_get(q, bob, &u));
    assert_string_equal(u.name, "bob@shop.example");
    assert_string_equal(u.pwhash, "");

    /* inheritance from the master */
    E(queue_role_effective(q, alice, shop, &r, &from));
    assert_int_equal(r, QUEUE_ROLE_ADMIN);
    assert_int_equal(from, master);
    E(queue_role_effective(q, bob, shop, &r, &from));
    assert_int_equal(r, QUEUE_ROLE_MANAGER);
    assert_int_equal(from, shop);
    E(queue_role_effective(q, bob, blog, &r, &from));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    E(queue_role_effective(q, bob, master, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    E(queue_role_effective(q, carol, master, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);

    /* an override on the sub-account wins even when lower */
    E(queue_role_set(q, alice, blog, QUEUE_ROLE_VIEWER, &boot));
    E(queue_role_effective(q, alice, blog, &r, &from));
    assert_int_equal(r, QUEUE_ROLE_VIEWER);
    assert_int_equal(from, blog);
    E(queue_role_get(q, alice, blog, &r));
    assert_int_equal(r, QUEUE_ROLE_VIEWER);
    /* removing it brings the master's back */
    E(queue_role_set(q, alice, blog, QUEUE_ROLE_NONE, &boot));
    E(queue_role_effective(q, alice, blog, &r, &from));
    assert_int_equal(r, QUEUE_ROLE_ADMIN);
    EQ_ERR(queue_role_set(q, alice, 77, QUEUE_ROLE_VIEWER, &boot),
           QUEUE_ENOTFOUND);
    EQ_ERR(queue_role_set(q, 77, blog, QUEUE_ROLE_VIEWER, &boot),
           QUEUE_ENOTFOUND);
    EQ_ERR(queue_role_effective(q, alice, 77, &r, NULL), QUEUE_ENOTFOUND);

    /* a disabled sub-account: its own roles stop, the master's stay */
    struct queue_account_change dis = { .set = QUEUE_AC_DISABLED,
                                        .disabled = true };
    E(queue_account_update(q, shop, &dis, &boot));
    E(queue_role_effective(q, bob, shop, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    E(queue_role_effective(q, alice, shop, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_ADMIN);
    /* a disabled master: no role anywhere, a sub-account's own included */
    E(queue_role_set(q, bob, blog, QUEUE_ROLE_OWNER, &boot));
    E(queue_account_update(q, master, &dis, &boot));
    E(queue_role_effective(q, bob, blog, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    E(queue_role_effective(q, alice, master, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    dis.disabled = false;
    E(queue_account_update(q, master, &dis, &boot));
    E(queue_role_effective(q, bob, blog, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_OWNER);

    /* a disabled user has no role anywhere */
    E(queue_user_set_disabled(q, alice, true, &boot));
    E(queue_role_effective(q, alice, master, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_NONE);
    E(queue_user_get(q, alice, &u));
    assert_true(u.disabled);
    E(queue_user_set_disabled(q, alice, false, &boot));
    E(queue_role_effective(q, alice, master, &r, NULL));
    assert_int_equal(r, QUEUE_ROLE_ADMIN);

    /* password and TOTP */
    unsigned char secret[QUEUE_TOTP_SECRET];
    for (int i = 0; i < QUEUE_TOTP_SECRET; i++)
        secret[i] = (unsigned char)(i * 7 + 1);
    E(queue_user_set_totp(q, carol, secret, &boot));
    E(queue_user_set_password(q, carol, "$argon2id$new", &boot));
    E(queue_user_get(q, carol, &u));
    assert_true(u.totp);
    assert_memory_equal(u.totp_secret, secret, sizeof secret);
    assert_string_equal(u.pwhash, "$argon2id$new");
    E(queue_user_set_totp(q, carol, NULL, &boot));
    E(queue_user_get(q, carol, &u));
    assert_false(u.totp);
    EQ_ERR(queue_user_set_disabled(q, 99, true, &boot), QUEUE_ENOTFOUND);
    queue_close(q);
}

/* ---------------------------------------------------------- API keys */

static int key_count(void *arg, const struct queue_apikey *k)
{
    (void)k;
    (*(int *)arg)++;
    return 0;
}

static void test_apikeys(void **state)
{
    struct tdir *t = *state;
    struct queue_apikey k;
    unsigned char h[QUEUE_APIKEY_HASH];
    uint32_t master, alice, k1, k2, id;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    memset(h, 0xab, sizeof h);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_user_add(q, "alice", NULL, master, QUEUE_ROLE_OWNER, &boot,
                     &alice));
    E(queue_apikey_create(q, alice, master, QUEUE_ROLE_SENDER, "ci", h, &boot,
                          &k1));
    h[0] = 1;
    E(queue_apikey_create(q, alice, master, QUEUE_ROLE_ADMIN, NULL, h, &boot,
                          &k2));
    EQ_ERR(queue_apikey_create(q, alice, master, QUEUE_ROLE_OWNER, NULL, h,
                               &boot, &id), -EINVAL);
    EQ_ERR(queue_apikey_create(q, 42, master, QUEUE_ROLE_VIEWER, NULL, h,
                               &boot, &id), QUEUE_ENOTFOUND);
    EQ_ERR(queue_apikey_create(q, alice, 42, QUEUE_ROLE_VIEWER, NULL, h,
                               &boot, &id), QUEUE_ENOTFOUND);
    queue_close(q);

    q = open_q(t->path, 0, NULL);
    E(queue_apikey_get(q, k1, &k));
    assert_int_equal(k.user, alice);
    assert_int_equal(k.account, master);
    assert_int_equal(k.scope, QUEUE_ROLE_SENDER);
    assert_string_equal(k.name, "ci");
    assert_int_equal(k.hash[0], 0xab);
    assert_false(k.revoked);
    test_clock_set(T0 + 60);
    E(queue_apikey_revoke(q, k1, &boot));
    EQ_ERR(queue_apikey_revoke(q, k1, &boot), QUEUE_ESTATE);
    EQ_ERR(queue_apikey_revoke(q, 99, &boot), QUEUE_ENOTFOUND);
    E(queue_apikey_get(q, k1, &k));
    assert_true(k.revoked);
    assert_int_equal(k.revoked_at, T0 + 60);
    E(queue_apikey_get(q, k2, &k));
    assert_int_equal(k.hash[0], 1);
    int n = 0;
    assert_int_equal(queue_apikeys(q, key_count, &n), 2);
    queue_close(q);
}

/* ----------------------------------------------------------- domains */

static int dom_cb(void *arg, const struct queue_sdomain *d)
{
    char *names = arg;
    size_t n = strlen(names);
    snprintf(names + n, 256 - n, "%s;", d->domain);
    return 0;
}

static void test_sdomains(void **state)
{
    struct tdir *t = *state;
    struct queue_sdomain d;
    uint32_t master, shop;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);

    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    struct queue_dkim_sel sel = { .selector = "sl202401", .algo = "rsa",
                                  .key_path = "/spool/dkim/a/x.key" };
    E(queue_sdomain_add(q, "acme.example", master, &sel, &boot));
    E(queue_sdomain_add(q, "shop.example", shop, NULL, &boot));
    EQ_ERR(queue_sdomain_add(q, "acme.example", shop, NULL, &boot), -EEXIST);
    assert_non_null(strstr(queue_last_detail(), "another account"));
    EQ_ERR(queue_sdomain_add(q, "acme.example", master, NULL, &boot),
           -EEXIST);
    const char *badd[] = { "nodot", "UPPER.example", "-a.example",
                           "a-.example", "a..example", ".a.example",
                           "a_b.example", "" };
    for (size_t i = 0; i < sizeof badd / sizeof badd[0]; i++)
        EQ_ERR(queue_sdomain_add(q, badd[i], shop, NULL, &boot), -EINVAL);
    struct queue_dkim_sel bads = { .selector = "bad sel", .algo = "rsa",
                                   .key_path = "/k" };
    EQ_ERR(queue_sdomain_add(q, "new.example", shop, &bads, &boot), -EINVAL);
    bads = (struct queue_dkim_sel){ .selector = "s1", .algo = "dsa",
                                    .key_path = "/k" };
    EQ_ERR(queue_sdomain_add(q, "new.example", shop, &bads, &boot), -EINVAL);
    EQ_ERR(queue_sdomain_add(q, "new.example", 9, NULL, &boot),
           QUEUE_ENOTFOUND);
    test_clock_set(T0 + 5);
    E(queue_sdomain_set_verified(q, "acme.example", true, "dns", &boot));
    EQ_ERR(queue_sdomain_set_verified(q, "none.example", true, "dns", &boot),
           QUEUE_ENOTFOUND);
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_sdomain_get(q, "acme.example", &d));
    assert_int_equal(d.account, master);
    assert_true(d.verified);
    assert_int_equal(d.verified_at, T0 + 5);
    assert_int_equal(d.nsel, 1);
    assert_string_equal(d.sel[0].selector, "sl202401");
    assert_string_equal(d.sel[0].algo, "rsa");
    assert_string_equal(d.sel[0].key_path, "/spool/dkim/a/x.key");
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_false(d.verified);
    assert_int_equal(d.nsel, 0);
    char names[256] = "";
    assert_int_equal(queue_sdomains(q, dom_cb, names), 2);
    assert_string_equal(names, "acme.example;shop.example;");
    queue_close(q);
}

/* Key i of domain by selector name in d, or NULL. */
static const struct queue_dkim_sel *sel_of(const struct queue_sdomain *d,
                                           const char *name, unsigned *i)
{
    for (unsigned j = 0; j < d->nsel; j++)
        if (!strcmp(d->sel[j].selector, name)) {
            *i = j;
            return &d->sel[j];
        }
    return NULL;
}

/* The state of selector name of domain at time now. */
static int key_state(struct queue *q, const char *domain, const char *name,
                     int64_t now)
{
    struct queue_sdomain d;
    unsigned i = 0;
    E(queue_sdomain_get(q, domain, &d));
    assert_non_null(sel_of(&d, name, &i));
    return queue_sdomain_key_state(&d, i, now);
}

/* Selectors of a domain: a second key, per-key verification, retire dates
 * (the state changes with the clock, no command), the last-key guard, a
 * full record making room from its retired keys. */
static void test_sdomain_keys(void **state)
{
    struct tdir *t = *state;
    struct queue_sdomain d;
    unsigned i = 0;
    uint32_t master, shop;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    struct queue_dkim_sel s1 = { .selector = "s1", .algo = "rsa",
                                 .key_path = "/k/s1.key",
                                 .verified_at = 42 };  /* ignored */
    E(queue_sdomain_add(q, "shop.example", shop, &s1, &boot));
    test_clock_set(T0 + 1);
    struct queue_dkim_sel e1 = { .selector = "e1", .algo = "ed25519",
                                 .key_path = "/k/e1.key", .retire_at = 7 };
    E(queue_sdomain_key_add(q, "shop.example", &e1, &boot));
    EQ_ERR(queue_sdomain_key_add(q, "shop.example", &e1, &boot), -EEXIST);
    assert_non_null(strstr(queue_last_detail(), "already has the DKIM "
                                                "selector e1 (pending)"));
    EQ_ERR(queue_sdomain_key_add(q, "none.example", &e1, &boot),
           QUEUE_ENOTFOUND);
    struct queue_dkim_sel bad = { .selector = "a..b", .algo = "rsa",
                                  .key_path = "/k" };
    EQ_ERR(queue_sdomain_key_add(q, "shop.example", &bad, &boot), -EINVAL);
    bad = (struct queue_dkim_sel){ .selector = "x", .algo = "dsa",
                                   .key_path = "/k" };
    EQ_ERR(queue_sdomain_key_add(q, "shop.example", &bad, &boot), -EINVAL);
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_int_equal(d.nsel, 2);
    assert_non_null(sel_of(&d, "s1", &i));
    assert_int_equal(d.sel[i].created, T0);
    assert_int_equal(d.sel[i].verified_at, 0);
    assert_non_null(sel_of(&d, "e1", &i));
    assert_int_equal(d.sel[i].created, T0 + 1);
    assert_int_equal(d.sel[i].retire_at, 0);
    assert_int_equal(queue_sdomain_key_state(&d, i, T0 + 1),
                     QUEUE_KEY_PENDING);
    assert_false(queue_sdomain_key_signs(&d, i, T0 + 1));

    /* s1's record matched: it signs, e1 stays pending */
    test_clock_set(T0 + 2);
    const char *only_s1[] = { "s1" }, *nope[] = { "nope" };
    E(queue_sdomain_keys_verified(q, "shop.example", only_s1, 1, "dns",
                                  &boot));
    EQ_ERR(queue_sdomain_keys_verified(q, "shop.example", nope, 1, "dns",
                                       &boot), QUEUE_ENOTFOUND);
    assert_int_equal(key_state(q, "shop.example", "s1", T0 + 2),
                     QUEUE_KEY_ACTIVE);
    assert_int_equal(key_state(q, "shop.example", "e1", T0 + 2),
                     QUEUE_KEY_PENDING);
    /* a verified key of an unverified domain does not sign */
    E(queue_sdomain_set_verified(q, "shop.example", false, "", &boot));
    assert_int_equal(key_state(q, "shop.example", "s1", T0 + 2),
                     QUEUE_KEY_VERIFIED);
    E(queue_sdomain_keys_verified(q, "shop.example", only_s1, 1, "dns",
                                  &boot));
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_true(d.verified);
    assert_non_null(sel_of(&d, "s1", &i));
    assert_int_equal(d.sel[i].verified_at, T0 + 2);  /* the first time */

    /* the only verified key: retiring it needs last */
    EQ_ERR(queue_sdomain_key_retire(q, "shop.example", "s1", 0, false,
                                    &boot, NULL), QUEUE_ESTATE);
    assert_non_null(strstr(queue_last_detail(), "without a verified key"));
    EQ_ERR(queue_sdomain_key_retire(q, "shop.example", "zz", 0, false,
                                    &boot, NULL), QUEUE_ENOTFOUND);
    EQ_ERR(queue_sdomain_key_retire(q, "shop.example", "s1", 367 * 86400,
                                    true, &boot, NULL), -EINVAL);
    /* e1 verified too; then s1 retires in 10 s */
    const char *only_e1[] = { "e1" };
    test_clock_set(T0 + 3);
    E(queue_sdomain_keys_verified(q, "shop.example", only_e1, 1, "dns",
                                  &boot));
    int64_t at = 0;
    E(queue_sdomain_key_retire(q, "shop.example", "s1", 10, false, &boot,
                               &at));
    assert_int_equal(at, T0 + 13);
    assert_int_equal(key_state(q, "shop.example", "s1", T0 + 12),
                     QUEUE_KEY_RETIRING);
    assert_int_equal(key_state(q, "shop.example", "s1", T0 + 13),
                     QUEUE_KEY_RETIRED);
    assert_int_equal(key_state(q, "shop.example", "e1", T0 + 13),
                     QUEUE_KEY_ACTIVE);
    /* e1 is now the only one without a date */
    EQ_ERR(queue_sdomain_key_retire(q, "shop.example", "e1", 100, false,
                                    &boot, NULL), QUEUE_ESTATE);
    test_clock_set(T0 + 13);
    EQ_ERR(queue_sdomain_key_retire(q, "shop.example", "s1", 0, true, &boot,
                                    NULL), QUEUE_ESTATE);
    EQ_ERR(queue_sdomain_keys_verified(q, "shop.example", only_s1, 1, "dns",
                                       &boot), QUEUE_ESTATE);
    /* a forced verify verifies every key not retired */
    struct queue_dkim_sel k = { .algo = "rsa", .key_path = "/k/k.key" };
    snprintf(k.selector, sizeof k.selector, "k3");
    E(queue_sdomain_key_add(q, "shop.example", &k, &boot));
    E(queue_sdomain_set_verified(q, "shop.example", true, "forced", &boot));
    assert_int_equal(key_state(q, "shop.example", "k3", T0 + 13),
                     QUEUE_KEY_ACTIVE);
    assert_int_equal(key_state(q, "shop.example", "s1", T0 + 13),
                     QUEUE_KEY_RETIRED);
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_non_null(sel_of(&d, "s1", &i));
    assert_int_equal(d.sel[i].verified_at, T0 + 2);
    /* full: k4 fills it, k5 takes s1's place, k6 finds no room */
    snprintf(k.selector, sizeof k.selector, "k4");
    E(queue_sdomain_key_add(q, "shop.example", &k, &boot));
    snprintf(k.selector, sizeof k.selector, "k5");
    E(queue_sdomain_key_add(q, "shop.example", &k, &boot));
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_int_equal(d.nsel, 4);
    assert_null(sel_of(&d, "s1", &i));
    assert_non_null(sel_of(&d, "k5", &i));
    snprintf(k.selector, sizeof k.selector, "k6");
    EQ_ERR(queue_sdomain_key_add(q, "shop.example", &k, &boot),
           QUEUE_ESTATE);
    assert_non_null(strstr(queue_last_detail(), "none of them retired"));
    queue_close(q);
}

/* A domain record of format 1 (before keys had dates) still reads: its
 * keys count as verified when the domain is, so they go on signing. */
static void test_sdomain_format1(void **state)
{
    struct tdir *t = *state;
    struct queue_sdomain d;
    uint32_t master, shop;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    queue_close(q);
    /* fmt 1, verified, account, created T0, verified T0+5, one key */
    unsigned char rec[64], *p = rec;
    *p++ = 1;
    *p++ = 1;
    for (int b = 0; b < 4; b++)
        *p++ = (unsigned char)(shop >> (8 * b));
    for (int64_t v = T0, n = 0; n < 2; n++, v = T0 + 5)
        for (int b = 0; b < 8; b++)
            *p++ = (unsigned char)((uint64_t)v >> (8 * b));
    *p++ = 1;
    memcpy(p, "\002s1\003rsa\011\000/k/s1.key", 18);
    p += 18;
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "sdomains", 0, &dbi), 0);
    MDB_val k = { 12, "shop.example" }, v = { (size_t)(p - rec), rec };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_close(env, txn, true);

    q = open_q(t->path, 0, NULL);
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_int_equal(d.account, shop);
    assert_true(d.verified);
    assert_int_equal(d.nsel, 1);
    assert_string_equal(d.sel[0].key_path, "/k/s1.key");
    assert_int_equal(d.sel[0].created, T0);
    assert_int_equal(d.sel[0].verified_at, T0 + 5);
    assert_true(queue_sdomain_key_signs(&d, 0, T0 + 6));
    /* changed once, it is written in the current format and reads back */
    struct queue_dkim_sel e1 = { .selector = "e1", .algo = "ed25519",
                                 .key_path = "/k/e1.key" };
    E(queue_sdomain_key_add(q, "shop.example", &e1, &boot));
    E(queue_sdomain_get(q, "shop.example", &d));
    assert_int_equal(d.nsel, 2);
    assert_int_equal(d.sel[0].verified_at, T0 + 5);
    assert_int_equal(d.sel[1].verified_at, 0);
    queue_close(q);
}

/* ------------------------------------------------------------- audit */

struct audit_list {
    struct queue_audit r[16];
    size_t n;
};

static int audit_cb(void *arg, const struct queue_audit *r)
{
    struct audit_list *l = arg;
    if (l->n < 16)
        l->r[l->n] = *r;
    l->n++;
    return 0;
}

static const unsigned char key_a[QUEUE_AUDIT_KEY] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const unsigned char key_b[QUEUE_AUDIT_KEY] = { 0xb0, 0x0b };

/* Open dir with the audit key (NULL: none) and checkpoint (NULL: none). */
static struct queue *open_keyed(const char *dir, unsigned flags,
                                const unsigned char *key, const char *cp)
{
    struct queue *q = open_q(dir, flags, NULL);
    struct queue_audit_config c = { .key = key, .checkpoint = cp };
    E(queue_audit_configure(q, &c));
    return q;
}

/* Verify the closed spool at dir with key (NULL: none); returns the
 * fault and its seq. */
static int verify_dir_with(const char *dir, const unsigned char *key,
                           uint64_t *bad)
{
    struct queue_audit_verdict v;
    struct queue *q = open_keyed(dir, QUEUE_OPEN_READONLY, key, NULL);
    E(queue_audit_verify(q, &v));
    queue_close(q);
    *bad = v.bad_seq;
    return v.fault;
}

static int verify_dir(const char *dir, uint64_t *bad)
{
    return verify_dir_with(dir, NULL, bad);
}

/* Make a spool with five audit records, keyed with key (NULL: not). */
static void audit_fill_with(const char *dir, const unsigned char *key)
{
    uint32_t master, shop, alice;
    struct queue *q = open_keyed(dir, QUEUE_OPEN_CREATE, key, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    struct queue_actor al = { "alice", "password", QUEUE_ROLE_ADMIN, shop };
    E(queue_user_add(q, "alice", NULL, shop, QUEUE_ROLE_ADMIN, &boot,
                     &alice));
    E(queue_audit_append(q, &al, shop, "user add", "user mallory",
                         "refused"));
    E(queue_sdomain_add(q, "shop.example", shop, NULL, &al));
    queue_close(q);
}

static void audit_fill(const char *dir)
{
    audit_fill_with(dir, NULL);
}

static void test_audit_list(void **state)
{
    struct tdir *t = *state;
    struct audit_list *l = calloc(1, sizeof *l);
    struct queue_audit_verdict v;
    test_clock_set(T0);
    audit_fill(t->path);
    struct queue *q = open_q(t->path, 0, NULL);
    assert_int_equal(queue_audit_list(q, 1, audit_cb, l), 5);
    assert_int_equal(l->r[0].seq, 1);
    assert_string_equal(l->r[0].action, "account create");
    assert_string_equal(l->r[0].object, "account acme (master)");
    assert_string_equal(l->r[0].user, "(bootstrap)");
    assert_string_equal(l->r[0].via, "uid:0");
    assert_int_equal(l->r[0].role, QUEUE_ROLE_OWNER);
    assert_int_equal(l->r[0].time_ms, (int64_t)T0 * 1000);
    assert_string_equal(l->r[1].object, "account shop (sub-account of acme)");
    assert_string_equal(l->r[2].object, "user alice as admin on shop");
    assert_string_equal(l->r[3].result, "refused");
    assert_string_equal(l->r[3].user, "alice");
    assert_int_equal(l->r[3].account, 2);
    assert_string_equal(l->r[4].action, "domain add");
    /* the chain links */
    assert_memory_equal(l->r[1].prev, l->r[0].hash, QUEUE_AUDIT_HASH);
    assert_memory_equal(l->r[4].prev, l->r[3].hash, QUEUE_AUDIT_HASH);
    memset(l, 0, sizeof *l);
    assert_int_equal(queue_audit_list(q, 4, audit_cb, l), 2);
    assert_int_equal(l->r[0].seq, 4);
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_int_equal(v.records, 5);
    assert_int_equal(v.head_seq, 5);
    assert_memory_equal(v.head, l->r[1].hash, QUEUE_AUDIT_HASH);
    /* control characters in texts are stored as '?' and cut to caps */
    char longobj[400];
    memset(longobj, 'o', sizeof longobj - 1);
    longobj[sizeof longobj - 1] = 0;
    struct queue_actor odd = { "eve\n", "x", QUEUE_ROLE_VIEWER, 0 };
    E(queue_audit_append(q, &odd, 0, "inject", longobj, "ok"));
    EQ_ERR(queue_audit_append(q, &odd, 0, "", "x", "ok"), -EINVAL);
    memset(l, 0, sizeof *l);
    assert_int_equal(queue_audit_list(q, 6, audit_cb, l), 1);
    assert_string_equal(l->r[0].user, "eve?");
    assert_int_equal(strlen(l->r[0].object), QUEUE_MAX_AUDIT_OBJECT);
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    queue_close(q);
    free(l);
}

/* Each byte of each stored record of the trail in dir (keyed with key,
 * or not) flipped in turn is found. */
static void every_byte(const char *dir, const unsigned char *key)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    unsigned char buf[1024];
    uint64_t bad;
    unsigned checked = 0;
    test_clock_set(T0);
    assert_int_equal(mkdir(dir, 0700), 0);
    audit_fill_with(dir, key);
    assert_int_equal(verify_dir_with(dir, key, &bad), QUEUE_AUDIT_INTACT);

    size_t step = bulk(1, 7);   /* valgrind: every 7th byte */
    for (uint64_t seq = 1; seq <= 5; seq++) {
        unsigned char kb[8];
        for (int i = 7; i >= 0; i--)
            kb[7 - i] = (unsigned char)(seq >> (8 * i));
        raw_open(dir, MDB_RDONLY, &env, &txn);
        assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
        k = (MDB_val){ 8, kb };
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        size_t len = v.mv_size;
        assert_true(len <= sizeof buf);
        memcpy(buf, v.mv_data, len);
        raw_close(env, txn, false);
        for (size_t off = seq % step; off < len; off += step) {
            buf[off] ^= 0x5a;
            raw_open(dir, 0, &env, &txn);
            assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
            v = (MDB_val){ len, buf };
            assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
            raw_close(env, txn, true);
            int f = verify_dir_with(dir, key, &bad);
            if (f == QUEUE_AUDIT_INTACT)
                fail_msg("flipped byte %zu of record %llu not found", off,
                         (unsigned long long)seq);
            assert_int_equal(bad, seq);
            buf[off] ^= 0x5a;
            checked++;
        }
        raw_open(dir, 0, &env, &txn);
        assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
        v = (MDB_val){ len, buf };
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        raw_close(env, txn, true);
        assert_int_equal(verify_dir_with(dir, key, &bad), QUEUE_AUDIT_INTACT);
    }
    assert_true(checked > 5 * 60 / step);
}

static void test_audit_every_byte(void **state)
{
    struct tdir *t = *state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/plain", t->path);
    every_byte(dir, NULL);
    snprintf(dir, sizeof dir, "%s/keyed", t->path);
    every_byte(dir, key_a);
}

/* Removed, swapped, cut off and head edits. */
static void test_audit_tamper(void **state)
{
    struct tdir *t = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi, meta;
    MDB_val k, v, k2, v2;
    unsigned char key[8] = { 0 }, key2[8] = { 0 }, a[1024], b[1024];
    unsigned char head[40];
    uint64_t bad;
    test_clock_set(T0);
    audit_fill(t->path);

    /* removed: record 3 */
    key[7] = 3;
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    k = (MDB_val){ 8, key };
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(a, v.mv_data, v.mv_size);
    size_t alen = v.mv_size;
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_MISSING);
    assert_int_equal(bad, 3);
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    v = (MDB_val){ alen, a };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);

    /* swapped: records 2 and 3 */
    key[7] = 2;
    key2[7] = 3;
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    k = (MDB_val){ 8, key };
    k2 = (MDB_val){ 8, key2 };
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(a, v.mv_data, v.mv_size);
    alen = v.mv_size;
    assert_int_equal(mdb_get(txn, dbi, &k2, &v2), 0);
    memcpy(b, v2.mv_data, v2.mv_size);
    size_t blen = v2.mv_size;
    v = (MDB_val){ blen, b };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    v = (MDB_val){ alen, a };
    assert_int_equal(mdb_put(txn, dbi, &k2, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_REORDERED);
    assert_int_equal(bad, 2);
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    v = (MDB_val){ alen, a };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    v = (MDB_val){ blen, b };
    assert_int_equal(mdb_put(txn, dbi, &k2, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);

    /* a key flipped: a record moves far away, its place is empty */
    key[7] = 4;
    key2[7] = 4;
    key2[0] = 0xff;
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(a, v.mv_data, v.mv_size);
    alen = v.mv_size;
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    v = (MDB_val){ alen, a };
    assert_int_equal(mdb_put(txn, dbi, &k2, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_MISSING);
    assert_int_equal(bad, 4);
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_del(txn, dbi, &k2, NULL), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);

    /* every byte of the head flipped in turn */
    raw_open(t->path, MDB_RDONLY, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val hk = { 10, "audit_head" };
    assert_int_equal(mdb_get(txn, meta, &hk, &v), 0);
    assert_int_equal(v.mv_size, 40);
    memcpy(head, v.mv_data, 40);
    raw_close(env, txn, false);
    for (size_t off = 0; off < 40; off += bulk(1, 5)) {
        head[off] ^= 0xff;
        raw_open(t->path, 0, &env, &txn);
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        v = (MDB_val){ 40, head };
        assert_int_equal(mdb_put(txn, meta, &hk, &v, 0), 0);
        raw_close(env, txn, true);
        assert_int_not_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);
        head[off] ^= 0xff;
    }
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    v = (MDB_val){ 40, head };
    assert_int_equal(mdb_put(txn, meta, &hk, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);

    /* the tail cut off: record 5 gone, the head still says 5 */
    key[7] = 5;
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_TRUNCATED);
    assert_int_equal(bad, 5);
    /* appending to a tampered trail is refused rather than papered over */
    struct queue *q = open_q(t->path, 0, NULL);
    uint32_t id;
    E(queue_account_create(q, "more", 0, NULL, &boot, &id));
    queue_close(q);
    /* the new record 5 does not link to the head's record 5 */
    assert_int_not_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_INTACT);
}

/* An audit trail with records past its head refuses new changes. */
static void test_audit_past_head(void **state)
{
    struct tdir *t = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    unsigned char head[40];
    MDB_val v;
    uint64_t bad;
    uint32_t id;
    test_clock_set(T0);
    audit_fill(t->path);
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val hk = { 10, "audit_head" };
    assert_int_equal(mdb_get(txn, meta, &hk, &v), 0);
    memcpy(head, v.mv_data, 40);
    head[7] = 3;   /* head says 3 of 5 */
    v = (MDB_val){ 40, head };
    assert_int_equal(mdb_put(txn, meta, &hk, &v, 0), 0);
    raw_close(env, txn, true);
    assert_int_equal(verify_dir(t->path, &bad), QUEUE_AUDIT_ALTERED);
    assert_int_equal(bad, 4);
    struct queue *q = open_q(t->path, 0, NULL);
    EQ_ERR(queue_account_create(q, "more", 0, NULL, &boot, &id),
           QUEUE_ECORRUPT);
    assert_non_null(strstr(queue_last_detail(), "audit"));
    struct queue_account a;
    EQ_ERR(queue_account_find(q, "more", &a), QUEUE_ENOTFOUND);
    queue_close(q);
}

/* ------------------------------------------------------ the keyed chain */

/* Verify the closed spool at dir with key (NULL: none) into v. */
static void verify_keyed(const char *dir, const unsigned char *key,
                         struct queue_audit_verdict *v)
{
    struct queue *q = open_keyed(dir, QUEUE_OPEN_READONLY, key, NULL);
    E(queue_audit_verify(q, v));
    queue_close(q);
}

/* The seq as an LMDB key. */
static MDB_val seq_key(uint64_t seq, unsigned char key[8])
{
    for (int i = 7; i >= 0; i--)
        key[7 - i] = (unsigned char)(seq >> (8 * i));
    return (MDB_val){ 8, key };
}

/* Stored record seq of the closed spool at dir into buf; its length. */
static size_t raw_get(const char *dir, uint64_t seq, unsigned char *buf,
                      size_t cap)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char kb[8];
    MDB_val k = seq_key(seq, kb), v;
    raw_open(dir, MDB_RDONLY, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_true(v.mv_size <= cap);
    memcpy(buf, v.mv_data, v.mv_size);
    raw_close(env, txn, false);
    return v.mv_size;
}

/* What an attacker writes: record seq as buf, and the head (seq, link). */
static void raw_put(const char *dir, uint64_t seq, const unsigned char *buf,
                    size_t len, bool head)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi, meta;
    unsigned char kb[8], hv[40];
    MDB_val k = seq_key(seq, kb), v = { len, (void *)buf };
    MDB_val hk = { 10, "audit_head" }, hval = { 40, hv };
    raw_open(dir, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    if (head) {
        memcpy(hv, kb, 8);
        memcpy(hv + 8, buf + len - QUEUE_AUDIT_HASH, QUEUE_AUDIT_HASH);
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        assert_int_equal(mdb_put(txn, meta, &hk, &hval, 0), 0);
    }
    raw_close(env, txn, true);
}

/* Set the link of buf (prev || body || link) from its bytes: SHA-256, or
 * HMAC-SHA256 with key, as the attacker's tool would. */
static void forge_link(unsigned char *buf, size_t len,
                       const unsigned char *key)
{
    unsigned int n = QUEUE_AUDIT_HASH;
    size_t body = len - QUEUE_AUDIT_HASH;
    if (key)
        assert_non_null(HMAC(EVP_sha256(), key, QUEUE_AUDIT_KEY, buf, body,
                             buf + body, &n));
    else
        assert_int_equal(EVP_Digest(buf, body, buf + body, &n, EVP_sha256(),
                                    NULL), 1);
}

/* Change one byte of record seq's body, then recompute its link and every
 * later record's prev and link and the head: SHA-256 (key NULL, the
 * attack on an unkeyed chain) or HMAC with key (an attacker who holds
 * it).  last is the chain's last seq. */
static void rewrite_from(const char *dir, uint64_t seq, uint64_t last,
                         const unsigned char *key)
{
    unsigned char buf[1024], prev[QUEUE_AUDIT_HASH];
    for (uint64_t s = seq; s <= last; s++) {
        size_t len = raw_get(dir, s, buf, sizeof buf);
        if (s == seq)
            buf[len - QUEUE_AUDIT_HASH - 1] ^= 0x01;   /* the result text */
        else
            memcpy(buf, prev, QUEUE_AUDIT_HASH);
        forge_link(buf, len, key);
        memcpy(prev, buf + len - QUEUE_AUDIT_HASH, QUEUE_AUDIT_HASH);
        raw_put(dir, s, buf, len, s == last);
    }
}

/* Keyed records: the format, the key id, the link as HMAC-SHA256(key,
 * prev || body); verify with the key checks them, without it counts them
 * unchecked, with another key names the record. */
static void test_audit_keyed(void **state)
{
    struct tdir *t = *state;
    struct audit_list *l = calloc(1, sizeof *l);
    struct queue_audit_verdict v;
    unsigned char buf[1024], calc[QUEUE_AUDIT_HASH], id[QUEUE_AUDIT_KEY_ID];
    unsigned int n = QUEUE_AUDIT_HASH;
    uint32_t master;
    test_clock_set(T0);
    struct queue *q = open_keyed(t->path, QUEUE_OPEN_CREATE, key_a, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_audit_append(q, &boot, master, "inject", "message 1", "ok"));
    assert_int_equal(queue_audit_list(q, 1, audit_cb, l), 2);
    queue_close(q);
    queue_audit_key_id(key_a, id);
    for (size_t i = 0; i < 2; i++) {
        assert_true(l->r[i].keyed);
        assert_memory_equal(l->r[i].key_id, id, sizeof id);
        size_t len = raw_get(t->path, i + 1, buf, sizeof buf);
        assert_int_equal(buf[QUEUE_AUDIT_HASH], 2);       /* format 2 */
        assert_non_null(HMAC(EVP_sha256(), key_a, sizeof key_a, buf,
                             len - QUEUE_AUDIT_HASH, calc, &n));
        assert_memory_equal(calc, l->r[i].hash, sizeof calc);
        assert_memory_equal(buf + len - QUEUE_AUDIT_HASH, calc, sizeof calc);
    }
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_true(v.key);
    assert_int_equal(v.keyed_from, 1);
    assert_int_equal(v.unchecked, 0);
    verify_keyed(t->path, NULL, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_false(v.key);
    assert_int_equal(v.unchecked, 2);
    verify_keyed(t->path, key_b, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_ALTERED);
    assert_int_equal(v.bad_seq, 1);
    assert_non_null(strstr(v.why, "another key"));
    free(l);
}

/* The attack: one record changed, then the chain recomputed with
 * SHA-256 and the head rewritten.  On an unkeyed trail it goes unseen
 * (the reason for the key); on a keyed one verify names the record. */
static void test_audit_sha_rewrite(void **state)
{
    struct tdir *t = *state;
    struct queue_audit_verdict v;
    uint32_t master, id;
    char dir[300];
    test_clock_set(T0);
    for (int keyed = 0; keyed < 2; keyed++) {
        snprintf(dir, sizeof dir, "%s/%s", t->path, keyed ? "keyed" : "plain");
        assert_int_equal(mkdir(dir, 0700), 0);
        struct queue *q = open_keyed(dir, QUEUE_OPEN_CREATE,
                                     keyed ? key_a : NULL, NULL);
        E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
        E(queue_account_create(q, "shop", 0, NULL, &boot, &id));
        E(queue_account_create(q, "blog", 0, NULL, &boot, &id));
        E(queue_account_create(q, "news", 0, NULL, &boot, &id));
        queue_close(q);
        rewrite_from(dir, 2, 4, NULL);
        verify_keyed(dir, keyed ? key_a : NULL, &v);
        if (!keyed) {
            assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
            continue;
        }
        assert_int_equal(v.fault, QUEUE_AUDIT_ALTERED);
        assert_int_equal(v.bad_seq, 2);
        assert_non_null(strstr(v.why, "MAC"));
    }
}

/* A trail unkeyed so far goes on keyed; a handle without the key (or with
 * another) may not append after keyed records; an unkeyed record forged
 * after keyed ones is a fault of its own. */
static void test_audit_migration(void **state)
{
    struct tdir *t = *state;
    struct queue_audit_verdict v;
    struct audit_list *l = calloc(1, sizeof *l);
    unsigned char buf[1024];
    uint32_t id;
    test_clock_set(T0);
    audit_fill(t->path);                          /* 5 unkeyed records */
    struct queue *q = open_keyed(t->path, 0, key_a, NULL);
    E(queue_account_create(q, "blog", 0, NULL, &boot, &id));
    E(queue_audit_append(q, &boot, id, "inject", "message 9", "ok"));
    assert_int_equal(queue_audit_list(q, 1, audit_cb, l), 7);
    assert_false(l->r[4].keyed);
    assert_true(l->r[5].keyed);
    assert_memory_equal(l->r[5].prev, l->r[4].hash, QUEUE_AUDIT_HASH);
    queue_close(q);
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_int_equal(v.records, 7);
    assert_int_equal(v.keyed_from, 6);
    assert_int_equal(v.unchecked, 0);

    /* without the key, or with another: refused, nothing written */
    q = open_keyed(t->path, 0, NULL, NULL);
    EQ_ERR(queue_account_create(q, "late", 0, NULL, &boot, &id), -ENOKEY);
    assert_non_null(strstr(queue_last_detail(), "audit_key"));
    EQ_ERR(queue_audit_append(q, &boot, 0, "inject", "x", "ok"), -ENOKEY);
    struct queue_account a;
    EQ_ERR(queue_account_find(q, "late", &a), QUEUE_ENOTFOUND);
    queue_close(q);
    q = open_keyed(t->path, 0, key_b, NULL);
    EQ_ERR(queue_audit_append(q, &boot, 0, "inject", "x", "ok"),
           -EKEYREJECTED);
    queue_close(q);
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_int_equal(v.records, 7);

    /* a forger without the key appends an unkeyed record 8 */
    size_t len = raw_get(t->path, 5, buf, sizeof buf);   /* unkeyed */
    unsigned char prev[QUEUE_AUDIT_HASH];
    size_t l7 = raw_get(t->path, 7, buf + 512, 512);
    memcpy(prev, buf + 512 + l7 - QUEUE_AUDIT_HASH, sizeof prev);
    memcpy(buf, prev, sizeof prev);
    buf[QUEUE_AUDIT_HASH + 1] = 8;              /* seq 8 (little-endian) */
    forge_link(buf, len, NULL);
    raw_put(t->path, 8, buf, len, true);
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_UNKEYED);
    assert_int_equal(v.bad_seq, 8);
    assert_non_null(strstr(v.why, "unkeyed record after keyed ones"));
    verify_keyed(t->path, NULL, &v);                    /* even without */
    assert_int_equal(v.fault, QUEUE_AUDIT_UNKEYED);
    free(l);
}

/* Checkpoints read back by queue_audit_verify_marks(). */
struct cp_file {
    FILE *f;
    unsigned lines;
};

static int cp_next(void *arg, uint64_t *seq, unsigned char head[32])
{
    struct cp_file *c = arg;
    char line[256];
    if (!fgets(line, sizeof line, c->f))
        return 0;
    c->lines++;
    E(queue_audit_checkpoint_parse(line, seq, head));
    return 1;
}

/* Verify dir with key against the checkpoint file cp into v. */
static void verify_cp(const char *dir, const char *cp,
                      struct queue_audit_verdict *v)
{
    struct cp_file c = { fopen(cp, "r"), 0 };
    assert_non_null(c.f);
    struct queue_audit_marks m = { cp_next, &c };
    struct queue *q = open_keyed(dir, QUEUE_OPEN_READONLY, key_a, NULL);
    E(queue_audit_verify_marks(q, &m, v));
    queue_close(q);
    fclose(c.f);
}

static void on_warn(void *arg, const char *text)
{
    snprintf(arg, 256, "%s", text);
}

/* Each change that appends a record writes "SEQ LINK TIME" after it
 * commits; a rewrite by a holder of the key passes the chain walk but not
 * the checkpoints; a chain cut below a checkpoint is truncated; a
 * checkpoint that cannot be written leaves the change committed. */
static void test_audit_checkpoint(void **state)
{
    struct tdir *t = *state;
    struct queue_audit_verdict v;
    char cp[300], line[256], warned[256] = "";
    uint64_t seq;
    unsigned char head[32];
    uint32_t id;
    test_clock_set(T0);
    snprintf(cp, sizeof cp, "%s/audit.checkpoint", t->path);
    struct queue *q = open_keyed(t->path, QUEUE_OPEN_CREATE, key_a, cp);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &id));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &id));
    EQ_ERR(queue_account_create(q, "shop", 0, NULL, &boot, &id), -EEXIST);
    E(queue_audit_append(q, &boot, id, "inject", "message 1", "ok"));
    E(queue_account_create(q, "blog", 0, NULL, &boot, &id));
    queue_close(q);
    FILE *f = fopen(cp, "r");
    assert_non_null(f);
    for (uint64_t s = 1; s <= 4; s++) {
        assert_non_null(fgets(line, sizeof line, f));
        E(queue_audit_checkpoint_parse(line, &seq, head));
        assert_int_equal(seq, s);
        char want[40];
        snprintf(want, sizeof want, " %lld\n", (long long)T0);
        assert_non_null(strstr(line, want));
    }
    assert_null(fgets(line, sizeof line, f));   /* the refused one: none */
    fclose(f);
    struct stat st;
    assert_int_equal(stat(cp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    verify_cp(t->path, cp, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_int_equal(v.checkpoints, 4);
    assert_int_equal(v.checkpoint_last, 4);

    /* record 4 cut off and the head moved back to 3: the chain alone is
     * sound, the checkpoint of 4 says it was longer */
    unsigned char buf[1024], kb[8], last[1024];
    size_t len4 = raw_get(t->path, 4, last, sizeof last);
    size_t len = raw_get(t->path, 3, buf, sizeof buf);
    raw_put(t->path, 3, buf, len, true);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = seq_key(4, kb);
    raw_open(t->path, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    raw_close(env, txn, true);
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    verify_cp(t->path, cp, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_TRUNCATED);
    assert_int_equal(v.bad_seq, 4);
    assert_non_null(strstr(v.why, "checkpoint 4"));
    raw_put(t->path, 4, last, len4, true);
    verify_cp(t->path, cp, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);

    /* a holder of the key rewrites record 3 and recomputes the rest */
    rewrite_from(t->path, 3, 4, key_a);
    verify_keyed(t->path, key_a, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);     /* the walk passes */
    verify_cp(t->path, cp, &v);
    assert_int_equal(v.fault, QUEUE_AUDIT_REWRITTEN);
    assert_int_equal(v.bad_seq, 3);
    assert_string_equal(v.why, "checkpoint 3: head differs: the chain was "
                               "rewritten after it");

    /* a checkpoint that cannot be written: committed, and said */
    snprintf(cp, sizeof cp, "%s/no-such-dir/audit.checkpoint", t->path);
    q = open_q(t->path, 0, NULL);
    struct queue_audit_config c = { .key = key_a, .checkpoint = cp,
                                    .warn = on_warn, .arg = warned };
    E(queue_audit_configure(q, &c));
    E(queue_audit_append(q, &boot, 0, "inject", "message 2", "ok"));
    assert_non_null(strstr(warned, "no-such-dir/audit.checkpoint"));
    assert_non_null(strstr(warned, "is committed"));
    E(queue_audit_head(q, &seq, head));
    assert_int_equal(seq, 5);
    queue_close(q);
}

/* Key files: made 0600 and never overwritten; read raw or hex; refused
 * when group or others may read them, or when they hold something else.
 * Checkpoint lines: what parses and what does not. */
static void test_audit_key_file(void **state)
{
    struct tdir *t = *state;
    char path[300], raw[300];
    unsigned char k1[QUEUE_AUDIT_KEY], k2[QUEUE_AUDIT_KEY], head[32];
    uint64_t seq;
    struct stat st;
    snprintf(path, sizeof path, "%s/audit.key", t->path);
    E(queue_audit_key_create(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    E(queue_audit_key_load(path, k1));
    EQ_ERR(queue_audit_key_create(path), -EEXIST);
    E(queue_audit_key_load(path, k2));
    assert_memory_equal(k1, k2, sizeof k1);              /* not replaced */
    assert_int_equal(chmod(path, 0644), 0);
    EQ_ERR(queue_audit_key_load(path, k2), -EPERM);
    assert_non_null(strstr(queue_last_detail(), "chmod 600"));
    assert_int_equal(chmod(path, 0640), 0);
    EQ_ERR(queue_audit_key_load(path, k2), -EPERM);
    snprintf(raw, sizeof raw, "%s/raw.key", t->path);
    int fd = open(raw, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    write_all(fd, key_a, sizeof key_a);
    close(fd);
    E(queue_audit_key_load(raw, k2));
    assert_memory_equal(k2, key_a, sizeof key_a);
    fd = open(raw, O_WRONLY | O_APPEND);
    write_all(fd, "xx", 2);                              /* 34 bytes */
    close(fd);
    EQ_ERR(queue_audit_key_load(raw, k2), -EINVAL);
    assert_non_null(strstr(queue_last_detail(), "keygen"));
    EQ_ERR(queue_audit_key_load(t->path, k2), -EINVAL);  /* a directory */
    snprintf(raw, sizeof raw, "%s/none.key", t->path);
    EQ_ERR(queue_audit_key_load(raw, k2), -ENOENT);

    const char *h = "00112233445566778899aabbccddeeff"
                    "00112233445566778899aabbccddeeff";
    char line[200];
    snprintf(line, sizeof line, "17 %s 1700000000\n", h);
    E(queue_audit_checkpoint_parse(line, &seq, head));
    assert_int_equal(seq, 17);
    assert_int_equal(head[1], 0x11);
    snprintf(line, sizeof line, "  9\t%s", h);
    E(queue_audit_checkpoint_parse(line, &seq, head));
    assert_int_equal(seq, 9);
    const char *bad[] = { "", "17", "0 %s 1", "x %s 1", "17 %.63s 1",
                          "17 %sff 1", "17 %s 1 x",
                          "99999999999999999999 %s 1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(line, sizeof line, bad[i], h);
        EQ_ERR(queue_audit_checkpoint_parse(line, &seq, head), -EINVAL);
    }
}

/* What `spool check` says about the audit trail. */
struct check_said {
    unsigned problems, notes;
    char first[256];
};

static void check_cb(void *arg, int kind, const char *db, const char *key,
                     const char *what)
{
    struct check_said *c = arg;
    if (strcmp(db, "audit"))
        return;
    if (kind == QUEUE_REPORT_PROBLEM && !c->problems++)
        snprintf(c->first, sizeof c->first, "%s: %s", key, what);
    if (kind == QUEUE_REPORT_NOTE) {
        c->notes++;
        if (!c->problems)
            snprintf(c->first, sizeof c->first, "%s", what);
    }
}

/* Check dir with key (NULL: none) into c. */
static void check_with(const char *dir, const unsigned char *key,
                       struct check_said *c)
{
    struct queue_check_report r;
    memset(c, 0, sizeof *c);
    E(queue_check_keyed(dir, 0, key, check_cb, c, &r));
}

/* The spool check walks the same rules: with the key it checks MACs,
 * without it it says in a note that it did not; an unkeyed record after
 * keyed ones and an edited unkeyed record are problems either way. */
static void test_audit_spool_check(void **state)
{
    struct tdir *t = *state;
    struct check_said c;
    uint32_t id;
    test_clock_set(T0);
    audit_fill(t->path);                       /* 5 unkeyed, then keyed */
    struct queue *q = open_keyed(t->path, 0, key_a, NULL);
    E(queue_account_create(q, "blog", 0, NULL, &boot, &id));
    E(queue_account_create(q, "news", 0, NULL, &boot, &id));
    queue_close(q);
    check_with(t->path, key_a, &c);
    assert_int_equal(c.problems, 0);
    assert_int_equal(c.notes, 0);
    check_with(t->path, NULL, &c);
    assert_int_equal(c.problems, 0);
    assert_int_equal(c.notes, 1);
    assert_non_null(strstr(c.first, "2 keyed audit records (from 6)"));
    assert_non_null(strstr(c.first, "MACs not"));

    /* record 6 edited, the rest recomputed with SHA-256 */
    rewrite_from(t->path, 6, 7, NULL);
    check_with(t->path, key_a, &c);
    assert_int_equal(c.problems, 2);            /* 6 and 7: not MACs */
    assert_non_null(strstr(c.first, "seq 6: its bytes do not match its "
                                    "MAC"));
    check_with(t->path, NULL, &c);              /* links hold: not seen */
    assert_int_equal(c.problems, 0);
    assert_int_equal(c.notes, 1);

    /* an unkeyed record edited and its hash recomputed (the head moved to
     * it): the next record's link to it breaks, the head is not the end */
    rewrite_from(t->path, 2, 2, NULL);
    check_with(t->path, NULL, &c);
    assert_int_equal(c.problems, 2);
    assert_non_null(strstr(c.first, "seq 3: audit chain broken"));

    /* salvage copies the records as they are and keeps the head on the
     * last one: the copy verifies like the original (here: broken at 3) */
    char dst[300];
    struct queue_check_report r;
    snprintf(dst, sizeof dst, "%s/salvaged", t->path);
    E(queue_salvage(t->path, dst, NULL, NULL, &r));
    uint64_t bad;
    assert_int_equal(verify_dir_with(dst, key_a, &bad), QUEUE_AUDIT_ALTERED);
    assert_int_equal(bad, 3);
}

/* ------------------------------------------------------------- usage */

struct day_list {
    uint32_t day[4];
    struct queue_usage u[4];
    size_t n;
};

static int day_cb(void *arg, uint32_t day, const struct queue_usage *u)
{
    struct day_list *l = arg;
    if (l->n < 4) {
        l->day[l->n] = day;
        l->u[l->n] = *u;
    }
    l->n++;
    return 0;
}

static void test_usage(void **state)
{
    struct tdir *t = *state;
    struct queue_usage u;
    uint32_t master, shop, blog;
    uint64_t first;
    const char *rc[] = { "a@x.example", "b@x.example", "c@x.example",
                         "d@x.example", "e@x.example", "f@x.example" };
    test_clock_set(T0);
    uint32_t day = queue_day_of(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    E(queue_account_create(q, "shop", 0, NULL, &boot, &shop));
    E(queue_account_create(q, "blog", 0, NULL, &boot, &blog));
    E(queue_enqueue_message(q, shop, "s@shop.example", rc, 6, "m", 1, &first,
                            NULL));
    uint64_t f0 = first;
    E(queue_enqueue_message(q, master, "s@acme.example", rc, 2, "m", 1,
                            &first, NULL));
    uint64_t m0 = first;
    E(queue_enqueue_message(q, 0, "s@raw.example", rc, 1, "m", 1, &first,
                            NULL));
    uint64_t r0 = first;
    struct queue_outcome o[] = {
        { .delivery = f0, .type = QUEUE_EV_DELIVERED, .code = 250 },
        { .delivery = f0 + 1, .type = QUEUE_EV_BOUNCED, .code = 550 },
        /* sent is delivered + bounced (README "Reports"), a bounce
         * without an SMTP conversation too; a deferral is not sent */
        { .delivery = f0 + 2, .type = QUEUE_EV_BOUNCED, .code = 0 },
        { .delivery = f0 + 3, .type = QUEUE_EV_DEFERRED, .code = 451 },
        /* a DNS failure: deferred, nothing counted */
        { .delivery = f0 + 4, .type = QUEUE_EV_DEFERRED, .code = 0 },
        { .delivery = f0 + 5, .type = QUEUE_EV_EXPIRED },
        { .delivery = m0, .type = QUEUE_EV_DELIVERED, .code = 250 },
        { .delivery = r0, .type = QUEUE_EV_DELIVERED, .code = 250 },
    };
    E(queue_record_outcomes(q, o, sizeof o / sizeof o[0]));
    E(queue_usage_get(q, shop, day, &u));
    assert_int_equal(u.sent, 3);
    assert_int_equal(u.delivered, 1);
    assert_int_equal(u.bounced, 2);
    E(queue_usage_get(q, master, day, &u));
    assert_int_equal(u.sent, 1);
    assert_int_equal(u.delivered, 1);
    E(queue_usage_get(q, blog, day, &u));
    assert_int_equal(u.sent + u.delivered + u.bounced, 0);
    E(queue_usage_get(q, 0, day, &u));
    assert_int_equal(u.sent, 0);   /* account 0 is not metered */

    /* next day: the deferred one is delivered */
    test_clock_set(T0 + 86400);
    struct queue_outcome o2[] = {
        { .delivery = f0 + 3, .type = QUEUE_EV_DELIVERED, .code = 250 },
    };
    E(queue_record_outcomes(q, o2, 1));
    E(queue_usage_get(q, shop, day + 1, &u));
    assert_int_equal(u.sent, 1);
    assert_int_equal(u.delivered, 1);
    E(queue_usage_rollup(q, master, day, &u));
    assert_int_equal(u.sent, 4);
    assert_int_equal(u.delivered, 2);
    assert_int_equal(u.bounced, 2);
    E(queue_usage_rollup(q, shop, day, &u));
    assert_int_equal(u.sent, 3);   /* a sub-account: its own */
    queue_close(q);

    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    struct day_list l = { 0 };
    assert_int_equal(queue_usage_days(q, shop, day - 5, day + 5, day_cb, &l),
                     2);
    assert_int_equal(l.day[0], day);
    assert_int_equal(l.day[1], day + 1);
    assert_int_equal(l.u[0].bounced, 2);
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_usage_days(q, shop, day + 1, day + 1, day_cb, &l),
                     1);
    memset(&l, 0, sizeof l);
    assert_int_equal(queue_usage_days(q, blog, 0, UINT32_MAX, day_cb, &l), 0);
    queue_close(q);
}

/* Admin changes committed in the same groups as outcome batches (nested
 * transactions beside the writer's open event cursor): everything lands,
 * in order. */
static void test_admin_in_groups(void **state)
{
    struct tdir *t = *state;
    struct queue_options o = { .group_ms = 20 };
    struct queue_audit_verdict v;
    struct queue_counts c;
    struct queue_usage u;
    uint32_t master, id;
    uint64_t first;
    enum { N = 64 };
    char buf[N][32];
    const char *rc[N];
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, &o);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &master));
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "r%d@g.example", i);
        rc[i] = buf[i];
    }
    E(queue_enqueue_message(q, master, "s@acme.example", rc, N, "m", 1,
                            &first, NULL));
    for (int i = 0; i < N; i++) {
        struct queue_outcome oc = { .delivery = first + (uint64_t)i,
                                    .type = QUEUE_EV_DELIVERED,
                                    .code = 250 };
        E(queue_submit_outcomes(q, &oc, 1, NULL, NULL, NULL));
        if (i % 8 == 7) {
            char name[16];
            snprintf(name, sizeof name, "sub%d", i);
            E(queue_account_create(q, name, 0, NULL, &boot, &id));
        }
    }
    E(queue_flush(q));
    struct queue_info info;
    E(queue_info(q, &info));
    assert_true(info.commits < info.ops_committed);   /* groups of several */
    E(queue_counts_account(q, master, &c));
    assert_int_equal(c.delivered, N);
    E(queue_usage_get(q, master, queue_day_of(T0), &u));
    assert_int_equal(u.delivered, N);
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    assert_int_equal(v.records, 1 + N / 8);
    queue_close(q);
}

/* ---------------------------------------------------------- upgrade */

/* Turn a closed current spool into what sluice 2 wrote: schema 2, no
 * admin databases. */
static void make_v2(const char *dir)
{
    static const char *const dbs[] = { "accounts", "users", "roles",
                                       "apikeys", "audit", "sdomains",
                                       "usage" };
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, dbi;
    unsigned char two[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
    MDB_val k = { 6, "schema" }, v = { 8, two };
    raw_open(dir, 0, &env, &txn);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        assert_int_equal(mdb_dbi_open(txn, dbs[i], 0, &dbi), 0);
        assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    }
    raw_close(env, txn, true);
}

static void test_upgrade_v2(void **state)
{
    struct tdir *t = *state;
    struct queue_info info;
    struct queue_account a;
    struct queue_audit_verdict v;
    uint32_t id, master;
    uint64_t first;
    const char *rc[] = { "a@one.example" };
    test_clock_set(T0);
    struct queue *q = open_q(t->path, QUEUE_OPEN_CREATE, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, QUEUE_SCHEMA_VERSION);
    E(queue_enqueue_message(q, 0, "s@x.example", rc, 1, "hi", 2, &first,
                            NULL));
    queue_close(q);
    make_v2(t->path);

    /* read-only: no admin data, nothing written */
    q = open_q(t->path, QUEUE_OPEN_READONLY, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, 2);
    int n = 0;
    assert_int_equal(queue_accounts(q, count_cb, &n), 0);
    E(queue_account_master(q, &master));
    assert_int_equal(master, 0);
    EQ_ERR(queue_account_find(q, "acme", &a), QUEUE_ENOTFOUND);
    E(queue_audit_verify(q, &v));
    assert_int_equal(v.fault, QUEUE_AUDIT_INTACT);
    EQ_ERR(queue_account_create(q, "acme", 0, NULL, &boot, &id), -EROFS);
    queue_close(q);

    /* writable: upgraded, accounts work, the delivery is still there */
    q = open_q(t->path, 0, NULL);
    E(queue_info(q, &info));
    assert_int_equal(info.schema, QUEUE_SCHEMA_VERSION);
    E(queue_account_create(q, "acme", 0, NULL, &boot, &id));
    struct queue_delivery d;
    E(queue_get_delivery(q, first, &d));
    assert_string_equal(d.rcpt, "a@one.example");
    queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accounts, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_users_roles, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_apikeys, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_sdomains, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_sdomain_keys, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_sdomain_format1, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_list, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_every_byte, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_tamper, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_past_head, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_keyed, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_sha_rewrite, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_migration, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_checkpoint, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_key_file, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_audit_spool_check, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_usage, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_admin_in_groups, tdir_setup,
                                        tdir_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_v2, tdir_setup,
                                        tdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
