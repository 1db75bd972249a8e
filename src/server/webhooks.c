/* Route-specific job webhooks; see webhooks.h. */
#include "server/webhooks.h"

#include <stdio.h>
#include <string.h>

#include "server/compat_deepgram.h"

json_t *ld_webhooks_pulse_body(json_t *j, long long file_bytes)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("success"));
    json_object_set(o, "transcription", json_object_get(j, "text"));
    json_object_set(o, "audio_length", json_object_get(j, "duration"));
    json_object_set(o, "language", json_object_get(j, "language"));
    if (json_object_get(j, "words"))
        json_object_set(o, "words", json_object_get(j, "words"));
    if (json_object_get(j, "utterances"))
        json_object_set(o, "utterances", json_object_get(j, "utterances"));
    if (json_object_get(j, "channels")) /* multichannel=true */
        json_object_set(o, "channels", json_object_get(j, "channels"));
    json_object_set(o, "request_id", json_object_get(j, "request_id"));
    json_t *meta = json_pack("{s:O}", "duration", json_object_get(j, "duration"));
    if (file_bytes >= 0)
        json_object_set_new(meta, "fileSize", json_integer(file_bytes));
    json_object_set_new(o, "metadata", meta);
    json_decref(j);
    return o;
}

json_t *ld_webhooks_hook(const ld_req *r)
{
    json_t *h = json_object();
    if (r->lightning) {
        json_object_set_new(h, "route", json_string("pulse"));
    } else if (r->deepgram) {
        json_object_set_new(h, "route", json_string("deepgram"));
        json_object_set_new(h, "utterances", json_boolean(r->dg.utterances));
        json_object_set_new(h, "paragraphs", json_boolean(r->dg.paragraphs));
        json_object_set_new(h, "utt_split", json_real(r->dg.utt_split));
    }
    if (r->opts.callback_put)
        json_object_set_new(h, "method", json_string("PUT"));
    json_t *extra;
    if (r->opts.webhook_extra[0] && !ld_opts_webhook_extra(r->opts.webhook_extra, &extra, NULL))
        json_object_set_new(h, "extra", extra); /* checked by ld_opts_set already */
    if (!json_object_size(h)) {
        json_decref(h);
        return NULL;
    }
    return h;
}

/* Pulse's webhook (spec §9): the 200 body plus metadata.processing_time_ms and
 * rtfx; a failed job as {"status": "error", "message", "error_code", "request_id"}. */
static json_t *pulse(const ld_job_outcome *o)
{
    if (!o->completed)
        return json_pack("{s:s, s:O, s:O, s:s}", "status", "error", "message", json_object_get(o->body, "error"),
                         "error_code", json_object_get(o->body, "code"), "request_id", o->request_id);
    json_t *b = ld_webhooks_pulse_body(json_deep_copy(o->body), -1), *meta = json_object_get(b, "metadata");
    double audio = json_number_value(json_object_get(o->body, "duration"));
    json_object_set_new(meta, "processing_time_ms", json_integer((json_int_t)(o->processing_s * 1000.0 + 0.5)));
    json_object_set_new(meta, "rtfx", json_real(o->processing_s > 0 ? audio / o->processing_s : 0.0));
    return b;
}

/* Deepgram's callback: the body its POST /v1/listen would have answered, or its
 * error body; "dg-token" names the key, as Deepgram's names the API key. */
static json_t *deepgram(const json_t *hook, const ld_job_outcome *o, char *header, size_t headersz)
{
    snprintf(header, headersz, "dg-token: %s", o->key_id);
    if (!o->completed) {
        ld_error e;
        const char *msg = json_string_value(json_object_get(o->body, "error"));
        ld_error_set(&e, ld_err_parse(json_string_value(json_object_get(o->body, "code"))), "%s", msg ? msg : "");
        return ld_dg_error_json(&e, o->request_id, NULL);
    }
    ld_dg_opts dg = {.utterances = json_is_true(json_object_get(hook, "utterances")),
                     .paragraphs = json_is_true(json_object_get(hook, "paragraphs")),
                     .utt_split = json_number_value(json_object_get(hook, "utt_split"))};
    if (dg.utt_split <= 0)
        dg.utt_split = 0.8;
    return ld_dg_body(&dg, json_deep_copy(o->body));
}

json_t *ld_webhooks_shape(const json_t *hook, const ld_job_outcome *o, char *header, size_t headersz)
{
    const char *route = json_string_value(json_object_get(hook, "route"));
    if (route && !strcmp(route, "pulse"))
        return pulse(o);
    if (route && !strcmp(route, "deepgram"))
        return deepgram(hook, o, header, headersz);
    return NULL;
}
