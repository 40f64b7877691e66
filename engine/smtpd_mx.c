/*
 * smtpd_mx.c - the SMTP listener as the bounce domain's MX: reports to
 * the VERP addresses of bounce_domain and to feedback_address, taken from
 * anyone without AUTH and fed to the feedback path (feedback.h).
 *
 * DESCRIPTION
 *   With bounce_domain set, a client that has not authenticated (and is
 *   not a relay client) may give MAIL, but each RCPT must be either
 *   b-TOKEN@bounce_domain whose token verifies with the spool's token
 *   secret, or feedback_address; any other recipient is 550 5.7.1 (no
 *   relay), a token of our form that does not verify 550 5.7.1 too.  So
 *   is unsub-TOKEN@ any domain, the mailto of campaign mail's
 *   List-Unsubscribe (when that domain's mail comes here), when the
 *   token verifies.  The message (under the same DATA rules as all mail)
 *   unsubscribes each unsub- recipient's contact (engine_unsubscribe:
 *   suppression and "unsubscribed" event, source "mailto"), and goes
 *   whole, once, to feedback_ingest() when it has any other recipient;
 *   both run on the worker pool and record durably (bounced event,
 *   suppression, complaint, or the quarantine); the 250 comes after they
 *   returned 0, 451 4.3.0 when they could not keep it.  The feedback path is its own authority (the token's MAC):
 *   no authorize callback.  Bounce rules are those of bounce_rules as
 *   read at start (a reload does not change them here).
 *
 * DIAGNOSTICS
 *   A report that could not be kept is logged on stderr with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bounce_rules.h"
#include "feedback.h"
#include "queue_campaign.h"
#include "render.h"
#include "smtpd_int.h"

#define UNSUB_PREFIX "unsub-"
#define UNSUB_TOKEN_MAX 128

struct mx_job {
    uv_work_t w;
    struct smtpd_conn *c;
    struct engine *e;
    char **unsub;          /* tokens of the unsub- recipients */
    unsigned nunsub;
    bool report;           /* another recipient: a report to ingest */
    int unsub_rc;
    struct feedback_ctx ctx;
    char via[QUEUE_MAX_AUDIT_VIA + 1];
    char source[80];
    char *msg;
    size_t len, cap;
    int rc;
    struct feedback_result r;
};

int smtpd_mx_start(struct smtpd *s)
{
    struct engine *e = s->e;
    char err[512];
    if (!e->cfg.bounce_domain)
        return 0;
    int rc = queue_token_secret(e->q, s->secret);
    if (rc) {
        fprintf(stderr, "sluiced: smtp: the spool's token secret: %s\n",
                queue_strerror(rc));
        return rc;
    }
    if (e->cfg.bounce_rules_path &&
        bounce_rules_load(&s->rules, e->cfg.bounce_rules_path, err,
                          sizeof err)) {
        fprintf(stderr, "sluiced: smtp: bounce_rules: %s\n", err);
        return ENGINE_E_CONFIG;
    }
    snprintf(s->qdir, sizeof s->qdir, "%s/quarantine", e->cfg.spool);
    s->mx = true;
    return 0;
}

void smtpd_mx_free(struct smtpd *s)
{
    bounce_rules_free(s->rules);
    s->rules = NULL;
    explicit_bzero(s->secret, sizeof s->secret);
}

/* The token of an unsub-TOKEN@domain address into tok; false if addr
 * has none. */
static bool unsub_token(const char *addr, char tok[UNSUB_TOKEN_MAX + 1])
{
    const char *at = strrchr(addr, '@');
    size_t pl = sizeof UNSUB_PREFIX - 1;
    if (!at || strncasecmp(addr, UNSUB_PREFIX, pl))
        return false;
    size_t n = (size_t)(at - addr) - pl;
    if (n == 0 || n > UNSUB_TOKEN_MAX)
        return false;
    memcpy(tok, addr + pl, n);
    tok[n] = 0;
    return true;
}

int smtpd_mx_rcpt(struct smtpd_conn *c, const char *addr)
{
    struct smtpd *s = c->srv;
    const struct config *cfg = &s->e->cfg;
    const char *at = strrchr(addr, '@');
    uint64_t delivery, campaign;
    if (!s->mx || !at || !cfg->bounce_domain)   /* (a reload dropped it) */
        return SMTPD_MX_NOT_OURS;
    if (cfg->feedback_address && !strcasecmp(addr, cfg->feedback_address))
        return SMTPD_MX_OURS;
    char tok[UNSUB_TOKEN_MAX + 1];
    if (unsub_token(addr, tok)) {
        uint32_t account;
        uint64_t contact;
        int rc = render_unsub_decode(tok, s->secret, sizeof s->secret,
                                     &account, &campaign, &contact);
        if (rc == RENDER_E_FORGED)
            return SMTPD_MX_FORGED;
        return rc == 0 ? SMTPD_MX_OURS : SMTPD_MX_NOT_OURS;
    }
    if (strcasecmp(at + 1, cfg->bounce_domain))
        return SMTPD_MX_NOT_OURS;
    int rc = render_verp_decode(addr, s->secret, sizeof s->secret, &delivery,
                                &campaign);
    if (rc == RENDER_E_FORGED)
        return SMTPD_MX_FORGED;
    return rc == 0 ? SMTPD_MX_OURS : SMTPD_MX_NOT_OURS;
}

/* Free a job and what it holds. */
static void mx_job_free(struct mx_job *j)
{
    for (unsigned i = 0; i < j->nunsub; i++)
        free(j->unsub[i]);
    free(j->unsub);
    free(j->msg);
    free(j);
}

static void mx_work(uv_work_t *w)
{
    struct mx_job *j = w->data;
    for (unsigned i = 0; i < j->nunsub && !j->unsub_rc; i++)
        j->unsub_rc = engine_unsubscribe(j->e, j->unsub[i], "mailto",
                                         j->via);
    if (!j->unsub_rc && j->report)
        j->rc = feedback_ingest(&j->ctx, j->source, j->msg, j->len, &j->r);
}

static void mx_done(uv_work_t *w, int status)
{
    struct mx_job *j = w->data;
    struct smtpd_conn *c = j->c;
    if (status == 0 && j->unsub_rc)
        fprintf(stderr, "sluiced: smtp: an unsubscribe from %s could not be "
                "kept: %s\n", c->peer_text, engine_strerror(j->unsub_rc));
    else if (status == 0 && j->rc)
        fprintf(stderr, "sluiced: smtp: a report from %s could not be kept: "
                "%s\n", c->peer_text, j->r.error);
    if (!c->closing) {
        if (status == 0 && j->rc == 0 && j->unsub_rc == 0 && !j->report)
            smtpd_reply(c, "250 2.0.0 Ok: unsubscribed");
        else if (status == 0 && j->rc == 0 && j->unsub_rc == 0)
            smtpd_reply(c, "250 2.0.0 Ok: report %s", j->r.outcome
                                                     ? j->r.outcome : "taken");
        else
            smtpd_reply(c, "451 4.3.0 Error: the report could not be kept; "
                        "try again later");
        smtpd_txn_reset(c);
        smtpd_enter(c, SS_COMMAND);
        smtpd_pump(c);
    }
    c->srv->data_bytes -= j->cap;
    mx_job_free(j);
    smtpd_unref(c);
}

void smtpd_mx_submit(struct smtpd_conn *c)
{
    struct smtpd *s = c->srv;
    struct mx_job *j = calloc(1, sizeof *j);
    if (!j) {
        smtpd_reply(c, "451 4.3.0 Error: out of memory");
        smtpd_txn_reset(c);
        return;
    }
    j->c = c;
    j->e = s->e;
    j->w.data = j;
    if (c->nrcpt && !(j->unsub = calloc(c->nrcpt, sizeof *j->unsub))) {
        free(j);
        smtpd_reply(c, "451 4.3.0 Error: out of memory");
        smtpd_txn_reset(c);
        return;
    }
    for (unsigned i = 0; i < c->nrcpt; i++) {
        char tok[UNSUB_TOKEN_MAX + 1];
        if (!unsub_token(c->rcpts[i], tok)) {
            j->report = true;
        } else if (!(j->unsub[j->nunsub++] = strdup(tok))) {
            mx_job_free(j);
            smtpd_reply(c, "451 4.3.0 Error: out of memory");
            smtpd_txn_reset(c);
            return;
        }
    }
    j->msg = c->msg;
    j->len = c->msglen;
    j->cap = c->msgcap;   /* counted in data_bytes until the job ends */
    c->msg = NULL;
    c->msglen = c->msgcap = 0;
    snprintf(j->via, sizeof j->via, "smtp:%s", c->peer_text);
    snprintf(j->source, sizeof j->source, "smtp:%s", c->peer_text);
    j->ctx = (struct feedback_ctx){
        .q = s->e->q, .rules = s->rules, .quarantine_dir = s->qdir,
        .by = { "sluiced", j->via, QUEUE_ROLE_NONE, 0 } };
    if (uv_queue_work(s->e->loop, &j->w, mx_work, mx_done)) {
        s->data_bytes -= j->cap;
        mx_job_free(j);
        smtpd_reply(c, "451 4.3.0 Error: try again later");
        smtpd_txn_reset(c);
        return;
    }
    smtpd_ref(c);
    smtpd_enter(c, SS_COMMIT);
}
