/* OpenAI's Realtime transcription events on a listend stream (ws_openai.h). */
#include "server/ws_openai.h"

#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/compat_openai.h"
#include "server/opts.h"
#include "util/rand.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

/* The client's query with OpenAI's session defaults where it is silent. */
static const char *get_mapped(void *ud, const char *name)
{
    ld_ws_param_src *g = ud;
    if (!strcmp(name, "model"))
        return NULL; /* OpenAI's model names (gpt-4o-transcribe, gpt-realtime, …): listend's automatic choice */
    const char *v = g->get(g->ud, name);
    if (v)
        return v;
    static const char *const defaults[][2] = {
        {"sample_rate", "24000"}, {"eou_timeout_ms", "500"}, {"vad_events", "true"}, {"interim_results", "false"}};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        if (!strcmp(name, defaults[i][0]))
            return defaults[i][1];
    return NULL;
}

ld_err ld_ws_oa_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *p, ld_error *err)
{
    ld_ws_param_src g = {get, ud};
    ld_err rc = ld_ws_params_parse(get_mapped, &g, p, err);
    if (rc)
        return rc;
    if (p->channels > 1) /* one item sequence per session: OpenAI's sessions are mono */
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'channels': realtime sessions take mono audio");
    p->openai = true;
    p->encoding_sniff = false; /* audio comes base64 in events, in the session's format */
    return LD_OK;
}

_Static_assert(sizeof((ld_ws_params *)0)->language == sizeof((ld_ws_oa_settings *)0)->language,
               "settings carry the params' language whole");

void ld_ws_oa_settings_get(const ld_ws_params *p, ld_ws_oa_settings *s)
{
    *s = (ld_ws_oa_settings){.encoding = p->encoding,
                             .sample_rate = p->sample_rate,
                             .finalize_on_words = p->finalize_on_words,
                             .eou_timeout_ms = p->eou_timeout_ms};
    memcpy(s->language, p->language, sizeof s->language);
}

void ld_ws_oa_settings_put(ld_ws_params *p, const ld_ws_oa_settings *s)
{
    p->encoding = s->encoding;
    p->sample_rate = s->sample_rate;
    p->finalize_on_words = s->finalize_on_words;
    p->eou_timeout_ms = s->eou_timeout_ms;
    p->vad_events = s->finalize_on_words; /* OpenAI sends speech_started/stopped in server_vad mode only */
    memcpy(p->language, s->language, sizeof p->language);
}

bool ld_ws_oa_settings_equal(const ld_ws_oa_settings *a, const ld_ws_oa_settings *b)
{
    return a->encoding == b->encoding && a->sample_rate == b->sample_rate &&
           a->finalize_on_words == b->finalize_on_words && a->eou_timeout_ms == b->eou_timeout_ms &&
           !strcmp(a->language, b->language);
}

static ld_err bad(ld_error *err, const char *param, const char *msg)
{
    return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter '%s': %s", param, msg);
}

/* The audio format by GA's {"type": "audio/pcm", "rate"} or the beta's name. */
static ld_err set_format(ld_ws_oa_settings *p, json_t *fmt, ld_error *err)
{
    const char *t = json_is_string(fmt) ? json_string_value(fmt) : json_string_value(json_object_get(fmt, "type"));
    if (!t)
        return bad(err, "format", "expected {\"type\": \"audio/pcm\" | \"audio/pcmu\" | \"audio/pcma\"}");
    if (!strcmp(t, "audio/pcm") || !strcmp(t, "pcm16")) {
        json_t *rate = json_object_get(fmt, "rate");
        if (rate && !json_is_null(rate) && !json_is_integer(rate)) /* 48000.5, "24000", true: not ignored */
            return bad(err, "rate", "expected an integer from 8000 to 48000 (OpenAI's is 24000)");
        json_int_t r = rate && json_is_integer(rate) ? json_integer_value(rate) : 24000;
        if (r < LD_AUDIO_STREAM_MIN_RATE || r > LD_AUDIO_STREAM_MAX_RATE)
            return bad(err, "rate", "expected 8000 to 48000 (OpenAI's is 24000)");
        p->encoding = LD_STREAM_LINEAR16;
        p->sample_rate = (int)r;
    } else if (!strcmp(t, "audio/pcmu") || !strcmp(t, "g711_ulaw")) {
        p->encoding = LD_STREAM_MULAW;
        p->sample_rate = 8000;
    } else if (!strcmp(t, "audio/pcma") || !strcmp(t, "g711_alaw")) {
        p->encoding = LD_STREAM_ALAW;
        p->sample_rate = 8000;
    } else {
        return bad(err, "format", "expected audio/pcm, audio/pcmu or audio/pcma (pcm16, g711_ulaw, g711_alaw)");
    }
    return LD_OK;
}

/* null: only input_audio_buffer.commit ends an utterance; server_vad (or
 * semantic_vad, taken as server_vad): silence_duration_ms of silence does. */
static ld_err set_turns(ld_ws_oa_settings *p, json_t *td, ld_error *err)
{
    if (json_is_null(td)) {
        p->finalize_on_words = false;
        return LD_OK;
    }
    if (!json_is_object(td))
        return bad(err, "turn_detection", "expected null or {\"type\": \"server_vad\", …}");
    p->finalize_on_words = true;
    json_t *ms = json_object_get(td, "silence_duration_ms");
    if (json_is_integer(ms)) {
        json_int_t v = json_integer_value(ms);
        p->eou_timeout_ms = v < 100 ? 100 : v > 10000 ? 10000 : (int)v;
    }
    return LD_OK;
}

static ld_err apply_update(ld_ws_oa_settings *p, json_t *session, bool beta, ld_error *err)
{
    if (!json_is_object(session))
        return bad(err, "session", "expected an object");
    json_t *fmt, *tr, *td;
    if (beta) {
        fmt = json_object_get(session, "input_audio_format");
        tr = json_object_get(session, "input_audio_transcription");
        td = json_object_get(session, "turn_detection");
    } else {
        json_t *in = json_object_get(json_object_get(session, "audio"), "input");
        fmt = json_object_get(in, "format");
        tr = json_object_get(in, "transcription");
        td = json_object_get(in, "turn_detection");
    }
    ld_err rc;
    if (fmt && (rc = set_format(p, fmt, err)))
        return rc;
    if (td && (rc = set_turns(p, td, err)))
        return rc;
    const char *lang = json_string_value(json_object_get(tr, "language"));
    if (lang && *lang)
        ld_opts_language(lang, p->language, sizeof p->language); /* checked against the pool by the caller */
    return LD_OK;
}

ld_ws_oa_kind ld_ws_oa_client_event(const char *text, size_t len, ld_ws_oa_settings *p, uint8_t **audio,
                                    size_t *alen, bool *beta, char event_id[64], ld_error *err)
{
    *audio = NULL;
    *alen = 0;
    *beta = false;
    event_id[0] = '\0';
    json_t *j = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *id = json_string_value(json_object_get(j, "event_id"));
    if (id)
        snprintf(event_id, 64, "%s", id);
    ld_ws_oa_kind kind = LD_WS_OA_INVALID;
    if (!type) {
        ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                     "Expected a JSON event with a \"type\" (e.g. input_audio_buffer.append)");
    } else if (!strcmp(type, "input_audio_buffer.append")) {
        const char *b64 = json_string_value(json_object_get(j, "audio"));
        size_t n = b64 ? strlen(b64) : 0;
        uint8_t *buf = malloc(n / 4 * 3 + 3);
        if (!b64 || !buf ||
            sodium_base642bin(buf, n / 4 * 3 + 3, b64, n, "\r\n ", alen, NULL, sodium_base64_VARIANT_ORIGINAL)) {
            free(buf);
            *alen = 0;
            ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid 'audio': expected base64-encoded audio bytes");
        } else {
            *audio = buf;
            kind = LD_WS_OA_APPEND;
        }
    } else if (!strcmp(type, "input_audio_buffer.commit")) {
        kind = LD_WS_OA_COMMIT;
    } else if (!strcmp(type, "input_audio_buffer.clear")) {
        kind = LD_WS_OA_CLEAR;
    } else if (!strcmp(type, "session.update") || !strcmp(type, "transcription_session.update")) {
        *beta = type[0] == 't';
        ld_ws_oa_settings q = *p; /* all or nothing */
        if (!apply_update(&q, json_object_get(j, "session"), *beta, err)) {
            *p = q;
            kind = LD_WS_OA_UPDATE;
        }
    } else if (!strncmp(type, "response.", 9) || !strncmp(type, "conversation.", 13) ||
               !strncmp(type, "output_audio_buffer.", 20)) {
        kind = LD_WS_OA_IGNORED; /* a transcription session has no responses or conversation to change */
    } else {
        ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Unknown event type '%.64s'", type);
    }
    json_decref(j);
    return kind;
}

/* {"type", "event_id", …members of o}; o stolen. */
static char *event(const char *type, json_t *o)
{
    char id[48];
    ld_rand_id("event_", id, sizeof id);
    json_t *e = json_pack("{s:s,s:s}", "type", type, "event_id", id);
    json_object_update(e, o);
    json_decref(o);
    char *s = json_dumps(e, DUMP_FLAGS);
    json_decref(e);
    return s;
}

char *ld_ws_oa_session(const char *session_id, const ld_ws_oa_settings *p, bool updated, bool beta)
{
    bool pcm = p->encoding == LD_STREAM_LINEAR16;
    const char *model = "auto";
    json_t *turns = p->finalize_on_words
                        ? json_pack("{s:s,s:i}", "type", "server_vad", "silence_duration_ms", p->eou_timeout_ms)
                        : json_null();
    json_t *tr = json_pack("{s:s,s:s,s:s}", "model", model, "language", p->language, "prompt", "");
    json_t *s;
    if (beta) {
        const char *fmt = pcm ? "pcm16" : p->encoding == LD_STREAM_MULAW ? "g711_ulaw" : "g711_alaw";
        s = json_pack("{s:s,s:s,s:s,s:o,s:o,s:n}", "id", session_id, "object", "realtime.transcription_session",
                      "input_audio_format", fmt, "input_audio_transcription", tr, "turn_detection", turns,
                      "input_audio_noise_reduction");
    } else {
        json_t *fmt = pcm ? json_pack("{s:s,s:i}", "type", "audio/pcm", "rate", p->sample_rate)
                          : json_pack("{s:s}", "type",
                                      p->encoding == LD_STREAM_MULAW ? "audio/pcmu" : "audio/pcma");
        s = json_pack("{s:s,s:s,s:s,s:{s:{s:o,s:o,s:o,s:n}},s:[]}", "type", "transcription", "object",
                      "realtime.transcription_session", "id", session_id, "audio", "input", "format", fmt,
                      "transcription", tr, "turn_detection", turns, "noise_reduction", "include");
    }
    char type[48];
    snprintf(type, sizeof type, "%s.%s", beta ? "transcription_session" : "session",
             updated ? "updated" : "created");
    return event(type, json_pack("{s:o}", "session", s));
}

char *ld_ws_oa_speech(bool started, const char *item_id, double t)
{
    return event(started ? "input_audio_buffer.speech_started" : "input_audio_buffer.speech_stopped",
                 json_pack("{s:I,s:s}", started ? "audio_start_ms" : "audio_end_ms", (json_int_t)llround(t * 1000),
                           "item_id", item_id));
}

char *ld_ws_oa_committed(const char *item_id, const char *previous_item_id)
{
    return event("input_audio_buffer.committed",
                 json_pack("{s:o,s:s}", "previous_item_id",
                           previous_item_id ? json_string(previous_item_id) : json_null(), "item_id", item_id));
}

char *ld_ws_oa_delta(const char *item_id, const char *text)
{
    return event("conversation.item.input_audio_transcription.delta",
                 json_pack("{s:s,s:i,s:s}", "item_id", item_id, "content_index", 0, "delta", text));
}

char *ld_ws_oa_completed(const char *item_id, const char *text, double seconds)
{
    return event("conversation.item.input_audio_transcription.completed",
                 json_pack("{s:s,s:i,s:s,s:{s:s,s:f}}", "item_id", item_id, "content_index", 0, "transcript", text,
                           "usage", "type", "duration", "seconds", round(seconds * 1000) / 1000));
}

char *ld_ws_oa_cleared(void) { return event("input_audio_buffer.cleared", json_object()); }

char *ld_ws_oa_error(const ld_error *err, const char *client_event_id)
{
    json_t *env = ld_openai_error_json(err, NULL, NULL); /* {"error": {message, type, code, param}} */
    json_object_set_new(json_object_get(env, "error"), "event_id",
                        client_event_id && *client_event_id ? json_string(client_event_id) : json_null());
    return event("error", env);
}
