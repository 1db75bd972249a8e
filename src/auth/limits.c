/* Per-key limits (requests/minute, daily audio, concurrency), all computed
 * through the store interface so a shared backend gives the same answers
 * across replicas. Per-address throttling is in throttle.c. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define WINDOW_MS 60000
/* Leases outlive any single request (2 h of audio decodes in minutes); only a
 * crashed replica's slots ever run into this. Streams renew. */
#define LEASE_TTL_MS (6LL * 3600 * 1000)

/* Whole seconds until `ms` have passed, at least 1: a client told to retry
 * after that many seconds will pass. */
static int ceil_s(int64_t ms) { return ms <= 0 ? 1 : (int)((ms + 999) / 1000); }

static int64_t until_utc_midnight(int64_t now_s)
{
    int64_t next = (now_s / 86400 + 1) * 86400;
    return next - now_s;
}

static double quota_seconds(const ld_key_claims *k) { return k->hours_per_day * 3600.0; }

static ld_err today_usage(ld_auth *a, const ld_key_claims *k, int64_t now_s, double *used, ld_error *err)
{
    char day[11];
    ld_time_utc_day(now_s, day);
    return ld_store_usage_get(a->store, k->key_id, day, used, err);
}

/* X-Quota-* figures from today's usage as just read. */
static void set_quota(ld_rate_info *ri, const ld_key_claims *k, int64_t now_s, double used)
{
    ri->have_quota = true;
    ri->quota_limit = quota_seconds(k);
    ri->quota_used = used;
    ri->quota_reset = until_utc_midnight(now_s);
}

ld_err ld_auth_admit(ld_auth *a, const ld_key_claims *k, bool quota, ld_lease *lease, ld_rate_info *info,
                     ld_error *err)
{
    int64_t now_ms = ld_time_now_ms();
    ld_rate_info ri = {.limit = k->rpm};
    ld_window w;
    lease->held = false;
    ld_err rc = ld_store_window_hit(a->store, k->key_id, k->rpm, WINDOW_MS, now_ms, &w, err);
    if (rc) {
        *info = ri;
        return rc;
    }
    int64_t frees_in = w.count ? w.oldest_ms + WINDOW_MS - now_ms : 0;
    ri.reset = w.count ? ceil_s(frees_in) : 0;
    if (!w.allowed) {
        ri.remaining = 0;
        ri.retry_after = ceil_s(frees_in);
        double used_now = 0;
        ld_error ignored;
        if (today_usage(a, k, now_ms / 1000, &used_now, &ignored) == LD_OK) /* for X-Quota-* on the 429 */
            set_quota(&ri, k, now_ms / 1000, used_now);
        *info = ri;
        ld_metrics_rate_limited("rpm");
        return ld_error_set(err, LD_ERR_RATE_LIMITED, NULL);
    }
    ri.remaining = k->rpm - w.count;

    double used = 0;
    if ((rc = today_usage(a, k, now_ms / 1000, &used, err))) {
        ld_store_window_undo(a->store, k->key_id);
        ri.remaining++;
        *info = ri;
        return rc;
    }
    set_quota(&ri, k, now_ms / 1000, used);
    if (used >= quota_seconds(k)) {
        ri.retry_after = (int)until_utc_midnight(now_ms / 1000);
        if (quota) {
            /* A refused request does not use up the key's rate. */
            ld_store_window_undo(a->store, k->key_id);
            ri.remaining++;
            *info = ri;
            ld_metrics_rate_limited("quota");
            return ld_error_set(err, LD_ERR_QUOTA_EXCEEDED, NULL);
        }
        /* Reading the license or a job costs no audio, so a used-up quota does
         * not refuse it; the rate and concurrency limits still apply. */
    }

    bool acquired = false;
    int held = 0;
    rc = ld_store_lease_acquire(a->store, k->key_id, k->concurrency, LEASE_TTL_MS, now_ms, lease->lease_id,
                                &acquired, &held, err);
    if (rc || !acquired) {
        ld_store_window_undo(a->store, k->key_id);
        ri.remaining++;
        if (!rc) {
            /* No way to know when a running request ends; 1 s is the shortest
             * honest answer and cheap for clients that poll. */
            ri.retry_after = 1;
            ld_metrics_rate_limited("concurrency");
            rc = ld_error_set(err, LD_ERR_RATE_LIMITED, "Rate limit exceeded: %d concurrent requests allowed",
                              k->concurrency);
        }
        *info = ri;
        return rc;
    }
    snprintf(lease->key_id, sizeof lease->key_id, "%s", k->key_id);
    lease->held = true;
    /* The same figures ld_auth_usage would read back now (GET /v1/license). */
    ri.have_usage = true;
    ri.usage.requests_this_minute = w.count;
    ri.usage.requests_remaining = ri.remaining;
    ri.usage.concurrent = held;
    ri.usage.audio_seconds_today = used;
    ri.usage.audio_seconds_remaining = used < quota_seconds(k) ? quota_seconds(k) - used : 0;
    *info = ri;
    return LD_OK;
}

void ld_auth_release(ld_auth *a, ld_lease *lease)
{
    if (!lease || !lease->held)
        return;
    ld_store_lease_release(a->store, lease->key_id, lease->lease_id);
    lease->held = false;
}

ld_err ld_auth_lease_renew(ld_auth *a, ld_lease *lease, ld_error *err)
{
    if (!lease || !lease->held)
        return ld_error_set(err, LD_ERR_NOT_FOUND, "lease not held");
    return ld_store_lease_renew(a->store, lease->key_id, lease->lease_id, LEASE_TTL_MS, ld_time_now_ms(), err);
}

ld_err ld_auth_add_usage(ld_auth *a, const ld_key_claims *k, double audio_seconds, ld_error *err)
{
    if (!(audio_seconds > 0))
        return LD_OK;
    char day[11];
    ld_time_utc_day(ld_time_now(), day);
    double total = -1;
    ld_err rc = ld_store_usage_add(a->store, k->key_id, day, audio_seconds, &total, err);
    ld_auth_usage_hook hook = atomic_load(&a->usage_hook);
    /* Quota thresholds and gauge (monitor/monitor.h), also when the write
     * failed but the store counts the seconds in memory (disk full): the
     * crossing happens now, and the catch-up write later crosses nothing. */
    if (hook && total >= 0)
        hook(atomic_load(&a->usage_hook_ud), k, audio_seconds, total);
    return rc;
}

void ld_auth_set_usage_hook(ld_auth *a, ld_auth_usage_hook fn, void *ud)
{
    atomic_store(&a->usage_hook_ud, ud); /* before fn: a reader that sees fn sees its ud */
    atomic_store(&a->usage_hook, fn);
}

ld_err ld_auth_check_quota(ld_auth *a, const ld_key_claims *k, ld_error *err)
{
    double used = 0;
    ld_err rc = today_usage(a, k, ld_time_now(), &used, err);
    if (rc)
        return rc;
    if (used < quota_seconds(k))
        return LD_OK;
    ld_metrics_rate_limited("quota");
    return ld_error_set(err, LD_ERR_QUOTA_EXCEEDED, NULL);
}

ld_err ld_auth_usage(ld_auth *a, const ld_key_claims *k, ld_usage *out, ld_error *err)
{
    int64_t now_ms = ld_time_now_ms();
    ld_window w;
    ld_err rc = ld_store_window_peek(a->store, k->key_id, k->rpm, WINDOW_MS, now_ms, &w, err);
    double used = 0;
    if (!rc)
        rc = today_usage(a, k, now_ms / 1000, &used, err);
    if (rc)
        return rc;
    out->requests_this_minute = w.count;
    out->requests_remaining = k->rpm > w.count ? k->rpm - w.count : 0;
    out->concurrent = ld_store_lease_count(a->store, k->key_id, now_ms);
    out->audio_seconds_today = used;
    double left = quota_seconds(k) - used;
    out->audio_seconds_remaining = left > 0 ? left : 0;
    return LD_OK;
}
