/* Spoken English numbers as digits (`numerals=true`): "nine hundred" -> "900",
 * "twenty one" -> "21", "one zero zero zero one" / "nine oh two one oh" (digit
 * by digit) -> "10001" / "90210". Used by the transcript renderer
 * (transcript.c, LD_RENDER_NUMERALS), so every output form (JSON words and
 * text, utterances, SRT/VTT, stream finals) shows the same digits.
 * Thread-safety: pure functions. Ownership: see each function. */
#ifndef LD_ASR_NUMERALS_H
#define LD_ASR_NUMERALS_H

#include <stdbool.h>
#include <stddef.h>

/* One number found in a run of words: words [first, last] (inclusive) become `digits`. */
typedef struct {
    size_t first, last;
    char digits[32];
} ld_numeral;

/* Whether a lower-case word can be part of a spoken number ("oh" and "and"
 * included: they count only inside one). */
bool ld_numerals_word(const char *w);

/* The numbers in words[0..n) (lower case, one run: nothing else between them).
 * Writes up to `max` entries to out and returns how many; words not covered
 * stay words ("and" outside a number, "oh" outside a digit string, a lone
 * digit word: "one" is more often a pronoun than a quantity). */
size_t ld_numerals_parse(const char *const *words, size_t n, ld_numeral *out, size_t max);

#endif
