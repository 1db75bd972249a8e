/* multichannel (issue 14) on the server side: options, stream parameters,
 * per-channel stream messages, Deepgram's batch body with channels. */
#include <stdlib.h>
#include <string.h>

#include "server/compat_deepgram.h"
#include "server/opts.h"
#include "server/ws_deepgram.h"
#include "server/ws_proto.h"
#include "test.h"

typedef struct {
    const char *kv[8];
} query;

static const char *get(void *ud, const char *name)
{
    query *q = ud;
    for (int i = 0; q->kv[i]; i += 2)
        if (!strcmp(q->kv[i], name))
            return q->kv[i + 1];
    return NULL;
}

static void test_opts(void)
{
    ld_listen_opts o;
    ld_error e = {0};
    ld_opts_init(&o);
    CHECK(!o.t.multichannel && o.channels == 0);
    CHECK(ld_opts_set(&o, "multichannel", "true", &e) == LD_OK && o.t.multichannel);
    CHECK(ld_opts_set(&o, "multichannel", "perhaps", &e) == LD_ERR_INVALID_PARAMETER &&
          strstr(e.msg, "multichannel"));
    CHECK(ld_opts_set(&o, "channels", "8", &e) == LD_OK && o.channels == 8);
    CHECK(ld_opts_set(&o, "channels", "9", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_opts_set(&o, "channels", "0", &e) == LD_ERR_INVALID_PARAMETER);
    /* raw interleaved audio needs multichannel */
    ld_opts_init(&o);
    CHECK(ld_opts_set(&o, "encoding", "linear16", &e) == LD_OK);
    CHECK(ld_opts_set(&o, "channels", "2", &e) == LD_OK);
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "multichannel=true"));
    o.t.multichannel = true;
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_OK);
    o.stream = true; /* OpenAI's stream=true */
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_ERR_INVALID_PARAMETER);
    /* JSON bodies: typed values */
    ld_opts_init(&o);
    json_t *j = json_pack("{s:b,s:i}", "multichannel", 1, "channels", 2);
    CHECK(ld_opts_set_json(&o, j, &e) == LD_OK && o.t.multichannel && o.channels == 2);
    json_decref(j);
    j = json_pack("{s:[]}", "multichannel");
    CHECK(ld_opts_set_json(&o, j, &e) == LD_ERR_INVALID_PARAMETER);
    json_decref(j);
    /* Deepgram: channels with raw audio */
    ld_dg_opts dg;
    ld_opts_init(&o);
    ld_dg_opts_init(&dg, &o);
    CHECK(ld_dg_opt_set(&dg, &o, "encoding", "linear16", &e) == LD_OK);
    CHECK(ld_dg_opt_set(&dg, &o, "channels", "2", &e) == LD_OK && o.channels == 2);
    CHECK(ld_dg_opts_check(&dg, &o, &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_dg_opt_set(&dg, &o, "multichannel", "true", &e) == LD_OK && o.t.multichannel);
    CHECK(ld_dg_opts_check(&dg, &o, &e) == LD_OK);
    CHECK(ld_dg_opt_set(&dg, &o, "channels", "12", &e) == LD_OK);
    CHECK(ld_dg_opts_check(&dg, &o, &e) == LD_ERR_INVALID_PARAMETER);
}

static void test_stream_params(void)
{
    ld_ws_params p;
    ld_error e = {0};
    query q = {{NULL}};
    CHECK(ld_ws_params_parse(get, &q, &p, &e) == LD_OK && p.channels == 1);
    q = (query){{"channels", "2", "encoding", "mulaw", NULL}};
    CHECK(ld_ws_params_parse(get, &q, &p, &e) == LD_OK && p.channels == 2);
    q = (query){{"channels", "9", NULL}};
    CHECK(ld_ws_params_parse(get, &q, &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "channels"));
    q = (query){{"channels", "2", "encoding", "ogg_opus", NULL}};
    CHECK(ld_ws_params_parse(get, &q, &p, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "channels"));
    q = (query){{"channels", "3", "encoding", "linear16", NULL}};
    CHECK(ld_ws_dg_params_parse(get, &q, &p, &e) == LD_OK && p.channels == 3 && p.deepgram);
}

static void test_stream_messages(void)
{
    ld_ws_params p;
    ld_error e = {0};
    query q = {{"channels", "2", NULL}};
    CHECK(ld_ws_params_parse(get, &q, &p, &e) == LD_OK);
    p.channel = 1;
    ld_word w[1] = {{"hello", 0.5, 0.9, 0.9}};
    char *m = ld_ws_msg_transcription("sess_x", &p, NULL, w, 1, NULL, true, false, false, 0.5, 0.4);
    json_t *j = json_loads(m, 0, NULL);
    CHECK(json_integer_value(json_object_get(j, "channel")) == 1);
    json_decref(j);
    free(m);
    m = ld_ws_msg_event_in("speech_started", "sess_x", 0.5, &p);
    CHECK(m && strstr(m, "\"channel\":1"));
    free(m);
    m = ld_ws_dg_results("req", &p, NULL, w, 1, NULL, true, true, false, 0.5, 0.4);
    CHECK(m && strstr(m, "\"channel_index\":[1,2]"));
    free(m);
    m = ld_ws_dg_speech_started_in(0.5, &p);
    CHECK(m && strstr(m, "\"channel\":[1,2]"));
    free(m);
    m = ld_ws_dg_utterance_end_in(0.9, &p);
    CHECK(m && strstr(m, "\"channel\":[1,2]"));
    free(m);
    m = ld_ws_dg_metadata_channels("req", "", 0, 1.0, "en", "telephony", 2);
    CHECK(m && strstr(m, "\"channels\":2") && strstr(m, "\"name\":\"listend-telephony-en\""));
    free(m);
    /* a mono stream's messages are unchanged: no channel, Deepgram's [0,1] */
    p.channels = 1;
    p.channel = 0;
    m = ld_ws_msg_transcription("sess_x", &p, "hel", NULL, 0, NULL, false, false, false, 0.5, 0.4);
    CHECK(m && !strstr(m, "channel"));
    free(m);
    m = ld_ws_dg_results("req", &p, "hel", NULL, 0, NULL, false, false, false, 0.5, 0.4);
    CHECK(m && strstr(m, "\"channel_index\":[0,1]"));
    free(m);
}

static json_t *channel_json(int c, const char *text, const char *word, double start)
{
    return json_pack("{s:i,s:s,s:f,s:[{s:s,s:f,s:f,s:f,s:i}],s:[{s:s,s:f,s:f,s:i}]}", "channel", c, "text", text,
                     "confidence", 0.9, "words", "word", word, "start", start, "end", start + 0.4, "confidence",
                     0.9, "channel", c, "utterances", "text", text, "start", start, "end", start + 0.4, "channel",
                     c);
}

static void test_deepgram_body(void)
{
    ld_dg_opts dg;
    ld_listen_opts o;
    ld_opts_init(&o);
    ld_dg_opts_init(&dg, &o);
    dg.utterances = true;
    json_t *j = json_pack("{s:s,s:s,s:f,s:f,s:s,s:[o,o]}", "request_id", "req_1", "text", "yes hello", "confidence",
                          0.9, "duration", 3.0, "language", "en", "channels",
                          channel_json(0, "hello", "hello", 2.0), channel_json(1, "yes", "yes", 1.0));
    json_t *b = ld_dg_body(&dg, j);
    json_t *meta = json_object_get(b, "metadata"), *res = json_object_get(b, "results");
    CHECK(json_integer_value(json_object_get(meta, "channels")) == 2);
    json_t *chans = json_object_get(res, "channels");
    CHECK(json_array_size(chans) == 2);
    json_t *alt1 = json_array_get(json_object_get(json_array_get(chans, 1), "alternatives"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(alt1, "transcript")), "yes"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(alt1, "words"), 0), "word")),
                  "yes"));
    /* utterances of both channels by start time, each with its channel */
    json_t *u = json_object_get(res, "utterances");
    CHECK(json_array_size(u) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(u, 0), "channel")) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(u, 1), "channel")) == 0);
    json_decref(b);
}

int main(void)
{
    test_opts();
    test_stream_params();
    test_stream_messages();
    test_deepgram_body();
    TEST_MAIN_END();
}
