/* Backend-independent entry points: each dispatches through s->ops. */
#include "store/store.h"

#include <stdlib.h>

void ld_store_close(ld_store *s)
{
    if (s)
        s->ops->close(s);
}

const char *ld_store_backend(ld_store *s) { return s->ops->name; }
void ld_store_free_keys(ld_store_key *keys) { free(keys); }

ld_err ld_store_window_hit(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                           ld_window *out, ld_error *err)
{
    return s->ops->window_hit(s, subject, limit, window_ms, now_ms, out, err);
}

ld_err ld_store_window_peek(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                            ld_window *out, ld_error *err)
{
    return s->ops->window_peek(s, subject, limit, window_ms, now_ms, out, err);
}

void ld_store_window_undo(ld_store *s, const char *subject) { s->ops->window_undo(s, subject); }

ld_err ld_store_lease_acquire(ld_store *s, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                              char *lease_id, bool *acquired, int *held, ld_error *err)
{
    return s->ops->lease_acquire(s, subject, limit, ttl_ms, now_ms, lease_id, acquired, held, err);
}

ld_err ld_store_lease_renew(ld_store *s, const char *subject, const char *lease_id, int64_t ttl_ms, int64_t now_ms,
                            ld_error *err)
{
    return s->ops->lease_renew(s, subject, lease_id, ttl_ms, now_ms, err);
}

void ld_store_lease_release(ld_store *s, const char *subject, const char *lease_id)
{
    s->ops->lease_release(s, subject, lease_id);
}

int ld_store_lease_count(ld_store *s, const char *subject, int64_t now_ms)
{
    return s->ops->lease_count(s, subject, now_ms);
}

ld_err ld_store_quota_reserve(ld_store *s, const char *key_id, const char *day, double quota_s, double seconds,
                              int64_t ttl_ms, int64_t now_ms, char *res, bool *admitted, bool *shared,
                              ld_error *err)
{
    *shared = false;
    *admitted = true;
    if (!s->ops->quota_reserve)
        return LD_OK;
    return s->ops->quota_reserve(s, key_id, day, quota_s, seconds, ttl_ms, now_ms, res, admitted, shared, err);
}

void ld_store_quota_resize(ld_store *s, const char *key_id, char *res, double seconds)
{
    if (s->ops->quota_resize)
        s->ops->quota_resize(s, key_id, res, seconds);
}

void ld_store_quota_unreserve(ld_store *s, const char *key_id, const char *res)
{
    if (s->ops->quota_unreserve)
        s->ops->quota_unreserve(s, key_id, res);
}

ld_err ld_store_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                          ld_error *err)
{
    return s->ops->usage_add(s, key_id, day, seconds, total, err);
}

ld_err ld_store_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err)
{
    return s->ops->usage_get(s, key_id, day, seconds, err);
}

ld_err ld_store_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err)
{
    return s->ops->revoke(s, key_id, now_s, err);
}

ld_err ld_store_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err)
{
    return s->ops->is_revoked(s, key_id, revoked, err);
}

ld_err ld_store_key_put(ld_store *s, const ld_store_key *k, ld_error *err) { return s->ops->key_put(s, k, err); }

ld_err ld_store_key_get(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err)
{
    return s->ops->key_get(s, key_id, out, found, err);
}

ld_err ld_store_key_list(ld_store *s, ld_store_key **out, size_t *n, ld_error *err)
{
    return s->ops->key_list(s, out, n, err);
}

ld_err ld_store_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first, ld_error *err)
{
    return s->ops->mark_once(s, name, ttl_ms, now_ms, first, err);
}
