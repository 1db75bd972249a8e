/* PocketSphinx engine internals shared by the engine and its tools; internal
 * to src/asr/.
 * Thread-safety: ld_engine_ps_quiet may be called from any thread. */
#ifndef LD_ASR_ENGINE_PS_H
#define LD_ASR_ENGINE_PS_H

/* Routes PocketSphinx's own logging into util/log (process-wide, idempotent). */
void ld_engine_ps_quiet(void);

/* Decoder settings chosen with bench/wer and bench/rtf (docs/engine.md).
 * LISTEND_PS_ARGS="-opt value …" in the environment overrides or adds options
 * (for tuning only). */
#define LD_PS_TUNING                                                                                             \
    "-fwdflat", "no", "-maxhmmpf", "3000", "-pl_window", "10", "-topn", "2", "-remove_silence", "no", "-dither", \
        "no"

/* See engine_ps.c: mean cepstrum used to start live CMN for streams. */
#define LD_PS_CMN_INIT_EN_US \
    41.00f, -5.29f, -0.12f, 5.09f, 2.48f, -4.07f, -1.37f, -1.78f, -5.08f, -2.05f, -6.45f, -1.42f, 1.17f

/* Custom vocabulary of one decoder (engine_ps_vocab.c). Used by the thread
 * that uses the decoder. `dict` is the model's dictionary file; `base` the
 * operator's words (kept by the caller for the decoder's lifetime; NULL = none). */
#include <pocketsphinx.h>

#include "asr/vocab.h"
typedef struct ld_ps_vocab ld_ps_vocab;
ld_ps_vocab *ld_ps_vocab_new(ps_decoder_t *ps, const char *dict, const ld_vocab *base);
void ld_ps_vocab_free(ld_ps_vocab *v);
/* Decode with the operator's words plus `keywords` (a canonical list,
 * asr/vocab.h; "" = the operator's only) from now on; cheap when already in use. */
ld_err ld_ps_vocab_use(ld_ps_vocab *v, const char *keywords, ld_error *err);
/* The word a decoded placeholder stands for; NULL when `decoded` is an ordinary word. */
const char *ld_ps_vocab_word(const ld_ps_vocab *v, const char *decoded);

#endif
