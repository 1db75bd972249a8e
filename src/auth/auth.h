/* License keys and per-key limits, as the HTTP layer sees them.
 *
 * A key is an offline-verifiable token signed with an issuer's Ed25519 key
 * (see auth/key.h for the format). The server holds only issuer *public* keys
 * (data dir), caches verified keys, and asks the store (store/store.h) for
 * revocations, request windows, concurrency leases and daily audio usage.
 *
 * Thread-safety: every ld_auth_* function may be called from any thread.
 * Ownership: ld_auth_open returns an object owned by the caller (ld_auth_free);
 * the store passed in is borrowed and must outlive it. */
#ifndef LD_AUTH_AUTH_H
#define LD_AUTH_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

/* Defaults when a key names no limits (docs/api.md, "Authentication and limits"). */
#define LD_DEFAULT_RPM 60
#define LD_DEFAULT_CONCURRENCY 10
#define LD_DEFAULT_HOURS_PER_DAY 100.0

typedef struct {
    char key_id[32]; /* short public id, e.g. "k_3f9a…" (never the key text) */
    char name[64];
    int64_t issued_at;    /* unix seconds */
    int64_t expires_at;   /* unix seconds; 0 = never */
    int rpm;              /* requests per minute */
    int concurrency;      /* concurrent requests/streams */
    double hours_per_day; /* audio hours per UTC day */
} ld_key_claims;

typedef struct {
    int requests_this_minute;
    int concurrent;
    double audio_seconds_today;
    double audio_seconds_remaining;
    int requests_remaining;
} ld_usage;

/* X-RateLimit-* values for the response headers and 429 bodies. */
typedef struct {
    int limit;       /* X-RateLimit-Limit (requests per minute) */
    int remaining;   /* X-RateLimit-Remaining */
    int64_t reset;   /* X-RateLimit-Reset: seconds until the window frees a slot */
    int retry_after; /* seconds until a request would pass (only when refused) */
    /* What an admitted request's checks read (window, today's usage, leases
     * held including its own), so GET /v1/license answers without reading the
     * store again. Set only when ld_auth_admit returns LD_OK. */
    bool have_usage;
    ld_usage usage;
    /* The key's daily audio quota for X-Quota-* (set whenever admission read
     * today's usage, admitted or refused). */
    bool have_quota;
    double quota_limit;  /* X-Quota-Limit: audio seconds per UTC day */
    double quota_used;   /* audio seconds used today; X-Quota-Remaining = limit - used */
    int64_t quota_reset; /* X-Quota-Reset: seconds until the UTC day (and the quota) resets */
} ld_rate_info;

/* A concurrency slot held from admission to the end of the response. */
typedef struct {
    char key_id[32];
    char lease_id[32];
    bool held;
} ld_lease;

typedef struct ld_auth ld_auth;

/* Loads issuer public keys from data_dir. Fails (LD_ERR_INTERNAL with message)
 * when none exist. */
ld_auth *ld_auth_open(const char *data_dir, ld_store *store, ld_error *err);
void ld_auth_free(ld_auth *a);
int ld_auth_issuer_count(ld_auth *a); /* public keys loaded */

/* `authorization` is the raw header value ("Token <key>" or "Bearer <key>"), may
 * be NULL. Missing/malformed/unknown/bad signature/revoked -> LD_ERR_INVALID_LICENSE;
 * expired -> LD_ERR_LICENSE_EXPIRED (err->msg "License expired", claims filled so
 * the caller can report expires_at). */
ld_err ld_auth_check_header(ld_auth *a, const char *authorization, ld_key_claims *out, ld_error *err);
/* Same for a bare key (WebSocket subprotocol or query parameter). */
ld_err ld_auth_check_key(ld_auth *a, const char *key, ld_key_claims *out, ld_error *err);

/* For work that outlives its admission (live streams): is the key still
 * good? Revoked -> LD_ERR_INVALID_LICENSE "License key revoked"; expired ->
 * LD_ERR_LICENSE_EXPIRED "License expired". A store that cannot be read
 * answers LD_OK (logged): a running stream is not cut for a blip. */
ld_err ld_auth_recheck(ld_auth *a, const ld_key_claims *k, ld_error *err);

/* Admits one request for this key: requests/minute, then daily quota
 * (LD_ERR_QUOTA_EXCEEDED), then a concurrency lease: three store operations.
 * Without `quota` (reading the license or a job costs no audio) a key over its
 * daily quota is still admitted, under the same rate and concurrency limits
 * (retry_after then says when the quota resets). Fills info in every case (info->usage only when a lease was taken).
 * Refusals are counted in listend_rate_limited_total here, by kind.
 * A held lease must be released with ld_auth_release. */
ld_err ld_auth_admit(ld_auth *a, const ld_key_claims *k, bool quota, ld_lease *lease, ld_rate_info *info,
                     ld_error *err);
void ld_auth_release(ld_auth *a, ld_lease *lease);
/* Leases expire 6 h after admission or the last renewal so a shared store can
 * reclaim a crashed replica's slots; a live stream that may outlast that calls
 * this now and then (e.g. every few minutes). LD_ERR_NOT_FOUND if it expired. */
ld_err ld_auth_lease_renew(ld_auth *a, ld_lease *lease, ld_error *err);

/* Audio a request has been promised against its key's daily quota but not yet
 * charged (quota.c). Held by one request; settle exactly once. */
typedef struct {
    char key_id[32];
    double seconds;
    bool held;
    bool shared; /* also reserved in the shared store (Redis), under res */
    char res[LD_STORE_RES_MAX];
} ld_quota_hold;

/* Reserves `seconds` (the audio's duration, known after probing and before
 * decoding) for key k. Refuses with LD_ERR_QUOTA_EXCEEDED when today's charged
 * usage plus everything reserved for the key already reached the quota, so
 * concurrent requests pass the quota by at most the one admitted last
 * (docs/hardening.md, "Tenant isolation"). Reserved means by this process,
 * and with a shared store (Redis) by every replica, checked in one atomic
 * step there; while Redis is down under the open policy, by this process. When
 * h is held already the reservation only grows (a longer real duration): no
 * check. */
ld_err ld_auth_quota_reserve(ld_auth *a, const ld_key_claims *k, double seconds, ld_quota_hold *h, ld_error *err);
/* Charges the real figure through ld_auth_add_usage (0 for failed work),
 * then drops the reservation. No-op when h is not held and actual is 0. */
ld_err ld_auth_quota_settle(ld_auth *a, const ld_key_claims *k, ld_quota_hold *h, double actual_seconds,
                            ld_error *err);

/* Adds decoded audio seconds to the key's UTC-day usage (persisted), then
 * tells the usage hook (if set) the key's new total for today, also when the
 * write failed but the store still counts the seconds (kept in memory until
 * the disk has room). The one place usage is charged: every path (requests,
 * jobs, streams) ends here. */
ld_err ld_auth_add_usage(ld_auth *a, const ld_key_claims *k, double audio_seconds, ld_error *err);
/* Called after every charge with the seconds charged and today's new total
 * (shared across replicas); the usage monitor (monitor/monitor.h) sets it
 * before requests flow. Must not block. */
typedef void (*ld_auth_usage_hook)(void *ud, const ld_key_claims *k, double seconds, double total_today);
void ld_auth_set_usage_hook(ld_auth *a, ld_auth_usage_hook fn, void *ud);
/* LD_ERR_QUOTA_EXCEEDED when today's usage already reached the key's quota
 * (counted in listend_rate_limited_total{kind="quota"}, as admission does). */
ld_err ld_auth_check_quota(ld_auth *a, const ld_key_claims *k, ld_error *err);
ld_err ld_auth_usage(ld_auth *a, const ld_key_claims *k, ld_usage *out, ld_error *err);

/* Brute-force protection per client address: call _failed after each failed
 * authentication; _throttled says whether the address must get 429 now.
 * Failures are counted in the store (shared across replicas), but _throttled
 * asks the store only for addresses this process saw fail in the last minute
 * (a bounded in-memory table), so a well-behaved client costs no store round
 * trip; each replica may let one extra failure through before it joins the
 * shared count. */
void ld_auth_client_failed(ld_auth *a, const char *addr);
bool ld_auth_client_throttled(ld_auth *a, const char *addr, int *retry_after);
/* Failed authentications allowed per address per sliding minute before
 * _throttled says yes (default 20); 0 disables throttling. */
void ld_auth_set_client_failure_limit(ld_auth *a, int failures_per_minute);

#endif
