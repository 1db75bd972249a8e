/* Choosing the backend (embedded or Redis) and reporting its health; the
 * one place `serve` and `keys` need to call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/jobs_store.h"
#include "store/redis.h"
#include "util/log.h"

bool ld_store_health(ld_store *s, ld_store_health_info *out)
{
    memset(out, 0, sizeof *out);
    ld_redis *r = ld_store_redis_conn(s);
    if (!r) {
        out->backend = s ? ld_store_backend(s) : "none";
        out->up = s != NULL;
        out->latency_ms = 0;
        const char *dir = s ? ld_store_data_dir(s) : NULL;
        snprintf(out->target, sizeof out->target, "%s", dir ? dir : "");
        return out->up;
    }
    ld_redis_health(r, out);
    out->failure_open = ld_store_redis_failure_open(s);
    out->degraded = !out->up && out->failure_open;
    return out->up;
}

ld_store *ld_store_open_configured(const char *data_dir, const char *redis_url, int failure_open, ld_error *err)
{
    char env_url[2048];
    if (!redis_url) {
        ld_redis_url_from_env(env_url, sizeof env_url);
        redis_url = env_url;
    }
    if (!*redis_url)
        return ld_store_open_embedded(data_dir, err);
    ld_store *s = ld_store_open_redis(redis_url, failure_open != 0, err);
    if (s && ld_store_redis_secret_init(s, data_dir, err)) {
        ld_store_close(s);
        return NULL;
    }
    if (s) {
        ld_store_health_info h;
        ld_store_health(s, &h);
        ld_log_fields(LD_LOG_INFO,
                      json_pack("{s:s, s:s, s:b}", "redis", h.target, "redis_failure",
                                failure_open ? "open" : "closed", "redis_up", h.up),
                      "store: shared state in Redis at %s (failure policy %s)", h.target,
                      failure_open ? "open" : "closed");
    }
    return s;
}
