/* The running server: configuration and the modules it drives; internal to
 * src/server/ (each file's functions are declared in its own header).
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
#include "monitor/monitor.h"
#include "server/config.h"
#include "server/keycap.h"
#include "server/proxy.h"
#include "server/req.h"
#include "server/work.h"
#include "server/ws.h"
#include "store/store.h"

#define LD_SPOOL_MEM_LIMIT (256 * 1024) /* bodies above this go to <data>/tmp */
#define LD_JSON_BODY_MAX (1024 * 1024)
#define LD_RETRY_AFTER_BUSY 30 /* seconds (docs/api.md, "Errors of POST /v1/listen") */
/* A refused upload is still read (and dropped) up to max_body + this, so the
 * client sees the JSON answer instead of a connection reset. */
#define LD_DRAIN_EXTRA ((uint64_t)256 * 1024 * 1024)

struct ld_srv {
    ld_srv_config cfg;
    char tmp_dir[1100];
    uint64_t max_body; /* bytes */
    ld_store *store;
    ld_auth *auth;
    ld_pool *pool;
    ld_ws *ws;
    ld_jobs *jobs;
    ld_monitor *monitor;  /* usage warnings, anomalies, --usage-webhook */
    ld_work *work;        /* decoding uploads (and fetched files) */
    ld_work *fetch;       /* audio URL requests: waiting on the network never holds `work` */
    ld_keycap *fetch_cap; /* fetch threads per key */
    ld_fetch_opts fetch_opts;
    ld_proxy_list *proxies;           /* --trusted-proxy (empty list: X-Forwarded-For ignored) */
    char *tls_cert_pem, *tls_key_pem; /* --tls-cert/--tls-key contents (owned; read before the decoders load) */
    struct MHD_Daemon *daemon;
    double started_mono;
    atomic_int active;    /* live requests (URI seen, not completed) */
    atomic_int ws_active; /* of which WebSocket requests (not drained) */
    atomic_bool draining; /* SIGTERM seen: Connection: close, health 503 */
    atomic_bool stopping; /* drain over: no new work is accepted */
    pthread_mutex_t mu;   /* guards `live` */
    ld_req *live;         /* suspended requests, for forced shutdown */
};

#endif
