/*
 * test_http_gate.c - the HTTP server's front door (engine/http_gate.c):
 * which request lines reach libmicrohttpd, and what a client on a real
 * loopback socket gets for the others (400, 414, 408, and the connection
 * closed), while a good request still gets the daemon's own answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_gate.h"

/* check_line on a string literal (its length, NULs included). */
#define LINE(s) http_gate_check_line((s), sizeof(s) - 1)

static void test_request_lines(void **state)
{
    (void)state;
    assert_int_equal(LINE("GET / HTTP/1.1\r\n"), HTTP_GATE_OK);
    assert_int_equal(LINE("POST /u/abc HTTP/1.0\n"), HTTP_GATE_OK);
    assert_int_equal(LINE("\r\n\nGET / HTTP/1.1\r\n"), HTTP_GATE_OK);
    assert_int_equal(LINE("M-SEARCH * HTTP/1.1\r\nHost"), HTTP_GATE_OK);
    assert_int_equal(LINE("GET /a?b=%20&c HTTP/2.0\r\n"), HTTP_GATE_OK);

    /* a valid beginning: wait for more */
    assert_int_equal(LINE(""), HTTP_GATE_MORE);
    assert_int_equal(LINE("\r"), HTTP_GATE_MORE);
    assert_int_equal(LINE("\r\n"), HTTP_GATE_MORE);
    assert_int_equal(LINE("GET"), HTTP_GATE_MORE);
    assert_int_equal(LINE("GET /u/abc HTTP/1."), HTTP_GATE_MORE);
    assert_int_equal(LINE("GET / HTTP/1.1\r"), HTTP_GATE_MORE);

    /* the bytes, and what libmicrohttpd would close on */
    assert_int_equal(LINE("\x00\xff\r\n\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("\x00"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GARBAGE\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE(" GET / HTTP/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET  / HTTP/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / HTTP/1.1 \r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / HTTP/1.1x\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / http/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / HTTP/11\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / HTTP/1.1\rX"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET /a\tb HTTP/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET /\x80 HTTP/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET / HTTP/1.1\x00\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("G(T / HTTP/1.1\r\n"), HTTP_GATE_BAD);
    assert_int_equal(LINE("GET /u/a"), HTTP_GATE_MORE);

    /* a whole buffer without the end of the line */
    char big[HTTP_GATE_LINE_MAX];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    assert_int_equal(http_gate_check_line(big, sizeof big), HTTP_GATE_TOO_LONG);
    assert_int_equal(http_gate_check_line(big, sizeof big - 1),
                     HTTP_GATE_MORE);
}

/* ------------------------------------------------- a gate on loopback */

static enum MHD_Result hello(void *cls, struct MHD_Connection *c,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    static char text[] = "hello\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof text - 1, text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

struct live {
    struct MHD_Daemon *d;
    struct http_gate *g;
    struct sockaddr_in sa;
};

/* A port on 127.0.0.1 that was free a moment ago. */
static void free_port(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *sa;
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    close(fd);
}

static int live_up(void **state)
{
    struct live *l = calloc(1, sizeof *l);
    l->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                            MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET, 0, NULL,
                            NULL, hello, NULL, MHD_OPTION_END);
    assert_non_null(l->d);
    char err[200];
    int rc = -1;
    for (int tries = 0; rc && tries < 20; tries++) {
        free_port(&l->sa);
        /* 300 ms for a request line: the 408 case waits that long */
        rc = http_gate_start(&l->g, (struct sockaddr *)&l->sa, sizeof l->sa,
                             l->d, 4, 300, err, sizeof err);
    }
    assert_int_equal(rc, 0);
    *state = l;
    return 0;
}

static int live_down(void **state)
{
    struct live *l = *state;
    http_gate_stop(l->g);
    MHD_stop_daemon(l->d);
    free(l);
    return 0;
}

/* Send n bytes (then end our side when half_close) and read the whole
 * answer until the server closes; returns its length. */
static size_t exchange(const struct live *l, const char *req, size_t n,
                       bool half_close, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_sec = 30 };  /* generous: never a race */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (const struct sockaddr *)&l->sa,
                             sizeof l->sa), 0);
    assert_int_equal(send(fd, req, n, MSG_NOSIGNAL), (ssize_t)n);
    if (half_close)
        shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, out + got, cap - 1 - got, 0);
        assert_true(r >= 0);  /* a timeout or a reset fails the test */
        if (r == 0)
            break;            /* closed by the server, as it must be */
        got += (size_t)r;
        assert_true(got < cap - 1);
    }
    out[got] = 0;
    close(fd);
    return got;
}

#define EXCHANGE(l, s, half, out) \
    exchange((l), (s), sizeof(s) - 1, (half), (out), sizeof(out))

static void test_gate_answers(void **state)
{
    struct live *l = *state;
    char out[4096];

    EXCHANGE(l, "\x00\xff\r\n\r\n", false, out);
    assert_true(!strncmp(out, "HTTP/1.1 400 ", 13));
    assert_non_null(strstr(out, "Connection: close\r\n"));

    EXCHANGE(l, "GARBAGE\r\n\r\n", false, out);
    assert_true(!strncmp(out, "HTTP/1.1 400 ", 13));

    /* the client ends its side in the middle of the line */
    EXCHANGE(l, "GET /u/ab", true, out);
    assert_true(!strncmp(out, "HTTP/1.1 400 ", 13));

    /* nothing more within the timeout */
    EXCHANGE(l, "GET /u/ab", false, out);
    assert_true(!strncmp(out, "HTTP/1.1 408 ", 13));

    char big[HTTP_GATE_LINE_MAX + 100];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    exchange(l, big, sizeof big, false, out, sizeof out);
    assert_true(!strncmp(out, "HTTP/1.1 414 ", 13));

    /* a good request reaches the daemon, leading empty lines and all */
    EXCHANGE(l, "\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", false, out);
    assert_true(!strncmp(out, "HTTP/1.1 200 ", 13));
    assert_non_null(strstr(out, "\r\n\r\nhello\n"));

    /* a malformed header after a good line: the daemon's own 400 */
    EXCHANGE(l, "GET /x HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", false, out);
    assert_true(!strncmp(out, "HTTP/1.1 400 ", 13));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_lines),
        cmocka_unit_test_setup_teardown(test_gate_answers, live_up,
                                        live_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
