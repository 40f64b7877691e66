/*
 * tool_eta.h - `campaign show`'s ETA: sluiced's estimate (engine/eta.h)
 * with the tools' fallbacks for what sluiced has not described
 * (campaign_eta.c).
 */
#ifndef SLUICE_TOOL_ETA_H
#define SLUICE_TOOL_ETA_H

#include "eta.h"
#include "queue_campaign.h"
#include "tool_admin.h"

/* Estimate campaign c (whose settled state is state) from the live view
 * v (status_view_load, loaded before q was opened), the spool q and, for
 * what the live view does not cover, sluiced.conf as the tools read it.
 * 0, or a negative queue code.  Free out with eta_free(). */
int tool_campaign_eta(struct tool_ctx *ctx, struct queue *q,
                      const struct status_view *v,
                      const struct queue_campaign *c, int state,
                      struct eta *out);

#endif
