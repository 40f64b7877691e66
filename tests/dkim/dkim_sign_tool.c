/*
 * dkim_sign_tool.c - test driver for dkim/: make keys, sign files.
 *
 * USAGE
 *   dkim_sign_tool keygen rsa|ed25519 BITS KEYFILE   prints the TXT value
 *   dkim_sign_tool sign KEYFILE DOMAIN SELECTOR MSGFILE
 *       writes the DKIM-Signature field and then the message to stdout
 *
 * DIAGNOSTICS
 *   Exit 0 on success, 1 with the reason on stderr, 2 for bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim_sign.h"

#define MSG_MAX (16 * 1024 * 1024)

/* Read a whole file of at most MSG_MAX bytes into a malloc'ed buffer. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(MSG_MAX);
    size_t n;

    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return NULL;
    }
    n = fread(buf, 1, MSG_MAX, f);
    if (ferror(f) || n == MSG_MAX) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "keygen") == 0) {
        char txt[2048];
        char *end;
        long bits = strtol(argv[3], &end, 10);
        if (*end != '\0' || bits < 0 || bits > 65536)
            return 2;
        int rc = dkim_keygen(argv[2], (int)bits, argv[4], txt, sizeof(txt));
        if (rc != 0) {
            fprintf(stderr, "keygen: %s\n", dkim_strerror(rc));
            return 1;
        }
        printf("%s\n", txt);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "sign") == 0) {
        struct dkim_key *k = NULL;
        char err[512], *hdr = NULL, *msg;
        size_t len = 0;
        int rc = dkim_key_load(argv[2], &k, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "load: %s\n", err);
            return 1;
        }
        msg = read_file(argv[5], &len);
        if (msg == NULL) {
            fprintf(stderr, "%s: cannot read\n", argv[5]);
            dkim_key_free(k);
            return 1;
        }
        rc = dkim_sign(k, argv[3], argv[4], msg, len, &hdr);
        if (rc != 0) {
            fprintf(stderr, "sign: %s\n", dkim_strerror(rc));
            free(msg);
            dkim_key_free(k);
            return 1;
        }
        fwrite(hdr, 1, strlen(hdr), stdout);
        fwrite(msg, 1, len, stdout);
        free(hdr);
        free(msg);
        dkim_key_free(k);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: %s keygen rsa|ed25519 BITS KEYFILE\n"
                    "       %s sign KEYFILE DOMAIN SELECTOR MSGFILE\n",
            argv[0], argv[0]);
    return 2;
}
