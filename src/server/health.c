/* Health endpoints (docs/api.md, "GET /health"; docs/operations.md): overall
 * readiness from the decoders, license checking, the store and draining,
 * and per-component detail. */
#include "server/health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/respond.h"
#include "server/srv.h"
#include "util/log.h"
#include "util/time.h"

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

/* The data dir's folders every upload and job writes to (<data>/tmp, <data>/jobs):
 * one deleted at runtime (a tmp cleaner, an operator) is made again; one that
 * cannot be written (read-only remount, permissions) makes the store unhealthy,
 * since every upload would fail. False with the reason in `why`. */
static bool data_dirs_ok(ld_srv *s, char *why, size_t n)
{
    char jobs[1100];
    snprintf(jobs, sizeof jobs, "%s/jobs", s->cfg.data);
    const char *dirs[] = {s->tmp_dir, jobs};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        if (stat(dirs[i], &st) && errno == ENOENT && !mkdir(dirs[i], 0700)) {
            ld_log(LD_LOG_WARNING, "data dir: %s was missing: made it again", dirs[i]);
            continue;
        }
        const char *bad = stat(dirs[i], &st)             ? strerror(errno)
                          : !S_ISDIR(st.st_mode)         ? "not a directory"
                          : access(dirs[i], W_OK | X_OK) ? strerror(errno)
                                                         : NULL;
        if (bad) {
            snprintf(why, n, "%s: %s", dirs[i], bad);
            return false;
        }
    }
    return true;
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
    /* Usage the data dir refused (disk full): still serving, quota held in memory. */
    char why[160];
    bool unsaved = ld_store_usage_unsaved(s->store, why, sizeof why) > 0;
    char dir_why[1200];
    bool dirs = data_dirs_ok(s, dir_why, sizeof dir_why);
    const char *store_state = !dirs       ? "unhealthy"
                              : !store_up ? (h.degraded ? "degraded" : "unhealthy")
                              : unsaved   ? "degraded"
                                          : "healthy";
    json_object_set_new(comp, "api_server", json_string(draining ? "draining" : "healthy"));
    json_object_set_new(comp, "asr", json_string(asr ? "healthy" : "unhealthy"));
    json_object_set_new(comp, "license", json_string(lic_state));
    json_object_set_new(comp, "store", json_string(store_state));
    /* the spec's names for the same parts (§6: monitors written for Smallest read these) */
    json_object_set_new(comp, "lightning_asr", json_string(asr ? "healthy" : "unhealthy"));
    json_object_set_new(comp, "license_proxy", json_string(lic_state));
    if (!strcmp(h.backend, "redis"))
        json_object_set_new(comp, "redis", json_string(store_state));
    *reason = !asr        ? "No ASR workers available"
              : !lic      ? "License checks unavailable (issuer keys, revocations)"
              : !store_ok ? "Redis unavailable"
              : draining  ? "Server is shutting down"
                          : NULL;
    if (!*reason && !dirs) {
        static _Thread_local char msg[1300];
        snprintf(msg, sizeof msg, "Data directory not writable: %s", dir_why);
        *reason = msg;
    }
    /* Serving, but limits are per replica (N replicas: up to N x a key's
     * rate and concurrency) and revocations stale: the operator must act. */
    if (!*reason && h.degraded)
        *reason = "Redis unavailable: serving per-replica limits (--redis-failure open)";
    else if (!*reason && unsaved) {
        static _Thread_local char msg[220];
        snprintf(msg, sizeof msg, "Usage could not be written to the data dir: %s", why);
        *reason = msg;
    }
    return asr && lic && store_ok && dirs && !draining;
}

static json_t *store_detail(ld_srv *s)
{
    ld_store_health_info h;
    ld_store_health(s->store, &h);
    json_t *o = json_pack("{s:s,s:b}", "backend", h.backend, "up", h.up);
    char dir_why[1200];
    bool dirs = data_dirs_ok(s, dir_why, sizeof dir_why);
    json_object_set_new(o, "data_dir",
                        dirs ? json_pack("{s:b}", "writable", 1)
                             : json_pack("{s:b,s:s}", "writable", 0, "error", dir_why));
    char why[160];
    double unsaved = ld_store_usage_unsaved(s->store, why, sizeof why);
    if (unsaved > 0) /* usage the data dir refused, kept in memory and retried */
        json_object_set_new(o, "usage_unsaved", json_pack("{s:f,s:s}", "seconds", unsaved, "error", why));
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

enum MHD_Result ld_health_serve(ld_req *r)
{
    ld_srv *s = r->srv;
    json_t *comp = json_object();
    const char *reason;
    bool ok = components(s, comp, &reason);
    json_t *o = json_object();
    /* degraded: serving (200), but the operator must act (usage unsaved). */
    bool degraded = ok && reason;
    json_object_set_new(o, "status", json_string(!ok ? "unhealthy" : degraded ? "degraded" : "healthy"));
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
        /* Requests ahead of the decoders: audio URLs being fetched, uploads being read back. */
        json_object_set_new(o, "fetching", json_integer(ld_work_depth(s->fetch)));
        json_object_set_new(o, "preparing", json_integer(ld_work_depth(s->work)));
        json_object_set_new(o, "active_streams", json_integer(s->ws ? ld_ws_active(s->ws) : 0));
        /* callback jobs decode on their own runners, outside queue_depth and preparing (with Redis: every
         * replica's); -1 when the store cannot answer */
        if (s->jobs)
            json_object_set_new(o, "jobs",
                                json_pack("{s:i,s:i}", "queued", ld_jobs_count(s->jobs, "queued"), "processing",
                                          ld_jobs_count(s->jobs, "processing")));
        json_object_set_new(o, "languages", ld_pool_languages(s->pool));
        json_object_set_new(o, "store", store_detail(s));
    }
    json_decref(comp);
    return ld_respond_json(r->conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o, r->request_id);
}

enum MHD_Result ld_healthz_serve(ld_req *r)
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

/* Never looks at components: a restart cures none of them (draining, loading,
 * Redis down), and killing every replica at once while Redis is away would
 * turn an outage of the store into one of the whole service. */
enum MHD_Result ld_livez_serve(ld_req *r)
{
    return ld_respond_json(r->conn, MHD_HTTP_OK, json_pack("{s:b}", "alive", 1), r->request_id);
}

enum MHD_Result ld_health_component_serve(ld_req *r)
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
