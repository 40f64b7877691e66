/*
 * test_ingress.c - the rules for mail coming in (queue/ingress.c): API
 * keys for sending and the From: domain of the message.
 *
 * DESCRIPTION
 *   A spool with the master acme (id 1), its sub-account shop (id 2) and
 *   users with keys of each scope.  queue_ingress_key() accepts a send key
 *   on its own account and a master key on the sub-account, and refuses a
 *   wrong secret, text that is no key, a revoked key, a disabled user, a
 *   read-scope key, a key of another account, a disabled account.
 *   queue_ingress_message() adds Message-ID with the given host, accepts
 *   From: in a verified domain or under one (relaxed alignment), refuses
 *   an unverified or foreign one and a message that breaks the spool's
 *   rules.
 */
#include <openssl/evp.h>

#include "queue_ingress.h"
#include "testutil.h"

static const struct queue_actor boot = { "(bootstrap)", "uid:0",
                                         QUEUE_ROLE_OWNER, 0 };

/* Make key id (its text into text) for user on account with scope, the
 * secret's bytes all b. */
static uint32_t make_key(struct queue *q, uint32_t user, uint32_t account,
                         int scope, unsigned char b, char *text, size_t cap)
{
    unsigned char secret[QUEUE_APIKEY_SECRET], hash[QUEUE_APIKEY_HASH];
    unsigned int hlen = sizeof hash;
    uint32_t id;
    memset(secret, b, sizeof secret);
    assert_int_equal(EVP_Digest(secret, sizeof secret, hash, &hlen,
                                EVP_sha256(), NULL), 1);
    E(queue_apikey_create(q, user, account, scope, "k", hash, &boot, &id));
    int n = snprintf(text, cap, "sk_%u_", id);
    for (size_t i = 0; i < sizeof secret; i++)
        n += snprintf(text + n, cap - (size_t)n, "%02x", b);
    return id;
}

struct fx {
    struct tdir *t;
    struct queue *q;
    uint32_t alice, bob, carol;   /* sender on acme, sender on shop,
                                     viewer on acme */
    char k_alice[128], k_read[128], k_bob[128], k_carol[128];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    void *t = NULL;
    if (tdir_setup(&t)) {
        free(f);
        return -1;
    }
    f->t = t;
    f->q = open_q(f->t->path, QUEUE_OPEN_CREATE, NULL);
    test_acme_shop(f->q, &boot);
    E(queue_user_add(f->q, "alice", NULL, 1, QUEUE_ROLE_ADMIN, &boot,
                     &f->alice));
    E(queue_user_add(f->q, "bob", NULL, 2, QUEUE_ROLE_SENDER, &boot,
                     &f->bob));
    E(queue_user_add(f->q, "carol", NULL, 1, QUEUE_ROLE_VIEWER, &boot,
                     &f->carol));
    make_key(f->q, f->alice, 1, QUEUE_ROLE_SENDER, 0xa1, f->k_alice, 128);
    make_key(f->q, f->alice, 1, QUEUE_ROLE_VIEWER, 0xa2, f->k_read, 128);
    make_key(f->q, f->bob, 2, QUEUE_ROLE_SENDER, 0xb1, f->k_bob, 128);
    make_key(f->q, f->carol, 1, QUEUE_ROLE_SENDER, 0xc1, f->k_carol, 128);
    E(queue_sdomain_add(f->q, "acme.example", 1, NULL, &boot));
    E(queue_sdomain_set_verified(f->q, "acme.example", true, "forced",
                                 &boot));
    E(queue_sdomain_add(f->q, "shop.example", 2, NULL, &boot));
    E(queue_sdomain_set_verified(f->q, "shop.example", true, "forced",
                                 &boot));
    E(queue_sdomain_add(f->q, "pending.example", 2, NULL, &boot));
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    queue_close(f->q);
    void *t = f->t;
    tdir_teardown(&t);
    free(f);
    return 0;
}

/* A good send key: the key's own account, user and role. */
static void test_key_ok(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    E(queue_ingress_key(f->q, f->k_alice, NULL, &w, why, sizeof why));
    assert_int_equal(w.account, 1);
    assert_string_equal(w.account_name, "acme");
    assert_int_equal(w.user, f->alice);
    assert_string_equal(w.user_name, "alice");
    assert_int_equal(w.role, QUEUE_ROLE_SENDER);   /* scope caps admin */
    assert_string_equal(w.via, "apikey:1");
    E(queue_ingress_key(f->q, f->k_bob, "shop", &w, why, sizeof why));
    assert_int_equal(w.account, 2);
}

/* A master key also sends as a sub-account, by name or id. */
static void test_key_master_on_sub(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    E(queue_ingress_key(f->q, f->k_alice, "shop", &w, why, sizeof why));
    assert_int_equal(w.account, 2);
    assert_string_equal(w.account_name, "shop");
    E(queue_ingress_key(f->q, f->k_alice, "2", &w, why, sizeof why));
    assert_int_equal(w.account, 2);
}

/* A wrong secret and text that is no key: unknown. */
static void test_key_wrong(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "", bad[128];
    snprintf(bad, sizeof bad, "%s", f->k_alice);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    EQ_ERR(queue_ingress_key(f->q, bad, NULL, &w, why, sizeof why),
           QUEUE_ENOTFOUND);
    assert_string_equal(why, "unknown API key");
    EQ_ERR(queue_ingress_key(f->q, "sk_999_" "00000000000000000000000000000000"
                             "00000000000000000000000000000000", NULL, &w,
                             why, sizeof why), QUEUE_ENOTFOUND);
    EQ_ERR(queue_ingress_key(f->q, "hunter2", NULL, &w, why, sizeof why),
           QUEUE_ENOTFOUND);
    assert_non_null(strstr(why, "not a sluice API key"));
    EQ_ERR(queue_ingress_key(f->q, "", NULL, &w, why, sizeof why),
           QUEUE_ENOTFOUND);
    struct queue_apikey k;
    EQ_ERR(queue_ingress_key_find(f->q, "sk_1_zz", &k, NULL, why, sizeof why),
           QUEUE_EINVAL);
}

/* A revoked key refuses from then on. */
static void test_key_revoked(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    E(queue_apikey_revoke(f->q, 1, &boot));
    EQ_ERR(queue_ingress_key(f->q, f->k_alice, NULL, &w, why, sizeof why),
           QUEUE_EPERM);
    assert_string_equal(why, "this API key is revoked");
}

/* A disabled user's key refuses. */
static void test_key_user_disabled(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    struct queue_user u;
    struct queue_apikey k;
    E(queue_user_set_disabled(f->q, f->bob, true, &boot));
    EQ_ERR(queue_ingress_key(f->q, f->k_bob, NULL, &w, why, sizeof why),
           QUEUE_EPERM);
    assert_string_equal(why, "user bob is disabled");
    EQ_ERR(queue_ingress_key_find(f->q, f->k_bob, &k, &u, why, sizeof why),
           QUEUE_EPERM);
    assert_string_equal(u.name, "bob");
    assert_int_equal(k.id, 3);
}

/* A read-scope key, or a send key of a viewer, may not send. */
static void test_key_read_scope(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    EQ_ERR(queue_ingress_key(f->q, f->k_read, NULL, &w, why, sizeof why),
           QUEUE_EPERM);
    assert_non_null(strstr(why, "scope viewer"));
    EQ_ERR(queue_ingress_key(f->q, f->k_carol, NULL, &w, why, sizeof why),
           QUEUE_EPERM);
    assert_non_null(strstr(why, "needs role sender; carol has viewer"));
}

/* A sub-account's key is not for the master (nor an unknown account). */
static void test_key_other_account(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    EQ_ERR(queue_ingress_key(f->q, f->k_bob, "acme", &w, why, sizeof why),
           QUEUE_EPERM);
    assert_string_equal(why, "API key 3 is not for account acme");
    EQ_ERR(queue_ingress_key(f->q, f->k_bob, "nosuch", &w, why, sizeof why),
           QUEUE_EPERM);
}

/* A disabled account takes no mail, by key or as the relay account. */
static void test_account_disabled(void **state)
{
    struct fx *f = *state;
    struct queue_ingress_who w;
    char why[256] = "";
    struct queue_account_change c = { .set = QUEUE_AC_DISABLED,
                                      .disabled = true };
    E(queue_ingress_account(f->q, "shop", &w, why, sizeof why));
    assert_int_equal(w.account, 2);
    assert_int_equal(w.user, 0);
    assert_string_equal(w.via, "relay");
    E(queue_account_update(f->q, 2, &c, &boot));
    EQ_ERR(queue_ingress_key(f->q, f->k_bob, NULL, &w, why, sizeof why),
           QUEUE_EPERM);
    assert_string_equal(why, "account shop is disabled");
    EQ_ERR(queue_ingress_key(f->q, f->k_alice, "shop", &w, why, sizeof why),
           QUEUE_EPERM);
    EQ_ERR(queue_ingress_account(f->q, "shop", &w, why, sizeof why),
           QUEUE_EPERM);
    EQ_ERR(queue_ingress_account(f->q, "nosuch", &w, why, sizeof why),
           QUEUE_ENOTFOUND);
}

/* Check msg for account (name) and return the code; *out the result. */
static int check_msg(struct fx *f, uint32_t account, const char *name,
                     const char *msg, char **out, char *why, size_t cap)
{
    struct queue_ingress_who w = { .account = account };
    size_t clen;
    snprintf(w.account_name, sizeof w.account_name, "%s", name);
    return queue_ingress_message(f->q, &w, msg, strlen(msg), "mx.example.net",
                                 out, &clen, why, cap);
}

/* From: in the account's verified domain, or under it, passes, with
 * Message-ID and Date added; elsewhere it is refused. */
static void test_message_from(void **state)
{
    struct fx *f = *state;
    char why[256] = "", *out = NULL;
    E(check_msg(f, 1, "acme", "From: a@acme.example\r\nSubject: x\r\n\r\nhi\r\n",
                &out, why, sizeof why));
    assert_non_null(out);
    assert_non_null(strstr(out, "@mx.example.net>"));
    assert_non_null(strstr(out, "\r\nDate: "));
    free(out);
    /* a parent domain verified: relaxed alignment */
    E(check_msg(f, 1, "acme", "From: A <a@news.acme.example>\r\nDate: Mon, 1 "
                "Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n",
                &out, why, sizeof why));
    assert_null(out);
    /* another account's domain */
    EQ_ERR(check_msg(f, 1, "acme", "From: a@shop.example\r\n\r\nhi\r\n", &out,
                     why, sizeof why), QUEUE_EPERM);
    assert_string_equal(why, "From: domain shop.example is not a verified "
                        "sending domain of account acme");
    assert_null(out);
    /* unverified */
    EQ_ERR(check_msg(f, 2, "shop", "From: a@pending.example\r\n\r\nhi\r\n",
                     &out, why, sizeof why), QUEUE_EPERM);
    /* a look-alike is no child */
    EQ_ERR(check_msg(f, 1, "acme", "From: a@evilacme.example\r\n\r\nx\r\n",
                     &out, why, sizeof why), QUEUE_EPERM);
    /* never the bare top-level domain */
    EQ_ERR(check_msg(f, 1, "acme", "From: a@example\r\n\r\nx\r\n", &out, why,
                     sizeof why), QUEUE_EPERM);
    /* account 0: no From: check */
    E(check_msg(f, 0, "", "From: a@anything.example\r\n\r\nhi\r\n", &out, why,
                sizeof why));
    free(out);
}

/* A message that breaks the spool's rules. */
static void test_message_rules(void **state)
{
    struct fx *f = *state;
    char why[256] = "", *out = NULL;
    EQ_ERR(check_msg(f, 1, "acme", "Subject: no from\r\n\r\nhi\r\n", &out, why,
                     sizeof why), QUEUE_EINVAL);
    assert_non_null(strstr(why, "From"));
    EQ_ERR(check_msg(f, 1, "acme", "", &out, why, sizeof why), QUEUE_EINVAL);
    size_t clen;
    EQ_ERR(queue_ingress_message(NULL, NULL, "From: a@b.example\r\n\r\n\0x", 24,
                                 NULL, &out, &clen, why, sizeof why),
           QUEUE_EINVAL);
    assert_non_null(strstr(why, "NUL"));
    /* no host given: the From: domain */
    E(queue_ingress_message(NULL, NULL, "From: a@b.example\r\n\r\nx\r\n", 24,
                            NULL, &out, &clen, why, sizeof why));
    assert_non_null(strstr(out, "@b.example>"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_ok, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_master_on_sub, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_wrong, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_revoked, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_user_disabled, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_read_scope, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_other_account, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_account_disabled, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_message_from, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_message_rules, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
