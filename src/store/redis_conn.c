/* Redis connections: URL parsing, a mutex-protected pool of hiredis contexts
 * with socket timeouts, Lua scripts by SHA, and the up/down state machine. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/redis.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define POOL_IDLE_MAX 16 /* idle connections kept; more are opened on demand and closed after */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DOWN_LOG_EVERY_MS 10000 /* "still down" at most this often */

struct ld_redis_script {
    const char *lua;
    pthread_mutex_t mu;
    char sha[41]; /* "" until SCRIPT LOAD answered */
};

struct ld_redis {
    ld_redis_config cfg;
    pthread_mutex_t mu; /* pool and health fields */
    redisContext *idle[POOL_IDLE_MAX];
    int nidle;
    _Atomic bool up;
    _Atomic uint64_t epoch;
    int64_t down_since_ms, next_probe_ms, backoff_ms, last_down_log_ms;
    double latency_ms;
    char last_error[160];
    _Atomic int slow_timeout_ms;
};

static int64_t mono_ms(void) { return (int64_t)(ld_time_mono() * 1000.0); }

/* ---- URL ---- */

static int unhex(int c) { return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10; }

/* Percent-decodes [s, s+n) into out (size outsz); -1 if it does not fit. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
            c = (char)(unhex((unsigned char)s[i + 1]) * 16 + unhex((unsigned char)s[i + 2]));
            i += 2;
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

ld_err ld_redis_parse_url(const char *url, ld_redis_config *out, ld_error *err)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    out->connect_timeout_ms = 200;
    out->command_timeout_ms = 200;
    if (!url || !*url)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL is empty");
    if (!strncasecmp(url, "rediss://", 9))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "rediss:// (TLS) is not supported by this build (hiredis 0.14): run a TLS tunnel "
                            "such as stunnel next to each replica and use redis://127.0.0.1:<port>");
    if (strncasecmp(url, "redis://", 8))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL must start with redis://");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q; /* the last '@': passwords may contain one unescaped */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, (size_t)(colon - p), out->username, sizeof out->username) ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password))
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL credentials too long");
        } else if (pct_decode(p, (size_t)(at - p), out->password, sizeof out->password)) {
            /* redis://password@host, as some clients accept */
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL credentials too long");
        }
        p = at + 1;
    }
    const char *hend = end;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: unterminated [address]");
        snprintf(out->host, sizeof out->host, "%.*s", (int)(rb - p - 1), p + 1);
        p = rb + 1;
        hend = p;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (hend - p >= (long)sizeof out->host)
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: host too long");
        snprintf(out->host, sizeof out->host, "%.*s", (int)(hend - p), p);
        p = hend;
    }
    if (!out->host[0])
        snprintf(out->host, sizeof out->host, "127.0.0.1");
    if (p < end && *p == ':') {
        char *e;
        long port = strtol(p + 1, &e, 10);
        if (e != end || port < 1 || port > 65535)
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: bad port");
        out->port = (int)port;
    } else if (p != end) {
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: bad host");
    }
    p = end;
    if (*p == '/') {
        p++;
        if (*p && *p != '?') {
            char *e;
            long db = strtol(p, &e, 10);
            if ((*e && *e != '?') || db < 0 || db > 1000000)
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: bad database number");
            out->db = (int)db;
            p = e;
        }
    }
    if (*p == '?') {
        for (p++; *p;) {
            size_t n = strcspn(p, "&");
            long v = -1;
            if (!strncmp(p, "timeout_ms=", 11))
                out->command_timeout_ms = (int)(v = strtol(p + 11, NULL, 10));
            else if (!strncmp(p, "connect_timeout_ms=", 19))
                out->connect_timeout_ms = (int)(v = strtol(p + 19, NULL, 10));
            else
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: unknown option %.*s", (int)n, p);
            if (v < 1 || v > 60000)
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Redis URL: timeouts are 1..60000 ms");
            p += n;
            if (*p == '&')
                p++;
        }
    }
    return LD_OK;
}

/* Escapes the characters that would end a URL userinfo part. */
static void pct_encode(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    for (; *s && o + 4 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outsz - o, "%%%02X", c);
    }
    out[o] = '\0';
}

void ld_redis_url_from_env(char *out, size_t outsz)
{
    const char *url = getenv("REDIS_URL");
    const char *host = getenv("REDIS_HOST");
    if (url && *url) {
        snprintf(out, outsz, "%s", url);
        return;
    }
    if (!host || !*host) {
        snprintf(out, outsz, "%s", "");
        return;
    }
    const char *port = getenv("REDIS_PORT"), *user = getenv("REDIS_USERNAME"), *pw = getenv("REDIS_PASSWORD");
    char u[400] = "", pwe[800] = "", cred[1300] = "";
    if (user && *user)
        pct_encode(user, u, sizeof u);
    if (pw && *pw)
        pct_encode(pw, pwe, sizeof pwe);
    if (*u || *pwe)
        snprintf(cred, sizeof cred, "%s:%s@", u, pwe);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, outsz, "redis://%s%s%s%s:%s", cred, v6 ? "[" : "", host, v6 ? "]" : "",
             port && *port ? port : "6379");
}

/* ---- state ---- */

static void set_error_locked(ld_redis *r, const char *why)
{
    snprintf(r->last_error, sizeof r->last_error, "%s", why && *why ? why : "unknown error");
}

void ld_redis_mark_down(ld_redis *r, const char *why)
{
    ld_metrics_redis_error(); /* every caller is a failed operation */
    pthread_mutex_lock(&r->mu);
    set_error_locked(r, why);
    bool was_up = atomic_exchange(&r->up, false);
    int64_t now = mono_ms();
    if (was_up) {
        r->down_since_ms = ld_time_now_ms();
        r->backoff_ms = BACKOFF_MIN_MS;
        r->next_probe_ms = now + r->backoff_ms;
        r->last_down_log_ms = now;
        /* Idle connections are probably dead too; drop them all. */
        for (int i = 0; i < r->nidle; i++)
            redisFree(r->idle[i]);
        r->nidle = 0;
    }
    pthread_mutex_unlock(&r->mu);
    if (was_up)
        ld_log_fields(LD_LOG_ERROR,
                      json_pack("{s:s, s:s, s:i}", "error", why ? why : "", "redis_host", r->cfg.host, "redis_port",
                                r->cfg.port),
                      "%s: %s", LD_REDIS_UNAVAILABLE_MSG, why ? why : "");
}

bool ld_redis_up(ld_redis *r) { return atomic_load(&r->up); }
uint64_t ld_redis_epoch(ld_redis *r) { return atomic_load(&r->epoch); }
const ld_redis_config *ld_redis_cfg(ld_redis *r) { return &r->cfg; }

void ld_redis_health(ld_redis *r, ld_store_health_info *out)
{
    pthread_mutex_lock(&r->mu);
    out->backend = "redis";
    out->up = atomic_load(&r->up);
    out->latency_ms = r->latency_ms;
    out->down_since_ms = out->up ? 0 : r->down_since_ms;
    snprintf(out->last_error, sizeof out->last_error, "%s", r->last_error);
    snprintf(out->target, sizeof out->target, "%s:%d/%d", r->cfg.host, r->cfg.port, r->cfg.db);
    pthread_mutex_unlock(&r->mu);
}

/* ---- connections ---- */

static struct timeval tv_ms(int ms) { return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}; }

static bool reply_ok(redisReply *rep, char *why, size_t whysz, const char *what)
{
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(why, whysz, "%s: %s", what, rep ? rep->str : "no reply");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* A new authenticated connection on the configured database, or NULL with why. */
static redisContext *connect_one(ld_redis *r, char *why, size_t whysz)
{
    redisContext *c = redisConnectWithTimeout(r->cfg.host, r->cfg.port, tv_ms(r->cfg.connect_timeout_ms));
    if (!c || c->err) {
        snprintf(why, whysz, "connect %.90s:%d: %.50s", r->cfg.host, r->cfg.port, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(r->cfg.command_timeout_ms));
    bool ok = true;
    if (r->cfg.password[0]) {
        if (r->cfg.username[0])
            ok = reply_ok(redisCommand(c, "AUTH %s %s", r->cfg.username, r->cfg.password), why, whysz, "AUTH");
        else
            ok = reply_ok(redisCommand(c, "AUTH %s", r->cfg.password), why, whysz, "AUTH");
    }
    if (ok && r->cfg.db)
        ok = reply_ok(redisCommand(c, "SELECT %d", r->cfg.db), why, whysz, "SELECT");
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static redisContext *get_conn(ld_redis *r, ld_error *err)
{
    if (!atomic_load(&r->up)) {
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    redisContext *c = r->nidle ? r->idle[--r->nidle] : NULL;
    pthread_mutex_unlock(&r->mu);
    if (c)
        return c;
    char why[160];
    if (!(c = connect_one(r, why, sizeof why))) {
        ld_redis_mark_down(r, why);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    }
    return c;
}

static void put_conn(ld_redis *r, redisContext *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&r->mu);
    if (!c->err && atomic_load(&r->up) && r->nidle < POOL_IDLE_MAX) {
        r->idle[r->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    if (c)
        redisFree(c);
}

/* Error replies that mean "this server cannot serve us now", not "your command is wrong". */
static bool unavailable_reply(const redisReply *rep)
{
    static const char *const codes[] = {"LOADING", "BUSY",      "MASTERDOWN",  "READONLY",
                                        "NOAUTH",  "WRONGPASS", "CLUSTERDOWN", "TRYAGAIN"};
    if (!rep || rep->type != REDIS_REPLY_ERROR || !rep->str)
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (!strncmp(rep->str, codes[i], strlen(codes[i])))
            return true;
    return false;
}

/* Runs one command on c; on a connection failure marks Redis down. */
static redisReply *run_on(ld_redis *r, redisContext *c, int argc, const char **argv, const size_t *lens,
                          ld_error *err)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep) {
        char why[160];
        snprintf(why, sizeof why, "%s: %s", argv[0],
                 c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == ETIMEDOUT) ? "timed out" : c->errstr);
        ld_redis_mark_down(r, why);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
        return NULL;
    }
    if (unavailable_reply(rep)) {
        char why[160];
        snprintf(why, sizeof why, "%s: %s", argv[0], rep->str);
        freeReplyObject(rep);
        c->err = REDIS_ERR_OTHER; /* do not pool it */
        ld_redis_mark_down(r, why);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
        return NULL;
    }
    return rep;
}

redisReply *ld_redis_cmd(ld_redis *r, int argc, const char **argv, const size_t *lens, ld_error *err)
{
    redisContext *c = get_conn(r, err);
    if (!c)
        return NULL;
    redisReply *rep = run_on(r, c, argc, argv, lens, err);
    put_conn(r, c);
    return rep;
}

redisReply *ld_redis_cmdv(ld_redis *r, ld_error *err, ...)
{
    const char *argv[LD_REDIS_MAX_ARGS];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < LD_REDIS_MAX_ARGS)
        argv[argc++] = a;
    va_end(ap);
    return ld_redis_cmd(r, argc, argv, NULL, err);
}

void ld_redis_set_slow_timeout(ld_redis *r, int ms) { atomic_store(&r->slow_timeout_ms, ms); }

redisReply *ld_redis_cmd_slow(ld_redis *r, int argc, const char **argv, const size_t *lens, ld_error *err)
{
    redisContext *c = get_conn(r, err);
    if (!c)
        return NULL;
    redisSetTimeout(c, tv_ms(atomic_load(&r->slow_timeout_ms)));
    redisReply *rep = run_on(r, c, argc, argv, lens, err);
    redisSetTimeout(c, tv_ms(r->cfg.command_timeout_ms));
    put_conn(r, c);
    return rep;
}

int ld_redis_pipeline(ld_redis *r, int ncmds, const int *argcs, const char *const *const *argvs,
                      redisReply **replies, ld_error *err)
{
    for (int i = 0; i < ncmds; i++)
        replies[i] = NULL;
    redisContext *c = get_conn(r, err);
    if (!c)
        return -1;
    bool ok = true;
    for (int i = 0; i < ncmds && ok; i++)
        ok = redisAppendCommandArgv(c, argcs[i], (const char **)argvs[i], NULL) == REDIS_OK;
    for (int i = 0; i < ncmds && ok; i++) {
        void *rep = NULL;
        ok = redisGetReply(c, &rep) == REDIS_OK && rep;
        replies[i] = rep;
        if (ok && unavailable_reply(replies[i]))
            ok = false;
    }
    if (!ok) {
        char why[160];
        snprintf(why, sizeof why, "pipeline: %s", c->err ? c->errstr : "server refused");
        c->err = c->err ? c->err : REDIS_ERR_OTHER;
        for (int i = 0; i < ncmds; i++) {
            if (replies[i])
                freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
        ld_redis_mark_down(r, why);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    }
    put_conn(r, c);
    return ok ? 0 : -1;
}

/* ---- scripts ---- */

ld_redis_script *ld_redis_script_new(const char *lua)
{
    ld_redis_script *s = calloc(1, sizeof *s);
    if (s) {
        s->lua = lua;
        pthread_mutex_init(&s->mu, NULL);
    }
    return s;
}

void ld_redis_script_free(ld_redis_script *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

redisReply *ld_redis_eval(ld_redis *r, ld_redis_script *s, int nkeys, int argc, const char **argv, ld_error *err)
{
    const char *av[LD_REDIS_MAX_ARGS + 3];
    char nk[12];
    if (argc > LD_REDIS_MAX_ARGS) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: too many script arguments");
        return NULL;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    char sha[41];
    pthread_mutex_lock(&s->mu);
    memcpy(sha, s->sha, sizeof sha);
    pthread_mutex_unlock(&s->mu);
    redisContext *c = get_conn(r, err);
    if (!c)
        return NULL;
    if (!sha[0]) {
        const char *load[] = {"SCRIPT", "LOAD", s->lua};
        redisReply *rep = run_on(r, c, 3, load, NULL, err);
        if (rep && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
            memcpy(sha, rep->str, 41);
            pthread_mutex_lock(&s->mu);
            memcpy(s->sha, sha, sizeof sha);
            pthread_mutex_unlock(&s->mu);
        }
        if (rep)
            freeReplyObject(rep);
    }
    redisReply *rep = NULL;
    if (sha[0] && !c->err) {
        av[0] = "EVALSHA";
        av[1] = sha;
        av[2] = nk;
        memcpy(av + 3, argv, sizeof *argv * (size_t)argc);
        rep = run_on(r, c, argc + 3, av, NULL, err);
        if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) {
            freeReplyObject(rep); /* Redis restarted or SCRIPT FLUSH: EVAL caches it again */
            rep = NULL;
        } else if (!rep) {
            put_conn(r, c);
            return NULL;
        } else {
            put_conn(r, c);
            return rep;
        }
    }
    if (c->err) {
        put_conn(r, c);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
        return NULL;
    }
    av[0] = "EVAL";
    av[1] = s->lua;
    av[2] = nk;
    memcpy(av + 3, argv, sizeof *argv * (size_t)argc);
    rep = run_on(r, c, argc + 3, av, NULL, err);
    put_conn(r, c);
    return rep;
}

/* ---- lifecycle and probing ---- */

ld_redis *ld_redis_new(const ld_redis_config *cfg, ld_error *err)
{
    ld_redis *r = calloc(1, sizeof *r);
    if (!r) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->up, false);
    atomic_init(&r->epoch, 0);
    atomic_init(&r->slow_timeout_ms, 10000);
    r->latency_ms = -1;
    r->down_since_ms = ld_time_now_ms();
    r->backoff_ms = BACKOFF_MIN_MS;
    r->next_probe_ms = 0;
    set_error_locked(r, "not connected yet");
    return r;
}

void ld_redis_free(ld_redis *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bool ld_redis_probe(ld_redis *r, bool force)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&r->mu);
    bool up = atomic_load(&r->up);
    bool due = up ? force : now >= r->next_probe_ms;
    pthread_mutex_unlock(&r->mu);
    if (!due)
        return up;
    char why[160] = "";
    double t0 = ld_time_mono();
    redisContext *c = up ? NULL : connect_one(r, why, sizeof why);
    if (up) { /* measure on a pooled connection, like the request path sees it */
        ld_error e;
        redisReply *rep = ld_redis_cmdv(r, &e, "PING", NULL);
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (ok) {
            pthread_mutex_lock(&r->mu);
            r->latency_ms = (ld_time_mono() - t0) * 1000.0;
            pthread_mutex_unlock(&r->mu);
        }
        return ok && atomic_load(&r->up);
    }
    if (c) {
        redisReply *rep = redisCommand(c, "PING");
        if (!rep || rep->type != REDIS_REPLY_STATUS) {
            snprintf(why, sizeof why, "PING: %s", rep ? (rep->str ? rep->str : "bad reply") : c->errstr);
            redisFree(c);
            c = NULL;
        }
        if (rep)
            freeReplyObject(rep);
    }
    pthread_mutex_lock(&r->mu);
    if (c) {
        r->latency_ms = (ld_time_mono() - t0) * 1000.0;
        int64_t was_down_ms = ld_time_now_ms() - r->down_since_ms;
        bool first = atomic_load(&r->epoch) == 0;
        if (r->nidle < POOL_IDLE_MAX)
            r->idle[r->nidle++] = c;
        else
            redisFree(c);
        r->last_error[0] = '\0';
        atomic_fetch_add(&r->epoch, 1);
        atomic_store(&r->up, true);
        pthread_mutex_unlock(&r->mu);
        ld_log_fields(LD_LOG_INFO,
                      json_pack("{s:s, s:i, s:i, s:I}", "redis_host", r->cfg.host, "redis_port", r->cfg.port,
                                "redis_db", r->cfg.db, "down_ms", (json_int_t)(first ? 0 : was_down_ms)),
                      first ? "Redis connected" : "Redis reachable again");
        return true;
    }
    set_error_locked(r, why);
    ld_metrics_redis_error(); /* a failed reconnect probe */
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    r->next_probe_ms = now + r->backoff_ms;
    bool log = now - r->last_down_log_ms >= DOWN_LOG_EVERY_MS;
    if (log)
        r->last_down_log_ms = now;
    int64_t since = r->down_since_ms;
    pthread_mutex_unlock(&r->mu);
    if (log)
        ld_log_fields(LD_LOG_ERROR,
                      json_pack("{s:s, s:I}", "error", why, "down_ms", (json_int_t)(ld_time_now_ms() - since)),
                      "%s (still down): %s", LD_REDIS_UNAVAILABLE_MSG, why);
    return false;
}

long long ld_redis_int(const redisReply *rep, long long dflt)
{
    if (!rep)
        return dflt;
    if (rep->type == REDIS_REPLY_INTEGER)
        return rep->integer;
    if (rep->type == REDIS_REPLY_STRING && rep->str)
        return strtoll(rep->str, NULL, 10);
    return dflt;
}

double ld_redis_double(const redisReply *rep, double dflt)
{
    if (!rep)
        return dflt;
    if (rep->type == REDIS_REPLY_INTEGER)
        return (double)rep->integer;
    if (rep->type == REDIS_REPLY_STRING && rep->str)
        return strtod(rep->str, NULL);
    return dflt;
}
