#include "server/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "asr/pool.h"
#include "server/proxy.h"
#include "util/log.h"
#include "util/time.h"

typedef enum { T_STR, T_INT, T_DBL, T_BOOL, T_DUR, T_SECS, T_LIST } kind; /* T_LIST: a flag may repeat */

/* One row per setting: the single source for parsing and --help. */
static const struct opt {
    const char *flag;
    const char *env;  /* first environment variable */
    const char *env2; /* alias, lower precedence (may be NULL) */
    kind type;
    size_t off;
    size_t size; /* T_STR buffer size */
    const char *def;
    const char *help;
} opts[] = {
#define STR_(x) #x
#define STR(x) STR_(x)
#define F(m) offsetof(ld_srv_config, m), sizeof(((ld_srv_config *)0)->m)
    {"host", "LISTEND_HOST", NULL, T_STR, F(host), "0.0.0.0", "address to listen on"},
    {"port", "API_SERVER_PORT", "PORT", T_INT, F(port), "7100", "TCP port"},
    {"data", "LISTEND_DATA", NULL, T_STR, F(data), "./listend-data",
     "data dir: issuer public keys, usage DB, jobs, temp uploads"},
    {"tls-cert", "LISTEND_TLS_CERT", NULL, T_STR, F(tls_cert), "", "PEM certificate chain: serve HTTPS"},
    {"tls-key", "LISTEND_TLS_KEY", NULL, T_STR, F(tls_key), "", "PEM private key for --tls-cert"},
    {"workers", "LISTEND_WORKERS", NULL, T_INT, F(workers), "0", "speech decoders per language (0 = CPU cores)"},
    {"http-threads", "LISTEND_HTTP_THREADS", NULL, T_INT, F(http_threads), "0",
     "HTTP event-loop threads (0 = CPU cores)"},
    {"log-level", "LISTEND_LOG_LEVEL", NULL, T_STR, F(log_level), "info", "debug, info, warning, error, critical"},
    {"models", "LISTEND_MODELS", NULL, T_STR, F(models), "",
     "extra language models <dir>/<iso639-1>/ and model packs <dir>/<pack>/ (listend adapt; English is built in)"},
    {"vocabulary", "LISTEND_VOCABULARY", NULL, T_STR, F(vocabulary), "",
     "English words for every request, one a line: word, word:boost (1-10) or word PHONES (CMU phones); "
     "see the keywords option"},
    {"max-body-mb", "LISTEND_MAX_BODY_MB", NULL, T_INT, F(max_body_mb), "100",
     "largest request body / fetched file, in MB (422 FILE_TOO_LARGE)"},
    {"max-audio-seconds", "LISTEND_MAX_AUDIO_SECONDS", NULL, T_DBL, F(max_audio_seconds), "7200",
     "longest audio accepted (422 AUDIO_TOO_LONG; 0 = no limit)"},
    {"queue", "LISTEND_QUEUE", NULL, T_INT, F(queue), "0",
     "transcriptions waiting before 503 SERVICE_UNAVAILABLE (0 = 4 x workers)"},
    {"allow-private-urls", "LISTEND_ALLOW_PRIVATE_URLS", NULL, T_BOOL, F(allow_private_urls), "false",
     "let `url` and `callback_url` reach loopback/private addresses"},
    {"max-streams", "LISTEND_MAX_STREAMS", NULL, T_INT, F(max_streams), STR(LD_DEFAULT_MAX_STREAMS),
     "live WebSocket streams at once"},
    {"stream-idle-timeout", "LISTEND_STREAM_IDLE_TIMEOUT", NULL, T_SECS, F(stream_idle_timeout), "10s",
     "time without audio or KeepAlive before a stream is closed"},
    {"realtime-idle-timeout", "LISTEND_REALTIME_IDLE_TIMEOUT", NULL, T_DUR, F(realtime_idle_timeout), "10m",
     "OpenAI realtime sessions (GET /v1/realtime): time without any client event before closing (its clients "
     "send no keepalive)"},
    {"stream-prewarm", "LISTEND_STREAM_PREWARM", NULL, T_INT, F(stream_prewarm), "2",
     "stream decoders kept loaded and ready, refilled in the background (each ~95 MB)"},
    {"stream-decoder-idle", "LISTEND_STREAM_DECODER_IDLE", NULL, T_DUR, F(stream_decoder_idle), "60s",
     "free a stream decoder beyond --stream-prewarm after this long unused"},
    {"no-playground", "LISTEND_NO_PLAYGROUND", NULL, T_BOOL, F(no_playground), "false",
     "do not serve the browser playground at GET / and /playground"},
    {"cors-origin", "LISTEND_CORS_ORIGIN", NULL, T_LIST, F(cors_origin), "",
     "let browser apps on this origin call the API (repeat the flag, comma-separate, or *; off by default)"},
    {"drain-timeout", "LISTEND_DRAIN_TIMEOUT", NULL, T_DUR, F(drain_timeout), "30s",
     "on SIGTERM/SIGINT/SIGHUP, how long in-flight requests may finish"},
    {"job-retention", "LISTEND_JOB_RETENTION", NULL, T_DUR, F(job_retention), "7d",
     "keep finished callback jobs (results) this long"},
    {"webhook-max-age", "LISTEND_WEBHOOK_MAX_AGE", NULL, T_DUR, F(webhook_max_age), "24h",
     "stop retrying a webhook delivery after this"},
    {"job-concurrency", "LISTEND_JOB_CONCURRENCY", NULL, T_INT, F(job_concurrency), "0",
     "callback jobs transcribing at once (0 = half the workers, at least 1)"},
    {"job-queue", "LISTEND_JOB_QUEUE", NULL, T_INT, F(job_queue), "0",
     "queued + running callback jobs before 503 (0 = 1000)"},
    {"job-queue-per-key", "LISTEND_JOB_QUEUE_PER_KEY", NULL, T_INT, F(job_queue_per_key), "0",
     "one key's queued + running callback jobs before 429 (0 = a quarter of --job-queue, at least 1)"},
    {"job-audio-per-key-mb", "LISTEND_JOB_AUDIO_PER_KEY_MB", NULL, T_INT, F(job_audio_per_key_mb), "1024",
     "uploaded audio, in MB, one key's pending callback jobs may keep on disk before 429"},
    {"webhook-workers", "LISTEND_WEBHOOK_WORKERS", NULL, T_INT, F(webhook_workers), "8",
     "webhook deliveries in flight at once (one key's use at most half)"},
    {"webhook-backoff-ms", "LISTEND_WEBHOOK_BACKOFF_MS", NULL, T_INT, F(webhook_backoff_ms), "0",
     "first webhook retry delay in ms, doubling after (0 = 1000)"},
    {"webhook-timeout-ms", "LISTEND_WEBHOOK_TIMEOUT_MS", NULL, T_INT, F(webhook_timeout_ms), "0",
     "one webhook delivery attempt in ms (0 = 15000)"},
    {"redis-url", "REDIS_URL", NULL, T_STR, F(redis_url), "",
     "share limits, usage, revocations and jobs between replicas: redis://[user:password@]host[:port][/db] "
     "(REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD also work)"},
    {"redis-failure", "LISTEND_REDIS_FAILURE", NULL, T_STR, F(redis_failure), "closed",
     "when Redis is unreachable: closed (answer 503) or open (per-replica limits)"},
    {"max-connections", "LISTEND_MAX_CONNECTIONS", NULL, T_INT, F(max_connections), "1000",
     "open HTTP connections at once"},
    {"max-connections-per-ip", "LISTEND_MAX_CONNECTIONS_PER_IP", NULL, T_INT, F(max_connections_per_ip), "0",
     "open connections per client address (0 = no limit)"},
    {"connection-timeout", "LISTEND_CONNECTION_TIMEOUT", NULL, T_SECS, F(connection_timeout), "60s",
     "how long a connection may stay idle or stall mid-request"},
    {"metrics-port", "LISTEND_METRICS_PORT", NULL, T_INT, F(metrics_port), "0",
     "serve GET /metrics (Prometheus) on this port instead of the API port (0 = API port)"},
    {"metrics-token", "LISTEND_METRICS_TOKEN", NULL, T_STR, F(metrics_token), "",
     "require `Authorization: Bearer <token>` on GET /metrics"},
    {"header-timeout", "LISTEND_HEADER_TIMEOUT", NULL, T_SECS, F(header_timeout), "10s",
     "time from connecting to complete request headers, however slowly they trickle (0 = off)"},
    {"min-body-rate", "LISTEND_MIN_BODY_RATE", NULL, T_INT, F(min_body_rate), "1024",
     "slowest accepted upload in bytes/s on average, after a --header-timeout grace (0 = off)"},
    {"usage-webhook", "LISTEND_USAGE_WEBHOOK", NULL, T_STR, F(usage_webhook), "",
     "POST signed usage events here: a key crossed 80/95 % of its daily quota, or its traffic jumped"},
    {"usage-anomaly-window", "LISTEND_USAGE_ANOMALY_WINDOW", NULL, T_DUR, F(usage_anomaly_window), "60s",
     "anomaly rule: requests are counted per key in windows this long"},
    {"usage-anomaly-history", "LISTEND_USAGE_ANOMALY_HISTORY", NULL, T_INT, F(usage_anomaly_history), "15",
     "anomaly rule: a key's usual rate is the moving average of this many windows (and its warm-up)"},
    {"usage-anomaly-factor", "LISTEND_USAGE_ANOMALY_FACTOR", NULL, T_DBL, F(usage_anomaly_factor), "5",
     "anomaly rule: a window is unusual above this many times the usual rate..."},
    {"usage-anomaly-floor", "LISTEND_USAGE_ANOMALY_FLOOR", NULL, T_INT, F(usage_anomaly_floor), "60",
     "...and above this many requests (quiet keys never count)"},
    {"usage-anomaly-cooldown", "LISTEND_USAGE_ANOMALY_COOLDOWN", NULL, T_DUR, F(usage_anomaly_cooldown), "1h",
     "anomaly rule: after reporting a key, none for it for this long"},
    {"fetch-connect-timeout", "LISTEND_FETCH_CONNECT_TIMEOUT", NULL, T_DUR, F(fetch_connect_timeout), "10s",
     "give up connecting to an audio `url` after this"},
    {"fetch-min-speed", "LISTEND_FETCH_MIN_SPEED", NULL, T_INT, F(fetch_min_speed), "1024",
     "abandon an audio `url` sending fewer bytes/s than this for --fetch-min-speed-time (0 = off)"},
    {"fetch-min-speed-time", "LISTEND_FETCH_MIN_SPEED_TIME", NULL, T_DUR, F(fetch_min_speed_time), "30s",
     "window for --fetch-min-speed (also covers a server that accepts and never answers)"},
    {"fetch-timeout", "LISTEND_FETCH_TIMEOUT", NULL, T_DUR, F(fetch_timeout), "5m",
     "longest a whole audio `url` download may take"},
    {"fetch-threads", "LISTEND_FETCH_THREADS", NULL, T_INT, F(fetch_threads), "0",
     "threads waiting on audio URLs, apart from upload decoding (0 = max(16, 4 x cores))"},
    {"fetch-per-key", "LISTEND_FETCH_PER_KEY", NULL, T_INT, F(fetch_per_key), "0",
     "audio URL fetches one key may run at once (0 = half of --fetch-threads)"},
    {"trusted-proxy", "LISTEND_TRUSTED_PROXY", NULL, T_LIST, F(trusted_proxy), "",
     "a reverse proxy / ingress CIDR whose X-Forwarded-For names the client (repeat the flag or comma-separate; "
     "off by default: the TCP peer is the client)"},
#undef F
#undef STR
#undef STR_
};
#define N_OPTS (sizeof opts / sizeof *opts)

void ld_srv_config_help(FILE *f)
{
    fprintf(f,
            "usage: listend serve [options]\n\n"
            "Runs the speech-to-text HTTP API (POST /v1/listen, /v1/listen/stream, /v1/jobs, /health).\n"
            "Each option may also come from its environment variable; flags win over the environment.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].flag,
                 opts[i].type == T_BOOL   ? ""
                 : opts[i].type == T_LIST ? " V..."
                                          : " V");
        fprintf(f, "  %-28s %s", left, opts[i].help);
        if (opts[i].def[0] && opts[i].type != T_BOOL)
            fprintf(f, " [default %s]", opts[i].def);
        fprintf(f, "\n  %-28s env %s%s%s\n", "", opts[i].env, opts[i].env2 ? ", " : "",
                opts[i].env2 ? opts[i].env2 : "");
    }
    fprintf(f, "  %-28s this help\n", "--help");
}

static int set(ld_srv_config *c, const struct opt *o, const char *val, const char *src)
{
    void *p = (char *)c + o->off;
    char *end;
    errno = 0;
    switch (o->type) {
    case T_STR:
        if (strlen(val) >= o->size)
            goto bad;
        strcpy(p, val);
        return 0;
    case T_LIST: /* a repeated flag appends (see ld_srv_config_parse) */
        if (strlen(p) + 1 + strlen(val) >= o->size)
            goto bad;
        if (*(char *)p && *val)
            strcat(p, ",");
        strcat(p, val);
        return 0;
    case T_INT: {
        long n = strtol(val, &end, 10);
        if (errno || end == val || *end || n < 0 || n > 1000000000)
            goto bad;
        *(int *)p = (int)n;
        return 0;
    }
    case T_DBL: {
        double d = strtod(val, &end);
        if (errno || end == val || *end || d < 0)
            goto bad;
        *(double *)p = d;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") || !strcasecmp(val, "on"))
            *(bool *)p = true;
        else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no") ||
                 !strcasecmp(val, "off") || !*val)
            *(bool *)p = false;
        else
            goto bad;
        return 0;
    case T_DUR:
    case T_SECS: { /* T_SECS: a duration kept as int seconds */
        int64_t s;
        if (ld_time_parse_duration(val, &s) || s < 0 || (o->type == T_SECS && s > 1000000000))
            goto bad;
        if (o->type == T_SECS)
            *(int *)p = (int)s;
        else
            *(int64_t *)p = s;
        return 0;
    }
    }
bad:
    fprintf(stderr, "listend serve: invalid value '%s' for %s\n", val, src);
    return -1;
}

/* Each entry of --cors-origin is `*` or scheme://host[:port], as browsers send Origin. */
static int check_origins(char *list)
{
    char out[sizeof((ld_srv_config *)0)->cors_origin] = "";
    char *save = NULL, *copy = strdup(list);
    if (!copy)
        return -1;
    for (char *o = strtok_r(copy, ", ", &save); o; o = strtok_r(NULL, ", ", &save)) {
        size_t n = strlen(o);
        while (n > 1 && o[n - 1] == '/') /* "https://app.example/" means the origin */
            o[--n] = 0;
        const char *host = !strncmp(o, "https://", 8) ? o + 8 : !strncmp(o, "http://", 7) ? o + 7 : NULL;
        if (strcmp(o, "*") && (!host || !*host || strpbrk(host, "/?#@ "))) {
            fprintf(stderr,
                    "listend serve: --cors-origin '%s': expected * or an origin such as https://app.example.com\n",
                    o);
            free(copy);
            return -1;
        }
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", *out ? "," : "", o);
    }
    free(copy);
    strcpy(list, out);
    return 0;
}

int ld_srv_config_parse(ld_srv_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_OPTS; i++)
        if (set(c, &opts[i], opts[i].def, "default"))
            return -1;
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *names[2] = {opts[i].env2, opts[i].env}; /* alias first, so the main name wins */
        for (int k = 0; k < 2; k++) {
            const char *v = names[k] ? getenv(names[k]) : NULL;
            if (v && *v && set(c, &opts[i], v, names[k]))
                return -1;
        }
    }
    bool listed[N_OPTS] = {false}; /* a T_LIST flag replaces the environment's value, then appends */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            ld_srv_config_help(stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2)) {
            fprintf(stderr, "listend serve: unexpected argument '%s' (see --help)\n", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t i = 0; i < N_OPTS; i++)
            if (strlen(opts[i].flag) == nlen && !strncmp(opts[i].flag, name, nlen)) {
                o = &opts[i];
                if (o->type == T_LIST && !listed[i]) {
                    listed[i] = true;
                    *((char *)c + o->off) = 0;
                }
            }
        if (!o) {
            fprintf(stderr, "listend serve: unknown option '%s' (see --help)\n", arg);
            return -1;
        }
        const char *val;
        if (eq)
            val = eq + 1;
        else if (o->type == T_BOOL)
            val = "true";
        else if (a + 1 < argc)
            val = argv[++a];
        else {
            fprintf(stderr, "listend serve: option --%s needs a value\n", o->flag);
            return -1;
        }
        if (set(c, o, val, arg))
            return -1;
    }
    ld_log_level lvl;
    if (ld_log_parse_level(c->log_level, &lvl)) {
        fprintf(stderr, "listend serve: unknown log level '%s'\n", c->log_level);
        return -1;
    }
    if (c->port < 1 || c->port > 65535) {
        fprintf(stderr, "listend serve: port must be 1..65535\n");
        return -1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        fprintf(stderr, "listend serve: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (strcmp(c->redis_failure, "open") && strcmp(c->redis_failure, "closed")) {
        fprintf(stderr, "listend serve: --redis-failure must be open or closed\n");
        return -1;
    }
    if (c->metrics_port > 65535 || c->metrics_port == c->port) {
        fprintf(stderr, "listend serve: --metrics-port must be 1..65535 and differ from --port\n");
        return -1;
    }
    if (check_origins(c->cors_origin))
        return -1;
    char why[160];
    ld_proxy_list *pl = ld_proxy_parse(c->trusted_proxy, why, sizeof why);
    if (!pl) {
        fprintf(stderr, "listend serve: --trusted-proxy %s\n", why);
        return -1;
    }
    ld_proxy_free(pl);
    if (c->fetch_connect_timeout < 1 || c->fetch_timeout < 1) {
        fprintf(stderr, "listend serve: --fetch-connect-timeout and --fetch-timeout must be at least 1s\n");
        return -1;
    }
    if (c->workers > LD_POOL_MAX_WORKERS || c->http_threads > 256) { /* beyond: memory or descriptors run out */
        fprintf(stderr, "listend serve: --workers must be 0-%d and --http-threads 0-256 (0 = CPU cores)\n",
                LD_POOL_MAX_WORKERS);
        return -1;
    }
    /* 0 would serve nothing (no connection accepted, no stream), not "no limit" */
    static const struct {
        const char *name;
        size_t off;
    } at_least_one[] = {{"max-body-mb", offsetof(ld_srv_config, max_body_mb)},
                        {"max-connections", offsetof(ld_srv_config, max_connections)},
                        {"max-streams", offsetof(ld_srv_config, max_streams)},
                        {"stream-idle-timeout", offsetof(ld_srv_config, stream_idle_timeout)}};
    for (size_t i = 0; i < sizeof at_least_one / sizeof *at_least_one; i++)
        if (*(const int *)((const char *)c + at_least_one[i].off) < 1) {
            fprintf(stderr, "listend serve: --%s must be at least 1\n", at_least_one[i].name);
            return -1;
        }
    return 0;
}
