/* Decoder pool: N decoders per language created once at start, one bounded
 * queue of waiting requests. A request's audio is cut at silences (audio/audio.h) and
 * its segments are decoded in parallel on every free decoder, then merged in
 * order. Requests are served fairly (round-robin between requests) so a long
 * file cannot starve short ones.
 *
 * Thread-safety: all functions may be called from any thread.
 * Ownership: ld_pool_new returns an owned pool (ld_pool_free cancels what is
 * pending and waits for the segments already running). ld_pool_submit takes ownership of *pcm on LD_OK (zeroes the struct).
 * The transcript handed to `done` belongs to the callback. */
#ifndef LD_ASR_POOL_H
#define LD_ASR_POOL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "asr/engine.h"
#include "asr/transcript.h"
#include "audio/audio.h"
#include "util/err.h"

typedef struct {
    int workers;                 /* decoders per language; 0 = number of cores */
    int max_queue;               /* requests *waiting* (no segment started yet) before submit
                              * answers 503; requests being decoded do not count; 0 = 4 × workers */
    const char *models_dir;      /* extra languages: <dir>/<iso639-1>/ ; may be NULL */
    double max_segment_s;        /* longest segment cut by ld_audio_segment; 0 = 20 s */
    const ld_engine_ops *engine; /* NULL = PocketSphinx */
    const char *vocabulary;      /* operator's word list for English (asr/vocab.h); NULL = none */
} ld_pool_config;

typedef struct ld_pool ld_pool;

ld_pool *ld_pool_new(const ld_pool_config *cfg, ld_error *err);
/* Cancels, joins the workers and frees. A warmer still loading a stream model
 * after 2 s is not waited for: p then stays allocated until the process exits. */
void ld_pool_free(ld_pool *p);

bool ld_pool_has_language(ld_pool *p, const char *lang);
json_t *ld_pool_languages(ld_pool *p); /* new JSON array of codes */
int ld_pool_workers(ld_pool *p);       /* decoders able to serve (0 = unhealthy) */
int ld_pool_busy(ld_pool *p);          /* decoders working now */
int ld_pool_queue_depth(ld_pool *p);   /* requests waiting + running (a gauge for metrics;
                                          * only the waiting ones count toward max_queue) */

/* Model packs (asr/packs.h). ld_pool_check_model: false with
 * LD_ERR_INVALID_PARAMETER (listing what is available) when `model` means
 * nothing for `lang`; an unknown language passes (it is reported on its own).
 * ld_pool_models: new JSON array of the names a request of `lang` (NULL = all)
 * may use, "auto" first. */
bool ld_pool_check_model(ld_pool *p, const char *lang, const char *model, ld_error *err);
/* Whether `model` ("" included) leaves the choice to the audio (auto or another
 * API's alias of it) rather than naming a pack of `lang`; names match in any case. */
bool ld_pool_model_is_auto(ld_pool *p, const char *lang, const char *model);
json_t *ld_pool_models(ld_pool *p, const char *lang);

typedef void (*ld_pool_done_fn)(void *done_ud, ld_transcript *t, const ld_error *err);
typedef void (*ld_pool_progress_fn)(void *progress_ud, double fraction);
/* A segment's raw engine words (times from the start of the audio), valid
 * during the call only. */
typedef void (*ld_pool_segment_fn)(void *segment_ud, const ld_word *words, size_t n);

/* What a request reports back. Each callback receives the pointer registered
 * for it, so the two may point at different structs (a progress bar's state,
 * a waiter) and neither reinterprets the other's. */
typedef struct {
    ld_pool_progress_fn progress; /* may be NULL; monotonic, never after done */
    void *progress_ud;
    ld_pool_done_fn done; /* exactly once, on a pool thread, after LD_OK */
    void *done_ud;
    /* May be NULL. Given, the request's segments are decoded in time order
     * (not longest first) and each is reported in time order as soon as it and
     * every earlier one are decoded (progressive output); never after done,
     * never for a failed or cancelled request's later segments. */
    ld_pool_segment_fn segment;
    void *segment_ud;
    /* What ld_pool_cancel finds the request by; NULL = done_ud. Requests that
     * share one (a multichannel upload's channels) are cancelled together. */
    void *owner;
} ld_pool_callbacks;

/* Queues a request. Queue full -> LD_ERR_SERVICE_UNAVAILABLE; unknown language
 * -> LD_ERR_UNSUPPORTED_LANGUAGE (message lists the available ones). */
ld_err ld_pool_submit(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o, const ld_pool_callbacks *cb,
                      ld_error *err);

/* Cancels the request submitted with this `done_ud` (the first one not cancelled
 * yet): its segments not started are dropped, and `done` is called once with
 * LD_ERR_SERVICE_UNAVAILABLE "cancelled" as soon as its running segments
 * finish (on the caller's thread, before this returns, when none is running).
 * The caller must not hold a lock that `done` takes. Returns false when no
 * such request is in the pool (already done). ld_pool_free does the same to
 * every request still pending. */
bool ld_pool_cancel(ld_pool *p, void *owner);

/* A result to wait for: submit with done = ld_pool_waiter_done and done_ud =
 * the waiter, then ld_pool_waiter_wait. One thread waits; any thread finishes. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    ld_transcript *t;
    ld_error err;
} ld_pool_waiter;

void ld_pool_waiter_init(ld_pool_waiter *w);
/* An ld_pool_done_fn (also for a failure found before submitting: t NULL). */
void ld_pool_waiter_done(void *waiter, ld_transcript *t, const ld_error *err);
/* Blocks until finished and releases w: the transcript (owned by the caller),
 * or NULL with *err filled. */
ld_transcript *ld_pool_waiter_wait(ld_pool_waiter *w, ld_error *err);

/* Blocking convenience (tests, benchmarks). Returns an owned transcript or NULL. */
ld_transcript *ld_pool_transcribe(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o,
                                  ld_pool_progress_fn progress, void *progress_ud, ld_error *err);

/* ---- live streams ----
 * A stream holds its own decoder for its lifetime, separate from the batch
 * decoders (chunked input switches PocketSphinx to live CMN; batch decoders must
 * never see it). Stream decoders are created lazily up to `max_streams` and
 * reused; acquire answers LD_ERR_SERVICE_UNAVAILABLE at the cap. The returned
 * handle is used with the engine's stream_* functions from one thread at a time. */
typedef struct {
    const ld_engine_ops *ops;
    void *dec; /* engine decoder instance */
    char language[16];
    char model[32]; /* pack in use (ld_pool_stream_use_model) */
} ld_stream_decoder;

/* Live streams at once when nobody says otherwise: the pool's, the stream
 * server's and `listend serve --max-streams` default. */
/* Most decoders a pool may load (--workers of serve and transcribe): each holds tens of MB. */
#define LD_POOL_MAX_WORKERS 256
#define LD_DEFAULT_MAX_STREAMS 32
void ld_pool_set_max_streams(ld_pool *p, int max_streams); /* default LD_DEFAULT_MAX_STREAMS */
/* An idle decoder of `lang`, or a new one while under the cap. When every
 * decoder is held it waits up to 2 s for one to be released (a stream that
 * has just ended), then LD_ERR_SERVICE_UNAVAILABLE. Blocks: call from a worker. */
ld_err ld_pool_stream_acquire(ld_pool *p, const char *lang, ld_stream_decoder **out, ld_error *err);
void ld_pool_stream_release(ld_pool *p, ld_stream_decoder *sd);
/* Selects the model pack of an acquired stream decoder before stream_start, or
 * between its engine utterances: `model` as in the request ("" = auto),
 * `narrowband` from the stream's audio (ld_audio_stream_narrowband), snr_db as
 * measured so far (99 before any audio; against LD_PACK_NOISY_SNR_DB_STREAM).
 * Sets sd->model. Unknown -> LD_ERR_INVALID_PARAMETER. The engine's decoder_use
 * runs here, so never inside an engine utterance with audio (stream_restart
 * first). */
ld_err ld_pool_stream_use_model(ld_pool *p, ld_stream_decoder *sd, const char *model, bool narrowband,
                                double snr_db, ld_error *err);
/* The pack name ld_pool_stream_use_model would select, without selecting it
 * (the pool's string), or NULL with err set. */
const char *ld_pool_stream_pick_model(ld_pool *p, const ld_stream_decoder *sd, const char *model, bool narrowband,
                                      double snr_db, ld_error *err);
/* Sets the keywords (canonical list, asr/vocab.h; "" = none) of an acquired
 * stream decoder before stream_start. */
ld_err ld_pool_stream_use_keywords(ld_pool *p, ld_stream_decoder *sd, const char *keywords, ld_error *err);
int ld_pool_active_streams(ld_pool *p);
/* Keeps `prewarm` stream decoders of the first language loaded and idle, so a
 * new stream does not wait for a model load (≈ 0.5 s CPU each): a background
 * thread at low CPU priority creates them at once and again whenever streams
 * take them. Idle decoders beyond those are freed after `idle_free_s` unused
 * (and their memory given back to the system). Call once, after
 * ld_pool_set_max_streams; prewarm is capped at max_streams. */
ld_err ld_pool_stream_prewarm(ld_pool *p, int prewarm, double idle_free_s, ld_error *err);
/* Stream decoders loaded and not held by a stream (a gauge for metrics). */
int ld_pool_idle_streams(ld_pool *p);

#endif
