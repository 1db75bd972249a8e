/* The speech engine interface: a struct of function pointers, so another engine
 * can be added without touching server/. One decoder instance is used by one
 * thread at a time; different instances may run in parallel.
 * Ownership: decoder_new returns an instance owned by the caller (decoder_free);
 * words returned through ld_transcript-style arrays are owned by the caller. */
#ifndef LD_ASR_ENGINE_H
#define LD_ASR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "asr/transcript.h"
#include "util/err.h"

typedef struct {
    const char *language;  /* "en" */
    const char *model_dir; /* folder with acoustic model, LM, dictionary */
    /* operator's words for every request (asr/vocab.h); NULL = none. Must
     * outlive the decoder. */
    const struct ld_vocab_s *vocabulary;
} ld_engine_model;

typedef struct ld_engine_ops {
    const char *name;
    /* Slow (model load): create once, reuse. */
    void *(*decoder_new)(const ld_engine_model *m, ld_error *err);
    void (*decoder_free)(void *dec);

    /* Batch: decode one whole segment of 16 kHz mono PCM. Words get times
     * relative to the segment start. The result must not depend on what the
     * decoder decoded before. *words is malloc'd (caller frees each .word and
     * the array). */
    ld_err (*decode)(void *dec, const int16_t *pcm, size_t n, ld_word **words, size_t *n_words, ld_error *err);

    /* Streaming: start, feed chunks, read the partial hypothesis, end the
     * utterance to get final words (times relative to stream start). */
    ld_err (*stream_start)(void *dec, ld_error *err);
    ld_err (*stream_feed)(void *dec, const int16_t *pcm, size_t n, ld_error *err);
    char *(*stream_partial)(void *dec); /* malloc'd, "" when nothing yet */
    bool (*stream_in_speech)(void *dec);
    ld_err (*stream_end)(void *dec, ld_word **words, size_t *n_words, ld_error *err);

    /* Model adaptation (asr/packs.h). A transform is loaded once and shared by
     * every decoder of its language; switching is in place, so a decoder's memory
     * does not grow. May be NULL for an engine without adaptation.
     * transform_new: `mllr_text` in Sphinx MLLR text form, checked against the
     * model `m` (a transform that does not fit it is refused, never applied);
     * `cmn_init` (13 values or NULL) starts live CMN of streams decoded with it. */
    void *(*transform_new)(const ld_engine_model *m, const char *mllr_text, const float *cmn_init, ld_error *err);
    void (*transform_free)(void *t); /* after every decoder that used it is freed */
    /* Decode with `t` from now on (NULL = the model as it is). Cheap when t is
     * already in use; otherwise a few milliseconds. Never while a stream's
     * utterance has audio (only before its first stream_feed, or after
     * stream_end or stream_restart). */
    ld_err (*decoder_use)(void *dec, void *t, ld_error *err);
    /* Optional: n samples of the stream pass without being decoded (times of
     * later words still count them). Only between utterances, i.e. after
     * stream_end or before anything was fed since stream_start; a caller
     * skipping inside an utterance gets LD_ERR_INTERNAL. */
    ld_err (*stream_skip)(void *dec, size_t n, ld_error *err);
    /* Optional: ends the utterance in progress without words, as if its audio
     * had not been fed: the stream's clock and adapted CMN go back to where it
     * began, and the next stream_feed starts it again (a stream that changes
     * its route after its first words decodes them again). */
    ld_err (*stream_restart)(void *dec, ld_error *err);
    /* Optional: decode with these keywords from now on (a canonical list,
     * asr/vocab.h; "" = none beyond the operator's vocabulary). Cheap when
     * already in use; otherwise it rebuilds the decoder's search (docs/engine.md).
     * An utterance left open by a previous stream is ended first (its words dropped). */
    ld_err (*decoder_vocab)(void *dec, const char *keywords, ld_error *err);
} ld_engine_ops;

extern const ld_engine_ops ld_engine_pocketsphinx;

#endif
