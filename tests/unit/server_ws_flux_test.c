/* Deepgram Flux (server/ws_flux.h): the query's names and defaults, its
 * refusals, the client messages, and the shape of TurnInfo, Connected and
 * Error. */
#include <stdlib.h>
#include <string.h>

#include "server/ws_flux.h"
#include "test.h"

typedef struct {
    const char *const (*kv)[2];
} q;

static const char *get(void *ud, const char *name)
{
    for (const char *const(*p)[2] = ((q *)ud)->kv; (*p)[0]; p++)
        if (!strcmp((*p)[0], name))
            return (*p)[1];
    return NULL;
}

static ld_err parse(const char *const (*kv)[2], ld_ws_params *p, ld_error *e)
{
    q u = {kv};
    return ld_ws_flux_params_parse(get, &u, p, e);
}

static json_t *json(char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    return j;
}

int main(void)
{
    json_t *j;
    ld_ws_params p;
    ld_error e = {0};
    static const char *const sdk[][2] = {{"model", "flux-general-en"}, {"encoding", "linear16"},
                                         {"sample_rate", "16000"},     {"eot_threshold", "0.7"},
                                         {"eot_timeout_ms", "600"},    {"interim_results", "false"},
                                         {"mip_opt_out", "true"},      {NULL, NULL}};
    CHECK(parse(sdk, &p, &e) == LD_OK);
    CHECK(p.flux && !p.deepgram && !p.openai);
    CHECK(p.interim_results && p.vad_events && p.punctuate && p.capitalize && p.word_timestamps);
    CHECK(p.eou_timeout_ms == 600); /* eot_timeout_ms below listend's 800 ms caps the turn's silence */
    CHECK(p.sample_rate == 16000 && p.encoding == LD_STREAM_LINEAR16 && p.channels == 1);
    static const char *const bare[][2] = {{NULL, NULL}};
    CHECK(parse(bare, &p, &e) == LD_OK && p.eou_timeout_ms == 800 && p.sample_rate == 16000);
    static const char *const mulaw[][2] = {{"encoding", "mulaw"}, {"sample_rate", "8000"}, {NULL, NULL}};
    CHECK(parse(mulaw, &p, &e) == LD_OK && p.encoding == LD_STREAM_MULAW && p.sample_rate == 8000);

    static const char *const bad[][2][2] = {
        {{"model", "nova-3"}, {NULL, NULL}},         {{"eot_timeout_ms", "100"}, {NULL, NULL}},
        {{"eot_threshold", "1.05"}, {NULL, NULL}},   {{"eager_eot_threshold", "x"}, {NULL, NULL}},
        {{"eot_timeout_ms", "60001"}, {NULL, NULL}}, {{"eot_threshold", "nan"}, {NULL, NULL}},
        {{"encoding", "flac"}, {NULL, NULL}},        {{"sample_rate", "12"}, {NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e.msg[0] = 0;
        CHECK(parse(bad[i], &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, bad[i][0][0]));
    }

    /* end of turn: the pause follows eot_threshold; eot_timeout_ms always ends a turn ("timeout") */
    CHECK(!strcmp(ld_ws_flux_trigger(&p, false, true), "model") &&
          !strcmp(ld_ws_flux_trigger(&p, true, true), "manual"));
    CHECK(!strcmp(ld_ws_flux_trigger(&p, false, false), "timeout")); /* the 20 s cap */
    static const char *const manual[][2] = {{"eot_threshold", "1.0"}, {"eot_timeout_ms", "30000"}, {NULL, NULL}};
    CHECK(parse(manual, &p, &e) == LD_OK && p.eou_timeout_ms == 30000 && p.eot_timeout_ms == 30000);
    CHECK(!strcmp(ld_ws_flux_trigger(&p, false, true), "timeout")); /* 1.0: no end at a pause of its own */
    static const char *const eager[][2] = {{"eot_threshold", "0.5"}, {"eager_eot_threshold", "0.4"}, {NULL, NULL}};
    CHECK(parse(eager, &p, &e) == LD_OK && p.eou_timeout_ms == 500 && p.eot_timeout_ms == 5000);
    CHECK(!strcmp(ld_ws_flux_trigger(&p, false, true), "model"));
    static const char *const patient[][2] = {{"eot_threshold", "0.9"}, {"eot_timeout_ms", "1000"}, {NULL, NULL}};
    CHECK(parse(patient, &p, &e) == LD_OK && p.eou_timeout_ms == 1000); /* 1400 ms pause, capped */
    CHECK(!strcmp(ld_ws_flux_trigger(&p, false, true), "timeout"));

    /* Configure: all or nothing */
    CHECK(parse(bare, &p, &e) == LD_OK);
    const char *c1 =
        "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":1.0,\"eot_timeout_ms\":\"2000\"},"
        "\"keyterms\":[\"Go-Forward\",\"GPT-4o\"],\"numerals\":true,\"language_hints\":[\"en\"]}";
    CHECK(ld_ws_flux_configure(c1, strlen(c1), &p, &e) == LD_OK);
    CHECK(p.eot_threshold == 1.0 && p.eot_timeout_ms == 2000 && p.eou_timeout_ms == 2000 && p.numerals);
    CHECK_STR(p.keywords, "go:1 forward:1 gpt:1");
    j = json(ld_ws_flux_configure_success("req_1", 5, &p));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "ConfigureSuccess");
    CHECK(json_integer_value(json_object_get(j, "sequence_id")) == 5);
    json_t *th = json_object_get(j, "thresholds");
    CHECK(json_real_value(json_object_get(th, "eot_threshold")) == 1.0);
    CHECK(json_integer_value(json_object_get(th, "eot_timeout_ms")) == 2000 &&
          !json_object_get(th, "eager_eot_threshold"));
    CHECK(json_array_size(json_object_get(j, "keyterms")) == 3);
    json_decref(j);
    static const char *const refused[] = {
        "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.2}}",
        "{\"type\":\"Configure\",\"thresholds\":{\"eot_timeout_ms\":\"soon\"}}",
        "{\"type\":\"Configure\",\"thresholds\":[0.7]}",
        "{\"type\":\"Configure\",\"numerals\":\"yes\"}",
        "{\"type\":\"Configure\",\"keyterms\":[\"ok\",3]}",
        "{\"type\":\"Configure\",\"keyterms\":\"\"}",
        "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.6},\"numerals\":1}", /* nothing applied */
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        ld_ws_params before = p;
        CHECK(ld_ws_flux_configure(refused[i], strlen(refused[i]), &p, &e) == LD_ERR_INVALID_PARAMETER);
        CHECK(!memcmp(&before, &p, sizeof p));
    }
    const char *c2 = "{\"type\":\"Configure\",\"keyterms\":[],\"thresholds\":{\"eot_threshold\":0.7}}";
    CHECK(ld_ws_flux_configure(c2, strlen(c2), &p, &e) == LD_OK && !p.keywords[0] && p.eou_timeout_ms == 800);
    CHECK(ld_ws_flux_configure("{\"type\":\"Configure\"}", 22, &p, &e) == LD_OK && p.eou_timeout_ms == 800);

    CHECK(ld_ws_flux_control_parse("{\"type\":\"CloseStream\"}", 22) == LD_FLUX_CTL_CLOSE_STREAM);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"ForceEndTurn\"}", 23) == LD_FLUX_CTL_FORCE_END);
    const char *cfg = "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.8}}";
    CHECK(ld_ws_flux_control_parse(cfg, strlen(cfg)) == LD_FLUX_CTL_CONFIGURE);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"KeepAlive\"}", 20) == LD_FLUX_CTL_KEEPALIVE);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"Results\"}", 18) == LD_FLUX_CTL_INVALID);
    CHECK(ld_ws_flux_control_parse("not json", 8) == LD_FLUX_CTL_INVALID);

    j = json(ld_ws_flux_connected("req_1", 0));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "Connected");
    CHECK(json_integer_value(json_object_get(j, "sequence_id")) == 0);
    json_decref(j);

    CHECK(parse(sdk, &p, &e) == LD_OK);
    j = json(ld_ws_flux_turn("req_1", 3, &p, LD_FLUX_UPDATE, 2, 0.5, 1.2, "go forward", NULL, 0, NULL, NULL));
    CHECK_STR(json_string_value(json_object_get(j, "event")), "Update");
    CHECK(json_integer_value(json_object_get(j, "turn_index")) == 2);
    CHECK(json_integer_value(json_object_get(j, "sequence_id")) == 3);
    CHECK(json_array_size(json_object_get(j, "words")) == 2);
    CHECK(!json_object_get(j, "trigger")); /* EndOfTurn only */
    json_decref(j);

    ld_word w[] = {{.word = "go", .start = 0.5, .end = 0.7, .confidence = 0.9},
                   {.word = "forward", .start = 0.7, .end = 1.2, .confidence = 0.8}};
    j = json(ld_ws_flux_turn("req_1", 4, &p, LD_FLUX_END, 2, 0.5, 1.8, NULL, w, 2, NULL, "manual"));
    CHECK_STR(json_string_value(json_object_get(j, "event")), "EndOfTurn");
    CHECK_STR(json_string_value(json_object_get(j, "transcript")), "Go forward.");
    CHECK_STR(json_string_value(json_object_get(j, "trigger")), "manual");
    json_t *last = json_array_get(json_object_get(j, "words"), 1);
    CHECK_STR(json_string_value(json_object_get(last, "word")), "forward.");
    CHECK(json_real_value(json_object_get(last, "end")) > 1.19);
    CHECK(json_real_value(json_object_get(j, "end_of_turn_confidence")) == 1.0);
    json_decref(j);

    j = json(ld_ws_flux_error(7, "REQUEST_TIMEOUT", "idle"));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "Error");
    CHECK_STR(json_string_value(json_object_get(j, "code")), "REQUEST_TIMEOUT");
    CHECK(json_integer_value(json_object_get(j, "sequence_id")) == 7);
    json_decref(j);
    j = json(ld_ws_flux_configure_failure("req_1", 8));
    CHECK_STR(json_string_value(json_object_get(j, "type")), "ConfigureFailure");
    json_decref(j);
    TEST_MAIN_END();
}
