/*
 * test_bounce_rules.c - the bounce rules parser and matcher
 * (engine/bounce_rules.c) and the shipped defaults.
 *
 * DESCRIPTION
 *   Errors name the source and line; the first matching rule wins; code
 *   and enhanced-code wildcards; a site file comes before the defaults; a
 *   reply no rule knows falls back on its basic code; and a sample reply
 *   of each large provider gets the category a user expects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bounce_rules.h"
#include "queue.h"
#include "rule_regex.h"

/* Parse text expecting failure; the error text. */
static void parse_fails(const char *text, const char *want)
{
    struct bounce_rules *r = NULL;
    char err[256];
    assert_int_equal(bounce_rules_parse(&r, text, "t.rules", err, sizeof err),
                     -EINVAL);
    assert_null(r);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static void test_errors(void **state)
{
    (void)state;
    parse_fails("# c\n\nbad-mailbox 550 5.1.1 *\nnonsense 550 * *\n",
                "t.rules:4: unknown category 'nonsense'");
    parse_fails("bad-mailbox\n", "t.rules:1: reply code");
    parse_fails("bad-mailbox 5a0 * *\n", "t.rules:1: reply code");
    parse_fails("bad-mailbox 550\n", "t.rules:1: enhanced code");
    parse_fails("bad-mailbox 550 5.x.1 *\n", "t.rules:1: enhanced code");
    parse_fails("bad-mailbox 550 * \n", "t.rules:1: text: want *");
    parse_fails("x\n", "t.rules:1: unknown category");
    parse_fails("\n\nbad-mailbox 550 * /user unknown\n",
                "t.rules:3: text: /REGEX/ lacks its closing slash");
    parse_fails("bad-mailbox 550 * /a(b/\n", "t.rules:1: regex:");
    parse_fails("bad-mailbox 550 * /a/q\n", "unknown regex flag 'q'");
    parse_fails("bad-mailbox 550 * //\n", "empty regex");
    char *big = malloc(BOUNCE_RULE_MAX + 40);
    assert_non_null(big);
    memset(big, 'a', BOUNCE_RULE_MAX + 20);
    memcpy(big, "other * * /", 11);
    memcpy(big + BOUNCE_RULE_MAX + 18, "/\n", 3);
    parse_fails(big, "t.rules:1: line longer than");
    free(big);

    struct bounce_rules *r;
    char err[256];
    assert_int_equal(bounce_rules_load(&r, "/nonexistent/x.rules", err,
                                       sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.rules"));
}

static void test_order_and_wildcards(void **state)
{
    (void)state;
    const char *text =
        "# site rules\n"
        "spam-related     5xx  5.7.*   /listed/\n"
        "policy-related   55x  5.7.1   *\n"
        "content-related  5*   *.6.*   *\n"
        "quota-issues     4xx  *       /FULL/c\n"
        "other            421  *       *\n"
        "bad-domain       *    5.1.10  *\n";
    struct bounce_rules *r;
    struct bounce_match m;
    char err[256];
    assert_int_equal(bounce_rules_parse(&r, text, "site.rules", err,
                                        sizeof err), 0);
    assert_int_equal(bounce_rules_count(r), 6);
    /* first match wins: rule 1 before rule 2 */
    assert_int_equal(bounce_classify(r, 550, "5.7.1", "IP LISTED at x", &m),
                     QUEUE_CAT_SPAM);
    assert_string_equal(m.source, "site.rules");
    assert_int_equal(m.line, 2);
    assert_int_equal(m.index, 1);
    assert_int_equal(bounce_classify(r, 504, "5.7.1", "go away", &m),
                     QUEUE_CAT_POLICY);  /* not 55x: the default *.7.* */
    assert_string_equal(m.source, "default");
    assert_int_equal(bounce_classify(r, 551, "5.7.1", "go away", &m),
                     QUEUE_CAT_POLICY);
    assert_string_equal(m.source, "site.rules");
    assert_int_equal(m.line, 3);
    /* '*' in the code and in the enhanced code */
    assert_int_equal(bounce_classify(r, 500, "5.6.0", "bad MIME", &m),
                     QUEUE_CAT_CONTENT);
    assert_int_equal(m.line, 4);
    /* an enhanced pattern needs an enhanced code */
    assert_int_equal(bounce_classify(r, 421, NULL, "bad MIME", &m),
                     QUEUE_CAT_OTHER);
    assert_int_equal(m.line, 6);
    /* case-sensitive flag */
    assert_int_equal(bounce_classify(r, 452, NULL, "mailbox FULL", &m),
                     QUEUE_CAT_QUOTA);
    assert_string_equal(m.source, "site.rules");
    assert_int_equal(bounce_classify(r, 452, "4.2.2", "mailbox full", &m),
                     QUEUE_CAT_QUOTA);
    assert_string_equal(m.source, "default");
    /* "5.1.1" does not match "5.1.10" and the other way round */
    assert_int_equal(bounce_classify(r, 556, "5.1.10", "null MX", &m),
                     QUEUE_CAT_BAD_DOMAIN);
    assert_int_equal(m.line, 7);
    assert_int_equal(bounce_classify(NULL, 550, "5.1.1", "", &m),
                     QUEUE_CAT_BAD_MAILBOX);
    assert_int_equal(bounce_classify(NULL, 556, "5.1.10", "", &m),
                     QUEUE_CAT_BAD_DOMAIN);
    /* nothing matches: the basic code */
    assert_int_equal(bounce_classify(NULL, 421, NULL, "try later", &m),
                     QUEUE_CAT_OTHER);
    assert_string_equal(m.source, "fallback");
    assert_int_equal(bounce_classify(NULL, 0, NULL, "connect failed", &m),
                     QUEUE_CAT_NO_ANSWER);
    bounce_rules_free(r);
    bounce_rules_free(NULL);
}

/* Provider samples: the wording of their documented replies. */
static const struct sample {
    int code;
    const char *enh, *text, *want;
} samples[] = {
    /* Gmail */
    { 550, "5.1.1", "The email account that you tried to reach does not "
      "exist. Please try double-checking the recipient's email address for "
      "typos or unnecessary spaces.", "bad-mailbox" },
    { 550, "5.2.1", "The email account that you tried to reach is disabled.",
      "inactive-mailbox" },
    { 452, "4.2.2", "The email account that you tried to reach is over "
      "quota. Please direct the recipient to", "quota-issues" },
    { 550, "5.7.1", "Our system has detected an unusual rate of unsolicited "
      "mail originating from your IP address.", "spam-related" },
    { 550, "5.7.26", "This mail has been blocked because the sender is "
      "unauthenticated.", "policy-related" },
    { 550, "5.7.25", "The IP address sending this message does not have a "
      "PTR record setup.", "policy-related" },
    { 552, "5.7.0", "This message was blocked because its content presents "
      "a potential security issue.", "content-related" },
    /* Outlook.com / Hotmail / Microsoft 365 */
    { 550, "5.5.0", "Requested action not taken: mailbox unavailable "
      "(S2017062302)", "bad-mailbox" },
    { 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by "
      "SMTP address lookup", "bad-mailbox" },
    { 550, "5.4.1", "Recipient address rejected: Access denied. "
      "AS(201806281)", "bad-mailbox" },
    { 550, "5.7.1", "Unfortunately, messages from [192.0.2.1] weren't sent. "
      "Please contact your Internet service provider since part of their "
      "network is on our block list (S3150).", "spam-related" },
    { 451, "4.7.500", "Server busy. Please try again later from "
      "[192.0.2.1]. (S77719)", "policy-related" },
    { 554, "5.2.2", "mailbox full; STOREDRV.Deliver.Exception:"
      "QuotaExceededException", "quota-issues" },
    /* Yahoo / AOL */
    { 554, NULL, "delivery error: dd This user doesn't have a yahoo.com "
      "account (u@yahoo.com) [0]", "bad-mailbox" },
    { 554, NULL, "delivery error: dd Sorry your message to u@yahoo.com "
      "cannot be delivered. This mailbox is disabled (554.30).",
      "inactive-mailbox" },
    { 421, "4.7.0", "[TSS04] Messages from 192.0.2.1 temporarily deferred "
      "due to unexpected volume or user complaints", "spam-related" },
    { 553, "5.7.1", "[BL21] Connections will not be accepted from "
      "192.0.2.1, because the ip is in Spamhaus's list", "spam-related" },
    { 554, NULL, "Message not allowed - [PH01] Email not accepted for policy "
      "reasons.", "policy-related" },
    { 552, NULL, "1 Requested mail action aborted, mailbox not found",
      "bad-mailbox" },
    /* Apple iCloud */
    { 550, "5.1.1", "<u@icloud.com>: user does not exist", "bad-mailbox" },
    { 554, "5.7.1", "[CS01] Message rejected due to local policy. Please "
      "visit https://support.apple.com/en-us/HT204137", "policy-related" },
    { 552, "5.2.2", "<u@icloud.com>: user is over quota", "quota-issues" },
    /* Comcast */
    { 550, "5.1.1", "<u@comcast.net> Not our Customer", "bad-mailbox" },
    { 554, NULL, "resimta-h1p.comcast.net resimta comcast 192.0.2.1 Comcast "
      "block for spam. Please see http://postmaster.comcast.net/"
      "smtp-error-codes.php#BL000000", "spam-related" },
    { 421, NULL, "192.0.2.1 comcast RL000001 Too many sessions from your "
      "IP", "policy-related" },
    /* GMX / web.de */
    { 554, NULL, "-gmx.net (mxgmx001) Nemesis ESMTP Service not available "
      "No SMTP service IP address is black listed.", "spam-related" },
    { 550, NULL, "Requested action not taken: mailbox unavailable",
      "bad-mailbox" },
    { 554, NULL, "Transaction failed Reject due to policy restrictions.",
      "policy-related" },
    /* Orange */
    { 550, "5.1.1", "<u@orange.fr>: Adresse d au moins un destinataire "
      "invalide. Invalid recipient. OFR_416", "bad-mailbox" },
    { 552, NULL, "Boite du destinataire pleine. Recipient mailbox full. "
      "OFR_417", "quota-issues" },
    /* generic RFC 3463 */
    { 550, "5.1.2", "domain does not exist", "bad-domain" },
    { 556, "5.1.10", "recipient domain has a null MX", "bad-domain" },
    { 552, "5.3.4", "message too big", "content-related" },
    { 554, "5.4.6", "routing loop detected", "routing-errors" },
    { 0, "4.4.7", "expired", "message-expired" },
    { 0, "4.4.3", "DNS lookup failed", "no-answer-from-host" },
    { 501, "5.5.2", "syntax error", "protocol-errors" },
    { 554, "5.7.1", "relay access denied", "policy-related" },
    { 554, "5.7.1", "message rejected as spam", "spam-related" },
    { 450, "4.2.1", "mailbox temporarily disabled", "inactive-mailbox" },
};

static void test_provider_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const struct sample *s = &samples[i];
        struct bounce_match m;
        int cat = bounce_classify(NULL, s->code, s->enh, s->text, &m);
        if (strcmp(queue_category_name(cat), s->want))
            fail_msg("%d %s %s: got %s (%s #%u), want %s", s->code,
                     s->enh ? s->enh : "-", s->text, queue_category_name(cat),
                     m.source, m.index, s->want);
    }
}

/* The readable file is the compiled-in text. */
static void test_default_file(void **state)
{
    (void)state;
    const char *path = getenv("SLUICE_BOUNCE_DEFAULT");
    if (!path)
        fail_msg("SLUICE_BOUNCE_DEFAULT is not set (tests/engine/"
                 "CMakeLists.txt sets it)");
    struct bounce_rules *r;
    char err[256];
    assert_int_equal(bounce_rules_load(&r, path, err, sizeof err), 0);
    assert_int_equal(bounce_rules_count(r),
                     bounce_rules_count(bounce_rules_default()));
    assert_true(bounce_rules_count(r) > 50);
    bounce_rules_free(r);
}

/* A regex that would expand past RULE_REGEX_COST is refused before
 * regcomp() spells it out (fuzz_config: "a+++...+" took gigabytes). */
static void test_regex_size(void **state)
{
    (void)state;
    parse_fails("other * * /a+++++++++++++/\n", "t.rules:1: regex: too large");
    parse_fails("other * * /((a{1,20}){1,20}){1,20}/\n", "too large");
    parse_fails("other * * /x{1,4097}/\n", "too large");
    parse_fails("other * * /(x|y){2049}/\n", "too large");
    parse_fails("other * * /((((((((((((((((((((((((((((((((((a))))))))))))))"
                "))))))))))))))))))))/\n", "nested more than 32");
    /* at the cap, and the usual shapes, still compile and match */
    struct bounce_rules *r = NULL;
    char err[256];
    assert_int_equal(bounce_rules_parse(&r, "bad-mailbox * * /(user|mailbox)"
                                        " (unknown|not found)|[[:alpha:]]{1,"
                                        "64}@[a-z.]+ rejected/\n"
                                        "other * * /a++++++++++++/\n"
                                        "quota-issues * * /x{1,4096}/\n",
                                        "t.rules", err, sizeof err), 0);
    struct bounce_match m;
    bounce_classify(r, 550, "5.1.1", "Mailbox not found", &m);
    assert_int_equal(m.category, bounce_category_parse("bad-mailbox"));
    bounce_rules_free(r);
    regex_t re;
    assert_int_equal(rule_regex_compile(&re, "^a(b|c){2,3}$", REG_EXTENDED,
                                        err, sizeof err), 0);
    assert_int_equal(regexec(&re, "abcb", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "ab", 0, NULL, 0), 0);
    regfree(&re);
    assert_int_equal(rule_regex_compile(&re, "a(", REG_EXTENDED, err,
                                        sizeof err), -1);
    assert_true(err[0] != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_order_and_wildcards),
        cmocka_unit_test(test_provider_samples),
        cmocka_unit_test(test_default_file),
        cmocka_unit_test(test_regex_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
