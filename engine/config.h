/*
 * config.h - sluiced's configuration, read from an INI file with libinih.
 *
 * DESCRIPTION
 *   [sluiced] holds the daemon settings; [domain NAME] the policy of one
 *   destination domain, [domain default] the policy of every other.  Values
 *   with a unit take durations (500ms, 30s, 5m, 2h, 5d; bare numbers are
 *   seconds).  See README "Configuring sluiced" for every key.
 *
 * OWNERSHIP
 *   config_load() fills a struct config that the caller frees with
 *   config_free(); strings inside belong to it.
 *
 * DIAGNOSTICS
 *   config_load() returns 0, or -1 with "FILE:LINE: reason" (or
 *   "FILE: reason") in the caller's error buffer.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

enum tls_policy { TLS_OPPORTUNISTIC = 0, TLS_REQUIRED, TLS_OFF };

/* RFC 5321 4.5.3.2 timeouts, per client state, in milliseconds. */
enum smtp_timeout {
    TO_CONNECT, TO_GREETING, TO_EHLO, TO_STARTTLS, TO_TLS, TO_MAIL, TO_RCPT,
    TO_DATA, TO_DATA_BLOCK, TO_DATA_DONE, TO_RSET, TO_QUIT, TO_IDLE,
    TO_COUNT
};

/* A rate: n events per per_s seconds; n == 0 means unlimited. */
struct rate {
    uint32_t n;
    uint32_t per_s;
};

/* Policy for one destination domain (or the default), or the limits of a
 * site (then name is the site's and route_host is unused). */
struct domain_policy {
    char *name;                /* "default" for the catch-all */
    char *route_host;          /* smarthost instead of MX, or NULL */
    uint16_t route_port;       /* 0: the global smtp_port */
    enum tls_policy tls;
    bool tls_verify;
    unsigned max_connections;
    unsigned max_messages_per_connection;
    unsigned max_rcpts_per_message;
    struct rate max_rate;      /* deliveries (recipients) */
    struct rate max_connection_rate;
    int line;                  /* where it was defined, for messages */
    unsigned keys_ini;         /* 1 << CONFIG_LK_*: keys the file set */
    unsigned keys_profile;     /* ... the shipped provider profile set */
};

/* The limit keys of [domain NAME] and [site NAME] (also `sluice limits`):
 * each has one rule, in config_policy.c. */
enum config_limit_key {
    CONFIG_LK_TLS, CONFIG_LK_TLS_VERIFY, CONFIG_LK_MAX_CONNECTIONS,
    CONFIG_LK_MAX_MESSAGES_PER_CONNECTION, CONFIG_LK_MAX_RCPTS_PER_MESSAGE,
    CONFIG_LK_MAX_RATE, CONFIG_LK_MAX_CONNECTION_RATE, CONFIG_LK_COUNT
};
/* The key's name, and the key of a name (-1: not a limit key). */
const char *config_limit_key_name(int key);
int config_limit_key_find(const char *name);
/* Set one limit key of a policy from its text with the rule the file's
 * sections use; kind 's' site or 'd' domain take every key, 'a' account
 * and 'c' campaign only max_rate (as [account N] and [campaign N]).
 * 0, or -1 with why in err. */
int config_limit_set(char kind, struct domain_policy *pol, const char *key,
                     const char *value, char *err, size_t errlen);
/* A key's value in pol as the file would give it ("" for no rate). */
const char *config_limit_text(const struct domain_policy *pol, int key,
                              char *buf, size_t len);
/* Whether value a of key is lower (stricter) than b, for the rule that
 * a sub-account may only lower its own limits: a rate is lower when it
 * allows fewer events per second (unlimited is the highest). */
bool config_rate_lower(const struct rate *a, const struct rate *b);

#define SITE_MAX_PATTERNS 16

/* [site NAME]: every domain whose MX hosts match one of the patterns
 * shares these limits (MX rollup). */
struct site_policy {
    struct domain_policy lim;  /* lim.name is the site's name */
    char *mx[SITE_MAX_PATTERNS];
    unsigned nmx;
    bool in_file;              /* sluiced.conf names it */
    bool in_profile;           /* the shipped profiles name it */
    bool mx_from_profile;      /* its patterns are the profile's */
};

/* The shipped provider profiles: [site NAME] sections (and [backoff]
 * match rules) in sluiced.conf's syntax, read after the file so that the
 * file's keys win (tools/provider-profiles.conf, embedded). */
extern const char config_provider_profiles[];

/* One adaptive-backoff rule: a reply matching code, enhanced code and text
 * cuts the site's concurrency and rate; a strong rule suspends the site. */
struct backoff_rule {
    int code;                  /* 0: any */
    char enhanced[16];         /* prefix; "": any */
    char *regex;               /* source text, or NULL: any */
    void *compiled;            /* regex_t */
    bool strong;
    int line;
};

/* [account N] / [campaign N]: a rate cap over every site, so one sender
 * cannot take a shared provider's whole budget. */
struct id_rate {
    char kind;                 /* 'a' account, 'c' campaign */
    uint64_t id;
    struct rate max_rate;
    int line;
};

/* [account N]: the account's verified sending domains (its mail is signed
 * only with keys of these) and whether its mail may leave unsigned.
 * [account default] sets allow_unsigned for accounts without a section. */
#define CONFIG_MAX_ACCOUNT_DOMAINS 64
#define CONFIG_MAX_SHARE 1000      /* [account N] share = 1..this */
struct account_policy {
    uint32_t id;
    char *alert_to;            /* incident alert addresses (commas), NULL */
    char *domains[CONFIG_MAX_ACCOUNT_DOMAINS];
    unsigned ndomains;
    int allow_unsigned;        /* -1: not set here, the default applies */
    int line;
    char *report_to;           /* weekly report addresses (commas), NULL:
                                  alert_to's (report_weekly.c) */
    bool report_weekly;        /* mail the weekly report (report_weekly.c) */
    unsigned share;            /* its weight in turns at a destination
                                  shared with other accounts (fair.c);
                                  0: not set here, 1 applies */
};

/* [alert NAME]: one incident rule (config_alert.c, incident.c). */
enum alert_signal {
    ALERT_BOUNCE_RATE = 1,     /* bounced / attempts (category: that one) */
    ALERT_HARD_BOUNCE_RATE,    /* bad mailbox/domain, inactive / attempts */
    ALERT_COMPLAINT_RATE,      /* complaints / delivered */
    ALERT_BLOCK_RATE,          /* policy and spam replies / attempts */
    ALERT_DEFERRAL_RATE,       /* deferred / attempts */
    ALERT_SITE_STALLED,        /* attempts but no delivery in the window */
    /* gauges sampled each second (signals_gauge.c) */
    ALERT_BACKOFF_FLOOR,       /* seconds at the backoff floor (site) */
    ALERT_DKIM_FAILURE_RATE,   /* failed signings / attempts (account) */
    ALERT_SPOOL_FULL,          /* LMDB map used / map_max (engine) */
    ALERT_DISK_FULL,           /* the spool's filesystem used (engine) */
    ALERT_WEBHOOK_BACKLOG,     /* events behind the stream (webhook) */
};
enum alert_scope { ALERT_SCOPE_ACCOUNT = 1, ALERT_SCOPE_CAMPAIGN,
                   ALERT_SCOPE_SITE, ALERT_SCOPE_ENGINE, ALERT_SCOPE_WEBHOOK,
                   ALERT_SCOPE_END };
enum alert_action { ALERT_ACT_NONE = 0, ALERT_ACT_PAUSE_CAMPAIGN,
                    ALERT_ACT_PAUSE_ACCOUNT, ALERT_ACT_PAUSE_SITE };
/* How the rule's pause ends: a person's resume, or a probe that is
 * delivered (incident_probe.c). */
enum alert_resume { ALERT_RESUME_MANUAL = 0, ALERT_RESUME_PROBE };
#define CONFIG_MAX_ALERTS 64
struct alert_rule {
    char name[32];
    int signal;                /* enum alert_signal */
    int category;              /* bounce_rate: a QUEUE_CAT_*, 0 all */
    int scope;                 /* enum alert_scope */
    double threshold;          /* a fraction (0.1 = 10%); backoff_floor:
                                  seconds; webhook_backlog: events */
    unsigned min_volume;       /* attempts (delivered for complaints);
                                  0 for the levels without a volume */
    unsigned window_s;         /* 300 or 3600 */
    int severity;              /* 0 info, 1 warning, 2 critical */
    int action;                /* enum alert_action */
    unsigned auto_resolve_s;   /* clean this long: resolved (0: never) */
    int line;
    /* escalation and the breaker's resume (incident_esc.c,
     * incident_probe.c) */
    unsigned escalate_after_s; /* unacknowledged this long: one level up
                                  (0: never) */
    double escalate_threshold; /* the value reaching this while open: one
                                  level up (0: none) */
    int resume;                /* enum alert_resume */
    unsigned probe_after_s;    /* resume = probe: paused this long before a
                                  probe (and between probes) */
};
const char *config_alert_signal_name(int signal);
const char *config_alert_scope_name(int scope);
const char *config_alert_action_name(int action);
const char *config_alert_severity_name(int severity);
/* The severity called name (0 info .. 2 critical), -1 for none. */
int config_alert_severity_find(const char *name);

/* [webhook NAME]: one consumer of the event stream that POSTs batches of
 * events as JSON arrays (webhook.c; keys read by config_webhook.c). */
#define CONFIG_MAX_WEBHOOKS 32
struct webhook_config {
    char *name;                /* 1..24 bytes; its cursor is webhook.NAME */
    char *url;                 /* http:// or https:// */
    char *secret;              /* HMAC-SHA256 key, or NULL: unsigned */
    char *account;             /* name or id, or NULL: every account */
    char *dead_letter;         /* JSON-lines file of given-up batches */
    uint32_t events;           /* mask of 1 << type; 0: every type */
    unsigned batch;            /* events per POST (100) */
    unsigned max_in_flight;    /* POSTs at once (4) */
    unsigned timeout_ms;       /* one POST (10 s) */
    uint64_t max_age_ms;       /* a batch is retried this long (1 d) */
    bool from_oldest;          /* start = oldest: a new webhook gets the
                                  spool's whole stream, not from now on */
    int line;
};

struct backoff_policy {
    struct backoff_rule *rules;
    size_t nrules;
    double decrease;           /* multiply concurrency and rate by this */
    double min_rate_factor;
    unsigned suspend_ms;       /* strong signals suspend for this long */
    unsigned recover_after;    /* successes in a row before one step up */
};

/* One network of a CIDR list: family AF_INET or AF_INET6, the address
 * in network order, the prefix length. */
struct config_cidr {
    int family;
    unsigned char addr[16];
    unsigned bits;
};
#define CONFIG_SMTPD_MAX_LISTEN 16
#define CONFIG_SMTPD_MAX_NETS 64

/* The SMTP listener (smtpd*.c; keys read by config_smtpd.c). */
struct smtpd_config {
    char *listen_host[CONFIG_SMTPD_MAX_LISTEN]; /* smtp_listen */
    uint16_t listen_port[CONFIG_SMTPD_MAX_LISTEN];
    unsigned nlisten;          /* 0: no listener */
    struct config_cidr relay[CONFIG_SMTPD_MAX_NETS];
    unsigned nrelay;
    struct config_cidr clear[CONFIG_SMTPD_MAX_NETS]; /* smtp_auth_clear_
                                  networks: AUTH without TLS (loopback) */
    unsigned nclear;
    unsigned max_clients;      /* smtp_max_clients (1000) */
    uint64_t max_message_size; /* bytes (20 MB) */
    unsigned max_recipients;   /* smtp_max_recipients per message (1000) */
    unsigned data_memory_mb;   /* smtp_data_memory: messages being
                                  received, all connections (512 MiB) */
    char *default_account;     /* smtp_default_account for them */
    char *tls_cert, *tls_key;  /* PEM files for STARTTLS, or NULL */
    unsigned command_timeout_ms; /* smtp_command_timeout (300 s) */
    unsigned data_timeout_ms;  /* smtp_data_timeout (600 s, all of DATA) */
    unsigned auth_failures;    /* smtp_auth_failures per address per
                                  smtp_auth_window before 454 (5) */
    unsigned auth_window_ms;   /* smtp_auth_window (300 s) */
};

/* max_inflight_bytes: composed message bytes held at once (body.c);
 * 1 MiB .. 64 GiB, 32 MiB by default. */
#define CONFIG_MIN_INFLIGHT_BYTES (1ull << 20)
#define CONFIG_MAX_INFLIGHT_BYTES (64ull << 30)
#define CONFIG_DEFAULT_INFLIGHT_BYTES (32ull << 20)

/* When a file fed by the event stream is rotated (evfile.c): past size
 * bytes, or at each multiple of period_ms of UTC time; 0 is never. */
struct config_rotate {
    uint64_t size;
    uint64_t period_ms;
};

/* One [accounting NAME] section: a CSV file of chosen event fields. */
struct config_accounting {
    char *name;
    char *path;
    char **fields;             /* keys of event_json()'s object, in order */
    size_t nfields;
    uint64_t types;            /* bit per event type kept; 0: all */
    struct config_rotate rotate;
    int line;                  /* of the section, for messages */
};

struct config {
    char *path;
    char *spool;
    char *ehlo_hostname;
    char *dns_servers;         /* "ADDR:PORT,[V6]:PORT" or NULL: system */
    unsigned dns_timeout_ms;
    unsigned dns_tries;
    uint16_t smtp_port;
    unsigned max_connections;  /* global cap on SMTP sessions */
    unsigned retry_steps;
    uint32_t retry[QUEUE_MAX_RETRY_STEPS];
    int64_t max_age;           /* seconds */
    unsigned report_hourly_days; /* time series kept per hour (35) */
    unsigned report_daily_days;  /* ... per day (800) */
    char *event_log;           /* JSON-lines event log, or NULL */
    struct config_rotate event_log_rotate; /* event_log_rotate */
    char *bounce_rules_path;   /* bounce_rules = FILE, or NULL */
    struct bounce_rules *bounce_rules; /* loaded from it (NULL: defaults) */
    unsigned soft_bounce_limit;  /* quota bounces in a row that suppress */
    unsigned soft_bounce_days;   /* ... within this many days */
    unsigned workers;          /* composition threads; 0: cores */
    unsigned drain_timeout_ms; /* SIGTERM: wait this long for sessions */
    unsigned pause_recheck_ms; /* paused mail goes back to the spool this long */
    unsigned claim_batch;
    unsigned max_inflight;     /* claimed deliveries held at once */
    uint64_t max_inflight_bytes; /* composed message bytes held, about
                                    (body.c) */
    unsigned group_ops, group_ms;
    bool nosync;
    uint64_t map_max;
    uint64_t spool_min_free;   /* bytes free before a full spool resumes */
    bool spool_check;          /* walk the spool before writing to it */
    char *tls_ca_file;         /* NULL: OpenSSL's default paths */
    unsigned timeout_ms[TO_COUNT];

    struct domain_policy def;  /* [domain default] */
    struct domain_policy *domains;
    size_t ndomains;
    struct site_policy *sites; /* the file's [site] sections first, then
                                  the shipped provider profiles' */
    size_t nsites;
    bool provider_profiles;    /* no: the shipped profiles are not read */
    struct backoff_policy backoff;
    struct id_rate *id_rates;
    size_t nid_rates;
    char *status_file;         /* live status JSON; default SPOOL/status.json */
    char *dkim_keys;           /* DIR/DOMAIN/SELECTOR.key; default SPOOL/dkim */
    bool dkim_sign;            /* no: nothing is signed (default yes) */
    char *unsubscribe_host;    /* https://HOST/u/TOKEN; default ehlo_hostname */
    char *bounce_domain;       /* VERP return paths; default the From domain */
    char *feedback_sender;     /* Feedback-ID's last field; default "sluice" */
    char *feedback_address;    /* where ARF reports come in; default
                                  fbl@bounce_domain (NULL without one) */
    char *http_listen;         /* ADDR:PORT of the unsubscribe endpoint */
    unsigned track_scanner_window_ms; /* clicks this soon after delivery
                                  are a scanner's (track_http.c) */
    uint64_t max_request_size; /* bytes of a POST /api/inject/v1 body */
    unsigned max_request_recipients; /* recipients of one inject request */
    unsigned metrics_sites;    /* sites with their own label (default 20) */
    unsigned metrics_accounts; /* accounts with their own label (default 100) */
    unsigned console_idle_timeout_ms; /* web console sessions; 0: 30 min */
    char *audit_key;           /* the audit trail's key file, or NULL */
    char *audit_checkpoint;    /* file the audit head is appended to */
    struct account_policy *accounts;
    size_t naccounts;
    bool allow_unsigned;       /* [account default] allow_unsigned */
    struct smtpd_config smtpd; /* the SMTP listener */
    struct config_accounting *accounting; /* [accounting NAME] sections */
    size_t naccounting;
    struct webhook_config *webhooks; /* [webhook NAME] sections */
    size_t nwebhooks;
    struct alert_rule *alerts; /* [alert NAME] sections, or the defaults */
    size_t nalerts;
    char *alert_command;       /* run with each alert's JSON on stdin */
    char *alert_from;          /* From: of alert mail; default
                                  sluice-alerts@ehlo_hostname */
    unsigned alert_interval_ms; /* one alert per incident per this */
};

int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/* The policy for a domain: its own section or the default. */
const struct domain_policy *config_domain(const struct config *cfg,
                                          const char *domain);

/* The share of account id in turns at a shared destination: its
 * [account N] share, else 1. */
unsigned config_account_share(const struct config *cfg, uint32_t id);

/* A dns_servers list (IP[:PORT] or [IPv6][:PORT], separated by commas or
 * blanks, at most CONFIG_DNS_SERVERS_MAX - 1 characters) into out in the
 * form c-ares reads: "ADDR:PORT,[IPv6]:PORT" (port 53 when none is given);
 * outlen must be 3 * CONFIG_DNS_SERVERS_MAX at least.  0, -EINVAL with the
 * bad entry in bad, -ENOENT for an empty list, -E2BIG for a long one. */
#define CONFIG_DNS_SERVERS_MAX 1024
int config_parse_dns_servers(const char *list, char *out, size_t outlen,
                             char *bad, size_t badlen);

/* Whether addr (a struct sockaddr_in or _in6; a v4-mapped v6 address
 * counts as v4) lies in one of the n networks. */
struct sockaddr;
bool config_cidr_match(const struct config_cidr *nets, unsigned n,
                       const struct sockaddr *addr);

/* Parse "500ms", "30s", "5m", "2h", "5d" or bare seconds into ms. */
int config_parse_duration_ms(const char *s, uint64_t *ms);

/* Whether url is an http:// or https:// URL a webhook may use. */
bool config_webhook_url_ok(const char *url);
/* A list of event type names (commas or blanks: queue_event_name())
 * into a mask of 1 << type; false for an unknown name (copied into bad
 * when bad is not NULL) or an empty list (bad: the whole value).  The
 * one parser of `events =` ([webhook], sluice webhook) and `types =`
 * ([accounting]). */
bool config_event_types(const char *v, uint32_t *mask, char *bad,
                        size_t badlen);
/* A webhook's settings as the JSON text kept in the spool
 * (webhook_spec.c): written (malloc'd; NULL out of memory) and read into
 * w (url, events, secret, batch, max_in_flight, timeout_ms, max_age_ms
 * filled; name, account and dead_letter left NULL): 0, or -1 with why in
 * err.  Free w's strings with free(). */
char *config_webhook_to_json(const struct webhook_config *w);
int config_webhook_from_json(const char *text, struct webhook_config *w,
                             char *err, size_t errlen);
/* The X-Sluice-Signature value of a POST of body at unix time t:
 * "t=T,v1=HEX" (HEX: HMAC-SHA256 keyed with secret of "T." then body)
 * into out (cap >= 96); 0, or -1 (OpenSSL failed, or cap too small). */
int config_webhook_signature(const char *secret, long long t,
                             const char *body, size_t len, char *out,
                             size_t cap);

const char *config_tls_policy_name(enum tls_policy p);

/* The configured site whose MX patterns match host, or NULL. */
const struct site_policy *config_site_for_mx(const struct config *cfg,
                                             const char *host);

/* Does a reply match a rule; 1 yes, 0 no. */
int config_backoff_match(const struct backoff_rule *r, int code,
                         const char *enhanced, const char *text);

/* "100/min" style text of a rate ("" when unlimited). */
const char *config_rate_text(const struct rate *r, char *buf, size_t len);

/* "N/s", "N/min", "N/h" or "N/day" into r; false if it is not one. */
bool config_parse_rate(const char *v, struct rate *r);

#endif
