/* GET /v1/listen/stream before the upgrade (docs/api.md, "GET /v1/listen/stream
 * (WebSocket)"): the router has admitted the key (admit.c); everything else
 * that can be refused is refused here with the HTTP JSON envelope (upgrade
 * headers, parameters, capacity), so a client never gets a 101 for a stream
 * that cannot run. */
#include "server/ws_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/respond.h"
#include "server/srv.h"
#include "server/ws_deepgram.h"
#include "server/ws_flux.h"
#include "server/ws_openai.h"
#include "util/log.h"
#include "util/time.h"

static const char *query(void *ud, const char *name)
{
    return MHD_lookup_connection_value(ud, MHD_GET_ARGUMENT_KIND, name);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Does a comma-separated header value contain `token` (case-insensitive)? */
/* The element of a comma-separated header equal to `token` (any case), as the
 * client spelled it; NULL when absent. */
static const char *find_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        if (!strncasecmp(v, token, n) && (v[n] == 0 || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return v;
        v = strchr(v, ',');
    }
    return NULL;
}

static bool has_token(const char *v, const char *token) { return find_token(v, token) != NULL; }

static void upgraded(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                     size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)connection;
    (void)con_cls;
    ws_pending *p = cls;
    ld_ws *ws = p->ws;
    /* A reaped entry stays as a tombstone with conn NULL (see reap in ws_loop.c). */
    pthread_mutex_lock(&ws->mu);
    ws_conn *c = p->conn;
    p->conn = NULL;
    p->adopted = true;
    pthread_mutex_unlock(&ws->mu);
    if (!c) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    ws_loop_adopt(c, sock, urh, extra_in, extra_in_size);
}

/* Every `keywords` value of the query (the name repeats, so query() is not enough). */
typedef struct {
    ld_ws_params *p;
    ld_error err;
} keyword_walk;

static enum MHD_Result keyword_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    keyword_walk *w = cls;
    if (!w->err.code && key)
        ld_ws_params_keyword(w->p, key, value, &w->err);
    return MHD_YES;
}

static enum MHD_Result refuse(ld_req *r, ld_err code, const char *msg, json_t *extra)
{
    ld_error e;
    ld_error_set(&e, code, "%s", msg ? msg : ld_err_default_message(code));
    return ld_respond_error(r->conn, &e, r->request_id, extra);
}

enum MHD_Result ld_ws_serve(ld_req *r)
{
    ld_ws *ws = r->srv->ws;
    struct MHD_Connection *mc = r->conn;
    r->status = MHD_HTTP_SWITCHING_PROTOCOLS; /* unless answered with an error below */
    r->is_ws = true;                          /* streams are closed by ld_ws_stop, not drained */
    atomic_fetch_add(&r->srv->ws_active, 1);
    char accept[29];
    if (!has_token(header(mc, MHD_HTTP_HEADER_UPGRADE), "websocket") ||
        !has_token(header(mc, MHD_HTTP_HEADER_CONNECTION), "upgrade"))
        return refuse(r, LD_ERR_INVALID_PARAMETER, "This endpoint needs a WebSocket upgrade (Upgrade: websocket)",
                      NULL);
    const char *version = header(mc, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13")) {
        r->ws_version = true;
        return refuse(r, LD_ERR_INVALID_PARAMETER, "Unsupported Sec-WebSocket-Version (13 required)", NULL);
    }
    if (ld_ws_accept_key(header(mc, "Sec-WebSocket-Key"), accept))
        return refuse(r, LD_ERR_INVALID_PARAMETER, "Missing or invalid Sec-WebSocket-Key", NULL);

    ld_ws_params params;
    ld_error err = {0};
    if ((!strcmp(r->path, LD_WS_FLUX_PATH) ? ld_ws_flux_params_parse
         : r->deepgram                     ? ld_ws_dg_params_parse
         : !strcmp(r->path, LD_WS_OA_PATH) ? ld_ws_oa_params_parse
                                           : ld_ws_params_parse)(query, mc, &params, &err))
        return ld_respond_error(mc, &err, r->request_id, NULL);
    params.unified = !strcmp(r->path, LD_WS_UNIFIED_PATH);
    keyword_walk kw = {&params, {0}};
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, keyword_it, &kw); /* repeatable */
    if (kw.err.code)
        return ld_respond_error(mc, &kw.err, r->request_id, NULL);
    if (ws->cfg.pool && !ld_pool_has_language(ws->cfg.pool, params.language))
        return refuse(r, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language for streaming", NULL);

    /* each channel holds a stream decoder: counted here, before the upgrade, not when its audio comes */
    int slots = params.channels;
    if (slots > ws->cfg.max_streams) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Invalid parameter channels: %d channels need %d stream decoders; this server has %d "
                 "(--max-streams)",
                 slots, slots, ws->cfg.max_streams);
        return refuse(r, LD_ERR_INVALID_PARAMETER, msg, NULL);
    }
    pthread_mutex_lock(&ws->mu);
    bool full = ws->live + slots > ws->cfg.max_streams || ws->stopping;
    if (!full)
        ws->live += slots;
    pthread_mutex_unlock(&ws->mu);
    if (full)
        return refuse(r, LD_ERR_SERVICE_UNAVAILABLE, "Too many live streams", json_pack("{s:i}", "retry_after", 5));
    ws_conn *c = ws_conn_new(ws);
    if (!c) {
        pthread_mutex_lock(&ws->mu);
        ws->live -= slots;
        pthread_mutex_unlock(&ws->mu);
        return refuse(r, LD_ERR_INTERNAL, NULL, NULL);
    }
    c->holds_live = true; /* from here on the conn owns its `slots` of `live`, released when it is over */
    c->slots = slots;
    c->params = params;
    c->claims = r->key;
    c->lease = r->lease; /* the key's slot is held by the stream from now on, not by this request */
    r->lease.held = false;
    snprintf(c->request_id, sizeof c->request_id, "%s", r->request_id);
    snprintf(c->client_addr, sizeof c->client_addr, "%s", r->client);
    /* The decoder itself is acquired by the first worker task (ws_session_new):
     * creating one loads a model (≈ 0.5 s CPU) and must not stall MHD's
     * threads. The pool's stream cap equals max_streams, which was checked above. */

    ws_pending *p = calloc(1, sizeof *p);
    struct MHD_Response *resp = p ? MHD_create_response_for_upgrade(upgraded, p) : NULL;
    if (!resp) {
        free(p);
        ws_conn_unref(c);
        return refuse(r, LD_ERR_INTERNAL, NULL, NULL);
    }
    p->ws = ws;
    p->conn = c;
    p->created = ld_time_mono();
    pthread_mutex_lock(&ws->mu);
    p->next = ws->pending;
    ws->pending = p;
    pthread_mutex_unlock(&ws->mu);

    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    /* MHD adds "Connection: Upgrade" itself for 101 responses. */
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    /* A client that offered the `token` subprotocol (browser auth) must see it
     * accepted, even when a header authenticated it, spelled as it offered it
     * (RFC 6455 §4.1: a client fails the connection on any other value). */
    static const char *const protocols[] = {"token", "bearer", "realtime"}; /* realtime: OpenAI's browsers */
    for (size_t i = 0; i < sizeof protocols / sizeof *protocols; i++) {
        const char *offered = find_token(header(mc, "Sec-WebSocket-Protocol"), protocols[i]);
        if (offered) {
            char echo[16];
            snprintf(echo, sizeof echo, "%.*s", (int)strlen(protocols[i]), offered);
            MHD_add_response_header(resp, "Sec-WebSocket-Protocol", echo);
            break;
        }
    }
    MHD_add_response_header(resp, "X-Request-ID", r->request_id);
    if (r->deepgram)
        MHD_add_response_header(resp, "dg-request-id", r->request_id);
    ld_req_quota_headers(r, resp);
    ld_req_rate_headers(r, resp);
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "request_id", r->request_id, "session_id",
                            c->session_id, "key_id", r->key.key_id, "client", r->client, "encoding",
                            ld_audio_stream_encoding_name(params.encoding), "sample_rate", params.sample_rate),
                  "stream accepted");
    r->upgraded = ld_time_mono(); /* the request's duration ends here; the stream's is its own */
    enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    if (ret != MHD_YES) { /* the upgrade will never happen: give the slot back now */
        pthread_mutex_lock(&ws->mu);
        c = p->conn;
        p->conn = NULL;
        pthread_mutex_unlock(&ws->mu);
        if (c)
            ws_conn_unref(c);
    }
    return ret;
}
