/* Embedded store: sliding-window arithmetic (with explicit clocks), leases,
 * durable usage, revocations seen through a second handle, key records. */
#include <stdlib.h>
#include <unistd.h>

#include "store/mem.h"
#include "store/store.h"
#include "test.h"

static char dir[] = "/tmp/ld_store_test_XXXXXX";

static void test_window(ld_store *s)
{
    ld_window w;
    const int64_t t0 = 1000000, W = 60000;
    /* Three hits at t0, t0+10 s, t0+20 s fill a limit of 3. */
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0, &w, NULL) == LD_OK && w.allowed && w.count == 1);
    CHECK(w.oldest_ms == t0);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 10000, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 20000, &w, NULL) == LD_OK && w.allowed && w.count == 3);
    /* Fourth refused; the oldest leaves at exactly t0 + 60 s. */
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 30000, &w, NULL) == LD_OK && !w.allowed && w.count == 3);
    CHECK(w.oldest_ms == t0);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + W - 1, &w, NULL) == LD_OK && !w.allowed);
    /* Peek does not record. */
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 3);
    CHECK(w.oldest_ms == t0 + 10000);
    /* Undo gives the slot back. */
    ld_store_window_undo(s, "k_a");
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    /* Long after, the window is empty again. */
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + 10 * W, &w, NULL) == LD_OK && w.count == 0 && w.oldest_ms == 0);
    /* A clock stepping back does not break ordering: the hit counts as "now". */
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0, &w, NULL) == LD_OK && w.allowed);
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0 - 5000, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 1);
    /* Subjects are independent; bad arguments are errors, not admissions. */
    CHECK(ld_store_window_peek(s, "k_c", 3, W, t0, &w, NULL) == LD_OK && w.allowed && w.count == 0);
    ld_error err;
    CHECK(ld_store_window_hit(s, "k_c", 0, W, t0, &w, &err) == LD_ERR_INTERNAL);
    CHECK(ld_store_window_hit(s, "", 3, W, t0, &w, &err) == LD_ERR_INTERNAL);
}

static void test_leases(ld_store *s)
{
    char a[32], b[32], c[32];
    bool ok;
    int held;
    const int64_t t0 = 2000000;
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, a, &ok, &held, NULL) == LD_OK && ok && held == 1);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, b, &ok, &held, NULL) == LD_OK && ok && held == 2);
    CHECK(strcmp(a, b) != 0 && strncmp(a, "lease_", 6) == 0);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, c, &ok, &held, NULL) == LD_OK && !ok && held == 2);
    CHECK(ld_store_lease_count(s, "k_l", t0) == 2);
    ld_store_lease_release(s, "k_l", a);
    ld_store_lease_release(s, "k_l", a); /* double release is harmless */
    CHECK(ld_store_lease_count(s, "k_l", t0) == 1);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, c, &ok, &held, NULL) == LD_OK && ok && held == 2);
    /* Renewal keeps b alive past its first expiry; c expires and frees its slot. */
    CHECK(ld_store_lease_renew(s, "k_l", b, 5000, t0 + 900, NULL) == LD_OK);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 1000) == 1);
    CHECK(ld_store_lease_renew(s, "k_l", c, 5000, t0 + 1000, NULL) == LD_ERR_NOT_FOUND);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 5899) == 1);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 5900) == 0);
}

static void test_sweep(void)
{
    ld_store_mem *m = ld_store_mem_new();
    ld_window w;
    char id[32];
    bool ok;
    for (int i = 0; i < 500; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "ip:10.0.%d.%d", i / 256, i % 256);
        ld_store_mem_window(m, subj, 20, 60000, 1000, true, &w, NULL);
    }
    ld_store_mem_lease_acquire(m, "k_keep", 1, 1000000, 1000, id, &ok, NULL, NULL);
    CHECK(ld_store_mem_size(m) == 501);
    /* Every stripe sweeps on its next use after 10 s; windows are empty by then. */
    for (int i = 0; i < 500; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "ip:10.9.%d.%d", i / 256, i % 256);
        ld_store_mem_window(m, subj, 20, 60000, 1000 + 61000, false, &w, NULL);
    }
    CHECK(ld_store_mem_size(m) == 1); /* only the lease holder is left */
    ld_store_mem_free(m);
}

static void test_durable(void)
{
    ld_error err;
    ld_store *s1 = ld_store_open_embedded(dir, &err);
    ld_store *s2 = ld_store_open_embedded(dir, &err);
    CHECK(s1 && s2);
    if (!s1 || !s2)
        return;
    CHECK_STR(ld_store_backend(s1), "embedded");
    CHECK_STR(ld_store_data_dir(s1), dir);
    double total = -1, got = -1;
    CHECK(ld_store_usage_get(s1, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 0);
    CHECK(ld_store_usage_add(s1, "k_u", "2030-01-01", 12.5, &total, &err) == LD_OK && total == 12.5);
    CHECK(ld_store_usage_add(s1, "k_u", "2030-01-01", 7.5, &total, &err) == LD_OK && total == 20);
    CHECK(ld_store_usage_get(s1, "k_u", "2030-01-02", &got, &err) == LD_OK && got == 0);
    CHECK(ld_store_usage_get(s1, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 20);

    /* Revoked through s1, seen through s2 once its poll interval passed. */
    bool rev = true;
    CHECK(ld_store_is_revoked(s2, "k_r", &rev, &err) == LD_OK && !rev);
    CHECK(ld_store_revoke(s1, "k_r", 1700000000, &err) == LD_OK);
    CHECK(ld_store_is_revoked(s1, "k_r", &rev, &err) == LD_OK && rev); /* own handle: at once */
    usleep(300 * 1000);
    CHECK(ld_store_is_revoked(s2, "k_r", &rev, &err) == LD_OK && rev);
    CHECK(ld_store_is_revoked(s2, "k_other", &rev, &err) == LD_OK && !rev);

    ld_store_key k = {.key_id = "k_1", .name = "first", .issuer = "abcd0123", .issued_at = 100, .rpm = 5,
                      .concurrency = 2, .hours_per_day = 1.5};
    CHECK(ld_store_key_put(s1, &k, &err) == LD_OK);
    k = (ld_store_key){.key_id = "k_r", .name = "second", .issuer = "abcd0123", .issued_at = 200,
                       .expires_at = 300, .rpm = 60, .concurrency = 10, .hours_per_day = 100};
    CHECK(ld_store_key_put(s1, &k, &err) == LD_OK);
    ld_store_close(s1);
    ld_store_close(s2);

    /* Reopen: usage, revocation and records survived. */
    ld_store *s3 = ld_store_open_embedded(dir, &err);
    CHECK(s3 != NULL);
    if (!s3)
        return;
    CHECK(ld_store_usage_get(s3, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 20);
    CHECK(ld_store_is_revoked(s3, "k_r", &rev, &err) == LD_OK && rev);
    ld_store_key *keys = NULL;
    size_t n = 0;
    CHECK(ld_store_key_list(s3, &keys, &n, &err) == LD_OK && n == 2);
    if (n == 2) {
        CHECK_STR(keys[0].key_id, "k_1");
        CHECK_STR(keys[0].name, "first");
        CHECK(keys[0].rpm == 5 && keys[0].concurrency == 2 && keys[0].hours_per_day == 1.5);
        CHECK(keys[0].revoked_at == 0);
        CHECK_STR(keys[1].key_id, "k_r");
        CHECK(keys[1].revoked_at == 1700000000 && keys[1].expires_at == 300);
    }
    ld_store_free_keys(keys);
    ld_store_key one;
    bool found = false;
    CHECK(ld_store_key_get(s3, "k_1", &one, &found, &err) == LD_OK && found && one.issued_at == 100);
    CHECK(ld_store_key_get(s3, "k_none", &one, &found, &err) == LD_OK && !found);
    ld_store_close(s3);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    ld_error err;
    ld_store *s = ld_store_open_embedded(dir, &err);
    CHECK(s != NULL);
    if (s) {
        test_window(s);
        test_leases(s);
        ld_store_close(s);
    }
    test_sweep();
    test_durable();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    TEST_MAIN_END();
}
