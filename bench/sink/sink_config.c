/*
 * sink_config.c - command line of sluice-sink: defaults, parsing, --help.
 *
 * Fills a struct sink_config from argv.  Strings in the config point into
 * argv, so argv must outlive the server.  Every number is parsed with a
 * range check; a bad option prints one line to stderr and makes
 * sink_config_parse() return SINK_EXIT_USAGE (64).  --help prints the usage
 * and returns -1 so that main exits 0.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"

enum {
    OPT_LISTEN = 256, OPT_MAX_SIZE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_NO_STARTTLS,
    OPT_NO_8BITMIME, OPT_NO_SMTPUTF8,
    OPT_SLOW_MS, OPT_DRIP_MS, OPT_MODE, OPT_TEMPFAIL, OPT_PERMFAIL, OPT_BLOCK,
    OPT_SEED,
    OPT_MAX_CONN, OPT_MAX_DOMAINS, OPT_MAX_RCPT, OPT_TIMELINE, OPT_STATS,
    OPT_STATS_INTERVAL, OPT_CAPTURE, OPT_PIDFILE, OPT_EXIT_AFTER,
    OPT_HOSTNAME, OPT_VERBOSE, OPT_HELP, OPT_TRACK_RCPT,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"no-starttls", no_argument, NULL, OPT_NO_STARTTLS},
    {"no-8bitmime", no_argument, NULL, OPT_NO_8BITMIME},
    {"no-smtputf8", no_argument, NULL, OPT_NO_SMTPUTF8},
    {"slow-ms", required_argument, NULL, OPT_SLOW_MS},
    {"drip-ms", required_argument, NULL, OPT_DRIP_MS},
    {"mode", required_argument, NULL, OPT_MODE},
    {"tempfail-pct", required_argument, NULL, OPT_TEMPFAIL},
    {"permfail-pct", required_argument, NULL, OPT_PERMFAIL},
    {"block-pct", required_argument, NULL, OPT_BLOCK},
    {"seed", required_argument, NULL, OPT_SEED},
    {"max-conn-per-domain", required_argument, NULL, OPT_MAX_CONN},
    {"max-domains", required_argument, NULL, OPT_MAX_DOMAINS},
    {"max-rcpt", required_argument, NULL, OPT_MAX_RCPT},
    {"timeline", optional_argument, NULL, OPT_TIMELINE},
    {"stats", required_argument, NULL, OPT_STATS},
    {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
    {"capture", required_argument, NULL, OPT_CAPTURE},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"exit-after", required_argument, NULL, OPT_EXIT_AFTER},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"track-recipients", required_argument, NULL, OPT_TRACK_RCPT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Print the usage text. */
void sink_config_usage(FILE *fp)
{
    fputs(
"usage: sluice-sink [options]\n"
"  a fast, scriptable SMTP sink for tests and benchmarks\n"
"\n"
"  --listen ADDR:PORT        listen address (default 127.0.0.1:2525;\n"
"                            [v6addr]:PORT for IPv6)\n"
"  --hostname NAME           name in the greeting and EHLO (default sink.test)\n"
"  --max-size BYTES          largest message, 552 above (default 67108864)\n"
"  --max-rcpt N              recipients per message, 452 above (default 1000)\n"
"  --tls-cert FILE --tls-key FILE   enable STARTTLS\n"
"  --no-starttls             do not advertise STARTTLS\n"
"  --no-8bitmime             do not advertise 8BITMIME (a 7-bit receiver)\n"
"  --no-smtputf8             do not advertise SMTPUTF8 (refuse UTF-8 paths)\n"
"  --mode MODE               normal, garbage, multiline-mismatch, overlong,\n"
"                            drip, greet-421, greet-554, no-greeting,\n"
"                            tls-garbage, tls-close\n"
"  --slow-ms MS              delay of slow* RCPT replies (default 2000)\n"
"  --drip-ms MS              delay between greeting bytes in drip mode\n"
"                            (default 1000)\n"
"  --tempfail-pct P          answer P% of recipients 451 (random)\n"
"  --permfail-pct P          answer P% of recipients 550 (random)\n"
"  --block-pct P             answer P% of recipients 554 5.7.1 (random)\n"
"  --seed N                  seed for the random answers (default 1)\n"
"  --max-conn-per-domain N   more sessions to one local address get 421\n"
"  --max-domains N           cap of each per-domain table (default 100000)\n"
"  --timeline[=SECONDS]      per recipient domain, accepted recipients per\n"
"                            second since start (default length 3600)\n"
"  --stats FILE              JSON stats at exit, on SIGUSR1 and every\n"
"  --stats-interval SEC      seconds if given\n"
"  --capture DIR             write each accepted message to DIR\n"
"  --pidfile FILE            write the process id to FILE\n"
"  --exit-after N            exit after N accepted messages\n"
"  --track-recipients N      remember up to N recipient addresses: count\n"
"                            first attempts and retries, and the time of\n"
"                            the last first attempt (the end of a first pass)\n"
"  --verbose                 log session state changes to stderr\n"
"  --help                    this text\n"
"\n"
"recipient local parts script RCPT replies: tempfail* 451, permfail* 550,\n"
"block* 554, quota* 452, disconnect* (drop after the final dot), slow*\n"
"(delayed 250).  exit codes: 0 ok, 64 usage, 71 could not listen.\n",
        fp);
}

/* Split "host:port" or "[v6]:port" into cfg->listen_host/port, in place. */
static int parse_listen(struct sink_config *cfg, char *arg)
{
    char *colon = strrchr(arg, ':');
    uint64_t port;

    if (colon == NULL || colon == arg)
        return UV_EINVAL;
    *colon = '\0';
    if (sink_parse_u64(colon + 1, 65535, &port) != 0)
        return UV_EINVAL;
    if (arg[0] == '[') {
        size_t n = strlen(arg);
        if (n < 3 || arg[n - 1] != ']')
            return UV_EINVAL;
        arg[n - 1] = '\0';
        arg++;
    }
    cfg->listen_host = arg;
    cfg->listen_port = (int)port;
    return 0;
}

/* Parse a percentage 0..100 (fractions allowed). */
static int parse_pct(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v >= 0.0 && v <= 100.0))
        return UV_EINVAL;
    *out = v;
    return 0;
}

/* Put the defaults into cfg. */
static void config_defaults(struct sink_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 2525;
    cfg->max_size = 64ull * 1024 * 1024;
    cfg->starttls = true;
    cfg->slow_ms = 2000;
    cfg->drip_ms = 1000;
    cfg->mode = SINK_MODE_NORMAL;
    cfg->seed = 1;
    cfg->max_domains = 100000;
    cfg->max_rcpt = 1000;
    cfg->hostname = "sink.test";
}

/* Apply one numeric option; returns 0 or UV_EINVAL. */
static int config_number(struct sink_config *cfg, int opt, const char *arg)
{
    switch (opt) {
    case OPT_MAX_SIZE:
        return sink_parse_u64(arg, UINT64_MAX / 2, &cfg->max_size);
    case OPT_SLOW_MS:
        return sink_parse_u64(arg, 86400000, &cfg->slow_ms);
    case OPT_DRIP_MS:
        return sink_parse_u64(arg, 86400000, &cfg->drip_ms);
    case OPT_SEED:
        return sink_parse_u64(arg, UINT64_MAX, &cfg->seed);
    case OPT_MAX_CONN:
        return sink_parse_u64(arg, 1000000, &cfg->max_conn_per_domain);
    case OPT_MAX_DOMAINS:
        return sink_parse_u64(arg, 100000000, &cfg->max_domains);
    case OPT_MAX_RCPT:
        return sink_parse_u64(arg, 100000, &cfg->max_rcpt);
    case OPT_TIMELINE:
        if (arg == NULL) {
            cfg->timeline_secs = 3600;
            return 0;
        }
        return sink_parse_u64(arg, 7 * 86400, &cfg->timeline_secs);
    case OPT_STATS_INTERVAL:
        return sink_parse_u64(arg, 86400, &cfg->stats_interval);
    case OPT_EXIT_AFTER:
        return sink_parse_u64(arg, UINT64_MAX, &cfg->exit_after);
    case OPT_TRACK_RCPT:
        return sink_parse_u64(arg, 100000000, &cfg->track_rcpt);
    default:
        return UV_EINVAL;
    }
}

/* Fill cfg from argv: 0 to run, -1 after --help, SINK_EXIT_USAGE on error. */
int sink_config_parse(struct sink_config *cfg, int argc, char **argv)
{
    int opt, idx = 0;

    config_defaults(cfg);
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", long_options, &idx)) != -1) {
        int rc = 0;
        switch (opt) {
        case OPT_LISTEN: rc = parse_listen(cfg, optarg); break;
        case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
        case OPT_TLS_KEY: cfg->tls_key = optarg; break;
        case OPT_NO_STARTTLS: cfg->starttls = false; break;
        case OPT_NO_8BITMIME: cfg->no_8bitmime = true; break;
        case OPT_NO_SMTPUTF8: cfg->no_smtputf8 = true; break;
        case OPT_MODE: rc = sink_mode_parse(optarg, &cfg->mode); break;
        case OPT_TEMPFAIL: rc = parse_pct(optarg, &cfg->tempfail_pct); break;
        case OPT_PERMFAIL: rc = parse_pct(optarg, &cfg->permfail_pct); break;
        case OPT_BLOCK: rc = parse_pct(optarg, &cfg->block_pct); break;
        case OPT_STATS: cfg->stats_path = optarg; break;
        case OPT_CAPTURE: cfg->capture_dir = optarg; break;
        case OPT_PIDFILE: cfg->pidfile = optarg; break;
        case OPT_HOSTNAME: cfg->hostname = optarg; break;
        case OPT_VERBOSE: cfg->verbose = true; break;
        case OPT_HELP:
            sink_config_usage(stdout);
            return -1;
        case '?':
            sink_log("unknown option or missing value: %s",
                     argv[optind - 1]);
            return SINK_EXIT_USAGE;
        default:
            rc = config_number(cfg, opt, optarg);
            break;
        }
        if (rc != 0) {
            sink_log("bad value for --%s", long_options[idx].name);
            return SINK_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        sink_log("unexpected argument: %s", argv[optind]);
        return SINK_EXIT_USAGE;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        sink_log("--tls-cert and --tls-key go together");
        return SINK_EXIT_USAGE;
    }
    if (cfg->tls_cert == NULL)
        cfg->starttls = false;
    if (cfg->tempfail_pct + cfg->permfail_pct + cfg->block_pct > 100.0) {
        sink_log("--tempfail-pct, --permfail-pct and --block-pct add up to "
                 "more than 100");
        return SINK_EXIT_USAGE;
    }
    if (cfg->max_domains == 0 || cfg->max_rcpt == 0) {
        sink_log("--max-domains and --max-rcpt must be at least 1");
        return SINK_EXIT_USAGE;
    }
    return 0;
}
