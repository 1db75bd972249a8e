/* Webhook signature (fixed vector, computed independently with Python's hmac),
 * retry schedule and answer classification; job JSON views. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "asr/redact.h"
#include "jobs/jobs_internal.h"
#include "jobs/webhook.h"
#include "test.h"

static void signature(void)
{
    /* python3 -c 'import hmac,hashlib; print(hmac.new(SECRET.encode(),
     *   b"1700000000." + BODY, hashlib.sha256).hexdigest())' */
    const char *secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *body = "{\"job_id\":\"job_test\",\"status\":\"completed\"}";
    char out[LD_JOBS_SIGNATURE_MAX];
    ld_jobs_signature(secret, 1700000000, body, strlen(body), out, sizeof out);
    CHECK_STR(out, "t=1700000000,v1=f3814436c6e6bc61c2ee84463316a42130e110e784d0f0523c2b28f7de0e2d0a");
    /* any change of body, time or secret changes it */
    char other[LD_JOBS_SIGNATURE_MAX];
    ld_jobs_signature(secret, 1700000001, body, strlen(body), other, sizeof other);
    CHECK(strcmp(strchr(out, ','), strchr(other, ',')) != 0);
    ld_jobs_signature("ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1700000000, body,
                      strlen(body), other, sizeof other);
    CHECK(strcmp(out, other) != 0);
    ld_jobs_signature(secret, 1700000000, body, strlen(body) - 1, other, sizeof other);
    CHECK(strcmp(out, other) != 0);
}

static void backoff(void)
{
    const int64_t cap = 600000;
    /* jitter 0.5 is the neutral factor 1.0: 1 s, 2 s, 4 s … capped at 10 min */
    CHECK(ld_jobs_backoff_ms(1, 1000, cap, 0.5) == 1000);
    CHECK(ld_jobs_backoff_ms(2, 1000, cap, 0.5) == 2000);
    CHECK(ld_jobs_backoff_ms(3, 1000, cap, 0.5) == 4000);
    CHECK(ld_jobs_backoff_ms(10, 1000, cap, 0.5) == 512000);
    CHECK(ld_jobs_backoff_ms(11, 1000, cap, 0.5) == cap);
    CHECK(ld_jobs_backoff_ms(1000, 1000, cap, 0.5) == cap); /* no overflow */
    CHECK(ld_jobs_backoff_ms(0, 1000, cap, 0.5) == 1000);
    /* jitter spans [0.8, 1.2) and never exceeds the cap */
    CHECK(ld_jobs_backoff_ms(1, 1000, cap, 0.0) == 800);
    CHECK(ld_jobs_backoff_ms(1, 1000, cap, 0.99) >= 1190 && ld_jobs_backoff_ms(1, 1000, cap, 0.99) < 1200);
    CHECK(ld_jobs_backoff_ms(20, 1000, cap, 0.99) == cap);
    CHECK(ld_jobs_backoff_ms(20, 1000, cap, 0.0) == 480000);
    /* the small base used by tests */
    CHECK(ld_jobs_backoff_ms(1, 50, cap, 0.5) == 50);
    CHECK(ld_jobs_backoff_ms(3, 50, cap, 0.5) == 200);
    /* monotone in the number of failures at fixed jitter */
    for (int i = 1; i < 30; i++)
        CHECK(ld_jobs_backoff_ms(i + 1, 1000, cap, 0.3) >= ld_jobs_backoff_ms(i, 1000, cap, 0.3));
}

static void classify(void)
{
    long delivered[] = {200, 201, 202, 204, 299};
    long retry[] = {0, 408, 429, 500, 502, 503, 504, 599};
    long final[] = {100, 301, 302, 304, 400, 401, 403, 404, 405, 410, 413, 422};
    for (size_t i = 0; i < sizeof delivered / sizeof *delivered; i++)
        CHECK(ld_jobs_classify(delivered[i]) == LD_WEBHOOK_DELIVERED);
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
        CHECK(ld_jobs_classify(retry[i]) == LD_WEBHOOK_RETRY);
    for (size_t i = 0; i < sizeof final / sizeof *final; i++)
        CHECK(ld_jobs_classify(final[i]) == LD_WEBHOOK_FINAL);
}

static void views(void)
{
    ld_job job = {0};
    snprintf(job.id, sizeof job.id, "job_x");
    snprintf(job.request_id, sizeof job.request_id, "req_x");
    job.state = LD_JOB_COMPLETED;
    job.progress = 1;
    job.created_ms = 1700000000000;
    job.finished_ms = 1700000005000;
    job.result_json = strdup("{\"text\":\"go forward\"}");
    job.callback_url = strdup("http://127.0.0.1:1/h");
    job.delivery = LD_DELIVERY_DELIVERED;
    job.delivered_ms = 1700000006000;
    job.attempts_json = strdup("[{\"attempt\":1,\"at\":\"2023-11-14T22:13:26Z\",\"status\":200}]");
    json_t *v = ld_jobs_view(&job, true);
    CHECK_STR(json_string_value(json_object_get(v, "status")), "completed");
    CHECK_STR(json_string_value(json_object_get(v, "created_at")), "2023-11-14T22:13:20Z");
    CHECK_STR(json_string_value(json_object_get(v, "completed_at")), "2023-11-14T22:13:25Z");
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "result"), "text")), "go forward");
    json_t *cb = json_object_get(v, "callback");
    CHECK_STR(json_string_value(json_object_get(cb, "state")), "delivered");
    CHECK(json_array_size(json_object_get(cb, "attempts")) == 1);
    CHECK(json_is_null(json_object_get(cb, "next_attempt_at")));
    CHECK(json_object_get(v, "error") == NULL);
    json_decref(v);
    v = ld_jobs_view(&job, false); /* lists leave the result out */
    CHECK(json_object_get(v, "result") == NULL);
    json_decref(v);
    ld_job_clear(&job);

    /* options and key claims survive the JSON round trip */
    ld_transcribe_opts o = {.punctuate = false, .timestamps = true, .format = LD_FORMAT_SRT}, back;
    snprintf(o.language, sizeof o.language, "de");
    char *text = ld_jobs_opts_dump(&o);
    ld_jobs_opts_load(text, &back);
    free(text);
    CHECK_STR(back.language, "de");
    CHECK(!back.punctuate && back.timestamps && back.format == LD_FORMAT_SRT);
    ld_key_claims k = {.issued_at = 5, .expires_at = 9, .rpm = 7, .concurrency = 3, .hours_per_day = 0.25}, kb;
    snprintf(k.key_id, sizeof k.key_id, "k_abc");
    text = ld_jobs_claims_dump(&k);
    ld_jobs_claims_load(text, &kb);
    free(text);
    CHECK_STR(kb.key_id, "k_abc");
    CHECK(kb.rpm == 7 && kb.concurrency == 3 && kb.expires_at == 9);
    CHECK_NEAR(kb.hours_per_day, 0.25, 1e-9);

    /* a job keeps diarize and num_speakers (asr/diarize.h); older records have neither */
    ld_transcribe_opts d = {.diarize = true, .num_speakers = 3}, db;
    text = ld_jobs_opts_dump(&d);
    ld_jobs_opts_load(text, &db);
    free(text);
    CHECK(db.diarize && db.num_speakers == 3);
    ld_jobs_opts_load("{\"language\": \"en\", \"timestamps\": true}", &db);
    CHECK(!db.diarize && db.num_speakers == 0 && !db.numerals && !db.redact && !db.profanity_filter);
    /* and numerals and redaction: a queued job must not show what its request hid */
    ld_transcribe_opts r = {.numerals = true, .redact = LD_REDACT_PCI | LD_REDACT_SSN, .profanity_filter = true},
                       rb;
    text = ld_jobs_opts_dump(&r);
    ld_jobs_opts_load(text, &rb);
    free(text);
    CHECK(rb.numerals && rb.redact == (LD_REDACT_PCI | LD_REDACT_SSN) && rb.profanity_filter);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    signature();
    backoff();
    classify();
    views();
    TEST_MAIN_END();
}
