/* The pure parts of the streaming protocol (docs/api.md, "GET /v1/listen/stream
 * (WebSocket)"): query parameters, text
 * control messages, close codes, the RFC 6455 handshake key, and the server's
 * JSON messages. No I/O, so they are unit-tested and fuzzed directly.
 * Thread-safety: all functions are reentrant. Ownership: json_t results are new
 * references owned by the caller. */
#ifndef LD_SERVER_WS_PROTO_H
#define LD_SERVER_WS_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <wslay/wslay.h>

#include "asr/transcript.h"
#include "audio/stream.h"
#include "util/err.h"

/* Smallest's unified live path (spec §8): its messages also carry `transcription`. */
#define LD_WS_UNIFIED_PATH "/waves/v1/stt/live"

/* RFC 6455 close codes used by listend. */
enum {
    LD_WS_CLOSE_NORMAL = 1000,
    LD_WS_CLOSE_GOING_AWAY = 1001,
    LD_WS_CLOSE_PROTOCOL = 1002,
    LD_WS_CLOSE_BAD_DATA = 1003,
    LD_WS_CLOSE_INVALID_PAYLOAD = 1007,
    LD_WS_CLOSE_POLICY = 1008,
    LD_WS_CLOSE_TOO_BIG = 1009,
    LD_WS_CLOSE_INTERNAL = 1011,
    LD_WS_CLOSE_TRY_AGAIN = 1013,
};

typedef struct {
    char language[16];
    char model[32]; /* `model` (asr/packs.h): as asked, then the pack in use */
    ld_stream_encoding encoding;
    int sample_rate;
    bool encoding_sniff;  /* no `encoding` asked: the first audio message may be a container (stream.h) */
    bool word_timestamps; /* default true (Smallest's streaming default) */
    bool punctuate;       /* default true */
    int eou_timeout_ms;   /* default 800, 100–10000 */
    bool vad_events;      /* default false; alias `vad` */
    bool interim_results; /* default true */
    int channels;         /* interleaved channels of PCM/G.711 audio, 1–8: each transcribed on its own */
    int channel;          /* messages about one channel (ws_session.c sets it per channel) */
    char keywords[LD_VOCAB_TEXT_MAX]; /* `keywords` (asr/vocab.h), filled by ld_ws_params_keywords */
    bool capitalize;                  /* default true: sentence case and "I"; false: lower case */
    bool numerals;                    /* spoken numbers as digits (asr/numerals.h): numerals / itn_normalize */
    bool sentence_timestamps;         /* `utterances` (sentences) on finals */
    bool full_transcript;             /* `full_transcript` (every final so far) on finals */
    bool diarize;                     /* speaker on final words (asr/diarize.h, live) */
    int num_speakers;                 /* with diarize: at most this many, 0 = up to 8 */
    unsigned redact;                  /* LD_REDACT_* (asr/redact.h): redact_pii, redact_pci, Deepgram's redact */
    bool profanity_filter;            /* swear words as "****" (asr/redact.h): Deepgram's profanity_filter */
    bool finalize_on_words;           /* default true: a pause ends an utterance; false: only finalize does */
    int max_words;                    /* an utterance that reaches this many words ends at once; 0 = no cap */
    bool unified; /* GET /waves/v1/stt/live: transcription messages also carry "transcription" (spec §8) */
    bool openai;  /* GET /v1/realtime: OpenAI's Realtime transcription events (ws_openai.h) */
    bool flux;    /* GET /deepgram/v2/listen: Deepgram Flux's TurnInfo messages (ws_flux.h) */
    /* Flux mode: end-of-turn settings (URL, then Configure), ws_flux.h; eou_timeout_ms follows them */
    double eot_threshold;       /* 0.5–1.0, default 0.7; 1.0 = no end of turn at a pause of the usual length */
    double eager_eot_threshold; /* 0.3–0.9, 0 = not set (checked; listend sends no eager events) */
    int eot_timeout_ms;         /* 500–60000, default 5000: silence after speech that always ends a turn */
    /* Deepgram mode (GET /deepgram/v1/listen, ws_deepgram.h) */
    bool deepgram;
    bool speech_final;    /* endpointing on: utterance ends are speech_final */
    int utterance_end_ms; /* UtteranceEnd after this much silence after the last word; 0 = off */
} ld_ws_params;

/* Returns the query value for a name, or NULL when absent. */
typedef const char *(*ld_ws_param_get)(void *ud, const char *name);
/* A client's getter with its data: what a protocol's own getter (Deepgram's,
 * OpenAI's, Flux's names mapped onto listend's) wraps and reads through. */
typedef struct {
    ld_ws_param_get get;
    void *ud;
} ld_ws_param_src;

/* Fills defaults, then validates every known parameter. Unknown names are
 * ignored (clients written for Smallest's cloud or Deepgram send extra ones);
 * a bad value of a known one -> LD_ERR_INVALID_PARAMETER naming it. */
ld_err ld_ws_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *out, ld_error *err);
/* One query value of a repeatable name: `keywords` (and Deepgram's `keyterm`)
 * adds a word to p->keywords, `redact` (Deepgram's list) kinds to p->redact; other
 * names are ignored. A bad word or redact value ->
 * LD_ERR_INVALID_PARAMETER naming it; keywords for a language other than
 * English too (checked once p->language is parsed). */
ld_err ld_ws_params_keyword(ld_ws_params *p, const char *name, const char *value, ld_error *err);

typedef enum {
    LD_WS_CTL_KEEPALIVE,    /* keepalive, KeepAlive */
    LD_WS_CTL_FINALIZE,     /* finalize, Finalize */
    LD_WS_CTL_CLOSE_STREAM, /* close_stream, end, CloseStream */
    LD_WS_CTL_UNKNOWN_TYPE, /* a JSON object whose "type" is none of the above */
    LD_WS_CTL_INVALID,      /* not a JSON object with a string "type" */
} ld_ws_control;

/* Parses one text message (not NUL-terminated, any bytes). */
ld_ws_control ld_ws_control_parse(const char *data, size_t len);

/* Close code for an error that ends a stream (1008 auth/quota/idle, 1003 bad
 * audio or messages, 1009 too large, 1013 overload, 1011 otherwise). */
int ld_ws_close_code(ld_err e);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key +
 * GUID)) into out (29 bytes with NUL). -1 when the key is not 16 bytes of base64. */
int ld_ws_accept_key(const char *client_key, char out[29]);

/* Bytes read past the HTTP head before the WebSocket took over (the server's
 * upgraded socket and the client's handshake both may have some): wslay must
 * get them before anything from the socket. `data` is malloc'd and owned. */
typedef struct {
    uint8_t *data;
    size_t len, off;
} ld_ws_leftover;

/* Follows frame headers in the raw client byte stream, so a header that
 * announces a payload over the limit is refused (1009) at once: wslay checks
 * the length only when payload bytes arrive, and a client may never send them. */
typedef struct {
    uint8_t hdr[14];
    int have;      /* header bytes collected */
    uint64_t skip; /* payload bytes of the current frame still to pass */
} ld_ws_frame_scan;

/* Feeds n raw bytes; true when a frame header announced more than max bytes. */
bool ld_ws_frame_scan_feed(ld_ws_frame_scan *s, const uint8_t *p, size_t n, uint64_t max);

/* Keeps a copy of n bytes (none when n is 0 or memory is short). */
void ld_ws_leftover_set(ld_ws_leftover *l, const void *bytes, size_t n);
/* Moves up to len unread bytes into buf; 0 when none are left. */
size_t ld_ws_leftover_take(ld_ws_leftover *l, uint8_t *buf, size_t len);
static inline bool ld_ws_leftover_pending(const ld_ws_leftover *l) { return l->off < l->len; }
void ld_ws_leftover_free(ld_ws_leftover *l);

/* How a wslay recv / send callback ends, from what the transport returned:
 * r > 0 bytes pass; LD_WS_IO_AGAIN (would block) and failures (for recv, 0 =
 * the peer closed) set wslay's error and return -1. */
#define LD_WS_IO_AGAIN (-2)
ssize_t ld_ws_recv_result(wslay_event_context_ptr ctx, ssize_t r);
ssize_t ld_ws_send_result(wslay_event_context_ptr ctx, ssize_t r);

/* `Sec-WebSocket-Protocol: token, <key>` (Deepgram's browser form) or
 * `realtime, openai-insecure-api-key.<key>` (OpenAI's): copies <key> into out
 * and returns 1; 0 when the header does not carry a key. */
int ld_ws_subprotocol_key(const char *header, char *out, size_t outsz);

/* Compact JSON text of j, malloc'd (NULL for NULL); takes the reference. The
 * messages of every stream protocol are made with it. */
char *ld_ws_json_text(json_t *j);
/* Appends text to *acc (malloc'd, NULL = empty) after a space; "" changes
 * nothing. False: out of memory (*acc unchanged). The text of finals so far
 * (full_transcript) and of an OpenAI item's utterances are built with it. */
bool ld_ws_text_append(char **acc, const char *text);
/* x rounded to 3 decimals: times to the millisecond, confidences, as messages carry them. */
double ld_ws_r3(double x);

/* Server messages (compact JSON text, malloc'd, caller frees). */
char *ld_ws_msg_error(const char *message, const char *code);
char *ld_ws_msg_event(const char *type, const char *session_id, double timestamp);
/* The same, naming p->channel when the stream has channels > 1. */
char *ld_ws_msg_event_in(const char *type, const char *session_id, double timestamp, const ld_ws_params *p);
/* What a final carries besides its words. */
typedef struct {
    const int *speaker;             /* diarize=true: per raw word (n_words), else NULL */
    const float *confidence;        /* speaker_confidence, the same */
    char **full;                    /* full_transcript=true: the stream's (channel's) text so far, malloc'd and
                                the caller's; this final's text is appended to it and sent. NULL = off */
    struct ld_redactor_s *redactor; /* with p->redact: the stream's (channel's) token numbers; NULL = from 1 */
} ld_ws_final;

/* A final's words as JSON entries ({word, start, end, confidence} and, with
 * speakers, speaker and speaker_confidence), rendered per p->punctuate and
 * p->capitalize (punctuation entries carry the speaker of the word before).
 * New reference. */
json_t *ld_ws_word_entries(const ld_ws_params *p, const ld_word *words, size_t n_words, const ld_ws_final *fin);
/* The text of those entries, as a final's `transcript` ("" without words); malloc'd. */
char *ld_ws_final_text(const ld_ws_params *p, const ld_word *words, size_t n_words, const ld_ws_final *fin);

/* An interim (words NULL) or final transcription. For finals, `words` are the
 * raw engine words of the utterance; they are rendered per params (punctuate,
 * capitalize) and included when word_timestamps, with their speakers when fin
 * has them; sentence_timestamps adds `utterances` (sentences, split at speaker
 * changes too), fin->full `full_transcript`. fin may be NULL. */
char *ld_ws_msg_transcription(const char *session_id, const ld_ws_params *p, const char *partial,
                              const ld_word *words, size_t n_words, const ld_ws_final *fin, bool is_final,
                              bool is_last, bool from_finalize, double start, double duration);

#endif
