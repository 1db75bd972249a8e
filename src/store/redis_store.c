/* Redis backend of ld_store_ops: every operation is one Lua script (or one
 * atomic command), so replicas sharing the Redis never race on a
 * read-modify-write. Windows and leases use caller-supplied times like the
 * embedded store, so the arithmetic is the same and testable. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_store_internal.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/time.h"

#define FALLBACK_LOG_EVERY_MS 10000

/* Trim, count, add: exact sliding window. Hits at t <= now - window have left.
 * A hit is stamped max(now, newest) so the set stays ordered when clocks of
 * replicas differ or step back (same rule as the embedded ring). A lowered
 * limit keeps the newest `limit` hits, as the embedded ring does. */
static const char lua_window[] =
    "local key = KEYS[1]\n"
    "local limit, win, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)\n"
    "local n = redis.call('ZCARD', key)\n"
    "if n > limit then redis.call('ZREMRANGEBYRANK', key, 0, n - limit - 1); n = limit end\n"
    "local allowed = 0\n"
    "if n < limit then\n"
    "  allowed = 1\n"
    "  if ARGV[4] == '1' then\n"
    "    local score = now\n"
    "    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')\n"
    "    if newest[2] and tonumber(newest[2]) > now then score = tonumber(newest[2]) end\n"
    "    redis.call('ZADD', key, score, ARGV[5])\n"
    "    n = n + 1\n"
    "    redis.call('PEXPIRE', key, math.floor(score - now + win) + 1)\n"
    "  end\n"
    "end\n"
    "local oldest = '0'\n"
    "if n > 0 then oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] end\n"
    "return {allowed, n, oldest}\n";

/* Leases are scored by expiry; expired ones (expiry <= now) are dropped first,
 * which is how a crashed replica's slots come back. */
static const char lua_lease_acquire[] =
    "local key = KEYS[1]\n"
    "local limit, ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "local n = redis.call('ZCARD', key)\n"
    "if n >= limit then return {0, n} end\n"
    "redis.call('ZADD', key, now + ttl, ARGV[4])\n"
    "if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end\n"
    "return {1, n + 1}\n";

static const char lua_lease_renew[] =
    "local key = KEYS[1]\n"
    "local ttl, now = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "if not redis.call('ZSCORE', key, ARGV[3]) then return 0 end\n"
    "redis.call('ZADD', key, now + ttl, ARGV[3])\n"
    "if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end\n"
    "return 1\n";

static const char lua_usage_add[] =
    "local v = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return v\n";

static const char lua_revoke[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('INCR', KEYS[2]) end\n"
    "return 1\n";

static const char lua_key_put[] =
    "redis.call('HSET', KEYS[1], 'name', ARGV[2], 'issuer', ARGV[3], 'issued_at', ARGV[4], 'expires_at', ARGV[5],"
    " 'rpm', ARGV[6], 'concurrency', ARGV[7], 'hours_per_day', ARGV[8])\n"
    "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
    "return 1\n";

/* Issued-key records with their revocation time, in issue order (ARGV[1]:
 * one id, or all when absent). Flat: 9 strings per key. */
static const char lua_key_read[] =
    "local ids\n"
    "if ARGV[1] then ids = {ARGV[1]} else ids = redis.call('ZRANGE', KEYS[1], 0, -1) end\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local h = redis.call('HMGET', 'ld:key:' .. id, 'name', 'issuer', 'issued_at', 'expires_at', 'rpm',"
    " 'concurrency', 'hours_per_day')\n"
    "  if h[3] then\n"
    "    out[#out + 1] = id\n"
    "    for j = 1, 7 do out[#out + 1] = h[j] or '' end\n"
    "    out[#out + 1] = redis.call('HGET', KEYS[2], id) or '0'\n"
    "  end\n"
    "end\n"
    "return out\n";

static rstore *RS(ld_store *s) { return (rstore *)s; }

void ld_rs_key(char *out, size_t outsz, const char *kind, const char *a, const char *b)
{
    if (b)
        snprintf(out, outsz, "ld:%s:%s:%s", kind, a, b);
    else
        snprintf(out, outsz, "ld:%s:%s", kind, a);
}

static bool subject_ok(const char *subject)
{
    return subject && *subject && strlen(subject) <= LD_STORE_SUBJECT_MAX;
}

bool ld_rs_fallback(rstore *rs)
{
    if (!rs->failure_open)
        return false;
    int64_t now = (int64_t)(ld_time_mono() * 1000);
    int64_t last = atomic_load(&rs->fallback_log_ms);
    if ((last == 0 || now - last >= FALLBACK_LOG_EVERY_MS) &&
        atomic_compare_exchange_strong(&rs->fallback_log_ms, &last, now))
        ld_log(LD_LOG_ERROR,
               "%s: serving PER-REPLICA limits (--redis-failure open): rates, concurrency and quotas are not "
               "shared until Redis is back",
               LD_REDIS_UNAVAILABLE_MSG);
    return true;
}

static ld_err script_error(redisReply *rep, ld_error *err, const char *what)
{
    ld_log(LD_LOG_ERROR, "store (redis): %s: %s", what, rep && rep->str ? rep->str : "unexpected reply");
    if (rep)
        freeReplyObject(rep);
    return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
}

static ld_err window(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms, bool record,
                     ld_window *out, ld_error *err)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject) || limit < 1 || limit > LD_STORE_MEM_MAX_LIMIT || window_ms < 1)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad window arguments");
    char key[160], lim[24], win[24], now[24], member[48];
    ld_rs_key(key, sizeof key, "w", subject, NULL);
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(win, sizeof win, "%lld", (long long)window_ms);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    /* Unique per hit: equal timestamps must not collapse into one member. */
    int m = snprintf(member, sizeof member, "%lld:", (long long)now_ms);
    ld_rand_id("", member + m, sizeof member - (size_t)m);
    const char *argv[] = {key, lim, win, now, record ? "1" : "0", member};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_window, 1, 6, argv, err);
    if (!rep)
        return ld_rs_fallback(rs)
                   ? ld_store_mem_window(rs->mem, subject, limit, window_ms, now_ms, record, out, err)
                   : LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return script_error(rep, err, "window");
    out->allowed = ld_redis_int(rep->element[0], 0) == 1;
    out->count = (int)ld_redis_int(rep->element[1], 0);
    out->oldest_ms = (int64_t)ld_redis_double(rep->element[2], 0);
    freeReplyObject(rep);
    return LD_OK;
}

static ld_err window_hit(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                         ld_window *out, ld_error *err)
{
    return window(s, subject, limit, window_ms, now_ms, true, out, err);
}

static ld_err window_peek(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                          ld_window *out, ld_error *err)
{
    return window(s, subject, limit, window_ms, now_ms, false, out, err);
}

static void window_undo(ld_store *s, const char *subject)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject))
        return;
    char key[160];
    ld_rs_key(key, sizeof key, "w", subject, NULL);
    redisReply *rep = ld_redis_cmdv(rs->r, NULL, "ZPOPMAX", key, NULL);
    if (rep)
        freeReplyObject(rep);
    else if (rs->failure_open)
        ld_store_mem_window_undo(rs->mem, subject);
}

static ld_err lease_acquire(ld_store *s, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                            char *lease_id, bool *acquired, int *held, ld_error *err)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject) || limit < 1 || limit > LD_STORE_MEM_MAX_LIMIT || ttl_ms < 1)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad lease arguments");
    char key[160], lim[24], ttl[24], now[24], id[32];
    ld_rs_key(key, sizeof key, "l", subject, NULL);
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    ld_rand_id("lease_", id, sizeof id);
    const char *argv[] = {key, lim, ttl, now, id};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_lease_acquire, 1, 5, argv, err);
    if (!rep)
        return ld_rs_fallback(rs) ? ld_store_mem_lease_acquire(rs->mem, subject, limit, ttl_ms, now_ms, lease_id,
                                                               acquired, held, err)
                                  : LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
        return script_error(rep, err, "lease");
    *acquired = ld_redis_int(rep->element[0], 0) == 1;
    if (held)
        *held = (int)ld_redis_int(rep->element[1], 0);
    if (*acquired)
        snprintf(lease_id, 32, "%s", id);
    freeReplyObject(rep);
    return LD_OK;
}

static ld_err lease_renew(ld_store *s, const char *subject, const char *lease_id, int64_t ttl_ms, int64_t now_ms,
                          ld_error *err)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject) || !lease_id)
        return ld_error_set(err, LD_ERR_NOT_FOUND, "lease not found");
    char key[160], ttl[24], now[24];
    ld_rs_key(key, sizeof key, "l", subject, NULL);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *argv[] = {key, ttl, now, lease_id};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_lease_renew, 1, 4, argv, err);
    if (!rep)
        return ld_rs_fallback(rs) ? ld_store_mem_lease_renew(rs->mem, subject, lease_id, ttl_ms, now_ms, err)
                                  : LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_INTEGER)
        return script_error(rep, err, "lease renew");
    bool found = rep->integer == 1;
    freeReplyObject(rep);
    if (!found && rs->failure_open) /* a lease taken from the fallback during an outage */
        return ld_store_mem_lease_renew(rs->mem, subject, lease_id, ttl_ms, now_ms, err);
    return found ? LD_OK : ld_error_set(err, LD_ERR_NOT_FOUND, "lease not found");
}

/* Bounds the retry list during a very long outage; a dropped entry costs a
 * slot only until its lease expires, as a crashed replica's would. */
#define MAX_PENDING_RELEASES 65536

void ld_rs_release_later(rstore *rs, const char *key, const char *member)
{
    pthread_mutex_lock(&rs->rel_mu);
    if (rs->nreleases == rs->releases_cap && rs->releases_cap < MAX_PENDING_RELEASES) {
        size_t cap = rs->releases_cap ? rs->releases_cap * 2 : 16;
        rs_release *grown = realloc(rs->releases, cap * sizeof *grown);
        if (grown) {
            rs->releases = grown;
            rs->releases_cap = cap;
        }
    }
    if (rs->nreleases < rs->releases_cap) {
        rs_release *r = &rs->releases[rs->nreleases++];
        snprintf(r->key, sizeof r->key, "%s", key);
        snprintf(r->member, sizeof r->member, "%s", member);
    } else {
        ld_log(LD_LOG_ERROR, "store (redis): too many releases waiting for Redis; %s stays held until it expires",
               member);
    }
    pthread_mutex_unlock(&rs->rel_mu);
}

/* Background thread, Redis up: ZREM is idempotent, so a release that reached
 * Redis although its reply was lost is harmless to repeat. */
static void releases_flush(rstore *rs)
{
    while (rs->r && ld_redis_up(rs->r)) {
        rs_release r;
        pthread_mutex_lock(&rs->rel_mu);
        bool any = rs->nreleases > 0;
        if (any)
            r = rs->releases[--rs->nreleases];
        pthread_mutex_unlock(&rs->rel_mu); /* request threads may queue meanwhile */
        if (!any)
            return;
        redisReply *rep = ld_redis_cmdv(rs->r, NULL, "ZREM", r.key, r.member, NULL);
        if (!rep) { /* down again: keep it for the next try */
            ld_rs_release_later(rs, r.key, r.member);
            return;
        }
        freeReplyObject(rep);
        ld_log(LD_LOG_INFO, "store (redis): released %s after the outage", r.member);
    }
}

static void lease_release(ld_store *s, const char *subject, const char *lease_id)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject) || !lease_id)
        return;
    /* A lease taken from the fallback during an outage never was in Redis. */
    if (rs->failure_open && ld_store_mem_lease_release(rs->mem, subject, lease_id))
        return;
    char key[160];
    ld_rs_key(key, sizeof key, "l", subject, NULL);
    ld_rs_zrem(rs, key, lease_id);
}

void ld_rs_zrem(rstore *rs, const char *key, const char *member)
{
    redisReply *rep = ld_redis_cmdv(rs->r, NULL, "ZREM", key, member, NULL);
    if (rep)
        freeReplyObject(rep);
    else
        ld_rs_release_later(rs, key, member);
}

static int lease_count(ld_store *s, const char *subject, int64_t now_ms)
{
    rstore *rs = RS(s);
    if (!subject_ok(subject))
        return 0;
    char key[160], min[32];
    ld_rs_key(key, sizeof key, "l", subject, NULL);
    snprintf(min, sizeof min, "(%lld", (long long)now_ms);
    redisReply *rep = ld_redis_cmdv(rs->r, NULL, "ZCOUNT", key, min, "+inf", NULL);
    if (!rep)
        return rs->failure_open ? ld_store_mem_lease_count(rs->mem, subject, now_ms) : 0;
    int n = (int)ld_redis_int(rep, 0);
    freeReplyObject(rep);
    return n;
}

/* ---- issued-key records ---- */

static ld_err key_put(ld_store *s, const ld_store_key *k, ld_error *err)
{
    rstore *rs = RS(s);
    if (!k->key_id[0] || strlen(k->key_id) >= sizeof k->key_id)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "invalid key id");
    char key[160], ia[24], ea[24], rpm[16], conc[16], hpd[40];
    ld_rs_key(key, sizeof key, "key", k->key_id, NULL);
    snprintf(ia, sizeof ia, "%lld", (long long)k->issued_at);
    snprintf(ea, sizeof ea, "%lld", (long long)k->expires_at);
    snprintf(rpm, sizeof rpm, "%d", k->rpm);
    snprintf(conc, sizeof conc, "%d", k->concurrency);
    snprintf(hpd, sizeof hpd, "%.17g", k->hours_per_day);
    const char *argv[] = {key, "ld:keys", k->key_id, k->name, k->issuer, ia, ea, rpm, conc, hpd};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_key_put, 2, 10, argv, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type == REDIS_REPLY_ERROR)
        return script_error(rep, err, "record key");
    freeReplyObject(rep);
    return LD_OK;
}

static const char *el(const redisReply *rep, size_t i)
{
    return i < rep->elements && rep->element[i]->type == REDIS_REPLY_STRING ? rep->element[i]->str : "";
}

static ld_err key_read(rstore *rs, const char *one, ld_store_key **out, size_t *n, ld_error *err)
{
    *out = NULL;
    *n = 0;
    const char *argv[] = {"ld:keys", "ld:revoked", one};
    redisReply *rep = ld_redis_eval(rs->r, rs->s_key_read, 2, one ? 3 : 2, argv, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 9)
        return script_error(rep, err, "read keys");
    size_t count = rep->elements / 9;
    ld_store_key *keys = count ? calloc(count, sizeof *keys) : NULL;
    if (count && !keys) {
        freeReplyObject(rep);
        return ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        size_t b = i * 9;
        ld_store_key *k = &keys[i];
        snprintf(k->key_id, sizeof k->key_id, "%s", el(rep, b));
        snprintf(k->name, sizeof k->name, "%s", el(rep, b + 1));
        snprintf(k->issuer, sizeof k->issuer, "%s", el(rep, b + 2));
        k->issued_at = strtoll(el(rep, b + 3), NULL, 10);
        k->expires_at = strtoll(el(rep, b + 4), NULL, 10);
        k->rpm = atoi(el(rep, b + 5));
        k->concurrency = atoi(el(rep, b + 6));
        k->hours_per_day = strtod(el(rep, b + 7), NULL);
        k->revoked_at = strtoll(el(rep, b + 8), NULL, 10);
    }
    freeReplyObject(rep);
    *out = keys;
    *n = count;
    return LD_OK;
}

static ld_err key_get(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err)
{
    *found = false;
    if (!key_id || !*key_id)
        return LD_OK;
    ld_store_key *keys;
    size_t n;
    ld_err rc = key_read(RS(s), key_id, &keys, &n, err);
    if (!rc && n == 1) {
        *out = keys[0];
        *found = true;
    }
    free(keys);
    return rc;
}

static ld_err key_list(ld_store *s, ld_store_key **out, size_t *n, ld_error *err)
{
    return key_read(RS(s), NULL, out, n, err);
}

/* ---- lifecycle ---- */

static void *background(void *arg)
{
    rstore *rs = arg;
    int64_t last_ping = 0;
    pthread_mutex_lock(&rs->mu);
    while (!rs->stopping) {
        pthread_mutex_unlock(&rs->mu);
        int64_t now = (int64_t)(ld_time_mono() * 1000);
        bool force = now - last_ping >= 1000; /* latency for /health, and early detection */
        if (force)
            last_ping = now;
        if (ld_redis_probe(rs->r, force)) {
            releases_flush(rs);
            ld_rs_usage_flush(rs);
            if (force)
                ld_rs_secret_poll(rs);
            ld_rs_revocations_poll(rs, false);
        }
        pthread_mutex_lock(&rs->mu);
        struct timespec ts = ld_time_deadline(LD_REDIS_REVOKE_POLL_MS / 2);
        if (!rs->stopping)
            pthread_cond_timedwait(&rs->cv, &rs->mu, &ts);
    }
    pthread_mutex_unlock(&rs->mu);
    return NULL;
}

static void rs_close(ld_store *s)
{
    rstore *rs = RS(s);
    if (rs->thread_started) {
        pthread_mutex_lock(&rs->mu);
        rs->stopping = true;
        pthread_cond_signal(&rs->cv);
        pthread_mutex_unlock(&rs->mu);
        pthread_join(rs->thread, NULL);
    }
    releases_flush(rs);    /* last chance for slots released during an outage */
    ld_rs_usage_flush(rs); /* and for usage counted during one */
    free(rs->releases);
    pthread_mutex_destroy(&rs->rel_mu);
    pthread_mutex_destroy(&rs->secret_mu);
    sodium_memzero(rs->secret, sizeof rs->secret);
    ld_rs_usage_free(rs);
    ld_rs_revocations_free(rs);
    ld_redis_script *scripts[] = {rs->s_window,    rs->s_lease_acquire, rs->s_lease_renew,
                                  rs->s_usage_add, rs->s_revoke,        rs->s_key_put,
                                  rs->s_key_read,  rs->s_quota_reserve, rs->s_quota_resize};
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++)
        ld_redis_script_free(scripts[i]);
    ld_store_mem_free(rs->mem);
    ld_redis_free(rs->r);
    pthread_mutex_destroy(&rs->mu);
    pthread_cond_destroy(&rs->cv);
    free(rs);
}

static const ld_store_ops redis_ops = {
    .name = "redis",
    .close = rs_close,
    .window_hit = window_hit,
    .window_peek = window_peek,
    .window_undo = window_undo,
    .lease_acquire = lease_acquire,
    .lease_renew = lease_renew,
    .lease_release = lease_release,
    .lease_count = lease_count,
    .quota_reserve = ld_rs_quota_reserve,
    .quota_resize = ld_rs_quota_resize,
    .quota_unreserve = ld_rs_quota_unreserve,
    .usage_add = ld_rs_usage_add,
    .usage_get = ld_rs_usage_get,
    .revoke = ld_rs_revoke,
    .is_revoked = ld_rs_is_revoked,
    .key_put = key_put,
    .key_get = key_get,
    .key_list = key_list,
    .mark_once = ld_rs_mark_once,
};

ld_redis *ld_store_redis_conn(ld_store *s) { return s && s->ops == &redis_ops ? RS(s)->r : NULL; }

bool ld_store_redis_failure_open(ld_store *s) { return s && s->ops == &redis_ops && RS(s)->failure_open; }

#define STARTUP_WAIT_MS 3000

ld_store *ld_store_open_redis(const char *url, bool failure_open, ld_error *err)
{
    if (sodium_init() < 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: libsodium failed to initialise");
        return NULL;
    }
    ld_redis_config cfg;
    if (ld_redis_parse_url(url, &cfg, err))
        return NULL;
    rstore *rs = calloc(1, sizeof *rs);
    if (!rs) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
        return NULL;
    }
    rs->base.ops = &redis_ops;
    rs->failure_open = failure_open;
    pthread_mutex_init(&rs->mu, NULL);
    pthread_cond_init(&rs->cv, NULL);
    pthread_rwlock_init(&rs->rev_lock, NULL);
    pthread_mutex_init(&rs->rev_refresh_mu, NULL);
    pthread_mutex_init(&rs->usage_mu, NULL);
    pthread_mutex_init(&rs->rel_mu, NULL);
    pthread_mutex_init(&rs->secret_mu, NULL);
    rs->r = ld_redis_new(&cfg, err);
    rs->mem = ld_store_mem_new();
    rs->s_window = ld_redis_script_new(lua_window);
    rs->s_lease_acquire = ld_redis_script_new(lua_lease_acquire);
    rs->s_lease_renew = ld_redis_script_new(lua_lease_renew);
    rs->s_usage_add = ld_redis_script_new(lua_usage_add);
    rs->s_revoke = ld_redis_script_new(lua_revoke);
    rs->s_key_put = ld_redis_script_new(lua_key_put);
    rs->s_key_read = ld_redis_script_new(lua_key_read);
    rs->s_quota_reserve = ld_redis_script_new(ld_rs_lua_quota_reserve);
    rs->s_quota_resize = ld_redis_script_new(ld_rs_lua_quota_resize);
    if (!rs->r || !rs->mem || !rs->s_window || !rs->s_lease_acquire || !rs->s_lease_renew || !rs->s_usage_add ||
        !rs->s_revoke || !rs->s_key_put || !rs->s_key_read || !rs->s_quota_reserve || !rs->s_quota_resize ||
        ld_rs_usage_init(rs)) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
        rs_close(&rs->base);
        return NULL;
    }
    /* A replica that starts while Redis restarts waits a little rather than
     * failing at once; closed policy then refuses to start without it. */
    double deadline = ld_time_mono() + STARTUP_WAIT_MS / 1000.0;
    while (!ld_redis_probe(rs->r, false) && ld_time_mono() < deadline) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (ld_redis_up(rs->r)) {
        ld_rs_revocations_poll(rs, true);
    } else {
        ld_store_health_info h;
        ld_redis_health(rs->r, &h);
        if (!failure_open) {
            ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "%s at %s: %s", LD_REDIS_UNAVAILABLE_MSG, h.target,
                         h.last_error);
            rs_close(&rs->base);
            return NULL;
        }
        ld_log(LD_LOG_ERROR, "%s at %s: %s; starting with per-replica limits (--redis-failure open)",
               LD_REDIS_UNAVAILABLE_MSG, h.target, h.last_error);
    }
    if (pthread_create(&rs->thread, NULL, background, rs)) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: cannot start the Redis thread");
        rs_close(&rs->base);
        return NULL;
    }
    rs->thread_started = true;
    return &rs->base;
}
