/*
 * dkim_verify_opendkim.c - verify one message with libopendkim.
 *
 * USAGE
 *   dkim_verify_opendkim KEYFILE < message
 *   KEYFILE holds lines "SELECTOR._domainkey.DOMAIN TXT-VALUE"
 *   (libopendkim's DKIM_QUERY_FILE method).  opendkim-testmsg would do the
 *   same job but only asks the system resolver, which cannot be pointed at
 *   a dnsmasq on a spare port; this driver is the same library call path
 *   with the key record read from a file.
 *
 * DIAGNOSTICS
 *   Exit 0 when the signature verifies, 1 with the reason otherwise,
 *   2 for usage or set-up errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

#define MSG_MAX (16 * 1024 * 1024)

int main(int argc, char **argv)
{
    static unsigned char buf[MSG_MAX];
    DKIM_STAT st;
    size_t len;
    int method = DKIM_QUERY_FILE;

    if (argc != 2) {
        fprintf(stderr, "usage: %s KEYFILE < message\n", argv[0]);
        return 2;
    }
    len = fread(buf, 1, sizeof(buf), stdin);
    if (len == sizeof(buf))
        return 2;
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    if (lib == NULL)
        return 2;
    if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &method,
                     sizeof(method)) != DKIM_STAT_OK ||
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[1],
                     strlen(argv[1])) != DKIM_STAT_OK) {
        dkim_close(lib);
        return 2;
    }
    DKIM *d = dkim_verify(lib, (const unsigned char *)"test", NULL, &st);
    if (d == NULL) {
        dkim_close(lib);
        return 2;
    }
    st = dkim_chunk(d, buf, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(d, NULL);
    int rc = 0;
    if (st != DKIM_STAT_OK) {
        const char *e = dkim_geterror(d);
        fprintf(stderr, "opendkim: %s (%s)\n", dkim_getresultstr(st),
                e ? e : "");
        rc = 1;
    }
    dkim_free(d);
    dkim_close(lib);
    return rc;
}
