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

/* Words separated by spaces, punctuation attached to the word before it. */
char *ld_words_join(const ld_word *w, size_t n);
double ld_round3(double x);
/* Appends "\n" to malloc'd s (NULL passes through); frees s and returns NULL when out of memory. */
char *ld_str_add_newline(char *s);

#endif
