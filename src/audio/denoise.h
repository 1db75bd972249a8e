/* Speech enhancement before the recognizer, for the noisy route only (model=auto
 * picks it by estimated SNR, asr/packs.h): clean audio never passes through it.
 * FFmpeg's afftdn spectral denoiser (libavfilter), chosen on the adaptation
 * speakers (docs/engine.md § Noise).
 * Thread-safety: reentrant; each call builds and frees its own filter graph.
 * Ownership: works in place on the caller's buffer. */
#ifndef LD_AUDIO_DENOISE_H
#define LD_AUDIO_DENOISE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The filter the noisy route uses (an FFmpeg filter chain, audio in and out). */
#define LD_DENOISE_FILTER "afftdn"

/* Runs `filter` (libavfilter syntax) over n samples of 16 kHz mono s16 in place;
 * the output is time-aligned with the input (the filter's delay is flushed).
 * LD_ERR_INTERNAL if the filter cannot be built or fails. */
ld_err ld_audio_denoise(int16_t *pcm, size_t n, const char *filter, ld_error *err);

#endif
