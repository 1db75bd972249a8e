/* Key format: encode/verify round trip, tampering, wrong issuer, rotation,
 * size limits, canonical text. */
#include <ctype.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/key.h"
#include "test.h"

static ld_key_claims claims(const char *name)
{
    ld_key_claims c = {.rpm = LD_DEFAULT_RPM,
                       .concurrency = LD_DEFAULT_CONCURRENCY,
                       .hours_per_day = LD_DEFAULT_HOURS_PER_DAY,
                       .issued_at = 1700000000};
    snprintf(c.name, sizeof c.name, "%s", name);
    ld_key_new_id(c.key_id);
    return c;
}

static bool header_safe(const char *k)
{
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '-' || *k == '_' || *k == '.'))
            return false;
    return true;
}

static void test_roundtrip(const ld_issuer_secret *iss)
{
    ld_key_claims c = claims("acme"), out;
    c.rpm = 7;
    c.concurrency = 3;
    c.hours_per_day = 0.5;
    c.expires_at = 1800000000;
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    CHECK(ld_key_encode(iss, &c, key, sizeof key, &err) == LD_OK);
    CHECK(strncmp(key, "ld1.", 4) == 0 && header_safe(key) && strlen(key) <= LD_KEY_MAX_LEN);
    CHECK(ld_key_verify(key, &iss->pub, 1, &out, &err) == LD_OK);
    CHECK_STR(out.key_id, c.key_id);
    CHECK_STR(out.name, "acme");
    CHECK(out.rpm == 7 && out.concurrency == 3 && out.hours_per_day == 0.5);
    CHECK(out.issued_at == 1700000000 && out.expires_at == 1800000000);
    uint8_t fp[4];
    CHECK(ld_key_decode(key, &out, fp, &err) == LD_OK && memcmp(fp, iss->pub.fp, 4) == 0);

    /* Defaults are encoded as "no limit named" and come back as defaults. */
    ld_key_claims d = claims("defaults");
    CHECK(ld_key_encode(iss, &d, key, sizeof key, &err) == LD_OK);
    CHECK(ld_key_verify(key, &iss->pub, 1, &out, &err) == LD_OK);
    CHECK(out.rpm == 60 && out.concurrency == 10 && out.hours_per_day == 100.0 && out.expires_at == 0);
}

static void test_tamper(const ld_issuer_secret *iss)
{
    ld_key_claims c = claims("tamper"), out;
    char key[LD_KEY_MAX_LEN + 1], bad[LD_KEY_MAX_LEN + 8];
    ld_error err;
    CHECK(ld_key_encode(iss, &c, key, sizeof key, &err) == LD_OK);
    const char *dot = strchr(key + 4, '.');
    size_t sig_at = (size_t)(dot - key) + 1;
    /* Flip one character in the payload, then one in the signature. */
    size_t spots[] = {6, 20, sig_at + 3, strlen(key) - 5};
    for (size_t i = 0; i < sizeof spots / sizeof *spots; i++) {
        memcpy(bad, key, sizeof key);
        bad[spots[i]] = bad[spots[i]] == 'A' ? 'B' : 'A';
        CHECK(ld_key_verify(bad, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
        CHECK_STR(err.msg, "Invalid license key");
    }
    /* Truncated, extended, wrong prefix, garbage, empty. */
    memcpy(bad, key, sizeof key);
    bad[strlen(bad) - 1] = '\0';
    CHECK(ld_key_verify(bad, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    snprintf(bad, sizeof bad, "%sA", key);
    CHECK(ld_key_verify(bad, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    memcpy(bad, key, sizeof key);
    bad[2] = '2';
    CHECK(ld_key_verify(bad, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_key_verify("ld1.x.y", &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_key_verify("", &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_key_verify(NULL, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    /* A non-canonical spelling of the same signature bytes (last character's
     * unused low bits set) is refused: one key, one text. */
    memcpy(bad, key, sizeof key);
    char *last = &bad[strlen(bad) - 1];
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, *last) - alpha);
    *last = alpha[v | 1];
    if (strcmp(bad, key))
        CHECK(ld_key_verify(bad, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
}

static void test_issuers(const ld_issuer_secret *a, const ld_issuer_secret *b)
{
    ld_key_claims c = claims("rotation"), out;
    char ka[LD_KEY_MAX_LEN + 1], kb[LD_KEY_MAX_LEN + 1];
    ld_error err;
    CHECK(ld_key_encode(a, &c, ka, sizeof ka, &err) == LD_OK);
    CHECK(ld_key_encode(b, &c, kb, sizeof kb, &err) == LD_OK);
    /* Wrong issuer: a key by b is invalid for a verifier that trusts only a. */
    CHECK(ld_key_verify(kb, &a->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    CHECK(ld_key_verify(ka, &b->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
    /* No issuers at all. */
    CHECK(ld_key_verify(ka, NULL, 0, &out, &err) == LD_ERR_INVALID_LICENSE);
    /* Rotation: trusting both accepts both. */
    ld_issuer_pub both[2] = {b->pub, a->pub};
    CHECK(ld_key_verify(ka, both, 2, &out, &err) == LD_OK);
    CHECK(ld_key_verify(kb, both, 2, &out, &err) == LD_OK);
    /* A forged key claiming a's fingerprint but signed by b fails. */
    ld_issuer_secret forger = *b;
    memcpy(forger.pub.fp, a->pub.fp, 4);
    char kf[LD_KEY_MAX_LEN + 1];
    CHECK(ld_key_encode(&forger, &c, kf, sizeof kf, &err) == LD_OK);
    CHECK(ld_key_verify(kf, both, 2, &out, &err) == LD_ERR_INVALID_LICENSE);
}

static void test_limits(const ld_issuer_secret *iss)
{
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    /* The longest name that fits, with the largest limits and dates: <= 200. */
    ld_key_claims c = claims("");
    memset(c.name, 'n', LD_KEY_NAME_MAX);
    c.name[LD_KEY_NAME_MAX] = '\0';
    c.rpm = LD_KEY_LIMIT_MAX;
    c.concurrency = LD_KEY_LIMIT_MAX;
    c.hours_per_day = LD_KEY_HOURS_MAX;
    c.expires_at = UINT32_MAX;
    CHECK(ld_key_encode(iss, &c, key, sizeof key, &err) == LD_OK);
    CHECK(strlen(key) <= LD_KEY_MAX_LEN && header_safe(key));
    /* One byte more is refused at issue time with a message. */
    c.name[LD_KEY_NAME_MAX] = 'n';
    c.name[LD_KEY_NAME_MAX + 1] = '\0';
    CHECK(ld_key_encode(iss, &c, key, sizeof key, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "too long") != NULL);
    ld_key_claims e = claims("x");
    e.rpm = 0;
    CHECK(ld_key_encode(iss, &e, key, sizeof key, &err) == LD_ERR_INVALID_PARAMETER);
    e = claims("x");
    e.hours_per_day = 0;
    CHECK(ld_key_encode(iss, &e, key, sizeof key, &err) == LD_ERR_INVALID_PARAMETER);
    e = claims("bad\nname");
    CHECK(ld_key_encode(iss, &e, key, sizeof key, &err) == LD_ERR_INVALID_PARAMETER);
    e = claims("");
    CHECK(ld_key_encode(iss, &e, key, sizeof key, &err) == LD_ERR_INVALID_PARAMETER);
    /* UTF-8 names are fine. */
    e = claims("Ünïcødé GmbH");
    ld_key_claims out;
    CHECK(ld_key_encode(iss, &e, key, sizeof key, &err) == LD_OK);
    CHECK(ld_key_verify(key, &iss->pub, 1, &out, &err) == LD_OK && strcmp(out.name, "Ünïcødé GmbH") == 0);
    /* A 250-character token is refused before any decoding. */
    char big[300];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "ld1.", 4);
    CHECK(ld_key_verify(big, &iss->pub, 1, &out, &err) == LD_ERR_INVALID_LICENSE);
}

static void test_files(const ld_issuer_secret *a, const ld_issuer_secret *b)
{
    char dir[] = "/tmp/ld_key_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512], tdir[256];
    snprintf(path, sizeof path, "%s/issuer.key", dir);
    CHECK(ld_key_secret_save(path, a) == 0);
    ld_issuer_secret back;
    CHECK(ld_key_secret_load(path, &back) == 0 && memcmp(back.sk, a->sk, sizeof a->sk) == 0);
    CHECK(strcmp(back.pub.fp_hex, a->pub.fp_hex) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    ld_issuer_pub *pubs = NULL;
    CHECK(ld_key_issuers_load(dir, &pubs) == 0 && pubs == NULL);
    snprintf(path, sizeof path, "%s/issuer.pub", dir);
    CHECK(ld_key_pub_save(path, &a->pub) == 0);
    snprintf(tdir, sizeof tdir, "%s/trusted", dir);
    mkdir(tdir, 0700);
    snprintf(path, sizeof path, "%s/old.pub", tdir);
    CHECK(ld_key_pub_save(path, &b->pub) == 0);
    snprintf(path, sizeof path, "%s/dup.pub", tdir);
    CHECK(ld_key_pub_save(path, &a->pub) == 0); /* duplicate of issuer.pub */
    snprintf(path, sizeof path, "%s/readme.txt", tdir);
    CHECK(ld_key_pub_save(path, &a->pub) == 0); /* not *.pub: ignored */
    snprintf(path, sizeof path, "%s/junk.pub", tdir);
    FILE *f = fopen(path, "w");
    fputs("not base64 !!\n", f);
    fclose(f);
    size_t n = ld_key_issuers_load(dir, &pubs);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(memcmp(pubs[0].pk, a->pub.pk, 32) == 0);
        CHECK(memcmp(pubs[1].pk, b->pub.pk, 32) == 0);
    }
    free(pubs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ld_issuer_secret a, b;
    ld_key_issuer_generate(&a);
    ld_key_issuer_generate(&b);
    CHECK(strlen(a.pub.fp_hex) == 8 && strcmp(a.pub.fp_hex, b.pub.fp_hex) != 0);
    char id[32];
    ld_key_new_id(id);
    CHECK(ld_key_id_valid(id) && !ld_key_id_valid("k_123") && !ld_key_id_valid("x_0123456789abcdef"));
    test_roundtrip(&a);
    test_tamper(&a);
    test_issuers(&a, &b);
    test_limits(&a);
    test_files(&a, &b);
    TEST_MAIN_END();
}
