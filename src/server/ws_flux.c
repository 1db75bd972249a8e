/* Deepgram Flux's parameters and messages (ws_flux.h). */
#include "server/ws_flux.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/vocab.h"
#include "server/compat_deepgram.h"

#define FLUX_EOT_THRESHOLD 0.7 /* Flux's default */
#define FLUX_EOT_TIMEOUT_MS 5000

/* Flux's names onto listend's: only what Flux has; the rest are Flux's fixed behaviour. */
static const char *get_mapped(void *ud, const char *name)
{
    ld_ws_param_src *g = ud;
    static const char *const own[] = {"encoding", "sample_rate", "numerals",
                                      "profanity_filter"}; /* mip_opt_out, tag…: ignored */
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

/* The pause that ends a turn at a threshold below 1.0: listend's 800 ms at Flux's
 * default 0.7, shorter below it (500 ms at 0.5), longer above it (1400 ms at 0.9). */
static int model_pause_ms(double threshold)
{
    return (int)(threshold <= FLUX_EOT_THRESHOLD ? 800 - 1500 * (FLUX_EOT_THRESHOLD - threshold)
                                                 : 800 + 3000 * (threshold - FLUX_EOT_THRESHOLD));
}

/* eou_timeout_ms (the silence the stream ends an utterance on) from the thresholds. */
static void settle(ld_ws_params *p)
{
    int timeout = p->eot_timeout_ms, pause = model_pause_ms(p->eot_threshold);
    p->eou_timeout_ms = p->eot_threshold >= 1.0 || timeout < pause ? timeout : pause;
}

const char *ld_ws_flux_trigger(const ld_ws_params *p, bool by_client, bool pause)
{
    if (by_client)
        return "manual";
    return pause && p->eot_threshold < 1.0 && model_pause_ms(p->eot_threshold) <= p->eot_timeout_ms ? "model"
                                                                                                    : "timeout";
}

/* The three settings from strings or JSON numbers; NULL = keep. False: err set, naming the bad one. */
typedef struct {
    const char *name;
    double lo, hi;
    size_t off; /* a double in ld_ws_params, or eot_timeout_ms (an int) */
} threshold_def;

static const threshold_def thresholds[] = {
    {"eot_threshold", 0.5, 1.0, offsetof(ld_ws_params, eot_threshold)},
    {"eager_eot_threshold", 0.3, 0.9, offsetof(ld_ws_params, eager_eot_threshold)},
    {"eot_timeout_ms", 500, 60000, offsetof(ld_ws_params, eot_timeout_ms)},
};

static ld_err set_threshold(ld_ws_params *p, const threshold_def *t, double x, ld_error *err)
{
    if (!isfinite(x) || x < t->lo || x > t->hi)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid parameter %s: expected a number from %g to %g",
                            t->name, t->lo, t->hi);
    if (t->off == offsetof(ld_ws_params, eot_timeout_ms))
        p->eot_timeout_ms = (int)x;
    else
        *(double *)((char *)p + t->off) = x;
    return LD_OK;
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
    p->eot_threshold = FLUX_EOT_THRESHOLD;
    p->eot_timeout_ms = FLUX_EOT_TIMEOUT_MS;
    for (size_t i = 0; i < sizeof thresholds / sizeof *thresholds; i++) {
        if (!(v = get(ud, thresholds[i].name)))
            continue;
        double x;
        if (!number_in(v, -INFINITY, INFINITY, &x))
            x = NAN;
        if ((rc = set_threshold(p, &thresholds[i], x, err)))
            return rc;
    }
    settle(p);
    return LD_OK;
}

ld_err ld_ws_flux_configure(const char *data, size_t len, ld_ws_params *p, ld_error *err)
{
    json_t *j = json_loadb(data, len, 0, NULL), *th = json_object_get(j, "thresholds"), *v;
    ld_ws_params n = *p;
    ld_err rc = LD_OK;
    if (th && !json_is_object(th))
        rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Configure: thresholds must be an object");
    for (size_t i = 0; !rc && th && i < sizeof thresholds / sizeof *thresholds; i++) {
        if (!(v = json_object_get(th, thresholds[i].name)) || json_is_null(v))
            continue;
        double x = NAN;
        if (json_is_number(v))
            x = json_number_value(v);
        else if (json_is_string(v) && !number_in(json_string_value(v), -INFINITY, INFINITY, &x))
            x = NAN;
        rc = set_threshold(&n, &thresholds[i], x, err);
    }
    if (!rc && (v = json_object_get(j, "numerals")) && !json_is_null(v)) {
        if (json_is_boolean(v))
            n.numerals = json_is_true(v);
        else
            rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Configure: numerals must be true or false");
    }
    if (!rc && (v = json_object_get(j, "keyterms")) && !json_is_null(v)) { /* replaces the stream's key terms */
        n.keywords[0] = 0;
        if (strcmp(n.language, "en"))
            rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                              "Configure: custom vocabulary is available for English (en) only");
        else if (json_is_string(v))
            rc = ld_vocab_add_term(n.keywords, sizeof n.keywords, json_string_value(v), err);
        else if (!json_is_array(v))
            rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Configure: keyterms must be a string or an array");
        size_t i;
        json_t *t;
        json_array_foreach(json_is_array(v) ? v : NULL, i, t)
        {
            if (rc)
                break;
            rc = json_is_string(t)
                     ? ld_vocab_add_term(n.keywords, sizeof n.keywords, json_string_value(t), err)
                     : ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Configure: keyterms must be strings");
        }
    }
    json_decref(j);
    if (rc)
        return rc;
    settle(&n);
    *p = n;
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

char *ld_ws_flux_configure_success(const char *request_id, unsigned seq, const ld_ws_params *p)
{
    json_t *th = json_pack("{s:f,s:i}", "eot_threshold", p->eot_threshold, "eot_timeout_ms", p->eot_timeout_ms);
    if (th && p->eager_eot_threshold > 0)
        json_object_set_new(th, "eager_eot_threshold", json_real(p->eager_eot_threshold));
    json_t *terms = json_array();
    ld_vocab_entry e[LD_VOCAB_MAX_WORDS];
    size_t n = ld_vocab_parse_list(p->keywords, e, LD_VOCAB_MAX_WORDS);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(terms, json_string(e[i].word));
    return ld_ws_json_text(json_pack("{s:s,s:s,s:o,s:o,s:I}", "type", "ConfigureSuccess", "request_id", request_id,
                                     "thresholds", th, "keyterms", terms, "sequence_id", (json_int_t)seq));
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
