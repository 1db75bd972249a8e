/* Deepgram compatibility (docs/compat.md, "Deepgram"); internal to src/server/.
 * A client selects it by the path prefix /deepgram, which Deepgram's SDKs keep
 * when given a base URL: POST /deepgram/v1/listen answers in Deepgram's batch
 * schema, GET /deepgram/v1/listen (WebSocket) speaks Deepgram's live messages
 * (ws_deepgram.c), and every error there is Deepgram's {"err_code","err_msg",
 * "request_id"}. Here: the path test, the error envelope, the query options
 * mapped onto listend's, and the batch body. Nothing here writes to a client.
 * Thread-safety: pure functions on caller memory.
 * Ownership: json_t results are new references; arguments marked stolen are
 * decref'd in every case. */
#ifndef LD_SERVER_COMPAT_DEEPGRAM_H
#define LD_SERVER_COMPAT_DEEPGRAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "asr/transcript.h"
#include "server/opts.h"
#include "util/err.h"

#define LD_DG_PREFIX "/deepgram"

/* Deepgram's batch options that listend's own options do not cover. */
typedef struct {
    bool utterances;  /* results.utterances */
    bool paragraphs;  /* alternatives[].paragraphs (also smart_format) */
    double utt_split; /* pause in seconds that ends an utterance (Deepgram's default 0.8) */
    int channels;     /* `channels` of raw audio; 0 = not given */
    char sha256[65];  /* hex SHA-256 of the decoded audio; "" until known */
} ld_dg_opts;

/* A path under /deepgram/. */
bool ld_dg_path(const char *path);

/* {"err_code", "err_msg", "request_id", …extra} (extra stolen; its error/code
 * members dropped). err_code follows Deepgram's names where Deepgram has one
 * (docs/compat.md). */
json_t *ld_dg_error_json(const ld_error *err, const char *request_id, json_t *extra);

/* Deepgram's defaults on top of listend's: no punctuation unless asked, words
 * always. */
void ld_dg_opts_init(ld_dg_opts *dg, ld_listen_opts *o);
/* One query option by Deepgram's name: mapped onto listend's option of the same
 * meaning, or onto dg; names Deepgram has and listend does not are ignored, as
 * Deepgram ignores unknown ones. Bad values -> LD_ERR_INVALID_PARAMETER. */
ld_err ld_dg_opt_set(ld_dg_opts *dg, ld_listen_opts *o, const char *key, const char *val, ld_error *err);
/* Cross-option checks once the query was read (raw audio must be mono). */
ld_err ld_dg_opts_check(const ld_dg_opts *dg, const ld_listen_opts *o, ld_error *err);

/* The batch body {"metadata", "results"} from listend's JSON body (`listend`,
 * stolen; made with timestamps on). */
json_t *ld_dg_body(const ld_dg_opts *dg, json_t *listend);

/* Deepgram's words from listend's rendered word entries (JSON array of
 * {word,start,end,confidence[,speaker…]}, punctuation as separate entries):
 * `word` lower case, `punctuated_word` with the punctuation that follows. */
json_t *ld_dg_words(json_t *entries);
/* metadata.model_info and metadata.models for a language (and listend's model
 * name when the response names one; may be NULL). *uuid gets the model's id
 * (37 bytes). */
json_t *ld_dg_model_info(const char *language, const char *model, char uuid[37]);
/* Hex SHA-256 of `len` bytes into out; of n parts one after the other (each
 * channel of a multichannel upload, so that every channel counts). */
void ld_dg_sha256_hex(const void *data, size_t len, char out[65]);
void ld_dg_sha256_pcm_hex(const void *const *parts, const size_t *lens, size_t n, char out[65]);
/* A random UUID (version 4) into out (37 bytes). */
void ld_dg_uuid(char out[37]);

#endif
