/* Deepgram's live protocol on a listend stream (docs/compat.md, "Deepgram live"); internal to
 * src/server/. GET /deepgram/v1/listen. The pure parts, like ws_proto.h: query
 * parameters with Deepgram's names and defaults, and Deepgram's server
 * messages (Results, SpeechStarted, UtteranceEnd, Metadata). The client's
 * controls (KeepAlive, Finalize, CloseStream) are ws_proto.c's aliases.
 * Thread-safety: reentrant. Ownership: char * results are malloc'd JSON text,
 * caller frees. */
#ifndef LD_SERVER_WS_DEEPGRAM_H
#define LD_SERVER_WS_DEEPGRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "asr/transcript.h"
#include "server/ws_proto.h"
#include "util/err.h"

/* ld_ws_params_parse with Deepgram's names and defaults: language as a BCP 47
 * tag, encoding `ogg-opus`, interim_results and punctuate off unless asked
 * (smart_format turns punctuation on), endpointing (ms, or false: no
 * speech_final) as the end-of-utterance silence, utterance_end_ms. Sets
 * out->deepgram. */
ld_err ld_ws_dg_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *out, ld_error *err);

/* A Results message: interim (`partial`, no words) or final (`words`: the raw
 * engine words of the utterance, rendered per p->punctuate; with fin's speakers, each
 * word has Deepgram's speaker and speaker_confidence). */
char *ld_ws_dg_results(const char *request_id, const ld_ws_params *p, const char *partial, const ld_word *words,
                       size_t n_words, const ld_ws_final *fin, bool is_final, bool speech_final, bool from_finalize,
                       double start, double duration);
char *ld_ws_dg_speech_started(double timestamp);
char *ld_ws_dg_utterance_end(double last_word_end);
/* The same for channel p->channel of p->channels (Deepgram's [index, count]). */
char *ld_ws_dg_speech_started_in(double timestamp, const ld_ws_params *p);
char *ld_ws_dg_utterance_end_in(double last_word_end, const ld_ws_params *p);
/* Metadata naming how many channels the stream had and the model (pack) of its
 * first channel; NULL model = general. */
char *ld_ws_dg_metadata_channels(const char *request_id, const char *sha256, long long created_unix_ms,
                                 double duration, const char *language, const char *model, int channels);
/* The last message before the close that answers CloseStream. */
char *ld_ws_dg_metadata(const char *request_id, const char *sha256, long long created_unix_ms, double duration,
                        const char *language);

#endif
