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
} ld_pool_config;

typedef struct ld_pool ld_pool;

ld_pool *ld_pool_new(const ld_pool_config *cfg, ld_error *err);
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
json_t *ld_pool_models(ld_pool *p, const char *lang);

typedef void (*ld_pool_done_fn)(void *ud, ld_transcript *t, const ld_error *err);
typedef void (*ld_pool_progress_fn)(void *ud, double fraction);

/* Queues a request. Queue full -> LD_ERR_SERVICE_UNAVAILABLE; unknown language
 * -> LD_ERR_UNSUPPORTED_LANGUAGE (message lists the available ones). `done` is
 * called exactly once, on a pool thread, after LD_OK. `progress` may be NULL. */
ld_err ld_pool_submit(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o, ld_pool_progress_fn progress,
                      ld_pool_done_fn done, void *ud, ld_error *err);

/* Cancels the request submitted with this `ud` (the first one not cancelled
 * yet): its segments not started are dropped, and `done` is called once with
 * LD_ERR_SERVICE_UNAVAILABLE "cancelled" as soon as its running segments
 * finish (on the caller's thread, before this returns, when none is running).
 * The caller must not hold a lock that `done` takes. Returns false when no
 * such request is in the pool (already done). ld_pool_free does the same to
 * every request still pending. */
bool ld_pool_cancel(ld_pool *p, void *ud);

/* Blocking convenience (CLI, tests). Returns an owned transcript or NULL. */
ld_transcript *ld_pool_transcribe(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o,
                                  ld_pool_progress_fn progress, void *ud, ld_error *err);

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

void ld_pool_set_max_streams(ld_pool *p, int max_streams); /* default 32 */
ld_err ld_pool_stream_acquire(ld_pool *p, const char *lang, ld_stream_decoder **out, ld_error *err);
void ld_pool_stream_release(ld_pool *p, ld_stream_decoder *sd);
/* Selects the model pack of an acquired stream decoder before stream_start:
 * `model` as in the request ("" = auto), `narrowband` from the stream's audio
 * (ld_audio_stream_narrowband). Sets sd->model. Unknown -> LD_ERR_INVALID_PARAMETER. */
ld_err ld_pool_stream_use_model(ld_pool *p, ld_stream_decoder *sd, const char *model, bool narrowband,
                                ld_error *err);
int ld_pool_active_streams(ld_pool *p);

/* `listend transcribe …` (local mode). */
int ld_asr_transcribe_main(int argc, char **argv);

#endif
