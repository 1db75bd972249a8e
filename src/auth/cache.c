/* The verified-key cache (see internal.h). A colliding slot simply evicts:
 * the worst case is one extra signature check. */
#include <string.h>

#include "auth/auth_internal.h"

static size_t slot_of(ld_auth *a, const char *key, unsigned char hash[16])
{
    crypto_generichash(hash, 16, (const unsigned char *)key, strlen(key), a->cache_key, sizeof a->cache_key);
    uint32_t v;
    memcpy(&v, hash, sizeof v);
    return v % LD_AUTH_CACHE_SLOTS;
}

bool ld_auth_cache_get(ld_auth *a, const char *key, ld_key_claims *out)
{
    unsigned char hash[16];
    size_t i = slot_of(a, key, hash);
    pthread_mutex_t *mu = &a->cache_mu[i % LD_AUTH_CACHE_STRIPES];
    pthread_mutex_lock(mu);
    ld_auth_cache_slot *s = &a->cache[i];
    bool hit = s->used && !memcmp(s->hash, hash, sizeof hash);
    if (hit)
        *out = s->claims;
    pthread_mutex_unlock(mu);
    return hit;
}

void ld_auth_cache_put(ld_auth *a, const char *key, const ld_key_claims *c)
{
    unsigned char hash[16];
    size_t i = slot_of(a, key, hash);
    pthread_mutex_t *mu = &a->cache_mu[i % LD_AUTH_CACHE_STRIPES];
    pthread_mutex_lock(mu);
    ld_auth_cache_slot *s = &a->cache[i];
    memcpy(s->hash, hash, sizeof hash);
    s->claims = *c;
    s->used = true;
    pthread_mutex_unlock(mu);
}
