/* Redaction of sensitive entities in transcripts (Smallest's `redact_pii` /
 * `redact_pci`, Deepgram's `redact=pci|pii|ssn|numbers`): the words of an entity
 * become one token such as "[CREDITCARDNUMBER_1]" or "[FIRSTNAME_2]".
 *
 * Found on the recognizer's words, with rules (docs/api.md "Redaction"):
 * spoken digit strings and numbers (asr/numerals.h) joined across pauses
 * shorter than LD_REDACT_RUN_GAP, classified by their length and the words just
 * before them ("security code", "expires", "social security"); e-mail
 * addresses spoken as "… at … dot com"; first and last names after an
 * introduction or a title ("my name is", "this is", "mister"), checked
 * against the proper names of Debian's word list (generated/names.c).
 * Thread-safety: a redactor belongs to one request or stream; the rest is pure.
 * Ownership: see each function. */
#ifndef LD_ASR_REDACT_H
#define LD_ASR_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* What to redact (bit set). */
enum {
    LD_REDACT_PCI = 1u,     /* card numbers, CVV, expiry dates */
    LD_REDACT_PII = 2u,     /* names, phone numbers, SSNs, e-mail addresses */
    LD_REDACT_SSN = 4u,     /* social security numbers only (Deepgram's `ssn`) */
    LD_REDACT_NUMBERS = 8u, /* any number of three or more digits (Deepgram's `numbers`) */
    LD_REDACT_ALL = 15u,
};

/* Number words further apart than this (seconds) are two numbers. */
#define LD_REDACT_RUN_GAP 1.5

enum { LD_REDACT_N_LABELS = 10 };

/* The per-request (or per-stream) state: what to redact and how many tokens
 * of each label were given out, so numbers go on across a stream's finals. */
enum { LD_REDACT_CARRY = 4 }; /* words of a stream's previous final kept as context */

typedef struct ld_redactor_s {
    unsigned kinds;
    unsigned seen[LD_REDACT_N_LABELS];
    /* a stream's finals: the last words of the previous final (lower case) and
     * when it ended, so a number or a cue ("my name is" | "John") that a pause
     * split between finals is still found; set by ld_redact_find */
    char carry[LD_REDACT_CARRY][32];
    size_t n_carry;
    double carry_end;
    int carry_label; /* kind of the entity the previous final ended with, + 1 (0 = none): it goes on as that */
    bool open_end;   /* the words still change (an interim): 2+ digits read one by one are hidden */
    bool stream;     /* a stream's finals: a number read in groups may span finals, so 3+ digits are hidden */
} ld_redactor;

/* One entity: words [first, last] (inclusive) become `token`. */
typedef struct {
    size_t first, last;
    int label; /* internal: which kind of token */
    char token[32];
} ld_redaction;

/* ld_redact_find's answer when memory ran out: callers must not show the words. */
#define LD_REDACT_FAILED ((size_t)-1)

/* The entities in words[0..n) (lower case; gap[i] = seconds between word i-1
 * and word i — for a stream's final, gap[0] = since the previous final's last
 * word; gap may be NULL for "no pauses"), in order, not overlapping, at most
 * max. Numbers tokens from r->seen and advances it; a stream's final (r->stream)
 * also reads and updates r->carry. LD_REDACT_FAILED when memory is short. */
size_t ld_redact_find(ld_redactor *r, const char *const *words, const double *gap, size_t n, ld_redaction *out,
                      size_t max);

/* A plain text (an interim hypothesis: words separated by spaces) with its
 * entities replaced; r is not advanced (the final numbers them). An interim's
 * words still change and the speaker may go on, so any two or more digits
 * read one by one are hidden already (PCI, PII, SSN): they may be part of a
 * card or phone number. malloc'd, caller frees; NULL when memory is short. */
char *ld_redact_text(const ld_redactor *r, const char *text);

/* Smallest's boolean options (`redact_pii=true`, `redact_pci=true`) and the kinds
 * they turn on; the table ends with {NULL, 0}. */
typedef struct {
    const char *name;
    unsigned kinds;
} ld_redact_option;
extern const ld_redact_option ld_redact_options[];

/* Deepgram's `redact` value: a comma-separated list of pci, pii, ssn,
 * numbers, true (= numbers), false. Adds to *kinds. An unknown or unsupported
 * value (e.g. phi) -> LD_ERR_INVALID_PARAMETER naming it. */
ld_err ld_redact_parse(const char *value, unsigned *kinds, ld_error *err);

/* The kinds as a `redact` value ("pci,ssn"; "" for none), into out. */
void ld_redact_list(unsigned kinds, char out[32]);

/* Whether a rendered word is a redaction token ("[LABEL_n]"). */
bool ld_redact_is_token(const char *word);

/* Profanity (Deepgram's `profanity_filter`): a fixed list of the swear words
 * and slurs the engine's dictionary can output (asr/profanity.c; docs/compat.md
 * lists them). Words that are also common or proper nouns ("dick", "cock",
 * "pussy", "bastard", "damn", "crap") are not on it. */
/* Whether a word (any case) is on the list. */
bool ld_profanity_is(const char *word);
/* Every letter of word becomes '*' in place (Deepgram's "****"), keeping its
 * length, hyphens and what follows an apostrophe ("fuck's" -> "****'s"). */
void ld_profanity_mask(char *word);
/* The same for every listed word of a plain text (words separated by spaces),
 * in place: an interim hypothesis. */
void ld_profanity_mask_text(char *text);

/* Whether a lower-case word is a proper name of the word list; *name_only
 * (may be NULL) tells that it is never a common word there ("john" yes,
 * "mark" no). */
bool ld_redact_is_name(const char *word, bool *name_only);

#endif
