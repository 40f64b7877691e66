/*
 * dns_msg.c - a bounded reader of DNS messages for the resolver.
 *
 * Walks the resource records of one answer (header, question skipped) and
 * decodes domain names with compression. It owns nothing: it reads the
 * buffer c-ares hands to a query callback, only while that callback runs.
 *
 * Fails closed: any length, pointer or label that does not fit the message
 * makes the call return -1, and the caller treats the answer as bad. Names
 * are accepted only when every label is letters, digits, '-' or '_'.
 */
#include <string.h>

#include "dns_int.h"

#define HEADER_LEN 12
#define MAX_POINTERS 32

/* Read a 16-bit big-endian value at off (caller checked bounds). */
static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* Read a 32-bit big-endian value (caller checked bounds). */
static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

/* Skip the encoded name at *off; -1 if it runs off the message. */
static int skip_name(const unsigned char *buf, size_t len, size_t *off)
{
    size_t o = *off;

    for (;;) {
        if (o >= len)
            return -1;
        unsigned l = buf[o];
        if ((l & 0xC0) == 0xC0) {
            if (o + 2 > len)
                return -1;
            *off = o + 2;
            return 0;
        }
        if (l & 0xC0)
            return -1; /* 0x40/0x80 label types are obsolete */
        if (l == 0) {
            *off = o + 1;
            return 0;
        }
        o += 1 + l;
    }
}

/* Check the header and step past the question section. */
int dns__msg_open(struct dns_msg *m, const unsigned char *buf, int len)
{
    memset(m, 0, sizeof(*m));
    if (!buf || len < HEADER_LEN)
        return -1;
    m->buf = buf;
    m->len = (size_t)len;
    unsigned qd = get16(buf + 4);
    m->left[1] = get16(buf + 6);
    m->left[2] = get16(buf + 8);
    m->left[3] = get16(buf + 10);
    m->off = HEADER_LEN;
    m->section = 1;
    for (unsigned i = 0; i < qd; i++) {
        if (skip_name(buf, m->len, &m->off) < 0 || m->off + 4 > m->len)
            return -1;
        m->off += 4;
    }
    return 0;
}

/* Read the next record into rr: 1 if read, 0 at the end, -1 if malformed. */
int dns__msg_next(struct dns_msg *m, struct dns_rr *rr)
{
    while (m->section <= 3 && m->left[m->section] == 0)
        m->section++;
    if (m->section > 3)
        return 0;
    if (skip_name(m->buf, m->len, &m->off) < 0 || m->off + 10 > m->len)
        return -1;
    const unsigned char *p = m->buf + m->off;
    rr->section = m->section;
    rr->type = get16(p);
    rr->cls = get16(p + 2);
    rr->ttl = get32(p + 4);
    if (rr->ttl > 0x7FFFFFFFu)
        rr->ttl = 0; /* RFC 2181 8: treat as zero */
    rr->rdlen = get16(p + 8);
    rr->rdata = m->off + 10;
    if (rr->rdata + rr->rdlen > m->len)
        return -1;
    m->off = rr->rdata + rr->rdlen;
    m->left[m->section]--;
    return 1;
}

/* Whether c may appear in a host name label we accept. */
static int name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Decode the name at off into out, lower-cased, without the trailing dot
 * (the root is ""). Returns its length, or -1 if malformed or too long. */
int dns__msg_name(const struct dns_msg *m, size_t off, char *out, size_t outsz)
{
    size_t n = 0;
    unsigned jumps = 0;

    if (outsz == 0)
        return -1;
    for (;;) {
        if (off >= m->len)
            return -1;
        unsigned l = m->buf[off];
        if ((l & 0xC0) == 0xC0) {
            if (off + 2 > m->len || ++jumps > MAX_POINTERS)
                return -1;
            size_t to = ((size_t)(l & 0x3F) << 8) | m->buf[off + 1];
            if (to >= off)
                return -1; /* pointers must go backwards: no loops */
            off = to;
            continue;
        }
        if (l & 0xC0)
            return -1;
        if (l == 0)
            break;
        if (off + 1 + l > m->len)
            return -1;
        /* room for an optional dot, the label and the final NUL */
        if (n + (n ? 1 : 0) + l + 1 > outsz ||
            n + (n ? 1 : 0) + l > DNS_NAME_MAX)
            return -1;
        if (n)
            out[n++] = '.';
        for (unsigned i = 0; i < l; i++) {
            unsigned char c = m->buf[off + 1 + i];
            if (!name_char_ok(c))
                return -1;
            out[n++] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
        }
        off += 1 + l;
    }
    out[n] = '\0';
    return (int)n;
}

/* RFC 2308 negative TTL from an SOA in the authority section: the smaller
 * of the SOA record's TTL and its MINIMUM field. Returns 1 if found. */
int dns__msg_negative_ttl(const unsigned char *buf, int len, uint32_t *ttl)
{
    struct dns_msg m;
    struct dns_rr rr;
    int rc;

    if (dns__msg_open(&m, buf, len) < 0)
        return 0;
    while ((rc = dns__msg_next(&m, &rr)) == 1) {
        if (rr.section != 2 || rr.type != DNS_T_SOA || rr.rdlen < 22)
            continue;
        uint32_t minimum = get32(m.buf + rr.rdata + rr.rdlen - 4);
        *ttl = rr.ttl < minimum ? rr.ttl : minimum;
        return 1;
    }
    return 0;
}
