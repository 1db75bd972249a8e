/* The libmicrohttpd daemon: request contexts, the access handler's three
 * phases (headers, body, final/resumed), completion and the access log. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/guard.h"
#include "server/metrics.h"
#include "server/respond.h"
#include "server/srv.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/time.h"

static _Thread_local ld_req *tl_current;
/* Header deadline / body rate / idle eviction (guard.h); lives until exit,
 * after the daemon stopped, because it must see every CLOSED notification. */
static ld_guard *guard;

ld_req *ld_req_current(void) { return tl_current; }
void ld_req_set_current(ld_req *r) { tl_current = r; }

static void client_addr(struct MHD_Connection *c, char *out, size_t outsz)
{
    snprintf(out, outsz, "unknown");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsz);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outsz);
}

ld_req *ld_req_new(ld_srv *srv, struct MHD_Connection *c, const char *uri)
{
    ld_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->srv = srv;
    r->conn = c;
    r->t0 = ld_time_mono();
    pthread_mutex_init(&r->mu, NULL);
    size_t n = strcspn(uri ? uri : "", "?");
    if (n >= sizeof r->path)
        n = sizeof r->path - 1;
    memcpy(r->path, uri ? uri : "", n);
    r->path[n] = '\0';
    client_addr(c, r->client, sizeof r->client);
    ld_opts_init(&r->opts);
    atomic_fetch_add(&srv->active, 1);
    return r;
}

void ld_req_ref(ld_req *r) { atomic_fetch_add(&r->refs, 1); }

void ld_req_unref(ld_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    json_decref(r->pextra);
    json_decref(r->rextra);
    json_decref(r->form);
    free(r->rbody);
    free(r->json);
    ld_spool_free(r->spool);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void live_remove(ld_req *r)
{
    ld_srv *s = r->srv;
    pthread_mutex_lock(&s->mu);
    if (r->in_live) {
        if (r->live_prev)
            r->live_prev->live_next = r->live_next;
        else
            s->live = r->live_next;
        if (r->live_next)
            r->live_next->live_prev = r->live_prev;
        r->in_live = false;
    }
    pthread_mutex_unlock(&s->mu);
}

void ld_http_suspend(ld_req *r)
{
    ld_srv *s = r->srv;
    pthread_mutex_lock(&s->mu);
    r->live_prev = NULL;
    r->live_next = s->live;
    if (s->live)
        s->live->live_prev = r;
    s->live = r;
    r->in_live = true;
    pthread_mutex_unlock(&s->mu);
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

/* Claims the right to finish r; false when somebody already did. */
static bool claim(ld_req *r)
{
    pthread_mutex_lock(&r->mu);
    bool mine = !r->finished;
    r->finished = true;
    pthread_mutex_unlock(&r->mu);
    return mine;
}

static void resume(ld_req *r)
{
    live_remove(r);
    pthread_mutex_lock(&r->mu);
    bool gone = r->conn_gone;
    pthread_mutex_unlock(&r->mu);
    if (!gone)
        MHD_resume_connection(r->conn);
}

void ld_req_finish_error(ld_req *r, const ld_error *err, json_t *extra)
{
    if (!claim(r)) {
        json_decref(extra);
        return;
    }
    r->rerr = *err;
    if (r->rerr.code == LD_OK)
        ld_error_set(&r->rerr, LD_ERR_INTERNAL, NULL);
    r->rextra = extra;
    resume(r);
}

void ld_req_finish_body(ld_req *r, unsigned status, char *body, size_t len, const char *ctype)
{
    if (!claim(r)) {
        free(body);
        return;
    }
    r->rerr.code = LD_OK;
    r->rstatus = status;
    r->rbody = body;
    r->rlen = len;
    r->rtype = ctype;
    resume(r);
}

void ld_http_abort_suspended(ld_srv *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        ld_req *r = s->live;
        if (r)
            ld_req_ref(r);
        pthread_mutex_unlock(&s->mu);
        if (!r)
            return;
        ld_error e;
        ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "Server is shutting down; retry on another replica");
        json_t *extra = json_pack("{s:i}", "retry_after", 1);
        live_remove(r); /* even if the pool finished it meanwhile, it leaves the list */
        ld_req_finish_error(r, &e, extra);
        ld_req_unref(r);
    }
}

void ld_req_decorate(ld_req *r, struct MHD_Response *resp, unsigned status)
{
    r->status = status;
    if (r->have_rate) {
        char b[32];
        snprintf(b, sizeof b, "%d", r->rate.limit);
        MHD_add_response_header(resp, "X-RateLimit-Limit", b);
        snprintf(b, sizeof b, "%d", r->rate.remaining < 0 ? 0 : r->rate.remaining);
        MHD_add_response_header(resp, "X-RateLimit-Remaining", b);
        snprintf(b, sizeof b, "%lld", (long long)r->rate.reset);
        MHD_add_response_header(resp, "X-RateLimit-Reset", b);
    }
    if (r->no_store)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

void ld_req_fail(ld_req *r, ld_err code, json_t *extra, const char *fmt, ...)
{
    if (r->pending) { /* the first error wins */
        json_decref(extra);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    ld_error_vset(&r->perr, code, fmt, ap);
    va_end(ap);
    r->pending = true;
    r->pextra = extra;
}

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
    return ld_req_new(cls, c, uri);
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
    default:
        return ld_listen_body(r, data, size);
    }
}

static enum MHD_Result on_final(ld_req *r)
{
    if (r->suspended) { /* resumed: the result is ready */
        enum MHD_Result ret;
        if (r->rerr.code != LD_OK) {
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
    tl_current = r;
    enum MHD_Result ret;
    if (!r->started) {
        r->started = true;
        ld_guard_headers_done(c);
        snprintf(r->method, sizeof r->method, "%s", method);
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
        if (rid && sane_request_id(rid))
            snprintf(r->request_id, sizeof r->request_id, "%s", rid);
        else
            ld_rand_id("req_", r->request_id, sizeof r->request_id);
        ret = ld_route_first(r, url, method);
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
    tl_current = NULL;
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

static void access_log(ld_req *r, enum MHD_RequestTerminationCode toe)
{
    bool health = !strncmp(r->path, "/health", 7) || !strcmp(r->path, "/healthz") || !strcmp(r->path, "/api/v1/health");
    ld_log_level lvl = health ? LD_LOG_DEBUG : r->status >= 500 ? LD_LOG_ERROR : LD_LOG_INFO;
    if (!ld_log_enabled(lvl))
        return;
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(r->request_id));
    json_object_set_new(f, "method", json_string(r->method));
    json_object_set_new(f, "path", json_string(r->path));
    json_object_set_new(f, "status", json_integer(r->status));
    json_object_set_new(f, "duration_ms", json_integer((json_int_t)((ld_time_mono() - r->t0) * 1000 + 0.5)));
    json_object_set_new(f, "client", json_string(r->client));
    json_object_set_new(f, "key_id", r->authed ? json_string(r->key.key_id) : json_null());
    if (r->body_bytes)
        json_object_set_new(f, "bytes_in", json_integer((json_int_t)r->body_bytes));
    if (r->audio_seconds > 0)
        json_object_set_new(f, "audio_seconds", json_real((double)(int64_t)(r->audio_seconds * 1000 + 0.5) / 1000));
    const char *why = toe_name(toe);
    if (why)
        json_object_set_new(f, "terminated", json_string(why));
    ld_log_fields(lvl, f, "%s %s %u", r->method, r->path, r->status);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    ld_srv *s = cls;
    ld_req *r = *con_cls;
    /* The keep-alive wait for the next request's headers starts now; an
     * upgraded (WebSocket) connection belongs to the stream loop instead. */
    ld_guard_request_done(c, (r && r->is_ws) || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (!r)
        return;
    *con_cls = NULL;
    if (r->pp) {
        MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
    }
    if (r->started) {
        access_log(r, toe);
        ld_srv_metrics_request(r); /* before the lease is released: it marks admitted transcriptions */
    }
    if (r->lease.held)
        ld_auth_release(s->auth, &r->lease);
    pthread_mutex_lock(&r->mu);
    r->conn_gone = true;
    pthread_mutex_unlock(&r->mu);
    live_remove(r);
    if (r->is_ws)
        atomic_fetch_sub(&s->ws_active, 1);
    atomic_fetch_sub(&s->active, 1);
    ld_req_unref(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "component", "http"), "%s", msg);
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int gai = getaddrinfo(c->host, port, &hints, &ai);
    if (gai || !ai) {
        ld_error_set(err, LD_ERR_INTERNAL, "cannot resolve listen address '%s': %s", c->host, gai_strerror(gai));
        return NULL;
    }
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);

    static char *tls_key, *tls_cert; /* must outlive the daemon */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (c->tls_cert[0]) {
        tls_cert = ld_fs_read(c->tls_cert, 1 << 20, NULL);
        tls_key = ld_fs_read(c->tls_key, 1 << 20, NULL);
        if (!tls_cert || !tls_key) {
            ld_error_set(err, LD_ERR_INTERNAL, "cannot read TLS %s '%s'", tls_cert ? "key" : "certificate",
                         tls_cert ? c->tls_key : c->tls_cert);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    int threads = c->http_threads ? c->http_threads : cores();
    if (!guard) {
        ld_guard_config gc = {.header_timeout = c->header_timeout, .idle_timeout = c->connection_timeout,
                              .min_body_rate = c->min_body_rate, .max_connections = c->max_connections,
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
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s};
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
    if (tls_cert) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key};
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
