/* Speaker diarization ("who spoke when") on the audio a batch request already
 * decoded: cepstral features (own MFCC front end over the 16 kHz PCM), speech
 * taken from the recogniser's word times, BIC speaker-change detection at word
 * boundaries, agglomerative clustering with a BIC stopping rule (or down to a
 * fixed count) and a word-level Viterbi resegmentation. No second decode: the
 * decoder pool calls ld_diarize_transcript once the transcript is merged
 * (asr/pool.c). Method, parameters and measured error: docs/api.md
 * ("Speaker diarization"), docs/benchmarks.md ("Diarization").
 *
 * Thread-safety: every function is reentrant; nothing is shared between calls
 * (an ld_diarize_live belongs to one stream).
 * Ownership: arrays returned are malloc'd and owned by the caller; the
 * transcript passed in stays the caller's (its speaker fields are replaced). */
#ifndef LD_ASR_DIARIZE_H
#define LD_ASR_DIARIZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "asr/transcript.h"
#include "util/err.h"

#define LD_DIARIZE_MAX_SPEAKERS 8 /* num_speakers range 1..8; the estimate never exceeds it */
#define LD_DIARIZE_DIM 19         /* cepstra c1..c19 per 10 ms frame */
#define LD_DIARIZE_FEAT 20        /* floats per frame: the cepstra, then log F0 (0 = unvoiced) */

/* Tuning knobs (chosen on the dev speakers of bench/der/split.tsv). */
typedef struct {
    double change_lambda;  /* BIC penalty weight for a change inside a run of words */
    double change_win_s;   /* speech seconds on each side of a candidate change */
    double change_min_s;   /* speech each side needs before a change test means anything */
    int change_in_run;     /* 1: the windows stop at pauses >= pause_s (the run's own speech) */
    int change_diag;       /* 1: the change test uses diagonal covariances (fewer parameters) */
    int short_words;       /* a stretch of up to this many words may be cut out as a turn (0 = off)... */
    double short_margin;   /* ...when its clustering distance to the speech around it exceeds this */
    double cluster_lambda; /* BIC penalty weight of the clustering stopping rule */
    double shrink_frames;  /* covariance shrinkage toward the recording's (frames) */
    double shrink_fixed;   /* the same when num_speakers is given */
    double pause_s;        /* a pause this long always starts a new segment */
    double switch_cost;    /* resegmentation: log-likelihood cost of a speaker change */
    int reseg_iters;       /* Viterbi resegmentation passes (0 = none) */
    double min_speaker_s;  /* a cluster with less speech is a fragment, not a speaker */
    double norm_penalty;   /* with cluster_norm: BIC penalty weight taken off before dividing */
    int cluster_norm;      /* 1: clustering distance per frame of the smaller cluster */
    double pitch_weight;   /* clustering distance added per unit of mean log F0 difference... */
    double pitch_margin;   /* ...beyond this much (one voice's spread between words) */
    double pitch_min_s;    /* voiced seconds each cluster needs before its pitch counts */
    double live_margin;    /* live streams: a voice this far from every known one is a new speaker... */
    double live_min_s;     /* ...when it has this much speech */
    double live_ref_s;     /* the margin holds for this much speech; x sqrt(ref/speech) otherwise (0 = fixed) */
} ld_diarize_params;

/* The defaults; LD_DIARIZE_TUNE="name=value,..." (field names above) overrides
 * them for bench/der's parameter search only. */
void ld_diarize_params_default(ld_diarize_params *p);

/* Feature frames (LD_DIARIZE_FEAT floats each: LD_DIARIZE_DIM MFCCs and log F0;
 * 10 ms hop, 25 ms Hamming window)
 * of 16 kHz PCM; `narrowband` limits the filter bank to the telephone band.
 * Returns the malloc'd array and sets *n_frames; NULL on OOM or no frames. */
float *ld_diarize_mfcc(const int16_t *pcm, size_t n, bool narrowband, size_t *n_frames);

/* Speaker of each word from the features: labels[i] in 0..K-1, numbered by
 * first appearance; returns K (0 when there are no words). num_speakers 0 =
 * estimate (1..LD_DIARIZE_MAX_SPEAKERS), else exactly that many when there is
 * enough speech for them. p NULL = defaults. -1 on OOM. */
int ld_diarize_words(const float *feat, size_t n_frames, const ld_word *words, size_t n_words, int num_speakers,
                     const ld_diarize_params *p, int *labels);

/* Diarizes a merged transcript: fills t->speakers (one per word) and
 * t->n_speakers, and splits t->utts at speaker changes (each gets .speaker).
 * LD_ERR_INTERNAL on OOM (t unchanged). */
ld_err ld_diarize_transcript(ld_transcript *t, const int16_t *pcm, size_t n, bool narrowband, int num_speakers,
                             ld_error *err);

/* Adds the speaker fields to a body made by ld_transcript_json for a
 * diarized transcript: "speaker" (integer) on every word and utterance, and
 * "speakers" (turns: speaker "SPEAKER_00", text, start, end) and
 * "num_speakers". No-op when t->speakers is NULL. */
void ld_diarize_json(const ld_transcript *t, const ld_transcribe_opts *o, json_t *body);

/* Live streams (diarize=true on /v1/listen/stream): speakers are labelled
 * final by final, as each is sent, so a label never changes afterwards. The
 * voices inside a final are found as in a batch request (change points,
 * clustering); each then joins the nearest speaker heard so far, or becomes a
 * new one when none is near (at most num_speakers, 0 = up to
 * LD_DIARIZE_MAX_SPEAKERS). One per stream channel; not thread-safe (the
 * stream's one task at a time uses it). */
typedef struct ld_diarize_live ld_diarize_live;
/* NULL on OOM; free with ld_diarize_live_free (NULL is fine). */
ld_diarize_live *ld_diarize_live_new(int num_speakers, bool narrowband);
void ld_diarize_live_free(ld_diarize_live *l);
/* The stream's 16 kHz audio, every sample in order from the first (only the
 * last minute is kept). false on OOM. */
bool ld_diarize_live_audio(ld_diarize_live *l, const int16_t *pcm, size_t n);
/* Labels a final's words (times in seconds from the stream's first sample):
 * speakers[i] (0-based, numbered by first appearance in the stream) and
 * conf[i] (0..1: how much nearer that voice is than the next candidate).
 * Audio up to the last word's end is then dropped. false on OOM. */
bool ld_diarize_live_label(ld_diarize_live *l, const ld_word *w, size_t nw, int *speakers, float *conf);

#endif
