/* A job's transcription options and key claims survive restarts as JSON text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"
#include "asr/redact.h"
#include "jobs/jobs_internal.h"

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

char *ld_jobs_opts_dump(const ld_transcribe_opts *o) { return ld_jobs_opts_dump_hook(o, NULL); }

char *ld_jobs_opts_dump_hook(const ld_transcribe_opts *o, const json_t *hook)
{
    json_t *j = json_pack("{s:s, s:b, s:b, s:i}", "language", o->language, "punctuate", o->punctuate, "timestamps",
                          o->timestamps, "format", (int)o->format);
    if (j && o->diarize) /* speaker labels (asr/diarize.h) */
        json_object_set_new(j, "diarize", json_pack("{s:b,s:i}", "on", 1, "num_speakers", o->num_speakers));
    if (j && o->model[0]) /* the model pack asked for (asr/packs.h); absent = auto */
        json_object_set_new(j, "model", json_string(o->model));
    if (j && o->multichannel) /* absent = false */
        json_object_set_new(j, "multichannel", json_true());
    if (j && o->keywords[0]) /* canonical list (asr/vocab.h) */
        json_object_set_new(j, "keywords", json_string(o->keywords));
    if (j && o->numerals) /* absent = false */
        json_object_set_new(j, "numerals", json_true());
    if (j && o->profanity_filter) /* absent = false */
        json_object_set_new(j, "profanity_filter", json_true());
    if (j && o->redact) /* LD_REDACT_* bits (asr/redact.h); absent = none */
        json_object_set_new(j, "redact", json_integer(o->redact));
    if (j && hook) /* opaque here: the server's shape function reads it at delivery */
        json_object_set_new(j, "webhook", json_deep_copy(hook));
    return dump(j);
}

json_t *ld_jobs_opts_hook(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    json_t *hook = json_object_get(j, "webhook");
    if (!json_is_object(hook))
        hook = NULL;
    json_incref(hook);
    json_decref(j);
    return hook;
}

void ld_jobs_opts_load(const char *text, ld_transcribe_opts *o)
{
    ld_transcribe_opts_default(o);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *lang = json_string_value(json_object_get(j, "language"));
    if (lang)
        snprintf(o->language, sizeof o->language, "%s", lang);
    if (json_is_boolean(json_object_get(j, "punctuate")))
        o->punctuate = json_is_true(json_object_get(j, "punctuate"));
    if (json_is_boolean(json_object_get(j, "timestamps")))
        o->timestamps = json_is_true(json_object_get(j, "timestamps"));
    json_int_t f = json_integer_value(json_object_get(j, "format"));
    if (f >= LD_FORMAT_JSON && f <= LD_FORMAT_VTT)
        o->format = (ld_format)f;
    o->multichannel = json_is_true(json_object_get(j, "multichannel"));
    const char *model = json_string_value(json_object_get(j, "model"));
    if (model)
        snprintf(o->model, sizeof o->model, "%s", model);
    json_t *dia = json_object_get(j, "diarize");
    if (json_is_object(dia)) {
        json_int_t n = json_integer_value(json_object_get(dia, "num_speakers"));
        o->diarize = true;
        o->num_speakers = n >= 0 && n <= LD_DIARIZE_MAX_SPEAKERS ? (int)n : 0;
    }
    const char *kw = json_string_value(json_object_get(j, "keywords"));
    if (kw) /* written by ld_jobs_opts_dump; parsed again by the engine */
        snprintf(o->keywords, sizeof o->keywords, "%s", kw);
    o->numerals = json_is_true(json_object_get(j, "numerals"));
    o->profanity_filter = json_is_true(json_object_get(j, "profanity_filter"));
    o->redact = (unsigned)json_integer_value(json_object_get(j, "redact")) & LD_REDACT_ALL;
    json_decref(j);
}

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

char *ld_jobs_claims_dump(const ld_key_claims *k)
{
    return dump(json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:f}", "key_id", k->key_id, "name", k->name, "issued_at",
                          (json_int_t)k->issued_at, "expires_at", (json_int_t)k->expires_at, "rpm", k->rpm,
                          "concurrency", k->concurrency, "hours_per_day", k->hours_per_day));
}

void ld_jobs_claims_load(const char *text, ld_key_claims *k)
{
    memset(k, 0, sizeof *k);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    snprintf(k->key_id, sizeof k->key_id, "%s", str_or_empty(json_object_get(j, "key_id")));
    snprintf(k->name, sizeof k->name, "%s", str_or_empty(json_object_get(j, "name")));
    k->issued_at = json_integer_value(json_object_get(j, "issued_at"));
    k->expires_at = json_integer_value(json_object_get(j, "expires_at"));
    k->rpm = (int)json_integer_value(json_object_get(j, "rpm"));
    k->concurrency = (int)json_integer_value(json_object_get(j, "concurrency"));
    k->hours_per_day = json_number_value(json_object_get(j, "hours_per_day"));
    json_decref(j);
}
