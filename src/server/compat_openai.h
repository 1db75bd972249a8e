/* OpenAI compatibility (docs/compat.md, "OpenAI"); internal to src/server/.
 * Clients set their base URL to http://HOST:7100/v1: POST /v1/audio/transcriptions
 * answers in OpenAI's bodies (and, with stream=true, server-sent events),
 * GET /v1/models lists what `model` accepts, and every error under /v1/audio/
 * and /v1/models is OpenAI's {"error":{"message","type","code","param"}}.
 * Here: the path test, the error envelope, the options, the bodies and the
 * events. Nothing here writes to a client.
 * Thread-safety: pure functions on caller memory (an ld_openai_delta belongs
 * to one request and is used by one thread at a time).
 * Ownership: json_t and char * results are new (caller frees); arguments
 * marked stolen are released in every case. */
#ifndef LD_SERVER_COMPAT_OPENAI_H
#define LD_SERVER_COMPAT_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "asr/transcript.h"
#include "server/opts.h"
#include "util/err.h"

/* A path under /v1/audio/ or /v1/models. */
bool ld_openai_path(const char *path);

/* {"error": {"message", "type", "code", "param", …extra}} (extra stolen). type
 * and code follow OpenAI's names where OpenAI has one (docs/compat.md); param
 * names the offending parameter when the message does. */
json_t *ld_openai_error_json(const ld_error *err, const char *request_id, json_t *extra);

/* One form field or query option by OpenAI's name: stream, model,
 * timestamp_granularities[] and response_format (diarized_json turns diarize
 * on) are mapped; prompt, temperature, include[], chunking_strategy and
 * known_speaker_names[]/known_speaker_references[] are accepted and ignored;
 * anything else is listend's own option (ld_opts_set). */
ld_err ld_openai_opt_set(ld_listen_opts *o, const char *key, const char *val, ld_error *err);

/* The transcription body ({"text"}, verbose_json or diarized_json) from
 * listend's JSON body (stolen). */
json_t *ld_openai_body(const ld_listen_opts *o, json_t *listend);

/* GET /v1/models: {"object":"list","data":[…]}; one entry, or NULL for an id
 * `model` does not accept. `created` is unix seconds; `listend` (borrowed, may
 * be NULL) is the array of listend's own model names (ld_pool_models), listed
 * after OpenAI's ids, each once. */
json_t *ld_openai_models(int64_t created, const json_t *listend);
json_t *ld_openai_model(const char *id, int64_t created, const json_t *listend);

/* stream=true: the text grows segment by segment, in time order. */
typedef struct {
    ld_word *words; /* raw engine words so far (owned copies) */
    size_t n, cap;
    unsigned flags; /* LD_RENDER_* of the request (punctuate, numerals, redaction) */
    char *sent;     /* the text already sent as deltas (owned) */
} ld_openai_delta;

void ld_openai_delta_init(ld_openai_delta *d, unsigned render_flags);
void ld_openai_delta_free(ld_openai_delta *d);
/* The next segment's words: an SSE event `data: {"type":"transcript.text.delta",
 * "delta":…}\n\n` with the text that became certain (the punctuation after the
 * last word waits for the next word), or NULL when there is none. */
char *ld_openai_delta_push(ld_openai_delta *d, const ld_word *w, size_t n);
/* The end: a last delta if the final text has more, with diarized_json one
 * `transcript.text.segment` event per speaker turn of `diarized` (listend's
 * JSON body, borrowed; NULL otherwise), then `transcript.text.done` with the
 * whole text and the audio seconds. */
char *ld_openai_delta_done(ld_openai_delta *d, const char *text, double seconds, const json_t *diarized);
/* An error event `data: {"error":{…}}\n\n` (OpenAI's SDKs raise it). */
char *ld_openai_sse_error(const ld_error *err);

#endif
