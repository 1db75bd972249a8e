/* Routing: which handler serves a path and method, how its key is presented
 * and what admission applies. The handlers live in their own files. */
#include "server/route.h"

#include "server/edge.h"

#include <string.h>
#include <strings.h>

#include "server/admit.h"
#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/cors.h"
#include "server/health.h"
#include "server/jobs_api.h"
#include "server/license.h"
#include "server/listen.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/respond.h"
#include "server/web.h"
#include "server/ws.h"
#include "server/ws_flux.h"
#include "server/ws_openai.h"

typedef struct {
    const char *path;
    bool prefix;                         /* path is a prefix ending in '/' */
    const char *pattern;                 /* metric label; NULL = path */
    const char *allow;                   /* methods, for matching and the Allow header */
    ld_auth_from auth;                   /* where the key comes from (admit.h) */
    bool quota;                          /* refuse keys over their daily audio quota */
    bool batch;                          /* a batch transcription (asr_active_requests) */
    enum MHD_Result (*first)(ld_req *r); /* after admission, headers only */
    enum MHD_Result (*final)(ld_req *r); /* request fully received */
} route;

#define PUBLIC LD_AUTH_NONE
#define KEY LD_AUTH_HEADER

static const route routes[] = {
    {"/health", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_health_serve},
    {"/api/v1/health", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_health_serve},
    {"/healthz", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_healthz_serve},
    {"/livez", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_livez_serve},
    {"/health/", true, "/health/{component}", "GET, HEAD", PUBLIC, false, false, NULL, ld_health_component_serve},
    {"/v1/license", false, NULL, "GET, HEAD", KEY, false, false, NULL, ld_license_serve},
    {"/v1/listen", false, NULL, "POST", KEY, true, true, ld_listen_first, ld_listen_final},
    /* The paths of the vendor's own test script and Pulse (docs/api.md,
     * "Compatibility: POST /api/v1/lightning/get_text"): same intake,
     * Lightning-style body. */
    {"/api/v1/lightning/get_text", false, NULL, "POST", KEY, true, true, ld_listen_first_lightning,
     ld_listen_final},
    {"/waves/v1/pulse/get_text", false, NULL, "POST", KEY, true, true, ld_listen_first_lightning, ld_listen_final},
    /* Smallest's unified STT paths (spec §8 names the stream; its cloud clients post
     * files to /waves/v1/stt/): the same Pulse body, the same stream protocol. */
    {"/waves/v1/stt", false, NULL, "POST", KEY, true, true, ld_listen_first_lightning, ld_listen_final},
    {"/waves/v1/stt/", false, NULL, "POST", KEY, true, true, ld_listen_first_lightning, ld_listen_final},
    {LD_WS_UNIFIED_PATH, false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    /* OpenAI clients (docs/compat.md, "OpenAI"); the path selects OpenAI's error envelope. */
    {"/v1/audio/transcriptions", false, NULL, "POST", KEY, true, true, ld_listen_first_openai, ld_listen_final},
    /* OpenAI's Realtime API, transcription sessions (ws_openai.h): a WebSocket upgrade only. */
    {LD_WS_OA_PATH, false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    {"/v1/audio/translations", false, NULL, "POST", KEY, false, false, ld_openai_translations, NULL},
    {"/v1/models", false, NULL, "GET, HEAD", KEY, false, false, NULL, ld_openai_models_serve},
    {"/v1/models/", true, "/v1/models/{id}", "GET, HEAD", KEY, false, false, NULL, ld_openai_model_serve},
    /* Deepgram clients with base URL http://HOST:7100/deepgram (docs/compat.md, "Deepgram"). */
    {LD_DG_PREFIX "/v1/listen", false, NULL, "POST", KEY, true, true, ld_listen_first_deepgram, ld_listen_final},
    /* Deepgram Flux (the SDK's listen.v2): a WebSocket upgrade only (ws_flux.h). */
    {LD_WS_FLUX_PATH, false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    /* Answered (101 or an error) once admitted; its lease moves to the stream. */
    {"/v1/listen/stream", false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    {"/v1/jobs", false, NULL, "GET, HEAD", KEY, false, false, NULL, ld_jobs_api_list},
    {"/v1/jobs/", true, "/v1/jobs/{id}", "GET, HEAD, DELETE", KEY, false, false, NULL, ld_jobs_api_one},
    {"/metrics", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_srv_metrics_serve}, /* own token check */
    /* The browser playground (web.c; off with --no-playground). */
    {"/", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_web_root},
    {"/playground", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_web_page},
    {"/playground/", false, NULL, "GET, HEAD", PUBLIC, false, false, NULL, ld_web_root}, /* typed by hand */
    {"/playground/", true, "/playground/{file}", "GET, HEAD", PUBLIC, false, false, NULL, ld_web_asset_serve},
};

/* Taken only by a WebSocket upgrade (Upgrade: websocket), before the table
 * above: GET /v1/listen is a stream as Deepgram's clients open it, and stays a
 * 405 for anything else. The Lightning/Pulse paths are where Smallest's own
 * streaming clients connect (spec §8: the api-server's ASR socket, the cloud's
 * wss URLs); they speak /v1/listen/stream's protocol. */
static const route upgrades[] = {
    {"/v1/listen", false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    {"/api/v1/lightning/get_text", false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    {"/waves/v1/pulse/get_text", false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
    {LD_DG_PREFIX "/v1/listen", false, NULL, "GET", LD_AUTH_STREAM, true, false, ld_ws_serve, NULL},
};

/* A CORS preflight from an allowed origin (cors.c adds its headers). */
static enum MHD_Result preflight(ld_req *r)
{
    return ld_respond_static(r->conn, MHD_HTTP_NO_CONTENT, "", 0, "text/plain; charset=utf-8", r->request_id, NULL);
}

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

static bool is_upgrade(const ld_req *r)
{
    const char *u = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
    return u && !strcasecmp(u, "websocket");
}

static bool path_is(const route *rt, const char *path)
{
    return rt->prefix ? !strncmp(path, rt->path, strlen(rt->path)) && path[strlen(rt->path)]
                      : !strcmp(path, rt->path);
}

/* The route serving path and method; else (*by_path) the first route of the
 * path, for the 405. */
static const route *find(const ld_req *r, const char *method, const route **by_path)
{
    *by_path = NULL;
    for (size_t i = 0; i < sizeof upgrades / sizeof *upgrades && is_upgrade(r); i++)
        if (path_is(&upgrades[i], r->path) && method_in(upgrades[i].allow, method))
            return &upgrades[i];
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const route *rt = &routes[i];
        if (!path_is(rt, r->path))
            continue;
        if (method_in(rt->allow, method))
            return rt;
        if (!*by_path)
            *by_path = rt;
    }
    return NULL;
}

enum MHD_Result ld_route_first(ld_req *r, const char *method)
{
    /* Compatibility paths answer in their clients' envelopes from the first error on. */
    r->deepgram = ld_dg_path(r->path);
    r->openai = ld_openai_path(r->path);
    const route *by_path, *rt = find(r, method, &by_path);
    if (!rt && !by_path) {
        ld_req_fail(r, LD_ERR_NOT_FOUND, NULL, "Not found: %.200s", r->path);
    } else {
        if (!rt)
            rt = by_path;
        r->route_pattern = rt->pattern ? rt->pattern : rt->path; /* a 405 is counted under its route too */
        if (!strcmp(method, "OPTIONS") && ld_cors_preflight(r, rt->allow)) {
            r->final = preflight; /* answered once the request is in, so the connection stays open */
            return MHD_YES;
        } else if (!method_in(rt->allow, method)) {
            r->allow = rt->allow;
            ld_req_fail(r, LD_ERR_METHOD_NOT_ALLOWED, NULL, "Method %s not allowed on %s (allowed: %s)", r->method,
                        r->route_pattern, rt->allow);
        } else {
            r->batch = rt->batch;
            r->final = rt->final;
            if (rt->auth == LD_AUTH_NONE || ld_admit(r, rt->auth, rt->quota)) {
                ld_srv_metrics_admitted(r);
                if (rt->first) {
                    enum MHD_Result ret = rt->first(r);
                    if (!r->pending)
                        return ret;
                }
            }
        }
    }
    if (!r->pending)
        return MHD_YES;
    /* An early error. Answer now when no body follows or the client waits for
     * 100-continue (MHD then closes instead of reading); otherwise read and
     * drop the body first, so ordinary clients get to see the answer. */
    bool over_cap = ld_edge_body_over_cap(r);
    if (!ld_req_has_body(r) || ld_req_expects_continue(r) || over_cap) {
        /* A declared body over the cap would only be read to be dropped:
         * answer now and close (the client may see a reset if it keeps sending). */
        r->close_conn = over_cap;
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
    if (!r->final) { /* cannot happen: the route's first step answered already */
        ld_error e;
        ld_error_set(&e, LD_ERR_INTERNAL, NULL);
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    }
    return r->final(r);
}
