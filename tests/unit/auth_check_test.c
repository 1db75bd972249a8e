/* ld_auth_*: header parsing, cache, expiry, revocation while running,
 * admission (rate, concurrency, quota), usage persistence, client throttling. */
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth_internal.h"
#include "test.h"
#include "util/time.h"

static char dir[] = "/tmp/ld_auth_test_XXXXXX";
static ld_issuer_secret iss;

static void issue(char *key, const char *name, int rpm, int conc, double hours, int64_t expires_at)
{
    ld_key_claims c = {.rpm = rpm,
                       .concurrency = conc,
                       .hours_per_day = hours,
                       .issued_at = ld_time_now(),
                       .expires_at = expires_at};
    snprintf(c.name, sizeof c.name, "%s", name);
    ld_key_new_id(c.key_id);
    ld_error err;
    if (ld_key_encode(&iss, &c, key, LD_KEY_MAX_LEN + 1, &err))
        fprintf(stderr, "encode: %s\n", err.msg);
}

static void test_header(ld_auth *a)
{
    char key[LD_KEY_MAX_LEN + 1], h[300];
    issue(key, "header", 60, 10, 100, 0);
    ld_key_claims c;
    ld_error err;
    const char *good[] = {"Token %s", "Bearer %s", "token %s", "BEARER %s", "  Token   %s  "};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(h, sizeof h, good[i], key);
        CHECK(ld_auth_check_header(a, h, &c, &err) == LD_OK);
    }
    CHECK_STR(c.name, "header");
    const char *bad[] = {"Basic %s", "Token%s", "%s", "Token %s extra", "Token  %sx", "Tokens %s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(h, sizeof h, bad[i], key);
        memset(&err, 0, sizeof err);
        CHECK(ld_auth_check_header(a, h, &c, &err) == LD_ERR_INVALID_LICENSE);
        CHECK_STR(err.msg, "Invalid license key");
    }
    CHECK(ld_auth_check_header(a, NULL, &c, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_auth_check_header(a, "", &c, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_auth_check_header(a, "Token ", &c, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_auth_check_key(a, "abc123def456", &c, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_OK);

    /* A key from an issuer this server does not trust. */
    ld_issuer_secret other;
    ld_key_issuer_generate(&other);
    ld_issuer_secret saved = iss;
    iss = other;
    issue(key, "stranger", 60, 10, 100, 0);
    iss = saved;
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_ERR_INVALID_LICENSE);
}

static void test_cache_expiry_revocation(ld_auth *a)
{
    char key[LD_KEY_MAX_LEN + 1];
    ld_key_claims c;
    ld_error err;
    /* Expired: 403 code, exact message, claims filled for expires_at. */
    issue(key, "expired", 60, 10, 100, ld_time_now() - 10);
    memset(&c, 0, sizeof c);
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_ERR_LICENSE_EXPIRED);
    CHECK_STR(err.msg, "License expired");
    CHECK(c.expires_at == ld_time_now() - 10 || c.expires_at == ld_time_now() - 11);
    CHECK_STR(c.name, "expired");

    /* A verified key is served from the cache: it still passes once the
     * verifier no longer holds any issuer key (so no signature check ran). */
    issue(key, "cached", 60, 10, 100, 0);
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_OK);
    size_t n = a->nissuers;
    a->nissuers = 0;
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_OK);
    char fresh[LD_KEY_MAX_LEN + 1];
    issue(fresh, "fresh", 60, 10, 100, 0);
    CHECK(ld_auth_check_key(a, fresh, &c, &err) == LD_ERR_INVALID_LICENSE);
    a->nissuers = n;

    /* Revoked by another process (second store handle, as `keys revoke`
     * does): refused even though cached, within the poll interval. */
    ld_store *other = ld_store_open_embedded(dir, &err);
    CHECK(other != NULL);
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_OK);
    if (other) {
        CHECK(ld_store_revoke(other, c.key_id, ld_time_now(), &err) == LD_OK);
        ld_store_close(other);
    }
    double t0 = ld_time_mono();
    ld_err rc;
    while ((rc = ld_auth_check_key(a, key, &c, &err)) == LD_OK && ld_time_mono() - t0 < 5)
        usleep(20 * 1000);
    CHECK(rc == LD_ERR_INVALID_LICENSE);
    CHECK_STR(err.msg, "Invalid license key");
    CHECK(ld_time_mono() - t0 < 2.0);
}

static ld_key_claims claims_of(ld_auth *a, const char *key)
{
    ld_key_claims c = {0};
    ld_error err;
    CHECK(ld_auth_check_key(a, key, &c, &err) == LD_OK);
    return c;
}

static void test_admit(ld_auth *a)
{
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    ld_rate_info ri;
    ld_lease l[4];
    /* rpm 3: remaining counts down, reset is the window's age, the 4th waits. */
    issue(key, "rate", 3, 10, 100, 0);
    ld_key_claims k = claims_of(a, key);
    for (int i = 0; i < 3; i++) {
        CHECK(ld_auth_admit(a, &k, true, &l[i], &ri, &err) == LD_OK && l[i].held);
        CHECK(ri.limit == 3 && ri.remaining == 2 - i);
        CHECK(ri.reset >= 59 && ri.reset <= 60);
        ld_auth_release(a, &l[i]);
        CHECK(!l[i].held);
    }
    memset(&err, 0, sizeof err);
    CHECK(ld_auth_admit(a, &k, true, &l[3], &ri, &err) == LD_ERR_RATE_LIMITED && !l[3].held);
    CHECK_STR(err.msg, "Rate limit exceeded");
    CHECK(ri.remaining == 0 && ri.retry_after >= 59 && ri.retry_after <= 60 && ri.reset == ri.retry_after);
    ld_usage u;
    CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK && u.requests_this_minute == 3 && u.requests_remaining == 0);

    /* concurrency 2: the third concurrent request is refused with retry 1 and
     * does not use up the rate; a release frees the slot. */
    issue(key, "conc", 10, 2, 100, 0);
    k = claims_of(a, key);
    CHECK(ld_auth_admit(a, &k, true, &l[0], &ri, &err) == LD_OK);
    CHECK(ld_auth_admit(a, &k, true, &l[1], &ri, &err) == LD_OK && ri.remaining == 8);
    CHECK(ld_auth_admit(a, &k, true, &l[2], &ri, &err) == LD_ERR_RATE_LIMITED && !l[2].held);
    CHECK(ri.retry_after == 1 && ri.remaining == 8);
    CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK && u.concurrent == 2 && u.requests_this_minute == 2);
    CHECK(ld_auth_lease_renew(a, &l[0], &err) == LD_OK);
    ld_auth_release(a, &l[0]);
    ld_auth_release(a, &l[0]);
    CHECK(ld_auth_admit(a, &k, true, &l[2], &ri, &err) == LD_OK);
    ld_auth_release(a, &l[1]);
    ld_auth_release(a, &l[2]);
    CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK && u.concurrent == 0 && u.requests_this_minute == 3);

    /* Quota: 0.001 h is 3.6 s, stored in the key as whole seconds: 4 s per day. */
    issue(key, "quota", 60, 10, 0.001, 0);
    k = claims_of(a, key);
    CHECK(ld_auth_check_quota(a, &k, &err) == LD_OK);
    CHECK(ld_auth_add_usage(a, &k, 2.0, &err) == LD_OK);
    CHECK(ld_auth_check_quota(a, &k, &err) == LD_OK);
    CHECK(ld_auth_admit(a, &k, true, &l[0], &ri, &err) == LD_OK);
    ld_auth_release(a, &l[0]);
    CHECK(ld_auth_add_usage(a, &k, 1.5, &err) == LD_OK);
    CHECK(ld_auth_check_quota(a, &k, &err) == LD_OK);
    CHECK(ld_auth_add_usage(a, &k, 0.5, &err) == LD_OK);
    memset(&err, 0, sizeof err);
    CHECK(ld_auth_check_quota(a, &k, &err) == LD_ERR_QUOTA_EXCEEDED);
    CHECK_STR(err.msg, "Daily audio quota exceeded");
    CHECK(ld_auth_admit(a, &k, true, &l[0], &ri, &err) == LD_ERR_QUOTA_EXCEEDED && !l[0].held);
    CHECK(ri.retry_after >= 1 && ri.retry_after <= 86400);
    /* Without quota (GET /v1/license, /v1/jobs): admitted over the quota, but
     * under the rate and concurrency limits like any request (issue #17). */
    CHECK(ld_auth_admit(a, &k, false, &l[0], &ri, &err) == LD_OK && l[0].held && ri.have_usage);
    CHECK(ri.limit == 60 && ri.remaining == 58 && ri.usage.audio_seconds_remaining == 0);
    CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK);
    CHECK_NEAR(u.audio_seconds_today, 4.0, 1e-9);
    CHECK(u.audio_seconds_remaining == 0 && u.requests_this_minute == 2 && u.concurrent == 1);
    ld_auth_release(a, &l[0]);
}

static void test_throttle(ld_auth *a)
{
    int retry = 0;
    ld_auth_set_client_failure_limit(a, 3);
    CHECK(!ld_auth_client_throttled(a, "10.0.1.5", &retry));
    for (int i = 0; i < 3; i++)
        ld_auth_client_failed(a, "10.0.1.5");
    CHECK(ld_auth_client_throttled(a, "10.0.1.5", &retry));
    CHECK(retry >= 59 && retry <= 60);
    CHECK(!ld_auth_client_throttled(a, "10.0.1.6", &retry));
    CHECK(!ld_auth_client_throttled(a, NULL, &retry));
    /* IPv6 text and oversized input are fine. */
    char longaddr[200];
    memset(longaddr, 'f', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    for (int i = 0; i < 3; i++)
        ld_auth_client_failed(a, longaddr);
    CHECK(ld_auth_client_throttled(a, longaddr, &retry));
    ld_auth_set_client_failure_limit(a, 0);
    CHECK(!ld_auth_client_throttled(a, "10.0.1.5", &retry));
    ld_auth_set_client_failure_limit(a, 20);
    CHECK(!ld_auth_client_throttled(a, "10.0.1.5", &retry));
}

static void test_usage_survives_restart(void)
{
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    issue(key, "persist", 60, 10, 1, 0);
    for (int round = 0; round < 2; round++) {
        ld_store *s = ld_store_open_embedded(dir, &err);
        ld_auth *a = s ? ld_auth_open(dir, s, &err) : NULL;
        CHECK(a != NULL);
        if (!a) {
            ld_store_close(s);
            return;
        }
        ld_key_claims k = claims_of(a, key);
        CHECK(ld_auth_add_usage(a, &k, 1000, &err) == LD_OK);
        ld_usage u;
        CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK);
        CHECK_NEAR(u.audio_seconds_today, 1000.0 * (round + 1), 1e-9);
        CHECK_NEAR(u.audio_seconds_remaining, 3600 - 1000.0 * (round + 1), 1e-9);
        ld_auth_free(a);
        ld_store_close(s);
    }
}

int main(void)
{
    if (sodium_init() < 0 || !mkdtemp(dir))
        return 1;
    ld_error err;
    ld_store *s = ld_store_open_embedded(dir, &err);
    CHECK(s != NULL);
    if (!s)
        TEST_MAIN_END();
    /* No issuer key yet: refuse to start. */
    CHECK(ld_auth_open(dir, s, &err) == NULL && err.code == LD_ERR_INTERNAL);
    ld_key_issuer_generate(&iss);
    char path[256];
    snprintf(path, sizeof path, "%s/issuer.pub", dir);
    CHECK(ld_key_pub_save(path, &iss.pub) == 0);
    ld_auth *a = ld_auth_open(dir, s, &err);
    CHECK(a != NULL);
    if (a) {
        CHECK(ld_auth_issuer_count(a) == 1);
        test_header(a);
        test_cache_expiry_revocation(a);
        test_admit(a);
        test_throttle(a);
        ld_auth_free(a);
    }
    ld_store_close(s);
    test_usage_survives_restart();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    TEST_MAIN_END();
}
