/* AWS Signature Version 4 with libsodium's SHA-256 / HMAC-SHA-256. */
#include "audio/audio.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 16

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
    crypto_auth_hmacsha256_final(&st, out);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ld_sigv4_header *)a)->name, ((const ld_sigv4_header *)b)->name);
}

/* Appends to a growing string; returns -1 once it no longer fits. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;
static int put(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= s->cap - s->len)
        return -1;
    s->len += (size_t)n;
    return 0;
}

int ld_audio_sigv4_authorization(const char *method, const char *canonical_uri, const char *canonical_query,
                                 const ld_sigv4_header *headers, size_t n_headers, const char *payload_sha256_hex,
                                 const char *access_key, const char *secret_key, const char *region,
                                 const char *service, const char *amz_date, char *out, size_t outsz)
{
    if (n_headers > MAX_HEADERS || strlen(amz_date) != 16)
        return -1;
    ld_sigv4_header h[MAX_HEADERS];
    memcpy(h, headers, n_headers * sizeof *h);
    qsort(h, n_headers, sizeof *h, by_name);

    char signed_headers[512];
    sbuf sh = {signed_headers, 0, sizeof signed_headers};
    for (size_t i = 0; i < n_headers; i++)
        if (put(&sh, "%s%s", i ? ";" : "", h[i].name))
            return -1;

    /* Canonical request -> its hash. */
    char creq[8192];
    sbuf cr = {creq, 0, sizeof creq};
    if (put(&cr, "%s\n%s\n%s\n", method, canonical_uri, canonical_query ? canonical_query : ""))
        return -1;
    for (size_t i = 0; i < n_headers; i++)
        if (put(&cr, "%s:%s\n", h[i].name, h[i].value))
            return -1;
    if (put(&cr, "\n%s\n%s", signed_headers, payload_sha256_hex))
        return -1;
    unsigned char digest[32];
    char creq_hex[65];
    crypto_hash_sha256(digest, (const unsigned char *)creq, cr.len);
    hex(digest, 32, creq_hex);

    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    char scope[256];
    if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, region, service) >= (int)sizeof scope)
        return -1;
    char sts[512];
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hex);

    /* Signing key: HMAC chain over date, region, service, "aws4_request". */
    char k0[300];
    if (snprintf(k0, sizeof k0, "AWS4%s", secret_key) >= (int)sizeof k0)
        return -1;
    unsigned char k[32];
    hmac((const unsigned char *)k0, strlen(k0), date, k);
    hmac(k, 32, region, k);
    hmac(k, 32, service, k);
    hmac(k, 32, "aws4_request", k);
    unsigned char sig[32];
    char sig_hex[65];
    hmac(k, 32, sts, sig);
    hex(sig, 32, sig_hex);
    sodium_memzero(k0, sizeof k0);
    sodium_memzero(k, sizeof k);

    int n = snprintf(out, outsz, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", access_key,
                     scope, signed_headers, sig_hex);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}
