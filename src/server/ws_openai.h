/* OpenAI's Realtime API, transcription sessions, on a listend stream
 * (docs/compat.md, "OpenAI: realtime transcription"); internal to src/server/.
 * GET /v1/realtime with Upgrade: websocket. The pure parts, like ws_proto.h:
 * the query and session defaults (PCM16 at 24 kHz, server VAD with 500 ms of
 * silence), the client's JSON events (base64 audio in
 * input_audio_buffer.append, commit, clear, session.update or the beta
 * transcription_session.update), and the server's events (session.created,
 * input_audio_buffer.speech_started / speech_stopped / committed,
 * conversation.item.input_audio_transcription.delta / completed, error).
 * Thread-safety: reentrant. Ownership: char * results are malloc'd JSON text,
 * caller frees; *audio from ld_ws_oa_client_event is malloc'd, caller frees. */
#ifndef LD_SERVER_WS_OPENAI_H
#define LD_SERVER_WS_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/ws_proto.h"
#include "util/err.h"

#define LD_WS_OA_PATH "/v1/realtime"

/* ld_ws_params_parse with OpenAI's session defaults: linear16 at 24 kHz,
 * end of utterance after 500 ms of silence, speech events on, no interims;
 * OpenAI's `model` and `intent` are accepted and ignored (the stream uses
 * listend's automatic model). Sets out->openai. */
ld_err ld_ws_oa_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *out, ld_error *err);

/* What a client's session update may change: taken from a stream's params
 * (get), changed by ld_ws_oa_client_event, written back (put; vad_events
 * follows turn detection). Only these members are read or written, so the
 * loop can use them while a worker holds the rest of the params. */
typedef struct {
    ld_stream_encoding encoding;
    int sample_rate;
    char language[16];
    bool finalize_on_words; /* false: only input_audio_buffer.commit ends an item */
    int eou_timeout_ms;
} ld_ws_oa_settings;
void ld_ws_oa_settings_get(const ld_ws_params *p, ld_ws_oa_settings *s);
void ld_ws_oa_settings_put(ld_ws_params *p, const ld_ws_oa_settings *s);
bool ld_ws_oa_settings_equal(const ld_ws_oa_settings *a, const ld_ws_oa_settings *b);

typedef enum {
    LD_WS_OA_APPEND,  /* *audio, *len: the decoded bytes */
    LD_WS_OA_COMMIT,  /* end the utterance now (input_audio_buffer.commit) */
    LD_WS_OA_CLEAR,   /* input_audio_buffer.clear */
    LD_WS_OA_UPDATE,  /* session.update / transcription_session.update: *p updated */
    LD_WS_OA_IGNORED, /* an event a transcription session has no use for (response.*, conversation.*) */
    LD_WS_OA_INVALID  /* err says why; the session goes on (OpenAI answers with an error event) */
} ld_ws_oa_kind;

/* One client text frame. For UPDATE, *s gets the session's audio format
 * (audio/pcm at a rate, audio/pcmu, audio/pcma; beta pcm16, g711_ulaw,
 * g711_alaw), transcription language and turn detection (null: only commit
 * ends an utterance; server_vad's silence_duration_ms as the end-of-utterance
 * silence), all or none; *beta says it was transcription_session.update.
 * *event_id gets the client's event_id ("" when none), for error events. */
ld_ws_oa_kind ld_ws_oa_client_event(const char *text, size_t len, ld_ws_oa_settings *s, uint8_t **audio,
                                    size_t *alen, bool *beta, char event_id[64], ld_error *err);

/* session.created / session.updated (or, with beta, transcription_session.*):
 * the session as listend runs it (model "auto": OpenAI's names are ignored). */
char *ld_ws_oa_session(const char *session_id, const ld_ws_oa_settings *s, bool updated, bool beta);
/* input_audio_buffer.speech_started (audio_start_ms) or speech_stopped (audio_end_ms). */
char *ld_ws_oa_speech(bool started, const char *item_id, double t);
/* input_audio_buffer.committed; previous_item_id NULL for the first item. */
char *ld_ws_oa_committed(const char *item_id, const char *previous_item_id);
/* conversation.item.input_audio_transcription.delta, then .completed (usage:
 * the item's audio seconds). */
char *ld_ws_oa_delta(const char *item_id, const char *text);
char *ld_ws_oa_completed(const char *item_id, const char *text, double seconds);
char *ld_ws_oa_cleared(void);
/* {"type": "error", "event_id", "error": {OpenAI's type, code, message, param, event_id}}. */
char *ld_ws_oa_error(const ld_error *err, const char *client_event_id);

#endif
