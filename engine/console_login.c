/*
 * console_login.c - the web console's sign-ins, checked on a thread of
 * their own so that the password hash never stalls sluiced's HTTP server.
 *
 * DESCRIPTION
 *   An argon2id check costs a fraction of a second by design.  On
 *   libmicrohttpd's one thread it would hold every other request
 *   (unsubscribes, the inject API, /metrics) meanwhile, and a stream of
 *   sign-ins would stop them all.  So a POST /console/api/login, its body
 *   read, suspends its connection and waits in a queue of at most
 *   LOGIN_QUEUE_MAX jobs; one worker thread runs console_login() for each
 *   in turn and resumes the connection with the answer, which
 *   console_http.c then sends.  A full queue answers 503 at once: sign-ins
 *   are served one at a time whatever comes in.
 *
 *   console_login_stop() (before the HTTP server stops) lets the job in
 *   hand finish, answers the waiting ones 503 and joins the thread; a
 *   connection is never left suspended.
 *
 * DIAGNOSTICS
 *   A thread that cannot be started leaves sign-ins on libmicrohttpd's
 *   thread (said once on stderr).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_int.h"

#define LOGIN_QUEUE_MAX 16

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stopping;
    struct console_login_job *head, **tail;
    size_t n;
} lq = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Run one sign-in and keep its answer in job. */
static void run(struct console_login_job *job)
{
    struct console_call k = { .e = job->e, .q = job->e->q, .c = job->c,
                              .method = "POST", .path = "/login",
                              .body = job->body, .len = job->len,
                              .secure = job->secure };
    json_t *out = NULL;
    job->status = console_login(&k, &out);
    job->text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    memcpy(job->cookie, k.cookie, sizeof job->cookie);
}

/* Mark job answered and resume its connection (lq.mu held). */
static void finish(struct console_login_job *job)
{
    job->state = CONSOLE_LOGIN_DONE;
    MHD_resume_connection(job->c);
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lq.mu);
    for (;;) {
        while (!lq.head && !lq.stopping)
            pthread_cond_wait(&lq.cv, &lq.mu);
        if (!lq.head)
            break;
        struct console_login_job *job = lq.head;
        if (!(lq.head = job->next))
            lq.tail = &lq.head;
        lq.n--;
        if (lq.stopping) {
            job->status = MHD_HTTP_SERVICE_UNAVAILABLE;
            finish(job);
            continue;
        }
        pthread_mutex_unlock(&lq.mu);
        run(job);
        pthread_mutex_lock(&lq.mu);
        finish(job);
    }
    pthread_mutex_unlock(&lq.mu);
    return NULL;
}

void console_login_start(void)
{
    pthread_mutex_lock(&lq.mu);
    lq.head = NULL;
    lq.tail = &lq.head;
    lq.n = 0;
    lq.stopping = false;
    if (!lq.running) {
        lq.running = pthread_create(&lq.thread, NULL, worker, NULL) == 0;
        if (!lq.running)
            fprintf(stderr, "sluiced: console: no sign-in thread: "
                    "sign-ins run on the HTTP thread\n");
    }
    pthread_mutex_unlock(&lq.mu);
}

void console_login_stop(void)
{
    pthread_mutex_lock(&lq.mu);
    bool was = lq.running;
    lq.stopping = true;
    lq.running = false;
    pthread_cond_broadcast(&lq.cv);
    pthread_mutex_unlock(&lq.mu);
    if (was)
        pthread_join(lq.thread, NULL);
}

int console_login_submit(struct console_login_job *job)
{
    pthread_mutex_lock(&lq.mu);
    if (!lq.running) {
        pthread_mutex_unlock(&lq.mu);
        run(job);   /* no thread: here, as before */
        job->state = CONSOLE_LOGIN_DONE;
        return 1;
    }
    if (lq.stopping || lq.n >= LOGIN_QUEUE_MAX) {
        pthread_mutex_unlock(&lq.mu);
        return -1;
    }
    /* suspended before the worker can see it, so its resume comes after */
    MHD_suspend_connection(job->c);
    job->state = CONSOLE_LOGIN_WAITING;
    job->next = NULL;
    *lq.tail = job;
    lq.tail = &job->next;
    lq.n++;
    pthread_cond_signal(&lq.cv);
    pthread_mutex_unlock(&lq.mu);
    return 0;
}
