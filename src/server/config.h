/* `listend serve` configuration: defaults, then environment, then flags (flags
 * win). Internal to src/server/. Thread-safety: parse once at start-up. */
#ifndef LD_SERVER_CONFIG_H
#define LD_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char host[256];
    int port;
    char data[1024];
    char tls_cert[1024];
    char tls_key[1024];
    int workers;      /* decoders per language (0 = cores) */
    int http_threads; /* libmicrohttpd thread pool (0 = cores) */
    char log_level[16];
    char models[1024];
    char vocabulary[1024]; /* --vocabulary: operator word list (asr/vocab.h) */
    int max_body_mb;
    double max_audio_seconds;
    int queue; /* decoder-pool queue (0 = 4 x workers) */
    bool allow_private_urls;
    int max_streams;
    int stream_idle_timeout;       /* seconds */
    int64_t realtime_idle_timeout; /* seconds: OpenAI realtime sessions without any client event */
    int64_t drain_timeout;         /* seconds */
    int64_t job_retention;         /* seconds */
    int64_t webhook_max_age;       /* seconds */
    int job_concurrency;           /* jobs transcribing at once (0 = jobs default) */
    int job_queue;                 /* pending jobs before 503 (0 = jobs default) */
    int webhook_backoff_ms;        /* first webhook retry delay (0 = jobs default) */
    int webhook_timeout_ms;        /* one delivery attempt (0 = jobs default) */
    int webhook_workers;           /* deliveries in flight at once (0 = jobs default, 8) */
    int job_queue_per_key;         /* one key's pending jobs (0 = a quarter of --job-queue) */
    int job_audio_per_key_mb;      /* uploaded audio one key's pending jobs hold (0 = 1024) */
    char redis_url[2048];          /* "" = embedded store (unless REDIS_HOST is set) */
    char redis_failure[16];        /* "closed" or "open" */
    int max_connections;
    int max_connections_per_ip;  /* 0 = unlimited */
    int connection_timeout;      /* idle seconds before a connection is closed */
    int metrics_port;            /* 0 = /metrics on the API port */
    char metrics_token[256];     /* "" = /metrics needs no Authorization */
    int header_timeout;          /* seconds to complete request headers (0 = off) */
    int min_body_rate;           /* bytes/s an upload must average (0 = off) */
    bool no_playground;          /* GET / and /playground answer 404 */
    char cors_origin[4096];      /* comma-separated allowed origins, or "*"; "" = no CORS */
    int stream_prewarm;          /* stream decoders kept ready */
    int64_t stream_decoder_idle; /* seconds before an idle stream decoder beyond the prewarm is freed */

    /* usage monitoring (monitor/monitor.h, monitor/anomaly.h) */
    char usage_webhook[2048];       /* "" = no usage events */
    int64_t usage_anomaly_window;   /* seconds per window of the anomaly rule */
    int usage_anomaly_history;      /* EWMA span and warm-up, in windows */
    double usage_anomaly_factor;    /* K */
    int usage_anomaly_floor;        /* requests per window never anomalous */
    int64_t usage_anomaly_cooldown; /* seconds without a second event for the key */
    /* Audio URL fetches (docs/hardening.md, "Fetches"). */
    int64_t fetch_connect_timeout; /* seconds to connect */
    int fetch_min_speed;           /* bytes/s a transfer must keep up ... */
    int64_t fetch_min_speed_time;  /* ... over this many seconds (0 = off) */
    int64_t fetch_timeout;         /* seconds for a whole fetch */
    int fetch_threads;             /* threads that wait on URLs (0 = max(16, 4 x cores)) */
    char trusted_proxy[4096];      /* comma-separated CIDRs whose X-Forwarded-For is believed */
    int fetch_per_key;             /* fetches one key may run at once (0 = half the fetch threads) */
} ld_srv_config;

/* 0: run; 1: --help printed (exit 0); -1: bad usage, message printed (exit 2). */
int ld_srv_config_parse(ld_srv_config *c, int argc, char **argv);
void ld_srv_config_help(FILE *f);

#endif
