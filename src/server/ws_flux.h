/* Deepgram's Flux protocol (GET /deepgram/v2/listen, the SDK's listen.v2) on a
 * listend stream (docs/compat.md, "Deepgram Flux"); internal to src/server/.
 * Flux is turn-based: each utterance is a turn reported by TurnInfo messages
 * (StartOfTurn at speech, Update as the words come, EndOfTurn when a pause
 * ends it; listend never sends the optional EagerEndOfTurn/TurnResumed). Every
 * server message carries a sequence_id counting from 0 (Connected). The pure
 * parts, like ws_proto.h: query parameters and the server messages.
 * Thread-safety: reentrant. Ownership: char * results are malloc'd JSON text,
 * caller frees. */
#ifndef LD_SERVER_WS_FLUX_H
#define LD_SERVER_WS_FLUX_H

#include <stdbool.h>
#include <stddef.h>

#include "asr/transcript.h"
#include "server/ws_proto.h"
#include "util/err.h"

#define LD_WS_FLUX_PATH "/deepgram/v2/listen"

/* ld_ws_params_parse with Flux's names and defaults: encoding linear16,
 * sample_rate 16000, interim Updates and speech events on, punctuation and
 * casing on, `numerals`; `model` must be a flux model when given. Mono only.
 * End of turn: a turn ends after a pause whose length follows `eot_threshold`
 * (0.5–1.0, default 0.7: 800 ms; 0.5: 500 ms, 0.9: 1400 ms; 1.0: no such end),
 * and always after `eot_timeout_ms` (500–60000, default 5000) of silence;
 * `eager_eot_threshold` (0.3–0.9) is checked only. Sets out->flux and
 * out->eou_timeout_ms. */
ld_err ld_ws_flux_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *out, ld_error *err);

/* A Configure message's changes applied to p: `thresholds` (each optional, as
 * in the URL), `numerals`, `keyterms` (a string or an array: replaces the
 * stream's key terms; [] clears them); `language_hints` is ignored. All or
 * nothing: a bad value -> LD_ERR_INVALID_PARAMETER and p unchanged. */
ld_err ld_ws_flux_configure(const char *data, size_t len, ld_ws_params *p, ld_error *err);

/* EndOfTurn's trigger: "manual" (by_client: ForceEndTurn or the stream's
 * end), "model" (a pause of the threshold's length), else "timeout"
 * (eot_timeout_ms of silence, or listend's 20 s cap when pause is false). */
const char *ld_ws_flux_trigger(const ld_ws_params *p, bool by_client, bool pause);

typedef enum {
    LD_FLUX_START,  /* StartOfTurn */
    LD_FLUX_UPDATE, /* Update */
    LD_FLUX_END     /* EndOfTurn */
} ld_flux_event;

char *ld_ws_flux_connected(const char *request_id, unsigned seq);

/* A TurnInfo message. For START and UPDATE `partial` is the text so far (its
 * words without times); for END `words` are the raw engine words of the turn,
 * rendered per p (punctuated, cased), and `trigger` says what ended it
 * (ld_ws_flux_trigger). */
char *ld_ws_flux_turn(const char *request_id, unsigned seq, const ld_ws_params *p, ld_flux_event ev,
                      unsigned turn_index, double window_start, double window_end, const char *partial,
                      const ld_word *words, size_t n_words, const ld_ws_final *fin, const char *trigger);

/* Flux's fatal error message: {"type": "Error", sequence_id, code, description}. */
char *ld_ws_flux_error(unsigned seq, const char *code, const char *description);

/* The answers to a Configure message: the settings now in use, or a refusal. */
char *ld_ws_flux_configure_success(const char *request_id, unsigned seq, const ld_ws_params *p);
char *ld_ws_flux_configure_failure(const char *request_id, unsigned seq);

typedef enum {
    LD_FLUX_CTL_CLOSE_STREAM, /* CloseStream (also listend's close_stream) */
    LD_FLUX_CTL_FORCE_END,    /* ForceEndTurn (also finalize / Finalize) */
    LD_FLUX_CTL_CONFIGURE,    /* Configure */
    LD_FLUX_CTL_KEEPALIVE,    /* KeepAlive (not Flux's; accepted as on v1) */
    LD_FLUX_CTL_INVALID       /* anything else */
} ld_flux_control;

ld_flux_control ld_ws_flux_control_parse(const char *data, size_t len);

#endif
