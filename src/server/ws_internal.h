/* State shared by the ws_*.c files; internal to src/server/.
 *
 * One stream = one ws_conn, shared by three parties:
 *  - the event-loop thread owns the socket, the wslay context and timers;
 *  - a worker thread (one at a time per stream) owns the decoding state;
 *  - both meet in the mutex-protected queues: `in` (audio and controls from
 *    the loop to the workers) and `out` (messages and the close from the
 *    workers to the loop).
 * Lifetime is a reference count: the loop holds one while the socket is open,
 * the worker queue one while the stream is scheduled, the loop's notify list
 * one while listed. The last unref releases the decoder and the key's slot. */
#ifndef LD_SERVER_WS_INTERNAL_H
#define LD_SERVER_WS_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <wslay/wslay.h>

#include "asr/pool.h"
#include "audio/stream.h"
#include "auth/auth.h"
#include "server/ws.h"
#include "server/ws_proto.h"

#define WS_MAX_MESSAGE (1 << 20) /* one audio frame or text message; larger -> close 1009 */
#define WS_IN_HIGH (512 * 1024)  /* queued input bytes: stop reading from the socket */
#define WS_IN_LOW (128 * 1024)   /* ... and resume below this */
#define WS_OUT_MAX (1 << 20)     /* unsent output bytes: the client does not read -> close 1008 */
#define WS_TASK_COST 1024        /* counted in in_bytes per task beside its bytes: control messages fill it too */
#define WS_TURN_MAX (64 * 1024)  /* bytes read from one socket before the loop serves the others */
#define WS_CLOSE_WAIT_S 5.0      /* after our close frame, wait this long for the peer's */
#define WS_FINISH_S 3.0          /* at shutdown: time the workers get for each stream's last final */
#define WS_LINGER_S 1.0          /* at shutdown: time the clients get to read our close frames */
#define WS_LINGER_LATE_S 0.2     /* ... for one upgrade that completed after the loop ended */
#define WS_PENDING_TTL_S 60.0    /* an accepted handshake whose upgrade never happened */
#define WS_USAGE_STEP_S 1.0      /* report audio seconds to the quota this often */
#define WS_MAX_UTTERANCE_S 20.0  /* force a final without a pause (engine cost grows) */

/* WS_TASK_SHUTDOWN: the server is stopping; the utterance in progress gets its
 * final (only if it has words), then the loop closes the stream with 1001.
 * WS_TASK_IDLE: the idle timeout (data: the message); the same final, then the
 * worker ends the stream with REQUEST_TIMEOUT (1008).
 * WS_TASK_CLEAR: OpenAI's input_audio_buffer.clear; the utterance in progress
 * ends without words, then input_audio_buffer.cleared is sent.
 * WS_TASK_CONFIGURE: Flux's Configure (data: the message), applied by the
 * worker between the audio sent before and after it, and answered there so
 * that its sequence_id falls in order among the worker's messages. */
typedef enum {
    WS_TASK_AUDIO,
    WS_TASK_FINALIZE,
    WS_TASK_CLOSE_STREAM,
    WS_TASK_SHUTDOWN,
    WS_TASK_IDLE,
    WS_TASK_CLEAR,
    WS_TASK_CONFIGURE
} ws_task_kind;

typedef struct ws_task {
    struct ws_task *next;
    ws_task_kind kind;
    size_t len;
    uint8_t data[];
} ws_task;

/* What a queued task counts against WS_IN_HIGH: its bytes plus WS_TASK_COST. */
static inline size_t ws_task_cost(const ws_task *t) { return t->len + WS_TASK_COST; }

typedef struct ws_out {
    struct ws_out *next;
    int close_code; /* 0: a text message; else close after the messages before it */
    size_t len;
    char data[];
} ws_out;

typedef struct ws_session ws_session; /* worker-side state (ws_session.c) */

typedef struct ws_conn {
    ld_ws *ws;
    char session_id[32];
    char request_id[136]; /* as ld_req: X-Request-ID may be 128 characters */
    char client_addr[64];
    ld_ws_params params;
    atomic_uint seq; /* Flux: the next message's sequence_id (loop and worker both send) */
    ld_key_claims claims;
    ld_lease lease;
    ld_stream_decoder *decoder;
    double created;
    double charged; /* audio seconds counted to the key (every channel): the session thread, then the last unref */
    /* What the next stream may need goes back as soon as this one is over,
     * before the client can see it end, so a client that reconnects at once
     * is not refused (ws_conn_release_live, ws_conn_end). */
    bool holds_live;   /* counts in ws->live, with its key's lease: loop thread or last reference */
    int slots;         /* what it counts in ws->live: one stream decoder per channel */
    bool session_over; /* session and decoders released: by whoever may touch sess (see ws.c) */

    /* loop thread only */
    struct ws_conn *loop_next, *loop_prev; /* live list */
    /* the notify list being handled: copied from notify_next under ws->mu, since
     * once `notified` is cleared a worker may link the stream into the next list */
    struct ws_conn *drain_next;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ctx;
    ld_ws_leftover extra;  /* bytes MHD read past the request head */
    uint32_t events;       /* epoll mask registered */
    double last_activity;  /* audio or keepalive */
    double close_deadline; /* 0 until we sent/queued a close */
    bool closing;          /* a close frame is queued or the peer's arrived */
    int pending_close;     /* close code waiting for earlier messages to go out */
    char close_reason[124];
    bool draining;         /* our close is out; discarding input until EOF */
    bool client_done;      /* close_stream received: no idle timeout while we finish */
    bool got_audio;        /* audio was queued: at shutdown it gets a last final */
    bool oa_pending;       /* OpenAI: audio was appended since the last commit or clear */
    double key_checked;    /* last revocation/expiry re-check (monotonic) */
    ld_ws_frame_scan scan; /* frame headers in the raw input (oversize -> 1009 at once) */
    size_t turn_bytes;     /* read in this turn of the loop (WS_TURN_MAX) */
    bool oversize;         /* a header announced a frame over WS_MAX_MESSAGE */

    /* shared, under mu */
    pthread_mutex_t mu;
    int refs;
    ws_task *in_head, *in_tail;
    size_t in_bytes;
    ws_out *out_head, *out_tail;
    bool scheduled;     /* in the worker run queue or running */
    bool notified;      /* in the loop's notify list */
    bool dead;          /* socket gone: drop work */
    bool paused;        /* loop stopped reading the socket (flow control) */
    bool resume_wanted; /* worker drained input below WS_IN_LOW while paused */
    bool in_task;       /* a worker is running one of its tasks */
    ws_out *held_close; /* a close posted during a task: sent once the task released the session */
    struct ws_conn *run_next, *notify_next;

    /* the worker running the stream's task; once dead and unscheduled, the loop (ws.c's release_session) */
    ws_session *sess;
} ws_conn;

/* A handshake accepted by ld_ws_handle, waiting for MHD's upgrade callback. */
typedef struct ws_pending {
    struct ws_pending *next;
    ld_ws *ws;
    ws_conn *conn; /* NULL once adopted or reaped (then a tombstone) */
    double created;
    bool adopted;
} ws_pending;

struct ld_ws {
    ld_ws_config cfg;
    pthread_mutex_t mu; /* counters, pending list, adopt list, notify list, run queue */
    pthread_cond_t run_cv;
    int live; /* stream decoders held by admitted streams, one per channel, not yet released */
    ws_pending *pending;
    ws_conn *adopt_head; /* upgraded, waiting for the loop to register */
    ws_conn *notify_head;
    ws_conn *run_head, *run_tail;
    bool stopping;
    bool loop_done;   /* the loop has exited: late upgrades are closed by ws_loop_adopt itself */
    bool loop_joined; /* ld_ws_stop joined the loop: the workers finish the queue and exit */
    int wake_fd;      /* eventfd: adopt/notify/stop */
    int epfd;
    pthread_t loop;
    pthread_t *workers;
    int n_workers;
    ws_conn *live_head; /* loop thread only */
    ws_conn *graveyard; /* loop thread only: torn down this iteration */
};

/* ws.c */
ws_conn *ws_conn_new(ld_ws *ws);
void ws_conn_ref(ws_conn *c);
void ws_conn_unref(ws_conn *c);
void ws_wake(ld_ws *ws);
/* From the loop: queue input for the workers (takes ownership of t). */
void ws_conn_push_task(ws_conn *c, ws_task *t);
/* From a worker: queue a text message (taken) or a close for the loop. */
void ws_conn_post(ws_conn *c, char *msg);
/* Flux's sequence_id for the next message built (ws_flux.h). */
static inline unsigned ws_conn_seq(ws_conn *c) { return atomic_fetch_add(&c->seq, 1); }
void ws_conn_post_close(ws_conn *c, int code, const char *reason);
/* True once the stream is over (a close posted or the socket gone): its
 * results would not be sent. Any thread. */
bool ws_conn_gone(ws_conn *c);
/* From a worker or the loop, under no lock: ask the loop to look at c. */
void ws_conn_notify(ws_conn *c);
/* The stream is over (closing or torn down), from the loop: gives back its
 * place among ws->live and its key's lease. Idempotent. */
void ws_conn_release_live(ws_conn *c);
/* Marks c dead (workers drop its work) and, when no worker has it, releases
 * its session and decoders now; otherwise the worker does at the end of its
 * task. From the loop. */
void ws_conn_end(ws_conn *c);

/* ws_loop.c */
void *ws_loop_main(void *arg);
/* MHD upgrade callback target: hands the socket to the loop. */
void ws_loop_adopt(ws_conn *c, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t extra_len);

/* ws_session.c (worker threads) */
/* The stream's session, at its first task: with no `encoding` asked, a first
 * audio message that is a container sets c->params' encoding (and rate), and
 * a WAV header is taken off it (t->len shrinks). */
ws_session *ws_session_new(ws_conn *c, ws_task *first, ld_error *err);
void ws_session_free(ws_conn *c, ws_session *s); /* also counts unreported usage */
/* Runs one task; returns false when the session ended (close posted). */
bool ws_session_run(ws_conn *c, ws_task *t);
/* Posts an error message and the matching close. */
void ws_conn_fail(ws_conn *c, ld_err e, const char *message);
/* The stream's error message in its protocol: listend's {"type":"error",…},
 * OpenAI's error event on /v1/realtime, Flux's Error (malloc'd JSON text). */
char *ws_conn_error_msg(ws_conn *c, ld_err e, const char *message);

#endif
