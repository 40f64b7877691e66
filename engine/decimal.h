/*
 * decimal.h - an unsigned number in decimal, written by hand.
 *
 * The event stream and the renderer write several numbers per message
 * (event fields, ids, Message-ID parts); snprintf's format parsing cost
 * more than the digits.  This is the one digit writer they share.
 */
#ifndef SLUICE_ENGINE_DECIMAL_H
#define SLUICE_ENGINE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define DECIMAL_U64_MAX 20   /* digits of UINT64_MAX */

/* v in decimal at out (room for DECIMAL_U64_MAX bytes, no NUL written);
 * its length. */
static inline size_t decimal_u64(char *out, uint64_t v)
{
    char tmp[DECIMAL_U64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

#endif
