/* Webhook signature, retry schedule and answer classification. */
#include "jobs/webhook.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void ld_jobs_signature(const char *secret, int64_t t, const char *body, size_t len, char *out, size_t outsz)
{
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    snprintf(out, outsz, "t=%lld,v1=%s", (long long)t, hex);
}

int ld_jobs_secret_read(const char *data_dir, char *out, size_t outsz)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/webhook.secret", data_dir && *data_dir ? data_dir : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n ")] = '\0';
    size_t len = strlen(line);
    if (!ok || len < 32 || len > 64 || len >= outsz)
        return -1;
    memcpy(out, line, len + 1);
    sodium_memzero(line, sizeof line);
    return 0;
}

int64_t ld_jobs_backoff_ms(int failures, int64_t base_ms, int64_t cap_ms, double jitter01)
{
    if (failures < 1)
        failures = 1;
    if (base_ms < 1)
        base_ms = 1;
    int64_t d = base_ms;
    for (int i = 1; i < failures && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (jitter01 < 0)
        jitter01 = 0;
    if (jitter01 >= 1)
        jitter01 = 0.999999;
    /* Jitter spreads the retries of many jobs that failed together (receiver
     * outage) so they do not all hit the receiver in the same second. */
    d = (int64_t)((double)d * (0.8 + 0.4 * jitter01));
    return d > cap_ms ? cap_ms : d < 1 ? 1 : d;
}

ld_webhook_outcome ld_jobs_classify(long http_status)
{
    if (http_status >= 200 && http_status < 300)
        return LD_WEBHOOK_DELIVERED;
    if (http_status == 0 || http_status == 408 || http_status == 429 || http_status >= 500)
        return LD_WEBHOOK_RETRY;
    return LD_WEBHOOK_FINAL;
}
