/* Usage monitoring (docs/operations.md, "Usage monitoring"): what tells an
 * operator that a key is about to run out of its daily audio quota, or that
 * a key's traffic suddenly jumped (a leaked key?).
 *
 * - Quota thresholds: when a charge takes a key's usage today across 80 % or
 *   95 % of its quota, one WARNING log line (key id, name, used, limit) and
 *   one `quota.threshold` event, once per key, threshold and UTC day across
 *   every replica sharing the store (ld_store_mark_once decides who reports).
 * - listend_key_quota_used_ratio{key_id}: today's usage over the quota, set at
 *   every admission and charge.
 * - Traffic anomalies (monitor/anomaly.h): each replica counts the requests
 *   it admits per key; a jump gives one WARNING line, one count in
 *   listend_key_traffic_anomalies_total{key_id} and one `traffic.anomaly`
 *   event per cooldown across replicas (again a store mark).
 * - Events go to --usage-webhook, signed like job webhooks (jobs/webhook.h),
 *   from a background thread with the same retry schedule: never on a
 *   request's path. The URL is checked like callback URLs (SSRF guard).
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: ld_monitor_new returns an owned object (ld_monitor_free); the
 * store is borrowed and must outlive it. */
#ifndef LD_MONITOR_MONITOR_H
#define LD_MONITOR_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "monitor/anomaly.h"
#include "store/store.h"
#include "util/err.h"

typedef struct {
    const char *webhook_url;   /* NULL or "" = no events, only logs and metrics */
    const char *data_dir;      /* <data>/webhook.secret signs the events (created by jobs) */
    bool allow_private;        /* --allow-private-urls: the webhook may be on loopback/private */
    int webhook_timeout_ms;    /* one attempt (0 = 15000) */
    int webhook_backoff_ms;    /* first retry delay (0 = 1000), doubling, capped at 10 min */
    int64_t webhook_max_age_s; /* give up on an event after this (0 = 24 h) */
    ld_anomaly_rule anomaly;   /* zero fields get ld_anomaly_rule_defaults */
} ld_monitor_config;

typedef struct ld_monitor ld_monitor;

/* Fails (NULL, err) when the webhook URL is malformed or points where callback
 * URLs may not, or the secret cannot be read. */
ld_monitor *ld_monitor_new(const ld_monitor_config *cfg, ld_store *store, ld_error *err);
/* Stops the delivery thread; events not yet delivered are logged and dropped. */
void ld_monitor_free(ld_monitor *m);

/* One admitted (or refused) authenticated request of key k: counts it for the
 * anomaly rule; used_today >= 0 (audio seconds, as admission read it)
 * refreshes the key's quota gauge. */
void ld_monitor_request(ld_monitor *m, const ld_key_claims *k, double used_today);
/* A charge of `seconds` that brought today's usage to `total` (an
 * ld_auth_usage_hook: ud is the monitor). */
void ld_monitor_charged(void *m, const ld_key_claims *k, double seconds, double total);

/* Events queued, delivered, and given up on since start (tests, /metrics). */
typedef struct {
    long queued, delivered, dropped;
} ld_monitor_stats;
void ld_monitor_get_stats(ld_monitor *m, ld_monitor_stats *out);

#endif
