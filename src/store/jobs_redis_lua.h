/* Lua scripts of the Redis job store (included by jobs_redis.c only). Each
 * is one atomic step; together they keep the job hash ld:job:<id> and its
 * indexes consistent:
 *   ld:jobs:queued   ZSET id by created_ms (claim order within a key)
 *   ld:jobs:key_started HASH key_id -> when its last job was claimed (keys take turns)
 *   ld:jobs:claims   ZSET id by claim expiry (Redis clock, ms)
 *   ld:jobs:state:<s> SET of ids per state (counts)
 *   ld:jobs:key:<k>  ZSET id by created_ms (listing)
 *   ld:jobs:due      ZSET id by next delivery attempt (pending deliveries)
 *   ld:jobs:finished ZSET id by finished_ms (purge)
 *   ld:jobaudio:<id> uploaded audio until the job finishes */
#ifndef LD_STORE_JOBS_REDIS_LUA_H
#define LD_STORE_JOBS_REDIS_LUA_H

#define LUA_NOW \
    "local t = redis.call('TIME')\nlocal clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* ARGV: id, state, key_id, created_ms, finished_ms, delivery, next_attempt_ms, then field/value pairs. */
static const char lua_insert[] =
    "local id, st = ARGV[1], ARGV[2]\n"
    "local jk = 'ld:job:' .. id\n"
    "if redis.call('EXISTS', jk) == 1 then return 0 end\n"
    "for i = 8, #ARGV, 2 do redis.call('HSET', jk, ARGV[i], ARGV[i + 1]) end\n"
    "redis.call('SADD', 'ld:jobs:state:' .. st, id)\n"
    "redis.call('ZADD', 'ld:jobs:key:' .. ARGV[3], ARGV[4], id)\n"
    "if st == 'queued' then redis.call('ZADD', 'ld:jobs:queued', ARGV[4], id)\n"
    "elseif st ~= 'processing' then redis.call('ZADD', 'ld:jobs:finished', ARGV[5], id) end\n"
    "if ARGV[6] == '1' then redis.call('ZADD', 'ld:jobs:due', ARGV[7], id) end\n"
    "return 1\n";

/* ARGV: now_ms (caller), lease_ms. Returns {id or '', reclaimed ids joined by ' '}. */
static const char lua_claim[] = LUA_NOW
    "local reclaimed = {}\n"
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', 'ld:jobs:claims', '-inf', clock, 'LIMIT', 0, 32)) do\n"
    "  redis.call('ZREM', 'ld:jobs:claims', id)\n"
    "  local jk = 'ld:job:' .. id\n"
    "  if redis.call('HGET', jk, 'state') == 'processing' then\n"
    "    redis.call('HSET', jk, 'state', 'queued', 'progress', '0')\n"
    "    redis.call('SMOVE', 'ld:jobs:state:processing', 'ld:jobs:state:queued', id)\n"
    "    redis.call('ZADD', 'ld:jobs:queued', redis.call('HGET', jk, 'created_ms') or 0, id)\n"
    "    reclaimed[#reclaimed + 1] = id\n"
    "  end\n"
    "end\n"
    /* Keys take turns: among the 64 oldest queued jobs, the one whose key's
     * last job started longest ago (ld:jobs:key_started), oldest first. */
    "local best, best_at, best_key = nil, nil, nil\n"
    "for _, id in ipairs(redis.call('ZRANGE', 'ld:jobs:queued', 0, 63)) do\n"
    "  local jk = 'ld:job:' .. id\n"
    "  if redis.call('HGET', jk, 'state') ~= 'queued' then\n"
    "    redis.call('ZREM', 'ld:jobs:queued', id)\n"
    "  else\n"
    "    local k = redis.call('HGET', jk, 'key_id') or ''\n"
    "    local at = tonumber(redis.call('HGET', 'ld:jobs:key_started', k) or '0')\n"
    "    if best == nil or at < best_at then best, best_at, best_key = id, at, k end\n"
    "  end\n"
    "end\n"
    "if best then\n"
    "  local jk = 'ld:job:' .. best\n"
    "  redis.call('ZREM', 'ld:jobs:queued', best)\n"
    "  redis.call('HSET', jk, 'state', 'processing', 'started_ms', ARGV[1], 'progress', '0')\n"
    "  redis.call('HINCRBY', jk, 'runs', 1)\n"
    "  redis.call('HSET', 'ld:jobs:key_started', best_key, ARGV[1])\n"
    "  redis.call('SMOVE', 'ld:jobs:state:queued', 'ld:jobs:state:processing', best)\n"
    "  redis.call('ZADD', 'ld:jobs:claims', clock + tonumber(ARGV[2]), best)\n"
    "  return {best, table.concat(reclaimed, ' ')}\n"
    "end\n"
    "return {'', table.concat(reclaimed, ' ')}\n";

/* ARGV: lease_ms, ids... Extends the claims still held; returns the ids lost. */
static const char lua_renew[] = LUA_NOW
    "local lost = {}\n"
    "for i = 2, #ARGV do\n"
    "  if redis.call('ZSCORE', 'ld:jobs:claims', ARGV[i]) then\n"
    "    redis.call('ZADD', 'ld:jobs:claims', clock + tonumber(ARGV[1]), ARGV[i])\n"
    "  else lost[#lost + 1] = ARGV[i] end\n"
    "end\n"
    "return lost\n";

/* ARGV: id */
static const char lua_requeue[] =
    "local id = ARGV[1]\n"
    "local jk = 'ld:job:' .. id\n"
    "redis.call('ZREM', 'ld:jobs:claims', id)\n"
    "if redis.call('HGET', jk, 'state') ~= 'processing' then return 0 end\n"
    "redis.call('HSET', jk, 'state', 'queued', 'progress', '0')\n"
    "redis.call('SMOVE', 'ld:jobs:state:processing', 'ld:jobs:state:queued', id)\n"
    "redis.call('ZADD', 'ld:jobs:queued', redis.call('HGET', jk, 'created_ms') or 0, id)\n"
    "return 1\n";

/* ARGV: id, progress */
static const char lua_progress[] =
    "local jk = 'ld:job:' .. ARGV[1]\n"
    "if redis.call('HGET', jk, 'state') ~= 'processing' then return 0 end\n"
    "redis.call('HSET', jk, 'progress', ARGV[2])\n"
    "return 1\n";

/* ARGV: id, state, has_result, result, has_error, error, now_ms */
static const char lua_finish[] =
    "local id, new, now = ARGV[1], ARGV[2], ARGV[7]\n"
    "local jk = 'ld:job:' .. id\n"
    "local st = redis.call('HGET', jk, 'state')\n"
    "if st ~= 'queued' and st ~= 'processing' then return 0 end\n"
    "redis.call('HSET', jk, 'state', new, 'finished_ms', now, 'next_attempt_ms', now)\n"
    "if ARGV[3] == '1' then redis.call('HSET', jk, 'result_json', ARGV[4]) else redis.call('HDEL', jk, 'result_json') end\n"
    "if ARGV[5] == '1' then redis.call('HSET', jk, 'error_json', ARGV[6]) else redis.call('HDEL', jk, 'error_json') end\n"
    "if new == 'completed' then redis.call('HSET', jk, 'progress', '1') end\n"
    "if redis.call('HEXISTS', jk, 'callback_url') == 1 and new ~= 'cancelled' then\n"
    "  redis.call('HSET', jk, 'delivery', '1')\n"
    "  redis.call('ZADD', 'ld:jobs:due', now, id)\n"
    "else redis.call('HSET', jk, 'delivery', '0') end\n"
    "redis.call('SMOVE', 'ld:jobs:state:' .. st, 'ld:jobs:state:' .. new, id)\n"
    "redis.call('ZREM', 'ld:jobs:queued', id)\n"
    "redis.call('ZREM', 'ld:jobs:claims', id)\n"
    "redis.call('ZADD', 'ld:jobs:finished', now, id)\n"
    "redis.call('DEL', 'ld:jobaudio:' .. id)\n"
    "return 1\n";

/* ARGV: id, key_id, now_ms. Returns the state after the call, or '' when absent/another key's. */
static const char lua_cancel[] =
    "local id = ARGV[1]\n"
    "local jk = 'ld:job:' .. id\n"
    "local st = redis.call('HGET', jk, 'state')\n"
    "if not st or redis.call('HGET', jk, 'key_id') ~= ARGV[2] then return '' end\n"
    "if st == 'queued' then\n"
    "  redis.call('HSET', jk, 'state', 'cancelled', 'finished_ms', ARGV[3], 'cancel_requested', '1')\n"
    "  redis.call('SMOVE', 'ld:jobs:state:queued', 'ld:jobs:state:cancelled', id)\n"
    "  redis.call('ZREM', 'ld:jobs:queued', id)\n"
    "  redis.call('ZADD', 'ld:jobs:finished', ARGV[3], id)\n"
    "  redis.call('DEL', 'ld:jobaudio:' .. id)\n"
    "  return 'cancelled'\n"
    "elseif st == 'processing' then redis.call('HSET', jk, 'cancel_requested', '1') end\n"
    "return st\n";

/* ARGV: now_ms, limit, lease_ms. Due deliveries, each leased for lease_ms so
 * another replica's deliverer does not send the same webhook meanwhile. */
static const char lua_due[] =
    "local ids = redis.call('ZRANGEBYSCORE', 'ld:jobs:due', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))\n"
    "for _, id in ipairs(ids) do redis.call('ZADD', 'ld:jobs:due', tonumber(ARGV[1]) + tonumber(ARGV[3]), id) end\n"
    "return ids\n";

/* ARGV: id, attempts_json, delivery, next_attempt_ms, delivered_ms */
static const char lua_attempt[] =
    "local jk = 'ld:job:' .. ARGV[1]\n"
    "if redis.call('EXISTS', jk) == 0 then return 0 end\n"
    "redis.call('HSET', jk, 'attempts_json', ARGV[2], 'delivery', ARGV[3], 'next_attempt_ms', ARGV[4],"
    " 'delivered_ms', ARGV[5])\n"
    "if ARGV[3] == '1' then redis.call('ZADD', 'ld:jobs:due', ARGV[4], ARGV[1])\n"
    "else redis.call('ZREM', 'ld:jobs:due', ARGV[1]) end\n"
    "return 1\n";

/* ARGV: id, before_ms. Deletes a finished job older than before_ms. */
static const char lua_purge[] =
    "local id = ARGV[1]\n"
    "local jk = 'ld:job:' .. id\n"
    "local h = redis.call('HMGET', jk, 'state', 'finished_ms', 'key_id')\n"
    "if not h[1] then redis.call('ZREM', 'ld:jobs:finished', id); return 0 end\n"
    "if h[1] == 'queued' or h[1] == 'processing' or tonumber(h[2]) >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('DEL', jk, 'ld:jobaudio:' .. id)\n"
    "redis.call('SREM', 'ld:jobs:state:' .. h[1], id)\n"
    "redis.call('ZREM', 'ld:jobs:key:' .. h[3], id)\n"
    "redis.call('ZREM', 'ld:jobs:due', id)\n"
    "redis.call('ZREM', 'ld:jobs:finished', id)\n"
    "return 1\n";

#endif
