#include "auth/key.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/log.h"

#define PREFIX "ld1."
#define PAYLOAD_FIXED 34
#define PAYLOAD_MAX (PAYLOAD_FIXED + LD_KEY_NAME_MAX)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

void ld_key_issuer_init(ld_issuer_pub *p)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, p->pk, sizeof p->pk, NULL, 0);
    memcpy(p->fp, h, 4);
    sodium_bin2hex(p->fp_hex, sizeof p->fp_hex, p->fp, 4);
}

void ld_key_issuer_generate(ld_issuer_secret *s)
{
    crypto_sign_keypair(s->pub.pk, s->sk);
    ld_key_issuer_init(&s->pub);
}

/* Reads one base64 (original alphabet) line decoding to exactly `len` bytes. */
static int load_b64(const char *path, unsigned char *bin, size_t len)
{
    char *text = ld_fs_read(path, 4096, NULL);
    if (!text)
        return -1;
    size_t got = 0;
    int rc = sodium_base642bin(bin, len, text, strlen(text), " \t\r\n", &got, NULL, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(text, strlen(text));
    free(text);
    return rc == 0 && got == len ? 0 : -1;
}

static int save_b64(const char *path, const unsigned char *bin, size_t len, int mode)
{
    char text[sodium_base64_ENCODED_LEN(crypto_sign_SECRETKEYBYTES, sodium_base64_VARIANT_ORIGINAL) + 1];
    sodium_bin2base64(text, sizeof text - 1, bin, len, sodium_base64_VARIANT_ORIGINAL);
    size_t n = strlen(text);
    text[n++] = '\n';
    int rc = ld_fs_write_atomic(path, text, n, mode);
    sodium_memzero(text, sizeof text);
    return rc;
}

int ld_key_pub_load(const char *path, ld_issuer_pub *out)
{
    if (load_b64(path, out->pk, sizeof out->pk))
        return -1;
    ld_key_issuer_init(out);
    return 0;
}

int ld_key_secret_load(const char *path, ld_issuer_secret *out)
{
    if (load_b64(path, out->sk, sizeof out->sk))
        return -1;
    crypto_sign_ed25519_sk_to_pk(out->pub.pk, out->sk);
    ld_key_issuer_init(&out->pub);
    return 0;
}

int ld_key_pub_save(const char *path, const ld_issuer_pub *p) { return save_b64(path, p->pk, sizeof p->pk, 0644); }

int ld_key_secret_save(const char *path, const ld_issuer_secret *s)
{
    return save_b64(path, s->sk, sizeof s->sk, 0600);
}

static int add_issuer(ld_issuer_pub **arr, size_t *n, const char *path)
{
    ld_issuer_pub p;
    if (ld_key_pub_load(path, &p)) {
        ld_log(LD_LOG_WARNING, "auth: skipping unreadable issuer public key %s", path);
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        if (!memcmp((*arr)[i].pk, p.pk, sizeof p.pk))
            return 0;
    ld_issuer_pub *na = realloc(*arr, sizeof *na * (*n + 1));
    if (!na)
        return -1;
    na[(*n)++] = p;
    *arr = na;
    return 0;
}

size_t ld_key_issuers_load(const char *data_dir, ld_issuer_pub **out)
{
    ld_issuer_pub *arr = NULL;
    size_t n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/issuer.pub", data_dir);
    if (access(path, F_OK) == 0)
        add_issuer(&arr, &n, path);
    snprintf(path, sizeof path, "%s/trusted", data_dir);
    /* Sorted, so which duplicate wins does not depend on readdir order. */
    struct dirent **names = NULL;
    int cnt = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < cnt; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && !strcmp(names[i]->d_name + len - 4, ".pub")) {
            char file[4096 + 256];
            snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
            add_issuer(&arr, &n, file);
        }
        free(names[i]);
    }
    free(names);
    *out = arr;
    return n;
}

void ld_key_new_id(char out[32])
{
    unsigned char raw[8];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "k_", 2);
    sodium_bin2hex(out + 2, 17, raw, sizeof raw);
}

int ld_key_id_valid(const char *s)
{
    if (!s || strncmp(s, "k_", 2) || strlen(s) != 18)
        return 0;
    for (int i = 2; i < 18; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int name_ok(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

ld_err ld_key_encode(const ld_issuer_secret *iss, const ld_key_claims *c, char *out, size_t outsz, ld_error *err)
{
    size_t nlen = strlen(c->name);
    if (nlen == 0)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "key name must not be empty");
    if (nlen > LD_KEY_NAME_MAX)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "key name too long: %zu bytes, at most %d fit in a key",
                            nlen, LD_KEY_NAME_MAX);
    if (!name_ok(c->name))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "key name must not contain control characters");
    if (c->rpm < 1 || c->rpm > LD_KEY_LIMIT_MAX || c->concurrency < 1 || c->concurrency > LD_KEY_LIMIT_MAX)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "rpm and concurrency must be between 1 and %d",
                            LD_KEY_LIMIT_MAX);
    if (!(c->hours_per_day > 0) || c->hours_per_day > LD_KEY_HOURS_MAX)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "hours per day must be > 0 and <= %.0f",
                            LD_KEY_HOURS_MAX);
    if (c->issued_at < 0 || c->issued_at > UINT32_MAX || c->expires_at < 0 || c->expires_at > UINT32_MAX)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "dates must lie between 1970 and 2106");
    unsigned char id[8];
    size_t idlen = 0;
    if (!ld_key_id_valid(c->key_id) || sodium_hex2bin(id, sizeof id, c->key_id + 2, 16, NULL, &idlen, NULL) ||
        idlen != 8)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "invalid key id");
    uint32_t audio_s = (uint32_t)(c->hours_per_day * 3600 + 0.5);
    if (audio_s == 0)
        audio_s = 1;

    unsigned char p[PAYLOAD_MAX];
    p[0] = 1;
    memcpy(p + 1, iss->pub.fp, 4);
    memcpy(p + 5, id, 8);
    put32(p + 13, (uint32_t)c->issued_at);
    put32(p + 17, (uint32_t)c->expires_at);
    put32(p + 21, c->rpm == LD_DEFAULT_RPM ? 0 : (uint32_t)c->rpm);
    put32(p + 25, c->concurrency == LD_DEFAULT_CONCURRENCY ? 0 : (uint32_t)c->concurrency);
    put32(p + 29, audio_s == (uint32_t)(LD_DEFAULT_HOURS_PER_DAY * 3600) ? 0 : audio_s);
    p[33] = (unsigned char)nlen;
    memcpy(p + 34, c->name, nlen);
    size_t plen = PAYLOAD_FIXED + nlen;

    char text[LD_KEY_MAX_LEN + 1];
    size_t pre = strlen(PREFIX);
    memcpy(text, PREFIX, pre);
    sodium_bin2base64(text + pre, sizeof text - pre, p, plen, B64);
    size_t signed_len = strlen(text);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)text, signed_len, iss->sk);
    char sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, B64)];
    sodium_bin2base64(sig64, sizeof sig64, sig, sizeof sig, B64);
    int n = snprintf(out, outsz, "%s.%s", text, sig64);
    if (n < 0 || (size_t)n >= outsz || n > LD_KEY_MAX_LEN)
        return ld_error_set(err, LD_ERR_INTERNAL, "key does not fit in %d characters", LD_KEY_MAX_LEN);
    return LD_OK;
}

/* Decodes a base64url field and insists on the canonical spelling, so one
 * key has exactly one text (the cache and logs can rely on it). */
static int b64_field(const char *s, size_t len, unsigned char *bin, size_t max, size_t *got)
{
    if (sodium_base642bin(bin, max, s, len, NULL, got, NULL, B64))
        return -1;
    char back[LD_KEY_MAX_LEN + 1];
    if (sodium_base64_ENCODED_LEN(*got, B64) > sizeof back)
        return -1;
    sodium_bin2base64(back, sizeof back, bin, *got, B64);
    return strlen(back) == len && !memcmp(back, s, len) ? 0 : -1;
}

static ld_err parse(const char *key, ld_key_claims *out, uint8_t fp[4], size_t *signed_len,
                    unsigned char sig[crypto_sign_BYTES], ld_error *err)
{
    size_t len = key ? strnlen(key, LD_KEY_MAX_LEN + 1) : 0;
    size_t pre = strlen(PREFIX);
    const char *dot;
    if (len > LD_KEY_MAX_LEN || len <= pre || strncmp(key, PREFIX, pre) || !(dot = strchr(key + pre, '.')))
        return ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL);
    unsigned char p[PAYLOAD_MAX];
    size_t plen = 0, slen = 0;
    if (b64_field(key + pre, (size_t)(dot - key) - pre, p, sizeof p, &plen) || plen < PAYLOAD_FIXED || p[0] != 1 ||
        plen != (size_t)PAYLOAD_FIXED + p[33] ||
        b64_field(dot + 1, len - (size_t)(dot + 1 - key), sig, crypto_sign_BYTES, &slen) ||
        slen != crypto_sign_BYTES)
        return ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL);
    memset(out, 0, sizeof *out);
    memcpy(fp, p + 1, 4);
    memcpy(out->key_id, "k_", 2);
    sodium_bin2hex(out->key_id + 2, 17, p + 5, 8);
    out->issued_at = get32(p + 13);
    out->expires_at = get32(p + 17);
    uint32_t rpm = get32(p + 21), conc = get32(p + 25), audio = get32(p + 29);
    if (rpm > LD_KEY_LIMIT_MAX || conc > LD_KEY_LIMIT_MAX)
        return ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL);
    out->rpm = rpm ? (int)rpm : LD_DEFAULT_RPM;
    out->concurrency = conc ? (int)conc : LD_DEFAULT_CONCURRENCY;
    out->hours_per_day = audio ? audio / 3600.0 : LD_DEFAULT_HOURS_PER_DAY;
    memcpy(out->name, p + 34, p[33]);
    out->name[p[33]] = '\0';
    if (strlen(out->name) != p[33] || !name_ok(out->name))
        return ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL);
    *signed_len = (size_t)(dot - key);
    return LD_OK;
}

ld_err ld_key_decode(const char *key, ld_key_claims *out, uint8_t fp[4], ld_error *err)
{
    size_t signed_len;
    unsigned char sig[crypto_sign_BYTES];
    return parse(key, out, fp, &signed_len, sig, err);
}

ld_err ld_key_verify(const char *key, const ld_issuer_pub *issuers, size_t n, ld_key_claims *out, ld_error *err)
{
    size_t signed_len;
    unsigned char sig[crypto_sign_BYTES];
    uint8_t fp[4];
    if (parse(key, out, fp, &signed_len, sig, err))
        return LD_ERR_INVALID_LICENSE;
    /* Fingerprints may collide (4 bytes): try every issuer that matches. */
    for (size_t i = 0; i < n; i++)
        if (!memcmp(issuers[i].fp, fp, 4) &&
            crypto_sign_verify_detached(sig, (const unsigned char *)key, signed_len, issuers[i].pk) == 0)
            return LD_OK;
    return ld_error_set(err, LD_ERR_INVALID_LICENSE, NULL);
}
