/* Deepgram's live parameters and messages (ws_deepgram.h). */
#include "server/ws_deepgram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/compat_deepgram.h"
#include "util/time.h"

/* The client's getter with Deepgram's spellings mapped onto listend's. */
static const char *get_mapped(void *ud, const char *name)
{
    ld_ws_param_src *g = ud;
    const char *v = g->get(g->ud, name);
    if (!v)
        return NULL;
    if (!strcmp(name, "encoding") && !strcasecmp(v, "ogg-opus"))
        return "ogg_opus";
    if (!strcmp(name, "eou_timeout_ms") || !strcmp(name, "word_timestamps") || !strcmp(name, "format"))
        return NULL; /* Smallest's names: Deepgram mode has endpointing, always words, smart_format */
    return v;
}

static int parse_ms(const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 0)
        return -1;
    *out = x < lo ? lo : x > hi ? hi : (int)x;
    return 0;
}

ld_err ld_ws_dg_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *p, ld_error *err)
{
    ld_ws_param_src g = {get, ud};
    ld_err rc = ld_ws_params_parse(get_mapped, &g, p, err);
    if (rc)
        return rc;
    p->deepgram = true;
    p->speech_final = true;
    /* Deepgram's defaults differ from Smallest's */
    if (!get(ud, "interim_results"))
        p->interim_results = false;
    if (!get(ud, "punctuate"))
        p->punctuate = false;
    const char *v = get(ud, "smart_format");
    if (v && (!strcasecmp(v, "true") || !strcmp(v, "1")))
        p->punctuate = true;
    if ((v = get(ud, "endpointing"))) {
        if (!strcasecmp(v, "false")) {
            p->speech_final = false; /* finals still come at utterance ends, never speech_final */
        } else if (!strcasecmp(v, "true")) {
            /* Deepgram's default; listend's end-of-utterance silence stays */
        } else if (parse_ms(v, 100, 10000, &p->eou_timeout_ms)) {
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid parameter endpointing: expected milliseconds of silence or false");
        }
    }
    if ((v = get(ud, "utterance_end_ms")) && parse_ms(v, 100, 10000, &p->utterance_end_ms))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter utterance_end_ms: expected milliseconds (1000 or more is usual)");
    return LD_OK;
}

/* Results.metadata: which model answered (the pack in use, as the batch route says). */
static json_t *results_metadata(const char *request_id, const char *language, const char *model)
{
    char uuid[37];
    json_t *info = ld_dg_model_info(language, model, uuid);
    json_t *m = json_pack("{s:s,s:O,s:s}", "request_id", request_id, "model_info", json_object_get(info, uuid),
                          "model_uuid", uuid);
    json_decref(info);
    return m;
}

char *ld_ws_dg_results(const char *request_id, const ld_ws_params *p, const char *partial, const ld_word *words,
                       size_t n_words, const ld_ws_final *fin, bool is_final, bool speech_final, bool from_finalize,
                       double start, double duration)
{
    json_t *dg_words = json_array();
    char *text = NULL;
    double conf = 0;
    if (words && n_words) {
        json_t *entries = ld_ws_word_entries(p, words, n_words, fin);
        json_decref(dg_words);
        dg_words = ld_dg_words(entries);
        json_decref(entries);
        size_t len = 1, k;
        json_t *w;
        json_array_foreach(dg_words, k, w)
            len += strlen(json_string_value(json_object_get(w, "punctuated_word"))) + 1;
        text = calloc(1, len);
        json_array_foreach(dg_words, k, w)
        {
            conf += json_number_value(json_object_get(w, "confidence"));
            if (text) {
                if (k)
                    strcat(text, " ");
                strcat(text, json_string_value(json_object_get(w, "punctuated_word")));
            }
        }
        if (k)
            conf /= (double)k;
    }
    json_t *alt = json_pack("{s:s,s:f,s:o}", "transcript",
                            text      ? text
                            : partial ? partial
                                      : "",
                            "confidence", ld_ws_r3(conf), "words", dg_words);
    free(text);
    json_t *j = json_pack("{s:s,s:[i,i],s:f,s:f,s:b,s:b,s:{s:[o]},s:o,s:b}", "type", "Results", "channel_index",
                          p->channels > 1 ? p->channel : 0, p->channels > 1 ? p->channels : 1, "duration",
                          ld_ws_r3(duration), "start", ld_ws_r3(start), "is_final", is_final, "speech_final",
                          speech_final, "channel", "alternatives", alt, "metadata",
                          results_metadata(request_id, p->language, p->model), "from_finalize", from_finalize);
    return ld_ws_json_text(j);
}

char *ld_ws_dg_speech_started(double timestamp)
{
    return ld_ws_json_text(
        json_pack("{s:s,s:[i,i],s:f}", "type", "SpeechStarted", "channel", 0, 1, "timestamp", ld_ws_r3(timestamp)));
}

char *ld_ws_dg_utterance_end(double last_word_end)
{
    return ld_ws_json_text(json_pack("{s:s,s:[i,i],s:f}", "type", "UtteranceEnd", "channel", 0, 1, "last_word_end",
                                     ld_ws_r3(last_word_end)));
}

char *ld_ws_dg_speech_started_in(double timestamp, const ld_ws_params *p)
{
    if (p->channels <= 1)
        return ld_ws_dg_speech_started(timestamp);
    return ld_ws_json_text(json_pack("{s:s,s:[i,i],s:f}", "type", "SpeechStarted", "channel", p->channel,
                                     p->channels, "timestamp", ld_ws_r3(timestamp)));
}

char *ld_ws_dg_utterance_end_in(double last_word_end, const ld_ws_params *p)
{
    if (p->channels <= 1)
        return ld_ws_dg_utterance_end(last_word_end);
    return ld_ws_json_text(json_pack("{s:s,s:[i,i],s:f}", "type", "UtteranceEnd", "channel", p->channel,
                                     p->channels, "last_word_end", ld_ws_r3(last_word_end)));
}

char *ld_ws_dg_metadata(const char *request_id, const char *sha256, long long created_unix_ms, double duration,
                        const char *language)
{
    return ld_ws_dg_metadata_channels(request_id, sha256, created_unix_ms, duration, language, NULL, 1);
}

char *ld_ws_dg_metadata_channels(const char *request_id, const char *sha256, long long created_unix_ms,
                                 double duration, const char *language, const char *model, int channels)
{
    char created[25], uuid[37];
    ld_time_iso8601_ms(created_unix_ms, created);
    json_t *info = ld_dg_model_info(language, model, uuid);
    return ld_ws_json_text(json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:i,s:[s],s:o}", "type", "Metadata",
                                     "transaction_key", "deprecated", "request_id", request_id, "sha256",
                                     sha256 ? sha256 : "", "created", created, "duration", ld_ws_r3(duration),
                                     "channels", channels, "models", uuid, "model_info", info));
}
