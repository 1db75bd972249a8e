/* Redis limits store against a real redis-server on a free loopback port:
 * the store contract (store_contract.h) through two handles as two replicas,
 * then what is its own: atomicity under two threads, URL parsing, failure
 * policy (closed/open) across a Redis restart, and backend selection. Skips
 * when redis-server is missing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "redis_fixture.h"
#include "store/redis.h"
#include "store/store.h"
#include "store_contract.h"
#include "test.h"
#include "util/fs.h"

static void test_url(void)
{
    ld_redis_config c;
    ld_error err;
    CHECK(ld_redis_parse_url("redis://localhost", &c, &err) == LD_OK && c.port == 6379 && c.db == 0);
    CHECK_STR(c.host, "localhost");
    CHECK(ld_redis_parse_url("redis://:p%40ss@redis.internal:6380/2", &c, &err) == LD_OK);
    CHECK_STR(c.password, "p@ss");
    CHECK_STR(c.host, "redis.internal");
    CHECK(c.port == 6380 && c.db == 2 && c.username[0] == '\0');
    CHECK(ld_redis_parse_url("redis://app:secret@[::1]:7000/0?timeout_ms=50", &c, &err) == LD_OK);
    CHECK_STR(c.username, "app");
    CHECK_STR(c.host, "::1");
    CHECK(c.port == 7000 && c.command_timeout_ms == 50);
    CHECK(ld_redis_parse_url("rediss://h:6379", &c, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "TLS") != NULL);
    CHECK(ld_redis_parse_url("http://h", &c, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_redis_parse_url("redis://h:99999", &c, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_redis_parse_url("redis://h/x", &c, &err) == LD_ERR_INVALID_PARAMETER);

    char out[256];
    unsetenv("REDIS_URL");
    unsetenv("REDIS_HOST");
    ld_redis_url_from_env(out, sizeof out);
    CHECK_STR(out, "");
    setenv("REDIS_HOST", "cache", 1);
    setenv("REDIS_PORT", "6390", 1);
    setenv("REDIS_PASSWORD", "a b@c", 1);
    ld_redis_url_from_env(out, sizeof out);
    CHECK_STR(out, "redis://:a%20b%40c@cache:6390");
    CHECK(ld_redis_parse_url(out, &c, &err) == LD_OK);
    CHECK_STR(c.password, "a b@c");
    setenv("REDIS_URL", "redis://other:1/3", 1);
    ld_redis_url_from_env(out, sizeof out);
    CHECK_STR(out, "redis://other:1/3");
    unsetenv("REDIS_URL");
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_PASSWORD");
}

typedef struct {
    ld_store *s;
    int allowed, acquired;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *h = p;
    for (int i = 0; i < 400; i++) {
        ld_window w;
        if (ld_store_window_hit(h->s, "k_hot", 300, 60000, 5000000, &w, NULL) == LD_OK && w.allowed)
            h->allowed++;
        char id[32];
        bool ok = false;
        if (i < 50 && ld_store_lease_acquire(h->s, "k_hotl", 10, 60000, 5000000, id, &ok, NULL, NULL) == LD_OK &&
            ok)
            h->acquired++;
    }
    return NULL;
}

/* Two handles (as two replicas) and two threads on one key: no lost or extra hits. */
static void test_atomic(ld_store *s1, ld_store *s2)
{
    hammer_arg a = {.s = s1}, b = {.s = s2};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, hammer, &a);
    pthread_create(&tb, NULL, hammer, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.allowed + b.allowed == 300);
    CHECK(a.acquired + b.acquired == 10);
    ld_window w;
    CHECK(ld_store_window_peek(s1, "k_hot", 300, 60000, 5000000, &w, NULL) == LD_OK && w.count == 300);
}

/* Reservations are checked across replicas in one step: with 10 s of quota,
 * two replicas' 6 s requests both pass (the bound: the one admitted last),
 * a third does not until one is settled; expired ones free their seconds. */
static void test_reservations(ld_store *s1, ld_store *s2)
{
    const char *day = "2030-02-02";
    char r1[LD_STORE_RES_MAX], r2[LD_STORE_RES_MAX], r3[LD_STORE_RES_MAX];
    bool ok = false, shared = false;
    ld_error err;
    CHECK(ld_store_quota_reserve(s1, "k_res", day, 10, 6, 60000, 1000, r1, &ok, &shared, &err) == LD_OK && ok &&
          shared);
    CHECK(ld_store_quota_reserve(s2, "k_res", day, 10, 6, 60000, 1000, r2, &ok, &shared, &err) == LD_OK && ok);
    CHECK(ld_store_quota_reserve(s2, "k_res", day, 10, 1, 60000, 1000, r3, &ok, &shared, &err) == LD_OK && !ok);
    ld_store_quota_unreserve(s1, "k_res", r1);
    CHECK(ld_store_quota_reserve(s1, "k_res", day, 10, 1, 60000, 1000, r1, &ok, &shared, &err) == LD_OK && ok);
    /* 6 + 1 held; charged usage counts as well */
    CHECK(ld_store_usage_add(s1, "k_res", day, 3, NULL, &err) == LD_OK);
    CHECK(ld_store_quota_reserve(s2, "k_res", day, 10, 1, 60000, 1000, r3, &ok, &shared, &err) == LD_OK && !ok);
    /* growing: no check, but it counts for the next one */
    ld_store_quota_resize(s2, "k_res", r2, 0.5);
    CHECK(ld_store_quota_reserve(s2, "k_res", day, 10, 1, 60000, 1000, r3, &ok, &shared, &err) == LD_OK && ok);
    /* a crashed replica's reservations expire */
    CHECK(ld_store_quota_reserve(s2, "k_res", day, 10, 1, 60000, 61001, r3, &ok, &shared, &err) == LD_OK && ok);
}

static bool wait_up(ld_store *s)
{
    ld_store_health_info h;
    for (int i = 0; i < 200; i++) { /* backoff is at most 5 s */
        if (ld_store_health(s, &h))
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static void test_failure(void)
{
    ld_error err;
    ld_store *closed = ld_store_open_redis(url, false, &err);
    ld_store *open = ld_store_open_redis(url, true, &err);
    CHECK(closed && open);
    if (!closed || !open)
        return;
    ld_store_health_info h;
    CHECK(ld_store_health(closed, &h) && h.up && !h.degraded && strcmp(h.backend, "redis") == 0);
    CHECK(strstr(h.target, "127.0.0.1:") == h.target && h.latency_ms >= 0);

    redis_stop();
    ld_window w;
    char id[32];
    bool ok;
    /* Closed: every operation refuses with SERVICE_UNAVAILABLE, the same message each time. */
    CHECK(ld_store_window_hit(closed, "k_f", 5, 60000, 1000, &w, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    CHECK_STR(err.msg, "Shared state (Redis) unavailable");
    CHECK(ld_store_window_hit(closed, "k_f", 5, 60000, 1000, &w, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    CHECK(ld_store_lease_acquire(closed, "k_f", 5, 60000, 1000, id, &ok, NULL, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    double used;
    CHECK(ld_store_usage_get(closed, "k_f", "2030-01-01", &used, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    CHECK(ld_store_revoke(closed, "k_f", 1, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    /* Audio admitted before the outage and finished during it is still charged, later. */
    CHECK(ld_store_usage_add(closed, "k_c", "2030-01-01", 12, NULL, &err) == LD_OK);
    CHECK(!ld_store_health(closed, &h) && !h.up && !h.degraded && h.last_error[0] && h.down_since_ms > 0);
    /* The last revocation list keeps answering (admission refuses with 503 anyway). */
    bool was = false;
    CHECK(ld_store_is_revoked(closed, "k_x", &was, &err) == LD_OK && !was);
    /* Open: per-replica limits still apply; usage is remembered for later. */
    CHECK(ld_store_window_hit(open, "k_f", 2, 60000, 1000, &w, &err) == LD_OK && w.allowed && w.count == 1);
    CHECK(ld_store_window_hit(open, "k_f", 2, 60000, 1000, &w, &err) == LD_OK && w.allowed);
    CHECK(ld_store_window_hit(open, "k_f", 2, 60000, 1000, &w, &err) == LD_OK && !w.allowed);
    CHECK(ld_store_lease_acquire(open, "k_f", 1, 60000, 1000, id, &ok, NULL, &err) == LD_OK && ok);
    ld_store_lease_release(open, "k_f", id);
    CHECK(ld_store_usage_add(open, "k_f", "2030-01-01", 30, NULL, &err) == LD_OK);
    CHECK(ld_store_usage_get(open, "k_f", "2030-01-01", &used, &err) == LD_OK && used == 30);
    bool rev = true;
    CHECK(ld_store_is_revoked(open, "k_x", &rev, &err) == LD_OK && !rev);
    CHECK(!ld_store_health(open, &h) && h.degraded);

    /* Redis comes back (empty, scripts forgotten): both recover without reopening. */
    CHECK(redis_start());
    CHECK(wait_up(closed) && wait_up(open));
    CHECK(ld_store_window_hit(closed, "k_f", 5, 60000, 1000, &w, &err) == LD_OK && w.allowed && w.count == 1);
    CHECK(ld_store_window_hit(open, "k_f", 5, 60000, 1000, &w, &err) == LD_OK && w.count == 2);
    used = 0;
    for (int i = 0; i < 40 && used != 30; i++) { /* the outage's usage reaches Redis */
        usleep(50 * 1000);
        ld_store_usage_get(closed, "k_f", "2030-01-01", &used, &err);
    }
    CHECK(used == 30);
    used = 0;
    for (int i = 0; i < 200 && used != 12; i++) { /* and the closed replica's too */
        usleep(50 * 1000);
        ld_store_usage_get(open, "k_c", "2030-01-01", &used, &err);
    }
    CHECK(used == 12);
    ld_store_close(closed);
    ld_store_close(open);

    /* Closed policy refuses to start without Redis; open starts degraded. */
    redis_stop();
    CHECK(ld_store_open_redis(url, false, &err) == NULL && err.code == LD_ERR_SERVICE_UNAVAILABLE);
    ld_store *degraded = ld_store_open_redis(url, true, &err);
    CHECK(degraded != NULL);
    ld_store_close(degraded);
    CHECK(redis_start());
}

/* A release Redis did not take (down for a moment) is retried once it is back:
 * otherwise the slot stays held for the lease's whole TTL (6 h for requests). */
static void test_release_retried(void)
{
    ld_error err;
    ld_store *a = ld_store_open_redis(url, false, &err), *b = ld_store_open_redis(url, false, &err);
    CHECK(a && b);
    if (a && b) {
        char id[32];
        bool ok = false;
        CHECK(ld_store_lease_acquire(a, "k_rel", 1, 3600000, 1000, id, &ok, NULL, &err) == LD_OK && ok);
        ld_redis_mark_down(ld_store_redis_conn(a), "test: outage"); /* the next call does not reach Redis */
        ld_store_lease_release(a, "k_rel", id);
        int held = 1;
        for (int i = 0; i < 200 && held; i++) { /* a's probe backoff is at most 5 s */
            usleep(50 * 1000);
            held = ld_store_lease_count(b, "k_rel", 1000);
        }
        CHECK(held == 0);
    }
    ld_store_close(a);
    ld_store_close(b);
}

/* Whether every dir's webhook.secret ends up equal to Redis' copy (and to
 * `want` when given) within 10 s: replicas re-read it every second. */
static bool secrets_converge(redisContext *c, const char *const dirs[3], const char *want)
{
    for (int i = 0; c && i < 200; i++) {
        redisReply *rep = redisCommand(c, "GET ld:webhook_secret");
        bool same = rep && rep->type == REDIS_REPLY_STRING && (!want || !strcmp(rep->str, want));
        for (int d = 0; same && d < 3; d++) {
            char p[256];
            snprintf(p, sizeof p, "%s/webhook.secret", dirs[d]);
            char *text = ld_fs_read(p, 4096, NULL);
            same = text && strlen(text) == rep->len + 1 && !strncmp(text, rep->str, rep->len);
            free(text);
        }
        freeReplyObject(rep);
        if (same)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static void test_configured(void)
{
    char d1[] = "/tmp/ld_redis_cfg1_XXXXXX", d2[] = "/tmp/ld_redis_cfg2_XXXXXX";
    if (!mkdtemp(d1) || !mkdtemp(d2))
        return;
    ld_error err;
    unsetenv("REDIS_URL");
    unsetenv("REDIS_HOST");
    ld_store *e = ld_store_open_configured(d1, NULL, 0, &err);
    CHECK(e && strcmp(ld_store_backend(e), "embedded") == 0);
    ld_store_health_info h;
    CHECK(ld_store_health(e, &h) && strcmp(h.backend, "embedded") == 0);
    ld_store_close(e);
    /* Two replicas end up with one webhook secret, the first one's. */
    setenv("REDIS_URL", url, 1);
    ld_store *r1 = ld_store_open_configured(d1, NULL, 0, &err);
    ld_store *r2 = ld_store_open_configured(d2, "", 0, &err); /* "" = embedded, even with REDIS_URL set */
    CHECK(r1 && strcmp(ld_store_backend(r1), "redis") == 0);
    CHECK(r2 && strcmp(ld_store_backend(r2), "embedded") == 0);
    ld_store_close(r2);
    r2 = ld_store_open_configured(d2, url, 0, &err);
    CHECK(r2 && strcmp(ld_store_backend(r2), "redis") == 0);
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/webhook.secret", d1);
    snprintf(p2, sizeof p2, "%s/webhook.secret", d2);
    char *s1 = ld_fs_read(p1, 4096, NULL), *s2 = ld_fs_read(p2, 4096, NULL);
    CHECK(s1 && s2 && strlen(s1) == 65 && strcmp(s1, s2) == 0);
    free(s1);
    free(s2);
    /* Redis loses its data, then a replica starts on a fresh data dir: it puts
     * a new secret there, and the running replicas must follow, or receivers
     * get deliveries signed with two secrets. */
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *rep = c ? redisCommand(c, "FLUSHALL") : NULL;
    freeReplyObject(rep);
    char d3[] = "/tmp/ld_redis_cfg3_XXXXXX";
    CHECK(mkdtemp(d3) != NULL);
    ld_store *r3 = ld_store_open_configured(d3, url, 0, &err);
    CHECK(r3 != NULL);
    const char *dirs[] = {d1, d2, d3};
    CHECK(secrets_converge(c, dirs, NULL));
    /* An operator rotates it in Redis: every replica takes it up. */
    rep = c ? redisCommand(c, "SET ld:webhook_secret %s", "0123456789abcdef0123456789abcdef") : NULL;
    freeReplyObject(rep);
    CHECK(secrets_converge(c, dirs, "0123456789abcdef0123456789abcdef"));
    if (c)
        redisFree(c);
    ld_store_close(r3);
    unsetenv("REDIS_URL");
    ld_store_close(r1);
    ld_store_close(r2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", d1, d2, d3);
    if (system(cmd)) {
    }
}

int main(void)
{
    test_url();
    if (system("command -v redis-server >/dev/null 2>&1")) {
        fprintf(stderr, "SKIP: redis-server not installed\n");
        TEST_MAIN_END();
    }
    port = free_port();
    /* Generous command timeout: these tests check behaviour, and a sanitizer build on a loaded
     * machine can exceed the 200 ms default. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?timeout_ms=5000", port);
    if (!redis_start()) {
        fprintf(stderr, "cannot start redis-server on port %d\n", port);
        redis_stop();
        return 1;
    }
    ld_error err;
    ld_store *s1 = ld_store_open_redis(url, false, &err);
    ld_store *s2 = ld_store_open_redis(url, false, &err);
    CHECK(s1 && s2);
    if (s1 && s2) {
        CHECK_STR(ld_store_backend(s1), "redis");
        CHECK(ld_store_data_dir(s1) == NULL);
        contract_window(s1);
        contract_leases(s2);
        contract_shared(s1, s2); /* two replicas */
        test_atomic(s1, s2);
        test_reservations(s1, s2);
    }
    ld_store_close(s1);
    ld_store_close(s2);
    test_failure();
    test_release_retried();
    test_configured();
    redis_stop();
    TEST_MAIN_END();
}
