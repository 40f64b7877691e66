/*
 * sink_policy.c - what sluice-sink answers to a recipient, and the names of
 * the fault modes.
 *
 * A recipient whose local part starts (case-insensitively) with a script
 * word gets the scripted answer: tempfail 451, permfail 550, block 554,
 * quota 452, disconnect (accepted; the session is dropped after the final
 * dot), slow (accepted after --slow-ms).  Other recipients are failed at
 * random with --tempfail-pct / --permfail-pct / --block-pct (a policy
 * block, as a provider that blocks a sender answers), from a splitmix64
 * stream
 * seeded with --seed, so a run with the same seed and the same order of
 * recipients gives the same answers.  Nothing here fails.
 */
#include <string.h>
#include <strings.h>

#include "sink.h"

/* One scripted local-part prefix and its answer. */
struct sink_script {
    const char *prefix;
    const char *reply;
    bool accepted;
};

static const struct sink_script scripts[] = {
    {"tempfail", "451 4.3.0 temporary failure (scripted)\r\n", false},
    {"permfail", "550 5.1.1 user unknown\r\n", false},
    {"block", "554 5.7.1 blocked (policy)\r\n", false},
    {"quota", "452 4.2.2 mailbox full\r\n", false},
    {"disconnect", "250 2.1.5 Ok\r\n", true},
    {"slow", "250 2.1.5 Ok\r\n", true},
};

static const char *const mode_names[] = {
    [SINK_MODE_NORMAL] = "normal",
    [SINK_MODE_GARBAGE] = "garbage",
    [SINK_MODE_MULTILINE_MISMATCH] = "multiline-mismatch",
    [SINK_MODE_OVERLONG] = "overlong",
    [SINK_MODE_DRIP] = "drip",
    [SINK_MODE_GREET_421] = "greet-421",
    [SINK_MODE_GREET_554] = "greet-554",
    [SINK_MODE_NO_GREETING] = "no-greeting",
    [SINK_MODE_TLS_GARBAGE] = "tls-garbage",
    [SINK_MODE_TLS_CLOSE] = "tls-close",
};

/* Name of a fault mode. */
const char *sink_mode_name(enum sink_mode m)
{
    return mode_names[m];
}

/* Parse a --mode name. */
int sink_mode_parse(const char *name, enum sink_mode *m)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *m = (enum sink_mode)i;
            return 0;
        }
    }
    return UV_EINVAL;
}

/* Next number of the seeded stream (splitmix64). */
static uint64_t next_random(struct sink_server *srv)
{
    uint64_t z = (srv->rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Decide the answer to RCPT for this local part; returns the reply text. */
const char *sink_policy_rcpt(struct sink_session *s, const char *local,
                             bool *accepted, bool *slow)
{
    const struct sink_config *cfg = &s->srv->cfg;

    *accepted = true;
    *slow = false;
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        size_t n = strlen(scripts[i].prefix);
        if (strncasecmp(local, scripts[i].prefix, n) != 0)
            continue;
        *accepted = scripts[i].accepted;
        if (strcmp(scripts[i].prefix, "disconnect") == 0)
            s->drop_after_data = true;
        else if (strcmp(scripts[i].prefix, "slow") == 0)
            *slow = true;
        return scripts[i].reply;
    }
    if (cfg->tempfail_pct > 0.0 || cfg->permfail_pct > 0.0 ||
        cfg->block_pct > 0.0) {
        /* 53 random bits -> [0, 100) */
        double r = (double)(next_random(s->srv) >> 11) * 0x1.0p-53 * 100.0;
        if (r < cfg->tempfail_pct) {
            *accepted = false;
            return "451 4.3.0 temporary failure (random)\r\n";
        }
        if (r < cfg->tempfail_pct + cfg->permfail_pct) {
            *accepted = false;
            return "550 5.1.1 user unknown (random)\r\n";
        }
        if (r < cfg->tempfail_pct + cfg->permfail_pct + cfg->block_pct) {
            *accepted = false;
            return "554 5.7.1 blocked (policy, random)\r\n";
        }
    }
    return "250 2.1.5 Ok\r\n";
}
