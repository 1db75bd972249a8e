/* The request lifecycle: creation and reference counting, the registry of
 * suspended requests, finishing from any thread, the per-thread current
 * request that respond.c decorates, early errors, and completion. */
#include "server/req.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/cors.h"
#include "server/srv.h"
#include "server/sse.h"
#include "util/time.h"

static _Thread_local ld_req *tl_current;

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
    r->route_pattern = "unmatched";
    atomic_fetch_add(&srv->active, 1);
    return r;
}

void ld_req_ref(ld_req *r) { atomic_fetch_add(&r->refs, 1); }

void ld_req_unref(ld_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->hold.held) /* a path that never charged: the reservation goes */
        ld_auth_quota_settle(r->srv->auth, &r->key, &r->hold, 0, NULL);
    json_decref(r->pextra);
    json_decref(r->rextra);
    json_decref(r->form);
    free(r->rbody);
    free(r->json);
    ld_spool_free(r->spool);
    ld_sse_unref(r->sse);
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

void ld_req_suspend(ld_req *r)
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
    pthread_mutex_lock(&r->mu); /* gone.c reads it under r->mu */
    r->suspended = true;
    pthread_mutex_unlock(&r->mu);
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

void ld_req_abort_suspended(ld_srv *s)
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

/* Audio seconds as a header value: at most 3 decimals, no trailing zeros
 * (a 60 s/day key says "60", not "59.999999999"). */
static void seconds_text(char *b, size_t n, double v)
{
    if (!(v > 0))
        v = 0;
    snprintf(b, n, "%.3f", v);
    char *dot = strchr(b, '.');
    if (dot) {
        char *e = b + strlen(b) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

void ld_req_quota_headers(const ld_req *r, struct MHD_Response *resp)
{
    if (!r->have_rate || !r->rate.have_quota)
        return;
    char b[48];
    seconds_text(b, sizeof b, r->rate.quota_limit);
    MHD_add_response_header(resp, "X-Quota-Limit", b);
    /* A refusal for quota after admission (usage grew meanwhile) says 0 left. */
    bool exceeded = r->rerr.code == LD_ERR_QUOTA_EXCEEDED || (r->pending && r->perr.code == LD_ERR_QUOTA_EXCEEDED);
    seconds_text(b, sizeof b, exceeded ? 0 : r->rate.quota_limit - r->rate.quota_used);
    MHD_add_response_header(resp, "X-Quota-Remaining", b);
    snprintf(b, sizeof b, "%lld", (long long)r->rate.quota_reset);
    MHD_add_response_header(resp, "X-Quota-Reset", b);
}

void ld_req_rate_headers(const ld_req *r, struct MHD_Response *resp)
{
    if (!r->have_rate)
        return;
    char b[32];
    snprintf(b, sizeof b, "%d", r->rate.limit);
    MHD_add_response_header(resp, "X-RateLimit-Limit", b);
    snprintf(b, sizeof b, "%d", r->rate.remaining < 0 ? 0 : r->rate.remaining);
    MHD_add_response_header(resp, "X-RateLimit-Remaining", b);
    snprintf(b, sizeof b, "%lld", (long long)r->rate.reset);
    MHD_add_response_header(resp, "X-RateLimit-Reset", b);
}

void ld_req_decorate(ld_req *r, struct MHD_Response *resp, unsigned status)
{
    r->status = status;
    ld_req_quota_headers(r, resp);
    ld_req_rate_headers(r, resp);
    if (r->ws_version) /* RFC 6455 §4.4 */
        MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
    if (r->no_store)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (atomic_load(&r->srv->draining) || r->close_conn)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ld_cors_decorate(r, resp);
}

/* ld_auth_release does nothing unless the lease is held. */
void ld_req_answered(ld_req *r) { ld_auth_release(r->srv->auth, &r->lease); }

void ld_req_complete(ld_req *r)
{
    ld_srv *s = r->srv;
    if (r->pp) {
        MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
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

bool ld_req_has_body(const ld_req *r)
{
    struct MHD_Connection *c = r->conn;
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasestr(te, "chunked"))
        return true;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) > 0;
}

bool ld_req_expects_continue(const ld_req *r)
{
    struct MHD_Connection *c = r->conn;
    const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return e && !strcasecmp(e, "100-continue");
}
