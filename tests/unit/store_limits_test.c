/* Embedded store: the store contract (store_contract.h), then what is its
 * own: idle subjects swept from memory, durability across reopening,
 * revocations seen through a second handle. */
#include <stdlib.h>
#include <unistd.h>

#include "store/mem.h"
#include "store/store.h"
#include "store_contract.h"
#include "test.h"

static char dir[] = "/tmp/ld_store_test_XXXXXX";

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

/* What the contract wrote survives closing and reopening; a revocation made
 * through one handle reaches another once its poll interval passed. */
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
    bool rev = true;
    CHECK(ld_store_is_revoked(s2, "k_late", &rev, &err) == LD_OK && !rev);
    CHECK(ld_store_revoke(s1, "k_late", 1700000100, &err) == LD_OK);
    usleep(300 * 1000);
    CHECK(ld_store_is_revoked(s2, "k_late", &rev, &err) == LD_OK && rev);
    ld_store_close(s1);
    ld_store_close(s2);

    ld_store *s3 = ld_store_open_embedded(dir, &err);
    CHECK(s3 != NULL);
    if (!s3)
        return;
    double got = -1;
    CHECK(ld_store_usage_get(s3, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 20);
    CHECK(ld_store_is_revoked(s3, "k_r", &rev, &err) == LD_OK && rev);
    CHECK(ld_store_is_revoked(s3, "k_late", &rev, &err) == LD_OK && rev);
    ld_store_key *keys = NULL;
    size_t n = 0;
    CHECK(ld_store_key_list(s3, &keys, &n, &err) == LD_OK && n == 2);
    if (n == 2)
        CHECK(!strcmp(keys[0].key_id, "k_1") && keys[1].revoked_at == 1700000000);
    ld_store_free_keys(keys);
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
        contract_window(s);
        contract_leases(s);
        contract_shared(s, s); /* one handle: each caches today's usage in memory */
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
