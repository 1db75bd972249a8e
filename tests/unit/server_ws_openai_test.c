/* OpenAI's Realtime transcription events (server/ws_openai.h): the session
 * defaults, every client event a transcription session takes, and the shape
 * of the server's events. */
#include <stdlib.h>
#include <string.h>

#include "server/ws_openai.h"
#include "test.h"

static const char *none(void *ud, const char *name)
{
    (void)ud, (void)name;
    return NULL;
}

static const char *query(void *ud, const char *name)
{
    return !strcmp(name, "model") ? "gpt-4o-transcribe" : !strcmp(name, "sample_rate") ? (const char *)ud : NULL;
}

static const char *stereo(void *ud, const char *name)
{
    (void)ud;
    return !strcmp(name, "channels") ? "2" : NULL;
}

static ld_ws_oa_kind ev(const char *text, ld_ws_oa_settings *p, uint8_t **audio, size_t *n, bool *beta, char id[64])
{
    ld_error e = {0};
    return ld_ws_oa_client_event(text, strlen(text), p, audio, n, beta, id, &e);
}

static json_t *parse(char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    return j;
}

int main(void)
{
    ld_ws_params p;
    ld_error e = {0};
    CHECK(ld_ws_oa_params_parse(none, NULL, &p, &e) == LD_OK);
    CHECK(p.openai && p.encoding == LD_STREAM_LINEAR16 && p.sample_rate == 24000 && p.eou_timeout_ms == 500);
    CHECK(p.vad_events && !p.interim_results && p.finalize_on_words && p.punctuate && !p.model[0]);
    CHECK(ld_ws_oa_params_parse(query, "16000", &p, &e) == LD_OK && p.sample_rate == 16000 && !p.model[0]);
    CHECK(ld_ws_oa_params_parse(stereo, NULL, &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "mono"));

    uint8_t *audio;
    size_t n;
    bool beta;
    char id[64];
    ld_ws_oa_params_parse(none, NULL, &p, &e);
    ld_ws_oa_settings st;
    ld_ws_oa_settings_get(&p, &st);
    CHECK(ev("{\"type\":\"input_audio_buffer.append\",\"event_id\":\"e7\",\"audio\":\"AAECAw==\"}", &st, &audio, &n,
             &beta, id) == LD_WS_OA_APPEND);
    CHECK(n == 4 && audio[3] == 3 && !strcmp(id, "e7"));
    free(audio);
    CHECK(ev("{\"type\":\"input_audio_buffer.append\",\"audio\":\"no base64!\"}", &st, &audio, &n, &beta, id) ==
              LD_WS_OA_INVALID &&
          !audio);
    CHECK(ev("{\"type\":\"input_audio_buffer.commit\"}", &st, &audio, &n, &beta, id) == LD_WS_OA_COMMIT);
    CHECK(ev("{\"type\":\"input_audio_buffer.clear\"}", &st, &audio, &n, &beta, id) == LD_WS_OA_CLEAR);
    CHECK(ev("{\"type\":\"response.create\"}", &st, &audio, &n, &beta, id) == LD_WS_OA_IGNORED);
    CHECK(ev("{\"type\":\"nope\"}", &st, &audio, &n, &beta, id) == LD_WS_OA_INVALID);
    CHECK(ev("not json", &st, &audio, &n, &beta, id) == LD_WS_OA_INVALID);

    /* GA: rate, language tag, silence; beta: G.711 and no turn detection */
    CHECK(
        ev("{\"type\":\"session.update\",\"session\":{\"type\":\"transcription\",\"audio\":{\"input\":{\"format\":"
           "{\"type\":\"audio/pcm\",\"rate\":16000},\"transcription\":{\"language\":\"en-GB\"},\"turn_detection\":"
           "{\"type\":\"server_vad\",\"silence_duration_ms\":20000}}}}}",
           &st, &audio, &n, &beta, id) == LD_WS_OA_UPDATE);
    CHECK(!beta && st.sample_rate == 16000 && !strcmp(st.language, "en") && st.eou_timeout_ms == 10000);
    CHECK(ev("{\"type\":\"transcription_session.update\",\"session\":{\"input_audio_format\":\"g711_ulaw\","
             "\"turn_detection\":null}}",
             &st, &audio, &n, &beta, id) == LD_WS_OA_UPDATE);
    CHECK(beta && st.encoding == LD_STREAM_MULAW && st.sample_rate == 8000 && !st.finalize_on_words);
    /* a bad member changes nothing */
    CHECK(ev("{\"type\":\"session.update\",\"session\":{\"audio\":{\"input\":{\"turn_detection\":null,\"format\":"
             "{\"type\":\"audio/opus\"}}}}}",
             &st, &audio, &n, &beta, id) == LD_WS_OA_INVALID);
    CHECK(st.encoding == LD_STREAM_MULAW && !st.finalize_on_words);

    json_t *j = parse(ld_ws_oa_session("sess_1", &st, true, true));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "transcription_session.updated");
    json_t *s = json_object_get(j, "session");
    CHECK_STR(json_string_value(json_object_get(s, "input_audio_format")), "g711_ulaw");
    CHECK(json_is_null(json_object_get(s, "turn_detection")));
    json_decref(j);
    ld_ws_oa_params_parse(none, NULL, &p, &e);
    ld_ws_oa_settings_get(&p, &st);
    CHECK(ld_ws_oa_settings_equal(&st, &st) && st.sample_rate == 24000 && !strcmp(st.language, "en"));
    ld_ws_params back = p;
    back.sample_rate = 8000;
    ld_ws_oa_settings_put(&back, &st);
    CHECK(back.sample_rate == 24000 && back.openai);
    j = parse(ld_ws_oa_session("sess_1", &st, false, false));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "session.created");
    json_t *in = json_object_get(json_object_get(json_object_get(j, "session"), "audio"), "input");
    CHECK(json_integer_value(json_object_get(json_object_get(in, "format"), "rate")) == 24000);
    CHECK(json_integer_value(json_object_get(json_object_get(in, "turn_detection"), "silence_duration_ms")) == 500);
    json_decref(j);

    j = parse(ld_ws_oa_speech(true, "item_1", 0.4567));
    CHECK(json_integer_value(json_object_get(j, "audio_start_ms")) == 457);
    json_decref(j);
    j = parse(ld_ws_oa_committed("item_2", "item_1"));
    CHECK_STR(json_string_value(json_object_get(j, "previous_item_id")), "item_1");
    json_decref(j);
    j = parse(ld_ws_oa_committed("item_1", NULL));
    CHECK(json_is_null(json_object_get(j, "previous_item_id")));
    json_decref(j);
    j = parse(ld_ws_oa_completed("item_1", "Hi.", 1.23456));
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "Hi.");
    CHECK(json_real_value(json_object_get(json_object_get(j, "usage"), "seconds")) == 1.235);
    json_decref(j);
    ld_error err;
    ld_error_set(&err, LD_ERR_INVALID_PARAMETER, "Unknown event type 'x'");
    j = parse(ld_ws_oa_error(&err, "ev_9"));
    json_t *eo = json_object_get(j, "error");
    CHECK_STR(json_string_value(json_object_get(j, "type")), "error");
    CHECK_STR(json_string_value(json_object_get(eo, "type")), "invalid_request_error");
    CHECK_STR(json_string_value(json_object_get(eo, "event_id")), "ev_9");
    json_decref(j);
    TEST_MAIN_END();
}
