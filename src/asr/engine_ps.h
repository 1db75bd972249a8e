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

#endif
