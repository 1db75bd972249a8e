/* Streaming protocol pieces: query parameters, control messages, close codes,
 * the handshake key (RFC 6455 §1.3 example), subprotocol auth, messages. */
#include "asr/redact.h"
#include "server/ws_proto.h"
#include "test.h"

#include <sodium.h>
#include <stdlib.h>

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

static ld_err parse(ld_ws_params *p, ld_error *err, const char *k1, const char *v1, const char *k2, const char *v2)
{
    query q = {{k1, v1, k2, v2, NULL}};
    if (!k2)
        q.kv[2] = NULL;
    if (!k1)
        q.kv[0] = NULL;
    return ld_ws_params_parse(get, &q, p, err);
}

static void test_params(void)
{
    ld_ws_params p;
    ld_error err;
    CHECK(parse(&p, &err, NULL, NULL, NULL, NULL) == LD_OK);
    CHECK_STR(p.language, "en");
    CHECK(p.encoding == LD_STREAM_LINEAR16 && p.sample_rate == 16000 && p.eou_timeout_ms == 800);
    CHECK(p.interim_results && p.punctuate && p.word_timestamps && !p.vad_events);

    CHECK(parse(&p, &err, "encoding", "mulaw", "sample_rate", "8000") == LD_OK);
    CHECK(p.encoding == LD_STREAM_MULAW && p.sample_rate == 8000);
    CHECK(parse(&p, &err, "format", "false", NULL, NULL) == LD_OK && !p.punctuate &&
          !p.capitalize); /* the spec's switch */
    CHECK(parse(&p, &err, "format", "false", "punctuate", "true") == LD_OK && p.punctuate && !p.capitalize);
    CHECK(parse(&p, &err, "format", "json", NULL, NULL) == LD_ERR_INVALID_PARAMETER && strstr(err.msg, "format"));
    CHECK(parse(&p, &err, "encoding", "linear32", "sample_rate", "48000") == LD_OK); /* the spec's float PCM */
    CHECK(p.encoding == LD_STREAM_LINEAR32 && p.sample_rate == 48000);
    CHECK(parse(&p, &err, "vad", "true", "interim_results", "false") == LD_OK);
    CHECK(p.vad_events && !p.interim_results);
    CHECK(parse(&p, &err, "eou_timeout_ms", "100", "punctuate", "FALSE") == LD_OK);
    CHECK(p.eou_timeout_ms == 100 && !p.punctuate);
    CHECK(parse(&p, &err, "model", "nova-3", "smart_format", "whatever") == LD_OK); /* unknown names ignored */

    CHECK(parse(&p, &err, "encoding", "mp3", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "encoding") != NULL);
    CHECK(parse(&p, &err, "sample_rate", "7999", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "sample_rate", "48001", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "sample_rate", "16000x", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "sample_rate", "", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "eou_timeout_ms", "99", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "eou_timeout_ms", "10001", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "word_timestamps", "yes", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "word_timestamps") != NULL);
    CHECK(parse(&p, &err, "language", "e", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "language", "en;rm -rf", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "language", "es", NULL, NULL) == LD_OK && !strcmp(p.language, "es"));
    /* as for uploads: a tag or a locale is its language, an empty value the default */
    CHECK(parse(&p, &err, "language", "en-US", NULL, NULL) == LD_OK && !strcmp(p.language, "en"));
    CHECK(parse(&p, &err, "language", "EN_gb.UTF-8", NULL, NULL) == LD_OK && !strcmp(p.language, "en"));
    CHECK(parse(&p, &err, "language", "", NULL, NULL) == LD_OK && !strcmp(p.language, "en"));

    /* the spec's other stream options */
    CHECK(parse(&p, &err, NULL, NULL, NULL, NULL) == LD_OK);
    CHECK(p.capitalize && !p.sentence_timestamps && !p.full_transcript && !p.diarize && p.num_speakers == 0);
    CHECK(parse(&p, &err, "capitalize", "false", "sentence_timestamps", "true") == LD_OK);
    CHECK(!p.capitalize && p.sentence_timestamps);
    CHECK(parse(&p, &err, "full_transcript", "true", "diarize", "true") == LD_OK && p.full_transcript && p.diarize);
    CHECK(parse(&p, &err, "diarize", "true", "num_speakers", "8") == LD_OK && p.num_speakers == 8);
    CHECK(parse(&p, &err, "num_speakers", "9", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "num_speakers") != NULL);
    CHECK(parse(&p, &err, "diarize", "sometimes", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "full_transcript", "2", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "external_session_id", "call-42_a.b", NULL, NULL) == LD_OK);
    CHECK(parse(&p, &err, "external_session_id", "a b", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "external_session_id") != NULL);
    char id[130];
    memset(id, 'x', 129);
    id[129] = 0;
    CHECK(parse(&p, &err, "external_session_id", id, NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    id[128] = 0;
    CHECK(parse(&p, &err, "external_session_id", id, NULL, NULL) == LD_OK);
    /* finalize_on_words, max_words, redaction */
    CHECK(parse(&p, &err, NULL, NULL, NULL, NULL) == LD_OK && p.finalize_on_words && !p.max_words && !p.redact);
    CHECK(parse(&p, &err, "finalize_on_words", "false", "max_words", "100") == LD_OK);
    CHECK(!p.finalize_on_words && p.max_words == 100);
    CHECK(parse(&p, &err, "max_words", "1001", NULL, NULL) == LD_ERR_INVALID_PARAMETER);
    CHECK(parse(&p, &err, "redact_pii", "true", "redact_pci", "false") == LD_OK && p.redact == LD_REDACT_PII);
    CHECK(parse(&p, &err, "redact_pci", "1", "language", "es") == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "English") != NULL);
}

static void test_controls(void)
{
#define C(s) ld_ws_control_parse(s, strlen(s))
    CHECK(C("{\"type\":\"finalize\"}") == LD_WS_CTL_FINALIZE);
    CHECK(C("{\"type\":\"Finalize\"}") == LD_WS_CTL_FINALIZE);
    CHECK(C("{\"type\":\"close_stream\"}") == LD_WS_CTL_CLOSE_STREAM);
    CHECK(C("{\"type\":\"end\"}") == LD_WS_CTL_CLOSE_STREAM);
    CHECK(C(" {\"type\": \"CloseStream\", \"extra\": 1} ") == LD_WS_CTL_CLOSE_STREAM);
    CHECK(C("{\"type\":\"keepalive\"}") == LD_WS_CTL_KEEPALIVE);
    CHECK(C("{\"type\":\"KeepAlive\"}") == LD_WS_CTL_KEEPALIVE);
    CHECK(C("{\"type\":\"configure\"}") == LD_WS_CTL_UNKNOWN_TYPE);
    CHECK(C("{\"type\":\"FINALIZE\"}") == LD_WS_CTL_UNKNOWN_TYPE);
    CHECK(C("{\"type\":5}") == LD_WS_CTL_INVALID);
    CHECK(C("{\"kind\":\"finalize\"}") == LD_WS_CTL_INVALID);
    CHECK(C("[\"finalize\"]") == LD_WS_CTL_INVALID);
    CHECK(C("finalize") == LD_WS_CTL_INVALID);
    CHECK(C("{\"type\":\"finalize\"") == LD_WS_CTL_INVALID);
    CHECK(C("{\"type\":\"finalize\",\"type\":\"end\"}") == LD_WS_CTL_INVALID); /* ambiguous */
    CHECK(C("") == LD_WS_CTL_INVALID);
    CHECK(ld_ws_control_parse("{\"type\":\"end\"}garbage", 14) == LD_WS_CTL_CLOSE_STREAM); /* length honoured */
    CHECK(ld_ws_control_parse("{\"type\":\"e\xff\"}", 13) == LD_WS_CTL_INVALID);           /* bad UTF-8 */
#undef C
}

static void test_close_codes(void)
{
    CHECK(ld_ws_close_code(LD_OK) == 1000);
    CHECK(ld_ws_close_code(LD_ERR_QUOTA_EXCEEDED) == 1008);
    CHECK(ld_ws_close_code(LD_ERR_REQUEST_TIMEOUT) == 1008);
    CHECK(ld_ws_close_code(LD_ERR_INVALID_LICENSE) == 1008);
    CHECK(ld_ws_close_code(LD_ERR_INVALID_AUDIO) == 1003);
    CHECK(ld_ws_close_code(LD_ERR_INVALID_PARAMETER) == 1003);
    CHECK(ld_ws_close_code(LD_ERR_FILE_TOO_LARGE) == 1009);
    CHECK(ld_ws_close_code(LD_ERR_SERVICE_UNAVAILABLE) == 1013);
    CHECK(ld_ws_close_code(LD_ERR_INTERNAL) == 1011);
}

static void test_handshake(void)
{
    char out[29];
    CHECK(ld_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out) == 0);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
    CHECK(ld_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out) == -1);
    CHECK(ld_ws_accept_key("!!!!!!!!!!!!!!!!!!!!!!==", out) == -1);
    CHECK(ld_ws_accept_key(NULL, out) == -1);
    CHECK(ld_ws_accept_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", out) == -1); /* 21 bytes */

    char key[64];
    CHECK(ld_ws_subprotocol_key("token, abc.def", key, sizeof key) == 1 && !strcmp(key, "abc.def"));
    CHECK(ld_ws_subprotocol_key("Token,xyz", key, sizeof key) == 1 && !strcmp(key, "xyz"));
    CHECK(ld_ws_subprotocol_key("chat, token, k1, other", key, sizeof key) == 1 && !strcmp(key, "k1"));
    CHECK(ld_ws_subprotocol_key("realtime, openai-insecure-api-key.ld1.x, openai-beta.realtime-v1", key,
                                sizeof key) == 1 &&
          !strcmp(key, "ld1.x"));
    CHECK(ld_ws_subprotocol_key("realtime, openai-insecure-api-key.", key, sizeof key) == 0);
    CHECK(ld_ws_subprotocol_key("token", key, sizeof key) == 0);
    CHECK(ld_ws_subprotocol_key("chat, superchat", key, sizeof key) == 0);
    CHECK(ld_ws_subprotocol_key(NULL, key, sizeof key) == 0);
    CHECK(ld_ws_subprotocol_key("token, 0123456789", key, 5) == 0); /* too long: refused, not cut */
}

static void test_messages(void)
{
    ld_ws_params p;
    ld_error err;
    parse(&p, &err, NULL, NULL, NULL, NULL);
    ld_word w[2] = {{"go", 0.5, 0.7, 0.9}, {"forward", 0.8, 1.2, 0.8}};
    char *s = ld_ws_msg_transcription("sess_x", &p, NULL, w, 2, NULL, true, true, true, 0.5, 0.7);
    json_t *j = json_loads(s, 0, NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "transcription");
    CHECK_STR(json_string_value(json_object_get(j, "status")), "success");
    CHECK_STR(json_string_value(json_object_get(j, "session_id")), "sess_x");
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "Go forward.");
    CHECK(json_is_true(json_object_get(j, "is_final")) && json_is_true(json_object_get(j, "is_last")));
    CHECK(json_is_true(json_object_get(j, "from_finalize")));
    CHECK(json_array_size(json_object_get(j, "words")) == 3); /* Go, forward, "." */
    CHECK_NEAR(json_real_value(json_object_get(j, "start")), 0.5, 1e-9);
    json_decref(j);
    free(s);

    p.punctuate = false;
    p.word_timestamps = false;
    s = ld_ws_msg_transcription("sess_x", &p, NULL, w, 2, NULL, true, false, false, 0.5, 0.7);
    j = json_loads(s, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "go forward");
    CHECK(json_object_get(j, "words") == NULL && json_object_get(j, "from_finalize") == NULL);
    json_decref(j);
    free(s);

    s = ld_ws_msg_transcription("sess_x", &p, "go for", NULL, 0, NULL, false, false, false, 0.5, 0.3);
    j = json_loads(s, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "go for");
    CHECK(json_is_false(json_object_get(j, "is_final")) && json_is_false(json_object_get(j, "is_last")));
    json_decref(j);
    free(s);

    /* a diarized final with sentences and the text so far */
    parse(&p, &err, "sentence_timestamps", "true", "full_transcript", "true");
    ld_word w3[4] = {{"yes", 0.1, 0.3, 0.9}, {"i", 0.4, 0.5, 0.9}, {"think", 0.5, 0.8, 0.9}, {"so", 0.8, 1.0, 0.9}};
    int who[4] = {0, 1, 1, 1};
    float sure[4] = {0.9f, 0.6f, 0.6f, 0.7f};
    char *full = strdup("Hello there.");
    ld_ws_final fin = {who, sure, &full, NULL};
    s = ld_ws_msg_transcription("sess_x", &p, NULL, w3, 4, &fin, true, false, false, 0.1, 0.9);
    j = json_loads(s, 0, NULL);
    json_t *u = json_object_get(j, "utterances"), *ws = json_object_get(j, "words");
    CHECK(json_array_size(u) == 2); /* split where the speaker changes */
    CHECK_STR(json_string_value(json_object_get(json_array_get(u, 0), "text")), "Yes");
    CHECK_STR(json_string_value(json_object_get(json_array_get(u, 1), "text")), "I think so.");
    CHECK(json_integer_value(json_object_get(json_array_get(u, 1), "speaker")) == 1);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(u, 1), "start")), 0.4, 1e-9);
    CHECK(json_integer_value(json_object_get(json_array_get(ws, 0), "speaker")) == 0);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(ws, 0), "speaker_confidence")), 0.9, 1e-6);
    CHECK(json_integer_value(json_object_get(json_array_get(ws, 4), "speaker")) == 1); /* "." as "so" */
    CHECK_STR(json_string_value(json_object_get(j, "full_transcript")), "Hello there. Yes I think so.");
    CHECK_STR(full, "Hello there. Yes I think so.");
    json_decref(j);
    free(s);
    p.capitalize = false; /* sentences end at . ? ! too */
    ld_word w4[3] = {{"stop", 0.1, 0.3, 0.9}, {"go", 1.4, 1.6, 0.9}, {"i", 1.7, 1.8, 0.9}};
    s = ld_ws_msg_transcription("sess_x", &p, NULL, w4, 3, NULL, true, false, false, 0.1, 1.7);
    j = json_loads(s, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "stop. go i.");
    CHECK(json_array_size(json_object_get(j, "utterances")) == 2);
    CHECK(json_object_get(json_array_get(json_object_get(j, "utterances"), 0), "speaker") == NULL);
    CHECK(json_object_get(j, "full_transcript") == NULL);
    json_decref(j);
    free(s);
    free(full);

    s = ld_ws_msg_error("bad \"thing\"", "INVALID_PARAMETER");
    j = json_loads(s, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "error");
    CHECK_STR(json_string_value(json_object_get(j, "status")), "error");
    CHECK_STR(json_string_value(json_object_get(j, "message")), "bad \"thing\"");
    json_decref(j);
    free(s);

    s = ld_ws_msg_event("speech_started", "sess_x", 1.23456);
    j = json_loads(s, 0, NULL);
    CHECK_NEAR(json_real_value(json_object_get(j, "timestamp")), 1.235, 1e-9);
    json_decref(j);
    free(s);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_params();
    test_controls();
    test_close_codes();
    test_handshake();
    test_messages();
    TEST_MAIN_END();
}
