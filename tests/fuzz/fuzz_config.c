/*
 * fuzz_config.c - libFuzzer target for sluiced's configuration parser
 * (engine/config.c over libinih, with engine/bounce_rules.c).
 *
 * DESCRIPTION
 *   config_load() reads a path, so the input is written to a memory file
 *   (memfd) and loaded as /proc/self/fd/N: no disk, and config.c unchanged.
 *   Standard input is /dev/null, so a configuration naming /dev/stdin
 *   cannot block.  A file that loads is then used the way sluiced uses it
 *   -- domain and site look-ups, backoff rules matched against a reply,
 *   rates written back as text -- and freed; one that fails must say why
 *   in the error buffer and leave the struct empty.  Memory, leaks and
 *   undefined behaviour are the sanitizers' to catch.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

/* Stop with a message: config.c broke a promise of config.h. */
static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s: \"%.300s\"\n", what, detail);
    abort();
}

/* Once: the memory file, and standard input from /dev/null. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0)
        abort();
    close(null);
    memfd = memfd_create("sluiced.conf", 0);
    if (memfd < 0)
        abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    return 0;
}

/* Use a loaded configuration as sluiced does. */
static void use(const struct config *cfg)
{
    char buf[64];
    const struct domain_policy *d = config_domain(cfg, "example.com");
    if (!d || !d->name)
        broken("no policy for a domain", "");
    config_rate_text(&d->max_rate, buf, sizeof buf);
    for (size_t i = 0; i < cfg->ndomains; i++) {
        if (config_domain(cfg, cfg->domains[i].name) != &cfg->domains[i])
            broken("a domain's own section is not found",
                   cfg->domains[i].name);
        config_rate_text(&cfg->domains[i].max_connection_rate, buf,
                         sizeof buf);
    }
    for (size_t i = 0; i < cfg->nsites; i++)
        if (!cfg->sites[i].nmx)
            broken("a site without mx patterns loaded",
                   cfg->sites[i].lim.name);
    (void)config_site_for_mx(cfg, "mx1.mail.example.com");
    for (size_t i = 0; i < cfg->backoff.nrules; i++)
        (void)config_backoff_match(&cfg->backoff.rules[i], 421, "4.7.0",
                                   "Try again later: rate limited");
    for (size_t i = 0; i < cfg->nid_rates; i++)
        config_rate_text(&cfg->id_rates[i].max_rate, buf, sizeof buf);
    if (!cfg->spool || !cfg->ehlo_hostname)
        broken("loaded without spool or ehlo_hostname", "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) || pwrite(memfd, data, size, 0) != (ssize_t)size)
        abort();
    struct config cfg;
    char err[512] = "";
    if (config_load(path, &cfg, err, sizeof err) == 0) {
        use(&cfg);
        config_free(&cfg);
    } else {
        if (!err[0] || !memchr(err, 0, sizeof err))
            broken("a refusal without a reason", "");
        /* a refused load left the struct empty: freeing it again is harmless */
        config_free(&cfg);
    }
    return 0;
}
