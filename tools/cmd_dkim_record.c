/*
 * cmd_dkim_record.c - the command-line ends of the key store: names
 * checked with their reason printed, DNS records printed, and the exit
 * code of a key that would not load.  Used by `sluice dkim` (cmd_dkim.c,
 * cmd_dkim_check.c) and `sluice domain` (cmd_domain.c).
 *
 * DESCRIPTION
 *   The rules themselves are dkim/'s (dkim_store.h): the domain normaliser,
 *   the selector rule, the cut of a record into character-strings of at
 *   most 255 octets.  Here they get their words and their sysexits.
 *
 * DIAGNOSTICS
 *   Messages on stderr, "PREFIX: invalid domain 'X': reason"; the exit code
 *   of a key is tool_exit_for()'s (tool_exit.c): 66 no such file, 77 not
 *   readable, 71 out of memory, 78 a key file group or others may read, or
 *   one that is no key, 74 another I/O error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dkim_sign.h"
#include "tool.h"
#include "tool_dkim.h"

int tool_dkim_domain(const char *prefix, const char *in, char *out,
                     size_t cap)
{
    char why[DKIM_WHY_MAX];
    if (dkim_domain_norm(in, strlen(in), out, cap, why, sizeof why) == 0)
        return 0;
    fprintf(stderr, "%s: invalid domain '%.80s': %s\n", prefix, in, why);
    return -1;
}

int tool_dkim_selector(const char *prefix, const char *in, char *out,
                       size_t cap)
{
    char why[DKIM_WHY_MAX];
    if (dkim_selector_norm(in, out, cap, why, sizeof why) == 0)
        return 0;
    fprintf(stderr, "%s: invalid selector '%.80s': %s\n", prefix, in, why);
    return -1;
}

void tool_dkim_print_record(const char *name, const char *txt,
                            const char *note)
{
    size_t off[DKIM_STRINGS_MAX], len[DKIM_STRINGS_MAX];
    int k = dkim_txt_cut(txt, off, len, DKIM_STRINGS_MAX);
    printf("%s. IN TXT (", name);
    for (int i = 0; i < k; i++)
        printf(" \"%.*s\"", (int)len[i], txt + off[i]);
    printf(" )%s%s\n", note ? "   ; " : "", note ? note : "");
}

json_t *tool_dkim_record_strings(const char *txt)
{
    size_t off[DKIM_STRINGS_MAX], len[DKIM_STRINGS_MAX];
    int k = dkim_txt_cut(txt, off, len, DKIM_STRINGS_MAX);
    json_t *a = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(a, json_stringn(txt + off[i], len[i]));
    return a;
}

int tool_dkim_key_exit(const char *prefix, int rc, const char *err)
{
    fprintf(stderr, "%s: %s\n", prefix, err);
    return tool_exit_for(rc);
}

int tool_dkim_warn_odd(void *arg, const char *path, const char *why)
{
    (void)arg;
    fprintf(stderr, "sluice dkim: warning: ignoring %s: %s\n", path, why);
    return 0;
}
