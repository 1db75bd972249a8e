/* Choosing the backend (embedded or Redis) and reporting its health; the
 * one place `serve` and `keys` need to call. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/jobs_store.h"
#include "store/redis.h"
#include "util/fs.h"
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

/* Every replica signs webhooks with the same secret, so a receiver can verify
 * deliveries whichever replica ran the job: the first replica to start puts
 * its secret (or a fresh one) in Redis with SET NX, and every replica writes
 * the winner to <data>/webhook.secret, where the jobs module reads it. */
static ld_err sync_webhook_secret(ld_store *s, const char *data_dir, ld_error *err)
{
    ld_redis *r = ld_store_redis_conn(s);
    if (!r || !data_dir || !*data_dir || !ld_redis_up(r))
        return LD_OK;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/webhook.secret", data_dir) >= (int)sizeof path)
        return ld_error_set(err, LD_ERR_INTERNAL, "data dir path too long");
    char mine[130] = "";
    size_t len = 0;
    char *text = ld_fs_read(path, 4096, &len);
    if (text) {
        while (len && strchr("\r\n ", text[len - 1]))
            text[--len] = '\0';
        if (len >= 32 && len < 65)
            memcpy(mine, text, len + 1);
        free(text);
    }
    if (!mine[0]) {
        unsigned char raw[32];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(mine, sizeof mine, raw, sizeof raw);
    }
    redisReply *rep = ld_redis_cmdv(r, err, "SET", "ld:webhook_secret", mine, "NX", NULL);
    if (rep)
        freeReplyObject(rep);
    rep = rep ? ld_redis_cmdv(r, err, "GET", "ld:webhook_secret", NULL) : NULL;
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    ld_err rc = LD_OK;
    if (rep->type != REDIS_REPLY_STRING || rep->len < 32 || rep->len > 64) {
        rc = ld_error_set(err, LD_ERR_INTERNAL, "Redis key ld:webhook_secret must hold 32..64 characters");
    } else if (strcmp(rep->str, mine) || !len) {
        char line[80];
        int n = snprintf(line, sizeof line, "%s\n", rep->str);
        if (ld_fs_mkdirs(data_dir, 0700) || ld_fs_write_atomic(path, line, (size_t)n, 0600))
            rc = ld_error_set(err, LD_ERR_INTERNAL, "Cannot write %s: %s", path, strerror(errno));
        else
            ld_log(LD_LOG_INFO, "store (redis): %s now holds the cluster-wide webhook secret", path);
    }
    freeReplyObject(rep);
    return rc;
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
    if (s && sync_webhook_secret(s, data_dir, err)) {
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
