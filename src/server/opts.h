/* Options of POST /v1/listen, from query parameters, form fields or a JSON body
 * (same names everywhere). Thread-safety: pure functions on caller memory. */
#ifndef LD_SERVER_OPTS_H
#define LD_SERVER_OPTS_H

#include <jansson.h>
#include <stdbool.h>

#include "asr/pool.h"
#include "asr/transcript.h"
#include "util/err.h"

typedef struct {
    ld_transcribe_opts t;
    char url[2048];
    char callback_url[2048 + 1]; /* jobs.md: at most 2048 characters */
    bool callback_put;           /* webhook_method=PUT (Smallest) / callback_method=put (Deepgram) */
    char webhook_extra[512];     /* Smallest's webhook_extra "k:v,k2:v2" as given (checked) */
    bool diarize;
    int num_speakers; /* 0 = auto */
    bool raw_pcm;     /* encoding=linear16|linear32|mulaw|alaw: headerless */
    int raw_encoding; /* for raw_pcm: an ld_stream_encoding (LINEAR16, LINEAR32, MULAW, ALAW) */
    int sample_rate;  /* for raw_pcm; 0 = the encoding's default (ld_opts_raw_rate) */
    int channels;     /* for raw_pcm: interleaved channels (multichannel); 0 = 1 */
    bool verbose;     /* response_format=verbose_json (OpenAI route) */
    bool diarized;    /* response_format=diarized_json (OpenAI route): diarize, speaker segments */
    bool stream;      /* stream=true: server-sent events (OpenAI route, compat_openai.h) */
} ld_listen_opts;

void ld_opts_init(ld_listen_opts *o);
/* One option given as text ("true"/"false"/"1"/"0" for booleans). Unknown keys
 * are ignored (clients of similar APIs send extra ones); bad values ->
 * LD_ERR_INVALID_PARAMETER naming the parameter. */
ld_err ld_opts_set(ld_listen_opts *o, const char *key, const char *val, ld_error *err);
/* A client's language as a model's code: an ISO 639-1 code, a BCP 47 tag or a
 * POSIX locale (en, EN, en-US, en_US.UTF-8) -> "en"; anything else lower-cased
 * with unprintable bytes as '?', for the 400 that names it. Batch and streams alike. */
void ld_opts_language(const char *v, char *out, size_t size);
/* Whether an option may be given more than once, each value adding to it
 * (keywords, redact): as a repeated query or form field, or a JSON array. */
bool ld_opts_repeatable(const char *key);
/* The main options a body may carry (a wrong type for one of them is a 400;
 * other names are ignored, as clients send their own). */
bool ld_opts_known(const char *key);
/* Every member of a JSON object body; values may be JSON-typed or strings. */
ld_err ld_opts_set_json(ld_listen_opts *o, json_t *obj, ld_error *err);
/* The rate of headerless input: sample_rate, else 8 kHz for G.711 (its only
 * rate in practice) and 16 kHz for linear16/linear32. */
int ld_opts_raw_rate(const ld_listen_opts *o);
/* Bytes of one sample of one channel of headerless input: 2, 4 or 1 (G.711). */
int ld_opts_raw_width(const ld_listen_opts *o);
/* Interleaved channels of headerless input: `channels` with multichannel, else 1. */
int ld_opts_raw_channels(const ld_listen_opts *o);
/* Smallest's webhook_extra "k:v,k2:v2" (a value keeps any further ':') as a
 * JSON object of strings in *pairs (new reference); LD_ERR_INVALID_PARAMETER
 * (*pairs NULL) when a pair has no key or no ':'. */
ld_err ld_opts_webhook_extra(const char *val, json_t **pairs, ld_error *err);
/* Cross-field checks once every source was applied: diarize, language. */
ld_err ld_opts_validate(const ld_listen_opts *o, ld_pool *pool, ld_error *err);

#endif
