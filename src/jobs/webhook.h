/* Webhook building blocks, kept pure so they can be tested on their own:
 * the signature header, the retry schedule and how a receiver's answer is
 * classified. Thread-safety: pure functions. */
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

#endif
