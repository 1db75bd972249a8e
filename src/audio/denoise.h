/* Speech enhancement before the recognizer, for the noisy route only (model=auto
 * picks it by estimated SNR, asr/packs.h): clean audio never passes through it.
 * FFmpeg's afftdn spectral denoiser (libavfilter), chosen on the adaptation
 * speakers (docs/engine.md § Noise).
 * Thread-safety: ld_audio_denoise is reentrant (each call builds and frees its
 * own filter graph); an ld_audio_denoiser is used by one thread at a time.
 * Ownership: ld_audio_denoise works in place on the caller's buffer; a
 * denoiser owns the output it hands out (valid until its next call). */
#ifndef LD_AUDIO_DENOISE_H
#define LD_AUDIO_DENOISE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The filter the noisy route uses: afftdn with its noise floor set from the
 * request's own noise level (ld_audio_noise_dbfs) plus LD_DENOISE_NF_OFFSET dB,
 * clamped to afftdn's -80..-20; a fixed floor fits only one loudness. */
#define LD_DENOISE_NR 12.0
#define LD_DENOISE_NF_OFFSET (-5.0)
/* afftdn's output lags its input by this many samples at 16 kHz (FFmpeg 5.1; its
 * timestamps do not show it): dropped, so word times stay right. The unit test
 * checks the alignment, so another FFmpeg's delay is noticed. */
#define LD_DENOISE_DELAY 400
/* Writes that filter chain for audio whose noise level is noise_dbfs. */
void ld_audio_denoise_filter(double noise_dbfs, char *buf, size_t size);

/* The noisy route's denoising, for the server and `listend adapt --denoise` alike:
 * the chain ld_audio_denoise_filter makes for noise_dbfs, unless LISTEND_DENOISE
 * names another chain or "none" (for experiments only). In place, as below. */
ld_err ld_audio_denoise_route(int16_t *pcm, size_t n, double noise_dbfs, ld_error *err);
/* That chain (in buf, or the variable's), or NULL for "none". */
const char *ld_audio_denoise_chain(double noise_dbfs, char *buf, size_t size);

/* Runs `filter` (libavfilter syntax) over n samples of 16 kHz mono s16 in place;
 * the output is time-aligned with the input (the filter's delay is flushed).
 * LD_ERR_INTERNAL if the filter cannot be built or fails. */
ld_err ld_audio_denoise(int16_t *pcm, size_t n, const char *filter, ld_error *err);

/* The same filter for audio that arrives piece by piece (a stream's channel).
 * Output sample i is input sample i, LD_DENOISE_DELAY samples later: the first
 * pushes give less than they get; a flush gives everything pushed so far (the
 * filter hears zeros that never come out), and the samples pushed after a
 * flush are aligned again. */
typedef struct ld_audio_denoiser ld_audio_denoiser;
ld_audio_denoiser *ld_audio_denoiser_new(const char *filter, ld_error *err);
/* Pushes n samples; *out gets the output ready so far (*out_n samples). */
ld_err ld_audio_denoiser_push(ld_audio_denoiser *d, const int16_t *pcm, size_t n, const int16_t **out,
                              size_t *out_n, ld_error *err);
ld_err ld_audio_denoiser_flush(ld_audio_denoiser *d, const int16_t **out, size_t *out_n, ld_error *err);
void ld_audio_denoiser_free(ld_audio_denoiser *d);

#endif
