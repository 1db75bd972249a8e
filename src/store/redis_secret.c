/* The cluster-wide webhook secret: ld:webhook_secret in Redis is the one
 * every replica signs with, mirrored into <data>/webhook.secret, which the
 * jobs and usage-webhook modules read before each delivery. The background
 * thread re-reads it every second, so replicas converge again after Redis
 * lost its data (a replica whose Redis entry is missing writes its own back
 * with SET NX and adopts whatever Redis then holds) or after an operator
 * rotated it there. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_store_internal.h"
#include "util/fs.h"
#include "util/log.h"

#define KEY "ld:webhook_secret"

static bool valid(const char *s, size_t len) { return s && len >= 32 && len <= 64 && !strpbrk(s, "\r\n "); }

/* With secret_mu held: the data dir's secret into rs->secret, if valid. */
static void read_file(rstore *rs)
{
    size_t len = 0;
    char *text = ld_fs_read(rs->secret_path, 4096, &len);
    if (!text)
        return;
    while (len && strchr("\r\n ", text[len - 1]))
        text[--len] = '\0';
    if (valid(text, len)) {
        memcpy(rs->secret, text, len + 1);
        rs->secret_on_disk = true;
    }
    sodium_memzero(text, len);
    free(text);
}

/* With secret_mu held: Redis' copy (SET NX ours first when it has none), or
 * NULL with err set. */
static redisReply *cluster_secret(rstore *rs, ld_error *err)
{
    redisReply *rep = ld_redis_cmdv(rs->r, err, "GET", KEY, NULL);
    if (!rep || rep->type != REDIS_REPLY_NIL)
        return rep;
    freeReplyObject(rep);
    if (!rs->secret[0]) /* started while Redis was down: the jobs module may have created one since */
        read_file(rs);
    if (!rs->secret[0]) { /* first start on an empty data dir */
        unsigned char raw[32];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(rs->secret, sizeof rs->secret, raw, sizeof raw);
    }
    rep = ld_redis_cmdv(rs->r, err, "SET", KEY, rs->secret, "NX", NULL);
    if (rep)
        freeReplyObject(rep);
    return rep ? ld_redis_cmdv(rs->r, err, "GET", KEY, NULL) : NULL;
}

static ld_err sync_locked(rstore *rs, ld_error *err)
{
    if (!rs->secret_path[0] || !ld_redis_up(rs->r))
        return LD_OK;
    redisReply *rep = cluster_secret(rs, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    ld_err rc = LD_OK;
    if (rep->type != REDIS_REPLY_STRING || !valid(rep->str, rep->len)) {
        rc = ld_error_set(err, LD_ERR_INTERNAL, "Redis key " KEY " must hold 32..64 characters");
    } else if (strcmp(rep->str, rs->secret) || !rs->secret_on_disk) {
        char line[80];
        int n = snprintf(line, sizeof line, "%s\n", rep->str);
        if (ld_fs_write_atomic(rs->secret_path, line, (size_t)n, 0600)) {
            rc = ld_error_set(err, LD_ERR_INTERNAL, "Cannot write %s: %s", rs->secret_path, strerror(errno));
        } else {
            if (rs->secret_on_disk) /* receivers must switch: say so loudly */
                ld_log(LD_LOG_WARNING,
                       "store (redis): the cluster's webhook secret (" KEY
                       ") changed; %s now holds it and "
                       "deliveries are signed with it",
                       rs->secret_path);
            else
                ld_log(LD_LOG_INFO, "store (redis): %s now holds the cluster-wide webhook secret", rs->secret_path);
            snprintf(rs->secret, sizeof rs->secret, "%s", rep->str);
            rs->secret_on_disk = true;
        }
    }
    freeReplyObject(rep);
    return rc;
}

ld_err ld_store_redis_secret_init(ld_store *s, const char *data_dir, ld_error *err)
{
    rstore *rs = (rstore *)s;
    if (!ld_store_redis_conn(s) || !data_dir || !*data_dir)
        return LD_OK;
    pthread_mutex_lock(&rs->secret_mu);
    ld_err rc = LD_OK;
    if (snprintf(rs->secret_path, sizeof rs->secret_path, "%s/webhook.secret", data_dir) >=
        (int)sizeof rs->secret_path) {
        rs->secret_path[0] = '\0';
        rc = ld_error_set(err, LD_ERR_INTERNAL, "data dir path too long");
    } else if (ld_fs_mkdirs(data_dir, 0700)) {
        rc = ld_error_set(err, LD_ERR_INTERNAL, "Cannot create %s: %s", data_dir, strerror(errno));
    } else {
        read_file(rs);
        rc = sync_locked(rs, err);
    }
    pthread_mutex_unlock(&rs->secret_mu);
    return rc;
}

void ld_rs_secret_poll(rstore *rs)
{
    ld_error err = {0};
    pthread_mutex_lock(&rs->secret_mu);
    bool failed = sync_locked(rs, &err) == LD_ERR_INTERNAL;
    bool repeat = failed && !strcmp(err.msg, rs->secret_error);
    snprintf(rs->secret_error, sizeof rs->secret_error, "%s", failed ? err.msg : "");
    pthread_mutex_unlock(&rs->secret_mu);
    if (failed && !repeat) /* once per distinct problem, not every second */
        ld_log(LD_LOG_ERROR, "store (redis): webhook secret: %s; signing with the previous one", err.msg);
}
