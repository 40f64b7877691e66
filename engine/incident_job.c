/*
 * incident_job.c - the incident watcher's worker side: one job at a time
 * opens or resolves an incident in the spool, pauses what the rule says
 * and sends the alerts.
 *
 * DESCRIPTION
 *   Opening: the events of the rule's window are read back from the spool
 *   (at most SCAN_MAX) and those of the scope summed into a root cause:
 *   the top replies with their variable parts folded (addresses to
 *   <addr>, long hex or digit runs to <id>, numbers to N), the MX hosts
 *   and recipient domains, the first and last occurrence and a few
 *   sample deliveries (none for the engine's and webhooks' gauges), and
 *   a gauge's own numbers (signals_detail()).  The record and an
 *   `incident` event commit
 *   together (queue_incident_change), so webhooks with events = incident
 *   and the event log see it.  A rule with a pause action writes it into
 *   the record as pending; then incident_act.c takes it and marks it
 *   taken (so a crash in between leaves it pending, and the next start
 *   takes it).  Then the alerts: the alert_command gets the incident's
 *   JSON on stdin, and a mail goes to the account's alert_to addresses
 *   through the spool like any mail.  A resolve sets the state, appends
 *   its event and alerts again.  The other jobs (escalation, probes,
 *   verdicts) are incident_act.c's.
 *
 * DIAGNOSTICS
 *   A spool failure ends the job with its code (reported by incident.c);
 *   a failed action or alert is written into the timeline and stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "incident_int.h"
#include "incident_rec.h"
#include "queue_admin.h"
#include "queue_campaign.h"

#define SCAN_MAX 200000      /* events read for one root cause */
#define TOP_MAX 64           /* distinct replies, MX hosts, domains kept */
#define TOP_SHOWN 5
#define SAMPLES 5
#define CMD_WAIT_S 30        /* the alert command's time */

/* A value and how often it was seen. */
struct top {
    char s[160];
    uint64_t n;
};

struct cause {
    struct inc_job *j;
    struct top replies[TOP_MAX], mx[TOP_MAX], domains[TOP_MAX];
    size_t nreplies, nmx, ndomains;
    int64_t first_ms, last_ms;
    json_t *samples;
    uint64_t seen, matched;
};

/* Count s in t (the first TOP_MAX distinct values). */
static void top_add(struct top *t, size_t *n, const char *s)
{
    if (!*s)
        return;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(t[i].s, s)) {
            t[i].n++;
            return;
        }
    if (*n == TOP_MAX)
        return;
    size_t len = strnlen(s, sizeof t[*n].s - 1); /* cut to the cap */
    memcpy(t[*n].s, s, len);
    t[*n].s[len] = 0;
    t[(*n)++].n = 1;
}

/* qsort: most seen first. */
static int by_count(const void *a, const void *b)
{
    const struct top *x = a, *y = b;
    return x->n == y->n ? strcmp(x->s, y->s) : x->n > y->n ? -1 : 1;
}

/* The top of t as [{value,count}]. */
static json_t *top_json(struct top *t, size_t n, const char *key)
{
    json_t *a = json_array();
    qsort(t, n, sizeof *t, by_count);
    for (size_t i = 0; i < n && i < TOP_SHOWN; i++)
        json_array_append_new(a, json_pack("{s:s,s:I}", key, t[i].s, "count",
                                           (json_int_t)t[i].n));
    return a;
}

/* Whether c is part of an address or an id token. */
static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
           c == '+' || c == '=' || c == '@';
}

/* A reply with its variable parts folded, into out. */
static void fold_reply(int code, const char *enh, const char *text,
                       char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%d %s%s", code, enh,
                                *enh ? " " : "");
    const char *p = text;
    if (o >= len)
        return;
    while (*p && o + 1 < len) {
        if (!word_char(*p)) {
            out[o++] = *p++;
            continue;
        }
        const char *w = p;
        bool at = false, digit = false, alpha = false;
        size_t hex = 0;
        while (word_char(*p)) {
            at |= *p == '@';
            digit |= *p >= '0' && *p <= '9';
            alpha |= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
            hex += (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                   (*p >= 'A' && *p <= 'F');
            p++;
        }
        size_t wl = (size_t)(p - w);
        const char *rep = NULL;
        if (at)
            rep = "<addr>";
        else if (digit && wl >= 8 && (hex == wl || !alpha))
            rep = "<id>";
        else if (digit && !alpha && !memchr(w, '.', wl))
            rep = "N";
        if (rep) {
            size_t rl = strlen(rep);
            if (o + rl >= len)
                break;
            memcpy(out + o, rep, rl);
            o += rl;
        } else {
            size_t k = wl < len - 1 - o ? wl : len - 1 - o;
            memcpy(out + o, w, k);
            o += k;
        }
    }
    out[o < len ? o : len - 1] = 0;
}

/* The event's recipient domain. */
static const char *rcpt_domain(const struct queue_event *ev)
{
    const char *at = strrchr(ev->rcpt, '@');
    return at ? at + 1 : ev->rcpt;
}

/* bsearch/qsort over the site's domains. */
static int domain_cmp(const void *a, const void *b)
{
    return strcasecmp(a, b);
}

/* Whether ev belongs to the job's scope.  A site's events are those of
 * the domains sluiced routes to it (copied from its dests when the job
 * started); a site with no dests known (sluiced restarted and has not
 * routed to it yet) falls back to its name: the recipient's domain, or a
 * part of the MX host. */
static bool in_scope(const struct inc_job *j, const struct queue_event *ev)
{
    char n[SIGNALS_SCOPE_NAME];
    switch (j->scope_kind) {
    case ALERT_SCOPE_ACCOUNT:
        snprintf(n, sizeof n, "%u", ev->account);
        return !strcmp(n, j->scope);
    case ALERT_SCOPE_CAMPAIGN:
        return ev->campaign == j->campaign;
    default:
        if (j->nsite_domains) {
            char d[256];
            snprintf(d, sizeof d, "%.255s", rcpt_domain(ev));
            return bsearch(d, j->site_domains, j->nsite_domains,
                           sizeof *j->site_domains, domain_cmp) != NULL;
        }
        return !strcasecmp(rcpt_domain(ev), j->scope) ||
               (ev->mx[0] && strstr(ev->mx, j->scope));
    }
}

/* queue_events_from(): one event of the window. */
static int cause_one(void *arg, const struct queue_event *ev)
{
    struct cause *c = arg;
    bool wanted = c->j->rule.signal == ALERT_COMPLAINT_RATE
                  ? ev->type == QUEUE_EV_COMPLAINT
                  : ev->type == QUEUE_EV_BOUNCED ||
                    ev->type == QUEUE_EV_DEFERRED;
    c->seen++;
    if (!wanted || !in_scope(c->j, ev))
        return 0;
    char reply[160];
    c->matched++;
    fold_reply(ev->code, ev->enhanced, ev->text, reply, sizeof reply);
    top_add(c->replies, &c->nreplies, reply);
    top_add(c->mx, &c->nmx, ev->mx);
    top_add(c->domains, &c->ndomains, rcpt_domain(ev));
    if (!c->first_ms)
        c->first_ms = ev->time_ms;
    c->last_ms = ev->time_ms;
    if (json_array_size(c->samples) < SAMPLES)
        json_array_append_new(c->samples, json_pack(
            "{s:I,s:s,s:s,s:i,s:s,s:s}", "delivery",
            (json_int_t)ev->delivery, "rcpt", ev->rcpt, "type",
            queue_event_name(ev->type), "code", ev->code, "mx", ev->mx,
            "reply", ev->text));
    return 0;
}

/* queue_events_from(): the time of one event. */
static int probe(void *arg, const struct queue_event *ev)
{
    *(int64_t *)arg = ev->time_ms;
    return 1;
}

/* The root cause of j's window from the spool's events. */
static json_t *root_cause(struct inc_job *j)
{
    struct queue *q = j->e->q;
    struct cause *c = calloc(1, sizeof *c);
    uint64_t last = 0;
    if (!c || queue_events_last(q, &last)) {
        free(c);
        return json_object();
    }
    c->j = j;
    c->samples = json_array();
    int64_t since = (int64_t)engine_now_ms() - (int64_t)j->rule.window_s *
                    1000 - 60000;
    uint64_t lo = 1, hi = last + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t t = -1;
        if (queue_events_from(q, mid, 1, probe, &t) <= 0)
            break;
        if (t >= since)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (last - lo + 1 > SCAN_MAX)
        lo = last - SCAN_MAX + 1;
    /* the engine's and webhooks' gauges have no events of their own */
    if (j->scope_kind != ALERT_SCOPE_ENGINE &&
        j->scope_kind != ALERT_SCOPE_WEBHOOK)
        queue_events_from(q, lo, (size_t)(last - lo + 1), cause_one, c);
    json_t *r = json_pack("{s:o,s:o,s:o,s:I,s:I,s:o,s:I}",
                          "replies", top_json(c->replies, c->nreplies,
                                              "reply"),
                          "mx", top_json(c->mx, c->nmx, "host"),
                          "domains", top_json(c->domains, c->ndomains,
                                              "domain"),
                          "first_ms", (json_int_t)c->first_ms,
                          "last_ms", (json_int_t)c->last_ms,
                          "samples", c->samples,
                          "events", (json_int_t)c->matched);
    free(c);
    /* a gauge's own numbers: the site's backoff, the signing error, the
     * spool's bytes, the webhook's failing batch */
    if (r && j->detail)
        json_object_set(r, "detail", j->detail);
    return r;
}

/* The actor of sluiced's own changes. */
struct queue_actor inc_actor(const struct inc_job *j, char *via, size_t len)
{
    snprintf(via, len, "incident %llu", (unsigned long long)j->id);
    return (struct queue_actor){ .user = "sluiced", .via = via,
                                 .role = QUEUE_ROLE_OWNER,
                                 .account = j->account };
}

/* One timeline entry by sluiced, ed's what, text and extras (and an
 * event when etext is given). */
int inc_note_edit(struct inc_job *j, struct incident_edit *ed,
                  const char *action, const char *etext)
{
    char via[40];
    struct queue_actor by = inc_actor(j, via, sizeof via);
    ed->who = "sluiced";
    ed->now_ms = (int64_t)engine_now_ms();
    struct queue_incident_change c = {
        .id = j->id, .campaign = j->campaign, .edit = incident_rec_edit,
        .arg = ed, .action = action, .event_text = etext, .by = &by };
    return queue_incident_change(j->e->q, &c);
}

/* One timeline entry by sluiced (and an event when etext is given). */
int inc_note(struct inc_job *j, const char *what, const char *text,
             const char *action, const char *etext)
{
    struct incident_edit ed = { .what = what, .text = text };
    return inc_note_edit(j, &ed, action, etext);
}

/* Run the alert command with text on stdin (at most CMD_WAIT_S). */
static void alert_command(struct inc_job *j, const char *text)
{
    int fd[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char *argv[] = { j->alert_command, NULL };
    extern char **environ;
    if (pipe2(fd, O_CLOEXEC))
        return;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[0], 0);
    int rc = posix_spawn(&pid, j->alert_command, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[0]);
    if (rc) {
        close(fd[1]);
        fprintf(stderr, "sluiced: alert_command %s: %s\n", j->alert_command,
                strerror(rc));
        return;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd[1], text + off, len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd[1]);
    int st;
    for (int i = 0; i < CMD_WAIT_S * 10; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    fprintf(stderr, "sluiced: alert_command %s: killed after %d s\n",
            j->alert_command, CMD_WAIT_S);
}

/* The alert mail to the account's alert_to addresses. */
static void alert_mail(struct inc_job *j, const char *subject,
                       const char *text)
{
    char buf[1024], from[300];
    const char *rcpts[16];
    size_t n = 0;
    if (!j->alert_to)
        return;
    snprintf(buf, sizeof buf, "%s", j->alert_to);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", \t", &save); t && n < 16;
         t = strtok_r(NULL, ", \t", &save))
        rcpts[n++] = t;
    if (j->alert_from)
        snprintf(from, sizeof from, "%s", j->alert_from);
    else
        snprintf(from, sizeof from, "sluice-alerts@%s", j->hostname);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    size_t cap = strlen(text) * 2 + 2048;
    char *msg = malloc(cap);
    if (!msg)
        return;
    int o = snprintf(msg, cap, "From: %s\r\nTo: %s\r\nSubject: %s\r\n"
                     "Date: %s\r\nMessage-ID: <incident-%llu-%lld@%s>\r\n"
                     "MIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                     from, j->alert_to, subject, date,
                     (unsigned long long)j->id, (long long)now, j->hostname);
    /* CRLF lines, none over 998 bytes (a long reply is cut in two, not
     * inside a UTF-8 character) */
    size_t col = 0;
    for (const char *p = text; *p && (size_t)o + 5 < cap; p++) {
        if (*p == '\n' ||
            (col >= 990 && ((unsigned char)*p & 0xc0) != 0x80)) {
            msg[o++] = '\r';
            msg[o++] = '\n';
            col = 0;
            if (*p == '\n')
                continue;
        }
        msg[o++] = *p;
        col++;
    }
    msg[o++] = '\r';
    msg[o++] = '\n';
    uint64_t first, mid;
    int err = queue_enqueue_message(j->e->q, j->account, from, rcpts, n, msg,
                                    (size_t)o, &first, &mid);
    if (err)
        fprintf(stderr, "sluiced: incident %llu: alert mail: %s\n",
                (unsigned long long)j->id, engine_strerror(err));
    free(msg);
}

/* The alerts of a change (opened, escalated, resolved): the command and
 * the mail, with the record as it is now (its severity, raised by an
 * escalation); j->alerted_ms says when. */
void inc_alert(struct inc_job *j, const char *change)
{
    uint32_t account;
    char *text = NULL, subject[300];
    if (queue_incident_get(j->e->q, j->id, &account, &text))
        return;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    const char *sev = json_string_value(json_object_get(rec, "severity"));
    snprintf(subject, sizeof subject, "[sluice] incident %llu %s: %s (%s) "
             "%s %s", (unsigned long long)j->id, change, j->rule.name,
             sev ? sev : config_alert_severity_name(j->rule.severity),
             config_alert_scope_name(j->scope_kind), j->scope);
    json_t *a = json_pack("{s:s,s:s,s:O}", "type", "incident", "change",
                          change, "incident", rec ? rec : json_null());
    char *body = json_dumps(a, JSON_INDENT(2));
    json_decref(a);
    json_decref(rec);
    if (!body)
        return;
    if (j->alert_command)
        alert_command(j, body);
    alert_mail(j, subject, body);
    free(body);
    j->alerted_ms = (int64_t)engine_now_ms();
}

/* The pause a rule's action takes, as the record's "pause" (NULL for
 * none): pending until inc_act_take() has taken it. */
static json_t *pause_json(const struct inc_job *j, json_t *cause)
{
    const char *kind = NULL;
    char name[SIGNALS_SCOPE_NAME];
    switch (j->rule.action) {
    case ALERT_ACT_PAUSE_CAMPAIGN:
        kind = "campaign";
        snprintf(name, sizeof name, "%llu", (unsigned long long)j->campaign);
        break;
    case ALERT_ACT_PAUSE_ACCOUNT:
        kind = "account";
        snprintf(name, sizeof name, "%u", j->account);
        break;
    case ALERT_ACT_PAUSE_SITE:
        kind = "site";
        snprintf(name, sizeof name, "%s", j->scope);
        break;
    default:
        return NULL;
    }
    /* probes go where the trouble was: the site, or the recipient domain
     * the root cause names first */
    const char *dom = j->rule.action == ALERT_ACT_PAUSE_SITE ? "" :
        json_string_value(json_object_get(json_array_get(
            json_object_get(cause, "domains"), 0), "domain"));
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "kind", kind, "name", name,
                     "state", "pending", "resume",
                     j->rule.resume == ALERT_RESUME_PROBE ? "probe"
                                                          : "manual",
                     "probe_after_s", (json_int_t)j->rule.probe_after_s,
                     "domain", dom ? dom : "");
}

/* Worker: open the incident of j. */
static void job_open(struct inc_job *j)
{
    char via[40], etext[200];
    struct queue_actor by = inc_actor(j, via, sizeof via);
    json_t *base = json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:{s:f,s:f,s:I,s:I},s:o,s:s}",
        "rule", j->rule.name, "signal",
        config_alert_signal_name(j->rule.signal), "scope",
        config_alert_scope_name(j->scope_kind), "scope_name", j->scope,
        "account", (json_int_t)j->account, "campaign",
        (json_int_t)j->campaign, "severity",
        config_alert_severity_name(j->rule.severity), "numbers", "value",
        j->value, "threshold", j->rule.threshold, "volume",
        (json_int_t)j->volume, "window_s", (json_int_t)j->rule.window_s,
        "root_cause", root_cause(j), "action",
        config_alert_action_name(j->rule.action));
    json_t *pause = pause_json(j, json_object_get(base, "root_cause"));
    if (pause) {
        snprintf(j->domain, sizeof j->domain, "%s", json_string_value(
            json_object_get(pause, "domain")));
        json_object_set_new(base, "pause", pause);
    }
    char text[200];
    snprintf(text, sizeof text, "%s %.4f >= %.4f over %llu in %us",
             config_alert_signal_name(j->rule.signal), j->value,
             j->rule.threshold, (unsigned long long)j->volume,
             j->rule.window_s);
    if (!j->rule.min_volume) /* a level (spool, disk, webhook backlog) */
        snprintf(text, sizeof text, "%s %.4f >= %.4f",
                 config_alert_signal_name(j->rule.signal), j->value,
                 j->rule.threshold);
    struct incident_edit ed = { .what = "opened", .who = "sluiced",
                                .text = text, .base = base,
                                .now_ms = (int64_t)engine_now_ms() };
    snprintf(etext, sizeof etext, "opened %s %s %s %s", j->rule.name,
             config_alert_severity_name(j->rule.severity),
             config_alert_scope_name(j->scope_kind), j->scope);
    struct queue_incident_change c = {
        .account = j->account, .campaign = j->campaign,
        .edit = incident_rec_edit, .arg = &ed, .action = "incident open",
        .event_text = etext, .by = &by };
    j->err = queue_incident_change(j->e->q, &c);
    json_decref(base);
    if (j->err) {
        snprintf(j->why, sizeof j->why, "%s (%s)", engine_strerror(j->err),
                 queue_last_detail());
        return;
    }
    j->id = c.id;
    inc_act_take(j);
    if (j->alert)
        inc_alert(j, "opened");
}

/* Worker: resolve incident j->id. */
static void job_resolve(struct inc_job *j)
{
    char text[120], etext[200];
    snprintf(text, sizeof text, "%s clean for %us", j->rule.name,
             j->rule.auto_resolve_s);
    snprintf(etext, sizeof etext, "resolved %s %s %s", j->rule.name,
             config_alert_scope_name(j->scope_kind), j->scope);
    j->err = inc_note(j, "resolved", text, "incident resolve", etext);
    if (j->err == -EINVAL) {
        j->err = 0; /* resolved by hand meanwhile */
        return;
    }
    if (!j->err && j->alert)
        inc_alert(j, "resolved");
}

/* uv_work_cb. */
static void job_work(uv_work_t *req)
{
    struct inc_job *j = req->data;
    if (j->kind == INC_JOB_OPEN)
        job_open(j);
    else if (j->kind == INC_JOB_RESOLVE)
        job_resolve(j);
    else
        inc_act_work(j);
}

/* uv_after_work_cb: back on the loop. */
static void job_done(uv_work_t *req, int status)
{
    struct inc_job *j = req->data;
    (void)status;
    j->e->incidents->busy = false;
    inc_job_finished(j->e, j);
    json_decref(j->detail);
    free(j->alert_command);
    free(j->alert_from);
    free(j->alert_to);
    free(j->site_domains);
    free(j);
}

/* The domains routed to j's site, from the engine's dests (on the loop):
 * counted, then copied. */
static void site_domains(struct engine *e, struct inc_job *j)
{
    struct dest_table *t = &e->dests;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->cap; i++)
            for (struct dest *d = t->tab[i]; d; d = d->hnext) {
                char name[SIGNALS_SCOPE_NAME];
                if (!d->site || n == INC_SITE_DOMAINS)
                    continue;
                /* cut as signals.c names the site's scope */
                snprintf(name, sizeof name, "%.63s", d->site->name);
                if (strcmp(name, j->scope))
                    continue;
                if (pass)
                    snprintf(j->site_domains[n], sizeof *j->site_domains,
                             "%s", d->domain);
                n++;
            }
        if (pass || !n ||
            !(j->site_domains = calloc(n, sizeof *j->site_domains)))
            break; /* none, or no memory: the name's approximation */
        n = 0;
    }
    if (!j->site_domains)
        return;
    j->nsite_domains = n;
    qsort(j->site_domains, n, sizeof *j->site_domains, domain_cmp);
}

void inc_job_start(struct engine *e, struct inc_job *j)
{
    const struct config *cfg = &e->cfg;
    j->e = e;
    j->req.data = j;
    /* the rule's copy for a job on an open incident comes from the
     * config (an opening brings its own) */
    for (size_t i = 0; i < cfg->nalerts; i++)
        if (j->kind != INC_JOB_OPEN &&
            !strcmp(cfg->alerts[i].name, j->rule.name))
            j->rule = cfg->alerts[i];
    if (cfg->alert_command)
        j->alert_command = strdup(cfg->alert_command);
    if (cfg->alert_from)
        j->alert_from = strdup(cfg->alert_from);
    for (size_t i = 0; i < cfg->naccounts; i++)
        if (cfg->accounts[i].id == j->account && cfg->accounts[i].alert_to)
            j->alert_to = strdup(cfg->accounts[i].alert_to);
    snprintf(j->hostname, sizeof j->hostname, "%s",
             cfg->ehlo_hostname ? cfg->ehlo_hostname : "localhost");
    if (j->kind == INC_JOB_OPEN && j->scope_kind == ALERT_SCOPE_SITE)
        site_domains(e, j);
    e->incidents->busy = true;
    if (uv_queue_work(e->loop, &j->req, job_work, job_done)) {
        e->incidents->busy = false;
        j->err = -ENOMEM;
        inc_job_finished(e, j);
        json_decref(j->detail);
        free(j->alert_command);
        free(j->alert_from);
        free(j->alert_to);
        free(j->site_domains);
        free(j);
    }
}
