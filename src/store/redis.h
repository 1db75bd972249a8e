/* Redis plumbing shared by the Redis limits store and the Redis job store
 * (internal to src/store/).
 *
 * ld_redis owns a small pool of hiredis connections with connect and command
 * timeouts, the Lua scripts (EVALSHA, EVAL when Redis lost its script cache),
 * and the up/down state: after a failure, request threads stop talking to
 * Redis at once (no thread waits on a dead server) and only the background
 * thread of the owner probes it again, with exponential backoff.
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: ld_redis_new returns an owned object (ld_redis_free); replies
 * returned by ld_redis_cmd/ld_redis_eval are owned by the caller
 * (freeReplyObject). Strings passed in are borrowed for the call. */
#ifndef LD_STORE_REDIS_H
#define LD_STORE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define LD_REDIS_MAX_ARGS 64
#define LD_REDIS_UNAVAILABLE_MSG "Shared state (Redis) unavailable"

/* Parsed connection settings. */
typedef struct {
    char host[256];
    int port;
    char username[128]; /* Redis 6 ACL user; "" = default user */
    char password[256];
    int db;
    int connect_timeout_ms; /* default 200 */
    int command_timeout_ms; /* default 200 */
} ld_redis_config;

/* Parses redis://[[user]:password@]host[:port][/db][?timeout_ms=N&connect_timeout_ms=N].
 * rediss:// is refused (hiredis 0.14 has no TLS): put a TLS tunnel next to the
 * replica and point redis:// at it. Percent-escapes in user/password are decoded. */
ld_err ld_redis_parse_url(const char *url, ld_redis_config *out, ld_error *err);

/* The URL to use from the environment: REDIS_URL, else REDIS_HOST (+ REDIS_PORT,
 * REDIS_USERNAME, REDIS_PASSWORD). Writes "" when neither is set. */
void ld_redis_url_from_env(char *out, size_t outsz);

typedef struct ld_redis ld_redis;

ld_redis *ld_redis_new(const ld_redis_config *cfg, ld_error *err);
void ld_redis_free(ld_redis *r);

/* One command (argv of NUL-terminated strings, or lengths in lens when
 * non-NULL). Returns the reply, or NULL when Redis is down or the command
 * failed at the connection level (err: SERVICE_UNAVAILABLE). A Redis error
 * reply (REDIS_REPLY_ERROR) is returned as a reply: the caller decides. */
redisReply *ld_redis_cmd(ld_redis *r, int argc, const char **argv, const size_t *lens, ld_error *err);
/* Same with printf-free convenience: a NULL-terminated list of strings. */
redisReply *ld_redis_cmdv(ld_redis *r, ld_error *err, ...) __attribute__((sentinel));

/* A registered Lua script (ld_redis_script) run with EVALSHA, falling back
 * to EVAL on NOSCRIPT. keys/args as in EVAL. */
typedef struct ld_redis_script ld_redis_script;
ld_redis_script *ld_redis_script_new(const char *lua); /* lua is borrowed (a string literal); NULL on OOM */
void ld_redis_script_free(ld_redis_script *s);
redisReply *ld_redis_eval(ld_redis *r, ld_redis_script *s, int nkeys, int argc, const char **argv, ld_error *err);

/* Several commands on one connection in one round trip (pipelining).
 * replies[i] receives each reply (caller frees each); returns 0, or -1 with
 * every reply NULL when the connection failed. */
int ld_redis_pipeline(ld_redis *r, int ncmds, const int *argcs, const char *const *const *argvs,
                      redisReply **replies, ld_error *err);

/* Slow operations (job audio chunks) get their own, longer command timeout. */
void ld_redis_set_slow_timeout(ld_redis *r, int ms);
redisReply *ld_redis_cmd_slow(ld_redis *r, int argc, const char **argv, const size_t *lens, ld_error *err);

/* State. ld_redis_up is cheap (an atomic read). ld_redis_probe pings Redis
 * when down and the backoff has elapsed (or always when up and `force`), and
 * updates the state and latency; returns whether Redis is up. Called by the
 * owner's background thread. */
bool ld_redis_up(ld_redis *r);
bool ld_redis_probe(ld_redis *r, bool force);
/* Marks Redis down after an error seen outside ld_redis (e.g. a protocol surprise). */
void ld_redis_mark_down(ld_redis *r, const char *why);
/* Health snapshot for /health/redis. */
void ld_redis_health(ld_redis *r, ld_store_health_info *out);
/* Bumped every time Redis comes back after being down (so owners can resync). */
uint64_t ld_redis_epoch(ld_redis *r);
const ld_redis_config *ld_redis_cfg(ld_redis *r);

/* Reply helpers: integer (or numeric string) value; NULL-safe. */
long long ld_redis_int(const redisReply *rep, long long dflt);
double ld_redis_double(const redisReply *rep, double dflt);

/* The Redis limits store's connection (for the job store to share it); NULL
 * for other backends. */
ld_redis *ld_store_redis_conn(ld_store *s);
/* Whether s is a Redis store with the open failure policy. */
bool ld_store_redis_failure_open(ld_store *s);
/* Every replica signs webhooks with the same secret, so a receiver can verify
 * deliveries whichever replica sent them: Redis' ld:webhook_secret (set with
 * SET NX by the first replica, from its data dir's secret or a fresh one) is
 * mirrored into <data_dir>/webhook.secret now and re-read every second
 * (redis_secret.c). No-op for other backends or without a data dir. */
ld_err ld_store_redis_secret_init(ld_store *s, const char *data_dir, ld_error *err);

#endif
