/* Routing: which handler serves a path and method, and the small GET
 * endpoints (health, license, jobs pass-through). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/jobs_api.h"
#include "server/metrics.h"
#include "server/respond.h"
#include "server/srv.h"
#include "util/time.h"

typedef struct {
    const char *path;
    bool prefix;                          /* path is a prefix ending in '/' */
    const char *allow;                    /* methods, for matching and the Allow header */
    bool auth;
    bool quota;                           /* refuse keys over their daily audio quota */
    enum MHD_Result (*first)(ld_req *r);  /* after admission, headers only */
    enum MHD_Result (*final)(ld_req *r);  /* request fully received */
} route;

static enum MHD_Result health(ld_req *r);
static enum MHD_Result healthz(ld_req *r);
static enum MHD_Result health_component(ld_req *r);
static enum MHD_Result license(ld_req *r);
static enum MHD_Result stream(ld_req *r);
static enum MHD_Result lightning_first(ld_req *r);
static enum MHD_Result openai_first(ld_req *r);
static enum MHD_Result metrics(ld_req *r) { return ld_srv_metrics_serve(r); }

static const route routes[] = {
    {"/health", false, "GET, HEAD", false, false, NULL, health},
    {"/api/v1/health", false, "GET, HEAD", false, false, NULL, health},
    {"/healthz", false, "GET, HEAD", false, false, NULL, healthz},
    {"/health/", true, "GET, HEAD", false, false, NULL, health_component},
    {"/v1/license", false, "GET, HEAD", true, false, NULL, license},
    {"/v1/listen", false, "POST", true, true, ld_listen_first, ld_listen_final},
    /* The paths of the vendor's own test script and Pulse, spec section 9:
     * same intake, Lightning-style body. */
    {"/api/v1/lightning/get_text", false, "POST", true, true, lightning_first, ld_listen_final},
    {"/waves/v1/pulse/get_text", false, "POST", true, true, lightning_first, ld_listen_final},
    /* OpenAI clients (multipart `file`, `response_format`), spec section 16. */
    {"/v1/audio/transcriptions", false, "POST", true, true, openai_first, ld_listen_final},
    {"/v1/listen/stream", false, "GET", false, false, stream, NULL},
    {"/v1/jobs", false, "GET", true, false, NULL, ld_jobs_api_list},
    {"/v1/jobs/", true, "GET, DELETE", true, false, NULL, ld_jobs_api_one},
    {"/metrics", false, "GET, HEAD", false, false, NULL, metrics}, /* own token check */
};

static bool method_in(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, method, n))
            return true;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

static const route *find(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const route *rt = &routes[i];
        if (rt->prefix ? !strncmp(path, rt->path, strlen(rt->path)) && path[strlen(rt->path)] : !strcmp(path, rt->path))
            return rt;
    }
    return NULL;
}

const char *ld_route_pattern(const ld_req *r, bool *transcribes)
{
    const route *rt = r->route ? r->route : find(r->path); /* a 405 has no r->route */
    *transcribes = rt && rt->quota;
    if (!rt)
        return "unmatched";
    if (!rt->prefix)
        return rt->path;
    return !strcmp(rt->path, "/health/") ? "/health/{component}" : "/v1/jobs/{id}";
}

bool ld_route_has_body(struct MHD_Connection *c)
{
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasestr(te, "chunked"))
        return true;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) > 0;
}

bool ld_route_expects_continue(struct MHD_Connection *c)
{
    const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return e && !strcasecmp(e, "100-continue");
}

enum MHD_Result ld_route_first(ld_req *r, const char *url, const char *method)
{
    (void)url; /* r->path is the same without the query */
    const route *rt = find(r->path);
    if (!rt) {
        ld_req_fail(r, LD_ERR_NOT_FOUND, NULL, "Not found: %.200s", r->path);
    } else if (!method_in(rt->allow, method)) {
        r->allow = rt->allow;
        ld_req_fail(r, LD_ERR_METHOD_NOT_ALLOWED, NULL, "Method %s not allowed on %s (allowed: %s)", r->method,
                    rt->path, rt->allow);
    } else {
        r->route = rt;
        if (!rt->auth || ld_gate_admit(r, rt->quota)) {
            ld_srv_metrics_admitted(r);
            if (rt->first) {
                enum MHD_Result ret = rt->first(r);
                if (!r->pending)
                    return ret;
            }
        }
    }
    if (!r->pending)
        return MHD_YES;
    /* An early error. Answer now when no body follows or the client waits for
     * 100-continue (MHD then closes instead of reading); otherwise read and
     * drop the body first, so ordinary clients get to see the answer. */
    if (!ld_route_has_body(r->conn) || ld_route_expects_continue(r->conn)) {
        json_t *extra = r->pextra;
        r->pextra = NULL;
        r->pending = false;
        return ld_respond_error(r->conn, &r->perr, r->request_id, extra);
    }
    r->body = LD_BODY_DISCARD;
    return MHD_YES;
}

enum MHD_Result ld_route_final(ld_req *r)
{
    const route *rt = r->route;
    if (!rt || !rt->final) { /* cannot happen: first() answered already */
        ld_error e;
        ld_error_set(&e, LD_ERR_INTERNAL, NULL);
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    }
    return rt->final(r);
}

static bool query_true(ld_req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !*v);
}

/* License checking: issuer keys loaded and the revocation list readable
 * (unhealthy otherwise); with Redis the list is polled every 250 ms while
 * Redis is up, so it is stale (degraded) while Redis is down. */
static const char *license_state(ld_srv *s, const ld_store_health_info *h, json_t *detail)
{
    bool revoked, readable = ld_store_is_revoked(s->store, "k_health_probe", &revoked, NULL) == LD_OK;
    bool fresh = readable && (strcmp(h->backend, "redis") || h->up);
    int issuers = ld_auth_issuer_count(s->auth);
    if (detail)
        json_object_set_new(detail, "detail",
                            json_pack("{s:i,s:{s:s,s:b,s:b}}", "issuer_keys", issuers, "revocations", "source",
                                      h->backend, "readable", readable, "fresh", fresh));
    return issuers < 1 || !readable ? "unhealthy" : fresh ? "healthy" : "degraded";
}

/* Component states for the detailed health body; returns overall health. */
static bool components(ld_srv *s, json_t *comp, const char **reason)
{
    bool draining = atomic_load(&s->draining);
    int workers = ld_pool_workers(s->pool);
    ld_store_health_info h;
    bool store_up = ld_store_health(s->store, &h);
    const char *lic_state = license_state(s, &h, NULL);
    bool asr = workers > 0, lic = strcmp(lic_state, "unhealthy") != 0;
    /* Redis down with the "open" policy still serves (per-replica limits). */
    bool store_ok = store_up || h.degraded;
    const char *store_state = store_up ? "healthy" : h.degraded ? "degraded" : "unhealthy";
    json_object_set_new(comp, "api_server", json_string(draining ? "draining" : "healthy"));
    json_object_set_new(comp, "asr", json_string(asr ? "healthy" : "unhealthy"));
    json_object_set_new(comp, "license", json_string(lic_state));
    json_object_set_new(comp, "store", json_string(store_state));
    if (!strcmp(h.backend, "redis"))
        json_object_set_new(comp, "redis", json_string(store_state));
    *reason = !asr ? "No ASR workers available" : !lic ? "License checks unavailable (issuer keys, revocations)"
            : !store_ok ? "Redis unavailable" : draining ? "Server is shutting down" : NULL;
    return asr && lic && store_ok && !draining;
}

static json_t *store_detail(ld_srv *s)
{
    ld_store_health_info h;
    ld_store_health(s->store, &h);
    json_t *o = json_pack("{s:s,s:b}", "backend", h.backend, "up", h.up);
    if (!strcmp(h.backend, "redis")) {
        json_object_set_new(o, "target", json_string(h.target)); /* never the password */
        json_object_set_new(o, "failure_policy", json_string(h.failure_open ? "open" : "closed"));
        json_object_set_new(o, "degraded", json_boolean(h.degraded));
        if (h.latency_ms >= 0)
            json_object_set_new(o, "latency_ms", json_real((double)(int64_t)(h.latency_ms * 1000 + 0.5) / 1000));
        if (h.last_error[0])
            json_object_set_new(o, "last_error", json_string(h.last_error));
    }
    return o;
}

static enum MHD_Result health(ld_req *r)
{
    ld_srv *s = r->srv;
    json_t *comp = json_object();
    const char *reason;
    bool ok = components(s, comp, &reason);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(ok ? "healthy" : "unhealthy"));
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    if (query_true(r, "detailed")) {
        json_object_set_new(o, "components", comp);
        comp = NULL;
        json_object_set_new(o, "uptime_seconds", json_integer((json_int_t)(ld_time_mono() - s->started_mono)));
        json_object_set_new(o, "version", json_string(LD_VERSION));
        json_object_set_new(o, "asr_workers", json_integer(ld_pool_workers(s->pool)));
        json_object_set_new(o, "asr_busy", json_integer(ld_pool_busy(s->pool)));
        json_object_set_new(o, "queue_depth", json_integer(ld_pool_queue_depth(s->pool)));
        json_object_set_new(o, "active_streams", json_integer(s->ws ? ld_ws_active(s->ws) : 0));
        json_object_set_new(o, "languages", ld_pool_languages(s->pool));
        json_object_set_new(o, "store", store_detail(s));
    }
    json_decref(comp);
    return ld_respond_json(r->conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, r->request_id);
}

static enum MHD_Result healthz(ld_req *r)
{
    json_t *comp = json_object();
    const char *reason;
    bool ok = components(r->srv, comp, &reason);
    json_decref(comp);
    json_t *o = json_pack("{s:b}", "ready", ok);
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    return ld_respond_json(r->conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, r->request_id);
}

static enum MHD_Result health_component(ld_req *r)
{
    const char *name = r->path + strlen("/health/");
    json_t *comp = json_object();
    const char *reason;
    components(r->srv, comp, &reason);
    if (!strcmp(name, "redis") && !json_object_get(comp, "redis"))
        json_object_set_new(comp, "redis", json_string("disabled")); /* embedded store: nothing to check */
    json_t *st = json_object_get(comp, name);
    if (!st) {
        json_decref(comp);
        ld_error e;
        ld_error_set(&e, LD_ERR_NOT_FOUND, "Unknown component '%.64s' (api_server, asr, license, store, redis)",
                     name);
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    }
    const char *state = json_string_value(st);
    bool ok = strcmp(state, "unhealthy") != 0;
    json_t *o = json_pack("{s:s,s:O}", "component", name, "status", st);
    if (!strcmp(name, "store") || !strcmp(name, "redis"))
        json_object_set_new(o, "detail", store_detail(r->srv));
    /* asr and license add their detail on request (?detailed=true), like /health. */
    bool detailed = query_true(r, "detailed");
    if (detailed && !strcmp(name, "license")) {
        ld_store_health_info h;
        ld_store_health(r->srv->store, &h);
        license_state(r->srv, &h, o);
    }
    if (detailed && !strcmp(name, "asr")) {
        ld_srv *s = r->srv;
        json_object_set_new(o, "detail",
                            json_pack("{s:i,s:i,s:i,s:i,s:i,s:o}", "workers", ld_pool_workers(s->pool), "busy",
                                      ld_pool_busy(s->pool), "queue_depth", ld_pool_queue_depth(s->pool),
                                      "active_streams", s->ws ? ld_ws_active(s->ws) : 0, "max_streams",
                                      s->cfg.max_streams, "languages", ld_pool_languages(s->pool)));
    }
    json_decref(comp);
    return ld_respond_json(r->conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, r->request_id);
}

static enum MHD_Result license(ld_req *r)
{
    ld_usage u;
    ld_error e;
    /* Admission just read the window, today's usage and the leases: render
     * those (saves three store round trips with Redis). It has not when the
     * key is over its daily quota (reading the license is still allowed). */
    if (r->have_rate && r->rate.have_usage)
        u = r->rate.usage;
    else if (ld_auth_usage(r->srv->auth, &r->key, &u, &e))
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    const ld_key_claims *k = &r->key;
    json_t *o = json_object();
    json_object_set_new(o, "key_id", json_string(k->key_id));
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "issued_at", ld_time_json(k->issued_at));
    json_object_set_new(o, "expires_at", ld_time_json(k->expires_at));
    json_object_set_new(o, "limits", json_pack("{s:i,s:i,s:f}", "requests_per_minute", k->rpm, "concurrency",
                                               k->concurrency, "audio_hours_per_day", k->hours_per_day));
    json_object_set_new(o, "usage",
                        json_pack("{s:i,s:i,s:i,s:f,s:f}", "requests_this_minute", u.requests_this_minute,
                                  "requests_remaining", u.requests_remaining, "concurrent", u.concurrent,
                                  "audio_seconds_today", u.audio_seconds_today, "audio_seconds_remaining",
                                  u.audio_seconds_remaining));
    json_object_set_new(o, "request_id", json_string(r->request_id));
    return ld_respond_json(r->conn, MHD_HTTP_OK, o, r->request_id);
}

static enum MHD_Result stream(ld_req *r)
{
    r->status = MHD_HTTP_SWITCHING_PROTOCOLS; /* unless ld_ws_handle answers with an error */
    r->is_ws = true; /* streams are closed by ld_ws_free, not drained */
    atomic_fetch_add(&r->srv->ws_active, 1);
    return ld_ws_handle(r->srv->ws, r->conn, r->client, r->request_id);
}

static enum MHD_Result lightning_first(ld_req *r)
{
    r->lightning = true;
    return ld_listen_first(r);
}

static enum MHD_Result openai_first(ld_req *r)
{
    r->openai = true;
    return ld_listen_first(r);
}
