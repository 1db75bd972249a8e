/* Model-side noise compensation for the noisy route (docs/engine.md § Search
 * settings of the noisy route, seventh round): a predictive MLLR transform that
 * moves a clean model's Gaussians to where this segment's remaining noise puts
 * them. The noise is the power mean of the segment's quietest 10 % frames; every
 * static mean goes through log(exp(clean) + exp(noise)) in the log-mel domain
 * (vector Taylor series / parallel model combination) and one affine transform is
 * fitted to all of them; the delta streams are scaled by the average
 * clean-to-noisy gain per band. PocketSphinx applies it as an ordinary MLLR
 * transform (ps_update_mllr), so the model is never copied.
 * Models: three 13-dimensional streams (1s_c_d_dd with svspec 0-12/13-25/26-38)
 * and DCT-II cepstra, like Debian's en-us; anything else is not compensated.
 * Thread-safety: an ld_noisecomp is immutable once loaded; any thread may use it.
 * Ownership: the caller frees what load returns (ld_noisecomp_free) and the
 * text ld_noisecomp_mllr writes (free). */
#ifndef LD_ASR_NOISECOMP_H
#define LD_ASR_NOISECOMP_H

#include <stddef.h>

#include "util/err.h"

typedef struct ld_noisecomp ld_noisecomp;

/* Reads the static means of a Sphinx `means` file; nfilt and lifter are the
 * model's -nfilt and -lifter. NULL with err set when the file cannot be read or
 * the model has another layout. */
ld_noisecomp *ld_noisecomp_load(const char *means_path, int nfilt, int lifter, ld_error *err);
void ld_noisecomp_free(ld_noisecomp *nc);

/* Fewer frames than this say too little about a segment's noise: no transform. */
#define LD_NOISECOMP_MIN_FRAMES 20

/* cep: n_frames rows of 13 cepstra (before CMN) of one segment. Writes the
 * transform in Sphinx MLLR text form to *text (malloc'd), or NULL when the
 * segment is too short to estimate its noise. */
ld_err ld_noisecomp_mllr(const ld_noisecomp *nc, const float *cep, size_t n_frames, char **text, ld_error *err);

#endif
