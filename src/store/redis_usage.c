/* Daily audio usage in Redis: ld:u:<key_id>:<day>, INCRBYFLOAT with a TTL of
 * a few days (the quota only ever reads today). Each replica keeps a table:
 * the last total seen per key and day plus what was used during an outage,
 * which the background thread adds to Redis once it is back, so an outage
 * does not make audio free. Both failure policies keep it: under `closed` no
 * new work is admitted during the outage, but work admitted before it still
 * finishes and must be charged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_store_internal.h"
#include "util/log.h"
#include "util/time.h"

#define BUCKETS 1024

struct rs_usage {
    rs_usage *next;
    char key_id[LD_STORE_SUBJECT_MAX + 1];
    char day[11];
    double last;    /* total last read from Redis */
    double pending; /* used while Redis was down, not yet added there */
};

static uint64_t hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h;
}

int ld_rs_usage_init(rstore *rs)
{
    rs->usage = calloc(BUCKETS, sizeof *rs->usage);
    return rs->usage ? 0 : -1;
}

void ld_rs_usage_free(rstore *rs)
{
    if (rs->usage)
        for (int b = 0; b < BUCKETS; b++)
            for (rs_usage *u = rs->usage[b], *nx; u; u = nx) {
                nx = u->next;
                free(u);
            }
    free(rs->usage);
    rs->usage = NULL;
    pthread_mutex_destroy(&rs->usage_mu);
}

/* With usage_mu held. */
static rs_usage *entry(rstore *rs, const char *key_id, const char *day, bool create)
{
    rs_usage **bucket = &rs->usage[hash(key_id, day) % BUCKETS];
    for (rs_usage *u = *bucket; u; u = u->next)
        if (!strcmp(u->key_id, key_id) && !strcmp(u->day, day))
            return u;
    if (!create)
        return NULL;
    rs_usage *u = calloc(1, sizeof *u);
    if (u) {
        snprintf(u->key_id, sizeof u->key_id, "%s", key_id);
        snprintf(u->day, sizeof u->day, "%s", day);
        u->next = *bucket;
        *bucket = u;
    }
    return u;
}

static bool args_ok(const char *key_id, const char *day)
{
    return key_id && *key_id && strlen(key_id) <= LD_STORE_SUBJECT_MAX && day && strlen(day) == 10;
}

static redisReply *incr(rstore *rs, const char *key_id, const char *day, double seconds, ld_error *err)
{
    char key[160], by[40], ttl[24];
    ld_rs_key(key, sizeof key, "u", key_id, day);
    snprintf(by, sizeof by, "%.17g", seconds);
    snprintf(ttl, sizeof ttl, "%d", LD_REDIS_USAGE_TTL_S);
    const char *argv[] = {key, by, ttl};
    return ld_redis_eval(rs->r, rs->s_usage_add, 1, 3, argv, err);
}

ld_err ld_rs_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                       ld_error *err)
{
    rstore *rs = (rstore *)s;
    if (!args_ok(key_id, day) || !(seconds >= 0))
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad usage arguments");
    redisReply *rep = incr(rs, key_id, day, seconds, err);
    if (rep && rep->type != REDIS_REPLY_STRING) {
        ld_log(LD_LOG_ERROR, "store (redis): usage: %s", rep->str ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        rep = NULL;
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    }
    if (rep) {
        double v = strtod(rep->str, NULL);
        freeReplyObject(rep);
        pthread_mutex_lock(&rs->usage_mu);
        rs_usage *u = entry(rs, key_id, day, true);
        if (u)
            u->last = v;
        if (total)
            *total = v + (u ? u->pending : 0);
        pthread_mutex_unlock(&rs->usage_mu);
        return LD_OK;
    }
    if (!ld_rs_fallback(rs)) /* closed: nothing more is admitted, but this audio was used */
        ld_log(LD_LOG_WARNING, "store (redis): %.1f s of %s kept until Redis is back: %s", seconds, key_id,
               LD_REDIS_UNAVAILABLE_MSG);
    pthread_mutex_lock(&rs->usage_mu);
    rs_usage *u = entry(rs, key_id, day, true);
    if (u)
        u->pending += seconds;
    if (total && u) /* not counted without u: *total is left alone (store.h) */
        *total = u->last + u->pending;
    pthread_mutex_unlock(&rs->usage_mu);
    return u ? LD_OK : ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
}

ld_err ld_rs_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err)
{
    rstore *rs = (rstore *)s;
    if (!args_ok(key_id, day))
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad usage arguments");
    char key[160];
    ld_rs_key(key, sizeof key, "u", key_id, day);
    redisReply *rep = ld_redis_cmdv(rs->r, err, "GET", key, NULL);
    if (rep && rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL) {
        ld_log(LD_LOG_ERROR, "store (redis): usage: %s", rep->str ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, LD_REDIS_UNAVAILABLE_MSG);
    }
    if (rep) {
        double v = ld_redis_double(rep, 0);
        freeReplyObject(rep);
        *seconds = v;
        pthread_mutex_lock(&rs->usage_mu);
        rs_usage *u = entry(rs, key_id, day, true);
        if (u) {
            u->last = v;
            *seconds += u->pending; /* not flushed yet */
        }
        pthread_mutex_unlock(&rs->usage_mu);
        return LD_OK;
    }
    if (!ld_rs_fallback(rs))
        return LD_ERR_SERVICE_UNAVAILABLE;
    pthread_mutex_lock(&rs->usage_mu);
    rs_usage *u = entry(rs, key_id, day, false);
    *seconds = u ? u->last + u->pending : 0;
    pthread_mutex_unlock(&rs->usage_mu);
    return LD_OK;
}

void ld_rs_usage_flush(rstore *rs)
{
    if (!rs->usage || !rs->r || !ld_redis_up(rs->r))
        return;
    char today[11], yesterday[11];
    ld_time_utc_day(ld_time_now(), today);
    ld_time_utc_day(ld_time_now() - 86400, yesterday);
    pthread_mutex_lock(&rs->usage_mu);
    for (int b = 0; b < BUCKETS; b++) {
        for (rs_usage **pp = &rs->usage[b]; *pp;) {
            rs_usage *u = *pp;
            if (u->pending > 0) {
                redisReply *rep = incr(rs, u->key_id, u->day, u->pending, NULL);
                if (!rep) {
                    pthread_mutex_unlock(&rs->usage_mu);
                    return; /* down again: keep it for the next try */
                }
                if (rep->type == REDIS_REPLY_STRING) {
                    ld_log(LD_LOG_INFO, "store (redis): added %.1f s of %s used during the outage on %s",
                           u->pending, u->key_id, u->day);
                    u->last = strtod(rep->str, NULL);
                    u->pending = 0;
                }
                freeReplyObject(rep);
            }
            /* Old days are never read again: keep the table to today and yesterday. */
            if (u->pending <= 0 && strcmp(u->day, today) && strcmp(u->day, yesterday)) {
                *pp = u->next;
                free(u);
            } else {
                pp = &u->next;
            }
        }
    }
    pthread_mutex_unlock(&rs->usage_mu);
}
