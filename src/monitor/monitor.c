/* Usage monitoring (monitor.h): quota thresholds on the charge path, the
 * per-key anomaly rule on admission, the gauges and counters, and the events
 * handed to the notifier. */
#include "monitor/monitor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/monitor_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/rand.h"
#include "util/time.h"

/* Per-key anomaly states: direct-mapped by key id. A collision restarts the
 * newcomer's warm-up (it forgets, never reports falsely: no baseline, no
 * anomaly). */
#define SLOTS 4096
#define STRIPES 16
#define KEY_SERIES 100 /* as the per-key audio series (util/metrics_events.c) */
/* A day's mark outlives the day: the name carries the day anyway. */
#define THRESHOLD_MARK_TTL_MS (2LL * 86400 * 1000)

static const int THRESHOLDS[] = {80, 95}; /* percent of the daily quota */

typedef struct {
    char key_id[32];
    ld_anomaly_state st;
    char gauge_day[11]; /* UTC day of the key's quota gauge ("" = none set) */
} slot;

struct ld_monitor {
    ld_store *store;
    ld_anomaly_rule rule;
    ld_notifier *notifier; /* NULL without --usage-webhook */
    pthread_mutex_t mu[STRIPES];
    slot *slots;
    ld_metric *ratio;     /* listend_key_quota_used_ratio{key_id} */
    ld_metric *anomalies; /* listend_key_traffic_anomalies_total{key_id} */
    ld_metric *warnings;  /* listend_key_quota_warnings_total{threshold} */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void expire_gauges(void *ud);

ld_monitor *ld_monitor_new(const ld_monitor_config *cfg, ld_store *store, ld_error *err)
{
    ld_monitor *m = calloc(1, sizeof *m);
    if (!m || !(m->slots = calloc(SLOTS, sizeof *m->slots))) {
        free(m);
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    m->store = store;
    m->rule = cfg->anomaly;
    ld_anomaly_rule_defaults(&m->rule);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&m->mu[i], NULL);
    ld_metrics *reg = ld_metrics_global();
    m->ratio = ld_metrics_register(
        reg, &(ld_metric_desc){.name = "listend_key_quota_used_ratio",
                               .help = "Audio used today over the key's daily quota (1 = used up; from this "
                                       "replica's last admission or charge of the key)",
                               .type = LD_METRIC_GAUGE,
                               .nlabels = 1,
                               .labels = {"key_id"},
                               .max_series = KEY_SERIES});
    m->anomalies = ld_metrics_register(
        reg, &(ld_metric_desc){.name = "listend_key_traffic_anomalies_total",
                               .help = "Jumps in a key's request rate reported (one per cooldown, across "
                                       "replicas; --usage-anomaly-*)",
                               .type = LD_METRIC_COUNTER,
                               .nlabels = 1,
                               .labels = {"key_id"},
                               .max_series = KEY_SERIES});
    m->warnings = ld_metrics_register(
        reg, &(ld_metric_desc){.name = "listend_key_quota_warnings_total",
                               .help = "Keys that crossed a share of their daily audio quota (reported once "
                                       "per key, threshold and UTC day across replicas)",
                               .type = LD_METRIC_COUNTER,
                               .nlabels = 1,
                               .labels = {"threshold"},
                               .max_series = 4});
    if (cfg->webhook_url && cfg->webhook_url[0] && !(m->notifier = ld_notifier_new(cfg, err))) {
        ld_monitor_free(m);
        return NULL;
    }
    ld_metrics_on_render(reg, expire_gauges, m);
    return m;
}

void ld_monitor_free(ld_monitor *m)
{
    if (!m)
        return;
    ld_metrics_remove_hook(ld_metrics_global(), expire_gauges, m);
    ld_notifier_free(m->notifier);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&m->mu[i]);
    free(m->slots);
    free(m);
}

void ld_monitor_get_stats(ld_monitor *m, ld_monitor_stats *out) { ld_notifier_stats(m ? m->notifier : NULL, out); }

static double quota_seconds(const ld_key_claims *k) { return k->hours_per_day * 3600.0; }

/* The key's slot, under its stripe lock (taken here, released by the caller);
 * a slot held by another key is taken over (its states restart). */
static slot *lock_slot(ld_monitor *m, const char *key_id)
{
    uint64_t h = hash(key_id);
    pthread_mutex_lock(&m->mu[h % STRIPES]);
    slot *s = &m->slots[h % SLOTS];
    if (strcmp(s->key_id, key_id)) {
        snprintf(s->key_id, sizeof s->key_id, "%s", key_id);
        s->st = (ld_anomaly_state){0};
        s->gauge_day[0] = '\0';
    }
    return s;
}

static void unlock_slot(ld_monitor *m, const char *key_id) { pthread_mutex_unlock(&m->mu[hash(key_id) % STRIPES]); }

static void set_ratio(ld_monitor *m, const ld_key_claims *k, double used)
{
    double limit = quota_seconds(k);
    if (!(limit > 0) || used < 0)
        return;
    slot *s = lock_slot(m, k->key_id);
    ld_time_utc_day(ld_time_now(), s->gauge_day);
    ld_metric_set(m->ratio, (const char *const[]){k->key_id}, used / limit);
    unlock_slot(m, k->key_id);
}

/* Scrape hook: a gauge set on an earlier UTC day reads 0, the key's usage
 * today until its next request says otherwise (no stale 0.97 after midnight). */
static void expire_gauges(void *ud)
{
    ld_monitor *m = ud;
    char today[11];
    ld_time_utc_day(ld_time_now(), today);
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &m->slots[i];
        pthread_mutex_lock(&m->mu[i % STRIPES]);
        if (s->gauge_day[0] && strcmp(s->gauge_day, today)) {
            ld_metric_set(m->ratio, (const char *const[]){s->key_id}, 0);
            s->gauge_day[0] = '\0';
        }
        pthread_mutex_unlock(&m->mu[i % STRIPES]);
    }
}

/* Whether this process reports `name` now: the store's mark decides across
 * replicas. When the store cannot answer, report anyway (a duplicate warning
 * beats a silent one). */
static bool first_to_report(ld_monitor *m, const char *name, int64_t ttl_ms)
{
    bool first = false;
    ld_error e = {0};
    if (ld_store_mark_once(m->store, name, ttl_ms, ld_time_now_ms(), &first, &e) != LD_OK) {
        ld_log(LD_LOG_WARNING, "usage monitor: cannot deduplicate %s through the store (%s): reporting here", name,
               e.msg);
        return true;
    }
    return first;
}

/* An event's common fields: id, type, time, key. */
static json_t *event_new(const char *type, const ld_key_claims *k)
{
    char id[40], at[25];
    ld_rand_id("evt_", id, sizeof id);
    ld_time_iso8601_ms(ld_time_now_ms(), at);
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "event_id", id, "type", type, "created_at", at, "key_id", k->key_id,
                     "name", k->name);
}

static void threshold_crossed(ld_monitor *m, const ld_key_claims *k, int percent, double used, const char *day)
{
    char name[LD_STORE_SUBJECT_MAX + 1];
    snprintf(name, sizeof name, "quota:%s:%s:%d", k->key_id, day, percent);
    if (!first_to_report(m, name, THRESHOLD_MARK_TTL_MS))
        return; /* another replica (or an earlier run today) reported it */
    double limit = quota_seconds(k);
    int64_t now = ld_time_now();
    char resets[21];
    ld_time_iso8601((now / 86400 + 1) * 86400, resets);
    char pct[8];
    snprintf(pct, sizeof pct, "%d", percent);
    ld_metric_add(m->warnings, (const char *const[]){pct}, 1);
    ld_log_fields(LD_LOG_WARNING,
                  json_pack("{s:s,s:s,s:s,s:i,s:f,s:f,s:s}", "event", "quota.threshold", "key_id", k->key_id,
                            "name", k->name, "threshold_percent", percent, "used_seconds", used, "limit_seconds",
                            limit, "day", day),
                  "Key %s (%s) has used %d%% of its daily audio quota: %.1f of %.1f s", k->key_id, k->name, percent,
                  used, limit);
    if (!m->notifier)
        return;
    json_t *ev = event_new("quota.threshold", k);
    double left = limit - used;
    json_object_set_new(ev, "threshold_percent", json_integer(percent));
    json_object_set_new(ev, "used_seconds", json_real(used));
    json_object_set_new(ev, "limit_seconds", json_real(limit));
    json_object_set_new(ev, "remaining_seconds", json_real(left > 0 ? left : 0));
    json_object_set_new(ev, "day", json_string(day));
    json_object_set_new(ev, "resets_at", json_string(resets));
    ld_notifier_push(m->notifier, ev);
}

void ld_monitor_charged(void *ud, const ld_key_claims *k, double seconds, double total)
{
    ld_monitor *m = ud;
    if (!m || !k)
        return;
    set_ratio(m, k, total);
    double limit = quota_seconds(k), before = total - seconds;
    if (!(limit > 0))
        return;
    char day[11];
    ld_time_utc_day(ld_time_now(), day);
    /* The store's total is shared and atomic, so exactly one charge crosses
     * each line; the mark covers the rest (fallback counters, restarts). */
    for (size_t i = 0; i < sizeof THRESHOLDS / sizeof *THRESHOLDS; i++) {
        double line = limit * THRESHOLDS[i] / 100.0;
        if (before < line && total >= line)
            threshold_crossed(m, k, THRESHOLDS[i], total, day);
    }
}

static void anomaly(ld_monitor *m, const ld_key_claims *k, const ld_anomaly_figures *f)
{
    char name[LD_STORE_SUBJECT_MAX + 1];
    snprintf(name, sizeof name, "anomaly:%s", k->key_id);
    if (!first_to_report(m, name, m->rule.cooldown_ms))
        return;
    double window_s = m->rule.window_ms / 1000.0;
    ld_metric_add(m->anomalies, (const char *const[]){k->key_id}, 1);
    ld_log_fields(LD_LOG_WARNING,
                  json_pack("{s:s,s:s,s:s,s:i,s:f,s:f,s:f}", "event", "traffic.anomaly", "key_id", k->key_id,
                            "name", k->name, "requests", f->count, "window_seconds", window_s, "baseline",
                            f->baseline, "threshold", f->threshold),
                  "Key %s (%s): %d requests in %g s, above its usual %.1f (threshold %.1f): unusual traffic",
                  k->key_id, k->name, f->count, window_s, f->baseline, f->threshold);
    if (!m->notifier)
        return;
    json_t *ev = event_new("traffic.anomaly", k);
    json_object_set_new(ev, "requests", json_integer(f->count));
    json_object_set_new(ev, "window_seconds", json_real(window_s));
    json_object_set_new(ev, "baseline", json_real(f->baseline));
    json_object_set_new(ev, "threshold", json_real(f->threshold));
    json_object_set_new(ev, "factor", json_real(m->rule.factor));
    json_object_set_new(ev, "floor", json_integer(m->rule.floor));
    json_object_set_new(ev, "cooldown_seconds", json_real(m->rule.cooldown_ms / 1000.0));
    ld_notifier_push(m->notifier, ev);
}

void ld_monitor_request(ld_monitor *m, const ld_key_claims *k, double used_today)
{
    if (!m || !k || !k->key_id[0])
        return;
    if (used_today >= 0)
        set_ratio(m, k, used_today);
    ld_anomaly_figures f;
    slot *s = lock_slot(m, k->key_id);
    bool hit = ld_anomaly_hit(&m->rule, &s->st, ld_time_now_ms(), &f);
    unlock_slot(m, k->key_id);
    if (hit)
        anomaly(m, k, &f);
}
