/* GET /metrics: the server's families, scrape-time gauges and the optional
 * --metrics-port listener. The request counters are updated from the
 * completion callback of every request, so they stay cheap: three lock-free
 * series lookups and a few atomic adds. */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/bind.h"
#include "server/respond.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/rand.h"
#include "util/time.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define KEY_SERIES 100 /* per-key series before the rest count as key_id="other" */

static struct {
    ld_metric *requests, *duration, *in_flight, *key_requests;
    ld_metric *active, *queue, *streams, *stream_decoders, *busy, *decoders, *jobs, *store_up, *build;
} fam;
static atomic_int active_requests; /* admitted transcriptions not yet answered */
static struct MHD_Daemon *metrics_daemon;

static ld_metric *reg(ld_metric_desc d) { return ld_metrics_register(ld_metrics_global(), &d); }

static void register_families(void)
{
    fam.requests = reg((ld_metric_desc){
        .name = "listend_http_requests_total",
        .help = "HTTP requests answered, by route pattern, method and status (101 = WebSocket upgrade, "
                "0 = connection closed before an answer)",
        .type = LD_METRIC_COUNTER,
        .nlabels = 3,
        .labels = {"route", "method", "status"},
        .max_series = 512});
    fam.duration = reg((ld_metric_desc){
        .name = "listend_http_request_duration_seconds",
        .help = "Time from request headers to the end of the response, by route pattern (upload and "
                "transcription included)",
        .type = LD_METRIC_HISTOGRAM,
        .nlabels = 1,
        .labels = {"route"},
        .max_series = 32,
        .nbuckets = 16,
        .buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}});
    fam.in_flight = reg((ld_metric_desc){.name = "listend_http_requests_in_flight",
                                         .help = "HTTP requests received and not yet answered (WebSocket "
                                                 "streams excluded)",
                                         .type = LD_METRIC_GAUGE});
    fam.key_requests = reg((ld_metric_desc){
        .name = "listend_key_requests_total",
        .help = "Authenticated HTTP requests and stream handshakes per license key id (the first 100 ids "
                "seen, the rest under key_id=\"other\")",
        .type = LD_METRIC_COUNTER,
        .nlabels = 1,
        .labels = {"key_id"},
        .max_series = KEY_SERIES});
    fam.active = reg((ld_metric_desc){.name = "asr_active_requests",
                                      .help = "Batch transcription requests admitted on this replica and not yet "
                                              "answered (the autoscaling signal)",
                                      .type = LD_METRIC_GAUGE});
    fam.queue = reg((ld_metric_desc){.name = "asr_batch_queue_depth",
                                     .help = "Transcriptions (requests and callback jobs) in the decoder pool, "
                                             "waiting or decoding",
                                     .type = LD_METRIC_GAUGE});
    fam.streams = reg((ld_metric_desc){.name = "asr_active_streams",
                                       .help = "Stream decoders held by live WebSocket streams (one per channel)",
                                       .type = LD_METRIC_GAUGE});
    fam.stream_decoders = reg((ld_metric_desc){.name = "listend_stream_decoders",
                                               .help = "Stream decoders loaded, by state: in_use by a live "
                                                       "stream, or idle (warm, see --stream-prewarm)",
                                               .type = LD_METRIC_GAUGE,
                                               .nlabels = 1,
                                               .labels = {"state"},
                                               .max_series = 2});
    fam.busy = reg((ld_metric_desc){
        .name = "listend_asr_decoders_busy", .help = "Batch decoders working now", .type = LD_METRIC_GAUGE});
    fam.decoders = reg((ld_metric_desc){.name = "listend_asr_decoders_total",
                                        .help = "Batch decoders able to serve (0 = /health is 503)",
                                        .type = LD_METRIC_GAUGE});
    fam.jobs = reg((ld_metric_desc){.name = "listend_jobs",
                                    .help = "Callback jobs in the job store by state (with Redis: every "
                                            "replica's jobs)",
                                    .type = LD_METRIC_GAUGE,
                                    .nlabels = 1,
                                    .labels = {"state"},
                                    .max_series = 8});
    fam.store_up = reg((ld_metric_desc){.name = "listend_store_up",
                                        .help = "1 when the shared-state store (embedded or redis) answers",
                                        .type = LD_METRIC_GAUGE,
                                        .nlabels = 1,
                                        .labels = {"backend"},
                                        .max_series = 2});
    fam.build = reg((ld_metric_desc){.name = "listend_build_info",
                                     .help = "Always 1; the labels name the running build",
                                     .type = LD_METRIC_GAUGE,
                                     .nlabels = 2,
                                     .labels = {"version", "engine"},
                                     .max_series = 1});
    ld_metric_set(fam.build, (const char *const[]){LD_VERSION, "pocketsphinx"}, 1);
}

static void on_scrape(void *ud)
{
    ld_srv *s = ud;
    ld_metric_set(fam.in_flight, NULL, atomic_load(&s->active) - atomic_load(&s->ws_active));
    ld_metric_set(fam.active, NULL, atomic_load(&active_requests));
    ld_metric_set(fam.queue, NULL, ld_pool_queue_depth(s->pool));
    ld_metric_set(fam.streams, NULL, s->ws ? ld_ws_active(s->ws) : 0);
    ld_metric_set(fam.stream_decoders, (const char *const[]){"in_use"}, ld_pool_active_streams(s->pool));
    ld_metric_set(fam.stream_decoders, (const char *const[]){"idle"}, ld_pool_idle_streams(s->pool));
    ld_metric_set(fam.busy, NULL, ld_pool_busy(s->pool));
    ld_metric_set(fam.decoders, NULL, ld_pool_workers(s->pool));
    static const char *const states[] = {"queued", "processing", "completed", "failed", "cancelled"};
    for (size_t i = 0; s->jobs && i < sizeof states / sizeof *states; i++) {
        int n = ld_jobs_count(s->jobs, states[i]);
        if (n >= 0) /* a store that cannot answer keeps the last value */
            ld_metric_set(fam.jobs, (const char *const[]){states[i]}, n);
    }
    ld_store_health_info h;
    bool up = ld_store_health(s->store, &h);
    ld_metric_set(fam.store_up, (const char *const[]){h.backend}, up);
}

/* ---- per request ---- */

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return "other";
}

void ld_srv_metrics_admitted(ld_req *r)
{
    /* Batch transcription routes hold a lease exactly when admitted. */
    if (r->batch && r->lease.held && !r->counted_active) {
        r->counted_active = true;
        atomic_fetch_add(&active_requests, 1);
    }
}

void ld_srv_metrics_request(ld_req *r)
{
    const char *route = r->route_pattern;
    if (r->counted_active) {
        r->counted_active = false;
        atomic_fetch_sub(&active_requests, 1);
    }
    char status[8];
    snprintf(status, sizeof status, "%u", r->status < 1000 ? r->status : 0);
    ld_metric_add(fam.requests, (const char *const[]){route, method_label(r->method), status}, 1);
    /* a stream: until its upgrade, so minutes-long sessions do not fill the route's latency buckets */
    ld_metric_observe(fam.duration, (const char *const[]){route},
                      (r->upgraded > 0 && r->status == 101 ? r->upgraded : ld_time_mono()) - r->t0);
    if (r->authed)
        ld_metric_add(fam.key_requests, (const char *const[]){r->key.key_id}, 1);
}

/* ---- exposition ---- */

/* `Authorization: Bearer <token>`, compared in constant time. */
static bool token_ok(const ld_srv *s, struct MHD_Connection *c)
{
    const char *want = s->cfg.metrics_token;
    if (!want[0])
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(want), m = strlen(h);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result expose(ld_srv *s, struct MHD_Connection *c, const char *request_id)
{
    ld_error e;
    if (!token_ok(s, c)) {
        ld_metrics_auth_failure("metrics_token"); /* a scraper with a stale token, or someone guessing */
        ld_error_set(&e, LD_ERR_INVALID_LICENSE,
                     "Missing or invalid metrics token (Authorization: Bearer <token>)");
        return ld_respond_error(c, &e, request_id, NULL);
    }
    size_t len = 0;
    char *text = ld_metrics_render(ld_metrics_global(), &len);
    if (!text) {
        ld_error_set(&e, LD_ERR_INTERNAL, "Out of memory rendering metrics");
        return ld_respond_error(c, &e, request_id, NULL);
    }
    return ld_respond_body(c, MHD_HTTP_OK, text, len, CONTENT_TYPE, request_id);
}

enum MHD_Result ld_srv_metrics_serve(ld_req *r)
{
    if (r->srv->cfg.metrics_port) {
        ld_error e;
        ld_error_set(&e, LD_ERR_NOT_FOUND, "Not found: /metrics is served on the metrics port");
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    }
    return expose(r->srv, r->conn, r->request_id);
}

/* The --metrics-port daemon: GET/HEAD /metrics only, one thread. */
static enum MHD_Result on_metrics_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                         const char *version, const char *upload_data, size_t *upload_data_size,
                                         void **con_cls)
{
    (void)version, (void)upload_data;
    if (!*con_cls) { /* headers only; answer once any body was read */
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    char rid[40];
    ld_rand_id("req_", rid, sizeof rid);
    ld_error e;
    if (strcmp(url, "/metrics")) {
        ld_error_set(&e, LD_ERR_NOT_FOUND, "Not found: only /metrics is served on this port");
        return ld_respond_error(c, &e, rid, NULL);
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        ld_error_set(&e, LD_ERR_METHOD_NOT_ALLOWED, "Method %s not allowed on /metrics (allowed: GET, HEAD)",
                     method);
        return ld_respond_error(c, &e, rid, NULL);
    }
    return expose(cls, c, rid);
}

static struct MHD_Daemon *start_daemon(ld_srv *s, ld_error *err)
{
    static struct sockaddr_storage addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ld_bind_addr(s->cfg.host, s->cfg.metrics_port, &addr, &flags, err))
        return NULL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)s->cfg.metrics_port, NULL, NULL, on_metrics_access, s, MHD_OPTION_EXTERNAL_LOGGER,
        ld_log_library, (void *)"metrics", MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!d)
        ld_error_set(err, LD_ERR_INTERNAL, "cannot listen on %s:%d for metrics (address in use?)", s->cfg.host,
                     s->cfg.metrics_port);
    return d;
}

int ld_srv_metrics_start(ld_srv *s, ld_error *err)
{
    ld_metrics_events_init();
    register_families();
    ld_srv_metrics_process_init(ld_metrics_global());
    ld_metrics_on_render(ld_metrics_global(), on_scrape, s);
    if (s->cfg.metrics_port && !(metrics_daemon = start_daemon(s, err)))
        return -1;
    if (metrics_daemon)
        ld_log_fields(
            LD_LOG_INFO,
            json_pack("{s:i,s:b}", "metrics_port", s->cfg.metrics_port, "token", s->cfg.metrics_token[0] != '\0'),
            "Metrics listening on port %d", s->cfg.metrics_port);
    return 0;
}

void ld_srv_metrics_stop(ld_srv *s)
{
    if (metrics_daemon)
        MHD_stop_daemon(metrics_daemon);
    metrics_daemon = NULL;
    ld_metrics_remove_hook(ld_metrics_global(), on_scrape, s);
}
