/* Webhook building blocks: the signature header, the retry schedule and how a
 * receiver's answer is classified (pure, tested on their own), and the one
 * signed POST that job callbacks and usage events both send.
 * Thread-safety: all functions are thread-safe; nothing is kept between calls. */
#ifndef LD_JOBS_WEBHOOK_H
#define LD_JOBS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X-Listend-Signature value "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
 * The HMAC key is the secret text itself (the 64 hex characters of
 * <data>/webhook.secret), which is what receivers paste into their code.
 * out must hold at least LD_JOBS_SIGNATURE_MAX bytes. */
#define LD_JOBS_SIGNATURE_MAX 96
void ld_jobs_signature(const char *secret, int64_t t, const char *body, size_t len, char *out, size_t outsz);

/* Reads <data_dir>/webhook.secret (32..64 characters, trailing newline
 * dropped) into out; 0, or -1 when missing or malformed. Signers read it
 * before each delivery: with Redis the store rewrites it when the cluster's
 * secret changes (store/redis.h), and every replica must sign with that. */
int ld_jobs_secret_read(const char *data_dir, char *out, size_t outsz);

/* Delay before retry number `failures` (1 after the first failed attempt):
 * base·2^(failures-1) capped at cap_ms, then scaled by a jitter factor in
 * [0.8, 1.2) taken from jitter01 ∈ [0,1) and capped again. */
int64_t ld_jobs_backoff_ms(int failures, int64_t base_ms, int64_t cap_ms, double jitter01);

typedef enum {
    LD_WEBHOOK_DELIVERED, /* 2xx */
    LD_WEBHOOK_RETRY,     /* no answer (network error, timeout), 408, 429, 5xx */
    LD_WEBHOOK_FINAL      /* any other status: the receiver refused it for good */
} ld_webhook_outcome;

/* http_status is 0 when the request got no HTTP answer. */
ld_webhook_outcome ld_jobs_classify(long http_status);

/* One signed JSON POST (or PUT with `put`): Content-Type: application/json, X-Listend-Signature
 * (ld_jobs_signature of `body` with `secret`, now), the extra header lines;
 * the connect-time address guard (private addresses only with allow_private),
 * http(s) only, redirects not followed, connect within min(timeout, 5 s).
 * stop(stop_ud) returning true aborts the attempt (shutdown). Returns the HTTP
 * status, or 0 with `error` set when there was no answer; sets retry_after_s
 * (a Retry-After header in seconds, else 0) and refused (the guard refused the
 * address dialled). The caller owns every pointer; none is kept. */
typedef struct {
    const char *url, *body, *secret;
    const char *const *extra_headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    bool allow_private;
    bool put; /* PUT instead of POST (Deepgram's callback_method, Smallest's webhook_method) */
    long timeout_ms;
    bool (*stop)(void *stop_ud);
    void *stop_ud;
    long retry_after_s; /* out */
    bool refused;       /* out */
} ld_jobs_post;
long ld_jobs_post_signed(ld_jobs_post *p, char *error, size_t errsz);

#endif
