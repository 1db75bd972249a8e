/* WebSocket streaming (/v1/listen/stream): libmicrohttpd upgrade + wslay
 * framing, served by one epoll event-loop thread; decoding runs on worker
 * threads, never on the loop. Thread-safety: ld_ws_serve is called from
 * libmicrohttpd threads; the rest from the owner. Ownership: ld_ws_new returns
 * an owned object; pool and auth are borrowed and must outlive it. */
#ifndef LD_SERVER_WS_H
#define LD_SERVER_WS_H

#include <microhttpd.h>

#include "asr/pool.h"
#include "auth/auth.h"
#include "server/req.h"
#include "util/err.h"

typedef struct {
    ld_pool *pool;
    ld_auth *auth;
    int max_streams;     /* global cap on live streams */
    int idle_timeout_s;  /* no audio/keepalive -> close (default 10) */
    int realtime_idle_s; /* OpenAI realtime sessions: no client event -> close (default 600) */
} ld_ws_config;

typedef struct ld_ws ld_ws;

ld_ws *ld_ws_new(const ld_ws_config *cfg, ld_error *err);
/* Closes live streams (1001) and joins the loop and workers; an upgrade that
 * completes later is closed at once (1001). Call before MHD_stop_daemon, which
 * needs every upgraded socket closed. Idempotent. */
void ld_ws_stop(ld_ws *ws);
/* Stops if not yet, then frees. Only after MHD_stop_daemon: until then a late
 * upgrade callback may still reach ws and its pending handshakes. */
void ld_ws_free(ld_ws *ws);
int ld_ws_active(ld_ws *ws); /* live streams */

/* The route handler of GET /v1/listen/stream, once the router admitted the key
 * (admit.h: header, `Sec-WebSocket-Protocol: token, <key>` or `?token=`):
 * checks the upgrade headers, the query parameters and the stream cap, then
 * either queues the 101 upgrade response (the stream takes over r's lease) or
 * answers with the JSON envelope. */
enum MHD_Result ld_ws_serve(ld_req *r);

#endif
