/*
 * config_int.h - what config.c shares with config_file.c, config_value.c
 * and config_policy.c.
 *
 * DESCRIPTION
 *   config.c turns sluiced.conf's [sluiced] keys into a struct config and
 *   hands the policy sections ([domain], [site], [backoff], [account],
 *   [campaign]) to config_policy.c; config_file.c
 *   owns what is about the file as text and about the files it names: the
 *   line reader given to libinih (line numbers, NUL bytes, overlong lines,
 *   continuation lines), the table of keys already given, and the check of
 *   every file and directory a key names.  config_value.c reads the value
 *   forms (numbers, durations, host:port...).  Nothing here is seen outside
 *   engine/config*.
 */
#ifndef SLUICE_CONFIG_INT_H
#define SLUICE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* libinih keeps section names to this many bytes, the NUL included, and
 * cuts longer ones silently (MAX_SECTION in its ini.c). */
#define CONFIG_INIH_MAX_SECTION 50

/* Value forms (config_value.c); false when v is not one. */
bool config_parse_uint(const char *s, unsigned long lo, unsigned long hi,
                       unsigned long *out);
bool config_parse_bool(const char *s, bool *out);
/* A number with its unit, B, KB, MB or GB (1024-based, any case), into
 * bytes. */
bool config_parse_size(const char *s, uint64_t *out);
/* "host:port", "[v6]:port" or "host" into a fresh host string and port
 * (0 when none is given). */
bool config_parse_hostport(const char *s, char **host, uint16_t *port);
/* A comma-separated list of durations of 1 s or more into c's retry. */
bool config_parse_retry(struct config *c, const char *v);
/* LDH labels of 1..63 separated by single dots, 253 characters at most. */
bool config_domain_ok(const char *s);
/* local@domain: a plain local part (1..64) and a config_domain_ok domain. */
bool config_mailbox_ok(const char *s);

/* Keys a file may give (a longer file is refused, not read to the end). */
#define CONFIG_MAX_KEYS 100000

/* The state of config_read_line(). */
struct config_reader {
    FILE *f;
    int line;          /* number of the line last handed to libinih */
    bool indented;     /* that line starts with a blank */
    bool after_key;    /* a name = value came after the last [section]:
                          libinih takes an indented line as more of it */
    char err[256];     /* why reading stopped early, or "" */
    int err_line;
};

/* The reader for ini_parse_stream(): the next line into buf (at most
 * size - 1 bytes), or NULL at the end of the file and when it stops early
 * on a NUL byte, a line longer than libinih's buffer, a section name
 * libinih would cut, or a read error (then r->err says which, at
 * r->err_line). */
char *config_read_line(char *buf, int size, void *r);

/* True when the line being handled continues the previous key's value
 * (libinih's multi-line values: an indented line after a key). */
bool config_reader_continues(const struct config_reader *r);

/* The keys given so far, per section (sections compared without case). */
struct config_seen {
    void *root;        /* tsearch(3) tree */
    size_t n;
};

/* Note section's key given at line.  Returns 0 when it is new, the line
 * where it was first given, or -ENOMEM / -E2BIG (over CONFIG_MAX_KEYS). */
int config_seen_add(struct config_seen *s, const char *section,
                    const char *key, int line);

/* The line where section's key was given, or 0. */
int config_seen_line(const struct config_seen *s, const char *section,
                     const char *key);

void config_seen_free(struct config_seen *s);

/* Check every file and directory the keys of c name: tls_ca_file (read as
 * CA certificates), dkim_keys (a directory), the directories of event_log
 * and status_file.  0, or -1 with the reason in err and the line of the
 * key in *line. */
int config_check_paths(const struct config *c, const struct config_seen *s,
                       char *err, size_t errlen, int *line);

/* One config_load() under way: config.c reads the file and the [sluiced]
 * keys, config_policy.c the policy sections. */
struct config_parse {
    struct config *cfg;
    struct config_reader rd;   /* the file, and the number of its line */
    struct config_seen seen;   /* keys given so far, per section */
    const char *section;       /* of the key being handled */
    bool profile;              /* reading the shipped provider profiles */
    int line;                  /* of the key being handled (0: built in) */
    char err[512];
    int err_line;
};

/* Record the first error with the current line; returns 0, which stops
 * libinih when a key handler passes it on. */
int config_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The keys of the policy sections (config_policy.c), each libinih's 1 to
 * go on or 0 (through config_fail) to stop: [domain NAME], [site NAME],
 * [backoff], and [account N] / [campaign N]. */
int config_domain_section(struct config_parse *p, const char *section,
                          const char *name, const char *value);
int config_site_section(struct config_parse *p, const char *section,
                        const char *name, const char *value);
int config_backoff_key(struct config_parse *p, const char *key,
                       const char *v);
/* One limit key (or route) of a domain or site policy: 1, or 0 through
 * config_fail.  While the profiles are read, a key the file set stays. */
int config_domain_key(struct config_parse *p, struct domain_policy *d,
                      const char *key, const char *v);
/* Read the shipped provider profiles into p's configuration, after the
 * file (config_limits.c): 0, or -1 through config_fail. */
int config_profiles_read(struct config_parse *p);
/* config_acct.c: event_log_rotate, the [accounting NAME] sections, the
 * check of those once the file is read, and their memory. */
int config_rotate_key(struct config_parse *p, const char *key, const char *v,
                      struct config_rotate *r);
int config_accounting_section(struct config_parse *p, const char *section,
                              const char *name, const char *value);
void config_accounting_check(struct config_parse *p);
void config_accounting_free(struct config *c);
int config_id_section(struct config_parse *p, const char *section,
                      const char *name, const char *value);
/* The SMTP listener's keys of [sluiced] (config_smtpd.c): 1 taken, 0 a
 * bad value (config_fail said why), -1 not one of its keys.  Defaults,
 * checks once the file is read, and freeing. */
int config_smtpd_key(struct config_parse *p, const char *key, const char *v);
void config_smtpd_defaults(struct smtpd_config *s);
void config_smtpd_check(struct config_parse *p);
void config_smtpd_free(struct smtpd_config *s);
/* [alert NAME] (config_alert.c): one key; [sluiced] alert_* keys (-1:
 * not one of them); the shipped rules when the file has none. */
int config_alert_section(struct config_parse *p, const char *section,
                         const char *key, const char *v);
int config_alert_daemon_key(struct config_parse *p, const char *key,
                            const char *v);
void config_alert_check(struct config_parse *p);
void config_alert_free(struct config *c);

/* [webhook NAME] (config_webhook.c): one key; the checks once the file
 * is read (url given, dead_letter's default); freeing. */
int config_webhook_section(struct config_parse *p, const char *section,
                           const char *key, const char *v);
void config_webhook_check(struct config_parse *p);
void config_webhook_free(struct config *c);
/* Add the shipped backoff rules after the configured ones. */
void config_add_default_rules(struct config_parse *p);

#endif
