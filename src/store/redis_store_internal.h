/* The Redis limits store's state, shared by its files; internal to src/store/.
 * The files: redis_store.c (windows, leases, keys, lifecycle), redis_revoke.c
 * (revocation cache), redis_usage.c (daily usage, kept per replica
 * during an outage and added to Redis when it is back), redis_secret.c (the
 * webhook secret), redis_quota.c (quota reservations).
 *
 * Key layout (db from the URL): ld:w:<subject> (ZSET of hits by time),
 * ld:l:<subject> (ZSET of lease ids by expiry), ld:u:<key_id>:<day> (float,
 * TTL 4 days), ld:revoked (HASH key_id -> revoked_at), ld:revoked:ver (INT,
 * bumped per new revocation), ld:key:<id> (HASH) + ld:keys (ZSET by
 * issued_at), ld:webhook_secret, ld:m:<name> (once-only marks, TTL),
 * ld:r:<key_id> (ZSET of quota reservations "<seconds>|<id>" by expiry). */
#ifndef LD_STORE_REDIS_STORE_INTERNAL_H
#define LD_STORE_REDIS_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/mem.h"
#include "store/redis.h"

/* How often the background thread polls the revocation version: bounds how
 * long a revocation made on another replica takes to be enforced here. */
#define LD_REDIS_REVOKE_POLL_MS 250
/* A revocation list older than this is logged as stale (open policy). */
#define LD_REDIS_REVOKE_STALE_MS 5000
#define LD_REDIS_USAGE_TTL_S (4 * 86400)

typedef struct rs_usage rs_usage;

/* A lease (or quota reservation) release Redis did not take (down at the
 * time): retried by the background thread, else the slot would stay held
 * until the lease expires. */
typedef struct {
    char key[160];
    char member[LD_STORE_RES_MAX];
} rs_release;

typedef struct {
    ld_store base; /* first: ld_store * <-> rstore * */
    ld_redis *r;
    bool failure_open;
    ld_store_mem *mem;               /* open policy: per-replica windows and leases while Redis is down */
    _Atomic int64_t fallback_log_ms; /* monotonic ms of the last "serving fallback" log line */

    ld_redis_script *s_window, *s_lease_acquire, *s_lease_renew, *s_usage_add, *s_revoke, *s_key_put, *s_key_read;
    ld_redis_script *s_quota_reserve, *s_quota_resize;

    /* revocations (redis_revoke.c) */
    pthread_rwlock_t rev_lock;
    char (*revoked)[32]; /* sorted */
    size_t nrevoked;
    bool rev_loaded;
    long long rev_version;
    uint64_t rev_epoch;           /* connection epoch of the last load */
    _Atomic int64_t rev_fresh_ms; /* monotonic ms of the last successful poll */
    pthread_mutex_t rev_refresh_mu;

    /* usage during outages (redis_usage.c) */
    pthread_mutex_t usage_mu;
    rs_usage **usage;
    uint64_t usage_epoch;

    /* lease releases to retry (redis_store.c) */
    pthread_mutex_t rel_mu;
    rs_release *releases;
    size_t nreleases, releases_cap;

    /* webhook secret (redis_secret.c); "" path: not mirrored (no data dir) */
    pthread_mutex_t secret_mu;
    char secret_path[4096];
    char secret[65]; /* as last written to secret_path, or read from it */
    bool secret_on_disk;
    char secret_error[256]; /* last problem logged, so it is logged once */

    /* background thread: probes Redis, polls revocations, flushes usage */
    pthread_t thread;
    bool thread_started, stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} rstore;

/* Whether to serve from the per-replica fallback after a Redis failure (open
 * policy; logs loudly, at most every 10 s). */
bool ld_rs_fallback(rstore *rs);

ld_err ld_rs_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err);
ld_err ld_rs_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err);
/* Reloads the list if its version changed (or force); 0 on success. */
int ld_rs_revocations_poll(rstore *rs, bool force);
void ld_rs_revocations_free(rstore *rs);

ld_err ld_rs_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                       ld_error *err);
ld_err ld_rs_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err);
/* Pushes usage recorded during an outage to Redis (background thread). */
void ld_rs_usage_flush(rstore *rs);
int ld_rs_usage_init(rstore *rs);
void ld_rs_usage_free(rstore *rs);

/* ZREM key member now, or from the background thread once Redis is back. */
void ld_rs_release_later(rstore *rs, const char *key, const char *member);
void ld_rs_zrem(rstore *rs, const char *key, const char *member);

extern const char ld_rs_lua_quota_reserve[], ld_rs_lua_quota_resize[];
ld_err ld_rs_quota_reserve(ld_store *s, const char *key_id, const char *day, double quota_s, double seconds,
                           int64_t ttl_ms, int64_t now_ms, char *res, bool *admitted, bool *shared, ld_error *err);
void ld_rs_quota_resize(ld_store *s, const char *key_id, char *res, double seconds);
void ld_rs_quota_unreserve(ld_store *s, const char *key_id, const char *res);

/* Re-reads the cluster's webhook secret and mirrors a change to the data
 * dir (background thread, every second while Redis is up). */
void ld_rs_secret_poll(rstore *rs);

ld_err ld_rs_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first, ld_error *err);

/* Key builders: "ld:<kind>:<a>[:<b>]" into out (>= 160 bytes). */
void ld_rs_key(char *out, size_t outsz, const char *kind, const char *a, const char *b);

#endif
