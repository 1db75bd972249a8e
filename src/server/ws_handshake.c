/* GET /v1/listen/stream before the upgrade: everything that can be refused is
 * refused here with the HTTP JSON envelope (auth, parameters, limits, capacity),
 * so a client never gets a 101 for a stream that cannot run. */
#include "server/ws_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/respond.h"
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
static bool has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        if (!strncasecmp(v, token, n) && (v[n] == 0 || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return true;
        v = strchr(v, ',');
    }
    return false;
}

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

static enum MHD_Result refuse(struct MHD_Connection *mc, ld_err code, const char *msg, const char *request_id,
                              json_t *extra)
{
    ld_error e;
    ld_error_set(&e, code, "%s", msg ? msg : ld_err_default_message(code));
    return ld_respond_error(mc, &e, request_id, extra);
}

static enum MHD_Result refuse_err(struct MHD_Connection *mc, const ld_error *e, const char *request_id, json_t *extra)
{
    return ld_respond_error(mc, e, request_id, extra);
}

static json_t *rate_extra(const ld_rate_info *ri)
{
    return ri->retry_after > 0 ? json_pack("{s:i}", "retry_after", ri->retry_after) : NULL;
}

/* Authenticates from the header, the subprotocol or ?token=. */
static ld_err authenticate(ld_ws *ws, struct MHD_Connection *mc, ld_key_claims *claims, bool *via_subprotocol,
                           ld_error *err)
{
    const char *authz = header(mc, MHD_HTTP_HEADER_AUTHORIZATION);
    if (authz)
        return ld_auth_check_header(ws->cfg.auth, authz, claims, err);
    char key[1024];
    if (ld_ws_subprotocol_key(header(mc, "Sec-WebSocket-Protocol"), key, sizeof key)) {
        *via_subprotocol = true;
        ld_err e = ld_auth_check_key(ws->cfg.auth, key, claims, err);
        sodium_memzero(key, sizeof key);
        return e;
    }
    const char *q = query(mc, "token");
    if (q)
        return ld_auth_check_key(ws->cfg.auth, q, claims, err);
    return ld_auth_check_header(ws->cfg.auth, NULL, claims, err);
}

enum MHD_Result ld_ws_handle(ld_ws *ws, struct MHD_Connection *mc, const char *client_addr, const char *request_id)
{
    const char *rid = request_id ? request_id : "";
    const char *addr = client_addr ? client_addr : "";
    char accept[29];
    if (!has_token(header(mc, MHD_HTTP_HEADER_UPGRADE), "websocket") ||
        !has_token(header(mc, MHD_HTTP_HEADER_CONNECTION), "upgrade"))
        return refuse(mc, LD_ERR_INVALID_PARAMETER, "This endpoint needs a WebSocket upgrade (Upgrade: websocket)",
                      rid, NULL);
    const char *version = header(mc, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13"))
        return refuse(mc, LD_ERR_INVALID_PARAMETER, "Unsupported Sec-WebSocket-Version (13 required)", rid, NULL);
    if (ld_ws_accept_key(header(mc, "Sec-WebSocket-Key"), accept))
        return refuse(mc, LD_ERR_INVALID_PARAMETER, "Missing or invalid Sec-WebSocket-Key", rid, NULL);

    int retry = 0;
    if (ld_auth_client_throttled(ws->cfg.auth, addr, &retry))
        return refuse(mc, LD_ERR_RATE_LIMITED, NULL, rid, json_pack("{s:i}", "retry_after", retry));
    ld_key_claims claims;
    ld_error err = {0};
    bool via_subprotocol = false;
    ld_err e = authenticate(ws, mc, &claims, &via_subprotocol, &err);
    if (e == LD_ERR_LICENSE_EXPIRED) {
        char when[21];
        ld_time_iso8601(claims.expires_at, when);
        return refuse_err(mc, &err, rid, json_pack("{s:s}", "expires_at", when));
    }
    if (e) {
        if (e == LD_ERR_INVALID_LICENSE)
            ld_auth_client_failed(ws->cfg.auth, addr);
        return refuse_err(mc, &err, rid, NULL);
    }

    ld_ws_params params;
    if (ld_ws_params_parse(query, mc, &params, &err))
        return refuse_err(mc, &err, rid, NULL);
    if (ws->cfg.pool && !ld_pool_has_language(ws->cfg.pool, params.language))
        return refuse(mc, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language for streaming", rid, NULL);

    /* Global cap first (cheap, no state taken), then the key's limits. */
    pthread_mutex_lock(&ws->mu);
    bool full = ws->live >= ws->cfg.max_streams || ws->stopping;
    if (!full)
        ws->live++; /* from here on the conn owns one `live` and releases it when freed */
    pthread_mutex_unlock(&ws->mu);
    if (full)
        return refuse(mc, LD_ERR_SERVICE_UNAVAILABLE, "Too many live streams", rid,
                      json_pack("{s:i}", "retry_after", 5));
    ws_conn *c = ws_conn_new(ws);
    if (!c) {
        pthread_mutex_lock(&ws->mu);
        ws->live--;
        pthread_mutex_unlock(&ws->mu);
        return refuse(mc, LD_ERR_INTERNAL, NULL, rid, NULL);
    }
    c->params = params;
    c->claims = claims;
    snprintf(c->request_id, sizeof c->request_id, "%s", rid);
    snprintf(c->client_addr, sizeof c->client_addr, "%s", addr);

    ld_rate_info ri = {0};
    if ((e = ld_auth_admit(ws->cfg.auth, &claims, true, &c->lease, &ri, &err))) {
        ws_conn_unref(c);
        return refuse_err(mc, &err, rid, rate_extra(&ri));
    }
    /* The decoder itself is acquired by the first worker task (ws_session_new):
     * creating one loads a model (≈ 0.5 s CPU) and must not stall MHD's
     * threads. The pool's stream cap equals max_streams, which was checked above. */

    ws_pending *p = calloc(1, sizeof *p);
    struct MHD_Response *r = p ? MHD_create_response_for_upgrade(upgraded, p) : NULL;
    if (!r) {
        free(p);
        ws_conn_unref(c);
        return refuse(mc, LD_ERR_INTERNAL, NULL, rid, NULL);
    }
    p->ws = ws;
    p->conn = c;
    p->created = ld_time_mono();
    pthread_mutex_lock(&ws->mu);
    p->next = ws->pending;
    ws->pending = p;
    pthread_mutex_unlock(&ws->mu);

    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
    /* MHD adds "Connection: Upgrade" itself for 101 responses. */
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    /* A client that offered the `token` subprotocol (browser auth) must see it
     * accepted, even when a header authenticated it. */
    if (via_subprotocol || has_token(header(mc, "Sec-WebSocket-Protocol"), "token"))
        MHD_add_response_header(r, "Sec-WebSocket-Protocol", "token");
    if (request_id)
        MHD_add_response_header(r, "X-Request-ID", request_id);
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "request_id", rid, "session_id", c->session_id,
                            "key_id", claims.key_id, "client", addr, "encoding",
                            ld_audio_stream_encoding_name(params.encoding), "sample_rate", params.sample_rate),
                  "stream accepted");
    enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
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
