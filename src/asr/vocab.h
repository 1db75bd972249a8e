/* Custom vocabulary: the `keywords` request option (Deepgram's form
 * `word[:boost]`) and the operator's `--vocabulary FILE`, and pronunciations
 * for words the dictionary lacks from flite's letter-to-sound rules
 * (libflite_cmulex). How the engine uses them: asr/engine_ps.c, docs/engine.md.
 *
 * A request carries its keywords as one canonical text ("word:boost word:boost",
 * lower case, each word once) inside ld_transcribe_opts, so options stay a
 * plain copyable struct.
 * Thread-safety: every function may be called from any thread (flite's lexicon
 * is used under a lock). Ownership: ld_vocab from ld_vocab_load_file is the
 * caller's (ld_vocab_free). */
#ifndef LD_ASR_VOCAB_H
#define LD_ASR_VOCAB_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define LD_VOCAB_MAX_WORDS 100   /* per request (Deepgram's limit too) */
#define LD_VOCAB_MAX_WORD_LEN 32 /* letters */
#define LD_VOCAB_MAX_BOOST 10    /* boosts are 1..10; default 1 */
#define LD_VOCAB_TEXT_MAX 4096   /* canonical list: 100 × ("word:10 ") fits */
#define LD_VOCAB_MAX_FILE_WORDS 5000
#define LD_VOCAB_PRON_MAX 256

/* One word with its boost and (operator file only) its pronunciation in CMU
 * phones, "" = from the dictionary or letter-to-sound. */
typedef struct {
    char word[LD_VOCAB_MAX_WORD_LEN + 1];
    int boost;
    char pron[LD_VOCAB_PRON_MAX];
} ld_vocab_entry;

typedef struct ld_vocab_s {
    ld_vocab_entry *e;
    size_t n;
} ld_vocab;

/* Adds one `word[:boost]` item to the canonical list `list` (size listsz, ""
 * to start); a phrase (`new york:3`, words separated by spaces) adds each of
 * its words with that boost. A word given twice keeps the later boost. Bad
 * item (empty, a word too long or with characters other than letters and
 * inner apostrophes, boost not a number from 1 to 10, more than
 * LD_VOCAB_MAX_WORDS words) -> LD_ERR_INVALID_PARAMETER with a message naming
 * the item. */
ld_err ld_vocab_add_item(char *list, size_t listsz, const char *item, ld_error *err);

/* Deepgram's `keyterm`: free text whose words become keywords with boost 1.
 * Lenient, as Deepgram is: punctuation and hyphens separate words, quotes
 * around a word are dropped, and tokens that cannot be dictionary words
 * (digits, non-ASCII letters, longer than 32) are skipped. Only an empty
 * term, or more than LD_VOCAB_MAX_WORDS words in all, is an error. */
ld_err ld_vocab_add_term(char *list, size_t listsz, const char *phrase, ld_error *err);

/* Like ld_vocab_add_item for a value that may hold several items separated by
 * commas ("kubernetes:2,listend": how form encoders send a list). */
ld_err ld_vocab_add_items(char *list, size_t listsz, const char *value, ld_error *err);

/* Entries of a canonical list, at most max; returns how many. */
size_t ld_vocab_parse_list(const char *list, ld_vocab_entry *out, size_t max);

/* The operator's vocabulary file: one entry a line, `word`, `word:boost`,
 * `word PH PH …` or `word:boost PH PH …` (CMU phones, e.g. "K UW B ER N EH T IY Z");
 * blank lines and lines starting with '#' are skipped. Errors name the line. */
ld_err ld_vocab_load_file(const char *path, ld_vocab *v, ld_error *err);
void ld_vocab_free(ld_vocab *v);

/* True when `phones` is a space-separated list of the en-us model's 39 CMU
 * phones (upper case, no stress digits). */
bool ld_vocab_valid_pron(const char *phones);

/* Letter-to-sound pronunciation of a lower-case word in CMU phones ("F AO R W ER D");
 * false when flite gives none. */
bool ld_vocab_lts(const char *word, char *out, size_t outsz);

/* One flite phone ("ax", "er1", "pau") as a CMU phone ("AH", "ER"); NULL for
 * a pause or a phone the model lacks. `buf` holds the result (≥ 4 bytes). */
const char *ld_vocab_flite_phone(const char *flite, char *buf, size_t bufsz);

/* LM probability (log10) a boost gives a word in every context: -5.0 at 1,
 * rising by 0.4 a step (docs/engine.md, § Custom vocabulary). */
double ld_vocab_boost_log10(int boost);

#endif
