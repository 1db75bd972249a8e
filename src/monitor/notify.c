/* Usage events to --usage-webhook: a bounded in-memory queue and one thread
 * that POSTs each event signed like a job webhook (X-Listend-Signature, the
 * data dir's webhook.secret), retried with the job webhooks' backoff on no
 * answer, 408, 429 and 5xx until --webhook-max-age, through the same
 * connect-time address guard as callback URLs. Events live in memory only: a
 * restart drops what was not delivered (the log lines remain). */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "jobs/webhook.h"
#include "monitor/monitor_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/rand.h"
#include "util/time.h"

#define QUEUE_MAX 1000
#define BACKOFF_CAP_MS (10 * 60 * 1000)

typedef struct ev {
    struct ev *next;
    char *body;
    char type[32];
    char id[40];
    int64_t first_ms, next_ms; /* monotonic ms */
    int failures;
} ev;

struct ld_notifier {
    char url[2048];
    char secret[65];     /* as read at start; used if the file cannot be read later */
    char data_dir[1024]; /* <data_dir>/webhook.secret is read again before each POST */
    bool allow_private;
    long timeout_ms;
    int64_t backoff_ms, max_age_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ev *head;
    int n;
    atomic_bool stopping;
    atomic_long queued, delivered, dropped;
    ld_metric *attempts; /* listend_usage_webhook_attempts_total{result} */
};

static int64_t mono_ms(void) { return (int64_t)(ld_time_mono() * 1000); }

static bool stopping(void *ud) { return atomic_load(&((ld_notifier *)ud)->stopping); }

/* One POST: the HTTP status, 0 with `error` set when there was no answer, or
 * -1 when the address policy refuses the receiver (checked again per attempt:
 * the name may have moved to a forbidden address). */
static long post(ld_notifier *n, const ev *e, char *error, size_t errsz)
{
    ld_error why = {0};
    if (ld_audio_check_url(n->url, n->allow_private, &why) != LD_OK) {
        snprintf(error, errsz, "%s", why.msg);
        return -1;
    }
    char htype[80], hid[80];
    snprintf(htype, sizeof htype, "X-Listend-Event: %s", e->type);
    snprintf(hid, sizeof hid, "X-Listend-Event-ID: %s", e->id);
    char secret[sizeof n->secret];
    /* Read again: with Redis the cluster's secret may have changed. */
    if (ld_jobs_secret_read(n->data_dir, secret, sizeof secret))
        snprintf(secret, sizeof secret, "%s", n->secret);
    ld_jobs_post p = {.url = n->url,
                      .body = e->body,
                      .secret = secret,
                      .extra_headers = (const char *const[]){htype, hid, NULL},
                      .allow_private = n->allow_private,
                      .timeout_ms = n->timeout_ms,
                      .stop = stopping,
                      .stop_ud = n};
    long status = ld_jobs_post_signed(&p, error, errsz);
    sodium_memzero(secret, sizeof secret);
    return p.refused ? -1 : status;
}

static void ev_free(ev *e)
{
    if (e) {
        free(e->body);
        free(e);
    }
}

/* e->failures counts the earlier retried attempts: + 1 is the one that gives up. */
static void give_up(ld_notifier *n, ev *e, const char *why)
{
    atomic_fetch_add(&n->dropped, 1);
    ld_log_fields(LD_LOG_WARNING,
                  json_pack("{s:s,s:s,s:i}", "event_id", e->id, "event_type", e->type, "attempts", e->failures + 1),
                  "Usage webhook: gave up on event %s (%s): %s", e->id, e->type, why);
    ev_free(e);
}

/* One attempt; true when the event must be queued again (e->next_ms set). */
static bool attempt(ld_notifier *n, ev *e)
{
    char error[512] = "";
    long status = post(n, e, error, sizeof error);
    if (status < 0) { /* refused by the address policy */
        ld_metric_add(n->attempts, (const char *const[]){"failed"}, 1);
        give_up(n, e, error);
        return false;
    }
    ld_webhook_outcome out = ld_jobs_classify(status);
    if (out == LD_WEBHOOK_DELIVERED) {
        ld_metric_add(n->attempts, (const char *const[]){"delivered"}, 1);
        atomic_fetch_add(&n->delivered, 1);
        ld_log_fields(LD_LOG_DEBUG,
                      json_pack("{s:s,s:s,s:i}", "event_id", e->id, "event_type", e->type, "status", (int)status),
                      "Usage webhook: delivered %s", e->id);
        ev_free(e);
        return false;
    }
    char why[600];
    if (status)
        snprintf(why, sizeof why, "HTTP %ld", status);
    else
        snprintf(why, sizeof why, "%s", error);
    if (out == LD_WEBHOOK_FINAL) {
        ld_metric_add(n->attempts, (const char *const[]){"failed"}, 1);
        give_up(n, e, why);
        return false;
    }
    int64_t now = mono_ms();
    double jitter = (double)(randombytes_uniform(1u << 20)) / (1u << 20);
    int64_t delay = ld_jobs_backoff_ms(e->failures + 1, n->backoff_ms, BACKOFF_CAP_MS, jitter);
    if (now + delay - e->first_ms > n->max_age_ms) {
        /* No retry would come in time: this attempt is the one given up,
         * counted `failed` as job webhooks do (the documented alert's signal). */
        ld_metric_add(n->attempts, (const char *const[]){"failed"}, 1);
        give_up(n, e, why);
        return false;
    }
    ld_metric_add(n->attempts, (const char *const[]){"retry"}, 1);
    e->failures++;
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s,s:s,s:i}", "event_id", e->id, "event_type", e->type, "attempt", e->failures),
                  "Usage webhook: %s, retrying in %lld ms", why, (long long)delay);
    e->next_ms = now + delay;
    return true;
}

static void *run(void *arg)
{
    ld_notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!atomic_load(&n->stopping)) {
        ev **pick = NULL;
        for (ev **p = &n->head; *p; p = &(*p)->next)
            if (!pick || (*p)->next_ms < (*pick)->next_ms)
                pick = p;
        if (!pick) {
            pthread_cond_wait(&n->cv, &n->mu);
            continue;
        }
        int64_t wait = (*pick)->next_ms - mono_ms();
        if (wait > 0) {
            struct timespec ts = ld_time_deadline(wait);
            pthread_cond_timedwait(&n->cv, &n->mu, &ts);
            continue;
        }
        ev *e = *pick;
        *pick = e->next;
        e->next = NULL;
        n->n--;
        pthread_mutex_unlock(&n->mu);
        bool again = attempt(n, e);
        pthread_mutex_lock(&n->mu);
        if (again) {
            e->next = n->head;
            n->head = e;
            n->n++;
        }
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

ld_notifier *ld_notifier_new(const ld_monitor_config *cfg, ld_error *err)
{
    ld_notifier *n = calloc(1, sizeof *n);
    if (!n) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (strlen(cfg->webhook_url) >= sizeof n->url) {
        free(n);
        ld_error_set(err, LD_ERR_INVALID_PARAMETER, "--usage-webhook: URL too long");
        return NULL;
    }
    snprintf(n->url, sizeof n->url, "%s", cfg->webhook_url);
    ld_error why = {0};
    if (ld_audio_check_url(n->url, cfg->allow_private, &why) != LD_OK) {
        ld_error_set(err, LD_ERR_INVALID_PARAMETER, "--usage-webhook %s: %s", n->url, why.msg);
        free(n);
        return NULL;
    }
    snprintf(n->data_dir, sizeof n->data_dir, "%s", cfg->data_dir ? cfg->data_dir : ".");
    if (ld_jobs_secret_read(n->data_dir, n->secret, sizeof n->secret)) {
        ld_error_set(err, LD_ERR_INTERNAL, "--usage-webhook: cannot read %s/webhook.secret", cfg->data_dir);
        free(n);
        return NULL;
    }
    n->allow_private = cfg->allow_private;
    n->timeout_ms = cfg->webhook_timeout_ms > 0 ? cfg->webhook_timeout_ms : 15000;
    n->backoff_ms = cfg->webhook_backoff_ms > 0 ? cfg->webhook_backoff_ms : 1000;
    n->max_age_ms = (cfg->webhook_max_age_s > 0 ? cfg->webhook_max_age_s : 86400) * 1000;
    n->attempts = ld_metrics_register(
        ld_metrics_global(),
        &(ld_metric_desc){.name = "listend_usage_webhook_attempts_total",
                          .help = "Delivery attempts of usage events to --usage-webhook, by result "
                                  "(delivered, retry, failed = given up)",
                          .type = LD_METRIC_COUNTER,
                          .nlabels = 1,
                          .labels = {"result"},
                          .max_series = 4});
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->thread, NULL, run, n)) {
        ld_error_set(err, LD_ERR_INTERNAL, "cannot start the usage webhook thread");
        ld_notifier_free(n);
        return NULL;
    }
    n->started = true;
    return n;
}

void ld_notifier_free(ld_notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    atomic_store(&n->stopping, true);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->thread, NULL);
    int left = 0;
    for (ev *e = n->head, *nx; e; e = nx) {
        nx = e->next;
        ev_free(e);
        left++;
    }
    if (left)
        ld_log(LD_LOG_WARNING, "Usage webhook: %d undelivered event(s) dropped at shutdown", left);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    sodium_memzero(n->secret, sizeof n->secret);
    free(n);
}

void ld_notifier_push(ld_notifier *n, json_t *event)
{
    if (!n || !event) {
        json_decref(event);
        return;
    }
    ev *e = calloc(1, sizeof *e);
    const char *id = json_string_value(json_object_get(event, "event_id"));
    const char *type = json_string_value(json_object_get(event, "type"));
    if (e) {
        snprintf(e->id, sizeof e->id, "%s", id ? id : "");
        snprintf(e->type, sizeof e->type, "%s", type ? type : "");
        e->body = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    }
    json_decref(event);
    if (!e || !e->body) {
        ev_free(e);
        atomic_fetch_add(&n->dropped, 1);
        return;
    }
    e->first_ms = e->next_ms = mono_ms();
    pthread_mutex_lock(&n->mu);
    bool full = n->n >= QUEUE_MAX;
    if (!full) {
        e->next = n->head;
        n->head = e;
        n->n++;
        pthread_cond_signal(&n->cv);
    }
    pthread_mutex_unlock(&n->mu);
    if (full) {
        atomic_fetch_add(&n->dropped, 1);
        ld_log(LD_LOG_WARNING, "Usage webhook: %d events waiting, dropped %s (%s)", QUEUE_MAX, e->id, e->type);
        ev_free(e);
        return;
    }
    atomic_fetch_add(&n->queued, 1);
}

void ld_notifier_stats(ld_notifier *n, ld_monitor_stats *out)
{
    out->queued = n ? atomic_load(&n->queued) : 0;
    out->delivered = n ? atomic_load(&n->delivered) : 0;
    out->dropped = n ? atomic_load(&n->dropped) : 0;
}
