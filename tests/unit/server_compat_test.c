/* The compatibility layers' pure parts (docs/compat.md): Deepgram's envelope,
 * options, words, utterances and paragraphs (with speaker labels passed
 * through), its live parameters and messages; OpenAI's envelope, options and
 * the stream deltas that must add up to the final text. */
#include <stdlib.h>

#include "asr/redact.h"
#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/ws_deepgram.h"
#include "test.h"

/* listend's JSON body for words at (start, end) with a speaker each; "." ends
 * the sentence after word i when stop[i]. */
static json_t *listend_body(const char *const *w, const double (*t)[2], const int *speaker, const bool *stop, int n)
{
    json_t *words = json_array();
    for (int i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s,s:f,s:f,s:f}", "word", w[i], "start", t[i][0], "end", t[i][1], "confidence",
                              0.5);
        if (speaker)
            json_object_set_new(e, "speaker", json_integer(speaker[i]));
        json_array_append_new(words, e);
        if (stop && stop[i])
            json_array_append_new(words, json_pack("{s:s,s:f,s:f,s:f}", "word", ".", "start", t[i][1], "end",
                                                   t[i][1], "confidence", 1.0));
    }
    return json_pack("{s:s,s:s,s:f,s:f,s:s,s:o}", "request_id", "req_x", "text", "Hello there. General Kenobi.",
                     "confidence", 0.5, "duration", 9.0, "language", "en", "words", words);
}

static void test_deepgram_body(void)
{
    const char *w[] = {"Hello", "there", "General", "Kenobi"};
    const double t[][2] = {{0.1, 0.4}, {0.5, 0.9}, {3.0, 3.5}, {3.6, 4.2}};
    const bool stop[] = {false, true, false, true};
    ld_dg_opts dg;
    ld_listen_opts o;
    ld_opts_init(&o);
    ld_dg_opts_init(&dg, &o);
    CHECK(!o.t.punctuate && o.t.timestamps);
    dg.utterances = dg.paragraphs = true;
    json_t *b = ld_dg_body(&dg, listend_body(w, t, NULL, stop, 4));
    json_t *alt = json_object_get(json_array_get(json_object_get(json_object_get(b, "results"), "channels"), 0),
                                  "alternatives");
    alt = json_array_get(alt, 0);
    json_t *words = json_object_get(alt, "words");
    CHECK(json_array_size(words) == 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(words, 0), "word")), "hello");
    CHECK_STR(json_string_value(json_object_get(json_array_get(words, 1), "punctuated_word")), "there.");
    CHECK(!json_object_get(json_array_get(words, 0), "speaker"));
    json_t *utts = json_object_get(json_object_get(b, "results"), "utterances");
    CHECK(json_array_size(utts) == 2); /* a 2.1 s pause */
    CHECK_STR(json_string_value(json_object_get(json_array_get(utts, 1), "transcript")), "General Kenobi.");
    json_t *paras = json_object_get(alt, "paragraphs");
    CHECK_STR(json_string_value(json_object_get(paras, "transcript")), "\nHello there.\n\nGeneral Kenobi.");
    json_t *meta = json_object_get(b, "metadata");
    CHECK_STR(json_string_value(json_object_get(meta, "request_id")), "req_x");
    const char *uuid = json_string_value(json_array_get(json_object_get(meta, "models"), 0));
    CHECK(uuid && strlen(uuid) == 36 && json_object_get(json_object_get(meta, "model_info"), uuid));
    json_decref(b);

    /* speaker labels (diarization) pass through: a change splits utterances and paragraphs */
    const double close[][2] = {{0.1, 0.4}, {0.5, 0.9}, {1.0, 1.5}, {1.6, 2.2}};
    const int speaker[] = {0, 0, 1, 1};
    dg.utt_split = 0.8;
    b = ld_dg_body(&dg, listend_body(w, close, speaker, stop, 4));
    alt = json_array_get(
        json_object_get(json_array_get(json_object_get(json_object_get(b, "results"), "channels"), 0),
                        "alternatives"),
        0);
    utts = json_object_get(json_object_get(b, "results"), "utterances");
    CHECK(json_array_size(utts) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(utts, 1), "speaker")) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(alt, "words"), 3), "speaker")) == 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(alt, "paragraphs"), "transcript")),
              "\nSpeaker 0: Hello there.\n\nSpeaker 1: General Kenobi.");
    json_decref(b);
}

static void test_deepgram_options_and_errors(void)
{
    ld_dg_opts dg;
    ld_listen_opts o;
    ld_error e;
    ld_opts_init(&o);
    ld_dg_opts_init(&dg, &o);
    CHECK(ld_dg_opt_set(&dg, &o, "smart_format", "true", &e) == LD_OK && o.t.punctuate && dg.paragraphs);
    CHECK(ld_dg_opt_set(&dg, &o, "model", "nova-3", &e) == LD_OK);
    CHECK(ld_dg_opt_set(&dg, &o, "language", "en-US", &e) == LD_OK && !strcmp(o.t.language, "en"));
    CHECK(ld_dg_opt_set(&dg, &o, "callback", "https://example.com/hook", &e) == LD_OK &&
          !strcmp(o.callback_url, "https://example.com/hook"));
    CHECK(ld_dg_opt_set(&dg, &o, "encoding", "flac", &e) == LD_OK && !o.raw_pcm);
    CHECK(ld_dg_opt_set(&dg, &o, "encoding", "linear16", &e) == LD_OK && o.raw_pcm);
    CHECK(ld_dg_opt_set(&dg, &o, "channels", "2", &e) == LD_OK);
    CHECK(ld_dg_opts_check(&dg, &o, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "channels"));
    CHECK(ld_dg_opt_set(&dg, &o, "utt_split", "0.05", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_dg_opt_set(&dg, &o, "callback_method", "put", &e) == LD_OK && o.callback_put);
    CHECK(ld_dg_opt_set(&dg, &o, "callback_method", "get", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_dg_opt_set(&dg, &o, "sentiment", "true", &e) == LD_OK); /* ignored, as Deepgram ignores unknowns */

    ld_error err;
    ld_error_set(&err, LD_ERR_RATE_LIMITED, "Rate limit exceeded");
    json_t *j = ld_dg_error_json(&err, "req_1", json_pack("{s:i,s:s}", "retry_after", 3, "code", "X"));
    CHECK_STR(json_string_value(json_object_get(j, "err_code")), "TOO_MANY_REQUESTS");
    CHECK_STR(json_string_value(json_object_get(j, "err_msg")), "Rate limit exceeded");
    CHECK(json_integer_value(json_object_get(j, "retry_after")) == 3 && !json_object_get(j, "code"));
    json_decref(j);
}

static void test_openai(void)
{
    ld_error err;
    ld_error_set(&err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter 'response_format': expected json");
    json_t *wrap = ld_openai_error_json(&err, "req_1", NULL), *j = json_object_get(wrap, "error");
    CHECK_STR(json_string_value(json_object_get(j, "type")), "invalid_request_error");
    CHECK_STR(json_string_value(json_object_get(j, "code")), "invalid_parameter");
    CHECK_STR(json_string_value(json_object_get(j, "param")), "response_format");
    json_decref(wrap);
    ld_error_set(&err, LD_ERR_INVALID_LICENSE, NULL);
    json_t *o = ld_openai_error_json(&err, NULL, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "code")), "invalid_api_key");
    CHECK(json_is_null(json_object_get(json_object_get(o, "error"), "param")));
    json_decref(o);
    ld_error_set(&err, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language: 'fr' (available: en)");
    o = ld_openai_error_json(&err, NULL, NULL); /* the message names no parameter: the code does */
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "param")), "language");
    json_decref(o);

    ld_listen_opts lo;
    ld_opts_init(&lo);
    CHECK(ld_openai_opt_set(&lo, "stream", "true", &err) == LD_OK && lo.stream);
    CHECK(ld_openai_opt_set(&lo, "model", "whisper-1", &err) == LD_OK);
    CHECK(ld_openai_opt_set(&lo, "temperature", "0.2", &err) == LD_OK);
    CHECK(ld_openai_opt_set(&lo, "stream", "yes", &err) == LD_ERR_INVALID_PARAMETER);
    json_t *model = ld_openai_model("whisper-1", 1, NULL);
    CHECK(model && !ld_openai_model("tts-1", 1, NULL));
    json_t *names = json_pack("[s,s,s]", "auto", "general", "telephony");
    json_t *tel = ld_openai_model("telephony", 1, names);
    CHECK(tel && !strcmp(json_string_value(json_object_get(tel, "id")), "telephony"));
    json_decref(tel);
    json_t *list = ld_openai_models(1, names);
    CHECK(json_array_size(json_object_get(list, "data")) == 7);
    json_decref(list);
    json_decref(names);
    json_decref(model);

    /* deltas: the mark after the last word waits for the next segment; they add up to the text */
    ld_openai_delta d;
    ld_openai_delta_init(&d, LD_RENDER_PUNCTUATE);
    ld_word a[] = {{"hello", 0.1, 0.4, 0.9}, {"there", 0.5, 0.9, 0.9}};
    ld_word b[] = {{"general", 3.0, 3.5, 0.9}, {"kenobi", 3.6, 4.2, 0.9}};
    char *e1 = ld_openai_delta_push(&d, a, 2), *e2 = ld_openai_delta_push(&d, b, 2);
    char *e3 = ld_openai_delta_done(&d, "Hello there. General kenobi.", 4.2, NULL);
    CHECK(e1 && strstr(e1, "\"delta\":\"Hello there\"") && !strncmp(e1, "data: {", 7));
    CHECK(e2 && strstr(e2, "\"delta\":\". General kenobi\"") && e2[strlen(e2) - 1] == '\n');
    CHECK(e3 && strstr(e3, "\"delta\":\".\"") && strstr(e3, "transcript.text.done"));
    CHECK(ld_openai_delta_push(&d, NULL, 0) == NULL);
    free(e1), free(e2), free(e3);
    ld_openai_delta_free(&d);

    /* with redaction the deltas never show a number that the next segment turns into a token */
    ld_openai_delta_init(&d, LD_RENDER_PUNCTUATE | (LD_REDACT_PII << LD_RENDER_REDACT_SHIFT));
    ld_word p1[] = {
        {"call", 0.1, 0.4, 0.9}, {"five", 0.5, 0.8, 0.9}, {"five", 0.8, 1.1, 0.9}, {"five", 1.1, 1.4, 0.9}};
    ld_word p2[] = {{"one", 2.0, 2.3, 0.9},
                    {"two", 2.3, 2.6, 0.9},
                    {"three", 2.6, 2.9, 0.9},
                    {"four", 2.9, 3.2, 0.9},
                    {"thanks", 3.4, 3.8, 0.9}};
    e1 = ld_openai_delta_push(&d, p1, 4), e2 = ld_openai_delta_push(&d, p2, 5);
    CHECK(e1 && strstr(e1, "\"delta\":\"Call\"") && !strstr(e1, "five"));
    CHECK(e2 && strstr(e2, "[PHONENUMBER_1]") && !strstr(e2, "five") && !strstr(e2, "one"));
    free(e1), free(e2);
    ld_openai_delta_free(&d);
    /* a token at the end waits too: the next segment may make the card group a phone number */
    ld_openai_delta_init(&d, LD_RENDER_PUNCTUATE | ((LD_REDACT_PII | LD_REDACT_PCI) << LD_RENDER_REDACT_SHIFT));
    ld_word q1[] = {{"call", 0.1, 0.4, 0.9},
                    {"five", 0.5, 0.8, 0.9},
                    {"five", 0.8, 1.1, 0.9},
                    {"five", 1.1, 1.4, 0.9},
                    {"one", 1.4, 1.7, 0.9}};
    ld_word q2[] = {
        {"two", 2.3, 2.6, 0.9}, {"three", 2.6, 2.9, 0.9}, {"four", 2.9, 3.2, 0.9}, {"thanks", 3.4, 3.8, 0.9}};
    e1 = ld_openai_delta_push(&d, q1, 5), e2 = ld_openai_delta_push(&d, q2, 4);
    CHECK(e1 && strstr(e1, "\"delta\":\"Call\"") && !strstr(e1, "CREDITCARD"));
    CHECK(e2 && strstr(e2, "[PHONENUMBER_1]")); /* deltas go on */
    free(e1), free(e2);
    ld_openai_delta_free(&d);

    /* diarized_json: diarize on, speaker turns as OpenAI's lettered segments */
    CHECK(ld_openai_opt_set(&lo, "response_format", "diarized_json", &err) == LD_OK);
    CHECK(lo.diarized && lo.diarize && lo.t.diarize && !lo.verbose && lo.t.format == LD_FORMAT_JSON);
    CHECK(ld_openai_opt_set(&lo, "known_speaker_names[]", "agent", &err) == LD_OK);
    CHECK(ld_openai_opt_set(&lo, "model", "gpt-4o-transcribe-diarize", &err) == LD_OK);
    json_t *listend = json_pack("{s:s,s:f,s:[{s:s,s:f,s:f,s:i},{s:s,s:f,s:f,s:i},{s:s,s:f,s:f,s:i}]}", "text",
                                "Hi. Hello. Bye.", "duration", 5.0, "utterances", "text", "Hi.", "start", 0.1,
                                "end", 0.5, "speaker", 0, "text", "Hello.", "start", 1.0, "end", 2.0, "speaker", 1,
                                "text", "Bye.", "start", 3.0, "end", 4.0, "speaker", 27);
    char *events = ld_openai_delta_done(&d, "Hi. Hello. Bye.", 5.0, listend);
    CHECK(events && strstr(events, "\"type\":\"transcript.text.segment\",\"id\":\"seg_1\"") &&
          strstr(events, "\"speaker\":\"B\"") && strstr(events, "\"speaker\":\"C\"") &&
          strstr(events, "\"speaker\":\"B\"") < strstr(events, "transcript.text.done"));
    free(events);
    ld_openai_delta_free(&d);
    json_t *body = ld_openai_body(&lo, listend); /* steals listend */
    json_t *segs = json_object_get(body, "segments");
    CHECK(json_array_size(segs) == 3 && !strcmp(json_string_value(json_object_get(body, "task")), "transcribe"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(segs, 0), "speaker")), "A"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(segs, 1), "text")), "Hello."));
    CHECK(json_real_value(json_object_get(json_object_get(body, "usage"), "seconds")) == 5.0);
    json_decref(body);
    /* multichannel: each channel numbers its speakers from 0 and the format has
     * no channel field, so letters name (channel, speaker) pairs in order of
     * first appearance; past Z they go on AA, AB, … */
    json_t *mc = json_pack("{s:s,s:f,s:[]}", "text", "", "duration", 9.0, "utterances");
    int pairs[][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 0}};
    for (int k = 0; k < 4; k++)
        json_array_append_new(json_object_get(mc, "utterances"),
                              json_pack("{s:s,s:f,s:f,s:i,s:i}", "text", "x", "start", k * 1.0, "end", k + 0.5,
                                        "channel", pairs[k][0], "speaker", pairs[k][1]));
    for (int k = 0; k < 26; k++) /* channel 2's speakers 0..25: voices 3..28 */
        json_array_append_new(json_object_get(mc, "utterances"),
                              json_pack("{s:s,s:f,s:f,s:i,s:i}", "text", "x", "start", 5.0 + k * 0.1, "end",
                                        5.05 + k * 0.1, "channel", 2, "speaker", k));
    body = ld_openai_body(&lo, mc);
    segs = json_object_get(body, "segments");
    const char *want[] = {"A", "B", "C", "A", "D"};
    for (size_t k = 0; k < 5; k++)
        CHECK(!strcmp(json_string_value(json_object_get(json_array_get(segs, k), "speaker")), want[k]));
    CHECK(json_array_size(segs) == 30 &&
          !strcmp(json_string_value(json_object_get(json_array_get(segs, 29), "speaker")), "AC"));
    json_decref(body);
    CHECK(ld_openai_opt_set(&lo, "response_format", "json", &err) == LD_OK && !lo.diarized);

    /* verbose_json: avg_logprob over the words only, not listend's "." entries (confidence 1) */
    CHECK(ld_openai_opt_set(&lo, "response_format", "verbose_json", &err) == LD_OK && lo.verbose);
    json_t *v = json_pack(
        "{s:s,s:f,s:s,s:[{s:s,s:f,s:f,s:f},{s:s,s:f,s:f,s:f},{s:s,s:f,s:f,s:f}],s:[{s:s,s:f,s:f}]}", "text",
        "Hi there.", "duration", 2.0, "language", "en", "words", "word", "Hi", "start", 0.1, "end", 0.4,
        "confidence", 0.5, "word", "there", "start", 0.4, "end", 0.9, "confidence", 0.5, "word", ".", "start", 0.9,
        "end", 0.9, "confidence", 1.0, "utterances", "text", "Hi there.", "start", 0.1, "end", 0.9);
    body = ld_openai_body(&lo, v);
    CHECK_NEAR(
        json_real_value(json_object_get(json_array_get(json_object_get(body, "segments"), 0), "avg_logprob")),
        log(0.5), 1e-3);
    json_decref(body);
}

typedef struct {
    const char *kv[16];
} query;

static const char *get(void *ud, const char *name)
{
    query *q = ud;
    for (int i = 0; q->kv[i]; i += 2)
        if (!strcmp(q->kv[i], name))
            return q->kv[i + 1];
    return NULL;
}

static void test_deepgram_live(void)
{
    ld_ws_params p;
    ld_error e;
    query none = {{NULL}};
    CHECK(ld_ws_dg_params_parse(get, &none, &p, &e) == LD_OK);
    CHECK(p.deepgram && !p.interim_results && !p.punctuate && p.word_timestamps && p.speech_final);
    CHECK(p.eou_timeout_ms == 800 && p.utterance_end_ms == 0);
    query q = {{"language", "en-US", "endpointing", "300", "utterance_end_ms", "1000", "interim_results", "true",
                "encoding", "ogg-opus", "smart_format", "true", NULL}};
    CHECK(ld_ws_dg_params_parse(get, &q, &p, &e) == LD_OK);
    CHECK(!strcmp(p.language, "en") && p.eou_timeout_ms == 300 && p.utterance_end_ms == 1000);
    CHECK(p.interim_results && p.punctuate && p.encoding == LD_STREAM_OGG_OPUS);
    query off = {{"endpointing", "false", NULL}};
    CHECK(ld_ws_dg_params_parse(get, &off, &p, &e) == LD_OK && !p.speech_final);
    query bad = {{"endpointing", "soon", NULL}};
    CHECK(ld_ws_dg_params_parse(get, &bad, &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "endpointing"));

    ld_ws_dg_params_parse(get, &q, &p, &e);
    snprintf(p.model, sizeof p.model, "telephony"); /* the pack in use, as the session sets it */
    ld_word w[] = {{"go", 0.46, 0.64, 1.0}, {"forward", 0.64, 1.17, 0.5}};
    char *m = ld_ws_dg_results("req_1", &p, NULL, w, 2, NULL, true, true, false, 0.46, 0.71);
    json_t *j = json_loads(m, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "Results");
    CHECK(json_is_true(json_object_get(j, "speech_final")) && json_is_false(json_object_get(j, "from_finalize")));
    json_t *alt = json_array_get(json_object_get(json_object_get(j, "channel"), "alternatives"), 0);
    CHECK_STR(json_string_value(json_object_get(alt, "transcript")), "Go forward.");
    CHECK_NEAR(json_number_value(json_object_get(alt, "confidence")), 0.75, 1e-9);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "metadata"), "request_id")), "req_1");
    /* which model answered: the stream's pack, not always general */
    json_t *mi = json_object_get(json_object_get(j, "metadata"), "model_info");
    CHECK_STR(json_string_value(json_object_get(mi, "name")), "listend-telephony-en");
    json_decref(j);
    free(m);
    m = ld_ws_dg_metadata("req_1", "ab", 0, 4.5, "en");
    CHECK(m && strstr(m, "\"type\":\"Metadata\"") && strstr(m, "\"created\":\"1970-01-01T00:00:00.000Z\""));
    free(m);
}

int main(void)
{
    test_deepgram_body();
    test_deepgram_options_and_errors();
    test_openai();
    test_deepgram_live();
    TEST_MAIN_END();
}
