/* Route-specific job webhooks (server/webhooks.h): the hook a request leaves
 * with its job, and the Pulse and Deepgram bodies made from it at delivery. */
#include <string.h>

#include "server/webhooks.h"
#include "test.h"

static json_t *result(void)
{
    return json_pack("{s:s,s:s,s:f,s:f,s:s,s:[{s:s,s:f,s:f,s:f}],s:[{s:s,s:f,s:f}]}", "request_id", "req_1", "text",
                     "Hello.", "confidence", 0.9, "duration", 2.0, "language", "en", "words", "word", "Hello",
                     "start", 0.5, "end", 1.0, "confidence", 0.9, "utterances", "text", "Hello.", "start", 0.5,
                     "end", 1.0);
}

int main(void)
{
    ld_req r;
    memset(&r, 0, sizeof r);
    CHECK(ld_webhooks_hook(&r) == NULL); /* /v1/listen, POST, no extra: listend's own webhook */

    r.lightning = true;
    r.opts.callback_put = true;
    snprintf(r.opts.webhook_extra, sizeof r.opts.webhook_extra, "call_id:7,note:a:b");
    json_t *hook = ld_webhooks_hook(&r);
    CHECK_STR(json_string_value(json_object_get(hook, "route")), "pulse");
    CHECK_STR(json_string_value(json_object_get(hook, "method")), "PUT");
    CHECK_STR(json_string_value(json_object_get(json_object_get(hook, "extra"), "note")), "a:b");

    char header[64] = "";
    json_t *body = result();
    ld_job_outcome o = {.job_id = "job_1",
                        .key_id = "k_1",
                        .request_id = "req_1",
                        .completed = true,
                        .body = body,
                        .processing_s = 0.5};
    json_t *p = ld_webhooks_shape(hook, &o, header, sizeof header);
    CHECK_STR(json_string_value(json_object_get(p, "status")), "success");
    CHECK_STR(json_string_value(json_object_get(p, "transcription")), "Hello.");
    json_t *meta = json_object_get(p, "metadata");
    CHECK(json_integer_value(json_object_get(meta, "processing_time_ms")) == 500);
    CHECK(json_real_value(json_object_get(meta, "rtfx")) == 4.0 && !json_object_get(meta, "fileSize"));
    CHECK(header[0] == '\0' && !json_object_get(p, "job_id"));
    json_decref(p);

    json_t *err = json_pack("{s:s,s:s,s:s}", "error", "Could not fetch", "code", "URL_FETCH_FAILED", "request_id",
                            "req_1");
    o.completed = false;
    o.body = err;
    p = ld_webhooks_shape(hook, &o, header, sizeof header);
    CHECK_STR(json_string_value(json_object_get(p, "status")), "error");
    CHECK_STR(json_string_value(json_object_get(p, "error_code")), "URL_FETCH_FAILED");
    CHECK_STR(json_string_value(json_object_get(p, "message")), "Could not fetch");
    json_decref(p);
    json_decref(hook);

    memset(&r, 0, sizeof r);
    r.deepgram = true;
    r.dg.utterances = true;
    r.dg.utt_split = 0.8;
    hook = ld_webhooks_hook(&r);
    CHECK(!json_object_get(hook, "method") && json_is_true(json_object_get(hook, "utterances")));
    p = ld_webhooks_shape(hook, &o, header, sizeof header); /* failed: Deepgram's error body */
    CHECK_STR(header, "dg-token: k_1");
    CHECK_STR(json_string_value(json_object_get(p, "err_msg")), "Could not fetch");
    CHECK(json_object_size(p) == 3 && json_object_get(p, "err_code"));
    json_decref(p);
    o.completed = true;
    o.body = body;
    p = ld_webhooks_shape(hook, &o, header, sizeof header);
    json_t *res = json_object_get(p, "results");
    CHECK(json_object_get(p, "metadata") && json_array_size(json_object_get(res, "utterances")) == 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(p, "metadata"), "request_id")), "req_1");
    json_decref(p);
    json_decref(hook);

    hook = json_pack("{s:s}", "method", "PUT"); /* no route: listend's own body */
    CHECK(ld_webhooks_shape(hook, &o, header, sizeof header) == NULL);
    json_decref(hook);
    CHECK(ld_err_parse("URL_FETCH_FAILED") == LD_ERR_URL_FETCH_FAILED && ld_err_parse("nope") == LD_ERR_INTERNAL);
    json_decref(err);
    json_decref(body);
    TEST_MAIN_END();
}
