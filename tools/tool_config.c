/*
 * tool_config.c - the tools' one reader of sluiced.conf, and the part of it
 * every writable open needs: the audit trail's key and checkpoint file.
 *
 * DESCRIPTION
 *   The file is --config FILE, else $SLUICE_CONFIG (set to the empty
 *   string: no file), else /etc/sluice/sluiced.conf when it exists.  It
 *   is read with the engine's parser (config_load), so the tools and
 *   sluiced agree on every key and refuse the same mistakes, an audit key
 *   group or others may read among them.  Every handle the tools open for
 *   writing gets the key and the checkpoint (tool_open_spool), so each
 *   audit record they append is keyed and checkpointed as sluiced's are;
 *   `audit verify` and `spool check` use the key to check MACs.
 *
 * DIAGNOSTICS
 *   A file that does not load is reported with FILE:LINE and exits 78; a
 *   checkpoint line that cannot be written is reported on stderr (the
 *   change it follows is committed).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "tool_admin.h"

#define DEFAULT_CONFIG "/etc/sluice/sluiced.conf"

const char *tool_config_path(const struct tool_ctx *ctx)
{
    struct stat st;
    if (ctx->config)
        return ctx->config;
    const char *env = getenv("SLUICE_CONFIG");
    if (env)
        return *env ? env : NULL;
    return stat(DEFAULT_CONFIG, &st) ? NULL : DEFAULT_CONFIG;
}

int tool_config_load(const struct tool_ctx *ctx, const char *prog,
                     const char *path, struct config *cfg, bool *loaded)
{
    char err[600];
    *loaded = false;
    if (!path || !*path)
        path = tool_config_path(ctx);
    if (!path)
        return 0;
    if (strlen(path) >= 4096) {
        fprintf(stderr, "%s: --config: the file name is too long\n", prog);
        return TOOL_EX_USAGE;
    }
    if (config_load(path, cfg, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return TOOL_EX_CONFIG;
    }
    *loaded = true;
    return 0;
}

int tool_audit_conf(const struct tool_ctx *ctx, struct tool_audit_conf *a)
{
    struct config cfg;
    bool loaded;
    memset(a, 0, sizeof *a);
    int rc = tool_config_load(ctx, "sluice", NULL, &cfg, &loaded);
    if (rc || !loaded)
        return rc;
    snprintf(a->config, sizeof a->config, "%s", cfg.path ? cfg.path : "");
    if (cfg.audit_checkpoint &&
        strlen(cfg.audit_checkpoint) >= sizeof a->checkpoint) {
        fprintf(stderr, "sluice: %s: audit_checkpoint is too long\n",
                a->config);
        rc = TOOL_EX_CONFIG;
    } else if (cfg.audit_checkpoint) {
        memcpy(a->checkpoint, cfg.audit_checkpoint,
               strlen(cfg.audit_checkpoint) + 1);
    }
    if (!rc && cfg.audit_key) {
        if (queue_audit_key_load(cfg.audit_key, a->key)) {
            fprintf(stderr, "sluice: %s\n", queue_last_detail());
            rc = TOOL_EX_CONFIG;
        } else {
            a->keyed = true;
        }
    }
    config_free(&cfg);
    return rc;
}

/* A checkpoint line could not be written: say so, the change stands. */
static void on_warn(void *arg, const char *text)
{
    (void)arg;
    fprintf(stderr, "sluice: warning: %s\n", text);
}

int tool_audit_setup(const struct tool_ctx *ctx, struct queue *q)
{
    struct tool_audit_conf *a = malloc(sizeof *a);
    if (!a)
        return TOOL_EX_OSERR;
    int rc = tool_audit_conf(ctx, a);
    if (!rc && (a->keyed || a->checkpoint[0])) {
        struct queue_audit_config qc = {
            .key = a->keyed ? a->key : NULL,
            .checkpoint = a->checkpoint[0] ? a->checkpoint : NULL,
            .warn = on_warn,
        };
        int err = queue_audit_configure(q, &qc);
        if (err) {
            fprintf(stderr, "sluice: audit: %s\n", queue_strerror(err));
            rc = tool_exit_for(err);
        }
    }
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
    return rc;
}
