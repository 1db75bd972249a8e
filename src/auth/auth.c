/* Opening the verifier and checking keys: header parsing, cached signature
 * verification, revocation and expiry. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define DEFAULT_CLIENT_FAILURES 20

ld_auth *ld_auth_open(const char *data_dir, ld_store *store, ld_error *err)
{
    if (sodium_init() < 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "auth: libsodium failed to initialise");
        return NULL;
    }
    ld_auth *a = calloc(1, sizeof *a);
    if (!a || !(a->cache = calloc(LD_AUTH_CACHE_SLOTS, sizeof *a->cache)) || ld_auth_fails_init(a)) {
        if (a)
            free(a->cache);
        free(a);
        ld_error_set(err, LD_ERR_INTERNAL, "auth: out of memory");
        return NULL;
    }
    a->store = store;
    a->nissuers = ld_key_issuers_load(data_dir, &a->issuers);
    if (a->nissuers == 0) {
        char pub[4096];
        snprintf(pub, sizeof pub, "%s/issuer.pub", data_dir);
        if (!access(pub, F_OK)) /* there, but unreadable or not a key: `keys init` would refuse to replace it */
            ld_error_set(err, LD_ERR_INTERNAL, "%s cannot be read as an issuer public key (%s)", pub,
                         access(pub, R_OK) ? strerror(errno) : "not an Ed25519 public key");
        else
            ld_error_set(
                err, LD_ERR_INTERNAL,
                "No license issuer key in %s: run `listend keys init --data %s` first (or mount issuer.pub "
                "or trusted/*.pub there)",
                data_dir, data_dir);
        ld_auth_free(a);
        return NULL;
    }
    randombytes_buf(a->cache_key, sizeof a->cache_key);
    for (int i = 0; i < LD_AUTH_CACHE_STRIPES; i++)
        pthread_mutex_init(&a->cache_mu[i], NULL);
    atomic_init(&a->client_failure_limit, DEFAULT_CLIENT_FAILURES);
    json_t *fps = json_array();
    for (size_t i = 0; i < a->nissuers; i++)
        json_array_append_new(fps, json_string(a->issuers[i].fp_hex));
    ld_log_fields(LD_LOG_INFO, json_pack("{s:o}", "issuers", fps), "license key verifier ready (%zu issuer key%s)",
                  a->nissuers, a->nissuers == 1 ? "" : "s");
    return a;
}

void ld_auth_free(ld_auth *a)
{
    if (!a)
        return;
    if (a->nissuers)
        for (int i = 0; i < LD_AUTH_CACHE_STRIPES; i++)
            pthread_mutex_destroy(&a->cache_mu[i]);
    ld_auth_fails_free(a);
    free(a->issuers);
    free(a->cache);
    free(a);
}

int ld_auth_issuer_count(ld_auth *a) { return (int)a->nissuers; }

/* Counts a refused key by reason (listend_auth_failures_total); returns code. */
static ld_err refused(const char *reason, ld_err code)
{
    ld_metrics_auth_failure(reason);
    return code;
}

ld_err ld_auth_check_key(ld_auth *a, const char *key, ld_key_claims *out, ld_error *err)
{
    ld_key_claims c;
    if (!key || !*key || strnlen(key, LD_KEY_MAX_LEN + 1) > LD_KEY_MAX_LEN)
        return refused("invalid", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    if (!ld_auth_cache_get(a, key, &c)) {
        if (ld_key_verify(key, a->issuers, a->nissuers, &c, err))
            return refused("invalid", LD_ERR_INVALID_LICENSE);
        ld_auth_cache_put(a, key, &c);
    }
    bool revoked = false;
    ld_error serr;
    if (ld_store_is_revoked(a->store, c.key_id, &revoked, &serr)) {
        /* Fail closed: a store we cannot read might hold this revocation. */
        ld_log(LD_LOG_ERROR, "auth: revocation check failed: %s", serr.msg);
        return ld_error_set(err, LD_ERR_INTERNAL, NULL);
    }
    if (revoked)
        return refused("revoked", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    if (out)
        *out = c;
    if (c.expires_at && ld_time_now() >= c.expires_at)
        return refused("expired", ld_error_set(err, LD_ERR_LICENSE_EXPIRED, NULL));
    return LD_OK;
}

ld_err ld_auth_recheck(ld_auth *a, const ld_key_claims *k, ld_error *err)
{
    if (k->expires_at && ld_time_now() >= k->expires_at)
        return ld_error_set(err, LD_ERR_LICENSE_EXPIRED, "License expired");
    bool revoked = false;
    ld_error serr;
    if (ld_store_is_revoked(a->store, k->key_id, &revoked, &serr)) {
        ld_log(LD_LOG_WARNING, "auth: revocation re-check failed: %s", serr.msg);
        return LD_OK;
    }
    if (revoked)
        return ld_error_set(err, LD_ERR_INVALID_LICENSE, "License key revoked");
    return LD_OK;
}

ld_err ld_auth_check_header(ld_auth *a, const char *authorization, ld_key_claims *out, ld_error *err)
{
    if (!authorization)
        return refused("missing", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t slen = strcspn(p, " \t");
    if (!((slen == 5 && !strncasecmp(p, "token", 5)) || (slen == 6 && !strncasecmp(p, "bearer", 6))))
        return refused("invalid", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    p += slen;
    if (*p != ' ' && *p != '\t')
        return refused("invalid", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    while (*p == ' ' || *p == '\t')
        p++;
    size_t klen = strcspn(p, " \t\r\n");
    const char *rest = p + klen;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (klen == 0 || klen > LD_KEY_MAX_LEN || *rest)
        return refused("invalid", ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL));
    char key[LD_KEY_MAX_LEN + 1];
    memcpy(key, p, klen);
    key[klen] = '\0';
    return ld_auth_check_key(a, key, out, err);
}
