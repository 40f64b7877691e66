/*
 * classify.c - built-in bounce categories.
 *
 * DESCRIPTION
 *   Table-driven: the first rule whose enhanced-code prefix and text word
 *   (case-insensitive substring) both match gives the category.  Rules with
 *   a text word come before the plain code rules, so "550 5.7.1 spam" is
 *   spam-related and "550 5.7.1 relay denied" policy-related.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "classify.h"
#include "queue.h"

struct rule {
    const char *enhanced;  /* prefix of the enhanced code, or NULL */
    const char *word;      /* word in the text, or NULL */
    int category;
};

static const struct rule rules[] = {
    { "5.1.10", NULL, QUEUE_CAT_BAD_DOMAIN },
    { "5.1.2", NULL, QUEUE_CAT_BAD_DOMAIN },
    { "5.4.4", NULL, QUEUE_CAT_ROUTING },
    { NULL, "spam", QUEUE_CAT_SPAM },
    { NULL, "blocklist", QUEUE_CAT_SPAM },
    { NULL, "blacklist", QUEUE_CAT_SPAM },
    { NULL, "spamhaus", QUEUE_CAT_SPAM },
    { NULL, "mailbox full", QUEUE_CAT_QUOTA },
    { NULL, "quota", QUEUE_CAT_QUOTA },
    { NULL, "over quota", QUEUE_CAT_QUOTA },
    { NULL, "inactive", QUEUE_CAT_INACTIVE_MAILBOX },
    { NULL, "disabled", QUEUE_CAT_INACTIVE_MAILBOX },
    { NULL, "user unknown", QUEUE_CAT_BAD_MAILBOX },
    { NULL, "no such user", QUEUE_CAT_BAD_MAILBOX },
    { NULL, "does not exist", QUEUE_CAT_BAD_MAILBOX },
    { "5.1.10", NULL, QUEUE_CAT_BAD_DOMAIN },
    { "5.1.1", NULL, QUEUE_CAT_BAD_MAILBOX },
    { "5.1.2", NULL, QUEUE_CAT_BAD_DOMAIN },
    { "5.1.6", NULL, QUEUE_CAT_INACTIVE_MAILBOX },
    { "5.2.1", NULL, QUEUE_CAT_INACTIVE_MAILBOX },
    { "5.2.2", NULL, QUEUE_CAT_QUOTA },
    { "4.2.2", NULL, QUEUE_CAT_QUOTA },
    { "5.3.4", NULL, QUEUE_CAT_CONTENT },
    { "5.4.4", NULL, QUEUE_CAT_ROUTING },
    { "5.4.", NULL, QUEUE_CAT_ROUTING },
    { "4.4.7", NULL, QUEUE_CAT_EXPIRED },
    { "4.4.", NULL, QUEUE_CAT_NO_ANSWER },
    { "5.5.", NULL, QUEUE_CAT_PROTOCOL },
    { "4.5.", NULL, QUEUE_CAT_PROTOCOL },
    { "5.6.", NULL, QUEUE_CAT_CONTENT },
    { "5.7.", NULL, QUEUE_CAT_POLICY },
    { "4.7.", NULL, QUEUE_CAT_POLICY },
};

/* Case-insensitive substring search. */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; *p; p++)
        if (!strncasecmp(p, word, wl))
            return 1;
    return 0;
}

int classify_reply(int code, const char *enhanced, const char *text)
{
    const char *e = enhanced ? enhanced : "";
    const char *t = text ? text : "";
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const struct rule *r = &rules[i];
        if (r->enhanced && strncmp(e, r->enhanced, strlen(r->enhanced)))
            continue;
        if (r->enhanced && strlen(r->enhanced) == 5 &&
            r->enhanced[4] != '.' && strlen(e) != 5)
            continue; /* "5.1.1" must not match "5.1.10" */
        if (r->word && !has_word(t, r->word))
            continue;
        return r->category;
    }
    if (code == 0)
        return QUEUE_CAT_NO_ANSWER;
    if (code >= 500 && code < 600)
        return code == 550 || code == 553 ? QUEUE_CAT_BAD_MAILBOX
                                          : QUEUE_CAT_OTHER;
    return QUEUE_CAT_OTHER;
}
