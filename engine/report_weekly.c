/*
 * report_weekly.c - the weekly report mail: once a week sluiced builds
 * last week's report of each account with report_weekly = yes and queues
 * it to the account's report addresses like any other mail.
 *
 * DESCRIPTION
 *   A week runs Monday 00:00 to Sunday 24:00 UTC.  A timer looks every
 *   TICK_MS at the accounts of the configuration: one whose last sent
 *   week (the spool cursor REPORT_WEEKLY_SENT, the Monday that ends it)
 *   is before the current week's Monday gets last week's report.  So a
 *   sluiced that was down on Monday morning sends it when it starts, once
 *   (weeks missed before that are not sent one by one), and a restart
 *   after the mail was queued sends nothing: the cursor is saved after
 *   the mail is queued (a crash in between sends it again: at least
 *   once, like every delivery).  An account with report_weekly set and no
 *   cursor yet gets the last full week's report at once.  A request from
 *   `sluice report send-weekly` (the cursor REPORT_WEEKLY_REQ, non-zero)
 *   sends the report of the last 7 days, today included, whether or not
 *   report_weekly is set, and is cleared after.  The report is
 *   report_build()'s (queue_report.h), as `sluice report` gives it: a
 *   sub-account's own mail, the master's the whole platform.
 *   The addresses are report_to, else alert_to, of the [account ID]
 *   section.  The message is multipart/mixed: the text summary
 *   (quoted-printable) and the HTML page (report_html.c) as an inline
 *   text/html part (base64, named sluice-report-ID-FROM.html), from
 *   alert_from (default sluice-reports@ehlo_hostname), queued for the
 *   account itself through queue_enqueue_message(), the way incident
 *   alerts go.  One job at a time runs on the worker pool (the report
 *   reads the spool; the enqueue waits for its commit).
 *
 * DIAGNOSTICS
 *   A failed report or enqueue is written to stderr with the account and
 *   tried again after RETRY_MS; an account without addresses is skipped
 *   (a request for it is written to stderr and cleared).
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_encode.h"
#include "engine.h"
#include "event_names.h"
#include "queue_admin.h"
#include "queue_report.h"
#include "report_html.h"
#include "report_weekly.h"

#define TICK_MS 2000
#define RETRY_MS 60000
#define MAX_RCPTS 16

struct report_weekly {
    uv_timer_t timer;
    bool busy;                 /* a job is on the worker pool */
    uint64_t retry_at_ms;      /* after a failure, nothing before this */
};

struct weekly_job {
    uv_work_t req;
    struct engine *e;
    uint32_t account;
    bool manual;               /* a send-weekly request */
    long from_day, to_day, monday;
    char *to, *from;
    char hostname[256];
    int err;
};

/* Days since 1970-01-01 of unix time t. */
static long day_of(int64_t t)
{
    return (long)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
}

/* The Monday on or before day (1970-01-01 was a Thursday). */
static long monday_of(long day)
{
    long w = (day + 3) % 7;
    return day - (w < 0 ? w + 7 : w);
}

/* "YYYY-MM-DD" of day. */
static void day_str(long day, char out[11])
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* The report object of account name for from..to: report_build(), the
 * builder `sluice report` uses; a master's report is the platform's (its
 * own mail and every sub-account's), as `sluice report` shows it. */
static int build_report(struct queue *q, uint32_t id, const char *name,
                        long from_day, long to_day, json_t **out)
{
    struct queue_account a;
    struct report_query rq = { .account = name,
                               .from = (int64_t)from_day * 86400,
                               .to = (int64_t)to_day * 86400 };
    if (!queue_account_get(q, id, &a) && !a.parent)
        rq.account = NULL;
    return report_build(q, &rq, out);
}

/* A growing message with a cap. */
struct mbuf {
    char *p;
    size_t len, cap;
};

static bool mb_room(struct mbuf *m, size_t n)
{
    if (m->len + n + 1 <= m->cap)
        return true;
    size_t cap = m->cap ? m->cap * 2 : 65536;
    while (cap < m->len + n + 1)
        cap *= 2;
    char *p = realloc(m->p, cap);
    if (!p)
        return false;
    m->p = p;
    m->cap = cap;
    return true;
}

static bool mb_puts(struct mbuf *m, const char *s)
{
    size_t n = strlen(s);
    if (!mb_room(m, n))
        return false;
    memcpy(m->p + m->len, s, n + 1);
    m->len += n;
    return true;
}

/* text as quoted-printable (the tree's one encoder), CRLF lines. */
static bool mb_qp(struct mbuf *m, const char *text, size_t len)
{
    struct dkim_qp qp = { .flags = DKIM_QP_GUARD | DKIM_QP_DROP_NUL };
    for (size_t o = 0; o < len; ) {
        size_t n = len - o < DKIM_QP_CHUNK ? len - o : DKIM_QP_CHUNK;
        if (!mb_room(m, DKIM_QP_ROOM(n)))
            return false;
        m->len = dkim_qp_put(&qp, m->p, m->len, text + o, n);
        o += n;
    }
    if (!mb_room(m, DKIM_QP_END_ROOM + 2))
        return false;
    m->len = dkim_qp_end(&qp, m->p, m->len);
    m->p[m->len] = 0;
    return mb_puts(m, "\r\n");
}

/* data as base64 in lines of 76 characters. */
static bool mb_base64(struct mbuf *m, const char *data, size_t len)
{
    for (size_t o = 0; o < len; o += 57) {
        size_t n = len - o < 57 ? len - o : 57;
        if (!mb_room(m, 80))
            return false;
        int w = EVP_EncodeBlock((unsigned char *)m->p + m->len,
                                (const unsigned char *)data + o, (int)n);
        m->len += (size_t)w;
        m->p[m->len++] = '\r';
        m->p[m->len++] = '\n';
        m->p[m->len] = 0;
    }
    return true;
}

int report_weekly_message(struct queue *q, uint32_t id, const char *name,
                          long from_day, long to_day, const char *from_addr,
                          const char *to, const char *hostname, char **msg,
                          size_t *len)
{
    json_t *rep;
    char *page = NULL, *text = NULL;
    size_t page_len, text_len;
    *msg = NULL;
    int err = build_report(q, id, name, from_day, to_day, &rep);
    if (err)
        return err;
    err = report_html_render(rep, &page, &page_len);
    if (!err)
        err = report_text_summary(rep, &text, &text_len);
    json_decref(rep);
    if (err) {
        free(page);
        free(text);
        return err;
    }
    char from[11], until[11], date[64], head[2048], boundary[64];
    day_str(from_day, from);
    day_str(to_day, until);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    uint64_t ms = engine_now_ms();
    /* "=_" never occurs in quoted-printable or base64 text */
    snprintf(boundary, sizeof boundary, "=_sluice_report_%u_%llx", id,
             (unsigned long long)ms);
    /* account names are a-z, 0-9, '.', '_', '-' (the spool's rule) */
    snprintf(head, sizeof head,
             "From: %s\r\nTo: %s\r\nSubject: [sluice] report for account "
             "%.64s, %s to %s\r\nDate: %s\r\nMessage-ID: "
             "<report-%u-%s-%llu@%.200s>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
             "This is a MIME message: a text summary and the report as an "
             "HTML page.\r\n\r\n--%s\r\nContent-Type: text/plain; "
             "charset=utf-8\r\nContent-Transfer-Encoding: "
             "quoted-printable\r\n\r\n", from_addr, to, name, from, until,
             date, id, from, (unsigned long long)ms, hostname, boundary,
             boundary);
    struct mbuf m = { 0 };
    char tail[400];
    snprintf(tail, sizeof tail, "--%s\r\nContent-Type: text/html; "
             "charset=utf-8; name=\"sluice-report-%u-%s.html\"\r\n"
             "Content-Disposition: inline; "
             "filename=\"sluice-report-%u-%s.html\"\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n", boundary, id, from,
             id, from);
    char end[100];
    snprintf(end, sizeof end, "--%s--\r\n", boundary);
    bool ok = mb_puts(&m, head) && mb_qp(&m, text, text_len) &&
              mb_puts(&m, tail) && mb_base64(&m, page, page_len) &&
              mb_puts(&m, end);
    free(page);
    free(text);
    if (!ok) {
        free(m.p);
        return -ENOMEM;
    }
    *msg = m.p;
    *len = m.len;
    return 0;
}

/* Worker: build, queue, then move the cursor. */
static void job_work(uv_work_t *req)
{
    struct weekly_job *j = req->data;
    struct queue *q = j->e->q;
    char name[128], cursor[QUEUE_MAX_CURSOR_NAME + 1];
    event_names_account(j->e->evnames, j->account, name, sizeof name);
    if (*name) {
        char buf[1024];
        const char *rcpts[MAX_RCPTS];
        size_t n = 0;
        snprintf(buf, sizeof buf, "%s", j->to);
        char *save = NULL;
        for (char *t = strtok_r(buf, ", \t", &save); t && n < MAX_RCPTS;
             t = strtok_r(NULL, ", \t", &save))
            rcpts[n++] = t;
        char *msg;
        size_t len;
        j->err = report_weekly_message(q, j->account, name, j->from_day,
                                       j->to_day, j->from, j->to,
                                       j->hostname, &msg, &len);
        if (j->err)
            return;
        uint64_t first, mid;
        j->err = queue_enqueue_message(q, j->account, j->from, rcpts, n, msg,
                                       len, &first, &mid);
        free(msg);
        if (j->err)
            return;
    } /* else the account is gone: nothing to send, the cursor moves */
    if (j->manual) {
        snprintf(cursor, sizeof cursor, REPORT_WEEKLY_REQ, j->account);
        j->err = queue_cursor_put(q, cursor, 0);
    } else {
        snprintf(cursor, sizeof cursor, REPORT_WEEKLY_SENT, j->account);
        j->err = queue_cursor_put(q, cursor, (uint64_t)j->monday);
    }
}

static void job_free(struct weekly_job *j)
{
    free(j->to);
    free(j->from);
    free(j);
}

/* Back on the loop. */
static void job_done(uv_work_t *req, int status)
{
    struct weekly_job *j = req->data;
    struct report_weekly *w = j->e->weekly;
    char from[11], to[11];
    day_str(j->from_day, from);
    day_str(j->to_day, to);
    (void)status;
    w->busy = false;
    if (j->err) {
        fprintf(stderr, "sluiced: weekly report of account %u (%s to %s): "
                "%s; trying again in %d s\n", j->account, from, to,
                engine_strerror(j->err), RETRY_MS / 1000);
        w->retry_at_ms = engine_now_ms() + RETRY_MS;
    } else {
        fprintf(stderr, "sluiced: weekly report of account %u (%s to %s) "
                "queued to %s\n", j->account, from, to, j->to);
    }
    job_free(j);
}

/* Start the job of account a: a request (manual) or last week's. */
static void job_start(struct engine *e, const struct account_policy *a,
                      const char *to, bool manual, long today)
{
    struct weekly_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->e = e;
    j->req.data = j;
    j->account = a->id;
    j->manual = manual;
    j->monday = monday_of(today);
    j->from_day = manual ? today - 6 : j->monday - 7;
    j->to_day = manual ? today : j->monday - 1;
    j->to = strdup(to);
    if (e->cfg.alert_from) {
        j->from = strdup(e->cfg.alert_from);
    } else if ((j->from = malloc(300))) {
        snprintf(j->from, 300, "sluice-reports@%.250s",
                 e->cfg.ehlo_hostname ? e->cfg.ehlo_hostname : "localhost");
    }
    snprintf(j->hostname, sizeof j->hostname, "%s",
             e->cfg.ehlo_hostname ? e->cfg.ehlo_hostname : "localhost");
    if (!j->to || !j->from ||
        uv_queue_work(e->loop, &j->req, job_work, job_done)) {
        job_free(j);
        return;
    }
    e->weekly->busy = true;
}

/* The timer: the first account with something due gets its job. */
static void on_tick(uv_timer_t *t)
{
    struct engine *e = t->data;
    struct report_weekly *w = e->weekly;
    if (w->busy || engine_now_ms() < w->retry_at_ms)
        return;
    long today = day_of(engine_now());
    char cursor[QUEUE_MAX_CURSOR_NAME + 1];
    for (size_t i = 0; i < e->cfg.naccounts; i++) {
        const struct account_policy *a = &e->cfg.accounts[i];
        const char *to = a->report_to ? a->report_to : a->alert_to;
        uint64_t v;
        snprintf(cursor, sizeof cursor, REPORT_WEEKLY_REQ, a->id);
        if (!queue_cursor_get(e->q, cursor, &v) && v) {
            if (to) {
                job_start(e, a, to, true, today);
                return;
            }
            fprintf(stderr, "sluiced: weekly report of account %u asked "
                    "for, but [account %u] has no report_to nor alert_to\n",
                    a->id, a->id);
            queue_cursor_put(e->q, cursor, 0);
        }
        if (!a->report_weekly || !to)
            continue;
        snprintf(cursor, sizeof cursor, REPORT_WEEKLY_SENT, a->id);
        int rc = queue_cursor_get(e->q, cursor, &v);
        if ((!rc || rc == QUEUE_ENOTFOUND) && (long)v < monday_of(today)) {
            job_start(e, a, to, false, today);
            return;
        }
    }
}

int report_weekly_open(struct engine *e)
{
    struct report_weekly *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    e->weekly = w;
    uv_timer_init(e->loop, &w->timer);
    w->timer.data = e;
    uv_timer_start(&w->timer, on_tick, 500, TICK_MS);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void report_weekly_close(struct engine *e)
{
    struct report_weekly *w = e->weekly;
    if (!w)
        return;
    while (w->busy)
        uv_run(e->loop, UV_RUN_ONCE);
    uv_timer_stop(&w->timer);
    w->timer.data = w;
    uv_close((uv_handle_t *)&w->timer, on_closed);
    e->weekly = NULL;
}
