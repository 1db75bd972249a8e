/* Revocations in Redis: a hash key_id -> revoked_at plus a version counter
 * bumped by every new revocation. is_revoked is on the request path, so it
 * answers from a sorted in-memory copy; the store's background thread polls
 * the version every LD_REDIS_REVOKE_POLL_MS and reloads the copy when it
 * changed (or after Redis came back), so a revocation made on any replica is
 * enforced everywhere within about a quarter of a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_store_internal.h"
#include "util/log.h"
#include "util/time.h"

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }
static int64_t mono_ms(void) { return (int64_t)(ld_time_mono() * 1000); }

int ld_rs_revocations_poll(rstore *rs, bool force)
{
    pthread_mutex_lock(&rs->rev_refresh_mu);
    uint64_t epoch = ld_redis_epoch(rs->r);
    redisReply *rep = ld_redis_cmdv(rs->r, NULL, "GET", "ld:revoked:ver", NULL);
    int rc = -1;
    if (!rep)
        goto out;
    long long ver = ld_redis_int(rep, 0);
    freeReplyObject(rep);
    if (!force && rs->rev_loaded && ver == rs->rev_version && epoch == rs->rev_epoch) {
        atomic_store(&rs->rev_fresh_ms, mono_ms());
        rc = 0;
        goto out;
    }
    /* The version is read before the list: a revocation landing in between
     * is in the list and makes the next poll reload once more. */
    rep = ld_redis_cmdv(rs->r, NULL, "HKEYS", "ld:revoked", NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        goto out;
    }
    char(*ids)[32] = rep->elements ? calloc(rep->elements, sizeof *ids) : NULL;
    size_t n = 0;
    for (size_t i = 0; ids && i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING && rep->element[i]->len < 32)
            snprintf(ids[n++], 32, "%s", rep->element[i]->str);
    bool oom = rep->elements && !ids;
    freeReplyObject(rep);
    if (oom)
        goto out;
    if (n > 1) /* qsort(NULL, 0, …) is undefined behaviour (UBSan) with no revocations */
        qsort(ids, n, sizeof *ids, cmp_id);
    pthread_rwlock_wrlock(&rs->rev_lock);
    free(rs->revoked);
    rs->revoked = ids;
    rs->nrevoked = n;
    rs->rev_loaded = true;
    pthread_rwlock_unlock(&rs->rev_lock);
    rs->rev_version = ver;
    rs->rev_epoch = epoch;
    atomic_store(&rs->rev_fresh_ms, mono_ms());
    rc = 0;
out:
    pthread_mutex_unlock(&rs->rev_refresh_mu);
    return rc;
}

void ld_rs_revocations_free(rstore *rs)
{
    free(rs->revoked);
    rs->revoked = NULL;
    pthread_rwlock_destroy(&rs->rev_lock);
    pthread_mutex_destroy(&rs->rev_refresh_mu);
}

ld_err ld_rs_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err)
{
    rstore *rs = (rstore *)s;
    *revoked = false;
    pthread_rwlock_rdlock(&rs->rev_lock);
    bool loaded = rs->rev_loaded;
    *revoked = key_id && rs->nrevoked && bsearch(key_id, rs->revoked, rs->nrevoked, sizeof *rs->revoked, cmp_id);
    pthread_rwlock_unlock(&rs->rev_lock);
    /* Always the last list seen, even when Redis is gone: under the closed
     * policy the admission that follows every key check (rate window) refuses
     * with 503 anyway, so an old list never lets a request through, and
     * failing here would turn that 503 into a 500 in auth. Under the open
     * policy (or before the first load, which only open allows) the last list
     * is the best answer there is. */
    (void)err;
    if (!loaded || mono_ms() - atomic_load(&rs->rev_fresh_ms) > LD_REDIS_REVOKE_STALE_MS)
        ld_rs_fallback(rs); /* rate-limited loud log under open; no-op under closed */
    return LD_OK;
}

ld_err ld_rs_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err)
{
    rstore *rs = (rstore *)s;
    if (!key_id || !*key_id || strlen(key_id) >= 32)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "invalid key id");
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)now_s);
    const char *argv[] = {"ld:revoked", "ld:revoked:ver", key_id, at};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_revoke, 2, 4, argv, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE; /* a revocation must reach every replica: never local only */
    bool ok = rep->type == REDIS_REPLY_INTEGER;
    if (!ok)
        ld_log(LD_LOG_ERROR, "store (redis): revoke: %s", rep->str ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    if (!ok)
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    ld_rs_revocations_poll(rs, true); /* our own requests see it at once */
    return LD_OK;
}
