/*
 * scheduler.c - the engine's heartbeat: claim due deliveries and file them
 *   under their destinations; apply the spool's pause list, accounts and
 *   keys as they change; reload, drain and stop.
 *
 * DESCRIPTION
 *   A 10 ms timer claims while fewer than max_inflight deliveries are held
 *   and the composed bodies held are under max_inflight_bytes (body.c).
 *   Each claim becomes an item with a reference to its body (body.c: the
 *   recipients of one message share one, a campaign recipient has its
 *   own) and is filed under its destination (dest.c), which has the body
 *   composed when it gets near it.  A delivery past its maximum age, of a
 *   held account, a paused or cancelled campaign, or a paused or stopped
 *   destination ends or goes back to the spool at claim time
 *   (engine_record(), outcome.c).
 *
 *   While the spool cannot take outcomes (full), nothing is claimed
 *   (outcome.c holds what is in flight).
 *
 * DIAGNOSTICS
 *   A failed claim is reported on stderr and tried again next tick.
 *   Claims and counter reads failing as a damaged spool fails, again and
 *   again with no success between, stop the engine with exit 65
 *   (engine_spool_result) rather than retrying forever.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compose.h"
#include "classify.h"
#include "engine.h"
#include "incident.h"
#include "signer.h"
#include "queue_admin.h"
#include "queue_series.h"
#include "tls.h"
#include "webhook.h"


/* ---------------------------------------------------------------- claims */

/* Turn one claim into an item filed under its destination; or end it, or
 * give it back to the spool, with one outcome.  In stages, each module
 * once: its age (here), the live controls (controls.c, accounts.c), its
 * body (body.c), its destination (dest.c), then the outcome of a claim
 * that stopped on the way (outcome.c). */
static struct dest *file_claim(struct engine *e, const struct queue_claim *c)
{
    size_t len = strlen(c->rcpt);
    struct item *it = malloc(sizeof *it + len + 1);
    if (!it)
        return NULL;
    memset(it, 0, sizeof *it);
    it->id = c->id;
    it->campaign = c->campaign;
    it->ref = c->ref;
    it->account = c->account;
    it->attempts = c->attempts;
    it->created = c->created;
    memcpy(it->rcpt, c->rcpt, len + 1);
    outcome_claimed(e, 1);

    struct queue_outcome o;
    struct dest *d = NULL;
    bool domain_paused = false, stop = false, nomem = false;
    if (engine_now() >= c->created + e->cfg.max_age) {
        o = (struct queue_outcome){ .delivery = c->id,
                                    .type = QUEUE_EV_EXPIRED,
                                    .enhanced = "4.4.7",
                                    .category = QUEUE_CAT_EXPIRED,
                                    .text = "maximum age reached before "
                                            "delivery" };
        stop = true;
    } else {
        stop = controls_claim(e, c, it, &o, &domain_paused);
    }
    if (!stop)
        nomem = !body_attach(e, c, it);
    if (!stop && !nomem) {
        int rc = dest_file(e, c, it, domain_paused, &d, &o);
        stop = rc == 0;
        nomem = rc < 0;
    }
    if (stop)
        engine_record(e, &it, 1, &o);
    else if (nomem)
        outcome_release(e, it);
    return d;
}

static void apply_admin(struct engine *e);

/* Claims of a held account: an enable may have made this mail due before
 * the once-a-second look saw it; look now, rather than park it again. */
static void recheck_held(struct engine *e, const struct queue_claim *c,
                         int n)
{
    for (int i = 0; i < n; i++)
        if (c[i].account && accounts_held(e, c[i].account)) {
            apply_admin(e);
            return;
        }
}

/* The spool's damage budget is spent: drain to exit code. */
static void spool_stop(struct engine *e, int code)
{
    engine_set_exit(e, code);
    engine_drain(e);
}

/* Claim what is due, up to the in-flight limits (count, and bytes of the
 * bodies composed for what was claimed).  A claim that fails is
 * counted towards the spool's error budget (engine_spool_result). */
static void claim_some(struct engine *e)
{
    static struct queue_claim claims[1024];
    while (!e->run.draining && engine_spool_writable(e) &&
           engine_inflight(e) < e->cfg.max_inflight && !body_over_budget(e)) {
        size_t want = e->cfg.max_inflight - engine_inflight(e);
        if (want > e->cfg.claim_batch)
            want = e->cfg.claim_batch;
        if (want > 1024)
            want = 1024;
        int n = queue_claim(e->q, engine_now(), claims, want);
        int stop = engine_spool_result(e, ENGINE_SPOOL_CLAIM, n < 0 ? n : 0);
        if (stop)
            spool_stop(e, stop);
        if (n < 0)
            break;
        recheck_held(e, claims, n);
        for (int i = 0; i < n; i++) {
            struct dest *d = file_claim(e, &claims[i]);
            if (d)
                dest_kick(e, d);
        }
        if ((size_t)n < want)
            break;
    }
}

/* ------------------------------------------------------------------ tick */

static void print_progress(struct engine *e, bool final)
{
    static uint64_t last_ms, last_done;
    uint64_t now = engine_now_ms();
    uint64_t done = e->st.delivered + e->st.bounced + e->st.expired +
                    e->st.suppressed + e->st.cancelled;
    if (!final && now - last_ms < 1000)
        return;
    double rate = last_ms ? (double)(done - last_done) * 1000.0 /
                            (double)(now - last_ms) : 0;
    last_ms = now;
    last_done = done;
    fprintf(stderr, "%sdelivered %llu  deferred %llu  bounced %llu  expired "
            "%llu  | %6.0f msg/s | sessions %u  in flight %zu%s",
            isatty(2) ? "\r" : "", (unsigned long long)e->st.delivered,
            (unsigned long long)e->st.deferred,
            (unsigned long long)e->st.bounced,
            (unsigned long long)e->st.expired, rate, dest_sessions(e), engine_inflight(e),
            isatty(2) && !final ? "   " : "\n");
}

/* Accounts, sending domains or keys changed in the spool (`sluice account`,
 * `sluice domain`): load them again (a disabled account's waiting mail
 * goes back to the spool in accounts_load()).  A DKIM key's retire date
 * passing changes nothing in the spool: the keys are loaded again then
 * too, and the log names the retired key (signer_compose() already
 * stopped using it at that second).  The log says how many keys sign
 * when that changed.  A key that cannot be loaded keeps the running keys
 * (and says why). */
static void apply_admin(struct engine *e)
{
    uint64_t gen;
    int64_t now = (int64_t)time(NULL);
    int64_t due = signer_first_retire(e->signer);
    bool retired = due > e->run.dkim_retired_upto && now >= due;
    bool changed = !queue_admin_gen(e->q, &gen) && gen != e->run.admin_gen;
    if (!changed && !retired)
        return;
    if (retired) {
        signer_say_retired(e->signer, e->run.dkim_retired_upto, now);
        e->run.dkim_retired_upto = now;
    }
    if (changed) {
        e->run.admin_gen = gen;
        accounts_load(e);
        live_load(e);    /* `sluice limits` changes the admin generation */
        limits_load(e);
    }
    struct signer *sg;
    char err[600];
    if (signer_build(&e->cfg, e->q, &sg, err, sizeof err)) {
        fprintf(stderr, "sluiced: keeping the running DKIM keys: %s\n", err);
        return;
    }
    bool same = signer_nkeys(sg) == signer_nkeys(e->signer) &&
                signer_ndomains(sg) == signer_ndomains(e->signer);
    signer_unref(e->signer);
    e->signer = sg;
    if (retired || !same)
        fprintf(stderr, "sluiced: DKIM keys of the spool loaded again: %zu "
                "DKIM keys for %zu domains\n", signer_nkeys(e->signer),
                signer_ndomains(e->signer));
}

void engine_reload(struct engine *e)
{
    struct config n;
    char err[600];
    if (config_load(e->cfg.path, &n, err, sizeof err)) {
        fprintf(stderr, "sluiced: reload refused, keeping the running "
                        "configuration: %s\n", err);
        return;
    }
    /* the spool cannot move under a running engine */
    free(n.spool);
    n.spool = e->cfg.spool;
    struct signer *sg;
    if (signer_build(&n, e->q, &sg, err, sizeof err)) {
        fprintf(stderr, "sluiced: reload refused, keeping the running "
                        "configuration and keys: %s\n", err);
        n.spool = NULL;
        config_free(&n);
        return;
    }
    signer_unref(e->signer); /* batches in flight keep the old one */
    e->signer = sg;
    e->cfg.spool = NULL;
    struct config old = e->cfg;
    memcpy(&e->cfg, &n, sizeof n); /* timeout_ms keeps its address */
    classify_use_rules(e->cfg.bounce_rules); /* before the old set goes */
    live_rebuild(e);   /* live limits over the new sections */
    dest_refresh_policies(e);
    site_refresh_policies(e);
    limits_load(e);
    webhooks_reload(e); /* copies what it keeps of the configuration */
    config_free(&old);
    fprintf(stderr, "sluiced: configuration reloaded from %s (%zu DKIM keys "
                    "for %zu domains)\n", e->cfg.path,
            signer_nkeys(e->signer), signer_ndomains(e->signer));
}

void engine_set_exit(struct engine *e, int code)
{
    e->run.exit_code = code;
}

static void stop_loop(struct engine *e)
{
    uv_timer_stop(&e->run.tick);
    uv_stop(e->loop);
}

static void on_tick(uv_timer_t *t)
{
    struct engine *e = t->data;
    static uint64_t last_empty_check;

    int stop = outcome_tick(e);
    if (stop)
        spool_stop(e, stop);

    if (e->run.progress)
        print_progress(e, false);
    eventlog_pump(e, false);
    webhooks_pump(e);
    static uint64_t last_status;
    if (engine_now_ms() - last_status >= 1000) {
        last_status = engine_now_ms();
        controls_apply(e);
        apply_admin(e);
        if (live_tick(e))  /* a live limit ended */
            limits_load(e);
        incidents_tick(e);
        status_write(e);
    }

    if (e->run.draining) {
        if (!e->run.drain_abort && engine_now_ms() >= e->run.drain_deadline_ms) {
            e->run.drain_abort = true;
            dest_abort_all(e);
        }
        if (dest_sessions(e) == 0 && engine_pending_outcomes(e) == 0 && !body_composing(e) &&
            outcome_drained(e))
            stop_loop(e);
        return;
    }
    claim_some(e);
    if (e->run.exit_when_empty && engine_inflight(e) == 0 && engine_pending_outcomes(e) == 0 &&
        engine_now_ms() - last_empty_check >= 200) {
        struct queue_counts c;
        last_empty_check = engine_now_ms();
        int err = queue_counts_total(e->q, &c);
        if ((stop = engine_spool_result(e, ENGINE_SPOOL_COUNTS, err)))
            spool_stop(e, stop);
        if (!err && c.queued == 0) {
            e->run.draining = true;
            e->run.drain_deadline_ms = engine_now_ms() + e->cfg.drain_timeout_ms;
            dest_quit_idle(e);
        }
    }
}

/* Begin the orderly stop: no new sessions, in-flight ones finish. */
void engine_drain(struct engine *e)
{
    if (e->run.draining)
        return;
    e->run.draining = true;
    e->run.drain_deadline_ms = engine_now_ms() + e->cfg.drain_timeout_ms;
    dest_quit_idle(e);
}

int engine_start(struct engine *e)
{
    struct queue_options qo = {
        .flags = QUEUE_OPEN_CREATE | QUEUE_OPEN_CLAIM |
                 (e->cfg.nosync ? QUEUE_OPEN_NOSYNC : 0) |
                 (e->run.create ? QUEUE_OPEN_RECREATE : 0),
        .group_ops = e->cfg.group_ops, .group_ms = e->cfg.group_ms,
        .map_max = e->cfg.map_max, .retry_steps = e->cfg.retry_steps,
        .max_age = e->cfg.max_age, .trim_ms = 50,
        .soft_bounce_limit = e->cfg.soft_bounce_limit,
        .soft_bounce_days = e->cfg.soft_bounce_days,
    };
    classify_use_rules(e->cfg.bounce_rules);
    memcpy(qo.retry, e->cfg.retry, sizeof qo.retry);
    int err = queue_open(&e->q, e->cfg.spool, &qo);
    if (err) {
        fprintf(stderr, "sluiced: spool %s: %s\n  %s\n", e->cfg.spool,
                engine_strerror(err), queue_last_detail());
        return err;
    }
    /* how long the time series keep their buckets (queue_series.h) */
    queue_series_configure(e->q, e->cfg.report_hourly_days,
                           e->cfg.report_daily_days);
    if ((err = queue_completer_new(e->loop, &e->cmp)))
        return err;
    struct dns_config dc;
    dns_config_init(&dc);
    dc.servers = e->cfg.dns_servers;
    dc.timeout_ms = e->cfg.dns_timeout_ms;
    dc.tries = e->cfg.dns_tries;
    dc.port = e->cfg.smtp_port;
    if ((err = dns_new(e->loop, &dc, &e->dns))) {
        fprintf(stderr, "sluiced: DNS: %s\n", engine_strerror(err));
        return err;
    }
    char msg[256];
    if (!(e->ssl = tls_client_ctx(e->cfg.tls_ca_file, msg, sizeof msg)))
        fprintf(stderr, "sluiced: TLS disabled: %s\n", msg);
    e->run.started_ms = engine_now_ms();
    outcome_init(e);
    queue_admin_gen(e->q, &e->run.admin_gen);
    accounts_load(e);
    live_load(e);
    limits_load(e);
    struct signer *sg;
    char kerr[600];
    if (signer_build(&e->cfg, e->q, &sg, kerr, sizeof kerr)) {
        fprintf(stderr, "sluiced: %s\n", kerr);
        return ENGINE_E_CONFIG;
    }
    signer_unref(e->signer);
    e->signer = sg;
    limits_init(e);
    controls_apply(e);
    body_init(e);
    uv_timer_init(e->loop, &e->run.tick);
    e->run.tick.data = e;
    uv_timer_start(&e->run.tick, on_tick, 0, 10);
    return 0;
}
