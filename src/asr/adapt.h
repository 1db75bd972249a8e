/* Acoustic-model adaptation helpers for `listend adapt` (src/cli/adapt.c):
 * what sphinxtrain's tools need from Debian's en-us model, and small
 * measurements. Thread-safety: pure functions (file I/O only).
 * Ownership: strings and arrays returned are malloc'd and owned by the caller. */
#ifndef LD_ASR_ADAPT_H
#define LD_ASR_ADAPT_H

#include <stddef.h>

#include "util/err.h"

/* `bw` needs mixture_weights; Debian's model ships them only as `sendump`
 * (8-bit quantised: value v = -log_1.0001(w) >> 10, stored feature × codeword ×
 * senone). Writes the s3 float file (senone × feature × codeword), each row
 * normalised. */
ld_err ld_adapt_write_mixw(const char *sendump, const char *out, ld_error *err);

/* Adds the 13 cepstra of every frame of a Sphinx .mfc file (int32 count, then
 * float32 values, little- or big-endian) to sum[]; *frames += frames read. */
ld_err ld_adapt_mfc_sum(const char *path, double sum[13], size_t *frames, ld_error *err);

/* Words of a transcript for the dictionary: lowercase, hyphens and punctuation
 * become spaces, apostrophes and non-ASCII (UTF-8) letters kept. Returns the number of words (<= max). Each
 * words[i] is malloc'd. */
size_t ld_adapt_words(const char *text, char **words, size_t max);

/* Word-level Levenshtein distance. */
size_t ld_adapt_edits(char *const *ref, size_t nr, char *const *hyp, size_t nh);

#endif
