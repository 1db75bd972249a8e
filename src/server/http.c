/* The libmicrohttpd daemon: the access handler's three phases (headers, body,
 * final/resumed), completion and the access log. Requests themselves live in
 * req.c, routing in route.c. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/http.h"

#include "server/bind.h"
#include "server/edge.h"
#include "server/gone.h"
#include "server/guard.h"
#include "server/listen.h"
#include "server/metrics.h"
#include "server/respond.h"
#include "server/route.h"
#include "server/srv.h"
#include "server/sse.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/time.h"

/* Header deadline / body rate / idle eviction (guard.h); lives until exit,
 * after the daemon stopped, because it must see every CLOSED notification. */
static ld_guard *guard;

static bool sane_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    ld_req *r = ld_req_new(cls, c, uri);
    if (r)
        ld_edge_uri(r, uri);
    return r;
}

static enum MHD_Result on_body(ld_req *r, const char *data, size_t size)
{
    r->body_bytes += size;
    switch (r->body) {
    case LD_BODY_NONE:
    case LD_BODY_DISCARD:
        /* Read and drop, so the client sees our answer; an anonymous client may
         * not make us read more than a maximal upload, a known one a bit more. */
        if (r->body_bytes > r->srv->max_body + (r->authed ? LD_DRAIN_EXTRA : 0))
            return MHD_NO;
        return MHD_YES;
    default: return ld_listen_body(r, data, size);
    }
}

static enum MHD_Result on_final(ld_req *r)
{
    if (r->suspended) { /* resumed: the result is ready */
        enum MHD_Result ret;
        if (r->rerr.code == LD_OK && r->sse) { /* events follow as they are produced */
            ld_sse_attach(r->sse, r->conn);
            ret = ld_respond_stream(r->conn, r->rstatus, r->rtype, ld_sse_read, r->sse, ld_sse_release,
                                    r->request_id);
        } else if (r->rerr.code != LD_OK) {
            ret = ld_respond_error(r->conn, &r->rerr, r->request_id, r->rextra);
            r->rextra = NULL;
        } else {
            ret = ld_respond_body(r->conn, r->rstatus, r->rbody, r->rlen, r->rtype, r->request_id);
            r->rbody = NULL;
        }
        return ret;
    }
    if (r->pending) {
        json_t *extra = r->pextra;
        r->pextra = NULL;
        return ld_respond_error(r->conn, &r->perr, r->request_id, extra);
    }
    return ld_route_final(r);
}

static enum MHD_Result join_xff(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char *buf = cls;
    size_t n = strlen(buf);
    if (key && value && !strcasecmp(key, "X-Forwarded-For") && n + strlen(value) + 2 < 1024)
        snprintf(buf + n, 1024 - n, "%s%s", n ? "," : "", value);
    return MHD_YES;
}

/* Behind a trusted proxy the client is who X-Forwarded-For says (proxy.h);
 * every X-Forwarded-For header counts, in order, as one list. */
static void real_client(ld_req *r)
{
    if (!ld_proxy_count(r->srv->proxies))
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    char xff[1024] = "";
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, join_xff, xff);
    ld_proxy_client(r->srv->proxies, ci->client_addr, xff[0] ? xff : NULL, r->client, sizeof r->client);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    ld_req *r = *con_cls;
    if (!r) {
        r = ld_req_new(cls, c, url);
        if (!r)
            return MHD_NO;
        *con_cls = r;
    }
    ld_req_set_current(r);
    enum MHD_Result ret;
    if (!r->started) {
        r->started = true;
        ld_guard_headers_done(c);
        real_client(r);
        snprintf(r->method, sizeof r->method, "%s", method);
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
        if (rid && sane_request_id(rid))
            snprintf(r->request_id, sizeof r->request_id, "%s", rid);
        else
            ld_rand_id("req_", r->request_id, sizeof r->request_id);
        if (!ld_edge_refuse(r, &ret))
            ret = ld_route_first(r, method);
        if (r->is_ws) /* the upgrade is queued: the stream loop owns its timeouts, not the body-rate guard */
            ld_guard_body_done(c);
    } else if (*upload_data_size) {
        ld_guard_body(c, *upload_data_size);
        ret = on_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
    } else {
        ld_guard_body_done(c);
        ret = on_final(r);
    }
    ld_req_set_current(NULL);
    return ret;
}

static const char *toe_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return NULL;
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "client closed the connection";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client aborted";
    }
    return "unknown";
}

static void access_log(ld_req *r, const char *why)
{
    bool health = !strncmp(r->path, "/health", 7) || !strcmp(r->path, "/livez") ||
                  !strcmp(r->path, "/api/v1/health");
    ld_log_level lvl = health ? LD_LOG_DEBUG : r->status >= 500 ? LD_LOG_ERROR : LD_LOG_INFO;
    if (!ld_log_enabled(lvl))
        return;
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(r->request_id));
    json_object_set_new(f, "method", json_string(r->method));
    char *path = strdup(r->path); /* the client's bytes: not always UTF-8 */
    if (path)
        ld_err_utf8_clean(path);
    json_object_set_new(f, "path", json_string(path ? path : ""));
    free(path);
    json_object_set_new(f, "status", json_integer(r->status));
    json_object_set_new(f, "duration_ms", json_integer((json_int_t)((ld_time_mono() - r->t0) * 1000 + 0.5)));
    json_object_set_new(f, "client", json_string(r->client));
    json_object_set_new(f, "key_id", r->authed ? json_string(r->key.key_id) : json_null());
    if (r->body_bytes)
        json_object_set_new(f, "bytes_in", json_integer((json_int_t)r->body_bytes));
    if (r->audio_seconds > 0)
        json_object_set_new(f, "audio_seconds", json_real((double)(int64_t)(r->audio_seconds * 1000 + 0.5) / 1000));
    if (why)
        json_object_set_new(f, "terminated", json_string(why));
    ld_log_fields(lvl, f, "%s %s %u", r->method, r->path, r->status);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    ld_req *r = *con_cls;
    /* The keep-alive wait for the next request's headers starts now; an
     * upgraded (WebSocket) connection belongs to the stream loop instead. */
    ld_guard_request_done(c, (r && r->is_ws) || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (!r)
        return;
    *con_cls = NULL;
    /* An event stream (stream=true) whose client left before its end: the rest
     * is decoded for nobody and would be charged; gone.c watches only requests
     * not answered yet, and this one's answer had started. */
    if (r->sse && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        ld_gone_cancel(r, "Client left its event stream: cancelling the transcription (nothing is charged)");
    const char *why = toe_name(toe);
    if (atomic_load(&r->client_gone)) {
        /* Cancelled for a client that left (gone.c): its 503 went to nobody and nothing was
         * charged, so it is logged and counted as a closed connection, not a server error. */
        if (!why || toe == MHD_REQUEST_TERMINATED_WITH_ERROR) /* "error": a write to its closed socket */
            why = "client closed the connection";
        pthread_mutex_lock(&r->mu); /* a decoder worker may be charging an event stream (pipeline.c) */
        if (!r->sse_charged)
            r->audio_seconds = 0;
        pthread_mutex_unlock(&r->mu);
        if (!r->sse) /* an event stream had its 200 out before the client left */
            r->status = 0;
    }
    if (r->started) {
        access_log(r, why);
        ld_srv_metrics_request(r);
    }
    ld_req_complete(r);
}

static void on_panic(void *cls, const char *file, unsigned line, const char *reason)
{
    (void)cls;
    ld_log(LD_LOG_CRITICAL, "libmicrohttpd panic at %s:%u: %s", file ? file : "?", line, reason ? reason : "");
    abort();
}

static void free_guard(void)
{
    ld_guard_free(guard);
    guard = NULL;
}

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct MHD_Daemon *ld_http_start(ld_srv *s, ld_error *err)
{
    const ld_srv_config *c = &s->cfg;
    static struct sockaddr_storage addr; /* MHD keeps the pointer during start only; static for safety */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
                     MHD_USE_ERROR_LOG;
    if (ld_bind_addr(c->host, c->port, &addr, &flags, err))
        return NULL;
    if (s->tls_cert_pem) /* read by server.c's start() */
        flags |= MHD_USE_TLS;
    int threads = c->http_threads ? c->http_threads : cores();
    if (!guard) {
        ld_guard_config gc = {.header_timeout = c->header_timeout,
                              .idle_timeout = c->connection_timeout,
                              .min_body_rate = c->min_body_rate,
                              .max_connections = c->max_connections,
                              .threads = threads};
        if (!(guard = ld_guard_new(&gc))) {
            ld_error_set(err, LD_ERR_INTERNAL, "cannot start the connection guard thread");
            return NULL;
        }
        atexit(free_guard);
    }
    struct MHD_OptionItem ops[16];
    int n = 0;
    /* The logger must come first, or MHD prints early messages itself. */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)ld_log_library, (void *)"http"};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)ld_guard_notify, guard};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &addr};
    if (threads > 1)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL};
    if (c->max_connections_per_ip)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_connections_per_ip, NULL};
    /* Larger read buffer: fewer handler calls per uploaded megabyte. */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 128 * 1024, NULL};
    if (s->tls_cert_pem) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem};
        /* TLS 1.2 and 1.3 only: 1.0 and 1.1 are deprecated (RFC 8996), and gnutls's NORMAL still offers them. */
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                           (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    MHD_set_panic_func(on_panic, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, on_access, s, MHD_OPTION_ARRAY,
                                            ops, MHD_OPTION_END);
    if (!d)
        ld_error_set(err, LD_ERR_INTERNAL, "cannot listen on %s:%d (address in use, or bad TLS files?)", c->host,
                     c->port);
    return d;
}
