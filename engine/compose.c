/*
 * compose.c - wire form of a message: CRLF only, dot-stuffed, terminated.
 *
 * DESCRIPTION
 *   Lines are found with memchr and copied whole, so a clean CRLF message
 *   costs little more than a memcpy; only bare CR and bare LF (both become
 *   CRLF) and leading dots (doubled) take extra work.  The buffer is sized
 *   for the worst case and shrunk to fit at the end.  Written by hand: the
 *   transformation is short and no packaged library offers it for SMTP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

/* Append one line (without its ending) and CRLF, dot-stuffing it. */
static char *put_line(char *o, const char *a, size_t n)
{
    if (n && a[0] == '.')
        *o++ = '.';
    memcpy(o, a, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* Whether the header section of msg (up to its first empty line; CR, LF
 * and CRLF end lines as on the wire) holds an 8-bit byte. */
static bool header_8bit(const char *msg, size_t len)
{
    bool line_empty = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\r' || c == '\n') {
            if (line_empty)
                return false;   /* the empty line: the body follows */
            if (c == '\r' && i + 1 < len && msg[i + 1] == '\n')
                i++;
            line_empty = true;
            continue;
        }
        if (c >= 0x80)
            return true;
        line_empty = false;
    }
    return false;
}

/* Append the wire lines of msg[0..len) at o; counts size and 8-bit. */
static char *put_text(char *o, const char *msg, size_t len, size_t *size,
                      unsigned char *acc)
{
    if (!len)
        return o;
    const char *p = msg, *end = msg + len;
    unsigned char a = 0;
    for (size_t i = 0; i < len; i++) /* vectorised by the compiler */
        a |= (unsigned char)msg[i];
    *acc |= a;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *seg_end = nl && nl > p && nl[-1] == '\r' ? nl - 1 : stop;
        /* a bare CR inside the line also ends a line */
        const char *s = p, *cr;
        while ((cr = memchr(s, '\r', (size_t)(seg_end - s)))) {
            o = put_line(o, s, (size_t)(cr - s));
            *size += (size_t)(cr - s) + 2;
            s = cr + 1;
        }
        if (s < seg_end || nl || s == p) {
            o = put_line(o, s, (size_t)(seg_end - s));
            *size += (size_t)(seg_end - s) + 2;
        }
        p = nl ? nl + 1 : end;
    }
    return o;
}

int compose_wire_signed(const char *sigs, size_t siglen, const char *msg,
                        size_t len, struct wire *out)
{
    char *buf = malloc((siglen + len) * 2 + 8);
    if (!buf)
        return -ENOMEM;
    size_t size = 0;
    unsigned char acc = 0;
    char *o = put_text(buf, sigs, siglen, &size, &acc);
    o = put_text(o, msg, len, &size, &acc);
    memcpy(o, ".\r\n", 3);
    o += 3;
    size_t n = (size_t)(o - buf);
    char *fit = realloc(buf, n);
    out->data = fit ? fit : buf;
    out->len = n;
    out->size = size;
    out->eightbit = acc & 0x80;
    out->hdr8 = out->eightbit && header_8bit(msg, len);
    return 0;
}

int compose_wire(const char *msg, size_t len, struct wire *out)
{
    return compose_wire_signed(NULL, 0, msg, len, out);
}
