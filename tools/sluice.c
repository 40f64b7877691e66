/*
 * sluice.c - the `sluice` command: global options and subcommand dispatch.
 *
 * DESCRIPTION
 *   `sluice [--spool DIR] [--as USER | --bootstrap] [--config FILE]
 *   [--json] COMMAND ...`.  The spool defaults to $SLUICE_SPOOL, then
 *   ./sluice-data; the configuration (for the audit key and checkpoint:
 *   tool_config.c) to $SLUICE_CONFIG, then /etc/sluice/sluiced.conf if
 *   it exists.  Each command group lives in its own file
 *   (tools/cmd_*.c) and answers --help.  Every command acts as an
 *   identity (tools/auth.c) whose role is checked (tools/authz.c); the
 *   older commands carry a gate in their table entry (here for status,
 *   pause, resume and paused, in the group's table for the subcommands of
 *   spool and dkim), checked by tool_cmd_gate() before they run.
 *   Identity: --as USER, else $SLUICE_API_KEY, else $SLUICE_USER (the
 *   default of --as); with none, the owner of the spool directory is the
 *   bootstrap admin only while the spool has no user, and --bootstrap
 *   is the owner's audited break-glass after that.  What the command
 *   files share lives in tool_cmd.c (group front and dispatch, gates,
 *   spool open) and tool_exit.c (the one error -> exit status table).
 *
 * EXIT STATUS
 *   sysexits(3), mapped in tool_exit.c: 0 ok, 64 usage, 65 bad data
 *   (foreign or corrupt spool, also a bus error reading a spool cut short
 *   or damaged), 66 no such input (missing spool, resume of what is not
 *   paused),
 *   74 I/O error, 75 spool full (nothing written; try again once there
 *   is space), 77 permission refused (also a spool the caller may not
 *   read: "permission denied"), 78 configuration error (also a keyed
 *   audit trail without its key, or with another).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_admin.h"
#include "tool_lists.h"
#include "tool_report.h"

/* The commands; a gate (a master-level action, checked before the command
 * opens the spool: tool_cmd_gate) is on the commands without subcommands
 * here, on the subcommands in their group's table (spool, dkim). */
static const struct tool_cmd commands[] = {
    { .name = "account", .run = tool_account_main, .help =
      "master account and sub-accounts: create, list, show, update, usage" },
    { .name = "user", .run = tool_user_main, .help =
      "users and their roles per account, passwords, TOTP" },
    { .name = "apikey", .run = tool_apikey_main, .help =
      "API keys: create (shown once), list, revoke" },
    { .name = "webhook", .run = tool_webhook_main, .help =
      "webhooks of an account: add, list, test, remove" },
    { .name = "incident", .run = tool_incident_main, .help =
      "incidents: list, show, ack, assign, note, resolve, report" },
    { .name = "domain", .run = tool_domain_main, .help =
      "sending domains: add (with DKIM key), list, show, verify; "
      "key add|list|retire" },
    { .name = "audit", .run = tool_audit_main, .help =
      "the audit trail: list, verify the hash chain" },
    { .name = "inject", .run = tool_inject_main, .help =
      "queue a raw message for one or more recipients" },
    { .name = "spool", .run = tool_spool_main, .help =
      "inspect the spool: info, domains, events, history; check, salvage, "
      "init" },
    { .name = "status", .run = tool_status_main, .gate = ACT_STATUS, .help =
      "sites: queued, connections, rate, backoff, errors" },
    { .name = "queue", .run = tool_queue_main, .help =
      "queued mail: summary by domain/site/campaign/account, retry, bounce" },
    { .name = "pause", .run = tool_pause_main, .gate = ACT_PAUSE, .help =
      "hold mail for a domain or site (kept in the spool; --for: ends "
      "by itself)" },
    { .name = "resume", .run = tool_resume_main, .gate = ACT_RESUME, .help =
      "let mail flow again to a paused domain or site" },
    { .name = "paused", .run = tool_paused_main, .gate = ACT_PAUSED, .help =
      "list paused domains and sites" },
    { .name = "limits", .run = tool_limits_main, .help =
      "live limits of sites, domains, accounts, campaigns: set, unset, "
      "show" },
    { .name = "sites", .run = tool_sites_main, .help =
      "the sites: shipped provider profiles and sluiced.conf's [site]" },
    { .name = "site-of", .run = tool_site_of_main, .help =
      "the site (and limits) a domain's MX puts it in" },
    { .name = "dkim", .run = tool_dkim_main, .help =
      "DKIM keys: keygen, check the published DNS record" },
    { .name = "list", .run = tool_list_main, .help =
      "contact lists: create, list, show, delete, import CSV" },
    { .name = "suppress", .run = tool_suppress_main, .help =
      "suppression lists: add, remove, list, import, export" },
    { .name = "campaign", .run = tool_campaign_main, .help =
      "campaigns: create, show, preview, test, send, pause, resume, cancel" },
    { .name = "feedback", .run = tool_feedback_main, .help =
      "ingest DSN bounces and ARF complaints: events, suppressions" },
    { .name = "bounces", .run = tool_bounces_main, .help =
      "bounce categories: classify a reply, show the rules" },
    { .name = "report", .run = tool_report_main, .help =
      "sending per day, hour, campaign, site, account: text, JSON, CSV" },
};

/* --help or -h anywhere after COMMAND: the command is run as `COMMAND
 * --help` (its usage, every subcommand), before anything is parsed, the
 * spool opened or an identity asked for.  dkim's subcommands have their
 * own --help text (tool_cmd.usage), so for dkim SUB is kept.  Fills hv and
 * returns its count, or 0 when no help is asked for. */
static int help_argv(int argc, char **argv, char *hv[4])
{
    static char help[] = "--help";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            int n = 0;
            hv[n++] = argv[0];
            if (!strcmp(argv[0], "dkim") && argv[1][0] != '-')
                hv[n++] = argv[1];
            hv[n++] = help;
            hv[n] = NULL;
            return n;
        }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice [--spool DIR] [--as USER | --bootstrap] "
               "[--config FILE] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
        "\nThe spool is --spool DIR, else $SLUICE_SPOOL, else ./sluice-data.\n"
        "Every command acts as an identity, the first of:\n"
        "  --as USER        a user: password from $SLUICE_PASSWORD or asked "
        "on the\n"
        "                   terminal, then a TOTP code from $SLUICE_TOTP or "
        "asked\n"
        "                   (each code works once); %d failed logins within "
        "%d min\n"
        "                   lock the user out for %d min, doubling up to %d "
        "h\n"
        "  $SLUICE_API_KEY  an API key (sluice apikey create)\n"
        "  $SLUICE_USER     the default for --as (a script exports "
        "SLUICE_USER and\n"
        "                   SLUICE_PASSWORD once)\n"
        "  none             the owner of the spool directory, as the "
        "bootstrap admin,\n"
        "                   only while the spool has no user: make the first "
        "user an\n"
        "                   owner of the master (sluice user add NAME "
        "--account\n"
        "                   MASTER --role owner --password-stdin) and act as "
        "it\n"
        "  --bootstrap      the spool owner's break-glass once users exist "
        "(no admin\n"
        "                   can log in): acts as the bootstrap admin anyway, "
        "warns,\n"
        "                   and writes the uid and $SUDO_USER or $USER to the "
        "audit\n"
        "                   trail\n"
        "A refusal exits 77, as does a spool the caller may not read "
        "(permission\ndenied).  'sluice COMMAND --help' describes a "
        "command.\n",
        QUEUE_LOGIN_MAX_FAILURES, QUEUE_LOGIN_WINDOW / 60,
        QUEUE_LOGIN_LOCK_FIRST / 60, QUEUE_LOGIN_LOCK_MAX / 3600);
}

/* SIGBUS: a page of the mapped spool lies beyond the end of data.mdb (cut
 * short, or damaged): say so (async-signal-safe) and exit 65. */
static void on_bus_error(int sig)
{
    static const char msg[] =
        "sluice: bus error reading the spool: data.mdb is shorter than its "
        "pages or damaged; 'sluice spool check' shows where\n";
    (void)sig;
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(TOOL_EX_DATAERR);
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus_error;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);

    struct tool_ctx ctx = { .spool = getenv("SLUICE_SPOOL") };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--json"))
            ctx.json = true;
        else if (!strcmp(argv[i], "--spool") && i + 1 < argc)
            ctx.spool = argv[++i];
        else if (!strcmp(argv[i], "--as") && i + 1 < argc && *argv[i + 1])
            ctx.as_user = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc &&
                 *argv[i + 1])
            ctx.config = argv[++i];
        else if (!strcmp(argv[i], "--bootstrap"))
            ctx.bootstrap = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
            usage(stderr);
            return TOOL_EX_USAGE;
        }
    }
    if (!ctx.spool || !*ctx.spool)
        ctx.spool = "./sluice-data";
    if (ctx.bootstrap && ctx.as_user) {
        fprintf(stderr, "sluice: --bootstrap acts without a user: not with "
                "--as\n");
        return TOOL_EX_USAGE;
    }
    /* $SLUICE_USER: the default of --as, below an API key */
    const char *key = getenv("SLUICE_API_KEY"), *env_user;
    if (!ctx.as_user && !(key && *key) &&
        (env_user = getenv("SLUICE_USER")) && *env_user)
        ctx.as_user = env_user;
    if (i >= argc) {
        usage(stderr);
        return TOOL_EX_USAGE;
    }
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (!strcmp(argv[i], commands[c].name)) {
            char *hv[4];
            int hc = help_argv(argc - i, argv + i, hv);
            if (hc)
                return commands[c].run(&ctx, hc, hv);
            int rc = tool_cmd_gate(&ctx, &commands[c], argc - i - 1,
                                   argv + i + 1);
            return rc ? rc : commands[c].run(&ctx, argc - i, argv + i);
        }
    fprintf(stderr, "sluice: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return TOOL_EX_USAGE;
}
