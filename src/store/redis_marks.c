/* Once-only marks in Redis: SET ld:m:<name> 1 NX PX <ttl>. Redis decides who
 * is first across replicas; the key expires by itself. While Redis is down
 * the caller gets the error and decides (the usage monitor then reports
 * rather than stay silent). */
#include <stdio.h>
#include <string.h>

#include "store/redis_store_internal.h"

ld_err ld_rs_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first, ld_error *err)
{
    rstore *rs = (rstore *)s;
    (void)now_ms; /* Redis keeps the time */
    *first = false;
    if (!name || !*name || strlen(name) > LD_STORE_SUBJECT_MAX || ttl_ms <= 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad mark arguments");
    char key[160], ttl[24];
    ld_rs_key(key, sizeof key, "m", name, NULL);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    redisReply *rep = ld_redis_cmdv(rs->r, err, "SET", key, "1", "NX", "PX", ttl, NULL);
    if (!rep)
        return err ? err->code : LD_ERR_SERVICE_UNAVAILABLE;
    ld_err rc = LD_OK;
    if (rep->type == REDIS_REPLY_STATUS && rep->str && !strcmp(rep->str, "OK"))
        *first = true;
    else if (rep->type != REDIS_REPLY_NIL)
        rc = ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "store (redis): mark: %s",
                          rep->str ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return rc;
}
