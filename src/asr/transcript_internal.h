/* Helpers shared by the transcript renderers (transcript.c, subtitles.c);
 * internal to src/asr/. Pure functions.
 * Ownership: returned arrays/strings are malloc'd and owned by the caller. */
#ifndef LD_ASR_TRANSCRIPT_INTERNAL_H
#define LD_ASR_TRANSCRIPT_INTERNAL_H

#include <stddef.h>

#include "asr/transcript.h"

#define LD_PAUSE_STOP 0.6   /* seconds of pause that end a sentence */
#define LD_PAUSE_COMMA 0.25 /* seconds of pause that get a comma */

#define LD_SUB_LINE_MAX 42   /* characters per subtitle line */
#define LD_SUB_LINES 2       /* lines per cue */
#define LD_SUB_MAX_CUE_S 7.0 /* a cue never spans more than this */
#define LD_SUB_GAP_S 1.0     /* a pause this long starts a new cue */

/* An utterance of a rendering: entries [from, to) of ld_transcript_render_ex's
 * list, from t->utts[utt] (its speaker). */
typedef struct {
    size_t utt, from, to;
    double start, end;
} ld_utt_span;

/* The utterances of a rendering (w, origin, n from ld_transcript_render_ex)
 * into out (room for t->n_utts); returns how many. A redaction token (or a
 * number) belongs to the utterance of its first word; an utterance all inside
 * an earlier one's token is gone, and one whose head went into it joins that
 * utterance (docs/api.md, "Redaction") — unless it is another speaker's turn,
 * which then starts at its first remaining word. So an utterance starts at its
 * first entry and none overlaps the next. */
size_t ld_utt_spans(const ld_transcript *t, const ld_word *w, const long *origin, size_t n, ld_utt_span *out);

/* Words separated by spaces, punctuation attached to the word before it. */
char *ld_words_join(const ld_word *w, size_t n);
double ld_round3(double x);
/* Appends "\n" to malloc'd s (NULL passes through); frees s and returns NULL when out of memory. */
char *ld_str_add_newline(char *s);

#endif
