/* Deepgram Flux's parameters and messages (ws_flux.h). */
#include "server/ws_flux.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/compat_deepgram.h"

#define FLUX_EOU_MS 800 /* listend's end-of-utterance silence: the turn's end */

/* Flux's names onto listend's: only what Flux has; the rest are Flux's fixed behaviour. */
static const char *get_mapped(void *ud, const char *name)
{
    ld_ws_param_src *g = ud;
    static const char *const own[] = {"encoding", "sample_rate"}; /* mip_opt_out, tag…: never asked, ignored */
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (!strcmp(name, own[i]))
            return g->get(g->ud, name);
    static const char *const fixed[][2] = {{"interim_results", "true"}, {"vad_events", "true"},
                                           {"punctuate", "true"},       {"capitalize", "true"},
                                           {"word_timestamps", "true"}, {"channels", "1"}};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(name, fixed[i][0]))
            return fixed[i][1];
    return NULL; /* model, language, eou_timeout_ms…: below, or listend's defaults */
}

/* A number in [lo, hi]; false when v is not one. */
static bool number_in(const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x) || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

ld_err ld_ws_flux_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *p, ld_error *err)
{
    ld_ws_param_src g = {get,
                         ud}; /* without encoding/sample_rate: listend's 16 kHz linear16, Flux's raw default too */
    ld_err rc = ld_ws_params_parse(get_mapped, &g, p, err);
    if (rc)
        return rc;
    p->flux = true;
    const char *v = get(ud, "model");
    if (v && strncasecmp(v, "flux", 4))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter model: /v2/listen takes Flux models (flux-general-en)");
    double x;
    p->eou_timeout_ms = FLUX_EOU_MS;
    if ((v = get(ud, "eot_timeout_ms"))) {
        if (!number_in(v, 500, 10000, &x))
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid parameter eot_timeout_ms: expected milliseconds from 500 to 10000");
        if (x < p->eou_timeout_ms)
            p->eou_timeout_ms = (int)x;
    }
    if ((v = get(ud, "eot_threshold")) && !number_in(v, 0.5, 0.9, &x))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter eot_threshold: expected a number from 0.5 to 0.9");
    if ((v = get(ud, "eager_eot_threshold")) && !number_in(v, 0.3, 0.9, &x))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter eager_eot_threshold: expected a number from 0.3 to 0.9");
    return LD_OK;
}

char *ld_ws_flux_connected(const char *request_id, unsigned seq)
{
    return ld_ws_json_text(
        json_pack("{s:s,s:s,s:I}", "type", "Connected", "request_id", request_id, "sequence_id", (json_int_t)seq));
}

/* Flux's words: the punctuated, cased word (Deepgram's punctuated_word), its confidence and times. */
static json_t *final_words(const ld_ws_params *p, const ld_word *words, size_t n, const ld_ws_final *fin)
{
    json_t *entries = ld_ws_word_entries(p, words, n, fin);
    json_t *dg = ld_dg_words(entries);
    json_decref(entries);
    json_t *out = json_array(), *w;
    size_t i;
    json_array_foreach(dg, i, w)
        json_array_append_new(out, json_pack("{s:O,s:O,s:O,s:O}", "word", json_object_get(w, "punctuated_word"),
                                             "confidence", json_object_get(w, "confidence"), "start",
                                             json_object_get(w, "start"), "end", json_object_get(w, "end")));
    json_decref(dg);
    return out;
}

/* An interim's words: its text split at spaces, without times (Flux's times are optional). */
static json_t *partial_words(const char *text)
{
    json_t *out = json_array();
    for (const char *s = text; s && *s;) {
        s += strspn(s, " ");
        size_t n = strcspn(s, " ");
        if (!n)
            break;
        json_array_append_new(out, json_pack("{s:s%,s:f}", "word", s, n, "confidence", 0.0));
        s += n;
    }
    return out;
}

char *ld_ws_flux_turn(const char *request_id, unsigned seq, const ld_ws_params *p, ld_flux_event ev,
                      unsigned turn_index, double window_start, double window_end, const char *partial,
                      const ld_word *words, size_t n_words, const ld_ws_final *fin, const char *trigger)
{
    static const char *const names[] = {"StartOfTurn", "Update", "EndOfTurn"};
    json_t *w;
    char *text = NULL;
    if (ev == LD_FLUX_END) {
        w = n_words ? final_words(p, words, n_words, fin) : json_array();
        text = ld_ws_final_text(p, words, n_words, fin);
        if (!text) {
            json_decref(w);
            return NULL;
        }
    } else {
        w = partial_words(partial);
    }
    /* How sure the turn is over: a pause ended it, or the client (or the cap) did. */
    double eot = ev != LD_FLUX_END ? 0.0 : trigger && !strcmp(trigger, "model") ? 0.9 : 1.0;
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:I,s:f,s:f,s:s,s:o,s:f}", "type", "TurnInfo", "request_id", request_id,
                          "sequence_id", (json_int_t)seq, "event", names[ev], "turn_index", (json_int_t)turn_index,
                          "audio_window_start", ld_ws_r3(window_start), "audio_window_end", ld_ws_r3(window_end),
                          "transcript",
                          text      ? text
                          : partial ? partial
                                    : "",
                          "words", w, "end_of_turn_confidence", eot);
    if (j && ev == LD_FLUX_END && trigger)
        json_object_set_new(j, "trigger", json_string(trigger));
    free(text);
    return ld_ws_json_text(j);
}

char *ld_ws_flux_error(unsigned seq, const char *code, const char *description)
{
    return ld_ws_json_text(json_pack("{s:s,s:I,s:s,s:s}", "type", "Error", "sequence_id", (json_int_t)seq, "code",
                                     code, "description", description));
}

char *ld_ws_flux_configure_failure(const char *request_id, unsigned seq)
{
    return ld_ws_json_text(json_pack("{s:s,s:s,s:I}", "type", "ConfigureFailure", "request_id", request_id,
                                     "sequence_id", (json_int_t)seq));
}

ld_flux_control ld_ws_flux_control_parse(const char *data, size_t len)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "type"));
    ld_flux_control c = LD_FLUX_CTL_INVALID;
    if (!t)
        c = LD_FLUX_CTL_INVALID;
    else if (!strcmp(t, "CloseStream") || !strcmp(t, "close_stream"))
        c = LD_FLUX_CTL_CLOSE_STREAM;
    else if (!strcmp(t, "ForceEndTurn") || !strcmp(t, "Finalize") || !strcmp(t, "finalize"))
        c = LD_FLUX_CTL_FORCE_END;
    else if (!strcmp(t, "Configure"))
        c = LD_FLUX_CTL_CONFIGURE;
    else if (!strcmp(t, "KeepAlive") || !strcmp(t, "keepalive"))
        c = LD_FLUX_CTL_KEEPALIVE;
    json_decref(j);
    return c;
}
