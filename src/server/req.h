/* One HTTP request as the server sees it, and its lifecycle (req.c); internal
 * to src/server/. A request lives from the URI callback to libmicrohttpd's
 * completion callback; while it is suspended the work pool and the decoder pool
 * hold extra references, so it is reference-counted.
 *
 * Thread-safety: fields before `mu` are touched only by the connection's
 * libmicrohttpd thread until the request is suspended; the result fields are
 * written by whoever finishes the request, under `mu`, exactly once (`finished`). */
#ifndef LD_SERVER_REQ_H
#define LD_SERVER_REQ_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "server/compat_deepgram.h"
#include "server/opts.h"
#include "server/spool.h"
#include "util/err.h"

typedef struct ld_srv ld_srv;

typedef enum {
    LD_BODY_NONE,    /* no body expected / ignored */
    LD_BODY_DISCARD, /* an early error is pending: read and drop the body */
    LD_BODY_JSON,    /* application/json, kept in memory */
    LD_BODY_FORM,    /* multipart or urlencoded via MHD's post processor */
    LD_BODY_RAW,     /* audio bytes straight into the spool */
} ld_body_kind;

typedef struct ld_req {
    atomic_int refs;
    ld_srv *srv;
    struct MHD_Connection *conn;
    double t0;       /* monotonic start */
    double upgraded; /* monotonic time a stream's 101 was queued; 0 = not a stream (metrics.c) */
    char request_id[136];
    char client[64];
    char method[16];
    char path[256];
    bool started;       /* first access-handler call seen */
    bool is_ws;         /* GET /v1/listen/stream */
    bool lightning;     /* compatibility route: Lightning/Pulse response schema */
    bool openai;        /* compatibility route: OpenAI schemas and error envelope (compat_openai.h) */
    bool deepgram;      /* compatibility route: Deepgram schemas and error envelope (compat_deepgram.h) */
    ld_dg_opts dg;      /* ... and its Deepgram-only options */
    struct ld_sse *sse; /* OpenAI stream=true: the event stream being answered (sse.h), owned */
    /* set by the router (route.c) */
    const char *route_pattern; /* metric label: "/v1/jobs/{id}", "unmatched" (static) */
    bool batch;                /* a batch transcription: counts in asr_active_requests once admitted */
    bool counted_active;       /* ... and was counted (metrics.c) */
    enum MHD_Result (*final)(struct ld_req *r); /* the route's handler once the body is in */
    const char *allow;                          /* Allow header for 405 (static) */
    bool ws_version;                            /* a refused upgrade: say which version we speak */
    bool no_store;                              /* Cache-Control: no-store on the answer */
    bool close_conn;                            /* Connection: close on the answer (edge.c: the body is not read) */
    int too_many_args;                          /* query arguments beyond LD_EDGE_MAX_ARGS were cut off (edge.c) */
    const char *cors_preflight;                 /* a CORS preflight: the route's methods (cors.c) */

    /* authentication */
    bool authed;
    ld_key_claims key;
    ld_lease lease;
    bool have_rate;
    ld_rate_info rate;

    /* pending early error, answered once the body has been read */
    bool pending;
    ld_error perr;
    json_t *pextra;

    /* body intake */
    ld_body_kind body;
    uint64_t body_bytes;
    bool too_large;
    char *json; /* LD_BODY_JSON buffer */
    size_t json_len, json_cap;
    struct MHD_PostProcessor *pp;
    bool urlencoded; /* the form is application/x-www-form-urlencoded (it may turn out to be audio) */
    json_t *form;    /* non-file form fields: key -> string */
    bool form_audio; /* an `audio` (or `file`) form field was seen */
    ld_spool *spool;
    ld_listen_opts opts;
    bool fetch_slot;         /* holds one of the key's fetch units (srv fetch_cap) until the fetch ends */
    ld_quota_hold hold;      /* audio reserved against the key's quota until charged (pipeline.c) */
    atomic_bool client_gone; /* the client hung up while suspended (gone.c): stop working for it */
    void *asr_ctx;           /* pipeline.c's decoder-pool context while the pool has the audio */

    /* result, set once under mu by ld_req_finish_* */
    pthread_mutex_t mu;
    bool suspended;
    bool finished;
    bool conn_gone;   /* completion callback ran: never touch conn again */
    bool sse_charged; /* an event stream's transcript was charged: a client leaving after it keeps the charge */
    ld_error rerr;    /* rerr.code != LD_OK -> error envelope */
    json_t *rextra;
    unsigned rstatus;
    char *rbody; /* malloc'd */
    size_t rlen;
    const char *rtype; /* static string */

    struct ld_req *live_prev, *live_next; /* srv registry of suspended requests */
    bool in_live;

    unsigned status; /* what was sent, for the access log */
    double audio_seconds;
    uint64_t file_bytes; /* size of the audio file itself (upload or download) */
} ld_req;

ld_req *ld_req_new(ld_srv *srv, struct MHD_Connection *c, const char *uri);
void ld_req_ref(ld_req *r);
void ld_req_unref(ld_req *r);
/* libmicrohttpd's completion callback is done with r: releases its lease and
 * the server's counts, and drops the connection's reference. */
void ld_req_complete(ld_req *r);
/* r's whole answer is queued (not a stream of events): its concurrency lease
 * goes back now, before the client can read the answer, so a client that waits
 * for each answer never races its own previous request. MHD thread. */
void ld_req_answered(ld_req *r);

/* Suspends r's connection and records it as in flight (MHD thread). */
void ld_req_suspend(ld_req *r);
/* Finish a suspended request with an error (extra stolen) or a body (stolen),
 * and resume its connection. Only the first call wins; later ones are dropped
 * (the shutdown path may race the pool). Any thread. */
void ld_req_finish_error(ld_req *r, const ld_error *err, json_t *extra);
void ld_req_finish_body(ld_req *r, unsigned status, char *body, size_t len, const char *ctype);
/* Finishes every suspended request with 503 "shutting down" (drain timeout). */
void ld_req_abort_suspended(ld_srv *s);

/* Records an early error to answer once the body was read (extra stolen); the
 * first one wins. */
void ld_req_fail(ld_req *r, ld_err code, json_t *extra, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A body follows the headers (Content-Length > 0 or chunked). */
bool ld_req_has_body(const ld_req *r);
/* The client waits for 100-continue before sending its body. */
bool ld_req_expects_continue(const ld_req *r);

/* The request whose handler runs on this thread (NULL outside handlers); respond.c
 * uses it to add rate-limit headers and record the status. */
ld_req *ld_req_current(void);
void ld_req_set_current(ld_req *r);
/* Adds X-RateLimit-*, Allow, Cache-Control, Connection: close while draining;
 * records the status for the access log and /metrics. */
void ld_req_decorate(ld_req *r, struct MHD_Response *resp, unsigned status);
/* X-Quota-Limit / -Remaining (audio seconds) / -Reset (seconds to the end of
 * the UTC day) when admission read the key's usage; part of decorate, and
 * called by the WebSocket handshake, whose 101 is queued outside respond.c. */
void ld_req_quota_headers(const ld_req *r, struct MHD_Response *resp);
/* X-RateLimit-* when the key's rate is known (the 101 adds them itself). */
void ld_req_rate_headers(const ld_req *r, struct MHD_Response *resp);

#endif
