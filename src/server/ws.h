/* WebSocket streaming (/v1/listen/stream): libmicrohttpd upgrade + wslay
 * framing, served by one epoll event-loop thread; decoding runs on worker
 * threads, never on the loop. Thread-safety: ld_ws_handle is called from
 * libmicrohttpd threads; the rest from the owner. Ownership: ld_ws_new returns
 * an owned object; pool and auth are borrowed and must outlive it. */
#ifndef LD_SERVER_WS_H
#define LD_SERVER_WS_H

#include <microhttpd.h>

#include "asr/pool.h"
#include "auth/auth.h"
#include "util/err.h"

typedef struct {
    ld_pool *pool;
    ld_auth *auth;
    int max_streams;        /* global cap on live streams */
    int idle_timeout_s;     /* no audio/keepalive -> close (default 10) */
} ld_ws_config;

typedef struct ld_ws ld_ws;

ld_ws *ld_ws_new(const ld_ws_config *cfg, ld_error *err);
void ld_ws_free(ld_ws *ws);        /* closes live streams (1001) and joins the loop */
int ld_ws_active(ld_ws *ws);       /* live streams */

/* Called by the router for GET /v1/listen/stream once the request headers are
 * complete. Authenticates (header, `Sec-WebSocket-Protocol: token, <key>`, or
 * `?token=`), validates query parameters, and either queues the 101 upgrade
 * response or answers the HTTP request with the JSON envelope. */
enum MHD_Result ld_ws_handle(ld_ws *ws, struct MHD_Connection *c, const char *client_addr, const char *request_id);

/* `listend stream FILE …` client subcommand. */
int ld_ws_stream_main(int argc, char **argv);

#endif
