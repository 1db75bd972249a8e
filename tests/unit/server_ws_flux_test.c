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
        {{"model", "nova-3"}, {NULL, NULL}},       {{"eot_timeout_ms", "100"}, {NULL, NULL}},
        {{"eot_threshold", "0.95"}, {NULL, NULL}}, {{"eager_eot_threshold", "x"}, {NULL, NULL}},
        {{"encoding", "flac"}, {NULL, NULL}},      {{"sample_rate", "12"}, {NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e.msg[0] = 0;
        CHECK(parse(bad[i], &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, bad[i][0][0]));
    }

    CHECK(ld_ws_flux_control_parse("{\"type\":\"CloseStream\"}", 22) == LD_FLUX_CTL_CLOSE_STREAM);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"ForceEndTurn\"}", 23) == LD_FLUX_CTL_FORCE_END);
    const char *cfg = "{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.8}}";
    CHECK(ld_ws_flux_control_parse(cfg, strlen(cfg)) == LD_FLUX_CTL_CONFIGURE);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"KeepAlive\"}", 20) == LD_FLUX_CTL_KEEPALIVE);
    CHECK(ld_ws_flux_control_parse("{\"type\":\"Results\"}", 18) == LD_FLUX_CTL_INVALID);
    CHECK(ld_ws_flux_control_parse("not json", 8) == LD_FLUX_CTL_INVALID);

    json_t *j = json(ld_ws_flux_connected("req_1", 0));
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
