/* Shared state behind one interface: the embedded backend (SQLite in the data
 * dir + in-process counters) today, Redis for many replicas later.
 *
 * Thread-safety: every operation may be called from any thread.
 * Ownership: ld_store_open_* return a store owned by the caller (ld_store_close).
 * Strings passed in are borrowed for the call only; arrays returned through
 * out-parameters are malloc'd and owned by the caller (ld_store_free_keys).
 *
 * Every operation is one atomic step for its backend (embedded: one mutex
 * stripe; Redis: one Lua script or MULTI), so several replicas can share one
 * backend. `subject` is any string up to LD_STORE_SUBJECT_MAX bytes: a key id
 * ("k_…") or a prefixed client address ("ip:…"). Times are unix milliseconds
 * passed in by the caller, which keeps the arithmetic testable. */
#ifndef LD_STORE_STORE_H
#define LD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define LD_STORE_SUBJECT_MAX 95
#define LD_STORE_RES_MAX 64 /* a shared quota reservation's handle */

typedef struct ld_store ld_store;

/* Result of a sliding-window operation. */
typedef struct {
    bool allowed;      /* the hit was recorded (window_hit) / would pass (window_peek) */
    int count;         /* hits in the window after this operation */
    int64_t oldest_ms; /* timestamp of the oldest hit still in the window; 0 if empty */
} ld_window;

/* Issued-key record for `keys list` (never the key text). */
typedef struct {
    char key_id[32];
    char name[64];
    char issuer[16];    /* issuer fingerprint, hex */
    int64_t issued_at;  /* unix seconds */
    int64_t expires_at; /* unix seconds; 0 = never */
    int rpm;
    int concurrency;
    double hours_per_day;
    int64_t revoked_at; /* unix seconds; 0 = not revoked */
} ld_store_key;

/* The backend interface. A backend defines one static ld_store_ops and puts a
 * pointer to it in the first member of its store struct. */
typedef struct {
    const char *name; /* "embedded", "redis" */
    void (*close)(ld_store *s);

    /* Exact sliding window: records a hit at now_ms iff fewer than `limit` hits
     * happened in (now_ms - window_ms, now_ms]. A hit at t leaves the window at
     * exactly t + window_ms. */
    ld_err (*window_hit)(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                         ld_window *out, ld_error *err);
    /* Same arithmetic without recording. */
    ld_err (*window_peek)(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                          ld_window *out, ld_error *err);
    /* Removes the newest hit (a request admitted by the window but refused by a
     * later check, so it does not use up the caller's rate). */
    void (*window_undo)(ld_store *s, const char *subject);

    /* Concurrency leases: acquires one of `limit` slots for ttl_ms unless
     * `limit` unexpired leases are held. lease_id (>= 32 bytes) receives the
     * id; *held receives the number held afterwards (or the number held when
     * refused). Refusal is LD_OK with *acquired false. Expiry lets a shared
     * backend reclaim the slots of a replica that crashed. */
    ld_err (*lease_acquire)(ld_store *s, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                            char *lease_id, bool *acquired, int *held, ld_error *err);
    /* Extends an unexpired lease (long streams); LD_ERR_NOT_FOUND if it is gone. */
    ld_err (*lease_renew)(ld_store *s, const char *subject, const char *lease_id, int64_t ttl_ms, int64_t now_ms,
                          ld_error *err);
    void (*lease_release)(ld_store *s, const char *subject, const char *lease_id);
    int (*lease_count)(ld_store *s, const char *subject, int64_t now_ms);

    /* Quota reservations shared by every process using the backend; NULL for
     * a backend served by one process (auth/quota.c counts those itself).
     * quota_reserve, in one atomic step: drops expired reservations of
     * key_id; refuses (*admitted false) when usage on `day` plus the
     * reservations left reaches quota_s; else adds `seconds` until now_ms +
     * ttl_ms and writes its handle to res (LD_STORE_RES_MAX bytes). *shared
     * false (LD_OK, nothing reserved): not shared at the moment (Redis down
     * under the open policy), the caller counts alone. Expiry frees a crashed
     * process's reservations. quota_resize changes a reservation's seconds
     * (res is rewritten; no check); quota_unreserve drops it (retried until
     * the backend takes it). */
    ld_err (*quota_reserve)(ld_store *s, const char *key_id, const char *day, double quota_s, double seconds,
                            int64_t ttl_ms, int64_t now_ms, char *res, bool *admitted, bool *shared, ld_error *err);
    void (*quota_resize)(ld_store *s, const char *key_id, char *res, double seconds);
    void (*quota_unreserve)(ld_store *s, const char *key_id, const char *res);

    /* Audio seconds used per UTC day ("YYYY-MM-DD"), durable. usage_add sets
     * *total to the day's usage as this process counts it, also when it fails
     * but keeps the seconds in memory to write later (embedded: disk full);
     * it leaves *total alone when the seconds were not counted. */
    ld_err (*usage_add)(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                        ld_error *err);
    ld_err (*usage_get)(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err);

    /* Revocations, durable and visible to every process using the backend
     * within about a second. is_revoked is on the request path: no disk I/O
     * on the common path. revoke is idempotent (keeps the first time). */
    ld_err (*revoke)(ld_store *s, const char *key_id, int64_t now_s, ld_error *err);
    ld_err (*is_revoked)(ld_store *s, const char *key_id, bool *revoked, ld_error *err);

    /* Issued-key records (upsert by key_id) and listing in issue order. */
    ld_err (*key_put)(ld_store *s, const ld_store_key *k, ld_error *err);
    ld_err (*key_get)(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err);
    ld_err (*key_list)(ld_store *s, ld_store_key **out, size_t *n, ld_error *err);

    /* Once-only marks (usage warnings once per key per day, anomaly cooldowns):
     * records `name` (up to LD_STORE_SUBJECT_MAX bytes) until now_ms + ttl_ms
     * unless an unexpired record of it exists. *first is true for exactly one
     * caller per name and period across every process sharing the backend
     * (embedded: one SQLite upsert, durable across restarts; Redis: SET NX PX). */
    ld_err (*mark_once)(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first, ld_error *err);
} ld_store_ops;

struct ld_store {
    const ld_store_ops *ops;
};

/* Embedded store: <data_dir>/listend.db (WAL, 0600; the directory is created
 * 0700 if missing) plus in-memory windows, leases, usage and revocation caches.
 * One server process per data dir; `listend keys` may run alongside it. */
ld_store *ld_store_open_embedded(const char *data_dir, ld_error *err);
void ld_store_close(ld_store *s);
const char *ld_store_backend(ld_store *s); /* ops->name; static string */
/* The embedded store's data dir (borrowed, lives as long as s); NULL for other backends. */
const char *ld_store_data_dir(ld_store *s);
void ld_store_free_keys(ld_store_key *keys);

/* Thin dispatchers over s->ops, so callers do not spell s->ops->x(s, …). */
ld_err ld_store_window_hit(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                           ld_window *out, ld_error *err);
ld_err ld_store_window_peek(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                            ld_window *out, ld_error *err);
void ld_store_window_undo(ld_store *s, const char *subject);
ld_err ld_store_lease_acquire(ld_store *s, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                              char *lease_id, bool *acquired, int *held, ld_error *err);
ld_err ld_store_lease_renew(ld_store *s, const char *subject, const char *lease_id, int64_t ttl_ms, int64_t now_ms,
                            ld_error *err);
void ld_store_lease_release(ld_store *s, const char *subject, const char *lease_id);
int ld_store_lease_count(ld_store *s, const char *subject, int64_t now_ms);
/* *shared false, LD_OK, for backends without shared reservations. */
ld_err ld_store_quota_reserve(ld_store *s, const char *key_id, const char *day, double quota_s, double seconds,
                              int64_t ttl_ms, int64_t now_ms, char *res, bool *admitted, bool *shared,
                              ld_error *err);
void ld_store_quota_resize(ld_store *s, const char *key_id, char *res, double seconds);
void ld_store_quota_unreserve(ld_store *s, const char *key_id, const char *res);
ld_err ld_store_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                          ld_error *err);
ld_err ld_store_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err);
ld_err ld_store_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err);
ld_err ld_store_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err);
ld_err ld_store_key_put(ld_store *s, const ld_store_key *k, ld_error *err);
ld_err ld_store_key_get(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err);
ld_err ld_store_key_list(ld_store *s, ld_store_key **out, size_t *n, ld_error *err);
ld_err ld_store_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first,
                          ld_error *err);

/* ---- Several replicas (store/redis*.c, store/open.c; docs/scaling.md) ---- */

/* State of the shared backend, for /health/redis and /health?detailed=true. */
typedef struct {
    const char *backend;   /* "embedded" or "redis" (static string) */
    bool up;               /* embedded: always */
    bool failure_open;     /* redis: --redis-failure open */
    bool degraded;         /* redis down and serving per-replica fallback limits (open) */
    double latency_ms;     /* last PING round trip; -1 when unknown */
    int64_t down_since_ms; /* unix ms; 0 when up */
    char last_error[160];  /* "" when none yet */
    char target[300];      /* "host:port/db", never the password */
} ld_store_health_info;

/* Audio seconds counted in memory that the store could not persist (the
 * embedded store's disk is full or read-only): they are retried with the key's
 * next addition and at close. `why` gets the last database error. 0 when all
 * is written, and always for Redis (usage counted during an outage waits in
 * the replica until Redis is back: redis_usage.c). */
double ld_store_usage_unsaved(ld_store *s, char *why, size_t whysz);

/* Fills *out; returns out->up. Thread-safe, no network round trip. */
bool ld_store_health(ld_store *s, ld_store_health_info *out);

/* Redis backend from redis://[[user]:password@]host[:port][/db]. failure_open:
 * when Redis is unreachable or slow, serve per-replica in-memory limits (true)
 * or fail operations with LD_ERR_SERVICE_UNAVAILABLE (false, the default).
 * Fails (NULL) when Redis cannot be reached within a few seconds and
 * failure_open is false. */
ld_store *ld_store_open_redis(const char *url, bool failure_open, ld_error *err);

/* The backend `serve` and `keys` use: Redis when redis_url is non-empty (or,
 * when redis_url is NULL, when REDIS_URL / REDIS_HOST is set), else the
 * embedded store in data_dir. With Redis, data_dir's webhook.secret is
 * replaced by the cluster-wide one (the first replica to start sets it). */
ld_store *ld_store_open_configured(const char *data_dir, const char *redis_url, int failure_open, ld_error *err);

#endif
