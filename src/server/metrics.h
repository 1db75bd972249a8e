/* GET /metrics for the server (internal to src/server/): HTTP request
 * counters, the gauges read from the pool, streams, jobs and store at scrape
 * time, process metrics, and the optional --metrics-port listener.
 * Thread-safety: the per-request calls may run on any thread; start/stop
 * once, from the main thread. */
#ifndef LD_SERVER_METRICS_H
#define LD_SERVER_METRICS_H

#include <stdbool.h>

#include "server/srv.h"
#include "util/metrics.h"

/* Registers the server's families, and starts the --metrics-port daemon when
 * configured. Call before the API daemon starts. */
int ld_srv_metrics_start(ld_srv *s, ld_error *err);
/* Stops the metrics daemon and the scrape hook (before the pool is freed). */
void ld_srv_metrics_stop(ld_srv *s);

/* The GET /metrics route on the API port (404 when --metrics-port is set). */
enum MHD_Result ld_srv_metrics_serve(ld_req *r);
/* After admission: a batch transcription enters asr_active_requests. */
void ld_srv_metrics_admitted(ld_req *r);
/* From the completion callback: counts the request (route, method, status,
 * duration, key) and leaves asr_active_requests. */
void ld_srv_metrics_request(ld_req *r);

/* metrics_process.c: process_* families, refreshed at every scrape. */
void ld_srv_metrics_process_init(ld_metrics *reg);

#endif
