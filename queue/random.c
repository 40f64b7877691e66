/*
 * random.c - random bytes from the kernel for the spool's secrets.
 *
 * DESCRIPTION
 *   queue_random_bytes() fills a buffer from getrandom(2), the one source
 *   of the token secret (token_secret.c) and of audit keys (audit_key.c).
 *   It blocks only until the kernel's pool is first initialised.
 *
 * ERRORS
 *   -errno from getrandom(2) other than EINTR (which is retried).
 */
#include <errno.h>
#include <sys/random.h>

#include "admin_int.h"

/* Fill buf with n random bytes from the kernel. */
int queue_random_bytes(unsigned char *buf, size_t n)
{
    while (n) {
        ssize_t got = getrandom(buf, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}
