#include "server/opts.h"

#include "asr/diarize.h"
#include "asr/redact.h"
#include "audio/audio.h"
#include "audio/stream.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ld_opts_init(ld_listen_opts *o)
{
    memset(o, 0, sizeof *o);
    ld_transcribe_opts_default(&o->t);
}

static ld_err parse_bool(const char *key, const char *v, bool *out, ld_error *err)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = true;
        return LD_OK;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
        *out = false;
        return LD_OK;
    }
    return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter '%s': expected true or false",
                        key);
}

static ld_err parse_int(const char *key, const char *v, long lo, long hi, int *out, ld_error *err)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter '%s': expected an integer from %ld to %ld", key, lo, hi);
    *out = (int)n;
    return LD_OK;
}

static ld_err copy_url(const char *key, const char *v, char *dst, size_t dstsz, ld_error *err)
{
    size_t n = strlen(v);
    if (n == 0)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter '%s': empty", key);
    if (n >= dstsz)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter '%s': longer than %zu characters", key, dstsz - 1);
    memcpy(dst, v, n + 1);
    return LD_OK;
}

/* BCP 47 tags ("en-US", as Deepgram-style clients send) and POSIX locales
 * ("en_US.UTF-8") select their primary language. Anything else is kept
 * (sanitised) so ld_opts_validate refuses it with the available languages. */
void ld_opts_language(const char *v, char *out, size_t size)
{
    size_t n = strcspn(v, "-_");
    bool letters = n >= 2 && n <= 3;
    for (size_t i = 0; i < n && letters; i++)
        letters = isalpha((unsigned char)v[i]);
    if (!letters)
        n = strlen(v);
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = isalnum((unsigned char)v[i]) ? (char)tolower((unsigned char)v[i]) : '?';
    out[n] = '\0';
}

/* An empty value (a form's blank field) keeps the default. */
static ld_err set_language(ld_listen_opts *o, const char *v, ld_error *err)
{
    (void)err;
    if (*v)
        ld_opts_language(v, o->t.language, sizeof o->t.language);
    return LD_OK;
}

/* Encodings that name a container or a framed codec: the decoder finds them
 * from the bytes, so they are accepted and change nothing (Deepgram's
 * clients send encoding=flac, opus, …). */
static bool self_describing(const char *enc)
{
    static const char *const names[] = {"flac", "opus", "ogg-opus", "ogg_opus", "mp3", "aac", "webm", "wav", "ogg"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(enc, names[i]))
            return true;
    return false;
}

int ld_opts_raw_rate(const ld_listen_opts *o)
{
    if (o->sample_rate)
        return o->sample_rate;
    return ld_audio_stream_g711(o->raw_encoding) ? 8000 : LD_SAMPLE_RATE;
}

int ld_opts_raw_width(const ld_listen_opts *o) { return ld_audio_stream_sample_bytes(o->raw_encoding); }

int ld_opts_raw_channels(const ld_listen_opts *o) { return o->t.multichannel && o->channels > 1 ? o->channels : 1; }

ld_err ld_opts_webhook_extra(const char *val, json_t **pairs, ld_error *err)
{
    *pairs = json_object();
    for (const char *p = val; *pairs && *p;) {
        size_t n = strcspn(p, ",");
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p) {
            json_decref(*pairs);
            *pairs = NULL;
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter 'webhook_extra': expected key:value pairs separated "
                                "by commas (e.g. call_id:123,agent:ana)");
        }
        char key[sizeof((ld_listen_opts *)0)->webhook_extra];
        snprintf(key, sizeof key, "%.*s", (int)(colon - p), p);
        json_object_set_new(*pairs, key, json_stringn(colon + 1, n - (size_t)(colon + 1 - p)));
        p += n + (p[n] == ',');
    }
    return *pairs ? LD_OK : ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
}

static ld_err set_webhook_extra(ld_listen_opts *o, const char *val, ld_error *err)
{
    if (strlen(val) >= sizeof o->webhook_extra)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'webhook_extra': longer than %zu characters",
                            sizeof o->webhook_extra - 1);
    json_t *pairs;
    ld_err rc = ld_opts_webhook_extra(val, &pairs, err); /* checked here, turned into JSON by server/webhooks.c */
    json_decref(pairs);
    if (!rc)
        memcpy(o->webhook_extra, val, strlen(val) + 1);
    return rc;
}

ld_err ld_opts_set(ld_listen_opts *o, const char *key, const char *val, ld_error *err)
{
    if (!val)
        val = "";
    if (!strcmp(key, "language"))
        return set_language(o, val, err);
    if (!strcmp(key, "punctuate"))
        return parse_bool(key, val, &o->t.punctuate, err);
    if (!strcmp(key, "numerals"))
        return parse_bool(key, val, &o->t.numerals, err);
    if (!strcmp(key, "profanity_filter"))
        return parse_bool(key, val, &o->t.profanity_filter, err);
    if (!strcmp(key, "redact")) /* Deepgram's form, repeatable: pci, pii, ssn, numbers (asr/redact.h) */
        return ld_redact_parse(val, &o->t.redact, err);
    for (const ld_redact_option *r = ld_redact_options; r->name; r++) /* Smallest's redact_pii, redact_pci */
        if (!strcmp(key, r->name)) {
            bool on = false;
            ld_err rc = parse_bool(key, val, &on, err);
            o->t.redact = on ? o->t.redact | r->kinds : o->t.redact & ~r->kinds;
            return rc;
        }
    if (!strcmp(key, "timestamps") || !strcmp(key, "word_timestamps"))
        return parse_bool(key, val, &o->t.timestamps, err);
    if (!strcmp(key, "diarize") || !strcmp(key, "num_speakers")) { /* the decoder pool reads them from t */
        ld_err rc = !strcmp(key, "diarize")
                        ? parse_bool(key, val, &o->diarize, err)
                        : parse_int(key, val, 1, LD_DIARIZE_MAX_SPEAKERS, &o->num_speakers, err);
        o->t.diarize = o->diarize;
        o->t.num_speakers = o->num_speakers;
        return rc;
    }
    if (!strcmp(key, "url"))
        return copy_url(key, val, o->url, sizeof o->url, err);
    if (!strcmp(key, "callback_url") || !strcmp(key, "webhook_url"))
        return copy_url(key, val, o->callback_url, sizeof o->callback_url, err);
    if (!strcmp(key, "webhook_method") || !strcmp(key, "callback_method")) { /* Smallest's / Deepgram's name */
        if (strcasecmp(val, "POST") && strcasecmp(val, "PUT"))
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter '%s': expected POST or PUT", key);
        o->callback_put = !strcasecmp(val, "PUT");
        return LD_OK;
    }
    if (!strcmp(key, "webhook_extra"))
        return set_webhook_extra(o, val, err);
    if (!strcmp(key, "format") || !strcmp(key, "response_format")) {
        if (!ld_format_parse(val, &o->t.format)) {
            o->verbose = false;
            return LD_OK;
        }
        if (!strcasecmp(val, "verbose_json")) { /* OpenAI's name: JSON with segments and words */
            o->t.format = LD_FORMAT_JSON;
            o->verbose = true;
            return LD_OK;
        }
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter '%s': expected json, text, srt, vtt or verbose_json", key);
    }
    if (!strcmp(key, "encoding")) {
        ld_stream_encoding enc;
        if (!ld_audio_stream_encoding_parse(val, &enc) && ld_audio_stream_sample_bytes(enc)) {
            o->raw_pcm = true;
            o->raw_encoding = (int)enc;
            return LD_OK;
        }
        if (self_describing(val)) { /* the bytes say what they are */
            o->raw_pcm = false;
            return LD_OK;
        }
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'encoding': headerless audio is linear16 (16-bit "
                            "little-endian), linear32 (32-bit float), mulaw or alaw (G.711), with sample_rate; "
                            "omit it for files with a container (wav, mp3, flac, ogg, m4a, webm)");
    }
    if (!strcmp(key, "sample_rate"))
        return parse_int(key, val, 8000, 192000, &o->sample_rate, err);
    if (!strcmp(key, "multichannel"))
        return parse_bool(key, val, &o->t.multichannel, err);
    if (!strcmp(key, "channels"))
        return parse_int(key, val, 1, LD_MAX_CHANNELS, &o->channels, err);
    if (!strcmp(key, "keywords")) /* repeatable: each adds one word[:boost] */
        return ld_vocab_add_items(o->t.keywords, sizeof o->t.keywords, val, err);
    if (!strcmp(key, "model")) { /* which pack: checked against the pool in ld_opts_validate */
        size_t n = strlen(val);
        bool ok = n > 0 && n < sizeof o->t.model;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)val[i]) || strchr("._-", val[i]);
        if (!ok)
            return ld_error_set(
                err, LD_ERR_INVALID_PARAMETER,
                "Invalid value for parameter 'model': expected auto, general, telephony, noisy or a "
                "model pack name (letters, digits, '.', '_', '-'; at most %zu)",
                sizeof o->t.model - 1);
        memcpy(o->t.model, val, n + 1);
        return LD_OK;
    }
    return LD_OK;
}

bool ld_opts_known(const char *key)
{
    static const char *const known[] = {
        "language",    "punctuate",    "timestamps",   "word_timestamps", "diarize",         "num_speakers",
        "url",         "callback_url", "webhook_url",  "format",          "response_format", "encoding",
        "sample_rate", "model",        "multichannel", "channels",        "keywords",        "numerals",
        "redact_pii",  "redact_pci",   "redact",       "webhook_method",  "webhook_extra",   "profanity_filter"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(key, known[i]))
            return true;
    return false;
}

bool ld_opts_repeatable(const char *key) { return !strcmp(key, "keywords") || !strcmp(key, "redact"); }

ld_err ld_opts_set_json(ld_listen_opts *o, json_t *obj, ld_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        char buf[64];
        const char *s;
        if (json_is_string(v)) {
            s = json_string_value(v);
        } else if (json_is_boolean(v)) {
            s = json_is_true(v) ? "true" : "false";
        } else if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            s = buf;
        } else if (json_is_null(v)) {
            continue; /* "callback_url": null means not given */
        } else if (json_is_array(v) && ld_opts_repeatable(key)) {
            /* ["kubernetes:2", "listend"], ["pci", "ssn"] */
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item)
            {
                if (!json_is_string(item))
                    return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                        "Invalid type for parameter '%s': expected strings", key);
                ld_err e = ld_opts_set(o, key, json_string_value(item), err);
                if (e)
                    return e;
            }
            continue;
        } else {
            if (ld_opts_known(key))
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid type for parameter '%s'", key);
            continue;
        }
        /* A JSON string for a boolean/integer is tolerated; the reverse too. */
        ld_err e = ld_opts_set(o, key, s, err);
        if (e)
            return e;
    }
    return LD_OK;
}

ld_err ld_opts_validate(const ld_listen_opts *o, ld_pool *pool, ld_error *err)
{
    if (o->raw_pcm && o->channels > 1 && !o->t.multichannel)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'channels': headerless audio with %d channels needs "
                            "multichannel=true (or send mono)",
                            o->channels);
    if (o->t.multichannel && o->stream)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter 'multichannel': not available with stream=true");
    /* num_speakers without diarize and sample_rate with a container are
     * ignored: harmless, and clients of similar APIs send them. */
    if (pool && !ld_pool_has_language(pool, o->t.language)) {
        char avail[160] = "";
        json_t *langs = ld_pool_languages(pool);
        size_t i;
        json_t *l;
        json_array_foreach(langs, i, l)
        {
            size_t n = strlen(avail);
            snprintf(avail + n, sizeof avail - n, "%s%s", i ? ", " : "", json_string_value(l));
        }
        json_decref(langs);
        return ld_error_set(err, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language: '%s' (available: %s)",
                            o->t.language, avail);
    }
    if (pool && !ld_pool_check_model(pool, o->t.language, o->t.model, err))
        return LD_ERR_INVALID_PARAMETER;
    if (o->t.keywords[0] && strcmp(o->t.language, "en"))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter 'keywords': custom vocabulary is available for English (en) only");
    if (o->t.redact && strcmp(o->t.language, "en"))
        return ld_error_set(
            err, LD_ERR_INVALID_PARAMETER,
            "Invalid parameter: redaction (redact_pii, redact_pci, redact) is available for English "
            "(en) only");
    return LD_OK;
}
