/* The ld_ws object: loop thread + worker pool, stream lifetime, and the queues
 * between them. Decoding runs on the workers; a stream's tasks run on one
 * worker at a time, in order (the `scheduled` flag), so its decoder and
 * converter are never touched concurrently. */
#include "server/ws_internal.h"

#include "server/ws_flux.h"
#include "server/ws_openai.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/rand.h"
#include "util/time.h"

void ws_wake(ld_ws *ws)
{
    uint64_t one = 1;
    ssize_t r = write(ws->wake_fd, &one, sizeof one);
    (void)r; /* EAGAIN means a wake-up is already pending */
}

ws_conn *ws_conn_new(ld_ws *ws)
{
    ws_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ws = ws;
    c->fd = -1;
    c->refs = 1;
    c->created = ld_time_mono();
    pthread_mutex_init(&c->mu, NULL);
    ld_rand_id("sess_", c->session_id, sizeof c->session_id);
    return c;
}

void ws_conn_ref(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

static void free_tasks(ws_task *t)
{
    while (t) {
        ws_task *n = t->next;
        free(t);
        t = n;
    }
}

static void free_outs(ws_out *o)
{
    while (o) {
        ws_out *n = o->next;
        free(o);
        o = n;
    }
}

/* Only one thread may touch c->sess at a time: the worker while c is
 * scheduled, the loop once c is dead and unscheduled (it stays so), or the last
 * reference. Each of them calls this when the stream is over. */
static void release_session(ws_conn *c)
{
    if (c->session_over)
        return;
    c->session_over = true;
    ws_session_free(c, c->sess); /* the other channels' decoders, and usage not yet counted */
    c->sess = NULL;
    if (c->decoder && c->ws->cfg.pool)
        ld_pool_stream_release(c->ws->cfg.pool, c->decoder);
    c->decoder = NULL;
}

void ws_conn_release_live(ws_conn *c)
{
    if (!c->holds_live)
        return;
    c->holds_live = false;
    ld_auth_release(c->ws->cfg.auth, &c->lease); /* nothing unless held */
    pthread_mutex_lock(&c->ws->mu);
    c->ws->live -= c->slots;
    pthread_mutex_unlock(&c->ws->mu);
}

bool ws_conn_gone(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool dead = c->dead;
    pthread_mutex_unlock(&c->mu);
    return dead;
}

void ws_conn_end(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->dead = true;
    bool idle = !c->scheduled;
    pthread_mutex_unlock(&c->mu);
    if (idle)
        release_session(c);
}

void ws_conn_unref(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0)
        return;
    release_session(c);
    ws_conn_release_live(c);
    free_tasks(c->in_head);
    free_outs(c->out_head);
    free_outs(c->held_close);
    ld_ws_leftover_free(&c->extra);
    pthread_mutex_destroy(&c->mu);
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s, s:s, s:s, s:f}", "session_id", c->session_id, "request_id", c->request_id,
                            "key_id", c->claims.key_id, "audio_seconds",
                            (double)(int64_t)(c->charged * 1000 + 0.5) / 1000),
                  "stream closed after %.1fs", ld_time_mono() - c->created);
    free(c);
}

void ws_conn_notify(ws_conn *c)
{
    ld_ws *ws = c->ws;
    bool wake = false;
    pthread_mutex_lock(&ws->mu);
    if (!c->notified && !ws->loop_done) { /* once the loop has ended nobody would deliver it */
        c->notified = true;
        ws_conn_ref(c);
        c->notify_next = ws->notify_head;
        ws->notify_head = c;
        wake = true;
    }
    pthread_mutex_unlock(&ws->mu);
    if (wake)
        ws_wake(ws);
}

/* c->mu held. */
static void append_out(ws_conn *c, ws_out *o)
{
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
}

static void post(ws_conn *c, const char *msg, size_t len, int close_code)
{
    ws_out *o = malloc(sizeof *o + len + 1);
    if (!o)
        return;
    o->next = NULL;
    o->close_code = close_code;
    o->len = len;
    memcpy(o->data, msg, len);
    o->data[len] = 0;
    pthread_mutex_lock(&c->mu);
    if (c->held_close) { /* after a close nothing more is sent (the loop drops what follows one) */
        pthread_mutex_unlock(&c->mu);
        free(o);
        return;
    }
    bool held = close_code && c->in_task;
    if (close_code)
        c->dead = true; /* the stream is over: workers drop what is still queued */
    if (held)           /* the close must not reach the client before the decoders are free: run_conn sends it */
        c->held_close = o;
    else
        append_out(c, o);
    pthread_mutex_unlock(&c->mu);
    if (!held)
        ws_conn_notify(c);
}

void ws_conn_post(ws_conn *c, char *msg)
{
    if (!msg)
        return;
    post(c, msg, strlen(msg), 0);
    free(msg);
}

void ws_conn_post_close(ws_conn *c, int code, const char *reason)
{
    /* A close reason must stay under 123 bytes. */
    size_t n = reason ? strnlen(reason, 120) : 0;
    post(c, reason ? reason : "", n, code);
}

void ws_conn_fail(ws_conn *c, ld_err e, const char *message)
{
    ld_log_fields(LD_LOG_WARNING, json_pack("{s:s, s:s}", "session_id", c->session_id, "code", ld_err_code(e)),
                  "stream error: %s", message);
    ws_conn_post(c, ws_conn_error_msg(c, e, message));
    ws_conn_post_close(c, ld_ws_close_code(e), message);
}

char *ws_conn_error_msg(ws_conn *c, ld_err e, const char *message)
{
    if (c->params.flux)
        return ld_ws_flux_error(ws_conn_seq(c), ld_err_code(e), message);
    if (!c->params.openai)
        return ld_ws_msg_error(message, ld_err_code(e));
    ld_error err;
    ld_error_set(&err, e, "%s", message);
    return ld_ws_oa_error(&err, NULL);
}

/* Appends c to the workers' run queue; ws->mu held. */
static void run_enqueue(ld_ws *ws, ws_conn *c)
{
    c->run_next = NULL;
    if (ws->run_tail)
        ws->run_tail->run_next = c;
    else
        ws->run_head = c;
    ws->run_tail = c;
}

void ws_conn_push_task(ws_conn *c, ws_task *t)
{
    t->next = NULL;
    bool schedule = false;
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        pthread_mutex_unlock(&c->mu);
        free(t);
        return;
    }
    if (c->in_tail)
        c->in_tail->next = t;
    else
        c->in_head = t;
    c->in_tail = t;
    c->in_bytes += ws_task_cost(t);
    if (!c->scheduled) {
        c->scheduled = true;
        c->refs++;
        schedule = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (schedule) {
        ld_ws *ws = c->ws;
        pthread_mutex_lock(&ws->mu);
        run_enqueue(ws, c);
        pthread_cond_signal(&ws->run_cv);
        pthread_mutex_unlock(&ws->mu);
    }
}

/* Runs a stream's next queued task; true when more are queued (the stream
 * then goes to the back of the run queue: streams that fell behind take
 * turns with the others instead of holding a worker until caught up). */
static bool run_conn(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    ws_task *t = c->dead ? NULL : c->in_head;
    if (t) {
        c->in_head = t->next;
        if (!c->in_head)
            c->in_tail = NULL;
        c->in_task = true;
    }
    pthread_mutex_unlock(&c->mu);

    size_t done = t ? ws_task_cost(t) : 0; /* what it counted in in_bytes (a WAV header is taken off below) */
    if (t && !c->sess) {
        ld_error err = {0};
        c->sess = ws_session_new(c, t, &err);
        if (!c->sess)
            ws_conn_fail(c, err.code ? err.code : LD_ERR_INTERNAL, err.msg[0] ? err.msg : "cannot start stream");
    }
    if (t && c->sess)
        ws_session_run(c, t);
    free(t);

    pthread_mutex_lock(&c->mu);
    c->in_task = false;
    ws_out *held = c->held_close;
    c->held_close = NULL;
    bool over = c->dead; /* a close was posted or the socket is gone */
    pthread_mutex_unlock(&c->mu);
    if (over)
        release_session(c); /* still scheduled: no other thread touches the session */

    bool resume = false, more;
    pthread_mutex_lock(&c->mu);
    if (held)
        append_out(c, held);
    c->in_bytes -= done;
    if (c->paused && c->in_bytes < WS_IN_LOW && !c->resume_wanted) {
        c->resume_wanted = true;
        resume = true;
    }
    more = c->in_head && !c->dead;
    if (!more) {
        free_tasks(c->in_head); /* dead: drop what is queued */
        c->in_head = c->in_tail = NULL;
        c->in_bytes = 0;
        c->scheduled = false;
    }
    pthread_mutex_unlock(&c->mu);
    if (resume || held)
        ws_conn_notify(c);
    return more;
}

static void *worker_main(void *arg)
{
    ld_ws *ws = arg;
    pthread_mutex_lock(&ws->mu);
    for (;;) {
        while (!ws->run_head && !ws->loop_joined)
            pthread_cond_wait(&ws->run_cv, &ws->mu);
        ws_conn *c = ws->run_head;
        if (!c)
            break; /* stopped and nothing queued */
        ws->run_head = c->run_next;
        if (!ws->run_head)
            ws->run_tail = NULL;
        pthread_mutex_unlock(&ws->mu);
        bool more = run_conn(c);
        pthread_mutex_lock(&ws->mu);
        if (more) { /* still scheduled: the queue keeps its reference */
            run_enqueue(ws, c);
            continue;
        }
        pthread_mutex_unlock(&ws->mu);
        ws_conn_unref(c);
        pthread_mutex_lock(&ws->mu);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

ld_ws *ld_ws_new(const ld_ws_config *cfg, ld_error *err)
{
    ld_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    ws->cfg = *cfg;
    if (ws->cfg.max_streams <= 0)
        ws->cfg.max_streams = LD_DEFAULT_MAX_STREAMS;
    if (ws->cfg.idle_timeout_s <= 0)
        ws->cfg.idle_timeout_s = 10;
    if (ws->cfg.realtime_idle_s <= 0)
        ws->cfg.realtime_idle_s = 600;
    if (ws->cfg.pool)
        ld_pool_set_max_streams(ws->cfg.pool, ws->cfg.max_streams);
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->run_cv, NULL);
    ws->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ws->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ws->wake_fd < 0 || ws->epfd < 0 || epoll_ctl(ws->epfd, EPOLL_CTL_ADD, ws->wake_fd, &ev) < 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "stream loop: %s", strerror(errno));
        goto fail;
    }
    /* Twice the cores: a worker can be busy for a few hundred ms with one
     * stream (ending an utterance, creating a decoder) while the others' audio
     * waits; the OS shares the cores among the extra threads. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ws->n_workers = cores < 2 ? 4 : cores > 16 ? 32 : 2 * (int)cores;
    ws->workers = calloc((size_t)ws->n_workers, sizeof *ws->workers);
    if (!ws->workers)
        goto fail;
    if (pthread_create(&ws->loop, NULL, ws_loop_main, ws) != 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "stream loop: cannot start thread");
        goto fail;
    }
    for (int i = 0; i < ws->n_workers; i++)
        if (pthread_create(&ws->workers[i], NULL, worker_main, ws) != 0) {
            ws->n_workers = i;
            break;
        }
    return ws;
fail:
    if (ws->wake_fd >= 0)
        close(ws->wake_fd);
    if (ws->epfd >= 0)
        close(ws->epfd);
    free(ws->workers);
    free(ws);
    return NULL;
}

void ld_ws_stop(ld_ws *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&ws->mu);
    bool again = ws->stopping; /* set only here: the threads are joined already */
    ws->stopping = true;
    pthread_cond_broadcast(&ws->run_cv);
    pthread_mutex_unlock(&ws->mu);
    if (again)
        return;
    ws_wake(ws);
    pthread_join(ws->loop, NULL); /* closes live streams with 1001 */
    /* Only now may the workers stop: the loop's last pass could still queue a
     * task, whose stream nobody would then release. */
    pthread_mutex_lock(&ws->mu);
    ws->loop_joined = true;
    pthread_cond_broadcast(&ws->run_cv);
    pthread_mutex_unlock(&ws->mu);
    for (int i = 0; i < ws->n_workers; i++)
        pthread_join(ws->workers[i], NULL);
}

void ld_ws_free(ld_ws *ws)
{
    if (!ws)
        return;
    ld_ws_stop(ws);
    /* Handshakes never upgraded: release their slots; tombstones go too. */
    ws_pending *p = ws->pending;
    while (p) {
        ws_pending *n = p->next;
        if (p->conn)
            ws_conn_unref(p->conn);
        free(p);
        p = n;
    }
    close(ws->wake_fd);
    close(ws->epfd);
    pthread_cond_destroy(&ws->run_cv);
    pthread_mutex_destroy(&ws->mu);
    free(ws->workers);
    free(ws);
}

int ld_ws_active(ld_ws *ws)
{
    pthread_mutex_lock(&ws->mu);
    int n = ws->live;
    pthread_mutex_unlock(&ws->mu);
    return n;
}
