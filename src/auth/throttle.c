/* Per-address brute-force throttling. Failed authentications are counted in
 * the store's sliding windows (shared across replicas with Redis), under an
 * "ip:" subject that cannot clash with key ids ("k_…"). Almost every request
 * comes from an address that has not failed, so a small in-process table of
 * recent failures decides whether the store needs asking at all: a clean
 * address costs no store round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define WINDOW_MS 60000 /* the failure budget is per sliding minute */

int ld_auth_fails_init(ld_auth *a)
{
    if (!(a->fails = calloc(LD_AUTH_FAIL_SLOTS, sizeof *a->fails)))
        return -1;
    crypto_shorthash_keygen(a->fail_key);
    pthread_mutex_init(&a->fail_mu, NULL);
    return 0;
}

void ld_auth_fails_free(ld_auth *a)
{
    if (!a->fails)
        return;
    pthread_mutex_destroy(&a->fail_mu);
    free(a->fails);
    a->fails = NULL;
}

static uint64_t addr_tag(ld_auth *a, const char *addr)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)addr, strlen(addr), a->fail_key);
    uint64_t t;
    memcpy(&t, h, sizeof t);
    return t ? t : 1; /* 0 marks an empty slot */
}

static void fail_note(ld_auth *a, const char *addr, int64_t now_ms)
{
    uint64_t t = addr_tag(a, addr);
    ld_auth_fail_slot *sl = &a->fails[t % LD_AUTH_FAIL_SLOTS];
    pthread_mutex_lock(&a->fail_mu);
    sl->tag = t;
    sl->last_ms = now_ms;
    pthread_mutex_unlock(&a->fail_mu);
}

/* True when this process recorded a failure from addr within the window: only
 * then can the address be over its budget here (other replicas' failures are
 * checked by those replicas, and by this one once addr fails here once). */
static bool fail_recent(ld_auth *a, const char *addr, int64_t now_ms)
{
    uint64_t t = addr_tag(a, addr);
    const ld_auth_fail_slot *sl = &a->fails[t % LD_AUTH_FAIL_SLOTS];
    pthread_mutex_lock(&a->fail_mu);
    bool recent = sl->tag == t && now_ms - sl->last_ms < WINDOW_MS;
    pthread_mutex_unlock(&a->fail_mu);
    return recent;
}

static void client_subject(const char *addr, char *out, size_t outsz)
{
    snprintf(out, outsz, "ip:%.*s", LD_STORE_SUBJECT_MAX - 3, addr);
}

/* Whole seconds until `ms` have passed, at least 1. */
static int ceil_s(int64_t ms) { return ms <= 0 ? 1 : (int)((ms + 999) / 1000); }

void ld_auth_set_client_failure_limit(ld_auth *a, int failures_per_minute)
{
    atomic_store(&a->client_failure_limit, failures_per_minute > 0 ? failures_per_minute : 0);
}

void ld_auth_client_failed(ld_auth *a, const char *addr)
{
    int limit = atomic_load(&a->client_failure_limit);
    if (!addr || !*addr || limit <= 0)
        return;
    int64_t now_ms = ld_time_now_ms();
    /* Noted locally even if the store write fails, so the next request asks. */
    fail_note(a, addr, now_ms);
    char subject[LD_STORE_SUBJECT_MAX + 1];
    client_subject(addr, subject, sizeof subject);
    ld_window w;
    ld_error err;
    if (ld_store_window_hit(a->store, subject, limit, WINDOW_MS, now_ms, &w, &err))
        ld_log(LD_LOG_WARNING, "auth: cannot count failed authentication: %s", err.msg);
}

bool ld_auth_client_throttled(ld_auth *a, const char *addr, int *retry_after)
{
    int limit = atomic_load(&a->client_failure_limit);
    if (!addr || !*addr || limit <= 0)
        return false;
    int64_t now_ms = ld_time_now_ms();
    if (!fail_recent(a, addr, now_ms))
        return false;
    char subject[LD_STORE_SUBJECT_MAX + 1];
    client_subject(addr, subject, sizeof subject);
    ld_window w;
    if (ld_store_window_peek(a->store, subject, limit, WINDOW_MS, now_ms, &w, NULL) || w.allowed)
        return false;
    if (retry_after)
        *retry_after = ceil_s(w.oldest_ms + WINDOW_MS - now_ms);
    ld_metrics_auth_failure("throttled"); /* callers refuse at once */
    return true;
}
