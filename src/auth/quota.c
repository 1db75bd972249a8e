/* Quota reservations: admission of audio against the daily quota happens once
 * its duration is known (after probing, before decoding) and the real figure
 * is charged afterwards, so N concurrent requests cannot each see the same
 * "quota left" and all pass. Reservations live in this process (a short list:
 * keys with audio in flight) and, with a shared store, in the store too, which
 * checks them for all replicas at once (store.h, quota_reserve); the local
 * list is what counts while Redis is down under the open policy. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_internal.h"
#include "util/metrics.h"
#include "util/time.h"

typedef struct held {
    const ld_auth *a;
    char key_id[32];
    double seconds;
    int holds;
    struct held *next;
} held;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static held *list;

static held *find(const ld_auth *a, const char *key_id)
{
    for (held *h = list; h; h = h->next)
        if (h->a == a && !strcmp(h->key_id, key_id))
            return h;
    return NULL;
}

/* As long as a lease (auth/limits.c): longer than any request; only a
 * crashed replica's reservations ever run into it. */
#define RESERVE_TTL_MS (6LL * 3600 * 1000)

ld_err ld_auth_quota_reserve(ld_auth *a, const ld_key_claims *k, double seconds, ld_quota_hold *hold, ld_error *err)
{
    if (!(seconds > 0))
        seconds = 0;
    pthread_mutex_lock(&mu);
    held *h = find(a, k->key_id);
    if (hold->held) { /* growing an admitted request's reservation */
        if (h)
            h->seconds += seconds;
        hold->seconds += seconds;
        pthread_mutex_unlock(&mu);
        if (hold->shared)
            ld_store_quota_resize(a->store, hold->key_id, hold->res, hold->seconds);
        return LD_OK;
    }
    /* The store read stays under the lock: two reservations for one key must
     * not both read the same usage. Only requests with audio take this path. */
    char day[11];
    int64_t now_ms = ld_time_now_ms();
    ld_time_utc_day(now_ms / 1000, day);
    double quota = k->hours_per_day * 3600.0;
    bool shared = false, admitted = true;
    ld_err rc = ld_store_quota_reserve(a->store, k->key_id, day, quota, seconds, RESERVE_TTL_MS, now_ms, hold->res,
                                       &admitted, &shared, err);
    if (!rc && !shared) { /* one process, or Redis down under the open policy: count here */
        double used = 0;
        rc = ld_store_usage_get(a->store, k->key_id, day, &used, err);
        admitted = used + (h ? h->seconds : 0) < quota;
    }
    if (!rc && !admitted) {
        ld_metrics_rate_limited("quota");
        rc = ld_error_set(err, LD_ERR_QUOTA_EXCEEDED, NULL);
    }
    if (!rc && !h) {
        if (!(h = calloc(1, sizeof *h))) {
            rc = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
            if (shared)
                ld_store_quota_unreserve(a->store, k->key_id, hold->res);
        } else {
            h->a = a;
            snprintf(h->key_id, sizeof h->key_id, "%s", k->key_id);
            h->next = list;
            list = h;
        }
    }
    if (!rc) {
        /* Counted here too: the fallback check while Redis is down. */
        h->seconds += seconds;
        h->holds++;
        snprintf(hold->key_id, sizeof hold->key_id, "%s", k->key_id);
        hold->seconds = seconds;
        hold->held = true;
        hold->shared = shared;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

ld_err ld_auth_quota_settle(ld_auth *a, const ld_key_claims *k, ld_quota_hold *hold, double actual_seconds,
                            ld_error *err)
{
    /* Charge first, then release: for a moment the audio counts twice (the
     * safe side), never zero times. */
    ld_err rc = actual_seconds > 0 ? ld_auth_add_usage(a, k, actual_seconds, err) : LD_OK;
    if (!hold->held)
        return rc;
    pthread_mutex_lock(&mu);
    for (held **p = &list; *p; p = &(*p)->next) {
        held *h = *p;
        if (h->a != a || strcmp(h->key_id, hold->key_id))
            continue;
        h->seconds -= hold->seconds;
        if (--h->holds <= 0) {
            *p = h->next;
            free(h);
        }
        break;
    }
    pthread_mutex_unlock(&mu);
    if (hold->shared)
        ld_store_quota_unreserve(a->store, hold->key_id, hold->res);
    hold->held = false;
    hold->shared = false;
    hold->seconds = 0;
    return rc;
}
