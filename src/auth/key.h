/* License key format and issuer key files.
 *
 * A key is "ld1." + base64url(payload) + "." + base64url(signature), no
 * padding, at most LD_KEY_MAX_LEN characters, all of them header-safe
 * ([A-Za-z0-9_-.]). The Ed25519 signature covers the ASCII text before the
 * second dot, so any change to the visible text invalidates it. Payload v1,
 * integers big-endian:
 *
 *   off len  field
 *     0   1  version (1)
 *     1   4  issuer fingerprint: first 4 bytes of BLAKE2b-256(issuer public key)
 *     5   8  key id (random; shown as "k_" + 16 hex digits)
 *    13   4  issued_at, unix seconds
 *    17   4  expires_at, unix seconds, 0 = never
 *    21   4  requests per minute, 0 = default (60)
 *    25   4  concurrent requests, 0 = default (10)
 *    29   4  audio seconds per UTC day, 0 = default (100 h)
 *    33   1  name length n (<= LD_KEY_NAME_MAX)
 *    34   n  name, UTF-8 without control characters
 *
 * Issuer files: issuer.key (base64 of libsodium's 64-byte secret key, 0600)
 * and *.pub (base64 of the 32-byte public key), one line each.
 *
 * Thread-safety: all functions are pure or touch only their arguments/files. */
#ifndef LD_AUTH_KEY_H
#define LD_AUTH_KEY_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

#define LD_KEY_MAX_LEN 200
#define LD_KEY_NAME_MAX 47      /* what fits in 200 characters */
#define LD_KEY_LIMIT_MAX 100000 /* rpm and concurrency ceiling (memory per key) */
#define LD_KEY_HOURS_MAX 1000000.0

typedef struct {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t fp[4];
    char fp_hex[9];
} ld_issuer_pub;

typedef struct {
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    ld_issuer_pub pub;
} ld_issuer_secret;

/* Fills fp/fp_hex from pk. */
void ld_key_issuer_init(ld_issuer_pub *p);
/* New random key pair. */
void ld_key_issuer_generate(ld_issuer_secret *s);

/* 0 on success; the parsers accept surrounding whitespace. */
int ld_key_pub_load(const char *path, ld_issuer_pub *out);
int ld_key_secret_load(const char *path, ld_issuer_secret *out);
/* Write atomically with mode 0644 / 0600. */
int ld_key_pub_save(const char *path, const ld_issuer_pub *p);
int ld_key_secret_save(const char *path, const ld_issuer_secret *s);

/* Loads <dir>/issuer.pub and every <dir>/trusted/<name>.pub (duplicates by
 * fingerprint dropped) into a malloc'd array owned by the caller. Returns the
 * count (0 when none; *out is then NULL). Unreadable files are logged and
 * skipped. */
size_t ld_key_issuers_load(const char *data_dir, ld_issuer_pub **out);

/* "k_" + 16 hex digits from 8 random bytes. */
void ld_key_new_id(char out[32]);
/* Is s a well-formed key id? */
int ld_key_id_valid(const char *s);

/* Signs the claims (key_id, name, issued_at, expires_at, limits; limits equal
 * to the defaults are encoded as 0) into out (>= LD_KEY_MAX_LEN + 1).
 * LD_ERR_INVALID_PARAMETER with a message for a bad name or limit. */
ld_err ld_key_encode(const ld_issuer_secret *iss, const ld_key_claims *c, char *out, size_t outsz, ld_error *err);

/* Parses without checking the signature: claims (defaults applied) and the
 * issuer fingerprint. LD_ERR_INVALID_LICENSE when malformed. */
ld_err ld_key_decode(const char *key, ld_key_claims *out, uint8_t fp[4], ld_error *err);

/* Decodes and verifies against the issuer whose fingerprint the key names.
 * Does not look at expiry or revocation. LD_ERR_INVALID_LICENSE
 * ("Invalid license key") on any failure. */
ld_err ld_key_verify(const char *key, const ld_issuer_pub *issuers, size_t n, ld_key_claims *out, ld_error *err);

#endif
