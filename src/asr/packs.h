/* Model packs: named adaptations of a language's acoustic model that a request
 * selects with the `model` option.
 *
 *   general    the language's model as it is
 *   telephony  built in for English (Debian's en-us model): one-class MLLR adapted
 *              to 8 kHz G.711 speech upsampled by zero insertion (audio/narrowband.h);
 *              made by scripts/telephony-pack.sh with `listend adapt`, kept in
 *              models/telephony/ and compiled into the binary
 *   noisy      built in for every language: the audio goes through the denoiser
 *              (audio/denoise.h) and is decoded with the model as it is (no
 *              transform: the MLLR noise packs measured did not help unseen
 *              speakers); an operator pack named noisy (listend adapt --denoise)
 *              adds its transform after the denoiser
 *   auto       (default) telephony for narrowband audio (<= 8 kHz or G.711) when the
 *              language has it; else noisy when the estimated SNR is below
 *              LD_PACK_NOISY_SNR_DB; else general
 *   NAME       an operator pack: <models dir>/NAME/ holding `mllr_matrix` and
 *              `pack.json` (written by `listend adapt`); a pack named telephony
 *              replaces the built-in one
 * Client model names of other APIs (Smallest's lightning/pulse, OpenAI's whisper-1
 * and gpt-4o-*, Deepgram's nova-*, base, enhanced, meeting, …) mean auto;
 * Deepgram's *phonecall* names mean telephony (table in packs.c).
 *
 * A pack is a transform shared by every decoder of its language; decoders switch
 * in place (asr/engine.h decoder_use), so packs cost no memory per decoder.
 * Thread-safety: the pack list is immutable after ld_pool_new. */
#ifndef LD_ASR_PACKS_H
#define LD_ASR_PACKS_H

#include <stdbool.h>

#define LD_PACK_NAME_MAX 32

typedef struct {
    char name[LD_PACK_NAME_MAX];
    char language[16];
    void *transform; /* engine transform (owned); NULL = general */
} ld_pack;

/* Reads a pack folder (mllr_matrix + optional pack.json) into malloc'd text;
 * LD_ERR_INVALID_PARAMETER naming what is wrong. *cmn_ok says whether cmn[13]
 * was filled from pack.json's "cmn_init". language gets pack.json's "language"
 * (default "en"). */
#include "util/err.h"
ld_err ld_pack_read(const char *dir, char **mllr_text, float cmn[13], bool *cmn_ok, char language[16],
                    ld_error *err);

/* The layout a transform must have to fit an acoustic model: its feature
 * streams and each stream's vector length (PocketSphinx: the means file's
 * n_feat/featlen, e.g. 3 × 13 for Debian's en-us with its -svspec). */
#define LD_MLLR_MAX_STREAMS 8
#define LD_MLLR_MAX_VECLEN 512
typedef struct {
    int n_streams;
    int veclen[LD_MLLR_MAX_STREAMS];
} ld_mllr_shape;

/* Checks Sphinx MLLR text (classes, streams, then per stream: its length, A,
 * b, h) before anything allocates by its header: exactly one class (the engine
 * applies class 0 to every density), the streams and lengths of `model`, every
 * number present and finite, variance scales h > 0, nothing after. NULL model:
 * the header's sizes are only bounded. LD_ERR_INVALID_PARAMETER saying what
 * does not fit. A mismatched transform would crash the decoder on first use. */
ld_err ld_pack_check_mllr(const char *text, const ld_mllr_shape *model, ld_error *err);

/* Valid operator pack names: 3–31 characters [a-z0-9_-], starting with a letter
 * (two-letter names are languages), not auto or general. */
bool ld_pack_name_ok(const char *name);

/* A client's name for a model: "auto", "general", "telephony", a pack name, or
 * the listend name an alias stands for. Returns a static string or `name`. */
const char *ld_pack_alias(const char *name);

/* Built-in packs for Debian's en-us model (models/<name>/ compiled in by CMake:
 * build/generated/packs_builtin.c): telephony. */
typedef struct {
    const char *name, *mllr, *json;
} ld_pack_builtin;
extern const ld_pack_builtin ld_packs_builtin[];
extern const int ld_packs_builtin_count;

/* model=auto sends wideband audio whose estimated SNR (ld_audio_snr_db) is below
 * this to the "noisy" pack: chosen on the adaptation speakers (bench/wer/split.tsv),
 * where clean clips measured 29–52 dB and the same clips with pink noise at 20 dB
 * 25–32 dB (docs/engine.md). */
#define LD_PACK_NOISY_SNR_DB 32.5
/* A live stream measures its SNR at its first speech (server/ws_session.c), from
 * less audio than an upload: its noise floor is the quietest 50 ms of a shorter
 * stretch, so it reads lower. Chosen on the same speakers (docs/engine.md,
 * "Noisy streams"). */
#define LD_PACK_NOISY_SNR_DB_STREAM 30.0

#endif
