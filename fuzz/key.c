/* libFuzzer entry: license keys as they arrive in Authorization headers,
 * query parameters and WebSocket subprotocols. Each input goes through
 * ld_key_decode, ld_key_verify and ld_auth_check_header (header splitting,
 * cache, revocation lookup) against a fixed issuer, so seeds signed with it
 * reach the verified path. A second pass turns the bytes into claims and
 * checks that encode -> verify round-trips exactly. Any crash, sanitizer
 * report or broken round trip is a bug; every refusal is fine. */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/key.h"
#include "store/store.h"
#include "util/log.h"

/* Fixed so committed seeds signed with it stay valid (LD_FUZZ_PRINT_KEY=1
 * prints a fresh one). Test-only: no server trusts this issuer. */
static const unsigned char SEED[crypto_sign_SEEDBYTES] = "listend-fuzz-issuer-seed-32bytes";

static ld_issuer_secret iss;
static ld_auth *auth;
static ld_store *store;
static char dir[] = "/tmp/listend-fuzz-key-XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void cleanup(void)
{
    ld_auth_free(auth);
    ld_store_close(store);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void init(void)
{
    ld_log_set_level(LD_LOG_CRITICAL);
    if (sodium_init() < 0 || !mkdtemp(dir))
        abort();
    crypto_sign_seed_keypair(iss.pub.pk, iss.sk, SEED);
    ld_key_issuer_init(&iss.pub);
    char path[256];
    snprintf(path, sizeof path, "%s/issuer.pub", dir);
    ld_error err;
    if (ld_key_pub_save(path, &iss.pub) || !(store = ld_store_open_embedded(dir, &err)) ||
        !(auth = ld_auth_open(dir, store, &err)))
        abort();
    atexit(cleanup);
    /* Print one valid key so the seed corpus can be regenerated. */
    if (getenv("LD_FUZZ_PRINT_KEY")) {
        ld_key_claims c = {
            .name = "fuzz", .issued_at = 1700000000, .rpm = 60, .concurrency = 10, .hours_per_day = 100};
        ld_key_new_id(c.key_id);
        char k[LD_KEY_MAX_LEN + 1];
        if (ld_key_encode(&iss, &c, k, sizeof k, &err) == LD_OK)
            printf("%s\n", k);
    }
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void round_trip(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    ld_key_claims c = {0};
    ld_key_new_id(c.key_id);
    c.issued_at = be32(data);
    c.expires_at = data[4] & 1 ? 0 : (int64_t)be32(data + 4);
    c.rpm = (int)(be32(data + 8) % (LD_KEY_LIMIT_MAX + 2));
    c.concurrency = (int)(data[12] | data[13] << 8);
    c.hours_per_day = data[14] ? (double)data[15] * 7.5 : 100;
    size_t n = size - 16 < sizeof c.name - 1 ? size - 16 : sizeof c.name - 1;
    memcpy(c.name, data + 16, n);
    c.name[n] = 0;
    char k[LD_KEY_MAX_LEN + 1];
    ld_error err;
    if (ld_key_encode(&iss, &c, k, sizeof k, &err) != LD_OK)
        return; /* bad name or limit: refused with a message */
    ld_key_claims back;
    if (strlen(k) > LD_KEY_MAX_LEN || ld_key_verify(k, &iss.pub, 1, &back, &err) != LD_OK)
        abort();
    if (strcmp(back.key_id, c.key_id) || strcmp(back.name, c.name) || back.issued_at != c.issued_at ||
        back.expires_at != c.expires_at)
        abort();
    /* Limits equal to the defaults travel as 0 and come back as the default. */
    if (c.rpm && back.rpm != c.rpm)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    ld_key_claims c;
    uint8_t fp[4];
    ld_error err;
    ld_key_decode(s, &c, fp, &err);
    ld_key_verify(s, &iss.pub, 1, &c, &err);
    ld_auth_check_header(auth, s, &c, &err);
    ld_auth_check_key(auth, s, &c, &err);
    free(s);

    round_trip(data, size);
    return 0;
}
