/* State shared by the auth module's files; internal to src/auth/. */
#ifndef LD_AUTH_INTERNAL_H
#define LD_AUTH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth/auth.h"
#include "auth/key.h"

/* Verified-key cache: direct-mapped slots indexed by a keyed BLAKE2b hash of
 * the key text, so a hit costs one short hash and one striped lock instead of
 * an Ed25519 verification. Only keys with a valid signature are cached;
 * expiry and revocation are checked on every request, after the cache. */
#define LD_AUTH_CACHE_SLOTS 4096
#define LD_AUTH_CACHE_STRIPES 16

typedef struct {
    unsigned char hash[16];
    bool used;
    ld_key_claims claims;
} ld_auth_cache_slot;

/* Addresses that failed authentication recently (throttle.c): direct-mapped
 * by a keyed SipHash of the address so clients cannot aim collisions. A
 * collision only forgets an address, which then costs one more failure before
 * it is recorded again. 4096 x 16 bytes. */
#define LD_AUTH_FAIL_SLOTS 4096

typedef struct {
    uint64_t tag;    /* SipHash of the address; 0 = empty */
    int64_t last_ms; /* last failure seen by this process */
} ld_auth_fail_slot;

struct ld_auth {
    ld_store *store;
    ld_issuer_pub *issuers;
    size_t nissuers;
    unsigned char cache_key[crypto_generichash_KEYBYTES];
    pthread_mutex_t cache_mu[LD_AUTH_CACHE_STRIPES];
    ld_auth_cache_slot *cache;
    _Atomic int client_failure_limit;
    unsigned char fail_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t fail_mu;
    ld_auth_fail_slot *fails;
    /* The usage monitor; set while job runners may already charge, hence atomic. */
    _Atomic(ld_auth_usage_hook) usage_hook;
    void *_Atomic usage_hook_ud;
};

bool ld_auth_cache_get(ld_auth *a, const char *key, ld_key_claims *out);
void ld_auth_cache_put(ld_auth *a, const char *key, const ld_key_claims *c);
/* throttle.c: allocates/frees the failure table (0 / -1 on out of memory). */
int ld_auth_fails_init(ld_auth *a);
void ld_auth_fails_free(ld_auth *a);

#endif
