/*
 * login_state.c - test helper for accounts_cli.py: the login state of a
 * user (failed logins, lock-out, last TOTP step), and time passing for it.
 *
 * DESCRIPTION
 *   login-state SPOOL USER            prints the state as one JSON line:
 *       {"failures":N,"fail_since":T,"locked_until":T,"lockouts":N,
 *        "totp_step":S}
 *   login-state SPOOL USER --age SEC  first moves the failure window and
 *       the lock-out SEC seconds into the past through the library
 *       (queue_user_login_set), as if that much time had gone by: a test
 *       sees a lock-out end without sleeping through it.  A negative SEC
 *       moves them into the future (a lock-out that outlasts a slow test
 *       machine).  The TOTP step never moves back (the library keeps it).
 *   Exit 1 with a message when the spool or user is missing, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_admin.h"

int main(int argc, char **argv)
{
    struct queue *q;
    struct queue_options o = { 0 };
    struct queue_user u;
    long long age = 0;
    int err;
    if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--age"))) {
        fprintf(stderr, "usage: login-state SPOOL USER [--age SECONDS]\n");
        return 2;
    }
    if (argc == 5) {
        char *end;
        age = strtoll(argv[4], &end, 10);
        if (*end || !age) {
            fprintf(stderr, "login-state: --age takes seconds, not 0\n");
            return 2;
        }
    }
    if ((err = queue_open(&q, argv[1], &o))) {
        fprintf(stderr, "login-state: %s: %s\n", argv[1],
                queue_strerror(err));
        return 1;
    }
    if ((err = queue_user_find(q, argv[2], &u))) {
        fprintf(stderr, "login-state: %s: %s\n", argv[2],
                queue_strerror(err));
        queue_close(q);
        return 1;
    }
    if (age) {
        static const struct queue_actor test = { "(test)", "login-state",
                                                 QUEUE_ROLE_NONE, 0 };
        struct queue_login l = u.login;
        if (l.fail_since)
            l.fail_since -= age;
        if (l.locked_until)
            l.locked_until -= age;
        if ((err = queue_user_login_set(q, u.id, &l, &test)) ||
            (err = queue_user_find(q, argv[2], &u))) {
            fprintf(stderr, "login-state: %s\n", queue_strerror(err));
            queue_close(q);
            return 1;
        }
    }
    printf("{\"failures\":%u,\"fail_since\":%lld,\"locked_until\":%lld,"
           "\"lockouts\":%u,\"totp_step\":%lld}\n", u.login.failures,
           (long long)u.login.fail_since, (long long)u.login.locked_until,
           u.login.lockouts, (long long)u.login.totp_step);
    queue_close(q);
    return 0;
}
