/*
 * http_inject.c - POST /api/inject/v1: an application's messages queued
 * over HTTP, answered only once they are durably in the spool.
 *
 * DESCRIPTION
 *   One request, on libmicrohttpd's thread (never the libuv loop):
 *   1. headers: POST only (405); "Authorization: Bearer sk_..." checked by
 *      queue/ingress.c, 401 when the key is missing, malformed, unknown,
 *      revoked or its user disabled, 403 when it may not send as the
 *      account (?account=NAME, default the key's own: scope, role,
 *      account disabled or not its own or a sub-account of it); 413 at
 *      once when Content-Length passes max_request_size.
 *   2. body: kept up to max_request_size; a body without Content-Length
 *      that passes it is dropped as it comes and answered 413 (past
 *      DROP_MAX more bytes the connection is closed instead).  The bodies
 *      held at once, all requests together, stay within
 *      BODY_BUDGET_FACTOR times max_request_size: a request that would
 *      pass that is dropped the same way and answered 503.
 *   3. JSON (http_inject_json.c) and content (http_inject_build.c): 400
 *      with the reason.  Each recipient's message is made, checked and
 *      completed by queue_ingress_message() (From: domain of the account,
 *      the spool's message rules: 403 / 400 for the whole request when
 *      the first message is refused, that recipient alone after it), and
 *      submitted; a recipient whose address is refused, or whose message
 *      cannot be made, goes to failed_recipients.  Content without any
 *      merge tag is one message stored once for all its recipients.
 *   4. The connection is suspended until the writer has committed every
 *      submission, then the request is audited once and answered 200
 *      {"success_count", "fail_count", "failed_recipients", "errors"}.
 *      When the spool took none of it (full, read-only, closing) the
 *      answer is 503 with Retry-After: RETRY_AFTER_S; when it stopped
 *      taking writes part way, 200 counts what was queued and names the
 *      rest in failed_recipients.
 *   The completions are submitted without a completer: their callbacks
 *   run on the writer thread, where they only count and the last one
 *   resumes the connection (MHD_resume_connection() may be called from
 *   any thread).  The loop's completer would tie a 200 to the libuv loop,
 *   which takes no part in HTTP and no longer runs while sluiced stops
 *   (http_inject_stop() waits for the writer instead).
 *   Every refusal (401, 403, 400, 413, 503) is audited with its reason.
 *   Every answer closes the connection (the gate checks one request line
 *   per connection, http_gate.c).
 *
 * DIAGNOSTICS
 *   Spool errors met while checking a key answer 503 and are logged.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine.h"
#include "http_inject.h"
#include "http_inject_int.h"
#include "queue_ingress.h"
#include "queue_msg.h"

/* A body over the cap without Content-Length is dropped up to this many
 * more bytes, then the connection is closed. */
#define DROP_MAX (1u << 20)
/* Bodies held at once, all requests together: this many times
 * max_request_size (a request past it is dropped as it comes and
 * answered 503). */
#define BODY_BUDGET_FACTOR 4
/* What a 503 asks the client to wait, in seconds. */
#define RETRY_AFTER_S 30
/* How long stopping waits for answers to go out once all is committed. */
#define STOP_ANSWER_MS 5000

struct http_inject {
    struct queue *q;
    uint64_t max_body;
    unsigned max_rcpts;
    char msgid_host[256];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    unsigned waiting;          /* requests with submissions in flight */
    unsigned open;             /* requests not yet released */
    uint64_t held;             /* bytes of bodies held, all requests */
};

/* One submission: recipients idx[first .. first+n) of the request. */
struct op {
    struct inject_conn *ic;
    size_t first, n;
    int status;
};

enum conn_state { READING, DROPPING, WAITING, DONE, ANSWERED };

struct inject_conn {
    http_inject_release release;   /* first: unsub_http.c's on_done */
    struct http_inject *hi;
    struct MHD_Connection *c;
    enum conn_state state;
    struct queue_ingress_who who;
    char *body;
    size_t len, cap, dropped;
    bool busy;                     /* dropped: over the budget, not the cap */
    struct inject_req req;
    const char **queued;           /* addresses submitted, in op order */
    size_t nqueued;
    struct op *ops;
    size_t nops;
    unsigned pending;              /* ops not completed (+1 submitting) */
    json_t *failed, *errors;       /* the answer's arrays */
    size_t nfailed;
    bool suspended;
    int spool_err;                 /* a submission the spool refused */
};

/* ------------------------------------------------------------ answers */

/* Answer status with JSON body j (taken); extra header name/value. */
static enum MHD_Result answer_json(struct MHD_Connection *c, unsigned status,
                                   json_t *j, const char *hname,
                                   const char *hval)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    text[n] = '\n';   /* json_dumps' NUL becomes the line end */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        n + 1, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (hname)
        MHD_add_response_header(r, hname, hval);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answer status with {"error": why}. */
static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned status,
                                    const char *why)
{
    const char *hn = NULL, *hv = NULL;
    char retry[16];
    if (status == MHD_HTTP_UNAUTHORIZED) {
        hn = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        hv = "Bearer";
    } else if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
        snprintf(retry, sizeof retry, "%d", RETRY_AFTER_S);
        hn = MHD_HTTP_HEADER_RETRY_AFTER;
        hv = retry;
    }
    return answer_json(c, status, json_pack("{s:s}", "error", why), hn, hv);
}

/* ------------------------------------------------------------- audit */

/* One audit record for the request: result "ok" or "refused: why". */
static void audit(struct http_inject *hi, const struct queue_ingress_who *w,
                  const char *user, const char *object, const char *result)
{
    char via[QUEUE_MAX_AUDIT_VIA + 1];
    snprintf(via, sizeof via, "http %s", w && w->via[0] ? w->via : "apikey");
    struct queue_actor by = { .user = user, .via = via,
                              .role = w ? w->role : QUEUE_ROLE_NONE,
                              .account = w ? w->account : 0 };
    int err = queue_audit_append(hi->q, &by, w ? w->account : 0, "inject",
                                 object, result);
    if (err)
        fprintf(stderr, "sluiced: inject: the audit record failed: %s\n",
                queue_strerror(err));
}

/* Audit a refusal and answer it. */
static enum MHD_Result refuse(struct http_inject *hi, struct MHD_Connection *c,
                              const struct queue_ingress_who *w,
                              const char *user, unsigned status,
                              const char *why)
{
    char result[QUEUE_MAX_AUDIT_RESULT + 1];
    snprintf(result, sizeof result, "refused: %d %.*s", status,
             (int)(sizeof result - 16), why);
    audit(hi, w, user, "http " HTTP_INJECT_PATH, result);
    return answer_error(c, status, why);
}

/* ------------------------------------------------------------- headers */

/* The key of "Authorization: Bearer KEY", or NULL. */
static const char *bearer(struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7))
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return a;
}

/* Who the key of c sends as; 0 or an answered refusal (*ret). */
static int authenticate(struct http_inject *hi, struct MHD_Connection *c,
                        struct queue_ingress_who *w, enum MHD_Result *ret)
{
    struct queue_apikey k;
    struct queue_user u;
    char why[200];
    const char *key = bearer(c);
    const char *acct = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                   "account");
    memset(w, 0, sizeof *w);
    if (!key) {
        *ret = refuse(hi, c, NULL, "?", MHD_HTTP_UNAUTHORIZED,
                      "no API key: send \"Authorization: Bearer sk_...\"");
        return -1;
    }
    memset(&k, 0, sizeof k);
    memset(&u, 0, sizeof u);
    int err = queue_ingress_key_find(hi->q, key, &k, &u, why, sizeof why);
    snprintf(w->via, sizeof w->via, "apikey:%u", k.id);
    if (err == QUEUE_EINVAL || err == QUEUE_ENOTFOUND ||
        err == QUEUE_EPERM) {
        if (err == QUEUE_EINVAL)
            snprintf(why, sizeof why, "not a sluice API key "
                     "(sk_<id>_<64 hex digits>)");
        *ret = refuse(hi, c, w, u.name[0] ? u.name : "?",
                      MHD_HTTP_UNAUTHORIZED, why);
        return -1;
    }
    if (!err)
        err = queue_ingress_key(hi->q, key, acct, w, why, sizeof why);
    if (err == QUEUE_EPERM || err == QUEUE_ENOTFOUND) {
        if (!w->via[0])
            snprintf(w->via, sizeof w->via, "apikey:%u", k.id);
        *ret = refuse(hi, c, w, u.name, MHD_HTTP_FORBIDDEN, why);
        return -1;
    }
    if (err) {
        fprintf(stderr, "sluiced: inject: API key check: %s\n",
                queue_strerror(err));
        *ret = answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "the spool cannot be read; try again later");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ requests */

/* Count delta more (or fewer) bytes of bodies held; false (and nothing
 * counted) when more would pass the budget. */
static bool held_add(struct http_inject *hi, int64_t delta)
{
    pthread_mutex_lock(&hi->mu);
    bool ok = delta <= 0 ||
              hi->held + (uint64_t)delta <= BODY_BUDGET_FACTOR * hi->max_body;
    if (ok)
        hi->held += (uint64_t)delta;
    pthread_mutex_unlock(&hi->mu);
    return ok;
}

static void conn_release(void *p)
{
    struct inject_conn *ic = p;
    if (!ic)
        return;
    struct http_inject *hi = ic->hi;
    free(ic->body);
    held_add(hi, -(int64_t)ic->cap);
    inject_req_free(&ic->req);
    free(ic->queued);
    free(ic->ops);
    json_decref(ic->failed);
    json_decref(ic->errors);
    free(ic);
    pthread_mutex_lock(&hi->mu);
    hi->open--;
    pthread_cond_broadcast(&hi->cv);
    pthread_mutex_unlock(&hi->mu);
}

/* Writer thread: one submission has committed (or failed). */
static void on_committed(void *arg, int status, uint64_t first_id,
                         uint64_t msg_id)
{
    struct op *op = arg;
    struct inject_conn *ic = op->ic;
    struct http_inject *hi = ic->hi;
    (void)first_id;
    (void)msg_id;
    pthread_mutex_lock(&hi->mu);
    op->status = status;
    bool last = --ic->pending == 0;
    if (last) {
        ic->state = DONE;
        MHD_resume_connection(ic->c);
        hi->waiting--;
        pthread_cond_broadcast(&hi->cv);
    }
    pthread_mutex_unlock(&hi->mu);
}

/* Note recipient email as failed, with why. */
static void fail_rcpt(struct inject_conn *ic, const char *email,
                      const char *why)
{
    json_array_append_new(ic->failed, json_string(email));
    json_array_append_new(ic->errors, json_pack("s++", email, ": ", why));
    ic->nfailed++;
}

/* Submit msg for recipients queued[first..nqueued); 0 or the spool's
 * error (the recipients are then failed). */
static int submit(struct inject_conn *ic, size_t first, const char *msg,
                  size_t len)
{
    struct op *op = &ic->ops[ic->nops];
    *op = (struct op){ .ic = ic, .first = first, .n = ic->nqueued - first };
    if (!ic->suspended) {
        /* held by our own reference until every submission is made, so
         * no callback can resume it before this */
        pthread_mutex_lock(&ic->hi->mu);
        ic->pending = 1;
        ic->state = WAITING;
        ic->hi->waiting++;
        pthread_mutex_unlock(&ic->hi->mu);
        MHD_suspend_connection(ic->c);
        ic->suspended = true;
    }
    pthread_mutex_lock(&ic->hi->mu);
    ic->pending++;
    pthread_mutex_unlock(&ic->hi->mu);
    /* with its "reception" event in the same commit */
    int err = queue_submit_message_via(ic->hi->q, ic->who.account,
                                       ic->req.envelope_sender,
                                       ic->queued + first, op->n, msg, len,
                                       "http", NULL, on_committed, op);
    if (err) {
        pthread_mutex_lock(&ic->hi->mu);
        ic->pending--;
        pthread_mutex_unlock(&ic->hi->mu);
        for (size_t i = first; i < ic->nqueued; i++)
            fail_rcpt(ic, ic->queued[i], queue_strerror(err));
        ic->nqueued = first;
        return err;
    }
    ic->nops++;
    return 0;
}

/* Make, check and submit recipient rc's message (raw content without
 * tags: one message for every recipient, submitted once).  0, or 1 for
 * an answered refusal of the whole request (*ret), or a spool error. */
static int queue_one(struct inject_conn *ic, const struct inject_tpl *t,
                     const struct inject_rcpt *rc, bool first,
                     enum MHD_Result *ret)
{
    char why[300], *msg = NULL, *clean = NULL;
    size_t len, clen;
    int err = inject_render(t, &ic->req, rc, &msg, &len, why, sizeof why);
    if (err) {
        fail_rcpt(ic, rc->email, why);
        return 0;
    }
    err = queue_ingress_message(ic->hi->q, &ic->who, msg, len,
                                ic->hi->msgid_host, &clean, &clen, why,
                                sizeof why);
    if (err == QUEUE_EINVAL || err == QUEUE_EPERM) {
        free(msg);
        if (first) {
            *ret = refuse(ic->hi, ic->c, &ic->who, ic->who.user_name,
                          err == QUEUE_EPERM ? MHD_HTTP_FORBIDDEN
                                             : MHD_HTTP_BAD_REQUEST, why);
            return 1;
        }
        fail_rcpt(ic, rc->email, why);
        return 0;
    }
    if (err) {
        free(msg);
        fail_rcpt(ic, rc->email, queue_strerror(err));
        return err;
    }
    size_t from = ic->nqueued;
    if (t->has_tags || t->natt || !t->raw)
        ic->queued[ic->nqueued++] = rc->email;
    else
        for (size_t i = 0; i < ic->req.nrcpts; i++)
            if (!queue_check_rcpt(ic->req.rcpts[i].email))
                ic->queued[ic->nqueued++] = ic->req.rcpts[i].email;
    err = submit(ic, from, clean ? clean : msg, clean ? clen : len);
    free(clean);
    free(msg);
    return err;
}

/* The answer once every submission has completed: audit and 200, or
 * 503 when the spool took none of it. */
static enum MHD_Result finish(struct inject_conn *ic)
{
    char obj[QUEUE_MAX_AUDIT_OBJECT + 1], result[QUEUE_MAX_AUDIT_RESULT + 1];
    size_t ok = 0;
    int unwritable = ic->spool_err;
    for (size_t i = 0; i < ic->nops; i++) {
        const struct op *op = &ic->ops[i];
        if (!op->status) {
            ok += op->n;
            continue;
        }
        if (queue_err_unwritable(op->status) ||
            op->status == QUEUE_ESHUTDOWN)
            unwritable = op->status;
        for (size_t k = op->first; k < op->first + op->n; k++)
            fail_rcpt(ic, ic->queued[k], queue_strerror(op->status));
    }
    snprintf(obj, sizeof obj, "http " HTTP_INJECT_PATH ": from %.100s to "
             "%zu recipient%s", ic->req.envelope_sender, ic->req.nrcpts,
             ic->req.nrcpts == 1 ? "" : "s");
    if (!ok && unwritable) {
        snprintf(result, sizeof result, "nothing queued: %s",
                 queue_strerror(unwritable));
        return refuse(ic->hi, ic->c, &ic->who, ic->who.user_name,
                      MHD_HTTP_SERVICE_UNAVAILABLE, result);
    }
    snprintf(result, sizeof result, "ok: %zu queued, %zu failed", ok,
             ic->nfailed);
    audit(ic->hi, &ic->who, ic->who.user_name, obj, result);
    json_t *j = json_pack("{s:I,s:I,s:O,s:O}", "success_count",
                          (json_int_t)ok, "fail_count",
                          (json_int_t)ic->nfailed, "failed_recipients",
                          ic->failed, "errors", ic->errors);
    return answer_json(ic->c, MHD_HTTP_OK, j, NULL, NULL);
}

/* Check, make and submit the request's messages; answers, or leaves the
 * connection suspended until the last submission completes. */
static enum MHD_Result process(struct inject_conn *ic)
{
    struct http_inject *hi = ic->hi;
    char why[400];
    enum MHD_Result ret = MHD_YES;
    const char *user = ic->who.user_name;
    if (inject_parse(ic->body, ic->len, hi->max_rcpts, &ic->req, why,
                     sizeof why))
        return refuse(hi, ic->c, &ic->who, user, MHD_HTTP_BAD_REQUEST, why);
    free(ic->body);   /* the JSON holds what is needed now */
    held_add(hi, -(int64_t)ic->cap);
    ic->body = NULL;
    ic->cap = 0;
    const char *es = ic->req.envelope_sender;
    if (es[0] && queue_check_rcpt(es))
        return refuse(hi, ic->c, &ic->who, user, MHD_HTTP_BAD_REQUEST,
                      "envelope_sender: not an address local@domain");
    struct inject_tpl *t = calloc(1, sizeof *t);
    if (!t)
        return MHD_NO;
    int err = inject_compile(&ic->req, t, why, sizeof why);
    size_t n = ic->req.nrcpts;
    ic->failed = json_array();
    ic->errors = json_array();
    ic->queued = calloc(n, sizeof *ic->queued);
    ic->ops = calloc(n, sizeof *ic->ops);
    if (!err && (!ic->failed || !ic->errors || !ic->queued || !ic->ops))
        err = -ENOMEM;
    if (err) {
        inject_tpl_free(t);
        free(t);
        return err == -ENOMEM ? MHD_NO
               : refuse(hi, ic->c, &ic->who, user, MHD_HTTP_BAD_REQUEST, why);
    }
    bool shared = t->raw && !t->has_tags, first = true;
    size_t i = 0;
    for (; i < n && !ic->spool_err; i++) {
        const struct inject_rcpt *rc = &ic->req.rcpts[i];
        if (queue_check_rcpt(rc->email)) {
            fail_rcpt(ic, rc->email, "not an address local@domain");
            continue;
        }
        if (shared && !first)
            continue;   /* queued with the first */
        err = queue_one(ic, t, rc, first, &ret);
        if (err == 1)
            break;      /* the whole request refused, and answered */
        ic->spool_err = err;
        first = false;
    }
    inject_tpl_free(t);
    free(t);
    if (err == 1)
        return ret;
    for (; ic->spool_err && !shared && i < n; i++)
        if (!queue_check_rcpt(ic->req.rcpts[i].email))
            fail_rcpt(ic, ic->req.rcpts[i].email, "not tried: the spool "
                      "stopped taking mail");
    if (!ic->suspended)
        return finish(ic);  /* nothing submitted */
    pthread_mutex_lock(&hi->mu);
    if (--ic->pending == 0) {
        ic->state = DONE;
        hi->waiting--;
        pthread_cond_broadcast(&hi->cv);
        MHD_resume_connection(ic->c);
    }
    pthread_mutex_unlock(&hi->mu);
    return MHD_YES;
}

/* The first call, with the headers: method, key, declared size. */
static enum MHD_Result begin(struct http_inject *hi, struct MHD_Connection *c,
                             const char *method, void **con_cls)
{
    struct queue_ingress_who w;
    enum MHD_Result ret;
    if (strcmp(method, "POST")) {
        json_t *j = json_pack("{s:s}", "error", "POST only");
        return answer_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, j,
                           MHD_HTTP_HEADER_ALLOW, "POST");
    }
    pthread_mutex_lock(&hi->mu);
    bool stopping = hi->stopping;
    pthread_mutex_unlock(&hi->mu);
    if (stopping)
        return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "sluiced is stopping; try again later");
    if (authenticate(hi, c, &w, &ret))
        return ret;
    if (http_declared_too_big(c, hi->max_body)) {
        char why[120];
        snprintf(why, sizeof why, "the body is larger than max_request_size "
                 "(%llu bytes)", (unsigned long long)hi->max_body);
        return refuse(hi, c, &w, w.user_name, MHD_HTTP_CONTENT_TOO_LARGE,
                      why);
    }
    struct inject_conn *ic = calloc(1, sizeof *ic);
    if (!ic)
        return MHD_NO;
    ic->release = conn_release;
    ic->hi = hi;
    ic->c = c;
    ic->who = w;
    pthread_mutex_lock(&hi->mu);
    hi->open++;
    pthread_mutex_unlock(&hi->mu);
    *con_cls = ic;
    return MHD_YES;
}

/* Keep n more bytes of the body (up to the cap; past it, drop them). */
static enum MHD_Result take(struct inject_conn *ic, const char *p, size_t n)
{
    size_t cap = ic->cap;
    if (ic->state == READING && ic->len + n > cap) {
        cap = cap ? cap : 65536;
        while (cap < ic->len + n)
            cap *= 2;
        if (cap > ic->hi->max_body)
            cap = (size_t)ic->hi->max_body;
        if (ic->len + n > ic->hi->max_body ||
            !held_add(ic->hi, (int64_t)(cap - ic->cap))) {
            ic->busy = ic->len + n <= ic->hi->max_body;
            ic->state = DROPPING;
            free(ic->body);
            held_add(ic->hi, -(int64_t)ic->cap);
            ic->body = NULL;
            ic->cap = 0;
        }
    }
    if (ic->state == DROPPING) {
        ic->dropped += n;
        return ic->dropped > DROP_MAX ? MHD_NO : MHD_YES;
    }
    if (ic->len + n > ic->cap) {
        char *b = realloc(ic->body, cap + 1);
        if (!b) {
            held_add(ic->hi, -(int64_t)(cap - ic->cap));
            return MHD_NO;
        }
        ic->body = b;
        ic->cap = cap;
    }
    memcpy(ic->body + ic->len, p, n);
    ic->len += n;
    return MHD_YES;
}

enum MHD_Result http_inject_request(struct http_inject *hi,
                                    struct MHD_Connection *c,
                                    const char *method, const char *upload,
                                    size_t *upload_size, void **con_cls)
{
    struct inject_conn *ic = *con_cls;
    if (!ic)
        return begin(hi, c, method, con_cls);
    pthread_mutex_lock(&hi->mu);   /* the writer's callback sets DONE */
    enum conn_state st = ic->state;
    pthread_mutex_unlock(&hi->mu);
    if (st == DONE)
        return finish(ic);
    if (st == WAITING)
        return MHD_YES;   /* not resumed yet */
    if (*upload_size) {
        enum MHD_Result r = take(ic, upload, *upload_size);
        *upload_size = 0;
        return r;
    }
    if (ic->state == DROPPING && ic->busy) {
        ic->state = ANSWERED;
        return refuse(hi, c, &ic->who, ic->who.user_name,
                      MHD_HTTP_SERVICE_UNAVAILABLE, "too many requests "
                      "being read at once; try again later");
    }
    if (ic->state == DROPPING) {
        char why[120];
        snprintf(why, sizeof why, "the body is larger than max_request_size "
                 "(%llu bytes)", (unsigned long long)hi->max_body);
        ic->state = ANSWERED;
        return refuse(hi, c, &ic->who, ic->who.user_name,
                      MHD_HTTP_CONTENT_TOO_LARGE, why);
    }
    if (!ic->body && !(ic->body = malloc(1)))
        return MHD_NO;
    return process(ic);
}

struct http_inject *http_inject_new(struct engine *e)
{
    struct http_inject *hi = calloc(1, sizeof *hi);
    if (!hi)
        return NULL;
    hi->q = e->q;
    hi->max_body = e->cfg.max_request_size;
    hi->max_rcpts = e->cfg.max_request_recipients;
    if (e->cfg.ehlo_hostname && queue_message_host_ok(e->cfg.ehlo_hostname))
        snprintf(hi->msgid_host, sizeof hi->msgid_host, "%s",
                 e->cfg.ehlo_hostname);
    pthread_mutex_init(&hi->mu, NULL);
    pthread_cond_init(&hi->cv, NULL);
    return hi;
}

void http_inject_stop(struct http_inject *hi)
{
    if (!hi)
        return;
    pthread_mutex_lock(&hi->mu);
    hi->stopping = true;
    /* the writer completes every submission (or fails it) */
    while (hi->waiting)
        pthread_cond_wait(&hi->cv, &hi->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_ANSWER_MS / 1000;
    while (hi->open &&
           pthread_cond_timedwait(&hi->cv, &hi->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&hi->mu);
}

void http_inject_free(struct http_inject *hi)
{
    if (!hi)
        return;
    pthread_mutex_destroy(&hi->mu);
    pthread_cond_destroy(&hi->cv);
    free(hi);
}
