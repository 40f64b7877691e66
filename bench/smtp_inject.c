/*
 * smtp_inject.c - smtp-inject, the injector that submits the benchmark
 * workload into Postfix (or any SMTP server) over SMTP.
 *
 * usage: smtp-inject --connect HOST:PORT -n N --sessions S --domains D
 *                    --size BYTES [--from ADDR] [--suffix TLD] [--json]
 *
 * Hand-written because no packaged tool does this: Postfix's smtp-source
 * does not pipeline, sends every message to one recipient domain and gives
 * no message its own Date and Message-ID, and swaks sends one message per
 * process.  The model is bench/sink/sink_blast.c.
 *
 * Workload: message i (0..N-1) goes to the single recipient
 * user<i>@d<i % D>.<TLD> from ADDR (default news@sender.bench).  It is an
 * RFC 5322 message with CRLF lines (From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type) and a us-ascii body of lines of at most 78
 * characters; none starts with a dot.  Every message is BYTES bytes
 * (the final dot excluded) unless BYTES is smaller than the header.
 *
 * Sessions: the N messages are cut into S contiguous blocks, one per
 * thread.  Each thread has one blocking socket: greeting, EHLO, then MAIL,
 * RCPT and DATA together, and after each 354 the content, the final dot and
 * the next MAIL/RCPT/DATA in one write (RFC 2920 pipelining, one round trip
 * per message), then QUIT.  The server is assumed to offer PIPELINING.
 *
 * Failures: a message is accepted only on 250 after its final dot.  A
 * 4xx/5xx to its MAIL, RCPT or DATA fails it (counted, not retried), the
 * replies stay in step, and the next envelope starts with RSET to end the
 * open transaction.  On 421, a broken connection, a reply that is not
 * SMTP, a reply line over 64 KiB or a 300 s silence, the session
 * reconnects (at most 10 times, 20 ms to 1 s apart) and goes on: the
 * message whose final dot was sent counts as failed, a message whose
 * envelope only was sent is sent again.  When the reconnects run out, the
 * rest of the session's messages count as failed.
 *
 * Output: one line to stderr (accepted, failed, seconds, msg/s); with
 * --json also one JSON object line to stdout.  "seconds" runs from before
 * the first connection to after the last session ended.
 *
 * EXIT STATUS
 *   0 all accepted, 1 some failed, 64 usage, 69 no connection was made.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define INJ_EXIT_OK 0
#define INJ_EXIT_FAILED 1
#define INJ_EXIT_USAGE 64
#define INJ_EXIT_UNAVAILABLE 69

#define INJ_LINE_MAX (64 * 1024)      /* longest reply line, LF included */
#define INJ_REPLY_LINES_MAX 1000      /* lines in one multi-line reply */
#define INJ_RECONNECTS_MAX 10         /* per session */
#define INJ_BACKOFF_FIRST_MS 20       /* doubles on each reconnect */
#define INJ_BACKOFF_MAX_MS 1000
#define INJ_CONNECT_TIMEOUT_S 30
#define INJ_IO_TIMEOUT_S 300          /* waiting for one reply or write */
#define INJ_HOST_MAX 256
#define INJ_PORT_MAX 8
#define INJ_ADDR_MAX 256              /* --from, and each recipient */
#define INJ_SUFFIX_MAX 63
#define INJ_HEADER_MAX 1024           /* header block plus first body line */
#define INJ_ENVELOPE_MAX (2 * INJ_ADDR_MAX + 64)
#define INJ_TEXT_MAX 78               /* body line, CRLF excluded */
#define INJ_SIZE_MAX (64 * 1024 * 1024)
#define INJ_SESSIONS_MAX 10000
#define INJ_NOTE_MAX 128              /* last reply or error, for messages */

/* What the command line sets, plus the run's Message-ID parts. */
struct inject_config {
    char host[INJ_HOST_MAX];
    char port[INJ_PORT_MAX];
    uint64_t messages, sessions, domains, size;
    const char *from;            /* points into argv */
    const char *suffix;          /* points into argv */
    bool json;
    long pid;
    long long run_time;          /* epoch seconds at start */
};

/* One session (thread) and what it counted. */
struct inject_session {
    const struct inject_config *cfg;
    const struct addrinfo *addrs;   /* owned by main */
    unsigned id;
    uint64_t first, end;            /* its messages: [first, end) */
    uint64_t accepted, failed, connects, reconnects;
    long long first_connect_ms;     /* -1: never connected */
    long long last_accept_ms;       /* -1: nothing accepted */
    pthread_t tid;
    bool started;
};

/* One connection: the socket and the unread reply bytes buf[off..have). */
struct inject_conn {
    int fd;
    size_t off, have;
    char note[INJ_NOTE_MAX];        /* last reply line or error */
    char buf[INJ_LINE_MAX];
};

/* Body text; it has no '.', so no line can start with a dot. */
static const char inj_pool[] =
    "Dear reader, here is the news of the week in brief: the harbour "
    "opened its new pier, the library extends its hours on Thursdays, "
    "the choir seeks two tenors, and the market moves to the square "
    "while the old hall is repaired; our garden column returns with "
    "notes on tomatoes, beans and late roses, and the letters page "
    "asks whether the bridge should be painted green or blue; thank "
    "you for reading, and see you next week with more stories, dates "
    "and recipes from the neighbourhood ";

/* Milliseconds since the Unix epoch. */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep for ms milliseconds. */
static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000,
                           .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Keep a short copy of a reply line or error text for diagnostics. */
static void conn_note(struct inject_conn *c, const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len >= sizeof(c->note))
        len = sizeof(c->note) - 1;
    memcpy(c->note, text, len);
    c->note[len] = '\0';
}

/* Close the connection, if open; unread replies are dropped. */
static void conn_close(struct inject_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->off = c->have = 0;
}

/* Read one reply (every line of a multi-line one) and give its code;
 * -1 when the connection broke or the reply is not SMTP. */
static int conn_read_reply(struct inject_conn *c, int *code)
{
    for (int lines = 0; lines < INJ_REPLY_LINES_MAX; lines++) {
        char *lf, *line;

        while ((lf = memchr(c->buf + c->off, '\n', c->have - c->off)) ==
               NULL) {
            if (c->off > 0) {
                memmove(c->buf, c->buf + c->off, c->have - c->off);
                c->have -= c->off;
                c->off = 0;
            }
            if (c->have == sizeof(c->buf)) {
                conn_note(c, "reply line over 64 KiB", 22);
                return -1;
            }
            ssize_t r = recv(c->fd, c->buf + c->have,
                             sizeof(c->buf) - c->have, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                const char *why = r == 0 ? "connection closed"
                                         : strerror(errno);
                conn_note(c, why, strlen(why));
                return -1;
            }
            c->have += (size_t)r;
        }
        line = c->buf + c->off;
        size_t len = (size_t)(lf - line) + 1;
        c->off += len;
        conn_note(c, line, len);
        if (len < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
            line[1] > '9' || line[2] < '0' || line[2] > '9' ||
            (line[3] != ' ' && line[3] != '-' && line[3] != '\r' &&
             line[3] != '\n'))
            return -1;
        if (line[3] != '-') {
            *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
                    (line[2] - '0');
            return 0;
        }
    }
    conn_note(c, "reply with too many lines", 25);
    return -1;
}

/* Write all n bytes, or fail. */
static int conn_send(struct inject_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            const char *why = w == 0 ? "short write" : strerror(errno);
            conn_note(c, why, strlen(why));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Set both socket timeouts to secs seconds. */
static void set_timeouts(int fd, long secs)
{
    struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connect, read the greeting and say EHLO; 0 when ready for MAIL. */
static int conn_open(struct inject_session *s, struct inject_conn *c)
{
    static const char ehlo[] = "EHLO inject.bench\r\n";
    int one = 1, code = 0, err = 0;

    c->off = c->have = 0;
    for (const struct addrinfo *ai = s->addrs; ai != NULL; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (c->fd < 0) {
            err = errno;
            continue;
        }
        set_timeouts(c->fd, INJ_CONNECT_TIMEOUT_S);
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        conn_close(c);
    }
    if (c->fd < 0) {
        const char *why = strerror(err);
        conn_note(c, why, strlen(why));
        return -1;
    }
    s->connects++;
    if (s->first_connect_ms < 0)
        s->first_connect_ms = now_ms();
    set_timeouts(c->fd, INJ_IO_TIMEOUT_S);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (conn_read_reply(c, &code) != 0 || code != 220 ||
        conn_send(c, ehlo, sizeof(ehlo) - 1) != 0 ||
        conn_read_reply(c, &code) != 0 || code != 250)
        return -1;
    return 0;
}

/* Write the recipient of message i: user<i>@d<i % D>.<suffix>. */
static int make_rcpt(const struct inject_config *cfg, uint64_t i, char *out,
                     size_t cap)
{
    int n = snprintf(out, cap, "user%llu@d%llu.%s", (unsigned long long)i,
                     (unsigned long long)(i % cfg->domains), cfg->suffix);

    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Write MAIL, RCPT and DATA for message i, after RSET when rset is set;
 * returns the length. */
static size_t make_envelope(const struct inject_config *cfg, uint64_t i,
                            bool rset, char *out, size_t cap)
{
    char rcpt[INJ_ADDR_MAX];
    int n;

    if (make_rcpt(cfg, i, rcpt, sizeof(rcpt)) < 0)
        return 0;
    n = snprintf(out, cap, "%sMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n",
                 rset ? "RSET\r\n" : "", cfg->from, rcpt);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Write message i (header, blank line, body; no final dot) into out, which
 * holds at least INJ_HEADER_MAX + size bytes; returns the length. */
static size_t make_message(const struct inject_config *cfg, uint64_t i,
                           char *out, size_t cap)
{
    char rcpt[INJ_ADDR_MAX], date[64];
    time_t now = time(NULL);
    struct tm tm;
    size_t off, remaining, pos;
    int n;

    if (make_rcpt(cfg, i, rcpt, sizeof(rcpt)) < 0 ||
        gmtime_r(&now, &tm) == NULL ||
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) ==
            0)
        return 0;
    n = snprintf(out, cap < INJ_HEADER_MAX ? cap : INJ_HEADER_MAX,
                 "From: \"Bench\" <%s>\r\n"
                 "To: <%s>\r\n"
                 "Subject: Weekly letter %llu\r\n"
                 "Date: %s\r\n"
                 "Message-ID: <%llu.%ld.%lld@inject.bench>\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=us-ascii\r\n"
                 "\r\n"
                 "This is weekly letter number %llu\r\n",
                 cfg->from, rcpt, (unsigned long long)i, date,
                 (unsigned long long)i, cfg->pid, cfg->run_time,
                 (unsigned long long)i);
    if (n < 0 || (size_t)n >= INJ_HEADER_MAX || (size_t)n >= cap)
        return 0;
    off = (size_t)n;
    remaining = cfg->size > off ? cfg->size - off : 0;
    pos = (size_t)((i * 37) % (sizeof(inj_pool) - 1));
    while (remaining > 0) {
        /* Full lines, but never leave 1 or 2 bytes for a last line. */
        size_t line = INJ_TEXT_MAX + 2;
        if (remaining <= line)
            line = remaining < 3 ? 3 : remaining;
        else if (remaining - line < 3)
            line = remaining - 3;
        if (off + line > cap)
            return 0;
        for (size_t k = 0, part; k < line - 2; k += part) {
            part = sizeof(inj_pool) - 1 - pos;
            if (part > line - 2 - k)
                part = line - 2 - k;
            memcpy(out + off + k, inj_pool + pos, part);
            pos = (pos + part) % (sizeof(inj_pool) - 1);
        }
        memcpy(out + off + line - 2, "\r\n", 2);
        off += line;
        remaining -= line < remaining ? line : remaining;
        pos = (pos + 11) % (sizeof(inj_pool) - 1);
    }
    return off;
}

/* Wait before reconnect number k (1-based): 20 ms doubling up to 1 s. */
static void backoff(unsigned k)
{
    long ms = INJ_BACKOFF_FIRST_MS;

    while (--k > 0 && ms < INJ_BACKOFF_MAX_MS)
        ms *= 2;
    sleep_ms(ms < INJ_BACKOFF_MAX_MS ? ms : INJ_BACKOFF_MAX_MS);
}

/* Send this session's messages, reconnecting when the server goes away. */
static void session_send(struct inject_session *s, struct inject_conn *c,
                         char *out, size_t cap)
{
    const struct inject_config *cfg = s->cfg;
    uint64_t i = s->first;
    unsigned attempts = 0;
    bool env_sent = false;    /* the envelope of i went out with the dot */
    bool rset = false;        /* a failed transaction is still open */

    while (i < s->end) {
        int mail = 0, rcpt = 0, data = 0, dot = 0;
        size_t n;

        if (c->fd < 0) {
            if (attempts > INJ_RECONNECTS_MAX)
                break;
            if (attempts > 0) {
                s->reconnects++;
                backoff(attempts);
            }
            attempts++;
            env_sent = false;
            rset = false;
            if (conn_open(s, c) != 0) {
                conn_close(c);
                continue;
            }
        }
        if (!env_sent) {
            n = make_envelope(cfg, i, rset, out, cap);
            if (n == 0 || conn_send(c, out, n) != 0 ||
                (rset && (conn_read_reply(c, &mail) != 0 || mail == 421))) {
                conn_close(c);
                continue;
            }
            rset = false;
        }
        env_sent = false;
        if (conn_read_reply(c, &mail) != 0 || conn_read_reply(c, &rcpt) != 0 ||
            conn_read_reply(c, &data) != 0 || mail == 421 || rcpt == 421 ||
            data == 421) {
            conn_close(c);    /* nothing committed: i is sent again */
            continue;
        }
        if (mail / 100 != 2 || rcpt / 100 != 2 || data != 354) {
            s->failed++;
            i++;
            rset = true;
            /* A server that says 354 with no recipient gets an empty
             * message, so that the replies stay in step. */
            if (data == 354 && (conn_send(c, ".\r\n", 3) != 0 ||
                                conn_read_reply(c, &dot) != 0 || dot == 421))
                conn_close(c);
            continue;
        }
        n = make_message(cfg, i, out, cap - 3 - INJ_ENVELOPE_MAX);
        if (n == 0) {
            conn_close(c);
            s->failed++;
            i++;
            continue;
        }
        memcpy(out + n, ".\r\n", 3);
        n += 3;
        bool pipelined = i + 1 < s->end;
        if (pipelined) {
            size_t e = make_envelope(cfg, i + 1, false, out + n,
                                     INJ_ENVELOPE_MAX);
            pipelined = e > 0;
            n += e;
        }
        if (conn_send(c, out, n) != 0 || conn_read_reply(c, &dot) != 0) {
            conn_close(c);    /* fate unknown: failed */
            s->failed++;
            i++;
            continue;
        }
        if (dot == 250) {
            s->accepted++;
            s->last_accept_ms = now_ms();
        } else {
            s->failed++;
        }
        i++;
        env_sent = pipelined;
        if (dot == 421)
            conn_close(c);
    }
    if (i < s->end) {
        fprintf(stderr, "smtp-inject: session %u: giving up after %u "
                        "reconnects (%s); %llu messages not sent\n",
                s->id, INJ_RECONNECTS_MAX, c->note,
                (unsigned long long)(s->end - i));
        s->failed += s->end - i;
    }
}

/* One session thread: send, then QUIT and close. */
static void *session_run(void *arg)
{
    struct inject_session *s = arg;
    struct inject_conn *c = malloc(sizeof(*c));
    size_t cap = INJ_HEADER_MAX + (size_t)s->cfg->size + 3 + INJ_ENVELOPE_MAX;
    char *out = malloc(cap);

    if (c == NULL || out == NULL) {
        fprintf(stderr, "smtp-inject: session %u: out of memory\n", s->id);
        s->failed = s->end - s->first;
    } else {
        c->fd = -1;
        c->off = c->have = 0;
        c->note[0] = '\0';
        session_send(s, c, out, cap);
        if (c->fd >= 0) {
            int code;
            if (conn_send(c, "QUIT\r\n", 6) == 0)
                (void)conn_read_reply(c, &code);
            conn_close(c);
        }
    }
    free(c);
    free(out);
    return NULL;
}

/* Parse a decimal number in [min, max]; 0 on success. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Split HOST:PORT or [V6]:PORT into cfg->host and cfg->port; 0 if good. */
static int parse_connect(const char *arg, struct inject_config *cfg)
{
    const char *colon = strrchr(arg, ':'), *host = arg, *host_end = colon;
    uint64_t port;

    if (colon == NULL || parse_u64(colon + 1, 1, 65535, &port) != 0)
        return -1;
    if (arg[0] == '[') {
        host = arg + 1;
        if (colon == arg || colon[-1] != ']')
            return -1;
        host_end = colon - 1;
    }
    size_t len = (size_t)(host_end - host);
    if (len == 0 || len >= sizeof(cfg->host))
        return -1;
    memcpy(cfg->host, host, len);
    cfg->host[len] = '\0';
    snprintf(cfg->port, sizeof(cfg->port), "%llu", (unsigned long long)port);
    return 0;
}

/* True for local@domain made of plain address characters. */
static bool valid_address(const char *a)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                             "VWXYZ0123456789.!#$%&'*+/=?^_`{|}~-";
    const char *at = strchr(a, '@');
    size_t len = strlen(a);

    if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') ||
        len >= INJ_ADDR_MAX)
        return false;
    for (const char *p = a; *p != '\0'; p++)
        if (*p != '@' && strchr(ok, *p) == NULL)
            return false;
    return true;
}

/* True for a domain suffix: letters, digits, '-' and inner dots. */
static bool valid_suffix(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > INJ_SUFFIX_MAX || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Print why the command line is bad, and the usage line; returns 64. */
static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "smtp-inject: %s\n", why);
    fprintf(stderr, "usage: smtp-inject --connect HOST:PORT -n N --sessions S "
                    "--domains D --size BYTES [--from ADDR] [--suffix TLD] "
                    "[--json]\n");
    return INJ_EXIT_USAGE;
}

/* Fill cfg from argv; 0, or the exit status for a bad command line. */
static int parse_args(int argc, char **argv, struct inject_config *cfg)
{
    enum { OPT_CONNECT = 256, OPT_SESSIONS, OPT_DOMAINS, OPT_SIZE, OPT_FROM,
           OPT_SUFFIX, OPT_JSON };
    static const struct option opts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"sessions", required_argument, NULL, OPT_SESSIONS},
        {"domains", required_argument, NULL, OPT_DOMAINS},
        {"size", required_argument, NULL, OPT_SIZE},
        {"from", required_argument, NULL, OPT_FROM},
        {"suffix", required_argument, NULL, OPT_SUFFIX},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    bool have_connect = false;
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_CONNECT:
            if (parse_connect(optarg, cfg) != 0)
                return usage("--connect wants HOST:PORT");
            have_connect = true;
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_MAX / 2, &cfg->messages) != 0)
                return usage("-n wants a number of messages >= 1");
            break;
        case OPT_SESSIONS:
            if (parse_u64(optarg, 1, INJ_SESSIONS_MAX, &cfg->sessions) != 0)
                return usage("--sessions wants 1..10000");
            break;
        case OPT_DOMAINS:
            if (parse_u64(optarg, 1, UINT32_MAX, &cfg->domains) != 0)
                return usage("--domains wants a number >= 1");
            break;
        case OPT_SIZE:
            if (parse_u64(optarg, 1, INJ_SIZE_MAX, &cfg->size) != 0)
                return usage("--size wants 1..67108864 bytes");
            break;
        case OPT_FROM:
            if (!valid_address(optarg))
                return usage("--from wants a plain local@domain address");
            cfg->from = optarg;
            break;
        case OPT_SUFFIX:
            if (!valid_suffix(optarg))
                return usage("--suffix wants a domain name like bench");
            cfg->suffix = optarg;
            break;
        case OPT_JSON:
            cfg->json = true;
            break;
        default:
            return usage("unknown option or missing value");
        }
    }
    if (optind != argc)
        return usage("unexpected argument");
    if (!have_connect || cfg->messages == 0 || cfg->sessions == 0 ||
        cfg->domains == 0 || cfg->size == 0)
        return usage("--connect, -n, --sessions, --domains and --size are "
                     "required");
    return 0;
}

/* Parse the command line, run the sessions and print the figures. */
int main(int argc, char **argv)
{
    struct inject_config cfg = { .from = "news@sender.bench",
                                 .suffix = "bench" };
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *addrs = NULL;
    uint64_t accepted = 0, failed = 0, connects = 0, reconnects = 0;
    long long first_ms = -1, last_ms = -1;
    struct timespec t0, t1;
    int rc = parse_args(argc, argv, &cfg);

    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    cfg.pid = (long)getpid();
    cfg.run_time = (long long)time(NULL);
    rc = getaddrinfo(cfg.host, cfg.port, &hints, &addrs);
    if (rc != 0) {
        fprintf(stderr, "smtp-inject: %s: %s\n", cfg.host, gai_strerror(rc));
        return INJ_EXIT_UNAVAILABLE;
    }

    /* The size of message 0, as sent (final dot excluded). */
    char *probe = malloc(INJ_HEADER_MAX + (size_t)cfg.size);
    size_t size0 = probe ? make_message(&cfg, 0, probe,
                                        INJ_HEADER_MAX + (size_t)cfg.size)
                         : 0;
    free(probe);

    uint64_t nsess = cfg.sessions < cfg.messages ? cfg.sessions : cfg.messages;
    struct inject_session *s = calloc((size_t)nsess, sizeof(*s));
    if (s == NULL || size0 == 0) {
        fprintf(stderr, "smtp-inject: out of memory\n");
        freeaddrinfo(addrs);
        free(s);
        return INJ_EXIT_FAILED;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t next = 0;
    for (uint64_t k = 0; k < nsess; k++) {
        uint64_t count = cfg.messages / nsess + (k < cfg.messages % nsess);
        s[k] = (struct inject_session){ .cfg = &cfg, .addrs = addrs,
                                        .id = (unsigned)k, .first = next,
                                        .end = next + count,
                                        .first_connect_ms = -1,
                                        .last_accept_ms = -1 };
        next += count;
        int err = pthread_create(&s[k].tid, NULL, session_run, &s[k]);
        if (err != 0) {
            fprintf(stderr, "smtp-inject: session %llu: %s\n",
                    (unsigned long long)k, strerror(err));
            s[k].failed = count;
        } else {
            s[k].started = true;
        }
    }
    for (uint64_t k = 0; k < nsess; k++) {
        if (s[k].started)
            pthread_join(s[k].tid, NULL);
        accepted += s[k].accepted;
        failed += s[k].failed;
        connects += s[k].connects;
        reconnects += s[k].reconnects;
        if (s[k].first_connect_ms >= 0 &&
            (first_ms < 0 || s[k].first_connect_ms < first_ms))
            first_ms = s[k].first_connect_ms;
        if (s[k].last_accept_ms > last_ms)
            last_ms = s[k].last_accept_ms;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double rate = secs > 0 ? (double)accepted / secs : 0.0;

    fprintf(stderr, "smtp-inject: %llu accepted, %llu failed, %.2f s, "
                    "%.0f msg/s (%llu sessions, %llu reconnects, %zu-byte "
                    "messages)\n",
            (unsigned long long)accepted, (unsigned long long)failed, secs,
            rate, (unsigned long long)nsess, (unsigned long long)reconnects,
            size0);
    if (cfg.json) {
        char first[32] = "null", last[32] = "null";
        if (first_ms >= 0)
            snprintf(first, sizeof(first), "%lld", first_ms);
        if (last_ms >= 0)
            snprintf(last, sizeof(last), "%lld", last_ms);
        printf("{\"accepted\":%llu,\"failed\":%llu,\"first_ms\":%s,"
               "\"last_ms\":%s,\"seconds\":%.3f,\"msg_per_s\":%.1f,"
               "\"size\":%zu}\n",
               (unsigned long long)accepted, (unsigned long long)failed,
               first, last, secs, rate, size0);
    }
    freeaddrinfo(addrs);
    free(s);
    if (connects == 0) {
        fprintf(stderr, "smtp-inject: no connection to %s:%s could be made\n",
                cfg.host, cfg.port);
        return INJ_EXIT_UNAVAILABLE;
    }
    return failed > 0 ? INJ_EXIT_FAILED : INJ_EXIT_OK;
}
