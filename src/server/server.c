/* `listend serve`: start-up, the signal loop and the graceful shutdown. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"

#include "server/gone.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/srv.h"
#include "server/sse.h"
#include "server/webhooks.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/time.h"

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Uploads left behind by a crash: ours are up_*, url_*, wav_* in <data>/tmp. */
static void clean_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "up_", 3) && strncmp(de->d_name, "url_", 4) && strncmp(de->d_name, "wav_", 4))
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        n += unlink(p) == 0;
    }
    closedir(d);
    if (n)
        ld_log(LD_LOG_INFO, "Removed %d stale upload file(s) from %s", n, dir);
}

static int fail_start(const char *what, const ld_error *e)
{
    ld_log_fields(LD_LOG_CRITICAL, json_pack("{s:s}", "component", what), "Cannot start: %s", e->msg);
    return 1;
}

/* Waits for a signal up to `seconds`; returns the signal or 0. */
static int wait_signal(const sigset_t *set, double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static void drain(ld_srv *s, const sigset_t *set)
{
    atomic_store(&s->draining, true);
    MHD_socket ls = MHD_quiesce_daemon(s->daemon); /* stop accepting; keep-alive peers get Connection: close */
    double deadline = ld_time_mono() + (double)s->cfg.drain_timeout;
    int inflight = atomic_load(&s->active) - atomic_load(&s->ws_active);
    ld_log_fields(
        LD_LOG_INFO,
        json_pack("{s:i,s:I}", "in_flight", inflight, "drain_timeout_s", (json_int_t)s->cfg.drain_timeout),
        "Shutting down: finishing %d in-flight request(s)", inflight);
    while (atomic_load(&s->active) - atomic_load(&s->ws_active) > 0 && ld_time_mono() < deadline) {
        if (wait_signal(set, 0.05)) {
            ld_log(LD_LOG_WARNING, "Second signal: not waiting for in-flight requests");
            break;
        }
    }
    atomic_store(&s->stopping, true);
    if (atomic_load(&s->active) - atomic_load(&s->ws_active) > 0) {
        ld_log(LD_LOG_WARNING, "Drain timeout: answering %d unfinished request(s) with 503",
               atomic_load(&s->active) - atomic_load(&s->ws_active));
        ld_req_abort_suspended(s);
        ld_sse_end_all(
            "data: {\"error\":{\"message\":\"Server is shutting down; retry on another replica\","
            "\"type\":\"server_error\",\"code\":\"service_unavailable\",\"param\":null}}\n\n");
        /* Give resumed connections a moment to send their answer (uploads
         * still arriving are cut off by MHD_stop_daemon). */
        for (int i = 0; i < 40 && atomic_load(&s->active) - atomic_load(&s->ws_active) > 0; i++)
            wait_signal(set, 0.05);
        ld_req_abort_suspended(s); /* one suspended just before `stopping` was seen */
    }
    ld_ws_stop(s->ws); /* closes live streams (1001) */
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    ld_ws_free(s->ws); /* after MHD: a late upgrade callback still uses it */
    s->ws = NULL;
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
}

static void teardown(ld_srv *s)
{
    ld_srv_metrics_stop(s); /* its scrape hook reads the pool and jobs freed below */
    ld_gone_stop();         /* it walks the suspended requests and cancels in the pool */
    ld_ws_stop(s->ws);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    ld_ws_free(s->ws);
    if (s->fetch)
        ld_work_free(s->fetch, ld_pipeline_cancel); /* fetches end within the fetch limits */
    if (s->work)
        ld_work_free(s->work, ld_pipeline_cancel); /* before the pool: its threads submit to it */
    ld_keycap_free(s->fetch_cap);
    ld_proxy_free(s->proxies);
    free(s->tls_cert_pem); /* after MHD_stop_daemon above: the daemon served from them */
    free(s->tls_key_pem);
    if (s->jobs)
        ld_jobs_free(s->jobs);
    if (s->pool)
        ld_pool_free(s->pool);
    if (s->auth)
        ld_auth_set_usage_hook(s->auth, NULL, NULL); /* nothing charges any more */
    ld_monitor_free(s->monitor);
    if (s->auth)
        ld_auth_free(s->auth);
    if (s->store)
        ld_store_close(s->store); /* persists usage */
    pthread_mutex_destroy(&s->mu);
}

/* The PEM pair as the daemon will load it: a certificate and a key that parse and
 * belong together, with gnutls's own words when not. */
static int check_tls_pair(const char *cert, const char *key, ld_error *e)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return ld_error_set(e, LD_ERR_INTERNAL, "out of memory"), -1;
    gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)};
    gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (rc < 0)
        ld_error_set(e, LD_ERR_INTERNAL, "TLS certificate and key (--tls-cert, --tls-key) cannot be used: %s",
                     gnutls_strerror(rc));
    return rc < 0 ? -1 : 0;
}

/* One server per data dir (docs/keys.md): a second one would delete the first's
 * uploads in <data>/tmp as stale and share its SQLite files. flock: released by
 * the kernel when the process ends, however it ends; the descriptor stays open. */
static int lock_data_dir(const char *dir, ld_error *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/serve.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        ld_error_set(e, LD_ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? strcspn(pid, "\n") : 0] = 0;
        ld_error_set(e, LD_ERR_INTERNAL,
                     "data dir %s is in use by another listend serve%s%s%s: one server per data dir (give each "
                     "replica its own --data)",
                     dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
        close(fd);
        return -1;
    }
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)len, 0) != len)
        ld_log(LD_LOG_WARNING, "cannot write the pid into %s: %s", path, strerror(errno));
    return 0;
}

static int start(ld_srv *s)
{
    ld_srv_config *c = &s->cfg;
    ld_error e = {0};
    s->max_body = (uint64_t)c->max_body_mb * 1024 * 1024;
    if (ld_fs_mkdirs(c->data, 0700)) {
        ld_error_set(&e, LD_ERR_INTERNAL, "cannot create data dir %s: %s", c->data, strerror(errno));
        return fail_start("data", &e);
    }
    if (lock_data_dir(c->data, &e))
        return fail_start("data", &e);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", c->data);
    if (ld_fs_mkdirs(s->tmp_dir, 0700)) {
        ld_error_set(&e, LD_ERR_INTERNAL, "cannot create %s: %s", s->tmp_dir, strerror(errno));
        return fail_start("data", &e);
    }
    clean_tmp(s->tmp_dir);
    /* Operator mistakes that need no decoder are reported before the decoders
     * load (seconds of CPU per language), so a bad flag fails at once. The TLS
     * files are read here, once; the daemon (http.c) serves from memory. */
    if (c->tls_cert[0]) {
        s->tls_cert_pem = ld_fs_read(c->tls_cert, 1 << 20, NULL);
        s->tls_key_pem = ld_fs_read(c->tls_key, 1 << 20, NULL);
        if (!s->tls_cert_pem || !s->tls_key_pem) {
            ld_error_set(&e, LD_ERR_INTERNAL, "cannot read TLS %s '%s'", s->tls_cert_pem ? "key" : "certificate",
                         s->tls_cert_pem ? c->tls_key : c->tls_cert);
            return fail_start("api_server", &e);
        }
        if (check_tls_pair(s->tls_cert_pem, s->tls_key_pem, &e)) /* else MHD fails after the decoders load */
            return fail_start("api_server", &e);
    }
    char why[160];
    if (!(s->proxies = ld_proxy_parse(c->trusted_proxy, why, sizeof why))) {
        ld_error_set(&e, LD_ERR_INTERNAL, "--trusted-proxy %s", why);
        return fail_start("server", &e);
    }

    if (!(s->store = ld_store_open_configured(c->data, c->redis_url[0] ? c->redis_url : NULL,
                                              !strcmp(c->redis_failure, "open"), &e)))
        return fail_start("store", &e);
    if (!(s->auth = ld_auth_open(c->data, s->store, &e)))
        return fail_start("license", &e);
    int workers = c->workers ? c->workers : cores();
    ld_pool_config pc = {.workers = workers,
                         .max_queue = c->queue,
                         .models_dir = c->models[0] ? c->models : NULL,
                         .vocabulary = c->vocabulary[0] ? c->vocabulary : NULL};
    if (!(s->pool = ld_pool_new(&pc, &e)))
        return fail_start("asr", &e);
    ld_ws_config wc = {.pool = s->pool,
                       .auth = s->auth,
                       .max_streams = c->max_streams,
                       .idle_timeout_s = c->stream_idle_timeout,
                       .realtime_idle_s = c->realtime_idle_timeout > INT_MAX ? INT_MAX
                                                                             : (int)c->realtime_idle_timeout};
    if (!(s->ws = ld_ws_new(&wc, &e)))
        return fail_start("streams", &e);
    if (ld_pool_stream_prewarm(s->pool, c->stream_prewarm, (double)c->stream_decoder_idle, &e) != LD_OK)
        return fail_start("streams", &e);
    s->fetch_opts = (ld_fetch_opts){.allow_private = c->allow_private_urls,
                                    .max_bytes = (size_t)s->max_body,
                                    .connect_timeout_ms = (long)c->fetch_connect_timeout * 1000,
                                    .total_timeout_ms = (long)c->fetch_timeout * 1000,
                                    .low_speed_bytes = c->fetch_min_speed > 0 ? c->fetch_min_speed : -1,
                                    .low_speed_time_s = c->fetch_min_speed_time > 0 ? (long)c->fetch_min_speed_time
                                                                                    : -1};
    ld_jobs_config jc = {.data_dir = c->data,
                         .pool = s->pool,
                         .auth = s->auth,
                         .fetch = s->fetch_opts,
                         .max_audio_seconds = c->max_audio_seconds,
                         .retention_s = c->job_retention,
                         .webhook_max_age_s = c->webhook_max_age,
                         .max_running = c->job_concurrency,
                         .max_pending = c->job_queue,
                         .webhook_backoff_ms = c->webhook_backoff_ms,
                         .webhook_timeout_ms = c->webhook_timeout_ms,
                         .webhook_workers = c->webhook_workers,
                         .max_pending_per_key = c->job_queue_per_key,
                         .max_audio_per_key = (int64_t)c->job_audio_per_key_mb * 1024 * 1024,
                         .store = s->store,
                         .shape = ld_webhooks_shape};
    if (!(s->jobs = ld_jobs_new(&jc, &e)))
        return fail_start("jobs", &e);
    /* After jobs: the usage webhook signs with the webhook.secret jobs created. */
    ld_monitor_config mc = {.webhook_url = c->usage_webhook,
                            .data_dir = c->data,
                            .allow_private = c->allow_private_urls,
                            .webhook_timeout_ms = c->webhook_timeout_ms,
                            .webhook_backoff_ms = c->webhook_backoff_ms,
                            .webhook_max_age_s = c->webhook_max_age,
                            .anomaly = {.window_ms = c->usage_anomaly_window * 1000,
                                        .history = c->usage_anomaly_history,
                                        .factor = c->usage_anomaly_factor,
                                        .floor = c->usage_anomaly_floor,
                                        .cooldown_ms = c->usage_anomaly_cooldown * 1000}};
    if (!(s->monitor = ld_monitor_new(&mc, s->store, &e)))
        return fail_start("usage_monitor", &e);
    ld_auth_set_usage_hook(s->auth, ld_monitor_charged, s->monitor);
    /* Fetches wait on the network, so more threads than cores; the queue
     * behind them is as deep as the decoder pool's. */
    int threads = 2 * cores() < 4 ? 4 : 2 * cores();
    int queue = c->queue ? c->queue : 4 * workers;
    if (!(s->work = ld_work_new(threads, threads + queue))) {
        ld_error_set(&e, LD_ERR_INTERNAL, "cannot start work threads");
        return fail_start("server", &e);
    }
    /* URL requests wait on other people's servers: their own threads (cheap,
     * mostly asleep), at most half of them per key, so a URL that never
     * answers costs its key fetch threads and nobody else anything. */
    int fetchers = c->fetch_threads ? c->fetch_threads : (4 * cores() < 16 ? 16 : 4 * cores());
    int per_key = c->fetch_per_key ? c->fetch_per_key : (fetchers / 2 < 1 ? 1 : fetchers / 2);
    if (!(s->fetch = ld_work_new(fetchers, fetchers + queue)) || !(s->fetch_cap = ld_keycap_new(per_key))) {
        ld_error_set(&e, LD_ERR_INTERNAL, "cannot start fetch threads");
        return fail_start("server", &e);
    }
    if (ld_gone_start(s)) {
        ld_error_set(&e, LD_ERR_INTERNAL, "cannot start the hung-up client watcher");
        return fail_start("server", &e);
    }
    s->started_mono = ld_time_mono();
    if (ld_srv_metrics_start(s, &e))
        return fail_start("metrics", &e);
    if (!(s->daemon = ld_http_start(s, &e)))
        return fail_start("api_server", &e);

    json_t *langs = ld_pool_languages(s->pool);
    char *lang_s = json_dumps(langs, JSON_COMPACT);
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s,s:s,s:i,s:b,s:i,s:i,s:s,s:o,s:i,s:i,s:s}", "version", LD_VERSION, "host", c->host,
                            "port", c->port, "tls", c->tls_cert[0] != '\0', "workers", ld_pool_workers(s->pool),
                            "http_threads", c->http_threads ? c->http_threads : cores(), "data_dir", c->data,
                            "languages", langs, "max_body_mb", c->max_body_mb, "issuer_keys",
                            ld_auth_issuer_count(s->auth), "store", ld_store_backend(s->store)),
                  "API server listening on port %d (%s, %d ASR workers, languages %s)", c->port,
                  c->tls_cert[0] ? "HTTPS" : "HTTP", ld_pool_workers(s->pool), lang_s ? lang_s : "[]");
    free(lang_s);
    return 0;
}

/* While start() loads decoders (seconds per language and worker) a signal must not
 * wait for it: nothing is served yet, so the process just exits. A signal that
 * arrives once start() is over is handed back to the main thread. */
static struct {
    atomic_bool done;
    sigset_t set;
} starting;

static void *watch_start(void *unused)
{
    (void)unused;
    for (;;) {
        int sig = wait_signal(&starting.set, 0.1);
        if (atomic_load(&starting.done)) {
            if (sig)
                kill(getpid(), sig);
            return NULL;
        }
        if (sig) {
            ld_log(LD_LOG_INFO, "Received SIG%s while starting: exiting (nothing was served)", sigabbrev_np(sig));
            _exit(0);
        }
    }
}

int ld_server_main(int argc, char **argv)
{
    static ld_srv srv; /* one per process; static so no thread outlives it */
    ld_srv *s = &srv;
    int pc = ld_srv_config_parse(&s->cfg, argc, argv);
    if (pc)
        return pc > 0 ? 0 : 2;
    ld_log_level lvl;
    ld_log_parse_level(s->cfg.log_level, &lvl);
    ld_log_set_level(lvl);

    /* Signals are taken synchronously by this thread; every thread started
     * from here on inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct sigaction hup;
    if (!sigaction(SIGHUP, NULL, &hup) && hup.sa_handler != SIG_IGN) /* nohup's "ignore" stays in force */
        sigaddset(&set, SIGHUP); /* a closed terminal: drain like SIGTERM rather than die mid-request */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s->mu, NULL);

    ld_log_fields(LD_LOG_INFO, json_pack("{s:s,s:i}", "version", LD_VERSION, "pid", (int)getpid()),
                  "Starting API Server v%s", LD_VERSION);
    starting.set = set;
    pthread_t watcher;
    bool watching = !pthread_create(&watcher, NULL, watch_start, NULL);
    int failed = start(s);
    atomic_store(&starting.done, true);
    if (watching)
        pthread_join(watcher, NULL);
    if (failed) {
        teardown(s);
        return 1;
    }
    int sig;
    while (!(sig = wait_signal(&set, 3600)))
        ;
    ld_log(LD_LOG_INFO, "Received SIG%s", sigabbrev_np(sig));
    drain(s, &set);
    teardown(s);
    ld_log(LD_LOG_INFO, "Shutdown complete");
    return 0;
}
