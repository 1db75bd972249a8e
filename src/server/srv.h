/* The running server: configuration, the modules it drives, and the calls
 * between the files of src/server (internal header).
 * Thread-safety: fields are set before the daemon starts and read-only after,
 * except the atomics and the request registry (under `mu`). */
#ifndef LD_SERVER_SRV_H
#define LD_SERVER_SRV_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "asr/pool.h"
#include "auth/auth.h"
#include "jobs/jobs.h"
#include "server/config.h"
#include "server/req.h"
#include "server/work.h"
#include "server/ws.h"
#include "store/store.h"

#define LD_SPOOL_MEM_LIMIT (256 * 1024) /* bodies above this go to <data>/tmp */
#define LD_JSON_BODY_MAX (1024 * 1024)
#define LD_RETRY_AFTER_BUSY 30          /* seconds, as in the spec's 503 example */
/* A refused upload is still read (and dropped) up to max_body + this, so the
 * client sees the JSON answer instead of a connection reset. */
#define LD_DRAIN_EXTRA ((uint64_t)256 * 1024 * 1024)

struct ld_srv {
    ld_srv_config cfg;
    char tmp_dir[1100];
    uint64_t max_body;                  /* bytes */
    ld_store *store;
    ld_auth *auth;
    ld_pool *pool;
    ld_ws *ws;
    ld_jobs *jobs;
    ld_work *work;
    struct MHD_Daemon *daemon;
    double started_mono;
    atomic_int active;                  /* live requests (URI seen, not completed) */
    atomic_int ws_active;               /* of which WebSocket requests (not drained) */
    atomic_bool draining;               /* SIGTERM seen: Connection: close, health 503 */
    atomic_bool stopping;               /* drain over: no new work is accepted */
    pthread_mutex_t mu;                 /* guards `live` */
    ld_req *live;                       /* suspended requests, for forced shutdown */
};

/* http.c: the libmicrohttpd daemon and its callbacks. */
struct MHD_Daemon *ld_http_start(ld_srv *s, ld_error *err);
/* Suspends r's connection and records it as in flight (MHD thread). */
void ld_http_suspend(ld_req *r);
/* Finishes every suspended request with 503 "shutting down" (drain timeout). */
void ld_http_abort_suspended(ld_srv *s);

/* route.c: what to do with a request once its headers are in. */
enum MHD_Result ld_route_first(ld_req *r, const char *url, const char *method);
enum MHD_Result ld_route_final(ld_req *r);
bool ld_route_has_body(struct MHD_Connection *c); /* Content-Length > 0 or chunked */
bool ld_route_expects_continue(struct MHD_Connection *c);

/* gate.c: authentication and admission; false -> r->pending holds the error.
 * Without `quota` a key over its daily audio quota is still let in (no slot). */
bool ld_gate_admit(ld_req *r, bool quota);
/* Records an early error to answer once the body was read (extra stolen). */
void ld_req_fail(ld_req *r, ld_err code, json_t *extra, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* listen.c: POST /v1/listen intake. */
enum MHD_Result ld_listen_first(ld_req *r);
/* Consumes body bytes; MHD_NO closes the connection. */
enum MHD_Result ld_listen_body(ld_req *r, const char *data, size_t size);
enum MHD_Result ld_listen_final(ld_req *r);

/* pipeline.c: runs on the work pool; finishes the request. */
void ld_pipeline_run(void *req);
void ld_pipeline_cancel(void *req);

#endif
