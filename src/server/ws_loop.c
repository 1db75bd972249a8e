/* The event loop: one thread, epoll over every upgraded socket plus an eventfd
 * that workers and MHD threads use to hand over sockets and results. wslay does
 * the RFC 6455 framing (masking check, ping/pong, fragments, close handshake);
 * this file adds flow control, timeouts and the hand-off to workers. */
#include "server/ws_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/ws_flux.h"
#include "server/ws_openai.h"
#include "util/log.h"
#include "util/time.h"

#define TICK_S 0.1
/* How often a live stream's key is checked again (revoked, expired): with the
 * store's own propagation (about 1 s) a revoked key's streams end within ~2 s. */
#define KEY_CHECK_S 1.0

static void teardown(ws_conn *c);

static void set_events(ws_conn *c)
{
    if (c->fd < 0)
        return;
    uint32_t ev = 0;
    if (wslay_event_want_read(c->ctx) && !c->paused)
        ev |= EPOLLIN;
    if (wslay_event_want_write(c->ctx))
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->ws->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    ws_conn *c = ud;
    if (c->paused) { /* flow control: leave the bytes in the kernel buffer */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = ld_ws_leftover_take(&c->extra, buf, len); /* not in the kernel: epoll would not call again */
    if (n) {
        c->oversize |= ld_ws_frame_scan_feed(&c->scan, buf, n, WS_MAX_MESSAGE);
        c->turn_bytes += n;
        return (ssize_t)n;
    }
    if (c->turn_bytes >= WS_TURN_MAX) { /* the others' turn; EPOLLIN is level-triggered: the rest comes next */
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ssize_t r;
    do
        r = recv(c->fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->oversize |= ld_ws_frame_scan_feed(&c->scan, buf, (size_t)r, WS_MAX_MESSAGE);
        c->turn_bytes += (size_t)r;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        r = LD_WS_IO_AGAIN;
    return ld_ws_recv_result(ctx, r);
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    ws_conn *c = ud;
    ssize_t r;
    do
        r = send(c->fd, data, len, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        r = LD_WS_IO_AGAIN;
    return ld_ws_send_result(ctx, r);
}

static ws_task *task_new(ws_task_kind kind, const uint8_t *data, size_t len)
{
    ws_task *t = malloc(sizeof *t + len);
    if (!t)
        return NULL;
    t->next = NULL;
    t->kind = kind;
    t->len = len;
    if (len)
        memcpy(t->data, data, len);
    return t;
}

static void push(ws_conn *c, ws_task_kind kind, const uint8_t *data, size_t len)
{
    ws_task *t = task_new(kind, data, len);
    if (!t) {
        ws_conn_fail(c, LD_ERR_INTERNAL, "out of memory");
        return;
    }
    ws_conn_push_task(c, t);
    pthread_mutex_lock(&c->mu);
    if (c->in_bytes >= WS_IN_HIGH && !c->paused) {
        c->paused = true;
        c->resume_wanted = false;
    }
    pthread_mutex_unlock(&c->mu);
}

/* A message of the loop's own (OpenAI's session and buffer events) straight
 * into wslay's queue, behind what the workers posted before it; msg taken. */
static void send_now(ws_conn *c, char *msg)
{
    if (!msg)
        return;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)msg, strlen(msg)};
    wslay_event_queue_msg(c->ctx, &m); /* copies */
    free(msg);
}

/* OpenAI's Realtime client events (ws_openai.h): audio arrives base64 in text
 * frames; a bad event is answered with an error event and the session goes on,
 * as OpenAI's does. The session can be reconfigured until the first audio (the
 * worker reads c->params from its first task on). */
static void on_openai(ws_conn *c, const struct wslay_event_on_msg_recv_arg *m)
{
    uint8_t *audio;
    size_t n;
    bool beta;
    char id[64];
    ld_error e = {0};
    ld_ws_oa_settings now, q; /* once audio flows a worker also writes c->params, but never these */
    ld_ws_oa_settings_get(&c->params, &now);
    q = now;
    c->last_activity = ld_time_mono();
    switch (ld_ws_oa_client_event((const char *)m->msg, m->msg_length, &q, &audio, &n, &beta, id, &e)) {
    case LD_WS_OA_APPEND:
        if (n) {
            c->got_audio = c->oa_pending = true;
            push(c, WS_TASK_AUDIO, audio, n);
        }
        free(audio);
        return;
    case LD_WS_OA_COMMIT: /* as OpenAI's: nothing appended since the last commit or clear is an error */
        if (c->oa_pending) {
            c->oa_pending = false;
            push(c, WS_TASK_FINALIZE, NULL, 0);
            return;
        }
        ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "Error committing input audio buffer: the buffer is empty");
        break;
    case LD_WS_OA_CLEAR: /* the worker drops what it decoded of the buffer, then answers */
        c->oa_pending = false;
        if (c->got_audio)
            push(c, WS_TASK_CLEAR, NULL, 0);
        else
            send_now(c, ld_ws_oa_cleared());
        return;
    case LD_WS_OA_UPDATE:
        if (c->got_audio && !ld_ws_oa_settings_equal(&q, &now)) {
            ld_error_set(&e, LD_ERR_INVALID_PARAMETER,
                         "The session (audio format, language, turn detection) can only change before the first "
                         "audio");
            break;
        }
        if (c->ws->cfg.pool && !ld_pool_has_language(c->ws->cfg.pool, q.language)) {
            ld_error_set(&e, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language for streaming: '%s'", q.language);
            break;
        }
        if (!c->got_audio) /* no worker has the stream yet; after it, nothing changed (above) */
            ld_ws_oa_settings_put(&c->params, &q);
        send_now(c, ld_ws_oa_session(c->session_id, &q, true, beta));
        return;
    case LD_WS_OA_IGNORED: return;
    case LD_WS_OA_INVALID: break;
    }
    send_now(c, ld_ws_oa_error(&e, id));
}

/* Deepgram Flux's client messages (ws_flux.h). */
static void on_flux(ws_conn *c, const struct wslay_event_on_msg_recv_arg *m)
{
    c->last_activity = ld_time_mono();
    switch (ld_ws_flux_control_parse((const char *)m->msg, m->msg_length)) {
    case LD_FLUX_CTL_KEEPALIVE: break;
    case LD_FLUX_CTL_FORCE_END: push(c, WS_TASK_FINALIZE, NULL, 0); break;
    case LD_FLUX_CTL_CLOSE_STREAM:
        c->client_done = true;
        push(c, WS_TASK_CLOSE_STREAM, NULL, 0);
        break;
    case LD_FLUX_CTL_CONFIGURE: push(c, WS_TASK_CONFIGURE, m->msg, m->msg_length); break;
    case LD_FLUX_CTL_INVALID:
        c->client_done = true;
        ws_conn_fail(
            c, LD_ERR_INVALID_PARAMETER,
            "Unknown message: expected CloseStream, ForceEndTurn or Configure; send audio as binary frames");
        break;
    }
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *ud)
{
    (void)ctx;
    ws_conn *c = ud;
    if (c->closing || c->client_done)
        return; /* the stream is ending: late audio and controls are ignored */
    if (m->opcode == WSLAY_BINARY_FRAME && c->params.openai) { /* OpenAI's protocol has no binary messages */
        ld_error e;
        ld_error_set(&e, LD_ERR_INVALID_PARAMETER,
                     "Binary frames are not part of the realtime protocol: send audio as "
                     "input_audio_buffer.append events with base64 audio");
        send_now(c, ld_ws_oa_error(&e, ""));
        return;
    }
    if (m->opcode == WSLAY_BINARY_FRAME) {
        c->last_activity = ld_time_mono();
        if (m->msg_length) {
            c->got_audio = true;
            push(c, WS_TASK_AUDIO, m->msg, m->msg_length);
        }
        return;
    }
    if (m->opcode != WSLAY_TEXT_FRAME)
        return; /* ping/pong/close are answered by wslay */
    if (c->params.openai) {
        on_openai(c, m);
        return;
    }
    if (c->params.flux) {
        on_flux(c, m);
        return;
    }
    switch (ld_ws_control_parse((const char *)m->msg, m->msg_length)) {
    case LD_WS_CTL_KEEPALIVE: c->last_activity = ld_time_mono(); break;
    case LD_WS_CTL_FINALIZE:
        c->last_activity = ld_time_mono();
        push(c, WS_TASK_FINALIZE, NULL, 0);
        break;
    case LD_WS_CTL_CLOSE_STREAM:
        c->client_done = true;
        push(c, WS_TASK_CLOSE_STREAM, NULL, 0);
        break;
    case LD_WS_CTL_UNKNOWN_TYPE:
        c->client_done = true;
        ws_conn_fail(c, LD_ERR_INVALID_PARAMETER,
                     "Unknown control message type (expected finalize, close_stream or keepalive)");
        break;
    case LD_WS_CTL_INVALID:
        c->client_done = true;
        ws_conn_fail(c, LD_ERR_INVALID_PARAMETER,
                     "Text frames must be JSON control messages such as {\"type\":\"finalize\"}; send audio as "
                     "binary frames");
        break;
    }
}

/* wslay sends control frames ahead of queued messages, so a close queued right
 * after an error message would overtake it (and the message would be dropped).
 * The close waits in pending_close until the messages before it are out. */
static void queue_close(ws_conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_deadline = ld_time_mono() + WS_CLOSE_WAIT_S;
    ws_conn_release_live(c);
    c->pending_close = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
}

static void flush_close(ws_conn *c)
{
    if (!c->pending_close || wslay_event_get_queued_msg_count(c->ctx) > 0)
        return;
    wslay_event_queue_close(c->ctx, (uint16_t)c->pending_close, (const uint8_t *)c->close_reason,
                            strlen(c->close_reason));
    c->pending_close = 0;
}

static void note_close(ws_conn *c)
{
    if (c->closing || !(wslay_event_get_close_received(c->ctx) || wslay_event_get_close_sent(c->ctx)))
        return;
    /* the peer closed (wslay answers it) or wslay refused a frame (1002/1009) */
    c->closing = true;
    c->close_deadline = ld_time_mono() + WS_CLOSE_WAIT_S;
    ws_conn_release_live(c);
    ws_conn_end(c);
}

/* Our close frame is out. Closing the socket on unread bytes would reset the
 * connection before the client sees it: half-close, then drain() discards what
 * arrives until the client's EOF (or a deadline) tears the connection down. */
static void half_close(ws_conn *c)
{
    c->draining = true;
    shutdown(c->fd, SHUT_WR);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(c->ws->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = EPOLLIN;
}

static void do_write(ws_conn *c)
{
    if (c->fd < 0 || c->draining)
        return;
    for (int i = 0; i < 2; i++) { /* a second round sends a close that the first one unblocked */
        flush_close(c);
        if (wslay_event_send(c->ctx) != 0) {
            teardown(c);
            return;
        }
    }
    note_close(c);
    if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx)) {
        if (wslay_event_get_close_received(c->ctx)) {
            teardown(c); /* close handshake complete */
            return;
        }
        /* We closed after refusing a frame and wslay reads no more. */
        half_close(c);
        return;
    }
    set_events(c);
}

static void drain(ws_conn *c)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r > 0)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        teardown(c);
        return;
    }
}

/* More than WS_OUT_MAX unsent — results, or what wslay and the loop answer
 * themselves (pongs, OpenAI error events) to a client that floods and never
 * reads: stop working for it and leave (1008), before its queue eats memory. */
static void check_out_cap(ws_conn *c)
{
    if (c->closing || wslay_event_get_queued_msg_length(c->ctx) <= WS_OUT_MAX)
        return;
    ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "session_id", c->session_id),
                  "stream closed: client does not read its results");
    pthread_mutex_lock(&c->mu);
    c->dead = true;
    c->paused = true;
    pthread_mutex_unlock(&c->mu);
    queue_close(c, LD_WS_CLOSE_POLICY, "Client is not reading results");
    /* it will not read what is queued either: let the close jump the queue */
    wslay_event_queue_close(c->ctx, LD_WS_CLOSE_POLICY, NULL, 0);
    c->pending_close = 0;
}

static void do_read(ws_conn *c)
{
    if (c->fd < 0)
        return;
    if (c->draining) {
        drain(c);
        return;
    }
    c->turn_bytes = 0;
    if (wslay_event_recv(c->ctx) != 0) {
        teardown(c);
        return;
    }
    check_out_cap(c);
    if (c->oversize && !c->closing) {
        /* A header announced more than a message may hold; wslay would wait
         * for the payload. Refuse now, as wslay does once bytes arrive. */
        c->oversize = false;
        ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "session_id", c->session_id),
                      "stream closed: frame larger than %d bytes announced", WS_MAX_MESSAGE);
        pthread_mutex_lock(&c->mu);
        c->dead = true;
        c->paused = true;
        pthread_mutex_unlock(&c->mu);
        wslay_event_queue_close(c->ctx, LD_WS_CLOSE_TOO_BIG, NULL, 0);
        c->pending_close = 0;
    }
    note_close(c);
    do_write(c);
}

/* Delivers what the workers posted; resumes reading when they caught up. */
static void handle_notify(ws_conn *c)
{
    if (c->fd < 0)
        return;
    bool resume = false;
    pthread_mutex_lock(&c->mu);
    ws_out *o = c->out_head;
    c->out_head = c->out_tail = NULL;
    if (c->paused && c->resume_wanted) {
        c->paused = false;
        c->resume_wanted = false;
        resume = true;
    }
    pthread_mutex_unlock(&c->mu);
    while (o) {
        ws_out *n = o->next;
        if (o->close_code) {
            queue_close(c, o->close_code, o->data);
        } else if (!c->closing) {
            struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)o->data, o->len};
            wslay_event_queue_msg(c->ctx, &msg);
        }
        free(o);
        o = n;
    }
    check_out_cap(c);
    if (resume)
        do_read(c); /* also drains bytes MHD handed over */
    else
        do_write(c);
}

static void adopt(ld_ws *ws, ws_conn *c)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = on_msg};
    int fl = fcntl(c->fd, F_GETFL);
    if (fl >= 0)
        fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    if (wslay_event_context_server_init(&c->ctx, &cb, c) != 0) {
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        c->fd = -1;
        ws_conn_unref(c);
        return;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, WS_MAX_MESSAGE);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    c->events = EPOLLIN;
    if (epoll_ctl(ws->epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) {
        wslay_event_context_free(c->ctx);
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        c->fd = -1;
        ws_conn_unref(c);
        return;
    }
    c->last_activity = ld_time_mono();
    c->loop_prev = NULL;
    c->loop_next = ws->live_head;
    if (ws->live_head)
        ws->live_head->loop_prev = c;
    ws->live_head = c;
    if (c->params.openai) { /* OpenAI's clients wait for it before they configure the session */
        ld_ws_oa_settings st;
        ld_ws_oa_settings_get(&c->params, &st);
        send_now(c, ld_ws_oa_session(c->session_id, &st, false, false));
        do_write(c);
    } else if (c->params.flux) { /* Flux's first message, sequence_id 0 */
        send_now(c, ld_ws_flux_connected(c->request_id, ws_conn_seq(c)));
        do_write(c);
    }
    if (ld_ws_leftover_pending(&c->extra))
        do_read(c);
}

/* What every stream hears when the server stops: the error message and the 1001 reason. */
static const char SHUTDOWN_MSG[] = "Server is shutting down";

/* One unmasked server frame written straight to the socket (no wslay context:
 * the loop is gone). Small frames on a fresh socket: the send buffer takes them. */
static void raw_frame(int fd, uint8_t opcode, const uint8_t *p, size_t n)
{
    uint8_t h[4] = {(uint8_t)(0x80 | opcode)};
    size_t hl = 2;
    if (n < 126) {
        h[1] = (uint8_t)n;
    } else {
        n = n > 0xFFFF ? 0xFFFF : n;
        h[1] = 126, h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n, hl = 4;
    }
    if (send(fd, h, hl, MSG_NOSIGNAL) == (ssize_t)hl && n)
        (void)!send(fd, p, n, MSG_NOSIGNAL);
}

/* Half-closes fd and discards what the client still sends until it closes too
 * or `seconds` pass. Closing a socket with unread bytes resets the connection,
 * and the client then loses the close frame just sent (1006 instead of 1001). */
static void linger_fd(int fd, double seconds)
{
    shutdown(fd, SHUT_WR);
    double until = ld_time_mono() + seconds;
    char buf[16384];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0)
            continue;
        int ms = (int)((until - ld_time_mono()) * 1000);
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) || ms <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        (void)poll(&p, 1, ms);
    }
}

/* An upgrade that completed after the loop's last pass (SIGTERM right after
 * the 101): the client still gets the shutdown error and a 1001 close, and the
 * connection is released instead of waiting on a list nobody reads. */
static void close_late(ws_conn *c)
{
    char *m = ws_conn_error_msg(c, LD_ERR_SERVICE_UNAVAILABLE, SHUTDOWN_MSG);
    if (m)
        raw_frame(c->fd, WSLAY_TEXT_FRAME, (const uint8_t *)m, strlen(m));
    free(m);
    uint8_t body[2 + sizeof SHUTDOWN_MSG - 1] = {LD_WS_CLOSE_GOING_AWAY >> 8, LD_WS_CLOSE_GOING_AWAY & 0xFF};
    memcpy(body + 2, SHUTDOWN_MSG, sizeof SHUTDOWN_MSG - 1);
    raw_frame(c->fd, WSLAY_CONNECTION_CLOSE, body, sizeof body);
    linger_fd(c->fd, WS_LINGER_LATE_S);
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    c->fd = -1;
    ws_conn_unref(c);
}

void ws_loop_adopt(ws_conn *c, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t extra_len)
{
    c->fd = fd;
    c->urh = urh;
    ld_ws_leftover_set(&c->extra, extra, extra_len);
    ld_ws *ws = c->ws;
    pthread_mutex_lock(&ws->mu);
    bool late = ws->loop_done;
    if (!late) {
        c->loop_next = ws->adopt_head;
        ws->adopt_head = c;
    }
    pthread_mutex_unlock(&ws->mu);
    if (late)
        close_late(c);
    else
        ws_wake(ws);
}

static void teardown(ws_conn *c)
{
    if (c->fd < 0)
        return;
    ld_ws *ws = c->ws;
    epoll_ctl(ws->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    wslay_event_context_free(c->ctx);
    c->ctx = NULL;
    ws_conn_release_live(c); /* before the client sees the socket close */
    ws_conn_end(c);
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    c->fd = -1;
    if (c->loop_prev)
        c->loop_prev->loop_next = c->loop_next;
    else
        ws->live_head = c->loop_next;
    if (c->loop_next)
        c->loop_next->loop_prev = c->loop_prev;
    /* The loop's reference is dropped at the end of this loop iteration, so
     * later events of the same epoll batch never see freed memory. */
    c->loop_next = ws->graveyard;
    ws->graveyard = c;
}

static void bury(ld_ws *ws)
{
    while (ws->graveyard) {
        ws_conn *c = ws->graveyard;
        ws->graveyard = c->loop_next;
        ws_conn_unref(c);
    }
}

/* Audio still queued (or reading paused for it) is not idleness: the client
 * may be waiting for us. */
static bool backlog(ws_conn *c)
{
    pthread_mutex_lock(&c->mu);
    bool busy = c->paused || c->in_bytes > 0 || c->scheduled;
    pthread_mutex_unlock(&c->mu);
    if (busy)
        c->last_activity = ld_time_mono();
    return busy;
}

/* OpenAI's realtime clients send no keepalive: a push-to-talk session is
 * silent between takes, so it gets its own, longer limit. */
static int idle_limit(const ld_ws *ws, const ws_conn *c)
{
    return c->params.openai ? ws->cfg.realtime_idle_s : ws->cfg.idle_timeout_s;
}

static void tick(ld_ws *ws, double now)
{
    for (ws_conn *c = ws->live_head, *next; c; c = next) {
        next = c->loop_next;
        if (c->closing) {
            if (now > c->close_deadline)
                teardown(c);
        } else if (!c->client_done && now - c->last_activity > idle_limit(ws, c) && !backlog(c)) {
            char msg[96];
            snprintf(msg, sizeof msg,
                     c->params.openai ? "No client event received for %d seconds"
                                      : "No audio or keepalive received for %d seconds",
                     idle_limit(ws, c));
            c->client_done = true;
            if (c->got_audio) /* the utterance in progress gets its final first (its audio has been decoded) */
                push(c, WS_TASK_IDLE, (const uint8_t *)msg, strlen(msg) + 1);
            else
                ws_conn_fail(c, LD_ERR_REQUEST_TIMEOUT, msg);
        } else if (now - c->key_checked >= KEY_CHECK_S) {
            c->key_checked = now;
            ld_error e = {0};
            if (ws->cfg.auth && ld_auth_recheck(ws->cfg.auth, &c->claims, &e) != LD_OK) {
                c->client_done = true; /* the close follows: no idle timeout on top */
                ws_conn_fail(c, e.code, e.msg);
            }
        }
    }
    /* Handshakes whose upgrade never came: free their slot, keep a tombstone
     * because MHD may still call the upgrade handler with it. */
    ws_conn *reap = NULL;
    pthread_mutex_lock(&ws->mu);
    for (ws_pending **pp = &ws->pending; *pp;) {
        ws_pending *p = *pp;
        if (p->adopted) {
            *pp = p->next;
            free(p);
            continue;
        }
        if (p->conn && now - p->created > WS_PENDING_TTL_S) {
            p->conn->loop_next = reap;
            reap = p->conn;
            p->conn = NULL;
        }
        pp = &p->next;
    }
    pthread_mutex_unlock(&ws->mu);
    while (reap) {
        ws_conn *n = reap->loop_next;
        ws_conn_unref(reap);
        reap = n;
    }
}

static bool drain_wake(ld_ws *ws)
{
    uint64_t v;
    ssize_t r = read(ws->wake_fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&ws->mu);
    ws_conn *adopt_list = ws->adopt_head, *notify = ws->notify_head;
    ws->adopt_head = ws->notify_head = NULL;
    for (ws_conn *c = notify; c; c = c->notify_next) {
        c->drain_next = c->notify_next; /* notify_next is the workers' again once notified is false */
        c->notified = false;
    }
    bool stopping = ws->stopping;
    pthread_mutex_unlock(&ws->mu);
    while (adopt_list) {
        ws_conn *n = adopt_list->loop_next;
        adopt(ws, adopt_list);
        adopt_list = n;
    }
    while (notify) {
        ws_conn *n = notify->drain_next;
        handle_notify(notify);
        ws_conn_unref(notify);
        notify = n;
    }
    return stopping;
}

/* Shutdown, first step: every stream that sent audio and is not ending gets
 * its last final (WS_TASK_SHUTDOWN, queued behind its audio); later audio and
 * controls are ignored. Marks what it handled: safe to call on every pass. */
static void finish_streams(ld_ws *ws)
{
    for (ws_conn *c = ws->live_head; c; c = c->loop_next) {
        if (c->closing || c->client_done)
            continue;
        c->client_done = true;
        if (c->got_audio)
            push(c, WS_TASK_SHUTDOWN, NULL, 0);
    }
}

/* True once no worker has anything of a live stream left to do and what they
 * posted has been handed to wslay (a notification still queued is not). */
static bool streams_settled(ld_ws *ws)
{
    for (ws_conn *c = ws->live_head; c; c = c->loop_next) {
        pthread_mutex_lock(&c->mu);
        bool busy = c->scheduled && !c->dead;
        pthread_mutex_unlock(&c->mu);
        if (busy)
            return false;
    }
    pthread_mutex_lock(&ws->mu);
    bool unheard = ws->notify_head != NULL;
    pthread_mutex_unlock(&ws->mu);
    return !unheard;
}

void *ws_loop_main(void *arg)
{
    ld_ws *ws = arg;
    double last_tick = ld_time_mono();
    double finish_until = 0; /* > 0: stopping, streams get their last finals until then */
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ws->epfd, evs, 64, (int)(TICK_S * 1000));
        bool stop = false;
        for (int i = 0; i < n; i++) {
            ws_conn *c = evs[i].data.ptr;
            if (!c) {
                stop = drain_wake(ws);
                continue;
            }
            if (c->fd < 0)
                continue; /* torn down earlier in this batch (still allocated: see bury) */
            if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && (c->paused || c->draining))
                teardown(c); /* reported until handled: reading would not consume it */
            else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                do_read(c);
            else if (evs[i].events & EPOLLOUT)
                do_write(c);
        }
        double now = ld_time_mono();
        if (now - last_tick >= TICK_S) {
            tick(ws, now);
            last_tick = now;
        }
        bury(ws);
        if (stop && finish_until == 0)
            finish_until = ld_time_mono() + WS_FINISH_S;
        if (finish_until > 0) {
            finish_streams(ws); /* each pass: also streams adopted since */
            if (streams_settled(ws) || ld_time_mono() >= finish_until)
                break;
        }
    }
    /* Upgrades queued since the last drain, and any later ones, are closed
     * with 1001 directly (close_late): none is left on adopt_head. */
    pthread_mutex_lock(&ws->mu);
    ws_conn *late = ws->adopt_head, *unheard = ws->notify_head;
    ws->adopt_head = ws->notify_head = NULL;
    ws->loop_done = true; /* and from now on notifications are not queued */
    for (ws_conn *c = unheard; c; c = c->notify_next)
        c->notified = false;
    pthread_mutex_unlock(&ws->mu);
    while (late) {
        ws_conn *n = late->loop_next;
        close_late(late);
        late = n;
    }
    /* Shutdown: tell every client, push the close out, then half-close and
     * discard what clients still send until they close too (half_close says
     * why), all together for at most WS_LINGER_S. */
    for (ws_conn *c = ws->live_head; c; c = c->loop_next) {
        if (!c->closing) {
            struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, NULL, 0};
            char *m = ws_conn_error_msg(c, LD_ERR_SERVICE_UNAVAILABLE, SHUTDOWN_MSG);
            if (m) {
                msg.msg = (const uint8_t *)m;
                msg.msg_length = strlen(m);
                wslay_event_queue_msg(c->ctx, &msg);
                free(m);
            }
            queue_close(c, LD_WS_CLOSE_GOING_AWAY, SHUTDOWN_MSG);
        }
        if (!c->draining) {
            wslay_event_send(c->ctx);
            flush_close(c);
            wslay_event_send(c->ctx);
            half_close(c);
        }
    }
    double until = ld_time_mono() + WS_LINGER_S;
    int ms;
    while (ws->live_head && (ms = (int)((until - ld_time_mono()) * 1000)) > 0) {
        int n = epoll_wait(ws->epfd, evs, 64, ms);
        for (int i = 0; i < n; i++) {
            ws_conn *c = evs[i].data.ptr;
            if (!c) { /* wake-ups: nothing more to hand over */
                uint64_t v;
                (void)!read(ws->wake_fd, &v, sizeof v);
            } else if (c->fd >= 0) {
                drain(c); /* tears down at the client's EOF */
            }
        }
        bury(ws);
    }
    while (ws->live_head)
        teardown(ws->live_head);
    bury(ws);
    while (unheard) { /* notified after the last pass: their streams are closed above */
        ws_conn *n = unheard->notify_next;
        ws_conn_unref(unheard);
        unheard = n;
    }
    return NULL;
}
