/*
 * test_keystore.c - cmocka unit tests of the DKIM key store (dkim_store.h):
 * the one path builder, the mode check that refuses a key group or others
 * may read, a damaged key file, the listing of a store with odd names, the
 * cut of our record into strings, the parse of hostile TXT records, and
 * the one domain normaliser (upper case, trailing dot, IDN, invalid).
 * Tests that touch files make their own mkdtemp directory and remove it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dkim_sign.h"
#include "dkim_store.h"

/* A temporary store root with paths for up to a few files in it. */
struct fix {
    char root[64];
    char made[8][256];      /* files and directories to remove, in order */
    int nmade;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/sluice-store-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    for (int i = f->nmade - 1; i >= 0; i--)
        if (unlink(f->made[i]) != 0)
            rmdir(f->made[i]);
    rmdir(f->root);
    free(f);
    return 0;
}

/* Remember path for teardown (files before the directories that hold
 * them are removed first: teardown goes backwards). */
static const char *keep(struct fix *f, const char *path)
{
    assert_true(f->nmade < 8);
    snprintf(f->made[f->nmade], sizeof f->made[0], "%s", path);
    return f->made[f->nmade++];
}

/* Write n bytes of data to a new file path with mode. */
static void write_file(const char *path, const char *data, size_t n,
                       mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* ---------------------------------------------------------------- paths */

static void test_paths(void **state)
{
    (void)state;
    char buf[64], small[16];
    assert_int_equal(dkim_store_root(buf, sizeof buf, "/var/spool/sluice"),
                     0);
    assert_string_equal(buf, "/var/spool/sluice/dkim");
    assert_int_equal(dkim_store_path(buf, sizeof buf, "/s/dkim", NULL, NULL),
                     0);
    assert_string_equal(buf, "/s/dkim");
    assert_int_equal(dkim_store_path(buf, sizeof buf, "/s/dkim",
                                     "example.com", NULL), 0);
    assert_string_equal(buf, "/s/dkim/example.com");
    assert_int_equal(dkim_store_path(buf, sizeof buf, "/s/dkim",
                                     "example.com", "s2026"), 0);
    assert_string_equal(buf, "/s/dkim/example.com/s2026.key");
    /* a path that does not fit is refused, never cut */
    assert_int_equal(dkim_store_path(small, sizeof small, "/s/dkim",
                                     "example.com", "s2026"), -ENAMETOOLONG);
    assert_int_equal(dkim_store_root(small, 8, "/var/spool"), -ENAMETOOLONG);
    assert_true(dkim_record_name("s2026", "example.com", buf, sizeof buf));
    assert_string_equal(buf, "s2026._domainkey.example.com");
    char name[300], dom[260];
    memset(dom, 'a', 250);
    memcpy(dom + 250, ".co", 4);
    assert_false(dkim_record_name("s1", dom, name, sizeof name));
}

/* -------------------------------------------------- keys: mode, damage */

/* A key made into the store loads; made group- or other-readable it is
 * refused with the chmod that fixes it; a second keygen never replaces. */
static void test_mode_refusal(void **state)
{
    struct fix *f = *state;
    char dir[256], path[256], txt[DKIM_TXT_MAX], err[512], failed[256];
    struct dkim_keyinfo ki;

    assert_int_equal(dkim_store_mkdirs(f->root, "example.com", failed,
                                       sizeof failed), 0);
    assert_int_equal(dkim_store_path(dir, sizeof dir, f->root, "example.com",
                                     NULL), 0);
    keep(f, dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(dkim_store_path(path, sizeof path, f->root,
                                     "example.com", "s1"), 0);
    assert_int_equal(dkim_store_keygen("ed25519", 0, keep(f, path), txt,
                                       sizeof txt), 0);
    assert_int_equal(strncmp(txt, "v=DKIM1; k=ed25519; p=", 22), 0);
    assert_int_equal(dkim_store_keygen("ed25519", 0, path, txt, sizeof txt),
                     -EEXIST);

    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err), 0);
    assert_string_equal(ki.algo, "ed25519");
    assert_int_equal(ki.bits, 256);
    assert_int_equal(ki.publen, 32);
    assert_string_equal(ki.txt, txt);
    dkim_keyinfo_free(&ki);

    static const mode_t bad[] = { 0640, 0604, 0660, 0644 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        err[0] = 0;
        assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err),
                         DKIM_E_KEYPERM);
        assert_non_null(strstr(err, "chmod 600"));
        assert_non_null(strstr(err, path));
        assert_null(ki.pkey);
        dkim_keyinfo_free(&ki);
    }
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err), 0);
    dkim_keyinfo_free(&ki);
}

/* Files that are no key: garbage, a truncated PEM, an empty file, one
 * over the size cap, a missing one. */
static void test_damaged_key(void **state)
{
    struct fix *f = *state;
    char path[256], good[256], txt[DKIM_TXT_MAX], err[512];
    struct dkim_keyinfo ki;

    snprintf(good, sizeof good, "%s/good.key", f->root);
    assert_int_equal(dkim_store_keygen("rsa", 1024, keep(f, good), txt,
                                       sizeof txt), 0);
    assert_int_equal(dkim_keyinfo_load(good, &ki, err, sizeof err), 0);
    assert_string_equal(ki.algo, "rsa");
    assert_int_equal(ki.bits, 1024);
    assert_non_null(ki.pkey);
    dkim_keyinfo_free(&ki);

    /* the first half of a good key */
    FILE *in = fopen(good, "r");
    assert_non_null(in);
    char pem[4096];
    size_t n = fread(pem, 1, sizeof pem, in);
    fclose(in);
    assert_true(n > 100);
    snprintf(path, sizeof path, "%s/half.key", f->root);
    write_file(keep(f, path), pem, n / 2, 0600);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err),
                     DKIM_E_KEYPARSE);
    assert_non_null(strstr(err, "not a PEM private key"));
    dkim_keyinfo_free(&ki);

    /* the body of the key with bytes flipped in the middle */
    pem[n / 2] = '*';
    pem[n / 2 + 1] = '#';
    snprintf(path, sizeof path, "%s/flip.key", f->root);
    write_file(keep(f, path), pem, n, 0600);
    assert_true(dkim_keyinfo_load(path, &ki, err, sizeof err) < 0);
    assert_null(ki.pkey);
    dkim_keyinfo_free(&ki);

    snprintf(path, sizeof path, "%s/empty.key", f->root);
    write_file(keep(f, path), "", 0, 0600);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err),
                     DKIM_E_KEYPARSE);
    dkim_keyinfo_free(&ki);

    /* over DKIM_KEYFILE_MAX: refused before any parse */
    char *big = malloc(DKIM_KEYFILE_MAX + 10);
    assert_non_null(big);
    memset(big, 'A', DKIM_KEYFILE_MAX + 10);
    snprintf(path, sizeof path, "%s/big.key", f->root);
    write_file(keep(f, path), big, DKIM_KEYFILE_MAX + 10, 0600);
    free(big);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err),
                     DKIM_E_TOOBIG);
    dkim_keyinfo_free(&ki);

    snprintf(path, sizeof path, "%s/none.key", f->root);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err), -ENOENT);
    dkim_keyinfo_free(&ki);
}

/* ------------------------------------------------------------- listing */

struct odd_seen {
    int n;
    char last[256];
};

static int on_odd(void *arg, const char *path, const char *why)
{
    struct odd_seen *o = arg;
    (void)why;
    o->n++;
    snprintf(o->last, sizeof o->last, "%s", path);
    return 0;
}

static int stop_odd(void *arg, const char *path, const char *why)
{
    (void)arg;
    (void)path;
    (void)why;
    return -EINVAL;
}

/* Keys are listed sorted; names the store would never make are reported
 * (and the caller may stop the scan on them); a missing domain is empty. */
static void test_scan(void **state)
{
    struct fix *f = *state;
    char dir[128], path[256];
    struct dkim_store_list l = { 0 };
    struct odd_seen o = { 0 };

    assert_int_equal(dkim_store_mkdirs(f->root, "b.test", NULL, 0), 0);
    snprintf(dir, sizeof dir, "%s/b.test", f->root);
    keep(f, dir);
    static const char *const files[] = { "s2.key", "s1.key", "Up.key",
                                         "a_b.key", "notes.txt" };
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        write_file(keep(f, path), "x", 1, 0600);
    }
    assert_int_equal(dkim_store_scan(&l, f->root, NULL, on_odd, &o), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].domain, "b.test");
    assert_string_equal(l.v[0].selector, "s1");
    assert_string_equal(l.v[1].selector, "s2");
    assert_int_equal(o.n, 2);                 /* Up.key and a_b.key */
    dkim_store_list_free(&l);

    assert_int_equal(dkim_store_scan(&l, f->root, "b.test", stop_odd, NULL),
                     -EINVAL);
    dkim_store_list_free(&l);
    assert_int_equal(dkim_store_scan(&l, f->root, "none.test", NULL, NULL),
                     0);
    assert_int_equal(l.n, 0);
    dkim_store_list_free(&l);
}

/* ------------------------------------------------------------- records */

/* Our RSA record: the tags before p= in one string, then p= in pieces of
 * at most 255; a DMARC record is not cut at its p=. */
static void test_txt_cut(void **state)
{
    (void)state;
    char txt[DKIM_TXT_MAX];
    size_t off[DKIM_STRINGS_MAX], len[DKIM_STRINGS_MAX];
    memcpy(txt, "v=DKIM1; k=rsa; p=", 18);
    memset(txt + 18, 'A', 392);
    txt[410] = 0;
    int k = dkim_txt_cut(txt, off, len, DKIM_STRINGS_MAX);
    assert_int_equal(k, 3);
    assert_int_equal(len[0], 16);             /* "v=DKIM1; k=rsa; " */
    assert_int_equal(off[1], 16);
    assert_int_equal(len[1], 255);
    assert_int_equal(len[2], 410 - 16 - 255);
    const char *dmarc = "v=DMARC1; p=none; rua=mailto:postmaster@a.test";
    k = dkim_txt_cut(dmarc, off, len, DKIM_STRINGS_MAX);
    assert_int_equal(k, 1);
    assert_int_equal(len[0], strlen(dmarc));
}

/* Tag lists someone else wrote: each refusal has its reason, nothing
 * reads past the record. */
static void test_tags_hostile(void **state)
{
    (void)state;
    struct dkim_tag t[DKIM_TAGS_MAX];
    const char *why = NULL;
    char rec[DKIM_REC_MAX];

    const char *ok = " v = DKIM1 ;k=rsa;; p= AB CD ; ";
    int n = dkim_tags_parse(ok, strlen(ok), t, DKIM_TAGS_MAX, &why);
    assert_int_equal(n, 3);
    const struct dkim_tag *p = dkim_tag_find(t, n, "p");
    assert_non_null(p);
    assert_int_equal(p->vlen, 5);
    assert_memory_equal(p->val, "AB CD", 5);
    assert_null(dkim_tag_find(t, n, "h"));

    static const struct { const char *rec, *why; } bad[] = {
        { "v=DKIM1; p=AAAA; p=BBBB", "a repeated tag" },
        { "v=DKIM1; k", "a tag without '='" },
        { "v=DKIM1; 9k=rsa", "a bad tag name" },
        { "v=DKIM1; k-x=rsa", "a bad tag name" },
        { "v=DKIM1; =rsa", "a bad tag name" },
        { "v=DKIM1; n=caf\xc3\xa9", "a character not allowed in a tag value" },
        { "v=DKIM1; n=a\x01z", "a character not allowed in a tag value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(dkim_tags_parse(bad[i].rec, strlen(bad[i].rec), t,
                                         DKIM_TAGS_MAX, &why), -1);
        assert_string_equal(why, bad[i].why);
    }
    /* a NUL inside the record (DNS strings may hold one) */
    static const char nul[] = "v=DKIM1; p=AB\0CD";
    assert_int_equal(dkim_tags_parse(nul, sizeof nul - 1, t, DKIM_TAGS_MAX,
                                     &why), -1);
    /* more tags than we keep: refused, not cut */
    size_t at = 0;
    for (int i = 0; i < DKIM_TAGS_MAX + 1; i++)
        at += (size_t)snprintf(rec + at, sizeof rec - at, "t%d=x;", i);
    why = NULL;
    assert_int_equal(dkim_tags_parse(rec, at, t, DKIM_TAGS_MAX, &why), -1);
    assert_string_equal(why, "too many tags");
    /* a record of only separators and blanks has no tags */
    assert_int_equal(dkim_tags_parse(" ; ;\t; ", 7, t, DKIM_TAGS_MAX, &why),
                     0);
    /* the parse is bounded by n: text past it is not read */
    const char *cut = "v=DKIM1; p=AAAA; p=BBBB";
    assert_int_equal(dkim_tags_parse(cut, 16, t, DKIM_TAGS_MAX, &why), 2);
}

/* Published records judged against a key of ours. */
static void test_judge(void **state)
{
    struct fix *f = *state;
    char path[256], txt[DKIM_TXT_MAX], err[512], detail[320], rec[2048];
    struct dkim_keyinfo ki;

    snprintf(path, sizeof path, "%s/e.key", f->root);
    assert_int_equal(dkim_store_keygen("ed25519", 0, keep(f, path), txt,
                                       sizeof txt), 0);
    assert_int_equal(dkim_keyinfo_load(path, &ki, err, sizeof err), 0);
    const char *pub = strstr(txt, "p=") + 2;

    assert_int_equal(dkim_record_judge(&ki, txt, strlen(txt), detail,
                                       sizeof detail), DKIM_REC_MATCH);
    snprintf(rec, sizeof rec, "v=DKIM1; k=ed25519; t=y; p=%s", pub);
    assert_int_equal(dkim_record_judge(&ki, rec, strlen(rec), detail,
                                       sizeof detail), DKIM_REC_MATCH);
    assert_non_null(strstr(detail, "testing"));
    static const struct { const char *rec; int st; const char *says; } c[] = {
        { "v=spf1 -all", DKIM_REC_NOTDKIM, "" },
        { "google-site-verification=abc", DKIM_REC_NOTDKIM, "" },
        { "v=DKIM1; k=ed25519; p=", DKIM_REC_REVOKED, "revoked" },
        { "v=DKIM1; k=rsa; p=AAAA", DKIM_REC_WRONGTYPE, "k=rsa" },
        { "v=DKIM1; k=ed25519; p=!!!!", DKIM_REC_MISMATCH, "base64" },
        { "v=DKIM1; k=ed25519", DKIM_REC_MISMATCH, "no p=" },
        { "k=ed25519; v=DKIM1; p=AAAA", DKIM_REC_MISMATCH, "first tag" },
        { "v=DKIM1; p=AAAA; p=AAAA", DKIM_REC_MISMATCH, "repeated" },
        { "v=DKIM1; k=ed25519; h=sha1; p=AAAA", DKIM_REC_MISMATCH, "sha256" },
        { "v=DKIM1; k=ed25519; s=tlsrpt; p=AAAA", DKIM_REC_MISMATCH, "email" },
        { "v=DKIM1; k=ed25519; p=AAAA", DKIM_REC_MISMATCH,
          "not an ed25519 public key" },
        { "v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          DKIM_REC_MISMATCH, "different ed25519 key" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int st = dkim_record_judge(&ki, c[i].rec, strlen(c[i].rec), detail,
                                   sizeof detail);
        if (st != c[i].st || !strstr(detail, c[i].says))
            fail_msg("record '%s': status %d (want %d), detail '%s'",
                     c[i].rec, st, c[i].st, detail);
    }
    /* a p= longer than any key: refused without overflowing */
    memcpy(rec, "v=DKIM1; k=ed25519; p=", 22);
    memset(rec + 22, 'A', sizeof rec - 23);
    rec[sizeof rec - 1] = 0;
    assert_int_equal(dkim_record_judge(&ki, rec, strlen(rec), detail,
                                       sizeof detail), DKIM_REC_MISMATCH);
    dkim_keyinfo_free(&ki);
}

/* ---------------------------------------------------------- normaliser */

static void norm_is(const char *in, const char *want)
{
    char out[DKIM_NAME_MAX + 1], why[DKIM_WHY_MAX] = "";
    int rc = dkim_domain_norm(in, strlen(in), out, sizeof out, why,
                              sizeof why);
    if (rc != 0)
        fail_msg("'%s' refused: %s", in, why);
    assert_string_equal(out, want);
}

static void norm_refused(const char *in, const char *says)
{
    char out[DKIM_NAME_MAX + 1], why[DKIM_WHY_MAX] = "";
    int rc = dkim_domain_norm(in, strlen(in), out, sizeof out, why,
                              sizeof why);
    if (rc != DKIM_E_ARG || !strstr(why, says))
        fail_msg("'%s': rc %d, why '%s' (want '%s')", in, rc, why, says);
}

static void test_domain_norm(void **state)
{
    (void)state;
    char label64[80], long_name[300];

    norm_is("ExAmple.COM", "example.com");
    norm_is("example.com.", "example.com");
    norm_is("Mail.Example.COM.", "mail.example.com");
    norm_is("b\xc3\xbc" "cher.example", "xn--bcher-kva.example");
    norm_is("B\xc3\x9c" "CHER.Example.", "xn--bcher-kva.example");
    norm_is("xn--bcher-kva.example", "xn--bcher-kva.example");
    norm_is("XN--BCHER-KVA.example", "xn--bcher-kva.example");
    norm_is("a-b.c0.test", "a-b.c0.test");

    norm_refused("", "empty domain");
    norm_refused(".", "empty domain");
    norm_refused("example..com", "empty label");
    norm_refused("example.com..", "empty label");
    norm_refused("-a.test", "starts or ends with a hyphen");
    norm_refused("a-.test", "starts or ends with a hyphen");
    norm_refused("localhost", "at least two labels");
    norm_refused("192.0.2.1", "address");
    norm_refused("a_b.test", "bad character");
    norm_refused("exa mple.test", "bad character");
    norm_refused("xn--zz.test", "IDN");
    norm_refused("a\xe2\x92\x88.test", "IDN");      /* U+2488 */
    norm_refused("b\xc3" ".test", "IDN");           /* broken UTF-8 */
    memset(label64, 'x', 64);
    memcpy(label64 + 64, ".test", 6);
    norm_refused(label64, "63");
    for (size_t i = 0; i < 260; i += 2)
        memcpy(long_name + i, "a.", 2);
    memcpy(long_name + 260, "test", 5);
    norm_refused(long_name, "253");
    /* a name longer than the caller's buffer is refused, never cut */
    char small[8], why[DKIM_WHY_MAX];
    assert_int_equal(dkim_domain_norm("example.com", 11, small, sizeof small,
                                      why, sizeof why), DKIM_E_ARG);
    /* only len octets are read */
    char out[DKIM_NAME_MAX + 1];
    assert_int_equal(dkim_domain_norm("a.test.junk!", 6, out, sizeof out,
                                      why, sizeof why), 0);
    assert_string_equal(out, "a.test");
}

static void test_selector_norm(void **state)
{
    (void)state;
    char out[DKIM_NAME_MAX + 1], why[DKIM_WHY_MAX];
    assert_int_equal(dkim_selector_norm("S2026", out, sizeof out, why,
                                        sizeof why), 0);
    assert_string_equal(out, "s2026");
    assert_int_equal(dkim_selector_norm("q1.Brand", out, sizeof out, why,
                                        sizeof why), 0);
    assert_string_equal(out, "q1.brand");
    assert_int_equal(dkim_selector_norm("1", out, sizeof out, why,
                                        sizeof why), 0);
    static const char *const bad[] = { "", "s_1", "-s", "s-", "a..b",
                                       "s/x", ".s", "s\xc3\xbc" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        assert_int_equal(dkim_selector_norm(bad[i], out, sizeof out, why,
                                            sizeof why), DKIM_E_ARG);
        assert_non_null(strstr(why, "selector"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_mode_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test(test_txt_cut),
        cmocka_unit_test(test_tags_hostile),
        cmocka_unit_test_setup_teardown(test_judge, setup, teardown),
        cmocka_unit_test(test_domain_norm),
        cmocka_unit_test(test_selector_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
