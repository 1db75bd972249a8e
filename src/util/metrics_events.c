/* Events that several modules count (auth, limits, webhooks, Redis, audio),
 * as families of the global registry. Label values are checked against the
 * documented sets so a caller's typo cannot add series. */
#include <pthread.h>
#include <string.h>

#include "util/metrics.h"

#define KEY_SERIES 100 /* per-key series before the rest count as key_id="other" */

static struct {
    ld_metric *auth_failures, *rate_limited, *webhooks, *redis_errors, *usage_writes, *audio, *key_audio, *rtf;
} ev;

static const char *const auth_reasons[] = {"missing",   "invalid",       "expired", "revoked",
                                           "throttled", "metrics_token", NULL};
static const char *const limit_kinds[] = {"rpm", "concurrency", "quota", NULL};
static const char *const webhook_results[] = {"delivered", "retry", "failed", NULL};
static const char *const audio_modes[] = {"batch", "stream", "job", NULL};

static ld_metric *reg(const char *name, const char *help, ld_metric_type t, const char *label, int max)
{
    ld_metric_desc d = {
        .name = name, .help = help, .type = t, .nlabels = label ? 1 : 0, .labels = {label}, .max_series = max};
    if (t == LD_METRIC_HISTOGRAM) {
        static const double rtf[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5};
        d.nbuckets = (int)(sizeof rtf / sizeof *rtf);
        memcpy(d.buckets, rtf, sizeof rtf);
    }
    return ld_metrics_register(ld_metrics_global(), &d);
}

static void zero(ld_metric *m, const char *const *set)
{
    for (; *set; set++)
        ld_metric_add(m, (const char *const[]){*set}, 0);
}

static void init(void)
{
    ev.auth_failures = reg("listend_auth_failures_total",
                           "Requests and streams refused before admission, by reason "
                           "(missing, invalid, expired, revoked key; throttled client address)",
                           LD_METRIC_COUNTER, "reason", 8);
    zero(ev.auth_failures, auth_reasons);
    ev.rate_limited = reg("listend_rate_limited_total",
                          "Admissions refused by a key's limits: requests per minute (429), concurrency (429), "
                          "daily audio quota (403)",
                          LD_METRIC_COUNTER, "kind", 4);
    zero(ev.rate_limited, limit_kinds);
    ev.webhooks = reg("listend_webhook_deliveries_total",
                      "Webhook delivery attempts by outcome: delivered, retry (will try again), failed (gave up)",
                      LD_METRIC_COUNTER, "result", 4);
    zero(ev.webhooks, webhook_results);
    ev.redis_errors = reg("listend_redis_errors_total",
                          "Redis operations that failed: connect, timeout, unavailable reply, or a failed probe "
                          "while down",
                          LD_METRIC_COUNTER, NULL, 0);
    ev.usage_writes = reg("listend_usage_write_failures_total",
                          "Usage additions the database refused (disk full, read-only): kept in memory and "
                          "written with the key's next addition; /health says degraded meanwhile",
                          LD_METRIC_COUNTER, NULL, 0);
    ld_metric_add(ev.usage_writes, NULL, 0);
    ev.audio = reg("listend_audio_seconds_total", "Seconds of audio transcribed, by mode (batch, stream, job)",
                   LD_METRIC_COUNTER, "mode", 4);
    zero(ev.audio, audio_modes);
    ev.key_audio = reg("listend_key_audio_seconds_total",
                       "Seconds of audio transcribed per license key id (the first 100 ids seen, the rest under "
                       "key_id=\"other\")",
                       LD_METRIC_COUNTER, "key_id", KEY_SERIES);
    ev.rtf = reg(
        "listend_asr_real_time_factor",
        "Decoding time (queue wait included) over audio duration, per finished transcription, by mode (batch, job)",
        LD_METRIC_HISTOGRAM, "mode", 4);
    ld_metric_series(ev.rtf, (const char *const[]){"batch"});
    ld_metric_series(ev.rtf, (const char *const[]){"job"});
}

void ld_metrics_events_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init);
}

static const char *known(const char *v, const char *const *set)
{
    for (; v && *set; set++)
        if (!strcmp(v, *set))
            return v;
    return "other";
}

void ld_metrics_auth_failure(const char *reason)
{
    ld_metrics_events_init();
    ld_metric_add(ev.auth_failures, (const char *const[]){known(reason, auth_reasons)}, 1);
}

void ld_metrics_rate_limited(const char *kind)
{
    ld_metrics_events_init();
    ld_metric_add(ev.rate_limited, (const char *const[]){known(kind, limit_kinds)}, 1);
}

void ld_metrics_webhook(const char *result)
{
    ld_metrics_events_init();
    ld_metric_add(ev.webhooks, (const char *const[]){known(result, webhook_results)}, 1);
}

void ld_metrics_redis_error(void)
{
    ld_metrics_events_init();
    ld_metric_add(ev.redis_errors, NULL, 1);
}

void ld_metrics_usage_write_failed(void)
{
    ld_metrics_events_init();
    ld_metric_add(ev.usage_writes, NULL, 1);
}

void ld_metrics_audio(const char *mode, const char *key_id, double seconds)
{
    if (!(seconds > 0))
        return;
    ld_metrics_events_init();
    ld_metric_add(ev.audio, (const char *const[]){known(mode, audio_modes)}, seconds);
    if (key_id && *key_id)
        ld_metric_add(ev.key_audio, (const char *const[]){key_id}, seconds);
}

void ld_metrics_rtf(const char *mode, double processing_seconds, double audio_seconds)
{
    if (!(audio_seconds > 0) || !(processing_seconds >= 0))
        return;
    ld_metrics_events_init();
    ld_metric_observe(ev.rtf, (const char *const[]){known(mode, audio_modes)}, processing_seconds / audio_seconds);
}
