/*
 * tool_campaign.h - what the files of `sluice campaign` share.
 *
 * DESCRIPTION
 *   cmd_campaign.c holds the command table and the record commands
 *   (create, update, pause, resume, cancel); cmd_campaign_show.c the views
 *   (show, list); cmd_campaign_send.c
 *   the bulk enqueue of `send`; cmd_campaign_render.c the template checks
 *   and the commands that render a message (preview, test).  Every command
 *   opens the spool as an identity, finds the campaign (by id, or by name
 *   in an account), and checks the role on the campaign's account.
 */
#ifndef SLUICE_TOOL_CAMPAIGN_H
#define SLUICE_TOOL_CAMPAIGN_H

#include <stdbool.h>
#include <stdint.h>

#include "campaign_msg.h"
#include "queue_campaign.h"
#include "render.h"
#include "tool_admin.h"

#define CAMP_P "sluice campaign"

/* The engine's settings a message depends on (campaign_msg_settings():
 * unsubscribe_host, else ehlo_hostname; bounce_domain; feedback_sender),
 * from sluiced.conf read with the engine's parser: a command's own
 * --config FILE, else the global --config, $SLUICE_CONFIG or
 * /etc/sluice/sluiced.conf (tool_config_load).  Without a file, which
 * sluiced cannot run without, the unsubscribe host and bounce domain are
 * the From domain and the Feedback-ID sender "sluice". */
struct camp_render_cfg {
    char unsub_host[300];                /* "": the From domain */
    char bounce_domain[256];             /* "": the From domain */
    char feedback_sender[72];            /* "": "sluice" */
};

/* Load cfg (path: a command's --config, NULL: the global one); 0 or an
 * exit code (78 for a file that does not load or a value too long) after
 * printing why.  cfg holds copies: nothing to free. */
int camp_render_cfg_load(struct tool_ctx *ctx, const char *prog,
                         const char *path, struct camp_render_cfg *cfg);

/* Compile c with its account's header and footer and the spool's token
 * secret (campaign_msg_compile, as sluiced does).  err gets the reason
 * ("html: line 3, column 7: ...").  Returns 0 or a render/queue code. */
int camp_compile(struct queue *q, const struct queue_campaign *c,
                 const struct queue_account *a,
                 const struct camp_render_cfg *cfg, struct render_tpl **out,
                 char *err, size_t errlen);

/* The lower-case domain of the address in a From value ("Name <a@d>",
 * "<a@d>" or "a@d") into out; false if there is none. */
bool camp_from_domain(const char *from, char *out, size_t cap);

/* Refuse (77, audited) unless the account is enabled and c's From domain
 * is verified for it. */
int camp_may_send(struct tool_ctx *ctx, struct queue *q, int act,
                  const struct queue_campaign *c,
                  const struct queue_account *a);

/* Everything a command on one campaign starts with: the spool open as an
 * identity, the campaign (spec: an id, or a name in account acct or the
 * default account) with its templates, its account, and act checked on
 * it.  Returns 0 or an exit code (then nothing is left open). */
struct camp_cmd {
    struct queue *q;
    struct queue_campaign c;
    struct queue_account *a;
    int role;
};
int camp_begin(struct tool_ctx *ctx, const char *prog, int act,
               const char *spec, const char *acct, struct camp_cmd *cc);
void camp_end(struct camp_cmd *cc);

/* Object text for refusals and audit records: "campaign 7 (NAME)". */
const char *camp_object(const struct queue_campaign *c, char *buf,
                        size_t cap);

/* Subcommands in cmd_campaign_show.c, cmd_campaign_send.c and
 * cmd_campaign_render.c. */
int camp_cmd_show(struct tool_ctx *ctx, int argc, char **argv);
int camp_cmd_list(struct tool_ctx *ctx, int argc, char **argv);
int camp_cmd_send(struct tool_ctx *ctx, int argc, char **argv);
int camp_cmd_preview(struct tool_ctx *ctx, int argc, char **argv);
int camp_cmd_test(struct tool_ctx *ctx, int argc, char **argv);

#endif
