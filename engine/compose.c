/*
 * compose.c - wire form of a message: CRLF only, dot-stuffed, terminated.
 *
 * DESCRIPTION
 *   One pass over the message with the output sized for the worst case
 *   (every byte a line ending or a leading dot doubles), so there is no
 *   growth and no second pass.  Written by hand: the transformation is a
 *   dozen lines and no packaged library offers it for SMTP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

int compose_wire(const char *msg, size_t len, struct wire *out)
{
    char *o = malloc(len * 2 + 8);
    if (!o)
        return -ENOMEM;
    size_t n = 0, size = 0;
    bool bol = true, eight = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && msg[i + 1] == '\n')
                i++;
            o[n++] = '\r';
            o[n++] = '\n';
            size += 2;
            bol = true;
            continue;
        }
        if (bol && c == '.')
            o[n++] = '.';
        if (c & 0x80)
            eight = true;
        o[n++] = (char)c;
        size++;
        bol = false;
    }
    if (!bol) {
        o[n++] = '\r';
        o[n++] = '\n';
        size += 2;
    }
    memcpy(o + n, ".\r\n", 3);
    n += 3;
    out->data = o;
    out->len = n;
    out->size = size;
    out->eightbit = eight;
    return 0;
}
