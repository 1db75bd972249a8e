/* Store calls per request (each one is a Redis round trip with --redis-url):
 * the failed-auth throttle asks the store only for addresses that failed here
 * recently, and admission hands GET /v1/license the usage it read. The store
 * is the embedded one with its ops table swapped for a counting copy. */
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth_internal.h"
#include "test.h"
#include "util/time.h"

static char dir[] = "/tmp/ld_auth_rt_test_XXXXXX";
static const ld_store_ops *real;
static ld_store_ops counting;
static int peeks, hits, usage_gets, lease_counts;

static ld_err c_peek(ld_store *s, const char *subj, int limit, int64_t win, int64_t now, ld_window *out,
                     ld_error *err)
{
    peeks++;
    return real->window_peek(s, subj, limit, win, now, out, err);
}

static ld_err c_hit(ld_store *s, const char *subj, int limit, int64_t win, int64_t now, ld_window *out,
                    ld_error *err)
{
    hits++;
    return real->window_hit(s, subj, limit, win, now, out, err);
}

static ld_err c_usage_get(ld_store *s, const char *key_id, const char *day, double *sec, ld_error *err)
{
    usage_gets++;
    return real->usage_get(s, key_id, day, sec, err);
}

static int c_lease_count(ld_store *s, const char *subj, int64_t now)
{
    lease_counts++;
    return real->lease_count(s, subj, now);
}

static ld_key_claims key_with(ld_auth *a, ld_issuer_secret *iss, int rpm, int conc, double hours)
{
    ld_key_claims c = {.rpm = rpm, .concurrency = conc, .hours_per_day = hours, .issued_at = ld_time_now()};
    snprintf(c.name, sizeof c.name, "rt");
    ld_key_new_id(c.key_id);
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    ld_key_claims out = {0};
    CHECK(ld_key_encode(iss, &c, key, sizeof key, &err) == LD_OK);
    CHECK(ld_auth_check_key(a, key, &out, &err) == LD_OK);
    return out;
}

static void test_throttle_skips_clean_addresses(ld_auth *a, ld_store *s)
{
    int retry = 0;
    ld_auth_set_client_failure_limit(a, 3);
    peeks = 0;
    for (int i = 0; i < 100; i++)
        CHECK(!ld_auth_client_throttled(a, "192.0.2.1", &retry));
    CHECK(peeks == 0);

    /* Another replica counted failures from this address in the shared
     * window: this one lets it try until it fails here once, then asks. */
    ld_window w;
    ld_error err;
    for (int i = 0; i < 3; i++)
        CHECK(ld_store_window_hit(s, "ip:192.0.2.2", 3, 60000, ld_time_now_ms(), &w, &err) == LD_OK);
    CHECK(!ld_auth_client_throttled(a, "192.0.2.2", &retry));
    CHECK(peeks == 0);
    ld_auth_client_failed(a, "192.0.2.2");
    CHECK(ld_auth_client_throttled(a, "192.0.2.2", &retry) && retry >= 59 && retry <= 60);
    CHECK(peeks == 1);

    /* Below the limit: asked, not throttled. */
    ld_auth_client_failed(a, "192.0.2.3");
    CHECK(!ld_auth_client_throttled(a, "192.0.2.3", &retry));
    CHECK(peeks == 2);
    /* Many other failing addresses only evict slots (bounded table): a
     * forgotten address is counted again at its next failure. */
    char addr[64];
    for (int i = 0; i < 3 * LD_AUTH_FAIL_SLOTS; i++) {
        snprintf(addr, sizeof addr, "2001:db8::%x", i);
        ld_auth_client_failed(a, addr);
    }
    ld_auth_client_failed(a, "192.0.2.2");
    CHECK(ld_auth_client_throttled(a, "192.0.2.2", &retry));
    ld_auth_set_client_failure_limit(a, 20);
}

static void test_admit_usage_snapshot(ld_auth *a, ld_issuer_secret *iss)
{
    ld_key_claims k = key_with(a, iss, 5, 3, 1.0);
    ld_error err;
    CHECK(ld_auth_add_usage(a, &k, 90, &err) == LD_OK);
    ld_lease l[2];
    ld_rate_info ri = {0};
    CHECK(ld_auth_admit(a, &k, true, &l[0], &ri, &err) == LD_OK);
    hits = usage_gets = lease_counts = 0;
    CHECK(ld_auth_admit(a, &k, true, &l[1], &ri, &err) == LD_OK);
    CHECK(hits == 1 && usage_gets == 1 && lease_counts == 0);
    CHECK(ri.have_usage);
    ld_usage u;
    CHECK(ld_auth_usage(a, &k, &u, &err) == LD_OK);
    CHECK(ri.usage.requests_this_minute == 2 && u.requests_this_minute == 2);
    CHECK(ri.usage.requests_remaining == 3 && u.requests_remaining == 3);
    CHECK(ri.usage.concurrent == 2 && u.concurrent == 2);
    CHECK_NEAR(ri.usage.audio_seconds_today, 90, 1e-9);
    CHECK_NEAR(ri.usage.audio_seconds_remaining, 3510, 1e-9);
    CHECK_NEAR(u.audio_seconds_remaining, ri.usage.audio_seconds_remaining, 1e-9);
    ld_auth_release(a, &l[0]);
    ld_auth_release(a, &l[1]);

    /* Refused (over quota): no snapshot, the caller reads usage itself. */
    CHECK(ld_auth_add_usage(a, &k, 3600, &err) == LD_OK);
    ri = (ld_rate_info){0};
    CHECK(ld_auth_admit(a, &k, true, &l[0], &ri, &err) == LD_ERR_QUOTA_EXCEEDED && !ri.have_usage);
}

int main(void)
{
    if (sodium_init() < 0 || !mkdtemp(dir))
        return 1;
    ld_issuer_secret iss;
    ld_key_issuer_generate(&iss);
    char path[256];
    snprintf(path, sizeof path, "%s/issuer.pub", dir);
    CHECK(ld_key_pub_save(path, &iss.pub) == 0);
    ld_error err;
    ld_store *s = ld_store_open_embedded(dir, &err);
    ld_auth *a = s ? ld_auth_open(dir, s, &err) : NULL;
    CHECK(a != NULL);
    if (a) {
        real = s->ops;
        counting = *real;
        counting.window_peek = c_peek;
        counting.window_hit = c_hit;
        counting.usage_get = c_usage_get;
        counting.lease_count = c_lease_count;
        s->ops = &counting;
        test_throttle_skips_clean_addresses(a, s);
        test_admit_usage_snapshot(a, &iss);
        s->ops = real;
        ld_auth_free(a);
    }
    ld_store_close(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    TEST_MAIN_END();
}
