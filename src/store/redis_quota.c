/* Quota reservations shared by the replicas: ld:r:<key_id>, a ZSET of
 * "<seconds>|<id>" scored by expiry. Checking a new reservation against
 * today's usage plus everyone's reservations is one script, so concurrent
 * requests on all replicas together pass the quota by at most the one
 * admitted last, as on one server. Expiry (the caller's TTL) frees the
 * reservations of a replica that crashed. */
#include <stdio.h>
#include <string.h>

#include "store/redis_store_internal.h"
#include "util/rand.h"

const char ld_rs_lua_quota_reserve[] =
    "local rk, uk = KEYS[1], KEYS[2]\n"
    "local quota, ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', rk, '-inf', now)\n"
    "local total = tonumber(redis.call('GET', uk) or '0')\n"
    "for _, m in ipairs(redis.call('ZRANGE', rk, 0, -1)) do\n"
    "  total = total + (tonumber(string.match(m, '^[^|]+')) or 0)\n"
    "end\n"
    "if total >= quota then return 0 end\n"
    "redis.call('ZADD', rk, now + ttl, ARGV[4])\n"
    "if redis.call('PTTL', rk) < ttl then redis.call('PEXPIRE', rk, ttl) end\n"
    "return 1\n";

/* Same expiry, new seconds; nothing if it expired meanwhile. */
const char ld_rs_lua_quota_resize[] =
    "local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if not exp then return 0 end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('ZADD', KEYS[1], exp, ARGV[2])\n"
    "return 1\n";

static bool args_ok(const char *key_id) { return key_id && *key_id && strlen(key_id) <= LD_STORE_SUBJECT_MAX; }

static void member(char *out, const char *id, double seconds)
{
    snprintf(out, LD_STORE_RES_MAX, "%.3f|%s", seconds > 0 ? seconds : 0, id);
}

ld_err ld_rs_quota_reserve(ld_store *s, const char *key_id, const char *day, double quota_s, double seconds,
                           int64_t ttl_ms, int64_t now_ms, char *res, bool *admitted, bool *shared, ld_error *err)
{
    rstore *rs = (rstore *)s;
    *shared = false;
    *admitted = true;
    if (!args_ok(key_id) || !day || strlen(day) != 10 || ttl_ms < 1 || !(seconds < 1e9))
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad reservation arguments");
    char rk[160], uk[160], quota[40], ttl[24], now[24], id[32], m[LD_STORE_RES_MAX];
    ld_rs_key(rk, sizeof rk, "r", key_id, NULL);
    ld_rs_key(uk, sizeof uk, "u", key_id, day);
    snprintf(quota, sizeof quota, "%.17g", quota_s);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    ld_rand_id("res_", id, sizeof id);
    member(m, id, seconds);
    const char *argv[] = {rk, uk, quota, ttl, now, m};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_quota_reserve, 2, 6, argv, err);
    if (!rep)
        return ld_rs_fallback(rs) ? LD_OK : LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_INTEGER) {
        ld_redis_mark_down(rs->r, rep->str ? rep->str : "unexpected reply to the reservation script");
        freeReplyObject(rep);
        return ld_rs_fallback(rs) ? LD_OK : ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    }
    *shared = true;
    *admitted = rep->integer == 1;
    if (*admitted)
        snprintf(res, LD_STORE_RES_MAX, "%s", m);
    freeReplyObject(rep);
    return LD_OK;
}

void ld_rs_quota_resize(ld_store *s, const char *key_id, char *res, double seconds)
{
    rstore *rs = (rstore *)s;
    const char *bar = res ? strchr(res, '|') : NULL;
    if (!args_ok(key_id) || !bar)
        return;
    char rk[160], m[LD_STORE_RES_MAX];
    ld_rs_key(rk, sizeof rk, "r", key_id, NULL);
    member(m, bar + 1, seconds);
    const char *argv[] = {rk, res, m};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_quota_resize, 1, 3, argv, NULL);
    if (!rep)
        return; /* best effort: the smaller reservation stays, its release still matches */
    bool ok = rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    if (ok)
        snprintf(res, LD_STORE_RES_MAX, "%s", m);
}

void ld_rs_quota_unreserve(ld_store *s, const char *key_id, const char *res)
{
    rstore *rs = (rstore *)s;
    if (!args_ok(key_id) || !res || !*res)
        return;
    char rk[160];
    ld_rs_key(rk, sizeof rk, "r", key_id, NULL);
    ld_rs_zrem(rs, rk, res);
}
